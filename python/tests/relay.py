"""The Rust side of the dtype tests: `examples/dtype_relay.rs`, a separate process that relays
items between a ring of any element type and a ring of their raw bytes (see its doc)."""

import os
import selectors
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
WAIT = 60


def example(name):
    """The path of a built Rust example, building it if needed (CI builds them beforehand)."""
    path = REPO / "target" / "release" / "examples" / name
    if not path.exists():
        subprocess.run(["cargo", "build", "--release", "--example", name], cwd=REPO, check=True)
    return path


class Relay:
    """`dtype_relay MODE A B`, started; `header` is the line it printed about the typed ring
    (`/name: spsc f16 [4]`), read once it said `ready` (attached to both rings)."""

    def __init__(self, mode, a, b):
        self.proc = subprocess.Popen([example("dtype_relay"), mode, a, b],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._out = b""
        try:
            self.header = self._line()
            ready = self._line()
        except BaseException:
            self.kill()
            raise
        assert ready == "ready", (self.header, ready, self.proc.stderr.read().decode())

    def _line(self):
        """The next line of its stdout, within WAIT seconds (a hung relay fails the test)."""
        deadline = time.monotonic() + WAIT
        fd = self.proc.stdout.fileno()
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while b"\n" not in self._out:
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    raise AssertionError(f"dtype_relay said nothing for {WAIT} s: {self._out!r}")
                chunk = os.read(fd, 4096)
                if not chunk:
                    err = self.proc.stderr.read().decode()
                    raise AssertionError(f"dtype_relay ended: {self._out!r} {err}")
                self._out += chunk
        line, self._out = self._out.split(b"\n", 1)
        return line.decode()

    def finish(self):
        """Waits for it to end (it ends once its input ring is closed); asserts it succeeded."""
        try:
            code = self.proc.wait(timeout=WAIT)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("dtype_relay did not end")
        err = self.proc.stderr.read().decode()
        assert code == 0, err

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

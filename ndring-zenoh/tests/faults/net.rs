//! The fault suite's hosts and bridges: two network namespaces joined by a veth pair, the
//! faults applied to the link, and `ndring-bridge` processes run in them.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::{DEADLINE, PORT, bin};

pub fn run(cmd: &[&str]) -> Result<(), String> {
    let out = Command::new(cmd[0])
        .args(&cmd[1..])
        .output()
        .map_err(|e| format!("{}: {e}", cmd.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}: {}",
            cmd.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Two network namespaces (hosts A and B) joined by a veth pair, 10.99.0.1 (A) and 10.99.0.2
/// (B); removed when dropped.
pub struct Net {
    pub a: String,
    pub b: String,
    pub veth_a: String,
}

impl Net {
    pub fn new(tag: &str) -> Net {
        let id = std::process::id() % 100_000;
        let net = Net {
            a: format!("ndzf-{tag}-{id}-a"),
            b: format!("ndzf-{tag}-{id}-b"),
            veth_a: format!("nz{tag}{id}a"),
        };
        let veth_b = format!("nz{tag}{id}b");
        let steps: [&[&str]; 8] = [
            &["ip", "netns", "add", &net.a],
            &["ip", "netns", "add", &net.b],
            &[
                "ip",
                "link",
                "add",
                &net.veth_a,
                "netns",
                &net.a,
                "type",
                "veth",
                "peer",
                "name",
                &veth_b,
                "netns",
                &net.b,
            ],
            &[
                "ip",
                "-n",
                &net.a,
                "addr",
                "add",
                "10.99.0.1/24",
                "dev",
                &net.veth_a,
            ],
            &[
                "ip",
                "-n",
                &net.b,
                "addr",
                "add",
                "10.99.0.2/24",
                "dev",
                &veth_b,
            ],
            &["ip", "-n", &net.a, "link", "set", &net.veth_a, "up"],
            &["ip", "-n", &net.b, "link", "set", &veth_b, "up"],
            &["ip", "-n", &net.a, "link", "set", "lo", "up"],
        ];
        for step in steps {
            if let Err(e) = run(step) {
                panic!(
                    "\n\n*** THE FAULT-INJECTION SUITE CANNOT RUN: it needs root (CAP_NET_ADMIN) to \
                     make network namespaces and veth pairs, and `ip` (iproute2).\n*** {e}\n*** It \
                     fails rather than skip: run it as root (as .ci/run does).\n"
                );
            }
        }
        net
    }

    /// Partition: the link down for `secs`, then up again.
    pub fn partition(&self, d: Duration) {
        run(&["ip", "-n", &self.a, "link", "set", &self.veth_a, "down"]).unwrap();
        thread::sleep(d);
        run(&["ip", "-n", &self.a, "link", "set", &self.veth_a, "up"]).unwrap();
    }

    /// Limits A's sending rate (token bucket).
    pub fn rate_limit(&self, rate: &str) {
        run(&[
            "tc",
            "qdisc",
            "add",
            "dev",
            &self.veth_a,
            "root",
            "tbf",
            "rate",
            rate,
            "burst",
            "32kb",
            "latency",
            "400ms",
        ])
        .map_err(|e| e.to_string())
        .or_else(|_| {
            run(&[
                "ip",
                "netns",
                "exec",
                &self.a,
                "tc",
                "qdisc",
                "add",
                "dev",
                &self.veth_a,
                "root",
                "tbf",
                "rate",
                rate,
                "burst",
                "32kb",
                "latency",
                "400ms",
            ])
        })
        .unwrap();
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        let _ = run(&["ip", "netns", "del", &self.a]);
        let _ = run(&["ip", "netns", "del", &self.b]);
    }
}

/// A bridge process in a namespace, killed if the test fails before it exits.
pub struct Bridge {
    child: Option<Child>,
    what: String,
}

impl Bridge {
    /// `in KEY RING` in B, listening; `out RING KEY` in A, connecting to B.
    pub fn spawn(ns: &str, args: &[&str]) -> Bridge {
        let receiving = args[0] == "in";
        let endpoint = format!("tcp/10.99.0.2:{PORT}");
        let child = Command::new("ip")
            .args(["netns", "exec", ns, &bin()])
            .args(args)
            .args(["--shared-memory", "false", "--multicast-scouting", "false"])
            .args([if receiving { "--listen" } else { "--connect" }, &endpoint])
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ndring-bridge");
        Bridge {
            child: Some(child),
            what: args.join(" "),
        }
    }

    /// Its stdout (the counters) and stderr (the log), once it exited.
    fn output(child: &mut Child) -> (String, String) {
        let (mut out, mut err) = (String::new(), String::new());
        let _ = child.stdout.take().unwrap().read_to_string(&mut out);
        let _ = child.stderr.take().unwrap().read_to_string(&mut err);
        (out, err)
    }

    /// Waits for `child` to exit; kills it and fails at the deadline.
    fn exit_status(&self, child: &mut Child) -> std::process::ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if start.elapsed() > DEADLINE {
                let _ = child.kill();
                let _ = child.wait();
                let (out, err) = Bridge::output(child);
                panic!(
                    "{} did not exit within {DEADLINE:?}: {out}\n{err}",
                    self.what
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the exit (or kills it at the deadline); returns its counters line.
    pub fn finish(mut self) -> String {
        let mut child = self.child.take().unwrap();
        let status = self.exit_status(&mut child);
        let (out, err) = Bridge::output(&mut child);
        eprintln!("--- {} ({status}):\n{err}{out}", self.what);
        assert!(
            status.success(),
            "{} failed ({status}): {out}\n{err}",
            self.what
        );
        out
    }

    /// SIGTERM, as an operator stops a bridge that keeps running; returns its counters line
    /// (printed on SIGTERM as at a normal end).
    pub fn stop(mut self) -> String {
        let mut child = self.child.take().unwrap();
        run(&["kill", "-TERM", &child.id().to_string()]).unwrap();
        let status = self.exit_status(&mut child);
        let (out, err) = Bridge::output(&mut child);
        eprintln!("--- {} (SIGTERM, {status}):\n{err}{out}", self.what);
        out
    }

    pub fn kill(mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap(); // reaped: the rings now see it dead
        let (out, err) = Bridge::output(&mut child);
        eprintln!("--- {} (SIGKILLed):\n{err}{out}", self.what);
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `name=value` from a bridge's counters line.
pub fn field(report: &str, name: &str) -> u64 {
    report
        .split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name}= in {report:?}"))
        .parse()
        .unwrap()
}

//! Cross-process benchmark of ndring against the obvious alternatives, measured in the same run.
//!
//! The binary re-executes itself (`NDRING_BENCH_CHILD=<role>`) to start its peer processes.
//!
//! One module per workload (`w1.rs` ... `w4.rs`), shared code in `harness.rs`.
//!
//! * **W1** round trip of a 64-byte array (ping-pong over two rings, one each way): ndring SPSC
//!   busy-poll, default spin, blocking (`spin(0)`), MPMC busy-poll, broadcast busy-poll (a
//!   writer and a subscriber each way); baselines: a raw cache-line ping-pong on a shared page
//!   (spin), the same with the 64-byte array on a line of its own beside each flag (the floor
//!   for moving an array this way), and with that line's offset stored on the flag's line (as
//!   ndring's entries name their data slot), a raw shared-futex ping-pong, a Unix socket, a
//!   pipe.
//!   p50 / p99 / p99.9 ns per round trip.
//! * **W2** one-way rate of 64-byte arrays (child produces, parent consumes): ndring SPSC, MPMC;
//!   baselines: a raw shared-memory SPSC ring, a Unix socket, a pipe. Items/s.
//! * **W3** frames copied in at memcpy speed and read out as a vectorised `u64` word sum
//!   (`frame.rs`): ndring SPSC at 2, 4, 8, 16 slots and a 3840x2160 row; baselines: raw rings that
//!   fill slots in FIFO order or rewrite the most recently released slot (LIFO), one process
//!   copying and reading, a Unix socket, a pipe. Frames/s and GB/s; each run prints the host's
//!   cache-line round trip and load.
//! * **W4** scaling: P producer x C consumer processes on one MPMC ring. Items/s.
//! * **W5** the shared array: uncontended `read()` / `write()` / `write_rows()` enter + exit
//!   (beside `std::sync::RwLock`), and a write seen by a reader asleep in `wait_changed` in
//!   another process, as a ping-pong, against the raw shared-futex ping-pong. ns.
//! * **W6** async: the W1 round trip with the receive awaited (`recv_async`) against the
//!   blocking `recv` at the same spin and against a thread blocked in `recv` feeding a tokio
//!   `mpsc` channel; 1080p frames/s through `recv_async` against `recv`.
//!
//! Each workload is repeated `NDRING_BENCH_RUNS` times (default 5; variants interleaved within a
//! run) and reported as min / median / max, with ratios against the baselines. Tables go to stdout
//! and to `target/ipc-report.md`; the W1 latency CDF to `target/ipc-w1-cdf.svg`.
//!
//! `cargo bench --bench ipc` runs it; `NDRING_BENCH_QUICK=1` (or `-- --quick`) runs one
//! repetition with small counts. Other knobs: `NDRING_BENCH_RT` (W1 round trips per run),
//! `NDRING_BENCH_ITEMS` (W2 items), `NDRING_BENCH_FRAMES` (W3 frames), `NDRING_BENCH_W4_ITEMS`,
//! `NDRING_BENCH_MAX_PROCS` (W4 cap on P and C, default 4), `NDRING_BENCH_ONLY=w1,w3`,
//! `NDRING_BENCH_W3=1080p` (W3 variants whose label contains a word), `NDRING_BENCH_PIN=1`
//! (parent on CPU 0, children on CPU 1).
//!
//! Every wait in the raw baselines polls like ndring's blocking calls do (a spin hint, and a
//! `yield` every 64 polls so that a peer sharing the core can run). Nothing is pinned.

mod cdf;
mod frame;
mod harness;
mod w1;
mod w2;
mod w3;
mod w4;
mod w5;
mod w6;

use harness::*;

/// A child process: runs the role named in `NDRING_BENCH_CHILD`.
fn child_main(role: &str) {
    start_child_watchdog();
    pin(1);
    let a = ChildArgs::from_env();
    match role.split('-').next() {
        Some("w1") => w1::child(role, &a),
        Some("w2") => w2::child(role, &a),
        Some("w3") => w3::child(role, &a),
        Some("w4") => w4::child(role, &a),
        Some("w5") => w5::child(role, &a),
        _ => panic!("unknown child role {role}"),
    }
}

fn target_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(d);
    }
    // target/<profile>/deps/ipc-<hash>
    std::env::current_exe()
        .ok()
        .and_then(|exe| {
            let deps = exe.parent()?;
            (deps.file_name()? == "deps").then(|| deps.parent()?.parent().map(Path::to_path_buf))?
        })
        .unwrap_or_else(|| PathBuf::from("target"))
}

/// Mean cost of one `Instant::now()` + `elapsed()` pair, which every W1 sample includes.
fn timer_overhead_ns() -> f64 {
    let n = 100_000;
    let t0 = Instant::now();
    let mut acc = 0u64;
    for _ in 0..n {
        let t = Instant::now();
        acc = acc.wrapping_add(nanos(t.elapsed()));
    }
    std::hint::black_box(acc);
    nanos(t0.elapsed()) as f64 / n as f64
}

fn first_line_of(path: &str, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    Some(line.split_once(':')?.1.trim().to_owned())
}

fn main() {
    if let Ok(role) = std::env::var(CHILD_ENV) {
        child_main(&role);
        return;
    }
    let s = Settings::from_env();
    pin(0);
    start_parent_watchdog();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cpu = first_line_of("/proc/cpuinfo", "model name").unwrap_or_else(|| "?".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|k| k.trim().to_owned())
        .unwrap_or_else(|_| "?".into());
    let mut rep = Report { md: String::new() };
    rep.say(&format!(
        "# ndring IPC benchmark\n\n- mode: {}, {} run(s) per variant (variants interleaved)\n\
         - machine: {cores} core(s), {cpu}, Linux {kernel}\n\
         - nothing pinned; waits in the raw baselines poll like ndring (spin hint, yield every \
         64 polls)\n- timer overhead included in each W1 sample: {:.0} ns\n",
        if s.quick { "quick" } else { "full" },
        s.runs,
        timer_overhead_ns()
    ));

    let mut lat_rows = None;
    if s.wants("w1") {
        lat_rows = Some(w1::w1(&s, &mut rep));
    }
    if s.wants("w2") {
        w2::w2(&s, &mut rep);
    }
    if s.wants("w3") {
        w3::w3(&s, &mut rep);
    }
    if s.wants("w4") {
        w4::w4(&s, &mut rep);
    }
    if s.wants("w6") {
        w6::w6(&s, &mut rep);
    }
    if s.wants("w5") {
        w5::w5(&s, &mut rep);
    }
    DEADLINE_NS.store(0, Relaxed);

    let dir = target_dir();
    let _ = std::fs::create_dir_all(&dir);
    if let Some(rows) = &lat_rows {
        let svg = dir.join("ipc-w1-cdf.svg");
        match std::fs::write(&svg, cdf::cdf_svg(rows)) {
            Ok(()) => {
                rep.say("\n![W1 latency CDF](ipc-w1-cdf.svg)\n");
                eprintln!("wrote {}", svg.display());
            }
            Err(e) => eprintln!("could not write {}: {e}", svg.display()),
        }
    }
    let md = dir.join("ipc-report.md");
    match std::fs::write(&md, &rep.md) {
        Ok(()) => eprintln!("wrote {}", md.display()),
        Err(e) => eprintln!("could not write {}: {e}", md.display()),
    }
    cleanup_files();
}

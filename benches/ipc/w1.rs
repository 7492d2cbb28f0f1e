//! W1: round-trip latency of a 64-byte array.

use crate::harness::*;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum W1 {
    SpscBusy,
    SpscDefault,
    SpscBlocking,
    MpmcBusy,
    BroadcastBusy,
    RawSpin,
    RawSpinPayload,
    RawSpinNamed,
    RawFutex,
    Uds,
    Pipe,
}

impl W1 {
    const ALL: [W1; 11] = [
        W1::SpscBusy,
        W1::SpscDefault,
        W1::SpscBlocking,
        W1::MpmcBusy,
        W1::BroadcastBusy,
        W1::RawSpin,
        W1::RawSpinPayload,
        W1::RawSpinNamed,
        W1::RawFutex,
        W1::Uds,
        W1::Pipe,
    ];

    pub fn label(self) -> &'static str {
        match self {
            W1::SpscBusy => "ndring spsc busy-poll",
            W1::SpscDefault => "ndring spsc default (spin 2000)",
            W1::SpscBlocking => "ndring spsc blocking (spin 0)",
            W1::MpmcBusy => "ndring mpmc busy-poll",
            W1::BroadcastBusy => "ndring broadcast busy-poll",
            W1::RawSpin => "baseline: raw shm spin",
            W1::RawSpinPayload => "baseline: raw shm spin + 64 B line",
            W1::RawSpinNamed => "baseline: raw shm spin + 64 B line named on the flag's line",
            W1::RawFutex => "baseline: raw shm futex",
            W1::Uds => "baseline: unix socket",
            W1::Pipe => "baseline: pipe",
        }
    }

    pub fn available(self) -> bool {
        self != W1::RawFutex || os::SYS_FUTEX.is_some()
    }
}

/// Where the "raw shm spin + 64 B line" baseline keeps each direction's array: a line of its
/// own, apart from the flag's (as ndring keeps a slot's payload apart from its stamp).
pub const RAW_PING_PAYLOAD: usize = 256;
pub const RAW_PONG_PAYLOAD: usize = 384;

/// Runs one W1 variant; returns the measured round trips in ns (warm-up excluded).
pub fn w1_run(v: W1, s: &Settings) -> Vec<u64> {
    let total = s.w1_warm + s.w1_rt;
    let mut lat = Vec::with_capacity(s.w1_rt);
    let mut record = |i: usize, t: Instant| {
        let dt = nanos(t.elapsed());
        if i >= s.w1_warm {
            lat.push(dt);
        }
    };
    match v {
        W1::SpscBusy | W1::SpscDefault | W1::SpscBlocking | W1::MpmcBusy => {
            let spin = match v {
                W1::SpscDefault => 2000,
                W1::SpscBlocking => 0,
                _ => BUSY,
            };
            let config = if v == W1::MpmcBusy {
                Config::mpmc()
            } else {
                Config::spsc()
            }
            .spin(spin);
            let (a, b) = (ring_name("w1a"), ring_name("w1b"));
            let mut tx = Producer::<u8, Ix1>::create(&a, SMALL, &config).expect("create a");
            let mut rx = Consumer::<u8, Ix1>::create(&b, SMALL, &config).expect("create b");
            let child = spawn(
                "w1-ring",
                &[
                    ("a", a.clone()),
                    ("b", b.clone()),
                    ("spin", spin.to_string()),
                ],
                Stdio::null(),
                Stdio::null(),
            );
            for i in 0..total {
                let t = Instant::now();
                let mut w = tx.claim().expect("claim");
                w.fill(i as u8);
                w.publish();
                let r = rx.recv().expect("recv");
                assert_eq!(r[SMALL - 1], i as u8);
                record(i, t);
            }
            tx.close();
            reap(child);
        }
        W1::BroadcastBusy => {
            // One broadcast ring each way: the child subscribes to `a`, then creates `b`, so
            // that once `b` exists every frame on `a` reaches it.
            let (a, b) = (ring_name("w1a"), ring_name("w1b"));
            let config = Config::broadcast();
            let mut tx = BroadcastWriter::<u8, Ix1>::create(&a, SMALL, &config).expect("create a");
            let child = spawn(
                "w1-broadcast",
                &[("a", a.clone()), ("b", b.clone())],
                Stdio::null(),
                Stdio::null(),
            );
            let busy = OpenOptions::default().spin(BUSY);
            let mut rx = loop {
                match Subscriber::<u8, Ix1>::open_with(&b, Start::Oldest, &busy) {
                    Ok(rx) => break rx,
                    Err(Error::NotFound { .. }) => std::thread::sleep(Duration::from_millis(1)),
                    Err(e) => panic!("open b: {e}"),
                }
            };
            for i in 0..total {
                let t = Instant::now();
                let mut w = tx.claim();
                w.fill(i as u8);
                w.publish();
                let r = rx.recv().expect("recv");
                assert_eq!(r[SMALL - 1], i as u8);
                record(i, t);
            }
            tx.close();
            reap(child);
        }
        W1::RawSpin | W1::RawSpinPayload | W1::RawSpinNamed | W1::RawFutex => {
            let map = RawMap::create("w1", 4096);
            let (ping, pong) = (map.u32_at(0), map.u32_at(128));
            let futex = v == W1::RawFutex;
            // Named: the payload's offset travels on the flag's line (as ndring's entries name
            // their data slot), so the reader's payload address depends on a loaded value.
            let named = v == W1::RawSpinNamed;
            let payload = v == W1::RawSpinPayload || named;
            let (ping_at, pong_at) = (map.u32_at(8), map.u32_at(136));
            let child = spawn(
                match v {
                    W1::RawFutex => "w1-futex",
                    W1::RawSpinPayload => "w1-spin-payload",
                    W1::RawSpinNamed => "w1-spin-named",
                    _ => "w1-spin",
                },
                &[
                    ("path", map.path.display().to_string()),
                    ("n", total.to_string()),
                ],
                Stdio::null(),
                Stdio::null(),
            );
            for i in 0..total {
                let n = i as u32 + 1;
                let t = Instant::now();
                if payload {
                    map.with_mut(RAW_PING_PAYLOAD, SMALL, |d| d.fill(i as u8));
                    ping_at.store(RAW_PING_PAYLOAD as u32, Relaxed);
                }
                ping.store(n, Release);
                if payload {
                    spin_until(|| pong.load(Acquire) == n);
                    let at = if named {
                        (pong_at.load(Relaxed) as usize).min(RAW_PONG_PAYLOAD)
                    } else {
                        RAW_PONG_PAYLOAD
                    };
                    let last = map.with_ref(at, SMALL, |d| d[SMALL - 1]);
                    assert_eq!(last, i as u8);
                } else if futex {
                    futex_wake(ping, 1);
                    while pong.load(Acquire) != n {
                        futex_wait(pong, n - 1);
                    }
                } else {
                    spin_until(|| pong.load(Acquire) == n);
                }
                record(i, t);
            }
            reap(child);
        }
        W1::Uds => {
            let path = sock_path("w1");
            let listener = UnixListener::bind(&path).expect("bind");
            let child = spawn(
                "w1-uds",
                &[
                    ("path", path.display().to_string()),
                    ("n", total.to_string()),
                ],
                Stdio::null(),
                Stdio::null(),
            );
            let (mut sock, _) = listener.accept().expect("accept");
            let _ = std::fs::remove_file(&path);
            let mut buf = [0u8; SMALL];
            for i in 0..total {
                let t = Instant::now();
                sock.write_all(&[i as u8; SMALL]).expect("write");
                sock.read_exact(&mut buf).expect("read");
                assert_eq!(buf[SMALL - 1], i as u8);
                record(i, t);
            }
            reap(child);
        }
        W1::Pipe => {
            let mut child = spawn(
                "w1-pipe",
                &[("n", total.to_string())],
                Stdio::piped(),
                Stdio::piped(),
            );
            let mut to: ChildStdin = child.stdin.take().expect("stdin");
            let mut from: ChildStdout = child.stdout.take().expect("stdout");
            let mut buf = [0u8; SMALL];
            for i in 0..total {
                let t = Instant::now();
                to.write_all(&[i as u8; SMALL]).expect("write");
                from.read_exact(&mut buf).expect("read");
                assert_eq!(buf[SMALL - 1], i as u8);
                record(i, t);
            }
            drop(to);
            reap(child);
        }
    }
    lat
}

pub struct LatRow {
    pub variant: W1,
    pub p50: Vec<f64>,
    pub p99: Vec<f64>,
    pub p999: Vec<f64>,
    /// All measured round trips of all runs, sorted (for the CDF).
    pub pooled: Vec<u64>,
}

pub fn w1(s: &Settings, rep: &mut Report) -> Vec<LatRow> {
    let variants: Vec<W1> = W1::ALL.into_iter().filter(|v| v.available()).collect();
    let mut rows: Vec<LatRow> = variants
        .iter()
        .map(|&variant| LatRow {
            variant,
            p50: vec![],
            p99: vec![],
            p999: vec![],
            pooled: vec![],
        })
        .collect();
    let mut states = vec![];
    for run in 0..s.runs {
        let load = load_average();
        eprintln!("W1 run {}/{}: load {load}", run + 1, s.runs);
        for row in &mut rows {
            arm(s.limit());
            let mut lat = w1_run(row.variant, s);
            lat.sort_unstable();
            row.p50.push(percentile(&lat, 50.0) as f64);
            row.p99.push(percentile(&lat, 99.0) as f64);
            row.p999.push(percentile(&lat, 99.9) as f64);
            row.pooled.extend_from_slice(&lat);
        }
        // The host state of this run: its own raw ping-pong, and ndring's ratios to it.
        let p50 = |v: W1| rows.iter().find(|r| r.variant == v).map(|r| r.p50[run]);
        if let (Some(raw), Some(spsc), Some(mpmc)) =
            (p50(W1::RawSpin), p50(W1::SpscBusy), p50(W1::MpmcBusy))
        {
            let line = format!(
                "run {}: load {load}; raw cache-line ping-pong p50 {raw:.0} ns; ndring spsc busy-poll {spsc:.0} ns ({:.2}x); mpmc busy-poll {mpmc:.0} ns ({:.2}x)",
                run + 1,
                spsc / raw,
                mpmc / raw
            );
            eprintln!("  {line}");
            states.push(line);
        }
    }
    for row in &mut rows {
        row.pooled.sort_unstable();
    }

    // Ratios are taken run by run (same host state), then the median of them.
    let base = |v: W1| rows.iter().find(|r| r.variant == v).map(|r| r.p50.clone());
    let bases = [
        base(W1::RawSpin),
        base(W1::RawSpinPayload),
        base(W1::RawFutex),
        base(W1::Uds),
        base(W1::Pipe),
    ];
    let mut t = Table::new(&[
        "W1 round trip, 64 B",
        "p50 ns min",
        "p50 ns med",
        "p50 ns max",
        "p99 ns med",
        "p99.9 ns med",
        "p50 / raw spin",
        "p50 / raw spin + line",
        "p50 / raw futex",
        "p50 / unix socket",
        "p50 / pipe",
    ]);
    for r in &rows {
        let p50 = spread(&r.p50);
        let mut cells = vec![
            r.variant.label().to_owned(),
            fmt_ns(p50.min),
            fmt_ns(p50.med),
            fmt_ns(p50.max),
            fmt_ns(spread(&r.p99).med),
            fmt_ns(spread(&r.p999).med),
        ];
        cells.extend(bases.iter().map(|b| {
            fmt_ratio(b.as_ref().map(|b| {
                let per_run: Vec<f64> = r.p50.iter().zip(b).map(|(x, y)| x / y).collect();
                spread(&per_run).med
            }))
        }));
        t.row(cells);
    }
    rep.say(&format!(
        "\n## W1: round-trip latency, 64-byte array\n\n{} round trips per run ({} warm-up \
         excluded), {} run(s), variants interleaved within each; p50 min/med/max over runs, p99 \
         and p99.9 medians over runs. Ratios: the median over runs of (p50 / baseline p50 in the \
         same run); below 1: faster. Host state per run:\n\n{}\n\n{}",
        s.w1_rt,
        s.w1_warm,
        s.runs,
        states
            .iter()
            .map(|x| format!("- {x}"))
            .collect::<Vec<_>>()
            .join("\n"),
        t.render()
    ));
    rows
}

/// Runs the child process of role `role`.
pub fn child(role: &str, a: &ChildArgs) {
    match role {
        "w1-ring" => {
            // Echo: receive on ring `a`, copy the array into a slot of ring `b`.
            let opts = OpenOptions::default().spin(a.num("spin"));
            let mut rx = Consumer::<u8, Ix1>::open_with(a.str("a"), &opts).expect("open a");
            let mut tx = Producer::<u8, Ix1>::open_with(a.str("b"), &opts).expect("open b");
            loop {
                let r = match rx.recv() {
                    Ok(r) => r,
                    Err(Error::Closed) => break,
                    Err(e) => panic!("recv: {e}"),
                };
                let mut w = tx.claim().expect("claim");
                w.assign(&*r);
                w.publish();
            }
        }
        "w1-broadcast" => {
            let busy = OpenOptions::default().spin(BUSY);
            let mut rx =
                Subscriber::<u8, Ix1>::open_with(a.str("a"), Start::Oldest, &busy).expect("open a");
            let mut tx =
                BroadcastWriter::<u8, Ix1>::create(a.str("b"), SMALL, &Config::broadcast())
                    .expect("create b");
            loop {
                let r = match rx.recv() {
                    Ok(r) => r,
                    Err(Error::Closed) => break,
                    Err(e) => panic!("recv: {e}"),
                };
                let mut w = tx.claim();
                w.assign(&*r);
                w.publish();
            }
        }
        "w1-spin" | "w1-futex" | "w1-spin-payload" | "w1-spin-named" => {
            let map = RawMap::open(Path::new(a.str("path")), 4096);
            let (ping, pong) = (map.u32_at(0), map.u32_at(128));
            let (ping_at, pong_at) = (map.u32_at(8), map.u32_at(136));
            let futex = role == "w1-futex";
            let named = role == "w1-spin-named";
            let payload = role == "w1-spin-payload" || named;
            let mut buf = [0u8; SMALL];
            for i in 1..=a.num::<u32>("n") {
                if payload {
                    // Echo the array: read the ping's payload line, write the pong's.
                    spin_until(|| ping.load(Acquire) == i);
                    let at = if named {
                        (ping_at.load(Relaxed) as usize).min(RAW_PING_PAYLOAD)
                    } else {
                        RAW_PING_PAYLOAD
                    };
                    map.with_ref(at, SMALL, |d| buf.copy_from_slice(d));
                    map.with_mut(RAW_PONG_PAYLOAD, SMALL, |d| d.copy_from_slice(&buf));
                    pong_at.store(RAW_PONG_PAYLOAD as u32, Relaxed);
                    pong.store(i, Release);
                } else if futex {
                    while ping.load(Acquire) != i {
                        futex_wait(ping, i - 1);
                    }
                    pong.store(i, Release);
                    futex_wake(pong, 1);
                } else {
                    spin_until(|| ping.load(Acquire) == i);
                    pong.store(i, Release);
                }
            }
        }
        "w1-uds" | "w1-pipe" => {
            let n: u64 = a.num("n");
            let mut buf = [0u8; SMALL];
            let (mut input, mut output): (Box<dyn Read>, Box<dyn Write>) = if role == "w1-uds" {
                let s = UnixStream::connect(a.str("path")).expect("connect");
                (Box::new(s.try_clone().expect("clone")), Box::new(s))
            } else {
                (Box::new(stdin_file()), Box::new(stdout_file()))
            };
            for _ in 0..n {
                input.read_exact(&mut buf).expect("read");
                output.write_all(&buf).expect("write");
            }
        }
        other => panic!("unknown child role {other}"),
    }
}

/// The host's current cache-line round trip between two processes (median of a short raw
/// ping-pong): this VM flips between a fast state (~90-130 ns) and a slow one (~500 ns), and
/// figures are comparable only within one state, so every round prints it.
pub fn line_round_trip_ns(s: &Settings) -> u64 {
    let mut q = s.clone();
    q.w1_rt = 2_000;
    q.w1_warm = 200;
    let mut lat = w1_run(W1::RawSpin, &q);
    lat.sort_unstable();
    percentile(&lat, 50.0)
}

/// The load average (1, 5, 15 minutes), as `uptime` prints it.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

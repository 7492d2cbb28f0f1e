//! W2: one-way rate of 64-byte arrays.

use crate::harness::*;

pub fn raw_ring_len() -> usize {
    (256 + RATE_SLOTS * SMALL).next_multiple_of(4096)
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum W2 {
    Spsc,
    SpscDefaultSlots,
    Mpmc,
    Raw,
    Uds,
    Pipe,
}

impl W2 {
    const ALL: [W2; 6] = [
        W2::Spsc,
        W2::SpscDefaultSlots,
        W2::Mpmc,
        W2::Raw,
        W2::Uds,
        W2::Pipe,
    ];

    pub fn label(self) -> String {
        match self {
            W2::Spsc => format!("ndring spsc ({RATE_SLOTS} slots)"),
            W2::SpscDefaultSlots => "ndring spsc (4 slots)".to_owned(),
            W2::Mpmc => format!("ndring mpmc ({RATE_SLOTS} slots)"),
            W2::Raw => format!("baseline: raw shm spsc ring ({RATE_SLOTS} slots)"),
            W2::Uds => "baseline: unix socket".to_owned(),
            W2::Pipe => "baseline: pipe".to_owned(),
        }
    }
}

/// Consumes `n` items, checking their order; returns items/s from item `n / 10` to the last.
pub fn w2_run(v: W2, s: &Settings) -> f64 {
    let n = s.w2_items;
    let warm = n / 10;
    let mut start = None;
    let mut end = None;
    let mut seen = |i: u64, item: &[u8]| {
        assert_eq!(item_index(item), i, "item out of order");
        assert_eq!(item[SMALL - 1], i as u8);
        if i == warm {
            start = Some(Instant::now());
        }
        if i == n - 1 {
            end = Some(Instant::now());
        }
    };
    let mut buf = [0u8; SMALL];
    match v {
        W2::Spsc | W2::SpscDefaultSlots | W2::Mpmc => {
            let config = match v {
                W2::Spsc => Config::spsc().slots(RATE_SLOTS),
                W2::SpscDefaultSlots => Config::spsc(),
                _ => Config::mpmc().slots(RATE_SLOTS),
            };
            let name = ring_name("w2");
            let mut rx = Consumer::<u8, Ix1>::create(&name, SMALL, &config).expect("create");
            let child = spawn(
                "w2-ring",
                &[("name", name.clone()), ("n", n.to_string())],
                Stdio::null(),
                Stdio::null(),
            );
            let mut i = 0;
            loop {
                match rx.recv() {
                    Ok(r) => {
                        buf.copy_from_slice(r.as_slice().expect("contiguous"));
                        seen(i, &buf);
                        i += 1;
                    }
                    Err(Error::Closed) => break,
                    Err(e) => panic!("recv: {e}"),
                }
            }
            assert_eq!(i, n);
            reap(child);
        }
        W2::Raw => {
            let map = RawMap::create("w2", raw_ring_len());
            let (head, tail) = (map.u64_at(0), map.u64_at(128));
            let child = spawn(
                "w2-raw",
                &[
                    ("path", map.path.display().to_string()),
                    ("n", n.to_string()),
                ],
                Stdio::null(),
                Stdio::null(),
            );
            let mut cached_tail = 0;
            for i in 0..n {
                if i >= cached_tail {
                    spin_until(|| {
                        cached_tail = tail.load(Acquire);
                        i < cached_tail
                    });
                }
                let off = 256 + (i % RATE_SLOTS as u64) as usize * SMALL;
                map.with_ref(off, SMALL, |d| buf.copy_from_slice(d));
                head.store(i + 1, Release);
                seen(i, &buf);
            }
            reap(child);
        }
        W2::Uds | W2::Pipe => {
            let (mut input, child): (Box<dyn Read>, Child) = if v == W2::Uds {
                let path = sock_path("w2");
                let listener = UnixListener::bind(&path).expect("bind");
                let child = spawn(
                    "w2-uds",
                    &[("path", path.display().to_string()), ("n", n.to_string())],
                    Stdio::null(),
                    Stdio::null(),
                );
                let (sock, _) = listener.accept().expect("accept");
                let _ = std::fs::remove_file(&path);
                (Box::new(sock), child)
            } else {
                let mut child = spawn(
                    "w2-pipe",
                    &[("n", n.to_string())],
                    Stdio::null(),
                    Stdio::piped(),
                );
                (Box::new(child.stdout.take().expect("stdout")), child)
            };
            for i in 0..n {
                input.read_exact(&mut buf).expect("read");
                seen(i, &buf);
            }
            reap(child);
        }
    }
    let (start, end) = (start.expect("timed"), end.expect("timed"));
    (n - 1 - warm) as f64 / (end - start).as_secs_f64()
}

pub fn w2(s: &Settings, rep: &mut Report) {
    let mut results: Vec<(W2, Vec<f64>)> = W2::ALL.iter().map(|&v| (v, vec![])).collect();
    for run in 0..s.runs {
        eprintln!("W2 run {}/{}", run + 1, s.runs);
        for (v, rates) in &mut results {
            arm(s.limit());
            rates.push(w2_run(*v, s));
        }
    }
    let base = |v: W2| results.iter().find(|r| r.0 == v).map(|r| spread(&r.1).med);
    let bases = [base(W2::Raw), base(W2::Uds), base(W2::Pipe)];
    let mut t = Table::new(&[
        "W2 one-way, 64 B",
        "items/s min",
        "items/s med",
        "items/s max",
        "ns/item med",
        "/ raw shm ring",
        "/ unix socket",
        "/ pipe",
    ]);
    for (v, rates) in &results {
        let r = spread(rates);
        let mut cells = vec![
            v.label(),
            fmt_rate(r.min),
            fmt_rate(r.med),
            fmt_rate(r.max),
            format!("{:.1}", 1e9 / r.med),
        ];
        cells.extend(bases.iter().map(|b| fmt_ratio(b.map(|b| r.med / b))));
        t.row(cells);
    }
    rep.say(&format!(
        "\n## W2: one-way rate, 64-byte arrays\n\nA child process produces {} items, the parent \
         consumes and checks them; timed from item {} to the last; {} run(s). Ratios: ndring \
         rate / baseline rate (above 1: ndring is faster).\n\n{}",
        s.w2_items,
        s.w2_items / 10,
        s.runs,
        t.render()
    ));
}

/// Runs the child process of role `role`.
pub fn child(role: &str, a: &ChildArgs) {
    match role {
        "w2-ring" => {
            let mut tx = Producer::<u8, Ix1>::open(a.str("name")).expect("open");
            for i in 0..a.num::<u64>("n") {
                let mut w = tx.claim().expect("claim");
                w.as_slice_mut()
                    .expect("contiguous")
                    .copy_from_slice(&small_item(i));
                w.publish();
            }
            tx.close();
        }
        "w2-raw" => {
            let map = RawMap::open(Path::new(a.str("path")), raw_ring_len());
            let (head, tail) = (map.u64_at(0), map.u64_at(128));
            let slots = RATE_SLOTS as u64;
            let mut cached_head = 0;
            for i in 0..a.num::<u64>("n") {
                if i - cached_head >= slots {
                    spin_until(|| {
                        cached_head = head.load(Acquire);
                        i - cached_head < slots
                    });
                }
                let off = 256 + (i % slots) as usize * SMALL;
                map.with_mut(off, SMALL, |d| d.copy_from_slice(&small_item(i)));
                tail.store(i + 1, Release);
            }
        }
        "w2-uds" | "w2-pipe" => {
            let mut out: Box<dyn Write> = if role == "w2-uds" {
                Box::new(UnixStream::connect(a.str("path")).expect("connect"))
            } else {
                Box::new(stdout_file())
            };
            for i in 0..a.num::<u64>("n") {
                out.write_all(&small_item(i)).expect("write");
            }
        }
        other => panic!("unknown child role {other}"),
    }
}

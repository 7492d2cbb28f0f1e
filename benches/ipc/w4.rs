//! W4: P producers x C consumers on one MPMC ring.

use crate::harness::*;

/// Runs `producers` x `consumers` processes; returns items/s.
pub fn w4_run(producers: usize, consumers: usize, s: &Settings) -> f64 {
    let n = s.w4_items;
    let name = ring_name("w4");
    let config = Config::mpmc().slots(RATE_SLOTS);
    // The creator's handle stays idle; it only keeps the ring alive.
    let _creator = Producer::<u8, Ix1>::create(&name, SMALL, &config).expect("create");
    let ctl = RawMap::create("w4", 4096);
    let ctl_path = ctl.path.display().to_string();
    let mut prods = vec![];
    let mut expected_sum = 0u64;
    for p in 0..producers {
        let share = n / producers as u64 + u64::from((p as u64) < n % producers as u64);
        expected_sum += share * share.saturating_sub(1) / 2;
        prods.push(spawn(
            "w4-prod",
            &[
                ("name", name.clone()),
                ("ctl", ctl_path.clone()),
                ("n", share.to_string()),
                ("producers", producers.to_string()),
            ],
            Stdio::null(),
            Stdio::null(),
        ));
    }
    let cons: Vec<Child> = (0..consumers)
        .map(|_| {
            spawn(
                "w4-cons",
                &[("name", name.clone()), ("ctl", ctl_path.clone())],
                Stdio::null(),
                Stdio::piped(),
            )
        })
        .collect();
    let ready = ctl.u32_at(0);
    while ready.load(Acquire) as usize != producers + consumers {
        std::thread::sleep(Duration::from_micros(100));
    }
    let go_ns = ndring::now_ns();
    let go = ctl.u32_at(128);
    go.store(1, Release);
    if os::SYS_FUTEX.is_some() {
        futex_wake(go, c_int::MAX);
    }
    for p in prods {
        reap(p);
    }
    let (mut count, mut sum, mut last_ns) = (0u64, 0u64, go_ns);
    for c in cons {
        let out = c.wait_with_output().expect("wait consumer");
        assert!(out.status.success(), "consumer failed: {}", out.status);
        let text = String::from_utf8_lossy(&out.stdout);
        let f: Vec<u64> = text
            .split_whitespace()
            .map(|x| x.parse().expect("consumer report"))
            .collect();
        assert_eq!(f.len(), 3, "consumer report: {text:?}");
        count += f[0];
        sum += f[1];
        last_ns = last_ns.max(f[2]);
    }
    assert_eq!(count, n, "items lost or duplicated");
    assert_eq!(sum, expected_sum, "items corrupted");
    n as f64 / ((last_ns - go_ns) as f64 / 1e9)
}

pub fn w4(s: &Settings, rep: &mut Report) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let m = cores.min(s.max_procs);
    let mut results: Vec<((usize, usize), Vec<f64>)> = vec![];
    for p in 1..=m {
        for c in 1..=m {
            results.push(((p, c), vec![]));
        }
    }
    for run in 0..s.runs {
        eprintln!("W4 run {}/{}", run + 1, s.runs);
        for ((p, c), rates) in &mut results {
            arm(s.limit());
            rates.push(w4_run(*p, *c, s));
        }
    }
    let one = spread(&results[0].1).med;
    let mut t = Table::new(&[
        "W4 MPMC, 64 B",
        "items/s min",
        "items/s med",
        "items/s max",
        "/ 1x1",
    ]);
    for ((p, c), rates) in &results {
        let r = spread(rates);
        t.row(vec![
            format!("{p} producer(s) x {c} consumer(s)"),
            fmt_rate(r.min),
            fmt_rate(r.med),
            fmt_rate(r.max),
            fmt_ratio(Some(r.med / one)),
        ]);
    }
    rep.say(&format!(
        "\n## W4: MPMC scaling, processes\n\n{} items per run over one {RATE_SLOTS}-slot MPMC \
         ring (default spin), P and C up to min(cores = {cores}, {}); timed from a start barrier \
         to the last consumer seeing the ring closed; {} run(s).\n\n{}",
        s.w4_items,
        s.max_procs,
        s.runs,
        t.render()
    ));
}

/// Runs the child process of role `role`.
pub fn child(role: &str, a: &ChildArgs) {
    match role {
        "w4-prod" => {
            let ctl = RawMap::open(Path::new(a.str("ctl")), 4096);
            let mut tx = Producer::<u8, Ix1>::open(a.str("name")).expect("open");
            ctl.u32_at(0).fetch_add(1, AcqRel);
            wait_nonzero(ctl.u32_at(128));
            let (n, producers): (u64, u32) = (a.num("n"), a.num("producers"));
            for i in 0..n {
                let mut w = tx.claim().expect("claim");
                w.as_slice_mut()
                    .expect("contiguous")
                    .copy_from_slice(&small_item(i));
                w.publish();
            }
            // The last producer to finish closes the ring: consumers drain it and stop.
            if ctl.u32_at(256).fetch_add(1, AcqRel) + 1 == producers {
                tx.close();
            }
        }
        "w4-cons" => {
            let ctl = RawMap::open(Path::new(a.str("ctl")), 4096);
            let mut rx = Consumer::<u8, Ix1>::open(a.str("name")).expect("open");
            ctl.u32_at(0).fetch_add(1, AcqRel);
            wait_nonzero(ctl.u32_at(128));
            let (mut count, mut sum) = (0u64, 0u64);
            loop {
                match rx.recv() {
                    Ok(r) => {
                        count += 1;
                        sum += item_index(r.as_slice().expect("contiguous"));
                    }
                    Err(Error::Closed) => break,
                    Err(e) => panic!("recv: {e}"),
                }
            }
            println!("{count} {sum} {}", ndring::now_ns());
        }
        other => panic!("unknown child role {other}"),
    }
}

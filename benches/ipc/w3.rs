//! W3: frames copied in at memcpy speed and read out in full (a vectorised `u64` word sum, see
//! `frame.rs`), so that the figure is bound by the transport and the memory it touches.
//!
//! Variants: ndring SPSC at 2 / 4 / 8 / 16 slots, as configured by default (frames reuse the
//! slot released last) and filling slots in turn (`Producer::reuse_recent_slots(false)`); two raw shared-memory rings that differ only
//! in which slot the producer fills next, the experiment behind ndring's slot reuse: *FIFO*
//! (position `k` in slot `k % n`, so the producer walks every slot and the working set is all
//! `n` frames) and *LIFO* (the producer rewrites the slot released most recently, so a consumer
//! that keeps up leaves ~2 frames in use at any depth); the FIFO ring at 2 slots is the "naive
//! 2-slot ring" bar. A 3840x2160 row; one process copying and reading; a Unix socket; a pipe.

use crate::frame::{HD, Source, UHD, frame_bytes};
use crate::harness::*;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Res {
    Hd,
    Uhd,
}

impl Res {
    fn shape(self) -> (usize, usize, usize) {
        match self {
            Res::Hd => HD,
            Res::Uhd => UHD,
        }
    }
    fn bytes(self) -> usize {
        frame_bytes(self.shape())
    }
    fn name(self) -> &'static str {
        match self {
            Res::Hd => "1080p",
            Res::Uhd => "4K",
        }
    }
    fn parse(s: &str) -> Res {
        if s == "4K" { Res::Uhd } else { Res::Hd }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum W3 {
    /// ndring SPSC, slots, as configured by default (frames: recent-first).
    Ring(Res, usize),
    /// ndring SPSC, slots, `Producer::reuse_recent_slots(false)`: slots filled in turn.
    RingInTurn(Res, usize),
    /// Raw ring, position `k` in slot `k % n`.
    Fifo(Res, usize),
    /// Raw ring, the most recently released slot rewritten first.
    Lifo(Res, usize),
    Single(Res),
    Uds,
    Pipe,
}

impl W3 {
    pub fn label(self) -> String {
        match self {
            W3::Ring(r, n) => format!("ndring spsc {}, {n} slots", r.name()),
            W3::RingInTurn(r, n) => format!("ndring in turn {}, {n} slots", r.name()),
            W3::Fifo(r, n) => format!("raw ring FIFO {}, {n} slots", r.name()),
            W3::Lifo(r, n) => format!("raw ring LIFO {}, {n} slots", r.name()),
            W3::Single(r) => format!("one process copy+read {}", r.name()),
            W3::Uds => "unix socket 1080p".to_owned(),
            W3::Pipe => "pipe 1080p".to_owned(),
        }
    }

    fn res(self) -> Res {
        match self {
            W3::Ring(r, _)
            | W3::RingInTurn(r, _)
            | W3::Fifo(r, _)
            | W3::Lifo(r, _)
            | W3::Single(r) => r,
            W3::Uds | W3::Pipe => Res::Hd,
        }
    }

    fn slots(self) -> usize {
        match self {
            W3::Ring(_, n) | W3::RingInTurn(_, n) | W3::Fifo(_, n) | W3::Lifo(_, n) => n,
            _ => 2,
        }
    }

    /// Frames left out of the timing: start-up and the first touch of every slot's pages.
    fn warm(self) -> u64 {
        2 * self.slots() as u64 + 4
    }
}

/// The raw rings: `tail` at 0, `head` at 128, the slot named by each position at 256 + 8 i,
/// slots from 4096 on, page-aligned.
fn raw_stride(bytes: usize) -> usize {
    bytes.next_multiple_of(4096)
}

fn raw_slot_off(bytes: usize, slot: usize) -> usize {
    4096 + slot * raw_stride(bytes)
}

/// Producer of the raw rings.
fn raw_produce(map: &RawMap, bytes: usize, slots: usize, lifo: bool, n: u64) {
    let src = Source::new(bytes);
    let (tail, head) = (map.u64_at(0), map.u64_at(128));
    let entry = |pos: u64| map.u64_at(256 + 8 * (pos % slots as u64) as usize);
    // LIFO: free slots, the most recently released on top; `named[pos % slots]` is the slot
    // that position `pos` used.
    let mut free: Vec<usize> = (0..slots).rev().collect();
    let mut named = vec![0usize; slots];
    let mut cached_head = 0u64;
    // Pushes the slots of positions released since the last look, the newest last.
    let refill = |h: u64, named: &[usize], free: &mut Vec<usize>, cached_head: &mut u64| {
        for p in *cached_head..h {
            free.push(named[(p % slots as u64) as usize]);
        }
        *cached_head = h;
    };
    for k in 0..n {
        if lifo && k > cached_head {
            refill(head.load(Acquire), &named, &mut free, &mut cached_head);
        }
        if k - cached_head >= slots as u64 {
            spin_until(|| {
                let h = head.load(Acquire);
                if lifo {
                    refill(h, &named, &mut free, &mut cached_head);
                } else {
                    cached_head = h;
                }
                k - cached_head < slots as u64
            });
        }
        let d = if lifo {
            free.pop().expect("a free slot")
        } else {
            (k % slots as u64) as usize
        };
        map.with_mut(raw_slot_off(bytes, d), bytes, |f| src.write(f, k));
        entry(k).store(d as u64, Relaxed);
        if lifo {
            named[(k % slots as u64) as usize] = d;
        }
        tail.store(k + 1, Release);
    }
}

/// Receives (or, single-process, makes) the frames, checking each; returns frames/s from frame
/// `warm` to the last.
fn w3_run(v: W3, s: &Settings) -> f64 {
    let n = s.w3_frames.max(v.warm() + 20);
    let warm = v.warm();
    let res = v.res();
    let bytes = res.bytes();
    let src = Source::new(bytes);
    let mut start = None;
    let mut end = None;
    let mut seen = |k: u64, ok: bool| {
        assert!(ok, "{}: frame {k} corrupt", v.label());
        if k == warm {
            start = Some(Instant::now());
        }
        if k == n - 1 {
            end = Some(Instant::now());
        }
    };
    let args = |extra: &[(&'static str, String)]| -> Vec<(&'static str, String)> {
        let mut a = vec![("n", n.to_string()), ("res", res.name().to_owned())];
        a.extend(extra.iter().cloned());
        a
    };
    match v {
        W3::Ring(_, slots) | W3::RingInTurn(_, slots) => {
            let name = ring_name("w3");
            // Both sides busy-poll, as the raw rings' `spin_until` does (the default, 2,000 polls
            // then a futex sleep, would add a wake-up to slow frames).
            let config = Config::spsc().slots(slots).spin(BUSY);
            let mut rx = Consumer::<u8, Ix3>::create(&name, res.shape(), &config).expect("create");
            let child = spawn(
                "w3-ring",
                &args(&[
                    ("name", name.clone()),
                    (
                        "in_turn",
                        u8::from(matches!(v, W3::RingInTurn(..))).to_string(),
                    ),
                ]),
                Stdio::null(),
                Stdio::null(),
            );
            for k in 0..n {
                let r = rx.recv().expect("recv");
                seen(k, src.check(r.as_slice().expect("contiguous"), k));
            }
            assert!(matches!(rx.recv(), Err(Error::Closed)));
            reap(child);
        }
        W3::Fifo(_, slots) | W3::Lifo(_, slots) => {
            let map = RawMap::create("w3", raw_slot_off(bytes, slots));
            let child = spawn(
                "w3-raw",
                &args(&[
                    ("path", map.path.display().to_string()),
                    ("slots", slots.to_string()),
                    ("lifo", u8::from(matches!(v, W3::Lifo(..))).to_string()),
                ]),
                Stdio::null(),
                Stdio::null(),
            );
            let (tail, head) = (map.u64_at(0), map.u64_at(128));
            let mut cached_tail = 0;
            for k in 0..n {
                if k >= cached_tail {
                    spin_until(|| {
                        cached_tail = tail.load(Acquire);
                        k < cached_tail
                    });
                }
                let d = map
                    .u64_at(256 + 8 * (k % slots as u64) as usize)
                    .load(Relaxed) as usize;
                assert!(d < slots, "raw ring names slot {d}");
                let ok = map.with_ref(raw_slot_off(bytes, d), bytes, |f| src.check(f, k));
                head.store(k + 1, Release);
                seen(k, ok);
            }
            reap(child);
        }
        W3::Single(_) => {
            let mut frame = vec![0u64; bytes / 8];
            for k in 0..n {
                let f = as_bytes_mut(&mut frame);
                src.write(f, k);
                seen(k, src.check(f, k));
            }
        }
        W3::Uds | W3::Pipe => {
            let (mut input, child): (Box<dyn Read>, Child) = if v == W3::Uds {
                let path = sock_path("w3");
                let listener = UnixListener::bind(&path).expect("bind");
                let child = spawn(
                    "w3-uds",
                    &args(&[("path", path.display().to_string())]),
                    Stdio::null(),
                    Stdio::null(),
                );
                let (sock, _) = listener.accept().expect("accept");
                let _ = std::fs::remove_file(&path);
                (Box::new(sock), child)
            } else {
                let mut child = spawn("w3-pipe", &args(&[]), Stdio::null(), Stdio::piped());
                (Box::new(child.stdout.take().expect("stdout")), child)
            };
            let mut frame = vec![0u64; bytes / 8];
            for k in 0..n {
                let f = as_bytes_mut(&mut frame);
                input.read_exact(f).expect("read");
                seen(k, src.check(f, k));
            }
            reap(child);
        }
    }
    let (start, end) = (start.expect("timed"), end.expect("timed"));
    (n - 1 - warm) as f64 / (end - start).as_secs_f64()
}

fn as_bytes_mut(words: &mut [u64]) -> &mut [u8] {
    // SAFETY: any bytes are valid u64 words and vice versa; the length is in bytes.
    unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<u8>(), words.len() * 8) }
}

/// The variants, in the order they run within a round.
fn variants() -> Vec<W3> {
    let mut v = vec![];
    for slots in [2, 4, 8, 16] {
        v.extend([
            W3::Ring(Res::Hd, slots),
            W3::RingInTurn(Res::Hd, slots),
            W3::Fifo(Res::Hd, slots),
            W3::Lifo(Res::Hd, slots),
        ]);
    }
    v.extend([
        W3::Ring(Res::Uhd, 4),
        W3::Fifo(Res::Uhd, 2),
        W3::Fifo(Res::Uhd, 4),
        W3::Lifo(Res::Uhd, 4),
        W3::Single(Res::Hd),
        W3::Single(Res::Uhd),
        W3::Uds,
        W3::Pipe,
    ]);
    v
}

pub fn w3(s: &Settings, rep: &mut Report) {
    // `NDRING_BENCH_W3=1080p` (say): only the variants whose label contains one of the
    // comma-separated words.
    let only = std::env::var("NDRING_BENCH_W3").ok();
    let vs: Vec<W3> = variants()
        .into_iter()
        .filter(|v| {
            only.as_deref()
                .is_none_or(|o| o.split(',').any(|w| v.label().contains(w.trim())))
        })
        .collect();
    let mut rates: Vec<Vec<f64>> = vec![vec![]; vs.len()];
    let mut states = vec![];
    for run in 0..s.runs {
        let rtt = crate::w1::line_round_trip_ns(s);
        let load = crate::w1::load_average();
        eprintln!(
            "W3 run {}/{}: cache-line round trip {rtt} ns, load {load}",
            run + 1,
            s.runs
        );
        states.push(format!(
            "run {}: line round trip {rtt} ns, load {load}",
            run + 1
        ));
        for (v, r) in vs.iter().zip(&mut rates) {
            arm(s.limit());
            // The state can flip within a run: measured again right before each variant.
            let rtt = crate::w1::line_round_trip_ns(s);
            let x = w3_run(*v, s);
            eprintln!(
                "  {:<36} {x:>8.0} frames/s   (line round trip {rtt} ns)",
                v.label()
            );
            r.push(x);
        }
    }
    let idx = |v: W3| vs.iter().position(|x| *x == v);
    // Ratios are taken run by run (same host state), then the median of them.
    let ratio = |i: usize, b: Option<usize>| {
        b.map(|b| {
            let per_run: Vec<f64> = rates[i].iter().zip(&rates[b]).map(|(a, b)| a / b).collect();
            spread(&per_run).med
        })
    };
    let mut t = Table::new(&[
        "W3 frames",
        "frames/s min",
        "frames/s med",
        "frames/s max",
        "GB/s med",
        "/ naive ring (FIFO 2 slots)",
        "/ raw FIFO same slots",
        "/ raw LIFO same slots",
        "/ one process",
    ]);
    for (i, v) in vs.iter().enumerate() {
        let r = spread(&rates[i]);
        let res = v.res();
        let same = |f: fn(Res, usize) -> W3| match v {
            W3::Ring(_, n) | W3::RingInTurn(_, n) | W3::Fifo(_, n) | W3::Lifo(_, n) => {
                idx(f(res, *n))
            }
            _ => None,
        };
        let mut cells = vec![
            v.label(),
            format!("{:.0}", r.min),
            format!("{:.0}", r.med),
            format!("{:.0}", r.max),
            format!("{:.2}", r.med * res.bytes() as f64 / 1e9),
        ];
        for b in [
            idx(W3::Fifo(res, 2)),
            same(W3::Fifo),
            same(W3::Lifo),
            idx(W3::Single(res)),
        ] {
            cells.push(fmt_ratio(ratio(i, b)));
        }
        t.row(cells);
    }
    rep.say(&format!(
        "\n## W3: frames (1080p = 1920x1080x3 u8, 4K = 3840x2160x3 u8)\n\nThe producer copies a \
         source frame into the slot (memcpy) and stamps word 0 with the sequence number; the \
         consumer reads every byte as a wrapping sum of u64 words and checks it. {} frames per \
         variant and run (at least warm-up + 20), timed after a warm-up of 2 x slots + 4 frames; \
         {} run(s), variants interleaved within each. GB/s counts each frame once. Ratios: \
         the median over runs of (rate / baseline rate in the same run); above 1: faster. Host \
         state per run:\n\n{}\n\n{}",
        s.w3_frames,
        s.runs,
        states
            .iter()
            .map(|x| format!("- {x}"))
            .collect::<Vec<_>>()
            .join("\n"),
        t.render()
    ));
}

/// Runs the child process of role `role`.
pub fn child(role: &str, a: &ChildArgs) {
    let n: u64 = a.num("n");
    let res = Res::parse(a.str("res"));
    let bytes = res.bytes();
    match role {
        "w3-ring" => {
            let src = Source::new(bytes);
            let mut tx =
                Producer::<u8, Ix3>::open_with(a.str("name"), &OpenOptions::default().spin(BUSY))
                    .expect("open");
            if a.num::<u8>("in_turn") == 1 {
                tx.reuse_recent_slots(false);
            }
            for k in 0..n {
                let mut w = tx.claim().expect("claim");
                src.write(w.as_slice_mut().expect("contiguous"), k);
                w.publish();
            }
            tx.close();
        }
        "w3-raw" => {
            let slots: usize = a.num("slots");
            let map = RawMap::open(Path::new(a.str("path")), raw_slot_off(bytes, slots));
            raw_produce(&map, bytes, slots, a.num::<u8>("lifo") == 1, n);
        }
        "w3-uds" | "w3-pipe" => {
            let src = Source::new(bytes);
            let mut out: Box<dyn Write> = if role == "w3-uds" {
                Box::new(UnixStream::connect(a.str("path")).expect("connect"))
            } else {
                Box::new(stdout_file())
            };
            let mut frame = vec![0u64; bytes / 8];
            for k in 0..n {
                let f = as_bytes_mut(&mut frame);
                src.write(f, k);
                out.write_all(f).expect("write");
            }
        }
        other => panic!("unknown child role {other}"),
    }
}

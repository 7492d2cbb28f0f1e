//! W5: the shared array (`SharedArray`). Uncontended lock enter + exit in one process (`read()`,
//! `write()`, `write_rows()`, against `std::sync::RwLock` in the same round), and a write seen
//! by a reader asleep in `wait_changed` in another process: a ping-pong over two arrays (each
//! side writes one, then sleeps in `wait_changed` on the other; `spin(0)`, so the waiter is
//! asleep on the futex) against the raw shared-futex ping-pong of W1, interleaved round by
//! round with the host's cache-line round trip printed beside each round.

use crate::harness::*;
use crate::w1::{W1, line_round_trip_ns, load_average, w1_run};
use ndarray::Ix1;
use ndring::{Config, Error, OpenOptions, SharedArray};

type Arr = SharedArray<u64, Ix1>;

/// Mean ns per call of `f` over `n` calls.
fn per_call(n: u64, mut f: impl FnMut()) -> f64 {
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    nanos(t.elapsed()) as f64 / n as f64
}

struct Uncontended {
    read: f64,
    write: f64,
    rows: f64,
    std_read: f64,
    std_write: f64,
}

fn uncontended(n: u64) -> Uncontended {
    let name = ring_name("w5u");
    let sa =
        SharedArray::<u64, ndarray::Ix2>::create(&name, (64, 8), &Config::array()).expect("create");
    let lock = std::sync::RwLock::new(0u64);
    // Warm up the lines and the code.
    let _ = per_call(n / 10, || drop(std::hint::black_box(sa.read().unwrap())));
    let r = Uncontended {
        read: per_call(n, || drop(std::hint::black_box(sa.read().unwrap()))),
        write: per_call(n, || drop(std::hint::black_box(sa.write().unwrap()))),
        rows: per_call(n, || {
            drop(std::hint::black_box(sa.write_rows(0..1).unwrap()))
        }),
        std_read: per_call(n, || drop(std::hint::black_box(lock.read().unwrap()))),
        std_write: per_call(n, || drop(std::hint::black_box(lock.write().unwrap()))),
    };
    drop(sa);
    r
}

fn open_retry(name: &str, o: &OpenOptions) -> Arr {
    loop {
        match Arr::open_with(name, o) {
            Ok(a) => return a,
            Err(Error::NotFound { .. }) => std::thread::sleep(Duration::from_millis(1)),
            Err(e) => panic!("open {name}: {e}"),
        }
    }
}

/// Round trips (ns, warm-up excluded) of the `wait_changed` ping-pong with `spin` polls.
fn wake_run(s: &Settings, spin: u32) -> Vec<u64> {
    let total = s.w1_warm + s.w1_rt;
    let (a_name, b_name) = (ring_name("w5a"), ring_name("w5b"));
    let a = Arr::create(&a_name, 1, &Config::array().spin(spin)).expect("create a");
    let b = Arr::create(&b_name, 1, &Config::array().spin(spin)).expect("create b");
    let child = spawn(
        "w5-wake",
        &[
            ("a", a_name.clone()),
            ("b", b_name.clone()),
            ("n", total.to_string()),
            ("spin", spin.to_string()),
        ],
        Stdio::null(),
        Stdio::null(),
    );
    // The child is attached once it has bumped b's version once.
    let mut seen = b
        .wait_changed(0, Some(Duration::from_secs(30)))
        .expect("child start");
    let mut lat = Vec::with_capacity(s.w1_rt);
    for i in 0..total {
        let t = Instant::now();
        a.write().expect("write a")[0] = i as u64;
        seen = b.wait_changed(seen, None).expect("wait b");
        let dt = nanos(t.elapsed());
        if i >= s.w1_warm {
            lat.push(dt);
        }
    }
    reap(child);
    lat
}

pub fn child(role: &str, a: &ChildArgs) {
    assert_eq!(role, "w5-wake");
    let o = OpenOptions::default().spin(a.num("spin"));
    let (pa, pb) = (open_retry(a.str("a"), &o), open_retry(a.str("b"), &o));
    // The parent writes `a` only once it has seen this first write of `b`: `a` is at 0 until then.
    pb.write().expect("write b")[0] = 0;
    let mut seen = 0;
    for _ in 0..a.num::<u64>("n") {
        seen = pa.wait_changed(seen, None).expect("wait a");
        let v = pa.read().expect("read a")[0];
        pb.write().expect("write b")[0] = v;
    }
}

fn p50(mut v: Vec<u64>) -> f64 {
    v.sort_unstable();
    percentile(&v, 50.0) as f64
}

pub fn w5(s: &Settings, rep: &mut Report) {
    let n = pick(s.quick, 2_000_000, 200_000);
    rep.say(&format!(
        "\n## W5: shared array\n\nPer round: uncontended enter + exit, mean of {n} calls in one \
         process (64x8 u64; `std::sync::RwLock` beside it); then the round trip of a ping-pong \
         between two processes, {} round trips per variant, p50: the raw shared-futex ping-pong \
         (W1's) and two `SharedArray`s, each side writing one and sleeping in `wait_changed` on \
         the other (`spin(0)`: asleep on the futex; and the default spin, 2000 polls). \
         Every round prints the host's cache-line round trip and load.\n\n",
        s.w1_rt
    ));
    let mut t = Table::new(&[
        "round",
        "line rtt",
        "load",
        "read()",
        "write()",
        "write_rows()",
        "RwLock r/w",
        "futex p-p",
        "wait_changed p-p",
        "ratio",
        "default spin p-p",
    ]);
    let mut ratios = Vec::new();
    for run in 0..s.runs {
        arm(s.limit());
        let rtt = line_round_trip_ns(s);
        let load = load_average();
        let u = uncontended(n);
        let futex = p50(w1_run(W1::RawFutex, s));
        let wake = p50(wake_run(s, 0));
        let spin = p50(wake_run(s, 2000));
        let ratio = wake / futex;
        ratios.push(ratio);
        rep.say(&format!(
            "run {}: line round trip {rtt} ns, load {load}; read {:.1} ns, write {:.1} ns, \
             write_rows {:.1} ns (RwLock {:.1}/{:.1}); futex ping-pong {futex:.0} ns, \
             wait_changed ping-pong {wake:.0} ns ({ratio:.2}x), default spin {spin:.0} ns\n",
            run + 1,
            u.read,
            u.write,
            u.rows,
            u.std_read,
            u.std_write
        ));
        t.row(vec![
            (run + 1).to_string(),
            format!("{rtt} ns"),
            load,
            format!("{:.1} ns", u.read),
            format!("{:.1} ns", u.write),
            format!("{:.1} ns", u.rows),
            format!("{:.1}/{:.1} ns", u.std_read, u.std_write),
            format!("{futex:.0} ns"),
            format!("{wake:.0} ns"),
            format!("{ratio:.2}x"),
            format!("{spin:.0} ns"),
        ]);
    }
    let r = spread(&ratios);
    rep.say(&format!(
        "\n{}\nwait_changed / futex ping-pong: median {:.2}x (min {:.2}x, max {:.2}x)\n",
        t.render(),
        r.med,
        r.min,
        r.max
    ));
}

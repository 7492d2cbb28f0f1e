//! Shared arrays across processes: the seeds' programs (a child writes in place, a pool sums
//! rows, a pool computes tile statistics), a writer and readers hammering the lock with every
//! read checked whole, disjoint writers filling tiles in parallel, `wait_changed`, and a writer,
//! a range writer and a reader SIGKILLed inside their locks, however the survivor waits.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::{RemoveOnDrop, command, finish, name, spawn, trial};
use ndarray::{Ix2, s};
use ndring::{Config, Error, OpenOptions, SharedArray};

const GRACE: Duration = Duration::from_millis(20);
/// Deadlock guard (not a timing check).
const STALL: Duration = Duration::from_secs(60);
const ROWS: usize = 64;
const COLS: usize = 256;

type Grid = SharedArray<u64, Ix2>;

fn main() -> std::process::ExitCode {
    let mut tests = vec![
        trial(
            "a_child_writes_in_place_and_the_parent_sees_it",
            child_writes_in_place,
        ),
        trial(
            "a_pool_sums_rows_each_worker_attaching_by_name",
            pool_sums_rows,
        ),
        trial("a_pool_computes_tile_statistics", pool_tile_statistics),
        trial(
            "writers_and_readers_hammer_the_lock_every_read_whole",
            hammer,
        ),
        trial("disjoint_writers_fill_tiles_in_parallel", disjoint_writers),
        trial(
            "wait_changed_wakes_a_reader_in_another_process",
            wait_changed_across,
        ),
        trial(
            "a_reader_killed_inside_read_is_recovered_without_poison",
            dead_reader,
        ),
        trial("readers_do_not_starve_a_writer", writer_not_starved),
        trial(
            "the_last_handle_out_removes_the_name_unless_kept",
            last_one_out,
        ),
    ];
    for waits in ["blocking", "sliced", "polling"] {
        tests.push(trial_with(
            format!("a_writer_killed_inside_write_poisons_and_is_recovered_{waits}").leak(),
            waits,
            |w| dead_writer(w, "write-and-hang"),
        ));
        tests.push(trial_with(
            format!("a_range_writer_killed_inside_its_rows_poisons_and_is_recovered_{waits}")
                .leak(),
            waits,
            |w| dead_writer(w, "rows-and-hang"),
        ));
    }
    common::main(
        &[
            ("write-cell", write_cell),
            ("sum-rows", sum_rows),
            ("tile-stats", tile_stats),
            ("hammer-write", hammer_write),
            ("hammer-read", hammer_read),
            ("fill-tile", fill_tile),
            ("write-once", write_once),
            ("write-and-hang", write_and_hang),
            ("rows-and-hang", rows_and_hang),
            ("read-and-hang", read_and_hang),
            ("read-forever", read_forever),
        ],
        tests,
    )
}

fn trial_with(name: &'static str, waits: &'static str, f: fn(&str)) -> libtest_mimic::Trial {
    libtest_mimic::Trial::test(name, move || {
        std::panic::catch_unwind(|| f(waits)).map_err(|e| {
            e.downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default()
                .into()
        })
    })
}

fn options() -> OpenOptions {
    OpenOptions::default().grace(GRACE)
}

fn open(n: &str) -> Grid {
    Grid::open_with(n, &options()).unwrap()
}

/// Child: writes 1 at [0, 0], as the seed's child does.
fn write_cell(a: &[String]) {
    open(&a[0]).write().unwrap()[[0, 0]] = 1;
}

/// Child (pool worker): sums rows a[1]..a[2] under the read lock and prints the sum.
fn sum_rows(a: &[String]) {
    let (lo, hi): (usize, usize) = (a[1].parse().unwrap(), a[2].parse().unwrap());
    let g = open(&a[0]);
    let r = g.read().unwrap();
    println!("{}", r.slice(s![lo..hi, ..]).sum());
}

/// Child: prints the mean and standard deviation of tile (a[1], a[2]) of size a[3].
fn tile_stats(a: &[String]) {
    let (ti, tj, t): (usize, usize, usize) = (
        a[1].parse().unwrap(),
        a[2].parse().unwrap(),
        a[3].parse().unwrap(),
    );
    let g = SharedArray::<f64, Ix2>::open(&a[0]).unwrap();
    let r = g.read().unwrap();
    let tile = r.slice(s![ti * t..(ti + 1) * t, tj * t..(tj + 1) * t]);
    println!("{} {}", tile.mean().unwrap(), tile.std(0.0));
}

/// Child: a[1] times, fills the whole array with one value (distinct per write).
fn hammer_write(a: &[String]) {
    let g = open(&a[0]);
    let id: u64 = a[2].parse().unwrap();
    for i in 0..a[1].parse::<u64>().unwrap() {
        // In two halves with a pause between: a reader let in meanwhile would see them differ.
        let mut w = g.write().unwrap();
        w.slice_mut(s![..ROWS / 2, ..]).fill(id << 32 | i);
        pause();
        w.slice_mut(s![ROWS / 2.., ..]).fill(id << 32 | i);
    }
}

/// Child: a[1] times, reads under the lock and checks that every element is one value, and
/// takes a lock-free snapshot and checks the same; prints how many reads it checked.
fn hammer_read(a: &[String]) {
    let g = open(&a[0]);
    let mut buf = vec![0u64; ROWS * COLS];
    let n: usize = a[1].parse().unwrap();
    for i in 0..n {
        {
            let r = g.read().unwrap();
            let first = r[[0, 0]];
            assert!(r.iter().all(|&v| v == first), "a torn read under the lock");
        }
        if i % 8 == 0 {
            g.snapshot_into(&mut buf).unwrap();
            assert!(buf.iter().all(|&v| v == buf[0]), "a torn snapshot");
        }
    }
    println!("{n}");
}

/// Child: a[2] times, writes its rows a[1]*16..+16 with (id, i) and checks them back.
fn fill_tile(a: &[String]) {
    let g = open(&a[0]);
    let k: usize = a[1].parse().unwrap();
    let rows = k * 16..(k + 1) * 16;
    for i in 0..a[2].parse::<u64>().unwrap() {
        let mut w = g.write_rows(rows.clone()).unwrap();
        let v = (k as u64) << 32 | i;
        w.slice_mut(s![..8, ..]).fill(v);
        pause();
        w.slice_mut(s![8.., ..]).fill(v);
        assert!(
            w.iter().all(|&x| x == v),
            "another writer wrote into our rows"
        );
    }
}

/// Holds a writer's lock a little longer than its stores take (a yield, then ~20 µs).
fn pause() {
    thread::yield_now();
    let t = Instant::now();
    while t.elapsed() < Duration::from_micros(20) {
        std::hint::spin_loop();
    }
}

/// Child: says it is ready, waits a little, writes once.
fn write_once(a: &[String]) {
    let g = open(&a[0]);
    println!("open");
    thread::sleep(Duration::from_millis(50));
    g.write().unwrap().fill(7);
}

/// Child: takes the write lock, writes half, says so, and hangs.
fn write_and_hang(a: &[String]) {
    let g = open(&a[0]);
    let mut w = g.write().unwrap();
    w.slice_mut(s![..ROWS / 2, ..]).fill(9);
    println!("locked");
    thread::sleep(STALL);
}

/// Child: takes rows 0..8, writes them, says so, and hangs.
fn rows_and_hang(a: &[String]) {
    let g = open(&a[0]);
    let mut w = g.write_rows(0..8).unwrap();
    w.fill(9);
    println!("locked");
    thread::sleep(STALL);
}

/// Child: takes the read lock, says so, and hangs.
fn read_and_hang(a: &[String]) {
    let g = open(&a[0]);
    let _r = g.read().unwrap();
    println!("locked");
    thread::sleep(STALL);
}

/// Child: takes overlapping read locks from two threads without pause until killed, so that
/// the lock is never free of readers.
fn read_forever(a: &[String]) {
    let g = open(&a[0]);
    println!("reading");
    thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                loop {
                    let r = g.read().unwrap();
                    std::hint::black_box(r[[0, 0]]);
                }
            });
        }
    });
}

fn child_writes_in_place() {
    let n = name("sa-cell");
    let _rm = RemoveOnDrop(n.clone());
    let g = Grid::create(&n, (ROWS, COLS), &Config::array()).unwrap();
    finish(spawn("write-cell", &[&n]), STALL);
    assert_eq!(g.read().unwrap()[[0, 0]], 1);
    assert_eq!(g.read().unwrap().sum(), 1);
    assert_eq!(g.version(), 1);
}

fn pool_sums_rows() {
    let n = name("sa-sum");
    let _rm = RemoveOnDrop(n.clone());
    let g = Grid::create(&n, (ROWS, COLS), &Config::array()).unwrap();
    {
        let mut w = g.write().unwrap();
        for ((i, j), v) in w.indexed_iter_mut() {
            *v = (i * COLS + j) as u64;
        }
    }
    for workers in [1, 2, 4] {
        let per = ROWS / workers;
        let kids: Vec<_> = (0..workers)
            .map(|k| {
                let (lo, hi) = ((k * per).to_string(), ((k + 1) * per).to_string());
                spawn("sum-rows", &[&n, &lo, &hi])
            })
            .collect();
        let total: u64 = kids
            .into_iter()
            .map(|c| {
                let out = finish(c, STALL);
                String::from_utf8(out.stdout)
                    .unwrap()
                    .trim()
                    .parse::<u64>()
                    .unwrap()
            })
            .sum();
        let cells = (ROWS * COLS) as u64;
        assert_eq!(total, cells * (cells - 1) / 2, "{workers} workers");
    }
}

fn pool_tile_statistics() {
    let n = name("sa-tile");
    let _rm = RemoveOnDrop(n.clone());
    let g = SharedArray::<f64, Ix2>::create(&n, (64, 64), &Config::array()).unwrap();
    {
        let mut w = g.write().unwrap();
        for ((i, j), v) in w.indexed_iter_mut() {
            *v = ((i * 7 + j * 13) % 17) as f64;
        }
    }
    let local = g.snapshot().unwrap().0;
    let kids: Vec<_> = (0..4)
        .map(|k| {
            let (ti, tj) = ((k / 2).to_string(), (k % 2).to_string());
            (k, spawn("tile-stats", &[&n, &ti, &tj, "32"]))
        })
        .collect();
    for (k, c) in kids {
        let out = String::from_utf8(finish(c, STALL).stdout).unwrap();
        let v: Vec<f64> = out.split_whitespace().map(|x| x.parse().unwrap()).collect();
        let tile = local.slice(s![
            (k / 2) * 32..(k / 2 + 1) * 32,
            (k % 2) * 32..(k % 2 + 1) * 32
        ]);
        assert_eq!(v, [tile.mean().unwrap(), tile.std(0.0)], "tile {k}");
    }
}

fn hammer() {
    let n = name("sa-ham");
    let _rm = RemoveOnDrop(n.clone());
    let g = Grid::create(&n, (ROWS, COLS), &Config::array()).unwrap();
    let writers: Vec<_> = (1..=2)
        .map(|id| spawn("hammer-write", &[&n, "2000", &id.to_string()]))
        .collect();
    let readers: Vec<_> = (0..2)
        .map(|_| spawn("hammer-read", &[&n, "2000"]))
        .collect();
    for w in writers {
        finish(w, STALL);
    }
    for r in readers {
        let out = finish(r, STALL);
        assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), "2000");
    }
    assert_eq!(g.version(), 4000);
    let r = g.read().unwrap();
    assert!(r.iter().all(|&v| v == r[[0, 0]]));
}

fn disjoint_writers() {
    let n = name("sa-tiles");
    let _rm = RemoveOnDrop(n.clone());
    let g = Grid::create(&n, (ROWS, COLS), &Config::array()).unwrap();
    let kids: Vec<_> = (0..4)
        .map(|k| spawn("fill-tile", &[&n, &k.to_string(), "500"]))
        .collect();
    // Readers in between: the lock alternates between them and the range writers.
    for _ in 0..200 {
        let r = g.read().unwrap();
        for k in 0..4 {
            let tile = r.slice(s![k * 16..(k + 1) * 16, ..]);
            assert!(
                tile.iter().all(|&v| v == tile[[0, 0]]),
                "a tile torn under the read lock"
            );
        }
    }
    for c in kids {
        finish(c, STALL);
    }
    let r = g.read().unwrap();
    for k in 0..4 {
        assert!(
            r.slice(s![k * 16..(k + 1) * 16, ..])
                .iter()
                .all(|&v| v == (k as u64) << 32 | 499)
        );
    }
    assert_eq!(g.version(), 2000);
}

fn wait_changed_across() {
    let n = name("sa-wait");
    let _rm = RemoveOnDrop(n.clone());
    let g = Grid::create(&n, (ROWS, COLS), &Config::array()).unwrap();
    let seen = g.version();
    let (child, _) = start("write-once", &n);
    let v = g.wait_changed(seen, Some(STALL)).unwrap();
    assert_eq!(v, seen + 1);
    assert!(g.read().unwrap().iter().all(|&x| x == 7));
    let _ = child.wait_with_output();
}

/// A writer (whole or rows) dies inside its lock: the survivor, waiting as `waits` says, gets
/// `Poisoned` once the grace period has passed, then writes again after `clear_poison`.
fn dead_writer(waits: &str, role: &str) {
    // One name per (role, way of waiting): the variants run in parallel.
    let n = name(&format!("sa-dw{}{}", &role[..1], &waits[..1]));
    let _rm = RemoveOnDrop(n.clone());
    let g = Grid::open_or_create(&n, (ROWS, COLS), &Config::array().grace(GRACE)).unwrap();
    let (child, _) = start(role, &n);
    kill(child);
    let start = Instant::now();
    let err = loop {
        let r = match waits {
            "blocking" => g.write().map(drop),
            "sliced" => g.write_timeout(GRACE / 4).map(drop),
            _ => g.try_write().map(drop),
        };
        match r {
            Err(Error::Timeout) => assert!(start.elapsed() < STALL, "never recovered"),
            other => break other,
        }
    };
    assert!(matches!(err, Err(Error::Poisoned { .. })), "{err:?}");
    assert!(g.is_poisoned());
    assert!(matches!(g.read(), Err(Error::Poisoned { .. })));
    // The half-write is there to repair.
    g.clear_poison();
    assert_eq!(g.read().unwrap()[[0, 0]], 9);
    g.write().unwrap().fill(0);
    assert_eq!(g.read().unwrap().sum(), 0);
    assert_eq!(g.segment().stats().recovered_claims, 1);
}

fn dead_reader() {
    let n = name("sa-dr");
    let _rm = RemoveOnDrop(n.clone());
    let g = Grid::open_or_create(&n, (ROWS, COLS), &Config::array().grace(GRACE)).unwrap();
    let (child, _) = start("read-and-hang", &n);
    kill(child);
    g.write_timeout(STALL)
        .expect("the dead reader's share is recovered")
        .fill(1);
    assert!(!g.is_poisoned());
    assert_eq!(g.segment().stats().recovered_reads, 1);
}

/// Two threads of another process hold overlapping read locks without pause: a writer still
/// gets in (new readers wait behind it).
fn writer_not_starved() {
    let n = name("sa-starve");
    let _rm = RemoveOnDrop(n.clone());
    let g = Grid::create(&n, (ROWS, COLS), &Config::array()).unwrap();
    let (child, _) = start("read-forever", &n);
    for i in 0..20 {
        g.write_timeout(STALL)
            .expect("a writer behind readers gets in")
            .fill(i);
    }
    kill(child);
}

fn last_one_out() {
    let n = name("sa-last");
    let _rm = RemoveOnDrop(n.clone());
    let g = Grid::create(&n, (4, 4), &Config::array()).unwrap();
    let h = open(&n);
    drop(g);
    assert!(Grid::open(&n).is_ok(), "still attached: the name stays");
    drop(h);
    assert!(matches!(Grid::open(&n), Err(Error::NotFound { .. })));
    let g = Grid::create(&n, (4, 4), &Config::array().keep(true)).unwrap();
    g.write().unwrap().fill(5);
    drop(g);
    let h = Grid::open_or_create(&n, (4, 4), &Config::array()).unwrap();
    assert_eq!(
        h.read().unwrap().sum(),
        80,
        "a kept array is opened, not replaced"
    );
}

/// Starts child `role` on array `n`, waits for its first line.
fn start(role: &str, n: &str) -> (Child, String) {
    let mut child = command(role, &[n]).stdout(Stdio::piped()).spawn().unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(out).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(STALL).expect("the child reached its point");
    (child, line.trim().to_string())
}

fn kill(mut c: Child) {
    c.kill().unwrap();
    c.wait().unwrap();
}

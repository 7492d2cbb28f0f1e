//! Every error case gets its own clear error: bad names, missing or existing segments, foreign,
//! corrupt or truncated headers, mismatched types, taken roles, permissions, no space.

mod common;

use std::fs::OpenOptions as FileOptions;
use std::io::{Seek, SeekFrom, Write};
use std::time::Duration;

use common::{finish, name, spawn, trial};
use ndarray::{Ix1, Ix2, Ix3, IxDyn};
use ndring::{
    BroadcastWriter, Config, Consumer, DType, Error, OpenOptions, Producer, Role, Segment,
};

const LONG: Duration = Duration::from_secs(60);

fn main() -> std::process::ExitCode {
    common::main(
        &[
            ("create-and-exit", create_and_exit),
            ("hold-consumer", hold_consumer),
            ("open-as-nobody", open_as_nobody),
        ],
        vec![
            trial("invalid_names_are_rejected", invalid_names),
            trial("missing_segment_is_not_found", not_found),
            trial("existing_segment_names_its_live_creator", already_exists),
            trial("stale_segment_is_reported_then_replaced", stale_segment),
            trial("foreign_segment_is_not_ndring", foreign_segment),
            trial("other_format_version_is_rejected", other_version),
            trial("corrupt_header_fields_are_rejected", corrupt_fields),
            trial("truncated_segment_is_rejected", truncated),
            trial(
                "unfinished_segment_times_out_and_can_be_replaced",
                not_ready,
            ),
            trial("type_rank_shape_and_kind_mismatches", mismatches),
            trial("untyped_open_reports_the_layout", untyped_open),
            trial(
                "role_taken_across_processes_then_taken_over_after_death",
                role_takeover,
            ),
            trial("too_many_peers", too_many_peers),
            trial("permission_denied_names_the_segment", permission_denied),
            trial("too_small_dev_shm_is_an_error_at_create", no_space),
            trial("invalid_configs_are_rejected", invalid_configs),
        ],
    )
}

fn shm_path(n: &str) -> String {
    format!("/dev/shm{n}")
}

fn invalid_names() {
    for bad in [
        "",
        "noslash",
        "/",
        "/a/b",
        "/.",
        "/..",
        "/nul\0x",
        "/0123456789012345678901234567890",
    ] {
        match Producer::<u8, Ix1>::create(bad, 4, &Config::spsc()) {
            Err(Error::InvalidName { name, reason }) => {
                assert_eq!(name, bad);
                assert!(!reason.is_empty());
            }
            other => panic!("{bad:?}: expected InvalidName, got {other:?}"),
        }
        assert!(matches!(
            Consumer::<u8, Ix1>::open(bad),
            Err(Error::InvalidName { .. })
        ));
        assert!(matches!(
            ndring::remove(bad),
            Err(Error::InvalidName { .. })
        ));
    }
    assert!(ndring::validate_name("/012345678901234567890123456789").is_ok());
}

fn not_found() {
    let n = name("nf");
    match Consumer::<u8, Ix1>::open(&n) {
        Err(Error::NotFound { name }) => assert_eq!(name, n),
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert!(matches!(ndring::remove(&n), Err(Error::NotFound { .. })));
    let e = Consumer::<u8, Ix1>::open(&n).unwrap_err().to_string();
    assert!(e.contains(&n), "message names the segment: {e}");
}

fn already_exists() {
    let n = name("ae");
    let _a = Producer::<u8, Ix1>::create(&n, 4, &Config::spsc()).unwrap();
    for replace in [false, true] {
        match Producer::<u8, Ix1>::create(&n, 4, &Config::spsc().replace_stale(replace)) {
            Err(Error::AlreadyExists { name, creator_pid }) => {
                assert_eq!(name, n);
                assert_eq!(creator_pid, Some(std::process::id()));
            }
            other => panic!("expected AlreadyExists, got {other:?}"),
        }
    }
}

/// Child: creates `name` (kept after exit) and exits.
/// Child: creates `name`, publishes one item nobody will read, and exits: an abandoned ring
/// (a finished one, with nothing unread, would simply be replaced).
fn create_and_exit(a: &[String]) {
    let mut p = Producer::<u8, Ix1>::create(&a[0], 4, &Config::spsc()).unwrap();
    p.claim().unwrap().publish();
    println!("{}", std::process::id());
    drop(p);
}

fn stale_segment() {
    let n = name("stale");
    let out = finish(spawn("create-and-exit", &[&n]), LONG);
    let child: u32 = String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    match Producer::<u16, Ix2>::create(&n, (2, 2), &Config::mpmc()) {
        Err(Error::Stale { name, creator_pid }) => {
            assert_eq!((name.as_str(), creator_pid), (n.as_str(), child));
        }
        other => panic!("expected Stale, got {other:?}"),
    }
    // Replacing never reuses the old layout: the new ring has the new type and shape.
    let p = Producer::<u16, Ix2>::create(&n, (2, 2), &Config::mpmc().replace_stale(true)).unwrap();
    assert_eq!(p.segment().dtype(), DType::U16);
    assert_eq!(p.segment().creator_pid(), std::process::id());
}

fn write_file(path: &str, len: u64, at: u64, bytes: &[u8]) {
    let mut f = FileOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .unwrap();
    if len > 0 {
        f.set_len(len).unwrap();
    }
    f.seek(SeekFrom::Start(at)).unwrap();
    f.write_all(bytes).unwrap();
}

fn foreign_segment() {
    let n = name("foreign");
    write_file(&shm_path(&n), 8192, 0, b"PNG\r\n....not ours");
    match Consumer::<u8, Ix1>::open(&n) {
        Err(Error::NotNdring { found, .. }) => {
            assert_eq!(found, u64::from_le_bytes(*b"PNG\r\n..."))
        }
        other => panic!("expected NotNdring, got {other:?}"),
    }
    ndring::remove(&n).unwrap();
}

/// A valid kept segment, for corrupting.
fn kept(tag: &str) -> String {
    let n = name(tag);
    drop(Producer::<u32, Ix2>::create(&n, (3, 5), &Config::mpmc().keep(true)).unwrap());
    n
}

fn other_version() {
    let n = kept("ver");
    write_file(&shm_path(&n), 0, 8, &7u32.to_le_bytes());
    match Consumer::<u32, Ix2>::open(&n) {
        Err(Error::Version {
            expected: ndring::layout::VERSION,
            found: 7,
            ..
        }) => {}
        other => panic!("expected Version, got {other:?}"),
    }
    ndring::remove(&n).unwrap();
}

fn corrupt_fields() {
    // (offset, bytes) of fields of the fixed header (see ARCHITECTURE.md).
    let cases: &[(u64, &[u8])] = &[
        (16, &9u32.to_le_bytes()),          // kind
        (20, &77u32.to_le_bytes()),         // dtype
        (24, &8u32.to_le_bytes()),          // elem_size
        (32, &12u32.to_le_bytes()),         // rank
        (36, &1u32.to_le_bytes()),          // slots
        (48, &u64::MAX.to_le_bytes()),      // shape[0]
        (56, &0u64.to_le_bytes()),          // shape[1]
        (112, &1u64.to_le_bytes()),         // payload_bytes
        (168, &(1u64 << 40).to_le_bytes()), // total_size
        (180, &4u32.to_le_bytes()),         // flags: an unknown bit
    ];
    for (i, (at, bytes)) in cases.iter().enumerate() {
        let n = kept(&format!("cor{i}"));
        write_file(&shm_path(&n), 0, *at, bytes);
        match Consumer::<u32, Ix2>::open(&n) {
            Err(Error::Corrupt { name, reason }) => {
                assert_eq!(name, n);
                assert!(!reason.is_empty());
            }
            other => panic!("case {i} (offset {at}): expected Corrupt, got {other:?}"),
        }
        ndring::remove(&n).unwrap();
    }
}

fn truncated() {
    for len in [100u64, 2000, 5000] {
        let n = kept(&format!("tr{len}"));
        FileOptions::new()
            .write(true)
            .open(shm_path(&n))
            .unwrap()
            .set_len(len)
            .unwrap();
        match Consumer::<u32, Ix2>::open(&n) {
            Err(Error::Corrupt { reason, .. }) => {
                assert!(reason.contains("bytes"), "{reason}")
            }
            other => panic!("len {len}: expected Corrupt, got {other:?}"),
        }
        ndring::remove(&n).unwrap();
    }
}

fn not_ready() {
    // What a creator killed after sizing the segment but before READY leaves behind.
    let n = name("nready");
    write_file(&shm_path(&n), 1 << 16, 0, &[0]);
    let fast = OpenOptions::default().ready_timeout(Duration::from_millis(50));
    match Consumer::<u8, Ix1>::open_with(&n, &fast) {
        Err(Error::NotReady { name, waited }) => {
            assert_eq!(
                (name.as_str(), waited),
                (n.as_str(), Duration::from_millis(50))
            )
        }
        other => panic!("expected NotReady, got {other:?}"),
    }
    let config = Config::spsc().ready_timeout(Duration::from_millis(50));
    assert!(matches!(
        Producer::<u8, Ix1>::create(&n, 4, &config),
        Err(Error::Stale { .. })
    ));
    let p = Producer::<u8, Ix1>::create(&n, 4, &config.replace_stale(true)).unwrap();
    assert_eq!(p.shape(), &[4]);
}

fn mismatches() {
    let n = name("mm");
    let _p = Producer::<f32, Ix3>::create(&n, (2, 3, 4), &Config::mpmc()).unwrap();
    match Consumer::<f64, Ix3>::open(&n) {
        Err(Error::TypeMismatch {
            expected: DType::F64,
            found: DType::F32,
        }) => {}
        other => panic!("expected TypeMismatch, got {other:?}"),
    }
    match Consumer::<f32, Ix2>::open(&n) {
        Err(Error::RankMismatch {
            expected: 2,
            found: 3,
        }) => {}
        other => panic!("expected RankMismatch, got {other:?}"),
    }
    match Consumer::<f32, Ix3>::open_shape(&n, (2, 3, 5)) {
        Err(Error::ShapeMismatch { expected, found }) => {
            assert_eq!((expected, found), (vec![2, 3, 5], vec![2, 3, 4]))
        }
        other => panic!("expected ShapeMismatch, got {other:?}"),
    }
    assert!(matches!(
        Consumer::<f32, Ix3>::open_or_create(&n, (9, 9, 9), &Config::mpmc()),
        Err(Error::ShapeMismatch { .. })
    ));
    match BroadcastWriter::<f32, Ix3>::open(&n) {
        Err(Error::KindMismatch {
            found: ndring::RingKind::Mpmc,
            ..
        }) => {}
        other => panic!("expected KindMismatch, got {:?}", other.map(|_| ())),
    }
    assert!(Consumer::<f32, IxDyn>::open(&n).is_ok());
}

fn untyped_open() {
    let n = name("untyped");
    let _p = Producer::<i16, Ix2>::create(&n, (7, 9), &Config::spsc().slots(5)).unwrap();
    let seg = Segment::open(&n, Duration::from_secs(1)).unwrap();
    assert_eq!(
        (seg.kind(), seg.dtype(), seg.shape(), seg.slot_count()),
        (ndring::RingKind::Spsc, DType::I16, &[7usize, 9][..], 5)
    );
    let c = Consumer::<i16, IxDyn>::from_segment(seg).unwrap();
    assert_eq!(c.shape(), &[7, 9]);
}

/// Child: holds the SPSC consumer role of `name`, prints its pid, waits to be killed.
fn hold_consumer(a: &[String]) {
    let _c = Consumer::<u8, Ix1>::open(&a[0]).unwrap();
    println!("ready");
    std::thread::sleep(Duration::from_secs(120));
}

fn role_takeover() {
    let n = name("takeover");
    let mut tx = Producer::<u8, Ix1>::create(&n, 1, &Config::spsc()).unwrap();
    let child = common::command("hold-consumer", &[&n])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    common::eventually(LONG, "child holds the consumer role", || {
        tx.peers().iter().any(|p| p.role == Role::Consumer)
    });
    match Consumer::<u8, Ix1>::open(&n) {
        Err(Error::RoleTaken {
            role: Role::Consumer,
            pid,
        }) => assert_eq!(pid, child.id()),
        other => panic!("expected RoleTaken, got {other:?}"),
    }
    let mut child = child;
    child.kill().unwrap();
    // A zombie is dead too: check before and after reaping.
    common::eventually(LONG, "peer seen dead", || {
        tx.peers()
            .iter()
            .any(|p| p.role == Role::Consumer && !p.alive)
    });
    child.wait().unwrap();
    tx.send(&ndarray::arr1(&[5])).unwrap();
    let mut rx = Consumer::<u8, Ix1>::open(&n).unwrap();
    assert_eq!(rx.recv().unwrap()[0], 5);
    assert_eq!(tx.segment().stats().role_takeovers, 1);
}

fn too_many_peers() {
    let n = name("tmp");
    let config = Config::mpmc().max_peers(3);
    let _a = Producer::<u8, Ix1>::create(&n, 4, &config).unwrap();
    let _b = Consumer::<u8, Ix1>::open(&n).unwrap();
    let _c = Consumer::<u8, Ix1>::open(&n).unwrap();
    match Producer::<u8, Ix1>::open(&n) {
        Err(Error::TooManyPeers {
            role: Role::Producer,
            max: 3,
        }) => {}
        other => panic!("expected TooManyPeers, got {other:?}"),
    }
}

/// Child (run as another user): opens `name`, prints the error's kind.
fn open_as_nobody(a: &[String]) {
    match Consumer::<u8, Ix1>::open(&a[0]) {
        Err(Error::PermissionDenied { name, op: "open" }) if name == a[0] => println!("denied"),
        other => println!("unexpected: {:?}", other.map(|_| ())),
    }
}

fn permission_denied() {
    let n = name("perm");
    let is_root = common::effective_uid() == 0;
    if is_root {
        // Root bypasses permission bits: ask a child running as `nobody`.
        let _p = Producer::<u8, Ix1>::create(&n, 4, &Config::spsc()).unwrap();
        let out = common::command("open-as-nobody", &[&n])
            .uid(65534)
            .gid(65534)
            .output()
            .unwrap();
        assert!(out.status.success());
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "denied");
    } else {
        let _p = Producer::<u8, Ix1>::create(&n, 4, &Config::spsc().mode(0)).unwrap();
        match Consumer::<u8, Ix1>::open(&n) {
            Err(Error::PermissionDenied { name, op: "open" }) => assert_eq!(name, n),
            other => panic!("expected PermissionDenied, got {other:?}"),
        }
    }
}

use std::os::unix::process::CommandExt;

fn no_space() {
    let n = name("nospace");
    // 2 slots of 1 TiB: more than any /dev/shm here.
    match Producer::<u8, Ix2>::create(&n, (1 << 20, 1 << 20), &Config::spsc().slots(2)) {
        Err(Error::NoSpace { name, needed }) => {
            assert_eq!(name, n);
            assert!(needed > 2 << 40);
        }
        other => panic!("expected NoSpace, got {other:?}"),
    }
    // Nothing is left behind.
    assert!(matches!(ndring::remove(&n), Err(Error::NotFound { .. })));
}

fn invalid_configs() {
    let n = name("cfg");
    for (i, config) in [
        Config::spsc().slots(1),
        Config::mpmc().slots(1 << 20),
        Config::spsc().user_meta_size(1 << 20),
        Config::broadcast().max_subscribers(10).slots(11),
        Config::broadcast(),
    ]
    .iter()
    .enumerate()
    {
        match Producer::<u8, Ix1>::create(&n, 4, config) {
            Err(Error::InvalidConfig(reason)) => assert!(!reason.is_empty()),
            other => panic!("config {i}: expected InvalidConfig, got {other:?}"),
        }
    }
    assert!(matches!(
        Producer::<u8, Ix1>::create(&n, 0, &Config::spsc()),
        Err(Error::InvalidConfig(_))
    ));
}

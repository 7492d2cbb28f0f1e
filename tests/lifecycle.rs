//! A stream's whole life across real processes: start orders, disconnects, the name's lifetime,
//! reuse of finished rings, a dead sleeper, symbolic links and read-only inspection.

mod common;

use std::os::unix::process::CommandExt;
use std::time::Duration;

use common::{name, trial};
use ndarray::Ix2;
use ndring::{Config, Consumer, DType, Error, Producer, RingKind, Role, Segment};

fn main() -> std::process::ExitCode {
    common::main(
        &[("inspect-read-only", inspect_read_only)],
        vec![
            trial("a_symbolic_link_in_dev_shm_is_refused", symlink_refused),
            trial(
                "another_user_inspects_a_0644_ring_read_only",
                read_only_inspection,
            ),
        ],
    )
}

fn shm_path(n: &str) -> String {
    format!("/dev/shm{n}")
}

fn symlink_refused() {
    let target = name("lnk-target");
    let link = name("lnk");
    let _p = Producer::<u8, ndarray::Ix1>::create(&target, 4, &Config::spsc()).unwrap();
    let _ = std::fs::remove_file(shm_path(&link));
    std::os::unix::fs::symlink(shm_path(&target), shm_path(&link)).unwrap();
    // Every way of opening refuses the link (O_NOFOLLOW), and none follows it to the target.
    let refused = |r: Result<(), Error>| match r {
        Err(Error::SymbolicLink { name }) => assert_eq!(name, link),
        other => panic!("expected SymbolicLink, got {other:?}"),
    };
    refused(Segment::open(&link, Duration::from_secs(1)).map(drop));
    refused(Segment::open_read_only(&link).map(drop));
    refused(Consumer::<u8, ndarray::Ix1>::open(&link).map(drop));
    // A create does not follow it either: the name is taken by the link.
    assert!(Producer::<u8, ndarray::Ix1>::create(&link, 4, &Config::spsc()).is_err());
    std::fs::remove_file(shm_path(&link)).unwrap();
    // The target was never touched through the link.
    assert!(
        Segment::open(&target, Duration::from_secs(1))
            .unwrap()
            .peers()
            .len()
            == 1
    );
}

/// Child: inspects `name` read-only and prints what it saw; also shows that a read-write open
/// is refused to this user.
fn inspect_read_only(a: &[String]) {
    let n = &a[0];
    match Segment::open(n, Duration::from_secs(1)) {
        Err(Error::PermissionDenied { .. }) => println!("rw denied"),
        other => println!("rw unexpected: {:?}", other.map(drop)),
    }
    let seg = Segment::open_read_only(n).expect("read-only open");
    let peers: Vec<String> = seg
        .peers()
        .iter()
        .map(|p| format!("{}:{}:{}", p.role, p.pid, p.alive))
        .collect();
    let pos = seg.positions();
    println!(
        "{} {} {:?} {} tail={} head={} abandoned={} peers={}",
        seg.kind(),
        seg.dtype(),
        seg.shape(),
        seg.slot_count(),
        pos.tail,
        pos.head,
        seg.stats().abandoned,
        peers.join(",")
    );
    assert!(matches!(
        Consumer::<u16, Ix2>::from_segment(seg),
        Err(Error::ReadOnly { .. })
    ));
}

fn read_only_inspection() {
    let n = name("ro");
    let is_root = rustix_uid() == 0;
    // Root bypasses permission bits, so the inspector is a child running as `nobody`; any other
    // user checks the same path on a ring it may read but not write (mode 0o444).
    let mode = if is_root { 0o644 } else { 0o444 };
    let mut tx = Producer::<u16, Ix2>::create(&n, (3, 5), &Config::mpmc().mode(mode)).unwrap();
    tx.claim().unwrap().publish();
    drop(tx.claim().unwrap()); // abandoned: counted
    let me = std::process::id();
    let expected =
        format!("an MPMC queue u16 [3, 5] 4 tail=2 head=0 abandoned=1 peers=producer:{me}:true");
    let out = if is_root {
        let out = common::command("inspect-read-only", &[&n])
            .uid(65534)
            .gid(65534)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    } else {
        println!("not root: inspecting a 0o444 ring as its owner instead of as `nobody`");
        let out = common::command("inspect-read-only", &[&n])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines, vec!["rw denied", expected.as_str()]);
    let _ = (DType::U16, RingKind::Mpmc, Role::Producer);
}

fn rustix_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    let path = std::env::temp_dir().join(format!("ndt-uid-{}", std::process::id()));
    std::fs::write(&path, b"").unwrap();
    let uid = std::fs::metadata(&path).unwrap().uid();
    std::fs::remove_file(&path).unwrap();
    uid
}

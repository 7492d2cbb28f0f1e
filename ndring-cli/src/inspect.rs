//! `ndring inspect NAME`: one ring in full.

use std::time::SystemTime;

use ndring::RingKind;
use ndring::inspect::{Inspector, PeerStatus, Probe};
use serde_json::json;

use crate::{Failure, fmt};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The ring (/cam0, cam0 or /dev/shm/cam0)
    name: String,
    /// Print a JSON object instead of text
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<(), Failure> {
    let name = fmt::ring_name(&args.name);
    let r = match Inspector::probe(&name).map_err(fmt::open_error)? {
        Probe::Ring(r) => r,
        Probe::Unfinished(u) => {
            if args.json {
                println!("{}", fmt::summary_json(&Probe::Unfinished(u)));
                return Ok(());
            }
            return Err(format!(
                "{name}: unfinished: its creator (pid {}, {}) never marked it ready",
                u.creator_pid,
                if u.creator_alive { "alive" } else { "dead" }
            ));
        }
    };
    if matches!(r.kind(), RingKind::Array | RingKind::Rpc) {
        return other_kind(&r, args.json);
    }
    let c = r.counters();
    let peers = r.peers();
    let l = r.layout();
    if args.json {
        let v = json!({
            "name": r.name(),
            "state": r.state().to_string(),
            "header": {
                "kind": fmt::kind(r.kind()),
                "dtype": r.dtype().name(),
                "shape": r.shape(),
                "slots": r.slot_count(),
                "user_meta": l.params.user_meta,
                "max_peers": l.params.max_peers,
                "timestamps": l.params.timestamps,
                "payload_bytes": l.payload_bytes,
                "payload_offset": l.payload_offset,
                "slot_stride": l.slot_stride,
                "index_offset": l.index_offset,
                "peers_offset": l.peers_offset,
                "slots_offset": l.slots_offset,
                "total_size": l.total_size,
                "creator_pid": r.creator_pid(),
                "creator_start_time_ticks": r.creator_start_time(),
            },
            "creator_alive": r.creator_alive(),
            "counters": {
                "published": c.published,
                "taken": c.taken,
                "backlog": c.backlog(),
                "closed": c.closed,
                "abandoned": c.stats.abandoned,
                "recovered_claims": c.stats.recovered_claims,
                "recovered_reads": c.stats.recovered_reads,
                "role_takeovers": c.stats.role_takeovers,
            },
            "sleepers": {
                "waiting_for_items": c.sleeping_for_items,
                "waiting_for_slots": c.sleeping_for_slots,
            },
            "peers": peers.iter().map(fmt::peer_json).collect::<Vec<_>>(),
        });
        println!("{v}");
        return Ok(());
    }
    println!(
        "{}: {} ring of {} {}, {} slots, {}",
        r.name(),
        fmt::kind(r.kind()),
        r.dtype().name(),
        fmt::shape(r.shape()),
        r.slot_count(),
        r.state()
    );
    let mut rows = vec![
        vec![
            "size".into(),
            format!(
                "{} ({} B: {} B per slot, {} B array, {} B user metadata; {} peer entries)",
                fmt::bytes(l.total_size as u64),
                l.total_size,
                l.slot_stride,
                l.payload_bytes,
                l.params.user_meta,
                l.params.max_peers
            ),
        ],
        vec![
            "timestamps".into(),
            if l.params.timestamps { "on" } else { "off" }.into(),
        ],
        vec![
            "creator".into(),
            format!(
                "pid {} ({})",
                r.creator_pid(),
                if r.creator_alive() { "alive" } else { "dead" }
            ),
        ],
    ];
    let counters = match c.taken {
        Some(t) => format!(
            "{} published, {} taken, backlog {}{}",
            c.published,
            t,
            c.backlog().unwrap_or(0),
            if c.closed { ", closed" } else { "" }
        ),
        None => format!(
            "{} frames published{}",
            c.published,
            if c.closed { ", closed" } else { "" }
        ),
    };
    rows.push(vec!["items".into(), counters]);
    rows.push(vec![
        "sleepers".into(),
        format!(
            "{} waiting for items, {} waiting for slots",
            c.sleeping_for_items, c.sleeping_for_slots
        ),
    ]);
    rows.push(vec![
        "events".into(),
        format!(
            "{} abandoned, {} recovered claims, {} recovered reads, {} role takeovers",
            c.stats.abandoned,
            c.stats.recovered_claims,
            c.stats.recovered_reads,
            c.stats.role_takeovers
        ),
    ]);
    for row in &mut rows {
        row[0] = format!("  {}", row[0]);
    }
    fmt::table(&rows);
    if peers.is_empty() {
        println!("peers: none attached");
        return Ok(());
    }
    println!("peers:");
    let mut rows = vec![
        [
            "  ENTRY", "ROLE", "PID", "PROGRAM", "ALIVE", "STARTED", "HOLDING", "LAG",
        ]
        .map(String::from)
        .to_vec(),
    ];
    let now = SystemTime::now();
    for p in &peers {
        let started = ndring::inspect::started_at(p.start_time).map_or("?".into(), |t| {
            let ago = now.duration_since(t).unwrap_or_default();
            format!("{} ({} ago)", fmt::utc(t), fmt::age(ago))
        });
        let holding = match (p.holding, p.reading) {
            (Some(pos), _) => format!("item {}", pos + 1),
            (_, Some(seq)) => format!("frame {seq}"),
            _ => "-".into(),
        };
        rows.push(vec![
            format!("  {}", p.entry),
            p.role.to_string(),
            p.pid.to_string(),
            p.program.clone().unwrap_or_else(|| "-".into()),
            if p.alive { "yes" } else { "no" }.into(),
            started,
            holding,
            p.lag.map_or("-".into(), |l| l.to_string()),
        ]);
    }
    fmt::table(&rows);
    Ok(())
}

/// A shared array (version, poison, the lock's holders by pid) or a request/reply segment (its
/// calls, its servers and clients).
fn other_kind(r: &Inspector, json_out: bool) -> Result<(), Failure> {
    let peers = r.peers();
    let array = r.array();
    let calls = r.calls();
    if json_out {
        let v = json!({
            "name": r.name(),
            "state": r.state().to_string(),
            "header": {
                "kind": fmt::kind(r.kind()),
                "dtype": r.dtype().name(),
                "shape": r.shape(),
                "slots": r.slot_count(),
                "total_size": r.size(),
                "creator_pid": r.creator_pid(),
                "creator_start_time_ticks": r.creator_start_time(),
            },
            "creator_alive": r.creator_alive(),
            "array": array.as_ref().map(fmt::array_json),
            "calls": calls.as_ref().map(fmt::calls_json),
            "peers": peers.iter().map(fmt::peer_json).collect::<Vec<_>>(),
        });
        println!("{v}");
        return Ok(());
    }
    let what = if array.is_some() {
        "shared array"
    } else {
        "request/reply segment, requests"
    };
    println!(
        "{}: {what} of {} {}, {}",
        r.name(),
        r.dtype().name(),
        fmt::shape(r.shape()),
        r.state()
    );
    let mut rows = vec![
        vec!["size".into(), fmt::bytes(r.size() as u64)],
        vec![
            "creator".into(),
            format!(
                "pid {} ({})",
                r.creator_pid(),
                if r.creator_alive() { "alive" } else { "dead" }
            ),
        ],
    ];
    if let Some(a) = &array {
        let pids = |v: &[(u32, u64)]| {
            if v.is_empty() {
                "none".to_string()
            } else {
                v.iter()
                    .map(|(pid, n)| format!("pid {pid} ({n})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        rows.push(vec!["version".into(), a.version.to_string()]);
        rows.push(vec![
            "poisoned".into(),
            if a.poisoned {
                "yes (a writer died holding the lock: the array may be half-written)"
            } else {
                "no"
            }
            .into(),
        ]);
        rows.push(vec![
            "writer".into(),
            a.exclusive.map_or("none".into(), |pid| {
                // A dead holder's tag stays in the word until someone recovers the lock.
                let alive = peers.iter().any(|p| p.pid == pid && p.alive);
                format!(
                    "pid {pid} (whole array{})",
                    if alive {
                        ""
                    } else {
                        ", dead: recovered at the next lock"
                    }
                )
            }),
        ]);
        rows.push(vec!["readers".into(), pids(&a.readers)]);
        rows.push(vec!["row writers".into(), pids(&a.range_writers)]);
    }
    if let Some(c) = &calls {
        rows.push(vec![
            "calls".into(),
            format!(
                "{} slots: {} free, {} filling, {} queued, {} serving, {} replied, {} cancelled, {} failed",
                r.slot_count(),
                c.free,
                c.filling,
                c.queued,
                c.serving,
                c.replied,
                c.cancelled,
                c.failed
            ),
        ]);
        rows.push(vec![
            "totals".into(),
            format!(
                "{} sent, {} replied, {} failed",
                c.sent_total, c.replied_total, c.failed_total
            ),
        ]);
    }
    for row in &mut rows {
        row[0] = format!("  {}", row[0]);
    }
    fmt::table(&rows);
    print_peers(&peers);
    Ok(())
}

/// The peer table, by role and pid.
fn print_peers(peers: &[PeerStatus]) {
    if peers.is_empty() {
        println!("peers: none attached");
        return;
    }
    println!("peers:");
    let mut rows = vec![
        ["  ENTRY", "ROLE", "PID", "PROGRAM", "ALIVE"]
            .map(String::from)
            .to_vec(),
    ];
    for p in peers {
        rows.push(vec![
            format!("  {}", p.entry),
            p.role.to_string(),
            p.pid.to_string(),
            p.program.clone().unwrap_or_else(|| "-".into()),
            if p.alive { "yes" } else { "no" }.into(),
        ]);
    }
    fmt::table(&rows);
}

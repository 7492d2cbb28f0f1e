//! What every command prints the same way: names, sizes, rates, shapes, the JSON of a ring.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ndring::inspect::ArrayStatus;
use ndring::inspect::{Inspector, PeerStatus, Probe, RingState};
use ndring::{CallCounts, Error, RingKind, Role};
use serde_json::{Value, json};

/// `cam0`, `/cam0` and `/dev/shm/cam0` all name the ring `/cam0`.
pub fn ring_name(arg: &str) -> String {
    let bare = arg
        .strip_prefix(ndring::inspect::SHM_DIR)
        .unwrap_or(arg)
        .trim_start_matches('/');
    format!("/{bare}")
}

/// Whether `name` matches any of `patterns` (shell-style `*` and `?`, written like ring names:
/// `cam*`, `/cam*`); no patterns match everything.
pub fn matches_any(name: &str, patterns: &[String]) -> bool {
    patterns.is_empty()
        || patterns.iter().any(|p| {
            let p: Vec<char> = ring_name(p).chars().collect();
            let n: Vec<char> = name.chars().collect();
            glob(&p, &n)
        })
}

fn glob(p: &[char], n: &[char]) -> bool {
    match (p.first(), n.first()) {
        (None, None) => true,
        (Some('*'), _) => glob(&p[1..], n) || (!n.is_empty() && glob(p, &n[1..])),
        (Some('?'), Some(_)) => glob(&p[1..], &n[1..]),
        (Some(a), Some(b)) if a == b => glob(&p[1..], &n[1..]),
        _ => false,
    }
}

/// The one-line message for a failure to open `name` for inspection.
pub fn open_error(e: Error) -> String {
    match e {
        Error::NotFound { name } => format!("{name}: no such ring (nothing named so in /dev/shm)"),
        Error::NotReady { name, .. } => {
            format!("{name}: its creator has not finished creating it (state unfinished)")
        }
        e => e.to_string(),
    }
}

/// Short kind names, as in `Config::spsc()`.
pub fn kind(k: RingKind) -> &'static str {
    match k {
        RingKind::Spsc => "spsc",
        RingKind::Mpmc => "mpmc",
        RingKind::Broadcast => "broadcast",
        RingKind::Array => "array",
        RingKind::Rpc => "rpc",
    }
}

/// `1080x1920x3`; `scalar` for rank 0.
pub fn shape(s: &[usize]) -> String {
    if s.is_empty() {
        return "scalar".into();
    }
    s.iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("x")
}

/// Decimal units, as `df -H` and the README: `24.9 MB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < UNITS.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// An items/s figure, short: `2371`, `17.8 M`.
pub fn rate(r: f64) -> String {
    if r >= 1e6 {
        format!("{:.1} M", r / 1e6)
    } else if r >= 1e4 {
        format!("{:.1} k", r / 1e3)
    } else {
        format!("{r:.0}")
    }
}

/// `2026-11-29 00:41:59 UTC` (civil date from days since the epoch, Howard Hinnant's algorithm).
pub fn utc(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// `3h 2m`, `12.3 s`.
pub fn age(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 86_400 {
        format!("{}d {}h", s / 86_400, s / 3600 % 24)
    } else if s >= 3600 {
        format!("{}h {}m", s / 3600, s / 60 % 60)
    } else if s >= 60 {
        format!("{}m {}s", s / 60, s % 60)
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// Prints rows as left-aligned columns separated by two spaces (the last column unpadded).
pub fn table(rows: &[Vec<String>]) {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for r in rows {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            if c + 1 == r.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  ", w = widths[c]));
            }
        }
        println!("{}", line.trim_end());
    }
}

/// The pids of live peers (and a live creator that is not attached), for "in use by ...".
/// `pid 123 (consumer)` for each peer.
pub fn peer_users(peers: &[PeerStatus]) -> Vec<String> {
    peers
        .iter()
        .map(|p| format!("pid {} ({})", p.pid, p.role))
        .collect()
}

pub fn users(p: &Probe) -> Vec<String> {
    match p {
        Probe::Ring(r) => {
            let live: Vec<PeerStatus> = r.peers().into_iter().filter(|p| p.alive).collect();
            let mut v = peer_users(&live);
            if v.is_empty() && r.creator_alive() {
                v.push(format!("pid {} (its creator)", r.creator_pid()));
            }
            v
        }
        Probe::Unfinished(u) if u.creator_alive => {
            vec![format!("pid {} (creating it)", u.creator_pid)]
        }
        Probe::Unfinished(_) => vec![],
    }
}

/// One ring as `ls --json` shows it.
pub fn summary_json(p: &Probe) -> Value {
    match p {
        Probe::Ring(r) => {
            let c = r.counters();
            let peers = r.peers();
            json!({
                "name": r.name(),
                "kind": kind(r.kind()),
                "dtype": r.dtype().name(),
                "shape": r.shape(),
                "slots": r.slot_count(),
                "size": r.size(),
                "state": r.state().to_string(),
                "creator_pid": r.creator_pid(),
                "creator_alive": r.creator_alive(),
                "peers": peers.len(),
                "peers_alive": peers.iter().filter(|p| p.alive).count(),
                "programs": programs(&peers),
                "published": c.published,
                "closed": c.closed,
                "array": r.array().map(|a| array_json(&a)),
                "calls": r.calls().map(|c| calls_json(&c)),
                "servers": count_role(&peers, Role::Server, r.kind()),
                "clients": count_role(&peers, Role::Client, r.kind()),
            })
        }
        Probe::Unfinished(u) => json!({
            "name": u.name,
            "kind": null, "dtype": null, "shape": null, "slots": null,
            "size": u.size,
            "state": RingState::Unfinished.to_string(),
            "creator_pid": (u.creator_pid != 0).then_some(u.creator_pid),
            "creator_alive": u.creator_alive,
            "peers": null, "peers_alive": null, "programs": null, "published": null, "closed": null,
            "array": null, "calls": null, "servers": null, "clients": null,
        }),
    }
}

/// One peer as `inspect --json` shows it.
pub fn peer_json(p: &PeerStatus) -> Value {
    json!({
        "entry": p.entry,
        "role": p.role.to_string(),
        "pid": p.pid,
        "alive": p.alive,
        "start_time_ticks": p.start_time,
        "started_unix_s": ndring::inspect::started_at(p.start_time)
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_secs()),
        "program": p.program,
        "holding": p.holding,
        "reading": p.reading,
        "lag": p.lag,
    })
}

/// The largest lag of a live broadcast subscriber, or a queue's backlog.
pub fn lag(r: &Inspector, backlog: Option<u64>) -> Option<u64> {
    backlog.or_else(|| {
        r.peers()
            .iter()
            .filter(|p| p.alive)
            .filter_map(|p| p.lag)
            .max()
    })
}

/// Live peers of `role` in a request/reply segment (`None` for other kinds).
fn count_role(peers: &[PeerStatus], role: Role, kind: RingKind) -> Option<usize> {
    (kind == RingKind::Rpc).then(|| peers.iter().filter(|p| p.alive && p.role == role).count())
}

/// The PEERS column: `2/3 alive`; for request/reply, the live servers and clients. Then the
/// live peers' programs: `2/2 alive: ndring-bridge, python3`.
pub fn peers_summary(r: &Inspector, peers: &[PeerStatus]) -> String {
    let alive = peers.iter().filter(|p| p.alive).count();
    let count = if r.kind() == RingKind::Rpc {
        let n = |role| count_role(peers, role, RingKind::Rpc).unwrap_or(0);
        format!(
            "{} server(s), {} client(s)",
            n(Role::Server),
            n(Role::Client)
        )
    } else {
        format!("{alive}/{} alive", peers.len())
    };
    match programs(peers).join(", ") {
        names if names.is_empty() => count,
        names => format!("{count}: {names}"),
    }
}

/// The live peers' program names, each once, in peer-table order: what is attached, as a
/// bridge (`ndring-bridge`) or a Python process (`python3`).
pub fn programs(peers: &[PeerStatus]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for name in peers.iter().filter_map(|p| p.program.as_ref()) {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    names
}

/// The PUBLISHED column: a ring's items published, an array's version (and poison), a
/// request/reply segment's requests sent and how they stand.
pub fn activity(r: &Inspector) -> String {
    if let Some(a) = r.array() {
        return format!(
            "version {}{}",
            a.version,
            if a.poisoned { ", poisoned" } else { "" }
        );
    }
    if let Some(c) = r.calls() {
        return calls_line(&c);
    }
    r.counters().published.to_string()
}

/// `5 sent, 4 replied, 0 failed; 1 queued, 0 serving`.
pub fn calls_line(c: &CallCounts) -> String {
    format!(
        "{} sent, {} replied, {} failed; {} queued, {} serving",
        c.sent_total, c.replied_total, c.failed_total, c.queued, c.serving
    )
}

/// A shared array's state as JSON.
pub fn array_json(a: &ArrayStatus) -> Value {
    let holders = |v: &[(u32, u64)]| {
        v.iter()
            .map(|&(pid, n)| json!({"pid": pid, "count": n}))
            .collect::<Vec<_>>()
    };
    json!({
        "version": a.version,
        "poisoned": a.poisoned,
        "exclusive_pid": a.exclusive,
        "readers": holders(&a.readers),
        "range_writers": holders(&a.range_writers),
    })
}

/// A request/reply segment's calls as JSON.
pub fn calls_json(c: &CallCounts) -> Value {
    json!({
        "free": c.free,
        "filling": c.filling,
        "queued": c.queued,
        "serving": c.serving,
        "replied": c.replied,
        "cancelled": c.cancelled,
        "failed": c.failed,
        "sent_total": c.sent_total,
        "replied_total": c.replied_total,
        "failed_total": c.failed_total,
    })
}

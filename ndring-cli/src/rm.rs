//! `ndring rm NAME…` and `ndring rm --stale`: unlink names, never one in use unless --force.
//! Processes that have a ring mapped keep it; only the name goes.

use ndring::Error;
use ndring::inspect::{Inspector, Probe, Removal};

use crate::{Failure, fmt};

#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("what").required(true).multiple(true).args(["names", "stale"])))]
pub struct Args {
    /// Rings to remove (/cam0, cam0 or /dev/shm/cam0); with --stale, patterns (* and ?) that
    /// limit which stale rings are removed
    names: Vec<String>,
    /// Remove every stale ring (creator and peers dead) and every unfinished one whose creator
    /// is dead
    #[arg(long)]
    stale: bool,
    /// Say what would be removed, remove nothing
    #[arg(long, short = 'n')]
    dry_run: bool,
    /// Remove even a ring in use by a live process, or one this version cannot read
    #[arg(long, short = 'f', conflicts_with = "stale")]
    force: bool,
}

pub fn run(args: Args) -> Result<(), Failure> {
    let verb = if args.dry_run {
        "would remove"
    } else {
        "removed"
    };
    if args.stale {
        let rings = Inspector::scan().map_err(|e| e.to_string())?.rings;
        let stale: Vec<&Probe> = rings
            .iter()
            .filter(|p| p.abandoned() && fmt::matches_any(p.name(), &args.names))
            .collect();
        if stale.is_empty() {
            println!("no stale rings");
        }
        let mut failed = 0;
        for p in stale {
            // A ring: only if still nobody is attached (checked again under its lock).
            let removed = match p {
                Probe::Ring(r) if !args.dry_run => remove_ring(r),
                _ => unlink(p.name(), args.dry_run),
            };
            match removed {
                Ok(()) => println!("{verb} {} ({})", p.name(), describe(p)),
                Err(e) => {
                    eprintln!("ndring: {e}");
                    failed += 1;
                }
            }
        }
        return check(failed);
    }
    let mut failed = 0;
    for arg in &args.names {
        let name = fmt::ring_name(arg);
        match remove_one(&name, args.force, args.dry_run) {
            Ok(what) => println!("{verb} {name} ({what})"),
            Err(e) => {
                eprintln!("ndring: {e}");
                failed += 1;
            }
        }
    }
    check(failed)
}

/// Each failure has been reported on its own line; the exit status says that one happened.
fn check(failed: usize) -> Result<(), Failure> {
    match failed {
        0 => Ok(()),
        _ => Err(String::new()),
    }
}

/// Removes `name` if nobody uses it (or `force`); says what it was.
fn remove_one(name: &str, force: bool, dry_run: bool) -> Result<String, Failure> {
    let what = match Inspector::probe(name) {
        Ok(p) => {
            let users = fmt::users(&p);
            if !users.is_empty() && !force {
                return Err(in_use(name, &users));
            }
            let what = describe(&p);
            if let (Probe::Ring(r), false, false) = (&p, force, dry_run) {
                // The check again, and the unlink, under the ring's lock: a process that
                // attaches meanwhile keeps its name.
                remove_ring(r)?;
                return Ok(what);
            }
            what
        }
        // Ours, but unreadable by this version: only on request.
        Err(e @ (Error::Version { .. } | Error::Corrupt { .. })) if !force => {
            return Err(format!("{e}; not removed (--force removes it anyway)"));
        }
        Err(Error::Version { found, .. }) => format!("format version {found}"),
        Err(Error::Corrupt { .. }) => "corrupt".into(),
        Err(e @ Error::NotNdring { .. }) => {
            return Err(format!("{e}; not removed (use rm on /dev/shm{name})"));
        }
        Err(e) => return Err(fmt::open_error(e)),
    };
    unlink(name, dry_run)?;
    Ok(what)
}

fn in_use(name: &str, users: &[String]) -> Failure {
    format!(
        "{name}: in use by {}; not removed (--force removes it anyway)",
        users.join(", ")
    )
}

/// Removes a ring's name unless a live process is attached, deciding under its lock.
fn remove_ring(r: &Inspector) -> Result<(), Failure> {
    match r.remove_unless_used() {
        Ok(Removal::Removed) => Ok(()),
        Ok(Removal::InUse(peers)) => Err(in_use(r.name(), &fmt::peer_users(&peers))),
        Ok(Removal::Replaced) => Err(format!(
            "{}: replaced by another ring meanwhile; not removed",
            r.name()
        )),
        Err(e) => Err(format!("cannot remove {}: {e}", r.name())),
    }
}

fn unlink(name: &str, dry_run: bool) -> Result<(), Failure> {
    if dry_run {
        return Ok(());
    }
    ndring::remove(name).map_err(|e| format!("cannot remove {name}: {e}"))
}

/// `stale spsc ring, 24.9 MB`.
fn describe(p: &Probe) -> String {
    match p {
        Probe::Ring(r) => {
            // Items nobody took are lost with the name: say so.
            let unread = match r.counters().backlog() {
                Some(1) => ", 1 unread item".into(),
                Some(n) if n > 1 => format!(", {n} unread items"),
                _ => String::new(),
            };
            let what = match r.kind() {
                ndring::RingKind::Array => "shared array".to_string(),
                ndring::RingKind::Rpc => "request/reply segment".to_string(),
                k => format!("{} ring", fmt::kind(k)),
            };
            format!(
                "{} {what} of {} {}, {}{unread}",
                r.state(),
                r.dtype().name(),
                fmt::shape(r.shape()),
                fmt::bytes(r.size() as u64)
            )
        }
        Probe::Unfinished(u) => format!("unfinished segment, {}", fmt::bytes(u.size)),
    }
}

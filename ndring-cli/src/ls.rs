//! `ndring ls`: every ring in /dev/shm, one line each.

use ndring::Error;
use ndring::inspect::{Inspector, Probe};

use crate::{Failure, fmt};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Only rings whose names match one of these patterns (* and ?, e.g. 'cam*')
    patterns: Vec<String>,
    /// Print a JSON array instead of a table
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<(), Failure> {
    let ndring::inspect::Scan { rings, skipped } = Inspector::scan().map_err(|e| e.to_string())?;
    let rings: Vec<Probe> = rings
        .into_iter()
        .filter(|p| fmt::matches_any(p.name(), &args.patterns))
        .collect();
    // Objects of other programs are skipped silently; ndring segments this version cannot read
    // (another format version, a corrupt header) are worth a line on stderr.
    let mine = |n: &String| fmt::matches_any(n, &args.patterns);
    let other_versions: Vec<_> = skipped
        .iter()
        .filter(|(n, e)| mine(n) && matches!(e, Error::Version { .. }))
        .collect();
    if let Some((
        name,
        Error::Version {
            found, expected, ..
        },
    )) = other_versions.first()
    {
        eprintln!(
            "ndring: {} segment(s) of another format version not shown (e.g. {name}: version {found}; \
             this ndring reads version {expected})",
            other_versions.len()
        );
    }
    for (name, e) in skipped.iter().filter(|(n, _)| mine(n)) {
        if matches!(e, Error::Corrupt { .. }) {
            eprintln!("ndring: skipped {name}: {e}");
        }
    }
    if args.json {
        let all: Vec<_> = rings.iter().map(fmt::summary_json).collect();
        println!("{}", serde_json::Value::Array(all));
        return Ok(());
    }
    if rings.is_empty() {
        println!("no rings in {}", ndring::inspect::SHM_DIR);
        // `ls` of nothing is not an error, as for ls(1) of an empty directory.
        return Ok(());
    }
    let mut rows = vec![
        [
            "NAME",
            "KIND",
            "DTYPE",
            "SHAPE",
            "SLOTS",
            "SIZE",
            "STATE",
            "CREATOR",
            "PEERS",
            "PUBLISHED",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for p in &rings {
        rows.push(row(p));
    }
    fmt::table(&rows);
    Ok(())
}

fn row(p: &Probe) -> Vec<String> {
    match p {
        Probe::Ring(r) => {
            let peers = r.peers();
            vec![
                r.name().into(),
                fmt::kind(r.kind()).into(),
                r.dtype().name().into(),
                fmt::shape(r.shape()),
                r.slot_count().to_string(),
                fmt::bytes(r.size() as u64),
                r.state().to_string(),
                pid(r.creator_pid(), r.creator_alive()),
                fmt::peers_summary(r, &peers),
                fmt::activity(r),
            ]
        }
        Probe::Unfinished(u) => {
            let mut v = vec![u.name.clone()];
            v.extend(["-"; 4].map(String::from));
            v.push(fmt::bytes(u.size));
            v.push(p.state().to_string());
            v.push(if u.creator_pid == 0 {
                "?".into()
            } else {
                pid(u.creator_pid, u.creator_alive)
            });
            v.extend(["-"; 2].map(String::from));
            v
        }
    }
}

/// `1234` if alive, `1234 (dead)` if not.
fn pid(pid: u32, alive: bool) -> String {
    if alive {
        pid.to_string()
    } else {
        format!("{pid} (dead)")
    }
}

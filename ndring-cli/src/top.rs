//! `ndring top` and `ndring hz NAME`: rates, lag and sleepers from the shared counters only.
//! Each refresh probes the rings afresh (a read-only mapping for a moment): nothing is
//! attached, no role is taken, and a ring removed and created again is noticed.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::time::{Duration, SystemTime};

use ndring::inspect::{Counters, Inspector, Probe};

use crate::{Failure, fmt};

#[derive(clap::Args, Debug)]
pub struct TopArgs {
    /// Only rings whose names match one of these patterns (* and ?, e.g. 'cam*')
    patterns: Vec<String>,
    #[command(flatten)]
    every: Every,
}

#[derive(clap::Args, Debug)]
pub struct HzArgs {
    /// The ring (/cam0, cam0 or /dev/shm/cam0)
    name: String,
    #[command(flatten)]
    every: Every,
}

#[derive(clap::Args, Debug)]
struct Every {
    /// Seconds between refreshes
    #[arg(short = 'd', long, value_name = "SECONDS", default_value = "1", value_parser = interval)]
    interval: Duration,
    /// Stop after N refreshes (default: run until interrupted)
    #[arg(short = 'n', long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    count: Option<u64>,
}

fn interval(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !(0.01..=86_400.0).contains(&secs) {
        return Err(format!("{secs} s is outside 0.01..=86400"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// One ring's counters at one instant, and which ring it was (a name can be reused).
struct Sample {
    identity: (u32, u64),
    counters: Counters,
}

fn sample(r: &Inspector) -> Sample {
    Sample {
        identity: (r.creator_pid(), r.creator_start_time()),
        counters: r.counters(),
    }
}

/// Items per second between two samples of the same ring, if they are of the same ring.
fn items_per_s(before: Option<&Sample>, now: &Sample) -> Option<f64> {
    let b = before.filter(|b| b.identity == now.identity)?;
    let dt = now.counters.at_ns.checked_sub(b.counters.at_ns)? as f64 / 1e9;
    let d = now.counters.published.checked_sub(b.counters.published)?;
    (dt > 0.0).then(|| d as f64 / dt)
}

fn refreshes(count: Option<u64>) -> impl Iterator<Item = u64> {
    (1..).take_while(move |i| count.is_none_or(|n| *i <= n))
}

pub fn run_top(args: TopArgs) -> Result<(), Failure> {
    let tty = std::io::stdout().is_terminal();
    let mut before: HashMap<String, Sample> = HashMap::new();
    let scan = || {
        Inspector::scan()
            .map(|s| s.rings)
            .map_err(|e| e.to_string())
            .map(|rings| {
                rings
                    .into_iter()
                    .filter(|p| fmt::matches_any(p.name(), &args.patterns))
                    .collect::<Vec<_>>()
            })
    };
    for p in scan()? {
        if let Probe::Ring(r) = &p {
            before.insert(r.name().into(), sample(r));
        }
    }
    for i in refreshes(args.every.count) {
        std::thread::sleep(args.every.interval);
        let rings = scan()?;
        let mut rows = vec![
            [
                "NAME",
                "KIND",
                "STATE",
                "ITEMS/S",
                "GB/S",
                "LAG",
                "SLEEPING",
                "PEERS",
                "PUBLISHED",
                "PROGRAMS",
            ]
            .map(String::from)
            .to_vec(),
        ];
        let mut now = HashMap::new();
        for p in &rings {
            let Probe::Ring(r) = p else {
                let mut row = vec![p.name().into(), "-".into(), p.state().to_string()];
                row.extend(["-"; 7].map(String::from));
                rows.push(row);
                continue;
            };
            let s = sample(r);
            let rate = items_per_s(before.get(r.name()), &s);
            let c = &s.counters;
            let peers = r.peers();
            rows.push(vec![
                r.name().into(),
                fmt::kind(r.kind()).into(),
                r.state().to_string(),
                rate.map_or("-".into(), fmt::rate),
                rate.map_or("-".into(), |x| {
                    format!("{:.2}", x * r.payload_bytes() as f64 / 1e9)
                }),
                fmt::lag(r, c.backlog()).map_or("-".into(), |l| l.to_string()),
                format!("{}/{}", c.sleeping_for_items, c.sleeping_for_slots),
                format!(
                    "{}/{}",
                    peers.iter().filter(|p| p.alive).count(),
                    peers.len()
                ),
                c.published.to_string(),
                match fmt::programs(&peers).join(", ") {
                    names if names.is_empty() => "-".into(),
                    names => names,
                },
            ]);
            now.insert(r.name().to_owned(), s);
        }
        before = now;
        if tty {
            print!("\x1b[H\x1b[2J");
        } else if i > 1 {
            println!();
        }
        println!(
            "ndring top - {}, {} ring{}, every {:.1} s (LAG: queue backlog or the slowest \
             subscriber's; SLEEPING: waiting for items/slots)",
            fmt::utc(SystemTime::now()),
            rings.len(),
            if rings.len() == 1 { "" } else { "s" },
            args.every.interval.as_secs_f64()
        );
        fmt::table(&rows);
        let _ = std::io::stdout().flush();
    }
    Ok(())
}

pub fn run_hz(args: HzArgs) -> Result<(), Failure> {
    let name = fmt::ring_name(&args.name);
    let open = || Inspector::open(&name).map_err(fmt::open_error);
    let mut before = sample(&open()?);
    for _ in refreshes(args.every.count) {
        std::thread::sleep(args.every.interval);
        let r = open()?;
        let now = sample(&r);
        let c = &now.counters;
        let rate = items_per_s(Some(&before), &now);
        let lag = fmt::lag(&r, c.backlog());
        println!(
            "{name}: {} items/s, {} GB/s, {} {}, sleeping {} for items {} for slots, {} published{}",
            rate.map_or("-".into(), |x| format!("{x:.1}")),
            rate.map_or("-".into(), |x| format!(
                "{:.2}",
                x * r.payload_bytes() as f64 / 1e9
            )),
            if c.taken.is_some() { "backlog" } else { "lag" },
            lag.map_or("-".into(), |l| l.to_string()),
            c.sleeping_for_items,
            c.sleeping_for_slots,
            c.published,
            if c.closed { ", closed" } else { "" },
        );
        let _ = std::io::stdout().flush();
        before = now;
    }
    Ok(())
}

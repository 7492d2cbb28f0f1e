//! `ndring-bridge out NAME KEY` / `ndring-bridge in KEY NAME`: a ring on one host, a ring on
//! another, Zenoh between.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use ndring_zenoh::{InOptions, Mode, OutOptions, SessionOptions};

#[derive(Parser)]
#[command(version, about = "Bridge ndring rings across machines over Zenoh")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Print the counters every SECONDS (also with RUST_LOG quiet).
    #[arg(long, global = true, value_name = "SECONDS")]
    stats: Option<f64>,
}

#[derive(Subcommand)]
enum Command {
    /// Read ring NAME on this host and publish its frames on key expression KEY.
    Out {
        /// The ring (e.g. /cam0).
        name: String,
        /// The Zenoh key expression (e.g. lab/cam0).
        key: String,
        #[command(flatten)]
        zenoh: ZenohArgs,
        /// Copy frames into a Zenoh shared-memory pool of this many MiB (a subscriber on the
        /// same host then gets a reference instead of a copy).
        #[arg(long, value_name = "MIB", default_value_t = 0)]
        shm_pool_mib: usize,
    },
    /// Subscribe to key expression KEY and fill ring NAME on this host (created like the source
    /// if absent; an existing ring must have the same element type and shape).
    In {
        /// The Zenoh key expression.
        key: String,
        /// The ring.
        name: String,
        #[command(flatten)]
        zenoh: ZenohArgs,
        /// Keep running after the source's end of stream.
        #[arg(long)]
        keep_running: bool,
        /// Keep the ring's name when the bridge ends.
        #[arg(long)]
        keep_ring: bool,
    },
}

#[derive(Args)]
struct ZenohArgs {
    /// A Zenoh configuration file (JSON5); the options below override it.
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
    /// Session mode.
    #[arg(long, value_enum)]
    mode: Option<ModeArg>,
    /// Endpoint to connect to (repeatable), e.g. tcp/10.0.0.2:7447.
    #[arg(long, short = 'e', value_name = "ENDPOINT")]
    connect: Vec<String>,
    /// Endpoint to listen on (repeatable), e.g. tcp/0.0.0.0:7447.
    #[arg(long, short = 'l', value_name = "ENDPOINT")]
    listen: Vec<String>,
    /// Multicast scouting (default: off unless the config file turns it on).
    #[arg(long, value_name = "BOOL")]
    multicast_scouting: Option<bool>,
    /// Zenoh's shared-memory transport to peers on the same host.
    #[arg(long, value_name = "BOOL")]
    shared_memory: Option<bool>,
}

#[derive(Clone, Copy, ValueEnum)]
enum ModeArg {
    Peer,
    Client,
}

impl ZenohArgs {
    fn options(self) -> SessionOptions {
        SessionOptions {
            config_file: self.config,
            mode: self.mode.map(|m| match m {
                ModeArg::Peer => Mode::Peer,
                ModeArg::Client => Mode::Client,
            }),
            connect: self.connect,
            listen: self.listen,
            multicast_scouting: self.multicast_scouting,
            shared_memory: self.shared_memory,
        }
    }
}

/// Log lines to stderr, filtered by `RUST_LOG` (default: this bridge's at info, Zenoh's
/// warnings); `--stats` lines whatever `RUST_LOG` says.
fn init_logging(stats: bool) {
    use tracing_subscriber::EnvFilter;
    let mut filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("warn,ndring_zenoh=info,ndring_bridge=info"));
    if stats {
        if let Ok(d) = "ndring_bridge::stats=info".parse() {
            filter = filter.add_directive(d);
        }
    }
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// A flag SIGTERM and SIGINT set: the bridge then stops as at the end of its stream and prints
/// its counters.
fn stop_on_signals() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        if let Err(e) = signal_hook::flag::register(signal, stop.clone()) {
            tracing::warn!("signal {signal} not handled: {e}");
        }
    }
    stop
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.stats.is_some());
    let stop = Some(stop_on_signals());
    let stats_every = cli.stats.filter(|s| *s > 0.0).map(Duration::from_secs_f64);
    let result = match cli.command {
        Command::Out {
            name,
            key,
            zenoh,
            shm_pool_mib,
        } => zenoh.options().open().and_then(|session| {
            let options = OutOptions {
                shm_pool_bytes: shm_pool_mib << 20,
                stop,
                stats_every,
                ..OutOptions::default()
            };
            let s = ndring_zenoh::bridge_out(&session, &name, &key, &options)?;
            println!(
                "out {name} -> {key}: frames={} bytes={} dropped={} acked={} resent={} unacked={} link_lost={}",
                s.frames, s.bytes, s.dropped, s.acked, s.resent, s.unacked, s.link_lost
            );
            Ok(())
        }),
        Command::In {
            key,
            name,
            zenoh,
            keep_running,
            keep_ring,
        } => zenoh.options().open().and_then(|session| {
            let options = InOptions {
                keep_running,
                keep_ring,
                stop,
                stats_every,
            };
            let s = ndring_zenoh::bridge_in(&session, &key, &name, &options)?;
            println!(
                "in {key} -> {name}: frames={} gaps={} late={} restarts={} duplicates={} corrupt={} resumed={} producer_gone={} first={} last={} shm={}",
                s.frames, s.gaps, s.late, s.restarts, s.duplicates, s.corrupt, s.resumed, s.producer_gone, s.first_seq, s.last_seq, s.shm_frames
            );
            Ok(())
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ndring-bridge: {e}");
            ExitCode::FAILURE
        }
    }
}

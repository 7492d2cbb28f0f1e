//! `ndring`: see, watch and clean the rings of a machine.
//!
//! Everything here reads rings through `ndring::inspect` (a read-only mapping): no command
//! attaches, takes a role or changes a ring; `rm` only unlinks names.

mod fmt;
mod inspect;
mod ls;
mod peek;
mod rm;
mod top;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// See, watch and clean the ndring rings of this machine (the segments in /dev/shm).
#[derive(Parser, Debug)]
#[command(name = "ndring", version)]
#[command(after_help = "Ring names may be given as /cam0, cam0 or /dev/shm/cam0.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// List every ring: kind, element type, shape, size, state, peers, items published
    #[command(visible_alias = "list")]
    Ls(ls::Args),
    /// Show one ring in full: header, peers, counters, sleepers, lag
    Inspect(inspect::Args),
    /// Watch every ring's rate, lag and sleepers, refreshed like top
    Top(top::TopArgs),
    /// Watch one ring's rate, lag and sleepers, one line per interval
    Hz(top::HzArgs),
    /// Remove rings by name, or every stale ring (never one in use, unless --force)
    Rm(rm::Args),
    /// Copy a ring's newest item to a .npy (or .png) file, without taking it
    Peek(peek::Args),
}

/// A command's failure: one line for the user, with the cause (empty: already reported).
pub type Failure = String;

fn main() -> ExitCode {
    // `ndring ls | head`: a closed stdout ends the command quietly, as in ripgrep, instead of
    // the panic of `println!`.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.contains("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(0);
        }
        default_hook(info);
    }));
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Ls(a) => ls::run(a),
        Command::Inspect(a) => inspect::run(a),
        Command::Top(a) => top::run_top(a),
        Command::Hz(a) => top::run_hz(a),
        Command::Rm(a) => rm::run(a),
        Command::Peek(a) => peek::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("ndring: {message}");
            }
            ExitCode::FAILURE
        }
    }
}

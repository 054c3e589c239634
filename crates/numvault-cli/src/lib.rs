//! The `numvault` command: inspect, verify, audit, import and export stores.
//!
//! This library is the whole command; `src/main.rs` (the Rust binary) calls
//! [`run`]. The binary ships to Python users as the `numvault-cli` wheel
//! (pyproject.toml beside Cargo.toml; `python -m numvault` runs it).
//!
//! Exit status: 0 success; 1 the command ran and found problems (damage,
//! a broken hash chain, a source that failed to import); 2 usage error;
//! 3 the command could not run (store missing or locked, I/O error).
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod bench;
pub mod formats;
mod import;
mod inspect;
mod out;

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub use out::{Fail, Out};

const AFTER_HELP: &str = "\
Exit status: 0 success; 1 problems found (damage, broken hash chain, failed sources);
2 usage error; 3 could not run (store missing or locked, I/O error).
Every verb that reports accepts --json: one JSON document on standard output.
Progress bars go to standard error, only when it is a terminal.";

#[derive(Parser, Debug)]
#[command(
    name = "numvault",
    version = concat!(env!("CARGO_PKG_VERSION"), " (format version 1)"),
    about = "Inspect, verify, audit, import and export numvault array stores.",
    after_help = AFTER_HELP,
    propagate_version = true
)]
struct Cli {
    /// No progress bars.
    #[arg(long, short, global = true)]
    quiet: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

/// The store directory argument and the --json flag shared by most verbs.
#[derive(Args, Debug, Clone)]
pub(crate) struct Common {
    /// The store directory.
    pub store: PathBuf,
    /// Print one JSON document instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HashAlgo {
    Xxh3,
    Blake3,
    Sha256,
}

impl HashAlgo {
    pub fn name(self) -> &'static str {
        match self {
            HashAlgo::Xxh3 => "xxh3",
            HashAlgo::Blake3 => "blake3",
            HashAlgo::Sha256 => "sha256",
        }
    }
    pub fn from_name(s: &str) -> Option<HashAlgo> {
        [HashAlgo::Xxh3, HashAlgo::Blake3, HashAlgo::Sha256]
            .into_iter()
            .find(|a| a.name() == s)
    }
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Format version, arrays (shape, dtype, dead rows, bytes on disk, last
    /// change), log and history state, totals.
    Info {
        #[command(flatten)]
        c: Common,
    },
    /// List arrays with shape and dtype.
    Ls {
        #[command(flatten)]
        c: Common,
        /// Only arrays whose name starts with this prefix.
        #[arg(long)]
        prefix: Option<String>,
    },
    /// Print rows of an array.
    Show {
        #[command(flatten)]
        c: Common,
        /// The array.
        name: String,
        /// Rows to print as START:STOP (Python slice; negatives count from the
        /// end; either side may be empty). Default: the first 10.
        #[arg(long, allow_hyphen_values = true)]
        rows: Option<String>,
    },
    /// Check every data chunk, every log record and the hash chain.
    Verify {
        #[command(flatten)]
        c: Common,
        /// Only the MANIFEST, the log and the hash chain (no data chunks).
        #[arg(long)]
        quick: bool,
    },
    /// The commit history (time, operation, arrays, rows, record hash),
    /// checking the hash chain as it goes.
    Log {
        #[command(flatten)]
        c: Common,
        /// Only commits after this: a sequence number (e.g. 120), a time
        /// (2026-11-21T10:00:00Z, 2026-11-21 10:00:00) or an age (90m, 2h, 3days).
        #[arg(long)]
        since: Option<String>,
        /// Only the newest N commits (after --since).
        #[arg(long)]
        last: Option<usize>,
    },
    /// Reclaim space from deleted and replaced rows; reports bytes freed.
    Compact {
        #[command(flatten)]
        c: Common,
        /// Arrays to compact (default: every array with dead rows).
        names: Vec<String>,
    },
    /// Import .npy, .npz, .csv and .parquet files (or directories of them),
    /// skipping sources unchanged since their last import, or a NumPack
    /// 0.5-0.7 store (a directory holding metadata.npkm; --from numpack).
    Import(import::ImportArgs),
    /// Which imported sources changed, appeared or disappeared since import.
    Status(import::StatusArgs),
    /// Write an array to a .npy, .csv or .parquet file.
    Export {
        #[command(flatten)]
        c: Common,
        /// The array.
        name: String,
        /// Output file; the extension picks the format (.npy, .csv, .parquet).
        #[arg(long)]
        to: PathBuf,
        /// Replace FILE if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Quick self-benchmark on generated data.
    Bench(bench::BenchArgs),
}

/// Run the command with `args` (including the program name); returns the
/// process exit status.
pub fn run<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            // --help / --version are "errors" that exit 0.
            let code = e.exit_code();
            let _ = e.print();
            return code;
        }
    };
    let json = match &cli.cmd {
        Cmd::Info { c }
        | Cmd::Ls { c, .. }
        | Cmd::Show { c, .. }
        | Cmd::Verify { c, .. }
        | Cmd::Log { c, .. }
        | Cmd::Compact { c, .. }
        | Cmd::Export { c, .. } => c.json,
        Cmd::Import(a) => a.c.json,
        Cmd::Status(a) => a.c.json,
        Cmd::Bench(a) => a.json,
    };
    let out = Out::new(json, cli.quiet);
    let r = match cli.cmd {
        Cmd::Info { c } => inspect::info(&out, &c),
        Cmd::Ls { c, prefix } => inspect::ls(&out, &c, prefix.as_deref()),
        Cmd::Show { c, name, rows } => inspect::show(&out, &c, &name, rows.as_deref()),
        Cmd::Verify { c, quick } => inspect::verify(&out, &c, quick),
        Cmd::Log { c, since, last } => inspect::log(&out, &c, since.as_deref(), last),
        Cmd::Compact { c, names } => inspect::compact(&out, &c, &names),
        Cmd::Export { c, name, to, force } => inspect::export(&out, &c, &name, &to, force),
        Cmd::Import(a) => import::import(&out, &a),
        Cmd::Status(a) => import::status(&out, &a),
        Cmd::Bench(a) => bench::bench(&out, &a),
    };
    out.finish(r)
}

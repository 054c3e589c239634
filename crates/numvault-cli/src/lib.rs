//! The `numvault` command: inspect, verify, audit, import and export stores,
//! and take, compare, restore and delete their versions.
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
mod versions;

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub use out::{Fail, Out};

const AFTER_HELP: &str = "\
Versions (format 2 stores): `snapshot` pins the current state as a version (an id, and
an optional tag); `versions` lists them, `diff` compares them, `restore` puts arrays back,
`delete-snapshot` deletes one and `gc` frees the space nothing keeps any more.
info, ls, show, verify and export read a version with --version ID|TAG (read-only).
A format-1 store gets versions with `numvault upgrade STORE`.

Exit status: 0 success; 1 problems found (damage, broken hash chain, failed sources);
2 usage error (also: no such array or version); 3 could not run (store missing or locked,
I/O error, store needs `numvault upgrade`).
Every verb that reports accepts --json: one JSON document on standard output.
Progress bars go to standard error, only when it is a terminal.";

/// `numvault --version`: the program's version and the newest store format
/// it writes (a unit test keeps the number equal to the engine's).
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (format version 2; opens and upgrades version 1)"
);

#[derive(Parser, Debug)]
#[command(
    name = "numvault",
    version = VERSION,
    about = "Inspect, verify, audit, import and export numvault array stores; take, \
             compare and restore their versions.",
    after_help = AFTER_HELP,
    disable_version_flag = true
)]
struct Cli {
    /// Print the program's version (verbs that read a store take
    /// `--version V` for the store's version).
    #[arg(short = 'V', long = "version", action = clap::ArgAction::Version)]
    program_version: Option<bool>,
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

/// `--version V` of the reading verbs. (The program's own version is
/// `numvault --version`; subcommands do not repeat it, so the name is free
/// here.)
#[derive(Args, Debug, Clone, Default)]
pub(crate) struct At {
    /// Read version V of the store (its id, as `numvault versions` lists it,
    /// or its tag) instead of the current state; read-only.
    #[arg(long = "version", id = "at", value_name = "V")]
    pub at: Option<String>,
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
    /// Format version, number of versions, arrays (shape, dtype, dead rows,
    /// bytes on disk, last change), log and history state, totals.
    Info {
        #[command(flatten)]
        c: Common,
        #[command(flatten)]
        at: At,
    },
    /// List arrays with shape and dtype.
    Ls {
        #[command(flatten)]
        c: Common,
        #[command(flatten)]
        at: At,
        /// Only arrays whose name starts with this prefix.
        #[arg(long)]
        prefix: Option<String>,
    },
    /// Print rows of an array.
    Show {
        #[command(flatten)]
        c: Common,
        #[command(flatten)]
        at: At,
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
        #[command(flatten)]
        at: At,
        /// Only the MANIFEST, the log and the hash chain (no data chunks).
        #[arg(long)]
        quick: bool,
    },
    /// The commit history (time, operation, arrays, rows, record hash; also
    /// snapshots, snapshot deletions and restores), checking the hash chain
    /// as it goes.
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
        #[command(flatten)]
        at: At,
        /// The array.
        name: String,
        /// Output file; the extension picks the format (.npy, .csv, .parquet).
        #[arg(long)]
        to: PathBuf,
        /// Replace FILE if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Pin the current state as a version; prints its id. Costs one log
    /// record whatever the data's size (format 2).
    Snapshot {
        #[command(flatten)]
        c: Common,
        /// A name for the version, unique among the store's versions (the
        /// rules of array names). A tag made only of digits is reached with
        /// --version only when no version has that id.
        #[arg(long)]
        tag: Option<String>,
    },
    /// List the versions: id, tag, time, number of arrays, and the bytes of
    /// data only that version keeps (what deleting it would free).
    Versions {
        #[command(flatten)]
        c: Common,
        /// Only the versions in which this array changed (was created,
        /// changed or dropped since the version before).
        array: Option<String>,
    },
    /// What changed from version A to version B (default: the current
    /// state), per array, with row ranges; read from metadata, no data is
    /// read.
    ///
    /// Kinds: added, dropped, renamed, retyped (dtype or row shape),
    /// rewritten (saved anew or compacted: rows unknown), modified (rows
    /// deleted, appended, replaced). Row ranges are half-open START..STOP:
    /// deleted rows in A's numbering, appended and replaced rows in B's.
    Diff {
        #[command(flatten)]
        c: Common,
        /// The older version (an id or a tag).
        #[arg(value_name = "A")]
        a: String,
        /// The newer version; omitted: the current state.
        #[arg(value_name = "B")]
        b: Option<String>,
    },
    /// Put arrays back as they were in a version, in one atomic commit,
    /// without copying data. Without ARRAY names every array is restored and
    /// the arrays the version does not have are dropped.
    Restore {
        #[command(flatten)]
        c: Common,
        /// The version (an id or a tag).
        #[arg(value_name = "VERSION")]
        v: String,
        /// Restore only these arrays (the others are left as they are).
        #[arg(value_name = "ARRAY")]
        names: Vec<String>,
    },
    /// Delete a version (made by `snapshot`). Its data stays on disk until
    /// `numvault gc` frees what no array or other version keeps.
    DeleteSnapshot {
        #[command(flatten)]
        c: Common,
        /// The version (an id or a tag).
        #[arg(value_name = "VERSION")]
        v: String,
    },
    /// Free the data files and version files that deleted versions, drops and
    /// overwrites left behind (a checkpoint); prints the bytes freed.
    Gc {
        #[command(flatten)]
        c: Common,
    },
    /// Upgrade a format-1 store to format 2 (needed for versions), atomically;
    /// says whether it did. Older numvault releases cannot open an upgraded
    /// store.
    Upgrade {
        #[command(flatten)]
        c: Common,
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
        Cmd::Info { c, .. }
        | Cmd::Ls { c, .. }
        | Cmd::Show { c, .. }
        | Cmd::Verify { c, .. }
        | Cmd::Log { c, .. }
        | Cmd::Compact { c, .. }
        | Cmd::Export { c, .. }
        | Cmd::Snapshot { c, .. }
        | Cmd::Versions { c, .. }
        | Cmd::Diff { c, .. }
        | Cmd::Restore { c, .. }
        | Cmd::DeleteSnapshot { c, .. }
        | Cmd::Gc { c }
        | Cmd::Upgrade { c } => c.json,
        Cmd::Import(a) => a.c.json,
        Cmd::Status(a) => a.c.json,
        Cmd::Bench(a) => a.json,
    };
    let out = Out::new(json, cli.quiet);
    let r = match cli.cmd {
        Cmd::Info { c, at } => inspect::info(&out, &c, &at),
        Cmd::Ls { c, at, prefix } => inspect::ls(&out, &c, &at, prefix.as_deref()),
        Cmd::Show { c, at, name, rows } => inspect::show(&out, &c, &at, &name, rows.as_deref()),
        Cmd::Verify { c, at, quick } => inspect::verify(&out, &c, &at, quick),
        Cmd::Log { c, since, last } => inspect::log(&out, &c, since.as_deref(), last),
        Cmd::Compact { c, names } => inspect::compact(&out, &c, &names),
        Cmd::Export {
            c,
            at,
            name,
            to,
            force,
        } => inspect::export(&out, &c, &at, &name, &to, force),
        Cmd::Import(a) => import::import(&out, &a),
        Cmd::Status(a) => import::status(&out, &a),
        Cmd::Bench(a) => bench::bench(&out, &a),
        Cmd::Snapshot { c, tag } => versions::snapshot(&out, &c, tag.as_deref()),
        Cmd::Versions { c, array } => versions::versions(&out, &c, array.as_deref()),
        Cmd::Diff { c, a, b } => versions::diff(&out, &c, &a, b.as_deref()),
        Cmd::Restore { c, v, names } => versions::restore(&out, &c, &v, &names),
        Cmd::DeleteSnapshot { c, v } => versions::delete_snapshot(&out, &c, &v),
        Cmd::Gc { c } => versions::gc(&out, &c),
        Cmd::Upgrade { c } => versions::upgrade(&out, &c),
    };
    out.finish(r)
}

#[cfg(test)]
mod tests;

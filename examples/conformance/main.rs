//! Runs conformance case files (DESIGN §5) against the crate.
//!
//! ```text
//! cargo run --example conformance -- PATH...
//! ```
//!
//! Each PATH is a case file or a folder of `*.json` case files. Prints one
//! line per failing case and ends with `N passed, M failed`. Exits 0 when all
//! pass, 1 when any fails, 2 when a file cannot be read or is not a case file.

mod runner;

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let paths: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    ExitCode::from(runner::run(
        &paths,
        &mut std::io::stdout(),
        &mut std::io::stderr(),
    ))
}

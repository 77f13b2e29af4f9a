//! The operator tool `scope-policy` (`--features cli`), tested as a process.
//!
//! - `commands`: every command on the policies of `tests/cli/policies/`,
//!   both output forms and every exit code, against snapshot files in
//!   `tests/cli/snapshots/` (plain text, reviewed by a person in the diff of
//!   the pull request that changes them; `UPDATE_SNAPSHOTS=1 cargo test
//!   --features cli --test cli` rewrites them).
//! - `lints`: every lint, on a policy that triggers it and one that does not
//!   (`tests/cli/lints/NAME.json`, `NAME-ok.json`).
//! - `diff_property`: `diff P P` is empty, reordering changes nothing, and
//!   `diff P Q` reports a widening whenever a generated request is granted
//!   more under `Q` than under `P`.

mod commands;
mod diff_property;
mod lints;

use std::path::{Path, PathBuf};
use std::process::Command;

/// What one run of the binary printed and how it ended.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `scope-policy ARGS` in the package root (so paths in the output are relative).
pub fn run(args: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_scope-policy"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the binary runs");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs the binary and parses its stdout as JSON.
pub fn run_json(args: &[&str]) -> (i32, serde_json::Value) {
    let run = run(args);
    let value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("{args:?} prints JSON ({e}): {}\n{}", run.stdout, run.stderr));
    (run.code, value)
}

fn snapshot_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/cli/snapshots")
        .join(format!("{name}.txt"))
}

/// The snapshot text of a run: the command line, the exit code, stdout and stderr.
fn render(args: &[&str], run: &Run) -> String {
    let line: Vec<String> = args
        .iter()
        .map(|arg| {
            if arg.is_empty() || arg.contains([' ', '"', '*']) {
                format!("'{arg}'")
            } else {
                (*arg).to_owned()
            }
        })
        .collect();
    format!(
        "$ scope-policy {}\nexit {}\n--- stdout\n{}--- stderr\n{}",
        line.join(" "),
        run.code,
        run.stdout,
        run.stderr
    )
}

/// Runs the binary and compares with the snapshot `name`; returns the
/// difference, if any. `UPDATE_SNAPSHOTS=1` writes the snapshot instead.
pub fn check_snapshot(name: &str, args: &[&str], exit: i32) -> Option<String> {
    let run = run(args);
    let actual = render(args, &run);
    let path = snapshot_path(name);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().expect("a folder")).expect("the snapshot folder");
        std::fs::write(&path, &actual).expect("the snapshot is written");
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    let mut problems = Vec::new();
    if run.code != exit {
        problems.push(format!("exit {} instead of {exit}", run.code));
    }
    if expected != actual {
        let first = expected
            .lines()
            .zip(actual.lines())
            .position(|(e, a)| e != a)
            .unwrap_or_else(|| expected.lines().count().min(actual.lines().count()));
        problems.push(format!(
            "output differs from {} from line {} (UPDATE_SNAPSHOTS=1 rewrites it):\n{actual}",
            path.display(),
            first + 1
        ));
    }
    (!problems.is_empty()).then(|| format!("{name}: {}", problems.join("; ")))
}

/// Checks every row of a snapshot table and fails once with every difference.
#[track_caller]
pub fn check_table(rows: &[(&str, &[&str], i32)]) {
    let failures: Vec<String> = rows
        .iter()
        .filter_map(|(name, args, exit)| check_snapshot(name, args, *exit))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

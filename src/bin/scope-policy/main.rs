//! `scope-policy`: the operator's tool for a scope policy kept in a JSON or
//! TOML file. `check` builds and lints policies, `explain` shows a decision
//! with its provenance, `who` says who can obtain what, and `diff` says
//! what a change to the policy widens or narrows.
//!
//! Every command prints sentences for people by default and one JSON
//! document with `--json`. Exit codes: 0 ok, 1 findings, 2 unusable input.
//!
//! Layout: this file parses the command line and dispatches; `source` reads
//! a policy file and locates document paths in its text; `reach` asks the
//! decision what clients can obtain (shared by `lint`, `who` and `diff`);
//! one file per command.

mod check;
mod diff;
mod explain;
mod lint;
mod reach;
mod source;
mod who;

use std::io::Write;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::source::{Format, ReadOptions};

const EXIT_CODES: &str = "\
Exit codes:
  0  ok: nothing to report (check: no error, and no warning under --deny-warnings)
  1  findings: check found errors (or warnings under --deny-warnings); explain: the request
     is refused or a scope is denied; who: nobody obtains it; diff: --fail-on-widening and
     something widens
  2  unusable input: a file cannot be read, has no known format, or (explain, who, diff)
     holds a policy that does not build; or the command line is wrong";

/// The operator's tool for OAuth 2.0 / OpenID Connect scope policies.
///
/// Reads a policy as JSON or TOML (by file extension, or --format), prints
/// sentences for people, or one JSON document with --json.
#[derive(Debug, Parser)]
#[command(name = "scope-policy", version, after_help = EXIT_CODES, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    global: Global,
}

/// Options every command takes.
#[derive(Debug, Args)]
struct Global {
    /// Print one JSON document instead of sentences.
    #[arg(long, global = true, display_order = 100)]
    json: bool,
    /// Read every policy file as this format, whatever its extension.
    #[arg(long, global = true, value_name = "FORMAT", display_order = 100)]
    format: Option<Format>,
    /// Read the policy at this JSON pointer inside each policy file (RFC 6901),
    /// such as `/policy` for a conformance case file.
    #[arg(long, global = true, value_name = "POINTER", display_order = 100)]
    pointer: Option<String>,
}

#[derive(Debug, Subcommand)]
#[expect(
    clippy::large_enum_variant,
    reason = "parsed once per process; boxing buys nothing"
)]
enum Command {
    /// Build each policy and print every problem, then lint it.
    ///
    /// Each problem and warning has its document path and, where it is
    /// written, FILE:LINE:COLUMN. Warnings name their lint; --allow NAME
    /// silences one.
    #[command(after_help = CHECK_EXIT, after_long_help = lint_help())]
    Check(check::CheckArgs),
    /// Decide one request and show, for every asked scope, the checks it
    /// went through and which entry of the policy or the request allowed or
    /// refused it.
    #[command(after_help = EXPLAIN_EXIT)]
    Explain(explain::ExplainArgs),
    /// Who can obtain a scope, or what a role or client can obtain.
    ///
    /// Clients' reach is found by asking the decision: every flow the client
    /// has, for a user whom RBAC lets have everything; roles' reach is what
    /// they permit, inheritance included.
    #[command(after_help = WHO_EXIT)]
    Who(who::WhoArgs),
    /// What changes between two policies: per API, what each role and each
    /// client can obtain, access policies and consent settings, each change
    /// marked as a widening or a narrowing.
    ///
    /// Compared by names (audience, scope, role, client id): reordering a
    /// file is no change. A widening: someone can obtain more, or is asked
    /// for consent less.
    #[command(after_help = DIFF_EXIT)]
    Diff(diff::DiffArgs),
}

const CHECK_EXIT: &str = "\
Exit codes: 0 every policy builds (warnings allowed, unless --deny-warnings); 1 a policy does
not build, or a lint warns under --deny-warnings; 2 a file cannot be read, has no known format,
or the command line is wrong.";

const EXPLAIN_EXIT: &str = "\
Exit codes: 0 every asked scope is granted or on the consent prompt; 1 the request is refused
as a whole, or a scope is denied; 2 the policy does not build, a file cannot be read or is not
a request, or the command line is wrong.";

const WHO_EXIT: &str = "\
Exit codes: 0 someone obtains it; 1 nobody obtains the scope (no client, or on an RBAC API no
role and no client for itself), or the role or client obtains nothing; 2 the policy does not
build, the scope, role or client is unknown, or the command line is wrong.";

const DIFF_EXIT: &str = "\
Exit codes: 0 compared (whatever changed); 1 --fail-on-widening and something widens; 2 a
policy does not build, a file cannot be read, or the command line is wrong.";

fn lint_help() -> String {
    let mut help = String::from("Lints (for --allow):\n");
    for (name, what) in lint::LINTS {
        help.push_str(&format!("  {name}\n      {what}\n"));
    }
    help.push('\n');
    help.push_str(CHECK_EXIT);
    help
}

/// How a command ended, as its exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: nothing to report.
    Ok,
    /// 1: the command found what it looks for (errors, refusals, widenings).
    Findings,
    /// 2: an input could not be used.
    Unusable,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(match exit {
            Exit::Ok => 0,
            Exit::Findings => 1,
            Exit::Unusable => 2,
        })
    }
}

/// What a command prints on stdout, built whole before it is written.
#[derive(Debug, Default)]
pub struct Out {
    text: String,
}

impl Out {
    /// Adds a line.
    pub fn line(&mut self, line: impl AsRef<str>) {
        self.text.push_str(line.as_ref());
        self.text.push('\n');
    }

    /// Adds a JSON document, pretty-printed.
    pub fn json<T: serde::Serialize>(&mut self, value: &T) {
        match serde_json::to_string_pretty(value) {
            Ok(text) => self.line(text),
            // Every output type serializes; say so if one ever does not.
            Err(error) => self.line(format!("{{\"error\": \"cannot write JSON: {error}\"}}")),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let options = ReadOptions {
        format: cli.global.format,
        pointer: cli.global.pointer.clone(),
    };
    let json = cli.global.json;
    let mut out = Out::default();
    let mut err = Out::default();
    let exit = match &cli.command {
        Command::Check(args) => check::run(args, &options, json, &mut out),
        Command::Explain(args) => explain::run(args, &options, json, &mut out, &mut err),
        Command::Who(args) => who::run(args, &options, json, &mut out, &mut err),
        Command::Diff(args) => diff::run(args, &options, json, &mut out, &mut err),
    };
    // A closed pipe (`scope-policy check … | head`) is not an error of ours.
    let _ = std::io::stdout().lock().write_all(out.text.as_bytes());
    let _ = std::io::stderr().lock().write_all(err.text.as_bytes());
    exit.into()
}

/// Reads and builds one policy for a command that needs it built: a file
/// that cannot be read, or a policy that does not build, is unusable input.
/// Its problems go to `err` (as sentences; under `--json`, as the JSON
/// document of `check`).
pub fn load_policy(
    file: &str,
    options: &ReadOptions,
    json: bool,
    out: &mut Out,
    err: &mut Out,
) -> Option<(source::Source, source::Loaded)> {
    let source = match source::Source::read(file, options) {
        Ok(source) => source,
        Err(unusable) => {
            if json {
                out.json(&check::unusable_report(&unusable));
            } else {
                err.line(format!("error: {unusable}"));
            }
            return None;
        }
    };
    match source.load() {
        Ok(loaded) => Some((source, loaded)),
        Err(problems) => {
            let findings: Vec<check::JsonFinding> = problems
                .iter()
                .map(|problem| check::JsonFinding::error(&source.file, problem))
                .collect();
            if json {
                out.json(&check::Report::of(1, findings));
            } else {
                for finding in &findings {
                    err.line(finding.sentence());
                }
                err.line(format!("error: {file}: the policy does not build"));
            }
            None
        }
    }
}

//! `scope-policy check POLICY…`: build each policy, print every problem with
//! its path and `file:line:column`, then lint what builds.
//!
//! Human output: one line per finding, in file order then text order,
//! `FILE:LINE:COLUMN: error: PATH: MESSAGE` or
//! `FILE:LINE:COLUMN: warning[LINT]: PATH: MESSAGE`, then a summary line.
//! `--json`: one document, `{"findings": [...], "files", "errors", "warnings"}`,
//! each finding `{file, severity, lint?, path, line?, column?, message}` with
//! `severity` `error` (the policy does not build), `warning` (a lint) or
//! `unusable` (the file cannot be read).

use clap::builder::PossibleValuesParser;
use clap::Args;
use serde::Serialize;

use crate::lint;
use crate::reach::Reaches;
use crate::source::{Located, ReadOptions, Source, Unusable};
use crate::{Exit, Out};

/// `check`'s arguments.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Policy files (`.json` or `.toml`).
    #[arg(required = true, value_name = "POLICY")]
    policies: Vec<String>,
    /// Exit 1 when a lint warns.
    #[arg(long)]
    deny_warnings: bool,
    /// Silence a lint (repeatable); see the list below.
    #[arg(
        long = "allow",
        value_name = "LINT",
        value_parser = PossibleValuesParser::new(lint::names()),
        hide_possible_values = true
    )]
    allow: Vec<String>,
    /// Only build: run no lint.
    #[arg(long, conflicts_with_all = ["deny_warnings", "allow"])]
    no_lints: bool,
    /// Print only errors (and the summary): warnings still count for --deny-warnings.
    #[arg(long, short)]
    quiet: bool,
}

/// One finding as data.
#[derive(Debug, Clone, Serialize)]
pub struct JsonFinding {
    /// The policy file, as given.
    pub file: String,
    /// `error`, `warning` or `unusable`.
    pub severity: &'static str,
    /// The lint's name, for a warning.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lint: Option<&'static str>,
    #[serde(flatten)]
    at: Located,
}

impl JsonFinding {
    /// A problem that keeps the policy from building.
    pub fn error(file: &str, problem: &Located) -> Self {
        JsonFinding {
            file: file.to_owned(),
            severity: "error",
            lint: None,
            at: problem.clone(),
        }
    }

    /// The finding as one line for people.
    pub fn sentence(&self) -> String {
        let place = match (self.at.line, self.at.column) {
            (Some(line), Some(column)) => format!("{}:{line}:{column}", self.file),
            _ => self.file.clone(),
        };
        let what = match (self.severity, self.lint) {
            ("warning", Some(lint)) => format!("warning[{lint}]"),
            ("unusable", _) => "error".to_owned(),
            (severity, _) => severity.to_owned(),
        };
        match self.at.path.as_str() {
            "" => format!("{place}: {what}: {}", self.at.message),
            path => format!("{place}: {what}: {path}: {}", self.at.message),
        }
    }
}

/// `check`'s JSON document.
#[derive(Debug, Serialize)]
pub struct Report {
    findings: Vec<JsonFinding>,
    files: usize,
    errors: usize,
    warnings: usize,
}

impl Report {
    /// The report of `files` files with these findings.
    pub fn of(files: usize, findings: Vec<JsonFinding>) -> Report {
        let errors = findings.iter().filter(|f| f.severity != "warning").count();
        Report {
            files,
            errors,
            warnings: findings.len() - errors,
            findings,
        }
    }
}

/// The report of one file that cannot be used.
pub fn unusable_report(unusable: &Unusable) -> Report {
    Report::of(1, vec![unusable_finding(unusable)])
}

fn unusable_finding(unusable: &Unusable) -> JsonFinding {
    JsonFinding {
        file: unusable.file.clone(),
        severity: "unusable",
        lint: None,
        at: Located {
            path: String::new(),
            line: None,
            column: None,
            message: unusable.reason.clone(),
        },
    }
}

/// Runs `check`.
pub fn run(args: &CheckArgs, options: &ReadOptions, json: bool, out: &mut Out) -> Exit {
    let mut findings: Vec<JsonFinding> = Vec::new();
    let mut exit = Exit::Ok;
    let mut warned = false;
    let mut hidden = 0;
    for file in &args.policies {
        let source = match Source::read(file, options) {
            Ok(source) => source,
            Err(unusable) => {
                findings.push(unusable_finding(&unusable));
                exit = Exit::Unusable;
                continue;
            }
        };
        let loaded = match source.load() {
            Ok(loaded) => loaded,
            Err(problems) => {
                findings.extend(problems.iter().map(|problem| JsonFinding::error(file, problem)));
                if exit == Exit::Ok {
                    exit = Exit::Findings;
                }
                continue;
            }
        };
        if args.no_lints {
            continue;
        }
        let reaches = Reaches::of(&loaded.policy);
        let mut warnings: Vec<JsonFinding> = lint::run(&loaded, &reaches)
            .into_iter()
            .filter(|finding| !args.allow.iter().any(|allowed| allowed == finding.lint))
            .map(|finding| JsonFinding {
                file: file.clone(),
                severity: "warning",
                lint: Some(finding.lint),
                at: source.located(&finding.path, finding.message),
            })
            .collect();
        // Text order; findings without a place keep the lints' document order, last.
        warnings.sort_by_key(|finding| (finding.at.line.is_none(), finding.at.line, finding.at.column));
        warned |= !warnings.is_empty();
        if args.quiet && !json {
            hidden += warnings.len();
        } else {
            findings.extend(warnings);
        }
    }
    if warned && args.deny_warnings && exit == Exit::Ok {
        exit = Exit::Findings;
    }
    let report = Report::of(args.policies.len(), findings);
    if json {
        out.json(&report);
    } else {
        for finding in &report.findings {
            out.line(finding.sentence());
        }
        out.line(summary(&report, hidden));
    }
    exit
}

/// `checked 2 policies: 1 error, 3 warnings`.
fn summary(report: &Report, hidden: usize) -> String {
    let count = |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let mut parts = Vec::new();
    if report.errors > 0 {
        parts.push(count(report.errors, "error", "errors"));
    }
    if report.warnings > 0 {
        parts.push(count(report.warnings, "warning", "warnings"));
    }
    if hidden > 0 {
        parts.push(format!(
            "{} not shown (--quiet)",
            count(hidden, "warning", "warnings")
        ));
    }
    let found = if parts.is_empty() {
        "no problem".to_owned()
    } else {
        parts.join(", ")
    };
    format!("checked {}: {found}", count(report.files, "policy", "policies"))
}

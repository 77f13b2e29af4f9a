//! Every lint has a policy that triggers it, at the paths listed here, and
//! one that does not (`tests/cli/lints/NAME.json`, `NAME-ok.json`); the
//! latter are clean of every lint, so no lint fires where it should not.

use std::collections::BTreeSet;

use crate::{check_table, run_json};

/// Each lint and the paths where its policy triggers it.
const LINTS: &[(&str, &[&str])] = &[
    ("unreachable-scope", &["apis[0].scopes[2]", "apis[1].scopes[0]"]),
    ("empty-role", &["roles[2]"]),
    ("redundant-role", &["roles[2]"]),
    ("redundant-permission", &["roles[0].permissions[1]"]),
    ("redundant-inherits", &["roles[2].inherits[0]"]),
    ("permission-without-rbac", &["roles[0].permissions[1]"]),
    ("client-obtains-nothing", &["clients[1]"]),
    (
        "third-party-wildcard-user-grant",
        &["clients[1].grants[0].scopes[0]"],
    ),
    (
        "offline-access-without-refresh",
        &["apis[0].allow_offline_access"],
    ),
    ("refresh-without-offline-access", &["clients[0].grant_types[1]"]),
    ("default-scope-no-role", &["apis[0].default_scopes[0]"]),
    ("always-scope-in-defaults", &["apis[0].default_scopes[1]"]),
    ("required-scope-unobtainable", &["apis[0].scopes[1].required"]),
    ("ignored-client-grant", &["clients[0].grants[0]"]),
    ("empty-client-grant", &["clients[1].grants[0].scopes"]),
    ("missing-description", &["apis[0].scopes[1].description"]),
];

/// The (lint, path) of every warning `check --json` prints for `file`.
fn warnings(file: &str, extra: &[&str]) -> (i32, BTreeSet<(String, String)>) {
    let mut args = vec!["check", "--json", file];
    args.extend_from_slice(extra);
    let (code, report) = run_json(&args);
    let findings = report["findings"].as_array().expect("findings").iter();
    let found = findings
        .filter(|finding| finding["severity"] == "warning")
        .map(|finding| {
            let text = |key: &str| finding[key].as_str().unwrap_or_default().to_owned();
            (text("lint"), text("path"))
        })
        .collect();
    (code, found)
}

#[test]
fn every_lint_is_tested() {
    let help = crate::run(&["check", "--help"]).stdout;
    let listed: Vec<&str> = LINTS.iter().map(|(name, _)| *name).collect();
    for name in &listed {
        assert!(
            help.contains(&format!("  {name}\n")),
            "`check --help` lists {name}"
        );
    }
    let in_help = help.lines().filter(|line| {
        let name = line.trim();
        line.starts_with("  ")
            && !line.starts_with("   ")
            && name.contains('-')
            && !name.starts_with('-')
            && !name.contains(' ')
    });
    let in_help: Vec<&str> = in_help.map(str::trim).collect();
    assert_eq!(
        in_help, listed,
        "the lints of `check --help`, in order, each with a test here"
    );
}

#[test]
fn each_lint_fires_on_its_policy_and_nowhere_else() {
    let mut failures = Vec::new();
    for (lint, paths) in LINTS {
        let file = format!("tests/cli/lints/{lint}.json");
        let (code, found) = warnings(&file, &[]);
        let at: BTreeSet<&str> = found
            .iter()
            .filter(|(name, _)| name == lint)
            .map(|(_, path)| path.as_str())
            .collect();
        let want: BTreeSet<&str> = paths.iter().copied().collect();
        if at != want || code != 0 {
            failures.push(format!("{file}: {lint} at {at:?}, want {want:?} (exit {code})"));
        }
        // --allow silences it, --deny-warnings turns it into exit 1.
        let (_, allowed) = warnings(&file, &["--allow", lint]);
        if allowed.iter().any(|(name, _)| name == lint) {
            failures.push(format!("{file}: --allow {lint} does not silence it"));
        }
        let (denied, _) = warnings(&file, &["--deny-warnings"]);
        if denied != 1 {
            failures.push(format!("{file}: --deny-warnings exits {denied}, want 1"));
        }
        let ok = format!("tests/cli/lints/{lint}-ok.json");
        let (code, found) = warnings(&ok, &["--deny-warnings"]);
        if !found.is_empty() || code != 0 {
            failures.push(format!("{ok}: want no warning, got {found:?} (exit {code})"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn lint_sentences() {
    // The sentences people read, one snapshot for all the triggering policies.
    let files: Vec<String> = LINTS
        .iter()
        .map(|(lint, _)| format!("tests/cli/lints/{lint}.json"))
        .collect();
    let mut args = vec!["check"];
    args.extend(files.iter().map(String::as_str));
    check_table(&[("lints", &args, 0)]);
}

//! The conformance corpus under `cargo test`, through the same runner as
//! `cargo run --example conformance`.

#[path = "../examples/conformance/runner.rs"]
#[allow(dead_code)]
mod runner;

use std::path::{Path, PathBuf};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance")
}

/// Runs the runner as the example does, returning (exit status, stdout, stderr).
fn run(paths: &[PathBuf]) -> (u8, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let status = runner::run(paths, &mut out, &mut err);
    (
        status,
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
    )
}

/// A scratch folder for case files written by a test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("scope-policy-conformance-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_whole_corpus_passes() {
    let (status, out, err) = run(&[corpus()]);
    assert_eq!(status, 0, "failing cases:\n{out}{err}");
    let last = out.lines().last().unwrap_or_default();
    let passed: usize = last.split(' ').next().and_then(|n| n.parse().ok()).unwrap_or(0);
    assert!(
        passed >= 150,
        "the corpus holds at least 150 cases, ran {passed}: {last}"
    );
}

#[test]
fn every_case_name_is_unique_within_its_file() {
    for file in runner::case_files(&corpus()).unwrap() {
        let case_file = runner::read_file(&file).unwrap();
        let mut names: Vec<&str> = case_file
            .cases
            .iter()
            .flatten()
            .map(|case| case.name.as_str())
            .collect();
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count, "{}: repeated case names", file.display());
    }
}

const POLICY: &str = r#"{
  "apis": [{ "audience": "https://a.example/api",
             "scopes": [ { "name": "read:a" }, { "name": "write:a" } ] }],
  "clients": [{ "client_id": "app", "first_party": true, "kind": "spa" }]
}"#;

#[test]
fn a_case_that_fails_on_purpose_is_reported_with_expected_and_got() {
    let dir = scratch("fail");
    let file = dir.join("wrong.json");
    let text = format!(
        r#"{{ "description": "one right, one wrong", "policy": {POLICY}, "cases": [
          {{ "name": "first party gets both",
             "request": {{ "client_id": "app", "audience": "https://a.example/api",
                          "scope": "read:a write:a", "user": {{ "id": "u" }} }},
             "expect": {{ "granted": ["read:a", "write:a"] }} }},
          {{ "name": "this expectation is wrong on purpose",
             "request": {{ "client_id": "app", "audience": "https://a.example/api",
                          "scope": "read:a", "user": {{ "id": "u" }} }},
             "expect": {{ "granted": ["write:a"], "denied": {{ "read:a": "undefined" }} }} }}
        ] }}"#
    );
    std::fs::write(&file, text).unwrap();
    let (status, out, _) = run(std::slice::from_ref(&dir));
    assert_eq!(status, 1);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[0].contains("wrong.json") && lines[0].contains("this expectation is wrong on purpose"));
    assert!(
        lines[0].contains(r#"granted: expected {"write:a"}, got {"read:a"}"#),
        "{}",
        lines[0]
    );
    assert!(
        lines[0].contains("denied[read:a]: expected undefined, got not denied"),
        "{}",
        lines[0]
    );
    assert_eq!(lines[1], "1 passed, 1 failed");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_broken_policy_file_passes_only_when_every_listed_path_is_reported() {
    let dir = scratch("broken");
    let broken = r#"{ "apis": [{ "audience": "https://a.example/api", "scopes": [ { "name": "x" }, { "name": "x" } ] }] }"#;
    let write = |name: &str, paths: &str| {
        let text =
            format!(r#"{{ "description": "{name}", "policy": {broken}, "expect_policy_errors": {paths} }}"#);
        std::fs::write(dir.join(format!("{name}.json")), text).unwrap();
    };
    write("exact", r#"["apis[0].scopes[1].name"]"#);
    write("prefix", r#"["apis[0].scopes[1]"]"#);
    write("absent", r#"["apis[0].scopes[0]"]"#);
    write("partial-segment", r#"["apis[0].sc"]"#);
    let (status, out, _) = run(std::slice::from_ref(&dir));
    assert_eq!(status, 1);
    assert!(
        out.contains("absent.json") && out.contains("expected a problem at apis[0].scopes[0]"),
        "{out}"
    );
    assert!(
        out.contains("partial-segment.json") && out.contains("expected a problem at apis[0].sc,"),
        "{out}"
    );
    assert!(
        !out.contains("exact.json") && !out.contains("prefix.json"),
        "{out}"
    );
    assert!(out.ends_with("2 passed, 2 failed\n"), "{out}");
    std::fs::remove_dir_all(dir).unwrap();
}

const PATHS: &[(&str, &str, bool)] = &[
    // expected, reported, matches
    ("apis[0].scopes[1].name", "apis[0].scopes[1].name", true),
    ("apis[0].scopes[1]", "apis[0].scopes[1].name", true),
    ("apis[0]", "apis[0].scopes[1].name", true),
    ("clients[0].grant_types", "clients[0].grant_types[1]", true),
    ("apis[0].sc", "apis[0].scopes[0].name", false),
    ("roles[1]", "roles[10].name", false),
    ("roles[1].inherits", "roles[1].inherits_x", false),
    ("apis[0].scopes[1].name", "apis[0].scopes[1]", false),
    ("", "anything", false),
];

#[test]
fn expected_policy_error_paths_match_whole_segments_only() {
    for (expected, reported, matches) in PATHS {
        assert_eq!(
            runner::within(expected, reported),
            *matches,
            "{expected:?} in {reported:?}"
        );
    }
}

#[test]
fn unreadable_or_invalid_files_exit_with_2_and_say_why() {
    let dir = scratch("bad");
    let missing = dir.join("missing.json");
    let (status, _, err) = run(&[missing]);
    assert_eq!(status, 2);
    assert!(
        err.contains("missing.json") && err.contains("cannot read"),
        "{err}"
    );

    let invalid = dir.join("invalid.json");
    std::fs::write(&invalid, r#"{ "description": "no cases", "policy": {} }"#).unwrap();
    let (status, _, err) = run(&[invalid]);
    assert_eq!(status, 2);
    assert!(
        err.contains("invalid.json") && err.contains("exactly one of"),
        "{err}"
    );

    let (status, _, err) = run(&[]);
    assert_eq!(status, 2);
    assert!(err.starts_with("usage:"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}

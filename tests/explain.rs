//! `Policy::explain` over every request of the conformance corpora: each
//! explanation agrees with the decision, scope by scope, and every source it
//! names exists and says what the step claims.

#[path = "reference/mod.rs"]
mod reference;

use std::path::{Path, PathBuf};

use reference::differential::real_input;
use reference::model::Req;
use scope_policy::{Check, Decision, DenyReason, Mark, Outcome, Policy, Verdict};
use serde_json::Value;

fn corpora() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for folder in [
        root.join("tests/conformance"),
        root.join("../shared/conformance/public"),
        root.join("../shared/conformance/public-rev2"),
    ] {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|ext| ext == "json") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The value at a document path such as `roles[1].permissions[0].scope`.
fn at<'v>(document: &'v Value, path: &str) -> Option<&'v Value> {
    let mut value = document;
    for segment in path.split('.') {
        let (field, indices) = segment
            .split_once('[')
            .map_or((segment, ""), |(f, rest)| (f, rest));
        value = value.get(field)?;
        for index in indices.split('[').filter(|i| !i.is_empty()) {
            value = value.get(index.trim_end_matches(']').parse::<usize>().ok()?)?;
        }
    }
    Some(value)
}

/// Whether a written reference (scope or pattern) names `scope`.
fn names(pattern: &str, scope: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => scope.starts_with(prefix),
        None => pattern == scope,
    }
}

/// The check a refusal reason comes from.
fn check_of(reason: DenyReason) -> Check {
    match reason {
        DenyReason::RequiresUser => Check::User,
        DenyReason::OfflineAccessNotAllowed => Check::OfflineAccess,
        DenyReason::NoAudience => Check::Audience,
        DenyReason::Undefined => Check::Definition,
        DenyReason::NotGrantedToClient => Check::ClientGrant,
        DenyReason::NotPermitted => Check::Rbac,
        _ => Check::Consent,
    }
}

#[test]
fn every_explanation_agrees_with_its_decision_and_its_sources() {
    let mut problems: Vec<String> = Vec::new();
    let mut explained = 0;
    for file in corpora() {
        let text = std::fs::read_to_string(&file).unwrap();
        let case_file: Value = serde_json::from_str(&text).unwrap();
        let Some(cases) = case_file["cases"].as_array() else {
            continue;
        };
        let document = &case_file["policy"];
        let policy = Policy::from_json(&document.to_string()).unwrap();
        for case in cases {
            let about = format!("{}: {}", file.display(), case["name"]);
            let req: Req = serde_json::from_value(case["request"].clone()).unwrap();
            let Ok(input) = real_input(&req) else { continue };
            let request = input.request(&req);
            let (decision, explanation) = (policy.grant(&request), policy.explain(&request));
            let (decision, explanation) = match (decision, explanation) {
                (Err(one), Err(two)) => {
                    if one != two {
                        problems.push(format!("{about}: errors differ: {one:?} / {two:?}"));
                    }
                    continue;
                }
                (Ok(decision), Ok(explanation)) => (decision, explanation),
                (one, two) => {
                    problems.push(format!(
                        "{about}: {:?} but explained as {:?}",
                        one.map(|_| ()),
                        two.map(|_| ())
                    ));
                    continue;
                }
            };
            explained += 1;
            let verdicts: Vec<(String, Verdict)> = match &decision {
                Decision::Granted(grant) => grant.verdicts().map(|(s, v)| (s.to_owned(), v)).collect(),
                Decision::ConsentRequired(prompt) => {
                    prompt.verdicts().map(|(s, v)| (s.to_owned(), v)).collect()
                }
            };
            let outcome = match decision {
                Decision::Granted(_) => Outcome::Granted,
                Decision::ConsentRequired(_) => Outcome::ConsentRequired,
            };
            if explanation.outcome != outcome {
                problems.push(format!(
                    "{about}: outcome {:?}, decided {outcome:?}",
                    explanation.outcome
                ));
            }
            let listed: Vec<(String, Verdict)> = explanation
                .scopes
                .iter()
                .map(|s| (s.scope.clone(), s.verdict))
                .collect();
            if listed != verdicts {
                problems.push(format!("{about}: verdicts {listed:?}, decided {verdicts:?}"));
                continue;
            }
            for scope in &explanation.scopes {
                let last = scope.steps.last();
                let consistent = match scope.verdict {
                    Verdict::Granted => scope.steps.iter().all(|s| s.mark == Mark::Pass),
                    Verdict::Asked => last.is_some_and(|s| s.mark == Mark::Ask && s.check == Check::Consent),
                    Verdict::Denied(reason) => {
                        last.is_some_and(|s| s.mark == Mark::Fail && s.check == check_of(reason))
                    }
                    _ => false,
                };
                let earlier_pass = scope.steps.iter().rev().skip(1).all(|s| s.mark == Mark::Pass);
                if !consistent || !earlier_pass {
                    problems.push(format!(
                        "{about}: {} is {:?} but explained {:?}",
                        scope.scope, scope.verdict, scope.steps
                    ));
                }
                for step in &scope.steps {
                    let Some(source) = &step.source else { continue };
                    let found = match source.strip_prefix("request.") {
                        Some(path) => at(&case["request"], path),
                        None => at(document, source),
                    };
                    let claim = match (step.check, found) {
                        // A client that skips consent is written first-party (or left out: false, never skips).
                        (Check::Consent, found) if source.ends_with(".first_party") => {
                            found.is_some_and(|v| v == true)
                        }
                        // Settings and lists that may be left out, taking their defaults.
                        (_, _) if source.ends_with("_access") || source.ends_with(".grant_types") => true,
                        (Check::Definition, found) if step.mark == Mark::Fail => found.is_some(),
                        (_, None) => false,
                        (Check::Rbac, Some(permission)) if source.starts_with("roles") => permission["scope"]
                            .as_str()
                            .is_some_and(|p| names(p, &scope.scope)),
                        (Check::Rbac, Some(permission)) => permission["scope"] == scope.scope.as_str(),
                        (Check::ClientGrant, Some(written)) if source.contains(".scopes[") => {
                            written.as_str().is_some_and(|p| names(p, &scope.scope))
                        }
                        (Check::Definition, Some(definition)) => definition["name"] == scope.scope.as_str(),
                        (Check::Consent, Some(record)) => {
                            let list = if step.mark == Mark::Pass {
                                "scopes"
                            } else {
                                "declined"
                            };
                            record[list]
                                .as_array()
                                .is_some_and(|l| l.iter().any(|s| s == scope.scope.as_str()))
                        }
                        _ => true,
                    };
                    if !claim {
                        problems.push(format!("{about}: {} cites {source} for {:?}", scope.scope, step));
                    }
                }
            }
        }
    }
    assert!(explained > 500, "explained only {explained} decisions");
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

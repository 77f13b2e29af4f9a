//! The conformance runner's logic, shared by `examples/conformance` and
//! `tests/conformance.rs`: read case files, decide each case through the
//! crate's public API, compare the `expect` keys that are present.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use scope_policy::{ConsentRecord, Decision, Flow, Grant, Policy, Request, User};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

/// A case file: one policy and its cases, or a broken policy and the paths of its problems.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseFile {
    /// What the file is about.
    pub description: String,
    /// The policy document, kept as written so duplicate keys still count.
    pub policy: Box<RawValue>,
    /// The cases, for a policy that builds.
    #[serde(default)]
    pub cases: Option<Vec<Case>>,
    /// The paths a broken policy must report (each equal to, or a whole-segment prefix of, a reported path).
    #[serde(default)]
    pub expect_policy_errors: Option<Vec<String>>,
}

/// One case: a request, maybe an answer to the consent prompt, and what to expect.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// A sentence that says the rule.
    pub name: String,
    /// The request.
    pub request: CaseRequest,
    /// Scopes to approve on the consent prompt.
    #[serde(default)]
    pub approve: Option<Vec<String>>,
    /// Refuse the consent prompt.
    #[serde(default)]
    pub deny: bool,
    /// What to expect; only the keys present are checked.
    pub expect: Expect,
}

/// The request of a case, as in DESIGN §5.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseRequest {
    client_id: String,
    #[serde(default = "authorization_code", deserialize_with = "grant_type")]
    flow: Flow,
    #[serde(default)]
    audience: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    user: Option<User>,
    #[serde(default)]
    consents: Vec<ConsentRecord>,
    /// The raw OIDC `prompt` parameter.
    #[serde(default)]
    prompt: Option<String>,
    #[serde(default)]
    redirect_uri: Option<String>,
    #[serde(default)]
    original_scope: Option<String>,
    #[serde(default)]
    original_audience: Option<String>,
    #[serde(default)]
    now: Option<u64>,
}

fn authorization_code() -> Flow {
    Flow::AuthorizationCode
}

/// A flow as a token request names it: the short names, or RFC 8628's URN.
fn grant_type<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Flow, D::Error> {
    let name = String::deserialize(deserializer)?;
    Flow::from_grant_type(&name).map_err(serde::de::Error::custom)
}

/// Reads a key that may be `null`: absent is `None`, `null` is `Some(None)`.
fn nullable<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Option<u64>>, D::Error> {
    Option::<u64>::deserialize(deserializer).map(Some)
}

/// The expected outcome; every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    #[serde(default)]
    granted: Option<BTreeSet<String>>,
    #[serde(default)]
    consent: Option<BTreeSet<String>>,
    #[serde(default)]
    consent_required_scopes: Option<BTreeSet<String>>,
    #[serde(default)]
    consent_record: Option<BTreeSet<String>>,
    #[serde(default)]
    consent_declined: Option<BTreeSet<String>>,
    #[serde(default, deserialize_with = "nullable")]
    consent_expires_at: Option<Option<u64>>,
    #[serde(default)]
    unverifiable_redirect: Option<bool>,
    #[serde(default)]
    permissions: Option<BTreeSet<String>>,
    #[serde(default)]
    denied: Option<BTreeMap<String, String>>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    scope_changed: Option<bool>,
    #[serde(default)]
    refresh_token: Option<bool>,
}

/// What a case came out as, in the terms of `Expect`.
#[derive(Debug, Default)]
struct Got {
    granted: Option<BTreeSet<String>>,
    consent: BTreeSet<String>,
    consent_required_scopes: BTreeSet<String>,
    record: Option<GotRecord>,
    unverifiable_redirect: Option<bool>,
    permissions: Option<BTreeSet<String>>,
    denied: BTreeMap<String, String>,
    error: Option<String>,
    scope_changed: Option<bool>,
    refresh_token: Option<bool>,
}

/// The new consent record of an approval.
#[derive(Debug)]
struct GotRecord {
    scopes: BTreeSet<String>,
    declined: BTreeSet<String>,
    expires_at: Option<u64>,
}

/// A case that did not come out as expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The case file.
    pub file: PathBuf,
    /// The case name (the file's description for a broken-policy file).
    pub case: String,
    /// Each difference, as `key: expected …, got …`.
    pub differences: Vec<String>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "FAIL {}: {}: {}",
            self.file.display(),
            self.case,
            self.differences.join("; ")
        )
    }
}

/// A file that cannot be read or is not a valid case file.
#[derive(Debug)]
pub struct BadFile {
    /// The file.
    pub file: PathBuf,
    /// Why.
    pub reason: String,
}

impl fmt::Display for BadFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file.display(), self.reason)
    }
}

/// The result of running some case files.
#[derive(Debug, Default)]
pub struct Report {
    /// How many cases passed.
    pub passed: usize,
    /// The cases that failed.
    pub failures: Vec<Failure>,
}

/// The case files at `path`: the file itself, or the `*.json` files of a folder, sorted.
pub fn case_files(path: &Path) -> Result<Vec<PathBuf>, BadFile> {
    let bad = |reason: String| BadFile {
        file: path.to_owned(),
        reason,
    };
    if !path.is_dir() {
        return Ok(vec![path.to_owned()]);
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).map_err(|e| bad(e.to_string()))? {
        let file = entry.map_err(|e| bad(e.to_string()))?.path();
        if file.extension().is_some_and(|ext| ext == "json") {
            files.push(file);
        }
    }
    files.sort();
    Ok(files)
}

/// Reads and parses one case file.
pub fn read_file(file: &Path) -> Result<CaseFile, BadFile> {
    let bad = |reason: String| BadFile {
        file: file.to_owned(),
        reason,
    };
    let text = std::fs::read_to_string(file).map_err(|e| bad(format!("cannot read: {e}")))?;
    let case_file: CaseFile =
        serde_json::from_str(&text).map_err(|e| bad(format!("not a case file: {e}")))?;
    match (&case_file.cases, &case_file.expect_policy_errors) {
        (Some(_), None) | (None, Some(_)) => Ok(case_file),
        _ => Err(bad(
            "not a case file: it needs exactly one of `cases` and `expect_policy_errors`".into(),
        )),
    }
}

/// Runs every case of one file, adding to `report`.
pub fn run_file(file: &Path, case_file: &CaseFile, report: &mut Report) {
    let built = Policy::from_json(case_file.policy.get());
    if let Some(expected) = &case_file.expect_policy_errors {
        let differences = match &built {
            Ok(_) => vec!["policy: expected build errors, got a policy that builds".to_owned()],
            Err(error) => {
                let paths = error.paths();
                expected
                    .iter()
                    .filter(|want| !paths.iter().any(|path| within(want, path)))
                    .map(|want| format!("policy errors: expected a problem at {want}, got {paths:?}"))
                    .collect()
            }
        };
        record(report, file, &case_file.description, differences);
        return;
    }
    let policy = match built {
        Ok(policy) => policy,
        Err(error) => {
            let differences = vec![format!("policy: expected it to build, got: {error}")];
            for case in case_file.cases.iter().flatten() {
                record(report, file, &case.name, differences.clone());
            }
            return;
        }
    };
    for case in case_file.cases.iter().flatten() {
        let got = decide(&policy, case);
        record(report, file, &case.name, compare(&case.expect, &got));
    }
}

/// Whether the problem reported at `path` is at `expected` or inside it:
/// `expected` is `path` or a prefix of it that ends at a segment boundary, so
/// `apis[1]` holds `apis[1].audience` but `apis[0].sc` does not hold
/// `apis[0].scopes[0].name`, nor `roles[1]` hold `roles[10]`.
pub fn within(expected: &str, path: &str) -> bool {
    match path.strip_prefix(expected) {
        Some(rest) => rest.is_empty() || rest.starts_with('.') || rest.starts_with('['),
        None => false,
    }
}

fn record(report: &mut Report, file: &Path, case: &str, differences: Vec<String>) {
    if differences.is_empty() {
        report.passed += 1;
    } else {
        report.failures.push(Failure {
            file: file.to_owned(),
            case: case.to_owned(),
            differences,
        });
    }
}

/// Makes the case's decision, answering a consent prompt when the case has an answer.
fn decide(policy: &Policy, case: &Case) -> Got {
    let r = &case.request;
    let request = Request::new(&r.client_id)
        .flow(r.flow)
        .consents(&r.consents)
        .maybe_audience(r.audience.as_deref())
        .maybe_scope(r.scope.as_deref())
        .maybe_user(r.user.as_ref())
        .maybe_prompt(r.prompt.as_deref())
        .maybe_redirect_uri(r.redirect_uri.as_deref())
        .maybe_original_scope(r.original_scope.as_deref())
        .maybe_original_audience(r.original_audience.as_deref())
        .maybe_now(r.now);
    let mut got = Got::default();
    let answered = match policy.grant(&request) {
        Err(error) => Err(error),
        Ok(Decision::Granted(grant)) => Ok(grant),
        Ok(Decision::ConsentRequired(prompt)) => {
            got.consent = prompt.scopes().map(|s| s.scope().to_owned()).collect();
            got.consent_required_scopes = prompt
                .scopes()
                .filter(|s| s.required())
                .map(|s| s.scope().to_owned())
                .collect();
            got.unverifiable_redirect = Some(prompt.unverifiable_redirect());
            got.denied = prompt
                .denied()
                .map(|(s, reason)| (s.to_owned(), reason.to_string()))
                .collect();
            match (&case.approve, case.deny) {
                (_, true) => Err(prompt.deny()),
                (Some(approved), false) => prompt.approve(approved),
                (None, false) => return got,
            }
        }
    };
    match answered {
        Err(error) => got.error = Some(error.code().to_string()),
        Ok(grant) => fill(&mut got, &grant),
    }
    got
}

fn fill(got: &mut Got, grant: &Grant<'_>) {
    got.granted = Some(grant.scopes().map(str::to_owned).collect());
    got.denied = grant
        .denied()
        .map(|(s, reason)| (s.to_owned(), reason.to_string()))
        .collect();
    got.record = grant.consent_record().map(|r| GotRecord {
        scopes: r.scopes.iter().map(|s| s.to_string()).collect(),
        declined: r.declined.iter().map(|s| s.to_string()).collect(),
        expires_at: r.expires_at,
    });
    got.permissions = Some(grant.permissions().into_iter().map(str::to_owned).collect());
    got.unverifiable_redirect = Some(grant.unverifiable_redirect());
    got.scope_changed = Some(grant.scope_changed());
    got.refresh_token = Some(grant.refresh_token());
}

/// The differences between what a case expects and what it got; empty when it passes.
fn compare(expect: &Expect, got: &Got) -> Vec<String> {
    let mut differences = Vec::new();
    let mut check = |key: &str, want: String, have: String| {
        if want != have {
            differences.push(format!("{key}: expected {want}, got {have}"));
        }
    };
    if let Some(want) = &expect.error {
        check(
            "error",
            want.clone(),
            got.error.clone().unwrap_or_else(|| "no error".into()),
        );
    }
    if let Some(want) = &expect.granted {
        check(
            "granted",
            format!("{want:?}"),
            got.granted
                .as_ref()
                .map_or("no grant".into(), |g| format!("{g:?}")),
        );
    }
    if let Some(want) = &expect.consent {
        check("consent", format!("{want:?}"), format!("{:?}", got.consent));
    }
    if let Some(want) = &expect.consent_required_scopes {
        let have = format!("{:?}", got.consent_required_scopes);
        check("consent_required_scopes", format!("{want:?}"), have);
    }
    let record = |part: fn(&GotRecord) -> String| got.record.as_ref().map_or("no record".into(), part);
    if let Some(want) = &expect.consent_record {
        check(
            "consent_record",
            format!("{want:?}"),
            record(|r| format!("{:?}", r.scopes)),
        );
    }
    if let Some(want) = &expect.consent_declined {
        check(
            "consent_declined",
            format!("{want:?}"),
            record(|r| format!("{:?}", r.declined)),
        );
    }
    if let Some(want) = &expect.consent_expires_at {
        check(
            "consent_expires_at",
            format!("{want:?}"),
            record(|r| format!("{:?}", r.expires_at)),
        );
    }
    if let Some(want) = expect.unverifiable_redirect {
        let have = got
            .unverifiable_redirect
            .map_or("no decision".into(), |b| b.to_string());
        check("unverifiable_redirect", want.to_string(), have);
    }
    if let Some(want) = &expect.permissions {
        let have = got
            .permissions
            .as_ref()
            .map_or("no grant".into(), |p| format!("{p:?}"));
        check("permissions", format!("{want:?}"), have);
    }
    for (scope, want) in expect.denied.iter().flatten() {
        let have = got
            .denied
            .get(scope)
            .cloned()
            .unwrap_or_else(|| "not denied".into());
        check(&format!("denied[{scope}]"), want.clone(), have);
    }
    if let Some(want) = expect.scope_changed {
        check(
            "scope_changed",
            want.to_string(),
            got.scope_changed.map_or("no grant".into(), |b| b.to_string()),
        );
    }
    if let Some(want) = expect.refresh_token {
        check(
            "refresh_token",
            want.to_string(),
            got.refresh_token.map_or("no grant".into(), |b| b.to_string()),
        );
    }
    if got.error.is_some() && expect.error.is_none() {
        differences.push(format!(
            "error: expected none, got {}",
            got.error.as_deref().unwrap_or_default()
        ));
    }
    differences
}

/// Runs every case file under `paths`; a file that cannot be read stops the run.
pub fn run_paths(paths: &[PathBuf]) -> Result<Report, BadFile> {
    let mut report = Report::default();
    for path in paths {
        for file in case_files(path)? {
            let case_file = read_file(&file)?;
            run_file(&file, &case_file, &mut report);
        }
    }
    Ok(report)
}

/// The runner's whole behaviour: runs `paths`, writes one line per failing
/// case and the closing `N passed, M failed` line to `out`, a bad file's
/// reason to `err`, and returns the exit status: 0 when every case passes,
/// 1 when any fails, 2 when a file cannot be read or is not a case file.
pub fn run(paths: &[PathBuf], out: &mut dyn std::io::Write, err: &mut dyn std::io::Write) -> u8 {
    if paths.is_empty() {
        let _ = writeln!(
            err,
            "usage: conformance PATH...  (case files or folders of *.json case files)"
        );
        return 2;
    }
    match run_paths(paths) {
        Err(bad) => {
            let _ = writeln!(err, "error: {bad}");
            2
        }
        Ok(report) => {
            for failure in &report.failures {
                let _ = writeln!(out, "{failure}");
            }
            let _ = writeln!(out, "{} passed, {} failed", report.passed, report.failures.len());
            u8::from(!report.failures.is_empty())
        }
    }
}

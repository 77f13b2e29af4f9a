//! Glue between the reference model and the real crate (TESTING.md §2,
//! invariant 15): build the real `Policy` from a model `Doc`, run a model
//! `Req` and `Answer` through the crate's public API, put the crate's answer
//! in the model's `Outcome` shape, and compare the two.
//!
//! Depends only on `scope_policy`, `serde_json` and `super::model`, so that a
//! fuzz target can include it as well as `tests/properties.rs`.
//!
//! Two kinds of input cannot be compared, and [`compare`] says so instead of
//! guessing:
//! - a document that does not build (the model assumes a valid policy);
//! - a request the crate's types cannot express: a flow other than the four
//!   of DESIGN §2 (or RFC 8628's URN), or a consent record or direct
//!   permission whose scope is not a valid scope token (the crate's `Scope`
//!   refuses it at the host's door).

// Not every includer uses every item.
#![allow(dead_code)]

use std::collections::BTreeSet;

use scope_policy::{
    ConsentPrompt, ConsentRecord, Decision, Flow, Grant, GrantError, Permission, Policy, Request, Scope,
    User, Verdict,
};

use super::model::{self, Answer, Doc, Granted, Outcome, Record, Req};

/// The model document as the JSON text the crate reads.
pub fn document_json(doc: &Doc) -> Result<String, String> {
    serde_json::to_string(doc).map_err(|error| format!("cannot serialize the document: {error}"))
}

/// Builds the real policy from the model's document (serialized to JSON, then
/// `Policy::from_json`). `Err` holds every problem the crate reported: the
/// generator should discard such a document.
pub fn build_policy(doc: &Doc) -> Result<Policy, String> {
    let json = document_json(doc)?;
    Policy::from_json(&json).map_err(|error| error.to_string())
}

/// The owned parts of a model request in the crate's types; the borrowed
/// [`Request`] is made from them and the model request by [`RealInput::request`].
#[derive(Debug, Clone)]
pub struct RealInput {
    pub flow: Flow,
    pub user: Option<User>,
    pub consents: Vec<ConsentRecord>,
}

/// Converts what the crate's request types need to own. `Err` when the
/// request cannot be expressed (see the module docs).
pub fn real_input(req: &Req) -> Result<RealInput, String> {
    let flow = Flow::from_grant_type(&req.flow)
        .map_err(|_| format!("flow {:?} is not a flow of the crate", req.flow))?;
    let scope = |token: &str| {
        Scope::new(token)
            .map_err(|error| format!("{token:?} is not a scope token the crate can hold: {error}"))
    };
    let user = match &req.user {
        None => None,
        Some(user) => {
            let mut permissions = Vec::with_capacity(user.permissions.len());
            for permission in &user.permissions {
                permissions.push(Permission {
                    audience: permission.audience.clone(),
                    scope: scope(&permission.scope)?,
                });
            }
            Some(User {
                id: user.id.clone(),
                roles: user.roles.clone(),
                permissions,
            })
        }
    };
    let mut consents = Vec::with_capacity(req.consents.len());
    for record in &req.consents {
        let scopes: Vec<Scope> = record.scopes.iter().map(|s| scope(s)).collect::<Result<_, _>>()?;
        let declined: Vec<Scope> = record
            .declined
            .iter()
            .map(|s| scope(s))
            .collect::<Result<_, _>>()?;
        let mut real = ConsentRecord::new(&record.user_id, &record.client_id, record.audience.as_deref())
            .with_scopes(scopes)
            .with_declined(declined);
        real.expires_at = record.expires_at;
        consents.push(real);
    }
    Ok(RealInput { flow, user, consents })
}

impl RealInput {
    /// The crate's request for `req`, through the public builder.
    pub fn request<'a>(&'a self, req: &'a Req) -> Request<'a> {
        Request::new(&req.client_id)
            .flow(self.flow)
            .consents(&self.consents)
            .maybe_audience(req.audience.as_deref())
            .maybe_scope(req.scope.as_deref())
            .maybe_user(self.user.as_ref())
            .maybe_prompt(req.prompt.as_deref())
            .maybe_redirect_uri(req.redirect_uri.as_deref())
            .maybe_original_scope(req.original_scope.as_deref())
            .maybe_original_audience(req.original_audience.as_deref())
            .maybe_now(req.now)
    }
}

/// The crate's answer in the model's shape, plus any internal inconsistency
/// of the crate's output that the shape cannot carry (the scope string, the
/// new record's user, client, audience and expiry, `denied()` against
/// `verdicts()`, the prompt's descriptions, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealOutcome {
    pub outcome: Outcome,
    pub problems: Vec<String>,
}

/// Decides `req` with the real policy and applies `answer` as the model does:
/// an answer to a decision that does not ask for consent is ignored; no
/// answer to one that asks stops at the prompt. `Err` when `req` cannot be
/// expressed in the crate's types.
pub fn real_outcome(policy: &Policy, doc: &Doc, req: &Req, answer: &Answer) -> Result<RealOutcome, String> {
    let input = real_input(req)?;
    let request = input.request(req);
    let mut problems = Vec::new();
    let outcome = match policy.grant(&request) {
        Err(error) => Outcome::Error(error_code(&error)),
        Ok(Decision::Granted(grant)) => {
            if grant.consent_record().is_some() {
                problems.push("a grant without a prompt carries a consent record".to_string());
            }
            Outcome::Granted(granted(&grant, req, &mut problems))
        }
        Ok(Decision::ConsentRequired(prompt)) => {
            check_prompt(&prompt, doc, &mut problems);
            match answer {
                Answer::None => Outcome::Consent {
                    prompt: prompt.scopes().map(|s| s.scope().to_string()).collect(),
                    required: prompt
                        .scopes()
                        .filter(|s| s.required())
                        .map(|s| s.scope().to_string())
                        .collect(),
                    unverifiable_redirect: prompt.unverifiable_redirect(),
                    verdicts: prompt_verdicts(&prompt, &mut problems),
                },
                Answer::Deny => Outcome::Error(error_code(&prompt.deny())),
                Answer::Approve(approved) => match prompt.approve(approved) {
                    Err(error) => Outcome::Error(error_code(&error)),
                    Ok(grant) => {
                        if grant.consent_record().is_none() {
                            problems.push("an approved prompt gives no consent record".to_string());
                        }
                        Outcome::Granted(granted(&grant, req, &mut problems))
                    }
                },
            }
        }
    };
    Ok(RealOutcome { outcome, problems })
}

/// The error code of a request-level or answer error, as the model spells it.
pub fn error_code(error: &GrantError) -> String {
    error.code().as_str().to_string()
}

/// A grant in the model's shape, checking what the shape leaves out.
fn granted(grant: &Grant<'_>, req: &Req, problems: &mut Vec<String>) -> Granted {
    let scopes: Vec<String> = grant.scopes().map(str::to_string).collect();
    let verdicts: Vec<(String, Option<String>)> = grant
        .verdicts()
        .map(|(scope, verdict)| {
            let reason = match verdict {
                Verdict::Granted => None,
                Verdict::Denied(reason) => Some(reason.as_str().to_string()),
                other => {
                    problems.push(format!("a grant holds the verdict {other:?} on {scope:?}"));
                    None
                }
            };
            (scope.to_string(), reason)
        })
        .collect();
    problems.extend(grant_problems(grant));
    let consent_record = grant.consent_record().map(|record| {
        let user_id = req.user.as_ref().map_or("", |user| user.id.as_str());
        if record.user_id != user_id
            || record.client_id != req.client_id
            || record.audience.as_deref() != grant.audience()
        {
            problems.push(format!(
                "the new consent record is for ({:?}, {:?}, {:?}), not for the request's ({user_id:?}, {:?}, {:?})",
                record.user_id,
                record.client_id,
                record.audience,
                req.client_id,
                grant.audience()
            ));
        }
        let all: Vec<&Scope> = record.scopes.iter().chain(&record.declined).collect();
        let distinct: BTreeSet<&Scope> = all.iter().copied().collect();
        if distinct.len() != all.len() {
            problems.push(format!(
                "the new consent record repeats a scope, or holds one it declines: {:?} / {:?}",
                record.scopes, record.declined
            ));
        }
        let own = |scopes: &[Scope]| scopes.iter().map(|s| s.as_str().to_string()).collect();
        Record {
            scopes: own(&record.scopes),
            declined: own(&record.declined),
            expires_at: record.expires_at,
        }
    });
    Granted {
        audience: grant.audience().map(str::to_string),
        granted: scopes,
        verdicts,
        scope_changed: grant.scope_changed(),
        refresh_token: grant.refresh_token(),
        consent_record,
        permissions: grant.permissions().into_iter().map(str::to_string).collect(),
        unverifiable_redirect: grant.unverifiable_redirect(),
    }
}

/// Inconsistencies between a grant's accessors (TESTING.md §2, invariant 14).
pub fn grant_problems(grant: &Grant<'_>) -> Vec<String> {
    let mut problems = Vec::new();
    let scopes: Vec<&str> = grant.scopes().collect();
    if grant.scope_string() != scopes.join(" ") {
        problems.push(format!(
            "scope_string {:?} is not the granted scopes {scopes:?} joined by spaces",
            grant.scope_string()
        ));
    }
    let from_verdicts: Vec<&str> = grant
        .verdicts()
        .filter(|(_, verdict)| *verdict == Verdict::Granted)
        .map(|(scope, _)| scope)
        .collect();
    if from_verdicts != scopes {
        problems.push(format!(
            "scopes() {scopes:?} differ from the granted verdicts {from_verdicts:?}"
        ));
    }
    let denied: Vec<_> = grant.denied().collect();
    let denied_verdicts: Vec<_> = grant
        .verdicts()
        .filter_map(|(scope, verdict)| match verdict {
            Verdict::Denied(reason) => Some((scope, reason)),
            _ => None,
        })
        .collect();
    if denied != denied_verdicts {
        problems.push(format!(
            "denied() {denied:?} differ from the denied verdicts {denied_verdicts:?}"
        ));
    }
    let asked: Vec<&str> = grant.verdicts().map(|(scope, _)| scope).collect();
    let distinct: BTreeSet<&str> = asked.iter().copied().collect();
    if distinct.len() != asked.len() {
        problems.push(format!("a scope has two verdicts: {asked:?}"));
    }
    for scope in &asked {
        if grant.is_granted(scope) != scopes.contains(scope) {
            problems.push(format!("is_granted({scope:?}) disagrees with scopes()"));
        }
    }
    if grant.is_empty() != scopes.is_empty() {
        problems.push("is_empty() disagrees with the granted scopes".to_string());
    }
    problems
}

/// The verdicts of a prompt in asked order, in the model's shape (`None` for
/// a scope granted so far or on the prompt), checked against the prompt's
/// three groups (`scopes`, `granted`, `denied`).
fn prompt_verdicts(prompt: &ConsentPrompt<'_>, problems: &mut Vec<String>) -> Vec<(String, Option<String>)> {
    let on_prompt: Vec<&str> = prompt.scopes().map(|s| s.scope()).collect();
    let granted: Vec<&str> = prompt.granted().collect();
    let denied: Vec<_> = prompt.denied().collect();
    let (mut seen_prompt, mut seen_granted, mut seen_denied) = (Vec::new(), Vec::new(), Vec::new());
    let mut verdicts = Vec::new();
    for (scope, verdict) in prompt.verdicts() {
        let reason = match verdict {
            Verdict::Asked => {
                seen_prompt.push(scope);
                None
            }
            Verdict::Granted => {
                seen_granted.push(scope);
                None
            }
            Verdict::Denied(reason) => {
                seen_denied.push((scope, reason));
                Some(reason.as_str().to_string())
            }
            other => {
                problems.push(format!("an unknown verdict {other:?}"));
                None
            }
        };
        verdicts.push((scope.to_string(), reason));
    }
    if seen_prompt != on_prompt || seen_granted != granted || seen_denied != denied {
        problems.push(format!(
            "the prompt's groups (prompt {on_prompt:?}, granted {granted:?}, denied {denied:?}) do not \
             match its verdicts (prompt {seen_prompt:?}, granted {seen_granted:?}, denied {seen_denied:?})"
        ));
    }
    if on_prompt.is_empty() {
        problems.push("a consent prompt with no scope on it".to_string());
    }
    verdicts
}

/// Each scope on the prompt shows its description: OpenID Connect's for an
/// OIDC scope, the API's definition for an API scope.
fn check_prompt(prompt: &ConsentPrompt<'_>, doc: &Doc, problems: &mut Vec<String>) {
    let api = prompt
        .audience()
        .and_then(|audience| doc.apis.iter().find(|api| api.audience == audience));
    for shown in prompt.scopes() {
        if model::is_oidc(shown.scope()) {
            if shown.description().is_empty() {
                problems.push(format!(
                    "OIDC scope {:?} on the prompt has no description",
                    shown.scope()
                ));
            }
            continue;
        }
        let defined = api.and_then(|api| api.scopes.iter().find(|def| def.name == shown.scope()));
        match defined {
            Some(def) if def.description == shown.description() => {}
            Some(def) => problems.push(format!(
                "{:?} is shown as {:?}, its definition says {:?}",
                shown.scope(),
                shown.description(),
                def.description
            )),
            None => problems.push(format!(
                "{:?} is on the prompt but not defined by the API",
                shown.scope()
            )),
        }
    }
}

/// What comparing one input found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Comparison {
    /// The crate and the model agree on everything compared.
    Same,
    /// They differ; every difference, one per line.
    Differ(String),
    /// The document does not build: nothing to compare.
    Unbuildable(String),
    /// The request cannot be expressed in the crate's types: nothing to compare.
    Inexpressible(String),
}

/// Builds the policy, decides with both, and compares.
pub fn compare(doc: &Doc, req: &Req, answer: &Answer) -> Comparison {
    match build_policy(doc) {
        Err(error) => Comparison::Unbuildable(error),
        Ok(policy) => compare_with(&policy, doc, req, answer),
    }
}

/// As [`compare`], with the policy already built from `doc`.
pub fn compare_with(policy: &Policy, doc: &Doc, req: &Req, answer: &Answer) -> Comparison {
    let real = match real_outcome(policy, doc, req, answer) {
        Ok(real) => real,
        Err(why) => return Comparison::Inexpressible(why),
    };
    let expected = model::decide_and_answer(doc, req, answer);
    let mut found = outcome_differences(&expected, &real.outcome);
    found.extend(real.problems.iter().map(|problem| format!("crate: {problem}")));
    if found.is_empty() {
        Comparison::Same
    } else {
        found.push(format!("model: {expected:?}"));
        found.push(format!("crate: {:?}", real.outcome));
        Comparison::Differ(found.join("\n"))
    }
}

/// `Ok(())` when the crate and the model agree on the outcome kind, the
/// granted list (order too), the prompt, every verdict's reason, the error
/// code, `scope_changed`, `refresh_token` and the new consent record (as a
/// set); `Err` lists every difference. A document that does not build or a
/// request the crate cannot express has nothing to compare: `Ok(())` (use
/// [`compare`] to tell these apart).
pub fn differences(doc: &Doc, req: &Req, answer: &Answer) -> Result<(), String> {
    match compare(doc, req, answer) {
        Comparison::Differ(found) => Err(found),
        Comparison::Same | Comparison::Unbuildable(_) | Comparison::Inexpressible(_) => Ok(()),
    }
}

/// Every difference between two outcomes, one line each.
pub fn outcome_differences(model: &Outcome, real: &Outcome) -> Vec<String> {
    let mut found = Vec::new();
    match (model, real) {
        (Outcome::Error(expected), Outcome::Error(got)) => {
            if expected != got {
                found.push(format!("error: model {expected}, crate {got}"));
            }
        }
        (
            Outcome::Consent {
                prompt: expected_prompt,
                required: expected_required,
                unverifiable_redirect: expected_mark,
                verdicts: expected_verdicts,
            },
            Outcome::Consent {
                prompt,
                required,
                unverifiable_redirect,
                verdicts,
            },
        ) => {
            if expected_prompt != prompt {
                found.push(format!("prompt: model {expected_prompt:?}, crate {prompt:?}"));
            }
            if expected_required != required {
                found.push(format!(
                    "required marks: model {expected_required:?}, crate {required:?}"
                ));
            }
            if expected_mark != unverifiable_redirect {
                found.push(format!(
                    "unverifiable_redirect: model {expected_mark}, crate {unverifiable_redirect}"
                ));
            }
            verdict_differences(expected_verdicts, verdicts, &mut found);
        }
        (Outcome::Granted(expected), Outcome::Granted(got)) => {
            if expected.audience != got.audience {
                found.push(format!(
                    "audience: model {:?}, crate {:?}",
                    expected.audience, got.audience
                ));
            }
            if expected.granted != got.granted {
                found.push(format!(
                    "granted: model {:?}, crate {:?}",
                    expected.granted, got.granted
                ));
            }
            verdict_differences(&expected.verdicts, &got.verdicts, &mut found);
            if expected.scope_changed != got.scope_changed {
                found.push(format!(
                    "scope_changed: model {}, crate {}",
                    expected.scope_changed, got.scope_changed
                ));
            }
            if expected.refresh_token != got.refresh_token {
                found.push(format!(
                    "refresh_token: model {}, crate {}",
                    expected.refresh_token, got.refresh_token
                ));
            }
            let as_sets = |record: &Option<Record>| {
                record.as_ref().map(|record| {
                    let set = |scopes: &[String]| scopes.iter().cloned().collect::<BTreeSet<String>>();
                    (set(&record.scopes), set(&record.declined), record.expires_at)
                })
            };
            if as_sets(&expected.consent_record) != as_sets(&got.consent_record) {
                found.push(format!(
                    "consent record: model {:?}, crate {:?}",
                    expected.consent_record, got.consent_record
                ));
            }
            if expected.permissions != got.permissions {
                found.push(format!(
                    "permissions: model {:?}, crate {:?}",
                    expected.permissions, got.permissions
                ));
            }
            if expected.unverifiable_redirect != got.unverifiable_redirect {
                found.push(format!(
                    "unverifiable_redirect: model {}, crate {}",
                    expected.unverifiable_redirect, got.unverifiable_redirect
                ));
            }
        }
        _ => found.push(format!(
            "outcome kind: model {}, crate {}",
            kind(model),
            kind(real)
        )),
    }
    found
}

fn verdict_differences(
    model: &[(String, Option<String>)],
    real: &[(String, Option<String>)],
    found: &mut Vec<String>,
) {
    let model_tokens: Vec<&String> = model.iter().map(|(token, _)| token).collect();
    let real_tokens: Vec<&String> = real.iter().map(|(token, _)| token).collect();
    if model_tokens != real_tokens {
        found.push(format!(
            "asked scopes: model {model_tokens:?}, crate {real_tokens:?}"
        ));
        return;
    }
    for ((token, expected), (_, got)) in model.iter().zip(real) {
        if expected != got {
            found.push(format!(
                "verdict on {token:?}: model {}, crate {}",
                expected.as_deref().unwrap_or("granted"),
                got.as_deref().unwrap_or("granted")
            ));
        }
    }
}

fn kind(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Error(code) => format!("error {code}"),
        Outcome::Consent { prompt, .. } => format!("consent required for {prompt:?}"),
        Outcome::Granted(granted) => format!("grant of {:?}", granted.granted),
    }
}

//! Helpers shared by the integration tests. Public API only.
//!
//! Each test binary uses a different part of this module.
#![allow(dead_code)]

use std::fmt::Write as _;

use scope_policy::{
    ConsentPrompt, ConsentRecord, Decision, DenyReason, ErrorCode, Flow, Grant, GrantError, LoadError,
    Policy, PolicyErrors, Request, Scope, User,
};

/// Builds a policy from a JSON document that must be valid.
#[track_caller]
pub fn policy(json: &str) -> Policy {
    match Policy::from_json(json) {
        Ok(policy) => policy,
        Err(error) => panic!("the JSON policy does not build: {error}"),
    }
}

/// Builds a policy from a TOML document that must be valid.
#[track_caller]
pub fn policy_toml(toml: &str) -> Policy {
    match Policy::from_toml(toml) {
        Ok(policy) => policy,
        Err(error) => panic!("the TOML policy does not build: {error}"),
    }
}

/// The problems of a well-formed JSON document that must not build.
#[track_caller]
pub fn policy_errors(json: &str) -> PolicyErrors {
    match Policy::from_json(json) {
        Err(LoadError::Policy(errors)) => errors,
        Err(error) => panic!("expected policy problems, got a shape error: {error}"),
        Ok(_) => panic!("expected policy problems, but the policy built"),
    }
}

/// The decision for a request that must pass the request-level checks.
#[track_caller]
pub fn decide<'a>(policy: &'a Policy, request: &Request<'a>) -> Decision<'a> {
    match policy.grant(request) {
        Ok(decision) => decision,
        Err(error) => panic!("expected a decision, got {} ({error})", error.code()),
    }
}

/// The grant for a request that must be decided without asking the user.
#[track_caller]
pub fn granted<'a>(policy: &'a Policy, request: &Request<'a>) -> Grant<'a> {
    match decide(policy, request) {
        Decision::Granted(grant) => grant,
        Decision::ConsentRequired(prompt) => {
            panic!(
                "expected a grant, got a consent prompt for {:?}",
                prompt_scopes(&prompt)
            )
        }
    }
}

/// The consent prompt for a request that must ask the user.
#[track_caller]
pub fn prompt<'a>(policy: &'a Policy, request: &Request<'a>) -> ConsentPrompt<'a> {
    match decide(policy, request) {
        Decision::ConsentRequired(prompt) => prompt,
        Decision::Granted(grant) => panic!("expected a consent prompt, got a grant of {:?}", scopes(&grant)),
    }
}

/// The error for a request that must be refused as a whole.
#[track_caller]
pub fn refused(policy: &Policy, request: &Request<'_>) -> GrantError {
    match policy.grant(request) {
        Err(error) => error,
        Ok(decision) => panic!("expected an error, got {:?}", Outcome::of(Ok(decision))),
    }
}

/// The granted scopes, in order.
pub fn scopes<'a>(grant: &Grant<'a>) -> Vec<&'a str> {
    grant.scopes().collect()
}

/// The denied scopes with their reasons, in order.
pub fn denied<'a>(grant: &Grant<'a>) -> Vec<(&'a str, DenyReason)> {
    grant.denied().collect()
}

/// The scopes on a consent prompt, in order.
pub fn prompt_scopes<'a>(prompt: &ConsentPrompt<'a>) -> Vec<&'a str> {
    prompt.scopes().map(|scope| scope.scope()).collect()
}

/// The scopes of a consent record, sorted (records are compared as sets).
pub fn record_set(record: &ConsentRecord) -> Vec<&str> {
    let mut scopes: Vec<&str> = record.scopes.iter().map(Scope::as_str).collect();
    scopes.sort_unstable();
    scopes
}

/// `scopes`, sorted, for comparing with [`record_set`].
pub fn set<'a>(scopes: &[&'a str]) -> Vec<&'a str> {
    let mut scopes = scopes.to_vec();
    scopes.sort_unstable();
    scopes
}

/// Parses a scope token that must be valid.
#[track_caller]
pub fn scope(token: &str) -> Scope {
    match Scope::new(token) {
        Ok(scope) => scope,
        Err(error) => panic!("{token:?} is not a scope token: {error}"),
    }
}

/// A stored consent record: user, client, audience, scopes, expiry.
pub type Rec = (
    &'static str,
    &'static str,
    Option<&'static str>,
    &'static [&'static str],
    Option<u64>,
);

/// Builds the consent records of a table row.
#[track_caller]
pub fn records(rows: &[Rec]) -> Vec<ConsentRecord> {
    rows.iter()
        .map(|&(user_id, client_id, audience, scopes, expires_at)| {
            record(user_id, client_id, audience, scopes, expires_at)
        })
        .collect()
}

/// One stored consent record.
#[track_caller]
pub fn record(
    user_id: &str,
    client_id: &str,
    audience: Option<&str>,
    scopes: &[&str],
    expires_at: Option<u64>,
) -> ConsentRecord {
    let record =
        ConsentRecord::new(user_id, client_id, audience).with_scopes(scopes.iter().map(|token| scope(token)));
    match expires_at {
        Some(expires_at) => record.with_expires_at(expires_at),
        None => record,
    }
}

/// One stored consent record that also declines some scopes.
#[track_caller]
pub fn record_declining(
    user_id: &str,
    client_id: &str,
    audience: Option<&str>,
    scopes: &[&str],
    declined: &[&str],
) -> ConsentRecord {
    record(user_id, client_id, audience, scopes, None)
        .with_declined(declined.iter().map(|token| scope(token)))
}

/// A user with these roles.
pub fn user(id: &str, roles: &[&str]) -> User {
    roles
        .iter()
        .fold(User::new(id), |user, role| user.with_role(*role))
}

/// What a decision came to, in a form tables can compare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A grant: the granted scopes and the denied ones, in order.
    Grant {
        granted: Vec<String>,
        denied: Vec<(String, DenyReason)>,
    },
    /// A consent prompt: the scopes granted without asking, the prompt's scopes, and the denied ones.
    Prompt {
        granted: Vec<String>,
        prompt: Vec<String>,
        denied: Vec<(String, DenyReason)>,
    },
    /// The request was refused as a whole.
    Error(ErrorCode),
}

impl Outcome {
    /// Summarizes a decision.
    pub fn of(result: Result<Decision<'_>, GrantError>) -> Outcome {
        let own = |scopes: &mut dyn Iterator<Item = &str>| scopes.map(str::to_owned).collect();
        let own_denied = |denied: &mut dyn Iterator<Item = (&str, DenyReason)>| {
            denied.map(|(s, r)| (s.to_owned(), r)).collect()
        };
        match result {
            Ok(Decision::Granted(grant)) => Outcome::Grant {
                granted: own(&mut grant.scopes()),
                denied: own_denied(&mut grant.denied()),
            },
            Ok(Decision::ConsentRequired(prompt)) => Outcome::Prompt {
                granted: own(&mut prompt.granted()),
                prompt: own(&mut prompt.scopes().map(|scope| scope.scope())),
                denied: own_denied(&mut prompt.denied()),
            },
            Err(error) => Outcome::Error(error.code()),
        }
    }
}

/// What a table row expects; `const`-friendly, compared through [`Outcome`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Granted scopes in order; denied scopes with their reasons in order.
    Grant(&'static [&'static str], &'static [(&'static str, DenyReason)]),
    /// Scopes granted without asking; the prompt's scopes; denied scopes with their reasons.
    Prompt(
        &'static [&'static str],
        &'static [&'static str],
        &'static [(&'static str, DenyReason)],
    ),
    /// The request is refused with this code.
    Error(ErrorCode),
}

impl From<Expect> for Outcome {
    fn from(expect: Expect) -> Outcome {
        let own = |scopes: &[&str]| scopes.iter().map(|s| (*s).to_owned()).collect();
        let own_denied =
            |denied: &[(&str, DenyReason)]| denied.iter().map(|(s, r)| ((*s).to_owned(), *r)).collect();
        match expect {
            Expect::Grant(granted, denied) => Outcome::Grant {
                granted: own(granted),
                denied: own_denied(denied),
            },
            Expect::Prompt(granted, prompt, denied) => Outcome::Prompt {
                granted: own(granted),
                prompt: own(prompt),
                denied: own_denied(denied),
            },
            Expect::Error(code) => Outcome::Error(code),
        }
    }
}

/// One request of a scenario table, with what it should come to.
///
/// Rows start from a scenario's base row (`..BASE`) and change what they are about.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    /// One sentence: what the row shows.
    pub about: &'static str,
    pub client: &'static str,
    pub flow: Flow,
    pub audience: Option<&'static str>,
    pub scope: Option<&'static str>,
    /// The user's id, or no user.
    pub user: Option<&'static str>,
    pub roles: &'static [&'static str],
    /// Direct permissions: audience and scope.
    pub permissions: &'static [(&'static str, &'static str)],
    pub consents: &'static [Rec],
    /// The raw `prompt` parameter.
    pub prompt: Option<&'static str>,
    pub redirect_uri: Option<&'static str>,
    pub original_scope: Option<&'static str>,
    pub original_audience: Option<&'static str>,
    pub now: Option<u64>,
    pub expect: Expect,
}

impl Case {
    /// An `authorization_code` request by user `alice`, with nothing else.
    pub const BASE: Case = Case {
        about: "",
        client: "",
        flow: Flow::AuthorizationCode,
        audience: None,
        scope: None,
        user: Some("alice"),
        roles: &[],
        permissions: &[],
        consents: &[],
        prompt: None,
        redirect_uri: None,
        original_scope: None,
        original_audience: None,
        now: None,
        expect: Expect::Grant(&[], &[]),
    };

    /// Decides this row's request on `policy`.
    #[track_caller]
    pub fn outcome(&self, policy: &Policy) -> Outcome {
        let user = self.user.map(|id| {
            let user = user(id, self.roles);
            self.permissions.iter().fold(user, |user, (audience, token)| {
                user.with_permission(*audience, scope(token))
            })
        });
        let consents = records(self.consents);
        let request = Request::new(self.client)
            .flow(self.flow)
            .consents(&consents)
            .maybe_prompt(self.prompt)
            .maybe_redirect_uri(self.redirect_uri)
            .maybe_audience(self.audience)
            .maybe_scope(self.scope)
            .maybe_user(user.as_ref())
            .maybe_original_scope(self.original_scope)
            .maybe_original_audience(self.original_audience)
            .maybe_now(self.now);
        Outcome::of(policy.grant(&request))
    }
}

/// Decides every row on `policy`, then fails once, listing each row that went wrong.
#[track_caller]
pub fn run(policy: &Policy, cases: &[Case]) {
    let mut failures = String::new();
    for case in cases {
        let actual = case.outcome(policy);
        let expected = Outcome::from(case.expect);
        if actual != expected {
            let _ = write!(
                failures,
                "\n- {}\n    expected: {expected:?}\n    actual:   {actual:?}",
                case.about
            );
        }
    }
    assert!(failures.is_empty(), "rows that failed:{failures}");
}

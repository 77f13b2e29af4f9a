//! `grant()` on arbitrary requests against two fixed, realistic policies.
//!
//! The request's fields are derived with `arbitrary`, drawing most strings
//! from the policies' own vocabulary and from hostile mutations of it (case
//! flips, a `*` suffix, a trailing slash, a TAB, an NBSP, a Cyrillic
//! look-alike), as TESTING.md §2 asks. Every decision is checked against the
//! invariants that need no model: granted ⊆ asked ∩ (defined ∪ OIDC), RBAC,
//! offline access, refresh never widens, consent covers what is granted, the
//! prompt is answered exactly, determinism, and the rendered scope string.
#![no_main]

use std::collections::BTreeSet;
use std::sync::OnceLock;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use scope_policy::{
    is_oidc_scope, Api, ConsentRecord, Decision, DenyReason, Flow, Grant, GrantError, Limits, Permission,
    Policy, Prompt, Request, Scope, ScopeParam, User, Verdict, OFFLINE_ACCESS,
};

const EVENTS: &str = "https://events.example.com/api";
const BILLING: &str = "https://billing.example.com/api";
const DOCS: &str = "https://docs.example.com/api";
const NOW: u64 = 1_700_000_000;

/// Default settings; RBAC on Events; Billing needs a client grant and never
/// skips consent; Docs denies user tokens.
const LENIENT: &str = r#"{
  "apis": [
    { "audience": "https://events.example.com/api", "name": "Events API", "rbac": true, "allow_offline_access": true,
      "default_scopes": ["read:events", "read:attendees"],
      "scopes": [ { "name": "create:events", "description": "Create events" },
                  { "name": "read:events", "description": "Read events" },
                  { "name": "update:events", "description": "Update events" },
                  { "name": "delete:events", "description": "Delete events" },
                  { "name": "read:attendees", "description": "Read attendee lists" } ] },
    { "audience": "https://billing.example.com/api", "allow_skipping_consent": false,
      "user_access": "require_client_grant",
      "scopes": [ { "name": "read:invoices", "description": "Read invoices" },
                  { "name": "pay:invoices", "description": "Pay invoices" } ] },
    { "audience": "https://docs.example.com/api", "user_access": "deny_all", "client_access": "require_client_grant",
      "scopes": [ { "name": "read:docs", "description": "Read documents" } ] }
  ],
  "roles": [
    { "name": "viewer", "permissions": [ { "audience": "https://events.example.com/api", "scope": "read:*" } ] },
    { "name": "organizer", "inherits": ["viewer"], "permissions": [
        { "audience": "https://events.example.com/api", "scope": "create:events" },
        { "audience": "https://events.example.com/api", "scope": "update:events" } ] },
    { "name": "admin", "inherits": ["organizer"], "permissions": [ { "audience": "https://events.example.com/api", "scope": "*" } ] }
  ],
  "clients": [
    { "client_id": "events-web", "first_party": true, "kind": "regular_web",
      "grants": [ { "audience": "https://billing.example.com/api", "subject": "user", "scopes": ["read:*"] } ] },
    { "client_id": "partner", "kind": "regular_web",
      "grants": [ { "audience": "https://billing.example.com/api", "subject": "user", "scopes": ["*"] } ] },
    { "client_id": "spa-app", "first_party": true, "kind": "spa", "grant_types": ["authorization_code"] },
    { "client_id": "bot", "kind": "machine_to_machine",
      "grants": [ { "audience": "https://events.example.com/api", "scopes": ["read:*"] },
                  { "audience": "https://docs.example.com/api", "scopes": ["*"] } ] },
    { "client_id": "hybrid", "kind": "native", "grant_types": ["authorization_code", "client_credentials", "refresh_token"],
      "grants": [ { "audience": "https://events.example.com/api", "subject": "client", "scopes": ["update:events"] },
                  { "audience": "https://billing.example.com/api", "subject": "user", "scopes": ["pay:invoices"] } ] }
  ]
}"#;

/// Strict settings: unknown scopes rejected, a default audience, small limits.
const STRICT: &str = r#"{
  "settings": { "unknown_scopes": "reject", "default_audience": "https://events.example.com/api",
                "max_scope_length": 96, "max_scope_tokens": 6 },
  "apis": [
    { "audience": "https://events.example.com/api", "rbac": true, "allow_skipping_consent": false,
      "scopes": [ { "name": "create:events", "description": "Create events" },
                  { "name": "read:events", "description": "Read events" },
                  { "name": "update:events" }, { "name": "delete:events" } ] },
    { "audience": "https://billing.example.com/api", "rbac": true, "allow_offline_access": true,
      "user_access": "require_client_grant", "client_access": "deny_all",
      "default_scopes": ["read:invoices"],
      "scopes": [ { "name": "read:invoices" }, { "name": "pay:invoices" } ] }
  ],
  "roles": [
    { "name": "viewer", "permissions": [ { "audience": "https://events.example.com/api", "scope": "read:events" },
                                         { "audience": "https://billing.example.com/api", "scope": "read:invoices" } ] },
    { "name": "organizer", "inherits": ["viewer"], "permissions": [ { "audience": "https://events.example.com/api", "scope": "*" } ] },
    { "name": "admin", "inherits": ["organizer", "viewer"], "permissions": [ { "audience": "https://billing.example.com/api", "scope": "*" } ] }
  ],
  "clients": [
    { "client_id": "events-web", "first_party": true, "kind": "regular_web",
      "grants": [ { "audience": "https://billing.example.com/api", "scopes": ["read:invoices"] } ] },
    { "client_id": "partner", "kind": "spa" },
    { "client_id": "bot", "kind": "machine_to_machine",
      "grants": [ { "audience": "https://events.example.com/api", "scopes": ["read:events"] },
                  { "audience": "https://billing.example.com/api", "scopes": ["*"] } ] }
  ]
}"#;

const CLIENTS: &[&str] = &["events-web", "partner", "spa-app", "bot", "hybrid", ""];
const AUDIENCES: &[&str] = &[EVENTS, BILLING, DOCS, ""];
const SCOPES: &[&str] = &[
    "openid",
    "profile",
    "email",
    "offline_access",
    "create:events",
    "read:events",
    "update:events",
    "delete:events",
    "read:attendees",
    "read:invoices",
    "pay:invoices",
    "read:docs",
    "*",
    "read:*",
];
const ROLES: &[&str] = &["viewer", "organizer", "admin", "ghost"];
const USERS: &[&str] = &["alice", "bob"];

fn policies() -> &'static [Policy; 2] {
    static POLICIES: OnceLock<[Policy; 2]> = OnceLock::new();
    POLICIES.get_or_init(|| {
        [
            Policy::from_json(LENIENT).expect("the lenient policy builds"),
            Policy::from_json(STRICT).expect("the strict policy builds"),
        ]
    })
}

#[derive(Debug, Arbitrary)]
enum Mutation {
    Upper,
    FirstUpper,
    Star,
    Slash,
    Tab,
    Nbsp,
    Cyrillic,
    Space,
    Prefix,
    Doubled,
}

/// A string drawn from a vocabulary, a hostile mutation of one, or anything.
#[derive(Debug, Arbitrary)]
enum Text {
    Known(u8),
    Mutated(u8, Mutation),
    Raw(String),
}

impl Text {
    fn resolve(&self, vocabulary: &[&str]) -> String {
        let pick = |i: &u8| vocabulary[usize::from(*i) % vocabulary.len()].to_owned();
        match self {
            Text::Known(i) => pick(i),
            Text::Mutated(i, mutation) => {
                let word = pick(i);
                match mutation {
                    Mutation::Upper => word.to_uppercase(),
                    Mutation::FirstUpper => {
                        let mut chars = word.chars();
                        chars
                            .next()
                            .map(|c| c.to_uppercase().chain(chars).collect())
                            .unwrap_or_default()
                    }
                    Mutation::Star => format!("{word}*"),
                    Mutation::Slash => format!("{word}/"),
                    Mutation::Tab => format!("{word}\t"),
                    Mutation::Nbsp => format!("{word}\u{a0}"),
                    Mutation::Cyrillic => word.replacen('e', "\u{435}", 1),
                    Mutation::Space => format!(" {word} "),
                    Mutation::Prefix => word.split(':').next().unwrap_or_default().to_owned(),
                    Mutation::Doubled => format!("{word}{word}"),
                }
            }
            Text::Raw(text) => text.clone(),
        }
    }
}

#[derive(Debug, Arbitrary)]
enum ScopeInput {
    Tokens(Vec<Text>),
    Raw(String),
}

impl ScopeInput {
    fn resolve(&self) -> String {
        match self {
            ScopeInput::Tokens(tokens) => tokens
                .iter()
                .map(|t| t.resolve(SCOPES))
                .collect::<Vec<_>>()
                .join(" "),
            ScopeInput::Raw(raw) => raw.clone(),
        }
    }
}

#[derive(Debug, Arbitrary)]
enum Time {
    Near(i8),
    Absolute(u64),
}

impl Time {
    fn resolve(&self) -> u64 {
        match self {
            Time::Near(offset) => NOW.saturating_add_signed(i64::from(*offset)),
            Time::Absolute(at) => *at,
        }
    }
}

#[derive(Debug, Arbitrary)]
struct FuzzUser {
    id: Text,
    roles: Vec<Text>,
    permissions: Vec<(Text, Text)>,
}

#[derive(Debug, Arbitrary)]
struct FuzzConsent {
    user: Text,
    client: Text,
    audience: Option<Text>,
    scopes: Vec<Text>,
    expires_at: Option<Time>,
}

#[derive(Debug, Arbitrary)]
enum Answer {
    Nothing,
    ApproveAll,
    ApproveSome(Vec<u8>),
    ApproveForged(Text),
    Deny,
}

#[derive(Debug, Arbitrary)]
struct Input {
    strict: bool,
    client: Text,
    flow: u8,
    audience: Option<Text>,
    scope: Option<ScopeInput>,
    user: Option<FuzzUser>,
    consents: Vec<FuzzConsent>,
    prompt_consent: bool,
    original_scope: Option<ScopeInput>,
    now: Option<Time>,
    answer: Answer,
}

fn unlimited() -> Limits {
    Limits {
        max_scope_length: usize::MAX,
        max_scope_tokens: usize::MAX,
    }
}

fn tokens(raw: &str) -> Vec<String> {
    ScopeParam::parse(raw, unlimited())
        .map(|p| p.tokens().iter().map(|t| (*t).to_owned()).collect())
        .unwrap_or_default()
}

/// RFC 6749 §5.2: `error_description` is `%x20-21 / %x23-5B / %x5D-7E`.
fn check_error(error: &GrantError) {
    let description = error.description();
    assert!(!description.is_empty());
    assert!(
        description
            .bytes()
            .all(|b| matches!(b, 0x20 | 0x21 | 0x23..=0x5B | 0x5D..=0x7E)),
        "unsafe description {description:?}"
    );
    let _ = (error.code().as_str(), error.to_string());
}

/// What one decision is checked against.
struct Context<'a> {
    policy: &'a Policy,
    flow: Flow,
    api: Option<&'a Api>,
    user: Option<&'a User>,
    client_id: &'a str,
    consents: &'a [ConsentRecord],
    prompt: Prompt,
    now: Option<u64>,
    /// The asked scopes when they can be told from outside (not for client
    /// credentials defaults, which come from a grant the public API hides).
    asked: Option<Vec<String>>,
    /// The requested set (DESIGN §3.5).
    requested: BTreeSet<String>,
    original: Option<Vec<String>>,
}

impl Context<'_> {
    fn consent_required(&self) -> bool {
        let client = self
            .policy
            .client(self.client_id)
            .expect("a decision has a known client");
        self.flow == Flow::AuthorizationCode
            && (!client.first_party() || self.api.is_some_and(|api| !api.allow_skipping_consent()))
    }

    fn covered(&self, scope: &str) -> bool {
        let user = self.user.expect("authorization_code has a user");
        self.prompt == Prompt::Default
            && self.consents.iter().any(|record| {
                record.applies_to(&user.id, self.client_id, self.api.map(Api::audience), self.now)
                    && record.holds(scope)
            })
    }

    /// Checks on one scope the decision let through (granted, or on the prompt).
    fn check_allowed(&self, scope: &str) {
        let client = self.policy.client(self.client_id).expect("known client");
        if let Some(asked) = &self.asked {
            assert!(
                asked.iter().any(|a| a == scope),
                "{scope:?} allowed but not asked"
            );
        }
        if let Some(original) = &self.original {
            assert!(
                original.iter().any(|o| o == scope),
                "refresh widened to {scope:?}"
            );
        }
        if is_oidc_scope(scope) {
            assert!(self.flow.has_user(), "OIDC scope {scope:?} without a user");
            if scope == OFFLINE_ACCESS {
                assert!(
                    client.allows(Flow::RefreshToken),
                    "offline_access without refresh tokens"
                );
                assert!(
                    self.api.is_none_or(Api::allow_offline_access),
                    "offline_access not allowed by the API"
                );
            }
            return;
        }
        let api = self.api.expect("an API scope was allowed with no audience");
        assert!(
            api.description(scope).is_some(),
            "{scope:?} is not defined by {}",
            api.audience()
        );
        if self.flow.has_user() && api.rbac() {
            let user = self.user.expect("a user flow has a user");
            let by_role = user
                .roles
                .iter()
                .filter_map(|name| self.policy.role(name))
                .any(|role| role.permits(api, scope));
            let direct = user
                .permissions
                .iter()
                .any(|p| p.audience == api.audience() && p.scope == scope);
            assert!(by_role || direct, "RBAC let {scope:?} through");
        }
    }

    /// Checks a final grant; `approved` are the scopes the user approved on a prompt.
    fn check_grant(&self, grant: &Grant<'_>, approved: &BTreeSet<String>) {
        let granted: Vec<&str> = grant.scopes().collect();
        let distinct: BTreeSet<&str> = granted.iter().copied().collect();
        assert_eq!(distinct.len(), granted.len(), "repeated scope in a grant");
        for scope in &granted {
            self.check_allowed(scope);
            if self.consent_required() {
                assert!(
                    approved.contains(*scope) || self.covered(scope),
                    "{scope:?} granted without consent"
                );
            }
        }
        assert_eq!(grant.audience(), self.api.map(Api::audience));
        if let Some(asked) = &self.asked {
            let verdicts: Vec<&str> = grant.verdicts().map(|(scope, _)| scope).collect();
            assert_eq!(verdicts, *asked, "one verdict per asked scope, in order");
        }
        for (scope, verdict) in grant.verdicts() {
            assert_eq!(verdict == Verdict::Granted, granted.contains(&scope));
        }
        // The scope string renders the granted scopes and parses back to them.
        let rendered = grant.scope_string();
        assert_eq!(
            tokens(&rendered),
            granted.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>()
        );
        assert_eq!(grant.refresh_token(), distinct.contains(OFFLINE_ACCESS));
        if self.asked.is_some() {
            let granted_set: BTreeSet<String> = granted.iter().map(|s| (*s).to_owned()).collect();
            assert_eq!(
                grant.scope_changed(),
                granted_set != self.requested,
                "scope_changed"
            );
        }
    }
}

fuzz_target!(|input: Input| {
    let policy = &policies()[usize::from(input.strict)];
    let client_id = input.client.resolve(CLIENTS);
    let flow = Flow::ALL[usize::from(input.flow) % Flow::ALL.len()];
    let audience = input.audience.as_ref().map(|a| a.resolve(AUDIENCES));
    let scope = input.scope.as_ref().map(ScopeInput::resolve);
    let original_scope = input.original_scope.as_ref().map(ScopeInput::resolve);
    let user = input.user.as_ref().map(|u| User {
        id: u.id.resolve(USERS),
        roles: u.roles.iter().map(|r| r.resolve(ROLES)).collect(),
        permissions: u
            .permissions
            .iter()
            .filter_map(|(audience, scope)| {
                Some(Permission {
                    audience: audience.resolve(AUDIENCES),
                    scope: Scope::new(&scope.resolve(SCOPES)).ok()?,
                })
            })
            .collect(),
    });
    let consents: Vec<ConsentRecord> = input
        .consents
        .iter()
        .map(|c| ConsentRecord {
            user_id: c.user.resolve(USERS),
            client_id: c.client.resolve(CLIENTS),
            audience: c.audience.as_ref().map(|a| a.resolve(AUDIENCES)),
            scopes: c
                .scopes
                .iter()
                .filter_map(|s| Scope::new(&s.resolve(SCOPES)).ok())
                .collect(),
            expires_at: c.expires_at.as_ref().map(Time::resolve),
        })
        .collect();
    let now = input.now.as_ref().map(Time::resolve);
    let prompt = if input.prompt_consent {
        Prompt::Consent
    } else {
        Prompt::Default
    };

    let mut request = Request::new(&client_id)
        .flow(flow)
        .consents(&consents)
        .prompt(prompt);
    if let Some(audience) = &audience {
        request = request.audience(audience);
    }
    if let Some(scope) = &scope {
        request = request.scope(scope);
    }
    if let Some(user) = &user {
        request = request.user(user);
    }
    if let Some(original) = &original_scope {
        request = request.original_scope(original);
    }
    if let Some(now) = now {
        request = request.now(now);
    }

    let result = policy.grant(&request);
    // Determinism: the same request decides the same way.
    assert_eq!(format!("{result:?}"), format!("{:?}", policy.grant(&request)));

    let decision = match result {
        Err(error) => {
            check_error(&error);
            match policy.client(&client_id) {
                None => assert!(matches!(error, GrantError::UnknownClient { .. }), "{error:?}"),
                Some(client) if !client.allows(flow) => {
                    assert!(matches!(error, GrantError::FlowNotAllowed { .. }), "{error:?}")
                }
                Some(_) => assert!(!matches!(
                    error,
                    GrantError::UnknownClient { .. } | GrantError::FlowNotAllowed { .. }
                )),
            }
            return;
        }
        Ok(decision) => decision,
    };

    // The request passed every request-level check.
    let client = policy.client(&client_id).expect("a decision has a known client");
    assert!(client.allows(flow));
    assert_eq!(flow.has_user(), user.is_some());
    let limits = policy.limits();
    let param =
        ScopeParam::parse(scope.as_deref().unwrap_or(""), limits).expect("the scope parameter parsed");
    let param_tokens: Vec<String> = param.tokens().iter().map(|t| (*t).to_owned()).collect();
    let api = match &audience {
        Some(audience) => Some(policy.api(audience).expect("a named audience is an API")),
        None => policy.default_audience(),
    };
    let original = (flow == Flow::RefreshToken).then(|| tokens(original_scope.as_deref().unwrap_or("")));
    let asked = if !param_tokens.is_empty() {
        Some(param_tokens.clone())
    } else {
        match flow {
            Flow::RefreshToken => original.clone(),
            Flow::AuthorizationCode => Some(
                api.map(|api| api.default_scopes().map(|s| s.as_str().to_owned()).collect())
                    .unwrap_or_default(),
            ),
            _ => None,
        }
    };
    let requested: BTreeSet<String> = if !param_tokens.is_empty() {
        param_tokens.iter().cloned().collect()
    } else if flow == Flow::RefreshToken {
        original.iter().flatten().cloned().collect()
    } else {
        BTreeSet::new()
    };
    let context = Context {
        policy,
        flow,
        api,
        user: user.as_ref(),
        client_id: &client_id,
        consents: &consents,
        prompt,
        now,
        asked,
        requested,
        original,
    };

    match decision {
        Decision::Granted(grant) => context.check_grant(&grant, &BTreeSet::new()),
        Decision::ConsentRequired(prompt_) => {
            assert!(
                context.consent_required(),
                "a prompt where no consent is required"
            );
            let on_prompt: Vec<String> = prompt_.scopes().map(|p| p.scope().to_owned()).collect();
            assert!(!on_prompt.is_empty(), "an empty prompt");
            let pre_granted: BTreeSet<String> = prompt_.granted().map(str::to_owned).collect();
            let denied: BTreeSet<String> = prompt_.denied().map(|(s, _)| s.to_owned()).collect();
            for scope in &on_prompt {
                context.check_allowed(scope);
                assert!(!context.covered(scope), "{scope:?} is covered but on the prompt");
                assert!(!pre_granted.contains(scope) && !denied.contains(scope));
            }
            for scope in &pre_granted {
                assert!(
                    context.covered(scope),
                    "{scope:?} granted before the prompt without consent"
                );
            }
            assert!(prompt_
                .denied()
                .all(|(_, reason)| reason != DenyReason::ConsentDenied));
            let approve = |approved: Vec<String>| {
                let set: BTreeSet<String> = approved.iter().cloned().collect();
                let grant = prompt_
                    .clone()
                    .approve(&approved)
                    .expect("approving prompt scopes works");
                context.check_grant(&grant, &set);
                let expected: BTreeSet<String> = pre_granted.union(&set).cloned().collect();
                let got: BTreeSet<String> = grant.scopes().map(str::to_owned).collect();
                assert_eq!(got, expected, "granted = pre-granted ∪ approved");
                for (scope, reason) in grant.denied() {
                    if on_prompt.iter().any(|p| p == scope) {
                        assert_eq!(reason, DenyReason::ConsentDenied);
                        assert!(!set.contains(scope));
                    }
                }
                let record = grant.consent_record().expect("an approval comes with a record");
                assert_eq!(record.client_id, client_id);
                assert_eq!(record.audience.as_deref(), api.map(Api::audience));
                assert_eq!(record.expires_at, None);
                for scope in &set {
                    assert!(record.holds(scope), "the new record lacks approved {scope:?}");
                }
            };
            match &input.answer {
                Answer::Nothing => {}
                Answer::ApproveAll => approve(on_prompt.clone()),
                Answer::ApproveSome(picks) => approve(
                    picks
                        .iter()
                        .map(|i| on_prompt[usize::from(*i) % on_prompt.len()].clone())
                        .collect(),
                ),
                Answer::ApproveForged(text) => {
                    let forged = text.resolve(SCOPES);
                    if on_prompt.contains(&forged) {
                        approve(vec![forged]);
                    } else {
                        let error = prompt_
                            .clone()
                            .approve([forged.as_str()])
                            .expect_err("a forged approval fails");
                        assert_eq!(error, GrantError::ApprovalNotOnPrompt { scope: forged });
                        check_error(&error);
                    }
                }
                Answer::Deny => {
                    let error = prompt_.clone().deny();
                    assert_eq!(error, GrantError::ConsentDenied);
                    check_error(&error);
                }
            }
        }
    }
});

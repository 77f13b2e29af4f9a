//! `grant()` on arbitrary requests against two fixed, realistic policies
//! (DESIGN.md revision 2).
//!
//! The request's fields are derived with `arbitrary`, drawing most strings
//! from the policies' own vocabulary and from hostile mutations of it (case
//! flips, a `*` suffix, a trailing slash, a TAB, an NBSP, a Cyrillic
//! look-alike), as TESTING.md §2 asks; prompts from combinations of the four
//! OIDC values with good and bad separators, redirect URIs from a vocabulary
//! of verifiable URLs and loopback spellings (DESIGN §3.6), and raw text for
//! both.
//!
//! Every decision is checked against the target's own reading of DESIGN §3,
//! written here from the policy *document* (roles, inheritance and client
//! grants are resolved again, by hand) and the request, without the
//! reference model: the request-level checks and their error codes; each
//! verdict (the §3.3 reason, who must consent, when remembered consent
//! counts, declined scopes, `consent_missing` in a refresh); the prompt
//! (scopes, required marks, descriptions, the redirect mark), `prompt=none`;
//! approvals (required scopes, forged scopes, the `now` checks, the new
//! record's formula, expiry and `consent_lifetime`) and denials; the grant
//! (scope string, `scope_changed`, `refresh_token`, `permissions`); and a few
//! metamorphic relations: determinism, `login`/`select_account`, empty and
//! ignored parameters change nothing, `prompt=none` fails exactly where the
//! same request without it prompts, and reordering the scope parameter
//! changes no set.
#![no_main]

use std::collections::BTreeSet;
use std::sync::OnceLock;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use scope_policy::{
    is_verifiable_redirect, redirect_host, Api, ApiDocument, ConsentPrompt, ConsentRecord, Decision,
    DenyReason, ErrorCode, Flow, Grant, GrantError, Permission, Policy, PolicyDocument, Request, Scope,
    ScopeConsent, User, Verdict,
};

const EVENTS: &str = "https://events.example.com/api";
const BILLING: &str = "https://billing.example.com/api";
const DOCS: &str = "https://docs.example.com/api";
const NOW: u64 = 1_700_000_000;
const OFFLINE_ACCESS: &str = "offline_access";
const OIDC: [&str; 6] = ["openid", "profile", "email", "address", "phone", "offline_access"];

/// Default settings; RBAC on Events, with a one-time and a required scope;
/// Billing needs a client grant and never skips consent, and its one-time
/// scope is also required; Docs denies user tokens. A first-party native
/// client with the device flow; a confidential client with every flow.
const LENIENT: &str = r#"{
  "apis": [
    { "audience": "https://events.example.com/api", "name": "Events API", "rbac": true, "allow_offline_access": true,
      "default_scopes": ["read:events", "read:attendees", "delete:events"],
      "scopes": [ { "name": "create:events", "description": "Create events" },
                  { "name": "read:events", "description": "Read events" },
                  { "name": "update:events", "description": "Update events" },
                  { "name": "delete:events", "description": "Delete events", "consent": "always" },
                  { "name": "read:attendees", "description": "Read attendee lists", "required": true } ],
      "metadata": { "owner": "events-team", "logo": "https://events.example.com/logo.png" } },
    { "audience": "https://billing.example.com/api", "allow_skipping_consent": false,
      "user_access": "require_client_grant",
      "scopes": [ { "name": "read:invoices", "description": "Read invoices", "required": true },
                  { "name": "pay:invoices", "description": "Pay invoices", "consent": "always", "required": true } ] },
    { "audience": "https://docs.example.com/api", "user_access": "deny_all", "client_access": "require_client_grant",
      "scopes": [ { "name": "read:docs", "description": "Read documents", "consent": "default" } ] }
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
      "grants": [ { "audience": "https://billing.example.com/api", "subject": "user", "scopes": ["read:*"] } ],
      "metadata": { "redirect_uris": "https://events.example.com/callback" } },
    { "client_id": "partner", "kind": "regular_web",
      "grants": [ { "audience": "https://billing.example.com/api", "scopes": ["*"] } ] },
    { "client_id": "spa-app", "first_party": true, "kind": "spa", "grant_types": ["authorization_code"] },
    { "client_id": "tv-app", "first_party": true, "kind": "native",
      "grant_types": ["device_code", "authorization_code", "refresh_token"],
      "grants": [ { "audience": "https://billing.example.com/api", "scopes": ["read:invoices", "pay:invoices"] } ],
      "metadata": { "platform": "tv" } },
    { "client_id": "bot", "kind": "machine_to_machine",
      "grants": [ { "audience": "https://events.example.com/api", "scopes": ["read:*"] },
                  { "audience": "https://docs.example.com/api", "scopes": ["*"] } ] },
    { "client_id": "hybrid", "kind": "regular_web",
      "grant_types": ["authorization_code", "client_credentials", "refresh_token", "device_code"],
      "grants": [ { "audience": "https://events.example.com/api", "subject": "client", "scopes": ["update:events"] },
                  { "audience": "https://billing.example.com/api", "subject": "user", "scopes": ["pay:invoices"] } ] }
  ]
}"#;

/// Strict settings: unknown scopes rejected, a default audience, small
/// limits, and a consent lifetime of an hour.
const STRICT: &str = r#"{
  "settings": { "unknown_scopes": "reject", "default_audience": "https://events.example.com/api",
                "max_scope_length": 96, "max_scope_tokens": 6, "consent_lifetime": 3600 },
  "apis": [
    { "audience": "https://events.example.com/api", "rbac": true, "allow_skipping_consent": false,
      "scopes": [ { "name": "create:events", "description": "Create events", "required": true },
                  { "name": "read:events", "description": "Read events" },
                  { "name": "update:events" }, { "name": "delete:events", "consent": "always" } ] },
    { "audience": "https://billing.example.com/api", "rbac": true, "allow_offline_access": true,
      "user_access": "require_client_grant", "client_access": "deny_all",
      "default_scopes": ["read:invoices", "pay:invoices"],
      "scopes": [ { "name": "read:invoices" }, { "name": "pay:invoices", "consent": "always", "required": true } ],
      "metadata": { "owner": "billing-team" } }
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
    { "client_id": "tv-app", "first_party": true, "kind": "native", "grant_types": ["device_code", "refresh_token"],
      "grants": [ { "audience": "https://billing.example.com/api", "subject": "user", "scopes": ["*"] } ] },
    { "client_id": "bot", "kind": "machine_to_machine",
      "grants": [ { "audience": "https://events.example.com/api", "scopes": ["read:events"] },
                  { "audience": "https://billing.example.com/api", "scopes": ["*"] } ] }
  ]
}"#;

const CLIENTS: &[&str] = &["events-web", "partner", "spa-app", "tv-app", "bot", "hybrid", ""];
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
const PROMPT_VALUES: [&str; 4] = ["none", "login", "consent", "select_account"];
const PROMPT_SEPARATORS: [&str; 5] = [" ", "  ", "\t", ",", "+"];
/// Whole prompts, good and bad (DESIGN §3.6).
const PROMPTS: &[&str] = &[
    "",
    "   ",
    "none",
    "consent",
    "login",
    "select_account",
    "login consent",
    " consent  select_account ",
    "none none",
    "consent consent",
    "none login",
    "none consent",
    "Consent",
    "create",
    "consent\tlogin",
    "login,consent",
];

/// Redirect URIs and whether DESIGN §2, §3.6 (and decisions item 7) call
/// them verifiable.
const REDIRECTS: &[(&str, bool)] = &[
    ("https://events.example.com/callback", true),
    ("https://app.example.com:8443/cb?state=1#frag", true),
    ("HTTPS://Events.Example.COM./cb", true),
    ("https://user:pass@partner.example.org/cb", true),
    ("https://localhost@example.com/cb", true),
    ("https://%65xample.com/cb", true),
    ("https://[2001:db8::1]/cb", true),
    ("https://[::ffff:8.8.8.8]/cb", true),
    ("https://[::127.0.0.1]/cb", true),
    ("https://127.0.0.1.example.com/cb", true),
    ("https://256.0.0.1/cb", true),
    ("https://1.2.3.4/cb", true),
    ("https://localhost.example.com/cb", true),
    ("https://notlocalhost/cb", true),
    ("http://events.example.com/callback", false),
    ("com.example.app:/callback", false),
    ("com.example.app://callback", false),
    ("https://localhost/cb", false),
    ("https://LOCALHOST./cb", false),
    ("https://app.localhost/cb", false),
    ("https://example.com@localhost:8080/cb", false),
    ("https://%6c%6f%63%61%6c%68%6f%73%74/cb", false),
    ("https://127.0.0.1/cb", false),
    ("https://127.1/cb", false),
    ("https://0x7f.0.0.1/cb", false),
    ("https://0177.0.0.1/cb", false),
    ("https://2130706433/cb", false),
    ("https://0x7f000001/cb", false),
    ("https://127.255.255.254:8443/cb", false),
    ("https://0.0.0.0/cb", false),
    ("https://0/cb", false),
    ("https://0x0/cb", false),
    ("https://0x/cb", false),
    ("https://[::1]/cb", false),
    ("https://[0:0:0:0:0:0:0:1]/cb", false),
    ("https://[::]/cb", false),
    ("https://[::ffff:127.0.0.1]/cb", false),
    ("https://[::ffff:7f00:1]/cb", false),
    ("https://[fe80::1%25eth0]/cb", false),
    ("https://[v1.x]/cb", false),
    ("https:///cb", false),
    ("https://./cb", false),
    ("https://exa mple.com/cb", false),
    ("https://ex%ample.com/cb", false),
    ("https:example.com/cb", false),
    ("https://b\u{fc}cher.example/cb", false),
    ("https://%C3%BC.example/cb", false),
    ("", false),
];

/// A fixed policy, and its document: the target resolves roles and client
/// grants itself, from what the operator wrote.
struct Fixed {
    policy: Policy,
    document: PolicyDocument,
}

fn fixed() -> &'static [Fixed; 2] {
    static FIXED: OnceLock<[Fixed; 2]> = OnceLock::new();
    FIXED.get_or_init(|| {
        let load = |text: &str| Fixed {
            policy: Policy::from_json(text).expect("the fixed policy builds"),
            document: PolicyDocument::from_json(text).expect("the fixed policy reads"),
        };
        let fixed = [load(LENIENT), load(STRICT)];
        // Metadata is carried and readable, never interpreted.
        let events = fixed[0].policy.api(EVENTS).expect("events");
        assert_eq!(events.metadata().get("owner"), Some("events-team"));
        let web = fixed[0].policy.client("events-web").expect("events-web");
        assert_eq!(
            web.metadata().get("redirect_uris"),
            Some("https://events.example.com/callback")
        );
        assert_eq!(fixed[1].policy.consent_lifetime(), Some(3600));
        fixed
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

/// The raw `prompt`: OIDC values joined by a separator (a space, two, or a
/// wrong one), maybe padded with spaces; or a whole prompt from [`PROMPTS`],
/// mutated, or raw text.
#[derive(Debug, Arbitrary)]
enum PromptInput {
    Values(Vec<u8>, u8),
    Text(Text),
}

impl PromptInput {
    fn resolve(&self) -> String {
        match self {
            PromptInput::Values(values, separator) => {
                let words: Vec<&str> = values
                    .iter()
                    .take(5)
                    .map(|v| PROMPT_VALUES[usize::from(*v) % PROMPT_VALUES.len()])
                    .collect();
                let joined =
                    words.join(PROMPT_SEPARATORS[usize::from(*separator % 8) % PROMPT_SEPARATORS.len()]);
                if *separator >= 128 {
                    format!(" {joined} ")
                } else {
                    joined
                }
            }
            PromptInput::Text(text) => text.resolve(PROMPTS),
        }
    }
}

#[derive(Debug, Arbitrary)]
enum Time {
    Near(i8),
    End(u8),
    Absolute(u64),
}

impl Time {
    fn resolve(&self) -> u64 {
        match self {
            Time::Near(offset) => NOW.saturating_add_signed(i64::from(*offset)),
            Time::End(back) => u64::MAX - u64::from(*back),
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
    declined: Vec<Text>,
    expires_at: Option<Time>,
}

#[derive(Debug, Arbitrary)]
enum Answer {
    Nothing,
    ApproveAll,
    /// Approve these entries of the prompt (by position, repeats allowed).
    ApproveSome(Vec<u8>),
    /// Approve a token that may not be on the prompt, among prompt entries.
    ApproveForged(Text, Vec<u8>),
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
    prompt: Option<PromptInput>,
    redirect_uri: Option<Text>,
    original_scope: Option<ScopeInput>,
    original_audience: Option<Text>,
    now: Option<Time>,
    answer: Answer,
}

// ---------------------------------------------------------------------------
// The target's own reading of DESIGN §2 and §3
// ---------------------------------------------------------------------------

fn is_oidc(token: &str) -> bool {
    OIDC.contains(&token)
}

fn nqchar(b: u8) -> bool {
    b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b)
}

/// DESIGN §2 "Scope parameter", read literally.
fn parse_param(raw: &str, max_len: usize, max_tokens: usize) -> Option<Vec<String>> {
    if raw.len() > max_len || raw.bytes().any(|b| b != b' ' && !nqchar(b)) {
        return None;
    }
    let all: Vec<&str> = raw.split(' ').filter(|t| !t.is_empty()).collect();
    if all.len() > max_tokens {
        return None;
    }
    let mut seen = BTreeSet::new();
    Some(
        all.into_iter()
            .filter(|t| seen.insert(*t))
            .map(str::to_owned)
            .collect(),
    )
}

/// The parsed `prompt` values: `Err` when a value is not one of the four or
/// `none` is not alone (DESIGN §3.1 check 3, §3.6).
fn parse_prompt(raw: &str) -> Result<BTreeSet<&str>, ()> {
    let mut values = BTreeSet::new();
    for value in raw.split(' ').filter(|v| !v.is_empty()) {
        if !PROMPT_VALUES.contains(&value) {
            return Err(());
        }
        values.insert(value);
    }
    if values.contains("none") && values.len() > 1 {
        return Err(());
    }
    Ok(values)
}

/// RFC 3986 characters: unreserved, gen-delims, sub-delims and `%`.
fn uri_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~:/?#[]@!$&'()*+,;=%".contains(&b)
}

/// Checks the crate's redirect classifier where the answer is plain: the
/// vocabulary's own, anything that is not `https://…`, and bytes RFC 3986
/// does not allow. Returns the classification.
fn classify_redirect(uri: &str) -> bool {
    let verifiable = is_verifiable_redirect(uri);
    if let Some((_, expected)) = REDIRECTS.iter().find(|(known, _)| *known == uri) {
        assert_eq!(verifiable, *expected, "is_verifiable_redirect({uri:?})");
    }
    let https = uri.len() >= 8 && uri.as_bytes()[..8].eq_ignore_ascii_case(b"https://");
    if !https || !uri.bytes().all(uri_byte) {
        assert!(!verifiable, "{uri:?} is verifiable");
    }
    let host = redirect_host(uri);
    if verifiable {
        let host = host.unwrap_or_else(|| panic!("verifiable {uri:?} without a host"));
        assert!(
            !host.is_empty() && host != "localhost" && !host.ends_with(".localhost"),
            "{uri:?}: {host:?}"
        );
        // Lowercase, except the hex digits of the escapes of bytes a name
        // cannot hold as they are.
        let mut rest = host.as_str();
        while let Some((before, after)) = rest.split_once('%') {
            assert!(
                before
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && !b.is_ascii_uppercase()),
                "{uri:?}: {host:?}"
            );
            let digits = after
                .get(..2)
                .unwrap_or_else(|| panic!("{uri:?}: {host:?}: a bare %"));
            assert!(
                digits
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b)),
                "{uri:?}: {host:?}"
            );
            rest = &after[2..];
        }
        assert!(
            rest.bytes()
                .all(|b| b.is_ascii_graphic() && !b.is_ascii_uppercase()),
            "{uri:?}: {host:?}"
        );
    }
    verifiable
}

/// What each asked scope comes to before the user's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Refused(DenyReason),
    Passed,
    Asked,
}

/// One request, as the checks see it.
struct Case<'a> {
    fixed: &'a Fixed,
    client_id: &'a str,
    flow: Flow,
    audience: Option<&'a str>,
    scope: Option<&'a str>,
    user: Option<&'a User>,
    consents: &'a [ConsentRecord],
    prompt: Option<&'a str>,
    redirect_uri: Option<&'a str>,
    original_scope: Option<&'a str>,
    original_audience: Option<&'a str>,
    now: Option<u64>,
}

/// What the request-level checks leave for the verdicts.
struct Checked<'a> {
    case: &'a Case<'a>,
    api: Option<&'a Api>,
    api_doc: Option<&'a ApiDocument>,
    /// The parsed prompt of an `authorization_code` request.
    prompt_none: bool,
    prompt_consent: bool,
    unverifiable: bool,
    param: Vec<String>,
    original: Vec<String>,
    asked: Vec<String>,
    /// The user's effective permissions on the API in force (user flows).
    effective: BTreeSet<String>,
}

impl<'a> Case<'a> {
    fn policy(&self) -> &'a Policy {
        &self.fixed.policy
    }

    /// The scopes of the client's grant for this audience and subject, patterns
    /// resolved against the API's definitions; `None` without such a grant.
    fn client_grant(&self, api: &ApiDocument, subject: &str) -> Option<BTreeSet<String>> {
        let client = self
            .fixed
            .document
            .clients
            .iter()
            .find(|c| c.client_id == self.client_id)?;
        let default = if client.kind == "machine_to_machine" {
            "client"
        } else {
            "user"
        };
        let grant = client
            .grants
            .iter()
            .find(|g| g.audience == api.audience && g.subject.as_deref().unwrap_or(default) == subject)?;
        Some(
            api.scopes
                .iter()
                .map(|def| def.name.clone())
                .filter(|name| grant.scopes.iter().any(|p| matches(p, name)))
                .collect(),
        )
    }

    /// Every role the user has, inheritance followed, then their permissions
    /// on `api` with patterns expanded, and the user's direct permissions.
    fn effective(&self, user: &User, api: &ApiDocument) -> BTreeSet<String> {
        let roles = &self.fixed.document.roles;
        let mut seen: BTreeSet<&str> = BTreeSet::new();
        let mut work: Vec<&str> = user.roles.iter().map(String::as_str).collect();
        while let Some(name) = work.pop() {
            if let Some(role) = roles.iter().find(|r| r.name == name) {
                if seen.insert(name) {
                    work.extend(role.inherits.iter().map(String::as_str));
                }
            }
        }
        let defined = api.scopes.iter().map(|def| def.name.as_str());
        defined
            .filter(|&name| {
                roles
                    .iter()
                    .filter(|r| seen.contains(r.name.as_str()))
                    .flat_map(|r| &r.permissions)
                    .any(|p| p.audience == api.audience && matches(&p.scope, name))
                    || user
                        .permissions
                        .iter()
                        .any(|p| p.audience == api.audience && p.scope.as_str() == name)
            })
            .map(str::to_owned)
            .collect()
    }

    /// DESIGN §3.1, checks 1 to 8: the expected error code, or what the
    /// verdicts need.
    fn check(&'a self) -> Result<Checked<'a>, ErrorCode> {
        let policy = self.policy();
        let Some(client) = policy.client(self.client_id) else {
            return Err(ErrorCode::InvalidClient);
        };
        if !client.grant_types().contains(&self.flow) {
            return Err(ErrorCode::UnauthorizedClient);
        }
        let has_user = self.flow != Flow::ClientCredentials;
        if has_user != self.user.is_some()
            || (self.flow == Flow::RefreshToken && self.original_scope.is_none())
        {
            return Err(ErrorCode::InvalidRequest);
        }
        let authorization = self.flow == Flow::AuthorizationCode;
        let prompt = match self.prompt.filter(|_| authorization) {
            Some(raw) => parse_prompt(raw).map_err(|()| ErrorCode::InvalidRequest)?,
            None => BTreeSet::new(),
        };
        let limits = policy.limits();
        let param = match self.scope {
            Some(raw) => parse_param(raw, limits.max_scope_length, limits.max_scope_tokens)
                .ok_or(ErrorCode::InvalidScope)?,
            None => Vec::new(),
        };
        let find = |audience: &str| policy.api(audience);
        let api = if self.flow == Flow::RefreshToken {
            let original = match self.original_audience {
                Some(audience) => Some(find(audience).ok_or(ErrorCode::InvalidTarget)?),
                None => None,
            };
            if self.audience.is_some() && self.audience != self.original_audience {
                return Err(ErrorCode::InvalidTarget);
            }
            original
        } else {
            match self.audience {
                Some(audience) => Some(find(audience).ok_or(ErrorCode::InvalidTarget)?),
                None => policy.default_audience(),
            }
        };
        if self.flow == Flow::ClientCredentials && api.is_none() {
            return Err(ErrorCode::InvalidRequest);
        }
        let api_doc = api.map(|api| {
            let apis = &self.fixed.document.apis;
            apis.iter()
                .find(|doc| doc.audience == api.audience())
                .expect("every API has its document")
        });
        if let (Some(api), Some(doc)) = (api, api_doc) {
            let admitted = match self.flow {
                Flow::ClientCredentials => {
                    doc.client_access != "deny_all" && self.client_grant(doc, "client").is_some()
                }
                _ => match doc.user_access.as_str() {
                    "deny_all" => false,
                    "require_client_grant" => self.client_grant(doc, "user").is_some(),
                    _ => true,
                },
            };
            assert_eq!(api.rbac(), doc.rbac);
            if !admitted {
                return Err(ErrorCode::AccessDenied);
            }
        }
        if self.fixed.document.settings.unknown_scopes == "reject" {
            let defined = |t: &String| api_doc.is_some_and(|doc| doc.scopes.iter().any(|def| &def.name == t));
            if param.iter().any(|t| !is_oidc(t) && !defined(t)) {
                return Err(ErrorCode::InvalidScope);
            }
        }
        let original = match (self.flow, self.original_scope) {
            (Flow::RefreshToken, Some(raw)) => {
                let original = parse_param(raw, usize::MAX, usize::MAX).ok_or(ErrorCode::InvalidScope)?;
                if param.iter().any(|t| !original.contains(t)) {
                    return Err(ErrorCode::InvalidScope);
                }
                original
            }
            _ => Vec::new(),
        };
        // DESIGN §3.2: the asked scopes (defaults in definition order).
        let asked = if !param.is_empty() {
            param.clone()
        } else {
            match (self.flow, api_doc) {
                (Flow::RefreshToken, _) => original.clone(),
                (Flow::ClientCredentials, Some(doc)) => {
                    let grant = self.client_grant(doc, "client").unwrap_or_default();
                    doc.scopes
                        .iter()
                        .map(|d| d.name.clone())
                        .filter(|n| grant.contains(n))
                        .collect()
                }
                (Flow::AuthorizationCode | Flow::DeviceCode, Some(doc)) => doc
                    .scopes
                    .iter()
                    .map(|d| d.name.clone())
                    .filter(|n| doc.default_scopes.contains(n))
                    .collect(),
                _ => Vec::new(),
            }
        };
        let redirect = self.redirect_uri.filter(|uri| authorization && !uri.is_empty());
        let effective = match (self.user, api_doc) {
            (Some(user), Some(doc)) if has_user => self.effective(user, doc),
            _ => BTreeSet::new(),
        };
        Ok(Checked {
            case: self,
            api,
            api_doc,
            prompt_none: prompt.contains("none"),
            prompt_consent: prompt.contains("consent"),
            unverifiable: redirect.is_some_and(|uri| !classify_redirect(uri)),
            param,
            original,
            asked,
            effective,
        })
    }
}

/// `pattern` (or an exact name) of a role permission or client grant matches `name`.
fn matches(pattern: &str, name: &str) -> bool {
    pattern == name
        || pattern
            .strip_suffix('*')
            .is_some_and(|prefix| name.starts_with(prefix))
}

impl<'a> Checked<'a> {
    fn client(&self) -> &'a scope_policy::Client {
        self.case
            .policy()
            .client(self.case.client_id)
            .expect("a checked request has a known client")
    }

    fn audience(&self) -> Option<&'a str> {
        self.api.map(Api::audience)
    }

    fn user_id(&self) -> &'a str {
        self.case.user.map_or("", |user| user.id.as_str())
    }

    fn one_time(&self, scope: &str) -> bool {
        let definition = self.api.and_then(|api| api.definition(scope));
        definition.is_some_and(|d| d.consent() == ScopeConsent::Always)
    }

    fn required(&self, scope: &str) -> bool {
        self.api
            .and_then(|api| api.definition(scope))
            .is_some_and(|d| d.required())
    }

    /// The records for this user, client and audience, expiry ignored.
    fn records_for(&self) -> impl Iterator<Item = &'a ConsentRecord> + '_ {
        let (user, client, audience) = (self.user_id(), self.case.client_id, self.audience());
        self.case
            .consents
            .iter()
            .filter(move |r| r.user_id == user && r.client_id == client && r.audience.as_deref() == audience)
    }

    /// The matching records: for this user, client and audience, and unexpired at `now`.
    fn matching(&self) -> impl Iterator<Item = &'a ConsentRecord> + '_ {
        let now = self.case.now;
        let user_flow = self.case.flow != Flow::ClientCredentials;
        self.records_for().filter(move |r| {
            user_flow
                && match (r.expires_at, now) {
                    (None, _) => true,
                    (Some(at), Some(now)) => at > now,
                    (Some(_), None) => false,
                }
        })
    }

    fn held(&self, scope: &str) -> bool {
        self.matching()
            .any(|r| r.scopes.iter().any(|s| s.as_str() == scope))
    }

    fn declined(&self, scope: &str) -> bool {
        self.matching()
            .any(|r| r.declined.iter().any(|s| s.as_str() == scope))
    }

    /// §3.3 step 3: the client's grant restricts `scope` and does not hold it.
    fn client_grant_refuses(&self, scope: &str) -> bool {
        let Some(doc) = self.api_doc else {
            return false;
        };
        let subject = match self.case.flow {
            Flow::ClientCredentials => "client",
            _ if doc.user_access == "require_client_grant" => "user",
            _ => return false,
        };
        !self
            .case
            .client_grant(doc, subject)
            .is_some_and(|grant| grant.contains(scope))
    }

    /// DESIGN §3.3 before consent: the first check `scope` fails.
    fn refusal(&self, scope: &str) -> Option<DenyReason> {
        let flow = self.case.flow;
        if is_oidc(scope) {
            if flow == Flow::ClientCredentials {
                return Some(DenyReason::RequiresUser);
            }
            let refused = !self.client().grant_types().contains(&Flow::RefreshToken)
                || self.api.is_some_and(|api| !api.allow_offline_access());
            return (scope == OFFLINE_ACCESS && refused).then_some(DenyReason::OfflineAccessNotAllowed);
        }
        let Some(doc) = self.api_doc else {
            return Some(DenyReason::NoAudience);
        };
        if !doc.scopes.iter().any(|def| def.name == scope) {
            return Some(DenyReason::Undefined);
        }
        if self.client_grant_refuses(scope) {
            return Some(DenyReason::NotGrantedToClient);
        }
        if flow != Flow::ClientCredentials && doc.rbac && !self.effective.contains(scope) {
            return Some(DenyReason::NotPermitted);
        }
        None
    }

    /// DESIGN §3.4 "who must consent" (a refresh has no redirect and no prompt).
    fn needs_consent(&self, scope: &str) -> bool {
        let client = self.client();
        !client.first_party()
            || self.api.is_some_and(|api| !api.allow_skipping_consent())
            || self.case.flow == Flow::DeviceCode
            || self.unverifiable
            || self.prompt_consent
            || self.one_time(scope)
    }

    /// DESIGN §3.4 "remembered consent counts".
    fn remembered_counts(&self, scope: &str) -> bool {
        !(self.prompt_consent
            || self.case.flow == Flow::DeviceCode
            || self.unverifiable
            || self.one_time(scope))
    }

    fn step(&self, scope: &str) -> Step {
        if let Some(reason) = self.refusal(scope) {
            return Step::Refused(reason);
        }
        match self.case.flow {
            Flow::RefreshToken => {
                let missing = self.declined(scope)
                    || (self.needs_consent(scope) && (self.one_time(scope) || !self.held(scope)));
                if missing {
                    Step::Refused(DenyReason::ConsentMissing)
                } else {
                    Step::Passed
                }
            }
            Flow::AuthorizationCode | Flow::DeviceCode => {
                if !self.needs_consent(scope) {
                    Step::Passed
                } else if !self.remembered_counts(scope) {
                    Step::Asked
                } else if self.held(scope) && !self.declined(scope) {
                    Step::Passed
                } else if self.declined(scope) && !self.required(scope) {
                    Step::Refused(DenyReason::ConsentDenied)
                } else {
                    Step::Asked
                }
            }
            _ => Step::Passed,
        }
    }

    /// The requested set of DESIGN §3.5.
    fn requested(&self) -> BTreeSet<&str> {
        if self.param.is_empty() && self.case.flow == Flow::RefreshToken {
            self.original.iter().map(String::as_str).collect()
        } else {
            self.param.iter().map(String::as_str).collect()
        }
    }

    /// DESIGN §3.5 `permissions`, decisions item 2, from the final verdicts.
    fn permissions(&self, verdicts: &[(&str, Verdict)]) -> Vec<String> {
        let Some(doc) = self.api_doc else {
            return Vec::new();
        };
        let granted = |name: &str| verdicts.iter().any(|(s, v)| *s == name && *v == Verdict::Granted);
        let names = doc.scopes.iter().map(|def| def.name.as_str());
        if self.case.flow == Flow::ClientCredentials {
            return names.filter(|n| granted(n)).map(str::to_owned).collect();
        }
        if !doc.rbac {
            return Vec::new();
        }
        names
            .filter(|name| self.effective.contains(*name))
            .filter(|&name| match verdicts.iter().any(|(s, _)| *s == name) {
                true => granted(name),
                false => {
                    !(self.client_grant_refuses(name)
                        || self.one_time(name)
                        || self.declined(name)
                        || (self.needs_consent(name) && !self.held(name)))
                }
            })
            .map(str::to_owned)
            .collect()
    }

    /// Checks a grant: `steps` are the expected steps; `approved` the
    /// scopes approved on a prompt, if one was answered.
    fn check_grant(&self, grant: &Grant<'_>, steps: &[(String, Step)], approved: Option<&BTreeSet<String>>) {
        let expected: Vec<(&str, Verdict)> = steps
            .iter()
            .map(|(scope, step)| {
                let verdict = match step {
                    Step::Refused(reason) => Verdict::Denied(*reason),
                    Step::Passed => Verdict::Granted,
                    Step::Asked => match approved
                        .expect("a grant after a prompt was answered")
                        .contains(scope)
                    {
                        true => Verdict::Granted,
                        false => Verdict::Denied(DenyReason::ConsentDenied),
                    },
                };
                (scope.as_str(), verdict)
            })
            .collect();
        let verdicts: Vec<(&str, Verdict)> = grant.verdicts().collect();
        assert_eq!(verdicts, expected, "verdicts");
        for (scope, verdict) in &verdicts {
            match verdict {
                Verdict::Granted | Verdict::Denied(_) => {}
                other => panic!("a grant holds the verdict {other:?} on {scope:?}"),
            }
        }
        // The generic invariants (TESTING.md §2), spelt out.
        let granted: Vec<&str> = grant.scopes().collect();
        let distinct: BTreeSet<&str> = granted.iter().copied().collect();
        assert_eq!(distinct.len(), granted.len(), "repeated scope in a grant");
        for scope in &granted {
            assert!(
                self.asked.iter().any(|a| a == scope),
                "{scope:?} granted, not asked"
            );
            assert!(is_oidc(scope) || self.api.is_some_and(|api| api.definition(scope).is_some()));
            if self.case.flow == Flow::RefreshToken {
                assert!(
                    self.original.iter().any(|o| o == scope),
                    "refresh widened to {scope:?}"
                );
                assert!(!self.declined(scope), "{scope:?} declined, refreshed");
            }
            if self.case.flow != Flow::ClientCredentials && self.api.is_some_and(Api::rbac) && !is_oidc(scope)
            {
                assert!(self.effective.contains(*scope), "RBAC let {scope:?} through");
            }
            if self.case.flow.has_user() && self.needs_consent(scope) {
                let approved_now = approved.is_some_and(|a| a.contains(*scope));
                let remembered = self.held(scope) && !self.declined(scope) && !self.one_time(scope);
                assert!(approved_now || remembered, "{scope:?} granted without consent");
            }
        }
        assert_eq!(grant.scope_string(), granted.join(" "));
        assert_eq!(grant.is_empty(), granted.is_empty());
        let denied: Vec<(&str, DenyReason)> = grant.denied().collect();
        let denied_verdicts: Vec<(&str, DenyReason)> = verdicts
            .iter()
            .filter_map(|(s, v)| match v {
                Verdict::Denied(reason) => Some((*s, *reason)),
                _ => None,
            })
            .collect();
        assert_eq!(denied, denied_verdicts);
        assert_eq!(grant.audience(), self.audience());
        assert_eq!(
            grant.scope_changed(),
            distinct != self.requested(),
            "scope_changed"
        );
        let refresh_token = match self.case.flow {
            Flow::RefreshToken => {
                self.original.iter().any(|o| o == OFFLINE_ACCESS) && self.step(OFFLINE_ACCESS) == Step::Passed
            }
            _ => distinct.contains(OFFLINE_ACCESS),
        };
        assert_eq!(grant.refresh_token(), refresh_token, "refresh_token");
        assert_eq!(grant.unverifiable_redirect(), self.unverifiable);
        let permissions = grant.permissions();
        assert_eq!(permissions, self.permissions(&verdicts), "permissions");
        // The weaker rules of the brief, in case the one above is ever relaxed.
        for scope in &permissions {
            assert!(self.api.is_some_and(|api| api.definition(scope).is_some()));
            if self.case.flow != Flow::ClientCredentials {
                assert!(self.effective.contains(*scope), "permission {scope:?} not held");
            }
            assert!(!denied.iter().any(|(s, reason)| s == scope
                && matches!(
                    reason,
                    DenyReason::NotGrantedToClient | DenyReason::ConsentDenied | DenyReason::ConsentMissing
                )));
        }
        match approved {
            None => assert!(grant.consent_record().is_none(), "a record without an approval"),
            Some(approved) => self.check_record(grant, steps, approved),
        }
    }

    /// DESIGN §3.4, "the new consent record".
    fn check_record(&self, grant: &Grant<'_>, steps: &[(String, Step)], approved: &BTreeSet<String>) {
        let record = grant.consent_record().expect("an approval comes with a record");
        assert_eq!(record.user_id, self.user_id());
        assert_eq!(record.client_id, self.case.client_id);
        assert_eq!(record.audience.as_deref(), self.audience());
        let unticked: BTreeSet<&str> = steps
            .iter()
            .filter(|(s, step)| *step == Step::Asked && !approved.contains(s))
            .map(|(s, _)| s.as_str())
            .collect();
        let held: BTreeSet<&str> = self
            .matching()
            .flat_map(|r| &r.scopes)
            .map(Scope::as_str)
            .collect();
        let was_declined: BTreeSet<&str> = self
            .matching()
            .flat_map(|r| &r.declined)
            .map(Scope::as_str)
            .collect();
        let scopes: BTreeSet<&str> = held
            .difference(&unticked)
            .copied()
            .chain(approved.iter().map(String::as_str))
            .filter(|s| !self.one_time(s))
            .collect();
        let declined: BTreeSet<&str> = was_declined
            .union(&unticked)
            .copied()
            .filter(|s| !scopes.contains(s) && !self.one_time(s))
            .collect();
        let got: Vec<&str> = record.scopes.iter().map(Scope::as_str).collect();
        let got_declined: Vec<&str> = record.declined.iter().map(Scope::as_str).collect();
        assert_eq!(
            got.iter().copied().collect::<BTreeSet<_>>(),
            scopes,
            "the new record's scopes"
        );
        assert_eq!(got.len(), scopes.len(), "the new record repeats a scope");
        assert_eq!(
            got_declined.iter().copied().collect::<BTreeSet<_>>(),
            declined,
            "the new record's declined"
        );
        assert_eq!(
            got_declined.len(),
            declined.len(),
            "the new record repeats a declined scope"
        );
        let lifetime = self.case.policy().consent_lifetime();
        let renewed = lifetime.and_then(|lifetime| self.case.now.map(|now| now.saturating_add(lifetime)));
        let expires_at = self.matching().filter_map(|r| r.expires_at).chain(renewed).min();
        assert_eq!(record.expires_at, expires_at, "the new record's expiry");
        // Invariant 17: never outlives a merged record.
        for merged in self.matching().filter_map(|r| r.expires_at) {
            assert!(record.expires_at.is_some_and(|at| at <= merged));
        }
    }

    /// Checks a consent prompt against the expected steps, then the answer.
    fn check_prompt(&self, prompt: &ConsentPrompt<'_>, steps: &[(String, Step)], answer: &Answer) {
        let expected: Vec<(&str, Verdict)> = steps
            .iter()
            .map(|(scope, step)| {
                let verdict = match step {
                    Step::Refused(reason) => Verdict::Denied(*reason),
                    Step::Passed => Verdict::Granted,
                    Step::Asked => Verdict::Asked,
                };
                (scope.as_str(), verdict)
            })
            .collect();
        assert_eq!(prompt.verdicts().collect::<Vec<_>>(), expected, "prompt verdicts");
        let on_prompt: Vec<String> = prompt.scopes().map(|p| p.scope().to_owned()).collect();
        let asked: Vec<&str> = steps
            .iter()
            .filter(|(_, s)| *s == Step::Asked)
            .map(|(t, _)| t.as_str())
            .collect();
        assert_eq!(on_prompt, asked, "the prompt's scopes");
        for shown in prompt.scopes() {
            assert_eq!(
                shown.required(),
                self.required(shown.scope()),
                "required mark of {:?}",
                shown.scope()
            );
            match self.api.and_then(|api| api.definition(shown.scope())) {
                Some(definition) if !is_oidc(shown.scope()) => {
                    assert_eq!(shown.description(), definition.description())
                }
                _ => {
                    assert!(is_oidc(shown.scope()), "{:?} on the prompt", shown.scope());
                    assert!(!shown.description().is_empty());
                }
            }
        }
        let passed: Vec<&str> = steps
            .iter()
            .filter(|(_, s)| *s == Step::Passed)
            .map(|(t, _)| t.as_str())
            .collect();
        assert_eq!(prompt.granted().collect::<Vec<_>>(), passed);
        assert!(prompt.denied().all(|(s, _)| !asked.contains(&s)));
        assert_eq!(prompt.audience(), self.audience());
        assert_eq!(prompt.unverifiable_redirect(), self.unverifiable);
        let redirect = self
            .case
            .redirect_uri
            .filter(|u| self.case.flow == Flow::AuthorizationCode && !u.is_empty());
        assert_eq!(prompt.redirect_uri(), redirect);

        let pick = |picks: &[u8]| -> Vec<String> {
            picks
                .iter()
                .take(8)
                .map(|i| on_prompt[usize::from(*i) % on_prompt.len()].clone())
                .collect()
        };
        match answer {
            Answer::Nothing => {}
            Answer::ApproveAll => self.check_approval(prompt, steps, &on_prompt),
            Answer::ApproveSome(picks) => self.check_approval(prompt, steps, &pick(picks)),
            Answer::ApproveForged(text, picks) => {
                let mut approved = pick(picks);
                approved.insert(approved.len() / 2, text.resolve(SCOPES));
                self.check_approval(prompt, steps, &approved);
            }
            Answer::Deny => {
                let error = prompt.clone().deny();
                assert_eq!(error, GrantError::ConsentDenied);
                assert_eq!(error.code(), ErrorCode::AccessDenied);
                check_error(&error);
            }
        }
    }

    /// DESIGN §3.4 "approve(subset)", the refusals in the order of decisions item 1.
    fn check_approval(&self, prompt: &ConsentPrompt<'_>, steps: &[(String, Step)], approved: &[String]) {
        let on_prompt: Vec<&str> = prompt.scopes().map(|p| p.scope()).collect();
        let result = prompt.clone().approve(approved);
        let forged: Vec<&String> = approved
            .iter()
            .filter(|a| !on_prompt.contains(&a.as_str()))
            .collect();
        let set: BTreeSet<String> = approved.iter().cloned().collect();
        let left_out: Vec<&str> = on_prompt
            .iter()
            .copied()
            .filter(|s| self.required(s) && !set.contains(*s))
            .collect();
        let lifetime = self.case.policy().consent_lifetime();
        let no_now = self.case.now.is_none();
        let expiring = self.records_for().any(|r| r.expires_at.is_some());
        match result {
            Err(error) => {
                check_error(&error);
                match error {
                    GrantError::ApprovalNotOnPrompt { scope } => {
                        assert!(forged.contains(&&scope), "{scope:?} was on the prompt")
                    }
                    GrantError::RequiredScopeLeftOut { scope } => {
                        assert!(forged.is_empty(), "a forged approval is invalid_request first");
                        assert!(left_out.contains(&scope.as_str()), "{scope:?} was not left out");
                    }
                    GrantError::LifetimeWithoutNow => {
                        assert!(forged.is_empty() && left_out.is_empty() && lifetime.is_some() && no_now)
                    }
                    GrantError::ExpiringConsentWithoutNow => {
                        assert!(forged.is_empty() && left_out.is_empty() && lifetime.is_none());
                        assert!(no_now && expiring);
                    }
                    other => panic!("approval refused with {other:?}"),
                }
            }
            Ok(grant) => {
                assert!(forged.is_empty(), "forged approval {forged:?} accepted");
                assert!(
                    left_out.is_empty(),
                    "required {left_out:?} left out, approval accepted"
                );
                assert!(
                    !no_now || (lifetime.is_none() && !expiring),
                    "an approval without now"
                );
                self.check_grant(&grant, steps, Some(&set));
                // Invariant 20: unticked is gone.
                let record = grant.consent_record().expect("a record");
                for (scope, step) in steps {
                    if *step == Step::Asked && !set.contains(scope) {
                        assert!(!record.scopes.iter().any(|s| s == scope.as_str()));
                    }
                }
            }
        }
    }
}

/// RFC 6749 §5.2: `error_description` is `%x20-21 / %x23-5B / %x5D-7E`.
fn check_error(error: &GrantError) {
    let description = error.error_description();
    assert!(!description.is_empty());
    assert!(
        description
            .bytes()
            .all(|b| matches!(b, 0x20 | 0x21 | 0x23..=0x5B | 0x5D..=0x7E)),
        "unsafe description {description:?}"
    );
    let _ = (error.code().as_str(), error.to_string());
}

/// Everything a decision says that a host can observe (but not the request
/// context it carries), to compare two decisions.
fn summary(result: &Result<Decision<'_>, GrantError>) -> String {
    match result {
        Err(error) => format!("error {error:?}"),
        Ok(Decision::Granted(g)) => format!(
            "grant {:?} {:?} {} {} {:?} {} {:?}",
            g.audience(),
            g.verdicts().collect::<Vec<_>>(),
            g.scope_changed(),
            g.refresh_token(),
            g.permissions(),
            g.unverifiable_redirect(),
            g.consent_record()
        ),
        Ok(Decision::ConsentRequired(p)) => format!(
            "prompt {:?} {:?} {:?} {}",
            p.audience(),
            p.verdicts().collect::<Vec<_>>(),
            p.scopes().collect::<Vec<_>>(),
            p.unverifiable_redirect()
        ),
    }
}

/// The same as [`summary`], with the asked scopes as a set (invariant 6).
fn set_summary(result: &Result<Decision<'_>, GrantError>) -> String {
    let sorted = |mut v: Vec<(&str, Verdict)>| {
        v.sort_by_key(|(s, _)| *s);
        format!("{v:?}")
    };
    match result {
        Err(error) => format!("error {:?}", error.code()),
        Ok(Decision::Granted(g)) => format!(
            "grant {} {} {} {:?}",
            sorted(g.verdicts().collect()),
            g.scope_changed(),
            g.refresh_token(),
            g.permissions()
        ),
        Ok(Decision::ConsentRequired(p)) => format!("prompt {}", sorted(p.verdicts().collect())),
    }
}

fuzz_target!(|input: Input| {
    let fixed = &fixed()[usize::from(input.strict)];
    let policy = &fixed.policy;
    let client_id = input.client.resolve(CLIENTS);
    let flow = Flow::ALL[usize::from(input.flow) % Flow::ALL.len()];
    let audience = input.audience.as_ref().map(|a| a.resolve(AUDIENCES));
    let scope = input.scope.as_ref().map(ScopeInput::resolve);
    let original_scope = input.original_scope.as_ref().map(ScopeInput::resolve);
    let original_audience = input.original_audience.as_ref().map(|a| a.resolve(AUDIENCES));
    let prompt = input.prompt.as_ref().map(PromptInput::resolve);
    let redirects: Vec<&str> = REDIRECTS.iter().map(|(uri, _)| *uri).collect();
    let redirect_uri = input.redirect_uri.as_ref().map(|r| r.resolve(&redirects));
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
    let scopes = |texts: &[Text]| -> Vec<Scope> {
        texts
            .iter()
            .filter_map(|s| Scope::new(&s.resolve(SCOPES)).ok())
            .collect()
    };
    let consents: Vec<ConsentRecord> = input
        .consents
        .iter()
        .map(|c| {
            let audience = c.audience.as_ref().map(|a| a.resolve(AUDIENCES));
            let record = ConsentRecord::new(
                c.user.resolve(USERS),
                c.client.resolve(CLIENTS),
                audience.as_deref(),
            )
            .with_scopes(scopes(&c.scopes))
            .with_declined(scopes(&c.declined));
            match &c.expires_at {
                Some(at) => record.with_expires_at(at.resolve()),
                None => record,
            }
        })
        .collect();
    let now = input.now.as_ref().map(Time::resolve);

    let request = Request::new(&client_id)
        .flow(flow)
        .consents(&consents)
        .maybe_audience(audience.as_deref())
        .maybe_scope(scope.as_deref())
        .maybe_user(user.as_ref())
        .maybe_prompt(prompt.as_deref())
        .maybe_redirect_uri(redirect_uri.as_deref())
        .maybe_original_scope(original_scope.as_deref())
        .maybe_original_audience(original_audience.as_deref())
        .maybe_now(now);
    let case = Case {
        fixed,
        client_id: &client_id,
        flow,
        audience: audience.as_deref(),
        scope: scope.as_deref(),
        user: user.as_ref(),
        consents: &consents,
        prompt: prompt.as_deref(),
        redirect_uri: redirect_uri.as_deref(),
        original_scope: original_scope.as_deref(),
        original_audience: original_audience.as_deref(),
        now,
    };
    if let Some(uri) = &redirect_uri {
        classify_redirect(uri);
    }

    let result = policy.grant(&request);
    // Determinism (invariant 11).
    assert_eq!(summary(&result), summary(&policy.grant(&request)));

    // Metamorphic relations: `login` and `select_account` change nothing;
    // other flows ignore `prompt` and `redirect_uri`, garbage included; an
    // empty one is not sent; `prompt=none` fails exactly where the request
    // without it would prompt.
    let authorization = flow == Flow::AuthorizationCode;
    let parsed = prompt.as_deref().map(parse_prompt);
    let none = authorization && matches!(&parsed, Some(Ok(values)) if values.contains("none"));
    let plain_prompt: Option<&str> = match (&parsed, authorization) {
        (Some(Ok(values)), true) => values.contains("consent").then_some("consent"),
        (Some(Err(())), true) => prompt.as_deref(),
        _ => None,
    };
    let plain_redirect = redirect_uri
        .as_deref()
        .filter(|uri| authorization && !uri.is_empty());
    let plain = request
        .maybe_prompt(plain_prompt)
        .maybe_redirect_uri(plain_redirect);
    let plain_result = policy.grant(&plain);
    match (&result, &plain_result) {
        (Err(GrantError::ConsentRequired), Ok(Decision::ConsentRequired(_))) if none => {}
        _ => assert_eq!(
            summary(&result),
            summary(&plain_result),
            "normalised prompt/redirect_uri"
        ),
    }
    // Invariant 6: the scope parameter's tokens, repeats included, in
    // another order (within the limits when the original is).
    let limits = policy.limits();
    let within = |raw: &&String| parse_param(raw, limits.max_scope_length, limits.max_scope_tokens).is_some();
    if let Some(raw) = scope.as_ref().filter(within) {
        let reversed: Vec<&str> = raw.split(' ').filter(|t| !t.is_empty()).rev().collect();
        let reversed = reversed.join(" ");
        let shuffled = policy.grant(&request.scope(&reversed));
        assert_eq!(
            set_summary(&result),
            set_summary(&shuffled),
            "reordered scope {reversed:?}"
        );
    }

    let checked = match case.check() {
        Err(code) => {
            let error = result
                .err()
                .unwrap_or_else(|| panic!("expected {code:?}, got a decision"));
            check_error(&error);
            assert_eq!(error.code(), code, "{error:?}");
            return;
        }
        Ok(checked) => checked,
    };
    let steps: Vec<(String, Step)> = checked
        .asked
        .iter()
        .map(|s| (s.clone(), checked.step(s)))
        .collect();
    let prompts = steps.iter().any(|(_, step)| *step == Step::Asked);
    match result {
        Err(error) => {
            assert_eq!(
                error,
                GrantError::ConsentRequired,
                "the request passed every check"
            );
            assert!(
                prompts && checked.prompt_none,
                "consent_required without prompt=none or a prompt"
            );
            check_error(&error);
        }
        Ok(Decision::Granted(grant)) => {
            assert!(!prompts, "a grant where the user must be asked: {steps:?}");
            checked.check_grant(&grant, &steps, None);
        }
        Ok(Decision::ConsentRequired(consent)) => {
            assert!(prompts, "a prompt where no consent is required");
            assert!(!checked.prompt_none, "a prompt under prompt=none");
            assert!(flow.is_interactive());
            checked.check_prompt(&consent, &steps, &input.answer);
        }
    }
    // In a refresh, `refresh_token` agrees with asking for offline_access alone.
    if flow == Flow::RefreshToken && checked.original.iter().any(|o| o == OFFLINE_ACCESS) {
        let alone = policy
            .grant(&request.scope(OFFLINE_ACCESS))
            .expect("offline_access alone passes the request checks");
        let refreshed = matches!(&alone, Decision::Granted(g) if g.is_granted(OFFLINE_ACCESS));
        assert_eq!(refreshed, checked.step(OFFLINE_ACCESS) == Step::Passed);
    }
});

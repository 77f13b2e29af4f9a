//! A deliberately naive reference model of the `scope-policy` decision,
//! DESIGN.md revision 2.
//!
//! Written straight from `/work/shared/DESIGN.md` (§2–§3, §3.6) and the team's
//! decisions where it is silent (`/work/notes/rev2-decisions.md`), as a loop
//! over the rules in DESIGN order, on plain `String`s, `Vec`s and
//! `BTreeSet`s: no interning, no bitsets, no precomputation. Patterns, role
//! inheritance and consent records are looked at again at decision time, every
//! time. It is meant to be *obviously* right, not fast, and is compared with
//! the real crate by property tests and a fuzz target (TESTING.md §2,
//! invariant 15).
//!
//! It does not depend on `scope_policy`. Its input types mirror the serde
//! shape of the policy document (DESIGN.md §4) and of a conformance case's
//! `request` (DESIGN.md §5), so a case file deserializes straight into them.
//! Its redirect classifier ([`redirect_verifiable`]) is its own, written from
//! DESIGN.md §2 "Verifiable redirect", §3.6 and decisions item 7.
//!
//! The model ASSUMES the document is valid (a policy that built); it never
//! validates one. It must never panic on any request, however hostile: no
//! indexing, no `unwrap` on request data.
//!
//! Decisions taken where DESIGN.md leaves room (each also marked `CHOICE` below;
//! "item N" is the item of rev2-decisions.md):
//! - Flows: the flow is compared literally with the client's grant types
//!   (check 2); the RFC 8628 URN `urn:ietf:params:oauth:grant-type:device_code`
//!   is read as `device_code` first (item 8). A flow that is none of the four
//!   (a valid document lists no other grant type) is `unauthorized_client`.
//! - The audience in force after check 5 (API access, verdicts, record
//!   matching, the new record, the grant) is: in a refresh,
//!   `original_audience` (`None` when absent, `default_audience` never
//!   applies); otherwise the request's `audience`, or else `default_audience`.
//!   `original_audience` is ignored outside refresh_token.
//! - Empty parameters: only `prompt` and `redirect_uri` treat `""` as not sent
//!   (§3.6, item 5). An empty `audience` or `original_audience` is an audience
//!   the policy does not define (`invalid_target`); an empty `original_scope`
//!   is present and holds no token; an empty `scope` holds no token.
//! - `prompt` (authorization_code only; every other flow ignores it): split on
//!   spaces only, empty pieces dropped; a value outside `none login consent
//!   select_account` (TAB, comma, `+`, case variants included) or `none`
//!   beside another value is `invalid_request`; spaces only = not sent
//!   (item 5). `login` and `select_account` change nothing in the decision.
//! - Under `user_access = allow_all`, a `subject: user` client grant does not
//!   restrict user flows (§3.3 step 3 names only `require_client_grant`).
//! - Defaults asked by authorization_code / device_code without scope tokens
//!   are the API's `default_scopes` in the API's scope *definition* order
//!   (§3.5 "defaults: definition order"), like the client-credentials
//!   defaults; a refresh without tokens asks `original_scope` in its own order.
//! - Check 7 (`unknown_scopes = "reject"`) looks at the tokens of the scope
//!   parameter only, never at defaults nor at `original_scope`.
//! - `scope_changed` on refresh: the requested set is the scope parameter's
//!   tokens when it has any, otherwise `original_scope`'s tokens.
//! - Refresh verdicts (§3.3 last paragraph): after §3.3's checks, a scope any
//!   matching record declines is `consent_missing` (every client); else a scope
//!   that needs consent (third party; first party on an API without
//!   `allow_skipping_consent`; `consent: always`) is `consent_missing` unless a
//!   matching record holds it in `scopes` — and a `consent: always` scope is
//!   `consent_missing` even then (§2 "never covered by a consent record",
//!   §3.6: it never comes back through a refresh).
//! - Interactive verdicts (§3.4): a declined (not `required`) scope is
//!   `consent_denied` only where remembered consent counts; where it does not
//!   (`prompt` with `consent`, device_code, unverifiable redirect, `consent:
//!   always`) every scope that needs consent goes on the prompt, declined
//!   ones included. A `required` scope that a record declines is never
//!   "declined": it goes on the prompt (unless also covered — it cannot be,
//!   a declining record prevents cover).
//! - `prompt=none` that would prompt is `consent_required` whatever the answer
//!   passed; a decision that prompts nothing ignores `prompt=none` and the
//!   answer.
//! - Approval refusals in the order of item 1: (a) an approved scope not on the
//!   prompt → `invalid_request`; (b) a `required` prompt scope left out →
//!   `access_denied`; (c) `consent_lifetime` set and no `now` →
//!   `invalid_request`; (d) no `now` and any record of the request for the
//!   same user, client and audience (expiry ignored) carries `expires_at` →
//!   `invalid_request`. `deny` is `access_denied`, no record.
//! - The new record (item 4): `scopes` = held (matching records in request
//!   order, each record's scopes in order, first appearance) minus unticked,
//!   then the approved scopes in asked (= prompt) order; `declined` =
//!   was_declined (same order) then unticked (prompt order), minus the new
//!   `scopes`; the API's `consent: always` scopes removed from both.
//!   `expires_at` = the minimum of the matching records' `expires_at` and
//!   `now + consent_lifetime` (saturating at `u64::MAX`, item 9).
//! - `refresh_token` in a refresh (item 6): `original_scope` holds
//!   `offline_access` and `offline_access` would get a granted verdict if
//!   asked in this refresh (§3.3 + `consent_missing`).
//! - `permissions` (item 2); `unverifiable_redirect` (item 3): the
//!   classification of a non-empty `redirect_uri` in authorization_code,
//!   false in every other flow; the prompt's mark, kept by the grant after an
//!   approval.
//! - The redirect classifier (item 7), see [`redirect_verifiable`]; in
//!   particular: a reg-name that is empty *after* normalisation (`.`) is
//!   empty; an inet_aton part `0x` with no hex digit is 0, as browsers read
//!   it (so `https://0x/` is `0.0.0.0`, loopback); the dotted quad inside an IPv6 literal is RFC 3986's
//!   strict `dec-octet` form; a fragment does not make a URI unverifiable.
//!
//! Serialized (to build the real policy from the same document), a `Doc`
//! leaves out an empty API or client `name`, a grant's absent `subject`, a
//! client's absent `grant_types` (revision 2 refuses `null` there), an
//! absent `consent_lifetime`, a scope's `consent` when `"default"` and
//! `required` when false, and empty `metadata`, so the text means what the
//! model read (and revision-1 documents round-trip unchanged).

// Not every test that includes this module uses every item of it.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

// ---------------------------------------------------------------------------
// Input: the policy document (DESIGN.md §2, §4)
// ---------------------------------------------------------------------------

/// The whole policy document (DESIGN.md §4). `settings`, `roles` and
/// `clients` may be left out.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Doc {
    #[serde(default)]
    pub settings: Settings,
    #[serde(default)]
    pub apis: Vec<Api>,
    #[serde(default)]
    pub roles: Vec<Role>,
    #[serde(default)]
    pub clients: Vec<Client>,
}

/// Document-wide settings (DESIGN.md §2 "Scope parameter", §3.1 checks 5 and
/// 7, §3.4 "The new consent record").
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Settings {
    /// `"ignore"` (default) or `"reject"`.
    #[serde(default = "default_unknown_scopes")]
    pub unknown_scopes: String,
    #[serde(default)]
    pub default_audience: Option<String>,
    /// Bytes of the raw scope parameter (default 4096).
    #[serde(default = "default_max_scope_length")]
    pub max_scope_length: usize,
    /// Tokens before de-duplication (default 128).
    #[serde(default = "default_max_scope_tokens")]
    pub max_scope_tokens: usize,
    /// Seconds a new consent record lives (`None` = no limit). Positive in a
    /// valid document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent_lifetime: Option<i64>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            unknown_scopes: default_unknown_scopes(),
            default_audience: None,
            max_scope_length: default_max_scope_length(),
            max_scope_tokens: default_max_scope_tokens(),
            consent_lifetime: None,
        }
    }
}

/// An API (resource server), DESIGN.md §2.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Api {
    pub audience: String,
    /// Left out of the serialized form when empty: the crate refuses a
    /// display name written empty, and an empty one here means "not given".
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default)]
    pub rbac: bool,
    #[serde(default = "default_true")]
    pub allow_skipping_consent: bool,
    #[serde(default)]
    pub allow_offline_access: bool,
    /// `"allow_all"` (default) | `"require_client_grant"` | `"deny_all"`.
    #[serde(default = "default_user_access")]
    pub user_access: String,
    /// `"require_client_grant"` (default) | `"deny_all"`.
    #[serde(default = "default_client_access")]
    pub client_access: String,
    #[serde(default)]
    pub default_scopes: Vec<String>,
    #[serde(default)]
    pub scopes: Vec<ScopeDef>,
    /// Carried, never interpreted.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
}

impl Default for Api {
    /// The defaults of §2 (the audience must still be set).
    fn default() -> Self {
        Api {
            audience: String::new(),
            name: String::new(),
            rbac: false,
            allow_skipping_consent: true,
            allow_offline_access: false,
            user_access: default_user_access(),
            client_access: default_client_access(),
            default_scopes: Vec::new(),
            scopes: Vec::new(),
            metadata: BTreeMap::new(),
        }
    }
}

/// One scope definition of an API.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ScopeDef {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// `"default"` (the rules of §3.4) | `"always"` (one-time scope).
    /// Serialized only when not `"default"`.
    #[serde(default = "default_consent", skip_serializing_if = "is_default_consent")]
    pub consent: String,
    /// The user cannot leave it out of an approval. Serialized only when true.
    #[serde(default, skip_serializing_if = "is_false")]
    pub required: bool,
}

impl Default for ScopeDef {
    /// The defaults of §2 (the name must still be set).
    fn default() -> Self {
        ScopeDef {
            name: String::new(),
            description: String::new(),
            consent: default_consent(),
            required: false,
        }
    }
}

/// A role: permissions, plus those of every role it inherits, transitively.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Role {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub inherits: Vec<String>,
    #[serde(default)]
    pub permissions: Vec<Permission>,
}

/// `(audience, scope)`. In a role the scope may be a pattern (`*`, `read:*`);
/// in a user's direct permissions it is exact.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Permission {
    pub audience: String,
    pub scope: String,
}

/// A client (application), DESIGN.md §2.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Client {
    pub client_id: String,
    /// Left out of the serialized form when empty (see [`Api::name`]).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default)]
    pub first_party: bool,
    /// `"spa"` | `"regular_web"` | `"native"` | `"machine_to_machine"`.
    pub kind: String,
    /// `None` = the defaults of §2 (see [`effective_grant_types`]). Left out
    /// of the serialized form when `None`: revision 2 refuses `null` here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_types: Option<Vec<String>>,
    #[serde(default)]
    pub grants: Vec<ClientGrant>,
    /// Carried, never interpreted.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
}

impl Default for Client {
    /// The defaults of §2 (`client_id` and `kind` must still be set).
    fn default() -> Self {
        Client {
            client_id: String::new(),
            name: String::new(),
            first_party: false,
            kind: String::new(),
            grant_types: None,
            grants: Vec::new(),
            metadata: BTreeMap::new(),
        }
    }
}

/// A client grant: which scopes of one API the client may get for one subject.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct ClientGrant {
    pub audience: String,
    /// `"client"` | `"user"`; `None` = the default for the client's kind
    /// (see [`grant_subject`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Exact scopes or patterns (`*`, `read:*`).
    #[serde(default)]
    pub scopes: Vec<String>,
}

fn default_true() -> bool {
    true
}
fn is_false(b: &bool) -> bool {
    !*b
}
fn default_consent() -> String {
    "default".to_string()
}
fn is_default_consent(c: &String) -> bool {
    c == "default"
}
fn default_unknown_scopes() -> String {
    "ignore".to_string()
}
fn default_max_scope_length() -> usize {
    4096
}
fn default_max_scope_tokens() -> usize {
    128
}
fn default_user_access() -> String {
    "allow_all".to_string()
}
fn default_client_access() -> String {
    "require_client_grant".to_string()
}
fn default_flow() -> String {
    "authorization_code".to_string()
}

// ---------------------------------------------------------------------------
// Input: the request (DESIGN.md §5 `request`)
// ---------------------------------------------------------------------------

/// One request. Only `client_id` is required; `flow` defaults to
/// `authorization_code`; `scope` is the raw parameter (`None` = not sent).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Req {
    pub client_id: String,
    /// `authorization_code` | `device_code` (or its RFC 8628 URN) |
    /// `refresh_token` | `client_credentials`.
    #[serde(default = "default_flow")]
    pub flow: String,
    #[serde(default)]
    pub audience: Option<String>,
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub user: Option<User>,
    #[serde(default)]
    pub consents: Vec<Consent>,
    /// The raw OIDC `prompt` parameter (`"consent"`, `"none"`,
    /// `"login consent"`, …); `None` or `""` = not sent.
    #[serde(default)]
    pub prompt: Option<String>,
    /// The redirect URI of an authorization_code request; `None` or `""` =
    /// not sent.
    #[serde(default)]
    pub redirect_uri: Option<String>,
    /// Refresh: the scope of the grant being refreshed.
    #[serde(default)]
    pub original_scope: Option<String>,
    /// Refresh: the audience of the grant being refreshed (`None` = it had none).
    #[serde(default)]
    pub original_audience: Option<String>,
    /// The current time, unix seconds.
    #[serde(default)]
    pub now: Option<u64>,
}

impl Default for Req {
    fn default() -> Self {
        Req {
            client_id: String::new(),
            flow: default_flow(),
            audience: None,
            scope: None,
            user: None,
            consents: Vec::new(),
            prompt: None,
            redirect_uri: None,
            original_scope: None,
            original_audience: None,
            now: None,
        }
    }
}

/// The subject, supplied per request by the host.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct User {
    pub id: String,
    #[serde(default)]
    pub roles: Vec<String>,
    /// Exact `(audience, scope)` pairs; no patterns.
    #[serde(default)]
    pub permissions: Vec<Permission>,
}

/// A consent record stored by the host (DESIGN.md §2, §3.4).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Consent {
    pub user_id: String,
    pub client_id: String,
    #[serde(default)]
    pub audience: Option<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Scopes the user left unticked on a prompt.
    #[serde(default)]
    pub declined: Vec<String>,
    /// Unix seconds; `None` = never expires.
    #[serde(default)]
    pub expires_at: Option<u64>,
}

// ---------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------

/// What the model decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A request-level error (§3.1) or an answer error (§3.4): the RFC 6749 /
    /// RFC 8707 / OIDC error code, e.g. `"invalid_scope"`, `"consent_required"`.
    Error(String),
    /// Consent required (§3.4).
    Consent {
        /// The prompt's scopes, in asked order.
        prompt: Vec<String>,
        /// The prompt scopes marked `required`, in prompt order.
        required: Vec<String>,
        /// The prompt's mark: the request's redirect was unverifiable.
        unverifiable_redirect: bool,
        /// Every asked token in asked order: `None` = passing so far or on
        /// the prompt; `Some(reason)` = refused (by §3.3, or `consent_denied`
        /// for a scope a record declines).
        verdicts: Vec<(String, Option<String>)>,
    },
    /// A grant (§3.5).
    Granted(Granted),
}

/// A grant (DESIGN.md §3.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Granted {
    /// The audience in force (see the module doc).
    pub audience: Option<String>,
    /// Granted scopes in asked order (request order; defaults in definition order).
    pub granted: Vec<String>,
    /// Every asked token in asked order: `None` = granted, `Some(reason)` = denied.
    pub verdicts: Vec<(String, Option<String>)>,
    pub scope_changed: bool,
    /// Whether the token response carries a refresh token (§3.5).
    pub refresh_token: bool,
    /// The new consent record; only after an approved prompt.
    pub consent_record: Option<Record>,
    /// Auth0's `permissions` claim (§3.5, decisions item 2), definition order.
    pub permissions: Vec<String>,
    /// Decisions item 3.
    pub unverifiable_redirect: bool,
}

/// The consent record that comes with an approval (§3.4); it is for this
/// user, client and audience and replaces every record the host holds for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub scopes: Vec<String>,
    pub declined: Vec<String>,
    pub expires_at: Option<u64>,
}

/// The user's answer to a consent prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// No answer: a decision that asks for consent stops at the prompt.
    None,
    /// Approve these scopes (each must be on the prompt).
    Approve(Vec<String>),
    /// Refuse the prompt.
    Deny,
}

// ---------------------------------------------------------------------------
// Vocabulary
// ---------------------------------------------------------------------------

/// The reserved OIDC scopes (DESIGN.md §2).
pub const OIDC_SCOPES: [&str; 6] = ["openid", "profile", "email", "address", "phone", "offline_access"];

/// The OIDC `prompt` values (DESIGN.md §2 "Request context").
pub const PROMPT_VALUES: [&str; 4] = ["none", "login", "consent", "select_account"];

/// RFC 8628 §3.4's grant type URN, read as `device_code` (decisions item 8).
pub const DEVICE_CODE_URN: &str = "urn:ietf:params:oauth:grant-type:device_code";

pub fn is_oidc(token: &str) -> bool {
    OIDC_SCOPES.contains(&token)
}

/// RFC 6749 appendix A: NQCHAR = %x21 / %x23-5B / %x5D-7E.
fn is_nqchar(b: u8) -> bool {
    b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b)
}

/// Parses a scope parameter (DESIGN.md §2 "Scope parameter"):
/// - more than `max_len` bytes → error;
/// - any byte other than a space (0x20) or NQCHAR → error;
/// - tokens are split on spaces (runs, leading and trailing spaces tolerated);
/// - more than `max_tokens` tokens, counted before de-duplication → error;
/// - a repeated token counts once, at its first position.
///
/// Returns the distinct tokens in first-appearance order (empty if none).
/// `original_scope` is parsed with `usize::MAX` for both limits (check 8).
#[allow(clippy::result_unit_err)]
pub fn parse_scope(raw: &str, max_len: usize, max_tokens: usize) -> Result<Vec<String>, ()> {
    if raw.len() > max_len {
        return Err(());
    }
    for b in raw.bytes() {
        if b != b' ' && !is_nqchar(b) {
            return Err(());
        }
    }
    let all: Vec<&str> = raw.split(' ').filter(|t| !t.is_empty()).collect();
    if all.len() > max_tokens {
        return Err(());
    }
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    let mut out = Vec::new();
    for t in all {
        if seen.insert(t) {
            out.push(t.to_string());
        }
    }
    Ok(out)
}

/// Parses the raw OIDC `prompt` parameter of an authorization_code request
/// (DESIGN.md §3.1 check 3, §3.6; decisions item 5): values separated by
/// spaces (runs, leading and trailing spaces tolerated), each one of
/// [`PROMPT_VALUES`], `none` only alone (`none none` is `none`). Returns the
/// set of values; empty when not sent, `""`, or spaces only.
/// CHOICE (item 5): split on spaces only; any other separator makes a value
/// that is not one of the four, so the whole prompt is an error.
#[allow(clippy::result_unit_err)]
pub fn parse_prompt(raw: Option<&str>) -> Result<BTreeSet<String>, ()> {
    let raw = match raw {
        None => return Ok(BTreeSet::new()),
        Some(raw) => raw,
    };
    let mut values: BTreeSet<String> = BTreeSet::new();
    for v in raw.split(' ').filter(|v| !v.is_empty()) {
        if !PROMPT_VALUES.contains(&v) {
            return Err(());
        }
        values.insert(v.to_string());
    }
    if values.contains("none") && values.len() > 1 {
        return Err(());
    }
    Ok(values)
}

/// Does pattern (or exact scope) `p` of a role permission or client grant
/// match the defined scope `s`? `*` matches every scope; `prefix*` every
/// scope starting with `prefix` (DESIGN.md §2 "Pattern").
pub fn pattern_matches(p: &str, s: &str) -> bool {
    if p == s {
        return true;
    }
    match p.strip_suffix('*') {
        Some(prefix) => s.starts_with(prefix),
        None => false,
    }
}

/// The client's grant types, with the defaults of §2 when not given
/// (`device_code` only when listed).
pub fn effective_grant_types(client: &Client) -> Vec<String> {
    match &client.grant_types {
        Some(g) => g.clone(),
        None if client.kind == "machine_to_machine" => vec!["client_credentials".to_string()],
        None => vec!["authorization_code".to_string(), "refresh_token".to_string()],
    }
}

fn find_client<'d>(doc: &'d Doc, client_id: &str) -> Option<&'d Client> {
    doc.clients.iter().find(|c| c.client_id == client_id)
}

fn find_api<'d>(doc: &'d Doc, audience: &str) -> Option<&'d Api> {
    doc.apis.iter().find(|a| a.audience == audience)
}

/// The subject a client grant is for (DESIGN.md §2): a grant that names none
/// is `"client"` for `machine_to_machine` clients and `"user"` for the others.
pub fn grant_subject<'d>(client: &Client, grant: &'d ClientGrant) -> &'d str {
    match &grant.subject {
        Some(subject) => subject,
        None if client.kind == "machine_to_machine" => "client",
        None => "user",
    }
}

/// The client's grant for this audience and subject (`"client"` / `"user"`).
fn find_grant<'d>(client: &'d Client, audience: &str, subject: &str) -> Option<&'d ClientGrant> {
    client
        .grants
        .iter()
        .find(|g| g.audience == audience && grant_subject(client, g) == subject)
}

fn find_def<'a>(api: &'a Api, scope: &str) -> Option<&'a ScopeDef> {
    api.scopes.iter().find(|d| d.name == scope)
}

fn is_defined(api: &Api, scope: &str) -> bool {
    find_def(api, scope).is_some()
}

/// A grant holds `scope` when one of its entries matches it; patterns are
/// resolved against the API's definitions, so the scope must be defined.
fn grant_holds(api: &Api, grant: &ClientGrant, scope: &str) -> bool {
    is_defined(api, scope) && grant.scopes.iter().any(|p| pattern_matches(p, scope))
}

/// Every role the user has, with every role they inherit, transitively
/// (DESIGN.md §2 "Role"). Unknown role names grant nothing. A worklist with a
/// visited set, so it terminates even on cycles.
pub fn role_closure(doc: &Doc, user_roles: &[String]) -> BTreeSet<String> {
    let mut visited: BTreeSet<String> = BTreeSet::new();
    let mut work: Vec<String> = user_roles.to_vec();
    while let Some(name) = work.pop() {
        if visited.contains(&name) {
            continue;
        }
        let mut known = false;
        for role in doc.roles.iter().filter(|r| r.name == name) {
            known = true;
            for parent in &role.inherits {
                if !visited.contains(parent) {
                    work.push(parent.clone());
                }
            }
        }
        if known {
            visited.insert(name);
        }
    }
    visited
}

/// The user's effective permissions as exact `(audience, scope)` pairs:
/// direct permissions (exact, no patterns) ∪ the permissions of every role in
/// the closure, patterns expanded against the defined scopes of the named API
/// (DESIGN.md §3.3 API step 4). Direct permissions are kept as given; callers
/// only ever look up defined scopes.
pub fn effective_permissions(doc: &Doc, user: &User) -> BTreeSet<(String, String)> {
    let mut perms: BTreeSet<(String, String)> = BTreeSet::new();
    for p in &user.permissions {
        perms.insert((p.audience.clone(), p.scope.clone()));
    }
    let roles = role_closure(doc, &user.roles);
    for role in doc.roles.iter().filter(|r| roles.contains(&r.name)) {
        for p in &role.permissions {
            for api in doc.apis.iter().filter(|a| a.audience == p.audience) {
                for def in &api.scopes {
                    if pattern_matches(&p.scope, &def.name) {
                        perms.insert((api.audience.clone(), def.name.clone()));
                    }
                }
            }
        }
    }
    perms
}

/// A record is for this user, client and audience (audience `None` matches
/// only `None`), expiry not looked at.
fn record_is_for(rec: &Consent, user_id: &str, client_id: &str, audience: Option<&str>) -> bool {
    rec.user_id == user_id && rec.client_id == client_id && rec.audience.as_deref() == audience
}

/// A record *matches* (DESIGN.md §3.4): it is for this user, client and
/// audience, and has not expired: `expires_at` is `None`, or the request
/// carries a `now` and `expires_at > now`.
fn record_matches(
    rec: &Consent,
    user_id: &str,
    client_id: &str,
    audience: Option<&str>,
    now: Option<u64>,
) -> bool {
    let unexpired = match (rec.expires_at, now) {
        (None, _) => true,
        (Some(t), Some(n)) => t > n,
        (Some(_), None) => false,
    };
    record_is_for(rec, user_id, client_id, audience) && unexpired
}

// ---------------------------------------------------------------------------
// Verifiable redirect (DESIGN.md §2, §3.6; decisions item 7)
// ---------------------------------------------------------------------------

/// RFC 3986 `unreserved`.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_' || b == b'~'
}

/// RFC 3986 `gen-delims`.
fn is_gen_delim(b: u8) -> bool {
    matches!(b, b':' | b'/' | b'?' | b'#' | b'[' | b']' | b'@')
}

/// RFC 3986 `sub-delims`.
fn is_sub_delim(b: u8) -> bool {
    matches!(
        b,
        b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'='
    )
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Every byte is unreserved, reserved, or part of a `pct-encoded` (`%` HEX HEX).
fn rfc3986_characters(s: &str) -> bool {
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let h1 = bytes.next().and_then(hex_value);
            let h2 = bytes.next().and_then(hex_value);
            if h1.is_none() || h2.is_none() {
                return false;
            }
        } else if !(is_unreserved(b) || is_gen_delim(b) || is_sub_delim(b)) {
            return false;
        }
    }
    true
}

/// `[ ":" port ]` after the host: nothing, or `:` and digits only (maybe none).
fn port_parses(after_host: &str) -> bool {
    match after_host.strip_prefix(':') {
        None => after_host.is_empty(),
        Some(port) => port.bytes().all(|b| b.is_ascii_digit()),
    }
}

/// What follows the authority: path-abempty, `?query`, `#fragment`. The
/// characters were checked already; here only `[`/`]` (allowed nowhere but in
/// an IP-literal) and a second `#` (a fragment holds none) fail.
fn tail_parses(tail: &str) -> bool {
    !tail.contains('[') && !tail.contains(']') && tail.matches('#').count() <= 1
}

/// A reg-name host, normalised as §3.6 says: decode percent-escapes, then
/// lowercase ASCII, then remove one trailing dot. `None` when a decoded byte
/// is not ASCII (unverifiable).
fn normalise_reg_name(host: &str) -> Option<String> {
    let mut decoded: Vec<u8> = Vec::new();
    let mut bytes = host.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hi = bytes.next().and_then(hex_value)?;
            let lo = bytes.next().and_then(hex_value)?;
            decoded.push(hi * 16 + lo);
        } else {
            decoded.push(b);
        }
    }
    if !decoded.is_ascii() {
        return None;
    }
    let mut name = String::from_utf8(decoded).ok()?;
    name.make_ascii_lowercase();
    if name.ends_with('.') {
        name.pop();
    }
    Some(name)
}

/// One part of an inet_aton address: decimal, octal with a leading `0`, or
/// hex with `0x` (the name is already lowercase). `None` when it is not a
/// number. Values above `u32::MAX` are `None` too (out of range anyway).
/// CHOICE: `0x` with no hex digit after it is 0, as the WHATWG URL
/// standard (browsers, which follow the redirect) reads it; glibc's
/// `inet_aton` refuses it, which would make `https://0x/` a verifiable name
/// although a browser sends it to 0.0.0.0.
fn inet_aton_part(part: &str) -> Option<u64> {
    let (digits, radix): (&str, u32) = if let Some(hex) = part.strip_prefix("0x") {
        (hex, 16)
    } else if part.len() > 1 {
        match part.strip_prefix('0') {
            Some(octal) => (octal, 8),
            None => (part, 10),
        }
    } else {
        (part, 10)
    };
    if digits.is_empty() {
        return (radix == 16).then_some(0);
    }
    let mut value: u64 = 0;
    for c in digits.chars() {
        let d = u64::from(c.to_digit(radix)?);
        value = value.checked_mul(u64::from(radix))?.checked_add(d)?;
        if value > u64::from(u32::MAX) {
            return None;
        }
    }
    Some(value)
}

/// A name read as an IPv4 address the way `inet_aton` reads it (decisions
/// item 7): 1 to 4 dot-separated parts, the last one filling the remaining
/// bytes; any part out of range means "not an address".
fn inet_aton(name: &str) -> Option<u32> {
    let parts: Vec<&str> = name.split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let mut values: Vec<u64> = Vec::new();
    for p in &parts {
        values.push(inet_aton_part(p)?);
    }
    let (last, leading) = values.split_last()?;
    let mut address: u64 = 0;
    for v in leading {
        if *v > 255 {
            return None;
        }
        address = (address << 8) | *v;
    }
    let last_bits: u32 = 8 * (5 - values.len() as u32); // 1 part: 32 … 4 parts: 8
    if *last >= (1u64 << last_bits) {
        return None;
    }
    address = (address << last_bits) | *last;
    u32::try_from(address).ok()
}

/// 127.0.0.0/8 or the unspecified 0.0.0.0.
fn ipv4_is_loopback(address: u32) -> bool {
    address >> 24 == 127 || address == 0
}

/// A normalised reg-name that reaches the local machine: `localhost`, any
/// name ending in `.localhost`, or an inet_aton spelling of a loopback or
/// unspecified IPv4 address.
fn name_is_loopback(name: &str) -> bool {
    name == "localhost" || name.ends_with(".localhost") || inet_aton(name).is_some_and(ipv4_is_loopback)
}

/// RFC 3986 `h16`: 1 to 4 hex digits.
fn parse_h16(s: &str) -> Option<u16> {
    if s.is_empty() || s.len() > 4 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u16::from_str_radix(s, 16).ok()
}

/// RFC 3986 `IPv4address` (strict `dec-octet`: no leading zeros, ≤ 255).
/// CHOICE: the dotted quad inside an IPv6 literal is RFC 3986's, since the
/// URI must parse as RFC 3986.
fn parse_dotted_quad(s: &str) -> Option<[u8; 4]> {
    let parts: Vec<&str> = s.split('.').collect();
    if parts.len() != 4 {
        return None;
    }
    let mut out = [0u8; 4];
    for (slot, p) in out.iter_mut().zip(parts.iter()) {
        if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if p.len() > 1 && p.starts_with('0') {
            return None;
        }
        *slot = p.parse::<u8>().ok()?;
    }
    Some(out)
}

/// The 16-bit groups of one side of an IPv6 address (`a:b:c`); when
/// `quad_last`, the last piece may be a dotted quad (two groups).
fn ipv6_groups(part: &str, quad_last: bool) -> Option<Vec<u16>> {
    let mut out = Vec::new();
    if part.is_empty() {
        return Some(out);
    }
    let pieces: Vec<&str> = part.split(':').collect();
    let count = pieces.len();
    for (i, piece) in pieces.iter().enumerate() {
        if quad_last && i + 1 == count && piece.contains('.') {
            let [a, b, c, d] = parse_dotted_quad(piece)?;
            out.push((u16::from(a) << 8) | u16::from(b));
            out.push((u16::from(c) << 8) | u16::from(d));
        } else {
            out.push(parse_h16(piece)?);
        }
    }
    Some(out)
}

/// An IPv6 address in RFC 4291 / RFC 3986 text form (at most one `::`
/// standing for one or more zero groups; an optional trailing dotted quad).
/// A zone id, an IPvFuture literal or anything else fails.
fn parse_ipv6(s: &str) -> Option<[u16; 8]> {
    let groups: Vec<u16> = match s.find("::") {
        Some(at) => {
            let (head, rest) = s.split_at(at);
            let tail = rest.strip_prefix("::")?;
            if tail.contains("::") {
                return None;
            }
            let head = ipv6_groups(head, false)?;
            let tail = ipv6_groups(tail, true)?;
            if head.len() + tail.len() > 7 {
                return None;
            }
            let mut all = head;
            while all.len() + tail.len() < 8 {
                all.push(0);
            }
            all.extend(tail);
            all
        }
        None => {
            let all = ipv6_groups(s, true)?;
            if all.len() != 8 {
                return None;
            }
            all
        }
    };
    let mut out = [0u16; 8];
    if groups.len() != 8 {
        return None;
    }
    for (slot, g) in out.iter_mut().zip(groups) {
        *slot = g;
    }
    Some(out)
}

/// `::`, `::1`, or IPv4-mapped `::ffff:a.b.c.d` of 127.0.0.0/8 or 0.0.0.0.
/// IPv4-compatible forms (`::a.b.c.d`) other than `::` and `::1` are not
/// loopback (decisions item 7).
fn ipv6_is_loopback(g: [u16; 8]) -> bool {
    let [a, b, c, d, e, f, g6, h] = g;
    let first_five_zero = a == 0 && b == 0 && c == 0 && d == 0 && e == 0;
    if first_five_zero && f == 0 && g6 == 0 && (h == 0 || h == 1) {
        return true;
    }
    if first_five_zero && f == 0xffff {
        let v4 = (u32::from(g6) << 16) | u32::from(h);
        return ipv4_is_loopback(v4);
    }
    false
}

/// Is this `redirect_uri` verifiable (DESIGN.md §2 "Verifiable redirect",
/// §3.6; decisions item 7)? True when it parses as an RFC 3986 URI with scheme
/// `https` (case-insensitive), an authority (`//`), and a host that is
/// non-empty and does not reach the local machine; userinfo and port do not
/// count. Anything else (custom schemes, `http`, loopback, unparsable text,
/// non-ASCII, a zone id, an IPvFuture literal) is unverifiable. The empty
/// string is unparsable here; the decision treats `""` as not sent before
/// ever asking.
/// CHOICE: a reg-name that is empty after normalisation (`https://./`) is an
/// empty host; a fragment or query does not make a URI unverifiable.
pub fn redirect_verifiable(uri: &str) -> bool {
    // RFC 3986 characters only (which also rules out non-ASCII, spaces, `\`).
    if !rfc3986_characters(uri) {
        return false;
    }
    // scheme ":" — the scheme must be https, whatever its case.
    let (scheme, rest) = match uri.split_once(':') {
        Some(split) => split,
        None => return false,
    };
    if !scheme.eq_ignore_ascii_case("https") {
        return false;
    }
    // "//" authority, ending at the first "/", "?" or "#".
    let rest = match rest.strip_prefix("//") {
        Some(rest) => rest,
        None => return false,
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    if !tail_parses(tail) {
        return false;
    }
    // [ userinfo "@" ] — userinfo holds no "@" and is otherwise ignored.
    let host_and_port = match authority.split_once('@') {
        Some((userinfo, host_and_port)) => {
            if !userinfo
                .bytes()
                .all(|b| is_unreserved(b) || is_sub_delim(b) || b == b':' || b == b'%')
            {
                return false;
            }
            host_and_port
        }
        None => authority,
    };
    let loopback = if let Some(inside) = host_and_port.strip_prefix('[') {
        // IP-literal: only an IPv6address is accepted (no zone id, no IPvFuture).
        let (literal, after) = match inside.split_once(']') {
            Some(split) => split,
            None => return false,
        };
        if !port_parses(after) {
            return false;
        }
        match parse_ipv6(&literal.to_ascii_lowercase()) {
            Some(groups) => ipv6_is_loopback(groups),
            None => return false,
        }
    } else {
        // reg-name (an IPv4address is a reg-name too) [ ":" port ].
        let (host, after) = match host_and_port.find(':') {
            Some(at) => host_and_port.split_at(at),
            None => (host_and_port, ""),
        };
        if !port_parses(after) {
            return false;
        }
        if !host
            .bytes()
            .all(|b| is_unreserved(b) || is_sub_delim(b) || b == b'%')
        {
            return false;
        }
        let name = match normalise_reg_name(host) {
            Some(name) => name,
            None => return false,
        };
        if name.is_empty() {
            return false;
        }
        name_is_loopback(&name)
    };
    !loopback
}

// ---------------------------------------------------------------------------
// The decision (DESIGN.md §3)
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    AuthorizationCode,
    DeviceCode,
    RefreshToken,
    ClientCredentials,
}

/// Where a token stands after §3.3 and, for the interactive flows, §3.4
/// before any answer.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    /// Refused: §3.3's reason, `consent_missing` (refresh) or
    /// `consent_denied` (a declined scope, not asked again).
    Refused(&'static str),
    /// Passes without a prompt.
    Passed,
    /// Goes on the consent prompt.
    Prompt,
}

/// Everything the decision knows once §3.1–§3.2 ran.
struct Facts<'d> {
    doc: &'d Doc,
    req: &'d Req,
    client: &'d Client,
    flow: Flow,
    grant_types: Vec<String>,
    /// The audience in force.
    audience: Option<String>,
    api: Option<&'d Api>,
    /// The user's effective permissions (user flows only).
    perms: BTreeSet<(String, String)>,
    /// The matching (same user, client, audience; unexpired) records, in
    /// request order.
    matching: Vec<&'d Consent>,
    /// The `prompt` values (authorization_code only; empty elsewhere).
    prompt_values: BTreeSet<String>,
    /// authorization_code with a non-empty, unverifiable `redirect_uri`.
    unverifiable_redirect: bool,
    /// The distinct tokens of the scope parameter.
    param_tokens: Vec<String>,
    /// The distinct tokens of `original_scope` (refresh only).
    original_tokens: Vec<String>,
    /// §3.2: the asked tokens, in asked order.
    asked: Vec<String>,
}

fn err<T>(code: &str) -> Result<T, String> {
    Err(code.to_string())
}

impl<'d> Facts<'d> {
    fn is_user_flow(&self) -> bool {
        self.flow != Flow::ClientCredentials
    }

    fn prompt_none(&self) -> bool {
        self.prompt_values.contains("none")
    }

    fn prompt_consent(&self) -> bool {
        self.prompt_values.contains("consent")
    }

    /// The definition of `t` in the API in force, if any.
    fn def(&self, t: &str) -> Option<&'d ScopeDef> {
        self.api.and_then(|api| find_def(api, t))
    }

    /// `t` is defined `consent: always` by the API in force.
    fn is_always(&self, t: &str) -> bool {
        self.def(t).is_some_and(|d| d.consent == "always")
    }

    /// `t` is defined `required` by the API in force.
    fn is_required(&self, t: &str) -> bool {
        self.def(t).is_some_and(|d| d.required)
    }

    /// A matching record holds `t` in `scopes`.
    fn held(&self, t: &str) -> bool {
        self.matching.iter().any(|r| r.scopes.iter().any(|s| s == t))
    }

    /// A matching record holds `t` in `declined`.
    fn declined(&self, t: &str) -> bool {
        self.matching.iter().any(|r| r.declined.iter().any(|s| s == t))
    }

    /// §3.3 API step 3: the client's grant restricts `t` (client_credentials
    /// always; user flows under `require_client_grant`) and does not hold it.
    /// CHOICE: under `allow_all` a `subject: user` grant restricts nothing.
    fn client_grant_refuses(&self, t: &str) -> bool {
        let api = match self.api {
            Some(api) => api,
            None => return false,
        };
        let subject = match self.flow {
            Flow::ClientCredentials => "client",
            _ if api.user_access == "require_client_grant" => "user",
            _ => return false,
        };
        match find_grant(self.client, &api.audience, subject) {
            Some(grant) => !grant_holds(api, grant, t),
            None => true,
        }
    }

    /// §3.3 before consent: the first failing check's reason, if any.
    fn refusal(&self, t: &str) -> Option<&'static str> {
        if is_oidc(t) {
            // OIDC step 1.
            if self.flow == Flow::ClientCredentials {
                return Some("requires_user");
            }
            // OIDC step 2.
            if t == "offline_access" {
                let has_refresh = self.grant_types.iter().any(|g| g == "refresh_token");
                let api_refuses = self.api.is_some_and(|api| !api.allow_offline_access);
                if !has_refresh || api_refuses {
                    return Some("offline_access_not_allowed");
                }
            }
            return None;
        }
        // API step 1.
        let api = match self.api {
            Some(api) => api,
            None => return Some("no_audience"),
        };
        // API step 2.
        if !is_defined(api, t) {
            return Some("undefined");
        }
        // API step 3.
        if self.client_grant_refuses(t) {
            return Some("not_granted_to_client");
        }
        // API step 4.
        if self.is_user_flow() && api.rbac && !self.perms.contains(&(api.audience.clone(), t.to_string())) {
            return Some("not_permitted");
        }
        None
    }

    /// §3.4 "Who must consent", for a scope that passed §3.3 (in a user flow).
    /// In a refresh there is no redirect and no prompt, so only the first two
    /// reasons and `consent: always` can apply.
    fn needs_consent(&self, t: &str) -> bool {
        let third_party = !self.client.first_party;
        // With no audience, first-party skips.
        let first_party_no_skip =
            self.client.first_party && self.api.is_some_and(|api| !api.allow_skipping_consent);
        let device = self.flow == Flow::DeviceCode;
        third_party
            || first_party_no_skip
            || device
            || self.unverifiable_redirect
            || self.is_always(t)
            || self.prompt_consent()
    }

    /// §3.4 "Remembered consent counts" for `t`.
    fn remembered_counts(&self, t: &str) -> bool {
        !self.prompt_consent()
            && self.flow != Flow::DeviceCode
            && !self.unverifiable_redirect
            && !self.is_always(t)
    }

    /// Where `t` stands after §3.3 and §3.4 (before any answer).
    fn step(&self, t: &str) -> Step {
        if let Some(reason) = self.refusal(t) {
            return Step::Refused(reason);
        }
        match self.flow {
            Flow::ClientCredentials => Step::Passed,
            Flow::RefreshToken => {
                // §3.3 last paragraph: every client, a declined scope is missing.
                if self.declined(t) {
                    return Step::Refused("consent_missing");
                }
                // CHOICE: a one-time scope never comes back through a refresh,
                // whatever a record holds (§2, §3.3, §3.6).
                if self.needs_consent(t) && (self.is_always(t) || !self.held(t)) {
                    return Step::Refused("consent_missing");
                }
                Step::Passed
            }
            Flow::AuthorizationCode | Flow::DeviceCode => {
                if !self.needs_consent(t) {
                    return Step::Passed;
                }
                if !self.remembered_counts(t) {
                    return Step::Prompt;
                }
                let declined = self.declined(t);
                if self.held(t) && !declined {
                    // covered
                    Step::Passed
                } else if declined && !self.is_required(t) {
                    // declined: denied without being asked again
                    Step::Refused("consent_denied")
                } else {
                    Step::Prompt
                }
            }
        }
    }

    /// §3.5 `permissions` (decisions item 2), given the final verdicts.
    fn permissions(&self, verdicts: &[(String, Option<String>)]) -> Vec<String> {
        let api = match self.api {
            Some(api) => api,
            None => return Vec::new(),
        };
        let mut out = Vec::new();
        if self.flow == Flow::ClientCredentials {
            // The granted API scopes, in definition order.
            for def in &api.scopes {
                if verdicts.iter().any(|(t, v)| *t == def.name && v.is_none()) {
                    out.push(def.name.clone());
                }
            }
            return out;
        }
        if !api.rbac {
            return out;
        }
        for def in &api.scopes {
            let s = def.name.as_str();
            if !self.perms.contains(&(api.audience.clone(), s.to_string())) {
                continue;
            }
            match verdicts.iter().find(|(t, _)| t == s) {
                // Asked: included iff granted.
                Some((_, verdict)) => {
                    if verdict.is_none() {
                        out.push(s.to_string());
                    }
                }
                // Not asked: left out when this client could not get it
                // without a consent it lacks.
                None => {
                    if self.client_grant_refuses(s) {
                        continue;
                    }
                    if self.is_always(s) {
                        continue;
                    }
                    if self.declined(s) {
                        continue;
                    }
                    if self.needs_consent(s) && !self.held(s) {
                        continue;
                    }
                    out.push(s.to_string());
                }
            }
        }
        out
    }
}

/// §3.1 (checks 1–8) and §3.2.
fn facts<'d>(doc: &'d Doc, req: &'d Req) -> Result<Facts<'d>, String> {
    let settings = &doc.settings;

    // Check 1: the client is defined.
    let client = match find_client(doc, &req.client_id) {
        Some(c) => c,
        None => return err("invalid_client"),
    };

    // Check 2: the flow is one of the client's grant types. CHOICE (item 8):
    // the RFC 8628 URN is device_code; a flow that is none of the four is
    // unauthorized_client (a valid document lists no other grant type).
    let flow_name: &str = if req.flow == DEVICE_CODE_URN {
        "device_code"
    } else {
        req.flow.as_str()
    };
    let grant_types = effective_grant_types(client);
    if !grant_types.iter().any(|g| g == flow_name) {
        return err("unauthorized_client");
    }
    let flow = match flow_name {
        "authorization_code" => Flow::AuthorizationCode,
        "device_code" => Flow::DeviceCode,
        "refresh_token" => Flow::RefreshToken,
        "client_credentials" => Flow::ClientCredentials,
        _ => return err("unauthorized_client"),
    };
    let is_user_flow = flow != Flow::ClientCredentials;

    // Check 3: user flows have a user; client_credentials has none;
    // refresh_token has an original_scope; in authorization_code, prompt
    // holds only the four values, none only alone (other flows ignore it).
    if is_user_flow && req.user.is_none() {
        return err("invalid_request");
    }
    if !is_user_flow && req.user.is_some() {
        return err("invalid_request");
    }
    if flow == Flow::RefreshToken && req.original_scope.is_none() {
        return err("invalid_request");
    }
    let prompt_values = if flow == Flow::AuthorizationCode {
        match parse_prompt(req.prompt.as_deref()) {
            Ok(values) => values,
            Err(()) => return err("invalid_request"),
        }
    } else {
        BTreeSet::new()
    };

    // Check 4: the scope parameter parses and is within limits.
    let param_tokens: Vec<String> = match &req.scope {
        None => Vec::new(),
        Some(raw) => match parse_scope(raw, settings.max_scope_length, settings.max_scope_tokens) {
            Ok(tokens) => tokens,
            Err(()) => return err("invalid_scope"),
        },
    };

    // Check 5: the audience in force.
    let audience: Option<String> = if flow == Flow::RefreshToken {
        // The refreshed grant's audience; default_audience does not apply; a
        // given audience must equal it (also: none given while it had none).
        if let Some(given) = &req.audience {
            if req.original_audience.as_ref() != Some(given) {
                return err("invalid_target");
            }
        }
        req.original_audience.clone()
    } else {
        match &req.audience {
            Some(given) => Some(given.clone()),
            None => settings.default_audience.clone(),
        }
    };
    let api: Option<&Api> = match &audience {
        Some(a) => match find_api(doc, a) {
            Some(api) => Some(api),
            None => return err("invalid_target"),
        },
        None => None,
    };
    if flow == Flow::ClientCredentials && api.is_none() {
        return err("invalid_request");
    }

    // Check 6: API access.
    if let Some(api) = api {
        if flow == Flow::ClientCredentials {
            if api.client_access == "deny_all" || find_grant(client, &api.audience, "client").is_none() {
                return err("access_denied");
            }
        } else {
            if api.user_access == "deny_all" {
                return err("access_denied");
            }
            if api.user_access == "require_client_grant"
                && find_grant(client, &api.audience, "user").is_none()
            {
                return err("access_denied");
            }
        }
    }

    // Check 7: unknown_scopes = "reject". CHOICE: only the tokens of the
    // scope parameter (not defaults, not original_scope).
    if settings.unknown_scopes == "reject" {
        for t in &param_tokens {
            let known = is_oidc(t) || api.is_some_and(|api| is_defined(api, t));
            if !known {
                return err("invalid_scope");
            }
        }
    }

    // Check 8: refresh_token: original_scope parses (same syntax, no limits)
    // and holds every token of the scope parameter.
    let original_tokens: Vec<String> = if flow == Flow::RefreshToken {
        let raw = req.original_scope.as_deref().unwrap_or("");
        match parse_scope(raw, usize::MAX, usize::MAX) {
            Ok(tokens) => tokens,
            Err(()) => return err("invalid_scope"),
        }
    } else {
        Vec::new()
    };
    if flow == Flow::RefreshToken {
        for t in &param_tokens {
            if !original_tokens.contains(t) {
                return err("invalid_scope");
            }
        }
    }

    // §3.2: which scopes are asked for.
    let asked: Vec<String> = if !param_tokens.is_empty() {
        param_tokens.clone()
    } else {
        match flow {
            Flow::ClientCredentials => {
                // The client's `subject: client` grant, definition order.
                let mut v = Vec::new();
                if let Some(api) = api {
                    if let Some(g) = find_grant(client, &api.audience, "client") {
                        for def in &api.scopes {
                            if g.scopes.iter().any(|p| pattern_matches(p, &def.name)) {
                                v.push(def.name.clone());
                            }
                        }
                    }
                }
                v
            }
            Flow::RefreshToken => original_tokens.clone(),
            Flow::AuthorizationCode | Flow::DeviceCode => {
                // The API's default_scopes (nothing without an audience).
                // CHOICE: in the API's definition order.
                let mut v = Vec::new();
                if let Some(api) = api {
                    for def in &api.scopes {
                        if api.default_scopes.contains(&def.name) {
                            v.push(def.name.clone());
                        }
                    }
                }
                v
            }
        }
    };

    let perms = match &req.user {
        Some(u) if is_user_flow => effective_permissions(doc, u),
        _ => BTreeSet::new(),
    };
    let user_id: &str = req.user.as_ref().map_or("", |u| u.id.as_str());
    let matching: Vec<&Consent> = if is_user_flow {
        req.consents
            .iter()
            .filter(|r| record_matches(r, user_id, &client.client_id, audience.as_deref(), req.now))
            .collect()
    } else {
        Vec::new()
    };
    // The redirect counts only in authorization_code; "" is not sent.
    let unverifiable_redirect = flow == Flow::AuthorizationCode
        && req
            .redirect_uri
            .as_deref()
            .is_some_and(|uri| !uri.is_empty() && !redirect_verifiable(uri));

    Ok(Facts {
        doc,
        req,
        client,
        flow,
        grant_types,
        audience,
        api,
        perms,
        matching,
        prompt_values,
        unverifiable_redirect,
        param_tokens,
        original_tokens,
        asked,
    })
}

/// Builds the grant (§3.5): tokens that passed, and prompt tokens in
/// `approved`, are granted; prompt tokens not approved get `consent_denied`.
fn build_grant(
    f: &Facts,
    steps: &[(String, Step)],
    approved: &[String],
    consent_record: Option<Record>,
) -> Granted {
    let mut granted = Vec::new();
    let mut verdicts: Vec<(String, Option<String>)> = Vec::new();
    for (t, step) in steps {
        let reason: Option<String> = match step {
            Step::Refused(r) => Some(r.to_string()),
            Step::Passed => None,
            Step::Prompt if approved.contains(t) => None,
            Step::Prompt => Some("consent_denied".to_string()),
        };
        if reason.is_none() {
            granted.push(t.clone());
        }
        verdicts.push((t.clone(), reason));
    }

    // scope_changed. CHOICE: in a refresh the requested set is the scope
    // parameter's tokens when it has any, else original_scope.
    let requested: BTreeSet<&String> = if f.flow == Flow::RefreshToken && f.param_tokens.is_empty() {
        f.original_tokens.iter().collect()
    } else {
        f.param_tokens.iter().collect()
    };
    let granted_set: BTreeSet<&String> = granted.iter().collect();
    let scope_changed = granted_set != requested;

    // refresh_token (item 6 for a refresh).
    let refresh_token = if f.flow == Flow::RefreshToken {
        f.original_tokens.iter().any(|t| t == "offline_access") && f.step("offline_access") == Step::Passed
    } else {
        granted.iter().any(|t| t == "offline_access")
    };

    let permissions = f.permissions(&verdicts);
    Granted {
        audience: f.audience.clone(),
        granted,
        verdicts,
        scope_changed,
        refresh_token,
        consent_record,
        permissions,
        unverifiable_redirect: f.unverifiable_redirect,
    }
}

/// The new consent record of an approval (§3.4, decisions item 4).
fn new_record(f: &Facts, prompt: &[String], approved: &[String]) -> Record {
    let unticked: Vec<&String> = prompt.iter().filter(|t| !approved.contains(t)).collect();

    // scopes = (held − unticked) ∪ approved.
    let mut scopes: Vec<String> = Vec::new();
    for r in &f.matching {
        for s in &r.scopes {
            if !unticked.contains(&s) && !scopes.contains(s) {
                scopes.push(s.clone());
            }
        }
    }
    for t in prompt {
        if approved.contains(t) && !scopes.contains(t) {
            scopes.push(t.clone());
        }
    }

    // declined = (was_declined ∪ unticked) − the new scopes.
    let mut declined: Vec<String> = Vec::new();
    for r in &f.matching {
        for s in &r.declined {
            if !declined.contains(s) {
                declined.push(s.clone());
            }
        }
    }
    for t in &unticked {
        if !declined.contains(*t) {
            declined.push((*t).clone());
        }
    }
    declined.retain(|s| !scopes.contains(s));

    // consent: always scopes are in neither.
    scopes.retain(|s| !f.is_always(s));
    declined.retain(|s| !f.is_always(s));

    // expires_at: the earliest of the matching records' and now + lifetime.
    let mut expires_at: Option<u64> = None;
    let mut earliest = |t: u64| {
        expires_at = Some(match expires_at {
            Some(e) => e.min(t),
            None => t,
        });
    };
    for r in &f.matching {
        if let Some(t) = r.expires_at {
            earliest(t);
        }
    }
    if let (Some(lifetime), Some(now)) = (f.doc.settings.consent_lifetime, f.req.now) {
        // Positive in a valid document; saturates at u64::MAX (item 9).
        let lifetime = u64::try_from(lifetime).unwrap_or(0);
        earliest(now.saturating_add(lifetime));
    }

    Record {
        scopes,
        declined,
        expires_at,
    }
}

/// The decision, stopping at the consent prompt (DESIGN.md §3).
pub fn decide(doc: &Doc, req: &Req) -> Outcome {
    decide_and_answer(doc, req, &Answer::None)
}

/// The decision, with the user's answer applied if it asks for consent
/// (DESIGN.md §3.4). An answer to a decision that does not ask is ignored.
pub fn decide_and_answer(doc: &Doc, req: &Req, answer: &Answer) -> Outcome {
    let f = match facts(doc, req) {
        Ok(f) => f,
        Err(code) => return Outcome::Error(code),
    };

    // §3.3 and §3.4 per asked token, in asked order.
    let steps: Vec<(String, Step)> = f.asked.iter().map(|t| (t.clone(), f.step(t))).collect();
    let prompt: Vec<String> = steps
        .iter()
        .filter(|(_, step)| *step == Step::Prompt)
        .map(|(t, _)| t.clone())
        .collect();

    // Nothing to ask: a grant.
    if prompt.is_empty() {
        return Outcome::Granted(build_grant(&f, &steps, &[], None));
    }

    // prompt=none (authorization_code only) that would prompt.
    if f.prompt_none() {
        return Outcome::Error("consent_required".to_string());
    }

    match answer {
        Answer::None => {
            let required: Vec<String> = prompt.iter().filter(|t| f.is_required(t)).cloned().collect();
            let verdicts: Vec<(String, Option<String>)> = steps
                .iter()
                .map(|(t, step)| {
                    let reason = match step {
                        Step::Refused(r) => Some(r.to_string()),
                        Step::Passed | Step::Prompt => None,
                    };
                    (t.clone(), reason)
                })
                .collect();
            Outcome::Consent {
                prompt,
                required,
                unverifiable_redirect: f.unverifiable_redirect,
                verdicts,
            }
        }
        Answer::Deny => Outcome::Error("access_denied".to_string()),
        Answer::Approve(approved) => {
            // (a) A tampered form never widens a grant.
            if approved.iter().any(|a| !prompt.contains(a)) {
                return Outcome::Error("invalid_request".to_string());
            }
            // (b) Leaving out a required prompt scope refuses the whole prompt.
            if prompt.iter().any(|t| f.is_required(t) && !approved.contains(t)) {
                return Outcome::Error("access_denied".to_string());
            }
            // (c) consent_lifetime set and no now.
            if doc.settings.consent_lifetime.is_some() && req.now.is_none() {
                return Outcome::Error("invalid_request".to_string());
            }
            // (d) No now while a record for the same user, client and
            // audience (expiry ignored) carries expires_at.
            if req.now.is_none() {
                let user_id: &str = req.user.as_ref().map_or("", |u| u.id.as_str());
                let expiring = req.consents.iter().any(|r| {
                    record_is_for(r, user_id, &f.client.client_id, f.audience.as_deref())
                        && r.expires_at.is_some()
                });
                if expiring {
                    return Outcome::Error("invalid_request".to_string());
                }
            }
            let record = new_record(&f, &prompt, approved);
            Outcome::Granted(build_grant(&f, &steps, approved, Some(record)))
        }
    }
}

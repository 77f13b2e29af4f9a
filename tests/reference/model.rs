//! A deliberately naive reference model of the `scope-policy` decision.
//!
//! Written straight from `/work/shared/DESIGN.md` (§2–§3) as a loop over the
//! rules, on plain `String`s, `Vec`s and `BTreeSet`s: no interning, no
//! bitsets, no precomputation. Patterns and role inheritance are resolved at
//! decision time, every time. It is meant to be *obviously* right, not fast,
//! and is compared with the real crate by property tests and a fuzz target
//! (TESTING.md §2, invariant 15).
//!
//! It does not depend on `scope_policy`. Its input types mirror the serde
//! shape of the policy document (DESIGN.md §4) and of a conformance case's
//! `request` (DESIGN.md §5), so a case file deserializes straight into them.
//!
//! The model ASSUMES the document is valid (a policy that built); it never
//! validates one. It must never panic on any request, however hostile: no
//! indexing, no `unwrap` on request data.
//!
//! Decisions taken where DESIGN.md leaves room (each also marked `CHOICE` below):
//! - Only `prompt == Some("consent")` means `prompt=consent`; any other value
//!   is ignored.
//! - The flow is compared literally with the client's grant types (check 2),
//!   so an unknown flow is `unauthorized_client`. Every flow other than
//!   `client_credentials` that gets past check 2 is a user flow.
//! - The audience used everywhere after check 5 (API access, verdicts, consent
//!   record matching, the grant) is the *effective* one: the request's, or
//!   else `default_audience`.
//! - Under `user_access = allow_all`, a `subject: user` client grant does not
//!   restrict user flows (§3.3 step 3 names only `require_client_grant`).
//! - Defaults asked by `authorization_code` without scope tokens are the API's
//!   `default_scopes`, in the API's scope *definition* order (§3.5 "defaults:
//!   definition order"), like the client-credentials defaults.
//! - Check 7 (`unknown_scopes = "reject"`) looks at the tokens of the scope
//!   parameter only, never at defaults nor at `original_scope`.
//! - `scope_changed` on refresh: the requested set is the scope parameter's
//!   tokens when it has any, otherwise `original_scope`'s tokens.
//! - The new consent record (after approve) holds the scopes of every
//!   matching unexpired record, in record order, then the approved scopes in
//!   asked order, without repeats.
//! - A client grant that names no `subject` is for `"client"` when the client
//!   is `machine_to_machine` and for `"user"` otherwise (see [`grant_subject`]).
//!
//! Serialized (to build the real policy from the same document), a `Doc`
//! leaves out an empty API or client `name` and a grant's absent `subject`,
//! so the text means what the model read.

// Not every test that includes this module uses every item of it.
#![allow(dead_code)]

use std::collections::BTreeSet;

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

/// Document-wide settings (DESIGN.md §2 "Scope parameter", §3.1 checks 5 and 7).
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
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            unknown_scopes: default_unknown_scopes(),
            default_audience: None,
            max_scope_length: default_max_scope_length(),
            max_scope_tokens: default_max_scope_tokens(),
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
}

/// One scope definition of an API.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ScopeDef {
    pub name: String,
    #[serde(default)]
    pub description: String,
}

/// A role: permissions, plus those of every role it inherits, transitively.
#[derive(Debug, Clone, Deserialize, Serialize)]
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
#[derive(Debug, Clone, Deserialize, Serialize)]
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
    /// `None` = the defaults of §2 (see [`effective_grant_types`]).
    #[serde(default)]
    pub grant_types: Option<Vec<String>>,
    #[serde(default)]
    pub grants: Vec<ClientGrant>,
}

/// A client grant: which scopes of one API the client may get for one subject.
#[derive(Debug, Clone, Deserialize, Serialize)]
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
    /// `None` or `Some("consent")`.
    #[serde(default)]
    pub prompt: Option<String>,
    #[serde(default)]
    pub original_scope: Option<String>,
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
            original_scope: None,
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
    /// RFC 8707 error code, e.g. `"invalid_scope"`.
    Error(String),
    /// Consent required (§3.4). `prompt` in asked order; `verdicts` for every
    /// asked token in asked order, `None` = passing so far (prompt tokens
    /// included), `Some(reason)` = refused by §3.3.
    Consent {
        prompt: Vec<String>,
        verdicts: Vec<(String, Option<String>)>,
    },
    /// A grant (§3.5).
    Granted(Granted),
}

/// A grant (DESIGN.md §3.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Granted {
    /// The effective audience (the request's, or `default_audience`).
    pub audience: Option<String>,
    /// Granted scopes in asked order (request order; defaults in definition order).
    pub granted: Vec<String>,
    /// Every asked token in asked order: `None` = granted, `Some(reason)` = denied.
    pub verdicts: Vec<(String, Option<String>)>,
    pub scope_changed: bool,
    /// Whether `offline_access` was granted.
    pub refresh_token: bool,
    /// The new consent record's scopes; only after an approved prompt.
    pub consent_record: Option<Vec<String>>,
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

/// The client's grant types, with the defaults of §2 when not given.
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

/// The subject a client grant is for. CHOICE (the crate's, DESIGN.md is
/// silent): a grant that names none is `"client"` for `machine_to_machine`
/// clients and `"user"` for the others.
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

fn is_defined(api: &Api, scope: &str) -> bool {
    api.scopes.iter().any(|d| d.name == scope)
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
/// (DESIGN.md §3.3 API step 4).
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

/// A record matches this user, client and audience exactly (audience `None`
/// matches only `None`) and has not expired: `expires_at` is `None`, or it
/// is `> now` and the request carries a `now` (DESIGN.md §3.4).
fn record_applies(
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
    rec.user_id == user_id && rec.client_id == client_id && rec.audience.as_deref() == audience && unexpired
}

// ---------------------------------------------------------------------------
// The decision (DESIGN.md §3)
// ---------------------------------------------------------------------------

/// Everything the decision knows once §3.1–§3.4 ran, before any answer.
struct Evaluated {
    audience: Option<String>,
    /// The asked tokens with their §3.3 verdict (`None` = passes §3.3).
    verdicts: Vec<(String, Option<String>)>,
    /// Passing tokens not covered by consent, in asked order (§3.4).
    prompt: Vec<String>,
    /// The requested set for `scope_changed` (§3.5).
    requested: BTreeSet<String>,
    /// Scopes of every matching, unexpired record (prompt=consent or not),
    /// in record order, without repeats: the start of a new record.
    remembered: Vec<String>,
}

fn err<T>(code: &str) -> Result<T, String> {
    Err(code.to_string())
}

fn evaluate(doc: &Doc, req: &Req) -> Result<Evaluated, String> {
    let s = &doc.settings;
    let flow = req.flow.as_str();
    let is_cc = flow == "client_credentials";
    let is_refresh = flow == "refresh_token";
    let is_authz = flow == "authorization_code";
    // CHOICE: any flow but client_credentials that passed check 2 is a user flow.
    let is_user_flow = !is_cc;

    // §3.1 check 1: the client is defined.
    let client = match find_client(doc, &req.client_id) {
        Some(c) => c,
        None => return err("invalid_client"),
    };

    // §3.1 check 2: the flow is one of the client's grant types.
    let grant_types = effective_grant_types(client);
    if !grant_types.iter().any(|g| g == flow) {
        return err("unauthorized_client");
    }

    // §3.1 check 3: user flows have a user; client_credentials has none;
    // refresh_token has an original_scope.
    if is_user_flow && req.user.is_none() {
        return err("invalid_request");
    }
    if is_cc && req.user.is_some() {
        return err("invalid_request");
    }
    if is_refresh && req.original_scope.is_none() {
        return err("invalid_request");
    }

    // §3.1 check 4: the scope parameter parses and is within limits.
    let param_tokens: Vec<String> = match &req.scope {
        None => Vec::new(),
        Some(raw) => match parse_scope(raw, s.max_scope_length, s.max_scope_tokens) {
            Ok(t) => t,
            Err(()) => return err("invalid_scope"),
        },
    };

    // §3.1 check 5: a given audience must be defined; if absent, the
    // default_audience setting is used; client_credentials needs one.
    let audience: Option<String> = match &req.audience {
        Some(a) => Some(a.clone()),
        None => s.default_audience.clone(),
    };
    let api: Option<&Api> = match &audience {
        Some(a) => match find_api(doc, a) {
            Some(api) => Some(api),
            None => return err("invalid_target"),
        },
        None => None,
    };
    if is_cc && api.is_none() {
        return err("invalid_request");
    }

    // §3.1 check 6: API access.
    if let Some(api) = api {
        if is_cc {
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

    // §3.1 check 7: unknown_scopes = "reject": every token of the scope
    // parameter is an OIDC scope or defined by the API (no API: OIDC only).
    if s.unknown_scopes == "reject" {
        for t in &param_tokens {
            let known = is_oidc(t) || api.is_some_and(|api| is_defined(api, t));
            if !known {
                return err("invalid_scope");
            }
        }
    }

    // §3.1 check 8: refresh_token: original_scope parses like a scope
    // parameter, and every token of the scope parameter is in it.
    let original_tokens: Vec<String> = if is_refresh {
        let raw = req.original_scope.as_deref().unwrap_or("");
        match parse_scope(raw, s.max_scope_length, s.max_scope_tokens) {
            Ok(t) => t,
            Err(()) => return err("invalid_scope"),
        }
    } else {
        Vec::new()
    };
    if is_refresh {
        for t in &param_tokens {
            if !original_tokens.contains(t) {
                return err("invalid_scope");
            }
        }
    }

    // §3.2: which scopes are asked for.
    let asked: Vec<String> = if !param_tokens.is_empty() {
        param_tokens.clone()
    } else if is_cc {
        // Every scope of the client's `subject: client` grant for the
        // audience, in the API's definition order.
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
    } else if is_refresh {
        original_tokens.clone()
    } else {
        // authorization_code: the API's default_scopes (nothing without an
        // audience). CHOICE: in the API's definition order.
        let mut v = Vec::new();
        if let Some(api) = api {
            for def in &api.scopes {
                if api.default_scopes.contains(&def.name) {
                    v.push(def.name.clone());
                }
            }
        }
        v
    };

    // §3.5: the requested set. CHOICE: on refresh without scope tokens it is
    // original_scope; otherwise the scope parameter's tokens.
    let requested: BTreeSet<String> = if is_refresh && param_tokens.is_empty() {
        original_tokens.iter().cloned().collect()
    } else {
        param_tokens.iter().cloned().collect()
    };

    // Facts used by §3.3.
    let has_refresh_grant_type = grant_types.iter().any(|g| g == "refresh_token");
    // The client grant that restricts API scopes, if any (§3.3 API step 3).
    let restricting_grant: Option<&ClientGrant> = match api {
        Some(api) if is_cc => find_grant(client, &api.audience, "client"),
        Some(api) if api.user_access == "require_client_grant" => find_grant(client, &api.audience, "user"),
        _ => None,
    };
    let grant_restricts = match api {
        Some(_) if is_cc => true,
        Some(api) => api.user_access == "require_client_grant",
        None => false,
    };
    let perms: BTreeSet<(String, String)> = match &req.user {
        Some(u) if is_user_flow => effective_permissions(doc, u),
        _ => BTreeSet::new(),
    };

    // §3.3: per-scope verdicts; the first failing check is the reason.
    let mut verdicts: Vec<(String, Option<String>)> = Vec::new();
    for t in &asked {
        let reason: Option<&str> = if is_oidc(t) {
            if is_cc {
                Some("requires_user")
            } else if t == "offline_access"
                && (!has_refresh_grant_type || api.is_some_and(|api| !api.allow_offline_access))
            {
                Some("offline_access_not_allowed")
            } else {
                None
            }
        } else {
            match api {
                None => Some("no_audience"),
                Some(api) if !is_defined(api, t) => Some("undefined"),
                Some(api)
                    if grant_restricts && !restricting_grant.is_some_and(|g| grant_holds(api, g, t)) =>
                {
                    Some("not_granted_to_client")
                }
                Some(api)
                    if is_user_flow && api.rbac && !perms.contains(&(api.audience.clone(), t.clone())) =>
                {
                    Some("not_permitted")
                }
                Some(_) => None,
            }
        };
        verdicts.push((t.clone(), reason.map(str::to_string)));
    }

    // §3.4: consent. Only authorization_code ever asks; third-party clients
    // always, first-party ones when the API does not allow skipping (with no
    // audience, first-party skips).
    let consent_required =
        is_authz && (!client.first_party || api.is_some_and(|api| !api.allow_skipping_consent));
    let user_id: &str = req.user.as_ref().map_or("", |u| u.id.as_str());
    let applying: Vec<&Consent> = req
        .consents
        .iter()
        .filter(|r| record_applies(r, user_id, &client.client_id, audience.as_deref(), req.now))
        .collect();
    let mut remembered: Vec<String> = Vec::new();
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    for r in &applying {
        for sc in &r.scopes {
            if seen.insert(sc.as_str()) {
                remembered.push(sc.clone());
            }
        }
    }
    // CHOICE: only the exact value "consent" is prompt=consent.
    let force_prompt = req.prompt.as_deref() == Some("consent");
    let mut prompt = Vec::new();
    if consent_required {
        for (t, reason) in &verdicts {
            if reason.is_some() {
                continue; // refused by §3.3: never on the prompt
            }
            let covered = !force_prompt && applying.iter().any(|r| r.scopes.contains(t));
            if !covered {
                prompt.push(t.clone());
            }
        }
    }

    Ok(Evaluated {
        audience,
        verdicts,
        prompt,
        requested,
        remembered,
    })
}

/// Builds the grant (§3.5) from an evaluation: tokens that passed §3.3 and
/// are either off the prompt or in `approved` are granted; prompt tokens not
/// approved get `consent_denied`.
fn build_grant(ev: &Evaluated, approved: &[String], consent_record: Option<Vec<String>>) -> Granted {
    let mut granted = Vec::new();
    let mut verdicts = Vec::new();
    for (t, reason) in &ev.verdicts {
        let reason = match reason {
            Some(r) => Some(r.clone()),
            None if ev.prompt.contains(t) && !approved.contains(t) => Some("consent_denied".to_string()),
            None => None,
        };
        if reason.is_none() {
            granted.push(t.clone());
        }
        verdicts.push((t.clone(), reason));
    }
    let granted_set: BTreeSet<String> = granted.iter().cloned().collect();
    Granted {
        audience: ev.audience.clone(),
        scope_changed: granted_set != ev.requested,
        refresh_token: granted.iter().any(|t| t == "offline_access"),
        granted,
        verdicts,
        consent_record,
    }
}

/// The decision, stopping at the consent prompt (DESIGN.md §3).
pub fn decide(doc: &Doc, req: &Req) -> Outcome {
    decide_and_answer(doc, req, &Answer::None)
}

/// The decision, with the user's answer applied if it asks for consent
/// (DESIGN.md §3.4). An answer to a decision that does not ask is ignored.
pub fn decide_and_answer(doc: &Doc, req: &Req, answer: &Answer) -> Outcome {
    let ev = match evaluate(doc, req) {
        Ok(ev) => ev,
        Err(code) => return Outcome::Error(code),
    };
    if ev.prompt.is_empty() {
        return Outcome::Granted(build_grant(&ev, &[], None));
    }
    match answer {
        Answer::None => Outcome::Consent {
            prompt: ev.prompt.clone(),
            verdicts: ev.verdicts.clone(),
        },
        Answer::Deny => Outcome::Error("access_denied".to_string()),
        Answer::Approve(approved) => {
            // A tampered form never widens a grant.
            if approved.iter().any(|a| !ev.prompt.contains(a)) {
                return Outcome::Error("invalid_request".to_string());
            }
            // New record: remembered scopes, then approved in asked order.
            let mut record = ev.remembered.clone();
            for t in &ev.prompt {
                if approved.contains(t) && !record.contains(t) {
                    record.push(t.clone());
                }
            }
            Outcome::Granted(build_grant(&ev, approved, Some(record)))
        }
    }
}

//! The invariants of TESTING.md §2, one property test each (`inv01_subset` …
//! `inv15_differential`), over small generated policies, requests and answers.
//!
//! Generators (TESTING.md §2): policies with ≤ 3 APIs of ≤ 8 scopes drawn from
//! one pool of names (so APIs share names, and names share prefixes and differ
//! only in case), ≤ 5 roles whose `inherits` form a DAG, patterns `*` and
//! `prefix*` in permissions and grants, ≤ 4 clients of every kind; requests
//! whose tokens come mostly from the policy's own scope names, the OIDC names
//! and hostile mutations of both (case flips, a `*` suffix, an audience as a
//! token, an added TAB or NBSP, a Cyrillic look-alike letter); consent records
//! for the right and the wrong user, client and audience, expired or not; and
//! answers: none, deny, approve a subset of the prompt, or a tampered approval.
//!
//! Everything is generated as a *recipe* of small numbers, then resolved
//! against the generated document, so a failing case shrinks well. A failing
//! case prints the document and the request as JSON (the shapes of DESIGN §4
//! and §5), ready to become a conformance case.
//!
//! `PROPTEST_CASES` sets the number of cases (default 256).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{FileFailurePersistence, TestCaseError};
use scope_policy::{
    ConsentRecord, Decision, Flow, GrantError, Limits, Policy, PolicyDocument, Prompt, Request, Scope,
    ScopeParam, User,
};

mod reference;
use reference::differential::{self, Comparison};
use reference::model::{self, Answer, Consent, Doc, Outcome, Req};

// ---------------------------------------------------------------------------
// Vocabulary of the generators
// ---------------------------------------------------------------------------

/// Audiences; two differ only by a trailing slash, two only by case.
const AUDIENCES: [&str; 5] = [
    "https://events.example.com/api",
    "https://events.example.com/api/",
    "urn:billing",
    "https://files.example.com",
    "Urn:billing",
];
/// Scope names: shared prefixes (`read`, `read:events`, `read:events:all`),
/// a case variant, names that start like OIDC scopes.
const SCOPE_NAMES: [&str; 14] = [
    "read:events",
    "write:events",
    "create:events",
    "delete:events",
    "read:events:all",
    "Read:events",
    "read:files",
    "write:files",
    "read",
    "admin:all",
    "view:users",
    "update:users",
    "profile:edit",
    "openid_x",
];
const DESCRIPTIONS: [&str; 3] = ["", "Does a thing", "Lit les \u{e9}v\u{e9}nements"];
const ROLE_NAMES: [&str; 6] = ["admin", "editor", "viewer", "Viewer", "auditor", "guest"];
/// Role names a user may carry that no policy defines.
const UNKNOWN_ROLES: [&str; 3] = ["superuser", "ADMIN", "admin "];
const CLIENT_IDS: [&str; 5] = ["web", "partner", "machine", "native-app", "Web"];
const UNKNOWN_CLIENTS: [&str; 4] = ["ghost", "WEB", "web ", ""];
const USER_IDS: [&str; 3] = ["alice", "bob", "Alice"];
const KINDS: [&str; 4] = ["spa", "regular_web", "native", "machine_to_machine"];
const FLOWS: [&str; 3] = ["authorization_code", "refresh_token", "client_credentials"];
const USER_ACCESS: [&str; 3] = ["allow_all", "require_client_grant", "deny_all"];
const CLIENT_ACCESS: [&str; 2] = ["require_client_grant", "deny_all"];
const OIDC: [&str; 6] = ["openid", "profile", "email", "address", "phone", "offline_access"];
/// Tokens no policy defines, some of them not even valid tokens.
const LITERALS: [&str; 8] = [
    "*",
    "read:*",
    "openid*",
    "OPENID",
    "a\"b",
    "x\\y",
    "read:events\u{7f}",
    "~[]!",
];
const UNKNOWN_AUDIENCE: &str = "https://unknown.example/api";
const NOW: u64 = 1_700_000_000;

fn pick() -> std::ops::Range<usize> {
    0..64usize
}

fn at<T: Clone>(items: &[T], i: usize) -> Option<T> {
    (!items.is_empty()).then(|| items[i % items.len()].clone())
}

/// `ProptestConfig::default()` reads `PROPTEST_CASES`; failures are kept in
/// `proptest-regressions/properties.txt` (the path is relative to the package
/// root, where `cargo test` runs integration tests).
fn config() -> ProptestConfig {
    let mut config = ProptestConfig::default();
    config.max_global_rejects = config.cases.saturating_mul(4).max(1024);
    config.failure_persistence = Some(Box::new(FileFailurePersistence::Direct(
        "proptest-regressions/properties.txt",
    )));
    config
}

// ---------------------------------------------------------------------------
// Policy recipes
// ---------------------------------------------------------------------------

/// A scope reference in a permission or grant: exact, `*`, or `prefix*`.
#[derive(Debug, Clone)]
enum RefR {
    Exact(usize),
    All,
    Prefix(usize, usize),
}

fn ref_r() -> impl Strategy<Value = RefR> {
    prop_oneof![
        5 => pick().prop_map(RefR::Exact),
        1 => Just(RefR::All),
        2 => (pick(), pick()).prop_map(|(i, cut)| RefR::Prefix(i, cut)),
    ]
}

fn resolve_ref(names: &[String], r: &RefR) -> Option<String> {
    let n = names.len();
    if n == 0 {
        return None;
    }
    Some(match r {
        RefR::Exact(i) => names[i % n].clone(),
        RefR::All => "*".to_string(),
        RefR::Prefix(i, cut) => {
            let name = &names[i % n];
            format!("{}*", &name[..cut % (name.len() + 1)])
        }
    })
}

#[derive(Debug, Clone)]
struct ApiR {
    audience: usize,
    named: bool,
    scopes: Vec<(usize, usize)>,
    rbac: bool,
    skip: bool,
    offline: bool,
    user_access: usize,
    client_access: usize,
    defaults: Vec<usize>,
}

fn api_r() -> impl Strategy<Value = ApiR> {
    (
        0..AUDIENCES.len(),
        any::<bool>(),
        vec((0..SCOPE_NAMES.len(), 0..DESCRIPTIONS.len()), 0..=9),
        any::<bool>(),
        prop::bool::weighted(0.7),
        prop::bool::weighted(0.6),
        prop_oneof![12 => Just(0usize), 6 => Just(1usize), 1 => Just(2usize)],
        prop_oneof![9 => Just(0usize), 1 => Just(1usize)],
        vec(pick(), 0..=3),
    )
        .prop_map(
            |(audience, named, scopes, rbac, skip, offline, user_access, client_access, defaults)| ApiR {
                audience,
                named,
                scopes,
                rbac,
                skip,
                offline,
                user_access,
                client_access,
                defaults,
            },
        )
}

#[derive(Debug, Clone)]
struct RoleR {
    name: usize,
    rank: usize,
    inherits: Vec<usize>,
    permissions: Vec<(usize, RefR)>,
}

fn role_r() -> impl Strategy<Value = RoleR> {
    (
        0..ROLE_NAMES.len(),
        0..8usize,
        vec(pick(), 0..=2),
        vec((pick(), ref_r()), 0..=3),
    )
        .prop_map(|(name, rank, inherits, permissions)| RoleR {
            name,
            rank,
            inherits,
            permissions,
        })
}

#[derive(Debug, Clone)]
struct GrantR {
    api: usize,
    /// For the subject that is not the client kind's default.
    unusual: bool,
    explicit: bool,
    scopes: Vec<RefR>,
}

#[derive(Debug, Clone)]
struct ClientR {
    id: usize,
    kind: usize,
    first_party: bool,
    named: bool,
    grant_types: Option<Vec<usize>>,
    grants: Vec<GrantR>,
}

fn client_r() -> impl Strategy<Value = ClientR> {
    let grant = (
        pick(),
        prop::bool::weighted(0.25),
        any::<bool>(),
        vec(ref_r(), 0..=3),
    )
        .prop_map(|(api, unusual, explicit, scopes)| GrantR {
            api,
            unusual,
            explicit,
            scopes,
        });
    (
        0..CLIENT_IDS.len(),
        0..KINDS.len(),
        any::<bool>(),
        any::<bool>(),
        prop::option::weighted(0.4, vec(0..FLOWS.len(), 1..=3)),
        vec(grant, 0..=5),
    )
        .prop_map(|(id, kind, first_party, named, grant_types, grants)| ClientR {
            id,
            kind,
            first_party,
            named,
            grant_types,
            grants,
        })
}

#[derive(Debug, Clone)]
struct DocR {
    apis: Vec<ApiR>,
    roles: Vec<RoleR>,
    clients: Vec<ClientR>,
    reject: bool,
    default_audience: Option<usize>,
    limits: Option<(usize, usize)>,
}

fn doc_r() -> impl Strategy<Value = DocR> {
    (
        prop_oneof![15 => vec(api_r(), 1..=3), 1 => Just(Vec::new())],
        vec(role_r(), 0..=5),
        vec(client_r(), 1..=4),
        prop::bool::weighted(0.15),
        prop::option::weighted(0.3, pick()),
        prop::option::weighted(0.1, (0..80usize, 0..8usize)),
    )
        .prop_map(|(apis, roles, clients, reject, default_audience, limits)| DocR {
            apis,
            roles,
            clients,
            reject,
            default_audience,
            limits,
        })
}

fn scope_names(api: &model::Api) -> Vec<String> {
    api.scopes.iter().map(|def| def.name.clone()).collect()
}

/// A valid document from a recipe: duplicates are skipped, references
/// resolve against what is defined, `inherits` follows a random rank order.
fn doc_from(r: &DocR) -> Doc {
    let mut apis: Vec<model::Api> = Vec::new();
    for a in &r.apis {
        let audience = AUDIENCES[a.audience].to_string();
        if apis.iter().any(|api| api.audience == audience) {
            continue;
        }
        let mut scopes: Vec<model::ScopeDef> = Vec::new();
        for &(n, d) in &a.scopes {
            if scopes.len() < 8 && !scopes.iter().any(|def| def.name == SCOPE_NAMES[n]) {
                scopes.push(model::ScopeDef {
                    name: SCOPE_NAMES[n].to_string(),
                    description: DESCRIPTIONS[d].to_string(),
                });
            }
        }
        let names: Vec<String> = scopes.iter().map(|def| def.name.clone()).collect();
        apis.push(model::Api {
            name: if a.named {
                format!("API {}", apis.len())
            } else {
                String::new()
            },
            audience,
            rbac: a.rbac,
            allow_skipping_consent: a.skip,
            allow_offline_access: a.offline,
            user_access: USER_ACCESS[a.user_access].to_string(),
            client_access: CLIENT_ACCESS[a.client_access].to_string(),
            default_scopes: a.defaults.iter().filter_map(|&i| at(&names, i)).collect(),
            scopes,
        });
    }

    let mut kept: Vec<&RoleR> = Vec::new();
    for role in &r.roles {
        if !kept.iter().any(|k| k.name == role.name) {
            kept.push(role);
        }
    }
    let order = |i: usize| (kept[i].rank, i);
    let mut roles = Vec::new();
    for (i, role) in kept.iter().enumerate() {
        let inherits = role
            .inherits
            .iter()
            .map(|p| p % kept.len())
            .filter(|&j| order(j) < order(i))
            .map(|j| ROLE_NAMES[kept[j].name].to_string())
            .collect();
        let mut permissions = Vec::new();
        for (api_pick, reference) in &role.permissions {
            if let Some(api) = at(&apis, *api_pick) {
                if let Some(scope) = resolve_ref(&scope_names(&api), reference) {
                    permissions.push(model::Permission {
                        audience: api.audience.clone(),
                        scope,
                    });
                }
            }
        }
        roles.push(model::Role {
            name: ROLE_NAMES[role.name].to_string(),
            description: String::new(),
            inherits,
            permissions,
        });
    }

    let mut clients: Vec<model::Client> = Vec::new();
    for c in &r.clients {
        let client_id = CLIENT_IDS[c.id].to_string();
        if clients.iter().any(|k| k.client_id == client_id) {
            continue;
        }
        let kind = KINDS[c.kind];
        let default_subject = if kind == "machine_to_machine" {
            "client"
        } else {
            "user"
        };
        let mut grants: Vec<model::ClientGrant> = Vec::new();
        let mut slots: Vec<(String, &str)> = Vec::new();
        for g in &c.grants {
            let Some(api) = at(&apis, g.api) else { continue };
            let subject = match (g.unusual, default_subject) {
                (false, subject) => subject,
                (true, "user") => "client",
                (true, _) => "user",
            };
            if slots.contains(&(api.audience.clone(), subject)) {
                continue;
            }
            slots.push((api.audience.clone(), subject));
            let names = scope_names(&api);
            grants.push(model::ClientGrant {
                audience: api.audience.clone(),
                subject: (g.explicit || subject != default_subject).then(|| subject.to_string()),
                scopes: g.scopes.iter().filter_map(|s| resolve_ref(&names, s)).collect(),
            });
        }
        clients.push(model::Client {
            name: if c.named {
                format!("Client {}", clients.len())
            } else {
                String::new()
            },
            client_id,
            first_party: c.first_party,
            kind: kind.to_string(),
            grant_types: c
                .grant_types
                .as_ref()
                .map(|g| g.iter().map(|&f| FLOWS[f].to_string()).collect()),
            grants,
        });
    }

    let audiences: Vec<String> = apis.iter().map(|api| api.audience.clone()).collect();
    let (max_scope_length, max_scope_tokens) = r.limits.unwrap_or((4096, 128));
    Doc {
        settings: model::Settings {
            unknown_scopes: if r.reject { "reject" } else { "ignore" }.to_string(),
            default_audience: r.default_audience.and_then(|i| at(&audiences, i)),
            max_scope_length,
            max_scope_tokens,
        },
        apis,
        roles,
        clients,
    }
}

// ---------------------------------------------------------------------------
// Request recipes
// ---------------------------------------------------------------------------

/// A hostile mutation of a token.
#[derive(Debug, Clone)]
enum Mut {
    CaseFlip(usize),
    Star,
    PrefixStar(usize),
    Tab(usize),
    Nbsp(usize),
    LookAlike(usize),
    Upper,
}

#[derive(Debug, Clone)]
enum TokR {
    Policy(usize),
    Oidc(usize),
    Audience(usize),
    Literal(usize),
    Mutated(usize, Mut),
}

fn mut_r() -> impl Strategy<Value = Mut> {
    prop_oneof![
        3 => pick().prop_map(Mut::CaseFlip),
        2 => Just(Mut::Star),
        1 => pick().prop_map(Mut::PrefixStar),
        1 => pick().prop_map(Mut::Tab),
        1 => pick().prop_map(Mut::Nbsp),
        2 => pick().prop_map(Mut::LookAlike),
        1 => Just(Mut::Upper),
    ]
}

fn tok_r() -> impl Strategy<Value = TokR> {
    prop_oneof![
        10 => pick().prop_map(TokR::Policy),
        4 => (0..OIDC.len()).prop_map(TokR::Oidc),
        1 => pick().prop_map(TokR::Audience),
        1 => (0..LITERALS.len()).prop_map(TokR::Literal),
        5 => (pick(), mut_r()).prop_map(|(base, m)| TokR::Mutated(base, m)),
    ]
}

/// Flips the case of the `p`-th ASCII letter (or adds one).
fn case_flip(s: &str, p: usize) -> String {
    let letters: Vec<usize> = s
        .char_indices()
        .filter(|(_, c)| c.is_ascii_alphabetic())
        .map(|(i, _)| i)
        .collect();
    match at(&letters, p) {
        None => format!("{s}X"),
        Some(i) => {
            let mut out = s.to_string();
            let c = s[i..].chars().next().unwrap_or('a');
            let flipped = if c.is_ascii_lowercase() {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            };
            out.replace_range(i..i + 1, &flipped.to_string());
            out
        }
    }
}

fn insert_at(s: &str, p: usize, what: char) -> String {
    let bounds: Vec<usize> = (0..=s.len()).filter(|&i| s.is_char_boundary(i)).collect();
    let i = at(&bounds, p).unwrap_or(0);
    format!("{}{what}{}", &s[..i], &s[i..])
}

/// Replaces a Latin letter by its Cyrillic look-alike.
fn look_alike(s: &str, p: usize) -> String {
    const PAIRS: [(char, char); 6] = [
        ('a', '\u{430}'),
        ('e', '\u{435}'),
        ('o', '\u{43e}'),
        ('p', '\u{440}'),
        ('c', '\u{441}'),
        ('x', '\u{445}'),
    ];
    let spots: Vec<(usize, char)> = s
        .char_indices()
        .filter_map(|(i, c)| PAIRS.iter().find(|(l, _)| *l == c).map(|&(_, cyr)| (i, cyr)))
        .collect();
    match at(&spots, p) {
        None => format!("{s}\u{430}"),
        Some((i, cyr)) => format!("{}{cyr}{}", &s[..i], &s[i + 1..]),
    }
}

fn mutate(base: &str, m: &Mut) -> String {
    match m {
        Mut::CaseFlip(p) => case_flip(base, *p),
        Mut::Star => format!("{base}*"),
        Mut::PrefixStar(p) => {
            let cut = p % (base.len() + 1);
            match base.get(..cut) {
                Some(prefix) => format!("{prefix}*"),
                None => format!("{base}*"),
            }
        }
        Mut::Tab(p) => insert_at(base, *p, '\t'),
        Mut::Nbsp(p) => insert_at(base, *p, '\u{a0}'),
        Mut::LookAlike(p) => look_alike(base, *p),
        Mut::Upper => base.to_ascii_uppercase(),
    }
}

/// The policy's scope names (every API's, in order), or the whole pool.
fn scope_pool(doc: &Doc) -> Vec<String> {
    let pool: Vec<String> = doc.apis.iter().flat_map(scope_names).collect();
    if pool.is_empty() {
        SCOPE_NAMES.iter().map(|s| s.to_string()).collect()
    } else {
        pool
    }
}

fn is_valid_token(token: &str) -> bool {
    Scope::new(token).is_ok()
}

/// Resolves a token recipe; `valid_only` falls back to the unmutated base
/// where a mutation leaves scope syntax (consent records and direct
/// permissions hold `Scope`s, which the host cannot build from such text).
fn token(doc: &Doc, t: &TokR, valid_only: bool) -> String {
    let pool = scope_pool(doc);
    let out = match t {
        TokR::Policy(i) => pool[i % pool.len()].clone(),
        TokR::Oidc(i) => OIDC[i % OIDC.len()].to_string(),
        TokR::Audience(i) => {
            let audiences: Vec<String> = doc.apis.iter().map(|api| api.audience.clone()).collect();
            at(&audiences, *i).unwrap_or_else(|| AUDIENCES[i % AUDIENCES.len()].to_string())
        }
        TokR::Literal(i) => LITERALS[i % LITERALS.len()].to_string(),
        TokR::Mutated(base, m) => {
            let mut bases = pool.clone();
            bases.extend(OIDC.iter().map(|s| s.to_string()));
            mutate(&bases[base % bases.len()], m)
        }
    };
    if valid_only && !is_valid_token(&out) {
        pool[0].clone()
    } else {
        out
    }
}

#[derive(Debug, Clone)]
struct ScopeR {
    tokens: Vec<TokR>,
    gaps: Vec<usize>,
    lead: usize,
    trail: usize,
    /// Whether mutations that leave scope syntax (TAB, NBSP, look-alikes,
    /// quotes) stay: a hostile parameter is `invalid_scope` as a whole, so
    /// only some requests are hostile, or few would reach the verdicts.
    hostile: bool,
}

fn scope_r() -> impl Strategy<Value = ScopeR> {
    // Mostly a handful of tokens; sometimes more than the 16 a request keeps
    // inline, where its lists move to the heap. (Requests long enough for the
    // crate to hash instead of scanning are in tests/hostile.rs.)
    let tokens = prop_oneof![3 => vec(tok_r(), 0..=6), 1 => vec(tok_r(), 17..=40)];
    (
        tokens,
        vec(1..=3usize, 1..=3),
        0..=2usize,
        0..=1usize,
        prop::bool::weighted(0.15),
    )
        .prop_map(|(tokens, gaps, lead, trail, hostile)| ScopeR {
            tokens,
            gaps,
            lead,
            trail,
            hostile,
        })
}

fn render(doc: &Doc, s: &ScopeR) -> String {
    let mut out = " ".repeat(s.lead);
    for (i, t) in s.tokens.iter().enumerate() {
        if i > 0 {
            out.push_str(&" ".repeat(s.gaps[i % s.gaps.len()]));
        }
        out.push_str(&token(doc, t, !s.hostile));
    }
    out.push_str(&" ".repeat(s.trail));
    out
}

#[derive(Debug, Clone)]
enum ClientPick {
    Known(usize),
    Unknown(usize),
}

#[derive(Debug, Clone)]
enum FlowPick {
    /// This flow if the client has it, else one of the client's grant types.
    Preferred(usize, usize),
    Any(usize),
}

#[derive(Debug, Clone)]
enum AudR {
    Absent,
    Known(usize),
    Unknown,
    Slash(usize),
    CaseFlip(usize, usize),
}

#[derive(Debug, Clone)]
struct UserR {
    id: usize,
    roles: Vec<usize>,
    permissions: Vec<(usize, TokR)>,
}

#[derive(Debug, Clone)]
enum AudC {
    Effective,
    Absent,
    Other(usize),
    Slash,
}

#[derive(Debug, Clone)]
enum Expiry {
    Never,
    Past,
    AtNow,
    Future,
}

#[derive(Debug, Clone)]
struct ConsentR {
    right_user: bool,
    right_client: bool,
    audience: AudC,
    scopes: Vec<TokR>,
    all_asked: bool,
    expiry: Expiry,
}

#[derive(Debug, Clone)]
struct ReqR {
    client: ClientPick,
    flow: FlowPick,
    audience: AudR,
    scope: Option<ScopeR>,
    wrong_user: bool,
    user: UserR,
    consents: Vec<ConsentR>,
    prompt_consent: bool,
    original: Option<ScopeR>,
    param_from_original: Option<u64>,
    now: bool,
}

fn consent_r() -> impl Strategy<Value = ConsentR> {
    (
        prop::bool::weighted(0.8),
        prop::bool::weighted(0.8),
        prop_oneof![
            6 => Just(AudC::Effective),
            1 => Just(AudC::Absent),
            1 => pick().prop_map(AudC::Other),
            1 => Just(AudC::Slash),
        ],
        vec(tok_r(), 0..=5),
        prop::bool::weighted(0.3),
        prop_oneof![
            4 => Just(Expiry::Never),
            1 => Just(Expiry::Past),
            1 => Just(Expiry::AtNow),
            2 => Just(Expiry::Future),
        ],
    )
        .prop_map(
            |(right_user, right_client, audience, scopes, all_asked, expiry)| ConsentR {
                right_user,
                right_client,
                audience,
                scopes,
                all_asked,
                expiry,
            },
        )
}

fn req_r() -> impl Strategy<Value = ReqR> {
    let client = prop_oneof![
        24 => pick().prop_map(ClientPick::Known),
        1 => pick().prop_map(ClientPick::Unknown),
    ];
    let preferred = prop_oneof![5 => Just(0usize), 2 => Just(1usize), 2 => Just(2usize)];
    let flow = prop_oneof![
        12 => (preferred, pick()).prop_map(|(f, i)| FlowPick::Preferred(f, i)),
        1 => pick().prop_map(FlowPick::Any),
    ];
    let audience = prop_oneof![
        4 => Just(AudR::Absent),
        30 => pick().prop_map(AudR::Known),
        1 => Just(AudR::Unknown),
        1 => pick().prop_map(AudR::Slash),
        1 => (pick(), pick()).prop_map(|(i, p)| AudR::CaseFlip(i, p)),
    ];
    let user = (
        0..USER_IDS.len(),
        vec(0..16usize, 0..=3),
        vec((0..8usize, tok_r()), 0..=3),
    )
        .prop_map(|(id, roles, permissions)| UserR {
            id,
            roles,
            permissions,
        });
    (
        client,
        flow,
        audience,
        prop::option::weighted(0.85, scope_r()),
        prop::bool::weighted(0.05),
        user,
        vec(consent_r(), 0..=6),
        prop::bool::weighted(0.2),
        prop::option::weighted(0.9, scope_r()),
        prop::option::weighted(0.7, any::<u64>()),
        prop::bool::weighted(0.75),
    )
        .prop_map(
            |(
                client,
                flow,
                audience,
                scope,
                wrong_user,
                user,
                consents,
                prompt_consent,
                original,
                param_from_original,
                now,
            )| ReqR {
                client,
                flow,
                audience,
                scope,
                wrong_user,
                user,
                consents,
                prompt_consent,
                original,
                param_from_original,
                now,
            },
        )
}

fn toggle_slash(audience: &str) -> String {
    match audience.strip_suffix('/') {
        Some(stripped) => stripped.to_string(),
        None => format!("{audience}/"),
    }
}

/// The distinct space-separated pieces of a raw parameter (no validation).
fn raw_tokens(raw: &str) -> Vec<&str> {
    raw.split(' ').filter(|t| !t.is_empty()).collect()
}

fn distinct(tokens: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in tokens {
        if !out.iter().any(|o| o == t) {
            out.push(t.to_string());
        }
    }
    out
}

fn req_from(doc: &Doc, r: &ReqR) -> Req {
    let client = match &r.client {
        ClientPick::Known(i) => at(&doc.clients, *i),
        ClientPick::Unknown(_) => None,
    };
    let client_id = match (&r.client, &client) {
        (_, Some(c)) => c.client_id.clone(),
        (ClientPick::Unknown(i), None) => UNKNOWN_CLIENTS[i % UNKNOWN_CLIENTS.len()].to_string(),
        (ClientPick::Known(_), None) => CLIENT_IDS[0].to_string(),
    };
    let flow = match (&r.flow, &client) {
        (FlowPick::Preferred(f, i), Some(c)) => {
            let allowed = model::effective_grant_types(c);
            if allowed.iter().any(|g| g == FLOWS[*f]) {
                FLOWS[*f].to_string()
            } else {
                at(&allowed, *i).unwrap_or_else(|| FLOWS[*f].to_string())
            }
        }
        (FlowPick::Preferred(i, _) | FlowPick::Any(i), _) => FLOWS[i % 3].to_string(),
    };
    let audiences: Vec<String> = doc.apis.iter().map(|api| api.audience.clone()).collect();
    let audience = match &r.audience {
        AudR::Absent => None,
        AudR::Known(i) => at(&audiences, *i),
        AudR::Unknown => Some(UNKNOWN_AUDIENCE.to_string()),
        AudR::Slash(i) => Some(toggle_slash(
            &at(&audiences, *i).unwrap_or_else(|| AUDIENCES[0].to_string()),
        )),
        AudR::CaseFlip(i, p) => Some(case_flip(
            &at(&audiences, *i).unwrap_or_else(|| AUDIENCES[0].to_string()),
            *p,
        )),
    };
    let effective = audience.clone().or_else(|| doc.settings.default_audience.clone());

    let has_user = (flow != "client_credentials") != r.wrong_user;
    let role_names: Vec<String> = doc
        .roles
        .iter()
        .map(|role| role.name.clone())
        .chain(UNKNOWN_ROLES.iter().map(|s| s.to_string()))
        .collect();
    let mut permission_audiences = audiences.clone();
    permission_audiences.push(UNKNOWN_AUDIENCE.to_string());
    let user_id = USER_IDS[r.user.id].to_string();
    let user = has_user.then(|| model::User {
        id: user_id.clone(),
        roles: r.user.roles.iter().filter_map(|&i| at(&role_names, i)).collect(),
        permissions: r
            .user
            .permissions
            .iter()
            .filter_map(|(a, t)| {
                Some(model::Permission {
                    audience: at(&permission_audiences, *a)?,
                    scope: token(doc, t, true),
                })
            })
            .collect(),
    });

    let original_scope = r.original.as_ref().map(|s| render(doc, s));
    let scope = match (&original_scope, r.param_from_original) {
        (Some(original), Some(mask)) if flow == "refresh_token" => {
            let kept: Vec<&str> = raw_tokens(original)
                .into_iter()
                .enumerate()
                .filter(|(i, _)| mask >> (i % 64) & 1 == 1)
                .map(|(_, t)| t)
                .collect();
            Some(kept.join(" "))
        }
        _ => r.scope.as_ref().map(|s| render(doc, s)),
    };

    let other_clients: Vec<String> = doc
        .clients
        .iter()
        .map(|c| c.client_id.clone())
        .filter(|id| *id != client_id)
        .chain(["ghost".to_string()])
        .collect();
    let mut asked_valid: Vec<String> = Vec::new();
    for raw in scope.iter().chain(original_scope.iter()) {
        for t in raw_tokens(raw) {
            if is_valid_token(t) && !asked_valid.iter().any(|a| a == t) {
                asked_valid.push(t.to_string());
            }
        }
    }
    let consents = r
        .consents
        .iter()
        .enumerate()
        .map(|(n, c)| {
            let mut scopes: Vec<String> = c.scopes.iter().map(|t| token(doc, t, true)).collect();
            if c.all_asked {
                scopes.extend(asked_valid.iter().cloned());
            }
            Consent {
                user_id: if c.right_user {
                    user_id.clone()
                } else {
                    USER_IDS[(r.user.id + 1 + n % 2) % USER_IDS.len()].to_string()
                },
                client_id: if c.right_client {
                    client_id.clone()
                } else {
                    other_clients[n % other_clients.len()].clone()
                },
                audience: match &c.audience {
                    AudC::Effective => effective.clone(),
                    AudC::Absent => None,
                    AudC::Other(i) => at(&permission_audiences, *i),
                    AudC::Slash => Some(toggle_slash(effective.as_deref().unwrap_or(AUDIENCES[0]))),
                },
                scopes,
                expires_at: match c.expiry {
                    Expiry::Never => None,
                    Expiry::Past => Some(NOW - 10),
                    Expiry::AtNow => Some(NOW),
                    Expiry::Future => Some(NOW + 10),
                },
            }
        })
        .collect();

    Req {
        client_id,
        flow,
        audience,
        scope,
        user,
        consents,
        prompt: r.prompt_consent.then(|| "consent".to_string()),
        original_scope,
        now: r.now.then_some(NOW),
    }
}

// ---------------------------------------------------------------------------
// Answer recipes
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum AnsR {
    Nothing,
    Deny,
    /// Approve the prompt scopes whose bit is set; maybe name one twice.
    Approve(u64, bool),
    /// Approve a subset plus one scope that was not on the prompt.
    Tampered(u64, TokR),
}

fn ans_r() -> impl Strategy<Value = AnsR> {
    prop_oneof![
        2 => Just(AnsR::Nothing),
        1 => Just(AnsR::Deny),
        5 => (any::<u64>(), prop::bool::weighted(0.1)).prop_map(|(m, d)| AnsR::Approve(m, d)),
        1 => (any::<u64>(), tok_r()).prop_map(|(m, t)| AnsR::Tampered(m, t)),
    ]
}

fn subset(prompt: &[String], mask: u64) -> Vec<String> {
    prompt
        .iter()
        .enumerate()
        .filter(|(i, _)| mask >> (i % 64) & 1 == 1)
        .map(|(_, t)| t.clone())
        .collect()
}

/// An answer for a decision with this prompt and these asked scopes.
fn answer_from(doc: &Doc, prompt: &[String], asked: &[String], r: &AnsR) -> Answer {
    match r {
        AnsR::Nothing => Answer::None,
        AnsR::Deny => Answer::Deny,
        AnsR::Approve(mask, twice) => {
            let mut approved = subset(prompt, *mask);
            if *twice {
                if let Some(first) = approved.first().cloned() {
                    approved.push(first);
                }
            }
            Answer::Approve(approved)
        }
        AnsR::Tampered(mask, t) => {
            let mut approved = subset(prompt, *mask);
            let mut candidates: Vec<String> = asked.iter().filter(|a| !prompt.contains(a)).cloned().collect();
            candidates.push(token(doc, t, false));
            if let Some(first) = prompt.first() {
                candidates.push(case_flip(first, (mask >> 32) as usize));
                candidates.push(format!("{first}-x"));
            }
            candidates.retain(|c| !prompt.contains(c));
            let extra = at(&candidates, (mask >> 40) as usize).unwrap_or_else(|| "tampered".to_string());
            let position = (mask >> 48) as usize % (approved.len() + 1);
            approved.insert(position, extra);
            Answer::Approve(approved)
        }
    }
}

// ---------------------------------------------------------------------------
// A generated case
// ---------------------------------------------------------------------------

#[derive(Clone)]
struct Case {
    doc: Doc,
    req: Req,
    ans: AnsR,
}

/// Prints the document and the request as JSON, ready for a conformance case.
impl fmt::Debug for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let json = |value: &dyn erased::Json| value.json();
        write!(
            f,
            "Case {{\n  policy: {},\n  request: {},\n  answer: {:?}\n}}",
            json(&self.doc),
            json(&self.req),
            self.ans
        )
    }
}

mod erased {
    pub trait Json {
        fn json(&self) -> String;
    }
    impl<T: serde::Serialize> Json for T {
        fn json(&self) -> String {
            serde_json::to_string(self).unwrap_or_else(|e| format!("<{e}>"))
        }
    }
}

fn case() -> impl Strategy<Value = Case> {
    (doc_r(), req_r(), ans_r()).prop_map(|(d, r, ans)| {
        let doc = doc_from(&d);
        let req = req_from(&doc, &r);
        Case { doc, req, ans }
    })
}

// ---------------------------------------------------------------------------
// Running the real crate
// ---------------------------------------------------------------------------

/// The real policy, or a rejected case when the document does not build.
fn built(doc: &Doc) -> Result<Policy, TestCaseError> {
    differential::build_policy(doc).map_err(|e| TestCaseError::reject(format!("does not build: {e}")))
}

/// The crate's outcome in the model's shape.
fn real(policy: &Policy, doc: &Doc, req: &Req, answer: &Answer) -> Result<Outcome, TestCaseError> {
    let real = differential::real_outcome(policy, doc, req, answer)
        .map_err(|e| TestCaseError::fail(format!("the generator made an inexpressible request: {e}")))?;
    Ok(real.outcome)
}

/// Resolves an answer recipe against the crate's own prompt for `req`.
fn answer_for(policy: &Policy, doc: &Doc, req: &Req, r: &AnsR) -> Result<Answer, TestCaseError> {
    Ok(match real(policy, doc, req, &Answer::None)? {
        Outcome::Consent { prompt, verdicts } => {
            let asked: Vec<String> = verdicts.into_iter().map(|(t, _)| t).collect();
            answer_from(doc, &prompt, &asked, r)
        }
        _ => answer_from(doc, &[], &[], r),
    })
}

/// `G`, in order: the granted scopes, or for a decision stopped at the prompt
/// the scopes granted without it; nothing for an error.
fn granted_list(outcome: &Outcome) -> Vec<String> {
    match outcome {
        Outcome::Error(_) => Vec::new(),
        Outcome::Granted(g) => g.granted.clone(),
        Outcome::Consent { prompt, verdicts } => verdicts
            .iter()
            .filter(|(t, reason)| reason.is_none() && !prompt.contains(t))
            .map(|(t, _)| t.clone())
            .collect(),
    }
}

fn granted_set(outcome: &Outcome) -> BTreeSet<String> {
    granted_list(outcome).into_iter().collect()
}

fn error_of(outcome: &Outcome) -> Option<&str> {
    match outcome {
        Outcome::Error(code) => Some(code),
        _ => None,
    }
}

fn prompt_set(outcome: &Outcome) -> BTreeSet<String> {
    match outcome {
        Outcome::Consent { prompt, .. } => prompt.iter().cloned().collect(),
        _ => BTreeSet::new(),
    }
}

fn record_set(outcome: &Outcome) -> Option<BTreeSet<String>> {
    match outcome {
        Outcome::Granted(g) => g.consent_record.as_ref().map(|r| r.iter().cloned().collect()),
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// Independent facts about a document (not the model's code)
// ---------------------------------------------------------------------------

fn effective_audience(doc: &Doc, req: &Req) -> Option<String> {
    req.audience
        .clone()
        .or_else(|| doc.settings.default_audience.clone())
}

fn api_for<'d>(doc: &'d Doc, audience: Option<&str>) -> Option<&'d model::Api> {
    audience.and_then(|a| doc.apis.iter().find(|api| api.audience == a))
}

fn client_for<'d>(doc: &'d Doc, client_id: &str) -> Option<&'d model::Client> {
    doc.clients.iter().find(|c| c.client_id == client_id)
}

fn is_defined(api: &model::Api, scope: &str) -> bool {
    api.scopes.iter().any(|def| def.name == scope)
}

/// The defined scopes of `api` that a list of references (exact, `*`, `prefix*`) names.
fn expand(api: &model::Api, references: &[String]) -> BTreeSet<String> {
    api.scopes
        .iter()
        .map(|def| &def.name)
        .filter(|name| {
            references.iter().any(|r| match r.strip_suffix('*') {
                Some(prefix) => name.starts_with(prefix),
                None => r == *name,
            })
        })
        .cloned()
        .collect()
}

fn subject_of(client: &model::Client, grant: &model::ClientGrant) -> String {
    grant.subject.clone().unwrap_or_else(|| {
        if client.kind == "machine_to_machine" {
            "client"
        } else {
            "user"
        }
        .to_string()
    })
}

/// The scopes the client's grant for this audience and subject holds.
fn client_grant(doc: &Doc, client_id: &str, audience: &str, subject: &str) -> Option<BTreeSet<String>> {
    let client = client_for(doc, client_id)?;
    let api = api_for(doc, Some(audience))?;
    let grant = client
        .grants
        .iter()
        .find(|g| g.audience == audience && subject_of(client, g) == subject)?;
    Some(expand(api, &grant.scopes))
}

/// Every role's permissions with inheritance closed, as a fixpoint: repeat
/// "add each inherited role's set" until nothing changes.
fn role_permissions(doc: &Doc) -> BTreeMap<String, BTreeSet<(String, String)>> {
    let mut sets: BTreeMap<String, BTreeSet<(String, String)>> = BTreeMap::new();
    for role in &doc.roles {
        let mut own = BTreeSet::new();
        for p in &role.permissions {
            if let Some(api) = api_for(doc, Some(&p.audience)) {
                for scope in expand(api, std::slice::from_ref(&p.scope)) {
                    own.insert((api.audience.clone(), scope));
                }
            }
        }
        sets.insert(role.name.clone(), own);
    }
    loop {
        let mut changed = false;
        for role in &doc.roles {
            for parent in &role.inherits {
                let inherited = sets.get(parent).cloned().unwrap_or_default();
                let mine = sets.entry(role.name.clone()).or_default();
                let before = mine.len();
                mine.extend(inherited);
                changed |= mine.len() != before;
            }
        }
        if !changed {
            return sets;
        }
    }
}

fn user_permissions(doc: &Doc, user: &model::User) -> BTreeSet<(String, String)> {
    let roles = role_permissions(doc);
    let mut out: BTreeSet<(String, String)> = user
        .permissions
        .iter()
        .map(|p| (p.audience.clone(), p.scope.clone()))
        .collect();
    for name in &user.roles {
        if let Some(set) = roles.get(name) {
            out.extend(set.iter().cloned());
        }
    }
    out
}

fn within_limits(doc: &Doc, raw: &str) -> bool {
    raw.len() <= doc.settings.max_scope_length && raw_tokens(raw).len() <= doc.settings.max_scope_tokens
}

/// DESIGN §3.2 for a request that passed the request-level checks.
fn asked_tokens(doc: &Doc, req: &Req) -> Vec<String> {
    let param = distinct(&raw_tokens(req.scope.as_deref().unwrap_or("")));
    if !param.is_empty() {
        return param;
    }
    let audience = effective_audience(doc, req);
    let api = api_for(doc, audience.as_deref());
    match (req.flow.as_str(), api) {
        ("client_credentials", Some(api)) => {
            let grant = client_grant(doc, &req.client_id, &api.audience, "client").unwrap_or_default();
            scope_names(api)
                .into_iter()
                .filter(|s| grant.contains(s))
                .collect()
        }
        ("authorization_code", Some(api)) => scope_names(api)
            .into_iter()
            .filter(|s| api.default_scopes.contains(s))
            .collect(),
        ("refresh_token", _) => distinct(&raw_tokens(req.original_scope.as_deref().unwrap_or(""))),
        _ => Vec::new(),
    }
}

fn unexpired(record: &Consent, now: Option<u64>) -> bool {
    match (record.expires_at, now) {
        (None, _) => true,
        (Some(expires), Some(now)) => expires > now,
        (Some(_), None) => false,
    }
}

/// DESIGN §3.4: a valid matching record holds the scope, and no `prompt=consent`.
fn covered(doc: &Doc, req: &Req, scope: &str) -> bool {
    let audience = effective_audience(doc, req);
    let user_id = req.user.as_ref().map_or("", |u| u.id.as_str());
    req.prompt.as_deref() != Some("consent")
        && req.consents.iter().any(|r| {
            r.user_id == user_id
                && r.client_id == req.client_id
                && r.audience == audience
                && unexpired(r, req.now)
                && r.scopes.iter().any(|s| s == scope)
        })
}

// ---------------------------------------------------------------------------
// Policy edits used by several properties
// ---------------------------------------------------------------------------

/// One element removed from the policy or the request (invariants 8 and 9).
#[derive(Debug, Clone)]
enum Removal {
    Scope(usize, usize),
    DefaultScope(usize, usize),
    RolePermission(usize, usize),
    GrantEntry(usize, usize, usize),
    Consent(usize),
    UserPermission(usize),
    UserRole(usize),
}

fn removal_r() -> impl Strategy<Value = Removal> {
    prop_oneof![
        2 => (pick(), pick()).prop_map(|(a, s)| Removal::Scope(a, s)),
        1 => (pick(), pick()).prop_map(|(a, s)| Removal::DefaultScope(a, s)),
        3 => (pick(), pick()).prop_map(|(r, p)| Removal::RolePermission(r, p)),
        3 => (pick(), pick(), pick()).prop_map(|(c, g, e)| Removal::GrantEntry(c, g, e)),
        3 => pick().prop_map(Removal::Consent),
        1 => pick().prop_map(Removal::UserPermission),
        1 => pick().prop_map(Removal::UserRole),
    ]
}

fn remove_at<T>(items: &mut Vec<T>, i: usize) -> bool {
    if items.is_empty() {
        return false;
    }
    let n = items.len();
    items.remove(i % n);
    true
}

/// Removes one element. Removing a scope also removes the references to it
/// that would no longer build (exact names, patterns matching nothing).
fn apply_removal(doc: &mut Doc, req: &mut Req, removal: &Removal) -> bool {
    match removal {
        Removal::Scope(a, s) => {
            if doc.apis.is_empty() {
                return false;
            }
            let n = doc.apis.len();
            let api = &mut doc.apis[a % n];
            if api.scopes.is_empty() {
                return false;
            }
            let k = api.scopes.len();
            let gone = api.scopes.remove(s % k).name;
            api.default_scopes.retain(|d| *d != gone);
            let audience = api.audience.clone();
            let api = api.clone();
            let still = |r: &String| !expand(&api, std::slice::from_ref(r)).is_empty();
            for role in &mut doc.roles {
                role.permissions
                    .retain(|p| p.audience != audience || still(&p.scope));
            }
            for client in &mut doc.clients {
                for grant in client.grants.iter_mut().filter(|g| g.audience == audience) {
                    grant.scopes.retain(|r| still(r));
                }
            }
            true
        }
        Removal::DefaultScope(a, s) => {
            let n = doc.apis.len();
            n > 0 && remove_at(&mut doc.apis[a % n].default_scopes, *s)
        }
        Removal::RolePermission(r, p) => {
            let n = doc.roles.len();
            n > 0 && remove_at(&mut doc.roles[r % n].permissions, *p)
        }
        Removal::GrantEntry(c, g, e) => {
            let n = doc.clients.len();
            if n == 0 || doc.clients[c % n].grants.is_empty() {
                return false;
            }
            let grants = &mut doc.clients[c % n].grants;
            let m = grants.len();
            remove_at(&mut grants[g % m].scopes, *e)
        }
        Removal::Consent(i) => remove_at(&mut req.consents, *i),
        Removal::UserPermission(i) => req
            .user
            .as_mut()
            .is_some_and(|u| remove_at(&mut u.permissions, *i)),
        Removal::UserRole(i) => req.user.as_mut().is_some_and(|u| remove_at(&mut u.roles, *i)),
    }
}

/// The answer of a user who keeps answering the same way (invariant 9): a
/// tampered approval becomes an honest one, and a refusal declines every
/// scope on the prompt. (A refusal is `access_denied` as a whole: once the
/// removal leaves nothing to ask, the request is granted without a prompt,
/// so comparing refusals would compare a question with no question.)
fn honest(r: &AnsR) -> AnsR {
    match r {
        AnsR::Tampered(mask, _) => AnsR::Approve(*mask, false),
        AnsR::Deny => AnsR::Approve(0, false),
        other => other.clone(),
    }
}

/// A change to what belongs to an API other than the request's (invariant 4).
#[derive(Debug, Clone)]
enum Foreign {
    NewApi,
    AddScopes,
    Settings(usize),
    DropReferences,
    AllowEverything,
    Consents(bool),
    UserPermissions,
}

fn foreign_r() -> impl Strategy<Value = Foreign> {
    prop_oneof![
        2 => Just(Foreign::NewApi),
        2 => Just(Foreign::AddScopes),
        2 => (0..5usize).prop_map(Foreign::Settings),
        2 => Just(Foreign::DropReferences),
        2 => Just(Foreign::AllowEverything),
        2 => any::<bool>().prop_map(Foreign::Consents),
        1 => Just(Foreign::UserPermissions),
    ]
}

/// Valid tokens of the scope parameter and the original scope.
fn request_tokens(req: &Req) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for raw in req.scope.iter().chain(req.original_scope.iter()) {
        for t in raw_tokens(raw) {
            if is_valid_token(t) && !out.iter().any(|o| o == t) {
                out.push(t.to_string());
            }
        }
    }
    out
}

fn apply_foreign(doc: &mut Doc, req: &mut Req, change: &Foreign, other: usize) {
    let effective = effective_audience(doc, req);
    let asked: Vec<String> = request_tokens(req);
    let api_names: Vec<String> = asked
        .iter()
        .filter(|t| !model::is_oidc(t) && !t.contains('*'))
        .cloned()
        .collect();
    let others: Vec<usize> = (0..doc.apis.len())
        .filter(|&i| Some(&doc.apis[i].audience) != effective.as_ref())
        .collect();
    let target = match (change, at(&others, other)) {
        (Foreign::NewApi, _) | (_, None) => {
            let audience = "urn:another-api".to_string();
            let mut scopes: Vec<model::ScopeDef> = api_names
                .iter()
                .map(|name| model::ScopeDef {
                    name: name.clone(),
                    description: "foreign".to_string(),
                })
                .collect();
            scopes.push(model::ScopeDef {
                name: "zz:foreign".to_string(),
                description: String::new(),
            });
            doc.apis.push(model::Api {
                audience,
                name: String::new(),
                rbac: other % 2 == 0,
                allow_skipping_consent: true,
                allow_offline_access: true,
                user_access: "allow_all".to_string(),
                client_access: "require_client_grant".to_string(),
                default_scopes: vec!["zz:foreign".to_string()],
                scopes,
            });
            doc.apis.len() - 1
        }
        (_, Some(i)) => i,
    };
    let audience = doc.apis[target].audience.clone();
    match change {
        Foreign::NewApi | Foreign::AllowEverything => {
            for role in &mut doc.roles {
                role.permissions.push(model::Permission {
                    audience: audience.clone(),
                    scope: "*".to_string(),
                });
            }
            for client in &mut doc.clients {
                for subject in ["client", "user"] {
                    let has = client
                        .grants
                        .iter()
                        .any(|g| g.audience == audience && subject_of(client, g) == subject);
                    if !has {
                        client.grants.push(model::ClientGrant {
                            audience: audience.clone(),
                            subject: Some(subject.to_string()),
                            scopes: vec!["*".to_string()],
                        });
                    }
                }
            }
            if doc.apis[target].scopes.is_empty() {
                doc.apis[target].scopes.push(model::ScopeDef {
                    name: "zz:foreign".to_string(),
                    description: String::new(),
                });
            }
        }
        Foreign::AddScopes => {
            let api = &mut doc.apis[target];
            for name in api_names.iter().chain(["zz:foreign".to_string()].iter()) {
                if !is_defined(api, name) && api.scopes.len() < 12 {
                    api.scopes.push(model::ScopeDef {
                        name: name.clone(),
                        description: "added".to_string(),
                    });
                }
            }
        }
        Foreign::Settings(which) => {
            let api = &mut doc.apis[target];
            match which {
                0 => api.rbac = !api.rbac,
                1 => api.allow_skipping_consent = !api.allow_skipping_consent,
                2 => api.allow_offline_access = !api.allow_offline_access,
                3 => {
                    api.user_access = match api.user_access.as_str() {
                        "allow_all" => "require_client_grant",
                        "require_client_grant" => "deny_all",
                        _ => "allow_all",
                    }
                    .to_string()
                }
                _ => {
                    api.client_access = if api.client_access == "deny_all" {
                        "require_client_grant"
                    } else {
                        "deny_all"
                    }
                    .to_string()
                }
            }
        }
        Foreign::DropReferences => {
            for role in &mut doc.roles {
                role.permissions.retain(|p| p.audience != audience);
            }
            for client in &mut doc.clients {
                client.grants.retain(|g| g.audience != audience);
            }
        }
        Foreign::Consents(add) => {
            if *add {
                let user_id = req.user.as_ref().map_or("alice".to_string(), |u| u.id.clone());
                let mut scopes = asked.clone();
                scopes.extend(OIDC.iter().map(|s| s.to_string()));
                req.consents.push(Consent {
                    user_id,
                    client_id: req.client_id.clone(),
                    audience: Some(audience.clone()),
                    scopes,
                    expires_at: None,
                });
            } else {
                req.consents
                    .retain(|c| c.audience.as_deref() != Some(audience.as_str()));
            }
        }
        Foreign::UserPermissions => {
            if let Some(user) = &mut req.user {
                for name in &api_names {
                    user.permissions.push(model::Permission {
                        audience: audience.clone(),
                        scope: name.clone(),
                    });
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// The invariants
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    /// 1. G ⊆ asked ∩ (defined scopes of the audience ∪ OIDC); with a client
    /// grant in force, API scopes in G are in the grant.
    #[test]
    fn inv01_subset(case in case()) {
        let Case { doc, req, ans } = &case;
        let policy = built(doc)?;
        let answer = answer_for(&policy, doc, req, ans)?;
        let outcome = real(&policy, doc, req, &answer)?;
        let granted = granted_list(&outcome);
        if granted.is_empty() {
            return Ok(());
        }
        let asked = asked_tokens(doc, req);
        let audience = effective_audience(doc, req);
        let api = api_for(doc, audience.as_deref());
        let restriction = match (req.flow.as_str(), api) {
            ("client_credentials", Some(api)) => {
                Some(client_grant(doc, &req.client_id, &api.audience, "client").unwrap_or_default())
            }
            (_, Some(api)) if api.user_access == "require_client_grant" => {
                Some(client_grant(doc, &req.client_id, &api.audience, "user").unwrap_or_default())
            }
            _ => None,
        };
        for t in &granted {
            prop_assert!(asked.contains(t), "{t:?} granted but not asked ({asked:?}): {outcome:?}");
            prop_assert!(
                model::is_oidc(t) || api.is_some_and(|api| is_defined(api, t)),
                "{t:?} granted but neither OIDC nor defined by {audience:?}"
            );
            if let Some(grant) = &restriction {
                prop_assert!(model::is_oidc(t) || grant.contains(t), "{t:?} granted outside the client grant {grant:?}");
            }
        }
    }

    /// 2. No client, no grant, unknown audience, or an API closed to the
    /// client ⇒ an error, never a grant.
    #[test]
    fn inv02_default_deny(case in case(), what in 0..6usize, which in pick()) {
        let (mut doc, mut req) = (case.doc.clone(), case.req.clone());
        match what {
            0 => req.client_id = "ghost".to_string(),
            1 => req.audience = Some(UNKNOWN_AUDIENCE.to_string()),
            _ => {
                prop_assume!(!doc.apis.is_empty());
                if client_for(&doc, &req.client_id).is_none() {
                    req.client_id = doc.clients[which % doc.clients.len()].client_id.clone();
                }
                let audience = match api_for(&doc, effective_audience(&doc, &req).as_deref()) {
                    Some(api) => api.audience.clone(),
                    None => doc.apis[which % doc.apis.len()].audience.clone(),
                };
                req.audience = Some(audience.clone());
                let client = doc.clients.iter().position(|c| c.client_id == req.client_id).unwrap_or(0);
                let api = doc.apis.iter().position(|a| a.audience == audience).unwrap_or(0);
                let (kind, subject) = if what < 4 { ("client_credentials", "client") } else { ("", "user") };
                if what < 4 {
                    req.flow = kind.to_string();
                    req.user = None;
                } else if req.flow == "client_credentials" {
                    req.flow = "authorization_code".to_string();
                    req.user = Some(model::User { id: "alice".to_string(), ..Default::default() });
                }
                match what {
                    2 | 4 => {
                        let c = doc.clients[client].clone();
                        doc.clients[client]
                            .grants
                            .retain(|g| !(g.audience == audience && subject_of(&c, g) == subject));
                        if what == 4 {
                            doc.apis[api].user_access = "require_client_grant".to_string();
                        }
                    }
                    3 => doc.apis[api].client_access = "deny_all".to_string(),
                    _ => doc.apis[api].user_access = "deny_all".to_string(),
                }
            }
        }
        let policy = built(&doc)?;
        let answer = answer_for(&policy, &doc, &req, &case.ans)?;
        let outcome = real(&policy, &doc, &req, &answer)?;
        prop_assert!(matches!(outcome, Outcome::Error(_)), "case {what} is not an error: {outcome:?}");
        if what == 0 {
            prop_assert_eq!(error_of(&outcome), Some("invalid_client"));
        }
    }

    /// 3. Under RBAC, API scopes in G ⊆ the user's effective permissions for
    /// that audience (closure computed here as a fixpoint); and a scope
    /// refused as `not_permitted` is indeed not permitted.
    #[test]
    fn inv03_rbac_bound(case in case()) {
        let Case { doc, req, ans } = &case;
        let mut doc = doc.clone();
        for api in &mut doc.apis {
            api.rbac = true;
        }
        let policy = built(&doc)?;
        let answer = answer_for(&policy, &doc, req, ans)?;
        let outcome = real(&policy, &doc, req, &answer)?;
        let (Some(user), true) = (&req.user, req.flow != "client_credentials") else {
            return Ok(());
        };
        let audience = effective_audience(&doc, req).unwrap_or_default();
        let permitted = user_permissions(&doc, user);
        for t in granted_list(&outcome) {
            if !model::is_oidc(&t) {
                prop_assert!(
                    permitted.contains(&(audience.clone(), t.clone())),
                    "{t:?} granted for {audience:?}, the user may only {permitted:?}"
                );
            }
        }
        let verdicts = match &outcome {
            Outcome::Granted(g) => g.verdicts.clone(),
            Outcome::Consent { verdicts, .. } => verdicts.clone(),
            Outcome::Error(_) => Vec::new(),
        };
        for (t, reason) in verdicts {
            if reason.as_deref() == Some("not_permitted") {
                prop_assert!(!permitted.contains(&(audience.clone(), t.clone())), "{t:?} is permitted");
            }
        }
    }

    /// 4. Changing what belongs to another API (its scopes, settings, roles'
    /// permissions and client grants on it, consents and direct permissions
    /// for it, or adding a whole API) changes nothing of the decision.
    #[test]
    fn inv04_audience_isolation(case in case(), change in foreign_r(), other in pick()) {
        let Case { doc, req, ans } = &case;
        let policy = built(doc)?;
        let answer = answer_for(&policy, doc, req, ans)?;
        let before = real(&policy, doc, req, &answer)?;
        let (mut doc2, mut req2) = (doc.clone(), req.clone());
        apply_foreign(&mut doc2, &mut req2, &change, other);
        let policy2 = built(&doc2)?;
        let after = real(&policy2, &doc2, &req2, &answer)?;
        prop_assert_eq!(&before, &after, "after {:?}: {}", change, differential::document_json(&doc2).unwrap_or_default());
    }

    /// 5. When consent is required, every scope in G is in a valid matching
    /// record or approved on this prompt, and the prompt lists exactly the
    /// asked, otherwise-allowed, uncovered scopes (in asked order). "Allowed"
    /// comes from the same request by a first-party client on APIs that let
    /// it skip consent; "covered" is computed here.
    #[test]
    fn inv05_consent(case in case()) {
        let Case { doc, req, ans } = &case;
        let policy = built(doc)?;
        let stopped = real(&policy, doc, req, &Answer::None)?;
        let answer = answer_for(&policy, doc, req, ans)?;
        let answered = real(&policy, doc, req, &answer)?;

        let mut free = doc.clone();
        for client in &mut free.clients {
            client.first_party = true;
        }
        for api in &mut free.apis {
            api.allow_skipping_consent = true;
        }
        let free_policy = built(&free)?;
        let unasked = real(&free_policy, &free, req, &Answer::None)?;
        prop_assert!(!matches!(unasked, Outcome::Consent { .. }), "a first-party client that may skip is asked");
        let allowed = granted_list(&unasked);

        let audience = effective_audience(doc, req);
        let client = client_for(doc, &req.client_id);
        let required = req.flow == "authorization_code"
            && client.is_some_and(|c| {
                !c.first_party || api_for(doc, audience.as_deref()).is_some_and(|api| !api.allow_skipping_consent)
            });
        let expected_prompt: Vec<String> = if required {
            allowed.iter().filter(|t| !covered(doc, req, t)).cloned().collect()
        } else {
            Vec::new()
        };
        match &stopped {
            Outcome::Error(code) => {
                prop_assert_eq!(error_of(&unasked), Some(code.as_str()));
                return Ok(());
            }
            Outcome::Consent { prompt, .. } => {
                prop_assert_eq!(prompt, &expected_prompt, "allowed {:?}", allowed);
            }
            Outcome::Granted(g) => {
                prop_assert!(expected_prompt.is_empty(), "no prompt, expected {expected_prompt:?}");
                prop_assert_eq!(&g.granted, &allowed);
            }
        }
        if let (true, Outcome::Granted(g)) = (required, &answered) {
            let approved: Vec<String> = match &answer {
                Answer::Approve(a) => a.clone(),
                _ => Vec::new(),
            };
            for t in &g.granted {
                prop_assert!(covered(doc, req, t) || approved.contains(t), "{t:?} granted without consent");
            }
            let expected: Vec<String> =
                allowed.iter().filter(|t| covered(doc, req, t) || approved.contains(t)).cloned().collect();
            prop_assert_eq!(&g.granted, &expected);
        }
        if !required {
            prop_assert!(record_set(&answered).is_none(), "a consent record without consent: {answered:?}");
        }
    }

    /// 6. Shuffling the tokens of the scope parameter (and of the original
    /// scope) or repeating some changes neither G (as a set) nor the error.
    #[test]
    fn inv06_order_and_duplicates(
        case in case(),
        keys in vec(any::<u32>(), 8),
        repeats in vec(pick(), 0..4),
        original_keys in vec(any::<u32>(), 8),
    ) {
        let Case { doc, req, ans } = &case;
        let Some(raw) = &req.scope else { return Ok(()) };
        if !within_limits(doc, raw) {
            return Ok(());
        }
        let shuffle = |raw: &str, keys: &[u32], repeats: &[usize]| {
            let tokens = raw_tokens(raw);
            let mut order: Vec<usize> = (0..tokens.len()).collect();
            order.sort_by_key(|&i| (keys[i % keys.len()], i));
            let mut out: Vec<&str> = order.iter().map(|&i| tokens[i]).collect();
            for &r in repeats {
                if let Some(t) = at(&tokens, r) {
                    out.push(t);
                }
            }
            out.join(" ")
        };
        let mut req2 = req.clone();
        let raw2 = shuffle(raw, &keys, &repeats);
        if !within_limits(doc, &raw2) {
            return Ok(());
        }
        req2.scope = Some(raw2);
        if let Some(original) = &req.original_scope {
            if within_limits(doc, original) {
                req2.original_scope = Some(shuffle(original, &original_keys, &[]));
            }
        }
        let policy = built(doc)?;
        for answer in [Answer::None, answer_for(&policy, doc, req, ans)?] {
            let one = real(&policy, doc, req, &answer)?;
            let two = real(&policy, doc, &req2, &answer)?;
            prop_assert_eq!(error_of(&one), error_of(&two), "{:?} vs {:?}", one, two);
            prop_assert_eq!(granted_set(&one), granted_set(&two));
            prop_assert_eq!(prompt_set(&one), prompt_set(&two));
            prop_assert_eq!(record_set(&one), record_set(&two));
        }
    }

    /// 7. With `unknown_scopes = ignore`, a non-empty request below the limits
    /// that ends in a grant, asking for more (also within the limits; for a
    /// refresh, more of the original scope) ends in a grant that keeps
    /// everything granted before. Approvals: the same ones, plus some of the
    /// new prompt scopes.
    #[test]
    fn inv07_request_monotonicity(
        case in case(),
        extra in vec(tok_r(), 1..=4),
        positions in vec(pick(), 4),
        mask in any::<u64>(),
    ) {
        let Case { doc, req, ans } = &case;
        let mut doc = doc.clone();
        doc.settings.unknown_scopes = "ignore".to_string();
        let Some(raw) = &req.scope else { return Ok(()) };
        let tokens = raw_tokens(raw);
        if tokens.is_empty() || !within_limits(&doc, raw) {
            return Ok(());
        }
        let originals: Vec<String> = distinct(&raw_tokens(req.original_scope.as_deref().unwrap_or("")));
        let mut more: Vec<String> = tokens.iter().map(|t| t.to_string()).collect();
        for (i, t) in extra.iter().enumerate() {
            let added = if req.flow == "refresh_token" {
                match at(&originals, positions[i % positions.len()]) {
                    Some(t) => t,
                    None => continue,
                }
            } else {
                token(&doc, t, true)
            };
            let p = positions[i % positions.len()] % (more.len() + 1);
            more.insert(p, added);
        }
        let raw2 = more.join(" ");
        if !within_limits(&doc, &raw2) {
            return Ok(());
        }
        let mut req2 = req.clone();
        req2.scope = Some(raw2);

        let policy = built(&doc)?;
        let approvals = match ans {
            AnsR::Approve(m, _) | AnsR::Tampered(m, _) => *m,
            AnsR::Nothing | AnsR::Deny => u64::MAX,
        };
        let prompt1: Vec<String> = prompt_set(&real(&policy, &doc, req, &Answer::None)?).into_iter().collect();
        let approved1 = subset(&prompt1, approvals);
        let one = real(&policy, &doc, req, &Answer::Approve(approved1.clone()))?;
        let Outcome::Granted(g1) = &one else { return Ok(()) };
        let prompt2: Vec<String> = prompt_set(&real(&policy, &doc, &req2, &Answer::None)?)
            .into_iter()
            .filter(|t| !prompt1.contains(t))
            .collect();
        let mut approved2 = approved1.clone();
        approved2.extend(subset(&prompt2, mask));
        let two = real(&policy, &doc, &req2, &Answer::Approve(approved2))?;
        let Outcome::Granted(g2) = &two else {
            return Err(TestCaseError::fail(format!("asking for more is not a grant: {two:?} (before: {one:?})")));
        };
        for t in &g1.granted {
            prop_assert!(g2.granted.contains(t), "{t:?} granted for {raw:?} but not for {:?}", req2.scope);
        }
    }

    /// 8. A refresh grant ⊆ original_scope; also after the policy (or the
    /// request) loses a permission, when it is moreover ⊆ the grant before.
    /// A refresh never asks for consent.
    #[test]
    fn inv08_refresh_never_widens(case in case(), removal in removal_r(), which in pick()) {
        let (mut doc, mut req) = (case.doc.clone(), case.req.clone());
        req.flow = "refresh_token".to_string();
        let allows = |c: &model::Client| model::effective_grant_types(c).iter().any(|g| g == "refresh_token");
        if !client_for(&doc, &req.client_id).is_some_and(allows) {
            let candidates: Vec<String> =
                doc.clients.iter().filter(|c| allows(c)).map(|c| c.client_id.clone()).collect();
            match at(&candidates, which) {
                Some(id) => req.client_id = id,
                None => {
                    let n = doc.clients.len();
                    let client = &mut doc.clients[which % n];
                    client.grant_types = Some(vec!["authorization_code".to_string(), "refresh_token".to_string()]);
                    req.client_id = client.client_id.clone();
                }
            }
        }
        if req.user.is_none() {
            req.user = Some(model::User { id: "alice".to_string(), ..Default::default() });
        }
        if req.original_scope.is_none() {
            req.original_scope = Some(req.scope.clone().unwrap_or_else(|| "openid read:events".to_string()));
        }
        let original: BTreeSet<String> =
            raw_tokens(req.original_scope.as_deref().unwrap_or("")).into_iter().map(str::to_string).collect();
        let policy = built(&doc)?;
        let before = real(&policy, &doc, &req, &Answer::None)?;
        prop_assert!(!matches!(before, Outcome::Consent { .. }), "a refresh asked for consent: {before:?}");
        let g1 = granted_set(&before);
        prop_assert!(g1.is_subset(&original), "refresh widened {original:?} to {g1:?}");

        let (mut doc2, mut req2) = (doc.clone(), req.clone());
        prop_assume!(apply_removal(&mut doc2, &mut req2, &removal));
        let policy2 = built(&doc2)?;
        let after = real(&policy2, &doc2, &req2, &Answer::None)?;
        let g2 = granted_set(&after);
        prop_assert!(g2.is_subset(&original), "after {removal:?} refresh widened {original:?} to {g2:?}");
        prop_assert!(g2.is_subset(&g1), "after {removal:?} the refresh grants more: {g1:?} then {g2:?}");
    }

    /// 9. Removing a scope, a default scope, a role permission, a client-grant
    /// entry, a consent record, or a user's role or direct permission never
    /// adds to G (for the same honest answer).
    #[test]
    fn inv09_policy_monotonicity(case in case(), removal in removal_r()) {
        let Case { doc, req, ans } = &case;
        let policy = built(doc)?;
        let answer = answer_for(&policy, doc, req, &honest(ans))?;
        let before = real(&policy, doc, req, &answer)?;
        let (mut doc2, mut req2) = (doc.clone(), req.clone());
        prop_assume!(apply_removal(&mut doc2, &mut req2, &removal));
        let policy2 = built(&doc2)?;
        let after = real(&policy2, &doc2, &req2, &answer)?;
        let (g1, g2) = (granted_set(&before), granted_set(&after));
        prop_assert!(g2.is_subset(&g1), "after {removal:?}: {g1:?} became {g2:?}\nbefore {before:?}\nafter {after:?}");
    }

    /// 10. Every verdict's token, granted or not, is byte-identical to a
    /// requested token (or a default), in asked order: no case folding, no
    /// Unicode normalisation, no pattern expansion from requests.
    #[test]
    fn inv10_literalness(case in case()) {
        let Case { doc, req, ans } = &case;
        let policy = built(doc)?;
        let answer = answer_for(&policy, doc, req, ans)?;
        let outcome = real(&policy, doc, req, &answer)?;
        let verdicts = match &outcome {
            Outcome::Granted(g) => g.verdicts.clone(),
            Outcome::Consent { verdicts, .. } => verdicts.clone(),
            Outcome::Error(_) => return Ok(()),
        };
        let tokens: Vec<String> = verdicts.iter().map(|(t, _)| t.clone()).collect();
        prop_assert_eq!(&tokens, &asked_tokens(doc, req));
        let param: Vec<&str> = raw_tokens(req.scope.as_deref().unwrap_or(""));
        for t in granted_list(&outcome) {
            prop_assert!(t.bytes().all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\'), "{t:?}");
            prop_assert!(!t.contains('*'), "{t:?} granted from a pattern");
            if !param.is_empty() {
                prop_assert!(param.iter().any(|p| p.as_bytes() == t.as_bytes()), "{t:?} is not a requested token");
            }
        }
    }

    /// 11. The same inputs give the same output, in the same order: two
    /// policies built from the same text (each with its own hash seeds)
    /// print and decide identically.
    #[test]
    fn inv11_determinism(case in case()) {
        let Case { doc, req, ans } = &case;
        let one = built(doc)?;
        let two = built(doc)?;
        prop_assert_eq!(format!("{one:?}"), format!("{two:?}"));
        let answer = answer_for(&one, doc, req, ans)?;
        let input = differential::real_input(req).map_err(TestCaseError::fail)?;
        let request = input.request(req);
        let run = |policy: &Policy| {
            let decision = policy.grant(&request);
            let first = format!("{decision:?}");
            let answered = match (decision, &answer) {
                (Ok(Decision::ConsentRequired(prompt)), Answer::Approve(a)) => format!("{:?}", prompt.approve(a)),
                (Ok(Decision::ConsentRequired(prompt)), Answer::Deny) => format!("{:?}", prompt.deny()),
                (Ok(Decision::Granted(grant)), _) => format!("{} {}", grant.scope_string(), grant.scope_changed()),
                (other, _) => format!("{other:?}"),
            };
            (first, answered)
        };
        prop_assert_eq!(run(&one), run(&two));
        prop_assert_eq!(run(&one), run(&one));
    }

    /// 12. Totality: arbitrary text, damaged documents and hostile requests
    /// give `Ok` or a typed error, never a panic; every policy problem has a
    /// path from the document root, every request error a safe description.
    #[test]
    fn inv12_totality(
        case in case(),
        text in "\\PC{0,120}",
        cut in pick(),
        junk in "[\\PC\\t\\n]{0,8}",
        damage in vec((0..14usize, pick(), 0..HOSTILE.len()), 1..=4),
        client_id in "\\PC{0,12}",
        audience in prop::option::of("\\PC{0,24}"),
        scope in prop::option::of("[ -~\\t\\u{a0}\\u{430}]{0,48}"),
        original in prop::option::of("[ -~\\t]{0,48}"),
        approvals in vec("\\PC{0,12}", 0..4),
        flow in 0..3usize,
        big in prop::bool::weighted(0.05),
    ) {
        let _ = Policy::from_json(&text);
        let _ = Policy::from_toml(&text);
        let _ = PolicyDocument::from_json(&text);
        let json = differential::document_json(&case.doc).map_err(TestCaseError::fail)?;
        let mut at_cut = cut * json.len() / 64;
        while !json.is_char_boundary(at_cut) {
            at_cut -= 1;
        }
        let damaged_text = format!("{}{junk}{}", &json[..at_cut], &json[at_cut..]);
        let _ = Policy::from_json(&damaged_text);

        let mut doc = case.doc.clone();
        for (what, i, h) in &damage {
            damage_doc(&mut doc, *what, *i, HOSTILE[*h]);
        }
        let damaged_json = differential::document_json(&doc).map_err(TestCaseError::fail)?;
        let policy = match Policy::from_json(&damaged_json) {
            Ok(policy) => policy,
            Err(error) => {
                let paths = error.paths();
                prop_assert!(!paths.is_empty());
                for path in paths {
                    prop_assert!(
                        ["settings", "apis", "roles", "clients"].iter().any(|s| path.starts_with(s)),
                        "problem path {path:?} of {error}"
                    );
                }
                match Policy::from_json(&json) {
                    Ok(policy) => policy,
                    Err(_) => return Ok(()),
                }
            }
        };
        let big_scope = "a ".repeat(20_000);
        let user = User::new(client_id.clone()).with_role(client_id.clone());
        let records: Vec<ConsentRecord> = Vec::new();
        let mut request = Request::new(&client_id)
            .flow([Flow::AuthorizationCode, Flow::RefreshToken, Flow::ClientCredentials][flow])
            .consents(&records)
            .prompt(if big { Prompt::Consent } else { Prompt::Default });
        if flow != 2 {
            request = request.user(&user);
        }
        if let Some(a) = &audience {
            request = request.audience(a);
        }
        if big {
            request = request.scope(&big_scope);
        } else if let Some(s) = &scope {
            request = request.scope(s);
        }
        if let Some(o) = &original {
            request = request.original_scope(o);
        }
        check_totality(&policy, &request, &approvals)?;
        // The generated request too, from every client, in every flow.
        let input = differential::real_input(&case.req).map_err(TestCaseError::fail)?;
        for client in policy.clients() {
            let req = Req { client_id: client.client_id().to_string(), ..case.req.clone() };
            for f in 0..3 {
                check_totality(&policy, &input.request(&req).flow(base_flow(f)), &approvals)?;
            }
        }
    }

    /// 13. Round trips: the document read back from its JSON and its TOML is
    /// the same document; the policies built from the JSON, the TOML and the
    /// document itself print and decide identically; and
    /// `parse(render(scopes)) == scopes`, also for a grant's scope string.
    #[test]
    fn inv13_round_trips(case in case(), scopes in vec("[!#-\\[\\]-~]{1,12}", 0..10)) {
        let Case { doc, req, ans } = &case;
        let json = differential::document_json(doc).map_err(TestCaseError::fail)?;
        let document = PolicyDocument::from_json(&json).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let again = document.to_json().map_err(|e| TestCaseError::fail(e.to_string()))?;
        let reread = PolicyDocument::from_json(&again);
        prop_assert_eq!(reread.as_ref(), Ok(&document));
        let toml = document.to_toml().map_err(|e| TestCaseError::fail(e.to_string()))?;
        let reread = PolicyDocument::from_toml(&toml);
        prop_assert_eq!(reread.as_ref(), Ok(&document), "TOML:\n{}", toml);

        let from_json = built(doc)?;
        let from_toml = Policy::from_toml(&toml).map_err(|e| TestCaseError::fail(format!("TOML does not build: {e}")))?;
        let from_document =
            Policy::from_document(document.clone()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(format!("{from_json:?}"), format!("{from_toml:?}"));
        prop_assert_eq!(format!("{from_json:?}"), format!("{from_document:?}"));
        let answer = answer_for(&from_json, doc, req, ans)?;
        let one = real(&from_json, doc, req, &answer)?;
        prop_assert_eq!(&one, &real(&from_toml, doc, req, &answer)?);
        prop_assert_eq!(&one, &real(&from_document, doc, req, &answer)?);

        let mut list: Vec<String> = Vec::new();
        for s in scopes {
            if !list.contains(&s) {
                list.push(s);
            }
        }
        let rendered = list.join(" ");
        let parsed = ScopeParam::parse(&rendered, Limits::default()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let expected: Vec<&str> = list.iter().map(String::as_str).collect();
        prop_assert_eq!(parsed.tokens(), expected.as_slice());
        if let Outcome::Granted(g) = &one {
            let rendered = g.granted.join(" ");
            let limits = Limits { max_scope_length: usize::MAX, max_scope_tokens: usize::MAX };
            let parsed = ScopeParam::parse(&rendered, limits).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let expected: Vec<&str> = g.granted.iter().map(String::as_str).collect();
            prop_assert_eq!(parsed.tokens(), expected.as_slice());
        }
    }

    /// 14. A policy that built never reaches an inconsistent state: its
    /// accessors agree with the document (scopes, descriptions, defaults in
    /// definition order, grant types, role closure), and every decision's
    /// parts agree with each other (verdicts, scopes, scope string, prompt
    /// descriptions, the new record's owner).
    #[test]
    fn inv14_validation_soundness(case in case()) {
        let Case { doc, req, ans } = &case;
        let policy = built(doc)?;
        prop_assert_eq!(policy.apis().len(), doc.apis.len());
        let closure = role_permissions(doc);
        for api_doc in &doc.apis {
            let api = policy.api(&api_doc.audience).ok_or_else(|| TestCaseError::fail("API missing"))?;
            let defined: Vec<(String, String)> =
                api.scopes().map(|(s, d)| (s.as_str().to_string(), d.to_string())).collect();
            let expected: Vec<(String, String)> =
                api_doc.scopes.iter().map(|d| (d.name.clone(), d.description.clone())).collect();
            prop_assert_eq!(defined, expected);
            let defaults: Vec<String> = api.default_scopes().map(|s| s.as_str().to_string()).collect();
            let expected: Vec<String> =
                scope_names(api_doc).into_iter().filter(|s| api_doc.default_scopes.contains(s)).collect();
            prop_assert_eq!(defaults, expected);
            for role in &doc.roles {
                let real_role = policy.role(&role.name).ok_or_else(|| TestCaseError::fail("role missing"))?;
                for def in &api_doc.scopes {
                    let expected = closure
                        .get(&role.name)
                        .is_some_and(|set| set.contains(&(api_doc.audience.clone(), def.name.clone())));
                    prop_assert_eq!(real_role.permits(api, &def.name), expected, "{} {}", role.name, def.name);
                }
            }
        }
        for client in &doc.clients {
            let real_client = policy.client(&client.client_id).ok_or_else(|| TestCaseError::fail("client missing"))?;
            let mut expected: Vec<String> = Vec::new();
            for g in model::effective_grant_types(client) {
                if !expected.contains(&g) {
                    expected.push(g);
                }
            }
            let got: Vec<String> = real_client.grant_types().iter().map(|f| f.as_str().to_string()).collect();
            prop_assert_eq!(got, expected);
        }
        for answer in [Answer::None, answer_for(&policy, doc, req, ans)?] {
            let real = differential::real_outcome(&policy, doc, req, &answer).map_err(TestCaseError::fail)?;
            prop_assert!(real.problems.is_empty(), "{:?}", real.problems);
        }
    }

    /// 15. The real `grant` equals the reference model's on every generated
    /// input: outcome kind, granted list in order, prompt, every verdict's
    /// reason, error code, `scope_changed`, `refresh_token`, consent record.
    ///
    /// Sometimes the limits are set around the request's own size (one under,
    /// at, one over), so that the edges of `max_scope_length` and
    /// `max_scope_tokens` are compared too.
    #[test]
    fn inv15_differential(
        case in case(),
        squeeze in prop::option::weighted(0.2, (0..3usize, 0..3usize, any::<bool>())),
    ) {
        let Case { doc, req, ans } = &case;
        let mut doc = doc.clone();
        if let Some((length, tokens, of_original)) = squeeze {
            let raw = if of_original { &req.original_scope } else { &req.scope };
            let raw = raw.as_deref().unwrap_or("");
            doc.settings.max_scope_length = (raw.len() + 1).saturating_sub(length);
            doc.settings.max_scope_tokens = (raw_tokens(raw).len() + 1).saturating_sub(tokens);
        }
        let doc = &doc;
        let policy = built(doc)?;
        let answer = answer_for(&policy, doc, req, ans)?;
        for answer in [Answer::None, answer] {
            match differential::compare_with(&policy, doc, req, &answer) {
                Comparison::Same => {}
                Comparison::Differ(found) => {
                    return Err(TestCaseError::fail(format!("answer {answer:?}:\n{found}")));
                }
                Comparison::Unbuildable(e) => return Err(TestCaseError::reject(e)),
                Comparison::Inexpressible(e) => return Err(TestCaseError::fail(e)),
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Helpers of invariant 12
// ---------------------------------------------------------------------------

const HOSTILE: [&str; 24] = [
    "",
    " ",
    "*",
    "**",
    "a*b",
    "read:*",
    "openid",
    "offline_access",
    "x y",
    "\t",
    "\u{e9}",
    "read:events",
    "Read:events",
    "urn:billing",
    "https://events.example.com/api/",
    "machine_to_machine",
    "user",
    "client",
    "reject",
    "deny_all",
    "admin",
    "viewer",
    "\"",
    "\\",
];

/// Puts a hostile value somewhere in the document.
fn damage_doc(doc: &mut Doc, what: usize, i: usize, value: &str) {
    let v = value.to_string();
    let napis = doc.apis.len();
    let nroles = doc.roles.len();
    let nclients = doc.clients.len();
    match what {
        0 if napis > 0 => {
            let api = &mut doc.apis[i % napis];
            match api.scopes.len() {
                0 => api.scopes.push(model::ScopeDef {
                    name: v,
                    description: String::new(),
                }),
                n => api.scopes[i % n].name = v,
            }
        }
        1 if napis > 0 => doc.apis[i % napis].audience = v,
        2 if nroles > 0 => doc.roles[i % nroles].name = v,
        3 if nroles > 0 => {
            let target = if i % 2 == 0 {
                doc.roles[(i / 2) % nroles].name.clone()
            } else {
                v
            };
            doc.roles[i % nroles].inherits.push(target);
        }
        4 if nroles > 0 && napis > 0 => {
            let audience = doc.apis[i % napis].audience.clone();
            doc.roles[i % nroles]
                .permissions
                .push(model::Permission { audience, scope: v });
        }
        5 if nclients > 0 && napis > 0 => {
            let audience = doc.apis[i % napis].audience.clone();
            doc.clients[i % nclients].grants.push(model::ClientGrant {
                audience,
                subject: (i % 3 != 0).then(|| ["client", "user"][i % 2].to_string()),
                scopes: vec![v],
            });
        }
        6 if nclients > 0 => doc.clients[i % nclients].kind = v,
        7 if nclients > 0 => doc.clients[i % nclients].grant_types = Some(vec![v]),
        8 if napis > 0 => doc.apis[i % napis].user_access = v,
        9 if napis > 0 => doc.apis[i % napis].client_access = v,
        10 => doc.settings.unknown_scopes = v,
        11 => doc.settings.default_audience = Some(v),
        12 if napis > 0 => doc.apis[i % napis].default_scopes.push(v),
        13 if nclients > 0 => {
            let copy = doc.clients[i % nclients].clone();
            doc.clients.push(copy);
        }
        _ => {
            if let Some(api) = doc.apis.first().cloned() {
                doc.apis.push(api);
            }
        }
    }
}

fn base_flow(flow: usize) -> Flow {
    [
        Flow::AuthorizationCode,
        Flow::RefreshToken,
        Flow::ClientCredentials,
    ][flow % 3]
}

/// Decides, then answers the prompt (if any) with hostile approvals, with
/// nothing, and with a refusal; checks every error's description is safe.
fn check_totality(policy: &Policy, request: &Request<'_>, approvals: &[String]) -> Result<(), TestCaseError> {
    let safe = |error: &GrantError| {
        let description = error.description();
        !description.is_empty()
            && description
                .bytes()
                .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
    };
    match policy.grant(request) {
        Err(error) => prop_assert!(safe(&error), "{error:?}"),
        Ok(Decision::Granted(grant)) => {
            prop_assert!(differential::grant_problems(&grant).is_empty());
        }
        Ok(Decision::ConsentRequired(prompt)) => {
            prop_assert!(prompt.scopes().count() > 0);
            let denied = prompt.clone().deny();
            prop_assert!(safe(&denied));
            let on_prompt: Vec<String> = prompt.scopes().map(|s| s.scope().to_string()).collect();
            match prompt.clone().approve(approvals) {
                Err(error) => prop_assert!(safe(&error)),
                Ok(grant) => {
                    prop_assert!(approvals.iter().all(|a| on_prompt.contains(a)));
                    prop_assert!(differential::grant_problems(&grant).is_empty());
                }
            }
            let grant = prompt
                .approve(&on_prompt)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert!(differential::grant_problems(&grant).is_empty());
        }
    }
    Ok(())
}

/// Not an invariant but what makes them worth running: the generators reach
/// every error code, every refusal reason and every answer to a prompt
/// (`cargo test --test properties -- --nocapture generator_coverage` prints
/// how often).
#[test]
fn generator_coverage() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let mut tally: BTreeMap<String, usize> = BTreeMap::new();
    let mut count = |key: String| *tally.entry(key).or_default() += 1;
    let n = 4000;
    for _ in 0..n {
        let case = case().new_tree(&mut runner).map(|tree| tree.current());
        let Ok(Case { doc, req, ans }) = case else {
            continue;
        };
        let Ok(policy) = differential::build_policy(&doc) else {
            count("document does not build".to_string());
            continue;
        };
        count(format!("flow {}", req.flow));
        let Ok(answer) = answer_for(&policy, &doc, &req, &ans) else {
            continue;
        };
        let Ok(stopped) = real(&policy, &doc, &req, &Answer::None) else {
            continue;
        };
        let Ok(outcome) = real(&policy, &doc, &req, &answer) else {
            continue;
        };
        match &stopped {
            Outcome::Error(code) => count(format!("error {code} ({})", req.flow)),
            Outcome::Consent { prompt, .. } => {
                count(format!("consent prompt of {} scope(s)", prompt.len().min(3)))
            }
            Outcome::Granted(g) => count(format!(
                "granted {} scope(s) without prompt",
                g.granted.len().min(3)
            )),
        }
        if matches!(stopped, Outcome::Consent { .. }) {
            count(format!(
                "answer {} -> {}",
                match &answer {
                    Answer::None => "none",
                    Answer::Deny => "deny",
                    Answer::Approve(_) => "approve",
                },
                match &outcome {
                    Outcome::Error(code) => code.clone(),
                    Outcome::Granted(g) => format!("granted {}", g.granted.len().min(3)),
                    Outcome::Consent { .. } => "still a prompt".to_string(),
                }
            ));
        }
        if let Outcome::Granted(g) = &outcome {
            // Over 16 asked scopes a request no longer fits inline.
            if g.verdicts.len() > 16 {
                let path = match &stopped {
                    Outcome::Consent { .. } => "after a prompt",
                    _ => "without prompt",
                };
                count(format!("long request ({}) {path}", req.flow));
            }
            for (_, reason) in &g.verdicts {
                count(format!("verdict {}", reason.as_deref().unwrap_or("granted")));
            }
            count(format!("scope_changed {}", g.scope_changed));
            count(format!("refresh_token {}", g.refresh_token));
        }
    }
    for (key, value) in &tally {
        println!("{value:6}  {key}");
    }
    let reached = |prefix: &str| tally.keys().any(|key| key.starts_with(prefix));
    let codes = [
        "invalid_client",
        "unauthorized_client",
        "invalid_request",
        "invalid_scope",
        "invalid_target",
        "access_denied",
    ];
    let reasons = [
        "requires_user",
        "offline_access_not_allowed",
        "no_audience",
        "undefined",
        "not_granted_to_client",
        "not_permitted",
        "consent_denied",
    ];
    let missed: Vec<String> = codes
        .iter()
        .map(|code| format!("error {code}"))
        .chain(reasons.iter().map(|reason| format!("verdict {reason}")))
        .chain(["answer none", "answer deny", "answer approve", "consent prompt"].map(String::from))
        .chain(
            [
                "long request (authorization_code) after a prompt",
                "long request (authorization_code) without prompt",
                "long request (refresh_token)",
                "long request (client_credentials)",
            ]
            .map(String::from),
        )
        .filter(|prefix| !reached(prefix))
        .collect();
    assert!(missed.is_empty(), "the generators never reach: {missed:?}");
}

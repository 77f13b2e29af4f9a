//! The invariants of TESTING.md §2, one property test each (`inv01_subset` …
//! `inv20_unticked_is_gone`), over small generated policies, requests and
//! answers, for DESIGN.md revision 2.
//!
//! Generators (TESTING.md §2): policies with ≤ 3 APIs of ≤ 8 scopes drawn from
//! one pool of names (so APIs share names, and names share prefixes and differ
//! only in case), some of them `consent: always` or `required` (about 15% each),
//! metadata now and then, a `consent_lifetime` sometimes; ≤ 5 roles whose
//! `inherits` form a DAG, patterns `*` and `prefix*` in permissions and grants,
//! ≤ 4 clients of every kind, some with the `device_code` grant type (never
//! `client_credentials` for a public client: such a document does not build).
//! Requests whose tokens come mostly from the policy's own scope names, the
//! OIDC names and hostile mutations of both (case flips, a `*` suffix, an
//! audience as a token, an added TAB or NBSP, a Cyrillic look-alike letter), in
//! every flow (the device flow also under its RFC 8628 URN); a raw `prompt`
//! (valid sets, and invalid ones); a `redirect_uri` from a table of verifiable
//! and unverifiable spellings (loopback in every spelling of DESIGN §3.6,
//! custom schemes, garbage), each classified by hand; for refreshes an
//! `original_audience` (mostly the grant's own, sometimes absent, another API or
//! unknown) and an `audience` parameter (mostly absent or equal); a `now` that
//! is sometimes absent or near `u64::MAX`; consent records for the right and the
//! wrong user, client and audience, expired or not, holding and declining
//! scopes (sometimes every asked one); and answers: none, deny, approve a subset
//! of the prompt (mostly with every `required` scope), or a tampered approval.
//!
//! Everything is generated as a *recipe* of small numbers, then resolved
//! against the generated document, so a failing case shrinks well. A failing
//! case prints the document and the request as JSON (the shapes of DESIGN §4
//! and §5), ready to become a conformance case.
//!
//! The properties compute what they expect from DESIGN.md directly, with the
//! helpers under "Independent facts" below; only invariant 15 asks the
//! reference model (the others use its types, as the shape of a document and
//! a request, and its glue to run the crate).
//!
//! `PROPTEST_CASES` sets the number of cases (default 256).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{FileFailurePersistence, TestCaseError};
use scope_policy::{
    ConsentRecord, Decision, Flow, GrantError, Limits, Policy, PolicyDocument, Request, Scope, ScopeConsent,
    ScopeParam, User,
};

mod reference;
use reference::differential::{self, Comparison};
use reference::model::{self, Answer, Consent, Doc, Outcome, Record, Req};

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
const FLOWS: [&str; 4] = [
    "authorization_code",
    "refresh_token",
    "client_credentials",
    "device_code",
];
/// RFC 8628 §3.4: the `grant_type` of a device access token request.
const DEVICE_URN: &str = "urn:ietf:params:oauth:grant-type:device_code";
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
/// Metadata keys and values (carried, never interpreted; keys non-empty).
const METADATA_KEYS: [&str; 4] = ["owner", "logo", "redirect_uris", "r\u{e9}sum\u{e9}"];
const METADATA_VALUES: [&str; 4] = [
    "events-team",
    "https://cdn.example.com/logo.png",
    "",
    "\u{1f510} x=\"y\"",
];
/// `settings.consent_lifetime` values (seconds): tiny, usual, and one that
/// overflows any `now` (DESIGN §3.6: `now + consent_lifetime` saturates).
const LIFETIMES: [i64; 4] = [1, 10, 3600, i64::MAX];
/// Raw `prompt` parameters (DESIGN §3.1 check 3, §3.6): valid sets, then
/// invalid ones from index [`FIRST_INVALID_PROMPT`].
const PROMPTS: [&str; 13] = [
    "",
    "consent",
    "none",
    "login",
    "login consent",
    "  consent  ",
    "select_account",
    "none none",
    "none login",
    "consent\tlogin",
    "create",
    "Consent",
    "login,consent",
];
const FIRST_INVALID_PROMPT: usize = 8;
/// Redirect URIs, each with its classification under DESIGN §2 "Verifiable
/// redirect" and §3.6 (`true` = verifiable), worked out by hand from the text,
/// not by running any classifier. The verifiable ones come first, up to
/// [`FIRST_UNVERIFIABLE`].
const REDIRECTS: [(&str, bool); 23] = [
    ("https://app.example.com/cb", true),
    ("HTTPS://App.Example.COM/cb", true),
    ("https://app.example.com:8443/cb?x=1", true),
    ("https://user@app.example.com/cb", true),
    ("https://localhost.example.com/cb", true),
    ("https://[2001:db8::1]/cb", true),
    ("https://128.0.0.1/", true),
    // http, whatever the host
    ("http://127.0.0.1:8080/cb", false),
    ("http://app.example.com/cb", false),
    // every spelling of a loopback host (DESIGN §3.6)
    ("https://127.1/", false),
    ("https://0x7f.0.0.1/", false),
    ("https://2130706433/", false),
    ("https://[::1]/", false),
    ("https://[::ffff:127.0.0.1]/", false),
    ("https://LOCALHOST./", false),
    ("https://%6c%6f%63%61%6c%68%6f%73%74/", false),
    ("https://app.localhost/cb", false),
    ("https://0.0.0.0/", false),
    ("https://[::]/", false),
    // a custom scheme, unparsable text, a zone id, an empty host
    ("com.example.app:/cb", false),
    ("https://exa mple.com/", false),
    ("https://[fe80::1%25eth0]/", false),
    ("https:///cb", false),
];
const FIRST_UNVERIFIABLE: usize = 7;
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

/// One scope definition: name, description, `consent: always`, `required`.
#[derive(Debug, Clone)]
struct DefR {
    name: usize,
    description: usize,
    always: bool,
    required: bool,
}

fn def_r() -> impl Strategy<Value = DefR> {
    (
        0..SCOPE_NAMES.len(),
        0..DESCRIPTIONS.len(),
        prop::bool::weighted(0.15),
        prop::bool::weighted(0.15),
    )
        .prop_map(|(name, description, always, required)| DefR {
            name,
            description,
            always,
            required,
        })
}

/// Metadata now and then: a few (key, value) picks.
fn metadata_r() -> impl Strategy<Value = Vec<(usize, usize)>> {
    prop_oneof![
        4 => Just(Vec::new()),
        1 => vec((0..METADATA_KEYS.len(), 0..METADATA_VALUES.len()), 1..=3),
    ]
}

fn metadata_from(picks: &[(usize, usize)]) -> BTreeMap<String, String> {
    picks
        .iter()
        .map(|&(k, v)| (METADATA_KEYS[k].to_string(), METADATA_VALUES[v].to_string()))
        .collect()
}

#[derive(Debug, Clone)]
struct ApiR {
    audience: usize,
    named: bool,
    scopes: Vec<DefR>,
    rbac: bool,
    skip: bool,
    offline: bool,
    user_access: usize,
    client_access: usize,
    defaults: Vec<usize>,
    metadata: Vec<(usize, usize)>,
}

fn api_r() -> impl Strategy<Value = ApiR> {
    (
        0..AUDIENCES.len(),
        any::<bool>(),
        vec(def_r(), 0..=9),
        any::<bool>(),
        prop::bool::weighted(0.7),
        prop::bool::weighted(0.6),
        prop_oneof![12 => Just(0usize), 6 => Just(1usize), 1 => Just(2usize)],
        prop_oneof![9 => Just(0usize), 1 => Just(1usize)],
        vec(pick(), 0..=3),
        metadata_r(),
    )
        .prop_map(
            |(
                audience,
                named,
                scopes,
                rbac,
                skip,
                offline,
                user_access,
                client_access,
                defaults,
                metadata,
            )| {
                ApiR {
                    audience,
                    named,
                    scopes,
                    rbac,
                    skip,
                    offline,
                    user_access,
                    client_access,
                    defaults,
                    metadata,
                }
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
    metadata: Vec<(usize, usize)>,
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
        prop::option::weighted(0.5, vec(0..FLOWS.len(), 1..=4)),
        vec(grant, 0..=5),
        metadata_r(),
    )
        .prop_map(
            |(id, kind, first_party, named, grant_types, grants, metadata)| ClientR {
                id,
                kind,
                first_party,
                named,
                grant_types,
                grants,
                metadata,
            },
        )
}

#[derive(Debug, Clone)]
struct DocR {
    apis: Vec<ApiR>,
    roles: Vec<RoleR>,
    clients: Vec<ClientR>,
    reject: bool,
    default_audience: Option<usize>,
    limits: Option<(usize, usize)>,
    consent_lifetime: Option<usize>,
}

fn doc_r() -> impl Strategy<Value = DocR> {
    (
        prop_oneof![15 => vec(api_r(), 1..=3), 1 => Just(Vec::new())],
        vec(role_r(), 0..=5),
        vec(client_r(), 1..=4),
        prop::bool::weighted(0.15),
        prop::option::weighted(0.3, pick()),
        prop::option::weighted(0.1, (0..80usize, 0..8usize)),
        prop::option::weighted(0.2, 0..LIFETIMES.len()),
    )
        .prop_map(
            |(apis, roles, clients, reject, default_audience, limits, consent_lifetime)| DocR {
                apis,
                roles,
                clients,
                reject,
                default_audience,
                limits,
                consent_lifetime,
            },
        )
}

fn scope_names(api: &model::Api) -> Vec<String> {
    api.scopes.iter().map(|def| def.name.clone()).collect()
}

fn scope_def(name: &str, description: &str) -> model::ScopeDef {
    model::ScopeDef {
        name: name.to_string(),
        description: description.to_string(),
        ..Default::default()
    }
}

/// A valid document from a recipe: duplicates are skipped, references
/// resolve against what is defined, `inherits` follows a random rank order,
/// and a public client (`spa`, `native`) never lists `client_credentials`
/// (DESIGN §2: such a document does not build).
fn doc_from(r: &DocR) -> Doc {
    let mut apis: Vec<model::Api> = Vec::new();
    for a in &r.apis {
        let audience = AUDIENCES[a.audience].to_string();
        if apis.iter().any(|api| api.audience == audience) {
            continue;
        }
        let mut scopes: Vec<model::ScopeDef> = Vec::new();
        for d in &a.scopes {
            if scopes.len() < 8 && !scopes.iter().any(|def| def.name == SCOPE_NAMES[d.name]) {
                scopes.push(model::ScopeDef {
                    consent: if d.always { "always" } else { "default" }.to_string(),
                    required: d.required,
                    ..scope_def(SCOPE_NAMES[d.name], DESCRIPTIONS[d.description])
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
            metadata: metadata_from(&a.metadata),
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
        let public = kind == "spa" || kind == "native";
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
        let grant_types = c
            .grant_types
            .as_ref()
            .map(|g| {
                g.iter()
                    .map(|&f| FLOWS[f].to_string())
                    .filter(|f| !(public && f == "client_credentials"))
                    .collect::<Vec<String>>()
            })
            .filter(|g| !g.is_empty());
        clients.push(model::Client {
            name: if c.named {
                format!("Client {}", clients.len())
            } else {
                String::new()
            },
            client_id,
            first_party: c.first_party,
            kind: kind.to_string(),
            grant_types,
            grants,
            metadata: metadata_from(&c.metadata),
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
            consent_lifetime: r.consent_lifetime.map(|i| LIFETIMES[i]),
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
    /// `device_code` under its RFC 8628 URN, if the client has it.
    DeviceUrn,
}

#[derive(Debug, Clone)]
enum AudR {
    Absent,
    Known(usize),
    Unknown,
    Slash(usize),
    CaseFlip(usize, usize),
}

/// A refresh's `original_audience`.
#[derive(Debug, Clone)]
enum OrigAudR {
    /// The audience the grant was for: the picked audience, or the default.
    Own,
    Absent,
    Known(usize),
    Unknown,
}

/// A refresh's `audience` parameter.
#[derive(Debug, Clone)]
enum RefreshAudR {
    Absent,
    Equal,
    /// The picked audience ([`AudR`]), whatever the grant's was.
    Picked,
}

#[derive(Debug, Clone)]
enum NowR {
    Absent,
    Usual,
    /// `u64::MAX` minus this: expiries and lifetimes saturate.
    NearMax(u64),
}

#[derive(Debug, Clone)]
enum RedirectR {
    Empty,
    Uri(usize),
}

#[derive(Debug, Clone)]
struct UserR {
    id: usize,
    roles: Vec<usize>,
    permissions: Vec<(usize, TokR)>,
}

#[derive(Debug, Clone)]
enum AudC {
    /// The audience in force.
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
    declined: Vec<TokR>,
    /// Decline every asked scope.
    decline_asked: bool,
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
    prompt: Option<usize>,
    redirect: Option<RedirectR>,
    original: Option<ScopeR>,
    param_from_original: Option<u64>,
    original_audience: OrigAudR,
    refresh_audience: RefreshAudR,
    /// An `original_audience` outside a refresh, which must change nothing.
    stray_original_audience: Option<usize>,
    now: NowR,
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
        prop_oneof![3 => Just(Vec::new()), 1 => vec(tok_r(), 1..=3)],
        prop::bool::weighted(0.1),
        prop_oneof![
            4 => Just(Expiry::Never),
            1 => Just(Expiry::Past),
            1 => Just(Expiry::AtNow),
            2 => Just(Expiry::Future),
        ],
    )
        .prop_map(
            |(right_user, right_client, audience, scopes, all_asked, declined, decline_asked, expiry)| {
                ConsentR {
                    right_user,
                    right_client,
                    audience,
                    scopes,
                    all_asked,
                    declined,
                    decline_asked,
                    expiry,
                }
            },
        )
}

fn prompt_r() -> impl Strategy<Value = usize> {
    prop_oneof![
        1 => Just(0usize),
        6 => Just(1usize),
        4 => Just(2usize),
        1 => Just(3usize),
        2 => Just(4usize),
        1 => Just(5usize),
        1 => Just(6usize),
        1 => Just(7usize),
        2 => FIRST_INVALID_PROMPT..PROMPTS.len(),
    ]
}

fn redirect_r() -> impl Strategy<Value = RedirectR> {
    prop_oneof![
        1 => Just(RedirectR::Empty),
        5 => (0..FIRST_UNVERIFIABLE).prop_map(RedirectR::Uri),
        5 => (FIRST_UNVERIFIABLE..REDIRECTS.len()).prop_map(RedirectR::Uri),
    ]
}

fn req_r() -> impl Strategy<Value = ReqR> {
    let client = prop_oneof![
        24 => pick().prop_map(ClientPick::Known),
        1 => pick().prop_map(ClientPick::Unknown),
    ];
    let preferred = prop_oneof![5 => Just(0usize), 2 => Just(1usize), 2 => Just(2usize), 2 => Just(3usize)];
    let flow = prop_oneof![
        12 => (preferred, pick()).prop_map(|(f, i)| FlowPick::Preferred(f, i)),
        1 => pick().prop_map(FlowPick::Any),
        1 => Just(FlowPick::DeviceUrn),
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
    let original_audience = prop_oneof![
        12 => Just(OrigAudR::Own),
        1 => Just(OrigAudR::Absent),
        1 => pick().prop_map(OrigAudR::Known),
        1 => Just(OrigAudR::Unknown),
    ];
    let refresh_audience = prop_oneof![
        5 => Just(RefreshAudR::Absent),
        4 => Just(RefreshAudR::Equal),
        1 => Just(RefreshAudR::Picked),
    ];
    let now = prop_oneof![
        2 => Just(NowR::Absent),
        7 => Just(NowR::Usual),
        1 => (0..=20u64).prop_map(NowR::NearMax),
    ];
    let request = (
        client,
        flow,
        audience,
        prop::option::weighted(0.85, scope_r()),
        prop::bool::weighted(0.05),
        user,
        vec(consent_r(), 0..=6),
    );
    let context = (
        prop::option::weighted(0.45, prompt_r()),
        prop::option::weighted(0.5, redirect_r()),
        prop::option::weighted(0.9, scope_r()),
        prop::option::weighted(0.7, any::<u64>()),
        original_audience,
        refresh_audience,
        prop::option::weighted(0.05, pick()),
        now,
    );
    (request, context).prop_map(
        |(
            (client, flow, audience, scope, wrong_user, user, consents),
            (
                prompt,
                redirect,
                original,
                param_from_original,
                original_audience,
                refresh_audience,
                stray,
                now,
            ),
        )| ReqR {
            client,
            flow,
            audience,
            scope,
            wrong_user,
            user,
            consents,
            prompt,
            redirect,
            original,
            param_from_original,
            original_audience,
            refresh_audience,
            stray_original_audience: stray,
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
    let allowed = client.as_ref().map(grant_types_of).unwrap_or_default();
    let flow = match &r.flow {
        FlowPick::Preferred(f, i) => {
            if allowed.iter().any(|g| g == FLOWS[*f]) {
                FLOWS[*f].to_string()
            } else {
                at(&allowed, *i).unwrap_or_else(|| FLOWS[*f].to_string())
            }
        }
        FlowPick::Any(i) => FLOWS[i % FLOWS.len()].to_string(),
        FlowPick::DeviceUrn if allowed.iter().any(|g| g == "device_code") => DEVICE_URN.to_string(),
        FlowPick::DeviceUrn => at(&allowed, 0).unwrap_or_else(|| FLOWS[0].to_string()),
    };
    let refresh = flow == "refresh_token";
    let audiences: Vec<String> = doc.apis.iter().map(|api| api.audience.clone()).collect();
    let picked = match &r.audience {
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
    // A refresh is bound to the audience of the grant it refreshes: mostly
    // the one the grant was made for, and the parameter mostly absent or equal.
    let (audience, original_audience) = if refresh {
        let original = match &r.original_audience {
            OrigAudR::Own => picked.clone().or_else(|| doc.settings.default_audience.clone()),
            OrigAudR::Absent => None,
            OrigAudR::Known(i) => at(&audiences, *i),
            OrigAudR::Unknown => Some(UNKNOWN_AUDIENCE.to_string()),
        };
        let audience = match &r.refresh_audience {
            RefreshAudR::Absent => None,
            RefreshAudR::Equal => original.clone(),
            RefreshAudR::Picked => picked.clone(),
        };
        (audience, original)
    } else {
        let stray = r.stray_original_audience.and_then(|i| at(&audiences, i));
        (picked, stray)
    };
    let in_force = if refresh {
        original_audience.clone()
    } else {
        audience.clone().or_else(|| doc.settings.default_audience.clone())
    };

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
        (Some(original), Some(mask)) if refresh => {
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

    let now = match r.now {
        NowR::Absent => None,
        NowR::Usual => Some(NOW),
        NowR::NearMax(k) => Some(u64::MAX - k),
    };
    let base = now.unwrap_or(NOW);
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
            let mut declined: Vec<String> = c.declined.iter().map(|t| token(doc, t, true)).collect();
            if c.decline_asked {
                declined.extend(asked_valid.iter().cloned());
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
                    AudC::Effective => in_force.clone(),
                    AudC::Absent => None,
                    AudC::Other(i) => at(&permission_audiences, *i),
                    AudC::Slash => Some(toggle_slash(in_force.as_deref().unwrap_or(AUDIENCES[0]))),
                },
                scopes,
                declined,
                expires_at: match c.expiry {
                    Expiry::Never => None,
                    Expiry::Past => Some(base.saturating_sub(10)),
                    Expiry::AtNow => Some(base),
                    Expiry::Future => Some(base.saturating_add(10)),
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
        prompt: r.prompt.map(|i| PROMPTS[i].to_string()),
        redirect_uri: r.redirect.as_ref().map(|redirect| match redirect {
            RedirectR::Empty => String::new(),
            RedirectR::Uri(i) => REDIRECTS[*i].0.to_string(),
        }),
        original_scope,
        original_audience,
        now,
    }
}

// ---------------------------------------------------------------------------
// Answer recipes
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum AnsR {
    Nothing,
    Deny,
    /// Approve the prompt scopes whose bit is set; maybe name one twice;
    /// maybe add every `required` prompt scope (mostly: a user who leaves a
    /// locked scope out refuses the whole prompt, `access_denied`).
    Approve {
        mask: u64,
        twice: bool,
        keep_required: bool,
    },
    /// Approve a subset plus one scope that was not on the prompt.
    Tampered(u64, TokR),
}

fn ans_r() -> impl Strategy<Value = AnsR> {
    prop_oneof![
        2 => Just(AnsR::Nothing),
        1 => Just(AnsR::Deny),
        6 => (any::<u64>(), prop::bool::weighted(0.1), prop::bool::weighted(0.75))
            .prop_map(|(mask, twice, keep_required)| AnsR::Approve { mask, twice, keep_required }),
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

/// The prompt scopes of `mask`, plus every required one, in prompt order.
fn with_required(prompt: &[String], required: &[String], mask: u64) -> Vec<String> {
    let chosen = subset(prompt, mask);
    prompt
        .iter()
        .filter(|t| chosen.contains(t) || required.contains(t))
        .cloned()
        .collect()
}

/// An answer for a decision with this prompt (and its required scopes) and
/// these asked scopes.
fn answer_from(doc: &Doc, prompt: &[String], required: &[String], asked: &[String], r: &AnsR) -> Answer {
    match r {
        AnsR::Nothing => Answer::None,
        AnsR::Deny => Answer::Deny,
        AnsR::Approve {
            mask,
            twice,
            keep_required,
        } => {
            let mut approved = if *keep_required {
                with_required(prompt, required, *mask)
            } else {
                subset(prompt, *mask)
            };
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
        write!(
            f,
            "Case {{\n  policy: {},\n  request: {},\n  answer: {:?}\n}}",
            json(&self.doc),
            json(&self.req),
            self.ans
        )
    }
}

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|e| format!("<{e}>"))
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
        Outcome::Consent {
            prompt,
            required,
            verdicts,
            ..
        } => {
            let asked: Vec<String> = verdicts.into_iter().map(|(t, _)| t).collect();
            answer_from(doc, &prompt, &required, &asked, r)
        }
        _ => answer_from(doc, &[], &[], &[], r),
    })
}

/// Decides `req`, and if it asks for consent approves the prompt scopes of
/// `mask` and every required one (so that the approval is not refused for
/// leaving a locked scope out). Returns the prompt (empty without one), the
/// approved scopes, and the final outcome.
fn decide_approving(
    policy: &Policy,
    doc: &Doc,
    req: &Req,
    mask: u64,
) -> Result<(Vec<String>, Vec<String>, Outcome), TestCaseError> {
    match real(policy, doc, req, &Answer::None)? {
        Outcome::Consent { prompt, required, .. } => {
            let approved = with_required(&prompt, &required, mask);
            let outcome = real(policy, doc, req, &Answer::Approve(approved.clone()))?;
            Ok((prompt, approved, outcome))
        }
        other => Ok((Vec::new(), Vec::new(), other)),
    }
}

/// `G`, in order: the granted scopes, or for a decision stopped at the prompt
/// the scopes granted without it; nothing for an error.
fn granted_list(outcome: &Outcome) -> Vec<String> {
    match outcome {
        Outcome::Error(_) => Vec::new(),
        Outcome::Granted(g) => g.granted.clone(),
        Outcome::Consent { prompt, verdicts, .. } => verdicts
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

fn prompt_list(outcome: &Outcome) -> Vec<String> {
    match outcome {
        Outcome::Consent { prompt, .. } => prompt.clone(),
        _ => Vec::new(),
    }
}

fn prompt_set(outcome: &Outcome) -> BTreeSet<String> {
    prompt_list(outcome).into_iter().collect()
}

fn record_of(outcome: &Outcome) -> Option<&Record> {
    match outcome {
        Outcome::Granted(g) => g.consent_record.as_ref(),
        _ => None,
    }
}

fn set_of(scopes: &[String]) -> BTreeSet<String> {
    scopes.iter().cloned().collect()
}

/// The new record as sets: (scopes, declined, expires_at).
type RecordSets = (BTreeSet<String>, BTreeSet<String>, Option<u64>);

fn record_sets(outcome: &Outcome) -> Option<RecordSets> {
    record_of(outcome).map(|r| (set_of(&r.scopes), set_of(&r.declined), r.expires_at))
}

fn verdicts_of(outcome: &Outcome) -> Vec<(String, Option<String>)> {
    match outcome {
        Outcome::Granted(g) => g.verdicts.clone(),
        Outcome::Consent { verdicts, .. } => verdicts.clone(),
        Outcome::Error(_) => Vec::new(),
    }
}

// ---------------------------------------------------------------------------
// Independent facts about a document and a request (from DESIGN.md, not the
// model's code)
// ---------------------------------------------------------------------------

/// The flow, with RFC 8628's URN read as `device_code`.
fn flow_of(req: &Req) -> &str {
    if req.flow == DEVICE_URN {
        "device_code"
    } else {
        &req.flow
    }
}

/// DESIGN §3.1 check 5: the audience in force. A refresh keeps its grant's
/// (`original_audience`, no default); other flows take the parameter, else
/// the default audience.
fn audience_in_force(doc: &Doc, req: &Req) -> Option<String> {
    if flow_of(req) == "refresh_token" {
        req.original_audience.clone()
    } else {
        req.audience
            .clone()
            .or_else(|| doc.settings.default_audience.clone())
    }
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

/// DESIGN §3.1 check 3 and §3.6: the `prompt` values of an
/// `authorization_code` request, as a set (`""` and spaces only: empty);
/// `None` when the parameter is invalid. Other flows ignore `prompt`: empty.
fn prompt_values(req: &Req) -> Option<BTreeSet<&str>> {
    if flow_of(req) != "authorization_code" {
        return Some(BTreeSet::new());
    }
    let mut values = BTreeSet::new();
    for value in req
        .prompt
        .as_deref()
        .unwrap_or("")
        .split(' ')
        .filter(|v| !v.is_empty())
    {
        if !["none", "login", "consent", "select_account"].contains(&value) {
            return None;
        }
        values.insert(value);
    }
    if values.contains("none") && values.len() > 1 {
        return None;
    }
    Some(values)
}

fn prompt_has(req: &Req, value: &str) -> bool {
    prompt_values(req).is_some_and(|values| values.contains(value))
}

/// The hand-made classification of a redirect URI ([`REDIRECTS`]):
/// `Some(true)` when verifiable.
fn redirect_verifiable(uri: &str) -> Option<bool> {
    REDIRECTS
        .iter()
        .find(|(u, _)| *u == uri)
        .map(|&(_, verifiable)| verifiable)
}

/// DESIGN §2, §3.6: an `authorization_code` request with a non-empty,
/// unverifiable `redirect_uri` (by the table; every generated URI is in it).
fn unverifiable_redirect(req: &Req) -> bool {
    flow_of(req) == "authorization_code"
        && req
            .redirect_uri
            .as_deref()
            .is_some_and(|uri| !uri.is_empty() && redirect_verifiable(uri) == Some(false))
}

/// DESIGN §2: the reserved OIDC scopes.
fn is_oidc(token: &str) -> bool {
    OIDC.contains(&token)
}

/// DESIGN §2: a client's grant types, as listed, or by default
/// `client_credentials` for a machine and `authorization_code` and
/// `refresh_token` for the others.
fn grant_types_of(client: &model::Client) -> Vec<String> {
    match &client.grant_types {
        Some(listed) => listed.clone(),
        None if client.kind == "machine_to_machine" => vec!["client_credentials".to_string()],
        None => vec!["authorization_code".to_string(), "refresh_token".to_string()],
    }
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
    let audience = audience_in_force(doc, req);
    let api = api_for(doc, audience.as_deref());
    match (flow_of(req), api) {
        ("client_credentials", Some(api)) => {
            let grant = client_grant(doc, &req.client_id, &api.audience, "client").unwrap_or_default();
            scope_names(api)
                .into_iter()
                .filter(|s| grant.contains(s))
                .collect()
        }
        ("authorization_code" | "device_code", Some(api)) => scope_names(api)
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

/// Where a scope that passed §3.3 stands after consent (DESIGN §3.3's last
/// paragraph, §3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Due {
    /// Granted without a prompt.
    Pass,
    /// On the consent prompt.
    Ask,
    /// Refused: `consent_denied` (declined earlier) or `consent_missing` (refresh).
    Refuse(&'static str),
}

/// What DESIGN §3.4 needs to know of one request, computed here from the
/// document and the request.
struct ConsentFacts<'a> {
    req: &'a Req,
    flow: &'a str,
    audience: Option<String>,
    api: Option<&'a model::Api>,
    client: Option<&'a model::Client>,
    user_id: &'a str,
    /// The records that match (user, client, audience in force) and have not
    /// expired at `now`.
    matching: Vec<&'a Consent>,
    prompt_consent: bool,
    unverifiable: bool,
}

impl<'a> ConsentFacts<'a> {
    fn new(doc: &'a Doc, req: &'a Req) -> Self {
        let audience = audience_in_force(doc, req);
        let user_id = req.user.as_ref().map_or("", |u| u.id.as_str());
        let matching = req
            .consents
            .iter()
            .filter(|r| {
                r.user_id == user_id
                    && r.client_id == req.client_id
                    && r.audience == audience
                    && unexpired(r, req.now)
            })
            .collect();
        ConsentFacts {
            req,
            flow: flow_of(req),
            api: api_for(doc, audience.as_deref()),
            audience,
            client: client_for(doc, &req.client_id),
            user_id,
            matching,
            prompt_consent: prompt_has(req, "consent"),
            unverifiable: unverifiable_redirect(req),
        }
    }

    fn def(&self, scope: &str) -> Option<&'a model::ScopeDef> {
        self.api
            .and_then(|api| api.scopes.iter().find(|def| def.name == scope))
    }

    /// Defined `consent: always` by the API in force.
    fn always(&self, scope: &str) -> bool {
        self.def(scope).is_some_and(|def| def.consent == "always")
    }

    /// Defined `required` by the API in force.
    fn required(&self, scope: &str) -> bool {
        self.def(scope).is_some_and(|def| def.required)
    }

    /// A matching record holds it in `scopes`.
    fn held(&self, scope: &str) -> bool {
        self.matching.iter().any(|r| r.scopes.iter().any(|s| s == scope))
    }

    /// A matching record holds it in `declined`.
    fn declined(&self, scope: &str) -> bool {
        self.matching
            .iter()
            .any(|r| r.declined.iter().any(|s| s == scope))
    }

    /// A record passed for this user, client and audience, expiry ignored.
    fn is_for(&self, record: &Consent) -> bool {
        record.user_id == self.user_id
            && record.client_id == self.req.client_id
            && record.audience == self.audience
    }

    /// §3.4 "Who must consent", for a scope that passed §3.3.
    fn needs_consent(&self, scope: &str) -> bool {
        let first_party = self.client.is_some_and(|c| c.first_party);
        !first_party
            || self.api.is_some_and(|api| !api.allow_skipping_consent)
            || self.flow == "device_code"
            || self.unverifiable
            || self.always(scope)
            || self.prompt_consent
    }

    /// §3.4 "Remembered consent counts".
    fn remembered_counts(&self, scope: &str) -> bool {
        !(self.prompt_consent || self.flow == "device_code" || self.unverifiable || self.always(scope))
    }

    /// A scope that passed §3.3: granted, asked or refused by consent.
    fn due(&self, scope: &str) -> Due {
        match self.flow {
            "client_credentials" => Due::Pass,
            "refresh_token" => {
                // §3.3, last paragraph; §3.6: a one-time scope never comes back.
                let missing = self.declined(scope)
                    || self.always(scope)
                    || (self.needs_consent(scope) && !self.held(scope));
                if missing {
                    Due::Refuse("consent_missing")
                } else {
                    Due::Pass
                }
            }
            _ => {
                if !self.needs_consent(scope) {
                    Due::Pass
                } else if !self.remembered_counts(scope) {
                    Due::Ask
                } else if self.held(scope) && !self.declined(scope) {
                    Due::Pass
                } else if self.declined(scope) && !self.required(scope) {
                    Due::Refuse("consent_denied")
                } else {
                    Due::Ask
                }
            }
        }
    }

    /// Why an approval of `approved` for `prompt` is refused (decisions item
    /// 1), if it is.
    fn approval_refusal(&self, doc: &Doc, prompt: &[String], approved: &[String]) -> Option<&'static str> {
        if approved.iter().any(|a| !prompt.contains(a)) {
            return Some("invalid_request");
        }
        if prompt.iter().any(|t| self.required(t) && !approved.contains(t)) {
            return Some("access_denied");
        }
        if self.req.now.is_none()
            && (doc.settings.consent_lifetime.is_some()
                || self
                    .req
                    .consents
                    .iter()
                    .any(|r| self.is_for(r) && r.expires_at.is_some()))
        {
            return Some("invalid_request");
        }
        None
    }

    /// §3.4 "The new consent record", as sets.
    fn new_record(&self, doc: &Doc, prompt: &[String], approved: &[String]) -> RecordSets {
        let unticked: BTreeSet<String> = prompt.iter().filter(|t| !approved.contains(t)).cloned().collect();
        let held: BTreeSet<String> = self
            .matching
            .iter()
            .flat_map(|r| r.scopes.iter().cloned())
            .collect();
        let was_declined: BTreeSet<String> = self
            .matching
            .iter()
            .flat_map(|r| r.declined.iter().cloned())
            .collect();
        let scopes: BTreeSet<String> = held
            .difference(&unticked)
            .cloned()
            .chain(approved.iter().cloned())
            .filter(|s| !self.always(s))
            .collect();
        let declined: BTreeSet<String> = was_declined
            .union(&unticked)
            .filter(|s| !scopes.contains(*s) && !self.always(s))
            .cloned()
            .collect();
        let lifetime = doc
            .settings
            .consent_lifetime
            .zip(self.req.now)
            .map(|(lifetime, now)| now.saturating_add(u64::try_from(lifetime).unwrap_or(0)));
        let expires_at = self
            .matching
            .iter()
            .filter_map(|r| r.expires_at)
            .chain(lifetime)
            .min();
        (scopes, declined, expires_at)
    }
}

/// DESIGN §3.5 `permissions` (decisions item 2) of a grant with these
/// verdicts: in a user flow on an API with `rbac`, the API's scopes in the
/// user's effective permissions, in definition order: an asked one when it
/// was granted; one not asked unless the client's grant would refuse it, it
/// is `consent: always`, a matching record declines it, or it needs consent
/// and no matching record holds it (records count whatever the prompt, flow
/// or redirect). In client credentials, the granted API scopes. Else empty.
fn expected_permissions(doc: &Doc, req: &Req, verdicts: &[(String, Option<String>)]) -> Vec<String> {
    let facts = ConsentFacts::new(doc, req);
    let Some(api) = facts.api else {
        return Vec::new();
    };
    let granted = |s: &str| verdicts.iter().any(|(t, reason)| t == s && reason.is_none());
    if facts.flow == "client_credentials" {
        return scope_names(api).into_iter().filter(|s| granted(s)).collect();
    }
    let Some(user) = req.user.as_ref().filter(|_| api.rbac) else {
        return Vec::new();
    };
    let permitted = user_permissions(doc, user);
    let restriction = (api.user_access == "require_client_grant")
        .then(|| client_grant(doc, &req.client_id, &api.audience, "user").unwrap_or_default());
    scope_names(api)
        .into_iter()
        .filter(|s| permitted.contains(&(api.audience.clone(), s.clone())))
        .filter(|s| match verdicts.iter().any(|(t, _)| t == s) {
            true => granted(s),
            false => {
                let refused = restriction.as_ref().is_some_and(|grant| !grant.contains(s));
                let lacks =
                    facts.always(s) || facts.declined(s) || (facts.needs_consent(s) && !facts.held(s));
                !refused && !lacks
            }
        })
        .collect()
}

/// The same decision with nothing left for consent to do (DESIGN §3.4): every
/// client first-party on APIs that let it skip, no `consent: always`, no
/// `declined`, no `prompt`, no redirect, and the device flow made an
/// authorization code flow. §3.1–§3.3 do not look at any of these, so its
/// verdicts are those of §3.3 alone, and its errors those of §3.1 (an invalid
/// `prompt` of an authorization code request is kept, to keep its error).
fn without_consent(doc: &Doc, req: &Req) -> (Doc, Req) {
    let (mut free, mut free_req) = (doc.clone(), req.clone());
    for api in &mut free.apis {
        api.allow_skipping_consent = true;
        for def in &mut api.scopes {
            def.consent = "default".to_string();
        }
    }
    for client in &mut free.clients {
        client.first_party = true;
    }
    for record in &mut free_req.consents {
        record.declined.clear();
    }
    free_req.redirect_uri = None;
    let allows_device =
        client_for(doc, &req.client_id).is_some_and(|c| grant_types_of(c).iter().any(|g| g == "device_code"));
    match flow_of(req) {
        "device_code" if allows_device => {
            free_req.flow = "authorization_code".to_string();
            free_req.prompt = None;
            if let Some(client) = free.clients.iter_mut().find(|c| c.client_id == req.client_id) {
                let mut types = grant_types_of(client);
                types.push("authorization_code".to_string());
                client.grant_types = Some(types);
            }
        }
        "authorization_code" if prompt_values(req).is_some() => free_req.prompt = None,
        _ => {}
    }
    (free, free_req)
}

// ---------------------------------------------------------------------------
// Edits used by several properties
// ---------------------------------------------------------------------------

/// One element removed from the policy or the request (invariants 8 and 9).
#[derive(Debug, Clone)]
enum Removal {
    Scope(usize, usize),
    DefaultScope(usize, usize),
    RolePermission(usize, usize),
    GrantEntry(usize, usize, usize),
    /// A whole consent record, among those [`removable_record`] allows.
    Consent(usize),
    /// One scope out of a record's `scopes` (never out of its `declined`).
    ConsentScope(usize, usize),
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
        2 => (pick(), pick()).prop_map(|(c, s)| Removal::ConsentScope(c, s)),
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

/// Whether removing this record can only take consent away.
///
/// Not so for a record that *declines* something: a declined scope is
/// `consent_denied` (or `consent_missing` in a refresh) for every client,
/// first-party ones too (DESIGN §3.3, §3.4), so forgetting the refusal can
/// legitimately grant it. Nor, in a request without `now`, for a record with
/// an expiry: its mere presence refuses an approval (DESIGN §3.6, so that a
/// host that forgets the clock cannot make expiring consent permanent), and
/// removing it lets the approval through.
fn removable_record(req: &Req, record: &Consent) -> bool {
    record.declined.is_empty() && (record.expires_at.is_none() || req.now.is_some())
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
        Removal::Consent(i) => {
            let removable: Vec<usize> = (0..req.consents.len())
                .filter(|&k| removable_record(req, &req.consents[k]))
                .collect();
            match at(&removable, *i) {
                Some(k) => {
                    req.consents.remove(k);
                    true
                }
                None => false,
            }
        }
        Removal::ConsentScope(c, s) => {
            let n = req.consents.len();
            n > 0 && remove_at(&mut req.consents[c % n].scopes, *s)
        }
        Removal::UserPermission(i) => req
            .user
            .as_mut()
            .is_some_and(|u| remove_at(&mut u.permissions, *i)),
        Removal::UserRole(i) => req.user.as_mut().is_some_and(|u| remove_at(&mut u.roles, *i)),
    }
}

/// The answer of a user who keeps answering the same way (invariant 9): a
/// tampered approval becomes an honest one, a refusal declines every scope on
/// the prompt, and every approval keeps the `required` scopes. (A refusal, or
/// leaving a required scope out, is `access_denied` as a whole: once a
/// removal leaves nothing to ask, or removes the required scope itself, the
/// request is granted, so comparing refusals would compare a question with no
/// question.)
fn honest(r: &AnsR) -> AnsR {
    match r {
        AnsR::Tampered(mask, _) => AnsR::Approve {
            mask: *mask,
            twice: false,
            keep_required: true,
        },
        AnsR::Deny => AnsR::Approve {
            mask: 0,
            twice: false,
            keep_required: true,
        },
        AnsR::Approve { mask, twice, .. } => AnsR::Approve {
            mask: *mask,
            twice: *twice,
            keep_required: true,
        },
        AnsR::Nothing => AnsR::Nothing,
    }
}

/// The request as a refresh of a grant for its audience in force, by a
/// client that has the `refresh_token` grant type, with a user and an
/// original scope (invariants 8 and 16).
fn as_refresh(doc: &Doc, req: &Req, which: usize) -> (Doc, Req) {
    let (mut doc, mut req) = (doc.clone(), req.clone());
    if flow_of(&req) != "refresh_token" {
        // The records' "effective" audience was the audience in force of the
        // original flow: the refreshed grant was made for it.
        req.original_audience = audience_in_force(&doc, &req);
        req.flow = "refresh_token".to_string();
    }
    let allows = |c: &model::Client| grant_types_of(c).iter().any(|g| g == "refresh_token");
    if !client_for(&doc, &req.client_id).is_some_and(allows) {
        let candidates: Vec<String> = doc
            .clients
            .iter()
            .filter(|c| allows(c))
            .map(|c| c.client_id.clone())
            .collect();
        match at(&candidates, which) {
            Some(id) => req.client_id = id,
            None => {
                let n = doc.clients.len();
                let client = &mut doc.clients[which % n];
                client.grant_types = Some(vec![
                    "authorization_code".to_string(),
                    "refresh_token".to_string(),
                ]);
                req.client_id = client.client_id.clone();
            }
        }
    }
    if req.user.is_none() {
        req.user = Some(model::User {
            id: "alice".to_string(),
            ..Default::default()
        });
    }
    if req.original_scope.is_none() {
        req.original_scope = Some(
            req.scope
                .clone()
                .unwrap_or_else(|| "openid read:events".to_string()),
        );
    }
    (doc, req)
}

/// A change to what belongs to an API other than the request's (invariant 4).
#[derive(Debug, Clone)]
enum Foreign {
    NewApi,
    AddScopes,
    Settings(usize),
    ScopeConsent(usize),
    Metadata,
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
        2 => (0..2usize).prop_map(Foreign::ScopeConsent),
        1 => Just(Foreign::Metadata),
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
    let effective = audience_in_force(doc, req);
    let asked: Vec<String> = request_tokens(req);
    let api_names: Vec<String> = asked
        .iter()
        .filter(|t| !is_oidc(t) && !t.contains('*'))
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
                .enumerate()
                .map(|(i, name)| model::ScopeDef {
                    consent: if i % 3 == 1 { "always" } else { "default" }.to_string(),
                    required: i % 2 == 0,
                    ..scope_def(name, "foreign")
                })
                .collect();
            scopes.push(scope_def("zz:foreign", ""));
            doc.apis.push(model::Api {
                audience,
                rbac: other % 2 == 0,
                allow_offline_access: true,
                default_scopes: vec!["zz:foreign".to_string()],
                scopes,
                metadata: metadata_from(&[(0, 0)]),
                ..Default::default()
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
                doc.apis[target].scopes.push(scope_def("zz:foreign", ""));
            }
        }
        Foreign::AddScopes => {
            let api = &mut doc.apis[target];
            for name in api_names.iter().chain(["zz:foreign".to_string()].iter()) {
                if !is_defined(api, name) && api.scopes.len() < 12 {
                    api.scopes.push(scope_def(name, "added"));
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
        Foreign::ScopeConsent(which) => {
            for def in &mut doc.apis[target].scopes {
                if *which == 0 {
                    def.consent = if def.consent == "always" {
                        "default"
                    } else {
                        "always"
                    }
                    .to_string();
                } else {
                    def.required = !def.required;
                }
            }
        }
        Foreign::Metadata => {
            let api = &mut doc.apis[target];
            api.metadata
                .insert("owner".to_string(), "someone else".to_string());
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
                    user_id: user_id.clone(),
                    client_id: req.client_id.clone(),
                    audience: Some(audience.clone()),
                    scopes: scopes.clone(),
                    declined: Vec::new(),
                    expires_at: None,
                });
                // And one that declines everything, expiring (approvals
                // without `now` look at expiries of this audience only).
                req.consents.push(Consent {
                    user_id,
                    client_id: req.client_id.clone(),
                    audience: Some(audience.clone()),
                    scopes: Vec::new(),
                    declined: scopes,
                    expires_at: Some(NOW + 10),
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

    /// 1. G ⊆ asked ∩ (defined scopes of the audience in force ∪ OIDC); with
    /// a client grant in force, API scopes in G are in the grant.
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
        let audience = audience_in_force(doc, req);
        let api = api_for(doc, audience.as_deref());
        let restriction = match (flow_of(req), api) {
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
                is_oidc(t) || api.is_some_and(|api| is_defined(api, t)),
                "{t:?} granted but neither OIDC nor defined by {audience:?}"
            );
            if let Some(grant) = &restriction {
                prop_assert!(is_oidc(t) || grant.contains(t), "{t:?} granted outside the client grant {grant:?}");
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
                let audience = match api_for(&doc, audience_in_force(&doc, &req).as_deref()) {
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
                if flow_of(&req) == "refresh_token" {
                    // A refresh is bound to its grant's audience: make it this one.
                    req.original_audience = Some(audience.clone());
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
    /// the audience in force (closure computed here as a fixpoint); a scope
    /// refused as `not_permitted` is indeed not permitted; and a grant's
    /// `permissions` are exactly those of DESIGN §3.5 (decisions item 2),
    /// recomputed here: the user's effective permissions on the API, less
    /// what this client could not get without a consent it lacks. To reach
    /// that often, a matching record holding and declining some of the API's
    /// scopes (asked or not) is sometimes added.
    #[test]
    fn inv03_rbac_bound(case in case(), record in prop::option::weighted(0.5, (any::<u64>(), any::<u64>()))) {
        let Case { doc, req, ans } = &case;
        let mut doc = doc.clone();
        for api in &mut doc.apis {
            api.rbac = true;
        }
        let mut req = req.clone();
        if let Some((held, declined)) = record {
            let audience = audience_in_force(&doc, &req);
            let names = api_for(&doc, audience.as_deref()).map(scope_names).unwrap_or_default();
            req.consents.push(Consent {
                user_id: req.user.as_ref().map_or(String::new(), |u| u.id.clone()),
                client_id: req.client_id.clone(),
                audience,
                scopes: subset(&names, held),
                declined: subset(&names, declined),
                expires_at: None,
            });
        }
        let req = &req;
        let policy = built(&doc)?;
        let answer = answer_for(&policy, &doc, req, ans)?;
        let outcome = real(&policy, &doc, req, &answer)?;
        let (Some(user), true) = (&req.user, flow_of(req) != "client_credentials") else {
            return Ok(());
        };
        let audience = audience_in_force(&doc, req).unwrap_or_default();
        let permitted = user_permissions(&doc, user);
        for t in granted_list(&outcome) {
            if !is_oidc(&t) {
                prop_assert!(
                    permitted.contains(&(audience.clone(), t.clone())),
                    "{t:?} granted for {audience:?}, the user may only {permitted:?}"
                );
            }
        }
        for (t, reason) in verdicts_of(&outcome) {
            if reason.as_deref() == Some("not_permitted") {
                prop_assert!(!permitted.contains(&(audience.clone(), t.clone())), "{t:?} is permitted");
            }
        }
        if let Outcome::Granted(g) = &outcome {
            for p in &g.permissions {
                prop_assert!(permitted.contains(&(audience.clone(), p.clone())), "permissions hold {p:?}");
            }
            let expected = expected_permissions(&doc, req, &g.verdicts);
            prop_assert_eq!(&g.permissions, &expected, "verdicts {:?}", g.verdicts);
        }
    }

    /// 4. Changing what belongs to another API (its scopes, their `consent`
    /// and `required`, its settings and metadata, roles' permissions and client
    /// grants on it, consents for it — holding or declining — and direct
    /// permissions for it, or adding a whole API) changes nothing of the
    /// decision, `permissions` and the new record included.
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
        prop_assert_eq!(&before, &after, "after {:?}: {}\n{}", change, json(&doc2), json(&req2));
    }

    /// 5. Consent (DESIGN §3.3's last paragraph, §3.4), recomputed here: which
    /// scopes need consent (third party; first party on an API that does not
    /// let it skip; the device flow; an unverifiable redirect; `consent:
    /// always`; `prompt=consent`), whether remembered consent counts, and
    /// which scopes are covered or declined by the matching records.
    ///
    /// The scopes that pass §3.3 ("allowed") come from the same request with
    /// nothing left for consent to do ([`without_consent`]); each of them must
    /// then be granted, asked or refused exactly as recomputed: the prompt
    /// lists exactly the allowed scopes that need consent and are neither
    /// covered nor declined (in asked order, `required` marked), a declined
    /// one is `consent_denied`, a refresh refuses what lacks consent with
    /// `consent_missing`, and `prompt=none` turns a prompt into
    /// `consent_required`. After an answer: every granted scope passed without
    /// the prompt or was approved on it; an approval is refused in the order
    /// of decisions item 1; a denial is `access_denied`; and the new record is
    /// the formula of §3.4 (as sets).
    #[test]
    fn inv05_consent(case in case()) {
        let Case { doc, req, ans } = &case;
        let policy = built(doc)?;
        let stopped = real(&policy, doc, req, &Answer::None)?;
        let answer = answer_for(&policy, doc, req, ans)?;
        let answered = real(&policy, doc, req, &answer)?;

        let (free, free_req) = without_consent(doc, req);
        let free_policy = built(&free)?;
        let unasked = real(&free_policy, &free, &free_req, &Answer::None)?;
        let free_verdicts = match &unasked {
            Outcome::Error(code) => {
                prop_assert_eq!(error_of(&stopped), Some(code.as_str()), "{:?}", stopped);
                return Ok(());
            }
            Outcome::Consent { .. } => {
                return Err(TestCaseError::fail(format!("a request with nothing to consent to asks: {unasked:?}")));
            }
            Outcome::Granted(g) => g.verdicts.clone(),
        };

        let facts = ConsentFacts::new(doc, req);
        let mut expected: Vec<(String, Option<String>)> = Vec::new();
        let mut expected_prompt: Vec<String> = Vec::new();
        let mut passed: Vec<String> = Vec::new();
        for (t, reason) in free_verdicts {
            let reason = match reason {
                Some(reason) => Some(reason),
                None => match facts.due(&t) {
                    Due::Pass => {
                        passed.push(t.clone());
                        None
                    }
                    Due::Ask => {
                        expected_prompt.push(t.clone());
                        None
                    }
                    Due::Refuse(reason) => Some(reason.to_string()),
                },
            };
            expected.push((t, reason));
        }
        let expected_required: Vec<String> =
            expected_prompt.iter().filter(|t| facts.required(t)).cloned().collect();

        let prompt = match &stopped {
            Outcome::Error(code) => {
                prop_assert_eq!(code.as_str(), "consent_required", "{:?} without consent: {:?}", stopped, unasked);
                prop_assert!(prompt_has(req, "none"), "consent_required without prompt=none");
                prop_assert!(!expected_prompt.is_empty(), "consent_required, with nothing to ask");
                return Ok(());
            }
            Outcome::Consent { prompt, required, verdicts, .. } => {
                prop_assert!(!prompt_has(req, "none"), "prompt=none, and yet a prompt");
                prop_assert_eq!(prompt, &expected_prompt, "allowed verdicts {:?}", expected);
                prop_assert_eq!(required, &expected_required);
                prop_assert_eq!(verdicts, &expected);
                prompt.clone()
            }
            Outcome::Granted(g) => {
                prop_assert!(expected_prompt.is_empty(), "no prompt, expected {expected_prompt:?}");
                prop_assert_eq!(&g.verdicts, &expected);
                prop_assert!(g.consent_record.is_none(), "a record without a prompt");
                prop_assert_eq!(&answered, &stopped, "an answer to no question changed the decision");
                return Ok(());
            }
        };

        match &answer {
            Answer::None => prop_assert_eq!(&answered, &stopped),
            Answer::Deny => prop_assert_eq!(error_of(&answered), Some("access_denied")),
            Answer::Approve(approved) => match facts.approval_refusal(doc, &prompt, approved) {
                Some(code) => prop_assert_eq!(error_of(&answered), Some(code), "{:?}", answered),
                None => {
                    let Outcome::Granted(g) = &answered else {
                        return Err(TestCaseError::fail(format!("an acceptable approval is refused: {answered:?}")));
                    };
                    for t in &g.granted {
                        prop_assert!(passed.contains(t) || approved.contains(t), "{t:?} granted without consent");
                    }
                    let expected_granted: Vec<String> = expected
                        .iter()
                        .filter(|(t, reason)| reason.is_none() && (passed.contains(t) || approved.contains(t)))
                        .map(|(t, _)| t.clone())
                        .collect();
                    prop_assert_eq!(&g.granted, &expected_granted);
                    for (t, reason) in &g.verdicts {
                        if prompt.contains(t) && !approved.contains(t) {
                            prop_assert_eq!(reason.as_deref(), Some("consent_denied"), "unticked {:?}", t);
                        }
                    }
                    let record = record_sets(&answered);
                    prop_assert_eq!(record, Some(facts.new_record(doc, &prompt, approved)));
                }
            },
        }
    }

    /// 6. Shuffling the tokens of the scope parameter (and of the original
    /// scope) or repeating some changes neither G (as a set) nor the error,
    /// the prompt or the new record.
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
            prop_assert_eq!(record_sets(&one), record_sets(&two));
        }
    }

    /// 7. With `unknown_scopes = ignore`, a non-empty request below the limits
    /// that ends in a grant, asking for more (also within the limits; for a
    /// refresh, more of the original scope) ends in a grant that keeps
    /// everything granted before. Approvals: the same ones, plus some of the
    /// new prompt scopes, plus every `required` scope on either prompt.
    ///
    /// Revision 2 adds three ways for the larger request to end otherwise,
    /// each the documented answer and none about what was asked before:
    /// - a newly asked `required` scope must be approved, or the whole prompt
    ///   is refused (`access_denied`, DESIGN §3.4): the user here approves it;
    /// - under `prompt=none`, a newly asked scope that needs the prompt turns
    ///   the decision into `consent_required` (OIDC Core §3.1.2.6). `none`
    ///   changes nothing else, so the grant is then compared on the same
    ///   request without it;
    /// - when the first request needed no prompt and the second does, its
    ///   approval is refused (`invalid_request`) if the request has no `now`
    ///   while the policy sets `consent_lifetime` or a record for the same
    ///   user, client and audience carries an expiry (DESIGN §3.6).
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
            let added = if flow_of(req) == "refresh_token" {
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
            AnsR::Approve { mask, .. } | AnsR::Tampered(mask, _) => *mask,
            AnsR::Nothing | AnsR::Deny => u64::MAX,
        };
        let (prompt1, approved1, one) = decide_approving(&policy, &doc, req, approvals)?;
        let Outcome::Granted(g1) = &one else { return Ok(()) };
        let mut stopped2 = real(&policy, &doc, &req2, &Answer::None)?;
        if error_of(&stopped2) == Some("consent_required") {
            prop_assert!(prompt_has(&req2, "none"), "consent_required without prompt=none");
            req2.prompt = None;
            stopped2 = real(&policy, &doc, &req2, &Answer::None)?;
            prop_assert!(matches!(stopped2, Outcome::Consent { .. }), "consent_required, yet no prompt: {stopped2:?}");
        }
        let (prompt2, required2) = match &stopped2 {
            Outcome::Consent { prompt, required, .. } => (prompt.clone(), required.clone()),
            _ => (Vec::new(), Vec::new()),
        };
        let new_scopes: Vec<String> = prompt2.iter().filter(|t| !prompt1.contains(t)).cloned().collect();
        let mut approved2 = approved1.clone();
        approved2.extend(subset(&new_scopes, mask));
        approved2.extend(required2.iter().filter(|t| !approved2.contains(t)).cloned().collect::<Vec<_>>());
        let two = real(&policy, &doc, &req2, &Answer::Approve(approved2))?;
        let g2 = match &two {
            Outcome::Granted(g2) => g2,
            Outcome::Error(code) if code == "invalid_request" && prompt1.is_empty() && !prompt2.is_empty() => {
                let facts = ConsentFacts::new(&doc, req);
                let clockless = req.now.is_none()
                    && (doc.settings.consent_lifetime.is_some()
                        || req.consents.iter().any(|r| facts.is_for(r) && r.expires_at.is_some()));
                prop_assert!(clockless, "an approval refused with invalid_request, with `now`: {two:?}");
                return Ok(());
            }
            _ => {
                return Err(TestCaseError::fail(format!("asking for more is not a grant: {two:?} (before: {one:?})")));
            }
        };
        for t in &g1.granted {
            prop_assert!(g2.granted.contains(t), "{t:?} granted for {raw:?} but not for {:?}", req2.scope);
        }
    }

    /// 8. A refresh grant ⊆ original_scope; also after the policy (or the
    /// request) loses a permission, when it is moreover ⊆ the grant before.
    /// A refresh never asks for consent. (A removed consent record is never
    /// one that declines something: see [`removable_record`].)
    #[test]
    fn inv08_refresh_never_widens(case in case(), removal in removal_r(), which in pick()) {
        let (doc, req) = as_refresh(&case.doc, &case.req, which);
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
    /// entry, a consent record or one scope it holds, or a user's role or
    /// direct permission never adds to G (for the same honest answer).
    ///
    /// Not every consent record: removing one that *declines* something
    /// forgets a refusal, which can legitimately add the declined scope to G;
    /// so does removing, in a request without `now`, one with an expiry (see
    /// [`removable_record`]). `prompt=none` is left out of the request: it
    /// turns any decision that would prompt into an error as a whole, so a
    /// removal that leaves nothing to ask would turn that error into a grant;
    /// `none` changes nothing else. And a case whose honest approval is
    /// refused only because the request has no `now` (DESIGN §3.6) is not
    /// compared: a removal that leaves nothing to ask grants without that
    /// approval, which is again a question against no question.
    #[test]
    fn inv09_policy_monotonicity(case in case(), removal in removal_r()) {
        let Case { doc, req, ans } = &case;
        let mut req = req.clone();
        if prompt_has(&req, "none") {
            req.prompt = None;
        }
        let req = &req;
        let policy = built(doc)?;
        let answer = answer_for(&policy, doc, req, &honest(ans))?;
        let before = real(&policy, doc, req, &answer)?;
        let asked_before = matches!(real(&policy, doc, req, &Answer::None)?, Outcome::Consent { .. });
        if asked_before && error_of(&before) == Some("invalid_request") {
            // An honest approval names only prompt scopes: this is the
            // approval without `now`.
            return Ok(());
        }
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
        if matches!(outcome, Outcome::Error(_)) {
            return Ok(());
        }
        let tokens: Vec<String> = verdicts_of(&outcome).into_iter().map(|(t, _)| t).collect();
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
    /// print and decide identically, the new record and `permissions` included.
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
                (Ok(Decision::ConsentRequired(prompt)), Answer::Approve(a)) => match prompt.approve(a) {
                    Ok(grant) => format!("{grant:?} {:?}", grant.permissions()),
                    Err(error) => format!("{error:?}"),
                },
                (Ok(Decision::ConsentRequired(prompt)), Answer::Deny) => format!("{:?}", prompt.deny()),
                (Ok(Decision::Granted(grant)), _) => {
                    format!("{} {} {:?}", grant.scope_string(), grant.scope_changed(), grant.permissions())
                }
                (other, _) => format!("{other:?}"),
            };
            (first, answered)
        };
        prop_assert_eq!(run(&one), run(&two));
        prop_assert_eq!(run(&one), run(&one));
    }

    /// 12. Totality: arbitrary text, damaged documents and hostile requests
    /// (any `prompt`, `redirect_uri`, `original_audience` and `now`, records
    /// that decline and expire) give `Ok` or a typed error, never a panic;
    /// every policy problem has a path from the document root, every request
    /// error a safe description.
    #[test]
    fn inv12_totality(
        case in case(),
        text in "\\PC{0,120}",
        cut in pick(),
        junk in "[\\PC\\t\\n]{0,8}",
        damage in vec((0..18usize, pick(), 0..HOSTILE.len()), 1..=4),
        client_id in "\\PC{0,12}",
        audience in prop::option::of("\\PC{0,24}"),
        scope in prop::option::of("[ -~\\t\\u{a0}\\u{430}]{0,48}"),
        original in prop::option::of("[ -~\\t]{0,48}"),
        approvals in vec("\\PC{0,12}", 0..4),
        flow in 0..4usize,
        big in prop::bool::weighted(0.05),
        context in (
            prop::option::of(prop_oneof![(0..PROMPTS.len()).prop_map(|i| PROMPTS[i].to_string()), "\\PC{0,16}"]),
            prop::option::of(prop_oneof![(0..REDIRECTS.len()).prop_map(|i| REDIRECTS[i].0.to_string()), "\\PC{0,40}"]),
            prop::option::of("\\PC{0,24}"),
            prop::option::of(any::<u64>()),
        ),
    ) {
        let (prompt, redirect_uri, original_audience, now) = context;
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
        let scopes = |tokens: &[&str]| tokens.iter().filter_map(|t| Scope::new(t).ok()).collect::<Vec<_>>();
        let mut records = vec![
            ConsentRecord::new(client_id.clone(), client_id.clone(), audience.as_deref())
                .with_scopes(scopes(&["a", "openid", "read:events"]))
                .with_declined(scopes(&["read:*", "a"])),
            ConsentRecord::new(client_id.clone(), client_id.clone(), original_audience.as_deref())
                .with_scopes(scopes(&["read:events"]))
                .with_expires_at(now.unwrap_or(NOW)),
        ];
        if big {
            records.push(ConsentRecord::new(client_id.clone(), client_id.clone(), audience.as_deref())
                .with_declined(scopes(&raw_tokens(&big_scope))));
        }
        let mut request = Request::new(&client_id)
            .flow(base_flow(flow))
            .consents(&records)
            .maybe_prompt(prompt.as_deref())
            .maybe_redirect_uri(redirect_uri.as_deref())
            .maybe_original_audience(original_audience.as_deref())
            .maybe_now(now);
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
            for f in 0..4 {
                check_totality(&policy, &input.request(&req).flow(base_flow(f)), &approvals)?;
            }
        }
    }

    /// 13. Round trips: the document read back from its JSON and its TOML is
    /// the same document (consent settings, metadata and `consent_lifetime`
    /// included); the policies built from the JSON, the TOML and the document
    /// itself print and decide identically; and `parse(render(scopes)) ==
    /// scopes`, also for a grant's scope string.
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
    /// accessors agree with the document (scopes, descriptions, `consent` and
    /// `required` through `definitions()` and `definition()`, defaults in
    /// definition order, metadata, `consent_lifetime`, grant types with
    /// `device_code`, role closure), and every decision's parts agree with
    /// each other (verdicts, scopes, scope string, prompt groups and
    /// descriptions, the new record's owner and shape).
    #[test]
    fn inv14_validation_soundness(case in case()) {
        let Case { doc, req, ans } = &case;
        let policy = built(doc)?;
        prop_assert_eq!(policy.apis().len(), doc.apis.len());
        prop_assert_eq!(
            policy.consent_lifetime(),
            doc.settings.consent_lifetime.map(|l| u64::try_from(l).unwrap_or(0))
        );
        let closure = role_permissions(doc);
        for api_doc in &doc.apis {
            let api = policy.api(&api_doc.audience).ok_or_else(|| TestCaseError::fail("API missing"))?;
            let defined: Vec<(String, String)> =
                api.scopes().map(|(s, d)| (s.as_str().to_string(), d.to_string())).collect();
            let expected: Vec<(String, String)> =
                api_doc.scopes.iter().map(|d| (d.name.clone(), d.description.clone())).collect();
            prop_assert_eq!(defined, expected);
            let definitions: Vec<(String, String, bool, bool)> = api
                .definitions()
                .map(|d| {
                    let always = d.consent() == ScopeConsent::Always;
                    (d.name().as_str().to_string(), d.description().to_string(), always, d.required())
                })
                .collect();
            let expected: Vec<(String, String, bool, bool)> = api_doc
                .scopes
                .iter()
                .map(|d| (d.name.clone(), d.description.clone(), d.consent == "always", d.required))
                .collect();
            prop_assert_eq!(definitions, expected);
            for def in &api_doc.scopes {
                let one = api.definition(&def.name).map(|d| (d.consent() == ScopeConsent::Always, d.required()));
                prop_assert_eq!(one, Some((def.consent == "always", def.required)), "{}", def.name);
            }
            prop_assert!(api.definition("zz:never-defined").is_none());
            let metadata: Vec<(String, String)> =
                api.metadata().iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            let expected: Vec<(String, String)> =
                api_doc.metadata.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            prop_assert_eq!(metadata, expected);
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
            for g in grant_types_of(client) {
                if !expected.contains(&g) {
                    expected.push(g);
                }
            }
            let got: Vec<String> = real_client.grant_types().iter().map(|f| f.as_str().to_string()).collect();
            prop_assert_eq!(got, expected);
            prop_assert_eq!(real_client.first_party(), client.first_party);
            prop_assert_eq!(real_client.kind().as_str(), client.kind.as_str());
            let metadata: Vec<(String, String)> =
                real_client.metadata().iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            let expected: Vec<(String, String)> =
                client.metadata.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            prop_assert_eq!(metadata, expected);
        }
        for answer in [Answer::None, answer_for(&policy, doc, req, ans)?] {
            let real = differential::real_outcome(&policy, doc, req, &answer).map_err(TestCaseError::fail)?;
            prop_assert!(real.problems.is_empty(), "{:?}", real.problems);
        }
    }

    /// 15. The real `grant` equals the reference model's on every generated
    /// input: outcome kind, granted list in order, prompt and its required
    /// marks, the redirect mark, every verdict's reason, error code,
    /// `scope_changed`, `refresh_token`, the new consent record (scopes,
    /// declined, expiry) and `permissions`.
    ///
    /// Sometimes the limits are set around the request's own size (one under,
    /// at, one over), so that the edges of `max_scope_length` and
    /// `max_scope_tokens` are compared too.
    ///
    /// Sometimes, too, the `redirect_uri` is composed from parts (scheme,
    /// userinfo, a host in one of many spellings, port, path) or the `prompt`
    /// from values and separators, beyond the hand-classified tables: the
    /// crate's classifier and parser then meet the model's on text neither
    /// was written against. The two redirect classifiers are also compared
    /// directly.
    #[test]
    fn inv15_differential(
        case in case(),
        squeeze in prop::option::weighted(0.2, (0..3usize, 0..3usize, any::<bool>())),
        composed in prop::option::weighted(0.25, (uri_r(), any::<bool>())),
        prompt in prop::option::weighted(0.1, composed_prompt_r()),
    ) {
        let Case { doc, req, ans } = &case;
        let mut doc = doc.clone();
        if let Some((length, tokens, of_original)) = squeeze {
            let raw = if of_original { &req.original_scope } else { &req.scope };
            let raw = raw.as_deref().unwrap_or("");
            doc.settings.max_scope_length = (raw.len() + 1).saturating_sub(length);
            doc.settings.max_scope_tokens = (raw_tokens(raw).len() + 1).saturating_sub(tokens);
        }
        let mut req = req.clone();
        if let Some((uri, authorization)) = composed {
            prop_assert_eq!(
                scope_policy::is_verifiable_redirect(&uri),
                model::redirect_verifiable(&uri),
                "crate and model classify {:?} differently", uri
            );
            req.redirect_uri = Some(uri);
            if authorization && flow_of(&req) != "authorization_code" {
                req.flow = "authorization_code".to_string();
                req.user.get_or_insert_with(|| model::User { id: "alice".to_string(), ..Default::default() });
            }
        }
        if let Some(prompt) = prompt {
            req.prompt = Some(prompt);
        }
        let (doc, req) = (&doc, &req);
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

    /// 16. A refresh never grants a scope that needs consent (third party;
    /// first party on an API that does not let it skip) and that no matching,
    /// unexpired record holds; nor one that a matching record declines (for
    /// every client); nor a `consent: always` scope (DESIGN §3.3, §3.6).
    #[test]
    fn inv16_refresh_keeps_withdrawn_consent_withdrawn(case in case(), which in pick()) {
        let (doc, req) = as_refresh(&case.doc, &case.req, which);
        let policy = built(&doc)?;
        let outcome = real(&policy, &doc, &req, &Answer::None)?;
        let facts = ConsentFacts::new(&doc, &req);
        for t in granted_list(&outcome) {
            prop_assert!(!facts.declined(&t), "{t:?} refreshed although a matching record declines it");
            prop_assert!(!facts.always(&t), "one-time scope {t:?} refreshed");
            if facts.needs_consent(&t) {
                prop_assert!(facts.held(&t), "{t:?} refreshed without a matching, unexpired record holding it");
            }
        }
    }

    /// 17. The record an approval yields never outlives a matching record it
    /// merged, and has an expiry whenever one of them had one; with
    /// `consent_lifetime` it expires at `now + consent_lifetime` at the latest
    /// (saturating); and without `now`, an approval while a record for the
    /// same user, client and audience carries an expiry is refused (an
    /// expiry cannot be dropped by forgetting the clock).
    ///
    /// To reach these cases often, the policy sometimes gets a
    /// `consent_lifetime`, and the request sometimes a matching record that
    /// expires, holding some asked scopes.
    #[test]
    fn inv17_expiry_never_grows(
        case in case(),
        lifetime in prop::option::weighted(0.4, 0..LIFETIMES.len()),
        expiring in prop::option::weighted(0.4, (1..1000u64, any::<u64>())),
        mask in any::<u64>(),
    ) {
        let (mut doc, mut req) = (case.doc.clone(), case.req.clone());
        if let Some(i) = lifetime {
            doc.settings.consent_lifetime = Some(LIFETIMES[i]);
        }
        if let Some((ahead, pick_mask)) = expiring {
            let scopes: Vec<String> = subset(&request_tokens(&req), pick_mask);
            req.consents.push(Consent {
                user_id: req.user.as_ref().map_or(String::new(), |u| u.id.clone()),
                client_id: req.client_id.clone(),
                audience: audience_in_force(&doc, &req),
                scopes,
                declined: Vec::new(),
                expires_at: Some(req.now.unwrap_or(NOW).saturating_add(ahead)),
            });
        }
        let policy = built(&doc)?;
        let (prompt, _, outcome) = decide_approving(&policy, &doc, &req, mask)?;
        if prompt.is_empty() {
            return Ok(());
        }
        let facts = ConsentFacts::new(&doc, &req);
        if req.now.is_none() && req.consents.iter().any(|r| facts.is_for(r) && r.expires_at.is_some()) {
            prop_assert!(record_of(&outcome).is_none(), "an approval without `now` kept no expiry: {outcome:?}");
            prop_assert_eq!(error_of(&outcome), Some("invalid_request"));
        }
        let Some(record) = record_of(&outcome) else { return Ok(()) };
        for merged in &facts.matching {
            if let Some(expires) = merged.expires_at {
                prop_assert!(
                    record.expires_at.is_some_and(|new| new <= expires),
                    "a merged record expired at {expires}, the new one at {:?}", record.expires_at
                );
            }
        }
        if let (Some(lifetime), Some(now)) = (doc.settings.consent_lifetime, req.now) {
            let limit = now.saturating_add(u64::try_from(lifetime).unwrap_or(0));
            prop_assert!(
                record.expires_at.is_some_and(|new| new <= limit),
                "consent_lifetime {lifetime} at {now}: the new record expires at {:?}", record.expires_at
            );
        }
    }

    /// 18. A declined scope (one that a matching record declines) reaches the
    /// prompt only where remembered consent does not count — `prompt=consent`,
    /// the device flow, an unverifiable redirect — or when it is `required`
    /// (the user cannot leave it out) or `consent: always` (never
    /// remembered). To reach it often, a record declining asked scopes is
    /// sometimes added.
    #[test]
    fn inv18_declined_stays_quiet(case in case(), decline in prop::option::weighted(0.5, any::<u64>())) {
        let (doc, mut req) = (case.doc.clone(), case.req.clone());
        if let Some(mask) = decline {
            req.consents.push(Consent {
                user_id: req.user.as_ref().map_or(String::new(), |u| u.id.clone()),
                client_id: req.client_id.clone(),
                audience: audience_in_force(&doc, &req),
                scopes: subset(&request_tokens(&req), !mask),
                declined: subset(&request_tokens(&req), mask),
                expires_at: None,
            });
        }
        let policy = built(&doc)?;
        let stopped = real(&policy, &doc, &req, &Answer::None)?;
        let facts = ConsentFacts::new(&doc, &req);
        let remembered_is_off = facts.prompt_consent || facts.flow == "device_code" || facts.unverifiable;
        for t in prompt_list(&stopped) {
            if facts.declined(&t) {
                prop_assert!(
                    remembered_is_off || facts.required(&t) || facts.always(&t),
                    "declined {t:?} asked again: {stopped:?}"
                );
            }
        }
    }

    /// 19. The device flow and an unverifiable redirect never skip the prompt
    /// for a scope that needs consent — and there every scope that passed
    /// §3.3 needs it (DESIGN §3.4): every granted scope was approved on this
    /// prompt, remembered consent and first-party skip notwithstanding. The
    /// prompt's and the grant's redirect mark is the URI's class by the
    /// hand-made table (never set in the device flow).
    ///
    /// The request is made a device flow, or an authorization code flow with
    /// a redirect from the table (mostly an unverifiable one).
    #[test]
    fn inv19_no_skip_without_assured_identity(
        case in case(),
        device in any::<bool>(),
        uri in prop_oneof![1 => 0..FIRST_UNVERIFIABLE, 3 => FIRST_UNVERIFIABLE..REDIRECTS.len()],
        mask in any::<u64>(),
    ) {
        let (mut doc, mut req) = (case.doc.clone(), case.req.clone());
        let flow = if device { "device_code" } else { "authorization_code" };
        if let Some(client) = doc.clients.iter_mut().find(|c| c.client_id == req.client_id) {
            let mut types = grant_types_of(client);
            if !types.iter().any(|t| t == flow) {
                types.push(flow.to_string());
                client.grant_types = Some(types);
            }
        }
        if flow_of(&req) == "refresh_token" {
            // Its records were for its original audience, the grant's.
            req.audience = req.original_audience.clone();
        }
        req.flow = flow.to_string();
        req.user.get_or_insert_with(|| model::User { id: "alice".to_string(), ..Default::default() });
        req.redirect_uri = Some(REDIRECTS[uri].0.to_string());
        let policy = built(&doc)?;
        let stopped = real(&policy, &doc, &req, &Answer::None)?;
        let (prompt, approved, outcome) = decide_approving(&policy, &doc, &req, mask)?;
        let unverifiable = !device && !REDIRECTS[uri].1;
        if let Outcome::Consent { unverifiable_redirect, .. } = &stopped {
            prop_assert_eq!(*unverifiable_redirect, unverifiable, "prompt mark of {:?} in {}", REDIRECTS[uri].0, flow);
        }
        if let Outcome::Granted(g) = &outcome {
            prop_assert_eq!(g.unverifiable_redirect, unverifiable, "grant mark of {:?} in {}", REDIRECTS[uri].0, flow);
        }
        if !device && !unverifiable {
            return Ok(());
        }
        if let Outcome::Consent { verdicts, prompt, .. } = &stopped {
            for (t, reason) in verdicts {
                prop_assert!(reason.is_some() || prompt.contains(t), "{t:?} granted before the prompt");
            }
        }
        for t in granted_list(&outcome) {
            prop_assert!(
                !prompt.is_empty() && approved.contains(&t),
                "{t:?} granted without being approved on this prompt (prompt {prompt:?}): {outcome:?}"
            );
        }
    }

    /// 20. The new record never holds a scope the user left unticked on this
    /// prompt, nor a `consent: always` scope (in `scopes` or `declined`); and
    /// every unticked scope that is not `consent: always` is in its
    /// `declined`, so it is not asked again.
    #[test]
    fn inv20_unticked_is_gone(case in case(), mask in any::<u64>()) {
        let Case { doc, req, .. } = &case;
        let policy = built(doc)?;
        let (prompt, approved, outcome) = decide_approving(&policy, doc, req, mask)?;
        let Some(record) = record_of(&outcome) else { return Ok(()) };
        let facts = ConsentFacts::new(doc, req);
        for t in prompt.iter().filter(|t| !approved.contains(t)) {
            prop_assert!(!record.scopes.contains(t), "unticked {t:?} kept in {record:?}");
            if !facts.always(t) {
                prop_assert!(record.declined.contains(t), "unticked {t:?} not declined in {record:?}");
            }
        }
        for t in record.scopes.iter().chain(&record.declined) {
            prop_assert!(!facts.always(t), "one-time {t:?} written into {record:?}");
        }
    }
}

// ---------------------------------------------------------------------------
// Helpers of invariant 15
// ---------------------------------------------------------------------------

/// Hosts in many spellings (DESIGN §3.6): loopback and unspecified IPv4 in
/// inet_aton forms, out-of-range parts, IPv6 literals (mapped, compatible,
/// zone ids, IPvFuture, broken), `localhost` variants, percent-escapes
/// (valid, invalid, non-ASCII), trailing dots, empty.
const HOSTS: [&str; 56] = [
    "example.com",
    "EXAMPLE.com.",
    "127.0.0.1",
    "127.1",
    "127.0.1",
    "0x7f.0.0.1",
    "0x7F.1",
    "0177.0.0.1",
    "0177.1",
    "127.000.000.001",
    "2130706433",
    "0x7f000001",
    "017700000001",
    "127.0.0.1.",
    "127.0.0.1..",
    "128.0.0.1",
    "126.255.255.255",
    "0",
    "0x0",
    "0.0",
    "00",
    "0x",
    "0x.0.0.1",
    "08.0.0.1",
    "256.0.0.1",
    "127.256",
    "127.16777216",
    "4294967296",
    "1.2.3.4.5",
    "[::1]",
    "[0:0:0:0:0:0:0:1]",
    "[::0:1]",
    "[::ffff:7f00:1]",
    "[::ffff:127.0.0.1]",
    "[::FFFF:127.1.2.3]",
    "[::ffff:0.0.0.0]",
    "[::ffff:127.1]",
    "[::127.0.0.1]",
    "[::]",
    "[0::0]",
    "[::1%25eth0]",
    "[v1.x]",
    "[::1",
    "[1::2::3]",
    "[2001:db8::1]",
    "localhost",
    "LocalHost.",
    "localhost..",
    "a.localhost",
    "a.LOCALHOST.",
    "localhost.com",
    "%6c%6f%63%61%6c%68%6f%73%74",
    "%31%32%37.0.0.1",
    "l%6Fcalhost%2e",
    "%zz",
    "%c3%a9xample.com",
];
const SCHEMES: [&str; 7] = [
    "https://",
    "HTTPS://",
    "hTtPs://",
    "http://",
    "https:",
    "com.example.app://",
    "https:///",
];
const USERINFO: [&str; 5] = ["", "user@", "a:b@", "@", "u%40x@"];
const PORTS: [&str; 6] = ["", ":", ":443", ":8080", ":x", ":-1"];
const TAILS: [&str; 8] = ["", "/", "/cb", "?x=1", "#f", "/a#b#c", "/[x]", "/a b"];

fn uri_r() -> impl Strategy<Value = String> {
    (
        0..SCHEMES.len(),
        0..USERINFO.len(),
        0..HOSTS.len(),
        0..PORTS.len(),
        0..TAILS.len(),
    )
        .prop_map(|(s, u, h, p, t)| {
            format!(
                "{}{}{}{}{}",
                SCHEMES[s], USERINFO[u], HOSTS[h], PORTS[p], TAILS[t]
            )
        })
}

/// A `prompt` made of values and separators (space runs, TAB, comma, `+`),
/// valid or not.
fn composed_prompt_r() -> impl Strategy<Value = String> {
    const PIECES: [&str; 7] = [
        "none",
        "login",
        "consent",
        "select_account",
        "Consent",
        "create",
        "",
    ];
    const SEPARATORS: [&str; 5] = [" ", "  ", "\t", ",", "+"];
    (
        vec(
            (
                0..PIECES.len(),
                prop_oneof![8 => Just(0usize), 2 => Just(1usize), 1 => 2..SEPARATORS.len()],
            ),
            0..4,
        ),
        0..3usize,
    )
        .prop_map(|(parts, pad)| {
            let mut out = " ".repeat(pad);
            for (i, (piece, separator)) in parts.iter().enumerate() {
                if i > 0 {
                    out.push_str(SEPARATORS[*separator]);
                }
                out.push_str(PIECES[*piece]);
            }
            out
        })
}

// ---------------------------------------------------------------------------
// Helpers of invariant 12
// ---------------------------------------------------------------------------

const HOSTILE: [&str; 27] = [
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
    "Always",
    "device_code",
    "urn:ietf:params:oauth:grant-type:device_code",
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
                0 => api.scopes.push(scope_def(&v, "")),
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
        14 if napis > 0 => {
            let api = &mut doc.apis[i % napis];
            let n = api.scopes.len();
            if n > 0 {
                api.scopes[i % n].consent = v;
            }
        }
        15 => doc.settings.consent_lifetime = Some([0, -1, i64::MIN][i % 3]),
        16 if napis > 0 && nclients > 0 => {
            if i % 2 == 0 {
                doc.apis[i % napis].metadata.insert(String::new(), v);
            } else {
                doc.clients[i % nclients].metadata.insert(String::new(), v);
            }
        }
        17 if nclients > 0 => {
            // A public client that lists client_credentials.
            let client = &mut doc.clients[i % nclients];
            client.kind = ["spa", "native"][i % 2].to_string();
            client.grant_types = Some(vec![
                "authorization_code".to_string(),
                "client_credentials".to_string(),
            ]);
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
        Flow::DeviceCode,
    ][flow % 4]
}

/// Decides, then answers the prompt (if any) with hostile approvals, with
/// nothing, and with a refusal; checks every error's description is safe.
fn check_totality(policy: &Policy, request: &Request<'_>, approvals: &[String]) -> Result<(), TestCaseError> {
    let safe = |error: &GrantError| {
        let description = error.error_description();
        !description.is_empty()
            && description
                .bytes()
                .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
    };
    match policy.grant(request) {
        Err(error) => prop_assert!(safe(&error), "{error:?}"),
        Ok(Decision::Granted(grant)) => {
            prop_assert!(differential::grant_problems(&grant).is_empty());
            let _ = grant.permissions();
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
            match prompt.approve(&on_prompt) {
                Err(error) => prop_assert!(safe(&error)),
                Ok(grant) => {
                    prop_assert!(differential::grant_problems(&grant).is_empty());
                    let _ = grant.permissions();
                }
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Generator coverage
// ---------------------------------------------------------------------------

/// Not an invariant but what makes them worth running: the generators reach
/// every error code, every refusal reason, every flow and every answer to a
/// prompt, and each of revision 2's new shapes (approval refusals, records
/// that decline and expire, required and redirect marks, `permissions`,
/// refreshes bound to their audience)
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
        let flow = flow_of(&req).to_string();
        count(format!("flow {flow}"));
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
            Outcome::Error(code) => count(format!("error {code} ({flow})")),
            Outcome::Consent {
                prompt,
                required,
                unverifiable_redirect,
                ..
            } => {
                count(format!(
                    "consent prompt ({flow}) of {} scope(s)",
                    prompt.len().min(3)
                ));
                if !required.is_empty() {
                    count("prompt mark required".to_string());
                }
                if *unverifiable_redirect {
                    count("prompt mark unverifiable_redirect".to_string());
                }
            }
            Outcome::Granted(g) => count(format!(
                "granted {} scope(s) without prompt",
                g.granted.len().min(3)
            )),
        }
        if let Outcome::Consent { prompt, .. } = &stopped {
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
            if let (Answer::Approve(approved), Some(code)) = (&answer, error_of(&outcome)) {
                let honest = approved.iter().all(|a| prompt.contains(a));
                match code {
                    "access_denied" if honest => count("approval refused: required left out".to_string()),
                    "invalid_request" if honest => count("approval refused: no now".to_string()),
                    _ => {}
                }
            }
        }
        if let Outcome::Granted(g) = &outcome {
            // Over 16 asked scopes a request no longer fits inline.
            if g.verdicts.len() > 16 {
                let path = match &stopped {
                    Outcome::Consent { .. } => "after a prompt",
                    _ => "without prompt",
                };
                count(format!("long request ({flow}) {path}"));
            }
            for (_, reason) in &g.verdicts {
                count(format!("verdict {}", reason.as_deref().unwrap_or("granted")));
            }
            count(format!("scope_changed {}", g.scope_changed));
            count(format!("refresh_token {}", g.refresh_token));
            if !g.permissions.is_empty() {
                count(format!("permissions non-empty ({flow})"));
            }
            if let Some(record) = &g.consent_record {
                count("record".to_string());
                if !record.declined.is_empty() {
                    count("record declined non-empty".to_string());
                }
                if record.expires_at.is_some() {
                    count("record expires_at set".to_string());
                }
            }
            if flow == "refresh_token" && req.original_audience.is_some() {
                count("refresh with original_audience granted".to_string());
            }
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
        "consent_required",
    ];
    let reasons = [
        "requires_user",
        "offline_access_not_allowed",
        "no_audience",
        "undefined",
        "not_granted_to_client",
        "not_permitted",
        "consent_denied",
        "consent_missing",
    ];
    let missed: Vec<String> = codes
        .iter()
        .map(|code| format!("error {code}"))
        .chain(reasons.iter().map(|reason| format!("verdict {reason}")))
        .chain(FLOWS.iter().map(|flow| format!("flow {flow}")))
        .chain(
            [
                "answer none",
                "answer deny",
                "answer approve",
                "consent prompt",
                "approval refused: required left out",
                "approval refused: no now",
                "record declined non-empty",
                "record expires_at set",
                "prompt mark required",
                "prompt mark unverifiable_redirect",
                "permissions non-empty",
                "refresh with original_audience",
                "consent prompt (device_code)",
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

//! Benchmarks (STYLE §6, DESIGN §6): what one decision costs, and how that
//! grows with the policy (S defined scopes, roles) and with the request (k tokens).
//!
//! - `grant/seed/*`: one representative request of each seed scenario;
//! - `grant/{third,first}_party_{8,100}roles/S*_k*`: a synthetic large tenant
//!   (1,000 roles in inheritance chains 5 deep, 200 clients, consent records);
//! - `build/*`: building a policy of 10,000 scopes and 1,000 roles;
//! - `parse/scope_param/k*`: the scope parameter alone, through the public
//!   `ScopeParam` (which copies the tokens into a list of its own; a decision
//!   reads the parsed tokens and their hashes where they were written);
//! - `consent/round_trip/*`: a decision that prompts, then `approve`;
//! - `grant/naive_*`: the same decisions by a naive baseline written here,
//!   the rules as a plain loop of `HashMap`/`HashSet<String>` lookups per token.
//!
//! After a measuring run, the medians are printed again beside the baseline's,
//! with the ratio and the growth with S and k. Run it with
//! `cargo bench --bench grant` (BENCHMARKS.md has the figures and the exact command).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use criterion::{criterion_group, BatchSize, BenchmarkId, Criterion};
use scope_policy::{
    grant, ConsentRecord, Decision, Flow, Limits, Policy, PolicyDocument, Request, Scope, ScopeParam, User,
};
use serde_json::{json, Value};

/// The unix time every request is made at.
const NOW: u64 = 1_700_000_000;

// The seed scenarios' policies, as in shared/conformance/public/*.json.

const BANK: &str = r#"{
    "apis": [
        {
            "audience": "https://bank.example.com/api",
            "name": "Bank API",
            "scopes": [
                {"name": "read:balance", "description": "Read your account balance"},
                {"name": "transfer:funds", "description": "Transfer funds from your account"}
            ]
        }
    ],
    "clients": [
        {
            "client_id": "payments-app",
            "name": "Online Payments",
            "first_party": false,
            "kind": "regular_web"
        }
    ]
}"#;

const CALENDAR: &str = r#"{
    "apis": [
        {
            "audience": "https://calendar.example.com/api",
            "name": "Calendar API",
            "scopes": [
                {"name": "read:appointments", "description": "Read your appointments"},
                {"name": "write:appointments", "description": "Create and edit your appointments"}
            ]
        }
    ],
    "clients": [
        {
            "client_id": "calendar-partner",
            "name": "Partner Scheduler",
            "first_party": false,
            "kind": "regular_web"
        },
        {"client_id": "calendar-web", "name": "Calendar", "first_party": true, "kind": "spa"}
    ]
}"#;

const CONTACTS: &str = r#"{
    "apis": [
        {
            "audience": "https://contacts.example.com/api",
            "name": "Contacts API",
            "scopes": [
                {"name": "read:contacts", "description": "Read your contacts"},
                {"name": "delete:contacts", "description": "Delete your contacts"}
            ]
        }
    ],
    "clients": [{"client_id": "contacts-spa", "name": "Contacts", "first_party": true, "kind": "spa"}]
}"#;

const EVENTS: &str = r#"{
    "apis": [
        {
            "audience": "https://events.example.com/api",
            "name": "Events API",
            "rbac": true,
            "allow_skipping_consent": true,
            "scopes": [
                {"name": "create:events", "description": "Create events"},
                {"name": "update:events", "description": "Update events"},
                {"name": "view:events", "description": "View events"},
                {"name": "register:events", "description": "Register for events"}
            ]
        }
    ],
    "roles": [
        {
            "name": "organizer",
            "description": "Creates and updates events",
            "permissions": [
                {"audience": "https://events.example.com/api", "scope": "create:events"},
                {"audience": "https://events.example.com/api", "scope": "update:events"}
            ]
        },
        {
            "name": "participant",
            "description": "Views and registers for events",
            "permissions": [
                {"audience": "https://events.example.com/api", "scope": "view:events"},
                {"audience": "https://events.example.com/api", "scope": "register:events"}
            ]
        }
    ],
    "clients": [{"client_id": "events-app", "name": "Events", "first_party": true, "kind": "regular_web"}]
}"#;

const HOSPITAL: &str = r#"{
    "apis": [
        {
            "audience": "https://imaging.hospital.example/api",
            "name": "Imaging API",
            "scopes": [
                {"name": "read:images", "description": "Read imaging data"},
                {"name": "delete:images", "description": "Delete imaging data"},
                {"name": "write:images", "description": "Store imaging data"}
            ]
        }
    ],
    "clients": [
        {
            "client_id": "cold-storage-sync",
            "name": "Nightly archive",
            "kind": "machine_to_machine",
            "grants": [
                {
                    "audience": "https://imaging.hospital.example/api",
                    "subject": "client",
                    "scopes": ["read:images", "delete:images"]
                }
            ]
        },
        {"client_id": "report-bot", "name": "Reports", "kind": "machine_to_machine"},
        {
            "client_id": "radiology-web",
            "name": "Radiology",
            "first_party": true,
            "kind": "regular_web"
        }
    ]
}"#;

// ---------------------------------------------------------------------------
// Fixtures: a policy, the same policy as the baseline sees it, and one request.

/// One decision to measure, with everything it borrows.
struct Fixture {
    policy: Policy,
    naive: Naive,
    client_id: String,
    flow: Flow,
    audience: Option<String>,
    scope: String,
    user: Option<User>,
    consents: Vec<ConsentRecord>,
}

impl Fixture {
    fn new(document: PolicyDocument, client_id: &str, flow: Flow, audience: &str, scope: &str) -> Self {
        Fixture {
            naive: Naive::new(&document),
            policy: Policy::from_document(document).expect("the fixture policy builds"),
            client_id: client_id.to_owned(),
            flow,
            audience: Some(audience.to_owned()),
            scope: scope.to_owned(),
            user: None,
            consents: Vec::new(),
        }
    }

    fn user(mut self, user: User) -> Self {
        self.user = Some(user);
        self
    }

    fn consents(mut self, consents: Vec<ConsentRecord>) -> Self {
        self.consents = consents;
        self
    }

    fn request(&self) -> Request<'_> {
        let mut request = Request::new(&self.client_id)
            .flow(self.flow)
            .scope(&self.scope)
            .consents(&self.consents)
            .now(NOW);
        if let Some(audience) = &self.audience {
            request = request.audience(audience);
        }
        if let Some(user) = &self.user {
            request = request.user(user);
        }
        request
    }

    /// Checks, before measuring, that the engine and the baseline agree on the
    /// outcome, so both do the same work; returns whether the decision prompts.
    fn agree(&self, name: &str) -> bool {
        let engine = outcome(grant(&self.policy, &self.request()).expect("the fixture request is valid"));
        let naive = self
            .naive
            .decide(self)
            .expect("the baseline accepts the fixture request");
        let naive = (
            naive.granted,
            naive.asked.iter().map(|(scope, _)| *scope).collect(),
        );
        assert_eq!(engine, naive, "{name}: engine and baseline disagree");
        !engine.1.is_empty()
    }
}

/// The granted scopes and the prompt's scopes of a decision.
fn outcome<'a>(decision: Decision<'a>) -> (Vec<&'a str>, Vec<&'a str>) {
    match decision {
        Decision::Granted(granted) => (granted.scopes().collect(), Vec::new()),
        Decision::ConsentRequired(prompt) => (
            prompt.granted().collect(),
            prompt.scopes().map(|asked| asked.scope()).collect(),
        ),
    }
}

/// The whole decision as a host uses it: raw scope string in, granted (or
/// prompted) scopes out, read in place and not rendered.
fn decide(policy: &Policy, request: &Request<'_>) -> usize {
    match grant(policy, request) {
        Ok(Decision::Granted(granted)) => granted.scopes().map(|scope| black_box(scope).len()).sum(),
        Ok(Decision::ConsentRequired(prompt)) => {
            prompt.scopes().map(|asked| black_box(asked.scope()).len()).sum()
        }
        Err(_) => usize::MAX,
    }
}

fn document(text: &str) -> PolicyDocument {
    PolicyDocument::from_json(text).expect("the seed policy reads")
}

fn record(user_id: &str, client_id: &str, audience: &str, scopes: &[&str]) -> ConsentRecord {
    ConsentRecord::new(user_id, client_id, Some(audience)).with_scopes(
        scopes
            .iter()
            .map(|scope| Scope::new(scope).expect("a valid scope")),
    )
}

/// One representative request of each seed scenario.
fn seeds() -> Vec<(&'static str, Fixture)> {
    const BANK_API: &str = "https://bank.example.com/api";
    const CALENDAR_API: &str = "https://calendar.example.com/api";
    vec![
        (
            // A third party asks for both scopes: the decision is the prompt.
            "bank",
            Fixture::new(
                document(BANK),
                "payments-app",
                Flow::AuthorizationCode,
                BANK_API,
                "read:balance transfer:funds",
            )
            .user(User::new("bob")),
        ),
        (
            // A third party whose remembered consent covers the request.
            "calendar",
            Fixture::new(
                document(CALENDAR),
                "calendar-partner",
                Flow::AuthorizationCode,
                CALENDAR_API,
                "openid read:appointments write:appointments",
            )
            .user(User::new("alice"))
            .consents(vec![record(
                "alice",
                "calendar-partner",
                CALENDAR_API,
                &["openid", "read:appointments", "write:appointments"],
            )]),
        ),
        (
            // A first-party SPA: OIDC scopes beside an API scope.
            "contacts",
            Fixture::new(
                document(CONTACTS),
                "contacts-spa",
                Flow::AuthorizationCode,
                "https://contacts.example.com/api",
                "openid profile email read:contacts",
            )
            .user(User::new("carol")),
        ),
        (
            // RBAC on a first-party client: a user with both roles asks for all four.
            "events",
            Fixture::new(
                document(EVENTS),
                "events-app",
                Flow::AuthorizationCode,
                "https://events.example.com/api",
                "openid create:events update:events view:events register:events",
            )
            .user(
                User::new("user-c")
                    .with_role("organizer")
                    .with_role("participant"),
            ),
        ),
        (
            // Client credentials, one scope outside the client grant.
            "hospital",
            Fixture::new(
                document(HOSPITAL),
                "cold-storage-sync",
                Flow::ClientCredentials,
                "https://imaging.hospital.example/api",
                "read:images delete:images write:images",
            ),
        ),
    ]
}

// ---------------------------------------------------------------------------
// The synthetic tenant.
//
// Every S sees the same decision: roles, tokens and consent records are drawn
// from 64 *positions* spread evenly over the S scopes (position p is the scope
// of verb p % 4 and noun (p / 4) * S/64), so only the size of the policy
// changes between S=64 and S=10000, not the verdicts nor the work per token.
// Positions of nouns 3, 7, 11 and 15 are in no role (they end `not_permitted`);
// `delete:` scopes are outside the third-party client's grant
// (`not_granted_to_client`).

const TENANT: &str = "https://tenant.example.com/api";
const OTHER: &str = "https://other.example.com/api";
const VERBS: [&str; 4] = ["read", "write", "delete", "admin"];
/// Roles in every synthetic policy.
const TENANT_ROLES: usize = 1_000;
/// Inheritance edges from the top of a chain of roles to its bottom.
const DEPTH: usize = 5;
/// Positions the roles and requests draw from.
const POSITIONS: usize = 64;
/// The (S, k) points measured: defined scopes, requested tokens.
const SIZES: [(usize, usize); 7] = [
    (64, 6),
    (1024, 6),
    (10_000, 6),
    (64, 16),
    (1024, 16),
    (10_000, 16),
    (1024, 64),
];
/// The points measured for a first-party client, to compare with the reference figures.
const FIRST_PARTY_SIZES: [(usize, usize); 2] = [(64, 6), (10_000, 6)];

fn scope_name(id: usize) -> String {
    format!("{}:res{:05}", VERBS[id % VERBS.len()], id / VERBS.len())
}

fn role_name(index: usize) -> String {
    format!("role-{index:04}")
}

fn size_name(scopes: usize, tokens: usize) -> String {
    format!("S{scopes}_k{tokens}")
}

/// A small deterministic generator (xorshift64*), so every run measures the same inputs.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n
    }
}

/// A large tenant: one API of `scopes` scopes with RBAC and a client grant
/// required, two small APIs beside it, `roles` roles in chains of `DEPTH`
/// inheritance edges (2 scopes each, and with `role_patterns` a pattern on
/// every 25th), a third-party and a first-party client and 200 others.
struct Tenant {
    document: PolicyDocument,
    scopes: usize,
    // For each role: the positions it allows, inherited ones included.
    effective: Vec<BTreeSet<usize>>,
}

fn tenant(scopes: usize, roles: usize, role_patterns: bool) -> Tenant {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let definitions: Vec<Value> = (0..scopes)
        .map(|id| json!({ "name": scope_name(id), "description": format!("Scope number {id}") }))
        .collect();
    let small_api = |audience: &str, prefix: &str| {
        let scopes: Vec<Value> = (0..10)
            .map(|i| json!({ "name": format!("{prefix}:{i}") }))
            .collect();
        json!({ "audience": audience, "scopes": scopes })
    };
    let mut role_documents = Vec::with_capacity(roles);
    let mut effective: Vec<BTreeSet<usize>> = Vec::with_capacity(roles);
    for index in 0..roles {
        let mut allowed = BTreeSet::new();
        while allowed.len() < 2 {
            let position = rng.below(POSITIONS);
            if position / VERBS.len() % 4 != 3 {
                allowed.insert(position);
            }
        }
        let mut permissions: Vec<Value> = allowed
            .iter()
            .map(|&position| json!({ "audience": TENANT, "scope": scope_name(at(scopes, position)) }))
            .collect();
        if role_patterns && index % 25 == 0 {
            permissions.push(json!({ "audience": TENANT, "scope": format!("{}:res0*", VERBS[index % 4]) }));
        }
        permissions.push(json!({ "audience": OTHER, "scope": format!("other:{}", index % 10) }));
        let mut inherits = Vec::new();
        if index % (DEPTH + 1) != 0 {
            inherits.push(role_name(index - 1));
            allowed.extend(effective[index - 1].iter().copied());
        }
        effective.push(allowed);
        role_documents.push(json!({
            "name": role_name(index),
            "description": format!("Role number {index}"),
            "inherits": inherits,
            "permissions": permissions,
        }));
    }
    let mut clients = vec![
        json!({
            "client_id": "partner-app", "name": "Partner", "first_party": false, "kind": "regular_web",
            "grants": [{ "audience": TENANT, "subject": "user", "scopes": ["read:*", "write:*", "admin:*"] }],
        }),
        json!({
            "client_id": "tenant-web", "name": "Tenant", "first_party": true, "kind": "spa",
            "grants": [{ "audience": TENANT, "subject": "user", "scopes": ["*"] }],
        }),
    ];
    clients.extend((0..200).map(|i| {
        json!({
            "client_id": format!("client-{i:03}"), "kind": "regular_web",
            "grants": [{ "audience": TENANT, "scopes": ["read:*"] }],
        })
    }));
    let document = json!({
        "apis": [
            {
                "audience": TENANT, "name": "Tenant API", "rbac": true, "allow_offline_access": true,
                "user_access": "require_client_grant", "scopes": definitions,
            },
            small_api(OTHER, "other"),
            small_api("https://third.example.com/api", "third"),
        ],
        "roles": role_documents,
        "clients": clients,
    });
    Tenant {
        document: serde_json::from_value(document).expect("the tenant document reads"),
        scopes,
        effective,
    }
}

/// The scope id of `position` in an API of `scopes` scopes.
fn at(scopes: usize, position: usize) -> usize {
    let nouns = scopes / VERBS.len();
    let noun = position / VERBS.len() * (nouns / (POSITIONS / VERBS.len()));
    noun * VERBS.len() + position % VERBS.len()
}

impl Tenant {
    /// A user holding `held` roles, each the top of a chain of `DEPTH` inherited
    /// roles, and two direct permissions.
    fn user(&self, held: usize) -> User {
        let tops: Vec<usize> = (0..self.effective.len())
            .filter(|r| r % (DEPTH + 1) == DEPTH)
            .collect();
        let step = (tops.len() / held).max(1);
        let mut user = User::new("user-42");
        for &top in tops.iter().step_by(step).take(held) {
            user = user.with_role(role_name(top));
        }
        assert_eq!(user.roles.len(), held, "the tenant has enough chains");
        user.with_permission(
            TENANT,
            Scope::new(&scope_name(at(self.scopes, 15))).expect("a valid scope"),
        )
        .with_permission(OTHER, Scope::new("other:3").expect("a valid scope"))
    }

    /// `tokens` distinct tokens: `openid profile`, then API scopes: of every
    /// 8, one undefined, one at a random position, six the user's roles allow
    /// (once they run out, positions not used yet).
    fn tokens(&self, user: &User, tokens: usize, rng: &mut Rng) -> Vec<String> {
        let permitted: Vec<usize> = user
            .roles
            .iter()
            .filter_map(|name| name.strip_prefix("role-")?.parse::<usize>().ok())
            .flat_map(|index| self.effective[index].iter().copied())
            .collect::<BTreeSet<usize>>()
            .into_iter()
            .collect();
        let all: Vec<usize> = (0..POSITIONS).collect();
        let mut used = BTreeSet::new();
        let mut pick = |from: &[usize], rng: &mut Rng| {
            let free: Vec<usize> = from.iter().copied().filter(|p| !used.contains(p)).collect();
            let free = if free.is_empty() {
                all.iter().copied().filter(|p| !used.contains(p)).collect()
            } else {
                free
            };
            let position = free[rng.below(free.len())];
            used.insert(position);
            scope_name(at(self.scopes, position))
        };
        let mut out = vec!["openid".to_owned(), "profile".to_owned()];
        for n in 0..tokens.saturating_sub(out.len()) {
            out.push(match n % 8 {
                7 => format!("read:none{n:04}"),
                3 => pick(&all, rng),
                _ => pick(&permitted, rng),
            });
        }
        out
    }

    /// The records a host has for this user: for another client, another
    /// audience, an expired one, and (when `covered`) one that holds every
    /// requested token and 20 other scopes, in random order.
    fn consents(
        &self,
        client_id: &str,
        tokens: &[String],
        covered: bool,
        rng: &mut Rng,
    ) -> Vec<ConsentRecord> {
        let mut held: Vec<String> = tokens.to_vec();
        held.extend((0..20).map(|_| scope_name(at(self.scopes, rng.below(POSITIONS)) + 1)));
        for i in (1..held.len()).rev() {
            held.swap(i, rng.below(i + 1));
        }
        let held: Vec<&str> = held.iter().map(String::as_str).collect();
        let mut records = vec![
            record("user-42", "client-007", TENANT, &held),
            record("user-42", client_id, OTHER, &["other:3"]),
            record("user-42", client_id, TENANT, &held).with_expires_at(NOW - 1),
        ];
        if covered {
            records.push(record("user-42", client_id, TENANT, &held).with_expires_at(NOW + 3_600));
        }
        records
    }

    /// A request of `tokens` tokens from `client_id` for a user holding `held` roles.
    fn fixture(&self, client_id: &str, held: usize, tokens: usize, covered: bool) -> Fixture {
        let mut rng = Rng(0x2545_F491 ^ ((tokens as u64) << 20) ^ held as u64);
        let user = self.user(held);
        let tokens = self.tokens(&user, tokens, &mut rng);
        let consents = self.consents(client_id, &tokens, covered, &mut rng);
        Fixture::new(
            self.document.clone(),
            client_id,
            Flow::AuthorizationCode,
            TENANT,
            &tokens.join(" "),
        )
        .user(user)
        .consents(consents)
    }
}

// ---------------------------------------------------------------------------
// The naive baseline.

/// The rules of DESIGN §3 as a plain loop: every lookup hashes a `String`
/// key, per token and per role. Patterns and inheritance are expanded when it
/// is built, as the engine does, so the comparison is about the decision only.
/// It handles what the fixtures use: a scope parameter is always sent and
/// `prompt=consent` is never set.
struct Naive {
    apis: HashMap<String, NaiveApi>,
    // Role name → audience → every scope the role allows, inherited ones included.
    roles: HashMap<String, HashMap<String, HashSet<String>>>,
    clients: HashMap<String, NaiveClient>,
}

struct NaiveApi {
    names: Vec<String>,
    defined: HashSet<String>,
    descriptions: HashMap<String, String>,
    rbac: bool,
    allow_skipping_consent: bool,
    allow_offline_access: bool,
    user_access: String,
    client_access: String,
}

struct NaiveClient {
    first_party: bool,
    grant_types: Vec<String>,
    // Audience → the scopes of the grant.
    user_grants: HashMap<String, HashSet<String>>,
    client_grants: HashMap<String, HashSet<String>>,
}

#[derive(Default)]
struct NaiveOutcome<'a> {
    granted: Vec<&'a str>,
    denied: Vec<(&'a str, &'static str)>,
    // The prompt's scopes, with the description a host shows.
    asked: Vec<(&'a str, &'a str)>,
}

const OIDC: [&str; 6] = ["openid", "profile", "email", "address", "phone", "offline_access"];

fn expand(names: &[String], reference: &str) -> Vec<String> {
    match reference.strip_suffix('*') {
        Some(prefix) => names
            .iter()
            .filter(|name| name.starts_with(prefix))
            .cloned()
            .collect(),
        None => vec![reference.to_owned()],
    }
}

impl Naive {
    fn new(document: &PolicyDocument) -> Self {
        let mut apis = HashMap::new();
        for api in &document.apis {
            let names: Vec<String> = api.scopes.iter().map(|scope| scope.name.clone()).collect();
            let naive = NaiveApi {
                defined: names.iter().cloned().collect(),
                descriptions: api
                    .scopes
                    .iter()
                    .map(|scope| (scope.name.clone(), scope.description.clone()))
                    .collect(),
                names,
                rbac: api.rbac,
                allow_skipping_consent: api.allow_skipping_consent,
                allow_offline_access: api.allow_offline_access,
                user_access: api.user_access.clone(),
                client_access: api.client_access.clone(),
            };
            apis.insert(api.audience.clone(), naive);
        }
        let names = |audience: &str| apis.get(audience).map(|api: &NaiveApi| api.names.as_slice());
        let by_name: HashMap<&str, _> = document
            .roles
            .iter()
            .map(|role| (role.name.as_str(), role))
            .collect();
        let mut roles = HashMap::new();
        for role in &document.roles {
            let mut sets: HashMap<String, HashSet<String>> = HashMap::new();
            let mut stack = vec![role.name.as_str()];
            let mut seen = HashSet::new();
            while let Some(name) = stack.pop() {
                let Some(role) = by_name.get(name).filter(|_| seen.insert(name)) else {
                    continue;
                };
                for permission in &role.permissions {
                    let scopes = expand(names(&permission.audience).unwrap_or_default(), &permission.scope);
                    sets.entry(permission.audience.clone())
                        .or_default()
                        .extend(scopes);
                }
                stack.extend(role.inherits.iter().map(String::as_str));
            }
            roles.insert(role.name.clone(), sets);
        }
        let mut clients = HashMap::new();
        for client in &document.clients {
            let machine = client.kind == "machine_to_machine";
            let grant_types = client.grant_types.clone().unwrap_or_else(|| match machine {
                true => vec!["client_credentials".to_owned()],
                false => vec!["authorization_code".to_owned(), "refresh_token".to_owned()],
            });
            let mut naive = NaiveClient {
                first_party: client.first_party,
                grant_types,
                user_grants: HashMap::new(),
                client_grants: HashMap::new(),
            };
            for grant in &client.grants {
                let scopes: HashSet<String> = grant
                    .scopes
                    .iter()
                    .flat_map(|scope| expand(names(&grant.audience).unwrap_or_default(), scope))
                    .collect();
                let for_client = grant
                    .subject
                    .as_deref()
                    .map_or(machine, |subject| subject == "client");
                let grants = if for_client {
                    &mut naive.client_grants
                } else {
                    &mut naive.user_grants
                };
                grants.insert(grant.audience.clone(), scopes);
            }
            clients.insert(client.client_id.clone(), naive);
        }
        Naive { apis, roles, clients }
    }

    fn decide<'a>(&'a self, request: &'a Fixture) -> Result<NaiveOutcome<'a>, &'static str> {
        let client = self.clients.get(&request.client_id).ok_or("invalid_client")?;
        let flow = request.flow.as_str();
        if !client.grant_types.iter().any(|granted| granted == flow) {
            return Err("unauthorized_client");
        }
        let user_flow = request.flow != Flow::ClientCredentials;
        if user_flow != request.user.is_some() {
            return Err("invalid_request");
        }
        let raw = request.scope.as_str();
        let nqchar = |b: u8| matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E);
        if raw.len() > 4096 || raw.bytes().any(|b| b != b' ' && !nqchar(b)) {
            return Err("invalid_scope");
        }
        let mut seen = HashSet::new();
        let mut tokens = Vec::new();
        for (n, token) in raw.split(' ').filter(|token| !token.is_empty()).enumerate() {
            if n == 128 {
                return Err("invalid_scope");
            }
            if seen.insert(token) {
                tokens.push(token);
            }
        }
        let api = match &request.audience {
            Some(audience) => Some((
                audience.as_str(),
                self.apis.get(audience).ok_or("invalid_target")?,
            )),
            None if user_flow => None,
            None => return Err("invalid_request"),
        };
        let restriction = match api {
            Some((audience, api)) if user_flow => match api.user_access.as_str() {
                "deny_all" => return Err("access_denied"),
                "require_client_grant" => Some(client.user_grants.get(audience).ok_or("access_denied")?),
                _ => None,
            },
            Some((audience, api)) => match api.client_access.as_str() {
                "deny_all" => return Err("access_denied"),
                _ => Some(client.client_grants.get(audience).ok_or("access_denied")?),
            },
            None => None,
        };
        let consent = request.flow == Flow::AuthorizationCode
            && (!client.first_party || api.is_some_and(|(_, api)| !api.allow_skipping_consent));
        let mut out = NaiveOutcome::default();
        for token in tokens {
            match self.verdict(request, client, api, restriction, token) {
                Err(reason) => out.denied.push((token, reason)),
                Ok(()) if consent && !covered(request, api.map(|(audience, _)| audience), token) => {
                    let description = match OIDC.contains(&token) {
                        true => "an OpenID Connect scope",
                        false => api
                            .and_then(|(_, api)| api.descriptions.get(token))
                            .map_or("", String::as_str),
                    };
                    out.asked.push((token, description))
                }
                Ok(()) => out.granted.push(token),
            }
        }
        Ok(out)
    }

    fn verdict(
        &self,
        request: &Fixture,
        client: &NaiveClient,
        api: Option<(&str, &NaiveApi)>,
        restriction: Option<&HashSet<String>>,
        token: &str,
    ) -> Result<(), &'static str> {
        let user_flow = request.flow != Flow::ClientCredentials;
        if OIDC.contains(&token) {
            if !user_flow {
                return Err("requires_user");
            }
            let offline_refused = !client
                .grant_types
                .iter()
                .any(|granted| granted == "refresh_token")
                || api.is_some_and(|(_, api)| !api.allow_offline_access);
            if token == "offline_access" && offline_refused {
                return Err("offline_access_not_allowed");
            }
            return Ok(());
        }
        let (audience, api) = api.ok_or("no_audience")?;
        if !api.defined.contains(token) {
            return Err("undefined");
        }
        if restriction.is_some_and(|granted| !granted.contains(token)) {
            return Err("not_granted_to_client");
        }
        if let Some(user) = request.user.as_ref().filter(|_| user_flow && api.rbac) {
            let by_role = user.roles.iter().any(|role| {
                self.roles
                    .get(role)
                    .and_then(|sets| sets.get(audience))
                    .is_some_and(|allowed| allowed.contains(token))
            });
            let direct = user
                .permissions
                .iter()
                .any(|permission| permission.audience == audience && permission.scope.as_str() == token);
            if !by_role && !direct {
                return Err("not_permitted");
            }
        }
        Ok(())
    }
}

/// Whether a matching, unexpired consent record holds `token`.
fn covered(request: &Fixture, audience: Option<&str>, token: &str) -> bool {
    let Some(user) = &request.user else {
        return false;
    };
    request.consents.iter().any(|record| {
        record.user_id == user.id
            && record.client_id == request.client_id
            && record.audience.as_deref() == audience
            && record.expires_at.is_none_or(|expires_at| expires_at > NOW)
            && record.scopes.iter().any(|scope| scope.as_str() == token)
    })
}

// ---------------------------------------------------------------------------
// The benches.

/// Measures a decision and the baseline's, side by side.
fn pair(c: &mut Criterion, function: &str, parameter: &str, fixture: &Fixture) {
    fixture.agree(&format!("{function}/{parameter}"));
    let request = fixture.request();
    let mut group = c.benchmark_group("grant");
    group.bench_function(BenchmarkId::new(function, parameter), |b| {
        b.iter(|| decide(black_box(&fixture.policy), black_box(&request)))
    });
    group.bench_function(BenchmarkId::new(format!("naive_{function}"), parameter), |b| {
        b.iter(|| {
            fixture
                .naive
                .decide(black_box(fixture))
                .map(|out| out.granted.len() + out.asked.len())
        })
    });
    group.finish();
}

fn bench_seeds(c: &mut Criterion) {
    for (name, fixture) in seeds() {
        pair(c, "seed", name, &fixture);
    }
}

fn bench_tenant(c: &mut Criterion) {
    let mut tenants: HashMap<usize, Tenant> = HashMap::new();
    for (scopes, tokens) in SIZES {
        let tenant = tenants
            .entry(scopes)
            .or_insert_with(|| tenant(scopes, TENANT_ROLES, false));
        for held in [8, 100] {
            let fixture = tenant.fixture("partner-app", held, tokens, true);
            assert!(!fixture.agree("tenant"), "the consent records cover the request");
            pair(
                c,
                &format!("third_party_{held}roles"),
                &size_name(scopes, tokens),
                &fixture,
            );
        }
    }
    for (scopes, tokens) in FIRST_PARTY_SIZES {
        let tenant = tenants
            .entry(scopes)
            .or_insert_with(|| tenant(scopes, TENANT_ROLES, false));
        let fixture = tenant.fixture("tenant-web", 8, tokens, false);
        pair(c, "first_party_8roles", &size_name(scopes, tokens), &fixture);
    }
}

fn bench_build(c: &mut Criterion) {
    let document = tenant(10_000, TENANT_ROLES, true).document;
    let text = document.to_json().expect("the document writes");
    let mut group = c.benchmark_group("build");
    group.sample_size(10);
    group.bench_function(BenchmarkId::new("from_document", "S10000_R1000"), |b| {
        b.iter_batched(|| document.clone(), Policy::from_document, BatchSize::LargeInput)
    });
    group.bench_function(BenchmarkId::new("from_json", "S10000_R1000"), |b| {
        b.iter(|| Policy::from_json(black_box(&text)))
    });
    group.finish();
}

fn bench_parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse");
    for tokens in [6, 16, 64, 128] {
        let raw = (0..tokens)
            .map(|n| scope_name(n * 37))
            .collect::<Vec<_>>()
            .join(" ");
        group.bench_function(BenchmarkId::new("scope_param", format!("k{tokens}")), |b| {
            b.iter(|| ScopeParam::parse(black_box(&raw), Limits::default()).map(|param| param.tokens().len()))
        });
    }
    group.finish();
}

fn bench_consent(c: &mut Criterion) {
    let calendar = Fixture::new(
        document(CALENDAR),
        "calendar-partner",
        Flow::AuthorizationCode,
        "https://calendar.example.com/api",
        "openid read:appointments write:appointments",
    )
    .user(User::new("alice"))
    .consents(vec![record(
        "alice",
        "calendar-partner",
        "https://calendar.example.com/api",
        &["openid", "read:appointments"],
    )]);
    let large = tenant(1024, TENANT_ROLES, false).fixture("partner-app", 8, 6, false);
    let mut group = c.benchmark_group("consent");
    for (name, fixture) in [("calendar", &calendar), ("S1024_k6", &large)] {
        assert!(fixture.agree(name), "{name}: the decision prompts");
        let request = fixture.request();
        // The user approves everything on the prompt: the host's form answer.
        let approved: Vec<String> = match grant(&fixture.policy, &request) {
            Ok(Decision::ConsentRequired(prompt)) => prompt.scopes().map(|p| p.scope().to_owned()).collect(),
            _ => Vec::new(),
        };
        group.bench_function(BenchmarkId::new("round_trip", name), |b| {
            b.iter(|| {
                let prompt = grant(black_box(&fixture.policy), black_box(&request))
                    .ok()
                    .and_then(Decision::consent_required)?;
                prompt.approve(black_box(&approved)).ok()
            })
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    bench_seeds,
    bench_tenant,
    bench_build,
    bench_parse,
    bench_consent
);

fn main() {
    let started = SystemTime::now();
    benches();
    Criterion::default().configure_from_args().final_summary();
    let args: Vec<String> = std::env::args().collect();
    let measuring = args.iter().any(|arg| arg == "--bench")
        && !args
            .iter()
            .any(|arg| matches!(arg.as_str(), "--test" | "--list" | "--profile-time"));
    if measuring {
        summary(started);
    }
}

// ---------------------------------------------------------------------------
// The summary: the medians criterion saved in this run, beside each other.

/// Where criterion writes its results: `$CRITERION_HOME`, else `target/criterion`.
fn criterion_home() -> Option<PathBuf> {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return Some(home.into());
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return Some(PathBuf::from(target).join("criterion"));
    }
    // The bench runs as target/<profile>/deps/grant-<hash>.
    let exe = std::env::current_exe().ok()?;
    Some(exe.parent()?.parent()?.parent()?.join("criterion"))
}

/// The median, in nanoseconds, of a bench measured since `started`.
fn median(home: &Path, started: SystemTime, id: &str) -> Option<f64> {
    let path = home.join(id).join("new").join("estimates.json");
    if std::fs::metadata(&path).ok()?.modified().ok()? < started {
        return None; // left over from an earlier run
    }
    let estimates: Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    estimates["median"]["point_estimate"].as_f64()
}

fn show(ns: f64) -> String {
    match ns {
        ns if ns < 1e3 => format!("{ns:.0} ns"),
        ns if ns < 1e6 => format!("{:.2} µs", ns / 1e3),
        ns => format!("{:.2} ms", ns / 1e6),
    }
}

fn summary(started: SystemTime) {
    let Some(home) = criterion_home() else {
        return;
    };
    let mut rows: Vec<(String, String)> = seeds()
        .into_iter()
        .map(|(name, _)| ("seed".to_owned(), name.to_owned()))
        .collect();
    for held in [8, 100] {
        for (scopes, tokens) in SIZES {
            rows.push((format!("third_party_{held}roles"), size_name(scopes, tokens)));
        }
    }
    for (scopes, tokens) in FIRST_PARTY_SIZES {
        rows.push(("first_party_8roles".to_owned(), size_name(scopes, tokens)));
    }
    let medians: HashMap<String, f64> = rows
        .iter()
        .flat_map(|(function, parameter)| {
            [
                format!("grant/{function}/{parameter}"),
                format!("grant/naive_{function}/{parameter}"),
            ]
        })
        .filter_map(|id| Some((id.clone(), median(&home, started, &id)?)))
        .collect();
    if medians.is_empty() {
        return;
    }
    println!("\nDecision medians beside the naive HashSet baseline (this run):");
    println!(
        "{:<46} {:>10} {:>10} {:>8}",
        "bench", "engine", "naive", "speed-up"
    );
    for (function, parameter) in &rows {
        let engine = medians.get(&format!("grant/{function}/{parameter}"));
        let naive = medians.get(&format!("grant/naive_{function}/{parameter}"));
        if let (Some(&engine), Some(&naive)) = (engine, naive) {
            let id = format!("grant/{function}/{parameter}");
            println!(
                "{id:<46} {:>10} {:>10} {:>7.1}x",
                show(engine),
                show(naive),
                naive / engine
            );
        }
    }
    let get = |function: &str, scopes: usize, tokens: usize| {
        medians
            .get(&format!("grant/{function}/{}", size_name(scopes, tokens)))
            .copied()
    };
    println!("\nGrowth with S at equal k (S=10000 over S=64; flat is 1.0):");
    for function in ["third_party_8roles", "third_party_100roles", "first_party_8roles"] {
        for tokens in [6, 16] {
            if let (Some(small), Some(large)) = (get(function, 64, tokens), get(function, 10_000, tokens)) {
                println!("  {function:<22} k={tokens:<3} {:.2}x", large / small);
            }
        }
    }
    println!("\nCost per extra token at S=1024 (k 6 -> 64):");
    for function in ["third_party_8roles", "third_party_100roles"] {
        for prefix in ["", "naive_"] {
            let function = format!("{prefix}{function}");
            if let (Some(few), Some(many)) = (get(&function, 1024, 6), get(&function, 1024, 64)) {
                println!("  {function:<28} {}/token", show((many - few) / 58.0));
            }
        }
    }
}

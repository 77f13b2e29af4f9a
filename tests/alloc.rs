//! No heap allocation inside a decision (DESIGN §6, issue 4).
//!
//! A counting global allocator (`stats_alloc`, so no unsafe code of ours)
//! counts the allocations made from `grant()` to the drop of its result,
//! after the policy and the request were built. A request of up to 16
//! tokens decides without allocating, whatever the number of the user's
//! roles (the issue asks for up to 8; 100 are checked too);
//! rendering the scope string, the consent record of an approval and most
//! error values are owned output and do allocate.
//!
//! The counters are process-wide, so everything runs in one `#[test]`: no
//! other test thread allocates while a decision is counted. Run with
//! `--nocapture` to see the counts of the cases that may allocate.

use std::alloc::System;
use std::hint::black_box;

use scope_policy::{
    grant, ConsentRecord, Decision, Flow, GrantError, Policy, PolicyDocument, Request, Scope, User,
};
use serde::Deserialize;
use serde_json::{json, Value};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// How many heap allocations (and reallocations) `f` makes.
fn allocations(f: impl FnOnce()) -> usize {
    let region = Region::new(GLOBAL);
    f();
    let change = region.change();
    change.allocations + change.reallocations
}

#[test]
fn decisions_allocate_nothing_until_owned_output_is_asked_for() {
    let mut failures = Vec::new();
    seed_scenarios(&mut failures);
    large_policy_decisions(&mut failures);
    owned_output(&mut failures);
    beyond_the_inline_limits(&mut failures);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Decides, reads the whole answer in place as a host would (granted and
/// denied scopes, verdicts, the prompt's scopes and descriptions), and drops
/// it; returns the allocations made from `grant()` to the drop, and what the
/// decision was.
fn decide(policy: &Policy, request: &Request<'_>) -> (usize, &'static str) {
    let mut decided = "";
    let count = allocations(|| {
        let decision = grant(black_box(policy), black_box(request));
        decided = read(&decision);
        drop(black_box(decision));
    });
    (count, decided)
}

/// Reads every part of a decision that can be read without owning it.
fn read(decision: &Result<Decision<'_>, GrantError>) -> &'static str {
    match decision {
        Ok(Decision::Granted(granted)) => {
            granted.scopes().for_each(|scope| {
                black_box(scope);
            });
            granted.denied().for_each(|denied| {
                black_box(denied);
            });
            granted.verdicts().for_each(|verdict| {
                black_box(verdict);
            });
            black_box((
                granted.audience(),
                granted.scope_changed(),
                granted.refresh_token(),
            ));
            "granted"
        }
        Ok(Decision::ConsentRequired(prompt)) => {
            prompt.scopes().for_each(|asked| {
                black_box((asked.scope(), asked.description()));
            });
            prompt.granted().for_each(|scope| {
                black_box(scope);
            });
            prompt.denied().for_each(|denied| {
                black_box(denied);
            });
            black_box(prompt.audience());
            "consent"
        }
        Err(error) => {
            black_box(error.code());
            "error"
        }
    }
}

// ---------------------------------------------------------------------------
// The seed scenarios (shared/conformance/public/*.json): each policy, and
// each distinct request of its cases with what it decides.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Scenario {
    policy: PolicyDocument,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    decides: String,
    request: CaseRequest,
}

/// A conformance case's `request` (DESIGN §5), owned.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseRequest {
    client_id: String,
    #[serde(default)]
    flow: Option<Flow>,
    #[serde(default)]
    audience: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    user: Option<User>,
    #[serde(default)]
    consents: Vec<ConsentRecord>,
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

impl CaseRequest {
    fn request(&self) -> Request<'_> {
        Request::new(&self.client_id)
            .flow(self.flow.unwrap_or(Flow::AuthorizationCode))
            .consents(&self.consents)
            .maybe_audience(self.audience.as_deref())
            .maybe_scope(self.scope.as_deref())
            .maybe_user(self.user.as_ref())
            .maybe_prompt(self.prompt.as_deref())
            .maybe_redirect_uri(self.redirect_uri.as_deref())
            .maybe_original_scope(self.original_scope.as_deref())
            .maybe_original_audience(self.original_audience.as_deref())
            .maybe_now(self.now)
    }
}

const SCENARIOS: [(&str, &str); 5] = [
    ("bank", BANK),
    ("calendar", CALENDAR),
    ("contacts", CONTACTS),
    ("events", EVENTS),
    ("hospital", HOSPITAL),
];

/// Every distinct request of the seed scenarios: no allocation, except errors.
fn seed_scenarios(failures: &mut Vec<String>) {
    let mut decisions = 0;
    for (file, text) in SCENARIOS {
        let scenario: Scenario = serde_json::from_str(text).expect("the scenario reads");
        let policy = Policy::from_document(scenario.policy).expect("the scenario policy builds");
        for case in &scenario.cases {
            let request = case.request.request();
            let (count, decided) = decide(&policy, &request);
            let name = format!("{file}: {}", case.name);
            if decided != case.decides {
                failures.push(format!("{name}: decided {decided}, expected {}", case.decides));
            } else if decided == "error" {
                // An error is owned output: it may copy request text.
                println!("{name}: the error made {count} allocation(s)");
            } else if count != 0 {
                failures.push(format!("{name}: {count} allocation(s)"));
            } else {
                decisions += 1;
            }
        }
    }
    if decisions < 20 {
        failures.push(format!("only {decisions} seed decisions were counted"));
    }
}

const BANK: &str = r#"{
    "policy": {
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
    },
    "cases": [
        {
            "name": "balance and transfer both need the user's consent",
            "decides": "consent",
            "request": {
                "client_id": "payments-app",
                "audience": "https://bank.example.com/api",
                "scope": "read:balance transfer:funds",
                "user": {"id": "bob", "roles": [], "permissions": []}
            }
        },
        {
            "name": "balance only",
            "decides": "consent",
            "request": {
                "client_id": "payments-app",
                "audience": "https://bank.example.com/api",
                "scope": "read:balance",
                "user": {"id": "bob", "roles": [], "permissions": []}
            }
        },
        {
            "name": "consent given by another user does not count",
            "decides": "consent",
            "request": {
                "client_id": "payments-app",
                "audience": "https://bank.example.com/api",
                "scope": "read:balance",
                "user": {"id": "bob", "roles": [], "permissions": []},
                "consents": [
                    {
                        "user_id": "mallory",
                        "client_id": "payments-app",
                        "audience": "https://bank.example.com/api",
                        "scopes": ["read:balance"]
                    }
                ]
            }
        },
        {
            "name": "prompt=consent asks again despite a remembered consent",
            "decides": "consent",
            "request": {
                "client_id": "payments-app",
                "audience": "https://bank.example.com/api",
                "scope": "read:balance",
                "user": {"id": "bob", "roles": [], "permissions": []},
                "prompt": "consent",
                "consents": [
                    {
                        "user_id": "bob",
                        "client_id": "payments-app",
                        "audience": "https://bank.example.com/api",
                        "scopes": ["read:balance"]
                    }
                ]
            }
        }
    ]
}"#;

const CALENDAR: &str = r#"{
    "policy": {
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
    },
    "cases": [
        {
            "name": "third party asking read and write is shown both on the consent prompt",
            "decides": "consent",
            "request": {
                "client_id": "calendar-partner",
                "audience": "https://calendar.example.com/api",
                "scope": "read:appointments write:appointments",
                "user": {"id": "alice", "roles": [], "permissions": []}
            }
        },
        {
            "name": "remembered consent covers the request: no prompt",
            "decides": "granted",
            "request": {
                "client_id": "calendar-partner",
                "audience": "https://calendar.example.com/api",
                "scope": "read:appointments",
                "user": {"id": "alice", "roles": [], "permissions": []},
                "consents": [
                    {
                        "user_id": "alice",
                        "client_id": "calendar-partner",
                        "audience": "https://calendar.example.com/api",
                        "scopes": ["read:appointments"]
                    }
                ]
            }
        },
        {
            "name": "incremental consent: only the new scope is on the prompt",
            "decides": "consent",
            "request": {
                "client_id": "calendar-partner",
                "audience": "https://calendar.example.com/api",
                "scope": "read:appointments write:appointments",
                "user": {"id": "alice", "roles": [], "permissions": []},
                "consents": [
                    {
                        "user_id": "alice",
                        "client_id": "calendar-partner",
                        "audience": "https://calendar.example.com/api",
                        "scopes": ["read:appointments"]
                    }
                ]
            }
        },
        {
            "name": "user refuses the prompt",
            "decides": "consent",
            "request": {
                "client_id": "calendar-partner",
                "audience": "https://calendar.example.com/api",
                "scope": "read:appointments",
                "user": {"id": "alice", "roles": [], "permissions": []}
            }
        },
        {
            "name": "first-party app skips consent",
            "decides": "granted",
            "request": {
                "client_id": "calendar-web",
                "audience": "https://calendar.example.com/api",
                "scope": "read:appointments write:appointments",
                "user": {"id": "alice", "roles": [], "permissions": []}
            }
        },
        {
            "name": "an undefined scope is dropped, the rest granted",
            "decides": "granted",
            "request": {
                "client_id": "calendar-web",
                "audience": "https://calendar.example.com/api",
                "scope": "read:appointments delete:appointments",
                "user": {"id": "alice", "roles": [], "permissions": []}
            }
        },
        {
            "name": "OIDC scopes pass through beside API scopes",
            "decides": "granted",
            "request": {
                "client_id": "calendar-web",
                "audience": "https://calendar.example.com/api",
                "scope": "openid profile email read:appointments",
                "user": {"id": "alice", "roles": [], "permissions": []}
            }
        }
    ]
}"#;

const CONTACTS: &str = r#"{
    "policy": {
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
    },
    "cases": [
        {
            "name": "openid profile email read:contacts with the audience",
            "decides": "granted",
            "request": {
                "client_id": "contacts-spa",
                "audience": "https://contacts.example.com/api",
                "scope": "openid profile email read:contacts",
                "user": {"id": "carol", "roles": []}
            }
        },
        {
            "name": "without an audience only the OIDC scopes remain",
            "decides": "granted",
            "request": {
                "client_id": "contacts-spa",
                "scope": "openid profile email read:contacts",
                "user": {"id": "carol", "roles": []}
            }
        },
        {
            "name": "scope tokens are case-sensitive",
            "decides": "granted",
            "request": {
                "client_id": "contacts-spa",
                "audience": "https://contacts.example.com/api",
                "scope": "Read:contacts",
                "user": {"id": "carol", "roles": []}
            }
        },
        {
            "name": "a repeated token counts once",
            "decides": "granted",
            "request": {
                "client_id": "contacts-spa",
                "audience": "https://contacts.example.com/api",
                "scope": "read:contacts  read:contacts ",
                "user": {"id": "carol", "roles": []}
            }
        },
        {
            "name": "a tab inside the scope parameter is refused",
            "decides": "error",
            "request": {
                "client_id": "contacts-spa",
                "audience": "https://contacts.example.com/api",
                "scope": "openid\tread:contacts",
                "user": {"id": "carol", "roles": []}
            }
        },
        {
            "name": "a user flow without a user",
            "decides": "error",
            "request": {
                "client_id": "contacts-spa",
                "audience": "https://contacts.example.com/api",
                "scope": "read:contacts"
            }
        }
    ]
}"#;

const EVENTS: &str = r#"{
    "policy": {
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
    },
    "cases": [
        {
            "name": "user A, an organizer, asks for all four and gets the organizer scopes",
            "decides": "granted",
            "request": {
                "client_id": "events-app",
                "audience": "https://events.example.com/api",
                "scope": "create:events update:events view:events register:events",
                "user": {"id": "user-a", "roles": ["organizer"]}
            }
        },
        {
            "name": "user B, a participant, gets the participant scopes",
            "decides": "granted",
            "request": {
                "client_id": "events-app",
                "audience": "https://events.example.com/api",
                "scope": "create:events update:events view:events register:events",
                "user": {"id": "user-b", "roles": ["participant"]}
            }
        },
        {
            "name": "a user with both roles gets all four",
            "decides": "granted",
            "request": {
                "client_id": "events-app",
                "audience": "https://events.example.com/api",
                "scope": "create:events update:events view:events register:events",
                "user": {"id": "user-c", "roles": ["organizer", "participant"]}
            }
        },
        {
            "name": "a user with no role gets no API scope",
            "decides": "granted",
            "request": {
                "client_id": "events-app",
                "audience": "https://events.example.com/api",
                "scope": "create:events update:events view:events register:events",
                "user": {"id": "user-d", "roles": []}
            }
        },
        {
            "name": "a role the policy does not know grants nothing",
            "decides": "granted",
            "request": {
                "client_id": "events-app",
                "audience": "https://events.example.com/api",
                "scope": "create:events update:events view:events register:events",
                "user": {"id": "user-e", "roles": ["admin"]}
            }
        },
        {
            "name": "a direct user permission counts like a role's",
            "decides": "granted",
            "request": {
                "client_id": "events-app",
                "audience": "https://events.example.com/api",
                "scope": "create:events update:events view:events register:events",
                "user": {
                    "id": "user-f",
                    "roles": [],
                    "permissions": [{"audience": "https://events.example.com/api", "scope": "view:events"}]
                }
            }
        },
        {
            "name": "OIDC scopes are not limited by roles",
            "decides": "granted",
            "request": {
                "client_id": "events-app",
                "audience": "https://events.example.com/api",
                "scope": "openid profile view:events",
                "user": {"id": "user-d", "roles": []}
            }
        }
    ]
}"#;

const HOSPITAL: &str = r#"{
    "policy": {
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
    },
    "cases": [
        {
            "name": "the archive service gets read and delete",
            "decides": "granted",
            "request": {
                "client_id": "cold-storage-sync",
                "flow": "client_credentials",
                "audience": "https://imaging.hospital.example/api",
                "scope": "read:images delete:images"
            }
        },
        {
            "name": "no scope asked: everything its client grant holds",
            "decides": "granted",
            "request": {
                "client_id": "cold-storage-sync",
                "flow": "client_credentials",
                "audience": "https://imaging.hospital.example/api"
            }
        },
        {
            "name": "a scope outside its client grant is dropped",
            "decides": "granted",
            "request": {
                "client_id": "cold-storage-sync",
                "flow": "client_credentials",
                "audience": "https://imaging.hospital.example/api",
                "scope": "read:images write:images"
            }
        },
        {
            "name": "OIDC scopes need a user",
            "decides": "granted",
            "request": {
                "client_id": "cold-storage-sync",
                "flow": "client_credentials",
                "audience": "https://imaging.hospital.example/api",
                "scope": "openid read:images"
            }
        },
        {
            "name": "client credentials without an audience",
            "decides": "error",
            "request": {
                "client_id": "cold-storage-sync", "flow": "client_credentials", "scope": "read:images"
            }
        },
        {
            "name": "a machine client with no grant for this API",
            "decides": "error",
            "request": {
                "client_id": "report-bot",
                "flow": "client_credentials",
                "audience": "https://imaging.hospital.example/api",
                "scope": "read:images"
            }
        },
        {
            "name": "a web app may not use client credentials",
            "decides": "error",
            "request": {
                "client_id": "radiology-web",
                "flow": "client_credentials",
                "audience": "https://imaging.hospital.example/api",
                "scope": "read:images"
            }
        },
        {
            "name": "client credentials carrying a user",
            "decides": "error",
            "request": {
                "client_id": "cold-storage-sync",
                "flow": "client_credentials",
                "audience": "https://imaging.hospital.example/api",
                "scope": "read:images",
                "user": {"id": "alice"}
            }
        },
        {
            "name": "an unknown audience",
            "decides": "error",
            "request": {
                "client_id": "cold-storage-sync",
                "flow": "client_credentials",
                "audience": "https://imaging.hospital.example/api/",
                "scope": "read:images"
            }
        },
        {
            "name": "an unknown client",
            "decides": "error",
            "request": {
                "client_id": "nobody",
                "flow": "client_credentials",
                "audience": "https://imaging.hospital.example/api",
                "scope": "read:images"
            }
        }
    ]
}"#;

// ---------------------------------------------------------------------------
// A policy of 1,000 scopes.

const LARGE: &str = "https://large.example.com/api";
const OTHER: &str = "https://other.example.com/api";
const NOW: u64 = 1_700_000_000;
const VERBS: [&str; 4] = ["read", "write", "delete", "admin"];

fn scope_name(id: usize) -> String {
    format!("{}:res{:05}", VERBS[id % VERBS.len()], id / VERBS.len())
}

fn role_name(index: usize) -> String {
    format!("role-{index:03}")
}

/// 1,000 scopes with RBAC and client grants required; 200 roles in chains of
/// 5 inheritance edges, each with 4 scopes (every 25th with `read:res000*`,
/// 100 scopes, too); a third-party, a first-party and a machine client.
fn large_policy() -> Policy {
    let scopes: Vec<Value> = (0..1_000)
        .map(|id| json!({ "name": scope_name(id), "description": format!("Scope {id}") }))
        .collect();
    let roles: Vec<Value> = (0..200)
        .map(|index| {
            let mut permissions: Vec<Value> = (0..4)
                .map(|j| json!({ "audience": LARGE, "scope": scope_name((index * 37 + j * 101) % 1_000) }))
                .collect();
            if index % 25 == 0 {
                permissions.push(json!({ "audience": LARGE, "scope": "read:res000*" }));
            }
            let inherits: Vec<String> = (index % 6 != 0)
                .then(|| role_name(index - 1))
                .into_iter()
                .collect();
            json!({ "name": role_name(index), "inherits": inherits, "permissions": permissions })
        })
        .collect();
    let document = json!({
        "apis": [
            {
                "audience": LARGE, "name": "Large API", "rbac": true, "allow_offline_access": true,
                "user_access": "require_client_grant", "scopes": scopes,
                "default_scopes": (0..10).map(|n| scope_name(n * 8)).collect::<Vec<_>>(),
            },
            { "audience": OTHER, "scopes": [{ "name": "other:read" }] },
        ],
        "roles": roles,
        "clients": [
            {
                "client_id": "partner-app", "first_party": false, "kind": "regular_web",
                "grants": [{ "audience": LARGE, "subject": "user", "scopes": ["read:*", "write:*", "admin:*"] }],
            },
            {
                "client_id": "large-web", "first_party": true, "kind": "spa",
                "grants": [{ "audience": LARGE, "subject": "user", "scopes": ["*"] }],
            },
            {
                "client_id": "large-tv", "first_party": true, "kind": "native",
                "grant_types": ["device_code", "refresh_token"],
                "grants": [{ "audience": LARGE, "subject": "user", "scopes": ["*"] }],
            },
            {
                "client_id": "sync-job", "kind": "machine_to_machine",
                "grants": [{ "audience": LARGE, "subject": "client", "scopes": ["read:*"] }],
            },
        ],
    });
    let document: PolicyDocument = serde_json::from_value(document).expect("the large document reads");
    Policy::from_document(document).expect("the large policy builds")
}

/// A user holding `roles` roles, each the top of a chain, and two direct permissions.
fn user(roles: usize) -> User {
    let mut user = User::new("user-42");
    for n in 0..roles {
        user = user.with_role(role_name((n * 6 + 5) % 200));
    }
    user.with_permission(LARGE, Scope::new(&scope_name(1)).expect("a valid scope"))
        .with_permission(OTHER, Scope::new("other:read").expect("a valid scope"))
}

/// `count` distinct tokens: `openid profile offline_access`, then API scopes,
/// three of four allowed to `user` by a role, the fourth not.
fn tokens(policy: &Policy, user: &User, count: usize) -> Vec<String> {
    let api = policy.api(LARGE).expect("the large API");
    let permits = |scope: &str| {
        user.roles
            .iter()
            .filter_map(|name| policy.role(name))
            .any(|role| role.permits(api, scope))
    };
    let mut allowed = (0..1_000).map(scope_name).filter(|scope| permits(scope));
    let mut refused = (0..1_000).rev().map(scope_name).filter(|scope| !permits(scope));
    let mut out: Vec<String> = ["openid", "profile", "offline_access"].map(str::to_owned).into();
    while out.len() < count {
        let next = if out.len() % 4 == 3 {
            refused.next()
        } else {
            allowed.next()
        };
        out.push(next.expect("enough scopes of each kind"));
    }
    out.truncate(count);
    out
}

fn record(client_id: &str, audience: &str, scopes: &[String], expires_at: Option<u64>) -> ConsentRecord {
    let record = ConsentRecord::new("user-42", client_id, Some(audience)).with_scopes(
        scopes
            .iter()
            .map(|scope| Scope::new(scope).expect("a valid scope")),
    );
    match expires_at {
        Some(expires_at) => record.with_expires_at(expires_at),
        None => record,
    }
}

/// The records a host passes in: for another client, another audience, an
/// expired one, and (when `covering`) one that holds every token.
fn consents(client_id: &str, tokens: &[String], covering: bool) -> Vec<ConsentRecord> {
    let mut records = vec![
        record("large-web", LARGE, tokens, None),
        record(client_id, OTHER, &["other:read".to_owned()], None),
        record(client_id, LARGE, tokens, Some(NOW - 1)),
    ];
    if covering {
        records.push(record(client_id, LARGE, tokens, Some(NOW + 3_600)));
    }
    records
}

/// Requests of 16 tokens on the 1,000-scope policy, down every path: no allocation.
fn large_policy_decisions(failures: &mut Vec<String>) {
    let policy = large_policy();
    let alice = user(8);
    let crowd = user(100);
    let tokens = tokens(&policy, &alice, 16);
    let scope = tokens.join(" ");
    let api_tokens = tokens
        .iter()
        .filter(|token| token.contains(':'))
        .cloned()
        .collect::<Vec<_>>();
    let half = tokens.iter().step_by(2).cloned().collect::<Vec<_>>().join(" ");
    // 16 distinct tokens, each sent three times, between runs of spaces.
    let repeated = format!("  {scope}   {scope} {scope}  ");
    let covered = consents("partner-app", &tokens, true);
    let uncovered = consents("partner-app", &tokens, false);
    let (held, declined) = tokens.split_at(tokens.len() / 2);
    let declining = [record("partner-app", LARGE, held, None).with_declined(
        declined
            .iter()
            .map(|scope| Scope::new(scope).expect("a valid scope")),
    )];
    let machine = ["openid".to_owned()]
        .into_iter()
        .chain(api_tokens.iter().take(15).cloned());
    let machine = machine.collect::<Vec<_>>().join(" ");

    let base = |client_id| Request::new(client_id).audience(LARGE).user(&alice).now(NOW);
    let cases: Vec<(&str, Request<'_>, &str)> = vec![
        (
            "first party, RBAC, 16 tokens",
            base("large-web").scope(&scope),
            "granted",
        ),
        (
            "first party, RBAC, 100 roles, 16 tokens",
            Request::new("large-web")
                .audience(LARGE)
                .user(&crowd)
                .now(NOW)
                .scope(&scope),
            "granted",
        ),
        (
            "16 distinct tokens sent 48 times",
            base("large-web").scope(&repeated),
            "granted",
        ),
        (
            "no audience: API scopes refused",
            Request::new("large-web").user(&alice).scope(&scope),
            "granted",
        ),
        ("no scope: the API's default scopes", base("large-web"), "granted"),
        (
            "third party, a record covers every token",
            base("partner-app").scope(&scope).consents(&covered),
            "granted",
        ),
        (
            "third party, no record covers",
            base("partner-app").scope(&scope).consents(&uncovered),
            "consent",
        ),
        (
            "third party, prompt=consent",
            base("partner-app")
                .scope(&scope)
                .consents(&covered)
                .prompt("consent"),
            "consent",
        ),
        (
            "third party, a record covers half and declines the rest",
            base("partner-app").scope(&scope).consents(&declining),
            "granted",
        ),
        (
            "first party, prompt=login consent",
            base("large-web").scope(&scope).prompt("login  consent"),
            "consent",
        ),
        (
            "first party, a verifiable https redirect",
            base("large-web")
                .scope(&scope)
                .redirect_uri("https://app.example.com:8443/callback?x=1"),
            "granted",
        ),
        (
            "first party, a loopback redirect",
            base("large-web")
                .scope(&scope)
                .redirect_uri("http://127.0.0.1:8080/cb"),
            "consent",
        ),
        (
            "first party, a percent-escaped loopback host",
            base("large-web")
                .scope(&scope)
                .redirect_uri("https://%6c%6F%63%61%6C%68%6F%73%74.:443/cb"),
            "consent",
        ),
        (
            "first party, the device flow",
            base("large-tv").flow(Flow::DeviceCode).scope(&scope),
            "consent",
        ),
        (
            "refresh: half of the original scope",
            base("large-web")
                .flow(Flow::RefreshToken)
                .original_audience(LARGE)
                .original_scope(&scope)
                .scope(&half),
            "granted",
        ),
        (
            "refresh: no scope asks the original",
            base("large-web")
                .flow(Flow::RefreshToken)
                .original_audience(LARGE)
                .original_scope(&scope),
            "granted",
        ),
        (
            "third-party refresh: the records are checked again",
            base("partner-app")
                .flow(Flow::RefreshToken)
                .original_audience(LARGE)
                .original_scope(&scope)
                .consents(&covered),
            "granted",
        ),
        (
            "client credentials, 16 tokens",
            Request::new("sync-job")
                .flow(Flow::ClientCredentials)
                .audience(LARGE)
                .scope(&machine),
            "granted",
        ),
    ];
    for (about, request, expected) in &cases {
        match decide(&policy, request) {
            (0, decided) if decided == *expected => {}
            (count, decided) => failures.push(format!("{about}: {decided} with {count} allocation(s)")),
        }
    }
}

/// The scope string and an approval's consent record are owned output: they
/// allocate, which also shows that the counter counts.
fn owned_output(failures: &mut Vec<String>) {
    let policy = large_policy();
    let alice = user(8);
    let tokens = tokens(&policy, &alice, 16);
    let scope = tokens.join(" ");
    let request = Request::new("large-web")
        .audience(LARGE)
        .scope(&scope)
        .user(&alice);
    let granted = grant(&policy, &request)
        .ok()
        .and_then(Decision::granted)
        .expect("a grant");
    // The counter works: rendering the scope string is the first allocation a host asks for.
    let mut rendered = String::new();
    let count = allocations(|| rendered = black_box(granted.scope_string()));
    if count == 0 {
        failures.push(format!(
            "rendering {rendered:?} allocated nothing: the counter does not count"
        ));
    }

    // Approving a prompt makes a consent record to store: owned output too.
    let none = Vec::new();
    let request = Request::new("partner-app")
        .audience(LARGE)
        .scope(&scope)
        .user(&alice)
        .consents(&none);
    let prompt = grant(&policy, &request)
        .ok()
        .and_then(Decision::consent_required)
        .expect("a prompt");
    let approved: Vec<&str> = prompt.scopes().map(|asked| asked.scope()).collect();
    let mut record = None;
    let count = allocations(|| {
        record = black_box(prompt.approve(&approved))
            .ok()
            .and_then(|mut grant| grant.take_consent_record())
    });
    match record {
        Some(record) if record.scopes.len() == approved.len() && count > 0 => {
            println!("approve() of {} scopes: {count} allocation(s)", approved.len())
        }
        other => failures.push(format!("approve() gave {other:?} with {count} allocation(s)")),
    }
}

/// Beyond the promise (more than 16 tokens, more than 8
/// matching consent records, defaults beyond 16 scopes, errors) a decision
/// may allocate. Nothing is asserted about the counts; they are printed.
fn beyond_the_inline_limits(failures: &mut Vec<String>) {
    let policy = large_policy();
    let alice = user(8);
    let tokens_17 = tokens(&policy, &alice, 17).join(" ");
    let tokens_64 = tokens(&policy, &alice, 64).join(" ");
    let tokens_16 = tokens(&policy, &alice, 16);
    let scope = tokens_16.join(" ");
    let many_records: Vec<ConsentRecord> = (0..9)
        .map(|_| record("partner-app", LARGE, &tokens_16, None))
        .collect();
    let base = |user| Request::new("large-web").audience(LARGE).user(user).now(NOW);
    let cases: Vec<(&str, Request<'_>, &str)> = vec![
        ("17 tokens", base(&alice).scope(&tokens_17), "granted"),
        ("64 tokens", base(&alice).scope(&tokens_64), "granted"),
        (
            "9 matching consent records",
            Request::new("partner-app")
                .audience(LARGE)
                .user(&alice)
                .scope(&scope)
                .consents(&many_records),
            "granted",
        ),
        (
            "client credentials, no scope: a grant of 250 scopes",
            Request::new("sync-job")
                .flow(Flow::ClientCredentials)
                .audience(LARGE),
            "granted",
        ),
        (
            "error: unknown client",
            Request::new("nobody").audience(LARGE).user(&alice).scope(&scope),
            "error",
        ),
        (
            "error: unknown audience",
            base(&alice).audience("https://nowhere/").scope(&scope),
            "error",
        ),
        (
            "error: tab in the scope",
            base(&alice).scope("openid\tprofile"),
            "error",
        ),
    ];
    for (about, request, expected) in &cases {
        let (count, decided) = decide(&policy, request);
        if decided != *expected {
            failures.push(format!("{about}: decided {decided}, expected {expected}"));
        }
        println!("{about}: {count} allocation(s)");
    }
}

//! `diff` over generated policies, through the binary:
//!
//! - `diff P P` and `diff P reversed(P)` (every list reversed, every
//!   object's keys in reverse order) report no change;
//! - when `diff P Q` reports no widening, no generated request is granted a
//!   scope under `Q` that it is not granted under `P`, checked with the
//!   decision itself (`Policy::grant`): every client, every flow, every
//!   audience and none, no scope parameter, every token alone and all at
//!   once, users with no role, each role and every role, with no consent
//!   record and with one that holds every token.
//!
//! `Q` is `P` with one to three small edits (a setting, a scope, a
//! permission, a grant, a client's flows or kind, a role). Both are
//! generated as JSON from small numbers and then made valid (references
//! that no longer resolve are dropped), so every case builds.
//!
//! `PROPTEST_CASES` sets the number of cases (default 48: about two seconds
//! in a debug build).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::collection::vec;
use proptest::prelude::*;
use scope_policy::{ConsentRecord, Decision, Flow, Policy, Request, Scope, User};
use serde_json::{json, Value};

use crate::run_json;

const AUDIENCES: [&str; 2] = ["https://a.example/api", "urn:b"];
const SCOPES: [&str; 4] = ["read:x", "write:x", "read:y", "admin"];
/// Scope references in permissions and grants: the scopes, then two patterns.
const REFS: [&str; 6] = ["read:x", "write:x", "read:y", "admin", "*", "read:*"];
const ROLES: [&str; 3] = ["r0", "r1", "r2"];
const CLIENTS: [&str; 3] = ["web", "partner", "job"];
const KINDS: [&str; 4] = ["regular_web", "spa", "native", "machine_to_machine"];
const FLOWS: [&str; 4] = [
    "authorization_code",
    "refresh_token",
    "client_credentials",
    "device_code",
];
const USER_ACCESS: [&str; 3] = ["allow_all", "require_client_grant", "deny_all"];
const CLIENT_ACCESS: [&str; 2] = ["require_client_grant", "deny_all"];

fn pick<T: Copy>(items: &[T], n: usize) -> T {
    items[n % items.len()]
}

/// The names of `items` whose bit is set in `mask`.
fn subset<'a>(items: &[&'a str], mask: usize) -> Vec<&'a str> {
    items
        .iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, item)| *item)
        .collect()
}

#[derive(Debug, Clone)]
struct ApiR {
    scopes: usize,
    rbac: bool,
    skip: bool,
    offline: bool,
    user_access: usize,
    client_access: usize,
    defaults: usize,
    always: usize,
    required: usize,
}

#[derive(Debug, Clone)]
struct ClientR {
    kind: usize,
    first_party: bool,
    grant_types: Option<usize>,
    grants: Vec<(usize, Option<bool>, usize)>,
}

#[derive(Debug, Clone)]
struct PolicyR {
    apis: Vec<ApiR>,
    /// Per role: permissions (api, ref mask), inherits mask (of earlier roles).
    roles: Vec<(Vec<(usize, usize)>, usize)>,
    clients: Vec<ClientR>,
    reject: bool,
    default_audience: Option<usize>,
}

fn api_r() -> impl Strategy<Value = ApiR> {
    (
        1..16usize,
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        0..3usize,
        0..2usize,
        0..16usize,
        0..16usize,
        0..16usize,
    )
        .prop_map(
            |(scopes, rbac, skip, offline, user_access, client_access, defaults, always, required)| ApiR {
                scopes,
                rbac,
                skip,
                offline,
                user_access,
                client_access,
                defaults,
                always: always & 3,
                required: required & 5,
            },
        )
}

fn client_r() -> impl Strategy<Value = ClientR> {
    (
        0..4usize,
        any::<bool>(),
        prop::option::of(1..16usize),
        vec((0..2usize, prop::option::of(any::<bool>()), 1..64usize), 0..3),
    )
        .prop_map(|(kind, first_party, grant_types, grants)| ClientR {
            kind,
            first_party,
            grant_types,
            grants,
        })
}

fn policy_r() -> impl Strategy<Value = PolicyR> {
    (
        vec(api_r(), 1..3),
        vec((vec((0..2usize, 1..64usize), 0..3), 0..4usize), 0..4),
        vec(client_r(), 1..4),
        any::<bool>(),
        prop::option::of(0..2usize),
    )
        .prop_map(|(apis, roles, clients, reject, default_audience)| PolicyR {
            apis,
            roles,
            clients,
            reject,
            default_audience,
        })
}

/// The recipe as a policy document (maybe with references that do not resolve).
fn document(recipe: &PolicyR) -> Value {
    let apis: Vec<Value> = recipe
        .apis
        .iter()
        .enumerate()
        .map(|(a, api)| {
            let names = subset(&SCOPES, api.scopes);
            let scopes: Vec<Value> = names
                .iter()
                .enumerate()
                .map(|(j, name)| {
                    let consent = if api.always & (1 << j) != 0 {
                        "always"
                    } else {
                        "default"
                    };
                    json!({ "name": name, "description": name, "consent": consent,
                            "required": api.required & (1 << j) != 0 })
                })
                .collect();
            json!({
                "audience": AUDIENCES[a],
                "rbac": api.rbac,
                "allow_skipping_consent": api.skip,
                "allow_offline_access": api.offline,
                "user_access": pick(&USER_ACCESS, api.user_access),
                "client_access": pick(&CLIENT_ACCESS, api.client_access),
                "default_scopes": subset(&SCOPES, api.defaults),
                "scopes": scopes,
            })
        })
        .collect();
    let roles: Vec<Value> = recipe
        .roles
        .iter()
        .enumerate()
        .map(|(i, (permissions, inherits))| {
            let permissions: Vec<Value> = permissions
                .iter()
                .flat_map(|(a, refs)| {
                    subset(&REFS, *refs)
                        .into_iter()
                        .map(move |scope| json!({ "audience": pick(&AUDIENCES, *a), "scope": scope }))
                })
                .collect();
            let inherits = subset(&ROLES[..i], *inherits);
            json!({ "name": ROLES[i], "inherits": inherits, "permissions": permissions })
        })
        .collect();
    let clients: Vec<Value> = recipe
        .clients
        .iter()
        .enumerate()
        .map(|(i, client)| {
            let grants: Vec<Value> = client
                .grants
                .iter()
                .map(|(a, subject, refs)| {
                    let mut grant =
                        json!({ "audience": pick(&AUDIENCES, *a), "scopes": subset(&REFS, *refs) });
                    if let Some(user) = subject {
                        grant["subject"] = json!(if *user { "user" } else { "client" });
                    }
                    grant
                })
                .collect();
            let mut value = json!({
                "client_id": CLIENTS[i],
                "first_party": client.first_party,
                "kind": pick(&KINDS, client.kind),
                "grants": grants,
            });
            if let Some(types) = client.grant_types {
                value["grant_types"] = json!(subset(&FLOWS, types));
            }
            value
        })
        .collect();
    let mut settings = json!({ "unknown_scopes": if recipe.reject { "reject" } else { "ignore" } });
    if let Some(a) = recipe.default_audience {
        settings["default_audience"] = json!(pick(&AUDIENCES, a));
    }
    json!({ "settings": settings, "apis": apis, "roles": roles, "clients": clients })
}

/// Drops what no longer resolves, so that the document builds: references
/// to undefined scopes, patterns that match nothing, unknown APIs and
/// roles, a second grant for the same audience and subject, and
/// `client_credentials` of a public client.
fn repair(document: &mut Value) {
    let defined: Vec<(String, Vec<String>)> = document["apis"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|api| {
            let scopes = api["scopes"].as_array().into_iter().flatten();
            let names = scopes
                .filter_map(|s| s["name"].as_str().map(str::to_owned))
                .collect();
            (api["audience"].as_str().unwrap_or_default().to_owned(), names)
        })
        .collect();
    let resolves = |audience: &str, scope: &str| {
        defined.iter().any(|(a, names)| {
            a == audience
                && match scope.strip_suffix('*') {
                    Some(prefix) => names.iter().any(|n| n.starts_with(prefix)),
                    None => names.iter().any(|n| n == scope),
                }
        })
    };
    for api in document
        .get_mut("apis")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        let names: Vec<Value> = api["scopes"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| s["name"].clone())
            .collect();
        if let Some(defaults) = api.get_mut("default_scopes").and_then(Value::as_array_mut) {
            defaults.retain(|d| names.contains(d));
        }
    }
    let roles: Vec<String> = document["roles"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["name"].as_str().map(str::to_owned))
        .collect();
    for role in document
        .get_mut("roles")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        if let Some(permissions) = role.get_mut("permissions").and_then(Value::as_array_mut) {
            permissions.retain(|p| {
                resolves(
                    p["audience"].as_str().unwrap_or_default(),
                    p["scope"].as_str().unwrap_or_default(),
                )
            });
        }
        if let Some(inherits) = role.get_mut("inherits").and_then(Value::as_array_mut) {
            inherits.retain(|r| roles.iter().any(|name| Some(name.as_str()) == r.as_str()));
        }
    }
    for client in document
        .get_mut("clients")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        let kind = client["kind"].as_str().unwrap_or_default().to_owned();
        let public = kind == "spa" || kind == "native";
        if let Some(types) = client.get_mut("grant_types").and_then(Value::as_array_mut) {
            types.retain(|t| !(public && t == "client_credentials"));
        }
        let default_subject = if kind == "machine_to_machine" {
            "client"
        } else {
            "user"
        };
        let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
        if let Some(grants) = client.get_mut("grants").and_then(Value::as_array_mut) {
            grants.retain(|g| {
                let audience = g["audience"].as_str().unwrap_or_default().to_owned();
                let subject = g["subject"].as_str().unwrap_or(default_subject).to_owned();
                defined.iter().any(|(a, _)| *a == audience) && seen.insert((audience, subject))
            });
            for grant in grants.iter_mut() {
                let audience = grant["audience"].as_str().unwrap_or_default().to_owned();
                if let Some(scopes) = grant.get_mut("scopes").and_then(Value::as_array_mut) {
                    scopes.retain(|s| resolves(&audience, s.as_str().unwrap_or_default()));
                }
            }
        }
    }
    let default = document["settings"]["default_audience"]
        .as_str()
        .map(str::to_owned);
    if default.is_some_and(|d| !defined.iter().any(|(a, _)| *a == d)) {
        document["settings"]
            .as_object_mut()
            .map(|settings| settings.remove("default_audience"));
    }
}

/// One small edit: which (0..20) and three numbers that pick the target.
type Edit = (usize, usize, usize, usize);

/// The `i`th element (modulo the length) of the list at `key`.
fn nth<'v>(value: &'v mut Value, key: &str, i: usize) -> Option<&'v mut Value> {
    let items = value.get_mut(key).and_then(Value::as_array_mut)?;
    let n = items.len();
    items.get_mut(i % n.max(1))
}

fn edit(document: &mut Value, (op, a, b, c): Edit) {
    let toggle = |value: &mut Value| *value = json!(!value.as_bool().unwrap_or(false));
    match op {
        0 => nth(document, "apis", a).map(|api| toggle(&mut api["rbac"])),
        1 => nth(document, "apis", a).map(|api| api["user_access"] = json!(pick(&USER_ACCESS, b))),
        2 => nth(document, "apis", a).map(|api| api["client_access"] = json!(pick(&CLIENT_ACCESS, b))),
        3 => nth(document, "apis", a).map(|api| toggle(&mut api["allow_skipping_consent"])),
        4 => nth(document, "apis", a).map(|api| toggle(&mut api["allow_offline_access"])),
        5 => nth(document, "apis", a)
            .and_then(|api| nth(api, "scopes", b))
            .map(|scope| {
                let always = scope["consent"] == "always";
                scope["consent"] = json!(if always { "default" } else { "always" });
            }),
        6 => nth(document, "apis", a)
            .and_then(|api| nth(api, "scopes", b))
            .map(|scope| toggle(&mut scope["required"])),
        7 => nth(document, "apis", a).and_then(|api| {
            let name = pick(&SCOPES, b);
            let scopes = api.get_mut("scopes").and_then(Value::as_array_mut)?;
            if !scopes.iter().any(|s| s["name"] == name) {
                scopes.push(json!({ "name": name, "description": name }));
            }
            Some(())
        }),
        8 => nth(document, "apis", a).and_then(|api| {
            let scopes = api.get_mut("scopes").and_then(Value::as_array_mut)?;
            if scopes.len() > 1 {
                scopes.remove(b % scopes.len());
            }
            Some(())
        }),
        9 => document
            .get_mut("roles")
            .and_then(Value::as_array_mut)
            .and_then(|roles| {
                let n = roles.len();
                let role = roles.get_mut(b % n.max(1))?;
                let permission = json!({ "audience": pick(&AUDIENCES, a), "scope": pick(&REFS, c) });
                role.get_mut("permissions")
                    .and_then(Value::as_array_mut)?
                    .push(permission);
                Some(())
            }),
        10 => document
            .get_mut("roles")
            .and_then(Value::as_array_mut)
            .and_then(|roles| {
                let n = roles.len();
                let permissions = roles
                    .get_mut(b % n.max(1))?
                    .get_mut("permissions")
                    .and_then(Value::as_array_mut)?;
                if !permissions.is_empty() {
                    permissions.remove(c % permissions.len());
                }
                Some(())
            }),
        11 => document
            .get_mut("clients")
            .and_then(Value::as_array_mut)
            .and_then(|clients| {
                let n = clients.len();
                let client = clients.get_mut(b % n.max(1))?;
                let audience = pick(&AUDIENCES, a);
                let grants = client.get_mut("grants").and_then(Value::as_array_mut)?;
                match grants.iter_mut().find(|g| g["audience"] == audience) {
                    Some(grant) => grant
                        .get_mut("scopes")
                        .and_then(Value::as_array_mut)?
                        .push(json!(pick(&REFS, c))),
                    None => grants.push(json!({ "audience": audience, "scopes": [pick(&REFS, c)] })),
                }
                Some(())
            }),
        12 => document
            .get_mut("clients")
            .and_then(Value::as_array_mut)
            .and_then(|clients| {
                let n = clients.len();
                let grants = clients
                    .get_mut(b % n.max(1))?
                    .get_mut("grants")
                    .and_then(Value::as_array_mut)?;
                if !grants.is_empty() {
                    grants.remove(c % grants.len());
                }
                Some(())
            }),
        13 => document
            .get_mut("clients")
            .and_then(Value::as_array_mut)
            .and_then(|clients| {
                let n = clients.len();
                toggle(&mut clients.get_mut(b % n.max(1))?["first_party"]);
                Some(())
            }),
        14 => document
            .get_mut("clients")
            .and_then(Value::as_array_mut)
            .and_then(|clients| {
                let n = clients.len();
                let client = clients.get_mut(b % n.max(1))?;
                client["grant_types"] = json!(subset(&FLOWS, 1 + c % 15));
                Some(())
            }),
        15 => document
            .get_mut("clients")
            .and_then(Value::as_array_mut)
            .and_then(|clients| {
                let n = clients.len();
                clients.get_mut(b % n.max(1))?["kind"] = json!(pick(&KINDS, c));
                Some(())
            }),
        16 => nth(document, "apis", a).and_then(|api| {
            let name = json!(pick(&SCOPES, b));
            let defaults = api.get_mut("default_scopes").and_then(Value::as_array_mut)?;
            match defaults.iter().position(|d| *d == name) {
                Some(at) => {
                    defaults.remove(at);
                }
                None => defaults.push(name),
            }
            Some(())
        }),
        17 => {
            let reject = document["settings"]["unknown_scopes"] == "reject";
            document["settings"]["unknown_scopes"] = json!(if reject { "ignore" } else { "reject" });
            Some(())
        }
        18 => {
            if b % 3 == 0 {
                if let Some(settings) = document["settings"].as_object_mut() {
                    settings.remove("default_audience");
                }
            } else {
                document["settings"]["default_audience"] = json!(pick(&AUDIENCES, c));
            }
            Some(())
        }
        _ => document
            .get_mut("roles")
            .and_then(Value::as_array_mut)
            .and_then(|roles| {
                // Remove a role, or inherit an earlier one.
                let n = roles.len();
                if n == 0 {
                    return None;
                }
                if c % 2 == 0 {
                    roles.remove(b % n);
                } else if b % n > 0 {
                    let earlier = ROLES[c % (b % n)];
                    roles
                        .get_mut(b % n)?
                        .get_mut("inherits")
                        .and_then(Value::as_array_mut)?
                        .push(json!(earlier));
                }
                Some(())
            }),
    };
}

/// Every list reversed and every object's keys in reverse order.
fn reversed(value: &Value) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.iter().rev().map(reversed).collect()),
        Value::Object(map) => {
            Value::Object(map.iter().rev().map(|(k, v)| (k.clone(), reversed(v))).collect())
        }
        other => other.clone(),
    }
}

/// Writes a document to a fresh file of the test's temporary folder.
fn write(document: &Value) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("diff-property-{}-{n}.json", std::process::id()));
    std::fs::write(&path, serde_json::to_string_pretty(document).expect("JSON")).expect("a temporary file");
    path
}

/// `diff --json OLD NEW`: its changes and how many widen.
fn diff(old: &Path, new: &Path) -> (Vec<Value>, u64) {
    let old = old.to_string_lossy();
    let new = new.to_string_lossy();
    let (code, report) = run_json(&["diff", "--json", &old, &new]);
    assert_eq!(code, 0, "{report}");
    let changes = report["changes"].as_array().cloned().unwrap_or_default();
    (changes, report["widenings"].as_u64().unwrap_or(u64::MAX))
}

/// The scopes a request is granted: in a grant, or without asking beside a prompt.
fn granted(policy: &Policy, request: &Request<'_>) -> BTreeSet<String> {
    match policy.grant(request) {
        Ok(Decision::Granted(grant)) => grant.scopes().map(str::to_owned).collect(),
        Ok(Decision::ConsentRequired(prompt)) => prompt.granted().map(str::to_owned).collect(),
        Err(_) => BTreeSet::new(),
    }
}

/// A request granted more under `new` than under `old`, if any, described.
fn granted_more(old: &Policy, new: &Policy) -> Option<String> {
    let every = "read:x write:x read:y admin openid offline_access";
    let mut params: Vec<Option<&str>> = vec![None, Some(every)];
    params.extend(every.split(' ').map(Some));
    let users: Vec<User> = std::iter::once(User::new("u"))
        .chain(ROLES.iter().map(|role| User::new("u").with_role(*role)))
        .chain(std::iter::once(
            ROLES
                .iter()
                .fold(User::new("u"), |user, role| user.with_role(*role)),
        ))
        .collect();
    let flows = [
        Flow::AuthorizationCode,
        Flow::DeviceCode,
        Flow::RefreshToken,
        Flow::ClientCredentials,
    ];
    let audiences: Vec<Option<&str>> = std::iter::once(None)
        .chain(AUDIENCES.iter().copied().map(Some))
        .collect();
    for client in CLIENTS {
        for audience in &audiences {
            let all: Vec<Scope> = every.split(' ').filter_map(|s| s.parse().ok()).collect();
            let record = [ConsentRecord::new("u", client, *audience).with_scopes(all)];
            for flow in flows {
                let with_user: &[User] = if flow.has_user() { &users } else { &users[..1] };
                let records: &[&[ConsentRecord]] = if flow.has_user() { &[&[], &record] } else { &[&[]] };
                for user in with_user {
                    for consents in records {
                        for scope in &params {
                            let mut request = Request::new(client)
                                .flow(flow)
                                .maybe_audience(*audience)
                                .maybe_scope(*scope)
                                .consents(consents);
                            if flow.has_user() {
                                request = request.user(user);
                            }
                            if flow == Flow::RefreshToken {
                                request = request.original_scope(every).maybe_original_audience(*audience);
                            }
                            let more: Vec<String> = granted(new, &request)
                                .difference(&granted(old, &request))
                                .cloned()
                                .collect();
                            if !more.is_empty() {
                                return Some(format!("{request:?} is granted {more:?} more"));
                            }
                        }
                    }
                }
            }
        }
    }
    None
}

fn config() -> ProptestConfig {
    let mut config = ProptestConfig::with_cases(48);
    if let Some(cases) = std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()) {
        config.cases = cases;
    }
    config.failure_persistence = None;
    config
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn diff_reports_a_widening_whenever_a_request_is_granted_more(
        recipe in policy_r(),
        edits in vec((0..20usize, 0..8usize, 0..8usize, 0..8usize), 1..4),
    ) {
        let mut old = document(&recipe);
        repair(&mut old);
        let mut new = old.clone();
        for one in &edits {
            edit(&mut new, *one);
        }
        repair(&mut new);
        let old_policy = Policy::from_json(&old.to_string());
        let new_policy = Policy::from_json(&new.to_string());
        prop_assert!(old_policy.is_ok(), "{old_policy:?}\n{old:#}");
        prop_assert!(new_policy.is_ok(), "{new_policy:?}\n{new:#}");
        let (old_file, new_file) = (write(&old), write(&new));

        let (same, _) = diff(&old_file, &old_file);
        prop_assert!(same.is_empty(), "diff P P: {same:#?}");
        let reordered = write(&reversed(&old));
        let (same, _) = diff(&old_file, &reordered);
        prop_assert!(same.is_empty(), "diff P reversed(P): {same:#?}");

        let (changes, widenings) = diff(&old_file, &new_file);
        if widenings == 0 {
            let (old_policy, new_policy) = (old_policy.unwrap(), new_policy.unwrap());
            let more = granted_more(&old_policy, &new_policy);
            prop_assert!(
                more.is_none(),
                "{}, but diff reports no widening: {changes:#?}\nP = {old:#}\nQ = {new:#}",
                more.unwrap_or_default()
            );
        }
        for file in [old_file, new_file, reordered] {
            let _ = std::fs::remove_file(file);
        }
    }
}

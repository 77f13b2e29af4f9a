//! `scope-policy diff OLD NEW`: what a change to the policy widens or
//! narrows. Both policies are reduced to capabilities keyed by name
//! (audience, scope, role, client id), so reordering a file changes nothing:
//!
//! - the policy's settings (`unknown_scopes`, `default_audience`, the
//!   limits, `consent_lifetime`);
//! - per API: its scopes, access policies (`rbac`, `user_access`,
//!   `client_access`, `allow_offline_access`), consent settings
//!   (`allow_skipping_consent`, each scope's `consent` and `required`),
//!   `default_scopes`; what each role can obtain (on APIs with RBAC, with
//!   inheritance); what each client can obtain for users and for itself,
//!   and whether without asking (found by asking the decision, see `reach`);
//! - per client: `first_party`, grant types, kind; per role: `inherits`.
//!
//! Each change is a **widening** (someone can obtain more, or is asked for
//! consent less), a **narrowing** (the reverse), or **neutral** (it changes
//! no decision by itself: a description, a kind, a role's `inherits`, a role
//! added or removed; what they change shows up as other lines). Decisions
//! that are not obvious:
//!
//! - `required: false -> true` widens: the user can no longer leave the
//!   scope out of an approval, and an earlier decline no longer keeps it out
//!   of a prompt; `true -> false` narrows.
//! - `consent: default -> always` narrows (asked every time, never remembered).
//! - any change of `default_audience` widens: requests that name no
//!   audience are then decided under another API's settings, or under none
//!   (where consent records without an audience, and the client alone, decide
//!   the OpenID Connect scopes), which can grant what was not granted.
//! - a longer `consent_lifetime` (or none) widens; a shorter one narrows.
//! - larger scope limits widen (more requests are accepted).
//! - role lines appear only where the API has RBAC on both sides; where
//!   `rbac` itself changes, that line says it for every role.
//!
//! Human output: changes grouped under `policy settings`, `API …`,
//! `client …`, `role …` (each group sorted by name), one line each,
//! `  widening   SENTENCE`, then a count. `--json`: `{"changes": [...],
//! "widenings", "narrowings", "neutral"}`.

use std::collections::{BTreeMap, BTreeSet};

use clap::Args;
use scope_policy::{ClientAccess, Policy, ScopeConsent, Subject, UnknownScopes, UserAccess};
use serde::Serialize;
use serde_json::Value;

use crate::reach::{How, Reaches};
use crate::source::ReadOptions;
use crate::{load_policy, Exit, Out};

/// `diff`'s arguments.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The policy before the change.
    #[arg(value_name = "OLD")]
    old: String,
    /// The policy after the change.
    #[arg(value_name = "NEW")]
    new: String,
    /// Exit 1 when anything widens (a CI gate for policy pull requests).
    #[arg(long)]
    fail_on_widening: bool,
}

/// Whether a change gives more or less.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mark {
    /// Someone can obtain more, or is asked for consent less.
    Widening,
    /// Someone can obtain less, or is asked for consent more.
    Narrowing,
    /// No decision changes by this line alone.
    Neutral,
}

impl Mark {
    fn of(wider: bool) -> Mark {
        if wider {
            Mark::Widening
        } else {
            Mark::Narrowing
        }
    }

    fn word(self) -> &'static str {
        match self {
            Mark::Widening => "widening",
            Mark::Narrowing => "narrowing",
            Mark::Neutral => "neutral",
        }
    }
}

/// One change, as data.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    /// Widening, narrowing or neutral.
    pub mark: Mark,
    /// The API it is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// The role it is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The client it is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// For a client's capability: `user` or `client` (for itself).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<Subject>,
    /// The setting that changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub setting: Option<String>,
    /// The old value of the setting.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old: Option<Value>,
    /// The new value of the setting.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new: Option<Value>,
    /// The scopes it is about, sorted.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// One sentence for people.
    pub message: String,
}

impl Change {
    fn new(mark: Mark, message: String) -> Change {
        Change {
            mark,
            audience: None,
            role: None,
            client_id: None,
            subject: None,
            setting: None,
            old: None,
            new: None,
            scopes: Vec::new(),
            message,
        }
    }

    fn setting(mut self, name: &str, old: impl Serialize, new: impl Serialize) -> Change {
        self.setting = Some(name.to_owned());
        self.old = serde_json::to_value(old).ok();
        self.new = serde_json::to_value(new).ok();
        self
    }

    fn scopes<'s>(mut self, scopes: impl IntoIterator<Item = &'s String>) -> Change {
        self.scopes = scopes.into_iter().cloned().collect();
        self
    }

    /// The heading a change goes under.
    fn group(&self) -> String {
        match (&self.audience, &self.client_id, &self.role) {
            (Some(audience), _, _) => format!("API `{audience}`"),
            (None, Some(client), _) => format!("client `{client}`"),
            (None, None, Some(role)) => format!("role `{role}`"),
            (None, None, None) => "policy settings".to_owned(),
        }
    }
}

/// A policy's capabilities, keyed by names.
#[derive(Debug, Default)]
struct Snapshot {
    unknown_scopes: String,
    default_audience: Option<String>,
    max_scope_length: usize,
    max_scope_tokens: usize,
    consent_lifetime: Option<u64>,
    apis: BTreeMap<String, ApiSnap>,
    /// Role → inherits, and audience → scopes it permits (APIs with RBAC only).
    roles: BTreeMap<String, RoleSnap>,
    clients: BTreeMap<String, ClientSnap>,
}

#[derive(Debug)]
struct ApiSnap {
    rbac: bool,
    allow_skipping_consent: bool,
    allow_offline_access: bool,
    user_access: UserAccess,
    client_access: ClientAccess,
    default_scopes: BTreeSet<String>,
    scopes: BTreeMap<String, ScopeSnap>,
}

#[derive(Debug, PartialEq, Eq)]
struct ScopeSnap {
    description: String,
    consent: ScopeConsent,
    required: bool,
}

#[derive(Debug, Default)]
struct RoleSnap {
    inherits: BTreeSet<String>,
    permits: BTreeMap<String, BTreeSet<String>>,
}

#[derive(Debug, Default)]
struct ClientSnap {
    first_party: bool,
    kind: String,
    grant_types: BTreeSet<String>,
    /// (audience, subject) → scope → how.
    reach: BTreeMap<(String, Subject), BTreeMap<String, How>>,
    /// (audience, subject) → the flows in which the API admits the client.
    admitted: BTreeMap<(String, Subject), BTreeSet<String>>,
}

impl Snapshot {
    fn of(policy: &Policy) -> Snapshot {
        let reaches = Reaches::of(policy);
        let apis = policy
            .apis()
            .map(|api| {
                let scopes = api
                    .definitions()
                    .map(|d| {
                        let snap = ScopeSnap {
                            description: d.description().to_owned(),
                            consent: d.consent(),
                            required: d.required(),
                        };
                        (d.name().to_string(), snap)
                    })
                    .collect();
                let snap = ApiSnap {
                    rbac: api.rbac(),
                    allow_skipping_consent: api.allow_skipping_consent(),
                    allow_offline_access: api.allow_offline_access(),
                    user_access: api.user_access(),
                    client_access: api.client_access(),
                    default_scopes: api.default_scopes().map(ToString::to_string).collect(),
                    scopes,
                };
                (api.audience().to_owned(), snap)
            })
            .collect();
        let roles = policy
            .roles()
            .map(|role| {
                let permits = policy
                    .apis()
                    .filter(|api| api.rbac())
                    .map(|api| {
                        (
                            api.audience().to_owned(),
                            role.scopes(api).map(ToString::to_string).collect(),
                        )
                    })
                    .collect();
                let inherits = role.inherits().map(str::to_owned).collect();
                (role.name().to_owned(), RoleSnap { inherits, permits })
            })
            .collect();
        let clients = policy
            .clients()
            .enumerate()
            .map(|(i, client)| {
                let mut reach = BTreeMap::new();
                let mut admitted = BTreeMap::new();
                for (a, api) in policy.apis().enumerate() {
                    for subject in [Subject::User, Subject::Client] {
                        let key = (api.audience().to_owned(), subject);
                        let Some(found) = reaches.get(i, a, subject) else {
                            continue;
                        };
                        reach.insert(key.clone(), found.scopes().into_iter().collect());
                        admitted.insert(key, found.admitted().iter().map(ToString::to_string).collect());
                    }
                }
                let snap = ClientSnap {
                    first_party: client.first_party(),
                    kind: client.kind().to_string(),
                    grant_types: client.grant_types().iter().map(ToString::to_string).collect(),
                    reach,
                    admitted,
                };
                (client.client_id().to_owned(), snap)
            })
            .collect();
        Snapshot {
            unknown_scopes: policy.unknown_scopes().to_string(),
            default_audience: policy.default_audience().map(|api| api.audience().to_owned()),
            max_scope_length: policy.limits().max_scope_length,
            max_scope_tokens: policy.limits().max_scope_tokens,
            consent_lifetime: policy.consent_lifetime(),
            apis,
            roles,
            clients,
        }
    }
}

/// Runs `diff`.
pub fn run(args: &DiffArgs, options: &ReadOptions, json: bool, out: &mut Out, err: &mut Out) -> Exit {
    let Some((_, old)) = load_policy(&args.old, options, json, out, err) else {
        return Exit::Unusable;
    };
    let Some((_, new)) = load_policy(&args.new, options, json, out, err) else {
        return Exit::Unusable;
    };
    let changes = diff(&old.policy, &new.policy);
    let count = |mark: Mark| changes.iter().filter(|c| c.mark == mark).count();
    let (widenings, narrowings, neutral) = (
        count(Mark::Widening),
        count(Mark::Narrowing),
        count(Mark::Neutral),
    );
    if json {
        out.json(&serde_json::json!({
            "changes": changes,
            "widenings": widenings,
            "narrowings": narrowings,
            "neutral": neutral,
        }));
    } else {
        let mut group = None;
        for change in &changes {
            let heading = change.group();
            if group.as_ref() != Some(&heading) {
                out.line(&heading);
                group = Some(heading);
            }
            out.line(format!("  {:<9}  {}", change.mark.word(), change.message));
        }
        if changes.is_empty() {
            out.line("no change");
        } else {
            let plural = |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
            out.line(format!(
                "{}, {}, {} neutral",
                plural(widenings, "widening", "widenings"),
                plural(narrowings, "narrowing", "narrowings"),
                neutral
            ));
        }
    }
    if args.fail_on_widening && widenings > 0 {
        Exit::Findings
    } else {
        Exit::Ok
    }
}

/// Every change from `old` to `new`: settings, then APIs, clients and roles, each sorted by name.
pub fn diff(old: &Policy, new: &Policy) -> Vec<Change> {
    let (old, new) = (Snapshot::of(old), Snapshot::of(new));
    let mut changes = settings(&old, &new);
    let audiences: BTreeSet<&String> = old.apis.keys().chain(new.apis.keys()).collect();
    for audience in audiences {
        changes.extend(api(&old, &new, audience));
    }
    let clients: BTreeSet<&String> = old.clients.keys().chain(new.clients.keys()).collect();
    for id in clients {
        changes.extend(client(old.clients.get(id), new.clients.get(id), id));
    }
    let roles: BTreeSet<&String> = old.roles.keys().chain(new.roles.keys()).collect();
    for name in roles {
        changes.extend(role(old.roles.get(name), new.roles.get(name), name));
    }
    changes
}

fn settings(old: &Snapshot, new: &Snapshot) -> Vec<Change> {
    let mut changes = Vec::new();
    if old.unknown_scopes != new.unknown_scopes {
        let wider = new.unknown_scopes == UnknownScopes::Ignore.as_str();
        let what = if wider {
            "is no longer refused"
        } else {
            "is now refused (invalid_scope)"
        };
        changes.push(
            Change::new(
                Mark::of(wider),
                format!(
                    "unknown_scopes: {} -> {}: a request naming an undefined scope {what}",
                    old.unknown_scopes, new.unknown_scopes
                ),
            )
            .setting("unknown_scopes", &old.unknown_scopes, &new.unknown_scopes),
        );
    }
    if old.default_audience != new.default_audience {
        let text =
            |audience: &Option<String>| audience.as_ref().map_or("none".to_owned(), |a| format!("`{a}`"));
        let what = match &new.default_audience {
            Some(audience) => format!("requests that name no audience are now decided for `{audience}`"),
            None => "requests that name no audience get no API scope, and their OpenID Connect scopes \
                     follow the client and consent records without an audience"
                .to_owned(),
        };
        // Either way requests that name no audience are decided under other
        // settings (another API's, or none), which can grant what was not: widening.
        changes.push(
            Change::new(
                Mark::Widening,
                format!(
                    "default_audience: {} -> {}: {what}",
                    text(&old.default_audience),
                    text(&new.default_audience)
                ),
            )
            .setting("default_audience", &old.default_audience, &new.default_audience),
        );
    }
    for (name, before, after) in [
        ("max_scope_length", old.max_scope_length, new.max_scope_length),
        ("max_scope_tokens", old.max_scope_tokens, new.max_scope_tokens),
    ] {
        if before != after {
            let what = if after > before {
                "longer scope parameters are accepted"
            } else {
                "longer scope parameters are refused (invalid_scope)"
            };
            changes.push(
                Change::new(
                    Mark::of(after > before),
                    format!("{name}: {before} -> {after}: {what}"),
                )
                .setting(name, before, after),
            );
        }
    }
    if old.consent_lifetime != new.consent_lifetime {
        let text = |lifetime: Option<u64>| lifetime.map_or("none".to_owned(), |s| format!("{s} s"));
        // None is forever: longer is wider.
        let wider = match (old.consent_lifetime, new.consent_lifetime) {
            (_, None) => true,
            (None, Some(_)) => false,
            (Some(before), Some(after)) => after > before,
        };
        let what = if wider {
            "consent the user gives lasts longer"
        } else {
            "consent the user gives expires sooner"
        };
        changes.push(
            Change::new(
                Mark::of(wider),
                format!(
                    "consent_lifetime: {} -> {}: {what}",
                    text(old.consent_lifetime),
                    text(new.consent_lifetime)
                ),
            )
            .setting("consent_lifetime", old.consent_lifetime, new.consent_lifetime),
        );
    }
    changes
}

/// `` `a`, `b` ``.
fn list<'s>(scopes: impl IntoIterator<Item = &'s String>) -> String {
    let quoted: Vec<String> = scopes.into_iter().map(|s| format!("`{s}`")).collect();
    quoted.join(", ")
}

fn user_access_rank(access: UserAccess) -> u8 {
    match access {
        UserAccess::AllowAll => 2,
        UserAccess::RequireClientGrant => 1,
        _ => 0,
    }
}

fn client_access_rank(access: ClientAccess) -> u8 {
    match access {
        ClientAccess::RequireClientGrant => 1,
        _ => 0,
    }
}

fn api(old: &Snapshot, new: &Snapshot, audience: &str) -> Vec<Change> {
    let mut changes = Vec::new();
    let (before, after) = (old.apis.get(audience), new.apis.get(audience));
    match (before, after) {
        (None, Some(api)) => changes.push(Change::new(
            Mark::Widening,
            format!("the API is new, with {} scope(s)", api.scopes.len()),
        )),
        (Some(api), None) => changes.push(Change::new(
            Mark::Narrowing,
            format!("the API is gone, with its {} scope(s)", api.scopes.len()),
        )),
        (Some(before), Some(after)) => api_settings(before, after, &mut changes),
        (None, None) => {}
    }
    // Roles: only where the API has RBAC on every side it exists.
    let rbac = |api: Option<&ApiSnap>| api.map(|api| api.rbac);
    let compare_roles = match (rbac(before), rbac(after)) {
        (Some(a), Some(b)) => a && b,
        (Some(only), None) | (None, Some(only)) => only,
        (None, None) => false,
    };
    if compare_roles {
        let names: BTreeSet<&String> = old.roles.keys().chain(new.roles.keys()).collect();
        let empty = BTreeSet::new();
        for name in names {
            let permits = |snapshot: &'_ Snapshot| -> BTreeSet<String> {
                let role = snapshot.roles.get(name);
                role.and_then(|role| role.permits.get(audience))
                    .unwrap_or(&empty)
                    .clone()
            };
            let (was, is) = (permits(old), permits(new));
            let gained: Vec<&String> = is.difference(&was).collect();
            let lost: Vec<&String> = was.difference(&is).collect();
            if !gained.is_empty() {
                let mut change = Change::new(
                    Mark::Widening,
                    format!("role `{name}` can now obtain {}", list(gained.iter().copied())),
                )
                .scopes(gained.iter().copied());
                change.role = Some(name.clone());
                changes.push(change);
            }
            if !lost.is_empty() {
                let mut change = Change::new(
                    Mark::Narrowing,
                    format!(
                        "role `{name}` can no longer obtain {}",
                        list(lost.iter().copied())
                    ),
                )
                .scopes(lost.iter().copied());
                change.role = Some(name.clone());
                changes.push(change);
            }
        }
    }
    // Clients, for users and for themselves.
    let ids: BTreeSet<&String> = old.clients.keys().chain(new.clients.keys()).collect();
    let empty = BTreeMap::new();
    for id in ids {
        for subject in [Subject::User, Subject::Client] {
            let reach = |snapshot: &'_ Snapshot| -> BTreeMap<String, How> {
                let client = snapshot.clients.get(id);
                let key = (audience.to_owned(), subject);
                client.and_then(|c| c.reach.get(&key)).unwrap_or(&empty).clone()
            };
            let (was, is) = (reach(old), reach(new));
            let admitted = |snapshot: &'_ Snapshot| -> BTreeSet<String> {
                let client = snapshot.clients.get(id);
                let key = (audience.to_owned(), subject);
                client
                    .and_then(|c| c.admitted.get(&key))
                    .cloned()
                    .unwrap_or_default()
            };
            let reach_changes = client_reach(id, subject, &was, &is);
            // Being admitted matters on its own only when no scope says it.
            let said = |mark: Mark| reach_changes.iter().any(|change| change.mark == mark);
            let admission = client_admitted(id, subject, &admitted(old), &admitted(new));
            changes.extend(admission.into_iter().filter(|change| !said(change.mark)));
            changes.extend(reach_changes);
        }
    }
    for change in &mut changes {
        change.audience = Some(audience.to_owned());
    }
    changes
}

fn api_settings(before: &ApiSnap, after: &ApiSnap, changes: &mut Vec<Change>) {
    let old_scopes: BTreeSet<&String> = before.scopes.keys().collect();
    let new_scopes: BTreeSet<&String> = after.scopes.keys().collect();
    let added: Vec<&String> = new_scopes.difference(&old_scopes).copied().collect();
    let removed: Vec<&String> = old_scopes.difference(&new_scopes).copied().collect();
    if !added.is_empty() {
        changes.push(
            Change::new(
                Mark::Widening,
                format!("defines new scope(s) {}", list(added.iter().copied())),
            )
            .scopes(added.iter().copied()),
        );
    }
    if !removed.is_empty() {
        changes.push(
            Change::new(
                Mark::Narrowing,
                format!("no longer defines {}", list(removed.iter().copied())),
            )
            .scopes(removed.iter().copied()),
        );
    }
    if before.rbac != after.rbac {
        let what = if after.rbac {
            "users get only the scopes their roles or direct permissions allow"
        } else {
            "users get its scopes whatever their roles"
        };
        changes.push(
            Change::new(
                Mark::of(!after.rbac),
                format!("rbac: {} -> {}: {what}", before.rbac, after.rbac),
            )
            .setting("rbac", before.rbac, after.rbac),
        );
    }
    if before.user_access != after.user_access {
        let wider = user_access_rank(after.user_access) > user_access_rank(before.user_access);
        changes.push(
            Change::new(
                Mark::of(wider),
                format!(
                    "user_access: {} -> {}: {}",
                    before.user_access,
                    after.user_access,
                    if wider {
                        "more clients may get user tokens for it"
                    } else {
                        "fewer clients may get user tokens for it"
                    }
                ),
            )
            .setting("user_access", before.user_access, after.user_access),
        );
    }
    if before.client_access != after.client_access {
        let wider = client_access_rank(after.client_access) > client_access_rank(before.client_access);
        changes.push(
            Change::new(
                Mark::of(wider),
                format!(
                    "client_access: {} -> {}: {}",
                    before.client_access,
                    after.client_access,
                    if wider {
                        "clients with a grant may get tokens for themselves"
                    } else {
                        "no client gets tokens for itself"
                    }
                ),
            )
            .setting("client_access", before.client_access, after.client_access),
        );
    }
    if before.allow_offline_access != after.allow_offline_access {
        let what = if after.allow_offline_access {
            "offline_access (refresh tokens) may now be granted"
        } else {
            "offline_access (refresh tokens) is no longer granted"
        };
        changes.push(
            Change::new(
                Mark::of(after.allow_offline_access),
                format!(
                    "allow_offline_access: {} -> {}: {what}",
                    before.allow_offline_access, after.allow_offline_access
                ),
            )
            .setting(
                "allow_offline_access",
                before.allow_offline_access,
                after.allow_offline_access,
            ),
        );
    }
    if before.allow_skipping_consent != after.allow_skipping_consent {
        let what = if after.allow_skipping_consent {
            "first-party clients no longer ask for consent"
        } else {
            "first-party clients now ask for consent"
        };
        changes.push(
            Change::new(
                Mark::of(after.allow_skipping_consent),
                format!(
                    "allow_skipping_consent: {} -> {}: {what}",
                    before.allow_skipping_consent, after.allow_skipping_consent
                ),
            )
            .setting(
                "allow_skipping_consent",
                before.allow_skipping_consent,
                after.allow_skipping_consent,
            ),
        );
    }
    let added: Vec<&String> = after.default_scopes.difference(&before.default_scopes).collect();
    let removed: Vec<&String> = before.default_scopes.difference(&after.default_scopes).collect();
    if !added.is_empty() {
        changes.push(
            Change::new(
                Mark::Widening,
                format!(
                    "default_scopes: a request naming no scope now also asks {}",
                    list(added.iter().copied())
                ),
            )
            .scopes(added.iter().copied()),
        );
    }
    if !removed.is_empty() {
        changes.push(
            Change::new(
                Mark::Narrowing,
                format!(
                    "default_scopes: a request naming no scope no longer asks {}",
                    list(removed.iter().copied())
                ),
            )
            .scopes(removed.iter().copied()),
        );
    }
    for (scope, was) in &before.scopes {
        let Some(is) = after.scopes.get(scope) else {
            continue;
        };
        let one = std::slice::from_ref(scope);
        if was.consent != is.consent {
            let wider = is.consent == ScopeConsent::Default;
            let what = if wider {
                "consent to it may now be remembered, and first-party clients may skip it"
            } else {
                "it is now asked on every interactive request and never remembered"
            };
            changes.push(
                Change::new(
                    Mark::of(wider),
                    format!("`{scope}` consent: {} -> {}: {what}", was.consent, is.consent),
                )
                .setting("consent", was.consent, is.consent)
                .scopes(one),
            );
        }
        if was.required != is.required {
            let what = if is.required {
                "the user can no longer leave it out of an approval, and an earlier decline no longer keeps it out"
            } else {
                "the user may leave it out of an approval"
            };
            changes.push(
                Change::new(
                    Mark::of(is.required),
                    format!("`{scope}` required: {} -> {}: {what}", was.required, is.required),
                )
                .setting("required", was.required, is.required)
                .scopes(one),
            );
        }
        if was.description != is.description {
            changes.push(
                Change::new(
                    Mark::Neutral,
                    format!(
                        "`{scope}` description: {:?} -> {:?}: the consent prompt reads differently",
                        was.description, is.description
                    ),
                )
                .setting("description", &was.description, &is.description)
                .scopes(one),
            );
        }
    }
}

/// The flows in which the API newly admits a client, or no longer does: a
/// client admitted for users gets OpenID Connect scopes at least.
fn client_admitted(id: &str, subject: Subject, was: &BTreeSet<String>, is: &BTreeSet<String>) -> Vec<Change> {
    let whom = match subject {
        Subject::User => "user tokens",
        _ => "tokens for itself",
    };
    let mut changes = Vec::new();
    let gained: Vec<&String> = is.difference(was).collect();
    let lost: Vec<&String> = was.difference(is).collect();
    for (mark, flows, verb) in [
        (Mark::Widening, gained, "may now"),
        (Mark::Narrowing, lost, "may no longer"),
    ] {
        if !flows.is_empty() {
            let mut change = Change::new(
                mark,
                format!("client `{id}` {verb} get {whom} in {}", list(flows)),
            );
            change.client_id = Some(id.to_owned());
            change.subject = Some(subject);
            changes.push(change);
        }
    }
    changes
}

/// What a client gained or lost on one API for one subject.
fn client_reach(
    id: &str,
    subject: Subject,
    was: &BTreeMap<String, How>,
    is: &BTreeMap<String, How>,
) -> Vec<Change> {
    let whom = match subject {
        Subject::User => "for users",
        _ => "for itself",
    };
    let mut changes = Vec::new();
    let mut push = |mark: Mark, scopes: Vec<&String>, message: String| {
        if !scopes.is_empty() {
            let mut change = Change::new(mark, message).scopes(scopes);
            change.client_id = Some(id.to_owned());
            change.subject = Some(subject);
            changes.push(change);
        }
    };
    for how in [How::WithoutAsking, How::WithConsent] {
        let gained: Vec<&String> = is
            .iter()
            .filter(|(scope, h)| **h == how && !was.contains_key(*scope))
            .map(|(scope, _)| scope)
            .collect();
        let manner = match subject {
            Subject::User => format!(", {}", how.phrase()),
            _ => String::new(),
        };
        let message = format!(
            "client `{id}` can now obtain {} {whom}{manner}",
            list(gained.iter().copied())
        );
        push(Mark::Widening, gained, message);
    }
    let lost: Vec<&String> = was.keys().filter(|scope| !is.contains_key(*scope)).collect();
    let message = format!(
        "client `{id}` can no longer obtain {} {whom}",
        list(lost.iter().copied())
    );
    push(Mark::Narrowing, lost, message);
    let easier: Vec<&String> = is
        .iter()
        .filter(|(scope, how)| **how == How::WithoutAsking && was.get(*scope) == Some(&How::WithConsent))
        .map(|(scope, _)| scope)
        .collect();
    let message = format!(
        "client `{id}` now obtains {} {whom} without asking (before: with the user's consent)",
        list(easier.iter().copied())
    );
    push(Mark::Widening, easier, message);
    let harder: Vec<&String> = is
        .iter()
        .filter(|(scope, how)| **how == How::WithConsent && was.get(*scope) == Some(&How::WithoutAsking))
        .map(|(scope, _)| scope)
        .collect();
    let message = format!(
        "client `{id}` now obtains {} {whom} only with the user's consent (before: without asking)",
        list(harder.iter().copied())
    );
    push(Mark::Narrowing, harder, message);
    changes
}

fn client(before: Option<&ClientSnap>, after: Option<&ClientSnap>, id: &str) -> Vec<Change> {
    let mut changes = Vec::new();
    let describe = |client: &ClientSnap| {
        let party = if client.first_party {
            "first-party"
        } else {
            "third-party"
        };
        let types: Vec<&String> = client.grant_types.iter().collect();
        format!("{party} {}, grant types {}", client.kind, list(types))
    };
    match (before, after) {
        (None, Some(client)) => changes.push(Change::new(
            Mark::Widening,
            format!("the client is new: {}", describe(client)),
        )),
        (Some(client), None) => changes.push(Change::new(
            Mark::Narrowing,
            format!("the client is gone: {}", describe(client)),
        )),
        (Some(before), Some(after)) => {
            if before.first_party != after.first_party {
                let what = if after.first_party {
                    "it skips consent where the API allows it"
                } else {
                    "it must ask for consent"
                };
                changes.push(
                    Change::new(
                        Mark::of(after.first_party),
                        format!(
                            "first_party: {} -> {}: {what}",
                            before.first_party, after.first_party
                        ),
                    )
                    .setting("first_party", before.first_party, after.first_party),
                );
            }
            let added: Vec<&String> = after.grant_types.difference(&before.grant_types).collect();
            let removed: Vec<&String> = before.grant_types.difference(&after.grant_types).collect();
            if !added.is_empty() {
                changes.push(Change::new(
                    Mark::Widening,
                    format!("grant types: may now use {}", list(added)),
                ));
            }
            if !removed.is_empty() {
                changes.push(Change::new(
                    Mark::Narrowing,
                    format!("grant types: may no longer use {}", list(removed)),
                ));
            }
            if before.kind != after.kind {
                changes.push(
                    Change::new(Mark::Neutral, format!("kind: {} -> {}", before.kind, after.kind)).setting(
                        "kind",
                        &before.kind,
                        &after.kind,
                    ),
                );
            }
        }
        (None, None) => {}
    }
    for change in &mut changes {
        change.client_id = Some(id.to_owned());
    }
    changes
}

fn role(before: Option<&RoleSnap>, after: Option<&RoleSnap>, name: &str) -> Vec<Change> {
    let mut changes = Vec::new();
    match (before, after) {
        (None, Some(_)) => changes.push(Change::new(Mark::Neutral, "the role is new".to_owned())),
        (Some(_), None) => changes.push(Change::new(Mark::Neutral, "the role is gone".to_owned())),
        (Some(before), Some(after)) if before.inherits != after.inherits => {
            let text = |set: &BTreeSet<String>| {
                if set.is_empty() {
                    "nothing".to_owned()
                } else {
                    list(set)
                }
            };
            changes.push(
                Change::new(
                    Mark::Neutral,
                    format!(
                        "inherits: {} -> {}",
                        text(&before.inherits),
                        text(&after.inherits)
                    ),
                )
                .setting("inherits", &before.inherits, &after.inherits),
            );
        }
        _ => {}
    }
    for change in &mut changes {
        change.role = Some(name.to_owned());
    }
    changes
}

//! The lints of `scope-policy check`: a policy that builds may still say
//! something its author did not mean. Each lint has a stable kebab-case name
//! (`--allow NAME` silences it), a document path, and a sentence saying why
//! it matters.
//!
//! What clients can obtain comes from the decision itself (see `reach`), so
//! a lint never disagrees with what `Policy::grant` would do.

use std::collections::{BTreeSet, VecDeque};

use scope_policy::{
    Api, ClientKind, Flow, Policy, PolicyDocument, ScopeConsent, Subject, UserAccess, OFFLINE_ACCESS,
};
use scope_policy::{Client, ClientAccess};

use crate::reach::{role_scopes, Reaches};
use crate::source::Loaded;

/// Every lint: its name and what it finds, in the order `--help` lists them.
pub const LINTS: &[(&str, &str)] = &[
    (
        "unreachable-scope",
        "a scope nobody can get: no client can obtain it, or, on an RBAC API, no role permits it and no client gets it for itself",
    ),
    ("empty-role", "a role that grants no scope of any API"),
    ("redundant-role", "a role that grants only what one role it inherits already grants"),
    (
        "redundant-permission",
        "a role permission whose scopes the role already has through another permission or an inherited role",
    ),
    ("redundant-inherits", "an inherited role that another inherited role already includes"),
    ("permission-without-rbac", "role permissions on an API without RBAC, where roles have no effect"),
    ("client-obtains-nothing", "a client that cannot obtain any scope of any API"),
    (
        "third-party-wildcard-user-grant",
        "a third-party client whose user grant covers every scope of an API (`*`)",
    ),
    ("offline-access-without-refresh", "`allow_offline_access` on an API where no client can obtain `offline_access`"),
    (
        "refresh-without-offline-access",
        "a client that lists the refresh_token grant type but can never get a refresh token for an API",
    ),
    ("default-scope-no-role", "a default scope of an RBAC API that no role permits"),
    ("always-scope-in-defaults", "a one-time scope (`consent: always`) among the default scopes"),
    ("required-scope-unobtainable", "`required` on a scope no client can obtain for a user"),
    ("ignored-client-grant", "a client grant that the API's access policy or the client's flows never use"),
    ("empty-client-grant", "a client grant in force that names no scope"),
    ("missing-description", "a scope users may be asked to consent to, without a description"),
];

/// The lint names, for the command line's `--allow`.
pub fn names() -> Vec<&'static str> {
    LINTS.iter().map(|(name, _)| *name).collect()
}

/// One lint finding: which lint, where, and why it matters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The lint's name.
    pub lint: &'static str,
    /// The document path.
    pub path: String,
    /// One sentence: what and why it matters.
    pub message: String,
}

/// Runs every lint on a policy that built, in document order of the
/// entries they are about (APIs, roles, clients).
pub fn run(loaded: &Loaded, reaches: &Reaches) -> Vec<Finding> {
    let mut linter = Linter {
        policy: &loaded.policy,
        document: &loaded.document,
        reaches,
        findings: Vec::new(),
    };
    linter.apis();
    linter.roles();
    linter.clients();
    linter.findings
}

struct Linter<'a> {
    policy: &'a Policy,
    document: &'a PolicyDocument,
    reaches: &'a Reaches,
    findings: Vec<Finding>,
}

impl Linter<'_> {
    fn push(&mut self, lint: &'static str, path: String, message: String) {
        self.findings.push(Finding { lint, path, message });
    }

    fn apis(&mut self) {
        let policy = self.policy;
        for (a, api) in policy.apis().enumerate() {
            let audience = api.audience();
            let by_role = |scope: &str| policy.roles().any(|role| role.permits(api, scope));
            for (j, definition) in api.definitions().enumerate() {
                let scope = definition.name().as_str();
                let for_users = self.reaches.anyone(a, Subject::User, scope);
                let for_machines = self.reaches.anyone(a, Subject::Client, scope);
                if !for_machines && !for_users {
                    self.push(
                        "unreachable-scope",
                        format!("apis[{a}].scopes[{j}]"),
                        format!(
                            "no client can obtain `{scope}`, for a user or for itself: the clients' flows, \
                             their grants and the API's access policies rule it out, so nobody ever gets it"
                        ),
                    );
                } else if !for_machines && api.rbac() && !by_role(scope) {
                    self.push(
                        "unreachable-scope",
                        format!("apis[{a}].scopes[{j}]"),
                        format!(
                            "no role permits `{scope}` and no client may get it for itself: on this RBAC API \
                             only a user's direct permission can ever put it in a token"
                        ),
                    );
                }
                if definition.required() && !for_users {
                    self.push(
                        "required-scope-unobtainable",
                        format!("apis[{a}].scopes[{j}].required"),
                        format!(
                            "`{scope}` is marked required, but no client can obtain it for a user, so it \
                             is never on a consent prompt: `required` has no effect"
                        ),
                    );
                }
                if definition.description().is_empty() && for_users {
                    self.push(
                        "missing-description",
                        format!("apis[{a}].scopes[{j}].description"),
                        format!(
                            "`{scope}` has no description, yet users may be asked to consent to it \
                             (prompt=consent asks even first-party apps): the prompt would show its bare name"
                        ),
                    );
                }
            }
            for (k, scope) in api.default_scopes().enumerate() {
                let scope = scope.as_str();
                if api.rbac() && !by_role(scope) {
                    self.push(
                        "default-scope-no-role",
                        format!("apis[{a}].default_scopes[{k}]"),
                        format!(
                            "default scope `{scope}` is permitted by no role: on this RBAC API a request \
                             without scope gets it only for users with a direct permission"
                        ),
                    );
                }
                if api
                    .definition(scope)
                    .is_some_and(|d| d.consent() == ScopeConsent::Always)
                {
                    self.push(
                        "always-scope-in-defaults",
                        format!("apis[{a}].default_scopes[{k}]"),
                        format!(
                            "default scope `{scope}` is one-time (consent: always): every sign-in that names \
                             no scope asks the user for it again, even in a first-party app"
                        ),
                    );
                }
            }
            if api.allow_offline_access() && !self.reaches.anyone(a, Subject::User, OFFLINE_ACCESS) {
                self.push(
                    "offline-access-without-refresh",
                    format!("apis[{a}].allow_offline_access"),
                    format!(
                        "`{audience}` allows offline_access, but no client can obtain it there (that needs \
                         the refresh_token grant type, a user flow and user access to the API): the setting \
                         has no effect"
                    ),
                );
            }
        }
    }

    fn roles(&mut self) {
        let policy = self.policy;
        let inherited_anywhere: BTreeSet<&str> = policy.roles().flat_map(|role| role.inherits()).collect();
        for (i, (role, written)) in policy.roles().zip(&self.document.roles).enumerate() {
            let name = role.name();
            let grants_nothing = policy.apis().all(|api| role.scopes(api).next().is_none());
            if grants_nothing {
                let also = if inherited_anywhere.contains(name) {
                    ""
                } else {
                    ", and no role inherits it"
                };
                self.push(
                    "empty-role",
                    format!("roles[{i}]"),
                    format!("role `{name}` grants no scope of any API{also}: a user given it gets nothing from it"),
                );
                continue;
            }
            // What the role has through its inherited roles, per API.
            let parents: Vec<&str> = role.inherits().collect();
            let inherited = |api: &Api| -> BTreeSet<String> {
                parents
                    .iter()
                    .filter_map(|parent| policy.role(parent))
                    .flat_map(|parent| role_scopes(parent, api))
                    .collect()
            };
            let own: Vec<(usize, &Api, BTreeSet<String>)> = written
                .permissions
                .iter()
                .enumerate()
                .filter_map(|(k, permission)| {
                    let api = policy.api(&permission.audience)?;
                    Some((k, api, expand(api, &permission.scope)))
                })
                .collect();
            // One inherited role that already grants everything this one does.
            // (A role that bundles several others is not redundant.)
            let same_as = parents.iter().find(|parent| {
                policy.role(parent).is_some_and(|parent| {
                    policy
                        .apis()
                        .all(|api| role_scopes(role, api) == role_scopes(parent, api))
                })
            });
            if let Some(parent) = same_as {
                self.push(
                    "redundant-role",
                    format!("roles[{i}]"),
                    format!(
                        "role `{name}` grants only what `{parent}`, which it inherits, already grants: giving \
                         it to a user instead changes nothing, so it is an alias or has lost its own permissions"
                    ),
                );
            } else {
                for (k, api, scopes) in &own {
                    let mut covered = inherited(api);
                    let mut by: Option<usize> = None;
                    for (other, other_api, other_scopes) in &own {
                        let wider = other_scopes.is_superset(scopes) && (other_scopes != scopes || other < k);
                        if other != k && other_api.audience() == api.audience() && wider {
                            covered.extend(other_scopes.iter().cloned());
                            by = by.or(Some(*other));
                        }
                    }
                    if scopes.is_subset(&covered) {
                        let pattern = &written.permissions[*k].scope;
                        let reason = match by {
                            Some(other) => format!(
                                "its permission `{}` (roles[{i}].permissions[{other}]) already names every scope it names",
                                written.permissions[other].scope
                            ),
                            None => format!("{} already grant every scope it names", quoted(&parents)),
                        };
                        self.push(
                            "redundant-permission",
                            format!("roles[{i}].permissions[{k}]"),
                            format!("permission `{pattern}` of role `{name}` adds nothing: {reason}"),
                        );
                    }
                }
            }
            // An inherited role that another inherited role includes (or listed twice).
            for (k, parent) in parents.iter().enumerate() {
                let through = parents.iter().enumerate().find(|(other, other_parent)| {
                    *other != k
                        && ((**other_parent == *parent && *other < k)
                            || (**other_parent != *parent
                                && ancestors(policy, other_parent).contains(*parent)))
                });
                if let Some((_, other)) = through {
                    let how = if other == parent {
                        "it is listed twice".to_owned()
                    } else {
                        format!("`{other}` already inherits it")
                    };
                    self.push(
                        "redundant-inherits",
                        format!("roles[{i}].inherits[{k}]"),
                        format!("role `{name}` inherits `{parent}` for nothing: {how}"),
                    );
                }
            }
            // Permissions on APIs without RBAC: one finding per role and API.
            let mut seen: BTreeSet<&str> = BTreeSet::new();
            for (k, api, _) in &own {
                if !api.rbac() && seen.insert(api.audience()) {
                    self.push(
                        "permission-without-rbac",
                        format!("roles[{i}].permissions[{k}]"),
                        format!(
                            "`{}` has no RBAC, so role `{name}`'s permissions there have no effect: every \
                             user may get every scope of it (set `rbac: true` if roles should limit it)",
                            api.audience()
                        ),
                    );
                }
            }
        }
    }

    fn clients(&mut self) {
        let policy = self.policy;
        let has_scopes = policy.apis().any(|api| api.scopes().len() > 0);
        for (i, (client, written)) in policy.clients().zip(&self.document.clients).enumerate() {
            let id = client.client_id();
            let reaches: Vec<_> = (0..policy.apis().len())
                .flat_map(|a| [Subject::User, Subject::Client].map(|s| self.reaches.get(i, a, s)))
                .flatten()
                .collect();
            if has_scopes && reaches.iter().all(|reach| !reach.has_api_scope()) {
                self.push(
                    "client-obtains-nothing",
                    format!("clients[{i}]"),
                    format!(
                        "client `{id}` cannot obtain any scope of any API: its grant types ({}), its grants \
                         and the APIs' access policies rule every one out",
                        flows(client)
                    ),
                );
            }
            // Only a refresh_token the operator wrote: the kinds' defaults list it
            // for every web and native client, whether the operator wants refreshes or not.
            let listed = written
                .grant_types
                .iter()
                .flatten()
                .position(|flow| flow == Flow::RefreshToken.as_str());
            if let (Some(k), true) = (listed, policy.apis().len() > 0) {
                let path = format!("clients[{i}].grant_types[{k}]");
                let interactive = client.allows(Flow::AuthorizationCode) || client.allows(Flow::DeviceCode);
                let offline = (0..policy.apis().len()).any(|a| {
                    self.reaches
                        .get(i, a, Subject::User)
                        .is_some_and(|reach| reach.get(OFFLINE_ACCESS).is_some())
                });
                if !interactive {
                    self.push(
                        "refresh-without-offline-access",
                        path,
                        format!(
                            "client `{id}` has the refresh_token grant type but no flow that gives a first \
                             token (authorization_code or device_code): it has nothing to refresh"
                        ),
                    );
                } else if !offline {
                    self.push(
                        "refresh-without-offline-access",
                        path,
                        format!(
                            "client `{id}` may refresh, but no API it can get user tokens for allows \
                             offline_access: it never gets a refresh token for an API"
                        ),
                    );
                }
            }
            for (j, grant) in written.grants.iter().enumerate() {
                let Some(api) = policy.api(&grant.audience) else {
                    continue;
                };
                let subject = match grant.subject.as_deref() {
                    Some(text) => text.parse().unwrap_or(Subject::User),
                    None => client.kind().default_subject(),
                };
                let audience = api.audience();
                let ignored = ignored_because(client, api, subject);
                if let Some(reason) = &ignored {
                    self.push(
                        "ignored-client-grant",
                        format!("clients[{i}].grants[{j}]"),
                        reason.clone(),
                    );
                } else if grant.scopes.is_empty() {
                    self.push(
                        "empty-client-grant",
                        format!("clients[{i}].grants[{j}].scopes"),
                        format!(
                            "this `{subject}` grant admits client `{id}` to `{audience}` but names no scope: \
                             every scope it asks there is refused (not_granted_to_client)"
                        ),
                    );
                }
                let in_force = ignored.is_none() && subject == Subject::User;
                if in_force && !client.first_party() {
                    let every: BTreeSet<String> = api.scopes().map(|(scope, _)| scope.to_string()).collect();
                    for (k, pattern) in grant.scopes.iter().enumerate() {
                        if pattern.ends_with('*') && !every.is_empty() && expand(api, pattern) == every {
                            let later = if pattern == "*" {
                                ", and every scope the API will define later"
                            } else {
                                ""
                            };
                            self.push(
                                "third-party-wildcard-user-grant",
                                format!("clients[{i}].grants[{j}].scopes[{k}]"),
                                format!(
                                    "`{pattern}` gives third-party client `{id}` every scope of `{audience}` \
                                     for users{later}: name the scopes it needs"
                                ),
                            );
                        }
                    }
                }
            }
        }
    }
}

/// Why a client grant is never used, if it is not.
fn ignored_because(client: &Client, api: &Api, subject: Subject) -> Option<String> {
    let (id, audience) = (client.client_id(), api.audience());
    let has_user_flow = [Flow::AuthorizationCode, Flow::DeviceCode, Flow::RefreshToken]
        .into_iter()
        .any(|flow| client.allows(flow));
    match subject {
        Subject::User if !has_user_flow => Some(format!(
            "client `{id}` has no user flow (grant types {}), so its `user` grant for `{audience}` is never used",
            flows(client)
        )),
        Subject::User => match api.user_access() {
            UserAccess::AllowAll => Some(format!(
                "user_access of `{audience}` is allow_all, so this `user` grant restricts nothing: client \
                 `{id}` may ask for every scope for users (set user_access to require_client_grant to enforce it)"
            )),
            UserAccess::DenyAll => Some(format!(
                "user_access of `{audience}` is deny_all: no client gets user tokens for it, so this grant of \
                 client `{id}` is never used"
            )),
            _ => None,
        },
        _ if !client.allows(Flow::ClientCredentials) => Some(format!(
            "client `{id}` does not have the client_credentials grant type, so its `client` grant for \
             `{audience}` is never used{}",
            if client.kind() == ClientKind::MachineToMachine {
                ""
            } else {
                " (did you mean `subject: user`?)"
            }
        )),
        _ => match api.client_access() {
            ClientAccess::DenyAll => Some(format!(
                "client_access of `{audience}` is deny_all: no client gets tokens for itself there, so this \
                 grant of client `{id}` is never used"
            )),
            _ => None,
        },
    }
}

/// The scopes of `api` that a scope or pattern written in the document names.
// LIBRARY: the built policy resolves every pattern, but only per role or
// grant as a whole; which written entry (`roles[i].permissions[k]`,
// `clients[i].grants[j].scopes[k]`) names which scopes is private
// (`Written::names`). `Role::own_permissions` yielding each entry's position
// and resolved scopes would replace this.
pub fn expand(api: &Api, pattern: &str) -> BTreeSet<String> {
    let names = |scope: &str| match pattern.strip_suffix('*') {
        Some(prefix) => scope.starts_with(prefix),
        None => scope == pattern,
    };
    api.scopes()
        .map(|(scope, _)| scope.as_str())
        .filter(|scope| names(scope))
        .map(str::to_owned)
        .collect()
}

/// Every role `name` inherits, transitively (not itself).
pub fn ancestors<'p>(policy: &'p Policy, name: &str) -> BTreeSet<&'p str> {
    let mut seen = BTreeSet::new();
    let mut queue: VecDeque<&'p str> = policy
        .role(name)
        .into_iter()
        .flat_map(|role| role.inherits())
        .collect();
    while let Some(next) = queue.pop_front() {
        if seen.insert(next) {
            queue.extend(policy.role(next).into_iter().flat_map(|role| role.inherits()));
        }
    }
    seen
}

/// `authorization_code, refresh_token`, or `none`.
pub fn flows(client: &Client) -> String {
    match client.grant_types() {
        [] => "none".to_owned(),
        types => types
            .iter()
            .map(|flow| flow.as_str())
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// `` `a` ``, `` `a` and `b` ``, `` `a`, `b` and `c` ``.
pub fn quoted(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|name| format!("`{name}`")).collect();
    match quoted.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

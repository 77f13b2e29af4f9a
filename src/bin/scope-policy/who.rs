//! `scope-policy who`: who can obtain a scope (`--audience A --scope S`),
//! or what a role (`--role R`) or a client (`--client C`) can obtain, per API.
//!
//! Clients' reach comes from the decision (`reach`); roles' from the
//! library's resolved permissions (`Role::scopes`). Human output: sentences
//! grouped under headings; `--json`: one document with the same facts.

use std::collections::VecDeque;

use clap::Args;
use scope_policy::{Api, Client, Flow, Policy, PolicyDocument, Subject};
use serde::Serialize;

use crate::lint::{expand, flows};
use crate::reach::{How, Reach, Reaches};
use crate::source::{Loaded, ReadOptions};
use crate::{load_policy, Exit, Out};

/// `who`'s arguments.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["scope", "role", "client"])))]
pub struct WhoArgs {
    /// The policy file.
    #[arg(value_name = "POLICY")]
    policy: String,
    /// The API: with --scope, the scope's API (default: the policy's
    /// default_audience, or its only API); with --role or --client, only this API.
    #[arg(long)]
    audience: Option<String>,
    /// Who can obtain this scope of the API.
    #[arg(long)]
    scope: Option<String>,
    /// What this role can obtain.
    #[arg(long)]
    role: Option<String>,
    /// What this client can obtain.
    #[arg(long)]
    client: Option<String>,
}

/// Runs `who`.
pub fn run(args: &WhoArgs, options: &ReadOptions, json: bool, out: &mut Out, err: &mut Out) -> Exit {
    let Some((_, loaded)) = load_policy(&args.policy, options, json, out, err) else {
        return Exit::Unusable;
    };
    let policy = &loaded.policy;
    let apis: Vec<(usize, &Api)> = match &args.audience {
        Some(audience) => match policy
            .apis()
            .enumerate()
            .find(|(_, api)| api.audience() == audience)
        {
            Some(found) => vec![found],
            None => {
                err.line(format!("error: the policy has no API `{audience}`"));
                return Exit::Unusable;
            }
        },
        None => policy.apis().enumerate().collect(),
    };
    let result = if let Some(scope) = &args.scope {
        let api = match (&args.audience, policy.default_audience(), apis.as_slice()) {
            (Some(_), _, [one]) => Some(*one),
            (None, Some(default), _) => apis
                .iter()
                .copied()
                .find(|(_, api)| api.audience() == default.audience()),
            (None, None, [one]) => Some(*one),
            _ => None,
        };
        match api {
            Some(api) => who_scope(&loaded, api, scope),
            None => {
                Err("name the API with --audience: the policy has several and no default_audience".into())
            }
        }
    } else if let Some(role) = &args.role {
        who_role(&loaded, &apis, role)
    } else if let Some(client) = &args.client {
        who_client(&loaded, &apis, client)
    } else {
        Err("name --scope, --role or --client".into())
    };
    match result {
        Ok(answer) => {
            if json {
                out.json(&answer.json);
            } else {
                for line in &answer.lines {
                    out.line(line);
                }
            }
            if answer.nobody {
                Exit::Findings
            } else {
                Exit::Ok
            }
        }
        Err(message) => {
            err.line(format!("error: {message}"));
            Exit::Unusable
        }
    }
}

/// An answer: lines for people, a document for machines, and whether it is "nobody".
struct Answer {
    lines: Vec<String>,
    json: serde_json::Value,
    nobody: bool,
}

/// One role that permits a scope, and how.
#[derive(Debug, Serialize)]
struct RoleSource {
    role: String,
    /// The roles passed through from `role` to the one whose permission names the scope.
    via: Vec<String>,
    /// The permission that names it: `roles[i].permissions[k]`.
    path: String,
    /// The scope or pattern as written.
    permission: String,
}

/// The first role reachable from `name` (itself first, then breadth first
/// through `inherits`) whose own permission on `api` names `scope`.
// LIBRARY: `Policy::explain` finds the same thing privately (`role_source`);
// a public `Role::source(&Policy, &Api, scope)` would let `who` reuse it.
fn role_source(
    policy: &Policy,
    document: &PolicyDocument,
    name: &str,
    api: &Api,
    scope: &str,
) -> Option<RoleSource> {
    let index_of = |role: &str| policy.roles().position(|r| r.name() == role);
    let start = index_of(name)?;
    let mut came_from: Vec<Option<usize>> = vec![None; policy.roles().len()];
    let mut seen = vec![false; policy.roles().len()];
    seen[start] = true;
    let mut queue = VecDeque::from([start]);
    while let Some(at) = queue.pop_front() {
        let written = document.roles.get(at)?;
        let named = written.permissions.iter().enumerate().find(|(_, permission)| {
            permission.audience == api.audience() && expand(api, &permission.scope).contains(scope)
        });
        if let Some((k, permission)) = named {
            let mut via = Vec::new();
            let mut step = at;
            while let Some(from) = came_from[step] {
                via.push(document.roles[step].name.clone());
                step = from;
            }
            via.reverse();
            return Some(RoleSource {
                role: name.to_owned(),
                via,
                path: format!("roles[{at}].permissions[{k}]"),
                permission: permission.scope.clone(),
            });
        }
        for parent in &written.inherits {
            if let Some(next) = index_of(parent).filter(|next| !seen[*next]) {
                seen[next] = true;
                came_from[next] = Some(at);
                queue.push_back(next);
            }
        }
    }
    None
}

impl RoleSource {
    fn sentence(&self) -> String {
        match self.via.as_slice() {
            [] => format!(
                "`{}`: its permission `{}` ({})",
                self.role, self.permission, self.path
            ),
            via => format!(
                "`{}`: inherits {}, whose permission `{}` names it ({})",
                self.role,
                via.iter()
                    .map(|v| format!("`{v}`"))
                    .collect::<Vec<_>>()
                    .join(" and then "),
                self.permission,
                self.path
            ),
        }
    }
}

/// The API's settings that decide who obtains its scopes, as data.
#[derive(Debug, Serialize)]
struct Settings {
    rbac: bool,
    user_access: String,
    client_access: String,
    allow_skipping_consent: bool,
    allow_offline_access: bool,
}

impl Settings {
    fn of(api: &Api) -> Settings {
        Settings {
            rbac: api.rbac(),
            user_access: api.user_access().to_string(),
            client_access: api.client_access().to_string(),
            allow_skipping_consent: api.allow_skipping_consent(),
            allow_offline_access: api.allow_offline_access(),
        }
    }

    fn sentence(&self) -> String {
        format!(
            "rbac {}, user_access {}, client_access {}, allow_skipping_consent {}, allow_offline_access {}",
            self.rbac,
            self.user_access,
            self.client_access,
            self.allow_skipping_consent,
            self.allow_offline_access
        )
    }
}

/// How a client obtains something in one flow.
#[derive(Debug, Serialize)]
struct FlowHow {
    flow: Flow,
    how: &'static str,
}

#[derive(Debug, Serialize)]
struct ClientObtains {
    client_id: String,
    subject: Subject,
    flows: Vec<FlowHow>,
}

fn subject_phrase(subject: Subject) -> &'static str {
    match subject {
        Subject::User => "for users",
        _ => "for itself",
    }
}

fn who_scope(loaded: &Loaded, (a, api): (usize, &Api), scope: &str) -> Result<Answer, String> {
    let policy = &loaded.policy;
    let audience = api.audience();
    let Some(j) = api.definitions().position(|d| d.name().as_str() == scope) else {
        return Err(format!("`{audience}` defines no scope `{scope}`"));
    };
    let definition = api.definition(scope).ok_or("the scope vanished")?;
    let reaches = Reaches::of(policy);
    let settings = Settings::of(api);
    let mut lines = vec![
        format!("`{scope}` of `{audience}` (apis[{a}].scopes[{j}])"),
        format!(
            "settings: {}; the scope: consent {}, required {}",
            settings.sentence(),
            definition.consent(),
            definition.required()
        ),
    ];
    let roles: Vec<RoleSource> = policy
        .roles()
        .filter(|role| role.permits(api, scope))
        .filter_map(|role| role_source(policy, &loaded.document, role.name(), api, scope))
        .collect();
    if api.rbac() {
        lines.push("roles that permit it:".to_owned());
        if roles.is_empty() {
            lines.push("  none: only a user's direct permission can give it".to_owned());
        }
        for role in &roles {
            lines.push(format!("  {}", role.sentence()));
        }
    } else {
        lines.push("roles: not needed: the API has no RBAC, so every user may get it".to_owned());
    }
    let mut clients: Vec<ClientObtains> = Vec::new();
    for (i, client) in policy.clients().enumerate() {
        for subject in [Subject::User, Subject::Client] {
            let Some(reach) = reaches.get(i, a, subject) else {
                continue;
            };
            let flows: Vec<FlowHow> = reach
                .flows
                .iter()
                .filter(|flow| flow.flow != Flow::RefreshToken)
                .filter_map(|flow| {
                    let how = flow.scopes.iter().find(|(s, _)| s == scope)?.1;
                    Some(FlowHow {
                        flow: flow.flow,
                        how: how.as_str(),
                    })
                })
                .collect();
            if !flows.is_empty() {
                clients.push(ClientObtains {
                    client_id: client.client_id().to_owned(),
                    subject,
                    flows,
                });
            }
        }
    }
    lines.push("clients that obtain it:".to_owned());
    if clients.is_empty() {
        lines.push(
            "  none: the clients' flows, their grants and the API's access policies rule it out".to_owned(),
        );
    }
    for client in &clients {
        let flows: Vec<String> = client
            .flows
            .iter()
            .map(|f| match client.subject {
                Subject::User => format!("{} {}", f.flow, phrase_of(f.how)),
                _ => f.flow.to_string(),
            })
            .collect();
        lines.push(format!(
            "  `{}` {}: {}",
            client.client_id,
            subject_phrase(client.subject),
            flows.join(", ")
        ));
    }
    // Nobody, as `check`'s unreachable-scope says: no client obtains it, or on
    // an RBAC API no role permits it and no client obtains it for itself.
    let for_itself = clients.iter().any(|client| client.subject == Subject::Client);
    let nobody = clients.is_empty() || (api.rbac() && roles.is_empty() && !for_itself);
    let json = serde_json::json!({
        "audience": audience,
        "scope": scope,
        "path": format!("apis[{a}].scopes[{j}]"),
        "settings": settings,
        "consent": definition.consent().to_string(),
        "required": definition.required(),
        "roles": if api.rbac() { serde_json::to_value(&roles).unwrap_or_default() } else { serde_json::Value::Null },
        "clients": clients,
    });
    Ok(Answer { lines, json, nobody })
}

fn phrase_of(how: &str) -> &'static str {
    match how {
        "without_asking" => How::WithoutAsking.phrase(),
        _ => How::WithConsent.phrase(),
    }
}

#[derive(Debug, Serialize)]
struct RoleScope {
    scope: String,
    #[serde(flatten)]
    source: Option<RoleSource>,
}

fn who_role(loaded: &Loaded, apis: &[(usize, &Api)], name: &str) -> Result<Answer, String> {
    let policy = &loaded.policy;
    let Some(i) = policy.roles().position(|role| role.name() == name) else {
        return Err(format!("the policy has no role `{name}`"));
    };
    let role = policy.role(name).ok_or("the role vanished")?;
    let parents: Vec<&str> = role.inherits().collect();
    let mut head = format!("role `{name}` (roles[{i}])");
    if !parents.is_empty() {
        head.push_str(&format!(", inherits {}", crate::lint::quoted(&parents)));
    }
    let mut lines = vec![head];
    let mut json_apis = Vec::new();
    let mut nothing = true;
    for (_, api) in apis {
        let scopes: Vec<RoleScope> = role
            .scopes(api)
            .map(|scope| RoleScope {
                scope: scope.to_string(),
                source: role_source(policy, &loaded.document, name, api, scope.as_str()),
            })
            .collect();
        if scopes.is_empty() {
            continue;
        }
        let audience = api.audience();
        if api.rbac() {
            nothing = false;
            lines.push(format!("`{audience}` (rbac):"));
            for scope in &scopes {
                let how = match &scope.source {
                    Some(source) if source.via.is_empty() => {
                        format!("its permission `{}` ({})", source.permission, source.path)
                    }
                    Some(source) => format!(
                        "through {}, whose permission `{}` names it ({})",
                        source
                            .via
                            .iter()
                            .map(|v| format!("`{v}`"))
                            .collect::<Vec<_>>()
                            .join(" and then "),
                        source.permission,
                        source.path
                    ),
                    None => "permitted".to_owned(),
                };
                lines.push(format!("  `{}`: {how}", scope.scope));
            }
        } else {
            lines.push(format!(
                "`{audience}` (no rbac): the role's permissions there have no effect: every user may get every scope"
            ));
        }
        json_apis.push(serde_json::json!({ "audience": audience, "rbac": api.rbac(), "scopes": scopes }));
    }
    if nothing {
        lines.push("it obtains nothing: it permits no scope of an API with RBAC".to_owned());
    }
    let json = serde_json::json!({ "role": name, "path": format!("roles[{i}]"), "inherits": parents, "apis": json_apis });
    Ok(Answer {
        lines,
        json,
        nobody: nothing,
    })
}

fn who_client(loaded: &Loaded, apis: &[(usize, &Api)], id: &str) -> Result<Answer, String> {
    let policy = &loaded.policy;
    let Some(i) = policy.clients().position(|client| client.client_id() == id) else {
        return Err(format!("the policy has no client `{id}`"));
    };
    let client: &Client = policy.client(id).ok_or("the client vanished")?;
    let reaches = Reaches::of(policy);
    let party = if client.first_party() {
        "first-party"
    } else {
        "third-party"
    };
    let mut lines = vec![format!(
        "client `{id}` (clients[{i}]): {party}, {}, grant types {}",
        client.kind(),
        flows(client)
    )];
    let mut json_apis = Vec::new();
    let mut nothing = true;
    for (a, api) in apis {
        lines.push(format!("`{}`:", api.audience()));
        let mut subjects = Vec::new();
        for subject in [Subject::User, Subject::Client] {
            let Some(reach) = reaches.get(i, *a, subject) else {
                continue;
            };
            if reach.flows.iter().all(|flow| flow.flow == Flow::RefreshToken) {
                continue;
            }
            nothing &= reach.is_empty();
            lines.push(format!(
                "  {}: {}",
                subject_phrase(subject),
                reach_phrase(reach, subject)
            ));
            let flows: Vec<serde_json::Value> = reach
                .flows
                .iter()
                .filter(|flow| flow.flow != Flow::RefreshToken)
                .map(|flow| {
                    let scopes: Vec<serde_json::Value> = flow
                        .scopes
                        .iter()
                        .map(|(scope, how)| serde_json::json!({ "scope": scope, "how": how.as_str() }))
                        .collect();
                    serde_json::json!({ "flow": flow.flow, "scopes": scopes, "refused": flow.refused })
                })
                .collect();
            subjects.push(serde_json::json!({ "subject": subject, "flows": flows }));
        }
        if subjects.is_empty() {
            lines.push("  nothing: the client has no flow that gets tokens".to_owned());
        }
        json_apis.push(serde_json::json!({ "audience": api.audience(), "subjects": subjects }));
    }
    let json = serde_json::json!({
        "client_id": id,
        "path": format!("clients[{i}]"),
        "first_party": client.first_party(),
        "kind": client.kind(),
        "grant_types": client.grant_types(),
        "apis": json_apis,
    });
    Ok(Answer {
        lines,
        json,
        nobody: nothing,
    })
}

/// `authorization_code: `a`, `b` with the user's consent; device_code: nothing (access_denied: …)`.
fn reach_phrase(reach: &Reach, subject: Subject) -> String {
    // A refresh renews what the other flows gave: `who` shows where tokens come from.
    let per_flow: Vec<String> = reach
        .flows
        .iter()
        .filter(|flow| flow.flow != Flow::RefreshToken)
        .map(|flow| {
            let mut groups = Vec::new();
            for how in [How::WithoutAsking, How::WithConsent] {
                let scopes: Vec<String> = flow
                    .scopes
                    .iter()
                    .filter(|(_, h)| *h == how)
                    .map(|(scope, _)| format!("`{scope}`"))
                    .collect();
                match (scopes.is_empty(), subject) {
                    (true, _) => {}
                    (false, Subject::User) => groups.push(format!("{} {}", scopes.join(", "), how.phrase())),
                    (false, _) => groups.push(scopes.join(", ")),
                }
            }
            if groups.is_empty() {
                match &flow.refused {
                    Some(error) => groups.push(format!("nothing ({error})")),
                    None => groups.push("nothing".to_owned()),
                }
            }
            format!("{}: {}", flow.flow, groups.join("; "))
        })
        .collect();
    per_flow.join("; ")
}

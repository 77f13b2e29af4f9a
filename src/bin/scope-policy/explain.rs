//! `scope-policy explain POLICY [REQUEST.json]`: one decision, with the
//! provenance of every verdict. The provenance is the library's
//! (`Policy::explain`); this file only reads the request and prints.
//!
//! Human output: the request, the decision, then each asked scope with its
//! verdict and one line per check: `pass|fail|ask CHECK: DETAIL (SOURCE)`.
//! `--json`: the library's `Explanation`, or, for a request refused as a
//! whole, `{"outcome": "refused", "client_id", "flow", "error": {...}}`.

use clap::Args;
use scope_policy::{ConsentRecord, Explanation, Flow, GrantError, Permission, Request, Scope, User, Verdict};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::source::ReadOptions;
use crate::{load_policy, Exit, Out};

/// `explain`'s arguments.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["request", "client"])))]
pub struct ExplainArgs {
    /// The policy file.
    #[arg(value_name = "POLICY")]
    policy: String,
    /// A request in the conformance case format (JSON): a `request` object,
    /// a whole case `{"name", "request", …}`, or a case file with --case.
    #[arg(value_name = "REQUEST")]
    request: Option<String>,
    /// With a case file: the case to explain, by position (from 0) or name.
    #[arg(long, value_name = "CASE", requires = "request")]
    case: Option<String>,
    /// The client id (instead of a REQUEST file).
    #[arg(long, conflicts_with = "request")]
    client: Option<String>,
    /// The flow: authorization_code (default), device_code, refresh_token, client_credentials.
    #[arg(long, value_parser = parse_flow, conflicts_with = "request")]
    flow: Option<Flow>,
    /// The requested audience.
    #[arg(long, conflicts_with = "request")]
    audience: Option<String>,
    /// The raw scope parameter, such as "openid read:notes".
    #[arg(long, conflicts_with = "request")]
    scope: Option<String>,
    /// The user id (default `user` when --role or --permission is given).
    #[arg(long, conflicts_with = "request")]
    user: Option<String>,
    /// A role of the user (repeatable).
    #[arg(long = "role", value_name = "ROLE", conflicts_with = "request")]
    roles: Vec<String>,
    /// A direct permission of the user, as "AUDIENCE SCOPE" (repeatable).
    #[arg(long = "permission", value_name = "AUDIENCE SCOPE", value_parser = parse_permission, conflicts_with = "request")]
    permissions: Vec<Permission>,
    /// The raw OpenID Connect prompt parameter, such as "consent".
    #[arg(long, conflicts_with = "request")]
    prompt: Option<String>,
    /// The redirect URI the host would redirect to.
    #[arg(long, conflicts_with = "request")]
    redirect_uri: Option<String>,
    /// For a refresh: the scope of the grant being refreshed.
    #[arg(long, conflicts_with = "request")]
    original_scope: Option<String>,
    /// For a refresh: the audience of the grant being refreshed.
    #[arg(long, conflicts_with = "request")]
    original_audience: Option<String>,
    /// The current time, in unix seconds.
    #[arg(long, conflicts_with = "request")]
    now: Option<u64>,
    /// A JSON file holding the user's consent records (a list).
    #[arg(long, value_name = "FILE", conflicts_with = "request")]
    consents: Option<String>,
}

fn parse_flow(text: &str) -> Result<Flow, String> {
    Flow::from_grant_type(text).map_err(|error| error.to_string())
}

fn parse_permission(text: &str) -> Result<Permission, String> {
    let (audience, scope) = text
        .split_once(' ')
        .ok_or_else(|| "write a permission as \"AUDIENCE SCOPE\"".to_owned())?;
    let scope = Scope::new(scope.trim()).map_err(|error| format!("{scope:?}: {error}"))?;
    Ok(Permission {
        audience: audience.to_owned(),
        scope,
    })
}

/// The request of a conformance case (DESIGN §5), owned.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseRequest {
    client_id: String,
    #[serde(default = "authorization_code", deserialize_with = "grant_type")]
    flow: Flow,
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

fn authorization_code() -> Flow {
    Flow::AuthorizationCode
}

/// A flow as a token request names it: the short names, or RFC 8628's URN.
fn grant_type<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Flow, D::Error> {
    let name = String::deserialize(deserializer)?;
    Flow::from_grant_type(&name).map_err(serde::de::Error::custom)
}

impl CaseRequest {
    fn request(&self) -> Request<'_> {
        Request::new(&self.client_id)
            .flow(self.flow)
            .maybe_audience(self.audience.as_deref())
            .maybe_scope(self.scope.as_deref())
            .maybe_user(self.user.as_ref())
            .consents(&self.consents)
            .maybe_prompt(self.prompt.as_deref())
            .maybe_redirect_uri(self.redirect_uri.as_deref())
            .maybe_original_scope(self.original_scope.as_deref())
            .maybe_original_audience(self.original_audience.as_deref())
            .maybe_now(self.now)
    }
}

/// The request the arguments describe.
fn request_of(args: &ExplainArgs) -> Result<CaseRequest, String> {
    if let Some(file) = &args.request {
        return read_request(file, args.case.as_deref());
    }
    let consents = match &args.consents {
        None => Vec::new(),
        Some(file) => {
            let text =
                std::fs::read_to_string(file).map_err(|error| format!("{file}: cannot read: {error}"))?;
            serde_json::from_str(&text)
                .map_err(|error| format!("{file}: not a list of consent records: {error}"))?
        }
    };
    let user = match (&args.user, args.roles.is_empty() && args.permissions.is_empty()) {
        (None, true) => None,
        (id, _) => Some(User {
            id: id.clone().unwrap_or_else(|| "user".to_owned()),
            roles: args.roles.clone(),
            permissions: args.permissions.clone(),
        }),
    };
    Ok(CaseRequest {
        client_id: args.client.clone().unwrap_or_default(),
        flow: args.flow.unwrap_or(Flow::AuthorizationCode),
        audience: args.audience.clone(),
        scope: args.scope.clone(),
        user,
        consents,
        prompt: args.prompt.clone(),
        redirect_uri: args.redirect_uri.clone(),
        original_scope: args.original_scope.clone(),
        original_audience: args.original_audience.clone(),
        now: args.now,
    })
}

/// Reads a bare request, a case holding one, or (with `case`) one case of a case file.
fn read_request(file: &str, case: Option<&str>) -> Result<CaseRequest, String> {
    let text = std::fs::read_to_string(file).map_err(|error| format!("{file}: cannot read: {error}"))?;
    let value: Value = serde_json::from_str(&text).map_err(|error| format!("{file}: not JSON: {error}"))?;
    let request = match (value.get("cases"), case) {
        (Some(Value::Array(cases)), Some(wanted)) => {
            let chosen = match wanted.parse::<usize>() {
                Ok(at) => cases.get(at),
                Err(_) => cases
                    .iter()
                    .find(|c| c.get("name").and_then(Value::as_str) == Some(wanted)),
            };
            let chosen = chosen.ok_or_else(|| format!("{file}: no case {wanted:?}"))?;
            chosen.get("request").cloned().unwrap_or(Value::Null)
        }
        (Some(_), None) => return Err(format!("{file}: a case file: name the case with --case")),
        (None, Some(_)) => return Err(format!("{file}: --case needs a case file (with `cases`)")),
        (_, _) => match value.get("request") {
            Some(request) => request.clone(),
            None => value,
        },
    };
    serde_json::from_value(request)
        .map_err(|error| format!("{file}: not a request of a conformance case: {error}"))
}

/// A request refused as a whole, as data.
#[derive(Debug, Serialize)]
struct Refused<'a> {
    outcome: &'static str,
    client_id: &'a str,
    flow: Flow,
    error: &'a GrantError,
}

/// Runs `explain`.
pub fn run(args: &ExplainArgs, options: &ReadOptions, json: bool, out: &mut Out, err: &mut Out) -> Exit {
    let case = match request_of(args) {
        Ok(case) => case,
        Err(message) => {
            err.line(format!("error: {message}"));
            return Exit::Unusable;
        }
    };
    let Some((_, loaded)) = load_policy(&args.policy, options, json, out, err) else {
        return Exit::Unusable;
    };
    let request = case.request();
    match loaded.policy.explain(&request) {
        Ok(explanation) => {
            let denied = explanation
                .scopes
                .iter()
                .any(|scope| matches!(scope.verdict, Verdict::Denied(_)));
            if json {
                out.json(&explanation);
            } else {
                print_request(&case, out);
                print_explanation(&explanation, out);
            }
            if denied {
                Exit::Findings
            } else {
                Exit::Ok
            }
        }
        Err(error) => {
            if json {
                out.json(&Refused {
                    outcome: "refused",
                    client_id: &case.client_id,
                    flow: case.flow,
                    error: &error,
                });
            } else {
                print_request(&case, out);
                out.line(format!("decision: refused: {}: {error}", error.code()));
            }
            Exit::Findings
        }
    }
}

fn print_request(case: &CaseRequest, out: &mut Out) {
    let mut parts = vec![format!("client `{}`", case.client_id), case.flow.to_string()];
    if let Some(audience) = &case.audience {
        parts.push(format!("audience `{audience}`"));
    }
    match &case.scope {
        Some(scope) => parts.push(format!("scope {scope:?}")),
        None => parts.push("no scope parameter".to_owned()),
    }
    if let Some(user) = &case.user {
        let mut who = format!("user `{}`", user.id);
        if !user.roles.is_empty() {
            who.push_str(&format!(" with roles {}", backticked(user.roles.iter())));
        }
        if !user.permissions.is_empty() {
            let direct = user
                .permissions
                .iter()
                .map(|p| format!("{} {}", p.audience, p.scope));
            let joint = if user.roles.is_empty() { "with" } else { "and" };
            who.push_str(&format!(" {joint} direct permissions {}", backticked(direct)));
        }
        parts.push(who);
    }
    if let Some(prompt) = &case.prompt {
        parts.push(format!("prompt {prompt:?}"));
    }
    if let Some(uri) = &case.redirect_uri {
        parts.push(format!("redirect_uri {uri}"));
    }
    if let Some(scope) = &case.original_scope {
        parts.push(format!("original scope {scope:?}"));
    }
    if let Some(audience) = &case.original_audience {
        parts.push(format!("original audience `{audience}`"));
    }
    if !case.consents.is_empty() {
        parts.push(format!("{} consent record(s)", case.consents.len()));
    }
    if let Some(now) = case.now {
        parts.push(format!("now {now}"));
    }
    out.line(format!("request: {}", parts.join(", ")));
}

fn print_explanation(explanation: &Explanation, out: &mut Out) {
    let with = |wanted: fn(&Verdict) -> bool| -> Vec<&str> {
        let scopes = explanation.scopes.iter().filter(|scope| wanted(&scope.verdict));
        scopes.map(|scope| scope.scope.as_str()).collect()
    };
    let granted = with(|verdict| *verdict == Verdict::Granted);
    let asked = with(|verdict| *verdict == Verdict::Asked);
    let denied: Vec<String> = explanation
        .scopes
        .iter()
        .filter_map(|scope| match scope.verdict {
            Verdict::Denied(reason) => Some(format!("`{}` ({reason})", scope.scope)),
            _ => None,
        })
        .collect();
    let mut parts = Vec::new();
    if !asked.is_empty() {
        parts.push(format!("consent required for {}", backticked(asked.iter())));
    }
    match (granted.is_empty(), asked.is_empty()) {
        (false, true) => parts.push(format!("granted {}", backticked(granted.iter()))),
        (false, false) => parts.push(format!("granted without asking {}", backticked(granted.iter()))),
        (true, true) => parts.push("granted nothing".to_owned()),
        (true, false) => {}
    }
    if !denied.is_empty() {
        parts.push(format!("denied {}", denied.join(", ")));
    }
    let audience = explanation
        .audience
        .as_deref()
        .map_or("none".to_owned(), |a| format!("`{a}`"));
    out.line(format!("audience in force: {audience}"));
    out.line(format!("decision: {}", parts.join("; ")));
    for scope in &explanation.scopes {
        out.line(String::new());
        let verdict = match scope.verdict {
            Verdict::Granted => "granted".to_owned(),
            Verdict::Asked => "on the consent prompt".to_owned(),
            Verdict::Denied(reason) => format!("denied ({reason})"),
            other => other.to_string(),
        };
        out.line(format!("`{}`: {verdict}", scope.scope));
        for step in &scope.steps {
            let source = step
                .source
                .as_deref()
                .map(|s| format!(" ({s})"))
                .unwrap_or_default();
            out.line(format!(
                "  {:<4} {}: {}{source}",
                name_of(&step.mark),
                name_of(&step.check),
                step.detail
            ));
        }
    }
}

/// The snake_case name an enum serializes to.
pub fn name_of<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(Value::String(name)) => name,
        _ => String::new(),
    }
}

/// `` `a`, `b` ``.
pub fn backticked<T: std::fmt::Display>(items: impl Iterator<Item = T>) -> String {
    items
        .map(|item| format!("`{item}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

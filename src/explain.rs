//! `Policy::explain`: a decision with the provenance of every verdict, for
//! operators and audits. Computed on demand, off the hot path: it makes the
//! decision with [`Policy::grant`], then looks up which document entry or
//! request input each check of each scope relied on.

use std::collections::VecDeque;

use serde::Serialize;

use crate::consent::ConsentRecord;
use crate::decide::Decision;
use crate::error::GrantError;
use crate::grant::{Context, Entry, Grant, State, Verdict};
use crate::policy::{Api, Policy, Written};
use crate::request::Request;
use crate::scope::{is_oidc_scope, OFFLINE_ACCESS};
use crate::vocab::{Flow, Subject, UserAccess};

/// A decision explained: its outcome and, for every asked scope, the checks
/// it went through and what each relied on.
///
/// ```
/// use scope_policy::{Check, Mark, Policy, Request, User};
/// let policy = Policy::from_json(r#"{
///   "apis": [{ "audience": "https://events.example.com/api", "rbac": true,
///              "scopes": [ { "name": "view:events" }, { "name": "create:events" } ] }],
///   "roles": [ { "name": "participant", "permissions": [ { "audience": "https://events.example.com/api", "scope": "view:*" } ] },
///              { "name": "organizer", "inherits": ["participant"] } ],
///   "clients": [{ "client_id": "events-web", "first_party": true, "kind": "regular_web" }]
/// }"#)?;
/// let olga = User::new("olga").with_role("organizer");
/// let request = Request::new("events-web").audience("https://events.example.com/api")
///     .scope("view:events create:events").user(&olga);
/// let explained = policy.explain(&request)?;
/// let view = &explained.scopes[0];
/// let rbac = view.steps.iter().find(|step| step.check == Check::Rbac).unwrap();
/// assert_eq!(rbac.mark, Mark::Pass);
/// assert_eq!(rbac.source.as_deref(), Some("roles[0].permissions[0]"));
/// assert_eq!(rbac.detail, "role `organizer` inherits `participant`, whose permission `view:*` names it");
/// let create = &explained.scopes[1];
/// assert_eq!(create.steps.last().map(|step| step.mark), Some(Mark::Fail));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Explanation {
    /// Whether the decision grants or asks the user.
    pub outcome: Outcome,
    /// The client.
    pub client_id: String,
    /// The user, in a user flow.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The flow.
    pub flow: Flow,
    /// The audience in force.
    pub audience: Option<String>,
    /// Every asked scope, in request order.
    pub scopes: Vec<ScopeExplanation>,
}

/// What a decision came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Outcome {
    /// Granted without asking.
    Granted,
    /// The user must be asked first.
    ConsentRequired,
}

/// One asked scope: its verdict and the checks that led to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ScopeExplanation {
    /// The scope token.
    pub scope: String,
    /// The verdict of the decision.
    pub verdict: Verdict,
    /// The checks in the order the decision runs them, up to the one that
    /// refused the scope or put it on the prompt.
    pub steps: Vec<Step>,
}

/// One check on one scope, and what answered it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Step {
    /// Which check.
    pub check: Check,
    /// How it came out.
    pub mark: Mark,
    /// Where the answer comes from, when something specific answered it: a
    /// document path (`roles[1].permissions[0]`,
    /// `clients[0].grants[1].scopes[2]`, `apis[0].scopes[3]`) or a request
    /// path (`request.consents[0]`, `request.user.permissions[2]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// One sentence saying why.
    pub detail: String,
}

/// The checks of a scope's verdict, in the order the decision runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Check {
    /// An OpenID Connect scope needs a user (`requires_user`).
    User,
    /// `offline_access` needs the `refresh_token` grant type and the API's
    /// `allow_offline_access` (`offline_access_not_allowed`).
    OfflineAccess,
    /// An API scope needs an audience (`no_audience`).
    Audience,
    /// The API defines the scope (`undefined`).
    Definition,
    /// The client's grant holds it, where one restricts (`not_granted_to_client`).
    ClientGrant,
    /// The user's roles or direct permissions allow it, under RBAC (`not_permitted`).
    Rbac,
    /// Consent: not needed, remembered, declined, asked, or missing in a refresh.
    Consent,
}

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Mark {
    /// Passed.
    Pass,
    /// Refused the scope.
    Fail,
    /// Put the scope on the consent prompt.
    Ask,
}

impl Policy {
    /// Decides `request` as [`Policy::grant`] does and explains every
    /// verdict: for a granted scope, which definition, client grant entry
    /// (and the pattern that matched), role (with the inheritance path) or
    /// direct permission, and which consent record or consent rule let it
    /// through; for a refused one, the check that refused it.
    ///
    /// Off the hot path: it allocates and looks entries up one by one. The
    /// plain decision does none of this.
    ///
    /// # Errors
    ///
    /// The [`GrantError`] of a request refused as a whole, as [`Policy::grant`].
    pub fn explain<'a>(&'a self, request: &Request<'a>) -> Result<Explanation, GrantError> {
        let decision = self.grant(request)?;
        let (outcome, grant) = match &decision {
            Decision::Granted(grant) => (Outcome::Granted, grant),
            Decision::ConsentRequired(prompt) => (Outcome::ConsentRequired, prompt.pending()),
        };
        let explainer = Explainer {
            policy: self,
            context: grant.context,
        };
        Ok(Explanation {
            outcome,
            client_id: grant.client_id().to_owned(),
            user_id: grant.user_id().map(str::to_owned),
            flow: grant.flow(),
            audience: grant.audience().map(str::to_owned),
            scopes: explainer.scopes(grant),
        })
    }
}

/// Looks up the sources of one decision's verdicts.
struct Explainer<'a> {
    policy: &'a Policy,
    context: Context<'a>,
}

impl<'a> Explainer<'a> {
    fn scopes(&self, grant: &Grant<'a>) -> Vec<ScopeExplanation> {
        grant
            .verdicts
            .iter()
            .map(|entry| {
                let verdict = match entry.state {
                    State::Granted | State::Approved => Verdict::Granted,
                    State::Denied(reason) => Verdict::Denied(reason),
                    State::Asked => Verdict::Asked,
                };
                ScopeExplanation {
                    scope: entry.scope.to_owned(),
                    verdict,
                    steps: self.steps(entry),
                }
            })
            .collect()
    }

    /// The checks of one scope, up to the first that did not pass.
    fn steps(&self, entry: &Entry<'a>) -> Vec<Step> {
        let mut steps = Vec::new();
        let order = [
            Check::User,
            Check::OfflineAccess,
            Check::Audience,
            Check::Definition,
            Check::ClientGrant,
            Check::Rbac,
            Check::Consent,
        ];
        for check in order {
            let scope = entry.scope;
            let step = match check {
                Check::User => self.user(scope),
                Check::OfflineAccess => self.offline(scope),
                Check::Audience => self.audience(scope),
                Check::Definition => self.definition(scope),
                Check::ClientGrant => self.client_grant(scope),
                Check::Rbac => self.rbac(scope),
                Check::Consent => self.consent(scope, entry.state),
            };
            if let Some(step) = step {
                let done = step.mark != Mark::Pass;
                steps.push(step);
                if done {
                    break;
                }
            }
        }
        steps
    }

    fn api(&self) -> Option<(usize, &'a Api)> {
        let api = self.context.api?;
        Some((api.index(), api))
    }

    fn client_path(&self) -> String {
        let index = self.policy.client_index(self.context.client.client_id());
        format!("clients[{}]", index.unwrap_or_default())
    }

    fn user(&self, scope: &str) -> Option<Step> {
        if !is_oidc_scope(scope) {
            return None;
        }
        Some(match self.context.flow {
            Flow::ClientCredentials => step(
                Check::User,
                Mark::Fail,
                None,
                "client credentials act for no user",
            ),
            _ => step(
                Check::User,
                Mark::Pass,
                None,
                "an OpenID Connect scope, in a user flow",
            ),
        })
    }

    fn offline(&self, scope: &str) -> Option<Step> {
        if scope != OFFLINE_ACCESS || self.context.flow == Flow::ClientCredentials {
            return None;
        }
        let client = self.context.client;
        if !client.allows(Flow::RefreshToken) {
            let source = format!("{}.grant_types", self.client_path());
            return Some(step(
                Check::OfflineAccess,
                Mark::Fail,
                Some(source),
                "the client has no refresh_token grant type",
            ));
        }
        Some(match self.api() {
            Some((index, api)) if !api.allow_offline_access() => step(
                Check::OfflineAccess,
                Mark::Fail,
                Some(format!("apis[{index}].allow_offline_access")),
                "the API does not allow offline access",
            ),
            Some((index, _)) => step(
                Check::OfflineAccess,
                Mark::Pass,
                Some(format!("apis[{index}].allow_offline_access")),
                "the client may refresh and the API allows offline access",
            ),
            None => step(
                Check::OfflineAccess,
                Mark::Pass,
                None,
                "the client may refresh; there is no API to ask",
            ),
        })
    }

    fn audience(&self, scope: &str) -> Option<Step> {
        if is_oidc_scope(scope) {
            return None;
        }
        Some(match self.api() {
            Some((index, api)) => step(
                Check::Audience,
                Mark::Pass,
                Some(format!("apis[{index}]")),
                format!("the audience is `{}`", api.audience()),
            ),
            None => step(
                Check::Audience,
                Mark::Fail,
                None,
                "the request has no audience to define an API scope",
            ),
        })
    }

    fn definition(&self, scope: &str) -> Option<Step> {
        let (index, api) = self.api().filter(|_| !is_oidc_scope(scope))?;
        Some(match api.scope_id(scope) {
            Some(id) => step(
                Check::Definition,
                Mark::Pass,
                Some(format!("apis[{index}].scopes[{id}]")),
                "the API defines it",
            ),
            None => step(
                Check::Definition,
                Mark::Fail,
                Some(format!("apis[{index}].scopes")),
                "the API defines no such scope (the match is exact)",
            ),
        })
    }

    fn client_grant(&self, scope: &str) -> Option<Step> {
        let (index, api) = self.api().filter(|_| !is_oidc_scope(scope))?;
        api.scope_id(scope)?;
        let subject = if self.context.flow.has_user() {
            Subject::User
        } else {
            Subject::Client
        };
        if !self.context.restriction().applies() {
            let detail = match api.user_access() {
                UserAccess::AllowAll => "user_access is allow_all: no client grant restricts user tokens",
                _ => "no client grant restricts this flow",
            };
            return Some(step(
                Check::ClientGrant,
                Mark::Pass,
                Some(format!("apis[{index}].user_access")),
                detail,
            ));
        }
        let client = self.client_path();
        let Some(grant) = self.context.client.written_grant(subject, index) else {
            let detail = format!("the client has no `{subject}` grant for this API");
            return Some(step(Check::ClientGrant, Mark::Fail, None, detail));
        };
        let grant_path = format!("{client}.grants[{}]", grant.at);
        Some(match grant.scopes.iter().find(|written| written.names(scope)) {
            Some(written) => step(
                Check::ClientGrant,
                Mark::Pass,
                Some(format!("{grant_path}.scopes[{}]", written.at)),
                format!("the client's `{subject}` grant names it as `{}`", written.pattern),
            ),
            None => step(
                Check::ClientGrant,
                Mark::Fail,
                Some(grant_path),
                format!("the client's `{subject}` grant does not name it"),
            ),
        })
    }

    fn rbac(&self, scope: &str) -> Option<Step> {
        let (index, api) = self.api().filter(|_| !is_oidc_scope(scope))?;
        api.scope_id(scope)?;
        let user = self.context.user.filter(|_| self.context.flow.has_user())?;
        if !api.rbac() {
            return None;
        }
        for name in &user.roles {
            if let Some((path, role, written)) = self.role_source(name, index, scope) {
                let detail = match path.as_slice() {
                    [] => format!("role `{name}`, whose permission `{}` names it", written.pattern),
                    via => format!(
                        "role `{name}` inherits `{}`, whose permission `{}` names it",
                        via.join("` and then `"),
                        written.pattern
                    ),
                };
                let source = format!("roles[{role}].permissions[{}]", written.at);
                return Some(step(Check::Rbac, Mark::Pass, Some(source), detail));
            }
        }
        let direct = user
            .permissions
            .iter()
            .position(|permission| permission.audience == api.audience() && permission.scope == *scope);
        Some(match direct {
            Some(n) => step(
                Check::Rbac,
                Mark::Pass,
                Some(format!("request.user.permissions[{n}]")),
                "a direct permission of the user",
            ),
            None => step(
                Check::Rbac,
                Mark::Fail,
                None,
                "no role of the user, inherited or not, and no direct permission allows it",
            ),
        })
    }

    /// The first role reachable from `name` through `inherits` (breadth
    /// first) whose own permission on the API names `scope`: the roles
    /// passed through after `name`, the role's index, and the permission.
    fn role_source(&self, name: &str, api: usize, scope: &str) -> Option<(Vec<String>, usize, &'a Written)> {
        let policy = self.policy;
        let start = policy.role_index(name)?;
        let mut came_from: Vec<Option<usize>> = vec![None; policy.roles().len()];
        let mut seen = vec![false; policy.roles().len()];
        let mut queue = VecDeque::from([start]);
        if let Some(first) = seen.get_mut(start) {
            *first = true;
        }
        while let Some(at) = queue.pop_front() {
            let role = policy.role_at(at)?;
            let named = role.written().iter().find(|w| w.api == api && w.names(scope));
            if let Some(written) = named {
                let mut path = Vec::new();
                let mut step = at;
                while let Some(Some(from)) = came_from.get(step) {
                    path.push(
                        policy
                            .role_at(step)
                            .map(|r| r.name().to_owned())
                            .unwrap_or_default(),
                    );
                    step = *from;
                }
                path.reverse();
                return Some((path, at, written));
            }
            for parent in role.inherits() {
                let Some(next) = policy.role_index(parent) else {
                    continue;
                };
                if let Some(seen) = seen.get_mut(next).filter(|seen| !**seen) {
                    *seen = true;
                    if let Some(slot) = came_from.get_mut(next) {
                        *slot = Some(at);
                    }
                    queue.push_back(next);
                }
            }
        }
        None
    }

    fn consent(&self, scope: &str, state: State) -> Option<Step> {
        let context = &self.context;
        let api = context.api;
        let id = api.and_then(|api| api.scope_id(scope));
        let one_time = id.is_some_and(|id| api.is_some_and(|api| api.always_at(id)));
        let required = id.is_some_and(|id| api.is_some_and(|api| api.required_at(id)));
        let key = context.key();
        let matching = |test: fn(&ConsentRecord, &str) -> bool| {
            let records = context.consents.iter().enumerate();
            records
                .filter(|(_, record)| record.applies_to(key.user_id, key.client_id, key.audience, key.now))
                .find(|(_, record)| test(record, scope))
                .map(|(n, _)| format!("request.consents[{n}]"))
        };
        let declining = matching(ConsentRecord::declines);
        let holding = matching(ConsentRecord::holds);
        let why = self.why_consent(one_time);
        match context.flow {
            Flow::ClientCredentials => None,
            Flow::AuthorizationCode | Flow::DeviceCode => Some(match state {
                _ if why.is_empty() => self.skip(),
                State::Denied(_) => step(
                    Check::Consent,
                    Mark::Fail,
                    declining,
                    "the user declined it on an earlier prompt",
                ),
                State::Asked if declining.is_some() && required => step(
                    Check::Consent,
                    Mark::Ask,
                    declining,
                    format!("declined before, but required, so asked again: {why}"),
                ),
                State::Asked => step(
                    Check::Consent,
                    Mark::Ask,
                    None,
                    format!("on the consent prompt: {why}"),
                ),
                State::Granted | State::Approved => step(
                    Check::Consent,
                    Mark::Pass,
                    holding,
                    format!("a matching record covers it ({why})"),
                ),
            }),
            Flow::RefreshToken => Some(match declining {
                Some(source) => step(
                    Check::Consent,
                    Mark::Fail,
                    Some(source),
                    "a matching record declines it",
                ),
                None if why.is_empty() => self.skip(),
                None if one_time => step(
                    Check::Consent,
                    Mark::Fail,
                    None,
                    "a one-time scope never comes back through a refresh",
                ),
                None => match holding {
                    Some(source) => step(
                        Check::Consent,
                        Mark::Pass,
                        Some(source),
                        format!("a matching record holds it ({why})"),
                    ),
                    None => step(
                        Check::Consent,
                        Mark::Fail,
                        None,
                        format!("no matching, unexpired record holds it ({why})"),
                    ),
                },
            }),
        }
    }

    /// A passing consent step for a request where nobody must be asked.
    fn skip(&self) -> Step {
        step(
            Check::Consent,
            Mark::Pass,
            Some(format!("{}.first_party", self.client_path())),
            "a first-party client on an API that lets it skip consent",
        )
    }

    /// Why the scope needs consent in this request, as a phrase; empty when it does not.
    fn why_consent(&self, one_time: bool) -> String {
        let context = &self.context;
        let mut why: Vec<&str> = Vec::new();
        if !context.client.first_party() {
            why.push("a third-party client");
        } else if context.api.is_some_and(|api| !api.allow_skipping_consent()) {
            why.push("the API does not let first-party clients skip consent");
        }
        if context.flow == Flow::DeviceCode {
            why.push("the device flow");
        }
        if context.unverifiable_redirect {
            why.push("an unverifiable redirect");
        }
        if context.prompt.consent() {
            why.push("prompt=consent");
        }
        if one_time {
            why.push("a one-time scope");
        }
        why.join(", ")
    }
}

fn step(check: Check, mark: Mark, source: Option<String>, detail: impl Into<String>) -> Step {
    Step {
        check,
        mark,
        source,
        detail: detail.into(),
    }
}

//! What can be obtained under a policy, found by asking the decision itself.
//!
//! The tool never re-implements a rule of the decision. To know which scopes
//! of an API a client can obtain, it makes the requests a client could make
//! and reads the verdicts of [`Policy::grant`]: every user flow the client
//! has, for a user who holds a direct permission on every scope (so RBAC,
//! which is about users, not clients, lets everything through), asking the
//! API's default scopes (no scope parameter) and then every defined scope
//! and `offline_access`, in as few requests as the policy's limits allow;
//! and the client credentials flow, for the client itself. A scope granted
//! without a prompt is obtained *without asking*; one put on the consent
//! prompt is obtained *with the user's consent*.
//!
//! What a role can obtain is what the library resolves for it
//! ([`Role::scopes`], inheritance included).

use std::collections::{BTreeMap, BTreeSet};

use scope_policy::{
    Api, Client, Decision, Flow, Policy, Request, Role, Scope, Subject, User, Verdict, OFFLINE_ACCESS,
};

/// How a scope is obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum How {
    /// On the consent prompt: the user must approve it.
    WithConsent,
    /// Granted without asking anybody.
    WithoutAsking,
}

impl How {
    /// As a phrase for people.
    pub fn phrase(self) -> &'static str {
        match self {
            How::WithConsent => "with the user's consent",
            How::WithoutAsking => "without asking",
        }
    }

    /// As a name in JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            How::WithConsent => "with_consent",
            How::WithoutAsking => "without_asking",
        }
    }
}

/// What one client can obtain of one API, for one subject.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reach {
    /// Each flow the client may use for this subject, with what it obtains there.
    pub flows: Vec<FlowReach>,
}

/// What a client obtains in one flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowReach {
    /// The flow.
    pub flow: Flow,
    /// The scopes obtained (API scopes in definition order, then `offline_access`).
    pub scopes: Vec<(String, How)>,
    /// When nothing is obtained because the request is refused as a whole:
    /// the error code and message (`access_denied: …`).
    pub refused: Option<String>,
    /// Whether some request of the flow is decided rather than refused as a
    /// whole: the API admits the client, which then gets OpenID Connect
    /// scopes at least, even with no API scope.
    pub admitted: bool,
}

impl Reach {
    /// Every scope obtained in some flow, with the easiest way to obtain it
    /// in a flow that gives a first token (a refresh counts only for a scope
    /// no such flow gives), in the order of the flows.
    pub fn scopes(&self) -> Vec<(String, How)> {
        // Position of each scope in `scopes`, so that merging stays linear.
        let mut at: BTreeMap<&str, usize> = BTreeMap::new();
        let mut scopes: Vec<(String, How)> = Vec::new();
        let (first, renewing): (Vec<&FlowReach>, Vec<&FlowReach>) = self
            .flows
            .iter()
            .partition(|flow| flow.flow != Flow::RefreshToken);
        for (renews, flows) in [(false, first), (true, renewing)] {
            for flow in flows {
                for (scope, how) in &flow.scopes {
                    match at.get(scope.as_str()).and_then(|i| scopes.get_mut(*i)) {
                        Some((_, best)) if !renews => *best = (*best).max(*how),
                        Some(_) => {}
                        None => {
                            at.insert(scope, scopes.len());
                            scopes.push((scope.clone(), *how));
                        }
                    }
                }
            }
        }
        scopes
    }

    /// How `scope` is obtained in the easiest flow, if at all.
    pub fn get(&self, scope: &str) -> Option<How> {
        self.flows
            .iter()
            .flat_map(|flow| flow.scopes.iter())
            .filter(|(known, _)| known == scope)
            .map(|(_, how)| *how)
            .max()
    }

    /// The flows in which the API admits the client, by name.
    pub fn admitted(&self) -> Vec<Flow> {
        self.flows
            .iter()
            .filter(|flow| flow.admitted)
            .map(|flow| flow.flow)
            .collect()
    }

    /// Whether nothing is obtained.
    pub fn is_empty(&self) -> bool {
        self.flows.iter().all(|flow| flow.scopes.is_empty())
    }

    /// Whether an API scope (not `offline_access`) is obtained.
    pub fn has_api_scope(&self) -> bool {
        self.flows
            .iter()
            .flat_map(|flow| flow.scopes.iter())
            .any(|(scope, _)| scope != OFFLINE_ACCESS)
    }
}

/// The user flows: the interactive ones give a first token; a refresh
/// renews, for the original scope (every scope here), what consent allows
/// without a record (a first-party client that may skip), so it adds to
/// what the others give only for a client without an interactive flow.
pub const USER_FLOWS: [Flow; 3] = [Flow::AuthorizationCode, Flow::DeviceCode, Flow::RefreshToken];

/// A user whom RBAC lets have every scope of `api`: a direct permission on each.
pub fn permitted_user(api: &Api) -> User {
    api.scopes().fold(User::new("any user"), |user, (scope, _)| {
        user.with_permission(api.audience(), scope.clone())
    })
}

/// What `client` can obtain of `api` for `subject`. `user` is
/// [`permitted_user`] of the API (built once by the caller).
pub fn reach(policy: &Policy, client: &Client, api: &Api, subject: Subject, user: &User) -> Reach {
    let mut tokens: Vec<&str> = api.scopes().map(|(scope, _)| scope.as_str()).collect();
    let flows: Vec<Flow> = match subject {
        Subject::User => {
            tokens.push(OFFLINE_ACCESS);
            USER_FLOWS
                .into_iter()
                .filter(|flow| client.allows(*flow))
                .collect()
        }
        // Subject is non-exhaustive in spirit: only client credentials act for the client.
        _ => [Flow::ClientCredentials]
            .into_iter()
            .filter(|flow| client.allows(*flow))
            .collect(),
    };
    let parameters = scope_parameters(policy, &tokens);
    // A refresh asks its original scope (no limits apply to it) at its original audience.
    let original = tokens.join(" ");
    let mut reach = Reach::default();
    for flow in flows {
        let mut obtained: BTreeMap<String, How> = BTreeMap::new();
        let mut refused = None;
        let mut admitted = false;
        // No scope parameter first: it asks the defaults, the client grant or the original scope.
        let asked = match flow {
            Flow::RefreshToken => vec![None],
            _ => std::iter::once(None)
                .chain(parameters.iter().map(|p| Some(p.as_str())))
                .collect(),
        };
        for parameter in asked {
            let mut request = Request::new(client.client_id())
                .flow(flow)
                .audience(api.audience())
                .maybe_scope(parameter);
            if flow.has_user() {
                request = request.user(user);
            }
            if flow == Flow::RefreshToken {
                request = request
                    .original_scope(&original)
                    .original_audience(api.audience());
            }
            match verdicts(policy, &request) {
                Ok(verdicts) => {
                    admitted = true;
                    for (scope, how) in verdicts {
                        let best = obtained.entry(scope).or_insert(how);
                        *best = (*best).max(how);
                    }
                }
                Err(error) => {
                    refused.get_or_insert(error);
                }
            }
        }
        let scopes: Vec<(String, How)> = tokens
            .iter()
            .filter_map(|token| obtained.get(*token).map(|how| ((*token).to_owned(), *how)))
            .collect();
        let refused = refused.filter(|_| scopes.is_empty());
        reach.flows.push(FlowReach {
            flow,
            scopes,
            refused,
            admitted,
        });
    }
    reach
}

/// The scopes a request obtains: granted without asking, or on the prompt;
/// or the error of a request refused as a whole, as `code: message`.
fn verdicts(policy: &Policy, request: &Request<'_>) -> Result<Vec<(String, How)>, String> {
    let list = |verdicts: &mut dyn Iterator<Item = (&str, Verdict)>| {
        verdicts
            .filter_map(|(scope, verdict)| match verdict {
                Verdict::Granted => Some((scope.to_owned(), How::WithoutAsking)),
                Verdict::Asked => Some((scope.to_owned(), How::WithConsent)),
                _ => None,
            })
            .collect()
    };
    match policy.grant(request) {
        Ok(Decision::Granted(grant)) => Ok(list(&mut grant.verdicts())),
        Ok(Decision::ConsentRequired(prompt)) => Ok(list(&mut prompt.verdicts())),
        Err(error) => Err(format!("{}: {error}", error.code())),
    }
}

/// The tokens as few scope parameters as the policy's limits allow. A token
/// too long to be asked alone is left out: no request can name it.
fn scope_parameters(policy: &Policy, tokens: &[&str]) -> Vec<String> {
    let limits = policy.limits();
    let mut parameters: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut count = 0;
    for token in tokens {
        if token.len() > limits.max_scope_length || limits.max_scope_tokens == 0 {
            continue;
        }
        let longer = current.len() + 1 + token.len();
        if count > 0 && (count == limits.max_scope_tokens || longer > limits.max_scope_length) {
            parameters.push(std::mem::take(&mut current));
            count = 0;
        }
        if count > 0 {
            current.push(' ');
        }
        current.push_str(token);
        count += 1;
    }
    if count > 0 {
        parameters.push(current);
    }
    parameters
}

/// Every client's reach on every API, for both subjects: computed once per policy.
#[derive(Debug)]
pub struct Reaches {
    // (client index, api index, subject) → reach; subjects: 0 user, 1 client.
    table: Vec<Vec<[Reach; 2]>>,
    // (api index, subject) → every scope some client obtains.
    anyone: Vec<[BTreeSet<String>; 2]>,
}

impl Reaches {
    /// Computes every client's reach on every API.
    pub fn of(policy: &Policy) -> Reaches {
        let users: Vec<User> = policy.apis().map(permitted_user).collect();
        let table = policy
            .clients()
            .map(|client| {
                policy
                    .apis()
                    .zip(&users)
                    .map(|(api, user)| {
                        [
                            reach(policy, client, api, Subject::User, user),
                            reach(policy, client, api, Subject::Client, user),
                        ]
                    })
                    .collect()
            })
            .collect::<Vec<Vec<[Reach; 2]>>>();
        let anyone = (0..policy.apis().len())
            .map(|a| {
                [0, 1].map(|subject| {
                    let reaches = table.iter().filter_map(|apis| apis.get(a)).map(|r| &r[subject]);
                    let flows = reaches.flat_map(|reach| reach.flows.iter());
                    flows
                        .flat_map(|flow| flow.scopes.iter().map(|(scope, _)| scope.clone()))
                        .collect()
                })
            })
            .collect();
        Reaches { table, anyone }
    }

    /// The reach of the client at `client` (its index) on the API at `api`.
    pub fn get(&self, client: usize, api: usize, subject: Subject) -> Option<&Reach> {
        let at = usize::from(subject == Subject::Client);
        self.table.get(client)?.get(api)?.get(at)
    }

    /// Whether some client obtains `scope` of the API at `api` for `subject`.
    pub fn anyone(&self, api: usize, subject: Subject, scope: &str) -> bool {
        let at = usize::from(subject == Subject::Client);
        self.anyone.get(api).is_some_and(|sets| sets[at].contains(scope))
    }
}

/// The scopes of `api` the role permits, inheritance included, in definition order.
pub fn role_scopes(role: &Role, api: &Api) -> Vec<String> {
    role.scopes(api).map(Scope::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_keep_within_the_limits() {
        let policy = Policy::from_json(
            r#"{ "settings": { "max_scope_tokens": 2, "max_scope_length": 9 }, "apis": [] }"#,
        )
        .unwrap();
        let tokens = ["a", "bb", "ccc", "dddddddddd", "e"];
        assert_eq!(scope_parameters(&policy, &tokens), ["a bb", "ccc e"]);
    }
}

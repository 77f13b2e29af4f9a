//! `Request`: what the host knows about one token request, borrowed from the host.

use serde::{Deserialize, Serialize};

use crate::consent::ConsentRecord;
use crate::scope::Scope;
use crate::vocab::Flow;

/// The user a token would act for, as the host's identity store knows them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// The user's stable id (the token's `sub`).
    pub id: String,
    /// The user's role names; names the policy does not define grant nothing.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Permissions given to the user directly: exact scopes, never patterns.
    #[serde(default)]
    pub permissions: Vec<Permission>,
}

impl User {
    /// A user with no roles and no direct permissions.
    pub fn new(id: impl Into<String>) -> Self {
        User {
            id: id.into(),
            roles: Vec::new(),
            permissions: Vec::new(),
        }
    }

    /// Adds a role name.
    #[must_use]
    pub fn with_role(mut self, role: impl Into<String>) -> Self {
        self.roles.push(role.into());
        self
    }

    /// Adds a direct permission.
    #[must_use]
    pub fn with_permission(mut self, audience: impl Into<String>, scope: Scope) -> Self {
        self.permissions.push(Permission {
            audience: audience.into(),
            scope,
        });
        self
    }
}

/// A direct permission: one exact scope of one API.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Permission {
    /// The API's audience.
    pub audience: String,
    /// The scope; compared exactly, so `read:*` here is just an unusual name.
    pub scope: Scope,
}

/// One token request, borrowed from the host.
///
/// Only the client id is required; the flow defaults to `authorization_code`.
/// Each setter has a `maybe_` twin that takes an `Option`, for parameters
/// the host may or may not have; the getters are named `get_…`, since the
/// plain names are the setters.
///
/// ```
/// use scope_policy::{Flow, Request, User};
/// let alice = User::new("alice").with_role("organizer");
/// let prompt: Option<&str> = None;
/// let request = Request::new("events-web")
///     .flow(Flow::AuthorizationCode)
///     .audience("https://events.example.com/api")
///     .scope("openid create:events")
///     .maybe_prompt(prompt)
///     .redirect_uri("https://events.example.com/callback")
///     .user(&alice)
///     .now(1_700_000_000);
/// assert_eq!(request.client_id(), "events-web");
/// assert_eq!(request.get_audience(), Some("https://events.example.com/api"));
/// assert_eq!(request.get_prompt(), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a> {
    pub(crate) client_id: &'a str,
    pub(crate) flow: Flow,
    pub(crate) audience: Option<&'a str>,
    pub(crate) scope: Option<&'a str>,
    pub(crate) user: Option<&'a User>,
    pub(crate) consents: &'a [ConsentRecord],
    pub(crate) prompt: Option<&'a str>,
    pub(crate) redirect_uri: Option<&'a str>,
    pub(crate) original_scope: Option<&'a str>,
    pub(crate) original_audience: Option<&'a str>,
    pub(crate) now: Option<u64>,
}

impl<'a> Request<'a> {
    /// A request from `client_id`, in the `authorization_code` flow, with nothing else.
    pub fn new(client_id: &'a str) -> Self {
        Request {
            client_id,
            flow: Flow::AuthorizationCode,
            audience: None,
            scope: None,
            user: None,
            consents: &[],
            prompt: None,
            redirect_uri: None,
            original_scope: None,
            original_audience: None,
            now: None,
        }
    }

    /// The flow (grant type) of the request.
    #[must_use]
    pub fn flow(mut self, flow: Flow) -> Self {
        self.flow = flow;
        self
    }

    /// The requested audience (RFC 8707 `resource`, or `audience`).
    #[must_use]
    pub fn audience(self, audience: &'a str) -> Self {
        self.maybe_audience(Some(audience))
    }

    /// The requested audience, if the request names one.
    #[must_use]
    pub fn maybe_audience(mut self, audience: Option<&'a str>) -> Self {
        self.audience = audience;
        self
    }

    /// The raw `scope` parameter, as received.
    #[must_use]
    pub fn scope(self, scope: &'a str) -> Self {
        self.maybe_scope(Some(scope))
    }

    /// The raw `scope` parameter, if the request has one.
    #[must_use]
    pub fn maybe_scope(mut self, scope: Option<&'a str>) -> Self {
        self.scope = scope;
        self
    }

    /// The authenticated user (user flows only).
    #[must_use]
    pub fn user(self, user: &'a User) -> Self {
        self.maybe_user(Some(user))
    }

    /// The authenticated user, if there is one.
    #[must_use]
    pub fn maybe_user(mut self, user: Option<&'a User>) -> Self {
        self.user = user;
        self
    }

    /// Every consent record the host holds for this user and client (others
    /// are ignored). A refresh needs them too: consent the user withdrew
    /// since must not come back.
    #[must_use]
    pub fn consents(mut self, consents: &'a [ConsentRecord]) -> Self {
        self.consents = consents;
        self
    }

    /// The raw OpenID Connect `prompt` parameter, as received (`consent`,
    /// `none`, `login consent`, ...). It counts in `authorization_code` only,
    /// and an empty one counts as not sent.
    #[must_use]
    pub fn prompt(self, prompt: &'a str) -> Self {
        self.maybe_prompt(Some(prompt))
    }

    /// The raw `prompt` parameter, if the request has one.
    #[must_use]
    pub fn maybe_prompt(mut self, prompt: Option<&'a str>) -> Self {
        self.prompt = prompt;
        self
    }

    /// The `redirect_uri` the host will redirect to, after it matched it
    /// exactly against the client's registered URIs. It counts in
    /// `authorization_code` only: an unverifiable one (not `https`, or a
    /// loopback host; RFC 8252 §8.6) removes first-party skip and remembered
    /// consent. An empty one counts as not sent; leaving it out when there is
    /// one is a host bug the crate cannot see.
    #[must_use]
    pub fn redirect_uri(self, redirect_uri: &'a str) -> Self {
        self.maybe_redirect_uri(Some(redirect_uri))
    }

    /// The `redirect_uri`, if the request has one.
    #[must_use]
    pub fn maybe_redirect_uri(mut self, redirect_uri: Option<&'a str>) -> Self {
        self.redirect_uri = redirect_uri;
        self
    }

    /// For a refresh: the scope of the grant being refreshed, as stored.
    #[must_use]
    pub fn original_scope(self, original_scope: &'a str) -> Self {
        self.maybe_original_scope(Some(original_scope))
    }

    /// For a refresh: the original scope, if the host has one.
    #[must_use]
    pub fn maybe_original_scope(mut self, original_scope: Option<&'a str>) -> Self {
        self.original_scope = original_scope;
        self
    }

    /// For a refresh: the audience of the grant being refreshed. The refresh
    /// is bound to it (RFC 9700 §4.14.2); leave it out only when that grant
    /// had no audience.
    #[must_use]
    pub fn original_audience(self, original_audience: &'a str) -> Self {
        self.maybe_original_audience(Some(original_audience))
    }

    /// For a refresh: the original audience, if that grant had one.
    #[must_use]
    pub fn maybe_original_audience(mut self, original_audience: Option<&'a str>) -> Self {
        self.original_audience = original_audience;
        self
    }

    /// The current time, in unix seconds; needed for consent with an expiry.
    #[must_use]
    pub fn now(self, now: u64) -> Self {
        self.maybe_now(Some(now))
    }

    /// The current time, if the host passes one.
    #[must_use]
    pub fn maybe_now(mut self, now: Option<u64>) -> Self {
        self.now = now;
        self
    }

    /// The client id.
    pub fn client_id(&self) -> &'a str {
        self.client_id
    }

    /// The flow.
    pub fn get_flow(&self) -> Flow {
        self.flow
    }

    /// The requested audience, as given.
    pub fn get_audience(&self) -> Option<&'a str> {
        self.audience
    }

    /// The raw `scope` parameter, as given.
    pub fn get_scope(&self) -> Option<&'a str> {
        self.scope
    }

    /// The user.
    pub fn get_user(&self) -> Option<&'a User> {
        self.user
    }

    /// The consent records passed in.
    pub fn get_consents(&self) -> &'a [ConsentRecord] {
        self.consents
    }

    /// The raw `prompt` parameter, as given.
    pub fn get_prompt(&self) -> Option<&'a str> {
        self.prompt
    }

    /// The `redirect_uri`, as given.
    pub fn get_redirect_uri(&self) -> Option<&'a str> {
        self.redirect_uri
    }

    /// The original scope of a refresh, as given.
    pub fn get_original_scope(&self) -> Option<&'a str> {
        self.original_scope
    }

    /// The original audience of a refresh, as given.
    pub fn get_original_audience(&self) -> Option<&'a str> {
        self.original_audience
    }

    /// The current time, as given.
    pub fn get_now(&self) -> Option<u64> {
        self.now
    }
}

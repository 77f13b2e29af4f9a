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

/// A request's parameters, owned and serializable: what a host keeps in its
/// session between showing a consent prompt (`GET /authorize`) and reading
/// the answer (`POST /consent`), and from which each [`Request`] borrows.
///
/// It holds what the client asked and who the user is. The consent records
/// and the clock are not part of it: pass those fresh each time
/// ([`Request::consents`], [`Request::now`]), so the answer is decided on
/// what the host holds when the user answers. See
/// [`ConsentPrompt`](crate::ConsentPrompt) for the whole round trip.
///
/// ```
/// use scope_policy::{Flow, RequestParams, User};
/// let params = RequestParams::new("partner")
///     .audience("https://notes.example.com")
///     .scope("read:notes")
///     .prompt("consent")
///     .redirect_uri("https://partner.example/callback")
///     .user(User::new("alice").with_role("reader"));
/// let json = serde_json::to_string(&params)?;
/// let back: RequestParams = serde_json::from_str(&json)?;
/// assert_eq!(back, params);
/// let request = back.request().now(1_800_000_000);
/// assert_eq!((request.get_flow(), request.get_scope()), (Flow::AuthorizationCode, Some("read:notes")));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RequestParams {
    /// The client id.
    pub client_id: String,
    /// The flow (grant type).
    #[serde(default = "authorization_code")]
    pub flow: Flow,
    /// The requested audience.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// The raw `scope` parameter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The raw OpenID Connect `prompt` parameter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// The `redirect_uri` the host will redirect to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uri: Option<String>,
    /// For a refresh: the scope of the grant being refreshed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_scope: Option<String>,
    /// For a refresh: the audience of the grant being refreshed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_audience: Option<String>,
    /// The authenticated user: id, roles and direct permissions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<User>,
}

fn authorization_code() -> Flow {
    Flow::AuthorizationCode
}

impl RequestParams {
    /// The parameters of a request from `client_id`, in the `authorization_code` flow.
    pub fn new(client_id: impl Into<String>) -> Self {
        RequestParams {
            client_id: client_id.into(),
            flow: Flow::AuthorizationCode,
            audience: None,
            scope: None,
            prompt: None,
            redirect_uri: None,
            original_scope: None,
            original_audience: None,
            user: None,
        }
    }

    /// Sets the flow.
    #[must_use]
    pub fn flow(mut self, flow: Flow) -> Self {
        self.flow = flow;
        self
    }

    /// Sets the requested audience.
    #[must_use]
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// Sets the raw `scope` parameter.
    #[must_use]
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// Sets the raw `prompt` parameter.
    #[must_use]
    pub fn prompt(mut self, prompt: impl Into<String>) -> Self {
        self.prompt = Some(prompt.into());
        self
    }

    /// Sets the `redirect_uri`.
    #[must_use]
    pub fn redirect_uri(mut self, redirect_uri: impl Into<String>) -> Self {
        self.redirect_uri = Some(redirect_uri.into());
        self
    }

    /// Sets a refresh's original scope.
    #[must_use]
    pub fn original_scope(mut self, original_scope: impl Into<String>) -> Self {
        self.original_scope = Some(original_scope.into());
        self
    }

    /// Sets a refresh's original audience.
    #[must_use]
    pub fn original_audience(mut self, original_audience: impl Into<String>) -> Self {
        self.original_audience = Some(original_audience.into());
        self
    }

    /// Sets the user.
    #[must_use]
    pub fn user(mut self, user: User) -> Self {
        self.user = Some(user);
        self
    }

    /// A request borrowing these parameters; add the consent records and `now`.
    pub fn request(&self) -> Request<'_> {
        Request::new(&self.client_id)
            .flow(self.flow)
            .maybe_audience(self.audience.as_deref())
            .maybe_scope(self.scope.as_deref())
            .maybe_prompt(self.prompt.as_deref())
            .maybe_redirect_uri(self.redirect_uri.as_deref())
            .maybe_original_scope(self.original_scope.as_deref())
            .maybe_original_audience(self.original_audience.as_deref())
            .maybe_user(self.user.as_ref())
    }
}

impl Request<'_> {
    /// The request's parameters, owned, to keep between two HTTP requests
    /// (the consent records and `now` are left out; see [`RequestParams`]).
    pub fn to_params(&self) -> RequestParams {
        RequestParams {
            client_id: self.client_id.to_owned(),
            flow: self.flow,
            audience: self.audience.map(str::to_owned),
            scope: self.scope.map(str::to_owned),
            prompt: self.prompt.map(str::to_owned),
            redirect_uri: self.redirect_uri.map(str::to_owned),
            original_scope: self.original_scope.map(str::to_owned),
            original_audience: self.original_audience.map(str::to_owned),
            user: self.user.cloned(),
        }
    }
}

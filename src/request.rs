//! `Request`: what the host knows about one token request, borrowed from the host.

use serde::{Deserialize, Serialize};

use crate::scope::{same_token, Scope};
use crate::vocab::{Flow, Prompt};

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

/// Consent a user gave a client for scopes of one API (or of no API, for OIDC
/// scopes alone). The host stores these and passes them back in.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentRecord {
    /// The user who consented.
    pub user_id: String,
    /// The client they consented to.
    pub client_id: String,
    /// The API's audience, or `None` for a request that had no audience.
    #[serde(default)]
    pub audience: Option<String>,
    /// The scopes consented to.
    #[serde(default)]
    pub scopes: Vec<Scope>,
    /// When the consent lapses, in unix seconds; `None` for never.
    #[serde(default)]
    pub expires_at: Option<u64>,
}

impl ConsentRecord {
    /// Whether this record speaks for this user, client and audience at `now`.
    ///
    /// The match is exact. A record with an expiry counts only while
    /// `expires_at > now`, so a request without `now` cannot use it.
    pub fn applies_to(
        &self,
        user_id: &str,
        client_id: &str,
        audience: Option<&str>,
        now: Option<u64>,
    ) -> bool {
        self.user_id == user_id
            && self.client_id == client_id
            && self.audience.as_deref() == audience
            && match (self.expires_at, now) {
                (None, _) => true,
                (Some(expires_at), Some(now)) => expires_at > now,
                (Some(_), None) => false,
            }
    }

    /// Whether the record holds `scope`.
    pub fn holds(&self, scope: &str) -> bool {
        self.scopes.iter().any(|held| same_token(held.as_str(), scope))
    }
}

/// One token request, borrowed from the host.
///
/// Only the client id is required; the flow defaults to `authorization_code`.
///
/// ```
/// use scope_policy::{Flow, Request, User};
/// let alice = User::new("alice").with_role("organizer");
/// let request = Request::new("events-web")
///     .flow(Flow::AuthorizationCode)
///     .audience("https://events.example.com/api")
///     .scope("openid create:events")
///     .user(&alice)
///     .now(1_700_000_000);
/// assert_eq!(request.client_id(), "events-web");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a> {
    pub(crate) client_id: &'a str,
    pub(crate) flow: Flow,
    pub(crate) audience: Option<&'a str>,
    pub(crate) scope: Option<&'a str>,
    pub(crate) user: Option<&'a User>,
    pub(crate) consents: &'a [ConsentRecord],
    pub(crate) prompt: Prompt,
    pub(crate) original_scope: Option<&'a str>,
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
            prompt: Prompt::Default,
            original_scope: None,
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
    pub fn audience(mut self, audience: &'a str) -> Self {
        self.audience = Some(audience);
        self
    }

    /// The raw `scope` parameter, as received.
    #[must_use]
    pub fn scope(mut self, scope: &'a str) -> Self {
        self.scope = Some(scope);
        self
    }

    /// The authenticated user (user flows only).
    #[must_use]
    pub fn user(mut self, user: &'a User) -> Self {
        self.user = Some(user);
        self
    }

    /// The consent records the host stored for this user (others are ignored).
    #[must_use]
    pub fn consents(mut self, consents: &'a [ConsentRecord]) -> Self {
        self.consents = consents;
        self
    }

    /// The `prompt` the client sent; [`Prompt::Consent`] asks again.
    #[must_use]
    pub fn prompt(mut self, prompt: Prompt) -> Self {
        self.prompt = prompt;
        self
    }

    /// For a refresh: the scope of the grant being refreshed.
    #[must_use]
    pub fn original_scope(mut self, original_scope: &'a str) -> Self {
        self.original_scope = Some(original_scope);
        self
    }

    /// The current time, in unix seconds; needed for consent with an expiry.
    #[must_use]
    pub fn now(mut self, now: u64) -> Self {
        self.now = Some(now);
        self
    }

    /// The client id.
    pub fn client_id(&self) -> &'a str {
        self.client_id
    }
}

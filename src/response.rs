//! What a host sends: an error as an OAuth error response, a grant as the
//! claims of an RFC 9068 access token.

use serde::Serialize;

use crate::error::{ErrorCode, GrantError};
use crate::grant::Grant;

/// An OAuth error response, ready to send (RFC 6749 §4.1.2.1, §5.2).
///
/// Made from any [`GrantError`] with [`GrantError::response`]. Its JSON form
/// is the token endpoint's body, `{"error":…,"error_description":…}`; the
/// same pairs go into the query of a redirect to the client when
/// [`redirectable`](Self::redirectable) says so. The description is fixed
/// text, safe for the wire: it never echoes the request.
///
/// ```
/// use scope_policy::{GrantError, Policy, Request};
/// let policy = Policy::from_json(r#"{ "apis": [{ "audience": "https://a.example" }] }"#)?;
/// let error = policy.grant(&Request::new("ghost")).unwrap_err();
/// let response = error.response();
/// assert_eq!(response.status(), 401);
/// assert!(!response.redirectable(), "an unknown client is never redirected to");
/// assert_eq!(
///     serde_json::to_string(&response)?,
///     r#"{"error":"invalid_client","error_description":"The client is not registered"}"#
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct ErrorResponse {
    error: ErrorCode,
    error_description: &'static str,
    #[serde(skip)]
    redirectable: bool,
}

impl ErrorResponse {
    /// The error code, such as `invalid_scope`.
    pub fn error(&self) -> ErrorCode {
        self.error
    }

    /// The `error_description`: printable ASCII without `"` or `\`, never an
    /// echo of the request.
    pub fn error_description(&self) -> &'static str {
        self.error_description
    }

    /// The HTTP status to answer a token request with (RFC 6749 §5.2): 401
    /// for `invalid_client`, 400 for the others (`access_denied` included, as
    /// RFC 8628 §3.5 answers it). At the authorization endpoint the answer is
    /// a redirect (or an error page) instead. With 401, RFC 6749 §5.2 also
    /// asks for a `WWW-Authenticate` header naming the scheme the client
    /// authenticated with (`Basic` for `client_secret_basic`); the host adds it.
    pub fn status(&self) -> u16 {
        match self.error {
            ErrorCode::InvalidClient => 401,
            ErrorCode::AccessDenied
            | ErrorCode::InvalidRequest
            | ErrorCode::UnauthorizedClient
            | ErrorCode::InvalidScope
            | ErrorCode::InvalidTarget
            | ErrorCode::ConsentRequired => 400,
        }
    }

    /// Whether an authorization request may report this error to the client
    /// through its redirect URI (RFC 6749 §4.1.2.1). Never for an unknown
    /// client: its redirect URI cannot be trusted, so the host shows the
    /// user an error page instead. Never for a prompt that changed before it
    /// was answered either: the host shows the new prompt.
    pub fn redirectable(&self) -> bool {
        self.redirectable
    }

    /// The `(name, value)` pairs to add to a redirect's query (RFC 6749
    /// §4.1.2.1); URL-encode them, and add the request's `state`.
    pub fn query_pairs(&self) -> [(&'static str, &'static str); 2] {
        [
            ("error", self.error.as_str()),
            ("error_description", self.error_description),
        ]
    }
}

impl GrantError {
    /// The OAuth error response for this error: its code, its safe
    /// description, the HTTP status and whether it may go to the redirect URI.
    pub fn response(&self) -> ErrorResponse {
        ErrorResponse {
            error: self.code(),
            error_description: self.error_description(),
            redirectable: !matches!(self, GrantError::UnknownClient { .. } | GrantError::PromptChanged),
        }
    }
}

/// The claims of an access token that the decision determines (RFC 9068
/// §2.2): `aud`, `sub`, `client_id` and `scope`, and, when asked for,
/// Auth0's RBAC `permissions`. The host adds `iss`, `exp`, `iat`, `jti`
/// (and `auth_time`, `acr`, … as it sees fit), for example with
/// `#[serde(flatten)]` in a struct of its own, then signs the whole with the
/// JWT crate of its choice.
///
/// A grant with no audience holds OIDC scopes only: its token is for the
/// authorization server's own userinfo endpoint, not for an API. `aud` is
/// then absent from these claims; RFC 9068 requires one, so set it to your
/// userinfo endpoint's URL, or issue an opaque token instead of a JWT.
///
/// ```
/// use scope_policy::{Decision, Policy, Request, User};
/// let policy = Policy::from_json(r#"{
///   "apis": [{ "audience": "https://notes.example.com", "rbac": true,
///              "scopes": [ { "name": "read:notes" }, { "name": "write:notes" } ] }],
///   "roles": [{ "name": "editor", "permissions": [ { "audience": "https://notes.example.com", "scope": "*" } ] }],
///   "clients": [{ "client_id": "notes-web", "first_party": true, "kind": "regular_web" }]
/// }"#)?;
/// let alice = User::new("alice").with_role("editor");
/// let request = Request::new("notes-web").audience("https://notes.example.com").scope("read:notes").user(&alice);
/// let Decision::Granted(grant) = policy.grant(&request)? else { unreachable!() };
/// let claims = grant.claims("user-7f3a").with_permissions();
/// assert_eq!(
///     serde_json::to_string(&claims)?,
///     r#"{"aud":"https://notes.example.com","sub":"user-7f3a","client_id":"notes-web","scope":"read:notes","permissions":["read:notes","write:notes"]}"#
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccessTokenClaims<'c, 'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<&'a str>,
    sub: &'c str,
    client_id: &'a str,
    scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    permissions: Option<Vec<&'a str>>,
    #[serde(skip)]
    grant: &'c Grant<'a>,
}

impl<'c, 'a> AccessTokenClaims<'c, 'a> {
    /// Adds Auth0's `permissions` claim ([`Grant::permissions`]): on an API
    /// with RBAC, what the user may do there that this client may use.
    #[must_use]
    pub fn with_permissions(mut self) -> Self {
        self.permissions = Some(self.grant.permissions());
        self
    }

    /// `aud`: the grant's audience (none for a grant of OIDC scopes only).
    pub fn aud(&self) -> Option<&'a str> {
        self.aud
    }

    /// `sub`: the subject the host named.
    pub fn sub(&self) -> &'c str {
        self.sub
    }

    /// `client_id`: the client the token is issued to.
    pub fn client_id(&self) -> &'a str {
        self.client_id
    }

    /// `scope`: the granted scopes, space-separated.
    pub fn scope(&self) -> &str {
        &self.scope
    }

    /// `permissions`, when asked for.
    pub fn permissions(&self) -> Option<&[&'a str]> {
        self.permissions.as_deref()
    }
}

impl<'a> Grant<'a> {
    /// The access token claims this grant determines, for the subject
    /// `sub`: the user's id as the token should carry it (RFC 9068 §2.2: for
    /// client credentials, the client's id; use [`Grant::subject`] for the
    /// crate's default). See [`AccessTokenClaims`].
    pub fn claims<'c>(&'c self, sub: &'c str) -> AccessTokenClaims<'c, 'a> {
        AccessTokenClaims {
            aud: self.audience(),
            sub,
            client_id: self.client_id(),
            scope: self.scope_string(),
            permissions: None,
            grant: self,
        }
    }
}

//! The OAuth plumbing around the crate's decision: parameters, error
//! responses, redirects, random values and digests.

use std::collections::BTreeMap;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use scope_policy::{ErrorResponse, GrantError};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// The parameters of a query or a form body (`application/x-www-form-urlencoded`).
#[derive(Debug, Default)]
pub struct Params {
    values: BTreeMap<String, Vec<String>>,
}

impl Params {
    pub fn parse(bytes: &[u8]) -> Self {
        let mut values: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (name, value) in form_urlencoded::parse(bytes) {
            values
                .entry(name.into_owned())
                .or_default()
                .push(value.into_owned());
        }
        Params { values }
    }

    /// A single-valued parameter. Empty counts as absent (RFC 6749 §3.1).
    ///
    /// # Errors
    ///
    /// `invalid_request` when the parameter is repeated (RFC 6749 §3.1).
    pub fn get(&self, name: &str) -> Result<Option<&str>, OAuthError> {
        match self.values.get(name).map(Vec::as_slice) {
            None | Some([]) => Ok(None),
            Some([value]) => Ok(Some(value.as_str()).filter(|value| !value.is_empty())),
            Some(_) => Err(OAuthError::invalid_request("A parameter is repeated")),
        }
    }

    /// Every value of a parameter that may repeat (the consent form's `scope`).
    pub fn all(&self, name: &str) -> &[String] {
        self.values.get(name).map_or(&[], Vec::as_slice)
    }

    /// The audience: `audience` (Auth0's name) or `resource` (RFC 8707), not both.
    pub fn audience(&self) -> Result<Option<&str>, OAuthError> {
        match (self.get("audience")?, self.get("resource")?) {
            (Some(_), Some(_)) => Err(OAuthError::invalid_request("Send audience or resource, not both")),
            (audience, resource) => Ok(audience.or(resource)),
        }
    }
}

/// An OAuth error response: the crate's for a refused decision, or one of
/// the host's own (`invalid_grant`, `authorization_pending`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct OAuthError {
    pub error: &'static str,
    pub error_description: &'static str,
    #[serde(skip)]
    pub status: u16,
    /// Whether an authorization request may report it through the redirect URI.
    #[serde(skip)]
    pub redirectable: bool,
    /// Whether to answer `WWW-Authenticate: Basic` (RFC 6749 §5.2, `invalid_client`).
    #[serde(skip)]
    pub basic_challenge: bool,
}

impl From<ErrorResponse> for OAuthError {
    fn from(response: ErrorResponse) -> Self {
        OAuthError {
            error: response.error().as_str(),
            error_description: response.error_description(),
            status: response.status(),
            redirectable: response.redirectable(),
            basic_challenge: false,
        }
    }
}

impl From<&GrantError> for OAuthError {
    fn from(error: &GrantError) -> Self {
        error.response().into()
    }
}

// CRATE: the crate's `ErrorCode` covers the decision's refusals only; the
// codes of the host's own checks (RFC 6749 §4.1.2.1, §5.2; RFC 8628 §3.5)
// and their statuses are written here by hand.
impl OAuthError {
    const fn new(error: &'static str, error_description: &'static str, status: u16) -> Self {
        OAuthError {
            error,
            error_description,
            status,
            redirectable: true,
            basic_challenge: false,
        }
    }

    pub const fn invalid_request(description: &'static str) -> Self {
        OAuthError::new("invalid_request", description, 400)
    }

    pub const fn invalid_client(description: &'static str) -> Self {
        OAuthError::new("invalid_client", description, 401)
    }

    pub const fn invalid_grant(description: &'static str) -> Self {
        OAuthError::new("invalid_grant", description, 400)
    }

    pub const fn unsupported_grant_type() -> Self {
        OAuthError::new("unsupported_grant_type", "The grant type is not supported", 400)
    }

    pub const fn unsupported_response_type() -> Self {
        OAuthError::new(
            "unsupported_response_type",
            "Only response_type=code is supported",
            400,
        )
    }

    pub const fn server_error() -> Self {
        OAuthError::new("server_error", "The server could not complete the request", 500)
    }

    pub const fn authorization_pending() -> Self {
        OAuthError::new("authorization_pending", "The user has not answered yet", 400)
    }

    pub const fn slow_down() -> Self {
        OAuthError::new("slow_down", "Poll less often", 400)
    }

    pub const fn expired_token() -> Self {
        OAuthError::new("expired_token", "The device code has expired", 400)
    }

    /// RFC 8628 §3.5: the user denied the device's request.
    pub const fn device_denied() -> Self {
        OAuthError::new("access_denied", "The user denied the request", 400)
    }

    /// `invalid_scope` for a grant of nothing: every asked scope was refused.
    // CRATE: the crate grants nothing without an error ("the host decides
    // whether to issue an empty token"); this server refuses such a grant,
    // with its own code and text.
    pub const fn nothing_granted() -> Self {
        OAuthError::new(
            "invalid_scope",
            "None of the requested scopes can be granted",
            400,
        )
    }

    pub fn with_basic_challenge(mut self, basic: bool) -> Self {
        self.basic_challenge = basic;
        self
    }

    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST)
    }

    /// The query pairs of a redirect to the client (RFC 6749 §4.1.2.1).
    pub fn query_pairs(&self) -> [(&'static str, &'static str); 2] {
        [
            ("error", self.error),
            ("error_description", self.error_description),
        ]
    }
}

/// As a token endpoint answers (RFC 6749 §5.2): JSON, no caching.
impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let mut response = (self.status_code(), no_store(), Json(self)).into_response();
        if self.basic_challenge {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"Basic realm="token""#),
            );
        }
        response
    }
}

/// `Cache-Control: no-store` and `Pragma: no-cache` (RFC 6749 §5.1).
pub fn no_store() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    headers
}

/// `uri` with `pairs` added to its query, for a redirect to the client.
pub fn redirect_uri_with<'p>(uri: &str, pairs: impl IntoIterator<Item = (&'p str, &'p str)>) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        query.append_pair(name, value);
    }
    let query = query.finish();
    // The URI is a registered one (RFC 6749 §3.1.2: no fragment); it may have a query.
    let separator = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{separator}{query}")
}

/// A 302 to `location`.
pub fn found(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(location) => (StatusCode::FOUND, [(header::LOCATION, location)]).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// 32 random bytes, base64url: codes, tokens, session ids.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    // The operating system's generator failing is not something to serve through.
    getrandom::fill(&mut bytes).unwrap_or_else(|error| panic!("no randomness: {error}"));
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A user code (RFC 8628 §6.1): 8 letters without vowels, shown as `XXXX-XXXX`.
pub fn random_user_code() -> String {
    const LETTERS: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).unwrap_or_else(|error| panic!("no randomness: {error}"));
    // 256 is not a multiple of 20: reject the top 16 values to stay uniform.
    let mut code = String::with_capacity(9);
    let mut more = [0u8; 1];
    for (at, mut byte) in bytes.into_iter().enumerate() {
        while byte >= 240 {
            getrandom::fill(&mut more).unwrap_or_else(|error| panic!("no randomness: {error}"));
            byte = more[0];
        }
        if at == 4 {
            code.push('-');
        }
        code.push(char::from(LETTERS[usize::from(byte % 20)]));
    }
    code
}

/// The user code as typed, normalised: letters uppercased, dashes and spaces dropped.
pub fn normalise_user_code(typed: &str) -> String {
    let letters: String = typed
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    match letters.len() {
        8 => format!("{}-{}", &letters[..4], &letters[4..]),
        _ => letters,
    }
}

/// SHA-256 of a secret or a token: what the store keeps instead of the value.
pub fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// The digest as base64url text, a store key.
pub fn digest_key(secret: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest(secret))
}

/// Compares two digests without stopping at the first difference.
pub fn same_digest(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

/// RFC 7636 §4.6: `BASE64URL(SHA256(code_verifier)) == code_challenge`.
pub fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    let valid = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    valid
        && same_digest(
            &digest(&URL_SAFE_NO_PAD.encode(digest(verifier))),
            &digest(challenge),
        )
}

/// The current time in unix seconds, from the system clock.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

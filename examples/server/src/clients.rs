//! What the host reads from a client's `metadata`, which the crate carries
//! and never interprets: the registered redirect URIs and the secret.

use axum::http::{header, HeaderMap};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use percent_encoding::percent_decode_str;
use scope_policy::{Client, Policy};

use crate::oauth::{digest, same_digest, OAuthError, Params};

/// The metadata key of the registered redirect URIs, space-separated.
pub const REDIRECT_URIS: &str = "redirect_uris";
/// The metadata key of the SHA-256 (hex) of the client's secret.
pub const SECRET_SHA256: &str = "client_secret_sha256";

/// The redirect URI to use for an authorization request: the requested one
/// if it is registered (exact match, RFC 6749 §3.1.2.3), or the only one
/// registered when none is requested.
///
/// # Errors
///
/// A text for the error page: an unregistered URI is never redirected to.
// CRATE: reading `redirect_uris` out of the metadata and matching them
// exactly is written by hand; every host needs it (SECURITY.md makes it the
// host's duty, and an unverifiable redirect changes the decision).
pub fn redirect_uri<'c>(client: &'c Client, requested: Option<&str>) -> Result<&'c str, &'static str> {
    let registered = client.metadata().get(REDIRECT_URIS).unwrap_or_default();
    let mut registered = registered.split_ascii_whitespace();
    match requested {
        Some(uri) => registered
            .find(|candidate| *candidate == uri)
            .ok_or("The redirect_uri is not registered for this client"),
        None => match (registered.next(), registered.next()) {
            (Some(only), None) => Ok(only),
            (None, _) => Err("The client has no registered redirect URI"),
            (Some(_), Some(_)) => Err("The request must name one of the client's redirect URIs"),
        },
    }
}

/// The digest of the client's secret, if it has one: a confidential client.
// CRATE: as for redirect URIs, the secret's place in the metadata and its
// format are this server's convention, written by hand.
pub fn secret_digest(client: &Client) -> Option<[u8; 32]> {
    let hex = client.metadata().get(SECRET_SHA256)?;
    let mut digest = [0u8; 32];
    if hex.len() != 64 || !hex.is_ascii() {
        return None;
    }
    for (at, byte) in digest.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * at..2 * at + 2)?, 16).ok()?;
    }
    Some(digest)
}

/// A client that authenticated at the token endpoint.
#[derive(Debug, Clone, Copy)]
pub struct Authenticated<'p> {
    pub client: &'p Client,
    /// Whether it proved a secret (a public client only names itself).
    pub confidential: bool,
}

/// Client authentication (RFC 6749 §2.3.1): HTTP Basic, or `client_id` and
/// `client_secret` in the form; a public client (no secret registered)
/// sends only `client_id`.
///
/// # Errors
///
/// `invalid_client` (401) for an unknown client, a wrong, missing or
/// unexpected secret; `invalid_request` for two methods at once.
pub fn authenticate<'p>(
    policy: &'p Policy,
    headers: &HeaderMap,
    params: &Params,
) -> Result<Authenticated<'p>, OAuthError> {
    let basic = basic_credentials(headers)?;
    let challenge = basic.is_some();
    let failed = |description| OAuthError::invalid_client(description).with_basic_challenge(challenge);
    let (client_id, secret) = match (basic, params.get("client_id")?, params.get("client_secret")?) {
        (Some(_), _, Some(_)) => {
            return Err(OAuthError::invalid_request(
                "Use one client authentication method",
            ));
        }
        (Some((id, _)), Some(form_id), None) if id != form_id => {
            return Err(failed("Client authentication failed"));
        }
        (Some((id, secret)), _, None) => (id, Some(secret)),
        (None, Some(id), secret) => (id.to_owned(), secret.map(str::to_owned)),
        (None, None, _) => return Err(failed("Client authentication failed")),
    };
    let client = policy
        .client(&client_id)
        .ok_or_else(|| failed("Client authentication failed"))?;
    match (secret_digest(client), secret) {
        (Some(expected), Some(given)) if same_digest(&expected, &digest(&given)) => Ok(Authenticated {
            client,
            confidential: true,
        }),
        (None, None) => Ok(Authenticated {
            client,
            confidential: false,
        }),
        _ => Err(failed("Client authentication failed")),
    }
}

/// `Authorization: Basic` credentials, form-decoded (RFC 6749 §2.3.1).
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, OAuthError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let bad = || OAuthError::invalid_client("Client authentication failed").with_basic_challenge(true);
    let value = value.to_str().map_err(|_| bad())?;
    let Some(encoded) = value.strip_prefix("Basic ") else {
        return Err(bad());
    };
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| bad())?;
    let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(bad)?;
    let unescape = |part: &str| {
        percent_decode_str(&part.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    Ok(Some((unescape(id), unescape(secret))))
}

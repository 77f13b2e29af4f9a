//! What clients and APIs read about the server: its keys, its metadata
//! (OpenID Connect Discovery), and the userinfo endpoint.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::state::SharedState;

/// The JWK Set that verifies the server's tokens (RFC 7517).
pub async fn jwks(State(state): State<SharedState>) -> Json<Value> {
    Json(state.signer.jwks())
}

/// OpenID Connect Discovery 1.0 §3 / RFC 8414.
pub async fn openid_configuration(State(state): State<SharedState>) -> Json<Value> {
    let issuer = &state.config.issuer;
    Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "device_authorization_endpoint": format!("{issuer}/device/authorize"),
        "userinfo_endpoint": format!("{issuer}/userinfo"),
        "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials",
                                  "urn:ietf:params:oauth:grant-type:device_code"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "code_challenge_methods_supported": ["S256"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["EdDSA"],
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
    }))
}

/// The userinfo endpoint (OpenID Connect Core §5.3), for a token whose
/// grant had no audience (OIDC scopes only): it answers `sub`.
pub async fn userinfo(State(state): State<SharedState>, headers: HeaderMap) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    let audience = format!("{}/userinfo", state.config.issuer);
    match token.and_then(|token| state.signer.verify(token, &state.config.issuer, &audience)) {
        Some(claims)
            if claims
                .get("scope")
                .and_then(Value::as_str)
                .is_some_and(|scope| scope.split(' ').any(|s| s == "openid")) =>
        {
            Json(json!({ "sub": claims.get("sub") })).into_response()
        }
        _ => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, r#"Bearer error="invalid_token""#)],
        )
            .into_response(),
    }
}

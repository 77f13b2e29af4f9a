//! `POST /admin/reload`: reloads the policy and users files (as SIGHUP does).

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::oauth::{digest, same_digest};
use crate::state::{self, SharedState};

/// With `Authorization: Bearer <admin token>`: 200 and what was loaded, or
/// 422 and every problem with its file and path (the running policy stays).
pub async fn reload(State(state): State<SharedState>, headers: HeaderMap) -> Response {
    let Some(expected) = state.config.admin_token else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    if !presented.is_some_and(|token| same_digest(&expected, &digest(token))) {
        return (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Bearer")]).into_response();
    }
    match state::reload(&state, "admin").await {
        Ok(summary) => (
            StatusCode::OK,
            Json(json!({ "reloaded": true, "loaded": summary })),
        )
            .into_response(),
        Err(problems) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({ "reloaded": false, "problems": problems })),
        )
            .into_response(),
    }
}

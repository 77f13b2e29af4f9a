//! The HTTP endpoints. Each handler reads the request, builds the crate's
//! request, calls `Policy::grant`, and renders what comes back; the rules
//! stay in the crate.

mod admin;
mod authorize;
mod consent;
mod device;
mod discovery;
mod outcome;
mod token;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::html;
use crate::oauth::{random_token, OAuthError};
use crate::state::SharedState;

/// Every route of the server.
pub fn router(state: SharedState) -> Router {
    Router::new()
        .route("/authorize", get(authorize::authorize))
        .route("/consent", post(consent::consent))
        .route("/token", post(token::token))
        .route("/device/authorize", post(device::device_authorization))
        .route("/device", get(device::verification_page).post(device::verify))
        .route("/admin/reload", post(admin::reload))
        .route("/.well-known/jwks.json", get(discovery::jwks))
        .route(
            "/.well-known/openid-configuration",
            get(discovery::openid_configuration),
        )
        .route("/userinfo", get(discovery::userinfo))
        .with_state(state)
}

/// The cookie that ties a consent form to the browser that was shown it.
const SESSION_COOKIE: &str = "sp_session";

/// The browser's session: the id from its cookie, or a new one to set.
#[derive(Debug, Clone)]
pub struct Session {
    pub id: String,
    pub new: bool,
}

impl Session {
    pub fn of(headers: &HeaderMap) -> Self {
        let existing = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, value)| *name == SESSION_COOKIE && !value.is_empty())
            .map(|(_, value)| value.to_owned());
        match existing {
            Some(id) => Session { id, new: false },
            None => Session {
                id: random_token(),
                new: true,
            },
        }
    }

    /// Sets the cookie on `response` when the session is new. `HttpOnly`
    /// and `SameSite=Lax`; behind TLS, add `Secure` and the `__Host-` prefix.
    pub fn set_on(&self, mut response: Response) -> Response {
        if self.new {
            let cookie = format!("{SESSION_COOKIE}={}; Path=/; HttpOnly; SameSite=Lax", self.id);
            if let Ok(cookie) = HeaderValue::from_str(&cookie) {
                response.headers_mut().append(header::SET_COOKIE, cookie);
            }
        }
        response
    }
}

/// An HTML page with a status.
pub fn page(status: StatusCode, body: String) -> Response {
    (status, Html(body)).into_response()
}

/// An error page for the user (never a redirect to the client).
pub fn error_page(error: &OAuthError) -> Response {
    page(
        error.status_code(),
        html::error(error.error, error.error_description),
    )
}

/// A failure of the server itself: logged, answered as `server_error`.
pub fn internal(error: impl std::fmt::Display) -> OAuthError {
    tracing::error!(%error, "internal error");
    OAuthError::server_error()
}

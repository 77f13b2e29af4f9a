//! The device authorization grant (RFC 8628): `POST /device/authorize`
//! gives the device its codes; `GET /device` and `POST /device` are the
//! verification page where the user enters the code and answers.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use scope_policy::{Flow, RequestParams, User};
use serde::Serialize;

use crate::audit;
use crate::clients;
use crate::html;
use crate::oauth::{
    digest_key, no_store, normalise_user_code, now, random_token, random_user_code, OAuthError, Params,
};
use crate::routes::outcome::Interaction;
use crate::routes::{error_page, internal, page, Session};
use crate::state::{AppState, SharedState};
use crate::store::{DeviceRow, DeviceStatus, Pending};

/// The device authorization response (RFC 8628 §3.2).
#[derive(Serialize)]
struct DeviceAuthorization {
    device_code: String,
    user_code: String,
    verification_uri: String,
    verification_uri_complete: String,
    expires_in: u64,
    interval: u64,
}

/// `POST /device/authorize` (RFC 8628 §3.1).
pub async fn device_authorization(
    State(state): State<SharedState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = Params::parse(&body);
    match authorize_device(&state, &headers, &form).await {
        Ok(response) => (StatusCode::OK, no_store(), Json(response)).into_response(),
        Err(error) => error.into_response(),
    }
}

async fn authorize_device(
    state: &AppState,
    headers: &HeaderMap,
    form: &Params,
) -> Result<DeviceAuthorization, OAuthError> {
    let loaded = state.loaded.load_full();
    let client = clients::authenticate(&loaded.policy, headers, form)?;
    let mut params = RequestParams::new(client.client.client_id()).flow(Flow::DeviceCode);
    params.scope = form.get("scope")?.map(str::to_owned);
    params.audience = form.audience()?.map(str::to_owned);

    // CRATE: RFC 8628 §3.2 answers a bad client, scope or audience now,
    // before anyone signs in; the crate decides only with a user. So the
    // request-level checks run here on a stand-in user, and only a refusal
    // counts: the real decision comes on the verification page.
    let nobody = User::new("");
    if let Err(error) = loaded.policy.grant(&params.request().user(&nobody)) {
        return Err(OAuthError::from(&error));
    }

    let device_code = random_token();
    let user_code = random_user_code();
    let config = &state.config;
    state
        .store
        .put_device(DeviceRow {
            key: digest_key(&device_code),
            user_code: user_code.clone(),
            client_id: params.client_id.clone(),
            params,
            status: DeviceStatus::Pending,
            issuance: None,
            interval: config.device_poll_interval,
            last_poll: None,
            expires_at: now() + config.device_code_ttl,
        })
        .await
        .map_err(internal)?;
    let verification_uri = format!("{}/device", config.issuer);
    Ok(DeviceAuthorization {
        verification_uri_complete: format!("{verification_uri}?user_code={user_code}"),
        verification_uri,
        device_code,
        user_code,
        expires_in: config.device_code_ttl,
        interval: config.device_poll_interval,
    })
}

/// `GET /device`: the page where the user types the code (prefilled from
/// `verification_uri_complete`).
pub async fn verification_page(State(state): State<SharedState>, RawQuery(query): RawQuery) -> Response {
    let params = Params::parse(query.unwrap_or_default().as_bytes());
    let loaded = state.loaded.load_full();
    let users: Vec<&str> = loaded.users.ids().collect();
    let user_code = params.get("user_code").ok().flatten();
    page(StatusCode::OK, html::device(user_code, &users, None))
}

/// `POST /device`: the user entered the code (and, in this stand-in, who
/// they are); the crate decides, and the device flow always prompts.
pub async fn verify(State(state): State<SharedState>, headers: HeaderMap, body: Bytes) -> Response {
    let form = Params::parse(&body);
    let loaded = state.loaded.load_full();
    let users: Vec<&str> = loaded.users.ids().collect();
    let retry = |message: &str| page(StatusCode::BAD_REQUEST, html::device(None, &users, Some(message)));
    let (Ok(Some(typed)), Ok(Some(user_id))) = (form.get("user_code"), form.get("user")) else {
        return retry("Enter the code shown on your device.");
    };
    let Some(user) = loaded.users.get(user_id) else {
        return retry("Unknown user.");
    };
    let row = match state.store.device_by_user_code(&normalise_user_code(typed)).await {
        Ok(Some(row)) if row.status == DeviceStatus::Pending && row.expires_at > now() => row,
        Ok(_) => return retry("This code is not valid, or has expired. Check your device."),
        Err(error) => return error_page(&internal(error)),
    };
    let mut params = row.params;
    params.user = Some(user.clone());
    let records = match state.store.consents(&user.id, &params.client_id).await {
        Ok(records) => records,
        Err(error) => return error_page(&internal(error)),
    };
    let decision = loaded
        .policy
        .grant(&params.request().consents(&records).now(now()));
    audit::decision("device", &audit::Outcome(&decision));
    let interaction = Interaction {
        state: &state,
        loaded: &loaded,
        pending_id: None,
        pending: Pending {
            params: params.clone(),
            state: None,
            nonce: None,
            code_challenge: None,
            device: Some(row.key),
        },
        session: Session::of(&headers),
    };
    interaction.present(decision, None).await
}

//! `POST /token`: the token endpoint (RFC 6749 §3.2): codes, refresh tokens,
//! client credentials and device codes.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use scope_policy::{Decision, Flow, Request};

use crate::audit;
use crate::clients::{self, Authenticated};
use crate::loader::Loaded;
use crate::oauth::{digest_key, no_store, now, pkce_matches, random_token, OAuthError, Params};
use crate::routes::internal;
use crate::state::AppState;
use crate::state::SharedState;
use crate::store::DeviceStatus;
use crate::tokens::{Issuance, RefreshGrant, TokenResponse};

/// How long a refresh token lives, in seconds (30 days); rotated on every use.
const REFRESH_TTL: u64 = 30 * 24 * 3600;
/// RFC 8628 §3.5: each `slow_down` adds 5 seconds to the polling interval.
const SLOW_DOWN_STEP: u64 = 5;

pub async fn token(State(state): State<SharedState>, headers: HeaderMap, body: Bytes) -> Response {
    let form = Params::parse(&body);
    match token_response(&state, &headers, &form).await {
        Ok(response) => (StatusCode::OK, no_store(), Json(response)).into_response(),
        Err(error) => error.into_response(),
    }
}

async fn token_response(
    state: &AppState,
    headers: &HeaderMap,
    form: &Params,
) -> Result<TokenResponse, OAuthError> {
    let loaded = state.loaded.load_full();
    let grant_type = form
        .get("grant_type")?
        .ok_or(OAuthError::invalid_request("grant_type is missing"))?;
    let flow = Flow::from_grant_type(grant_type).map_err(|_| OAuthError::unsupported_grant_type())?;
    let client = clients::authenticate(&loaded.policy, headers, form)?;
    match flow {
        Flow::AuthorizationCode => exchange_code(state, client, form).await,
        Flow::RefreshToken => refresh(state, &loaded, client, form).await,
        Flow::ClientCredentials => client_credentials(state, &loaded, client, form),
        Flow::DeviceCode => device_code(state, client, form).await,
        _ => Err(OAuthError::unsupported_grant_type()),
    }
}

/// `authorization_code` (RFC 6749 §4.1.3): the decision was taken at
/// `/authorize` or `/consent`; the code carries it.
async fn exchange_code(
    state: &AppState,
    client: Authenticated<'_>,
    form: &Params,
) -> Result<TokenResponse, OAuthError> {
    let code = form
        .get("code")?
        .ok_or(OAuthError::invalid_request("code is missing"))?;
    let invalid = OAuthError::invalid_grant("The code is invalid, expired or already used");
    let row = state
        .store
        .take_code(&digest_key(code))
        .await
        .map_err(internal)?
        .ok_or(invalid)?;
    if row.expires_at <= now() || row.client_id != client.client.client_id() {
        return Err(invalid);
    }
    if form
        .get("redirect_uri")?
        .is_some_and(|uri| uri != row.redirect_uri)
    {
        return Err(OAuthError::invalid_grant(
            "The redirect_uri differs from the authorization request's",
        ));
    }
    if let Some(challenge) = &row.code_challenge {
        let verifier = form.get("code_verifier")?.unwrap_or_default();
        if !pkce_matches(verifier, challenge) {
            return Err(OAuthError::invalid_grant(
                "The code_verifier does not match the code_challenge",
            ));
        }
    }
    let (response, refresh) = sign(state, &row.issuance)?;
    store_refresh(state, refresh).await?;
    Ok(response)
}

/// `refresh_token` (RFC 6749 §6): decided again, on the current policy and
/// the current consent records, bound to the refreshed grant's scope and
/// audience as the store kept them. The token rotates.
async fn refresh(
    state: &AppState,
    loaded: &Loaded,
    client: Authenticated<'_>,
    form: &Params,
) -> Result<TokenResponse, OAuthError> {
    let token = form
        .get("refresh_token")?
        .ok_or(OAuthError::invalid_request("refresh_token is missing"))?;
    let key = digest_key(token);
    let invalid = OAuthError::invalid_grant("The refresh token is invalid, expired or revoked");
    let row = state
        .store
        .refresh(&key)
        .await
        .map_err(internal)?
        .ok_or(invalid)?;
    if row.expires_at <= now() || row.grant.client_id != client.client.client_id() {
        return Err(invalid);
    }
    let user = loaded.users.get(&row.grant.user_id).ok_or(invalid)?;
    let records = state
        .store
        .consents(&user.id, &row.grant.client_id)
        .await
        .map_err(internal)?;
    let request = Request::new(client.client.client_id())
        .flow(Flow::RefreshToken)
        .maybe_scope(form.get("scope")?)
        .maybe_audience(form.audience()?)
        .original_scope(&row.grant.original_scope)
        .maybe_original_audience(row.grant.original_audience.as_deref())
        .user(user)
        .consents(&records)
        .now(now());
    let decision = loaded.policy.grant(&request);
    audit::decision("token", &audit::Outcome(&decision));
    let grant = match decision {
        Ok(Decision::Granted(grant)) => grant,
        Ok(Decision::ConsentRequired(_)) => return Err(internal("a refresh asked for consent")),
        Err(error) => return Err(OAuthError::from(&error)),
    };
    if grant.is_empty() {
        return Err(OAuthError::nothing_granted());
    }
    let mut issuance = Issuance::of(&grant, None).map_err(internal)?;
    issuance.id_token = None;
    // The new refresh token refreshes the same original grant (RFC 6749 §6).
    issuance.refresh = grant.refresh_token().then(|| row.grant.clone());
    let (response, new) = sign(state, &issuance)?;
    let rotated = state
        .store
        .rotate_refresh(&key, new.map(|(key, grant)| (key, grant, now() + REFRESH_TTL)))
        .await
        .map_err(internal)?;
    if !rotated {
        return Err(invalid);
    }
    Ok(response)
}

/// `client_credentials` (RFC 6749 §4.4): a confidential client, for itself.
fn client_credentials(
    state: &AppState,
    loaded: &Loaded,
    client: Authenticated<'_>,
    form: &Params,
) -> Result<TokenResponse, OAuthError> {
    if !client.confidential {
        return Err(OAuthError::invalid_client(
            "Client credentials need a client secret",
        ));
    }
    let request = Request::new(client.client.client_id())
        .flow(Flow::ClientCredentials)
        .maybe_scope(form.get("scope")?)
        .maybe_audience(form.audience()?);
    let decision = loaded.policy.grant(&request);
    audit::decision("token", &audit::Outcome(&decision));
    let grant = match decision {
        Ok(Decision::Granted(grant)) => grant,
        Ok(Decision::ConsentRequired(_)) => return Err(internal("client credentials asked for consent")),
        Err(error) => return Err(OAuthError::from(&error)),
    };
    if grant.is_empty() {
        return Err(OAuthError::nothing_granted());
    }
    let issuance = Issuance::of(&grant, None).map_err(internal)?;
    Ok(sign(state, &issuance)?.0)
}

/// The device access token request (RFC 8628 §3.4, §3.5): polled until the
/// user answers on the verification page.
async fn device_code(
    state: &AppState,
    client: Authenticated<'_>,
    form: &Params,
) -> Result<TokenResponse, OAuthError> {
    let code = form
        .get("device_code")?
        .ok_or(OAuthError::invalid_request("device_code is missing"))?;
    let key = digest_key(code);
    let invalid = OAuthError::invalid_grant("The device code is invalid or already used");
    let row = state.store.device(&key).await.map_err(internal)?.ok_or(invalid)?;
    if row.client_id != client.client.client_id() {
        return Err(invalid);
    }
    let now = now();
    if row.expires_at <= now {
        state.store.delete_device(&key).await.map_err(internal)?;
        return Err(OAuthError::expired_token());
    }
    match row.status {
        DeviceStatus::Pending => {
            let too_soon = row
                .last_poll
                .is_some_and(|last| now < last.saturating_add(row.interval));
            let interval = row.interval + if too_soon { SLOW_DOWN_STEP } else { 0 };
            state
                .store
                .device_polled(&key, now, interval)
                .await
                .map_err(internal)?;
            Err(if too_soon {
                OAuthError::slow_down()
            } else {
                OAuthError::authorization_pending()
            })
        }
        DeviceStatus::Denied => {
            state.store.delete_device(&key).await.map_err(internal)?;
            Err(OAuthError::device_denied())
        }
        DeviceStatus::Approved => {
            let issuance = row
                .issuance
                .ok_or_else(|| internal("an approved device code without its grant"))?;
            if !state.store.delete_device(&key).await.map_err(internal)? {
                return Err(invalid);
            }
            let (response, refresh) = sign(state, &issuance)?;
            store_refresh(state, refresh).await?;
            Ok(response)
        }
    }
}

/// Signs the tokens of `issuance`: the access token, an ID token when
/// `openid` was granted, and a new refresh token (returned with what to
/// store under its digest).
fn sign(
    state: &AppState,
    issuance: &Issuance,
) -> Result<(TokenResponse, Option<(String, RefreshGrant)>), OAuthError> {
    let config = &state.config;
    let access_token = state
        .signer
        .access_token(&config.issuer, config.access_token_ttl, &issuance.claims)
        .map_err(internal)?;
    let id_token = issuance
        .id_token
        .as_ref()
        .map(|grant| {
            state
                .signer
                .id_token(&config.issuer, config.access_token_ttl, grant)
        })
        .transpose()
        .map_err(internal)?;
    let refresh = issuance.refresh.clone().map(|grant| (random_token(), grant));
    let response = TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: config.access_token_ttl,
        scope: issuance.scope_changed.then(|| issuance.scope.clone()),
        refresh_token: refresh.as_ref().map(|(token, _)| token.clone()),
        id_token,
    };
    Ok((
        response,
        refresh.map(|(token, grant)| (digest_key(&token), grant)),
    ))
}

async fn store_refresh(state: &AppState, refresh: Option<(String, RefreshGrant)>) -> Result<(), OAuthError> {
    if let Some((key, grant)) = refresh {
        state
            .store
            .put_refresh(&key, grant, now() + REFRESH_TTL)
            .await
            .map_err(internal)?;
    }
    Ok(())
}

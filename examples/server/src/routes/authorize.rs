//! `GET /authorize`: the authorization endpoint (RFC 6749 §4.1.1).

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use scope_policy::{Policy, RequestParams};

use crate::audit;
use crate::clients;
use crate::html;
use crate::oauth::{now, OAuthError, Params};
use crate::routes::outcome::Interaction;
use crate::routes::{error_page, internal, page, Session};
use crate::state::SharedState;
use crate::store::Pending;

/// Decides an authorization request: a redirect with a code (nobody needs
/// to be asked), a consent page, or an error (to the redirect URI, or on a
/// page for an unknown client or an unregistered redirect URI).
pub async fn authorize(
    State(state): State<SharedState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query.unwrap_or_default();
    let params = Params::parse(query.as_bytes());
    let loaded = state.loaded.load_full();
    let policy = &loaded.policy;

    let single = |name| params.get(name);
    let (client_id, requested_redirect) = match (single("client_id"), single("redirect_uri")) {
        (Ok(Some(client_id)), Ok(redirect_uri)) => (client_id, redirect_uri),
        _ => return error_page(&OAuthError::invalid_request("client_id is missing or repeated")),
    };
    // The redirect URI must be registered before anything is sent there
    // (RFC 6749 §4.1.2.1). An unknown client has none: the crate refuses it
    // below, and its error is never redirectable.
    let redirect_uri = match policy.client(client_id) {
        Some(client) => match clients::redirect_uri(client, requested_redirect) {
            Ok(uri) => Some(uri.to_owned()),
            Err(description) => return error_page(&OAuthError::invalid_request(description)),
        },
        None => None,
    };
    let mut pending = Pending {
        params: RequestParams::new(client_id),
        state: single("state").ok().flatten().map(str::to_owned),
        nonce: None,
        code_challenge: None,
        device: None,
    };
    pending.params.redirect_uri = redirect_uri;
    let interaction = |pending| Interaction {
        state: &state,
        loaded: &loaded,
        pending_id: None,
        pending,
        session: Session::of(&headers),
    };

    // The protocol's own checks, before the decision.
    let protocol = match Protocol::read(&params, policy, client_id) {
        Ok(protocol) => protocol,
        Err(error) if redirect_uri_known(&pending) => return interaction(pending).refuse(error).await,
        Err(error) => return error_page(&error),
    };
    pending.nonce = protocol.nonce.map(str::to_owned);
    pending.code_challenge = protocol.challenge.map(str::to_owned);
    pending.params.audience = protocol.audience.map(str::to_owned);
    pending.params.scope = protocol.scope.map(str::to_owned);
    pending.params.prompt = protocol.prompt.map(str::to_owned);

    // The login stand-in: the user names themself (README.md). A real server
    // authenticates the user here, and handles prompt=login and select_account.
    if policy.client(client_id).is_some() {
        match protocol.user.map(|id| loaded.users.get(id)) {
            None => {
                let pairs: Vec<(String, String)> =
                    form_urlencoded::parse(query.as_bytes()).into_owned().collect();
                let users: Vec<&str> = loaded.users.ids().collect();
                return page(StatusCode::OK, html::sign_in(&pairs, &users));
            }
            Some(None) => return error_page(&OAuthError::invalid_request("Unknown user")),
            Some(Some(user)) => pending.params.user = Some(user.clone()),
        }
    }

    let records = match &pending.params.user {
        Some(user) => match state.store.consents(&user.id, client_id).await {
            Ok(records) => records,
            Err(error) => return error_page(&internal(error)),
        },
        None => Vec::new(),
    };
    let params = pending.params.clone();
    let decision = policy.grant(&params.request().consents(&records).now(now()));
    audit::decision("authorize", &audit::Outcome(&decision));
    interaction(pending).present(decision, None).await
}

/// The protocol parameters of an authorization request.
struct Protocol<'q> {
    scope: Option<&'q str>,
    audience: Option<&'q str>,
    prompt: Option<&'q str>,
    nonce: Option<&'q str>,
    challenge: Option<&'q str>,
    user: Option<&'q str>,
}

impl<'q> Protocol<'q> {
    fn read(params: &'q Params, policy: &Policy, client_id: &str) -> Result<Self, OAuthError> {
        let single = |name| params.get(name);
        if single("response_type")? != Some("code") {
            return Err(OAuthError::unsupported_response_type());
        }
        let challenge = match (single("code_challenge")?, single("code_challenge_method")?) {
            (Some(challenge), Some("S256")) => Some(challenge),
            (Some(_), _) => {
                return Err(OAuthError::invalid_request(
                    "Only code_challenge_method=S256 is supported",
                ))
            }
            (None, _) => None,
        };
        let public = policy
            .client(client_id)
            .is_some_and(|client| clients::secret_digest(client).is_none());
        if public && challenge.is_none() {
            // RFC 9700 §2.1.1: a public client proves the code is its own with PKCE.
            return Err(OAuthError::invalid_request(
                "A public client must send a PKCE code_challenge",
            ));
        }
        Ok(Protocol {
            scope: single("scope")?,
            audience: params.audience()?,
            prompt: single("prompt")?,
            nonce: single("nonce")?,
            challenge,
            user: single("user")?,
        })
    }
}

fn redirect_uri_known(pending: &Pending) -> bool {
    pending.params.redirect_uri.is_some()
}

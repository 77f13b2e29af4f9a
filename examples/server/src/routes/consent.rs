//! `POST /consent`: the user's answer to a consent page.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use scope_policy::{Decision, Grant, GrantError};

use crate::audit;
use crate::oauth::{now, OAuthError, Params};
use crate::routes::outcome::Interaction;
use crate::routes::{error_page, internal, Session};
use crate::state::SharedState;

/// Reads the stored request and the prompt identity the form carried,
/// decides again on the records held now, and answers the prompt with the
/// crate's owned round trip (`Decision::answer`). A prompt that changed
/// since it was shown is shown again, new; nothing the user did not see is
/// granted.
pub async fn consent(State(state): State<SharedState>, headers: HeaderMap, body: Bytes) -> Response {
    let form = Params::parse(&body);
    let (Ok(Some(pending_id)), Ok(Some(shown)), Ok(action)) =
        (form.get("pending"), form.get("prompt_id"), form.get("action"))
    else {
        return error_page(&OAuthError::invalid_request("The consent form is incomplete"));
    };
    let row = match state.store.pending(pending_id).await {
        Ok(Some(row)) if row.expires_at > now() => row,
        Ok(_) => {
            return error_page(&OAuthError::invalid_request(
                "This consent form has expired or was already answered",
            ))
        }
        Err(error) => return error_page(&internal(error)),
    };
    // The form must come from the browser it was shown to (CSRF; README.md).
    let session = Session::of(&headers);
    if session.new || session.id != row.session {
        let mut refused = OAuthError::invalid_request("This consent form belongs to another browser session");
        refused.status = StatusCode::FORBIDDEN.as_u16();
        return error_page(&refused);
    }

    let loaded = state.loaded.load_full();
    let params = row.pending.params.clone();
    let user_id = params
        .user
        .as_ref()
        .map(|user| user.id.clone())
        .unwrap_or_default();
    let records = match state.store.consents(&user_id, &params.client_id).await {
        Ok(records) => records,
        Err(error) => return error_page(&internal(error)),
    };
    let request = params.request().consents(&records).now(now());
    let decision = loaded.policy.grant(&request);
    let answer = match action {
        Some("deny") => deny(decision),
        _ => decision.and_then(|decision| decision.answer(shown, form.all("scope"))),
    };
    audit::decision("consent", &audit::Outcome(&answer));
    let interaction = Interaction {
        state: &state,
        loaded: &loaded,
        pending_id: Some(pending_id.to_owned()),
        pending: row.pending,
        session,
    };
    match answer {
        Ok(grant) => interaction.present(Ok(Decision::Granted(grant)), None).await,
        Err(GrantError::PromptChanged) => {
            // Show the decision as it stands now, with its new identity.
            let decision = loaded.policy.grant(&request);
            audit::decision("consent", &audit::Outcome(&decision));
            let notice = "This request changed since you saw it: please review it again.";
            interaction.present(decision, Some(notice)).await
        }
        Err(error) => interaction.refuse(OAuthError::from(&error)).await,
    }
}

/// The user refused. A refusal grants nothing, so it stands whatever the
/// prompt has become; a request the crate now refuses is refused as such.
fn deny(decision: Result<Decision<'_>, GrantError>) -> Result<Grant<'_>, GrantError> {
    Err(decision?.deny())
}

//! Acting on an interactive decision (`/authorize`, `/consent`, `/device`):
//! issue a code or approve the device, show the consent prompt, or refuse.

use axum::http::StatusCode;
use axum::response::Response;
use scope_policy::{redirect_host, ConsentPrompt, Decision, Grant, GrantError};

use crate::html::{self, ConsentView};
use crate::loader::Loaded;
use crate::oauth::{digest_key, found, now, random_token, redirect_uri_with, OAuthError};
use crate::routes::{error_page, internal, page, Session};
use crate::state::AppState;
use crate::store::{CodeRow, Completion, Pending, PendingRow};
use crate::tokens::Issuance;

/// How long a consent page may wait for its answer, in seconds.
const PENDING_TTL: u64 = 600;
/// How long an authorization code lives, in seconds (RFC 6749 §4.1.2: short).
const CODE_TTL: u64 = 120;

/// The interactive request being answered: the crate's parameters and the
/// protocol's, and the pending prompt's id when it has one already.
pub struct Interaction<'s> {
    pub state: &'s AppState,
    pub loaded: &'s Loaded,
    pub pending_id: Option<String>,
    pub pending: Pending,
    pub session: Session,
}

impl Interaction<'_> {
    /// Acts on the crate's decision. `notice` is shown above a prompt.
    pub async fn present(
        self,
        decision: Result<Decision<'_>, GrantError>,
        notice: Option<&'static str>,
    ) -> Response {
        match decision {
            Ok(Decision::Granted(grant)) => self.finish(grant).await,
            Ok(Decision::ConsentRequired(prompt)) => {
                let view = self.view(&prompt, notice);
                self.ask(view).await
            }
            Err(error) => self.refuse(OAuthError::from(&error)).await,
        }
    }

    /// What the consent page shows of the crate's prompt.
    fn view(&self, prompt: &ConsentPrompt<'_>, notice: Option<&'static str>) -> ConsentView {
        let policy = &self.loaded.policy;
        let params = &self.pending.params;
        let client_name = policy
            .client(&params.client_id)
            .map(|client| client.name())
            .filter(|name| !name.is_empty())
            .unwrap_or(&params.client_id);
        let api_name = prompt
            .audience()
            .and_then(|audience| policy.api(audience))
            .map(|api| {
                if api.name().is_empty() {
                    api.audience()
                } else {
                    api.name()
                }
            });
        let unverifiable_host = prompt.unverifiable_redirect().then(|| {
            prompt
                .redirect_uri()
                .and_then(redirect_host)
                .unwrap_or_else(|| "an address that cannot be shown".to_owned())
        });
        ConsentView {
            pending_id: self.pending_id.clone().unwrap_or_else(random_token),
            prompt_id: prompt.id().to_string(),
            client_name: client_name.to_owned(),
            api_name: api_name.map(str::to_owned),
            user_id: params
                .user
                .as_ref()
                .map(|user| user.id.clone())
                .unwrap_or_default(),
            scopes: prompt
                .scopes()
                .map(|scope| {
                    (
                        scope.scope().to_owned(),
                        scope.description().to_owned(),
                        scope.required(),
                    )
                })
                .collect(),
            already: prompt.granted().map(str::to_owned).collect(),
            unverifiable_host,
            notice,
        }
    }

    /// Keeps the request server-side, tied to the browser's session, and shows the prompt.
    async fn ask(self, view: ConsentView) -> Response {
        let row = PendingRow {
            session: self.session.id.clone(),
            pending: self.pending,
            expires_at: now() + PENDING_TTL,
        };
        if let Err(error) = self.state.store.put_pending(&view.pending_id, row).await {
            return error_page(&internal(error));
        }
        self.session.set_on(page(StatusCode::OK, html::consent(&view)))
    }

    /// A grant: store the new consent record (replacing the old ones) and
    /// the code or the device's approval, in one transaction; then redirect
    /// with the code, or tell the user to go back to the device.
    async fn finish(self, mut grant: Grant<'_>) -> Response {
        let record = grant.take_consent_record();
        if grant.is_empty() {
            // The answer is stored even when nothing is granted: what the
            // user declined must not be asked again.
            if let Err(error) = self
                .state
                .store
                .complete(record, self.pending_id.clone(), None)
                .await
            {
                return error_page(&internal(error));
            }
            return self.refuse(OAuthError::nothing_granted()).await;
        }
        let issuance = match Issuance::of(&grant, self.pending.nonce.clone()) {
            Ok(issuance) => issuance,
            Err(error) => return error_page(&internal(error)),
        };
        let params = &self.pending.params;
        if let Some(device) = &self.pending.device {
            let completion = Completion::Device {
                key: device.clone(),
                issuance,
            };
            return match self
                .state
                .store
                .complete(record, self.pending_id, Some(completion))
                .await
            {
                Ok(()) => page(StatusCode::OK, html::device_done(true)),
                Err(error) => error_page(&internal(error)),
            };
        }
        let Some(redirect_uri) = params.redirect_uri.clone() else {
            return error_page(&internal("an authorization request without a redirect URI"));
        };
        let code = random_token();
        let completion = Completion::Code {
            key: digest_key(&code),
            row: CodeRow {
                client_id: params.client_id.clone(),
                redirect_uri: redirect_uri.clone(),
                code_challenge: self.pending.code_challenge.clone(),
                issuance,
                expires_at: now() + CODE_TTL,
            },
        };
        if let Err(error) = self
            .state
            .store
            .complete(record, self.pending_id, Some(completion))
            .await
        {
            return error_page(&internal(error));
        }
        let mut pairs = vec![("code", code.as_str())];
        pairs.extend(self.pending.state.as_deref().map(|state| ("state", state)));
        found(&redirect_uri_with(&redirect_uri, pairs))
    }

    /// A refusal: to the client's redirect URI when the crate says it may
    /// go there (never for an unknown client), else on an error page.
    pub async fn refuse(self, error: OAuthError) -> Response {
        if let Some(id) = &self.pending_id {
            if let Err(failure) = self.state.store.delete_pending(id).await {
                return error_page(&internal(failure));
            }
        }
        if let Some(device) = &self.pending.device {
            if error.error == "access_denied" {
                return match self.state.store.device_denied(device).await {
                    Ok(()) => page(StatusCode::OK, html::device_done(false)),
                    Err(failure) => error_page(&internal(failure)),
                };
            }
            return error_page(&error);
        }
        match (&self.pending.params.redirect_uri, error.redirectable) {
            (Some(redirect_uri), true) => {
                let mut pairs = error.query_pairs().to_vec();
                pairs.extend(self.pending.state.as_deref().map(|state| ("state", state)));
                found(&redirect_uri_with(redirect_uri, pairs))
            }
            _ => error_page(&error),
        }
    }
}

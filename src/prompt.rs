//! `ConsentPrompt`: a decision waiting for the user, and the answer to it.

use std::collections::HashMap;

use smallvec::SmallVec;

use crate::consent;
use crate::error::GrantError;
use crate::grant::{DenyReason, Entry, Grant, State, Verdict, NO_ID};
use crate::scope::{oidc_description, INLINE_TOKENS, OFFLINE_ACCESS, SCAN_BUDGET};

/// One scope on a consent prompt, with what the consent screen shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PromptScope<'a> {
    scope: &'a str,
    description: &'a str,
    required: bool,
}

impl<'a> PromptScope<'a> {
    /// The scope token.
    pub fn scope(&self) -> &'a str {
        self.scope
    }

    /// What the scope allows, from the API's definition (or OpenID Connect's, for OIDC scopes).
    pub fn description(&self) -> &'a str {
        self.description
    }

    /// Whether the user may not leave it out: the screen shows it locked.
    pub fn required(&self) -> bool {
        self.required
    }
}

/// A decision waiting for the user's consent.
///
/// The host shows [`scopes`](Self::scopes) (and, for an
/// [unverifiable redirect](Self::unverifiable_redirect), the redirect's
/// host) and answers with [`approve`](Self::approve) or [`deny`](Self::deny).
#[derive(Debug, Clone)]
pub struct ConsentPrompt<'a> {
    // INVARIANT: at least one `Asked` state; no `Approved` state.
    pending: Grant<'a>,
}

impl<'a> ConsentPrompt<'a> {
    /// A prompt for the `Asked` scopes of `pending`.
    pub(crate) fn new(pending: Grant<'a>) -> Self {
        ConsentPrompt { pending }
    }

    /// The audience the token would be for.
    pub fn audience(&self) -> Option<&'a str> {
        self.pending.audience()
    }

    /// The scopes to ask about, in request order, with their descriptions and required marks.
    pub fn scopes(&self) -> impl Iterator<Item = PromptScope<'a>> + '_ {
        let api = self.pending.context.api;
        self.pending
            .verdicts
            .iter()
            .filter(|entry| entry.state == State::Asked)
            .map(move |entry| {
                let definition = api.and_then(|api| api.definition_at(entry.id as usize));
                PromptScope {
                    scope: entry.scope,
                    description: oidc_description(entry.scope)
                        .or_else(|| definition.map(|definition| definition.description()))
                        .unwrap_or_default(),
                    required: entry.id != NO_ID && definition.is_some_and(|definition| definition.required()),
                }
            })
    }

    /// The scopes granted without asking: allowed and needing no consent, or covered by a record.
    pub fn granted(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.pending.scopes()
    }

    /// The scopes already refused, with their reasons; they are not on the prompt.
    pub fn denied(&self) -> impl Iterator<Item = (&'a str, DenyReason)> + '_ {
        self.pending.denied()
    }

    /// Every asked scope in request order: granted without asking, refused,
    /// or [`Verdict::Asked`] (on the prompt).
    pub fn verdicts(&self) -> impl Iterator<Item = (&'a str, Verdict)> + '_ {
        self.pending.verdicts.iter().map(|entry| {
            let verdict = match entry.state {
                State::Denied(reason) => Verdict::Denied(reason),
                State::Asked | State::Approved => Verdict::Asked,
                State::Granted => Verdict::Granted,
            };
            (entry.scope, verdict)
        })
    }

    /// Whether the request's `redirect_uri` is unverifiable (RFC 8252 §8.6):
    /// the screen should then show the redirect's host, since the client's
    /// identity is not assured (see [`redirect_host`](crate::redirect_host)).
    pub fn unverifiable_redirect(&self) -> bool {
        self.pending.context.unverifiable_redirect
    }

    /// The request's `redirect_uri`, if it had one.
    pub fn redirect_uri(&self) -> Option<&'a str> {
        self.pending.context.redirect_uri
    }

    /// The user approved `approved`, a subset of the prompt's scopes.
    ///
    /// Granted are the scopes that needed no prompt and the approved ones;
    /// prompt scopes not approved are denied with
    /// [`DenyReason::ConsentDenied`]. The grant carries the new
    /// [consent record](Grant::consent_record), which replaces every record
    /// for this user, client and audience: what they held, less what the
    /// user left unticked now, plus what the user approved; what they
    /// declined plus what was left unticked; no `consent: always` scope; and
    /// the earliest of their expiries and `now` + the policy's
    /// `consent_lifetime`.
    ///
    /// # Errors
    ///
    /// In this order:
    /// - [`GrantError::ApprovalNotOnPrompt`] (`invalid_request`) when an
    ///   approved scope was not on the prompt: a tampered form never widens a grant;
    /// - [`GrantError::RequiredScopeLeftOut`] (`access_denied`) when a
    ///   required prompt scope is not approved;
    /// - [`GrantError::LifetimeWithoutNow`] (`invalid_request`) when the
    ///   policy sets `consent_lifetime` and the request has no `now`;
    /// - [`GrantError::ExpiringConsentWithoutNow`] (`invalid_request`) when
    ///   the request has no `now` and a record passed for this user, client
    ///   and audience carries an expiry.
    pub fn approve<I>(self, approved: I) -> Result<Grant<'a>, GrantError>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let mut grant = self.pending;
        // Where each approved scope is on the prompt: a scan within the scan
        // budget, a map beyond, so a long approval of a long request stays linear.
        let mut compared = 0;
        let mut positions: Option<HashMap<&str, usize>> = None;
        for scope in approved {
            let scope = scope.as_ref();
            if positions.is_none() && compared > SCAN_BUDGET {
                let asked = grant.verdicts.iter().enumerate();
                positions = Some(asked.map(|(at, entry)| (entry.scope, at)).collect());
            }
            let at = match &positions {
                Some(positions) => positions.get(scope).copied(),
                None => {
                    compared += grant.verdicts.len();
                    grant.verdicts.iter().position(|entry| entry.scope == scope)
                }
            };
            match at.and_then(|at| grant.verdicts.get_mut(at)) {
                Some(Entry {
                    state: state @ (State::Asked | State::Approved),
                    ..
                }) => *state = State::Approved,
                _ => {
                    return Err(GrantError::ApprovalNotOnPrompt {
                        scope: scope.to_owned(),
                    })
                }
            }
        }
        let context = grant.context;
        let left_out = |entry: &&Entry<'_>| entry.state == State::Asked;
        if let Some(entry) = grant
            .verdicts
            .iter()
            .filter(left_out)
            .find(|e| context.required(e.id))
        {
            return Err(GrantError::RequiredScopeLeftOut {
                scope: entry.scope.to_owned(),
            });
        }
        let key = context.key();
        let lifetime = context.policy.consent_lifetime();
        if context.now.is_none() {
            if lifetime.is_some() {
                return Err(GrantError::LifetimeWithoutNow);
            }
            if consent::any_expiring(context.consents, key) {
                return Err(GrantError::ExpiringConsentWithoutNow);
            }
        }
        let in_state = |state: State| -> SmallVec<[&str; INLINE_TOKENS]> {
            let entries = grant.verdicts.iter().filter(|entry| entry.state == state);
            entries.map(|entry| entry.scope).collect()
        };
        let answer = consent::Answer {
            approved: &in_state(State::Approved),
            unticked: &in_state(State::Asked),
        };
        let one_time = |scope: &str| {
            let api = context.api;
            api.is_some_and(|api| api.scope_id(scope).is_some_and(|id| api.always_at(id)))
        };
        let record = consent::replacement(context.consents, key, answer, lifetime, one_time);
        for entry in &mut grant.verdicts {
            entry.state = match entry.state {
                State::Approved => State::Granted,
                State::Asked => State::Denied(DenyReason::ConsentDenied),
                settled => settled,
            };
        }
        grant.refresh_token = grant.is_granted(OFFLINE_ACCESS);
        grant.consent_record = Some(record);
        Ok(grant)
    }

    /// The user refused the prompt.
    ///
    /// Returns the error to answer with: [`GrantError::ConsentDenied`]
    /// (`access_denied`). No record is made: what the host stored stays.
    pub fn deny(self) -> GrantError {
        GrantError::ConsentDenied
    }
}

//! `grant()`: the decision, and what it returns.

use std::collections::HashMap;
use std::fmt;

use smallvec::SmallVec;

use crate::consent::{self, ConsentRecord, RecordKey, Remembered};
use crate::error::GrantError;
use crate::policy::{Api, Client, Policy};
use crate::redirect::is_verifiable_redirect;
use crate::request::{Request, User};
use crate::scope::{is_oidc_scope, oidc_description, Limits, ScopeParam, INLINE_TOKENS, OFFLINE_ACCESS, SCAN_BUDGET};
use crate::scope_set::ScopeSet;
use crate::vocab::{ClientAccess, Flow, Prompt, Subject, UnknownScopes, UserAccess};

/// Why a requested scope was left out of a grant.
///
/// The reason is the first check the scope failed, in this order. For an
/// OIDC scope: [`RequiresUser`](Self::RequiresUser),
/// [`OfflineAccessNotAllowed`](Self::OfflineAccessNotAllowed), then consent.
/// For an API scope: [`NoAudience`](Self::NoAudience),
/// [`Undefined`](Self::Undefined), [`NotGrantedToClient`](Self::NotGrantedToClient),
/// [`NotPermitted`](Self::NotPermitted), then consent:
/// [`ConsentDenied`](Self::ConsentDenied) in the interactive flows,
/// [`ConsentMissing`](Self::ConsentMissing) in a refresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum DenyReason {
    /// `requires_user`: an OIDC scope asked in the client credentials flow.
    RequiresUser,
    /// `offline_access_not_allowed`: `offline_access` from a client without the
    /// `refresh_token` grant type, or for an API that does not allow offline access.
    OfflineAccessNotAllowed,
    /// `no_audience`: an API scope asked with no audience to define it.
    NoAudience,
    /// `undefined`: the API defines no such scope (the match is exact and case-sensitive).
    Undefined,
    /// `not_granted_to_client`: the client's grant for the API does not hold the scope.
    NotGrantedToClient,
    /// `not_permitted`: under RBAC, neither the user's roles nor their direct permissions allow it.
    NotPermitted,
    /// `consent_denied`: the user did not approve the scope on the prompt, or
    /// declined it on an earlier prompt and is not asked again.
    ConsentDenied,
    /// `consent_missing`: a refresh of a scope that needs consent, which no
    /// matching, unexpired record holds, or which a matching record declines.
    /// Consent the user withdrew, declined, let expire, or gave once
    /// (`consent: always`) does not come back through a refresh token.
    ConsentMissing,
}

impl DenyReason {
    /// The snake_case name used in logs and the conformance corpus, such as `not_permitted`.
    pub const fn as_str(self) -> &'static str {
        match self {
            DenyReason::RequiresUser => "requires_user",
            DenyReason::OfflineAccessNotAllowed => "offline_access_not_allowed",
            DenyReason::NoAudience => "no_audience",
            DenyReason::Undefined => "undefined",
            DenyReason::NotGrantedToClient => "not_granted_to_client",
            DenyReason::NotPermitted => "not_permitted",
            DenyReason::ConsentDenied => "consent_denied",
            DenyReason::ConsentMissing => "consent_missing",
        }
    }
}

impl fmt::Display for DenyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The verdict on one asked scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Verdict {
    /// The scope goes into the token.
    Granted,
    /// The scope is left out, for this reason.
    Denied(DenyReason),
    /// The scope is on the consent prompt, waiting for the user's answer.
    /// Only a [`ConsentPrompt`] has such scopes; a [`Grant`] never does.
    Asked,
}

/// Where an asked scope stands while the decision is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Granted,
    Denied(DenyReason),
    /// Allowed by every rule, waiting for the user's consent.
    Asked,
    /// Approved on the prompt; becomes `Granted` when the approval is complete.
    Approved,
}

/// One asked scope: the token, where it stands, and its id in the audience's
/// API ([`NO_ID`] for an OIDC scope or a scope the API does not define).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry<'a> {
    scope: &'a str,
    state: State,
    id: u32,
}

/// The id of an entry that is not a scope of the audience's API.
const NO_ID: u32 = u32::MAX;

type Verdicts<'a> = SmallVec<[Entry<'a>; INLINE_TOKENS]>;

/// What the answer to a prompt and the `permissions` claim need to know of
/// the request, kept with the decision.
#[derive(Clone, Copy)]
struct Context<'a> {
    policy: &'a Policy,
    client: &'a Client,
    api: Option<&'a Api>,
    flow: Flow,
    user: Option<&'a User>,
    consents: &'a [ConsentRecord],
    now: Option<u64>,
    // The parsed `prompt` of an `authorization_code` request; empty otherwise.
    prompt: Prompt,
    // The `redirect_uri` of an `authorization_code` request; `None` otherwise.
    redirect_uri: Option<&'a str>,
    unverifiable_redirect: bool,
}

// By hand: the derived form would print the whole policy and API.
impl fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("client_id", &self.client.client_id())
            .field("audience", &self.api.map(Api::audience))
            .field("flow", &self.flow)
            .field("user_id", &self.user.map(|user| user.id.as_str()))
            .field("consents", &self.consents.len())
            .field("now", &self.now)
            .field("prompt", &self.prompt)
            .field("redirect_uri", &self.redirect_uri)
            .field("unverifiable_redirect", &self.unverifiable_redirect)
            .finish()
    }
}

impl<'a> Context<'a> {
    /// Whose consent records speak for this request.
    fn key(&self) -> RecordKey<'a> {
        RecordKey {
            user_id: self.user.map(|user| user.id.as_str()).unwrap_or_default(),
            client_id: self.client.client_id(),
            audience: self.api.map(Api::audience),
            now: self.now,
        }
    }

    /// Who must consent, for every scope of this request: a third-party
    /// client; a first-party one on an API that does not let it skip (with
    /// no audience it skips); the device flow and an unverifiable redirect,
    /// where the client's identity is not assured (RFC 8628 §5.4, RFC 8252
    /// §8.6); `prompt=consent` (OpenID Connect Core §3.1.2.1). A
    /// `consent: always` scope needs consent on top of these.
    fn must_ask(&self) -> bool {
        !self.client.first_party()
            || self.api.is_some_and(|api| !api.allow_skipping_consent())
            || self.flow == Flow::DeviceCode
            || self.unverifiable_redirect
            || self.prompt.consent()
    }

    /// Whether consent remembered in records counts in this request.
    fn remembered_counts(&self) -> bool {
        !(self.prompt.consent() || self.flow == Flow::DeviceCode || self.unverifiable_redirect)
    }

    /// Whether the API's scope with this id is `consent: always`.
    fn one_time(&self, id: u32) -> bool {
        id != NO_ID && self.api.is_some_and(|api| api.always_at(id as usize))
    }

    /// Whether the API's scope with this id is `required`.
    fn required(&self, id: u32) -> bool {
        id != NO_ID && self.api.is_some_and(|api| api.required_at(id as usize))
    }

    /// The client grant that restricts API scopes in this flow, if one does.
    fn restriction(&self) -> Option<&'a ScopeSet> {
        let api = self.api?;
        match self.flow {
            Flow::ClientCredentials => self.client.grant_for(Subject::Client, api.index()),
            Flow::AuthorizationCode | Flow::RefreshToken | Flow::DeviceCode => {
                (api.user_access() == UserAccess::RequireClientGrant)
                    .then(|| self.client.grant_for(Subject::User, api.index()))
                    .flatten()
            }
        }
    }

    /// Whether the flow's client grant restricts API scopes at all: always
    /// in client credentials, in user flows under `require_client_grant`.
    fn restricted(&self) -> bool {
        self.api.is_some_and(|api| match self.flow {
            Flow::ClientCredentials => true,
            Flow::AuthorizationCode | Flow::RefreshToken | Flow::DeviceCode => {
                api.user_access() == UserAccess::RequireClientGrant
            }
        })
    }
}

/// The outcome of a request that was not refused as a whole.
#[derive(Debug, Clone)]
pub enum Decision<'a> {
    /// The scopes to put in the token.
    Granted(Grant<'a>),
    /// The user must be asked first: show the prompt, then call
    /// [`ConsentPrompt::approve`] or [`ConsentPrompt::deny`].
    ConsentRequired(ConsentPrompt<'a>),
}

impl<'a> Decision<'a> {
    /// The grant, if no consent is needed.
    pub fn granted(self) -> Option<Grant<'a>> {
        match self {
            Decision::Granted(grant) => Some(grant),
            Decision::ConsentRequired(_) => None,
        }
    }

    /// The consent prompt, if consent is needed.
    pub fn consent_required(self) -> Option<ConsentPrompt<'a>> {
        match self {
            Decision::Granted(_) => None,
            Decision::ConsentRequired(prompt) => Some(prompt),
        }
    }
}

/// The scopes that go into the token, with a verdict on every asked scope.
#[derive(Debug, Clone)]
pub struct Grant<'a> {
    context: Context<'a>,
    // INVARIANT: one entry per asked scope, in asked order; no `Asked` or
    // `Approved` state once the grant is handed out.
    verdicts: Verdicts<'a>,
    // INVARIANT: the size of the requested set, which holds every asked scope when it is not 0.
    requested: usize,
    refresh_token: bool,
    consent_record: Option<ConsentRecord>,
}

/// Two grants are equal when they say the same: audience, verdicts,
/// `scope_changed`, `refresh_token`, redirect mark and new record.
impl PartialEq for Grant<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.audience() == other.audience()
            && self.verdicts == other.verdicts
            && self.requested == other.requested
            && self.refresh_token == other.refresh_token
            && self.context.unverifiable_redirect == other.context.unverifiable_redirect
            && self.consent_record == other.consent_record
    }
}

impl Eq for Grant<'_> {}

impl<'a> Grant<'a> {
    /// The audience the token is for: the request's, the policy's default,
    /// or a refresh's original audience.
    pub fn audience(&self) -> Option<&'a str> {
        self.context.api.map(Api::audience)
    }

    /// The granted scopes, in request order (defaults in definition order).
    pub fn scopes(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.verdicts
            .iter()
            .filter(|entry| entry.state == State::Granted)
            .map(|entry| entry.scope)
    }

    /// Whether no scope was granted (every asked scope was refused, or none was asked).
    pub fn is_empty(&self) -> bool {
        self.scopes().next().is_none()
    }

    /// Whether `scope` was granted.
    pub fn is_granted(&self, scope: &str) -> bool {
        self.scopes().any(|granted| granted == scope)
    }

    /// The refused scopes with their reasons, in request order.
    pub fn denied(&self) -> impl Iterator<Item = (&'a str, DenyReason)> + '_ {
        self.verdicts.iter().filter_map(|entry| match entry.state {
            State::Denied(reason) => Some((entry.scope, reason)),
            State::Granted | State::Asked | State::Approved => None,
        })
    }

    /// A verdict for every asked scope, in request order.
    pub fn verdicts(&self) -> impl Iterator<Item = (&'a str, Verdict)> + '_ {
        self.verdicts.iter().map(|entry| {
            let verdict = match entry.state {
                State::Denied(reason) => Verdict::Denied(reason),
                // INVARIANT: a grant holds no `Asked` or `Approved` state.
                State::Granted | State::Asked | State::Approved => Verdict::Granted,
            };
            (entry.scope, verdict)
        })
    }

    /// The granted scopes as the token's `scope` value: space-separated, in request order.
    pub fn scope_string(&self) -> String {
        let mut out = String::new();
        for scope in self.scopes() {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(scope);
        }
        out
    }

    /// Whether the granted set differs from the requested one, so the token
    /// response must carry `scope` (RFC 6749 §5.1). The requested set is the
    /// scope parameter's distinct tokens; with none, it is empty, except in
    /// a refresh, where it is the original scope.
    pub fn scope_changed(&self) -> bool {
        let granted = self.scopes().count();
        // INVARIANT: granted ⊆ asked ⊆ requested when anything was requested,
        // so the sets are equal exactly when their sizes are.
        match self.requested {
            0 => granted > 0,
            requested => granted != requested,
        }
    }

    /// Whether a refresh token may be issued: `offline_access` was granted;
    /// in a refresh, the original scope holds `offline_access` and it would
    /// be granted if asked, so a refresh that narrows the access token's
    /// scope keeps its refresh token.
    pub fn refresh_token(&self) -> bool {
        self.refresh_token
    }

    /// Whether the request's `redirect_uri` is unverifiable (not `https`, or
    /// a loopback host; RFC 8252 §8.6), which removed first-party skip and
    /// remembered consent. Only `authorization_code` requests have one.
    pub fn unverifiable_redirect(&self) -> bool {
        self.context.unverifiable_redirect
    }

    /// The consent record to store after the user approved a prompt. It
    /// **replaces** every record the host holds for this user, client and
    /// audience: delete those and store this one, in one transaction, or a
    /// withdrawn or declined scope would still be remembered.
    pub fn consent_record(&self) -> Option<&ConsentRecord> {
        self.consent_record.as_ref()
    }

    /// Takes the consent record to store (see [`consent_record`](Self::consent_record)).
    pub fn take_consent_record(&mut self) -> Option<ConsentRecord> {
        self.consent_record.take()
    }

    /// The scopes for Auth0's RBAC `permissions` claim, in definition order.
    ///
    /// In a user flow on an API with `rbac`: the API's scopes in the user's
    /// effective permissions (roles, inherited roles, direct permissions),
    /// whether requested or not, less every scope this client could not get
    /// without a consent it lacks. A scope is left out when it was asked and
    /// not granted; or, not asked, when the client's grant would refuse it,
    /// it is `consent: always`, a matching record declines it, or it needs
    /// consent and no matching record holds it. A first-party client that
    /// skips consent sees the user's whole permission set on the API, a
    /// third-party client only what the user consented to. In client
    /// credentials, the granted API scopes. Otherwise empty.
    ///
    /// Computed on demand, from the grant and the request it came from: a
    /// decision that does not ask for it pays nothing.
    pub fn permissions(&self) -> Vec<&'a str> {
        let context = &self.context;
        let Some(api) = context.api else {
            return Vec::new();
        };
        let name = |id: usize| api.scope_at(id).map(|scope| scope.as_str());
        let mut asked = ScopeSet::with_len(api.scope_count());
        let mut granted = ScopeSet::with_len(api.scope_count());
        for entry in self.verdicts.iter().filter(|entry| entry.id != NO_ID) {
            asked.insert(entry.id as usize);
            if entry.state == State::Granted {
                granted.insert(entry.id as usize);
            }
        }
        if context.flow == Flow::ClientCredentials {
            return granted.iter().filter_map(name).collect();
        }
        let Some(user) = context.user.filter(|_| api.rbac()) else {
            return Vec::new();
        };
        let mut effective = ScopeSet::with_len(api.scope_count());
        for role in user.roles.iter().filter_map(|role| context.policy.role(role)) {
            if let Some(set) = role.set_for(api.index()) {
                effective.union_with(set);
            }
        }
        for permission in user.permissions.iter().filter(|p| p.audience == api.audience()) {
            if let Some(id) = api.scope_id(permission.scope.as_str()) {
                effective.insert(id);
            }
        }
        let restriction = context.restriction();
        let restricted = context.restricted();
        let remembered = Remembered::new(context.consents, context.key(), effective.iter().count());
        let lacks_consent = |id: usize, scope: &str| {
            (restricted && !restriction.is_some_and(|grant| grant.contains(id)))
                || api.always_at(id)
                || remembered.declines(scope)
                || (context.must_ask() && !remembered.holds(scope))
        };
        effective
            .iter()
            .filter(|&id| match asked.contains(id) {
                true => granted.contains(id),
                false => name(id).is_some_and(|scope| !lacks_consent(id, scope)),
            })
            .filter_map(name)
            .collect()
    }
}

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
        if let Some(entry) = grant.verdicts.iter().filter(left_out).find(|e| context.required(e.id)) {
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

/// Decides which of the requested scopes `policy` grants for `request`.
///
/// Same as [`Policy::grant`].
///
/// # Errors
///
/// See [`Policy::grant`].
pub fn grant<'a>(policy: &'a Policy, request: &Request<'a>) -> Result<Decision<'a>, GrantError> {
    policy.grant(request)
}

impl Policy {
    /// Decides which of the requested scopes go into the token.
    ///
    /// The request is checked as a whole first; the first failure is the answer:
    ///
    /// 1. the client is defined, else `invalid_client`;
    /// 2. the flow is one of the client's grant types, else `unauthorized_client`;
    /// 3. a user flow has a user, client credentials have none, a refresh
    ///    has an original scope, and the `prompt` of an `authorization_code`
    ///    request holds only `none`, `login`, `consent` and `select_account`
    ///    (`none` alone), else `invalid_request`;
    /// 4. the scope parameter parses and is within the limits, else `invalid_scope`;
    /// 5. a named audience is an API (else `invalid_target`); with none named,
    ///    the policy's default audience is used; client credentials with no
    ///    audience at all are `invalid_request`. A refresh is bound to its
    ///    original audience: it must still be an API, a named audience must
    ///    equal it, and with none the refresh has no audience and the default
    ///    does not apply, else `invalid_target`;
    /// 6. the API admits the client: for client credentials, `client_access` is
    ///    not `deny_all` and the client has a `subject: client` grant; for user
    ///    flows, `user_access` is not `deny_all` and, under
    ///    `require_client_grant`, the client has a `subject: user` grant; else
    ///    `access_denied`;
    /// 7. under `unknown_scopes = "reject"`, every token is an OIDC scope or
    ///    defined by the API, else `invalid_scope`;
    /// 8. a refresh's original scope parses (the limits do not apply to it)
    ///    and holds every token asked (RFC 6749 §6), else `invalid_scope`.
    ///
    /// The asked scopes are the parameter's distinct tokens in order; with none,
    /// client credentials ask for the client's whole grant, `authorization_code`
    /// and `device_code` for the API's default scopes, and a refresh for the
    /// original scope.
    ///
    /// Each asked scope then gets a verdict: the first check it fails is the
    /// [`DenyReason`]. An OIDC scope fails in client credentials, and
    /// `offline_access` fails without the `refresh_token` grant type or the
    /// API's `allow_offline_access`. An API scope fails with no audience, when
    /// undefined, when the client's grant restricts it and lacks it, and, in
    /// user flows on an RBAC API, when the user's effective permissions lack it.
    ///
    /// Last, consent. A scope needs it when the client is third-party, the
    /// API does not let a first-party client skip, the flow is
    /// `device_code`, the redirect is unverifiable, the request has
    /// `prompt=consent`, or the scope is `consent: always`.
    /// - In `authorization_code` and `device_code`, remembered consent counts
    ///   unless the request has `prompt=consent`, is a device flow or has an
    ///   unverifiable redirect, or the scope is `consent: always`; where it
    ///   counts, a scope a matching, unexpired record holds (and none
    ///   declines) is granted, and one a record declines is denied
    ///   `consent_denied` without asking, unless it is `required`. The rest
    ///   goes on the prompt: the decision is [`Decision::ConsentRequired`],
    ///   or, under `prompt=none`, the error `consent_required`.
    /// - In a refresh, a scope that needs consent must be held by a matching,
    ///   unexpired record, and any scope a matching record declines is
    ///   refused: `consent_missing`.
    ///
    /// ```
    /// use scope_policy::{Decision, Policy, Request, User};
    /// let policy = Policy::from_json(r#"{
    ///   "apis": [{ "audience": "https://notes.example.com", "scopes": [ { "name": "read:notes" } ] }],
    ///   "clients": [{ "client_id": "notes-web", "first_party": true, "kind": "regular_web" }]
    /// }"#)?;
    /// let alice = User::new("alice");
    /// let request = Request::new("notes-web")
    ///     .audience("https://notes.example.com")
    ///     .scope("openid read:notes write:notes")
    ///     .user(&alice);
    /// let Decision::Granted(grant) = policy.grant(&request)? else { unreachable!("first party skips consent") };
    /// assert_eq!(grant.scope_string(), "openid read:notes");
    /// assert!(grant.scope_changed()); // `write:notes` is undefined
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// A [`GrantError`] for the first request-level check that fails, or
    /// [`GrantError::ConsentRequired`] under `prompt=none`; its
    /// [`code`](GrantError::code) is the OAuth error to answer with.
    pub fn grant<'a>(&'a self, request: &Request<'a>) -> Result<Decision<'a>, GrantError> {
        let checked = Checked::new(self, request)?;
        checked.decide()
    }
}

/// A request that passed the request-level checks, with what the verdicts need.
struct Checked<'a> {
    context: Context<'a>,
    api_index: Option<usize>,
    param: ScopeParam<'a>,
    original: Option<ScopeParam<'a>>,
}

/// No limit: a refresh's original scope comes from the host's store, not from the client.
const UNLIMITED: Limits = Limits {
    max_scope_length: usize::MAX,
    max_scope_tokens: usize::MAX,
};

impl<'a> Checked<'a> {
    /// The request-level checks, in order.
    fn new(policy: &'a Policy, parts: &Request<'a>) -> Result<Self, GrantError> {
        // 1. The client is defined.
        let client = policy
            .client(parts.client_id)
            .ok_or_else(|| GrantError::UnknownClient {
                client_id: parts.client_id.to_owned(),
            })?;
        // 2. The flow is one of its grant types.
        let flow = parts.flow;
        if !client.allows(flow) {
            return Err(GrantError::FlowNotAllowed {
                client_id: client.client_id().to_owned(),
                flow,
            });
        }
        // 3. A user exactly when the flow has one; a refresh has its original
        // scope; the prompt of an authorization request is valid. An empty
        // parameter counts as not sent (RFC 6749 §3.1).
        match (flow.has_user(), parts.user) {
            (true, None) => return Err(GrantError::MissingUser { flow }),
            (false, Some(_)) => return Err(GrantError::UnexpectedUser),
            _ => {}
        }
        if flow == Flow::RefreshToken && parts.original_scope.is_none() {
            return Err(GrantError::MissingOriginalScope);
        }
        let sent = |parameter: Option<&'a str>| parameter.filter(|value| !value.is_empty());
        let authorization = flow == Flow::AuthorizationCode;
        let prompt = match sent(parts.prompt).filter(|_| authorization) {
            Some(raw) => Prompt::parse(raw).map_err(GrantError::Prompt)?,
            None => Prompt::default(),
        };
        // 4. The scope parameter parses, within the limits.
        let param = match parts.scope {
            Some(raw) => ScopeParam::parse(raw, policy.limits()).map_err(GrantError::Scope)?,
            None => ScopeParam::default(),
        };
        // 5. The audience (RFC 8707 §2: an unknown one is `invalid_target`);
        // a refresh keeps its grant's (RFC 9700 §4.14.2).
        let api = match (flow, parts.audience) {
            (Flow::RefreshToken, named) => {
                let original = match parts.original_audience {
                    Some(audience) => Some(policy.api_entry(audience).ok_or_else(|| {
                        GrantError::UnknownOriginalAudience {
                            audience: audience.to_owned(),
                        }
                    })?),
                    None => None,
                };
                if let Some(named) = named.filter(|&named| Some(named) != parts.original_audience) {
                    return Err(GrantError::AudienceChanged {
                        audience: named.to_owned(),
                        original: parts.original_audience.map(str::to_owned),
                    });
                }
                original
            }
            (_, Some(audience)) => Some(policy.api_entry(audience).ok_or_else(|| {
                GrantError::UnknownAudience {
                    audience: audience.to_owned(),
                }
            })?),
            (_, None) => policy.default_api_entry(),
        };
        if flow == Flow::ClientCredentials && api.is_none() {
            return Err(GrantError::MissingAudience);
        }
        // 6. The API admits this client for this flow.
        if let Some((index, api)) = api {
            let admitted = match flow {
                Flow::ClientCredentials => {
                    api.client_access() != ClientAccess::DenyAll
                        && client.grant_for(Subject::Client, index).is_some()
                }
                Flow::AuthorizationCode | Flow::RefreshToken | Flow::DeviceCode => match api.user_access() {
                    UserAccess::AllowAll => true,
                    UserAccess::RequireClientGrant => client.grant_for(Subject::User, index).is_some(),
                    UserAccess::DenyAll => false,
                },
            };
            if !admitted {
                return Err(GrantError::ApiAccessDenied {
                    client_id: client.client_id().to_owned(),
                    audience: api.audience().to_owned(),
                    subject: if flow.has_user() { Subject::User } else { Subject::Client },
                });
            }
        }
        // 7. Unknown scopes, when the policy rejects them.
        if policy.unknown_scopes() == UnknownScopes::Reject {
            let unknown = param.tokens().iter().find(|token| {
                !is_oidc_scope(token) && api.is_none_or(|(_, api)| api.scope_id(token).is_none())
            });
            if let Some(token) = unknown {
                return Err(GrantError::UnknownScope {
                    scope: (*token).to_owned(),
                });
            }
        }
        // 8. A refresh never widens the original grant (RFC 6749 §6).
        let original = match (flow, parts.original_scope) {
            (Flow::RefreshToken, Some(raw)) => {
                let original = ScopeParam::parse(raw, UNLIMITED).map_err(GrantError::OriginalScope)?;
                if let Some(token) = param.first_not_in(&original) {
                    return Err(GrantError::ScopeWidened {
                        scope: token.to_owned(),
                    });
                }
                Some(original)
            }
            _ => None,
        };
        let redirect_uri = sent(parts.redirect_uri).filter(|_| authorization);
        Ok(Checked {
            context: Context {
                policy,
                client,
                api: api.map(|(_, api)| api),
                flow,
                user: parts.user,
                consents: parts.consents,
                now: parts.now,
                prompt,
                redirect_uri,
                unverifiable_redirect: redirect_uri.is_some_and(|uri| !is_verifiable_redirect(uri)),
            },
            api_index: api.map(|(index, _)| index),
            param,
            original,
        })
    }

    /// The asked scopes, and the size of the requested set. Scopes the
    /// request does not name (an API's defaults, a client's grant) are
    /// gathered into `unnamed`; the request's own are borrowed, not copied.
    fn asked<'s>(&'s self, unnamed: &'s mut SmallVec<[&'a str; INLINE_TOKENS]>) -> (&'s [&'a str], usize) {
        if !self.param.is_empty() {
            return (self.param.tokens(), self.param.tokens().len());
        }
        let context = &self.context;
        let mut names = |api: &'a Api, ids: &mut dyn Iterator<Item = usize>| {
            unnamed.extend(ids.filter_map(|id| api.scope_at(id)).map(|scope| scope.as_str()));
        };
        match (context.flow, context.api, self.api_index) {
            (Flow::ClientCredentials, Some(api), Some(index)) => {
                let grant = context.client.grant_for(Subject::Client, index);
                names(api, &mut grant.into_iter().flat_map(ScopeSet::iter));
            }
            (Flow::AuthorizationCode | Flow::DeviceCode, Some(api), _) => {
                names(api, &mut api.default_scope_ids().iter().copied());
            }
            (Flow::RefreshToken, _, _) => {
                let original = self.original.as_ref().map(ScopeParam::tokens).unwrap_or_default();
                return (original, original.len());
            }
            _ => {}
        }
        (unnamed, 0)
    }

    /// A verdict for every asked scope, then consent.
    fn decide(&self) -> Result<Decision<'a>, GrantError> {
        let context = self.context;
        let mut unnamed = SmallVec::new();
        let (asked, requested) = self.asked(&mut unnamed);
        let rules = Rules::new(&context);
        let mut verdicts = rules.verdicts(asked);
        let refresh_token = match context.flow {
            Flow::AuthorizationCode | Flow::DeviceCode => consent_interactive(&context, &mut verdicts),
            Flow::RefreshToken => consent_refresh(&context, &mut verdicts, &rules, self.original.as_ref()),
            Flow::ClientCredentials => false,
        };
        let pending = Grant {
            context,
            verdicts,
            requested,
            refresh_token,
            consent_record: None,
        };
        if !pending.verdicts.iter().any(|entry| entry.state == State::Asked) {
            return Ok(Decision::Granted(pending));
        }
        // OpenID Connect Core §3.1.2.6: the client asked that the user see nothing.
        if context.prompt.none() {
            return Err(GrantError::ConsentRequired);
        }
        Ok(Decision::ConsentRequired(ConsentPrompt { pending }))
    }
}

/// Consent in `authorization_code` and `device_code`: each allowed scope
/// that needs consent is covered by a record, declined by one, or asked.
/// Returns whether `offline_access` is granted.
fn consent_interactive(context: &Context<'_>, verdicts: &mut Verdicts<'_>) -> bool {
    let must_ask = context.must_ask();
    let needs = |entry: &Entry<'_>| must_ask || context.one_time(entry.id);
    let waiting = verdicts
        .iter()
        .filter(|entry| entry.state == State::Granted && needs(entry))
        .count();
    if waiting > 0 {
        let remembered = match context.remembered_counts() {
            true => Remembered::new(context.consents, context.key(), waiting),
            false => Remembered::default(),
        };
        for entry in verdicts.iter_mut() {
            if entry.state != State::Granted || !needs(entry) {
                continue;
            }
            entry.state = if remembered.is_empty() || context.one_time(entry.id) {
                State::Asked
            } else if remembered.declines(entry.scope) {
                match context.required(entry.id) {
                    true => State::Asked,
                    false => State::Denied(DenyReason::ConsentDenied),
                }
            } else if remembered.holds(entry.scope) {
                State::Granted
            } else {
                State::Asked
            };
        }
    }
    verdicts
        .iter()
        .any(|entry| entry.state == State::Granted && entry.scope == OFFLINE_ACCESS)
}

/// Consent in a refresh: a scope that needs consent must still be held by a
/// matching record, and one a matching record declines never comes back.
/// Returns whether a refresh token may be issued: the original scope holds
/// `offline_access` and it would be granted if asked.
fn consent_refresh(
    context: &Context<'_>,
    verdicts: &mut Verdicts<'_>,
    rules: &Rules<'_, '_>,
    original: Option<&ScopeParam<'_>>,
) -> bool {
    let must_ask = context.must_ask();
    let remembered = Remembered::new(context.consents, context.key(), verdicts.len() + 1);
    let consented = |scope: &str, id: u32| {
        let missing = context.one_time(id) || must_ask && !remembered.holds(scope);
        !(remembered.declines(scope) || missing)
    };
    for entry in verdicts.iter_mut().filter(|entry| entry.state == State::Granted) {
        if !consented(entry.scope, entry.id) {
            entry.state = State::Denied(DenyReason::ConsentMissing);
        }
    }
    let kept = original.is_some_and(|original| original.contains(OFFLINE_ACCESS));
    kept && match verdicts.iter().find(|entry| entry.scope == OFFLINE_ACCESS) {
        Some(entry) => entry.state == State::Granted,
        // Not asked this time: would it be granted if it were?
        None => rules.allowed(OFFLINE_ACCESS).is_ok() && consented(OFFLINE_ACCESS, NO_ID),
    }
}

/// What the per-scope checks read, resolved once per request.
#[derive(Debug)]
struct Rules<'c, 'a> {
    context: &'c Context<'a>,
    // The client grant that restricts API scopes, if one does.
    restriction: Option<&'a ScopeSet>,
    restricted: bool,
    // Under RBAC in a user flow: the user whose roles and permissions decide.
    rbac: Option<&'a User>,
}

/// An asked scope that passed every check before RBAC: where it is in the
/// request, and its id in the audience's API.
type Waiting<'a> = SmallVec<[(usize, &'a str, usize); INLINE_TOKENS]>;

impl<'c, 'a> Rules<'c, 'a> {
    fn new(context: &'c Context<'a>) -> Self {
        let rbac = context
            .user
            .filter(|_| context.flow.has_user() && context.api.is_some_and(Api::rbac));
        Rules {
            context,
            restriction: context.restriction(),
            restricted: context.restricted(),
            rbac,
        }
    }

    /// A verdict for every asked scope, in order, before consent.
    ///
    /// RBAC is the last check, so it runs after the others over the scopes
    /// still waiting for it. Each of the user's roles is then looked up once
    /// per request, not once per scope, and not at all when nothing waits.
    fn verdicts(&self, asked: &[&'a str]) -> Verdicts<'a> {
        let mut waiting = Waiting::new();
        let mut verdicts: Verdicts<'a> = asked
            .iter()
            .enumerate()
            .map(|(at, &scope)| {
                let (state, id) = match self.allowed(scope) {
                    Err(reason) => (State::Denied(reason), None),
                    Ok(Some(id)) if self.rbac.is_some() => {
                        waiting.push((at, scope, id));
                        // Refused unless a role or a direct permission allows it, below.
                        (State::Denied(DenyReason::NotPermitted), Some(id))
                    }
                    Ok(id) => (State::Granted, id),
                };
                let id = id.and_then(|id| u32::try_from(id).ok()).unwrap_or(NO_ID);
                Entry { scope, state, id }
            })
            .collect();
        self.permit(&mut verdicts, waiting);
        verdicts
    }

    /// Every check before RBAC, the first failing one being the reason. An API
    /// scope that passes them comes back with its id, for RBAC.
    fn allowed(&self, scope: &str) -> Result<Option<usize>, DenyReason> {
        let context = self.context;
        if is_oidc_scope(scope) {
            if context.flow == Flow::ClientCredentials {
                return Err(DenyReason::RequiresUser);
            }
            let offline_refused = !context.client.allows(Flow::RefreshToken)
                || context.api.is_some_and(|api| !api.allow_offline_access());
            if scope == OFFLINE_ACCESS && offline_refused {
                return Err(DenyReason::OfflineAccessNotAllowed);
            }
            return Ok(None);
        }
        let api = context.api.ok_or(DenyReason::NoAudience)?;
        let id = api.scope_id(scope).ok_or(DenyReason::Undefined)?;
        if self.restricted && !self.restriction.is_some_and(|grant| grant.contains(id)) {
            return Err(DenyReason::NotGrantedToClient);
        }
        Ok(Some(id))
    }

    /// RBAC: allows each waiting scope that a role of the user or one of the
    /// user's direct permissions grants on this API. The others stay refused.
    fn permit(&self, verdicts: &mut Verdicts<'a>, mut waiting: Waiting<'a>) {
        let (Some(user), Some(api)) = (self.rbac, self.context.api) else {
            return; // not under RBAC: nothing waits
        };
        let mut allow = |at: usize| {
            if let Some(entry) = verdicts.get_mut(at) {
                entry.state = State::Granted;
            }
        };
        let mut role_sets = user
            .roles
            .iter()
            .filter_map(|name| self.context.policy.role(name))
            .filter_map(|role| role.set_for(api.index()));
        // A role is looked up only while some scope still waits.
        while !waiting.is_empty() {
            let Some(set) = role_sets.next() else {
                break;
            };
            waiting.retain(|&mut (at, _, id)| {
                let allowed = set.contains(id);
                if allowed {
                    allow(at);
                }
                !allowed
            });
        }
        let direct = |scope: &str| {
            user.permissions
                .iter()
                .any(|permission| permission.audience == api.audience() && permission.scope == scope)
        };
        for &(at, scope, _) in &waiting {
            if direct(scope) {
                allow(at);
            }
        }
    }
}

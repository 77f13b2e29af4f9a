//! `grant()`: the decision, and what it returns.

use std::collections::{HashMap, HashSet};
use std::fmt;

use smallvec::SmallVec;

use crate::error::GrantError;
use crate::policy::{Api, Client, Policy};
use crate::request::{ConsentRecord, Request, User};
use crate::scope::{
    is_oidc_scope, oidc_description, scan_fits, FirstSeen, Scope, ScopeParam, INLINE_TOKENS, OFFLINE_ACCESS,
    SCAN_BUDGET,
};
use crate::scope_set::ScopeSet;
use crate::vocab::{ClientAccess, Flow, Prompt, Subject, UnknownScopes, UserAccess};

/// Why a requested scope was left out of a grant (DESIGN §3.3, §3.4).
///
/// The reason is the first check the scope failed, in this order. For an
/// OIDC scope: [`RequiresUser`](Self::RequiresUser),
/// [`OfflineAccessNotAllowed`](Self::OfflineAccessNotAllowed), then consent.
/// For an API scope: [`NoAudience`](Self::NoAudience),
/// [`Undefined`](Self::Undefined), [`NotGrantedToClient`](Self::NotGrantedToClient),
/// [`NotPermitted`](Self::NotPermitted), then consent
/// ([`ConsentDenied`](Self::ConsentDenied)).
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
    /// `consent_denied`: the scope was on the consent prompt and the user did not approve it.
    ConsentDenied,
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
pub enum Verdict {
    /// The scope goes into the token.
    Granted,
    /// The scope is left out, for this reason.
    Denied(DenyReason),
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

type Verdicts<'a> = SmallVec<[(&'a str, State); INLINE_TOKENS]>;

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

/// The scopes that go into the token, with a verdict on every asked scope (DESIGN §3.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant<'a> {
    audience: Option<&'a str>,
    // INVARIANT: one entry per asked scope, in asked order; no `Asked` or `Approved` state.
    verdicts: Verdicts<'a>,
    // INVARIANT: the size of the requested set, which holds every asked scope when it is not 0.
    requested: usize,
    consent_record: Option<ConsentRecord>,
}

impl<'a> Grant<'a> {
    /// The audience the token is for (the request's, or the policy's default).
    pub fn audience(&self) -> Option<&'a str> {
        self.audience
    }

    /// The granted scopes, in request order (defaults in definition order).
    pub fn scopes(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.verdicts
            .iter()
            .filter(|(_, state)| *state == State::Granted)
            .map(|(scope, _)| *scope)
    }

    /// Whether `scope` was granted.
    pub fn is_granted(&self, scope: &str) -> bool {
        self.scopes().any(|granted| granted == scope)
    }

    /// The refused scopes with their reasons, in request order.
    pub fn denied(&self) -> impl Iterator<Item = (&'a str, DenyReason)> + '_ {
        self.verdicts.iter().filter_map(|&(scope, state)| match state {
            State::Denied(reason) => Some((scope, reason)),
            State::Granted | State::Asked | State::Approved => None,
        })
    }

    /// A verdict for every asked scope, in request order.
    pub fn verdicts(&self) -> impl Iterator<Item = (&'a str, Verdict)> + '_ {
        self.verdicts.iter().map(|&(scope, state)| {
            let verdict = match state {
                State::Denied(reason) => Verdict::Denied(reason),
                // INVARIANT: a grant holds no `Asked` or `Approved` state.
                State::Granted | State::Asked | State::Approved => Verdict::Granted,
            };
            (scope, verdict)
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
    /// response must carry `scope` (RFC 6749 §5.1).
    pub fn scope_changed(&self) -> bool {
        let granted = self.scopes().count();
        // INVARIANT: granted ⊆ asked ⊆ requested when anything was requested,
        // so the sets are equal exactly when their sizes are.
        match self.requested {
            0 => granted > 0,
            requested => granted != requested,
        }
    }

    /// Whether a refresh token may be issued: `offline_access` was granted.
    pub fn refresh_token(&self) -> bool {
        self.is_granted(OFFLINE_ACCESS)
    }

    /// The consent record to store, after the user approved a prompt.
    pub fn consent_record(&self) -> Option<&ConsentRecord> {
        self.consent_record.as_ref()
    }

    /// Takes the consent record to store, after the user approved a prompt.
    pub fn take_consent_record(&mut self) -> Option<ConsentRecord> {
        self.consent_record.take()
    }
}

/// One scope on a consent prompt, with the text to show the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PromptScope<'a> {
    scope: &'a str,
    description: &'a str,
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
}

/// A decision waiting for the user's consent (DESIGN §3.4).
///
/// The host shows [`scopes`](Self::scopes) and answers with
/// [`approve`](Self::approve) or [`deny`](Self::deny). A host that shows the
/// prompt in one HTTP exchange and reads the answer in another decides again
/// on the same request, then answers that decision.
#[derive(Debug, Clone)]
pub struct ConsentPrompt<'a> {
    // INVARIANT: at least one `Asked` state; no `Approved` state.
    pending: Grant<'a>,
    api: Option<&'a Api>,
    user_id: &'a str,
    client_id: &'a str,
    consents: &'a [ConsentRecord],
    now: Option<u64>,
}

impl<'a> ConsentPrompt<'a> {
    /// The audience the token would be for.
    pub fn audience(&self) -> Option<&'a str> {
        self.pending.audience
    }

    /// The scopes to ask about, in request order, with their descriptions.
    pub fn scopes(&self) -> impl Iterator<Item = PromptScope<'a>> + '_ {
        self.pending
            .verdicts
            .iter()
            .filter(|(_, state)| *state == State::Asked)
            .map(|&(scope, _)| PromptScope {
                scope,
                description: oidc_description(scope)
                    .or_else(|| self.api.and_then(|api| api.description(scope)))
                    .unwrap_or_default(),
            })
    }

    /// The scopes granted without asking: allowed and already consented to.
    pub fn granted(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.pending.scopes()
    }

    /// The scopes already refused, with their reasons; they are not on the prompt.
    pub fn denied(&self) -> impl Iterator<Item = (&'a str, DenyReason)> + '_ {
        self.pending.denied()
    }

    /// The user approved `approved`, a subset of the prompt's scopes.
    ///
    /// Granted are the scopes that needed no prompt and the approved ones;
    /// prompt scopes not approved are denied with
    /// [`DenyReason::ConsentDenied`]. The grant carries a new
    /// [consent record](Grant::consent_record) for this user, client and
    /// audience, without expiry: the scopes of every matching unexpired record
    /// and the approved ones.
    ///
    /// # Errors
    ///
    /// [`GrantError::ApprovalNotOnPrompt`] (`invalid_request`) when an
    /// approved scope was not on the prompt: a tampered form never widens a grant.
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
                positions = Some(asked.map(|(at, &(scope, _))| (scope, at)).collect());
            }
            let at = match &positions {
                Some(positions) => positions.get(scope).copied(),
                None => {
                    compared += grant.verdicts.len();
                    grant.verdicts.iter().position(|&(asked, _)| asked == scope)
                }
            };
            match at.and_then(|at| grant.verdicts.get_mut(at)) {
                Some((_, state @ (State::Asked | State::Approved))) => *state = State::Approved,
                _ => {
                    return Err(GrantError::ApprovalNotOnPrompt {
                        scope: scope.to_owned(),
                    })
                }
            }
        }
        // The new record: every matching, unexpired record's scopes (also
        // under `prompt=consent`), then the approved ones.
        let matching = self
            .consents
            .iter()
            .filter(|record| record.applies_to(self.user_id, self.client_id, grant.audience, self.now));
        let approved = grant
            .verdicts
            .iter()
            .filter(|(_, state)| *state == State::Approved)
            .map(|&(scope, _)| scope);
        let mut kept: Vec<&str> = Vec::new();
        let mut first_seen = FirstSeen::default();
        for scope in matching
            .flat_map(|record| record.scopes.iter().map(Scope::as_str))
            .chain(approved)
        {
            if first_seen.is_new(&kept, scope) {
                kept.push(scope);
            }
        }
        // INVARIANT: held and asked scopes are valid tokens, so `Scope::new` succeeds.
        let scopes: Vec<Scope> = kept
            .into_iter()
            .filter_map(|scope| Scope::new(scope).ok())
            .collect();
        for (_, state) in &mut grant.verdicts {
            *state = match *state {
                State::Approved => State::Granted,
                State::Asked => State::Denied(DenyReason::ConsentDenied),
                settled => settled,
            };
        }
        grant.consent_record = Some(ConsentRecord {
            user_id: self.user_id.to_owned(),
            client_id: self.client_id.to_owned(),
            audience: grant.audience.map(str::to_owned),
            scopes,
            expires_at: None,
        });
        Ok(grant)
    }

    /// The user refused the prompt.
    ///
    /// Returns the error to answer with: [`GrantError::ConsentDenied`] (`access_denied`).
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
    /// 3. a user flow has a user, client credentials have none, and a refresh
    ///    has an original scope, else `invalid_request`;
    /// 4. the scope parameter parses and is within the limits, else `invalid_scope`;
    /// 5. a named audience is an API (else `invalid_target`); with none named,
    ///    the policy's default audience is used; client credentials with no
    ///    audience at all are `invalid_request`;
    /// 6. the API admits the client: for client credentials, `client_access` is
    ///    not `deny_all` and the client has a `subject: client` grant; for user
    ///    flows, `user_access` is not `deny_all` and, under
    ///    `require_client_grant`, the client has a `subject: user` grant; else
    ///    `access_denied`;
    /// 7. under `unknown_scopes = "reject"`, every token is an OIDC scope or
    ///    defined by the API, else `invalid_scope`;
    /// 8. a refresh asks only for scopes of its original scope (RFC 6749 §6),
    ///    else `invalid_scope`.
    ///
    /// The asked scopes are the parameter's distinct tokens in order; with none,
    /// client credentials ask for the client's whole grant, `authorization_code`
    /// for the API's default scopes, and a refresh for the original scope.
    ///
    /// Each asked scope then gets a verdict: the first check it fails is the
    /// [`DenyReason`]. An OIDC scope fails in client credentials, and
    /// `offline_access` fails without the `refresh_token` grant type or the
    /// API's `allow_offline_access`. An API scope fails with no audience, when
    /// undefined, when the client's grant restricts it and lacks it, and, in
    /// user flows on an RBAC API, when the user's effective permissions lack it.
    ///
    /// Last, consent: only `authorization_code` asks, and only a third-party
    /// client, or a first-party one for an API that does not allow skipping
    /// consent. Scopes a matching, unexpired consent record holds are covered
    /// (none under [`Prompt::Consent`]); if any allowed scope is not, the
    /// decision is [`Decision::ConsentRequired`].
    ///
    /// # Errors
    ///
    /// A [`GrantError`] for the first request-level check that fails; its
    /// [`code`](GrantError::code) is the OAuth error to answer with.
    pub fn grant<'a>(&'a self, request: &Request<'a>) -> Result<Decision<'a>, GrantError> {
        let checked = Checked::new(self, request)?;
        Ok(checked.decide())
    }
}

/// A request that passed the request-level checks, with what the verdicts need.
struct Checked<'r, 'a> {
    request: &'r Request<'a>,
    policy: &'a Policy,
    client: &'a Client,
    flow: Flow,
    user: Option<&'a User>,
    api: Option<(usize, &'a Api)>,
    param: ScopeParam<'a>,
    original: Option<ScopeParam<'a>>,
}

impl<'r, 'a> Checked<'r, 'a> {
    /// DESIGN §3.1: the request-level checks, in order.
    fn new(policy: &'a Policy, request: &'r Request<'a>) -> Result<Self, GrantError> {
        let parts = request;
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
        // 3. A user exactly when the flow has one; a refresh has its original scope.
        match (flow.has_user(), parts.user) {
            (true, None) => return Err(GrantError::MissingUser { flow }),
            (false, Some(_)) => return Err(GrantError::UnexpectedUser),
            _ => {}
        }
        if flow == Flow::RefreshToken && parts.original_scope.is_none() {
            return Err(GrantError::MissingOriginalScope);
        }
        // 4. The scope parameter parses, within the limits.
        let limits = policy.limits();
        let param = match parts.scope {
            Some(raw) => ScopeParam::parse(raw, limits).map_err(GrantError::Scope)?,
            None => ScopeParam::default(),
        };
        // 5. The audience (RFC 8707 §2: an unknown one is `invalid_target`).
        let api = match parts.audience {
            Some(audience) => {
                Some(
                    policy
                        .api_entry(audience)
                        .ok_or_else(|| GrantError::UnknownAudience {
                            audience: audience.to_owned(),
                        })?,
                )
            }
            None => policy.default_api_entry(),
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
                Flow::AuthorizationCode | Flow::RefreshToken => match api.user_access() {
                    UserAccess::AllowAll => true,
                    UserAccess::RequireClientGrant => client.grant_for(Subject::User, index).is_some(),
                    UserAccess::DenyAll => false,
                },
            };
            if !admitted {
                return Err(GrantError::ApiAccessDenied {
                    client_id: client.client_id().to_owned(),
                    audience: api.audience().to_owned(),
                    subject: subject_of(flow),
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
                let original = ScopeParam::parse(raw, limits).map_err(GrantError::OriginalScope)?;
                if let Some(token) = param.first_not_in(&original) {
                    return Err(GrantError::ScopeWidened {
                        scope: token.to_owned(),
                    });
                }
                Some(original)
            }
            _ => None,
        };
        Ok(Checked {
            request,
            policy,
            client,
            flow,
            user: parts.user,
            api,
            param,
            original,
        })
    }

    /// DESIGN §3.2: the asked scopes, and the size of the requested set.
    /// Scopes the request does not name (an API's defaults, a client's grant)
    /// are gathered into `unnamed`; the request's own are borrowed, not copied.
    fn asked<'s>(&'s self, unnamed: &'s mut SmallVec<[&'a str; INLINE_TOKENS]>) -> (&'s [&'a str], usize) {
        if !self.param.is_empty() {
            return (self.param.tokens(), self.param.tokens().len());
        }
        let mut names = |api: &'a Api, ids: &mut dyn Iterator<Item = usize>| {
            unnamed.extend(ids.filter_map(|id| api.scope_at(id)).map(Scope::as_str));
        };
        match (self.flow, self.api) {
            (Flow::ClientCredentials, Some((index, api))) => {
                let grant = self.client.grant_for(Subject::Client, index);
                names(api, &mut grant.into_iter().flat_map(ScopeSet::iter));
            }
            (Flow::AuthorizationCode, Some((_, api))) => {
                names(api, &mut api.default_scope_ids().iter().copied());
            }
            (Flow::RefreshToken, _) => {
                let original = self.original.as_ref().map(ScopeParam::tokens).unwrap_or_default();
                return (original, original.len());
            }
            (Flow::ClientCredentials | Flow::AuthorizationCode, None) => {}
        }
        (unnamed, 0)
    }

    /// DESIGN §3.3–§3.5: a verdict for every asked scope, then consent.
    fn decide(&self) -> Decision<'a> {
        let mut unnamed = SmallVec::new();
        let (asked, requested) = self.asked(&mut unnamed);
        let verdicts = Rules::new(self).verdicts(asked);
        let pending = Grant {
            audience: self.api.map(|(_, api)| api.audience()),
            verdicts,
            requested,
            consent_record: None,
        };
        if !pending.verdicts.iter().any(|(_, state)| *state == State::Asked) {
            return Decision::Granted(pending);
        }
        let parts = self.request;
        Decision::ConsentRequired(ConsentPrompt {
            pending,
            api: self.api.map(|(_, api)| api),
            user_id: self.user.map(|user| user.id.as_str()).unwrap_or_default(),
            client_id: self.client.client_id(),
            consents: parts.consents,
            now: parts.now,
        })
    }
}

/// What the per-scope checks read, resolved once per request.
#[derive(Debug)]
struct Rules<'a> {
    policy: &'a Policy,
    flow: Flow,
    client: &'a Client,
    api: Option<(usize, &'a Api)>,
    // The client grant that restricts API scopes, if one does.
    restriction: Option<&'a ScopeSet>,
    // Under RBAC in a user flow: the user whose roles and permissions decide.
    rbac: Option<&'a User>,
    // When consent is required: the records that cover scopes, if any may.
    consent: Option<SmallVec<[&'a ConsentRecord; 8]>>,
}

/// An asked scope that passed every check before RBAC: where it is in the
/// request, and its id in the audience's API.
type Waiting<'a> = SmallVec<[(usize, &'a str, usize); INLINE_TOKENS]>;

impl<'a> Rules<'a> {
    fn new(checked: &Checked<'_, 'a>) -> Self {
        let parts = checked.request;
        let (flow, client, api) = (checked.flow, checked.client, checked.api);
        let restriction = api.and_then(|(index, api)| match flow {
            Flow::ClientCredentials => client.grant_for(Subject::Client, index),
            Flow::AuthorizationCode | Flow::RefreshToken => (api.user_access()
                == UserAccess::RequireClientGrant)
                .then(|| client.grant_for(Subject::User, index))
                .flatten(),
        });
        let rbac = checked
            .user
            .filter(|_| flow.has_user() && api.is_some_and(|(_, api)| api.rbac()));
        // DESIGN §3.4: only authorization_code asks; third-party clients always,
        // first-party ones when the API does not let them skip (never with no API).
        let consent_required = flow == Flow::AuthorizationCode
            && (!client.first_party() || api.is_some_and(|(_, api)| !api.allow_skipping_consent()));
        let consent = consent_required.then(|| match (parts.prompt, checked.user) {
            (Prompt::Default, Some(user)) => {
                let audience = api.map(|(_, api)| api.audience());
                parts
                    .consents
                    .iter()
                    .filter(|record| record.applies_to(&user.id, client.client_id(), audience, parts.now))
                    .collect()
            }
            // `prompt=consent` asks again, whatever was remembered.
            _ => SmallVec::new(),
        });
        Rules {
            policy: checked.policy,
            flow,
            client,
            api,
            restriction,
            rbac,
            consent,
        }
    }

    /// DESIGN §3.3, then §3.4: a verdict for every asked scope, in order.
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
                let state = match self.allowed(scope) {
                    Err(reason) => State::Denied(reason),
                    Ok(Some(id)) if self.rbac.is_some() => {
                        waiting.push((at, scope, id));
                        // Refused unless a role or a direct permission allows it, below.
                        State::Denied(DenyReason::NotPermitted)
                    }
                    Ok(_) => State::Granted,
                };
                (scope, state)
            })
            .collect();
        self.permit(&mut verdicts, waiting);
        if let Some(records) = &self.consent {
            // A scan of the records per scope within the scan budget (no
            // heap); beyond, one hash set of what they hold, so that long
            // records and a long request cost linear time together.
            let held_count: usize = records.iter().map(|record| record.scopes.len()).sum();
            let checked = verdicts
                .iter()
                .filter(|(_, state)| *state == State::Granted)
                .count();
            let held: Option<HashSet<&str>> = (!scan_fits(checked, held_count)).then(|| {
                let scopes = records.iter().flat_map(|record| &record.scopes);
                scopes.map(Scope::as_str).collect()
            });
            let consented = |scope: &str| match &held {
                Some(held) => held.contains(scope),
                None => records.iter().any(|record| record.holds(scope)),
            };
            for (scope, state) in &mut verdicts {
                if *state == State::Granted && !consented(scope) {
                    *state = State::Asked;
                }
            }
        }
        verdicts
    }

    /// Every check before RBAC, the first failing one being the reason. An API
    /// scope that passes them comes back with its id, for RBAC.
    fn allowed(&self, scope: &str) -> Result<Option<usize>, DenyReason> {
        if is_oidc_scope(scope) {
            if self.flow == Flow::ClientCredentials {
                return Err(DenyReason::RequiresUser);
            }
            let offline_refused = !self.client.allows(Flow::RefreshToken)
                || self.api.is_some_and(|(_, api)| !api.allow_offline_access());
            if scope == OFFLINE_ACCESS && offline_refused {
                return Err(DenyReason::OfflineAccessNotAllowed);
            }
            return Ok(None);
        }
        let (_, api) = self.api.ok_or(DenyReason::NoAudience)?;
        let id = api.scope_id(scope).ok_or(DenyReason::Undefined)?;
        if self.restriction.is_some_and(|grant| !grant.contains(id)) {
            return Err(DenyReason::NotGrantedToClient);
        }
        Ok(Some(id))
    }

    /// RBAC: allows each waiting scope that a role of the user or one of the
    /// user's direct permissions grants on this API. The others stay refused.
    fn permit(&self, verdicts: &mut Verdicts<'a>, mut waiting: Waiting<'a>) {
        let (Some(user), Some((index, api))) = (self.rbac, self.api) else {
            return; // not under RBAC: nothing waits
        };
        let mut allow = |at: usize| {
            if let Some((_, state)) = verdicts.get_mut(at) {
                *state = State::Granted;
            }
        };
        let mut role_sets = user
            .roles
            .iter()
            .filter_map(|name| self.policy.role(name))
            .filter_map(|role| role.set_for(index));
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

fn subject_of(flow: Flow) -> Subject {
    match flow {
        Flow::ClientCredentials => Subject::Client,
        Flow::AuthorizationCode | Flow::RefreshToken => Subject::User,
    }
}

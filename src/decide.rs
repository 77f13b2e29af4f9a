//! `grant()`: the decision itself, from a request to a [`Decision`].

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use smallvec::SmallVec;

use crate::consent::Remembered;
use crate::error::GrantError;
use crate::grant::{Context, DenyReason, Entry, Grant, State, Verdicts, NO_ID};
use crate::policy::{Api, Policy};
use crate::prompt::ConsentPrompt;
use crate::redirect::is_verifiable_redirect;
use crate::request::{Request, User};
use crate::scope::{is_oidc_scope, Limits, ScopeParam, INLINE_TOKENS, OFFLINE_ACCESS};
use crate::scope_set::ScopeSet;
use crate::vocab::{ClientAccess, Flow, Prompt, Subject, UnknownScopes, UserAccess};

/// The outcome of a request that was not refused as a whole.
///
/// Serialized, a decision is one audit-log line: `{"decision":"granted",…}`
/// with the [`Grant`]'s fields, or `{"decision":"consent_required",…}` with
/// the [`ConsentPrompt`]'s.
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

    /// Answers the prompt the user saw, whose identity the consent form
    /// carried back as `shown`, with the scopes the user approved: the
    /// second half of a consent round trip across two HTTP requests (see
    /// [`ConsentPrompt`]). This decision must be made again, now, on the
    /// same [`RequestParams`](crate::RequestParams) and the records the host
    /// holds now.
    ///
    /// # Errors
    ///
    /// [`GrantError::PromptChanged`] when this decision's prompt is not the
    /// one shown (or there is no prompt any more): show the new decision
    /// instead. Otherwise as [`ConsentPrompt::approve`].
    pub fn answer<I>(self, shown: impl AsRef<str>, approved: I) -> Result<Grant<'a>, GrantError>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        match self {
            Decision::ConsentRequired(prompt) => prompt.answer(shown, approved),
            Decision::Granted(_) => Err(GrantError::PromptChanged),
        }
    }
}

impl Serialize for Decision<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        match self {
            Decision::Granted(grant) => {
                map.serialize_entry("decision", "granted")?;
                grant.serialize_fields(&mut map)?;
            }
            Decision::ConsentRequired(prompt) => {
                map.serialize_entry("decision", "consent_required")?;
                prompt.serialize_fields(&mut map)?;
            }
        }
        map.end()
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
            (_, Some(audience)) => {
                Some(
                    policy
                        .api_entry(audience)
                        .ok_or_else(|| GrantError::UnknownAudience {
                            audience: audience.to_owned(),
                        })?,
                )
            }
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
                    subject: if flow.has_user() {
                        Subject::User
                    } else {
                        Subject::Client
                    },
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
        Ok(Decision::ConsentRequired(ConsentPrompt::new(pending)))
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

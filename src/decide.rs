//! `grant()`: the decision itself, from a request to a [`Decision`].

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use smallvec::SmallVec;

use std::collections::HashSet;

use crate::consent::Remembered;
use crate::error::GrantError;
use crate::grant::{Context, DenyReason, Entry, Grant, Restriction, State, Verdicts, NO_ID};
use crate::intern::token_hash;
use crate::policy::{Api, Class, Client, Policy};
use crate::prompt::ConsentPrompt;
use crate::redirect::is_verifiable_redirect;
use crate::request::{Request, User};
use crate::scope::{same_token, scan_fits, Limits, Parsed, Token, INLINE_TOKENS, OFFLINE_ACCESS};
use crate::scope_set::ScopeSet;
use crate::vocab::{ClientAccess, Flow, Prompt, Subject, UnknownScopes, UserAccess};
use crate::work::work;

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
    /// This decision as a consent prompt: the grant so far becomes pending.
    fn into_prompt(self) -> Self {
        match self {
            Decision::Granted(pending) => Decision::ConsentRequired(ConsentPrompt::new(pending)),
            prompt @ Decision::ConsentRequired(_) => prompt,
        }
    }

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

impl Decision<'_> {
    /// The user refused the prompt they saw: [`GrantError::ConsentDenied`]
    /// (`access_denied`), whatever this decision is now. Refusing never
    /// needs the prompt's identity: it grants nothing.
    pub fn deny(self) -> GrantError {
        GrantError::ConsentDenied
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
        // The parsed parameters stay in this frame: they are large (inline
        // room for 16 tokens and their hashes) and only ever borrowed.
        let (client, prompt) = self.check_client_and_parameters(request)?;
        let mut param = Parsed::default();
        if let Some(raw) = request.scope {
            // 4. The scope parameter parses, within the limits.
            param
                .parse_into(raw, self.limits(), self.seed())
                .map_err(GrantError::Scope)?;
        }
        let api = self.check_audience(request, client)?;
        self.check_unknown_scopes(&param, api)?;
        let mut original = Parsed::default();
        if let (Flow::RefreshToken, Some(raw)) = (request.flow, request.original_scope) {
            // 8. A refresh never widens the original grant (RFC 6749 §6); its
            // original scope comes from the host's store, so no limit applies.
            original
                .parse_into(raw, UNLIMITED, self.seed())
                .map_err(GrantError::OriginalScope)?;
            if let Some(token) = param.first_not_in(&original) {
                return Err(GrantError::ScopeWidened {
                    scope: token.to_owned(),
                });
            }
        }
        let redirect_uri = sent(request.redirect_uri).filter(|_| request.flow == Flow::AuthorizationCode);
        let context = Context {
            policy: self,
            client,
            api: api.map(|(_, api)| api),
            flow: request.flow,
            user: request.user,
            consents: request.consents,
            now: request.now,
            prompt,
            redirect_uri,
            unverifiable_redirect: redirect_uri.is_some_and(|uri| !is_verifiable_redirect(uri)),
        };
        decide(context, &param, &original)
    }

    /// Checks 1 to 3: the client, its flow, the user, the original scope of
    /// a refresh, and the prompt of an authorization request.
    fn check_client_and_parameters<'a>(
        &'a self,
        request: &Request<'a>,
    ) -> Result<(&'a Client, Prompt), GrantError> {
        // 1. The client is defined.
        let client = self
            .client(request.client_id)
            .ok_or_else(|| GrantError::UnknownClient {
                client_id: request.client_id.to_owned(),
            })?;
        // 2. The flow is one of its grant types.
        let flow = request.flow;
        if !client.allows(flow) {
            return Err(GrantError::FlowNotAllowed {
                client_id: client.client_id().to_owned(),
                flow,
            });
        }
        // 3. A user exactly when the flow has one; a refresh has its original
        // scope; the prompt of an authorization request is valid. An empty
        // parameter counts as not sent (RFC 6749 §3.1).
        match (flow.has_user(), request.user) {
            (true, None) => return Err(GrantError::MissingUser { flow }),
            (false, Some(_)) => return Err(GrantError::UnexpectedUser),
            _ => {}
        }
        if flow == Flow::RefreshToken && request.original_scope.is_none() {
            return Err(GrantError::MissingOriginalScope);
        }
        let prompt = match sent(request.prompt).filter(|_| flow == Flow::AuthorizationCode) {
            Some(raw) => Prompt::parse(raw).map_err(GrantError::Prompt)?,
            None => Prompt::default(),
        };
        Ok((client, prompt))
    }

    /// Checks 5 and 6: the audience in force, and the API's admission of
    /// this client for this flow.
    fn check_audience<'a>(
        &'a self,
        request: &Request<'a>,
        client: &'a Client,
    ) -> Result<Option<(usize, &'a Api)>, GrantError> {
        let flow = request.flow;
        // 5. The audience (RFC 8707 §2: an unknown one is `invalid_target`);
        // a refresh keeps its grant's (RFC 9700 §4.14.2).
        let api = match (flow, request.audience) {
            (Flow::RefreshToken, named) => {
                let original =
                    match request.original_audience {
                        Some(audience) => Some(self.api_entry(audience).ok_or_else(|| {
                            GrantError::UnknownOriginalAudience {
                                audience: audience.to_owned(),
                            }
                        })?),
                        None => None,
                    };
                if let Some(named) = named.filter(|&named| Some(named) != request.original_audience) {
                    return Err(GrantError::AudienceChanged {
                        audience: named.to_owned(),
                        original: request.original_audience.map(str::to_owned),
                    });
                }
                original
            }
            (_, Some(audience)) => {
                Some(
                    self.api_entry(audience)
                        .ok_or_else(|| GrantError::UnknownAudience {
                            audience: audience.to_owned(),
                        })?,
                )
            }
            (_, None) => self.default_api_entry(),
        };
        if flow == Flow::ClientCredentials && api.is_none() {
            return Err(GrantError::MissingAudience);
        }
        // 6. The API admits this client for this flow.
        if let Some((_, api)) = api {
            let open = match flow {
                Flow::ClientCredentials => api.client_access() != ClientAccess::DenyAll,
                Flow::AuthorizationCode | Flow::RefreshToken | Flow::DeviceCode => {
                    api.user_access() != UserAccess::DenyAll
                }
            };
            let admitted = open && Restriction::of(flow, client, api).has_grant();
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
        Ok(api)
    }

    /// Check 7: under `unknown_scopes = "reject"`, every token of the scope
    /// parameter is an OIDC scope or defined by the API.
    fn check_unknown_scopes(&self, param: &Parsed<'_>, api: Option<(usize, &Api)>) -> Result<(), GrantError> {
        if self.unknown_scopes() != UnknownScopes::Reject {
            return Ok(());
        }
        let unknown = param.tokens().iter().find(|token| {
            let class = match api {
                Some((_, api)) => api.classify(token.text, token.hash),
                None => self.classify_without_api(token.text, token.hash),
            };
            class == Class::Unknown
        });
        match unknown {
            Some(token) => Err(GrantError::UnknownScope {
                scope: token.text.to_owned(),
            }),
            None => Ok(()),
        }
    }
}

/// An empty parameter counts as not sent (RFC 6749 §3.1).
fn sent(parameter: Option<&str>) -> Option<&str> {
    parameter.filter(|value| !value.is_empty())
}

/// No limit: a refresh's original scope comes from the host's store, not from the client.
const UNLIMITED: Limits = Limits {
    max_scope_length: usize::MAX,
    max_scope_tokens: usize::MAX,
};

/// The asked scopes and their hashes: the parameter's own, or, with none, the
/// scopes the request did not name (an API's defaults, a client's grant, a
/// refresh's original scope).
struct Asked<'s, 'a> {
    tokens: &'s [Token<'a>],
    /// The size of the requested set (for `scope_changed`).
    requested: usize,
}

/// Which scopes are asked for, and the requested set's size.
fn asked<'s, 'a>(
    context: &Context<'a>,
    param: &'s Parsed<'a>,
    original: &'s Parsed<'a>,
    unnamed: &'s mut SmallVec<[Token<'a>; INLINE_TOKENS]>,
) -> Asked<'s, 'a> {
    let own = |param: &'s Parsed<'a>| Asked {
        tokens: param.tokens(),
        requested: param.tokens().len(),
    };
    if !param.is_empty() {
        return own(param);
    }
    let ids: Option<(&'a Api, &mut dyn Iterator<Item = usize>)> = match (context.flow, context.api) {
        (Flow::RefreshToken, _) => return own(original),
        (Flow::ClientCredentials, Some(api)) => {
            let grant = context.client.grant_for(Subject::Client, api.index());
            Some((api, &mut grant.into_iter().flat_map(ScopeSet::iter)))
        }
        (Flow::AuthorizationCode | Flow::DeviceCode, Some(api)) => {
            Some((api, &mut api.default_scope_ids().iter().copied()))
        }
        _ => None,
    };
    if let Some((api, ids)) = ids {
        let seed = context.policy.seed();
        for scope in ids.filter_map(|id| api.scope_at(id)) {
            let text = scope.as_str();
            unnamed.push(Token {
                text,
                hash: token_hash(seed, text.as_bytes()),
            });
        }
    }
    Asked {
        tokens: unnamed,
        requested: 0,
    }
}

/// The verdicts, then consent, then the decision.
///
/// The grant is made first, in the value returned, and its verdicts are
/// filled where they stand: built apart and moved in, the verdicts' inline
/// room (about 400 bytes) was copied twice a decision. One copy remains: the
/// finished value into the return slot, which the compiler does not elide
/// for an enum filled in place (a second place the value left from would
/// add another).
fn decide<'a>(
    context: Context<'a>,
    param: &Parsed<'a>,
    original: &Parsed<'a>,
) -> Result<Decision<'a>, GrantError> {
    let mut unnamed = SmallVec::new();
    let asked = asked(&context, param, original, &mut unnamed);
    let mut decision = Ok(Decision::Granted(Grant {
        context,
        verdicts: Verdicts::new(),
        requested: asked.requested,
        refresh_token: false,
        consent_record: None,
    }));
    let asks = match &mut decision {
        Ok(Decision::Granted(grant)) => verdicts_and_consent(grant, &asked, original),
        _ => false,
    };
    if asks {
        decision = match decision {
            // OpenID Connect Core §3.1.2.6: the client asked that the user see nothing.
            Ok(Decision::Granted(grant)) if grant.context.prompt.none() => Err(GrantError::ConsentRequired),
            decision => decision.map(Decision::into_prompt),
        };
    }
    decision
}

/// Fills the verdicts of `grant` for the asked scopes, then applies consent;
/// whether some scope is to be asked.
fn verdicts_and_consent<'a>(grant: &mut Grant<'a>, asked: &Asked<'_, 'a>, original: &Parsed<'_>) -> bool {
    let (context, verdicts) = (&grant.context, &mut grant.verdicts);
    if asked.tokens.len() > INLINE_TOKENS {
        verdicts.reserve_exact(asked.tokens.len());
    }
    let rules = Rules::new(context);
    let offline = rules.verdicts(asked.tokens, verdicts);
    let (refresh_token, asks) = match context.flow {
        Flow::AuthorizationCode | Flow::DeviceCode => {
            let asks = consent_interactive(context, verdicts);
            let granted = offline.and_then(|at| verdicts.get(at));
            (granted.is_some_and(|entry| entry.state == State::Granted), asks)
        }
        Flow::RefreshToken => (
            consent_refresh(context, verdicts, &rules, original, offline),
            false,
        ),
        Flow::ClientCredentials => (false, false),
    };
    grant.refresh_token = refresh_token;
    asks
}

/// Consent in `authorization_code` and `device_code`: each allowed scope
/// that needs consent is covered by a record, declined by one, or asked.
/// Returns whether some scope is asked.
fn consent_interactive(context: &Context<'_>, verdicts: &mut Verdicts<'_>) -> bool {
    let must_ask = context.must_ask();
    if !must_ask && !context.api.is_some_and(Api::has_always) {
        return false; // nothing needs consent: no scan of the verdicts
    }
    let needs = |entry: &Entry<'_>| must_ask || context.one_time(entry.id);
    let waiting = verdicts
        .iter()
        .filter(|entry| entry.state == State::Granted && needs(entry))
        .count();
    if waiting == 0 {
        return false;
    }
    let remembered = match context.remembered_counts() {
        true => Remembered::new(context.consents, context.key(), waiting),
        false => Remembered::default(),
    };
    let mut asks = false;
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
        asks |= entry.state == State::Asked;
    }
    asks
}

/// Consent in a refresh: a scope that needs consent must still be held by a
/// matching record, and one a matching record declines never comes back.
/// Returns whether a refresh token may be issued: the original scope holds
/// `offline_access` and it would be granted if asked.
fn consent_refresh(
    context: &Context<'_>,
    verdicts: &mut Verdicts<'_>,
    rules: &Rules<'_, '_>,
    original: &Parsed<'_>,
    offline: Option<usize>,
) -> bool {
    let remembered = Remembered::new(context.consents, context.key(), verdicts.len() + 1);
    let consented = |scope: &str, id: u32| !context.lacks_consent(&remembered, scope, id);
    for entry in verdicts.iter_mut().filter(|entry| entry.state == State::Granted) {
        if !consented(entry.scope, entry.id) {
            entry.state = State::Denied(DenyReason::ConsentMissing);
        }
    }
    let kept = original.contains(OFFLINE_ACCESS);
    kept && match offline.and_then(|at| verdicts.get(at)) {
        Some(entry) => entry.state == State::Granted,
        // Not asked this time: would it be granted if it were?
        None => rules.oidc(OFFLINE_ACCESS) == State::Granted && consented(OFFLINE_ACCESS, NO_ID),
    }
}

/// What the per-scope checks read, resolved once per request.
#[derive(Debug)]
struct Rules<'c, 'a> {
    context: &'c Context<'a>,
    // The client grant API scopes are held to.
    restriction: Restriction<'a>,
    // Whether `offline_access` is refused whatever else.
    offline_refused: bool,
    // Under RBAC in a user flow: the user whose roles and permissions decide.
    rbac: Option<&'a User>,
}

impl<'c, 'a> Rules<'c, 'a> {
    fn new(context: &'c Context<'a>) -> Self {
        let rbac = context
            .user
            .filter(|_| context.flow.has_user() && context.api.is_some_and(Api::rbac));
        Rules {
            context,
            restriction: context.restriction(),
            offline_refused: !context.client.allows(Flow::RefreshToken)
                || context.api.is_some_and(|api| !api.allow_offline_access()),
            rbac,
        }
    }

    /// A verdict for every asked scope, in order, before consent: one probe
    /// of the API's table classifies a token; bit tests do the rest. Returns
    /// where `offline_access` is among them, if it was asked.
    fn verdicts(&self, asked: &[Token<'a>], verdicts: &mut Verdicts<'a>) -> Option<usize> {
        let mut offline = None;
        let context = self.context;
        let mut rbac = self
            .rbac
            .zip(context.api)
            .map(|(user, api)| Rbac::new(context.policy, user, api));
        for &Token { text: scope, hash } in asked {
            let class = match context.api {
                Some(api) => api.classify(scope, hash),
                None => context.policy.classify_without_api(scope, hash),
            };
            let (state, id) = match class {
                Class::Oidc => {
                    if scope == OFFLINE_ACCESS {
                        offline = Some(verdicts.len());
                    }
                    (self.oidc(scope), NO_ID)
                }
                Class::Unknown if context.api.is_none() => (State::Denied(DenyReason::NoAudience), NO_ID),
                Class::Unknown => (State::Denied(DenyReason::Undefined), NO_ID),
                Class::Scope(id) => {
                    let state = if !self.restriction.allows(id) {
                        State::Denied(DenyReason::NotGrantedToClient)
                    } else {
                        match &mut rbac {
                            Some(rbac) => rbac.check(id, verdicts.len(), asked.len()),
                            None => State::Granted,
                        }
                    };
                    (state, u32::try_from(id).unwrap_or(NO_ID))
                }
            };
            verdicts.push(Entry { scope, state, id });
        }
        // Finished where it stands: moving it out of the option would copy
        // its inline lists.
        if let Some(rbac) = &mut rbac {
            rbac.finish(verdicts);
        }
        offline
    }

    /// The verdict on an OIDC scope, before consent.
    fn oidc(&self, scope: &str) -> State {
        if self.context.flow == Flow::ClientCredentials {
            State::Denied(DenyReason::RequiresUser)
        } else if self.offline_refused && scope == OFFLINE_ACCESS {
            State::Denied(DenyReason::OfflineAccessNotAllowed)
        } else {
            State::Granted
        }
    }
}

/// How many of the user's roles RBAC keeps at hand: a typical user has a
/// few; the others are looked up once, after the first pass, and only if
/// some scope still waits.
const ROLES_AT_HAND: usize = 8;

/// RBAC for one request: a scope is allowed when a role of the user (with
/// what it inherits) or a direct permission of the user holds it.
struct Rbac<'a> {
    policy: &'a Policy,
    user: &'a User,
    api: &'a Api,
    // The sets of the user's first roles on this API, looked up at the first
    // scope that needs them.
    sets: SmallVec<[&'a ScopeSet; ROLES_AT_HAND]>,
    // How many of the user's role names were looked up; `None` before the first.
    looked_up: Option<usize>,
    // Positions of the scopes no role at hand allows: they wait for the other
    // roles and the direct permissions.
    waiting: SmallVec<[usize; INLINE_TOKENS]>,
}

impl<'a> Rbac<'a> {
    fn new(policy: &'a Policy, user: &'a User, api: &'a Api) -> Self {
        Rbac {
            policy,
            user,
            api,
            sets: SmallVec::new(),
            looked_up: None,
            waiting: SmallVec::new(),
        }
    }

    /// The sets of the user's roles on this API, each role looked up once.
    fn role_sets(&self, names: &'a [String]) -> impl Iterator<Item = (usize, &'a ScopeSet)> + 'a {
        let (policy, api) = (self.policy, self.api.index());
        names
            .iter()
            .enumerate()
            .filter_map(move |(at, name)| Some((at, policy.role(name)?.set_for(api)?)))
    }

    /// The verdict on the scope `id` at position `at` of `total` asked scopes.
    #[inline]
    fn check(&mut self, id: usize, at: usize, total: usize) -> State {
        let looked_up = match self.looked_up {
            Some(looked_up) => looked_up,
            None => {
                let mut looked_up = self.user.roles.len();
                for (position, set) in self.role_sets(&self.user.roles) {
                    if self.sets.len() == ROLES_AT_HAND {
                        looked_up = position;
                        break;
                    }
                    self.sets.push(set);
                }
                self.looked_up = Some(looked_up);
                looked_up
            }
        };
        if self.sets.iter().any(|set| set.contains(id)) {
            return State::Granted;
        }
        if looked_up < self.user.roles.len() || !self.user.permissions.is_empty() {
            if self.waiting.len() == INLINE_TOKENS {
                self.waiting.reserve_exact(total - at);
            }
            self.waiting.push(at);
        }
        // Refused unless another role or a direct permission allows it, in `finish`.
        State::Denied(DenyReason::NotPermitted)
    }

    /// Lets the waiting scopes through that the user's other roles or direct
    /// permissions allow.
    fn finish(&mut self, verdicts: &mut Verdicts<'a>) {
        if self.waiting.is_empty() {
            return;
        }
        fn allow(verdicts: &mut Verdicts<'_>, at: usize) {
            if let Some(entry) = verdicts.get_mut(at) {
                entry.state = State::Granted;
            }
        }
        let id_at =
            |at: usize, verdicts: &Verdicts<'a>| verdicts.get(at).map_or(usize::MAX, |e| e.id as usize);
        // The other roles, each looked up once, while a scope still waits.
        let rest = self.looked_up.unwrap_or_default();
        let names = self.user.roles.get(rest..).unwrap_or_default();
        for (_, set) in self.role_sets(names) {
            if self.waiting.is_empty() {
                break;
            }
            self.waiting.retain(|at| {
                let allowed = set.contains(id_at(*at, verdicts));
                if allowed {
                    allow(verdicts, *at);
                }
                !allowed
            });
        }
        // The direct permissions on this API: scanned within the scan budget,
        // hashed beyond, so many permissions and many scopes stay linear. A
        // scan walks them all, other APIs' too, so they all count.
        if self.user.permissions.is_empty() {
            return;
        }
        let audience = self.api.audience();
        let direct = self
            .user
            .permissions
            .iter()
            .inspect(|_| work(1))
            .filter(|p| p.audience == audience);
        let hashed: Option<HashSet<&str>> = (!scan_fits(self.waiting.len(), self.user.permissions.len()))
            .then(|| direct.clone().map(|p| p.scope.as_str()).collect());
        if hashed.as_ref().is_some_and(HashSet::is_empty) {
            return;
        }
        for &at in &self.waiting {
            let Some(scope) = verdicts.get(at).map(|entry| entry.scope) else {
                continue;
            };
            let permitted = match &hashed {
                Some(hashed) => {
                    work(1);
                    hashed.contains(scope)
                }
                None => direct.clone().any(|p| same_token(p.scope.as_str(), scope)),
            };
            if permitted {
                allow(verdicts, at);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consent::ConsentRecord;
    use crate::document::{ApiDocument, ClientDocument, PolicyDocument, ScopeDocument, SettingsDocument};
    use crate::scope::Scope;
    use crate::vocab::ClientKind;
    use crate::work::counted;

    const API: &str = "https://api.example/";

    /// A policy of one API with `n` scopes `s0`…, RBAC or not, and one client.
    fn policy(n: usize, rbac: bool, first_party: bool) -> Policy {
        let mut api = ApiDocument::new(API).with_rbac(rbac);
        for i in 0..n {
            api = api.with_scope(ScopeDocument::new(format!("s{i}")));
        }
        let client = ClientDocument::new("c", ClientKind::RegularWeb).with_first_party(first_party);
        let document = PolicyDocument::new()
            .with_settings(SettingsDocument::default().with_limits(Limits::new(1 << 24, 1 << 20)))
            .with_api(api)
            .with_client(client);
        Policy::from_document(document).unwrap_or_else(|errors| unreachable!("{errors}"))
    }

    fn scope(i: usize) -> Scope {
        Scope::new(&format!("s{i}")).unwrap_or_else(|error| unreachable!("{error}"))
    }

    /// Every scope `s0`…`s{n-1}`, as one parameter.
    fn all(n: usize) -> String {
        (0..n).map(|i| format!("s{i}")).collect::<Vec<_>>().join(" ")
    }

    /// How many scopes `request` is granted, and the work the decision counted.
    fn granted_and_work(policy: &Policy, request: &Request<'_>) -> (Option<usize>, usize) {
        let (decision, work) = counted(|| grant(policy, request));
        let granted = decision
            .ok()
            .and_then(Decision::granted)
            .map(|g| g.scopes().count());
        (granted, work)
    }

    /// The work of `decide(n)` at `n` and `2n` must at most double, give or take a quarter.
    fn assert_linear(what: &str, n: usize, decide: impl Fn(usize) -> usize) {
        let (small, large) = (decide(n), decide(2 * n));
        let ratio = large as f64 / small as f64;
        assert!(
            ratio <= 2.5,
            "{what}: doubling n multiplied the work by {ratio:.2}"
        );
    }

    /// n scopes asked, each allowed only by one of the user's n direct
    /// permissions (in another order), and n more permissions on another API:
    /// the direct permissions were scanned once for each scope, quadratic.
    #[test]
    fn direct_permissions_cost_linear_work() {
        assert_linear("direct permissions", 4_000, |n| {
            let policy = policy(n, true, true);
            let mut user = User::new("u");
            for i in 0..n {
                user = user
                    .with_permission(API, scope((i * 7_919) % n))
                    .with_permission("https://other.example/", scope(i));
            }
            let raw = all(n);
            let request = Request::new("c").audience(API).user(&user).scope(&raw);
            let (granted, work) = granted_and_work(&policy, &request);
            assert_eq!(granted, Some(n), "every scope is allowed by a direct permission");
            work
        });
        // One permission on this API and n on another: a scan of this API's
        // permissions walks the others too, so they count against the budget.
        assert_linear("direct permissions on another API", 4_000, |n| {
            let policy = policy(n, true, true);
            let mut user = User::new("u").with_permission(API, scope(0));
            for i in 0..n {
                user = user.with_permission("https://other.example/", scope(i));
            }
            let raw = all(n);
            let request = Request::new("c").audience(API).user(&user).scope(&raw);
            let (granted, work) = granted_and_work(&policy, &request);
            assert_eq!(granted, Some(1), "only s0 is allowed");
            work
        });
    }

    /// n empty consent records and one that holds every scope: the empty
    /// ones were scanned once for each scope, quadratic.
    #[test]
    fn empty_consent_records_cost_nothing_per_scope() {
        assert_linear("empty records", 4_000, |n| {
            let policy = policy(n, false, false);
            let user = User::new("u");
            let mut records: Vec<ConsentRecord> =
                (0..n).map(|_| ConsentRecord::new("u", "c", Some(API))).collect();
            records.push(ConsentRecord::new("u", "c", Some(API)).with_scopes((0..n).map(scope)));
            let raw = all(n);
            let request = Request::new("c")
                .audience(API)
                .user(&user)
                .scope(&raw)
                .consents(&records);
            let (granted, work) = granted_and_work(&policy, &request);
            assert_eq!(granted, Some(n), "the full record covers every scope");
            work
        });
    }

    /// n scopes asked twice over, against a record holding every other one,
    /// then approving the prompt: de-duplication, the consent lookups and
    /// the approval each compare tokens with tokens.
    #[test]
    fn long_requests_and_records_cost_linear_work() {
        assert_linear("long request and record", 4_000, |n| {
            let policy = policy(n, false, false);
            let user = User::new("u");
            let records = [ConsentRecord::new("u", "c", Some(API)).with_scopes((0..n).step_by(2).map(scope))];
            let raw = format!("{} {}", all(n), all(n));
            let request = Request::new("c")
                .audience(API)
                .user(&user)
                .scope(&raw)
                .consents(&records);
            let (granted, work) = counted(|| {
                let prompt = grant(&policy, &request)
                    .ok()
                    .and_then(Decision::consent_required)?;
                let approved: Vec<&str> = prompt.scopes().map(|entry| entry.scope()).collect();
                prompt.approve(&approved).ok().map(|grant| grant.scopes().count())
            });
            assert_eq!(granted, Some(n), "approving the prompt grants every scope");
            work
        });
    }
}

//! `Grant`: what a decision grants, with a verdict on every asked scope.

use std::fmt;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use smallvec::SmallVec;

use crate::consent::{ConsentRecord, RecordKey, Remembered};
use crate::policy::{Api, Client, Policy};
use crate::request::User;
use crate::scope::INLINE_TOKENS;
use crate::scope_set::ScopeSet;
use crate::vocab::{Flow, Prompt, Subject, UserAccess};

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

/// As its snake_case name, such as `"not_permitted"`.
impl Serialize for DenyReason {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
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
    /// Only a [`ConsentPrompt`](crate::ConsentPrompt) has such scopes; a
    /// [`Grant`] never does.
    Asked,
}

impl Verdict {
    /// `granted`, `asked`, or the reason of a refusal (`not_permitted`, …).
    pub const fn as_str(self) -> &'static str {
        match self {
            Verdict::Granted => "granted",
            Verdict::Asked => "asked",
            Verdict::Denied(reason) => reason.as_str(),
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// As [`Verdict::as_str`]: `"granted"`, `"asked"` or the reason, such as `"not_permitted"`.
impl Serialize for Verdict {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// Where an asked scope stands while the decision is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
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
pub(crate) struct Entry<'a> {
    pub(crate) scope: &'a str,
    pub(crate) state: State,
    pub(crate) id: u32,
}

/// The id of an entry that is not a scope of the audience's API.
pub(crate) const NO_ID: u32 = u32::MAX;

pub(crate) type Verdicts<'a> = SmallVec<[Entry<'a>; INLINE_TOKENS]>;

/// What the answer to a prompt and the `permissions` claim need to know of
/// the request, kept with the decision.
#[derive(Clone, Copy)]
pub(crate) struct Context<'a> {
    pub(crate) policy: &'a Policy,
    pub(crate) client: &'a Client,
    pub(crate) api: Option<&'a Api>,
    pub(crate) flow: Flow,
    pub(crate) user: Option<&'a User>,
    pub(crate) consents: &'a [ConsentRecord],
    pub(crate) now: Option<u64>,
    // The parsed `prompt` of an `authorization_code` request; empty otherwise.
    pub(crate) prompt: Prompt,
    // The `redirect_uri` of an `authorization_code` request; `None` otherwise.
    pub(crate) redirect_uri: Option<&'a str>,
    pub(crate) unverifiable_redirect: bool,
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
    pub(crate) fn key(&self) -> RecordKey<'a> {
        RecordKey {
            user_id: self.user.map(|user| user.id.as_str()).unwrap_or_default(),
            client_id: self.client.client_id(),
            audience: self.api.map(Api::audience),
            now: self.now,
        }
    }

    /// Who must consent, for every scope of this request: a third-party
    /// client; a first-party one on an API that does not let it skip (with
    /// no audience it skips); any client where remembered consent does not
    /// count. A `consent: always` scope needs consent on top of these.
    pub(crate) fn must_ask(&self) -> bool {
        !self.client.first_party()
            || self.api.is_some_and(|api| !api.allow_skipping_consent())
            || !self.remembered_counts()
    }

    /// Whether consent remembered in records counts in this request: not in
    /// the device flow or with an unverifiable redirect, where the client's
    /// identity is not assured (RFC 8628 §5.4, RFC 8252 §8.6), nor under
    /// `prompt=consent` (OpenID Connect Core §3.1.2.1).
    pub(crate) fn remembered_counts(&self) -> bool {
        !(self.prompt.consent() || self.flow == Flow::DeviceCode || self.unverifiable_redirect)
    }

    /// Whether `scope` (with `id` in the API) lacks consent where no prompt
    /// is shown (in a refresh, and for the `permissions` claim): a
    /// `consent: always` scope, one a matching record declines, or one that
    /// needs consent no matching record holds.
    pub(crate) fn lacks_consent(&self, remembered: &Remembered<'_>, scope: &str, id: u32) -> bool {
        self.one_time(id) || remembered.declines(scope) || (self.must_ask() && !remembered.holds(scope))
    }

    /// Whether the API's scope with this id is `consent: always`.
    pub(crate) fn one_time(&self, id: u32) -> bool {
        id != NO_ID && self.api.is_some_and(|api| api.always_at(id as usize))
    }

    /// Whether the API's scope with this id is `required`.
    pub(crate) fn required(&self, id: u32) -> bool {
        id != NO_ID && self.api.is_some_and(|api| api.required_at(id as usize))
    }

    /// The client grant the API's scopes are held to in this flow.
    pub(crate) fn restriction(&self) -> Restriction<'a> {
        match self.api {
            Some(api) => Restriction::of(self.flow, self.client, api),
            None => Restriction(None),
        }
    }
}

/// The client grant an API's scopes are held to (§3.3): in client
/// credentials always, in user flows under `user_access =
/// require_client_grant`; `Restriction(None)` when none is (a user flow under
/// `allow_all` or `deny_all`), `Some(None)` when one is and the client has none.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Restriction<'a>(Option<Option<&'a ScopeSet>>);

impl<'a> Restriction<'a> {
    pub(crate) fn of(flow: Flow, client: &'a Client, api: &Api) -> Self {
        let subject = match flow {
            Flow::ClientCredentials => Subject::Client,
            Flow::AuthorizationCode | Flow::RefreshToken | Flow::DeviceCode => {
                if api.user_access() != UserAccess::RequireClientGrant {
                    return Restriction(None);
                }
                Subject::User
            }
        };
        Restriction(Some(client.grant_for(subject, api.index())))
    }

    /// Whether a client grant holds the API's scopes at all.
    pub(crate) fn applies(self) -> bool {
        self.0.is_some()
    }

    /// Whether the client has the grant that holds them (true when none does).
    pub(crate) fn has_grant(self) -> bool {
        self.0.is_none_or(|grant| grant.is_some())
    }

    /// Whether the scope with this id gets past the client grant.
    pub(crate) fn allows(self, id: usize) -> bool {
        self.0
            .is_none_or(|grant| grant.is_some_and(|grant| grant.contains(id)))
    }
}

/// The scopes that go into the token, with a verdict on every asked scope.
///
/// Serialized, a grant is one compact JSON object for an audit log:
/// `client_id`, `user_id` (absent in client credentials), `flow`,
/// `audience` (`null` for none), `granted` (the scopes, in order), `denied`
/// (each refused scope with its reason, in order), `scope_changed`,
/// `refresh_token`, `unverifiable_redirect`, and the new `consent_record`
/// when an approval made one.
///
/// ```
/// use scope_policy::{Decision, Policy, Request, User};
/// let policy = Policy::from_json(r#"{
///   "apis": [{ "audience": "https://notes.example.com", "scopes": [ { "name": "read:notes" } ] }],
///   "clients": [{ "client_id": "notes-web", "first_party": true, "kind": "regular_web" }]
/// }"#)?;
/// let alice = User::new("alice");
/// let request = Request::new("notes-web").audience("https://notes.example.com")
///     .scope("read:notes write:notes").user(&alice);
/// let Decision::Granted(grant) = policy.grant(&request)? else { unreachable!() };
/// assert_eq!(
///     serde_json::to_string(&grant)?,
///     r#"{"client_id":"notes-web","user_id":"alice","flow":"authorization_code","audience":"https://notes.example.com","granted":["read:notes"],"denied":{"write:notes":"undefined"},"scope_changed":true,"refresh_token":false,"unverifiable_redirect":false}"#
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Grant<'a> {
    pub(crate) context: Context<'a>,
    // INVARIANT: one entry per asked scope, in asked order; no `Asked` or
    // `Approved` state once the grant is handed out.
    pub(crate) verdicts: Verdicts<'a>,
    // INVARIANT: the size of the requested set, which holds every asked scope when it is not 0.
    pub(crate) requested: usize,
    pub(crate) refresh_token: bool,
    // Boxed: only an answered prompt has one, and every decision moves the grant.
    pub(crate) consent_record: Option<Box<ConsentRecord>>,
}

impl Serialize for Grant<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        self.serialize_fields(&mut map)?;
        map.end()
    }
}

impl<'a> Grant<'a> {
    /// Writes the fields of a grant's JSON form, for it and for [`Decision`](crate::Decision).
    pub(crate) fn serialize_fields<M: SerializeMap>(&self, map: &mut M) -> Result<(), M::Error> {
        self.serialize_request(map)?;
        map.serialize_entry("granted", &Seq(|| self.scopes()))?;
        map.serialize_entry("denied", &Reasons(|| self.denied()))?;
        map.serialize_entry("scope_changed", &self.scope_changed())?;
        map.serialize_entry("refresh_token", &self.refresh_token)?;
        map.serialize_entry("unverifiable_redirect", &self.context.unverifiable_redirect)?;
        if let Some(record) = &self.consent_record {
            map.serialize_entry("consent_record", record)?;
        }
        Ok(())
    }

    /// Writes who asked what: client, user, flow and audience.
    pub(crate) fn serialize_request<M: SerializeMap>(&self, map: &mut M) -> Result<(), M::Error> {
        map.serialize_entry("client_id", self.client_id())?;
        if let Some(user_id) = self.user_id() {
            map.serialize_entry("user_id", user_id)?;
        }
        map.serialize_entry("flow", &self.context.flow)?;
        map.serialize_entry("audience", &self.audience())
    }
}

/// Serializes what an iterator yields as a sequence.
pub(crate) struct Seq<F>(pub(crate) F);

impl<F, I> Serialize for Seq<F>
where
    F: Fn() -> I,
    I: Iterator,
    I::Item: Serialize,
{
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq((self.0)())
    }
}

/// Serializes refused scopes as a map from scope to reason, in order.
pub(crate) struct Reasons<F>(pub(crate) F);

impl<'a, F, I> Serialize for Reasons<F>
where
    F: Fn() -> I,
    I: Iterator<Item = (&'a str, DenyReason)>,
{
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map((self.0)())
    }
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

    /// The client the token is for.
    pub fn client_id(&self) -> &'a str {
        self.context.client.client_id()
    }

    /// The user the token acts for (none in client credentials).
    pub fn user_id(&self) -> Option<&'a str> {
        self.context.user.map(|user| user.id.as_str())
    }

    /// The token's subject as RFC 9068 §2.2 defines it: the user's id, or,
    /// in client credentials, the client's id. Pass it to
    /// [`claims`](Self::claims) unless the host maps subjects (pairwise
    /// identifiers, say).
    pub fn subject(&self) -> &'a str {
        self.user_id().unwrap_or_else(|| self.client_id())
    }

    /// The flow of the request.
    pub fn flow(&self) -> Flow {
        self.context.flow
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
        self.consent_record.as_deref()
    }

    /// Takes the consent record to store (see [`consent_record`](Self::consent_record)).
    pub fn take_consent_record(&mut self) -> Option<ConsentRecord> {
        self.consent_record.take().map(|record| *record)
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
        let remembered = Remembered::new(context.consents, context.key(), effective.iter().count());
        let lacks_consent = |id: usize, scope: &str| {
            !restriction.allows(id)
                || context.lacks_consent(&remembered, scope, u32::try_from(id).unwrap_or(NO_ID))
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

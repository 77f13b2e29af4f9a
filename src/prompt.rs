//! `ConsentPrompt`: a decision waiting for the user, its identity, and the
//! answer to it.

use std::collections::HashMap;
use std::fmt;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use sha2::{Digest, Sha256};
use smallvec::SmallVec;

use crate::consent;
use crate::error::GrantError;
use crate::grant::{DenyReason, Entry, Grant, Reasons, Seq, State, Verdict, NO_ID};
use crate::scope::{oidc_description, INLINE_TOKENS, OFFLINE_ACCESS, SCAN_BUDGET};

/// One scope on a consent prompt, with what the consent screen shows.
///
/// Serialized as `{"scope":…,"description":…,"required":…}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
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
/// host), and answers with [`approve`](Self::approve) or [`deny`](Self::deny)
/// in the same process.
///
/// Across two HTTP requests (`GET /authorize` shows the prompt, `POST
/// /consent` reads the answer), the host keeps the request's
/// [`RequestParams`](crate::RequestParams) in its session and puts the
/// prompt's [`id`](Self::id) in the form; to answer, it decides again on the
/// same parameters with the records it holds now, and calls
/// [`Decision::answer`](crate::Decision::answer) with the identity the form
/// carried. If the prompt changed in between, that is
/// [`GrantError::PromptChanged`]: show the new prompt; nothing the user did
/// not see is ever granted.
///
/// ```
/// use scope_policy::{Decision, GrantError, Policy, RequestParams, User};
/// let policy = Policy::from_json(r#"{
///   "apis": [{ "audience": "https://notes.example.com",
///              "scopes": [ { "name": "read:notes", "description": "Read your notes" } ] }],
///   "clients": [{ "client_id": "partner", "kind": "regular_web" }]
/// }"#)?;
/// // GET /authorize: decide, keep the parameters, show the prompt with its identity.
/// let params = RequestParams::new("partner")
///     .audience("https://notes.example.com")
///     .scope("read:notes")
///     .user(User::new("alice"));
/// let Decision::ConsentRequired(prompt) = policy.grant(&params.request())? else { unreachable!() };
/// let shown = prompt.id();
/// let session = serde_json::to_string(&params)?;
///
/// // POST /consent: the same parameters, the records held now, the answer.
/// let params: RequestParams = serde_json::from_str(&session)?;
/// let grant = policy.grant(&params.request())?.answer(&shown, ["read:notes"])?;
/// assert_eq!(grant.scope_string(), "read:notes");
///
/// // An answer to a prompt that is not the one made now grants nothing.
/// let stale = policy.grant(&params.request())?.answer("0123456789abcdef0123456789abcdef", ["read:notes"]);
/// assert_eq!(stale.map(|_| ()), Err(GrantError::PromptChanged));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Serialized (for an audit log): `id`, `client_id`, `user_id`, `flow`,
/// `audience`, `scopes` (the prompt's), `granted` and `denied` (decided
/// without asking), `unverifiable_redirect`, and `redirect_uri` when given.
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

    /// The decision so far: settled verdicts and the `Asked` ones.
    pub(crate) fn pending(&self) -> &Grant<'a> {
        &self.pending
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
    /// ```
    /// use scope_policy::{Decision, DenyReason, Policy, Request, User};
    /// let policy = Policy::from_json(r#"{
    ///   "apis": [{ "audience": "https://notes.example.com",
    ///              "scopes": [ { "name": "read:notes" }, { "name": "write:notes" } ] }],
    ///   "clients": [{ "client_id": "partner", "kind": "regular_web" }]
    /// }"#)?;
    /// let alice = User::new("alice");
    /// let request = Request::new("partner").audience("https://notes.example.com")
    ///     .scope("read:notes write:notes").user(&alice);
    /// let Decision::ConsentRequired(prompt) = policy.grant(&request)? else { unreachable!() };
    /// let grant = prompt.approve(["read:notes"])?;
    /// assert_eq!(grant.denied().collect::<Vec<_>>(), [("write:notes", DenyReason::ConsentDenied)]);
    /// let record = grant.consent_record().expect("an approval makes a record");
    /// assert_eq!((record.scopes.len(), record.declined.len()), (1, 1)); // write:notes is not asked again
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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
        grant.consent_record = Some(Box::new(record));
        Ok(grant)
    }

    /// The prompt's identity: a short string (32 hexadecimal digits) that
    /// the consent form carries, the same on every machine and in every run
    /// for the same client, user, audience, prompt scopes with their
    /// descriptions and `required` marks, and unverifiable-redirect mark:
    /// everything the consent screen shows. It is a SHA-256 digest, so no
    /// request can be crafted to make a different prompt pass for this one.
    pub fn id(&self) -> PromptId {
        // INVARIANT: each part is length-prefixed, so no two different
        // prompts write the same bytes.
        let mut hash = Sha256::new();
        let mut part = |bytes: &[u8]| {
            hash.update((bytes.len() as u64).to_be_bytes());
            hash.update(bytes);
        };
        part(b"scope-policy consent prompt 1");
        part(self.pending.client_id().as_bytes());
        part(self.pending.user_id().unwrap_or_default().as_bytes());
        match self.audience() {
            Some(audience) => part(&[&[1], audience.as_bytes()].concat()),
            None => part(&[0]),
        }
        part(&[u8::from(self.unverifiable_redirect())]);
        // The scopes as a set: their order in the request does not change what the user sees.
        let mut scopes: SmallVec<[PromptScope<'a>; INLINE_TOKENS]> = self.scopes().collect();
        scopes.sort_unstable_by(|a, b| a.scope.cmp(b.scope));
        for scope in scopes {
            part(&[&[u8::from(scope.required)], scope.scope.as_bytes()].concat());
            part(scope.description.as_bytes());
        }
        let digest = hash.finalize();
        let mut id = String::with_capacity(32);
        for byte in digest.iter().take(16) {
            for nibble in [byte >> 4, byte & 0xf] {
                id.extend(char::from_digit(u32::from(nibble), 16));
            }
        }
        PromptId(id)
    }

    /// Answers this prompt with the user's approval, if `shown` is its
    /// identity: the form the user answered showed this very prompt.
    ///
    /// # Errors
    ///
    /// [`GrantError::PromptChanged`] when `shown` is not this prompt's
    /// [`id`](Self::id); otherwise as [`approve`](Self::approve).
    pub fn answer<I>(self, shown: impl AsRef<str>, approved: I) -> Result<Grant<'a>, GrantError>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        if self.id().as_str() != shown.as_ref() {
            return Err(GrantError::PromptChanged);
        }
        self.approve(approved)
    }

    /// The user refused the prompt.
    ///
    /// Returns the error to answer with: [`GrantError::ConsentDenied`]
    /// (`access_denied`). No record is made: what the host stored stays.
    ///
    /// ```
    /// use scope_policy::{Decision, ErrorCode, Policy, Request, User};
    /// let policy = Policy::from_json(r#"{
    ///   "apis": [{ "audience": "https://notes.example.com", "scopes": [ { "name": "read:notes" } ] }],
    ///   "clients": [{ "client_id": "partner", "kind": "regular_web" }]
    /// }"#)?;
    /// let alice = User::new("alice");
    /// let request = Request::new("partner").audience("https://notes.example.com").scope("read:notes").user(&alice);
    /// let Decision::ConsentRequired(prompt) = policy.grant(&request)? else { unreachable!() };
    /// let response = prompt.deny().response();
    /// assert_eq!((response.error(), response.redirectable()), (ErrorCode::AccessDenied, true));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn deny(self) -> GrantError {
        GrantError::ConsentDenied
    }
}

impl Serialize for ConsentPrompt<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        self.serialize_fields(&mut map)?;
        map.end()
    }
}

impl ConsentPrompt<'_> {
    /// Writes the fields of a prompt's JSON form, for it and for [`Decision`](crate::Decision).
    pub(crate) fn serialize_fields<M: SerializeMap>(&self, map: &mut M) -> Result<(), M::Error> {
        map.serialize_entry("id", &self.id())?;
        self.pending.serialize_request(map)?;
        map.serialize_entry("scopes", &Seq(|| self.scopes()))?;
        map.serialize_entry("granted", &Seq(|| self.granted()))?;
        map.serialize_entry("denied", &Reasons(|| self.denied()))?;
        map.serialize_entry("unverifiable_redirect", &self.unverifiable_redirect())?;
        if let Some(redirect_uri) = self.redirect_uri() {
            map.serialize_entry("redirect_uri", redirect_uri)?;
        }
        Ok(())
    }
}

/// The identity of a [`ConsentPrompt`]: 32 lowercase hexadecimal digits,
/// the same for the same prompt on every machine and in every run (see
/// [`ConsentPrompt::id`]). The consent form carries it; the answer gives it
/// back to [`Decision::answer`](crate::Decision::answer).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PromptId(String);

impl PromptId {
    /// The identity's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PromptId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for PromptId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for PromptId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for PromptId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

/// As its text.
impl Serialize for PromptId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

//! `Policy`: built from a document, validated, resolved, immutable.
//!
//! Building does the work once: each API's scopes are interned (an id is the
//! scope's position in its API), patterns are expanded, role inheritance is
//! closed, and every role and client grant becomes one bitset per API. A
//! decision then tests bits; it never walks the policy.

use indexmap::IndexMap;

/// The policy's name → entry maps, in document order.
///
/// foldhash rather than SipHash: it is several times faster on short keys, and
/// building a policy and the lookups off the decision path hash every name (a
/// decision finds names through the [`TokenTable`]s of [`Names`] and of each
/// API instead). Its seed is random per map, and the keys in a map come from
/// the operator's document, not from requests: a request can only look keys
/// up, which cannot make a table's collision chains longer.
pub(crate) type Map<K, V> = IndexMap<K, V, foldhash::fast::RandomState>;

mod build;
mod inheritance;
use build::Builder;

use crate::document::PolicyDocument;
#[cfg(any(feature = "json", feature = "toml"))]
use crate::error::LoadError;
use crate::error::PolicyErrors;
use crate::intern::{same_bytes, token_hash};
use crate::intern::{Seed, TokenTable};
use crate::metadata::Metadata;
#[cfg(any(feature = "json", feature = "toml"))]
use crate::reader::Shape;
use crate::scope::{Limits, Scope, OIDC_SCOPES};
use crate::scope_set::ScopeSet;
use crate::vocab::{ClientAccess, ClientKind, Flow, ScopeConsent, Subject, UnknownScopes, UserAccess};

/// A validated, resolved policy: the APIs, roles and clients a decision reads.
///
/// Immutable, `Send + Sync`, and cheap to share behind an
/// [`Arc`](std::sync::Arc). The only ways to get one check the whole document
/// and report every problem at once; a policy that fails to build does not exist.
#[derive(Debug, Clone)]
pub struct Policy {
    unknown_scopes: UnknownScopes,
    // INVARIANT: an index into `apis`.
    default_audience: Option<usize>,
    limits: Limits,
    consent_lifetime: Option<u64>,
    // The seed of every token hash of this policy (random per policy).
    seed: Seed,
    // The OIDC scopes by hash, for requests with no audience.
    oidc: TokenTable,
    // The positions of the APIs, roles and clients by the hash of their name.
    names: Names,
    apis: Map<Box<str>, Api>,
    roles: Map<Box<str>, Role>,
    clients: Map<Box<str>, Client>,
}

/// One API (resource server) of a [`Policy`].
#[derive(Debug, Clone)]
pub struct Api {
    // INVARIANT: this API's index in `Policy::apis`.
    index: usize,
    audience: Box<str>,
    name: Box<str>,
    // Scope name → definition; a scope's id is its index here.
    scopes: Map<Scope, Definition>,
    // Whether some scope is `consent: always`, so a decision on an API
    // without one never looks the setting up.
    has_always: bool,
    // The scopes by hash (values 0..n are scope ids), then the OIDC scopes
    // (n + their position in OIDC_SCOPES): one probe classifies a token.
    table: TokenTable,
    rbac: bool,
    allow_skipping_consent: bool,
    allow_offline_access: bool,
    user_access: UserAccess,
    client_access: ClientAccess,
    // INVARIANT: ids of `scopes`, distinct, in definition order.
    default_scopes: Box<[usize]>,
    metadata: Metadata,
}

/// The positions of a policy's APIs, roles and clients by the hash of their
/// name (audience, role name, client id): one hash and one probe per lookup,
/// with the hash the decision uses for scope tokens.
#[derive(Debug, Clone, Default)]
pub(crate) struct Names {
    pub(crate) apis: TokenTable,
    pub(crate) roles: TokenTable,
    pub(crate) clients: TokenTable,
}

impl Names {
    /// A table of the keys of `map`, in its order, under `seed`.
    pub(crate) fn table<V>(map: &Map<Box<str>, V>, seed: u64) -> TokenTable {
        let hashes: Vec<u64> = map.keys().map(|key| token_hash(seed, key.as_bytes())).collect();
        TokenTable::new(hashes.into_iter())
    }

    /// The position of `name` among the keys of `map`, through its `table`.
    #[inline]
    fn find<V>(table: &TokenTable, map: &Map<Box<str>, V>, seed: u64, name: &str) -> Option<usize> {
        let is = |at: usize| {
            map.get_index(at)
                .is_some_and(|(key, _)| same_bytes(key.as_bytes(), name.as_bytes()))
        };
        table.get(token_hash(seed, name.as_bytes()), is)
    }
}

/// The bit of `flow` in [`Client`]'s set of flows.
pub(crate) const fn flow_bit(flow: Flow) -> u8 {
    1 << (flow as u8)
}

// Every flow has a bit of the `u8`.
const _: () = assert!(Flow::ALL.len() <= 8);

/// What a token names, found with its hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    /// One of the reserved OIDC scopes.
    Oidc,
    /// A scope of the API, by id.
    Scope(usize),
    /// Neither: undefined, or no API to define it.
    Unknown,
}

/// What an API says of one scope, besides its name.
#[derive(Debug, Clone)]
struct Definition {
    description: Box<str>,
    consent: ScopeConsent,
    required: bool,
}

/// One scope an [`Api`] defines: its name, description and consent settings.
#[derive(Debug, Clone, Copy)]
pub struct ScopeDefinition<'a> {
    name: &'a Scope,
    definition: &'a Definition,
}

impl<'a> ScopeDefinition<'a> {
    /// The scope token.
    pub fn name(&self) -> &'a Scope {
        self.name
    }

    /// What the scope lets the client do, shown on the consent prompt.
    pub fn description(&self) -> &'a str {
        &self.definition.description
    }

    /// How consent treats the scope: remembered, or asked every time.
    pub fn consent(&self) -> ScopeConsent {
        self.definition.consent
    }

    /// Whether the user may not leave it out of an approval.
    pub fn required(&self) -> bool {
        self.definition.required
    }
}

/// One role of a [`Policy`], with its inheritance resolved.
#[derive(Debug, Clone)]
pub struct Role {
    name: Box<str>,
    description: Box<str>,
    inherits: Box<[Box<str>]>,
    // Own and inherited permissions, one set per API index, sorted by API index.
    permissions: Box<[(usize, ScopeSet)]>,
    // The role's own permissions as written, for explanations only.
    written: Box<[Written]>,
}

/// One scope reference as the document wrote it (a scope or a pattern), and
/// where: kept only to explain a decision, never read by one.
#[derive(Debug, Clone)]
pub(crate) struct Written {
    /// The API's index.
    pub(crate) api: usize,
    /// The scope or pattern (`*`, `prefix*`).
    pub(crate) pattern: Box<str>,
    /// Its position in its list (`permissions[at]`, `scopes[at]`).
    pub(crate) at: usize,
}

impl Written {
    /// Whether this reference names `scope` (exactly, or as a pattern).
    pub(crate) fn names(&self, scope: &str) -> bool {
        match self.pattern.strip_suffix('*') {
            Some(prefix) => scope.starts_with(prefix),
            None => &*self.pattern == scope,
        }
    }
}

/// A client grant as the document wrote it: for explanations only.
#[derive(Debug, Clone)]
pub(crate) struct WrittenGrant {
    pub(crate) api: usize,
    pub(crate) subject: Subject,
    /// Its position in the client's `grants`.
    pub(crate) at: usize,
    /// Its scope references; `Written::at` is the position in `scopes`.
    pub(crate) scopes: Box<[Written]>,
}

/// One client (application) of a [`Policy`].
#[derive(Debug, Clone)]
pub struct Client {
    client_id: Box<str>,
    name: Box<str>,
    first_party: bool,
    kind: ClientKind,
    grant_types: Box<[Flow]>,
    // INVARIANT: the bit `flow_bit(flow)` of every flow of `grant_types`, and
    // no other: a decision tests a flow with one instruction, not a search.
    flows: u8,
    // `subject: user` and `subject: client` grants, sorted by API index.
    user_grants: Box<[(usize, ScopeSet)]>,
    client_grants: Box<[(usize, ScopeSet)]>,
    // The grants as written, for explanations only.
    written_grants: Box<[WrittenGrant]>,
    metadata: Metadata,
}

impl Policy {
    /// Builds a policy from a document, checking it whole.
    ///
    /// # Errors
    ///
    /// Every problem of the document, each with its path, in document order:
    /// duplicate audiences, scopes, roles or client ids (at the later one);
    /// empty names or ids; invalid scope or audience syntax; reserved or
    /// `*`-bearing scope names; unknown `kind`, `grant_types`, `subject`,
    /// access policies or `unknown_scopes`; references to an unknown API or
    /// an undefined scope; patterns that match nothing; a second grant for the
    /// same client, audience and subject; unknown inherited roles;
    /// inheritance cycles; a public client (`spa`, `native`) listing
    /// `client_credentials`; an unknown scope `consent` value; a
    /// `consent_lifetime` that is not a positive number of seconds; and an
    /// empty `metadata` key.
    pub fn from_document(document: PolicyDocument) -> Result<Self, PolicyErrors> {
        Builder::default().build(&document)
    }

    /// Reads and builds a policy from a JSON document.
    ///
    /// ```
    /// use scope_policy::{LoadError, Policy};
    /// let policy = Policy::from_json(r#"{
    ///   "apis": [{ "audience": "https://notes.example.com", "scopes": [ { "name": "read:notes" } ] }],
    ///   "clients": [{ "client_id": "notes-web", "first_party": true, "kind": "regular_web" }]
    /// }"#)?;
    /// assert!(policy.api("https://notes.example.com").is_some());
    ///
    /// // Every problem at once, each with its path: a misspelt field too.
    /// let broken = Policy::from_json(r#"{ "apis": [{ "audience": "" }],
    ///   "roles": [{ "name": "r", "inherits": ["ghost"], "permisions": [] }] }"#);
    /// let Err(LoadError::Policy(errors)) = broken else { unreachable!() };
    /// let paths: Vec<&str> = errors.iter().map(|e| e.path()).collect();
    /// assert_eq!(paths, ["apis[0].audience", "roles[0].inherits[0]", "roles[0].permisions"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`LoadError::Syntax`] for text that is not JSON; otherwise
    /// [`LoadError::Policy`] with every problem at once: of the document's
    /// shape (an unknown field, a duplicate key, a missing field, a wrong
    /// type) and of the policy, less those that a value left unread could
    /// have caused.
    #[cfg(feature = "json")]
    pub fn from_json(text: &str) -> Result<Self, LoadError> {
        Policy::from_shape(crate::reader::read_json(text)?)
    }

    /// Reads and builds a policy from a TOML document.
    ///
    /// ```
    /// use scope_policy::Policy;
    /// let policy = Policy::from_toml(r#"
    ///     [[apis]]
    ///     audience = "https://notes.example.com"
    ///     rbac = true
    ///     scopes = [ { name = "read:notes", description = "Read your notes" } ]
    ///
    ///     [[clients]]
    ///     client_id = "notes-web"
    ///     first_party = true
    ///     kind = "regular_web"
    /// "#)?;
    /// assert!(policy.api("https://notes.example.com").is_some_and(|api| api.rbac()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Policy::from_json`], for TOML.
    #[cfg(feature = "toml")]
    pub fn from_toml(text: &str) -> Result<Self, LoadError> {
        Policy::from_shape(crate::reader::read_toml(text)?)
    }

    /// Builds what could be read of a document: its shape's problems and the
    /// policy's, but none that a value left unread could have caused.
    #[cfg(any(feature = "json", feature = "toml"))]
    fn from_shape(shape: Shape) -> Result<Self, LoadError> {
        let built = Builder::default().build(&shape.document);
        let policy_errors = match &built {
            Ok(_) => Vec::new(),
            Err(errors) => errors.errors().to_vec(),
        };
        match shape.with_policy_errors(policy_errors) {
            Some(errors) => Err(LoadError::Policy(errors)),
            // No problem of the shape, and so none hidden: `built` is the answer.
            None => Ok(built?),
        }
    }

    /// The API with this exact audience.
    pub fn api(&self, audience: &str) -> Option<&Api> {
        self.api_entry(audience).map(|(_, api)| api)
    }

    /// The APIs, in document order.
    pub fn apis(&self) -> impl ExactSizeIterator<Item = &Api> + '_ {
        self.apis.values()
    }

    /// The role with this name.
    pub fn role(&self, name: &str) -> Option<&Role> {
        self.role_index(name).and_then(|index| self.role_at(index))
    }

    /// The roles, in document order.
    pub fn roles(&self) -> impl ExactSizeIterator<Item = &Role> + '_ {
        self.roles.values()
    }

    /// The client with this id.
    pub fn client(&self, client_id: &str) -> Option<&Client> {
        let index = self.client_index(client_id)?;
        self.clients.get_index(index).map(|(_, client)| client)
    }

    /// The clients, in document order.
    pub fn clients(&self) -> impl ExactSizeIterator<Item = &Client> + '_ {
        self.clients.values()
    }

    /// What a request's unknown scopes do.
    pub fn unknown_scopes(&self) -> UnknownScopes {
        self.unknown_scopes
    }

    /// The API used when a request names no audience.
    pub fn default_audience(&self) -> Option<&Api> {
        self.default_audience.and_then(|index| self.api_at(index))
    }

    /// The limits on a request's scope parameter.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// How long the consent record of an approval lasts, in seconds, if the
    /// policy limits it.
    pub fn consent_lifetime(&self) -> Option<u64> {
        self.consent_lifetime
    }

    pub(crate) fn api_entry(&self, audience: &str) -> Option<(usize, &Api)> {
        let index = Names::find(&self.names.apis, &self.apis, self.seed.0, audience)?;
        Some((index, self.api_at(index)?))
    }

    /// The seed of this policy's token hashes.
    pub(crate) fn seed(&self) -> u64 {
        self.seed.0
    }

    /// What `token` (with `hash` under [`seed`](Self::seed)) names when
    /// there is no API: an OIDC scope or nothing.
    pub(crate) fn classify_without_api(&self, token: &str, hash: u64) -> Class {
        let is = |v: usize| {
            OIDC_SCOPES
                .get(v)
                .is_some_and(|name| same_bytes(name.as_bytes(), token.as_bytes()))
        };
        match self.oidc.get(hash, is) {
            Some(_) => Class::Oidc,
            None => Class::Unknown,
        }
    }

    pub(crate) fn default_api_entry(&self) -> Option<(usize, &Api)> {
        self.default_audience
            .and_then(|index| Some((index, self.api_at(index)?)))
    }

    pub(crate) fn client_index(&self, client_id: &str) -> Option<usize> {
        Names::find(&self.names.clients, &self.clients, self.seed.0, client_id)
    }

    pub(crate) fn role_index(&self, name: &str) -> Option<usize> {
        Names::find(&self.names.roles, &self.roles, self.seed.0, name)
    }

    pub(crate) fn role_at(&self, index: usize) -> Option<&Role> {
        self.roles.get_index(index).map(|(_, role)| role)
    }

    pub(crate) fn api_at(&self, index: usize) -> Option<&Api> {
        self.apis.get_index(index).map(|(_, api)| api)
    }
}

impl Api {
    /// The audience identifier.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// The display name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The defined scopes and their descriptions, in definition order.
    pub fn scopes(&self) -> impl ExactSizeIterator<Item = (&Scope, &str)> + '_ {
        self.scopes
            .iter()
            .map(|(scope, definition)| (scope, &*definition.description))
    }

    /// The defined scopes with their consent settings, in definition order.
    pub fn definitions(&self) -> impl ExactSizeIterator<Item = ScopeDefinition<'_>> + '_ {
        self.scopes
            .iter()
            .map(|(name, definition)| ScopeDefinition { name, definition })
    }

    /// The definition of `scope`, if the API defines it.
    pub fn definition(&self, scope: &str) -> Option<ScopeDefinition<'_>> {
        self.scopes
            .get_key_value(scope)
            .map(|(name, definition)| ScopeDefinition { name, definition })
    }

    /// The description of a defined scope.
    pub fn description(&self, scope: &str) -> Option<&str> {
        self.scopes.get(scope).map(|definition| &*definition.description)
    }

    /// The notes the policy keeps with the API.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// Whether user tokens only get what the user's roles and permissions allow.
    pub fn rbac(&self) -> bool {
        self.rbac
    }

    /// Whether first-party clients skip consent.
    pub fn allow_skipping_consent(&self) -> bool {
        self.allow_skipping_consent
    }

    /// Whether `offline_access` may be granted for this audience.
    pub fn allow_offline_access(&self) -> bool {
        self.allow_offline_access
    }

    /// Which clients may get user tokens.
    pub fn user_access(&self) -> UserAccess {
        self.user_access
    }

    /// Which clients may get client-credentials tokens.
    pub fn client_access(&self) -> ClientAccess {
        self.client_access
    }

    /// What a user flow asks for when the request names no scope, in definition order.
    pub fn default_scopes(&self) -> impl Iterator<Item = &Scope> + '_ {
        self.default_scopes.iter().filter_map(|&id| self.scope_at(id))
    }

    pub(crate) fn scope_id(&self, scope: &str) -> Option<usize> {
        self.scopes.get_index_of(scope)
    }

    /// What `token`, whose hash under the policy's seed is `hash`, names on
    /// this API: one probe of its table.
    #[inline]
    pub(crate) fn classify(&self, token: &str, hash: u64) -> Class {
        let count = self.scopes.len();
        let is = |value: usize| {
            let name = match value.checked_sub(count) {
                None => self.scopes.get_index(value).map(|(name, _)| name.as_str()),
                Some(oidc) => OIDC_SCOPES.get(oidc).copied(),
            };
            name.is_some_and(|name| same_bytes(name.as_bytes(), token.as_bytes()))
        };
        match self.table.get(hash, is) {
            Some(value) if value < count => Class::Scope(value),
            Some(_) => Class::Oidc,
            None => Class::Unknown,
        }
    }

    pub(crate) fn scope_at(&self, id: usize) -> Option<&Scope> {
        self.scopes.get_index(id).map(|(scope, _)| scope)
    }

    /// The definition of the scope with this id.
    pub(crate) fn definition_at(&self, id: usize) -> Option<ScopeDefinition<'_>> {
        self.scopes
            .get_index(id)
            .map(|(name, definition)| ScopeDefinition { name, definition })
    }

    /// Whether some scope of this API is `consent: always`.
    pub(crate) fn has_always(&self) -> bool {
        self.has_always
    }

    /// Whether the scope with this id is `consent: always`.
    pub(crate) fn always_at(&self, id: usize) -> bool {
        self.has_always
            && self
                .scopes
                .get_index(id)
                .is_some_and(|(_, definition)| definition.consent == ScopeConsent::Always)
    }

    /// Whether the scope with this id is `required`.
    pub(crate) fn required_at(&self, id: usize) -> bool {
        self.scopes
            .get_index(id)
            .is_some_and(|(_, definition)| definition.required)
    }

    /// This API's position in the policy.
    pub(crate) fn index(&self) -> usize {
        self.index
    }

    /// How many scopes the API defines.
    pub(crate) fn scope_count(&self) -> usize {
        self.scopes.len()
    }

    pub(crate) fn default_scope_ids(&self) -> &[usize] {
        &self.default_scopes
    }
}

impl Role {
    /// The role's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What the role is for.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The roles it inherits from directly, as written.
    pub fn inherits(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.inherits.iter().map(|name| &**name)
    }

    /// Whether the role, with everything it inherits, permits `scope` on `api`.
    pub fn permits(&self, api: &Api, scope: &str) -> bool {
        api.scope_id(scope)
            .is_some_and(|id| self.set_for(api.index).is_some_and(|set| set.contains(id)))
    }

    /// The scopes of `api` the role permits, with everything it inherits,
    /// in definition order.
    pub fn scopes<'p>(&'p self, api: &'p Api) -> impl Iterator<Item = &'p Scope> + 'p {
        let ids = self.set_for(api.index).into_iter().flat_map(ScopeSet::iter);
        ids.filter_map(move |id| api.scope_at(id))
    }

    /// The role's own permissions as written: (audience, scope or pattern).
    pub fn own_permissions<'p>(
        &'p self,
        policy: &'p Policy,
    ) -> impl Iterator<Item = (&'p str, &'p str)> + 'p {
        self.written.iter().filter_map(move |written| {
            let api = policy.api_at(written.api)?;
            Some((api.audience(), &*written.pattern))
        })
    }

    pub(crate) fn written(&self) -> &[Written] {
        &self.written
    }

    pub(crate) fn set_for(&self, api: usize) -> Option<&ScopeSet> {
        find(&self.permissions, api)
    }
}

impl Client {
    /// The OAuth `client_id`.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The display name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the client belongs to the APIs' owner.
    pub fn first_party(&self) -> bool {
        self.first_party
    }

    /// What kind of application it is.
    pub fn kind(&self) -> ClientKind {
        self.kind
    }

    /// The flows it may use.
    pub fn grant_types(&self) -> &[Flow] {
        &self.grant_types
    }

    /// Whether it may use `flow`.
    pub fn allows(&self, flow: Flow) -> bool {
        self.flows & flow_bit(flow) != 0
    }

    /// The notes the policy keeps with the client.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// The scopes of `api` that the client's grant for `subject` holds, in
    /// definition order; `None` when it has no such grant.
    pub fn grant_scopes<'p>(
        &'p self,
        subject: Subject,
        api: &'p Api,
    ) -> Option<impl Iterator<Item = &'p Scope> + 'p> {
        let set = self.grant_for(subject, api.index)?;
        Some(set.iter().filter_map(move |id| api.scope_at(id)))
    }

    pub(crate) fn written_grant(&self, subject: Subject, api: usize) -> Option<&WrittenGrant> {
        self.written_grants
            .iter()
            .find(|grant| grant.subject == subject && grant.api == api)
    }

    pub(crate) fn grant_for(&self, subject: Subject, api: usize) -> Option<&ScopeSet> {
        match subject {
            Subject::User => find(&self.user_grants, api),
            Subject::Client => find(&self.client_grants, api),
        }
    }
}

fn find(sets: &[(usize, ScopeSet)], api: usize) -> Option<&ScopeSet> {
    sets.binary_search_by_key(&api, |(index, _)| *index)
        .ok()
        .and_then(|at| sets.get(at))
        .map(|(_, set)| set)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_allows_exactly_its_grant_types() {
        let policy = Policy::from_json(
            r#"{
              "apis": [],
              "clients": [
                { "client_id": "web", "kind": "regular_web" },
                { "client_id": "spa", "kind": "spa", "grant_types": ["authorization_code"] },
                { "client_id": "job", "kind": "machine_to_machine" },
                { "client_id": "tv", "kind": "native", "grant_types": ["device_code", "refresh_token"] },
                { "client_id": "all", "kind": "regular_web",
                  "grant_types": ["authorization_code", "refresh_token", "client_credentials", "device_code"] }
              ]
            }"#,
        );
        let Ok(policy) = policy else {
            panic!("the test policy builds: {policy:?}");
        };
        for client in policy.clients() {
            for &flow in Flow::ALL {
                let listed = client.grant_types().contains(&flow);
                assert_eq!(client.allows(flow), listed, "{} and {flow:?}", client.client_id());
            }
        }
    }
}

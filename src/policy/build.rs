//! From `PolicyDocument` to `Policy`: check everything, report every problem
//! with its path, then resolve patterns, inheritance and grants into bitsets.

use std::collections::HashMap;

use indexmap::map::Entry;

use super::inheritance;
use super::{flow_bit, Api, Client, Definition, Map, Names, Policy, Role, Written, WrittenGrant};
use crate::document::{ApiDocument, ClientDocument, PolicyDocument, RoleDocument};
use crate::error::{PolicyError, PolicyErrors, Problem};
use crate::intern::{random_seed, token_hash, Seed, TokenTable};
use crate::metadata::Metadata;
use crate::scope::{check_token, is_oidc_scope, Limits, Scope, OIDC_SCOPES};
use crate::scope_set::ScopeSet;
use crate::vocab::{
    ClientAccess, ClientKind, Flow, ScopeConsent, Subject, UnknownScopes, UnknownValue, UserAccess,
};

/// Collects problems while the document is walked in order.
#[derive(Debug)]
pub(super) struct Builder {
    errors: Vec<PolicyError>,
    // The seed of the policy's token hashes.
    seed: u64,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            errors: Vec::new(),
            seed: random_seed(),
        }
    }
}

impl Builder {
    fn report(&mut self, path: String, problem: Problem) {
        self.errors.push(PolicyError::new(path, problem));
    }

    /// Parses a named value, reporting an unknown one at `path`.
    fn named<T: std::str::FromStr<Err = UnknownValue>>(
        &mut self,
        value: &str,
        path: impl FnOnce() -> String,
    ) -> Option<T> {
        value
            .parse()
            .map_err(|e| self.report(path(), Problem::UnknownValue(e)))
            .ok()
    }

    pub(super) fn build(mut self, document: &PolicyDocument) -> Result<Policy, PolicyErrors> {
        let settings = &document.settings;
        let unknown_scopes = self
            .named(&settings.unknown_scopes, || "settings.unknown_scopes".to_owned())
            .unwrap_or(UnknownScopes::Ignore);
        let limits = Limits {
            max_scope_length: settings.max_scope_length,
            max_scope_tokens: settings.max_scope_tokens,
        };
        let consent_lifetime = settings.consent_lifetime.and_then(|seconds| {
            let positive = u64::try_from(seconds).ok().filter(|&seconds| seconds > 0);
            if positive.is_none() {
                let problem = Problem::InvalidConsentLifetime { value: seconds };
                self.report("settings.consent_lifetime".to_owned(), problem);
            }
            positive
        });

        let apis = self.apis(&document.apis);
        let default_audience = settings.default_audience.as_deref().and_then(|audience| {
            let found = apis.get_index_of(audience);
            if found.is_none() {
                let problem = Problem::UnknownApi {
                    audience: audience.to_owned(),
                };
                self.report("settings.default_audience".to_owned(), problem);
            }
            found
        });
        let roles = self.roles(&document.roles, &apis);
        let clients = self.clients(&document.clients, &apis);

        let oidc = self.table(std::iter::empty());
        if let Some(errors) = PolicyErrors::in_document_order(self.errors) {
            return Err(errors);
        }
        Ok(Policy {
            unknown_scopes,
            default_audience,
            limits,
            consent_lifetime,
            seed: Seed(self.seed),
            oidc,
            names: Names {
                apis: Names::table(&apis, self.seed),
                roles: Names::table(&roles, self.seed),
                clients: Names::table(&clients, self.seed),
            },
            apis,
            roles,
            clients,
        })
    }

    /// The table of `scopes` (values 0..n), then of the OIDC scopes.
    fn table<'s>(&self, scopes: impl Iterator<Item = &'s str>) -> TokenTable {
        let hash = |name: &str| token_hash(self.seed, name.as_bytes());
        let all: Vec<u64> = scopes.chain(OIDC_SCOPES).map(hash).collect();
        TokenTable::new(all.into_iter())
    }

    /// Checks that no metadata key is empty.
    fn metadata(&mut self, metadata: &Metadata, path: impl FnOnce() -> String) {
        if metadata.iter().any(|(key, _)| key.is_empty()) {
            self.report(path(), Problem::Empty { what: "metadata key" });
        }
    }

    fn apis(&mut self, documents: &[ApiDocument]) -> Map<Box<str>, Api> {
        let mut apis: Map<Box<str>, Api> = Map::with_capacity_and_hasher(documents.len(), Default::default());
        let mut first_at: HashMap<&str, usize> = HashMap::new();
        for (i, doc) in documents.iter().enumerate() {
            let at = format!("apis[{i}]");
            let audience_ok = self.audience_syntax(&doc.audience, || format!("{at}.audience"));
            if audience_ok {
                if let Some(&first) = first_at.get(doc.audience.as_str()) {
                    let problem = Problem::Duplicate {
                        what: "audience",
                        name: doc.audience.clone(),
                        first: format!("apis[{first}].audience"),
                    };
                    self.report(format!("{at}.audience"), problem);
                } else {
                    first_at.insert(&doc.audience, i);
                }
            }
            self.display_name(doc.name.as_deref(), || format!("{at}.name"));
            let user_access = self.named(&doc.user_access, || format!("{at}.user_access"));
            let client_access = self.named(&doc.client_access, || format!("{at}.client_access"));

            let mut scopes: Map<Scope, Definition> =
                Map::with_capacity_and_hasher(doc.scopes.len(), Default::default());
            // Where each scope of `scopes` is written: invalid names are
            // skipped, so a map position is not a document position.
            let mut written_at: Vec<usize> = Vec::with_capacity(doc.scopes.len());
            for (j, definition) in doc.scopes.iter().enumerate() {
                let path = || format!("{at}.scopes[{j}].name");
                let consent = self.named(&definition.consent, || format!("{at}.scopes[{j}].consent"));
                let Some(scope) = self.scope_name(&definition.name, path) else {
                    continue;
                };
                match scopes.entry(scope) {
                    Entry::Occupied(entry) => {
                        let problem = Problem::Duplicate {
                            what: "scope",
                            name: definition.name.clone(),
                            first: format!(
                                "{at}.scopes[{}].name",
                                written_at.get(entry.index()).copied().unwrap_or_default()
                            ),
                        };
                        self.report(path(), problem);
                    }
                    Entry::Vacant(entry) => {
                        written_at.push(j);
                        entry.insert(Definition {
                            description: definition.description.as_str().into(),
                            // An unknown value was reported; the build fails.
                            consent: consent.unwrap_or(ScopeConsent::Always),
                            required: definition.required,
                        });
                    }
                }
            }

            self.metadata(&doc.metadata, || format!("{at}.metadata"));
            let has_always = scopes
                .values()
                .any(|definition| definition.consent == ScopeConsent::Always);
            let table = self.table(scopes.keys().map(Scope::as_str));
            let mut api = Api {
                index: apis.len(),
                audience: doc.audience.as_str().into(),
                name: doc.name.as_deref().unwrap_or(&doc.audience).into(),
                scopes,
                has_always,
                table,
                rbac: doc.rbac,
                allow_skipping_consent: doc.allow_skipping_consent,
                allow_offline_access: doc.allow_offline_access,
                // An unknown value was reported; the build fails, so the fallback is never used.
                user_access: user_access.unwrap_or(UserAccess::DenyAll),
                client_access: client_access.unwrap_or(ClientAccess::DenyAll),
                default_scopes: Box::new([]),
                metadata: doc.metadata.clone(),
            };
            let mut defaults = ScopeSet::with_len(api.scopes.len());
            for (k, scope) in doc.default_scopes.iter().enumerate() {
                let path = || format!("{at}.default_scopes[{k}]");
                if let Err(problem) = resolve(&api, scope, Patterns::Refused, &mut defaults) {
                    self.report(path(), problem);
                }
            }
            // Definition order, which is also the order a grant lists them in.
            api.default_scopes = defaults.iter().collect();
            if audience_ok && !apis.contains_key(doc.audience.as_str()) {
                apis.insert(doc.audience.as_str().into(), api);
            }
        }
        apis
    }

    /// Checks an audience: non-empty, no whitespace or control characters.
    fn audience_syntax(&mut self, audience: &str, path: impl FnOnce() -> String) -> bool {
        if audience.is_empty() {
            self.report(path(), Problem::Empty { what: "audience" });
            false
        } else if audience.chars().any(|c| c.is_whitespace() || c.is_control()) {
            self.report(
                path(),
                Problem::InvalidAudience {
                    value: audience.to_owned(),
                },
            );
            false
        } else {
            true
        }
    }

    /// A display name may be left out, but not written empty.
    fn display_name(&mut self, name: Option<&str>, path: impl FnOnce() -> String) {
        if name.is_some_and(|name| name.trim().is_empty()) {
            self.report(path(), Problem::Empty { what: "name" });
        }
    }

    /// Checks the name of a scope an API defines.
    fn scope_name(&mut self, name: &str, path: impl FnOnce() -> String) -> Option<Scope> {
        let problem = if name.is_empty() {
            Problem::Empty { what: "scope name" }
        } else if name.contains('*') {
            Problem::Wildcard {
                name: name.to_owned(),
            }
        } else if is_oidc_scope(name) {
            Problem::ReservedScope {
                name: name.to_owned(),
            }
        } else {
            match Scope::new(name) {
                Ok(scope) => return Some(scope),
                Err(source) => Problem::InvalidScope {
                    value: name.to_owned(),
                    source,
                },
            }
        };
        self.report(path(), problem);
        None
    }

    /// Checks a name or id that must be present and unique.
    fn unique_name<'d>(
        &mut self,
        seen: &mut HashMap<&'d str, usize>,
        name: &'d str,
        what: &'static str,
        path: impl Fn(usize) -> String,
        at: usize,
    ) {
        if name.is_empty() {
            self.report(path(at), Problem::Empty { what });
        } else if let Some(&first) = seen.get(name) {
            let problem = Problem::Duplicate {
                what,
                name: name.to_owned(),
                first: path(first),
            };
            self.report(path(at), problem);
        } else {
            seen.insert(name, at);
        }
    }

    fn roles(&mut self, documents: &[RoleDocument], apis: &Map<Box<str>, Api>) -> Map<Box<str>, Role> {
        let mut by_name: HashMap<&str, usize> = HashMap::with_capacity(documents.len());
        for (i, doc) in documents.iter().enumerate() {
            self.unique_name(
                &mut by_name,
                &doc.name,
                "role name",
                |n| format!("roles[{n}].name"),
                i,
            );
        }

        // Each role's own permissions, and its edges to the roles it inherits.
        let mut own: Vec<Vec<(usize, ScopeSet)>> = Vec::with_capacity(documents.len());
        let mut written: Vec<Vec<Written>> = Vec::with_capacity(documents.len());
        let mut edges: Vec<Vec<usize>> = Vec::with_capacity(documents.len());
        let mut slots = inheritance::Slots::new(apis.len());
        for (i, doc) in documents.iter().enumerate() {
            let mut sets = Vec::new();
            let mut as_written = Vec::with_capacity(doc.permissions.len());
            for (j, permission) in doc.permissions.iter().enumerate() {
                let at = || format!("roles[{i}].permissions[{j}]");
                let Some(api) = self.api_ref(apis, &permission.audience, || format!("{}.audience", at()))
                else {
                    continue;
                };
                as_written.push(Written {
                    api: api.index,
                    pattern: permission.scope.as_str().into(),
                    at: j,
                });
                let set = slots.entry(&mut sets, api.index, api.scopes.len());
                if let Err(problem) = resolve(api, &permission.scope, Patterns::Allowed, set) {
                    self.report(format!("{}.scope", at()), problem);
                }
            }
            slots.clear(&sets);
            own.push(sets);
            written.push(as_written);
            let mut targets = Vec::with_capacity(doc.inherits.len());
            for (k, name) in doc.inherits.iter().enumerate() {
                match by_name.get(name.as_str()) {
                    Some(&target) => targets.push(target),
                    None => self.report(
                        format!("roles[{i}].inherits[{k}]"),
                        Problem::UnknownRole { name: name.clone() },
                    ),
                }
            }
            edges.push(targets);
        }

        let components = inheritance::strongly_connected(&edges);
        for component in &components {
            if inheritance::is_cyclic(component, &edges) {
                self.report_cycles(component, &edges, documents);
            }
        }
        if !self.errors.is_empty() {
            return Map::default(); // never used: the build fails
        }
        let effective = inheritance::merge(&components, &edges, own, apis.len());

        let mut roles = Map::with_capacity_and_hasher(documents.len(), Default::default());
        for ((doc, permissions), written) in documents.iter().zip(effective).zip(written) {
            let role = Role {
                name: doc.name.as_str().into(),
                description: doc.description.as_str().into(),
                inherits: doc.inherits.iter().map(|name| name.as_str().into()).collect(),
                permissions: permissions.into_boxed_slice(),
                written: written.into_boxed_slice(),
            };
            roles.insert(doc.name.as_str().into(), role);
        }
        roles
    }

    /// Reports every role of a cyclic component at its `inherits`, each with
    /// a cycle through it (see [`inheritance::cycles`]).
    fn report_cycles(&mut self, component: &[usize], edges: &[Vec<usize>], documents: &[RoleDocument]) {
        let name = |role: usize| {
            documents
                .get(role)
                .map_or_else(String::new, |doc| doc.name.clone())
        };
        for report in inheritance::cycles(component, edges) {
            self.report(
                format!("roles[{}].inherits", report.role),
                Problem::InheritanceCycle {
                    cycle: report.roles.into_iter().map(name).collect(),
                    omitted: report.omitted,
                },
            );
        }
    }

    /// Looks up the API an entry refers to, reporting an unknown audience.
    fn api_ref<'p>(
        &mut self,
        apis: &'p Map<Box<str>, Api>,
        audience: &str,
        path: impl FnOnce() -> String,
    ) -> Option<&'p Api> {
        let api = apis.get(audience);
        if api.is_none() {
            self.report(
                path(),
                Problem::UnknownApi {
                    audience: audience.to_owned(),
                },
            );
        }
        api
    }

    fn clients(&mut self, documents: &[ClientDocument], apis: &Map<Box<str>, Api>) -> Map<Box<str>, Client> {
        let mut by_id: HashMap<&str, usize> = HashMap::with_capacity(documents.len());
        let mut clients = Map::with_capacity_and_hasher(documents.len(), Default::default());
        for (i, doc) in documents.iter().enumerate() {
            let at = format!("clients[{i}]");
            self.unique_name(
                &mut by_id,
                &doc.client_id,
                "client id",
                |n| format!("clients[{n}].client_id"),
                i,
            );
            self.display_name(doc.name.as_deref(), || format!("{at}.name"));
            let kind: Option<ClientKind> = self.named(&doc.kind, || format!("{at}.kind"));
            let mut grant_types: Vec<Flow> = Vec::new();
            match &doc.grant_types {
                Some(written) => {
                    for (k, name) in written.iter().enumerate() {
                        let path = || format!("{at}.grant_types[{k}]");
                        let Some(flow) = self.named(name, path) else {
                            continue;
                        };
                        // RFC 6749 §2.1: a public client cannot keep the secret
                        // that client credentials authenticate with.
                        if let Some(kind) =
                            kind.filter(|kind| kind.is_public() && flow == Flow::ClientCredentials)
                        {
                            self.report(path(), Problem::PublicClientCredentials { kind });
                        }
                        if !grant_types.contains(&flow) {
                            grant_types.push(flow);
                        }
                    }
                }
                None => grant_types.extend(kind.map(ClientKind::default_grant_types).unwrap_or_default()),
            }

            let mut user_grants: Vec<(usize, ScopeSet)> = Vec::new();
            let mut client_grants: Vec<(usize, ScopeSet)> = Vec::new();
            let mut written_grants: Vec<WrittenGrant> = Vec::new();
            let mut first_grant: HashMap<(usize, Subject), usize> = HashMap::new();
            for (j, grant) in doc.grants.iter().enumerate() {
                let at = format!("{at}.grants[{j}]");
                let api = self.api_ref(apis, &grant.audience, || format!("{at}.audience"));
                let subject = match &grant.subject {
                    Some(subject) => self.named(subject, || format!("{at}.subject")),
                    None => kind.map(ClientKind::default_subject),
                };
                let mut set = ScopeSet::with_len(api.map_or(0, |api| api.scopes.len()));
                if let Some(api) = api {
                    for (k, scope) in grant.scopes.iter().enumerate() {
                        if let Err(problem) = resolve(api, scope, Patterns::Allowed, &mut set) {
                            self.report(format!("{at}.scopes[{k}]"), problem);
                        }
                    }
                }
                let (Some(api), Some(subject)) = (api, subject) else {
                    continue;
                };
                if let Some(first) = first_grant.insert((api.index, subject), j) {
                    first_grant.insert((api.index, subject), first);
                    let problem = Problem::DuplicateGrant {
                        audience: grant.audience.clone(),
                        subject,
                        first: format!("clients[{i}].grants[{first}]"),
                    };
                    self.report(at, problem);
                    continue;
                }
                match subject {
                    Subject::User => user_grants.push((api.index, set)),
                    Subject::Client => client_grants.push((api.index, set)),
                }
                let scopes = grant.scopes.iter().enumerate().map(|(k, pattern)| Written {
                    api: api.index,
                    pattern: pattern.as_str().into(),
                    at: k,
                });
                written_grants.push(WrittenGrant {
                    api: api.index,
                    subject,
                    at: j,
                    scopes: scopes.collect(),
                });
            }
            user_grants.sort_by_key(|(api, _)| *api);
            client_grants.sort_by_key(|(api, _)| *api);
            self.metadata(&doc.metadata, || format!("{at}.metadata"));

            let client = Client {
                client_id: doc.client_id.as_str().into(),
                name: doc.name.as_deref().unwrap_or(&doc.client_id).into(),
                first_party: doc.first_party,
                kind: kind.unwrap_or(ClientKind::RegularWeb),
                flows: grant_types.iter().fold(0, |flows, &flow| flows | flow_bit(flow)),
                grant_types: grant_types.into_boxed_slice(),
                user_grants: user_grants.into_boxed_slice(),
                client_grants: client_grants.into_boxed_slice(),
                written_grants: written_grants.into_boxed_slice(),
                metadata: doc.metadata.clone(),
            };
            clients.entry(doc.client_id.as_str().into()).or_insert(client);
        }
        clients
    }
}

/// Whether a reference may be a pattern (`*`, `prefix*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Patterns {
    /// Role permissions and client grants.
    Allowed,
    /// Default scopes: exact names only.
    Refused,
}

/// Adds what `reference` names on `api` to `set`: one defined scope, or
/// with patterns allowed, every scope a pattern matches.
fn resolve(api: &Api, reference: &str, patterns: Patterns, set: &mut ScopeSet) -> Result<(), Problem> {
    if reference.is_empty() {
        return Err(Problem::Empty { what: "scope" });
    }
    let undefined = || Problem::UndefinedScope {
        audience: api.audience.to_string(),
        scope: reference.to_owned(),
    };
    match reference.split_once('*') {
        Some((prefix, "")) if patterns == Patterns::Allowed => {
            if !prefix.is_empty() {
                check_token(prefix).map_err(|source| Problem::InvalidScope {
                    value: reference.to_owned(),
                    source,
                })?;
            }
            let mut matched = false;
            for (id, scope) in api.scopes.keys().enumerate() {
                if scope.as_str().starts_with(prefix) {
                    set.insert(id);
                    matched = true;
                }
            }
            if matched {
                Ok(())
            } else {
                Err(Problem::PatternMatchesNothing {
                    audience: api.audience.to_string(),
                    pattern: reference.to_owned(),
                })
            }
        }
        Some(_) if patterns == Patterns::Allowed => Err(Problem::InvalidPattern {
            pattern: reference.to_owned(),
        }),
        _ => {
            check_token(reference).map_err(|source| Problem::InvalidScope {
                value: reference.to_owned(),
                source,
            })?;
            let id = api.scope_id(reference).ok_or_else(undefined)?;
            set.insert(id);
            Ok(())
        }
    }
}

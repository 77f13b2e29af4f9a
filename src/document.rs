//! `PolicyDocument`: the serde shape of a JSON or TOML policy, plain data.
//!
//! The document is the policy *as written*. Names, scopes and the named
//! values (`kind`, `grant_types`, `subject`, access policies) are plain
//! strings here, so that [`Policy::from_document`](crate::Policy::from_document)
//! can check them all at once and report every problem with its path.
//! Serialization is derived; reading is by hand (in `reader.rs`), so that
//! every unknown field, duplicate key, missing field and wrong type (`null`
//! included, anywhere but `default_audience` and `consent_lifetime`) is
//! reported in one pass with the policy's other problems.

use serde::Serialize;

use crate::metadata::Metadata;
use crate::scope::Limits;
use crate::vocab::{ClientAccess, ClientKind, Flow, ScopeConsent, Subject, UnknownScopes, UserAccess};

/// A whole policy document: settings, APIs, roles and clients.
///
/// Only `apis` is required; `settings`, `roles` and `clients` may be left out.
///
/// A host that keeps its policy in a database builds the document in code,
/// with the typed `new` and `with_…` methods of each part, then builds the
/// policy from it: every problem is still reported with its path.
///
/// ```
/// use scope_policy::{ApiDocument, ClientDocument, ClientKind, Policy, PolicyDocument, ScopeDocument, UserAccess};
/// let document = PolicyDocument::new()
///     .with_api(
///         ApiDocument::new("https://notes.example.com")
///             .with_user_access(UserAccess::RequireClientGrant)
///             .with_scope(ScopeDocument::new("read:notes").with_description("Read your notes"))
///             .with_default_scope("read:notez"),
///     )
///     .with_client(ClientDocument::new("notes-web", ClientKind::RegularWeb).with_first_party(true));
/// let errors = Policy::from_document(document).unwrap_err();
/// assert_eq!(errors.errors()[0].path(), "apis[0].default_scopes[0]");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[non_exhaustive]
pub struct PolicyDocument {
    /// Settings for the whole policy.
    pub settings: SettingsDocument,
    /// The APIs (resource servers) and their scopes.
    pub apis: Vec<ApiDocument>,
    /// The roles users may have.
    pub roles: Vec<RoleDocument>,
    /// The clients (applications).
    pub clients: Vec<ClientDocument>,
}

/// The policy's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct SettingsDocument {
    /// `ignore` (default) or `reject`: what a request's unknown scope does.
    pub unknown_scopes: String,
    /// The audience used when a request names none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_audience: Option<String>,
    /// Longest raw scope parameter, in bytes (default 4096).
    pub max_scope_length: usize,
    /// Most tokens in a scope parameter, before de-duplication (default 128).
    pub max_scope_tokens: usize,
    /// How long the consent record of an approval lasts, in seconds; `None`
    /// (the default) for as long as the records it replaces.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consent_lifetime: Option<i64>,
}

impl Default for SettingsDocument {
    fn default() -> Self {
        SettingsDocument {
            unknown_scopes: ignore(),
            default_audience: None,
            max_scope_length: max_scope_length(),
            max_scope_tokens: max_scope_tokens(),
            consent_lifetime: None,
        }
    }
}

/// One API (resource server).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ApiDocument {
    /// The audience identifier, compared exactly (`https://x/api` ≠ `https://x/api/`).
    pub audience: String,
    /// A display name; the audience when left out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// User tokens only get scopes the user's roles or direct permissions allow.
    pub rbac: bool,
    /// First-party clients skip consent (default true).
    pub allow_skipping_consent: bool,
    /// `offline_access` may be granted for this audience.
    pub allow_offline_access: bool,
    /// `allow_all` (default), `require_client_grant` or `deny_all`.
    pub user_access: String,
    /// `require_client_grant` (default) or `deny_all`.
    pub client_access: String,
    /// What a user flow asks for when the request names no scope.
    pub default_scopes: Vec<String>,
    /// The scopes the API defines, in order.
    pub scopes: Vec<ScopeDocument>,
    /// Notes the host keeps with the API; never interpreted.
    #[serde(skip_serializing_if = "Metadata::is_empty")]
    pub metadata: Metadata,
}

/// One scope an API defines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ScopeDocument {
    /// The scope token, such as `read:appointments`.
    pub name: String,
    /// What the scope lets the client do, shown on the consent prompt.
    pub description: String,
    /// `default` (the rules of consent) or `always` (a one-time scope, asked
    /// on every interactive request and never remembered).
    #[serde(skip_serializing_if = "is_consent_default")]
    pub consent: String,
    /// Whether the user may not leave the scope out of an approval.
    #[serde(skip_serializing_if = "is_false")]
    pub required: bool,
}

/// One role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RoleDocument {
    /// The role's name, as the host passes it in a request.
    pub name: String,
    /// What the role is for.
    pub description: String,
    /// Roles whose permissions this one includes, transitively.
    pub inherits: Vec<String>,
    /// The role's own permissions.
    pub permissions: Vec<PermissionDocument>,
}

/// A permission: one scope (or pattern) of one API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct PermissionDocument {
    /// The API's audience.
    pub audience: String,
    /// A scope, `*` (every scope of the API) or `prefix*`.
    pub scope: String,
}

/// One client (application).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ClientDocument {
    /// The OAuth `client_id`.
    pub client_id: String,
    /// A display name; the client id when left out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Whether the client belongs to the API's owner (default false: third-party).
    pub first_party: bool,
    /// `spa`, `regular_web`, `native` or `machine_to_machine`.
    pub kind: String,
    /// The flows the client may use; when left out, `client_credentials` for
    /// `machine_to_machine`, otherwise `authorization_code` and
    /// `refresh_token` (`device_code` only when listed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grant_types: Option<Vec<String>>,
    /// The client's grants, at most one per audience and subject.
    pub grants: Vec<ClientGrantDocument>,
    /// Notes the host keeps with the client (redirect URIs, a logo); never interpreted.
    #[serde(skip_serializing_if = "Metadata::is_empty")]
    pub metadata: Metadata,
}

/// A client grant: which scopes of one API a client may get, for itself or for users.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ClientGrantDocument {
    /// The API's audience.
    pub audience: String,
    /// `client` or `user`; when left out, `client` for `machine_to_machine`
    /// clients and `user` for the others.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Scopes or patterns (`*`, `prefix*`).
    pub scopes: Vec<String>,
}

fn consent_default() -> String {
    ScopeConsent::Default.as_str().to_owned()
}
fn is_consent_default(consent: &str) -> bool {
    consent == ScopeConsent::Default.as_str()
}
fn is_false(value: &bool) -> bool {
    !value
}
impl PolicyDocument {
    /// A document with default settings and nothing else.
    pub fn new() -> Self {
        PolicyDocument::default()
    }

    /// Sets the settings.
    #[must_use]
    pub fn with_settings(mut self, settings: SettingsDocument) -> Self {
        self.settings = settings;
        self
    }

    /// Adds an API.
    #[must_use]
    pub fn with_api(mut self, api: ApiDocument) -> Self {
        self.apis.push(api);
        self
    }

    /// Adds a role.
    #[must_use]
    pub fn with_role(mut self, role: RoleDocument) -> Self {
        self.roles.push(role);
        self
    }

    /// Adds a client.
    #[must_use]
    pub fn with_client(mut self, client: ClientDocument) -> Self {
        self.clients.push(client);
        self
    }
}

impl SettingsDocument {
    /// Sets what a request's unknown scopes do.
    #[must_use]
    pub fn with_unknown_scopes(mut self, unknown_scopes: UnknownScopes) -> Self {
        self.unknown_scopes = unknown_scopes.as_str().to_owned();
        self
    }

    /// Sets the audience used when a request names none.
    #[must_use]
    pub fn with_default_audience(mut self, audience: impl Into<String>) -> Self {
        self.default_audience = Some(audience.into());
        self
    }

    /// Sets the limits on a request's scope parameter.
    #[must_use]
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.max_scope_length = limits.max_scope_length;
        self.max_scope_tokens = limits.max_scope_tokens;
        self
    }

    /// Sets how long the consent record of an approval lasts, in seconds
    /// (values above `i64::MAX` are kept at `i64::MAX`).
    #[must_use]
    pub fn with_consent_lifetime(mut self, seconds: u64) -> Self {
        self.consent_lifetime = Some(i64::try_from(seconds).unwrap_or(i64::MAX));
        self
    }
}

impl ApiDocument {
    /// An API with this audience, every setting at its default and no scope.
    pub fn new(audience: impl Into<String>) -> Self {
        ApiDocument {
            audience: audience.into(),
            name: None,
            rbac: false,
            allow_skipping_consent: true,
            allow_offline_access: false,
            user_access: allow_all(),
            client_access: require_client_grant(),
            default_scopes: Vec::new(),
            scopes: Vec::new(),
            metadata: Metadata::new(),
        }
    }

    /// Sets the display name.
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sets whether user tokens only get what the user's roles and permissions allow.
    #[must_use]
    pub fn with_rbac(mut self, rbac: bool) -> Self {
        self.rbac = rbac;
        self
    }

    /// Sets whether first-party clients skip consent.
    #[must_use]
    pub fn with_allow_skipping_consent(mut self, allow: bool) -> Self {
        self.allow_skipping_consent = allow;
        self
    }

    /// Sets whether `offline_access` may be granted for this audience.
    #[must_use]
    pub fn with_allow_offline_access(mut self, allow: bool) -> Self {
        self.allow_offline_access = allow;
        self
    }

    /// Sets which clients may get user tokens.
    #[must_use]
    pub fn with_user_access(mut self, access: UserAccess) -> Self {
        self.user_access = access.as_str().to_owned();
        self
    }

    /// Sets which clients may get client-credentials tokens.
    #[must_use]
    pub fn with_client_access(mut self, access: ClientAccess) -> Self {
        self.client_access = access.as_str().to_owned();
        self
    }

    /// Adds a scope to what a user flow asks for when the request names none.
    #[must_use]
    pub fn with_default_scope(mut self, scope: impl Into<String>) -> Self {
        self.default_scopes.push(scope.into());
        self
    }

    /// Adds a scope definition.
    #[must_use]
    pub fn with_scope(mut self, scope: ScopeDocument) -> Self {
        self.scopes.push(scope);
        self
    }

    /// Adds a metadata entry.
    #[must_use]
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key, value);
        self
    }
}

impl ScopeDocument {
    /// A scope definition with this name, no description, default consent, not required.
    pub fn new(name: impl Into<String>) -> Self {
        ScopeDocument {
            name: name.into(),
            description: String::new(),
            consent: consent_default(),
            required: false,
        }
    }

    /// Sets the description shown on the consent prompt.
    #[must_use]
    pub fn with_description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// Sets how consent treats the scope.
    #[must_use]
    pub fn with_consent(mut self, consent: ScopeConsent) -> Self {
        self.consent = consent.as_str().to_owned();
        self
    }

    /// Sets whether the user may not leave the scope out of an approval.
    #[must_use]
    pub fn with_required(mut self, required: bool) -> Self {
        self.required = required;
        self
    }
}

impl RoleDocument {
    /// A role with this name and nothing else.
    pub fn new(name: impl Into<String>) -> Self {
        RoleDocument {
            name: name.into(),
            description: String::new(),
            inherits: Vec::new(),
            permissions: Vec::new(),
        }
    }

    /// Sets what the role is for.
    #[must_use]
    pub fn with_description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// Adds a role whose permissions this one includes.
    #[must_use]
    pub fn with_inherits(mut self, role: impl Into<String>) -> Self {
        self.inherits.push(role.into());
        self
    }

    /// Adds a permission: a scope or pattern of one API.
    #[must_use]
    pub fn with_permission(mut self, audience: impl Into<String>, scope: impl Into<String>) -> Self {
        self.permissions.push(PermissionDocument::new(audience, scope));
        self
    }
}

impl PermissionDocument {
    /// A permission for `scope` (a scope, `*` or `prefix*`) of the API `audience`.
    pub fn new(audience: impl Into<String>, scope: impl Into<String>) -> Self {
        PermissionDocument {
            audience: audience.into(),
            scope: scope.into(),
        }
    }
}

impl ClientDocument {
    /// A third-party client of this kind, with the kind's default grant types.
    pub fn new(client_id: impl Into<String>, kind: ClientKind) -> Self {
        ClientDocument {
            client_id: client_id.into(),
            name: None,
            first_party: false,
            kind: kind.as_str().to_owned(),
            grant_types: None,
            grants: Vec::new(),
            metadata: Metadata::new(),
        }
    }

    /// Sets the display name.
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// A client with no id and no kind, standing in for one that could not
    /// be read, so that the clients after it keep their positions.
    pub(crate) fn placeholder() -> Self {
        ClientDocument {
            kind: String::new(),
            ..ClientDocument::new("", ClientKind::Spa)
        }
    }

    /// Sets whether the client belongs to the APIs' owner.
    #[must_use]
    pub fn with_first_party(mut self, first_party: bool) -> Self {
        self.first_party = first_party;
        self
    }

    /// Sets the flows the client may use, instead of its kind's defaults.
    #[must_use]
    pub fn with_grant_types(mut self, flows: impl IntoIterator<Item = Flow>) -> Self {
        self.grant_types = Some(flows.into_iter().map(|flow| flow.as_str().to_owned()).collect());
        self
    }

    /// Adds a client grant.
    #[must_use]
    pub fn with_grant(mut self, grant: ClientGrantDocument) -> Self {
        self.grants.push(grant);
        self
    }

    /// Adds a metadata entry.
    #[must_use]
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key, value);
        self
    }
}

impl ClientGrantDocument {
    /// A grant of no scope of the API `audience`, for the kind's default subject.
    pub fn new(audience: impl Into<String>) -> Self {
        ClientGrantDocument {
            audience: audience.into(),
            subject: None,
            scopes: Vec::new(),
        }
    }

    /// Sets whom the grant is for.
    #[must_use]
    pub fn with_subject(mut self, subject: Subject) -> Self {
        self.subject = Some(subject.as_str().to_owned());
        self
    }

    /// Adds a scope or pattern (`*`, `prefix*`).
    #[must_use]
    pub fn with_scope(mut self, scope: impl Into<String>) -> Self {
        self.scopes.push(scope.into());
        self
    }
}

fn ignore() -> String {
    UnknownScopes::Ignore.as_str().to_owned()
}
fn allow_all() -> String {
    UserAccess::AllowAll.as_str().to_owned()
}
fn require_client_grant() -> String {
    ClientAccess::RequireClientGrant.as_str().to_owned()
}
fn max_scope_length() -> usize {
    Limits::DEFAULT_MAX_SCOPE_LENGTH
}
fn max_scope_tokens() -> usize {
    Limits::DEFAULT_MAX_SCOPE_TOKENS
}

impl PolicyDocument {
    /// Writes the document as JSON text.
    ///
    /// # Errors
    ///
    /// None in practice: every field is a string, number, bool or list. The
    /// `Result` is serde_json's.
    #[cfg(feature = "json")]
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string_pretty(self)
    }

    /// Writes the document as TOML text.
    ///
    /// # Errors
    ///
    /// None in practice; the `Result` is the toml crate's.
    #[cfg(feature = "toml")]
    pub fn to_toml(&self) -> Result<String, toml::ser::Error> {
        toml::to_string(self)
    }
}

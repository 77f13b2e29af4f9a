//! `PolicyDocument`: the serde shape of a JSON or TOML policy, plain data.
//!
//! The document is the policy *as written*. Names, scopes and the named
//! values (`kind`, `grant_types`, `subject`, access policies) are plain
//! strings here, so that [`Policy::from_document`](crate::Policy::from_document)
//! can check them all at once and report every problem with its path.
//! Unknown fields, duplicate keys and wrong types are refused while reading,
//! and so is `null` anywhere but where the document allows it
//! (`default_audience`, `consent_lifetime`).

use std::fmt;

use serde::de::value::MapAccessDeserializer;
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[cfg(any(feature = "json", feature = "toml"))]
use crate::error::LoadError;
use crate::metadata::Metadata;
use crate::scope::Limits;
use crate::vocab::{ClientAccess, ScopeConsent, UnknownScopes, UserAccess};

/// A whole policy document: settings, APIs, roles and clients.
///
/// Only `apis` is required; `settings`, `roles` and `clients` may be left out.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, remote = "Self")]
pub struct PolicyDocument {
    /// Settings for the whole policy.
    #[serde(default)]
    pub settings: SettingsDocument,
    /// The APIs (resource servers) and their scopes.
    pub apis: Vec<ApiDocument>,
    /// The roles users may have.
    #[serde(default)]
    pub roles: Vec<RoleDocument>,
    /// The clients (applications).
    #[serde(default)]
    pub clients: Vec<ClientDocument>,
}

/// The policy's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, remote = "Self")]
pub struct SettingsDocument {
    /// `ignore` (default) or `reject`: what a request's unknown scope does.
    #[serde(default = "ignore")]
    pub unknown_scopes: String,
    /// The audience used when a request names none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_audience: Option<String>,
    /// Longest raw scope parameter, in bytes (default 4096).
    #[serde(default = "max_scope_length")]
    pub max_scope_length: usize,
    /// Most tokens in a scope parameter, before de-duplication (default 128).
    #[serde(default = "max_scope_tokens")]
    pub max_scope_tokens: usize,
    /// How long the consent record of an approval lasts, in seconds; `None`
    /// (the default) for as long as the records it replaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, remote = "Self")]
pub struct ApiDocument {
    /// The audience identifier, compared exactly (`https://x/api` ≠ `https://x/api/`).
    pub audience: String,
    /// A display name; the audience when left out.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "not_null"
    )]
    pub name: Option<String>,
    /// User tokens only get scopes the user's roles or direct permissions allow.
    #[serde(default)]
    pub rbac: bool,
    /// First-party clients skip consent (default true).
    #[serde(default = "yes")]
    pub allow_skipping_consent: bool,
    /// `offline_access` may be granted for this audience.
    #[serde(default)]
    pub allow_offline_access: bool,
    /// `allow_all` (default), `require_client_grant` or `deny_all`.
    #[serde(default = "allow_all")]
    pub user_access: String,
    /// `require_client_grant` (default) or `deny_all`.
    #[serde(default = "require_client_grant")]
    pub client_access: String,
    /// What a user flow asks for when the request names no scope.
    #[serde(default)]
    pub default_scopes: Vec<String>,
    /// The scopes the API defines, in order.
    #[serde(default)]
    pub scopes: Vec<ScopeDocument>,
    /// Notes the host keeps with the API; never interpreted.
    #[serde(default, skip_serializing_if = "Metadata::is_empty")]
    pub metadata: Metadata,
}

/// One scope an API defines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, remote = "Self")]
pub struct ScopeDocument {
    /// The scope token, such as `read:appointments`.
    pub name: String,
    /// What the scope lets the client do, shown on the consent prompt.
    #[serde(default)]
    pub description: String,
    /// `default` (the rules of consent) or `always` (a one-time scope, asked
    /// on every interactive request and never remembered).
    #[serde(default = "consent_default", skip_serializing_if = "is_consent_default")]
    pub consent: String,
    /// Whether the user may not leave the scope out of an approval.
    #[serde(default, skip_serializing_if = "is_false")]
    pub required: bool,
}

/// One role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, remote = "Self")]
pub struct RoleDocument {
    /// The role's name, as the host passes it in a request.
    pub name: String,
    /// What the role is for.
    #[serde(default)]
    pub description: String,
    /// Roles whose permissions this one includes, transitively.
    #[serde(default)]
    pub inherits: Vec<String>,
    /// The role's own permissions.
    #[serde(default)]
    pub permissions: Vec<PermissionDocument>,
}

/// A permission: one scope (or pattern) of one API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, remote = "Self")]
pub struct PermissionDocument {
    /// The API's audience.
    pub audience: String,
    /// A scope, `*` (every scope of the API) or `prefix*`.
    pub scope: String,
}

/// One client (application).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, remote = "Self")]
pub struct ClientDocument {
    /// The OAuth `client_id`.
    pub client_id: String,
    /// A display name; the client id when left out.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "not_null"
    )]
    pub name: Option<String>,
    /// Whether the client belongs to the API's owner (default false: third-party).
    #[serde(default)]
    pub first_party: bool,
    /// `spa`, `regular_web`, `native` or `machine_to_machine`.
    pub kind: String,
    /// The flows the client may use; when left out, `client_credentials` for
    /// `machine_to_machine`, otherwise `authorization_code` and
    /// `refresh_token` (`device_code` only when listed).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "not_null"
    )]
    pub grant_types: Option<Vec<String>>,
    /// The client's grants, at most one per audience and subject.
    #[serde(default)]
    pub grants: Vec<ClientGrantDocument>,
    /// Notes the host keeps with the client (redirect URIs, a logo); never interpreted.
    #[serde(default, skip_serializing_if = "Metadata::is_empty")]
    pub metadata: Metadata,
}

/// A client grant: which scopes of one API a client may get, for itself or for users.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, remote = "Self")]
pub struct ClientGrantDocument {
    /// The API's audience.
    pub audience: String,
    /// `client` or `user`; when left out, `client` for `machine_to_machine`
    /// clients and `user` for the others.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "not_null"
    )]
    pub subject: Option<String>,
    /// Scopes or patterns (`*`, `prefix*`).
    #[serde(default)]
    pub scopes: Vec<String>,
}

/// Reads an optional field that, when present, must not be `null`: the
/// document allows `null` only where it shows it (`default_audience`,
/// `consent_lifetime`). A field left out is `None` through `#[serde(default)]`.
fn not_null<'de, D: Deserializer<'de>, T: Deserialize<'de>>(deserializer: D) -> Result<Option<T>, D::Error> {
    T::deserialize(deserializer).map(Some)
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
fn ignore() -> String {
    UnknownScopes::Ignore.as_str().to_owned()
}
fn allow_all() -> String {
    UserAccess::AllowAll.as_str().to_owned()
}
fn require_client_grant() -> String {
    ClientAccess::RequireClientGrant.as_str().to_owned()
}
fn yes() -> bool {
    true
}
fn max_scope_length() -> usize {
    Limits::DEFAULT_MAX_SCOPE_LENGTH
}
fn max_scope_tokens() -> usize {
    Limits::DEFAULT_MAX_SCOPE_TOKENS
}

impl PolicyDocument {
    /// Reads a document from JSON text, checking its shape only.
    ///
    /// # Errors
    ///
    /// [`LoadError::Syntax`] with the path of the problem (`apis[0].rbca`) for
    /// malformed JSON, an unknown field, a duplicate key, a missing required
    /// field, a wrong type, or trailing text.
    #[cfg(feature = "json")]
    pub fn from_json(text: &str) -> Result<Self, LoadError> {
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let document = serde_path_to_error::deserialize(&mut deserializer).map_err(syntax)?;
        deserializer.end().map_err(|error| LoadError::Syntax {
            path: String::new(),
            message: error.to_string(),
        })?;
        Ok(document)
    }

    /// Reads a document from TOML text, checking its shape only.
    ///
    /// # Errors
    ///
    /// [`LoadError::Syntax`] with the path of the problem for malformed TOML,
    /// an unknown field, a duplicate key, a missing required field or a wrong type.
    #[cfg(feature = "toml")]
    pub fn from_toml(text: &str) -> Result<Self, LoadError> {
        let deserializer = toml::Deserializer::parse(text).map_err(|error| LoadError::Syntax {
            path: String::new(),
            message: one_line(&error.to_string()),
        })?;
        serde_path_to_error::deserialize(deserializer).map_err(syntax)
    }

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

/// A shape error with its path, on one line.
#[cfg(any(feature = "json", feature = "toml"))]
fn syntax<E: std::fmt::Display>(error: serde_path_to_error::Error<E>) -> LoadError {
    let path = error.path().to_string();
    LoadError::Syntax {
        path: if path == "." { String::new() } else { path },
        message: one_line(&error.into_inner().to_string()),
    }
}

/// Parser messages may span lines (TOML quotes the source); logs want one.
#[cfg(any(feature = "json", feature = "toml"))]
fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Implements serde for document structs so that they read from objects
/// only. Serde's derive also reads a struct from an array, by position, which
/// would let `["https://x/api", "X", true]` stand for an API: a wrong type
/// that DESIGN §4 wants refused. The derive (`remote = "Self"`) provides the
/// field handling as inherent functions; these impls accept an object (a JSON
/// object, a TOML table) and hand it over.
macro_rules! object_only {
    ($($ty:ident),+ $(,)?) => {$(
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                $ty::serialize(self, serializer)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct Object;
                impl<'de> Visitor<'de> for Object {
                    type Value = $ty;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str("an object")
                    }
                    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<$ty, A::Error> {
                        $ty::deserialize(MapAccessDeserializer::new(map))
                    }
                }
                deserializer.deserialize_map(Object)
            }
        }
    )+};
}

object_only!(
    PolicyDocument,
    SettingsDocument,
    ApiDocument,
    ScopeDocument,
    RoleDocument,
    PermissionDocument,
    ClientDocument,
    ClientGrantDocument,
);

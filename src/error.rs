//! Errors: refusing a request (`GrantError`, with its OAuth error code) and
//! refusing a policy (`PolicyError`, with its document path).

use std::fmt;

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

use crate::scope::ScopeError;
use crate::vocab::{ClientKind, Flow, PromptError, Subject, UnknownValue};

/// The OAuth 2.0 error code a refused request answers with
/// (RFC 6749 §4.1.2.1, §5.2; RFC 8707 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// `invalid_request`: a parameter is missing, repeated or malformed.
    InvalidRequest,
    /// `invalid_client`: the client is unknown.
    InvalidClient,
    /// `unauthorized_client`: the client may not use this flow.
    UnauthorizedClient,
    /// `access_denied`: the API or the user refused.
    AccessDenied,
    /// `invalid_scope`: the scope parameter is invalid, unknown or too wide.
    InvalidScope,
    /// `invalid_target` (RFC 8707): the audience is unknown, or not the one
    /// a refresh token was issued for.
    InvalidTarget,
    /// `consent_required` (OpenID Connect Core §3.1.2.6): `prompt=none`, but
    /// the user would have to be asked.
    ConsentRequired,
}

impl ErrorCode {
    /// The code as it goes on the wire, such as `invalid_scope`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::UnauthorizedClient => "unauthorized_client",
            ErrorCode::AccessDenied => "access_denied",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::InvalidTarget => "invalid_target",
            ErrorCode::ConsentRequired => "consent_required",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// As its wire spelling, such as `"invalid_scope"`.
impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// Why a request was refused as a whole: a request-level check failed, or
/// the answer to a consent prompt refused it.
///
/// [`GrantError::code`] gives the OAuth error code,
/// [`GrantError::error_description`] a text safe to send, and
/// [`GrantError::response`] the whole OAuth error response (body, HTTP
/// status, whether it may go to the redirect URI). `Display` is for logs: it
/// quotes the request's input. Serialized (for an audit log), an error is
/// `{"error":…,"error_description":…,"message":…}`, `message` being `Display`.
///
/// ```
/// use scope_policy::{ErrorCode, Policy, Request, User};
/// let policy = Policy::from_json(r#"{ "apis": [{ "audience": "https://a.example" }],
///   "clients": [{ "client_id": "app", "kind": "spa" }] }"#)?;
/// let alice = User::new("alice");
/// let error = policy.grant(&Request::new("app").audience("https://b.example").user(&alice))
///     .expect_err("the audience is unknown");
/// assert_eq!(error.code(), ErrorCode::InvalidTarget);
/// assert_eq!(error.error_description(), "The requested audience is not a known API");
/// assert_eq!(error.to_string(), r#"unknown audience "https://b.example""#);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GrantError {
    /// 1. The client id is not in the policy.
    #[error("unknown client {client_id:?}")]
    UnknownClient {
        /// The client id as requested.
        client_id: String,
    },
    /// 2. The flow is not one of the client's grant types.
    #[error("client `{client_id}` may not use the {flow} flow")]
    FlowNotAllowed {
        /// The client.
        client_id: String,
        /// The flow it asked for.
        flow: Flow,
    },
    /// 3. A user flow came without a user.
    #[error("the {flow} flow needs a user")]
    MissingUser {
        /// The flow.
        flow: Flow,
    },
    /// 3. A client credentials request came with a user.
    #[error("the client_credentials flow cannot act for a user")]
    UnexpectedUser,
    /// 3. A refresh came without the scope of the original grant.
    #[error("a refresh needs the original grant's scope")]
    MissingOriginalScope,
    /// 3. The `prompt` of an `authorization_code` request is not a set of
    ///    `none`, `login`, `consent` and `select_account`, or `none` is not alone.
    #[error("invalid prompt parameter")]
    Prompt(#[source] PromptError),
    /// 4. The scope parameter is malformed or over a limit.
    #[error("invalid scope parameter")]
    Scope(#[source] ScopeError),
    /// 5. The audience is not an API of the policy.
    #[error("unknown audience {audience:?}")]
    UnknownAudience {
        /// The audience as requested.
        audience: String,
    },
    /// 5. A client credentials request named no audience and the policy has no default.
    #[error("the client_credentials flow needs an audience")]
    MissingAudience,
    /// 5. The audience of the grant being refreshed is no longer an API of the policy.
    #[error("the refreshed grant's audience {audience:?} is not an API of the policy")]
    UnknownOriginalAudience {
        /// The original audience, as the host passed it.
        audience: String,
    },
    /// 5. A refresh names an audience other than the one its grant was for
    ///    (RFC 9700 §4.14.2: a refresh token never moves to another API).
    #[error(
        "a refresh names the audience {audience:?}, but its grant was for {}",
        .original.as_deref().map_or_else(|| "no audience".to_owned(), |original| format!("{original:?}"))
    )]
    AudienceChanged {
        /// The audience the refresh names.
        audience: String,
        /// The audience of the grant being refreshed, if it had one.
        original: Option<String>,
    },
    /// 6. The API refuses this client for this flow.
    #[error("client `{client_id}` has no access to `{audience}` for {subject} tokens")]
    ApiAccessDenied {
        /// The client.
        client_id: String,
        /// The API's audience.
        audience: String,
        /// Whom the token would be for.
        subject: Subject,
    },
    /// 7. Under `unknown_scopes = "reject"`, a token is neither an OIDC scope nor defined by the API.
    #[error("unknown scope {scope:?}")]
    UnknownScope {
        /// The token as requested.
        scope: String,
    },
    /// 8. The refresh's `original_scope` is malformed or over a limit.
    #[error("invalid original scope")]
    OriginalScope(#[source] ScopeError),
    /// 8. A refresh asked for a scope the original grant did not have (RFC 6749 §6).
    #[error("refresh asks for {scope:?}, which the original grant did not have")]
    ScopeWidened {
        /// The token as requested.
        scope: String,
    },
    /// The request carries `prompt=none`, but the decision would ask the user.
    #[error("prompt=none, but the user must be asked for consent")]
    ConsentRequired,
    /// The answer names a prompt identity that is not the identity of the
    /// prompt the same request makes now: what the user saw has changed
    /// (another tab answered, the policy or the records changed). Show the
    /// new prompt; nothing was granted.
    #[error("the consent prompt changed since it was shown")]
    PromptChanged,
    /// An approval named a scope that was not on the consent prompt.
    #[error("approval names {scope:?}, which was not on the consent prompt")]
    ApprovalNotOnPrompt {
        /// The token as approved.
        scope: String,
    },
    /// An approval left out a scope the prompt marked required: a refusal of
    /// the whole prompt.
    #[error("the approval leaves out the required scope `{scope}`")]
    RequiredScopeLeftOut {
        /// The required scope.
        scope: String,
    },
    /// An approval came without `now` while the policy sets a consent
    /// lifetime, so the new record's expiry cannot be computed.
    #[error("an approval needs the current time: the policy sets consent_lifetime")]
    LifetimeWithoutNow,
    /// An approval came without `now` while a stored record for this user,
    /// client and audience expires: without the clock, the new record would
    /// make expiring consent permanent.
    #[error("an approval needs the current time: a stored consent record expires")]
    ExpiringConsentWithoutNow,
    /// The user refused the consent prompt.
    #[error("the user denied consent")]
    ConsentDenied,
}

impl GrantError {
    /// The RFC 6749 §5.2 / RFC 8707 code to answer with, such as `invalid_scope`.
    pub fn code(&self) -> ErrorCode {
        match self {
            GrantError::UnknownClient { .. } => ErrorCode::InvalidClient,
            GrantError::FlowNotAllowed { .. } => ErrorCode::UnauthorizedClient,
            GrantError::MissingUser { .. }
            | GrantError::UnexpectedUser
            | GrantError::MissingOriginalScope
            | GrantError::Prompt(_)
            | GrantError::MissingAudience
            | GrantError::ApprovalNotOnPrompt { .. }
            | GrantError::LifetimeWithoutNow
            | GrantError::ExpiringConsentWithoutNow
            | GrantError::PromptChanged => ErrorCode::InvalidRequest,
            GrantError::Scope(_)
            | GrantError::UnknownScope { .. }
            | GrantError::OriginalScope(_)
            | GrantError::ScopeWidened { .. } => ErrorCode::InvalidScope,
            GrantError::UnknownAudience { .. }
            | GrantError::UnknownOriginalAudience { .. }
            | GrantError::AudienceChanged { .. } => ErrorCode::InvalidTarget,
            GrantError::ApiAccessDenied { .. }
            | GrantError::RequiredScopeLeftOut { .. }
            | GrantError::ConsentDenied => ErrorCode::AccessDenied,
            GrantError::ConsentRequired => ErrorCode::ConsentRequired,
        }
    }

    /// A description safe to send as `error_description` (RFC 6749 §5.2):
    /// printable ASCII without `"` or `\`, and no echo of the request's input.
    #[doc(hidden)]
    #[deprecated(
        note = "renamed `error_description`: the name clashed with `std::error::Error::description`"
    )]
    pub fn description(&self) -> &'static str {
        self.error_description()
    }

    /// A description safe to send as `error_description` (RFC 6749 §5.2):
    /// printable ASCII without `"` or `\`, and no echo of the request's input.
    pub fn error_description(&self) -> &'static str {
        match self {
            GrantError::UnknownClient { .. } => "The client is not registered",
            GrantError::FlowNotAllowed { .. } => "The client may not use this grant type",
            GrantError::MissingUser { .. } => "This grant type needs an authenticated user",
            GrantError::UnexpectedUser => "Client credentials cannot act for a user",
            GrantError::MissingOriginalScope => "A refresh needs the scope of the original grant",
            GrantError::Prompt(_) => "The prompt parameter is invalid",
            GrantError::Scope(ScopeError::TooLong { .. }) => "The scope parameter is too long",
            GrantError::Scope(ScopeError::TooManyTokens { .. }) => "The scope parameter has too many scopes",
            GrantError::Scope(_) => "The scope parameter holds a character that is not allowed",
            GrantError::UnknownAudience { .. } => "The requested audience is not a known API",
            GrantError::MissingAudience => "Client credentials need an audience",
            GrantError::UnknownOriginalAudience { .. } => {
                "The refresh token was issued for an API that no longer exists"
            }
            GrantError::AudienceChanged { .. } => "A refresh token cannot be used for another audience",
            GrantError::ApiAccessDenied { .. } => "The client may not get tokens for this API",
            GrantError::UnknownScope { .. } => "A requested scope is not defined",
            GrantError::OriginalScope(_) => "The scope of the original grant is invalid",
            GrantError::ScopeWidened { .. } => "A refresh may not ask for scopes beyond the original grant",
            GrantError::ConsentRequired => "The user must consent, but prompt=none forbids asking",
            GrantError::PromptChanged => "The consent prompt changed, it must be shown again",
            GrantError::ApprovalNotOnPrompt { .. } => "The approval names a scope that was not asked for",
            GrantError::RequiredScopeLeftOut { .. } => "The user did not approve a required scope",
            GrantError::LifetimeWithoutNow | GrantError::ExpiringConsentWithoutNow => {
                "An approval needs the current time"
            }
            GrantError::ConsentDenied => "The user denied consent",
        }
    }
}

impl Serialize for GrantError {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(3))?;
        map.serialize_entry("error", &self.code())?;
        map.serialize_entry("error_description", self.error_description())?;
        map.serialize_entry("message", &self.to_string())?;
        map.end()
    }
}

/// One problem of a policy document, at its path (`roles[2].permissions[0].scope`).
///
/// `Display` is `path: problem`, or the problem alone at the document's root
/// (an empty path).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{problem}", if path.is_empty() { String::new() } else { format!("{path}: ") })]
pub struct PolicyError {
    path: String,
    problem: Problem,
}

impl PolicyError {
    pub(crate) fn new(path: String, problem: Problem) -> Self {
        PolicyError { path, problem }
    }

    /// Where the problem is, from the document root: field names joined by
    /// `.`, array positions as `[i]`, such as `clients[0].grants[1].scopes[2]`;
    /// empty at the document's root (a document that is not an object, or a
    /// field with an empty name written at the root).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// What the problem is.
    pub fn problem(&self) -> &Problem {
        &self.problem
    }
}

/// What is wrong at a [`PolicyError`]'s path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Problem {
    /// A name that must be unique appears again; reported at the later one.
    #[error("duplicate {what} `{name}`, first defined at {first}")]
    Duplicate {
        /// What kind of name: `audience`, `scope`, `role name` or `client id`.
        what: &'static str,
        /// The name.
        name: String,
        /// The path of its first definition.
        first: String,
    },
    /// A name or id is empty.
    #[error("{what} is empty")]
    Empty {
        /// What is empty.
        what: &'static str,
    },
    /// A scope name or pattern is not valid scope syntax (RFC 6749 §3.3).
    #[error("{value:?} is not a valid scope token")]
    InvalidScope {
        /// The value as written.
        value: String,
        /// What is wrong with it.
        #[source]
        source: ScopeError,
    },
    /// An audience is empty or holds whitespace or control characters.
    #[error(
        "{value:?} is not a valid audience: it must be non-empty, without whitespace or control characters"
    )]
    InvalidAudience {
        /// The value as written.
        value: String,
    },
    /// An API defines one of the reserved OIDC scopes.
    #[error("`{name}` is reserved by OpenID Connect and belongs to no API")]
    ReservedScope {
        /// The scope name.
        name: String,
    },
    /// An API scope name holds `*`, which is reserved for patterns.
    #[error("`{name}` holds `*`, which is reserved for patterns")]
    Wildcard {
        /// The scope name.
        name: String,
    },
    /// A `*` stands somewhere other than at the end of a pattern.
    #[error("`{pattern}` is not a pattern: `*` may only end one")]
    InvalidPattern {
        /// The pattern as written.
        pattern: String,
    },
    /// A named value (`kind`, `grant_types`, `subject`, access policies, `unknown_scopes`) is unknown.
    #[error(transparent)]
    UnknownValue(UnknownValue),
    /// A reference names an audience that no API has.
    #[error("no API has the audience `{audience}`")]
    UnknownApi {
        /// The audience as written.
        audience: String,
    },
    /// A reference names a scope the API does not define.
    #[error("`{audience}` defines no scope `{scope}`")]
    UndefinedScope {
        /// The API's audience.
        audience: String,
        /// The scope as written.
        scope: String,
    },
    /// A pattern matches none of the API's scopes.
    #[error("pattern `{pattern}` matches no scope of `{audience}`")]
    PatternMatchesNothing {
        /// The API's audience.
        audience: String,
        /// The pattern as written.
        pattern: String,
    },
    /// A client has a second grant for the same audience and subject.
    #[error("second `{subject}` grant for `{audience}`, the first is at {first}")]
    DuplicateGrant {
        /// The API's audience.
        audience: String,
        /// The subject both grants are for.
        subject: Subject,
        /// The path of the first grant.
        first: String,
    },
    /// `inherits` names a role the policy does not define.
    #[error("no role is named `{name}`")]
    UnknownRole {
        /// The role name as written.
        name: String,
    },
    /// A public client (`spa`, `native`) lists `client_credentials`: it cannot
    /// keep the secret the flow authenticates with (RFC 6749 §2.1).
    #[error("a {kind} client is public and may not use client_credentials")]
    PublicClientCredentials {
        /// The client's kind.
        kind: ClientKind,
    },
    /// `consent_lifetime` is not a positive number of seconds.
    #[error("consent_lifetime must be a positive number of seconds, not {value}")]
    InvalidConsentLifetime {
        /// The value as written.
        value: i64,
    },
    /// The role inherits from itself, directly or through others.
    #[error("inheritance cycle: {}", cycle_text(.cycle, *.omitted))]
    InheritanceCycle {
        /// The roles on a cycle, starting and ending with this one, each
        /// inheriting the next; of a long cycle, the first sixteen and this
        /// one again. Roles on one cycle of their component report that
        /// cycle; a role off it reports its shortest way onto the cycle,
        /// around it and back, which may pass another role twice.
        cycle: Vec<String>,
        /// How many roles of a long cycle `cycle` leaves out (0 for a short one).
        omitted: usize,
    },
    /// A field the document does not have, such as a misspelt `rbca`. The
    /// field is not read; the rest of its object is.
    #[error("unknown field `{field}`, expected one of {}", field_list(.expected))]
    UnknownField {
        /// The field as written.
        field: String,
        /// The fields the object may have.
        expected: &'static [&'static str],
    },
    /// A key written twice in one object, reported at the later one; the
    /// first one is read.
    #[error("duplicate key `{key}`")]
    DuplicateKey {
        /// The key.
        key: String,
    },
    /// A required field is left out; reported at the path it belongs at.
    #[error("missing field `{field}`")]
    MissingField {
        /// The field's name.
        field: &'static str,
    },
    /// A value of the wrong type: a string where a list belongs, a negative
    /// limit, or `null` where the document does not allow it. The value is
    /// not read, and what it could have caused elsewhere is not reported.
    #[error("expected {expected}, found {found}")]
    WrongType {
        /// What the document allows here, such as `a boolean`.
        expected: &'static str,
        /// What is written, such as `the string "yes"`.
        found: String,
    },
}

/// `` `a`, `b`, `c` ``.
fn field_list(fields: &[&str]) -> String {
    let quoted: Vec<String> = fields.iter().map(|field| format!("`{field}`")).collect();
    quoted.join(", ")
}

/// `a -> b -> a`, or `a -> b -> … 998 more … -> a` for a long cycle.
fn cycle_text(cycle: &[String], omitted: usize) -> String {
    match (omitted, cycle.split_last()) {
        (0, _) | (_, None) => cycle.join(" -> "),
        (_, Some((last, rest))) => format!("{} -> … {omitted} more … -> {last}", rest.join(" -> ")),
    }
}

/// Every problem of a policy document, in document order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyErrors {
    // INVARIANT: not empty.
    errors: Vec<PolicyError>,
}

impl PolicyErrors {
    /// The problems in document order, whatever order the checks ran in
    /// (a stable sort keeps two problems at one path in the order they were
    /// found); `None` when there is no problem.
    pub(crate) fn in_document_order(mut errors: Vec<PolicyError>) -> Option<Self> {
        errors.sort_by_cached_key(|error| document_position(error.path()));
        (!errors.is_empty()).then_some(PolicyErrors { errors })
    }

    /// The problems, in document order.
    pub fn errors(&self) -> &[PolicyError] {
        &self.errors
    }

    /// How many problems there are (at least one).
    pub fn len(&self) -> usize {
        self.errors.len()
    }

    /// Always false: a `PolicyErrors` holds at least one problem.
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// Iterates over the problems, in document order.
    pub fn iter(&self) -> std::slice::Iter<'_, PolicyError> {
        self.errors.iter()
    }
}

impl<'a> IntoIterator for &'a PolicyErrors {
    type Item = &'a PolicyError;
    type IntoIter = std::slice::Iter<'a, PolicyError>;
    fn into_iter(self) -> Self::IntoIter {
        self.errors.iter()
    }
}

impl IntoIterator for PolicyErrors {
    type Item = PolicyError;
    type IntoIter = std::vec::IntoIter<PolicyError>;
    fn into_iter(self) -> Self::IntoIter {
        self.errors.into_iter()
    }
}

/// As `{"path":…,"message":…}`.
impl Serialize for PolicyError {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("path", &self.path)?;
        map.serialize_entry("message", &self.problem.to_string())?;
        map.end()
    }
}

/// As a list of `{"path":…,"message":…}`, in document order.
impl Serialize for PolicyErrors {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.errors.len()))?;
        for error in &self.errors {
            seq.serialize_element(error)?;
        }
        seq.end()
    }
}

impl fmt::Display for PolicyErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.errors.len();
        write!(
            f,
            "the policy has {count} problem{}:",
            if count == 1 { "" } else { "s" }
        )?;
        for error in &self.errors {
            write!(f, "\n  {error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for PolicyErrors {}

/// Every field name of the document, in an order that agrees with the field
/// order of each object that has it (`audience` before `name` in an API,
/// `name` before `inherits` in a role, ...).
const FIELD_ORDER: &[&str] = &[
    "settings",
    "unknown_scopes",
    "default_audience",
    "max_scope_length",
    "max_scope_tokens",
    "consent_lifetime",
    "apis",
    "audience",
    "client_id",
    "name",
    "description",
    "consent",
    "required",
    "first_party",
    "kind",
    "grant_types",
    "rbac",
    "allow_skipping_consent",
    "allow_offline_access",
    "user_access",
    "client_access",
    "default_scopes",
    "subject",
    "scopes",
    "roles",
    "inherits",
    "permissions",
    "scope",
    "clients",
    "grants",
    "metadata",
];

/// A sort key that puts problems in document order: each path segment by
/// its field's place in its object (a field the document does not have
/// last), then by its array position.
fn document_position(path: &str) -> Vec<(usize, usize)> {
    path.split('.')
        .map(|segment| {
            let (field, index) = match segment.split_once('[') {
                Some((field, rest)) => (field, rest.trim_end_matches(']').parse().unwrap_or(0)),
                None => (segment, 0),
            };
            let rank = FIELD_ORDER
                .iter()
                .position(|name| *name == field)
                .unwrap_or(FIELD_ORDER.len());
            (rank, index)
        })
        .collect()
}

/// Why a policy could not be loaded from text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The text is not JSON or TOML (in TOML, a key written twice in one
    /// table is a syntax error), holds more than one JSON value, or nests
    /// values deeper than 32 levels: nothing can be read.
    #[error("{}{message}", if path.is_empty() { String::new() } else { format!("{path}: ") })]
    Syntax {
        /// Empty: the text is not read far enough to name a place in the
        /// document; the message says where, by line and column.
        path: String,
        /// The parser's message, on one line.
        message: String,
    },
    /// The text is read, and the document has problems: of its shape (an
    /// unknown field, a duplicate key, a missing field, a wrong type) and of
    /// the policy, every one at its path.
    #[error(transparent)]
    Policy(#[from] PolicyErrors),
}

/// As a list of `{"path":…,"message":…}`: one for a syntax error, every
/// problem of an invalid policy.
impl Serialize for LoadError {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            LoadError::Syntax { path, message } => {
                let mut seq = serializer.serialize_seq(Some(1))?;
                seq.serialize_element(&SyntaxEntry { path, message })?;
                seq.end()
            }
            LoadError::Policy(errors) => errors.serialize(serializer),
        }
    }
}

#[derive(Serialize)]
struct SyntaxEntry<'e> {
    path: &'e str,
    message: &'e str,
}

impl LoadError {
    /// Every problem as `(path, message)`, in document order: one for a
    /// syntax error, each problem of an invalid policy. Made for logs and
    /// editors: `file.toml: apis[0].scopes[1].name: duplicate scope ...`.
    pub fn problems(&self) -> Vec<(&str, String)> {
        match self {
            LoadError::Syntax { path, message } => vec![(path.as_str(), message.clone())],
            LoadError::Policy(errors) => errors
                .iter()
                .map(|e| (e.path(), e.problem().to_string()))
                .collect(),
        }
    }

    /// The problems' paths: one for a syntax error, every path for an invalid policy.
    pub fn paths(&self) -> Vec<&str> {
        match self {
            LoadError::Syntax { path, .. } => vec![path.as_str()],
            LoadError::Policy(errors) => errors.iter().map(PolicyError::path).collect(),
        }
    }
}

//! Reading a policy document's shape: every unknown field, duplicate key,
//! missing field and wrong type in one pass, each with its path, and the
//! document made of what could be read.
//!
//! The text is parsed into a [`Tree`] first (keys in the order written, a
//! repeated key kept), then each part of the document is read from it. A
//! value that cannot be read leaves the field's default, or an empty
//! placeholder where the field is required, so that every list keeps its
//! positions and the policy's own checks can still run on the rest.
//! [`Shape::hides`] then drops the policy problems that an unread value could
//! have caused: a problem at or inside the value, a problem about a part
//! that holds it, and a reference to an API, scope or role whose name could
//! not be read. What is left is a problem the operator has to fix either way.

// Without a text format (features `json` and `toml` off), documents are read
// through serde only, and what is left unread matters to no one.
#![cfg_attr(not(any(feature = "json", feature = "toml")), allow(dead_code))]

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use serde::de::{DeserializeSeed, Error as _, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserializer;

use crate::document::{
    ApiDocument, ClientDocument, ClientGrantDocument, PermissionDocument, PolicyDocument, RoleDocument,
    ScopeDocument, SettingsDocument,
};
#[cfg(any(feature = "json", feature = "toml"))]
use crate::error::LoadError;
use crate::error::{PolicyError, PolicyErrors, Problem};
use crate::metadata::Metadata;

/// A parsed JSON or TOML value, before its shape is read.
///
/// Keys and strings borrow from the text where they can (JSON without
/// escapes): reading the shape copies only the values the document keeps.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tree<'de> {
    Null,
    Bool(bool),
    Integer(i128),
    Float(f64),
    String(Cow<'de, str>),
    List(Vec<Tree<'de>>),
    /// The entries in the order written, a repeated key kept.
    Object(Vec<(Cow<'de, str>, Tree<'de>)>),
    /// A TOML date or time.
    Datetime,
}

/// How deep a value may nest. A policy document's deepest value (a client
/// grant's scope) is at depth 5; the bound keeps hostile text from nesting
/// without end.
const MAX_DEPTH: usize = 32;

/// The key under which the toml crate hands a date or time to a visitor.
const TOML_DATETIME: &str = "$__toml_private_datetime";

impl<'de> Tree<'de> {
    /// Parses JSON text: one value, then nothing but whitespace.
    #[cfg(feature = "json")]
    pub(crate) fn from_json(text: &'de str) -> Result<Tree<'de>, serde_json::Error> {
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let tree = Nested(0).deserialize(&mut deserializer)?;
        deserializer.end()?;
        Ok(tree)
    }

    /// Parses TOML text.
    #[cfg(feature = "toml")]
    pub(crate) fn from_toml(text: &'de str) -> Result<Tree<'de>, toml::de::Error> {
        Nested(0).deserialize(toml::Deserializer::parse(text)?)
    }

    /// Parses a value from any self-describing serde format.
    pub(crate) fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Tree<'de>, D::Error> {
        Nested(0).deserialize(deserializer)
    }

    /// What the value is, for a wrong-type message: `the string "yes"`.
    fn found(&self) -> String {
        /// Enough of a string to recognize it; hostile text can be long.
        const SHOWN: usize = 48;
        match self {
            Tree::Null => "null".to_owned(),
            Tree::Bool(value) => value.to_string(),
            Tree::Integer(value) => format!("the integer {value}"),
            Tree::Float(value) => format!("the number {value}"),
            Tree::String(value) if value.chars().count() > SHOWN => {
                let shown: String = value.chars().take(SHOWN).collect();
                format!("the string {shown:?}…")
            }
            Tree::String(value) => format!("the string {value:?}"),
            Tree::List(_) => "a list".to_owned(),
            Tree::Object(_) => "an object".to_owned(),
            Tree::Datetime => "a date or time".to_owned(),
        }
    }
}

/// Reads a [`Tree`] at a depth.
#[derive(Clone, Copy)]
struct Nested(usize);

impl Nested {
    /// The depth of the values inside this one.
    fn inner<E: serde::de::Error>(self) -> Result<Nested, E> {
        if self.0 >= MAX_DEPTH {
            return Err(E::custom(format_args!(
                "values nest deeper than {MAX_DEPTH} levels"
            )));
        }
        Ok(Nested(self.0 + 1))
    }
}

impl<'de> DeserializeSeed<'de> for Nested {
    type Value = Tree<'de>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Tree<'de>, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Nested {
    type Value = Tree<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a value")
    }

    fn visit_unit<E>(self) -> Result<Tree<'de>, E> {
        Ok(Tree::Null)
    }

    fn visit_none<E>(self) -> Result<Tree<'de>, E> {
        Ok(Tree::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Tree<'de>, D::Error> {
        self.deserialize(deserializer)
    }

    fn visit_bool<E>(self, value: bool) -> Result<Tree<'de>, E> {
        Ok(Tree::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Tree<'de>, E> {
        Ok(Tree::Integer(value.into()))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Tree<'de>, E> {
        Ok(Tree::Integer(value.into()))
    }

    fn visit_f64<E>(self, value: f64) -> Result<Tree<'de>, E> {
        Ok(Tree::Float(value))
    }

    fn visit_borrowed_str<E>(self, value: &'de str) -> Result<Tree<'de>, E> {
        Ok(Tree::String(Cow::Borrowed(value)))
    }

    fn visit_str<E>(self, value: &str) -> Result<Tree<'de>, E> {
        Ok(Tree::String(Cow::Owned(value.to_owned())))
    }

    fn visit_string<E>(self, value: String) -> Result<Tree<'de>, E> {
        Ok(Tree::String(Cow::Owned(value)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Tree<'de>, A::Error> {
        let inner = self.inner()?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(inner)? {
            items.push(item);
        }
        Ok(Tree::List(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Tree<'de>, A::Error> {
        let inner = self.inner()?;
        let mut entries = Vec::new();
        while let Some(key) = map.next_key_seed(Key)? {
            if key == TOML_DATETIME {
                map.next_value::<IgnoredAny>()?;
                return Ok(Tree::Datetime);
            }
            let value = map.next_value_seed(inner)?;
            entries.push((key, value));
        }
        Ok(Tree::Object(entries))
    }
}

impl PolicyDocument {
    /// Reads a document from JSON text, checking its shape only.
    ///
    /// ```
    /// use scope_policy::{LoadError, PolicyDocument};
    /// let text = r#"{ "apis": [{ "audience": "https://a.example", "rbca": true, "rbac": "yes" }] }"#;
    /// let Err(LoadError::Policy(errors)) = PolicyDocument::from_json(text) else { unreachable!() };
    /// let problems: Vec<String> = errors.iter().map(ToString::to_string).collect();
    /// assert_eq!(problems, [
    ///     r#"apis[0].rbac: expected a boolean, found the string "yes""#,
    ///     "apis[0].rbca: unknown field `rbca`, expected one of `audience`, `name`, `rbac`, \
    ///      `allow_skipping_consent`, `allow_offline_access`, `user_access`, `client_access`, \
    ///      `default_scopes`, `scopes`, `metadata`",
    /// ]);
    /// ```
    ///
    /// # Errors
    ///
    /// [`LoadError::Syntax`] for text that is not JSON (or has more than one
    /// value); [`LoadError::Policy`] with every unknown field, duplicate key,
    /// missing field and wrong type, each at its path.
    #[cfg(feature = "json")]
    pub fn from_json(text: &str) -> Result<Self, LoadError> {
        Ok(read_json(text)?.into_document()?)
    }

    /// Reads a document from TOML text, checking its shape only.
    ///
    /// # Errors
    ///
    /// [`LoadError::Syntax`] for text that is not TOML (a key written twice
    /// in one table is a TOML syntax error); [`LoadError::Policy`] with every
    /// unknown field, missing field and wrong type, each at its path.
    #[cfg(feature = "toml")]
    pub fn from_toml(text: &str) -> Result<Self, LoadError> {
        Ok(read_toml(text)?.into_document()?)
    }
}

/// Parses JSON text and reads the document's shape.
#[cfg(feature = "json")]
pub(crate) fn read_json(text: &str) -> Result<Shape, LoadError> {
    let tree = Tree::from_json(text).map_err(|error| syntax(&error))?;
    Ok(Shape::read(&tree))
}

/// Parses TOML text and reads the document's shape.
#[cfg(feature = "toml")]
pub(crate) fn read_toml(text: &str) -> Result<Shape, LoadError> {
    let tree = Tree::from_toml(text).map_err(|error| syntax(&error))?;
    Ok(Shape::read(&tree))
}

/// Text that does not parse; the parser's message, which says where, on one
/// line (TOML's quotes the source over several).
#[cfg(any(feature = "json", feature = "toml"))]
fn syntax(error: &dyn fmt::Display) -> LoadError {
    let message = error.to_string();
    LoadError::Syntax {
        path: String::new(),
        message: message.split_whitespace().collect::<Vec<_>>().join(" "),
    }
}

/// Reads an object's key, borrowed from the text when it can be.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Cow<'de, str>, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_borrowed_str<E>(self, key: &'de str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Borrowed(key))
    }

    fn visit_str<E>(self, key: &str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(key.to_owned()))
    }

    fn visit_string<E>(self, key: String) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(key))
    }
}

/// A document read from a [`Tree`], and the problems of its shape.
pub(crate) struct Shape {
    /// What could be read.
    pub(crate) document: PolicyDocument,
    errors: Vec<PolicyError>,
    damage: Damage,
}

impl Shape {
    /// Reads the whole document.
    pub(crate) fn read(tree: &Tree) -> Shape {
        let mut reader = Reader::default();
        let document = reader.document(tree);
        Shape {
            document,
            errors: reader.errors,
            damage: reader.damage,
        }
    }

    /// The document, or every problem of its shape.
    pub(crate) fn into_document(self) -> Result<PolicyDocument, PolicyErrors> {
        match PolicyErrors::in_document_order(self.errors) {
            Some(errors) => Err(errors),
            None => Ok(self.document),
        }
    }

    /// The problems of the shape and, of `policy_errors` (the problems the
    /// document's checks found in what could be read), those that no unread
    /// value could have caused; `None` when there is none.
    pub(crate) fn with_policy_errors(self, policy_errors: Vec<PolicyError>) -> Option<PolicyErrors> {
        let Shape { errors, damage, .. } = self;
        let kept = policy_errors.into_iter().filter(|error| !damage.hides(error));
        PolicyErrors::in_document_order(errors.into_iter().chain(kept).collect())
    }
}

/// What could not be read, so that no problem it caused is reported.
#[derive(Default)]
struct Damage {
    /// The paths of the values not read.
    values: HashSet<String>,
    /// The paths of the parts that hold a value not read.
    holders: HashSet<String>,
    /// An API's audience was not read: any reference to an audience may name it.
    audience: bool,
    /// The audiences of APIs with a scope name not read.
    scopes_of: HashSet<String>,
    /// A role's name was not read: any inherited role may name it.
    role_name: bool,
}

impl Damage {
    fn mark(&mut self, path: &str) {
        for end in ancestors(path) {
            self.holders.insert(path[..end].to_owned());
        }
        self.values.insert(path.to_owned());
    }

    /// Whether `path` is at or inside a value not read, or holds one.
    fn touches(&self, path: &str) -> bool {
        self.holders.contains(path)
            || self.values.contains(path)
            || ancestors(path).any(|end| self.values.contains(&path[..end]))
    }

    /// Whether the policy problem `error` may come from a value not read.
    fn hides(&self, error: &PolicyError) -> bool {
        if self.touches(error.path()) {
            return true;
        }
        match error.problem() {
            Problem::Duplicate { first, .. } | Problem::DuplicateGrant { first, .. } => self.touches(first),
            Problem::UnknownApi { .. } => self.audience,
            Problem::UndefinedScope { audience, .. } | Problem::PatternMatchesNothing { audience, .. } => {
                self.scopes_of.contains(audience)
            }
            Problem::UnknownRole { .. } => self.role_name,
            _ => false,
        }
    }
}

/// The ends of the paths that hold `path`, from the root (`""`) down:
/// `apis[0].scopes` holds `apis[0].scopes[1].name` (as do `apis[0]`, `apis`
/// and the root).
fn ancestors(path: &str) -> impl Iterator<Item = usize> + '_ {
    std::iter::once(0).chain(
        path.char_indices()
            .filter(|&(at, c)| at > 0 && (c == '.' || c == '['))
            .map(|(at, _)| at),
    )
}

const DOCUMENT: &[&str] = &["settings", "apis", "roles", "clients"];
const SETTINGS: &[&str] = &[
    "unknown_scopes",
    "default_audience",
    "max_scope_length",
    "max_scope_tokens",
    "consent_lifetime",
];
const API: &[&str] = &[
    "audience",
    "name",
    "rbac",
    "allow_skipping_consent",
    "allow_offline_access",
    "user_access",
    "client_access",
    "default_scopes",
    "scopes",
    "metadata",
];
const SCOPE: &[&str] = &["name", "description", "consent", "required"];
const ROLE: &[&str] = &["name", "description", "inherits", "permissions"];
const PERMISSION: &[&str] = &["audience", "scope"];
const CLIENT: &[&str] = &[
    "client_id",
    "name",
    "first_party",
    "kind",
    "grant_types",
    "grants",
    "metadata",
];
const GRANT: &[&str] = &["audience", "subject", "scopes"];

/// An object's known fields, each key once.
struct Fields<'t> {
    at: At<'t>,
    entries: Vec<(&'t str, &'t Tree<'t>)>,
}

impl<'t> Fields<'t> {
    fn get(&self, name: &str) -> Option<&'t Tree<'t>> {
        self.entries
            .iter()
            .find(|(key, _)| *key == name)
            .map(|&(_, value)| value)
    }
}

/// A place in the document, kept as the way there and written out only for
/// a problem: reading a large document makes no path string it does not need.
#[derive(Clone, Copy)]
enum At<'p> {
    Root,
    Field(&'p At<'p>, &'p str),
    Item(&'p At<'p>, usize),
}

/// `apis[0].scopes[1].name`; the root is empty.
impl fmt::Display for At<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            At::Root => Ok(()),
            At::Field(At::Root, name) => f.write_str(name),
            At::Field(parent, name) => write!(f, "{parent}.{name}"),
            At::Item(parent, index) => write!(f, "{parent}[{index}]"),
        }
    }
}

/// A reader of one value: `None` when the value is not what the document
/// allows (reported).
type Read<T> = fn(&mut Reader, &Tree, At<'_>) -> Option<T>;

#[derive(Default)]
struct Reader {
    errors: Vec<PolicyError>,
    damage: Damage,
    /// Set when a scope definition's name is not read (reset for each API).
    scope_name_unread: bool,
}

impl Reader {
    fn report(&mut self, path: String, problem: Problem) {
        self.errors.push(PolicyError::new(path, problem));
    }

    /// A value of the wrong type: reported, and marked as not read.
    fn wrong(&mut self, at: At<'_>, expected: &'static str, found: &Tree) {
        let path = at.to_string();
        self.damage.mark(&path);
        let found = found.found();
        self.report(path, Problem::WrongType { expected, found });
    }

    /// An object's fields: a field the object does not have and a key
    /// written again are reported and left out.
    fn object<'t>(
        &mut self,
        tree: &'t Tree,
        at: At<'t>,
        known: &'static [&'static str],
    ) -> Option<Fields<'t>> {
        let Tree::Object(entries) = tree else {
            self.wrong(at, "an object", tree);
            return None;
        };
        let mut fields = Fields {
            at,
            entries: Vec::with_capacity(known.len()),
        };
        for (key, value) in entries {
            if !known.contains(&key.as_ref()) {
                let problem = Problem::UnknownField {
                    field: key.to_string(),
                    expected: known,
                };
                self.report(At::Field(&at, key).to_string(), problem);
            } else if fields.get(key).is_some() {
                let problem = Problem::DuplicateKey { key: key.to_string() };
                self.report(At::Field(&at, key).to_string(), problem);
            } else {
                fields.entries.push((key, value));
            }
        }
        Some(fields)
    }

    /// An optional field: `None` when it is left out or not read.
    fn field<T>(&mut self, fields: &Fields<'_>, name: &str, read: Read<T>) -> Option<T> {
        let tree = fields.get(name)?;
        read(self, tree, At::Field(&fields.at, name))
    }

    /// A required field: `None` when it is left out (reported) or not read.
    fn required<T>(&mut self, fields: &Fields<'_>, name: &'static str, read: Read<T>) -> Option<T> {
        let at = At::Field(&fields.at, name);
        match fields.get(name) {
            Some(tree) => read(self, tree, at),
            None => {
                let path = at.to_string();
                self.damage.mark(&path);
                self.report(path, Problem::MissingField { field: name });
                None
            }
        }
    }

    fn string(&mut self, tree: &Tree, at: At<'_>) -> Option<String> {
        match tree {
            Tree::String(value) => Some(String::from(&**value)),
            other => {
                self.wrong(at, "a string", other);
                None
            }
        }
    }

    /// A string where the document also allows `null`.
    fn nullable_string(&mut self, tree: &Tree, at: At<'_>) -> Option<Option<String>> {
        match tree {
            Tree::Null => Some(None),
            Tree::String(value) => Some(Some(String::from(&**value))),
            other => {
                self.wrong(at, "a string or null", other);
                None
            }
        }
    }

    fn boolean(&mut self, tree: &Tree, at: At<'_>) -> Option<bool> {
        match tree {
            Tree::Bool(value) => Some(*value),
            other => {
                self.wrong(at, "a boolean", other);
                None
            }
        }
    }

    fn count(&mut self, tree: &Tree, at: At<'_>) -> Option<usize> {
        match tree {
            Tree::Integer(value) if usize::try_from(*value).is_ok() => usize::try_from(*value).ok(),
            other => {
                self.wrong(at, "a non-negative integer", other);
                None
            }
        }
    }

    /// Seconds, or `null`.
    fn seconds(&mut self, tree: &Tree, at: At<'_>) -> Option<Option<i64>> {
        match tree {
            Tree::Null => Some(None),
            Tree::Integer(value) if i64::try_from(*value).is_ok() => Some(i64::try_from(*value).ok()),
            other => {
                self.wrong(at, "a 64-bit integer or null", other);
                None
            }
        }
    }

    /// A list, each item read by `item` (which puts a placeholder in place
    /// of an item it cannot read, so that the others keep their positions).
    fn list<T>(
        &mut self,
        tree: &Tree,
        at: At<'_>,
        item: fn(&mut Reader, &Tree, At<'_>) -> T,
    ) -> Option<Vec<T>> {
        let Tree::List(items) = tree else {
            self.wrong(at, "a list", tree);
            return None;
        };
        let read = items
            .iter()
            .enumerate()
            .map(|(i, tree)| item(self, tree, At::Item(&at, i)))
            .collect();
        Some(read)
    }

    fn strings(&mut self, tree: &Tree, at: At<'_>) -> Option<Vec<String>> {
        self.list(tree, at, |reader, tree, at| {
            reader.string(tree, at).unwrap_or_default()
        })
    }

    fn metadata(&mut self, tree: &Tree, at: At<'_>) -> Option<Metadata> {
        let Tree::Object(entries) = tree else {
            self.wrong(at, "an object of strings", tree);
            return None;
        };
        let mut metadata = Metadata::new();
        for (key, value) in entries {
            let path = At::Field(&at, key);
            if metadata.get(key).is_some() {
                self.report(path.to_string(), Problem::DuplicateKey { key: key.to_string() });
            } else if let Tree::String(value) = value {
                metadata.insert(key.clone(), value.clone());
            } else {
                // Nothing refers to a metadata entry: no damage to mark.
                let found = value.found();
                self.report(
                    path.to_string(),
                    Problem::WrongType {
                        expected: "a string",
                        found,
                    },
                );
            }
        }
        Some(metadata)
    }

    fn document(&mut self, tree: &Tree) -> PolicyDocument {
        let mut document = PolicyDocument::new();
        let Some(fields) = self.object(tree, At::Root, DOCUMENT) else {
            return document;
        };
        if let Some(settings) = self.field(&fields, "settings", Reader::settings) {
            document.settings = settings;
        }
        match self.required(&fields, "apis", |reader, tree, at| {
            reader.list(tree, at, Reader::api)
        }) {
            Some(apis) => document.apis = apis,
            None => self.damage.audience = true,
        }
        match self.field(&fields, "roles", |reader, tree, at| {
            reader.list(tree, at, Reader::role)
        }) {
            Some(roles) => document.roles = roles,
            None => self.damage.role_name |= fields.get("roles").is_some(),
        }
        if let Some(clients) = self.field(&fields, "clients", |reader, tree, at| {
            reader.list(tree, at, Reader::client)
        }) {
            document.clients = clients;
        }
        document
    }

    fn settings(&mut self, tree: &Tree, at: At<'_>) -> Option<SettingsDocument> {
        let fields = self.object(tree, at, SETTINGS)?;
        let mut settings = SettingsDocument::default();
        if let Some(value) = self.field(&fields, "unknown_scopes", Reader::string) {
            settings.unknown_scopes = value;
        }
        if let Some(value) = self.field(&fields, "default_audience", Reader::nullable_string) {
            settings.default_audience = value;
        }
        if let Some(value) = self.field(&fields, "max_scope_length", Reader::count) {
            settings.max_scope_length = value;
        }
        if let Some(value) = self.field(&fields, "max_scope_tokens", Reader::count) {
            settings.max_scope_tokens = value;
        }
        if let Some(value) = self.field(&fields, "consent_lifetime", Reader::seconds) {
            settings.consent_lifetime = value;
        }
        Some(settings)
    }

    fn api(&mut self, tree: &Tree, at: At<'_>) -> ApiDocument {
        let Some(fields) = self.object(tree, at, API) else {
            self.damage.audience = true;
            return ApiDocument::new("");
        };
        let audience = self.required(&fields, "audience", Reader::string);
        self.damage.audience |= audience.is_none();
        let mut api = ApiDocument::new(audience.unwrap_or_default());
        api.name = self.field(&fields, "name", Reader::string);
        if let Some(value) = self.field(&fields, "rbac", Reader::boolean) {
            api.rbac = value;
        }
        if let Some(value) = self.field(&fields, "allow_skipping_consent", Reader::boolean) {
            api.allow_skipping_consent = value;
        }
        if let Some(value) = self.field(&fields, "allow_offline_access", Reader::boolean) {
            api.allow_offline_access = value;
        }
        if let Some(value) = self.field(&fields, "user_access", Reader::string) {
            api.user_access = value;
        }
        if let Some(value) = self.field(&fields, "client_access", Reader::string) {
            api.client_access = value;
        }
        if let Some(value) = self.field(&fields, "default_scopes", Reader::strings) {
            api.default_scopes = value;
        }
        self.scope_name_unread = false;
        match self.field(&fields, "scopes", |reader, tree, at| {
            reader.list(tree, at, Reader::scope)
        }) {
            Some(scopes) => api.scopes = scopes,
            None => self.scope_name_unread |= fields.get("scopes").is_some(),
        }
        if self.scope_name_unread {
            self.damage.scopes_of.insert(api.audience.clone());
        }
        if let Some(value) = self.field(&fields, "metadata", Reader::metadata) {
            api.metadata = value;
        }
        api
    }

    fn scope(&mut self, tree: &Tree, at: At<'_>) -> ScopeDocument {
        let Some(fields) = self.object(tree, at, SCOPE) else {
            self.scope_name_unread = true;
            return ScopeDocument::new("");
        };
        let name = self.required(&fields, "name", Reader::string);
        self.scope_name_unread |= name.is_none();
        let mut scope = ScopeDocument::new(name.unwrap_or_default());
        if let Some(value) = self.field(&fields, "description", Reader::string) {
            scope.description = value;
        }
        if let Some(value) = self.field(&fields, "consent", Reader::string) {
            scope.consent = value;
        }
        if let Some(value) = self.field(&fields, "required", Reader::boolean) {
            scope.required = value;
        }
        scope
    }

    fn role(&mut self, tree: &Tree, at: At<'_>) -> RoleDocument {
        let Some(fields) = self.object(tree, at, ROLE) else {
            self.damage.role_name = true;
            return RoleDocument::new("");
        };
        let name = self.required(&fields, "name", Reader::string);
        self.damage.role_name |= name.is_none();
        let mut role = RoleDocument::new(name.unwrap_or_default());
        if let Some(value) = self.field(&fields, "description", Reader::string) {
            role.description = value;
        }
        if let Some(value) = self.field(&fields, "inherits", Reader::strings) {
            role.inherits = value;
        }
        if let Some(value) = self.field(&fields, "permissions", |reader, tree, at| {
            reader.list(tree, at, Reader::permission)
        }) {
            role.permissions = value;
        }
        role
    }

    fn permission(&mut self, tree: &Tree, at: At<'_>) -> PermissionDocument {
        let Some(fields) = self.object(tree, at, PERMISSION) else {
            return PermissionDocument::new("", "");
        };
        let audience = self.required(&fields, "audience", Reader::string);
        let scope = self.required(&fields, "scope", Reader::string);
        PermissionDocument::new(audience.unwrap_or_default(), scope.unwrap_or_default())
    }

    fn client(&mut self, tree: &Tree, at: At<'_>) -> ClientDocument {
        let mut client = ClientDocument::placeholder();
        let Some(fields) = self.object(tree, at, CLIENT) else {
            return client;
        };
        client.client_id = self
            .required(&fields, "client_id", Reader::string)
            .unwrap_or_default();
        client.name = self.field(&fields, "name", Reader::string);
        if let Some(value) = self.field(&fields, "first_party", Reader::boolean) {
            client.first_party = value;
        }
        // An unread kind leaves the client no default grant types or
        // subject, which the policy's checks do not guess at.
        client.kind = self.required(&fields, "kind", Reader::string).unwrap_or_default();
        client.grant_types = self.field(&fields, "grant_types", Reader::strings);
        if let Some(value) = self.field(&fields, "grants", |reader, tree, at| {
            reader.list(tree, at, Reader::grant)
        }) {
            client.grants = value;
        }
        if let Some(value) = self.field(&fields, "metadata", Reader::metadata) {
            client.metadata = value;
        }
        client
    }

    fn grant(&mut self, tree: &Tree, at: At<'_>) -> ClientGrantDocument {
        let Some(fields) = self.object(tree, at, GRANT) else {
            return ClientGrantDocument::new("");
        };
        let audience = self.required(&fields, "audience", Reader::string);
        let mut grant = ClientGrantDocument::new(audience.unwrap_or_default());
        grant.subject = self.field(&fields, "subject", Reader::string);
        if let Some(value) = self.field(&fields, "scopes", Reader::strings) {
            grant.scopes = value;
        }
        grant
    }
}

/// Reads one part of a document from any self-describing serde format
/// (serde's `Deserialize` for the document types): the first problem of its
/// shape is the error, with its path inside the part.
fn deserialize_part<'de, D: Deserializer<'de>, T>(
    deserializer: D,
    read: fn(&mut Reader, &Tree, At<'_>) -> T,
) -> Result<T, D::Error> {
    let tree = Tree::deserialize(deserializer)?;
    let mut reader = Reader::default();
    let part = read(&mut reader, &tree, At::Root);
    let errors = PolicyErrors::in_document_order(reader.errors);
    let mut errors = errors.iter().flatten();
    match (errors.next(), errors.count()) {
        (None, _) => Ok(part),
        (Some(first), 0) => Err(D::Error::custom(first)),
        (Some(first), more) => Err(D::Error::custom(format_args!(
            "{first} (and {more} more problems)"
        ))),
    }
}

/// Implements `Deserialize` for the document types through their reader,
/// so that serde and [`Shape::read`] accept exactly the same documents.
macro_rules! read_with {
    ($($ty:ident => $read:expr),+ $(,)?) => {$(
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                deserialize_part(deserializer, $read)
            }
        }
    )+};
}

read_with!(
    PolicyDocument => |reader, tree, _| reader.document(tree),
    SettingsDocument => |reader, tree, at| reader.settings(tree, at).unwrap_or_default(),
    ApiDocument => Reader::api,
    ScopeDocument => Reader::scope,
    RoleDocument => Reader::role,
    PermissionDocument => Reader::permission,
    ClientDocument => Reader::client,
    ClientGrantDocument => Reader::grant,
);

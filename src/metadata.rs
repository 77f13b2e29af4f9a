//! `Metadata`: the string → string notes a policy carries with an API or a
//! client (redirect URIs, logos, an owner), never interpreted by the decision.

use std::fmt;

use indexmap::IndexMap;
use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// String → string notes kept with an API or a client, in document order.
///
/// The decision never reads them; the host does (a client's registered
/// redirect URIs, a secret's hash, a logo). Keys are unique: a document that
/// repeats one is refused, like any other duplicate key.
///
/// ```
/// use scope_policy::Metadata;
/// let metadata: Metadata = [("owner", "events-team"), ("logo", "https://x/logo.png")].into_iter().collect();
/// assert_eq!(metadata.get("owner"), Some("events-team"));
/// assert_eq!(metadata.iter().map(|(key, _)| key).collect::<Vec<_>>(), ["owner", "logo"]);
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    entries: IndexMap<String, String>,
}

impl Metadata {
    /// No entries.
    pub fn new() -> Self {
        Metadata::default()
    }

    /// The value kept for `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries.get(key).map(String::as_str)
    }

    /// Sets `key` to `value`, returning the value it replaces.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) -> Option<String> {
        self.entries.insert(key.into(), value.into())
    }

    /// The entries, in document order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + '_ {
        self.entries
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_str()))
    }

    /// How many entries there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there is no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl fmt::Debug for Metadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Metadata {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(entries: I) -> Self {
        Metadata {
            entries: entries.into_iter().map(|(k, v)| (k.into(), v.into())).collect(),
        }
    }
}

impl Serialize for Metadata {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.entries.len()))?;
        for (key, value) in &self.entries {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Metadata {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Entries;
        impl<'de> Visitor<'de> for Entries {
            type Value = Metadata;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of strings")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Metadata, A::Error> {
                let mut entries = IndexMap::with_capacity(map.size_hint().unwrap_or(0).min(64));
                // `String`, never `&str`: a borrowed string fails on escaped JSON.
                while let Some((key, value)) = map.next_entry::<String, String>()? {
                    if entries.contains_key(&key) {
                        return Err(serde::de::Error::custom(format_args!("duplicate key {key:?}")));
                    }
                    entries.insert(key, value);
                }
                Ok(Metadata { entries })
            }
        }
        deserializer.deserialize_map(Entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_document_order_and_refuses_a_repeated_key() {
        let metadata: Result<Metadata, _> = serde_json::from_str(r#"{ "b": "1", "a": "2" }"#);
        let keys: Vec<String> = metadata
            .map(|m| m.iter().map(|(k, _)| k.to_owned()).collect())
            .unwrap_or_default();
        assert_eq!(keys, ["b", "a"]);
        let repeated: Result<Metadata, _> = serde_json::from_str(r#"{ "a": "1", "a": "2" }"#);
        assert!(repeated.is_err_and(|e| e.to_string().contains("duplicate key \"a\"")));
        let not_a_string: Result<Metadata, _> = serde_json::from_str(r#"{ "a": 1 }"#);
        assert!(not_a_string.is_err());
    }
}

//! The audit log: one JSON line per decision, made of the crate's own serde
//! output (`Decision`, `Grant`, `GrantError`), with target `audit`.

use serde::Serialize;

/// Logs one decision (or refusal) taken at `endpoint`.
///
/// The crate's JSON goes in the `decision` field as text, because
/// `tracing`'s JSON formatter writes fields as strings or numbers; read it
/// with `jq '.decision | fromjson'`.
pub fn decision(endpoint: &'static str, outcome: &impl Serialize) {
    match serde_json::to_string(outcome) {
        Ok(json) => tracing::info!(target: "audit", endpoint, decision = %json),
        Err(error) => tracing::error!(target: "audit", endpoint, %error, "decision not serializable"),
    }
}

/// A decision or its refusal, serialized as the crate serializes either.
pub struct Outcome<'r, T>(pub &'r Result<T, scope_policy::GrantError>);

impl<T: Serialize> Serialize for Outcome<'_, T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Ok(decision) => decision.serialize(serializer),
            Err(error) => error.serialize(serializer),
        }
    }
}

//! Consent: the records a host stores, which of them speak for a request,
//! what they cover or decline, and the record that replaces them after an
//! approval. The formula of the new record lives here and nowhere else.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use crate::scope::{same_token, scan_fits, FirstSeen, Scope};
use crate::work::work;

/// Consent a user gave a client for scopes of one API (or of no API, for OIDC
/// scopes alone), as the host stores it and passes it back in.
///
/// `scopes` are what the user consented to; `declined` are the scopes the
/// user left unticked on a prompt, so that they are not asked again (until
/// the client asks with `prompt=consent`). After an approval, the grant's
/// [new record](crate::Grant::consent_record) **replaces** every record the
/// host holds for the same user, client and audience: delete them and store
/// it, in one transaction.
///
/// ```
/// use scope_policy::{ConsentRecord, Scope};
/// let record = ConsentRecord::new("alice", "partner-planner", Some("https://events.example.com/api"))
///     .with_scopes(["view:events".parse::<Scope>()?])
///     .with_declined(["create:events".parse::<Scope>()?])
///     .with_expires_at(1_900_000_000);
/// assert!(record.holds("view:events") && record.declines("create:events"));
/// assert!(record.applies_to("alice", "partner-planner", Some("https://events.example.com/api"), Some(1_800_000_000)));
/// assert!(!record.applies_to("alice", "partner-planner", Some("https://events.example.com/api"), None));
/// # Ok::<(), scope_policy::ScopeError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ConsentRecord {
    /// The user who consented.
    pub user_id: String,
    /// The client they consented to.
    pub client_id: String,
    /// The API's audience, or `None` for a request that had no audience.
    #[serde(default)]
    pub audience: Option<String>,
    /// The scopes consented to.
    #[serde(default)]
    pub scopes: Vec<Scope>,
    /// The scopes the user left unticked: not asked again while remembered
    /// consent counts, and never refreshed.
    #[serde(default)]
    pub declined: Vec<Scope>,
    /// When the consent lapses, in unix seconds; `None` for never.
    #[serde(default)]
    pub expires_at: Option<u64>,
}

impl ConsentRecord {
    /// An empty record for this user, client and audience, without expiry.
    pub fn new(user_id: impl Into<String>, client_id: impl Into<String>, audience: Option<&str>) -> Self {
        ConsentRecord {
            user_id: user_id.into(),
            client_id: client_id.into(),
            audience: audience.map(str::to_owned),
            scopes: Vec::new(),
            declined: Vec::new(),
            expires_at: None,
        }
    }

    /// Sets the scopes consented to.
    #[must_use]
    pub fn with_scopes(mut self, scopes: impl IntoIterator<Item = Scope>) -> Self {
        self.scopes = scopes.into_iter().collect();
        self
    }

    /// Sets the scopes the user declined.
    #[must_use]
    pub fn with_declined(mut self, declined: impl IntoIterator<Item = Scope>) -> Self {
        self.declined = declined.into_iter().collect();
        self
    }

    /// Sets when the consent lapses, in unix seconds.
    #[must_use]
    pub fn with_expires_at(mut self, expires_at: u64) -> Self {
        self.expires_at = Some(expires_at);
        self
    }

    /// Whether the record is for this user, client and audience, ignoring expiry.
    pub fn is_for(&self, user_id: &str, client_id: &str, audience: Option<&str>) -> bool {
        self.user_id == user_id && self.client_id == client_id && self.audience.as_deref() == audience
    }

    /// Whether this record speaks for this user, client and audience at `now`.
    ///
    /// The match is exact. A record with an expiry counts only while
    /// `expires_at > now`, so a request without `now` cannot use it.
    pub fn applies_to(
        &self,
        user_id: &str,
        client_id: &str,
        audience: Option<&str>,
        now: Option<u64>,
    ) -> bool {
        self.is_for(user_id, client_id, audience)
            && match (self.expires_at, now) {
                (None, _) => true,
                (Some(expires_at), Some(now)) => expires_at > now,
                (Some(_), None) => false,
            }
    }

    /// Whether the record holds `scope` in `scopes`.
    pub fn holds(&self, scope: &str) -> bool {
        self.scopes.iter().any(|held| same_token(held.as_str(), scope))
    }

    /// Whether the record holds `scope` in `declined`.
    pub fn declines(&self, scope: &str) -> bool {
        self.declined
            .iter()
            .any(|declined| same_token(declined.as_str(), scope))
    }
}

/// Who and what a request's consent is about: the records that may match
/// are those for this user, client and audience, unexpired at `now`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RecordKey<'a> {
    pub(crate) user_id: &'a str,
    pub(crate) client_id: &'a str,
    pub(crate) audience: Option<&'a str>,
    pub(crate) now: Option<u64>,
}

impl RecordKey<'_> {
    /// Whether `record` speaks for this key now.
    fn matches(&self, record: &ConsentRecord) -> bool {
        record.applies_to(self.user_id, self.client_id, self.audience, self.now)
    }

    /// The records that speak for this key now.
    fn matching<'r>(&'r self, records: &'r [ConsentRecord]) -> impl Iterator<Item = &'r ConsentRecord> + 'r {
        records.iter().filter(|record| self.matches(record))
    }
}

/// The matching records of one request, ready to answer "held?" and
/// "declined?" for its scopes.
///
/// Records with nothing in them are left out, so they cost nothing per
/// scope. Lookups scan the records while `probes` scans of everything they
/// hold stay within [`SCAN_BUDGET`](crate::scope::SCAN_BUDGET) (no heap for typical records), and hash
/// what they hold beyond, so long records and long requests stay linear.
#[derive(Debug, Default)]
pub(crate) struct Remembered<'a> {
    records: SmallVec<[&'a ConsentRecord; 4]>,
    // Set when scanning would exceed the budget: (held, declined).
    hashed: Option<(HashSet<&'a str>, HashSet<&'a str>)>,
}

impl<'a> Remembered<'a> {
    /// The records of `records` that match `key`, for about `probes` lookups.
    pub(crate) fn new(records: &'a [ConsentRecord], key: RecordKey<'_>, probes: usize) -> Self {
        let records: SmallVec<[&'a ConsentRecord; 4]> = records
            .iter()
            .inspect(|_| work(1))
            .filter(|record| !record.scopes.is_empty() || !record.declined.is_empty())
            .filter(|record| key.matches(record))
            .collect();
        let entries: usize = records
            .iter()
            .map(|record| record.scopes.len() + record.declined.len())
            .sum();
        // Each lookup may scan every record too, so they count as entries.
        let hashed = (!scan_fits(probes, entries.saturating_add(records.len()))).then(|| {
            let held = records
                .iter()
                .flat_map(|record| &record.scopes)
                .map(Scope::as_str);
            let declined = records
                .iter()
                .flat_map(|record| &record.declined)
                .map(Scope::as_str);
            (
                held.inspect(|_| work(1)).collect(),
                declined.inspect(|_| work(1)).collect(),
            )
        });
        Remembered { records, hashed }
    }

    /// Whether no matching record holds or declines anything.
    pub(crate) fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Whether some matching record holds `scope` in `scopes`.
    pub(crate) fn holds(&self, scope: &str) -> bool {
        match &self.hashed {
            Some((held, _)) => {
                work(1);
                held.contains(scope)
            }
            None => self
                .records
                .iter()
                .inspect(|_| work(1))
                .any(|record| record.holds(scope)),
        }
    }

    /// Whether some matching record holds `scope` in `declined`.
    pub(crate) fn declines(&self, scope: &str) -> bool {
        match &self.hashed {
            Some((_, declined)) => {
                work(1);
                declined.contains(scope)
            }
            None => self
                .records
                .iter()
                .inspect(|_| work(1))
                .any(|record| record.declines(scope)),
        }
    }
}

/// The answer to a prompt, as the new record needs it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Answer<'s, 'a> {
    /// The prompt scopes the user approved, in request order.
    pub(crate) approved: &'s [&'a str],
    /// The prompt scopes the user left unticked, in prompt order.
    pub(crate) unticked: &'s [&'a str],
}

/// The record that replaces every record for `key` after an approval.
///
/// With `held` and `was_declined` the union of the matching records' `scopes`
/// and `declined`:
///
/// - `scopes` = (`held` − unticked) ∪ approved: the latest answer wins, so
///   unticking withdraws consent, also under `prompt=consent`;
/// - `declined` = (`was_declined` ∪ unticked) − the new `scopes`;
/// - `consent: always` scopes (`one_time`) are in neither;
/// - `expires_at` is the earliest of the matching records' expiries and
///   `now + lifetime` (saturating), none when neither exists: an approval
///   never makes expiring consent permanent nor extends it.
///
/// Held scopes keep the records' order and come first, then the approved
/// ones; declined ones keep the records' order, then the unticked ones.
pub(crate) fn replacement(
    records: &[ConsentRecord],
    key: RecordKey<'_>,
    answer: Answer<'_, '_>,
    lifetime: Option<u64>,
    one_time: impl Fn(&str) -> bool,
) -> ConsentRecord {
    let matching = || key.matching(records);
    let unticked = Lookup::new(answer.unticked, matching().map(|r| r.scopes.len()).sum());
    let mut scopes: Vec<&str> = Vec::new();
    let mut first_seen = FirstSeen::default();
    let held = matching().flat_map(|record| &record.scopes).map(Scope::as_str);
    for scope in held
        .filter(|scope| !unticked.contains(scope))
        .chain(answer.approved.iter().copied())
    {
        if !one_time(scope) && first_seen.is_new(&scopes, scope) {
            scopes.push(scope);
        }
    }
    let was_declined = matching().flat_map(|record| &record.declined).map(Scope::as_str);
    let candidates: Vec<&str> = was_declined.chain(answer.unticked.iter().copied()).collect();
    let kept = Lookup::new(&scopes, candidates.len());
    let mut declined: Vec<&str> = Vec::new();
    let mut first_seen = FirstSeen::default();
    for scope in candidates {
        if !one_time(scope) && !kept.contains(scope) && first_seen.is_new(&declined, scope) {
            declined.push(scope);
        }
    }
    let renewed = lifetime.and_then(|lifetime| key.now.map(|now| now.saturating_add(lifetime)));
    let expires_at = matching()
        .filter_map(|record| record.expires_at)
        .chain(renewed)
        .min();
    // INVARIANT: every scope here came from a `Scope` or a parsed request
    // token, so it is a valid token and `Scope::new` keeps it.
    let own = |scopes: Vec<&str>| {
        scopes
            .into_iter()
            .filter_map(|scope| Scope::new(scope).ok())
            .collect()
    };
    ConsentRecord {
        user_id: key.user_id.to_owned(),
        client_id: key.client_id.to_owned(),
        audience: key.audience.map(str::to_owned),
        scopes: own(scopes),
        declined: own(declined),
        expires_at,
    }
}

/// Whether some record for this user, client and audience carries an
/// expiry, whether or not it has lapsed: an approval without `now` must then
/// be refused, or expiring consent would become permanent.
pub(crate) fn any_expiring(records: &[ConsentRecord], key: RecordKey<'_>) -> bool {
    records
        .iter()
        .any(|record| record.expires_at.is_some() && record.is_for(key.user_id, key.client_id, key.audience))
}

/// A membership test over a list of tokens: a scan while `probes` scans fit
/// the budget, a hash set beyond.
struct Lookup<'t, 'a> {
    tokens: &'t [&'a str],
    hashed: Option<HashSet<&'a str>>,
}

impl<'t, 'a> Lookup<'t, 'a> {
    fn new(tokens: &'t [&'a str], probes: usize) -> Self {
        let hashed =
            (!scan_fits(probes, tokens.len())).then(|| tokens.iter().copied().inspect(|_| work(1)).collect());
        Lookup { tokens, hashed }
    }

    fn contains(&self, token: &str) -> bool {
        match &self.hashed {
            Some(set) => {
                work(1);
                set.contains(token)
            }
            None => self.tokens.iter().any(|kept| same_token(kept, token)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scopes(tokens: &[&str]) -> Vec<Scope> {
        tokens.iter().filter_map(|token| Scope::new(token).ok()).collect()
    }

    fn record(scopes_: &[&str], declined: &[&str], expires_at: Option<u64>) -> ConsentRecord {
        let mut record = ConsentRecord::new("u", "c", Some("a"))
            .with_scopes(scopes(scopes_))
            .with_declined(scopes(declined));
        record.expires_at = expires_at;
        record
    }

    const KEY: RecordKey<'static> = RecordKey {
        user_id: "u",
        client_id: "c",
        audience: Some("a"),
        now: Some(100),
    };

    fn names(scopes: &[Scope]) -> Vec<&str> {
        scopes.iter().map(Scope::as_str).collect()
    }

    #[test]
    fn the_new_record_follows_the_formula() {
        let records = [
            record(&["a", "b", "x"], &["c"], Some(500)),
            record(&["d"], &["e", "b"], None),
            record(&["z"], &[], Some(50)), // expired: neither merged nor counted for expiry
        ];
        let answer = Answer {
            approved: &["c", "f"],
            unticked: &["a", "g"],
        };
        let new = replacement(&records, KEY, answer, Some(1_000), |scope| scope == "x");
        assert_eq!(
            names(&new.scopes),
            ["b", "d", "c", "f"],
            "held − unticked, then approved; no one-time scope"
        );
        assert_eq!(
            names(&new.declined),
            ["e", "a", "g"],
            "was declined ∪ unticked − new scopes"
        );
        assert_eq!(new.expires_at, Some(500), "the earliest of 500 and 100 + 1000");
        assert_eq!(
            (
                new.user_id.as_str(),
                new.client_id.as_str(),
                new.audience.as_deref()
            ),
            ("u", "c", Some("a"))
        );
    }

    #[test]
    fn expiry_comes_from_the_lifetime_alone_or_never_and_saturates() {
        let answer = Answer {
            approved: &["a"],
            unticked: &[],
        };
        let none = replacement(&[], KEY, answer, None, |_| false);
        assert_eq!(none.expires_at, None);
        let lifetime = replacement(&[], KEY, answer, Some(30), |_| false);
        assert_eq!(lifetime.expires_at, Some(130));
        let late = RecordKey {
            now: Some(u64::MAX - 1),
            ..KEY
        };
        let saturated = replacement(&[], late, answer, Some(30), |_| false);
        assert_eq!(saturated.expires_at, Some(u64::MAX));
    }

    #[test]
    fn long_records_are_looked_up_the_same_whether_scanned_or_hashed() {
        let many: Vec<String> = (0..300).map(|i| format!("s{i}")).collect();
        let held: Vec<&str> = many.iter().map(String::as_str).collect();
        let records = [record(&held, &["s7"], None), record(&[], &[], None)];
        for probes in [1, 100_000] {
            let remembered = Remembered::new(&records, KEY, probes);
            assert_eq!(remembered.hashed.is_some(), probes > 1, "{probes} probes");
            assert_eq!(remembered.records.len(), 1, "an empty record is left out");
            assert!(remembered.holds("s299") && !remembered.holds("s300"));
            assert!(remembered.declines("s7") && !remembered.declines("s8") && remembered.holds("s7"));
        }
    }

    #[test]
    fn any_expiring_ignores_lapse_but_not_the_subject() {
        let lapsed = [record(&["a"], &[], Some(1))];
        assert!(any_expiring(&lapsed, KEY));
        let other = RecordKey {
            client_id: "other",
            ..KEY
        };
        assert!(!any_expiring(&lapsed, other));
        assert!(!any_expiring(&[record(&["a"], &[], None)], KEY));
    }
}

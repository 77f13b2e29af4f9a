//! `grant()` against the reference model (TESTING.md §2, invariant 15): a
//! small generated policy and a generated request, decided by both; any
//! difference panics with every difference listed. DESIGN.md revision 2:
//! one-time (`consent: always`) and `required` scopes, metadata, a
//! `consent_lifetime`, the `device_code` flow (also as its RFC 8628 URN),
//! raw `prompt` values, redirect URIs (verifiable ones, loopback spellings,
//! custom schemes, garbage), `original_audience`, records with `declined`,
//! and a clock near `u64::MAX` now and then.
//!
//! Sizes are small (≤ 3 APIs, ≤ 8 scopes each, ≤ 5 roles, ≤ 4 clients, ≤ 6
//! consent records) so that every combination is reachable, and tokens are
//! drawn from the policy's own names and hostile mutations of them (case
//! flips, a `*` suffix, another API's name, a TAB, an NBSP, a look-alike, a
//! percent-escape); clients and audiences from those the document defines.
//! Generated documents are valid by construction (unique names, references
//! that resolve, patterns that match, acyclic inheritance, no
//! `client_credentials` for public clients, a positive `consent_lifetime`,
//! non-empty metadata keys), and records and direct permissions hold only
//! valid scope tokens (the crate's `Scope` cannot hold others), so nearly
//! every input is compared. Set `DIFF_VERBOSE=1` to print inputs that could
//! not be compared.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

#[path = "../../tests/reference/mod.rs"]
#[allow(dead_code, unused_imports)]
mod reference;

use reference::differential::{compare, Comparison};
use reference::model::{self, Answer, Doc, Outcome, Req};

const AUDIENCES: [&str; 3] = ["https://a.example.com/api", "https://b.example.com/api", "urn:c"];
/// Scope names an API may define: prefixes of each other, a case variant, no `:`.
const NAMES: [&str; 8] = [
    "read:x", "write:x", "read:y", "read:xy", "admin", "x", "Read:x", "read",
];
const OIDC: [&str; 6] = ["openid", "profile", "email", "address", "phone", "offline_access"];
const KINDS: [&str; 4] = ["spa", "regular_web", "native", "machine_to_machine"];
/// A client's grant types.
const GRANT_TYPES: [&str; 4] = [
    "authorization_code",
    "refresh_token",
    "client_credentials",
    "device_code",
];
/// A request's flow: the grant types, and RFC 8628's URN for the device flow.
const FLOWS: [&str; 5] = [
    "authorization_code",
    "refresh_token",
    "client_credentials",
    "device_code",
    "urn:ietf:params:oauth:grant-type:device_code",
];
const USER_ACCESS: [&str; 3] = ["allow_all", "require_client_grant", "deny_all"];
const CLIENT_ACCESS: [&str; 2] = ["require_client_grant", "deny_all"];
const USERS: [&str; 2] = ["alice", "bob"];
const NOW: u64 = 1_700_000_000;
const PROMPT_VALUES: [&str; 4] = ["none", "login", "consent", "select_account"];
const PROMPT_SEPARATORS: [&str; 5] = [" ", "  ", "\t", ",", "+"];
/// Whole prompts, good and bad (DESIGN §3.6).
const PROMPTS: [&str; 12] = [
    "",
    "  ",
    "none",
    "consent",
    "login consent",
    " select_account  consent ",
    "none none",
    "none login",
    "Consent",
    "create",
    "consent\tlogin",
    "login,consent",
];
/// Redirect URIs: verifiable ones, loopback spellings (DESIGN §3.6), custom
/// schemes and text that does not parse.
const REDIRECTS: [&str; 28] = [
    "https://a.example.com/cb",
    "HTTPS://A.Example.COM./cb?x=1#f",
    "https://u:p@a.example.com:8443/cb",
    "https://localhost@a.example.com/",
    "https://%61.example.com/cb",
    "https://[2001:db8::1]/cb",
    "https://[::127.0.0.1]/",
    "https://256.0.0.1/",
    "http://a.example.com/cb",
    "com.example.app:/cb",
    "https://localhost/cb",
    "https://LOCALHOST./cb",
    "https://x.localhost/",
    "https://%6c%6f%63%61%6c%68%6f%73%74/",
    "https://127.1/",
    "https://0x7f.0.0.1/",
    "https://0177.0.0.1/",
    "https://2130706433/",
    "https://0/",
    "https://0.0.0.0:443/",
    "https://[::1]/",
    "https://[::]/",
    "https://[::ffff:127.0.0.1]/",
    "https://[::ffff:7f00:1]/",
    "https://[fe80::1%25eth0]/",
    "https://[v1.x]/",
    "https:///cb",
    "https://%C3%BC.example/",
];

fn pick<'a>(items: &[&'a str], i: u8) -> &'a str {
    items[usize::from(i) % items.len()]
}

// ---------------------------------------------------------------------------
// The generated policy
// ---------------------------------------------------------------------------

#[derive(Debug, Arbitrary)]
struct GenApi {
    scopes: u8,
    /// Bits over the defined scopes: `consent: always`, `required`.
    always: u8,
    required: u8,
    metadata: bool,
    rbac: bool,
    allow_skipping_consent: bool,
    allow_offline_access: bool,
    user_access: u8,
    client_access: u8,
    defaults: Vec<u8>,
}

/// A scope reference in a role or a grant: one defined scope, or a pattern
/// made from a prefix of a defined scope (so it always matches something).
#[derive(Debug, Arbitrary)]
enum GenRef {
    Exact(u8),
    Pattern(u8, u8),
}

#[derive(Debug, Arbitrary)]
struct GenRole {
    inherits: Vec<u8>,
    permissions: Vec<(u8, GenRef)>,
}

#[derive(Debug, Arbitrary)]
struct GenClient {
    first_party: bool,
    kind: u8,
    grant_types: Option<Vec<u8>>,
    grants: Vec<(u8, Option<bool>, Vec<GenRef>)>,
    metadata: bool,
}

/// `settings.consent_lifetime`: always positive.
#[derive(Debug, Arbitrary)]
enum GenLifetime {
    Short(u8),
    Long(u32),
    Longest,
}

impl GenLifetime {
    fn seconds(&self) -> i64 {
        match self {
            GenLifetime::Short(n) => i64::from(*n) + 1,
            GenLifetime::Long(n) => i64::from(*n) + 1,
            GenLifetime::Longest => i64::MAX,
        }
    }
}

#[derive(Debug, Arbitrary)]
struct GenDoc {
    reject_unknown: bool,
    default_audience: Option<u8>,
    max_scope_length: Option<u8>,
    max_scope_tokens: Option<u8>,
    consent_lifetime: Option<GenLifetime>,
    apis: Vec<GenApi>,
    roles: Vec<GenRole>,
    clients: Vec<GenClient>,
}

/// Metadata the host keeps with an API or client: carried, never interpreted.
fn metadata(on: bool, i: usize) -> std::collections::BTreeMap<String, String> {
    let mut metadata = std::collections::BTreeMap::new();
    if on {
        metadata.insert("owner".to_string(), format!("team-{i}"));
        metadata.insert("logo".to_string(), "https://cdn.example.com/logo.png".to_string());
    }
    metadata
}

fn resolve_ref(scopes: &[String], reference: &GenRef) -> Option<String> {
    if scopes.is_empty() {
        return None;
    }
    let at = |i: &u8| &scopes[usize::from(*i) % scopes.len()];
    Some(match reference {
        GenRef::Exact(i) => at(i).clone(),
        GenRef::Pattern(i, len) => {
            let name = at(i);
            let len = usize::from(*len) % (name.len() + 1);
            format!("{}*", &name[..len])
        }
    })
}

impl GenDoc {
    fn build(&self) -> Doc {
        let mut doc = Doc::default();
        doc.settings.unknown_scopes = if self.reject_unknown { "reject" } else { "ignore" }.to_string();
        if let Some(n) = self.max_scope_length {
            doc.settings.max_scope_length = usize::from(n);
        }
        if let Some(n) = self.max_scope_tokens {
            doc.settings.max_scope_tokens = usize::from(n % 12);
        }
        doc.settings.consent_lifetime = self.consent_lifetime.as_ref().map(GenLifetime::seconds);
        for (i, api) in self.apis.iter().take(AUDIENCES.len()).enumerate() {
            let scopes: Vec<String> = NAMES
                .iter()
                .enumerate()
                .filter(|(bit, _)| api.scopes & (1 << bit) != 0)
                .map(|(_, name)| (*name).to_string())
                .collect();
            let defaults = if scopes.is_empty() {
                Vec::new()
            } else {
                api.defaults
                    .iter()
                    .take(4)
                    .map(|d| scopes[usize::from(*d) % scopes.len()].clone())
                    .collect()
            };
            doc.apis.push(model::Api {
                audience: AUDIENCES[i].to_string(),
                name: String::new(),
                rbac: api.rbac,
                allow_skipping_consent: api.allow_skipping_consent,
                allow_offline_access: api.allow_offline_access,
                user_access: pick(&USER_ACCESS, api.user_access).to_string(),
                client_access: pick(&CLIENT_ACCESS, api.client_access).to_string(),
                default_scopes: defaults,
                scopes: scopes
                    .into_iter()
                    .enumerate()
                    .map(|(j, name)| model::ScopeDef {
                        description: format!("Lets the app {name}"),
                        name,
                        consent: if api.always & (1 << j) != 0 {
                            "always"
                        } else {
                            "default"
                        }
                        .to_string(),
                        required: api.required & (1 << j) != 0,
                    })
                    .collect(),
                metadata: metadata(api.metadata, i),
            });
        }
        let scopes_of = |doc: &Doc, api: usize| -> Vec<String> {
            doc.apis
                .get(api)
                .map(|a| a.scopes.iter().map(|s| s.name.clone()).collect())
                .unwrap_or_default()
        };
        let api_count = doc.apis.len();
        if let Some(d) = self.default_audience {
            if api_count > 0 {
                doc.settings.default_audience = Some(AUDIENCES[usize::from(d) % api_count].to_string());
            }
        }
        for (i, role) in self.roles.iter().take(5).enumerate() {
            // Only earlier roles: inheritance stays acyclic.
            let inherits = if i == 0 {
                Vec::new()
            } else {
                role.inherits
                    .iter()
                    .take(3)
                    .map(|j| format!("r{}", usize::from(*j) % i))
                    .collect()
            };
            let mut permissions = Vec::new();
            if api_count > 0 {
                for (api, reference) in role.permissions.iter().take(6) {
                    let api = usize::from(*api) % api_count;
                    if let Some(scope) = resolve_ref(&scopes_of(&doc, api), reference) {
                        permissions.push(model::Permission {
                            audience: AUDIENCES[api].to_string(),
                            scope,
                        });
                    }
                }
            }
            doc.roles.push(model::Role {
                name: format!("r{i}"),
                description: String::new(),
                inherits,
                permissions,
            });
        }
        for (i, client) in self.clients.iter().take(4).enumerate() {
            let kind = pick(&KINDS, client.kind);
            let default_subject_is_client = kind == "machine_to_machine";
            let mut taken = Vec::new();
            let mut grants = Vec::new();
            if api_count > 0 {
                for (api, subject, refs) in client.grants.iter().take(4) {
                    let api = usize::from(*api) % api_count;
                    let is_client = subject.unwrap_or(default_subject_is_client);
                    if taken.contains(&(api, is_client)) {
                        continue;
                    }
                    taken.push((api, is_client));
                    let scopes_here = scopes_of(&doc, api);
                    grants.push(model::ClientGrant {
                        audience: AUDIENCES[api].to_string(),
                        subject: subject.map(|c| if c { "client" } else { "user" }.to_string()),
                        scopes: refs
                            .iter()
                            .take(4)
                            .filter_map(|r| resolve_ref(&scopes_here, r))
                            .collect(),
                    });
                }
            }
            // RFC 6749 §2.1: a public client may not have client credentials.
            let public = kind == "spa" || kind == "native";
            doc.clients.push(model::Client {
                client_id: format!("c{i}"),
                name: String::new(),
                first_party: client.first_party,
                kind: kind.to_string(),
                grant_types: client.grant_types.as_ref().map(|g| {
                    g.iter()
                        .take(4)
                        .map(|f| pick(&GRANT_TYPES, *f))
                        .filter(|f| !(public && *f == "client_credentials"))
                        .map(str::to_string)
                        .collect()
                }),
                grants,
                metadata: metadata(client.metadata, i),
            });
        }
        doc
    }
}

// ---------------------------------------------------------------------------
// The generated request
// ---------------------------------------------------------------------------

#[derive(Debug, Arbitrary)]
enum Mutation {
    Upper,
    Star,
    Slash,
    Tab,
    Nbsp,
    Cyrillic,
    Prefix,
    /// Percent-encodes the first letter (of the host, in a URI).
    Percent,
}

/// A string drawn from a vocabulary, a hostile mutation of one, or anything.
#[derive(Debug, Arbitrary)]
enum Text {
    Known(u8),
    Mutated(u8, Mutation),
    Raw(String),
}

impl Text {
    fn resolve(&self, vocabulary: &[&str]) -> String {
        match self {
            Text::Known(i) => pick(vocabulary, *i).to_string(),
            Text::Mutated(i, mutation) => {
                let word = pick(vocabulary, *i);
                match mutation {
                    Mutation::Upper => word.to_uppercase(),
                    Mutation::Star => format!("{word}*"),
                    Mutation::Slash => format!("{word}/"),
                    Mutation::Tab => format!("{word}\t"),
                    Mutation::Nbsp => format!("{word}\u{a0}"),
                    Mutation::Cyrillic => word.replacen('e', "\u{435}", 1),
                    Mutation::Prefix => word.split(':').next().unwrap_or_default().to_string(),
                    Mutation::Percent => {
                        let from = word.find("//").map_or(0, |at| at + 2);
                        match word[from..].find(|c: char| c.is_ascii_alphabetic()) {
                            Some(at) => {
                                let at = from + at;
                                format!("{}%{:02X}{}", &word[..at], word.as_bytes()[at], &word[at + 1..])
                            }
                            None => word.to_string(),
                        }
                    }
                }
            }
            Text::Raw(text) => text.chars().take(24).collect(),
        }
    }
}

#[derive(Debug, Arbitrary)]
enum Time {
    Near(i8),
    /// Near `u64::MAX`: `now + consent_lifetime` saturates.
    End(u8),
    Absolute(u64),
}

impl Time {
    fn resolve(&self) -> u64 {
        match self {
            Time::Near(offset) => NOW.saturating_add_signed(i64::from(*offset)),
            Time::End(back) => u64::MAX - u64::from(*back),
            Time::Absolute(at) => *at,
        }
    }
}

/// The raw `prompt`: OIDC values joined by a separator (a space, two, or a
/// wrong one), maybe padded with spaces; or a whole prompt, good or bad,
/// mutated, or raw text.
#[derive(Debug, Arbitrary)]
enum GenPrompt {
    Values(Vec<u8>, u8),
    Text(Text),
}

impl GenPrompt {
    fn resolve(&self) -> String {
        match self {
            GenPrompt::Values(values, separator) => {
                let words: Vec<&str> = values.iter().take(4).map(|v| pick(&PROMPT_VALUES, *v)).collect();
                let joined = words.join(pick(&PROMPT_SEPARATORS, *separator % 8));
                if *separator >= 128 {
                    format!(" {joined} ")
                } else {
                    joined
                }
            }
            GenPrompt::Text(text) => text.resolve(&PROMPTS),
        }
    }
}

#[derive(Debug, Arbitrary)]
struct GenUser {
    id: Text,
    roles: Vec<Text>,
    permissions: Vec<(Text, Text)>,
}

#[derive(Debug, Arbitrary)]
struct GenConsent {
    user: Text,
    client: Text,
    audience: Option<Text>,
    scopes: Vec<Text>,
    declined: Vec<Text>,
    expires_at: Option<Time>,
}

#[derive(Debug, Arbitrary)]
enum GenAnswer {
    Nothing,
    /// Approve every scope on the prompt.
    ApproveAll,
    /// Approve these entries of the prompt (by position).
    Approve(Vec<u8>),
    /// Approve arbitrary tokens: a tampered form.
    Forged(Vec<Text>),
    /// Approve entries of the prompt and one arbitrary token.
    Mixed(Vec<u8>, Text),
    Deny,
}

#[derive(Debug, Arbitrary)]
struct GenReq {
    client: Text,
    flow: u8,
    audience: Option<Text>,
    scope: Option<Vec<Text>>,
    double_spaces: bool,
    user: Option<GenUser>,
    consents: Vec<GenConsent>,
    prompt: Option<GenPrompt>,
    redirect_uri: Option<Text>,
    original_scope: Option<Vec<Text>>,
    original_audience: Option<Text>,
    now: Option<Time>,
    answer: GenAnswer,
}

#[derive(Debug, Arbitrary)]
struct Input {
    doc: GenDoc,
    req: GenReq,
}

/// Whether the crate's `Scope` can hold `token` (RFC 6749 `scope-token`):
/// records and direct permissions hold only such tokens, so the generator
/// drops the others instead of making an input that cannot be compared.
fn holdable(token: &str) -> bool {
    !token.is_empty()
        && token
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

fn join(tokens: &[Text], vocabulary: &[&str], separator: &str) -> String {
    tokens
        .iter()
        .take(10)
        .map(|t| t.resolve(vocabulary))
        .collect::<Vec<_>>()
        .join(separator)
}

impl GenReq {
    /// The request, its names drawn from those `doc` defines (an unknown
    /// client or audience comes from a mutation or raw text).
    fn build(&self, doc: &Doc) -> Req {
        let clients: Vec<&str> = doc.clients.iter().map(|c| c.client_id.as_str()).collect();
        let clients = if clients.is_empty() { vec!["c0"] } else { clients };
        let audiences: Vec<&str> = doc.apis.iter().map(|a| a.audience.as_str()).collect();
        let audiences = if audiences.is_empty() {
            AUDIENCES.to_vec()
        } else {
            audiences
        };
        let mut scopes: Vec<&str> = NAMES.to_vec();
        scopes.extend(OIDC);
        scopes.extend(["*", "read:*"]);
        let roles = ["r0", "r1", "r2", "r3", "r4", "ghost"];
        let separator = if self.double_spaces { "  " } else { " " };
        Req {
            client_id: self.client.resolve(&clients),
            flow: pick(&FLOWS, self.flow).to_string(),
            audience: self.audience.as_ref().map(|a| a.resolve(&audiences)),
            scope: self.scope.as_ref().map(|s| join(s, &scopes, separator)),
            user: self.user.as_ref().map(|u| model::User {
                id: u.id.resolve(&USERS),
                roles: u.roles.iter().take(4).map(|r| r.resolve(&roles)).collect(),
                permissions: u
                    .permissions
                    .iter()
                    .take(4)
                    .map(|(a, s)| model::Permission {
                        audience: a.resolve(&audiences),
                        scope: s.resolve(&scopes),
                    })
                    .filter(|p| holdable(&p.scope))
                    .collect(),
            }),
            consents: self
                .consents
                .iter()
                .take(6)
                .map(|c| model::Consent {
                    user_id: c.user.resolve(&USERS),
                    client_id: c.client.resolve(&clients),
                    audience: c.audience.as_ref().map(|a| a.resolve(&audiences)),
                    scopes: c
                        .scopes
                        .iter()
                        .take(6)
                        .map(|s| s.resolve(&scopes))
                        .filter(|s| holdable(s))
                        .collect(),
                    declined: c
                        .declined
                        .iter()
                        .take(4)
                        .map(|s| s.resolve(&scopes))
                        .filter(|s| holdable(s))
                        .collect(),
                    expires_at: c.expires_at.as_ref().map(Time::resolve),
                })
                .collect(),
            prompt: self.prompt.as_ref().map(GenPrompt::resolve),
            redirect_uri: self.redirect_uri.as_ref().map(|r| r.resolve(&REDIRECTS)),
            original_scope: self.original_scope.as_ref().map(|s| join(s, &scopes, " ")),
            original_audience: self.original_audience.as_ref().map(|a| a.resolve(&audiences)),
            now: self.now.as_ref().map(Time::resolve),
        }
    }

    fn answer(&self, doc: &Doc, req: &Req) -> Answer {
        let mut scopes: Vec<&str> = NAMES.to_vec();
        scopes.extend(OIDC);
        match &self.answer {
            GenAnswer::Nothing => Answer::None,
            GenAnswer::Deny => Answer::Deny,
            GenAnswer::Forged(tokens) => {
                Answer::Approve(tokens.iter().take(4).map(|t| t.resolve(&scopes)).collect())
            }
            GenAnswer::ApproveAll | GenAnswer::Approve(_) | GenAnswer::Mixed(..) => {
                let on_prompt = match model::decide(doc, req) {
                    Outcome::Consent { prompt, .. } => prompt,
                    _ => Vec::new(),
                };
                let picked = |picks: &[u8]| -> Vec<String> {
                    if on_prompt.is_empty() {
                        return Vec::new();
                    }
                    let at = |i: &u8| on_prompt[usize::from(*i) % on_prompt.len()].clone();
                    picks.iter().take(8).map(at).collect()
                };
                Answer::Approve(match &self.answer {
                    GenAnswer::Approve(picks) => picked(picks),
                    GenAnswer::Mixed(picks, forged) => {
                        let mut approved = picked(picks);
                        approved.insert(approved.len() / 2, forged.resolve(&scopes));
                        approved
                    }
                    _ => on_prompt.clone(),
                })
            }
        }
    }
}

fuzz_target!(|input: Input| {
    let doc = input.doc.build();
    let req = input.req.build(&doc);
    let answer = input.req.answer(&doc, &req);
    match compare(&doc, &req, &answer) {
        Comparison::Same => {}
        Comparison::Differ(found) => panic!(
            "the crate and the model differ:\n{found}\n\ndocument: {}\nrequest: {req:?}\nanswer: {answer:?}",
            serde_json::to_string(&doc).unwrap_or_default()
        ),
        Comparison::Unbuildable(why) | Comparison::Inexpressible(why) => {
            if std::env::var_os("DIFF_VERBOSE").is_some() {
                eprintln!("not compared: {why}");
            }
        }
    }
});

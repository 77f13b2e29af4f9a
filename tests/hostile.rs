//! Hostile inputs (TESTING.md §3): every class, each with its exact outcome.
//!
//! Each test is a table: what is fed in, and the exact typed error or the
//! exact decision that must come out. The heavy cases (1 MiB parameters,
//! 100,000 tokens, 10,000-deep inheritance, 100,000 scopes, a 10 MB document)
//! print how long they took (`cargo test --test hostile -- --nocapture`), for
//! the record only: nothing here asserts on time.

use std::time::Instant;

use scope_policy::{
    ConsentRecord, Decision, DenyReason, ErrorCode, Flow, GrantError, Limits, LoadError, Policy, Problem,
    Request, Scope, ScopeError, ScopeParam, Subject, UnknownValue, User,
};
use serde_json::{json, Value};

const EVENTS: &str = "https://events.example.com/api";
const BILLING: &str = "https://billing.example.com/api";
const NOW: u64 = 1_700_000_000;

use DenyReason::{
    ConsentDenied, ConsentMissing, NoAudience, NotGrantedToClient, NotPermitted, OfflineAccessNotAllowed,
    RequiresUser, Undefined,
};

// ---------------------------------------------------------------------------
// The fixture: a small, realistic policy
// ---------------------------------------------------------------------------

/// Events (RBAC, offline access allowed, default scope `read:events`) and
/// Billing (no RBAC, `require_client_grant`, consent never skipped); roles
/// viewer ⊂ organizer ⊂ admin; a first-party web client, a third-party one, a
/// first-party SPA without refresh tokens, and a machine client.
fn fixture() -> Value {
    json!({
        "apis": [
            {
                "audience": EVENTS, "name": "Events API", "rbac": true, "allow_offline_access": true,
                "default_scopes": ["read:events"],
                "scopes": [
                    { "name": "create:events", "description": "Create events" },
                    { "name": "read:events", "description": "Read events" },
                    { "name": "update:events", "description": "Update events" },
                    { "name": "delete:events", "description": "Delete events" },
                    { "name": "read:attendees", "description": "Read attendee lists" }
                ]
            },
            {
                "audience": BILLING, "name": "Billing API", "allow_skipping_consent": false,
                "user_access": "require_client_grant",
                "scopes": [
                    { "name": "read:invoices", "description": "Read invoices" },
                    { "name": "pay:invoices", "description": "Pay invoices" }
                ]
            }
        ],
        "roles": [
            { "name": "viewer", "permissions": [ { "audience": EVENTS, "scope": "read:*" } ] },
            { "name": "organizer", "inherits": ["viewer"], "permissions": [
                { "audience": EVENTS, "scope": "create:events" },
                { "audience": EVENTS, "scope": "update:events" }
            ] },
            { "name": "admin", "inherits": ["organizer"], "permissions": [
                { "audience": EVENTS, "scope": "delete:events" }
            ] }
        ],
        "clients": [
            { "client_id": "events-web", "name": "Events", "first_party": true, "kind": "regular_web",
              "grants": [ { "audience": BILLING, "subject": "user", "scopes": ["read:invoices"] } ] },
            { "client_id": "partner-planner", "kind": "regular_web" },
            { "client_id": "events-spa", "first_party": true, "kind": "spa",
              "grant_types": ["authorization_code"] },
            { "client_id": "reporting-bot", "kind": "machine_to_machine",
              "grants": [ { "audience": EVENTS, "scopes": ["read:*"] } ] }
        ]
    })
}

fn policy() -> Policy {
    Policy::from_json(&fixture().to_string()).expect("the fixture builds")
}

/// The fixture with these settings.
fn policy_with(settings: Value) -> Policy {
    let mut document = fixture();
    document["settings"] = settings;
    Policy::from_json(&document.to_string()).expect("the fixture builds with these settings")
}

fn alice() -> User {
    User::new("alice").with_role("organizer")
}

fn scope(token: &str) -> Scope {
    Scope::new(token).expect("a valid token")
}

fn record(
    user: &str,
    client: &str,
    audience: Option<&str>,
    scopes: &[&str],
    expires_at: Option<u64>,
) -> ConsentRecord {
    let record =
        ConsentRecord::new(user, client, audience).with_scopes(scopes.iter().map(|token| scope(token)));
    match expires_at {
        Some(expires_at) => record.with_expires_at(expires_at),
        None => record,
    }
}

// ---------------------------------------------------------------------------
// Outcomes
// ---------------------------------------------------------------------------

/// A decision, reduced to what the tables compare.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Granted {
        granted: Vec<String>,
        denied: Vec<(String, DenyReason)>,
    },
    Consent {
        prompt: Vec<String>,
        granted: Vec<String>,
        denied: Vec<(String, DenyReason)>,
    },
    Error(GrantError),
}

fn strings(tokens: &[&str]) -> Vec<String> {
    tokens.iter().map(|token| (*token).to_owned()).collect()
}

fn reasons(denied: &[(&str, DenyReason)]) -> Vec<(String, DenyReason)> {
    denied
        .iter()
        .map(|(token, reason)| ((*token).to_owned(), *reason))
        .collect()
}

fn granted(granted: &[&str], denied: &[(&str, DenyReason)]) -> Outcome {
    Outcome::Granted {
        granted: strings(granted),
        denied: reasons(denied),
    }
}

fn consent(prompt: &[&str], granted: &[&str], denied: &[(&str, DenyReason)]) -> Outcome {
    Outcome::Consent {
        prompt: strings(prompt),
        granted: strings(granted),
        denied: reasons(denied),
    }
}

fn error(error: GrantError) -> Outcome {
    Outcome::Error(error)
}

/// RFC 6749 §5.2: `error_description` is `%x20-21 / %x23-5B / %x5D-7E`.
fn assert_safe_description(error: &GrantError) {
    let description = error.error_description();
    assert!(!description.is_empty(), "{error:?} has an empty description");
    assert!(
        description
            .bytes()
            .all(|b| matches!(b, 0x20 | 0x21 | 0x23..=0x5B | 0x5D..=0x7E)),
        "{error:?}: description {description:?} is not safe for error_description"
    );
}

fn decide(policy: &Policy, request: &Request<'_>) -> Outcome {
    match policy.grant(request) {
        Ok(Decision::Granted(grant)) => {
            let scopes: Vec<&str> = grant.scopes().collect();
            assert_eq!(
                grant.scope_string(),
                scopes.join(" "),
                "the scope string is the granted scopes"
            );
            assert_eq!(grant.refresh_token(), scopes.contains(&"offline_access"));
            Outcome::Granted {
                granted: strings(&scopes),
                denied: grant
                    .denied()
                    .map(|(token, reason)| (token.to_owned(), reason))
                    .collect(),
            }
        }
        Ok(Decision::ConsentRequired(prompt)) => Outcome::Consent {
            prompt: prompt.scopes().map(|entry| entry.scope().to_owned()).collect(),
            granted: prompt.granted().map(str::to_owned).collect(),
            denied: prompt
                .denied()
                .map(|(token, reason)| (token.to_owned(), reason))
                .collect(),
        },
        Err(error) => {
            assert_safe_description(&error);
            Outcome::Error(error)
        }
    }
}

fn elapsed(what: &str, start: Instant) {
    eprintln!("[hostile] {what}: {:?}", start.elapsed());
}

// ---------------------------------------------------------------------------
// Scope parameter
// ---------------------------------------------------------------------------

/// A parsed parameter's tokens, or why it was refused.
type Parsed = Result<Vec<String>, ScopeError>;

fn invalid(at: usize, byte: u8) -> Parsed {
    Err(ScopeError::InvalidByte { at, byte })
}

fn tokens(expected: &[&str]) -> Parsed {
    Ok(strings(expected))
}

fn parse(raw: &str, limits: Limits) -> Parsed {
    ScopeParam::parse(raw, limits).map(|param| strings(param.tokens()))
}

/// The byte-level table: empty, blank, control bytes, quotes, and every NQCHAR boundary.
fn byte_table() -> Vec<(&'static str, &'static str, Parsed)> {
    vec![
        ("empty", "", tokens(&[])),
        ("one space", " ", tokens(&[])),
        ("spaces only", "        ", tokens(&[])),
        (
            "leading, trailing and runs of spaces",
            "  openid   read:events  ",
            tokens(&["openid", "read:events"]),
        ),
        ("TAB between tokens", "openid\tread:events", invalid(6, 0x09)),
        ("TAB alone", "\t", invalid(0, 0x09)),
        ("TAB among spaces", "  \t  ", invalid(2, 0x09)),
        ("CR", "openid\rread:events", invalid(6, 0x0D)),
        ("LF", "openid\nread:events", invalid(6, 0x0A)),
        (
            "CRLF: the first offending byte is named",
            "openid\r\nread:events",
            invalid(6, 0x0D),
        ),
        ("trailing LF", "openid read:events\n", invalid(18, 0x0A)),
        ("NUL inside a token", "read:\0events", invalid(5, 0x00)),
        ("NUL alone", "\0", invalid(0, 0x00)),
        ("DEL", "read:events\x7f", invalid(11, 0x7F)),
        ("vertical tab", "openid\x0bprofile", invalid(6, 0x0B)),
        ("form feed", "openid\x0cprofile", invalid(6, 0x0C)),
        ("ESC", "\x1b[31mopenid", invalid(0, 0x1B)),
        ("unit separator 0x1F", "a\x1fb", invalid(1, 0x1F)),
        ("double quote", "read:\"events\"", invalid(5, 0x22)),
        ("quoted parameter", "\"openid\"", invalid(0, 0x22)),
        ("backslash", "read:\\events", invalid(5, 0x5C)),
        ("escaped quote", "openid \\\"", invalid(7, 0x5C)),
        (
            "the error is after valid tokens",
            "openid profile email read:events \"x",
            invalid(33, 0x22),
        ),
        // Every NQCHAR boundary byte (RFC 6749 appendix A: %x21 / %x23-5B / %x5D-7E).
        ("0x20 separates", "x y", tokens(&["x", "y"])),
        ("0x21 `!` is the first NQCHAR", "x!", tokens(&["x!"])),
        ("0x21 alone", "!", tokens(&["!"])),
        ("0x22 `\"` is excluded", "x\"", invalid(1, 0x22)),
        ("0x23 `#` starts the second range", "x#", tokens(&["x#"])),
        ("0x23 alone", "#", tokens(&["#"])),
        ("0x5B `[` ends the second range", "x[", tokens(&["x["])),
        ("0x5B alone", "[", tokens(&["["])),
        ("0x5C `\\` is excluded", "x\\", invalid(1, 0x5C)),
        ("0x5D `]` starts the third range", "x]", tokens(&["x]"])),
        ("0x5D alone", "]", tokens(&["]"])),
        ("0x7E `~` ends the third range", "x~", tokens(&["x~"])),
        ("0x7E alone", "~", tokens(&["~"])),
        ("0x7F DEL is excluded", "x\x7f", invalid(1, 0x7F)),
        ("0x1F below the first range", "x\x1f", invalid(1, 0x1F)),
        ("every NQCHAR boundary in one token", "!#[]~", tokens(&["!#[]~"])),
    ]
}

#[test]
fn scope_parameter_bytes_are_refused_at_their_offset() {
    for (about, raw, expected) in byte_table() {
        assert_eq!(parse(raw, Limits::default()), expected, "{about}: {raw:?}");
    }
}

#[test]
fn scope_parameter_bytes_through_grant() {
    let policy = policy();
    let alice = alice();
    for (about, raw, expected) in byte_table() {
        let request = Request::new("events-web")
            .audience(EVENTS)
            .scope(raw)
            .user(&alice);
        let outcome = decide(&policy, &request);
        match expected {
            Err(scope_error) => {
                assert_eq!(outcome, error(GrantError::Scope(scope_error)), "{about}: {raw:?}");
                if let Outcome::Error(e) = &outcome {
                    assert_eq!(e.code(), ErrorCode::InvalidScope, "{about}");
                }
            }
            Ok(tokens) if tokens.is_empty() => {
                // No token: authorization_code asks for the API's default scopes.
                assert_eq!(outcome, granted(&["read:events"], &[]), "{about}: {raw:?}");
            }
            Ok(tokens) => {
                let asked: Vec<&str> = tokens.iter().map(String::as_str).collect();
                let expected = match asked.as_slice() {
                    ["openid", "read:events"] => granted(&["openid", "read:events"], &[]),
                    others => granted(&[], &others.iter().map(|t| (*t, Undefined)).collect::<Vec<_>>()),
                };
                assert_eq!(outcome, expected, "{about}: {raw:?}");
            }
        }
    }
}

#[test]
fn non_ascii_and_look_alikes_are_refused_at_their_first_byte() {
    let table: &[(&str, &str, usize, u8)] = &[
        // about, raw, offset, first byte of the offending character
        ("e with acute (U+00E9)", "read:\u{e9}vents", 5, 0xC3),
        ("Cyrillic small ie (U+0435) for `e`", "r\u{435}ad:events", 1, 0xD0),
        ("Cyrillic small o (U+043E) in openid", "\u{43e}penid", 0, 0xD0),
        ("Greek omicron (U+03BF) in openid", "\u{3bf}penid", 0, 0xCE),
        ("fullwidth colon (U+FF1A)", "read\u{ff1a}events", 4, 0xEF),
        (
            "fullwidth OPENID",
            "\u{ff2f}\u{ff30}\u{ff25}\u{ff2e}\u{ff29}\u{ff24}",
            0,
            0xEF,
        ),
        (
            "no-break space (U+00A0) as a separator",
            "openid\u{a0}read:events",
            6,
            0xC2,
        ),
        (
            "ideographic space (U+3000) as a separator",
            "openid\u{3000}profile",
            6,
            0xE3,
        ),
        (
            "zero-width space (U+200B) after a token",
            "openid\u{200b}",
            6,
            0xE2,
        ),
        (
            "zero-width joiner (U+200D) inside a token",
            "read\u{200d}:events",
            4,
            0xE2,
        ),
        ("byte order mark (U+FEFF) first", "\u{feff}openid", 0, 0xEF),
        (
            "right-to-left override (U+202E)",
            "openid \u{202e}stneve:daer",
            7,
            0xE2,
        ),
        ("combining acute accent (U+0301)", "read:e\u{301}vents", 6, 0xCC),
        ("NEL (U+0085) as a line break", "openid\u{85}profile", 6, 0xC2),
        ("line separator (U+2028)", "openid\u{2028}profile", 6, 0xE2),
        ("modifier letter colon (U+A789)", "read\u{a789}events", 4, 0xEA),
        ("an emoji", "read:\u{1f389}", 5, 0xF0),
        ("a replacement character (U+FFFD)", "\u{fffd}", 0, 0xEF),
    ];
    let policy = policy();
    let alice = alice();
    for &(about, raw, at, byte) in table {
        let expected = ScopeError::InvalidByte { at, byte };
        assert_eq!(parse(raw, Limits::default()), Err(expected), "{about}");
        let request = Request::new("events-web")
            .audience(EVENTS)
            .scope(raw)
            .user(&alice);
        assert_eq!(
            decide(&policy, &request),
            error(GrantError::Scope(expected)),
            "{about}"
        );
    }
}

#[test]
fn limits_are_exact_at_their_boundaries() {
    let at_limit = "a".repeat(Limits::DEFAULT_MAX_SCOPE_LENGTH);
    let over_limit = "a".repeat(Limits::DEFAULT_MAX_SCOPE_LENGTH + 1);
    let tokens_at_limit = vec!["t"; Limits::DEFAULT_MAX_SCOPE_TOKENS].join(" ");
    let tokens_over_limit = vec!["t"; Limits::DEFAULT_MAX_SCOPE_TOKENS + 1].join(" ");
    let table: Vec<(&str, &str, Parsed)> = vec![
        ("4096 bytes are accepted", &at_limit, Ok(vec![at_limit.clone()])),
        (
            "4097 bytes are too long",
            &over_limit,
            Err(ScopeError::TooLong { len: 4097, max: 4096 }),
        ),
        (
            "128 tokens are accepted, repeats counted",
            &tokens_at_limit,
            tokens(&["t"]),
        ),
        (
            "129 tokens are too many",
            &tokens_over_limit,
            Err(ScopeError::TooManyTokens { max: 128 }),
        ),
    ];
    for (about, raw, expected) in table {
        assert_eq!(parse(raw, Limits::default()), expected, "{about}");
    }
    // A zero limit refuses everything but the empty parameter.
    let zero = Limits {
        max_scope_length: 0,
        max_scope_tokens: 0,
    };
    assert_eq!(parse("", zero), tokens(&[]));
    assert_eq!(parse(" ", zero), Err(ScopeError::TooLong { len: 1, max: 0 }));
    let no_tokens = Limits {
        max_scope_length: 100,
        max_scope_tokens: 0,
    };
    assert_eq!(parse("   ", no_tokens), tokens(&[]));
    assert_eq!(
        parse("openid", no_tokens),
        Err(ScopeError::TooManyTokens { max: 0 })
    );
}

/// 1 MiB of text: too long at the default limits for the scope parameter; a
/// refresh's original scope, from the host's store, is not held to them and
/// is decided in linear time.
#[test]
fn one_mebibyte_scope_parameter() {
    const MIB: usize = 1 << 20;
    let start = Instant::now();
    let text: String = "read:events create:events ".chars().cycle().take(MIB).collect();
    let one_token = "a".repeat(MIB);
    let with_bad_byte_at_end = format!("{}\t", &text[..MIB - 1]);
    assert_eq!(text.len(), MIB);
    let too_long = ScopeError::TooLong { len: MIB, max: 4096 };

    assert_eq!(parse(&text, Limits::default()), Err(too_long));
    assert_eq!(parse(&one_token, Limits::default()), Err(too_long));
    assert_eq!(
        parse(&with_bad_byte_at_end, Limits::default()),
        Err(too_long),
        "the length is checked before any byte"
    );

    let policy = policy();
    let alice = alice();
    let request = Request::new("events-web")
        .audience(EVENTS)
        .scope(&text)
        .user(&alice);
    assert_eq!(decide(&policy, &request), error(GrantError::Scope(too_long)));
    let refresh = Request::new("events-web")
        .flow(Flow::RefreshToken)
        .audience(EVENTS)
        .original_audience(EVENTS)
        .user(&alice)
        .original_scope(&text);
    assert_eq!(
        decide(&policy, &refresh),
        granted(&["read:events", "create:events"], &[("create:eve", Undefined)]),
        "the limits do not apply to the original scope"
    );

    // With the length limit raised, the token count is the next bound.
    let raised = Limits {
        max_scope_length: 2 * MIB,
        max_scope_tokens: 128,
    };
    assert_eq!(parse(&text, raised), Err(ScopeError::TooManyTokens { max: 128 }));
    assert_eq!(parse(&with_bad_byte_at_end, raised), invalid(MIB - 1, 0x09));
    assert_eq!(parse(&one_token, raised), Ok(vec![one_token.clone()]));
    let policy = policy_with(json!({ "max_scope_length": 2 * MIB }));
    let request = Request::new("events-web")
        .audience(EVENTS)
        .scope(&text)
        .user(&alice);
    assert_eq!(
        decide(&policy, &request),
        error(GrantError::Scope(ScopeError::TooManyTokens { max: 128 }))
    );
    let request = Request::new("events-web")
        .audience(EVENTS)
        .scope(&one_token)
        .user(&alice);
    assert_eq!(
        decide(&policy, &request),
        granted(&[], &[(&one_token, Undefined)])
    );
    elapsed(
        "1 MiB scope parameters and original scope (7 parses, 4 decisions)",
        start,
    );
}

/// 100,000 tokens: too long at the default limits (length is checked first),
/// too many once the length limit is raised.
#[test]
fn one_hundred_thousand_tokens() {
    let start = Instant::now();
    let distinct: String = (0..100_000).map(|n| format!("s{n} ")).collect();
    let repeated = "openid ".repeat(100_000);
    let huge = Limits {
        max_scope_length: 16 << 20,
        max_scope_tokens: 128,
    };
    assert_eq!(
        parse(&distinct, Limits::default()),
        Err(ScopeError::TooLong {
            len: distinct.len(),
            max: 4096
        })
    );
    assert_eq!(
        parse(&distinct, huge),
        Err(ScopeError::TooManyTokens { max: 128 })
    );
    assert_eq!(
        parse(&repeated, huge),
        Err(ScopeError::TooManyTokens { max: 128 })
    );
    let almost = Limits {
        max_scope_length: 16 << 20,
        max_scope_tokens: 99_999,
    };
    assert_eq!(
        parse(&repeated, almost),
        Err(ScopeError::TooManyTokens { max: 99_999 }),
        "tokens are counted before de-duplication"
    );
    let enough = Limits {
        max_scope_length: 16 << 20,
        max_scope_tokens: 100_000,
    };
    assert_eq!(parse(&repeated, enough), tokens(&["openid"]));

    let alice = alice();
    let default_policy = policy();
    let request = Request::new("events-web")
        .audience(EVENTS)
        .scope(&distinct)
        .user(&alice);
    assert_eq!(
        decide(&default_policy, &request),
        error(GrantError::Scope(ScopeError::TooLong {
            len: distinct.len(),
            max: 4096
        }))
    );
    let raised = policy_with(json!({ "max_scope_length": 16 << 20 }));
    let request = Request::new("events-web")
        .audience(EVENTS)
        .scope(&distinct)
        .user(&alice);
    assert_eq!(
        decide(&raised, &request),
        error(GrantError::Scope(ScopeError::TooManyTokens { max: 128 }))
    );
    elapsed("100,000 tokens (6 parses, 2 decisions)", start);

    // With both limits raised, 10,000 distinct tokens are parsed and decided
    // (the costly shape: past the scan budget, de-duplication hashes).
    let start = Instant::now();
    let ten_thousand: String = (0..10_000).map(|n| format!("s{n} ")).collect();
    let policy = policy_with(json!({ "max_scope_length": 1 << 20, "max_scope_tokens": 10_000 }));
    let request = Request::new("events-web")
        .audience(EVENTS)
        .scope(&ten_thousand)
        .user(&alice);
    match decide(&policy, &request) {
        Outcome::Granted { granted, denied } => {
            assert!(granted.is_empty());
            assert_eq!(denied.len(), 10_000);
            assert!(denied.iter().all(|(_, reason)| *reason == Undefined));
            assert_eq!(denied.first().map(|(t, _)| t.as_str()), Some("s0"));
            assert_eq!(denied.last().map(|(t, _)| t.as_str()), Some("s9999"));
        }
        other => panic!("10,000 undefined tokens: {other:?}"),
    }
    elapsed(
        "10,000 distinct tokens with max_scope_tokens = 10,000 (1 decision)",
        start,
    );
}

/// Past a few thousand comparisons the crate hashes where it otherwise
/// scans: de-duplication, the refresh check, the consent lookup and the
/// approval. A request of 1,200 distinct tokens (each sent twice) against a
/// consent record of 1,000 scopes takes those paths; every verdict is checked
/// against what the construction says it must be.
#[test]
fn long_requests_and_long_consent_records_decide_scope_by_scope() {
    const BIG: &str = "https://big.example/";
    let start = Instant::now();
    let name = |n: usize| format!("s{n}");
    // RBAC: a role allows every scope but each third; the user may also use s3 directly.
    let scopes: Vec<Value> = (0..2_000).map(|n| json!({ "name": name(n) })).collect();
    let permitted: Vec<Value> = (0..2_000)
        .filter(|n| n % 3 != 0)
        .map(|n| json!({ "audience": BIG, "scope": name(n) }))
        .collect();
    let document = json!({
        "settings": { "max_scope_length": 1 << 20, "max_scope_tokens": 10_000 },
        "apis": [{ "audience": BIG, "rbac": true, "scopes": scopes }],
        "roles": [{ "name": "most", "permissions": permitted }],
        "clients": [{ "client_id": "partner", "kind": "regular_web" }],
    });
    let policy = Policy::from_json(&document.to_string()).expect("the big policy builds");
    let user = User::new("alice")
        .with_role("most")
        .with_permission(BIG, scope("s3"));
    let allowed = |n: usize| n % 3 != 0 || n == 3;

    let asked: Vec<String> = (0..1_200).map(name).collect();
    let raw = format!("{} {}", asked.join(" "), asked.join("  "));
    // The record holds the even scopes of all 2,000, so 600 of the asked ones.
    let even: Vec<String> = (0..2_000).step_by(2).map(name).collect();
    let even: Vec<&str> = even.iter().map(String::as_str).collect();
    let consents = [record("alice", "partner", Some(BIG), &even, None)];
    let request = Request::new("partner")
        .audience(BIG)
        .user(&user)
        .scope(&raw)
        .consents(&consents);

    let pick =
        |keep: &dyn Fn(usize) -> bool| -> Vec<String> { (0..1_200).filter(|&n| keep(n)).map(name).collect() };
    let expected = Outcome::Consent {
        prompt: pick(&|n| allowed(n) && n % 2 == 1),
        granted: pick(&|n| allowed(n) && n % 2 == 0),
        denied: pick(&|n| !allowed(n))
            .into_iter()
            .map(|t| (t, NotPermitted))
            .collect(),
    };
    assert_eq!(decide(&policy, &request), expected, "the first decision");

    // Approving every prompt scope (once more the first) grants all allowed ones.
    let prompt = policy
        .grant(&request)
        .ok()
        .and_then(Decision::consent_required)
        .expect("a prompt");
    let mut approved: Vec<&str> = prompt.scopes().map(|entry| entry.scope()).collect();
    approved.extend(approved.first().copied());
    let mut grant = prompt
        .approve(&approved)
        .expect("every approved scope was on the prompt");
    let granted: Vec<&str> = grant.scopes().collect();
    assert_eq!(granted, pick(&|n| allowed(n)), "after approval");
    let record = grant.take_consent_record().expect("a new record");
    let mut held: Vec<String> = even.iter().map(|t| (*t).to_owned()).collect();
    held.extend(pick(&|n| allowed(n) && n % 2 == 1));
    let stored: Vec<&str> = record.scopes.iter().map(Scope::as_str).collect();
    assert_eq!(stored, held, "the record's scopes, each once, old ones first");

    // A scope refused by RBAC is not on the prompt, however long the request.
    let prompt = policy
        .grant(&request)
        .ok()
        .and_then(Decision::consent_required)
        .expect("a prompt");
    assert_eq!(
        prompt.approve(["s1", "s0"]).map(|_| ()),
        Err(GrantError::ApprovalNotOnPrompt {
            scope: "s0".to_owned()
        })
    );

    // A refresh may narrow a long original scope, never widen it; the new
    // 1,400-scope record (hashed) must hold every scope it keeps.
    let renewed = [record];
    let narrower: Vec<&str> = asked.iter().rev().skip(1).map(String::as_str).collect();
    let narrower = narrower.join(" ");
    let wider = format!("{narrower} s1500");
    let refresh = |scope: &'_ str| {
        let request = Request::new("partner")
            .flow(Flow::RefreshToken)
            .audience(BIG)
            .original_audience(BIG)
            .user(&user)
            .consents(&renewed)
            .original_scope(&raw)
            .scope(scope);
        decide(&policy, &request)
    };
    let expected_refresh = Outcome::Granted {
        granted: (0..1_199).rev().filter(|&n| allowed(n)).map(name).collect(),
        denied: (0..1_199)
            .rev()
            .filter(|&n| !allowed(n))
            .map(|n| (name(n), NotPermitted))
            .collect(),
    };
    assert_eq!(refresh(&narrower), expected_refresh, "a narrower refresh");
    assert_eq!(
        refresh(&wider),
        error(GrantError::ScopeWidened {
            scope: "s1500".to_owned()
        }),
        "a wider refresh"
    );
    elapsed(
        "1,200 tokens against a 1,000-scope consent record (4 decisions)",
        start,
    );
}

#[test]
fn ten_thousand_repeats_of_one_token() {
    let start = Instant::now();
    let repeats = "read:events ".repeat(10_000);
    let alice = alice();
    let table: Vec<(&str, Policy, Outcome)> = vec![
        (
            "default limits: too long",
            policy(),
            error(GrantError::Scope(ScopeError::TooLong {
                len: 120_000,
                max: 4096,
            })),
        ),
        (
            "length raised: repeats count against the token limit",
            policy_with(json!({ "max_scope_length": 1 << 20 })),
            error(GrantError::Scope(ScopeError::TooManyTokens { max: 128 })),
        ),
        (
            "one short of the token limit",
            policy_with(json!({ "max_scope_length": 1 << 20, "max_scope_tokens": 9_999 })),
            error(GrantError::Scope(ScopeError::TooManyTokens { max: 9_999 })),
        ),
        (
            "within both limits: the token counts once",
            policy_with(json!({ "max_scope_length": 1 << 20, "max_scope_tokens": 10_000 })),
            granted(&["read:events"], &[]),
        ),
    ];
    for (about, policy, expected) in table {
        let request = Request::new("events-web")
            .audience(EVENTS)
            .scope(&repeats)
            .user(&alice);
        assert_eq!(decide(&policy, &request), expected, "{about}");
    }
    let policy = policy_with(json!({ "max_scope_length": 1 << 20, "max_scope_tokens": 10_000 }));
    let request = Request::new("events-web")
        .audience(EVENTS)
        .scope(&repeats)
        .user(&alice);
    let grant = policy.grant(&request).unwrap().granted().unwrap();
    assert_eq!(grant.scope_string(), "read:events");
    assert!(
        !grant.scope_changed(),
        "the requested set is one token, and it was granted"
    );
    elapsed("10,000 repeats of one token (5 decisions)", start);
}

#[test]
fn patterns_and_case_variants_in_requests_are_plain_undefined_tokens() {
    let policy = policy();
    let admin = User::new("root").with_role("admin");
    let table: &[(&str, Option<&str>, Outcome)] = &[
        (
            "`*` is never expanded",
            Some(EVENTS),
            granted(&[], &[("*", Undefined)]),
        ),
        (
            "`read:*` is never expanded",
            Some(EVENTS),
            granted(&[], &[("read:*", Undefined)]),
        ),
        ("`**`", Some(EVENTS), granted(&[], &[("**", Undefined)])),
        (
            "a defined scope with `*` appended",
            Some(EVENTS),
            granted(&[], &[("read:events*", Undefined)]),
        ),
        (
            "a prefix without `*`",
            Some(EVENTS),
            granted(&[], &[("read:", Undefined)]),
        ),
        (
            "Read:events",
            Some(EVENTS),
            granted(&[], &[("Read:events", Undefined)]),
        ),
        (
            "READ:EVENTS",
            Some(EVENTS),
            granted(&[], &[("READ:EVENTS", Undefined)]),
        ),
        (
            "read:Events",
            Some(EVENTS),
            granted(&[], &[("read:Events", Undefined)]),
        ),
        (
            "OpenID is not an OIDC scope",
            Some(EVENTS),
            granted(&[], &[("OpenID", Undefined)]),
        ),
        ("OPENID", Some(EVENTS), granted(&[], &[("OPENID", Undefined)])),
        (
            "Offline_Access",
            Some(EVENTS),
            granted(&[], &[("Offline_Access", Undefined)]),
        ),
        (
            "OpenID without an audience",
            None,
            granted(&[], &[("OpenID", NoAudience)]),
        ),
        (
            "`*` without an audience",
            None,
            granted(&[], &[("*", NoAudience)]),
        ),
    ];
    for (about, audience, expected) in table {
        let raw = match expected {
            Outcome::Granted { denied, .. } => denied[0].0.clone(),
            _ => unreachable!(),
        };
        let mut request = Request::new("events-web").scope(&raw).user(&admin);
        if let Some(audience) = audience {
            request = request.audience(audience);
        }
        assert_eq!(&decide(&policy, &request), expected, "{about}");
    }

    // Mixed with real scopes: only the exact ones are granted, in request order.
    let request = Request::new("events-web")
        .audience(EVENTS)
        .scope("* read:events Read:events read:* openid OpenID")
        .user(&admin);
    assert_eq!(
        decide(&policy, &request),
        granted(
            &["read:events", "openid"],
            &[
                ("*", Undefined),
                ("Read:events", Undefined),
                ("read:*", Undefined),
                ("OpenID", Undefined)
            ]
        )
    );

    // Under `unknown_scopes = "reject"`, the first such token fails the request.
    let strict = policy_with(json!({ "unknown_scopes": "reject" }));
    for raw in [
        "*",
        "read:*",
        "Read:events",
        "OpenID",
        "openid read:events READ:EVENTS",
    ] {
        let request = Request::new("events-web")
            .audience(EVENTS)
            .scope(raw)
            .user(&admin);
        let first_unknown = raw
            .split(' ')
            .find(|t| !["openid", "read:events"].contains(t))
            .unwrap();
        let expected = GrantError::UnknownScope {
            scope: first_unknown.to_owned(),
        };
        assert_eq!(expected.code(), ErrorCode::InvalidScope);
        assert_eq!(decide(&strict, &request), error(expected), "reject: {raw}");
    }
}

// ---------------------------------------------------------------------------
// Audience
// ---------------------------------------------------------------------------

#[test]
fn audiences_are_compared_exactly() {
    let policy = policy();
    let alice = alice();
    let audiences = [
        "https://other.example.com/api",
        "",
        "https://events.example.com/api/",
        "https://events.example.com/api//",
        "HTTPS://EVENTS.EXAMPLE.COM/API",
        "https://Events.example.com/api",
        "https://events.example.com/API",
        " https://events.example.com/api",
        "https://events.example.com/api ",
        "https://events.example.com/api\t",
        "https://events.example.com/api\n",
        "https://events.example.com/api\0",
        "\u{a0}https://events.example.com/api",
        "https://events.example.com/api\u{200b}",
        "https://\u{435}vents.example.com/api",
        "https://events.example.com",
        "https://events.example.com/api?x=1",
        "https://events.example.com/api#",
        "events",
        " ",
    ];
    for audience in audiences {
        let expected = error(GrantError::UnknownAudience {
            audience: audience.to_owned(),
        });
        let user_flow = Request::new("events-web")
            .audience(audience)
            .scope("openid")
            .user(&alice);
        assert_eq!(
            decide(&policy, &user_flow),
            expected,
            "user flow, audience {audience:?}"
        );
        let machine = Request::new("reporting-bot")
            .flow(Flow::ClientCredentials)
            .audience(audience)
            .scope("read:events");
        assert_eq!(
            decide(&policy, &machine),
            expected,
            "client credentials, audience {audience:?}"
        );
        if let Outcome::Error(e) = expected {
            assert_eq!(e.code(), ErrorCode::InvalidTarget);
        }
    }

    // The exact audience works; client credentials need one.
    let machine = Request::new("reporting-bot")
        .flow(Flow::ClientCredentials)
        .audience(EVENTS);
    assert_eq!(
        decide(&policy, &machine),
        granted(&["read:events", "read:attendees"], &[])
    );
    let no_audience = Request::new("reporting-bot")
        .flow(Flow::ClientCredentials)
        .scope("read:events");
    assert_eq!(decide(&policy, &no_audience), error(GrantError::MissingAudience));
    assert_eq!(GrantError::MissingAudience.code(), ErrorCode::InvalidRequest);

    // The checks run in order: client, flow, user, scope, then audience.
    let table: Vec<(&str, Request<'_>, GrantError)> = vec![
        (
            "unknown client before unknown audience",
            Request::new("nobody").audience("x").scope("\t").user(&alice),
            GrantError::UnknownClient {
                client_id: "nobody".to_owned(),
            },
        ),
        (
            "bad scope before unknown audience",
            Request::new("events-web").audience("x").scope("\t").user(&alice),
            GrantError::Scope(ScopeError::InvalidByte { at: 0, byte: 9 }),
        ),
        (
            "missing user before unknown audience",
            Request::new("events-web").audience("x"),
            GrantError::MissingUser {
                flow: Flow::AuthorizationCode,
            },
        ),
    ];
    for (about, request, expected) in table {
        assert_eq!(decide(&policy, &request), error(expected), "{about}");
    }
}

// ---------------------------------------------------------------------------
// Policy documents: shape (syntax) errors
// ---------------------------------------------------------------------------

fn syntax(result: Result<Policy, LoadError>) -> (String, String) {
    match result {
        Err(LoadError::Syntax { path, message }) => (path, message),
        Err(other) => panic!("expected a syntax error, got {other:?}"),
        Ok(_) => panic!("expected a syntax error, the policy built"),
    }
}

/// The message of the problem at `path` of a document that does not load:
/// a syntax error (at `""`), or a problem of its shape or policy.
#[track_caller]
fn problem_at(result: Result<Policy, LoadError>, path: &str) -> String {
    match result {
        Err(LoadError::Syntax { path: at, message }) => {
            assert_eq!(at, path, "a syntax error: {message}");
            message
        }
        Err(LoadError::Policy(errors)) => match errors.iter().find(|error| error.path() == path) {
            Some(error) => error.problem().to_string(),
            None => panic!("no problem at {path:?}: {errors}"),
        },
        Err(other) => panic!("expected a problem at {path:?}, got {other:?}"),
        Ok(_) => panic!("expected a problem at {path:?}, the policy built"),
    }
}

fn problems(result: Result<Policy, LoadError>) -> Problems {
    match result {
        Err(LoadError::Policy(errors)) => {
            assert!(!errors.is_empty());
            errors
                .iter()
                .map(|e| (e.path().to_owned(), e.problem().clone()))
                .collect()
        }
        Err(other) => panic!("expected policy problems, got {other:?}"),
        Ok(_) => panic!("expected policy problems, the policy built"),
    }
}

/// A policy's problems: (path, problem), in document order.
type Problems = Vec<(String, Problem)>;

fn at(path: &str, problem: Problem) -> (String, Problem) {
    (path.to_owned(), problem)
}

/// (about, JSON text, path, start of the message).
const JSON_SHAPE_ERRORS: &[(&str, &str, &str, &str)] = &[
    ("empty text", "", "", "EOF while parsing a value"),
    ("not JSON", "apis = []", "", "expected value"),
    ("missing apis", "{}", "apis", "missing field `apis`"),
    ("trailing text", r#"{"apis": []} x"#, "", "trailing characters"),
    (
        "two documents",
        r#"{"apis": []}{"apis": []}"#,
        "",
        "trailing characters",
    ),
    (
        "unknown root field",
        r#"{"apis": [], "rolse": []}"#,
        "rolse",
        "unknown field `rolse`, expected one of",
    ),
    (
        "misspelt settings field",
        r#"{"settings": {"max_scope_len": 1}, "apis": []}"#,
        "settings.max_scope_len",
        "unknown field `max_scope_len`",
    ),
    (
        "misspelt API field",
        r#"{"apis": [{"audience": "a", "rbca": true}]}"#,
        "apis[0].rbca",
        "unknown field `rbca`",
    ),
    (
        "misspelt scope field",
        r#"{"apis": [{"audience": "a", "scopes": [{"name": "x", "desc": "y"}]}]}"#,
        "apis[0].scopes[0].desc",
        "unknown field `desc`",
    ),
    (
        "misspelt role field",
        r#"{"apis": [], "roles": [{"name": "r", "permisions": []}]}"#,
        "roles[0].permisions",
        "unknown field `permisions`",
    ),
    (
        "misspelt permission field",
        r#"{"apis": [], "roles": [{"name": "r", "permissions": [{"audience": "a", "scopes": "x"}]}]}"#,
        "roles[0].permissions[0].scopes",
        "unknown field `scopes`",
    ),
    (
        "misspelt client field",
        r#"{"apis": [], "clients": [{"client_id": "c", "kind": "spa", "firstParty": true}]}"#,
        "clients[0].firstParty",
        "unknown field `firstParty`",
    ),
    (
        "misspelt grant field",
        r#"{"apis": [], "clients": [{"client_id": "c", "kind": "spa", "grants": [{"audience": "a", "scope": ["x"]}]}]}"#,
        "clients[0].grants[0].scope",
        "unknown field `scope`",
    ),
    (
        "duplicate root key",
        r#"{"apis": [], "apis": []}"#,
        "apis",
        "duplicate key `apis`",
    ),
    (
        "duplicate settings key",
        r#"{"settings": {"unknown_scopes": "ignore", "unknown_scopes": "reject"}, "apis": []}"#,
        "settings.unknown_scopes",
        "duplicate key `unknown_scopes`",
    ),
    (
        "duplicate API key",
        r#"{"apis": [{"audience": "a", "rbac": true, "rbac": false}]}"#,
        "apis[0].rbac",
        "duplicate key `rbac`",
    ),
    (
        "duplicate audience key",
        r#"{"apis": [{"audience": "a", "audience": "b"}]}"#,
        "apis[0].audience",
        "duplicate key `audience`",
    ),
    (
        "duplicate client key",
        r#"{"apis": [], "clients": [{"client_id": "c", "kind": "spa", "first_party": false, "first_party": true}]}"#,
        "clients[0].first_party",
        "duplicate key `first_party`",
    ),
    (
        "bool as a string",
        r#"{"apis": [{"audience": "a", "rbac": "yes"}]}"#,
        "apis[0].rbac",
        "expected a boolean, found the string \"yes\"",
    ),
    (
        "negative limit",
        r#"{"settings": {"max_scope_length": -1}, "apis": []}"#,
        "settings.max_scope_length",
        "expected a non-negative integer, found the integer -1",
    ),
    (
        "fractional limit",
        r#"{"settings": {"max_scope_tokens": 1.5}, "apis": []}"#,
        "settings.max_scope_tokens",
        "expected a non-negative integer, found the number 1.5",
    ),
    (
        "limit beyond u64",
        r#"{"settings": {"max_scope_tokens": 18446744073709551616}, "apis": []}"#,
        "settings.max_scope_tokens",
        "expected a non-negative integer, found the number",
    ),
    (
        "apis as an object",
        r#"{"apis": {}}"#,
        "apis",
        "expected a list, found an object",
    ),
    (
        "apis as null",
        r#"{"apis": null}"#,
        "apis",
        "expected a list, found null",
    ),
    (
        "audience as a number",
        r#"{"apis": [{"audience": 42}]}"#,
        "apis[0].audience",
        "expected a string, found the integer 42",
    ),
    (
        "scopes as a string",
        r#"{"apis": [{"audience": "a", "scopes": "read"}]}"#,
        "apis[0].scopes",
        "expected a list, found the string \"read\"",
    ),
    (
        "description as null",
        r#"{"apis": [{"audience": "a", "scopes": [{"name": "x", "description": null}]}]}"#,
        "apis[0].scopes[0].description",
        "expected a string, found null",
    ),
    (
        "inherits as a string",
        r#"{"apis": [], "roles": [{"name": "r", "inherits": "viewer"}]}"#,
        "roles[0].inherits",
        "expected a list, found the string \"viewer\"",
    ),
    (
        "grant_types as a string",
        r#"{"apis": [], "clients": [{"client_id": "c", "kind": "spa", "grant_types": "authorization_code"}]}"#,
        "clients[0].grant_types",
        "expected a list, found the string \"authorization_code\"",
    ),
    (
        "first_party as a string",
        r#"{"apis": [], "clients": [{"client_id": "c", "kind": "spa", "first_party": "true"}]}"#,
        "clients[0].first_party",
        "expected a boolean, found the string \"true\"",
    ),
    (
        "missing audience",
        r#"{"apis": [{"name": "a"}]}"#,
        "apis[0].audience",
        "missing field `audience`",
    ),
    (
        "missing kind",
        r#"{"apis": [], "clients": [{"client_id": "c"}]}"#,
        "clients[0].kind",
        "missing field `kind`",
    ),
    (
        "missing role name",
        r#"{"apis": [], "roles": [{"inherits": []}]}"#,
        "roles[0].name",
        "missing field `name`",
    ),
    (
        "unterminated string",
        r#"{"apis": [{"audience": "a}]}"#,
        "",
        "EOF while parsing a string",
    ),
    (
        "lone surrogate escape",
        r#"{"apis": [{"audience": "\ud800"}]}"#,
        "",
        "unexpected end of hex escape",
    ),
    (
        "raw control character in a string",
        "{\"apis\": [{\"audience\": \"a\u{1}\"}]}",
        "",
        "control character (\\u0000-\\u001F) found while parsing a string",
    ),
];

/// Text that is not JSON is a syntax error (no path: the parser's message
/// says where); a shape problem is a policy problem at its path.
#[test]
fn malformed_json_documents_report_their_one_problem_at_its_path() {
    for &(about, text, path, message) in JSON_SHAPE_ERRORS {
        let got_message = problem_at(Policy::from_json(text), path);
        assert!(
            got_message.starts_with(message),
            "{about}: message {got_message:?} does not start with {message:?}"
        );
        assert!(!got_message.contains('\n'), "{about}: the message is one line");
    }
}

/// DESIGN §4: wrong types are errors. An object written as a positional array
/// is a wrong type, and must not be read field by field.
#[test]
fn objects_written_as_arrays_are_wrong_types() {
    let table: &[(&str, &str, &str)] = &[
        (
            "an API as an array",
            r#"{"apis": [["https://x.example.com/api", "X", true]]}"#,
            "apis[0]",
        ),
        (
            "the document as an array",
            r#"[{"unknown_scopes": "ignore"}, []]"#,
            "",
        ),
        ("the document as an empty array", "[]", ""),
        (
            "settings as an array",
            r#"{"settings": ["reject"], "apis": []}"#,
            "settings",
        ),
        (
            "a client as an array",
            r#"{"apis": [], "clients": [["c", "C", true, "regular_web"]]}"#,
            "clients[0]",
        ),
    ];
    for &(about, text, path) in table {
        let message = problem_at(Policy::from_json(text), path);
        assert_eq!(message, "expected an object, found a list", "{about}");
    }
    let message = problem_at(
        Policy::from_toml("apis = [[\"https://x.example.com/api\"]]\n"),
        "apis[0]",
    );
    assert_eq!(
        message, "expected an object, found a list",
        "TOML: an API as an array"
    );
}

#[test]
fn malformed_toml_documents_report_each_problem_at_its_path() {
    let table: &[(&str, &str, &str, &str)] = &[
        // about, text, path, text the message contains
        (
            "unknown root field",
            "apis = []\nrolse = []\n",
            "rolse",
            "unknown field `rolse`",
        ),
        (
            "misspelt API field",
            "[[apis]]\naudience = \"a\"\nrbca = true\n",
            "apis[0].rbca",
            "unknown field `rbca`",
        ),
        ("duplicate key", "apis = []\napis = []\n", "", "duplicate key"),
        (
            "duplicate nested key",
            "[[apis]]\naudience = \"a\"\naudience = \"b\"\n",
            "",
            "duplicate key",
        ),
        (
            "duplicate table",
            "apis = []\n[settings]\n[settings]\n",
            "",
            "duplicate key",
        ),
        (
            "wrong type",
            "[[apis]]\naudience = \"a\"\nrbac = \"yes\"\n",
            "apis[0].rbac",
            "expected a boolean, found the string \"yes\"",
        ),
        (
            "negative limit",
            "apis = []\n[settings]\nmax_scope_length = -1\n",
            "settings.max_scope_length",
            "expected a non-negative integer, found the integer -1",
        ),
        (
            "a date where a string belongs",
            "[[apis]]\naudience = 1979-05-27T07:32:00Z\n",
            "apis[0].audience",
            "expected a string, found a date or time",
        ),
        ("missing apis", "roles = []\n", "apis", "missing field `apis`"),
        ("not TOML", "{\"apis\": []}", "", "TOML parse error"),
    ];
    for &(about, text, path, contains) in table {
        let message = problem_at(Policy::from_toml(text), path);
        assert!(
            message.contains(contains),
            "{about}: {message:?} lacks {contains:?}"
        );
        assert!(!message.contains('\n'), "{about}: the message is one line");
    }
}

#[test]
fn deeply_nested_documents_are_syntax_errors_not_stack_overflows() {
    const DEPTH: usize = 100_000;
    let start = Instant::now();
    let brackets = "[".repeat(DEPTH);
    let closed = format!("{}{}", "[".repeat(DEPTH), "]".repeat(DEPTH));
    let braces = "{\"a\":".repeat(DEPTH);
    // Nothing in a policy nests deeper than a few levels: past 32, the text
    // is refused as it is read, wherever the value stands.
    let too_deep = "values nest deeper than 32 levels";
    let json_table: Vec<(&str, String, &str)> = vec![
        ("100,000 `[` as the document", brackets.clone(), too_deep),
        ("100,000 balanced `[]` as the document", closed.clone(), too_deep),
        ("100,000 `[` as the APIs", format!("{{\"apis\": {brackets}"), too_deep),
        (
            "100,000 objects as a name",
            format!("{{\"apis\": [{{\"audience\": \"a\", \"name\": {braces}"),
            too_deep,
        ),
        (
            "100,000 `[` as a description",
            format!("{{\"apis\": [{{\"audience\": \"a\", \"scopes\": [{{\"name\": \"x\", \"description\": {closed}"),
            too_deep,
        ),
        ("100,000 `{` as the document", "{".repeat(DEPTH), "key must be a string"),
        (
            "100,000 `[` in settings",
            format!("{{\"settings\": {{\"default_audience\": {brackets}"),
            too_deep,
        ),
    ];
    for (about, text, message) in json_table {
        let (path, got_message) = syntax(Policy::from_json(&text));
        assert_eq!(path, "", "{about}: {got_message}");
        assert!(got_message.starts_with(message), "{about}: {got_message:?}");
    }
    let toml_table: Vec<(&str, String, &str)> = vec![
        (
            "100,000 `[` as the APIs",
            format!("apis = {brackets}"),
            "max recursion depth met",
        ),
        (
            "100,000 balanced `[]` as the APIs",
            format!("apis = {closed}"),
            "max recursion depth met",
        ),
        (
            "100,000 inline tables",
            format!("apis = []\nx = {}", "{a=".repeat(DEPTH)),
            "max recursion depth met",
        ),
        (
            "100,000 dotted keys",
            format!("apis = []\n{} = 1", vec!["a"; DEPTH].join(".")),
            "recursion limit",
        ),
    ];
    for (about, text, contains) in toml_table {
        let (path, message) = syntax(Policy::from_toml(&text));
        // The TOML parser quotes the offending line in its message, however long.
        eprintln!(
            "[hostile] TOML {about}: path {path:?}, message of {} bytes",
            message.len()
        );
        assert_eq!(path, "", "{about}");
        assert!(message.contains(contains), "{about}: {:.200}", message);
    }
    elapsed("deeply nested documents (7 JSON, 4 TOML)", start);
}

// ---------------------------------------------------------------------------
// Policy documents: invalid policies, every problem at its path
// ---------------------------------------------------------------------------

fn unknown_value(what: &'static str, value: &str, expected: &'static str) -> Problem {
    Problem::UnknownValue(UnknownValue {
        what,
        value: value.to_owned(),
        expected,
    })
}

#[test]
fn invalid_policies_report_every_problem_with_its_path() {
    let table: Vec<(&str, Value, Problems)> = vec![
        (
            "duplicate audience, at the later one",
            json!({ "apis": [ { "audience": "a" }, { "audience": "b" }, { "audience": "a" } ] }),
            vec![at(
                "apis[2].audience",
                Problem::Duplicate {
                    what: "audience",
                    name: "a".into(),
                    first: "apis[0].audience".into(),
                },
            )],
        ),
        (
            "duplicate scope, at the later one",
            json!({ "apis": [ { "audience": "a", "scopes": [ { "name": "x" }, { "name": "y" }, { "name": "x" } ] } ] }),
            vec![at(
                "apis[0].scopes[2].name",
                Problem::Duplicate {
                    what: "scope",
                    name: "x".into(),
                    first: "apis[0].scopes[0].name".into(),
                },
            )],
        ),
        (
            "duplicate role, at the later one",
            json!({ "apis": [], "roles": [ { "name": "r" }, { "name": "r" } ] }),
            vec![at(
                "roles[1].name",
                Problem::Duplicate {
                    what: "role name",
                    name: "r".into(),
                    first: "roles[0].name".into(),
                },
            )],
        ),
        (
            "duplicate client, at the later one",
            json!({ "apis": [], "clients": [ { "client_id": "c", "kind": "spa" }, { "client_id": "c", "kind": "native" } ] }),
            vec![at(
                "clients[1].client_id",
                Problem::Duplicate {
                    what: "client id",
                    name: "c".into(),
                    first: "clients[0].client_id".into(),
                },
            )],
        ),
        (
            "empty names and ids",
            json!({
                "apis": [ { "audience": "" }, { "audience": "a", "name": " ", "scopes": [ { "name": "" } ] } ],
                "roles": [ { "name": "" } ],
                "clients": [ { "client_id": "", "kind": "spa", "name": "" } ]
            }),
            vec![
                at("apis[0].audience", Problem::Empty { what: "audience" }),
                at("apis[1].name", Problem::Empty { what: "name" }),
                at("apis[1].scopes[0].name", Problem::Empty { what: "scope name" }),
                at("roles[0].name", Problem::Empty { what: "role name" }),
                at("clients[0].client_id", Problem::Empty { what: "client id" }),
                at("clients[0].name", Problem::Empty { what: "name" }),
            ],
        ),
        (
            "invalid audiences",
            json!({ "apis": [ { "audience": "https://x/api " }, { "audience": "a\tb" }, { "audience": "a\u{a0}b" } ] }),
            vec![
                at(
                    "apis[0].audience",
                    Problem::InvalidAudience {
                        value: "https://x/api ".into(),
                    },
                ),
                at(
                    "apis[1].audience",
                    Problem::InvalidAudience { value: "a\tb".into() },
                ),
                at(
                    "apis[2].audience",
                    Problem::InvalidAudience {
                        value: "a\u{a0}b".into(),
                    },
                ),
            ],
        ),
        (
            "invalid, reserved and wildcard scope names",
            json!({ "apis": [ { "audience": "a", "scopes": [
                { "name": "read events" }, { "name": "r\u{e9}ad" }, { "name": "openid" },
                { "name": "offline_access" }, { "name": "read:*" }, { "name": "*" }, { "name": "a\"b" }
            ] } ] }),
            vec![
                at(
                    "apis[0].scopes[0].name",
                    Problem::InvalidScope {
                        value: "read events".into(),
                        source: ScopeError::InvalidByte { at: 4, byte: b' ' },
                    },
                ),
                at(
                    "apis[0].scopes[1].name",
                    Problem::InvalidScope {
                        value: "r\u{e9}ad".into(),
                        source: ScopeError::InvalidByte { at: 1, byte: 0xC3 },
                    },
                ),
                at(
                    "apis[0].scopes[2].name",
                    Problem::ReservedScope {
                        name: "openid".into(),
                    },
                ),
                at(
                    "apis[0].scopes[3].name",
                    Problem::ReservedScope {
                        name: "offline_access".into(),
                    },
                ),
                at(
                    "apis[0].scopes[4].name",
                    Problem::Wildcard {
                        name: "read:*".into(),
                    },
                ),
                at("apis[0].scopes[5].name", Problem::Wildcard { name: "*".into() }),
                at(
                    "apis[0].scopes[6].name",
                    Problem::InvalidScope {
                        value: "a\"b".into(),
                        source: ScopeError::InvalidByte { at: 1, byte: b'"' },
                    },
                ),
            ],
        ),
        (
            "unknown enum values, case included",
            json!({
                "settings": { "unknown_scopes": "Reject" },
                "apis": [ { "audience": "a", "user_access": "allow", "client_access": "allow_all" } ],
                "clients": [
                    { "client_id": "c", "kind": "Spa", "grant_types": ["authorization_code", "implicit"],
                      "grants": [ { "audience": "a", "subject": "users" } ] }
                ]
            }),
            vec![
                at(
                    "settings.unknown_scopes",
                    unknown_value("unknown_scopes setting", "Reject", "ignore reject"),
                ),
                at(
                    "apis[0].user_access",
                    unknown_value(
                        "user access policy",
                        "allow",
                        "allow_all require_client_grant deny_all",
                    ),
                ),
                at(
                    "apis[0].client_access",
                    unknown_value(
                        "client access policy",
                        "allow_all",
                        "require_client_grant deny_all",
                    ),
                ),
                at(
                    "clients[0].kind",
                    unknown_value("client kind", "Spa", "spa regular_web native machine_to_machine"),
                ),
                at(
                    "clients[0].grant_types[1]",
                    unknown_value(
                        "flow",
                        "implicit",
                        "authorization_code refresh_token client_credentials device_code",
                    ),
                ),
                at(
                    "clients[0].grants[0].subject",
                    unknown_value("grant subject", "users", "client user"),
                ),
            ],
        ),
        (
            "dangling references",
            json!({
                "settings": { "default_audience": "https://nowhere/api" },
                "apis": [ { "audience": "a", "default_scopes": ["nope", "x", "Read:x"],
                            "scopes": [ { "name": "x" } ] } ],
                "roles": [ { "name": "r", "inherits": ["ghost"], "permissions": [
                    { "audience": "b", "scope": "x" }, { "audience": "a", "scope": "y" }, { "audience": "a/", "scope": "x" }
                ] } ],
                "clients": [ { "client_id": "c", "kind": "spa", "grants": [
                    { "audience": "a", "scopes": ["x", "X"] }, { "audience": "A", "scopes": ["x"] }
                ] } ]
            }),
            vec![
                at(
                    "settings.default_audience",
                    Problem::UnknownApi {
                        audience: "https://nowhere/api".into(),
                    },
                ),
                at(
                    "apis[0].default_scopes[0]",
                    Problem::UndefinedScope {
                        audience: "a".into(),
                        scope: "nope".into(),
                    },
                ),
                at(
                    "apis[0].default_scopes[2]",
                    Problem::UndefinedScope {
                        audience: "a".into(),
                        scope: "Read:x".into(),
                    },
                ),
                // `json!` writes keys in alphabetical order: `inherits` comes before `permissions`.
                at(
                    "roles[0].inherits[0]",
                    Problem::UnknownRole { name: "ghost".into() },
                ),
                at(
                    "roles[0].permissions[0].audience",
                    Problem::UnknownApi { audience: "b".into() },
                ),
                at(
                    "roles[0].permissions[1].scope",
                    Problem::UndefinedScope {
                        audience: "a".into(),
                        scope: "y".into(),
                    },
                ),
                at(
                    "roles[0].permissions[2].audience",
                    Problem::UnknownApi {
                        audience: "a/".into(),
                    },
                ),
                at(
                    "clients[0].grants[0].scopes[1]",
                    Problem::UndefinedScope {
                        audience: "a".into(),
                        scope: "X".into(),
                    },
                ),
                at(
                    "clients[0].grants[1].audience",
                    Problem::UnknownApi { audience: "A".into() },
                ),
            ],
        ),
        (
            "patterns: matching nothing, misplaced `*`, none in default scopes",
            json!({
                "apis": [ { "audience": "a", "default_scopes": ["read:*"],
                            "scopes": [ { "name": "read:x" }, { "name": "write:x" } ] },
                          { "audience": "empty" } ],
                "roles": [ { "name": "r", "permissions": [
                    { "audience": "a", "scope": "delete:*" }, { "audience": "a", "scope": "read:*" },
                    { "audience": "a", "scope": "*:x" }, { "audience": "empty", "scope": "*" },
                    { "audience": "a", "scope": "read:xy*" }, { "audience": "a", "scope": "**" }
                ] } ],
                "clients": [ { "client_id": "c", "kind": "spa", "grants": [ { "audience": "a", "scopes": ["Read:*", "r*d:x"] } ] } ]
            }),
            vec![
                at(
                    "apis[0].default_scopes[0]",
                    Problem::UndefinedScope {
                        audience: "a".into(),
                        scope: "read:*".into(),
                    },
                ),
                at(
                    "roles[0].permissions[0].scope",
                    Problem::PatternMatchesNothing {
                        audience: "a".into(),
                        pattern: "delete:*".into(),
                    },
                ),
                at(
                    "roles[0].permissions[2].scope",
                    Problem::InvalidPattern {
                        pattern: "*:x".into(),
                    },
                ),
                at(
                    "roles[0].permissions[3].scope",
                    Problem::PatternMatchesNothing {
                        audience: "empty".into(),
                        pattern: "*".into(),
                    },
                ),
                at(
                    "roles[0].permissions[4].scope",
                    Problem::PatternMatchesNothing {
                        audience: "a".into(),
                        pattern: "read:xy*".into(),
                    },
                ),
                at(
                    "roles[0].permissions[5].scope",
                    Problem::InvalidPattern { pattern: "**".into() },
                ),
                at(
                    "clients[0].grants[0].scopes[0]",
                    Problem::PatternMatchesNothing {
                        audience: "a".into(),
                        pattern: "Read:*".into(),
                    },
                ),
                at(
                    "clients[0].grants[0].scopes[1]",
                    Problem::InvalidPattern {
                        pattern: "r*d:x".into(),
                    },
                ),
            ],
        ),
        (
            "a second grant for the same audience and subject",
            json!({
                "apis": [ { "audience": "a", "scopes": [ { "name": "x" } ] } ],
                "clients": [
                    { "client_id": "m", "kind": "machine_to_machine", "grants": [
                        { "audience": "a", "scopes": ["x"] }, { "audience": "a", "subject": "user", "scopes": ["x"] },
                        { "audience": "a", "subject": "client", "scopes": [] }
                    ] }
                ]
            }),
            vec![at(
                "clients[0].grants[2]",
                Problem::DuplicateGrant {
                    audience: "a".into(),
                    subject: Subject::Client,
                    first: "clients[0].grants[0]".into(),
                },
            )],
        ),
        (
            "problems in every section come back together, in document order",
            json!({
                "clients": [ { "client_id": "c", "kind": "robot" } ],
                "roles": [ { "name": "r", "inherits": ["r"] } ],
                "apis": [ { "audience": "a", "scopes": [ { "name": "email" } ] } ],
                "settings": { "default_audience": "b" }
            }),
            vec![
                at(
                    "settings.default_audience",
                    Problem::UnknownApi { audience: "b".into() },
                ),
                at(
                    "apis[0].scopes[0].name",
                    Problem::ReservedScope { name: "email".into() },
                ),
                at(
                    "roles[0].inherits",
                    Problem::InheritanceCycle {
                        cycle: vec!["r".into(), "r".into()],
                        omitted: 0,
                    },
                ),
                at(
                    "clients[0].kind",
                    unknown_value(
                        "client kind",
                        "robot",
                        "spa regular_web native machine_to_machine",
                    ),
                ),
            ],
        ),
    ];
    for (about, document, expected) in table {
        let text = document.to_string();
        assert_eq!(problems(Policy::from_json(&text)), expected, "{about}");
        // The same document read from TOML reports the same problems.
        let parsed = scope_policy::PolicyDocument::from_json(&text).expect("well-formed");
        let toml = parsed.to_toml().expect("serializes to TOML");
        assert_eq!(problems(Policy::from_toml(&toml)), expected, "{about} (TOML)");
    }
}

#[test]
fn inheritance_cycles_name_every_role_on_them() {
    let table: Vec<(&str, Value, Problems)> = vec![
        (
            "a role inherits itself",
            json!({ "apis": [], "roles": [ { "name": "a", "inherits": ["a"] } ] }),
            vec![at(
                "roles[0].inherits",
                Problem::InheritanceCycle {
                    cycle: vec!["a".into(), "a".into()],
                    omitted: 0,
                },
            )],
        ),
        (
            "a self cycle beside a valid parent",
            json!({ "apis": [], "roles": [ { "name": "p" }, { "name": "a", "inherits": ["p", "a"] } ] }),
            vec![at(
                "roles[1].inherits",
                Problem::InheritanceCycle {
                    cycle: vec!["a".into(), "a".into()],
                    omitted: 0,
                },
            )],
        ),
        (
            "two roles inherit each other; a third hangs off the cycle",
            json!({ "apis": [], "roles": [
                { "name": "a", "inherits": ["b"] }, { "name": "b", "inherits": ["a"] }, { "name": "c", "inherits": ["a"] }
            ] }),
            vec![
                at(
                    "roles[0].inherits",
                    Problem::InheritanceCycle {
                        cycle: vec!["a".into(), "b".into(), "a".into()],
                        omitted: 0,
                    },
                ),
                at(
                    "roles[1].inherits",
                    Problem::InheritanceCycle {
                        cycle: vec!["b".into(), "a".into(), "b".into()],
                        omitted: 0,
                    },
                ),
            ],
        ),
    ];
    for (about, document, expected) in table {
        assert_eq!(
            problems(Policy::from_json(&document.to_string())),
            expected,
            "{about}"
        );
    }

    // A long cycle: r0 -> r1 -> ... -> r4999 -> r0. Every role on it is
    // reported, each naming the first 16 roles of the cycle through it.
    const LONG: usize = 5_000;
    let start = Instant::now();
    let roles: Vec<Value> = (0..LONG)
        .map(|i| json!({ "name": format!("r{i}"), "inherits": [format!("r{}", (i + 1) % LONG)] }))
        .collect();
    let found = problems(Policy::from_json(
        &json!({ "apis": [], "roles": roles }).to_string(),
    ));
    assert_eq!(found.len(), LONG);
    for (i, (path, problem)) in found.iter().enumerate() {
        assert_eq!(path, &format!("roles[{i}].inherits"));
        let mut expected: Vec<String> = (0..16).map(|k| format!("r{}", (i + k) % LONG)).collect();
        expected.push(format!("r{i}"));
        assert_eq!(
            problem,
            &Problem::InheritanceCycle {
                cycle: expected,
                omitted: LONG - 16
            },
            "roles[{i}]"
        );
    }
    elapsed("a 5,000-role inheritance cycle (build)", start);
}

/// Inheritance 10,000 deep: `r9999 -> r9998 -> ... -> r0`, and only `r0` holds a permission.
#[test]
fn inheritance_ten_thousand_deep_builds_and_decides() {
    const DEPTH: usize = 10_000;
    let start = Instant::now();
    let mut roles =
        vec![json!({ "name": "r0", "permissions": [ { "audience": EVENTS, "scope": "create:events" } ] })];
    roles.extend((1..DEPTH).map(|i| json!({ "name": format!("r{i}"), "inherits": [format!("r{}", i - 1)] })));
    // A second chain that never reaches r0.
    roles.push(json!({ "name": "orphan0" }));
    roles.extend(
        (1..100).map(|i| json!({ "name": format!("orphan{i}"), "inherits": [format!("orphan{}", i - 1)] })),
    );
    let mut document = fixture();
    document["roles"] = Value::Array(roles);
    let text = document.to_string();
    let policy = Policy::from_json(&text).expect("a deep, acyclic chain builds");
    elapsed("10,000-deep inheritance (build)", start);

    let start = Instant::now();
    let api = policy.api(EVENTS).unwrap();
    let deepest = policy.role("r9999").unwrap();
    assert!(deepest.permits(api, "create:events"));
    assert!(!deepest.permits(api, "read:events"));
    assert!(policy.role("r5000").unwrap().permits(api, "create:events"));
    assert!(!policy.role("orphan99").unwrap().permits(api, "create:events"));

    let table: &[(&str, &[&str], Outcome)] = &[
        (
            "the deepest role inherits the root's permission",
            &["r9999"],
            granted(&["create:events"], &[("read:events", NotPermitted)]),
        ),
        (
            "a middle role too",
            &["r4321"],
            granted(&["create:events"], &[("read:events", NotPermitted)]),
        ),
        (
            "the root itself",
            &["r0"],
            granted(&["create:events"], &[("read:events", NotPermitted)]),
        ),
        (
            "a chain that never reaches the root",
            &["orphan99"],
            granted(
                &[],
                &[("create:events", NotPermitted), ("read:events", NotPermitted)],
            ),
        ),
        (
            "an unknown role name grants nothing",
            &["r10000"],
            granted(
                &[],
                &[("create:events", NotPermitted), ("read:events", NotPermitted)],
            ),
        ),
        (
            "role names are case-sensitive",
            &["R9999"],
            granted(
                &[],
                &[("create:events", NotPermitted), ("read:events", NotPermitted)],
            ),
        ),
    ];
    for (about, user_roles, expected) in table {
        let mut user = User::new("u");
        for role in *user_roles {
            user = user.with_role(*role);
        }
        let request = Request::new("events-web")
            .audience(EVENTS)
            .scope("create:events read:events")
            .user(&user);
        assert_eq!(&decide(&policy, &request), expected, "{about}");
    }
    elapsed("10,000-deep inheritance (6 decisions)", start);
}

/// One API with 100,000 scopes, patterns over all of them, decisions at both ends.
#[test]
fn policy_with_one_hundred_thousand_scopes() {
    const SCOPES: usize = 100_000;
    let start = Instant::now();
    let scopes: Vec<Value> = (0..SCOPES)
        .map(|i| json!({ "name": format!("s:{i}"), "description": format!("Scope number {i}") }))
        .collect();
    let document = json!({
        "apis": [ { "audience": "big", "rbac": true, "scopes": scopes, "default_scopes": ["s:99999", "s:0"] } ],
        "roles": [ { "name": "all", "permissions": [ { "audience": "big", "scope": "s:*" } ] },
                   { "name": "nines", "permissions": [ { "audience": "big", "scope": "s:9999*" } ] } ],
        "clients": [
            { "client_id": "first", "kind": "spa", "first_party": true },
            { "client_id": "third", "kind": "spa" },
            { "client_id": "bot", "kind": "machine_to_machine", "grants": [ { "audience": "big", "scopes": ["s:9999*"] } ] }
        ]
    });
    let text = document.to_string();
    let policy = Policy::from_json(&text).expect("100,000 scopes build");
    elapsed(
        &format!("100,000 scopes: build from {} bytes of JSON", text.len()),
        start,
    );
    assert_eq!(policy.api("big").unwrap().scopes().len(), SCOPES);

    let start = Instant::now();
    let all = User::new("u").with_role("all");
    let nines = User::new("n").with_role("nines");
    let rows: Vec<(&str, Request<'_>, Outcome)> = vec![
        (
            "first and last scope",
            Request::new("first")
                .audience("big")
                .scope("s:99999 s:0 s:100000")
                .user(&all),
            granted(&["s:99999", "s:0"], &[("s:100000", Undefined)]),
        ),
        (
            "defaults in definition order",
            Request::new("first").audience("big").user(&all),
            granted(&["s:0", "s:99999"], &[]),
        ),
        (
            "a prefix pattern of a role",
            Request::new("first")
                .audience("big")
                .scope("s:99990 s:9999 s:0")
                .user(&nines),
            granted(&["s:99990", "s:9999"], &[("s:0", NotPermitted)]),
        ),
        (
            "the consent prompt at the far end",
            Request::new("third").audience("big").scope("s:99999").user(&all),
            consent(&["s:99999"], &[], &[]),
        ),
        (
            "a machine client asks for its whole grant",
            Request::new("bot")
                .flow(Flow::ClientCredentials)
                .audience("big")
                .scope("s:99999 s:5"),
            granted(&["s:99999"], &[("s:5", NotGrantedToClient)]),
        ),
    ];
    for (about, request, expected) in rows {
        assert_eq!(decide(&policy, &request), expected, "{about}");
    }
    let prompt = policy
        .grant(&Request::new("third").audience("big").scope("s:99999").user(&all))
        .unwrap()
        .consent_required()
        .unwrap();
    let shown: Vec<(String, String)> = prompt
        .scopes()
        .map(|p| (p.scope().to_owned(), p.description().to_owned()))
        .collect();
    assert_eq!(shown, [("s:99999".to_owned(), "Scope number 99999".to_owned())]);
    let bot = policy
        .grant(&Request::new("bot").flow(Flow::ClientCredentials).audience("big"))
        .unwrap()
        .granted()
        .unwrap();
    assert_eq!(bot.scopes().count(), 11, "s:9999 and s:99990 to s:99999");
    elapsed("100,000 scopes: 7 decisions", start);
}

/// A 10 MB document: it builds and decides; one problem at its very end is
/// found at its path; a syntax error at its very end too.
#[test]
fn ten_megabyte_document() {
    let start = Instant::now();
    let description = "Lets the application act on one resource of the calendar on your behalf.";
    let scopes: Vec<Value> = (0..55_000)
        .map(|i| json!({ "name": format!("calendar:resource-{i}:write"), "description": description }))
        .collect();
    // role-i inherits role-(i-1) and permits resource-(25 i); client-i's grant is `resource-i*`.
    let roles: Vec<Value> = (0..2_000)
        .map(|i| {
            json!({ "name": format!("role-{i}"), "description": "A generated role",
                    "inherits": if i == 0 { vec![] } else { vec![format!("role-{}", i - 1)] },
                    "permissions": [ { "audience": "cal", "scope": format!("calendar:resource-{}:write", i * 25) } ] })
        })
        .collect();
    let clients: Vec<Value> = (0..2_000)
        .map(|i| {
            json!({ "client_id": format!("client-{i}"), "kind": "regular_web", "first_party": i % 2 == 0,
                    "grants": [ { "audience": "cal", "subject": "user", "scopes": [format!("calendar:resource-{i}*")] } ] })
        })
        .collect();
    let mut document = json!({
        "apis": [ { "audience": "cal", "rbac": true, "user_access": "require_client_grant", "scopes": scopes } ],
        "roles": roles,
        "clients": clients
    });
    let text = serde_json::to_string_pretty(&document).unwrap();
    assert!(text.len() >= 10_000_000, "the document is {} bytes", text.len());
    let policy = Policy::from_json(&text).expect("the 10 MB document builds");
    elapsed(&format!("10 MB document: build from {} bytes", text.len()), start);

    let start = Instant::now();
    let user = User::new("u").with_role("role-1999");
    let request = Request::new("client-2")
        .audience("cal")
        .scope("calendar:resource-2000:write calendar:resource-2:write calendar:resource-49975:write calendar:resource-55000:write")
        .user(&user);
    assert_eq!(
        decide(&policy, &request),
        granted(
            &["calendar:resource-2000:write"],
            &[
                ("calendar:resource-2:write", NotPermitted),
                ("calendar:resource-49975:write", NotGrantedToClient),
                ("calendar:resource-55000:write", Undefined),
            ]
        ),
        "a first-party client"
    );
    let request = Request::new("client-1975")
        .audience("cal")
        .scope("calendar:resource-1975:write calendar:resource-19750:write calendar:resource-19751:write calendar:resource-2000:write")
        .user(&user);
    assert_eq!(
        decide(&policy, &request),
        consent(
            &["calendar:resource-1975:write", "calendar:resource-19750:write"],
            &[],
            &[
                ("calendar:resource-19751:write", NotPermitted),
                ("calendar:resource-2000:write", NotGrantedToClient)
            ]
        ),
        "a third-party client: the permitted, granted scopes go on the prompt"
    );
    elapsed("10 MB document: 2 decisions", start);

    // One problem at the very end: one report, at its path; nothing is built.
    let start = Instant::now();
    document["clients"][1999]["grants"][0]["scopes"][0] = json!("calendar:resource-1999:read");
    let broken = serde_json::to_string_pretty(&document).unwrap();
    assert_eq!(
        problems(Policy::from_json(&broken)),
        vec![at(
            "clients[1999].grants[0].scopes[0]",
            Problem::UndefinedScope {
                audience: "cal".into(),
                scope: "calendar:resource-1999:read".into(),
            },
        )]
    );
    // A syntax error at the very end.
    let truncated = &text[..text.len() - 1];
    let (path, message) = syntax(Policy::from_json(truncated));
    assert_eq!(path, "");
    assert!(message.starts_with("EOF while parsing an object"), "{message}");
    // A misspelt field: one report, and the rest is still checked.
    let misspelt = text.replacen(
        "\"kind\": \"regular_web\"",
        "\"kind\": \"regular_web\", \"kinf\": 1",
        1,
    );
    // Role 1998 renamed: role 1999 inherits a role no longer there.
    let misspelt = misspelt.replacen("\"role-1998\"", "\"role-1998-renamed\"", 1);
    let problems = problems(Policy::from_json(&misspelt));
    let paths: Vec<&str> = problems.iter().map(|(path, _)| path.as_str()).collect();
    assert_eq!(
        paths,
        ["roles[1999].inherits[0]", "clients[0].kinf"],
        "{problems:?}"
    );
    elapsed("10 MB document: 3 failing loads", start);
}

/// Every single problem fails the whole build: no partial policy, whatever
/// part of an otherwise valid document is wrong.
#[test]
fn nothing_is_half_built() {
    let table: &[(&str, &str, Value, Problem)] = &[
        (
            "an undefined scope in the last client's grant",
            "/clients/3/grants/0/scopes/0",
            json!("write:*"),
            Problem::PatternMatchesNothing {
                audience: EVENTS.into(),
                pattern: "write:*".into(),
            },
        ),
        (
            "an unknown inherited role",
            "/roles/2/inherits/0",
            json!("organiser"),
            Problem::UnknownRole {
                name: "organiser".into(),
            },
        ),
        (
            "an unknown kind",
            "/clients/1/kind",
            json!("web"),
            unknown_value("client kind", "web", "spa regular_web native machine_to_machine"),
        ),
        (
            "a reserved scope",
            "/apis/1/scopes/1/name",
            json!("profile"),
            Problem::ReservedScope {
                name: "profile".into(),
            },
        ),
        (
            "an unknown default audience",
            "/settings",
            json!({ "default_audience": "https://events.example.com/api/" }),
            Problem::UnknownApi {
                audience: "https://events.example.com/api/".into(),
            },
        ),
    ];
    for (about, pointer, value, problem) in table {
        let mut document = fixture();
        match document.pointer_mut(pointer) {
            Some(slot) => *slot = value.clone(),
            None => document["settings"] = value.clone(),
        }
        let path = pointer
            .trim_start_matches('/')
            .split('/')
            .fold(String::new(), |mut path, part| {
                if part.parse::<usize>().is_ok() {
                    path.push_str(&format!("[{part}]"));
                } else {
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(part);
                }
                path
            });
        let path = if *pointer == "/settings" {
            "settings.default_audience".to_owned()
        } else {
            path
        };
        assert_eq!(
            problems(Policy::from_json(&document.to_string())),
            vec![(path, problem.clone())],
            "{about}"
        );
    }
}

// ---------------------------------------------------------------------------
// Consent records
// ---------------------------------------------------------------------------

#[test]
fn consent_records_are_honoured_only_when_they_match_exactly_and_are_current() {
    const ASKED: &str = "openid read:events create:events";
    let all: &[&str] = &["openid", "read:events", "create:events"];
    let everything = || granted(all, &[]);
    let ask_all = || consent(all, &[], &[]);
    let pp = "partner-planner";
    // about, records, now, prompt, outcome
    type Row<'a> = (&'a str, Vec<ConsentRecord>, Option<u64>, Option<&'a str>, Outcome);
    let table: Vec<Row<'_>> = vec![
        ("no record", vec![], Some(NOW), None, ask_all()),
        (
            "a matching record without expiry",
            vec![record("alice", pp, Some(EVENTS), all, None)],
            Some(NOW),
            None,
            everything(),
        ),
        (
            "a matching record without expiry, no now",
            vec![record("alice", pp, Some(EVENTS), all, None)],
            None,
            None,
            everything(),
        ),
        (
            "another user's record",
            vec![record("bob", pp, Some(EVENTS), all, None)],
            Some(NOW),
            None,
            ask_all(),
        ),
        (
            "a user id differing in case",
            vec![record("Alice", pp, Some(EVENTS), all, None)],
            Some(NOW),
            None,
            ask_all(),
        ),
        (
            "another client's record",
            vec![record("alice", "events-web", Some(EVENTS), all, None)],
            Some(NOW),
            None,
            ask_all(),
        ),
        (
            "a client id with a trailing space",
            vec![record("alice", "partner-planner ", Some(EVENTS), all, None)],
            Some(NOW),
            None,
            ask_all(),
        ),
        (
            "another audience's record",
            vec![record("alice", pp, Some(BILLING), all, None)],
            Some(NOW),
            None,
            ask_all(),
        ),
        (
            "a record for no audience",
            vec![record("alice", pp, None, all, None)],
            Some(NOW),
            None,
            ask_all(),
        ),
        (
            "an audience with a trailing slash",
            vec![record(
                "alice",
                pp,
                Some("https://events.example.com/api/"),
                all,
                None,
            )],
            Some(NOW),
            None,
            ask_all(),
        ),
        (
            "expired a second ago",
            vec![record("alice", pp, Some(EVENTS), all, Some(NOW - 1))],
            Some(NOW),
            None,
            ask_all(),
        ),
        (
            "expiring exactly now is not honoured",
            vec![record("alice", pp, Some(EVENTS), all, Some(NOW))],
            Some(NOW),
            None,
            ask_all(),
        ),
        (
            "expiring a second from now is honoured",
            vec![record("alice", pp, Some(EVENTS), all, Some(NOW + 1))],
            Some(NOW),
            None,
            everything(),
        ),
        (
            "an expiry and no now in the request",
            vec![record("alice", pp, Some(EVENTS), all, Some(u64::MAX))],
            None,
            None,
            ask_all(),
        ),
        (
            "expiring at 0, now 0",
            vec![record("alice", pp, Some(EVENTS), all, Some(0))],
            Some(0),
            None,
            ask_all(),
        ),
        (
            "now at u64::MAX",
            vec![record("alice", pp, Some(EVENTS), all, Some(u64::MAX))],
            Some(u64::MAX),
            None,
            ask_all(),
        ),
        (
            "prompt=consent ignores a matching record",
            vec![record("alice", pp, Some(EVENTS), all, None)],
            Some(NOW),
            Some("consent"),
            ask_all(),
        ),
        (
            "records add up; only the uncovered scope is asked",
            vec![
                record("alice", pp, Some(EVENTS), &["openid"], None),
                record("alice", pp, Some(EVENTS), &["read:events"], Some(NOW + 60)),
                record("alice", pp, Some(EVENTS), &["create:events"], Some(NOW)),
            ],
            Some(NOW),
            None,
            consent(&["create:events"], &["openid", "read:events"], &[]),
        ),
        (
            "a record's scopes compare exactly",
            vec![record(
                "alice",
                pp,
                Some(EVENTS),
                &["OpenID", "read:*", "*", "Create:events"],
                None,
            )],
            Some(NOW),
            None,
            ask_all(),
        ),
    ];
    let policy = policy();
    let alice = alice();
    for (about, records, now, prompt, expected) in &table {
        let mut request = Request::new(pp)
            .audience(EVENTS)
            .scope(ASKED)
            .user(&alice)
            .consents(records)
            .maybe_prompt(*prompt);
        if let Some(now) = now {
            request = request.now(*now);
        }
        assert_eq!(&decide(&policy, &request), expected, "{about}");
    }
}

#[test]
fn consent_never_grants_what_the_policy_refuses() {
    let policy = policy();
    let alice = alice();
    let pp = "partner-planner";
    let records = vec![
        record(
            "alice",
            pp,
            Some(EVENTS),
            &[
                "openid",
                "legacy:events",
                "delete:events",
                "read:invoices",
                "Read:events",
                "offline_access",
            ],
            None,
        ),
        record(
            "alice",
            "events-web",
            Some(BILLING),
            &["pay:invoices", "read:invoices"],
            None,
        ),
        record("alice", "events-spa", None, &["offline_access"], None),
    ];
    let table: Vec<(&str, Request<'_>, Outcome)> = vec![
        (
            "a scope that no longer exists, and one RBAC forbids",
            Request::new(pp)
                .audience(EVENTS)
                .scope("openid legacy:events delete:events")
                .user(&alice)
                .consents(&records),
            granted(
                &["openid"],
                &[("legacy:events", Undefined), ("delete:events", NotPermitted)],
            ),
        ),
        (
            "another API's scope consented under this audience",
            Request::new(pp)
                .audience(EVENTS)
                .scope("read:invoices")
                .user(&alice)
                .consents(&records),
            granted(&[], &[("read:invoices", Undefined)]),
        ),
        (
            "a case variant consented",
            Request::new(pp)
                .audience(EVENTS)
                .scope("read:events")
                .user(&alice)
                .consents(&records),
            consent(&["read:events"], &[], &[]),
        ),
        (
            "a scope the client grant lacks",
            Request::new("events-web")
                .audience(BILLING)
                .scope("read:invoices pay:invoices")
                .user(&alice)
                .consents(&records),
            granted(&["read:invoices"], &[("pay:invoices", NotGrantedToClient)]),
        ),
        (
            "offline_access consented by a client without refresh tokens",
            Request::new("events-spa")
                .scope("openid offline_access")
                .user(&alice)
                .consents(&records),
            granted(&["openid"], &[("offline_access", OfflineAccessNotAllowed)]),
        ),
    ];
    for (about, request, expected) in table {
        assert_eq!(decide(&policy, &request), expected, "{about}");
    }
}

#[test]
fn approvals_never_widen_the_prompt() {
    let policy = policy();
    let alice = alice();
    let records = vec![record(
        "alice",
        "partner-planner",
        Some(EVENTS),
        &["openid"],
        Some(NOW + 10),
    )];
    let request = Request::new("partner-planner")
        .audience(EVENTS)
        .scope("openid read:events create:events delete:events")
        .user(&alice)
        .consents(&records)
        .now(NOW);
    let prompt = || policy.grant(&request).unwrap().consent_required().unwrap();
    assert_eq!(
        decide(&policy, &request),
        consent(
            &["read:events", "create:events"],
            &["openid"],
            &[("delete:events", NotPermitted)]
        )
    );

    let not_on_prompt = |scope: &str| {
        Err(GrantError::ApprovalNotOnPrompt {
            scope: scope.to_owned(),
        })
    };
    // about, approved, (granted, new consent record) or the error
    type Row<'a> = (
        &'a str,
        Vec<&'a str>,
        Result<(Vec<String>, Vec<String>), GrantError>,
    );
    let table: Vec<Row<'_>> = vec![
        (
            "a scope refused before the prompt",
            vec!["read:events", "delete:events"],
            not_on_prompt("delete:events"),
        ),
        (
            "a scope granted without the prompt",
            vec!["openid"],
            not_on_prompt("openid"),
        ),
        (
            "a scope never asked",
            vec!["update:events"],
            not_on_prompt("update:events"),
        ),
        (
            "another API's scope",
            vec!["read:invoices"],
            not_on_prompt("read:invoices"),
        ),
        (
            "a case variant",
            vec!["Read:events"],
            not_on_prompt("Read:events"),
        ),
        (
            "a trailing space",
            vec!["read:events "],
            not_on_prompt("read:events "),
        ),
        (
            "two scopes in one string",
            vec!["read:events create:events"],
            not_on_prompt("read:events create:events"),
        ),
        ("a pattern", vec!["*"], not_on_prompt("*")),
        ("the empty string", vec![""], not_on_prompt("")),
        (
            "a NUL byte",
            vec!["read:events\0"],
            not_on_prompt("read:events\0"),
        ),
        (
            "nothing approved",
            vec![],
            Ok((strings(&["openid"]), strings(&["openid"]))),
        ),
        (
            "a subset, repeated",
            vec!["read:events", "read:events"],
            Ok((
                strings(&["openid", "read:events"]),
                strings(&["openid", "read:events"]),
            )),
        ),
        (
            "everything on the prompt",
            vec!["create:events", "read:events"],
            Ok((
                strings(&["openid", "read:events", "create:events"]),
                strings(&["openid", "read:events", "create:events"]),
            )),
        ),
    ];
    for (about, approved, expected) in table {
        let result = prompt().approve(&approved).map(|grant| {
            let record = grant.consent_record().expect("an approval comes with a record");
            assert_eq!(
                (
                    record.user_id.as_str(),
                    record.client_id.as_str(),
                    record.audience.as_deref()
                ),
                ("alice", "partner-planner", Some(EVENTS))
            );
            assert_eq!(
                record.expires_at,
                Some(NOW + 10),
                "the earliest expiry of the record it replaces"
            );
            (
                grant.scopes().map(str::to_owned).collect::<Vec<_>>(),
                record
                    .scopes
                    .iter()
                    .map(|s| s.as_str().to_owned())
                    .collect::<Vec<_>>(),
            )
        });
        if let Err(e) = &result {
            assert_eq!(e.code(), ErrorCode::InvalidRequest, "{about}");
            assert_safe_description(e);
        }
        assert_eq!(result, expected, "{about}");
    }

    // Scopes left on the prompt are denied with consent_denied.
    let grant = prompt().approve(["create:events"]).unwrap();
    assert_eq!(
        grant.denied().collect::<Vec<_>>(),
        [("read:events", ConsentDenied), ("delete:events", NotPermitted)]
    );
    // Denying the prompt refuses the request.
    let denied = prompt().deny();
    assert_eq!(denied, GrantError::ConsentDenied);
    assert_eq!(denied.code(), ErrorCode::AccessDenied);
    assert_safe_description(&denied);
}

// ---------------------------------------------------------------------------
// Clients and flows
// ---------------------------------------------------------------------------

#[test]
fn clients_and_flows() {
    let policy = policy();
    let alice = alice();
    let bob = User::new("bob").with_role("viewer");
    let machine_user = User::new("reporting-bot");
    let partner_records = [record(
        "alice",
        "partner-planner",
        Some(EVENTS),
        &["read:events"],
        None,
    )];
    use Flow::{AuthorizationCode, ClientCredentials, RefreshToken};
    let flow_not_allowed = |client: &str, flow| GrantError::FlowNotAllowed {
        client_id: client.to_owned(),
        flow,
    };
    let table: Vec<(&str, Request<'_>, Outcome, Option<ErrorCode>)> = vec![
        (
            "a machine client in a user flow",
            Request::new("reporting-bot")
                .audience(EVENTS)
                .scope("read:events")
                .user(&alice),
            error(flow_not_allowed("reporting-bot", AuthorizationCode)),
            Some(ErrorCode::UnauthorizedClient),
        ),
        (
            "a machine client in a user flow, as its own user",
            Request::new("reporting-bot").audience(EVENTS).user(&machine_user),
            error(flow_not_allowed("reporting-bot", AuthorizationCode)),
            Some(ErrorCode::UnauthorizedClient),
        ),
        (
            "a machine client in a user flow without a user: the flow check comes first",
            Request::new("reporting-bot").audience(EVENTS),
            error(flow_not_allowed("reporting-bot", AuthorizationCode)),
            Some(ErrorCode::UnauthorizedClient),
        ),
        (
            "a machine client refreshing",
            Request::new("reporting-bot")
                .flow(RefreshToken)
                .audience(EVENTS)
                .original_audience(EVENTS)
                .user(&alice)
                .original_scope("read:events"),
            error(flow_not_allowed("reporting-bot", RefreshToken)),
            Some(ErrorCode::UnauthorizedClient),
        ),
        (
            "client credentials with a user",
            Request::new("reporting-bot")
                .flow(ClientCredentials)
                .audience(EVENTS)
                .user(&alice),
            error(GrantError::UnexpectedUser),
            Some(ErrorCode::InvalidRequest),
        ),
        (
            "client credentials from a user client",
            Request::new("events-web")
                .flow(ClientCredentials)
                .audience(EVENTS),
            error(flow_not_allowed("events-web", ClientCredentials)),
            Some(ErrorCode::UnauthorizedClient),
        ),
        (
            "client credentials: OIDC scopes need a user",
            Request::new("reporting-bot")
                .flow(ClientCredentials)
                .audience(EVENTS)
                .scope("openid offline_access read:events create:events"),
            granted(
                &["read:events"],
                &[
                    ("openid", RequiresUser),
                    ("offline_access", RequiresUser),
                    ("create:events", NotGrantedToClient),
                ],
            ),
            None,
        ),
        (
            "authorization_code without a user",
            Request::new("events-web").audience(EVENTS).scope("openid"),
            error(GrantError::MissingUser {
                flow: AuthorizationCode,
            }),
            Some(ErrorCode::InvalidRequest),
        ),
        (
            "refresh without a user",
            Request::new("events-web")
                .flow(RefreshToken)
                .audience(EVENTS)
                .original_audience(EVENTS)
                .original_scope("openid"),
            error(GrantError::MissingUser { flow: RefreshToken }),
            Some(ErrorCode::InvalidRequest),
        ),
        (
            "refresh without original_scope",
            Request::new("events-web")
                .flow(RefreshToken)
                .audience(EVENTS)
                .original_audience(EVENTS)
                .scope("openid")
                .user(&alice),
            error(GrantError::MissingOriginalScope),
            Some(ErrorCode::InvalidRequest),
        ),
        (
            "refresh widening original_scope",
            Request::new("events-web")
                .flow(RefreshToken)
                .audience(EVENTS)
                .original_audience(EVENTS)
                .scope("openid read:events create:events")
                .user(&alice)
                .original_scope("openid read:events"),
            error(GrantError::ScopeWidened {
                scope: "create:events".into(),
            }),
            Some(ErrorCode::InvalidScope),
        ),
        (
            "refresh widening by a case variant",
            Request::new("events-web")
                .flow(RefreshToken)
                .audience(EVENTS)
                .original_audience(EVENTS)
                .scope("Read:events")
                .user(&alice)
                .original_scope("read:events"),
            error(GrantError::ScopeWidened {
                scope: "Read:events".into(),
            }),
            Some(ErrorCode::InvalidScope),
        ),
        (
            "refresh widening by a pattern",
            Request::new("events-web")
                .flow(RefreshToken)
                .audience(EVENTS)
                .original_audience(EVENTS)
                .scope("read:*")
                .user(&alice)
                .original_scope("read:events"),
            error(GrantError::ScopeWidened {
                scope: "read:*".into(),
            }),
            Some(ErrorCode::InvalidScope),
        ),
        (
            "refresh from an empty original scope",
            Request::new("events-web")
                .flow(RefreshToken)
                .audience(EVENTS)
                .original_audience(EVENTS)
                .scope("openid")
                .user(&alice)
                .original_scope(""),
            error(GrantError::ScopeWidened {
                scope: "openid".into(),
            }),
            Some(ErrorCode::InvalidScope),
        ),
        (
            "refresh with a malformed original scope",
            Request::new("events-web")
                .flow(RefreshToken)
                .audience(EVENTS)
                .original_audience(EVENTS)
                .user(&alice)
                .original_scope("openid\tread:events"),
            error(GrantError::OriginalScope(ScopeError::InvalidByte {
                at: 6,
                byte: 9,
            })),
            Some(ErrorCode::InvalidScope),
        ),
        (
            "refresh: the scope parameter is checked before the original scope",
            Request::new("events-web")
                .flow(RefreshToken)
                .audience(EVENTS)
                .original_audience(EVENTS)
                .scope("\"openid\"")
                .user(&alice)
                .original_scope("openid\t"),
            error(GrantError::Scope(ScopeError::InvalidByte { at: 0, byte: b'"' })),
            Some(ErrorCode::InvalidScope),
        ),
        (
            "refresh narrowing",
            Request::new("events-web")
                .flow(RefreshToken)
                .audience(EVENTS)
                .original_audience(EVENTS)
                .scope("read:events")
                .user(&alice)
                .original_scope("openid read:events create:events"),
            granted(&["read:events"], &[]),
            None,
        ),
        (
            "refresh after the user lost a role: the original scope does not carry it",
            Request::new("events-web")
                .flow(RefreshToken)
                .audience(EVENTS)
                .original_audience(EVENTS)
                .user(&bob)
                .original_scope("openid read:events create:events"),
            granted(&["openid", "read:events"], &[("create:events", NotPermitted)]),
            None,
        ),
        (
            "refresh with a forged original scope: RBAC still applies",
            Request::new("events-web")
                .flow(RefreshToken)
                .audience(EVENTS)
                .original_audience(EVENTS)
                .user(&alice)
                .original_scope("delete:events legacy:events"),
            granted(
                &[],
                &[("delete:events", NotPermitted), ("legacy:events", Undefined)],
            ),
            None,
        ),
        (
            "refresh by a third-party client without records never prompts: consent_missing",
            Request::new("partner-planner")
                .flow(RefreshToken)
                .audience(EVENTS)
                .original_audience(EVENTS)
                .user(&alice)
                .original_scope("openid read:events"),
            granted(
                &[],
                &[("openid", ConsentMissing), ("read:events", ConsentMissing)],
            ),
            None,
        ),
        (
            "refresh by a third-party client keeps what its matching record holds",
            Request::new("partner-planner")
                .flow(RefreshToken)
                .original_audience(EVENTS)
                .user(&alice)
                .consents(&partner_records)
                .original_scope("openid read:events"),
            granted(&["read:events"], &[("openid", ConsentMissing)]),
            None,
        ),
        (
            "refresh naming an audience its grant was not for",
            Request::new("events-web")
                .flow(RefreshToken)
                .audience(BILLING)
                .original_audience(EVENTS)
                .user(&alice)
                .original_scope("openid"),
            error(GrantError::AudienceChanged {
                audience: BILLING.into(),
                original: Some(EVENTS.into()),
            }),
            Some(ErrorCode::InvalidTarget),
        ),
        (
            "refresh naming an audience while its grant had none",
            Request::new("events-web")
                .flow(RefreshToken)
                .audience(EVENTS)
                .user(&alice)
                .original_scope("openid"),
            error(GrantError::AudienceChanged {
                audience: EVENTS.into(),
                original: None,
            }),
            Some(ErrorCode::InvalidTarget),
        ),
        (
            "refresh of a grant for an API the policy no longer has",
            Request::new("events-web")
                .flow(RefreshToken)
                .original_audience("https://gone.example.com/api")
                .user(&alice)
                .original_scope("openid"),
            error(GrantError::UnknownOriginalAudience {
                audience: "https://gone.example.com/api".into(),
            }),
            Some(ErrorCode::InvalidTarget),
        ),
        (
            "offline_access from a client without the refresh_token grant type",
            Request::new("events-spa")
                .audience(EVENTS)
                .scope("openid offline_access")
                .user(&alice),
            granted(&["openid"], &[("offline_access", OfflineAccessNotAllowed)]),
            None,
        ),
        (
            "offline_access from a client without refresh tokens, no audience",
            Request::new("events-spa")
                .scope("offline_access openid")
                .user(&alice),
            granted(&["openid"], &[("offline_access", OfflineAccessNotAllowed)]),
            None,
        ),
        (
            "offline_access for an API that does not allow it",
            Request::new("events-web")
                .audience(BILLING)
                .scope("offline_access read:invoices")
                .user(&alice)
                .consents(&[]),
            consent(
                &["read:invoices"],
                &[],
                &[("offline_access", OfflineAccessNotAllowed)],
            ),
            None,
        ),
        (
            "offline_access where it is allowed",
            Request::new("events-web")
                .audience(EVENTS)
                .scope("openid offline_access")
                .user(&alice),
            granted(&["openid", "offline_access"], &[]),
            None,
        ),
        (
            "an unknown client",
            Request::new("Events-Web").audience(EVENTS).user(&alice),
            error(GrantError::UnknownClient {
                client_id: "Events-Web".into(),
            }),
            Some(ErrorCode::InvalidClient),
        ),
        (
            "an empty client id",
            Request::new("").audience(EVENTS).user(&alice),
            error(GrantError::UnknownClient { client_id: "".into() }),
            Some(ErrorCode::InvalidClient),
        ),
        (
            "a client id with a NUL",
            Request::new("events-web\0").audience(EVENTS).user(&alice),
            error(GrantError::UnknownClient {
                client_id: "events-web\0".into(),
            }),
            Some(ErrorCode::InvalidClient),
        ),
        (
            "a user flow on an API requiring a client grant, without one",
            Request::new("partner-planner")
                .audience(BILLING)
                .scope("read:invoices")
                .user(&alice),
            error(GrantError::ApiAccessDenied {
                client_id: "partner-planner".into(),
                audience: BILLING.into(),
                subject: Subject::User,
            }),
            Some(ErrorCode::AccessDenied),
        ),
        (
            "client credentials for an API without a client grant",
            Request::new("reporting-bot")
                .flow(ClientCredentials)
                .audience(BILLING),
            error(GrantError::ApiAccessDenied {
                client_id: "reporting-bot".into(),
                audience: BILLING.into(),
                subject: Subject::Client,
            }),
            Some(ErrorCode::AccessDenied),
        ),
    ];
    for (about, request, expected, code) in table {
        let outcome = decide(&policy, &request);
        assert_eq!(outcome, expected, "{about}");
        if let Outcome::Error(e) = &outcome {
            assert_eq!(Some(e.code()), code, "{about}");
        }
    }

    // A refresh token is issued exactly when offline_access is granted.
    let request = Request::new("events-web")
        .audience(EVENTS)
        .scope("openid offline_access")
        .user(&alice);
    assert!(policy.grant(&request).unwrap().granted().unwrap().refresh_token());
    let request = Request::new("events-spa")
        .audience(EVENTS)
        .scope("openid offline_access")
        .user(&alice);
    assert!(!policy.grant(&request).unwrap().granted().unwrap().refresh_token());
}

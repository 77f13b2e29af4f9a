//! The seed scenarios (calendar, bank, events, hospital, contacts) as tables:
//! each row a request and what DESIGN.md §3 says it comes to. Public API only.

mod common;

use std::sync::Arc;
use std::thread;

use common::{
    denied, granted, policy, prompt, prompt_scopes, record, record_set, refused, run, scopes, set, user,
    Case, Outcome,
};
use scope_policy::{
    grant, Api, Client, ConsentPrompt, ConsentRecord, Decision, DenyReason, ErrorCode, Flow, Grant,
    GrantError, LoadError, Policy, PolicyDocument, PolicyError, PolicyErrors, Problem, PromptScope, Request,
    Role, Scope, ScopeError, ScopeParam, User, Verdict,
};

use common::Expect::{Error, Grant as Granted, Prompt as Asks};
use scope_policy::DenyReason::{
    ConsentDenied, ConsentMissing, NoAudience, NotGrantedToClient, NotPermitted, OfflineAccessNotAllowed,
    RequiresUser, Undefined,
};

// ---------------------------------------------------------------------------
// Calendar: a third-party app asks the user; a first-party app skips consent.
// ---------------------------------------------------------------------------

const CALENDAR_API: &str = "https://calendar.example.com/api";
/// An API whose owner wants even first-party apps to ask.
const CALENDAR_ADMIN: &str = "https://calendar.example.com/admin";

const CALENDAR: &str = r#"{
  "apis": [
    { "audience": "https://calendar.example.com/api", "name": "Calendar API",
      "scopes": [
        { "name": "read:appointments", "description": "Read your appointments" },
        { "name": "write:appointments", "description": "Create and edit your appointments" }
      ] },
    { "audience": "https://calendar.example.com/admin", "name": "Calendar administration",
      "allow_skipping_consent": false,
      "scopes": [ { "name": "manage:calendars", "description": "Manage shared calendars" } ] }
  ],
  "clients": [
    { "client_id": "calendar-partner", "name": "Partner Scheduler", "first_party": false, "kind": "regular_web" },
    { "client_id": "calendar-web", "name": "Calendar", "first_party": true, "kind": "spa" }
  ]
}"#;

const READ_WRITE: &str = "read:appointments write:appointments";
const BOTH: &[&str] = &["read:appointments", "write:appointments"];

const PARTNER: Case = Case {
    client: "calendar-partner",
    audience: Some(CALENDAR_API),
    scope: Some(READ_WRITE),
    ..Case::BASE
};
const CAL_WEB: Case = Case {
    client: "calendar-web",
    ..PARTNER
};

const CALENDAR_CASES: &[Case] = &[
    Case {
        about: "a third party asking read and write is shown both on the consent prompt",
        expect: Asks(&[], BOTH, &[]),
        ..PARTNER
    },
    Case {
        about: "OIDC scopes go on a third party's prompt beside API scopes",
        scope: Some("openid read:appointments"),
        expect: Asks(&[], &["openid", "read:appointments"], &[]),
        ..PARTNER
    },
    Case {
        about: "remembered consent that covers the request needs no prompt",
        consents: &[("alice", "calendar-partner", Some(CALENDAR_API), BOTH, None)],
        expect: Granted(BOTH, &[]),
        ..PARTNER
    },
    Case {
        about: "incremental consent: only the new scope is on the prompt",
        consents: &[(
            "alice",
            "calendar-partner",
            Some(CALENDAR_API),
            &["read:appointments"],
            None,
        )],
        expect: Asks(&["read:appointments"], &["write:appointments"], &[]),
        ..PARTNER
    },
    Case {
        about: "several matching records together cover the request",
        consents: &[
            (
                "alice",
                "calendar-partner",
                Some(CALENDAR_API),
                &["write:appointments"],
                None,
            ),
            (
                "alice",
                "calendar-partner",
                Some(CALENDAR_API),
                &["read:appointments"],
                None,
            ),
        ],
        expect: Granted(BOTH, &[]),
        ..PARTNER
    },
    Case {
        about: "consent given by another user does not count",
        consents: &[("bob", "calendar-partner", Some(CALENDAR_API), BOTH, None)],
        expect: Asks(&[], BOTH, &[]),
        ..PARTNER
    },
    Case {
        about: "consent given to another client does not count",
        consents: &[("alice", "calendar-web", Some(CALENDAR_API), BOTH, None)],
        expect: Asks(&[], BOTH, &[]),
        ..PARTNER
    },
    Case {
        about: "consent for another API does not count",
        consents: &[("alice", "calendar-partner", Some(CALENDAR_ADMIN), BOTH, None)],
        expect: Asks(&[], BOTH, &[]),
        ..PARTNER
    },
    Case {
        about: "consent for an audience with a trailing slash is for another audience",
        consents: &[(
            "alice",
            "calendar-partner",
            Some("https://calendar.example.com/api/"),
            BOTH,
            None,
        )],
        expect: Asks(&[], BOTH, &[]),
        ..PARTNER
    },
    Case {
        about: "consent recorded without an audience does not cover an API",
        consents: &[("alice", "calendar-partner", None, BOTH, None)],
        expect: Asks(&[], BOTH, &[]),
        ..PARTNER
    },
    Case {
        about: "consent that has not expired yet counts",
        consents: &[("alice", "calendar-partner", Some(CALENDAR_API), BOTH, Some(2_000))],
        now: Some(1_999),
        expect: Granted(BOTH, &[]),
        ..PARTNER
    },
    Case {
        about: "consent expiring at this very second has expired",
        consents: &[("alice", "calendar-partner", Some(CALENDAR_API), BOTH, Some(2_000))],
        now: Some(2_000),
        expect: Asks(&[], BOTH, &[]),
        ..PARTNER
    },
    Case {
        about: "consent with an expiry is not honoured when the request has no time",
        consents: &[(
            "alice",
            "calendar-partner",
            Some(CALENDAR_API),
            BOTH,
            Some(u64::MAX),
        )],
        expect: Asks(&[], BOTH, &[]),
        ..PARTNER
    },
    Case {
        about: "consent without an expiry counts at any time",
        consents: &[("alice", "calendar-partner", Some(CALENDAR_API), BOTH, None)],
        now: Some(u64::MAX),
        expect: Granted(BOTH, &[]),
        ..PARTNER
    },
    Case {
        about: "prompt=consent asks again despite a remembered consent",
        consents: &[("alice", "calendar-partner", Some(CALENDAR_API), BOTH, None)],
        prompt: Some("consent"),
        expect: Asks(&[], BOTH, &[]),
        ..PARTNER
    },
    Case {
        about: "scopes refused by the definitions never reach the prompt",
        scope: Some("read:appointments delete:appointments"),
        expect: Asks(&[], &["read:appointments"], &[("delete:appointments", Undefined)]),
        ..PARTNER
    },
    Case {
        about: "a third party asking only for undefined scopes is not asked anything",
        scope: Some("delete:appointments"),
        expect: Granted(&[], &[("delete:appointments", Undefined)]),
        ..PARTNER
    },
    Case {
        about: "a third party without an audience still asks for OIDC scopes",
        audience: None,
        scope: Some("openid"),
        expect: Asks(&[], &["openid"], &[]),
        ..PARTNER
    },
    Case {
        about: "consent recorded without an audience covers a request without one",
        audience: None,
        scope: Some("openid"),
        consents: &[("alice", "calendar-partner", None, &["openid"], None)],
        expect: Granted(&["openid"], &[]),
        ..PARTNER
    },
    Case {
        about: "the first-party app skips consent",
        expect: Granted(BOTH, &[]),
        ..CAL_WEB
    },
    Case {
        about: "an undefined scope is dropped, the rest granted",
        scope: Some("read:appointments delete:appointments"),
        expect: Granted(&["read:appointments"], &[("delete:appointments", Undefined)]),
        ..CAL_WEB
    },
    Case {
        about: "scope tokens are case-sensitive",
        scope: Some("Read:appointments write:appointments"),
        expect: Granted(&["write:appointments"], &[("Read:appointments", Undefined)]),
        ..CAL_WEB
    },
    Case {
        about: "OIDC scopes pass through beside API scopes for the first-party app",
        scope: Some("openid profile read:appointments"),
        expect: Granted(&["openid", "profile", "read:appointments"], &[]),
        ..CAL_WEB
    },
    Case {
        about: "a first-party app asks when the API does not allow skipping consent",
        audience: Some(CALENDAR_ADMIN),
        scope: Some("openid manage:calendars"),
        expect: Asks(&[], &["openid", "manage:calendars"], &[]),
        ..CAL_WEB
    },
    Case {
        about: "with no audience the first-party app skips consent",
        audience: None,
        scope: Some("openid profile"),
        expect: Granted(&["openid", "profile"], &[]),
        ..CAL_WEB
    },
    Case {
        about: "with no audience an API scope has no API to define it",
        audience: None,
        scope: Some("openid read:appointments"),
        expect: Granted(&["openid"], &[("read:appointments", NoAudience)]),
        ..CAL_WEB
    },
];

#[test]
fn calendar_decisions() {
    run(&policy(CALENDAR), CALENDAR_CASES);
}

#[test]
fn the_consent_prompt_shows_each_scope_with_its_description() {
    let policy = policy(CALENDAR);
    let alice = User::new("alice");
    let request = Request::new("calendar-partner")
        .audience(CALENDAR_API)
        .scope("write:appointments openid read:appointments")
        .user(&alice);
    let prompt = prompt(&policy, &request);
    assert_eq!(prompt.audience(), Some(CALENDAR_API));
    let shown: Vec<PromptScope<'_>> = prompt.scopes().collect();
    let tokens: Vec<&str> = shown.iter().map(PromptScope::scope).collect();
    assert_eq!(
        tokens,
        ["write:appointments", "openid", "read:appointments"],
        "request order"
    );
    assert_eq!(shown[0].description(), "Create and edit your appointments");
    assert_eq!(shown[2].description(), "Read your appointments");
    let openid = shown[1].description();
    assert!(
        !openid.trim().is_empty() && openid != "openid",
        "an OIDC scope is explained to the user, got {openid:?}"
    );
    assert_eq!(prompt.granted().count(), 0);
    assert_eq!(prompt.denied().count(), 0);
}

#[test]
fn approving_everything_grants_as_requested_and_the_new_record_covers_the_next_request() {
    let policy = policy(CALENDAR);
    let alice = User::new("alice");
    let request = Request::new("calendar-partner")
        .audience(CALENDAR_API)
        .scope(READ_WRITE)
        .user(&alice)
        .now(1_000);
    let mut grant = prompt(&policy, &request).approve(BOTH).unwrap();
    assert_eq!(scopes(&grant), BOTH);
    assert_eq!(denied(&grant), []);
    assert!(!grant.scope_changed());
    assert!(!grant.refresh_token());
    assert_eq!(grant.audience(), Some(CALENDAR_API));
    let stored = grant
        .take_consent_record()
        .expect("an approval comes with a consent record");
    assert_eq!(
        stored,
        record("alice", "calendar-partner", Some(CALENDAR_API), BOTH, None),
        "the record is for this user, client and audience, without expiry"
    );

    // The host stores the record; the next identical request needs no prompt.
    let stored = [stored];
    let again = request.consents(&stored);
    assert_eq!(scopes(&granted(&policy, &again)), BOTH);
    // Another user still gets asked.
    let bob = User::new("bob");
    assert_eq!(prompt_scopes(&prompt(&policy, &again.user(&bob))), BOTH);
}

#[test]
fn approving_part_grants_less_than_requested() {
    let policy = policy(CALENDAR);
    let alice = User::new("alice");
    let request = Request::new("calendar-partner")
        .audience(CALENDAR_API)
        .scope(READ_WRITE)
        .user(&alice);
    let grant = prompt(&policy, &request).approve(["read:appointments"]).unwrap();
    assert_eq!(scopes(&grant), ["read:appointments"]);
    assert_eq!(denied(&grant), [("write:appointments", ConsentDenied)]);
    assert_eq!(
        grant.verdicts().collect::<Vec<_>>(),
        [
            ("read:appointments", Verdict::Granted),
            ("write:appointments", Verdict::Denied(ConsentDenied))
        ]
    );
    assert!(grant.is_granted("read:appointments"));
    assert!(!grant.is_granted("write:appointments"));
    assert!(grant.scope_changed(), "the token response must carry `scope`");
    assert_eq!(grant.scope_string(), "read:appointments");
    let stored = grant.consent_record().unwrap();
    assert_eq!(
        record_set(stored),
        ["read:appointments"],
        "refused scopes are not remembered"
    );
}

#[test]
fn approving_nothing_denies_every_prompt_scope_but_keeps_what_was_covered() {
    let policy = policy(CALENDAR);
    let alice = User::new("alice");
    let stored = [record(
        "alice",
        "calendar-partner",
        Some(CALENDAR_API),
        &["read:appointments"],
        None,
    )];
    let request = Request::new("calendar-partner")
        .audience(CALENDAR_API)
        .scope(READ_WRITE)
        .user(&alice)
        .consents(&stored);
    let grant = prompt(&policy, &request).approve(Vec::<String>::new()).unwrap();
    assert_eq!(scopes(&grant), ["read:appointments"]);
    assert_eq!(denied(&grant), [("write:appointments", ConsentDenied)]);
    assert_eq!(record_set(grant.consent_record().unwrap()), ["read:appointments"]);
}

#[test]
fn incremental_consent_accumulates_every_matching_unexpired_record_and_keeps_the_earliest_expiry() {
    let policy = policy(CALENDAR);
    let alice = User::new("alice");
    let stored = [
        record(
            "alice",
            "calendar-partner",
            Some(CALENDAR_API),
            &["read:appointments"],
            None,
        ),
        record(
            "alice",
            "calendar-partner",
            Some(CALENDAR_API),
            &["openid"],
            Some(5_000),
        ),
        // None of these match: expired, another user, another client, no audience, another API.
        record(
            "alice",
            "calendar-partner",
            Some(CALENDAR_API),
            &["email"],
            Some(1_000),
        ),
        record("bob", "calendar-partner", Some(CALENDAR_API), &["profile"], None),
        record("alice", "calendar-web", Some(CALENDAR_API), &["phone"], None),
        record("alice", "calendar-partner", None, &["address"], None),
        record(
            "alice",
            "calendar-partner",
            Some(CALENDAR_ADMIN),
            &["manage:calendars"],
            None,
        ),
    ];
    let request = Request::new("calendar-partner")
        .audience(CALENDAR_API)
        .scope(READ_WRITE)
        .user(&alice)
        .consents(&stored)
        .now(1_000);
    let prompt = prompt(&policy, &request);
    assert_eq!(prompt.granted().collect::<Vec<_>>(), ["read:appointments"]);
    assert_eq!(prompt_scopes(&prompt), ["write:appointments"]);
    let grant = prompt.approve(["write:appointments"]).unwrap();
    assert_eq!(scopes(&grant), BOTH);
    assert!(!grant.scope_changed());
    let new = grant.consent_record().unwrap();
    assert_eq!(
        record_set(new),
        set(&["read:appointments", "openid", "write:appointments"])
    );
    assert_eq!(
        (
            new.user_id.as_str(),
            new.client_id.as_str(),
            new.audience.as_deref(),
            new.expires_at
        ),
        ("alice", "calendar-partner", Some(CALENDAR_API), Some(5_000)),
        "the new record lapses with the earliest matching record it replaces"
    );
    assert!(new.declined.is_empty());
}

#[test]
fn prompt_consent_asks_again_and_unticking_withdraws_what_was_remembered() {
    let policy = policy(CALENDAR);
    let alice = User::new("alice");
    let stored = [record(
        "alice",
        "calendar-partner",
        Some(CALENDAR_API),
        &["read:appointments"],
        None,
    )];
    let request = Request::new("calendar-partner")
        .audience(CALENDAR_API)
        .scope(READ_WRITE)
        .user(&alice)
        .consents(&stored)
        .prompt("consent");
    let prompt = prompt(&policy, &request);
    assert_eq!(prompt_scopes(&prompt), BOTH);
    let grant = prompt.approve(["write:appointments"]).unwrap();
    assert_eq!(scopes(&grant), ["write:appointments"]);
    assert_eq!(denied(&grant), [("read:appointments", ConsentDenied)]);
    let new = grant.consent_record().unwrap();
    assert_eq!(record_set(new), ["write:appointments"], "the latest answer wins");
    let declined: Vec<&str> = new.declined.iter().map(|s| s.as_str()).collect();
    assert_eq!(declined, ["read:appointments"], "and is not asked again");
}

#[test]
fn denying_the_prompt_is_access_denied() {
    let policy = policy(CALENDAR);
    let alice = User::new("alice");
    let request = Request::new("calendar-partner")
        .audience(CALENDAR_API)
        .scope(READ_WRITE)
        .user(&alice);
    let error = prompt(&policy, &request).deny();
    assert_eq!(error, GrantError::ConsentDenied);
    assert_eq!(error.code(), ErrorCode::AccessDenied);
    assert_eq!(error.code().as_str(), "access_denied");
}

/// Approvals a tampered form could send: each names something not on the prompt.
const TAMPERED: &[(&str, &str, &[&str])] = &[
    // about, scope parameter, approval
    (
        "a scope that was never requested",
        "read:appointments",
        &["write:appointments"],
    ),
    ("a scope of another API", READ_WRITE, &["manage:calendars"]),
    (
        "a requested scope the API does not define",
        "read:appointments delete:appointments",
        &["delete:appointments"],
    ),
    (
        "a case variant of a prompt scope",
        READ_WRITE,
        &["Write:appointments"],
    ),
    (
        "a prompt scope with a trailing space",
        READ_WRITE,
        &["write:appointments "],
    ),
    (
        "two prompt scopes in one string",
        READ_WRITE,
        &["read:appointments write:appointments"],
    ),
    ("a pattern", READ_WRITE, &["*"]),
    ("an empty string", READ_WRITE, &[""]),
    (
        "a valid approval followed by a tampered one",
        READ_WRITE,
        &["read:appointments", "admin:appointments"],
    ),
];

#[test]
fn a_tampered_approval_is_invalid_request_and_never_widens_the_grant() {
    let policy = policy(CALENDAR);
    let alice = User::new("alice");
    for (about, raw, approval) in TAMPERED {
        let request = Request::new("calendar-partner")
            .audience(CALENDAR_API)
            .scope(raw)
            .user(&alice);
        let result = prompt(&policy, &request).approve(*approval);
        match result {
            Err(error) => {
                assert!(
                    matches!(error, GrantError::ApprovalNotOnPrompt { .. }),
                    "{about}: {error:?}"
                );
                assert_eq!(error.code(), ErrorCode::InvalidRequest, "{about}");
            }
            Ok(grant) => panic!("{about}: approved, granting {:?}", scopes(&grant)),
        }
    }
}

#[test]
fn approving_a_scope_already_covered_by_consent_is_refused() {
    // The engine's rule: an approval names prompt scopes only, even one granted without asking.
    let policy = policy(CALENDAR);
    let alice = User::new("alice");
    let stored = [record(
        "alice",
        "calendar-partner",
        Some(CALENDAR_API),
        &["read:appointments"],
        None,
    )];
    let request = Request::new("calendar-partner")
        .audience(CALENDAR_API)
        .scope(READ_WRITE)
        .user(&alice)
        .consents(&stored);
    let error = prompt(&policy, &request).approve(BOTH).unwrap_err();
    assert_eq!(error.code(), ErrorCode::InvalidRequest);
}

// ---------------------------------------------------------------------------
// Bank: a third-party payment application.
// ---------------------------------------------------------------------------

const BANK_API: &str = "https://bank.example.com/api";

const BANK: &str = r#"{
  "apis": [
    { "audience": "https://bank.example.com/api", "name": "Bank API",
      "scopes": [
        { "name": "read:balance", "description": "Read your account balance" },
        { "name": "transfer:funds", "description": "Transfer funds from your account" }
      ] }
  ],
  "clients": [
    { "client_id": "payments-app", "name": "Online Payments", "first_party": false, "kind": "regular_web" }
  ]
}"#;

const PAYMENTS: Case = Case {
    client: "payments-app",
    audience: Some(BANK_API),
    scope: Some("read:balance transfer:funds"),
    ..Case::BASE
};
/// A refresh by the third-party payments app, whose record holds both scopes.
const REFRESH: Case = Case {
    flow: Flow::RefreshToken,
    original_audience: PAYMENTS.audience,
    scope: None,
    original_scope: Some("read:balance transfer:funds"),
    consents: &[("alice", "payments-app", Some(BANK_API), BANK_BOTH, None)],
    ..PAYMENTS
};
const BANK_BOTH: &[&str] = &["read:balance", "transfer:funds"];

const BANK_CASES: &[Case] = &[
    Case {
        about: "balance and transfer both need the user's consent",
        expect: Asks(&[], BANK_BOTH, &[]),
        ..PAYMENTS
    },
    Case {
        about: "balance only puts balance alone on the prompt",
        scope: Some("read:balance"),
        expect: Asks(&[], &["read:balance"], &[]),
        ..PAYMENTS
    },
    Case {
        about: "remembered consent for the balance covers a balance-only request",
        scope: Some("read:balance"),
        consents: &[("alice", "payments-app", Some(BANK_API), &["read:balance"], None)],
        expect: Granted(&["read:balance"], &[]),
        ..PAYMENTS
    },
    Case {
        about: "consent given by another user does not count",
        consents: &[("bob", "payments-app", Some(BANK_API), BANK_BOTH, None)],
        expect: Asks(&[], BANK_BOTH, &[]),
        ..PAYMENTS
    },
    Case {
        about: "prompt=consent asks again despite a remembered consent",
        consents: &[("alice", "payments-app", Some(BANK_API), BANK_BOTH, None)],
        prompt: Some("consent"),
        expect: Asks(&[], BANK_BOTH, &[]),
        ..PAYMENTS
    },
    Case {
        about: "offline_access is refused before the prompt by an API without offline access",
        scope: Some("read:balance offline_access"),
        expect: Asks(
            &[],
            &["read:balance"],
            &[("offline_access", OfflineAccessNotAllowed)],
        ),
        ..PAYMENTS
    },
    Case {
        about: "a refresh asks no consent and, with no scope, keeps what the record still holds",
        expect: Granted(BANK_BOTH, &[]),
        ..REFRESH
    },
    Case {
        about: "a refresh after the user withdrew transfers loses them: consent_missing",
        consents: &[("alice", "payments-app", Some(BANK_API), &["read:balance"], None)],
        expect: Granted(&["read:balance"], &[("transfer:funds", ConsentMissing)]),
        ..REFRESH
    },
    Case {
        about: "a refresh whose record expired keeps nothing",
        consents: &[("alice", "payments-app", Some(BANK_API), BANK_BOTH, Some(100))],
        now: Some(100),
        expect: Granted(
            &[],
            &[
                ("read:balance", ConsentMissing),
                ("transfer:funds", ConsentMissing),
            ],
        ),
        ..REFRESH
    },
    Case {
        about: "a refresh with only another client's record keeps nothing",
        consents: &[("alice", "other-app", Some(BANK_API), BANK_BOTH, None)],
        expect: Granted(
            &[],
            &[
                ("read:balance", ConsentMissing),
                ("transfer:funds", ConsentMissing),
            ],
        ),
        ..REFRESH
    },
    Case {
        about: "a refresh may narrow the original scope",
        scope: Some("read:balance"),
        expect: Granted(&["read:balance"], &[]),
        ..REFRESH
    },
    Case {
        about: "a refresh may not widen the original scope",
        scope: Some("read:balance transfer:funds"),
        original_scope: Some("read:balance"),
        expect: Error(ErrorCode::InvalidScope),
        ..REFRESH
    },
    Case {
        about: "a refresh keeps refusing offline_access the API does not allow",
        original_scope: Some("read:balance offline_access"),
        expect: Granted(&["read:balance"], &[("offline_access", OfflineAccessNotAllowed)]),
        ..REFRESH
    },
    Case {
        about: "a refresh without the original scope is invalid_request",
        original_scope: None,
        expect: Error(ErrorCode::InvalidRequest),
        ..REFRESH
    },
    Case {
        about: "a refresh with a malformed original scope is invalid_scope",
        original_scope: Some("read:balance\ttransfer:funds"),
        expect: Error(ErrorCode::InvalidScope),
        ..REFRESH
    },
    Case {
        about: "a refresh without a user is invalid_request",
        user: None,
        expect: Error(ErrorCode::InvalidRequest),
        ..REFRESH
    },
];

#[test]
fn bank_decisions() {
    run(&policy(BANK), BANK_CASES);
}

#[test]
fn the_user_grants_the_balance_but_not_transfers() {
    let policy = policy(BANK);
    let alice = User::new("alice");
    let request = Request::new("payments-app")
        .audience(BANK_API)
        .scope("read:balance transfer:funds offline_access")
        .user(&alice);
    let prompt = prompt(&policy, &request);
    let shown: Vec<(&str, &str)> = prompt.scopes().map(|s| (s.scope(), s.description())).collect();
    assert_eq!(
        shown,
        [
            ("read:balance", "Read your account balance"),
            ("transfer:funds", "Transfer funds from your account")
        ]
    );
    let grant = prompt.approve(["read:balance"]).unwrap();
    assert_eq!(scopes(&grant), ["read:balance"]);
    assert_eq!(
        denied(&grant),
        [
            ("transfer:funds", ConsentDenied),
            ("offline_access", OfflineAccessNotAllowed)
        ]
    );
    assert_eq!(grant.scope_string(), "read:balance");
    assert!(grant.scope_changed());
    assert!(!grant.refresh_token());
    assert_eq!(record_set(grant.consent_record().unwrap()), ["read:balance"]);
}

#[test]
fn a_refused_scope_cannot_be_approved_back_in() {
    let policy = policy(BANK);
    let alice = User::new("alice");
    let request = Request::new("payments-app")
        .audience(BANK_API)
        .scope("read:balance offline_access")
        .user(&alice);
    let error = prompt(&policy, &request)
        .approve(["read:balance", "offline_access"])
        .unwrap_err();
    assert_eq!(error.code(), ErrorCode::InvalidRequest);
}

#[test]
fn a_refresh_never_grants_beyond_the_original_scope() {
    let policy = policy(BANK);
    let alice = User::new("alice");
    for (original, raw) in [
        ("read:balance", "transfer:funds"),
        ("read:balance", "read:balance transfer:funds"),
        ("read:balance", "offline_access"),
        ("", "read:balance"),
        ("read:balance", "Read:balance"),
    ] {
        let request = Request::new("payments-app")
            .flow(Flow::RefreshToken)
            .audience(BANK_API)
            .original_audience(BANK_API)
            .scope(raw)
            .original_scope(original)
            .user(&alice);
        let error = refused(&policy, &request);
        assert!(
            matches!(error, GrantError::ScopeWidened { .. }),
            "{raw:?} over {original:?}: {error:?}"
        );
        assert_eq!(error.code(), ErrorCode::InvalidScope);
    }
}

// ---------------------------------------------------------------------------
// Events: role-based access, a first-party app (consent skipped), inheritance.
// ---------------------------------------------------------------------------

const EVENTS_API: &str = "https://events.example.com/api";

const EVENTS: &str = r#"{
  "apis": [
    { "audience": "https://events.example.com/api", "name": "Events API",
      "rbac": true, "allow_skipping_consent": true,
      "default_scopes": ["view:events", "create:events"],
      "scopes": [
        { "name": "create:events", "description": "Create events" },
        { "name": "update:events", "description": "Update events" },
        { "name": "view:events", "description": "View events" },
        { "name": "register:events", "description": "Register for events" }
      ] }
  ],
  "roles": [
    { "name": "organizer", "description": "Creates and updates events",
      "permissions": [
        { "audience": "https://events.example.com/api", "scope": "create:events" },
        { "audience": "https://events.example.com/api", "scope": "update:events" } ] },
    { "name": "participant", "description": "Views and registers for events",
      "permissions": [
        { "audience": "https://events.example.com/api", "scope": "view:events" },
        { "audience": "https://events.example.com/api", "scope": "register:events" } ] },
    { "name": "host", "description": "Organizes and takes part", "inherits": ["organizer", "participant"] },
    { "name": "chief", "description": "Heads the hosts", "inherits": ["host"] },
    { "name": "reviewer", "description": "Looks at events",
      "permissions": [ { "audience": "https://events.example.com/api", "scope": "view:*" } ] },
    { "name": "steward", "description": "Reviews and registers", "inherits": ["reviewer"],
      "permissions": [ { "audience": "https://events.example.com/api", "scope": "reg*" } ] }
  ],
  "clients": [
    { "client_id": "events-app", "name": "Events", "first_party": true, "kind": "regular_web" },
    { "client_id": "partner-planner", "name": "Partner Planner", "first_party": false, "kind": "regular_web" }
  ]
}"#;

const ALL_FOUR: &str = "create:events update:events view:events register:events";

const EVENTS_APP: Case = Case {
    client: "events-app",
    audience: Some(EVENTS_API),
    scope: Some(ALL_FOUR),
    ..Case::BASE
};

const EVENTS_CASES: &[Case] = &[
    Case {
        about: "an organizer asks for all four and gets the organizer scopes, without a prompt",
        roles: &["organizer"],
        expect: Granted(
            &["create:events", "update:events"],
            &[("view:events", NotPermitted), ("register:events", NotPermitted)],
        ),
        ..EVENTS_APP
    },
    Case {
        about: "a participant gets the participant scopes",
        roles: &["participant"],
        expect: Granted(
            &["view:events", "register:events"],
            &[("create:events", NotPermitted), ("update:events", NotPermitted)],
        ),
        ..EVENTS_APP
    },
    Case {
        about: "a user with both roles gets all four",
        roles: &["participant", "organizer"],
        expect: Granted(
            &["create:events", "update:events", "view:events", "register:events"],
            &[],
        ),
        ..EVENTS_APP
    },
    Case {
        about: "a user with no role gets no API scope",
        expect: Granted(
            &[],
            &[
                ("create:events", NotPermitted),
                ("update:events", NotPermitted),
                ("view:events", NotPermitted),
                ("register:events", NotPermitted),
            ],
        ),
        ..EVENTS_APP
    },
    Case {
        about: "a role the policy does not know grants nothing",
        roles: &["superuser"],
        scope: Some("create:events"),
        expect: Granted(&[], &[("create:events", NotPermitted)]),
        ..EVENTS_APP
    },
    Case {
        about: "role names are case-sensitive",
        roles: &["Organizer"],
        scope: Some("create:events"),
        expect: Granted(&[], &[("create:events", NotPermitted)]),
        ..EVENTS_APP
    },
    Case {
        about: "a role inheriting two roles has both roles' scopes",
        roles: &["host"],
        expect: Granted(
            &["create:events", "update:events", "view:events", "register:events"],
            &[],
        ),
        ..EVENTS_APP
    },
    Case {
        about: "inheritance is transitive",
        roles: &["chief"],
        expect: Granted(
            &["create:events", "update:events", "view:events", "register:events"],
            &[],
        ),
        ..EVENTS_APP
    },
    Case {
        about: "inheritance runs one way: an inherited role does not get the heir's scopes",
        roles: &["reviewer"],
        expect: Granted(
            &["view:events"],
            &[
                ("create:events", NotPermitted),
                ("update:events", NotPermitted),
                ("register:events", NotPermitted),
            ],
        ),
        ..EVENTS_APP
    },
    Case {
        about: "own pattern permissions and inherited ones add up",
        roles: &["steward"],
        expect: Granted(
            &["view:events", "register:events"],
            &[("create:events", NotPermitted), ("update:events", NotPermitted)],
        ),
        ..EVENTS_APP
    },
    Case {
        about: "a direct user permission counts like a role's",
        permissions: &[(EVENTS_API, "view:events")],
        scope: Some("view:events create:events"),
        expect: Granted(&["view:events"], &[("create:events", NotPermitted)]),
        ..EVENTS_APP
    },
    Case {
        about: "a direct permission for another audience does not count",
        permissions: &[("https://events.example.com/api/", "view:events")],
        scope: Some("view:events"),
        expect: Granted(&[], &[("view:events", NotPermitted)]),
        ..EVENTS_APP
    },
    Case {
        about: "a direct permission is an exact scope, never a pattern",
        permissions: &[(EVENTS_API, "view:*")],
        scope: Some("view:events"),
        expect: Granted(&[], &[("view:events", NotPermitted)]),
        ..EVENTS_APP
    },
    Case {
        about: "a pattern in a request is an undefined token, not a wildcard",
        roles: &["chief"],
        scope: Some("view:* *"),
        expect: Granted(&[], &[("view:*", Undefined), ("*", Undefined)]),
        ..EVENTS_APP
    },
    Case {
        about: "OIDC scopes are not limited by roles",
        scope: Some("openid profile create:events"),
        expect: Granted(&["openid", "profile"], &[("create:events", NotPermitted)]),
        ..EVENTS_APP
    },
    Case {
        about: "undefined comes before not_permitted",
        scope: Some("delete:events"),
        expect: Granted(&[], &[("delete:events", Undefined)]),
        ..EVENTS_APP
    },
    Case {
        about: "no scope asks for the API's default scopes, in definition order",
        roles: &["participant"],
        scope: None,
        expect: Granted(&["view:events"], &[("create:events", NotPermitted)]),
        ..EVENTS_APP
    },
    Case {
        about: "a refresh checks the roles again: a participant no longer organizes",
        flow: Flow::RefreshToken,
        original_audience: EVENTS_APP.audience,
        roles: &["participant"],
        scope: None,
        original_scope: Some("create:events view:events"),
        expect: Granted(&["view:events"], &[("create:events", NotPermitted)]),
        ..EVENTS_APP
    },
    Case {
        about: "a third party never gets on the prompt what the roles refuse",
        client: "partner-planner",
        roles: &["organizer"],
        scope: Some("openid create:events view:events"),
        expect: Asks(
            &[],
            &["openid", "create:events"],
            &[("view:events", NotPermitted)],
        ),
        ..EVENTS_APP
    },
    Case {
        about: "remembered consent cannot grant what the roles refuse",
        client: "partner-planner",
        roles: &["organizer"],
        scope: Some("create:events view:events"),
        consents: &[(
            "alice",
            "partner-planner",
            Some(EVENTS_API),
            &["create:events", "view:events"],
            None,
        )],
        expect: Granted(&["create:events"], &[("view:events", NotPermitted)]),
        ..EVENTS_APP
    },
];

#[test]
fn events_decisions() {
    run(&policy(EVENTS), EVENTS_CASES);
}

#[test]
fn third_party_remembered_consent_covers_part_and_the_user_declines_the_rest() {
    // DESIGN.md §5's example case.
    let policy = policy(EVENTS);
    let alice = user("user-a", &["organizer"]);
    let stored = [record(
        "user-a",
        "partner-planner",
        Some(EVENTS_API),
        &["openid", "create:events"],
        None,
    )];
    let request = Request::new("partner-planner")
        .audience(EVENTS_API)
        .scope("openid create:events update:events view:events")
        .user(&alice)
        .consents(&stored);
    let prompt = prompt(&policy, &request);
    assert_eq!(prompt_scopes(&prompt), ["update:events"]);
    assert_eq!(prompt.granted().collect::<Vec<_>>(), ["openid", "create:events"]);
    assert_eq!(
        prompt.denied().collect::<Vec<_>>(),
        [("view:events", NotPermitted)]
    );
    let grant = prompt.approve(Vec::<&str>::new()).unwrap();
    assert_eq!(scopes(&grant), ["openid", "create:events"]);
    assert_eq!(
        denied(&grant),
        [("update:events", ConsentDenied), ("view:events", NotPermitted)]
    );
    assert_eq!(
        record_set(grant.consent_record().unwrap()),
        set(&["openid", "create:events"])
    );
    assert!(grant.scope_changed());
    assert!(!grant.refresh_token());
}

#[test]
fn default_scopes_granted_without_a_scope_parameter_are_reported() {
    let policy = policy(EVENTS);
    let bob = user("bob", &["organizer", "participant"]);
    let grant = granted(
        &policy,
        &Request::new("events-app").audience(EVENTS_API).user(&bob),
    );
    assert_eq!(
        grant.scope_string(),
        "create:events view:events",
        "definition order"
    );
    assert!(
        grant.scope_changed(),
        "nothing was requested, so the response must say what was granted"
    );
}

#[test]
fn the_policy_exposes_resolved_roles() {
    let policy = policy(EVENTS);
    let api: &Api = policy.api(EVENTS_API).unwrap();
    let chief: &Role = policy.role("chief").unwrap();
    assert_eq!(chief.inherits().collect::<Vec<_>>(), ["host"]);
    for scope in ["create:events", "update:events", "view:events", "register:events"] {
        assert!(chief.permits(api, scope), "chief inherits {scope}");
    }
    let steward = policy.role("steward").unwrap();
    assert!(steward.permits(api, "view:events") && steward.permits(api, "register:events"));
    assert!(!steward.permits(api, "create:events"));
    assert!(
        !steward.permits(api, "view:*"),
        "a pattern is resolved, not kept as a scope"
    );
    assert_eq!(
        api.default_scopes().map(Scope::as_str).collect::<Vec<_>>(),
        ["create:events", "view:events"],
        "default scopes come out in definition order"
    );
}

// ---------------------------------------------------------------------------
// Hospital: a back-end service with client credentials (no user, no consent).
// ---------------------------------------------------------------------------

const IMAGING: &str = "https://imaging.hospital.example/api";
/// Closed to every client, for user and client tokens alike.
const PACS: &str = "https://pacs.hospital.example/api";
/// Open to user tokens only for clients with a `subject: user` grant.
const RECORDS: &str = "https://records.hospital.example/api";

const HOSPITAL: &str = r#"{
  "apis": [
    { "audience": "https://imaging.hospital.example/api", "name": "Imaging API",
      "scopes": [
        { "name": "read:images", "description": "Read imaging data" },
        { "name": "delete:images", "description": "Delete imaging data" },
        { "name": "write:images", "description": "Store imaging data" }
      ] },
    { "audience": "https://pacs.hospital.example/api", "name": "PACS",
      "user_access": "deny_all", "client_access": "deny_all",
      "scopes": [ { "name": "read:studies", "description": "Read studies" } ] },
    { "audience": "https://records.hospital.example/api", "name": "Records",
      "user_access": "require_client_grant",
      "scopes": [
        { "name": "read:records", "description": "Read patient records" },
        { "name": "read:notes", "description": "Read clinical notes" },
        { "name": "write:records", "description": "Edit patient records" }
      ] }
  ],
  "clients": [
    { "client_id": "cold-storage-sync", "name": "Nightly archive", "kind": "machine_to_machine",
      "grants": [
        { "audience": "https://imaging.hospital.example/api", "subject": "client",
          "scopes": ["delete:images", "read:images"] },
        { "audience": "https://pacs.hospital.example/api", "subject": "client", "scopes": ["*"] } ] },
    { "client_id": "report-bot", "name": "Reports", "kind": "machine_to_machine" },
    { "client_id": "lab-bridge", "name": "Lab bridge", "kind": "machine_to_machine",
      "grants": [ { "audience": "https://imaging.hospital.example/api", "subject": "user", "scopes": ["*"] } ] },
    { "client_id": "radiology-web", "name": "Radiology", "first_party": true, "kind": "regular_web",
      "grants": [
        { "audience": "https://records.hospital.example/api", "subject": "user", "scopes": ["read:*"] },
        { "audience": "https://imaging.hospital.example/api", "subject": "user", "scopes": ["read:images"] } ] },
    { "client_id": "patient-portal", "name": "Patient portal", "first_party": true, "kind": "spa" }
  ]
}"#;

const ARCHIVE: Case = Case {
    client: "cold-storage-sync",
    flow: Flow::ClientCredentials,
    audience: Some(IMAGING),
    user: None,
    ..Case::BASE
};
const RADIOLOGY: Case = Case {
    client: "radiology-web",
    audience: Some(RECORDS),
    ..Case::BASE
};

const HOSPITAL_CASES: &[Case] = &[
    Case {
        about: "the archive service gets read and delete",
        scope: Some("read:images delete:images"),
        expect: Granted(&["read:images", "delete:images"], &[]),
        ..ARCHIVE
    },
    Case {
        about: "no scope asked: the whole client grant, in definition order",
        expect: Granted(&["read:images", "delete:images"], &[]),
        ..ARCHIVE
    },
    Case {
        about: "a scope outside its client grant is not_granted_to_client",
        scope: Some("read:images write:images"),
        expect: Granted(&["read:images"], &[("write:images", NotGrantedToClient)]),
        ..ARCHIVE
    },
    Case {
        about: "an undefined scope is undefined before the client grant is consulted",
        scope: Some("purge:images"),
        expect: Granted(&[], &[("purge:images", Undefined)]),
        ..ARCHIVE
    },
    Case {
        about: "a pattern in a request is an undefined token, not the whole grant",
        scope: Some("read:*"),
        expect: Granted(&[], &[("read:*", Undefined)]),
        ..ARCHIVE
    },
    Case {
        about: "OIDC scopes need a user",
        scope: Some("openid read:images profile"),
        expect: Granted(
            &["read:images"],
            &[("openid", RequiresUser), ("profile", RequiresUser)],
        ),
        ..ARCHIVE
    },
    Case {
        about: "offline_access needs a user before anything else",
        scope: Some("offline_access"),
        expect: Granted(&[], &[("offline_access", RequiresUser)]),
        ..ARCHIVE
    },
    Case {
        about: "client_access deny_all refuses even a client with a grant",
        audience: Some(PACS),
        scope: Some("read:studies"),
        expect: Error(ErrorCode::AccessDenied),
        ..ARCHIVE
    },
    Case {
        about: "client credentials without an audience are invalid_request",
        audience: None,
        scope: Some("read:images"),
        expect: Error(ErrorCode::InvalidRequest),
        ..ARCHIVE
    },
    Case {
        about: "an unknown audience is invalid_target, and audiences compare exactly",
        audience: Some("https://imaging.hospital.example/api/"),
        expect: Error(ErrorCode::InvalidTarget),
        ..ARCHIVE
    },
    Case {
        about: "a machine client with no grant for this API is access_denied",
        client: "report-bot",
        expect: Error(ErrorCode::AccessDenied),
        ..ARCHIVE
    },
    Case {
        about: "a subject: user grant does not admit client credentials",
        client: "lab-bridge",
        expect: Error(ErrorCode::AccessDenied),
        ..ARCHIVE
    },
    Case {
        about: "a web app may not use client credentials",
        client: "radiology-web",
        expect: Error(ErrorCode::UnauthorizedClient),
        ..ARCHIVE
    },
    Case {
        about: "client credentials carrying a user are invalid_request",
        user: Some("alice"),
        expect: Error(ErrorCode::InvalidRequest),
        ..ARCHIVE
    },
    Case {
        about: "an unknown client is invalid_client",
        client: "cold-storage",
        expect: Error(ErrorCode::InvalidClient),
        ..ARCHIVE
    },
    Case {
        about: "a machine client may not use a user flow",
        flow: Flow::AuthorizationCode,
        user: Some("alice"),
        expect: Error(ErrorCode::UnauthorizedClient),
        ..ARCHIVE
    },
    Case {
        about: "under require_client_grant the user grant restricts the scopes",
        scope: Some("read:records write:records read:notes"),
        expect: Granted(
            &["read:records", "read:notes"],
            &[("write:records", NotGrantedToClient)],
        ),
        ..RADIOLOGY
    },
    Case {
        about: "under require_client_grant a client without a user grant is access_denied",
        client: "patient-portal",
        scope: Some("read:records"),
        expect: Error(ErrorCode::AccessDenied),
        ..RADIOLOGY
    },
    Case {
        about: "user_access deny_all refuses every user flow",
        audience: Some(PACS),
        scope: Some("read:studies"),
        expect: Error(ErrorCode::AccessDenied),
        ..RADIOLOGY
    },
    Case {
        about: "under allow_all a user grant does not restrict the scopes",
        audience: Some(IMAGING),
        scope: Some("read:images write:images"),
        expect: Granted(&["read:images", "write:images"], &[]),
        ..RADIOLOGY
    },
    Case {
        about: "under allow_all a client without any grant gets user tokens",
        client: "patient-portal",
        audience: Some(IMAGING),
        scope: Some("write:images"),
        expect: Granted(&["write:images"], &[]),
        ..RADIOLOGY
    },
];

#[test]
fn hospital_decisions() {
    run(&policy(HOSPITAL), HOSPITAL_CASES);
}

#[test]
fn client_credentials_without_a_scope_get_the_whole_grant_and_report_the_scope() {
    let policy = policy(HOSPITAL);
    let request = Request::new("cold-storage-sync")
        .flow(Flow::ClientCredentials)
        .audience(IMAGING);
    let grant = granted(&policy, &request);
    assert_eq!(grant.scope_string(), "read:images delete:images");
    assert_eq!(grant.audience(), Some(IMAGING));
    assert!(
        grant.scope_changed(),
        "nothing was requested, so the response must say what was granted"
    );
    assert!(!grant.refresh_token());
    assert!(grant.consent_record().is_none(), "client credentials never ask");

    let named = granted(
        &policy,
        &Request::new("cold-storage-sync")
            .flow(Flow::ClientCredentials)
            .audience(IMAGING)
            .scope("read:images"),
    );
    assert!(!named.scope_changed());
}

#[test]
fn client_credentials_never_ask_for_consent_even_with_prompt_consent() {
    let policy = policy(HOSPITAL);
    let request = Request::new("cold-storage-sync")
        .flow(Flow::ClientCredentials)
        .audience(IMAGING)
        .scope("read:images")
        .prompt("consent");
    assert_eq!(scopes(&granted(&policy, &request)), ["read:images"]);
}

// ---------------------------------------------------------------------------
// Contacts: OIDC and API scopes in one request; offline access.
// ---------------------------------------------------------------------------

const CONTACTS_API: &str = "https://contacts.example.com/api";

const CONTACTS: &str = r#"{
  "apis": [
    { "audience": "https://contacts.example.com/api", "name": "Contacts API",
      "allow_offline_access": true,
      "scopes": [
        { "name": "read:contacts", "description": "Read your contacts" },
        { "name": "delete:contacts", "description": "Delete your contacts" }
      ] }
  ],
  "clients": [
    { "client_id": "contacts-spa", "name": "Contacts", "first_party": true, "kind": "spa" },
    { "client_id": "contacts-kiosk", "name": "Contacts kiosk", "first_party": true, "kind": "native",
      "grant_types": ["authorization_code"] }
  ]
}"#;

const SPA: Case = Case {
    client: "contacts-spa",
    audience: Some(CONTACTS_API),
    scope: Some("openid profile email read:contacts"),
    ..Case::BASE
};

const CONTACTS_CASES: &[Case] = &[
    Case {
        about: "openid profile email read:contacts with the audience are all granted",
        expect: Granted(&["openid", "profile", "email", "read:contacts"], &[]),
        ..SPA
    },
    Case {
        about: "offline_access is granted when the API and the client allow it",
        scope: Some("openid offline_access read:contacts"),
        expect: Granted(&["openid", "offline_access", "read:contacts"], &[]),
        ..SPA
    },
    Case {
        about: "without an audience only the OIDC scopes remain",
        audience: None,
        expect: Granted(&["openid", "profile", "email"], &[("read:contacts", NoAudience)]),
        ..SPA
    },
    Case {
        about: "scope tokens are case-sensitive",
        scope: Some("openid READ:contacts OpenID"),
        expect: Granted(
            &["openid"],
            &[("READ:contacts", Undefined), ("OpenID", Undefined)],
        ),
        ..SPA
    },
    Case {
        about: "a repeated token counts once, at its first position",
        scope: Some("read:contacts openid read:contacts openid"),
        expect: Granted(&["read:contacts", "openid"], &[]),
        ..SPA
    },
    Case {
        about: "runs of spaces and leading or trailing spaces are tolerated",
        scope: Some("   openid    read:contacts  "),
        expect: Granted(&["openid", "read:contacts"], &[]),
        ..SPA
    },
    Case {
        about: "a tab inside the scope parameter is invalid_scope",
        scope: Some("openid\tread:contacts"),
        expect: Error(ErrorCode::InvalidScope),
        ..SPA
    },
    Case {
        about: "a user flow without a user is invalid_request",
        user: None,
        expect: Error(ErrorCode::InvalidRequest),
        ..SPA
    },
    Case {
        about: "a client without the refresh_token grant type gets no offline_access",
        client: "contacts-kiosk",
        scope: Some("openid offline_access read:contacts"),
        expect: Granted(
            &["openid", "read:contacts"],
            &[("offline_access", OfflineAccessNotAllowed)],
        ),
        ..SPA
    },
    Case {
        about: "without an audience offline_access depends on the client alone",
        audience: None,
        scope: Some("openid offline_access"),
        expect: Granted(&["openid", "offline_access"], &[]),
        ..SPA
    },
    Case {
        about: "without an audience the kiosk still gets no offline_access",
        client: "contacts-kiosk",
        audience: None,
        scope: Some("openid offline_access"),
        expect: Granted(&["openid"], &[("offline_access", OfflineAccessNotAllowed)]),
        ..SPA
    },
    Case {
        about: "a client without the refresh_token grant type cannot refresh",
        client: "contacts-kiosk",
        flow: Flow::RefreshToken,
        original_audience: SPA.audience,
        scope: None,
        original_scope: Some("openid"),
        expect: Error(ErrorCode::UnauthorizedClient),
        ..SPA
    },
    Case {
        about: "no scope and no default scopes ask for nothing",
        scope: None,
        expect: Granted(&[], &[]),
        ..SPA
    },
];

#[test]
fn contacts_decisions() {
    run(&policy(CONTACTS), CONTACTS_CASES);
}

/// What the token response says: the scope string, whether it must carry `scope`, and a refresh token.
const TOKEN_RESPONSES: &[(&str, Case, &str, bool, bool)] = &[
    // about, request, scope_string, scope_changed, refresh_token
    (
        "everything requested is granted",
        SPA,
        "openid profile email read:contacts",
        false,
        false,
    ),
    (
        "the scope string keeps request order",
        Case {
            scope: Some("read:contacts email openid"),
            ..SPA
        },
        "read:contacts email openid",
        false,
        false,
    ),
    (
        "granted offline_access means a refresh token",
        Case {
            scope: Some("openid offline_access"),
            ..SPA
        },
        "openid offline_access",
        false,
        true,
    ),
    (
        "a dropped scope changes the scope",
        Case {
            scope: Some("openid READ:contacts"),
            ..SPA
        },
        "openid",
        true,
        false,
    ),
    (
        "a repeated token does not change the scope",
        Case {
            scope: Some("openid openid"),
            ..SPA
        },
        "openid",
        false,
        false,
    ),
    (
        "refused offline_access changes the scope and gives no refresh token",
        Case {
            client: "contacts-kiosk",
            scope: Some("openid offline_access"),
            ..SPA
        },
        "openid",
        true,
        false,
    ),
    (
        "a refresh without a scope parameter is compared with the original scope",
        Case {
            flow: Flow::RefreshToken,
            original_audience: SPA.audience,
            scope: None,
            original_scope: Some("openid offline_access read:contacts"),
            ..SPA
        },
        "openid offline_access read:contacts",
        false,
        true,
    ),
    (
        "a narrowed refresh is compared with its scope parameter, and keeps its refresh token",
        Case {
            flow: Flow::RefreshToken,
            original_audience: SPA.audience,
            scope: Some("read:contacts"),
            original_scope: Some("openid offline_access read:contacts"),
            ..SPA
        },
        "read:contacts",
        false,
        true,
    ),
    (
        "a refresh that loses a scope the API no longer defines changes the scope",
        Case {
            flow: Flow::RefreshToken,
            original_audience: SPA.audience,
            scope: None,
            original_scope: Some("read:contacts export:contacts"),
            ..SPA
        },
        "read:contacts",
        true,
        false,
    ),
    (
        "nothing requested and nothing granted is no change",
        Case { scope: None, ..SPA },
        "",
        false,
        false,
    ),
    (
        "an empty scope parameter is nothing requested",
        Case {
            scope: Some("   "),
            ..SPA
        },
        "",
        false,
        false,
    ),
];

#[test]
fn token_responses() {
    let policy = policy(CONTACTS);
    for (about, case, string, changed, refresh) in TOKEN_RESPONSES {
        let alice = User::new("alice");
        let mut request = Request::new(case.client).flow(case.flow).user(&alice);
        if let Some(audience) = case.audience {
            request = request.audience(audience);
        }
        if let Some(raw) = case.scope {
            request = request.scope(raw);
        }
        if let Some(original) = case.original_scope {
            request = request.original_scope(original);
        }
        request = request.maybe_original_audience(case.original_audience);
        let grant = match policy.grant(&request) {
            Ok(Decision::Granted(grant)) => grant,
            other => panic!("{about}: expected a grant, got {:?}", Outcome::of(other)),
        };
        assert_eq!(
            (
                grant.scope_string().as_str(),
                grant.scope_changed(),
                grant.refresh_token()
            ),
            (*string, *changed, *refresh),
            "{about}"
        );
        assert_eq!(grant.scope_string(), scopes(&grant).join(" "), "{about}");
    }
}

// ---------------------------------------------------------------------------
// Request-level checks (DESIGN.md §3.1): every code, and the first failure wins.
// ---------------------------------------------------------------------------

/// Contacts with strict settings, a machine client and a closed API.
const STRICT: &str = r#"{
  "settings": { "unknown_scopes": "reject", "max_scope_length": 40, "max_scope_tokens": 4 },
  "apis": [
    { "audience": "https://contacts.example.com/api", "allow_offline_access": true,
      "scopes": [ { "name": "read:contacts" }, { "name": "delete:contacts" } ] },
    { "audience": "https://admin.example.com/api", "user_access": "deny_all", "client_access": "deny_all",
      "scopes": [ { "name": "manage:users" } ] }
  ],
  "clients": [
    { "client_id": "contacts-spa", "first_party": true, "kind": "spa" },
    { "client_id": "sync-bot", "kind": "machine_to_machine",
      "grants": [
        { "audience": "https://contacts.example.com/api", "scopes": ["read:contacts"] },
        { "audience": "https://admin.example.com/api", "scopes": ["*"] } ] }
  ]
}"#;

const ADMIN_API: &str = "https://admin.example.com/api";

const STRICT_SPA: Case = Case {
    client: "contacts-spa",
    audience: Some(CONTACTS_API),
    scope: Some("openid read:contacts"),
    ..Case::BASE
};
const SYNC: Case = Case {
    client: "sync-bot",
    flow: Flow::ClientCredentials,
    user: None,
    audience: Some(CONTACTS_API),
    scope: Some("read:contacts"),
    ..Case::BASE
};

const REQUEST_CHECKS: &[Case] = &[
    Case {
        about: "1. an unknown client is invalid_client, whatever else is wrong",
        client: "nobody",
        user: None,
        scope: Some("a\tb"),
        audience: Some("https://nowhere.example"),
        expect: Error(ErrorCode::InvalidClient),
        ..STRICT_SPA
    },
    Case {
        about: "1. an empty client id is invalid_client",
        client: "",
        expect: Error(ErrorCode::InvalidClient),
        ..STRICT_SPA
    },
    Case {
        about: "1. client ids are case-sensitive",
        client: "Contacts-SPA",
        expect: Error(ErrorCode::InvalidClient),
        ..STRICT_SPA
    },
    Case {
        about: "2. a flow outside the client's grant types is unauthorized_client, before the missing user",
        client: "sync-bot",
        user: None,
        expect: Error(ErrorCode::UnauthorizedClient),
        ..STRICT_SPA
    },
    Case {
        about: "3. a user flow without a user is invalid_request, before the bad scope",
        user: None,
        scope: Some("a\tb"),
        expect: Error(ErrorCode::InvalidRequest),
        ..STRICT_SPA
    },
    Case {
        about: "3. a refresh without a user is invalid_request",
        flow: Flow::RefreshToken,
        original_audience: STRICT_SPA.audience,
        user: None,
        original_scope: Some("openid read:contacts"),
        expect: Error(ErrorCode::InvalidRequest),
        ..STRICT_SPA
    },
    Case {
        about: "3. a refresh without its original scope is invalid_request, before the bad scope",
        flow: Flow::RefreshToken,
        original_audience: STRICT_SPA.audience,
        scope: Some("a\tb"),
        expect: Error(ErrorCode::InvalidRequest),
        ..STRICT_SPA
    },
    Case {
        about: "3. client credentials with a user are invalid_request",
        user: Some("alice"),
        expect: Error(ErrorCode::InvalidRequest),
        ..SYNC
    },
    Case {
        about: "4. a quote in the scope parameter is invalid_scope, before the unknown audience",
        scope: Some("openid \"read:contacts\""),
        audience: Some("https://nowhere.example"),
        expect: Error(ErrorCode::InvalidScope),
        ..STRICT_SPA
    },
    Case {
        about: "4. a scope parameter over max_scope_length is invalid_scope",
        scope: Some("openid read:contacts openid read:contacts"),
        expect: Error(ErrorCode::InvalidScope),
        ..STRICT_SPA
    },
    Case {
        about: "4. a scope parameter of exactly max_scope_length bytes is accepted",
        scope: Some("openid read:contacts delete:contacts    "),
        expect: Granted(&["openid", "read:contacts", "delete:contacts"], &[]),
        ..STRICT_SPA
    },
    Case {
        about: "4. tokens are counted before de-duplication against max_scope_tokens",
        scope: Some("openid openid openid openid openid"),
        expect: Error(ErrorCode::InvalidScope),
        ..STRICT_SPA
    },
    Case {
        about: "4. max_scope_tokens tokens are accepted",
        scope: Some("openid openid openid openid"),
        expect: Granted(&["openid"], &[]),
        ..STRICT_SPA
    },
    Case {
        about: "5. an unknown audience is invalid_target",
        audience: Some("https://contacts.example.com/api/"),
        expect: Error(ErrorCode::InvalidTarget),
        ..STRICT_SPA
    },
    Case {
        about: "5. an unknown audience is invalid_target before API access is checked",
        audience: Some("https://nowhere.example"),
        expect: Error(ErrorCode::InvalidTarget),
        ..SYNC
    },
    Case {
        about: "5. client credentials with no audience and no default are invalid_request",
        audience: None,
        expect: Error(ErrorCode::InvalidRequest),
        ..SYNC
    },
    Case {
        about: "6. user_access deny_all is access_denied",
        audience: Some(ADMIN_API),
        scope: Some("openid"),
        expect: Error(ErrorCode::AccessDenied),
        ..STRICT_SPA
    },
    Case {
        about: "6. client_access deny_all is access_denied despite a grant",
        audience: Some(ADMIN_API),
        scope: Some("manage:users"),
        expect: Error(ErrorCode::AccessDenied),
        ..SYNC
    },
    Case {
        about: "6. API access is checked before unknown scopes",
        audience: Some(ADMIN_API),
        scope: Some("nonsense"),
        expect: Error(ErrorCode::AccessDenied),
        ..STRICT_SPA
    },
    Case {
        about: "7. under reject, a token the API does not define is invalid_scope",
        scope: Some("openid read:contact"),
        expect: Error(ErrorCode::InvalidScope),
        ..STRICT_SPA
    },
    Case {
        about: "7. under reject, an API scope with no audience is invalid_scope",
        audience: None,
        expect: Error(ErrorCode::InvalidScope),
        ..STRICT_SPA
    },
    Case {
        about: "7. under reject, OIDC scopes are always known",
        audience: None,
        scope: Some("openid profile"),
        expect: Granted(&["openid", "profile"], &[]),
        ..STRICT_SPA
    },
    Case {
        about: "7. under reject, a client credentials token outside the grant is still only a verdict",
        scope: Some("read:contacts delete:contacts"),
        expect: Granted(&["read:contacts"], &[("delete:contacts", NotGrantedToClient)]),
        ..SYNC
    },
    Case {
        about: "8. a malformed original scope is invalid_scope",
        flow: Flow::RefreshToken,
        original_audience: STRICT_SPA.audience,
        scope: None,
        original_scope: Some("openid\nread:contacts"),
        expect: Error(ErrorCode::InvalidScope),
        ..STRICT_SPA
    },
    Case {
        about: "8. an original scope is not held to max_scope_length: it comes from the host's store",
        flow: Flow::RefreshToken,
        original_audience: STRICT_SPA.audience,
        scope: Some("openid"),
        original_scope: Some("openid read:contacts delete:contacts email"),
        expect: Granted(&["openid"], &[]),
        ..STRICT_SPA
    },
    Case {
        about: "8. a refresh that widens the original scope is invalid_scope",
        flow: Flow::RefreshToken,
        original_audience: STRICT_SPA.audience,
        original_scope: Some("openid"),
        expect: Error(ErrorCode::InvalidScope),
        ..STRICT_SPA
    },
    Case {
        about: "8. a refresh within the original scope passes every check",
        flow: Flow::RefreshToken,
        original_audience: STRICT_SPA.audience,
        original_scope: Some("openid read:contacts offline_access"),
        expect: Granted(&["openid", "read:contacts"], &[]),
        ..STRICT_SPA
    },
];

#[test]
fn request_level_checks_in_order() {
    run(&policy(STRICT), REQUEST_CHECKS);
}

/// A request and the error it must fail with.
type ErrorCase<'a> = (&'static str, Request<'a>, fn(&GrantError) -> bool);

#[test]
fn request_level_errors_name_the_failed_check() {
    let policy = policy(STRICT);
    let alice = User::new("alice");
    let spa = || Request::new("contacts-spa").audience(CONTACTS_API);
    let bot = || Request::new("sync-bot").flow(Flow::ClientCredentials);
    let cases: Vec<ErrorCase<'_>> = vec![
        (
            "unknown client",
            Request::new("nobody"),
            |e| matches!(e, GrantError::UnknownClient { client_id } if client_id == "nobody"),
        ),
        ("flow not allowed", bot().flow(Flow::RefreshToken), |e| {
            matches!(
                e,
                GrantError::FlowNotAllowed {
                    flow: Flow::RefreshToken,
                    ..
                }
            )
        }),
        ("missing user", spa(), |e| {
            matches!(
                e,
                GrantError::MissingUser {
                    flow: Flow::AuthorizationCode
                }
            )
        }),
        (
            "unexpected user",
            bot().audience(CONTACTS_API).user(&alice),
            |e| matches!(e, GrantError::UnexpectedUser),
        ),
        (
            "missing original scope",
            spa()
                .flow(Flow::RefreshToken)
                .original_audience(CONTACTS_API)
                .user(&alice),
            |e| matches!(e, GrantError::MissingOriginalScope),
        ),
        ("bad byte", spa().user(&alice).scope("openid x\u{7f}"), |e| {
            matches!(
                e,
                GrantError::Scope(ScopeError::InvalidByte { at: 8, byte: 0x7f })
            )
        }),
        (
            "too long",
            spa()
                .user(&alice)
                .scope("openid read:contacts openid read:contacts"),
            |e| matches!(e, GrantError::Scope(ScopeError::TooLong { max: 40, .. })),
        ),
        ("too many tokens", spa().user(&alice).scope("a a a a a"), |e| {
            matches!(e, GrantError::Scope(ScopeError::TooManyTokens { max: 4 }))
        }),
        (
            "unknown audience",
            spa().user(&alice).audience("https://x"),
            |e| matches!(e, GrantError::UnknownAudience { audience } if audience == "https://x"),
        ),
        ("missing audience", bot(), |e| {
            matches!(e, GrantError::MissingAudience)
        }),
        (
            "api access",
            bot().audience(ADMIN_API),
            |e| matches!(e, GrantError::ApiAccessDenied { audience, .. } if audience == ADMIN_API),
        ),
        (
            "unknown scope",
            spa().user(&alice).scope("openid nope"),
            |e| matches!(e, GrantError::UnknownScope { scope } if scope == "nope"),
        ),
        (
            "original scope",
            spa()
                .user(&alice)
                .flow(Flow::RefreshToken)
                .original_audience(CONTACTS_API)
                .original_scope("\"x\""),
            |e| {
                matches!(
                    e,
                    GrantError::OriginalScope(ScopeError::InvalidByte { at: 0, .. })
                )
            },
        ),
        (
            "widened",
            spa()
                .user(&alice)
                .flow(Flow::RefreshToken)
                .original_audience(CONTACTS_API)
                .original_scope("openid")
                .scope("openid read:contacts"),
            |e| matches!(e, GrantError::ScopeWidened { scope } if scope == "read:contacts"),
        ),
    ];
    for (about, request, expected) in cases {
        let error = refused(&policy, &request);
        assert!(expected(&error), "{about}: got {error:?}");
    }
}

#[test]
fn the_default_limits_are_4096_bytes_and_128_tokens() {
    let policy = policy(CONTACTS);
    let alice = User::new("alice");
    let outcome = |raw: &str| {
        let request = Request::new("contacts-spa")
            .audience(CONTACTS_API)
            .user(&alice)
            .scope(raw);
        Outcome::of(policy.grant(&request))
    };
    let at_length = format!("openid{}", " ".repeat(4096 - 6));
    assert!(
        matches!(outcome(&at_length), Outcome::Grant { .. }),
        "4096 bytes are accepted"
    );
    let over_length = format!("{at_length} ");
    assert_eq!(outcome(&over_length), Outcome::Error(ErrorCode::InvalidScope));
    let at_count = vec!["openid"; 128].join(" ");
    assert!(
        matches!(outcome(&at_count), Outcome::Grant { .. }),
        "128 tokens are accepted"
    );
    let over_count = vec!["openid"; 129].join(" ");
    assert_eq!(outcome(&over_count), Outcome::Error(ErrorCode::InvalidScope));
}

#[test]
fn error_codes_and_deny_reasons_use_the_wire_spellings() {
    let codes = [
        (ErrorCode::InvalidRequest, "invalid_request"),
        (ErrorCode::InvalidClient, "invalid_client"),
        (ErrorCode::UnauthorizedClient, "unauthorized_client"),
        (ErrorCode::AccessDenied, "access_denied"),
        (ErrorCode::InvalidScope, "invalid_scope"),
        (ErrorCode::InvalidTarget, "invalid_target"),
    ];
    for (code, text) in codes {
        assert_eq!((code.as_str(), code.to_string().as_str()), (text, text));
    }
    let reasons = [
        (RequiresUser, "requires_user"),
        (OfflineAccessNotAllowed, "offline_access_not_allowed"),
        (NoAudience, "no_audience"),
        (Undefined, "undefined"),
        (NotGrantedToClient, "not_granted_to_client"),
        (NotPermitted, "not_permitted"),
        (ConsentDenied, "consent_denied"),
    ];
    for (reason, text) in reasons {
        assert_eq!((reason.as_str(), reason.to_string().as_str()), (text, text));
    }
}

// ---------------------------------------------------------------------------
// Error descriptions are safe to send: RFC 6749 §5.2 charset, no echo of input.
// ---------------------------------------------------------------------------

const HOSTILE: &str = "evil\"<script>alert(1)</script>\\";

/// RFC 6749 §5.2 `error_description`: %x20-21 / %x23-5B / %x5D-7E.
fn is_description_byte(b: u8) -> bool {
    matches!(b, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E)
}

#[test]
fn descriptions_are_safe_and_never_echo_the_request() {
    let strict = policy(STRICT);
    let lenient = policy(CONTACTS);
    let calendar = policy(CALENDAR);
    let alice = User::new("alice");
    let hostile_user = User::new(HOSTILE);
    let spa = || Request::new("contacts-spa").audience(CONTACTS_API).user(&alice);
    let bot = || Request::new("sync-bot").flow(Flow::ClientCredentials);
    let mut errors: Vec<(&str, GrantError)> = vec![
        ("unknown client", refused(&strict, &Request::new(HOSTILE))),
        (
            "unknown client with a newline",
            refused(&strict, &Request::new("evil\n<script>")),
        ),
        (
            "flow not allowed",
            refused(&strict, &bot().flow(Flow::AuthorizationCode).user(&alice)),
        ),
        (
            "missing user",
            refused(&strict, &Request::new("contacts-spa").audience(HOSTILE)),
        ),
        (
            "unexpected user",
            refused(&strict, &bot().audience(CONTACTS_API).user(&hostile_user)),
        ),
        (
            "missing original scope",
            refused(
                &strict,
                &spa().flow(Flow::RefreshToken).original_audience(CONTACTS_API),
            ),
        ),
        ("bad scope", refused(&strict, &spa().scope(HOSTILE))),
        (
            "scope too long",
            refused(
                &strict,
                &spa().scope("<script>alert(1)</script><script>alert(2)</script>"),
            ),
        ),
        ("unknown audience", refused(&strict, &spa().audience(HOSTILE))),
        ("missing audience", refused(&strict, &bot())),
        (
            "api access",
            refused(&strict, &bot().audience(ADMIN_API).scope("<script>")),
        ),
        (
            "unknown scope",
            refused(&strict, &spa().scope("openid <script>alert(1)</script>")),
        ),
        (
            "original scope",
            refused(
                &lenient,
                &spa()
                    .flow(Flow::RefreshToken)
                    .original_audience(CONTACTS_API)
                    .original_scope(HOSTILE),
            ),
        ),
        (
            "scope widened",
            refused(
                &lenient,
                &spa()
                    .flow(Flow::RefreshToken)
                    .original_audience(CONTACTS_API)
                    .original_scope("openid")
                    .scope("<script>alert(1)</script>"),
            ),
        ),
    ];
    let request = Request::new("calendar-partner")
        .audience(CALENDAR_API)
        .scope(READ_WRITE)
        .user(&alice);
    errors.push((
        "approval not on prompt",
        prompt(&calendar, &request).approve([HOSTILE]).unwrap_err(),
    ));
    errors.push(("consent denied", prompt(&calendar, &request).deny()));

    let mut codes: Vec<ErrorCode> = errors.iter().map(|(_, error)| error.code()).collect();
    codes.sort_unstable();
    codes.dedup();
    assert_eq!(codes.len(), 6, "every error code is exercised: {codes:?}");

    for (about, error) in &errors {
        let description = error.error_description();
        assert!(!description.is_empty(), "{about}");
        assert!(
            description.bytes().all(is_description_byte),
            "{about}: {description:?} leaves the RFC 6749 charset"
        );
        for echo in ["<script>", "evil", "alert"] {
            assert!(
                !description.contains(echo),
                "{about}: {description:?} echoes the request"
            );
        }
        let log = error.to_string();
        assert!(
            !log.contains('\n') && !log.contains('\r'),
            "{about}: the log line {log:?} spans lines"
        );
    }
}

// ---------------------------------------------------------------------------
// Sharing: a built policy is immutable, Send + Sync, and shared through Arc.
// ---------------------------------------------------------------------------

#[test]
fn public_types_are_send_sync_and_static() {
    fn check<T: Send + Sync + 'static>() {}
    check::<Policy>();
    check::<Api>();
    check::<Client>();
    check::<Role>();
    check::<Decision<'static>>();
    check::<Grant<'static>>();
    check::<ConsentPrompt<'static>>();
    check::<PromptScope<'static>>();
    check::<Request<'static>>();
    check::<User>();
    check::<ConsentRecord>();
    check::<Scope>();
    check::<ScopeParam<'static>>();
    check::<PolicyDocument>();
    check::<DenyReason>();
    check::<Verdict>();
    check::<ErrorCode>();
    check::<GrantError>();
    check::<ScopeError>();
    check::<PolicyError>();
    check::<PolicyErrors>();
    check::<Problem>();
    check::<LoadError>();
}

#[test]
fn one_policy_behind_an_arc_serves_several_threads() {
    let shared = Arc::new(policy(EVENTS));
    let roles: [&[&str]; 4] = [&["organizer"], &["participant"], &["chief"], &[]];
    let expected: [&[&str]; 4] = [
        &["create:events", "update:events"],
        &["view:events", "register:events"],
        &["create:events", "update:events", "view:events", "register:events"],
        &[],
    ];
    let handles: Vec<_> = (0..16)
        .map(|n| {
            let policy = Arc::clone(&shared);
            let roles = roles[n % 4];
            thread::spawn(move || {
                let user = user(&format!("user-{n}"), roles);
                let request = Request::new("events-app")
                    .audience(EVENTS_API)
                    .scope(ALL_FOUR)
                    .user(&user);
                (0..50)
                    .map(|_| match grant(&policy, &request) {
                        Ok(Decision::Granted(grant)) => grant.scope_string(),
                        other => panic!("expected a grant, got {:?}", Outcome::of(other)),
                    })
                    .collect::<Vec<String>>()
            })
        })
        .collect();
    for (n, handle) in handles.into_iter().enumerate() {
        let strings = handle.join().expect("a decision thread panicked");
        let want = expected[n % 4].join(" ");
        assert!(
            strings.iter().all(|s| *s == want),
            "thread {n}: {:?} instead of {want:?}",
            strings[0]
        );
    }
}

//! What a host touches at the HTTP boundary: the owned consent round trip,
//! serde on every output, OAuth error responses, token claims, and small
//! `Debug` output. Public API only.

mod common;

use common::{policy, prompt, record, scope};
use scope_policy::{
    ConsentRecord, Decision, DenyReason, ErrorCode, Flow, GrantError, Policy, Request, RequestParams, User,
    Verdict,
};
use serde_json::{json, Value};

const NOTES: &str = "https://notes.example.com/api";

/// A notes API with a required scope and a one-time scope, RBAC, and four clients.
const POLICY: &str = r#"{
  "apis": [{ "audience": "https://notes.example.com/api", "name": "Notes", "rbac": true, "allow_offline_access": true,
             "scopes": [ { "name": "read:notes", "description": "Read your notes", "required": true },
                         { "name": "write:notes", "description": "Write your notes" },
                         { "name": "share:notes", "description": "Share a note", "consent": "always" },
                         { "name": "admin:notes", "description": "Administer notes" } ] }],
  "roles": [{ "name": "writer", "permissions": [ { "audience": "https://notes.example.com/api", "scope": "*" } ] }],
  "clients": [
    { "client_id": "notes-web", "first_party": true, "kind": "regular_web" },
    { "client_id": "partner", "kind": "regular_web",
      "grants": [ { "audience": "https://notes.example.com/api", "scopes": ["read:*", "write:*", "share:*"] } ] },
    { "client_id": "indexer", "kind": "machine_to_machine",
      "grants": [ { "audience": "https://notes.example.com/api", "scopes": ["read:notes"] } ] },
    { "client_id": "tv", "first_party": true, "kind": "native", "grant_types": ["device_code"] }
  ]
}"#;

const NOW: u64 = 1_800_000_000;

fn writer() -> User {
    User::new("alice").with_role("writer")
}

fn json_of(value: &impl serde::Serialize) -> Value {
    serde_json::to_value(value).expect("serializes")
}

// ---------------------------------------------------------------------------
// The owned consent round trip

/// `GET /authorize` and `POST /consent` of a host, with the session and the
/// store in between as JSON text.
struct Host {
    policy: Policy,
    records: Vec<ConsentRecord>,
}

impl Host {
    /// Decides and, for a prompt, returns (session, prompt identity, prompt scopes).
    fn show(&self, params: &RequestParams) -> (String, String, Vec<String>) {
        let request = params.request().consents(&self.records).now(NOW);
        let decision = self.policy.grant(&request).expect("a decision");
        let Decision::ConsentRequired(prompt) = decision else {
            panic!("expected a prompt, got {decision:?}")
        };
        let session = serde_json::to_string(params).expect("the params serialize");
        let shown: Vec<String> = prompt.scopes().map(|s| s.scope().to_owned()).collect();
        (session, prompt.id().to_string(), shown)
    }

    /// Answers from the session alone, and replaces the records when granted.
    fn answer(&mut self, session: &str, shown: &str, approved: &[&str]) -> Result<Vec<String>, GrantError> {
        let params: RequestParams = serde_json::from_str(session).expect("the session reads");
        let (granted, new) = {
            let request = params.request().consents(&self.records).now(NOW);
            let mut grant = self.policy.grant(&request)?.answer(shown, approved)?;
            let granted: Vec<String> = grant.scopes().map(str::to_owned).collect();
            (
                granted,
                grant.take_consent_record().expect("an approval makes a record"),
            )
        };
        self.records.retain(|r| {
            !(r.user_id == new.user_id && r.client_id == new.client_id && r.audience == new.audience)
        });
        self.records.push(new);
        Ok(granted)
    }
}

fn partner(scope: &str) -> RequestParams {
    RequestParams::new("partner")
        .audience(NOTES)
        .scope(scope)
        .user(writer())
}

#[test]
fn a_consent_round_trip_crosses_two_requests_with_crate_types_only() {
    let mut host = Host {
        policy: policy(POLICY),
        records: Vec::new(),
    };
    let (session, shown, scopes) = host.show(&partner("read:notes write:notes"));
    assert_eq!(scopes, ["read:notes", "write:notes"]);
    assert_eq!(shown.len(), 32);
    assert!(shown
        .bytes()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    let granted = host.answer(&session, &shown, &["read:notes"]).unwrap();
    assert_eq!(granted, ["read:notes"]);
    // The next login asks nothing: read is held, write is declined.
    let params = partner("read:notes write:notes");
    let request = params.request().consents(&host.records).now(NOW);
    let Decision::Granted(grant) = host.policy.grant(&request).unwrap() else {
        panic!("the stored record answers the next login")
    };
    assert_eq!(
        grant.denied().collect::<Vec<_>>(),
        [("write:notes", DenyReason::ConsentDenied)]
    );
}

#[test]
fn an_answer_to_a_prompt_that_changed_is_a_typed_error_and_grants_nothing() {
    let mut host = Host {
        policy: policy(POLICY),
        records: Vec::new(),
    };
    // Two tabs: both show the prompt for read and write.
    let (session, shown, _) = host.show(&partner("read:notes write:notes"));
    // The first tab approves read only; its record declines write.
    host.answer(&session, &shown, &["read:notes"]).unwrap();
    // The second tab answers the prompt it showed, which no longer exists:
    // nothing is asked now (read is held, write declined).
    let stale = host.answer(&session, &shown, &["read:notes", "write:notes"]);
    assert_eq!(stale, Err(GrantError::PromptChanged));
    assert!(
        !stale.unwrap_err().response().redirectable(),
        "the host shows the new prompt"
    );

    // A policy reload that adds a scope to what must be asked changes the prompt too.
    let mut host = Host {
        policy: policy(POLICY),
        records: Vec::new(),
    };
    let (session, shown, _) = host.show(&partner("read:notes write:notes share:notes"));
    host.policy = policy(&POLICY.replace(r#""Write your notes""#, r#""Write your notes", "required": true"#));
    assert_eq!(
        host.answer(&session, &shown, &["read:notes", "write:notes"]),
        Err(GrantError::PromptChanged),
        "a scope that became required changes the prompt"
    );
    // A tampered identity is refused the same way.
    let (session, _, _) = host.show(&partner("read:notes"));
    assert_eq!(
        host.answer(&session, "00000000000000000000000000000000", &["read:notes"]),
        Err(GrantError::PromptChanged)
    );
}

#[test]
fn the_prompt_identity_is_stable_and_depends_on_exactly_what_the_user_sees() {
    let policy = policy(POLICY);
    let alice = writer();
    let bob = User::new("bob").with_role("writer");
    let id = |request: Request<'_>| prompt(&policy, &request).id().to_string();
    let base = Request::new("partner").audience(NOTES).user(&alice).now(NOW);
    let reference = id(base.scope("read:notes write:notes"));
    // Pinned: the identity is the same in every run, process and version, so
    // a consent form shown before a deploy is still answered after it.
    assert_eq!(reference, "ea7c4d7ec2fc8df94e7e82e2f9bb51ec");
    assert_eq!(
        id(base.scope("write:notes read:notes")),
        reference,
        "the order of the request does not count"
    );
    assert_eq!(
        id(base.scope("read:notes write:notes read:notes")),
        reference,
        "nor repeats"
    );
    assert_eq!(
        id(base.scope("read:notes write:notes nope:notes")),
        reference,
        "nor a scope refused before the prompt"
    );
    let reworded = policy_with_description(POLICY, "Write your notes", "Write and delete your notes");
    let reworded_request = base.scope("read:notes write:notes");
    let reworded = prompt(&reworded, &reworded_request).id().to_string();
    let differs = [
        ("another description of a prompt scope", reworded),
        (
            "another user",
            id(base.user(&bob).scope("read:notes write:notes")),
        ),
        ("another scope set", id(base.scope("read:notes"))),
        (
            "an unverifiable redirect",
            id(base
                .scope("read:notes write:notes")
                .redirect_uri("http://127.0.0.1/cb")),
        ),
        (
            "a required mark",
            id(Request::new("partner")
                .audience(NOTES)
                .user(&alice)
                .scope("write:notes share:notes")),
        ),
    ];
    for (about, other) in differs {
        assert_ne!(other, reference, "{about}");
    }
}

/// The policy with one scope description replaced.
fn policy_with_description(document: &str, from: &str, to: &str) -> Policy {
    policy(&document.replace(&format!("\"{from}\""), &format!("\"{to}\"")))
}

#[test]
fn request_params_carry_every_parameter_and_borrow_back_into_a_request() {
    let user = User::new("alice")
        .with_role("writer")
        .with_permission(NOTES, scope("read:notes"));
    let records = [record("alice", "partner", Some(NOTES), &["read:notes"], None)];
    let request = Request::new("partner")
        .flow(Flow::RefreshToken)
        .audience(NOTES)
        .scope("read:notes")
        .prompt("consent")
        .redirect_uri("https://partner.example/cb")
        .original_scope("read:notes write:notes")
        .original_audience(NOTES)
        .user(&user)
        .consents(&records)
        .now(NOW);
    let params = request.to_params();
    let text = serde_json::to_string(&params).unwrap();
    let back: RequestParams = serde_json::from_str(&text).unwrap();
    assert_eq!(back, params);
    let again = back.request().consents(&records).now(NOW);
    assert_eq!(
        again, request,
        "consents and now are passed fresh, the rest round-trips"
    );
    let unknown = text.replacen('{', r#"{"consents":[],"#, 1);
    assert!(
        serde_json::from_str::<RequestParams>(&unknown).is_err(),
        "unknown fields are refused"
    );
    let minimal: RequestParams = serde_json::from_str(r#"{"client_id":"partner"}"#).unwrap();
    assert_eq!(minimal, RequestParams::new("partner"));
}

#[test]
fn request_setters_take_options_and_getters_read_them_back() {
    let user = writer();
    let none = Request::new("partner")
        .maybe_audience(None)
        .maybe_scope(None)
        .maybe_user(None)
        .maybe_prompt(None)
        .maybe_redirect_uri(None)
        .maybe_original_scope(None)
        .maybe_original_audience(None)
        .maybe_now(None);
    assert_eq!(none, Request::new("partner"));
    let some = Request::new("partner")
        .maybe_audience(Some(NOTES))
        .maybe_scope(Some("read:notes"))
        .maybe_user(Some(&user))
        .maybe_prompt(Some("login"))
        .maybe_redirect_uri(Some("https://p/cb"))
        .maybe_original_scope(Some("a"))
        .maybe_original_audience(Some("b"))
        .maybe_now(Some(7));
    assert_eq!(
        (
            some.get_audience(),
            some.get_scope(),
            some.get_user().map(|u| u.id.as_str()),
            some.get_prompt(),
            some.get_redirect_uri(),
            some.get_original_scope(),
            some.get_original_audience(),
            some.get_now(),
            some.get_flow(),
            some.get_consents().len(),
        ),
        (
            Some(NOTES),
            Some("read:notes"),
            Some("alice"),
            Some("login"),
            Some("https://p/cb"),
            Some("a"),
            Some("b"),
            Some(7),
            Flow::AuthorizationCode,
            0
        )
    );
}

// ---------------------------------------------------------------------------
// serde on every output

#[test]
fn a_decision_is_one_compact_json_line_in_the_crate_vocabulary() {
    let policy = policy(POLICY);
    let alice = writer();
    let records = [record(
        "alice",
        "partner",
        Some(NOTES),
        &["read:notes"],
        Some(NOW + 60),
    )];
    let request = Request::new("partner")
        .audience(NOTES)
        .scope("openid read:notes write:notes nope")
        .redirect_uri("https://partner.example/cb")
        .user(&alice)
        .consents(&records)
        .now(NOW);
    let decision = policy.grant(&request).unwrap();
    let line = serde_json::to_string(&decision).unwrap();
    assert!(!line.contains('\n'), "one line");
    let Decision::ConsentRequired(prompt) = &decision else {
        panic!("a prompt")
    };
    assert_eq!(
        json_of(&decision),
        json!({
            "decision": "consent_required",
            "id": prompt.id().to_string(),
            "client_id": "partner", "user_id": "alice", "flow": "authorization_code", "audience": NOTES,
            "scopes": [
                { "scope": "openid", "description": "Sign you in with your account", "required": false },
                { "scope": "write:notes", "description": "Write your notes", "required": false }
            ],
            "granted": ["read:notes"],
            "denied": { "nope": "undefined" },
            "unverifiable_redirect": false,
            "redirect_uri": "https://partner.example/cb"
        })
    );
    let grant = decision
        .consent_required()
        .unwrap()
        .approve(["write:notes"])
        .unwrap();
    assert_eq!(
        json_of(&Decision::Granted(grant.clone())),
        json!({
            "decision": "granted",
            "client_id": "partner", "user_id": "alice", "flow": "authorization_code", "audience": NOTES,
            "granted": ["read:notes", "write:notes"],
            "denied": { "openid": "consent_denied", "nope": "undefined" },
            "scope_changed": true, "refresh_token": false, "unverifiable_redirect": false,
            "consent_record": {
                "user_id": "alice", "client_id": "partner", "audience": NOTES,
                "scopes": ["read:notes", "write:notes"], "declined": ["openid"], "expires_at": NOW + 60
            }
        })
    );
    let verdicts: Vec<Value> = grant.verdicts().map(|(_, v)| json_of(&v)).collect();
    assert_eq!(
        verdicts,
        [
            json!("consent_denied"),
            json!("granted"),
            json!("granted"),
            json!("undefined")
        ]
    );
    assert_eq!(json_of(&Verdict::Asked), json!("asked"));
}

#[test]
fn errors_serialize_with_their_code_and_safe_description() {
    let policy = policy(POLICY);
    let error = policy.grant(&Request::new("ghost\"<x>")).unwrap_err();
    assert_eq!(
        json_of(&error),
        json!({ "error": "invalid_client", "error_description": "The client is not registered",
                "message": "unknown client \"ghost\\\"<x>\"" })
    );
    let errors = match Policy::from_json(
        r#"{ "apis": [{ "audience": "" }, { "audience": "a", "scopes": [{ "name": "*" }] }] }"#,
    ) {
        Err(scope_policy::LoadError::Policy(errors)) => errors,
        other => panic!("expected policy errors, got {other:?}"),
    };
    assert_eq!(
        json_of(&errors),
        json!([
            { "path": "apis[0].audience", "message": "audience is empty" },
            { "path": "apis[1].scopes[0].name", "message": "`*` holds `*`, which is reserved for patterns" }
        ])
    );
    let syntax = Policy::from_json(r#"{ "apis": [], "rbca": true }"#).unwrap_err();
    let entries = json_of(&syntax);
    assert_eq!(entries[0]["path"], json!("rbca"));
    assert_eq!(json_of(&DenyReason::ConsentMissing), json!("consent_missing"));
    assert_eq!(json_of(&ErrorCode::ConsentRequired), json!("consent_required"));
}

#[test]
fn debug_of_an_output_stays_small_on_a_large_policy() {
    let scopes: Vec<Value> = (0..1_000)
        .map(|n| json!({ "name": format!("scope:{n:04}"), "description": format!("Scope number {n}") }))
        .collect();
    let document = json!({
        "apis": [{ "audience": NOTES, "scopes": scopes }],
        "clients": [{ "client_id": "partner", "kind": "regular_web" }]
    });
    let policy = Policy::from_json(&document.to_string()).unwrap();
    let alice = User::new("alice");
    let request = Request::new("partner")
        .audience(NOTES)
        .scope("scope:0001")
        .user(&alice);
    let decision = policy.grant(&request).unwrap();
    let size = format!("{decision:?}").len();
    assert!(size <= 1024, "Debug of a one-scope prompt is {size} bytes");
    let grant = decision
        .consent_required()
        .unwrap()
        .approve(["scope:0001"])
        .unwrap();
    let size = format!("{grant:?}").len();
    assert!(size <= 1024, "Debug of a one-scope grant is {size} bytes");
}

// ---------------------------------------------------------------------------
// OAuth error responses

#[test]
fn every_error_code_has_its_status_and_redirect_rule() {
    let policy = policy(POLICY);
    let alice = writer();
    let base = Request::new("partner").audience(NOTES).user(&alice);
    // about, request, code, status, redirectable
    let rows: Vec<(&str, Request<'_>, ErrorCode, u16, bool)> = vec![
        (
            "unknown client",
            Request::new("ghost"),
            ErrorCode::InvalidClient,
            401,
            false,
        ),
        (
            "flow not allowed",
            base.flow(Flow::ClientCredentials),
            ErrorCode::UnauthorizedClient,
            400,
            true,
        ),
        (
            "bad prompt",
            base.prompt("none login"),
            ErrorCode::InvalidRequest,
            400,
            true,
        ),
        (
            "bad scope",
            base.scope("a\tb"),
            ErrorCode::InvalidScope,
            400,
            true,
        ),
        (
            "unknown audience",
            base.audience("https://x"),
            ErrorCode::InvalidTarget,
            400,
            true,
        ),
        (
            "prompt=none",
            base.scope("read:notes").prompt("none"),
            ErrorCode::ConsentRequired,
            400,
            true,
        ),
    ];
    for (about, request, code, status, redirectable) in rows {
        let error = policy.grant(&request).map(|_| ()).unwrap_err();
        let response = error.response();
        assert_eq!(
            (response.error(), response.status(), response.redirectable()),
            (code, status, redirectable),
            "{about}"
        );
        assert_eq!(response.error_description(), error.error_description(), "{about}");
        assert_eq!(
            json_of(&response),
            json!({ "error": code.as_str(), "error_description": error.error_description() }),
            "{about}"
        );
        assert_eq!(
            response.query_pairs(),
            [
                ("error", code.as_str()),
                ("error_description", error.error_description())
            ]
        );
    }
    let denied = prompt(&policy, &base.scope("read:notes")).deny().response();
    assert_eq!(
        (denied.error(), denied.status(), denied.redirectable()),
        (ErrorCode::AccessDenied, 400, true)
    );
    let stale = policy.grant(&base.scope("read:notes")).unwrap().deny();
    assert_eq!(stale, GrantError::ConsentDenied, "refusing needs no identity");
}

// ---------------------------------------------------------------------------
// Token claims

#[test]
fn claims_carry_what_the_decision_determines() {
    let policy = policy(POLICY);
    let alice = writer();
    let request = Request::new("notes-web")
        .audience(NOTES)
        .scope("openid read:notes")
        .user(&alice);
    let Decision::Granted(grant) = policy.grant(&request).unwrap() else {
        panic!()
    };
    assert_eq!(grant.subject(), "alice");
    assert_eq!(
        json_of(&grant.claims(grant.subject())),
        json!({ "aud": NOTES, "sub": "alice", "client_id": "notes-web", "scope": "openid read:notes" })
    );
    let claims = grant.claims("pairwise-7").with_permissions();
    assert_eq!(
        claims.permissions(),
        Some(&["read:notes", "write:notes", "admin:notes"][..])
    );
    assert_eq!(claims.sub(), "pairwise-7");

    // Client credentials: the subject is the client.
    let request = Request::new("indexer")
        .flow(Flow::ClientCredentials)
        .audience(NOTES);
    let Decision::Granted(grant) = policy.grant(&request).unwrap() else {
        panic!()
    };
    let claims = grant.claims(grant.subject()).with_permissions();
    assert_eq!(
        json_of(&claims),
        json!({ "aud": NOTES, "sub": "indexer", "client_id": "indexer", "scope": "read:notes",
                "permissions": ["read:notes"] })
    );

    // OIDC scopes only, no audience: no `aud` for the host to trust by mistake.
    let request = Request::new("notes-web").scope("openid profile").user(&alice);
    let Decision::Granted(grant) = policy.grant(&request).unwrap() else {
        panic!()
    };
    let claims = grant.claims("alice").with_permissions();
    assert_eq!(claims.aud(), None);
    assert_eq!(
        json_of(&claims),
        json!({ "sub": "alice", "client_id": "notes-web", "scope": "openid profile", "permissions": [] })
    );
}

#[test]
fn an_all_refused_grant_is_empty() {
    let policy = policy(POLICY);
    let alice = User::new("alice");
    let request = Request::new("notes-web")
        .audience(NOTES)
        .scope("read:notes")
        .user(&alice);
    let Decision::Granted(grant) = policy.grant(&request).unwrap() else {
        panic!()
    };
    assert!(grant.is_empty() && grant.scope_string().is_empty());
    let writer = writer();
    let request = Request::new("notes-web")
        .audience(NOTES)
        .scope("read:notes")
        .user(&writer);
    let Decision::Granted(grant) = policy.grant(&request).unwrap() else {
        panic!()
    };
    assert!(!grant.is_empty());
}

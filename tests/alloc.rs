//! A decision allocates nothing for a typical request (DESIGN §6): up to 16
//! tokens and 8 roles, until the caller asks for owned output such as the
//! scope string. A counting global allocator (from `stats_alloc`, so no
//! unsafe code of ours) counts every allocation of the `grant()` call.
//!
//! Everything runs in one test: the counter is global, and the harness runs
//! tests on several threads.

use std::alloc::System;
use std::hint::black_box;

use scope_policy::{ConsentRecord, Decision, Flow, Policy, Request, User};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Allocations made while `f` runs (its result dropped inside the region).
fn allocations<T>(f: impl FnOnce() -> T) -> usize {
    let region = Region::new(GLOBAL);
    drop(black_box(f()));
    region.change().allocations
}

const SEEDS: &str = r#"{
  "apis": [
    { "audience": "https://calendar.example.com/api",
      "scopes": [ { "name": "read:appointments" }, { "name": "write:appointments" } ] },
    { "audience": "https://events.example.com/api", "rbac": true,
      "scopes": [ { "name": "view:events" }, { "name": "create:events" }, { "name": "delete:events" } ] },
    { "audience": "https://imaging.example/api",
      "scopes": [ { "name": "read:studies" }, { "name": "write:reports" }, { "name": "delete:studies" } ] },
    { "audience": "https://contacts.example.com/api", "allow_offline_access": true,
      "scopes": [ { "name": "read:contacts" } ] }
  ],
  "roles": [
    { "name": "participant", "permissions": [ { "audience": "https://events.example.com/api", "scope": "view:*" } ] },
    { "name": "organizer", "inherits": ["participant"],
      "permissions": [ { "audience": "https://events.example.com/api", "scope": "create:events" } ] }
  ],
  "clients": [
    { "client_id": "calendar-web", "first_party": true, "kind": "spa" },
    { "client_id": "calendar-partner", "kind": "regular_web" },
    { "client_id": "events-web", "first_party": true, "kind": "regular_web" },
    { "client_id": "pacs-sync", "kind": "machine_to_machine",
      "grants": [ { "audience": "https://imaging.example/api", "subject": "client", "scopes": ["read:*", "write:reports"] } ] },
    { "client_id": "contacts-app", "first_party": true, "kind": "native" }
  ]
}"#;

/// A policy with one API of 1,000 scopes, 8 roles and a third-party client.
fn large() -> Policy {
    let scopes: Vec<String> = (0..1000).map(|n| format!(r#"{{ "name": "s{n:04}" }}"#)).collect();
    let roles: Vec<String> = (0..8)
        .map(|r| format!(r#"{{ "name": "role{r}", "permissions": [ {{ "audience": "https://big/api", "scope": "s0{r}*" }} ] }}"#))
        .collect();
    Policy::from_json(&format!(
        r#"{{ "apis": [ {{ "audience": "https://big/api", "rbac": true, "scopes": [{}] }} ],
              "roles": [{}],
              "clients": [ {{ "client_id": "partner", "kind": "regular_web" }} ] }}"#,
        scopes.join(","),
        roles.join(",")
    ))
    .unwrap()
}

#[test]
fn typical_decisions_allocate_nothing_until_owned_output_is_asked_for() {
    let seeds = Policy::from_json(SEEDS).unwrap();
    let alice = User::new("alice");
    let olga = User::new("olga").with_role("organizer").with_role("unknown-role");
    let remembered = [ConsentRecord {
        user_id: "alice".into(),
        client_id: "calendar-partner".into(),
        audience: Some("https://calendar.example.com/api".into()),
        scopes: vec!["read:appointments".parse().unwrap()],
        expires_at: Some(2_000_000_000),
    }];
    let seed_requests = [
        (
            "calendar: third-party prompt with remembered consent",
            Request::new("calendar-partner")
                .audience("https://calendar.example.com/api")
                .scope("openid read:appointments write:appointments")
                .user(&alice)
                .consents(&remembered)
                .now(1_700_000_000),
        ),
        (
            "calendar: first party",
            Request::new("calendar-web")
                .audience("https://calendar.example.com/api")
                .scope("read:appointments write:appointments")
                .user(&alice),
        ),
        (
            "events: RBAC with inheritance",
            Request::new("events-web")
                .audience("https://events.example.com/api")
                .scope("openid view:events create:events delete:events")
                .user(&olga),
        ),
        (
            "imaging: client credentials, whole grant by default",
            Request::new("pacs-sync")
                .flow(Flow::ClientCredentials)
                .audience("https://imaging.example/api"),
        ),
        (
            "contacts: OIDC and API scopes with offline access",
            Request::new("contacts-app")
                .audience("https://contacts.example.com/api")
                .scope("openid profile email offline_access read:contacts")
                .user(&alice),
        ),
    ];
    for (about, request) in &seed_requests {
        let count = allocations(|| {
            seeds
                .grant(black_box(request))
                .map(|d| matches!(d, Decision::Granted(_)))
        });
        assert_eq!(count, 0, "{about}");
    }

    let big = large();
    let many_roles = (0..8).fold(User::new("u"), |user, r| user.with_role(format!("role{r}")));
    let sixteen: String = (0..16).map(|n| format!("s{:04} ", n * 61)).collect();
    let request = Request::new("partner")
        .audience("https://big/api")
        .scope(&sixteen)
        .user(&many_roles);
    let count = allocations(|| big.grant(black_box(&request)).is_ok());
    assert_eq!(count, 0, "16 tokens, 8 roles, 1,000 scopes");

    // The count is real: owned output allocates, and so do more than 16 tokens.
    let decision = big.grant(&request).unwrap();
    let prompt = decision
        .consent_required()
        .expect("a third-party client is asked");
    assert!(allocations(|| prompt.clone().approve(["s0000"]).map(|g| g.scope_string())) > 0);
    let seventeen: String = (0..17).map(|n| format!("s{:04} ", n)).collect();
    let request = request.scope(&seventeen);
    assert!(
        allocations(|| big.grant(black_box(&request)).is_ok()) > 0,
        "17 tokens spill to the heap"
    );
}

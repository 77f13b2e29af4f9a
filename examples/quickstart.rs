//! The seed scenarios, decided and explained.
//!
//! ```text
//! cargo run --example quickstart
//! ```
//!
//! One authorization server hosts five APIs: a calendar, a bank, an events
//! service with roles, a hospital's imaging archive and a contacts book. Each
//! scenario below is one request; the output shows the decision and the
//! reason for every scope that was refused.

use scope_policy::{ConsentRecord, Decision, Flow, GrantError, Policy, Prompt, Request, User};

const POLICY: &str = r#"{
  "apis": [
    { "audience": "https://calendar.example.com/api", "name": "Calendar API",
      "scopes": [ { "name": "read:appointments", "description": "Read your appointments" },
                  { "name": "write:appointments", "description": "Create and edit your appointments" } ] },
    { "audience": "https://bank.example.com/api", "name": "Bank API", "allow_skipping_consent": false,
      "scopes": [ { "name": "read:balance", "description": "Read your account balance" },
                  { "name": "transfer:funds", "description": "Transfer funds from your account" } ] },
    { "audience": "https://events.example.com/api", "name": "Events API", "rbac": true,
      "scopes": [ { "name": "view:events", "description": "View events" },
                  { "name": "create:events", "description": "Create events" },
                  { "name": "delete:events", "description": "Delete events" } ] },
    { "audience": "https://imaging.hospital.example/api", "name": "Imaging API",
      "scopes": [ { "name": "read:studies", "description": "Read imaging studies" },
                  { "name": "write:reports", "description": "Write radiology reports" },
                  { "name": "delete:studies", "description": "Delete imaging studies" } ] },
    { "audience": "https://contacts.example.com/api", "name": "Contacts API", "allow_offline_access": true,
      "scopes": [ { "name": "read:contacts", "description": "Read your contacts" } ] }
  ],
  "roles": [
    { "name": "participant", "description": "Attends events",
      "permissions": [ { "audience": "https://events.example.com/api", "scope": "view:*" } ] },
    { "name": "organizer", "description": "Runs events", "inherits": ["participant"],
      "permissions": [ { "audience": "https://events.example.com/api", "scope": "create:events" } ] }
  ],
  "clients": [
    { "client_id": "calendar-web", "name": "Calendar", "first_party": true, "kind": "spa" },
    { "client_id": "calendar-partner", "name": "Partner Scheduler", "kind": "regular_web" },
    { "client_id": "payments-app", "name": "Online Payments", "kind": "regular_web" },
    { "client_id": "bank-app", "name": "Bank", "first_party": true, "kind": "native" },
    { "client_id": "events-web", "name": "Events", "first_party": true, "kind": "regular_web" },
    { "client_id": "pacs-sync", "name": "PACS sync", "kind": "machine_to_machine",
      "grants": [ { "audience": "https://imaging.hospital.example/api", "subject": "client",
                    "scopes": ["read:*", "write:reports"] } ] },
    { "client_id": "contacts-app", "name": "Contacts", "first_party": true, "kind": "native" },
    { "client_id": "contacts-widget", "name": "Contacts widget", "first_party": true, "kind": "spa",
      "grant_types": ["authorization_code"] }
  ]
}"#;

const CALENDAR: &str = "https://calendar.example.com/api";
const BANK: &str = "https://bank.example.com/api";
const EVENTS: &str = "https://events.example.com/api";
const IMAGING: &str = "https://imaging.hospital.example/api";
const CONTACTS: &str = "https://contacts.example.com/api";

/// How the scenario's user answers a consent prompt.
enum Answer<'a> {
    Approve(&'a [&'a str]),
    Deny,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let policy = Policy::from_json(POLICY)?;
    let alice = User::new("alice");
    let remembered = [ConsentRecord {
        user_id: "alice".into(),
        client_id: "calendar-partner".into(),
        audience: Some(CALENDAR.into()),
        scopes: vec!["read:appointments".parse()?],
        expires_at: None,
    }];
    let organizer = User::new("olga").with_role("organizer");
    let participant = User::new("pat").with_role("participant");
    let both = "read:appointments write:appointments";

    println!("Calendar API");
    let partner = Request::new("calendar-partner").audience(CALENDAR).user(&alice);
    show(
        "third-party app asks for the calendar",
        &policy,
        partner.scope(both),
        None,
    );
    let answer = Answer::Approve(&["read:appointments"]);
    show(
        "the user approves reading only",
        &policy,
        partner.scope(both),
        Some(answer),
    );
    let request = partner.scope(both).consents(&remembered);
    show(
        "incremental consent: only the new scope is asked",
        &policy,
        request,
        None,
    );
    let request = partner
        .scope("read:appointments")
        .consents(&remembered)
        .prompt(Prompt::Consent);
    show("prompt=consent asks again", &policy, request, None);
    let first_party = Request::new("calendar-web")
        .audience(CALENDAR)
        .user(&alice)
        .scope(both);
    show("first-party app skips consent", &policy, first_party, None);

    println!("\nBank API");
    let payments = Request::new("payments-app").audience(BANK).user(&alice);
    let request = payments.scope("read:balance transfer:funds");
    show(
        "payment app: the user refuses",
        &policy,
        request,
        Some(Answer::Deny),
    );
    let request = Request::new("bank-app")
        .audience(BANK)
        .user(&alice)
        .scope("read:balance");
    show(
        "even the bank's own app must ask for this API",
        &policy,
        request,
        None,
    );

    println!("\nEvents API (RBAC)");
    let scope = "openid view:events create:events delete:events";
    let events = Request::new("events-web").audience(EVENTS).scope(scope);
    show(
        "an organizer, through the inherited participant role",
        &policy,
        events.user(&organizer),
        None,
    );
    show("a participant", &policy, events.user(&participant), None);

    println!("\nImaging API (machine to machine)");
    let sync = Request::new("pacs-sync")
        .flow(Flow::ClientCredentials)
        .audience(IMAGING);
    show("no scope named: the whole client grant", &policy, sync, None);
    show(
        "beyond the grant, and an OIDC scope",
        &policy,
        sync.scope("openid read:studies delete:studies"),
        None,
    );
    let request = Request::new("pacs-sync").flow(Flow::ClientCredentials);
    show("no audience at all", &policy, request, None);

    println!("\nContacts API (OIDC and API scopes together)");
    let scope = "openid profile offline_access read:contacts";
    let request = Request::new("contacts-app")
        .audience(CONTACTS)
        .user(&alice)
        .scope(scope);
    show("a native app gets a refresh token", &policy, request, None);
    let request = Request::new("contacts-widget")
        .audience(CONTACTS)
        .user(&alice)
        .scope(scope);
    show(
        "a widget without the refresh_token grant type",
        &policy,
        request,
        None,
    );
    Ok(())
}

/// Decides one request, answers a prompt if the scenario says how, and prints it all.
fn show(about: &str, policy: &Policy, request: Request<'_>, answer: Option<Answer<'_>>) {
    println!("  {about}");
    let decision = match policy.grant(&request) {
        Ok(decision) => decision,
        Err(error) => return print_error(&error),
    };
    let grant = match (decision, answer) {
        (Decision::Granted(grant), _) => grant,
        (Decision::ConsentRequired(prompt), answer) => {
            for scope in prompt.scopes() {
                println!("    ask   {:<24} \"{}\"", scope.scope(), scope.description());
            }
            for (scope, reason) in prompt.denied() {
                println!("    deny  {scope:<24} {reason}");
            }
            match answer {
                None => return println!("    => consent required"),
                Some(Answer::Deny) => return print_error(&prompt.deny()),
                Some(Answer::Approve(approved)) => match prompt.approve(approved) {
                    Ok(grant) => grant,
                    Err(error) => return print_error(&error),
                },
            }
        }
    };
    for (scope, verdict) in grant.verdicts() {
        match verdict {
            scope_policy::Verdict::Granted => println!("    grant {scope}"),
            scope_policy::Verdict::Denied(reason) => println!("    deny  {scope:<24} {reason}"),
        }
    }
    let record = grant
        .consent_record()
        .map(|r| format!(", remember consent to {:?}", r.scopes));
    println!(
        "    => scope {:?} for {}{}{}{}",
        grant.scope_string(),
        grant.audience().unwrap_or("no audience"),
        if grant.scope_changed() {
            ", scope changed"
        } else {
            ""
        },
        if grant.refresh_token() {
            ", with a refresh token"
        } else {
            ""
        },
        record.unwrap_or_default(),
    );
}

fn print_error(error: &GrantError) {
    println!("    => error {}: {error} ({})", error.code(), error.description());
}

//! The seed scenarios, decided and explained.
//!
//! ```text
//! cargo run --example quickstart
//! ```
//!
//! One authorization server hosts five APIs: a calendar, a bank, an events
//! service with roles, a hospital's imaging archive and a contacts book. Each
//! scenario below is one request; the output shows the decision, the reason
//! for every scope that was refused, and the consent record to store.

use scope_policy::{ConsentRecord, Decision, Flow, GrantError, Policy, Request, User, Verdict};

const POLICY: &str = r#"{
  "apis": [
    { "audience": "https://calendar.example.com/api", "name": "Calendar API",
      "scopes": [ { "name": "read:appointments", "description": "Read your appointments" },
                  { "name": "write:appointments", "description": "Create and edit your appointments" } ] },
    { "audience": "https://bank.example.com/api", "name": "Bank API", "allow_skipping_consent": false,
      "scopes": [ { "name": "read:balance", "description": "Read your account balance", "required": true },
                  { "name": "transfer:funds", "description": "Transfer funds from your account",
                    "consent": "always" } ] },
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
    { "client_id": "events-tv", "name": "Events on TV", "first_party": true, "kind": "native",
      "grant_types": ["device_code", "refresh_token"] },
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
    let remembered = [ConsentRecord::new("alice", "calendar-partner", Some(CALENDAR))
        .with_scopes(["read:appointments".parse()?])];
    let withdrawn = [ConsentRecord::new("alice", "calendar-partner", Some(CALENDAR))
        .with_declined(["write:appointments".parse()?])];
    let organizer = User::new("olga").with_role("organizer");
    let participant = User::new("pat").with_role("participant");
    let both = "read:appointments write:appointments";

    println!("Calendar API");
    let partner = Request::new("calendar-partner")
        .audience(CALENDAR)
        .user(&alice)
        .now(NOW);
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
    let request = partner.scope(both).consents(&withdrawn);
    show(
        "a scope the user declined is not asked again",
        &policy,
        request,
        None,
    );
    let request = partner.scope(both).consents(&remembered).prompt("consent");
    let answer = Answer::Approve(&["write:appointments"]);
    show(
        "prompt=consent asks again; unticking withdraws",
        &policy,
        request,
        Some(answer),
    );
    let request = partner.scope(both).prompt("none");
    show("prompt=none where the user must be asked", &policy, request, None);
    let first_party = Request::new("calendar-web")
        .audience(CALENDAR)
        .user(&alice)
        .scope(both);
    show("first-party app skips consent", &policy, first_party, None);
    let request = first_party.redirect_uri("http://127.0.0.1:51234/callback");
    show(
        "...unless its redirect is a loopback address",
        &policy,
        request,
        None,
    );
    let refresh = Request::new("calendar-partner")
        .flow(Flow::RefreshToken)
        .original_audience(CALENDAR)
        .original_scope(both)
        .user(&alice)
        .consents(&remembered);
    show(
        "a refresh keeps only what consent still holds",
        &policy,
        refresh,
        None,
    );
    let request = refresh.audience(BANK);
    show(
        "a refresh token never moves to another API",
        &policy,
        request,
        None,
    );

    println!("\nBank API");
    let payments = Request::new("payments-app").audience(BANK).user(&alice).now(NOW);
    let request = payments.scope("read:balance transfer:funds");
    show(
        "payment app: the user refuses",
        &policy,
        request,
        Some(Answer::Deny),
    );
    let answer = Answer::Approve(&["transfer:funds"]);
    show(
        "leaving out a required scope refuses it all",
        &policy,
        request,
        Some(answer),
    );
    let answer = Answer::Approve(&["read:balance", "transfer:funds"]);
    show(
        "transfers are one-time: never remembered",
        &policy,
        request,
        Some(answer),
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
    let request = events.user(&organizer);
    show(
        "an organizer, through the inherited participant role",
        &policy,
        request,
        None,
    );
    show("a participant", &policy, events.user(&participant), None);
    let request = Request::new("events-tv")
        .flow(Flow::DeviceCode)
        .audience(EVENTS)
        .scope("view:events")
        .user(&participant);
    show(
        "the device flow always asks, even a first-party app",
        &policy,
        request,
        None,
    );

    println!("\nImaging API (machine to machine)");
    let sync = Request::new("pacs-sync")
        .flow(Flow::ClientCredentials)
        .audience(IMAGING);
    show("no scope named: the whole client grant", &policy, sync, None);
    let request = sync.scope("openid read:studies delete:studies");
    show("beyond the grant, and an OIDC scope", &policy, request, None);
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

/// The clock the scenarios run at, in unix seconds.
const NOW: u64 = 1_800_000_000;

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
                let mark = if scope.required() { " (required)" } else { "" };
                println!(
                    "    ask   {:<24} \"{}\"{mark}",
                    scope.scope(),
                    scope.description()
                );
            }
            if prompt.unverifiable_redirect() {
                let host = prompt.redirect_uri().and_then(scope_policy::redirect_host);
                println!(
                    "    warn  the redirect to {} is not verifiable",
                    host.unwrap_or_default()
                );
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
            Verdict::Denied(reason) => println!("    deny  {scope:<24} {reason}"),
            _ => println!("    grant {scope}"),
        }
    }
    let record = grant.consent_record().map(|r| {
        format!(
            ", store consent {} declining {}",
            names(&r.scopes),
            names(&r.declined)
        )
    });
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

/// Scopes as a bracketed, space-separated list: `[read:a write:a]`.
fn names(scopes: &[scope_policy::Scope]) -> String {
    let names: Vec<&str> = scopes.iter().map(|scope| scope.as_str()).collect();
    format!("[{}]", names.join(" "))
}

fn print_error(error: &GrantError) {
    println!(
        "    => error {}: {error} ({})",
        error.code(),
        error.error_description()
    );
}

//! The issue's scenarios, end to end: the server binary on 127.0.0.1, a
//! real SQLite file, real HTTP. Each asserts the status, the JSON or the
//! redirect, and the access token's claims after verifying its signature.

mod common;

use common::*;
use reqwest::header::LOCATION;
use reqwest::StatusCode;
use serde_json::Value;

const PARTNER: (&str, &str) = ("calendar-partner", "calendar-partner-secret");
const EVENTS_WEB: (&str, &str) = ("events-web", "events-web-secret");
const PACS: (&str, &str) = ("pacs-sync", "pacs-sync-secret");
const EVENTS_REDIRECT: &str = "https://events.example.com/callback";

/// The partner scheduler asks alice for calendar scopes.
fn partner_request<'a>(scope: &'a str, state: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("response_type", "code"),
        ("client_id", "calendar-partner"),
        ("redirect_uri", PARTNER_REDIRECT),
        ("audience", CALENDAR),
        ("scope", scope),
        ("state", state),
        ("user", "alice"),
    ]
}

/// Follows a redirect with a code to the partner's token response.
async fn partner_tokens(server: &Server, response: &reqwest::Response, state: &str) -> Value {
    let (uri, query) = redirect(response);
    assert_eq!(uri, PARTNER_REDIRECT);
    assert_eq!(query.get("state").map(String::as_str), Some(state));
    let (status, body) = exchange(server, &query["code"], PARTNER, PARTNER_REDIRECT).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    body
}

/// The first-party events app signs `user` in for `scope` of the events API:
/// no consent page, straight to a code, exchanged for the token response.
async fn events_web_tokens(browser: &mut Browser, server: &Server, scope: &str, user: &str) -> Value {
    let pairs = [
        ("response_type", "code"),
        ("client_id", "events-web"),
        ("audience", EVENTS),
        ("scope", scope),
        ("user", user),
    ];
    let response = browser.authorize(server, &pairs).await;
    let (_, query) = redirect(&response);
    let (_, body) = exchange(server, &query["code"], EVENTS_WEB, EVENTS_REDIRECT).await;
    body
}

#[tokio::test]
async fn client_credentials_with_and_without_scope() {
    let dir = TestDir::new();
    let server = Server::start(&dir, &[]);
    let audience = ("audience", IMAGING);

    // Asking beyond the client grant: the crate drops what it may not have.
    let pairs = [
        ("grant_type", "client_credentials"),
        audience,
        ("scope", "read:studies delete:studies"),
    ];
    let (status, body) = token(&server, &pairs, Some(PACS)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["scope"], "read:studies",
        "the scope changed, so the response says it"
    );
    assert!(body.get("refresh_token").is_none() && body.get("id_token").is_none());
    let claims = verify_access_token(&server, body["access_token"].as_str().unwrap(), IMAGING).await;
    assert_eq!(claims["scope"], "read:studies");
    assert_eq!(
        (claims["sub"].as_str(), claims["client_id"].as_str()),
        (Some("pacs-sync"), Some("pacs-sync"))
    );
    assert_eq!(strings(&claims["permissions"]), ["read:studies"]);

    // No scope: the client's whole grant, in definition order.
    let (status, body) = token(
        &server,
        &[("grant_type", "client_credentials"), audience],
        Some(PACS),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["scope"], "read:studies write:reports");
    let claims = verify_access_token(&server, body["access_token"].as_str().unwrap(), IMAGING).await;
    assert_eq!(claims["scope"], "read:studies write:reports");

    // The secret in the form works too (client_secret_post).
    let pairs = [
        ("grant_type", "client_credentials"),
        audience,
        ("client_id", "pacs-sync"),
        ("client_secret", "pacs-sync-secret"),
    ];
    assert_eq!(token(&server, &pairs, None).await.0, StatusCode::OK);

    // A wrong secret: 401 with a Basic challenge.
    let response = client()
        .post(server.url("/token"))
        .basic_auth("pacs-sync", Some("wrong"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("grant_type", "client_credentials"), audience]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.headers().get("www-authenticate").is_some());
    assert_eq!(response.json::<Value>().await.unwrap()["error"], "invalid_client");

    // The crate's refusals, with their RFC 6749 §5.2 statuses.
    let (status, body) = token(&server, &[("grant_type", "client_credentials")], Some(PACS)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );
    let pairs = [
        ("grant_type", "client_credentials"),
        ("audience", "https://nowhere.example"),
    ];
    let (status, body) = token(&server, &pairs, Some(PACS)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_target"))
    );
    let pairs = [("grant_type", "client_credentials"), ("audience", CALENDAR)];
    let (status, body) = token(&server, &pairs, Some(PACS)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("access_denied"))
    );
    let (status, body) = token(&server, &[("grant_type", "password")], Some(PACS)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("unsupported_grant_type"))
    );
    // A client that may not use the flow: the crate says so.
    let pairs = [("grant_type", "client_credentials"), ("audience", EVENTS)];
    let (status, body) = token(&server, &pairs, Some(EVENTS_WEB)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("unauthorized_client"))
    );

    // One audit line per decision, in the crate's JSON.
    let audit = server.audit_until(|audit| {
        audit
            .last()
            .is_some_and(|line| line["error"] == "unauthorized_client")
    });
    let first = &audit[0];
    assert_eq!(first["decision"], "granted");
    assert_eq!(first["flow"], "client_credentials");
    assert_eq!(first["denied"]["delete:studies"], "not_granted_to_client");
    assert_eq!(
        audit
            .iter()
            .filter(|line| line["error"] == "invalid_target")
            .count(),
        1
    );
    assert_eq!(
        audit.len(),
        7,
        "three grants and four refusals by the crate: {audit:#?}"
    );
}

#[tokio::test]
async fn first_party_login_with_rbac_dropping_a_scope() {
    let dir = TestDir::new();
    let server = Server::start(&dir, &[]);
    let mut browser = Browser::new();
    let response = browser
        .authorize(
            &server,
            &[
                ("response_type", "code"),
                ("client_id", "events-web"),
                ("audience", EVENTS),
                ("scope", "openid create:events view:events"),
                ("state", "s1"),
                ("nonce", "n-1"),
                ("user", "pat"),
            ],
        )
        .await;
    // First party: no consent page, straight back with a code (the only
    // registered redirect URI is used when none is named).
    let (uri, query) = redirect(&response);
    assert_eq!(uri, EVENTS_REDIRECT);
    assert_eq!(query["state"], "s1");
    let (status, body) = exchange(&server, &query["code"], EVENTS_WEB, EVENTS_REDIRECT).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["scope"], "openid view:events",
        "RBAC dropped create:events, so scope is sent"
    );
    let claims = verify_access_token(&server, body["access_token"].as_str().unwrap(), EVENTS).await;
    assert_eq!(claims["sub"], "pat");
    assert_eq!(claims["scope"], "openid view:events");
    assert_eq!(strings(&claims["permissions"]), ["view:events"]);
    let id_token = verify(&server, body["id_token"].as_str().unwrap(), "events-web").await;
    assert_eq!(
        (id_token["sub"].as_str(), id_token["nonce"].as_str()),
        (Some("pat"), Some("n-1"))
    );

    // The code is single-use.
    let (status, body) = exchange(&server, &query["code"], EVENTS_WEB, EVENTS_REDIRECT).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );

    // An organizer gets both, and the audit line says why pat did not.
    let body = events_web_tokens(&mut browser, &server, "create:events view:events", "olga").await;
    assert!(
        body.get("scope").is_none(),
        "granted as asked: no scope in the response"
    );
    let claims = verify_access_token(&server, body["access_token"].as_str().unwrap(), EVENTS).await;
    assert_eq!(claims["scope"], "create:events view:events");
    let audit = server.audit_until(|audit| !audit.is_empty());
    assert_eq!(audit[0]["denied"]["create:events"], "not_permitted");
    assert_eq!(audit[0]["user_id"], "pat");

    // OIDC scopes alone, no audience: the token is for the userinfo endpoint.
    let response = browser
        .authorize(
            &server,
            &[
                ("response_type", "code"),
                ("client_id", "events-web"),
                ("scope", "openid"),
                ("user", "pat"),
            ],
        )
        .await;
    let (_, query) = redirect(&response);
    let (_, body) = exchange(&server, &query["code"], EVENTS_WEB, EVENTS_REDIRECT).await;
    let access_token = body["access_token"].as_str().unwrap();
    let userinfo = format!("{}/userinfo", server.issuer);
    let claims = verify_access_token(&server, access_token, &userinfo).await;
    assert_eq!(claims["scope"], "openid");
    let response = client()
        .get(server.url("/userinfo"))
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.json::<Value>().await.unwrap()["sub"], "pat");

    // Without a user, the stand-in asks who signs in.
    let response = browser
        .authorize(
            &server,
            &[
                ("response_type", "code"),
                ("client_id", "events-web"),
                ("scope", "openid"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.text().await.unwrap().contains("name=\"user\""));
}

#[tokio::test]
async fn third_party_consent_with_partial_approval() {
    let dir = TestDir::new();
    let server = Server::start(&dir, &[]);
    let mut browser = Browser::new();
    let asked = "openid read:appointments write:appointments";
    let page = consent_page(browser.authorize(&server, &partner_request(asked, "st")).await).await;
    assert_eq!(
        page.scope_names(),
        ["openid", "read:appointments", "write:appointments"]
    );
    assert!(page.scopes.iter().all(|(_, required)| !required));
    assert!(
        page.html.contains("Read your appointments"),
        "each scope with its description"
    );
    assert_eq!(page.warning_host, None, "an https redirect is verifiable");
    assert!(browser.cookie.is_some(), "the form is tied to a session cookie");

    let response = browser
        .answer(&server, &page, "approve", &["openid", "read:appointments"])
        .await;
    let body = partner_tokens(&server, &response, "st").await;
    assert_eq!(body["scope"], "openid read:appointments");
    let claims = verify_access_token(&server, body["access_token"].as_str().unwrap(), CALENDAR).await;
    assert_eq!(claims["scope"], "openid read:appointments");
    assert_eq!(
        strings(&claims["permissions"]),
        Vec::<&str>::new(),
        "no RBAC on the calendar"
    );

    // The new record, as the crate made it, is in the audit line.
    let answered = server
        .audit_until(|audit| audit.iter().any(|line| line["consent_record"].is_object()))
        .into_iter()
        .find(|line| line["consent_record"].is_object())
        .unwrap();
    assert_eq!(
        strings(&answered["consent_record"]["scopes"]),
        ["openid", "read:appointments"]
    );
    assert_eq!(
        strings(&answered["consent_record"]["declined"]),
        ["write:appointments"]
    );
    assert!(
        answered["consent_record"]["expires_at"].is_u64(),
        "the policy's consent_lifetime"
    );

    // Next login, same scopes: nothing to ask; what was declined is not asked again.
    let response = browser.authorize(&server, &partner_request(asked, "st2")).await;
    let body = partner_tokens(&server, &response, "st2").await;
    assert_eq!(body["scope"], "openid read:appointments");

    // Denying a prompt: access_denied to the client, with its state.
    let page = consent_page(
        browser
            .authorize(
                &server,
                &partner_request("openid read:appointments", "st3")
                    .into_iter()
                    .chain([("prompt", "consent")])
                    .collect::<Vec<_>>(),
            )
            .await,
    )
    .await;
    let (_, query) = redirect(&browser.answer(&server, &page, "deny", &[]).await);
    assert_eq!(
        (query["error"].as_str(), query["state"].as_str()),
        ("access_denied", "st3")
    );
}

#[tokio::test]
async fn incremental_consent_on_the_next_login() {
    let dir = TestDir::new();
    let server = Server::start(&dir, &[]);
    let mut browser = Browser::new();
    let page = consent_page(
        browser
            .authorize(&server, &partner_request("openid read:appointments", "a"))
            .await,
    )
    .await;
    let response = browser
        .answer(&server, &page, "approve", &["openid", "read:appointments"])
        .await;
    partner_tokens(&server, &response, "a").await;

    // The next login asks one more scope: only that one is on the prompt.
    let asked = "openid read:appointments write:appointments";
    let page = consent_page(browser.authorize(&server, &partner_request(asked, "b")).await).await;
    assert_eq!(page.scope_names(), ["write:appointments"]);
    assert!(page.html.contains("Already allowed: openid, read:appointments"));
    let response = browser
        .answer(&server, &page, "approve", &["write:appointments"])
        .await;
    let body = partner_tokens(&server, &response, "b").await;
    assert!(body.get("scope").is_none(), "granted as asked");
    let claims = verify_access_token(&server, body["access_token"].as_str().unwrap(), CALENDAR).await;
    assert_eq!(claims["scope"], asked);

    // And the one after asks nothing.
    let response = browser.authorize(&server, &partner_request(asked, "c")).await;
    let body = partner_tokens(&server, &response, "c").await;
    let claims = verify_access_token(&server, body["access_token"].as_str().unwrap(), CALENDAR).await;
    assert_eq!(claims["scope"], asked);
}

#[tokio::test]
async fn tampered_approvals_grant_nothing() {
    let dir = TestDir::new();
    let server = Server::start(&dir, &[]);
    let mut browser = Browser::new();

    // Approving a scope that was not on the prompt: invalid_request, no code.
    let page = consent_page(
        browser
            .authorize(&server, &partner_request("read:appointments", "t1"))
            .await,
    )
    .await;
    assert_eq!(page.scope_names(), ["read:appointments"]);
    let response = browser
        .answer(
            &server,
            &page,
            "approve",
            &["read:appointments", "write:appointments"],
        )
        .await;
    let (uri, query) = redirect(&response);
    assert_eq!(uri, PARTNER_REDIRECT);
    assert_eq!(
        (query["error"].as_str(), query["state"].as_str()),
        ("invalid_request", "t1")
    );
    assert!(!query.contains_key("code"));
    // Nothing was stored: the next login asks again.
    let page = consent_page(
        browser
            .authorize(&server, &partner_request("read:appointments", "t2"))
            .await,
    )
    .await;
    assert_eq!(page.scope_names(), ["read:appointments"]);

    // The same form posted from another browser (no session cookie): refused on a page.
    let mut other = Browser::new();
    let response = other
        .answer(&server, &page, "approve", &["read:appointments"])
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(response.headers().get(LOCATION).is_none());

    // A required scope left out (the locked checkbox removed): access_denied.
    let payments = [
        ("response_type", "code"),
        ("client_id", "payments-app"),
        ("audience", BANK),
        ("scope", "read:balance transfer:funds"),
        ("state", "t3"),
        ("user", "alice"),
    ];
    let page = consent_page(browser.authorize(&server, &payments).await).await;
    assert_eq!(
        page.scopes,
        [
            ("read:balance".to_owned(), true),
            ("transfer:funds".to_owned(), false)
        ]
    );
    let (uri, query) = redirect(
        &browser
            .answer(&server, &page, "approve", &["transfer:funds"])
            .await,
    );
    assert_eq!(uri, "https://payments.example.net/callback");
    assert_eq!(query["error"], "access_denied");
    // An answer to a form already answered: an error page, never a code.
    let response = browser.answer(&server, &page, "approve", &["read:balance"]).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.headers().get(LOCATION).is_none());
}

#[tokio::test]
async fn a_prompt_that_changed_between_showing_and_answering() {
    let dir = TestDir::new();
    let server = Server::start(&dir, &[]);
    let mut browser = Browser::new();
    let page = consent_page(
        browser
            .authorize(
                &server,
                &partner_request("read:appointments write:appointments", "p"),
            )
            .await,
    )
    .await;
    assert_eq!(
        page.scopes,
        [
            ("read:appointments".to_owned(), false),
            ("write:appointments".to_owned(), false)
        ]
    );

    // The operator makes write:appointments required and reloads.
    dir.edit_policy(
        r#"{ name = "write:appointments", description = "Create and edit your appointments" }"#,
        r#"{ name = "write:appointments", description = "Create and edit your appointments", required = true }"#,
    );
    let reload = client()
        .post(server.url("/admin/reload"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(reload.status(), StatusCode::OK);

    // The user answers the page they saw: the crate says the prompt changed,
    // and the server shows the new one instead of granting.
    let response = browser
        .answer(&server, &page, "approve", &["read:appointments"])
        .await;
    let new_page = consent_page(response).await;
    assert!(new_page.notice, "the page says the request changed");
    assert_ne!(new_page.prompt_id, page.prompt_id);
    assert_eq!(new_page.pending, page.pending, "the same pending request");
    assert_eq!(
        new_page.scopes,
        [
            ("read:appointments".to_owned(), false),
            ("write:appointments".to_owned(), true)
        ]
    );
    let changed = |line: &Value| {
        line["error"] == "invalid_request"
            && line["message"] == "the consent prompt changed since it was shown"
    };
    server.audit_until(|audit| audit.iter().any(changed));

    // Answering the new page works.
    let response = browser
        .answer(
            &server,
            &new_page,
            "approve",
            &["read:appointments", "write:appointments"],
        )
        .await;
    let body = partner_tokens(&server, &response, "p").await;
    let claims = verify_access_token(&server, body["access_token"].as_str().unwrap(), CALENDAR).await;
    assert_eq!(claims["scope"], "read:appointments write:appointments");

    // The admin endpoint wants its token.
    let response = client().post(server.url("/admin/reload")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn hot_reload_keeps_the_running_policy_when_the_file_is_broken() {
    let dir = TestDir::new();
    let server = Server::start(&dir, &[]);
    let cc = [("grant_type", "client_credentials"), ("audience", IMAGING)];

    // Two problems at once: an unknown inherited role and a reserved scope name.
    let good = std::fs::read_to_string(dir.policy()).unwrap();
    dir.edit_policy(r#"inherits = ["participant"]"#, r#"inherits = ["nobody"]"#);
    dir.edit_policy(r#"{ name = "read:contacts""#, r#"{ name = "openid""#);
    let response = client()
        .post(server.url("/admin/reload"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["reloaded"], false);
    let paths: Vec<&str> = body["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    assert!(paths.contains(&"roles[1].inherits[0]"), "{paths:?}");
    assert!(
        paths.iter().any(|path| path.starts_with("apis[4].scopes[0]")),
        "{paths:?}"
    );
    // Every problem is logged with its path.
    for path in &paths {
        server.wait_log(|line| line["message"] == "policy problem" && line["path"] == *path);
    }
    // The running policy stays.
    assert_eq!(token(&server, &cc, Some(PACS)).await.0, StatusCode::OK);

    // SIGHUP with a good file that no longer has the machine client: swapped in.
    std::fs::write(
        dir.policy(),
        good.replace("client_id = \"pacs-sync\"", "client_id = \"pacs-sync-retired\""),
    )
    .unwrap();
    server.signal("HUP");
    server.wait_log(|line| line["message"] == "policy reloaded" && line["trigger"] == "sighup");
    let (status, body) = token(&server, &cc, Some(PACS)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );

    // A syntax error, through SIGHUP: logged, and the last good policy stays.
    std::fs::write(dir.policy(), "[[apis]\n").unwrap();
    server.signal("HUP");
    server.wait_log(|line| {
        line["message"] == "policy reload failed: the running policy stays" && line["trigger"] == "sighup"
    });
    let (status, _) = token(&server, &cc, Some(("pacs-sync-retired", "pacs-sync-secret"))).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn withdrawal_through_prompt_consent_reaches_the_next_refresh() {
    let dir = TestDir::new();
    let server = Server::start(&dir, &[]);
    let mut browser = Browser::new();
    let asked = "offline_access read:appointments write:appointments";
    let page = consent_page(browser.authorize(&server, &partner_request(asked, "w1")).await).await;
    let response = browser
        .answer(
            &server,
            &page,
            "approve",
            &["offline_access", "read:appointments", "write:appointments"],
        )
        .await;
    let first = partner_tokens(&server, &response, "w1").await;
    let old_refresh = first["refresh_token"]
        .as_str()
        .expect("offline_access gives a refresh token")
        .to_owned();

    // The user comes back with prompt=consent and unticks write:appointments.
    let mut again = partner_request(asked, "w2");
    again.push(("prompt", "consent"));
    let page = consent_page(browser.authorize(&server, &again).await).await;
    assert_eq!(
        page.scope_names(),
        ["offline_access", "read:appointments", "write:appointments"]
    );
    let response = browser
        .answer(
            &server,
            &page,
            "approve",
            &["offline_access", "read:appointments"],
        )
        .await;
    let second = partner_tokens(&server, &response, "w2").await;
    assert_eq!(second["scope"], "offline_access read:appointments");

    // The refresh token from before the withdrawal no longer carries it.
    let (status, body) = token(
        &server,
        &[("grant_type", "refresh_token"), ("refresh_token", &old_refresh)],
        Some(PARTNER),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["scope"], "offline_access read:appointments");
    let claims = verify_access_token(&server, body["access_token"].as_str().unwrap(), CALENDAR).await;
    assert_eq!(claims["scope"], "offline_access read:appointments");
    let refusal = server
        .audit_until(|audit| audit.iter().any(|line| line["flow"] == "refresh_token"))
        .into_iter()
        .rev()
        .find(|line| line["flow"] == "refresh_token")
        .unwrap();
    assert_eq!(refusal["denied"]["write:appointments"], "consent_missing");

    // The refresh token rotated: the old one is spent, the new one works.
    let rotated = body["refresh_token"]
        .as_str()
        .expect("a new refresh token")
        .to_owned();
    assert_ne!(rotated, old_refresh);
    let (status, body) = token(
        &server,
        &[("grant_type", "refresh_token"), ("refresh_token", &old_refresh)],
        Some(PARTNER),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let (status, _) = token(
        &server,
        &[("grant_type", "refresh_token"), ("refresh_token", &rotated)],
        Some(PARTNER),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_refresh_to_another_audience_is_refused() {
    let dir = TestDir::new();
    let server = Server::start(&dir, &[]);
    let mut browser = Browser::new();
    let body = events_web_tokens(&mut browser, &server, "offline_access view:events", "olga").await;
    let refresh = body["refresh_token"]
        .as_str()
        .expect("a refresh token")
        .to_owned();

    // Another API with the same client: invalid_target, and the token survives.
    let pairs = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh.as_str()),
        ("audience", CALENDAR),
    ];
    let (status, body) = token(&server, &pairs, Some(EVENTS_WEB)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_target")),
        "{body}"
    );
    let pairs = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh.as_str()),
        ("resource", CALENDAR),
    ];
    let (status, body) = token(&server, &pairs, Some(EVENTS_WEB)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_target"))
    );
    // Wider than the original grant: invalid_scope.
    let pairs = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh.as_str()),
        ("scope", "create:events"),
    ];
    let (status, body) = token(&server, &pairs, Some(EVENTS_WEB)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_scope"))
    );
    // Another client cannot spend it.
    let pairs = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh.as_str()),
    ];
    let (status, body) = token(&server, &pairs, Some(PARTNER)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );

    // Its own audience, narrowed: fine, and the refresh token is kept.
    let pairs = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh.as_str()),
        ("audience", EVENTS),
        ("scope", "view:events"),
    ];
    let (status, body) = token(&server, &pairs, Some(EVENTS_WEB)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body["refresh_token"].is_string(),
        "a narrowed refresh keeps its refresh token"
    );
    let claims = verify_access_token(&server, body["access_token"].as_str().unwrap(), EVENTS).await;
    assert_eq!(
        (claims["scope"].as_str(), claims["aud"].as_str()),
        (Some("view:events"), Some(EVENTS))
    );
}

#[tokio::test]
async fn consent_records_survive_a_restart() {
    let dir = TestDir::new();
    // A fixed issuer: the port changes with the restart, the issuer must not.
    let issuer = ["--issuer", "https://auth.example.test"];
    let server = Server::start(&dir, &issuer);
    let mut browser = Browser::new();
    let asked = "offline_access read:appointments";
    let page = consent_page(browser.authorize(&server, &partner_request(asked, "r1")).await).await;
    let response = browser
        .answer(
            &server,
            &page,
            "approve",
            &["offline_access", "read:appointments"],
        )
        .await;
    let before = partner_tokens(&server, &response, "r1").await;
    let kid = jsonwebtoken::decode_header(before["access_token"].as_str().unwrap())
        .unwrap()
        .kid;
    server.stop();

    let server = Server::start(&dir, &issuer);
    // The record is in the file: no consent page this time.
    let response = browser.authorize(&server, &partner_request(asked, "r2")).await;
    let after = partner_tokens(&server, &response, "r2").await;
    let claims = verify_access_token(&server, after["access_token"].as_str().unwrap(), CALENDAR).await;
    assert_eq!(claims["scope"], asked);
    // The refresh token issued before the restart still works, and the key
    // from the environment is the same one.
    let refresh = before["refresh_token"].as_str().unwrap();
    let (status, body) = token(
        &server,
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
        Some(PARTNER),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        jsonwebtoken::decode_header(body["access_token"].as_str().unwrap())
            .unwrap()
            .kid,
        kid
    );
    verify_access_token(&server, before["access_token"].as_str().unwrap(), CALENDAR).await;
}

#[tokio::test]
async fn an_unknown_client_is_never_redirected() {
    let dir = TestDir::new();
    let server = Server::start(&dir, &[]);
    let mut browser = Browser::new();
    let response = browser
        .authorize(
            &server,
            &[
                ("response_type", "code"),
                ("client_id", "ghost"),
                ("redirect_uri", "https://attacker.example/cb"),
                ("scope", "openid"),
                ("user", "alice"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.headers().get(LOCATION).is_none());
    let html = response.text().await.unwrap();
    assert!(html.contains("data-error=\"invalid_client\""));
    assert!(!html.contains("attacker.example"));
    let audit = server.audit_until(|audit| !audit.is_empty());
    assert_eq!(audit[0]["error"], "invalid_client");

    // A known client with a redirect URI it never registered: a page too.
    let mut pairs = partner_request("read:appointments", "x");
    pairs[2] = ("redirect_uri", "https://attacker.example/cb");
    let response = browser.authorize(&server, &pairs).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.headers().get(LOCATION).is_none());

    // A registered one gets the crate's redirectable errors: prompt=none
    // where the user must be asked, and an unknown audience.
    let mut pairs = partner_request("read:appointments", "y");
    pairs.push(("prompt", "none"));
    let (uri, query) = redirect(&browser.authorize(&server, &pairs).await);
    assert_eq!(uri, PARTNER_REDIRECT);
    assert_eq!(
        (query["error"].as_str(), query["state"].as_str()),
        ("consent_required", "y")
    );
    let mut pairs = partner_request("read:appointments", "z");
    pairs[3] = ("audience", "https://nowhere.example");
    let (_, query) = redirect(&browser.authorize(&server, &pairs).await);
    assert_eq!(query["error"], "invalid_target");
}

#[tokio::test]
async fn an_unverifiable_redirect_warns_and_asks_even_a_first_party_app() {
    let dir = TestDir::new();
    let server = Server::start_with_dev_key(&dir);
    server.wait_log(|line| {
        line["level"] == "WARN"
            && line["message"]
                .as_str()
                .is_some_and(|m| m.contains("DEVELOPMENT key"))
    });
    let mut browser = Browser::new();
    let (verifier, challenge) = pkce();
    let request = [
        ("response_type", "code"),
        ("client_id", "contacts-app"),
        ("audience", CONTACTS),
        ("scope", "openid read:contacts"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("user", "alice"),
    ];
    let page = consent_page(browser.authorize(&server, &request).await).await;
    assert_eq!(page.warning_host.as_deref(), Some("127.0.0.1"));
    assert_eq!(page.scope_names(), ["openid", "read:contacts"]);
    let (uri, query) = redirect(
        &browser
            .answer(&server, &page, "approve", &["openid", "read:contacts"])
            .await,
    );
    assert_eq!(uri, "http://127.0.0.1:7000/callback");

    // A public client: PKCE instead of a secret.
    let exchange = [
        ("grant_type", "authorization_code"),
        ("client_id", "contacts-app"),
        ("code", query["code"].as_str()),
        ("code_verifier", verifier.as_str()),
    ];
    let (status, body) = token(&server, &exchange, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let claims = verify_access_token(&server, body["access_token"].as_str().unwrap(), CONTACTS).await;
    assert_eq!(claims["scope"], "openid read:contacts");

    // Without PKCE, a public client's request is refused to its redirect URI.
    let without = &request[..4];
    let (_, query) = redirect(
        &browser
            .authorize(&server, &[without, &[("user", "alice")]].concat())
            .await,
    );
    assert_eq!(query["error"], "invalid_request");
}

#[tokio::test]
async fn the_device_flow() {
    let dir = TestDir::new();
    let server = Server::start(&dir, &["--device-poll-interval", "0"]);
    let tv = [("client_id", "events-tv")];
    let scope = [
        ("audience", EVENTS),
        ("scope", "offline_access view:events create:events"),
    ];
    let (status, codes) = post_json(
        &server,
        "/device/authorize",
        &[&tv[..], &scope[..]].concat(),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{codes}");
    let device_code = codes["device_code"].as_str().unwrap().to_owned();
    let user_code = codes["user_code"].as_str().unwrap().to_owned();
    assert_eq!(codes["verification_uri"], server.url("/device"));
    assert_eq!(user_code.len(), 9);
    let poll = [
        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ("device_code", device_code.as_str()),
        tv[0],
    ];
    let (status, body) = token(&server, &poll, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("authorization_pending"))
    );

    // On the phone: the verification page, the code typed loosely, the prompt.
    let mut phone = Browser::new();
    let page = phone
        .get(codes["verification_uri_complete"].as_str().unwrap())
        .await;
    assert!(page.text().await.unwrap().contains(&user_code));
    let typed = user_code.replace('-', " ").to_lowercase();
    let response = phone
        .post_form(&server.url("/device"), &[("user_code", &typed), ("user", "pat")])
        .await;
    let page = consent_page(response).await;
    // A first-party app, yet asked: the device flow always prompts. RBAC
    // refused create:events before the prompt.
    assert_eq!(page.scope_names(), ["offline_access", "view:events"]);
    let response = phone
        .answer(&server, &page, "approve", &["offline_access", "view:events"])
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.text().await.unwrap().contains("return to your device"));

    let (status, body) = token(&server, &poll, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["scope"], "offline_access view:events");
    assert!(body["refresh_token"].is_string());
    let claims = verify_access_token(&server, body["access_token"].as_str().unwrap(), EVENTS).await;
    assert_eq!(
        (claims["sub"].as_str(), claims["client_id"].as_str()),
        (Some("pat"), Some("events-tv"))
    );
    assert_eq!(strings(&claims["permissions"]), ["view:events"]);
    let (status, body) = token(&server, &poll, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant")),
        "used once"
    );

    // Another request, denied on the phone: access_denied to the device.
    let (_, codes) = post_json(
        &server,
        "/device/authorize",
        &[&tv[..], &scope[..]].concat(),
        None,
    )
    .await;
    let user_code = codes["user_code"].as_str().unwrap();
    let page = consent_page(
        phone
            .post_form(
                &server.url("/device"),
                &[("user_code", user_code), ("user", "olga")],
            )
            .await,
    )
    .await;
    let response = phone.answer(&server, &page, "deny", &[]).await;
    assert!(response.text().await.unwrap().contains("denied"));
    let poll = [
        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ("device_code", codes["device_code"].as_str().unwrap()),
        tv[0],
    ];
    let (status, body) = token(&server, &poll, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("access_denied"))
    );

    // The device authorization request is checked by the crate up front.
    let (status, body) = post_json(&server, "/device/authorize", &[("client_id", "ghost")], None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
    let (status, body) = post_json(
        &server,
        "/device/authorize",
        &[tv[0], ("audience", "https://nowhere.example")],
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_target"))
    );
    let (status, body) = post_json(
        &server,
        "/device/authorize",
        &[("client_id", "contacts-app")],
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("unauthorized_client"))
    );
}

#[tokio::test]
async fn the_device_flow_slows_down_and_expires() {
    let dir = TestDir::new();
    let server = Server::start(&dir, &["--device-poll-interval", "5"]);
    let start = [
        ("client_id", "events-tv"),
        ("audience", EVENTS),
        ("scope", "view:events"),
    ];
    let (_, codes) = post_json(&server, "/device/authorize", &start, None).await;
    assert_eq!(codes["interval"], 5);
    let poll = [
        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ("device_code", codes["device_code"].as_str().unwrap()),
        ("client_id", "events-tv"),
    ];
    let (_, body) = token(&server, &poll, None).await;
    assert_eq!(body["error"], "authorization_pending");
    let (_, body) = token(&server, &poll, None).await;
    assert_eq!(body["error"], "slow_down", "polled again at once");
    drop(server);

    let dir = TestDir::new();
    let server = Server::start(&dir, &["--device-code-ttl", "0"]);
    let (_, codes) = post_json(&server, "/device/authorize", &start, None).await;
    let poll = [
        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ("device_code", codes["device_code"].as_str().unwrap()),
        ("client_id", "events-tv"),
    ];
    let (status, body) = token(&server, &poll, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("expired_token"))
    );
}

//! The harness of the end-to-end tests: the real server binary on
//! 127.0.0.1:0 against a SQLite file in a temporary folder, driven over
//! HTTP with reqwest (redirects are never followed: tests read `Location`).

#![allow(dead_code)] // each test binary uses part of the harness

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::header::{AUTHORIZATION, COOKIE, LOCATION, SET_COOKIE};
use reqwest::StatusCode;
use serde_json::Value;
use sha2::{Digest, Sha256};

pub const CALENDAR: &str = "https://calendar.example.com/api";
pub const BANK: &str = "https://bank.example.com/api";
pub const EVENTS: &str = "https://events.example.com/api";
pub const IMAGING: &str = "https://imaging.hospital.example/api";
pub const CONTACTS: &str = "https://contacts.example.com/api";
pub const ADMIN_TOKEN: &str = "test-admin-token";

/// A test-only Ed25519 key (PKCS#8 PEM), so tokens verify across a restart.
pub const TEST_SIGNING_KEY: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIIVQ90B41iuM8UXB/UIDy5somYFZ0s/x3l+a67u64Xly
-----END PRIVATE KEY-----
";

/// How long to wait for the server to start or to log a line: a bound on a
/// wait for an event, not a timing under test.
const PATIENCE: Duration = Duration::from_secs(30);

/// A temporary folder with a copy of the sample policy and users; removed on drop.
pub struct TestDir {
    pub path: PathBuf,
}

impl TestDir {
    pub fn new() -> Self {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = std::env::temp_dir().join(format!(
            "scope-policy-server-{}-{}-{nanos}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).expect("temp dir");
        let here = Path::new(env!("CARGO_MANIFEST_DIR"));
        for file in ["policy.toml", "users.toml"] {
            std::fs::copy(here.join(file), path.join(file)).expect("copy the sample files");
        }
        TestDir { path }
    }

    pub fn policy(&self) -> PathBuf {
        self.path.join("policy.toml")
    }

    pub fn db(&self) -> PathBuf {
        self.path.join("consent.sqlite")
    }

    /// Edits the policy file: replaces `from` (which must be there) with `to`.
    #[track_caller]
    pub fn edit_policy(&self, from: &str, to: &str) {
        let text = std::fs::read_to_string(self.policy()).expect("read the policy");
        assert!(text.contains(from), "the policy has no {from:?}");
        std::fs::write(self.policy(), text.replacen(from, to, 1)).expect("write the policy");
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// The server binary, running.
pub struct Server {
    child: Child,
    pub base: String,
    /// The tokens' `iss`.
    pub issuer: String,
    logs: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Starts the server on the folder's policy and database, on a free port.
    pub fn start(dir: &TestDir, args: &[&str]) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_scope-policy-server"));
        command
            .arg("--policy")
            .arg(dir.policy())
            .arg("--db")
            .arg(dir.db())
            .args(["--listen", "127.0.0.1:0", "--admin-token", ADMIN_TOKEN])
            .args(args)
            .env("SCOPE_SERVER_SIGNING_KEY", TEST_SIGNING_KEY)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        Server::spawn(command)
    }

    /// Starts the server without a signing key: it generates a development key.
    pub fn start_with_dev_key(dir: &TestDir) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_scope-policy-server"));
        command
            .arg("--policy")
            .arg(dir.policy())
            .arg("--db")
            .arg(dir.db())
            .args(["--listen", "127.0.0.1:0"])
            .env_remove("SCOPE_SERVER_SIGNING_KEY")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        Server::spawn(command)
    }

    fn spawn(mut command: Command) -> Server {
        let mut child = command.spawn().expect("start the server");
        let stdout = child.stdout.take().expect("stdout");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&logs);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                sink.lock().expect("logs").push(line);
            }
        });
        let mut server = Server {
            child,
            base: String::new(),
            issuer: String::new(),
            logs,
        };
        let listening = server.wait_log(|line| line["message"] == "listening");
        server.base = format!("http://{}", listening["addr"].as_str().expect("addr"));
        server.issuer = listening["issuer"].as_str().expect("issuer").to_owned();
        server
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Every log line so far, parsed.
    pub fn logs(&self) -> Vec<Value> {
        let lines = self.logs.lock().expect("logs").clone();
        lines
            .iter()
            .map(|line| {
                serde_json::from_str(line).unwrap_or_else(|_| panic!("a log line is not JSON: {line}"))
            })
            .collect()
    }

    /// The audit lines, each the crate's JSON of one decision, once they
    /// satisfy `ready`.
    ///
    /// The server writes a decision's line before it answers, but the line
    /// reaches this process through a pipe and a reader thread, so a test
    /// that has its answer may not have the line yet. `ready` names the line
    /// the test waits for (lines arrive in order, so every earlier one is
    /// there too).
    #[track_caller]
    pub fn audit_until(&self, ready: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let start = Instant::now();
        loop {
            let audit = self.audit_so_far();
            if ready(&audit) {
                return audit;
            }
            assert!(
                start.elapsed() < PATIENCE,
                "the awaited audit line never came; audit: {audit:#?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn audit_so_far(&self) -> Vec<Value> {
        self.logs()
            .into_iter()
            .filter(|line| line["target"] == "audit")
            .map(|line| {
                assert!(line["endpoint"].is_string(), "an audit line names its endpoint");
                serde_json::from_str(line["decision"].as_str().expect("decision")).expect("the crate's JSON")
            })
            .collect()
    }

    /// Waits until a log line satisfies `matches`, and returns it.
    #[track_caller]
    pub fn wait_log(&self, matches: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        loop {
            if let Some(line) = self.logs().into_iter().find(|line| matches(line)) {
                return line;
            }
            assert!(
                start.elapsed() < PATIENCE,
                "no such log line; logs: {:#?}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends a signal with the `kill` command.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.pid().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Stops the server gracefully (SIGTERM) and waits for it.
    pub fn stop(mut self) {
        self.signal("TERM");
        let status = self.child.wait().expect("wait");
        assert!(status.success(), "the server stops cleanly: {status}");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A browser: no automatic redirects, and the session cookie kept by hand.
pub struct Browser {
    pub http: reqwest::Client,
    pub cookie: Option<String>,
}

impl Browser {
    pub fn new() -> Self {
        Browser {
            http: client(),
            cookie: None,
        }
    }

    fn keep_cookie(&mut self, response: &reqwest::Response) {
        if let Some(value) = response.headers().get(SET_COOKIE) {
            let value = value.to_str().expect("cookie");
            let pair = value.split(';').next().expect("name=value");
            self.cookie = Some(pair.to_owned());
        }
    }

    pub async fn get(&mut self, url: &str) -> reqwest::Response {
        let request = self.http.get(url);
        self.send(request).await
    }

    pub async fn post_form(&mut self, url: &str, pairs: &[(&str, &str)]) -> reqwest::Response {
        let request = self
            .http
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(pairs));
        self.send(request).await
    }

    /// Sends with the session cookie, and keeps the one the answer sets.
    async fn send(&mut self, mut request: reqwest::RequestBuilder) -> reqwest::Response {
        if let Some(cookie) = &self.cookie {
            request = request.header(COOKIE, cookie);
        }
        let response = request.send().await.expect("the server answers");
        self.keep_cookie(&response);
        response
    }

    /// `GET /authorize` with these parameters.
    pub async fn authorize(&mut self, server: &Server, pairs: &[(&str, &str)]) -> reqwest::Response {
        self.get(&format!("{}?{}", server.url("/authorize"), form(pairs)))
            .await
    }

    /// Answers a consent page: `approve` with these scopes, or `deny`.
    pub async fn answer(
        &mut self,
        server: &Server,
        page: &ConsentPage,
        action: &str,
        scopes: &[&str],
    ) -> reqwest::Response {
        let mut pairs = vec![
            ("pending", page.pending.as_str()),
            ("prompt_id", page.prompt_id.as_str()),
            ("action", action),
        ];
        pairs.extend(scopes.iter().map(|scope| ("scope", *scope)));
        self.post_form(&server.url("/consent"), &pairs).await
    }
}

/// An HTTP client that never follows redirects.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// `application/x-www-form-urlencoded` text.
pub fn form(pairs: &[(&str, &str)]) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        serializer.append_pair(name, value);
    }
    serializer.finish()
}

/// A PKCE pair (RFC 7636): a verifier and its S256 challenge.
pub fn pkce() -> (String, String) {
    let verifier = format!(
        "verifier-{}-0123456789abcdefghijklmnopqrstuvwxyz",
        std::process::id()
    );
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// The redirect a response makes: the URI before the query, and the query's pairs.
#[track_caller]
pub fn redirect(response: &reqwest::Response) -> (String, HashMap<String, String>) {
    assert_eq!(response.status(), StatusCode::FOUND, "a 302");
    let location = response
        .headers()
        .get(LOCATION)
        .expect("Location")
        .to_str()
        .expect("text");
    let (base, query) = location.split_once('?').unwrap_or((location, ""));
    let pairs = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    (base.to_owned(), pairs)
}

/// What a test reads off the consent page: the form's hidden fields and the scopes listed.
#[derive(Debug, Clone)]
pub struct ConsentPage {
    pub pending: String,
    pub prompt_id: String,
    /// (scope, required), in page order.
    pub scopes: Vec<(String, bool)>,
    /// The redirect host the warning names, if there is a warning.
    pub warning_host: Option<String>,
    pub notice: bool,
    pub html: String,
}

impl ConsentPage {
    #[track_caller]
    pub fn parse(html: &str) -> Self {
        let attribute = |after: &str, name: &str| -> Option<String> {
            let start = html.find(after)?;
            let rest = &html[start..];
            let at = rest.find(&format!("{name}=\""))? + name.len() + 2;
            let end = rest[at..].find('"')?;
            Some(unescape(&rest[at..at + end]))
        };
        let mut scopes = Vec::new();
        for piece in html.split("<li data-scope=\"").skip(1) {
            let end = piece.find('"').expect("scope attribute");
            let scope = unescape(&piece[..end]);
            let required = piece[end..].starts_with("\" data-required=\"true\"");
            scopes.push((scope, required));
        }
        ConsentPage {
            pending: attribute("name=\"pending\"", "value").expect("a pending field: not a consent page?"),
            prompt_id: attribute("name=\"prompt_id\"", "value").expect("a prompt_id field"),
            scopes,
            warning_host: attribute("class=\"warning\"", "data-redirect-host"),
            notice: html.contains("class=\"notice\""),
            html: html.to_owned(),
        }
    }

    pub fn scope_names(&self) -> Vec<&str> {
        self.scopes.iter().map(|(scope, _)| scope.as_str()).collect()
    }
}

/// Reads a consent page from a response, which must be a 200.
pub async fn consent_page(response: reqwest::Response) -> ConsentPage {
    assert_eq!(response.status(), StatusCode::OK, "a consent page");
    ConsentPage::parse(&response.text().await.expect("body"))
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// `POST /token` with these pairs, and HTTP Basic credentials if given.
pub async fn token(
    server: &Server,
    pairs: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> (StatusCode, Value) {
    post_json(server, "/token", pairs, basic).await
}

/// `POST` a form to `path` and read the JSON answer.
pub async fn post_json(
    server: &Server,
    path: &str,
    pairs: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> (StatusCode, Value) {
    let mut request = client()
        .post(server.url(path))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(pairs));
    if let Some((id, secret)) = basic {
        request = request.header(
            AUTHORIZATION,
            format!("Basic {}", STANDARD.encode(format!("{id}:{secret}"))),
        );
    }
    let response = request.send().await.expect("POST");
    let status = response.status();
    if path == "/token" {
        assert_eq!(
            response
                .headers()
                .get("cache-control")
                .and_then(|v| v.to_str().ok()),
            Some("no-store"),
            "token responses are not cached"
        );
    }
    (status, response.json().await.expect("a JSON body"))
}

/// Verifies an access token's signature against the server's JWKS, its
/// RFC 9068 header and its registered claims, and returns its claims.
pub async fn verify_access_token(server: &Server, token: &str, audience: &str) -> Value {
    let header = jsonwebtoken::decode_header(token).expect("a JWT header");
    assert_eq!(header.typ.as_deref(), Some("at+jwt"), "RFC 9068 §2.1");
    assert_eq!(header.alg, Algorithm::EdDSA);
    let claims = verify(server, token, audience).await;
    for claim in ["iss", "exp", "iat", "jti", "sub", "client_id", "aud", "scope"] {
        assert!(
            claims.get(claim).is_some(),
            "RFC 9068 §2.2 claim {claim} in {claims}"
        );
    }
    assert_eq!(claims["iss"], server.issuer.as_str());
    assert!(claims["exp"].as_u64() > claims["iat"].as_u64());
    claims
}

/// Verifies any JWT of the server for `audience` and returns its claims.
pub async fn verify(server: &Server, token: &str, audience: &str) -> Value {
    let header = jsonwebtoken::decode_header(token).expect("a JWT header");
    let jwks: JwkSet = client()
        .get(server.url("/.well-known/jwks.json"))
        .send()
        .await
        .expect("JWKS")
        .json()
        .await
        .expect("a JWK Set");
    let kid = header.kid.expect("a kid");
    let jwk = jwks.find(&kid).expect("the signing key is published");
    let key = DecodingKey::from_jwk(jwk).expect("a key");
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_issuer(&[server.issuer.as_str()]);
    validation.set_audience(&[audience]);
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .expect("the signature and claims verify")
        .claims
}

/// A claim holding a list of strings.
pub fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("{value} is not an array"))
        .iter()
        .map(|v| v.as_str().expect("a string"))
        .collect()
}

/// Where the authorization server sends `calendar-partner`.
pub const PARTNER_REDIRECT: &str = "https://scheduler.partner.example/callback";

/// Exchanges a code of a confidential client.
pub async fn exchange(
    server: &Server,
    code: &str,
    client: (&str, &str),
    redirect_uri: &str,
) -> (StatusCode, Value) {
    token(
        server,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
        ],
        Some(client),
    )
    .await
}

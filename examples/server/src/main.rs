//! An OAuth 2.0 / OpenID Connect authorization server on `scope-policy`.
//!
//! ```text
//! cargo run -- --policy policy.toml --db consent.sqlite --listen 127.0.0.1:8080
//! ```
//!
//! This file only wires things together: the command line, the policy, the
//! store, the signing key, the routes, and the SIGHUP reload. The crate
//! decides; `routes/` does the HTTP; `store.rs` keeps consent, codes and
//! refresh tokens in SQLite; `tokens.rs` signs RFC 9068 access tokens.

mod audit;
mod clients;
mod html;
mod loader;
mod oauth;
mod routes;
mod state;
mod store;
mod tokens;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwap;
use clap::Parser;
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};

use crate::state::{AppState, Config};
use crate::store::Store;
use crate::tokens::Signer;

/// An OAuth 2.0 / OpenID Connect authorization server for a scope-policy policy.
///
/// The access token signing key is read from the environment variable
/// `SCOPE_SERVER_SIGNING_KEY` (an Ed25519 private key, PKCS#8 PEM); without
/// it, a development key is generated at each start.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The policy document (TOML, or JSON when the name ends in `.json`).
    #[arg(long)]
    policy: PathBuf,
    /// The users of the login stand-in (default: `users.toml` beside the policy).
    #[arg(long)]
    users: Option<PathBuf>,
    /// The SQLite file for consent records, codes and refresh tokens (created if missing).
    #[arg(long)]
    db: PathBuf,
    /// The address to listen on; port 0 picks a free port (the log says which).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// The issuer (`iss`) of the tokens (default: `http://` and the address listened on).
    #[arg(long)]
    issuer: Option<String>,
    /// The bearer token of `POST /admin/reload`; without one, the endpoint is off.
    #[arg(long, env = "SCOPE_SERVER_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// How long an access token lives, in seconds.
    #[arg(long, default_value_t = 300)]
    access_token_ttl: u64,
    /// How long a device code waits for the user, in seconds (RFC 8628 `expires_in`).
    #[arg(long, default_value_t = 600)]
    device_code_ttl: u64,
    /// The minimum seconds between two polls of a device code (RFC 8628 `interval`).
    #[arg(long, default_value_t = 5)]
    device_poll_interval: u64,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // One JSON object per line: the audit lines (target `audit`) and the rest.
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_max_level(tracing::Level::INFO)
        .init();

    let args = Args::parse();
    let users = args
        .users
        .clone()
        .unwrap_or_else(|| args.policy.with_file_name("users.toml"));
    let loaded = match loader::load(&args.policy, &users) {
        Ok(loaded) => loaded,
        Err(problems) => {
            loader::log_problems(&problems);
            return Err(format!("{} problem(s) in the policy or users file", problems.len()).into());
        }
    };
    let store = Store::open(&args.db)?;
    let signer = Signer::from_env()?;
    let listener = TcpListener::bind(args.listen).await?;
    let addr = listener.local_addr()?;
    let issuer = args.issuer.clone().unwrap_or_else(|| format!("http://{addr}"));
    let state = Arc::new(AppState {
        loaded: ArcSwap::from_pointee(loaded),
        store,
        signer,
        config: Config {
            issuer: issuer.trim_end_matches('/').to_owned(),
            policy_path: args.policy.clone(),
            users_path: users,
            admin_token: args.admin_token.as_deref().map(oauth::digest),
            access_token_ttl: args.access_token_ttl,
            device_code_ttl: args.device_code_ttl,
            device_poll_interval: args.device_poll_interval,
        },
    });

    tokio::spawn(reload_on_sighup(Arc::clone(&state)));
    tracing::info!(%addr, issuer = %state.config.issuer, db = %args.db.display(), "listening");
    axum::serve(listener, routes::router(state))
        .with_graceful_shutdown(shutdown())
        .await?;
    tracing::info!("stopped");
    Ok(())
}

/// Reloads the policy and users files on every SIGHUP.
async fn reload_on_sighup(state: Arc<AppState>) {
    let Ok(mut hangups) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP: reload with POST /admin/reload only");
        return;
    };
    while hangups.recv().await.is_some() {
        // Problems are logged by `reload`; the running policy stays.
        let _ = state::reload(&state, "sighup").await;
    }
}

/// Resolves on SIGTERM or Ctrl-C, for a graceful shutdown.
async fn shutdown() {
    let term = async {
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = term => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

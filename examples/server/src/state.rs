//! What every handler shares: the running policy (swapped whole on reload),
//! the store, the signer and the settings.

use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::loader::{self, Loaded, Problem};
use crate::store::Store;
use crate::tokens::Signer;

/// The server's shared state, behind an `Arc`.
pub struct AppState {
    /// The policy and users in force. A handler takes one snapshot
    /// (`load_full`) and decides on it to the end, even if a reload swaps in
    /// another meanwhile.
    pub loaded: ArcSwap<Loaded>,
    pub store: Store,
    pub signer: Signer,
    pub config: Config,
}

/// Settings from the command line.
pub struct Config {
    /// `iss`, without a trailing slash.
    pub issuer: String,
    pub policy_path: PathBuf,
    pub users_path: PathBuf,
    /// The SHA-256 of the admin bearer token; `None` turns the admin endpoint off.
    pub admin_token: Option<[u8; 32]>,
    pub access_token_ttl: u64,
    pub device_code_ttl: u64,
    pub device_poll_interval: u64,
}

pub type SharedState = Arc<AppState>;

/// Reads the policy and users files again and swaps them in, atomically; a
/// file with any problem keeps the running policy, and every problem is
/// logged with its path.
pub async fn reload(state: &AppState, trigger: &'static str) -> Result<Summary, Vec<Problem>> {
    let (policy, users) = (state.config.policy_path.clone(), state.config.users_path.clone());
    let loaded = tokio::task::spawn_blocking(move || loader::load(&policy, &users))
        .await
        .unwrap_or_else(|join| Err(vec![Problem::internal(join.to_string())]));
    match loaded {
        Ok(loaded) => {
            let summary = Summary {
                apis: loaded.policy.apis().len(),
                clients: loaded.policy.clients().len(),
                users: loaded.users.len(),
            };
            state.loaded.store(Arc::new(loaded));
            tracing::info!(
                trigger,
                apis = summary.apis,
                clients = summary.clients,
                users = summary.users,
                "policy reloaded"
            );
            Ok(summary)
        }
        Err(problems) => {
            loader::log_problems(&problems);
            tracing::warn!(
                trigger,
                problems = problems.len(),
                "policy reload failed: the running policy stays"
            );
            Err(problems)
        }
    }
}

/// What a successful reload loaded.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Summary {
    pub apis: usize,
    pub clients: usize,
    pub users: usize,
}

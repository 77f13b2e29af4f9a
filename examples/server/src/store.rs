//! SQLite: consent records, pending consent prompts, authorization codes,
//! refresh tokens and device codes. The file survives restarts; codes and
//! tokens are kept as SHA-256 digests, never as themselves.
//!
//! rusqlite is blocking, so every call runs on tokio's blocking pool, one
//! connection behind a mutex (enough for an example; a pool for production).

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{params, Connection, OptionalExtension};
use scope_policy::{ConsentRecord, RequestParams};
use serde::{Deserialize, Serialize};

use crate::tokens::{Issuance, RefreshGrant};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS consent_records (
    user_id    TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    audience   TEXT,             -- NULL: a request with no audience
    record     TEXT NOT NULL,    -- the crate's ConsentRecord, as JSON
    expires_at INTEGER
);
CREATE INDEX IF NOT EXISTS consent_records_by_user_client ON consent_records (user_id, client_id);
CREATE TABLE IF NOT EXISTS pending_consents (
    id         TEXT PRIMARY KEY,
    session    TEXT NOT NULL,    -- the browser session the consent form belongs to
    pending    TEXT NOT NULL,    -- Pending, as JSON
    expires_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS authorization_codes (
    code_key       TEXT PRIMARY KEY,
    client_id      TEXT NOT NULL,
    redirect_uri   TEXT NOT NULL,
    code_challenge TEXT,
    issuance       TEXT NOT NULL,
    expires_at     INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS refresh_tokens (
    token_key         TEXT PRIMARY KEY,
    client_id         TEXT NOT NULL,
    user_id           TEXT NOT NULL,
    original_scope    TEXT NOT NULL,
    original_audience TEXT,
    expires_at        INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS device_codes (
    device_key TEXT PRIMARY KEY,
    user_code  TEXT NOT NULL UNIQUE,
    client_id  TEXT NOT NULL,
    params     TEXT NOT NULL,    -- the crate's RequestParams, without the user
    status     TEXT NOT NULL,    -- pending | approved | denied
    issuance   TEXT,
    interval   INTEGER NOT NULL,
    last_poll  INTEGER,
    expires_at INTEGER NOT NULL
);
";

/// A store failure: answered with a 500, logged.
#[derive(Debug)]
pub struct StoreError(String);

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StoreError {}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        StoreError(format!("sqlite: {error}"))
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(error: serde_json::Error) -> Self {
        StoreError(format!("stored JSON: {error}"))
    }
}

type Result<T> = std::result::Result<T, StoreError>;

/// An authorization request waiting for the user's answer on the consent
/// page: the crate's parameters and what the protocol adds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pending {
    pub params: RequestParams,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    /// For a device's request: the device code's key.
    pub device: Option<String>,
}

/// A pending prompt as stored.
#[derive(Debug, Clone)]
pub struct PendingRow {
    pub session: String,
    pub pending: Pending,
    pub expires_at: u64,
}

/// An authorization code as stored.
#[derive(Debug, Clone)]
pub struct CodeRow {
    pub client_id: String,
    pub redirect_uri: String,
    pub code_challenge: Option<String>,
    pub issuance: Issuance,
    pub expires_at: u64,
}

/// A refresh token as stored.
#[derive(Debug, Clone)]
pub struct RefreshRow {
    pub grant: RefreshGrant,
    pub expires_at: u64,
}

/// Where a device's request stands (RFC 8628 §3.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceStatus {
    Pending,
    Approved,
    Denied,
}

impl DeviceStatus {
    fn as_str(self) -> &'static str {
        match self {
            DeviceStatus::Pending => "pending",
            DeviceStatus::Approved => "approved",
            DeviceStatus::Denied => "denied",
        }
    }

    fn parse(text: &str) -> Self {
        match text {
            "approved" => DeviceStatus::Approved,
            "denied" => DeviceStatus::Denied,
            _ => DeviceStatus::Pending,
        }
    }
}

/// A device code as stored.
#[derive(Debug, Clone)]
pub struct DeviceRow {
    pub key: String,
    pub user_code: String,
    pub client_id: String,
    pub params: RequestParams,
    pub status: DeviceStatus,
    pub issuance: Option<Issuance>,
    pub interval: u64,
    pub last_poll: Option<u64>,
    pub expires_at: u64,
}

/// What an answered prompt leads to, stored with the new consent record.
#[derive(Debug, Clone)]
pub enum Completion {
    /// An authorization code for the client.
    Code { key: String, row: CodeRow },
    /// An approved device code.
    Device { key: String, issuance: Issuance },
}

/// The SQLite store.
#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
}

impl Store {
    /// Opens (or creates) the file and its tables.
    pub fn open(path: &Path) -> Result<Self> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(SCHEMA)?;
        Ok(Store {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `f` on the connection, on the blocking pool.
    async fn run<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<R> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let mut conn = conn.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            f(&mut conn)
        })
        .await
        .map_err(|error| StoreError(format!("store task: {error}")))?
    }

    /// Every consent record of this user for this client (every audience):
    /// what the crate needs, on every decision, refreshes included.
    pub async fn consents(&self, user_id: &str, client_id: &str) -> Result<Vec<ConsentRecord>> {
        let (user_id, client_id) = (user_id.to_owned(), client_id.to_owned());
        self.run(move |conn| {
            let mut statement = conn
                .prepare_cached("SELECT record FROM consent_records WHERE user_id = ?1 AND client_id = ?2")?;
            let rows = statement.query_map(params![user_id, client_id], |row| row.get::<_, String>(0))?;
            let mut records = Vec::new();
            for row in rows {
                records.push(serde_json::from_str(&row?)?);
            }
            Ok(records)
        })
        .await
    }

    pub async fn put_pending(&self, id: &str, row: PendingRow) -> Result<()> {
        let id = id.to_owned();
        self.run(move |conn| {
            conn.execute(
                "INSERT OR REPLACE INTO pending_consents (id, session, pending, expires_at) VALUES (?1, ?2, ?3, ?4)",
                params![id, row.session, serde_json::to_string(&row.pending)?, row.expires_at],
            )?;
            Ok(())
        })
        .await
    }

    pub async fn pending(&self, id: &str) -> Result<Option<PendingRow>> {
        let id = id.to_owned();
        self.run(move |conn| {
            let row = conn
                .query_row(
                    "SELECT session, pending, expires_at FROM pending_consents WHERE id = ?1",
                    params![id],
                    |row| {
                        Ok((
                            row.get::<_, String>(0)?,
                            row.get::<_, String>(1)?,
                            row.get::<_, u64>(2)?,
                        ))
                    },
                )
                .optional()?;
            row.map(|(session, pending, expires_at)| {
                Ok(PendingRow {
                    session,
                    pending: serde_json::from_str(&pending)?,
                    expires_at,
                })
            })
            .transpose()
        })
        .await
    }

    pub async fn delete_pending(&self, id: &str) -> Result<()> {
        let id = id.to_owned();
        self.run(move |conn| {
            conn.execute("DELETE FROM pending_consents WHERE id = ?1", params![id])?;
            Ok(())
        })
        .await
    }

    /// Finishes a decision in one transaction: the new consent record
    /// **replaces** every record for its user, client and audience (the
    /// crate's rule: withdrawn and declined consent must not linger), the
    /// pending prompt goes, and the code or the device's approval is stored.
    pub async fn complete(
        &self,
        record: Option<ConsentRecord>,
        pending_id: Option<String>,
        completion: Option<Completion>,
    ) -> Result<()> {
        self.run(move |conn| {
            let tx = conn.transaction()?;
            if let Some(record) = record {
                tx.execute(
                    "DELETE FROM consent_records WHERE user_id = ?1 AND client_id = ?2 AND audience IS ?3",
                    params![record.user_id, record.client_id, record.audience],
                )?;
                tx.execute(
                    "INSERT INTO consent_records (user_id, client_id, audience, record, expires_at)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![
                        record.user_id,
                        record.client_id,
                        record.audience,
                        serde_json::to_string(&record)?,
                        record.expires_at
                    ],
                )?;
            }
            if let Some(id) = pending_id {
                tx.execute("DELETE FROM pending_consents WHERE id = ?1", params![id])?;
            }
            match completion {
                Some(Completion::Code { key, row }) => {
                    tx.execute(
                        "INSERT INTO authorization_codes
                         (code_key, client_id, redirect_uri, code_challenge, issuance, expires_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                        params![
                            key,
                            row.client_id,
                            row.redirect_uri,
                            row.code_challenge,
                            serde_json::to_string(&row.issuance)?,
                            row.expires_at
                        ],
                    )?;
                }
                Some(Completion::Device { key, issuance }) => {
                    tx.execute(
                        "UPDATE device_codes SET status = 'approved', issuance = ?2 WHERE device_key = ?1",
                        params![key, serde_json::to_string(&issuance)?],
                    )?;
                }
                None => {}
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    /// Takes an authorization code: it can be exchanged once (RFC 6749 §4.1.2).
    pub async fn take_code(&self, key: &str) -> Result<Option<CodeRow>> {
        let key = key.to_owned();
        self.run(move |conn| {
            let row = conn
                .query_row(
                    "DELETE FROM authorization_codes WHERE code_key = ?1
                     RETURNING client_id, redirect_uri, code_challenge, issuance, expires_at",
                    params![key],
                    |row| {
                        Ok((
                            row.get::<_, String>(0)?,
                            row.get::<_, String>(1)?,
                            row.get::<_, Option<String>>(2)?,
                            row.get::<_, String>(3)?,
                            row.get::<_, u64>(4)?,
                        ))
                    },
                )
                .optional()?;
            row.map(
                |(client_id, redirect_uri, code_challenge, issuance, expires_at)| {
                    Ok(CodeRow {
                        client_id,
                        redirect_uri,
                        code_challenge,
                        issuance: serde_json::from_str(&issuance)?,
                        expires_at,
                    })
                },
            )
            .transpose()
        })
        .await
    }

    pub async fn put_refresh(&self, key: &str, grant: RefreshGrant, expires_at: u64) -> Result<()> {
        let key = key.to_owned();
        self.run(move |conn| insert_refresh(conn, &key, &grant, expires_at))
            .await
    }

    pub async fn refresh(&self, key: &str) -> Result<Option<RefreshRow>> {
        let key = key.to_owned();
        self.run(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT client_id, user_id, original_scope, original_audience, expires_at
                     FROM refresh_tokens WHERE token_key = ?1",
                    params![key],
                    |row| {
                        Ok(RefreshRow {
                            grant: RefreshGrant {
                                client_id: row.get(0)?,
                                user_id: row.get(1)?,
                                original_scope: row.get(2)?,
                                original_audience: row.get(3)?,
                            },
                            expires_at: row.get(4)?,
                        })
                    },
                )
                .optional()?)
        })
        .await
    }

    /// Rotates a refresh token in one transaction: the old one goes, the new
    /// one (if any) comes. `false` when the old one was already used.
    pub async fn rotate_refresh(
        &self,
        old_key: &str,
        new: Option<(String, RefreshGrant, u64)>,
    ) -> Result<bool> {
        let old_key = old_key.to_owned();
        self.run(move |conn| {
            let tx = conn.transaction()?;
            if tx.execute(
                "DELETE FROM refresh_tokens WHERE token_key = ?1",
                params![old_key],
            )? == 0
            {
                return Ok(false);
            }
            if let Some((key, grant, expires_at)) = new {
                insert_refresh(&tx, &key, &grant, expires_at)?;
            }
            tx.commit()?;
            Ok(true)
        })
        .await
    }

    pub async fn put_device(&self, row: DeviceRow) -> Result<()> {
        self.run(move |conn| {
            conn.execute(
                "INSERT INTO device_codes
                 (device_key, user_code, client_id, params, status, issuance, interval, last_poll, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, NULL, ?6, NULL, ?7)",
                params![
                    row.key,
                    row.user_code,
                    row.client_id,
                    serde_json::to_string(&row.params)?,
                    row.status.as_str(),
                    row.interval,
                    row.expires_at
                ],
            )?;
            Ok(())
        })
        .await
    }

    pub async fn device(&self, key: &str) -> Result<Option<DeviceRow>> {
        self.device_where("device_key", key).await
    }

    pub async fn device_by_user_code(&self, user_code: &str) -> Result<Option<DeviceRow>> {
        self.device_where("user_code", user_code).await
    }

    async fn device_where(&self, column: &'static str, value: &str) -> Result<Option<DeviceRow>> {
        let value = value.to_owned();
        self.run(move |conn| {
            let sql = format!(
                "SELECT device_key, user_code, client_id, params, status, issuance, interval, last_poll, expires_at
                 FROM device_codes WHERE {column} = ?1"
            );
            let row = conn
                .query_row(&sql, params![value], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, String>(3)?,
                        row.get::<_, String>(4)?,
                        row.get::<_, Option<String>>(5)?,
                        row.get::<_, u64>(6)?,
                        row.get::<_, Option<u64>>(7)?,
                        row.get::<_, u64>(8)?,
                    ))
                })
                .optional()?;
            row.map(
                |(key, user_code, client_id, params, status, issuance, interval, last_poll, expires_at)| {
                    Ok(DeviceRow {
                        key,
                        user_code,
                        client_id,
                        params: serde_json::from_str(&params)?,
                        status: DeviceStatus::parse(&status),
                        issuance: issuance.as_deref().map(serde_json::from_str).transpose()?,
                        interval,
                        last_poll,
                        expires_at,
                    })
                },
            )
            .transpose()
        })
        .await
    }

    /// Records a poll, and the interval the device must keep from now on.
    pub async fn device_polled(&self, key: &str, at: u64, interval: u64) -> Result<()> {
        let key = key.to_owned();
        self.run(move |conn| {
            conn.execute(
                "UPDATE device_codes SET last_poll = ?2, interval = ?3 WHERE device_key = ?1",
                params![key, at, interval],
            )?;
            Ok(())
        })
        .await
    }

    pub async fn device_denied(&self, key: &str) -> Result<()> {
        let key = key.to_owned();
        self.run(move |conn| {
            conn.execute(
                "UPDATE device_codes SET status = 'denied' WHERE device_key = ?1 AND status = 'pending'",
                params![key],
            )?;
            Ok(())
        })
        .await
    }

    /// Deletes a device code; `false` when it was already gone (used twice).
    pub async fn delete_device(&self, key: &str) -> Result<bool> {
        let key = key.to_owned();
        self.run(move |conn| {
            Ok(conn.execute("DELETE FROM device_codes WHERE device_key = ?1", params![key])? == 1)
        })
        .await
    }
}

fn insert_refresh(conn: &Connection, key: &str, grant: &RefreshGrant, expires_at: u64) -> Result<()> {
    conn.execute(
        "INSERT INTO refresh_tokens (token_key, client_id, user_id, original_scope, original_audience, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            key,
            grant.client_id,
            grant.user_id,
            grant.original_scope,
            grant.original_audience,
            expires_at
        ],
    )?;
    Ok(())
}

//! Signed checkpoints of the audit chain (issue 9, item 4).
//!
//! The hash chain alone cannot show that its newest rows were cut off if
//! `audit_chain_head` was edited to match: whoever holds the database and
//! the master key can do both. A checkpoint signs (seq, head hash, time,
//! previous checkpoint) with an Ed25519 audit key that is separate from the
//! master key; its public half (`wxfed audit key show`) verifies every
//! checkpoint, so copies of checkpoints kept elsewhere pin the chain.
//!
//! The signed bytes are, UTF-8, fields separated by `\n`, no trailing
//! newline (see docs/audit.md):
//!
//! ```text
//! wxfed-audit-checkpoint-v1
//! {seq}
//! {head hash, lowercase hex}
//! {signed_at, RFC 3339 UTC with microseconds, e.g. 2026-12-02T07:00:00.000000Z}
//! {hash of the previous checkpoint, or empty}
//! {key id}
//! ```
//!
//! A checkpoint's own hash (what the next one links to) is the lowercase
//! hex SHA-256 of its signed bytes followed by `\n` and its base64 signature.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::NaiveDateTime;
use openssl::pkey::{Id, PKey, Private, Public};
use openssl::sign::{Signer, Verifier};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{Action, AuditEvent};
use crate::db::audit::{AuditKeyRow, CheckpointRow};
use crate::db::{self, DbConn};
use crate::secrets::{Secrets, hex};

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
    #[error("the audit key {0} cannot be used: {1}")]
    Key(String, String),
    #[error("the audit trail is empty: there is nothing to sign")]
    Empty,
}

fn seal_context(key_id: &str) -> String {
    format!("audit_key:{key_id}")
}

fn timestamp(at: NaiveDateTime) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// The byte string a checkpoint's signature covers.
pub fn signed_bytes(
    seq: i64,
    head_hash: &str,
    signed_at: NaiveDateTime,
    prev_checkpoint_hash: Option<&str>,
    key_id: &str,
) -> Vec<u8> {
    format!(
        "wxfed-audit-checkpoint-v1\n{seq}\n{head_hash}\n{}\n{}\n{key_id}",
        timestamp(signed_at),
        prev_checkpoint_hash.unwrap_or("")
    )
    .into_bytes()
}

fn row_signed_bytes(row: &CheckpointRow) -> Vec<u8> {
    signed_bytes(row.seq, &row.head_hash, row.signed_at, row.prev_checkpoint_hash.as_deref(), &row.key_id)
}

/// What the next checkpoint links to.
pub fn checkpoint_hash(row: &CheckpointRow) -> String {
    let mut hasher = Sha256::new();
    hasher.update(row_signed_bytes(row));
    hasher.update(b"\n");
    hasher.update(row.signature.as_bytes());
    hex(&hasher.finalize())
}

fn key_error(id: &str, error: impl std::fmt::Display) -> CheckpointError {
    CheckpointError::Key(id.to_owned(), error.to_string())
}

fn new_key_row(secrets: &Secrets) -> Result<AuditKeyRow, CheckpointError> {
    let id = uuid::Uuid::now_v7().to_string();
    let pkey = PKey::generate_ed25519().map_err(|e| key_error(&id, e))?;
    let public = pkey.raw_public_key().map_err(|e| key_error(&id, e))?;
    let private = pkey.raw_private_key().map_err(|e| key_error(&id, e))?;
    Ok(AuditKeyRow {
        public_key: STANDARD.encode(public),
        sealed_private_key: secrets.seal(&seal_context(&id), &private),
        id,
        created_at: db::now(),
        retired_at: None,
    })
}

/// The current audit key, created (and audited) on first use. Call inside
/// a write transaction.
pub fn current_key(conn: &mut DbConn, secrets: &Secrets) -> Result<AuditKeyRow, CheckpointError> {
    if let Some(key) = db::audit::current_audit_key(conn)? {
        return Ok(key);
    }
    let key = new_key_row(secrets)?;
    db::audit::insert_audit_key(conn, &key)?;
    super::append(
        conn,
        secrets,
        &AuditEvent::success(Action::AuditKeyCreated).with_actor("system").with_detail("key_id", key.id.clone()),
    )?;
    Ok(key)
}

/// The current key, creating it if there is none (at startup and for
/// `wxfed audit key show`).
pub fn ensure_key(conn: &mut DbConn, secrets: &Secrets) -> Result<AuditKeyRow, CheckpointError> {
    db::write_transaction(conn, |conn| current_key(conn, secrets))
}

/// Retires the current key and makes a new one; old public keys stay so
/// that the checkpoints they signed keep verifying.
pub fn rotate_key(conn: &mut DbConn, secrets: &Secrets, actor: &str) -> Result<AuditKeyRow, CheckpointError> {
    db::write_transaction(conn, |conn| {
        let key = new_key_row(secrets)?;
        db::audit::retire_audit_keys(conn, key.created_at)?;
        db::audit::insert_audit_key(conn, &key)?;
        let event =
            AuditEvent::success(Action::AuditKeyRotated).with_actor(actor).with_detail("key_id", key.id.clone());
        super::append(conn, secrets, &event)?;
        Ok(key)
    })
}

fn private_key(secrets: &Secrets, key: &AuditKeyRow) -> Result<PKey<Private>, CheckpointError> {
    let raw = secrets.open(&seal_context(&key.id), &key.sealed_private_key).map_err(|e| key_error(&key.id, e))?;
    PKey::private_key_from_raw_bytes(&raw, Id::ED25519).map_err(|e| key_error(&key.id, e))
}

fn public_key(key: &AuditKeyRow) -> Option<PKey<Public>> {
    let raw = STANDARD.decode(&key.public_key).ok()?;
    PKey::public_key_from_raw_bytes(&raw, Id::ED25519).ok()
}

/// Checks `signature` (base64) over `message` with `public_key` (base64 of
/// the 32 raw bytes). Ed25519 (RFC 8032) signs the message itself, no
/// separate digest.
pub fn signature_is_valid(public_key_b64: &str, message: &[u8], signature_b64: &str) -> bool {
    let Ok(raw) = STANDARD.decode(public_key_b64) else { return false };
    let Ok(signature) = STANDARD.decode(signature_b64) else { return false };
    let Ok(pkey) = PKey::public_key_from_raw_bytes(&raw, Id::ED25519) else { return false };
    let Ok(mut verifier) = Verifier::new_without_digest(&pkey) else { return false };
    verifier.verify_oneshot(&signature, message).unwrap_or(false)
}

fn due(head_seq: i64, previous: Option<&CheckpointRow>, now: NaiveDateTime, min_interval: Duration) -> bool {
    match previous {
        Some(previous) => {
            let age = (now - previous.signed_at).to_std().unwrap_or(Duration::ZERO);
            previous.seq < head_seq && age >= min_interval
        }
        None => head_seq > 0,
    }
}

/// Whether [`sign_if_due`] would sign now, read without any lock: lets the
/// background job skip the write transaction in the usual case.
pub fn is_due(conn: &mut DbConn, min_interval: Duration) -> diesel::QueryResult<bool> {
    let (seq, _) = db::audit::read_head(conn)?;
    let previous = db::audit::latest_checkpoint(conn)?;
    Ok(due(seq, previous.as_ref(), db::now(), min_interval))
}

/// Signs a checkpoint of the head if the chain moved since the last one
/// and the last one is at least `min_interval` old. Call inside the
/// chainer's transaction, after it linked its batch and moved the head
/// (so only the elected chainer, holding the head lock, signs).
pub fn sign_if_due(
    conn: &mut DbConn,
    secrets: &Secrets,
    min_interval: Duration,
) -> Result<Option<CheckpointRow>, CheckpointError> {
    let (seq, head_hash) = db::audit::read_head(conn)?;
    let previous = db::audit::latest_checkpoint(conn)?;
    let now = db::now();
    if !due(seq, previous.as_ref(), now, min_interval) {
        return Ok(None);
    }
    let key = current_key(conn, secrets)?;
    let pkey = private_key(secrets, &key)?;
    let prev_hash = previous.as_ref().map(checkpoint_hash);
    let message = signed_bytes(seq, &head_hash, now, prev_hash.as_deref(), &key.id);
    let signature = Signer::new_without_digest(&pkey)
        .and_then(|mut signer| signer.sign_oneshot_to_vec(&message))
        .map_err(|e| key_error(&key.id, e))?;
    let row = CheckpointRow {
        seq,
        head_hash,
        signed_at: now,
        prev_checkpoint_hash: prev_hash,
        key_id: key.id,
        signature: STANDARD.encode(signature),
    };
    db::audit::insert_checkpoint(conn, &row)?;
    Ok(Some(row))
}

/// A checkpoint as published (JSON) and checked by `wxfed audit verify`.
#[derive(Debug, Clone, Serialize)]
pub struct PublishedCheckpoint {
    pub seq: i64,
    pub head_hash: String,
    pub signed_at: String,
    pub prev_checkpoint_hash: Option<String>,
    pub key_id: String,
    pub signature: String,
    /// The exact bytes signed, for verifiers that do not rebuild them.
    pub signed_message: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct PublishedKey {
    pub id: String,
    pub alg: &'static str,
    pub public_key: String,
    pub created_at: String,
    pub retired_at: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Published {
    pub keys: Vec<PublishedKey>,
    pub checkpoints: Vec<PublishedCheckpoint>,
    /// The seq to pass as `after` for the next page, when this one is full.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_after: Option<i64>,
}

/// Checkpoints per page of `/audit/checkpoints.json` (one a minute is
/// half a million a year: the document is paged, not whole).
pub const PUBLISHED_PAGE: i64 = 1000;

fn rfc3339(at: NaiveDateTime) -> String {
    at.and_utc().to_rfc3339()
}

/// Every public key, and up to [`PUBLISHED_PAGE`] checkpoints after seq
/// `after` (0: from the first), oldest first.
pub fn published(conn: &mut DbConn, after: i64) -> diesel::QueryResult<Published> {
    let keys = db::audit::all_audit_keys(conn)?
        .into_iter()
        .map(|k| PublishedKey {
            id: k.id,
            alg: "Ed25519",
            public_key: k.public_key,
            created_at: rfc3339(k.created_at),
            retired_at: k.retired_at.map(rfc3339),
        })
        .collect();
    let rows = db::audit::checkpoints_after(conn, after, PUBLISHED_PAGE)?;
    let next_after = (rows.len() as i64 == PUBLISHED_PAGE).then(|| rows.last().map(|c| c.seq)).flatten();
    let checkpoints = rows.into_iter().map(publish).collect();
    Ok(Published { keys, checkpoints, next_after })
}

/// One checkpoint as published.
pub fn publish(c: CheckpointRow) -> PublishedCheckpoint {
    PublishedCheckpoint {
        signed_message: String::from_utf8_lossy(&row_signed_bytes(&c)).into_owned(),
        seq: c.seq,
        head_hash: c.head_hash,
        signed_at: timestamp(c.signed_at),
        prev_checkpoint_hash: c.prev_checkpoint_hash,
        key_id: c.key_id,
        signature: c.signature,
    }
}

/// What is wrong with the checkpoints, first problem only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CheckpointViolation {
    /// The signature does not verify with the key it names (or the key is
    /// unknown): the checkpoint was forged or edited.
    BadSignature { seq: i64 },
    /// The checkpoint does not link to the one before it: one was removed.
    BrokenCheckpointLink { seq: i64 },
    /// The row the checkpoint names is gone: the newest rows were deleted.
    RowMissing { seq: i64 },
    /// The row exists but its hash differs: the chain was rewritten.
    HashMismatch { seq: i64 },
}

impl std::fmt::Display for CheckpointViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::BadSignature { seq } => write!(f, "the checkpoint at row {seq} has an invalid signature"),
            Self::BrokenCheckpointLink { seq } => {
                write!(f, "the checkpoint at row {seq} does not follow the checkpoint before it")
            }
            Self::RowMissing { seq } => {
                write!(f, "row {seq}, signed in a checkpoint, is missing: the newest rows were deleted")
            }
            Self::HashMismatch { seq } => {
                write!(f, "row {seq} does not match its signed checkpoint: the chain was rewritten")
            }
        }
    }
}

/// Checks every checkpoint: its signature with its key's public half, its
/// link to the previous checkpoint, and that the row it names exists with
/// the signed hash. Returns how many were checked and the first problem.
pub fn verify(conn: &mut DbConn) -> diesel::QueryResult<(usize, Option<CheckpointViolation>)> {
    let keys = db::audit::all_audit_keys(conn)?;
    let checkpoints = db::audit::all_checkpoints(conn)?;
    let mut prev_hash: Option<String> = None;
    for (checked, checkpoint) in checkpoints.iter().enumerate() {
        let seq = checkpoint.seq;
        let key = keys.iter().find(|k| k.id == checkpoint.key_id);
        let valid = key.is_some_and(|k| {
            public_key(k).is_some()
                && signature_is_valid(&k.public_key, &row_signed_bytes(checkpoint), &checkpoint.signature)
        });
        if !valid {
            return Ok((checked, Some(CheckpointViolation::BadSignature { seq })));
        }
        if checkpoint.prev_checkpoint_hash != prev_hash {
            return Ok((checked, Some(CheckpointViolation::BrokenCheckpointLink { seq })));
        }
        match db::audit::at_seq(conn, seq)? {
            None => return Ok((checked, Some(CheckpointViolation::RowMissing { seq }))),
            Some(row) if row.hash != checkpoint.head_hash => {
                return Ok((checked, Some(CheckpointViolation::HashMismatch { seq })));
            }
            Some(_) => {}
        }
        prev_hash = Some(checkpoint_hash(checkpoint));
    }
    Ok((checkpoints.len(), None))
}

//! Queries on `audit_events`, `audit_pending`, `audit_chain_head`,
//! `audit_keys` and `audit_checkpoints`.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConn;
use super::schema::{audit_chain_head, audit_checkpoints, audit_events, audit_keys, audit_pending};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_events)]
pub struct AuditRow {
    pub seq: i64,
    pub id: String,
    pub occurred_at: NaiveDateTime,
    pub category: String,
    pub action: String,
    pub outcome: String,
    pub reason: Option<String>,
    pub actor: Option<String>,
    pub account_id: Option<String>,
    pub client_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub detail: String,
    pub prev_hash: String,
    pub hash: String,
    /// 1: HMAC link under the master key; 2: SHA-256 link over the
    /// metadata and `content_hash` (see `crate::audit::chain`).
    pub link_version: i32,
    /// Random per row (v2), hashed with the content so that a pruned row's
    /// content cannot be guessed back from its `content_hash`.
    pub content_salt: Option<String>,
    pub content_hash: Option<String>,
    /// Set when retention removed the row's content (v2 only).
    pub pruned_at: Option<NaiveDateTime>,
}

/// An event recorded but not yet linked into the chain (see
/// `crate::audit::chainer`).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = audit_pending)]
pub struct PendingRow {
    pub pending_id: i64,
    pub id: String,
    pub occurred_at: NaiveDateTime,
    pub category: String,
    pub action: String,
    pub outcome: String,
    pub reason: Option<String>,
    pub actor: Option<String>,
    pub account_id: Option<String>,
    pub client_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub detail: String,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = audit_pending)]
pub struct NewPendingRow {
    pub id: String,
    pub occurred_at: NaiveDateTime,
    pub category: String,
    pub action: String,
    pub outcome: String,
    pub reason: Option<String>,
    pub actor: Option<String>,
    pub account_id: Option<String>,
    pub client_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub detail: String,
}

impl NewPendingRow {
    /// The row as the chainer reads it back under `pending_id`.
    pub fn recorded(self, pending_id: i64) -> PendingRow {
        PendingRow {
            pending_id,
            id: self.id,
            occurred_at: self.occurred_at,
            category: self.category,
            action: self.action,
            outcome: self.outcome,
            reason: self.reason,
            actor: self.actor,
            account_id: self.account_id,
            client_id: self.client_id,
            ip: self.ip,
            user_agent: self.user_agent,
            request_id: self.request_id,
            detail: self.detail,
        }
    }
}

/// Inserts an unchained event; takes no lock beyond the new row's own.
/// Returns its pending id (commit order is not id order on PostgreSQL).
pub fn insert_pending(conn: &mut DbConn, row: &NewPendingRow) -> QueryResult<i64> {
    diesel::insert_into(audit_pending::table).values(row).returning(audit_pending::pending_id).get_result(conn)
}

/// The oldest `limit` pending events, in insertion order.
pub fn pending_batch(conn: &mut DbConn, limit: i64) -> QueryResult<Vec<PendingRow>> {
    audit_pending::table.order(audit_pending::pending_id.asc()).limit(limit).select(PendingRow::as_select()).load(conn)
}

/// How many events wait to be chained, and when the oldest was recorded.
pub fn pending_status(conn: &mut DbConn) -> QueryResult<(i64, Option<NaiveDateTime>)> {
    let count = audit_pending::table.count().get_result::<i64>(conn)?;
    let oldest = audit_pending::table.select(diesel::dsl::min(audit_pending::occurred_at)).first(conn)?;
    Ok((count, oldest))
}

/// Deletes chained pending rows; returns how many were deleted.
pub fn delete_pending(conn: &mut DbConn, pending_ids: &[i64]) -> QueryResult<usize> {
    diesel::delete(audit_pending::table.filter(audit_pending::pending_id.eq_any(pending_ids))).execute(conn)
}

diesel::define_sql_function! {
    /// PostgreSQL: takes a lock released at the end of the transaction, or
    /// returns false at once when another session holds it.
    fn pg_try_advisory_xact_lock(key: diesel::sql_types::BigInt) -> diesel::sql_types::Bool;
}

/// Arbitrary constant naming the chainer's advisory lock ("wxfedAUD").
const CHAINER_LOCK_KEY: i64 = 0x7778_6665_6441_5544;

/// Elects the chainer for the current transaction: on PostgreSQL the
/// session that holds the advisory lock; on SQLite the writer, which
/// `BEGIN IMMEDIATE` already made exclusive. With `wait` false another
/// session's lock makes this return false at once (the background chainer
/// skips the round); with `wait` true it queues for the lock (callers that
/// need everything chained before they go on: shutdown, the CLI, tests).
pub fn try_become_chainer(conn: &mut DbConn, wait: bool) -> QueryResult<bool> {
    match conn {
        DbConn::Postgresql(pg) if wait => {
            diesel::sql_query(format!("SELECT pg_advisory_xact_lock({CHAINER_LOCK_KEY})")).execute(pg)?;
            Ok(true)
        }
        DbConn::Postgresql(pg) => diesel::select(pg_try_advisory_xact_lock(CHAINER_LOCK_KEY)).get_result(pg),
        DbConn::Sqlite(_) => Ok(true),
    }
}

/// Takes the chain's write lock and returns (last_seq, last_hash).
///
/// The no-op UPDATE row-locks the head on PostgreSQL until the transaction
/// ends, so chainers (and anything else that moves the head) queue here and
/// never fork the chain, even if two were elected. On SQLite the surrounding `BEGIN IMMEDIATE` already holds the
/// database write lock.
pub fn lock_head(conn: &mut DbConn) -> QueryResult<(i64, String)> {
    // One statement takes the lock and reads the head: the lock is held
    // for as few round trips as possible.
    diesel::update(audit_chain_head::table.find(1))
        .set(audit_chain_head::last_seq.eq(audit_chain_head::last_seq))
        .returning((audit_chain_head::last_seq, audit_chain_head::last_hash))
        .get_result(conn)
}

pub fn read_head(conn: &mut DbConn) -> QueryResult<(i64, String)> {
    audit_chain_head::table.find(1).select((audit_chain_head::last_seq, audit_chain_head::last_hash)).first(conn)
}

/// Inserts a chained row; the caller holds the head lock and moves the head
/// with [`set_head`] once per batch.
pub fn insert_chained(conn: &mut DbConn, row: &AuditRow) -> QueryResult<()> {
    diesel::insert_into(audit_events::table).values(row).execute(conn)?;
    Ok(())
}

pub fn set_head(conn: &mut DbConn, last_seq: i64, last_hash: &str, updated_at: NaiveDateTime) -> QueryResult<()> {
    diesel::update(audit_chain_head::table.find(1))
        .set((
            audit_chain_head::last_seq.eq(last_seq),
            audit_chain_head::last_hash.eq(last_hash),
            audit_chain_head::updated_at.eq(updated_at),
        ))
        .execute(conn)?;
    Ok(())
}

/// The chained row at `seq`, if it exists.
pub fn at_seq(conn: &mut DbConn, seq: i64) -> QueryResult<Option<AuditRow>> {
    audit_events::table.find(seq).select(AuditRow::as_select()).first(conn).optional()
}

/// Rows with seq > `after`, in chain order, at most `limit` of them.
pub fn page_after(conn: &mut DbConn, after: i64, limit: i64) -> QueryResult<Vec<AuditRow>> {
    audit_events::table
        .filter(audit_events::seq.gt(after))
        .order(audit_events::seq.asc())
        .limit(limit)
        .select(AuditRow::as_select())
        .load(conn)
}

/// The newest `limit` rows, newest first.
pub fn latest(conn: &mut DbConn, limit: i64) -> QueryResult<Vec<AuditRow>> {
    audit_events::table.order(audit_events::seq.desc()).limit(limit).select(AuditRow::as_select()).load(conn)
}

/// The newest `limit` rows of one category, newest first (served by the
/// (category, seq) index).
pub fn latest_in_category(conn: &mut DbConn, category: &str, limit: i64) -> QueryResult<Vec<AuditRow>> {
    audit_events::table
        .filter(audit_events::category.eq(category))
        .order(audit_events::seq.desc())
        .limit(limit)
        .select(AuditRow::as_select())
        .load(conn)
}

/// The newest `limit` rows about one account, newest first.
pub fn latest_for_account(conn: &mut DbConn, account_id: &str, limit: i64) -> QueryResult<Vec<AuditRow>> {
    audit_events::table
        .filter(audit_events::account_id.eq(account_id))
        .order(audit_events::seq.desc())
        .limit(limit)
        .select(AuditRow::as_select())
        .load(conn)
}

/// An Ed25519 audit key; `public_key` is base64 of its 32 raw bytes.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_keys)]
pub struct AuditKeyRow {
    pub id: String,
    pub public_key: String,
    pub sealed_private_key: String,
    pub created_at: NaiveDateTime,
    pub retired_at: Option<NaiveDateTime>,
}

/// The key that signs new checkpoints: the newest one not retired.
pub fn current_audit_key(conn: &mut DbConn) -> QueryResult<Option<AuditKeyRow>> {
    audit_keys::table
        .filter(audit_keys::retired_at.is_null())
        .order((audit_keys::created_at.desc(), audit_keys::id.desc()))
        .select(AuditKeyRow::as_select())
        .first(conn)
        .optional()
}

/// Every audit key, oldest first (retired ones verify old checkpoints).
pub fn all_audit_keys(conn: &mut DbConn) -> QueryResult<Vec<AuditKeyRow>> {
    audit_keys::table
        .order((audit_keys::created_at.asc(), audit_keys::id.asc()))
        .select(AuditKeyRow::as_select())
        .load(conn)
}

pub fn insert_audit_key(conn: &mut DbConn, row: &AuditKeyRow) -> QueryResult<()> {
    diesel::insert_into(audit_keys::table).values(row).execute(conn)?;
    Ok(())
}

/// Retires every current key; returns how many.
pub fn retire_audit_keys(conn: &mut DbConn, at: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(audit_keys::table.filter(audit_keys::retired_at.is_null()))
        .set(audit_keys::retired_at.eq(Some(at)))
        .execute(conn)
}

/// A signed checkpoint; `signature` is base64 of the 64-byte Ed25519
/// signature over `crate::audit::checkpoint::signed_bytes`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_checkpoints)]
pub struct CheckpointRow {
    pub seq: i64,
    pub head_hash: String,
    pub signed_at: NaiveDateTime,
    pub prev_checkpoint_hash: Option<String>,
    pub key_id: String,
    pub signature: String,
}

pub fn latest_checkpoint(conn: &mut DbConn) -> QueryResult<Option<CheckpointRow>> {
    audit_checkpoints::table
        .order(audit_checkpoints::seq.desc())
        .select(CheckpointRow::as_select())
        .first(conn)
        .optional()
}

/// Every checkpoint, oldest first.
pub fn all_checkpoints(conn: &mut DbConn) -> QueryResult<Vec<CheckpointRow>> {
    audit_checkpoints::table.order(audit_checkpoints::seq.asc()).select(CheckpointRow::as_select()).load(conn)
}

/// Up to `limit` checkpoints after `seq`, oldest first.
pub fn checkpoints_after(conn: &mut DbConn, seq: i64, limit: i64) -> QueryResult<Vec<CheckpointRow>> {
    audit_checkpoints::table
        .filter(audit_checkpoints::seq.gt(seq))
        .order(audit_checkpoints::seq.asc())
        .limit(limit)
        .select(CheckpointRow::as_select())
        .load(conn)
}

/// The newest checkpoint signed at or before `at`: where an export whose
/// range starts at `at` anchors its proof.
pub fn last_checkpoint_signed_by(conn: &mut DbConn, at: NaiveDateTime) -> QueryResult<Option<CheckpointRow>> {
    audit_checkpoints::table
        .filter(audit_checkpoints::signed_at.le(at))
        .order(audit_checkpoints::seq.desc())
        .select(CheckpointRow::as_select())
        .first(conn)
        .optional()
}

/// The first checkpoint signed at or after `at` that covers row `seq`:
/// where an export whose range ends at `at` closes its proof.
pub fn first_checkpoint_covering(conn: &mut DbConn, seq: i64, at: NaiveDateTime) -> QueryResult<Option<CheckpointRow>> {
    audit_checkpoints::table
        .filter(audit_checkpoints::signed_at.ge(at))
        .filter(audit_checkpoints::seq.ge(seq))
        .order(audit_checkpoints::seq.asc())
        .select(CheckpointRow::as_select())
        .first(conn)
        .optional()
}

/// The details of every event with `action`, chained or pending.
pub fn details_of_action(conn: &mut DbConn, action: &str) -> QueryResult<Vec<String>> {
    let mut details: Vec<String> =
        audit_events::table.filter(audit_events::action.eq(action)).select(audit_events::detail).load(conn)?;
    details.extend(
        audit_pending::table
            .filter(audit_pending::action.eq(action))
            .select(audit_pending::detail)
            .load::<String>(conn)?,
    );
    Ok(details)
}

/// Up to `limit` seqs of v2 rows of `category` that occurred before
/// `before`, with seq at most `through_seq`, still holding their content;
/// never the records of prunes themselves.
pub fn prunable(
    conn: &mut DbConn,
    category: &str,
    before: NaiveDateTime,
    through_seq: i64,
    keep_action: &str,
    limit: i64,
) -> QueryResult<Vec<i64>> {
    audit_events::table
        .filter(audit_events::category.eq(category))
        .filter(audit_events::occurred_at.lt(before))
        .filter(audit_events::pruned_at.is_null())
        .filter(audit_events::seq.le(through_seq))
        .filter(audit_events::link_version.eq(2))
        .filter(audit_events::action.ne(keep_action))
        .order(audit_events::occurred_at.asc())
        .limit(limit)
        .select(audit_events::seq)
        .load(conn)
}

/// What `detail` holds once retention stripped a row's content.
pub const PRUNED_DETAIL: &str = "{}";

/// Strips the content of the rows `seqs` (retention), leaving metadata,
/// hashes and `content_hash`: the only update the append-only trigger
/// allows.
pub fn strip_content(conn: &mut DbConn, seqs: &[i64], at: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(audit_events::table.filter(audit_events::seq.eq_any(seqs)))
        .set((
            audit_events::reason.eq(None::<String>),
            audit_events::ip.eq(None::<String>),
            audit_events::user_agent.eq(None::<String>),
            audit_events::content_salt.eq(None::<String>),
            audit_events::detail.eq(PRUNED_DETAIL),
            audit_events::pruned_at.eq(Some(at)),
        ))
        .execute(conn)
}

pub fn insert_checkpoint(conn: &mut DbConn, row: &CheckpointRow) -> QueryResult<()> {
    diesel::insert_into(audit_checkpoints::table).values(row).execute(conn)?;
    Ok(())
}

/// The newest WeChat login events (success and failure) of one identity.
/// The identity is in the event detail, so this walks the newest `scan`
/// login events of the linked account (the account index) and the newest
/// `scan` of everyone (refusals before it was linked name no account),
/// and keeps those naming it: recent history, not all of it.
pub fn wechat_logins_of_identity(
    conn: &mut DbConn,
    identity_id: &str,
    account_id: Option<&str>,
    scan: i64,
    limit: usize,
) -> QueryResult<Vec<AuditRow>> {
    let newest = |conn: &mut DbConn, account: Option<&str>| -> QueryResult<Vec<AuditRow>> {
        let mut query = audit_events::table
            .filter(audit_events::action.eq("login.wechat"))
            .order(audit_events::seq.desc())
            .limit(scan)
            .select(AuditRow::as_select())
            .into_boxed();
        if let Some(account) = account {
            query = query.filter(audit_events::account_id.eq(account.to_owned()));
        }
        query.load(conn)
    };
    let mut rows = newest(conn, None)?;
    if let Some(account) = account_id {
        rows.extend(newest(conn, Some(account))?);
    }
    rows.sort_by_key(|r| std::cmp::Reverse(r.seq));
    rows.dedup_by(|a, b| a.seq == b.seq);
    // Parsed, not matched as text: PostgreSQL renders JSON with spaces.
    let names_it = |r: &AuditRow| {
        serde_json::from_str::<serde_json::Value>(&r.detail)
            .is_ok_and(|d| d.get("identity").and_then(|v| v.as_str()) == Some(identity_id))
    };
    Ok(rows.into_iter().filter(names_it).take(limit).collect())
}

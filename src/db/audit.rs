//! Queries on `audit_events` and `audit_chain_head`.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConn;
use super::schema::{audit_chain_head, audit_events};

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
}

/// Takes the chain's write lock and returns (last_seq, last_hash).
///
/// The no-op UPDATE row-locks the head on PostgreSQL until the transaction
/// ends, so appends from any number of instances queue here and never fork
/// the chain. On SQLite the surrounding `BEGIN IMMEDIATE` already holds the
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

pub fn append(conn: &mut DbConn, row: &AuditRow) -> QueryResult<()> {
    diesel::insert_into(audit_events::table).values(row).execute(conn)?;
    diesel::update(audit_chain_head::table.find(1))
        .set((
            audit_chain_head::last_seq.eq(row.seq),
            audit_chain_head::last_hash.eq(&row.hash),
            audit_chain_head::updated_at.eq(row.occurred_at),
        ))
        .execute(conn)?;
    Ok(())
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

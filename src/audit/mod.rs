//! The audit trail: what happened, who did it, to whom, from where.
//!
//! Every event is appended to `audit_events` as a link of a keyed hash
//! chain (see [`chain`]). Events never carry passwords, tokens, codes or
//! secrets; personal WeChat identifiers only as keyed hashes.

pub mod chain;
mod event;

pub use chain::{VerifyReport, Violation, verify};
pub use event::{Action, AuditEvent, Category, Outcome};

use crate::db::{self, DbConn};
use crate::secrets::Secrets;

/// Appends `event` to the chain inside the caller's write transaction, so
/// that the change and its record commit together or not at all.
/// Returns the event's sequence number.
pub fn append(conn: &mut DbConn, secrets: &Secrets, event: &AuditEvent) -> diesel::QueryResult<i64> {
    let (last_seq, last_hash) = db::audit::lock_head(conn)?;
    let row = chain::link(secrets.audit_chain_key(), last_seq, &last_hash, event, db::now());
    db::audit::append(conn, &row)?;
    Ok(row.seq)
}

/// Records `event` in a transaction of its own (for events that change
/// nothing else, like a failed login).
pub fn record(conn: &mut DbConn, secrets: &Secrets, event: &AuditEvent) -> diesel::QueryResult<i64> {
    db::write_transaction(conn, |conn| append(conn, secrets, event))
}

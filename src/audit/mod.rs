//! The audit trail: what happened, who did it, to whom, from where.
//!
//! Every event is recorded unchained in the transaction of the change it
//! records, then linked into a keyed hash chain in `audit_events` (see
//! [`chain`]) by the database's one chainer within about a second
//! ([`chainer`], group commit). Events never carry passwords, tokens, codes or
//! secrets; personal WeChat identifiers only as keyed hashes.

pub mod chain;
pub mod chainer;
pub mod checkpoint;
mod event;
pub mod export;
pub mod proof;
pub mod query;
pub mod retention;
pub mod sink;

pub use chain::{VerifyReport, Violation, verify};
pub use event::{Action, AuditEvent, Category, Outcome};

use crate::db::{self, DbConn};
use crate::secrets::Secrets;

/// Records `event` inside the caller's write transaction, so that the
/// change and its record commit together or not at all. The event is
/// chained later by the chainer (group commit: no database-wide lock is
/// taken here). Returns its pending id, which orders it for the chainer.
pub fn append(conn: &mut DbConn, _secrets: &Secrets, event: &AuditEvent) -> diesel::QueryResult<i64> {
    let seq = db::audit::insert_pending(conn, &chain::pending(event, db::now()))?;
    // Every login attempt is an audit event: counting them here counts
    // every surface (password, WeChat, re-authentication) the same way.
    if let Some(surface) = event.action.as_str().strip_prefix("login.") {
        crate::metrics::login(surface, event.outcome.as_str());
    }
    Ok(seq)
}

/// Records `event` in a transaction of its own (for events that change
/// nothing else, like a failed login).
pub fn record(conn: &mut DbConn, secrets: &Secrets, event: &AuditEvent) -> diesel::QueryResult<i64> {
    db::write_transaction(conn, |conn| append(conn, secrets, event))
}

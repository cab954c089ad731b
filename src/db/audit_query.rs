//! The auditor's queries on `audit_events` (issue 9 §2, §3): keyset pages
//! in either direction under the log viewer's filters, and the chain
//! status the auditor's home shows.
//!
//! Every filter is an equality or a prefix range on one column, each with
//! a `(column, seq)` index (migration `..._audit_viewer`), so a page is an
//! index range walked from the cursor: no OFFSET, no COUNT(*).

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConn;
use super::audit::AuditRow;
use super::schema::audit_events;

/// A text column matched exactly or by prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextMatch {
    Exact(String),
    /// Starts with this text (a byte-order range, see [`prefix_end`]).
    Prefix(String),
}

/// The SQL part of the log viewer's filters, already resolved (an account
/// given by username is an id here). Empty fields do not filter.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// `occurred_at >= from`.
    pub from: Option<NaiveDateTime>,
    /// `occurred_at < to`.
    pub to: Option<NaiveDateTime>,
    pub category: Option<String>,
    pub action: Option<TextMatch>,
    pub outcome: Option<String>,
    /// Events about this account (`account_id`) or done by it (`actor`).
    pub account_id: Option<String>,
    pub client_id: Option<String>,
    pub ip: Option<TextMatch>,
    pub request_id: Option<String>,
}

/// Which way a page goes from its cursor.
#[derive(Debug, Clone, Copy)]
pub enum Direction {
    /// Newest first, rows with `seq < before` (all when `None`).
    NewestBefore(Option<i64>),
    /// Chain order, rows with `seq > after` (exports).
    OldestAfter(i64),
}

/// The upper end of the byte-order range of strings that start with
/// `prefix` (as `db::accounts` does for names).
fn prefix_end(prefix: &str) -> String {
    format!("{prefix}\u{10FFFF}")
}

/// The distinct actions starting with `prefix`, found by walking the
/// `(action, seq)` index from one action to the next (a "loose index
/// scan" as a recursive CTE: one index probe per action, at any table
/// size; neither backend skips through an index on its own for DISTINCT).
fn actions_with_prefix(conn: &mut DbConn, prefix: &str) -> QueryResult<Vec<String>> {
    #[derive(QueryableByName)]
    struct Found {
        #[diesel(sql_type = diesel::sql_types::Text)]
        action: String,
    }
    let end = prefix_end(prefix);
    let found: Vec<Found> = diesel::sql_query(
        "WITH RECURSIVE found(action) AS ( \
             SELECT MIN(action) FROM audit_events WHERE action >= $1 AND action < $2 \
             UNION ALL \
             SELECT (SELECT MIN(e.action) FROM audit_events e WHERE e.action > found.action AND e.action < $2) \
             FROM found WHERE found.action IS NOT NULL) \
         SELECT action FROM found WHERE action IS NOT NULL",
    )
    .bind::<diesel::sql_types::Text, _>(prefix)
    .bind::<diesel::sql_types::Text, _>(&end)
    .load(conn)?;
    Ok(found.into_iter().map(|f| f.action).collect())
}

/// Whether a page is ordered by (time, seq) rather than seq: the log
/// viewer over a time range. A row's seq is given when it is chained, a
/// moment after it occurred, so the two orders agree but for events
/// recorded at the same moment on different instances; the time order
/// lets the period's index serve the page without a sort. Exports keep
/// chain order.
pub fn is_time_ordered(filter: &EventFilter, direction: Direction) -> bool {
    matches!(direction, Direction::NewestBefore(_)) && (filter.from.is_some() || filter.to.is_some())
}

/// One page of at most `limit` rows matching `filter`. An action family
/// (`login.*`) is several index ranges: each is read on its own (in seq
/// order, from the cursor) and the results merged, instead of sorting
/// every row of the family.
pub fn page(conn: &mut DbConn, filter: &EventFilter, direction: Direction, limit: i64) -> QueryResult<Vec<AuditRow>> {
    let Some(TextMatch::Prefix(prefix)) = &filter.action else {
        return page_of_one(conn, filter, direction, limit);
    };
    let mut rows = Vec::new();
    for action in actions_with_prefix(conn, prefix)? {
        let one = EventFilter { action: Some(TextMatch::Exact(action)), ..filter.clone() };
        rows.extend(page_of_one(conn, &one, direction, limit)?);
    }
    match direction {
        _ if is_time_ordered(filter, direction) => rows.sort_by_key(|r| std::cmp::Reverse((r.occurred_at, r.seq))),
        Direction::NewestBefore(_) => rows.sort_by_key(|r| std::cmp::Reverse(r.seq)),
        Direction::OldestAfter(_) => rows.sort_by_key(|r| r.seq),
    }
    rows.truncate(usize::try_from(limit).unwrap_or(0));
    Ok(rows)
}

fn page_of_one(
    conn: &mut DbConn,
    filter: &EventFilter,
    direction: Direction,
    limit: i64,
) -> QueryResult<Vec<AuditRow>> {
    let mut query = audit_events::table.select(AuditRow::as_select()).into_boxed::<<DbConn as Connection>::Backend>();
    if let Some(from) = filter.from {
        query = query.filter(audit_events::occurred_at.ge(from));
    }
    if let Some(to) = filter.to {
        query = query.filter(audit_events::occurred_at.lt(to));
    }
    if let Some(category) = &filter.category {
        query = query.filter(audit_events::category.eq(category.clone()));
    }
    match &filter.action {
        Some(TextMatch::Exact(action)) => query = query.filter(audit_events::action.eq(action.clone())),
        Some(TextMatch::Prefix(prefix)) => {
            query = query
                .filter(audit_events::action.ge(prefix.clone()))
                .filter(audit_events::action.lt(prefix_end(prefix)));
        }
        None => {}
    }
    if let Some(outcome) = &filter.outcome {
        query = query.filter(audit_events::outcome.eq(outcome.clone()));
    }
    if let Some(account_id) = &filter.account_id {
        query = query.filter(
            audit_events::account_id.eq(account_id.clone()).or(audit_events::actor.eq(format!("account:{account_id}"))),
        );
    }
    if let Some(client_id) = &filter.client_id {
        query = query.filter(audit_events::client_id.eq(client_id.clone()));
    }
    match &filter.ip {
        Some(TextMatch::Exact(ip)) => query = query.filter(audit_events::ip.eq(ip.clone())),
        Some(TextMatch::Prefix(prefix)) => {
            query = query.filter(audit_events::ip.ge(prefix.clone())).filter(audit_events::ip.lt(prefix_end(prefix)));
        }
        None => {}
    }
    if let Some(request_id) = &filter.request_id {
        query = query.filter(audit_events::request_id.eq(request_id.clone()));
    }
    match direction {
        Direction::NewestBefore(before) if is_time_ordered(filter, direction) => {
            // Newest first by time, then seq: the (occurred_at, seq) index
            // walked backwards from the cursor row, instead of sorting
            // every row of the period by seq.
            if let Some(before) = before {
                let Some(at) = audit_events::table
                    .find(before)
                    .select(audit_events::occurred_at)
                    .first::<NaiveDateTime>(conn)
                    .optional()?
                else {
                    return Ok(Vec::new());
                };
                query = query
                    .filter(audit_events::occurred_at.le(at))
                    .filter(audit_events::occurred_at.lt(at).or(audit_events::seq.lt(before)));
            }
            query.order((audit_events::occurred_at.desc(), audit_events::seq.desc())).limit(limit).load(conn)
        }
        Direction::NewestBefore(before) => {
            if let Some(before) = before {
                query = query.filter(audit_events::seq.lt(before));
            }
            query.order(audit_events::seq.desc()).limit(limit).load(conn)
        }
        Direction::OldestAfter(after) => {
            query.filter(audit_events::seq.gt(after)).order(audit_events::seq.asc()).limit(limit).load(conn)
        }
    }
}

/// What the failed-login report groups by.
#[derive(Debug, Clone, Copy)]
pub enum FailureKey {
    Account,
    Ip,
}

/// The `limit` accounts (or IPs) with the most failed logins (actions
/// `login.*`, outcome failure) in `[from, to)`, most first, with counts.
/// Reads the period's rows through the `occurred_at` index.
pub fn top_login_failures(
    conn: &mut DbConn,
    key: FailureKey,
    from: NaiveDateTime,
    to: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<(String, i64)>> {
    use diesel::dsl::count_star;
    let failures = audit_events::table
        .filter(audit_events::occurred_at.ge(from))
        .filter(audit_events::occurred_at.lt(to))
        .filter(audit_events::action.ge("login."))
        .filter(audit_events::action.lt(prefix_end("login.")))
        .filter(audit_events::outcome.eq("failure"));
    let rows: Vec<(Option<String>, i64)> = match key {
        FailureKey::Account => failures
            .filter(audit_events::account_id.is_not_null())
            .group_by(audit_events::account_id)
            .select((audit_events::account_id, count_star()))
            .order((count_star().desc(), audit_events::account_id.asc()))
            .limit(limit)
            .load(conn)?,
        FailureKey::Ip => failures
            .filter(audit_events::ip.is_not_null())
            .group_by(audit_events::ip)
            .select((audit_events::ip, count_star()))
            .order((count_star().desc(), audit_events::ip.asc()))
            .limit(limit)
            .load(conn)?,
    };
    Ok(rows.into_iter().filter_map(|(k, n)| k.map(|k| (k, n))).collect())
}

/// The first checkpoint at or after `seq`: the one that covers that row.
pub fn checkpoint_covering(conn: &mut DbConn, seq: i64) -> QueryResult<Option<super::audit::CheckpointRow>> {
    use super::schema::audit_checkpoints;
    audit_checkpoints::table
        .filter(audit_checkpoints::seq.ge(seq))
        .order(audit_checkpoints::seq.asc())
        .select(super::audit::CheckpointRow::as_select())
        .first(conn)
        .optional()
}

/// The `limit` actors with the most events of `category` in `[from, to)`,
/// most first, with counts: who did the most (the admin-action report).
/// Reads the category's rows through its `(category, seq)` index: meant
/// for the rare categories (admin), not for sign-ins.
pub fn top_actors(
    conn: &mut DbConn,
    category: &str,
    from: NaiveDateTime,
    to: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<(String, i64)>> {
    use diesel::dsl::count_star;
    let rows: Vec<(Option<String>, i64)> = audit_events::table
        .filter(audit_events::category.eq(category))
        .filter(audit_events::occurred_at.ge(from))
        .filter(audit_events::occurred_at.lt(to))
        .filter(audit_events::actor.is_not_null())
        .group_by(audit_events::actor)
        .select((audit_events::actor, count_star()))
        .order((count_star().desc(), audit_events::actor.asc()))
        .limit(limit)
        .load(conn)?;
    Ok(rows.into_iter().filter_map(|(k, n)| k.map(|k| (k, n))).collect())
}

/// Up to `limit` checkpoints before `before` (from the newest when
/// `None`), newest first: one page of the checkpoints list.
pub fn checkpoints_before(
    conn: &mut DbConn,
    before: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<super::audit::CheckpointRow>> {
    use super::schema::audit_checkpoints;
    let mut query = audit_checkpoints::table
        .order(audit_checkpoints::seq.desc())
        .limit(limit)
        .select(super::audit::CheckpointRow::as_select())
        .into_boxed::<<DbConn as Connection>::Backend>();
    if let Some(before) = before {
        query = query.filter(audit_checkpoints::seq.lt(before));
    }
    query.load(conn)
}

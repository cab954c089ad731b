//! Queries on `accounts` and `account_roles`.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConn;
use super::schema::{account_roles, accounts};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = accounts)]
pub struct AccountRow {
    pub id: String,
    pub username: String,
    pub username_key: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub email_verified: bool,
    pub phone: Option<String>,
    pub phone_verified: bool,
    pub status: String,
    pub password_hash: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

pub fn insert(conn: &mut DbConn, row: &AccountRow) -> QueryResult<()> {
    diesel::insert_into(accounts::table).values(row).execute(conn).map(|_| ())
}

pub fn find_by_username_key(conn: &mut DbConn, key: &str) -> QueryResult<Option<AccountRow>> {
    accounts::table.filter(accounts::username_key.eq(key)).select(AccountRow::as_select()).first(conn).optional()
}

pub fn find_by_id(conn: &mut DbConn, id: &str) -> QueryResult<Option<AccountRow>> {
    accounts::table.find(id).select(AccountRow::as_select()).first(conn).optional()
}

pub fn list(conn: &mut DbConn) -> QueryResult<Vec<AccountRow>> {
    accounts::table.order(accounts::username_key.asc()).select(AccountRow::as_select()).load(conn)
}

pub fn set_password_hash(conn: &mut DbConn, id: &str, hash: &str, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(accounts::table.find(id))
        .set((accounts::password_hash.eq(hash), accounts::updated_at.eq(now)))
        .execute(conn)
}

pub fn set_status(conn: &mut DbConn, id: &str, status: &str, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(accounts::table.find(id))
        .set((accounts::status.eq(status), accounts::updated_at.eq(now)))
        .execute(conn)
}

pub fn roles_of(conn: &mut DbConn, account_id: &str) -> QueryResult<Vec<String>> {
    account_roles::table
        .filter(account_roles::account_id.eq(account_id))
        .order(account_roles::role.asc())
        .select(account_roles::role)
        .load(conn)
}

/// All (account_id, role) pairs, for listing many accounts in one query.
pub fn all_roles(conn: &mut DbConn) -> QueryResult<Vec<(String, String)>> {
    account_roles::table
        .order((account_roles::account_id.asc(), account_roles::role.asc()))
        .select((account_roles::account_id, account_roles::role))
        .load(conn)
}

/// Adds a role; returns false when the account already had it.
pub fn add_role(conn: &mut DbConn, account_id: &str, role: &str) -> QueryResult<bool> {
    let exists = account_roles::table
        .filter(account_roles::account_id.eq(account_id))
        .filter(account_roles::role.eq(role))
        .count()
        .get_result::<i64>(conn)?
        > 0;
    if exists {
        return Ok(false);
    }
    diesel::insert_into(account_roles::table)
        .values((account_roles::account_id.eq(account_id), account_roles::role.eq(role)))
        .execute(conn)?;
    Ok(true)
}

/// Removes a role; returns false when the account did not have it.
pub fn remove_role(conn: &mut DbConn, account_id: &str, role: &str) -> QueryResult<bool> {
    diesel::delete(
        account_roles::table.filter(account_roles::account_id.eq(account_id)).filter(account_roles::role.eq(role)),
    )
    .execute(conn)
    .map(|n| n > 0)
}

/// Active accounts whose verified phone is `phone` (at most `limit`).
pub fn with_verified_phone(conn: &mut DbConn, phone: &str, limit: i64) -> QueryResult<Vec<AccountRow>> {
    accounts::table
        .filter(accounts::phone.eq(phone))
        .filter(accounts::phone_verified.eq(true))
        .filter(accounts::status.eq("active"))
        .limit(limit)
        .select(AccountRow::as_select())
        .load(conn)
}

// --- the admin console: search and keyset pages (issue 8) ---

diesel::define_sql_function! {
    /// SQL `lower()`: both backends have it, and the migration indexes
    /// `lower(display_name)` and `lower(email)` with the same expression.
    fn lower(x: diesel::sql_types::Nullable<diesel::sql_types::Text>) -> diesel::sql_types::Nullable<diesel::sql_types::Text>;
}

/// Which accounts a console page asks for, besides the filters.
#[derive(Debug, Clone)]
pub enum AccountMatch {
    /// Every account.
    All,
    /// `username_key` starts with the (lower-cased) text.
    UsernamePrefix(String),
    /// The lower-cased display name starts with the (lower-cased) text.
    NamePrefix(String),
    /// These ids (found by an exact match elsewhere).
    Ids(Vec<String>),
}

/// The console's list filters.
#[derive(Debug, Clone, Default)]
pub struct AccountFilter {
    pub status: Option<String>,
    pub role: Option<String>,
    /// `Some(true)`: only accounts with a WeChat identity; `Some(false)`: only without.
    pub linked: Option<bool>,
}

/// The upper end of the range of strings that start with `prefix`. Byte
/// order (SQLite's BINARY, PostgreSQL's C / C.UTF-8 collation) puts
/// U+10FFFF after every character, so `>= prefix AND < prefix||U+10FFFF`
/// is a prefix match that a plain b-tree index serves (LIKE would need
/// `text_pattern_ops` on PostgreSQL and NOCASE columns on SQLite).
pub(crate) fn prefix_end(prefix: &str) -> String {
    format!("{prefix}\u{10FFFF}")
}

/// One keyset page of accounts in `username_key` order: the first `limit`
/// after the cursor `after` (a `username_key`). Never OFFSET: every page
/// costs the same however deep it is.
pub fn page(
    conn: &mut DbConn,
    matching: &AccountMatch,
    filter: &AccountFilter,
    after: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<AccountRow>> {
    use super::schema::wechat_identities;
    let mut query = accounts::table.select(AccountRow::as_select()).into_boxed::<<DbConn as Connection>::Backend>();
    match matching {
        AccountMatch::All => {}
        AccountMatch::UsernamePrefix(prefix) => {
            query = query
                .filter(accounts::username_key.ge(prefix.clone()))
                .filter(accounts::username_key.lt(prefix_end(prefix)));
        }
        AccountMatch::NamePrefix(prefix) => {
            query = query
                .filter(lower(accounts::display_name).ge(prefix.clone()))
                .filter(lower(accounts::display_name).lt(prefix_end(prefix)));
        }
        AccountMatch::Ids(ids) => query = query.filter(accounts::id.eq_any(ids.clone())),
    }
    if let Some(status) = &filter.status {
        query = query.filter(accounts::status.eq(status.clone()));
    }
    if let Some(role) = &filter.role {
        query = query.filter(accounts::id.eq_any(
            account_roles::table.filter(account_roles::role.eq(role.clone())).select(account_roles::account_id),
        ));
    }
    if let Some(linked) = filter.linked {
        let has_identity = diesel::dsl::exists(
            wechat_identities::table.filter(wechat_identities::account_id.eq(accounts::id.nullable())),
        );
        query = if linked { query.filter(has_identity) } else { query.filter(diesel::dsl::not(has_identity)) };
    }
    if let Some(after) = after {
        query = query.filter(accounts::username_key.gt(after.to_owned()));
    }
    query.order(accounts::username_key.asc()).limit(limit).load(conn)
}

/// Ids of accounts whose id, email (case-insensitive) or phone is exactly `q`.
pub fn ids_matching_exactly(conn: &mut DbConn, q: &str) -> QueryResult<Vec<String>> {
    let lowered = q.to_lowercase();
    let mut ids: Vec<String> = accounts::table.filter(accounts::id.eq(q)).select(accounts::id).load(conn)?;
    ids.extend(
        accounts::table
            .filter(lower(accounts::email).eq(lowered))
            .select(accounts::id)
            .limit(100)
            .load::<String>(conn)?,
    );
    ids.extend(accounts::table.filter(accounts::phone.eq(q)).select(accounts::id).limit(100).load::<String>(conn)?);
    Ok(ids)
}

/// The roles of many accounts at once: (account_id, role) pairs.
pub fn roles_of_many(conn: &mut DbConn, account_ids: &[String]) -> QueryResult<Vec<(String, String)>> {
    account_roles::table
        .filter(account_roles::account_id.eq_any(account_ids))
        .select((account_roles::account_id, account_roles::role))
        .load(conn)
}

/// Active accounts holding `role` (the last-admin rule).
pub fn count_active_with_role(conn: &mut DbConn, role: &str) -> QueryResult<i64> {
    account_roles::table
        .inner_join(accounts::table)
        .filter(account_roles::role.eq(role))
        .filter(accounts::status.eq("active"))
        .count()
        .get_result(conn)
}

/// The number of accounts: exact up to 10,000 (a bounded scan), beyond
/// that the planner's estimate (PostgreSQL `pg_class.reltuples`, refreshed
/// by autovacuum) or the largest rowid (SQLite; ids are never reused, so
/// deleted accounts make it an upper bound). A console home page must not
/// run COUNT(*) over a million rows on every view. Returns (n, exact).
pub fn count_estimate(conn: &mut DbConn) -> QueryResult<(i64, bool)> {
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    const EXACT_UP_TO: i64 = 10_000;
    let bounded: N = diesel::sql_query("SELECT COUNT(*) AS n FROM (SELECT 1 FROM accounts LIMIT 10001) AS bounded")
        .get_result(conn)?;
    if bounded.n <= EXACT_UP_TO {
        return Ok((bounded.n, true));
    }
    let estimate_sql = match conn {
        DbConn::Postgresql(_) => "SELECT CAST(reltuples AS BIGINT) AS n FROM pg_class WHERE relname = 'accounts'",
        DbConn::Sqlite(_) => "SELECT COALESCE(MAX(rowid), 0) AS n FROM accounts",
    };
    let estimate: N = diesel::sql_query(estimate_sql).get_result(conn)?;
    Ok((estimate.n.max(bounded.n), false))
}

/// The profile fields an admin edits.
#[derive(Debug, Clone, Copy)]
pub struct ProfileFields<'a> {
    pub display_name: Option<&'a str>,
    pub email: Option<&'a str>,
    pub email_verified: bool,
    pub phone: Option<&'a str>,
    pub phone_verified: bool,
}

/// Updates the profile fields an admin edits.
pub fn set_profile(conn: &mut DbConn, id: &str, fields: ProfileFields<'_>, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(accounts::table.find(id))
        .set((
            accounts::display_name.eq(fields.display_name),
            accounts::email.eq(fields.email),
            accounts::email_verified.eq(fields.email_verified),
            accounts::phone.eq(fields.phone),
            accounts::phone_verified.eq(fields.phone_verified),
            accounts::updated_at.eq(now),
        ))
        .execute(conn)
}

// --- merging accounts (issue 8 §4) ---

/// Disables `id` and records the account it was merged into.
pub fn mark_merged(conn: &mut DbConn, id: &str, into: &str, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(accounts::table.find(id))
        .set((accounts::status.eq("disabled"), accounts::merged_into.eq(into), accounts::updated_at.eq(now)))
        .execute(conn)
}

/// The account `id` was merged into, if any.
pub fn merged_into(conn: &mut DbConn, id: &str) -> QueryResult<Option<String>> {
    accounts::table.find(id).select(accounts::merged_into).first::<Option<String>>(conn).optional().map(Option::flatten)
}

pub fn set_email(
    conn: &mut DbConn,
    id: &str,
    email: Option<&str>,
    verified: bool,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(accounts::table.find(id))
        .set((accounts::email.eq(email), accounts::email_verified.eq(verified), accounts::updated_at.eq(now)))
        .execute(conn)
}

pub fn set_phone(
    conn: &mut DbConn,
    id: &str,
    phone: Option<&str>,
    verified: bool,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(accounts::table.find(id))
        .set((accounts::phone.eq(phone), accounts::phone_verified.eq(verified), accounts::updated_at.eq(now)))
        .execute(conn)
}

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

//! Queries on `consents`.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConn;
use super::schema::consents;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = consents)]
pub struct ConsentRow {
    pub account_id: String,
    pub client_id: String,
    pub scope: String,
    pub granted_at: NaiveDateTime,
}

pub fn find(conn: &mut DbConn, account_id: &str, client_id: &str) -> QueryResult<Option<ConsentRow>> {
    consents::table.find((account_id, client_id)).select(ConsentRow::as_select()).first(conn).optional()
}

pub fn list_for_account(conn: &mut DbConn, account_id: &str) -> QueryResult<Vec<ConsentRow>> {
    consents::table
        .filter(consents::account_id.eq(account_id))
        .order(consents::granted_at.desc())
        .select(ConsentRow::as_select())
        .load(conn)
}

/// Records (or widens) a consent. Run inside a write transaction.
pub fn save(conn: &mut DbConn, row: &ConsentRow) -> QueryResult<()> {
    let updated = diesel::update(consents::table.find((&row.account_id, &row.client_id)))
        .set((consents::scope.eq(&row.scope), consents::granted_at.eq(row.granted_at)))
        .execute(conn)?;
    if updated == 0 {
        diesel::insert_into(consents::table).values(row).execute(conn)?;
    }
    Ok(())
}

pub fn delete(conn: &mut DbConn, account_id: &str, client_id: &str) -> QueryResult<bool> {
    diesel::delete(consents::table.find((account_id, client_id))).execute(conn).map(|n| n > 0)
}

/// Moves the consent of `from` for `client_id` to `to`.
pub fn move_to(conn: &mut DbConn, from: &str, to: &str, client_id: &str) -> QueryResult<usize> {
    diesel::update(consents::table.find((from, client_id))).set(consents::account_id.eq(to)).execute(conn)
}

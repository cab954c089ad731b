//! Queries on `signing_keys`.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConn;
use super::schema::signing_keys;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = signing_keys)]
pub struct SigningKeyRow {
    pub kid: String,
    pub alg: String,
    pub private_key: String,
    pub created_at: NaiveDateTime,
    pub retired_at: Option<NaiveDateTime>,
    pub publish_until: Option<NaiveDateTime>,
    /// Published before this, signs only from this on (issue 10.14).
    pub not_before_signing: Option<NaiveDateTime>,
}

pub fn insert(conn: &mut DbConn, row: &SigningKeyRow) -> QueryResult<()> {
    diesel::insert_into(signing_keys::table).values(row).execute(conn).map(|_| ())
}

/// Keys still published in the JWKS at `now` (active or recently
/// retired), newest first.
pub fn published(conn: &mut DbConn, now: NaiveDateTime) -> QueryResult<Vec<SigningKeyRow>> {
    signing_keys::table
        .filter(signing_keys::publish_until.is_null().or(signing_keys::publish_until.gt(now)))
        .order(signing_keys::created_at.desc())
        .select(SigningKeyRow::as_select())
        .load(conn)
}

pub fn all(conn: &mut DbConn) -> QueryResult<Vec<SigningKeyRow>> {
    signing_keys::table.order(signing_keys::created_at.desc()).select(SigningKeyRow::as_select()).load(conn)
}

/// Retires every unretired key of `alg` at `retire_at` (it signs until
/// then), keeping it published until `publish_until`.
pub fn retire_active(
    conn: &mut DbConn,
    alg: &str,
    retire_at: NaiveDateTime,
    publish_until: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(signing_keys::table.filter(signing_keys::alg.eq(alg)).filter(signing_keys::retired_at.is_null()))
        .set((signing_keys::retired_at.eq(retire_at), signing_keys::publish_until.eq(publish_until)))
        .execute(conn)
}

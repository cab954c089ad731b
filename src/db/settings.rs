//! Queries on `settings`, a small key/value table for instance-wide state.

use diesel::prelude::*;

use super::DbConn;
use super::schema::settings;

pub fn get(conn: &mut DbConn, name: &str) -> QueryResult<Option<String>> {
    settings::table.find(name).select(settings::value).first(conn).optional()
}

/// Sets `name` to `value`, inserting it if need be.
pub fn set(conn: &mut DbConn, name: &str, value: &str) -> QueryResult<()> {
    let now = super::now();
    let updated = diesel::update(settings::table.find(name))
        .set((settings::value.eq(value), settings::updated_at.eq(now)))
        .execute(conn)?;
    if updated == 0 {
        diesel::insert_into(settings::table)
            .values((settings::name.eq(name), settings::value.eq(value), settings::updated_at.eq(now)))
            .execute(conn)?;
    }
    Ok(())
}

/// Inserts the value unless the name exists; returns the stored value
/// (ours, or the one another instance wrote first).
pub fn get_or_insert(conn: &mut DbConn, name: &str, value: &str) -> QueryResult<String> {
    if let Some(existing) = get(conn, name)? {
        return Ok(existing);
    }
    diesel::insert_into(settings::table)
        .values((settings::name.eq(name), settings::value.eq(value), settings::updated_at.eq(super::now())))
        .execute(conn)?;
    Ok(value.to_owned())
}

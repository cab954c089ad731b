//! Queries on `clients`.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConn;
use super::schema::clients;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = clients)]
pub struct ClientRow {
    pub id: String,
    pub name: String,
    pub secret_hash: Option<String>,
    pub is_public: bool,
    pub first_party: bool,
    pub redirect_uris: String,
    pub post_logout_redirect_uris: String,
    pub grant_types: String,
    pub scopes: String,
    pub id_token_signing_alg: String,
    pub always_issue_refresh_token: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub wechat_appid: Option<String>,
    pub host_app: bool,
    pub trusted_host_client: Option<String>,
    pub access_token_signing_alg: String,
}

pub fn insert(conn: &mut DbConn, row: &ClientRow) -> QueryResult<()> {
    diesel::insert_into(clients::table).values(row).execute(conn).map(|_| ())
}

pub fn find(conn: &mut DbConn, id: &str) -> QueryResult<Option<ClientRow>> {
    clients::table.find(id).select(ClientRow::as_select()).first(conn).optional()
}

pub fn list(conn: &mut DbConn) -> QueryResult<Vec<ClientRow>> {
    clients::table.order(clients::created_at.asc()).select(ClientRow::as_select()).load(conn)
}

pub fn delete(conn: &mut DbConn, id: &str) -> QueryResult<bool> {
    diesel::delete(clients::table.find(id)).execute(conn).map(|n| n > 0)
}

pub fn set_secret_hash(conn: &mut DbConn, id: &str, hash: &str, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(clients::table.find(id))
        .set((clients::secret_hash.eq(hash), clients::updated_at.eq(now)))
        .execute(conn)
}

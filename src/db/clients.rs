//! Queries on `clients`.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConn;
use super::schema::{client_hosted_apps, clients};

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
    pub backchannel_logout_uri: Option<String>,
    pub backchannel_logout_session_required: bool,
}

/// The settings `wxfed client update` may change (not the id, the secret
/// or whether the client is public).
#[derive(Debug, Clone, AsChangeset)]
#[diesel(table_name = clients, treat_none_as_null = true)]
pub struct ClientSettings {
    pub name: String,
    pub first_party: bool,
    pub redirect_uris: String,
    pub post_logout_redirect_uris: String,
    pub grant_types: String,
    pub scopes: String,
    pub id_token_signing_alg: String,
    pub access_token_signing_alg: String,
    pub wechat_appid: Option<String>,
    pub host_app: bool,
    pub trusted_host_client: Option<String>,
    pub backchannel_logout_uri: Option<String>,
    pub backchannel_logout_session_required: bool,
    pub updated_at: NaiveDateTime,
}

pub fn update_settings(conn: &mut DbConn, id: &str, settings: &ClientSettings) -> QueryResult<usize> {
    diesel::update(clients::table.find(id)).set(settings).execute(conn)
}

/// Whether any client trusts `id` as its host app.
pub fn is_trusted_as_host(conn: &mut DbConn, id: &str) -> QueryResult<bool> {
    clients::table.filter(clients::trusted_host_client.eq(id)).count().get_result::<i64>(conn).map(|n| n > 0)
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

/// The mini-program appids a host-app client may mint codes for.
pub fn hosted_apps(conn: &mut DbConn, client_id: &str) -> QueryResult<Vec<String>> {
    client_hosted_apps::table
        .filter(client_hosted_apps::client_id.eq(client_id))
        .order(client_hosted_apps::appid.asc())
        .select(client_hosted_apps::appid)
        .load(conn)
}

/// Replaces the mini-programs a host-app client may mint codes for.
pub fn set_hosted_apps(conn: &mut DbConn, client_id: &str, appids: &[String]) -> QueryResult<()> {
    diesel::delete(client_hosted_apps::table.filter(client_hosted_apps::client_id.eq(client_id))).execute(conn)?;
    for appid in appids {
        diesel::insert_into(client_hosted_apps::table)
            .values((client_hosted_apps::client_id.eq(client_id), client_hosted_apps::appid.eq(appid)))
            .execute(conn)?;
    }
    Ok(())
}

/// The clients tied to a WeChat app or hosting it (a WeChat app cannot be
/// removed while any of them still uses it).
pub fn using_app(conn: &mut DbConn, appid: &str) -> QueryResult<Vec<String>> {
    let mut ids: Vec<String> = clients::table
        .filter(clients::wechat_appid.eq(appid))
        .select(clients::id)
        .order(clients::id.asc())
        .load(conn)?;
    let hosts: Vec<String> = client_hosted_apps::table
        .filter(client_hosted_apps::appid.eq(appid))
        .select(client_hosted_apps::client_id)
        .load(conn)?;
    for id in hosts {
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    Ok(ids)
}

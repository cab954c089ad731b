//! Queries on the WeChat tables: apps, identities, OpenIDs, app tokens,
//! login states and pending binds.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConn;
use super::schema::{
    wechat_app_tokens, wechat_apps, wechat_identities, wechat_login_states, wechat_openids, wechat_pending_binds,
};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = wechat_apps)]
pub struct AppRow {
    pub appid: String,
    pub kind: String,
    pub name: String,
    pub open_platform: Option<String>,
    pub redirect_domain: Option<String>,
    pub secret: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = wechat_identities)]
pub struct IdentityRow {
    pub id: String,
    pub platform_key: String,
    pub open_platform: Option<String>,
    pub unionid: Option<String>,
    pub account_id: Option<String>,
    pub nickname: Option<String>,
    pub avatar_url: Option<String>,
    pub phone: Option<String>,
    pub phone_verified_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = wechat_openids)]
pub struct OpenIdRow {
    pub appid: String,
    pub openid: String,
    pub identity_id: String,
    pub session_key: Option<String>,
    pub created_at: NaiveDateTime,
    pub last_login_at: NaiveDateTime,
}

// --- apps ---

pub fn insert_app(conn: &mut DbConn, row: &AppRow) -> QueryResult<()> {
    diesel::insert_into(wechat_apps::table).values(row).execute(conn).map(|_| ())
}

pub fn find_app(conn: &mut DbConn, appid: &str) -> QueryResult<Option<AppRow>> {
    wechat_apps::table.find(appid).select(AppRow::as_select()).first(conn).optional()
}

pub fn list_apps(conn: &mut DbConn) -> QueryResult<Vec<AppRow>> {
    wechat_apps::table.order(wechat_apps::created_at.asc()).select(AppRow::as_select()).load(conn)
}

pub fn first_app_of_kind(conn: &mut DbConn, kind: &str) -> QueryResult<Option<AppRow>> {
    wechat_apps::table
        .filter(wechat_apps::kind.eq(kind))
        .order(wechat_apps::created_at.asc())
        .select(AppRow::as_select())
        .first(conn)
        .optional()
}

pub fn delete_app(conn: &mut DbConn, appid: &str) -> QueryResult<bool> {
    diesel::delete(wechat_app_tokens::table.find(appid)).execute(conn)?;
    diesel::delete(wechat_apps::table.find(appid)).execute(conn).map(|n| n > 0)
}

pub fn set_app_secret(conn: &mut DbConn, appid: &str, sealed: &str, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(wechat_apps::table.find(appid))
        .set((wechat_apps::secret.eq(sealed), wechat_apps::updated_at.eq(now)))
        .execute(conn)
}

// --- identities ---

pub fn insert_identity(conn: &mut DbConn, row: &IdentityRow) -> QueryResult<()> {
    diesel::insert_into(wechat_identities::table).values(row).execute(conn).map(|_| ())
}

pub fn find_identity(conn: &mut DbConn, id: &str) -> QueryResult<Option<IdentityRow>> {
    wechat_identities::table.find(id).select(IdentityRow::as_select()).first(conn).optional()
}

pub fn find_identity_by_unionid(
    conn: &mut DbConn,
    open_platform: &str,
    unionid: &str,
) -> QueryResult<Option<IdentityRow>> {
    wechat_identities::table
        .filter(wechat_identities::open_platform.eq(open_platform))
        .filter(wechat_identities::unionid.eq(unionid))
        .select(IdentityRow::as_select())
        .first(conn)
        .optional()
}

pub fn identities_of_account(conn: &mut DbConn, account_id: &str) -> QueryResult<Vec<IdentityRow>> {
    wechat_identities::table
        .filter(wechat_identities::account_id.eq(account_id))
        .order(wechat_identities::created_at.asc())
        .select(IdentityRow::as_select())
        .load(conn)
}

pub fn list_identities(conn: &mut DbConn, limit: i64) -> QueryResult<Vec<IdentityRow>> {
    wechat_identities::table
        .order(wechat_identities::created_at.desc())
        .limit(limit)
        .select(IdentityRow::as_select())
        .load(conn)
}

/// Gives an identity keyed by (appid, OpenID) its UnionID.
pub fn set_identity_unionid(
    conn: &mut DbConn,
    id: &str,
    open_platform: &str,
    unionid: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(wechat_identities::table.find(id))
        .set((
            wechat_identities::platform_key.eq(format!("op:{open_platform}")),
            wechat_identities::open_platform.eq(open_platform),
            wechat_identities::unionid.eq(unionid),
            wechat_identities::updated_at.eq(now),
        ))
        .execute(conn)
}

pub fn set_identity_profile(
    conn: &mut DbConn,
    id: &str,
    nickname: Option<&str>,
    avatar_url: Option<&str>,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(wechat_identities::table.find(id))
        .set((
            wechat_identities::nickname.eq(nickname),
            wechat_identities::avatar_url.eq(avatar_url),
            wechat_identities::updated_at.eq(now),
        ))
        .execute(conn)
}

pub fn set_identity_account(
    conn: &mut DbConn,
    id: &str,
    account_id: Option<&str>,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(wechat_identities::table.find(id))
        .set((wechat_identities::account_id.eq(account_id), wechat_identities::updated_at.eq(now)))
        .execute(conn)
}

pub fn delete_identity(conn: &mut DbConn, id: &str) -> QueryResult<usize> {
    diesel::delete(wechat_identities::table.find(id)).execute(conn)
}

/// The identity an account has on a platform, if any.
pub fn identity_of_account_on(
    conn: &mut DbConn,
    account_id: &str,
    platform_key: &str,
) -> QueryResult<Option<IdentityRow>> {
    wechat_identities::table
        .filter(wechat_identities::account_id.eq(account_id))
        .filter(wechat_identities::platform_key.eq(platform_key))
        .select(IdentityRow::as_select())
        .first(conn)
        .optional()
}

// --- OpenIDs ---

pub fn find_openid(conn: &mut DbConn, appid: &str, openid: &str) -> QueryResult<Option<OpenIdRow>> {
    wechat_openids::table.find((appid, openid)).select(OpenIdRow::as_select()).first(conn).optional()
}

pub fn insert_openid(conn: &mut DbConn, row: &OpenIdRow) -> QueryResult<()> {
    diesel::insert_into(wechat_openids::table).values(row).execute(conn).map(|_| ())
}

pub fn openids_of(conn: &mut DbConn, identity_id: &str) -> QueryResult<Vec<OpenIdRow>> {
    wechat_openids::table
        .filter(wechat_openids::identity_id.eq(identity_id))
        .order(wechat_openids::appid.asc())
        .select(OpenIdRow::as_select())
        .load(conn)
}

pub fn openid_of_identity_in_app(conn: &mut DbConn, identity_id: &str, appid: &str) -> QueryResult<Option<String>> {
    wechat_openids::table
        .filter(wechat_openids::identity_id.eq(identity_id))
        .filter(wechat_openids::appid.eq(appid))
        .select(wechat_openids::openid)
        .first(conn)
        .optional()
}

/// Moves every OpenID of identity `from` to identity `to` (a merge).
pub fn move_openids(conn: &mut DbConn, from: &str, to: &str) -> QueryResult<usize> {
    diesel::update(wechat_openids::table.filter(wechat_openids::identity_id.eq(from)))
        .set(wechat_openids::identity_id.eq(to))
        .execute(conn)
}

pub fn record_openid_login(
    conn: &mut DbConn,
    appid: &str,
    openid: &str,
    session_key: Option<&str>,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    let target = wechat_openids::table.find((appid, openid));
    match session_key {
        Some(sealed) => diesel::update(target)
            .set((wechat_openids::session_key.eq(sealed), wechat_openids::last_login_at.eq(now)))
            .execute(conn),
        None => diesel::update(target).set(wechat_openids::last_login_at.eq(now)).execute(conn),
    }
}

// --- app access tokens ---

pub fn find_app_token(conn: &mut DbConn, appid: &str) -> QueryResult<Option<(String, NaiveDateTime)>> {
    wechat_app_tokens::table
        .find(appid)
        .select((wechat_app_tokens::access_token, wechat_app_tokens::expires_at))
        .first(conn)
        .optional()
}

pub fn save_app_token(
    conn: &mut DbConn,
    appid: &str,
    sealed: &str,
    expires_at: NaiveDateTime,
    now: NaiveDateTime,
) -> QueryResult<()> {
    let updated = diesel::update(wechat_app_tokens::table.find(appid))
        .set((
            wechat_app_tokens::access_token.eq(sealed),
            wechat_app_tokens::expires_at.eq(expires_at),
            wechat_app_tokens::updated_at.eq(now),
        ))
        .execute(conn)?;
    if updated == 0 {
        diesel::insert_into(wechat_app_tokens::table)
            .values((
                wechat_app_tokens::appid.eq(appid),
                wechat_app_tokens::access_token.eq(sealed),
                wechat_app_tokens::expires_at.eq(expires_at),
                wechat_app_tokens::updated_at.eq(now),
            ))
            .execute(conn)?;
    }
    Ok(())
}

// --- login states and pending binds ---

pub struct LoginState {
    pub browser_hash: String,
    pub appid: String,
    pub return_to: String,
    pub expires_at: NaiveDateTime,
}

pub fn insert_login_state(
    conn: &mut DbConn,
    state_hash: &str,
    state: &LoginState,
    now: NaiveDateTime,
) -> QueryResult<()> {
    diesel::insert_into(wechat_login_states::table)
        .values((
            wechat_login_states::state_hash.eq(state_hash),
            wechat_login_states::browser_hash.eq(&state.browser_hash),
            wechat_login_states::appid.eq(&state.appid),
            wechat_login_states::return_to.eq(&state.return_to),
            wechat_login_states::created_at.eq(now),
            wechat_login_states::expires_at.eq(state.expires_at),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Takes a login state out (single use): whoever deletes it owns it.
pub fn take_login_state(conn: &mut DbConn, state_hash: &str) -> QueryResult<Option<LoginState>> {
    let found: Option<(String, String, String, NaiveDateTime)> = wechat_login_states::table
        .find(state_hash)
        .select((
            wechat_login_states::browser_hash,
            wechat_login_states::appid,
            wechat_login_states::return_to,
            wechat_login_states::expires_at,
        ))
        .first(conn)
        .optional()?;
    let Some((browser_hash, appid, return_to, expires_at)) = found else {
        return Ok(None);
    };
    let deleted = diesel::delete(wechat_login_states::table.find(state_hash)).execute(conn)?;
    Ok((deleted == 1).then_some(LoginState { browser_hash, appid, return_to, expires_at }))
}

pub fn insert_pending_bind(
    conn: &mut DbConn,
    token_hash: &str,
    browser_hash: &str,
    identity_id: &str,
    return_to: &str,
    expires_at: NaiveDateTime,
) -> QueryResult<()> {
    diesel::insert_into(wechat_pending_binds::table)
        .values((
            wechat_pending_binds::token_hash.eq(token_hash),
            wechat_pending_binds::browser_hash.eq(browser_hash),
            wechat_pending_binds::identity_id.eq(identity_id),
            wechat_pending_binds::return_to.eq(return_to),
            wechat_pending_binds::expires_at.eq(expires_at),
        ))
        .execute(conn)
        .map(|_| ())
}

/// (browser_hash, identity_id, return_to, expires_at) of a pending bind.
pub fn find_pending_bind(
    conn: &mut DbConn,
    token_hash: &str,
) -> QueryResult<Option<(String, String, String, NaiveDateTime)>> {
    wechat_pending_binds::table
        .find(token_hash)
        .select((
            wechat_pending_binds::browser_hash,
            wechat_pending_binds::identity_id,
            wechat_pending_binds::return_to,
            wechat_pending_binds::expires_at,
        ))
        .first(conn)
        .optional()
}

pub fn delete_pending_bind(conn: &mut DbConn, token_hash: &str) -> QueryResult<bool> {
    diesel::delete(wechat_pending_binds::table.find(token_hash)).execute(conn).map(|n| n > 0)
}

/// Deletes expired login states and pending binds.
pub fn purge_expired(conn: &mut DbConn, now: NaiveDateTime) -> QueryResult<usize> {
    let states =
        diesel::delete(wechat_login_states::table.filter(wechat_login_states::expires_at.lt(now))).execute(conn)?;
    let binds =
        diesel::delete(wechat_pending_binds::table.filter(wechat_pending_binds::expires_at.lt(now))).execute(conn)?;
    Ok(states + binds)
}

// --- host-issued codes (FinClip scheme 1) ---

use super::schema::host_codes;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = host_codes)]
pub struct HostCodeRow {
    pub code_hash: String,
    pub account_id: String,
    pub appid: String,
    pub host_client_id: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub consumed_at: Option<NaiveDateTime>,
}

pub fn insert_host_code(conn: &mut DbConn, row: &HostCodeRow) -> QueryResult<()> {
    diesel::insert_into(host_codes::table).values(row).execute(conn).map(|_| ())
}

pub fn find_host_code(conn: &mut DbConn, code_hash: &str) -> QueryResult<Option<HostCodeRow>> {
    host_codes::table.find(code_hash).select(HostCodeRow::as_select()).first(conn).optional()
}

/// Marks a host code used; only the first caller gets `true`.
pub fn consume_host_code(conn: &mut DbConn, code_hash: &str, now: NaiveDateTime) -> QueryResult<bool> {
    diesel::update(host_codes::table.find(code_hash).filter(host_codes::consumed_at.is_null()))
        .set(host_codes::consumed_at.eq(now))
        .execute(conn)
        .map(|n| n == 1)
}

/// Host codes are kept a day after expiry (a reuse then still says 40163).
pub fn purge_host_codes(conn: &mut DbConn, before: NaiveDateTime) -> QueryResult<usize> {
    diesel::delete(host_codes::table.filter(host_codes::expires_at.lt(before))).execute(conn)
}

pub fn set_identity_phone(conn: &mut DbConn, id: &str, phone: &str, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(wechat_identities::table.find(id))
        .set((
            wechat_identities::phone.eq(phone),
            wechat_identities::phone_verified_at.eq(now),
            wechat_identities::updated_at.eq(now),
        ))
        .execute(conn)
}

// --- the admin console (issue 8) ---

/// Ids of accounts linked to the identity whose UnionID, or one of whose
/// OpenIDs, is exactly `external_id` (the lookup behind a complaint).
pub fn account_ids_by_external_id(conn: &mut DbConn, external_id: &str) -> QueryResult<Vec<String>> {
    let mut ids: Vec<String> = wechat_identities::table
        .filter(wechat_identities::unionid.eq(external_id))
        .filter(wechat_identities::account_id.is_not_null())
        .select(wechat_identities::account_id.assume_not_null())
        .limit(100)
        .load(conn)?;
    ids.extend(
        wechat_openids::table
            .inner_join(wechat_identities::table)
            .filter(wechat_openids::openid.eq(external_id))
            .filter(wechat_identities::account_id.is_not_null())
            .select(wechat_identities::account_id.assume_not_null())
            .limit(100)
            .load::<String>(conn)?,
    );
    Ok(ids)
}

/// Identities linked to an account (the console's counts).
pub fn count_linked_identities(conn: &mut DbConn) -> QueryResult<i64> {
    wechat_identities::table.filter(wechat_identities::account_id.is_not_null()).count().get_result(conn)
}

// --- the console's identity list (issue 8 §4) ---

/// Which identities a console page asks for, besides the linked filter.
#[derive(Debug, Clone)]
pub enum IdentityMatch {
    All,
    /// These ids (found by an exact match elsewhere).
    Ids(Vec<String>),
    /// `open_platform` equals the text.
    OpenPlatform(String),
    /// Has an OpenID in this app.
    AppId(String),
    /// The lower-cased nickname starts with the (lower-cased) text.
    NicknamePrefix(String),
}

/// The keyset cursor of the identity list: (created_at, id) of the last
/// row shown, newest first.
pub type IdentityCursor = (NaiveDateTime, String);

/// One keyset page of identities, newest first: the first `limit` after
/// `after`. Never OFFSET.
pub fn identity_page(
    conn: &mut DbConn,
    which: &IdentityMatch,
    linked: Option<bool>,
    after: Option<&IdentityCursor>,
    limit: i64,
) -> QueryResult<Vec<IdentityRow>> {
    use super::accounts::{lower, prefix_end};
    let mut query = wechat_identities::table.select(IdentityRow::as_select()).into_boxed();
    match which {
        IdentityMatch::All => {}
        IdentityMatch::Ids(ids) => query = query.filter(wechat_identities::id.eq_any(ids.clone())),
        IdentityMatch::OpenPlatform(platform) => {
            query = query.filter(wechat_identities::open_platform.eq(platform.clone()));
        }
        IdentityMatch::AppId(appid) => {
            let in_app = wechat_openids::table
                .filter(wechat_openids::appid.eq(appid.clone()))
                .select(wechat_openids::identity_id);
            query = query.filter(wechat_identities::id.eq_any(in_app));
        }
        IdentityMatch::NicknamePrefix(prefix) => {
            query = query
                .filter(lower(wechat_identities::nickname).ge(prefix.clone()))
                .filter(lower(wechat_identities::nickname).lt(prefix_end(prefix)));
        }
    }
    match linked {
        Some(true) => query = query.filter(wechat_identities::account_id.is_not_null()),
        Some(false) => query = query.filter(wechat_identities::account_id.is_null()),
        None => {}
    }
    if let Some((at, id)) = after {
        query = query.filter(
            wechat_identities::created_at
                .lt(*at)
                .or(wechat_identities::created_at.eq(*at).and(wechat_identities::id.lt(id.clone()))),
        );
    }
    query.order((wechat_identities::created_at.desc(), wechat_identities::id.desc())).limit(limit).load(conn)
}

/// Ids of identities whose id, UnionID or one of whose OpenIDs is exactly
/// `q`, or that are linked to the account with username key `username_key`.
pub fn identity_ids_matching_exactly(conn: &mut DbConn, q: &str, username_key: &str) -> QueryResult<Vec<String>> {
    use super::schema::accounts;
    let mut ids: Vec<String> = wechat_identities::table
        .filter(wechat_identities::id.eq(q).or(wechat_identities::unionid.eq(q)))
        .select(wechat_identities::id)
        .limit(100)
        .load(conn)?;
    ids.extend(
        wechat_openids::table
            .filter(wechat_openids::openid.eq(q))
            .select(wechat_openids::identity_id)
            .limit(100)
            .load::<String>(conn)?,
    );
    let account: Option<String> =
        accounts::table.filter(accounts::username_key.eq(username_key)).select(accounts::id).first(conn).optional()?;
    if let Some(account) = account {
        ids.extend(
            wechat_identities::table
                .filter(wechat_identities::account_id.eq(account))
                .select(wechat_identities::id)
                .limit(100)
                .load::<String>(conn)?,
        );
    }
    Ok(ids)
}

/// Every identity linked to one of `account_ids` (names for list rows).
pub fn usernames_of(conn: &mut DbConn, account_ids: &[String]) -> QueryResult<Vec<(String, String)>> {
    use super::schema::accounts;
    accounts::table.filter(accounts::id.eq_any(account_ids)).select((accounts::id, accounts::username)).load(conn)
}

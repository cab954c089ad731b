//! Queries on `grants`, `authorization_codes`, `refresh_tokens` and
//! `revoked_access_tokens`: what the token endpoint issues and revokes.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConn;
use super::schema::{authorization_codes, grants, refresh_tokens, revoked_access_tokens};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = grants)]
pub struct GrantRow {
    pub id: String,
    pub client_id: String,
    pub account_id: Option<String>,
    pub scope: String,
    pub auth_time: Option<NaiveDateTime>,
    pub amr: String,
    pub sid: Option<String>,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub revoked_at: Option<NaiveDateTime>,
    /// Tokens were issued from it (its code was redeemed): the client
    /// holds tokens from the session `sid` (back-channel logout).
    pub tokens_issued: bool,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = authorization_codes)]
pub struct CodeRow {
    pub code_hash: String,
    pub grant_id: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub consumed_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = refresh_tokens)]
pub struct RefreshRow {
    pub token_hash: String,
    pub grant_id: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub rotated_at: Option<NaiveDateTime>,
}

pub fn insert_grant(conn: &mut DbConn, row: &GrantRow) -> QueryResult<()> {
    diesel::insert_into(grants::table).values(row).execute(conn).map(|_| ())
}

pub fn find_grant(conn: &mut DbConn, id: &str) -> QueryResult<Option<GrantRow>> {
    grants::table.find(id).select(GrantRow::as_select()).first(conn).optional()
}

/// Revokes a grant (and so everything issued from it). Returns false when
/// it was already revoked.
pub fn revoke_grant(conn: &mut DbConn, id: &str, now: NaiveDateTime) -> QueryResult<bool> {
    diesel::update(grants::table.find(id).filter(grants::revoked_at.is_null()))
        .set(grants::revoked_at.eq(now))
        .execute(conn)
        .map(|n| n > 0)
}

/// Extends a grant's lifetime (a refresh token issued from it lives
/// longer) and marks it as having issued tokens, in one statement.
/// Returns 0 when the grant already lived longer (then it is not marked).
pub fn extend_grant(conn: &mut DbConn, id: &str, expires_at: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(grants::table.find(id).filter(grants::expires_at.lt(expires_at)))
        .set((grants::expires_at.eq(expires_at), grants::tokens_issued.eq(true)))
        .execute(conn)
}

/// Marks a grant as having issued tokens (see [`GrantRow::tokens_issued`]).
pub fn mark_tokens_issued(conn: &mut DbConn, id: &str) -> QueryResult<usize> {
    diesel::update(grants::table.find(id).filter(grants::tokens_issued.eq(false)))
        .set(grants::tokens_issued.eq(true))
        .execute(conn)
}

/// Revokes every live grant of an account at one client (consent withdrawn).
pub fn revoke_grants_of(
    conn: &mut DbConn,
    account_id: &str,
    client_id: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        grants::table
            .filter(grants::account_id.eq(account_id))
            .filter(grants::client_id.eq(client_id))
            .filter(grants::revoked_at.is_null()),
    )
    .set(grants::revoked_at.eq(now))
    .execute(conn)
}

/// Revokes every live grant of an account, at every client (its
/// credentials changed, it was disabled, or it signed out everywhere).
pub fn revoke_all_grants_of_account(conn: &mut DbConn, account_id: &str, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(grants::table.filter(grants::account_id.eq(account_id)).filter(grants::revoked_at.is_null()))
        .set(grants::revoked_at.eq(now))
        .execute(conn)
}

pub fn insert_code(conn: &mut DbConn, row: &CodeRow) -> QueryResult<()> {
    diesel::insert_into(authorization_codes::table).values(row).execute(conn).map(|_| ())
}

pub fn find_code(conn: &mut DbConn, code_hash: &str) -> QueryResult<Option<CodeRow>> {
    authorization_codes::table.find(code_hash).select(CodeRow::as_select()).first(conn).optional()
}

/// Marks a code used. Only the first caller gets `true`: the conditional
/// update is what makes codes single-use across instances.
pub fn consume_code(conn: &mut DbConn, code_hash: &str, now: NaiveDateTime) -> QueryResult<bool> {
    diesel::update(authorization_codes::table.find(code_hash).filter(authorization_codes::consumed_at.is_null()))
        .set(authorization_codes::consumed_at.eq(now))
        .execute(conn)
        .map(|n| n == 1)
}

pub fn insert_refresh(conn: &mut DbConn, row: &RefreshRow) -> QueryResult<()> {
    diesel::insert_into(refresh_tokens::table).values(row).execute(conn).map(|_| ())
}

pub fn find_refresh(conn: &mut DbConn, token_hash: &str) -> QueryResult<Option<RefreshRow>> {
    refresh_tokens::table.find(token_hash).select(RefreshRow::as_select()).first(conn).optional()
}

/// Marks a refresh token rotated. Only the first caller gets `true`.
pub fn rotate_refresh(conn: &mut DbConn, token_hash: &str, now: NaiveDateTime) -> QueryResult<bool> {
    diesel::update(refresh_tokens::table.find(token_hash).filter(refresh_tokens::rotated_at.is_null()))
        .set(refresh_tokens::rotated_at.eq(now))
        .execute(conn)
        .map(|n| n == 1)
}

/// When a refresh token was rotated, and the sealed response it was
/// rotated into (kept for the reuse grace window).
pub fn rotation_of(
    conn: &mut DbConn,
    token_hash: &str,
) -> QueryResult<Option<(Option<NaiveDateTime>, Option<String>)>> {
    refresh_tokens::table
        .find(token_hash)
        .select((refresh_tokens::rotated_at, refresh_tokens::successor_sealed))
        .first(conn)
        .optional()
}

/// Stores the sealed response a refresh token was rotated into.
pub fn set_successor(conn: &mut DbConn, token_hash: &str, sealed: &str) -> QueryResult<usize> {
    diesel::update(refresh_tokens::table.find(token_hash))
        .set(refresh_tokens::successor_sealed.eq(sealed))
        .execute(conn)
}

/// Forgets the sealed successors of tokens rotated before `cutoff` (the
/// grace window has passed: they are never served again).
pub fn forget_successors(conn: &mut DbConn, cutoff: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::successor_sealed.is_not_null())
            .filter(refresh_tokens::rotated_at.lt(cutoff)),
    )
    .set(refresh_tokens::successor_sealed.eq(None::<String>))
    .execute(conn)
}

pub fn revoke_access_token(conn: &mut DbConn, jti: &str, expires_at: NaiveDateTime) -> QueryResult<()> {
    let exists = revoked_access_tokens::table.find(jti).count().get_result::<i64>(conn)? > 0;
    if !exists {
        diesel::insert_into(revoked_access_tokens::table)
            .values((revoked_access_tokens::jti.eq(jti), revoked_access_tokens::expires_at.eq(expires_at)))
            .execute(conn)?;
    }
    Ok(())
}

/// Whether an access token is still good: its grant (if any) is live and
/// the token itself was not revoked. One round trip.
pub fn access_token_is_live(conn: &mut DbConn, jti: &str, grant_id: Option<&str>) -> QueryResult<bool> {
    let revoked = revoked_access_tokens::table.find(jti).count().get_result::<i64>(conn)? > 0;
    if revoked {
        return Ok(false);
    }
    match grant_id {
        Some(id) => {
            Ok(grants::table.find(id).filter(grants::revoked_at.is_null()).count().get_result::<i64>(conn)? > 0)
        }
        None => Ok(true),
    }
}

/// Deletes what has expired (run periodically).
pub fn purge_expired(conn: &mut DbConn, now: NaiveDateTime) -> QueryResult<usize> {
    let codes =
        diesel::delete(authorization_codes::table.filter(authorization_codes::expires_at.lt(now))).execute(conn)?;
    let revoked =
        diesel::delete(revoked_access_tokens::table.filter(revoked_access_tokens::expires_at.lt(now))).execute(conn)?;
    let refresh = diesel::delete(refresh_tokens::table.filter(refresh_tokens::expires_at.lt(now))).execute(conn)?;
    let grants = diesel::delete(grants::table.filter(grants::expires_at.lt(now))).execute(conn)?;
    Ok(codes + revoked + refresh + grants)
}

/// The account's unrevoked, unexpired grants, newest first (the console).
pub fn live_grants_of_account(
    conn: &mut DbConn,
    account_id: &str,
    now: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<GrantRow>> {
    grants::table
        .filter(grants::account_id.eq(account_id))
        .filter(grants::revoked_at.is_null())
        .filter(grants::expires_at.gt(now))
        .order(grants::created_at.desc())
        .limit(limit)
        .select(GrantRow::as_select())
        .load(conn)
}

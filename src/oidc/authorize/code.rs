//! Issuing the authorization code (RFC 6749 §4.1.2): the grant, the
//! single-use code bound to the redirect URI, nonce and PKCE challenge,
//! and the audit record, in one transaction.

use actix_web::HttpResponse;

use super::request::AuthorizationRequest;
use super::response::{Rejection, reply, respond_rejection};
use crate::accounts::Account;
use crate::accounts::sessions::Session;
use crate::audit::{self, Action, AuditEvent};
use crate::db::{self, DbError, grants::CodeRow, grants::GrantRow};
use crate::http::RequestMeta;
use crate::secrets::{random_token, sha256_hex};
use crate::state::AppState;

/// The session id released as `sid`: derived from (not equal to) the
/// stored hash of the session cookie.
pub fn sid_of(session: &Session) -> String {
    crate::accounts::sessions::public_sid(&session.id_hash)
}

/// Records the grant and a single-use code, and sends the browser back to
/// the client with it.
pub async fn issue_code(
    state: &AppState,
    meta: &RequestMeta,
    request: &AuthorizationRequest,
    session: &Session,
    account: &Account,
) -> HttpResponse {
    let code = random_token();
    let now = db::now();
    let code_ttl =
        chrono::Duration::seconds(i64::try_from(state.settings.tokens.authorization_code_secs).unwrap_or(60));
    let grant = GrantRow {
        id: uuid::Uuid::new_v4().to_string(),
        client_id: request.client.client_id.clone(),
        account_id: Some(account.id.as_str().to_owned()),
        scope: request.scopes.join(" "),
        auth_time: Some(session.auth_time),
        amr: session.amr.join(" "),
        sid: Some(sid_of(session)),
        created_at: now,
        expires_at: now
            + code_ttl
            + chrono::Duration::seconds(i64::try_from(state.settings.tokens.access_token_secs).unwrap_or(600)),
        revoked_at: None,
        tokens_issued: false,
    };
    let code_row = CodeRow {
        code_hash: sha256_hex(code.as_bytes()),
        grant_id: grant.id.clone(),
        client_id: request.client.client_id.clone(),
        redirect_uri: request.reply.redirect_uri.clone(),
        nonce: request.nonce.clone(),
        code_challenge: request.code_challenge.clone(),
        created_at: now,
        expires_at: now + code_ttl,
        consumed_at: None,
    };
    let event = AuditEvent::success(Action::Authorization)
        .with_actor(format!("account:{}", account.id))
        .with_account(account.id.as_str())
        .with_client(request.client.client_id.clone())
        .with_request(meta)
        .with_detail("scope", grant.scope.clone())
        .with_detail("grant", grant.id.clone());
    let secrets = state.secrets.clone();
    let stored = db::run(&state.db, move |conn| {
        db::write_transaction(conn, |conn| {
            db::grants::insert_grant(conn, &grant)?;
            db::grants::insert_code(conn, &code_row)?;
            audit::append(conn, &secrets, &event)?;
            Ok::<_, DbError>(())
        })
    })
    .await;
    if let Err(error) = stored {
        return respond_rejection(Rejection::Internal(error.to_string()));
    }
    reply(&request.reply, vec![("code", code)])
}

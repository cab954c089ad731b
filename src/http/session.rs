//! The browser's current session, if any.

use actix_web::HttpRequest;

use super::{RequestMeta, cookies};
use crate::accounts::Account;
use crate::accounts::manage;
use crate::accounts::sessions::Session;
use crate::db::{self, DbError};
use crate::state::AppState;

/// Resolves the session cookie to a live session of an active account.
/// Expired sessions are ended (and audited) on the way.
pub async fn current(req: &HttpRequest, state: &AppState) -> Result<Option<(Session, Account)>, DbError> {
    let Some(cookie_value) = cookies::read(req, cookies::SESSION, &state.settings) else {
        return Ok(None);
    };
    let meta = RequestMeta::from_request(req);
    let policy = state.session_policy;
    let secrets = state.secrets.clone();
    db::run(&state.db, move |conn| -> Result<_, DbError> {
        let Some(session) = policy.lookup(conn, &secrets, &cookie_value, &meta, db::now())? else {
            return Ok(None);
        };
        match manage::find_by_id(conn, &session.account_id)? {
            Some(account) if account.is_active() => Ok(Some((session, account))),
            _ => Ok(None),
        }
    })
    .await
}

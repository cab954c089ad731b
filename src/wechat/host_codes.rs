//! FinClip scheme 1: the host app, whose user is logged in through wxfed,
//! asks for a one-time code for that user and a mini-program, and returns
//! it from its overridden `wx.login`. The mini-program's backend redeems it
//! at wxfed's jscode2session facade as if it came from WeChat.

use rand::Rng;
use rand::distributions::Alphanumeric;

use super::apps::{self, AppKind};
use crate::audit::{self, Action, AuditEvent};
use crate::db::{self, DbConn, DbError, wechat::HostCodeRow};
use crate::http::RequestMeta;
use crate::oidc::clients;
use crate::oidc::error::{ErrorCode, OAuthError};
use crate::oidc::tokens::live_access_token;
use crate::secrets::sha256_hex;
use crate::state::AppState;

/// Like wx.login's: five minutes.
pub const TTL_SECS: i64 = 300;

/// 32 characters of [0-9A-Za-z], the shape of a wx.login code.
fn new_code() -> String {
    rand::rngs::OsRng.sample_iter(&Alphanumeric).take(32).map(char::from).collect()
}

/// Mints a one-time code for the host app's user (the bearer of `token`)
/// and the mini-program `appid`.
pub async fn issue_code(
    state: &AppState,
    meta: &RequestMeta,
    token: &str,
    appid: Option<String>,
) -> Result<String, OAuthError> {
    let claims = live_access_token(state, token).await?;
    let appid = appid.ok_or_else(|| OAuthError::invalid_request("the mini-program's `appid` is missing"))?;
    let (client_id, account_id) = (claims.client_id.clone(), claims.sub.clone());
    let (secrets, meta) = (state.secrets.clone(), meta.clone());
    let code = new_code();
    let code_hash = sha256_hex(code.as_bytes());
    db::run(&state.db, move |conn| {
        db::write_transaction(conn, |conn| -> Result<(), OAuthError> {
            let host = clients::find(conn, &client_id)?;
            if !host.is_some_and(|c| c.host_app) {
                return Err(OAuthError::new(
                    ErrorCode::InsufficientScope,
                    "the access token was not issued to a host app",
                ));
            }
            let account =
                crate::accounts::manage::find_by_id(conn, &crate::accounts::AccountId::from_db(account_id.clone()))?;
            if !account.is_some_and(|a| a.is_active()) {
                return Err(OAuthError::invalid_token("the access token does not belong to an active account"));
            }
            match apps::find(conn, &appid)? {
                Some(app) if app.kind == AppKind::MiniProgram => {}
                _ => return Err(OAuthError::invalid_request(format!("`{appid}` is not a registered mini-program"))),
            }
            let now = db::now();
            db::wechat::insert_host_code(
                conn,
                &HostCodeRow {
                    code_hash: code_hash.clone(),
                    account_id: account_id.clone(),
                    appid: appid.clone(),
                    host_client_id: client_id.clone(),
                    created_at: now,
                    expires_at: now + chrono::Duration::seconds(TTL_SECS),
                    consumed_at: None,
                },
            )?;
            let event = AuditEvent::success(Action::HostCodeIssued)
                .with_actor(format!("client:{client_id}"))
                .with_client(client_id.clone())
                .with_account(account_id.clone())
                .with_request(&meta)
                .with_detail("appid", appid.clone());
            audit::append(conn, &secrets, &event)?;
            Ok(())
        })
    })
    .await?;
    Ok(code)
}

/// Why a host code cannot be redeemed, as WeChat would say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// 40163 code been used
    Used,
    /// 40029 invalid code (expired, or another mini-program's)
    Invalid,
}

/// Redeems a host code for `appid`: `Ok(None)` when it is not a host code
/// at all (the facade then asks WeChat). Run inside a write transaction.
pub fn redeem(conn: &mut DbConn, code: &str, appid: &str) -> Result<Option<Result<HostCodeRow, Refusal>>, DbError> {
    let hash = sha256_hex(code.as_bytes());
    let Some(row) = db::wechat::find_host_code(conn, &hash)? else {
        return Ok(None);
    };
    let now = db::now();
    if row.consumed_at.is_some() {
        return Ok(Some(Err(Refusal::Used)));
    }
    if row.appid != appid {
        // Another mini-program's code stays usable by its own, as in WeChat.
        return Ok(Some(Err(Refusal::Invalid)));
    }
    if !db::wechat::consume_host_code(conn, &hash, now)? {
        return Ok(Some(Err(Refusal::Used)));
    }
    if row.expires_at <= now {
        return Ok(Some(Err(Refusal::Invalid)));
    }
    Ok(Some(Ok(row)))
}

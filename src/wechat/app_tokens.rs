//! App access tokens for APIs like getuserphonenumber: fetched with
//! `cgi-bin/stable_token`, cached in the database for every instance, and
//! refreshed a few minutes before they expire — never one token call per
//! login. Stable mode returns the same token to concurrent callers, so two
//! instances refreshing at once do not invalidate each other.

use chrono::Duration;

use super::FlowError;
use super::apps;
use super::client::{AppCredentials, WechatError};
use crate::config::SecretString;
use crate::db::{self, DbError};
use crate::state::AppState;

/// Refresh this long before WeChat's expiry (WeChat itself renews stable
/// tokens five minutes before they expire).
const REFRESH_MARGIN_SECS: i64 = 300;

fn seal_context(appid: &str) -> String {
    format!("wechat_app_token:{appid}")
}

/// The app's current access token, from the shared cache when it is fresh.
/// `stale` names a token WeChat just refused: it is replaced by force.
pub async fn access_token(
    state: &AppState,
    app: &AppCredentials,
    stale: Option<&SecretString>,
) -> Result<SecretString, WechatError> {
    let (appid, secrets) = (app.appid.clone(), state.secrets.clone());
    let cached = db::run(&state.db, move |conn| -> Result<Option<SecretString>, DbError> {
        let Some((sealed, expires_at)) = db::wechat::find_app_token(conn, &appid)? else {
            return Ok(None);
        };
        if expires_at - Duration::seconds(REFRESH_MARGIN_SECS) <= db::now() || sealed.is_empty() {
            return Ok(None);
        }
        Ok(secrets
            .open(&seal_context(&appid), &sealed)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .map(SecretString::new))
    })
    .await
    .map_err(|e| WechatError::Unreachable(format!("token cache: {e}")))?;
    if let Some(token) = cached
        && stale.is_none_or(|s| s != &token)
    {
        return Ok(token);
    }
    let fresh = state.wechat.stable_token(app, stale.is_some()).await?;
    let (appid, secrets, token) = (app.appid.clone(), state.secrets.clone(), fresh.access_token.clone());
    let expires_in = fresh.expires_in.clamp(60, 7200);
    db::run(&state.db, move |conn| -> Result<(), DbError> {
        let now = db::now();
        let sealed = secrets.seal(&seal_context(&appid), token.expose().as_bytes());
        db::write_transaction(conn, |conn| {
            db::wechat::save_app_token(conn, &appid, &sealed, now + Duration::seconds(expires_in), now)
        })?;
        Ok(())
    })
    .await
    .map_err(|e| WechatError::Unreachable(format!("token cache: {e}")))?;
    Ok(fresh.access_token)
}

/// Calls `f` with the app's token; if WeChat says the token is invalid,
/// replaces it once and calls again.
pub async fn with_access_token<T, F, Fut>(state: &AppState, appid: &str, f: F) -> Result<T, FlowError>
where
    F: Fn(SecretString) -> Fut,
    Fut: std::future::Future<Output = Result<T, WechatError>>,
{
    let (lookup, secrets) = (appid.to_owned(), state.secrets.clone());
    let found =
        db::run(&state.db, move |conn| apps::with_credentials(conn, &secrets, &lookup).map_err(FlowError::from))
            .await?;
    let Some((_, credentials)) = found else {
        return Err(apps::AppError::NotFound(appid.to_owned()).into());
    };
    let token = access_token(state, &credentials, None).await?;
    match f(token.clone()).await {
        Err(WechatError::InvalidToken(_)) => {
            let token = access_token(state, &credentials, Some(&token)).await?;
            Ok(f(token).await?)
        }
        other => Ok(other?),
    }
}

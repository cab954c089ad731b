//! Turning a WeChat login code into a person: a plain code of the client's
//! own app, or a routed one (`mp:<appid>:<code>`, `app:<appid>:<code>`,
//! FinClip scheme 2) that names the WeChat app that produced it.

use super::FlowError;
use super::apps::{self, AppKind, WechatApp};
use super::client::WechatError;
use super::identities::{self, Sighting};
use crate::audit::{self, Action, AuditEvent};
use crate::config::SecretString;
use crate::db::{self, wechat::IdentityRow};
use crate::http::RequestMeta;
use crate::state::AppState;

/// Which WeChat API a code belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeKind {
    /// `wx.login` → jscode2session.
    JsCode,
    /// SendAuth / web OAuth → sns/oauth2/access_token.
    OauthCode,
}

/// A code with the app to ask about it.
#[derive(Debug, Clone)]
pub struct Routed<'a> {
    pub appid: &'a str,
    pub kind: CodeKind,
    pub code: &'a str,
    /// Named by a prefix (scheme 2), not the client's own app.
    pub routed: bool,
}

/// Splits `mp:<appid>:<code>` / `app:<appid>:<code>`; anything else is a
/// plain code of `own_appid`.
pub fn route<'a>(code: &'a str, own_appid: &'a str, own_kind: CodeKind) -> Routed<'a> {
    let routed = |prefix: &str, kind| {
        let rest = code.strip_prefix(prefix)?;
        let (appid, inner) = rest.split_once(':')?;
        (!appid.is_empty() && !inner.is_empty()).then_some(Routed { appid, kind, code: inner, routed: true })
    };
    routed("mp:", CodeKind::JsCode).or_else(|| routed("app:", CodeKind::OauthCode)).unwrap_or(Routed {
        appid: own_appid,
        kind: own_kind,
        code,
        routed: false,
    })
}

/// The WeChat app kinds that produce a kind of code.
fn kinds_for(kind: CodeKind) -> &'static [AppKind] {
    match kind {
        CodeKind::JsCode => &[AppKind::MiniProgram],
        CodeKind::OauthCode => &[AppKind::MobileApp, AppKind::Website, AppKind::OfficialAccount],
    }
}

/// Checks a routed code against the client's own app before WeChat is
/// asked (issue 10 item 6): the named app is registered, takes this kind
/// of code, and belongs to the same Open Platform as the client's own app
/// (only then is the person's UnionID shared, and the code meaningful to
/// this client). A refused code stays unredeemed at WeChat.
pub async fn check_routed(state: &AppState, own_appid: &str, code: &Routed<'_>) -> Result<(), FlowError> {
    let (own_appid, routed_appid) = (own_appid.to_owned(), code.appid.to_owned());
    let (own, target) = db::run(&state.db, move |conn| -> Result<_, FlowError> {
        Ok((apps::find(conn, &own_appid)?, apps::find(conn, &routed_appid)?))
    })
    .await?;
    let Some(target) = target else {
        return Err(FlowError::Routing(format!("the WeChat app `{}` is not registered", code.appid)));
    };
    if !kinds_for(code.kind).contains(&target.kind) {
        return Err(FlowError::Routing(format!(
            "`{}` is a {} app and cannot take this kind of code",
            target.appid,
            target.kind.as_str()
        )));
    }
    let own_platform = own.and_then(|app| app.open_platform);
    if own_platform.is_none() || own_platform != target.open_platform {
        return Err(FlowError::NoUnionid);
    }
    Ok(())
}

/// What a successful exchange learned.
pub struct Exchanged {
    pub identity: IdentityRow,
    pub app: WechatApp,
    pub openid: String,
    pub unionid: Option<String>,
}

/// Exchanges the code with WeChat (once), records the person (session key
/// sealed, never returned), and audits the login. `surface` names the
/// path for the audit trail.
pub async fn exchange(
    state: &AppState,
    meta: &RequestMeta,
    code: &Routed<'_>,
    surface: &str,
) -> Result<Exchanged, FlowError> {
    let (lookup, secrets) = (code.appid.to_owned(), state.secrets.clone());
    let found =
        db::run(&state.db, move |conn| apps::with_credentials(conn, &secrets, &lookup).map_err(FlowError::from))
            .await?;
    let Some((app, credentials)) = found else {
        return Err(FlowError::Routing(format!("the WeChat app `{}` is not registered", code.appid)));
    };
    if !kinds_for(code.kind).contains(&app.kind) {
        return Err(FlowError::Routing(format!(
            "`{}` is a {} app and cannot take this kind of code",
            app.appid,
            app.kind.as_str()
        )));
    }
    let result = match code.kind {
        CodeKind::JsCode => state
            .wechat
            .code_to_session(&credentials, code.code)
            .await
            .map(|s| (s.openid, s.unionid, Some(s.session_key))),
        CodeKind::OauthCode => {
            state.wechat.oauth_access_token(&credentials, code.code).await.map(|t| (t.openid, t.unionid, None))
        }
    };
    let (openid, unionid, session_key): (String, Option<String>, Option<SecretString>) = match result {
        Ok(found) => found,
        Err(error) => {
            audit_failure(state, meta, &app, surface, &error).await;
            return Err(error.into());
        }
    };
    let unionid = unionid.filter(|u| !u.is_empty());
    if code.routed && unionid.is_none() {
        return Err(FlowError::NoUnionid);
    }
    let (secrets, meta_owned, surface_owned) = (state.secrets.clone(), meta.clone(), surface.to_owned());
    let (app_owned, openid_owned, unionid_owned) = (app.clone(), openid.clone(), unionid.clone());
    let identity = db::run(&state.db, move |conn| {
        db::write_transaction(conn, |conn| -> Result<IdentityRow, FlowError> {
            let seen = Sighting {
                app: &app_owned,
                openid: &openid_owned,
                unionid: unionid_owned.as_deref(),
                nickname: None,
                avatar_url: None,
                session_key: session_key.as_ref(),
            };
            let identity = identities::resolve(conn, &secrets, &seen, Some(&meta_owned))?;
            let event = AuditEvent::success(Action::LoginWechat)
                .with_request(&meta_owned)
                .with_detail("surface", surface_owned.clone())
                .with_detail("appid", app_owned.appid.clone())
                .with_detail("identity", identity.id.clone());
            let event = match &identity.account_id {
                Some(account) => event.with_account(account.clone()),
                None => event,
            };
            audit::append(conn, &secrets, &event)?;
            Ok(identity)
        })
    })
    .await?;
    Ok(Exchanged { identity, app, openid, unionid })
}

async fn audit_failure(state: &AppState, meta: &RequestMeta, app: &WechatApp, surface: &str, error: &WechatError) {
    let mut event = AuditEvent::failure(Action::LoginWechat, "wechat_error")
        .with_request(meta)
        .with_detail("surface", surface)
        .with_detail("appid", app.appid.clone());
    if let Some(code) = error.errcode() {
        event = event.with_detail("errcode", code);
    }
    let secrets = state.secrets.clone();
    let _ = db::run(&state.db, move |conn| audit::record(conn, &secrets, &event).map_err(db::DbError::from)).await;
}

/// The OpenID and UnionID a person has as seen from `app`: the real ones
/// when known, else stable pseudonyms (based on the account when linked,
/// else the identity).
pub fn ids_in_app(
    conn: &mut db::DbConn,
    secrets: &crate::secrets::Secrets,
    app: &WechatApp,
    identity: Option<&IdentityRow>,
    account_id: Option<&str>,
) -> diesel::QueryResult<(String, String)> {
    let basis = account_id.map(str::to_owned).or_else(|| identity.map(|i| i.id.clone())).unwrap_or_default();
    let platform = app.open_platform.clone().unwrap_or_else(|| format!("app:{}", app.appid));
    let openid = match identity {
        Some(identity) => db::wechat::openid_of_identity_in_app(conn, &identity.id, &app.appid)?,
        None => None,
    };
    let unionid =
        identity.filter(|i| i.open_platform.as_deref() == app.open_platform.as_deref()).and_then(|i| i.unionid.clone());
    Ok((
        openid.unwrap_or_else(|| super::pseudonyms::openid(secrets, &basis, &app.appid)),
        unionid.unwrap_or_else(|| super::pseudonyms::unionid(secrets, &basis, &platform)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_routed_by_prefix() {
        let plain = route("081abcDEF", "wxown", CodeKind::JsCode);
        assert_eq!((plain.appid, plain.code, plain.routed), ("wxown", "081abcDEF", false));
        let mp = route("mp:wxother:081abc", "wxown", CodeKind::JsCode);
        assert_eq!((mp.appid, mp.kind, mp.code, mp.routed), ("wxother", CodeKind::JsCode, "081abc", true));
        let app = route("app:wxmobile:0a1b", "wxown", CodeKind::JsCode);
        assert_eq!((app.appid, app.kind, app.code), ("wxmobile", CodeKind::OauthCode, "0a1b"));
        assert!(!route("mp::x", "wxown", CodeKind::JsCode).routed);
        assert!(!route("mp:wx", "wxown", CodeKind::JsCode).routed);
    }
}

//! `GET /sns/jscode2session` on wxfed, answering exactly like WeChat's
//! (HTTP 200, `errcode` errors, text/plain), so a mini-program backend only
//! changes its API host. Three kinds of code arrive here:
//! - host-issued codes (FinClip scheme 1): the account's OpenID/UnionID for
//!   this mini-program, real when known, else stable pseudonyms;
//! - routed codes `mp:`/`app:` (scheme 2): resolved through the UnionID;
//! - anything else: a real wx.login code, passed through to WeChat and its
//!   answer returned unchanged, while wxfed records whom it saw.

use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use serde_json::{Value, json};

use crate::audit::{self, Action, AuditEvent};
use crate::config::SecretString;
use crate::db::{self, DbError};
use crate::http::RequestMeta;
use crate::secrets::{constant_time_eq, hex, random_bytes};
use crate::state::AppState;
use crate::wechat::FlowError;
use crate::wechat::apps::{self, AppKind, WechatApp};
use crate::wechat::client::{AppCredentials, WechatError};
use crate::wechat::codes::{self, CodeKind, ids_in_app};
use crate::wechat::host_codes::{self, Refusal};
use crate::wechat::identities::{self, Sighting};

/// wxfed's own errcode for a routed code that cannot be matched through a
/// UnionID (outside WeChat's ranges, so no SDK mistakes it for one of
/// WeChat's).
pub const NO_UNIONID: i64 = 99001;

/// A WeChat-style answer: always HTTP 200, JSON in a text/plain body.
fn answer(body: &Value) -> HttpResponse {
    // A success carries a session key: never cached.
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "text/plain"))
        .insert_header((CACHE_CONTROL, "no-store"))
        .body(body.to_string())
}

/// WeChat's error shape, request id suffix included.
fn error(errcode: i64, errmsg: &str) -> Value {
    json!({ "errcode": errcode, "errmsg": format!("{errmsg}, rid: {}", hex(&random_bytes::<6>())) })
}

fn session_key() -> String {
    base64::engine::general_purpose::STANDARD.encode(random_bytes::<16>())
}

/// `GET|POST /sns/jscode2session`. WeChat reads the query whatever the
/// method, and some SDKs POST.
pub async fn jscode2session(req: HttpRequest, state: web::Data<AppState>, meta: RequestMeta) -> HttpResponse {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(req.query_string()).unwrap_or_default();
    let get = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).filter(|v| !v.is_empty());
    let (Some(appid), secret, code, grant_type) = (get("appid"), get("secret"), get("js_code"), get("grant_type"))
    else {
        return answer(&error(41002, "appid missing"));
    };
    let Some(secret) = secret else {
        return answer(&error(41004, "appsecret missing"));
    };
    let Some(code) = code.filter(|c| c.len() <= 512) else {
        return answer(&error(41008, "missing code"));
    };
    if grant_type.as_deref() != Some("authorization_code") {
        return answer(&error(40002, "invalid grant_type"));
    }
    let (lookup, secrets) = (appid.clone(), state.secrets.clone());
    let found =
        db::run(&state.db, move |conn| apps::with_credentials(conn, &secrets, &lookup).map_err(FlowError::from)).await;
    let (app, credentials) = match found {
        Ok(Some((app, credentials))) if app.kind == AppKind::MiniProgram => (app, credentials),
        Ok(_) => return answer(&error(40013, "invalid appid")),
        Err(cause) => {
            tracing::error!(error = %cause, "facade: cannot load the app");
            return answer(&error(-1, "system error"));
        }
    };
    if !constant_time_eq(secret.as_bytes(), credentials.secret.expose().as_bytes()) {
        return answer(&error(40125, "invalid appsecret"));
    }
    if let Err(refusal) = crate::accounts::throttle::spend_wechat_call(&state, &format!("app:{appid}"), None).await {
        return budget_refusal(&refusal);
    }
    let routed = codes::route(&code, &appid, CodeKind::JsCode);
    let (origin, body) = if routed.routed {
        ("routed", routed_answer(&state, &meta, &app, &routed).await)
    } else {
        match host_answer(&state, &app, &code).await {
            Ok(Some(body)) => ("host", body),
            Ok(None) => ("wechat", passthrough(&state, &meta, &app, &credentials, &code).await),
            Err(cause) => {
                tracing::error!(error = %cause, "facade: host code lookup failed");
                ("host", error(-1, "system error"))
            }
        }
    };
    let mut event = AuditEvent::new(
        Action::FacadeCall,
        if body.get("openid").is_some() { audit::Outcome::Success } else { audit::Outcome::Failure },
    )
    .with_request(&meta)
    .with_detail("appid", appid)
    .with_detail("origin", origin);
    if let Some(errcode) = body.get("errcode").and_then(Value::as_i64).filter(|c| *c != 0) {
        event = event.with_reason("errcode").with_detail("errcode", errcode);
    }
    let secrets = state.secrets.clone();
    let _ = db::run(&state.db, move |conn| audit::record(conn, &secrets, &event).map_err(DbError::from)).await;
    answer(&body)
}

/// Scheme 1. `Ok(None)`: not a host code.
async fn host_answer(state: &AppState, app: &WechatApp, code: &str) -> Result<Option<Value>, DbError> {
    let (secrets, app, code) = (state.secrets.clone(), app.clone(), code.to_owned());
    db::run(&state.db, move |conn| {
        db::write_transaction(conn, |conn| -> Result<Option<Value>, DbError> {
            let row = match host_codes::redeem(conn, &code, &app.appid)? {
                None => return Ok(None),
                Some(Err(Refusal::Used)) => return Ok(Some(error(40163, "code been used"))),
                Some(Err(Refusal::Invalid)) => return Ok(Some(error(40029, "invalid code"))),
                Some(Ok(row)) => row,
            };
            // The identity the account has on this app's platform, if any.
            let keys = [app.open_platform.as_ref().map(|p| format!("op:{p}")), Some(format!("app:{}", app.appid))];
            let mut identity = None;
            for key in keys.iter().flatten() {
                if let Some(found) = db::wechat::identity_of_account_on(conn, &row.account_id, key)? {
                    identity = Some(found);
                    break;
                }
            }
            // A code issued before its account was disabled is worthless now.
            let account = crate::accounts::manage::find_by_id(
                conn,
                &crate::accounts::AccountId::from_db(row.account_id.clone()),
            )?;
            if !account.is_some_and(|a| a.is_active()) {
                return Ok(Some(error(40029, "invalid code")));
            }
            let (openid, unionid) = ids_in_app(conn, &secrets, &app, identity.as_ref(), Some(&row.account_id))?;
            let event = AuditEvent::success(Action::HostCodeRedeemed)
                .with_account(row.account_id.clone())
                .with_client(row.host_client_id.clone())
                .with_detail("appid", app.appid.clone())
                .with_detail("pseudonymous", openid.starts_with(crate::wechat::pseudonyms::PREFIX));
            audit::append(conn, &secrets, &event)?;
            // A fresh key for the backend's own use. It is not stored: the
            // key on record stays WeChat's real one for this OpenID.
            Ok(Some(json!({ "openid": openid, "session_key": session_key(), "unionid": unionid })))
        })
    })
    .await
}

/// Scheme 2: the routed app's code, matched to this mini-program's person
/// through the UnionID.
async fn routed_answer(state: &AppState, meta: &RequestMeta, app: &WechatApp, routed: &codes::Routed<'_>) -> Value {
    // Checked before WeChat redeems (and so burns) the code (issue 10 item 6).
    let result = match codes::check_routed(state, &app.appid, routed).await {
        Ok(()) => codes::exchange(state, meta, routed, "finclip_routed").await,
        Err(refused) => Err(refused),
    };
    let exchanged = match result {
        Ok(exchanged) => exchanged,
        Err(FlowError::Wechat(e)) => return wechat_error(&e),
        Err(FlowError::NoUnionid) => {
            return error(
                NO_UNIONID,
                "routed code: the app returned no UnionID, so it is not in this mini-program's Open Platform",
            );
        }
        Err(FlowError::Routing(message)) => return error(40029, &format!("invalid code: {message}")),
        Err(cause) => {
            tracing::error!(error = %cause, "facade: routed code failed");
            return error(-1, "system error");
        }
    };
    if exchanged.app.open_platform.is_none() || exchanged.app.open_platform != app.open_platform {
        return error(NO_UNIONID, "routed code: the app is not in this mini-program's Open Platform");
    }
    let (secrets, app, identity) = (state.secrets.clone(), app.clone(), exchanged.identity);
    let ids = db::run(&state.db, move |conn| {
        let account = identity.account_id.clone();
        ids_in_app(conn, &secrets, &app, Some(&identity), account.as_deref()).map_err(DbError::from)
    })
    .await;
    match ids {
        Ok((openid, unionid)) => json!({ "openid": openid, "session_key": session_key(), "unionid": unionid }),
        Err(cause) => {
            tracing::error!(error = %cause, "facade: routed code lookup failed");
            error(-1, "system error")
        }
    }
}

fn wechat_error(error_value: &WechatError) -> Value {
    match error_value.errcode() {
        Some(code) => error(code, "wechat error"),
        None => error(-1, "system error"),
    }
}

/// wxfed's own call budget is spent (or the database is down): WeChat's
/// shape for it, errcode 45011 ("api minute-quota reach limit"), which
/// mini-program backends already handle, with `429` + `Retry-After`
/// (RFC 6585 §4) for HTTP-aware callers; `-1` "system busy" and `503`
/// while the database is unavailable.
fn budget_refusal(refusal: &crate::accounts::throttle::WechatBudgetError) -> HttpResponse {
    use crate::accounts::throttle::WechatBudgetError;
    let (status, retry_after, body) = match refusal {
        WechatBudgetError::Exhausted { retry_after_secs } => (
            actix_web::http::StatusCode::TOO_MANY_REQUESTS,
            *retry_after_secs,
            error(45011, "api minute-quota reach limit mustslower retry next minute"),
        ),
        WechatBudgetError::Db(cause) => {
            tracing::warn!(error = %cause, "facade: cannot count the WeChat call budget");
            (actix_web::http::StatusCode::SERVICE_UNAVAILABLE, db::RETRY_AFTER_SECS, error(-1, "system busy"))
        }
    };
    let mut response = answer(&body);
    *response.status_mut() = status;
    response.headers_mut().insert(actix_web::http::header::RETRY_AFTER, retry_after.into());
    response
}

/// A real wx.login code: WeChat's answer, unchanged. On success wxfed
/// records the OpenID/UnionID (and seals the session key).
async fn passthrough(
    state: &AppState,
    meta: &RequestMeta,
    app: &WechatApp,
    credentials: &AppCredentials,
    code: &str,
) -> Value {
    let body = match state.wechat.code_to_session_raw(credentials, code).await {
        Ok(body) => body,
        Err(cause) => {
            tracing::warn!(error = %cause, "facade: WeChat could not be reached");
            return error(-1, "system error");
        }
    };
    let openid = body.get("openid").and_then(Value::as_str).map(str::to_owned);
    let unionid = body.get("unionid").and_then(Value::as_str).map(str::to_owned);
    let session_key = body.get("session_key").and_then(Value::as_str).map(SecretString::new);
    if let Some(openid) = openid {
        let (secrets, meta, app) = (state.secrets.clone(), meta.clone(), app.clone());
        let recorded = db::run(&state.db, move |conn| {
            db::write_transaction(conn, |conn| {
                let seen = Sighting {
                    app: &app,
                    openid: &openid,
                    unionid: unionid.as_deref(),
                    nickname: None,
                    avatar_url: None,
                    session_key: session_key.as_ref(),
                };
                identities::resolve(conn, &secrets, &seen, Some(&meta)).map(|_| ()).map_err(FlowError::from)
            })
        })
        .await;
        if let Err(cause) = recorded {
            // The backend still gets WeChat's answer; wxfed just learned nothing.
            tracing::warn!(error = %cause, "facade: could not record the identity");
        }
    }
    body
}

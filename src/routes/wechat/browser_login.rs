//! "Log in with WeChat" in the browser: website QR login (qrconnect), or
//! the official account's authorize page inside WeChat's own browser.
//! `state` is single use and bound to the browser (its CSRF cookie); the
//! code is exchanged once; the identity is resolved and the unlinked
//! policy applied; then the pending OIDC authorization continues as if a
//! password had been typed, with `amr` = `wechat`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::accounts::login::{LoginError, login_with_password};
use crate::audit::{self, Action, AuditEvent};
use crate::config::SecretString;
use crate::db::{self, DbError, wechat::LoginState};
use crate::error::ErrorPage;
use crate::http::extract::CsrfForm;
use crate::http::{RequestMeta, cookies, csrf, paths, render};
use crate::i18n::{self, filters};
use crate::routes::safe_return_path;
use crate::secrets::{constant_time_eq, random_token, sha256_hex};
use crate::state::AppState;
use crate::wechat::FlowError;
use crate::wechat::apps::{self, AppKind, WechatApp};
use crate::wechat::client::WechatError;
use crate::wechat::identities::{self, IdentityError, Sighting};
use crate::wechat::linking::{self, Decision, LinkRefusal};

const STATE_TTL_SECS: i64 = 600;
const BIND_TTL_SECS: i64 = 600;

/// The browser a flow belongs to: the hash of its CSRF cookie.
fn browser_hash(req: &HttpRequest, state: &AppState) -> Option<String> {
    cookies::read(req, cookies::CSRF, &state.settings).map(|v| sha256_hex(format!("browser:{v}").as_bytes()))
}

fn page(status: StatusCode, title: &str, message: &str) -> HttpResponse {
    render::page(status, &ErrorPage { title, message })
}

/// Whether the login page should offer WeChat (a website or official
/// account app is registered).
pub async fn available(state: &AppState) -> bool {
    db::run(&state.db, |conn| -> Result<bool, DbError> {
        Ok(apps::first_of_kind(conn, AppKind::Website)?.is_some()
            || apps::first_of_kind(conn, AppKind::OfficialAccount)?.is_some())
    })
    .await
    .unwrap_or(false)
}

fn in_wechat_browser(req: &HttpRequest) -> bool {
    req.headers()
        .get(actix_web::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ua| ua.to_ascii_lowercase().contains("micromessenger"))
}

#[derive(Deserialize)]
pub struct StartQuery {
    return_to: Option<String>,
}

/// Sends the browser to WeChat.
pub async fn start(req: HttpRequest, state: web::Data<AppState>, query: web::Query<StartQuery>) -> HttpResponse {
    let inside_wechat = in_wechat_browser(&req);
    let chosen = db::run(&state.db, move |conn| -> Result<Option<WechatApp>, DbError> {
        let official = if inside_wechat { apps::first_of_kind(conn, AppKind::OfficialAccount)? } else { None };
        match official {
            Some(app) => Ok(Some(app)),
            None => Ok(apps::first_of_kind(conn, AppKind::Website)?),
        }
    })
    .await;
    let app = match chosen {
        Ok(Some(app)) => app,
        Ok(None) => {
            return page(StatusCode::NOT_FOUND, "WeChat login is not available", "wechat-no-app");
        }
        Err(error) => return internal(error),
    };
    // The state is bound to this browser's CSRF cookie (made now if new).
    let (_, csrf_cookie) = csrf::issue(&req, &state);
    let binding = match &csrf_cookie {
        Some(cookie) => sha256_hex(format!("browser:{}", cookie.value()).as_bytes()),
        None => browser_hash(&req, &state).unwrap_or_default(),
    };
    let login_state = random_token();
    let stored = LoginState {
        browser_hash: binding,
        appid: app.appid.clone(),
        return_to: safe_return_path(query.return_to.as_deref()),
        expires_at: db::now() + chrono::Duration::seconds(STATE_TTL_SECS),
    };
    let state_hash = sha256_hex(login_state.as_bytes());
    let saved = db::run(&state.db, move |conn| {
        db::write_transaction(conn, |conn| db::wechat::insert_login_state(conn, &state_hash, &stored, db::now()))
            .map_err(DbError::from)
    })
    .await;
    if let Err(error) = saved {
        return internal(error);
    }
    let redirect_uri = format!("{}{}", state.settings.issuer, paths::WECHAT_LOGIN_CALLBACK);
    let (path, scope) = match app.kind {
        AppKind::OfficialAccount => ("/connect/oauth2/authorize", "snsapi_userinfo"),
        _ => ("/connect/qrconnect", "snsapi_login"),
    };
    let query = serde_urlencoded::to_string([
        ("appid", app.appid.as_str()),
        ("redirect_uri", redirect_uri.as_str()),
        ("response_type", "code"),
        ("scope", scope),
        ("state", login_state.as_str()),
    ])
    .unwrap_or_default();
    let mut response = HttpResponse::SeeOther();
    if let Some(cookie) = csrf_cookie {
        response.cookie(cookie);
    }
    response
        .insert_header(("Location", format!("{}{path}?{query}#wechat_redirect", state.settings.wechat.open_base)))
        .finish()
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
}

/// WeChat sends the browser back here with `code` and `state`.
pub async fn callback(
    req: HttpRequest,
    state: web::Data<AppState>,
    meta: RequestMeta,
    query: web::Query<CallbackQuery>,
) -> HttpResponse {
    let Some(login_state) = query.state.clone().filter(|s| s.len() <= 128) else {
        return page(StatusCode::BAD_REQUEST, "WeChat login failed", "wechat-answer-incomplete");
    };
    let state_hash = sha256_hex(login_state.as_bytes());
    let taken = db::run(&state.db, move |conn| {
        db::write_transaction(conn, |conn| db::wechat::take_login_state(conn, &state_hash)).map_err(DbError::from)
    })
    .await;
    let stored = match taken {
        Ok(Some(stored)) => stored,
        Ok(None) => {
            return page(StatusCode::BAD_REQUEST, "WeChat login expired", "wechat-state-used");
        }
        Err(error) => return internal(error),
    };
    let same_browser =
        browser_hash(&req, &state).is_some_and(|h| constant_time_eq(h.as_bytes(), stored.browser_hash.as_bytes()));
    if !same_browser || stored.expires_at <= db::now() {
        return page(StatusCode::BAD_REQUEST, "WeChat login expired", "wechat-state-foreign");
    }
    let Some(code) = query.code.clone().filter(|c| !c.is_empty() && c.len() <= 256) else {
        return page(StatusCode::OK, "WeChat login cancelled", "wechat-cancelled");
    };
    match complete(&req, &state, &meta, &stored, &code).await {
        Ok(response) => response,
        Err(error) => error_page(&state, &meta, &stored.appid, error).await,
    }
}

async fn complete(
    req: &HttpRequest,
    state: &AppState,
    meta: &RequestMeta,
    stored: &LoginState,
    code: &str,
) -> Result<HttpResponse, FlowError> {
    let (appid, secrets) = (stored.appid.clone(), state.secrets.clone());
    let found =
        db::run(&state.db, move |conn| apps::with_credentials(conn, &secrets, &appid).map_err(FlowError::from)).await?;
    let Some((app, credentials)) = found else {
        return Err(apps::AppError::NotFound(stored.appid.clone()).into());
    };
    let token = state.wechat.oauth_access_token(&credentials, code).await?;
    if token.is_snapshotuser == Some(1) {
        return Ok(page(
            StatusCode::FORBIDDEN,
            "Open the full page",
            "WeChat showed this page in its preview mode, which has no real account. Tap \"Use full service\" and log in again.",
        ));
    }
    let profile = state.wechat.userinfo(&token.access_token, &token.openid).await;
    let (nickname, avatar, unionid) = match &profile {
        Ok(info) => (info.nickname.clone(), info.headimgurl.clone(), info.unionid.clone().or(token.unionid.clone())),
        Err(_) => (None, None, token.unionid.clone()),
    };
    let surface = app.kind.as_str();
    let (secrets, meta_owned, policy) = (state.secrets.clone(), meta.clone(), state.settings.wechat.unlinked);
    let sessions = state.session_policy;
    let openid = token.openid.clone();
    let outcome = db::run(&state.db, move |conn| {
        db::write_transaction(conn, |conn| -> Result<Outcome, FlowError> {
            let seen = Sighting {
                app: &app,
                openid: &openid,
                unionid: unionid.as_deref(),
                nickname: nickname.as_deref(),
                avatar_url: avatar.as_deref(),
                session_key: None,
            };
            let identity = identities::resolve(conn, &secrets, &seen, Some(&meta_owned))?;
            let decision = linking::login_account(conn, &secrets, &identity, policy)?;
            let (event, outcome) = match decision {
                Decision::LogIn(account) => {
                    let (cookie, session) = sessions.create(conn, &account.id, &["wechat"], &meta_owned, db::now())?;
                    let event = AuditEvent::success(Action::LoginWechat)
                        .with_request(&meta_owned)
                        .with_detail("surface", surface)
                        .with_detail("appid", app.appid.clone())
                        .with_detail("identity", identity.id.clone())
                        .with_account(account.id.as_str())
                        .with_actor(format!("account:{}", account.id))
                        .with_detail("session", session.id_hash[..16].to_owned());
                    (event, Outcome::LoggedIn(cookie))
                }
                Decision::Refuse { reason, account_id } => {
                    let mut event = AuditEvent::failure(Action::LoginWechat, reason.code())
                        .with_request(&meta_owned)
                        .with_detail("surface", surface)
                        .with_detail("identity", identity.id.clone())
                        .with_detail("policy", format!("{policy:?}").to_lowercase());
                    if let Some(account_id) = account_id {
                        event = event.with_account(account_id);
                    }
                    (event, Outcome::Refused(reason, identity.id.clone()))
                }
            };
            audit::append(conn, &secrets, &event)?;
            Ok(outcome)
        })
    })
    .await?;
    match outcome {
        Outcome::LoggedIn(cookie_value) => {
            let cookie = cookies::build(cookies::SESSION, cookie_value, &state.settings);
            Ok(HttpResponse::SeeOther().cookie(cookie).insert_header(("Location", stored.return_to.clone())).finish())
        }
        Outcome::Refused(LinkRefusal::AccountDisabled, _) => {
            Ok(page(StatusCode::FORBIDDEN, "Account disabled", "wechat-account-disabled"))
        }
        Outcome::Refused(LinkRefusal::BindRequired, identity_id) => {
            start_bind(req, state, &identity_id, &stored.return_to).await
        }
        Outcome::Refused(_, _) => Ok(page(StatusCode::FORBIDDEN, "wechat-not-linked-title", "wechat-not-linked")),
    }
}

enum Outcome {
    LoggedIn(String),
    /// The refusal, and the identity (for the bind page).
    Refused(LinkRefusal, String),
}

#[derive(Template)]
#[template(path = "wechat_bind.html")]
struct BindPage {
    csrf_token: String,
    bind_token: String,
    nickname: Option<String>,
    error: Option<String>,
}

async fn start_bind(
    req: &HttpRequest,
    state: &AppState,
    identity_id: &str,
    return_to: &str,
) -> Result<HttpResponse, FlowError> {
    let Some(binding) = browser_hash(req, state) else {
        return Ok(page(StatusCode::BAD_REQUEST, "WeChat login failed", "wechat-enable-cookies"));
    };
    let token = random_token();
    let (token_hash, identity, back) = (sha256_hex(token.as_bytes()), identity_id.to_owned(), return_to.to_owned());
    let nickname = db::run(&state.db, move |conn| {
        db::write_transaction(conn, |conn| -> Result<Option<String>, FlowError> {
            let expires = db::now() + chrono::Duration::seconds(BIND_TTL_SECS);
            db::wechat::insert_pending_bind(conn, &token_hash, &binding, &identity, &back, expires)?;
            Ok(db::wechat::find_identity(conn, &identity)?.and_then(|i| i.nickname))
        })
    })
    .await?;
    let (csrf_token, builder) = csrf::form_page(req, state, StatusCode::OK);
    Ok(render::page_with(builder, &BindPage { csrf_token, bind_token: token, nickname, error: None }))
}

#[derive(Deserialize)]
pub struct BindForm {
    bind_token: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

/// The person proves an existing account with its password; the WeChat
/// identity is then linked to it (the `bind` policy).
pub async fn bind(
    req: HttpRequest,
    state: web::Data<AppState>,
    meta: RequestMeta,
    form: CsrfForm<BindForm>,
) -> HttpResponse {
    let form = form.into_inner();
    let token_hash = sha256_hex(form.bind_token.as_bytes());
    let lookup = token_hash.clone();
    let pending =
        match db::run(&state.db, move |conn| db::wechat::find_pending_bind(conn, &lookup).map_err(DbError::from)).await
        {
            Ok(pending) => pending,
            Err(error) => return internal(error),
        };
    let same_browser =
        |hash: &str| browser_hash(&req, &state).is_some_and(|h| constant_time_eq(h.as_bytes(), hash.as_bytes()));
    let Some((binding, identity_id, return_to, expires_at)) = pending.filter(|p| same_browser(&p.0) && p.3 > db::now())
    else {
        return page(StatusCode::BAD_REQUEST, "WeChat login expired", "wechat-bind-expired");
    };
    let _ = (binding, expires_at);
    let previous = cookies::read(&req, cookies::SESSION, &state.settings);
    let login = login_with_password(&state, &form.username, SecretString::new(form.password), previous, &meta).await;
    let success = match login {
        Ok(success) => success,
        Err(error) => {
            let (status, message) = match error {
                LoginError::InvalidCredentials => (StatusCode::UNAUTHORIZED, "login-error-invalid".to_owned()),
                LoginError::Disabled => (StatusCode::FORBIDDEN, "wechat-bind-disabled".to_owned()),
                LoginError::Throttled { .. } => (StatusCode::TOO_MANY_REQUESTS, "wechat-bind-throttled".to_owned()),
                other => return internal(other),
            };
            let (csrf_token, builder) = csrf::form_page(&req, &state, status);
            return render::page_with(
                builder,
                &BindPage { csrf_token, bind_token: form.bind_token, nickname: None, error: Some(message) },
            );
        }
    };
    let (secrets, account_id) = (state.secrets.clone(), success.account.id.as_str().to_owned());
    let linked = db::run(&state.db, move |conn| {
        db::write_transaction(conn, |conn| -> Result<Result<(), LinkRefusal>, FlowError> {
            db::wechat::delete_pending_bind(conn, &token_hash)?;
            linking::bind_with_password(conn, &secrets, &identity_id, &account_id)
        })
    })
    .await;
    let cookie = cookies::build(cookies::SESSION, success.cookie_value, &state.settings);
    match linked {
        Ok(Ok(())) => HttpResponse::SeeOther().cookie(cookie).insert_header(("Location", return_to)).finish(),
        Ok(Err(refusal)) => {
            let reason = i18n::t(&format!("link-refusal-{}", refusal.code()));
            let message = i18n::t_args("wechat-link-failed", &[("reason", reason.into())]);
            let mut response = page(StatusCode::CONFLICT, "wechat-not-linked-title", &message);
            let _ = response.add_cookie(&cookie);
            response
        }
        Err(error) => internal(error),
    }
}

/// A page for a failed WeChat login, and its audit record.
async fn error_page(state: &AppState, meta: &RequestMeta, appid: &str, error: FlowError) -> HttpResponse {
    let errcode = match &error {
        FlowError::Wechat(e) => e.errcode(),
        _ => None,
    };
    let reason = match &error {
        FlowError::Wechat(WechatError::InvalidCode(_)) => "invalid_code",
        FlowError::Wechat(WechatError::Temporary(_)) => "wechat_busy",
        FlowError::Wechat(WechatError::Configuration { .. }) => "configuration",
        FlowError::Wechat(WechatError::Blocked(_)) => "blocked",
        FlowError::Wechat(WechatError::Unreachable(_)) => "unreachable",
        FlowError::Identity(IdentityError::MergeConflict) => LinkRefusal::IdentityConflict.code(),
        _ => "error",
    };
    let mut event = AuditEvent::failure(Action::LoginWechat, reason).with_request(meta).with_detail("appid", appid);
    if let Some(code) = errcode {
        event = event.with_detail("errcode", code);
    }
    let secrets = state.secrets.clone();
    let _ = db::run(&state.db, move |conn| audit::record(conn, &secrets, &event).map_err(DbError::from)).await;
    let (status, title, message) = match &error {
        FlowError::Wechat(WechatError::InvalidCode(_)) => {
            (StatusCode::BAD_REQUEST, "WeChat login failed", "wechat-code-rejected")
        }
        FlowError::Wechat(WechatError::Temporary(_)) => {
            (StatusCode::SERVICE_UNAVAILABLE, "WeChat is busy", "wechat-busy")
        }
        FlowError::Wechat(WechatError::Unreachable(_)) => {
            (StatusCode::SERVICE_UNAVAILABLE, "WeChat did not answer", "wechat-unreachable")
        }
        FlowError::Wechat(WechatError::Configuration { .. }) | FlowError::App(_) => {
            (StatusCode::BAD_GATEWAY, "WeChat login is not set up correctly", "wechat-misconfigured")
        }
        FlowError::Wechat(WechatError::Blocked(_)) => {
            (StatusCode::FORBIDDEN, "WeChat blocked this login", "wechat-blocked")
        }
        FlowError::Identity(IdentityError::MergeConflict) => {
            (StatusCode::CONFLICT, "Two accounts for one WeChat user", "wechat-identity-conflict")
        }
        _ => {
            tracing::error!(%error, "WeChat login failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong", "wechat-failed-later")
        }
    };
    page(status, title, message)
}

fn internal(error: impl std::fmt::Display) -> HttpResponse {
    actix_web::ResponseError::error_response(&crate::error::AppError::Internal(error.to_string()))
}

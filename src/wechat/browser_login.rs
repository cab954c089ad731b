//! "Log in with WeChat" in the browser: website QR login (qrconnect), or
//! the official account's authorize page inside WeChat's own browser.
//! `state` is single use and bound to the browser (its CSRF cookie); the
//! code is exchanged once; the identity is resolved and the unlinked
//! policy applied; then the pending OIDC authorization continues as if a
//! password had been typed, with `amr` = `wechat`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;

use super::FlowError;
use super::apps::{self, AppKind, WechatApp};
use super::client::WechatError;
use super::identities::{self, IdentityError, Sighting};
use crate::accounts::login::{LoginError, login_with_password};
use crate::accounts::manage::{self, Actor, NewAccount};
use crate::accounts::{Account, AccountId};
use crate::audit::{self, Action, AuditEvent};
use crate::config::{SecretString, UnlinkedPolicy};
use crate::db::{self, DbConn, DbError, wechat::IdentityRow, wechat::LoginState};
use crate::error::ErrorPage;
use crate::http::{RequestMeta, cookies, csrf, render};
use crate::routes::safe_return_path;
use crate::secrets::{constant_time_eq, random_token, sha256_hex};
use crate::state::AppState;

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
#[get("/login/wechat")]
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
            return page(
                StatusCode::NOT_FOUND,
                "WeChat login is not available",
                "No WeChat app is configured for browser login.",
            );
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
    let redirect_uri = format!("{}/login/wechat/callback", state.settings.issuer);
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
#[get("/login/wechat/callback")]
pub async fn callback(
    req: HttpRequest,
    state: web::Data<AppState>,
    meta: RequestMeta,
    query: web::Query<CallbackQuery>,
) -> HttpResponse {
    let Some(login_state) = query.state.clone().filter(|s| s.len() <= 128) else {
        return page(
            StatusCode::BAD_REQUEST,
            "WeChat login failed",
            "The answer from WeChat is incomplete. Please start again.",
        );
    };
    let state_hash = sha256_hex(login_state.as_bytes());
    let taken = db::run(&state.db, move |conn| {
        db::write_transaction(conn, |conn| db::wechat::take_login_state(conn, &state_hash)).map_err(DbError::from)
    })
    .await;
    let stored = match taken {
        Ok(Some(stored)) => stored,
        Ok(None) => {
            return page(
                StatusCode::BAD_REQUEST,
                "WeChat login expired",
                "This WeChat login was already used or has expired. Please start again.",
            );
        }
        Err(error) => return internal(error),
    };
    let same_browser =
        browser_hash(&req, &state).is_some_and(|h| constant_time_eq(h.as_bytes(), stored.browser_hash.as_bytes()));
    if !same_browser || stored.expires_at <= db::now() {
        return page(
            StatusCode::BAD_REQUEST,
            "WeChat login expired",
            "This WeChat login was started in another browser or has expired. Please start again.",
        );
    }
    let Some(code) = query.code.clone().filter(|c| !c.is_empty() && c.len() <= 256) else {
        return page(
            StatusCode::OK,
            "WeChat login cancelled",
            "You cancelled the WeChat login. You can sign in again from the login page.",
        );
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
    let previous_session = cookies::read(req, cookies::SESSION, &state.settings);
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
            let account = account_for(conn, &secrets, &identity, policy)?;
            let mut event = AuditEvent::success(Action::LoginWechat)
                .with_request(&meta_owned)
                .with_detail("surface", surface)
                .with_detail("appid", app.appid.clone())
                .with_detail("identity", identity.id.clone());
            let outcome = match account {
                Some(account) if account.is_active() => {
                    crate::accounts::sessions::end_previous(conn, previous_session.as_deref())?;
                    let (cookie, session) = sessions.create(conn, &account.id, &["wechat"], &meta_owned, db::now())?;
                    event = event
                        .with_account(account.id.as_str())
                        .with_actor(format!("account:{}", account.id))
                        .with_detail("session", session.id_hash[..16].to_owned());
                    Outcome::LoggedIn(cookie)
                }
                Some(account) => {
                    event = AuditEvent::failure(Action::LoginWechat, "account_disabled")
                        .with_request(&meta_owned)
                        .with_account(account.id.as_str());
                    Outcome::Disabled
                }
                None => {
                    event = AuditEvent::failure(Action::LoginWechat, "unlinked")
                        .with_request(&meta_owned)
                        .with_detail("surface", surface)
                        .with_detail("identity", identity.id.clone())
                        .with_detail("policy", format!("{policy:?}").to_lowercase());
                    Outcome::Unlinked(identity.id.clone())
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
        Outcome::Disabled => Ok(page(
            StatusCode::FORBIDDEN,
            "Account disabled",
            "The account linked to this WeChat account is disabled. Please contact your administrator.",
        )),
        Outcome::Unlinked(identity_id) if policy == UnlinkedPolicy::Bind => {
            start_bind(req, state, &identity_id, &stored.return_to).await
        }
        Outcome::Unlinked(_) => Ok(page(
            StatusCode::FORBIDDEN,
            "WeChat account not linked",
            "This WeChat account is not linked to an account here. Please ask your administrator to link it.",
        )),
    }
}

enum Outcome {
    LoggedIn(String),
    Disabled,
    Unlinked(String),
}

/// The account of an identity, applying the unlinked policy where it acts
/// on its own (create, auto-phone). `None`: not linked (deny or bind).
pub fn account_for(
    conn: &mut DbConn,
    secrets: &crate::secrets::Secrets,
    identity: &IdentityRow,
    policy: UnlinkedPolicy,
) -> Result<Option<Account>, FlowError> {
    if let Some(account_id) = &identity.account_id {
        return Ok(manage::find_by_id(conn, &AccountId::from_db(account_id.clone()))?);
    }
    match policy {
        UnlinkedPolicy::Create => {
            let new = NewAccount {
                username: format!("wx-{}", &random_token()[..10].to_lowercase().replace(['-', '_'], "x")),
                display_name: identity.nickname.clone(),
                ..Default::default()
            };
            let account = manage::add(conn, secrets, &Actor("system:wechat".into()), &new, None)?;
            identities::link(
                conn,
                secrets,
                &Actor("system:wechat".into()),
                &identity.id,
                account.id.as_str(),
                "created",
            )?;
            Ok(Some(account))
        }
        UnlinkedPolicy::AutoPhone => match super::phone::unique_account_with_phone(conn, identity)? {
            Some(account) => {
                identities::link(
                    conn,
                    secrets,
                    &Actor("system:auto-phone".into()),
                    &identity.id,
                    account.id.as_str(),
                    "auto-phone",
                )?;
                Ok(Some(account))
            }
            None => Ok(None),
        },
        UnlinkedPolicy::Deny | UnlinkedPolicy::Bind => Ok(None),
    }
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
        return Ok(page(StatusCode::BAD_REQUEST, "WeChat login failed", "Please enable cookies and start again."));
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
    csrf_token: Option<String>,
    bind_token: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

/// The person proves an existing account with its password; the WeChat
/// identity is then linked to it (the `bind` policy).
#[post("/login/wechat/bind")]
pub async fn bind(
    req: HttpRequest,
    state: web::Data<AppState>,
    meta: RequestMeta,
    form: web::Form<BindForm>,
) -> HttpResponse {
    let form = form.into_inner();
    if !csrf::verify(&req, &state, form.csrf_token.as_deref()) {
        return page(StatusCode::FORBIDDEN, "Forbidden", csrf::EXPIRED_FORM);
    }
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
        return page(
            StatusCode::BAD_REQUEST,
            "WeChat login expired",
            "This WeChat login has expired. Please start again.",
        );
    };
    let _ = (binding, expires_at);
    let previous = cookies::read(&req, cookies::SESSION, &state.settings);
    let login = login_with_password(&state, &form.username, SecretString::new(form.password), previous, &meta).await;
    let success = match login {
        Ok(success) => success,
        Err(error) => {
            let (status, message) = match error {
                LoginError::InvalidCredentials => {
                    (StatusCode::UNAUTHORIZED, "Incorrect username or password.".to_owned())
                }
                LoginError::Disabled => (StatusCode::FORBIDDEN, "This account is disabled.".to_owned()),
                LoginError::Throttled { .. } => {
                    (StatusCode::TOO_MANY_REQUESTS, "Too many failed attempts. Please try again later.".to_owned())
                }
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
        db::write_transaction(conn, |conn| -> Result<Result<(), IdentityError>, FlowError> {
            db::wechat::delete_pending_bind(conn, &token_hash)?;
            let actor = Actor(format!("account:{account_id}"));
            match identities::link(conn, &secrets, &actor, &identity_id, &account_id, "password") {
                Ok(()) => Ok(Ok(())),
                Err(IdentityError::Db(e)) => Err(e.into()),
                Err(refusal) => Ok(Err(refusal)),
            }
        })
    })
    .await;
    let cookie = cookies::build(cookies::SESSION, success.cookie_value, &state.settings);
    match linked {
        Ok(Ok(())) => HttpResponse::SeeOther().cookie(cookie).insert_header(("Location", return_to)).finish(),
        Ok(Err(refusal)) => {
            let message = format!("You are signed in, but the WeChat account could not be linked: {refusal}.");
            let mut response = page(StatusCode::CONFLICT, "WeChat account not linked", &message);
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
        FlowError::Identity(IdentityError::MergeConflict) => "merge_conflict",
        _ => "error",
    };
    let mut event = AuditEvent::failure(Action::LoginWechat, reason).with_request(meta).with_detail("appid", appid);
    if let Some(code) = errcode {
        event = event.with_detail("errcode", code);
    }
    let secrets = state.secrets.clone();
    let _ = db::run(&state.db, move |conn| audit::record(conn, &secrets, &event).map_err(DbError::from)).await;
    let (status, title, message) = match &error {
        FlowError::Wechat(WechatError::InvalidCode(_)) => (
            StatusCode::BAD_REQUEST,
            "WeChat login failed",
            "WeChat did not accept this login (it may have expired or been used already). Please try again.",
        ),
        FlowError::Wechat(WechatError::Temporary(_)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "WeChat is busy",
            "WeChat is busy right now. Please try again in a minute.",
        ),
        FlowError::Wechat(WechatError::Unreachable(_)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "WeChat did not answer",
            "WeChat could not be reached. Please try again shortly, or sign in with your password.",
        ),
        FlowError::Wechat(WechatError::Configuration { .. }) | FlowError::App(_) => (
            StatusCode::BAD_GATEWAY,
            "WeChat login is not set up correctly",
            "WeChat login is not working because of a configuration problem. The administrator has been told; please sign in with your password meanwhile.",
        ),
        FlowError::Wechat(WechatError::Blocked(_)) => (
            StatusCode::FORBIDDEN,
            "WeChat blocked this login",
            "WeChat blocked this login. Please sign in with your password.",
        ),
        FlowError::Identity(IdentityError::MergeConflict) => (
            StatusCode::CONFLICT,
            "Two accounts for one WeChat user",
            "This WeChat user is linked to two different accounts. Please ask your administrator to resolve it.",
        ),
        _ => {
            tracing::error!(%error, "WeChat login failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "The WeChat login could not be completed. Please try again later.",
            )
        }
    };
    page(status, title, message)
}

fn internal(error: impl std::fmt::Display) -> HttpResponse {
    actix_web::ResponseError::error_response(&crate::error::AppError::Internal(error.to_string()))
}

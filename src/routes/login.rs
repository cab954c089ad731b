//! `/login`: the password form.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::safe_return_path;
use crate::accounts::login::{LoginError, login_with_password};
use crate::config::SecretString;
use crate::error::AppError;
use crate::http::{RequestMeta, cookies, csrf, render};
use crate::i18n::{self, filters};
use crate::state::AppState;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    csrf_token: String,
    username: String,
    return_to: String,
    error: Option<String>,
    /// The "Log in with WeChat" link, when a WeChat app is configured.
    wechat_url: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginQuery {
    return_to: Option<String>,
    login_hint: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    csrf_token: Option<String>,
    return_to: Option<String>,
}

async fn form_page(
    req: &HttpRequest,
    state: &AppState,
    status: StatusCode,
    username: String,
    return_to: String,
    error: Option<String>,
) -> HttpResponse {
    let (csrf_token, builder) = csrf::form_page(req, state, status);
    let username: String = username.chars().take(64).collect();
    let wechat_url = super::wechat::browser_login::available(state).await.then(|| {
        format!("/login/wechat?{}", serde_urlencoded::to_string([("return_to", &return_to)]).unwrap_or_default())
    });
    render::page_with(builder, &LoginPage { csrf_token, username, return_to, error, wechat_url })
}

pub async fn show(req: HttpRequest, state: web::Data<AppState>, query: web::Query<LoginQuery>) -> HttpResponse {
    let query = query.into_inner();
    let return_to = safe_return_path(query.return_to.as_deref());
    form_page(&req, &state, StatusCode::OK, query.login_hint.unwrap_or_default(), return_to, None).await
}

pub async fn submit(
    req: HttpRequest,
    state: web::Data<AppState>,
    meta: RequestMeta,
    form: web::Form<LoginForm>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    let return_to = safe_return_path(form.return_to.as_deref());
    if !csrf::verify(&req, &state, form.csrf_token.as_deref()) {
        let message = i18n::t(csrf::EXPIRED_FORM);
        return Ok(form_page(&req, &state, StatusCode::FORBIDDEN, form.username, return_to, Some(message)).await);
    }
    if form.username.len() > 256 || form.password.len() > 1024 {
        let message = i18n::t("login-error-invalid");
        return Ok(form_page(&req, &state, StatusCode::UNAUTHORIZED, String::new(), return_to, Some(message)).await);
    }
    let previous = cookies::read(&req, cookies::SESSION, &state.settings);
    let result = login_with_password(&state, &form.username, SecretString::new(form.password), previous, &meta).await;
    let (status, message) = match result {
        Ok(success) => {
            let cookie = cookies::build(cookies::SESSION, success.cookie_value, &state.settings);
            return Ok(HttpResponse::SeeOther().cookie(cookie).insert_header(("Location", return_to)).finish());
        }
        Err(LoginError::InvalidCredentials) => (StatusCode::UNAUTHORIZED, i18n::t("login-error-invalid")),
        Err(LoginError::Disabled) => (StatusCode::FORBIDDEN, i18n::t("login-error-disabled")),
        Err(LoginError::Throttled { retry_after_secs }) => {
            let minutes = (retry_after_secs + 59) / 60;
            let message = i18n::t_args("login-error-throttled", &[("minutes", minutes.into())]);
            let mut response =
                form_page(&req, &state, StatusCode::TOO_MANY_REQUESTS, form.username, return_to, Some(message)).await;
            if let Ok(value) = actix_web::http::header::HeaderValue::from_str(&retry_after_secs.to_string()) {
                response.headers_mut().insert(actix_web::http::header::RETRY_AFTER, value);
            }
            return Ok(response);
        }
        Err(LoginError::Db(e)) => return Err(e.into()),
        Err(LoginError::Hash(e)) => return Err(e.into()),
    };
    Ok(form_page(&req, &state, status, form.username, return_to, Some(message)).await)
}

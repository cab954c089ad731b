//! `/logout`: GET asks, POST (with CSRF) does it. Logging out is a state
//! change, so a link or an image on another site must not trigger it.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;

use crate::accounts::sessions;
use crate::db::{self, DbError};
use crate::error::AppError;
use crate::http::{RequestMeta, cookies, csrf, render, session};
use crate::i18n::filters;
use crate::state::AppState;

#[derive(Template)]
#[template(path = "logout.html")]
struct LogoutPage {
    csrf_token: String,
    username: Option<String>,
}

#[derive(Template)]
#[template(path = "logged_out.html")]
struct LoggedOutPage;

#[derive(Deserialize)]
pub struct LogoutForm {
    csrf_token: Option<String>,
}

#[get("/logout")]
pub async fn confirm(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let current = session::current(&req, &state).await?;
    let Some((_, account)) = current else {
        return Ok(render::page(StatusCode::OK, &LoggedOutPage));
    };
    let (csrf_token, builder) = csrf::form_page(&req, &state, StatusCode::OK);
    Ok(render::page_with(builder, &LogoutPage { csrf_token, username: Some(account.username) }))
}

#[post("/logout")]
pub async fn submit(
    req: HttpRequest,
    state: web::Data<AppState>,
    meta: RequestMeta,
    form: web::Form<LogoutForm>,
) -> Result<HttpResponse, AppError> {
    csrf::require(&req, &state, form.csrf_token.as_deref())?;
    if let Some((session, _)) = session::current(&req, &state).await? {
        let secrets = state.secrets.clone();
        db::run(&state.db, move |conn| {
            db::write_transaction(conn, |conn| sessions::end(conn, &secrets, &session, &meta)).map_err(DbError::from)
        })
        .await?;
    }
    let mut builder = render::builder(StatusCode::OK);
    builder.cookie(cookies::removal(cookies::SESSION, &state.settings));
    Ok(render::page_with(builder, &LoggedOutPage))
}

//! `/logout`: GET asks, POST (with CSRF) does it. Logging out is a state
//! change, so a link or an image on another site must not trigger it.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::accounts::sessions;
use crate::db::{self, DbError};
use crate::error::AppError;
use crate::http::extract::{CsrfForm, CurrentSession, OptionalSession};
use crate::http::{RequestMeta, cookies, csrf, render};
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

/// The logout form has nothing but its CSRF token.
#[derive(Deserialize)]
pub struct LogoutForm {}

pub async fn confirm(
    req: HttpRequest,
    state: web::Data<AppState>,
    current: OptionalSession,
) -> Result<HttpResponse, AppError> {
    let Some(CurrentSession { account, .. }) = current.0 else {
        return Ok(render::page(StatusCode::OK, &LoggedOutPage));
    };
    let (csrf_token, builder) = csrf::form_page(&req, &state, StatusCode::OK);
    Ok(render::page_with(builder, &LogoutPage { csrf_token, username: Some(account.username) }))
}

pub async fn submit(
    state: web::Data<AppState>,
    meta: RequestMeta,
    _form: CsrfForm<LogoutForm>,
    current: OptionalSession,
) -> Result<HttpResponse, AppError> {
    if let Some(CurrentSession { session, .. }) = current.0 {
        let secrets = state.secrets.clone();
        db::run(&state.db, move |conn| {
            db::write_transaction(conn, |conn| sessions::end(conn, &secrets, &session, &meta, "logout"))
                .map_err(DbError::from)
        })
        .await?;
    }
    let mut builder = render::builder(StatusCode::OK);
    builder.cookie(cookies::removal(cookies::SESSION, &state.settings));
    Ok(render::page_with(builder, &LoggedOutPage))
}

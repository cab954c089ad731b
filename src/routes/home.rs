//! The landing page: who is logged in, and a way out.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use crate::error::AppError;
use crate::http::extract::{CurrentSession, OptionalSession};
use crate::http::{csrf, paths, render};
use crate::i18n::filters;
use crate::state::AppState;

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    username: String,
    display_name: Option<String>,
    csrf_token: String,
}

pub async fn home(
    req: HttpRequest,
    state: web::Data<AppState>,
    current: OptionalSession,
) -> Result<HttpResponse, AppError> {
    let Some(CurrentSession { account, .. }) = current.0 else {
        return Ok(HttpResponse::SeeOther().insert_header(("Location", paths::LOGIN)).finish());
    };
    let (csrf_token, builder) = csrf::form_page(&req, &state, StatusCode::OK);
    let page = HomePage { username: account.username, display_name: account.display_name, csrf_token };
    Ok(render::page_with(builder, &page))
}

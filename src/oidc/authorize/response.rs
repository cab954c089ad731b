//! Answers of the authorization endpoint: the success or error redirect
//! to the client (RFC 6749 §4.1.2, RFC 9207 `iss`, OAuth 2.0 Form Post
//! Response Mode), or an error page while the client cannot be trusted.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use askama::Template;

use super::request::{ReplyTo, ResponseMode};
use crate::db::DbError;
use crate::error::AppError;
use crate::http::render;
use crate::i18n::filters;
use crate::oidc::error::OAuthError;

/// Why a request could not go on.
pub enum Rejection {
    /// Nothing about the client can be trusted yet: show a page.
    Page(String),
    /// Tell the client, at its verified redirect URI.
    Redirect(Box<ReplyTo>, Box<OAuthError>),
    Internal(String),
}

impl Rejection {
    pub fn redirect(to: ReplyTo, error: OAuthError) -> Self {
        Self::Redirect(Box::new(to), Box::new(error))
    }
}

impl From<DbError> for Rejection {
    fn from(e: DbError) -> Self {
        Self::Internal(e.to_string())
    }
}

/// The success or error response to the client (RFC 6749 §4.1.2, RFC
/// 9207 `iss`, OAuth 2.0 Form Post Response Mode).
pub fn reply(to: &ReplyTo, mut params: Vec<(&'static str, String)>) -> HttpResponse {
    if let Some(state) = &to.state {
        params.push(("state", state.clone()));
    }
    params.push(("iss", to.issuer.clone()));
    match to.mode {
        ResponseMode::Query => {
            let query = serde_urlencoded::to_string(&params).unwrap_or_default();
            let separator = if to.redirect_uri.contains('?') { '&' } else { '?' };
            HttpResponse::SeeOther()
                .insert_header(("Location", format!("{}{separator}{query}", to.redirect_uri)))
                .insert_header(("Cache-Control", "no-store"))
                .finish()
        }
        ResponseMode::FormPost => {
            let page = FormPostPage {
                action: to.redirect_uri.clone(),
                fields: params.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
            };
            render::page(StatusCode::OK, &page)
        }
    }
}

#[derive(Template)]
#[template(path = "form_post.html")]
struct FormPostPage {
    action: String,
    fields: Vec<(String, String)>,
}

pub fn respond_rejection(rejection: Rejection) -> HttpResponse {
    match rejection {
        Rejection::Page(message) => error_page(&message),
        Rejection::Redirect(to, error) => reply(&to, error.redirect_params()),
        Rejection::Internal(cause) => actix_web::ResponseError::error_response(&AppError::Internal(cause)),
    }
}

fn error_page(message: &str) -> HttpResponse {
    actix_web::ResponseError::error_response(&AppError::BadRequest(message.to_owned()))
}

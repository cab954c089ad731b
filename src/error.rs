//! The error type browser-facing handlers return. Each variant maps to a
//! status and a page; 5xx pages say nothing about the cause, which goes to
//! the log instead. (Protocol endpoints have their own RFC error types.)

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use askama::Template;

use crate::accounts::password::HashError;
use crate::db::DbError;
use crate::http::render;
use crate::i18n::filters;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("page not found")]
    NotFound,
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<DbError> for AppError {
    fn from(e: DbError) -> Self {
        Self::Internal(e.to_string())
    }
}

impl From<HashError> for AppError {
    fn from(e: HashError) -> Self {
        Self::Internal(e.to_string())
    }
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage<'a> {
    /// A message id, or text already in the reader's language.
    pub title: &'a str,
    /// A message id, or readable text (e.g. an OAuth error_description).
    pub message: &'a str,
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let (title, message) = match self {
            Self::BadRequest(m) => ("error-bad-request-title", m.as_str()),
            Self::Forbidden(m) => ("error-forbidden-title", m.as_str()),
            Self::NotFound => ("error-not-found-title", "error-not-found"),
            Self::Internal(cause) => {
                tracing::error!(cause = %cause, "internal error");
                ("error-internal-title", "error-internal")
            }
        };
        render::page(self.status_code(), &ErrorPage { title, message })
    }
}

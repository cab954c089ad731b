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
    /// The database is down or overloaded: `503` with `Retry-After`
    /// (RFC 9110 §15.6.4), so that clients and load balancers retry
    /// instead of reporting a server bug.
    #[error("service unavailable: {0}")]
    Unavailable(String),
}

impl From<DbError> for AppError {
    fn from(e: DbError) -> Self {
        if e.is_unavailable() { Self::Unavailable(e.to_string()) } else { Self::Internal(e.to_string()) }
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
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
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
            Self::Unavailable(cause) => {
                tracing::warn!(cause = %cause, "service unavailable");
                ("Temporarily unavailable", "The service is briefly unavailable. Please try again in a moment.")
            }
        };
        let mut response = render::page(self.status_code(), &ErrorPage { title, message });
        if let Self::Unavailable(_) = self {
            response.headers_mut().insert(
                actix_web::http::header::RETRY_AFTER,
                actix_web::http::header::HeaderValue::from(crate::db::RETRY_AFTER_SECS),
            );
        }
        response
    }
}

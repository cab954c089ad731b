//! Errors of the management API as RFC 9457 problem details
//! (`application/problem+json`): `type`, `title`, `status`, `detail`, and
//! `errors` for the fields a request got wrong. Bearer-token refusals also
//! carry the RFC 6750 §3 `WWW-Authenticate` challenge.
//!
//! 5xx problems say nothing about the cause (it goes to the log); a bad
//! request is never a 500; a database outage is a 503 with `Retry-After`.

use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, RETRY_AFTER, WWW_AUTHENTICATE};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::db::DbError;

/// The media type of a problem (RFC 9457 §3).
pub const PROBLEM_JSON: &str = "application/problem+json";

/// A problem details object (RFC 9457 §3.1). `type` is a URN naming the
/// kind of problem (stable: automation may branch on it, like `code`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// A URN naming the problem type, e.g. `urn:wxfed:problem:reason-required`.
    #[serde(rename = "type")]
    pub type_uri: String,
    /// A short summary of the problem type (the same for every occurrence).
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong this time, for a person to read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The stable code behind `type` (e.g. `reason_required`, `last_admin`,
    /// `linked_elsewhere`): the same codes as the console's refusals.
    pub code: String,
    /// The request fields that were refused.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// One refused field of a request.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FieldError {
    /// The field's name (a JSON pointer-ish path such as `roles` or `line 3`).
    pub field: String,
    pub message: String,
}

/// Every way a management API request fails.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No, or no valid, access token (RFC 6750 §3.1 `invalid_token`).
    #[error("invalid token: {0}")]
    InvalidToken(String),
    /// A valid token without the scope this operation needs (RFC 6750 §3.1).
    #[error("insufficient scope: {required} needed")]
    InsufficientScope { required: &'static str, detail: String },
    /// The request is malformed or refused by a rule (400).
    #[error("{detail}")]
    BadRequest { code: &'static str, detail: String, errors: Vec<FieldError> },
    #[error("not found: {0}")]
    NotFound(String),
    /// The request conflicts with the current state (409).
    #[error("{detail}")]
    Conflict { code: &'static str, detail: String },
    /// Some other status with a code (413, 422).
    #[error("{detail}")]
    Status { status: StatusCode, code: &'static str, detail: String },
    #[error("service unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::BadRequest { code, detail: detail.into(), errors: Vec::new() }
    }

    /// A 400 naming the field at fault.
    pub fn invalid_field(field: &str, detail: impl Into<String>) -> Self {
        let detail = detail.into();
        Self::BadRequest {
            code: "invalid_field",
            errors: vec![FieldError { field: field.to_owned(), message: detail.clone() }],
            detail,
        }
    }

    pub fn conflict(code: &'static str, detail: impl Into<String>) -> Self {
        Self::Conflict { code, detail: detail.into() }
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        Self::NotFound(what.into())
    }

    fn code(&self) -> &'static str {
        match self {
            Self::InvalidToken(_) => "invalid_token",
            Self::InsufficientScope { .. } => "insufficient_scope",
            Self::BadRequest { code, .. } | Self::Conflict { code, .. } | Self::Status { code, .. } => code,
            Self::NotFound(_) => "not_found",
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
        }
    }

    fn title(&self) -> &'static str {
        match self {
            Self::InvalidToken(_) => "Invalid or missing access token",
            Self::InsufficientScope { .. } => "Insufficient scope",
            Self::BadRequest { .. } => "Bad request",
            Self::NotFound(_) => "Not found",
            Self::Conflict { .. } => "Conflict",
            Self::Status { status, .. } => status.canonical_reason().unwrap_or("Error"),
            Self::Unavailable(_) => "Service unavailable",
            Self::Internal(_) => "Internal error",
        }
    }

    /// The problem object this error answers with.
    pub fn problem(&self) -> Problem {
        let detail = match self {
            Self::InvalidToken(d) | Self::NotFound(d) => Some(d.clone()),
            Self::InsufficientScope { detail, .. }
            | Self::BadRequest { detail, .. }
            | Self::Conflict { detail, .. }
            | Self::Status { detail, .. } => Some(detail.clone()),
            Self::Unavailable(_) => Some("The service is briefly unavailable; retry shortly.".to_owned()),
            // The cause is logged, never sent.
            Self::Internal(_) => None,
        };
        let code = self.code();
        Problem {
            type_uri: format!("urn:wxfed:problem:{}", code.replace('_', "-")),
            title: self.title().to_owned(),
            status: self.status_code().as_u16(),
            detail,
            code: code.to_owned(),
            errors: match self {
                Self::BadRequest { errors, .. } => errors.clone(),
                _ => Vec::new(),
            },
        }
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        if e.is_unavailable() { Self::Unavailable(e.to_string()) } else { Self::Internal(e.to_string()) }
    }
}

impl From<diesel::result::Error> for ApiError {
    fn from(e: diesel::result::Error) -> Self {
        DbError::Query(e).into()
    }
}

impl From<crate::oidc::error::OAuthError> for ApiError {
    fn from(e: crate::oidc::error::OAuthError) -> Self {
        use crate::oidc::error::ErrorCode;
        let detail = e.description.clone().unwrap_or_default();
        match e.code {
            ErrorCode::TemporarilyUnavailable => Self::Unavailable(detail),
            ErrorCode::ServerError => Self::Internal(e.to_string()),
            _ => Self::InvalidToken(detail),
        }
    }
}

impl From<crate::accounts::password::HashError> for ApiError {
    fn from(e: crate::accounts::password::HashError) -> Self {
        Self::Internal(e.to_string())
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::InvalidToken(_) => StatusCode::UNAUTHORIZED,
            Self::InsufficientScope { .. } => StatusCode::FORBIDDEN,
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::Status { status, .. } => *status,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::Internal(cause) => tracing::error!(cause = %cause, "management API request failed"),
            Self::Unavailable(cause) => tracing::warn!(cause = %cause, "management API unavailable"),
            _ => {}
        }
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((CACHE_CONTROL, "no-store"));
        match self {
            // RFC 6750 §3: the challenge names the error (and, for a
            // missing scope, the scope that is needed, §3.1).
            Self::InvalidToken(detail) => {
                let challenge = format!(
                    "Bearer realm=\"wxfed\", error=\"invalid_token\", error_description=\"{}\"",
                    detail.replace(['"', '\\'], "'")
                );
                response.insert_header((WWW_AUTHENTICATE, challenge));
            }
            Self::InsufficientScope { required, .. } => {
                let challenge = format!("Bearer realm=\"wxfed\", error=\"insufficient_scope\", scope=\"{required}\"");
                response.insert_header((WWW_AUTHENTICATE, challenge));
            }
            Self::Unavailable(_) => {
                response.insert_header((RETRY_AFTER, crate::db::RETRY_AFTER_SECS));
            }
            _ => {}
        }
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        response.content_type(PROBLEM_JSON).body(body)
    }
}

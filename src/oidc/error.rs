//! OAuth 2.0 errors as the RFCs spell them: a JSON body at the token,
//! revocation and introspection endpoints (RFC 6749 §5.2), a
//! `WWW-Authenticate: Bearer` challenge at resource endpoints (RFC 6750
//! §3), and redirect parameters at the authorization endpoint (§4.1.2.1).

use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, PRAGMA, RETRY_AFTER, WWW_AUTHENTICATE};
use actix_web::{HttpResponse, ResponseError};

/// The registered error codes wxfed uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    InvalidScope,
    AccessDenied,
    UnsupportedResponseType,
    ServerError,
    TemporarilyUnavailable,
    /// OIDC Core §3.1.2.6
    LoginRequired,
    ConsentRequired,
    InteractionRequired,
    /// RFC 6750 §3.1
    InvalidToken,
    /// RFC 7009 §2.2.1
    UnsupportedTokenType,
    /// OIDC Core §3.1.2.6
    RequestNotSupported,
    RequestUriNotSupported,
    /// RFC 6750 §3.1
    InsufficientScope,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::AccessDenied => "access_denied",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::LoginRequired => "login_required",
            Self::ConsentRequired => "consent_required",
            Self::InteractionRequired => "interaction_required",
            Self::InvalidToken => "invalid_token",
            Self::UnsupportedTokenType => "unsupported_token_type",
            Self::RequestNotSupported => "request_not_supported",
            Self::RequestUriNotSupported => "request_uri_not_supported",
            Self::InsufficientScope => "insufficient_scope",
        }
    }
}

/// An error of a protocol endpoint. `description` is for developers
/// (never secrets); server errors keep their cause for the log only.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}: {}", code.as_str(), description.as_deref().unwrap_or(""))]
pub struct OAuthError {
    pub code: ErrorCode,
    pub description: Option<String>,
    /// Extra machine-readable fields (e.g. a `reason` for clients).
    pub extra: Vec<(&'static str, String)>,
    /// Logged, never sent.
    internal_cause: Option<String>,
    /// A status other than the one the code implies (`429` for a rate limit).
    status: Option<StatusCode>,
    /// Seconds for a `Retry-After` header (RFC 9110 §10.2.3).
    retry_after_secs: Option<u64>,
}

impl OAuthError {
    pub fn new(code: ErrorCode, description: impl Into<String>) -> Self {
        Self {
            code,
            description: Some(description.into()),
            extra: Vec::new(),
            internal_cause: None,
            status: None,
            retry_after_secs: None,
        }
    }

    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, description)
    }

    pub fn invalid_client(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidClient, description)
    }

    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidGrant, description)
    }

    pub fn invalid_token(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidToken, description)
    }

    /// A failure of ours: the client sees `server_error`, the log the cause.
    pub fn server_error(cause: impl std::fmt::Display) -> Self {
        Self {
            code: ErrorCode::ServerError,
            description: Some("the server could not complete the request".into()),
            extra: Vec::new(),
            internal_cause: Some(cause.to_string()),
            status: None,
            retry_after_secs: None,
        }
    }

    /// The database (or another dependency) is briefly unavailable:
    /// `temporarily_unavailable` (RFC 6749 §4.1.2.1, used in the JSON form of
    /// §5.2 too), `503` and `Retry-After`. The cause goes to the log at WARN.
    pub fn temporarily_unavailable(cause: impl std::fmt::Display) -> Self {
        Self {
            code: ErrorCode::TemporarilyUnavailable,
            description: Some("the service is briefly unavailable; retry shortly".into()),
            extra: Vec::new(),
            internal_cause: Some(cause.to_string()),
            status: Some(StatusCode::SERVICE_UNAVAILABLE),
            retry_after_secs: Some(crate::db::RETRY_AFTER_SECS),
        }
    }

    /// Too many requests of this client or network: `429` (RFC 6585 §4)
    /// with `Retry-After`, and `temporarily_unavailable` as the RFC 6749
    /// code (the registry has no rate-limit code outside RFC 8628).
    pub fn rate_limited(retry_after_secs: u64) -> Self {
        Self {
            code: ErrorCode::TemporarilyUnavailable,
            description: Some("too many requests; retry later".into()),
            extra: Vec::new(),
            internal_cause: None,
            status: Some(StatusCode::TOO_MANY_REQUESTS),
            retry_after_secs: Some(retry_after_secs.max(1)),
        }
    }

    pub fn with_extra(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.extra.push((key, value.into()));
        self
    }

    fn body(&self) -> serde_json::Value {
        let mut body = serde_json::json!({ "error": self.code.as_str() });
        if let Some(description) = &self.description {
            body["error_description"] = description.clone().into();
        }
        for (key, value) in &self.extra {
            body[*key] = value.clone().into();
        }
        body
    }

    /// The parameters of an error redirect to the client (RFC 6749
    /// §4.1.2.1), without `state` and `iss`, which the caller adds.
    pub fn redirect_params(&self) -> Vec<(&'static str, String)> {
        let mut params = vec![("error", self.code.as_str().to_owned())];
        if let Some(description) = &self.description {
            params.push(("error_description", description.clone()));
        }
        params
    }

    /// As a Bearer-protected resource answers (RFC 6750 §3).
    pub fn bearer_response(&self) -> HttpResponse {
        let mut challenge = format!("Bearer realm=\"wxfed\", error=\"{}\"", self.code.as_str());
        if let Some(description) = &self.description {
            challenge.push_str(&format!(", error_description=\"{}\"", description.replace(['"', '\\'], "'")));
        }
        let status = self.status.unwrap_or(match self.code {
            ErrorCode::InvalidRequest => StatusCode::BAD_REQUEST,
            ErrorCode::InsufficientScope => StatusCode::FORBIDDEN,
            ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::UNAUTHORIZED,
        });
        self.log();
        let mut response = HttpResponse::build(status);
        response.insert_header((WWW_AUTHENTICATE, challenge)).insert_header((CACHE_CONTROL, "no-store"));
        if let Some(secs) = self.retry_after_secs {
            response.insert_header((RETRY_AFTER, secs));
        }
        response.json(self.body())
    }

    fn log(&self) {
        if let Some(cause) = &self.internal_cause {
            if self.code == ErrorCode::ServerError {
                tracing::error!(cause = %cause, "protocol endpoint failed");
            } else {
                tracing::warn!(cause = %cause, "protocol endpoint unavailable");
            }
        }
    }

    /// Seconds of the `Retry-After` this error carries, if any.
    pub fn retry_after_secs(&self) -> Option<u64> {
        self.retry_after_secs
    }
}

impl ResponseError for OAuthError {
    fn status_code(&self) -> StatusCode {
        if let Some(status) = self.status {
            return status;
        }
        match self.code {
            ErrorCode::InvalidClient | ErrorCode::InvalidToken => StatusCode::UNAUTHORIZED,
            ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    fn error_response(&self) -> HttpResponse {
        self.log();
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((CACHE_CONTROL, "no-store")).insert_header((PRAGMA, "no-cache"));
        if self.code == ErrorCode::InvalidClient {
            // RFC 6749 §5.2: a 401 for client authentication names the scheme.
            response.insert_header((WWW_AUTHENTICATE, "Basic realm=\"wxfed\""));
        }
        if let Some(secs) = self.retry_after_secs {
            response.insert_header((RETRY_AFTER, secs));
        }
        response.json(self.body())
    }
}

impl From<crate::db::DbError> for OAuthError {
    fn from(e: crate::db::DbError) -> Self {
        if e.is_unavailable() { Self::temporarily_unavailable(e) } else { Self::server_error(e) }
    }
}

impl From<crate::accounts::throttle::WechatBudgetError> for OAuthError {
    fn from(e: crate::accounts::throttle::WechatBudgetError) -> Self {
        match e {
            crate::accounts::throttle::WechatBudgetError::Exhausted { retry_after_secs } => {
                Self::rate_limited(retry_after_secs)
            }
            crate::accounts::throttle::WechatBudgetError::Db(cause) => cause.into(),
        }
    }
}

impl From<diesel::result::Error> for OAuthError {
    fn from(e: diesel::result::Error) -> Self {
        if crate::db::is_temporarily_unavailable(&e) { Self::temporarily_unavailable(e) } else { Self::server_error(e) }
    }
}

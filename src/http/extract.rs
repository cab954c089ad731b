//! Extractors for what handlers would otherwise repeat: the browser's
//! session, a CSRF-checked form and a bearer token. Each refuses the way
//! its surface expects (a page, a redirect to the login, an RFC 6750
//! challenge), so a handler that receives one can rely on it.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header::AUTHORIZATION;
use actix_web::http::{Method, StatusCode};
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};
use serde::de::DeserializeOwned;

use super::{csrf, paths, session};
use crate::accounts::Account;
use crate::accounts::sessions::Session;
use crate::error::AppError;
use crate::oidc::error::OAuthError;
use crate::oidc::params::Params;
use crate::state::AppState;

type LocalBoxFuture<T> = Pin<Box<dyn Future<Output = T>>>;

/// The application state, for extractors (it is registered in `startup`).
pub fn app_state(req: &HttpRequest) -> Result<web::Data<AppState>, AppError> {
    req.app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| AppError::Internal("the application state is not registered".into()))
}

/// A live session of an active account. Without one, a GET is sent to the
/// login page (and comes back here afterwards); anything else gets a 403.
pub struct CurrentSession {
    pub session: Session,
    pub account: Account,
}

/// The session, when the browser has one; a handler that serves both the
/// signed-in and the anonymous case. Only a broken database is an error.
pub struct OptionalSession(pub Option<CurrentSession>);

/// Resolves the session cookie (expired sessions are ended on the way).
pub async fn resolve_session(req: &HttpRequest) -> Result<Option<CurrentSession>, AppError> {
    let state = app_state(req)?;
    let current = session::current(req, &state).await?;
    Ok(current.map(|(session, account)| CurrentSession { session, account }))
}

/// Where a request without a session goes: the login page for a GET
/// (returning here), a 403 page otherwise (a form cannot be replayed
/// after a login).
#[derive(Debug, thiserror::Error)]
pub enum SessionRequired {
    #[error("a session is required")]
    Login { return_to: String },
    #[error("a session is required")]
    Forbidden,
    #[error(transparent)]
    App(#[from] AppError),
}

impl SessionRequired {
    fn for_request(req: &HttpRequest) -> Self {
        if req.method() == Method::GET || req.method() == Method::HEAD {
            let uri = req.uri();
            let return_to = uri.path_and_query().map_or_else(|| uri.path().to_owned(), |pq| pq.as_str().to_owned());
            Self::Login { return_to }
        } else {
            Self::Forbidden
        }
    }
}

/// The login page URL that comes back to `return_to` afterwards.
pub fn login_url(return_to: &str) -> String {
    let query = serde_urlencoded::to_string([("return_to", return_to)]).unwrap_or_default();
    format!("{}?{query}", paths::LOGIN)
}

impl ResponseError for SessionRequired {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Login { .. } => StatusCode::SEE_OTHER,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::App(error) => error.status_code(),
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::Login { return_to } => {
                HttpResponse::SeeOther().insert_header(("Location", login_url(return_to))).finish()
            }
            Self::Forbidden => AppError::Forbidden("Please sign in first.".into()).error_response(),
            Self::App(error) => error.error_response(),
        }
    }
}

impl FromRequest for CurrentSession {
    type Error = SessionRequired;
    type Future = LocalBoxFuture<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { resolve_session(&req).await?.ok_or_else(|| SessionRequired::for_request(&req)) })
    }
}

impl FromRequest for OptionalSession {
    type Error = AppError;
    type Future = LocalBoxFuture<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { resolve_session(&req).await.map(OptionalSession) })
    }
}

/// A form body whose signed double-submit token (`csrf_token`, see
/// [`csrf`]) matches the browser's CSRF cookie. The body is read with the
/// app's `FormConfig` (size limit, 400 page); a missing or wrong token is
/// the 403 "this form has expired" page.
pub struct CsrfForm<T>(pub T);

impl<T> CsrfForm<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for CsrfForm<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for CsrfForm<T> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let pairs = web::Form::<Vec<(String, String)>>::from_request(req, payload);
        let req = req.clone();
        Box::pin(async move {
            let pairs = pairs.await?.into_inner();
            // The fields are decoded once into pairs and then into `T`, so
            // that the token is checked on exactly the body `T` came from.
            let encoded = serde_urlencoded::to_string(&pairs)
                .map_err(|e| AppError::BadRequest(format!("The form could not be read: {e}")))?;
            let form: T = serde_urlencoded::from_str(&encoded)
                .map_err(|e| AppError::BadRequest(format!("The form could not be read: {e}")))?;
            let submitted = pairs.iter().find(|(name, _)| name == csrf::FIELD).map(|(_, value)| value.as_str());
            let state = app_state(&req)?;
            csrf::require(&req, &state, submitted)?;
            Ok(CsrfForm(form))
        })
    }
}

/// An access token from the `Authorization: Bearer` header (RFC 6750
/// §2.1). A token in the URL query (§2.3) is refused: URLs end up in logs.
/// Refusals answer with the `WWW-Authenticate: Bearer` challenge (§3).
pub struct BearerToken(pub String);

/// A refusal of a bearer-token request, as an RFC 6750 §3 challenge.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct BearerError(#[from] pub OAuthError);

impl ResponseError for BearerError {
    fn status_code(&self) -> StatusCode {
        self.0.status_code()
    }
    fn error_response(&self) -> HttpResponse {
        self.0.bearer_response()
    }
}

impl BearerToken {
    /// The header's token, if the header is a Bearer one.
    pub fn from_header(req: &HttpRequest) -> Option<String> {
        let value = req.headers().get(AUTHORIZATION)?.to_str().ok()?;
        // The scheme is case-insensitive (RFC 7235 §2.1).
        (value.len() > 7 && value[..7].eq_ignore_ascii_case("bearer ")).then(|| value[7..].trim().to_owned())
    }

    fn refuse_query_token(req: &HttpRequest) -> Result<(), OAuthError> {
        if req.query_string().split('&').any(|p| p.starts_with("access_token=")) {
            return Err(OAuthError::invalid_request("send the access token in the Authorization header"));
        }
        Ok(())
    }

    /// The token of a request that may also carry it in an
    /// `application/x-www-form-urlencoded` body (RFC 6750 §2.2, only
    /// where an endpoint allows it). Two at once is an error (§2).
    pub fn from_header_or_form(req: &HttpRequest, body: Option<&Params>) -> Result<String, OAuthError> {
        Self::refuse_query_token(req)?;
        let form = body.and_then(|p| p.get("access_token")).map(str::to_owned);
        match (Self::from_header(req), form) {
            (Some(_), Some(_)) => Err(OAuthError::invalid_request("send the access token once")),
            (Some(token), None) | (None, Some(token)) => Ok(token),
            (None, None) => Err(OAuthError::invalid_token("an access token is required (Authorization: Bearer)")),
        }
    }
}

impl FromRequest for BearerToken {
    type Error = BearerError;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(Self::from_header_or_form(req, None).map(BearerToken).map_err(BearerError))
    }
}

/// A bearer token from the header or (RFC 6750 §2.2) the form body,
/// together with the body's other parameters. For endpoints that accept
/// both, e.g. UserInfo's POST.
pub struct BearerTokenOrForm {
    pub token: String,
    pub params: Option<Params>,
}

impl FromRequest for BearerTokenOrForm {
    type Error = BearerError;
    type Future = LocalBoxFuture<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = web::Bytes::from_request(req, payload);
        let req = req.clone();
        Box::pin(async move {
            let body = body.await.map_err(|_| OAuthError::invalid_request("the body could not be read"))?;
            let params = if body.is_empty() { None } else { Some(Params::from_form_body(&req, &body)?) };
            let token = BearerToken::from_header_or_form(&req, params.as_ref())?;
            Ok(Self { token, params })
        })
    }
}

//! Reading JSON bodies and query strings for the management API.
//!
//! Both are parsed in the handler, after the caller's token was checked:
//! an extractor that parsed the body could answer an anonymous request's
//! bad JSON with a 400 before its missing token's 401. Errors are problem
//! details naming the field (RFC 9457 `errors`).

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::{FromRequest, HttpRequest};
use serde::de::DeserializeOwned;

use super::problem::ApiError;

/// Largest body of an ordinary request.
pub const BODY_LIMIT: usize = 1024 * 1024;
/// Largest body of an import (the file's 64 MiB plus JSON escaping).
pub const IMPORT_BODY_LIMIT: usize = 96 * 1024 * 1024;

/// The raw body of a request, at most `LIMIT` bytes, read but not parsed.
pub struct JsonBody<const LIMIT: usize = BODY_LIMIT> {
    bytes: Vec<u8>,
    json: bool,
    too_large: bool,
}

impl<const LIMIT: usize> JsonBody<LIMIT> {
    /// Parses the body as `T`; a wrong media type, bad JSON or a field of
    /// the wrong shape is a 400 (a body too large a 413).
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        if self.too_large {
            return Err(ApiError::Status {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                code: "body_too_large",
                detail: format!("the body is larger than {} bytes", LIMIT),
            });
        }
        if !self.json {
            return Err(ApiError::Status {
                status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
                code: "unsupported_media_type",
                detail: "send the body as application/json".into(),
            });
        }
        let bytes: &[u8] = if self.bytes.is_empty() { b"{}" } else { &self.bytes };
        let mut deserializer = serde_json::Deserializer::from_slice(bytes);
        serde_path_to_error(&mut deserializer)
    }
}

/// serde_json's error with where it happened (line and column, and the
/// field when serde knows it).
fn serde_path_to_error<T: DeserializeOwned>(
    de: &mut serde_json::Deserializer<serde_json::de::SliceRead<'_>>,
) -> Result<T, ApiError> {
    match T::deserialize(&mut *de).and_then(|value| de.end().map(|()| value)) {
        Ok(value) => Ok(value),
        Err(error) => {
            let message = error.to_string();
            // serde names an unknown or missing field in backticks.
            let field = message.split('`').nth(1).filter(|_| message.contains("field")).unwrap_or("body").to_owned();
            Err(ApiError::BadRequest {
                code: "invalid_body",
                detail: format!("the body could not be read: {message}"),
                errors: vec![super::problem::FieldError { field, message }],
            })
        }
    }
}

impl<const LIMIT: usize> FromRequest for JsonBody<LIMIT> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let json = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
            .is_none_or(|v| v == "application/json" || (v.starts_with("application/") && v.ends_with("+json")));
        let mut payload = payload.take();
        Box::pin(async move {
            let mut bytes = Vec::new();
            let mut too_large = false;
            loop {
                let next = std::future::poll_fn(|cx| futures_core::Stream::poll_next(Pin::new(&mut payload), cx)).await;
                match next {
                    None => break,
                    Some(Ok(chunk)) => {
                        if bytes.len() + chunk.len() > LIMIT {
                            too_large = true;
                            break;
                        }
                        bytes.extend_from_slice(&chunk);
                    }
                    Some(Err(error)) => {
                        return Err(ApiError::bad_request(
                            "unreadable_body",
                            format!("the body could not be read: {error}"),
                        ));
                    }
                }
            }
            Ok(Self { bytes, json, too_large })
        })
    }
}

/// The query string as `T`; an unknown value is a 400 naming the field.
pub fn query<T: DeserializeOwned>(req: &HttpRequest) -> Result<T, ApiError> {
    serde_urlencoded::from_str(req.query_string()).map_err(|error| {
        let message = error.to_string();
        let field = message.split('`').nth(1).filter(|_| message.contains("field")).unwrap_or("query").to_owned();
        ApiError::BadRequest {
            code: "invalid_query",
            detail: format!("the query string could not be read: {message}"),
            errors: vec![super::problem::FieldError { field, message }],
        }
    })
}

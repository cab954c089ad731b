//! Console forms as ordered (name, value) pairs: a sensitive action that
//! first asks for the password must carry its fields through the
//! re-authentication page unchanged, so handlers read them from here
//! rather than from a typed struct.
//!
//! [`AdminForm`] and [`SensitiveForm`] are the extractors every console
//! POST takes: the admin principal, the form, its CSRF token checked and,
//! for a sensitive action, a recent authentication (issue 8 §1, §8).

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::error::InternalError;
use actix_web::{FromRequest, HttpRequest, web};

use super::{Admin, reauth};
use crate::error::AppError;
use crate::http::csrf;
use crate::state::AppState;

pub type Fields = Vec<(String, String)>;

/// The first value of `name`, or "".
pub fn get<'a>(fields: &'a Fields, name: &str) -> &'a str {
    fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap_or("")
}

/// Every value of `name` (checkbox groups).
pub fn all<'a>(fields: &'a Fields, name: &str) -> Vec<&'a str> {
    fields.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect()
}

/// A CSRF-checked console form posted by an admin. With `SENSITIVE`, an
/// admin whose authentication is older than `WXFED_ADMIN_REAUTH_SECS` gets
/// the password prompt (carrying these fields) instead of the handler.
#[derive(Debug)]
pub struct ConsoleForm<const SENSITIVE: bool> {
    pub admin: Admin,
    pub fields: Fields,
}

/// An ordinary console action.
pub type AdminForm = ConsoleForm<false>;
/// A sensitive console action (link, unlink, merge, import, roles, status,
/// password, secrets, keys, removals): needs a recent authentication.
pub type SensitiveForm = ConsoleForm<true>;

impl<const SENSITIVE: bool> ConsoleForm<SENSITIVE> {
    /// The first value of `name`, or "".
    pub fn get(&self, name: &str) -> &str {
        get(&self.fields, name)
    }

    /// Every value of `name`.
    pub fn all(&self, name: &str) -> Vec<&str> {
        all(&self.fields, name)
    }
}

impl<const SENSITIVE: bool> FromRequest for ConsoleForm<SENSITIVE> {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let admin = Admin::from_request(&req, payload);
        let body = if is_multipart(&req) {
            Body::Multipart(actix_multipart::Multipart::new(req.headers(), payload.take()))
        } else {
            Body::Form(web::Form::<Fields>::from_request(&req, payload))
        };
        Box::pin(async move {
            // The principal first: a stranger learns nothing about the form
            // (and no body of theirs is read).
            let admin = admin.await?;
            let fields = match body {
                Body::Form(form) => form.await?.into_inner(),
                Body::Multipart(parts) => read_multipart(parts, MAX_MULTIPART_BYTES).await?,
            };
            let Some(state) = req.app_data::<web::Data<AppState>>() else {
                return Err(AppError::Internal("no application state".into()).into());
            };
            if !csrf::verify(&req, state, Some(get(&fields, csrf::FIELD))) {
                return Err(AppError::Forbidden(super::text::t("admin-error-csrf")).into());
            }
            // A form continued after re-authentication: its fields come
            // sealed (bound to this session and this action).
            let fields = match get(&fields, reauth::CARRIED) {
                "" => fields,
                sealed => match reauth::open_fields(state, &admin, req.path(), sealed) {
                    Some(carried) => carried,
                    None => return Err(AppError::BadRequest(super::text::t("admin-error-form-expired")).into()),
                },
            };
            if SENSITIVE && !admin.authenticated_recently(state) {
                let prompt = reauth::prompt(&req, state, &admin, req.path(), &fields, None);
                return Err(InternalError::from_response("re-authentication required", prompt).into());
            }
            Ok(Self { admin, fields })
        })
    }
}

/// The largest multipart body a console form takes (the import page's
/// upload; bigger files go to `wxfed import accounts`, which streams).
pub const MAX_MULTIPART_BYTES: usize = 8 * 1024 * 1024;

/// The form size the import page and the password prompt take (every
/// other form: 64 KiB): an uploaded file travels back as the preview's
/// hidden field, and sealed (base64, a third larger) through the
/// re-authentication prompt. Only an admin's body is ever read (the
/// principal is checked first).
pub fn large_forms() -> web::FormConfig {
    web::FormConfig::default().limit(MAX_MULTIPART_BYTES * 2).error_handler(|error, _req| {
        tracing::debug!(%error, "unreadable console form");
        AppError::BadRequest("error-form-unreadable".to_owned()).into()
    })
}

enum Body {
    Form(<web::Form<Fields> as FromRequest>::Future),
    Multipart(actix_multipart::Multipart),
}

fn is_multipart(req: &HttpRequest) -> bool {
    req.headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("multipart/form-data"))
}

/// A `multipart/form-data` body (RFC 7578) as the same (name, value) pairs
/// as a urlencoded form: a file part's value is the file's text. At most
/// `limit` bytes in all; a file must be UTF-8 (CSV and JSON Lines are).
async fn read_multipart(mut parts: actix_multipart::Multipart, limit: usize) -> Result<Fields, actix_web::Error> {
    use futures_util::StreamExt;
    let refuse = |id: &str| -> actix_web::Error { AppError::BadRequest(super::text::t(id)).into() };
    let mut fields = Fields::new();
    let mut total = 0usize;
    while let Some(part) = parts.next().await {
        let mut part = part.map_err(|_| refuse("admin-error-upload-unreadable"))?;
        let name = part.content_disposition().and_then(|d| d.get_name()).unwrap_or_default().to_owned();
        let mut value = Vec::new();
        while let Some(chunk) = part.next().await {
            let chunk = chunk.map_err(|_| refuse("admin-error-upload-unreadable"))?;
            total += chunk.len();
            if total > limit {
                return Err(refuse("admin-error-upload-too-large"));
            }
            value.extend_from_slice(&chunk);
        }
        let value = String::from_utf8(value).map_err(|_| refuse("admin-error-upload-not-text"))?;
        fields.push((name, value));
    }
    Ok(fields)
}

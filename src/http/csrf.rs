//! CSRF protection for every form: the signed double-submit pattern.
//!
//! The browser holds a random `wxfed_csrf` cookie; forms carry
//! HMAC(K, cookie). A cross-site page can neither read the cookie nor, if
//! it manages to plant one, compute the matching token without K.

use actix_web::HttpRequest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::cookies;
use crate::secrets::{Secrets, constant_time_eq, hmac_sha256, random_token};
use crate::state::AppState;

/// The name of the hidden form field.
pub const FIELD: &str = "csrf_token";

fn token_for(secrets: &Secrets, cookie_value: &str) -> String {
    URL_SAFE_NO_PAD.encode(hmac_sha256(secrets.csrf_key(), cookie_value.as_bytes()))
}

/// The token to embed in a form, and the cookie to set when the browser
/// has none yet.
pub fn issue(req: &HttpRequest, state: &AppState) -> (String, Option<actix_web::cookie::Cookie<'static>>) {
    match cookies::read(req, cookies::CSRF, &state.settings) {
        Some(value) => (token_for(&state.secrets, &value), None),
        None => {
            let value = random_token();
            let token = token_for(&state.secrets, &value);
            (token, Some(cookies::build(cookies::CSRF, value, &state.settings)))
        }
    }
}

/// A page builder for a form: the CSRF token to embed, and the builder
/// with the CSRF cookie already set when the browser had none.
pub fn form_page(
    req: &HttpRequest,
    state: &AppState,
    status: actix_web::http::StatusCode,
) -> (String, actix_web::HttpResponseBuilder) {
    let (token, cookie) = issue(req, state);
    let mut builder = super::render::builder(status);
    if let Some(cookie) = cookie {
        builder.cookie(cookie);
    }
    (token, builder)
}

/// What a person sees when a form fails the CSRF check.
/// The message id shown when a form fails the CSRF check.
pub const EXPIRED_FORM: &str = "error-form-expired";

/// `Ok` when the form's token matches the browser's CSRF cookie; the
/// 403 error to return otherwise.
pub fn require(req: &HttpRequest, state: &AppState, submitted: Option<&str>) -> Result<(), crate::error::AppError> {
    if verify(req, state, submitted) { Ok(()) } else { Err(crate::error::AppError::Forbidden(EXPIRED_FORM.into())) }
}

/// True when `submitted` matches the browser's CSRF cookie.
pub fn verify(req: &HttpRequest, state: &AppState, submitted: Option<&str>) -> bool {
    let (Some(cookie), Some(submitted)) = (cookies::read(req, cookies::CSRF, &state.settings), submitted) else {
        return false;
    };
    constant_time_eq(token_for(&state.secrets, &cookie).as_bytes(), submitted.as_bytes())
}

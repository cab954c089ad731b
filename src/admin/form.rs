//! Console forms as ordered (name, value) pairs: a sensitive action that
//! first asks for the password must carry its fields through the
//! re-authentication page unchanged, so handlers read them from here
//! rather than from a typed struct.

use actix_web::{HttpRequest, HttpResponse};

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

/// Whether the action may go ahead: the CSRF token must match, and for a
/// sensitive action the session's authentication must be recent. Returns
/// the response to send instead (the password prompt) when it is stale.
pub fn gate(
    req: &HttpRequest,
    state: &AppState,
    admin: &Admin,
    fields: &Fields,
    sensitive: bool,
) -> Result<Option<HttpResponse>, AppError> {
    if !csrf::verify(req, state, Some(get(fields, csrf::FIELD))) {
        return Err(AppError::Forbidden(super::text::t("admin-error-csrf")));
    }
    if sensitive && !admin.authenticated_recently(state) {
        return Ok(Some(reauth::prompt(req, state, admin, req.path(), fields, None)));
    }
    Ok(None)
}

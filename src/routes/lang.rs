//! `/lang/{tag}`: the language switch. Remembers the choice in a cookie
//! (a preference, not a credential: it is readable by nobody but the
//! browser and changes nothing on the server) and goes back to the page.

use actix_web::cookie::{Cookie, SameSite, time::Duration};
use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::safe_return_path;
use crate::error::AppError;
use crate::i18n::{self, Locale};
use crate::state::AppState;

#[derive(Deserialize)]
pub struct SwitchQuery {
    return_to: Option<String>,
}

pub async fn switch(
    tag: web::Path<String>,
    query: web::Query<SwitchQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let locale = Locale::parse(&tag).ok_or(AppError::NotFound)?;
    let cookie = Cookie::build(i18n::COOKIE, locale.tag())
        .path("/")
        .http_only(true)
        .secure(state.settings.secure_cookies())
        .same_site(SameSite::Lax)
        .max_age(Duration::days(365))
        .finish();
    let back = safe_return_path(query.return_to.as_deref());
    Ok(HttpResponse::SeeOther().cookie(cookie).insert_header(("Location", back)).finish())
}

//! Cookie names and attributes in one place.

use actix_web::cookie::{Cookie, SameSite, time::Duration};

use crate::config::Settings;

pub const SESSION: &str = "wxfed_session";
pub const CSRF: &str = "wxfed_csrf";

/// Over https cookies get the `__Host-` prefix, which browsers honour only
/// for Secure, host-only, Path=/ cookies: a sibling subdomain cannot plant
/// one.
pub fn name(base: &str, settings: &Settings) -> String {
    if settings.secure_cookies() { format!("__Host-{base}") } else { base.to_owned() }
}

/// An HttpOnly, SameSite=Lax, path-wide cookie (Secure over https).
pub fn build(base: &str, value: String, settings: &Settings) -> Cookie<'static> {
    Cookie::build(name(base, settings), value)
        .path("/")
        .http_only(true)
        .secure(settings.secure_cookies())
        .same_site(SameSite::Lax)
        .finish()
}

/// A cookie that tells the browser to drop `base`.
pub fn removal(base: &str, settings: &Settings) -> Cookie<'static> {
    let mut cookie = build(base, String::new(), settings);
    cookie.set_max_age(Duration::ZERO);
    cookie
}

pub fn read(req: &actix_web::HttpRequest, base: &str, settings: &Settings) -> Option<String> {
    req.cookie(&name(base, settings)).map(|c| c.value().to_owned()).filter(|v| !v.is_empty())
}

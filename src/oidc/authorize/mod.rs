//! The authorization endpoint (OIDC Core §3.1.2, RFC 6749 §4.1, RFC 7636,
//! RFC 9207, RFC 9700). Only the authorization code flow.
//!
//! Until the client and its redirect URI are known to be right, errors are
//! shown as a page; after that they go back to the client as an error
//! redirect. A request that needs a login goes to `/login` and comes back
//! here with the same parameters.

//!
//! - `request`: parsing and checking the request;
//! - `response`: redirects, `form_post` pages and error replies;
//! - `code`: issuing the code and its grant;
//! - `consent`: whether consent is needed, the page that asks, and
//!   recording the answer (the handler of the answer and `/consents` are in
//!   `oidc::consent`, which depends on this module, never the reverse).

mod code;
mod consent;
mod request;
mod response;

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;

pub use code::{issue_code, sid_of};
pub use consent::{consent_covers, record_decision};
pub use request::{AuthorizationRequest, Prompt, ReplyTo, ResponseMode, validate};
pub use response::{Rejection, reply, respond_rejection};

use super::error::{ErrorCode, OAuthError};
use super::params::Params;
use crate::http::extract::{CurrentSession, OptionalSession};
use crate::http::{RequestMeta, cookies, csrf, paths};
use crate::state::AppState;

/// Carries a re-authentication ticket from the trip to `/login` back
/// here (see [`reauth`]).
pub const REAUTH_PARAM: &str = "wxfed_reauth";

/// How long the trip to the login page may take (a WeChat login included).
const REAUTH_TTL_MICROS: i64 = 900 * 1_000_000;

/// `prompt=login` and `max_age` (OIDC Core §3.1.2.1) need a login that
/// happened *after* this request was made. What proves it is server-side
/// state: the session's own `auth_time`, set by a real login, compared
/// with the time wxfed first saw the request. That time comes back from
/// `/login` in a ticket wxfed signed (HMAC over the time, the request's
/// other parameters and the browser's CSRF cookie), so editing the URL —
/// adding a ticket, changing its time, taking one from another request or
/// another browser, or following `return_to` without logging in — never
/// stands in for the login.
mod reauth {
    use actix_web::HttpRequest;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::{REAUTH_PARAM, REAUTH_TTL_MICROS};
    use crate::http::cookies;
    use crate::oidc::params::Params;
    use crate::secrets::{constant_time_eq, hmac_sha256};
    use crate::state::AppState;

    fn mac(state: &AppState, browser: &str, params: &Params, requested_at: i64) -> String {
        // Domain-separated from the CSRF tokens made with the same key.
        let message = format!("authorize-reauth\0{requested_at}\0{browser}\0{}", params.encode());
        URL_SAFE_NO_PAD.encode(hmac_sha256(state.secrets.csrf_key(), message.as_bytes()))
    }

    /// The ticket for `params` (without any ticket), requested `now`
    /// (microseconds, the precision of a session's `auth_time`).
    pub fn issue(state: &AppState, browser: &str, params: &Params, now: i64) -> String {
        format!("{now}.{}", mac(state, browser, params, now))
    }

    /// When the login was asked for, if the request carries a valid,
    /// recent ticket of this browser for these very parameters.
    pub fn requested_at(req: &HttpRequest, state: &AppState, params: &Params, now: i64) -> Option<i64> {
        let (time, signature) = params.get(REAUTH_PARAM)?.split_once('.')?;
        let requested_at: i64 = time.parse().ok()?;
        let browser = cookies::read(req, cookies::CSRF, &state.settings)?;
        let expected = mac(state, &browser, &params.without(&[REAUTH_PARAM]), requested_at);
        let fresh = requested_at <= now && now - requested_at <= REAUTH_TTL_MICROS;
        (fresh && constant_time_eq(expected.as_bytes(), signature.as_bytes())).then_some(requested_at)
    }
}

/// Whether the current session can answer this request without a new
/// login (OIDC Core §3.1.2.3). `login_requested_at`: when this request
/// sent the browser to log in (a verified ticket, in microseconds), if it
/// did; only a login strictly after that counts.
fn needs_login(request: &AuthorizationRequest, current: &CurrentSession, login_requested_at: Option<i64>) -> bool {
    let CurrentSession { session, account } = current;
    let auth_time = session.auth_time.and_utc().timestamp();
    let logged_in_for_this = login_requested_at.is_some_and(|t| session.auth_time.and_utc().timestamp_micros() > t);
    if request.prompt.login && !logged_in_for_this {
        return true;
    }
    // max_age=0 means "log in now" (OIDC Core §3.1.2.1), like prompt=login.
    if let Some(max_age) = request.max_age
        && (max_age == 0 || Utc::now().timestamp() - auth_time > max_age)
        && !logged_in_for_this
    {
        return true;
    }
    request.id_token_hint.as_ref().is_some_and(|hint| hint.sub != account.id.as_str())
}

/// Sends the browser to the login page, to come back here afterwards with
/// the same parameters (`prompt` included) and a fresh ticket.
fn to_login(req: &HttpRequest, state: &AppState, request: &AuthorizationRequest) -> HttpResponse {
    // The ticket is bound to the browser's CSRF cookie, which the login
    // keeps; a browser without one gets it now.
    let (_, new_cookie) = csrf::issue(req, state);
    let browser = match &new_cookie {
        Some(cookie) => Some(cookie.value().to_owned()),
        None => cookies::read(req, cookies::CSRF, &state.settings),
    };
    let back = request.params.without(&[REAUTH_PARAM]);
    let back = match browser {
        Some(browser) => {
            let ticket = reauth::issue(state, &browser, &back, Utc::now().timestamp_micros());
            back.with(REAUTH_PARAM, ticket)
        }
        None => back,
    };
    let return_to = format!("{}?{}", paths::AUTHORIZE, back.encode());
    let mut login = Params::default().with("return_to", return_to);
    if let Some(hint) = &request.login_hint {
        login = login.with("login_hint", hint.clone());
    }
    let mut response = HttpResponse::SeeOther();
    if let Some(cookie) = new_cookie {
        response.cookie(cookie);
    }
    response.insert_header(("Location", format!("{}?{}", paths::LOGIN, login.encode()))).finish()
}

/// `GET /authorize`.
pub async fn authorize_get(
    req: HttpRequest,
    state: web::Data<AppState>,
    meta: RequestMeta,
    current: OptionalSession,
) -> HttpResponse {
    match Params::parse(req.query_string()) {
        Ok(params) => authorize(&req, &state, &meta, current.0, params).await,
        Err(error) => respond_rejection(Rejection::Page(error.description.unwrap_or_default())),
    }
}

/// `POST /authorize` (OIDC Core §3.1.2.1: the parameters form-encoded).
pub async fn authorize_post(
    req: HttpRequest,
    state: web::Data<AppState>,
    meta: RequestMeta,
    current: OptionalSession,
    body: web::Bytes,
) -> HttpResponse {
    match std::str::from_utf8(&body).map_err(|_| OAuthError::invalid_request("not UTF-8")).and_then(Params::parse) {
        Ok(params) => authorize(&req, &state, &meta, current.0, params).await,
        Err(error) => respond_rejection(Rejection::Page(error.description.unwrap_or_default())),
    }
}

async fn authorize(
    req: &HttpRequest,
    state: &AppState,
    meta: &RequestMeta,
    current: Option<CurrentSession>,
    params: Params,
) -> HttpResponse {
    let request = match validate(state, params).await {
        Ok(request) => request,
        Err(rejection) => return respond_rejection(rejection),
    };
    let login_requested_at = reauth::requested_at(req, state, &request.params, Utc::now().timestamp_micros());
    let current = match current {
        Some(current) if !needs_login(&request, &current, login_requested_at) => current,
        _ if request.prompt.none => {
            let error = OAuthError::new(ErrorCode::LoginRequired, "the user is not logged in");
            return respond_rejection(Rejection::redirect(request.reply, error));
        }
        _ => return to_login(req, state, &request),
    };
    let CurrentSession { session, account } = current;
    if !request.client.first_party {
        let covered = match consent_covers(state, &request, &account).await {
            Ok(covered) => covered,
            Err(error) => return respond_rejection(error.into()),
        };
        if !covered || request.prompt.consent {
            if request.prompt.none {
                let error = OAuthError::new(ErrorCode::ConsentRequired, "the user has not consented to this client");
                return respond_rejection(Rejection::redirect(request.reply, error));
            }
            return consent::page(req, state, &request, &account);
        }
    }
    issue_code(state, meta, &request, &session, &account).await
}

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
//! - `consent`: whether consent is needed, and recording the decision
//!   (the consent pages themselves are in `oidc::consent`).

mod code;
mod consent;
mod request;
mod response;

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;

pub use code::{issue_code, sid_of};
pub use consent::{consent_covers, record_decision};
pub use request::{AuthorizationRequest, LOGIN_AFTER_PARAM, Prompt, ReplyTo, ResponseMode, validate};
pub use response::{Rejection, reply, respond_rejection};

use super::error::{ErrorCode, OAuthError};
use super::params::Params;
use crate::http::extract::{CurrentSession, OptionalSession};
use crate::http::{RequestMeta, paths};
use crate::state::AppState;

/// Whether the current session can answer this request without a new
/// login (OIDC Core §3.1.2.3).
fn needs_login(request: &AuthorizationRequest, current: Option<&CurrentSession>) -> bool {
    let Some(CurrentSession { session, account }) = current else {
        return true;
    };
    let auth_time = session.auth_time.and_utc().timestamp();
    let logged_in_for_this = request.login_after.is_some_and(|t| auth_time >= t);
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

/// Sends the browser to the login page, to come back here afterwards.
fn to_login(request: &AuthorizationRequest) -> HttpResponse {
    // prompt=login (and a stale max_age) are honoured by this trip to the
    // login page; the marker tells the next round the login is fresh.
    let mut back = request.params.without(&["prompt", LOGIN_AFTER_PARAM]);
    let remaining_prompt: Vec<&str> =
        request.params.get("prompt").unwrap_or("").split(' ').filter(|p| !p.is_empty() && *p != "login").collect();
    if !remaining_prompt.is_empty() {
        back = back.with("prompt", remaining_prompt.join(" "));
    }
    let back = back.with(LOGIN_AFTER_PARAM, Utc::now().timestamp().to_string());
    let return_to = format!("{}?{}", paths::AUTHORIZE, back.encode());
    let mut login = Params::default().with("return_to", return_to);
    if let Some(hint) = &request.login_hint {
        login = login.with("login_hint", hint.clone());
    }
    HttpResponse::SeeOther().insert_header(("Location", format!("{}?{}", paths::LOGIN, login.encode()))).finish()
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
    let current = match current {
        Some(current) if !needs_login(&request, Some(&current)) => current,
        _ if request.prompt.none => {
            let error = OAuthError::new(ErrorCode::LoginRequired, "the user is not logged in");
            return respond_rejection(Rejection::redirect(request.reply, error));
        }
        _ => return to_login(&request),
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
            return super::consent::page(req, state, &request, &account);
        }
    }
    issue_code(state, meta, &request, &session, &account).await
}

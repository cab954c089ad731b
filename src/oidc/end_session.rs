//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0), GET and
//! POST. A valid `id_token_hint` for the person logged in here logs out at
//! once; otherwise the person is asked, so that a link on another site
//! cannot log anyone out. `post_logout_redirect_uri` must be registered for
//! the client, byte for byte; anything else shows the logged-out page.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::authorize::sid_of;
use super::clients;
use super::params::Params;
use super::tokens::{IdTokenHint, verify_id_token_hint};
use crate::accounts::sessions::{self, Session};
use crate::audit::{self, Action, AuditEvent};
use crate::db::{self, DbError};
use crate::error::AppError;
use crate::http::extract::CsrfForm;
use crate::http::{RequestMeta, cookies, csrf, render, session};
use crate::i18n::filters;
use crate::state::AppState;

#[derive(Template)]
#[template(path = "end_session.html")]
struct ConfirmPage {
    csrf_token: String,
    client_name: Option<String>,
    request: String,
}

#[derive(Template)]
#[template(path = "logged_out.html")]
struct LoggedOutPage;

/// Where to send the browser afterwards, once checked.
struct Return {
    uri: String,
    state: Option<String>,
}

struct Checked {
    hint: Option<IdTokenHint>,
    client_id: Option<String>,
    client_name: Option<String>,
    back: Option<Return>,
}

async fn check(state: &AppState, params: &Params) -> Result<Checked, AppError> {
    let hint = match params.get("id_token_hint") {
        None => None,
        Some(token) => Some(
            verify_id_token_hint(&state.keys.current(), &state.settings.issuer, token, None)
                .ok_or_else(|| AppError::BadRequest("end-session-hint-foreign".into()))?,
        ),
    };
    let hinted_client = hint.as_ref().and_then(IdTokenHint::client_id);
    let client_id = match (params.get("client_id"), hinted_client) {
        (Some(given), Some(hinted)) if given != hinted => {
            return Err(AppError::BadRequest("client_id does not match the id_token_hint.".into()));
        }
        (Some(given), _) => Some(given.to_owned()),
        (None, hinted) => hinted,
    };
    let client = match &client_id {
        Some(id) => {
            let id = id.clone();
            db::run(&state.db, move |conn| clients::find(conn, &id).map_err(DbError::from)).await?
        }
        None => None,
    };
    let back = match params.get("post_logout_redirect_uri") {
        None => None,
        Some(uri) => match &client {
            Some(client) if client.has_post_logout_redirect_uri(uri) => {
                Some(Return { uri: uri.to_owned(), state: params.get("state").map(str::to_owned) })
            }
            _ => {
                return Err(AppError::BadRequest("end-session-redirect-unregistered".into()));
            }
        },
    };
    Ok(Checked { hint, client_id, client_name: client.map(|c| c.name), back })
}

pub async fn end_session_get(req: HttpRequest, state: web::Data<AppState>, meta: RequestMeta) -> HttpResponse {
    respond(Params::parse(req.query_string()), &req, &state, &meta).await
}

pub async fn end_session_post(
    req: HttpRequest,
    state: web::Data<AppState>,
    meta: RequestMeta,
    body: web::Bytes,
) -> HttpResponse {
    let params = std::str::from_utf8(&body)
        .map_err(|_| super::error::OAuthError::invalid_request("not UTF-8"))
        .and_then(Params::parse);
    respond(params, &req, &state, &meta).await
}

async fn respond(
    params: Result<Params, super::error::OAuthError>,
    req: &HttpRequest,
    state: &AppState,
    meta: &RequestMeta,
) -> HttpResponse {
    let result = match params {
        Ok(params) => end_session(req, state, meta, params, false).await,
        Err(error) => Err(AppError::BadRequest(error.description.unwrap_or_default())),
    };
    result.unwrap_or_else(|error| actix_web::ResponseError::error_response(&error))
}

async fn end_session(
    req: &HttpRequest,
    state: &AppState,
    meta: &RequestMeta,
    params: Params,
    confirmed: bool,
) -> Result<HttpResponse, AppError> {
    let checked = check(state, &params).await?;
    let current = session::current(req, state).await?;
    // Log out without asking only when the client proved, with an ID token
    // for this very person, that it is their session it ends.
    let hint_matches = match (&checked.hint, &current) {
        (Some(hint), Some((session, account))) => {
            hint.sub == account.id.as_str() && hint.sid.as_deref().is_none_or(|sid| sid == sid_of(session))
        }
        _ => false,
    };
    if let Some((session, _)) = current {
        if !hint_matches && !confirmed {
            let (csrf_token, builder) = csrf::form_page(req, state, StatusCode::OK);
            let page = ConfirmPage { csrf_token, client_name: checked.client_name, request: params.encode() };
            return Ok(render::page_with(builder, &page));
        }
        end(state, meta, &session, checked.client_id.as_deref()).await?;
    }
    let removal = cookies::removal(cookies::SESSION, &state.settings);
    match checked.back {
        Some(back) => {
            let mut location = back.uri;
            if let Some(value) = back.state {
                let separator = if location.contains('?') { '&' } else { '?' };
                location.push(separator);
                location.push_str(&serde_urlencoded::to_string([("state", value)]).unwrap_or_default());
            }
            Ok(HttpResponse::SeeOther().cookie(removal).insert_header(("Location", location)).finish())
        }
        None => {
            let mut builder = render::builder(StatusCode::OK);
            builder.cookie(removal);
            Ok(render::page_with(builder, &LoggedOutPage))
        }
    }
}

async fn end(state: &AppState, meta: &RequestMeta, session: &Session, client_id: Option<&str>) -> Result<(), AppError> {
    let (secrets, session, meta, client_id) =
        (state.secrets.clone(), session.clone(), meta.clone(), client_id.map(str::to_owned));
    db::run(&state.db, move |conn| {
        db::write_transaction(conn, |conn| -> Result<(), DbError> {
            if sessions::end(conn, &secrets, &session, &meta, "end_session")? {
                let mut event = AuditEvent::success(Action::EndSession)
                    .with_actor(format!("account:{}", session.account_id))
                    .with_account(session.account_id.as_str())
                    .with_request(&meta);
                if let Some(client) = client_id {
                    event = event.with_client(client);
                }
                audit::append(conn, &secrets, &event)?;
            }
            Ok(())
        })
    })
    .await?;
    Ok(())
}

#[derive(Deserialize)]
pub struct ConfirmForm {
    request: String,
}

/// The person confirmed on the "log out?" page.
pub async fn confirm(
    req: HttpRequest,
    state: web::Data<AppState>,
    meta: RequestMeta,
    form: CsrfForm<ConfirmForm>,
) -> Result<HttpResponse, AppError> {
    let params = Params::parse(&form.request).map_err(|e| AppError::BadRequest(e.description.unwrap_or_default()))?;
    end_session(&req, &state, &meta, params, true).await
}

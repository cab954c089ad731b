//! Consent: asking a person before a third-party client gets their data,
//! remembering the answer per account and client, and letting them take
//! it back at `/consents`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;

use super::authorize::{self, Rejection, respond_rejection};
use super::clients;
use super::error::{ErrorCode, OAuthError};
use super::params::Params;
use crate::accounts::Account;
use crate::audit::{self, Action, AuditEvent};
use crate::db::{self, DbError, consents::ConsentRow};
use crate::error::AppError;
use crate::http::{RequestMeta, csrf, render, session};
use crate::i18n::filters;
use crate::state::AppState;

/// What a scope means, in words a person understands.
/// The message id that tells a person what a scope lets the client do.
fn describe_scope(scope: &str) -> Option<&'static str> {
    match scope {
        "openid" => Some("consent-scope-openid"),
        "profile" => Some("consent-scope-profile"),
        "email" => Some("consent-scope-email"),
        "phone" => Some("consent-scope-phone"),
        "offline_access" => Some("consent-scope-offline_access"),
        "wechat" => Some("consent-scope-wechat"),
        _ => None,
    }
}

#[derive(Template)]
#[template(path = "consent.html")]
struct ConsentPage {
    csrf_token: String,
    client_name: String,
    username: String,
    scopes: Vec<&'static str>,
    request: String,
}

pub fn page(
    req: &HttpRequest,
    state: &AppState,
    request: &authorize::AuthorizationRequest,
    account: &Account,
) -> HttpResponse {
    let (csrf_token, builder) = csrf::form_page(req, state, StatusCode::OK);
    let page = ConsentPage {
        csrf_token,
        client_name: request.client.name.clone(),
        username: account.username.clone(),
        scopes: request.scopes.iter().filter_map(|s| describe_scope(s)).collect(),
        request: request.params.without(&["prompt"]).encode(),
    };
    render::page_with(builder, &page)
}

#[derive(Deserialize)]
pub struct DecisionForm {
    csrf_token: Option<String>,
    request: String,
    decision: String,
}

/// The person's answer on the consent page.
#[post("/authorize/consent")]
pub async fn decide(
    req: HttpRequest,
    state: web::Data<AppState>,
    meta: RequestMeta,
    form: web::Form<DecisionForm>,
) -> HttpResponse {
    if let Err(error) = csrf::require(&req, &state, form.csrf_token.as_deref()) {
        return actix_web::ResponseError::error_response(&error);
    }
    let params = match Params::parse(&form.request) {
        Ok(params) => params,
        Err(error) => return respond_rejection(Rejection::Page(error.description.unwrap_or_default())),
    };
    // The request is checked again: the hidden field came from the browser.
    let request = match authorize::validate(&state, params).await {
        Ok(request) => request,
        Err(rejection) => return respond_rejection(rejection),
    };
    let current = match session::current(&req, &state).await {
        Ok(current) => current,
        Err(error) => return respond_rejection(Rejection::Internal(error.to_string())),
    };
    let Some((session, account)) = current else {
        let error = OAuthError::new(ErrorCode::LoginRequired, "the session ended before consent was given");
        return respond_rejection(Rejection::redirect(request.reply, error));
    };
    let allowed = form.decision == "allow";
    let (secrets, client_id, account_id) =
        (state.secrets.clone(), request.client.client_id.clone(), account.id.as_str().to_owned());
    let scope = request.scopes.join(" ");
    let event_meta = meta.clone();
    let recorded = db::run(&state.db, move |conn| {
        db::write_transaction(conn, |conn| {
            let event = if allowed {
                // Widen, never narrow, what was agreed before.
                let mut scopes: Vec<String> = db::consents::find(conn, &account_id, &client_id)?
                    .map(|c| c.scope.split(' ').map(str::to_owned).collect())
                    .unwrap_or_default();
                for s in scope.split(' ').filter(|s| !s.is_empty()) {
                    if !scopes.iter().any(|x| x == s) {
                        scopes.push(s.to_owned());
                    }
                }
                let row = ConsentRow {
                    account_id: account_id.clone(),
                    client_id: client_id.clone(),
                    scope: scopes.join(" "),
                    granted_at: db::now(),
                };
                db::consents::save(conn, &row)?;
                AuditEvent::success(Action::ConsentGiven).with_detail("scope", scope.clone())
            } else {
                AuditEvent::failure(Action::ConsentGiven, "denied").with_detail("scope", scope.clone())
            };
            let event = event
                .with_actor(format!("account:{account_id}"))
                .with_account(account_id.clone())
                .with_client(client_id.clone())
                .with_request(&event_meta);
            audit::append(conn, &secrets, &event)?;
            Ok::<_, DbError>(())
        })
    })
    .await;
    if let Err(error) = recorded {
        return respond_rejection(Rejection::Internal(error.to_string()));
    }
    if !allowed {
        let error = OAuthError::new(ErrorCode::AccessDenied, "the user declined");
        return respond_rejection(Rejection::redirect(request.reply, error));
    }
    authorize::issue_code(&state, &meta, &request, &session, &account).await
}

#[derive(Template)]
#[template(path = "consents.html")]
struct ConsentsPage {
    csrf_token: String,
    entries: Vec<(String, String, String)>,
}

/// The clients a person has consented to, with a way to withdraw.
#[get("/consents")]
pub async fn list(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let Some((_, account)) = session::current(&req, &state).await? else {
        return Ok(HttpResponse::SeeOther().insert_header(("Location", "/login?return_to=/consents")).finish());
    };
    let account_id = account.id.as_str().to_owned();
    let entries = db::run(&state.db, move |conn| -> Result<_, DbError> {
        let mut entries = Vec::new();
        for consent in db::consents::list_for_account(conn, &account_id)? {
            let name = clients::find(conn, &consent.client_id)?.map(|c| c.name).unwrap_or_default();
            entries.push((consent.client_id, name, consent.scope));
        }
        Ok(entries)
    })
    .await?;
    let (csrf_token, builder) = csrf::form_page(&req, &state, StatusCode::OK);
    Ok(render::page_with(builder, &ConsentsPage { csrf_token, entries }))
}

#[derive(Deserialize)]
pub struct WithdrawForm {
    csrf_token: Option<String>,
    client_id: String,
}

/// Withdraws consent: the client must ask again, and every grant it holds
/// for this person (with its tokens) is revoked.
#[post("/consents/withdraw")]
pub async fn withdraw(
    req: HttpRequest,
    state: web::Data<AppState>,
    meta: RequestMeta,
    form: web::Form<WithdrawForm>,
) -> Result<HttpResponse, AppError> {
    csrf::require(&req, &state, form.csrf_token.as_deref())?;
    let Some((_, account)) = session::current(&req, &state).await? else {
        return Ok(HttpResponse::SeeOther().insert_header(("Location", "/login?return_to=/consents")).finish());
    };
    let (secrets, account_id, client_id) =
        (state.secrets.clone(), account.id.as_str().to_owned(), form.client_id.clone());
    db::run(&state.db, move |conn| {
        db::write_transaction(conn, |conn| {
            if db::consents::delete(conn, &account_id, &client_id)? {
                let revoked = db::grants::revoke_grants_of(conn, &account_id, &client_id, db::now())?;
                let event = AuditEvent::success(Action::ConsentWithdrawn)
                    .with_actor(format!("account:{account_id}"))
                    .with_account(account_id.clone())
                    .with_client(client_id.clone())
                    .with_request(&meta)
                    .with_detail("grants_revoked", revoked);
                audit::append(conn, &secrets, &event)?;
            }
            Ok::<_, DbError>(())
        })
    })
    .await?;
    Ok(HttpResponse::SeeOther().insert_header(("Location", "/consents")).finish())
}

//! Consent: asking a person before a third-party client gets their data,
//! remembering the answer per account and client, and letting them take
//! it back at `/consents`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::authorize::{self, Rejection, respond_rejection};
use super::clients;
use super::error::{ErrorCode, OAuthError};
use super::params::Params;
use crate::accounts::Account;
use crate::audit::{self, Action, AuditEvent};
use crate::db::{self, DbError};
use crate::error::AppError;
use crate::http::extract::{CsrfForm, CurrentSession, OptionalSession, login_url};
use crate::http::{RequestMeta, csrf, paths, render};
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
    request: String,
    decision: String,
}

/// The person's answer on the consent page.
pub async fn decide(
    state: web::Data<AppState>,
    meta: RequestMeta,
    form: CsrfForm<DecisionForm>,
    current: OptionalSession,
) -> HttpResponse {
    let params = match Params::parse(&form.request) {
        Ok(params) => params,
        Err(error) => return respond_rejection(Rejection::Page(error.description.unwrap_or_default())),
    };
    // The request is checked again: the hidden field came from the browser.
    let request = match authorize::validate(&state, params).await {
        Ok(request) => request,
        Err(rejection) => return respond_rejection(rejection),
    };
    let Some(CurrentSession { session, account }) = current.0 else {
        let error = OAuthError::new(ErrorCode::LoginRequired, "the session ended before consent was given");
        return respond_rejection(Rejection::redirect(request.reply, error));
    };
    let allowed = form.decision == "allow";
    if let Err(error) = authorize::record_decision(&state, &meta, &request, &account, allowed).await {
        return respond_rejection(error.into());
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
pub async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    CurrentSession { account, .. }: CurrentSession,
) -> Result<HttpResponse, AppError> {
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
    client_id: String,
}

/// Withdraws consent: the client must ask again, and every grant it holds
/// for this person (with its tokens) is revoked.
pub async fn withdraw(
    state: web::Data<AppState>,
    meta: RequestMeta,
    form: CsrfForm<WithdrawForm>,
    current: OptionalSession,
) -> Result<HttpResponse, AppError> {
    let Some(CurrentSession { account, .. }) = current.0 else {
        return Ok(HttpResponse::SeeOther().insert_header(("Location", login_url(paths::CONSENTS))).finish());
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
    Ok(HttpResponse::SeeOther().insert_header(("Location", paths::CONSENTS)).finish())
}

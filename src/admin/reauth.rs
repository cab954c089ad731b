//! Re-authentication before sensitive console actions (issue 8 §1).
//!
//! A stale admin's sensitive POST gets a password prompt that carries the
//! original fields; `/admin/reauth` checks the password with the login's
//! own throttling and constant-cost verification, records the new
//! authentication time in the SESSION ROW (the only proof that counts),
//! and hands the browser a page that re-posts the original fields to the
//! original action with a fresh CSRF token (auto-submitted by
//! static/form_post.js, a Continue button without JavaScript).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use super::Admin;
use super::form::{self, AdminForm, ConsoleForm, Fields};
use super::principal::reauth_window_secs;
use super::text::t;
use super::views::{ContinuePage, ReauthPage};
use crate::accounts::login::{LoginError, verify_password};
use crate::audit::{self, Action, AuditEvent};
use crate::config::SecretString;
use crate::db::{self, DbError};
use crate::error::AppError;
use crate::http::{RequestMeta, csrf, render};
use crate::state::AppState;

/// Prefix of the original fields inside the prompt's form, so they cannot
/// collide with the prompt's own `password`, `action` and `csrf_token`.
const CARRIED: &str = "f:";

/// Only console actions can be continued: a crafted prompt must not turn
/// the continue page into a cross-site form poster.
fn is_console_action(action: &str) -> bool {
    action.starts_with("/admin/")
        && action != "/admin/reauth"
        && action.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_'))
        && !action.contains("//")
}

/// The password prompt for a sensitive action at `action` with `fields`.
pub fn prompt(
    req: &HttpRequest,
    state: &AppState,
    admin: &Admin,
    action: &str,
    fields: &Fields,
    error: Option<(StatusCode, String)>,
) -> HttpResponse {
    let status = error.as_ref().map(|(s, _)| *s).unwrap_or(StatusCode::OK);
    let (csrf_token, builder) = csrf::form_page(req, state, status);
    let fields = fields.iter().filter(|(k, _)| k != csrf::FIELD).cloned().collect();
    let page = ReauthPage {
        nav: true,
        me: admin.account.username.clone(),
        csrf_token,
        action: action.to_owned(),
        fields,
        minutes: reauth_window_secs(state).div_ceil(60),
        error: error.map(|(_, m)| m),
    };
    render::page_with(builder, &page)
}

/// `POST /admin/reauth`: checks the password, refreshes the session's
/// authentication time, and continues the original action.
pub async fn submit(
    req: HttpRequest,
    state: web::Data<AppState>,
    meta: RequestMeta,
    form: AdminForm,
) -> Result<HttpResponse, AppError> {
    let ConsoleForm { admin, fields } = form;
    let action = form::get(&fields, "action").to_owned();
    if !is_console_action(&action) {
        return Err(AppError::BadRequest(t("admin-error-bad-action")));
    }
    let carried: Fields = fields
        .iter()
        .filter_map(|(k, v)| k.strip_prefix(CARRIED).map(|name| (name.to_owned(), v.clone())))
        .filter(|(k, _)| k != csrf::FIELD)
        .collect();
    let password = form::get(&fields, "password");
    if password.is_empty() || password.len() > 1024 {
        let error = (StatusCode::UNAUTHORIZED, t("admin-reauth-wrong"));
        return Ok(prompt(&req, &state, &admin, &action, &carried, Some(error)));
    }
    // The same throttling, dummy-hash timing and audit as the login form.
    let checked = verify_password(&state, &admin.account.username, SecretString::new(password.to_owned()), &meta).await;
    match checked {
        Ok(account) if account.id == admin.account.id => {}
        Ok(_) | Err(LoginError::InvalidCredentials) | Err(LoginError::Disabled) => {
            let error = (StatusCode::UNAUTHORIZED, t("admin-reauth-wrong"));
            return Ok(prompt(&req, &state, &admin, &action, &carried, Some(error)));
        }
        Err(LoginError::Throttled { .. }) => {
            let error = (StatusCode::TOO_MANY_REQUESTS, t("admin-reauth-throttled"));
            return Ok(prompt(&req, &state, &admin, &action, &carried, Some(error)));
        }
        Err(LoginError::Db(e)) => return Err(e.into()),
        Err(LoginError::Hash(e)) => return Err(e.into()),
    }
    let (secrets, session) = (state.secrets.clone(), admin.session.clone());
    let mut amr = session.amr.clone();
    if !amr.iter().any(|m| m == "pwd") {
        amr.push("pwd".into());
    }
    let event = AuditEvent::success(Action::AdminReauthenticated)
        .with_actor(format!("account:{}", admin.account.id))
        .with_account(admin.account.id.as_str())
        .with_request(&meta)
        .with_detail("session", &session.id_hash[..16.min(session.id_hash.len())])
        .with_detail("continues", action.clone());
    db::run(&state.db, move |conn| -> Result<(), DbError> {
        db::write_transaction(conn, |conn| {
            db::sessions::set_auth_time(conn, &session.id_hash, db::now(), &amr.join(" "))?;
            audit::append(conn, &secrets, &event)?;
            Ok(())
        })
    })
    .await?;
    let (csrf_token, builder) = csrf::form_page(&req, &state, StatusCode::OK);
    let mut fields = carried;
    fields.push((csrf::FIELD.to_owned(), csrf_token));
    let page = ContinuePage { nav: true, me: admin.account.username.clone(), action, fields };
    Ok(render::page_with(builder, &page))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_console_actions_are_continued() {
        assert!(is_console_action("/admin/accounts/abc-1/status"));
        assert!(!is_console_action("/admin/reauth"));
        assert!(!is_console_action("https://evil.example/admin/x"));
        assert!(!is_console_action("//evil.example/admin/"));
        assert!(!is_console_action("/admin//evil"));
        assert!(!is_console_action("/login"));
        assert!(!is_console_action("/admin/x?y=\"z"));
    }
}

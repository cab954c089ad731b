//! Re-authentication before sensitive console actions (issue 8 §1).
//!
//! A stale admin's sensitive POST gets a password prompt that carries the
//! original fields; `/admin/reauth` checks the password with the login's
//! own throttling and constant-cost verification, records the new
//! authentication time in the SESSION ROW (the only proof that counts),
//! and hands the browser a page that re-posts the original fields to the
//! original action with a fresh CSRF token (auto-submitted by
//! static/form_post.js, a Continue button without JavaScript).
//!
//! The fields travel **sealed** (AES-GCM under the master key, bound to
//! the session and the action, valid for [`CARRY_SECS`]): a WeChat
//! AppSecret or a password typed into the original form never appears in
//! the prompt's or the continue page's HTML, and a carried form cannot be
//! replayed from another session or against another action.

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

/// The hidden field of the continue page that carries the original form,
/// sealed; the console's form extractor opens it.
pub const CARRIED: &str = "carried";

/// The same, on the password prompt (a different name: the prompt's own
/// POST to `/admin/reauth` must not be taken for the continued form).
const ORIGINAL: &str = "original";

/// How long a carried form stays valid.
pub const CARRY_SECS: i64 = 15 * 60;

fn carry_context(admin: &Admin, action: &str) -> String {
    format!("console-form:{}:{action}", admin.session.id_hash)
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Carried {
    /// Unix seconds when sealed.
    at: i64,
    fields: Fields,
}

/// `fields` (but their CSRF token) sealed for `admin`'s session and `action`.
pub fn seal_fields(state: &AppState, admin: &Admin, action: &str, fields: &Fields) -> String {
    let fields = fields.iter().filter(|(k, _)| k != csrf::FIELD && k != CARRIED && k != ORIGINAL).cloned().collect();
    let carried = Carried { at: db::now().and_utc().timestamp(), fields };
    state.secrets.seal(&carry_context(admin, action), &serde_json::to_vec(&carried).unwrap_or_default())
}

/// The fields sealed by [`seal_fields`] for this session and action, if
/// the seal is intact and recent.
pub fn open_fields(state: &AppState, admin: &Admin, action: &str, sealed: &str) -> Option<Fields> {
    let bytes = state.secrets.open(&carry_context(admin, action), sealed).ok()?;
    let carried: Carried = serde_json::from_slice(&bytes).ok()?;
    let age = db::now().and_utc().timestamp() - carried.at;
    (0..=CARRY_SECS).contains(&age).then_some(carried.fields)
}

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
    let page = ReauthPage {
        nav: true,
        me: admin.account.username.clone(),
        csrf_token,
        action: action.to_owned(),
        carried: seal_fields(state, admin, action, fields),
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
    let Some(carried) = open_fields(&state, &admin, &action, form::get(&fields, ORIGINAL)) else {
        return Err(AppError::BadRequest(t("admin-error-form-expired")));
    };
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
    let fields = vec![
        (CARRIED.to_owned(), seal_fields(&state, &admin, &action, &carried)),
        (csrf::FIELD.to_owned(), csrf_token),
    ];
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

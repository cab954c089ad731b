//! Who may use the console: the `Admin` and `Auditor` principals, and the
//! recent-authentication rule for sensitive actions (issue 8 §1).
//!
//! A principal is a live session of an ACTIVE account holding the role.
//! An admin is not automatically an auditor: reading the audit trail and
//! changing accounts are separate powers (separation of duties).

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::error::InternalError;
use actix_web::http::{Method, StatusCode};
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};

use super::views;
use crate::accounts::sessions::Session;
use crate::accounts::{Account, Role};
use crate::audit::{self, Action, AuditEvent};
use crate::db::{self, DbError};
use crate::http::{RequestMeta, session};
use crate::state::AppState;

/// A signed-in, active account with role `admin`.
#[derive(Debug, Clone)]
pub struct Admin {
    pub account: Account,
    pub session: Session,
}

/// A signed-in, active account with role `auditor` (read-only).
#[derive(Debug, Clone)]
pub struct Auditor {
    pub account: Account,
    pub session: Session,
}

/// Who may read a detail page (account, identity, client): an admin, who
/// also gets its forms, or an auditor, who reads it without them, and
/// whose every read is recorded (category `audit_access`, issue 9 §1).
#[derive(Debug, Clone)]
pub struct Reader {
    pub account: Account,
    pub session: Session,
}

impl Reader {
    /// True when the reader may act on the page (sees its forms).
    pub fn is_admin(&self) -> bool {
        self.account.has_role(Role::Admin)
    }
}

impl Auditor {
    /// How the audit trail names this auditor.
    pub fn actor(&self) -> String {
        format!("account:{}", self.account.id)
    }
}

impl Admin {
    /// How the audit trail names this admin.
    pub fn actor(&self) -> crate::accounts::manage::Actor {
        crate::accounts::manage::Actor(format!("account:{}", self.account.id))
    }

    /// True when the session's last password (or WeChat) login is at most
    /// `admin_reauth_secs` old. Only server-side session state counts: a
    /// form field can never prove a recent authentication.
    pub fn authenticated_recently(&self, state: &AppState) -> bool {
        is_recent(&self.session, reauth_window_secs(state), db::now())
    }
}

/// The re-authentication window (setting `WXFED_ADMIN_REAUTH_SECS`).
pub fn reauth_window_secs(state: &AppState) -> u64 {
    state.settings.admin_reauth_secs
}

fn is_recent(session: &Session, window_secs: u64, now: chrono::NaiveDateTime) -> bool {
    let window = chrono::Duration::seconds(i64::try_from(window_secs).unwrap_or(i64::MAX / 1000));
    now - session.auth_time <= window
}

type Refusal = actix_web::Error;

fn refusal(response: HttpResponse, why: &'static str) -> Refusal {
    InternalError::from_response(why, response).into()
}

/// The login page, coming back here afterwards (only for GET: a POST
/// cannot be replayed through a redirect).
fn login_redirect(req: &HttpRequest) -> HttpResponse {
    let mut return_to = req.path().to_owned();
    if !req.query_string().is_empty() {
        return_to = format!("{return_to}?{}", req.query_string());
    }
    let query = serde_urlencoded::to_string([("return_to", return_to)]).unwrap_or_default();
    HttpResponse::SeeOther()
        .insert_header(("Location", format!("/login?{query}")))
        .insert_header(("Cache-Control", "no-store"))
        .finish()
}

async fn resolve(req: HttpRequest, roles: &[Role]) -> Result<(Session, Account), Refusal> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Err(refusal(HttpResponse::InternalServerError().finish(), "no application state"));
    };
    let current = session::current(&req, &state).await.map_err(internal)?;
    let Some((session, account)) = current else {
        if req.method() == Method::GET || req.method() == Method::HEAD {
            return Err(refusal(login_redirect(&req), "login required"));
        }
        return Err(refusal(views::forbidden(&req, StatusCode::FORBIDDEN), "no session"));
    };
    if roles.iter().any(|role| account.has_role(*role)) {
        return Ok((session, account));
    }
    let role = roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join("|");
    // Refusals of the console are security events: who tried what, where.
    // The path only (its query may hold a searched phone number).
    let event = AuditEvent::failure(Action::AdminAccessDenied, "missing_role")
        .with_actor(format!("account:{}", account.id))
        .with_account(account.id.as_str())
        .with_request(&RequestMeta::from_request(&req))
        .with_detail("role", role)
        .with_detail("method", req.method().as_str())
        .with_detail("path", req.path());
    let secrets = state.secrets.clone();
    db::run(&state.db, move |conn| -> Result<i64, DbError> { Ok(audit::record(conn, &secrets, &event)?) })
        .await
        .map_err(internal)?;
    let body = match roles {
        [Role::Admin] => "admin-forbidden-body",
        [Role::Auditor] => "audit-forbidden-body",
        _ => "audit-forbidden-reader-body",
    };
    Err(refusal(views::forbidden_saying(&req, StatusCode::FORBIDDEN, body), "missing role"))
}

fn internal(error: DbError) -> Refusal {
    crate::error::AppError::from(error).into()
}

impl FromRequest for Admin {
    type Error = Refusal;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { resolve(req, &[Role::Admin]).await.map(|(session, account)| Admin { account, session }) })
    }
}

impl FromRequest for Auditor {
    type Error = Refusal;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(
            async move { resolve(req, &[Role::Auditor]).await.map(|(session, account)| Auditor { account, session }) },
        )
    }
}

impl FromRequest for Reader {
    type Error = Refusal;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            resolve(req, &[Role::Admin, Role::Auditor]).await.map(|(session, account)| Reader { account, session })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_means_within_the_window() {
        let now = db::now();
        let session = |age_secs: i64| Session {
            id_hash: "h".into(),
            account_id: crate::accounts::AccountId::from_db("a".into()),
            auth_time: now - chrono::Duration::seconds(age_secs),
            amr: vec!["pwd".into()],
            expires_at: now,
        };
        assert!(is_recent(&session(10), 300, now));
        assert!(is_recent(&session(300), 300, now));
        assert!(!is_recent(&session(301), 300, now));
    }
}

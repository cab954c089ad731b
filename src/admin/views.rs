//! The console's pages: askama templates under `templates/admin/` and the
//! small view models they render. All text comes from `admin.ftl`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;

use super::text::filters;
use crate::db::audit::AuditRow;
use crate::http::render;

/// `o6jj…fqH1`: enough to tell two identifiers apart, not enough to use
/// one (console.md: personal identifiers are masked until revealed).
pub fn mask(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    if chars.len() <= 8 {
        return "…".into();
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}…{tail}")
}

pub fn when(t: chrono::NaiveDateTime) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// One audit event as a table row.
pub struct EventView {
    pub seq: i64,
    pub when: String,
    pub action: String,
    pub outcome: String,
    pub actor: String,
    pub account_id: String,
    pub reason: String,
}

impl From<AuditRow> for EventView {
    fn from(row: AuditRow) -> Self {
        // The event's own reason (a failure code) or the admin's reason.
        let detail_reason = serde_json::from_str::<serde_json::Value>(&row.detail)
            .ok()
            .and_then(|d| d.get("reason").and_then(|r| r.as_str()).map(str::to_owned));
        Self {
            seq: row.seq,
            when: when(row.occurred_at),
            action: row.action,
            outcome: row.outcome,
            actor: row.actor.unwrap_or_default(),
            account_id: row.account_id.unwrap_or_default(),
            reason: row.reason.or(detail_reason).unwrap_or_default(),
        }
    }
}

#[derive(Template)]
#[template(path = "admin/forbidden.html")]
struct ForbiddenPage {
    nav: bool,
    /// The message id saying which role the page needs.
    body: &'static str,
}

/// The translated 403 page of the console.
pub fn forbidden(req: &HttpRequest, status: StatusCode) -> HttpResponse {
    forbidden_saying(req, status, "admin-forbidden-body")
}

/// The 403 page with its own explanation (e.g. the auditor role needed).
pub fn forbidden_saying(_req: &HttpRequest, status: StatusCode, body: &'static str) -> HttpResponse {
    render::page(status, &ForbiddenPage { nav: false, body })
}

#[derive(Template)]
#[template(path = "admin/home.html")]
pub struct HomePage {
    pub nav: bool,
    pub me: String,
    pub accounts: i64,
    pub accounts_exact: bool,
    pub linked_identities: i64,
    pub clients: usize,
    pub recent: Vec<EventView>,
    pub chain_last_seq: i64,
    pub chain_head: String,
}

pub struct AccountListRow {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub email: String,
    pub phone: String,
    pub active: bool,
    pub roles: String,
}

#[derive(Template)]
#[template(path = "admin/accounts.html")]
pub struct AccountsPage {
    pub nav: bool,
    pub me: String,
    pub q: String,
    pub status: String,
    pub role: String,
    pub linked: String,
    pub rows: Vec<AccountListRow>,
    pub next_url: Option<String>,
}

pub struct IdentityView {
    pub id: String,
    pub open_platform: String,
    pub unionid: String,
    pub nickname: String,
    pub openids: Vec<OpenIdView>,
}

pub struct OpenIdView {
    pub appid: String,
    pub app_name: String,
    pub openid: String,
    pub last_login: String,
}

pub struct SessionView {
    pub id_hash: String,
    pub short: String,
    pub created: String,
    pub last_seen: String,
    pub ip: String,
    pub user_agent: String,
}

pub struct ConsentView {
    pub client_id: String,
    pub scope: String,
    pub granted: String,
}

pub struct GrantView {
    pub id: String,
    pub client_id: String,
    pub scope: String,
    pub expires: String,
}

#[derive(Template)]
#[template(path = "admin/account.html")]
pub struct AccountPage {
    pub nav: bool,
    pub me: String,
    /// An admin sees the forms; an auditor reads the page without them.
    pub can_edit: bool,
    pub csrf_token: String,
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub email: String,
    pub email_verified: bool,
    pub phone: String,
    pub phone_verified: bool,
    pub active: bool,
    pub is_admin: bool,
    pub is_auditor: bool,
    pub has_password: bool,
    pub created: String,
    pub identities: Vec<IdentityView>,
    pub revealed: bool,
    pub sessions: Vec<SessionView>,
    pub consents: Vec<ConsentView>,
    pub grants: Vec<GrantView>,
    pub recent: Vec<EventView>,
    /// A message id: what just happened, or why it was refused.
    pub notice: Option<String>,
    pub error: Option<String>,
    pub one_time_password: Option<String>,
}

#[derive(Template)]
#[template(path = "admin/new_account.html")]
pub struct NewAccountPage {
    pub nav: bool,
    pub me: String,
    pub csrf_token: String,
    pub error: Option<String>,
    pub username: String,
}

#[derive(Template)]
#[template(path = "admin/reauth.html")]
pub struct ReauthPage {
    pub nav: bool,
    pub me: String,
    pub csrf_token: String,
    pub action: String,
    /// The original form's fields, sealed (`reauth::seal_fields`).
    pub carried: String,
    pub minutes: u64,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "admin/continue.html")]
pub struct ContinuePage {
    pub nav: bool,
    pub me: String,
    pub action: String,
    pub fields: Vec<(String, String)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_masked_to_their_ends() {
        assert_eq!(mask("o6jjT5xxxxxxxxxxxxxxfqH1"), "o6jj…fqH1");
        assert_eq!(mask("short"), "…");
        assert_eq!(mask("微信用户标识一二三四五六"), "微信用户…三四五六");
    }
}

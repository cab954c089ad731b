//! The auditor's reports (issue 9 §7), beside the log in `audit_log`:
//! failed sign-ins (top accounts and IPs over a period), one account's
//! sign-in history (successes and failures, surface, client, IP), the
//! admin-action report (who changed what, with reasons) and the signed
//! checkpoints. Each is read through the same indexed queries as the log,
//! links into the log with the filters it used, and is itself recorded as
//! an `audit_access` event before it is served.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::NaiveDateTime;
use serde::Deserialize;

use super::Auditor;
use super::audit_log::{CheckpointView, access_event, checkpoint_view, short};
use super::text::filters;
use super::views::{self, EventView};
use crate::accounts::{AccountId, manage};
use crate::audit::query::{self, FilterError, FilterParams};
use crate::audit::{self, Action, AuditEvent};
use crate::db::audit::AuditRow;
use crate::db::audit_query::{self, Direction};
use crate::db::{self, DbConn, DbError};
use crate::error::AppError;
use crate::http::{RequestMeta, render};
use crate::state::AppState;

/// Rows per page of a report's event list.
const PAGE_SIZE: i64 = 50;
/// Lines per "top" table.
const REPORT_TOP: i64 = 20;

/// A report's period as typed (shown back in the form) and as parsed.
struct Period {
    from: String,
    to: String,
    parsed: Result<(Option<NaiveDateTime>, NaiveDateTime), FilterError>,
}

impl Period {
    /// `to` defaults to now; `from` to `default_days` ago (`None`: no
    /// lower bound).
    fn parse(from: Option<String>, to: Option<String>, default_days: Option<i64>) -> Self {
        let now = db::now();
        let from = from.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()).unwrap_or_else(|| {
            default_days.map(|d| (now - chrono::Duration::days(d)).format("%Y-%m-%d").to_string()).unwrap_or_default()
        });
        let to = to.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()).unwrap_or_default();
        let parsed = (|| {
            let start = if from.is_empty() { None } else { Some(query::parse_time(&from, "from", false)?) };
            let end =
                if to.is_empty() { now + chrono::Duration::seconds(1) } else { query::parse_time(&to, "to", true)? };
            Ok((start, end))
        })();
        Self { from, to, parsed }
    }

    fn record(&self, event: AuditEvent) -> AuditEvent {
        event.with_detail("from", self.from.clone()).with_detail("to", self.to.clone())
    }

    /// The period as log filters.
    fn params(&self) -> FilterParams {
        let some = |v: &String| Some(v.clone()).filter(|v| !v.is_empty());
        FilterParams { from: some(&self.from), to: some(&self.to), ..Default::default() }
    }
}

/// `/audit?…` for these filters (the report's rows in the full log).
fn log_link(params: &FilterParams) -> String {
    let query = params.query_string();
    if query.is_empty() { "/audit".to_owned() } else { format!("/audit?{query}") }
}

/// The next page's link: the report's own query plus the cursor.
fn next_link(path: &str, pairs: &[(&str, &str)], cursor: Option<i64>) -> Option<String> {
    let cursor = cursor?.to_string();
    let mut query: Vec<(&str, &str)> = pairs.iter().copied().filter(|(_, v)| !v.is_empty()).collect();
    query.push(("after", &cursor));
    Some(format!("{path}?{}", serde_urlencoded::to_string(query).unwrap_or_default()))
}

fn cursor(after: Option<&str>) -> Option<i64> {
    after.and_then(|a| a.trim().parse::<i64>().ok())
}

/// The account a report is about: a username, else an id.
fn find_account(conn: &mut DbConn, given: &str) -> diesel::QueryResult<Option<crate::accounts::Account>> {
    match manage::find_by_username(conn, given) {
        Ok(account) => Ok(Some(account)),
        Err(manage::ManageError::Db(e)) => Err(e),
        Err(_) => manage::find_by_id(conn, &AccountId::from_db(given.to_owned())),
    }
}

/// `account:<id>` actors by username, for the tables (other actors —
/// `cli`, `client:…`, `system` — as they are).
fn actor_names(conn: &mut DbConn, actors: &[String]) -> diesel::QueryResult<Vec<(String, String)>> {
    let mut names = Vec::new();
    for actor in actors {
        if names.iter().any(|(a, _): &(String, String)| a == actor) {
            continue;
        }
        let name = match actor.strip_prefix("account:") {
            Some(id) => manage::find_by_id(conn, &AccountId::from_db(id.to_owned()))?.map(|a| a.username),
            None => None,
        };
        names.push((actor.clone(), name.unwrap_or_default()));
    }
    Ok(names)
}

fn name_of(names: &[(String, String)], actor: &str) -> String {
    names
        .iter()
        .find(|(a, _)| a == actor)
        .map(|(_, n)| n.clone())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| short(actor))
}

// ---------------------------------------------------------------------------
// Failed sign-ins.

/// One line of a "top" table.
pub struct TopRow {
    pub key: String,
    /// A username, for an account.
    pub label: String,
    pub count: i64,
    /// The log filtered to these events.
    pub link: String,
}

#[derive(Template)]
#[template(path = "audit/failed_logins.html")]
pub struct FailedLoginsPage {
    pub nav: bool,
    pub me: String,
    pub from: String,
    pub to: String,
    pub error: Option<String>,
    pub accounts: Vec<TopRow>,
    pub ips: Vec<TopRow>,
}

#[derive(Debug, Deserialize)]
pub struct PeriodQuery {
    from: Option<String>,
    to: Option<String>,
}

/// `GET /audit/reports/failed-logins?from&to`: the accounts and IPs with
/// the most failed logins in the period (default: the last 7 days), each
/// linking to those events in the log. Unknown usernames are not recorded
/// (a password typed into the username field must not end up in the
/// trail), so accounts are the known ones.
pub async fn failed_logins(
    state: web::Data<AppState>,
    auditor: Auditor,
    meta: RequestMeta,
    query: web::Query<PeriodQuery>,
) -> Result<HttpResponse, AppError> {
    let query = query.into_inner();
    let period = Period::parse(query.from, query.to, Some(7));
    let event =
        period.record(access_event(&auditor, &meta, Action::AuditReportViewed).with_detail("report", "failed_logins"));
    let secrets = state.secrets.clone();
    let range = period.parsed.clone();
    let found = db::run(&state.db, move |conn| -> Result<_, DbError> {
        audit::record(conn, &secrets, &event)?;
        let Ok((Some(from), to)) = range else { return Ok(None) };
        use audit_query::{FailureKey, top_login_failures};
        let mut accounts = Vec::new();
        for (id, count) in top_login_failures(conn, FailureKey::Account, from, to, REPORT_TOP)? {
            let account = manage::find_by_id(conn, &AccountId::from_db(id.clone()))?;
            accounts.push((id, account.map(|a| a.username).unwrap_or_default(), count));
        }
        let ips = top_login_failures(conn, FailureKey::Ip, from, to, REPORT_TOP)?;
        Ok(Some((accounts, ips)))
    })
    .await?;
    let link = |field: &str, value: &str| {
        let mut params =
            FilterParams { action: Some("login.*".into()), outcome: Some("failure".into()), ..period.params() };
        if field == "account" {
            params.account = Some(value.to_owned());
        } else {
            params.ip = Some(value.to_owned());
        }
        log_link(&params)
    };
    let (accounts, ips) = found.unwrap_or_default();
    let page = FailedLoginsPage {
        nav: false,
        me: auditor.account.username,
        error: period.parsed.as_ref().err().map(ToString::to_string),
        accounts: accounts
            .into_iter()
            .map(|(id, username, count)| TopRow { link: link("account", &id), key: id, label: username, count })
            .collect(),
        ips: ips
            .into_iter()
            .map(|(ip, count)| TopRow { link: link("ip", &ip), key: ip, label: String::new(), count })
            .collect(),
        from: period.from,
        to: period.to,
    };
    let status = if page.error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    Ok(render::page(status, &page))
}

// ---------------------------------------------------------------------------
// One account's sign-in history.

/// One sign-in attempt.
pub struct LoginRow {
    pub event: EventView,
    /// `password`, `website`, `miniprogram`, … (shown by its label).
    pub surface: String,
    pub client_id: String,
    pub ip: String,
}

impl From<AuditRow> for LoginRow {
    fn from(row: AuditRow) -> Self {
        // WeChat sign-ins name their surface; a password sign-in is one
        // (the CLI's checks say `cli`). Pruned rows have lost their detail.
        let named = serde_json::from_str::<serde_json::Value>(&row.detail)
            .ok()
            .and_then(|d| d.get("surface").and_then(|s| s.as_str()).map(str::to_owned));
        let surface = named.unwrap_or_else(|| {
            if row.action == Action::LoginPassword.as_str() { "password".into() } else { String::new() }
        });
        Self {
            surface,
            client_id: row.client_id.clone().unwrap_or_default(),
            ip: row.ip.clone().unwrap_or_default(),
            event: EventView::from(row),
        }
    }
}

#[derive(Template)]
#[template(path = "audit/logins.html")]
pub struct LoginsPage {
    pub nav: bool,
    pub me: String,
    pub account: String,
    pub from: String,
    pub to: String,
    pub outcome: String,
    pub error: Option<String>,
    /// (id, username) of the account shown, once found.
    pub subject: Option<(String, String)>,
    pub rows: Vec<LoginRow>,
    pub next_url: Option<String>,
    pub log_url: String,
}

#[derive(Debug, Deserialize)]
pub struct LoginsQuery {
    account: Option<String>,
    from: Option<String>,
    to: Option<String>,
    outcome: Option<String>,
    after: Option<String>,
}

/// `GET /audit/reports/logins?account&from&to&outcome`: every sign-in of
/// one account (password and WeChat, successes and failures), newest
/// first, keyset pages through the `(account_id, seq)` index.
pub async fn logins(
    state: web::Data<AppState>,
    auditor: Auditor,
    meta: RequestMeta,
    query: web::Query<LoginsQuery>,
) -> Result<HttpResponse, AppError> {
    let query = query.into_inner();
    let account = query.account.as_deref().map(str::trim).unwrap_or_default().to_owned();
    let outcome = query.outcome.as_deref().map(str::trim).unwrap_or_default().to_owned();
    let after = cursor(query.after.as_deref());
    let period = Period::parse(query.from, query.to, None);
    let params = FilterParams {
        action: Some("login.*".into()),
        account: Some(account.clone()).filter(|a| !a.is_empty()),
        outcome: Some(outcome.clone()).filter(|o| !o.is_empty()),
        ..period.params()
    };
    let parsed = period.parsed.clone().and_then(|_| params.parse());
    let event = period.record(
        access_event(&auditor, &meta, Action::AuditReportViewed)
            .with_detail("report", "logins")
            .with_detail("account", account.clone())
            .with_detail("outcome", outcome.clone())
            .with_detail("after", after),
    );
    let secrets = state.secrets.clone();
    let wanted = account.clone();
    let filters = parsed.clone();
    let found = db::run(&state.db, move |conn| -> Result<_, DbError> {
        audit::record(conn, &secrets, &event)?;
        let (Ok(mut filters), false) = (filters, wanted.is_empty()) else { return Ok(None) };
        let Some(subject) = find_account(conn, &wanted)? else { return Ok(Some((None, None))) };
        filters.account = None;
        filters.sql.account_id = Some(subject.id.to_string());
        let page = query::page(conn, &filters, Direction::NewestBefore(after), PAGE_SIZE)?;
        Ok(Some((Some((subject.id.to_string(), subject.username)), Some(page))))
    })
    .await?;
    let (subject, page) = found.unwrap_or_default();
    let mut error = parsed.as_ref().err().map(ToString::to_string);
    let mut status = if error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    if error.is_none() && !account.is_empty() && subject.is_none() {
        error = Some(crate::i18n::t_args("audit-logins-unknown-account", &[("account", account.clone().into())]));
        status = StatusCode::NOT_FOUND;
    }
    let next_url = page.as_ref().and_then(|p| {
        let pairs = [("account", account.as_str()), ("from", &period.from), ("to", &period.to), ("outcome", &outcome)];
        next_link("/audit/reports/logins", &pairs, p.next)
    });
    let page = LoginsPage {
        nav: false,
        me: auditor.account.username,
        rows: page.map(|p| p.rows.into_iter().map(LoginRow::from).collect()).unwrap_or_default(),
        next_url,
        log_url: log_link(&FilterParams { account: subject.as_ref().map(|(id, _)| id.clone()), ..params }),
        subject,
        error,
        account,
        outcome,
        from: period.from,
        to: period.to,
    };
    Ok(render::page(status, &page))
}

// ---------------------------------------------------------------------------
// Admin actions.

/// One change an administrator (or the CLI, or an API client) made.
pub struct ChangeRow {
    pub event: EventView,
    pub actor_name: String,
    pub target: String,
    pub target_link: Option<String>,
}

#[derive(Template)]
#[template(path = "audit/admin_actions.html")]
pub struct AdminActionsPage {
    pub nav: bool,
    pub me: String,
    pub from: String,
    pub to: String,
    pub error: Option<String>,
    pub actors: Vec<TopRow>,
    pub rows: Vec<ChangeRow>,
    pub next_url: Option<String>,
    pub log_url: String,
}

#[derive(Debug, Deserialize)]
pub struct AdminActionsQuery {
    from: Option<String>,
    to: Option<String>,
    after: Option<String>,
}

/// What an admin event changed: the account, else the client, the WeChat
/// app or the identity its detail names.
fn target_of(row: &AuditRow) -> (String, Option<String>) {
    if let Some(id) = row.account_id.as_deref().filter(|id| !id.is_empty()) {
        return (short(&format!("account:{id}")), Some(format!("/admin/accounts/{}", urlencode(id))));
    }
    if let Some(client) = row.client_id.as_deref().filter(|c| !c.is_empty()) {
        return (format!("client:{client}"), Some(format!("/admin/clients/{}", urlencode(client))));
    }
    let detail = serde_json::from_str::<serde_json::Value>(&row.detail).unwrap_or_default();
    for key in ["client_id", "appid", "identity", "key_id"] {
        if let Some(value) = detail.get(key).and_then(|v| v.as_str()) {
            return (format!("{key}:{value}"), None);
        }
    }
    (String::new(), None)
}

fn urlencode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// `GET /audit/reports/admin-actions?from&to`: who changed what, with
/// reasons — the most active actors of category `admin` in the period
/// (default: the last 30 days) and every change, newest first.
pub async fn admin_actions(
    state: web::Data<AppState>,
    auditor: Auditor,
    meta: RequestMeta,
    query: web::Query<AdminActionsQuery>,
) -> Result<HttpResponse, AppError> {
    let query = query.into_inner();
    let after = cursor(query.after.as_deref());
    let period = Period::parse(query.from, query.to, Some(30));
    let params = FilterParams { category: Some("admin".into()), ..period.params() };
    let parsed = period.parsed.clone().and_then(|range| params.parse().map(|f| (range, f)));
    let event = period.record(
        access_event(&auditor, &meta, Action::AuditReportViewed)
            .with_detail("report", "admin_actions")
            .with_detail("after", after),
    );
    let secrets = state.secrets.clone();
    let wanted = parsed.clone();
    let found = db::run(&state.db, move |conn| -> Result<_, DbError> {
        audit::record(conn, &secrets, &event)?;
        let Ok(((Some(from), to), filters)) = wanted else { return Ok(None) };
        let top = audit_query::top_actors(conn, "admin", from, to, REPORT_TOP)?;
        let page = query::page(conn, &filters, Direction::NewestBefore(after), PAGE_SIZE)?;
        let mut actors: Vec<String> = top.iter().map(|(a, _)| a.clone()).collect();
        actors.extend(page.rows.iter().filter_map(|r| r.actor.clone()));
        let names = actor_names(conn, &actors)?;
        Ok(Some((top, page, names)))
    })
    .await?;
    let error = parsed.as_ref().err().map(ToString::to_string);
    let status = if error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    let (actors, rows, next_url) = match found {
        Some((top, page, names)) => {
            let actors = top
                .into_iter()
                .map(|(actor, count)| TopRow {
                    label: name_of(&names, &actor),
                    // An account's page (read-only for an auditor) lists
                    // its own recent events.
                    link: actor
                        .strip_prefix("account:")
                        .map(|id| format!("/admin/accounts/{}", urlencode(id)))
                        .unwrap_or_default(),
                    key: actor,
                    count,
                })
                .collect();
            let pairs = [("from", period.from.as_str()), ("to", &period.to)];
            let next_url = next_link("/audit/reports/admin-actions", &pairs, page.next);
            let rows = page
                .rows
                .into_iter()
                .map(|row| {
                    let (target, target_link) = target_of(&row);
                    let actor_name = name_of(&names, row.actor.as_deref().unwrap_or(""));
                    ChangeRow { event: EventView::from(row), actor_name, target, target_link }
                })
                .collect();
            (actors, rows, next_url)
        }
        None => (Vec::new(), Vec::new(), None),
    };
    let page = AdminActionsPage {
        nav: false,
        me: auditor.account.username,
        error,
        actors,
        rows,
        next_url,
        log_url: log_link(&params),
        from: period.from,
        to: period.to,
    };
    Ok(render::page(status, &page))
}

// ---------------------------------------------------------------------------
// Signed checkpoints.

pub struct CheckpointRowView {
    pub view: CheckpointView,
    pub head_hash: String,
    pub prev: String,
    pub key_id: String,
}

pub struct AuditKeyView {
    pub id: String,
    pub public_key: String,
    pub created_at: String,
    pub retired_at: Option<String>,
}

#[derive(Template)]
#[template(path = "audit/checkpoints.html")]
pub struct CheckpointsPage {
    pub nav: bool,
    pub me: String,
    pub keys: Vec<AuditKeyView>,
    pub checkpoints: Vec<CheckpointRowView>,
    pub next_url: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct CheckpointsQuery {
    before: Option<String>,
}

/// `GET /audit/checkpoints`: the audit public keys and the signed
/// checkpoints, newest first (the same as `/audit/checkpoints.json`, for
/// people).
pub async fn checkpoints(
    state: web::Data<AppState>,
    auditor: Auditor,
    meta: RequestMeta,
    query: web::Query<CheckpointsQuery>,
) -> Result<HttpResponse, AppError> {
    let before = cursor(query.before.as_deref());
    let event = access_event(&auditor, &meta, Action::AuditReportViewed)
        .with_detail("report", "checkpoints")
        .with_detail("before", before);
    let secrets = state.secrets.clone();
    let (keys, rows) = db::run(&state.db, move |conn| -> Result<_, DbError> {
        audit::record(conn, &secrets, &event)?;
        let keys = db::audit::all_audit_keys(conn)?;
        let rows = audit_query::checkpoints_before(conn, before, PAGE_SIZE)?;
        Ok((keys, rows))
    })
    .await?;
    let now = db::now();
    let next_url = (rows.len() as i64 == PAGE_SIZE)
        .then(|| rows.last().map(|c| format!("/audit/checkpoints?before={}", c.seq)))
        .flatten();
    let page = CheckpointsPage {
        nav: false,
        me: auditor.account.username,
        keys: keys
            .into_iter()
            .rev()
            .map(|k| AuditKeyView {
                id: k.id,
                public_key: k.public_key,
                created_at: views::when(k.created_at),
                retired_at: k.retired_at.map(views::when),
            })
            .collect(),
        checkpoints: rows
            .into_iter()
            .map(|c| CheckpointRowView {
                head_hash: c.head_hash.clone(),
                prev: c.prev_checkpoint_hash.clone().unwrap_or_default(),
                key_id: c.key_id.clone(),
                view: checkpoint_view(c, now),
            })
            .collect(),
        next_url,
    };
    Ok(render::page(StatusCode::OK, &page))
}

//! `/admin/accounts`: search and list, the detail page, and its actions.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::form::{self, AdminForm, ConsoleForm, SensitiveForm};
use super::text::t;
use super::views::{
    self, AccountListRow, AccountPage, AccountsPage, ConsentView, EventView, GrantView, IdentityView, NewAccountPage,
    OpenIdView, SessionView,
};
use super::{Admin, Reader};
use crate::accounts::manage::{self, ConsoleError, ManageError, NewAccount, ProfileUpdate};
use crate::accounts::password::validate_new_password;
use crate::accounts::{AccountId, AccountStatus, Role};
use crate::audit::{self, Action, AuditEvent};
use crate::config::SecretString;
use crate::db::{self, DbError};
use crate::error::AppError;
use crate::http::{RequestMeta, csrf, render};
use crate::state::AppState;

/// Accounts per page.
const PAGE_SIZE: i64 = 50;

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    q: Option<String>,
    status: Option<String>,
    role: Option<String>,
    linked: Option<String>,
    after: Option<String>,
}

fn choice(value: &Option<String>, allowed: &[&str]) -> Option<String> {
    value.as_deref().filter(|v| allowed.contains(v)).map(str::to_owned)
}

pub async fn list(
    state: web::Data<AppState>,
    admin: Admin,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, AppError> {
    let query = query.into_inner();
    let q: String = query.q.as_deref().unwrap_or("").trim().chars().take(200).collect();
    let filter = db::accounts::AccountFilter {
        status: choice(&query.status, &["active", "disabled"]),
        role: choice(&query.role, &["admin", "auditor"]),
        linked: choice(&query.linked, &["yes", "no"]).map(|v| v == "yes"),
    };
    let after = query.after.filter(|a| !a.is_empty() && a.len() <= 256);
    let (q2, filter2) = (q.clone(), filter.clone());
    let page = db::run(&state.db, move |conn| -> Result<_, DbError> {
        Ok(manage::search_page(conn, Some(&q2), &filter2, after.as_deref(), PAGE_SIZE)?)
    })
    .await?;
    let status = filter.status.clone().unwrap_or_default();
    let role = filter.role.clone().unwrap_or_default();
    let linked = match filter.linked {
        Some(true) => "yes".to_owned(),
        Some(false) => "no".to_owned(),
        None => String::new(),
    };
    let next_url = page.next_cursor.map(|cursor| {
        let params = [("q", &q), ("status", &status), ("role", &role), ("linked", &linked), ("after", &cursor)];
        let kept: Vec<_> = params.into_iter().filter(|(_, v)| !v.is_empty()).collect();
        format!("/admin/accounts?{}", serde_urlencoded::to_string(kept).unwrap_or_default())
    });
    let rows = page
        .accounts
        .into_iter()
        .map(|a| AccountListRow {
            active: a.is_active(),
            roles: a.roles.iter().map(|r| t(role_message(*r))).collect::<Vec<_>>().join(", "),
            id: a.id.to_string(),
            username: a.username,
            display_name: a.display_name.unwrap_or_default(),
            email: a.email.unwrap_or_default(),
            phone: a.phone.map(|p| views::mask(&p)).unwrap_or_default(),
        })
        .collect();
    let page = AccountsPage { nav: true, me: admin.account.username, q, status, role, linked, rows, next_url };
    Ok(render::page(StatusCode::OK, &page))
}

fn role_message(role: Role) -> &'static str {
    match role {
        Role::Admin => "admin-role-admin",
        Role::Auditor => "admin-role-auditor",
    }
}

/// What the detail page shows besides the account.
struct Detail {
    account: crate::accounts::Account,
    identities: Vec<IdentityView>,
    sessions: Vec<SessionView>,
    consents: Vec<ConsentView>,
    grants: Vec<GrantView>,
    events: Vec<EventView>,
}

fn load_detail(conn: &mut db::DbConn, id: &str, reveal: bool) -> Result<Option<Detail>, DbError> {
    let Some(account) = manage::find_by_id(conn, &AccountId::from_db(id.to_owned()))? else {
        return Ok(None);
    };
    let apps = crate::wechat::apps::list(conn)?;
    let shown = |v: &str| if reveal { v.to_owned() } else { views::mask(v) };
    let mut identities = Vec::new();
    for row in db::wechat::identities_of_account(conn, id)? {
        let openids = db::wechat::openids_of(conn, &row.id)?
            .into_iter()
            .map(|o| OpenIdView {
                app_name: apps.iter().find(|a| a.appid == o.appid).map(|a| a.name.clone()).unwrap_or_default(),
                openid: shown(&o.openid),
                appid: o.appid,
                last_login: views::when(o.last_login_at),
            })
            .collect();
        identities.push(IdentityView {
            id: row.id,
            open_platform: row.open_platform.unwrap_or_default(),
            unionid: row.unionid.as_deref().map(shown).unwrap_or_default(),
            nickname: row.nickname.unwrap_or_default(),
            openids,
        });
    }
    let sessions = db::sessions::list_for_account(conn, id, 50)?
        .into_iter()
        .map(|s| SessionView {
            short: s.id_hash.chars().take(8).collect(),
            id_hash: s.id_hash,
            created: views::when(s.created_at),
            last_seen: views::when(s.last_seen_at),
            ip: s.ip.unwrap_or_default(),
            user_agent: s.user_agent.unwrap_or_default(),
        })
        .collect();
    let consents = db::consents::list_for_account(conn, id)?
        .into_iter()
        .map(|c| ConsentView { client_id: c.client_id, scope: c.scope, granted: views::when(c.granted_at) })
        .collect();
    let grants = db::grants::live_grants_of_account(conn, id, db::now(), 50)?
        .into_iter()
        .map(|g| GrantView { id: g.id, client_id: g.client_id, scope: g.scope, expires: views::when(g.expires_at) })
        .collect();
    let events = db::audit::latest_for_account(conn, id, 20)?.into_iter().map(EventView::from).collect();
    Ok(Some(Detail { account, identities, sessions, consents, grants, events }))
}

/// What a detail page render reports above the sections.
#[derive(Default)]
struct Notice {
    status: Option<StatusCode>,
    notice: Option<&'static str>,
    error: Option<String>,
    one_time_password: Option<String>,
    reveal: bool,
}

/// Who looks at the detail page: an admin gets its forms, an auditor reads it.
struct Viewer<'a> {
    username: &'a str,
    can_edit: bool,
}

impl<'a> From<&'a Admin> for Viewer<'a> {
    fn from(admin: &'a Admin) -> Self {
        Self { username: &admin.account.username, can_edit: true }
    }
}

async fn detail_page(
    req: &HttpRequest,
    state: &AppState,
    viewer: Viewer<'_>,
    id: String,
    notice: Notice,
) -> Result<HttpResponse, AppError> {
    let reveal = notice.reveal;
    let detail = db::run(&state.db, move |conn| load_detail(conn, &id, reveal)).await?;
    let Some(d) = detail else {
        return Err(AppError::NotFound);
    };
    let (csrf_token, builder) = csrf::form_page(req, state, notice.status.unwrap_or(StatusCode::OK));
    let a = d.account;
    let page = AccountPage {
        nav: viewer.can_edit,
        me: viewer.username.to_owned(),
        can_edit: viewer.can_edit,
        csrf_token,
        is_admin: a.has_role(Role::Admin),
        is_auditor: a.has_role(Role::Auditor),
        active: a.is_active(),
        has_password: a.has_password,
        created: views::when(a.created_at.naive_utc()),
        id: a.id.to_string(),
        username: a.username,
        display_name: a.display_name.unwrap_or_default(),
        email: a.email.unwrap_or_default(),
        email_verified: a.email_verified,
        phone: a.phone.unwrap_or_default(),
        phone_verified: a.phone_verified,
        identities: d.identities,
        revealed: reveal,
        sessions: d.sessions,
        consents: d.consents,
        grants: d.grants,
        recent: d.events,
        notice: notice.notice.map(str::to_owned),
        error: notice.error,
        one_time_password: notice.one_time_password,
    };
    Ok(render::page_with(builder, &page))
}

/// The detail page: with its forms for an admin; read-only for an
/// auditor, whose read is recorded first (no read without its record).
pub async fn detail(
    req: HttpRequest,
    state: web::Data<AppState>,
    reader: Reader,
    meta: RequestMeta,
    path: web::Path<String>,
    query: web::Query<DetailQuery>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let can_edit = reader.is_admin();
    if !can_edit {
        let event = AuditEvent::success(Action::AuditAccountViewed)
            .with_actor(format!("account:{}", reader.account.id))
            .with_account(id.as_str())
            .with_request(&meta)
            .with_detail("page", req.path());
        let secrets = state.secrets.clone();
        db::run(&state.db, move |conn| -> Result<i64, DbError> { Ok(audit::record(conn, &secrets, &event)?) }).await?;
    }
    let notice = Notice { notice: query.done.is_some().then_some("admin-done"), ..Notice::default() };
    let viewer = Viewer { username: &reader.account.username, can_edit };
    detail_page(&req, &state, viewer, id, notice).await
}

#[derive(Debug, Deserialize)]
pub struct DetailQuery {
    done: Option<String>,
}

/// After a change: back to the detail page (POST/redirect/GET), saying so.
fn done(id: &str) -> HttpResponse {
    HttpResponse::SeeOther().insert_header(("Location", format!("/admin/accounts/{id}?done=1"))).finish()
}

/// A refused change, shown on the detail page with its status.
async fn refused(
    req: &HttpRequest,
    state: &AppState,
    admin: &Admin,
    id: String,
    error: ConsoleError,
) -> Result<HttpResponse, AppError> {
    let (status, message) = match error {
        ConsoleError::NotFound => return Err(AppError::NotFound),
        ConsoleError::ReasonRequired => (StatusCode::BAD_REQUEST, t("admin-error-reason-required")),
        ConsoleError::LastAdmin => (StatusCode::CONFLICT, t("admin-error-last-admin")),
        ConsoleError::Manage(ManageError::Invalid(detail)) => (StatusCode::BAD_REQUEST, detail.localized()),
        ConsoleError::Manage(ManageError::UsernameTaken(_)) => (StatusCode::CONFLICT, t("admin-error-username-taken")),
        ConsoleError::Manage(ManageError::NotFound(_)) => return Err(AppError::NotFound),
        ConsoleError::Manage(ManageError::Db(e)) | ConsoleError::Db(e) => {
            return Err(AppError::from(DbError::Query(e)));
        }
    };
    let notice = Notice { status: Some(status), error: Some(message), ..Notice::default() };
    detail_page(req, state, admin.into(), id, notice).await
}

/// Runs a domain change and answers with the detail page: a redirect on
/// success, the refusal otherwise.
async fn apply<T: Send + 'static>(
    req: &HttpRequest,
    state: &AppState,
    admin: &Admin,
    id: String,
    change: impl FnOnce(&mut db::DbConn) -> Result<T, ConsoleError> + Send + 'static,
) -> Result<HttpResponse, AppError> {
    let result =
        db::run(&state.db, move |conn| -> Result<Result<T, ConsoleError>, DbError> { Ok(change(conn)) }).await?;
    match result {
        Ok(_) => Ok(done(&id)),
        Err(error) => refused(req, state, admin, id, error).await,
    }
}

pub async fn update_profile(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: AdminForm,
) -> Result<HttpResponse, AppError> {
    let (id, ConsoleForm { admin, fields }) = (path.into_inner(), form);
    let update = ProfileUpdate {
        display_name: Some(form::get(&fields, "display_name").to_owned()),
        email: Some(form::get(&fields, "email").to_owned()),
        email_verified: form::get(&fields, "email_verified") == "on",
        phone: Some(form::get(&fields, "phone").to_owned()),
        phone_verified: form::get(&fields, "phone_verified") == "on",
    };
    let (secrets, actor, target) = (state.secrets.clone(), admin.actor(), id.clone());
    apply(&req, &state, &admin, id, move |conn| manage::update_profile(conn, &secrets, &actor, &target, &update)).await
}

/// Disable / enable: sensitive (issue 8 §1), with a reason.
pub async fn set_status(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: SensitiveForm,
) -> Result<HttpResponse, AppError> {
    let (id, ConsoleForm { admin, fields }) = (path.into_inner(), form);
    let status = match form::get(&fields, "status") {
        "active" => AccountStatus::Active,
        "disabled" => AccountStatus::Disabled,
        _ => return Err(AppError::BadRequest(t("admin-error-bad-status"))),
    };
    let reason = form::get(&fields, "reason").to_owned();
    let (secrets, actor, target) = (state.secrets.clone(), admin.actor(), id.clone());
    apply(&req, &state, &admin, id, move |conn| {
        manage::set_status_by_id(conn, &secrets, &actor, &target, status, &reason)
    })
    .await
}

/// Role change: sensitive, with a reason.
pub async fn set_roles(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: SensitiveForm,
) -> Result<HttpResponse, AppError> {
    let (id, ConsoleForm { admin, fields }) = (path.into_inner(), form);
    let mut roles = Vec::new();
    for value in form::all(&fields, "role") {
        roles.push(value.parse::<Role>().map_err(|_| AppError::BadRequest(t("admin-error-bad-role")))?);
    }
    let reason = form::get(&fields, "reason").to_owned();
    let (secrets, actor, target) = (state.secrets.clone(), admin.actor(), id.clone());
    apply(&req, &state, &admin, id, move |conn| {
        manage::set_roles_by_id(conn, &secrets, &actor, &target, &roles, &reason)
    })
    .await
}

/// Password reset: sensitive. `mode=generate` shows a one-time password
/// once (on this response only, never stored in clear or logged);
/// `mode=set` takes the admin's.
pub async fn reset_password(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: SensitiveForm,
) -> Result<HttpResponse, AppError> {
    let (id, ConsoleForm { admin, fields }) = (path.into_inner(), form);
    let (password, generated) = match form::get(&fields, "mode") {
        "generate" => (crate::secrets::random_token().chars().take(20).collect::<String>(), true),
        "set" => {
            let password = form::get(&fields, "password").to_owned();
            if let Err(why) = validate_new_password(&password) {
                let error = ConsoleError::Manage(ManageError::Invalid(why));
                return refused(&req, &state, &admin, id, error).await;
            }
            (password, false)
        }
        _ => return Err(AppError::BadRequest(t("admin-error-bad-mode"))),
    };
    let hash = state.passwords.hash(SecretString::new(password.clone())).await?;
    let (secrets, actor, target) = (state.secrets.clone(), admin.actor(), id.clone());
    let result = db::run(&state.db, move |conn| -> Result<_, DbError> {
        Ok(manage::set_password_by_id(conn, &secrets, &actor, &target, &hash, generated))
    })
    .await?;
    match result {
        Ok(()) if generated => {
            let notice = Notice { one_time_password: Some(password), ..Notice::default() };
            detail_page(&req, &state, (&admin).into(), id, notice).await
        }
        Ok(()) => Ok(done(&id)),
        Err(error) => refused(&req, &state, &admin, id, error).await,
    }
}

/// Shows the account's OpenIDs and UnionIDs unmasked, once, and records
/// who looked (console.md: reveal on a click that is audited).
pub async fn reveal(
    req: HttpRequest,
    state: web::Data<AppState>,
    meta: RequestMeta,
    path: web::Path<String>,
    form: AdminForm,
) -> Result<HttpResponse, AppError> {
    let (id, admin) = (path.into_inner(), form.admin);
    let event = AuditEvent::success(Action::AdminIdentifiersRevealed)
        .with_actor(format!("account:{}", admin.account.id))
        .with_account(id.as_str())
        .with_request(&meta);
    let secrets = state.secrets.clone();
    db::run(&state.db, move |conn| -> Result<i64, DbError> { Ok(audit::record(conn, &secrets, &event)?) }).await?;
    detail_page(&req, &state, (&admin).into(), id, Notice { reveal: true, ..Notice::default() }).await
}

pub async fn revoke_sessions(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: AdminForm,
) -> Result<HttpResponse, AppError> {
    let (id, ConsoleForm { admin, fields }) = (path.into_inner(), form);
    let one = match form::get(&fields, "session") {
        "all" => None,
        hash => Some(hash.to_owned()),
    };
    let (secrets, actor, target) = (state.secrets.clone(), admin.actor(), id.clone());
    apply(&req, &state, &admin, id, move |conn| {
        manage::revoke_sessions(conn, &secrets, &actor, &target, one.as_deref())
    })
    .await
}

pub async fn revoke_grant(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: AdminForm,
) -> Result<HttpResponse, AppError> {
    let (id, ConsoleForm { admin, fields }) = (path.into_inner(), form);
    let grant = form::get(&fields, "grant").to_owned();
    let (secrets, actor, target) = (state.secrets.clone(), admin.actor(), id.clone());
    apply(&req, &state, &admin, id, move |conn| manage::revoke_grant_of(conn, &secrets, &actor, &target, &grant)).await
}

pub async fn withdraw_consent(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: AdminForm,
) -> Result<HttpResponse, AppError> {
    let (id, ConsoleForm { admin, fields }) = (path.into_inner(), form);
    let client = form::get(&fields, "client").to_owned();
    let (secrets, actor, target) = (state.secrets.clone(), admin.actor(), id.clone());
    apply(&req, &state, &admin, id, move |conn| manage::withdraw_consent_of(conn, &secrets, &actor, &target, &client))
        .await
}

pub async fn new_form(req: HttpRequest, state: web::Data<AppState>, admin: Admin) -> HttpResponse {
    let (csrf_token, builder) = csrf::form_page(&req, &state, StatusCode::OK);
    let page =
        NewAccountPage { nav: true, me: admin.account.username, csrf_token, error: None, username: String::new() };
    render::page_with(builder, &page)
}

pub async fn create(req: HttpRequest, state: web::Data<AppState>, form: AdminForm) -> Result<HttpResponse, AppError> {
    let ConsoleForm { admin, fields } = form;
    let new = NewAccount {
        username: form::get(&fields, "username").to_owned(),
        display_name: Some(form::get(&fields, "display_name").to_owned()),
        email: Some(form::get(&fields, "email").to_owned()),
        phone: Some(form::get(&fields, "phone").to_owned()),
        ..NewAccount::default()
    };
    let (secrets, actor, new2) = (state.secrets.clone(), admin.actor(), new.clone());
    let result =
        db::run(&state.db, move |conn| -> Result<_, DbError> { Ok(manage::add(conn, &secrets, &actor, &new2, None)) })
            .await?;
    let message = match result {
        Ok(account) => {
            return Ok(HttpResponse::SeeOther()
                .insert_header(("Location", format!("/admin/accounts/{}?done=1", account.id)))
                .finish());
        }
        Err(ManageError::Invalid(detail)) => (StatusCode::BAD_REQUEST, detail.localized()),
        Err(ManageError::UsernameTaken(_)) => (StatusCode::CONFLICT, t("admin-error-username-taken")),
        Err(ManageError::NotFound(_)) => (StatusCode::BAD_REQUEST, t("admin-error-not-found")),
        Err(ManageError::Db(e)) => return Err(AppError::from(DbError::Query(e))),
    };
    let (csrf_token, builder) = csrf::form_page(&req, &state, message.0);
    let page = NewAccountPage {
        nav: true,
        me: admin.account.username,
        csrf_token,
        error: Some(message.1),
        username: new.username.chars().take(64).collect(),
    };
    Ok(render::page_with(builder, &page))
}

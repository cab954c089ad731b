//! `/admin/identities`: WeChat identities (issue 8 §4). The list with
//! search and keyset pages, the detail page (every (appid, OpenID), the
//! linked account, login history), and the actions: link to an account,
//! pre-provision (link an account to a UnionID or OpenID wxfed has never
//! seen), unlink. Every action is sensitive and needs a reason; the
//! linking rules and refusals are those of `wechat::identities`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::Admin;
use super::form::{AdminForm, ConsoleForm, SensitiveForm};
use super::text::{filters, t};
use super::views::{self, EventView};
use crate::accounts::manage::{self, ManageError};
use crate::audit::{self, Action, AuditEvent};
use crate::db::{self, DbError};
use crate::error::AppError;
use crate::http::{RequestMeta, csrf, render};
use crate::i18n::t_args;
use crate::state::AppState;
use crate::wechat::identities::{self, ExternalId, IdentityError};

/// Identities per page.
const PAGE_SIZE: i64 = 50;

pub struct IdentityListRow {
    pub id: String,
    pub open_platform: String,
    pub unionid: String,
    pub nickname: String,
    pub account_id: String,
    pub username: String,
    pub created: String,
}

#[derive(Template)]
#[template(path = "admin/identities.html")]
pub struct IdentitiesPage {
    pub nav: bool,
    pub me: String,
    pub q: String,
    pub linked: String,
    pub rows: Vec<IdentityListRow>,
    pub next_url: Option<String>,
}

pub struct AppOpenIdView {
    pub appid: String,
    pub app_name: String,
    pub app_kind: String,
    pub openid: String,
    pub first_seen: String,
    pub last_login: String,
}

#[derive(Template)]
#[template(path = "admin/identity.html")]
pub struct IdentityPage {
    pub nav: bool,
    pub me: String,
    pub csrf_token: String,
    pub id: String,
    pub open_platform: String,
    pub unionid: String,
    pub nickname: String,
    pub created: String,
    pub account_id: String,
    pub username: String,
    pub openids: Vec<AppOpenIdView>,
    pub logins: Vec<EventView>,
    pub revealed: bool,
    pub notice: Option<String>,
    pub error: Option<String>,
    pub link_username: String,
}

#[derive(Template)]
#[template(path = "admin/identity_new.html")]
pub struct NewIdentityPage {
    pub nav: bool,
    pub me: String,
    pub csrf_token: String,
    pub username: String,
    pub kind: String,
    pub open_platform: String,
    pub unionid: String,
    pub appid: String,
    pub openid: String,
    pub platforms: Vec<String>,
    pub apps: Vec<(String, String)>,
    pub error: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    q: Option<String>,
    linked: Option<String>,
    after: Option<String>,
}

use identities::decode_cursor;

fn search(
    conn: &mut db::DbConn,
    q: &str,
    linked: Option<bool>,
    after: Option<&db::wechat::IdentityCursor>,
) -> Result<(Vec<IdentityListRow>, Option<String>), DbError> {
    let (rows, next) = identities::search_page(conn, q, linked, after, PAGE_SIZE)?;
    let next = next.as_ref().map(identities::encode_cursor);
    let account_ids: Vec<String> = rows.iter().filter_map(|r| r.account_id.clone()).collect();
    let names: std::collections::HashMap<String, String> =
        db::wechat::usernames_of(conn, &account_ids)?.into_iter().collect();
    let rows = rows
        .into_iter()
        .map(|r| IdentityListRow {
            username: r.account_id.as_ref().and_then(|a| names.get(a).cloned()).unwrap_or_default(),
            account_id: r.account_id.unwrap_or_default(),
            open_platform: r.open_platform.unwrap_or_default(),
            unionid: r.unionid.as_deref().map(views::mask).unwrap_or_default(),
            nickname: r.nickname.unwrap_or_default(),
            created: views::when(r.created_at),
            id: r.id,
        })
        .collect();
    Ok((rows, next))
}

pub async fn list(
    state: web::Data<AppState>,
    admin: Admin,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, AppError> {
    let query = query.into_inner();
    let q: String = query.q.as_deref().unwrap_or("").trim().chars().take(200).collect();
    let linked = match query.linked.as_deref() {
        Some("yes") => Some(true),
        Some("no") => Some(false),
        _ => None,
    };
    let after = query.after.as_deref().and_then(decode_cursor);
    let q2 = q.clone();
    let (rows, next) = db::run(&state.db, move |conn| search(conn, &q2, linked, after.as_ref())).await?;
    let linked = match linked {
        Some(true) => "yes",
        Some(false) => "no",
        None => "",
    }
    .to_owned();
    let next_url = next.map(|cursor| {
        let params = [("q", &q), ("linked", &linked), ("after", &cursor)];
        let kept: Vec<_> = params.into_iter().filter(|(_, v)| !v.is_empty()).collect();
        format!("/admin/identities?{}", serde_urlencoded::to_string(kept).unwrap_or_default())
    });
    let page = IdentitiesPage { nav: true, me: admin.account.username, q, linked, rows, next_url };
    Ok(render::page(StatusCode::OK, &page))
}

/// What the detail page shows.
struct Detail {
    row: db::wechat::IdentityRow,
    username: String,
    openids: Vec<AppOpenIdView>,
    logins: Vec<EventView>,
}

fn load_detail(conn: &mut db::DbConn, id: &str, reveal: bool) -> Result<Option<Detail>, DbError> {
    let Some(row) = db::wechat::find_identity(conn, id)? else {
        return Ok(None);
    };
    let apps = crate::wechat::apps::list(conn)?;
    let shown = |v: &str| if reveal { v.to_owned() } else { views::mask(v) };
    let openids = db::wechat::openids_of(conn, id)?
        .into_iter()
        .map(|o| {
            let app = apps.iter().find(|a| a.appid == o.appid);
            AppOpenIdView {
                app_name: app.map(|a| a.name.clone()).unwrap_or_default(),
                app_kind: app.map(|a| format!("identities-app-kind-{}", a.kind.as_str())).unwrap_or_default(),
                openid: shown(&o.openid),
                first_seen: views::when(o.created_at),
                last_login: views::when(o.last_login_at),
                appid: o.appid,
            }
        })
        .collect();
    let username = match &row.account_id {
        Some(account) => db::wechat::usernames_of(conn, std::slice::from_ref(account))?
            .into_iter()
            .next()
            .map(|(_, name)| name)
            .unwrap_or_default(),
        None => String::new(),
    };
    let logins = db::audit::wechat_logins_of_identity(conn, id, row.account_id.as_deref(), 2000, 20)?
        .into_iter()
        .map(EventView::from)
        .collect();
    let row = db::wechat::IdentityRow { unionid: row.unionid.as_deref().map(shown), ..row };
    Ok(Some(Detail { row, username, openids, logins }))
}

#[derive(Default)]
struct Notice {
    status: Option<StatusCode>,
    notice: Option<&'static str>,
    error: Option<String>,
    reveal: bool,
    link_username: String,
}

async fn detail_page(
    req: &HttpRequest,
    state: &AppState,
    admin: &Admin,
    id: String,
    notice: Notice,
) -> Result<HttpResponse, AppError> {
    let reveal = notice.reveal;
    let detail = db::run(&state.db, move |conn| load_detail(conn, &id, reveal)).await?;
    let Some(d) = detail else {
        return Err(AppError::NotFound);
    };
    let (csrf_token, builder) = csrf::form_page(req, state, notice.status.unwrap_or(StatusCode::OK));
    let page = IdentityPage {
        nav: true,
        me: admin.account.username.clone(),
        csrf_token,
        id: d.row.id,
        open_platform: d.row.open_platform.unwrap_or_default(),
        unionid: d.row.unionid.unwrap_or_default(),
        nickname: d.row.nickname.unwrap_or_default(),
        created: views::when(d.row.created_at),
        account_id: d.row.account_id.unwrap_or_default(),
        username: d.username,
        openids: d.openids,
        logins: d.logins,
        revealed: reveal,
        notice: notice.notice.map(str::to_owned),
        error: notice.error,
        link_username: notice.link_username,
    };
    Ok(render::page_with(builder, &page))
}

#[derive(Debug, Deserialize)]
pub struct DetailQuery {
    done: Option<String>,
}

pub async fn detail(
    req: HttpRequest,
    state: web::Data<AppState>,
    admin: Admin,
    path: web::Path<String>,
    query: web::Query<DetailQuery>,
) -> Result<HttpResponse, AppError> {
    let notice = Notice { notice: query.done.is_some().then_some("admin-done"), ..Notice::default() };
    detail_page(&req, &state, &admin, path.into_inner(), notice).await
}

/// Why a console action on identities was refused.
enum Refusal {
    Identity(IdentityError),
    NoSuchAccount,
}

impl From<IdentityError> for Refusal {
    fn from(e: IdentityError) -> Self {
        Self::Identity(e)
    }
}

impl From<ManageError> for Refusal {
    fn from(e: ManageError) -> Self {
        match e {
            ManageError::Db(e) => Self::Identity(IdentityError::Db(e)),
            _ => Self::NoSuchAccount,
        }
    }
}

impl From<diesel::result::Error> for Refusal {
    fn from(e: diesel::result::Error) -> Self {
        Self::Identity(IdentityError::Db(e))
    }
}

/// The status and translated message of a refusal; the refusals are the
/// linking rules' own (`IdentityError`), one message id each.
fn explain(refusal: Refusal) -> Result<(StatusCode, String), AppError> {
    use fluent_templates::fluent_bundle::FluentValue;
    let arg = |s: String| -> FluentValue<'static> { FluentValue::from(s) };
    Ok(match refusal {
        Refusal::NoSuchAccount => (StatusCode::NOT_FOUND, t("identities-error-no-account")),
        Refusal::Identity(e) => match e {
            IdentityError::LinkedElsewhere(name) => {
                (StatusCode::CONFLICT, t_args("identities-error-linked-elsewhere", &[("username", arg(name))]))
            }
            IdentityError::AccountHasOne(platform) => {
                (StatusCode::CONFLICT, t_args("identities-error-account-has-one", &[("platform", arg(platform))]))
            }
            IdentityError::MergeConflict => (StatusCode::CONFLICT, t("identities-error-merge-conflict")),
            IdentityError::NotLinkedTo(name) => {
                (StatusCode::CONFLICT, t_args("identities-error-not-linked-to", &[("username", arg(name))]))
            }
            IdentityError::ReasonRequired => (StatusCode::BAD_REQUEST, t("admin-error-reason-required")),
            IdentityError::UnknownApp(appid) => {
                (StatusCode::BAD_REQUEST, t_args("identities-error-unknown-app", &[("appid", arg(appid))]))
            }
            IdentityError::Invalid(_) => (StatusCode::BAD_REQUEST, t("identities-error-invalid")),
            IdentityError::NotFound => return Err(AppError::NotFound),
            IdentityError::Db(e) => return Err(AppError::from(DbError::Query(e))),
        },
    })
}

fn back_to(id: &str) -> HttpResponse {
    HttpResponse::SeeOther().insert_header(("Location", format!("/admin/identities/{id}?done=1"))).finish()
}

/// Links the identity to the account named by `username`.
pub async fn link(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: SensitiveForm,
) -> Result<HttpResponse, AppError> {
    let (id, ConsoleForm { admin, fields }) = (path.into_inner(), form);
    let username = super::form::get(&fields, "username").trim().to_owned();
    let reason = super::form::get(&fields, "reason").to_owned();
    let (secrets, actor, target) = (state.secrets.clone(), admin.actor(), id.clone());
    let name = username.clone();
    let result = db::run(&state.db, move |conn| -> Result<Result<(), Refusal>, DbError> {
        Ok(db::write_transaction(conn, |conn| -> Result<(), Refusal> {
            let reason = identities::require_reason(&reason)?;
            let account = manage::find_by_username(conn, &name)?;
            identities::link(conn, &secrets, &actor, &target, account.id.as_str(), "admin", Some(&reason))?;
            Ok(())
        }))
    })
    .await?;
    match result {
        Ok(()) => Ok(back_to(&id)),
        Err(refusal) => {
            let (status, message) = explain(refusal)?;
            let notice =
                Notice { status: Some(status), error: Some(message), link_username: username, ..Notice::default() };
            detail_page(&req, &state, &admin, id, notice).await
        }
    }
}

pub async fn unlink(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: SensitiveForm,
) -> Result<HttpResponse, AppError> {
    let (id, ConsoleForm { admin, fields }) = (path.into_inner(), form);
    let reason = super::form::get(&fields, "reason").to_owned();
    let (secrets, actor, target) = (state.secrets.clone(), admin.actor(), id.clone());
    let result = db::run(&state.db, move |conn| -> Result<Result<bool, Refusal>, DbError> {
        Ok(db::write_transaction(conn, |conn| -> Result<bool, Refusal> {
            let reason = identities::require_reason(&reason)?;
            Ok(identities::unlink(conn, &secrets, &actor, &target, None, Some(&reason))?)
        }))
    })
    .await?;
    match result {
        Ok(_) => Ok(back_to(&id)),
        Err(refusal) => {
            let (status, message) = explain(refusal)?;
            detail_page(
                &req,
                &state,
                &admin,
                id,
                Notice { status: Some(status), error: Some(message), ..Notice::default() },
            )
            .await
        }
    }
}

/// Shows the identity's UnionID and OpenIDs unmasked, once; audited.
pub async fn reveal(
    req: HttpRequest,
    state: web::Data<AppState>,
    meta: RequestMeta,
    path: web::Path<String>,
    form: AdminForm,
) -> Result<HttpResponse, AppError> {
    let (id, admin) = (path.into_inner(), form.admin);
    let event = AuditEvent::success(Action::AdminIdentifiersRevealed)
        .with_actor(admin.actor().0)
        .with_detail("identity", id.clone())
        .with_request(&meta);
    let secrets = state.secrets.clone();
    db::run(&state.db, move |conn| -> Result<i64, DbError> { Ok(audit::record(conn, &secrets, &event)?) }).await?;
    detail_page(&req, &state, &admin, id, Notice { reveal: true, ..Notice::default() }).await
}

#[derive(Debug, Deserialize)]
pub struct NewQuery {
    username: Option<String>,
}

fn new_page(
    req: &HttpRequest,
    state: &AppState,
    admin: &Admin,
    status: StatusCode,
    fields: &[(String, String)],
    choices: Choices,
    error: Option<String>,
) -> HttpResponse {
    let get = |name: &str| -> String {
        fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.chars().take(128).collect()).unwrap_or_default()
    };
    let (csrf_token, builder) = csrf::form_page(req, state, status);
    let kind = if get("kind") == "openid" { "openid" } else { "unionid" }.to_owned();
    let page = NewIdentityPage {
        nav: true,
        me: admin.account.username.clone(),
        csrf_token,
        username: get("username"),
        kind,
        open_platform: get("open_platform"),
        unionid: get("unionid"),
        appid: get("appid"),
        openid: get("openid"),
        platforms: choices.0,
        apps: choices.1,
        error,
    };
    render::page_with(builder, &page)
}

/// The Open Platforms and (appid, name) of the apps the pre-provision
/// form offers.
type Choices = (Vec<String>, Vec<(String, String)>);

fn choices(conn: &mut db::DbConn) -> Result<Choices, DbError> {
    let apps = crate::wechat::apps::list(conn)?;
    let mut platforms: Vec<String> = apps.iter().filter_map(|a| a.open_platform.clone()).collect();
    platforms.sort();
    platforms.dedup();
    Ok((platforms, apps.into_iter().map(|a| (a.appid, a.name)).collect()))
}

/// The pre-provision form: link an account to a UnionID or an OpenID.
pub async fn new_form(
    req: HttpRequest,
    state: web::Data<AppState>,
    admin: Admin,
    query: web::Query<NewQuery>,
) -> Result<HttpResponse, AppError> {
    let choices = db::run(&state.db, choices).await?;
    let fields = vec![("username".to_owned(), query.into_inner().username.unwrap_or_default())];
    Ok(new_page(&req, &state, &admin, StatusCode::OK, &fields, choices, None))
}

/// Links an account to an external id, creating the identity when wxfed
/// has never seen it (pre-provisioning).
pub async fn provision(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: SensitiveForm,
) -> Result<HttpResponse, AppError> {
    let ConsoleForm { admin, fields } = form;
    let get = |name: &str| super::form::get(&fields, name).trim().to_owned();
    let external = if get("kind") == "openid" {
        ExternalId::OpenId { appid: get("appid"), openid: get("openid") }
    } else {
        ExternalId::UnionId { open_platform: get("open_platform"), unionid: get("unionid") }
    };
    let (username, reason) = (get("username"), get("reason"));
    let (secrets, actor) = (state.secrets.clone(), admin.actor());
    let result = db::run(&state.db, move |conn| -> Result<Result<String, Refusal>, DbError> {
        Ok(db::write_transaction(conn, |conn| -> Result<String, Refusal> {
            identities::require_reason(&reason)?;
            let account = manage::find_by_username(conn, &username)?;
            let (identity, _created) =
                identities::link_external(conn, &secrets, &actor, account.id.as_str(), &external, &reason)?;
            Ok(identity.id)
        }))
    })
    .await?;
    match result {
        Ok(id) => Ok(back_to(&id)),
        Err(refusal) => {
            let (status, message) = match refusal {
                // Naming an identity that does not exist is not a 404 here.
                Refusal::Identity(IdentityError::NotFound) => (StatusCode::BAD_REQUEST, t("identities-error-invalid")),
                other => explain(other)?,
            };
            let choices = db::run(&state.db, choices).await?;
            Ok(new_page(&req, &state, &admin, status, &fields, choices, Some(message)))
        }
    }
}

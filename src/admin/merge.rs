//! `/admin/accounts/{id}/merge?into=<other>`: the merge preview (what
//! moves, what conflicts, a choice per conflicting field, the reason) and
//! the merge itself (sensitive). Domain logic: `accounts::merge`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::Admin;
use super::form::{ConsoleForm, SensitiveForm};
use super::text::{filters, t};
use crate::accounts::AccountId;
use crate::accounts::manage;
use crate::accounts::merge::{self, Conflict, MergeError, Plan, Preferences, Side};
use crate::db::{self, DbError};
use crate::error::AppError;
use crate::http::{csrf, render};
use crate::state::AppState;

pub struct ConflictView {
    /// `phone`, `email` or `identity`.
    pub field: String,
    pub from: String,
    pub into: String,
    pub choosable: bool,
}

#[derive(Template)]
#[template(path = "admin/merge.html")]
pub struct MergePage {
    pub nav: bool,
    pub me: String,
    pub csrf_token: String,
    pub from_id: String,
    pub into: String,
    pub plan: Option<Plan>,
    pub conflicts: Vec<ConflictView>,
    pub blocked: bool,
    pub error: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct MergeQuery {
    into: Option<String>,
}

/// `into` is an account id or a username.
fn resolve_into(conn: &mut db::DbConn, into: &str) -> Result<Option<String>, DbError> {
    if into.is_empty() {
        return Ok(None);
    }
    if let Some(a) = manage::find_by_id(conn, &AccountId::from_db(into.to_owned()))? {
        return Ok(Some(a.id.to_string()));
    }
    Ok(manage::find_by_username(conn, into).ok().map(|a| a.id.to_string()))
}

fn conflict_views(plan: &Plan) -> Vec<ConflictView> {
    plan.conflicts
        .iter()
        .map(|c| {
            let (field, from, into) = match c {
                Conflict::Identity { platform } => ("identity", platform.clone(), platform.clone()),
                Conflict::Phone { from, into } => ("phone", from.clone(), into.clone()),
                Conflict::Email { from, into } => ("email", from.clone(), into.clone()),
            };
            ConflictView { field: field.into(), from, into, choosable: c.choosable() }
        })
        .collect()
}

fn refusal(error: MergeError) -> Result<(StatusCode, String), AppError> {
    Ok(match error {
        MergeError::NotFound(_) => return Err(AppError::NotFound),
        MergeError::SameAccount => (StatusCode::BAD_REQUEST, t("merge-error-same")),
        MergeError::AlreadyMerged(_) => (StatusCode::CONFLICT, t("merge-error-already-merged")),
        MergeError::ReasonRequired => (StatusCode::BAD_REQUEST, t("admin-error-reason-required")),
        MergeError::Conflicts(_) => (StatusCode::CONFLICT, t("merge-error-conflicts")),
        MergeError::Db(e) => return Err(AppError::from(DbError::Query(e))),
    })
}

async fn page(
    req: &HttpRequest,
    state: &AppState,
    admin: &Admin,
    from_id: String,
    into: String,
    status: StatusCode,
    error: Option<String>,
) -> Result<HttpResponse, AppError> {
    let (from2, into2) = (from_id.clone(), into.clone());
    let planned = db::run(&state.db, move |conn| -> Result<_, DbError> {
        if manage::find_by_id(conn, &AccountId::from_db(from2.clone()))?.is_none() {
            return Ok(None);
        }
        Ok(Some(resolve_into(conn, &into2)?.map(|into_id| merge::plan(conn, &from2, &into_id))))
    })
    .await?;
    let Some(planned) = planned else {
        return Err(AppError::NotFound);
    };
    let (mut status, mut error) = (status, error);
    let plan = match planned {
        Some(Ok(plan)) => Some(plan),
        Some(Err(e)) => {
            let (s, message) = refusal(e)?;
            (status, error) = (s, Some(message));
            None
        }
        None if !into.is_empty() => {
            (status, error) = (StatusCode::NOT_FOUND, Some(t("identities-error-no-account")));
            None
        }
        None => None,
    };
    let conflicts = plan.as_ref().map(conflict_views).unwrap_or_default();
    let blocked = conflicts.iter().any(|c| !c.choosable);
    let (csrf_token, builder) = csrf::form_page(req, state, status);
    let page = MergePage {
        nav: true,
        me: admin.account.username.clone(),
        csrf_token,
        from_id,
        into: into.chars().take(128).collect(),
        plan,
        conflicts,
        blocked,
        error,
    };
    Ok(render::page_with(builder, &page))
}

pub async fn preview(
    req: HttpRequest,
    state: web::Data<AppState>,
    admin: Admin,
    path: web::Path<String>,
    query: web::Query<MergeQuery>,
) -> Result<HttpResponse, AppError> {
    let into = query.into_inner().into.unwrap_or_default().trim().to_owned();
    page(&req, &state, &admin, path.into_inner(), into, StatusCode::OK, None).await
}

fn side(value: &str) -> Option<Side> {
    value.parse().ok()
}

pub async fn submit(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: SensitiveForm,
) -> Result<HttpResponse, AppError> {
    let (from_id, ConsoleForm { admin, fields }) = (path.into_inner(), form);
    let get = |name: &str| super::form::get(&fields, name).trim().to_owned();
    let into = get("into");
    let prefer = Preferences { phone: side(&get("prefer_phone")), email: side(&get("prefer_email")) };
    let reason = get("reason");
    let (secrets, actor, from2, into2) = (state.secrets.clone(), admin.actor(), from_id.clone(), into.clone());
    let result = db::run(&state.db, move |conn| -> Result<_, DbError> {
        let Some(into_id) = resolve_into(conn, &into2)? else {
            return Ok(Err(MergeError::NotFound(into2)));
        };
        Ok(merge::merge(conn, &secrets, &actor, &from2, &into_id, prefer, &reason).map(|p| p.into_id))
    })
    .await?;
    match result {
        Ok(into_id) => Ok(HttpResponse::SeeOther()
            .insert_header(("Location", format!("/admin/accounts/{into_id}?done=1")))
            .finish()),
        Err(error) => {
            let (status, message) = refusal(error)?;
            page(&req, &state, &admin, from_id, into, status, Some(message)).await
        }
    }
}

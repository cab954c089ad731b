//! `/api/admin/identities`: WeChat identities: search, read, link, unlink,
//! pre-provision (`wechat::identities`), and the merge of two accounts
//! (`accounts::merge`), with the console's rules and required reasons.

use std::collections::HashMap;

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::accounts::{Changed, RevealQuery, reason_required, record, record_detail_read};
use super::auth::{AdminCaller, ReadCaller};
use super::body::{JsonBody, query};
use super::problem::{ApiError, Problem};
use super::{created as created_response, mask, ok, rfc3339_naive};
use crate::accounts::AccountId;
use crate::accounts::manage::{self, ManageError};
use crate::accounts::merge::{self, Conflict, MergeError, Plan, Preferences, Side};
use crate::audit::{Action, AuditEvent};
use crate::db::wechat::IdentityRow;
use crate::db::{self, DbError};
use crate::http::paths;
use crate::state::AppState;
use crate::wechat::identities::{self, ExternalId, IdentityError};

/// One (appid, OpenID) of an identity.
#[derive(Debug, Serialize, ToSchema)]
pub struct OpenIdView {
    pub appid: String,
    /// The app's name, when it is registered.
    pub app_name: Option<String>,
    /// `mini_program`, `official_account`, `website`, `mobile_app`.
    pub app_kind: Option<String>,
    /// Masked unless `reveal=true`.
    pub openid: String,
    #[schema(format = DateTime)]
    pub first_seen: String,
    #[schema(format = DateTime)]
    pub last_login: String,
}

/// The OpenIDs of an identity, masked unless `reveal`.
pub fn openid_views(conn: &mut db::DbConn, identity_id: &str, reveal: bool) -> Result<Vec<OpenIdView>, DbError> {
    let apps = crate::wechat::apps::list(conn)?;
    Ok(db::wechat::openids_of(conn, identity_id)?
        .into_iter()
        .map(|o| {
            let app = apps.iter().find(|a| a.appid == o.appid);
            OpenIdView {
                app_name: app.map(|a| a.name.clone()),
                app_kind: app.map(|a| a.kind.as_str().to_owned()),
                openid: if reveal { o.openid } else { mask(&o.openid) },
                first_seen: rfc3339_naive(o.created_at),
                last_login: rfc3339_naive(o.last_login_at),
                appid: o.appid,
            }
        })
        .collect())
}

/// Identities per page (at most).
const PAGE_SIZE: i64 = 50;

/// One identity in a list (UnionID masked).
#[derive(Debug, Serialize, ToSchema)]
pub struct IdentityRowView {
    pub id: String,
    pub open_platform: Option<String>,
    pub unionid: Option<String>,
    pub nickname: Option<String>,
    /// The linked account, if any.
    pub account_id: Option<String>,
    pub username: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IdentityList {
    pub items: Vec<IdentityRowView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// One identity with its OpenIDs.
#[derive(Debug, Serialize, ToSchema)]
pub struct IdentityDetail {
    pub id: String,
    pub open_platform: Option<String>,
    /// Masked unless `reveal=true`.
    pub unionid: Option<String>,
    pub nickname: Option<String>,
    pub account_id: Option<String>,
    pub username: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    pub openids: Vec<OpenIdView>,
    pub revealed: bool,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// An Open Platform, appid, identity id, UnionID or OpenID (exact), or a nickname prefix.
    q: Option<String>,
    /// `true`: only identities linked to an account; `false`: only unlinked ones.
    linked: Option<bool>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

fn username_map(conn: &mut db::DbConn, rows: &[IdentityRow]) -> Result<HashMap<String, String>, DbError> {
    let ids: Vec<String> = rows.iter().filter_map(|r| r.account_id.clone()).collect();
    Ok(db::wechat::usernames_of(conn, &ids)?.into_iter().collect())
}

/// Searches WeChat identities, newest first (keyset pagination).
#[utoipa::path(get, path = paths::API_ADMIN_IDENTITIES, tag = "identities", params(ListQuery),
    security(("client_credentials" = ["wxfed:admin"]), ("client_credentials" = ["wxfed:audit"])),
    responses((status = 200, body = IdentityList)))]
pub async fn list(req: HttpRequest, state: web::Data<AppState>, caller: ReadCaller) -> Result<HttpResponse, ApiError> {
    let query: ListQuery = query(&req)?;
    let q: String = query.q.as_deref().unwrap_or("").trim().chars().take(200).collect();
    let after = match query.cursor.as_deref().filter(|c| !c.is_empty()) {
        Some(cursor) => Some(
            identities::decode_cursor(cursor)
                .ok_or_else(|| ApiError::invalid_field("cursor", "not a cursor of this list"))?,
        ),
        None => None,
    };
    if !caller.is_admin() {
        let event = caller
            .event(AuditEvent::success(Action::AuditSearched))
            .with_detail("resource", "identities")
            .with_detail("filters", serde_json::json!({"q": q, "linked": query.linked}));
        record(&state, event).await?;
    }
    let linked = query.linked;
    let (rows, next, names) = db::run(&state.db, move |conn| -> Result<_, DbError> {
        let (rows, next) = identities::search_page(conn, &q, linked, after.as_ref(), PAGE_SIZE)?;
        let names = username_map(conn, &rows)?;
        Ok((rows, next, names))
    })
    .await?;
    let items = rows
        .into_iter()
        .map(|r| IdentityRowView {
            username: r.account_id.as_ref().and_then(|a| names.get(a).cloned()),
            account_id: r.account_id,
            open_platform: r.open_platform,
            unionid: r.unionid.as_deref().map(mask),
            nickname: r.nickname,
            created_at: rfc3339_naive(r.created_at),
            id: r.id,
        })
        .collect();
    Ok(ok(&IdentityList { items, next_cursor: next.as_ref().map(identities::encode_cursor) }))
}

fn load_detail(conn: &mut db::DbConn, id: &str, reveal: bool) -> Result<Option<IdentityDetail>, DbError> {
    let Some(row) = db::wechat::find_identity(conn, id)? else { return Ok(None) };
    let openids = openid_views(conn, id, reveal)?;
    let names = username_map(conn, std::slice::from_ref(&row))?;
    Ok(Some(IdentityDetail {
        username: row.account_id.as_ref().and_then(|a| names.get(a).cloned()),
        account_id: row.account_id,
        open_platform: row.open_platform,
        unionid: row.unionid.as_deref().map(|u| if reveal { u.to_owned() } else { mask(u) }),
        nickname: row.nickname,
        created_at: rfc3339_naive(row.created_at),
        openids,
        revealed: reveal,
        id: row.id,
    }))
}

/// One identity (`reveal=true`: unmasked, scope `wxfed:admin`, recorded).
#[utoipa::path(get, path = paths::API_ADMIN_IDENTITY, tag = "identities",
    params(("id" = String, Path, description = "The identity id"), RevealQuery),
    security(("client_credentials" = ["wxfed:admin"]), ("client_credentials" = ["wxfed:audit"])),
    responses((status = 200, body = IdentityDetail), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: ReadCaller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let RevealQuery { reveal } = query(&req)?;
    record_detail_read(&req, &state, &caller, reveal, |event| event.with_detail("identity", id.clone())).await?;
    let id2 = id.clone();
    let detail = db::run(&state.db, move |conn| load_detail(conn, &id2, reveal)).await?;
    Ok(ok(&detail.ok_or_else(|| ApiError::not_found(format!("no WeChat identity with the id `{id}`")))?))
}

/// Why `wechat::identities` refused, as a problem (the console's refusals).
fn identity_problem(error: IdentityError) -> ApiError {
    match error {
        IdentityError::LinkedElsewhere(name) => ApiError::conflict(
            "linked_elsewhere",
            format!("this WeChat identity is already linked to the account `{name}`"),
        ),
        IdentityError::AccountHasOne(platform) => ApiError::conflict(
            "account_has_identity",
            format!("the account is already linked to another WeChat identity of `{platform}`"),
        ),
        IdentityError::MergeConflict => ApiError::conflict("merge_conflict", error.to_string()),
        IdentityError::NotFound => ApiError::not_found("no such WeChat identity"),
        IdentityError::NotLinkedTo(name) => {
            ApiError::conflict("not_linked_to", format!("the WeChat identity is not linked to `{name}`"))
        }
        IdentityError::ReasonRequired => reason_required(),
        IdentityError::UnknownApp(appid) => {
            ApiError::invalid_field("appid", format!("no WeChat app `{appid}` is registered"))
        }
        IdentityError::Invalid(detail) => ApiError::bad_request("invalid", detail),
        IdentityError::Db(e) => e.into(),
    }
}

/// A refusal inside a link transaction.
enum Refusal {
    Identity(IdentityError),
    Account(ApiError),
}

impl From<IdentityError> for Refusal {
    fn from(e: IdentityError) -> Self {
        Self::Identity(e)
    }
}

impl From<diesel::result::Error> for Refusal {
    fn from(e: diesel::result::Error) -> Self {
        Self::Identity(IdentityError::Db(e))
    }
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::Identity(e) => identity_problem(e),
            Refusal::Account(e) => e,
        }
    }
}

/// The account a request names, by id or by username.
fn named_account(conn: &mut db::DbConn, account_id: Option<&str>, username: Option<&str>) -> Result<String, Refusal> {
    let missing = || Refusal::Account(ApiError::invalid_field("account_id", "no such account"));
    match (account_id.filter(|s| !s.is_empty()), username.filter(|s| !s.is_empty())) {
        (Some(id), _) => {
            Ok(manage::find_by_id(conn, &AccountId::from_db(id.to_owned()))?.ok_or_else(missing)?.id.to_string())
        }
        (None, Some(name)) => match manage::find_by_username(conn, name.trim()) {
            Ok(account) => Ok(account.id.to_string()),
            Err(ManageError::Db(e)) => Err(e.into()),
            Err(_) => Err(Refusal::Account(ApiError::invalid_field("username", "no such account"))),
        },
        (None, None) => {
            Err(Refusal::Account(ApiError::invalid_field("account_id", "name the account: account_id or username")))
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkIdentity {
    /// The account to link (or name it by `username`).
    #[serde(default)]
    pub account_id: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    /// Why (required, as on the console).
    #[serde(default)]
    pub reason: String,
}

/// Links the identity to an account, with a reason
/// (`wechat_identity.linked`); refused as the console refuses (409
/// `linked_elsewhere`, `account_has_identity`).
#[utoipa::path(post, path = paths::API_ADMIN_IDENTITY_LINK, tag = "identities", request_body = LinkIdentity,
    params(("id" = String, Path, description = "The identity id")),
    security(("client_credentials" = ["wxfed:admin"])),
    responses((status = 200, body = IdentityDetail), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json")))]
pub async fn link(
    state: web::Data<AppState>,
    caller: AdminCaller,
    path: web::Path<String>,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    let input: LinkIdentity = body.parse()?;
    let (secrets, actor, id) = (state.secrets.clone(), caller.actor(), path.into_inner());
    let detail = db::run(&state.db, move |conn| -> Result<Result<_, Refusal>, DbError> {
        let linked = db::write_transaction(conn, |conn| -> Result<(), Refusal> {
            let reason = identities::require_reason(&input.reason)?;
            let account = named_account(conn, input.account_id.as_deref(), input.username.as_deref())?;
            identities::link(conn, &secrets, &actor, &id, &account, "admin", Some(&reason))?;
            Ok(())
        });
        Ok(match linked {
            Ok(()) => Ok(load_detail(conn, &id, false)?),
            Err(refusal) => Err(refusal),
        })
    })
    .await??;
    Ok(ok(&detail.ok_or_else(|| ApiError::not_found("no such WeChat identity"))?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UnlinkIdentity {
    /// When given, the identity must be linked to this account (409 `not_linked_to` otherwise).
    #[serde(default)]
    pub account_id: Option<String>,
    #[serde(default)]
    pub reason: String,
}

/// Unlinks the identity from its account, with a reason
/// (`wechat_identity.unlinked`); `changed: false` when it was not linked.
#[utoipa::path(post, path = paths::API_ADMIN_IDENTITY_UNLINK, tag = "identities", request_body = UnlinkIdentity,
    params(("id" = String, Path, description = "The identity id")),
    security(("client_credentials" = ["wxfed:admin"])),
    responses((status = 200, body = Changed), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json")))]
pub async fn unlink(
    state: web::Data<AppState>,
    caller: AdminCaller,
    path: web::Path<String>,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    let input: UnlinkIdentity = body.parse()?;
    let (secrets, actor, id) = (state.secrets.clone(), caller.actor(), path.into_inner());
    let changed = db::run(&state.db, move |conn| -> Result<_, DbError> {
        Ok(db::write_transaction(conn, |conn| -> Result<bool, IdentityError> {
            let reason = identities::require_reason(&input.reason)?;
            identities::unlink(conn, &secrets, &actor, &id, input.account_id.as_deref(), Some(&reason))
        }))
    })
    .await?
    .map_err(identity_problem)?;
    Ok(ok(&Changed { changed }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProvisionIdentity {
    /// The account to link (or name it by `username`).
    #[serde(default)]
    pub account_id: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    /// A UnionID and its Open Platform ...
    #[serde(default)]
    pub open_platform: Option<String>,
    #[serde(default)]
    pub unionid: Option<String>,
    /// ... or an OpenID of a registered app.
    #[serde(default)]
    pub appid: Option<String>,
    #[serde(default)]
    pub openid: Option<String>,
    #[serde(default)]
    pub reason: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Provisioned {
    pub identity: IdentityDetail,
    /// True when the identity was new to wxfed (pre-provisioned).
    pub created: bool,
}

/// Links an account to a UnionID or an OpenID, creating the identity when
/// wxfed has never seen it (pre-provisioning: the person's first WeChat
/// login lands on this account). 201 when created, 200 when it existed.
#[utoipa::path(post, path = paths::API_ADMIN_IDENTITIES, tag = "identities", request_body = ProvisionIdentity,
    security(("client_credentials" = ["wxfed:admin"])),
    responses((status = 201, body = Provisioned), (status = 200, body = Provisioned),
        (status = 409, body = Problem, content_type = "application/problem+json")))]
pub async fn provision(
    state: web::Data<AppState>,
    caller: AdminCaller,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    let input: ProvisionIdentity = body.parse()?;
    let trimmed = |v: &Option<String>| v.as_deref().unwrap_or("").trim().to_owned();
    let external = match (&input.unionid, &input.openid) {
        (Some(_), None) => {
            ExternalId::UnionId { open_platform: trimmed(&input.open_platform), unionid: trimmed(&input.unionid) }
        }
        (None, Some(_)) => ExternalId::OpenId { appid: trimmed(&input.appid), openid: trimmed(&input.openid) },
        _ => {
            return Err(ApiError::invalid_field(
                "unionid",
                "give either unionid (with open_platform) or openid (with appid)",
            ));
        }
    };
    let (secrets, actor) = (state.secrets.clone(), caller.actor());
    let (detail, created) = db::run(&state.db, move |conn| -> Result<Result<_, Refusal>, DbError> {
        let done = db::write_transaction(conn, |conn| -> Result<(String, bool), Refusal> {
            identities::require_reason(&input.reason)?;
            let account = named_account(conn, input.account_id.as_deref(), input.username.as_deref())?;
            let (identity, created) =
                identities::link_external(conn, &secrets, &actor, &account, &external, &input.reason)?;
            Ok((identity.id, created))
        });
        Ok(match done {
            Ok((id, created)) => Ok((load_detail(conn, &id, false)?, created)),
            Err(refusal) => Err(refusal),
        })
    })
    .await??;
    let identity = detail.ok_or_else(|| ApiError::Internal("the identity vanished".into()))?;
    let location = paths::API_ADMIN_IDENTITY.replace("{id}", &identity.id);
    let body = Provisioned { identity, created };
    Ok(if created { created_response(&location, &body) } else { ok(&body) })
}

// --- merging accounts (accounts::merge) ---

/// An identity that moves in a merge.
#[derive(Debug, Serialize, ToSchema)]
pub struct MovingIdentity {
    pub id: String,
    /// Its Open Platform (or app key).
    pub platform: String,
}

/// A conflict of a merge.
#[derive(Debug, Serialize, ToSchema)]
pub struct MergeConflictView {
    /// `identity`, `phone` or `email`.
    pub field: String,
    /// The merged-away account's value (the platform for `identity`).
    pub from: String,
    /// The survivor's value.
    pub into: String,
    /// A side can settle it (`prefer_phone` / `prefer_email`); an identity
    /// conflict cannot: unlink one first.
    pub choosable: bool,
}

/// What a merge would do (the preview), or did.
#[derive(Debug, Serialize, ToSchema)]
pub struct MergePlanView {
    pub from_id: String,
    pub from_username: String,
    pub into_id: String,
    pub into_username: String,
    pub identities: Vec<MovingIdentity>,
    /// Clients whose consent moves; `consents_dropped`: the survivor has its own.
    pub consents: Vec<String>,
    pub consents_dropped: Vec<String>,
    /// Clients whose refresh-token grants are revoked.
    pub grants_revoked: Vec<String>,
    pub sessions_ended: usize,
    pub roles_added: Vec<String>,
    pub conflicts: Vec<MergeConflictView>,
    /// True when a conflict no choice can settle blocks the merge.
    pub blocked: bool,
}

impl From<Plan> for MergePlanView {
    fn from(plan: Plan) -> Self {
        let conflicts: Vec<MergeConflictView> = plan
            .conflicts
            .iter()
            .map(|c| {
                let (field, from, into) = match c {
                    Conflict::Identity { platform } => ("identity", platform.clone(), platform.clone()),
                    Conflict::Phone { from, into } => ("phone", from.clone(), into.clone()),
                    Conflict::Email { from, into } => ("email", from.clone(), into.clone()),
                };
                MergeConflictView { field: field.into(), from, into, choosable: c.choosable() }
            })
            .collect();
        Self {
            blocked: conflicts.iter().any(|c| !c.choosable),
            from_id: plan.from_id,
            from_username: plan.from_username,
            into_id: plan.into_id,
            into_username: plan.into_username,
            identities: plan.identities.into_iter().map(|(id, platform)| MovingIdentity { id, platform }).collect(),
            consents: plan.consents,
            consents_dropped: plan.consents_dropped,
            grants_revoked: plan.grants_revoked,
            sessions_ended: plan.sessions_ended,
            roles_added: plan.roles_added,
            conflicts,
        }
    }
}

fn merge_problem(error: MergeError) -> ApiError {
    match error {
        MergeError::NotFound(id) => ApiError::not_found(format!("no such account `{id}`")),
        MergeError::SameAccount => ApiError::invalid_field("into", "an account cannot be merged into itself"),
        MergeError::AlreadyMerged(name) => ApiError::conflict(
            "already_merged",
            format!("the account `{name}` was already merged into another account"),
        ),
        MergeError::ReasonRequired => reason_required(),
        MergeError::Conflicts(detail) => {
            ApiError::conflict("merge_conflicts", format!("the merge has unresolved conflicts: {detail}"))
        }
        MergeError::Db(e) => e.into(),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MergeQuery {
    /// The surviving account's id.
    into: String,
}

/// The merge preview: what moves from account `{id}` into `into`, what
/// conflicts. Changes nothing.
#[utoipa::path(get, path = paths::API_ADMIN_ACCOUNT_MERGE, tag = "identities",
    params(("id" = String, Path, description = "The account merged away"), MergeQuery),
    security(("client_credentials" = ["wxfed:admin"])),
    responses((status = 200, body = MergePlanView), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json")))]
pub async fn merge_preview(
    req: HttpRequest,
    state: web::Data<AppState>,
    _caller: AdminCaller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let MergeQuery { into } = query(&req)?;
    let from = path.into_inner();
    let plan = db::run(&state.db, move |conn| -> Result<_, DbError> { Ok(merge::plan(conn, &from, into.trim())) })
        .await?
        .map_err(merge_problem)?;
    Ok(ok(&MergePlanView::from(plan)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeAccounts {
    /// The surviving account's id.
    pub into: String,
    /// Which side's verified phone wins a conflict: `from` or `into`.
    #[serde(default)]
    pub prefer_phone: Option<String>,
    #[serde(default)]
    pub prefer_email: Option<String>,
    #[serde(default)]
    pub reason: String,
}

fn side(field: &str, value: &Option<String>) -> Result<Option<Side>, ApiError> {
    match value.as_deref().filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|e: String| ApiError::invalid_field(field, e)),
    }
}

/// Merges account `{id}` into `into` in one transaction (`user.merged`,
/// and `user.disabled` for the merged-away account), with a reason;
/// refused while a conflict is unresolved (409 `merge_conflicts`).
#[utoipa::path(post, path = paths::API_ADMIN_ACCOUNT_MERGE, tag = "identities", request_body = MergeAccounts,
    params(("id" = String, Path, description = "The account merged away")),
    security(("client_credentials" = ["wxfed:admin"])),
    responses((status = 200, body = MergePlanView), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json")))]
pub async fn merge(
    state: web::Data<AppState>,
    caller: AdminCaller,
    path: web::Path<String>,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    let input: MergeAccounts = body.parse()?;
    let prefer = Preferences {
        phone: side("prefer_phone", &input.prefer_phone)?,
        email: side("prefer_email", &input.prefer_email)?,
    };
    let (secrets, actor, from) = (state.secrets.clone(), caller.actor(), path.into_inner());
    let plan = db::run(&state.db, move |conn| -> Result<_, DbError> {
        Ok(merge::merge(conn, &secrets, &actor, &from, input.into.trim(), prefer, &input.reason))
    })
    .await?
    .map_err(merge_problem)?;
    Ok(ok(&MergePlanView::from(plan)))
}

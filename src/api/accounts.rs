//! `/api/admin/accounts`: search, read, create and change accounts, with
//! the console's domain functions (`accounts::manage`) and so its rules,
//! reasons and audit events; the actor is the calling client.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::{AdminCaller, ReadCaller};
use super::body::{JsonBody, query};
use super::problem::{ApiError, FieldError, Problem};
use super::{created, mask, ok, rfc3339};
use crate::accounts::manage::{self, ConsoleError, ManageError, NewAccount, ProfileUpdate};
use crate::accounts::password::validate_new_password;
use crate::accounts::{Account, AccountId, AccountStatus, Role};
use crate::audit::{self, Action, AuditEvent};
use crate::config::SecretString;
use crate::db::{self, DbError};
use crate::http::paths;
use crate::state::AppState;

/// Accounts per page (at most).
const PAGE_SIZE: i64 = 50;

/// An account as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountView {
    pub id: String,
    pub username: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub email_verified: bool,
    /// E.164; masked (`+861…8000`) in lists, as on the console.
    pub phone: Option<String>,
    pub phone_verified: bool,
    /// `active` or `disabled`.
    pub status: String,
    /// `admin`, `auditor`.
    pub roles: Vec<String>,
    pub has_password: bool,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl AccountView {
    pub fn of(a: Account, mask_phone: bool) -> Self {
        Self {
            id: a.id.to_string(),
            username: a.username,
            display_name: a.display_name,
            email: a.email,
            email_verified: a.email_verified,
            phone: a.phone.map(|p| if mask_phone { mask(&p) } else { p }),
            phone_verified: a.phone_verified,
            status: a.status.as_str().to_owned(),
            roles: a.roles.iter().map(|r| r.as_str().to_owned()).collect(),
            has_password: a.has_password,
            created_at: rfc3339(a.created_at),
            updated_at: rfc3339(a.updated_at),
        }
    }
}

/// One page of accounts.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountList {
    pub items: Vec<AccountView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// An account's WeChat identity, as its detail shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct LinkedIdentity {
    pub id: String,
    pub open_platform: Option<String>,
    /// Masked unless `reveal=true`.
    pub unionid: Option<String>,
    pub nickname: Option<String>,
    pub openids: Vec<super::identities::OpenIdView>,
}

/// An account with its WeChat identities.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountDetail {
    pub account: AccountView,
    pub identities: Vec<LinkedIdentity>,
    /// True when the identifiers are shown unmasked (`reveal=true`).
    pub revealed: bool,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Any identifier: a username or display-name prefix, or exactly an id,
    /// email, phone, UnionID or OpenID.
    q: Option<String>,
    /// `active` or `disabled`.
    status: Option<String>,
    /// `admin` or `auditor`.
    role: Option<String>,
    /// `true`: only accounts with a WeChat identity; `false`: only without.
    linked: Option<bool>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

fn one_of(field: &str, value: Option<String>, allowed: &[&str]) -> Result<Option<String>, ApiError> {
    match value.filter(|v| !v.is_empty()) {
        Some(v) if allowed.contains(&v.as_str()) => Ok(Some(v)),
        Some(v) => Err(ApiError::invalid_field(field, format!("`{v}` is not one of {}", allowed.join(", ")))),
        None => Ok(None),
    }
}

/// Searches accounts (keyset pagination, ordered by username).
#[utoipa::path(get, path = paths::API_ADMIN_ACCOUNTS, tag = "accounts", params(ListQuery),
    security(("client_credentials" = ["wxfed:admin"]), ("client_credentials" = ["wxfed:audit"])),
    responses((status = 200, body = AccountList)))]
pub async fn list(req: HttpRequest, state: web::Data<AppState>, caller: ReadCaller) -> Result<HttpResponse, ApiError> {
    let query: ListQuery = query(&req)?;
    let q: String = query.q.as_deref().unwrap_or("").trim().chars().take(200).collect();
    let filter = db::accounts::AccountFilter {
        status: one_of("status", query.status, &["active", "disabled"])?,
        role: one_of("role", query.role, &["admin", "auditor"])?,
        linked: query.linked,
    };
    let cursor = query.cursor.filter(|c| !c.is_empty());
    if cursor.as_ref().is_some_and(|c| c.len() > 256) {
        return Err(ApiError::invalid_field("cursor", "not a cursor of this list"));
    }
    if !caller.is_admin() {
        // An audit-only client's read is recorded, like an auditor's.
        let event =
            caller.event(AuditEvent::success(Action::AuditSearched)).with_detail("resource", "accounts").with_detail(
                "filters",
                serde_json::json!({"q": q, "status": filter.status, "role": filter.role, "linked": filter.linked}),
            );
        record(&state, event).await?;
    }
    let page = db::run(&state.db, move |conn| -> Result<_, DbError> {
        Ok(manage::search_page(conn, Some(&q), &filter, cursor.as_deref(), PAGE_SIZE)?)
    })
    .await?;
    let items = page.accounts.into_iter().map(|a| AccountView::of(a, true)).collect();
    Ok(ok(&AccountList { items, next_cursor: page.next_cursor }))
}

/// Records one audit event on its own (reads: no change to go with it).
pub(super) async fn record(state: &AppState, event: AuditEvent) -> Result<(), ApiError> {
    let secrets = state.secrets.clone();
    db::run(&state.db, move |conn| -> Result<i64, DbError> { Ok(audit::record(conn, &secrets, &event)?) }).await?;
    Ok(())
}

/// What reading one record leaves behind, the same for every detail
/// endpoint: `reveal` (unmasked identifiers) needs `wxfed:admin` and is
/// recorded as `admin.identifiers_revealed`; a read by an audit-only
/// caller is recorded as `audit.account_viewed` (category `audit_access`),
/// as an auditor's on the console. `about` names the record.
pub(super) async fn record_detail_read(
    req: &HttpRequest,
    state: &AppState,
    caller: &ReadCaller,
    reveal: bool,
    about: impl Fn(AuditEvent) -> AuditEvent,
) -> Result<(), ApiError> {
    if reveal && !caller.is_admin() {
        return Err(ApiError::InsufficientScope {
            required: super::auth::SCOPE_ADMIN,
            detail: "revealing identifiers needs the scope wxfed:admin".into(),
        });
    }
    if reveal {
        record(state, about(caller.event(AuditEvent::success(Action::AdminIdentifiersRevealed)))).await?;
    } else if !caller.is_admin() {
        let event =
            about(caller.event(AuditEvent::success(Action::AuditAccountViewed))).with_detail("page", req.path());
        record(state, event).await?;
    }
    Ok(())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RevealQuery {
    /// Show OpenIDs and UnionIDs unmasked (scope `wxfed:admin`; recorded as
    /// `admin.identifiers_revealed`).
    #[serde(default)]
    pub reveal: bool,
}

fn load_detail(conn: &mut db::DbConn, id: &str, reveal: bool) -> Result<Option<AccountDetail>, DbError> {
    let Some(account) = manage::find_by_id(conn, &AccountId::from_db(id.to_owned()))? else {
        return Ok(None);
    };
    let shown = |v: &str| if reveal { v.to_owned() } else { mask(v) };
    let mut identities = Vec::new();
    for row in db::wechat::identities_of_account(conn, id)? {
        let openids = super::identities::openid_views(conn, &row.id, reveal)?;
        identities.push(LinkedIdentity {
            id: row.id,
            open_platform: row.open_platform,
            unionid: row.unionid.as_deref().map(shown),
            nickname: row.nickname,
            openids,
        });
    }
    Ok(Some(AccountDetail { account: AccountView::of(account, false), identities, revealed: reveal }))
}

/// One account and its WeChat identities.
#[utoipa::path(get, path = paths::API_ADMIN_ACCOUNT, tag = "accounts",
    params(("id" = String, Path, description = "The account id"), RevealQuery),
    security(("client_credentials" = ["wxfed:admin"]), ("client_credentials" = ["wxfed:audit"])),
    responses((status = 200, body = AccountDetail), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: ReadCaller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let RevealQuery { reveal } = query(&req)?;
    record_detail_read(&req, &state, &caller, reveal, |event| event.with_account(id.as_str())).await?;
    let id2 = id.clone();
    let detail = db::run(&state.db, move |conn| load_detail(conn, &id2, reveal)).await?;
    let detail = detail.ok_or_else(|| ApiError::not_found(format!("no account with the id `{id}`")))?;
    Ok(ok(&detail))
}

/// What a new account starts with (no password: set one, or log in with WeChat).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAccount {
    pub username: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub email_verified: bool,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub phone_verified: bool,
}

/// Why `manage` refused, as a problem.
pub(super) fn manage_problem(error: ManageError) -> ApiError {
    match error {
        ManageError::Invalid(message) => ApiError::bad_request("invalid", message.localized()),
        ManageError::UsernameTaken(name) => ApiError::conflict(
            "username_taken",
            format!("the username `{name}` is taken (usernames are case-insensitive)"),
        ),
        ManageError::NotFound(name) => ApiError::not_found(format!("no account with the username `{name}`")),
        ManageError::Db(e) => e.into(),
    }
}

/// Why the console's account functions refused, as a problem.
pub(super) fn console_problem(error: ConsoleError) -> ApiError {
    match error {
        ConsoleError::NotFound => ApiError::not_found("no such account"),
        ConsoleError::ReasonRequired => reason_required(),
        ConsoleError::LastAdmin => ApiError::conflict("last_admin", "this would leave no active admin"),
        ConsoleError::Manage(e) => manage_problem(e),
        ConsoleError::Db(e) => e.into(),
    }
}

/// The console's rule: a reason of 1 to 500 characters.
pub(super) fn reason_required() -> ApiError {
    ApiError::BadRequest {
        code: "reason_required",
        detail: "a reason is required (1 to 500 characters)".into(),
        errors: vec![FieldError { field: "reason".into(), message: "required, 1 to 500 characters".into() }],
    }
}

/// Creates an account (`user.added`).
#[utoipa::path(post, path = paths::API_ADMIN_ACCOUNTS, tag = "accounts", request_body = CreateAccount,
    security(("client_credentials" = ["wxfed:admin"])),
    responses((status = 201, body = AccountView),
        (status = 409, body = Problem, content_type = "application/problem+json")))]
pub async fn create(state: web::Data<AppState>, caller: AdminCaller, body: JsonBody) -> Result<HttpResponse, ApiError> {
    let input: CreateAccount = body.parse()?;
    let new = NewAccount {
        username: input.username,
        display_name: input.display_name,
        email: input.email,
        email_verified: input.email_verified,
        phone: input.phone,
        phone_verified: input.phone_verified,
        roles: Vec::new(),
    };
    let (secrets, actor) = (state.secrets.clone(), caller.actor());
    let result =
        db::run(&state.db, move |conn| -> Result<_, DbError> { Ok(manage::add(conn, &secrets, &actor, &new, None)) })
            .await?;
    let account = result.map_err(manage_problem)?;
    let location = paths::API_ADMIN_ACCOUNT.replace("{id}", account.id.as_str());
    Ok(created(&location, &AccountView::of(account, false)))
}

/// The profile as it should be: every field is replaced (absent or empty
/// clears it), as the console's profile form does.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateProfile {
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub email_verified: bool,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub phone_verified: bool,
}

/// Replaces the profile (`user.profile_updated`, with before and after).
#[utoipa::path(put, path = paths::API_ADMIN_ACCOUNT_PROFILE, tag = "accounts", request_body = UpdateProfile,
    params(("id" = String, Path, description = "The account id")),
    security(("client_credentials" = ["wxfed:admin"])),
    responses((status = 200, body = AccountView),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn update_profile(
    state: web::Data<AppState>,
    caller: AdminCaller,
    path: web::Path<String>,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    let input: UpdateProfile = body.parse()?;
    let update = ProfileUpdate {
        display_name: input.display_name,
        email: input.email,
        email_verified: input.email_verified,
        phone: input.phone,
        phone_verified: input.phone_verified,
    };
    let (secrets, actor, id) = (state.secrets.clone(), caller.actor(), path.into_inner());
    let result = db::run(&state.db, move |conn| -> Result<_, DbError> {
        Ok(manage::update_profile(conn, &secrets, &actor, &id, &update))
    })
    .await?;
    Ok(ok(&AccountView::of(result.map_err(console_problem)?, false)))
}

/// Whether a change changed anything (`false`: it was already so).
#[derive(Debug, Serialize, ToSchema)]
pub struct Changed {
    pub changed: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetStatus {
    /// `active` or `disabled`.
    pub status: String,
    /// Why (required, as on the console).
    #[serde(default)]
    pub reason: String,
}

/// Enables or disables the account, with a reason; disabling ends its
/// sessions; the last active admin cannot be disabled (409 `last_admin`).
#[utoipa::path(put, path = paths::API_ADMIN_ACCOUNT_STATUS, tag = "accounts", request_body = SetStatus,
    params(("id" = String, Path, description = "The account id")),
    security(("client_credentials" = ["wxfed:admin"])),
    responses((status = 200, body = Changed),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json")))]
pub async fn set_status(
    state: web::Data<AppState>,
    caller: AdminCaller,
    path: web::Path<String>,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    let input: SetStatus = body.parse()?;
    let status = match input.status.as_str() {
        "active" => AccountStatus::Active,
        "disabled" => AccountStatus::Disabled,
        other => return Err(ApiError::invalid_field("status", format!("`{other}` is not active or disabled"))),
    };
    let (secrets, actor, id) = (state.secrets.clone(), caller.actor(), path.into_inner());
    let result = db::run(&state.db, move |conn| -> Result<_, DbError> {
        Ok(manage::set_status_by_id(conn, &secrets, &actor, &id, status, &input.reason))
    })
    .await?;
    Ok(ok(&Changed { changed: result.map_err(console_problem)? }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetRoles {
    /// The roles the account should have (`admin`, `auditor`); replaces its roles.
    pub roles: Vec<String>,
    #[serde(default)]
    pub reason: String,
}

/// Replaces the account's roles, with a reason; the admin role cannot be
/// taken from the last active admin (409 `last_admin`).
#[utoipa::path(put, path = paths::API_ADMIN_ACCOUNT_ROLES, tag = "accounts", request_body = SetRoles,
    params(("id" = String, Path, description = "The account id")),
    security(("client_credentials" = ["wxfed:admin"])),
    responses((status = 200, body = Changed),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json")))]
pub async fn set_roles(
    state: web::Data<AppState>,
    caller: AdminCaller,
    path: web::Path<String>,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    let input: SetRoles = body.parse()?;
    let mut roles = Vec::new();
    for value in &input.roles {
        roles.push(
            value
                .parse::<Role>()
                .map_err(|_| ApiError::invalid_field("roles", format!("`{value}` is not admin or auditor")))?,
        );
    }
    let (secrets, actor, id) = (state.secrets.clone(), caller.actor(), path.into_inner());
    let result = db::run(&state.db, move |conn| -> Result<_, DbError> {
        Ok(manage::set_roles_by_id(conn, &secrets, &actor, &id, &roles, &input.reason))
    })
    .await?;
    Ok(ok(&Changed { changed: result.map_err(console_problem)? }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetPassword {
    /// `generate`: a one-time password, returned once; `set`: `password`.
    pub mode: String,
    #[serde(default)]
    pub password: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PasswordReset {
    /// The generated password (mode `generate` only): shown here once,
    /// never stored in clear or logged.
    pub one_time_password: Option<String>,
}

/// Sets a new password and ends the account's sessions (`user.password_set`).
#[utoipa::path(post, path = paths::API_ADMIN_ACCOUNT_PASSWORD, tag = "accounts", request_body = ResetPassword,
    params(("id" = String, Path, description = "The account id")),
    security(("client_credentials" = ["wxfed:admin"])),
    responses((status = 200, body = PasswordReset),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn reset_password(
    state: web::Data<AppState>,
    caller: AdminCaller,
    path: web::Path<String>,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    let input: ResetPassword = body.parse()?;
    let (password, generated) = match input.mode.as_str() {
        "generate" => (crate::secrets::random_token().chars().take(20).collect::<String>(), true),
        "set" => {
            let password = input.password.unwrap_or_default();
            validate_new_password(&password).map_err(|why| ApiError::invalid_field("password", why.localized()))?;
            (password, false)
        }
        other => return Err(ApiError::invalid_field("mode", format!("`{other}` is not generate or set"))),
    };
    let id = path.into_inner();
    // 404 before the (slow) hash.
    let id2 = id.clone();
    let exists = db::run(&state.db, move |conn| -> Result<_, DbError> {
        Ok(manage::find_by_id(conn, &AccountId::from_db(id2))?)
    })
    .await?;
    if exists.is_none() {
        return Err(console_problem(ConsoleError::NotFound));
    }
    let hash = state.passwords.hash(SecretString::new(password.clone())).await?;
    let (secrets, actor) = (state.secrets.clone(), caller.actor());
    let result = db::run(&state.db, move |conn| -> Result<_, DbError> {
        Ok(manage::set_password_by_id(conn, &secrets, &actor, &id, &hash, generated))
    })
    .await?;
    result.map_err(console_problem)?;
    Ok(ok(&PasswordReset { one_time_password: generated.then_some(password) }))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeSessions {
    /// One session (its id hash, as the console lists it); absent: all.
    #[serde(default)]
    pub session: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionsRevoked {
    pub sessions_ended: usize,
}

/// Ends one or all of the account's sessions (`user.sessions_revoked`).
#[utoipa::path(post, path = paths::API_ADMIN_ACCOUNT_SESSIONS_REVOKE, tag = "accounts", request_body = RevokeSessions,
    params(("id" = String, Path, description = "The account id")),
    security(("client_credentials" = ["wxfed:admin"])),
    responses((status = 200, body = SessionsRevoked), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn revoke_sessions(
    state: web::Data<AppState>,
    caller: AdminCaller,
    path: web::Path<String>,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    let input: RevokeSessions = body.parse()?;
    let (secrets, actor, id) = (state.secrets.clone(), caller.actor(), path.into_inner());
    let result = db::run(&state.db, move |conn| -> Result<_, DbError> {
        Ok(manage::revoke_sessions(conn, &secrets, &actor, &id, input.session.as_deref()))
    })
    .await?;
    Ok(ok(&SessionsRevoked { sessions_ended: result.map_err(console_problem)? }))
}

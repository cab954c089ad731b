//! `/admin/clients`, `/admin/wechat-apps`, `/admin/keys`, `/admin/settings`
//! (issue 8 §6). Handlers call the same domain functions as `wxfed client`,
//! `wxfed wechat app` and `wxfed keys`: `oidc::clients`, `wechat::apps`,
//! `oidc::keys`. Secrets (a new client secret) are shown once, on the
//! response of the action that made them, never stored in clear or logged.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::Admin;
use super::form::{self, AdminForm, ConsoleForm, Fields, SensitiveForm};
use super::text::{filters, t};
use super::views;
use crate::config::{MasterKeySource, SecretString, Settings};
use crate::db::{self, DatabaseTarget, DbError};
use crate::error::AppError;
use crate::http::{csrf, render};
use crate::oidc::clients::{self, Client, ClientError, ClientUpdate, GrantType, KNOWN_SCOPES, NewClient};
use crate::oidc::keys;
use crate::oidc::signing::SigningAlgorithm;
use crate::state::AppState;
use crate::wechat::apps::{self, AppKind, NewApp, WechatApp};

const GRANTS: [GrantType; 4] =
    [GrantType::AuthorizationCode, GrantType::RefreshToken, GrantType::ClientCredentials, GrantType::TokenExchange];

/// One client as the list and the detail page show it.
pub struct ClientView {
    pub client_id: String,
    pub name: String,
    pub public: bool,
    pub first_party: bool,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub scopes: Vec<String>,
    pub id_token_alg: String,
    pub access_token_alg: String,
    pub wechat_app: String,
    pub host_app: bool,
    pub host_for: String,
    pub trust_host: String,
    pub backchannel_logout_uri: String,
    pub backchannel_logout_session_required: bool,
    pub created: String,
}

impl ClientView {
    fn of(c: &Client) -> Self {
        Self {
            client_id: c.client_id.clone(),
            name: c.name.clone(),
            public: c.public,
            first_party: c.first_party,
            redirect_uris: c.redirect_uris.clone(),
            post_logout_redirect_uris: c.post_logout_redirect_uris.clone(),
            grant_types: c.grant_types.iter().map(|g| g.as_str().to_owned()).collect(),
            scopes: c.scopes.clone(),
            id_token_alg: c.id_token_signing_alg.as_str().to_owned(),
            access_token_alg: c.access_token_signing_alg.as_str().to_owned(),
            wechat_app: c.wechat_app.clone().unwrap_or_default(),
            host_app: c.host_app,
            host_for: c.host_for.join(" "),
            trust_host: c.trust_host.clone().unwrap_or_default(),
            backchannel_logout_uri: c.backchannel_logout_uri.clone().unwrap_or_default(),
            backchannel_logout_session_required: c.backchannel_logout_session_required,
            created: views::when(c.created_at.naive_utc()),
        }
    }

    pub fn has_grant(&self, grant: &&str) -> bool {
        self.grant_types.iter().any(|g| g == grant)
    }

    pub fn has_scope(&self, scope: &&str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

/// What the client forms offer to choose from.
pub struct Choices {
    pub grants: Vec<&'static str>,
    pub scopes: Vec<&'static str>,
    pub algs: Vec<&'static str>,
    /// (appid, name)
    pub apps: Vec<(String, String)>,
}

fn choices(apps: &[WechatApp]) -> Choices {
    Choices {
        grants: GRANTS.iter().map(|g| g.as_str()).collect(),
        scopes: KNOWN_SCOPES.to_vec(),
        algs: SigningAlgorithm::ALL.iter().map(|a| a.as_str()).collect(),
        apps: apps.iter().map(|a| (a.appid.clone(), a.name.clone())).collect(),
    }
}

#[derive(Template)]
#[template(path = "admin/clients.html")]
pub struct ClientsPage {
    pub nav: bool,
    pub me: String,
    pub csrf_token: String,
    pub rows: Vec<ClientView>,
    pub choices: Choices,
    pub notice: Option<&'static str>,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "admin/client.html")]
pub struct ClientPage {
    pub nav: bool,
    pub me: String,
    pub csrf_token: String,
    pub c: ClientView,
    pub choices: Choices,
    pub notice: Option<&'static str>,
    pub error: Option<String>,
    /// A new secret, on the response that made it only.
    pub secret: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct DoneQuery {
    done: Option<String>,
}

fn done_notice(query: &DoneQuery) -> Option<&'static str> {
    match query.done.as_deref() {
        Some("removed") => Some("clients-notice-removed"),
        Some(_) => Some("admin-done"),
        None => None,
    }
}

fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther().insert_header(("Location", location.to_owned())).finish()
}

/// A refusal of the client domain: its status and message.
fn client_refusal(error: ClientError) -> Result<(StatusCode, String), AppError> {
    match error {
        ClientError::Invalid(why) => Ok((StatusCode::BAD_REQUEST, why.localized())),
        ClientError::NotFound(_) => Err(AppError::NotFound),
        ClientError::Db(e) => Err(AppError::from(DbError::Query(e))),
    }
}

// --- clients ---

async fn clients_page(
    req: &HttpRequest,
    state: &AppState,
    admin: &Admin,
    status: StatusCode,
    notice: Option<&'static str>,
    error: Option<String>,
) -> Result<HttpResponse, AppError> {
    let (list, apps) =
        db::run(&state.db, |conn| -> Result<_, DbError> { Ok((clients::list(conn)?, apps::list(conn)?)) }).await?;
    let (csrf_token, builder) = csrf::form_page(req, state, status);
    let page = ClientsPage {
        nav: true,
        me: admin.account.username.clone(),
        csrf_token,
        rows: list.iter().map(ClientView::of).collect(),
        choices: choices(&apps),
        notice,
        error,
    };
    Ok(render::page_with(builder, &page))
}

pub async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    admin: Admin,
    query: web::Query<DoneQuery>,
) -> Result<HttpResponse, AppError> {
    clients_page(&req, &state, &admin, StatusCode::OK, done_notice(&query), None).await
}

struct ClientNotice {
    status: StatusCode,
    notice: Option<&'static str>,
    error: Option<String>,
    secret: Option<String>,
}

impl Default for ClientNotice {
    fn default() -> Self {
        Self { status: StatusCode::OK, notice: None, error: None, secret: None }
    }
}

async fn client_page(
    req: &HttpRequest,
    state: &AppState,
    admin: &Admin,
    client_id: String,
    notice: ClientNotice,
) -> Result<HttpResponse, AppError> {
    let (client, apps) = db::run(&state.db, move |conn| -> Result<_, DbError> {
        Ok((clients::find(conn, &client_id)?, apps::list(conn)?))
    })
    .await?;
    let Some(client) = client else {
        return Err(AppError::NotFound);
    };
    let (csrf_token, builder) = csrf::form_page(req, state, notice.status);
    let page = ClientPage {
        nav: true,
        me: admin.account.username.clone(),
        csrf_token,
        c: ClientView::of(&client),
        choices: choices(&apps),
        notice: notice.notice,
        error: notice.error,
        secret: notice.secret,
    };
    Ok(render::page_with(builder, &page))
}

pub async fn detail(
    req: HttpRequest,
    state: web::Data<AppState>,
    admin: Admin,
    path: web::Path<String>,
    query: web::Query<DoneQuery>,
) -> Result<HttpResponse, AppError> {
    let notice = ClientNotice { notice: done_notice(&query), ..ClientNotice::default() };
    client_page(&req, &state, &admin, path.into_inner(), notice).await
}

/// URIs, appids: one per line or separated by spaces.
fn words(value: &str) -> Vec<String> {
    value.split_whitespace().map(str::to_owned).collect()
}

/// The algorithm chosen in `name`; `None` when the field is absent.
fn alg(fields: &Fields, name: &str) -> Result<Option<SigningAlgorithm>, AppError> {
    match form::get(fields, name) {
        "" => Ok(None),
        value => value.parse().map(Some).map_err(|_| AppError::BadRequest(t("clients-error-bad-alg"))),
    }
}

fn grants(fields: &Fields) -> Result<Vec<GrantType>, AppError> {
    form::all(fields, "grant_type")
        .into_iter()
        .map(|g| g.parse().map_err(|_| AppError::BadRequest(t("clients-error-bad-grant"))))
        .collect()
}

fn optional(fields: &Fields, name: &str) -> Option<String> {
    Some(form::get(fields, name).trim()).filter(|v| !v.is_empty()).map(str::to_owned)
}

fn checked(fields: &Fields, name: &str) -> bool {
    form::get(fields, name) == "on"
}

/// Registers a client; the response shows its secret, once.
pub async fn add(req: HttpRequest, state: web::Data<AppState>, form: AdminForm) -> Result<HttpResponse, AppError> {
    let ConsoleForm { admin, fields } = form;
    let new = NewClient {
        name: form::get(&fields, "name").to_owned(),
        redirect_uris: words(form::get(&fields, "redirect_uris")),
        post_logout_redirect_uris: words(form::get(&fields, "post_logout_redirect_uris")),
        public: checked(&fields, "public"),
        first_party: checked(&fields, "first_party"),
        grant_types: grants(&fields)?,
        scopes: form::all(&fields, "scope").into_iter().map(str::to_owned).collect(),
        id_token_signing_alg: alg(&fields, "id_token_alg")?.unwrap_or(SigningAlgorithm::Rs256),
        always_issue_refresh_token: checked(&fields, "refresh_tokens"),
        wechat_app: optional(&fields, "wechat_app"),
        host_app: checked(&fields, "host_app"),
        trust_host: optional(&fields, "trust_host"),
        access_token_signing_alg: alg(&fields, "access_token_alg")?.unwrap_or(SigningAlgorithm::Rs256),
        host_for: words(form::get(&fields, "host_for")),
        backchannel_logout_uri: optional(&fields, "backchannel_logout_uri"),
        backchannel_logout_session_required: checked(&fields, "backchannel_logout_session_required"),
    };
    let (secrets, actor) = (state.secrets.clone(), admin.actor());
    let result =
        db::run(&state.db, move |conn| -> Result<_, DbError> { Ok(clients::register(conn, &secrets, &actor, &new)) })
            .await?;
    match result {
        Ok((client, secret)) => {
            let notice = ClientNotice { notice: Some("clients-notice-added"), secret, ..ClientNotice::default() };
            client_page(&req, &state, &admin, client.client_id, notice).await
        }
        Err(error) => {
            let (status, message) = client_refusal(error)?;
            clients_page(&req, &state, &admin, status, None, Some(message)).await
        }
    }
}

/// Edits a client: the form carries every setting, so each replaces the
/// registered one (as `wxfed client update` with every option given).
pub async fn update(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: AdminForm,
) -> Result<HttpResponse, AppError> {
    let (client_id, ConsoleForm { admin, fields }) = (path.into_inner(), form);
    let change = ClientUpdate {
        name: Some(form::get(&fields, "name").to_owned()),
        redirect_uris: Some(words(form::get(&fields, "redirect_uris"))),
        post_logout_redirect_uris: Some(words(form::get(&fields, "post_logout_redirect_uris"))),
        grant_types: Some(grants(&fields)?),
        scopes: Some(form::all(&fields, "scope").into_iter().map(str::to_owned).collect()),
        first_party: Some(checked(&fields, "first_party")),
        id_token_signing_alg: alg(&fields, "id_token_alg")?,
        access_token_signing_alg: alg(&fields, "access_token_alg")?,
        wechat_app: Some(optional(&fields, "wechat_app")),
        host_app: Some(checked(&fields, "host_app")),
        host_for: Some(words(form::get(&fields, "host_for"))),
        trust_host: Some(optional(&fields, "trust_host")),
        backchannel_logout_uri: Some(optional(&fields, "backchannel_logout_uri")),
        backchannel_logout_session_required: Some(checked(&fields, "backchannel_logout_session_required")),
        ..ClientUpdate::default()
    };
    let (secrets, actor, id) = (state.secrets.clone(), admin.actor(), client_id.clone());
    let result = db::run(&state.db, move |conn| -> Result<_, DbError> {
        Ok(clients::update(conn, &secrets, &actor, &id, &change))
    })
    .await?;
    match result {
        Ok(_) => Ok(see_other(&format!("/admin/clients/{client_id}?done=1"))),
        Err(error) => {
            let (status, message) = client_refusal(error)?;
            let notice = ClientNotice { status, error: Some(message), ..ClientNotice::default() };
            client_page(&req, &state, &admin, client_id, notice).await
        }
    }
}

/// Rotates the secret (sensitive): the new one is on this response only.
pub async fn rotate_secret(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: SensitiveForm,
) -> Result<HttpResponse, AppError> {
    let (client_id, admin) = (path.into_inner(), form.admin);
    let (secrets, actor, id) = (state.secrets.clone(), admin.actor(), client_id.clone());
    let result = db::run(&state.db, move |conn| -> Result<_, DbError> {
        Ok(clients::rotate_secret(conn, &secrets, &actor, &id))
    })
    .await?;
    let notice = match result {
        Ok(secret) => {
            ClientNotice { notice: Some("clients-notice-rotated"), secret: Some(secret), ..Default::default() }
        }
        Err(error) => {
            let (status, message) = client_refusal(error)?;
            ClientNotice { status, error: Some(message), ..Default::default() }
        }
    };
    client_page(&req, &state, &admin, client_id, notice).await
}

/// Removes a client (sensitive) with every grant and token issued to it.
pub async fn remove(
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: SensitiveForm,
) -> Result<HttpResponse, AppError> {
    let (client_id, admin) = (path.into_inner(), form.admin);
    let (secrets, actor) = (state.secrets.clone(), admin.actor());
    let result = db::run(&state.db, move |conn| -> Result<_, DbError> {
        Ok(clients::remove(conn, &secrets, &actor, &client_id))
    })
    .await?;
    match result {
        Ok(()) => Ok(see_other("/admin/clients?done=removed")),
        Err(error) => Err(AppError::BadRequest(client_refusal(error)?.1)),
    }
}

// --- WeChat apps ---

pub struct AppView {
    pub appid: String,
    pub kind: &'static str,
    pub name: String,
    pub open_platform: String,
    pub redirect_domain: String,
    pub created: String,
}

#[derive(Template)]
#[template(path = "admin/wechat_apps.html")]
pub struct WechatAppsPage {
    pub nav: bool,
    pub me: String,
    pub csrf_token: String,
    pub rows: Vec<AppView>,
    /// (value, message id)
    pub kinds: Vec<(&'static str, &'static str)>,
    pub notice: Option<&'static str>,
    pub error: Option<String>,
}

fn kind_message(kind: AppKind) -> &'static str {
    match kind {
        AppKind::MiniProgram => "clients-kind-miniprogram",
        AppKind::OfficialAccount => "clients-kind-official-account",
        AppKind::Website => "clients-kind-website",
        AppKind::MobileApp => "clients-kind-mobile-app",
    }
}

async fn apps_page(
    req: &HttpRequest,
    state: &AppState,
    admin: &Admin,
    status: StatusCode,
    notice: Option<&'static str>,
    error: Option<String>,
) -> Result<HttpResponse, AppError> {
    let list = db::run(&state.db, |conn| -> Result<_, DbError> { Ok(apps::list(conn)?) }).await?;
    let (csrf_token, builder) = csrf::form_page(req, state, status);
    let rows = list
        .into_iter()
        .map(|a| AppView {
            kind: kind_message(a.kind),
            appid: a.appid,
            name: a.name,
            open_platform: a.open_platform.unwrap_or_default(),
            redirect_domain: a.redirect_domain.unwrap_or_default(),
            created: views::when(a.created_at.naive_utc()),
        })
        .collect();
    let kinds = [AppKind::MiniProgram, AppKind::OfficialAccount, AppKind::Website, AppKind::MobileApp]
        .iter()
        .map(|k| (k.as_str(), kind_message(*k)))
        .collect();
    let page = WechatAppsPage { nav: true, me: admin.account.username.clone(), csrf_token, rows, kinds, notice, error };
    Ok(render::page_with(builder, &page))
}

pub async fn wechat_apps(
    req: HttpRequest,
    state: web::Data<AppState>,
    admin: Admin,
    query: web::Query<DoneQuery>,
) -> Result<HttpResponse, AppError> {
    let notice = query.done.is_some().then_some("admin-done");
    apps_page(&req, &state, &admin, StatusCode::OK, notice, None).await
}

fn app_refusal(error: apps::AppError) -> Result<(StatusCode, String), AppError> {
    match error {
        apps::AppError::Invalid(why) => Ok((StatusCode::BAD_REQUEST, why)),
        apps::AppError::Exists(_) => Ok((StatusCode::CONFLICT, t("clients-error-app-exists"))),
        apps::AppError::InUse { clients, .. } => Ok((
            StatusCode::CONFLICT,
            crate::i18n::t_args("clients-error-app-in-use", &[("clients", clients.join(", ").into())]),
        )),
        apps::AppError::NotFound(_) => Err(AppError::NotFound),
        e @ apps::AppError::Sealed(_) => Err(AppError::Internal(e.to_string())),
        apps::AppError::Db(e) => Err(AppError::from(DbError::Query(e))),
    }
}

/// Runs a WeChat app change; redirects on success, shows the refusal on
/// the list page otherwise.
async fn apply_app(
    req: &HttpRequest,
    state: &AppState,
    admin: &Admin,
    change: impl FnOnce(&mut db::DbConn) -> Result<(), apps::AppError> + Send + 'static,
) -> Result<HttpResponse, AppError> {
    let result = db::run(&state.db, move |conn| -> Result<_, DbError> { Ok(change(conn)) }).await?;
    match result {
        Ok(()) => Ok(see_other("/admin/wechat-apps?done=1")),
        Err(error) => {
            let (status, message) = app_refusal(error)?;
            apps_page(req, state, admin, status, None, Some(message)).await
        }
    }
}

/// Registers a WeChat app with its AppSecret (stored sealed, never shown).
pub async fn add_app(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: SensitiveForm,
) -> Result<HttpResponse, AppError> {
    let ConsoleForm { admin, fields } = form;
    let Some(kind) = AppKind::from_db(form::get(&fields, "kind")) else {
        return Err(AppError::BadRequest(t("clients-error-bad-kind")));
    };
    let new = NewApp {
        appid: form::get(&fields, "appid").trim().to_owned(),
        kind,
        name: form::get(&fields, "name").to_owned(),
        open_platform: optional(&fields, "open_platform"),
        redirect_domain: optional(&fields, "redirect_domain"),
        secret: SecretString::new(form::get(&fields, "secret").trim()),
    };
    let (secrets, actor) = (state.secrets.clone(), admin.actor());
    apply_app(&req, &state, &admin, move |conn| apps::register(conn, &secrets, &actor, &new).map(|_| ())).await
}

pub async fn rotate_app_secret(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: SensitiveForm,
) -> Result<HttpResponse, AppError> {
    let (appid, ConsoleForm { admin, fields }) = (path.into_inner(), form);
    let secret = SecretString::new(form::get(&fields, "secret").trim());
    let (secrets, actor) = (state.secrets.clone(), admin.actor());
    apply_app(&req, &state, &admin, move |conn| apps::rotate_secret(conn, &secrets, &actor, &appid, &secret)).await
}

/// Removes a WeChat app; refused (409) while a client uses it.
pub async fn remove_app(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: SensitiveForm,
) -> Result<HttpResponse, AppError> {
    let (appid, admin) = (path.into_inner(), form.admin);
    let (secrets, actor) = (state.secrets.clone(), admin.actor());
    apply_app(&req, &state, &admin, move |conn| apps::remove(conn, &secrets, &actor, &appid)).await
}

// --- signing keys ---

pub struct KeyView {
    pub kid: String,
    pub alg: String,
    pub state: &'static str,
    pub created: String,
    pub signs_from: String,
    pub retired: String,
    pub published_until: String,
}

#[derive(Template)]
#[template(path = "admin/keys.html")]
pub struct KeysPage {
    pub nav: bool,
    pub me: String,
    pub csrf_token: String,
    pub rows: Vec<KeyView>,
    pub notice: Option<&'static str>,
}

/// `keys::list`'s status, as a message id.
fn key_state(status: &str) -> &'static str {
    match status {
        "published, not yet signing" => "clients-key-pending",
        "active" => "clients-key-active",
        "active (until its successor signs)" => "clients-key-retiring",
        "retired (still published)" => "clients-key-retired",
        _ => "clients-key-expired",
    }
}

fn short_time(rfc3339: Option<String>) -> String {
    rfc3339
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
        .map(|t| views::when(t.naive_utc()))
        .unwrap_or_default()
}

pub async fn keys_page(
    req: HttpRequest,
    state: web::Data<AppState>,
    admin: Admin,
    query: web::Query<DoneQuery>,
) -> Result<HttpResponse, AppError> {
    let list = db::run(&state.db, |conn| -> Result<_, DbError> { Ok(keys::list(conn)?) }).await?;
    let rows = list
        .into_iter()
        .map(|k| KeyView {
            state: key_state(k.status),
            kid: k.kid,
            alg: k.alg,
            created: short_time(Some(k.created_at)),
            signs_from: short_time(k.signs_from),
            retired: short_time(k.retired_at),
            published_until: short_time(k.published_until),
        })
        .collect();
    let (csrf_token, builder) = csrf::form_page(&req, &state, StatusCode::OK);
    let notice = query.done.is_some().then_some("clients-notice-keys-rotated");
    let page = KeysPage { nav: true, me: admin.account.username, csrf_token, rows, notice };
    Ok(render::page_with(builder, &page))
}

/// Rotates every algorithm's key (sensitive), exactly as `wxfed keys
/// rotate`: the new keys are published now and sign after the publication
/// lead, so relying parties' cached JWKS already hold them.
pub async fn rotate_keys(state: web::Data<AppState>, form: SensitiveForm) -> Result<HttpResponse, AppError> {
    let settings = state.settings.clone();
    let keep = chrono::Duration::seconds(i64::try_from(settings.tokens.longest_signed_secs()).unwrap_or(3600) + 300);
    let lead = keys::publication_lead(settings.key_reload_secs);
    let (secrets, actor) = (state.secrets.clone(), form.admin.actor());
    let st = state.clone();
    let rotated = db::run(&state.db, move |conn| -> Result<Result<(), String>, DbError> {
        if let Err(error) = keys::rotate(conn, &secrets, &actor, &SigningAlgorithm::ALL, lead, keep) {
            return Ok(Err(error.to_string()));
        }
        // Publish the new keys from this instance at once; others pick them
        // up at their next reload.
        if let Err(error) = st.keys.reload(conn, &secrets) {
            tracing::warn!(%error, "reloading the keys after a rotation failed");
        }
        Ok(Ok(()))
    })
    .await?;
    rotated.map_err(AppError::Internal)?;
    Ok(see_other("/admin/keys?done=1"))
}

// --- settings ---

#[derive(Template)]
#[template(path = "admin/settings.html")]
pub struct SettingsPage {
    pub nav: bool,
    pub me: String,
    /// (name, value), secrets redacted.
    pub rows: Vec<(String, String)>,
}

/// `postgres://user:password@host/db` → `postgres://***@host/db`: the
/// credentials in a database URL are a secret.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}://***{}", &url[..scheme], &url[at..]),
        _ => url.to_owned(),
    }
}

/// The effective settings, every secret (the master key, the database
/// password) replaced by a marker.
pub fn effective_settings(s: &Settings) -> Vec<(String, String)> {
    let redacted = t("clients-redacted");
    let database = match &s.database {
        DatabaseTarget::Postgres(url) => redact_url(url),
        DatabaseTarget::Sqlite(path) => format!("sqlite://{}", path.display()),
    };
    let master_key = match &s.master_key {
        MasterKeySource::Value(_) => redacted,
        MasterKeySource::File(path) | MasterKeySource::GeneratedFile(path) => {
            format!("{} {}", path.display(), redacted)
        }
    };
    let l = &s.request_limits;
    let tk = &s.tokens;
    let rows: Vec<(&str, String)> = vec![
        ("issuer", s.issuer.clone()),
        ("bind", s.bind.to_string()),
        ("data_dir", s.data_dir.display().to_string()),
        ("database_url", database),
        ("database_pool_size", s.database_pool_size.to_string()),
        ("master_key", master_key),
        ("default_locale", s.default_locale.tag().to_owned()),
        ("admin_reauth_secs", s.admin_reauth_secs.to_string()),
        ("backchannel_logout_timeout_ms", s.backchannel_logout.timeout_ms.to_string()),
        (
            "backchannel_logout_retry_secs",
            s.backchannel_logout.retry_delays_secs.iter().map(ToString::to_string).collect::<Vec<_>>().join(","),
        ),
        ("session_idle_timeout_secs", s.session_idle_timeout_secs.to_string()),
        ("session_max_age_secs", s.session_max_age_secs.to_string()),
        ("access_token_secs", tk.access_token_secs.to_string()),
        ("id_token_secs", tk.id_token_secs.to_string()),
        ("refresh_token_secs", tk.refresh_token_secs.to_string()),
        ("authorization_code_secs", tk.authorization_code_secs.to_string()),
        ("refresh_reuse_grace_secs", tk.refresh_reuse_grace_secs.to_string()),
        ("key_reload_secs", s.key_reload_secs.to_string()),
        ("audit_checkpoint_secs", s.audit_checkpoint_secs.to_string()),
        ("login_max_failures_per_user_ip", s.login_max_failures_per_user_ip.to_string()),
        ("login_max_failures_per_ip", s.login_max_failures_per_ip.to_string()),
        ("login_block_secs", s.login_block_secs.to_string()),
        ("login_account_slowdown_after", s.login_account_slowdown_after.to_string()),
        ("login_account_max_delay_secs", s.login_account_max_delay_secs.to_string()),
        ("wechat_api_base", s.wechat.api_base.clone()),
        ("wechat_open_base", s.wechat.open_base.clone()),
        (
            "wechat_unlinked",
            serde_json::to_value(s.wechat.unlinked)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
        ),
        ("wechat_timeout_ms", s.wechat.timeout_ms.to_string()),
        ("wechat_calls_per_client_per_minute", s.wechat_calls_per_client_per_minute.to_string()),
        ("wechat_calls_per_ip_per_minute", s.wechat_calls_per_ip_per_minute.to_string()),
        ("password_hash_concurrency", s.password_hash_concurrency.to_string()),
        ("trusted_proxies", s.trusted_proxies.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")),
        ("client_request_timeout_ms", l.client_request_timeout_ms.to_string()),
        ("body_timeout_ms", l.body_timeout_ms.to_string()),
        ("max_connections_per_ip", l.max_connections_per_ip.to_string()),
        ("shutdown_timeout_secs", s.shutdown_timeout_secs.to_string()),
        ("workers", s.workers.to_string()),
        ("log_format", format!("{:?}", s.log_format).to_lowercase()),
        ("log_level", s.log_level.clone()),
    ];
    rows.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

pub async fn settings_page(state: web::Data<AppState>, admin: Admin) -> Result<HttpResponse, AppError> {
    let page = SettingsPage { nav: true, me: admin.account.username, rows: effective_settings(&state.settings) };
    Ok(render::page(StatusCode::OK, &page))
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn database_credentials_are_redacted() {
        assert_eq!(redact_url("postgres://wx:s3cret@db:5432/wxfed"), "postgres://***@db:5432/wxfed");
        assert_eq!(redact_url("postgres://db/wxfed"), "postgres://db/wxfed");
    }
}

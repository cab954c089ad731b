//! The management API (issue 12 §3): JSON under `/api/admin` for
//! automation, described by an OpenAPI 3.1 document generated from these
//! handlers and types (utoipa) at `GET /api/admin/openapi.json`.
//!
//! Callers are confidential clients with a `client_credentials` token of
//! scope `wxfed:admin` or `wxfed:audit` ([`auth`]). Handlers are thin, as
//! the console's: they call the console's domain functions
//! (`accounts::manage`, `accounts::merge`, `wechat::identities`), so the
//! rules, the required reasons and the audit events are the console's;
//! the actor is `client:<id>`. Errors are RFC 9457 problem details
//! ([`problem`]). Lists page with a keyset `cursor` (the previous page's
//! `next_cursor`), never OFFSET.
//!
//! Which scope reaches what: `wxfed:admin` every operation; `wxfed:audit`
//! only the GETs (today: reading accounts and identities; audit search
//! and export, clients, WeChat apps and import are not offered yet, see
//! docs/management-api.md). Every read by an audit-only client is
//! recorded (category `audit_access`), as an auditor's on the console.

pub mod accounts;
pub mod auth;
pub mod body;
pub mod identities;
pub mod problem;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::OpenApi;
use utoipa::openapi::security::{ClientCredentials, Flow, OAuth2, Scopes, SecurityScheme};

use crate::http::endpoint::endpoint;
use crate::http::paths;
use crate::state::AppState;
use problem::ApiError;

/// Every management API path and its handler (the route table's part for
/// `/api/admin`; `startup::routes_table` calls this).
pub fn routes(cfg: &mut web::ServiceConfig) {
    let api = |path: &str| endpoint(path).problem_errors();
    cfg.service(api(paths::API_ADMIN_OPENAPI).get(openapi_json))
        .service(api(paths::API_ADMIN_ACCOUNTS).get(accounts::list).post(accounts::create))
        .service(api(paths::API_ADMIN_ACCOUNT).get(accounts::get))
        .service(api(paths::API_ADMIN_ACCOUNT_PROFILE).put(accounts::update_profile))
        .service(api(paths::API_ADMIN_ACCOUNT_STATUS).put(accounts::set_status))
        .service(api(paths::API_ADMIN_ACCOUNT_ROLES).put(accounts::set_roles))
        .service(api(paths::API_ADMIN_ACCOUNT_PASSWORD).post(accounts::reset_password))
        .service(api(paths::API_ADMIN_ACCOUNT_SESSIONS_REVOKE).post(accounts::revoke_sessions))
        .service(api(paths::API_ADMIN_ACCOUNT_MERGE).get(identities::merge_preview).post(identities::merge))
        .service(api(paths::API_ADMIN_IDENTITIES).get(identities::list).post(identities::provision))
        .service(api(paths::API_ADMIN_IDENTITY).get(identities::get))
        .service(api(paths::API_ADMIN_IDENTITY_LINK).post(identities::link))
        .service(api(paths::API_ADMIN_IDENTITY_UNLINK).post(identities::unlink))
        // Anything else under /api/admin: a problem, not an HTML page.
        .route(paths::API_ADMIN_ANY, web::to(unknown));
}

/// The OpenAPI document's static part; [`document`] adds the server and
/// the token endpoint, which depend on the issuer.
#[derive(OpenApi)]
#[openapi(
    info(title = "wxfed management API", description = "Accounts, WeChat identities, import, clients, WeChat apps and the audit trail of a wxfed instance. Authenticate with an access token from `grant_type=client_credentials` carrying scope `wxfed:admin` (everything) or `wxfed:audit` (read-only). Errors are RFC 9457 problem details."),
    paths(
        accounts::list, accounts::create, accounts::get, accounts::update_profile, accounts::set_status,
        accounts::set_roles, accounts::reset_password, accounts::revoke_sessions,
        identities::list, identities::provision, identities::get, identities::link, identities::unlink,
        identities::merge_preview, identities::merge,
    ),
    components(schemas(problem::Problem, problem::FieldError)),
    tags(
        (name = "accounts", description = "Accounts: search, profile, status, roles, password, sessions"),
        (name = "identities", description = "WeChat identities: search, link, unlink, pre-provision; merging accounts"),
    )
)]
pub struct ApiDoc;

/// The whole document for this instance: the issuer as the server, the
/// token endpoint in the client-credentials security scheme.
pub fn document(issuer: &str) -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    doc.servers = Some(vec![utoipa::openapi::Server::new(issuer.trim_end_matches('/'))]);
    let token_url = format!("{}{}", issuer.trim_end_matches('/'), paths::TOKEN);
    let scopes = Scopes::from_iter([
        (auth::SCOPE_ADMIN, "every operation of the management API"),
        (
            auth::SCOPE_AUDIT,
            "the read-only operations (audit search and export, reading accounts, identities, clients, apps)",
        ),
    ]);
    let scheme = SecurityScheme::OAuth2(OAuth2::with_description(
        [Flow::ClientCredentials(ClientCredentials::new(token_url, scopes))],
        "An access token from grant_type=client_credentials, sent as `Authorization: Bearer`.",
    ));
    doc.components
        .get_or_insert_with(Default::default)
        .security_schemes
        .insert("client_credentials".to_owned(), scheme.into());
    for item in doc.paths.paths.values_mut() {
        for op in
            [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch].into_iter().flatten()
        {
            // Handlers of different resources share names (`list`, `get`):
            // the operation id carries the tag, so it is unique (OpenAPI
            // 3.1 §4.8.10.1) and a generated client's method names read well.
            if let (Some(id), Some(tag)) = (&op.operation_id, op.tags.as_ref().and_then(|t| t.first())) {
                op.operation_id = Some(format!("{tag}_{id}"));
            }
            let has_body = op.request_body.is_some();
            complete_responses(&mut op.responses, has_body);
        }
    }
    doc
}

/// Every operation can answer with these problems (a bad query or body,
/// no or a bad token, a missing scope, an outage, a fault); they are
/// added once here rather than on every handler. Responses the handler
/// documented without a description get the status's name (OpenAPI 3.1
/// §4.8.17.1 requires one).
fn complete_responses(responses: &mut utoipa::openapi::Responses, has_body: bool) {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    let problem = |description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(
                problem::PROBLEM_JSON,
                ContentBuilder::new().schema(Some(Ref::from_schema_name("Problem"))).build(),
            )
            .build()
    };
    for (status, description) in [
        ("400", "The request is malformed or breaks a rule (RFC 9457 problem)"),
        ("401", "No valid access token (WWW-Authenticate: Bearer error=\"invalid_token\")"),
        ("403", "The token lacks the scope (WWW-Authenticate: Bearer error=\"insufficient_scope\")"),
        ("500", "An internal error (the cause is logged, not sent)"),
        ("503", "The database is briefly unavailable (Retry-After)"),
    ] {
        responses.responses.entry(status.to_owned()).or_insert_with(|| problem(description).into());
    }
    if has_body {
        for (status, description) in [("413", "The body is too large"), ("415", "The body is not application/json")] {
            responses.responses.entry(status.to_owned()).or_insert_with(|| problem(description).into());
        }
    }
    for (status, response) in responses.responses.iter_mut() {
        if let utoipa::openapi::RefOr::T(response) = response
            && response.description.is_empty()
        {
            let name = status.parse::<u16>().ok().and_then(|s| StatusCode::from_u16(s).ok());
            response.description = name.and_then(|s| s.canonical_reason()).unwrap_or("Response").to_owned();
        }
    }
}

/// `GET /api/admin/openapi.json`: public (it holds no data), so that
/// client generators can fetch it.
pub async fn openapi_json(state: web::Data<AppState>) -> HttpResponse {
    match document(&state.settings.issuer).to_json() {
        Ok(json) => HttpResponse::Ok().content_type("application/json").body(json),
        Err(error) => actix_web::ResponseError::error_response(&ApiError::Internal(error.to_string())),
    }
}

async fn unknown() -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found("no such management API operation"))
}

/// `200` with `value` as JSON, never cached (it may hold personal data).
pub fn ok<T: Serialize>(value: &T) -> HttpResponse {
    HttpResponse::build(StatusCode::OK).insert_header(("Cache-Control", "no-store")).json(value)
}

/// `201 Created` with the new resource's `Location`.
pub fn created<T: Serialize>(location: &str, value: &T) -> HttpResponse {
    HttpResponse::build(StatusCode::CREATED)
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("Location", location))
        .json(value)
}

/// A personal identifier as lists show it (console.md: masked, revealed
/// on an audited request).
pub fn mask(value: &str) -> String {
    crate::admin::views::mask(value)
}

pub fn rfc3339(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A stored UTC time as RFC 3339.
pub fn rfc3339_naive(at: chrono::NaiveDateTime) -> String {
    rfc3339(at.and_utc())
}

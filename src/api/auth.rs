//! Who may call the management API: a confidential client holding an
//! access token it got with `client_credentials` (RFC 6749 §4.4), with
//! scope `wxfed:admin` (everything) or `wxfed:audit` (the read-only part).
//!
//! The token is checked like every bearer token wxfed accepts
//! (`oidc::tokens::live_access_token`: signature, issuer, expiry,
//! revocation), and then:
//! - it must be a client's own token: `sub` is the client and it carries
//!   no session, grant or authentication time (a token a person obtained
//!   through a client never manages wxfed, whatever its scope);
//! - the client must still exist, be confidential, be allowed
//!   `client_credentials`, and still list the scope: an admin who takes
//!   the scope away (`client update --scope`) stops its tokens at once;
//! - the token must carry the scope the operation needs.
//!
//! No token or a bad one: 401 with `WWW-Authenticate: Bearer
//! error="invalid_token"`; a missing scope: 403 `insufficient_scope`
//! (RFC 6750 §3.1), recorded as `admin.access_denied` like a console
//! refusal.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};

use super::problem::ApiError;
use crate::accounts::manage::Actor;
use crate::audit::{self, Action, AuditEvent};
use crate::db::{self, DbError};
use crate::http::RequestMeta;
use crate::http::extract::BearerToken;
use crate::oidc::clients::GrantType;
use crate::state::AppState;

/// Every operation of the management API.
pub const SCOPE_ADMIN: &str = "wxfed:admin";
/// The read-only part: audit search and export, and reading accounts,
/// identities, clients and WeChat apps (every such read by an audit-only
/// client is recorded, category `audit_access`).
pub const SCOPE_AUDIT: &str = "wxfed:audit";

/// A client calling the API, its token checked.
#[derive(Debug, Clone)]
pub struct ApiCaller {
    pub client_id: String,
    /// The token's scopes (those the client still lists).
    pub scopes: Vec<String>,
    pub meta: RequestMeta,
}

impl ApiCaller {
    /// How the audit trail names the caller: the client (event.rs `client:<id>`).
    pub fn actor(&self) -> Actor {
        Actor(format!("client:{}", self.client_id))
    }

    /// True with scope `wxfed:admin`.
    pub fn is_admin(&self) -> bool {
        self.scopes.iter().any(|s| s == SCOPE_ADMIN)
    }

    /// An audit event by this caller, with the request's facts.
    pub fn event(&self, event: AuditEvent) -> AuditEvent {
        event.with_actor(self.actor().0).with_client(self.client_id.clone()).with_request(&self.meta)
    }
}

/// A caller with scope `wxfed:admin`: every endpoint.
#[derive(Debug, Clone)]
pub struct AdminCaller(pub ApiCaller);

/// A caller with scope `wxfed:admin` or `wxfed:audit`: read-only endpoints.
#[derive(Debug, Clone)]
pub struct ReadCaller(pub ApiCaller);

impl std::ops::Deref for AdminCaller {
    type Target = ApiCaller;
    fn deref(&self) -> &ApiCaller {
        &self.0
    }
}

impl std::ops::Deref for ReadCaller {
    type Target = ApiCaller;
    fn deref(&self) -> &ApiCaller {
        &self.0
    }
}

/// Checks the request's token and that it carries one of `accepted`.
async fn authenticate(req: HttpRequest, accepted: &'static [&'static str]) -> Result<ApiCaller, ApiError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| ApiError::Internal("the application state is not registered".into()))?;
    let token = BearerToken::from_header_or_form(&req, None).map_err(|e| match e.code {
        crate::oidc::error::ErrorCode::InvalidToken => ApiError::from(e),
        // A token in the query string (RFC 6750 §2.3 is not offered).
        _ => ApiError::InvalidToken(e.description.unwrap_or_default()),
    })?;
    let claims = crate::oidc::tokens::live_access_token(&state, &token).await?;
    let own_token =
        claims.sub == claims.client_id && claims.gid.is_none() && claims.sid.is_none() && claims.auth_time.is_none();
    if !own_token {
        return Err(ApiError::InvalidToken(
            "the management API takes a client's own token (grant_type=client_credentials)".into(),
        ));
    }
    let client_id = claims.client_id.clone();
    let client =
        db::run(&state.db, move |conn| -> Result<_, DbError> { Ok(crate::oidc::clients::find(conn, &client_id)?) })
            .await?;
    let Some(client) = client else {
        return Err(ApiError::InvalidToken("the client of this token is gone".into()));
    };
    if client.public || !client.allows_grant(GrantType::ClientCredentials) {
        return Err(ApiError::InvalidToken("this client may not use the management API".into()));
    }
    // The token's scopes that the client still lists.
    let scopes: Vec<String> =
        claims.scopes().filter(|s| client.scopes.iter().any(|c| c == s)).map(str::to_owned).collect();
    let meta = RequestMeta::from_request(&req);
    let caller = ApiCaller { client_id: client.client_id.clone(), scopes, meta };
    if caller.scopes.iter().any(|s| accepted.contains(&s.as_str())) {
        return Ok(caller);
    }
    // A refusal of the API is a security event, as on the console: who
    // tried what (the path only: a query may hold a searched phone number).
    let event = caller
        .event(AuditEvent::failure(Action::AdminAccessDenied, "insufficient_scope"))
        .with_detail("scope", accepted.join("|"))
        .with_detail("method", req.method().as_str())
        .with_detail("path", req.path());
    let secrets = state.secrets.clone();
    db::run(&state.db, move |conn| -> Result<i64, DbError> { Ok(audit::record(conn, &secrets, &event)?) }).await?;
    Err(ApiError::InsufficientScope {
        required: accepted[0],
        detail: format!("this operation needs the scope {}", accepted.join(" or ")),
    })
}

impl FromRequest for AdminCaller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { authenticate(req, &[SCOPE_ADMIN]).await.map(AdminCaller) })
    }
}

impl FromRequest for ReadCaller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { authenticate(req, &[SCOPE_ADMIN, SCOPE_AUDIT]).await.map(ReadCaller) })
    }
}

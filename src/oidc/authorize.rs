//! The authorization endpoint (OIDC Core §3.1.2, RFC 6749 §4.1, RFC 7636,
//! RFC 9207, RFC 9700). Only the authorization code flow.
//!
//! Until the client and its redirect URI are known to be right, errors are
//! shown as a page; after that they go back to the client as an error
//! redirect. A request that needs a login goes to `/login` and comes back
//! here with the same parameters.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use askama::Template;
use chrono::Utc;

use super::clients::{self, Client, GrantType};
use super::consent;
use super::error::{ErrorCode, OAuthError};
use super::params::Params;
use super::tokens::{IdTokenHint, verify_id_token_hint};
use crate::accounts::Account;
use crate::accounts::sessions::Session;
use crate::audit::{self, Action, AuditEvent};
use crate::db::{self, DbError, grants::CodeRow, grants::GrantRow};
use crate::error::AppError;
use crate::http::{RequestMeta, render, session};
use crate::secrets::{random_token, sha256_hex};
use crate::state::AppState;

/// Set on the way back from `/login`: when the login happened, so that a
/// `prompt=login` or `max_age` request is not sent to log in again.
pub const LOGIN_AFTER_PARAM: &str = "wxfed_login_after";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseMode {
    Query,
    FormPost,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Prompt {
    pub none: bool,
    pub login: bool,
    pub consent: bool,
}

/// Where and how to answer the client, known once the redirect URI has
/// been checked.
#[derive(Debug, Clone)]
pub struct ReplyTo {
    pub redirect_uri: String,
    pub mode: ResponseMode,
    pub state: Option<String>,
    pub issuer: String,
}

/// A checked authorization request.
#[derive(Debug, Clone)]
pub struct AuthorizationRequest {
    pub client: Client,
    pub reply: ReplyTo,
    pub scopes: Vec<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub prompt: Prompt,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    pub id_token_hint: Option<IdTokenHint>,
    pub login_after: Option<i64>,
    /// The request as received, to come back to after login or consent.
    pub params: Params,
}

/// Why a request could not go on.
pub enum Rejection {
    /// Nothing about the client can be trusted yet: show a page.
    Page(String),
    /// Tell the client, at its verified redirect URI.
    Redirect(Box<ReplyTo>, Box<OAuthError>),
    Internal(String),
}

impl Rejection {
    pub fn redirect(to: ReplyTo, error: OAuthError) -> Self {
        Self::Redirect(Box::new(to), Box::new(error))
    }
}

impl From<DbError> for Rejection {
    fn from(e: DbError) -> Self {
        Self::Internal(e.to_string())
    }
}

fn is_pkce_challenge(value: &str) -> bool {
    // S256 challenges are base64url of a SHA-256: 43 characters.
    value.len() == 43 && value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Validates the request (RFC 6749 §4.1.1 and §4.1.2.1's order: client and
/// redirect URI first).
pub async fn validate(state: &AppState, params: Params) -> Result<AuthorizationRequest, Rejection> {
    let Some(client_id) = params.get("client_id").map(str::to_owned) else {
        return Err(Rejection::Page(
            "The request does not say which application is asking (client_id is missing).".into(),
        ));
    };
    let lookup_id = client_id.clone();
    let client = db::run(&state.db, move |conn| clients::find(conn, &lookup_id).map_err(DbError::from)).await?;
    let Some(client) = client else {
        return Err(Rejection::Page("The application that sent you here is not registered.".into()));
    };
    let Some(redirect_uri) = params.get("redirect_uri").map(str::to_owned) else {
        return Err(Rejection::Page("The request has no redirect_uri.".into()));
    };
    if !client.has_redirect_uri(&redirect_uri) {
        return Err(Rejection::Page(
            "The redirect_uri of this request is not registered for the application, so wxfed will not send you there."
                .into(),
        ));
    }
    let state_param = params.get("state").map(str::to_owned);
    let mut reply =
        ReplyTo { redirect_uri, mode: ResponseMode::Query, state: state_param, issuer: state.settings.issuer.clone() };
    let reject = |reply: &ReplyTo, error: OAuthError| Err(Rejection::redirect(reply.clone(), error));
    reply.mode = match params.get("response_mode") {
        None | Some("query") => ResponseMode::Query,
        Some("form_post") => ResponseMode::FormPost,
        Some(_) => return reject(&reply, OAuthError::invalid_request("response_mode must be query or form_post")),
    };
    if params.get("request").is_some() {
        return reject(&reply, OAuthError::new(ErrorCode::RequestNotSupported, "request objects are not supported"));
    }
    if params.get("request_uri").is_some() {
        return reject(&reply, OAuthError::new(ErrorCode::RequestUriNotSupported, "request_uri is not supported"));
    }
    match params.get("response_type") {
        None => return reject(&reply, OAuthError::invalid_request("the `response_type` parameter is missing")),
        Some("code") => {}
        Some(_) => {
            return reject(
                &reply,
                OAuthError::new(ErrorCode::UnsupportedResponseType, "only response_type=code is supported"),
            );
        }
    }
    if !client.allows_grant(GrantType::AuthorizationCode) {
        let error =
            OAuthError::new(ErrorCode::UnauthorizedClient, "this client may not use the authorization code flow");
        return reject(&reply, error);
    }
    let scopes = client.grantable_scopes(params.get("scope").unwrap_or("").split(' ').filter(|s| !s.is_empty()));

    let code_challenge = params.get("code_challenge").map(str::to_owned);
    match (params.get("code_challenge_method"), &code_challenge) {
        (_, None) if client.public => {
            return reject(
                &reply,
                OAuthError::invalid_request("public clients must use PKCE (code_challenge with S256)"),
            );
        }
        (Some(_), None) => {
            return reject(&reply, OAuthError::invalid_request("code_challenge_method without code_challenge"));
        }
        (Some("S256"), Some(challenge)) if is_pkce_challenge(challenge) => {}
        (Some("S256"), Some(_)) => {
            return reject(&reply, OAuthError::invalid_request("code_challenge is not a S256 challenge"));
        }
        (None | Some("plain"), Some(_)) => {
            return reject(
                &reply,
                OAuthError::invalid_request("code_challenge_method must be S256 (plain is not allowed)"),
            );
        }
        (Some(_), Some(_)) => return reject(&reply, OAuthError::invalid_request("code_challenge_method must be S256")),
        (_, None) => {}
    }
    let nonce = params.get("nonce").map(str::to_owned);
    if nonce.as_ref().is_some_and(|n| n.len() > 512) {
        return reject(&reply, OAuthError::invalid_request("nonce is too long"));
    }
    let mut prompt = Prompt::default();
    for value in params.get("prompt").unwrap_or("").split(' ').filter(|s| !s.is_empty()) {
        match value {
            "none" => prompt.none = true,
            "login" => prompt.login = true,
            "consent" => prompt.consent = true,
            "select_account" => {}
            _ => return reject(&reply, OAuthError::invalid_request(format!("unsupported prompt value `{value}`"))),
        }
    }
    if prompt.none && (prompt.login || prompt.consent) {
        return reject(&reply, OAuthError::invalid_request("prompt=none cannot be combined with other values"));
    }
    let max_age = match params.get("max_age") {
        None => None,
        Some(text) => match text.parse::<i64>() {
            Ok(seconds) if seconds >= 0 => Some(seconds),
            _ => return reject(&reply, OAuthError::invalid_request("max_age must be a number of seconds")),
        },
    };
    let id_token_hint = match params.get("id_token_hint") {
        None => None,
        Some(token) => {
            match verify_id_token_hint(&state.keys.current(), &state.settings.issuer, token, Some(&client.client_id)) {
                Some(hint) => Some(hint),
                None => {
                    return reject(
                        &reply,
                        OAuthError::invalid_request("id_token_hint is not an ID token wxfed issued"),
                    );
                }
            }
        }
    };
    let login_after = params.get(LOGIN_AFTER_PARAM).and_then(|t| t.parse().ok());
    Ok(AuthorizationRequest {
        client,
        reply,
        scopes,
        nonce,
        code_challenge,
        prompt,
        max_age,
        login_hint: params.get("login_hint").map(str::to_owned),
        id_token_hint,
        login_after,
        params,
    })
}

/// Whether the current session can answer this request without a new
/// login (OIDC Core §3.1.2.3).
fn needs_login(request: &AuthorizationRequest, current: Option<&(Session, Account)>) -> bool {
    let Some((session, account)) = current else {
        return true;
    };
    let auth_time = session.auth_time.and_utc().timestamp();
    let logged_in_for_this = request.login_after.is_some_and(|t| auth_time >= t);
    if request.prompt.login && !logged_in_for_this {
        return true;
    }
    // max_age=0 means "log in now" (OIDC Core §3.1.2.1), like prompt=login.
    if let Some(max_age) = request.max_age
        && (max_age == 0 || Utc::now().timestamp() - auth_time > max_age)
        && !logged_in_for_this
    {
        return true;
    }
    request.id_token_hint.as_ref().is_some_and(|hint| hint.sub != account.id.as_str())
}

/// Sends the browser to the login page, to come back here afterwards.
fn to_login(request: &AuthorizationRequest) -> HttpResponse {
    // prompt=login (and a stale max_age) are honoured by this trip to the
    // login page; the marker tells the next round the login is fresh.
    let mut back = request.params.without(&["prompt", LOGIN_AFTER_PARAM]);
    let remaining_prompt: Vec<&str> =
        request.params.get("prompt").unwrap_or("").split(' ').filter(|p| !p.is_empty() && *p != "login").collect();
    if !remaining_prompt.is_empty() {
        back = back.with("prompt", remaining_prompt.join(" "));
    }
    let back = back.with(LOGIN_AFTER_PARAM, Utc::now().timestamp().to_string());
    let return_to = format!("/authorize?{}", back.encode());
    let mut login = Params::default().with("return_to", return_to);
    if let Some(hint) = &request.login_hint {
        login = login.with("login_hint", hint.clone());
    }
    HttpResponse::SeeOther().insert_header(("Location", format!("/login?{}", login.encode()))).finish()
}

#[get("/authorize")]
pub async fn authorize_get(req: HttpRequest, state: web::Data<AppState>, meta: RequestMeta) -> HttpResponse {
    match Params::parse(req.query_string()) {
        Ok(params) => authorize(&req, &state, &meta, params).await,
        Err(error) => error_page(&error.description.unwrap_or_default()),
    }
}

#[post("/authorize")]
pub async fn authorize_post(
    req: HttpRequest,
    state: web::Data<AppState>,
    meta: RequestMeta,
    body: web::Bytes,
) -> HttpResponse {
    match std::str::from_utf8(&body).map_err(|_| OAuthError::invalid_request("not UTF-8")).and_then(Params::parse) {
        Ok(params) => authorize(&req, &state, &meta, params).await,
        Err(error) => error_page(&error.description.unwrap_or_default()),
    }
}

async fn authorize(req: &HttpRequest, state: &AppState, meta: &RequestMeta, params: Params) -> HttpResponse {
    let request = match validate(state, params).await {
        Ok(request) => request,
        Err(rejection) => return respond_rejection(rejection),
    };
    let current = match session::current(req, state).await {
        Ok(current) => current,
        Err(error) => return respond_rejection(Rejection::Internal(error.to_string())),
    };
    if needs_login(&request, current.as_ref()) {
        if request.prompt.none {
            let error = OAuthError::new(ErrorCode::LoginRequired, "the user is not logged in");
            return respond_rejection(Rejection::redirect(request.reply, error));
        }
        return to_login(&request);
    }
    let Some((session, account)) = current else {
        return to_login(&request);
    };
    if !request.client.first_party {
        let (account_id, client_id) = (account.id.as_str().to_owned(), request.client.client_id.clone());
        let existing =
            db::run(&state.db, move |conn| db::consents::find(conn, &account_id, &client_id).map_err(DbError::from))
                .await;
        let covered = match existing {
            Ok(Some(consent)) => request.scopes.iter().all(|s| consent.scope.split(' ').any(|c| c == s)),
            Ok(None) => false,
            Err(error) => return respond_rejection(Rejection::Internal(error.to_string())),
        };
        if !covered || request.prompt.consent {
            if request.prompt.none {
                let error = OAuthError::new(ErrorCode::ConsentRequired, "the user has not consented to this client");
                return respond_rejection(Rejection::redirect(request.reply, error));
            }
            return consent::page(req, state, &request, &account);
        }
    }
    issue_code(state, meta, &request, &session, &account).await
}

/// The session id released as `sid`: derived from (not equal to) the
/// stored hash of the session cookie.
pub fn sid_of(session: &Session) -> String {
    sha256_hex(format!("sid:{}", session.id_hash).as_bytes())[..32].to_owned()
}

/// Records the grant and a single-use code, and sends the browser back to
/// the client with it.
pub async fn issue_code(
    state: &AppState,
    meta: &RequestMeta,
    request: &AuthorizationRequest,
    session: &Session,
    account: &Account,
) -> HttpResponse {
    let code = random_token();
    let now = db::now();
    let code_ttl =
        chrono::Duration::seconds(i64::try_from(state.settings.tokens.authorization_code_secs).unwrap_or(60));
    let grant = GrantRow {
        id: uuid::Uuid::new_v4().to_string(),
        client_id: request.client.client_id.clone(),
        account_id: Some(account.id.as_str().to_owned()),
        scope: request.scopes.join(" "),
        auth_time: Some(session.auth_time),
        amr: session.amr.join(" "),
        sid: Some(sid_of(session)),
        created_at: now,
        expires_at: now
            + code_ttl
            + chrono::Duration::seconds(i64::try_from(state.settings.tokens.access_token_secs).unwrap_or(600)),
        revoked_at: None,
    };
    let code_row = CodeRow {
        code_hash: sha256_hex(code.as_bytes()),
        grant_id: grant.id.clone(),
        client_id: request.client.client_id.clone(),
        redirect_uri: request.reply.redirect_uri.clone(),
        nonce: request.nonce.clone(),
        code_challenge: request.code_challenge.clone(),
        created_at: now,
        expires_at: now + code_ttl,
        consumed_at: None,
    };
    let event = AuditEvent::success(Action::Authorization)
        .with_actor(format!("account:{}", account.id))
        .with_account(account.id.as_str())
        .with_client(request.client.client_id.clone())
        .with_request(meta)
        .with_detail("scope", grant.scope.clone())
        .with_detail("grant", grant.id.clone());
    let secrets = state.secrets.clone();
    let stored = db::run(&state.db, move |conn| {
        db::write_transaction(conn, |conn| {
            db::grants::insert_grant(conn, &grant)?;
            db::grants::insert_code(conn, &code_row)?;
            audit::append(conn, &secrets, &event)?;
            Ok::<_, DbError>(())
        })
    })
    .await;
    if let Err(error) = stored {
        return respond_rejection(Rejection::Internal(error.to_string()));
    }
    reply(&request.reply, vec![("code", code)])
}

/// The success or error response to the client (RFC 6749 §4.1.2, RFC
/// 9207 `iss`, OAuth 2.0 Form Post Response Mode).
pub fn reply(to: &ReplyTo, mut params: Vec<(&'static str, String)>) -> HttpResponse {
    if let Some(state) = &to.state {
        params.push(("state", state.clone()));
    }
    params.push(("iss", to.issuer.clone()));
    match to.mode {
        ResponseMode::Query => {
            let query = serde_urlencoded::to_string(&params).unwrap_or_default();
            let separator = if to.redirect_uri.contains('?') { '&' } else { '?' };
            HttpResponse::SeeOther()
                .insert_header(("Location", format!("{}{separator}{query}", to.redirect_uri)))
                .insert_header(("Cache-Control", "no-store"))
                .finish()
        }
        ResponseMode::FormPost => {
            let page = FormPostPage {
                action: to.redirect_uri.clone(),
                fields: params.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
            };
            render::page(StatusCode::OK, &page)
        }
    }
}

#[derive(Template)]
#[template(path = "form_post.html")]
struct FormPostPage {
    action: String,
    fields: Vec<(String, String)>,
}

pub fn respond_rejection(rejection: Rejection) -> HttpResponse {
    match rejection {
        Rejection::Page(message) => error_page(&message),
        Rejection::Redirect(to, error) => reply(&to, error.redirect_params()),
        Rejection::Internal(cause) => actix_web::ResponseError::error_response(&AppError::Internal(cause)),
    }
}

fn error_page(message: &str) -> HttpResponse {
    actix_web::ResponseError::error_response(&AppError::BadRequest(message.to_owned()))
}

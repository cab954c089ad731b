//! Reading and checking an authorization request (OIDC Core §3.1.2.1,
//! RFC 6749 §4.1.1, RFC 7636 §4.3), in RFC 6749 §4.1.2.1's order: the
//! client and its redirect URI first, so that every later error can be
//! sent back to the client.

use super::response::Rejection;
use crate::db::{self, DbError};
use crate::oidc::clients::{self, Client, GrantType};
use crate::oidc::error::{ErrorCode, OAuthError};
use crate::oidc::params::Params;
use crate::oidc::tokens::{IdTokenHint, verify_id_token_hint};
use crate::state::AppState;

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
    /// The request as received, to come back to after login or consent.
    pub params: Params,
}

fn is_pkce_challenge(value: &str) -> bool {
    // S256 challenges are base64url of a SHA-256: 43 characters.
    value.len() == 43 && value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Validates the request (RFC 6749 §4.1.1 and §4.1.2.1's order: client and
/// redirect URI first).
pub async fn validate(state: &AppState, params: Params) -> Result<AuthorizationRequest, Rejection> {
    let Some(client_id) = params.get("client_id").map(str::to_owned) else {
        return Err(Rejection::Page("authorize-no-client".into()));
    };
    let lookup_id = client_id.clone();
    let client = db::run(&state.db, move |conn| clients::find(conn, &lookup_id).map_err(DbError::from)).await?;
    let Some(client) = client else {
        return Err(Rejection::Page("authorize-unknown-client".into()));
    };
    let Some(redirect_uri) = params.get("redirect_uri").map(str::to_owned) else {
        return Err(Rejection::Page("authorize-no-redirect-uri".into()));
    };
    if !client.has_redirect_uri(&redirect_uri) {
        return Err(Rejection::Page("authorize-redirect-uri-unregistered".into()));
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
    let scopes = client.grantable_person_scopes(params.get("scope").unwrap_or("").split(' ').filter(|s| !s.is_empty()));

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
        params,
    })
}

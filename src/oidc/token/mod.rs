//! The token endpoint (RFC 6749 §3.2): client authentication, then one
//! module per grant type. Responses are never cached (§5.1).

mod authorization_code;
mod client_credentials;
pub mod exchange;
mod issue;
mod refresh_token;

use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE, PRAGMA};
use actix_web::{HttpRequest, HttpResponse, post, web};

use super::client_auth;
use super::clients::GrantType;
use super::error::{ErrorCode, OAuthError};
use super::params::Params;
use crate::http::RequestMeta;
use crate::state::AppState;

pub use issue::TokenResponse;

/// Reads an `application/x-www-form-urlencoded` body (RFC 6749 §3.2 and
/// RFC 7009/7662 require that encoding).
pub fn form_params(req: &HttpRequest, body: &[u8]) -> Result<Params, OAuthError> {
    let content_type = req.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return Err(OAuthError::invalid_request("the body must be application/x-www-form-urlencoded"));
    }
    let text = std::str::from_utf8(body).map_err(|_| OAuthError::invalid_request("the body is not UTF-8"))?;
    Params::parse(text)
}

#[post("/token")]
pub async fn token(
    req: HttpRequest,
    state: web::Data<AppState>,
    meta: RequestMeta,
    body: web::Bytes,
) -> Result<HttpResponse, OAuthError> {
    let params = form_params(&req, &body)?;
    let grant_type = params.required("grant_type")?.to_owned();
    let (client, _) = client_auth::authenticate(&req, &state, &params).await?;
    let grant = match grant_type.as_str() {
        "authorization_code" => GrantType::AuthorizationCode,
        "refresh_token" => GrantType::RefreshToken,
        "client_credentials" => GrantType::ClientCredentials,
        crate::oidc::clients::TOKEN_EXCHANGE_GRANT => GrantType::TokenExchange,
        _ => {
            return Err(OAuthError::new(
                ErrorCode::UnsupportedGrantType,
                format!("unsupported grant_type `{grant_type}`"),
            ));
        }
    };
    if !client.allows_grant(grant) {
        return Err(OAuthError::new(ErrorCode::UnauthorizedClient, format!("this client may not use {grant}")));
    }
    let response = match grant {
        GrantType::AuthorizationCode => authorization_code::exchange(&state, &meta, client, &params).await?,
        GrantType::RefreshToken => refresh_token::exchange(&state, &meta, client, &params).await?,
        GrantType::ClientCredentials => client_credentials::exchange(&state, &meta, client, &params).await?,
        GrantType::TokenExchange => exchange::exchange(&state, &meta, client, &params).await?,
    };
    Ok(HttpResponse::Ok().insert_header((CACHE_CONTROL, "no-store")).insert_header((PRAGMA, "no-cache")).json(response))
}

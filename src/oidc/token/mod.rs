//! The token endpoint (RFC 6749 §3.2): client authentication, then one
//! module per grant type. Responses are never cached (§5.1).

mod authorization_code;
mod client_credentials;
pub mod exchange;
mod issue;
mod refresh_token;

use actix_web::http::header::{CACHE_CONTROL, PRAGMA};
use actix_web::{HttpRequest, HttpResponse, web};

use super::client_auth;
use super::clients::GrantType;
use super::error::{ErrorCode, OAuthError};
use super::params::Params;
use crate::http::RequestMeta;
use crate::state::AppState;

pub use issue::TokenResponse;

/// `POST /token`.
pub async fn token(
    req: HttpRequest,
    state: web::Data<AppState>,
    meta: RequestMeta,
    body: web::Bytes,
) -> Result<HttpResponse, OAuthError> {
    let params = Params::from_form_body(&req, &body)?;
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

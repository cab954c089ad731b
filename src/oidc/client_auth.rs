//! Client authentication at the token, revocation and introspection
//! endpoints: `client_secret_basic` (RFC 6749 §2.3.1, with the id and
//! secret form-urlencoded inside the Basic credentials),
//! `client_secret_post`, and `none` for public clients.

use actix_web::HttpRequest;
use actix_web::http::header::AUTHORIZATION;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::clients::{self, Client};
use super::error::OAuthError;
use super::params::Params;
use crate::db::{self, DbError};
use crate::state::AppState;

/// How the client identified itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    SecretBasic,
    SecretPost,
    None,
}

struct Presented {
    client_id: String,
    secret: Option<String>,
    method: AuthMethod,
}

fn form_decode(value: &str) -> Option<String> {
    let with_spaces = value.replace('+', " ");
    url::form_urlencoded::parse(format!("x={with_spaces}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .or(Some(String::new()))
}

fn presented(req: &HttpRequest, params: &Params) -> Result<Presented, OAuthError> {
    let basic = match req.headers().get(AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        Some(header) if header.len() > 6 && header[..6].eq_ignore_ascii_case("basic ") => {
            let decoded = STANDARD
                .decode(header[6..].trim())
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .ok_or_else(|| OAuthError::invalid_client("malformed Basic credentials"))?;
            let (id, secret) =
                decoded.split_once(':').ok_or_else(|| OAuthError::invalid_client("malformed Basic credentials"))?;
            let id = form_decode(id).ok_or_else(|| OAuthError::invalid_client("malformed Basic credentials"))?;
            let secret =
                form_decode(secret).ok_or_else(|| OAuthError::invalid_client("malformed Basic credentials"))?;
            Some((id, secret))
        }
        _ => None,
    };
    let body_id = params.get("client_id");
    let body_secret = params.get("client_secret");
    match (basic, body_id, body_secret) {
        (Some(_), _, Some(_)) => Err(OAuthError::invalid_request("use one client authentication method, not two")),
        (Some((id, _)), Some(body_id), None) if body_id != id => {
            Err(OAuthError::invalid_request("client_id does not match the Authorization header"))
        }
        (Some((id, secret)), _, None) => {
            Ok(Presented { client_id: id, secret: Some(secret), method: AuthMethod::SecretBasic })
        }
        (None, Some(id), Some(secret)) => {
            Ok(Presented { client_id: id.to_owned(), secret: Some(secret.to_owned()), method: AuthMethod::SecretPost })
        }
        (None, Some(id), None) => Ok(Presented { client_id: id.to_owned(), secret: None, method: AuthMethod::None }),
        (None, None, _) => Err(OAuthError::invalid_client("client authentication is required")),
    }
}

/// Identifies and authenticates the client of a back-channel request.
/// Every failure is `invalid_client` (401) and says no more than needed.
pub async fn authenticate(
    req: &HttpRequest,
    state: &AppState,
    params: &Params,
) -> Result<(Client, AuthMethod), OAuthError> {
    let presented = presented(req, params)?;
    let client_id = presented.client_id.clone();
    let client = db::run(&state.db, move |conn| clients::find(conn, &client_id).map_err(DbError::from)).await?;
    let Some(client) = client else {
        return Err(OAuthError::invalid_client("client authentication failed"));
    };
    match (client.public, presented.secret) {
        (true, None) => Ok((client, AuthMethod::None)),
        (true, Some(_)) => Err(OAuthError::invalid_client("client authentication failed")),
        (false, Some(secret)) if client.secret_matches(&secret) => Ok((client, presented.method)),
        (false, _) => Err(OAuthError::invalid_client("client authentication failed")),
    }
}

#[cfg(test)]
mod tests {
    use super::form_decode;

    #[test]
    fn basic_credentials_are_form_decoded() {
        assert_eq!(form_decode("a%3Ab").as_deref(), Some("a:b"));
        assert_eq!(form_decode("a+b").as_deref(), Some("a b"));
        assert_eq!(form_decode("plain").as_deref(), Some("plain"));
    }
}

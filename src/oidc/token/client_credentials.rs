//! `grant_type=client_credentials` (RFC 6749 §4.4): a confidential client
//! acting for itself. No ID token, no refresh token; `sub` is the client.

use super::issue::{Issuance, TokenResponse, decide_then_sign_one_write, prepare};

use crate::http::RequestMeta;
use crate::oidc::clients::{Client, GrantType};
use crate::oidc::error::{ErrorCode, OAuthError};
use crate::oidc::params::Params;
use crate::state::AppState;

/// Scopes that only make sense with a person behind them.
const USER_SCOPES: &[&str] = &["openid", "profile", "email", "phone", "offline_access"];

pub async fn exchange(
    state: &AppState,
    meta: &RequestMeta,
    client: Client,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    if client.public {
        return Err(OAuthError::new(ErrorCode::UnauthorizedClient, "public clients cannot use client_credentials"));
    }
    let for_clients = |s: &&String| !USER_SCOPES.contains(&s.as_str());
    let scopes: Vec<String> = match params.get("scope") {
        None => client.scopes.iter().filter(for_clients).cloned().collect(),
        Some(requested) => {
            let allowed = client.grantable_scopes(requested.split(' ').filter(|s| !s.is_empty()));
            allowed.iter().filter(for_clients).cloned().collect()
        }
    };
    // No account, no grant: `prepare` writes only the audit event.
    decide_then_sign_one_write(state, meta, move |conn, state, meta, now| {
        let issuance = Issuance {
            grant_type: GrantType::ClientCredentials,
            client: &client,
            account: None,
            grant: None,
            scopes: &scopes,
            nonce: None,
        };
        Ok(Ok(prepare(conn, state, meta, &issuance, now)?))
    })
    .await
}

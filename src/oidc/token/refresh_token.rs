//! `grant_type=refresh_token` (RFC 6749 §6) with rotation: every use
//! returns a new refresh token; presenting a rotated one again means it
//! leaked, and the whole grant (the token family) is revoked (RFC 9700
//! §4.14.2) — unless it comes back within a few seconds, which is how a
//! mini-program's parallel requests look.

use super::issue::{Issuance, TokenResponse, active_account, decide_then_sign, prepare, revoke_for_reuse, seconds};
use crate::audit::Action;
use crate::db;
use crate::http::RequestMeta;
use crate::oidc::clients::{Client, GrantType};
use crate::oidc::error::{ErrorCode, OAuthError};
use crate::oidc::params::Params;
use crate::secrets::sha256_hex;
use crate::state::AppState;

pub async fn exchange(
    state: &AppState,
    meta: &RequestMeta,
    client: Client,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    let token_hash = sha256_hex(params.required("refresh_token")?.as_bytes());
    let requested_scope = params.get("scope").map(str::to_owned);
    decide_then_sign(state, meta, move |conn, state, meta, now| {
        let invalid = |why: &str| Ok(Err(OAuthError::invalid_grant(why.to_owned())));
        let Some(token) = db::grants::find_refresh(conn, &token_hash)? else {
            return invalid("the refresh token is invalid");
        };
        let Some(grant) = db::grants::find_grant(conn, &token.grant_id)? else {
            return invalid("the refresh token is invalid");
        };
        if grant.client_id != client.client_id {
            return invalid("the refresh token is invalid");
        }
        if grant.revoked_at.is_some() {
            return invalid("the refresh token was revoked");
        }
        if token.expires_at <= now {
            return invalid("the refresh token has expired");
        }
        let grace = seconds(state.settings.tokens.refresh_reuse_grace_secs);
        let first_use = db::grants::rotate_refresh(conn, &token_hash, now)?;
        if !first_use {
            let rotated_at = token.rotated_at.unwrap_or(now);
            if now - rotated_at > grace {
                revoke_for_reuse(conn, state, meta, &grant.id, &client.client_id, Action::RefreshTokenReused)?;
                return invalid("the refresh token was already used; its grant has been revoked");
            }
        }
        let granted: Vec<&str> = grant.scope.split(' ').filter(|s| !s.is_empty()).collect();
        let scopes: Vec<String> = match &requested_scope {
            None => granted.iter().map(|s| s.to_string()).collect(),
            Some(requested) => {
                let requested: Vec<&str> = requested.split(' ').filter(|s| !s.is_empty()).collect();
                if let Some(extra) = requested.iter().find(|s| !granted.contains(s)) {
                    return Ok(Err(OAuthError::new(
                        ErrorCode::InvalidScope,
                        format!("`{extra}` was not granted originally (RFC 6749 §6)"),
                    )));
                }
                requested.iter().map(|s| s.to_string()).collect()
            }
        };
        let account = match active_account(conn, &grant) {
            Ok(account) => account,
            Err(error) => return Ok(Err(error)),
        };
        let issuance = Issuance {
            grant_type: GrantType::RefreshToken,
            client: &client,
            account: account.as_ref(),
            grant: Some(&grant),
            scopes: &scopes,
            nonce: None,
        };
        Ok(Ok(prepare(conn, state, meta, &issuance, now)?))
    })
    .await
}

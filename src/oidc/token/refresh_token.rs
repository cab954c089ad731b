//! `grant_type=refresh_token` (RFC 6749 §6) with rotation: every use
//! returns a new refresh token; presenting a rotated one again means it
//! leaked, and the whole grant (the token family) is revoked (RFC 9700
//! §4.14.2) — unless it comes back within a few seconds, which is how a
//! mini-program's parallel requests look. Such a replay gets the very
//! response the first request got (issue 10 item 10): idempotent, so no
//! second live branch of the family ever exists.
//!
//! Unlike the other grants, the tokens are signed inside the transaction:
//! the response is sealed onto the rotated token's row in the same commit
//! as the rotation, so a parallel replay that sees the rotation always
//! finds the response too (one signature, ~1 ms, held under the lock).

use serde::{Deserialize, Serialize};

use super::issue::{Issuance, TokenResponse, active_account, prepare, revoke_for_reuse, seconds, sign};
use crate::audit::{self, Action, AuditEvent};
use crate::db::{self, DbConn};
use crate::http::RequestMeta;
use crate::oidc::clients::{Client, GrantType};
use crate::oidc::error::{ErrorCode, OAuthError};
use crate::oidc::keys::KeySet;
use crate::oidc::params::Params;
use crate::secrets::sha256_hex;
use crate::state::AppState;

/// What a rotated refresh token's row keeps, sealed, for the grace window.
#[derive(Serialize, Deserialize)]
struct Successor {
    access_token: String,
    expires_in: u64,
    refresh_token: Option<String>,
    id_token: Option<String>,
    scope: String,
}

impl Successor {
    fn of(response: &TokenResponse) -> Self {
        Self {
            access_token: response.access_token.clone(),
            expires_in: response.expires_in,
            refresh_token: response.refresh_token.clone(),
            id_token: response.id_token.clone(),
            scope: response.scope.clone(),
        }
    }

    fn into_response(self) -> TokenResponse {
        TokenResponse {
            access_token: self.access_token,
            token_type: "Bearer",
            expires_in: self.expires_in,
            refresh_token: self.refresh_token,
            id_token: self.id_token,
            scope: self.scope,
            issued_token_type: None,
        }
    }
}

/// The sealing context binds a sealed successor to its row.
fn seal_context(token_hash: &str) -> String {
    format!("refresh-successor:{token_hash}")
}

pub async fn exchange(
    state: &AppState,
    meta: &RequestMeta,
    client: Client,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    let token_hash = sha256_hex(params.required("refresh_token")?.as_bytes());
    let requested_scope = params.get("scope").map(str::to_owned);
    let keys = state.keys.current();
    let (state, meta) = (state.clone(), meta.clone());
    db::run(&state.db.clone(), move |conn| {
        db::write_transaction(conn, |conn| {
            decide(conn, &state, &meta, &keys, &client, &token_hash, requested_scope.as_deref(), db::now())
        })
    })
    .await?
}

/// `Ok(Err(refusal))` for a refusal whose records (a revoked family, an
/// audit event) must commit all the same.
#[allow(clippy::too_many_arguments)]
fn decide(
    conn: &mut DbConn,
    state: &AppState,
    meta: &RequestMeta,
    keys: &KeySet,
    client: &Client,
    token_hash: &str,
    requested_scope: Option<&str>,
    now: chrono::NaiveDateTime,
) -> Result<Result<TokenResponse, OAuthError>, OAuthError> {
    let invalid = |why: &str| Ok(Err(OAuthError::invalid_grant(why.to_owned())));
    let Some(token) = db::grants::find_refresh(conn, token_hash)? else {
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
    let granted: Vec<&str> = grant.scope.split(' ').filter(|s| !s.is_empty()).collect();
    let scopes: Vec<String> = match requested_scope {
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
    // Rotated only once every check passed, so a refused request never
    // burns the token.
    if !db::grants::rotate_refresh(conn, token_hash, now)? {
        // Read again: a parallel request may have rotated it since the
        // first read, and committed its successor with the rotation.
        let (rotated_at, sealed) = db::grants::rotation_of(conn, token_hash)?.unwrap_or((None, None));
        let grace = seconds(state.settings.tokens.refresh_reuse_grace_secs);
        let within_grace = rotated_at.is_some_and(|at| now - at <= grace);
        let successor = match sealed {
            Some(sealed) if within_grace => state
                .secrets
                .open(&seal_context(token_hash), &sealed)
                .ok()
                .and_then(|plain| serde_json::from_slice::<Successor>(&plain).ok()),
            _ => None,
        };
        let Some(successor) = successor else {
            revoke_for_reuse(conn, state, meta, &grant.id, &client.client_id, Action::RefreshTokenReused)?;
            return invalid("the refresh token was already used; its grant has been revoked");
        };
        let mut event = AuditEvent::success(Action::TokenIssued)
            .with_actor(format!("client:{}", client.client_id))
            .with_client(client.client_id.clone())
            .with_request(meta)
            .with_detail("grant_type", GrantType::RefreshToken.as_str())
            .with_detail("grant", grant.id.clone())
            .with_detail("replay_within_grace", true);
        if let Some(account) = &grant.account_id {
            event = event.with_account(account.clone());
        }
        audit::append(conn, &state.secrets, &event)?;
        return Ok(Ok(successor.into_response()));
    }
    let issuance = Issuance {
        grant_type: GrantType::RefreshToken,
        client,
        account: account.as_ref(),
        grant: Some(&grant),
        scopes: &scopes,
        nonce: None,
    };
    let prepared = prepare(conn, state, meta, &issuance, now)?;
    let response = sign(state, keys, prepared)?;
    let plain = serde_json::to_vec(&Successor::of(&response)).map_err(OAuthError::server_error)?;
    db::grants::set_successor(conn, token_hash, &state.secrets.seal(&seal_context(token_hash), &plain))?;
    Ok(Ok(response))
}

//! Issuing the tokens of one successful token request, shared by the grant
//! types, in two steps:
//!
//! 1. [`prepare`], inside the caller's write transaction: decide the
//!    claims (with a fresh `jti`), store the new refresh token, extend the
//!    grant, record the issue in the audit trail.
//! 2. [`sign`], after the commit: the signatures. Signing is the costly
//!    part, and doing it outside the transaction keeps the database write
//!    lock (SQLite) and the audit chain's row lock (PostgreSQL) short.

use chrono::{Duration, NaiveDateTime};
use serde::Serialize;

use crate::accounts::Account;
use crate::audit::{self, Action, AuditEvent};
use crate::db::{self, DbConn, grants::GrantRow, grants::RefreshRow};
use crate::http::RequestMeta;
use crate::oidc::clients::{Client, GrantType};
use crate::oidc::error::OAuthError;
use crate::oidc::keys::KeySet;
use crate::oidc::signing::SigningAlgorithm;
use crate::oidc::tokens::{
    AccessTokenClaims, AccessTokenRequest, IdTokenRequest, access_token_claims, mint_id_token, sign_access_token,
};
use crate::secrets::{random_token, sha256_hex};
use crate::state::AppState;
use crate::wechat::claims::WechatClaims;

/// RFC 6749 §5.1 (+ OIDC Core §3.1.3.3 `id_token`).
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    pub scope: String,
    /// RFC 8693 §2.2.1, for token exchanges.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<&'static str>,
}

/// What one issuance is for.
pub struct Issuance<'a> {
    pub grant_type: GrantType,
    pub client: &'a Client,
    pub account: Option<&'a Account>,
    pub grant: Option<&'a GrantRow>,
    pub scopes: &'a [String],
    pub nonce: Option<&'a str>,
}

pub fn seconds(secs: u64) -> Duration {
    Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX / 1000))
}

/// Everything decided and stored; only the signatures are left.
pub struct Prepared {
    grant_type: GrantType,
    access: AccessTokenClaims,
    access_alg: SigningAlgorithm,
    id_token: Option<IdTokenInput>,
    refresh_token: Option<String>,
    expires_in: u64,
}

struct IdTokenInput {
    client_id: String,
    alg: SigningAlgorithm,
    account: Account,
    scopes: Vec<String>,
    nonce: Option<String>,
    auth_time: Option<chrono::DateTime<chrono::Utc>>,
    amr: Vec<String>,
    sid: Option<String>,
    wechat: WechatClaims,
    lifetime_secs: u64,
}

/// Step 1, inside a write transaction.
pub fn prepare(
    conn: &mut DbConn,
    state: &AppState,
    meta: &RequestMeta,
    what: &Issuance<'_>,
    now: NaiveDateTime,
) -> Result<Prepared, OAuthError> {
    let settings = &state.settings;
    let lifetimes = settings.tokens;
    let scope = what.scopes.join(" ");
    let scopes: Vec<&str> = what.scopes.iter().map(String::as_str).collect();
    let auth_time = what.grant.and_then(|g| g.auth_time).map(|t| t.and_utc());
    let sid = what.grant.and_then(|g| g.sid.clone());
    let access = access_token_claims(&AccessTokenRequest {
        issuer: &settings.issuer,
        subject: what.account.map(|a| a.id.as_str()).unwrap_or(&what.client.client_id),
        client_id: &what.client.client_id,
        scope: &scope,
        auth_time,
        sid: sid.as_deref(),
        grant_id: what.grant.map(|g| g.id.as_str()),
        lifetime_secs: lifetimes.access_token_secs,
    });
    let id_token = match (what.account, scopes.contains(&"openid")) {
        (Some(account), true) => Some(IdTokenInput {
            client_id: what.client.client_id.clone(),
            alg: what.client.id_token_signing_alg,
            account: account.clone(),
            scopes: what.scopes.to_vec(),
            nonce: what.nonce.map(str::to_owned),
            auth_time,
            amr: what
                .grant
                .map(|g| g.amr.split(' ').filter(|s| !s.is_empty()).map(str::to_owned).collect())
                .unwrap_or_default(),
            sid: sid.clone(),
            wechat: if scopes.contains(&"wechat") {
                crate::wechat::claims::for_account(conn, account.id.as_str(), what.client.wechat_app.as_deref())?
            } else {
                WechatClaims::default()
            },
            lifetime_secs: lifetimes.id_token_secs,
        }),
        _ => None,
    };
    let wants_refresh = what.client.allows_grant(GrantType::RefreshToken)
        && (scopes.contains(&"offline_access") || what.client.always_issue_refresh_token);
    // A grant of a browser session that issues its first tokens is marked
    // (folded into the lifetime extension when a refresh token comes too):
    // from now on the client holds tokens from that session, and hears of
    // its end (OpenID Connect Back-Channel Logout 1.0 §2.5).
    let mut mark_issued = what.grant.is_some_and(|g| g.sid.is_some() && !g.tokens_issued);
    let refresh_token = match what.grant {
        Some(grant) if wants_refresh && what.account.is_some() => {
            let token = random_token();
            let expires_at = now + seconds(lifetimes.refresh_token_secs);
            db::grants::insert_refresh(
                conn,
                &RefreshRow {
                    token_hash: sha256_hex(token.as_bytes()),
                    grant_id: grant.id.clone(),
                    created_at: now,
                    expires_at,
                    rotated_at: None,
                },
            )?;
            if db::grants::extend_grant(conn, &grant.id, expires_at)? > 0 {
                mark_issued = false;
            }
            Some(token)
        }
        _ => None,
    };
    if mark_issued && let Some(grant) = what.grant {
        db::grants::mark_tokens_issued(conn, &grant.id)?;
    }
    let mut event = AuditEvent::success(Action::TokenIssued)
        .with_actor(format!("client:{}", what.client.client_id))
        .with_client(what.client.client_id.clone())
        .with_request(meta)
        .with_detail("grant_type", what.grant_type.as_str())
        .with_detail("scope", scope)
        .with_detail("jti", access.jti.clone())
        .with_detail("id_token", id_token.is_some())
        .with_detail("refresh_token", refresh_token.is_some());
    if let Some(account) = what.account {
        event = event.with_account(account.id.as_str());
    }
    if let Some(grant) = what.grant {
        event = event.with_detail("grant", grant.id.clone());
    }
    audit::append(conn, &state.secrets, &event)?;
    Ok(Prepared {
        grant_type: what.grant_type,
        access,
        access_alg: what.client.access_token_signing_alg,
        id_token,
        refresh_token,
        expires_in: lifetimes.access_token_secs,
    })
}

/// Runs `decide` in a write transaction on the blocking pool, then signs
/// what it prepared once the transaction has committed. `decide` answers
/// `Ok(Err(refusal))` for a refusal whose records (a revoked grant, an
/// audit event) must commit all the same.
pub async fn decide_then_sign<F>(state: &AppState, meta: &RequestMeta, decide: F) -> Result<TokenResponse, OAuthError>
where
    F: FnOnce(&mut DbConn, &AppState, &RequestMeta, NaiveDateTime) -> Result<Result<Prepared, OAuthError>, OAuthError>
        + Send
        + 'static,
{
    let keys = state.keys.current();
    let (state, meta) = (state.clone(), meta.clone());
    db::run(&state.db.clone(), move |conn| {
        let decided = db::write_transaction(conn, |conn| decide(conn, &state, &meta, db::now()))?;
        // Signed after the commit: the locks are already released.
        Ok::<_, OAuthError>(decided.and_then(|prepared| sign(&state, &keys, prepared)))
    })
    .await?
}

/// [`decide_then_sign`] for a decision whose only write is one statement
/// (client_credentials: its audit event). On PostgreSQL a lone statement
/// is a transaction of its own, so BEGIN and COMMIT would only add two
/// round trips to the hottest path; SQLite keeps `write_transaction` for
/// its in-process writer queue. `decide` must not write more than once.
pub async fn decide_then_sign_one_write<F>(
    state: &AppState,
    meta: &RequestMeta,
    decide: F,
) -> Result<TokenResponse, OAuthError>
where
    F: FnOnce(&mut DbConn, &AppState, &RequestMeta, NaiveDateTime) -> Result<Result<Prepared, OAuthError>, OAuthError>
        + Send
        + 'static,
{
    let keys = state.keys.current();
    let (state, meta) = (state.clone(), meta.clone());
    db::run(&state.db.clone(), move |conn| {
        let decided = match conn {
            DbConn::Postgresql(_) => decide(conn, &state, &meta, db::now())?,
            DbConn::Sqlite(_) => db::write_transaction(conn, |conn| decide(conn, &state, &meta, db::now()))?,
        };
        Ok::<_, OAuthError>(decided.and_then(|prepared| sign(&state, &keys, prepared)))
    })
    .await?
}

/// Step 2, after the commit: the signatures.
pub fn sign(state: &AppState, keys: &KeySet, prepared: Prepared) -> Result<TokenResponse, OAuthError> {
    let access_token = sign_access_token(keys, prepared.access_alg, &prepared.access)?;
    crate::metrics::token_issued(prepared.grant_type.as_str(), &prepared.access.client_id);
    let id_token = match &prepared.id_token {
        Some(input) => {
            let scopes: Vec<&str> = input.scopes.iter().map(String::as_str).collect();
            Some(mint_id_token(
                keys,
                &IdTokenRequest {
                    issuer: &state.settings.issuer,
                    client_id: &input.client_id,
                    alg: input.alg,
                    account: &input.account,
                    scopes: &scopes,
                    nonce: input.nonce.as_deref(),
                    auth_time: input.auth_time,
                    amr: &input.amr,
                    sid: input.sid.as_deref(),
                    access_token: Some(&access_token),
                    lifetime_secs: input.lifetime_secs,
                    wechat: input.wechat.clone(),
                },
            )?)
        }
        None => None,
    };
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: prepared.expires_in,
        refresh_token: prepared.refresh_token,
        id_token,
        scope: prepared.access.scope,
        issued_token_type: None,
    })
}

/// Revokes a grant and records why (a replayed code or refresh token:
/// RFC 6749 §4.1.2 and RFC 9700 §4.14.2).
pub fn revoke_for_reuse(
    conn: &mut DbConn,
    state: &AppState,
    meta: &RequestMeta,
    grant_id: &str,
    client_id: &str,
    action: Action,
) -> diesel::QueryResult<()> {
    let grant = db::grants::find_grant(conn, grant_id)?;
    let revoked = db::grants::revoke_grant(conn, grant_id, db::now())?;
    let mut event = AuditEvent::failure(action, "replayed")
        .with_actor(format!("client:{client_id}"))
        .with_client(client_id)
        .with_request(meta)
        .with_detail("grant", grant_id)
        .with_detail("grant_revoked", revoked);
    if let Some(account) = grant.and_then(|g| g.account_id) {
        event = event.with_account(account);
    }
    audit::append(conn, &state.secrets, &event).map(|_| ())
}

/// The account behind a grant, if it may still receive tokens.
pub fn active_account(conn: &mut DbConn, grant: &GrantRow) -> Result<Option<Account>, OAuthError> {
    let Some(account_id) = &grant.account_id else {
        return Ok(None);
    };
    match crate::accounts::manage::find_by_id(conn, &crate::accounts::AccountId::from_db(account_id.clone()))? {
        Some(account) if account.is_active() => Ok(Some(account)),
        _ => Err(OAuthError::invalid_grant("the account is disabled or gone")),
    }
}

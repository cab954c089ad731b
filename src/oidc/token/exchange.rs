//! `grant_type=urn:ietf:params:oauth:grant-type:token-exchange` (RFC 8693)
//! for mini-programs and apps:
//! - `…:wechat-jscode`: a `wx.login` code (jscode2session);
//! - `…:wechat-oauth-code`: a mobile app's SendAuth code;
//!   either may be routed (`mp:<appid>:<code>`, `app:<appid>:<code>`);
//!   `phone_code` adds a WeChat-verified phone; the unlinked policy
//!   applies; the session key never leaves wxfed on this path;
//! - `urn:ietf:params:oauth:token-type:access_token`: a host app's access
//!   token, for a mini-program client that trusts that host (FinClip
//!   scheme 3).

use super::issue::{Issuance, TokenResponse, decide_then_sign, prepare};
use crate::accounts::login::verify_password;
use crate::accounts::{Account, AccountId};
use crate::audit::{self, Action, AuditEvent};
use crate::config::SecretString;
use crate::db::{self, grants::GrantRow, wechat::IdentityRow};
use crate::http::RequestMeta;
use crate::oidc::clients::{Client, GrantType};
use crate::oidc::error::{ErrorCode, OAuthError};
use crate::oidc::params::Params;
use crate::oidc::tokens::live_access_token;
use crate::state::AppState;
use crate::wechat::FlowError;
use crate::wechat::client::WechatError;
use crate::wechat::codes::{self, CodeKind};
use crate::wechat::linking::{self, Decision, LinkRefusal};

pub const WECHAT_JSCODE: &str = "urn:wxfed:params:oauth:token-type:wechat-jscode";
pub const WECHAT_OAUTH_CODE: &str = "urn:wxfed:params:oauth:token-type:wechat-oauth-code";
pub const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";

/// `invalid_grant` with a machine-readable `reason` for apps to act on.
fn refused(reason: &str, description: impl Into<String>) -> OAuthError {
    OAuthError::invalid_grant(description).with_extra("reason", reason)
}

/// A linking refusal, with its machine code as the `reason`.
fn link_refused(refusal: &LinkRefusal) -> OAuthError {
    refused(refusal.code(), refusal.to_string())
}

fn from_flow(error: FlowError) -> OAuthError {
    match error {
        FlowError::Wechat(WechatError::InvalidCode(code)) => refused(
            "wechat_code_rejected",
            format!("WeChat did not accept the code (errcode {code}); call wx.login again"),
        ),
        FlowError::Wechat(WechatError::Blocked(code)) => {
            refused("wechat_blocked", format!("WeChat blocked this login (errcode {code})"))
        }
        FlowError::Wechat(WechatError::Temporary(_) | WechatError::Unreachable(_)) => {
            OAuthError::new(ErrorCode::TemporarilyUnavailable, "WeChat is unavailable; try again shortly")
        }
        FlowError::Wechat(WechatError::Configuration { .. } | WechatError::InvalidToken(_) | WechatError::Other(_)) => {
            OAuthError::new(
                ErrorCode::TemporarilyUnavailable,
                "WeChat rejected this app's configuration; the operator has been told",
            )
            .with_extra("reason", "wechat_configuration")
        }
        FlowError::NoUnionid => refused(
            "no_unionid",
            "the routed app returned no UnionID shared with this client's app (different Open Platform)",
        ),
        FlowError::Routing(message) => refused("bad_routed_code", message),
        FlowError::Identity(identity) => match LinkRefusal::from_identity_error(&identity) {
            Some(refusal) => link_refused(&refusal),
            None => OAuthError::server_error(identity),
        },
        other => OAuthError::server_error(other),
    }
}

pub async fn exchange(
    state: &AppState,
    meta: &RequestMeta,
    client: Client,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    let subject_token = params.required("subject_token")?.to_owned();
    let subject_type = params.required("subject_token_type")?.to_owned();
    for unsupported in ["actor_token", "actor_token_type"] {
        if params.get(unsupported).is_some() {
            return Err(OAuthError::invalid_request(format!("`{unsupported}` (delegation) is not supported")));
        }
    }
    if params.get("requested_token_type").is_some_and(|t| t != ACCESS_TOKEN) {
        return Err(OAuthError::invalid_request("only access tokens can be requested"));
    }
    if params.get("audience").is_some_and(|a| a != client.client_id) {
        return Err(OAuthError::new(ErrorCode::InvalidRequest, "the audience must be the requesting client"));
    }
    let requested: Vec<&str> = params.get("scope").unwrap_or("openid").split(' ').filter(|s| !s.is_empty()).collect();
    let result = match subject_type.as_str() {
        WECHAT_JSCODE | WECHAT_OAUTH_CODE => {
            let kind = if subject_type == WECHAT_JSCODE { CodeKind::JsCode } else { CodeKind::OauthCode };
            wechat_code(state, meta, &client, params, &subject_token, kind, &requested).await
        }
        ACCESS_TOKEN => host_token(state, &client, &subject_token, &requested).await,
        _ => Err(OAuthError::invalid_request(format!("unsupported subject_token_type `{subject_type}`"))),
    };
    let (account, scopes, auth_time, amr) = match result {
        Ok(found) => found,
        Err(error) => {
            let mut event = AuditEvent::failure(Action::TokenExchange, error.code.as_str())
                .with_actor(format!("client:{}", client.client_id))
                .with_client(client.client_id.clone())
                .with_request(meta)
                .with_detail("subject_token_type", subject_type.clone());
            if let Some((_, reason)) = error.extra.iter().find(|(k, _)| *k == "reason") {
                event = event.with_detail("reason", reason.clone());
            }
            let secrets = state.secrets.clone();
            let _ =
                db::run(&state.db, move |conn| audit::record(conn, &secrets, &event).map_err(db::DbError::from)).await;
            return Err(error);
        }
    };
    let mut response = decide_then_sign(state, meta, move |conn, state, meta, now| {
        let grant = GrantRow {
            id: uuid::Uuid::new_v4().to_string(),
            client_id: client.client_id.clone(),
            account_id: Some(account.id.as_str().to_owned()),
            scope: scopes.join(" "),
            auth_time: Some(auth_time),
            amr: amr.join(" "),
            sid: None,
            created_at: now,
            expires_at: now + super::issue::seconds(state.settings.tokens.access_token_secs),
            revoked_at: None,
            tokens_issued: false,
        };
        db::grants::insert_grant(conn, &grant)?;
        let event = AuditEvent::success(Action::TokenExchange)
            .with_actor(format!("client:{}", client.client_id))
            .with_client(client.client_id.clone())
            .with_account(account.id.as_str())
            .with_request(meta)
            .with_detail("subject_token_type", subject_type.clone())
            .with_detail("grant", grant.id.clone());
        audit::append(conn, &state.secrets, &event)?;
        let issuance = Issuance {
            grant_type: GrantType::TokenExchange,
            client: &client,
            account: Some(&account),
            grant: Some(&grant),
            scopes: &scopes,
            nonce: None,
        };
        Ok(Ok(prepare(conn, state, meta, &issuance, now)?))
    })
    .await?;
    response.issued_token_type = Some(ACCESS_TOKEN);
    Ok(response)
}

type Subject = (Account, Vec<String>, chrono::NaiveDateTime, Vec<String>);

/// A WeChat code (plain or routed) → the linked account.
async fn wechat_code(
    state: &AppState,
    meta: &RequestMeta,
    client: &Client,
    params: &Params,
    subject_token: &str,
    kind: CodeKind,
    requested: &[&str],
) -> Result<Subject, OAuthError> {
    let Some(own_app) = client.wechat_app.clone() else {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "this client is not tied to a WeChat app (--wechat-app)",
        ));
    };
    let routed = codes::route(subject_token, &own_app, kind);
    let surface = if routed.routed {
        "finclip_routed"
    } else if kind == CodeKind::JsCode {
        "miniprogram"
    } else {
        "mobile_app"
    };
    if routed.routed {
        // Issue 10 item 6: everything checkable is checked before WeChat
        // sees the code (redeeming it burns it and records the person).
        codes::check_routed(state, &own_app, &routed).await.map_err(from_flow)?;
    }
    // Issue 10 item 7: only calls that would reach WeChat count against
    // the per-client and per-network budget.
    let unauthenticated_ip = client.public.then_some(meta.ip.as_str());
    crate::accounts::throttle::spend_wechat_call(state, &client.client_id, unauthenticated_ip).await?;
    let exchanged = codes::exchange(state, meta, &routed, surface).await.map_err(from_flow)?;
    let mut identity = exchanged.identity;
    if let Some(phone_code) = params.get("phone_code") {
        identity =
            crate::wechat::phone::verify(state, meta, &own_app, phone_code, &identity.id).await.map_err(|error| {
                match error {
                    FlowError::Wechat(WechatError::InvalidCode(code)) => {
                        refused("phone_code_rejected", format!("WeChat did not accept the phone code (errcode {code})"))
                    }
                    FlowError::Routing(message) => refused("phone_code_rejected", message),
                    other => from_flow(other),
                }
            })?;
    }
    let account = linked_account(state, meta, params, &identity).await?;
    let scopes = client.grantable_person_scopes(requested.iter().copied());
    Ok((account, scopes, db::now(), vec!["wechat".to_owned()]))
}

/// The account of an identity under the deployment's unlinked policy
/// (the one linking policy, `wechat::linking`); with `bind`, the request
/// may carry the account's username and password to link it now.
async fn linked_account(
    state: &AppState,
    meta: &RequestMeta,
    params: &Params,
    identity: &IdentityRow,
) -> Result<Account, OAuthError> {
    let policy = state.settings.wechat.unlinked;
    let (secrets, row) = (state.secrets.clone(), identity.clone());
    let decision = db::run(&state.db, move |conn| {
        db::write_transaction(conn, |conn| linking::login_account(conn, &secrets, &row, policy))
    })
    .await
    .map_err(from_flow)?;
    match decision {
        Decision::LogIn(account) => Ok(account),
        Decision::Refuse { reason: LinkRefusal::BindRequired, .. } => {
            let (Some(username), Some(password)) = (params.get("username"), params.get("password")) else {
                return Err(refused(
                    LinkRefusal::BindRequired.code(),
                    "this WeChat user is not linked to an account: call wx.login again and send the account's username and password with the code",
                ));
            };
            let account = match verify_password(state, username, SecretString::new(password), meta).await {
                Ok(account) => account,
                Err(error) => {
                    return Err(match LinkRefusal::from_login_error(&error) {
                        Some(refusal) => link_refused(&refusal),
                        None => OAuthError::server_error(error),
                    });
                }
            };
            let (secrets, identity_id, account_id) =
                (state.secrets.clone(), identity.id.clone(), account.id.as_str().to_owned());
            let linked = db::run(&state.db, move |conn| {
                db::write_transaction(conn, |conn| {
                    linking::bind_with_password(conn, &secrets, &identity_id, &account_id)
                })
            })
            .await
            .map_err(from_flow)?;
            linked.map_err(|refusal| link_refused(&refusal))?;
            Ok(account)
        }
        Decision::Refuse { reason, .. } => Err(link_refused(&reason)),
    }
}

/// FinClip scheme 3: the host app's access token → the same person, for
/// this mini-program client, if it trusts that host.
async fn host_token(
    state: &AppState,
    client: &Client,
    subject_token: &str,
    requested: &[&str],
) -> Result<Subject, OAuthError> {
    let Some(host) = &client.trust_host else {
        return Err(OAuthError::new(ErrorCode::UnauthorizedClient, "this client trusts no host app (--trust-host)"));
    };
    let claims = live_access_token(state, subject_token)
        .await
        .map_err(|_| refused("bad_subject_token", "the subject token is not a valid access token"))?;
    if &claims.client_id != host {
        return Err(refused("untrusted_host", "the subject token was not issued to the host app this client trusts"));
    }
    let account_id = AccountId::from_db(claims.sub.clone());
    let account = db::run(&state.db, move |conn| {
        crate::accounts::manage::find_by_id(conn, &account_id).map_err(db::DbError::from)
    })
    .await?;
    let Some(account) = account.filter(|a| a.is_active()) else {
        return Err(refused("bad_subject_token", "the subject token does not belong to an active account"));
    };
    // Never wider than what the host was given.
    let host_scopes: Vec<&str> = claims.scopes().collect();
    let scopes = client.grantable_person_scopes(requested.iter().copied().filter(|s| host_scopes.contains(s)));
    let auth_time = claims
        .auth_time
        .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
        .map(|t| t.naive_utc())
        .unwrap_or_else(db::now);
    Ok((account, scopes, auth_time, vec!["host".to_owned()]))
}

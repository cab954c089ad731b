//! Token introspection (RFC 7662) for authenticated confidential clients.
//! A client learns about tokens issued to it or meant for it (its
//! `client_id` or audience); anything else — expired, revoked, unknown,
//! another client's — is `{"active": false}` and nothing more (§2.2).

use actix_web::http::header::CACHE_CONTROL;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

use super::client_auth;
use super::error::OAuthError;
use super::params::Params;
use super::tokens::live_access_token;
use crate::accounts::{AccountId, manage};
use crate::db::{self, DbError};
use crate::secrets::sha256_hex;
use crate::state::AppState;

pub async fn introspect(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, OAuthError> {
    let params = Params::from_form_body(&req, &body)?;
    let (client, _) = client_auth::authenticate(&req, &state, &params).await?;
    if client.public {
        return Err(OAuthError::invalid_client("only confidential clients may introspect tokens"));
    }
    let token = params.required("token")?.to_owned();
    let inactive = || HttpResponse::Ok().insert_header((CACHE_CONTROL, "no-store")).json(json!({ "active": false }));

    if let Ok(claims) = live_access_token(&state, &token).await {
        if claims.client_id != client.client_id && claims.aud != client.client_id {
            return Ok(inactive());
        }
        let sub = claims.sub.clone();
        let username = if sub == claims.client_id {
            None
        } else {
            let id = AccountId::from_db(sub.clone());
            db::run(&state.db, move |conn| manage::find_by_id(conn, &id).map_err(DbError::from))
                .await?
                .map(|a| a.username)
        };
        let mut body = json!({
            "active": true,
            "token_type": "Bearer",
            "scope": claims.scope,
            "client_id": claims.client_id,
            "sub": claims.sub,
            "aud": claims.aud,
            "iss": claims.iss,
            "exp": claims.exp,
            "iat": claims.iat,
            "jti": claims.jti,
        });
        if let Some(username) = username {
            body["username"] = username.into();
        }
        return Ok(HttpResponse::Ok().insert_header((CACHE_CONTROL, "no-store")).json(body));
    }

    let client_id = client.client_id.clone();
    let refresh = db::run(&state.db, move |conn| -> Result<_, DbError> {
        let now = db::now();
        let Some(row) = db::grants::find_refresh(conn, &sha256_hex(token.as_bytes()))? else {
            return Ok(None);
        };
        let Some(grant) = db::grants::find_grant(conn, &row.grant_id)? else {
            return Ok(None);
        };
        let live = grant.client_id == client_id
            && grant.revoked_at.is_none()
            && row.rotated_at.is_none()
            && row.expires_at > now;
        Ok(live.then_some((row, grant)))
    })
    .await?;
    match refresh {
        Some((row, grant)) => Ok(HttpResponse::Ok().insert_header((CACHE_CONTROL, "no-store")).json(json!({
            "active": true,
            "token_type": "refresh_token",
            "scope": grant.scope,
            "client_id": grant.client_id,
            "sub": grant.account_id,
            "exp": row.expires_at.and_utc().timestamp(),
            "iat": row.created_at.and_utc().timestamp(),
            "iss": state.settings.issuer,
        }))),
        None => Ok(inactive()),
    }
}

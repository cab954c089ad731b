//! Token revocation (RFC 7009). Revoking a refresh token revokes its
//! whole grant (and so the access tokens issued from it, §2.1); revoking
//! an access token puts its id on the revoked list until it expires.
//! Unknown or foreign tokens get the same 200 as real ones (§2.2).

use actix_web::http::header::CACHE_CONTROL;
use actix_web::{HttpRequest, HttpResponse, web};

use super::client_auth;
use super::error::{ErrorCode, OAuthError};
use super::params::Params;
use super::tokens::verify_access_token;
use crate::audit::{self, Action, AuditEvent};
use crate::db::{self, DbError};
use crate::http::RequestMeta;
use crate::secrets::sha256_hex;
use crate::state::AppState;

pub async fn revoke(
    req: HttpRequest,
    state: web::Data<AppState>,
    meta: RequestMeta,
    body: web::Bytes,
) -> Result<HttpResponse, OAuthError> {
    let params = Params::from_form_body(&req, &body)?;
    let (client, _) = client_auth::authenticate(&req, &state, &params).await?;
    let token = params.required("token")?.to_owned();
    let hint = params.get("token_type_hint").map(str::to_owned);
    if let Some(hint) = &hint
        && hint != "access_token"
        && hint != "refresh_token"
    {
        return Err(OAuthError::new(
            ErrorCode::UnsupportedTokenType,
            "token_type_hint must be access_token or refresh_token",
        ));
    }
    // The hint only says where to look first (§2.1); both kinds are tried.
    let access = verify_access_token(&state.keys.current(), &state.settings.issuer, &token).ok();
    let (secrets, client_id) = (state.secrets.clone(), client.client_id.clone());
    db::run(&state.db, move |conn| {
        db::write_transaction(conn, |conn| -> Result<(), DbError> {
            let now = db::now();
            let mut event = None;
            if let Some(claims) = access.filter(|c| c.client_id == client_id) {
                let expires = chrono::DateTime::from_timestamp(claims.exp, 0).map(|t| t.naive_utc()).unwrap_or(now);
                db::grants::revoke_access_token(conn, &claims.jti, expires)?;
                event = Some(
                    AuditEvent::success(Action::TokenRevoked)
                        .with_detail("token_type", "access_token")
                        .with_detail("jti", claims.jti),
                );
            } else if let Some(refresh) = db::grants::find_refresh(conn, &sha256_hex(token.as_bytes()))?
                && let Some(grant) = db::grants::find_grant(conn, &refresh.grant_id)?
                && grant.client_id == client_id
            {
                let revoked = db::grants::revoke_grant(conn, &grant.id, now)?;
                let mut e = AuditEvent::success(Action::TokenRevoked)
                    .with_detail("token_type", "refresh_token")
                    .with_detail("grant", grant.id.clone())
                    .with_detail("grant_revoked", revoked);
                if let Some(account) = grant.account_id {
                    e = e.with_account(account);
                }
                event = Some(e);
            }
            if let Some(event) = event {
                let event =
                    event.with_actor(format!("client:{client_id}")).with_client(client_id.clone()).with_request(&meta);
                audit::append(conn, &secrets, &event)?;
            }
            Ok(())
        })
    })
    .await?;
    Ok(HttpResponse::Ok().insert_header((CACHE_CONTROL, "no-store")).finish())
}

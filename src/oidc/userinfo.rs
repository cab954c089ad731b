//! The UserInfo endpoint (OIDC Core §5.3), GET and POST, with the access
//! token in the Authorization header or (POST only) the form body (RFC
//! 6750 §2.1–2.2). Errors answer with a `WWW-Authenticate: Bearer`
//! challenge (RFC 6750 §3).

use actix_web::http::header::CACHE_CONTROL;
use actix_web::{HttpResponse, web};
use openidconnect::UserInfoClaims;
use openidconnect::core::CoreGenderClaim;

use super::clients;
use super::error::{ErrorCode, OAuthError};
use super::tokens::{UserinfoExtraClaims, standard_claims, verify_access_token};
use crate::accounts::{AccountId, manage};
use crate::db::{self, DbError};
use crate::http::extract::{BearerToken, BearerTokenOrForm};
use crate::state::AppState;

async fn answer(state: &AppState, token: &str) -> Result<HttpResponse, OAuthError> {
    // Signature and expiry here; revocation with the account, in one hop.
    let claims = verify_access_token(&state.keys.current(), &state.settings.issuer, token)?;
    let scopes: Vec<&str> = claims.scopes().collect();
    if !scopes.contains(&"openid") {
        return Err(OAuthError::new(ErrorCode::InsufficientScope, "the access token lacks the openid scope"));
    }
    let account_id = AccountId::from_db(claims.sub.clone());
    let (client_id, wants_wechat) = (claims.client_id.clone(), scopes.contains(&"wechat"));
    let (jti, grant) = (claims.jti.clone(), claims.gid.clone());
    let found = db::run(&state.db, move |conn| -> Result<_, DbError> {
        if !db::grants::access_token_is_live(conn, &jti, grant.as_deref())? {
            return Ok(None);
        }
        let Some(account) = manage::find_by_id(conn, &account_id)? else {
            return Ok(None);
        };
        let wechat = if wants_wechat {
            let client_app = clients::find(conn, &client_id)?.and_then(|c| c.wechat_app);
            crate::wechat::claims::for_account(conn, account.id.as_str(), client_app.as_deref())?
        } else {
            Default::default()
        };
        Ok(Some((account, wechat)))
    })
    .await?;
    let Some((account, wechat)) = found.filter(|(a, _)| a.is_active()) else {
        return Err(OAuthError::invalid_token("the access token was revoked, or its account is disabled or gone"));
    };
    let claims = UserInfoClaims::<UserinfoExtraClaims, CoreGenderClaim>::new(
        standard_claims(&account, &scopes),
        UserinfoExtraClaims { wechat },
    );
    Ok(HttpResponse::Ok().insert_header((CACHE_CONTROL, "no-store")).json(claims))
}

/// `GET /userinfo`: the token in the Authorization header only.
pub async fn userinfo_get(state: web::Data<AppState>, token: BearerToken) -> HttpResponse {
    answer(&state, &token.0).await.unwrap_or_else(|error| error.bearer_response())
}

/// `POST /userinfo`: the token in the header or the form body.
pub async fn userinfo_post(state: web::Data<AppState>, request: BearerTokenOrForm) -> HttpResponse {
    answer(&state, &request.token).await.unwrap_or_else(|error| error.bearer_response())
}

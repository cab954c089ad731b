//! The UserInfo endpoint (OIDC Core §5.3), GET and POST, with the access
//! token in the Authorization header or (POST only) the form body (RFC
//! 6750 §2.1–2.2). Errors answer with a `WWW-Authenticate: Bearer`
//! challenge (RFC 6750 §3).

use actix_web::http::header::{AUTHORIZATION, CACHE_CONTROL};
use actix_web::{HttpRequest, HttpResponse, web};
use openidconnect::UserInfoClaims;
use openidconnect::core::CoreGenderClaim;

use super::clients;
use super::error::{ErrorCode, OAuthError};
use super::params::Params;
use super::token::form_params;
use super::tokens::{AccessTokenClaims, UserinfoExtraClaims, standard_claims, verify_access_token};
use crate::accounts::{AccountId, manage};
use crate::db::{self, DbError};
use crate::state::AppState;

/// The bearer token of a request: the header, or the form field of a POST.
/// Two at once is an error (RFC 6750 §2).
fn bearer_token(req: &HttpRequest, body: Option<&Params>) -> Result<String, OAuthError> {
    let header = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| (v.len() > 7 && v[..7].eq_ignore_ascii_case("bearer ")).then(|| v[7..].trim().to_owned()));
    let form = body.and_then(|p| p.get("access_token")).map(str::to_owned);
    match (header, form) {
        (Some(_), Some(_)) => Err(OAuthError::invalid_request("send the access token once")),
        (Some(token), None) | (None, Some(token)) => Ok(token),
        (None, None) => Err(OAuthError::invalid_token("an access token is required")),
    }
}

/// Checks a presented access token fully: signature, expiry, and that
/// neither it nor its grant was revoked.
pub async fn live_access_token(state: &AppState, token: &str) -> Result<AccessTokenClaims, OAuthError> {
    let claims = verify_access_token(&state.keys.current(), &state.settings.issuer, token)?;
    let (jti, grant) = (claims.jti.clone(), claims.gid.clone());
    let live = db::run(&state.db, move |conn| {
        db::grants::access_token_is_live(conn, &jti, grant.as_deref()).map_err(DbError::from)
    })
    .await?;
    if !live {
        return Err(OAuthError::invalid_token("the access token was revoked"));
    }
    Ok(claims)
}

async fn userinfo(req: HttpRequest, state: web::Data<AppState>, body: Option<Params>) -> HttpResponse {
    match answer(&req, &state, body.as_ref()).await {
        Ok(response) => response,
        Err(error) => error.bearer_response(),
    }
}

async fn answer(req: &HttpRequest, state: &AppState, body: Option<&Params>) -> Result<HttpResponse, OAuthError> {
    let token = bearer_token(req, body)?;
    // Signature and expiry here; revocation with the account, in one hop.
    let claims = verify_access_token(&state.keys.current(), &state.settings.issuer, &token)?;
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

pub async fn userinfo_get(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if req.query_string().split('&').any(|p| p.starts_with("access_token=")) {
        // RFC 6750 §2.3: tokens in URLs end up in logs; refused.
        return OAuthError::invalid_request("send the access token in the Authorization header").bearer_response();
    }
    userinfo(req, state, None).await
}

pub async fn userinfo_post(req: HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> HttpResponse {
    let params = if body.is_empty() {
        None
    } else {
        match form_params(&req, &body) {
            Ok(params) => Some(params),
            Err(error) => return error.bearer_response(),
        }
    };
    userinfo(req, state, params).await
}

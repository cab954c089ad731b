//! FinClip scheme 1 over HTTP: `POST /api/host/wx-login-code` (see
//! `crate::wechat::host_codes` for the rules).

use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use actix_web::{HttpRequest, HttpResponse, web};

use crate::http::RequestMeta;
use crate::http::extract::BearerToken;
use crate::oidc::error::ErrorCode;
use crate::state::AppState;
use crate::wechat::host_codes;

fn appid_from(req: &HttpRequest, body: &[u8]) -> Option<String> {
    let is_json = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("application/json"));
    if is_json {
        let value: serde_json::Value = serde_json::from_slice(body).ok()?;
        return value.get("appid")?.as_str().map(str::to_owned);
    }
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).ok()?;
    pairs.into_iter().find(|(k, _)| k == "appid").map(|(_, v)| v)
}

/// `POST /api/host/wx-login-code`: the host app's bearer token, and the
/// mini-program's `appid` as JSON or a form.
pub async fn issue(
    req: HttpRequest,
    state: web::Data<AppState>,
    meta: RequestMeta,
    token: BearerToken,
    body: web::Bytes,
) -> HttpResponse {
    match host_codes::issue_code(&state, &meta, &token.0, appid_from(&req, &body)).await {
        Ok(code) => HttpResponse::Ok()
            .insert_header((CACHE_CONTROL, "no-store"))
            .json(serde_json::json!({ "code": code, "expires_in": host_codes::TTL_SECS })),
        Err(error) if matches!(error.code, ErrorCode::InvalidToken | ErrorCode::InsufficientScope) => {
            error.bearer_response()
        }
        Err(error) => actix_web::ResponseError::error_response(&error),
    }
}

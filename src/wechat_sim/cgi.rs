//! App-level access tokens and the API that uses one (wechat-api.md §3, §4):
//! `cgi-bin/token` (each call replaces the previous token after a 5-minute
//! overlap), `cgi-bin/stable_token` (the same token while it is valid,
//! isolated from `cgi-bin/token`), and `wxa/business/getuserphonenumber`.

use actix_web::http::Method;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::ids;
use super::model::AppKind;
use super::state::{App, AppToken, CodeUse, Redemption, Simulator, State};
use super::wire::{self, Params, WxError};

/// App access tokens live at most 2 hours.
const APP_TOKEN_TTL_SECS: i64 = 7200;
/// How long a replaced `cgi-bin/token` token keeps working; also how early
/// a stable token is renewed before it expires.
const OVERLAP_SECS: i64 = 300;
/// `cgi-bin/token` calls per app per day before 45009.
const CGI_TOKEN_DAILY_QUOTA: u32 = 2000;
/// Forced `stable_token` refreshes per app per day before 45009.
const FORCED_STABLE_DAILY_QUOTA: u32 = 20;

#[derive(Debug, Serialize)]
struct TokenBody {
    access_token: String,
    expires_in: i64,
}

/// `GET /cgi-bin/token`
pub(super) async fn token(sim: web::Data<Simulator>, req: HttpRequest) -> HttpResponse {
    let params = Params::parse(req.query_string());
    wire::reply(sim.with(|state| cgi_token(state, &params)))
}

/// `POST /cgi-bin/stable_token` (JSON body only).
pub(super) async fn stable_token(sim: web::Data<Simulator>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    if req.method() != Method::POST {
        return wire::reply::<()>(Err(WxError::new(43002)));
    }
    let request = serde_json::from_slice::<StableRequest>(&body).map_err(|_| WxError::new(47001));
    wire::reply(request.and_then(|request| sim.with(|state| stable(state, &request))))
}

/// `POST /wxa/business/getuserphonenumber?access_token=…` (JSON body).
pub(super) async fn get_user_phone_number(
    sim: web::Data<Simulator>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    if req.method() != Method::POST {
        return wire::reply::<()>(Err(WxError::new(43002)));
    }
    let params = Params::parse(req.query_string());
    wire::reply(sim.with(|state| phone_number(state, &params, &body)))
}

/// Only mini-programs and official accounts have app access tokens;
/// Open Platform website and mobile apps live on `/sns/*` alone.
fn authenticate_server_app(state: &State, appid: &str, secret: &str) -> Result<App, WxError> {
    let app = state.authenticate(appid, secret)?;
    match app.kind {
        AppKind::MiniProgram | AppKind::OfficialAccount => Ok(app),
        AppKind::Website | AppKind::MobileApp => Err(WxError::new(40013)),
    }
}

fn issue(state: &mut State, appid: &str) -> TokenBody {
    let access_token = ids::token();
    let expires_at = state.now() + APP_TOKEN_TTL_SECS;
    state
        .app_tokens
        .insert(access_token.clone(), AppToken { appid: appid.to_owned(), expires_at, superseded_at: None });
    state.inserted();
    TokenBody { access_token, expires_in: APP_TOKEN_TTL_SECS }
}

/// Marks `token` as replaced at `at` (never later than it already was).
fn supersede(state: &mut State, token: &str, at: i64) {
    if let Some(stored) = state.app_tokens.get_mut(token) {
        stored.superseded_at = Some(stored.superseded_at.map_or(at, |earlier| earlier.min(at)));
    }
}

fn cgi_token(state: &mut State, params: &Params) -> Result<TokenBody, WxError> {
    let appid = params.require("appid", 41002)?;
    let secret = params.require("secret", 41004)?;
    wire::check_grant_type(params.get("grant_type"), "client_credential")?;
    authenticate_server_app(state, appid, secret)?;
    if !state.take_daily_quota(appid, "cgi-bin/token", CGI_TOKEN_DAILY_QUOTA) {
        return Err(WxError::new(45009));
    }
    let issued = issue(state, appid);
    let overlap_end = state.now() + OVERLAP_SECS;
    if let Some(previous) = state.latest_cgi_token.insert(appid.to_owned(), issued.access_token.clone()) {
        supersede(state, &previous, overlap_end);
    }
    Ok(issued)
}

#[derive(Debug, Deserialize)]
struct StableRequest {
    grant_type: Option<String>,
    appid: Option<String>,
    secret: Option<String>,
    #[serde(default)]
    force_refresh: Option<bool>,
}

fn stable(state: &mut State, request: &StableRequest) -> Result<TokenBody, WxError> {
    let present = |v: &Option<String>| v.clone().filter(|v| !v.is_empty());
    let appid = present(&request.appid).ok_or_else(|| WxError::new(41002))?;
    let secret = present(&request.secret).ok_or_else(|| WxError::new(41004))?;
    wire::check_grant_type(request.grant_type.as_deref(), "client_credential")?;
    authenticate_server_app(state, &appid, &secret)?;
    let now = state.now();
    let current = state.latest_stable_token.get(&appid).cloned();
    if request.force_refresh == Some(true) {
        if !state.take_daily_quota(&appid, "stable_token force", FORCED_STABLE_DAILY_QUOTA) {
            return Err(WxError::new(45009));
        }
        // Forcing invalidates the old token at once.
        if let Some(current) = &current {
            supersede(state, current, now);
        }
    } else if let Some(current) = current {
        let remaining = state.app_tokens.get(&current).map_or(0, |t| t.expires_at - now);
        // Normal mode: the same token until 5 minutes before its expiry,
        // when a new one is issued and the old one lives out its time.
        if remaining >= OVERLAP_SECS {
            return Ok(TokenBody { access_token: current, expires_in: remaining });
        }
    }
    let issued = issue(state, &appid);
    state.latest_stable_token.insert(appid, issued.access_token.clone());
    Ok(issued)
}

/// The appid of a live app access token: 41001 / 40001 / 42001 otherwise.
fn token_owner(state: &State, params: &Params) -> Result<String, WxError> {
    let access_token = params.require("access_token", 41001)?;
    let Some(token) = state.app_tokens.get(access_token) else {
        return Err(WxError::new(40001));
    };
    let now = state.now();
    if token.superseded_at.is_some_and(|at| now >= at && at < token.expires_at) {
        return Err(WxError::new(40001));
    }
    if now >= token.expires_at {
        return Err(WxError::new(42001));
    }
    Ok(token.appid.clone())
}

#[derive(Debug, Deserialize)]
struct PhoneRequest {
    code: Option<String>,
    openid: Option<String>,
}

#[derive(Debug, Serialize)]
struct PhoneBody {
    errcode: i64,
    errmsg: &'static str,
    phone_info: PhoneInfo,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct PhoneInfo {
    phone_number: String,
    pure_phone_number: String,
    /// A string, as the Go SDKs decode it (§3), though a doc sample shows
    /// a number.
    country_code: String,
    watermark: Watermark,
}

#[derive(Debug, Serialize)]
struct Watermark {
    timestamp: i64,
    appid: String,
}

fn phone_number(state: &mut State, params: &Params, body: &[u8]) -> Result<PhoneBody, WxError> {
    let appid = token_owner(state, params)?;
    let request = serde_json::from_slice::<PhoneRequest>(body).map_err(|_| WxError::new(47001))?;
    let code = request.code.filter(|c| !c.is_empty()).ok_or_else(|| WxError::new(41008))?;
    // Used, expired, unknown or another app's code: all 40029 here (§3).
    let Redemption::Fresh { user, .. } = state.redeem_code(&appid, &code, CodeUse::Phone) else {
        return Err(WxError::new(40029));
    };
    if request.openid.is_some_and(|openid| openid != ids::openid(&user, &appid)) {
        return Err(WxError::new(40029));
    }
    let Some(phone) = state.users.get(&user).and_then(|u| u.phone.clone()) else {
        return Err(WxError::new(-1));
    };
    // Chinese numbers come without the prefix; others carry it (§3).
    let phone_number = if phone.country_code == "86" {
        phone.national.clone()
    } else {
        format!("+{}{}", phone.country_code, phone.national)
    };
    Ok(PhoneBody {
        errcode: 0,
        errmsg: "ok",
        phone_info: PhoneInfo {
            phone_number,
            pure_phone_number: phone.national,
            country_code: phone.country_code,
            watermark: Watermark { timestamp: state.now(), appid },
        },
    })
}

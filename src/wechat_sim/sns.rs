//! The `/sns/*` endpoints (wechat-api.md §1, §5, §6): `jscode2session` for
//! mini-programs, and the OAuth family shared by website, mobile-app and
//! official-account logins: `oauth2/access_token`, `oauth2/refresh_token`,
//! `auth` and `userinfo`. Parameters come from the query string only, with
//! any method (a JSON body gets 41002, like WeChat).

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;

use super::ids;
use super::model::AppKind;
use super::state::{CodeUse, Grant, Redemption, Simulator, SnsRefresh, SnsToken, State};
use super::wire::{self, Ok0, Params, WxError};

/// An OAuth access token lives 2 hours (§5).
const ACCESS_TOKEN_TTL_SECS: i64 = 7200;
/// A refresh token lives 30 days and is not renewed by use (§5, step 4).
const REFRESH_TOKEN_TTL_SECS: i64 = 30 * 86_400;

/// Runs an endpoint function on the query string under the lock.
fn answer<T: Serialize>(
    sim: &Simulator,
    req: &HttpRequest,
    endpoint: impl FnOnce(&mut State, &Params) -> Result<T, WxError>,
) -> HttpResponse {
    let params = Params::parse(req.query_string());
    wire::reply(sim.with(|state| endpoint(state, &params)))
}

/// `GET /sns/jscode2session`
pub(super) async fn jscode2session(sim: web::Data<Simulator>, req: HttpRequest) -> HttpResponse {
    answer(&sim, &req, code2session)
}

/// `GET /sns/oauth2/access_token`
pub(super) async fn oauth2_access_token(sim: web::Data<Simulator>, req: HttpRequest) -> HttpResponse {
    answer(&sim, &req, exchange_code)
}

/// `GET /sns/oauth2/refresh_token`
pub(super) async fn oauth2_refresh_token(sim: web::Data<Simulator>, req: HttpRequest) -> HttpResponse {
    answer(&sim, &req, refresh)
}

/// `GET /sns/auth`
pub(super) async fn auth(sim: web::Data<Simulator>, req: HttpRequest) -> HttpResponse {
    answer(&sim, &req, |state, params| valid_token(state, params).map(|_| Ok0::new()))
}

/// `GET /sns/userinfo`
pub(super) async fn userinfo(sim: web::Data<Simulator>, req: HttpRequest) -> HttpResponse {
    answer(&sim, &req, user_info)
}

#[derive(Debug, Serialize)]
struct SessionBody {
    openid: String,
    session_key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    unionid: Option<String>,
}

fn code2session(state: &mut State, params: &Params) -> Result<SessionBody, WxError> {
    let appid = params.require("appid", 41002)?;
    let secret = params.require("secret", 41004)?;
    let code = params.require("js_code", 41008)?;
    // Burnt before the credentials are checked: a retry after a wrong
    // secret gets 40163 (§1).
    let redemption = state.redeem_code(appid, code, CodeUse::JsCode);
    let app = state.authenticate(appid, secret)?;
    wire::check_grant_type(params.get("grant_type"), "authorization_code")?;
    let user = match redemption {
        Redemption::Fresh { user, .. } => user,
        Redemption::Used => return Err(WxError::new(40163)),
        Redemption::Expired | Redemption::Unknown => return Err(WxError::new(40029)),
    };
    Ok(SessionBody {
        openid: ids::openid(&user, appid),
        session_key: state.rotate_session_key(&user, appid),
        unionid: app.unionid_of(&user),
    })
}

#[derive(Debug, Serialize)]
struct TokenBody {
    access_token: String,
    expires_in: i64,
    refresh_token: String,
    openid: String,
    scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    unionid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    is_snapshotuser: Option<u8>,
}

fn exchange_code(state: &mut State, params: &Params) -> Result<TokenBody, WxError> {
    let appid = params.require("appid", 41002)?;
    let secret = params.require("secret", 41004)?;
    let code = params.require("code", 41008)?;
    let redemption = state.redeem_code(appid, code, CodeUse::OAuth);
    let app = state.authenticate(appid, secret)?;
    wire::check_grant_type(params.get("grant_type"), "authorization_code")?;
    let (user, scope) = match redemption {
        Redemption::Fresh { user, scope } => (user, scope),
        Redemption::Used => return Err(WxError::new(40163)),
        // The OAuth endpoint, unlike jscode2session, says so (§5).
        Redemption::Expired => return Err(WxError::new(42003)),
        Redemption::Unknown => return Err(WxError::new(40029)),
    };
    let official_account = app.kind == AppKind::OfficialAccount;
    // Snapshot pages exist only in official accounts: a virtual account
    // with fake ids that change at every login (§6).
    let snapshot = official_account && state.users.get(&user).is_some_and(|u| u.snapshot);
    let (openid, unionid) = if snapshot {
        (ids::fake_id(), app.open_platform.as_ref().map(|_| ids::fake_id()))
    } else {
        (ids::openid(&user, appid), app.unionid_of(&user))
    };
    // An official account returns unionid in the token response only for
    // snsapi_userinfo (§6); website and mobile apps whenever bound.
    let unionid_in_response = if official_account && scope != "snsapi_userinfo" { None } else { unionid.clone() };
    let grant =
        Grant { appid: appid.to_owned(), user, openid: openid.clone(), unionid, scope: scope.clone(), snapshot };
    let now = state.now();
    let access_token = ids::token();
    let refresh_token = ids::token();
    state
        .sns_tokens
        .insert(access_token.clone(), SnsToken { grant: grant.clone(), expires_at: now + ACCESS_TOKEN_TTL_SECS });
    let refresh = SnsRefresh { grant, access_token: access_token.clone(), expires_at: now + REFRESH_TOKEN_TTL_SECS };
    state.sns_refresh.insert(refresh_token.clone(), refresh);
    state.inserted();
    Ok(TokenBody {
        access_token,
        expires_in: ACCESS_TOKEN_TTL_SECS,
        refresh_token,
        openid,
        scope,
        unionid: unionid_in_response,
        is_snapshotuser: snapshot.then_some(1),
    })
}

#[derive(Debug, Serialize)]
struct RefreshBody {
    access_token: String,
    expires_in: i64,
    refresh_token: String,
    openid: String,
    scope: String,
}

fn refresh(state: &mut State, params: &Params) -> Result<RefreshBody, WxError> {
    let appid = params.require("appid", 41002)?;
    let refresh_token = params.require("refresh_token", 41003)?;
    wire::check_grant_type(params.get("grant_type"), "refresh_token")?;
    state.app(appid)?;
    let now = state.now();
    let stored = state.sns_refresh.get(refresh_token).filter(|r| r.grant.appid == appid).cloned();
    let Some(stored) = stored else {
        return Err(WxError::new(40030));
    };
    if now >= stored.expires_at {
        return Err(WxError::new(42002));
    }
    // A live access token is kept and its life extended; an expired one
    // is replaced (§5, step 4).
    let expires_at = now + ACCESS_TOKEN_TTL_SECS;
    let access_token = match state.sns_tokens.get_mut(&stored.access_token) {
        Some(live) if now < live.expires_at => {
            live.expires_at = expires_at;
            stored.access_token.clone()
        }
        _ => {
            let fresh = ids::token();
            state.sns_tokens.remove(&stored.access_token);
            state.sns_tokens.insert(fresh.clone(), SnsToken { grant: stored.grant.clone(), expires_at });
            if let Some(entry) = state.sns_refresh.get_mut(refresh_token) {
                entry.access_token = fresh.clone();
            }
            state.inserted();
            fresh
        }
    };
    Ok(RefreshBody {
        access_token,
        expires_in: ACCESS_TOKEN_TTL_SECS,
        refresh_token: refresh_token.to_owned(),
        openid: stored.grant.openid,
        scope: stored.grant.scope,
    })
}

/// The grant behind `access_token` if it is live and belongs to `openid`.
fn valid_token(state: &State, params: &Params) -> Result<Grant, WxError> {
    let access_token = params.require("access_token", 41001)?;
    let openid = params.require("openid", 41009)?;
    let Some(token) = state.sns_tokens.get(access_token) else {
        return Err(WxError::new(40014));
    };
    if state.now() >= token.expires_at {
        return Err(WxError::new(42001));
    }
    if token.grant.openid != openid {
        return Err(WxError::new(40003));
    }
    Ok(token.grant.clone())
}

#[derive(Debug, Serialize)]
struct UserInfoBody {
    openid: String,
    nickname: String,
    sex: u8,
    province: &'static str,
    city: &'static str,
    country: &'static str,
    headimgurl: String,
    privilege: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    unionid: Option<String>,
    language: String,
}

fn user_info(state: &mut State, params: &Params) -> Result<UserInfoBody, WxError> {
    let grant = valid_token(state, params)?;
    if grant.scope == "snsapi_base" {
        return Err(WxError::new(48001));
    }
    let Some(user) = state.users.get(&grant.user) else {
        return Err(WxError::new(-1));
    };
    // Snapshot-page visitors are virtual accounts WeChat shows as "微信用户".
    let (nickname, headimgurl) = if grant.snapshot {
        ("微信用户".to_owned(), String::new())
    } else {
        (user.nickname.clone(), user.avatar.clone())
    };
    let language = match params.get("lang") {
        Some(lang @ ("zh_CN" | "zh_TW" | "en")) => lang.to_owned(),
        _ => "zh_CN".to_owned(),
    };
    // Since 2021-10-20 sex is 0 and the region fields are empty (§5, 6).
    Ok(UserInfoBody {
        openid: grant.openid,
        nickname,
        sex: 0,
        province: "",
        city: "",
        country: "",
        headimgurl,
        privilege: Vec::new(),
        unionid: grant.unionid,
        language,
    })
}

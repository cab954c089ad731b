//! The sample relying party: a real OpenID Connect client (the
//! `openidconnect` crate), served by the demo on its own address. It
//! discovers wxfed, sends the browser to `/authorize` with PKCE S256
//! (RFC 7636), `state` and `nonce` (kept here, on the server, bound to the
//! browser by a cookie), exchanges the code at `/token`, verifies the ID
//! token's signature against the JWKS and its `iss`/`aud`/`nonce`/`exp`
//! (OIDC Core §3.1.3.7), then calls userinfo, and shows both.

use std::time::{Duration, Instant};

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use base64::Engine;
use openidconnect::core::{
    CoreAuthPrompt, CoreAuthenticationFlow, CoreClient, CoreProviderMetadata, CoreUserInfoClaims,
};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use serde::Deserialize;

use super::{DemoState, IN_WECHAT_COOKIE};
use crate::http::{paths, render};
use crate::i18n::{self, filters};
use crate::secrets::{constant_time_eq, random_token};

/// Binds a login in flight to the browser that started it.
const BROWSER_COOKIE: &str = "wxfed_demo_rp";
/// A login not finished within this is forgotten.
const PENDING_TTL: Duration = Duration::from_secs(900);

/// A login in flight, kept server-side under its `state`.
pub struct Pending {
    browser: String,
    verifier: PkceCodeVerifier,
    nonce: Nonce,
    via: Via,
    started: Instant,
}

/// Which login the walk-through asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Password,
    Wechat,
    OfficialAccount,
}

impl Via {
    fn parse(value: Option<&str>) -> Self {
        match value {
            Some("wechat") => Self::Wechat,
            Some("official") => Self::OfficialAccount,
            _ => Self::Password,
        }
    }

    /// The message id of its name.
    fn title(self) -> &'static str {
        match self {
            Self::Password => "demo-flow-password",
            Self::Wechat => "demo-flow-wechat-qr",
            Self::OfficialAccount => "demo-flow-official",
        }
    }
}

/// The HTTP client the library uses: reqwest, redirects not followed.
async fn http(request: openidconnect::HttpRequest) -> Result<openidconnect::HttpResponse, reqwest::Error> {
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
    let (parts, body) = request.into_parts();
    let mut builder = client.request(parts.method, parts.uri.to_string()).body(body);
    for (name, value) in &parts.headers {
        builder = builder.header(name, value);
    }
    let response = builder.send().await?;
    let mut out = openidconnect::http::Response::builder().status(response.status());
    for (name, value) in response.headers() {
        out = out.header(name, value);
    }
    let body = response.bytes().await?.to_vec();
    // The builder only fails on invalid parts, which came from a parsed response.
    Ok(out.body(body).unwrap_or_default())
}

type Client = CoreClient<
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;

/// The client, configured from wxfed's discovery document.
async fn client(demo: &DemoState) -> Result<Client, String> {
    let seeded = &demo.seeded;
    let issuer = IssuerUrl::new(seeded.base_url.clone()).map_err(|e| e.to_string())?;
    let metadata =
        CoreProviderMetadata::discover_async(issuer, &http).await.map_err(|e| format!("discovery failed: {e}"))?;
    let redirect =
        RedirectUrl::new(format!("{}{}", seeded.base_url, paths::DEMO_RP_CALLBACK)).map_err(|e| e.to_string())?;
    Ok(CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(seeded.rp.client_id.clone()),
        seeded.rp.secret.clone().map(ClientSecret::new),
    )
    .set_redirect_uri(redirect))
}

fn cookie(name: &'static str, value: String) -> Cookie<'static> {
    Cookie::build(name, value).path("/").http_only(true).same_site(SameSite::Lax).finish()
}

fn removal(name: &'static str) -> Cookie<'static> {
    let mut cookie = cookie(name, String::new());
    cookie.make_removal();
    cookie
}

#[derive(Deserialize)]
pub struct LoginQuery {
    via: Option<String>,
}

/// `GET /demo/rp/login?via=password|wechat|official`: the sample app's
/// "Log in" button.
pub async fn login(req: HttpRequest, demo: web::Data<DemoState>, query: web::Query<LoginQuery>) -> HttpResponse {
    let via = Via::parse(query.via.as_deref());
    let client = match client(&demo).await {
        Ok(client) => client,
        Err(message) => return failure(via, StatusCode::BAD_GATEWAY, message),
    };
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("phone".into()))
        .add_scope(Scope::new("wechat".into()))
        // A login page every time, even with a wxfed session already:
        // each button shows its own way of logging in (OIDC Core §3.1.2.1).
        .add_prompt(CoreAuthPrompt::Login)
        .set_pkce_challenge(challenge);
    if via == Via::Password {
        request = request.add_extra_param("login_hint", "demo");
    }
    let (url, state, nonce) = request.url();
    let browser = req.cookie(BROWSER_COOKIE).map(|c| c.value().to_owned()).unwrap_or_else(random_token);
    if let Ok(mut pending) = demo.pending.lock() {
        pending.retain(|_, p| p.started.elapsed() < PENDING_TTL);
        pending.insert(
            state.secret().clone(),
            Pending { browser: browser.clone(), verifier, nonce, via, started: Instant::now() },
        );
    }
    let mut response = HttpResponse::SeeOther();
    response.cookie(cookie(BROWSER_COOKIE, browser));
    if via == Via::OfficialAccount {
        response.cookie(cookie(IN_WECHAT_COOKIE, "1".into()));
    } else {
        response.cookie(removal(IN_WECHAT_COOKIE));
    }
    response.insert_header(("Location", url.to_string())).insert_header(("Cache-Control", "no-store")).finish()
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

#[derive(Template)]
#[template(path = "demo/rp.html")]
struct RpPage {
    title: &'static str,
    ok: bool,
    error: Option<String>,
    id_token_claims: String,
    userinfo: String,
    scopes: String,
    logout_url: String,
}

fn failure(via: Via, status: StatusCode, message: String) -> HttpResponse {
    let page = RpPage {
        title: via.title(),
        ok: false,
        error: Some(message),
        id_token_claims: String::new(),
        userinfo: String::new(),
        scopes: String::new(),
        logout_url: String::new(),
    };
    let mut builder = render::builder(status);
    builder.cookie(removal(IN_WECHAT_COOKIE));
    render::page_with(builder, &page)
}

/// `GET /demo/rp/callback`: the sample app's redirect URI.
pub async fn callback(req: HttpRequest, demo: web::Data<DemoState>, query: web::Query<CallbackQuery>) -> HttpResponse {
    let query = query.into_inner();
    let taken = query.state.as_ref().and_then(|state| demo.pending.lock().ok().and_then(|mut p| p.remove(state)));
    let browser = req.cookie(BROWSER_COOKIE).map(|c| c.value().to_owned()).unwrap_or_default();
    let Some(pending) = taken.filter(|p| constant_time_eq(p.browser.as_bytes(), browser.as_bytes())) else {
        // Unknown, used or another browser's state: RFC 6749 §10.12.
        return failure(Via::Password, StatusCode::BAD_REQUEST, i18n::t("demo-rp-state-unknown"));
    };
    let via = pending.via;
    if let Some(error) = query.error {
        let description = query.error_description.unwrap_or_default();
        return failure(via, StatusCode::OK, format!("{error}: {description}"));
    }
    let Some(code) = query.code else {
        return failure(via, StatusCode::BAD_REQUEST, i18n::t("demo-rp-no-code"));
    };
    match finish(&demo, code, pending).await {
        Ok(page) => {
            let mut builder = render::builder(StatusCode::OK);
            builder.cookie(removal(IN_WECHAT_COOKIE));
            render::page_with(builder, &page)
        }
        Err(message) => failure(via, StatusCode::BAD_GATEWAY, message),
    }
}

async fn finish(demo: &DemoState, code: String, pending: Pending) -> Result<RpPage, String> {
    let client = client(demo).await?;
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .map_err(|e| e.to_string())?
        .set_pkce_verifier(pending.verifier)
        .request_async(&http)
        .await
        .map_err(|e| format!("the code exchange failed: {e}"))?;
    let id_token = tokens.id_token().ok_or("no ID token in the token response")?;
    // Signature (JWKS), issuer, audience, expiry and nonce.
    id_token
        .claims(&client.id_token_verifier(), &pending.nonce)
        .map_err(|e| format!("the ID token does not verify: {e}"))?;
    // Verified: show every claim of its payload (the library's typed
    // claims leave out wxfed's own, such as openid and unionid).
    let claims = super::page::jwt_payload(&id_token.to_string()).unwrap_or_default();
    let userinfo: CoreUserInfoClaims = client
        .user_info(tokens.access_token().clone(), None)
        .map_err(|e| e.to_string())?
        .request_async(&http)
        .await
        .map_err(|e| format!("userinfo failed: {e}"))?;
    let scopes =
        tokens.scopes().map(|s| s.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ")).unwrap_or_default();
    let logout_url = format!(
        "{}{}?{}",
        demo.seeded.base_url,
        paths::END_SESSION,
        serde_urlencoded::to_string([
            ("id_token_hint", id_token.to_string()),
            ("post_logout_redirect_uri", format!("{}{}", demo.seeded.base_url, paths::DEMO)),
        ])
        .unwrap_or_default()
    );
    Ok(RpPage {
        title: pending.via.title(),
        ok: true,
        error: None,
        id_token_claims: serde_json::to_string_pretty(&claims).unwrap_or_default(),
        userinfo: serde_json::to_string_pretty(&userinfo).unwrap_or_default(),
        scopes,
        logout_url,
    })
}

/// Decodes base64url without padding (for the JWT payload).
pub(super) fn b64url(text: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text).ok()
}

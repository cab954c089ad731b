//! WeChat federation against the WeChat simulator.

mod browser;
mod finclip;
mod identities;
mod logs;
mod resilience;

use std::net::TcpListener;

use serde_json::{Value, json};
use wxfed::config::{SecretString, UnlinkedPolicy};
use wxfed::wechat::apps::{AppKind, NewApp};

use crate::helpers::{TestApp, TestDb, spawn_app_on};

pub const WEB_APPID: &str = "wx00000000000000aa";
pub const WEB_SECRET: &str = "websecret0000000000000000000000a";
pub const OA_APPID: &str = "wx00000000000000bb";
pub const OA_SECRET: &str = "oasecret00000000000000000000000b";
pub const PLATFORM: &str = "acme";

/// A running simulator and a client for its control API.
pub struct Wechat {
    pub base: String,
    _handle: wxfed::wechat_sim::SimulatorHandle,
    http: reqwest::Client,
}

impl Wechat {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let handle = wxfed::wechat_sim::start(listener).unwrap();
        Self { base: handle.base_url.clone(), _handle: handle, http: reqwest::Client::new() }
    }

    pub async fn control(&self, path: &str, body: Value) -> Value {
        let response = self.http.post(format!("{}/__sim/{path}", self.base)).json(&body).send().await.unwrap();
        assert!(response.status().is_success(), "sim {path}: {}", response.status());
        response.json().await.unwrap_or(Value::Null)
    }

    pub async fn add_app(&self, appid: &str, secret: &str, kind: &str, open_platform: Option<&str>) {
        self.control("apps", json!({"appid": appid, "secret": secret, "kind": kind, "open_platform": open_platform}))
            .await;
    }

    pub async fn add_user(&self, key: &str, nickname: &str) {
        self.control("users", json!({"key": key, "nickname": nickname, "phone": "+8613800138000"})).await;
    }

    /// (openid, unionid) of `user` in `appid`, as WeChat would say.
    pub async fn identity(&self, user: &str, appid: &str) -> (String, Option<String>) {
        let value: Value = self
            .http
            .get(format!("{}/__sim/identity", self.base))
            .query(&[("user", user), ("appid", appid)])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (value["openid"].as_str().unwrap().to_owned(), value["unionid"].as_str().map(str::to_owned))
    }

    pub async fn oauth_code(&self, appid: &str, user: &str, scope: Option<&str>) -> String {
        let mut body = json!({"appid": appid, "user": user});
        if let Some(scope) = scope {
            body["scope"] = scope.into();
        }
        self.control("codes/oauth", body).await["code"].as_str().unwrap().to_owned()
    }

    pub async fn jscode(&self, appid: &str, user: &str) -> String {
        self.control("codes/jscode", json!({"appid": appid, "user": user})).await["code"].as_str().unwrap().to_owned()
    }

    pub async fn phone_code(&self, appid: &str, user: &str) -> String {
        self.control("codes/phone", json!({"appid": appid, "user": user})).await["code"].as_str().unwrap().to_owned()
    }

    pub async fn fault(&self, body: Value) {
        self.control("faults", body).await;
    }

    pub async fn calls(&self, path: &str) -> i64 {
        let value: Value =
            self.http.get(format!("{}/__sim/calls", self.base)).send().await.unwrap().json().await.unwrap();
        value[path].as_i64().unwrap_or(0)
    }

    pub async fn advance(&self, secs: i64) {
        self.control("clock", json!({"advance_secs": secs})).await;
    }
}

/// wxfed + simulator, with a website app and an official account bound to
/// one Open Platform, and WeChat user `wx-alice`.
pub struct World {
    pub wechat: Wechat,
    pub app: TestApp,
    pub db: std::rc::Rc<TestDb>,
}

impl World {
    pub async fn new(policy: UnlinkedPolicy) -> Self {
        Self::with(policy, |_| {}).await
    }

    pub async fn with(policy: UnlinkedPolicy, tweak: impl FnOnce(&mut wxfed::config::Settings)) -> Self {
        let wechat = Wechat::start();
        wechat.add_app(WEB_APPID, WEB_SECRET, "website", Some(PLATFORM)).await;
        wechat.add_app(OA_APPID, OA_SECRET, "official_account", Some(PLATFORM)).await;
        wechat.add_user("wx-alice", "Alice WX").await;
        let db = TestDb::new();
        let base = wechat.base.clone();
        let app = spawn_app_on(&db, move |s| {
            s.wechat.api_base = base.clone();
            s.wechat.open_base = base;
            s.wechat.unlinked = policy;
            tweak(s);
        })
        .await;
        let world = Self { wechat, app, db: std::rc::Rc::new(db) };
        world.register(WEB_APPID, WEB_SECRET, AppKind::Website).await;
        world.register(OA_APPID, OA_SECRET, AppKind::OfficialAccount).await;
        world
    }

    pub async fn register(&self, appid: &str, secret: &str, kind: AppKind) {
        self.register_in(appid, secret, kind, Some(PLATFORM)).await;
    }

    pub async fn register_in(&self, appid: &str, secret: &str, kind: AppKind, platform: Option<&str>) {
        let state = self.app.state.clone();
        let new = NewApp {
            appid: appid.into(),
            kind,
            name: format!("{kind:?}"),
            open_platform: platform.map(str::to_owned),
            redirect_domain: None,
            secret: SecretString::new(secret),
        };
        actix_web::web::block(move || {
            let mut conn = state.db.get().unwrap();
            wxfed::wechat::apps::register(
                &mut conn,
                &state.secrets,
                &wxfed::accounts::manage::Actor("test".into()),
                &new,
            )
            .unwrap();
        })
        .await
        .unwrap();
    }

    /// Starts a WeChat login in the test browser and returns the `state`
    /// wxfed sent to WeChat, checking the redirect on the way.
    pub async fn start_login(&self, return_to: &str) -> String {
        self.start_login_with(&self.app, return_to, None).await
    }

    pub async fn start_login_with(&self, browser: &TestApp, return_to: &str, user_agent: Option<&str>) -> String {
        let mut request = browser.client.get(browser.url(&format!("/login/wechat?return_to={}", urlencode(return_to))));
        if let Some(ua) = user_agent {
            request = request.header("user-agent", ua);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 303);
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        assert!(location.starts_with(&self.wechat.base), "{location}");
        assert!(location.ends_with("#wechat_redirect"), "{location}");
        let url = url::Url::parse(&location).unwrap();
        let params: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
        assert_eq!(params["redirect_uri"], format!("{}/login/wechat/callback", browser.address));
        params["state"].clone()
    }

    /// WeChat sends the browser back with `code` and `state`.
    pub async fn callback(&self, browser: &TestApp, code: &str, state: &str) -> reqwest::Response {
        browser.get(&format!("/login/wechat/callback?code={}&state={}", urlencode(code), urlencode(state))).await
    }

    /// A complete QR login of `user` in the test browser.
    pub async fn qr_login(&self, user: &str) -> reqwest::Response {
        let state = self.start_login("/").await;
        let code = self.wechat.oauth_code(WEB_APPID, user, None).await;
        self.callback(&self.app, &code, &state).await
    }

    /// Links the WeChat identity of `user` (by UnionID) to `username`.
    pub async fn link(&self, username: &str, user: &str) -> std::process::Output {
        let (_, unionid) = self.wechat.identity(user, WEB_APPID).await;
        crate::helpers::wxfed_cli(&["link", username, "--unionid", &unionid.unwrap()], &self.db.cli_env(), None, None)
    }
}

pub fn urlencode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

pub fn location(response: &reqwest::Response) -> String {
    response.headers().get("location").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default()
}

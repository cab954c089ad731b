//! The WeChat simulator, checked over HTTP against the facts in
//! docs/wechat-api.md: what wxfed will meet from the real WeChat.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use base64::Engine;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, LOCATION};
use serde_json::{Value, json};
use wxfed::wechat_sim::{self, AppKind, Fault, NewApp, NewUser, Simulator, SimulatorHandle};

const MP1_SECRET: &str = "mp1-secret";
const WEB_SECRET: &str = "web-secret";
const OA_SECRET: &str = "oa-secret";

/// A running simulator with a fixed cast: mini-programs wxmp1, wxmp2 (both
/// on Open Platform "acme"), wxmp3 (unbound), wxmpx (platform "other"); a
/// website app wxweb, an official account wxoa and a mobile app wxapp (all
/// on "acme", the first two redirecting to rp.example); users alice (with
/// a phone), bob, carol (a snapshot-page visitor) and dave (a Hong Kong
/// phone).
struct Sim {
    handle: SimulatorHandle,
    http: reqwest::Client,
}

fn cast() -> (Vec<NewApp>, Vec<NewUser>) {
    let apps = vec![
        NewApp::new("wxmp1", MP1_SECRET, AppKind::MiniProgram).open_platform("acme").name("Mini One"),
        NewApp::new("wxmp2", "mp2-secret", AppKind::MiniProgram).open_platform("acme"),
        NewApp::new("wxmp3", "mp3-secret", AppKind::MiniProgram),
        NewApp::new("wxmpx", "mpx-secret", AppKind::MiniProgram).open_platform("other"),
        NewApp::new("wxweb", WEB_SECRET, AppKind::Website).open_platform("acme").redirect_domain("rp.example"),
        NewApp::new("wxoa", OA_SECRET, AppKind::OfficialAccount).open_platform("acme").redirect_domain("rp.example"),
        NewApp::new("wxapp", "app-secret", AppKind::MobileApp).open_platform("acme"),
    ];
    let users = vec![
        NewUser::new("alice", "Alice").phone("+8613800138000").avatar("https://thirdwx.qlogo.cn/alice/132"),
        NewUser::new("bob", "Bob"),
        NewUser::new("carol", "Carol").snapshot(true),
        NewUser::new("dave", "Dave").phone("+852 91234567"),
    ];
    (apps, users)
}

async fn spawn() -> Sim {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let handle = wechat_sim::start(listener).unwrap();
    let (apps, users) = cast();
    let state = handle.state();
    for app in apps {
        state.add_app(app).unwrap();
    }
    for user in users {
        state.add_user(user).unwrap();
    }
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    Sim { handle, http }
}

impl Sim {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.handle.base_url)
    }

    fn sim(&self) -> Simulator {
        self.handle.state()
    }

    /// A GET with query parameters; the body parsed as JSON whatever the
    /// Content-Type (as wxfed must).
    async fn get(&self, path: &str, query: &[(&str, &str)]) -> Value {
        let response = self.http.get(self.url(path)).query(query).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        serde_json::from_str(&response.text().await.unwrap()).unwrap()
    }

    async fn post(&self, path: &str, query: &[(&str, &str)], body: Value) -> Value {
        let response = self.http.post(self.url(path)).query(query).json(&body).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        serde_json::from_str(&response.text().await.unwrap()).unwrap()
    }

    async fn control(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> reqwest::Response {
        let request = self.http.request(method, self.url(path));
        let request = match body {
            Some(body) => request.json(&body),
            None => request,
        };
        request.send().await.unwrap()
    }

    async fn control_post(&self, path: &str, body: Value) -> reqwest::Response {
        self.control(reqwest::Method::POST, path, Some(body)).await
    }

    async fn jscode(&self, appid: &str, user: &str) -> String {
        let response = self.control_post("/__sim/codes/jscode", json!({"appid": appid, "user": user})).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json::<Value>().await.unwrap()["code"].as_str().unwrap().to_owned()
    }

    async fn oauth_code(&self, appid: &str, user: &str, scope: Option<&str>) -> String {
        let mut body = json!({"appid": appid, "user": user});
        if let Some(scope) = scope {
            body["scope"] = json!(scope);
        }
        let response = self.control_post("/__sim/codes/oauth", body).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json::<Value>().await.unwrap()["code"].as_str().unwrap().to_owned()
    }

    async fn phone_code(&self, appid: &str, user: &str) -> String {
        let response = self.control_post("/__sim/codes/phone", json!({"appid": appid, "user": user})).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json::<Value>().await.unwrap()["code"].as_str().unwrap().to_owned()
    }

    async fn code2session(&self, appid: &str, secret: &str, code: &str) -> Value {
        let query = [("appid", appid), ("secret", secret), ("js_code", code), ("grant_type", "authorization_code")];
        self.get("/sns/jscode2session", &query).await
    }

    async fn oauth_exchange(&self, appid: &str, secret: &str, code: &str) -> Value {
        let query = [("appid", appid), ("secret", secret), ("code", code), ("grant_type", "authorization_code")];
        self.get("/sns/oauth2/access_token", &query).await
    }

    async fn userinfo(&self, access_token: &str, openid: &str) -> Value {
        self.get("/sns/userinfo", &[("access_token", access_token), ("openid", openid), ("lang", "en")]).await
    }

    async fn refresh(&self, appid: &str, refresh_token: &str) -> Value {
        let query = [("appid", appid), ("grant_type", "refresh_token"), ("refresh_token", refresh_token)];
        self.get("/sns/oauth2/refresh_token", &query).await
    }

    async fn cgi_token(&self, appid: &str, secret: &str) -> Value {
        let query = [("grant_type", "client_credential"), ("appid", appid), ("secret", secret)];
        self.get("/cgi-bin/token", &query).await
    }

    async fn stable_token(&self, appid: &str, secret: &str, force: bool) -> Value {
        let body = json!({"grant_type": "client_credential", "appid": appid, "secret": secret, "force_refresh": force});
        self.post("/cgi-bin/stable_token", &[], body).await
    }

    async fn phone(&self, access_token: &str, body: Value) -> Value {
        self.post("/wxa/business/getuserphonenumber", &[("access_token", access_token)], body).await
    }

    async fn advance(&self, secs: u64) {
        let response = self.control_post("/__sim/clock", json!({"advance_secs": secs})).await;
        assert_eq!(response.status(), StatusCode::OK);
    }

    async fn identity(&self, user: &str, appid: &str) -> Value {
        let response = self.http.get(self.url("/__sim/identity")).query(&[("user", user), ("appid", appid)]);
        let response = response.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    /// Opens a login page and clicks a button, as a browser without
    /// JavaScript would: the hidden fields plus the clicked button.
    async fn click<Q: serde::Serialize + ?Sized>(
        &self,
        page_path: &str,
        query: &Q,
        button: (&str, &str),
    ) -> reqwest::Response {
        let page = self.http.get(self.url(page_path)).query(query).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        let html = page.text().await.unwrap();
        let mut form = hidden_inputs(&html);
        assert!(
            html.contains(&format!("name=\"{}\" value=\"{}\"", button.0, button.1)),
            "no button {button:?}: {html}"
        );
        form.push((button.0.to_owned(), unescape(button.1)));
        let action = attribute(&html, "<form", "action").unwrap();
        self.http.post(self.url(&action)).form(&form).send().await.unwrap()
    }
}

fn errcode(body: &Value) -> i64 {
    body.get("errcode").map_or(0, |code| code.as_i64().unwrap())
}

/// errmsg ends with `, rid: xxxxxxxx-xxxxxxxx-xxxxxxxx` (hex).
fn assert_rid(body: &Value) {
    let errmsg = body["errmsg"].as_str().unwrap();
    let (_, rid) = errmsg.split_once(", rid: ").unwrap_or_else(|| panic!("no rid in {errmsg:?}"));
    let groups: Vec<&str> = rid.split('-').collect();
    assert_eq!(groups.len(), 3, "{rid}");
    assert!(groups.iter().all(|g| g.len() == 8 && g.bytes().all(|b| b.is_ascii_hexdigit())), "{rid}");
}

fn unescape(text: &str) -> String {
    text.replace("&quot;", "\"").replace("&#39;", "'").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
}

/// The value of `name="…"` in the first tag starting with `tag`.
fn attribute(html: &str, tag: &str, name: &str) -> Option<String> {
    let start = html.find(tag)?;
    let tag_text = &html[start..start + html[start..].find('>')?];
    let key = format!("{name}=\"");
    let from = tag_text.find(&key)? + key.len();
    let to = from + tag_text[from..].find('"')?;
    Some(unescape(&tag_text[from..to]))
}

fn hidden_inputs(html: &str) -> Vec<(String, String)> {
    html.match_indices("<input type=\"hidden\"")
        .map(|(at, _)| {
            let rest = &html[at..];
            (attribute(rest, "<input", "name").unwrap(), attribute(rest, "<input", "value").unwrap())
        })
        .collect()
}

fn query_of(location: &str) -> HashMap<String, String> {
    let url = url::Url::parse(location).unwrap();
    url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

#[actix_web::test]
async fn openids_are_per_app_and_unionids_per_open_platform() {
    let sim = spawn().await;
    let secrets = [("wxmp1", MP1_SECRET), ("wxmp2", "mp2-secret"), ("wxmp3", "mp3-secret"), ("wxmpx", "mpx-secret")];
    let mut alice = HashMap::new();
    for (appid, secret) in secrets {
        let code = sim.jscode(appid, "alice").await;
        let body = sim.code2session(appid, secret, &code).await;
        assert_eq!(errcode(&body), 0, "{body}");
        assert!(body.get("errcode").is_none(), "success bodies carry no errcode: {body}");
        alice.insert(appid, body);
    }
    let openids: std::collections::HashSet<_> = alice.values().map(|b| b["openid"].as_str().unwrap()).collect();
    assert_eq!(openids.len(), 4, "one OpenID per app");
    assert!(openids.iter().all(|id| id.len() == 28 && id.starts_with('o')));
    assert_eq!(alice["wxmp1"]["unionid"], alice["wxmp2"]["unionid"], "same Open Platform, same UnionID");
    assert!(alice["wxmp1"]["unionid"].as_str().unwrap().starts_with('o'));
    assert!(alice["wxmp3"].get("unionid").is_none(), "unbound app: the unionid key is absent");
    assert_ne!(alice["wxmpx"]["unionid"], alice["wxmp1"]["unionid"], "another Open Platform, another UnionID");

    let code = sim.jscode("wxmp1", "bob").await;
    let bob = sim.code2session("wxmp1", MP1_SECRET, &code).await;
    assert_ne!(bob["openid"], alice["wxmp1"]["openid"]);
    assert_ne!(bob["unionid"], alice["wxmp1"]["unionid"]);

    // The control API says what WeChat says, for every kind of app.
    let identity = sim.identity("alice", "wxmp1").await;
    assert_eq!(identity["openid"], alice["wxmp1"]["openid"]);
    assert_eq!(identity["unionid"], alice["wxmp1"]["unionid"]);
    assert_eq!(sim.identity("alice", "wxmp3").await["unionid"], Value::Null);
    let web = sim.identity("alice", "wxweb").await;
    assert_eq!(web["unionid"], alice["wxmp1"]["unionid"]);
    assert_ne!(web["openid"], alice["wxmp1"]["openid"]);

    // A restarted simulator with the same seed gives the same ids.
    let again = Simulator::new();
    again.add_app(NewApp::new("wxmp1", "other", AppKind::MiniProgram).open_platform("acme")).unwrap();
    again.add_user(NewUser::new("alice", "Alice")).unwrap();
    let identity = again.identity_of("alice", "wxmp1").unwrap();
    assert_eq!(identity.openid, alice["wxmp1"]["openid"].as_str().unwrap());
    assert_eq!(identity.unionid.as_deref(), alice["wxmp1"]["unionid"].as_str());
}

#[actix_web::test]
async fn a_code_works_once_and_a_reuse_gets_40163() {
    let sim = spawn().await;
    let code = sim.jscode("wxmp1", "alice").await;
    assert_eq!(code.len(), 32);
    assert!(code.bytes().all(|b| b.is_ascii_alphanumeric()));
    assert_eq!(errcode(&sim.code2session("wxmp1", MP1_SECRET, &code).await), 0);
    let reuse = sim.code2session("wxmp1", MP1_SECRET, &code).await;
    assert_eq!(errcode(&reuse), 40163);
    assert!(reuse["errmsg"].as_str().unwrap().starts_with("code been used"));

    let code = sim.oauth_code("wxweb", "alice", None).await;
    assert_eq!(errcode(&sim.oauth_exchange("wxweb", WEB_SECRET, &code).await), 0);
    assert_eq!(errcode(&sim.oauth_exchange("wxweb", WEB_SECRET, &code).await), 40163);
}

#[actix_web::test]
async fn a_failed_first_exchange_still_burns_the_code() {
    let sim = spawn().await;
    let code = sim.jscode("wxmp1", "alice").await;
    assert_eq!(errcode(&sim.code2session("wxmp1", "wrong", &code).await), 40125);
    assert_eq!(errcode(&sim.code2session("wxmp1", MP1_SECRET, &code).await), 40163);

    let code = sim.oauth_code("wxoa", "alice", None).await;
    assert_eq!(errcode(&sim.oauth_exchange("wxoa", "wrong", &code).await), 40125);
    assert_eq!(errcode(&sim.oauth_exchange("wxoa", OA_SECRET, &code).await), 40163);
}

#[actix_web::test]
async fn another_apps_code_is_an_invalid_code_and_stays_usable_by_its_app() {
    let sim = spawn().await;
    let code = sim.jscode("wxmp1", "alice").await;
    assert_eq!(errcode(&sim.code2session("wxmp2", "mp2-secret", &code).await), 40029);
    assert_eq!(errcode(&sim.code2session("wxmp1", MP1_SECRET, &code).await), 0);
    assert_eq!(errcode(&sim.code2session("wxmp1", MP1_SECRET, "0123456789abcdefABCDEF0123456789").await), 40029);
    // A mini-program code is no OAuth code, even for the same appid.
    let code = sim.jscode("wxmp1", "alice").await;
    assert_eq!(errcode(&sim.oauth_exchange("wxmp1", MP1_SECRET, &code).await), 40029);
}

#[actix_web::test]
async fn codes_expire_on_the_simulated_clock() {
    let sim = spawn().await;
    // wx.login codes: 5 minutes, then "invalid code".
    let fresh = sim.jscode("wxmp1", "alice").await;
    let stale = sim.jscode("wxmp1", "alice").await;
    sim.advance(299).await;
    assert_eq!(errcode(&sim.code2session("wxmp1", MP1_SECRET, &fresh).await), 0);
    sim.advance(2).await;
    let expired = sim.code2session("wxmp1", MP1_SECRET, &stale).await;
    assert_eq!(errcode(&expired), 40029);
    assert_rid(&expired);

    // Official-account codes: 5 minutes, then "code expired".
    let code = sim.oauth_code("wxoa", "alice", Some("snsapi_base")).await;
    sim.advance(301).await;
    assert_eq!(errcode(&sim.oauth_exchange("wxoa", OA_SECRET, &code).await), 42003);

    // Website and mobile-app codes: 10 minutes.
    let web = sim.oauth_code("wxweb", "alice", None).await;
    let web_late = sim.oauth_code("wxweb", "alice", None).await;
    let app_late = sim.oauth_code("wxapp", "alice", None).await;
    sim.advance(599).await;
    assert_eq!(errcode(&sim.oauth_exchange("wxweb", WEB_SECRET, &web).await), 0);
    sim.advance(2).await;
    assert_eq!(errcode(&sim.oauth_exchange("wxweb", WEB_SECRET, &web_late).await), 42003);
    assert_eq!(errcode(&sim.oauth_exchange("wxapp", "app-secret", &app_late).await), 42003);
}

#[actix_web::test]
async fn unknown_appids_and_wrong_secrets_are_told_apart() {
    let sim = spawn().await;
    let code = sim.jscode("wxmp1", "alice").await;
    assert_eq!(errcode(&sim.code2session("wxnope", MP1_SECRET, &code).await), 40013);
    assert_eq!(errcode(&sim.code2session("wxmp1", "wrong", &code).await), 40125);
    assert_eq!(errcode(&sim.oauth_exchange("wxnope", "x", "code").await), 40013);
    assert_eq!(errcode(&sim.oauth_exchange("wxweb", "wrong", "code").await), 40125);
    assert_eq!(errcode(&sim.cgi_token("wxnope", "x").await), 40013);
    assert_eq!(errcode(&sim.cgi_token("wxmp1", "wrong").await), 40125);
    assert_eq!(errcode(&sim.stable_token("wxnope", "x", false).await), 40013);
    assert_eq!(errcode(&sim.stable_token("wxmp1", "wrong", false).await), 40125);
    assert_eq!(errcode(&sim.refresh("wxnope", "rt").await), 40013);
}

#[actix_web::test]
async fn missing_parameters_get_their_own_errcodes() {
    let sim = spawn().await;
    type Query<'a> = &'a [(&'a str, &'a str)];
    let cases: [(&str, Query, i64); 10] = [
        ("/sns/jscode2session", &[("secret", "s"), ("js_code", "c"), ("grant_type", "authorization_code")], 41002),
        ("/sns/jscode2session", &[("appid", ""), ("secret", "s"), ("js_code", "c")], 41002),
        ("/sns/jscode2session", &[("appid", "wxmp1"), ("js_code", "c"), ("grant_type", "authorization_code")], 41004),
        ("/sns/jscode2session", &[("appid", "wxmp1"), ("secret", "s"), ("grant_type", "authorization_code")], 41008),
        ("/sns/oauth2/access_token", &[("appid", "wxweb"), ("secret", WEB_SECRET)], 41008),
        ("/sns/oauth2/refresh_token", &[("appid", "wxweb"), ("grant_type", "refresh_token")], 41003),
        ("/sns/auth", &[("openid", "o")], 41001),
        ("/sns/userinfo", &[("access_token", "t")], 41009),
        ("/cgi-bin/token", &[("grant_type", "client_credential"), ("appid", "wxmp1")], 41004),
        ("/cgi-bin/token", &[("appid", "wxmp1"), ("secret", MP1_SECRET), ("grant_type", "password")], 40002),
    ];
    for (path, query, expected) in cases {
        let body = sim.get(path, query).await;
        assert_eq!(errcode(&body), expected, "{path} {query:?}: {body}");
        assert_rid(&body);
    }
    // Parameters are read from the query string only (§0).
    let code = sim.jscode("wxmp1", "alice").await;
    let body = json!({"appid": "wxmp1", "secret": MP1_SECRET, "js_code": code, "grant_type": "authorization_code"});
    assert_eq!(errcode(&sim.post("/sns/jscode2session", &[], body).await), 41002);
    // A wrong grant_type is refused (after the code was presented).
    let code = sim.jscode("wxmp1", "alice").await;
    let query = [("appid", "wxmp1"), ("secret", MP1_SECRET), ("js_code", code.as_str()), ("grant_type", "x")];
    assert_eq!(errcode(&sim.get("/sns/jscode2session", &query).await), 40002);
}

#[actix_web::test]
async fn each_login_rotates_the_session_key() {
    let sim = spawn().await;
    let mut keys = Vec::new();
    for _ in 0..2 {
        let code = sim.jscode("wxmp1", "alice").await;
        let body = sim.code2session("wxmp1", MP1_SECRET, &code).await;
        let key = body["session_key"].as_str().unwrap().to_owned();
        assert_eq!(key.len(), 24);
        assert_eq!(base64::engine::general_purpose::STANDARD.decode(&key).unwrap().len(), 16);
        keys.push(key);
    }
    assert_ne!(keys[0], keys[1]);
    assert_eq!(sim.sim().session_key_of("alice", "wxmp1").as_deref(), Some(keys[1].as_str()));
    assert_eq!(sim.sim().session_key_of("alice", "wxmp2"), None);
}

#[actix_web::test]
async fn errors_are_http_200_with_a_rid_and_wechats_content_types() {
    let sim = spawn().await;
    let sns = sim.http.get(sim.url("/sns/jscode2session?appid=wxmp1&secret=x&js_code=y")).send().await.unwrap();
    assert_eq!(sns.status(), StatusCode::OK);
    assert_eq!(sns.headers()[CONTENT_TYPE], "text/plain");
    let body: Value = serde_json::from_str(&sns.text().await.unwrap()).unwrap();
    assert_eq!(errcode(&body), 40125);
    assert!(body["errmsg"].as_str().unwrap().starts_with("invalid appsecret, rid: "));
    assert_rid(&body);

    let code = sim.jscode("wxmp1", "alice").await;
    let ok = sim
        .http
        .get(sim.url("/sns/jscode2session"))
        .query(&[("appid", "wxmp1"), ("secret", MP1_SECRET), ("js_code", &code), ("grant_type", "authorization_code")])
        .send()
        .await
        .unwrap();
    assert_eq!(ok.headers()[CONTENT_TYPE], "text/plain");

    let cgi = sim.http.get(sim.url("/cgi-bin/token?grant_type=client_credential&appid=wxmp1&secret=x")).send();
    let cgi = cgi.await.unwrap();
    assert_eq!(cgi.status(), StatusCode::OK);
    assert_eq!(cgi.headers()[CONTENT_TYPE], "application/json; encoding=utf-8");

    // Overridable per path, as seen through some proxies.
    let response = sim
        .control_post(
            "/__sim/content-type",
            json!({"path": "/sns/jscode2session", "value": "application/json; charset=utf-8"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let sns = sim.http.get(sim.url("/sns/jscode2session?appid=wxmp1")).send().await.unwrap();
    assert_eq!(sns.headers()[CONTENT_TYPE], "application/json; charset=utf-8");
    let other = sim.http.get(sim.url("/sns/auth")).send().await.unwrap();
    assert_eq!(other.headers()[CONTENT_TYPE], "text/plain");
}

#[actix_web::test]
async fn website_qr_login_from_page_to_refresh() {
    let sim = spawn().await;
    let query = [
        ("appid", "wxweb"),
        ("redirect_uri", "https://rp.example/callback?from=wx"),
        ("response_type", "code"),
        ("scope", "snsapi_login"),
        ("state", "s-123"),
    ];
    let page = sim.http.get(sim.url("/connect/qrconnect")).query(&query).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.headers()[CONTENT_TYPE].to_str().unwrap().starts_with("text/html"));
    let html = page.text().await.unwrap();
    for user in ["alice", "bob", "carol", "dave"] {
        assert!(html.contains(&format!("<button type=\"submit\" name=\"user\" value=\"{user}\"")), "{html}");
    }
    assert!(html.contains("Confirm as Alice"));
    assert!(html.contains("name=\"cancel\""));
    assert!(!html.contains("<script"), "the page works without JavaScript");

    let response = sim.click("/connect/qrconnect", &query, ("user", "alice")).await;
    assert_eq!(response.status(), StatusCode::FOUND);
    let location = response.headers()[LOCATION].to_str().unwrap().to_owned();
    assert!(location.starts_with("https://rp.example/callback?from=wx&code="), "{location}");
    let params = query_of(&location);
    assert_eq!(params["state"], "s-123");
    let code = &params["code"];
    assert_eq!(code.len(), 32);

    let token = sim.oauth_exchange("wxweb", WEB_SECRET, code).await;
    assert_eq!(errcode(&token), 0, "{token}");
    assert!(token.get("errcode").is_none());
    let identity = sim.identity("alice", "wxweb").await;
    assert_eq!(token["openid"], identity["openid"]);
    assert_eq!(token["unionid"], identity["unionid"]);
    assert_eq!(token["scope"], "snsapi_login");
    assert_eq!(token["expires_in"], 7200);
    assert!(token.get("token_type").is_none(), "WeChat sends no token_type");
    assert!(token.get("is_snapshotuser").is_none());
    let access_token = token["access_token"].as_str().unwrap().to_owned();
    let refresh_token = token["refresh_token"].as_str().unwrap().to_owned();
    let openid = token["openid"].as_str().unwrap().to_owned();

    let info = sim.userinfo(&access_token, &openid).await;
    assert_eq!(info["openid"], identity["openid"]);
    assert_eq!(info["unionid"], identity["unionid"]);
    assert_eq!(info["nickname"], "Alice");
    assert_eq!(info["sex"], 0);
    assert_eq!((&info["province"], &info["city"], &info["country"]), (&json!(""), &json!(""), &json!("")));
    assert_eq!(info["privilege"], json!([]));
    assert_eq!(info["headimgurl"], "https://thirdwx.qlogo.cn/alice/132");
    assert_eq!(info["language"], "en");

    let auth = sim.get("/sns/auth", &[("access_token", &access_token), ("openid", &openid)]).await;
    assert_eq!(auth, json!({"errcode": 0, "errmsg": "ok"}));
    let bob = sim.identity("bob", "wxweb").await;
    let wrong = [("access_token", access_token.as_str()), ("openid", bob["openid"].as_str().unwrap())];
    assert_eq!(errcode(&sim.get("/sns/auth", &wrong).await), 40003);
    assert_eq!(errcode(&sim.get("/sns/auth", &[("access_token", "garbage"), ("openid", &openid)]).await), 40014);
    assert_eq!(errcode(&sim.userinfo("garbage", &openid).await), 40014);

    // A live access token is kept by a refresh.
    let refreshed = sim.refresh("wxweb", &refresh_token).await;
    assert_eq!(refreshed["access_token"], access_token.as_str());
    assert_eq!(refreshed["refresh_token"], refresh_token.as_str());
    assert_eq!(refreshed["openid"], openid.as_str());
    assert_eq!(refreshed["expires_in"], 7200);

    // An expired one is replaced.
    sim.advance(7201).await;
    assert_eq!(errcode(&sim.userinfo(&access_token, &openid).await), 42001);
    let refreshed = sim.refresh("wxweb", &refresh_token).await;
    let renewed = refreshed["access_token"].as_str().unwrap();
    assert_ne!(renewed, access_token);
    assert_eq!(sim.userinfo(renewed, &openid).await["nickname"], "Alice");

    assert_eq!(errcode(&sim.refresh("wxweb", "garbage").await), 40030);
    assert_eq!(errcode(&sim.refresh("wxoa", &refresh_token).await), 40030, "another app's refresh token");
    let bad_grant = [("appid", "wxweb"), ("grant_type", "authorization_code"), ("refresh_token", &refresh_token)];
    assert_eq!(errcode(&sim.get("/sns/oauth2/refresh_token", &bad_grant).await), 40002);
    // Refresh tokens live 30 days, and using them does not extend that.
    sim.advance(30 * 86_400).await;
    assert_eq!(errcode(&sim.refresh("wxweb", &refresh_token).await), 42002);
}

#[actix_web::test]
async fn cancel_returns_with_the_state_only() {
    let sim = spawn().await;
    let query = [
        ("appid", "wxweb"),
        ("redirect_uri", "https://rp.example/cb"),
        ("response_type", "code"),
        ("scope", "snsapi_login"),
        ("state", "abc"),
    ];
    let response = sim.click("/connect/qrconnect", &query, ("cancel", "1")).await;
    assert_eq!(response.status(), StatusCode::FOUND);
    let location = response.headers()[LOCATION].to_str().unwrap();
    assert_eq!(location, "https://rp.example/cb?state=abc");
}

#[actix_web::test]
async fn bad_login_requests_get_an_error_page_never_a_redirect() {
    let sim = spawn().await;
    let good = [
        ("appid", "wxweb"),
        ("redirect_uri", "https://rp.example/cb"),
        ("response_type", "code"),
        ("scope", "snsapi_login"),
        ("state", "abc"),
    ];
    let with = |name: &str, value: &str| -> Vec<(String, String)> {
        good.iter()
            .map(|(k, v)| (k.to_string(), if *k == name { value.to_owned() } else { v.to_string() }))
            .filter(|(_, v)| !v.is_empty())
            .collect()
    };
    let long_state = "s".repeat(129);
    let cases = [
        ("/connect/qrconnect", with("appid", "wxnope")),
        ("/connect/qrconnect", with("appid", "")),
        ("/connect/qrconnect", with("appid", "wxoa")),
        ("/connect/qrconnect", with("redirect_uri", "https://evil.example/cb")),
        ("/connect/qrconnect", with("redirect_uri", "https://a.rp.example/cb")),
        ("/connect/qrconnect", with("redirect_uri", "/relative")),
        ("/connect/qrconnect", with("scope", "snsapi_userinfo")),
        ("/connect/qrconnect", with("response_type", "")),
        ("/connect/qrconnect", with("state", &long_state)),
        ("/connect/oauth2/authorize", with("scope", "snsapi_base")),
    ];
    for (path, query) in cases {
        let response = sim.http.get(sim.url(path)).query(&query).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{query:?}");
        assert!(response.headers().get(LOCATION).is_none());
        let html = response.text().await.unwrap();
        assert!(html.contains("该链接无法访问"), "{query:?}: {html}");
    }
    // A tampered form is checked again.
    let mut form = with("redirect_uri", "https://evil.example/cb");
    form.push(("flow".into(), "qrconnect".into()));
    form.push(("user".into(), "alice".into()));
    let response = sim.http.post(sim.url("/connect/confirm")).form(&form).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.text().await.unwrap().contains("该链接无法访问"));
    // A port in the registered domain is not needed.
    let query = with("redirect_uri", "http://rp.example:8080/cb");
    let response = sim.click("/connect/qrconnect", &query, ("user", "bob")).await;
    assert_eq!(response.status(), StatusCode::FOUND);
}

#[actix_web::test]
async fn login_pages_escape_what_they_show() {
    let sim = spawn().await;
    sim.sim().add_user(NewUser::new("eve\"", "<b>Eve</b> & co")).unwrap();
    let query = [
        ("appid", "wxweb"),
        ("redirect_uri", "https://rp.example/cb"),
        ("response_type", "code"),
        ("scope", "snsapi_login"),
        ("state", "\"><script>alert(1)</script>"),
    ];
    let html = sim.http.get(sim.url("/connect/qrconnect")).query(&query).send().await.unwrap().text().await.unwrap();
    assert!(!html.contains("<script>") && !html.contains("<b>Eve"), "{html}");
    assert!(html.contains("Confirm as &lt;b&gt;Eve&lt;/b&gt; &amp; co"));
    let response = sim.click("/connect/qrconnect", &query, ("user", "eve&quot;")).await;
    assert_eq!(response.status(), StatusCode::FOUND);
    let location = response.headers()[LOCATION].to_str().unwrap();
    assert_eq!(query_of(location)["state"], "\"><script>alert(1)</script>");
}

#[actix_web::test]
async fn official_account_base_scope_gives_an_openid_only() {
    let sim = spawn().await;
    let page = |scope: &'static str| {
        [
            ("appid", "wxoa"),
            ("redirect_uri", "https://rp.example/oa"),
            ("response_type", "code"),
            ("scope", scope),
            ("state", "st"),
        ]
    };
    let response = sim.click("/connect/oauth2/authorize", &page("snsapi_base"), ("user", "alice")).await;
    assert_eq!(response.status(), StatusCode::FOUND);
    let code = query_of(response.headers()[LOCATION].to_str().unwrap())["code"].clone();
    let token = sim.oauth_exchange("wxoa", OA_SECRET, &code).await;
    assert_eq!(token["scope"], "snsapi_base");
    assert!(token.get("unionid").is_none(), "an official account gives unionid only for snsapi_userinfo");
    let openid = token["openid"].as_str().unwrap();
    assert_eq!(openid, sim.identity("alice", "wxoa").await["openid"]);
    let access_token = token["access_token"].as_str().unwrap();
    assert_eq!(errcode(&sim.userinfo(access_token, openid).await), 48001);
    assert_eq!(errcode(&sim.get("/sns/auth", &[("access_token", access_token), ("openid", openid)]).await), 0);

    let response = sim.click("/connect/oauth2/authorize", &page("snsapi_userinfo"), ("user", "alice")).await;
    let code = query_of(response.headers()[LOCATION].to_str().unwrap())["code"].clone();
    let token = sim.oauth_exchange("wxoa", OA_SECRET, &code).await;
    assert_eq!(token["scope"], "snsapi_userinfo");
    assert_eq!(token["unionid"], sim.identity("alice", "wxmp1").await["unionid"]);
    let info = sim.userinfo(token["access_token"].as_str().unwrap(), token["openid"].as_str().unwrap()).await;
    assert_eq!(info["nickname"], "Alice");
}

#[actix_web::test]
async fn snapshot_page_visitors_get_fake_openids() {
    let sim = spawn().await;
    let real = sim.identity("carol", "wxoa").await;
    let mut seen = Vec::new();
    for _ in 0..2 {
        let code = sim.oauth_code("wxoa", "carol", None).await;
        let token = sim.oauth_exchange("wxoa", OA_SECRET, &code).await;
        assert_eq!(token["is_snapshotuser"], 1, "{token}");
        assert_ne!(token["openid"], real["openid"]);
        assert_ne!(token["unionid"], real["unionid"]);
        let info = sim.userinfo(token["access_token"].as_str().unwrap(), token["openid"].as_str().unwrap()).await;
        assert_eq!(info["openid"], token["openid"]);
        seen.push(token["openid"].clone());
    }
    assert_ne!(seen[0], seen[1], "a new fake openid per login");
    // Outside official accounts carol is an ordinary user.
    let code = sim.oauth_code("wxweb", "carol", None).await;
    let token = sim.oauth_exchange("wxweb", WEB_SECRET, &code).await;
    assert!(token.get("is_snapshotuser").is_none());
    assert_eq!(token["openid"], sim.identity("carol", "wxweb").await["openid"]);
}

#[actix_web::test]
async fn mobile_app_codes_link_by_unionid() {
    let sim = spawn().await;
    let code = sim.oauth_code("wxapp", "alice", None).await;
    let token = sim.oauth_exchange("wxapp", "app-secret", &code).await;
    assert_eq!(token["scope"], "snsapi_userinfo");
    assert_eq!(token["unionid"], sim.identity("alice", "wxmp1").await["unionid"]);
    assert_ne!(token["openid"], sim.identity("alice", "wxmp1").await["openid"]);
}

#[actix_web::test]
async fn stable_token_is_shared_until_forced() {
    let sim = spawn().await;
    let first = sim.stable_token("wxmp1", MP1_SECRET, false).await;
    assert_eq!(first["expires_in"], 7200);
    assert!(first.get("errcode").is_none());
    let t1 = first["access_token"].as_str().unwrap().to_owned();
    assert!(t1.len() >= 100);
    assert_eq!(sim.stable_token("wxmp1", MP1_SECRET, false).await["access_token"], t1.as_str());
    sim.advance(100).await;
    let later = sim.stable_token("wxmp1", MP1_SECRET, false).await;
    assert_eq!(later["access_token"], t1.as_str());
    let left = later["expires_in"].as_i64().unwrap();
    assert!((7098..=7100).contains(&left), "expires_in counts down: {left}");

    // Isolated from cgi-bin/token.
    let cgi = sim.cgi_token("wxmp1", MP1_SECRET).await;
    assert_ne!(cgi["access_token"], t1.as_str());
    assert_eq!(sim.stable_token("wxmp1", MP1_SECRET, false).await["access_token"], t1.as_str());

    let forced = sim.stable_token("wxmp1", MP1_SECRET, true).await;
    let t2 = forced["access_token"].as_str().unwrap().to_owned();
    assert_ne!(t2, t1);
    assert_eq!(forced["expires_in"], 7200);
    let code = sim.phone_code("wxmp1", "alice").await;
    assert_eq!(errcode(&sim.phone(&t1, json!({"code": code})).await), 40001, "forcing kills the old token");
    assert_eq!(errcode(&sim.phone(&t2, json!({"code": code})).await), 0);
    assert_eq!(errcode(&sim.phone(cgi["access_token"].as_str().unwrap(), json!({"code": "x"})).await), 40029);

    // Renewed in its last 5 minutes; the old one lives out its time.
    sim.advance(7200 - 299).await;
    let renewed = sim.stable_token("wxmp1", MP1_SECRET, false).await;
    let t3 = renewed["access_token"].as_str().unwrap().to_owned();
    assert_ne!(t3, t2);
    let code = sim.phone_code("wxmp1", "alice").await;
    assert_eq!(errcode(&sim.phone(&t2, json!({"code": code})).await), 0);
    sim.advance(300).await;
    let code = sim.phone_code("wxmp1", "alice").await;
    assert_eq!(errcode(&sim.phone(&t2, json!({"code": code})).await), 42001);

    let get = sim.get("/cgi-bin/stable_token", &[("appid", "wxmp1")]).await;
    assert_eq!(errcode(&get), 43002);
    let response = sim.http.post(sim.url("/cgi-bin/stable_token")).body("appid=wxmp1").send().await.unwrap();
    assert_eq!(errcode(&serde_json::from_str(&response.text().await.unwrap()).unwrap()), 47001);
    let wrong_grant = json!({"grant_type": "authorization_code", "appid": "wxmp1", "secret": MP1_SECRET});
    assert_eq!(errcode(&sim.post("/cgi-bin/stable_token", &[], wrong_grant).await), 40002);
    assert_eq!(errcode(&sim.stable_token("wxweb", WEB_SECRET, false).await), 40013, "website apps have no app token");
}

#[actix_web::test]
async fn a_new_cgi_token_retires_the_old_one_after_five_minutes() {
    let sim = spawn().await;
    let t1 = sim.cgi_token("wxmp1", MP1_SECRET).await;
    assert_eq!(t1["expires_in"], 7200);
    let t1 = t1["access_token"].as_str().unwrap().to_owned();
    let t2 = sim.cgi_token("wxmp1", MP1_SECRET).await["access_token"].as_str().unwrap().to_owned();
    assert_ne!(t1, t2);
    let code = sim.phone_code("wxmp1", "alice").await;
    assert_eq!(errcode(&sim.phone(&t1, json!({"code": code})).await), 0, "both work during the overlap");
    sim.advance(301).await;
    let code = sim.phone_code("wxmp1", "alice").await;
    let old = sim.phone(&t1, json!({"code": code})).await;
    assert_eq!(errcode(&old), 40001);
    assert_rid(&old);
    assert_eq!(errcode(&sim.phone(&t2, json!({"code": code})).await), 0);
    // Another app's tokens are untouched.
    let other = sim.cgi_token("wxmp2", "mp2-secret").await["access_token"].as_str().unwrap().to_owned();
    sim.advance(7200).await;
    let code = sim.phone_code("wxmp1", "alice").await;
    assert_eq!(errcode(&sim.phone(&t2, json!({"code": code})).await), 42001);
    assert_eq!(errcode(&sim.phone(&other, json!({"code": "x"})).await), 42001);
}

#[actix_web::test]
async fn phone_numbers_come_with_a_string_country_code_and_a_watermark() {
    let sim = spawn().await;
    let token = sim.cgi_token("wxmp1", MP1_SECRET).await["access_token"].as_str().unwrap().to_owned();
    let code = sim.phone_code("wxmp1", "alice").await;
    assert_eq!(code.len(), 64);
    let body = sim.phone(&token, json!({"code": code})).await;
    assert_eq!(body["errcode"], 0);
    assert_eq!(body["errmsg"], "ok");
    let info = &body["phone_info"];
    assert_eq!(info["phoneNumber"], "13800138000");
    assert_eq!(info["purePhoneNumber"], "13800138000");
    assert_eq!(info["countryCode"], json!("86"), "a string, not a number");
    assert_eq!(info["watermark"]["appid"], "wxmp1");
    let stamp = info["watermark"]["timestamp"].as_i64().unwrap();
    assert!((sim.sim().now() - stamp).abs() <= 2);
    assert_eq!(errcode(&sim.phone(&token, json!({"code": code})).await), 40029, "single use");

    let dave = sim.phone(&token, json!({"code": sim.phone_code("wxmp1", "dave").await})).await;
    assert_eq!(dave["phone_info"]["phoneNumber"], "+85291234567");
    assert_eq!(dave["phone_info"]["purePhoneNumber"], "91234567");
    assert_eq!(dave["phone_info"]["countryCode"], "852");

    let openid = sim.identity("alice", "wxmp1").await["openid"].as_str().unwrap().to_owned();
    let code = sim.phone_code("wxmp1", "alice").await;
    assert_eq!(errcode(&sim.phone(&token, json!({"code": code, "openid": openid})).await), 0);
    let code = sim.phone_code("wxmp1", "alice").await;
    assert_eq!(errcode(&sim.phone(&token, json!({"code": code, "openid": "oSomeoneElse"})).await), 40029);
    let other_app = sim.phone_code("wxmp2", "alice").await;
    assert_eq!(errcode(&sim.phone(&token, json!({"code": other_app})).await), 40029);
    let expiring = sim.phone_code("wxmp1", "alice").await;
    sim.advance(301).await;
    assert_eq!(errcode(&sim.phone(&token, json!({"code": expiring})).await), 40029);

    let url = "/wxa/business/getuserphonenumber";
    assert_eq!(errcode(&sim.post(url, &[], json!({"code": "x"})).await), 41001);
    assert_eq!(errcode(&sim.phone("garbage", json!({"code": "x"})).await), 40001);
    assert_eq!(errcode(&sim.phone(&token, json!({})).await), 41008);
}

#[actix_web::test]
async fn a_system_error_fault_leaves_the_code_usable() {
    let sim = spawn().await;
    let response = sim.control_post("/__sim/faults", json!({"path": "/sns/jscode2session", "errcode": -1})).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let code = sim.jscode("wxmp1", "alice").await;
    let failed = sim.code2session("wxmp1", MP1_SECRET, &code).await;
    assert_eq!(errcode(&failed), -1);
    assert!(failed["errmsg"].as_str().unwrap().starts_with("system error, rid: "));
    assert_rid(&failed);
    let retried = sim.code2session("wxmp1", MP1_SECRET, &code).await;
    assert_eq!(errcode(&retried), 0, "{retried}");
    assert_eq!(retried["openid"], sim.identity("alice", "wxmp1").await["openid"]);
}

#[actix_web::test]
async fn http_status_faults_repeat_and_can_be_cleared() {
    let sim = spawn().await;
    let fault = json!({"path": "/cgi-bin/token", "http_status": 502, "times": 2});
    assert_eq!(sim.control_post("/__sim/faults", fault).await.status(), StatusCode::CREATED);
    let url = sim.url("/cgi-bin/token?grant_type=client_credential&appid=wxmp1&secret=mp1-secret");
    for _ in 0..2 {
        let response = sim.http.get(&url).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
        assert!(response.headers()[CONTENT_TYPE].to_str().unwrap().starts_with("text/plain"));
        assert!(serde_json::from_str::<Value>(&response.text().await.unwrap()).is_err(), "a plain body");
    }
    assert_eq!(sim.http.get(&url).send().await.unwrap().status(), StatusCode::OK);

    sim.sim().inject_fault(Fault::errcode("/cgi-bin/token", 45009).errmsg("quota gone")).unwrap();
    let body = sim.cgi_token("wxmp1", MP1_SECRET).await;
    assert_eq!(errcode(&body), 45009);
    assert!(body["errmsg"].as_str().unwrap().starts_with("quota gone, rid: "));

    sim.sim().inject_fault(Fault::http_status("/cgi-bin/token", 500).times(5)).unwrap();
    let response = sim.control(reqwest::Method::DELETE, "/__sim/faults", None).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(errcode(&sim.cgi_token("wxmp1", MP1_SECRET).await), 0);
}

#[actix_web::test]
async fn delay_faults_answer_late() {
    let sim = spawn().await;
    let fault = json!({"path": "/sns/jscode2session", "delay_ms": 400});
    assert_eq!(sim.control_post("/__sim/faults", fault).await.status(), StatusCode::CREATED);
    let code = sim.jscode("wxmp1", "alice").await;
    let started = Instant::now();
    let body = sim.code2session("wxmp1", MP1_SECRET, &code).await;
    assert!(started.elapsed() >= Duration::from_millis(400), "{:?}", started.elapsed());
    assert_eq!(errcode(&body), 0, "answered normally");
    let started = Instant::now();
    let code = sim.jscode("wxmp1", "alice").await;
    assert_eq!(errcode(&sim.code2session("wxmp1", MP1_SECRET, &code).await), 0);
    assert!(started.elapsed() < Duration::from_millis(400), "only once");

    sim.sim().inject_fault(Fault::errcode("/sns/jscode2session", -1).with_delay(200)).unwrap();
    let started = Instant::now();
    assert_eq!(errcode(&sim.code2session("wxmp1", MP1_SECRET, "x").await), -1);
    assert!(started.elapsed() >= Duration::from_millis(200));
}

#[actix_web::test]
async fn calls_are_counted_per_wechat_path() {
    let sim = spawn().await;
    for _ in 0..3 {
        sim.cgi_token("wxmp1", MP1_SECRET).await;
    }
    sim.stable_token("wxmp1", MP1_SECRET, false).await;
    sim.code2session("wxmp1", MP1_SECRET, "x").await;
    let counts: Value = sim.control(reqwest::Method::GET, "/__sim/calls", None).await.json().await.unwrap();
    assert_eq!(counts, json!({"/cgi-bin/token": 3, "/cgi-bin/stable_token": 1, "/sns/jscode2session": 1}));
    assert_eq!(sim.sim().call_count("/cgi-bin/token"), 3);
    assert_eq!(sim.sim().call_count("/sns/userinfo"), 0);
    let response = sim.control(reqwest::Method::DELETE, "/__sim/calls", None).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let counts: Value = sim.control(reqwest::Method::GET, "/__sim/calls", None).await.json().await.unwrap();
    assert_eq!(counts, json!({}));
}

#[actix_web::test]
async fn the_control_api_refuses_bad_setups() {
    let sim = spawn().await;
    let health = sim.control(reqwest::Method::GET, "/__sim/healthz", None).await;
    assert_eq!(health.status(), StatusCode::OK);

    let app = json!({
        "appid": "wxnew", "secret": "s", "kind": "website", "open_platform": "acme", "redirect_domain": "x.example"
    });
    let created = sim.control_post("/__sim/apps", app.clone()).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    assert_eq!(created.json::<Value>().await.unwrap(), json!({"appid": "wxnew"}));
    assert_eq!(sim.control_post("/__sim/apps", app).await.status(), StatusCode::CONFLICT);
    let bad_kind = json!({"appid": "wxbad", "secret": "s", "kind": "game"});
    let refused = sim.control_post("/__sim/apps", bad_kind).await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert!(refused.json::<Value>().await.unwrap()["error"].is_string());

    let user = json!({"key": "zoe", "nickname": "Zoe", "phone": "+8613900139000", "snapshot": false});
    assert_eq!(sim.control_post("/__sim/users", user.clone()).await.status(), StatusCode::CREATED);
    assert_eq!(sim.control_post("/__sim/users", user).await.status(), StatusCode::CONFLICT);
    let bad_phone = json!({"key": "yan", "nickname": "Yan", "phone": "+85291234567"});
    assert_eq!(sim.control_post("/__sim/users", bad_phone).await.status(), StatusCode::BAD_REQUEST);

    let unknown = sim.http.get(sim.url("/__sim/identity?user=nobody&appid=wxmp1")).send().await.unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let cases = [
        ("/__sim/codes/jscode", json!({"appid": "wxweb", "user": "alice"}), StatusCode::BAD_REQUEST),
        ("/__sim/codes/jscode", json!({"appid": "wxmp1", "user": "nobody"}), StatusCode::NOT_FOUND),
        (
            "/__sim/codes/oauth",
            json!({"appid": "wxoa", "user": "alice", "scope": "snsapi_login"}),
            StatusCode::BAD_REQUEST,
        ),
        ("/__sim/codes/oauth", json!({"appid": "wxmp1", "user": "alice"}), StatusCode::BAD_REQUEST),
        ("/__sim/codes/phone", json!({"appid": "wxmp1", "user": "bob"}), StatusCode::BAD_REQUEST),
        ("/__sim/faults", json!({"path": "/sns/auth"}), StatusCode::BAD_REQUEST),
        ("/__sim/faults", json!({"path": "/sns/auth", "http_status": 1000}), StatusCode::BAD_REQUEST),
        ("/__sim/content-type", json!({"path": "/sns/auth", "value": "bad\nvalue"}), StatusCode::BAD_REQUEST),
        ("/__sim/clock", json!({"advance_secs": -5}), StatusCode::BAD_REQUEST),
    ];
    for (path, body, status) in cases {
        assert_eq!(sim.control_post(path, body.clone()).await.status(), status, "{path} {body}");
    }
    let before = sim.sim().now();
    let moved: Value = sim.control_post("/__sim/clock", json!({"advance_secs": 3600})).await.json().await.unwrap();
    assert!(moved["now"].as_i64().unwrap() >= before + 3600);
    assert_eq!(sim.http.get(sim.url("/no/such/path")).send().await.unwrap().status(), StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn the_binary_serves_its_seed_file() {
    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("seed.json");
    let content = json!({
        "apps": [{"appid": "wxseed", "secret": "seed-secret", "kind": "miniprogram", "open_platform": "acme"}],
        "users": [{"key": "alice", "nickname": "Alice"}]
    });
    std::fs::write(&seed, content.to_string()).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_wechat-sim"))
        .args(["--bind", "127.0.0.1:0", "--seed"])
        .arg(&seed)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let base_url = line.trim().to_owned();
    assert!(base_url.starts_with("http://127.0.0.1:") && !base_url.ends_with('/'), "{base_url}");
    let response = reqwest::get(format!("{base_url}/__sim/identity?user=alice&appid=wxseed")).await.unwrap();
    let status = response.status();
    let identity: Value = response.json().await.unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(status, StatusCode::OK);
    let expected = {
        let sim = Simulator::new();
        sim.add_app(NewApp::new("wxseed", "s", AppKind::MiniProgram).open_platform("acme")).unwrap();
        sim.add_user(NewUser::new("alice", "A")).unwrap();
        sim.identity_of("alice", "wxseed").unwrap()
    };
    assert_eq!(identity["openid"], expected.openid.as_str());
    assert_eq!(identity["unionid"].as_str(), expected.unionid.as_deref());
}

//! `wxfed demo` (issue 12 §1), started in-process on port 0 and driven
//! over HTTP like a browser: every button of `/demo` reaches its success
//! page. On PostgreSQL the demo runs against a fresh, empty database
//! given as `--database`; on SQLite it makes its own temporary file.

use wxfed::demo::{self, DemoError, DemoOptions, Seeded};

use crate::helpers::{TestDb, spawn_app_on};

struct Running {
    seeded: Seeded,
    base: String,
    /// A browser: cookies kept, redirects followed (across wxfed and the
    /// WeChat simulator).
    browser: reqwest::Client,
    dir: std::path::PathBuf,
    _db: Option<TestDb>,
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::limited(20))
        .user_agent("Mozilla/5.0 (X11; Linux x86_64) wxfed-tests")
        .build()
        .unwrap()
}

async fn start() -> Running {
    // PostgreSQL runs use a fresh database of their own; SQLite runs the
    // demo's default (its own temporary file).
    let db = TestDb::new();
    let database = db.is_postgres().then(|| db.url.clone());
    let demo =
        demo::start(DemoOptions { bind: "127.0.0.1:0".parse().unwrap(), database, locale: wxfed::i18n::Locale::En })
            .await
            .expect("the demo starts");
    let seeded = demo.seeded.clone();
    let dir = demo.dir().to_owned();
    let base = seeded.base_url.clone();
    actix_web::rt::spawn(demo.run_until_stopped());
    Running { seeded, base, browser: browser(), dir, _db: Some(db) }
}

impl Running {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn password(&self, username: &str) -> String {
        self.seeded.account(username).unwrap().password.clone()
    }

    async fn get(&self, url: &str) -> (String, u16, String) {
        let response = self.browser.get(url).send().await.unwrap();
        let (final_url, status) = (response.url().to_string(), response.status().as_u16());
        (final_url, status, response.text().await.unwrap())
    }

    async fn post(&self, url: &str, form: &[(String, String)]) -> (String, u16, String) {
        let response = self.browser.post(url).form(form).send().await.unwrap();
        let (final_url, status) = (response.url().to_string(), response.status().as_u16());
        (final_url, status, response.text().await.unwrap())
    }

    /// Submits wxfed's login form on `page` (at `url`) as `username`.
    async fn log_in_on(&self, page: &str, username: &str) -> (String, u16, String) {
        let mut fields = hidden_fields(page, "action=\"/login\"");
        fields.push(("username".into(), username.into()));
        fields.push(("password".into(), self.password(username)));
        self.post(&self.url("/login"), &fields).await
    }

    /// Signs in to the console as `username` (a fresh login).
    async fn sign_in(&self, username: &str) {
        let (_, _, page) = self.get(&self.url("/login?return_to=/demo")).await;
        let (url, status, _) = self.log_in_on(&page, username).await;
        assert_eq!((status, url.ends_with("/demo")), (200, true), "{username} signs in: {url}");
    }

    async fn csrf(&self) -> String {
        let (_, status, page) = self.get(&self.url("/demo")).await;
        assert_eq!(status, 200);
        value_after(&page, "name=\"csrf_token\" value=\"").unwrap()
    }

    /// Presses a server-side flow's button.
    async fn flow(&self, name: &str) -> String {
        let csrf = self.csrf().await;
        let (_, status, page) =
            self.post(&self.url(&format!("/demo/flows/{name}")), &[("csrf_token".into(), csrf)]).await;
        assert_eq!(status, 200, "{name}: {page}");
        assert!(page.contains("data-testid=\"flow-ok\""), "{name} succeeded: {page}");
        page
    }
}

fn value_after(text: &str, marker: &str) -> Option<String> {
    let start = text.find(marker)? + marker.len();
    let end = text[start..].find('"')? + start;
    Some(html_unescape(&text[start..end]))
}

fn html_unescape(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find('&') {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find(';').map(|e| e + start) else { break };
        let entity = &rest[start + 1..end];
        let decoded = match entity {
            "quot" => Some('"'),
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "apos" => Some('\''),
            _ => entity.strip_prefix('#').and_then(|n| n.parse::<u32>().ok()).and_then(char::from_u32),
        };
        match decoded {
            Some(c) => out.push(c),
            None => out.push_str(&rest[start..=end]),
        }
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// The hidden inputs of the first form whose tag contains `form_marker`.
fn hidden_fields(page: &str, form_marker: &str) -> Vec<(String, String)> {
    let start = page.find(form_marker).unwrap_or_else(|| panic!("no form {form_marker} in {page}"));
    let form = &page[start..start + page[start..].find("</form>").unwrap()];
    form.split("<input")
        .skip(1)
        .filter(|tag| tag.contains("type=\"hidden\""))
        .filter_map(|tag| Some((value_after(tag, "name=\"")?, value_after(tag, "value=\"")?)))
        .collect()
}

/// The JSON of `<pre data-testid=...>` on a result page.
fn pre_json(page: &str, testid: &str) -> serde_json::Value {
    let marker = format!("data-testid=\"{testid}\">");
    let start = page.find(&marker).unwrap_or_else(|| panic!("no {testid}")) + marker.len();
    let end = page[start..].find("</pre>").unwrap() + start;
    serde_json::from_str(&html_unescape(&page[start..end])).unwrap()
}

/// A WeChat login through the simulator's page, confirming as wx-demo.
async fn wechat_login(run: &Running, via: &str, simulator_path: &str) -> String {
    let (url, status, login_page) = run.get(&run.url(&format!("/demo/rp/login?via={via}"))).await;
    assert_eq!(status, 200);
    assert!(url.contains("/login?"), "wxfed's login page: {url}");
    let link = value_after(&login_page, "class=\"button wechat\" href=\"").expect("a WeChat button");
    let (sim_url, status, sim_page) = run.get(&run.url(&link)).await;
    assert_eq!(status, 200);
    assert!(sim_url.starts_with(&run.seeded.sim_url) && sim_url.contains(simulator_path), "{sim_url}");
    let mut fields = hidden_fields(&sim_page, "action=\"/connect/confirm\"");
    fields.push(("user".into(), demo::WX_DEMO.into()));
    let (url, status, page) = run.post(&format!("{}/connect/confirm", run.seeded.sim_url), &fields).await;
    assert_eq!(status, 200, "{url}: {page}");
    assert!(url.contains("/demo/rp/callback"), "{url}");
    page
}

#[actix_web::test]
async fn every_button_of_the_demo_reaches_its_success_page() {
    let run = start().await;
    let (_, status, index) = run.get(&run.url("/demo")).await;
    assert_eq!(status, 200);
    for account in &run.seeded.accounts {
        assert!(index.contains(&account.password), "the page shows {}'s password", account.username);
    }
    for testid in [
        "flow-password",
        "flow-wechat-qr",
        "flow-official",
        "flow-mini-program",
        "flow-phone",
        "flow-finclip-1",
        "flow-finclip-2",
        "flow-finclip-3",
        "flow-link",
        "flow-merge",
        "flow-audit-export",
        "flow-audit-verify",
    ] {
        assert!(index.contains(&format!("data-testid=\"{testid}\"")), "{testid} on /demo");
    }
    let demo_id = run.seeded.account("demo").unwrap().id.clone();

    // Password login at the sample RP: wxfed's login page, then back.
    let (url, status, login_page) = run.get(&run.url("/demo/rp/login?via=password")).await;
    assert_eq!(status, 200);
    assert!(url.contains("/login?") && login_page.contains("value=\"demo\""), "login_hint fills the username");
    let (url, status, page) = run.log_in_on(&login_page, "demo").await;
    assert_eq!(status, 200, "{url}: {page}");
    assert!(page.contains("data-testid=\"rp-ok\""), "{page}");
    let claims = pre_json(&page, "rp-claims");
    assert_eq!(claims["sub"], demo_id);
    assert_eq!(claims["amr"], serde_json::json!(["pwd"]));
    let userinfo = pre_json(&page, "rp-userinfo");
    assert_eq!(userinfo["preferred_username"], "demo");
    assert_eq!(userinfo["sub"], demo_id);

    // WeChat QR login, and the official account's page "inside WeChat".
    let page = wechat_login(&run, "wechat", "/connect/qrconnect").await;
    assert!(page.contains("data-testid=\"rp-ok\""), "{page}");
    let claims = pre_json(&page, "rp-claims");
    assert_eq!((claims["sub"].as_str(), claims["amr"][0].as_str()), (Some(demo_id.as_str()), Some("wechat")));
    let page = wechat_login(&run, "official", "/connect/oauth2/authorize").await;
    assert!(page.contains("data-testid=\"rp-ok\""), "{page}");
    assert_eq!(pre_json(&page, "rp-claims")["sub"], demo_id);

    // The server-side flows.
    let page = run.flow("mini-program").await;
    assert_eq!(pre_json(&page, "step-2")["id_token_claims"]["sub"], demo_id);
    let page = run.flow("phone").await;
    assert_eq!(pre_json(&page, "step-4")["phone_number"], demo::DEMO_PHONE);
    let page = run.flow("finclip-1").await;
    assert!(pre_json(&page, "step-4")["unionid"].is_string(), "{page}");
    let page = run.flow("finclip-2").await;
    assert!(pre_json(&page, "step-2")["openid"].is_string(), "{page}");
    let page = run.flow("finclip-3").await;
    assert_eq!(pre_json(&page, "step-3")["id_token_claims"]["sub"], demo_id);
    let page = run.flow("audit-export").await;
    assert_eq!(pre_json(&page, "step-4")["valid"], true, "{page}");

    // Admin console: link Carol's WeChat identity, merge carol-old.
    run.sign_in("admin").await;
    let (_, status, index) = run.get(&run.url("/demo")).await;
    assert_eq!(status, 200);
    let link = value_after(&index, "data-testid=\"flow-link\" href=\"").unwrap();
    let (_, status, identity) = run.get(&run.url(&link)).await;
    assert_eq!(status, 200);
    let mut fields = hidden_fields(&identity, "data-testid=\"link-form\"");
    fields.push(("username".into(), "carol".into()));
    fields.push(("reason".into(), "demo: confirmed by phone".into()));
    let (_, status, page) = run.post(&run.url(&format!("{link}/link")), &fields).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("data-testid=\"linked-account\""), "linked: {page}");

    let merge = value_after(&index, "data-testid=\"flow-merge\" href=\"").unwrap();
    let (_, status, preview) = run.get(&run.url(&merge)).await;
    assert_eq!(status, 200);
    assert!(preview.contains("data-testid=\"merge-plan\""), "a merge preview: {preview}");
    let mut fields = hidden_fields(&preview, "data-testid=\"merge-form\"");
    for field in ["phone", "email", "display_name"] {
        if preview.contains(&format!("name=\"prefer_{field}\"")) {
            fields.push((format!("prefer_{field}"), "into".into()));
        }
    }
    fields.push(("reason".into(), "demo: the same person".into()));
    let action = merge.split('?').next().unwrap();
    let (_, status, page) = run.post(&run.url(action), &fields).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("data-testid=\"account-username\""), "{page}");

    // Auditor: the console's export link downloads JSONL.
    run.sign_in("auditor").await;
    let response = run.browser.get(run.url("/audit/export?format=jsonl")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    assert!(
        body.lines().count() > 3 && body.contains("wechat_identity.linked") && body.contains("user.merged"),
        "{body}"
    );
    assert!(run.dir.exists());
}

#[actix_web::test]
async fn the_demo_refuses_a_database_that_is_not_its_own() {
    // An installation's database: migrated, with an account in it.
    let db = TestDb::new();
    let app = spawn_app_on(&db, |_| {}).await;
    app.add_user("alice", "correct horse battery").await;
    let refused = demo::start(DemoOptions {
        bind: "127.0.0.1:0".parse().unwrap(),
        database: Some(db.url.clone()),
        locale: wxfed::i18n::Locale::En,
    })
    .await;
    assert!(matches!(refused, Err(DemoError::NotADemoDatabase(_))), "{:?}", refused.err());
    assert_eq!(crate::helpers::count(&db, "accounts"), 1, "nothing was added");
}

#[actix_web::test]
async fn an_earlier_demos_database_is_refused_too_and_the_demo_removes_its_files() {
    let db = TestDb::new();
    let options = || DemoOptions {
        bind: "127.0.0.1:0".parse().unwrap(),
        database: Some(db.url.clone()),
        locale: wxfed::i18n::Locale::En,
    };
    let first = demo::start(options()).await.expect("an empty database is taken");
    let dir = first.dir().to_owned();
    assert!(dir.exists());
    drop(first);
    assert!(!dir.exists(), "the temporary directory goes with the demo");
    let again = demo::start(options()).await;
    assert!(matches!(again, Err(DemoError::EarlierDemo(_))), "{:?}", again.err());
}

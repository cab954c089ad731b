//! "Log in with WeChat" in the browser, and each unlinked policy.

use wxfed::config::UnlinkedPolicy;

use super::{OA_APPID, WEB_APPID, World, location};
use crate::helpers::{TestApp, count, extract_csrf, new_client};
use crate::oidc::{Provider, client_settings, redirect_params};

const PASSWORD: &str = "correct horse battery";

#[actix_web::test]
async fn a_linked_person_logs_in_with_a_qr_code_and_the_client_gets_their_id_token() {
    let world = World::new(UnlinkedPolicy::Deny).await;
    // A relying party on this wxfed, with alice linked to her WeChat.
    let mut settings = client_settings("Portal");
    settings.scopes = vec!["openid".into(), "profile".into(), "wechat".into()];
    let provider = Provider::on(world.app.clone(), world.db.clone(), settings).await;
    assert!(world.qr_login("wx-alice").await.status().is_client_error(), "not linked yet");
    let linked = world.link("alice", "wx-alice").await;
    assert!(linked.status.success(), "{}", String::from_utf8_lossy(&linked.stderr));

    // A fresh browser: the authorization request sends it to log in.
    let browser = TestApp { address: world.app.address.clone(), client: new_client(), state: world.app.state.clone() };
    let authorize = provider.authorize_url(&[("scope", "openid profile wechat")]);
    let to_login = browser.client.get(&authorize).send().await.unwrap();
    let login_url = location(&to_login);
    let page = browser.get(&login_url).await.text().await.unwrap();
    assert!(page.contains("Sign in with WeChat"), "the login page offers WeChat");
    let return_to = url::Url::parse(&format!("http://x{login_url}"))
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "return_to")
        .unwrap()
        .1
        .into_owned();

    let state = world.start_login_with(&browser, &return_to, None).await;
    let code = world.wechat.oauth_code(WEB_APPID, "wx-alice", None).await;
    let back = world.callback(&browser, &code, &state).await;
    assert_eq!(back.status(), 303, "{}", back.text().await.unwrap_or_default());
    let to_rp = browser.get(&location(&back)).await;
    let params = redirect_params(&to_rp);
    let tokens: serde_json::Value = provider.redeem(&params["code"]).await.json().await.unwrap();

    let claims = decode_claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(claims["sub"], provider.account_id, "the ID token is alice's");
    assert_eq!(claims["amr"], serde_json::json!(["wechat"]));
    let (_, unionid) = world.wechat.identity("wx-alice", WEB_APPID).await;
    assert_eq!(claims["unionid"], unionid.unwrap());

    let events = world.app.audit_rows().await;
    let login = events.iter().rev().find(|e| e.action == "login.wechat" && e.outcome == "success").unwrap();
    assert_eq!(login.account_id.as_deref(), Some(provider.account_id.as_str()));
    let detail: serde_json::Value = serde_json::from_str(&login.detail).unwrap();
    assert_eq!(detail["surface"], "website");
    for event in &events {
        let (openid, unionid) = world.wechat.identity("wx-alice", WEB_APPID).await;
        assert!(!format!("{event:?}").contains(&openid), "no raw OpenID in the audit trail");
        assert!(!format!("{event:?}").contains(&unionid.unwrap()), "no raw UnionID in the audit trail");
    }
}

pub fn decode_claims(jwt: &str) -> serde_json::Value {
    use base64::Engine;
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[actix_web::test]
async fn deny_shows_a_clear_page() {
    let world = World::new(UnlinkedPolicy::Deny).await;
    let response = world.qr_login("wx-alice").await;
    assert_eq!(response.status(), 403);
    assert!(response.text().await.unwrap().contains("not linked to an account"));
    assert_eq!(count(&world.db, "wechat_identities"), 1, "the identity is remembered for an admin to link");
    assert_eq!(count(&world.db, "sessions"), 0);
}

#[actix_web::test]
async fn create_makes_a_wechat_only_account() {
    let world = World::new(UnlinkedPolicy::Create).await;
    let response = world.qr_login("wx-alice").await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), "/");
    let home = world.app.get("/").await.text().await.unwrap();
    assert!(home.contains("Alice WX"), "display name from WeChat");
    assert_eq!(count(&world.db, "accounts"), 1);
    // The next login finds the same account.
    world.app.post_form("/logout", &[("csrf_token", &extract_csrf(&home))]).await;
    assert_eq!(world.qr_login("wx-alice").await.status(), 303);
    assert_eq!(count(&world.db, "accounts"), 1, "no second account");
}

#[actix_web::test]
async fn bind_links_after_the_person_proves_their_password() {
    let world = World::new(UnlinkedPolicy::Bind).await;
    world.app.add_user("alice", PASSWORD).await;
    let page = world.qr_login("wx-alice").await;
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(page.contains("Link your WeChat account") && page.contains("Alice WX"));
    let marker = r#"name="bind_token" value=""#;
    let start = page.find(marker).unwrap() + marker.len();
    let bind_token = page[start..start + page[start..].find('"').unwrap()].to_owned();
    let csrf = extract_csrf(&page);

    let wrong = world
        .app
        .post_form(
            "/login/wechat/bind",
            &[
                ("csrf_token", &csrf),
                ("bind_token", &bind_token),
                ("username", "alice"),
                ("password", "wrong password"),
            ],
        )
        .await;
    assert_eq!(wrong.status(), 401);
    let right = world
        .app
        .post_form(
            "/login/wechat/bind",
            &[("csrf_token", &csrf), ("bind_token", &bind_token), ("username", "alice"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(right.status(), 303);
    assert_eq!(world.app.get("/").await.status(), 200, "logged in");

    // Linked: the next WeChat login goes straight in.
    let browser = TestApp { address: world.app.address.clone(), client: new_client(), state: world.app.state.clone() };
    let state = world.start_login_with(&browser, "/", None).await;
    let code = world.wechat.oauth_code(WEB_APPID, "wx-alice", None).await;
    assert_eq!(world.callback(&browser, &code, &state).await.status(), 303);
    let actions: Vec<String> = world.app.audit_rows().await.into_iter().map(|e| e.action).collect();
    assert!(actions.contains(&"wechat_identity.linked".to_owned()));
}

#[actix_web::test]
async fn the_state_is_single_use_and_bound_to_the_browser() {
    let world = World::new(UnlinkedPolicy::Create).await;
    let state = world.start_login("/").await;
    // Another browser cannot finish this login.
    let other = TestApp { address: world.app.address.clone(), client: new_client(), state: world.app.state.clone() };
    let code = world.wechat.oauth_code(WEB_APPID, "wx-alice", None).await;
    assert_eq!(world.callback(&other, &code, &state).await.status(), 400);
    // ...and the state is spent: not even the right browser can use it now.
    let code = world.wechat.oauth_code(WEB_APPID, "wx-alice", None).await;
    assert_eq!(world.callback(&world.app, &code, &state).await.status(), 400);
    // A made-up state is refused.
    assert_eq!(world.callback(&world.app, &code, "made-up").await.status(), 400);
    assert_eq!(count(&world.db, "sessions"), 0);
}

#[actix_web::test]
async fn inside_wechat_the_official_account_page_is_used() {
    let world = World::new(UnlinkedPolicy::Create).await;
    let ua = "Mozilla/5.0 (iPhone) AppleWebKit/605.1.15 MicroMessenger/8.0.50";
    let response = world.app.client.get(world.app.url("/login/wechat")).header("user-agent", ua).send().await.unwrap();
    let location = location(&response);
    assert!(location.contains("/connect/oauth2/authorize?"), "{location}");
    assert!(location.contains("scope=snsapi_userinfo") && location.contains(OA_APPID));
    let state = world.start_login_with(&world.app, "/", Some(ua)).await;
    let code = world.wechat.oauth_code(OA_APPID, "wx-alice", Some("snsapi_userinfo")).await;
    assert_eq!(world.callback(&world.app, &code, &state).await.status(), 303);
    let login = world.app.audit_rows().await.into_iter().rev().find(|e| e.action == "login.wechat").unwrap();
    assert!(login.detail.contains("official_account"));
}

#[actix_web::test]
async fn cancelling_at_wechat_returns_to_a_calm_page() {
    let world = World::new(UnlinkedPolicy::Create).await;
    let state = world.start_login("/").await;
    let response = world.app.get(&format!("/login/wechat/callback?state={}", super::urlencode(&state))).await;
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().contains("cancelled"));
}

#[actix_web::test]
async fn without_a_wechat_app_the_login_page_offers_no_wechat_button() {
    let (app, _db) = crate::helpers::spawn_app().await;
    let page = app.get("/login").await.text().await.unwrap();
    assert!(!page.contains("Sign in with WeChat"));
    assert_eq!(app.get("/login/wechat").await.status(), 404);
}

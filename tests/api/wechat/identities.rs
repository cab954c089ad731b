//! The identity model: one identity per person per Open Platform, merges,
//! linking rules, the shared app access token.

use wxfed::config::UnlinkedPolicy;

use super::{OA_APPID, WEB_APPID, World};
use crate::helpers::{TestApp, count, new_client, wxfed_cli};

const PASSWORD: &str = "correct horse battery";
const UA: &str = "Mozilla/5.0 MicroMessenger/8.0.50";

#[actix_web::test]
async fn one_person_in_two_apps_of_one_platform_is_one_identity() {
    let world = World::new(UnlinkedPolicy::Create).await;
    assert_eq!(world.qr_login("wx-alice").await.status(), 303);
    let other_browser =
        TestApp { address: world.app.address.clone(), client: new_client(), state: world.app.state.clone() };
    let state = world.start_login_with(&other_browser, "/", Some(UA)).await;
    let code = world.wechat.oauth_code(OA_APPID, "wx-alice", Some("snsapi_userinfo")).await;
    assert_eq!(world.callback(&other_browser, &code, &state).await.status(), 303);
    assert_eq!(count(&world.db, "wechat_identities"), 1);
    assert_eq!(count(&world.db, "wechat_openids"), 2, "two apps, two OpenIDs");
    assert_eq!(count(&world.db, "accounts"), 1, "one account");
}

#[actix_web::test]
async fn an_openid_only_identity_merges_when_its_unionid_appears() {
    let world = World::new(UnlinkedPolicy::Deny).await;
    world.app.add_user("alice", PASSWORD).await;
    // 1. A website login: the UnionID identity, not linked yet.
    assert_eq!(world.qr_login("wx-alice").await.status(), 403);
    // 2. Inside WeChat, a silent snsapi_base login: an OpenID and no
    //    UnionID, so a second, OpenID-only identity. The admin links it.
    let state = world.start_login_with(&world.app, "/", Some(UA)).await;
    let code = world.wechat.oauth_code(OA_APPID, "wx-alice", Some("snsapi_base")).await;
    assert_eq!(world.callback(&world.app, &code, &state).await.status(), 403);
    assert_eq!(count(&world.db, "wechat_identities"), 2);
    let (oa_openid, _) = world.wechat.identity("wx-alice", OA_APPID).await;
    let linked =
        wxfed_cli(&["link", "alice", "--appid", OA_APPID, "--openid", &oa_openid], &world.db.cli_env(), None, None);
    assert!(linked.status.success(), "{}", String::from_utf8_lossy(&linked.stderr));

    // 3. A snsapi_userinfo login reveals the UnionID of that OpenID: the two
    //    identities become one, and alice's link is kept.
    let state = world.start_login_with(&world.app, "/", Some(UA)).await;
    let code = world.wechat.oauth_code(OA_APPID, "wx-alice", Some("snsapi_userinfo")).await;
    assert_eq!(
        world.callback(&world.app, &code, &state).await.status(),
        303,
        "alice logs in through the merged identity"
    );
    assert_eq!(count(&world.db, "wechat_identities"), 1);
    assert_eq!(count(&world.db, "wechat_openids"), 2);
    assert_eq!(count(&world.db, "accounts"), 1);

    // 4. The website login now finds alice too.
    let browser = TestApp { address: world.app.address.clone(), client: new_client(), state: world.app.state.clone() };
    let state = world.start_login_with(&browser, "/", None).await;
    let code = world.wechat.oauth_code(WEB_APPID, "wx-alice", None).await;
    assert_eq!(world.callback(&browser, &code, &state).await.status(), 303);
    let shown = wxfed_cli(
        &["identity", "show", "--appid", OA_APPID, "--openid", &oa_openid, "--json"],
        &world.db.cli_env(),
        None,
        None,
    );
    let shown: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(shown["openids"].as_array().unwrap().len(), 2);
    assert!(shown["unionid"].is_string());
    assert!(world.app.audit_rows().await.iter().any(|e| e.action == "wechat_identity.merged"));
}

#[actix_web::test]
async fn an_openid_only_identity_gains_its_unionid_in_place() {
    let world = World::new(UnlinkedPolicy::Create).await;
    let state = world.start_login_with(&world.app, "/", Some(UA)).await;
    let code = world.wechat.oauth_code(OA_APPID, "wx-alice", Some("snsapi_base")).await;
    assert_eq!(world.callback(&world.app, &code, &state).await.status(), 303);
    let state = world.start_login_with(&world.app, "/", Some(UA)).await;
    let code = world.wechat.oauth_code(OA_APPID, "wx-alice", Some("snsapi_userinfo")).await;
    assert_eq!(world.callback(&world.app, &code, &state).await.status(), 303);
    let browser = TestApp { address: world.app.address.clone(), client: new_client(), state: world.app.state.clone() };
    let state = world.start_login_with(&browser, "/", None).await;
    let code = world.wechat.oauth_code(WEB_APPID, "wx-alice", None).await;
    assert_eq!(world.callback(&browser, &code, &state).await.status(), 303);
    assert_eq!(count(&world.db, "wechat_identities"), 1, "one identity");
    assert_eq!(count(&world.db, "accounts"), 1, "one account, never a duplicate");
}

#[actix_web::test]
async fn conflicting_links_are_refused_with_a_reason() {
    let world = World::new(UnlinkedPolicy::Deny).await;
    world.app.add_user("alice", PASSWORD).await;
    world.app.add_user("bob", PASSWORD).await;
    world.wechat.add_user("wx-bob", "Bob WX").await;
    world.qr_login("wx-alice").await;
    let browser = TestApp { address: world.app.address.clone(), client: new_client(), state: world.app.state.clone() };
    let state = world.start_login_with(&browser, "/", None).await;
    let code = world.wechat.oauth_code(WEB_APPID, "wx-bob", None).await;
    world.callback(&browser, &code, &state).await;

    assert!(world.link("alice", "wx-alice").await.status.success());
    let taken = world.link("bob", "wx-alice").await;
    assert!(!taken.status.success());
    assert!(String::from_utf8_lossy(&taken.stderr).contains("already linked to the account `alice`"));
    let second = world.link("alice", "wx-bob").await;
    assert!(!second.status.success());
    assert!(String::from_utf8_lossy(&second.stderr).contains("already linked to another WeChat identity of `acme`"));

    let (_, unionid) = world.wechat.identity("wx-alice", WEB_APPID).await;
    let unlinked = wxfed_cli(&["unlink", "alice", "--unionid", &unionid.unwrap()], &world.db.cli_env(), None, None);
    assert!(unlinked.status.success());
    assert!(world.link("bob", "wx-alice").await.status.success(), "free to link once unlinked");
}

#[actix_web::test]
async fn two_instances_share_one_stable_access_token() {
    let world = World::new(UnlinkedPolicy::Deny).await;
    let base = world.wechat.base.clone();
    let second = crate::helpers::spawn_app_on(&world.db, move |s| {
        s.wechat.api_base = base.clone();
        s.wechat.open_base = base;
    })
    .await;
    let token_of = |app: &TestApp| {
        let state = app.state.clone();
        async move {
            // App access tokens exist for mini-programs and official accounts.
            wxfed::wechat::app_tokens::with_access_token(&state, OA_APPID, |token| async move {
                Ok(token.expose().to_owned())
            })
            .await
            .unwrap()
        }
    };
    let first_token = token_of(&world.app).await;
    let second_token = token_of(&second).await;
    assert_eq!(first_token, second_token);
    assert_eq!(token_of(&world.app).await, first_token);
    assert_eq!(world.wechat.calls("/cgi-bin/stable_token").await, 1, "fetched once, shared through the database");
    assert_eq!(world.wechat.calls("/cgi-bin/token").await, 0);
}

#[actix_web::test]
async fn wechat_apps_are_managed_from_the_cli_with_secrets_sealed() {
    let world = World::new(UnlinkedPolicy::Deny).await;
    let env = world.db.cli_env();
    let added = wxfed_cli(
        &[
            "wechat-app",
            "add",
            "--kind",
            "miniprogram",
            "--appid",
            "wx00000000000000cc",
            "--name",
            "Shop",
            "--open-platform",
            "acme",
            "--secret-stdin",
            "--json",
        ],
        &env,
        Some("mp-secret-value\n"),
        None,
    );
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
    let list = wxfed_cli(&["wechat-app", "list", "--json"], &env, None, None);
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(text.contains("wx00000000000000cc") && !text.contains("mp-secret-value"));
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        secret: String,
    }
    let rows: Vec<Row> =
        diesel::RunQueryDsl::load(diesel::sql_query("SELECT secret FROM wechat_apps"), &mut world.db.connect())
            .unwrap();
    assert!(rows.iter().all(|r| r.secret.starts_with("v1:") && !r.secret.contains("secret")));
    let bad = wxfed_cli(
        &["wechat-app", "add", "--kind", "website", "--appid", "not-an-appid", "--name", "X", "--secret-stdin"],
        &env,
        Some("s"),
        None,
    );
    assert!(!bad.status.success());
    let removed = wxfed_cli(&["wechat-app", "remove", "wx00000000000000cc"], &env, None, None);
    assert!(removed.status.success());
}

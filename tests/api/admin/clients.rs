//! `/admin/clients`, `/admin/wechat-apps`, `/admin/keys`, `/admin/settings`:
//! every action and every refusal.

use super::{PASSWORD, form_of, grant, make_authentication_stale, page_token, pairs, post, signed_in_admin};
use crate::helpers::{TestApp, count, spawn_app};
use wxfed::accounts::Role;
use wxfed::accounts::manage::Actor;
use wxfed::config::{MasterKeySource, SecretString, Settings};
use wxfed::db::DatabaseTarget;
use wxfed::wechat::apps::{self, AppKind, NewApp};

fn between<'a>(page: &'a str, marker: &str) -> Option<&'a str> {
    let at = page.find(marker)? + marker.len();
    let start = page[at..].find('>')? + at + 1;
    Some(&page[start..start + page[start..].find('<')?])
}

/// Adds a confidential client through the console; returns its id and secret.
async fn add_client(app: &TestApp, name: &str, extra: &[(&str, &str)]) -> (String, String) {
    let token = page_token(app, "/admin/clients").await;
    let mut fields =
        pairs(&[("csrf_token", &token), ("name", name), ("redirect_uris", "https://app.example.com/cb\n")]);
    fields.extend(pairs(extra));
    let response = post(app, "/admin/clients", &fields).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let page = response.text().await.unwrap();
    let id = between(&page, "data-testid=\"client-id\"").expect("the client page").to_owned();
    let secret = between(&page, "data-testid=\"client-secret\"").expect("the secret, once").to_owned();
    (id, secret)
}

async fn add_app(app: &TestApp, appid: &str) {
    let (state, appid) = (app.state.clone(), appid.to_owned());
    actix_web::web::block(move || {
        let mut conn = state.db.get().unwrap();
        let new = NewApp {
            appid,
            kind: AppKind::MiniProgram,
            name: "Shop".into(),
            open_platform: None,
            redirect_domain: None,
            secret: SecretString::new("app-secret-123"),
        };
        apps::register(&mut conn, &state.secrets, &Actor("test".into()), &new).unwrap();
    })
    .await
    .unwrap();
}

async fn secret_hash(app: &TestApp, client_id: &str) -> Option<String> {
    let (state, id) = (app.state.clone(), client_id.to_owned());
    actix_web::web::block(move || {
        let mut conn = state.db.get().unwrap();
        wxfed::db::clients::find(&mut conn, &id).unwrap().and_then(|c| c.secret_hash)
    })
    .await
    .unwrap()
}

#[actix_web::test]
async fn an_admin_adds_a_client_sees_the_secret_once_and_edits_it() {
    let (app, _db) = spawn_app().await;
    signed_in_admin(&app, "ada").await;
    let (id, secret) = add_client(&app, "HR portal", &[("grant_type", "authorization_code")]).await;
    assert!(secret.len() >= 32);
    let rows = app.audit_rows().await;
    let added = rows.iter().rfind(|r| r.action == "client.added").unwrap();
    assert!(!added.detail.contains(&secret), "never audit a secret");

    // The list and the detail page never show it again.
    let list = app.get("/admin/clients").await.text().await.unwrap();
    assert!(list.contains(&id) && list.contains("HR portal"));
    let path = format!("/admin/clients/{id}");
    let detail = app.get(&path).await.text().await.unwrap();
    assert!(!detail.contains(&secret));
    assert!(!detail.contains("data-testid=\"client-secret\""));

    // Edit: the form carries every setting.
    let token = page_token(&app, &path).await;
    let edit = pairs(&[
        ("csrf_token", &token),
        ("name", "HR portal 2"),
        ("redirect_uris", "https://hr.example.com/cb\r\nhttps://hr.example.com/cb2"),
        ("post_logout_redirect_uris", "https://hr.example.com/"),
        ("grant_type", "authorization_code"),
        ("grant_type", "refresh_token"),
        ("scope", "openid"),
        ("scope", "profile"),
        ("first_party", "on"),
        ("id_token_alg", "ES256"),
        ("access_token_alg", "EdDSA"),
        ("wechat_app", ""),
        ("host_for", ""),
        ("trust_host", ""),
    ]);
    let saved = post(&app, &path, &edit).await;
    assert_eq!(saved.status(), 303);
    assert_eq!(saved.headers()["location"], format!("{path}?done=1"));
    let page = app.get(&format!("{path}?done=1")).await.text().await.unwrap();
    assert!(page.contains("https://hr.example.com/cb2"));
    assert!(page.contains("HR portal 2"));
    let rows = app.audit_rows().await;
    let updated = rows.iter().rfind(|r| r.action == "client.updated").unwrap();
    assert!(updated.actor.as_deref().is_some_and(|a| a.starts_with("account:")), "{:?}", updated.actor);
    let detail: serde_json::Value = serde_json::from_str(&updated.detail).unwrap();
    assert_eq!(detail["before"]["redirect_uris"][0], "https://app.example.com/cb");
    assert_eq!(detail["after"]["redirect_uris"][1], "https://hr.example.com/cb2");
    assert_eq!(detail["after"]["id_token_signing_alg"], "ES256");
    assert_eq!(detail["after"]["first_party"], true);

    // A bad redirect URI: 400 with the reason, nothing changed.
    let mut bad = edit.clone();
    bad[2].1 = "http://evil.example.com/cb".into();
    let refused = post(&app, &path, &bad).await;
    assert_eq!(refused.status(), 400);
    assert!(refused.text().await.unwrap().contains("data-testid=\"error\""));
    // An unknown algorithm: 400, not a 500.
    let mut bad = edit.clone();
    bad[10].1 = "none".into();
    assert_eq!(post(&app, &path, &bad).await.status(), 400);
    // A client that does not exist.
    assert_eq!(app.get("/admin/clients/nope").await.status(), 404);
    assert_eq!(post(&app, "/admin/clients/nope", &edit).await.status(), 404);
}

#[actix_web::test]
async fn adding_a_client_with_bad_input_is_refused_with_a_message() {
    let (app, _db) = spawn_app().await;
    signed_in_admin(&app, "ada").await;
    let token = page_token(&app, "/admin/clients").await;
    let response = post(
        &app,
        "/admin/clients",
        &pairs(&[("csrf_token", &token), ("name", "x"), ("redirect_uris", "javascript:alert(1)")]),
    )
    .await;
    assert_eq!(response.status(), 400);
    assert!(response.text().await.unwrap().contains("data-testid=\"error\""));
    let response = post(
        &app,
        "/admin/clients",
        &pairs(&[
            ("csrf_token", &token),
            ("name", "x"),
            ("redirect_uris", "https://a.example/cb"),
            ("grant_type", "password"),
        ]),
    )
    .await;
    assert_eq!(response.status(), 400);
}

#[actix_web::test]
async fn rotating_and_removing_a_client_are_sensitive() {
    let (app, db) = spawn_app().await;
    signed_in_admin(&app, "ada").await;
    let (id, secret) = add_client(&app, "Payroll", &[]).await;
    let path = format!("/admin/clients/{id}");
    let token = page_token(&app, &path).await;
    let before = secret_hash(&app, &id).await;

    // Missing CSRF: refused, nothing changed.
    assert_eq!(post(&app, &format!("{path}/secret"), &[]).await.status(), 403);
    assert_eq!(post(&app, &format!("{path}/remove"), &[]).await.status(), 403);

    // Stale authentication: the password prompt, then the rotation.
    make_authentication_stale(&db);
    let prompt = post(&app, &format!("{path}/secret"), &pairs(&[("csrf_token", &token)])).await;
    assert_eq!(prompt.status(), 200);
    let page = prompt.text().await.unwrap();
    assert!(page.contains("data-testid=\"reauth-form\""));
    assert_eq!(secret_hash(&app, &id).await, before, "not rotated before the password");
    let (action, mut fields) = form_of(&page, "data-testid=\"reauth-form\"");
    fields.push(("password".into(), PASSWORD.into()));
    let page = post(&app, &action, &fields).await.text().await.unwrap();
    let (action, fields) = form_of(&page, "data-testid=\"continue-form\"");
    let rotated = post(&app, &action, &fields).await;
    assert_eq!(rotated.status(), 200);
    let page = rotated.text().await.unwrap();
    let new_secret = between(&page, "data-testid=\"client-secret\"").unwrap().to_owned();
    assert_ne!(new_secret, secret);
    assert_ne!(secret_hash(&app, &id).await, before);
    let rows = app.audit_rows().await;
    let event = rows.iter().rfind(|r| r.action == "client.secret_rotated").unwrap();
    assert!(!event.detail.contains(&new_secret));

    // Remove (authentication now fresh).
    let removed = post(&app, &format!("{path}/remove"), &pairs(&[("csrf_token", &token)])).await;
    assert_eq!(removed.status(), 303);
    assert_eq!(removed.headers()["location"], "/admin/clients?done=removed");
    assert_eq!(app.get(&path).await.status(), 404);
    assert!(app.audit_rows().await.iter().any(|r| r.action == "client.removed"));
    assert_eq!(post(&app, &format!("{path}/remove"), &pairs(&[("csrf_token", &token)])).await.status(), 404);
}

#[actix_web::test]
async fn a_public_client_has_no_secret_to_rotate() {
    let (app, _db) = spawn_app().await;
    signed_in_admin(&app, "ada").await;
    let token = page_token(&app, "/admin/clients").await;
    let page = post(
        &app,
        "/admin/clients",
        &pairs(&[
            ("csrf_token", &token),
            ("name", "SPA"),
            ("redirect_uris", "https://spa.example/cb"),
            ("public", "on"),
        ]),
    )
    .await
    .text()
    .await
    .unwrap();
    assert!(!page.contains("data-testid=\"client-secret\""));
    assert!(!page.contains("data-testid=\"rotate-secret\""));
    let id = between(&page, "data-testid=\"client-id\"").unwrap().to_owned();
    let refused = post(&app, &format!("/admin/clients/{id}/secret"), &pairs(&[("csrf_token", &token)])).await;
    assert_eq!(refused.status(), 400);
}

#[actix_web::test]
async fn wechat_apps_are_added_rotated_and_removed_unless_a_client_uses_them() {
    let (app, db) = spawn_app().await;
    signed_in_admin(&app, "ada").await;
    let token = page_token(&app, "/admin/wechat-apps").await;
    let new = pairs(&[
        ("csrf_token", &token),
        ("appid", "wx0123456789abcdef"),
        ("name", "商城小程序"),
        ("kind", "miniprogram"),
        ("open_platform", "wxop"),
        ("secret", "the-app-secret-value"),
    ]);
    let added = post(&app, "/admin/wechat-apps", &new).await;
    assert_eq!(added.status(), 303);
    let page = app.get("/admin/wechat-apps?done=1").await.text().await.unwrap();
    assert!(page.contains("wx0123456789abcdef") && page.contains("商城小程序"));
    assert!(!page.contains("the-app-secret-value"));
    assert!(!app.audit_rows().await.iter().any(|r| r.detail.contains("the-app-secret-value")));
    // Twice: conflict.
    assert_eq!(post(&app, "/admin/wechat-apps", &new).await.status(), 409);
    // A bad appid and a bad kind: 400.
    let mut bad = new.clone();
    bad[1].1 = "not-an-appid".into();
    assert_eq!(post(&app, "/admin/wechat-apps", &bad).await.status(), 400);
    let mut bad = new.clone();
    bad[3].1 = "robot".into();
    assert_eq!(post(&app, "/admin/wechat-apps", &bad).await.status(), 400);

    // Rotate the AppSecret.
    let rotate = pairs(&[("csrf_token", &token), ("secret", "a-new-secret")]);
    assert_eq!(post(&app, "/admin/wechat-apps/wx0123456789abcdef/secret", &rotate).await.status(), 303);
    assert!(app.audit_rows().await.iter().any(|r| r.action == "wechat_app.secret_rotated"));
    assert_eq!(post(&app, "/admin/wechat-apps/wxnothere00/secret", &rotate).await.status(), 404);

    // In use by a client: refused with the client named.
    let (client_id, _) = add_client(&app, "Shop backend", &[("wechat_app", "wx0123456789abcdef")]).await;
    let remove = pairs(&[("csrf_token", &token)]);
    let refused = post(&app, "/admin/wechat-apps/wx0123456789abcdef/remove", &remove).await;
    assert_eq!(refused.status(), 409);
    let page = refused.text().await.unwrap();
    assert!(page.contains("data-testid=\"error\"") && page.contains(&client_id), "{page}");
    assert_eq!(count(&db, "wechat_apps"), 1);

    // Stale: the password prompt first.
    make_authentication_stale(&db);
    let prompt = post(&app, "/admin/wechat-apps/wx0123456789abcdef/remove", &remove).await;
    assert!(prompt.text().await.unwrap().contains("data-testid=\"reauth-form\""));
    assert_eq!(app.login("ada", PASSWORD).await.status(), 303);

    // Once the client no longer uses it, it goes.
    let token = page_token(&app, "/admin/wechat-apps").await;
    let remove = pairs(&[("csrf_token", &token)]);
    assert_eq!(post(&app, &format!("/admin/clients/{client_id}/remove"), &remove).await.status(), 303);
    assert_eq!(post(&app, "/admin/wechat-apps/wx0123456789abcdef/remove", &remove).await.status(), 303);
    assert_eq!(count(&db, "wechat_apps"), 0);
    assert!(app.audit_rows().await.iter().any(|r| r.action == "wechat_app.removed"));
    assert_eq!(post(&app, "/admin/wechat-apps/wx0123456789abcdef/remove", &remove).await.status(), 404);
}

#[actix_web::test]
async fn a_host_app_listing_a_mini_program_also_blocks_its_removal() {
    let (app, _db) = spawn_app().await;
    signed_in_admin(&app, "ada").await;
    add_app(&app, "wxhosted00000001").await;
    let (client_id, _) = add_client(
        &app,
        "Super app",
        &[("host_app", "on"), ("host_for", "wxhosted00000001"), ("grant_type", "client_credentials")],
    )
    .await;
    let token = page_token(&app, "/admin/wechat-apps").await;
    let refused = post(&app, "/admin/wechat-apps/wxhosted00000001/remove", &pairs(&[("csrf_token", &token)])).await;
    assert_eq!(refused.status(), 409);
    assert!(refused.text().await.unwrap().contains(&client_id));
}

#[actix_web::test]
async fn signing_keys_are_listed_and_rotated_by_a_recently_authenticated_admin() {
    let (app, db) = spawn_app().await;
    signed_in_admin(&app, "ada").await;
    let page = app.get("/admin/keys").await.text().await.unwrap();
    assert!(page.contains("RS256") && page.contains("ES256") && page.contains("EdDSA"));
    let before = count(&db, "signing_keys");
    let token = page_token(&app, "/admin/keys").await;
    assert_eq!(post(&app, "/admin/keys/rotate", &[]).await.status(), 403);
    make_authentication_stale(&db);
    let prompt = post(&app, "/admin/keys/rotate", &pairs(&[("csrf_token", &token)])).await;
    assert!(prompt.text().await.unwrap().contains("data-testid=\"reauth-form\""));
    assert_eq!(count(&db, "signing_keys"), before);
    assert_eq!(app.login("ada", PASSWORD).await.status(), 303);
    let token = page_token(&app, "/admin/keys").await;
    let rotated = post(&app, "/admin/keys/rotate", &pairs(&[("csrf_token", &token)])).await;
    assert_eq!(rotated.status(), 303);
    assert_eq!(count(&db, "signing_keys"), before + 3);
    let page = app.get("/admin/keys?done=1").await.text().await.unwrap();
    assert!(page.contains("data-testid=\"notice\""));
    assert_eq!(app.audit_rows().await.iter().filter(|r| r.action == "signing_key.rotated").count(), 3);
}

#[actix_web::test]
async fn the_settings_page_shows_no_secret() {
    let (app, db) = spawn_app().await;
    signed_in_admin(&app, "ada").await;
    let page = app.get("/admin/settings").await.text().await.unwrap();
    assert!(page.contains("admin_reauth_secs"));
    assert!(page.contains("http://127.0.0.1"));
    assert!(!page.contains(&db.master_key), "the master key is a secret");

    // A database password never appears either.
    let database = DatabaseTarget::parse("postgres://wxfed:hunter2-password@db.internal:5432/wxfed").unwrap();
    let settings = Settings::defaults(database, MasterKeySource::Value(SecretString::new("mk-secret-value"))).unwrap();
    let rows = wxfed::admin::clients::effective_settings(&settings);
    let all: String = rows.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    assert!(all.contains("db.internal:5432/wxfed"), "{all}");
    assert!(!all.contains("hunter2-password") && !all.contains("mk-secret-value"), "{all}");
}

#[actix_web::test]
async fn non_admins_are_refused_every_page_and_action() {
    let (app, _db) = spawn_app().await;
    app.add_user("mallory", PASSWORD).await;
    grant(&app, "mallory", Role::Auditor).await;
    assert_eq!(app.login("mallory", PASSWORD).await.status(), 303);
    for path in ["/admin/clients", "/admin/clients/x", "/admin/wechat-apps", "/admin/keys", "/admin/settings"] {
        assert_eq!(app.get(path).await.status(), 403, "{path}");
    }
    for path in [
        "/admin/clients",
        "/admin/clients/x",
        "/admin/clients/x/secret",
        "/admin/clients/x/remove",
        "/admin/wechat-apps",
        "/admin/wechat-apps/wx1234/secret",
        "/admin/wechat-apps/wx1234/remove",
        "/admin/keys/rotate",
    ] {
        assert_eq!(app.post_form(path, &[("name", "x")]).await.status(), 403, "{path}");
    }
}

#[actix_web::test]
async fn the_client_form_sets_and_clears_the_back_channel_logout_uri() {
    let (app, _db) = spawn_app().await;
    signed_in_admin(&app, "ada").await;
    let (id, _) = add_client(
        &app,
        "Portal",
        &[
            ("grant_type", "authorization_code"),
            ("backchannel_logout_uri", "https://portal.example.com/bcl"),
            ("backchannel_logout_session_required", "on"),
        ],
    )
    .await;
    let path = format!("/admin/clients/{id}");
    let page = app.get(&path).await.text().await.unwrap();
    assert!(page.contains(r#"name="backchannel_logout_uri" value="https://portal.example.com/bcl""#), "{page}");
    assert!(page.contains(r#"name="backchannel_logout_session_required" value="on" checked"#));

    let token = page_token(&app, &path).await;
    let edit = |uri: &str, required: bool| {
        let mut fields = pairs(&[
            ("csrf_token", &token),
            ("name", "Portal"),
            ("redirect_uris", "https://app.example.com/cb"),
            ("grant_type", "authorization_code"),
            ("scope", "openid"),
            ("backchannel_logout_uri", uri),
        ]);
        if required {
            fields.extend(pairs(&[("backchannel_logout_session_required", "on")]));
        }
        fields
    };
    // Plain http to another host is refused with the reason, nothing changed.
    let refused = post(&app, &path, &edit("http://portal.example.com/bcl", false)).await;
    assert_eq!(refused.status(), 400);
    assert!(refused.text().await.unwrap().contains("data-testid=\"error\""));
    // Cleared.
    assert_eq!(post(&app, &path, &edit("", false)).await.status(), 303);
    let rows = app.audit_rows().await;
    let updated = rows.iter().rfind(|r| r.action == "client.updated").unwrap();
    let detail: serde_json::Value = serde_json::from_str(&updated.detail).unwrap();
    assert_eq!(detail["before"]["backchannel_logout_uri"], "https://portal.example.com/bcl");
    assert_eq!(detail["before"]["backchannel_logout_session_required"], true);
    assert!(detail["after"]["backchannel_logout_uri"].is_null());
    assert_eq!(detail["after"]["backchannel_logout_session_required"], false);
}

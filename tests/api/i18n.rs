//! Pages in Simplified Chinese and English: the language switch (cookie),
//! then Accept-Language, then WXFED_DEFAULT_LOCALE.

use crate::helpers::{TestDb, new_client, spawn_app_on};
use wxfed::i18n::Locale;

async fn app_with_default(default: Locale) -> (crate::helpers::TestApp, TestDb) {
    let db = TestDb::new();
    let app = spawn_app_on(&db, |s| s.default_locale = default).await;
    (app, db)
}

#[actix_rt::test]
async fn the_default_language_is_simplified_chinese() {
    let (app, _db) = app_with_default(Locale::ZhCn).await;
    let page = app.get("/login").await.text().await.unwrap();
    assert!(page.contains(r#"<html lang="zh-CN">"#), "{page}");
    assert!(page.contains("<h1>登录</h1>"));
    assert!(page.contains("用户名") && page.contains("密码"));
    assert!(!page.contains("Username"));
}

#[actix_rt::test]
async fn accept_language_chooses_when_there_is_no_cookie() {
    let (app, _db) = app_with_default(Locale::ZhCn).await;
    let page = app
        .client
        .get(app.url("/login"))
        .header("Accept-Language", "en-US,en;q=0.9,zh-CN;q=0.5")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(r#"<html lang="en">"#));
    assert!(page.contains("<h1>Sign in</h1>"));
}

#[actix_rt::test]
async fn the_switch_remembers_the_choice_over_accept_language() {
    let (app, _db) = app_with_default(Locale::En).await;
    let switched = app.get("/lang/zh-CN?return_to=/login%3Freturn_to%3D/consents").await;
    assert_eq!(switched.status(), 303);
    assert_eq!(switched.headers()["location"], "/login?return_to=/consents");
    let cookie = switched.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("wxfed_lang=zh-CN") && cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"));
    let page =
        app.client.get(app.url("/login")).header("Accept-Language", "en").send().await.unwrap().text().await.unwrap();
    assert!(page.contains("<h1>登录</h1>"), "the cookie wins over Accept-Language");
    // The switch offers the other language, back to this page.
    assert!(page.contains(r#"href="/lang/en?return_to=%2Flogin""#), "{page}");
}

#[actix_rt::test]
async fn the_switch_never_redirects_off_site_and_refuses_unknown_languages() {
    let (app, _db) = app_with_default(Locale::En).await;
    let off_site = app.get("/lang/en?return_to=//evil.example/").await;
    assert_eq!(off_site.headers()["location"], "/");
    assert_eq!(app.get("/lang/fr").await.status(), 404);
}

#[actix_rt::test]
async fn error_pages_and_messages_from_code_are_translated() {
    let (app, _db) = app_with_default(Locale::ZhCn).await;
    let missing = app.get("/no-such-page").await;
    assert_eq!(missing.status(), 404);
    let body = missing.text().await.unwrap();
    assert!(body.contains("页面不存在"), "{body}");
    app.add_user("alice", "correct horse battery staple").await;
    let client = new_client();
    let form_page = client.get(app.url("/login")).send().await.unwrap().text().await.unwrap();
    let token = crate::helpers::extract_csrf(&form_page);
    let wrong = client
        .post(app.url("/login"))
        .form(&[("username", "alice"), ("password", "wrong"), ("csrf_token", &token)])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert!(wrong.text().await.unwrap().contains("用户名或密码错误。"));
    let en = client
        .post(app.url("/login"))
        .header("Accept-Language", "en")
        .form(&[("username", "alice"), ("password", "wrong"), ("csrf_token", &token)])
        .send()
        .await
        .unwrap();
    assert!(en.text().await.unwrap().contains("Incorrect username or password."));
}

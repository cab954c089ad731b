//! `/admin/accounts`: search, filters, keyset pages, the detail page and
//! its actions.

use std::collections::HashSet;

use super::{PASSWORD, form_of, page_token, pairs, post, signed_in_admin};
use crate::helpers::{TestApp, count, extract_csrf, spawn_app};
use wxfed::accounts::manage::{self, Actor, NewAccount};

/// Adds accounts without passwords (fast: no argon2).
async fn add_accounts(app: &TestApp, news: Vec<NewAccount>) -> Vec<wxfed::accounts::Account> {
    let state = app.state.clone();
    actix_web::web::block(move || {
        let mut conn = state.db.get().unwrap();
        news.iter().map(|n| manage::add(&mut conn, &state.secrets, &Actor("test".into()), n, None).unwrap()).collect()
    })
    .await
    .unwrap()
}

fn named(username: &str) -> NewAccount {
    NewAccount { username: username.into(), ..Default::default() }
}

/// Links a WeChat identity with `unionid` and one OpenID to the account.
fn link_identity(db: &crate::helpers::TestDb, account_id: &str, unionid: &str, openid: &str) {
    db.execute(&format!(
        "INSERT INTO wechat_identities (id, platform_key, open_platform, unionid, account_id, created_at, updated_at)
         VALUES ('ident-1', 'op:wxop', 'wxop', '{unionid}', '{account_id}', '2026-01-01 00:00:00', '2026-01-01 00:00:00');
         INSERT INTO wechat_openids (appid, openid, identity_id, created_at, last_login_at)
         VALUES ('wxapp1', '{openid}', 'ident-1', '2026-01-01 00:00:00', '2026-01-01 00:00:00');"
    ));
}

fn listed_usernames(page: &str) -> Vec<String> {
    page.split("data-testid=\"account-link\">").skip(1).map(|rest| rest[..rest.find('<').unwrap()].to_owned()).collect()
}

fn more_link(page: &str) -> Option<String> {
    let at = page.find("data-testid=\"more\"")?;
    let href = page[..at].rfind("href=\"").unwrap() + 6;
    Some(page[href..href + page[href..].find('"').unwrap()].replace("&#38;", "&"))
}

#[actix_web::test]
async fn search_finds_an_account_by_any_identifier_including_unionid_and_openid() {
    let (app, db) = spawn_app().await;
    signed_in_admin(&app, "ada").await;
    let accounts = add_accounts(
        &app,
        vec![
            NewAccount {
                username: "zhangsan".into(),
                display_name: Some("Zhang San".into()),
                email: Some("San.Zhang@example.com".into()),
                phone: Some("+8613800138000".into()),
                ..Default::default()
            },
            named("lisi"),
        ],
    )
    .await;
    let zhang = &accounts[0];
    link_identity(&db, zhang.id.as_str(), "oUnion_1234567890abcd", "o6jjT5open_id_fqH1");
    let id = zhang.id.to_string();
    for q in [
        "zhang",
        "ZHANGS",
        "zhang san",
        "san.zhang@EXAMPLE.com",
        "+8613800138000",
        id.as_str(),
        "oUnion_1234567890abcd",
        "o6jjT5open_id_fqH1",
    ] {
        let url = format!("/admin/accounts?{}", serde_urlencoded::to_string([("q", q)]).unwrap());
        let page = app.get(&url).await.text().await.unwrap();
        assert_eq!(listed_usernames(&page), vec!["zhangsan"], "q={q}");
    }
    // Exact only for external ids: a prefix of an OpenID finds nobody.
    let page = app.get("/admin/accounts?q=o6jjT5open").await.text().await.unwrap();
    assert!(listed_usernames(&page).is_empty());
    assert!(page.contains("data-testid=\"no-results\""));
    // Filters.
    let page = app.get("/admin/accounts?linked=yes").await.text().await.unwrap();
    assert_eq!(listed_usernames(&page), vec!["zhangsan"]);
    let page = app.get("/admin/accounts?linked=no").await.text().await.unwrap();
    assert_eq!(listed_usernames(&page), vec!["ada", "lisi"]);
    let page = app.get("/admin/accounts?role=admin").await.text().await.unwrap();
    assert_eq!(listed_usernames(&page), vec!["ada"]);
    db.execute("UPDATE accounts SET status = 'disabled' WHERE username = 'lisi'");
    let page = app.get("/admin/accounts?status=disabled").await.text().await.unwrap();
    assert_eq!(listed_usernames(&page), vec!["lisi"]);
    // Phones are masked in the list.
    let page = app.get("/admin/accounts?q=zhang").await.text().await.unwrap();
    assert!(!page.contains("+8613800138000") && page.contains("+861…8000"));
}

#[actix_web::test]
async fn pages_return_every_account_exactly_once() {
    let (app, _db) = spawn_app().await;
    signed_in_admin(&app, "ada").await;
    let news: Vec<_> = (0..120).map(|i| named(&format!("user{i:03}"))).chain([named("User-x"), named("u")]).collect();
    add_accounts(&app, news).await;
    let mut seen = Vec::new();
    let mut next = Some("/admin/accounts".to_owned());
    let mut pages = 0;
    while let Some(url) = next {
        let page = app.get(&url).await.text().await.unwrap();
        seen.extend(listed_usernames(&page));
        next = more_link(&page);
        pages += 1;
        assert!(pages < 10);
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 123);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 123);
    // The same with a search that spans pages: the cursor keeps q.
    let mut seen = Vec::new();
    let mut next = Some("/admin/accounts?q=user".to_owned());
    while let Some(url) = next {
        let page = app.get(&url).await.text().await.unwrap();
        seen.extend(listed_usernames(&page));
        next = more_link(&page);
    }
    assert_eq!(seen.len(), 121);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 121);
}

#[actix_web::test]
async fn openids_are_masked_until_an_audited_reveal() {
    let (app, db) = spawn_app().await;
    let admin = signed_in_admin(&app, "ada").await;
    let target = add_accounts(&app, vec![named("wang")]).await.remove(0);
    link_identity(&db, target.id.as_str(), "oUnion_1234567890abcd", "o6jjT5open_id_fqH1");
    let path = format!("/admin/accounts/{}", target.id);
    let page = app.get(&path).await.text().await.unwrap();
    assert!(page.contains("o6jj…fqH1") && !page.contains("o6jjT5open_id_fqH1"));
    assert!(!page.contains("oUnion_1234567890abcd"));
    // Without the CSRF token: refused, nothing revealed or recorded.
    let refused = app.post_form(&format!("{path}/reveal"), &[]).await;
    assert_eq!(refused.status(), 403);
    let token = extract_csrf(&page);
    let revealed = app.post_form(&format!("{path}/reveal"), &[("csrf_token", &token)]).await;
    assert_eq!(revealed.status(), 200);
    assert!(revealed.text().await.unwrap().contains("o6jjT5open_id_fqH1"));
    let rows = app.audit_rows().await;
    let events: Vec<_> = rows.iter().filter(|r| r.action == "admin.identifiers_revealed").collect();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].actor.as_deref(), Some(format!("account:{}", admin.id).as_str()));
    assert_eq!(events[0].account_id.as_deref(), Some(target.id.as_str()));
}

#[actix_web::test]
async fn profile_edits_need_csrf_and_are_audited_with_before_and_after() {
    let (app, _db) = spawn_app().await;
    signed_in_admin(&app, "ada").await;
    let target = add_accounts(&app, vec![named("zhao")]).await.remove(0);
    let path = format!("/admin/accounts/{}/profile", target.id);
    let without = app.post_form(&path, &[("display_name", "Zhao")]).await;
    assert_eq!(without.status(), 403);
    let wrong = app.post_form(&path, &[("display_name", "Zhao"), ("csrf_token", "forged")]).await;
    assert_eq!(wrong.status(), 403);
    let token = page_token(&app, &format!("/admin/accounts/{}", target.id)).await;
    // The refusal in the page's language, not always the CLI's English.
    for (language, says) in
        [("zh-CN", "“not-an-email”不是有效的电子邮箱地址"), ("en", "`not-an-email` is not an email address")]
    {
        let bad = app
            .client
            .post(app.url(&path))
            .header("Accept-Language", language)
            .form(&[("email", "not-an-email"), ("csrf_token", token.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status(), 400);
        let page = bad.text().await.unwrap();
        assert!(page.contains(says), "{language}: {page}");
    }
    let ok = app
        .post_form(
            &path,
            &[
                ("display_name", "赵六"),
                ("email", "zhao@example.com"),
                ("email_verified", "on"),
                ("csrf_token", &token),
            ],
        )
        .await;
    assert_eq!(ok.status(), 303);
    let page = app.get(ok.headers()["location"].to_str().unwrap()).await.text().await.unwrap();
    assert!(page.contains("赵六") && page.contains("data-testid=\"notice\""));
    let event = app.audit_rows().await.into_iter().rfind(|r| r.action == "user.profile_updated").unwrap();
    let detail: serde_json::Value = serde_json::from_str(&event.detail).unwrap();
    assert_eq!(detail["before"]["display_name"], serde_json::Value::Null);
    assert_eq!(detail["after"]["display_name"], "赵六");
    assert_eq!(detail["after"]["email_verified"], true);
}

#[actix_web::test]
async fn the_last_active_admin_cannot_disable_themselves_or_drop_the_role() {
    let (app, db) = spawn_app().await;
    let admin = signed_in_admin(&app, "ada").await;
    let path = format!("/admin/accounts/{}", admin.id);
    let token = page_token(&app, &path).await;
    let disable = app
        .post_form(&format!("{path}/status"), &[("status", "disabled"), ("reason", "test"), ("csrf_token", &token)])
        .await;
    assert_eq!(disable.status(), 409);
    let drop_role = app.post_form(&format!("{path}/roles"), &[("reason", "test"), ("csrf_token", &token)]).await;
    assert_eq!(drop_role.status(), 409);
    assert_eq!(count(&db, "account_roles"), 1);
    assert_eq!(app.get("/admin").await.status(), 200);
    // With a second active admin, the role can go.
    let other = add_accounts(&app, vec![named("bob")]).await.remove(0);
    super::grant(&app, "bob", wxfed::accounts::Role::Admin).await;
    let ok = post(
        &app,
        &format!("{path}/roles"),
        &pairs(&[("role", "auditor"), ("reason", "handover"), ("csrf_token", &token)]),
    )
    .await;
    assert_eq!(ok.status(), 303);
    assert_eq!(app.get("/admin").await.status(), 403);
    let event = app.audit_rows().await.into_iter().rfind(|r| r.action.starts_with("user.role_")).unwrap();
    let detail: serde_json::Value = serde_json::from_str(&event.detail).unwrap();
    assert_eq!(detail["reason"], "handover");
    assert_eq!(detail["before"], serde_json::json!(["admin"]));
    assert_eq!(detail["after"], serde_json::json!(["auditor"]));
    let _ = other;
}

#[actix_web::test]
async fn role_and_status_changes_need_a_reason() {
    let (app, _db) = spawn_app().await;
    signed_in_admin(&app, "ada").await;
    let target = add_accounts(&app, vec![named("qian")]).await.remove(0);
    let path = format!("/admin/accounts/{}", target.id);
    let token = page_token(&app, &path).await;
    let response = app
        .post_form(&format!("{path}/status"), &[("status", "disabled"), ("reason", " "), ("csrf_token", &token)])
        .await;
    assert_eq!(response.status(), 400);
    let response = app
        .post_form(
            &format!("{path}/status"),
            &[("status", "disabled"), ("reason", "left the company"), ("csrf_token", &token)],
        )
        .await;
    assert_eq!(response.status(), 303);
    let page = app.get(&path).await.text().await.unwrap();
    assert!(page.contains("data-testid=\"status-disabled\""));
    let event = app.audit_rows().await.into_iter().rfind(|r| r.action == "user.disabled").unwrap();
    assert!(event.detail.contains("left the company"));
}

#[actix_web::test]
async fn a_generated_password_is_shown_once_and_works() {
    let (app, _db) = spawn_app().await;
    signed_in_admin(&app, "ada").await;
    let target = add_accounts(&app, vec![named("sun")]).await.remove(0);
    let path = format!("/admin/accounts/{}", target.id);
    let token = page_token(&app, &path).await;
    let response = app.post_form(&format!("{path}/password"), &[("mode", "generate"), ("csrf_token", &token)]).await;
    assert_eq!(response.status(), 200);
    let page = response.text().await.unwrap();
    let marker = "data-testid=\"one-time-password\">";
    let at = page.find(marker).unwrap();
    let code = page[at..].find("<code>").unwrap() + at + 6;
    let password = page[code..code + page[code..].find('<').unwrap()].to_owned();
    assert!(password.len() >= 16);
    // Not on the next view, not in the audit trail.
    assert!(!app.get(&path).await.text().await.unwrap().contains(&password));
    assert!(!app.audit_rows().await.iter().any(|r| r.detail.contains(&password)));
    let other = crate::helpers::new_client();
    let browser = TestApp { client: other, ..app.clone() };
    assert_eq!(browser.login("sun", &password).await.status(), 303);
    let _ = PASSWORD;
}

#[actix_web::test]
async fn an_admin_ends_sessions_withdraws_consents_and_revokes_grants() {
    let (app, db) = spawn_app().await;
    signed_in_admin(&app, "ada").await;
    let target = app.add_user("zhou", PASSWORD).await;
    let browser = TestApp { client: crate::helpers::new_client(), ..app.clone() };
    assert_eq!(browser.login("zhou", PASSWORD).await.status(), 303);
    assert_eq!(browser.login("zhou", PASSWORD).await.status(), 303);
    let other_browser = TestApp { client: crate::helpers::new_client(), ..app.clone() };
    assert_eq!(other_browser.login("zhou", PASSWORD).await.status(), 303);
    db.execute(&format!(
        "INSERT INTO clients (id, name, is_public, first_party, redirect_uris, post_logout_redirect_uris, grant_types, scopes,
                              id_token_signing_alg, always_issue_refresh_token, created_at, updated_at)
         VALUES ('app1', 'App', TRUE, FALSE, '[]', '[]', '[]', '[]', 'RS256', FALSE, '2026-01-01 00:00:00', '2026-01-01 00:00:00');
         INSERT INTO consents (account_id, client_id, scope, granted_at) VALUES ('{id}', 'app1', 'openid', '2026-01-01 00:00:00');
         INSERT INTO grants (id, client_id, account_id, scope, amr, created_at, expires_at)
         VALUES ('grant-1', 'app1', '{id}', 'openid', 'pwd', '2026-01-01 00:00:00', '2999-01-01 00:00:00');",
        id = target.id
    ));
    let path = format!("/admin/accounts/{}", target.id);
    let page = app.get(&path).await.text().await.unwrap();
    let (action, fields) = form_of(&page, "data-testid=\"end-session\"");
    assert_eq!(post(&app, &action, &fields).await.status(), 303);
    assert_eq!(count(&db, "sessions"), 2); // the admin's and one of zhou's
    let page = app.get(&path).await.text().await.unwrap();
    let (action, fields) = form_of(&page, "data-testid=\"end-all-sessions\"");
    assert_eq!(post(&app, &action, &fields).await.status(), 303);
    assert_eq!(count(&db, "sessions"), 1);
    assert_eq!(other_browser.get("/").await.status(), 303);
    let page = app.get(&path).await.text().await.unwrap();
    let (action, fields) = form_of(&page, "data-testid=\"withdraw-consent\"");
    assert_eq!(post(&app, &action, &fields).await.status(), 303);
    assert_eq!(count(&db, "consents"), 0);
    let page = app.get(&path).await.text().await.unwrap();
    let (action, fields) = form_of(&page, "data-testid=\"revoke-grant\"");
    assert_eq!(post(&app, &action, &fields).await.status(), 303);
    let page = app.get(&path).await.text().await.unwrap();
    assert!(!page.contains("data-testid=\"revoke-grant\""));
    let actions: Vec<_> = app.audit_rows().await.into_iter().map(|r| r.action).collect();
    for expected in ["user.sessions_revoked", "user.consent_withdrawn", "user.grant_revoked"] {
        assert!(actions.iter().any(|a| a == expected), "{expected}");
    }
}

#[actix_web::test]
async fn an_admin_creates_an_account() {
    let (app, _db) = spawn_app().await;
    signed_in_admin(&app, "ada").await;
    let token = page_token(&app, "/admin/accounts/new").await;
    let created = app
        .post_form("/admin/accounts", &[("username", "Zheng"), ("email", "zheng@example.com"), ("csrf_token", &token)])
        .await;
    assert_eq!(created.status(), 303);
    let page = app.get(created.headers()["location"].to_str().unwrap()).await.text().await.unwrap();
    assert!(page.contains("Zheng") && page.contains("zheng@example.com"));
    let taken = app.post_form("/admin/accounts", &[("username", "zheng"), ("csrf_token", &token)]).await;
    assert_eq!(taken.status(), 409);
    let forged = app.post_form("/admin/accounts", &[("username", "x")]).await;
    assert_eq!(forged.status(), 403);
}

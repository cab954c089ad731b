//! Who gets in: no session → login, no role → 403 (audited), admin → in.

use super::{PASSWORD, grant, signed_in_admin};
use crate::helpers::spawn_app;
use wxfed::accounts::Role;

#[actix_web::test]
async fn without_a_session_a_console_page_sends_the_browser_to_login() {
    let (app, _db) = spawn_app().await;
    let response = app.get("/admin/accounts?q=alice").await;
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/login?return_to=%2Fadmin%2Faccounts%3Fq%3Dalice");
    // A POST cannot come back through a redirect: plain refusal.
    let post = app.post_form("/admin/accounts/x/status", &[("status", "disabled")]).await;
    assert_eq!(post.status(), 403);
}

#[actix_web::test]
async fn an_account_without_the_admin_role_is_refused_and_the_refusal_audited() {
    let (app, _db) = spawn_app().await;
    let user = app.add_user("mallory", PASSWORD).await;
    // An auditor is not an admin either (an auditor reads account detail
    // pages, without their forms: tests/api/audit_console.rs).
    grant(&app, "mallory", Role::Auditor).await;
    assert_eq!(app.login("mallory", PASSWORD).await.status(), 303);
    for path in ["/admin", "/admin/accounts", "/admin/accounts/new"] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 403, "{path}");
        assert_eq!(response.headers()["cache-control"], "no-store");
        assert!(response.text().await.unwrap().contains("data-testid=\"forbidden\""));
    }
    let post = app.post_form(&format!("/admin/accounts/{}/roles", user.id), &[("role", "admin")]).await;
    assert_eq!(post.status(), 403);
    let denied: Vec<_> = app.audit_rows().await.into_iter().filter(|r| r.action == "admin.access_denied").collect();
    assert_eq!(denied.len(), 4);
    let last = denied.last().unwrap();
    assert_eq!(last.category, "admin");
    assert_eq!(last.outcome, "failure");
    assert_eq!(last.account_id.as_deref(), Some(user.id.as_str()));
    let detail: serde_json::Value = serde_json::from_str(&last.detail).unwrap();
    assert_eq!(detail["method"], "POST");
    assert_eq!(detail["path"], format!("/admin/accounts/{}/roles", user.id));
    // Nothing changed.
    assert!(
        !app.audit_rows().await.iter().any(|r| r.action == "user.role_added" && r.actor.as_deref() != Some("test"))
    );
}

#[actix_web::test]
async fn a_disabled_admin_is_not_an_admin() {
    let (app, db) = spawn_app().await;
    signed_in_admin(&app, "ada").await;
    assert_eq!(app.get("/admin").await.status(), 200);
    db.execute("UPDATE accounts SET status = 'disabled'");
    assert_eq!(app.get("/admin").await.status(), 303);
}

#[actix_web::test]
async fn the_home_page_shows_counts_chain_head_and_recent_admin_actions() {
    let (app, _db) = spawn_app().await;
    signed_in_admin(&app, "ada").await;
    // Chain what is pending first (group commit), so the head is settled.
    let head = app.audit_rows().await.last().unwrap().seq;
    let response = app.get("/admin").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert!(response.headers().contains_key("content-security-policy"));
    let page = response.text().await.unwrap();
    assert!(page.contains("data-testid=\"count-accounts\">1<"), "{page}");
    assert!(page.contains("data-testid=\"count-clients\">0<"));
    // The role grant is an admin action; the login is not.
    assert!(page.contains("user.role_added"));
    assert!(!page.contains("login.password"));
    assert!(page.contains(&format!("data-testid=\"chain-seq\">{head}<")), "{page}");
    // The search box goes to the accounts list.
    assert!(page.contains("action=\"/admin/accounts\"") && page.contains("name=\"q\""));
}

#[actix_web::test]
async fn console_pages_render_in_chinese_and_english() {
    let (app, _db) = spawn_app().await;
    let admin = signed_in_admin(&app, "ada").await;
    for (language, expected) in
        [("zh-CN", ["管理控制台", "账号", "审计日志链"]), ("en", ["Admin console", "Accounts", "Audit log chain"])]
    {
        let page = app.client.get(app.url("/admin")).header("accept-language", language).send().await.unwrap();
        assert_eq!(page.status(), 200);
        let page = page.text().await.unwrap();
        for text in expected {
            assert!(page.contains(text), "{language}: {text}");
        }
        assert!(!page.contains("admin-"), "{language}: an untranslated id");
        let detail = app
            .client
            .get(app.url(&format!("/admin/accounts/{}", admin.id)))
            .header("accept-language", language)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let reason = if language == "en" { "Reason (required)" } else { "操作原因（必填）" };
        assert!(detail.contains(reason), "{language}");
        assert!(!detail.contains(">admin-"), "{language}: an untranslated id");
    }
}

//! Sensitive actions ask a stale admin for the password, then complete
//! the ORIGINAL action with the original fields.

use super::{PASSWORD, form_of, make_authentication_stale, page_token, pairs, post, signed_in_admin};
use crate::helpers::spawn_app;

#[actix_web::test]
async fn a_stale_admin_confirms_the_password_and_the_original_action_completes() {
    let (app, db) = spawn_app().await;
    signed_in_admin(&app, "ada").await;
    let target = app.add_user("wu", PASSWORD).await;
    let path = format!("/admin/accounts/{}", target.id);
    let token = page_token(&app, &path).await;
    make_authentication_stale(&db);

    let original = pairs(&[("status", "disabled"), ("reason", "原因: 离职 & more"), ("csrf_token", &token)]);
    let prompt = post(&app, &format!("{path}/status"), &original).await;
    assert_eq!(prompt.status(), 200);
    let page = prompt.text().await.unwrap();
    assert!(page.contains("data-testid=\"reauth-form\""));
    assert!(!page.contains("离职"), "the prompt carries the form sealed, not in clear");
    assert!(!app.audit_rows().await.iter().any(|r| r.action == "user.disabled"));

    // A wrong password: asked again, still nothing done.
    let (action, mut fields) = form_of(&page, "data-testid=\"reauth-form\"");
    assert_eq!(action, "/admin/reauth");
    fields.push(("password".into(), "wrong password".into()));
    let again = post(&app, &action, &fields).await;
    assert_eq!(again.status(), 401);
    let page = again.text().await.unwrap();
    assert!(page.contains("data-testid=\"reauth-error\""));

    // A field forged on the prompt cannot prove freshness: only the session row does.
    let forged = post(
        &app,
        &format!("{path}/status"),
        &pairs(&[("status", "disabled"), ("reason", "x"), ("csrf_token", &token), ("auth_time", "now")]),
    )
    .await;
    assert!(forged.text().await.unwrap().contains("data-testid=\"reauth-form\""));

    let (action, mut fields) = form_of(&page, "data-testid=\"reauth-form\"");
    fields.push(("password".into(), PASSWORD.into()));
    let confirmed = post(&app, &action, &fields).await;
    assert_eq!(confirmed.status(), 200);
    let page = confirmed.text().await.unwrap();
    assert!(page.contains("/static/form_post.js"));
    let (action, fields) = form_of(&page, "data-testid=\"continue-form\"");
    assert_eq!(action, format!("{path}/status"));
    // The original fields travel sealed: not in the page.
    assert!(!page.contains("离职"), "the carried fields are sealed");
    assert!(fields.iter().any(|(k, v)| k == "carried" && v.starts_with("v1:")), "{fields:?}");
    // A tampered seal is refused, and so is the seal against another action.
    let tampered: Vec<(String, String)> = fields
        .iter()
        .map(|(k, v)| if k == "carried" { (k.clone(), format!("{v}x")) } else { (k.clone(), v.clone()) })
        .collect();
    assert_eq!(post(&app, &action, &tampered).await.status(), 400);
    assert_eq!(post(&app, &format!("{path}/roles"), &fields).await.status(), 400);
    let done = post(&app, &action, &fields).await;
    assert_eq!(done.status(), 303);
    let rows = app.audit_rows().await;
    let disabled = rows.iter().rfind(|r| r.action == "user.disabled").unwrap();
    assert!(disabled.detail.contains("原因: 离职 & more"));
    assert!(rows.iter().any(|r| r.action == "admin.reauthenticated"));
    // The session now counts as fresh: the next sensitive action goes straight through.
    let enable = post(
        &app,
        &format!("{path}/status"),
        &pairs(&[("status", "active"), ("reason", "back"), ("csrf_token", &token)]),
    )
    .await;
    assert_eq!(enable.status(), 303);
}

#[actix_web::test]
async fn the_reauth_endpoint_refuses_missing_csrf_and_foreign_actions() {
    let (app, db) = spawn_app().await;
    signed_in_admin(&app, "ada").await;
    let token = page_token(&app, "/admin/accounts/new").await;
    make_authentication_stale(&db);
    let no_csrf =
        post(&app, "/admin/reauth", &pairs(&[("action", "/admin/accounts/x/status"), ("password", PASSWORD)])).await;
    assert_eq!(no_csrf.status(), 403);
    for action in ["https://evil.example/", "/login", "//evil.example/admin/"] {
        let response =
            post(&app, "/admin/reauth", &pairs(&[("action", action), ("password", PASSWORD), ("csrf_token", &token)]))
                .await;
        assert_eq!(response.status(), 400, "{action}");
    }
    // Non-sensitive actions do not ask.
    let created = post(&app, "/admin/accounts", &pairs(&[("username", "newbie"), ("csrf_token", &token)])).await;
    assert_eq!(created.status(), 303);
}

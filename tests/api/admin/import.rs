//! `/admin/import` (issue 8 §5): the console's bulk import, the same
//! domain code as `wxfed import accounts`: a preview that changes nothing,
//! a confirmation that must carry the previewed content unchanged.

use super::{PASSWORD, form_of, page_token, pairs, post, signed_in_admin};
use crate::helpers::{count, spawn_app};

const CSV: &str = "username,name,email,roles\nkate,Kate,kate@example.com,auditor\nleo,,,\n";

#[actix_web::test]
async fn only_admins_may_import() {
    let (app, _db) = spawn_app().await;
    app.add_user("mallory", PASSWORD).await;
    assert_eq!(app.login("mallory", PASSWORD).await.status(), 303);
    assert_eq!(app.get("/admin/import").await.status(), 403);
    let posted = app.post_form("/admin/import", &[("content", CSV), ("format", "csv")]).await;
    assert_eq!(posted.status(), 403);
}

#[actix_web::test]
async fn the_preview_changes_nothing_and_the_confirmation_imports_once() {
    let (app, db) = spawn_app().await;
    signed_in_admin(&app, "ada").await;
    let before = count(&db, "accounts");
    let token = page_token(&app, "/admin/import").await;
    let form = pairs(&[("csrf_token", &token), ("content", CSV), ("format", "csv"), ("reason", "HR sync")]);
    let preview = post(&app, "/admin/import", &form).await;
    assert_eq!(preview.status(), 200);
    let html = preview.text().await.unwrap();
    assert!(html.contains("data-testid=\"import-preview\"") && html.contains("kate") && html.contains("leo"), "{html}");
    assert_eq!(count(&db, "accounts"), before, "a preview changes nothing");
    let (action, fields) = form_of(&html, "data-testid=\"import-confirm-form\"");
    // Content changed after the preview: the digest no longer matches.
    let tampered: Vec<(String, String)> = fields
        .iter()
        .map(
            |(k, v)| if k == "content" { (k.clone(), format!("{v}mallory,,,admin\n")) } else { (k.clone(), v.clone()) },
        )
        .collect();
    assert_eq!(post(&app, &action, &tampered).await.status(), 409);
    assert_eq!(count(&db, "accounts"), before);
    let done = post(&app, &action, &fields).await;
    assert_eq!(done.status(), 200);
    assert!(done.text().await.unwrap().contains("data-testid=\"import-done\""));
    assert_eq!(count(&db, "accounts"), before + 2);
    let rows = app.audit_rows().await;
    let summary = rows.iter().find(|r| r.action == "import").expect("summary event");
    assert!(summary.detail.contains("HR sync"), "{}", summary.detail);
    // The same file again: every line unchanged, nothing imported twice.
    let token = page_token(&app, "/admin/import").await;
    let again =
        post(&app, "/admin/import", &pairs(&[("csrf_token", &token), ("content", CSV), ("format", "csv")])).await;
    assert_eq!(again.status(), 200);
    let html = again.text().await.unwrap();
    assert_eq!(html.matches("data-testid=\"import-line\"").count(), 2);
    assert!(html.contains("unchanged"), "{html}");
    // A bad line: named, nothing imported.
    let bad = post(
        &app,
        "/admin/import",
        &pairs(&[("csrf_token", &token), ("content", "username,email\nmax,not-an-email\n"), ("format", "csv")]),
    )
    .await;
    assert_eq!(bad.status(), 422);
    assert!(bad.text().await.unwrap().contains("data-testid=\"import-errors\""));
    assert_eq!(count(&db, "accounts"), before + 2);
}

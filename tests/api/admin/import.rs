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

/// The upload form as a browser sends it (multipart/form-data, RFC 7578).
fn upload(token: &str, file: Vec<u8>) -> reqwest::multipart::Form {
    reqwest::multipart::Form::new()
        .text("csrf_token", token.to_owned())
        .text("format", "auto")
        .text("reason", "HR upload")
        .part("file", reqwest::multipart::Part::bytes(file).file_name("people.csv").mime_str("text/csv").unwrap())
        .text("content", "")
}

#[actix_web::test]
async fn an_uploaded_file_is_previewed_then_imported_even_past_the_usual_form_size() {
    let (app, db) = spawn_app().await;
    signed_in_admin(&app, "ada").await;
    let before = count(&db, "accounts");
    // ~100 KB: more than an ordinary form may carry (64 KiB), which the
    // preview's confirmation then carries back.
    let mut csv = String::from("username,name,email\n");
    for i in 0..2000 {
        csv.push_str(&format!("person{i:04},Person Number {i:04},person{i:04}@example.com\n"));
    }
    assert!(csv.len() > 64 * 1024);
    let token = page_token(&app, "/admin/import").await;
    let preview =
        app.client.post(app.url("/admin/import")).multipart(upload(&token, csv.into_bytes())).send().await.unwrap();
    assert_eq!(preview.status(), 200);
    let html = preview.text().await.unwrap();
    assert!(html.contains("data-testid=\"import-counts\"") && html.contains(" 2000 / 0 / 0 / 0"), "{html}");
    assert_eq!(count(&db, "accounts"), before, "a preview changes nothing");
    let (action, fields) = form_of(&html, "data-testid=\"import-confirm-form\"");
    let done = post(&app, &action, &fields).await;
    assert_eq!(done.status(), 200);
    assert!(done.text().await.unwrap().contains("data-testid=\"import-done\""));
    assert_eq!(count(&db, "accounts"), before + 2000);
    let summary = app.audit_rows().await.into_iter().find(|r| r.action == "import").expect("summary event");
    assert!(summary.detail.contains("HR upload"));
}

#[actix_web::test]
async fn uploads_that_are_not_text_too_large_empty_or_not_an_admins_are_refused() {
    let (app, db) = spawn_app().await;
    signed_in_admin(&app, "ada").await;
    let before = count(&db, "accounts");
    let token = page_token(&app, "/admin/import").await;
    let send = |form: reqwest::multipart::Form| app.client.post(app.url("/admin/import")).multipart(form).send();
    let latin1 = send(upload(&token, b"username,name\nj\xfcrgen,J\xfcrgen\n".to_vec())).await.unwrap();
    assert_eq!(latin1.status(), 400);
    assert!(latin1.text().await.unwrap().contains("not UTF-8"));
    let huge = send(upload(&token, vec![b'a'; 9 * 1024 * 1024])).await.unwrap();
    assert_eq!(huge.status(), 400);
    assert!(huge.text().await.unwrap().contains("larger than 8 MiB"));
    let empty = send(upload(&token, Vec::new())).await.unwrap();
    assert_eq!(empty.status(), 400);
    // Without the form's CSRF token: refused.
    let forged = send(upload("forged", b"username\nmallory\n".to_vec())).await.unwrap();
    assert_eq!(forged.status(), 403);
    assert_eq!(count(&db, "accounts"), before);
    // Someone who is not an admin: refused before the body is read.
    let stranger = crate::helpers::TestApp { client: crate::helpers::new_client(), ..app.clone() };
    let refused = stranger
        .client
        .post(stranger.url("/admin/import"))
        .multipart(upload(&token, b"username\nmallory\n".to_vec()))
        .send()
        .await
        .unwrap();
    assert!(matches!(refused.status().as_u16(), 303 | 403), "{}", refused.status());
    assert_eq!(count(&db, "accounts"), before);
}

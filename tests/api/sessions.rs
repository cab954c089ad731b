use crate::helpers::{TestApp, count, extract_csrf, spawn_app};

const PASSWORD: &str = "correct horse battery";

async fn logged_in(app: &TestApp, name: &str) {
    app.add_user(name, PASSWORD).await;
    assert_eq!(app.login(name, PASSWORD).await.status(), 303);
    assert_eq!(app.get("/").await.status(), 200);
}

#[actix_web::test]
async fn logout_needs_a_post_with_csrf_and_ends_the_session() {
    let (app, db) = spawn_app().await;
    logged_in(&app, "ivy").await;

    // GET only asks.
    let confirm = app.get("/logout").await;
    assert_eq!(confirm.status(), 200);
    let token = extract_csrf(&confirm.text().await.unwrap());
    assert_eq!(count(&db, "sessions"), 1);

    // POST without the token is refused.
    assert_eq!(app.post_form("/logout", &[]).await.status(), 403);
    assert_eq!(count(&db, "sessions"), 1);

    let done = app.post_form("/logout", &[("csrf_token", &token)]).await;
    assert_eq!(done.status(), 200);
    let removal = done.headers()["set-cookie"].to_str().unwrap();
    assert!(removal.contains("wxfed_session=") && removal.contains("Max-Age=0"));
    assert!(done.text().await.unwrap().contains("signed out"));
    assert_eq!(count(&db, "sessions"), 0);
    assert_eq!(app.get("/").await.headers()["location"], "/login");

    let last = app.audit_rows().await.pop().unwrap();
    assert_eq!((last.action.as_str(), last.outcome.as_str()), ("logout", "success"));
}

#[actix_web::test]
async fn an_idle_session_expires_and_its_end_is_audited() {
    let (app, db) = spawn_app().await;
    logged_in(&app, "jack").await;
    // Pretend the browser was away for longer than the idle timeout.
    db.execute("UPDATE sessions SET last_seen_at = '2000-01-01 00:00:00'");
    let home = app.get("/").await;
    assert_eq!(home.status(), 303);
    assert_eq!(count(&db, "sessions"), 0);
    let last = app.audit_rows().await.pop().unwrap();
    assert_eq!((last.action.as_str(), last.reason.as_deref()), ("session.expired", Some("idle")));
}

#[actix_web::test]
async fn a_session_past_its_maximum_age_expires() {
    let (app, db) = spawn_app().await;
    logged_in(&app, "kate").await;
    db.execute("UPDATE sessions SET expires_at = '2000-01-01 00:00:00'");
    assert_eq!(app.get("/").await.status(), 303);
    let last = app.audit_rows().await.pop().unwrap();
    assert_eq!((last.action.as_str(), last.reason.as_deref()), ("session.expired", Some("max_age")));
}

#[actix_web::test]
async fn the_sweeper_ends_sessions_nobody_comes_back_for() {
    let (app, db) = spawn_app().await;
    logged_in(&app, "liam").await;
    db.execute("UPDATE sessions SET last_seen_at = '2000-01-01 00:00:00'");
    let state = app.state.clone();
    let ended = actix_web::web::block(move || {
        let mut conn = state.db.get().unwrap();
        state.session_policy.sweep_expired(&mut conn, &state.secrets, wxfed::db::now()).unwrap()
    })
    .await
    .unwrap();
    assert_eq!(ended, 1);
    assert_eq!(count(&db, "sessions"), 0);
    assert_eq!(app.audit_rows().await.pop().unwrap().action, "session.expired");
}

#[actix_web::test]
async fn logging_in_again_replaces_the_session_id() {
    let (app, _db) = spawn_app().await;
    logged_in(&app, "mia").await;
    let again = app.login("mia", PASSWORD).await;
    let first_cookie = again.headers()["set-cookie"].to_str().unwrap().to_owned();
    let third = app.login("mia", PASSWORD).await;
    let second_cookie = third.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert_ne!(first_cookie, second_cookie, "a fresh id on every login (no fixation)");
    assert_eq!(crate::helpers::count(&_db, "sessions"), 1, "the replaced sessions are gone");
}

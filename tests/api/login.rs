use crate::helpers::{count, extract_csrf, new_client, spawn_app, spawn_app_on};
use wxfed::secrets::sha256_hex;

const PASSWORD: &str = "correct horse battery";

fn session_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.contains("wxfed_session="))
}

#[actix_web::test]
async fn the_login_page_is_a_plain_form_with_a_csrf_token() {
    let (app, _db) = spawn_app().await;
    let response = app.get("/login?login_hint=alice").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let page = response.text().await.unwrap();
    assert!(page.contains(r#"<form method="post" action="/login">"#));
    assert!(page.contains(r#"name="username""#) && page.contains(r#"name="password""#));
    assert!(page.contains(r#"value="alice""#), "login_hint pre-fills the username");
    assert!(!extract_csrf(&page).is_empty());
    assert!(!page.contains("<script"), "works without JavaScript");
}

#[actix_web::test]
async fn a_correct_password_opens_a_session_stored_only_as_a_hash() {
    let (app, db) = spawn_app().await;
    let account = app.add_user("Alice", PASSWORD).await;

    // Usernames are case-insensitive.
    let response = app.login("alice", PASSWORD).await;
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/");
    let cookie = session_cookie(&response).expect("session cookie set");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && cookie.contains("Path=/"));
    assert!(!cookie.contains("Secure"), "plain http issuer: no Secure flag");

    let home = app.get("/").await.text().await.unwrap();
    assert!(home.contains("Alice"));

    // The database holds the SHA-256 of the cookie value, never the value.
    let value = cookie.split(';').next().unwrap().trim_start_matches("wxfed_session=");
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        id_hash: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        account_id: String,
    }
    let rows: Vec<Row> =
        diesel::RunQueryDsl::load(diesel::sql_query("SELECT id_hash, account_id FROM sessions"), &mut db.connect())
            .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].id_hash, sha256_hex(value.as_bytes()));
    assert_ne!(rows[0].id_hash, value);
    assert_eq!(rows[0].account_id, account.id.as_str());

    let events = app.audit_rows().await;
    let login = events.iter().rev().find(|e| e.action == "login.password").unwrap();
    assert_eq!(login.outcome, "success");
    assert_eq!(login.account_id.as_deref(), Some(account.id.as_str()));
    assert_eq!(login.ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(login.user_agent.as_deref(), Some("wxfed-tests/1.0"));
    assert!(login.request_id.is_some());
}

#[actix_web::test]
async fn wrong_password_and_unknown_user_look_the_same() {
    let (app, db) = spawn_app().await;
    app.add_user("bob", PASSWORD).await;

    let wrong = app.login("bob", "not the password").await;
    assert_eq!(wrong.status(), 401);
    assert!(session_cookie(&wrong).is_none());
    let wrong_page = wrong.text().await.unwrap();

    let unknown = app.login("nobody", "not the password").await;
    assert_eq!(unknown.status(), 401);
    let unknown_page = unknown.text().await.unwrap();

    let message = "Incorrect username or password.";
    assert!(wrong_page.contains(message) && unknown_page.contains(message));
    assert!(wrong_page.contains(r#"value="bob""#), "the username stays in the form");
    assert_eq!(count(&db, "sessions"), 0);

    let events = app.audit_rows().await;
    let reasons: Vec<_> =
        events.iter().filter(|e| e.action == "login.password").map(|e| e.reason.clone().unwrap_or_default()).collect();
    assert_eq!(reasons, ["bad_password", "unknown_user"]);
    // Neither password appears anywhere in the audit trail.
    for event in &events {
        assert!(!format!("{event:?}").contains("not the password"));
    }
}

#[actix_web::test]
async fn a_form_without_a_valid_csrf_token_is_rejected() {
    let (app, db) = spawn_app().await;
    app.add_user("carol", PASSWORD).await;

    // No token at all (and no CSRF cookie).
    let bare = new_client()
        .post(app.url("/login"))
        .form(&[("username", "carol"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status(), 403);
    assert!(session_cookie(&bare).is_none());

    // A cookie, but a token that does not belong to it.
    app.csrf_token().await;
    let forged =
        app.post_form("/login", &[("username", "carol"), ("password", PASSWORD), ("csrf_token", "forged")]).await;
    assert_eq!(forged.status(), 403);

    // A token taken from another browser's page does not fit this cookie.
    let other =
        crate::helpers::TestApp { address: app.address.clone(), client: new_client(), state: app.state.clone() };
    let foreign_token = other.csrf_token().await;
    let stolen =
        app.post_form("/login", &[("username", "carol"), ("password", PASSWORD), ("csrf_token", &foreign_token)]).await;
    assert_eq!(stolen.status(), 403);
    assert_eq!(count(&db, "sessions"), 0);
}

#[actix_web::test]
async fn disabled_accounts_cannot_log_in_and_lose_their_sessions() {
    let (app, db) = spawn_app().await;
    app.add_user("dave", PASSWORD).await;
    assert_eq!(app.login("dave", PASSWORD).await.status(), 303);
    assert_eq!(app.get("/").await.status(), 200);

    let state = app.state.clone();
    actix_web::web::block(move || {
        let mut conn = state.db.get().unwrap();
        let actor = wxfed::accounts::manage::Actor("test".into());
        wxfed::accounts::manage::set_status(
            &mut conn,
            &state.secrets,
            &actor,
            "dave",
            wxfed::accounts::AccountStatus::Disabled,
        )
        .unwrap();
    })
    .await
    .unwrap();

    assert_eq!(count(&db, "sessions"), 0);
    let home = app.get("/").await;
    assert_eq!(home.status(), 303, "the old session no longer works");
    let refused = app.login("dave", PASSWORD).await;
    assert_eq!(refused.status(), 403);
    assert!(refused.text().await.unwrap().contains("disabled"));
    let last = app.audit_rows().await.pop().unwrap();
    assert_eq!((last.action.as_str(), last.reason.as_deref()), ("login.password", Some("account_disabled")));
}

#[actix_web::test]
async fn repeated_failures_block_the_account_even_across_instances() {
    let (app, db) = spawn_app().await;
    app.add_user("erin", PASSWORD).await;
    for _ in 0..5 {
        assert_eq!(app.login("erin", "wrong password").await.status(), 401);
    }
    // Now blocked: even the right password is refused, without checking it.
    let blocked = app.login("erin", PASSWORD).await;
    assert_eq!(blocked.status(), 429);
    assert!(blocked.headers().contains_key("retry-after"));
    assert!(blocked.text().await.unwrap().contains("Too many failed attempts"));

    // The block lives in the database: a second instance enforces it.
    let second = spawn_app_on(&db, |_| {}).await;
    assert_eq!(second.login("ERIN", PASSWORD).await.status(), 429);

    // Another account from the same IP is not blocked by erin's failures.
    app.add_user("frank", PASSWORD).await;
    assert_eq!(app.login("frank", PASSWORD).await.status(), 303);

    let throttled = app.audit_rows().await.iter().filter(|e| e.reason.as_deref() == Some("throttled")).count();
    assert_eq!(throttled, 2);
}

#[actix_web::test]
async fn repeated_failures_from_one_ip_block_that_ip() {
    let db = crate::helpers::TestDb::new();
    let app = spawn_app_on(&db, |s| s.login_max_failures_per_ip = 3).await;
    app.add_user("gina", PASSWORD).await;
    for name in ["x1", "x2", "x3"] {
        assert_eq!(app.login(name, "wrong password").await.status(), 401);
    }
    assert_eq!(app.login("gina", PASSWORD).await.status(), 429);
}

#[actix_web::test]
async fn return_to_only_goes_to_local_paths() {
    let (app, _db) = spawn_app().await;
    app.add_user("hank", PASSWORD).await;
    let token = app.csrf_token().await;
    let response = app
        .post_form(
            "/login",
            &[("username", "hank"), ("password", PASSWORD), ("csrf_token", &token), ("return_to", "//evil.example/x")],
        )
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/");

    let response = app.get("/login?return_to=/somewhere%3Fa%3D1").await.text().await.unwrap();
    assert!(response.contains(r#"name="return_to" value="/somewhere?a&#61;1""#) || response.contains("/somewhere?a"));
}

#[actix_web::test]
async fn malformed_and_oversized_forms_get_a_400_not_a_500() {
    let (app, _db) = spawn_app().await;
    let token = app.csrf_token().await;
    let garbage = app
        .client
        .post(app.url("/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("%%%&&&=\u{0}")
        .send()
        .await
        .unwrap();
    assert!(garbage.status() == 400 || garbage.status() == 403, "got {}", garbage.status());
    let huge = "x".repeat(100 * 1024);
    let too_big = app.post_form("/login", &[("username", &huge), ("password", "p"), ("csrf_token", &token)]).await;
    assert_eq!(too_big.status(), 400);
    let wrong_type =
        app.client.post(app.url("/login")).json(&serde_json::json!({"username": "a"})).send().await.unwrap();
    assert_eq!(wrong_type.status(), 400);
    let long_password = "p".repeat(2000);
    let long =
        app.post_form("/login", &[("username", "someone"), ("password", &long_password), ("csrf_token", &token)]).await;
    assert_eq!(long.status(), 401);
}

#[actix_web::test]
async fn cookies_are_secure_and_host_prefixed_behind_https() {
    let db = crate::helpers::TestDb::new();
    let app = spawn_app_on(&db, |s| s.issuer = "https://id.example.com".into()).await;
    let response = app.get("/login").await;
    let cookie = response.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("__Host-wxfed_csrf="), "{cookie}");
    assert!(cookie.contains("Secure") && cookie.contains("HttpOnly"));
    assert!(response.headers()["strict-transport-security"].to_str().unwrap().contains("max-age"));
}

#[actix_web::test]
async fn a_parallel_burst_of_guesses_learns_no_more_than_the_limit() {
    let (app, _db) = spawn_app().await;
    app.add_user("ned", PASSWORD).await;
    // Twenty wrong guesses at once. (A right one among them would, on
    // success, reset the counter as any login does — but then the guesser
    // has already won; what matters is how many answers guessing earns.)
    let mut handles = Vec::new();
    for i in 0..20 {
        let attempt =
            crate::helpers::TestApp { address: app.address.clone(), client: new_client(), state: app.state.clone() };
        handles.push(actix_web::rt::spawn(async move {
            attempt.login("ned", &format!("guess {i}")).await.status().as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for handle in handles {
        statuses.push(handle.await.unwrap());
    }
    let answered = statuses.iter().filter(|s| **s == 401).count();
    assert!(answered <= 5, "at most the limit of guesses get a real answer: {statuses:?}");
    assert!(statuses.iter().all(|s| [401, 429].contains(s)), "{statuses:?}");
    // And now even the right password is refused, without being checked.
    assert_eq!(app.login("ned", PASSWORD).await.status(), 429);
}

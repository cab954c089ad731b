//! `wxfed client …` against a running server.

use super::{REDIRECT_URI, VERIFIER, oauth_error};
use crate::helpers::{TestDb, spawn_app_on, wxfed_cli};

fn cli(db: &TestDb, args: &[&str]) -> serde_json::Value {
    let mut args = args.to_vec();
    args.push("--json");
    let output = wxfed_cli(&args, &db.cli_env(), None, None);
    assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

#[actix_web::test]
async fn clients_are_added_listed_rotated_and_removed_from_the_cli() {
    let db = TestDb::new();
    let app = spawn_app_on(&db, |_| {}).await;
    let added = cli(
        &db,
        &[
            "client",
            "add",
            "Intranet",
            "--redirect-uri",
            REDIRECT_URI,
            "--first-party",
            "--grant-type",
            "authorization-code",
            "--grant-type",
            "client-credentials",
        ],
    );
    let client_id = added["client_id"].as_str().unwrap().to_owned();
    let secret = added["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(secret.len(), 43, "256 bits, base64url");
    assert_eq!(added["grant_types"], serde_json::json!(["authorization_code", "client_credentials"]));

    let public = cli(&db, &["client", "add", "App", "--redirect-uri", "com.example.app:/cb", "--public"]);
    assert!(public["client_secret"].is_null());

    let list = cli(&db, &["client", "list"]);
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert!(!list.to_string().contains(&secret), "secrets are never listed");

    let cc = |secret: String| {
        let (app, id) = (&app, client_id.clone());
        async move { app.token_request(&id, Some(&secret), &[("grant_type", "client_credentials")]).await }
    };
    assert_eq!(cc(secret.clone()).await.status(), 200);
    let rotated = cli(&db, &["client", "rotate-secret", &client_id]);
    let new_secret = rotated["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(oauth_error(cc(secret).await, 401).await, "invalid_client", "the old secret stops working at once");
    assert_eq!(cc(new_secret.clone()).await.status(), 200);

    cli(&db, &["client", "remove", &client_id]);
    assert_eq!(oauth_error(cc(new_secret).await, 401).await, "invalid_client");

    let actions: Vec<String> = app
        .audit_rows()
        .await
        .into_iter()
        .filter(|e| e.actor.as_deref() == Some("cli:tester"))
        .map(|e| e.action)
        .collect();
    assert_eq!(actions, ["client.added", "client.added", "client.secret_rotated", "client.removed"]);
    let _ = VERIFIER;
}

#[test]
fn bad_registrations_are_refused_with_a_reason() {
    let db = TestDb::new();
    for (args, expected) in [
        (vec!["client", "add", "X", "--redirect-uri", "http://rp.example.com/cb"], "plain http"),
        (vec!["client", "add", "X", "--redirect-uri", "https://rp.example.com/cb#x"], "fragment"),
        (vec!["client", "add", "X"], "redirect-uri"),
        (vec!["client", "add", "X", "--public", "--grant-type", "client-credentials"], "public client"),
        (vec!["client", "add", "X", "--redirect-uri", REDIRECT_URI, "--id-token-alg", "HS256"], "HS256"),
    ] {
        let output = wxfed_cli(&args, &db.cli_env(), None, None);
        assert!(!output.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

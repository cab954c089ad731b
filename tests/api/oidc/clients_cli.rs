//! `wxfed client …` against a running server.

use super::{REDIRECT_URI, VERIFIER, oauth_error};
use crate::helpers::{TestDb, spawn_app_on, wxfed_cli};

fn cli(db: &TestDb, args: &[&str]) -> serde_json::Value {
    let mut args = args.to_vec();
    args.push("--json");
    let output = wxfed_cli(&args, &db.cli_env(), None, None);
    assert!(
        output.status.success(),
        "{args:?}: {} (stderr: {}; stdout: {})",
        output.status,
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
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

/// `wxfed client update` (issue 8 items 6 and 7): only the named settings
/// change, redirect URIs one by one or replaced, RFC grant type spellings,
/// audited with before/after and never the secret.
#[actix_web::test]
async fn clients_are_updated_from_the_cli_and_audited_before_and_after() {
    let db = TestDb::new();
    let app = spawn_app_on(&db, |_| {}).await;
    let added =
        cli(&db, &["client", "add", "RP", "--redirect-uri", REDIRECT_URI, "--grant-type", "authorization_code"]);
    let client_id = added["client_id"].as_str().unwrap().to_owned();
    let secret = added["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(added["grant_types"], serde_json::json!(["authorization_code"]), "RFC spelling accepted by add");

    let updated = cli(
        &db,
        &[
            "client",
            "update",
            &client_id,
            "--add-redirect-uri",
            "https://rp.example.com/second",
            "--post-logout-redirect-uri",
            "https://rp.example.com/bye",
            "--grant-type",
            "authorization_code",
            "--grant-type",
            "refresh_token",
            "--grant-type",
            "client_credentials",
            "--grant-type",
            "urn:ietf:params:oauth:grant-type:token-exchange",
            "--scope",
            "openid",
            "--scope",
            "profile",
            "--first-party",
            "true",
            "--id-token-alg",
            "ES256",
        ],
    );
    assert_eq!(updated["redirect_uris"], serde_json::json!([REDIRECT_URI, "https://rp.example.com/second"]));
    assert_eq!(updated["post_logout_redirect_uris"], serde_json::json!(["https://rp.example.com/bye"]));
    assert_eq!(
        updated["grant_types"],
        serde_json::json!(["authorization_code", "refresh_token", "client_credentials", "token_exchange"])
    );
    assert_eq!(updated["scopes"], serde_json::json!(["openid", "profile"]));
    assert_eq!(
        (updated["first_party"].as_bool(), updated["id_token_signing_alg"].as_str()),
        (Some(true), Some("ES256"))
    );
    assert_eq!(updated["name"], "RP", "what was not named stays");

    // The new grant applies at once; the secret did not change.
    let cc = app.token_request(&client_id, Some(&secret), &[("grant_type", "client_credentials")]).await;
    assert_eq!(cc.status(), 200);

    let removed = cli(&db, &["client", "update", &client_id, "--remove-redirect-uri", REDIRECT_URI]);
    assert_eq!(removed["redirect_uris"], serde_json::json!(["https://rp.example.com/second"]));
    let replaced =
        cli(&db, &["client", "update", &client_id, "--redirect-uri", REDIRECT_URI, "--first-party", "false"]);
    assert_eq!(replaced["redirect_uris"], serde_json::json!([REDIRECT_URI]));
    assert_eq!(replaced["first_party"], false);

    for (args, expected) in [
        (vec!["client", "update", &client_id, "--remove-redirect-uri", "https://nope.example.com/"], "not a redirect"),
        (vec!["client", "update", &client_id, "--redirect-uri", "http://rp.example.com/cb"], "plain http"),
        (vec!["client", "update", &client_id, "--host-for", "wx00000000000000c1"], "--host-app"),
        (vec!["client", "update", &client_id, "--wechat-app", "wx00000000000000ff"], "no WeChat app"),
        (vec!["client", "update", "0000", "--first-party", "true"], "no client"),
    ] {
        let output = wxfed_cli(&args, &db.cli_env(), None, None);
        assert!(!output.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }

    let updates: Vec<serde_json::Value> = app
        .audit_rows()
        .await
        .into_iter()
        .filter(|e| e.action == "client.updated")
        .map(|e| serde_json::from_str(&e.detail).unwrap())
        .collect();
    assert_eq!(updates.len(), 3, "one event per successful update, none for refusals");
    assert_eq!(updates[0]["before"]["first_party"], false);
    assert_eq!(updates[0]["after"]["first_party"], true);
    assert_eq!(updates[0]["after"]["id_token_signing_alg"], "ES256");
    assert!(!updates.iter().any(|u| u.to_string().contains(&secret)), "never the secret");
}

#[actix_web::test]
async fn the_back_channel_logout_uri_is_set_changed_and_removed_from_the_cli() {
    let db = TestDb::new();
    let _app = spawn_app_on(&db, |_| {}).await;
    let added = cli(
        &db,
        &[
            "client",
            "add",
            "Portal",
            "--redirect-uri",
            REDIRECT_URI,
            "--backchannel-logout-uri",
            "https://portal.example.com/bcl",
            "--backchannel-logout-session-required",
        ],
    );
    assert_eq!(added["backchannel_logout_uri"], "https://portal.example.com/bcl");
    assert_eq!(added["backchannel_logout_session_required"], true);
    let id = added["client_id"].as_str().unwrap().to_owned();

    let changed = cli(
        &db,
        &[
            "client",
            "update",
            &id,
            "--backchannel-logout-uri",
            "http://127.0.0.1:9000/bcl",
            "--backchannel-logout-session-required",
            "false",
        ],
    );
    assert_eq!(changed["backchannel_logout_uri"], "http://127.0.0.1:9000/bcl");
    assert_eq!(changed["backchannel_logout_session_required"], false);

    // §2.2 and https: refused with the reason, not changed.
    for bad in ["http://portal.example.com/bcl", "https://portal.example.com/bcl#frag"] {
        let output = wxfed_cli(&["client", "update", &id, "--backchannel-logout-uri", bad], &db.cli_env(), None, None);
        assert!(!output.status.success(), "{bad}");
        assert!(String::from_utf8_lossy(&output.stderr).contains(bad), "{}", String::from_utf8_lossy(&output.stderr));
    }
    let removed = cli(&db, &["client", "update", &id, "--no-backchannel-logout-uri"]);
    assert!(removed["backchannel_logout_uri"].is_null());
}

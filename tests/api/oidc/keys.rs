//! Signing-key rotation across instances.

use super::Provider;
use crate::helpers::{TestDb, spawn_app_on, wxfed_cli};

/// GET on a new connection: the test's pauses (a CLI run) outlast the
/// server's keep-alive, and reusing a connection the server is just
/// closing fails with IncompleteMessage.
async fn fresh_get(app: &crate::helpers::TestApp, path: &str) -> reqwest::Response {
    reqwest::Client::new().get(app.url(path)).send().await.unwrap()
}

async fn jwks_kids(app: &crate::helpers::TestApp) -> Vec<String> {
    let jwks: serde_json::Value = fresh_get(app, "/jwks.json").await.json().await.unwrap();
    jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_owned()).collect()
}

fn kid_of(jwt: &str) -> String {
    use base64::Engine;
    let header = jwt.split('.').next().unwrap();
    let header: serde_json::Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

async fn access_kid(provider: &Provider) -> String {
    let response = provider
        .app
        .token_request(&provider.client_id, provider.client_secret.as_deref(), &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    kid_of(body["access_token"].as_str().unwrap())
}

/// Waits (bounded) until `app`'s JWKS satisfies `done`.
async fn wait_for_jwks(app: &crate::helpers::TestApp, done: impl Fn(&[String]) -> bool) -> Vec<String> {
    let mut kids = jwks_kids(app).await;
    for _ in 0..100 {
        if done(&kids) {
            break;
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(100)).await;
        kids = jwks_kids(app).await;
    }
    kids
}

#[actix_web::test]
async fn a_rotated_key_is_published_everywhere_before_it_signs_and_old_tokens_stay_valid() {
    let db = TestDb::new();
    let first = spawn_app_on(&db, |s| s.key_reload_secs = 1).await;
    // Instances behind one load balancer share the issuer.
    let issuer = first.address.clone();
    let second = spawn_app_on(&db, |s| {
        s.key_reload_secs = 1;
        s.issuer = issuer;
    })
    .await;
    let provider = Provider::on(first, db, super::client_settings("RP")).await;
    let before = provider.tokens().await;
    let old_kid = kid_of(before["access_token"].as_str().unwrap());
    assert_eq!(jwks_kids(&second).await.len(), 3);
    let old_etag = fresh_get(&second, "/jwks.json").await.headers()["etag"].clone();

    let output = wxfed_cli(&["keys", "rotate", "--json"], &provider.db.cli_env(), None, None);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let rotated: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let new_kids: Vec<String> =
        rotated["rotated_to"].as_array().unwrap().iter().map(|k| k.as_str().unwrap().to_owned()).collect();
    assert_eq!(new_kids.len(), 3);
    // Activation: at least a reload interval (30 s by default for the CLI's
    // settings) plus the JWKS max-age (60 s) from now.
    for key in rotated["keys"].as_array().unwrap() {
        let signs_from = chrono::DateTime::parse_from_rfc3339(key["signs_from"].as_str().unwrap()).unwrap();
        assert!(signs_from > chrono::Utc::now() + chrono::Duration::seconds(80), "{key}");
    }

    // Both running instances publish the new keys by themselves...
    for app in [&provider.app, &second] {
        let kids = wait_for_jwks(app, |kids| new_kids.iter().all(|k| kids.contains(k))).await;
        assert_eq!(kids.len(), 6, "new and current keys are published: {kids:?}");
        assert!(kids.contains(&old_kid));
    }
    let new_jwks = fresh_get(&second, "/jwks.json").await;
    assert_ne!(new_jwks.headers()["etag"], old_etag, "a rotation changes the JWKS and its ETag");
    // ...but neither signs with them before the activation time.
    assert_eq!(access_kid(&provider).await, old_kid);
    let list = wxfed_cli(&["keys", "list", "--json"], &provider.db.cli_env(), None, None);
    let list: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    let status = |s: &str| list.as_array().unwrap().iter().filter(|k| k["status"] == s).count();
    assert_eq!(status("published, not yet signing"), 3, "{list}");
    assert_eq!(status("active (until its successor signs)"), 3, "{list}");

    // Time passes (moved in the database instead of waiting 2 minutes).
    provider.db.execute(
        "UPDATE signing_keys SET not_before_signing = '2000-01-01 00:00:00' WHERE not_before_signing IS NOT NULL",
    );
    provider.db.execute("UPDATE signing_keys SET retired_at = '2000-01-01 00:00:00' WHERE retired_at IS NOT NULL");
    let mut new_kid = access_kid(&provider).await;
    for _ in 0..100 {
        if new_kid != old_kid {
            break;
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(100)).await;
        new_kid = access_kid(&provider).await;
    }
    assert!(new_kids.contains(&new_kid), "the new key signs once active");
    let after = provider.tokens().await;

    // Tokens signed by the retired key still work while it is published...
    let userinfo = |token: String| {
        let url = second.url("/userinfo");
        async move { reqwest::Client::new().get(url).bearer_auth(token).send().await.unwrap().status().as_u16() }
    };
    assert_eq!(userinfo(before["access_token"].as_str().unwrap().to_owned()).await, 200);
    // ...and not once it has been dropped.
    provider.db.execute("UPDATE signing_keys SET publish_until = '2000-01-01 00:00:00' WHERE retired_at IS NOT NULL");
    let state = second.state.clone();
    actix_web::web::block(move || state.keys.reload(&mut state.db.get().unwrap(), &state.secrets).unwrap())
        .await
        .unwrap();
    assert_eq!(jwks_kids(&second).await.len(), 3);
    assert_eq!(userinfo(before["access_token"].as_str().unwrap().to_owned()).await, 401);
    assert_eq!(userinfo(after["access_token"].as_str().unwrap().to_owned()).await, 200);

    let list = wxfed_cli(&["keys", "list", "--json"], &provider.db.cli_env(), None, None);
    let list: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().iter().filter(|k| k["status"] == "active").count(), 3);
}

#[actix_web::test]
async fn keys_rotate_alg_rotates_one_algorithm_only() {
    let provider = Provider::new().await;
    let output = wxfed_cli(&["keys", "rotate", "--alg", "EdDSA", "--json"], &provider.db.cli_env(), None, None);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let rotated: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(rotated["keys"].as_array().unwrap().len(), 1);
    assert_eq!(rotated["keys"][0]["alg"], "EdDSA");
    assert_eq!(crate::helpers::count(&provider.db, "signing_keys"), 4);
    let bad = wxfed_cli(&["keys", "rotate", "--alg", "HS256"], &provider.db.cli_env(), None, None);
    assert!(!bad.status.success());
}

#[actix_web::test]
async fn signing_keys_are_stored_sealed() {
    let provider = Provider::new().await;
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        private_key: String,
    }
    let rows: Vec<Row> = diesel::RunQueryDsl::load(
        diesel::sql_query("SELECT private_key FROM signing_keys"),
        &mut provider.db.connect(),
    )
    .unwrap();
    assert_eq!(rows.len(), 3);
    for row in rows {
        assert!(row.private_key.starts_with("v1:") && !row.private_key.contains("PRIVATE KEY"));
    }
}

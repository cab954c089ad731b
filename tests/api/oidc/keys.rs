//! Signing-key rotation across instances.

use super::Provider;
use crate::helpers::{TestDb, spawn_app_on, wxfed_cli};

async fn jwks_kids(app: &crate::helpers::TestApp) -> Vec<String> {
    let jwks: serde_json::Value = app.get("/jwks.json").await.json().await.unwrap();
    jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_owned()).collect()
}

fn kid_of(jwt: &str) -> String {
    use base64::Engine;
    let header = jwt.split('.').next().unwrap();
    let header: serde_json::Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

#[actix_web::test]
async fn a_cli_rotation_reaches_every_instance_and_old_tokens_stay_valid() {
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
    assert_eq!(jwks_kids(&second).await.len(), 2);

    let output = wxfed_cli(&["keys", "rotate", "--json"], &provider.db.cli_env(), None, None);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let rotated: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let new_kids: Vec<String> =
        rotated["rotated_to"].as_array().unwrap().iter().map(|k| k.as_str().unwrap().to_owned()).collect();

    // Both running instances pick the new keys up by themselves.
    for app in [&provider.app, &second] {
        let mut kids = jwks_kids(app).await;
        for _ in 0..100 {
            if new_kids.iter().all(|k| kids.contains(k)) {
                break;
            }
            actix_web::rt::time::sleep(std::time::Duration::from_millis(100)).await;
            kids = jwks_kids(app).await;
        }
        assert_eq!(kids.len(), 4, "new and retired keys are published: {kids:?}");
        assert!(kids.contains(&old_kid));
    }
    let after = provider.tokens().await;
    let new_kid = kid_of(after["access_token"].as_str().unwrap());
    assert_ne!(new_kid, old_kid);
    assert!(new_kids.contains(&new_kid), "the new key signs at once");

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
    assert_eq!(jwks_kids(&second).await.len(), 2);
    assert_eq!(userinfo(before["access_token"].as_str().unwrap().to_owned()).await, 401);
    assert_eq!(userinfo(after["access_token"].as_str().unwrap().to_owned()).await, 200);

    let list = wxfed_cli(&["keys", "list", "--json"], &provider.db.cli_env(), None, None);
    let list: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().iter().filter(|k| k["status"] == "active").count(), 2);
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
    assert_eq!(rows.len(), 2);
    for row in rows {
        assert!(row.private_key.starts_with("v1:") && !row.private_key.contains("PRIVATE KEY"));
    }
}

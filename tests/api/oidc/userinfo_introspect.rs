//! Userinfo, introspection and access-token revocation.

use super::{Provider, oauth_error};

fn bearer_error(response: &reqwest::Response) -> String {
    response.headers()["www-authenticate"].to_str().unwrap().to_owned()
}

#[actix_web::test]
async fn userinfo_releases_claims_by_scope_and_accepts_get_and_post() {
    let provider = Provider::new().await;
    provider
        .db
        .execute("UPDATE accounts SET email = 'alice@example.com', email_verified = TRUE, phone = '+8613800138000'");
    let tokens = provider.tokens().await; // scope: openid profile offline_access
    let at = tokens["access_token"].as_str().unwrap();
    let client = reqwest::Client::new();
    let get: serde_json::Value =
        client.get(provider.app.url("/userinfo")).bearer_auth(at).send().await.unwrap().json().await.unwrap();
    assert_eq!(get["sub"], provider.account_id);
    assert_eq!(get["preferred_username"], "alice");
    assert!(get.get("email").is_none() && get.get("phone_number").is_none(), "not in scope: {get}");
    let post: serde_json::Value = client
        .post(provider.app.url("/userinfo"))
        .form(&[("access_token", at)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(post, get);

    let with_email = provider.follow(&provider.authorize_url(&[("scope", "openid email phone")])).await;
    let code = super::redirect_params(&with_email)["code"].clone();
    let tokens: serde_json::Value = provider.redeem(&code).await.json().await.unwrap();
    let claims: serde_json::Value = client
        .get(provider.app.url("/userinfo"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["email_verified"], true);
    assert_eq!(claims["phone_number"], "+8613800138000");
    assert!(claims.get("name").is_none());
}

#[actix_web::test]
async fn bad_tokens_get_a_bearer_challenge() {
    let provider = Provider::new().await;
    let client = reqwest::Client::new();
    let none = client.get(provider.app.url("/userinfo")).send().await.unwrap();
    assert_eq!(none.status(), 401);
    assert!(bearer_error(&none).starts_with("Bearer"));
    let garbage = client.get(provider.app.url("/userinfo")).bearer_auth("garbage").send().await.unwrap();
    assert_eq!(garbage.status(), 401);
    assert!(bearer_error(&garbage).contains("invalid_token"));
    let tokens = provider.tokens().await;
    let at = tokens["access_token"].as_str().unwrap();
    let in_query = client.get(provider.app.url(&format!("/userinfo?access_token={at}"))).send().await.unwrap();
    assert_eq!(in_query.status(), 400, "tokens in URLs are refused");
    // A forged token signed by another key with a known kid shape.
    let mut forged = at.to_owned();
    forged.push('x');
    assert_eq!(client.get(provider.app.url("/userinfo")).bearer_auth(&forged).send().await.unwrap().status(), 401);

    let cc = provider
        .app
        .token_request(&provider.client_id, provider.client_secret.as_deref(), &[("grant_type", "client_credentials")])
        .await;
    let cc: serde_json::Value = cc.json().await.unwrap();
    let no_openid = client
        .get(provider.app.url("/userinfo"))
        .bearer_auth(cc["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(no_openid.status(), 403);
    assert!(bearer_error(&no_openid).contains("insufficient_scope"));
}

#[actix_web::test]
async fn introspection_and_revocation_of_access_tokens() {
    let provider = Provider::new().await;
    let tokens = provider.tokens().await;
    let at = tokens["access_token"].as_str().unwrap();
    let introspect = |token: String| {
        let provider = &provider;
        async move {
            let response = reqwest::Client::new()
                .post(provider.app.url("/introspect"))
                .basic_auth(&provider.client_id, provider.client_secret.as_deref())
                .form(&[("token", token)])
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            response.json::<serde_json::Value>().await.unwrap()
        }
    };
    let active = introspect(at.to_owned()).await;
    assert_eq!(active["active"], true);
    assert_eq!(active["sub"], provider.account_id);
    assert_eq!(active["client_id"], provider.client_id);
    assert_eq!(active["username"], "alice");
    assert_eq!(active["scope"], "openid profile offline_access");
    let refresh = introspect(tokens["refresh_token"].as_str().unwrap().to_owned()).await;
    assert_eq!(refresh["active"], true);
    assert_eq!(refresh["token_type"], "refresh_token");
    assert_eq!(introspect("garbage".into()).await, serde_json::json!({"active": false}));

    // Another client learns nothing about this client's token.
    let (other, other_secret) = provider.app.register_client(super::client_settings("Other")).await;
    let foreign: serde_json::Value = reqwest::Client::new()
        .post(provider.app.url("/introspect"))
        .basic_auth(&other, other_secret.as_deref())
        .form(&[("token", at)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(foreign, serde_json::json!({"active": false}));

    // Revoking the access token (RFC 7009) deactivates it, and only it.
    let revoked = reqwest::Client::new()
        .post(provider.app.url("/revoke"))
        .basic_auth(&provider.client_id, provider.client_secret.as_deref())
        .form(&[("token", at), ("token_type_hint", "access_token")])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    assert_eq!(introspect(at.to_owned()).await["active"], false);
    assert_eq!(introspect(tokens["refresh_token"].as_str().unwrap().to_owned()).await["active"], true);

    // Unknown tokens revoke "successfully" (RFC 7009 §2.2); bad hints do not.
    let unknown = reqwest::Client::new()
        .post(provider.app.url("/revoke"))
        .basic_auth(&provider.client_id, provider.client_secret.as_deref())
        .form(&[("token", "whatever")])
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 200);
    let bad_hint = reqwest::Client::new()
        .post(provider.app.url("/revoke"))
        .basic_auth(&provider.client_id, provider.client_secret.as_deref())
        .form(&[("token", "whatever"), ("token_type_hint", "id_token")])
        .send()
        .await
        .unwrap();
    assert_eq!(oauth_error(bad_hint, 400).await, "unsupported_token_type");
    let unauthenticated =
        reqwest::Client::new().post(provider.app.url("/introspect")).form(&[("token", at)]).send().await.unwrap();
    assert_eq!(oauth_error(unauthenticated, 401).await, "invalid_client");
}

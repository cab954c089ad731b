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

impl Provider {
    async fn introspect(&self, token: &str) -> serde_json::Value {
        let response = reqwest::Client::new()
            .post(self.app.url("/introspect"))
            .basic_auth(&self.client_id, self.client_secret.as_deref())
            .form(&[("token", token)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    async fn userinfo_status(&self, access_token: &str) -> u16 {
        let response =
            reqwest::Client::new().get(self.app.url("/userinfo")).bearer_auth(access_token).send().await.unwrap();
        response.status().as_u16()
    }

    async fn refresh(&self, refresh_token: &str) -> reqwest::Response {
        self.app
            .token_request(
                &self.client_id,
                self.client_secret.as_deref(),
                &[("grant_type", "refresh_token"), ("refresh_token", refresh_token)],
            )
            .await
    }

    /// Asserts that every token of `tokens` is dead everywhere it is checked.
    async fn assert_dead(&self, tokens: &serde_json::Value, after: &str) {
        let (at, rt) = (tokens["access_token"].as_str().unwrap(), tokens["refresh_token"].as_str().unwrap());
        assert_eq!(self.userinfo_status(at).await, 401, "{after}: userinfo");
        assert_eq!(self.introspect(at).await, serde_json::json!({"active": false}), "{after}: access token");
        assert_eq!(self.introspect(rt).await, serde_json::json!({"active": false}), "{after}: refresh token");
        assert_eq!(oauth_error(self.refresh(rt).await, 400).await, "invalid_grant", "{after}: refresh grant");
    }
}

/// Issue 10 item 4: a password reset, disabling the account, or "sign out
/// everywhere" revokes every grant (refresh and access tokens) and ends
/// every session, through the one domain function.
#[actix_web::test]
async fn credential_changes_and_sign_out_everywhere_end_every_grant_and_session() {
    use crate::helpers::wxfed_cli;
    let provider = Provider::new().await;
    let env = provider.db.cli_env();
    let run = |args: &[&str], stdin: Option<&str>| {
        let output = wxfed_cli(args, &env, stdin, None);
        assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).into_owned()
    };

    let tokens = provider.tokens().await;
    let at = tokens["access_token"].as_str().unwrap();
    assert_eq!(provider.userinfo_status(at).await, 200);
    assert_eq!(provider.introspect(at).await["active"], true);
    let out = run(&["user", "sign-out-everywhere", "alice", "--json"], None);
    let out: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!((out["sessions_ended"].as_u64(), out["grants_revoked"].as_u64()), (Some(1), Some(1)));
    provider.assert_dead(&tokens, "sign-out-everywhere").await;
    let session_gone = provider.follow(&provider.authorize_url(&[])).await;
    assert!(super::location(&session_gone).contains("/login"), "the browser session ended too");

    assert_eq!(provider.app.login("alice", super::PASSWORD).await.status(), 303);
    let tokens = provider.tokens().await;
    run(&["user", "set-password", "alice", "--password-stdin"], Some("a brand new passphrase\n"));
    provider.assert_dead(&tokens, "set-password").await;

    assert_eq!(provider.app.login("alice", "a brand new passphrase").await.status(), 303);
    let tokens = provider.tokens().await;
    run(&["user", "disable", "alice"], None);
    provider.assert_dead(&tokens, "disable").await;
    run(&["user", "enable", "alice"], None);
    provider.assert_dead(&tokens, "disable, then enable").await;

    let actions: Vec<String> = provider.app.audit_rows().await.into_iter().map(|e| e.action).collect();
    assert!(actions.contains(&"user.signed_out_everywhere".to_owned()), "{actions:?}");
}

/// Issue 10 item 4: introspection reports a disabled account's tokens as
/// inactive even when nothing revoked them (the account row alone says so).
#[actix_web::test]
async fn introspection_reports_tokens_of_disabled_accounts_as_inactive() {
    let provider = Provider::new().await;
    let tokens = provider.tokens().await;
    let (at, rt) = (tokens["access_token"].as_str().unwrap(), tokens["refresh_token"].as_str().unwrap());
    assert_eq!(provider.introspect(rt).await["active"], true);
    provider.db.execute("UPDATE accounts SET status = 'disabled'");
    assert_eq!(provider.introspect(at).await, serde_json::json!({"active": false}));
    assert_eq!(provider.introspect(rt).await, serde_json::json!({"active": false}));
}

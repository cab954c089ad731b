//! The token endpoint: grants, replay detection, and every bad input
//! answered with the RFC 6749 error and status.

use super::{Provider, REDIRECT_URI, VERIFIER, oauth_error};
use crate::helpers::spawn_app_on;

#[actix_web::test]
async fn a_replayed_code_fails_and_revokes_what_the_first_redemption_got() {
    let provider = Provider::new().await;
    let code = provider.code().await;
    let first = provider.redeem(&code).await;
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["cache-control"], "no-store");
    let tokens: serde_json::Value = first.json().await.unwrap();

    assert_eq!(oauth_error(provider.redeem(&code).await, 400).await, "invalid_grant");

    let userinfo = reqwest::Client::new()
        .get(provider.app.url("/userinfo"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(userinfo.status(), 401);
    let refresh = provider
        .app
        .token_request(
            &provider.client_id,
            provider.client_secret.as_deref(),
            &[("grant_type", "refresh_token"), ("refresh_token", tokens["refresh_token"].as_str().unwrap())],
        )
        .await;
    assert_eq!(oauth_error(refresh, 400).await, "invalid_grant");
    assert!(provider.app.audit_rows().await.iter().any(|e| e.action == "oidc.code_reused"));
}

#[actix_web::test]
async fn pkce_redirect_uri_and_expiry_are_enforced() {
    let provider = Provider::new().await;
    let (id, secret) = (provider.client_id.clone(), provider.client_secret.clone());
    let redeem = |code: String, redirect: &'static str, verifier: Option<&'static str>| {
        let app = &provider.app;
        let (id, secret) = (id.clone(), secret.clone());
        async move {
            let mut form =
                vec![("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", redirect)];
            if let Some(v) = verifier {
                form.push(("code_verifier", v));
            }
            app.token_request(&id, secret.as_deref(), &form).await
        }
    };
    let wrong_verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXK";
    assert_eq!(
        oauth_error(redeem(provider.code().await, REDIRECT_URI, Some(wrong_verifier)).await, 400).await,
        "invalid_grant"
    );
    assert_eq!(oauth_error(redeem(provider.code().await, REDIRECT_URI, None).await, 400).await, "invalid_grant");
    assert_eq!(
        oauth_error(redeem(provider.code().await, REDIRECT_URI, Some("short")).await, 400).await,
        "invalid_grant"
    );
    assert_eq!(
        oauth_error(redeem(provider.code().await, "https://rp.example.com/other", Some(VERIFIER)).await, 400).await,
        "invalid_grant"
    );

    let code = provider.code().await;
    provider.db.execute("UPDATE authorization_codes SET expires_at = '2000-01-01 00:00:00'");
    assert_eq!(oauth_error(redeem(code, REDIRECT_URI, Some(VERIFIER)).await, 400).await, "invalid_grant");
}

#[actix_web::test]
async fn a_code_is_bound_to_its_client() {
    let provider = Provider::new().await;
    let (other_id, other_secret) = provider.app.register_client(super::client_settings("Other RP")).await;
    let code = provider.code().await;
    let stolen = provider
        .app
        .token_request(
            &other_id,
            other_secret.as_deref(),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT_URI),
                ("code_verifier", VERIFIER),
            ],
        )
        .await;
    assert_eq!(oauth_error(stolen, 400).await, "invalid_grant");
    // The rightful client can still redeem it.
    assert_eq!(provider.redeem(&code).await.status(), 200);
}

#[actix_web::test]
async fn client_authentication_failures_are_401_with_a_challenge() {
    let provider = Provider::new().await;
    let code = provider.code().await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT_URI),
        ("code_verifier", VERIFIER),
    ];
    for (id, secret) in [
        (provider.client_id.as_str(), Some("wrong")),
        ("unknown-client", Some("x")),
        (provider.client_id.as_str(), None),
    ] {
        let response = provider.app.token_request(id, secret, &form).await;
        let response = if secret.is_none() {
            reqwest::Client::new().post(provider.app.url("/token")).form(&form).send().await.unwrap()
        } else {
            response
        };
        assert_eq!(response.status(), 401, "{id}");
        assert!(response.headers()["www-authenticate"].to_str().unwrap().starts_with("Basic"));
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_client");
    }
    // client_secret_post works as well as Basic.
    let mut post = form.to_vec();
    post.push(("client_id", &provider.client_id));
    let secret = provider.client_secret.clone().unwrap();
    post.push(("client_secret", &secret));
    let response = reqwest::Client::new().post(provider.app.url("/token")).form(&post).send().await.unwrap();
    assert_eq!(response.status(), 200);
}

#[actix_web::test]
async fn malformed_requests_get_invalid_request_not_a_500() {
    let provider = Provider::new().await;
    let app = &provider.app;
    let client = reqwest::Client::new();
    let basic = |r: reqwest::RequestBuilder| r.basic_auth(&provider.client_id, provider.client_secret.as_deref());
    let json = basic(client.post(app.url("/token")))
        .json(&serde_json::json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    assert_eq!(oauth_error(json, 400).await, "invalid_request");
    let repeated = basic(client.post(app.url("/token")))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials&grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    assert_eq!(oauth_error(repeated, 400).await, "invalid_request");
    let binary = basic(client.post(app.url("/token")))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(vec![0xff, 0xfe, 0x00])
        .send()
        .await
        .unwrap();
    assert_eq!(oauth_error(binary, 400).await, "invalid_request");
    let huge = "x".repeat(10_000);
    let oversized = basic(client.post(app.url("/token")))
        .form(&[("grant_type", "authorization_code"), ("code", &huge)])
        .send()
        .await
        .unwrap();
    assert_eq!(oauth_error(oversized, 400).await, "invalid_request");
    let missing = app.token_request(&provider.client_id, provider.client_secret.as_deref(), &[]).await;
    assert_eq!(oauth_error(missing, 400).await, "invalid_request");
    let unknown =
        app.token_request(&provider.client_id, provider.client_secret.as_deref(), &[("grant_type", "password")]).await;
    assert_eq!(oauth_error(unknown, 400).await, "unsupported_grant_type");
    let no_code = app
        .token_request(&provider.client_id, provider.client_secret.as_deref(), &[("grant_type", "authorization_code")])
        .await;
    assert_eq!(oauth_error(no_code, 400).await, "invalid_request");
    let bogus = app
        .token_request(
            &provider.client_id,
            provider.client_secret.as_deref(),
            &[("grant_type", "refresh_token"), ("refresh_token", "bogus")],
        )
        .await;
    assert_eq!(oauth_error(bogus, 400).await, "invalid_grant");
    let get = client.get(app.url("/token")).send().await.unwrap();
    assert!(get.status().is_client_error());
}

#[actix_web::test]
async fn a_replayed_refresh_token_revokes_the_whole_family() {
    let db = crate::helpers::TestDb::new();
    let app = spawn_app_on(&db, |s| s.tokens.refresh_reuse_grace_secs = 0).await;
    let provider = Provider::on(app, db, super::client_settings("RP")).await;
    let tokens = provider.tokens().await;
    let refresh = |token: String| {
        let provider = &provider;
        async move {
            provider
                .app
                .token_request(
                    &provider.client_id,
                    provider.client_secret.as_deref(),
                    &[("grant_type", "refresh_token"), ("refresh_token", &token)],
                )
                .await
        }
    };
    let first = tokens["refresh_token"].as_str().unwrap().to_owned();
    let rotated: serde_json::Value = refresh(first.clone()).await.json().await.unwrap();
    let second = rotated["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(first, second);
    // Simulate time passing beyond the (zero) grace window.
    provider.db.execute("UPDATE refresh_tokens SET rotated_at = '2000-01-01 00:00:00' WHERE rotated_at IS NOT NULL");
    assert_eq!(oauth_error(refresh(first).await, 400).await, "invalid_grant");
    // The thief's replay also kills the legitimate holder's newer token.
    assert_eq!(oauth_error(refresh(second).await, 400).await, "invalid_grant");
    assert!(provider.app.audit_rows().await.iter().any(|e| e.action == "oidc.refresh_token_reused"));
}

#[actix_web::test]
async fn parallel_refreshes_within_the_grace_window_both_succeed() {
    let provider = Provider::new().await;
    let tokens = provider.tokens().await;
    let token = tokens["refresh_token"].as_str().unwrap();
    let form = [("grant_type", "refresh_token"), ("refresh_token", token)];
    let a = provider.app.token_request(&provider.client_id, provider.client_secret.as_deref(), &form).await;
    let b = provider.app.token_request(&provider.client_id, provider.client_secret.as_deref(), &form).await;
    assert_eq!((a.status().as_u16(), b.status().as_u16()), (200, 200));
    // Issue 10 item 10: the replay gets the same successor tokens, so the
    // family has one live branch, not two.
    let (a, b): (serde_json::Value, serde_json::Value) = (a.json().await.unwrap(), b.json().await.unwrap());
    for field in ["access_token", "refresh_token", "id_token", "scope", "expires_in"] {
        assert_eq!(a[field], b[field], "{field}");
    }
    assert_eq!(crate::helpers::count(&provider.db, "refresh_tokens"), 2, "the original and one successor");
    // Truly concurrent replays as well.
    let next = a["refresh_token"].as_str().unwrap();
    let form = [("grant_type", "refresh_token"), ("refresh_token", next)];
    let send = || provider.app.token_request(&provider.client_id, provider.client_secret.as_deref(), &form);
    let (r1, r2, r3, r4) = tokio::join!(send(), send(), send(), send());
    let answers = [r1, r2, r3, r4];
    let mut refresh_tokens = std::collections::HashSet::new();
    for answer in answers {
        assert_eq!(answer.status(), 200);
        let body: serde_json::Value = answer.json().await.unwrap();
        refresh_tokens.insert(body["refresh_token"].as_str().unwrap().to_owned());
    }
    assert_eq!(refresh_tokens.len(), 1, "every parallel request got the same successor");
    assert_eq!(crate::helpers::count(&provider.db, "refresh_tokens"), 3);
    // The successor works; the sealed copy is no token in the clear.
    let successor = refresh_tokens.into_iter().next().unwrap();
    let sealed: Vec<String> = {
        use diesel::prelude::*;
        wxfed::db::schema::refresh_tokens::table
            .select(wxfed::db::schema::refresh_tokens::successor_sealed)
            .load::<Option<String>>(&mut provider.db.connect())
            .unwrap()
            .into_iter()
            .flatten()
            .collect()
    };
    assert_eq!(sealed.len(), 2);
    assert!(!sealed.iter().any(|s| s.contains(&successor) || s.contains(next)));
    let form = [("grant_type", "refresh_token"), ("refresh_token", successor.as_str())];
    let used = provider.app.token_request(&provider.client_id, provider.client_secret.as_deref(), &form).await;
    assert_eq!(used.status(), 200);
}

#[actix_web::test]
async fn refresh_can_narrow_but_not_widen_the_scope() {
    let provider = Provider::new().await;
    let tokens = provider.tokens().await;
    let token = tokens["refresh_token"].as_str().unwrap();
    let narrow = provider
        .app
        .token_request(
            &provider.client_id,
            provider.client_secret.as_deref(),
            &[("grant_type", "refresh_token"), ("refresh_token", token), ("scope", "openid offline_access")],
        )
        .await;
    let body: serde_json::Value = narrow.json().await.unwrap();
    assert_eq!(body["scope"], "openid offline_access");
    let wide = provider
        .app
        .token_request(
            &provider.client_id,
            provider.client_secret.as_deref(),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", body["refresh_token"].as_str().unwrap()),
                ("scope", "openid email"),
            ],
        )
        .await;
    assert_eq!(oauth_error(wide, 400).await, "invalid_scope");
}

#[actix_web::test]
async fn client_credentials_give_an_access_token_for_the_client_itself() {
    let mut settings = super::client_settings("Service");
    settings.scopes = vec!["openid".into(), "reports.read".into(), "reports.write".into()];
    let provider = Provider::with_client(settings).await;
    let response = provider
        .app
        .token_request(
            &provider.client_id,
            provider.client_secret.as_deref(),
            &[("grant_type", "client_credentials"), ("scope", "reports.read openid")],
        )
        .await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["scope"], "reports.read", "user scopes are not for clients");
    assert!(body.get("id_token").is_none() && body.get("refresh_token").is_none());
    let introspected: serde_json::Value = reqwest::Client::new()
        .post(provider.app.url("/introspect"))
        .basic_auth(&provider.client_id, provider.client_secret.as_deref())
        .form(&[("token", body["access_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(introspected["active"], true);
    assert_eq!(introspected["sub"], provider.client_id);
}

#[actix_web::test]
async fn a_client_without_a_grant_type_cannot_use_it() {
    let mut settings = super::client_settings("Code only");
    settings.grant_types = vec![wxfed::oidc::clients::GrantType::AuthorizationCode];
    let provider = Provider::with_client(settings).await;
    let response = provider
        .app
        .token_request(&provider.client_id, provider.client_secret.as_deref(), &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(oauth_error(response, 400).await, "unauthorized_client");
    let tokens = provider.tokens().await;
    assert!(tokens.get("refresh_token").is_none(), "no refresh_token grant, no refresh token");
}

#[actix_web::test]
async fn a_disabled_account_gets_no_more_tokens() {
    let provider = Provider::new().await;
    let tokens = provider.tokens().await;
    provider.db.execute("UPDATE accounts SET status = 'disabled'");
    let refresh = provider
        .app
        .token_request(
            &provider.client_id,
            provider.client_secret.as_deref(),
            &[("grant_type", "refresh_token"), ("refresh_token", tokens["refresh_token"].as_str().unwrap())],
        )
        .await;
    assert_eq!(oauth_error(refresh, 400).await, "invalid_grant");
}

/// Issue 10 item 5: `id_token_hint` takes only ID tokens wxfed issued, to
/// the client that presents them: an access token (`typ` `at+jwt`, same
/// keys, same issuer) or another client's ID token is refused.
#[actix_web::test]
async fn id_token_hint_accepts_only_this_clients_id_tokens() {
    let provider = Provider::new().await;
    let tokens = provider.tokens().await;
    let (id_token, access_token) = (tokens["id_token"].as_str().unwrap(), tokens["access_token"].as_str().unwrap());

    let with_hint = provider.follow(&provider.authorize_url(&[("id_token_hint", id_token)])).await;
    assert!(super::redirect_params(&with_hint).contains_key("code"), "its own ID token is a valid hint");
    let with_access_token = provider.follow(&provider.authorize_url(&[("id_token_hint", access_token)])).await;
    assert_eq!(super::redirect_params(&with_access_token)["error"], "invalid_request", "an access token is no hint");

    let (other, _) = provider.app.register_client(super::client_settings("Other")).await;
    let foreign = provider.follow(&provider.authorize_url(&[("client_id", &other), ("id_token_hint", id_token)])).await;
    assert_eq!(super::redirect_params(&foreign)["error"], "invalid_request", "another client's ID token");

    let end_session = |hint: &str| provider.app.url(&format!("/end-session?id_token_hint={hint}"));
    let stranger = reqwest::Client::new();
    assert_eq!(stranger.get(end_session(access_token)).send().await.unwrap().status(), 400);
    assert_eq!(stranger.get(end_session(id_token)).send().await.unwrap().status(), 200);
}

//! Who may call the management API, and how the others are refused
//! (RFC 6750 §3 challenges with RFC 9457 bodies).

use serde_json::json;
use wxfed::oidc::clients::{self, ClientUpdate, GrantType};

use super::{ADMIN, AUDIT, Api, api_client_settings, token};
use crate::oidc::{Provider, client_settings};

const ACCOUNTS: &str = "/api/admin/accounts";

#[actix_rt::test]
async fn no_token_or_a_bad_one_is_a_401_challenge() {
    let api = Api::new().await;
    for token in [None, Some("not-a-token"), Some("eyJhbGciOiJSUzI1NiJ9.e30.c2ln")] {
        let answer = api.call("get", ACCOUNTS, &[], token, None).await;
        answer.problem(401, "invalid_token");
        let challenge = answer.header("www-authenticate");
        assert!(challenge.starts_with("Bearer ") && challenge.contains("error=\"invalid_token\""), "{challenge}");
    }
    // RFC 6750 §2.3 (a token in the URL) is not offered.
    let answer = api.call("get", &format!("{ACCOUNTS}?access_token={}", api.admin), &[], None, None).await;
    answer.problem(401, "invalid_token");
    // A write without a token: 401 before the body is looked at.
    let answer = api.call("post", ACCOUNTS, &[], None, Some(json!({"nonsense": true}))).await;
    answer.problem(401, "invalid_token");
    api.validate_responses().await;
}

#[actix_rt::test]
async fn a_token_a_person_got_is_refused_and_never_carries_the_api_scopes() {
    // A client allowed wxfed:admin that also logs people in.
    let mut settings = client_settings("Both");
    settings.scopes = vec!["openid".into(), "profile".into(), ADMIN.into()];
    let provider = Provider::with_client(settings).await;
    let code = provider.follow(&provider.authorize_url(&[("scope", "openid profile wxfed:admin")])).await;
    let code = crate::oidc::redirect_params(&code)["code"].clone();
    let tokens: serde_json::Value = provider.redeem(&code).await.json().await.unwrap();
    assert!(!tokens["scope"].as_str().unwrap().contains(ADMIN), "{tokens}");
    let user_token = tokens["access_token"].as_str().unwrap();
    let response = provider.app.client.get(provider.app.url(ACCOUNTS)).bearer_auth(user_token).send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert!(response.headers()["www-authenticate"].to_str().unwrap().contains("invalid_token"));
    // The same client's own token works.
    let own = token(&provider.app, &provider.client_id, provider.client_secret.as_deref().unwrap(), None).await;
    let response = provider.app.client.get(provider.app.url(ACCOUNTS)).bearer_auth(&own).send().await.unwrap();
    assert_eq!(response.status(), 200);
}

#[actix_rt::test]
async fn a_token_without_the_scope_is_a_403_and_recorded() {
    let api = Api::new().await;
    let (id, secret) = api.app.register_client(api_client_settings("reports", &["reports:read"])).await;
    let other = token(&api.app, &id, &secret.unwrap(), None).await;
    let answer = api.get(ACCOUNTS, &[], &other).await;
    answer.problem(403, "insufficient_scope");
    let challenge = answer.header("www-authenticate");
    assert!(challenge.contains("error=\"insufficient_scope\"") && challenge.contains("scope=\"wxfed:admin\""));
    // The audit scope reads, but does not write.
    assert_eq!(api.get(ACCOUNTS, &[], &api.audit).await.status, 200);
    let answer = api.send("post", ACCOUNTS, &[], &api.audit, json!({"username": "mallory"})).await;
    answer.problem(403, "insufficient_scope");
    let denied = api.events("admin.access_denied").await;
    assert_eq!(denied.len(), 2, "{denied:?}");
    assert_eq!(denied[0].actor.as_deref(), Some(format!("client:{id}").as_str()));
    assert_eq!(denied[1].actor.as_deref(), Some(format!("client:{}", api.audit_client).as_str()));
    assert_eq!(denied[1].reason.as_deref(), Some("insufficient_scope"));
    assert!(denied[1].detail.contains("\"path\":\"/api/admin/accounts\""), "{}", denied[1].detail);
    api.validate_responses().await;
}

#[actix_rt::test]
async fn a_client_gets_only_the_scopes_an_admin_allowed_it() {
    let api = Api::new().await;
    // Allowed wxfed:audit only: asking for wxfed:admin gets no admin power.
    let (id, secret) = api.app.register_client(api_client_settings("auditor-bot", &[AUDIT])).await;
    let secret = secret.unwrap();
    let response = api
        .app
        .token_request(
            &id,
            Some(&secret),
            &[("grant_type", "client_credentials"), ("scope", "wxfed:admin wxfed:audit")],
        )
        .await;
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["scope"], AUDIT, "{body}");
    let narrowed = body["access_token"].as_str().unwrap().to_owned();
    api.send("post", ACCOUNTS, &[], &narrowed, json!({"username": "x"})).await.problem(403, "insufficient_scope");
    // Only asking for wxfed:admin: a token with no API scope at all.
    let none = token(&api.app, &id, &secret, Some(ADMIN)).await;
    api.get(ACCOUNTS, &[], &none).await.problem(403, "insufficient_scope");

    // Registration refuses the API scopes on a public client and on a
    // client without client_credentials.
    let state = api.app.state.clone();
    actix_web::web::block(move || {
        let mut conn = state.db.get().unwrap();
        let actor = wxfed::accounts::manage::Actor("test".into());
        let mut public = api_client_settings("spa", &[ADMIN]);
        public.public = true;
        public.grant_types = vec![GrantType::AuthorizationCode];
        public.redirect_uris = vec!["https://spa.example.com/cb".into()];
        assert!(matches!(
            clients::register(&mut conn, &state.secrets, &actor, &public),
            Err(clients::ClientError::Invalid(_))
        ));
        let mut web = public.clone();
        web.public = false;
        assert!(matches!(
            clients::register(&mut conn, &state.secrets, &actor, &web),
            Err(clients::ClientError::Invalid(_))
        ));
    })
    .await
    .unwrap();
    api.validate_responses().await;
}

#[actix_rt::test]
async fn taking_the_scope_away_or_removing_the_client_stops_its_tokens() {
    let api = Api::new().await;
    assert_eq!(api.get(ACCOUNTS, &[], &api.admin).await.status, 200);
    let (state, id) = (api.app.state.clone(), api.admin_client.clone());
    actix_web::web::block(move || {
        let mut conn = state.db.get().unwrap();
        let actor = wxfed::accounts::manage::Actor("test".into());
        let change = ClientUpdate { scopes: Some(vec!["reports:read".into()]), ..Default::default() };
        clients::update(&mut conn, &state.secrets, &actor, &id, &change).unwrap();
    })
    .await
    .unwrap();
    api.get(ACCOUNTS, &[], &api.admin).await.problem(403, "insufficient_scope");
    let (state, id) = (api.app.state.clone(), api.admin_client.clone());
    actix_web::web::block(move || {
        let mut conn = state.db.get().unwrap();
        let actor = wxfed::accounts::manage::Actor("test".into());
        clients::remove(&mut conn, &state.secrets, &actor, &id).unwrap();
    })
    .await
    .unwrap();
    api.get(ACCOUNTS, &[], &api.admin).await.problem(401, "invalid_token");
    api.validate_responses().await;
}

#[actix_rt::test]
async fn a_method_a_resource_does_not_take_is_a_405_problem_with_its_allow_list() {
    let api = Api::new().await;
    let url = api.app.url(ACCOUNTS);
    let response = api.app.client.delete(&url).bearer_auth(&api.admin).send().await.unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "GET, HEAD, POST, OPTIONS");
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], 405);
    let response = api
        .app
        .client
        .request(reqwest::Method::OPTIONS, api.app.url("/api/admin/accounts/x/roles"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(response.headers()["allow"], "PUT, OPTIONS");
    // A path that is no resource stays a 404 problem.
    let response =
        api.app.client.get(api.app.url("/api/admin/nothing-here")).bearer_auth(&api.admin).send().await.unwrap();
    assert_eq!(response.status(), 404);
}

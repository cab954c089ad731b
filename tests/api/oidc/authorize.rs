//! Bad authorization requests: a page before the redirect URI is trusted,
//! an RFC error redirect after.

use super::{Provider, client_settings, location, redirect_params};
use crate::helpers::new_client;

async fn error_of(provider: &Provider, overrides: &[(&str, &str)]) -> String {
    let response = provider.follow(&provider.authorize_url(overrides)).await;
    assert_eq!(response.status(), 303, "an error redirect for {overrides:?}");
    assert!(location(&response).starts_with(super::REDIRECT_URI));
    let params = redirect_params(&response);
    assert_eq!(params["state"], "s-123", "state is echoed on errors");
    assert_eq!(params["iss"], provider.app.address);
    params["error"].clone()
}

#[actix_web::test]
async fn a_wrong_redirect_uri_is_never_redirected_to() {
    let provider = Provider::new().await;
    for uri in [
        "https://evil.example/callback",
        "https://rp.example.com/callback/",
        "https://rp.example.com/CALLBACK",
        "https://rp.example.com/callback?x=1",
        "",
    ] {
        let response = provider.follow(&provider.authorize_url(&[("redirect_uri", uri)])).await;
        assert_eq!(response.status(), 400, "{uri}");
        assert!(response.headers().get("location").is_none());
        assert!(response.text().await.unwrap().contains("redirect_uri"));
    }
}

#[actix_web::test]
async fn an_unknown_or_missing_client_gets_a_page() {
    let provider = Provider::new().await;
    for client in ["nope", ""] {
        let response = provider.follow(&provider.authorize_url(&[("client_id", client)])).await;
        assert_eq!(response.status(), 400);
        assert!(response.headers().get("location").is_none());
    }
}

#[actix_web::test]
async fn protocol_errors_go_back_with_rfc_codes() {
    let provider = Provider::new().await;
    assert_eq!(error_of(&provider, &[("response_type", "token")]).await, "unsupported_response_type");
    assert_eq!(error_of(&provider, &[("response_type", "code id_token")]).await, "unsupported_response_type");
    assert_eq!(error_of(&provider, &[("response_type", "")]).await, "invalid_request");
    assert_eq!(error_of(&provider, &[("code_challenge_method", "plain")]).await, "invalid_request");
    assert_eq!(
        error_of(&provider, &[("code_challenge_method", "")]).await,
        "invalid_request",
        "plain by default is refused"
    );
    assert_eq!(error_of(&provider, &[("code_challenge", "too-short")]).await, "invalid_request");
    assert_eq!(error_of(&provider, &[("prompt", "none login")]).await, "invalid_request");
    assert_eq!(error_of(&provider, &[("max_age", "-1")]).await, "invalid_request");
    assert_eq!(error_of(&provider, &[("request", "eyJ.x.y")]).await, "request_not_supported");
    assert_eq!(error_of(&provider, &[("id_token_hint", "not-a-token")]).await, "invalid_request");
    assert_eq!(error_of(&provider, &[("response_mode", "fragment")]).await, "invalid_request");
}

#[actix_web::test]
async fn repeated_or_oversized_parameters_are_refused_without_a_500() {
    let provider = Provider::new().await;
    let repeated = format!("{}&scope=openid", provider.authorize_url(&[]));
    assert_eq!(provider.follow(&repeated).await.status(), 400);
    let huge = "x".repeat(5000);
    assert_eq!(provider.follow(&provider.authorize_url(&[("state", &huge)])).await.status(), 400);
    let garbage = format!("{}/authorize?%%%=%%%", provider.app.address);
    assert_eq!(provider.follow(&garbage).await.status(), 400);
}

#[actix_web::test]
async fn public_clients_must_use_pkce() {
    let mut settings = client_settings("Mobile app");
    settings.public = true;
    settings.grant_types = vec![];
    let provider = Provider::with_client(settings).await;
    let response =
        provider.follow(&provider.authorize_url(&[("code_challenge", ""), ("code_challenge_method", "")])).await;
    assert_eq!(redirect_params(&response)["error"], "invalid_request");
    // With PKCE the public client gets its code and redeems it without a secret.
    let code = provider.code().await;
    let tokens = provider.redeem(&code).await;
    assert_eq!(tokens.status(), 200);
}

#[actix_web::test]
async fn prompt_none_without_a_session_says_login_required() {
    let provider = Provider::new().await;
    let stranger = new_client();
    let response = stranger.get(provider.authorize_url(&[("prompt", "none")])).send().await.unwrap();
    assert_eq!(redirect_params(&response)["error"], "login_required");
}

#[actix_web::test]
async fn without_a_session_the_browser_goes_to_login_and_comes_back() {
    let provider = Provider::new().await;
    let browser = crate::helpers::TestApp {
        address: provider.app.address.clone(),
        client: new_client(),
        state: provider.app.state.clone(),
    };
    let response = browser.client.get(provider.authorize_url(&[("login_hint", "alice")])).send().await.unwrap();
    assert_eq!(response.status(), 303);
    let login_url = location(&response);
    assert!(login_url.starts_with("/login?"), "{login_url}");
    let page = browser.get(&login_url).await.text().await.unwrap();
    assert!(page.contains(r#"value="alice""#), "login_hint pre-fills the username");
    let return_to = url::Url::parse(&format!("http://x{login_url}"))
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "return_to")
        .unwrap()
        .1
        .into_owned();
    let token = crate::helpers::extract_csrf(&page);
    let logged_in = browser
        .post_form(
            "/login",
            &[("username", "alice"), ("password", super::PASSWORD), ("csrf_token", &token), ("return_to", &return_to)],
        )
        .await;
    assert_eq!(logged_in.status(), 303);
    let back = browser.get(&location(&logged_in)).await;
    assert!(redirect_params(&back).contains_key("code"));
}

#[actix_web::test]
async fn prompt_login_and_max_age_force_a_fresh_login() {
    let provider = Provider::new().await;
    for overrides in [&[("prompt", "login")][..], &[("max_age", "0")][..]] {
        let response = provider.follow(&provider.authorize_url(overrides)).await;
        let login_url = location(&response);
        assert!(login_url.starts_with("/login?"), "{overrides:?} must log in again: {login_url}");
        // After logging in again, the same request returns a code.
        let return_to = url::Url::parse(&format!("http://x{login_url}"))
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == "return_to")
            .unwrap()
            .1
            .into_owned();
        let token = provider.app.csrf_token().await;
        let logged_in = provider
            .app
            .post_form(
                "/login",
                &[
                    ("username", "alice"),
                    ("password", super::PASSWORD),
                    ("csrf_token", &token),
                    ("return_to", &return_to),
                ],
            )
            .await;
        let back = provider.app.get(&location(&logged_in)).await;
        assert!(redirect_params(&back).contains_key("code"), "{overrides:?}");
    }
    // A generous max_age does not ask again.
    let response = provider.follow(&provider.authorize_url(&[("max_age", "3600")])).await;
    assert!(redirect_params(&response).contains_key("code"));
}

#[actix_web::test]
async fn form_post_answers_with_a_self_submitting_form() {
    let provider = Provider::new().await;
    let response = provider.follow(&provider.authorize_url(&[("response_mode", "form_post")])).await;
    assert_eq!(response.status(), 200);
    let page = response.text().await.unwrap();
    assert!(page.contains(&format!(r#"action="{}""#, super::REDIRECT_URI)));
    assert!(
        page.contains(r#"name="code""#)
            && page.contains(r#"name="state" value="s-123""#)
            && page.contains(r#"name="iss""#)
    );
    assert!(page.contains("/static/form_post.js"));
}

#[actix_web::test]
async fn an_id_token_hint_for_someone_else_means_logging_in() {
    let provider = Provider::new().await;
    let tokens = provider.tokens().await;
    let hint = tokens["id_token"].as_str().unwrap();
    // The same person: fine, even with prompt=none.
    let response = provider.follow(&provider.authorize_url(&[("id_token_hint", hint), ("prompt", "none")])).await;
    assert!(redirect_params(&response).contains_key("code"));
    // Someone else is logged in now: prompt=none cannot proceed.
    provider.app.add_user("bob", super::PASSWORD).await;
    provider.app.login("bob", super::PASSWORD).await;
    let response = provider.follow(&provider.authorize_url(&[("id_token_hint", hint), ("prompt", "none")])).await;
    assert_eq!(redirect_params(&response)["error"], "login_required");
}

/// The `return_to` of a redirect to `/login`.
fn return_to_of(login_url: &str) -> String {
    url::Url::parse(&format!("http://x{login_url}"))
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "return_to")
        .unwrap()
        .1
        .into_owned()
}

/// Issue 10 item 1: a session holder cannot skip the re-authentication an
/// RP asked for by editing the URL. Only a real login after the request
/// (the session's own `auth_time`) satisfies `prompt=login` / `max_age`.
#[actix_web::test]
async fn editing_the_url_never_stands_in_for_a_fresh_login() {
    let provider = Provider::new().await;
    for overrides in [&[("prompt", "login")][..], &[("max_age", "0")][..]] {
        // The old marker, and forged tickets, are ignored.
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs().to_string();
        let forged_ticket = format!("{now}.AAAA");
        for marker in
            [("wxfed_login_after", "0"), ("wxfed_login_after", now.as_str()), ("wxfed_reauth", forged_ticket.as_str())]
        {
            let url = provider.authorize_url(&[overrides, &[marker][..]].concat());
            let response = provider.follow(&url).await;
            assert!(location(&response).starts_with("/login?"), "{overrides:?} {marker:?} must log in again");
        }
        // Following the way back without logging in: still a login.
        let response = provider.follow(&provider.authorize_url(overrides)).await;
        let return_to = return_to_of(&location(&response));
        assert!(return_to.contains("wxfed_reauth="), "{return_to}");
        let back = provider.app.get(&return_to).await;
        assert!(location(&back).starts_with("/login?"), "{overrides:?}: return_to alone is no login");
        // The ticket of this request does not fit another request.
        let ticket = url::Url::parse(&format!("http://x{return_to}"))
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == "wxfed_reauth")
            .unwrap()
            .1
            .into_owned();
        let other = provider.authorize_url(&[overrides, &[("state", "other"), ("wxfed_reauth", &ticket)][..]].concat());
        assert!(location(&provider.follow(&other).await).starts_with("/login?"));
        // After a real login, the request completes.
        let token = provider.app.csrf_token().await;
        let logged_in = provider
            .app
            .post_form(
                "/login",
                &[
                    ("username", "alice"),
                    ("password", super::PASSWORD),
                    ("csrf_token", &token),
                    ("return_to", &return_to),
                ],
            )
            .await;
        let done = provider.app.get(&location(&logged_in)).await;
        assert!(redirect_params(&done).contains_key("code"), "{overrides:?}");
    }
}

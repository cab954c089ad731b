//! Consent for third-party clients: asked once, remembered, revocable.

use super::{Provider, client_settings, location, redirect_params};
use crate::helpers::extract_csrf;

async fn third_party() -> Provider {
    let mut settings = client_settings("Partner App");
    settings.first_party = false;
    Provider::with_client(settings).await
}

async fn decide(provider: &Provider, page: &str, decision: &str) -> reqwest::Response {
    let marker = r#"name="request" value=""#;
    let start = page.find(marker).unwrap() + marker.len();
    let request = html_unescape(&page[start..start + page[start..].find('"').unwrap()]);
    provider
        .app
        .post_form(
            "/authorize/consent",
            &[("csrf_token", &extract_csrf(page)), ("request", &request), ("decision", decision)],
        )
        .await
}

fn html_unescape(text: &str) -> String {
    text.replace("&#38;", "&")
        .replace("&amp;", "&")
        .replace("&#61;", "=")
        .replace("&#39;", "'")
        .replace("&#34;", "\"")
        .replace("&quot;", "\"")
}

#[actix_web::test]
async fn consent_is_asked_once_remembered_and_can_be_withdrawn() {
    let provider = third_party().await;
    let response = provider.follow(&provider.authorize_url(&[])).await;
    assert_eq!(response.status(), 200, "a consent page, not a redirect");
    let page = response.text().await.unwrap();
    assert!(page.contains("Partner App") && page.contains("See your name and username"));

    // prompt=none cannot show the page.
    let silent = provider.follow(&provider.authorize_url(&[("prompt", "none")])).await;
    assert_eq!(redirect_params(&silent)["error"], "consent_required");

    let allowed = decide(&provider, &page, "allow").await;
    assert!(redirect_params(&allowed).contains_key("code"));

    // Remembered: the next request goes straight through.
    let again = provider.follow(&provider.authorize_url(&[])).await;
    assert!(redirect_params(&again).contains_key("code"));
    // ...unless the client asks with prompt=consent.
    assert_eq!(provider.follow(&provider.authorize_url(&[("prompt", "consent")])).await.status(), 200);

    // Tokens issued so far stop working when consent is withdrawn.
    let tokens = provider.tokens().await;
    let consents = provider.app.get("/consents").await.text().await.unwrap();
    assert!(consents.contains("Partner App"));
    let withdrawn = provider
        .app
        .post_form(
            "/consents/withdraw",
            &[("csrf_token", &extract_csrf(&consents)), ("client_id", &provider.client_id)],
        )
        .await;
    assert_eq!(location(&withdrawn), "/consents");
    let userinfo = reqwest::Client::new()
        .get(provider.app.url("/userinfo"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(userinfo.status(), 401);
    assert_eq!(provider.follow(&provider.authorize_url(&[])).await.status(), 200, "asked again");

    let actions: Vec<String> = provider.app.audit_rows().await.into_iter().map(|e| e.action).collect();
    assert!(
        actions.contains(&"oidc.consent_given".to_owned()) && actions.contains(&"oidc.consent_withdrawn".to_owned())
    );
}

#[actix_web::test]
async fn denying_consent_sends_access_denied() {
    let provider = third_party().await;
    let page = provider.follow(&provider.authorize_url(&[])).await.text().await.unwrap();
    let denied = decide(&provider, &page, "deny").await;
    let params = redirect_params(&denied);
    assert_eq!(params["error"], "access_denied");
    assert_eq!(params["state"], "s-123");
}

#[actix_web::test]
async fn a_consent_form_without_its_csrf_token_is_refused() {
    let provider = third_party().await;
    let page = provider.follow(&provider.authorize_url(&[])).await.text().await.unwrap();
    let marker = r#"name="request" value=""#;
    let start = page.find(marker).unwrap() + marker.len();
    let request = html_unescape(&page[start..start + page[start..].find('"').unwrap()]);
    let forged = provider.app.post_form("/authorize/consent", &[("request", &request), ("decision", "allow")]).await;
    assert_eq!(forged.status(), 403);
}

//! RP-initiated logout.

use super::flow::urlencode;
use super::{LOGOUT_URI, Provider, location};

#[actix_web::test]
async fn an_unregistered_post_logout_redirect_uri_is_not_followed() {
    let provider = Provider::new().await;
    let tokens = provider.tokens().await;
    let url = format!(
        "/end-session?id_token_hint={}&post_logout_redirect_uri={}",
        tokens["id_token"].as_str().unwrap(),
        urlencode("https://evil.example/")
    );
    let response = provider.app.get(&url).await;
    assert_eq!(response.status(), 400);
    assert!(response.headers().get("location").is_none());
    assert_eq!(provider.app.get("/").await.status(), 200, "still logged in");
}

#[actix_web::test]
async fn without_a_hint_the_person_is_asked_first() {
    let provider = Provider::new().await;
    let url = format!(
        "/end-session?client_id={}&post_logout_redirect_uri={}&state=x",
        provider.client_id,
        urlencode(LOGOUT_URI)
    );
    let page = provider.app.get(&url).await;
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(page.contains("Example RP"));
    assert_eq!(provider.app.get("/").await.status(), 200, "nothing happened yet");

    let marker = r#"name="request" value=""#;
    let start = page.find(marker).unwrap() + marker.len();
    let request = page[start..start + page[start..].find('"').unwrap()]
        .replace("&#38;", "&")
        .replace("&amp;", "&")
        .replace("&#61;", "=");
    let confirmed = provider
        .app
        .post_form(
            "/end-session/confirm",
            &[("csrf_token", &crate::helpers::extract_csrf(&page)), ("request", &request)],
        )
        .await;
    assert_eq!(confirmed.status(), 303);
    assert_eq!(location(&confirmed), format!("{LOGOUT_URI}?state=x"));
    assert_eq!(provider.app.get("/").await.status(), 303, "logged out");
}

#[actix_web::test]
async fn logout_without_a_session_or_return_address_shows_the_page() {
    let provider = Provider::new().await;
    let stranger = crate::helpers::new_client();
    let response = stranger
        .post(provider.app.url("/end-session"))
        .form(&[("client_id", provider.client_id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().contains("signed out"));
    let bad_hint = stranger.get(provider.app.url("/end-session?id_token_hint=garbage")).send().await.unwrap();
    assert_eq!(bad_hint.status(), 400);
}

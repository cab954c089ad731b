use openidconnect::core::{CoreAuthenticationFlow, CoreJwsSigningAlgorithm, CoreUserInfoClaims};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, CsrfToken, Nonce, OAuth2TokenResponse, PkceCodeChallenge, RefreshToken,
    RevocationUrl, Scope, TokenResponse,
};

use super::{Provider, client_settings, location, redirect_params};
use wxfed::oidc::signing::SigningAlgorithm;

/// The whole life of a login, as a certified client library sees it.
#[actix_web::test]
async fn a_relying_party_library_logs_in_refreshes_revokes_and_logs_out() {
    let provider = Provider::new().await;
    let rp = provider.rp().await;

    // Authorization request with PKCE, state and nonce.
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf, nonce) = rp
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("offline_access".into()))
        .add_scope(Scope::new("made-up-scope".into()))
        .set_pkce_challenge(challenge)
        .url();
    let response = provider.follow(url.as_str()).await;
    assert_eq!(response.status(), 303);
    assert!(location(&response).starts_with(super::REDIRECT_URI));
    let params = redirect_params(&response);
    assert_eq!(params["state"], *csrf.secret());
    assert_eq!(params["iss"], provider.app.address, "RFC 9207 iss");

    // Code for tokens; the library verifies the ID token against the JWKS.
    let tokens = rp
        .exchange_code(AuthorizationCode::new(params["code"].clone()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&super::rp_http)
        .await
        .unwrap();
    assert_eq!(
        tokens.scopes().unwrap().iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        ["openid", "profile", "email", "offline_access"],
        "unknown scopes are dropped"
    );
    let id_token = tokens.id_token().expect("an ID token for scope openid");
    let claims = id_token.claims(&rp.id_token_verifier(), &nonce).expect("ID token verifies");
    assert_eq!(claims.subject().as_str(), provider.account_id);
    assert_eq!(claims.issuer().as_str(), provider.app.address);
    assert_eq!(claims.preferred_username().unwrap().as_str(), "alice");
    assert!(claims.auth_time().is_some());
    assert_eq!(claims.authorized_party().unwrap().as_str(), provider.client_id);
    let amr: Vec<String> = claims.auth_method_refs().unwrap().iter().map(|m| m.to_string()).collect();
    assert_eq!(amr, ["pwd"]);
    let at_hash = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&rp.id_token_verifier()).unwrap(),
    )
    .unwrap();
    assert_eq!(claims.access_token_hash(), Some(&at_hash));

    // The access token is an RFC 9068 JWT.
    let header = tokens.access_token().secret().split('.').next().unwrap().to_owned();
    use base64::Engine;
    let header: serde_json::Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    assert_eq!(header["typ"], "at+jwt");

    // Userinfo.
    let userinfo: CoreUserInfoClaims =
        rp.user_info(tokens.access_token().clone(), None).unwrap().request_async(&super::rp_http).await.unwrap();
    assert_eq!(userinfo.subject().as_str(), provider.account_id);
    assert_eq!(userinfo.preferred_username().unwrap().as_str(), "alice");

    // Refresh: a new refresh token every time.
    let refresh = tokens.refresh_token().expect("offline_access gives a refresh token").clone();
    let refreshed = rp.exchange_refresh_token(&refresh).unwrap().request_async(&super::rp_http).await.unwrap();
    let new_refresh = refreshed.refresh_token().unwrap().clone();
    assert_ne!(new_refresh.secret(), refresh.secret(), "rotated");
    let refreshed_id =
        refreshed.id_token().unwrap().claims(&rp.id_token_verifier(), |_: Option<&Nonce>| Ok(())).unwrap();
    assert_eq!(refreshed_id.auth_time(), claims.auth_time(), "auth_time survives refresh");

    // Revocation of the refresh token ends the grant. (openidconnect
    // refuses to send a revocation over plain http, as RFC 7009 §5 asks,
    // so this one request is made by hand.)
    let _ = RevocationUrl::new(format!("{}/revoke", provider.app.address)).unwrap();
    let revoked = reqwest::Client::new()
        .post(provider.app.url("/revoke"))
        .basic_auth(&provider.client_id, provider.client_secret.as_deref())
        .form(&[("token", new_refresh.secret().as_str()), ("token_type_hint", "refresh_token")])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    assert!(rp.exchange_refresh_token(&new_refresh).unwrap().request_async(&super::rp_http).await.is_err());
    assert!(
        rp.user_info(refreshed.access_token().clone(), None)
            .unwrap()
            .request_async::<openidconnect::EmptyAdditionalClaims, _, openidconnect::core::CoreGenderClaim>(
                &super::rp_http
            )
            .await
            .is_err(),
        "access tokens of the revoked grant stop working"
    );

    // RP-initiated logout with the ID token as hint.
    let logout = provider
        .follow(&format!(
            "{}/end-session?id_token_hint={}&post_logout_redirect_uri={}&state=bye",
            provider.app.address,
            id_token,
            urlencode(super::LOGOUT_URI)
        ))
        .await;
    assert_eq!(logout.status(), 303);
    assert_eq!(location(&logout), format!("{}?state=bye", super::LOGOUT_URI));
    assert_eq!(provider.app.get("/").await.status(), 303, "the wxfed session ended");

    let actions: Vec<String> = provider.app.audit_rows().await.into_iter().map(|e| e.action).collect();
    for action in ["oidc.authorization", "oidc.token_issued", "oidc.token_revoked", "oidc.end_session", "logout"] {
        assert!(actions.iter().any(|a| a == action), "{action} in {actions:?}");
    }
}

pub fn urlencode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

#[actix_web::test]
async fn a_client_can_ask_for_es256_id_tokens() {
    let mut settings = client_settings("ES256 RP");
    settings.id_token_signing_alg = SigningAlgorithm::Es256;
    let provider = Provider::with_client(settings).await;
    let rp = provider.rp().await;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, _, nonce) = rp
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .set_pkce_challenge(challenge)
        .url();
    let params = redirect_params(&provider.follow(url.as_str()).await);
    let tokens = rp
        .exchange_code(AuthorizationCode::new(params["code"].clone()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&super::rp_http)
        .await
        .unwrap();
    let id_token = tokens.id_token().unwrap();
    assert_eq!(*id_token.signing_alg().unwrap(), CoreJwsSigningAlgorithm::EcdsaP256Sha256);
    let verifier = rp.id_token_verifier().set_allowed_algs(vec![CoreJwsSigningAlgorithm::EcdsaP256Sha256]);
    id_token.claims(&verifier, &nonce).expect("ES256 ID token verifies against the JWKS");
    // Without offline_access (and no client setting) there is no refresh token.
    assert!(tokens.refresh_token().is_none());
    let _ = RefreshToken::new(String::new());
}

#[actix_web::test]
async fn discovery_is_exact_and_the_jwks_names_kid_use_and_alg() {
    let provider = Provider::new().await;
    let doc: serde_json::Value = provider.app.get("/.well-known/openid-configuration").await.json().await.unwrap();
    assert_eq!(doc["issuer"], provider.app.address);
    for endpoint in [
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
        "revocation_endpoint",
        "introspection_endpoint",
        "end_session_endpoint",
    ] {
        assert!(doc[endpoint].as_str().unwrap().starts_with(&provider.app.address), "{endpoint}");
    }
    assert_eq!(doc["response_types_supported"], serde_json::json!(["code"]));
    assert_eq!(doc["code_challenge_methods_supported"], serde_json::json!(["S256"]));
    assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
    assert_eq!(doc["request_parameter_supported"], false);

    let jwks: serde_json::Value = provider.app.get("/jwks.json").await.json().await.unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 3);
    let mut algs: Vec<&str> = keys.iter().map(|k| k["alg"].as_str().unwrap()).collect();
    algs.sort();
    assert_eq!(algs, ["ES256", "EdDSA", "RS256"]);
    for key in keys {
        assert_eq!(key["use"], "sig");
        assert!(key["kid"].as_str().is_some_and(|k| !k.is_empty()));
        for private in ["d", "p", "q", "dp", "dq", "qi"] {
            assert!(key.get(private).is_none(), "no private member {private}");
        }
    }
}

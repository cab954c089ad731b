//! Per-client signing algorithms (RS256, ES256, EdDSA) and the cached
//! discovery and JWKS documents.
//!
//! Tokens are checked with the `openidconnect` crate (RustCrypto: `rsa`,
//! `p256`, `ed25519-dalek`), not with wxfed's OpenSSL code that made them.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreJsonWebKey, CoreJsonWebKeySet, CoreJwsSigningAlgorithm, CoreProviderMetadata,
};
use openidconnect::{AuthorizationCode, CsrfToken, JsonWebKey, Nonce, PkceCodeChallenge};
use wxfed::oidc::signing::SigningAlgorithm;

use super::flow::urlencode;
use super::{LOGOUT_URI, Provider, client_settings, location, redirect_params};

fn header(jwt: &str) -> serde_json::Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(jwt.split('.').next().unwrap()).unwrap()).unwrap()
}

/// Verifies a compact JWS against the published JWKS with openidconnect's
/// JWK implementation: the key is found by `kid` and must declare `alg`.
async fn verify_with_jwks(provider: &Provider, jwt: &str, alg: SigningAlgorithm) -> serde_json::Value {
    let jwks: CoreJsonWebKeySet = provider.app.get("/jwks.json").await.json().await.unwrap();
    let header = header(jwt);
    assert_eq!(header["alg"], alg.as_str());
    assert_eq!(header["typ"], "at+jwt", "RFC 9068 §2.1");
    let kid = header["kid"].as_str().unwrap();
    let key: &CoreJsonWebKey =
        jwks.keys().iter().find(|k| k.key_id().is_some_and(|id| id.as_str() == kid)).expect("kid in the JWKS");
    let jws_alg: CoreJwsSigningAlgorithm = serde_json::from_value(serde_json::json!(alg.as_str())).unwrap();
    let (signed, signature) = jwt.rsplit_once('.').unwrap();
    let signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
    key.verify_signature(&jws_alg, signed.as_bytes(), &signature).expect("signature verifies against the JWKS");
    // And a changed payload does not.
    let forged = format!("{}.{}", signed.split('.').next().unwrap(), URL_SAFE_NO_PAD.encode(b"{\"sub\":\"mallory\"}"));
    assert!(key.verify_signature(&jws_alg, forged.as_bytes(), &signature).is_err());
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(signed.split('.').nth(1).unwrap()).unwrap()).unwrap()
}

async fn introspect(provider: &Provider, token: &str) -> serde_json::Value {
    let response = reqwest::Client::new()
        .post(provider.app.url("/introspect"))
        .basic_auth(&provider.client_id, provider.client_secret.as_deref())
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[actix_web::test]
async fn every_algorithm_signs_access_and_id_tokens_that_verify_and_are_accepted() {
    for alg in SigningAlgorithm::ALL {
        let mut settings = client_settings(&format!("{alg} RP"));
        settings.access_token_signing_alg = alg;
        settings.id_token_signing_alg = alg;
        let provider = Provider::with_client(settings).await;

        // client_credentials: one access token, in the client's algorithm.
        let response = provider
            .app
            .token_request(
                &provider.client_id,
                provider.client_secret.as_deref(),
                &[("grant_type", "client_credentials")],
            )
            .await;
        assert_eq!(response.status(), 200, "{alg}");
        let body: serde_json::Value = response.json().await.unwrap();
        let at = body["access_token"].as_str().unwrap();
        let claims = verify_with_jwks(&provider, at, alg).await;
        assert_eq!(claims["client_id"], provider.client_id);
        assert_eq!(introspect(&provider, at).await["active"], true, "{alg} introspection");

        // Authorization code through the RP library: the ID token verifies
        // with openidconnect restricted to this algorithm.
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
        let jws_alg = alg.to_jws();
        let id_token = openidconnect::TokenResponse::id_token(&tokens).unwrap();
        assert_eq!(*id_token.signing_alg().unwrap(), jws_alg);
        let id_verifier = rp.id_token_verifier().set_allowed_algs(vec![jws_alg]);
        id_token.claims(&id_verifier, &nonce).unwrap_or_else(|e| panic!("{alg} ID token: {e}"));

        let at = openidconnect::OAuth2TokenResponse::access_token(&tokens).secret().clone();
        verify_with_jwks(&provider, &at, alg).await;
        let userinfo = reqwest::Client::new().get(provider.app.url("/userinfo")).bearer_auth(&at).send().await.unwrap();
        assert_eq!(userinfo.status(), 200, "{alg} userinfo");
        assert_eq!(introspect(&provider, &at).await["sub"], provider.account_id);

        // The ID token is accepted back as an id_token_hint (OIDC RP-Initiated
        // Logout §2): logout goes straight to the registered address.
        let logout = provider
            .app
            .get(&format!("/end-session?id_token_hint={}&post_logout_redirect_uri={}", id_token, urlencode(LOGOUT_URI)))
            .await;
        assert_eq!(logout.status(), 303, "{alg} id_token_hint");
        assert!(location(&logout).starts_with(LOGOUT_URI));
    }
}

#[actix_web::test]
async fn access_tokens_default_to_rs256() {
    let provider = Provider::new().await;
    let tokens = provider.tokens().await;
    assert_eq!(header(tokens["access_token"].as_str().unwrap())["alg"], "RS256");
    assert_eq!(header(tokens["id_token"].as_str().unwrap())["alg"], "RS256");
}

#[actix_web::test]
async fn discovery_lists_every_algorithm_and_the_jwks_every_key() {
    let provider = Provider::new().await;
    let metadata: CoreProviderMetadata = provider.metadata().await;
    let algs = metadata.id_token_signing_alg_values_supported();
    for alg in SigningAlgorithm::ALL {
        assert!(algs.contains(&alg.to_jws()), "{alg} in {algs:?}");
    }
    let jwks: serde_json::Value = provider.app.get("/jwks.json").await.json().await.unwrap();
    let mut published: Vec<(String, String)> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            assert_eq!(k["use"], "sig");
            (k["alg"].as_str().unwrap().to_owned(), k["kty"].as_str().unwrap().to_owned())
        })
        .collect();
    published.sort();
    let expected = [("ES256", "EC"), ("EdDSA", "OKP"), ("RS256", "RSA")].map(|(a, k)| (a.to_owned(), k.to_owned()));
    assert_eq!(published, expected);
}

#[actix_web::test]
async fn discovery_and_jwks_carry_a_strong_etag_and_answer_304() {
    let provider = Provider::new().await;
    for (path, max_age) in [("/.well-known/openid-configuration", 300), ("/jwks.json", 60)] {
        let first = provider.app.get(path).await;
        assert_eq!(first.status(), 200);
        let etag = first.headers()["etag"].to_str().unwrap().to_owned();
        assert!(etag.starts_with('"') && etag.ends_with('"') && etag.len() > 10, "strong ETag: {etag}");
        assert_eq!(first.headers()["cache-control"], format!("public, max-age={max_age}"));
        assert!(first.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
        let body = first.bytes().await.unwrap();
        serde_json::from_slice::<serde_json::Value>(&body).unwrap();

        let again = provider.app.get(path).await;
        assert_eq!(again.headers()["etag"].to_str().unwrap(), etag, "same bytes, same tag");
        assert_eq!(again.bytes().await.unwrap(), body);

        let client = reqwest::Client::new();
        for matching in [etag.clone(), format!("W/{etag}"), format!("\"other\", {etag}"), "*".to_owned()] {
            let cached = client.get(provider.app.url(path)).header("if-none-match", &matching).send().await.unwrap();
            assert_eq!(cached.status(), 304, "{path} If-None-Match: {matching}");
            assert_eq!(cached.headers()["etag"].to_str().unwrap(), etag);
            assert_eq!(cached.headers()["cache-control"], format!("public, max-age={max_age}"));
            assert!(cached.bytes().await.unwrap().is_empty());
        }
        let stale = client.get(provider.app.url(path)).header("if-none-match", "\"stale\"").send().await.unwrap();
        assert_eq!(stale.status(), 200);
        assert_eq!(stale.bytes().await.unwrap(), body);
    }
}

//! Property tests at the HTTP surface (issue 10): generated authorization
//! and token requests, half well-formed and half hostile, against the real
//! app. Whatever arrives, the answer is an RFC one: never a 5xx; at
//! `/authorize` an error page only while the client and redirect URI are
//! not verified (RFC 6749 §4.1.2.1) and an error redirect with a
//! registered code after; at `/token` RFC 6749 §5.2 JSON.
//!
//! The cases come from proptest strategies drawn by a deterministic runner
//! (the same cases every run; no shrinking, so a failure prints its input).

use std::collections::HashMap;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

use super::{CHALLENGE, Provider, REDIRECT_URI};

const CASES: usize = 128;

/// RFC 6749 §4.1.2.1, OIDC Core §3.1.2.6 and the request-object codes.
const AUTHORIZE_ERRORS: &[&str] = &[
    "invalid_request",
    "unauthorized_client",
    "access_denied",
    "unsupported_response_type",
    "invalid_scope",
    "server_error",
    "temporarily_unavailable",
    "interaction_required",
    "login_required",
    "account_selection_required",
    "consent_required",
    "invalid_request_uri",
    "invalid_request_object",
    "request_not_supported",
    "request_uri_not_supported",
    "registration_not_supported",
];

/// RFC 6749 §5.2.
const TOKEN_ERRORS: &[&str] = &[
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unauthorized_client",
    "unsupported_grant_type",
    "invalid_scope",
];

fn draw<S: Strategy>(runner: &mut TestRunner, strategy: &S) -> S::Value {
    strategy.new_tree(runner).unwrap().current()
}

/// A value from `good` most of the time, else junk, else the parameter is left out.
fn param(good: Vec<String>) -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        20 => proptest::sample::select(good).prop_map(Some),
        2 => "\\PC{0,40}".prop_map(Some),
        1 => "[ -~]{200,300}".prop_map(Some),
        2 => Just(None),
    ]
}

/// The right value nearly always (so that the checks after it are
/// reached), sometimes a wrong one, junk, or nothing.
fn mostly(right: String, wrong: Vec<String>) -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        16 => Just(Some(right)),
        2 => proptest::sample::select(wrong).prop_map(Some),
        1 => "\\PC{0,40}".prop_map(Some),
        1 => Just(None),
    ]
}

fn authorize_params(client_id: String) -> impl Strategy<Value = Vec<(String, String)>> {
    let s = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    (
        (
            mostly(client_id, s(&["nobody"])),
            mostly(REDIRECT_URI.into(), s(&["https://evil.example.com/cb", "https://rp.example.com/callback/x"])),
            param(s(&["code", "code", "code", "token", "code id_token", "none"])),
            param(s(&["openid", "openid profile email", "openid offline_access", "profile", "openid unknown"])),
            param(s(&["s-1", "a b&c=d", "状态"])),
            param(s(&["n-1"])),
        ),
        (
            proptest::option::weighted(
                0.3,
                proptest::sample::select(s(&[
                    "none",
                    "login",
                    "consent",
                    "login consent",
                    "none login",
                    "select_account",
                    "junk",
                ])),
            ),
            proptest::option::weighted(
                0.3,
                proptest::sample::select(s(&["0", "600", "-1", "99999999999999999999", "1.5"])),
            ),
            param(vec![CHALLENGE.to_owned(), CHALLENGE.to_owned(), "short".into(), "~".repeat(43)]),
            param(s(&["S256", "S256", "plain", "s256"])),
            param(s(&["query", "query", "query", "form_post", "fragment"])),
            proptest::option::weighted(
                0.15,
                proptest::sample::select(s(&["eyJhbGciOiJub25lIn0.e30.", "a.b.c", "not-a-jwt", "\u{0}"])),
            ),
            proptest::option::weighted(0.1, Just("eyJhbGciOiJub25lIn0.e30.".to_owned())),
            proptest::option::weighted(0.1, "x_[a-z_]{1,10}"),
        ),
    )
        .prop_map(
            |(
                (client_id, redirect_uri, response_type, scope, state, nonce),
                (prompt, max_age, challenge, method, mode, hint, request, junk_name),
            )| {
                let mut pairs = Vec::new();
                for (name, value) in [
                    ("client_id", client_id),
                    ("redirect_uri", redirect_uri),
                    ("response_type", response_type),
                    ("scope", scope),
                    ("state", state),
                    ("nonce", nonce),
                    ("prompt", prompt),
                    ("max_age", max_age),
                    ("code_challenge", challenge),
                    ("code_challenge_method", method),
                    ("response_mode", mode),
                    ("id_token_hint", hint),
                    ("request", request),
                ] {
                    if let Some(value) = value {
                        pairs.push((name.to_owned(), value));
                    }
                }
                if let Some(name) = junk_name {
                    pairs.push((name, "x".to_owned()));
                }
                pairs
            },
        )
}

#[actix_web::test]
async fn generated_authorization_requests_get_rfc_answers() {
    let provider = Provider::new().await;
    let strategy = authorize_params(provider.client_id.clone());
    let mut runner = TestRunner::deterministic();
    let mut tally: HashMap<String, usize> = HashMap::new();
    for _ in 0..CASES {
        let pairs = draw(&mut runner, &strategy);
        let query = serde_urlencoded::to_string(&pairs).unwrap();
        let response = provider.follow(&format!("{}/authorize?{query}", provider.app.address)).await;
        let status = response.status().as_u16();
        let location = super::location(&response);
        // RFC 6749 §3.1: a parameter without a value counts as not sent.
        let sent: HashMap<&str, &str> =
            pairs.iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let verified = sent.get("client_id") == Some(&provider.client_id.as_str())
            && sent.get("redirect_uri") == Some(&REDIRECT_URI)
            && pairs.iter().all(|(_, v)| v.len() <= 4096);
        assert!(status < 500, "{status} for {pairs:?}");
        let kind = if location.split('?').next() == Some(REDIRECT_URI) {
            // RFC 6749 §4.1.2 / §4.1.2.1: a code or a registered error, the state echoed.
            assert!(verified, "redirected to the client without verifying it: {pairs:?}");
            let back: HashMap<String, String> =
                url::Url::parse(&location).unwrap().query_pairs().into_owned().collect();
            match (back.get("code"), back.get("error")) {
                (Some(_), None) => {}
                (None, Some(error)) => {
                    assert!(AUTHORIZE_ERRORS.contains(&error.as_str()), "unregistered error {error} for {pairs:?}")
                }
                other => panic!("neither a code nor an error ({other:?}) for {pairs:?}"),
            }
            assert_eq!(back.get("state").map(String::as_str), sent.get("state").copied(), "{pairs:?}");
            back.get("error").cloned().unwrap_or_else(|| "code".into())
        } else if !location.is_empty() {
            // Only to wxfed's own pages (login again, consent), never elsewhere.
            assert!(
                location.starts_with('/') || location.starts_with(&provider.app.address),
                "redirected to {location} for {pairs:?}"
            );
            "own page".into()
        } else if status == 200 {
            // form_post (OAuth 2.0 Form Post Response Mode): only to a verified client.
            assert!(verified, "a 200 before the client was verified: {pairs:?}");
            assert_eq!(sent.get("response_mode"), Some(&"form_post"), "a 200 that is no form_post: {pairs:?}");
            "form_post".into()
        } else {
            // An error page: only while the client or its redirect URI is unverified.
            assert!(status == 400 || status == 403 || status == 404, "{status} for {pairs:?}");
            assert!(!verified, "an error page although the client was verified ({status}): {pairs:?}");
            format!("page {status}")
        };
        *tally.entry(kind).or_default() += 1;
    }
    // The cases reached every kind of answer, so the assertions meant something.
    eprintln!("authorize answers: {tally:?}");
    assert!(tally.contains_key("code") || tally.contains_key("form_post"), "{tally:?}");
    assert!(tally.keys().any(|k| k.starts_with("page")), "{tally:?}");
    assert!(tally.keys().any(|k| AUTHORIZE_ERRORS.contains(&k.as_str())), "{tally:?}");
}

#[actix_web::test]
async fn generated_token_requests_get_rfc_answers() {
    let provider = Provider::new().await;
    let secret = provider.client_secret.clone().unwrap();
    let s = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let form = (
        param(s(&["authorization_code", "refresh_token", "client_credentials", "password", "urn:x"])),
        param(s(&["a-code", ""])),
        param(s(&[REDIRECT_URI, "https://evil.example.com/cb"])),
        param(s(&[super::VERIFIER, "short"])),
        param(s(&["a-refresh-token"])),
        param(s(&["openid", "api", "openid offline_access"])),
    );
    // How the client authenticates: Basic right or wrong or malformed, in
    // the body, both, or not at all.
    let auth = prop_oneof![
        Just("basic"),
        Just("basic-wrong"),
        Just("basic-junk"),
        Just("post"),
        Just("both"),
        Just("id-only"),
        Just("none")
    ];
    let junk_header = "[ -~]{0,60}";
    let mut runner = TestRunner::deterministic();
    let mut tally: HashMap<String, usize> = HashMap::new();
    for _ in 0..CASES {
        let (grant_type, code, redirect_uri, verifier, refresh_token, scope) = draw(&mut runner, &form);
        let auth = draw(&mut runner, &auth);
        let mut pairs: Vec<(&str, String)> = [
            ("grant_type", grant_type),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
            ("refresh_token", refresh_token),
            ("scope", scope),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();
        let mut request = reqwest::Client::new().post(provider.app.url("/token"));
        match auth {
            "basic" => request = request.basic_auth(&provider.client_id, Some(&secret)),
            "basic-wrong" => request = request.basic_auth(&provider.client_id, Some("wrong")),
            "basic-junk" => {
                request = request.header("authorization", format!("Basic {}", draw(&mut runner, &junk_header)))
            }
            "post" => {
                pairs.push(("client_id", provider.client_id.clone()));
                pairs.push(("client_secret", secret.clone()));
            }
            "both" => {
                request = request.basic_auth(&provider.client_id, Some(&secret));
                pairs.push(("client_secret", secret.clone()));
            }
            "id-only" => pairs.push(("client_id", provider.client_id.clone())),
            _ => {}
        }
        let response = request.form(&pairs).send().await.unwrap();
        let status = response.status().as_u16();
        let no_store = response.headers().get("cache-control").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let body: serde_json::Value =
            response.json().await.unwrap_or_else(|e| panic!("{status} not JSON ({e}) for {auth} {pairs:?}"));
        assert_eq!(no_store.as_deref(), Some("no-store"), "RFC 6749 §5.1/§5.2 for {auth} {pairs:?}");
        let sent = |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str());
        let kind = match status {
            200 => {
                // Nothing here is a valid code or refresh token: only client_credentials can succeed.
                assert_eq!(sent("grant_type"), Some("client_credentials"), "{body} for {auth} {pairs:?}");
                assert!(matches!(auth, "basic" | "post"), "{body} for {auth} {pairs:?}");
                assert_eq!(body["token_type"], "Bearer");
                assert!(body["access_token"].is_string());
                "200".to_owned()
            }
            400 | 401 => {
                let error = body["error"].as_str().unwrap_or_else(|| panic!("no error in {body}"));
                assert!(TOKEN_ERRORS.contains(&error), "unregistered error {error} for {auth} {pairs:?}");
                // RFC 6749 §5.2: invalid_client is 401 (with a challenge when Basic was used).
                assert_eq!(status == 401, error == "invalid_client", "{status} {error} for {auth} {pairs:?}");
                error.to_owned()
            }
            other => panic!("{other} {body} for {auth} {pairs:?}"),
        };
        *tally.entry(kind).or_default() += 1;
    }
    eprintln!("token answers: {tally:?}");
    assert!(tally.contains_key("200") && tally.contains_key("invalid_client"), "{tally:?}");
    assert!(tally.contains_key("invalid_grant") || tally.contains_key("invalid_request"), "{tally:?}");
}

//! The OpenID Provider, checked with the `openidconnect` crate as the
//! relying party wherever a real client library would be used.

mod algorithms;
mod authorize;
mod backchannel;
mod clients_cli;
mod consent;
mod end_session;
mod flow;
mod hostile;
mod keys;
mod round_trips;
mod token;
mod userinfo_introspect;

use openidconnect::core::{CoreClient, CoreProviderMetadata};
use openidconnect::{
    ClientId, ClientSecret, EndpointMaybeSet, EndpointNotSet, EndpointSet, HttpRequest, HttpResponse, IssuerUrl,
    RedirectUrl,
};
use wxfed::oidc::clients::{GrantType, NewClient};
use wxfed::oidc::signing::SigningAlgorithm;

use crate::helpers::{TestApp, TestDb, spawn_app};

pub const PASSWORD: &str = "correct horse battery";
pub const REDIRECT_URI: &str = "https://rp.example.com/callback";
pub const LOGOUT_URI: &str = "https://rp.example.com/logged-out";

/// The HTTP client the relying-party library uses: reqwest, no redirects.
pub async fn rp_http(request: HttpRequest) -> Result<HttpResponse, reqwest::Error> {
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
    let (parts, body) = request.into_parts();
    let mut builder = client.request(parts.method, parts.uri.to_string()).body(body);
    for (name, value) in &parts.headers {
        builder = builder.header(name, value);
    }
    let response = builder.send().await?;
    let mut out = openidconnect::http::Response::builder().status(response.status());
    for (name, value) in response.headers() {
        out = out.header(name, value);
    }
    Ok(out.body(response.bytes().await?.to_vec()).unwrap())
}

pub type Rp =
    CoreClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointMaybeSet, EndpointMaybeSet>;

/// A provider with a logged-in browser and a registered client.
pub struct Provider {
    pub app: TestApp,
    /// Shared, so that a test's other fixtures can hold it too.
    pub db: std::rc::Rc<TestDb>,
    pub client_id: String,
    pub client_secret: Option<String>,
    pub account_id: String,
}

pub fn client_settings(name: &str) -> NewClient {
    NewClient {
        name: name.into(),
        redirect_uris: vec![REDIRECT_URI.into()],
        post_logout_redirect_uris: vec![LOGOUT_URI.into()],
        public: false,
        first_party: true,
        grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken, GrantType::ClientCredentials],
        scopes: vec![],
        id_token_signing_alg: SigningAlgorithm::Rs256,
        always_issue_refresh_token: false,
        wechat_app: None,
        host_app: false,
        trust_host: None,
        access_token_signing_alg: SigningAlgorithm::Rs256,
        host_for: vec![],
        backchannel_logout_uri: None,
        backchannel_logout_session_required: false,
    }
}

impl Provider {
    /// A provider with account `alice` (logged in) and a confidential,
    /// first-party client.
    pub async fn new() -> Self {
        Self::with_client(client_settings("Example RP")).await
    }

    pub async fn with_client(client: NewClient) -> Self {
        let (app, db) = spawn_app().await;
        Self::on(app, db, client).await
    }

    pub async fn on(app: TestApp, db: impl Into<std::rc::Rc<TestDb>>, client: NewClient) -> Self {
        let db = db.into();
        let account = app.add_user("alice", PASSWORD).await;
        let (client_id, client_secret) = app.register_client(client).await;
        assert_eq!(app.login("alice", PASSWORD).await.status(), 303);
        Self { app, db, client_id, client_secret, account_id: account.id.as_str().to_owned() }
    }

    pub async fn metadata(&self) -> CoreProviderMetadata {
        CoreProviderMetadata::discover_async(IssuerUrl::new(self.app.address.clone()).unwrap(), &rp_http).await.unwrap()
    }

    /// The relying-party library, configured from discovery.
    pub async fn rp(&self) -> Rp {
        CoreClient::from_provider_metadata(
            self.metadata().await,
            ClientId::new(self.client_id.clone()),
            self.client_secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(RedirectUrl::new(REDIRECT_URI.into()).unwrap())
    }

    /// Opens `url` in the logged-in browser and returns where it was sent.
    pub async fn follow(&self, url: &str) -> reqwest::Response {
        self.app.client.get(url).send().await.unwrap()
    }
}

/// The query parameters of a redirect's Location.
pub fn redirect_params(response: &reqwest::Response) -> std::collections::HashMap<String, String> {
    let location = response.headers().get("location").unwrap_or_else(|| panic!("no redirect: {}", response.status()));
    let url = url::Url::parse(location.to_str().unwrap()).unwrap();
    url.query_pairs().into_owned().collect()
}

pub fn location(response: &reqwest::Response) -> String {
    response.headers().get("location").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default()
}

impl TestApp {
    pub async fn register_client(&self, client: NewClient) -> (String, Option<String>) {
        let state = self.state.clone();
        actix_web::web::block(move || {
            let mut conn = state.db.get().unwrap();
            let actor = wxfed::accounts::manage::Actor("test".into());
            let (client, secret) = wxfed::oidc::clients::register(&mut conn, &state.secrets, &actor, &client).unwrap();
            (client.client_id, secret)
        })
        .await
        .unwrap()
    }

    /// POSTs a form to the token endpoint with HTTP Basic client auth.
    pub async fn token_request(
        &self,
        client_id: &str,
        secret: Option<&str>,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut form = form.to_vec();
        if secret.is_none() {
            // A public client names itself in the body.
            form.push(("client_id", client_id));
        }
        let mut request = reqwest::Client::new().post(self.url("/token")).form(&form);
        if let Some(secret) = secret {
            request = request.basic_auth(client_id, Some(secret));
        }
        request.send().await.unwrap()
    }
}

/// RFC 7636 Appendix B.
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

impl Provider {
    /// An authorization URL: sane defaults, then `overrides` (an empty
    /// value removes the parameter).
    pub fn authorize_url(&self, overrides: &[(&str, &str)]) -> String {
        let mut params: Vec<(String, String)> = [
            ("response_type", "code"),
            ("client_id", self.client_id.as_str()),
            ("redirect_uri", REDIRECT_URI),
            ("scope", "openid profile offline_access"),
            ("state", "s-123"),
            ("nonce", "n-456"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (name, value) in overrides {
            params.retain(|(k, _)| k != name);
            if !value.is_empty() {
                params.push((name.to_string(), value.to_string()));
            }
        }
        format!("{}/authorize?{}", self.app.address, serde_urlencoded::to_string(&params).unwrap())
    }

    /// Runs a default authorization and returns the code.
    pub async fn code(&self) -> String {
        let response = self.follow(&self.authorize_url(&[])).await;
        let params = redirect_params(&response);
        params.get("code").unwrap_or_else(|| panic!("no code: {params:?}")).clone()
    }

    /// Redeems `code` with the default redirect URI and verifier.
    pub async fn redeem(&self, code: &str) -> reqwest::Response {
        self.app
            .token_request(
                &self.client_id,
                self.client_secret.as_deref(),
                &[
                    ("grant_type", "authorization_code"),
                    ("code", code),
                    ("redirect_uri", REDIRECT_URI),
                    ("code_verifier", VERIFIER),
                ],
            )
            .await
    }

    /// A full set of tokens from a fresh authorization.
    pub async fn tokens(&self) -> serde_json::Value {
        let response = self.redeem(&self.code().await).await;
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }
}

/// The `error` of an RFC 6749 JSON error response, checking the status.
pub async fn oauth_error(response: reqwest::Response, status: u16) -> String {
    assert_eq!(response.status(), status);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: serde_json::Value = response.json().await.unwrap();
    body["error"].as_str().unwrap().to_owned()
}

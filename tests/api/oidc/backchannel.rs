//! OpenID Connect Back-Channel Logout 1.0 (issue 12 §4): a relying party
//! inside the test receives the logout tokens on its own port and checks
//! them with the `jsonwebtoken` crate against wxfed's published JWKS, as
//! a real RP would.

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpResponse, HttpServer, web};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation, decode, decode_header};
use serde_json::Value;

use super::flow::urlencode;
use super::{CHALLENGE, PASSWORD, Provider, REDIRECT_URI, VERIFIER, client_settings, redirect_params};
use crate::helpers::{TestApp, new_client, spawn_app_on};

const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// What the receiving RP was sent, per path.
#[derive(Clone, Default)]
struct Received(Arc<Mutex<HashMap<String, Vec<String>>>>);

impl Received {
    fn tokens(&self, path: &str) -> Vec<String> {
        self.0.lock().unwrap().get(path).cloned().unwrap_or_default()
    }
}

/// The receiving RP: `/ok/{name}` answers 200, `/flaky/{name}` 500 the
/// first time and 200 after, `/hang/{name}` never in time.
struct Receiver {
    base: String,
    received: Received,
}

async fn receive(
    path: web::Path<(String, String)>,
    form: web::Form<HashMap<String, String>>,
    received: web::Data<Received>,
) -> HttpResponse {
    let (mode, name) = path.into_inner();
    let key = format!("{mode}/{name}");
    let count = {
        let mut map = received.0.lock().unwrap();
        let list = map.entry(key).or_default();
        list.push(form.get("logout_token").cloned().unwrap_or_default());
        list.len()
    };
    match mode.as_str() {
        "flaky" if count == 1 => HttpResponse::InternalServerError().finish(),
        "hang" => {
            actix_web::rt::time::sleep(Duration::from_secs(30)).await;
            HttpResponse::Ok().finish()
        }
        // §2.8: no-cache, 200.
        _ => HttpResponse::Ok().insert_header(("cache-control", "no-store")).finish(),
    }
}

impl Receiver {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = Received::default();
        let data = web::Data::new(received.clone());
        let server =
            HttpServer::new(move || App::new().app_data(data.clone()).route("/{mode}/{name}", web::post().to(receive)))
                .workers(1)
                .disable_signals()
                .listen(listener)
                .unwrap()
                .run();
        actix_web::rt::spawn(server);
        Self { base: format!("http://127.0.0.1:{port}"), received }
    }

    fn uri(&self, path: &str) -> String {
        format!("{}/{path}", self.base)
    }
}

/// A client that receives back-channel logouts at `uri`.
fn logout_client(name: &str, uri: String) -> wxfed::oidc::clients::NewClient {
    wxfed::oidc::clients::NewClient {
        backchannel_logout_uri: Some(uri),
        backchannel_logout_session_required: true,
        ..client_settings(name)
    }
}

/// Authorizes `client_id` in `browser`'s session and redeems the code.
async fn tokens_for(browser: &TestApp, client_id: &str, secret: &str) -> Value {
    let code = code_for(browser, client_id).await;
    let response = browser
        .token_request(
            client_id,
            Some(secret),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT_URI),
                ("code_verifier", VERIFIER),
            ],
        )
        .await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn code_for(browser: &TestApp, client_id: &str) -> String {
    let url = format!(
        "{}/authorize?response_type=code&client_id={client_id}&redirect_uri={}&scope=openid%20offline_access\
         &state=s&nonce=n-1&code_challenge={CHALLENGE}&code_challenge_method=S256",
        browser.address,
        urlencode(REDIRECT_URI)
    );
    let response = browser.client.get(url).send().await.unwrap();
    redirect_params(&response)["code"].clone()
}

/// The claims of a JWT, unverified (to compare with a logout token).
fn claims_of(jwt: &str) -> Value {
    use base64::Engine;
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// Verifies a logout token as an RP does (Back-Channel Logout 1.0 §2.6),
/// with `jsonwebtoken` and the JWKS fetched from wxfed; returns its claims.
async fn verify_logout_token(app: &TestApp, token: &str, client_id: &str) -> Value {
    let jwks: JwkSet = reqwest::get(app.url("/jwks.json")).await.unwrap().json().await.unwrap();
    let header = decode_header(token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("logout+jwt"), "§2.4 explicit typing");
    let kid = header.kid.clone().expect("a kid");
    let jwk = jwks.find(&kid).expect("the signing key is published");
    let key = DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = Validation::new(header.alg);
    validation.set_audience(&[client_id]);
    validation.set_issuer(&[app.address.as_str()]);
    validation.set_required_spec_claims(&["iss", "aud", "iat", "exp", "sub"]);
    let claims = decode::<Value>(token, &key, &validation).expect("a valid logout token").claims;
    assert!(claims["events"][EVENT].is_object(), "§2.4 events: {claims}");
    assert!(claims["jti"].as_str().is_some_and(|j| !j.is_empty()), "jti");
    assert!(claims.get("nonce").is_none(), "§2.4: a logout token has no nonce");
    assert!(claims["iat"].is_i64());
    claims
}

/// Waits (at most 30 s) until the audit trail has `n` events `action`.
async fn audit_events(app: &TestApp, action: &str, n: usize) -> Vec<wxfed::db::audit::AuditRow> {
    for _ in 0..300 {
        let rows: Vec<_> = app.audit_rows().await.into_iter().filter(|r| r.action == action).collect();
        if rows.len() >= n {
            return rows;
        }
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("fewer than {n} `{action}` events");
}

fn detail(row: &wxfed::db::audit::AuditRow) -> Value {
    serde_json::from_str(&row.detail).unwrap()
}

async fn pending(app: &TestApp) -> i64 {
    let state = app.state.clone();
    actix_web::web::block(move || wxfed::db::backchannel::pending_count(&mut state.db.get().unwrap()).unwrap())
        .await
        .unwrap()
}

/// A second browser on the same provider.
fn browser(app: &TestApp) -> TestApp {
    TestApp { client: new_client(), ..app.clone() }
}

#[actix_web::test]
async fn discovery_advertises_back_channel_logout() {
    let provider = Provider::new().await;
    let doc: Value = provider.app.get("/.well-known/openid-configuration").await.json().await.unwrap();
    assert_eq!(doc["backchannel_logout_supported"], true);
    assert_eq!(doc["backchannel_logout_session_supported"], true);
}

#[actix_web::test]
async fn rp_initiated_logout_tells_each_client_with_tokens_from_the_session_and_no_other() {
    let rp = Receiver::start();
    let provider = Provider::with_client(logout_client("A", rp.uri("ok/a"))).await;
    let app = &provider.app;
    let (b_id, b_secret) = app.register_client(logout_client("B", rp.uri("ok/b"))).await;
    let (c_id, _) = app.register_client(logout_client("C", rp.uri("ok/c"))).await;
    let (d_id, d_secret) = app.register_client(logout_client("D", rp.uri("ok/d"))).await;

    // A and B hold tokens from this session; C only got a code.
    let a_tokens = provider.tokens().await;
    let b_tokens = tokens_for(app, &b_id, b_secret.as_deref().unwrap()).await;
    code_for(app, &c_id).await;
    // D holds tokens from another session of the same person.
    let other = browser(app);
    assert_eq!(other.login("alice", PASSWORD).await.status(), 303);
    let d_tokens = tokens_for(&other, &d_id, d_secret.as_deref().unwrap()).await;

    let a_id_token = a_tokens["id_token"].as_str().unwrap();
    let sid = claims_of(a_id_token)["sid"].as_str().unwrap().to_owned();
    assert_eq!(claims_of(b_tokens["id_token"].as_str().unwrap())["sid"], sid.as_str(), "one sid per session");
    assert_ne!(claims_of(d_tokens["id_token"].as_str().unwrap())["sid"], sid.as_str());

    // RP-initiated logout by A.
    let logout = app.get(&format!("/end-session?id_token_hint={a_id_token}")).await;
    assert_eq!(logout.status(), 200);
    assert_eq!(app.get("/").await.status(), 303, "logged out");

    let delivered = audit_events(app, "oidc.backchannel_logout_delivered", 2).await;
    let mut clients: Vec<_> = delivered.iter().map(|r| r.client_id.clone().unwrap()).collect();
    clients.sort();
    let mut expected = vec![provider.client_id.clone(), b_id.clone()];
    expected.sort();
    assert_eq!(clients, expected);
    for row in &delivered {
        assert_eq!(row.category, "oidc");
        assert_eq!(row.outcome, "success");
        assert_eq!(row.account_id.as_deref(), Some(provider.account_id.as_str()));
        assert_eq!(detail(row)["cause"], "end_session");
        assert_eq!(detail(row)["sid"], sid.as_str());
    }

    for (path, client_id, id_token) in
        [("ok/a", &provider.client_id, a_id_token), ("ok/b", &b_id, b_tokens["id_token"].as_str().unwrap())]
    {
        let tokens = rp.received.tokens(path);
        assert_eq!(tokens.len(), 1, "{path} told once");
        let claims = verify_logout_token(app, &tokens[0], client_id).await;
        let id_claims = claims_of(id_token);
        assert_eq!(claims["sid"], id_claims["sid"], "sid matches the ID token's");
        assert_eq!(claims["sub"], id_claims["sub"], "sub matches the ID token's");
        assert_eq!(claims["aud"], client_id.as_str());
    }
    assert!(rp.received.tokens("ok/c").is_empty(), "a client with only a code holds no tokens");
    assert!(rp.received.tokens("ok/d").is_empty(), "another session's client is not told");
    assert_eq!(pending(app).await, 0, "delivered rows are purged");

    // The other session is still alive, and its own logout reaches D.
    assert_eq!(other.get("/").await.status(), 200);
    let page = other.get("/logout").await.text().await.unwrap();
    let out = other.post_form("/logout", &[("csrf_token", &crate::helpers::extract_csrf(&page))]).await;
    assert_eq!(out.status(), 200);
    let delivered = audit_events(app, "oidc.backchannel_logout_delivered", 3).await;
    assert!(delivered.iter().any(|r| r.client_id.as_deref() == Some(d_id.as_str()) && detail(r)["cause"] == "logout"));
    let tokens = rp.received.tokens("ok/d");
    assert_eq!(tokens.len(), 1);
    let claims = verify_logout_token(app, &tokens[0], &d_id).await;
    assert_eq!(claims["sid"], claims_of(d_tokens["id_token"].as_str().unwrap())["sid"]);
}

#[actix_web::test]
async fn ending_every_session_of_an_account_tells_the_clients_of_each() {
    let rp = Receiver::start();
    let provider = Provider::with_client(logout_client("A", rp.uri("ok/a"))).await;
    let app = &provider.app;
    let secret = provider.client_secret.clone().unwrap();
    let username = "alice".to_owned();
    let actor = wxfed::accounts::manage::Actor("test".into());

    // Each way an account's sessions all end, one after the other.
    let causes = ["signed_out_everywhere", "admin_revoked", "password_set", "disabled"];
    for (i, cause) in causes.iter().enumerate() {
        let browser = browser(app);
        assert_eq!(browser.login("alice", PASSWORD).await.status(), 303, "{cause}");
        let tokens = tokens_for(&browser, &provider.client_id, &secret).await;
        let sid = claims_of(tokens["id_token"].as_str().unwrap())["sid"].clone();

        let (state, username, actor, cause_name, account_id) =
            (app.state.clone(), username.clone(), actor.clone(), cause.to_string(), provider.account_id.clone());
        actix_web::web::block(move || {
            let mut conn = state.db.get().unwrap();
            let (conn, secrets) = (&mut conn, &state.secrets);
            use wxfed::accounts::manage;
            match cause_name.as_str() {
                "signed_out_everywhere" => drop(manage::sign_out_everywhere(conn, secrets, &actor, &username).unwrap()),
                // The console's "end all sessions".
                "admin_revoked" => drop(manage::revoke_sessions(conn, secrets, &actor, &account_id, None).unwrap()),
                "password_set" => {
                    let hash = wxfed::accounts::password::hash_blocking(PASSWORD).unwrap();
                    drop(manage::set_password(conn, secrets, &actor, &username, &hash).unwrap());
                }
                _ => {
                    use wxfed::accounts::AccountStatus::{Active, Disabled};
                    manage::set_status(conn, secrets, &actor, &username, Disabled).unwrap();
                    manage::set_status(conn, secrets, &actor, &username, Active).unwrap();
                }
            }
        })
        .await
        .unwrap();
        assert_eq!(browser.get("/").await.status(), 303, "{cause}: the session ended");

        // (The Provider's own first login held no tokens: nobody to tell.)
        let expected = i + 1;
        let delivered = audit_events(app, "oidc.backchannel_logout_delivered", expected).await;
        let ours: Vec<_> = delivered.iter().filter(|r| detail(r)["sid"] == sid).collect();
        assert_eq!(ours.len(), 1, "{cause}: the session's client told once");
        assert_eq!(detail(ours[0])["cause"], *cause);
        let token = rp
            .received
            .tokens("ok/a")
            .into_iter()
            .find(|t| claims_of(t)["sid"] == sid)
            .unwrap_or_else(|| panic!("{cause}: no logout token for the session"));
        let claims = verify_logout_token(app, &token, &provider.client_id).await;
        assert_eq!(claims["sub"], provider.account_id.as_str());
    }
}

#[actix_web::test]
async fn a_failing_receiver_is_retried_until_it_takes_the_token() {
    let rp = Receiver::start();
    let db = crate::helpers::TestDb::new();
    let app = spawn_app_on(&db, |s| s.backchannel_logout.retry_delays_secs = vec![1, 1]).await;
    let provider = Provider::on(app, db, logout_client("Flaky", rp.uri("flaky/a"))).await;
    let tokens = provider.tokens().await;
    let hint = tokens["id_token"].as_str().unwrap();
    assert_eq!(provider.app.get(&format!("/end-session?id_token_hint={hint}")).await.status(), 200);

    let delivered = audit_events(&provider.app, "oidc.backchannel_logout_delivered", 1).await;
    assert_eq!(detail(&delivered[0])["attempts"], 2, "a 500, then the retry");
    let received = rp.received.tokens("flaky/a");
    assert_eq!(received.len(), 2);
    let (first, second) = (
        verify_logout_token(&provider.app, &received[0], &provider.client_id).await,
        verify_logout_token(&provider.app, &received[1], &provider.client_id).await,
    );
    assert_eq!(first["sid"], second["sid"]);
    assert_ne!(first["jti"], second["jti"], "each attempt is a new token");
    assert_eq!(detail(&delivered[0])["jti"], second["jti"]);
    let failed: Vec<_> =
        provider.app.audit_rows().await.into_iter().filter(|r| r.action == "oidc.backchannel_logout_failed").collect();
    assert!(failed.is_empty(), "a retried failure is not a final one");
    assert_eq!(pending(&provider.app).await, 0);
}

#[actix_web::test]
async fn a_receiver_that_never_answers_is_timed_out_and_given_up_on() {
    let rp = Receiver::start();
    let db = crate::helpers::TestDb::new();
    let app = spawn_app_on(&db, |s| {
        s.backchannel_logout.timeout_ms = 300;
        s.backchannel_logout.retry_delays_secs = vec![0, 0];
    })
    .await;
    let provider = Provider::on(app, db, logout_client("Silent", rp.uri("hang/a"))).await;
    provider.tokens().await;
    let page = provider.app.get("/logout").await.text().await.unwrap();
    let out = provider.app.post_form("/logout", &[("csrf_token", &crate::helpers::extract_csrf(&page))]).await;
    assert_eq!(out.status(), 200, "the logout does not wait for the receiver");

    let failed = audit_events(&provider.app, "oidc.backchannel_logout_failed", 1).await;
    let row = &failed[0];
    assert_eq!(row.outcome, "failure");
    assert_eq!(row.reason.as_deref(), Some("timeout"));
    assert_eq!(row.client_id.as_deref(), Some(provider.client_id.as_str()));
    assert_eq!(detail(row)["attempts"], 3, "the first attempt and two retries");
    assert_eq!(rp.received.tokens("hang/a").len(), 3);
    assert_eq!(pending(&provider.app).await, 0, "given up on, the row is gone");
    let delivered: Vec<_> = provider
        .app
        .audit_rows()
        .await
        .into_iter()
        .filter(|r| r.action == "oidc.backchannel_logout_delivered")
        .collect();
    assert!(delivered.is_empty());
}

#[actix_web::test]
async fn registration_checks_the_logout_uri() {
    let provider = Provider::new().await;
    let state = provider.app.state.clone();
    actix_web::web::block(move || {
        let mut conn = state.db.get().unwrap();
        let actor = wxfed::accounts::manage::Actor("test".into());
        let register = |conn: &mut wxfed::db::DbConn, uri: Option<&str>, required: bool| {
            let new = wxfed::oidc::clients::NewClient {
                backchannel_logout_uri: uri.map(str::to_owned),
                backchannel_logout_session_required: required,
                ..client_settings("X")
            };
            wxfed::oidc::clients::register(conn, &state.secrets, &actor, &new).map(|(c, _)| c)
        };
        for bad in ["http://rp.example.com/bcl", "https://rp.example.com/bcl#f", "/bcl", "com.example:/bcl"] {
            assert!(register(&mut conn, Some(bad), false).is_err(), "{bad}");
        }
        assert!(register(&mut conn, None, true).is_err(), "sid required without a URI");
        let client = register(&mut conn, Some("https://rp.example.com/bcl?x=1"), true).unwrap();
        assert_eq!(client.backchannel_logout_uri.as_deref(), Some("https://rp.example.com/bcl?x=1"));
        assert!(client.backchannel_logout_session_required);
        // Removing the URI drops the requirement with it.
        let change = wxfed::oidc::clients::ClientUpdate { backchannel_logout_uri: Some(None), ..Default::default() };
        let updated =
            wxfed::oidc::clients::update(&mut conn, &state.secrets, &actor, &client.client_id, &change).unwrap();
        assert_eq!(updated.backchannel_logout_uri, None);
        assert!(!updated.backchannel_logout_session_required);
    })
    .await
    .unwrap();
}

#[actix_web::test]
async fn two_instances_on_one_database_deliver_each_logout_once() {
    let rp = Receiver::start();
    let db = std::rc::Rc::new(crate::helpers::TestDb::new());
    let first = spawn_app_on(&db, |_| {}).await;
    // A second instance, whose delivery task competes for the same rows.
    let _second = spawn_app_on(&db, |_| {}).await;
    let provider = Provider::on(first, db.clone(), logout_client("A", rp.uri("ok/a"))).await;
    let secret = provider.client_secret.clone().unwrap();
    let mut sids = Vec::new();
    for _ in 0..4 {
        let browser = browser(&provider.app);
        assert_eq!(browser.login("alice", PASSWORD).await.status(), 303);
        let tokens = tokens_for(&browser, &provider.client_id, &secret).await;
        sids.push(claims_of(tokens["id_token"].as_str().unwrap())["sid"].clone());
        let page = browser.get("/logout").await.text().await.unwrap();
        let out = browser.post_form("/logout", &[("csrf_token", &crate::helpers::extract_csrf(&page))]).await;
        assert_eq!(out.status(), 200);
    }
    audit_events(&provider.app, "oidc.backchannel_logout_delivered", 4).await;
    // Give a duplicate every chance to show up.
    actix_web::rt::time::sleep(Duration::from_secs(3)).await;
    let delivered = audit_events(&provider.app, "oidc.backchannel_logout_delivered", 4).await;
    assert_eq!(delivered.len(), 4, "one outcome per logout");
    let mut received: Vec<Value> = rp.received.tokens("ok/a").iter().map(|t| claims_of(t)["sid"].clone()).collect();
    assert_eq!(received.len(), 4, "each logout sent once");
    received.sort_by_key(|v| v.to_string());
    sids.sort_by_key(|v| v.to_string());
    assert_eq!(received, sids);
}

//! Issue 11 §2: the token path costs no more database round trips than
//! its semantics need. Every `request finished` log line carries the
//! request's `db_statements`; this test drives each grant through a real
//! `wxfed serve` and holds each path to its budget, so a change that adds
//! a query to a hot path fails here (and says what it costs now).
//!
//! Budgets (statements, each one round trip; BEGIN and COMMIT count):
//! see the table in the README ("Database round trips per request").

use std::collections::BTreeMap;

use super::{Provider, client_settings};
use crate::helpers::{ServerProcess, TestApp, TestDb, new_client, spawn_app_on};

/// Each path is measured this many times (the first with cold caches).
const ROUNDS: usize = 3;

/// The most statements each request may send: (path, SQLite, PostgreSQL).
/// client_credentials writes one row, which on PostgreSQL needs no
/// BEGIN/COMMIT around it.
const BUDGETS: &[(&str, u64, u64)] = &[
    ("discovery", 0, 0),
    ("jwks", 0, 0),
    ("client_credentials", 4, 2),
    ("authorize", 9, 9),
    ("authorization_code", 11, 11),
    ("refresh_token", 12, 12),
    ("introspection", 2, 2),
    ("userinfo", 4, 4),
];

#[actix_web::test]
async fn each_grant_stays_within_its_database_round_trip_budget() {
    let db = TestDb::new();
    let provider_is_postgres = db.is_postgres();
    // The in-process instance gives the library handle (accounts, clients);
    // the requests go to the binary, whose logs are read.
    let library = spawn_app_on(&db, |_| {}).await;
    let mut env = db.cli_env();
    env.push(("WXFED_LOG_FORMAT".into(), "json".into()));
    env.push(("WXFED_LOG_LEVEL".into(), "info".into()));
    let server = ServerProcess::start(&env).await;
    let app = TestApp { address: server.address.clone(), client: new_client(), state: library.state.clone() };
    let provider = Provider::on(app, db, client_settings("Round trips")).await;
    let (id, secret) = (provider.client_id.clone(), provider.client_secret.clone().unwrap());

    for round in 0..ROUNDS {
        // Warm caches (prepared statements, the client cache) count too:
        // the budget holds from the first request on.
        let tag = |name: &str| format!("{name}-{round}");
        let get = |path: &str, tag: String| {
            let request = provider.app.client.get(provider.app.url(path)).header("x-request-id", tag);
            async move { request.send().await.unwrap() }
        };
        assert_eq!(get("/.well-known/openid-configuration", tag("discovery")).await.status(), 200);
        assert_eq!(get("/jwks.json", tag("jwks")).await.status(), 200);

        let cc = reqwest::Client::new()
            .post(provider.app.url("/token"))
            .header("x-request-id", tag("client_credentials"))
            .basic_auth(&id, Some(&secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        assert_eq!(cc.status(), 200);
        let access_token = cc.json::<serde_json::Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned();

        let authorize = provider
            .app
            .client
            .get(provider.authorize_url(&[]))
            .header("x-request-id", tag("authorize"))
            .send()
            .await
            .unwrap();
        let code = super::redirect_params(&authorize)["code"].clone();
        let token = |grant: &str, form: Vec<(&'static str, String)>| {
            let request = reqwest::Client::new()
                .post(provider.app.url("/token"))
                .header("x-request-id", tag(grant))
                .basic_auth(&id, Some(&secret))
                .form(&form);
            async move { request.send().await.unwrap() }
        };
        let tokens = token(
            "authorization_code",
            vec![
                ("grant_type", "authorization_code".into()),
                ("code", code),
                ("redirect_uri", super::REDIRECT_URI.into()),
                ("code_verifier", super::VERIFIER.into()),
            ],
        )
        .await;
        assert_eq!(tokens.status(), 200);
        let tokens: serde_json::Value = tokens.json().await.unwrap();
        let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
        let refreshed =
            token("refresh_token", vec![("grant_type", "refresh_token".into()), ("refresh_token", refresh)]).await;
        assert_eq!(refreshed.status(), 200);

        let introspect = reqwest::Client::new()
            .post(provider.app.url("/introspect"))
            .header("x-request-id", tag("introspection"))
            .basic_auth(&id, Some(&secret))
            .form(&[("token", access_token.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(introspect.status(), 200);
        let userinfo = reqwest::Client::new()
            .get(provider.app.url("/userinfo"))
            .header("x-request-id", tag("userinfo"))
            .bearer_auth(tokens["access_token"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(userinfo.status(), 200);
    }

    let output = server.finish();
    let logs = String::from_utf8_lossy(&output.stdout);
    // request id -> statements, from the JSON log lines.
    let mut measured: BTreeMap<String, u64> = BTreeMap::new();
    for line in logs.lines() {
        let Ok(event) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        if event["message"] != "request finished" {
            continue;
        }
        let request_id = event["span"]["request_id"].as_str().or_else(|| event["request_id"].as_str());
        if let (Some(request_id), Some(n)) = (request_id, event["db_statements"].as_u64()) {
            measured.insert(request_id.to_owned(), n);
        }
    }
    let mut report = Vec::new();
    let mut over = Vec::new();
    let postgres = provider_is_postgres;
    for &(name, sqlite_budget, postgres_budget) in BUDGETS {
        let budget = if postgres { postgres_budget } else { sqlite_budget };
        let counts: Vec<u64> = (0..ROUNDS)
            .map(|round| {
                *measured.get(&format!("{name}-{round}")).unwrap_or_else(|| panic!("no log line for {name}: {logs}"))
            })
            .collect();
        report.push(format!("{name}: {counts:?} (budget {budget})"));
        if counts.iter().any(|&n| n > budget) {
            over.push(name);
        }
    }
    println!("database statements per request:\n  {}", report.join("\n  "));
    assert!(over.is_empty(), "over budget: {over:?}\n{}", report.join("\n"));
}

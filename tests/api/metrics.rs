//! `GET /metrics` (issue 12 §2): Prometheus text on its own address only,
//! with requests, tokens, logins, throttling, the pool, the audit backlog
//! and key age.

use std::net::TcpListener;

use wxfed::startup::{Application, open_backend};

use crate::helpers::{TestApp, TestDb, new_client};
use crate::oidc::client_settings;

/// An app with `WXFED_METRICS_BIND` set; returns it and the metrics URL.
async fn app_with_metrics(db: &TestDb) -> (TestApp, String) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut settings = db.settings();
    settings.issuer = format!("http://127.0.0.1:{port}");
    settings.metrics_bind = Some("127.0.0.1:0".parse().unwrap());
    let backend = open_backend(&settings).unwrap();
    let app = Application::build_with(settings, backend, listener).unwrap();
    let metrics = format!("http://127.0.0.1:{}/metrics", app.metrics_port().expect("metrics are served"));
    let state = app.state().clone();
    actix_web::rt::spawn(app.run_until_stopped());
    (TestApp { address: format!("http://127.0.0.1:{port}"), client: new_client(), state }, metrics)
}

/// The value of the sample whose line starts with `series` (name and labels).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find(|l| l.starts_with(series)).and_then(|l| l.rsplit(' ').next()).and_then(|v| v.parse().ok())
}

#[actix_web::test]
async fn metrics_count_requests_tokens_logins_and_report_state() {
    let db = TestDb::new();
    let (app, metrics) = app_with_metrics(&db).await;
    let (client_id, secret) = app.register_client(client_settings("Metrics RP")).await;
    let secret = secret.unwrap();
    for _ in 0..2 {
        let response = app.token_request(&client_id, Some(&secret), &[("grant_type", "client_credentials")]).await;
        assert_eq!(response.status(), 200);
    }
    app.add_user("alice", "correct horse battery").await;
    assert_eq!(app.login("alice", "not the password").await.status(), 401, "the form again, with an error");

    let response = reqwest::get(&metrics).await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
    let text = response.text().await.unwrap();
    // Every line is a comment or `series value` (the exposition format).
    for line in text.lines().filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let value = line.rsplit(' ').next().unwrap();
        assert!(value.parse::<f64>().is_ok(), "not a sample: {line}");
    }
    let tokens = format!("wxfed_tokens_issued_total{{grant_type=\"client_credentials\",client_id=\"{client_id}\"}}");
    assert!(sample(&text, &tokens).unwrap_or(0.0) >= 2.0, "{tokens} in\n{text}");
    assert!(
        sample(&text, "wxfed_http_requests_total{route=\"/token\",method=\"POST\",status=\"200\"}").unwrap_or(0.0)
            >= 2.0
    );
    assert!(text.contains("wxfed_http_request_duration_seconds_bucket{route=\"/token\",method=\"POST\",le=\"0.005\"}"));
    assert!(sample(&text, "wxfed_logins_total{surface=\"password\",outcome=\"failure\"}").unwrap_or(0.0) >= 1.0);
    assert!(sample(&text, "wxfed_throttle_decisions_total{kind=\"login\",decision=\"allowed\"}").unwrap_or(0.0) >= 1.0);
    assert_eq!(sample(&text, "wxfed_db_up"), Some(1.0));
    assert!(sample(&text, "wxfed_db_pool_max_connections").unwrap() >= 1.0);
    assert!(sample(&text, "wxfed_audit_pending_events").is_some());
    assert!(sample(&text, "wxfed_signing_key_age_seconds{alg=\"RS256\"}").is_some(), "{text}");
    assert!(text.contains("wxfed_db_pool_wait_seconds_bucket"));
    // Route patterns, never raw paths or query strings.
    assert!(!text.contains("grant_type=client_credentials"));

    // The public listener serves no metrics.
    assert_eq!(app.get("/metrics").await.status(), 404);
}

#[actix_web::test]
async fn without_the_setting_no_metrics_are_served() {
    let db = TestDb::new();
    let settings = db.settings();
    assert!(settings.metrics_bind.is_none(), "off by default");
    let (app, _db) = crate::helpers::spawn_app().await;
    assert_eq!(app.get("/metrics").await.status(), 404);
}

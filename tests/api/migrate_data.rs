//! `wxfed migrate-data` (issue 12 §5): a SQLite installation copied into
//! PostgreSQL keeps working there — its people log in, its grants and
//! keys hold, its audit trail verifies and keeps growing — and a target
//! that is not empty is refused. Runs with the PostgreSQL suite (it needs
//! a PostgreSQL server to copy into).

use std::time::Duration;

use crate::helpers::{TestDb, spawn_app_on, wxfed_cli};
use crate::oidc::{PASSWORD, Provider, client_settings};

#[actix_web::test]
async fn a_sqlite_installation_moves_to_postgres_with_everything_intact() {
    if std::env::var("WXFED_TEST_POSTGRES_URL").is_err() {
        eprintln!("migrate-data test skipped: runs with the PostgreSQL suite");
        return;
    }
    let source = std::rc::Rc::new(TestDb::sqlite());
    let app = spawn_app_on(&source, |_| {}).await;
    let provider = Provider::on(app, source.clone(), client_settings("Moved RP")).await;
    let tokens = provider.tokens().await;
    let refresh_token = tokens["refresh_token"].as_str().unwrap().to_owned();
    let access_token = tokens["access_token"].as_str().unwrap().to_owned();
    {
        // A signed checkpoint, so the copy carries one to verify.
        let state = provider.app.state.clone();
        actix_web::web::block(move || {
            let mut conn = state.db.get().unwrap();
            wxfed::audit::chainer::checkpoint_if_due(&mut conn, &state.secrets, Duration::ZERO, true).unwrap()
        })
        .await
        .unwrap();
    }
    let source_events = provider.app.audit_rows().await.len();

    let target = TestDb::new();
    assert!(target.is_postgres());
    let args = ["migrate-data", "--from", source.url.as_str(), "--to", target.url.as_str(), "--json"];
    let output = wxfed_cli(&args, &source.cli_env(), None, None);
    assert!(output.status.success(), "{}: {}", output.status, String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["ok"], true, "{report}");
    let rows_of = |table: &str| {
        report["tables"].as_array().unwrap().iter().find(|t| t["table"] == table).map(|t| t["rows"].as_i64().unwrap())
    };
    assert_eq!(rows_of("accounts"), Some(1));
    assert_eq!(rows_of("clients"), Some(1));
    assert!(rows_of("signing_keys").unwrap() >= 1);
    assert!(rows_of("refresh_tokens").unwrap() >= 1);
    assert!(report["audit_events_verified"].as_i64().unwrap() >= source_events as i64, "{report}");
    assert!(report["checkpoints_verified"].as_i64().unwrap() >= 1, "{report}");

    // Into a database that now has rows: refused, and nothing changes.
    let again = wxfed_cli(&args, &source.cli_env(), None, None);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"), "{}", String::from_utf8_lossy(&again.stderr));

    // The target, run with the source's master key, is the same installation.
    // Same master key, and the same issuer (behind the same name, as a
    // real move keeps it; only the port of this test differs).
    let master_key = source.master_key.clone();
    let issuer = provider.app.address.clone();
    let moved = spawn_app_on(&target, move |settings| {
        settings.issuer = issuer;
        settings.master_key =
            wxfed::config::MasterKeySource::Value(wxfed::config::SecretString::new(master_key.clone()));
    })
    .await;
    let secret = provider.client_secret.as_deref();
    let refreshed = moved
        .token_request(
            &provider.client_id,
            secret,
            &[("grant_type", "refresh_token"), ("refresh_token", refresh_token.as_str())],
        )
        .await;
    assert_eq!(refreshed.status(), 200, "the refresh token issued on SQLite works on PostgreSQL");
    let userinfo = moved.client.get(moved.url("/userinfo")).bearer_auth(&access_token).send().await.unwrap();
    assert_eq!(userinfo.status(), 200, "an access token signed with the copied keys is accepted");
    assert_eq!(moved.login("alice", PASSWORD).await.status(), 303, "the password still works");
    // New events continue the copied chain (identity sequences continue too).
    let rows = moved.audit_rows().await;
    assert!(rows.len() > source_events);
    let report = moved.verify_chain().await;
    assert!(report.violation.is_none(), "{report:?}");
}

#[actix_web::test]
async fn migrate_data_refuses_other_directions_and_missing_sources() {
    let db = TestDb::sqlite();
    let missing = format!("sqlite://{}/nothing.db", db.dir().display());
    let output =
        wxfed_cli(&["migrate-data", "--from", &missing, "--to", "postgres://127.0.0.1:9/x"], &db.cli_env(), None, None);
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("no database"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let output =
        wxfed_cli(&["migrate-data", "--from", "postgres://127.0.0.1:9/x", "--to", &db.url], &db.cli_env(), None, None);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("SQLite"), "{}", String::from_utf8_lossy(&output.stderr));
}

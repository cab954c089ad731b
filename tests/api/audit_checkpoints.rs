//! Signed audit checkpoints (issue 9 item 4).

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, VerifyingKey};

use crate::helpers::{TestApp, TestDb, spawn_app_on, wxfed_cli};

const PASSWORD: &str = "correct horse battery";

async fn app_with_events(db: &TestDb) -> TestApp {
    let app = spawn_app_on(db, |_| {}).await;
    app.add_user("olga", PASSWORD).await;
    app.login("olga", "wrong password").await;
    app.audit_rows().await;
    app
}

/// Chains what is pending, then signs a checkpoint as the chainer does on
/// shutdown (no minimum interval). The app's own background chainer may
/// have signed some already (the first checkpoint is due at once).
async fn checkpoint_now(app: &TestApp, min_interval: Duration) -> Option<wxfed::db::audit::CheckpointRow> {
    app.audit_rows().await;
    let state = app.state.clone();
    actix_web::web::block(move || {
        let mut conn = state.db.get().unwrap();
        wxfed::audit::chainer::checkpoint_if_due(&mut conn, &state.secrets, min_interval, true).unwrap()
    })
    .await
    .unwrap()
}

fn key_show(db: &TestDb) -> String {
    let out = wxfed_cli(&["audit", "key", "show"], &db.cli_env(), None, None);
    assert!(
        out.status.success(),
        "{:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

async fn published(app: &TestApp) -> serde_json::Value {
    let response = app.get("/audit/checkpoints.json").await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// Rebuilds the documented signed bytes from the published fields alone
/// and checks the signature with nothing but the base64 public key.
fn verifies_with(public_key_b64: &str, checkpoint: &serde_json::Value) -> bool {
    let raw: [u8; 32] = STANDARD.decode(public_key_b64).unwrap().try_into().unwrap();
    let key = VerifyingKey::from_bytes(&raw).unwrap();
    let message = format!(
        "wxfed-audit-checkpoint-v1\n{}\n{}\n{}\n{}\n{}",
        checkpoint["seq"],
        checkpoint["head_hash"].as_str().unwrap(),
        checkpoint["signed_at"].as_str().unwrap(),
        checkpoint["prev_checkpoint_hash"].as_str().unwrap_or(""),
        checkpoint["key_id"].as_str().unwrap(),
    );
    assert_eq!(checkpoint["signed_message"].as_str().unwrap(), message);
    let signature =
        Signature::from_slice(&STANDARD.decode(checkpoint["signature"].as_str().unwrap()).unwrap()).unwrap();
    key.verify_strict(message.as_bytes(), &signature).is_ok()
}

fn cli_verify(db: &TestDb) -> (bool, String, serde_json::Value) {
    let text = wxfed_cli(&["audit", "verify"], &db.cli_env(), None, None);
    let json = wxfed_cli(&["audit", "verify", "--json"], &db.cli_env(), None, None);
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    (text.status.success(), String::from_utf8_lossy(&text.stdout).into_owned(), value)
}

#[actix_web::test]
async fn key_show_prints_base64_of_the_32_byte_public_key() {
    let db = TestDb::new();
    let shown = key_show(&db);
    assert_eq!(STANDARD.decode(&shown).unwrap().len(), 32, "{shown}");
    // Created once, then the same key.
    assert_eq!(key_show(&db), shown);
    let out = wxfed_cli(&["audit", "key", "show", "--json"], &db.cli_env(), None, None);
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(value["public_key"], shown);
    assert_eq!(value["alg"], "Ed25519");
    // The private half is stored sealed, never as the raw key.
    let mut conn = db.connect();
    let row = wxfed::db::audit::current_audit_key(&mut conn).unwrap().unwrap();
    assert!(row.sealed_private_key.starts_with("v1:"));
    assert_eq!(row.public_key, shown);
}

#[actix_web::test]
async fn a_checkpoint_verifies_with_only_the_public_key() {
    let db = TestDb::new();
    let app = app_with_events(&db).await;
    let signed = checkpoint_now(&app, Duration::ZERO).await.expect("a checkpoint");
    let rows = app.audit_rows().await;
    assert_eq!(signed.seq, rows.last().unwrap().seq);
    assert_eq!(signed.head_hash, rows.last().unwrap().hash);
    // Nothing new: no further checkpoint.
    assert!(checkpoint_now(&app, Duration::ZERO).await.is_none());

    let public_key = key_show(&db);
    let published = published(&app).await;
    assert_eq!(published["keys"][0]["public_key"], public_key);
    let checkpoints = published["checkpoints"].as_array().unwrap();
    assert_eq!(checkpoints.last().unwrap()["seq"], signed.seq);
    for checkpoint in checkpoints {
        assert!(verifies_with(&public_key, checkpoint));
    }
    // Paged by `after`: only the later ones; a page that is not full names
    // no next page; a bad cursor is a 400, not an empty page.
    assert!(published.get("next_after").is_none());
    let first_seq = checkpoints[0]["seq"].as_i64().unwrap();
    let later: serde_json::Value =
        app.get(&format!("/audit/checkpoints.json?after={first_seq}")).await.json().await.unwrap();
    let later_seqs: Vec<i64> =
        later["checkpoints"].as_array().unwrap().iter().map(|c| c["seq"].as_i64().unwrap()).collect();
    assert_eq!(later_seqs.len(), checkpoints.len() - 1);
    assert!(later_seqs.iter().all(|&seq| seq > first_seq));
    assert_eq!(later["keys"], published["keys"]);
    assert_eq!(app.get("/audit/checkpoints.json?after=soon").await.status(), 400);
    let checkpoints = &checkpoints[checkpoints.len() - 1..];
    // The same signature over another head does not verify.
    let raw: [u8; 32] = STANDARD.decode(&public_key).unwrap().try_into().unwrap();
    let key = VerifyingKey::from_bytes(&raw).unwrap();
    let message = checkpoints[0]["signed_message"].as_str().unwrap().replacen(
        &format!("\n{}\n", signed.seq),
        &format!("\n{}\n", signed.seq - 1),
        1,
    );
    let signature =
        Signature::from_slice(&STANDARD.decode(checkpoints[0]["signature"].as_str().unwrap()).unwrap()).unwrap();
    assert!(key.verify_strict(message.as_bytes(), &signature).is_err());

    let (ok, text, json) = cli_verify(&db);
    assert!(ok, "{text}");
    assert_eq!(json["checkpoints_checked"], published["checkpoints"].as_array().unwrap().len());
}

#[actix_web::test]
async fn deleting_the_newest_rows_and_editing_the_head_is_reported() {
    let db = TestDb::new();
    let app = app_with_events(&db).await;
    let signed = checkpoint_now(&app, Duration::ZERO).await.expect("a checkpoint");
    let last = signed.seq;
    let keep = last - 2;
    if db.is_postgres() {
        db.execute("ALTER TABLE audit_events DISABLE TRIGGER USER");
    } else {
        db.execute("DROP TRIGGER audit_events_no_update; DROP TRIGGER audit_events_no_delete;");
    }
    db.execute(&format!("DELETE FROM audit_events WHERE seq > {keep}"));
    db.execute(&format!(
        "UPDATE audit_chain_head SET last_seq = {keep}, \
         last_hash = (SELECT hash FROM audit_events WHERE seq = {keep}) WHERE id = 1"
    ));
    // The chain alone cannot tell: the head was edited to match.
    assert!(app.verify_chain().await.is_valid());
    let (ok, text, json) = cli_verify(&db);
    assert!(!ok, "{text}");
    // The first deleted row a checkpoint signed is named: the app's own
    // chainer may have signed one between `keep` and `last` already.
    let missing = json["checkpoint_violation"]["seq"].as_i64().unwrap();
    assert!(missing > keep && missing <= last, "{text}");
    assert!(text.contains(&format!("row {missing}, signed in a checkpoint, is missing")), "{text}");
    assert_eq!(json["valid"], false);
    assert_eq!(json["checkpoint_violation"]["kind"], "row_missing");
}

#[actix_web::test]
async fn rotation_keeps_old_checkpoints_verifiable() {
    let db = TestDb::new();
    let app = app_with_events(&db).await;
    let first = checkpoint_now(&app, Duration::ZERO).await.expect("a checkpoint");
    let old_key = key_show(&db);
    let out = wxfed_cli(&["audit", "key", "rotate"], &db.cli_env(), None, None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let new_key = key_show(&db);
    assert_ne!(new_key, old_key);
    app.login("olga", "wrong again").await;
    // Not due yet within the interval, even though the chain moved.
    assert!(checkpoint_now(&app, Duration::from_secs(3600)).await.is_none());
    let second = checkpoint_now(&app, Duration::ZERO).await.expect("a second checkpoint");
    assert!(second.seq > first.seq);
    assert_ne!(second.key_id, first.key_id);

    let published = published(&app).await;
    let keys = published["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0]["public_key"], old_key);
    assert!(keys[0]["retired_at"].is_string());
    assert_eq!(keys[1]["public_key"], new_key);
    assert!(keys[1]["retired_at"].is_null());
    let checkpoints = published["checkpoints"].as_array().unwrap();
    let old = checkpoints.iter().find(|c| c["key_id"] == keys[0]["id"]).expect("one signed by the old key");
    assert!(verifies_with(&old_key, old));
    assert!(!verifies_with(&new_key, old));
    let newest = checkpoints.last().unwrap();
    assert_eq!(newest["key_id"], keys[1]["id"]);
    assert!(verifies_with(&new_key, newest));
    assert!(newest["prev_checkpoint_hash"].is_string());

    let (ok, text, json) = cli_verify(&db);
    assert!(ok, "{text}");
    assert_eq!(json["checkpoints_checked"], checkpoints.len());
}

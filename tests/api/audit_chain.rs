use crate::helpers::{TestDb, spawn_app_on, wxfed_cli};
use wxfed::audit::Violation;

const PASSWORD: &str = "correct horse battery";

/// Lets the test act as an attacker with write access to the database:
/// the append-only triggers are the first thing such an attacker removes.
fn drop_append_only_guards(db: &TestDb) {
    if db.is_postgres() {
        db.execute("ALTER TABLE audit_events DISABLE TRIGGER USER");
    } else {
        db.execute("DROP TRIGGER audit_events_no_update; DROP TRIGGER audit_events_no_delete;");
    }
}

/// Startup's own events (the first signing keys) come first; then five:
/// two accounts added, one good and two bad logins. Returns the seq of the
/// last startup event, so tests can name rows relative to it.
async fn db_with_events() -> (TestDb, crate::helpers::TestApp, i64) {
    let db = TestDb::new();
    let app = spawn_app_on(&db, |_| {}).await;
    let base = app.audit_rows().await.len() as i64;
    app.add_user("olga", PASSWORD).await;
    app.add_user("pete", PASSWORD).await;
    app.login("olga", PASSWORD).await;
    app.login("olga", "wrong password").await;
    app.login("pete", "wrong password").await;
    assert_eq!(app.audit_rows().await.len() as i64, base + 5);
    (db, app, base)
}

fn cli_verify(db: &TestDb) -> (bool, String, serde_json::Value) {
    let text = wxfed_cli(&["audit", "verify"], &db.cli_env(), None, None);
    let json = wxfed_cli(&["audit", "verify", "--json"], &db.cli_env(), None, None);
    assert_eq!(text.status.success(), json.status.success());
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    (text.status.success(), String::from_utf8_lossy(&text.stdout).into_owned(), value)
}

#[actix_web::test]
async fn an_untouched_chain_verifies() {
    let (db, app, base) = db_with_events().await;
    let report = app.verify_chain().await;
    assert!(report.is_valid(), "{report:?}");
    assert_eq!(report.events_checked, base + 5);
    let (ok, text, json) = cli_verify(&db);
    assert!(ok, "{text}");
    assert!(text.contains(&format!("OK: {} events", base + 5)), "{text}");
    assert_eq!(json["valid"], true);
}

#[actix_web::test]
async fn the_application_cannot_update_or_delete_audit_rows() {
    let (db, _app, _) = db_with_events().await;
    let mut conn = db.connect();
    assert!(
        diesel::connection::SimpleConnection::batch_execute(
            &mut conn,
            "UPDATE audit_events SET ip = 'x' WHERE seq = 1"
        )
        .is_err()
    );
    assert!(
        diesel::connection::SimpleConnection::batch_execute(&mut conn, "DELETE FROM audit_events WHERE seq = 1")
            .is_err()
    );
}

#[actix_web::test]
async fn an_edited_row_is_named() {
    let (db, app, base) = db_with_events().await;
    drop_append_only_guards(&db);
    let seq = base + 4;
    db.execute(&format!("UPDATE audit_events SET outcome = 'success', reason = NULL WHERE seq = {seq}"));
    assert_eq!(app.verify_chain().await.violation, Some(Violation::Altered { seq }));
    let (ok, text, json) = cli_verify(&db);
    assert!(!ok);
    assert!(text.contains(&format!("row {seq} was altered")), "{text}");
    assert_eq!(json["violation"]["kind"], "altered");
    assert_eq!(json["violation"]["seq"], seq);
}

#[actix_web::test]
async fn a_deleted_row_is_named() {
    let (db, app, base) = db_with_events().await;
    drop_append_only_guards(&db);
    let seq = base + 3;
    db.execute(&format!("DELETE FROM audit_events WHERE seq = {seq}"));
    assert_eq!(app.verify_chain().await.violation, Some(Violation::Missing { after_seq: seq - 1, next_seq: seq + 1 }));
    let (ok, text, _) = cli_verify(&db);
    assert!(!ok);
    assert!(text.contains(&format!("rows {seq} to {seq} were deleted")), "{text}");
}

#[actix_web::test]
async fn rows_cut_off_the_end_are_noticed() {
    let (db, app, base) = db_with_events().await;
    drop_append_only_guards(&db);
    let last = base + 5;
    db.execute(&format!("DELETE FROM audit_events WHERE seq = {last}"));
    assert_eq!(app.verify_chain().await.violation, Some(Violation::Truncated { last_seq: last - 1, head_seq: last }));
}

#[actix_web::test]
async fn an_inserted_row_cannot_be_forged_without_the_master_key() {
    let (db, app, base) = db_with_events().await;
    // The attacker shifts rows 3.. up by one and slips a row in at 3,
    // linking it to row 2's hash as a real append would, and moves the
    // head along. Without the chain key the row's own hash is a guess.
    drop_append_only_guards(&db);
    let at = base + 3;
    db.execute(&format!("UPDATE audit_events SET seq = seq + 1000 WHERE seq >= {at}"));
    db.execute("UPDATE audit_events SET seq = seq - 999 WHERE seq >= 1000");
    db.execute(&format!(
        "INSERT INTO audit_events (seq, id, occurred_at, category, action, outcome, actor, detail, prev_hash, hash) \
         SELECT {at}, 'forged', occurred_at, 'admin', 'user.role_added', 'success', 'cli:root', '{{}}', hash, \
         '0000000000000000000000000000000000000000000000000000000000000001' FROM audit_events WHERE seq = {}",
        at - 1
    ));
    db.execute(&format!("UPDATE audit_chain_head SET last_seq = {}", base + 6));
    assert_eq!(app.verify_chain().await.violation, Some(Violation::Altered { seq: at }));
}

#[actix_web::test]
async fn a_row_appended_behind_wxfeds_back_is_noticed() {
    let (db, app, base) = db_with_events().await;
    let head = base + 5;
    db.execute(&format!(
        "INSERT INTO audit_events (seq, id, occurred_at, category, action, outcome, detail, prev_hash, hash) \
         SELECT {}, 'extra', occurred_at, 'admin', 'user.added', 'success', '{{}}', hash, hash FROM audit_events WHERE seq = {head}",
        head + 1
    ));
    assert_eq!(app.verify_chain().await.violation, Some(Violation::BeyondHead { head_seq: head, seq: head + 1 }));
}

#[actix_web::test]
async fn two_instances_writing_at_once_build_one_chain() {
    let db = TestDb::new();
    let first = spawn_app_on(&db, |s| s.database_pool_size = 8).await;
    let second = spawn_app_on(&db, |s| s.database_pool_size = 8).await;
    let base = first.audit_rows().await.len();
    const PER_INSTANCE: usize = 20;
    let mut requests = Vec::new();
    for i in 0..PER_INSTANCE {
        for (n, app) in [(0, &first), (1, &second)] {
            let client = crate::helpers::new_client();
            let url = app.url("/login");
            let state_app = crate::helpers::TestApp { address: app.address.clone(), client, state: app.state.clone() };
            requests.push(async move {
                let _ = url;
                // Distinct usernames: every attempt is a plain failure.
                let status = state_app.login(&format!("user{n}-{i}"), "wrong password").await.status();
                assert_eq!(status, 401);
            });
        }
    }
    futures_join_all(requests).await;
    let rows = first.audit_rows().await;
    let total = base + 2 * PER_INSTANCE;
    assert_eq!(rows.len(), total);
    let seqs: Vec<i64> = rows.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, (1..=total as i64).collect::<Vec<_>>());
    let report = second.verify_chain().await;
    assert!(report.is_valid(), "{report:?}");
    assert_eq!(report.events_checked, total as i64);
}

/// Runs futures concurrently on the current (single-threaded) runtime.
async fn futures_join_all<F: std::future::Future<Output = ()> + 'static>(futures: Vec<F>) {
    let handles: Vec<_> = futures.into_iter().map(actix_web::rt::spawn).collect();
    for handle in handles {
        handle.await.unwrap();
    }
}

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

/// Five events: two accounts added, one good and two bad logins.
async fn db_with_events() -> (TestDb, crate::helpers::TestApp) {
    let db = TestDb::new();
    let app = spawn_app_on(&db, |_| {}).await;
    app.add_user("olga", PASSWORD).await;
    app.add_user("pete", PASSWORD).await;
    app.login("olga", PASSWORD).await;
    app.login("olga", "wrong password").await;
    app.login("pete", "wrong password").await;
    assert_eq!(app.audit_rows().await.len(), 5);
    (db, app)
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
    let (db, app) = db_with_events().await;
    let report = app.verify_chain().await;
    assert!(report.is_valid(), "{report:?}");
    assert_eq!(report.events_checked, 5);
    let (ok, text, json) = cli_verify(&db);
    assert!(ok, "{text}");
    assert!(text.contains("OK: 5 events"));
    assert_eq!(json["valid"], true);
}

#[actix_web::test]
async fn the_application_cannot_update_or_delete_audit_rows() {
    let (db, _app) = db_with_events().await;
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
    let (db, app) = db_with_events().await;
    drop_append_only_guards(&db);
    db.execute("UPDATE audit_events SET outcome = 'success', reason = NULL WHERE seq = 4");
    assert_eq!(app.verify_chain().await.violation, Some(Violation::Altered { seq: 4 }));
    let (ok, text, json) = cli_verify(&db);
    assert!(!ok);
    assert!(text.contains("row 4 was altered"), "{text}");
    assert_eq!(json["violation"]["kind"], "altered");
    assert_eq!(json["violation"]["seq"], 4);
}

#[actix_web::test]
async fn a_deleted_row_is_named() {
    let (db, app) = db_with_events().await;
    drop_append_only_guards(&db);
    db.execute("DELETE FROM audit_events WHERE seq = 3");
    assert_eq!(app.verify_chain().await.violation, Some(Violation::Missing { after_seq: 2, next_seq: 4 }));
    let (ok, text, _) = cli_verify(&db);
    assert!(!ok);
    assert!(text.contains("rows 3 to 3 were deleted"), "{text}");
}

#[actix_web::test]
async fn rows_cut_off_the_end_are_noticed() {
    let (db, app) = db_with_events().await;
    drop_append_only_guards(&db);
    db.execute("DELETE FROM audit_events WHERE seq = 5");
    assert_eq!(app.verify_chain().await.violation, Some(Violation::Truncated { last_seq: 4, head_seq: 5 }));
}

#[actix_web::test]
async fn an_inserted_row_cannot_be_forged_without_the_master_key() {
    let (db, app) = db_with_events().await;
    // The attacker shifts rows 3.. up by one and slips a row in at 3,
    // linking it to row 2's hash as a real append would, and moves the
    // head along. Without the chain key the row's own hash is a guess.
    drop_append_only_guards(&db);
    db.execute("UPDATE audit_events SET seq = seq + 100 WHERE seq >= 3");
    db.execute("UPDATE audit_events SET seq = seq - 99 WHERE seq >= 100");
    db.execute(
        "INSERT INTO audit_events (seq, id, occurred_at, category, action, outcome, actor, detail, prev_hash, hash) \
         SELECT 3, 'forged', occurred_at, 'admin', 'user.role_added', 'success', 'cli:root', '{}', hash, \
         '0000000000000000000000000000000000000000000000000000000000000001' FROM audit_events WHERE seq = 2",
    );
    db.execute("UPDATE audit_chain_head SET last_seq = 6");
    assert_eq!(app.verify_chain().await.violation, Some(Violation::Altered { seq: 3 }));
}

#[actix_web::test]
async fn a_row_appended_behind_wxfeds_back_is_noticed() {
    let (db, app) = db_with_events().await;
    db.execute(
        "INSERT INTO audit_events (seq, id, occurred_at, category, action, outcome, detail, prev_hash, hash) \
         SELECT 6, 'extra', occurred_at, 'admin', 'user.added', 'success', '{}', hash, hash FROM audit_events WHERE seq = 5",
    );
    assert_eq!(app.verify_chain().await.violation, Some(Violation::BeyondHead { head_seq: 5, seq: 6 }));
}

#[actix_web::test]
async fn two_instances_writing_at_once_build_one_chain() {
    let db = TestDb::new();
    let first = spawn_app_on(&db, |s| s.database_pool_size = 8).await;
    let second = spawn_app_on(&db, |s| s.database_pool_size = 8).await;
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
    assert_eq!(rows.len(), 2 * PER_INSTANCE);
    let seqs: Vec<i64> = rows.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, (1..=(2 * PER_INSTANCE) as i64).collect::<Vec<_>>());
    let report = second.verify_chain().await;
    assert!(report.is_valid(), "{report:?}");
    assert_eq!(report.events_checked, (2 * PER_INSTANCE) as i64);
}

/// Runs futures concurrently on the current (single-threaded) runtime.
async fn futures_join_all<F: std::future::Future<Output = ()> + 'static>(futures: Vec<F>) {
    let handles: Vec<_> = futures.into_iter().map(actix_web::rt::spawn).collect();
    for handle in handles {
        handle.await.unwrap();
    }
}

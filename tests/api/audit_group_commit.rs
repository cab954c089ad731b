//! Group commit of the audit trail (issue 9, item 5): events are recorded
//! unchained and linked by one chainer per database.

use std::collections::HashSet;

use crate::helpers::{TestDb, spawn_app_on, wxfed_cli};
use wxfed::audit::{self, Action, AuditEvent, Violation, chainer};
use wxfed::db;
use wxfed::startup::{Backend, open_backend};

/// A migrated database with no server (so no background chainer): the
/// test decides when chaining happens.
fn backend(db: &TestDb) -> Backend {
    let mut settings = db.settings();
    settings.database_pool_size = 12;
    open_backend(&settings).unwrap()
}

fn record(backend: &Backend, n: usize) -> Vec<String> {
    let mut conn = backend.pool.get().unwrap();
    (0..n)
        .map(|i| {
            let event = AuditEvent::success(Action::Logout).with_detail("n", format!("e{i}"));
            audit::record(&mut conn, &backend.secrets, &event).unwrap();
            format!("e{i}")
        })
        .collect()
}

fn verify(backend: &Backend) -> audit::VerifyReport {
    let mut conn = backend.pool.get().unwrap();
    audit::verify(&mut conn, backend.secrets.audit_chain_key()).unwrap()
}

fn chain_all(backend: &Backend) -> usize {
    let mut conn = backend.pool.get().unwrap();
    chainer::chain_pending(&mut conn).unwrap()
}

/// The `n` detail markers of every chained row, in chain order.
fn chained_markers(backend: &Backend) -> Vec<String> {
    let mut conn = backend.pool.get().unwrap();
    let mut rows = db::audit::latest(&mut conn, 1_000_000).unwrap();
    rows.reverse();
    rows.iter()
        .filter_map(|r| serde_json::from_str::<serde_json::Value>(&r.detail).ok()?["n"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn events_recorded_in_parallel_are_each_chained_exactly_once() {
    let db = TestDb::new();
    let backend = backend(&db);
    const THREADS: usize = 8;
    const PER_THREAD: usize = 25;
    std::thread::scope(|scope| {
        for t in 0..THREADS {
            let backend = &backend;
            scope.spawn(move || {
                let mut conn = backend.pool.get().unwrap();
                for i in 0..PER_THREAD {
                    let event = AuditEvent::success(Action::Logout).with_detail("n", format!("t{t}-{i}"));
                    audit::record(&mut conn, &backend.secrets, &event).unwrap();
                    // Chainers run while others record: batches interleave
                    // with commits.
                    if i % 5 == 0 {
                        chainer::chain_pending(&mut conn).unwrap();
                    }
                }
            });
        }
    });
    chain_all(&backend);
    let report = verify(&backend);
    assert!(report.is_valid(), "{report:?}");
    assert_eq!(report.pending, 0);
    let markers = chained_markers(&backend);
    assert_eq!(markers.len(), THREADS * PER_THREAD);
    let distinct: HashSet<&String> = markers.iter().collect();
    assert_eq!(distinct.len(), THREADS * PER_THREAD, "an event was chained twice");
}

#[test]
fn a_chainer_rolled_back_mid_batch_loses_nothing() {
    let db = TestDb::new();
    let backend = backend(&db);
    let recorded = record(&backend, 10);
    chain_all(&backend);
    let more = record(&backend, 10);
    // A chainer that dies after linking half a batch: its transaction is
    // rolled back, as when the process is killed or PostgreSQL restarts.
    let mut conn = backend.pool.get().unwrap();
    let crashed: Result<(), diesel::result::Error> = db::write_transaction(&mut conn, |conn| {
        assert!(db::audit::try_become_chainer(conn, false)?);
        let (mut seq, mut hash) = db::audit::lock_head(conn)?;
        for pending in db::audit::pending_batch(conn, 5)? {
            let row = audit::chain::link(seq, &hash, &pending);
            db::audit::insert_chained(conn, &row)?;
            (seq, hash) = (row.seq, row.hash);
        }
        Err(diesel::result::Error::RollbackTransaction)
    });
    assert!(crashed.is_err());
    let report = verify(&backend);
    assert!(report.is_valid(), "{report:?}");
    assert_eq!((report.events_checked, report.pending), (10, 10));
    assert_eq!(chain_all(&backend), 10);
    let report = verify(&backend);
    assert!(report.is_valid(), "{report:?}");
    assert_eq!((report.events_checked, report.pending), (20, 0));
    assert_eq!(chained_markers(&backend), [recorded, more].concat());
}

#[test]
fn only_one_chainer_at_a_time_on_postgres() {
    let db = TestDb::new();
    if !db.is_postgres() {
        // SQLite: the chainer is the writer; BEGIN IMMEDIATE excludes others.
        return;
    }
    let backend = backend(&db);
    record(&backend, 3);
    let mut holder = backend.pool.get().unwrap();
    let mut other = backend.pool.get().unwrap();
    let outcome: Result<(), diesel::result::Error> = db::write_transaction(&mut holder, |holder| {
        assert!(db::audit::try_become_chainer(holder, false)?);
        // While `holder` is the chainer, another session is not elected
        // and chains nothing.
        assert_eq!(chainer::chain_batch(&mut other, 100, false)?, None);
        assert_eq!(chainer::chain_pending_if_elected(&mut other)?, 0);
        Ok(())
    });
    outcome.unwrap();
    assert_eq!(chain_all(&backend), 3);
    assert!(verify(&backend).is_valid());
}

#[actix_web::test]
async fn two_instances_chaining_at_once_never_fork() {
    let db = TestDb::new();
    let first = spawn_app_on(&db, |s| s.database_pool_size = 8).await;
    let second = spawn_app_on(&db, |s| s.database_pool_size = 8).await;
    const PER_INSTANCE: usize = 30;
    let mut handles = Vec::new();
    for app in [&first, &second] {
        for i in 0..PER_INSTANCE {
            let state = app.state.clone();
            handles.push(actix_web::rt::spawn(async move {
                let event =
                    AuditEvent::success(Action::Logout).with_detail("n", format!("{}-{i}", state.settings.issuer));
                db::run(&state.db, move |conn| {
                    audit::record(conn, &state.secrets, &event)?;
                    // Both instances chain at the same time as the
                    // background chainers.
                    chainer::chain_pending_if_elected(conn).map_err(db::DbError::from)
                })
                .await
                .unwrap();
            }));
        }
    }
    for handle in handles {
        handle.await.unwrap();
    }
    let rows = first.audit_rows().await;
    let seqs: Vec<i64> = rows.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, (1..=rows.len() as i64).collect::<Vec<_>>());
    let ids: HashSet<&String> = rows.iter().map(|r| &r.id).collect();
    assert_eq!(ids.len(), rows.len(), "an event was chained twice");
    let markers = rows.iter().filter(|r| r.detail.contains("\"n\"")).count();
    assert_eq!(
        markers,
        2 * PER_INSTANCE,
        "{} rows: {:?}",
        rows.len(),
        rows.iter().map(|r| &r.detail).collect::<Vec<_>>()
    );
    let report = second.verify_chain().await;
    assert!(report.is_valid(), "{report:?}");
    assert_eq!(report.pending, 0);
}

#[actix_web::test]
async fn the_background_chainer_links_events_without_help() {
    let db = TestDb::new();
    let app = spawn_app_on(&db, |_| {}).await;
    let state = app.state.clone();
    db::run(&state.db, move |conn| {
        audit::record(conn, &state.secrets, &AuditEvent::success(Action::Logout)).map_err(db::DbError::from)
    })
    .await
    .unwrap();
    // Polls (no timing assertion): the chainer runs every half second.
    for _ in 0..200 {
        let report = app.verify_chain().await;
        if report.pending == 0 {
            assert!(report.is_valid(), "{report:?}");
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the background chainer did not chain the event");
}

#[test]
fn verify_tells_pending_events_from_tampering() {
    let db = TestDb::new();
    let backend = backend(&db);
    record(&backend, 4);
    chain_all(&backend);
    record(&backend, 3);
    let report = verify(&backend);
    assert!(report.is_valid(), "{report:?}");
    assert_eq!((report.events_checked, report.pending), (4, 3));
    let text = wxfed_cli(&["audit", "verify"], &db.cli_env(), None, None);
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert!(text.status.success(), "{stdout}");
    assert!(stdout.contains("audit chain OK: 4 events"), "{stdout}");
    assert!(stdout.contains("3 events not yet chained"), "{stdout}");
    // The CLI chains what is pending when it exits.
    assert_eq!(verify(&backend).pending, 0);
    record(&backend, 3);
    let json = wxfed_cli(&["audit", "verify", "--json"], &db.cli_env(), None, None);
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!((value["valid"].as_bool(), value["pending"].as_i64()), (Some(true), Some(3)));

    // Tampering with a chained row is still tampering, pending or not.
    if db.is_postgres() {
        db.execute("ALTER TABLE audit_events DISABLE TRIGGER USER");
    } else {
        db.execute("DROP TRIGGER audit_events_no_update;");
    }
    db.execute("UPDATE audit_events SET outcome = 'failure' WHERE seq = 2");
    record(&backend, 2);
    let report = verify(&backend);
    assert_eq!(report.violation, Some(Violation::Altered { seq: 2 }));
    assert_eq!(report.pending, 2);
    let text = wxfed_cli(&["audit", "verify"], &db.cli_env(), None, None);
    assert!(!text.status.success());
}

//! Self-verifying exports and retention (issue 9 items 3 and 6): a JSON
//! Lines export proves itself with the audit public key alone; an edited,
//! dropped, swapped or disguised line fails and is named; a prune keeps
//! what remains verifiable and differs from a deletion. Both backends.

use std::time::Duration;

use wxfed::audit::{self, Action, AuditEvent, Violation};

use crate::helpers::{TestApp, TestDb, spawn_app_on, wxfed_cli};

fn event(action: Action, client: &str, reason: &str) -> AuditEvent {
    let mut event = AuditEvent::success(action).with_client(client).with_reason(reason);
    event.ip = Some("10.9.0.1".into());
    event.with_detail("note", "值 \"quoted\"")
}

/// Records `events` as requests would, chains them and signs a checkpoint
/// now (as the chainer does on shutdown).
async fn seed(app: &TestApp, events: Vec<AuditEvent>) {
    app.record_events(events).await;
    let state = app.state.clone();
    actix_web::web::block(move || {
        let mut conn = state.db.get().unwrap();
        audit::chainer::checkpoint_if_due(&mut conn, &state.secrets, Duration::ZERO, true).unwrap();
    })
    .await
    .unwrap();
}

fn cli(db: &TestDb, args: &[&str]) -> (bool, String) {
    let output = wxfed_cli(args, &db.cli_env(), None, None);
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

fn public_key(db: &TestDb) -> String {
    let (ok, out) = cli(db, &["audit", "key", "show"]);
    assert!(ok, "{out}");
    out.trim().to_owned()
}

/// `wxfed audit verify-export` with nothing but the file and the key (no
/// database, no master key in its environment).
fn verify_export(dir: &std::path::Path, lines: &[String], key: &str) -> (bool, serde_json::Value) {
    let file = dir.join(format!("export-{}.jsonl", uuid::Uuid::new_v4()));
    std::fs::write(&file, lines.iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap();
    let output =
        wxfed_cli(&["--json", "audit", "verify-export", file.to_str().unwrap(), "--public-key", key], &[], None, None);
    let report: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&output.stderr)));
    (output.status.success(), report)
}

/// A Python with the `cryptography` package: the SDK test's venv
/// (`tests/sdk/install.sh`), else the system's python3.
fn python_with_cryptography() -> std::path::PathBuf {
    let venv = std::path::PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/wxfed/venv/bin/python");
    for python in [venv, "python3".into()] {
        let ok = std::process::Command::new(&python)
            .args(["-c", "import cryptography"])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return python;
        }
    }
    panic!("no Python with the cryptography package: run `bash tests/sdk/install.sh`");
}

/// The independent verifier (scripts/verify-audit-export.py: Python's
/// hashlib and the `cryptography` package, no wxfed code).
fn verify_with_python(dir: &std::path::Path, lines: &[String], key: &str) -> (bool, String) {
    let file = dir.join(format!("export-{}.jsonl", uuid::Uuid::new_v4()));
    std::fs::write(&file, lines.iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/verify-audit-export.py");
    let output = std::process::Command::new(python_with_cryptography())
        .arg(script)
        .arg(&file)
        .args(["--public-key", key])
        .output()
        .unwrap();
    (
        output.status.success(),
        format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr)),
    )
}

fn export(db: &TestDb, filters: &[&str]) -> Vec<String> {
    let mut args = vec!["audit", "export", "--format", "jsonl"];
    args.extend_from_slice(filters);
    let output = wxfed_cli(&args, &db.cli_env(), None, None);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap().lines().map(str::to_owned).collect()
}

fn kind(line: &str) -> String {
    serde_json::from_str::<serde_json::Value>(line).unwrap()["type"].as_str().unwrap().to_owned()
}

fn index_of(lines: &[String], wanted: &str, nth: usize) -> usize {
    lines.iter().enumerate().filter(|(_, l)| kind(l) == wanted).nth(nth).unwrap().0
}

async fn app_with_events(db: &TestDb) -> TestApp {
    let app = spawn_app_on(db, |_| {}).await;
    let mut events: Vec<AuditEvent> = (0..30).map(|i| event(Action::Logout, "shop", &format!("r{i}"))).collect();
    events.extend((0..10).map(|i| event(Action::Logout, "other", &format!("o{i}"))));
    seed(&app, events).await;
    app
}

#[actix_web::test]
async fn an_export_verifies_with_only_the_public_key() {
    let db = TestDb::new();
    let app = app_with_events(&db).await;
    let key = public_key(&db);
    let lines = export(&db, &["--client", "shop"]);
    assert_eq!(kind(&lines[0]), "header");
    assert_eq!(kind(lines.last().unwrap()), "checkpoint");
    let events = lines.iter().filter(|l| kind(l) == "event").count();
    assert_eq!(events, 30, "every selected row is an event line");
    assert!(lines.iter().filter(|l| kind(l) == "omitted").count() >= 10, "the others are there by hash");
    let omitted: serde_json::Value = serde_json::from_str(&lines[index_of(&lines, "omitted", 0)]).unwrap();
    assert!(omitted.get("reason").is_none() && omitted.get("detail").is_none(), "no content leaves: {omitted}");
    let (ok, report) = verify_export(&db.dir(), &lines, &key);
    assert!(ok, "{report}");
    assert_eq!(report["report"]["events"], 30);
    // Code we did not write agrees.
    let (ok, out) = verify_with_python(&db.dir(), &lines, &key);
    assert!(ok, "{out}");
    assert!(out.contains("30 events"), "{out}");

    // The console's export is the same proof.
    app.add_user("audra", crate::admin::PASSWORD).await;
    crate::admin::grant(&app, "audra", wxfed::accounts::Role::Auditor).await;
    let browser = TestApp { client: crate::helpers::new_client(), ..app.clone() };
    assert_eq!(browser.login("audra", crate::admin::PASSWORD).await.status(), 303);
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let body = browser.get(&format!("/audit/export?client=shop&from={today}&format=jsonl")).await.text().await.unwrap();
    let web: Vec<String> = body.lines().map(str::to_owned).collect();
    assert_eq!(web.iter().filter(|l| kind(l) == "event").count(), 30);
    let (ok, report) = verify_export(&db.dir(), &web, &key);
    assert!(ok, "{report}");

    // Another key does not vouch for it.
    let other = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
    let (ok, report) = verify_export(&db.dir(), &lines, other);
    assert!(!ok);
    assert_eq!(report["line"], lines.len(), "the end checkpoint: {report}");
}

#[actix_web::test]
async fn an_edited_dropped_or_swapped_line_fails_and_is_named() {
    let db = TestDb::new();
    let _app = app_with_events(&db).await;
    let key = public_key(&db);
    let lines = export(&db, &["--client", "shop"]);
    let first_event = index_of(&lines, "event", 0);
    let second_event = index_of(&lines, "event", 1);

    // Edited: the reason of one event.
    let mut edited = lines.clone();
    edited[second_event] = edited[second_event].replace("\"reason\":\"r1\"", "\"reason\":\"r1 (nothing to see)\"");
    assert_ne!(edited[second_event], lines[second_event]);
    let (ok, report) = verify_export(&db.dir(), &edited, &key);
    assert!(!ok);
    assert_eq!(report["line"], second_event + 1, "{report}");
    let (ok, out) = verify_with_python(&db.dir(), &edited, &key);
    assert!(!ok && out.contains(&format!("line {}:", second_event + 1)), "{out}");

    // Dropped: the failure names the line after the gap.
    let mut dropped = lines.clone();
    dropped.remove(second_event);
    let (ok, report) = verify_export(&db.dir(), &dropped, &key);
    assert!(!ok);
    assert_eq!(report["line"], second_event + 1, "{report}");

    // Swapped: the first of the two is out of order.
    let mut swapped = lines.clone();
    swapped.swap(first_event, second_event);
    let (ok, report) = verify_export(&db.dir(), &swapped, &key);
    assert!(!ok);
    assert_eq!(report["line"], first_event + 1, "{report}");

    // Disguised: an event turned into an "omitted" line with its true
    // hashes still matches the filters, so it cannot have been left out.
    let mut value: serde_json::Value = serde_json::from_str(&lines[first_event]).unwrap();
    let object = value.as_object_mut().unwrap();
    for field in ["reason", "ip", "user_agent", "detail", "content_salt"] {
        object.remove(field);
    }
    object.insert("type".into(), "omitted".into());
    let mut disguised = lines.clone();
    disguised[first_event] = value.to_string();
    let (ok, report) = verify_export(&db.dir(), &disguised, &key);
    assert!(!ok);
    assert_eq!(report["line"], first_event + 1, "{report}");
    assert!(report["problem"].as_str().unwrap().contains("matches the export's filters"), "{report}");

    // The tail dropped with its checkpoint.
    let cut = &lines[..lines.len() - 3];
    let (ok, report) = verify_export(&db.dir(), cut, &key);
    assert!(!ok);
    assert_eq!(report["line"], cut.len(), "{report}");
}

fn drop_append_only_guards(db: &TestDb) {
    if db.is_postgres() {
        db.execute("ALTER TABLE audit_events DISABLE TRIGGER USER");
    } else {
        db.execute("DROP TRIGGER audit_events_no_update; DROP TRIGGER audit_events_no_delete;");
    }
}

#[actix_web::test]
async fn a_chain_rewritten_after_its_checkpoint_is_caught_by_the_signature() {
    // v2 links need no key: an attacker can edit a row and recompute every
    // later hash and the head. The signed checkpoint then disagrees.
    let db = TestDb::new();
    let app = app_with_events(&db).await;
    let rows = app.audit_rows().await;
    drop_append_only_guards(&db);
    let target = rows.iter().find(|r| r.reason.as_deref() == Some("r3")).unwrap().seq;
    db.execute(&format!("UPDATE audit_events SET reason = 'r3 rewritten' WHERE seq = {target}"));
    let mut rows = app.audit_rows().await;
    let mut prev = rows.iter().find(|r| r.seq == target - 1).map(|r| r.hash.clone()).unwrap();
    for row in rows.iter_mut().filter(|r| r.seq >= target) {
        row.prev_hash = prev.clone();
        let content = audit::chain::row_content_hash(row).unwrap();
        row.hash = audit::chain::with_metadata(row, |m| audit::chain::link_hash(&prev, m, &content));
        db.execute(&format!(
            "UPDATE audit_events SET prev_hash = '{}', hash = '{}', content_hash = '{content}' WHERE seq = {}",
            row.prev_hash, row.hash, row.seq
        ));
        prev = row.hash.clone();
    }
    let last = rows.last().unwrap();
    db.execute(&format!("UPDATE audit_chain_head SET last_hash = '{}'", last.hash));
    assert_eq!(app.verify_chain().await.violation, None, "the chain alone looks intact");
    let (ok, out) = cli(&db, &["audit", "verify"]);
    assert!(!ok, "{out}");
    assert!(out.contains("does not match its signed checkpoint"), "{out}");
}

async fn prune(app: &TestApp, categories: Vec<(&'static str, u32)>, days_later: i64) -> audit::retention::Report {
    let state = app.state.clone();
    actix_web::web::block(move || {
        let mut conn = state.db.get().unwrap();
        let now = wxfed::db::now() + chrono::Duration::days(days_later);
        audit::retention::prune(&mut conn, &state.secrets, &categories, now, "cli:tester").unwrap()
    })
    .await
    .unwrap()
}

#[actix_web::test]
async fn a_prune_strips_old_content_and_what_remains_still_verifies() {
    let db = TestDb::new();
    let app = app_with_events(&db).await;
    let key = public_key(&db);
    // Events after the newest checkpoint are not pruned.
    let state = app.state.clone();
    actix_web::web::block(move || {
        let mut conn = state.db.get().unwrap();
        audit::record(&mut conn, &state.secrets, &event(Action::Logout, "late", "after the checkpoint")).unwrap();
        audit::chainer::chain_pending(&mut conn).unwrap();
    })
    .await
    .unwrap();

    // Not yet old enough: nothing.
    let report = prune(&app, vec![("authentication", 30)], 0).await;
    assert_eq!(report.categories[0].pruned, 0);
    let report = prune(&app, vec![("authentication", 30)], 31).await;
    let covered = report.through_seq.unwrap();
    assert!(report.categories[0].pruned >= 40, "{report:?}");
    let rows = app.audit_rows().await;
    for row in rows.iter().filter(|r| r.action == "logout") {
        if row.seq <= covered {
            assert!(row.pruned_at.is_some() && row.reason.is_none() && row.ip.is_none(), "{row:?}");
        } else {
            assert_eq!(row.reason.as_deref(), Some("after the checkpoint"), "newer than the checkpoint: kept");
        }
    }
    // Other categories are untouched; the prune recorded itself.
    assert!(
        rows.iter().filter(|r| r.category == "audit_access" || r.category == "admin").all(|r| r.pruned_at.is_none())
    );
    let records: Vec<_> = rows.iter().filter(|r| r.action == "audit.pruned").collect();
    assert!(!records.is_empty());
    let detail: serde_json::Value = serde_json::from_str(&records[0].detail).unwrap();
    assert_eq!(detail["category"], "authentication");
    assert_eq!(detail["through_seq"], covered);

    let verified = app.verify_chain().await;
    assert_eq!(verified.violation, None);
    assert!(verified.pruned >= 40);
    let (ok, out) = cli(&db, &["audit", "verify"]);
    assert!(ok, "{out}");
    // An export shows pruned rows as such and still proves itself.
    let lines = export(&db, &[]);
    assert!(lines.iter().filter(|l| kind(l) == "pruned").count() >= 40);
    let (ok, report) = verify_export(&db.dir(), &lines, &key);
    assert!(ok, "{report}");

    // A row stripped behind wxfed's back is a deletion, not a prune.
    drop_append_only_guards(&db);
    let victim = rows.iter().find(|r| r.category == "admin" && r.action != "audit.pruned" && r.seq <= covered).unwrap();
    db.execute(&format!(
        "UPDATE audit_events SET reason = NULL, ip = NULL, user_agent = NULL, content_salt = NULL, detail = '{{}}', \
         pruned_at = occurred_at WHERE seq = {}",
        victim.seq
    ));
    assert_eq!(app.verify_chain().await.violation, Some(Violation::UnrecordedPrune { seq: victim.seq }));
}

#[actix_web::test]
async fn the_cli_prunes_by_the_retention_settings() {
    let db = TestDb::new();
    let _app = app_with_events(&db).await;
    let mut env = db.cli_env();
    env.push(("WXFED_AUDIT_RETENTION_AUTHENTICATION_DAYS".into(), "1".into()));
    let output = wxfed_cli(&["--json", "audit", "prune"], &env, None, None);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["categories"][0]["category"], "authentication");
    assert_eq!(report["categories"][0]["retention_days"], 1);
    assert_eq!(report["categories"][0]["pruned"], 0, "nothing is a day old yet");
    // Zero days is refused, naming the setting.
    let mut env = db.cli_env();
    env.push(("WXFED_AUDIT_RETENTION_ADMIN_DAYS".into(), "0".into()));
    let output = wxfed_cli(&["audit", "prune"], &env, None, None);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("WXFED_AUDIT_RETENTION_ADMIN_DAYS"));
}

//! The external checkpoint sink (issue 9 item 4): every signed checkpoint
//! also leaves the database, in order, none skipped when the sink was down
//! for a while. Both backends.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wxfed::audit::{self, Action, AuditEvent};
use wxfed::config::CheckpointSink;

use crate::helpers::{TestApp, TestDb, spawn_app_on};

/// Records an event and signs a checkpoint over it (as the chainer does
/// on shutdown), `n` times: `n` checkpoints.
async fn checkpoints(app: &TestApp, n: usize) -> Vec<i64> {
    let state = app.state.clone();
    actix_web::web::block(move || {
        let mut conn = state.db.get().unwrap();
        for i in 0..n {
            let event = AuditEvent::success(Action::Logout).with_reason(&format!("e{i}"));
            audit::record(&mut conn, &state.secrets, &event).unwrap();
            audit::chainer::checkpoint_now(&mut conn, &state.secrets).unwrap();
        }
        wxfed::db::audit::all_checkpoints(&mut conn).unwrap().iter().map(|c| c.seq).collect()
    })
    .await
    .unwrap()
}

fn public_key(app: &TestApp) -> String {
    let mut conn = app.state.db.get().unwrap();
    wxfed::db::audit::current_audit_key(&mut conn).unwrap().unwrap().public_key
}

fn verifies(key: &str, line: &serde_json::Value) -> bool {
    audit::checkpoint::signature_is_valid(
        key,
        line["signed_message"].as_str().unwrap().as_bytes(),
        line["signature"].as_str().unwrap(),
    )
}

#[actix_web::test]
async fn a_file_sink_gets_every_checkpoint_once_in_order() {
    let db = TestDb::new();
    let file = db.dir().join("checkpoints.jsonl");
    let sink = CheckpointSink::parse(file.to_str().unwrap()).unwrap();
    // A long interval: only this test signs, so the pushes are its own.
    let app = spawn_app_on(&db, |s| s.audit_checkpoint_secs = 3600).await;
    let signed = checkpoints(&app, 3).await;
    assert!(signed.len() >= 3);
    let pushed = audit::sink::push_pending(&app.state, &sink).await.unwrap();
    assert_eq!(pushed, signed.len());
    // Nothing new: nothing pushed twice.
    assert_eq!(audit::sink::push_pending(&app.state, &sink).await.unwrap(), 0);
    let more = checkpoints(&app, 1).await;
    assert_eq!(audit::sink::push_pending(&app.state, &sink).await.unwrap(), 1);

    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.iter().map(|l| l["seq"].as_i64().unwrap()).collect::<Vec<_>>(), more);
    let key = public_key(&app);
    assert!(lines.iter().all(|l| verifies(&key, l)), "each line verifies with the public key alone");
    // Each links to the one before (a chain of checkpoints, as published).
    assert!(lines[0]["prev_checkpoint_hash"].is_null());
    assert!(lines[1..].iter().all(|l| l["prev_checkpoint_hash"].is_string()));
}

/// A tiny HTTP receiver: answers 503 to the first `fail` requests, then
/// 200; keeps the bodies it accepted.
fn receiver(fail: usize) -> (String, Arc<Mutex<Vec<serde_json::Value>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://127.0.0.1:{}/checkpoints", listener.local_addr().unwrap().port());
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let keep = accepted.clone();
    std::thread::spawn(move || {
        for (n, stream) in listener.incoming().enumerate() {
            let Ok(mut stream) = stream else { continue };
            stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let status = if n < fail { "503 Service Unavailable" } else { "200 OK" };
            if n >= fail {
                keep.lock().unwrap().push(serde_json::from_slice(&body).unwrap());
            }
            let _ = write!(stream, "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    (url, accepted)
}

#[actix_web::test]
async fn an_http_sink_that_was_down_is_caught_up_without_gaps() {
    let db = TestDb::new();
    let (url, accepted) = receiver(1);
    let sink = CheckpointSink::parse(&url).unwrap();
    let app = spawn_app_on(&db, |s| s.audit_checkpoint_secs = 3600).await;
    let signed = checkpoints(&app, 3).await;
    // Down: the first push fails and nothing is marked as taken.
    assert!(audit::sink::push_pending(&app.state, &sink).await.is_err());
    assert!(accepted.lock().unwrap().is_empty());
    // Back: everything, in order, from the first one on.
    assert_eq!(audit::sink::push_pending(&app.state, &sink).await.unwrap(), signed.len());
    let got: Vec<i64> = accepted.lock().unwrap().iter().map(|c| c["seq"].as_i64().unwrap()).collect();
    assert_eq!(got, signed);
    let key = public_key(&app);
    assert!(accepted.lock().unwrap().iter().all(|c| verifies(&key, c)));
}

#[test]
fn a_sink_is_a_file_or_an_https_url() {
    assert_eq!(
        CheckpointSink::parse("/var/log/wxfed/checkpoints.jsonl").unwrap(),
        CheckpointSink::File("/var/log/wxfed/checkpoints.jsonl".into())
    );
    assert!(matches!(CheckpointSink::parse("https://audit.example.com/in"), Ok(CheckpointSink::Url(_))));
    assert!(matches!(CheckpointSink::parse("http://127.0.0.1:9000/in"), Ok(CheckpointSink::Url(_))));
    assert!(CheckpointSink::parse("http://audit.example.com/in").is_err(), "plain http off the machine");
    assert!(CheckpointSink::parse("ftp://audit.example.com/in").is_err());
}

#[actix_web::test]
async fn a_running_server_pushes_its_checkpoints_to_the_configured_sink() {
    let db = TestDb::new();
    let file = db.dir().join("pushed.jsonl");
    let sink = CheckpointSink::parse(file.to_str().unwrap()).unwrap();
    let app = spawn_app_on(&db, |s| s.audit_checkpoint_sink = Some(sink)).await;
    app.add_user("olga", "correct horse battery").await;
    // The background chainer signs the first checkpoint at once, then
    // pushes it; wait for it (bounded), then compare with the database.
    for _ in 0..100 {
        if std::fs::read_to_string(&file).is_ok_and(|t| !t.is_empty()) {
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    let text = std::fs::read_to_string(&file).expect("the server pushed a checkpoint");
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    let mut conn = app.state.db.get().unwrap();
    let stored = wxfed::db::audit::all_checkpoints(&mut conn).unwrap();
    assert_eq!(first["seq"], stored[0].seq);
    assert_eq!(first["signature"], stored[0].signature.as_str());
}

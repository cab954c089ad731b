//! Issue 10 item 12: after a PostgreSQL restart, pooled connections are
//! dead; the first request once the server is back must still succeed.
//! Runs with the PostgreSQL suite, against a private server (never the
//! shared one) started in a temp dir on its own port.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::helpers::{TestDb, spawn_app_on};

struct PrivatePostgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

impl PrivatePostgres {
    /// None when this machine cannot run one (no binaries, not root).
    fn start() -> Option<Self> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| e.ok())
            .map(|e| e.path().join("bin"))
            .find(|p| p.join("initdb").exists())?;
        let dir = tempfile::tempdir().ok()?;
        let (uid, gid) = postgres_ids()?;
        std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).ok()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
        let this = Self { bin, dir, port };
        let data = this.data();
        assert!(this.as_postgres("initdb", &["-D", &data, "-U", "postgres", "--auth=trust", "-E", "UTF8"]));
        assert!(this.pg_ctl(&["start"]), "private PostgreSQL starts");
        Some(this)
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn as_postgres(&self, program: &str, args: &[&str]) -> bool {
        Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join(program))
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    }

    fn pg_ctl(&self, action: &[&str]) -> bool {
        let options = format!("-p {} -k {} -c listen_addresses=127.0.0.1", self.port, self.dir.path().display());
        let log = self.dir.path().join("log").display().to_string();
        let mut args = vec!["-D", &self.data(), "-o", &options, "-l", &log, "-w", "-m", "fast"]
            .into_iter()
            .map(str::to_owned)
            .collect::<Vec<_>>();
        args.extend(action.iter().map(|a| (*a).to_owned()));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        self.as_postgres("pg_ctl", &refs)
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .args(["-D", &self.data(), "-m", "immediate", "-w", "stop"])
            .output();
    }
}

fn postgres_ids() -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string(Path::new("/etc/passwd")).ok()?;
    let line = passwd.lines().find(|l| l.starts_with("postgres:"))?;
    let fields: Vec<&str> = line.split(':').collect();
    Some((fields.get(2)?.parse().ok()?, fields.get(3)?.parse().ok()?))
}

#[actix_web::test]
async fn the_first_request_after_a_postgres_restart_succeeds() {
    let db = TestDb::new();
    if !db.is_postgres() {
        return;
    }
    let Some(server) = PrivatePostgres::start() else {
        eprintln!("skipped: cannot start a private PostgreSQL here");
        return;
    };
    let url = server.url();
    let app = spawn_app_on(&db, |s| {
        s.database = wxfed::db::DatabaseTarget::parse(&url).unwrap();
        s.database_pool_size = 4;
    })
    .await;
    // Fill the pool with connections that the restart will kill.
    let warm: Vec<_> = (0..4).map(|_| app.state.db.get().unwrap()).collect();
    drop(warm);
    assert_eq!(app.get("/readyz").await.status(), 200);

    let restarted = server.pg_ctl(&["restart"]);
    assert!(restarted, "private PostgreSQL restarts");

    // The first request needs the database (client lookup): a dead pooled
    // connection would make it fail.
    let token = app
        .client
        .post(app.url("/token"))
        .form(&[("grant_type", "authorization_code"), ("code", "x"), ("client_id", "nobody")])
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), 401, "{:?}", token.text().await);
    assert_eq!(app.get("/readyz").await.status(), 200);
}

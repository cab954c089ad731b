use crate::helpers::TestDb;
use diesel::RunQueryDsl;
use wxfed::db;

fn table_exists(conn: &mut db::DbConn, table: &str) -> bool {
    diesel::sql_query(format!("SELECT 1 FROM {table} LIMIT 1")).execute(conn).is_ok()
}

#[test]
fn every_migration_applies_reverts_and_applies_again() {
    let db = TestDb::new();
    let mut conn = db.connect();
    let applied = db::run_migrations(&mut conn).unwrap();
    assert!(applied >= 1);
    for table in
        ["accounts", "account_roles", "sessions", "login_throttle", "audit_events", "audit_chain_head", "settings"]
    {
        assert!(table_exists(&mut conn, table), "{table} exists after migrating");
    }
    assert_eq!(db::run_migrations(&mut conn).unwrap(), 0, "nothing left to apply");

    let reverted = db::revert_all_migrations(&mut conn).unwrap();
    assert_eq!(reverted, applied);
    for table in ["accounts", "sessions", "audit_events", "settings"] {
        assert!(!table_exists(&mut conn, table), "{table} is gone after reverting");
    }
    assert_eq!(db::run_migrations(&mut conn).unwrap(), applied);
}

#[test]
fn both_backends_ship_the_same_migrations() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let names = |backend: &str| {
        let mut names: Vec<String> = std::fs::read_dir(dir.join(backend))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(names("sqlite"), names("postgres"));
    for name in names("sqlite") {
        for backend in ["sqlite", "postgres"] {
            for file in ["up.sql", "down.sql"] {
                assert!(dir.join(backend).join(&name).join(file).is_file(), "{backend}/{name}/{file}");
            }
        }
    }
}

//! Copying a whole database from SQLite to PostgreSQL (`wxfed
//! migrate-data`, issue 12 §5): the embedded default grown into the
//! production backend without losing a row.
//!
//! The copy is generic over the schema, so a new table or column needs no
//! change here: tables and columns come from SQLite's catalog, ordered so
//! that every table comes after the tables its foreign keys name. Each
//! row leaves SQLite as a JSON object (`json_object`) and enters
//! PostgreSQL through `json_populate_recordset`, which converts every
//! value to the column's type (SQLite's 0/1 booleans, its text
//! timestamps), a batch of rows per statement. Everything is written in
//! one PostgreSQL transaction: a failure leaves the target as empty as it
//! was.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Nullable, Text};

use super::DbConn;

/// Rows per INSERT statement.
const BATCH: i64 = 1000;

/// diesel's own bookkeeping: the target has its own, from its migrations.
const MIGRATIONS_TABLE: &str = "__diesel_schema_migrations";

/// Rows the migrations themselves write, as a condition that holds while
/// the row is still the migration's: such a table counts as empty, and
/// its seed row gives way to the source's.
const SEEDED_BY_MIGRATIONS: &[(&str, &str)] = &[("audit_chain_head", "last_seq = 0")];

fn seed_condition(table: &str) -> Option<&'static str> {
    SEEDED_BY_MIGRATIONS.iter().find(|(t, _)| *t == table).map(|(_, condition)| *condition)
}

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("the source must be a SQLite database and the target a PostgreSQL database")]
    WrongBackends,
    #[error("the target database is not empty (table {0} has rows): copy only into a new, empty database")]
    TargetNotEmpty(String),
    #[error("table {0} is missing in the target (are both databases at the same wxfed version?)")]
    MissingTable(String),
    #[error("table {table} differs: columns {source_columns} in the source, {target_columns} in the target")]
    ColumnsDiffer { table: String, source_columns: String, target_columns: String },
    #[error("table {table}: {copied} rows copied but {found} found in the target")]
    CountMismatch { table: String, copied: i64, found: i64 },
    #[error("database error: {0}")]
    Db(#[from] diesel::result::Error),
}

/// What was copied, table by table, in copy order.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CopiedTable {
    pub table: String,
    pub rows: i64,
}

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct JsonRow {
    #[diesel(sql_type = BigInt)]
    position: i64,
    #[diesel(sql_type = Text)]
    row: String,
}

/// `"name"` with embedded quotes doubled: table and column names come
/// from the catalog, and are still quoted as identifiers.
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The source's tables, parents before children (foreign keys).
fn tables_in_copy_order(source: &mut DbConn) -> Result<Vec<String>, CopyError> {
    let mut tables: Vec<String> = diesel::sql_query(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )
    .load::<Name>(source)?
    .into_iter()
    .map(|n| n.name)
    .filter(|n| n != MIGRATIONS_TABLE)
    .collect();
    let mut parents = std::collections::HashMap::new();
    for table in &tables {
        let names: Vec<String> = diesel::sql_query("SELECT \"table\" AS name FROM pragma_foreign_key_list(?)")
            .bind::<Text, _>(table)
            .load::<Name>(source)?
            .into_iter()
            .map(|n| n.name)
            .filter(|parent| parent != table)
            .collect();
        parents.insert(table.clone(), names);
    }
    let mut ordered: Vec<String> = Vec::with_capacity(tables.len());
    while !tables.is_empty() {
        let ready = tables
            .iter()
            .position(|t| parents[t].iter().all(|p| ordered.contains(p) || !parents.contains_key(p)))
            // A cycle cannot be ordered; keep the catalog order for it
            // (the transaction then reports the violated key).
            .unwrap_or(0);
        ordered.push(tables.remove(ready));
    }
    Ok(ordered)
}

fn sqlite_columns(source: &mut DbConn, table: &str) -> Result<Vec<String>, CopyError> {
    Ok(diesel::sql_query("SELECT name FROM pragma_table_info(?) ORDER BY cid")
        .bind::<Text, _>(table)
        .load::<Name>(source)?
        .into_iter()
        .map(|n| n.name)
        .collect())
}

fn postgres_columns(target: &mut DbConn, table: &str) -> Result<Vec<String>, CopyError> {
    Ok(diesel::sql_query(
        "SELECT column_name::text AS name FROM information_schema.columns \
         WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
    )
    .bind::<Text, _>(table)
    .load::<Name>(target)?
    .into_iter()
    .map(|n| n.name)
    .collect())
}

fn count(conn: &mut DbConn, table: &str) -> Result<i64, CopyError> {
    Ok(diesel::sql_query(format!("SELECT COUNT(*) AS n FROM {}", quoted(table))).get_result::<Count>(conn)?.n)
}

/// Copies every row of `source` (SQLite) into `target` (PostgreSQL, with
/// wxfed's schema and no rows), then checks each table's count. `progress`
/// hears each table as it is done.
pub fn copy_sqlite_to_postgres(
    source: &mut DbConn,
    target: &mut DbConn,
    mut progress: impl FnMut(&CopiedTable),
) -> Result<Vec<CopiedTable>, CopyError> {
    if !matches!(source, DbConn::Sqlite(_)) || !matches!(target, DbConn::Postgresql(_)) {
        return Err(CopyError::WrongBackends);
    }
    let tables = tables_in_copy_order(source)?;
    let mut plan = Vec::with_capacity(tables.len());
    for table in &tables {
        let source_columns = sqlite_columns(source, table)?;
        let target_columns = postgres_columns(target, table)?;
        if target_columns.is_empty() {
            return Err(CopyError::MissingTable(table.clone()));
        }
        let mut a = source_columns.clone();
        let mut b = target_columns.clone();
        a.sort();
        b.sort();
        if a != b {
            return Err(CopyError::ColumnsDiffer {
                table: table.clone(),
                source_columns: source_columns.join(", "),
                target_columns: target_columns.join(", "),
            });
        }
        let written = match seed_condition(table) {
            None => count(target, table)?,
            Some(seed) => {
                let sql = format!("SELECT COUNT(*) AS n FROM {} WHERE NOT ({seed})", quoted(table));
                diesel::sql_query(sql).get_result::<Count>(target)?.n
            }
        };
        if written > 0 {
            return Err(CopyError::TargetNotEmpty(table.clone()));
        }
        plan.push((table.clone(), source_columns));
    }

    // One read snapshot of the source, one write transaction on the target.
    source.batch_execute("BEGIN")?;
    let copied = target.transaction(|target| {
        // SQLite's timestamps carry no zone: they are UTC.
        target.batch_execute("SET LOCAL TIME ZONE 'UTC'")?;
        let mut copied = Vec::with_capacity(plan.len());
        for (table, columns) in &plan {
            if seed_condition(table).is_some() {
                diesel::sql_query(format!("DELETE FROM {}", quoted(table))).execute(target)?;
            }
            let object =
                columns.iter().map(|c| format!("'{}', {}", c.replace('\'', "''"), quoted(c))).collect::<Vec<_>>();
            let select = format!(
                "SELECT rowid AS position, json_object({}) AS row FROM {} WHERE rowid > ? ORDER BY rowid LIMIT ?",
                object.join(", "),
                quoted(table)
            );
            let insert =
                format!("INSERT INTO {0} SELECT * FROM json_populate_recordset(NULL::{0}, $1::json)", quoted(table));
            let (mut after, mut rows) = (i64::MIN, 0_i64);
            loop {
                let batch: Vec<JsonRow> =
                    diesel::sql_query(&select).bind::<BigInt, _>(after).bind::<BigInt, _>(BATCH).load(source)?;
                let Some(last) = batch.last() else { break };
                after = last.position;
                rows += batch.len() as i64;
                let array = format!("[{}]", batch.iter().map(|r| r.row.as_str()).collect::<Vec<_>>().join(","));
                diesel::sql_query(&insert).bind::<Text, _>(array).execute(target)?;
            }
            let done = CopiedTable { table: table.clone(), rows };
            progress(&done);
            copied.push(done);
        }
        reset_identity_sequences(target, &plan)?;
        Ok::<_, CopyError>(copied)
    });
    let _ = source.batch_execute("COMMIT");
    let copied = copied?;
    for table in &copied {
        let found = count(target, &table.table)?;
        if found != table.rows {
            return Err(CopyError::CountMismatch { table: table.table.clone(), copied: table.rows, found });
        }
    }
    Ok(copied)
}

#[derive(QueryableByName)]
struct Sequence {
    #[diesel(sql_type = Nullable<Text>)]
    sequence: Option<String>,
}

#[derive(QueryableByName)]
struct Done {
    #[diesel(sql_type = Bool)]
    #[allow(dead_code)]
    done: bool,
}

/// Identity columns were given explicit values: their sequences must
/// continue after the copied rows, or the next insert would collide.
fn reset_identity_sequences(target: &mut DbConn, plan: &[(String, Vec<String>)]) -> Result<(), CopyError> {
    for (table, columns) in plan {
        for column in columns {
            let sequence = diesel::sql_query("SELECT pg_get_serial_sequence($1, $2) AS sequence")
                .bind::<Text, _>(quoted(table))
                .bind::<Text, _>(column)
                .get_result::<Sequence>(target)?
                .sequence;
            if let Some(sequence) = sequence {
                diesel::sql_query(format!(
                    "SELECT setval($1::regclass, COALESCE((SELECT MAX({c}) FROM {t}), 0) + 1, false) IS NOT NULL AS done",
                    c = quoted(column),
                    t = quoted(table)
                ))
                .bind::<Text, _>(sequence)
                .get_result::<Done>(target)?;
            }
        }
    }
    Ok(())
}

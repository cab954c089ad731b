//! Liveness and readiness for load balancers and orchestrators.

use std::time::Duration;

use actix_web::{HttpResponse, web};
use diesel::RunQueryDsl;

use crate::db::{self, DbError};
use crate::state::AppState;

/// The process is up.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

/// A readiness probe must answer within its own timeout (Kubernetes
/// defaults to 1 s) whatever the database does: a probe that hangs while
/// PostgreSQL is frozen looks like a dead instance, not an unready one.
const READINESS_DEADLINE: Duration = Duration::from_millis(800);

/// The database answers: this instance can serve requests.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let probe = db::run(&state.db, |conn| -> Result<(), DbError> {
        diesel::sql_query("SELECT 1").execute(conn)?;
        Ok(())
    });
    // On a timeout the blocking probe keeps running on its own thread and
    // ends with the pool's checkout timeout or the statement timeout.
    let result = match tokio::time::timeout(READINESS_DEADLINE, probe).await {
        Ok(result) => result,
        Err(_) => Err(DbError::Unavailable("readiness probe timed out".into())),
    };
    match result {
        Ok(()) => HttpResponse::Ok().json(serde_json::json!({ "status": "ready" })),
        Err(error) => {
            tracing::warn!(%error, "readiness check failed");
            HttpResponse::ServiceUnavailable().json(serde_json::json!({ "status": "database unavailable" }))
        }
    }
}

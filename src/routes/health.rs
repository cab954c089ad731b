//! Liveness and readiness for load balancers and orchestrators.

use actix_web::{HttpResponse, web};
use diesel::RunQueryDsl;

use crate::db::{self, DbError};
use crate::state::AppState;

/// The process is up.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

/// The database answers: this instance can serve requests.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let result = db::run(&state.db, |conn| -> Result<(), DbError> {
        diesel::sql_query("SELECT 1").execute(conn)?;
        Ok(())
    })
    .await;
    match result {
        Ok(()) => HttpResponse::Ok().json(serde_json::json!({ "status": "ready" })),
        Err(error) => {
            tracing::warn!(%error, "readiness check failed");
            HttpResponse::ServiceUnavailable().json(serde_json::json!({ "status": "database unavailable" }))
        }
    }
}

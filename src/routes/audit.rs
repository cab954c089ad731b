//! Public audit checkpoints (issue 9 item 4): signed checkpoints and the
//! public keys that verify them, for copying to where a database
//! administrator cannot rewrite them.

use actix_web::{HttpResponse, web};

use crate::audit::checkpoint;
use crate::db::{self, DbError};
use crate::error::AppError;
use crate::state::AppState;

/// `GET /audit/checkpoints.json`: every checkpoint and audit public key,
/// oldest first. Public: it holds hashes and signatures, no event content.
pub async fn checkpoints_json(state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let published = db::run(&state.db, |conn| checkpoint::published(conn).map_err(DbError::from)).await?;
    Ok(HttpResponse::Ok().insert_header(("Cache-Control", "no-cache")).json(published))
}

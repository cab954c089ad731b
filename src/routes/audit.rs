//! Public audit checkpoints (issue 9 item 4): signed checkpoints and the
//! public keys that verify them, for copying to where a database
//! administrator cannot rewrite them.

use actix_web::{HttpResponse, web};

use crate::audit::checkpoint;
use crate::db::{self, DbError};
use crate::error::AppError;
use crate::state::AppState;

#[derive(Debug, serde::Deserialize)]
pub struct PageQuery {
    after: Option<String>,
}

/// `GET /audit/checkpoints.json[?after=SEQ]`: every audit public key and
/// the checkpoints after `after`, oldest first, a page at a time
/// (`next_after` names the next page). Public: hashes and signatures, no
/// event content.
pub async fn checkpoints_json(
    state: web::Data<AppState>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, AppError> {
    let after = match query.into_inner().after.as_deref().map(str::trim).filter(|a| !a.is_empty()) {
        None => 0,
        Some(text) => text.parse::<i64>().map_err(|_| AppError::BadRequest("audit-error-after".to_owned()))?,
    };
    let published = db::run(&state.db, move |conn| checkpoint::published(conn, after).map_err(DbError::from)).await?;
    Ok(HttpResponse::Ok().insert_header(("Cache-Control", "no-cache")).json(published))
}

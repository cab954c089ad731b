//! `/admin`: counts, the audit chain's head, recent admin actions, search.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};

use super::Admin;
use super::views::{EventView, HomePage};
use crate::db::{self, DbError};
use crate::error::AppError;
use crate::http::render;
use crate::state::AppState;

struct Overview {
    accounts: (i64, bool),
    linked: i64,
    clients: usize,
    head: (i64, String),
    recent: Vec<db::audit::AuditRow>,
}

pub async fn show(state: web::Data<AppState>, admin: Admin) -> Result<HttpResponse, AppError> {
    let overview = db::run(&state.db, |conn| -> Result<Overview, DbError> {
        Ok(Overview {
            // Cheap on a million accounts: see count_estimate.
            accounts: db::accounts::count_estimate(conn)?,
            linked: db::wechat::count_linked_identities(conn)?,
            clients: db::clients::list(conn)?.len(),
            head: db::audit::read_head(conn)?,
            recent: db::audit::latest_in_category(conn, crate::audit::Category::Admin.as_str(), 10)?,
        })
    })
    .await?;
    let page = HomePage {
        nav: true,
        me: admin.account.username,
        accounts: overview.accounts.0,
        accounts_exact: overview.accounts.1,
        linked_identities: overview.linked,
        clients: overview.clients,
        recent: overview.recent.into_iter().map(EventView::from).collect(),
        chain_last_seq: overview.head.0,
        chain_head: overview.head.1.chars().take(16).collect(),
    };
    Ok(render::page(StatusCode::OK, &page))
}

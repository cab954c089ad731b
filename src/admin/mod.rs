//! The admin console (issue 8): server-rendered pages under `/admin` for
//! accounts with role `admin`. Handlers are thin: extract the principal
//! and the form, call one domain function (`accounts::manage`), render.
//!
//! Every response carries `Cache-Control: no-store` (render::builder) and
//! the security headers of the request middleware; every form a CSRF
//! token; sensitive actions need a recent authentication ([`reauth`]).

pub mod accounts;
pub mod audit_log;
pub mod audit_reports;
pub mod clients;
pub mod form;
pub mod home;
pub mod identities;
pub mod import;
pub mod merge;
pub mod principal;
pub mod reauth;
pub mod text;
pub mod views;

pub use principal::{Admin, Auditor, Reader};

use actix_web::web;

/// Every console path, in one place.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/admin")
            .route("", web::get().to(home::show))
            .route("/", web::get().to(home::show))
            // The password prompt and the import page take large forms
            // (an uploaded file, carried): see form::large_forms.
            .service(web::resource("/reauth").app_data(form::large_forms()).post(reauth::submit))
            .route("/accounts", web::get().to(accounts::list))
            .route("/accounts", web::post().to(accounts::create))
            .route("/accounts/new", web::get().to(accounts::new_form))
            .route("/accounts/{id}", web::get().to(accounts::detail))
            .route("/accounts/{id}/profile", web::post().to(accounts::update_profile))
            .route("/accounts/{id}/status", web::post().to(accounts::set_status))
            .route("/accounts/{id}/roles", web::post().to(accounts::set_roles))
            .route("/accounts/{id}/password", web::post().to(accounts::reset_password))
            .route("/accounts/{id}/reveal", web::post().to(accounts::reveal))
            .route("/accounts/{id}/sessions/revoke", web::post().to(accounts::revoke_sessions))
            .route("/accounts/{id}/grants/revoke", web::post().to(accounts::revoke_grant))
            .route("/accounts/{id}/consents/withdraw", web::post().to(accounts::withdraw_consent))
            .route("/accounts/{id}/merge", web::get().to(merge::preview))
            .route("/accounts/{id}/merge", web::post().to(merge::submit))
            .route("/identities", web::get().to(identities::list))
            .route("/identities", web::post().to(identities::provision))
            .route("/identities/new", web::get().to(identities::new_form))
            .route("/identities/{id}", web::get().to(identities::detail))
            .route("/identities/{id}/link", web::post().to(identities::link))
            .route("/identities/{id}/unlink", web::post().to(identities::unlink))
            .route("/identities/{id}/reveal", web::post().to(identities::reveal))
            .route("/clients", web::get().to(clients::list))
            .route("/clients", web::post().to(clients::add))
            .route("/clients/{client_id}", web::get().to(clients::detail))
            .route("/clients/{client_id}", web::post().to(clients::update))
            .route("/clients/{client_id}/secret", web::post().to(clients::rotate_secret))
            .route("/clients/{client_id}/remove", web::post().to(clients::remove))
            .route("/wechat-apps", web::get().to(clients::wechat_apps))
            .route("/wechat-apps", web::post().to(clients::add_app))
            .route("/wechat-apps/{appid}/secret", web::post().to(clients::rotate_app_secret))
            .route("/wechat-apps/{appid}/remove", web::post().to(clients::remove_app))
            .route("/keys", web::get().to(clients::keys_page))
            .route("/keys/rotate", web::post().to(clients::rotate_keys))
            .route("/settings", web::get().to(clients::settings_page))
            .service(web::resource("/import").app_data(form::large_forms()).get(import::form).post(import::submit)),
    );
    // The auditor's console (issue 9); /audit/checkpoints.json is public
    // and lives in startup::routes_table.
    cfg.route("/audit", web::get().to(audit_log::log))
        .route("/audit/events/{seq}", web::get().to(audit_log::event))
        .route("/audit/export", web::get().to(audit_log::export))
        .route("/audit/checkpoints", web::get().to(audit_reports::checkpoints))
        .route("/audit/reports/failed-logins", web::get().to(audit_reports::failed_logins))
        .route("/audit/reports/logins", web::get().to(audit_reports::logins))
        .route("/audit/reports/admin-actions", web::get().to(audit_reports::admin_actions));
}

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

use crate::http::endpoint::endpoint;

/// Every console path, in one place.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/admin")
            .service(endpoint("").get(home::show))
            .service(endpoint("/").get(home::show))
            // The password prompt and the import page take large forms
            // (an uploaded file, carried): see form::large_forms.
            .service(endpoint("/reauth").app_data(form::large_forms()).post(reauth::submit))
            .service(endpoint("/accounts").get(accounts::list).post(accounts::create))
            .service(endpoint("/accounts/new").get(accounts::new_form))
            .service(endpoint("/accounts/{id}").get(accounts::detail))
            .service(endpoint("/accounts/{id}/profile").post(accounts::update_profile))
            .service(endpoint("/accounts/{id}/status").post(accounts::set_status))
            .service(endpoint("/accounts/{id}/roles").post(accounts::set_roles))
            .service(endpoint("/accounts/{id}/password").post(accounts::reset_password))
            .service(endpoint("/accounts/{id}/reveal").post(accounts::reveal))
            .service(endpoint("/accounts/{id}/sessions/revoke").post(accounts::revoke_sessions))
            .service(endpoint("/accounts/{id}/grants/revoke").post(accounts::revoke_grant))
            .service(endpoint("/accounts/{id}/consents/withdraw").post(accounts::withdraw_consent))
            .service(endpoint("/accounts/{id}/merge").get(merge::preview).post(merge::submit))
            .service(endpoint("/identities").get(identities::list).post(identities::provision))
            .service(endpoint("/identities/new").get(identities::new_form))
            .service(endpoint("/identities/{id}").get(identities::detail))
            .service(endpoint("/identities/{id}/link").post(identities::link))
            .service(endpoint("/identities/{id}/unlink").post(identities::unlink))
            .service(endpoint("/identities/{id}/reveal").post(identities::reveal))
            .service(endpoint("/clients").get(clients::list).post(clients::add))
            .service(endpoint("/clients/{client_id}").get(clients::detail).post(clients::update))
            .service(endpoint("/clients/{client_id}/secret").post(clients::rotate_secret))
            .service(endpoint("/clients/{client_id}/remove").post(clients::remove))
            .service(endpoint("/wechat-apps").get(clients::wechat_apps).post(clients::add_app))
            .service(endpoint("/wechat-apps/{appid}/secret").post(clients::rotate_app_secret))
            .service(endpoint("/wechat-apps/{appid}/remove").post(clients::remove_app))
            .service(endpoint("/keys").get(clients::keys_page))
            .service(endpoint("/keys/rotate").post(clients::rotate_keys))
            .service(endpoint("/settings").get(clients::settings_page))
            .service(endpoint("/import").app_data(form::large_forms()).get(import::form).post(import::submit)),
    );
    // The auditor's console (issue 9); /audit/checkpoints.json is public
    // and lives in startup::routes_table.
    cfg.service(endpoint("/audit").get(audit_log::log))
        .service(endpoint("/audit/events/{seq}").get(audit_log::event))
        .service(endpoint("/audit/export").get(audit_log::export))
        .service(endpoint("/audit/checkpoints").get(audit_reports::checkpoints))
        .service(endpoint("/audit/reports/failed-logins").get(audit_reports::failed_logins))
        .service(endpoint("/audit/reports/logins").get(audit_reports::logins))
        .service(endpoint("/audit/reports/admin-actions").get(audit_reports::admin_actions));
}

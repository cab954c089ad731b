//! The control API under `/__sim/`: JSON in, JSON out, for tests and demos
//! written in any language. Each handler calls the matching
//! [`Simulator`] method; refusals are `{"error": "..."}` with 400, 404 or
//! 409.

use std::collections::BTreeMap;

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use super::model::{Fault, NewApp, NewUser, SimError};
use super::state::Simulator;

/// Registers the control routes.
pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/__sim")
            .app_data(web::JsonConfig::default().error_handler(|error, _req: &HttpRequest| bad_input(error)))
            .app_data(web::QueryConfig::default().error_handler(|error, _req: &HttpRequest| bad_input(error)))
            .route("/healthz", web::get().to(healthz))
            .route("/apps", web::post().to(add_app))
            .route("/users", web::post().to(add_user))
            .route("/identity", web::get().to(identity))
            .route("/codes/jscode", web::post().to(mint_jscode))
            .route("/codes/oauth", web::post().to(mint_oauth_code))
            .route("/codes/phone", web::post().to(mint_phone_code))
            .route("/faults", web::post().to(inject_fault))
            .route("/faults", web::delete().to(clear_faults))
            .route("/content-type", web::post().to(set_content_type))
            .route("/calls", web::get().to(calls))
            .route("/calls", web::delete().to(reset_calls))
            .route("/clock", web::post().to(advance_clock)),
    );
}

/// A body or query string that did not parse: 400 with serde's reason.
fn bad_input(error: impl std::fmt::Display) -> actix_web::Error {
    let response = HttpResponse::BadRequest().json(json!({ "error": error.to_string() }));
    actix_web::error::InternalError::from_response(error.to_string(), response).into()
}

fn refused(error: SimError) -> HttpResponse {
    let body = json!({ "error": error.to_string() });
    match error {
        SimError::UnknownApp(_) | SimError::UnknownUser(_) => HttpResponse::NotFound().json(body),
        SimError::AppExists(_) | SimError::UserExists(_) => HttpResponse::Conflict().json(body),
        SimError::Invalid(_) => HttpResponse::BadRequest().json(body),
    }
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

async fn add_app(sim: web::Data<Simulator>, app: web::Json<NewApp>) -> HttpResponse {
    let app = app.into_inner();
    let appid = app.appid.clone();
    match sim.add_app(app) {
        Ok(()) => HttpResponse::Created().json(json!({ "appid": appid })),
        Err(error) => refused(error),
    }
}

async fn add_user(sim: web::Data<Simulator>, user: web::Json<NewUser>) -> HttpResponse {
    let user = user.into_inner();
    let key = user.key.clone();
    match sim.add_user(user) {
        Ok(()) => HttpResponse::Created().json(json!({ "key": key })),
        Err(error) => refused(error),
    }
}

#[derive(Debug, Deserialize)]
struct IdentityQuery {
    user: String,
    appid: String,
}

async fn identity(sim: web::Data<Simulator>, query: web::Query<IdentityQuery>) -> HttpResponse {
    match sim.identity_of(&query.user, &query.appid) {
        Ok(identity) => HttpResponse::Ok().json(identity),
        Err(error) => refused(error),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CodeRequest {
    appid: String,
    user: String,
    #[serde(default)]
    scope: Option<String>,
}

fn code_response(result: Result<String, SimError>) -> HttpResponse {
    match result {
        Ok(code) => HttpResponse::Ok().json(json!({ "code": code })),
        Err(error) => refused(error),
    }
}

async fn mint_jscode(sim: web::Data<Simulator>, request: web::Json<CodeRequest>) -> HttpResponse {
    code_response(sim.mint_jscode(&request.appid, &request.user))
}

async fn mint_oauth_code(sim: web::Data<Simulator>, request: web::Json<CodeRequest>) -> HttpResponse {
    code_response(sim.mint_oauth_code(&request.appid, &request.user, request.scope.as_deref()))
}

async fn mint_phone_code(sim: web::Data<Simulator>, request: web::Json<CodeRequest>) -> HttpResponse {
    code_response(sim.mint_phone_code(&request.appid, &request.user))
}

async fn inject_fault(sim: web::Data<Simulator>, fault: web::Json<Fault>) -> HttpResponse {
    let fault = fault.into_inner();
    let echo = json!({ "path": fault.path, "times": fault.times });
    match sim.inject_fault(fault) {
        Ok(()) => HttpResponse::Created().json(echo),
        Err(error) => refused(error),
    }
}

async fn clear_faults(sim: web::Data<Simulator>) -> HttpResponse {
    sim.clear_faults();
    HttpResponse::NoContent().finish()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ContentTypeRequest {
    path: String,
    value: String,
}

async fn set_content_type(sim: web::Data<Simulator>, request: web::Json<ContentTypeRequest>) -> HttpResponse {
    match sim.set_content_type(&request.path, &request.value) {
        Ok(()) => HttpResponse::NoContent().finish(),
        Err(error) => refused(error),
    }
}

async fn calls(sim: web::Data<Simulator>) -> HttpResponse {
    let counts: BTreeMap<String, u64> = sim.call_counts();
    HttpResponse::Ok().json(counts)
}

async fn reset_calls(sim: web::Data<Simulator>) -> HttpResponse {
    sim.reset_calls();
    HttpResponse::NoContent().finish()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockRequest {
    advance_secs: u64,
}

async fn advance_clock(sim: web::Data<Simulator>, request: web::Json<ClockRequest>) -> HttpResponse {
    sim.advance_clock(request.advance_secs);
    HttpResponse::Ok().json(json!({ "now": sim.now() }))
}

//! What happens around every call to a WeChat path, before and after its
//! handler: the call is counted, a queued fault may answer instead (so a
//! faulted call never touches codes or tokens), and the Content-Type is
//! set the way WeChat sets it on that path. Control paths (`/__sim/`) pass
//! straight through.

use std::time::Duration;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_TYPE, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpResponse, web};

use super::state::Simulator;
use super::wire::{self, WxError};

/// The middleware function (wrapped with `from_fn`).
pub(super) async fn gate(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let path = req.path().to_owned();
    let sim = req.app_data::<web::Data<Simulator>>().cloned();
    let Some(sim) = sim.filter(|_| !path.starts_with("/__sim")) else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let (fault, content_type) = sim.with(|state| state.enter_call(&path));
    if let Some(ms) = fault.as_ref().and_then(|f| f.delay_ms) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    // The plain-status answer keeps its own Content-Type: it stands for a
    // gateway in front of WeChat, not for WeChat.
    let mut keep_own_type = false;
    let faulty = fault.and_then(|f| {
        let error = f.errcode.map(|code| match f.errmsg {
            Some(errmsg) => WxError::with_msg(code, errmsg),
            None => WxError::new(code),
        });
        let status = f.http_status.and_then(|s| StatusCode::from_u16(s).ok());
        match (status, error) {
            (None, None) => None,
            (None, Some(error)) => Some(HttpResponse::Ok().body(error.body())),
            (Some(status), Some(error)) => Some(HttpResponse::build(status).body(error.body())),
            (Some(status), None) => {
                keep_own_type = true;
                Some(HttpResponse::build(status).content_type("text/plain; charset=utf-8").body(format!(
                    "{} {}",
                    status.as_str(),
                    status.canonical_reason().unwrap_or("")
                )))
            }
        }
    });
    let mut response = match faulty {
        Some(response) => req.into_response(response),
        None => next.call(req).await?.map_into_boxed_body(),
    };
    let value = content_type.or_else(|| wire::default_content_type(&path).map(str::to_owned));
    if let Some(value) = value.filter(|_| !keep_own_type)
        && let Ok(value) = HeaderValue::from_str(&value)
    {
        response.headers_mut().insert(CONTENT_TYPE, value);
    }
    Ok(response)
}

//! Middleware for every response: a request id, one log line per request
//! (method, path, status, time — never the query string, which can carry
//! codes and tokens), and security headers. Also the bounds on a client:
//! a deadline for the request body, a cap on connections per IP, and the
//! answers for methods no route takes (HEAD, OPTIONS, 405).

use std::collections::HashMap;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{Extensions, Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::Method;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use actix_web::{Error, HttpMessage, HttpResponse};
use tracing::Instrument;

use crate::config::RequestLimits;
use crate::state::AppState;

use super::RequestId;

/// Accepts a caller's X-Request-Id only when it is short and plain, so
/// logs cannot be injected through it.
fn incoming_request_id(req: &ServiceRequest) -> Option<String> {
    let value = req.headers().get("x-request-id")?.to_str().ok()?;
    let plain = !value.is_empty()
        && value.len() <= 64
        && value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    plain.then(|| value.to_owned())
}

pub async fn request_context(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<BoxBody>>, Error> {
    let request_id = incoming_request_id(&req).unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let state = req.app_data::<actix_web::web::Data<AppState>>().cloned();
    let secure = state.as_ref().is_some_and(|s| s.settings.secure_cookies());
    if req.conn_data::<ConnectionSlot>().is_some_and(|slot| slot.over_limit) {
        // RFC 6585 §4: too many requests (here: connections) from this client.
        tracing::warn!("too many connections from one client IP; refusing");
        let response = HttpResponse::TooManyRequests()
            .insert_header((header::CONNECTION, "close"))
            .insert_header((header::RETRY_AFTER, "1"))
            .finish();
        return Ok(req.into_response(response).map_into_boxed_body().map_into_left_body());
    }
    // HEAD is answered like GET without the body (RFC 9110 §9.3.2): the
    // routes take GET, and the body is dropped below.
    let is_head = req.method() == Method::HEAD;
    if is_head {
        req.head_mut().method = Method::GET;
    }
    let body_timed_out = state.as_ref().map(|s| s.settings.request_limits).map(|limits| bound_body(&mut req, &limits));
    req.extensions_mut().insert(RequestId(request_id.clone()));
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %req.method(),
        path = %req.path(),
    );
    let started = Instant::now();
    let (result, db_statements) = crate::db::count_statements(next.call(req).instrument(span.clone())).await;
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    match result {
        Ok(response) => {
            let mut response = if body_timed_out.is_some_and(|flag| flag.load(Ordering::Relaxed)) {
                // The body did not arrive in time: whatever the extractor
                // answered, this is a timeout (RFC 9110 §15.5.9), and the
                // connection, with half a body in it, is closed.
                span.in_scope(|| tracing::warn!("request body not received in time"));
                let (request, _) = response.into_parts();
                let timeout = HttpResponse::RequestTimeout().insert_header((header::CONNECTION, "close")).finish();
                ServiceResponse::new(request, timeout).map_into_boxed_body()
            } else {
                response.map_into_boxed_body()
            };
            if is_head {
                response = response.map_body(|_, _| BoxBody::new(()));
            }
            let status = response.status().as_u16();
            span.in_scope(|| tracing::info!(status, elapsed_ms, db_statements, "request finished"));
            // The route's pattern, never the raw path: bounded label values.
            let route = response.request().match_pattern().unwrap_or_else(|| "unmatched".to_owned());
            crate::metrics::request_finished(&route, response.request().method().as_str(), status, elapsed_ms / 1000.0);
            let headers = response.headers_mut();
            if let Ok(value) = HeaderValue::from_str(&request_id) {
                headers.insert(HeaderName::from_static("x-request-id"), value);
            }
            add_security_headers(headers, secure);
            Ok(response.map_into_right_body())
        }
        Err(error) => {
            span.in_scope(|| tracing::warn!(elapsed_ms, db_statements, "request failed before a response"));
            Err(error)
        }
    }
}

fn add_security_headers(headers: &mut actix_web::http::header::HeaderMap, secure: bool) {
    let defaults: [(HeaderName, &str); 4] = [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        // No form-action: browsers apply it to the redirects after a form
        // post, which in OIDC go to the relying party.
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
        ),
    ];
    for (name, value) in defaults {
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    if secure {
        headers.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000"));
    }
}

/// Wraps the request body so that it must arrive within the body timeout;
/// returns the flag that says the deadline passed. Without it a client
/// that starts a POST body and never finishes it holds a connection (and
/// a worker's attention) forever: actix bounds only the request head.
fn bound_body(req: &mut ServiceRequest, limits: &RequestLimits) -> Arc<AtomicBool> {
    let timed_out = Arc::new(AtomicBool::new(false));
    let payload = req.take_payload();
    let deadline = Box::pin(tokio::time::sleep(Duration::from_millis(limits.body_timeout_ms)));
    let stream = DeadlinePayload { inner: payload, deadline, timed_out: timed_out.clone() };
    req.set_payload(Payload::Stream { payload: Box::pin(stream) });
    timed_out
}

struct DeadlinePayload {
    inner: Payload,
    deadline: Pin<Box<tokio::time::Sleep>>,
    timed_out: Arc<AtomicBool>,
}

impl futures_core::Stream for DeadlinePayload {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Poll::Ready(item) = Pin::new(&mut self.inner).poll_next(cx) {
            return Poll::Ready(item);
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            self.timed_out.store(true, Ordering::Relaxed);
            let error = std::io::Error::new(std::io::ErrorKind::TimedOut, "request body not received in time");
            return Poll::Ready(Some(Err(PayloadError::Io(error))));
        }
        Poll::Pending
    }
}

use std::future::Future as _;

/// Counts open connections per client IP (set up by `HttpServer::on_connect`).
#[derive(Clone)]
pub struct ConnectionCounter {
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
    trusted_proxies: Arc<Vec<IpAddr>>,
    limit: usize,
}

/// The per-connection record: released when the connection closes.
pub struct ConnectionSlot {
    ip: IpAddr,
    counted: bool,
    /// This connection is over the per-IP cap; its requests are refused.
    pub over_limit: bool,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        if !self.counted {
            return;
        }
        let mut open = self.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

impl ConnectionCounter {
    pub fn new(trusted_proxies: Vec<IpAddr>, limits: RequestLimits) -> Self {
        Self { open: Arc::default(), trusted_proxies: Arc::new(trusted_proxies), limit: limits.max_connections_per_ip }
    }

    /// Connections from trusted proxies carry many clients and are not
    /// capped.
    pub fn on_connect(&self, connection: &dyn std::any::Any, extensions: &mut Extensions) {
        let Some(ip) =
            connection.downcast_ref::<actix_web::rt::net::TcpStream>().and_then(|s| s.peer_addr().ok()).map(|a| a.ip())
        else {
            return;
        };
        if self.trusted_proxies.contains(&ip) {
            return;
        }
        let mut open = self.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = open.entry(ip).or_insert(0);
        *count += 1;
        let over_limit = *count > self.limit;
        extensions.insert(ConnectionSlot { ip, counted: true, over_limit, open: self.open.clone() });
    }
}

/// The default service: a path no route took (a registered path's other
/// methods are answered by its `http::endpoint`).
pub async fn unmatched() -> HttpResponse {
    actix_web::ResponseError::error_response(&crate::error::AppError::NotFound)
}

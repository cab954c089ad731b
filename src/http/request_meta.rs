//! Who is asking: client IP, user agent, request id.

use std::future::{Ready, ready};
use std::net::IpAddr;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};

use crate::state::AppState;

/// Set by the request-context middleware for every request.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Facts about the request for logs and the audit trail.
#[derive(Debug, Clone)]
pub struct RequestMeta {
    pub ip: String,
    pub user_agent: Option<String>,
    pub request_id: String,
}

impl RequestMeta {
    pub fn from_request(req: &HttpRequest) -> Self {
        let trusted: &[IpAddr] =
            req.app_data::<web::Data<AppState>>().map(|s| s.settings.trusted_proxies.as_slice()).unwrap_or(&[]);
        let peer = req.peer_addr().map(|a| a.ip());
        let ip = client_ip(peer, req.headers().get("x-forwarded-for").and_then(|v| v.to_str().ok()), trusted)
            .map(|ip| ip.to_string())
            .unwrap_or_else(|| "unknown".into());
        let user_agent = req
            .headers()
            .get(actix_web::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(512).collect());
        let request_id = req
            .extensions()
            .get::<RequestId>()
            .map(|id| id.0.clone())
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        Self { ip, user_agent, request_id }
    }
}

/// The client's address. X-Forwarded-For is believed only when the direct
/// peer is a trusted proxy, and then read from the right, skipping our own
/// proxies: the left part is whatever the client chose to send.
pub fn client_ip(peer: Option<IpAddr>, forwarded_for: Option<&str>, trusted: &[IpAddr]) -> Option<IpAddr> {
    let peer = peer?;
    if !trusted.contains(&peer) {
        return Some(peer);
    }
    let Some(header) = forwarded_for else {
        return Some(peer);
    };
    let mut last = peer;
    for hop in header.rsplit(',').map(str::trim) {
        match hop.parse::<IpAddr>() {
            Ok(ip) if trusted.contains(&ip) => last = ip,
            Ok(ip) => return Some(ip),
            Err(_) => return Some(last),
        }
    }
    Some(last)
}

impl FromRequest for RequestMeta {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(Self::from_request(req)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let proxy = ip("10.0.0.1");
        assert_eq!(client_ip(Some(ip("1.2.3.4")), Some("9.9.9.9"), &[proxy]), Some(ip("1.2.3.4")));
        assert_eq!(client_ip(Some(proxy), Some("6.6.6.6, 5.5.5.5"), &[proxy]), Some(ip("5.5.5.5")));
        assert_eq!(client_ip(Some(proxy), Some("5.5.5.5, 10.0.0.1"), &[proxy]), Some(ip("5.5.5.5")));
        assert_eq!(client_ip(Some(proxy), Some("garbage"), &[proxy]), Some(proxy));
        assert_eq!(client_ip(Some(proxy), None, &[proxy]), Some(proxy));
    }
}

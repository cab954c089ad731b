//! Prometheus metrics (issue 12 §2): `GET /metrics` in the Prometheus text
//! format on its own address (`WXFED_METRICS_BIND`, off by default), so
//! the scrape endpoint is never reachable where the provider is public.
//!
//! Counters and histograms are recorded where things happen, through the
//! `metrics` facade (requests in the request middleware, tokens after
//! their commit, logins as their audit events are recorded, WeChat calls
//! in the WeChat client, throttling decisions in the throttle). Gauges of
//! state (pool, audit backlog, checkpoint and key age) are read at scrape
//! time. Label values are bounded: route *patterns* (never raw paths),
//! grant types, client ids (registered by admins), outcome words.

use std::sync::OnceLock;

use actix_web::{HttpResponse, web};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::db::{self, DbError};
use crate::state::AppState;

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Request latency buckets, in seconds (a token request is ~1–10 ms).
const LATENCY_BUCKETS: &[f64] = &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// Installs the process-wide recorder once (a process may build several
/// applications, as the tests do); `None` if another recorder is in place.
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                .ok()?
                .install_recorder()
                .map_err(|e| tracing::warn!(error = %e, "metrics recorder not installed"))
                .ok()
        })
        .as_ref()
}

/// A finished HTTP request (route pattern, e.g. `/admin/accounts/{id}`).
pub fn request_finished(route: &str, method: &str, status: u16, seconds: f64) {
    let labels = [("route", route.to_owned()), ("method", method.to_owned()), ("status", status.to_string())];
    metrics::counter!("wxfed_http_requests_total", &labels).increment(1);
    let labels = [("route", route.to_owned()), ("method", method.to_owned())];
    metrics::histogram!("wxfed_http_request_duration_seconds", &labels).record(seconds);
}

/// Tokens issued (after their commit).
pub fn token_issued(grant_type: &str, client_id: &str) {
    let labels = [("grant_type", grant_type.to_owned()), ("client_id", client_id.to_owned())];
    metrics::counter!("wxfed_tokens_issued_total", &labels).increment(1);
}

/// A login attempt, from its audit event: `surface` is the event's action
/// after `login.` (password, wechat).
pub fn login(surface: &str, outcome: &str) {
    let labels = [("surface", surface.to_owned()), ("outcome", outcome.to_owned())];
    metrics::counter!("wxfed_logins_total", &labels).increment(1);
}

/// A call to WeChat's API: `endpoint` the path, `errcode` WeChat's answer
/// reduced to a class (`ok`, `invalid_code`, `rate_limited`, `other`,
/// `transport`).
pub fn wechat_call(endpoint: &str, errcode_class: &str, seconds: f64) {
    let labels = [("endpoint", endpoint.to_owned()), ("errcode", errcode_class.to_owned())];
    metrics::counter!("wxfed_wechat_calls_total", &labels).increment(1);
    let labels = [("endpoint", endpoint.to_owned())];
    metrics::histogram!("wxfed_wechat_call_duration_seconds", &labels).record(seconds);
}

/// A throttling decision: `kind` (login, wechat_client, wechat_ip),
/// `decision` (allowed, refused).
pub fn throttle(kind: &str, allowed: bool) {
    let labels = [("kind", kind.to_owned()), ("decision", if allowed { "allowed" } else { "refused" }.to_owned())];
    metrics::counter!("wxfed_throttle_decisions_total", &labels).increment(1);
}

/// How long a request waited for a database connection.
/// A request's database work outlived its deadline (answered 503).
pub fn database_deadline_exceeded() {
    metrics::counter!("wxfed_database_deadline_exceeded_total").increment(1);
}

/// A checkpoint the external sink did not take (retried next round).
pub fn audit_sink_failure() {
    metrics::counter!("wxfed_audit_sink_failures_total").increment(1);
}

pub fn pool_wait(seconds: f64) {
    metrics::histogram!("wxfed_db_pool_wait_seconds").record(seconds);
}

/// `GET /metrics`: the gauges read now, then everything in the text format.
pub async fn scrape(state: web::Data<AppState>) -> HttpResponse {
    let Some(handle) = install() else {
        return HttpResponse::ServiceUnavailable().body("metrics recorder unavailable\n");
    };
    let pool = state.db.state();
    metrics::gauge!("wxfed_db_pool_connections").set(f64::from(pool.connections));
    metrics::gauge!("wxfed_db_pool_idle_connections").set(f64::from(pool.idle_connections));
    metrics::gauge!("wxfed_db_pool_max_connections").set(f64::from(state.db.max_size()));
    let keys = state.keys.current();
    let now = chrono::Utc::now();
    for (alg, created_at) in keys.signing_key_creation_times() {
        let age = (now - created_at.and_utc()).num_seconds().max(0);
        metrics::gauge!("wxfed_signing_key_age_seconds", "alg" => alg).set(age as f64);
    }
    // The database part is best effort: a scrape during an outage still
    // answers, with `wxfed_db_up 0`, instead of failing.
    let audit = db::run(&state.db, |conn| -> Result<_, DbError> {
        let backlog = db::audit::pending_status(conn)?;
        let checkpoint = db::audit::latest_checkpoint(conn)?;
        Ok((backlog, checkpoint))
    })
    .await;
    match audit {
        Ok(((pending, _oldest), checkpoint)) => {
            metrics::gauge!("wxfed_db_up").set(1.0);
            metrics::gauge!("wxfed_audit_pending_events").set(pending as f64);
            if let Some(checkpoint) = checkpoint {
                let age = (db::now() - checkpoint.signed_at).num_seconds().max(0);
                metrics::gauge!("wxfed_audit_last_checkpoint_age_seconds").set(age as f64);
                metrics::gauge!("wxfed_audit_last_checkpoint_seq").set(checkpoint.seq as f64);
            }
        }
        Err(_) => metrics::gauge!("wxfed_db_up").set(0.0),
    }
    HttpResponse::Ok().content_type("text/plain; version=0.0.4; charset=utf-8").body(handle.render())
}

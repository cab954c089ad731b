//! Turning askama templates into responses.

use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use actix_web::{HttpResponse, HttpResponseBuilder};
use askama::Template;

/// A builder with the headers every page has. Pages are never cached:
/// they carry CSRF tokens and personal data.
pub fn builder(status: StatusCode) -> HttpResponseBuilder {
    let mut b = HttpResponse::build(status);
    b.insert_header((CONTENT_TYPE, "text/html; charset=utf-8")).insert_header((CACHE_CONTROL, "no-store"));
    b
}

/// Renders `template` with `status`.
pub fn page(status: StatusCode, template: &impl Template) -> HttpResponse {
    page_with(builder(status), template)
}

/// Renders into a builder the caller prepared (e.g. with cookies).
pub fn page_with(mut builder: HttpResponseBuilder, template: &impl Template) -> HttpResponse {
    match template.render() {
        Ok(body) => builder.body(body),
        Err(error) => {
            tracing::error!(%error, "template rendering failed");
            HttpResponse::InternalServerError()
                .insert_header((CONTENT_TYPE, "text/plain; charset=utf-8"))
                .body("Internal error")
        }
    }
}

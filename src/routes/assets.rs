//! Static files, compiled into the binary so it runs from anywhere and
//! needs no CDN.

use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use actix_web::{HttpResponse, web};

const FILES: &[(&str, &str, &str)] =
    &[("wxfed.css", "text/css; charset=utf-8", include_str!("../../static/wxfed.css"))];

pub async fn file(name: web::Path<String>) -> HttpResponse {
    match FILES.iter().find(|(n, _, _)| *n == name.as_str()) {
        Some((_, content_type, body)) => HttpResponse::Ok()
            .insert_header((CONTENT_TYPE, *content_type))
            .insert_header((CACHE_CONTROL, "public, max-age=3600"))
            .body(*body),
        None => HttpResponse::NotFound().finish(),
    }
}

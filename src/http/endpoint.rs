//! One URL and the methods it takes, for the route table:
//! `endpoint(paths::TOKEN).post(oidc::token::token)`. Besides routing, an
//! endpoint answers the methods it does not take with `405` and its own
//! `Allow` list (RFC 9110 §15.5.6: the methods *this* resource supports),
//! and `OPTIONS` with `204` and the same list (§9.3.7). HEAD is served as
//! GET without the body by the request middleware (§9.3.2), so a GET
//! endpoint lists HEAD too.

use actix_web::dev::{AppService, HttpServiceFactory};
use actix_web::http::{StatusCode, header};
use actix_web::{FromRequest, Handler, HttpResponse, Resource, Responder, guard, web};

pub struct Endpoint {
    resource: Resource,
    methods: Vec<&'static str>,
    /// The 405 as an RFC 9457 problem (`application/problem+json`), for
    /// the management API; otherwise plain text.
    problem_errors: bool,
}

/// The endpoint at `path` (relative to its scope, if any).
pub fn endpoint(path: &str) -> Endpoint {
    Endpoint { resource: web::resource(path), methods: Vec::new(), problem_errors: false }
}

impl Endpoint {
    pub fn get<F, Args>(mut self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.resource = self.resource.route(web::get().to(handler));
        self.methods.extend(["GET", "HEAD"]);
        self
    }

    pub fn post<F, Args>(mut self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.resource = self.resource.route(web::post().to(handler));
        self.methods.push("POST");
        self
    }

    pub fn put<F, Args>(mut self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.resource = self.resource.route(web::put().to(handler));
        self.methods.push("PUT");
        self
    }

    pub fn delete<F, Args>(mut self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.resource = self.resource.route(web::delete().to(handler));
        self.methods.push("DELETE");
        self
    }

    /// Answer other methods with an RFC 9457 problem document.
    pub fn problem_errors(mut self) -> Self {
        self.problem_errors = true;
        self
    }

    /// Data for this endpoint's extractors only (e.g. a larger form limit).
    pub fn app_data<U: 'static>(mut self, data: U) -> Self {
        self.resource = self.resource.app_data(data);
        self
    }

    fn allow(&self) -> String {
        let mut methods = self.methods.clone();
        methods.push("OPTIONS");
        methods.join(", ")
    }
}

impl HttpServiceFactory for Endpoint {
    fn register(self, config: &mut AppService) {
        let allow = self.allow();
        let options = allow.clone();
        let problem_errors = self.problem_errors;
        self.resource
            .route(web::route().guard(guard::Options()).to(move || {
                let allow = options.clone();
                async move { HttpResponse::NoContent().insert_header((header::ALLOW, allow)).finish() }
            }))
            .default_service(web::to(move || {
                let allow = allow.clone();
                async move {
                    let mut response = HttpResponse::build(StatusCode::METHOD_NOT_ALLOWED);
                    response.insert_header((header::ALLOW, allow));
                    if problem_errors {
                        response.content_type("application/problem+json").body(
                            r#"{"type":"about:blank","title":"Method Not Allowed","status":405,"detail":"See the Allow header for the methods this resource takes."}"#,
                        )
                    } else {
                        response.content_type("text/plain; charset=utf-8").body("method not allowed")
                    }
                }
            }))
            .register(config);
    }
}

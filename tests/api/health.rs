use crate::helpers::spawn_app;

#[actix_web::test]
async fn liveness_and_readiness_answer_ok() {
    let (app, _db) = spawn_app().await;
    let live = app.get("/healthz").await;
    assert_eq!(live.status(), 200);
    assert!(live.headers().contains_key("x-request-id"));
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.json::<serde_json::Value>().await.unwrap()["status"], "ready");
}

#[actix_web::test]
async fn unknown_paths_get_a_404_page_with_security_headers() {
    let (app, _db) = spawn_app().await;
    let response = app.get("/no/such/page").await;
    assert_eq!(response.status(), 404);
    let headers = response.headers();
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(headers["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"));
    assert!(response.text().await.unwrap().contains("Page not found"));
}

#[actix_web::test]
async fn static_css_is_served_from_the_binary() {
    let (app, _db) = spawn_app().await;
    let response = app.get("/static/wxfed.css").await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/css"));
    assert_eq!(app.get("/static/../Cargo.toml").await.status(), 404);
}

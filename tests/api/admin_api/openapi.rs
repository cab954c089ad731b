//! The served OpenAPI document: valid OpenAPI 3.1 (checked by
//! openapi-spec-validator), and exactly the route table's /api/admin
//! operations, each protected as it says.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::{Api, validate_with_python};

/// `(METHOD, path)` of every `.route(paths::API_ADMIN_…, web::method()…)`
/// line of the route table (src/api/mod.rs), with the constants' values
/// from src/http/paths.rs.
fn route_table() -> BTreeSet<(String, String)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let paths = std::fs::read_to_string(root.join("src/http/paths.rs")).unwrap();
    let constants: BTreeMap<String, String> = paths
        .lines()
        .filter_map(|line| {
            let rest = line.trim().strip_prefix("pub const ")?;
            let (name, value) = rest.split_once(": &str = \"")?;
            Some((name.to_owned(), value.trim_end_matches("\";").to_owned()))
        })
        .collect();
    let table = std::fs::read_to_string(root.join("src/api/mod.rs")).unwrap();
    let mut routes = BTreeSet::new();
    // `.service(api(paths::NAME).get(handler).post(handler))`, one per path.
    for piece in table.split(".service(api(paths::").skip(1) {
        let (name, rest) = piece.split_once(')').unwrap();
        let rest = rest.split(';').next().unwrap();
        let path = constants.get(name).unwrap_or_else(|| panic!("{name} is not in paths.rs"));
        for method in ["get", "post", "put", "delete"] {
            if rest.contains(&format!(".{method}(")) {
                routes.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    assert!(routes.len() > 5, "the route table was not read: {routes:?}");
    routes
}

fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            out.insert((method.to_uppercase(), path.clone()));
        }
    }
    out
}

#[actix_rt::test]
async fn the_document_is_openapi_3_1_and_lists_every_route() {
    let api = Api::new().await;
    let doc = api.document().await;
    assert_eq!(doc["openapi"], "3.1.0");
    let report = validate_with_python(&api.db, &doc, None);
    assert_eq!(report["failures"], serde_json::json!([]));
    // Every operation of the route table is documented, and nothing else
    // (the document itself is public and not an operation of it).
    let mut routes = route_table();
    routes.remove(&("GET".to_owned(), "/api/admin/openapi.json".to_owned()));
    assert_eq!(documented(&doc), routes);
    // The security scheme is client credentials at this instance's token endpoint.
    let scheme = &doc["components"]["securitySchemes"]["client_credentials"];
    assert_eq!(scheme["flows"]["clientCredentials"]["tokenUrl"], format!("{}/token", api.app.address));
    assert!(scheme["flows"]["clientCredentials"]["scopes"]["wxfed:admin"].is_string());
    assert_eq!(doc["servers"][0]["url"], api.app.address);
}

#[actix_rt::test]
async fn every_documented_operation_needs_a_token_and_the_document_says_which_scope() {
    let api = Api::new().await;
    let doc = api.document().await;
    for (method, path) in documented(&doc) {
        let op = &doc["paths"][&path][method.to_lowercase()];
        let scopes: BTreeSet<String> = op["security"]
            .as_array()
            .unwrap_or_else(|| panic!("{method} {path} has no security"))
            .iter()
            .flat_map(|r| r["client_credentials"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_owned()))
            .collect();
        assert!(scopes.contains("wxfed:admin"), "{method} {path}: {scopes:?}");
        let concrete =
            path.replace("{id}", "x").replace("{client_id}", "x").replace("{appid}", "x").replace("{seq}", "1");
        let answer = api.call(&method, &concrete, &[], None, None).await;
        answer.problem(401, "invalid_token");
        // The audit scope: allowed exactly where the document says.
        let audit = api.call(&method, &concrete, &[], Some(&api.audit), None).await;
        if scopes.contains("wxfed:audit") {
            assert_eq!(method, "GET", "{path}: the audit scope is read-only");
            assert_ne!(audit.status, 403, "{method} {path}: {}", audit.text);
        } else {
            audit.problem(403, "insufficient_scope");
        }
    }
}

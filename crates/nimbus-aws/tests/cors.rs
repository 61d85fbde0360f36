//! CORS on AWS at the configuration level: the HTTP API's `CorsConfiguration` that lowering
//! writes for the CORS table's manifest (`tests/shims/cases/cors.json`), and the table's
//! requests evaluated against it with API Gateway's documented CORS behaviour
//! (`nimbus_test_support::cors::aws`). What API Gateway itself does with the configuration is
//! not exercised here; the deploy tests check the driver writes and reads it back.

mod common;

use nimbus_provider::ProviderId;
use nimbus_test_support::{self as support, cors};
use serde_json::json;

fn errors(manifest: &str) -> Vec<String> {
    let g = support::graph_str("aws", manifest);
    nimbus_provider::check(&g, ProviderId::Aws.capabilities())
        .into_iter()
        .filter(|d| d.is_error())
        .map(|d| format!("{} ({})", d.message, d.label.unwrap_or_default()))
        .collect()
}

#[test]
fn a_wildcard_subdomain_origin_is_refused_with_the_reason() {
    let refused = cors::table()["refused"]["aws"]
        .as_str()
        .unwrap()
        .to_string();
    let errors = errors(&cors::manifest(None));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains(&refused) && errors[0].contains("documents exact origins"),
        "{errors:?}"
    );
}

#[test]
fn the_cors_table_against_the_http_api_configuration() {
    let t = cors::table();
    let manifest = cors::manifest(t["refused"]["aws"].as_str());
    assert_eq!(errors(&manifest), Vec::<String>::new());
    let g = support::graph_str("aws", &manifest);
    let rs = nimbus_aws::lower(&g, &support::build_of(&g), &common::settings(&g)).unwrap();
    let api = rs
        .iter()
        .find(|r| r.kind == nimbus_aws::kinds::API)
        .expect("an API");
    let config = &api.properties["CorsConfiguration"];
    assert_eq!(
        *config,
        json!({
            "AllowOrigins": ["https://app.example.com"],
            "AllowMethods": ["GET", "POST"],
            "AllowHeaders": ["content-type", "x-trace"],
            "ExposeHeaders": ["x-request-id"],
            "AllowCredentials": true,
            "MaxAge": 600,
        })
    );
    let failures: Vec<String> = t["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|case| {
            let answer = cors::aws(config, &cors::Request::of(case));
            cors::check(case, "aws", &answer).err()
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn routes_whose_cors_differs_are_refused_as_the_api_has_one() {
    let manifest = r#"
version: 1
service: api
http:
  cors: { origins: ["https://app.example.com"] }
functions:
  a:
    handler: a.py:handler
    triggers:
      - http: { method: GET, path: /a }
      - http: { method: GET, path: /b, cors: false }
      - http: { method: GET, path: /c, cors: { origins: ["https://other.example.com"] } }
"#;
    let errors = errors(manifest);
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors
            .iter()
            .all(|e| e.contains("one CORS configuration for the whole API")),
        "{errors:?}"
    );
    // Without CORS anywhere, the API has no configuration at all.
    let g = support::graph_str(
        "aws",
        "version: 1\nservice: api\nfunctions:\n  a:\n    handler: a.py:handler\n    triggers: [ { http: { method: GET, path: /a } } ]\n",
    );
    let rs = nimbus_aws::lower(&g, &support::build_of(&g), &common::settings(&g)).unwrap();
    let api = rs
        .iter()
        .find(|r| r.kind == nimbus_aws::kinds::API)
        .unwrap();
    assert!(api.properties.get("CorsConfiguration").is_none());
}

//! CORS on GCP: API Gateway has no CORS setting, so the OpenAPI document routes `OPTIONS` of a
//! CORS path to the function without any `security` (browsers send preflights without keys),
//! and the function's package carries the policy its shim applies. The table itself runs
//! through the shims under functions-framework (`tests/shims/*/…gcp_cors…`) on the policy
//! checked here to be the packager's (`tests/shims/cases/cors-policy.json`; `BLESS=1`
//! rewrites it).

mod common;

use nimbus_gcp::kinds;
use nimbus_graph::TriggerSpec;
use nimbus_provider::ProviderId;
use nimbus_test_support::{self as support, cors};
use serde_json::json;

fn errors(manifest: &str) -> Vec<String> {
    let g = support::graph_str("gcp", manifest);
    nimbus_provider::check(&g, ProviderId::Gcp.capabilities())
        .into_iter()
        .filter(|d| d.is_error())
        .map(|d| format!("{} ({})", d.message, d.label.unwrap_or_default()))
        .collect()
}

#[test]
fn the_tables_policy_is_what_the_shim_is_tested_with() {
    let manifest = cors::manifest(None);
    assert_eq!(
        errors(&manifest),
        Vec::<String>::new(),
        "gcp takes `*.domain`"
    );
    let g = support::graph_str("gcp", &manifest);
    let TriggerSpec::Http {
        cors: Some(policy), ..
    } = &g.functions["api"].triggers[0].spec
    else {
        panic!("the route has CORS");
    };
    let mut text = serde_json::to_string_pretty(policy).unwrap();
    text.push('\n');
    support::assert_snapshot(
        &support::repo().join("tests/shims/cases/cors-policy.json"),
        &text,
        "the CORS table's policy",
    );
}

#[test]
fn a_cors_path_routes_options_to_the_function_without_security() {
    let manifest = r#"
version: 1
service: api
providers:
  gcp: { project: my-project, region: europe-west1 }
http:
  cors: { origins: ["https://app.example.com"] }
functions:
  a:
    handler: a.py:handler
    triggers:
      - http: { method: POST, path: "/orders/{id}", auth: { jwt: { issuer: "https://issuer.example", audience: app } } }
  b:
    handler: b.py:handler
    triggers:
      - http: { method: GET, path: /open, cors: false }
"#;
    let g = support::graph_str("gcp", manifest);
    let rs = nimbus_gcp::lower(&g, &support::build_of(&g), &common::settings(&g)).unwrap();
    let config = rs.iter().find(|r| r.kind == kinds::API_CONFIG).unwrap();
    let paths = &config.properties["openapiDocuments"][0]["document"]["contents"]["paths"];
    let post = &paths["/orders/{id}"]["post"];
    let options = &paths["/orders/{id}"]["options"];
    assert!(post.get("security").is_some(), "the route keeps its auth");
    assert!(options.get("security").is_none(), "{options}");
    assert_eq!(options["x-google-backend"], post["x-google-backend"]);
    assert_eq!(options["parameters"], post["parameters"]);
    assert_eq!(options["operationId"], json!("a-http-0-preflight"));
    assert!(
        paths["/open"].get("options").is_none(),
        "a route without CORS gets no OPTIONS operation"
    );
}

#[test]
fn routes_sharing_a_path_must_share_their_cors() {
    let manifest = r#"
version: 1
service: api
http:
  cors: { origins: ["https://app.example.com"] }
functions:
  read:
    handler: a.py:handler
    triggers: [ { http: { method: GET, path: /items } } ]
  write:
    handler: b.py:handler
    triggers: [ { http: { method: POST, path: /items, cors: { origins: ["https://admin.example.com"] } } } ]
"#;
    let errors = errors(manifest);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("shares its path with route `GET /items`"),
        "{errors:?}"
    );
}

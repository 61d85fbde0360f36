//! The routing table (`tests/routing`) against the OpenAPI document of the API config lowering
//! generates, resolved with API Gateway's documented path templating ("Understand path
//! templating": `{var}` matches one non-empty segment, `{var=**}` any rest, a trailing `/`
//! allowed) and its path matcher's order (ESPv2 sorts routes so that at each segment a literal
//! is tried before `*` before `**`, left to right), an operation per method. The function gets
//! the request's own path (`APPEND_PATH_TO_ADDRESS`); its shim then picks the route and reads
//! the parameters (checked with the real functions-framework in `tests/shims`). A request no
//! route serves may reach a function only through a catch-all's empty tail (`/files/` on
//! `/files/{key=**}`), which the function's shim answers with 404 (`{key+}` takes one segment
//! at least; also checked in `tests/shims`).
//!
//! This checks the configuration, not API Gateway itself (no emulator of it exists).

mod common;

use nimbus_test_support::routing;

/// `(path template, method, function)` of every operation.
fn operations() -> Vec<(String, String, String)> {
    let g = routing::app("gcp");
    let rs = nimbus_gcp::lower(
        &g,
        &nimbus_test_support::build_of(&g),
        &common::settings(&g),
    )
    .unwrap();
    let config = rs
        .iter()
        .find(|r| r.kind == "gcp.apigateway.config")
        .expect("an API config");
    let doc = &config.properties["openapiDocuments"][0]["document"]["contents"];
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let backend = &op["x-google-backend"];
            assert_eq!(backend["path_translation"], "APPEND_PATH_TO_ADDRESS");
            let function = backend["address"]["$ref"].as_str().unwrap();
            ops.push((
                path.clone(),
                method.to_uppercase(),
                function.rsplit('/').next().unwrap().to_string(),
            ));
        }
    }
    ops
}

/// The segment kinds of a template: 0 literal, 1 `{var}`, 2 `{var=**}` (3 when the tail it
/// takes is empty); `None` if `path` does not match it.
fn matches(template: &str, path: &str) -> Option<Vec<u8>> {
    let t: Vec<&str> = template.split('/').skip(1).collect();
    let p: Vec<&str> = path.split('/').skip(1).collect();
    let mut kinds = Vec::new();
    for (i, seg) in t.iter().enumerate() {
        if seg.ends_with("=**}") {
            // `**` takes zero or more characters, slashes included
            kinds.push(if p[i.min(p.len())..].concat().is_empty() {
                3
            } else {
                2
            });
            return (p.len() > i).then_some(kinds);
        }
        let part = p.get(i)?;
        if seg.starts_with('{') {
            if part.is_empty() {
                return None;
            }
            kinds.push(1);
        } else if part == seg {
            kinds.push(0);
        } else {
            return None;
        }
    }
    let trailing_slash = p.len() == t.len() + 1 && p.last() == Some(&"");
    (t.len() == p.len() || trailing_slash).then_some(kinds)
}

/// The function API Gateway calls for `method` `path`, and whether it reached it through a
/// catch-all's empty tail only.
fn select(ops: &[(String, String, String)], method: &str, path: &str) -> Option<(String, bool)> {
    ops.iter()
        .filter(|(_, m, _)| m == method)
        .filter_map(|(t, _, f)| matches(t, path).map(|k| (k, f)))
        .min_by(|a, b| a.0.cmp(&b.0))
        .map(|(k, f)| (f.clone(), k.last() == Some(&3)))
}

#[test]
fn the_routing_table_reaches_the_same_functions() {
    let ops = operations();
    let mut failures = Vec::new();
    for row in routing::table() {
        let got = match select(&ops, &row.method, &row.path) {
            // the shim finds no neutral route and answers 404
            Some((_, true)) if row.function.is_none() => None,
            other => other.map(|(f, _)| f),
        };
        if got != row.function {
            failures.push(format!("{row}: got {got:?}, want {:?}", row.function));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn any_leaves_named_methods_to_their_routes() {
    let ops = operations();
    let on = |path: &str, method: &str| {
        ops.iter()
            .find(|(p, m, _)| p == path && m == method)
            .map(|(_, _, f)| f.as_str())
    };
    assert_eq!(on("/api/orders/{id}", "GET"), Some("orders-get"));
    assert_eq!(on("/api/orders/{id}", "POST"), Some("orders-any"));
    assert_eq!(on("/api/orders/{id}", "HEAD"), Some("orders-any"));
    assert_eq!(on("/api/{path=**}", "GET"), Some("catch-all"));
    assert_eq!(on("/files/{key=**}", "PUT"), Some("files"));
}

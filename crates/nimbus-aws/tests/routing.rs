//! The routing table (`tests/routing`) against the HTTP API routes lowering generates, resolved
//! with API Gateway's documented route selection for HTTP APIs ("Routing API requests"): a full
//! match for route and method first, then a match with a greedy `{proxy+}` variable, each the
//! most specific first (literal segments over variables, left to right), an explicit method
//! before `ANY`; nothing else (no `$default` route is generated) is a 404.
//!
//! This checks the configuration, not API Gateway itself (no emulator routes HTTP APIs); the
//! function's shim then reads the parameters from the raw path (`tests/shims/*/routing`).

mod common;

use std::collections::BTreeMap;

use nimbus_test_support::routing::{self, Row, decode_segment};

/// `(method, path template, function)` of every route of the API.
fn routes() -> Vec<(String, String, String)> {
    let g = routing::app("aws");
    let rs = nimbus_aws::lower(
        &g,
        &nimbus_test_support::build_of(&g),
        &common::settings(&g),
    )
    .unwrap();
    rs.iter()
        .filter(|r| r.kind == "aws.apigatewayv2.route")
        .map(|r| {
            let key = r.properties["RouteKey"].as_str().unwrap();
            let (method, path) = key.split_once(' ').unwrap();
            let integration = r.properties["Target"]["$ref"].as_str().unwrap();
            let function = integration.rsplit('/').next().unwrap();
            (method.to_string(), path.to_string(), function.to_string())
        })
        .collect()
}

/// The path variables of `template` for `path`, by API Gateway's template rules, or `None`.
fn matches(template: &str, path: &str) -> Option<BTreeMap<String, String>> {
    let t: Vec<&str> = template
        .split('/')
        .skip(1)
        .filter(|s| !s.is_empty())
        .collect();
    let p: Vec<&str> = path.split('/').skip(1).filter(|s| !s.is_empty()).collect();
    let mut vars = BTreeMap::new();
    for (i, seg) in t.iter().enumerate() {
        match seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(name) if name.ends_with('+') => {
                if p.len() <= i {
                    return None;
                }
                let rest: Vec<String> = p[i..].iter().map(|s| decode_segment(s)).collect();
                vars.insert(name.trim_end_matches('+').to_string(), rest.join("/"));
                return Some(vars);
            }
            Some(name) => {
                vars.insert(name.to_string(), decode_segment(p.get(i)?));
            }
            None if p.get(i).map(|s| decode_segment(s)).as_deref() == Some(*seg) => {}
            None => return None,
        }
    }
    (t.len() == p.len()).then_some(vars)
}

/// The route API Gateway selects for `method` `path`.
fn select<'a>(
    routes: &'a [(String, String, String)],
    method: &str,
    path: &str,
) -> Option<&'a (String, String, String)> {
    let candidates = routes
        .iter()
        .filter(|(m, t, _)| (m == method || m == "ANY") && matches(t, path).is_some());
    // literal segments count from the left: the first position where one has a literal and the
    // other a variable decides
    let specificity = |t: &str| -> Vec<u8> {
        t.split('/')
            .skip(1)
            .map(|s| u8::from(s.starts_with('{')))
            .collect()
    };
    candidates.min_by_key(|(m, t, _)| (t.contains("+}"), m == "ANY", specificity(t)))
}

#[test]
fn the_routing_table_resolves_as_everywhere() {
    let routes = routes();
    assert_eq!(routes.len(), 7, "{routes:?}");
    let mut failures = Vec::new();
    for row in routing::table() {
        let Row {
            method,
            path,
            function,
            route,
            params,
        } = &row;
        let got = select(&routes, method, path)
            .map(|(_, t, f)| (f.clone(), t.clone(), matches(t, path).unwrap_or_default()));
        let want = function
            .clone()
            .map(|f| (f, route.clone().unwrap(), params.clone()));
        if got != want {
            failures.push(format!("{row}: got {got:?}, want {want:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn greedy_routes_are_proxy_style_route_keys() {
    let routes = routes();
    assert!(routes.contains(&("GET".into(), "/api/{path+}".into(), "catch-all".into())));
    assert!(routes.contains(&("ANY".into(), "/files/{key+}".into(), "files".into())));
}

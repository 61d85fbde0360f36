//! The routing table (`tests/routing`) against the Function Apps Nimbus generates, resolved as
//! the Functions host does: each function answers on its own app's host name, and the host
//! tries an app's HTTP routes in the alphabetical order of the Azure function names
//! (azure-functions-host issues #3153 and #9876), each an ASP.NET route template (`{x}` one
//! non-empty segment, `{*x}` the rest, possibly empty) with its method list (none: any method).
//!
//! A request of the table is sent to the app of the function that serves it everywhere else;
//! the binding that wins there must be the neutral route (its auth level is the one that
//! applies). A request no route serves must find no binding on any app, or only one the shim
//! then refuses to match (Azure's optional catch-all). This checks the configuration, not the
//! Functions host (no emulator of it runs here); the shim's parameters are checked with the real
//! `azure.functions` types in `tests/shims`.

use nimbus_azure::apps::{Binding, Trigger};
use nimbus_test_support::routing::{self, decode_segment};

fn apps() -> Vec<nimbus_azure::App> {
    nimbus_azure::apps(&routing::app("azure")).unwrap()
}

/// Whether ASP.NET's template `route` (no leading `/`) matches `path`.
fn template_matches(route: &str, path: &str) -> bool {
    let t: Vec<&str> = route.split('/').filter(|s| !s.is_empty()).collect();
    let p: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(decode_segment)
        .collect();
    for (i, seg) in t.iter().enumerate() {
        if seg.starts_with("{*") {
            return true;
        }
        let Some(part) = p.get(i) else { return false };
        if !seg.starts_with('{') && !seg.eq_ignore_ascii_case(part) {
            return false;
        }
    }
    t.len() == p.len()
}

/// The binding the host runs for `method` `path` on `app`, trying routes in name order.
fn select<'a>(app: &'a nimbus_azure::App, method: &str, path: &str) -> Option<&'a Binding> {
    let mut http: Vec<&Binding> = app
        .bindings
        .iter()
        .filter(|b| matches!(b.trigger, Trigger::Http { .. }))
        .collect();
    http.sort_by(|a, b| a.name.cmp(&b.name));
    http.into_iter().find(|b| {
        let Trigger::Http {
            method: m, route, ..
        } = &b.trigger
        else {
            return false;
        };
        m.as_deref().is_none_or(|m| m == method) && template_matches(route, path)
    })
}

fn neutral_path(b: &Binding) -> &str {
    match &b.trigger {
        Trigger::Http { path, .. } => path,
        _ => unreachable!(),
    }
}

#[test]
fn the_routing_table_resolves_as_everywhere_on_each_apps_host() {
    let apps = apps();
    let mut failures = Vec::new();
    for row in routing::table() {
        match &row.function {
            Some(f) => {
                let app = apps.iter().find(|a| &a.function == f).unwrap();
                let got = select(app, &row.method, &row.path).map(neutral_path);
                if got != row.route.as_deref() {
                    failures.push(format!(
                        "{row} on {f}'s host: got {got:?}, want {:?}",
                        row.route
                    ));
                }
            }
            None => {
                for app in &apps {
                    let Some(b) = select(app, &row.method, &row.path) else {
                        continue;
                    };
                    // only an empty catch-all tail may reach a binding; the shim finds no
                    // neutral route for it (`{x+}` takes one segment at least)
                    if !neutral_path(b).ends_with("+}") {
                        failures.push(format!(
                            "{row}: served by {} on {}'s host",
                            b.name, app.function
                        ));
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn routes_of_one_app_are_named_in_precedence_order() {
    let apps = apps();
    let files = apps.iter().find(|a| a.function == "files").unwrap();
    let mut names: Vec<(&str, &str)> = files
        .bindings
        .iter()
        .map(|b| (b.name.as_str(), neutral_path(b)))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            ("r00-files-http-2", "/files/index"),
            ("r01-files-http-1", "/files/{name}"),
            ("r02-files-http-0", "/files/{key+}"),
        ]
    );
    // one route: the plain name
    let get = apps.iter().find(|a| a.function == "orders-get").unwrap();
    assert_eq!(get.bindings[0].name, "orders-get-http-0");
}

//! Holding the routes' CORS policies against what the provider's platform can express
//! (`[triggers.http.cors]` in its capabilities): how far one configuration reaches (the whole
//! API, one function, one route), and whether `scheme://*.domain` origins are accepted. What a
//! platform does not enforce (`reflects`: Azure answers preflights for any method and header) is
//! documented in the capabilities and `docs/cors.md`, not warned about on every validation.

use std::collections::BTreeMap;

use nimbus_diagnostic::Diagnostic;
use nimbus_graph::{AppGraph, CorsPolicy, TriggerNode, TriggerSpec};

use crate::Capabilities;
use crate::capabilities::CorsScope;

/// Every CORS problem of `graph` on the provider described by `caps`.
pub(crate) fn check(graph: &AppGraph, caps: &Capabilities, diags: &mut Vec<Diagnostic>) {
    let routes: Vec<(&str, &TriggerNode, Option<&CorsPolicy>)> = graph
        .functions
        .values()
        .flat_map(|f| {
            f.triggers.iter().filter_map(move |t| match &t.spec {
                TriggerSpec::Http { cors, .. } => Some((f.name.as_str(), t, cors.as_ref())),
                _ => None,
            })
        })
        .collect();
    if routes.iter().all(|(_, _, c)| c.is_none()) {
        return;
    }
    let Some(cap) = caps
        .trigger(nimbus_graph::TriggerKind::Http)
        .and_then(|t| t.cors.as_ref())
    else {
        if let Some(c) = routes.iter().find_map(|(_, _, c)| *c) {
            diags.push(Diagnostic::error(
                c.spans.block,
                format!("{} cannot answer cross-origin requests (CORS)", caps.name),
            ));
        }
        return;
    };
    // One configuration per scope: every route in it must resolve to the same CORS.
    let mut groups: BTreeMap<&str, Vec<(&TriggerNode, Option<&CorsPolicy>)>> = BTreeMap::new();
    for (function, t, c) in &routes {
        let key = match cap.scope {
            CorsScope::Api => "",
            CorsScope::Function => function,
            CorsScope::Route => continue,
        };
        groups.entry(key).or_default().push((t, *c));
    }
    for routes in groups.values() {
        let (first, first_cors) = routes[0];
        for (t, c) in &routes[1..] {
            if *c != first_cors {
                let span = c.map(|c| c.spans.block).unwrap_or(t.span);
                let what = match cap.scope {
                    CorsScope::Api => "the whole API",
                    _ => "each function",
                };
                diags.push(
                    Diagnostic::error(
                        span,
                        format!(
                            "{} has one CORS configuration for {what}; route `{}` differs from \
                             route `{}`",
                            caps.name,
                            route_of(t),
                            route_of(first)
                        ),
                    )
                    .with_label("different CORS than the other routes")
                    .with_hint(
                        cap.scope_note
                            .clone()
                            .unwrap_or_else(|| "give these routes the same `cors`".into()),
                    ),
                );
            }
        }
    }
    if let Some(why) = &cap.per_path {
        let mut by_path: BTreeMap<&str, (&TriggerNode, Option<&CorsPolicy>)> = BTreeMap::new();
        for (_, t, c) in &routes {
            let TriggerSpec::Http { path, .. } = &t.spec else {
                continue;
            };
            let (first, first_cors) = *by_path.entry(path.as_str()).or_insert((t, *c));
            if *c != first_cors {
                diags.push(
                    Diagnostic::error(
                        c.map(|c| c.spans.block).unwrap_or(t.span),
                        format!(
                            "route `{}` shares its path with route `{}` but not its CORS",
                            route_of(t),
                            route_of(first)
                        ),
                    )
                    .with_label(format!("on {}, {why}", caps.name))
                    .with_hint("give every route on this path the same `cors`"),
                );
            }
        }
    }
    if cap.wildcard_subdomains {
        return;
    }
    // `http.cors` reaches every route: each origin is reported once.
    let mut reported = Vec::new();
    for c in routes.iter().filter_map(|(_, _, c)| *c) {
        for (origin, span) in c.origins.iter().zip(&c.spans.origins) {
            if origin.contains("://*.") && !reported.contains(span) {
                reported.push(*span);
                diags.push(
                    Diagnostic::error(
                        *span,
                        format!("{} cannot allow every subdomain with `{origin}`", caps.name),
                    )
                    .with_label(cap.wildcard_note.clone().unwrap_or_default())
                    .with_hint("list each front-end origin exactly"),
                );
            }
        }
    }
}

fn route_of(t: &TriggerNode) -> String {
    match &t.spec {
        TriggerSpec::Http { method, path, .. } => format!("{method} {path}"),
        other => other.kind().to_string(),
    }
}

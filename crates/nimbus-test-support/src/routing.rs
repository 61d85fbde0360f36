//! The routing table (`tests/routing/table.json`) and its app (`tests/routing/nimbus.yaml`):
//! requests with the function, route and path parameters that must serve them on every target
//! (`docs/routing.md`). Each provider's tests evaluate it against their generated configuration.

use std::collections::BTreeMap;

use nimbus_graph::AppGraph;
use serde_json::Value;

/// One request of the table and what must serve it.
#[derive(Debug, Clone)]
pub struct Row {
    /// The request method (`GET`, `HEAD`, …).
    pub method: String,
    /// The request path as sent (percent-encoded).
    pub path: String,
    /// The function that serves it, `None` when no route does.
    pub function: Option<String>,
    /// The route template that matches (when served).
    pub route: Option<String>,
    /// The neutral path parameters (when served).
    pub params: BTreeMap<String, String>,
}

impl std::fmt::Display for Row {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.method, self.path)
    }
}

/// Every row of the table.
pub fn table() -> Vec<Row> {
    let path = crate::repo().join("tests/routing/table.json");
    let doc: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(String::from);
    doc["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| Row {
            method: text(r, "method").unwrap(),
            path: text(r, "path").unwrap(),
            function: text(r, "function"),
            route: text(r, "route"),
            params: r
                .get("params")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect()
}

/// The routing app's graph for `provider`.
pub fn app(provider: &str) -> AppGraph {
    crate::graph_of(provider, &crate::repo().join("tests/routing/nimbus.yaml"))
}

/// Percent-decodes one path segment (malformed escapes stay as they are).
pub fn decode_segment(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (
                (b[i + 1] as char).to_digit(16),
                (b[i + 2] as char).to_digit(16),
            )
        {
            let v = (h * 16 + l) as u8;
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

//! The neutral event `nimbus invoke` sends, the same for every provider.
//!
//! Its kind is `--event-type`, else the kind of the function's own triggers — never the data's
//! `type` field, which is data like any other. `--raw` sends the data as a whole neutral event
//! (checked against the function's trigger kinds; an HTTP event's path is routed). An HTTP
//! event is routed like the gateway routes: `--path` (or a saved event's `path`) is matched
//! against the function's routes to fill the route and path parameters; without one, the
//! function's route is filled from the data's fields.

use nimbus_graph::TriggerSpec;
use nimbus_local::router::{Routed, Router};
use nimbus_manifest::{Auth, HttpMethod};
use serde_json::{Map, Value, json};

use crate::cli::{EventType, InvokeArgs};
use crate::output::Failure;

/// The neutral event for invoking `function`, whose triggers are `triggers`.
pub fn for_invoke(
    function: &str,
    triggers: &[&TriggerSpec],
    args: &InvokeArgs,
) -> Result<Value, Failure> {
    let data = data(args.data.as_deref())?;
    let kinds = kinds(triggers);
    if args.raw {
        return raw(function, triggers, &kinds, data, args);
    }
    let kind = match args.event_type {
        Some(wanted) => {
            accepts(function, &kinds, wanted)?;
            wanted
        }
        None => match kinds.as_slice() {
            [one] => *one,
            [] => {
                return Err(Failure::user(format!(
                    "`{function}` has no triggers, so the kind of event to send is not known\n  hint: name it with --event-type ({})",
                    names(&all_kinds())
                )));
            }
            several => {
                return Err(Failure::user(format!(
                    "`{function}` has triggers of several kinds ({}); say which event to send\n  hint: add --event-type {}",
                    names(several),
                    several
                        .iter()
                        .map(|k| name(*k))
                        .collect::<Vec<_>>()
                        .join("|")
                )));
            }
        },
    };
    if args.path.is_some() && kind != EventType::Http {
        return Err(Failure::user(format!(
            "--path is for HTTP events; this is a `{}` event",
            name(kind)
        )));
    }
    let trigger = triggers.iter().copied().find(|t| kind_of(t) == kind);
    let source = trigger
        .and_then(|t| t.resource())
        .unwrap_or("manual")
        .to_string();
    Ok(match kind {
        EventType::Http => http(function, &routes(triggers), data, args.path.as_deref())?,
        EventType::Queue | EventType::Topic => {
            let items = match data {
                Some(Value::Array(items)) => items,
                Some(other) => vec![other],
                None => vec![json!("")],
            };
            let messages: Vec<Value> = items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    let mut m = json!({ "id": format!("manual-{i}"), "body": body_text(item), "attributes": {} });
                    if kind == EventType::Queue {
                        m["receive_count"] = json!(1);
                    }
                    m
                })
                .collect();
            json!({ "type": name(kind), "source": source, "messages": messages })
        }
        EventType::Schedule => {
            json!({ "type": "schedule", "name": "manual", "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true) })
        }
        EventType::Bucket => {
            let d = data.unwrap_or(json!({}));
            json!({ "type": "bucket", "bucket": source, "key": d.get("key").cloned().unwrap_or(json!("")), "size": d.get("size").cloned().unwrap_or(Value::Null), "action": d.get("action").cloned().unwrap_or(json!("created")) })
        }
        EventType::Table => {
            let d = data.unwrap_or(json!({}));
            json!({ "type": "table", "table": source, "action": d.get("action").cloned().unwrap_or(json!("insert")), "key": d.get("key").cloned().unwrap_or(json!({})), "old": d.get("old").cloned().unwrap_or(Value::Null), "new": d.get("new").cloned().unwrap_or(Value::Null) })
        }
    })
}

/// What a handler's neutral result says failed, if anything: the messages it listed in
/// `failed` for a queue or topic event (docs/function-contract.md, partial batch failure).
pub fn failed_messages(event: &Value, result: &Value) -> Option<Vec<String>> {
    if !matches!(event["type"].as_str(), Some("queue" | "topic")) {
        return None;
    }
    let failed = result.get("failed")?.as_array()?;
    let ids: Vec<String> = failed
        .iter()
        .map(|id| id.as_str().map_or_else(|| id.to_string(), str::to_string))
        .collect();
    (!ids.is_empty()).then_some(ids)
}

/// An unknown function, with the known ones.
pub fn unknown_function<'a>(
    function: &str,
    whence: &str,
    known: impl Iterator<Item = &'a str>,
) -> Failure {
    let known: Vec<String> = known.map(|n| format!("`{n}`")).collect();
    Failure::user(format!(
        "no function `{function}` in {whence}\n  hint: the functions are {}",
        known.join(", ")
    ))
}

/// `--data`: JSON, or `@file` with JSON.
fn data(text: Option<&str>) -> Result<Option<Value>, Failure> {
    let Some(text) = text else {
        return Ok(None);
    };
    let (source, text) = match text.strip_prefix('@') {
        Some(path) => (
            path.to_string(),
            std::fs::read_to_string(path).map_err(|e| {
                Failure::User(anyhow::Error::new(e).context(format!("reading `{path}`")))
            })?,
        ),
        None => ("--data".to_string(), text.to_string()),
    };
    serde_json::from_str::<Value>(&text).map(Some).map_err(|e| {
        Failure::user(format!("{source} is not valid JSON: {e} (line {}, column {})\n  hint: quote the JSON in single quotes: --data '{{\"key\": \"value\"}}'", e.line(), e.column()))
    })
}

/// `--raw`: the data is the neutral event.
fn raw(
    function: &str,
    triggers: &[&TriggerSpec],
    kinds: &[EventType],
    data: Option<Value>,
    args: &InvokeArgs,
) -> Result<Value, Failure> {
    let Some(Value::Object(event)) = data else {
        return Err(Failure::user(
            "--raw needs --data with a JSON object: a neutral event with its `type` (see docs/function-contract.md)",
        ));
    };
    let kind = event
        .get("type")
        .and_then(Value::as_str)
        .and_then(|t| all_kinds().into_iter().find(|k| name(*k) == t))
        .ok_or_else(|| {
            Failure::user(format!(
                "with --raw, the data is a neutral event: its `type` must be one of {}",
                names(&all_kinds())
            ))
        })?;
    if let Some(wanted) = args.event_type
        && wanted != kind
    {
        return Err(Failure::user(format!(
            "--event-type {} contradicts the raw event's `type` `{}`",
            name(wanted),
            name(kind)
        )));
    }
    accepts(function, kinds, kind)?;
    match kind {
        EventType::Http => routed(function, &routes(triggers), event, args.path.as_deref()),
        _ if args.path.is_some() => Err(Failure::user(format!(
            "--path is for HTTP events; this is a `{}` event",
            name(kind)
        ))),
        _ => Ok(Value::Object(event)),
    }
}

/// Refuses an event of `kind` for a function that has no trigger of that kind.
fn accepts(function: &str, kinds: &[EventType], kind: EventType) -> Result<(), Failure> {
    if kinds.is_empty() || kinds.contains(&kind) {
        return Ok(());
    }
    Err(Failure::user(format!(
        "`{function}` has no `{}` trigger, so it never gets a `{}` event; its triggers: {}\n  hint: {}",
        name(kind),
        name(kind),
        names(kinds),
        match kinds {
            [one] => format!("leave out --event-type (it is `{}`)", name(*one)),
            _ => format!(
                "use --event-type {}",
                kinds.iter().map(|k| name(*k)).collect::<Vec<_>>().join("|")
            ),
        }
    )))
}

/// One HTTP route of the function.
struct Route {
    method: HttpMethod,
    path: String,
}

fn routes(triggers: &[&TriggerSpec]) -> Vec<Route> {
    triggers
        .iter()
        .filter_map(|t| match t {
            TriggerSpec::Http { method, path, .. } => Some(Route {
                method: *method,
                path: path.clone(),
            }),
            _ => None,
        })
        .collect()
}

fn router(routes: &[Route]) -> Router {
    let mut router = Router::default();
    for r in routes {
        router.add(r.method, &r.path, "", Auth::None);
    }
    router
}

fn route_list(routes: &[Route]) -> String {
    if routes.is_empty() {
        return "none".into();
    }
    routes
        .iter()
        .map(|r| format!("`{} {}`", r.method, r.path))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A path matched against a function's routes.
struct PathMatch {
    method: String,
    route: String,
    params: Map<String, Value>,
    query: Map<String, Value>,
}

/// `path` (with an optional `?query`) matched against `routes` for `method` (any method when
/// unset): the method, the route's pattern, its path parameters and the query.
fn match_path(
    function: &str,
    routes: &[Route],
    method: Option<&str>,
    path: &str,
) -> Result<PathMatch, Failure> {
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let router = router(routes);
    let methods: Vec<String> = match method {
        Some(m) => vec![m.to_ascii_uppercase()],
        None => routes.iter().map(|r| r.method.to_string()).collect(),
    };
    let mut allowed = Vec::new();
    for m in &methods {
        let method = if m == "ANY" { "POST" } else { m.as_str() };
        match router.route(method, path) {
            Routed::Found(found) => {
                let method = method.to_string();
                let params = found
                    .params
                    .iter()
                    .map(|(k, v)| (k.clone(), json!(v)))
                    .collect();
                let query = query
                    .split('&')
                    .filter(|p| !p.is_empty())
                    .map(|pair| {
                        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                        (
                            nimbus_local::router::percent_decode(k),
                            json!(nimbus_local::router::percent_decode(v)),
                        )
                    })
                    .collect();
                return Ok(PathMatch {
                    method,
                    route: found.route.pattern.clone(),
                    params,
                    query,
                });
            }
            Routed::MethodNotAllowed(m) => allowed = m,
            Routed::NotFound => {}
        }
    }
    Err(Failure::user(format!(
        "`{path}` matches no route of `{function}`{}; its routes: {}",
        if allowed.is_empty() {
            String::new()
        } else {
            format!(
                " for {} (it allows {})",
                methods.join(", "),
                allowed.join(", ")
            )
        },
        route_list(routes)
    )))
}

/// The HTTP event for `--data` (and `--path`).
fn http(
    function: &str,
    routes: &[Route],
    data: Option<Value>,
    path: Option<&str>,
) -> Result<Value, Failure> {
    let (method, route, params, mut query, path) = match path {
        Some(path) => {
            let PathMatch {
                method,
                route,
                params,
                query,
            } = match_path(function, routes, None, path)?;
            let bare = path.split_once('?').map_or(path, |(p, _)| p).to_string();
            (method, route, params, query, bare)
        }
        None => {
            let Some(route) = routes.first() else {
                return Err(Failure::user(format!(
                    "`{function}` has no HTTP route to send the event to\n  hint: give the request's path with --path /..."
                )));
            };
            let mut params = Map::new();
            let mut missing = Vec::new();
            let path = fill(&route.path, |name| {
                let value = data.as_ref().and_then(|d| d.get(name)).map(body_text);
                if value.is_none() {
                    missing.push(name.to_string());
                }
                let value = value.unwrap_or_default();
                params.insert(name.to_string(), json!(value));
                value
            });
            if !missing.is_empty() {
                return Err(Failure::user(format!(
                    "the route `{} {}` of `{function}` needs {}\n  hint: give {} in --data (`--data '{{\"{}\": \"...\"}}'`), or the whole path with --path",
                    route.method,
                    route.path,
                    missing
                        .iter()
                        .map(|m| format!("`{m}`"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    if missing.len() == 1 { "it" } else { "them" },
                    missing[0]
                )));
            }
            let method = match route.method {
                HttpMethod::Any if data.is_some() => "POST".to_string(),
                HttpMethod::Any => "GET".to_string(),
                m => m.to_string(),
            };
            (method, route.path.clone(), params, Map::new(), path)
        }
    };
    let bodyless = method == "GET" || method == "HEAD";
    let body = match (&data, bodyless) {
        (Some(d), false) => json!(body_text(d)),
        _ => Value::Null,
    };
    // A GET has no body: the data's fields that are not path parameters become the query.
    if bodyless && let Some(Value::Object(fields)) = &data {
        for (k, v) in fields {
            if !params.contains_key(k) && !query.contains_key(k) {
                query.insert(k.clone(), json!(body_text(v)));
            }
        }
    }
    Ok(
        json!({ "type": "http", "method": method, "path": path, "route": route, "path_params": params, "query": query, "headers": { "content-type": "application/json" }, "body": body, "is_base64": false, "source_ip": "127.0.0.1" }),
    )
}

/// A saved (raw) HTTP event, routed: its `path` (or `--path`) is matched against the function's
/// routes to fill `route` and `path_params`; without a path, its route's path is filled from
/// its `path_params`. Missing fields get their defaults.
fn routed(
    function: &str,
    routes: &[Route],
    mut event: Map<String, Value>,
    path: Option<&str>,
) -> Result<Value, Failure> {
    let method = event
        .get("method")
        .and_then(Value::as_str)
        .map(str::to_string);
    let path = path.map(str::to_string).or_else(|| {
        event
            .get("path")
            .and_then(Value::as_str)
            .map(str::to_string)
    });
    match path {
        Some(path) => {
            let PathMatch {
                method,
                route,
                params,
                query,
            } = match_path(function, routes, method.as_deref(), &path)?;
            let bare = path.split_once('?').map_or(path.as_str(), |(p, _)| p);
            event.insert("method".into(), json!(method));
            event.insert("path".into(), json!(bare));
            event.insert("route".into(), json!(route));
            event.insert("path_params".into(), Value::Object(params));
            if !query.is_empty() {
                event.insert("query".into(), Value::Object(query));
            }
        }
        None => {
            let wanted = event.get("route").and_then(Value::as_str);
            let route = match wanted {
                Some(w) => routes.iter().find(|r| r.path == w).ok_or_else(|| {
                    Failure::user(format!(
                        "the event's route `{w}` is not a route of `{function}`; its routes: {}",
                        route_list(routes)
                    ))
                })?,
                None => routes.first().ok_or_else(|| {
                    Failure::user(format!(
                        "the event has no `path` and `{function}` has no HTTP route\n  hint: add a `path` to the event, or --path"
                    ))
                })?,
            };
            let given = event.get("path_params").cloned().unwrap_or(json!({}));
            let mut missing = Vec::new();
            let path = fill(&route.path, |name| match given.get(name) {
                Some(v) => body_text(v),
                None => {
                    missing.push(format!("`{name}`"));
                    String::new()
                }
            });
            if !missing.is_empty() {
                return Err(Failure::user(format!(
                    "the event has no `path`, and its `path_params` lack {} for the route `{}`\n  hint: add the request's `path` to the event, or --path",
                    missing.join(", "),
                    route.path
                )));
            }
            let method = method.unwrap_or_else(|| match route.method {
                HttpMethod::Any => "POST".into(),
                m => m.to_string(),
            });
            event.insert("method".into(), json!(method.to_ascii_uppercase()));
            event.insert("path".into(), json!(path));
            event.insert("route".into(), json!(route.path));
            event.insert("path_params".into(), given);
        }
    }
    for (key, default) in [
        ("query", json!({})),
        ("headers", json!({})),
        ("body", Value::Null),
        ("is_base64", json!(false)),
        ("source_ip", json!("127.0.0.1")),
    ] {
        event.entry(key).or_insert(default);
    }
    Ok(Value::Object(event))
}

/// `pattern` with each `{name}` (or `{name+}`) replaced by `value(name)`.
fn fill(pattern: &str, mut value: impl FnMut(&str) -> String) -> String {
    pattern
        .split('/')
        .map(
            |seg| match seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) => value(name.trim_end_matches('+')),
                None => seg.to_string(),
            },
        )
        .collect::<Vec<_>>()
        .join("/")
}

fn body_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn kind_of(t: &TriggerSpec) -> EventType {
    use clap::ValueEnum as _;
    EventType::from_str(t.kind().as_str(), false).expect("every trigger kind is an event type")
}

/// The distinct kinds of `triggers`, in their order.
fn kinds(triggers: &[&TriggerSpec]) -> Vec<EventType> {
    let mut kinds = Vec::new();
    for t in triggers {
        let k = kind_of(t);
        if !kinds.contains(&k) {
            kinds.push(k);
        }
    }
    kinds
}

fn all_kinds() -> Vec<EventType> {
    vec![
        EventType::Http,
        EventType::Queue,
        EventType::Topic,
        EventType::Schedule,
        EventType::Bucket,
        EventType::Table,
    ]
}

fn name(kind: EventType) -> &'static str {
    match kind {
        EventType::Http => "http",
        EventType::Queue => "queue",
        EventType::Topic => "topic",
        EventType::Schedule => "schedule",
        EventType::Bucket => "bucket",
        EventType::Table => "table",
    }
}

fn names(kinds: &[EventType]) -> String {
    kinds
        .iter()
        .map(|k| format!("`{}`", name(*k)))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(
        data: Option<&str>,
        event_type: Option<EventType>,
        raw: bool,
        path: Option<&str>,
    ) -> InvokeArgs {
        InvokeArgs {
            function: Some("f".into()),
            data: data.map(str::to_string),
            event_type,
            raw,
            path: path.map(str::to_string),
            which: crate::cli::Which { service: None },
        }
    }

    fn http_trigger(method: HttpMethod, path: &str) -> TriggerSpec {
        TriggerSpec::Http {
            method,
            path: path.into(),
            auth: Auth::None,
            cors: None,
        }
    }

    fn queue_trigger() -> TriggerSpec {
        TriggerSpec::Queue {
            resource: "jobs".into(),
            batch_size: 10,
        }
    }

    fn error(r: Result<Value, Failure>) -> String {
        match r {
            Err(Failure::User(e)) => e.to_string(),
            other => panic!("expected a user error, got {other:?}"),
        }
    }

    #[test]
    fn a_type_field_is_data_and_the_kind_comes_from_the_triggers() {
        let q = queue_trigger();
        let e = for_invoke(
            "f",
            &[&q],
            &args(Some(r#"{"type": "table", "n": 1}"#), None, false, None),
        )
        .unwrap();
        assert_eq!(e["type"], "queue");
        assert_eq!(e["source"], "jobs");
        assert_eq!(e["messages"][0]["body"], r#"{"type":"table","n":1}"#);
    }

    #[test]
    fn an_event_type_the_function_has_no_trigger_for_is_refused() {
        let h = http_trigger(HttpMethod::Get, "/orders/{id}");
        let text = error(for_invoke(
            "f",
            &[&h],
            &args(None, Some(EventType::Queue), false, None),
        ));
        assert!(
            text.contains("`f` has no `queue` trigger") && text.contains("its triggers: `http`"),
            "{text}"
        );
        let text = error(for_invoke(
            "f",
            &[&h],
            &args(
                Some(r#"{"type": "queue", "messages": []}"#),
                None,
                true,
                None,
            ),
        ));
        assert!(text.contains("has no `queue` trigger"), "{text}");
        let s = TriggerSpec::Schedule {
            expression: "rate(5 minutes)".into(),
            timezone: "UTC".into(),
        };
        let text = error(for_invoke("f", &[&h, &s], &args(None, None, false, None)));
        assert!(
            text.contains("several kinds (`http`, `schedule`)")
                && text.contains("--event-type http|schedule"),
            "{text}"
        );
    }

    #[test]
    fn http_events_are_routed() {
        let get = http_trigger(HttpMethod::Get, "/orders/{id}");
        let del = http_trigger(HttpMethod::Delete, "/orders/{id}/items/{item}");
        let triggers = [&get, &del];
        // From the data: path parameters, the rest is the query of a GET.
        let e = for_invoke(
            "f",
            &triggers,
            &args(Some(r#"{"id": 42, "verbose": true}"#), None, false, None),
        )
        .unwrap();
        assert_eq!(
            (e["method"].as_str(), e["path"].as_str()),
            (Some("GET"), Some("/orders/42"))
        );
        assert_eq!(e["path_params"], json!({ "id": "42" }));
        assert_eq!(e["query"], json!({ "verbose": "true" }));
        assert_eq!(e["body"], Value::Null);
        // A missing parameter is an error, not an empty segment.
        let text = error(for_invoke("f", &triggers, &args(None, None, false, None)));
        assert!(text.contains("needs `id`"), "{text}");
        // --path is matched against every route of the function.
        let e = for_invoke(
            "f",
            &triggers,
            &args(None, None, false, Some("/orders/7/items/x%20y?all=1")),
        )
        .unwrap();
        assert_eq!(e["method"], "DELETE");
        assert_eq!(e["route"], "/orders/{id}/items/{item}");
        assert_eq!(e["path_params"], json!({ "id": "7", "item": "x y" }));
        assert_eq!(e["query"], json!({ "all": "1" }));
        let text = error(for_invoke(
            "f",
            &triggers,
            &args(None, None, false, Some("/carts/1")),
        ));
        assert!(
            text.contains("`/carts/1` matches no route of `f`")
                && text.contains("`GET /orders/{id}`"),
            "{text}"
        );
    }

    #[test]
    fn a_saved_http_event_is_routed_and_completed() {
        let get = http_trigger(HttpMethod::Get, "/orders/{id}");
        let saved =
            r#"{"type": "http", "method": "GET", "path": "/orders/o-9", "headers": {"x-a": "1"}}"#;
        let e = for_invoke("f", &[&get], &args(Some(saved), None, true, None)).unwrap();
        assert_eq!(e["route"], "/orders/{id}");
        assert_eq!(e["path_params"], json!({ "id": "o-9" }));
        assert_eq!(e["headers"], json!({ "x-a": "1" }), "kept");
        assert_eq!(
            (e["query"].clone(), e["is_base64"].clone()),
            (json!({}), json!(false))
        );
        // Without a path: the route's path from its path parameters.
        let saved = r#"{"type": "http", "path_params": {"id": "o-1"}}"#;
        let e = for_invoke("f", &[&get], &args(Some(saved), None, true, None)).unwrap();
        assert_eq!(
            (e["method"].as_str(), e["path"].as_str()),
            (Some("GET"), Some("/orders/o-1"))
        );
        // A method the route does not allow.
        let saved = r#"{"type": "http", "method": "POST", "path": "/orders/o-9"}"#;
        let text = error(for_invoke(
            "f",
            &[&get],
            &args(Some(saved), None, true, None),
        ));
        assert!(text.contains("for POST (it allows GET)"), "{text}");
    }

    #[test]
    fn failed_messages_come_from_queue_and_topic_results() {
        let queue = json!({ "type": "queue" });
        assert_eq!(
            failed_messages(&queue, &json!({ "failed": ["m-1"] })),
            Some(vec!["m-1".to_string()])
        );
        assert_eq!(failed_messages(&queue, &json!({ "failed": [] })), None);
        assert_eq!(failed_messages(&queue, &Value::Null), None);
        assert_eq!(
            failed_messages(&json!({ "type": "http" }), &json!({ "failed": ["x"] })),
            None
        );
    }
}

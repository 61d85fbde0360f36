//! The HTTP entry: one API Gateway for all routes of the app.
//!
//! An API (`{service}-{stage}`), an API config holding an OpenAPI 2.0 document, and a gateway in
//! the region serving it. Every route is a path with an operation per method (`ANY`: every
//! method), with an `x-google-backend` whose address is the function's URL and
//! `path_translation: APPEND_PATH_TO_ADDRESS`, so the function receives the request's own path
//! and the shim matches the route and reads its parameters (`{id}` is an OpenAPI path parameter;
//! a greedy `{rest+}` becomes API Gateway's `{rest=**}`). The backend deadline is the function's
//! timeout. The gateway calls functions as the invoker account (`gatewayServiceAccount`).
//!
//! Auth: `api_key` routes require an API key (`securityDefinitions` of type `apiKey` in the
//! manifest's header; keys are created in the project and must be enabled for the API's managed
//! service); `jwt` routes require a JWT from the issuer for the audience
//! (`x-google-issuer`/`x-google-audiences`; the JWKS is found by OpenID discovery).
//!
//! CORS: API Gateway has none, so a path with a CORS route also gets an `OPTIONS` operation
//! without `security` to the same function, whose shim answers the preflight.
//!
//! API configs are immutable: the config's id ends with a hash of the document, so a change of
//! routes creates a new config, moves the gateway to it, and then deletes the old one.

use std::collections::BTreeMap;

use nimbus_graph::TriggerSpec;
use nimbus_manifest::{Auth, HttpMethod};
use serde_json::{Map, Value, json};

use super::{Cx, INVOKER, out};
use crate::error::GcpError;
use crate::kinds;
use crate::names;

/// The logical name of the API and the gateway.
pub(crate) const HTTP: &str = "http";

const METHODS: [&str; 7] = ["get", "put", "post", "delete", "options", "head", "patch"];

pub(super) fn api(cx: &mut Cx) -> Result<(), GcpError> {
    type Route = (String, String, HttpMethod, String, Auth, u64, bool);
    let routes: Vec<Route> = cx
        .graph
        .functions
        .values()
        .flat_map(|f| {
            f.triggers.iter().filter_map(move |t| match &t.spec {
                TriggerSpec::Http {
                    method,
                    path,
                    auth,
                    cors,
                } => Some((
                    f.name.clone(),
                    super::trigger_key(&t.id).replace('/', "-"),
                    *method,
                    path.clone(),
                    auth.clone(),
                    f.timeout_ms.div_ceil(1000),
                    cors.is_some(),
                )),
                _ => None,
            })
        })
        .collect();
    if routes.is_empty() {
        return Ok(());
    }
    let mut paths: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    let mut security = Map::new();
    let mut functions = Vec::new();
    for (function, operation, method, path, auth, timeout, cors) in routes {
        let (template, params) = openapi_path(&path);
        if template.starts_with("/_nimbus") {
            return Err(GcpError::Unsupported {
                function,
                what: format!("route `{path}`: paths under `/_nimbus` are reserved"),
            });
        }
        let mut op = json!({
            "operationId": operation,
            "x-google-backend": {
                "address": out(kinds::FUNCTION, &function, "uri"),
                "path_translation": "APPEND_PATH_TO_ADDRESS",
                "deadline": timeout as f64,
            },
            "responses": { "default": { "description": "the function's response" } },
        });
        if !params.is_empty() {
            op["parameters"] = Value::Array(
                params
                    .iter()
                    .map(|p| json!({ "name": p, "in": "path", "required": true, "type": "string" }))
                    .collect(),
            );
        }
        match &auth {
            Auth::None => {}
            Auth::ApiKey(key) => {
                let name = format!(
                    "api_key_{}",
                    key.header.to_ascii_lowercase().replace('-', "_")
                );
                security.insert(
                    name.clone(),
                    json!({ "type": "apiKey", "name": key.header, "in": "header" }),
                );
                op["security"] = json!([{ name: [] }]);
            }
            Auth::Jwt(jwt) => {
                let name = format!(
                    "jwt_{}",
                    names::short_hash(&format!("{}\n{}", jwt.issuer, jwt.audience))
                );
                security.insert(
                    name.clone(),
                    json!({
                        "type": "oauth2",
                        "flow": "implicit",
                        "authorizationUrl": "",
                        "x-google-issuer": jwt.issuer,
                        "x-google-audiences": jwt.audience,
                    }),
                );
                op["security"] = json!([{ name: [] }]);
            }
        }
        let entry = paths.entry(template).or_default();
        let methods: Vec<&str> = match method {
            HttpMethod::Any => METHODS.to_vec(),
            m => vec![method_key(m)],
        };
        for m in methods {
            let mut op = op.clone();
            if method == HttpMethod::Any {
                // a named method on the same path wins over `ANY`, whichever comes first
                if entry.contains_key(m) {
                    continue;
                }
                op["operationId"] = json!(format!("{operation}-{m}"));
            }
            entry.insert(m.to_string(), op);
        }
        if cors {
            // Browsers send preflights without credentials or keys: `OPTIONS` reaches the
            // function unauthenticated, and its shim answers it.
            let preflight = entry.entry("options").or_insert_with(|| {
                let mut op = op.clone();
                op["operationId"] = json!(format!("{operation}-preflight"));
                op
            });
            if let Some(o) = preflight.as_object_mut() {
                o.remove("security");
            }
        }
        if !functions.contains(&function) {
            functions.push(function);
        }
    }
    let mut doc = json!({
        "swagger": "2.0",
        "info": {
            "title": format!("{}-{}", cx.service(), cx.stage()),
            "description": format!("HTTP routes of {}/{} (generated by nimbus)", cx.service(), cx.stage()),
            "version": "1.0.0",
        },
        "schemes": ["https"],
        "produces": ["application/json"],
        "paths": paths,
    });
    if !security.is_empty() {
        doc["securityDefinitions"] = Value::Object(security);
    }

    let api = names::api(cx.service(), cx.stage());
    let api_path = format!("projects/{}/locations/global/apis/{api}", cx.project());
    let props = json!({
        "name": api_path,
        "displayName": format!("{}-{}", cx.service(), cx.stage()),
        "labels": cx.label_map(),
    });
    cx.push(kinds::API, HTTP, Some(api.clone()), props);

    let hash = {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(serde_json::to_vec(&doc).expect("json"));
        digest
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let config = names::api_config(cx.service(), cx.stage(), &hash);
    let props = json!({
        "name": format!("{api_path}/configs/{config}"),
        "displayName": config,
        "gatewayServiceAccount": out(kinds::SERVICE_ACCOUNT, INVOKER, "email"),
        "openapiDocuments": [{ "document": { "path": "openapi.json", "contents": doc } }],
        "labels": cx.label_map(),
    });
    let config_key = format!("{HTTP}-{}", &hash[..8]);
    let config_id = cx.push(kinds::API_CONFIG, &config_key, Some(config.clone()), props);
    cx.depend(&config_id, &super::id(kinds::API, HTTP));
    for f in &functions {
        cx.depend(&config_id, &super::id(kinds::SERVICE_IAM_MEMBER, f));
    }

    let gateway = names::gateway(cx.service(), cx.stage());
    let props = json!({
        "name": format!("{}/gateways/{gateway}", cx.settings.location()),
        "apiConfig": out(kinds::API_CONFIG, &config_key, "name"),
        "displayName": format!("{}-{}", cx.service(), cx.stage()),
        "labels": cx.label_map(),
    });
    cx.push(kinds::GATEWAY, HTTP, Some(gateway), props);
    Ok(())
}

fn method_key(m: HttpMethod) -> &'static str {
    match m {
        HttpMethod::Get => "get",
        HttpMethod::Post => "post",
        HttpMethod::Put => "put",
        HttpMethod::Patch => "patch",
        HttpMethod::Delete => "delete",
        HttpMethod::Head => "head",
        HttpMethod::Options => "options",
        HttpMethod::Any => "get",
    }
}

/// `/orders/{id}` → (`/orders/{id}`, [`id`]); `/files/{path+}` → (`/files/{path=**}`, [`path`]).
pub(crate) fn openapi_path(path: &str) -> (String, Vec<String>) {
    let mut params = Vec::new();
    let segments: Vec<String> = path
        .split('/')
        .map(
            |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(p) => {
                    let greedy = p.strip_suffix('+');
                    let name = greedy.unwrap_or(p).to_string();
                    params.push(name.clone());
                    if greedy.is_some() {
                        format!("{{{name}=**}}")
                    } else {
                        format!("{{{name}}}")
                    }
                }
                None => s.to_string(),
            },
        )
        .collect();
    (segments.join("/"), params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(openapi_path("/orders"), ("/orders".into(), vec![]));
        assert_eq!(
            openapi_path("/orders/{id}/items/{item}"),
            (
                "/orders/{id}/items/{item}".into(),
                vec!["id".into(), "item".into()]
            )
        );
        assert_eq!(
            openapi_path("/files/{path+}"),
            ("/files/{path=**}".into(), vec!["path".into()])
        );
    }
}

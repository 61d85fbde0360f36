//! HTTP triggers: one API Gateway HTTP API (v2) for the app.
//!
//! One Lambda proxy integration (payload format 2.0, which the shim reads) per function with
//! http triggers, one route per trigger (`METHOD /path/{param}`, `ANY` for any method, a final
//! `{name+}` greedy), a `$default` stage that deploys every change automatically (its URL is the
//! API's endpoint) and writes one JSON access-log line per request to its own log group, and per route a Lambda permission for `apigateway.amazonaws.com` limited to
//! that route's execute-api ARN. `jwt` auth gets a JWT authorizer (one per issuer and audience,
//! reading `Authorization: Bearer …`); `api_key` auth has no HTTP API equivalent and is
//! rejected for now. CORS is the API's `CorsConfiguration`, one for all routes (the provider
//! check refuses routes whose CORS differs).
//!
//! `http.domain` adds a regional custom domain name (`aws.apigatewayv2.domain_name`, the ACM
//! certificate of `certificate.aws`, TLS 1.2) and an API mapping of the domain's root to the
//! `$default` stage. The DNS record is the user's: `nimbus info` prints the CNAME to create.

use nimbus_graph::{CorsPolicy, FunctionNode, TriggerSpec};
use nimbus_manifest::{Auth, HttpMethod};
use serde_json::json;

use super::{Cx, LOG_RETENTION_DAYS, out, trigger_key};
use crate::error::AwsError;
use crate::kinds;
use crate::names;

/// Longest integration timeout of an HTTP API, in milliseconds.
const MAX_INTEGRATION_MS: u64 = 30_000;
/// The logical name of the app's API.
const API: &str = "http";
/// The logical name of the custom domain and its mapping.
pub(crate) const DOMAIN: &str = "domain";
/// The logical name of its access log group (`/` keeps it apart from function names).
const ACCESS_LOG: &str = "http/access";
/// One JSON line per request in the access log.
const ACCESS_LOG_FORMAT: &str = r#"{"requestId":"$context.requestId","ip":"$context.identity.sourceIp","time":"$context.requestTime","method":"$context.httpMethod","path":"$context.path","routeKey":"$context.routeKey","status":"$context.status","responseLength":"$context.responseLength","latencyMs":"$context.responseLatency","integrationError":"$context.integrationErrorMessage"}"#;

/// The API, if any function has an http trigger.
pub(super) fn api(cx: &mut Cx) -> Result<(), AwsError> {
    let graph = cx.graph;
    let with_http: Vec<&FunctionNode> = graph
        .functions
        .values()
        .filter(|f| {
            f.triggers
                .iter()
                .any(|t| matches!(t.spec, TriggerSpec::Http { .. }))
        })
        .collect();
    if with_http.is_empty() {
        return Ok(());
    }
    let name = names::api(cx.service(), cx.stage());
    let mut props = json!({
        "Name": name,
        "ProtocolType": "HTTP",
        "Description": format!("Nimbus: HTTP routes of {} ({})", cx.service(), cx.stage()),
        "Tags": cx.tag_map(),
    });
    // One CORS configuration for the whole API: the provider check refused routes that differ.
    let cors = with_http
        .iter()
        .flat_map(|f| &f.triggers)
        .find_map(|t| match &t.spec {
            TriggerSpec::Http { cors, .. } => cors.as_ref(),
            _ => None,
        });
    if let Some(c) = cors {
        props["CorsConfiguration"] = cors_configuration(c);
    }
    cx.push(kinds::API, API, Some(name), props);

    let mut routes = Vec::new();
    for f in with_http {
        let props = json!({
            "ApiId": out(kinds::API, API, "id"),
            "IntegrationType": "AWS_PROXY",
            "IntegrationUri": out(kinds::FUNCTION, &f.name, "arn"),
            "PayloadFormatVersion": "2.0",
            "TimeoutInMillis": f.timeout_ms.clamp(50, MAX_INTEGRATION_MS),
        });
        cx.push(kinds::INTEGRATION, &f.name, None, props);
        for t in &f.triggers {
            let TriggerSpec::Http {
                method, path, auth, ..
            } = &t.spec
            else {
                continue;
            };
            let key = trigger_key(&t.id);
            let mut props = json!({
                "ApiId": out(kinds::API, API, "id"),
                "RouteKey": format!("{} {path}", method_key(*method)),
                "Target": out(kinds::INTEGRATION, &f.name, "target"),
                "AuthorizationType": "NONE",
            });
            match auth {
                Auth::None => {}
                Auth::Jwt(jwt) => {
                    let authorizer = authorizer(cx, &jwt.issuer, &jwt.audience);
                    props["AuthorizationType"] = json!("JWT");
                    props["AuthorizerId"] = out(kinds::AUTHORIZER, &authorizer, "id");
                }
                Auth::ApiKey(_) => {
                    return Err(AwsError::Unsupported {
                        function: f.name.clone(),
                        what: format!(
                            "`api_key` auth on `{method} {path}` (API Gateway HTTP APIs have no API keys; use `jwt`)"
                        ),
                    });
                }
            }
            let route = cx.push(kinds::ROUTE, key, None, props);
            routes.push(route);
            let props = json!({
                "FunctionName": out(kinds::FUNCTION, &f.name, "name"),
                "StatementId": statement_id(key),
                "Action": "lambda:InvokeFunction",
                "Principal": "apigateway.amazonaws.com",
                "SourceArn": out(kinds::ROUTE, key, "source_arn"),
            });
            cx.push(kinds::PERMISSION, key, None, props);
        }
    }
    let log_group = format!(
        "/aws/apigateway/{}/access",
        names::api(cx.service(), cx.stage())
    );
    let props = json!({
        "logGroupName": log_group,
        "retentionInDays": LOG_RETENTION_DAYS,
        "tags": cx.tag_map(),
    });
    cx.push(kinds::LOG_GROUP, ACCESS_LOG, Some(log_group), props);
    let props = json!({
        "ApiId": out(kinds::API, API, "id"),
        "StageName": "$default",
        "AutoDeploy": true,
        "AccessLogSettings": {
            "DestinationArn": out(kinds::LOG_GROUP, ACCESS_LOG, "arn"),
            "Format": ACCESS_LOG_FORMAT,
        },
        "Tags": cx.tag_map(),
    });
    let stage = cx.push(kinds::STAGE, "default", None, props);
    for route in routes {
        cx.depend(&stage, &route);
    }
    domain(cx, &stage)
}

/// `http.domain`: a regional custom domain name with the manifest's ACM certificate, and the
/// mapping of its root to the `$default` stage (after the stage exists).
fn domain(cx: &mut Cx, stage: &str) -> Result<(), AwsError> {
    let Some(d) = &cx.graph.domain else {
        return Ok(());
    };
    // `validate -p aws` asks for it first (see providers/aws/capabilities.toml).
    let certificate = d
        .certificate
        .clone()
        .ok_or_else(|| AwsError::DomainCertificate {
            domain: d.name.clone(),
        })?;
    let props = json!({
        "DomainName": d.name,
        "DomainNameConfigurations": [{
            "CertificateArn": certificate,
            "EndpointType": "REGIONAL",
            "SecurityPolicy": "TLS_1_2",
        }],
        "Tags": cx.tag_map(),
    });
    cx.push(kinds::DOMAIN_NAME, DOMAIN, Some(d.name.clone()), props);
    let props = json!({
        "DomainName": out(kinds::DOMAIN_NAME, DOMAIN, "name"),
        "ApiId": out(kinds::API, API, "id"),
        "Stage": "$default",
    });
    let mapping = cx.push(kinds::API_MAPPING, DOMAIN, None, props);
    cx.depend(&mapping, stage);
    Ok(())
}

/// The HTTP API's `CorsConfiguration` for a policy (API Gateway answers preflights with it,
/// before any authorizer, and ignores the integration's own CORS headers).
fn cors_configuration(c: &CorsPolicy) -> serde_json::Value {
    let mut v = json!({
        "AllowOrigins": c.origins,
        "AllowMethods": c.methods,
        "AllowCredentials": c.credentials,
    });
    if !c.allow_headers.is_empty() {
        v["AllowHeaders"] = json!(c.allow_headers);
    }
    if !c.expose_headers.is_empty() {
        v["ExposeHeaders"] = json!(c.expose_headers);
    }
    if let Some(age) = c.max_age_secs {
        v["MaxAge"] = json!(age);
    }
    v
}

/// `ANY` or the method's name, as route keys spell it.
fn method_key(method: HttpMethod) -> String {
    method.to_string()
}

/// The JWT authorizer for `issuer` and `audience`, created on first use; returns its name.
fn authorizer(cx: &mut Cx, issuer: &str, audience: &str) -> String {
    let name = format!(
        "jwt-{}",
        names::short_hash(&format!("{issuer}\n{audience}"))
    );
    let id = super::id(kinds::AUTHORIZER, &name);
    if !cx.out.iter().any(|r| r.id == id) {
        let props = json!({
            "ApiId": out(kinds::API, API, "id"),
            "Name": name,
            "AuthorizerType": "JWT",
            "IdentitySource": ["$request.header.Authorization"],
            "JwtConfiguration": { "Issuer": issuer, "Audience": [audience] },
        });
        cx.push(kinds::AUTHORIZER, &name, None, props);
    }
    name
}

/// The statement id of a trigger's permission: `nimbus-` and the trigger key, `/` as `-`
/// (`[A-Za-z0-9_-]`, at most 100 characters).
pub(super) fn statement_id(trigger_key: &str) -> String {
    names::fit(&format!("nimbus-{}", trigger_key.replace('/', "-")), 100)
}

/// The part of an execute-api ARN after the API id that matches calls to a route:
/// `/*/POST/orders/*` for `POST /orders/{id}` (any stage; `*` for `ANY` and for parameters).
pub(crate) fn route_arn_suffix(route_key: &str) -> String {
    let (method, path) = route_key.split_once(' ').unwrap_or(("ANY", route_key));
    let method = if method == "ANY" { "*" } else { method };
    let path: Vec<&str> = path
        .split('/')
        .map(|s| if s.starts_with('{') { "*" } else { s })
        .collect();
    format!("/*/{method}{}", path.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_arns() {
        assert_eq!(route_arn_suffix("POST /orders"), "/*/POST/orders");
        assert_eq!(route_arn_suffix("GET /orders/{id}"), "/*/GET/orders/*");
        assert_eq!(route_arn_suffix("ANY /files/{path+}"), "/*/*/files/*");
        assert_eq!(route_arn_suffix("GET /"), "/*/GET/");
        assert_eq!(
            statement_id("place-order/http/0"),
            "nimbus-place-order-http-0"
        );
    }
}

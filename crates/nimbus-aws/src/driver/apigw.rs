//! API Gateway HTTP APIs and what belongs to one: JWT authorizers, Lambda proxy integrations,
//! routes and the `$default` stage.
//!
//! An API's physical id is its API id; API names are not unique in AWS, so an API whose create
//! was interrupted is found by name (lowering's name is deterministic). The others' physical ids
//! are `{api id}/{sub-object id}` (a stage's: `{api id}/{stage name}`). Tags live on the API
//! and the stage (`arn:…:apigateway:{region}::/apis/{id}[/stages/{name}]`).

use std::collections::BTreeMap;

use aws_sdk_apigatewayv2::types::{
    AccessLogSettings, AuthorizationType, AuthorizerType, Cors, IntegrationType, JwtConfiguration,
    ProtocolType,
};
use nimbus_engine::{Applied, DriverError, Live};
use serde_json::json;

use super::error::{Call, found, gone};
use super::props::{map_changes, map_value};
use super::{AwsDriver, Props, applied, live, split_id};
use crate::kinds;

fn api_outputs(id: &str, endpoint: &str) -> Applied {
    applied(id, &[("id", json!(id)), ("endpoint", json!(endpoint))])
}

fn resource_arn(d: &AwsDriver, path: &str) -> String {
    format!(
        "arn:{}:apigateway:{}::{path}",
        d.scope.partition, d.scope.region
    )
}

async fn retag(
    d: &AwsDriver,
    arn: &str,
    before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
) -> Result<(), DriverError> {
    let (set, removed) = map_changes(before, after);
    let apigw = &d.clients.apigw;
    if !removed.is_empty() {
        apigw
            .untag_resource()
            .resource_arn(arn)
            .set_tag_keys(Some(removed))
            .send()
            .await
            .call("UntagResource")?;
    }
    if !set.is_empty() {
        apigw
            .tag_resource()
            .resource_arn(arn)
            .set_tags(Some(set.into_iter().collect()))
            .send()
            .await
            .call("TagResource")?;
    }
    Ok(())
}

fn hash_map(map: Option<&std::collections::HashMap<String, String>>) -> BTreeMap<String, String> {
    map.map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

pub(super) async fn create_api(d: &AwsDriver, p: Props<'_>) -> Result<Applied, DriverError> {
    let out = d
        .clients
        .apigw
        .create_api()
        .name(p.str("Name")?)
        .protocol_type(ProtocolType::from(p.str("ProtocolType")?))
        .set_description(p.opt_str("Description").map(str::to_string))
        .set_cors_configuration(cors(p)?)
        .set_tags(Some(p.string_map("Tags")?.into_iter().collect()))
        .send()
        .await
        .call("CreateApi")?;
    Ok(api_outputs(
        out.api_id().unwrap_or_default(),
        out.api_endpoint().unwrap_or_default(),
    ))
}

pub(super) async fn update_api(
    d: &AwsDriver,
    id: &str,
    before: Props<'_>,
    p: Props<'_>,
) -> Result<Applied, DriverError> {
    let out = d
        .clients
        .apigw
        .update_api()
        .api_id(id)
        .name(p.str("Name")?)
        .description(p.opt_str("Description").unwrap_or_default())
        .set_cors_configuration(cors(p)?)
        .send()
        .await
        .call("UpdateApi")?;
    if before.object("CorsConfiguration").is_some() && p.object("CorsConfiguration").is_none() {
        d.clients
            .apigw
            .delete_cors_configuration()
            .api_id(id)
            .send()
            .await
            .call("DeleteCorsConfiguration")?;
    }
    retag(
        d,
        &resource_arn(d, &format!("/apis/{id}")),
        &before.string_map("Tags")?,
        &p.string_map("Tags")?,
    )
    .await?;
    Ok(api_outputs(id, out.api_endpoint().unwrap_or_default()))
}

pub(super) async fn delete_api(d: &AwsDriver, id: &str) -> Result<(), DriverError> {
    gone(
        d.clients
            .apigw
            .delete_api()
            .api_id(id)
            .send()
            .await
            .call("DeleteApi"),
    )?;
    Ok(())
}

/// Whether `s` could be an API id (lowercase letters and digits; AWS makes 10, emulators
/// fewer) rather than a name (lowering's names contain `-`).
fn looks_like_api_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 10
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

pub(super) async fn read_api(d: &AwsDriver, id_or_name: &str) -> Result<Option<Live>, DriverError> {
    let apigw = &d.clients.apigw;
    let mut id = None;
    if looks_like_api_id(id_or_name) {
        id = found(
            apigw
                .get_api()
                .api_id(id_or_name)
                .send()
                .await
                .call("GetApi"),
        )?
        .map(|_| id_or_name.to_string());
    }
    if id.is_none() {
        let mut token = None;
        loop {
            let page = apigw
                .get_apis()
                .set_next_token(token)
                .send()
                .await
                .call("GetApis")?;
            if let Some(api) = page.items().iter().find(|a| a.name() == Some(id_or_name)) {
                id = api.api_id().map(str::to_string);
                break;
            }
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
    }
    let Some(id) = id else {
        return Ok(None);
    };
    let Some(api) = found(apigw.get_api().api_id(&id).send().await.call("GetApi"))? else {
        return Ok(None);
    };
    let mut props = json!({
        "Name": api.name().unwrap_or_default(),
        "ProtocolType": api.protocol_type().map(|t| t.as_str()).unwrap_or_default(),
        "Tags": map_value(&hash_map(api.tags())),
    });
    if let Some(description) = api.description() {
        props["Description"] = json!(description);
    }
    if let Some(c) = api.cors_configuration() {
        props["CorsConfiguration"] = cors_value(c);
    }
    Ok(Some(live(
        id.clone(),
        props,
        api_outputs(&id, api.api_endpoint().unwrap_or_default()),
    )))
}

/// The API's `CorsConfiguration`, when lowering set one.
fn cors(p: Props<'_>) -> Result<Option<Cors>, DriverError> {
    let Some(c) = p.object("CorsConfiguration") else {
        return Ok(None);
    };
    let list = |key: &str| -> Result<Option<Vec<String>>, DriverError> {
        c.get(key).map(|_| c.strings(key)).transpose()
    };
    Ok(Some(
        Cors::builder()
            .set_allow_origins(list("AllowOrigins")?)
            .set_allow_methods(list("AllowMethods")?)
            .set_allow_headers(list("AllowHeaders")?)
            .set_expose_headers(list("ExposeHeaders")?)
            .set_allow_credentials(c.opt_bool("AllowCredentials"))
            .set_max_age(c.opt_i32("MaxAge"))
            .build(),
    ))
}

/// A `CorsConfiguration` read back in lowering's shape (lists it leaves out when empty).
fn cors_value(c: &Cors) -> serde_json::Value {
    let mut v = json!({});
    for (key, list) in [
        ("AllowOrigins", c.allow_origins()),
        ("AllowMethods", c.allow_methods()),
        ("AllowHeaders", c.allow_headers()),
        ("ExposeHeaders", c.expose_headers()),
    ] {
        if !list.is_empty() {
            v[key] = json!(list);
        }
    }
    v["AllowCredentials"] = json!(c.allow_credentials().unwrap_or(false));
    if let Some(age) = c.max_age() {
        v["MaxAge"] = json!(age);
    }
    v
}

fn jwt(p: Props<'_>) -> Result<Option<JwtConfiguration>, DriverError> {
    let Some(c) = p.object("JwtConfiguration") else {
        return Ok(None);
    };
    Ok(Some(
        JwtConfiguration::builder()
            .set_issuer(c.opt_str("Issuer").map(str::to_string))
            .set_audience(Some(c.strings("Audience")?))
            .build(),
    ))
}

fn sub_outputs(api: &str, id: &str, extra: &[(&str, serde_json::Value)]) -> Applied {
    let mut outputs = vec![("id", json!(id))];
    outputs.extend(extra.iter().cloned());
    applied(format!("{api}/{id}"), &outputs)
}

pub(super) async fn create_authorizer(d: &AwsDriver, p: Props<'_>) -> Result<Applied, DriverError> {
    let api = p.str("ApiId")?;
    let out = d
        .clients
        .apigw
        .create_authorizer()
        .api_id(api)
        .name(p.str("Name")?)
        .authorizer_type(AuthorizerType::from(p.str("AuthorizerType")?))
        .set_identity_source(Some(p.strings("IdentitySource")?))
        .set_jwt_configuration(jwt(p)?)
        .send()
        .await
        .call("CreateAuthorizer")?;
    Ok(sub_outputs(
        api,
        out.authorizer_id().unwrap_or_default(),
        &[],
    ))
}

pub(super) async fn update_authorizer(
    d: &AwsDriver,
    id: &str,
    p: Props<'_>,
) -> Result<Applied, DriverError> {
    let (api, authorizer) = split_id(kinds::AUTHORIZER, id)?;
    d.clients
        .apigw
        .update_authorizer()
        .api_id(api)
        .authorizer_id(authorizer)
        .name(p.str("Name")?)
        .authorizer_type(AuthorizerType::from(p.str("AuthorizerType")?))
        .set_identity_source(Some(p.strings("IdentitySource")?))
        .set_jwt_configuration(jwt(p)?)
        .send()
        .await
        .call("UpdateAuthorizer")?;
    Ok(sub_outputs(api, authorizer, &[]))
}

pub(super) async fn delete_authorizer(d: &AwsDriver, id: &str) -> Result<(), DriverError> {
    let (api, authorizer) = split_id(kinds::AUTHORIZER, id)?;
    gone(
        d.clients
            .apigw
            .delete_authorizer()
            .api_id(api)
            .authorizer_id(authorizer)
            .send()
            .await
            .call("DeleteAuthorizer"),
    )?;
    Ok(())
}

pub(super) async fn read_authorizer(d: &AwsDriver, id: &str) -> Result<Option<Live>, DriverError> {
    let (api, authorizer) = split_id(kinds::AUTHORIZER, id)?;
    let Some(a) = found(
        d.clients
            .apigw
            .get_authorizer()
            .api_id(api)
            .authorizer_id(authorizer)
            .send()
            .await
            .call("GetAuthorizer"),
    )?
    else {
        return Ok(None);
    };
    let mut props = json!({
        "ApiId": api,
        "Name": a.name().unwrap_or_default(),
        "AuthorizerType": a.authorizer_type().map(|t| t.as_str()).unwrap_or_default(),
        "IdentitySource": a.identity_source(),
    });
    if let Some(c) = a.jwt_configuration() {
        props["JwtConfiguration"] = json!({ "Issuer": c.issuer(), "Audience": c.audience() });
    }
    Ok(Some(live(id, props, sub_outputs(api, authorizer, &[]))))
}

fn integration_outputs(api: &str, id: &str) -> Applied {
    sub_outputs(api, id, &[("target", json!(format!("integrations/{id}")))])
}

pub(super) async fn create_integration(
    d: &AwsDriver,
    p: Props<'_>,
) -> Result<Applied, DriverError> {
    let api = p.str("ApiId")?;
    let out = d
        .clients
        .apigw
        .create_integration()
        .api_id(api)
        .integration_type(IntegrationType::from(p.str("IntegrationType")?))
        .integration_uri(p.str("IntegrationUri")?)
        .set_payload_format_version(p.opt_str("PayloadFormatVersion").map(str::to_string))
        .set_timeout_in_millis(p.opt_i32("TimeoutInMillis"))
        .send()
        .await
        .call("CreateIntegration")?;
    Ok(integration_outputs(
        api,
        out.integration_id().unwrap_or_default(),
    ))
}

pub(super) async fn update_integration(
    d: &AwsDriver,
    id: &str,
    p: Props<'_>,
) -> Result<Applied, DriverError> {
    let (api, integration) = split_id(kinds::INTEGRATION, id)?;
    d.clients
        .apigw
        .update_integration()
        .api_id(api)
        .integration_id(integration)
        .integration_type(IntegrationType::from(p.str("IntegrationType")?))
        .integration_uri(p.str("IntegrationUri")?)
        .set_payload_format_version(p.opt_str("PayloadFormatVersion").map(str::to_string))
        .set_timeout_in_millis(p.opt_i32("TimeoutInMillis"))
        .send()
        .await
        .call("UpdateIntegration")?;
    Ok(integration_outputs(api, integration))
}

pub(super) async fn delete_integration(d: &AwsDriver, id: &str) -> Result<(), DriverError> {
    let (api, integration) = split_id(kinds::INTEGRATION, id)?;
    gone(
        d.clients
            .apigw
            .delete_integration()
            .api_id(api)
            .integration_id(integration)
            .send()
            .await
            .call("DeleteIntegration"),
    )?;
    Ok(())
}

pub(super) async fn read_integration(d: &AwsDriver, id: &str) -> Result<Option<Live>, DriverError> {
    let (api, integration) = split_id(kinds::INTEGRATION, id)?;
    let Some(i) = found(
        d.clients
            .apigw
            .get_integration()
            .api_id(api)
            .integration_id(integration)
            .send()
            .await
            .call("GetIntegration"),
    )?
    else {
        return Ok(None);
    };
    let mut props = json!({
        "ApiId": api,
        "IntegrationType": i.integration_type().map(|t| t.as_str()).unwrap_or_default(),
        "IntegrationUri": i.integration_uri().unwrap_or_default(),
    });
    if let Some(v) = i.payload_format_version() {
        props["PayloadFormatVersion"] = json!(v);
    }
    if let Some(ms) = i.timeout_in_millis() {
        props["TimeoutInMillis"] = json!(ms);
    }
    Ok(Some(live(id, props, integration_outputs(api, integration))))
}

fn route_outputs(d: &AwsDriver, api: &str, id: &str, route_key: &str) -> Applied {
    let source_arn = d.scope.arn(
        "execute-api",
        &format!("{api}{}", crate::lower::route_arn_suffix(route_key)),
    );
    sub_outputs(api, id, &[("source_arn", json!(source_arn))])
}

pub(super) async fn create_route(d: &AwsDriver, p: Props<'_>) -> Result<Applied, DriverError> {
    let api = p.str("ApiId")?;
    let key = p.str("RouteKey")?;
    let out = d
        .clients
        .apigw
        .create_route()
        .api_id(api)
        .route_key(key)
        .set_target(p.opt_str("Target").map(str::to_string))
        .set_authorization_type(p.opt_str("AuthorizationType").map(AuthorizationType::from))
        .set_authorizer_id(p.opt_str("AuthorizerId").map(str::to_string))
        .send()
        .await
        .call("CreateRoute")?;
    Ok(route_outputs(
        d,
        api,
        out.route_id().unwrap_or_default(),
        key,
    ))
}

pub(super) async fn update_route(
    d: &AwsDriver,
    id: &str,
    p: Props<'_>,
) -> Result<Applied, DriverError> {
    let (api, route) = split_id(kinds::ROUTE, id)?;
    let key = p.str("RouteKey")?;
    d.clients
        .apigw
        .update_route()
        .api_id(api)
        .route_id(route)
        .route_key(key)
        .set_target(p.opt_str("Target").map(str::to_string))
        .set_authorization_type(p.opt_str("AuthorizationType").map(AuthorizationType::from))
        .authorizer_id(p.opt_str("AuthorizerId").unwrap_or_default())
        .send()
        .await
        .call("UpdateRoute")?;
    Ok(route_outputs(d, api, route, key))
}

pub(super) async fn delete_route(d: &AwsDriver, id: &str) -> Result<(), DriverError> {
    let (api, route) = split_id(kinds::ROUTE, id)?;
    gone(
        d.clients
            .apigw
            .delete_route()
            .api_id(api)
            .route_id(route)
            .send()
            .await
            .call("DeleteRoute"),
    )?;
    Ok(())
}

pub(super) async fn read_route(d: &AwsDriver, id: &str) -> Result<Option<Live>, DriverError> {
    let (api, route) = split_id(kinds::ROUTE, id)?;
    let Some(r) = found(
        d.clients
            .apigw
            .get_route()
            .api_id(api)
            .route_id(route)
            .send()
            .await
            .call("GetRoute"),
    )?
    else {
        return Ok(None);
    };
    let key = r.route_key().unwrap_or_default();
    let mut props = json!({
        "ApiId": api,
        "RouteKey": key,
        "AuthorizationType": r.authorization_type().map(|t| t.as_str()).unwrap_or("NONE"),
    });
    if let Some(t) = r.target() {
        props["Target"] = json!(t);
    }
    if let Some(a) = r.authorizer_id().filter(|a| !a.is_empty()) {
        props["AuthorizerId"] = json!(a);
    }
    Ok(Some(live(id, props, route_outputs(d, api, route, key))))
}

fn access_logs(p: Props<'_>) -> Result<Option<AccessLogSettings>, DriverError> {
    let Some(s) = p.object("AccessLogSettings") else {
        return Ok(None);
    };
    Ok(Some(
        AccessLogSettings::builder()
            .destination_arn(s.str("DestinationArn")?)
            .format(s.str("Format")?)
            .build(),
    ))
}

fn stage_outputs(api: &str, name: &str) -> Applied {
    applied(format!("{api}/{name}"), &[("name", json!(name))])
}

pub(super) async fn create_stage(d: &AwsDriver, p: Props<'_>) -> Result<Applied, DriverError> {
    let api = p.str("ApiId")?;
    let name = p.str("StageName")?;
    d.clients
        .apigw
        .create_stage()
        .api_id(api)
        .stage_name(name)
        .set_auto_deploy(p.opt_bool("AutoDeploy"))
        .set_access_log_settings(access_logs(p)?)
        .set_tags(Some(p.string_map("Tags")?.into_iter().collect()))
        .send()
        .await
        .call("CreateStage")?;
    Ok(stage_outputs(api, name))
}

pub(super) async fn update_stage(
    d: &AwsDriver,
    id: &str,
    before: Props<'_>,
    p: Props<'_>,
) -> Result<Applied, DriverError> {
    let (api, name) = split_id(kinds::STAGE, id)?;
    d.clients
        .apigw
        .update_stage()
        .api_id(api)
        .stage_name(name)
        .set_auto_deploy(p.opt_bool("AutoDeploy"))
        .set_access_log_settings(access_logs(p)?)
        .send()
        .await
        .call("UpdateStage")?;
    retag(
        d,
        &resource_arn(d, &format!("/apis/{api}/stages/{name}")),
        &before.string_map("Tags")?,
        &p.string_map("Tags")?,
    )
    .await?;
    Ok(stage_outputs(api, name))
}

pub(super) async fn delete_stage(d: &AwsDriver, id: &str) -> Result<(), DriverError> {
    let (api, name) = split_id(kinds::STAGE, id)?;
    gone(
        d.clients
            .apigw
            .delete_stage()
            .api_id(api)
            .stage_name(name)
            .send()
            .await
            .call("DeleteStage"),
    )?;
    Ok(())
}

pub(super) async fn read_stage(d: &AwsDriver, id: &str) -> Result<Option<Live>, DriverError> {
    let (api, name) = split_id(kinds::STAGE, id)?;
    let Some(s) = found(
        d.clients
            .apigw
            .get_stage()
            .api_id(api)
            .stage_name(name)
            .send()
            .await
            .call("GetStage"),
    )?
    else {
        return Ok(None);
    };
    let mut props = json!({
        "ApiId": api,
        "StageName": s.stage_name().unwrap_or(name),
        "Tags": map_value(&hash_map(s.tags())),
    });
    if let Some(auto) = s.auto_deploy() {
        props["AutoDeploy"] = json!(auto);
    }
    if let Some(a) = s.access_log_settings() {
        props["AccessLogSettings"] =
            json!({ "DestinationArn": a.destination_arn(), "Format": a.format() });
    }
    Ok(Some(live(id, props, stage_outputs(api, name))))
}

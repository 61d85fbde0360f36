//! API Gateway custom domain names and their API mappings (`http.domain`).
//!
//! A domain name's physical id is the host name itself (unique per account and region, so an
//! interrupted create is found by name); an API mapping's is `{domain}/{mapping id}`. The
//! domain is regional, with the ACM certificate the manifest names and the `TLS_1_2` policy;
//! its outputs carry what the DNS record needs: `target` (the regional domain name to CNAME
//! to, `d-….execute-api.<region>.amazonaws.com`) and `zone_id` (for a Route 53 alias).

use std::collections::HashMap;

use aws_sdk_apigatewayv2::types::{DomainNameConfiguration, EndpointType, SecurityPolicy};
use nimbus_engine::{Applied, DriverError, Live};
use serde_json::{Value, json};

use super::error::{Call, found, gone};
use super::props::map_value;
use super::{AwsDriver, Props, applied, built, live, split_id};
use crate::kinds;

fn configurations(p: Props<'_>) -> Vec<DomainNameConfiguration> {
    let list = p
        .get("DomainNameConfigurations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    list.iter()
        .map(|c| {
            let s = |k: &str| c.get(k).and_then(Value::as_str);
            DomainNameConfiguration::builder()
                .set_certificate_arn(s("CertificateArn").map(str::to_string))
                .set_endpoint_type(s("EndpointType").map(EndpointType::from))
                .set_security_policy(s("SecurityPolicy").map(SecurityPolicy::from))
                .build()
        })
        .collect()
}

fn domain_outputs(name: &str, configurations: &[DomainNameConfiguration]) -> Applied {
    let first = configurations.first();
    let target = first.and_then(|c| c.api_gateway_domain_name());
    let zone_id = first.and_then(|c| c.hosted_zone_id());
    applied(
        name,
        &[
            ("name", json!(name)),
            ("target", json!(target.unwrap_or_default())),
            ("zone_id", json!(zone_id.unwrap_or_default())),
        ],
    )
}

/// Creates the domain name (with its tags), or, when `exists`, sets its configurations (the
/// certificate) in place: the same properties go to `CreateDomainName` and `UpdateDomainName`.
pub(super) async fn put_domain_name(
    d: &AwsDriver,
    p: Props<'_>,
    exists: bool,
) -> Result<Applied, DriverError> {
    let name = p.str("DomainName")?;
    let configurations = Some(configurations(p));
    let apigw = &d.clients.apigw;
    let returned = if exists {
        apigw
            .update_domain_name()
            .domain_name(name)
            .set_domain_name_configurations(configurations)
            .send()
            .await
            .call("UpdateDomainName")?
            .domain_name_configurations
    } else {
        let tags: HashMap<String, String> = p.string_map("Tags")?.into_iter().collect();
        apigw
            .create_domain_name()
            .domain_name(name)
            .set_domain_name_configurations(configurations)
            .set_tags(Some(tags))
            .send()
            .await
            .call("CreateDomainName")?
            .domain_name_configurations
    };
    Ok(domain_outputs(name, &returned.unwrap_or_default()))
}

pub(super) async fn delete_domain_name(d: &AwsDriver, name: &str) -> Result<(), DriverError> {
    gone(
        d.clients
            .apigw
            .delete_domain_name()
            .domain_name(name)
            .send()
            .await
            .call("DeleteDomainName"),
    )?;
    Ok(())
}

pub(super) async fn read_domain_name(
    d: &AwsDriver,
    name: &str,
) -> Result<Option<Live>, DriverError> {
    let Some(out) = found(
        d.clients
            .apigw
            .get_domain_name()
            .domain_name(name)
            .send()
            .await
            .call("GetDomainName"),
    )?
    else {
        return Ok(None);
    };
    let configs: Vec<Value> = out
        .domain_name_configurations()
        .iter()
        .map(|c| {
            json!({
                "CertificateArn": c.certificate_arn(),
                "EndpointType": c.endpoint_type().map(|e| e.as_str()),
                "SecurityPolicy": c.security_policy().map(|s| s.as_str()),
            })
        })
        .collect();
    let tags = out
        .tags()
        .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    let props = json!({
        "DomainName": name,
        "DomainNameConfigurations": configs,
        "Tags": map_value(&tags),
    });
    Ok(Some(live(
        name,
        props,
        domain_outputs(name, out.domain_name_configurations()),
    )))
}

fn mapping_outputs(domain: &str, id: &str) -> Applied {
    applied(format!("{domain}/{id}"), &[("id", json!(id))])
}

/// Creates the mapping of the domain's root to the API's stage, or, given the physical id of
/// one, points it at the API and stage of `p`.
pub(super) async fn put_api_mapping(
    d: &AwsDriver,
    existing: Option<&str>,
    p: Props<'_>,
) -> Result<Applied, DriverError> {
    let (api, stage) = (p.str("ApiId")?, p.str("Stage")?);
    let apigw = &d.clients.apigw;
    let (domain, id) = match existing {
        Some(physical_id) => {
            let (domain, id) = split_id(kinds::API_MAPPING, physical_id)?;
            apigw
                .update_api_mapping()
                .domain_name(domain)
                .api_mapping_id(id)
                .api_id(api)
                .stage(stage)
                .send()
                .await
                .call("UpdateApiMapping")?;
            (domain, id.to_string())
        }
        None => {
            let domain = p.str("DomainName")?;
            let out = apigw
                .create_api_mapping()
                .domain_name(domain)
                .api_id(api)
                .stage(stage)
                .send()
                .await
                .call("CreateApiMapping")?;
            let id = built(out.api_mapping_id.ok_or("CreateApiMapping returned no id"))?;
            (domain, id)
        }
    };
    Ok(mapping_outputs(domain, &id))
}

pub(super) async fn delete_api_mapping(
    d: &AwsDriver,
    physical_id: &str,
) -> Result<(), DriverError> {
    let (domain, id) = split_id(kinds::API_MAPPING, physical_id)?;
    gone(
        d.clients
            .apigw
            .delete_api_mapping()
            .domain_name(domain)
            .api_mapping_id(id)
            .send()
            .await
            .call("DeleteApiMapping"),
    )?;
    Ok(())
}

pub(super) async fn read_api_mapping(
    d: &AwsDriver,
    physical_id: &str,
) -> Result<Option<Live>, DriverError> {
    let (domain, id) = split_id(kinds::API_MAPPING, physical_id)?;
    let Some(out) = found(
        d.clients
            .apigw
            .get_api_mapping()
            .domain_name(domain)
            .api_mapping_id(id)
            .send()
            .await
            .call("GetApiMapping"),
    )?
    else {
        return Ok(None);
    };
    let props = json!({
        "DomainName": domain,
        "ApiId": out.api_id(),
        "Stage": out.stage(),
    });
    Ok(Some(live(physical_id, props, mapping_outputs(domain, id))))
}

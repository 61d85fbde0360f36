//! `http.domain` on Azure: the custom host name bound to the one Function App that serves every
//! HTTP route (validation refuses a domain when several do, `[triggers.http.domain]` in
//! `providers/azure/capabilities.toml`), with the manifest's Key Vault certificate.
//!
//! - `Microsoft.Web/certificates`: the Key Vault certificate imported for the app's plan
//!   (`keyVaultId` + `keyVaultSecretName`; App Service reads it with its own first-party identity,
//!   which the vault's owner grants);
//! - `Microsoft.Web/sites/hostNameBindings`: the host name, verified by its `CNAME` to the app's
//!   host and its `TXT asuid.<host>` record (App Service checks both when the binding is made),
//!   SNI with the certificate's thumbprint;
//! - output `<function>DomainVerificationId`: the app's `customDomainVerificationId`, which
//!   `nimbus info` prints as the `TXT` record's value.

use nimbus_graph::DomainNode;
use serde_json::{Value, json};

use super::{api, expr, lit, rid, var};
use crate::apps::{App, Trigger};

/// The app that serves the HTTP routes, when exactly one does.
pub fn domain_app(apps: &[App]) -> Option<&App> {
    let mut serving = apps.iter().filter(|a| {
        a.bindings
            .iter()
            .any(|b| matches!(b.trigger, Trigger::Http { .. }))
    });
    let first = serving.next()?;
    serving.next().is_none().then_some(first)
}

/// The vault's resource id and the secret's name of a certificate reference
/// (`…/providers/Microsoft.KeyVault/vaults/<vault>/secrets/<name>`).
fn key_vault_parts(certificate: &str) -> Option<(&str, &str)> {
    let (vault, secret) = certificate.rsplit_once("/secrets/")?;
    (!secret.is_empty() && !secret.contains('/')).then_some((vault, secret))
}

/// The certificate and the host name binding of `domain` on `app` (whose site is the variable
/// `site_var` and whose plan is `plan_id`), and the outputs to add.
pub(super) fn resources(
    domain: &DomainNode,
    app: &App,
    plan_id: &str,
    tags: &Value,
) -> (Vec<Value>, Vec<(String, Value)>) {
    let site_var = format!("app-{}", app.function);
    let site_id = rid("Microsoft.Web/sites", &[var(&site_var)]);
    let host = domain.name.as_str();
    let certificate_name = format!("concat({}, '-', {})", var(&site_var), lit(host));
    let certificate_id = format!(
        "resourceId('Microsoft.Web/certificates', {})",
        certificate_name
    );
    let mut out = Vec::new();
    // Validation requires the reference on Azure; without one (an export), the binding has no
    // certificate and serves plain HTTP until one is added.
    let parts = domain.certificate.as_deref().and_then(key_vault_parts);
    if let Some((vault, secret)) = parts {
        out.push(json!({
            "type": "Microsoft.Web/certificates",
            "apiVersion": api::WEB,
            "name": expr(&certificate_name),
            "location": expr("parameters('location')"),
            "tags": tags,
            "dependsOn": [expr(plan_id)],
            "properties": {
                "keyVaultId": vault,
                "keyVaultSecretName": secret,
                "serverFarmId": expr(plan_id),
            },
        }));
    }
    let mut binding = json!({
        "type": "Microsoft.Web/sites/hostNameBindings",
        "apiVersion": api::WEB,
        "name": expr(format!("concat({}, '/', {})", var(&site_var), lit(host))),
        "dependsOn": [expr(&site_id)],
        "properties": {
            "siteName": expr(var(&site_var)),
            "hostNameType": "Verified",
            "customHostNameDnsRecordType": "CName",
            "sslState": "Disabled",
        },
    });
    if parts.is_some() {
        binding["dependsOn"]
            .as_array_mut()
            .unwrap()
            .push(expr(&certificate_id));
        binding["properties"]["sslState"] = json!("SniEnabled");
        binding["properties"]["thumbprint"] = expr(format!(
            "reference({certificate_id}, '{}').thumbprint",
            api::WEB
        ));
    }
    out.push(binding);
    let key = super::output_key(&app.function);
    let outputs = vec![(
        format!("{key}DomainVerificationId"),
        json!({
            "type": "string",
            "value": expr(format!(
                "reference({site_id}, '{}').customDomainVerificationId",
                api::WEB
            )),
        }),
    )];
    (out, outputs)
}

#[cfg(test)]
mod tests {
    use super::key_vault_parts;

    #[test]
    fn a_reference_splits_into_the_vault_and_the_secret() {
        let id =
            "/subscriptions/s/resourceGroups/g/providers/Microsoft.KeyVault/vaults/v/secrets/api";
        assert_eq!(
            key_vault_parts(id),
            Some((
                "/subscriptions/s/resourceGroups/g/providers/Microsoft.KeyVault/vaults/v",
                "api"
            ))
        );
        assert_eq!(key_vault_parts("/vaults/v/secrets/"), None);
        assert_eq!(key_vault_parts("/vaults/v"), None);
    }
}

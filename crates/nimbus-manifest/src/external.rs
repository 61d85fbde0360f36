//! What the manifest says about things Nimbus does not own: resources that already exist
//! (`resources.<name>.existing`) and the custom domain of the HTTP API (`http.domain`).
//!
//! Only the shape of the manifest lives here. Each provider's identifier shapes and what it can
//! do with them are data in `providers/<id>/capabilities.toml`, checked on the app graph by
//! `nimbus-provider`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Spanned;

/// A resource that already exists, per provider: its identifier there. On a provider with an
/// entry Nimbus grants access to it and wires triggers to it, but never creates, changes or
/// deletes it; on a provider without one (and locally) the resource is created as usual.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(example = existing_example())]
pub struct Existing {
    /// Its ARN: `arn:aws:dynamodb:us-east-1:123456789012:table/users`,
    /// `arn:aws:s3:::my-bucket`, `arn:aws:sqs:us-east-1:123456789012:jobs`,
    /// `arn:aws:sns:us-east-1:123456789012:events`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aws: Option<Spanned<String>>,
    /// Its resource name: `projects/P/databases/(default)/documents/users` (a Firestore
    /// collection), `projects/_/buckets/my-bucket`, `projects/P/topics/events`,
    /// `projects/P/subscriptions/jobs` (a queue: its Pub/Sub subscription).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gcp: Option<Spanned<String>>,
    /// Its Azure resource id:
    /// `/subscriptions/S/resourceGroups/G/providers/Microsoft.Storage/storageAccounts/A/blobServices/default/containers/my-bucket`,
    /// `…/storageAccounts/A/queueServices/default/queues/jobs`,
    /// `…/Microsoft.ServiceBus/namespaces/N/topics/events`,
    /// `…/Microsoft.DocumentDB/databaseAccounts/A/sqlDatabases/D/containers/users` (a table).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub azure: Option<Spanned<String>>,
}

fn existing_example() -> serde_json::Value {
    serde_json::json!({ "aws": "arn:aws:s3:::acme-shared-assets" })
}

impl Existing {
    /// The identifier given for `provider`, if any.
    pub fn get(&self, provider: &str) -> Option<&Spanned<String>> {
        match provider {
            "aws" => self.aws.as_ref(),
            "gcp" => self.gcp.as_ref(),
            "azure" => self.azure.as_ref(),
            _ => None,
        }
    }
}

/// Settings of the HTTP API that all routes share.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Http {
    /// Cross-origin requests from browsers, for every route (a route's own `cors` replaces it;
    /// `cors: false` on a route opts it out). Preflights are answered before any handler runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cors: Option<Spanned<crate::cors::Cors>>,
    /// A custom domain that serves the API, instead of (as well as) the provider's own host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<Spanned<Domain>>,
}

/// A custom domain: its host name and, where the provider needs one, the certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(example = domain_example())]
pub struct Domain {
    /// The host name: `api.example.com`. `nimbus info` prints the DNS records to create for it.
    pub name: Spanned<String>,
    /// The certificate per provider, where the provider needs one: on AWS the ARN of an ACM
    /// certificate in the deployment's region that covers `name`; on Azure a Key Vault
    /// certificate (its secret's resource id), as Flex Consumption apps have no free managed
    /// certificates.
    #[serde(default, skip_serializing_if = "Certificate::is_empty")]
    pub certificate: Certificate,
}

fn domain_example() -> serde_json::Value {
    serde_json::json!({
        "name": "api.example.com",
        "certificate": {
            "aws": "arn:aws:acm:us-east-1:123456789012:certificate/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0",
            "azure": "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/certs/providers/Microsoft.KeyVault/vaults/acme-certs/secrets/api-example-com"
        }
    })
}

/// A certificate reference per provider.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Certificate {
    /// An ACM certificate ARN.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aws: Option<Spanned<String>>,
    /// A Key Vault certificate, by its secret's resource id:
    /// `/subscriptions/…/resourceGroups/…/providers/Microsoft.KeyVault/vaults/<vault>/secrets/<name>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub azure: Option<Spanned<String>>,
}

impl Certificate {
    /// Whether no provider has one.
    pub fn is_empty(&self) -> bool {
        self.aws.is_none() && self.azure.is_none()
    }

    /// The certificate given for `provider`, if any.
    pub fn get(&self, provider: &str) -> Option<&Spanned<String>> {
        match provider {
            "aws" => self.aws.as_ref(),
            "azure" => self.azure.as_ref(),
            _ => None,
        }
    }
}

/// Checks what needs no provider: the domain is a host name, and some route uses it.
pub(crate) fn validate(manifest: &crate::Manifest, diags: &mut Vec<nimbus_diagnostic::Diagnostic>) {
    use nimbus_diagnostic::Diagnostic;
    let Some(domain) = &manifest.http.domain else {
        return;
    };
    if let Err(why) = host_name(&domain.name) {
        diags.push(
            Diagnostic::error(
                domain.name.span,
                format!("`{}` is not a host name: {why}", *domain.name),
            )
            .with_hint("write the domain's host name alone, such as `api.example.com`"),
        );
    }
    let routes = manifest.functions.values().any(|f| {
        f.triggers
            .iter()
            .any(|t| matches!(t.value, crate::Trigger::Http(_)))
    });
    if !routes {
        diags.push(
            Diagnostic::warning(
                domain.span,
                "`http.domain` is set but no function has an `http` trigger",
            )
            .with_hint("add an `http` trigger, or remove `http.domain`"),
        );
    }
}

/// Why `name` is not a fully qualified host name in lowercase (RFC 1123 labels, at least two of
/// them, 253 characters at most), if it is not one.
fn host_name(name: &str) -> Result<(), String> {
    if name.contains("://") || name.contains('/') {
        return Err("it has a scheme or a path".into());
    }
    if name.len() > 253 {
        return Err(format!("it has {} characters, more than 253", name.len()));
    }
    let labels: Vec<&str> = name.split('.').collect();
    if labels.len() < 2 {
        return Err("it needs at least two labels (`api.example.com`)".into());
    }
    for label in labels {
        if label.is_empty() || label.len() > 63 {
            return Err("each dot-separated label has 1 to 63 characters".into());
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(format!(
                "label `{label}` may hold only lowercase letters, digits and `-`"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!("label `{label}` starts or ends with `-`"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::host_name;

    #[test]
    fn host_names() {
        assert!(host_name("api.example.com").is_ok());
        assert!(host_name("a-1.b.co").is_ok());
        assert!(host_name("localhost").is_err());
        assert!(host_name("https://api.example.com").is_err());
        assert!(host_name("API.example.com").is_err());
        assert!(host_name("-a.example.com").is_err());
        assert!(host_name("a..example.com").is_err());
    }
}

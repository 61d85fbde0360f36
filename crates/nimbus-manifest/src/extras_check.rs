//! Shape checks of the escape hatches ([`crate::extras`]): IAM actions and ARNs, GCP roles and
//! resource names, Azure scopes, `only:` targets, VPC ids and connector names. Wildcard grants
//! are allowed but warned about, naming the statement. Numeric limits (reserved concurrency,
//! minimum instances, ...) are the providers' and are checked on the app graph.

use nimbus_diagnostic::{Diagnostic, did_you_mean};

use crate::Spanned;
use crate::extras::{AwsFunction, AwsStatement, GcpFunction, GcpGrant, Permissions};
use crate::model::{Function, Manifest};
use crate::types::Name;

/// The provider ids `only.providers` may name.
pub const PROVIDER_IDS: &[&str] = &["local", "aws", "gcp", "azure"];

/// Resource name patterns a GCP grant can bind on directly (`{}` is one path segment).
pub const GCP_BINDABLE: &[&str] = &[
    "projects/{}",
    "projects/{}/topics/{}",
    "projects/{}/subscriptions/{}",
    "projects/{}/secrets/{}",
    "projects/_/buckets/{}",
];

/// Checks every function's escape hatches, and the `defaults` provider blocks.
pub(crate) fn check(manifest: &Manifest, diags: &mut Vec<Diagnostic>) {
    if let Some(aws) = &manifest.defaults.aws {
        aws_settings(aws, diags);
    }
    if let Some(gcp) = &manifest.defaults.gcp {
        gcp_settings(gcp, diags);
    }
    for (name, f) in &manifest.functions {
        function(manifest, name, f, diags);
    }
}

fn function(manifest: &Manifest, name: &Spanned<Name>, f: &Function, diags: &mut Vec<Diagnostic>) {
    if let Some(p) = &f.permissions {
        permissions(name, p, diags);
    }
    if let Some(only) = &f.only {
        if let Some(providers) = &only.providers {
            if providers.is_empty() {
                diags.push(
                    Diagnostic::error(only.span, "`only.providers` is empty")
                        .with_label("the function would be deployed nowhere")
                        .with_hint("name at least one of `aws`, `gcp`, `azure`, `local`, or remove `providers`"),
                );
            }
            for p in providers {
                if !PROVIDER_IDS.contains(&p.as_str()) {
                    let hint = match did_you_mean(p, PROVIDER_IDS.iter().copied()) {
                        Some(best) => format!("did you mean `{best}`?"),
                        None => "the providers are `aws`, `gcp`, `azure` and `local`".into(),
                    };
                    diags.push(
                        Diagnostic::error(p.span, format!("unknown provider `{}`", p.value))
                            .with_hint(hint),
                    );
                }
            }
        }
        if let Some(stages) = &only.stages {
            if stages.is_empty() {
                diags.push(
                    Diagnostic::error(only.span, "`only.stages` is empty")
                        .with_label("the function would be deployed in no stage")
                        .with_hint("name at least one stage, or remove `stages`"),
                );
            }
            if !manifest.stages.is_empty() {
                for s in stages {
                    if !manifest.stages.contains_key(s.as_str()) {
                        let hint = match did_you_mean(
                            s.as_str(),
                            manifest.stages.keys().map(|k| k.as_str()),
                        ) {
                            Some(best) => format!("did you mean `{best}`?"),
                            None => format!("declare it under `stages:` (`{}: {{}}`)", s.as_str()),
                        };
                        diags.push(
                            Diagnostic::warning(
                                s.span,
                                format!("stage `{}` is not declared under `stages:`", s.as_str()),
                            )
                            .with_hint(hint),
                        );
                    }
                }
            }
        }
    }
    if let Some(aws) = &f.aws {
        aws_settings(aws, diags);
    }
    if let Some(gcp) = &f.gcp {
        gcp_settings(gcp, diags);
    }
}

fn permissions(function: &Name, p: &Spanned<Permissions>, diags: &mut Vec<Diagnostic>) {
    for (i, s) in p.aws.iter().enumerate() {
        aws_statement(function, i + 1, s, diags);
    }
    for (i, g) in p.gcp.iter().enumerate() {
        gcp_grant(function, i + 1, g, diags);
    }
    for g in &p.azure {
        if !is_azure_scope(&g.scope) {
            diags.push(
                Diagnostic::error(g.scope.span, format!("`{}` is not an Azure scope", g.scope.value))
                    .with_label("expected a resource id starting with `/subscriptions/<id>`")
                    .with_hint("write e.g. `/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/ai`"),
            );
        }
        if g.role.trim().is_empty() {
            diags.push(
                Diagnostic::error(g.role.span, "an Azure role is needed")
                    .with_hint("name a built-in role (`Cognitive Services User`) or give its id"),
            );
        }
    }
}

fn aws_statement(
    function: &Name,
    n: usize,
    s: &Spanned<AwsStatement>,
    diags: &mut Vec<Diagnostic>,
) {
    let which = format!("statement {n} of `permissions.aws` of function `{function}`");
    if s.actions.is_empty() {
        diags.push(
            Diagnostic::error(s.span, format!("{which} has no actions"))
                .with_hint("list IAM actions, e.g. `actions: [ses:SendEmail]`"),
        );
    }
    if s.resources.is_empty() {
        diags.push(
            Diagnostic::error(s.span, format!("{which} has no resources"))
                .with_hint("list the ARNs the actions apply to (`\"*\"` for all, with a warning)"),
        );
    }
    for a in &s.actions {
        if !is_aws_action(a) {
            diags.push(
                Diagnostic::error(a.span, format!("`{}` is not an IAM action", a.value))
                    .with_label("expected `service:Action`")
                    .with_hint("write it as the IAM reference does, e.g. `ses:SendEmail` or `s3:GetObject`"),
            );
        } else if a.contains('*') {
            diags.push(
                Diagnostic::warning(
                    a.span,
                    format!("{which} grants the wildcard action `{}`", a.value),
                )
                .with_label("every matching action, now and in future")
                .with_hint("list the exact actions the function calls"),
            );
        }
    }
    for r in &s.resources {
        if r.as_str() == "*" {
            diags.push(
                Diagnostic::warning(r.span, format!("{which} applies to every resource (`*`)"))
                    .with_label("any resource of the account")
                    .with_hint("name the ARNs the function needs"),
            );
        } else if let Err(why) = aws_arn(r) {
            diags.push(
                Diagnostic::error(r.span, format!("`{}` is not an ARN: {why}", r.value))
                    .with_hint("write `arn:aws:<service>:<region>:<account>:<resource>`, e.g. `arn:aws:ses:us-east-1:123456789012:identity/example.com`"),
            );
        }
    }
}

/// `service:Action`, where the action may use `*` and `?` wildcards; or `*` alone.
fn is_aws_action(a: &str) -> bool {
    if a == "*" {
        return true;
    }
    let Some((service, action)) = a.split_once(':') else {
        return false;
    };
    !service.is_empty()
        && service
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !action.is_empty()
        && action
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '*' || c == '?')
}

/// Checks `arn:partition:service:region:account:resource`.
fn aws_arn(arn: &str) -> Result<(), String> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if parts.len() < 6 || parts[0] != "arn" {
        return Err("it needs six `:`-separated parts starting with `arn`".into());
    }
    if !matches!(
        parts[1],
        "aws" | "aws-cn" | "aws-us-gov" | "aws-iso" | "aws-iso-b"
    ) {
        return Err(format!("unknown partition `{}`", parts[1]));
    }
    let lower = |s: &str| {
        s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '*')
    };
    if parts[2].is_empty() || !lower(parts[2]) {
        return Err(format!("`{}` is not a service name", parts[2]));
    }
    if !lower(parts[3]) {
        return Err(format!("`{}` is not a region", parts[3]));
    }
    let account = parts[4];
    if !(account.is_empty()
        || account == "*"
        || account == "aws"
        || (account.len() == 12 && account.chars().all(|c| c.is_ascii_digit())))
    {
        return Err(format!("`{account}` is not a 12-digit account id"));
    }
    if parts[5].is_empty() {
        return Err("the resource part is empty".into());
    }
    Ok(())
}

fn gcp_grant(function: &Name, n: usize, g: &Spanned<GcpGrant>, diags: &mut Vec<Diagnostic>) {
    let role = g.role.as_str();
    if !is_gcp_role(role) {
        diags.push(
            Diagnostic::error(g.role.span, format!("`{role}` is not a GCP role"))
                .with_label("expected `roles/<service>.<role>` or `projects/<p>/roles/<role>`")
                .with_hint("use a predefined role such as `roles/aiplatform.user`, or a custom role's full name"),
        );
    } else if matches!(role, "roles/owner" | "roles/editor" | "roles/viewer") {
        diags.push(
            Diagnostic::warning(
                g.role.span,
                format!("grant {n} of `permissions.gcp` of function `{function}` is the basic role `{role}`"),
            )
            .with_label("a basic role spans every service of the project")
            .with_hint("use the predefined role of the one service the function calls"),
        );
    }
    if let Some(resource) = &g.resource
        && !gcp_bindable(resource)
    {
        diags.push(
            Diagnostic::error(
                resource.span,
                format!("Nimbus cannot bind a role on `{}`", resource.value),
            )
            .with_label("not a resource name Nimbus grants on")
            .with_hint(format!(
                "use one of {}, or leave `resource` out to bind at the project",
                GCP_BINDABLE
                    .iter()
                    .map(|p| format!("`{}`", p.replace("{}", "…")))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        );
    }
}

/// `roles/x.y`, `roles/owner`-style basic roles, and custom `projects|organizations/*/roles/*`.
fn is_gcp_role(role: &str) -> bool {
    let word = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-')
    };
    let parts: Vec<&str> = role.split('/').collect();
    match parts.as_slice() {
        ["roles", r] => word(r) && (r.contains('.') || matches!(*r, "owner" | "editor" | "viewer")),
        ["projects" | "organizations", p, "roles", r] => word(p) && word(r),
        _ => false,
    }
}

/// Whether `resource` matches one of [`GCP_BINDABLE`].
pub fn gcp_bindable(resource: &str) -> bool {
    GCP_BINDABLE
        .iter()
        .any(|pattern| matches_segments(pattern, resource))
}

fn matches_segments(pattern: &str, name: &str) -> bool {
    let p: Vec<&str> = pattern.split('/').collect();
    let n: Vec<&str> = name.split('/').collect();
    p.len() == n.len()
        && p.iter()
            .zip(&n)
            .all(|(p, n)| if *p == "{}" { !n.is_empty() } else { p == n })
}

fn is_azure_scope(scope: &str) -> bool {
    let mut parts = scope.split('/');
    parts.next() == Some("")
        && parts
            .next()
            .is_some_and(|p| p.eq_ignore_ascii_case("subscriptions"))
        && parts.next().is_some_and(|id| !id.is_empty())
        && parts.all(|p| !p.is_empty())
}

fn aws_settings(aws: &AwsFunction, diags: &mut Vec<Diagnostic>) {
    let Some(vpc) = &aws.vpc else { return };
    for (list, what, prefix) in [
        (&vpc.subnet_ids, "subnet_ids", "subnet-"),
        (&vpc.security_group_ids, "security_group_ids", "sg-"),
    ] {
        if list.is_empty() {
            diags.push(
                Diagnostic::error(vpc.span, format!("`vpc.{what}` is empty")).with_hint(format!(
                    "Lambda needs at least one: `{what}: [{prefix}0123456789abcdef0]`"
                )),
            );
        }
        for id in list {
            if !aws_id(id, prefix) {
                diags.push(
                    Diagnostic::error(
                        id.span,
                        format!(
                            "`{}` is not a {} id",
                            id.value,
                            prefix.trim_end_matches('-')
                        ),
                    )
                    .with_label(format!("expected `{prefix}` and 8 or 17 hex digits"))
                    .with_hint(format!(
                        "copy it from the VPC console, e.g. `{prefix}0123456789abcdef0`"
                    )),
                );
            }
        }
    }
}

fn aws_id(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix).is_some_and(|hex| {
        matches!(hex.len(), 8 | 17)
            && hex
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    })
}

fn gcp_settings(gcp: &GcpFunction, diags: &mut Vec<Diagnostic>) {
    if let Some(c) = &gcp.vpc_connector
        && !matches_segments("projects/{}/locations/{}/connectors/{}", c)
    {
        diags.push(
            Diagnostic::error(c.span, format!("`{}` is not a VPC connector name", c.value))
                .with_label("expected `projects/<project>/locations/<region>/connectors/<name>`")
                .with_hint("give the connector's full name, as `gcloud compute networks vpc-access connectors describe` prints it"),
        );
    }
    if let Some(e) = &gcp.egress
        && gcp.vpc_connector.is_none()
    {
        diags.push(
            Diagnostic::error(e.span, "`egress` needs a `vpc_connector`")
                .with_label("egress settings choose what goes through the connector")
                .with_hint("add `vpc_connector: projects/<p>/locations/<r>/connectors/<n>` in the same block"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        assert!(is_aws_action("ses:SendEmail"));
        assert!(is_aws_action("s3:Get*"));
        assert!(is_aws_action("*"));
        assert!(!is_aws_action("SendEmail"));
        assert!(!is_aws_action("ses:Send Email"));
        assert!(!is_aws_action("SES:SendEmail"));
        assert!(aws_arn("arn:aws:ses:us-east-1:123456789012:identity/example.com").is_ok());
        assert!(aws_arn("arn:aws:s3:::my-bucket/*").is_ok());
        assert!(aws_arn("arn:aws:ses:us-east-1:1234:identity/x").is_err());
        assert!(aws_arn("arn:aws:ses").is_err());
        assert!(aws_arn("arn:azure:s3:::b").is_err());
        assert!(is_gcp_role("roles/aiplatform.user"));
        assert!(is_gcp_role("projects/p/roles/custom"));
        assert!(!is_gcp_role("aiplatform.user"));
        assert!(!is_gcp_role("roles/"));
        assert!(gcp_bindable("projects/p/topics/t"));
        assert!(gcp_bindable("projects/_/buckets/b"));
        assert!(!gcp_bindable("projects/p/datasets/d"));
        assert!(is_azure_scope("/subscriptions/abc/resourceGroups/g"));
        assert!(!is_azure_scope("subscriptions/abc"));
        assert!(aws_id("subnet-0123456789abcdef0", "subnet-"));
        assert!(aws_id("sg-01234567", "sg-"));
        assert!(!aws_id("sg-0123", "sg-"));
    }
}

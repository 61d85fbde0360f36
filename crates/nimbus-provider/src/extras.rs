//! The escape hatches held against one provider: which functions `only:` leaves out, which
//! functions grant themselves permissions elsewhere but not here, Azure role names, and the
//! limits of the provider's own function settings (`providers/<id>/capabilities.toml`,
//! `[function_settings]`). Only the target provider's block of each function is checked; the
//! others are checked when validating for their provider.

use nimbus_diagnostic::{Diagnostic, Span, did_you_mean};
use nimbus_graph::{AppGraph, FunctionNode};
use nimbus_manifest::Spanned;

use crate::Capabilities;
use crate::capabilities::Range;

/// Pushes the findings about `graph`'s escape hatches on the provider of `caps`.
pub(crate) fn check(graph: &AppGraph, caps: &Capabilities, diags: &mut Vec<Diagnostic>) {
    if !graph.skipped.is_empty() {
        diags.push(
            Diagnostic::warning(
                graph.skipped_span,
                format!(
                    "{} {} {} not deployed to {} in stage `{}` (`only:`)",
                    plural("function", graph.skipped.len()),
                    list(&graph.skipped),
                    if graph.skipped.len() == 1 {
                        "is"
                    } else {
                        "are"
                    },
                    caps.id,
                    graph.stage
                ),
            )
            .with_hint(format!(
                "{} not built, checked against {} or deployed here; this is only a note",
                if graph.skipped.len() == 1 {
                    "it is"
                } else {
                    "they are"
                },
                caps.name
            )),
        );
    }
    if caps.permissions.is_some() {
        let lacking: Vec<&FunctionNode> = graph
            .functions
            .values()
            .filter(|f| !f.permissions.is_empty() && !f.permissions.has(&caps.id))
            .collect();
        if let Some(first) = lacking.first() {
            let names: Vec<String> = lacking.iter().map(|f| f.name.clone()).collect();
            diags.push(
                Diagnostic::warning(
                    first.spans.permissions,
                    format!(
                        "{} {} {} extra permissions for other providers but none for {}",
                        plural("function", names.len()),
                        list(&names),
                        if names.len() == 1 { "has" } else { "have" },
                        caps.id
                    ),
                )
                .with_hint(format!(
                    "add `permissions: {{ {}: [...] }}` if the function calls a {} service outside the manifest",
                    caps.id, caps.name
                )),
            );
        }
    }
    for f in graph.functions.values() {
        function(f, caps, diags);
    }
}

fn function(f: &FunctionNode, caps: &Capabilities, diags: &mut Vec<Diagnostic>) {
    let limits = &caps.function_settings;
    match caps.id.as_str() {
        "aws" => {
            if let Some(a) = &f.aws.architecture
                && !limits.architectures.iter().any(|x| x == a.as_str())
            {
                diags.push(Diagnostic::error(
                    a.span,
                    format!("{} has no `{}` architecture", caps.name, a.as_str()),
                ));
            }
            range(
                f.aws.reserved_concurrency.as_ref(),
                limits.reserved_concurrency,
                "reserved_concurrency",
                caps,
                diags,
            );
            if let Some(vpc) = &f.aws.vpc {
                count(
                    vpc.span,
                    vpc.subnet_ids.len(),
                    limits.vpc_subnets,
                    "subnets",
                    caps,
                    diags,
                );
                count(
                    vpc.span,
                    vpc.security_group_ids.len(),
                    limits.vpc_security_groups,
                    "security groups",
                    caps,
                    diags,
                );
            }
        }
        "gcp" => {
            range(
                f.gcp.min_instances.as_ref(),
                limits.min_instances,
                "min_instances",
                caps,
                diags,
            );
            let in_range = |r: Option<Range>, v: u32| r.is_some_and(|r| r.contains(u64::from(v)));
            if let Some(min) = &f.gcp.min_instances
                && in_range(limits.min_instances, min.value)
                && min.value > f.concurrency
            {
                diags.push(
                    Diagnostic::error(
                        min.span,
                        format!(
                            "`min_instances` ({}) is more than the function's most instances ({})",
                            min.value, f.concurrency
                        ),
                    )
                    .with_hint("raise `concurrency.max` or lower `min_instances`"),
                );
            }
        }
        "azure" => {
            if let Some(ready) = &f.azure.always_ready {
                if let Some(why) = &limits.always_ready_unsupported {
                    diags.push(Diagnostic::error(
                        ready.span,
                        format!("{} cannot keep instances always ready: {why}", caps.name),
                    ));
                } else {
                    range(
                        Some(ready),
                        limits.always_ready,
                        "always_ready",
                        caps,
                        diags,
                    );
                    // Flex's own default limit (100) applies when the manifest sets none.
                    if f.concurrency_set && ready.value > f.concurrency {
                        diags.push(
                            Diagnostic::error(
                                ready.span,
                                format!(
                                    "`always_ready` ({}) is more than the function app's most instances ({})",
                                    ready.value, f.concurrency
                                ),
                            )
                            .with_hint("raise `concurrency.max` or lower `always_ready`"),
                        );
                    }
                }
            }
            if let Some(perms) = &caps.permissions {
                for g in &f.permissions.azure {
                    if perms.role_id(&g.role).is_none() {
                        let hint = match did_you_mean(&g.role, perms.roles.keys().map(String::as_str)) {
                            Some(best) => format!("did you mean `{best}`?"),
                            None => "give the role definition's id (a GUID) instead; `az role definition list --name \"<role>\"` prints it".into(),
                        };
                        diags.push(
                            Diagnostic::error(
                                g.role.span,
                                format!("`{}` is not a built-in role Nimbus knows", g.role.value),
                            )
                            .with_hint(hint),
                        );
                    }
                }
            }
        }
        _ => {}
    }
}

fn range(
    value: Option<&Spanned<u32>>,
    limits: Option<Range>,
    key: &str,
    caps: &Capabilities,
    diags: &mut Vec<Diagnostic>,
) {
    let Some(v) = value else { return };
    match limits {
        None => diags.push(Diagnostic::error(
            v.span,
            format!("{} has no `{key}` setting", caps.name),
        )),
        Some(r) if !r.contains(u64::from(v.value)) => diags.push(
            Diagnostic::error(
                v.span,
                format!("`{key}` {} is out of {}'s range", v.value, caps.name),
            )
            .with_label(format!("{}..={} allowed", r.min, r.max))
            .with_hint(format!("use a value from {} to {}", r.min, r.max)),
        ),
        Some(_) => {}
    }
}

fn count(
    span: Span,
    n: usize,
    max: Option<usize>,
    what: &str,
    caps: &Capabilities,
    diags: &mut Vec<Diagnostic>,
) {
    if let Some(max) = max
        && n > max
    {
        diags.push(
            Diagnostic::error(
                span,
                format!("{n} {what} is more than {} allows", caps.name),
            )
            .with_hint(format!("list at most {max}")),
        );
    }
}

fn plural(word: &str, n: usize) -> String {
    if n == 1 {
        word.to_string()
    } else {
        format!("{word}s")
    }
}

fn list(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use nimbus_manifest::{LoadOptions, load_str};

    use crate::ProviderId;

    const APP: &str = r#"
version: 1
service: s
functions:
  mailer:
    handler: app.py:handler
    permissions:
      aws: [ { actions: [ses:SendEmail], resources: ["arn:aws:ses:us-east-1:123456789012:identity/x"] } ]
  helper:
    handler: app.py:handler
    only: { providers: [aws] }
  plain:
    handler: app.py:handler
"#;

    fn warnings(provider: ProviderId) -> Vec<String> {
        let options = LoadOptions {
            provider: provider.to_string(),
            check_files: false,
            ..LoadOptions::default()
        };
        let loaded = load_str(Path::new("nimbus.yaml"), APP.into(), &options).expect("loads");
        let graph = nimbus_graph::build(&loaded);
        let mut out = Vec::new();
        super::check(&graph, provider.capabilities(), &mut out);
        out.into_iter().map(|d| d.message).collect()
    }

    #[test]
    fn skipped_functions_and_missing_grants_are_said_once() {
        assert!(
            warnings(ProviderId::Aws).is_empty(),
            "{:?}",
            warnings(ProviderId::Aws)
        );
        assert_eq!(
            warnings(ProviderId::Gcp),
            [
                "function `helper` is not deployed to gcp in stage `dev` (`only:`)",
                "function `mailer` has extra permissions for other providers but none for gcp",
            ]
        );
        // The local runtime has no identities: no grant is asked for there.
        assert_eq!(
            warnings(ProviderId::Local),
            ["function `helper` is not deployed to local in stage `dev` (`only:`)"]
        );
    }

    #[test]
    fn azure_roles_resolve_by_name_or_id() {
        let perms = ProviderId::Azure
            .capabilities()
            .permissions
            .as_ref()
            .unwrap();
        assert_eq!(
            perms.role_id("cognitive services user"),
            Some("a97b65f3-24c7-4388-baec-2e87135dc908")
        );
        let id = "11111111-2222-3333-4444-555555555555";
        assert_eq!(perms.role_id(id), Some(id));
        assert_eq!(perms.role_id("Cognitive Service User"), None);
        for id in perms.roles.values() {
            assert!(crate::is_guid(id), "{id}");
        }
    }
}

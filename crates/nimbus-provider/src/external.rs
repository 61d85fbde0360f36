//! Existing resources and custom domains against a provider's capabilities: the identifier
//! shapes (`[resources.<kind>.existing]`, `[triggers.http.domain]` in `capabilities.toml`), what
//! the provider refuses (triggers on an existing resource it would have to modify, a custom
//! domain it has no native mechanism for), each at the manifest line.
//!
//! A shape is the identifier with `{part}` placeholders: a placeholder matches one or more
//! characters other than `/` and `:`; `{part:12d}` matches exactly twelve digits (an AWS account).
//! Everything else matches itself. [`parse_shape`] returns the parts by name, so lowering reads
//! the resource's name, region or account from the same data the check used.

use std::collections::BTreeMap;

use nimbus_diagnostic::Diagnostic;
use nimbus_graph::{AppGraph, TriggerSpec};
use serde::Deserialize;

use crate::Capabilities;

/// What a provider does with a resource of one kind that already exists.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExistingCapability {
    /// The identifier's shape: `arn:{partition}:s3:::{name}`.
    pub shape: String,
    /// An identifier of that shape, for messages.
    pub example: String,
    /// Why a trigger on such a resource is refused (and what to do instead), when it is.
    pub triggers: Option<String>,
    /// Why this version does not use existing resources of this kind on the provider (and what
    /// to do instead), when it does not.
    pub unsupported: Option<String>,
}

/// How a provider serves the HTTP API on a custom domain.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainCapability {
    /// The native mechanism.
    pub native: Option<String>,
    /// The certificate reference's shape, when the provider needs one.
    pub certificate: Option<String>,
    /// An example certificate reference.
    pub certificate_example: Option<String>,
    /// Why the provider cannot serve a custom domain (and the alternative), when it cannot.
    pub unsupported: Option<String>,
    /// Why the provider can bind the domain only when one function serves every route (and the
    /// alternative), when that is so: a host name binds to one app.
    pub one_function: Option<String>,
}

/// The parts of `text` named by the placeholders of `shape`, or `None` when it does not match.
pub fn parse_shape(shape: &str, text: &str) -> Option<BTreeMap<String, String>> {
    let mut parts = BTreeMap::new();
    let mut rest = text;
    let mut pattern = shape;
    while !pattern.is_empty() {
        if let Some(after) = pattern.strip_prefix('{') {
            let end = after.find('}')?;
            let (name, digits) = match after[..end].split_once(':') {
                Some((name, spec)) => (name, spec.strip_suffix('d')?.parse::<usize>().ok()),
                None => (&after[..end], None),
            };
            let len = rest.find(['/', ':']).unwrap_or(rest.len());
            let value = &rest[..len];
            let ok = match digits {
                Some(n) => value.len() == n && value.bytes().all(|b| b.is_ascii_digit()),
                None => !value.is_empty(),
            };
            if !ok {
                return None;
            }
            parts.insert(name.to_string(), value.to_string());
            rest = &rest[len..];
            pattern = &after[end + 1..];
        } else {
            let len = pattern.find('{').unwrap_or(pattern.len());
            rest = rest.strip_prefix(&pattern[..len])?;
            pattern = &pattern[len..];
        }
    }
    rest.is_empty().then_some(parts)
}

/// Existing resources and the custom domain of `graph` against `caps`.
pub(crate) fn check(graph: &AppGraph, caps: &Capabilities, diags: &mut Vec<Diagnostic>) {
    for r in graph.resources.values() {
        let Some(id) = &r.existing else { continue };
        let Some(cap) = caps.resource(r.kind) else {
            continue;
        };
        let span = r.spans.existing;
        let Some(existing) = &cap.existing else {
            diags.push(Diagnostic::error(
                span,
                format!(
                    "{} cannot use an existing {}: it has no such resources",
                    caps.name, r.kind
                ),
            ));
            continue;
        };
        if let Some(why) = &existing.unsupported {
            diags.push(
                Diagnostic::error(
                    span,
                    format!(
                        "existing {}s are not supported on {}: {why}",
                        r.kind, caps.name
                    ),
                )
                .with_hint(format!(
                    "remove `existing.{}` from resource `{}` to let Nimbus create it there",
                    caps.id, r.name
                )),
            );
            continue;
        }
        if parse_shape(&existing.shape, id).is_none() {
            diags.push(
                Diagnostic::error(
                    span,
                    format!(
                        "`{id}` is not the identifier of a {} on {}: expected `{}`",
                        r.kind, caps.name, existing.shape
                    ),
                )
                .with_label(format!("not the identifier of a {}", r.kind))
                .with_hint(format!("for example `{}`", existing.example)),
            );
        }
        let Some(why) = &existing.triggers else {
            continue;
        };
        for f in graph.functions.values() {
            for t in &f.triggers {
                if t.spec.resource() == Some(r.name.as_str()) {
                    diags.push(
                        Diagnostic::error(
                            t.value_span,
                            format!(
                                "function `{}` cannot be triggered by existing {} `{}` on {}: {why}",
                                f.name, r.kind, r.name, caps.name
                            ),
                        )
                        .with_label("existing resource"),
                    );
                }
            }
        }
    }
    domain(graph, caps, diags);
}

fn domain(graph: &AppGraph, caps: &Capabilities, diags: &mut Vec<Diagnostic>) {
    let Some(d) = &graph.domain else { return };
    let routes = graph.functions.values().any(|f| {
        f.triggers
            .iter()
            .any(|t| matches!(t.spec, TriggerSpec::Http { .. }))
    });
    if !routes {
        return;
    }
    let cap = caps
        .trigger(nimbus_graph::TriggerKind::Http)
        .and_then(|t| t.domain.as_ref());
    let Some(cap) = cap else {
        diags.push(Diagnostic::error(
            d.span,
            format!("{} has no custom domains", caps.name),
        ));
        return;
    };
    if let Some(why) = &cap.unsupported {
        diags.push(
            Diagnostic::error(
                d.span,
                format!("{} cannot serve `http.domain`: {why}", caps.name),
            )
            .with_hint(format!(
                "set `http.domain` only in the stages deployed elsewhere \
                 (`stages.<stage>.http.domain`), or put a proxy or CDN of your own in front of \
                 the URL `nimbus info -p {}` prints",
                caps.id
            )),
        );
        return;
    }
    if let Some(why) = &cap.one_function {
        let serving: Vec<&str> = graph
            .functions
            .values()
            .filter(|f| {
                f.triggers
                    .iter()
                    .any(|t| matches!(t.spec, TriggerSpec::Http { .. }))
            })
            .map(|f| f.name.as_str())
            .collect();
        if serving.len() > 1 {
            diags.push(
                Diagnostic::error(
                    d.span,
                    format!(
                        "{} serves `http.domain` only when one function has every HTTP route, and {} functions have routes here ({}): {why}",
                        caps.name,
                        serving.len(),
                        serving
                            .iter()
                            .map(|f| format!("`{f}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
                .with_hint(
                    "give every route to one function (it can branch on `route`), or set \
                     `http.domain` only in the stages deployed elsewhere \
                     (`stages.<stage>.http.domain`)",
                ),
            );
            return;
        }
    }
    let Some(shape) = &cap.certificate else {
        return;
    };
    let example = cap.certificate_example.as_deref().unwrap_or(shape);
    match &d.certificate {
        None => diags.push(
            Diagnostic::error(
                d.span,
                format!(
                    "`http.domain` needs a certificate on {}: `certificate.{}`",
                    caps.name, caps.id
                ),
            )
            .with_hint(format!(
                "add `certificate: {{ {}: \"{example}\" }}` under `http.domain`",
                caps.id
            )),
        ),
        Some(c) if parse_shape(shape, c).is_none() => diags.push(
            Diagnostic::error(
                d.certificate_span,
                format!(
                    "`{c}` is not a certificate reference on {}: expected `{shape}`",
                    caps.name
                ),
            )
            .with_hint(format!("for example `{example}`")),
        ),
        Some(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::parse_shape;

    #[test]
    fn shapes() {
        let arn = "arn:{partition}:dynamodb:{region}:{account:12d}:table/{name}";
        let parts = parse_shape(arn, "arn:aws:dynamodb:us-east-1:123456789012:table/users")
            .expect("matches");
        assert_eq!(parts["name"], "users");
        assert_eq!(parts["region"], "us-east-1");
        assert!(parse_shape(arn, "arn:aws:dynamodb:us-east-1:1234:table/users").is_none());
        assert!(parse_shape(arn, "arn:aws:s3:::users").is_none());
        assert!(parse_shape(arn, "arn:aws:dynamodb:us-east-1:123456789012:table/").is_none());
        assert!(
            parse_shape(
                arn,
                "arn:aws:dynamodb:us-east-1:123456789012:table/u/index/x"
            )
            .is_none()
        );
        let s3 = "arn:{partition}:s3:::{name}";
        assert_eq!(
            parse_shape(s3, "arn:aws:s3:::my.bucket").expect("matches")["name"],
            "my.bucket"
        );
        assert!(parse_shape(s3, "arn:aws:s3:::my-bucket/key").is_none());
    }
}

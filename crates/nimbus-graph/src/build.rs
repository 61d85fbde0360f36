//! Building the app graph from a loaded, validated manifest.

use std::collections::BTreeMap;

use nimbus_diagnostic::Span;
use nimbus_manifest::{
    Auth, Cors, DEFAULT_CONCURRENCY, DEFAULT_MEMORY, DEFAULT_TIMEOUT, EnvValue, KeyType, Loaded,
    Resource, ResourceKind, RouteCors, Runtime, Spanned, Trigger,
};

use crate::{
    AppGraph, CorsPolicy, DomainNode, Edge, FunctionNode, FunctionSpans, Link, ResourceNode,
    ResourceSpans, ResourceSpec, SecretNode, TriggerNode, TriggerSpec, hash,
};

/// Queue visibility timeout when the manifest sets none.
const DEFAULT_VISIBILITY_MS: u64 = 30_000;
/// Queue retention when the manifest sets none (4 days).
const DEFAULT_RETENTION_MS: u64 = 4 * 86_400_000;

/// Resolves `loaded` into the app graph. The manifest must have passed validation.
pub fn build(loaded: &Loaded) -> AppGraph {
    let m = &loaded.manifest;
    let defaults = &m.defaults;

    let resources: BTreeMap<String, ResourceNode> = m
        .resources
        .iter()
        .map(|(name, r)| (name.to_string(), resource(name, r, &loaded.provider)))
        .collect();

    let mut edges = Vec::new();
    let mut functions = BTreeMap::new();
    let mut skipped = Vec::new();
    let mut skipped_span = None;
    for (name, f) in &m.functions {
        // `only:` removes the function from other providers and stages altogether.
        if let Some(only) = &f.only
            && !only.includes(&loaded.provider, loaded.stage.as_str())
        {
            skipped.push(name.to_string());
            skipped_span.get_or_insert(only.span);
            continue;
        }
        let id = format!("function:{name}");
        let runtime = f
            .runtime
            .as_ref()
            .or(defaults.runtime.as_ref())
            .map(|r| **r)
            .unwrap_or_else(|| Runtime::default_for(f.handler.language()));
        let memory = f.memory.as_ref().or(defaults.memory.as_ref());
        let timeout = f.timeout.as_ref().or(defaults.timeout.as_ref());
        let concurrency_max = f
            .concurrency
            .as_ref()
            .and_then(|c| c.max.as_ref())
            .or(defaults.concurrency.as_ref().and_then(|c| c.max.as_ref()));
        let concurrency_span = span_or(concurrency_max, name.span);
        let concurrency_max = concurrency_max.map(|m| **m);
        let concurrency = concurrency_max.unwrap_or(DEFAULT_CONCURRENCY);
        // A function's own variable wins over the default of the same name, whichever its kind.
        let mut merged: BTreeMap<String, &EnvValue> = BTreeMap::new();
        merged.extend(defaults.env.iter().map(|(k, v)| (k.to_string(), &v.value)));
        merged.extend(f.env.iter().map(|(k, v)| (k.to_string(), &v.value)));
        let mut env = BTreeMap::new();
        let mut secrets = BTreeMap::new();
        let mut secret_spans = BTreeMap::new();
        for (k, v) in merged {
            match v {
                EnvValue::Text(t) => {
                    env.insert(k, t.clone());
                }
                EnvValue::Secret { secret } => {
                    secret_spans.insert(k.clone(), secret.span);
                    secrets.insert(k, secret.to_string());
                }
            }
        }

        let triggers: Vec<TriggerNode> = f
            .triggers
            .iter()
            .enumerate()
            .map(|(i, t)| trigger(name.as_str(), i, t, m.http.cors.as_ref()))
            .collect();
        for t in &triggers {
            if let Some(resource) = t.spec.resource() {
                edges.push(Edge {
                    from: id.clone(),
                    to: format!("resource:{resource}"),
                    link: Link::Trigger {
                        trigger: t.id.clone(),
                    },
                });
            }
        }
        for grant in &f.uses {
            edges.push(Edge {
                from: id.clone(),
                to: format!("resource:{}", *grant.resource),
                link: Link::Uses {
                    access: *grant.access,
                },
            });
        }
        let package = f.package.clone().unwrap_or_default();
        let mut node = FunctionNode {
            id,
            name: name.to_string(),
            handler_file: f.handler.file.clone(),
            handler_export: f.handler.export.clone(),
            source_dir: f.handler.dir().to_string(),
            runtime,
            language: runtime.language(),
            memory_mb: memory.map(|m| m.get()).unwrap_or(DEFAULT_MEMORY.get()),
            timeout_ms: timeout
                .map(|t| t.as_millis())
                .unwrap_or(DEFAULT_TIMEOUT.as_millis()),
            concurrency,
            concurrency_set: concurrency_max.is_some(),
            env,
            secrets,
            include: package.include,
            exclude: package.exclude,
            description: f.description.as_ref().map(|d| d.value.clone()),
            triggers,
            permissions: f
                .permissions
                .as_ref()
                .map(|p| p.value.clone())
                .unwrap_or_default(),
            aws: f
                .aws
                .clone()
                .unwrap_or_default()
                .over(&defaults.aws.clone().unwrap_or_default()),
            gcp: f
                .gcp
                .clone()
                .unwrap_or_default()
                .over(&defaults.gcp.clone().unwrap_or_default()),
            azure: f
                .azure
                .clone()
                .unwrap_or_default()
                .over(&defaults.azure.clone().unwrap_or_default()),
            hash: String::new(),
            spans: FunctionSpans {
                name: name.span,
                handler: f.handler.span,
                runtime: span_or(
                    f.runtime.as_ref().or(defaults.runtime.as_ref()),
                    f.handler.span,
                ),
                memory: span_or(memory, name.span),
                timeout: span_or(timeout, name.span),
                concurrency: concurrency_span,
                description: span_or(f.description.as_ref(), name.span),
                permissions: span_or(f.permissions.as_ref(), name.span),
            },
            secret_spans,
        };
        node.hash = hash::of(&node);
        functions.insert(name.to_string(), node);
    }
    edges.sort();

    let settings = provider_settings(loaded);
    let mut graph = AppGraph {
        service: m.service.to_string(),
        stage: loaded.stage.to_string(),
        provider: loaded.provider.clone(),
        settings,
        functions,
        resources,
        secrets: m
            .secrets
            .iter()
            .map(|(name, s)| {
                let description = s.description.as_ref().map(|d| d.value.clone());
                (name.to_string(), SecretNode { description })
            })
            .collect(),
        edges,
        domain: m.http.domain.as_ref().map(|d| {
            let certificate = d.certificate.get(&loaded.provider);
            DomainNode {
                name: d.name.to_string(),
                certificate: certificate.map(|c| c.value.clone()),
                span: d.span,
                name_span: d.name.span,
                certificate_span: certificate.map_or(d.span, |c| c.span),
            }
        }),
        skipped,
        skipped_span,
        hash: String::new(),
    };
    graph.rehash();
    graph
}

impl AppGraph {
    /// Recomputes [`AppGraph::hash`] from the nodes' hashes, the edges and the settings (after
    /// settings were filled in from the environment, for example).
    pub fn rehash(&mut self) {
        self.hash = hash::combine(
            self.functions
                .values()
                .map(|f| f.hash.as_str())
                .chain(self.resources.values().map(|r| r.hash.as_str()))
                .chain(std::iter::once(
                    // Without a domain, the hash of a graph is what it was before domains.
                    match &self.domain {
                        None => hash::of(&(&self.edges, &self.settings)),
                        Some(d) => hash::of(&(&self.edges, &self.settings, d)),
                    }
                    .as_str(),
                ))
                .collect::<Vec<_>>(),
        );
    }
}

fn span_or<T>(value: Option<&Spanned<T>>, fallback: Span) -> Span {
    value
        .map(|v| v.span)
        .filter(|s| !s.is_unknown())
        .unwrap_or(fallback)
}

fn provider_settings(loaded: &Loaded) -> BTreeMap<String, serde_json::Value> {
    let p = &loaded.manifest.providers;
    let mut out = BTreeMap::new();
    let mut put = |key: &str, value: serde_json::Value| {
        if !value.is_null() {
            out.insert(key.to_string(), value);
        }
    };
    put("aws", serde_json::to_value(&p.aws).unwrap_or_default());
    put("gcp", serde_json::to_value(&p.gcp).unwrap_or_default());
    put("azure", serde_json::to_value(&p.azure).unwrap_or_default());
    put("local", serde_json::to_value(&p.local).unwrap_or_default());
    out
}

fn resource(name: &Spanned<nimbus_manifest::Name>, r: &Resource, provider: &str) -> ResourceNode {
    let existing = r.existing.as_ref().and_then(|e| e.get(provider));
    let first = |key: &Option<Spanned<BTreeMap<Spanned<String>, nimbus_manifest::KeyType>>>| {
        key.as_ref()
            .and_then(|k| k.iter().next().map(|(n, t)| (n.to_string(), *t)))
    };
    let spec = match *r.kind {
        ResourceKind::Table => ResourceSpec::Table {
            // A table without a key is an error of its own; `validate` still builds the graph
            // of such a manifest to report the provider's findings in the same pass.
            key: first(&r.key).unwrap_or_else(|| (String::new(), KeyType::String)),
            sort_key: first(&r.sort_key),
        },
        ResourceKind::Queue => ResourceSpec::Queue {
            visibility_timeout_ms: r
                .visibility_timeout
                .as_ref()
                .map(|d| d.as_millis())
                .unwrap_or(DEFAULT_VISIBILITY_MS),
            retention_ms: r
                .retention
                .as_ref()
                .map(|d| d.as_millis())
                .unwrap_or(DEFAULT_RETENTION_MS),
            max_receives: r.dead_letter.as_ref().map(|d| *d.max_receives),
        },
        ResourceKind::Topic => ResourceSpec::Topic {},
        ResourceKind::Bucket => ResourceSpec::Bucket {
            versioning: r.versioning.as_ref().is_some_and(|v| **v),
        },
    };
    let mut node = ResourceNode {
        id: format!("resource:{name}"),
        name: name.to_string(),
        kind: *r.kind,
        spec,
        existing: existing.map(|e| e.value.clone()),
        hash: String::new(),
        span: name.span,
        spans: ResourceSpans {
            visibility_timeout: r.visibility_timeout.as_ref().map_or(name.span, |d| d.span),
            retention: r.retention.as_ref().map_or(name.span, |d| d.span),
            max_receives: r
                .dead_letter
                .as_ref()
                .map_or(name.span, |d| d.max_receives.span),
            existing: existing.map_or(name.span, |e| e.span),
        },
    };
    node.hash = hash::of(&node);
    node
}

fn trigger(
    function: &str,
    index: usize,
    t: &Spanned<Trigger>,
    app_cors: Option<&Spanned<Cors>>,
) -> TriggerNode {
    let spec = match &t.value {
        Trigger::Http(h) => TriggerSpec::Http {
            method: *h.method,
            path: h.path.to_string(),
            auth: h.auth.clone().unwrap_or(Auth::None),
            cors: match h.cors.as_ref().map(|c| (c.span, &c.value)) {
                Some((_, RouteCors::Off)) => None,
                Some((span, RouteCors::Policy(c))) => Some(CorsPolicy::resolve(c, span)),
                None => app_cors.map(|c| CorsPolicy::resolve(c, c.span)),
            },
        },
        Trigger::Schedule(s) => TriggerSpec::Schedule {
            expression: nimbus_schedule::parse(&s.expression)
                .map(|e| e.to_string())
                .unwrap_or_else(|_| s.expression.to_string()),
            timezone: s
                .timezone
                .as_ref()
                .map(|t| t.to_string())
                .unwrap_or_else(|| "UTC".into()),
        },
        Trigger::Queue(q) => TriggerSpec::Queue {
            resource: q.name.to_string(),
            batch_size: q.batch_size.as_ref().map(|b| **b).unwrap_or(1),
        },
        Trigger::Topic(tp) => TriggerSpec::Topic {
            resource: tp.name.to_string(),
        },
        Trigger::Bucket(b) => {
            let mut events = b.events.value.clone();
            events.sort();
            TriggerSpec::Bucket {
                resource: b.name.to_string(),
                events,
                prefix: b.prefix.clone(),
                suffix: b.suffix.clone(),
            }
        }
        Trigger::Table(tb) => {
            let mut events = tb.events.value.clone();
            events.sort();
            TriggerSpec::Table {
                resource: tb.name.to_string(),
                events,
                batch_size: tb.batch_size.as_ref().map(|b| **b).unwrap_or(1),
            }
        }
    };
    let value_span = match &t.value {
        Trigger::Http(h) => h.path.span,
        Trigger::Schedule(s) => s.expression.span,
        other => other.resource().map(|r| r.span).unwrap_or(t.span),
    };
    TriggerNode {
        id: format!("trigger:{function}/{}/{index}", spec.kind()),
        spec,
        span: t.span,
        value_span,
    }
}

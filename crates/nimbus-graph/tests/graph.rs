//! The app graph built from real manifests: defaults, edges, ids and content hashes.

use std::path::Path;

use nimbus_graph::{Link, ResourceSpec, TriggerSpec, build};
use nimbus_manifest::{Access, LoadOptions, load_file, load_str};

fn shop(stage: Option<&str>) -> nimbus_graph::AppGraph {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/shop/nimbus.yaml");
    let options = LoadOptions {
        stage: stage.map(str::to_string),
        provider: "aws".into(),
        ..LoadOptions::default()
    };
    build(&load_file(&path, &options).expect("the shop loads"))
}

#[test]
fn shop_graph_resolves_defaults_triggers_and_edges() {
    let g = shop(None);
    assert_eq!(
        (g.service.as_str(), g.stage.as_str(), g.provider.as_str()),
        ("shop", "dev", "aws")
    );
    assert_eq!(g.functions.len(), 7);
    let place = &g.functions["place-order"];
    assert_eq!(
        (place.memory_mb, place.timeout_ms, place.concurrency),
        (256, 10_000, 10)
    );
    assert_eq!(place.source_dir, "orders");
    assert_eq!(place.env["LOG_LEVEL"], "debug");
    assert_eq!(place.triggers[0].id, "trigger:place-order/http/0");
    assert_eq!(g.access("place-order", "orders"), Some(Access::Write));
    assert_eq!(g.access("place-order", "payments"), Some(Access::Send));
    assert_eq!(g.access("get-order", "payments"), None);
    let charge = &g.functions["charge-payment"];
    assert_eq!(
        charge.triggers[0].spec,
        TriggerSpec::Queue {
            resource: "payments".into(),
            batch_size: 10
        }
    );
    assert!(g.edges.iter().any(|e| e.from == "function:audit-orders"
        && e.to == "resource:orders"
        && matches!(&e.link, Link::Trigger { trigger } if trigger == "trigger:audit-orders/table/0")));
    match &g.resources["payments"].spec {
        ResourceSpec::Queue {
            visibility_timeout_ms,
            max_receives,
            ..
        } => {
            assert_eq!((*visibility_timeout_ms, *max_receives), (60_000, Some(5)));
        }
        other => panic!("{other:?}"),
    }
    let nightly = &g.functions["nightly-report"];
    assert_eq!(
        nightly.triggers[0].spec,
        TriggerSpec::Schedule {
            expression: "cron(0 3 * * *)".into(),
            timezone: "UTC".into()
        }
    );
    let mut sorted = g.edges.clone();
    sorted.sort();
    assert_eq!(sorted, g.edges, "edges are sorted");
}

#[test]
fn graphs_are_deterministic_and_hashes_follow_content() {
    let a = shop(None);
    assert_eq!(a.to_json(), shop(None).to_json());
    let prod = shop(Some("prod"));
    assert_ne!(a.hash, prod.hash);
    // prod raises the default memory: every function inheriting it changes, the others do not.
    assert_ne!(
        a.functions["get-order"].hash,
        prod.functions["get-order"].hash
    );
    assert_eq!(
        a.functions["make-thumbnail"].hash, prod.functions["make-thumbnail"].hash,
        "sets its own memory"
    );
    assert_eq!(a.resources["orders"].hash, prod.resources["orders"].hash);
}

#[test]
fn one_changed_function_changes_only_its_hash() {
    let base = "version: 1\nservice: s\nfunctions:\n  a: { handler: a.py:h }\n  b: { handler: b.py:h, memory: 128 }\n";
    let changed = base.replace("memory: 128", "memory: 256");
    let options = LoadOptions {
        check_files: false,
        ..LoadOptions::default()
    };
    let g1 = build(&load_str(Path::new("nimbus.yaml"), base.to_string(), &options).unwrap());
    let g2 = build(&load_str(Path::new("nimbus.yaml"), changed, &options).unwrap());
    assert_eq!(g1.functions["a"].hash, g2.functions["a"].hash);
    assert_ne!(g1.functions["b"].hash, g2.functions["b"].hash);
    assert_ne!(g1.hash, g2.hash);
    assert_eq!(
        g1.functions["a"].runtime.id(),
        "python3.12",
        "runtime inferred from the handler"
    );
}

#[test]
fn resource_specs_read_back_as_their_own_kind() {
    let g = shop(None);
    for (name, r) in &g.resources {
        let text = serde_json::to_string(&r.spec).unwrap();
        let back: ResourceSpec = serde_json::from_str(&text).unwrap();
        assert_eq!(
            back, r.spec,
            "{name} ({:?}) came back as another kind",
            r.kind
        );
    }
}

#[test]
fn secrets_are_names_per_function_never_values() {
    let yaml = "version: 1\nservice: s\nsecrets:\n  pay: { description: payments }\n  mail: {}\n\
                defaults:\n  env:\n    MAIL_KEY: { secret: mail }\n\
                functions:\n  a:\n    handler: a.py:h\n    env:\n      PAY: { secret: pay }\n      MODE: live\n\
                \x20 b:\n    handler: b.py:h\n    env:\n      MAIL_KEY: plain\n";
    let options = LoadOptions {
        provider: "local".into(),
        check_files: false,
        ..LoadOptions::default()
    };
    let g = build(&load_str(Path::new("nimbus.yaml"), yaml.into(), &options).unwrap());
    let a = &g.functions["a"];
    assert_eq!(
        a.secrets
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect::<Vec<_>>(),
        [("MAIL_KEY", "mail"), ("PAY", "pay")]
    );
    assert_eq!(a.env.get("MODE").map(String::as_str), Some("live"));
    assert!(!a.env.contains_key("PAY"));
    // b's own literal MAIL_KEY wins over the default secret: b reads no secret.
    assert!(g.functions["b"].secrets.is_empty());
    assert_eq!(g.functions["b"].env["MAIL_KEY"], "plain");
    let readers = g.secret_readers();
    assert_eq!(readers["pay"], ["a"]);
    assert_eq!(readers["mail"], ["a"]);
    assert_eq!(g.secrets["pay"].description.as_deref(), Some("payments"));
}

fn graph_for(provider: &str, stage: Option<&str>, manifest: &str) -> nimbus_graph::AppGraph {
    let options = LoadOptions {
        provider: provider.into(),
        stage: stage.map(str::to_string),
        check_files: false,
        ..LoadOptions::default()
    };
    build(&load_str(Path::new("nimbus.yaml"), manifest.to_string(), &options).expect("loads"))
}

const EXTERNAL: &str = r#"
version: 1
service: api
http:
  domain: { name: api.example.com, certificate: { aws: "arn:aws:acm:us-east-1:123456789012:certificate/a" } }
stages:
  dev: {}
  prod: { http: { domain: { name: prod.example.com } } }
resources:
  reports: { type: bucket, existing: { aws: "arn:aws:s3:::acme-reports" } }
functions:
  hello:
    handler: app.py:handler
    triggers: [ { http: { method: GET, path: /hello } } ]
    uses: [ { resource: reports, access: read } ]
"#;

#[test]
fn an_existing_resource_is_existing_only_for_the_providers_that_name_it() {
    let aws = graph_for("aws", None, EXTERNAL);
    assert_eq!(
        aws.resources["reports"].existing.as_deref(),
        Some("arn:aws:s3:::acme-reports")
    );
    // Locally (and on a provider without an entry) it is declared like any other.
    for provider in ["local", "gcp", "azure"] {
        let g = graph_for(provider, None, EXTERNAL);
        assert_eq!(g.resources["reports"].existing, None, "{provider}");
        assert!(!g.to_json().contains("existing"), "{provider}");
    }
    assert_ne!(aws.hash, graph_for("local", None, EXTERNAL).hash);
}

#[test]
fn the_domain_takes_the_stage_override_and_the_provider_certificate() {
    let dev = graph_for("aws", None, EXTERNAL);
    let d = dev.domain.as_ref().unwrap();
    assert_eq!(d.name, "api.example.com");
    assert_eq!(
        d.certificate.as_deref(),
        Some("arn:aws:acm:us-east-1:123456789012:certificate/a")
    );
    assert_eq!(
        graph_for("azure", None, EXTERNAL)
            .domain
            .unwrap()
            .certificate,
        None
    );
    // The stage's domain replaces the base one whole (its certificate included).
    let prod = graph_for("aws", Some("prod"), EXTERNAL);
    let d = prod.domain.as_ref().unwrap();
    assert_eq!(
        (d.name.as_str(), d.certificate.as_deref()),
        ("prod.example.com", None)
    );
    assert_ne!(prod.hash, dev.hash);
}

/// `only:` drops a function from other providers and stages; provider blocks merge over
/// `defaults.<id>` key by key.
#[test]
fn only_drops_functions_and_provider_blocks_merge_over_defaults() {
    let text = r#"
version: 1
service: s
stages: { dev: {}, prod: { defaults: { aws: { reserved_concurrency: 3 } } } }
defaults:
  aws: { architecture: arm64, reserved_concurrency: 1 }
functions:
  everywhere:
    handler: app.py:handler
    aws: { reserved_concurrency: 2 }
  helper:
    handler: app.py:handler
    only: { providers: [aws], stages: [prod] }
"#;
    let graph = |provider: &str, stage: &str| {
        let options = LoadOptions {
            stage: Some(stage.into()),
            provider: provider.into(),
            check_files: false,
            ..LoadOptions::default()
        };
        build(&load_str(Path::new("nimbus.yaml"), text.into(), &options).expect("loads"))
    };
    let prod = graph("aws", "prod");
    assert!(prod.functions.contains_key("helper"));
    assert!(prod.skipped.is_empty());
    let e = &prod.functions["everywhere"].aws;
    assert_eq!(
        e.architecture.as_ref().map(|a| a.as_str()),
        Some("arm64"),
        "from defaults.aws"
    );
    assert_eq!(
        e.reserved_concurrency.as_ref().map(|r| r.value),
        Some(2),
        "the function's own wins"
    );
    assert_eq!(
        prod.functions["helper"]
            .aws
            .reserved_concurrency
            .as_ref()
            .map(|r| r.value),
        Some(3),
        "the stage's defaults merge over the base defaults"
    );
    for (provider, stage) in [("gcp", "prod"), ("aws", "dev"), ("local", "dev")] {
        let g = graph(provider, stage);
        assert!(!g.functions.contains_key("helper"), "{provider}/{stage}");
        assert_eq!(g.skipped, vec!["helper".to_string()]);
        assert!(g.skipped_span.is_some());
        assert!(
            !g.to_json().contains("\"helper\":"),
            "not in the graph's functions"
        );
    }
    // A function without escape hatches serializes as before (hashes and goldens unchanged).
    assert!(!graph("gcp", "dev").to_json().contains("permissions"));
}

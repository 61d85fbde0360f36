//! CORS on Azure at the configuration level: the Function App's `siteConfig.cors` that the ARM
//! template carries for the CORS table's manifest (`tests/shims/cases/cors.json`), validated
//! against `azure-mgmt-web`'s `Site` model by the ARM double's validator, and the table's
//! requests evaluated against it with App Service CORS's documented behaviour
//! (`nimbus_test_support::cors::azure`: origins and credentials only, the requested method and
//! headers reflected). What App Service itself does with the configuration is not exercised.

mod common;

use std::process::Command;

use nimbus_provider::ProviderId;
use nimbus_test_support::{cors, required_venv_tool};
use serde_json::{Value, json};

fn errors(manifest: &str) -> Vec<String> {
    let g = common::graph_str(manifest);
    nimbus_provider::check(&g, ProviderId::Azure.capabilities())
        .into_iter()
        .filter(|d| d.is_error())
        .map(|d| format!("{} ({})", d.message, d.label.unwrap_or_default()))
        .collect()
}

fn site(manifest: &str) -> Value {
    let g = common::graph_str(manifest);
    let template =
        nimbus_azure::template(&g, &common::build_of(&g), &common::settings(&g)).unwrap();
    let doc: Value = serde_json::from_str(&template).unwrap();
    doc["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "Microsoft.Web/sites")
        .expect("a function app")
        .clone()
}

#[test]
fn a_wildcard_subdomain_origin_is_refused_with_the_reason() {
    let refused = cors::table()["refused"]["azure"]
        .as_str()
        .unwrap()
        .to_string();
    let errors = errors(&cors::manifest(None));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains(&refused) && errors[0].contains("exact origins and `*` only"),
        "{errors:?}"
    );
}

#[test]
fn the_cors_table_against_the_function_app_configuration() {
    let t = cors::table();
    let manifest = cors::manifest(t["refused"]["azure"].as_str());
    assert_eq!(errors(&manifest), Vec::<String>::new());
    let site = site(&manifest);
    let config = &site["properties"]["siteConfig"]["cors"];
    assert_eq!(
        *config,
        json!({ "allowedOrigins": ["https://app.example.com"], "supportCredentials": true })
    );
    let failures: Vec<String> = t["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|case| {
            let answer = cors::azure(config, &cors::Request::of(case));
            cors::check(case, "azure", &answer).err()
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_site_body_with_cors_is_valid_for_the_published_model() {
    let t = cors::table();
    let site = site(&cors::manifest(t["refused"]["azure"].as_str()));
    // The template's expressions are strings where the model wants strings; `properties` is what
    // the double checks against `azure.mgmt.web.models.Site` on a PUT.
    let body =
        json!({ "location": "westeurope", "properties": site["properties"], "kind": site["kind"] });
    let python = required_venv_tool("python");
    let dir = common::repo().join("crates/nimbus-azure/tests");
    let out = Command::new(python)
        .current_dir(&dir)
        .args([
            "-c",
            "import json, sys, arm_double as d, azure.mgmt.web.models as wm\n\
             d.validate_model(wm.Site, json.loads(sys.argv[1]), 'site')\n\
             print('ok')",
            &body.to_string(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // And a malformed one is refused, so the check can fail.
    let mut bad = body.clone();
    bad["properties"]["siteConfig"]["cors"]["allowedOrigins"] = json!("https://app.example.com");
    let out = Command::new(required_venv_tool("python"))
        .current_dir(&dir)
        .args([
            "-c",
            "import json, sys, arm_double as d, azure.mgmt.web.models as wm\n\
             d.validate_model(wm.Site, json.loads(sys.argv[1]), 'site')",
            &bad.to_string(),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success(), "a string for a list must be refused");
}

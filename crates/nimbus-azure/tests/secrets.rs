//! Secret values in Key Vault (`Azure::set_secret`, `secret_states`, `remove_secret`) against
//! the ARM test double and its Key Vault data-plane double (`tests/keyvault_double.py`, which
//! checks `PUT /secrets` bodies with the SDK's own `SecretSetParameters` and the vault's ARM body
//! with `azure-mgmt-keyvault`'s 2024-11-01 model). In the same test, Microsoft's
//! `azure-keyvault-secrets` client (`tests/apps/keyvault_sdk.py`, over the double's TLS listener)
//! reads the value nimbus set and runs its own set/list/delete/recover/purge against the double:
//! the shapes the double accepts are the SDK's, and what nimbus writes is what the SDK reads.
//!
//! Not verified here (there is no Key Vault emulator): Key Vault's own authorization decisions
//! (RBAC evaluation on the real service), the real soft-delete timings, and that the platform
//! resolves Key Vault references in a real Function App.

mod common;

use std::process::Command;

use common::double::{ArmDouble, TOKEN};
use nimbus_cloud::Options;
use serde_json::Value;

const SUB: &str = "00000000-0000-0000-0000-0000000000aa";
const CANARY: &str = "kv-canary-5b1e07c3 with spaces & symbols =/+";

fn manifest() -> String {
    let yaml =
        std::fs::read_to_string(common::repo().join("examples/secrets/nimbus.yaml")).unwrap();
    format!("{yaml}providers:\n  azure: {{ location: westeurope }}\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_values_go_to_key_vault_in_the_sdk_s_shapes() {
    let double = ArmDouble::start_with_tls();
    let env: std::collections::BTreeMap<&str, String> = [
        ("AZURE_SUBSCRIPTION_ID", SUB.to_string()),
        ("NIMBUS_AZURE_ACCESS_TOKEN", TOKEN.to_string()),
        ("NIMBUS_AZURE_ARM_ENDPOINT", double.url()),
        (
            "NIMBUS_AZURE_KEYVAULT_ENDPOINT",
            format!("{}/_keyvault/{{vault}}", double.url()),
        ),
    ]
    .into();
    let lookup = move |name: &str| env.get(name).cloned();
    let graph = common::graph_str(&manifest());
    let azure = nimbus_azure::connect_with(&graph, Options::default(), &lookup)
        .await
        .unwrap();
    let vault = azure.vault_name();
    assert!(vault.starts_with("payments-dev-"), "{vault}");

    // Before the first deploy: no vault, so nothing is set, and nothing is created by reading.
    assert!(azure.secret_states().await.unwrap().is_empty());
    assert!(!double.resources().iter().any(|r| r.contains("KeyVault")));

    // Over Key Vault's 25 KiB: refused before any call.
    let before = double.calls().len();
    let e = azure
        .set_secret("payment-key", &"x".repeat(25 * 1024 + 1))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("limit of 25600"), "{e}");
    assert_eq!(double.calls().len(), before, "no call was made");

    // `set` creates the resource group and the vault (RBAC, the subscription's tenant).
    azure.set_secret("payment-key", CANARY).await.unwrap();
    let resources = double.resources();
    let vault_id = format!(
        "/subscriptions/{SUB}/resourceGroups/payments-dev/providers/Microsoft.KeyVault/vaults/{vault}"
    );
    assert!(resources.contains(&vault_id), "{resources:?}");
    let kv = double.keyvault();
    let versions = &kv["vaults"][&vault]["payment-key"]["versions"];
    assert_eq!(versions[0]["value"], CANARY, "{kv}");
    let nimbus_calls: Vec<&Value> = kv["calls"].as_array().unwrap().iter().collect();
    assert!(
        nimbus_calls.iter().all(|c| c[3] == nimbus_azure::DATA_API),
        "{kv}"
    );

    let states = azure.secret_states().await.unwrap();
    assert_eq!(states.keys().collect::<Vec<_>>(), ["payment-key"]);
    assert!(states["payment-key"].ends_with('Z'), "{states:?}");

    // Microsoft's SDK reads what nimbus set, and its own calls pass the double's checks, at
    // nimbus's api-version and at the SDK's default.
    for api_version in [nimbus_azure::DATA_API, "default"] {
        let python = nimbus_test_support::required_venv_tool("python");
        let out = Command::new(python)
            .arg(common::repo().join("crates/nimbus-azure/tests/apps/keyvault_sdk.py"))
            .arg(format!("{}/_keyvault/{vault}", double.tls_url()))
            .arg(TOKEN)
            .arg(double.tls_cert())
            .arg(api_version)
            .arg("payment-key")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "the SDK failed ({api_version}):\n{stderr}"
        );
        let seen: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(seen["read"]["value"], CANARY, "{seen}");
        assert_eq!(seen["read"]["enabled"], true, "{seen}");
        assert_eq!(
            seen["listed"],
            serde_json::json!(["payment-key", "sdk-one"])
        );
        assert_eq!(seen["deleted"], "sdk-one");
        assert!(
            seen["set_deleted"].as_str().unwrap().contains("409"),
            "{seen}"
        );
        assert_eq!(seen["recovered"], "second");
        assert_eq!(seen["after_purge"], serde_json::json!(["payment-key"]));
        assert_eq!(
            seen["scopes"],
            serde_json::json!(["https://vault.azure.net/.default"])
        );
    }

    // rm soft-deletes; a second rm finds nothing; set again recovers the name first.
    assert!(azure.remove_secret("payment-key").await.unwrap());
    assert!(!azure.remove_secret("payment-key").await.unwrap());
    assert!(azure.secret_states().await.unwrap().is_empty());
    azure.set_secret("payment-key", "rotated").await.unwrap();
    let kv = double.keyvault();
    let versions = kv["vaults"][&vault]["payment-key"]["versions"]
        .as_array()
        .unwrap();
    assert_eq!(versions.last().unwrap()["value"], "rotated");
    assert_eq!(versions.len(), 2, "a new version of the recovered secret");
    assert!(
        azure
            .secret_states()
            .await
            .unwrap()
            .contains_key("payment-key")
    );
}

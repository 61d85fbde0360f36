//! `examples/secrets` with `-p azure`, the real binary, against Azurite and the ARM test double
//! with its Key Vault data-plane double (`crates/nimbus-azure/tests/keyvault_double.py`):
//! `plan`/`deploy` refuse before changing anything while the secret has no value, naming the
//! command; `secret set` (stdin) creates the vault before the first deploy; `deploy` grants Key
//! Vault Secrets User on that one secret to `pay`'s identity only and gives `pay` a Key Vault
//! reference (the Functions host stand-in resolves it as the platform does, so `pay` sees the
//! value and `other` does not); and the value is in no file under `.nimbus/`, no template
//! (the ARM deployment's record included), no state blob and no output. `info`, `logs` and
//! `remove` need no secret.

#[path = "../../nimbus-azure/tests/common/mod.rs"]
#[allow(missing_docs)]
mod common;

#[path = "support/stdin.rs"]
mod stdin;
use std::path::Path;
use std::process::Command;

use common::azurite::{Azurite, KEY};
use common::double::{ArmDouble, TOKEN};
use serde_json::Value;

const SUB: &str = "00000000-0000-0000-0000-0000000000c1";
const CANARY: &str = "az-canary-61d0f2a9-do-not-leak";

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

struct Env<'a> {
    dir: &'a Path,
    azurite: &'a Azurite,
    double: &'a ArmDouble,
    seen: std::cell::RefCell<String>,
}

impl Env<'_> {
    /// `nimbus ARGS -p azure` with `stdin`; asserts the exit code; stdout and stderr.
    fn run(&self, args: &[&str], stdin: Option<&str>, code: i32) -> (String, String) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_nimbus"));
        cmd.args(args)
            .args(["-p", "azure"])
            .current_dir(self.dir)
            .env_remove("NIMBUS_PROVIDER")
            .env_remove("NIMBUS_STAGE")
            .env("NO_COLOR", "1")
            .env("AZURE_SUBSCRIPTION_ID", SUB)
            .env("NIMBUS_AZURE_ACCESS_TOKEN", TOKEN)
            .env("NIMBUS_AZURE_ARM_ENDPOINT", self.double.url())
            .env("NIMBUS_AZURE_LOGS_ENDPOINT", self.double.url())
            .env(
                "NIMBUS_AZURE_APP_ENDPOINT",
                format!("{}/_apps/{{app}}", self.double.url()),
            )
            .env(
                "NIMBUS_AZURE_KEYVAULT_ENDPOINT",
                format!("{}/_keyvault/{{vault}}", self.double.url()),
            )
            .env(
                "NIMBUS_AZURE_STORAGE_ENDPOINT",
                self.azurite.blob_endpoint(),
            )
            .env("NIMBUS_AZURE_STORAGE_KEY", KEY);
        let out = stdin::output_with_stdin(&mut cmd, stdin.map(str::as_bytes));
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        self.seen
            .borrow_mut()
            .push_str(&format!("{stdout}\n{stderr}\n"));
        assert_eq!(
            out.status.code(),
            Some(code),
            "nimbus {} -p azure:\n{stdout}\n{stderr}",
            args.join(" ")
        );
        (stdout, stderr)
    }

    fn json(&self, args: &[&str]) -> Value {
        let (stdout, _) = self.run(args, None, 0);
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
    }

    fn writes(&self) -> usize {
        self.double
            .calls()
            .iter()
            .filter(|(m, _)| m != "GET")
            .count()
    }
}

#[test]
fn a_secret_value_reaches_only_key_vault_and_its_reader() {
    let azurite = Azurite::start();
    let double = ArmDouble::start(&azurite);
    let dir = tempfile::tempdir().unwrap();
    let example = common::repo().join("examples/secrets");
    std::fs::copy(example.join("app.py"), dir.path().join("app.py")).unwrap();
    let yaml = std::fs::read_to_string(example.join("nimbus.yaml")).unwrap();
    std::fs::write(
        dir.path().join("nimbus.yaml"),
        format!("{yaml}providers:\n  azure: {{ location: westeurope }}\n"),
    )
    .unwrap();
    let env = Env {
        dir: dir.path(),
        azurite: &azurite,
        double: &double,
        seen: Default::default(),
    };

    // No value: plan and deploy refuse before changing anything, naming the command.
    for cmd in [&["plan"][..], &["deploy"][..]] {
        let (_, err) = env.run(cmd, None, 1);
        assert!(
            err.contains("nimbus secret set payment-key -p azure -s dev"),
            "{err}"
        );
        assert!(err.contains("nothing was changed"), "{err}");
    }
    assert_eq!(env.writes(), 0, "nothing was changed: {:?}", double.calls());
    let listed = env.json(&["secret", "list", "--output", "json"]);
    assert_eq!(listed["secrets"][0]["set"], false, "{listed}");
    assert_eq!(listed["secrets"][0]["provider"], "azure", "{listed}");

    // Over Key Vault's limit: refused before any call.
    let calls = double.calls().len();
    let (_, err) = env.run(
        &["secret", "set", "payment-key"],
        Some(&"x".repeat(25 * 1024 + 1)),
        1,
    );
    assert!(err.contains("over azure's limit of 25600"), "{err}");
    assert_eq!(double.calls().len(), calls, "no call was made");

    // Set before the first deploy: the vault is created, the value (without the newline) is in it.
    env.run(
        &["secret", "set", "payment-key"],
        Some(&format!("{CANARY}\n")),
        0,
    );
    let kv = double.keyvault();
    let (vault, secrets) = kv["vaults"].as_object().unwrap().iter().next().unwrap();
    assert!(vault.starts_with("payments-dev-"), "{vault}");
    assert_eq!(secrets["payment-key"]["versions"][0]["value"], CANARY);
    let listed = env.json(&["secret", "list", "--output", "json"]);
    assert_eq!(listed["secrets"][0]["set"], true, "{listed}");
    assert!(listed["secrets"][0]["set_at"].is_string(), "{listed}");

    // Plan, deploy, info, logs, build.
    env.json(&["plan", "--output", "json"]);
    let deployed = env.json(&["deploy", "--output", "json"]);
    env.json(&["info", "--output", "json"]);
    env.run(&["info"], None, 0);
    env.run(&["logs", "pay"], None, 0);
    env.json(&["build", "--output", "json"]);

    // Only pay's identity may read the secret, on that secret alone.
    let resources = double.resources();
    let grants: Vec<&String> = resources
        .iter()
        .filter(|r| r.contains("/providers/Microsoft.Authorization/roleAssignments/"))
        .filter(|r| r.contains("/Microsoft.KeyVault/"))
        .collect();
    assert_eq!(grants.len(), 1, "{grants:?}");
    assert!(
        grants[0].contains(&format!("/vaults/{vault}/secrets/payment-key/providers/")),
        "{grants:?}"
    );
    let site = |function: &str| -> Value {
        let id = resources
            .iter()
            .find(|r| {
                r.contains("/Microsoft.Web/sites/payments-dev-")
                    && r.contains(&format!("-{function}-"))
                    && !r.contains("/extensions/")
            })
            .unwrap_or_else(|| panic!("no site for {function}: {resources:?}"));
        let (status, body) =
            double.arm("GET", &format!("{id}?api-version=2024-04-01"), &Value::Null);
        assert_eq!(status, 200, "{body}");
        body
    };
    let setting = |site: &Value, name: &str| -> Option<String> {
        site["properties"]["siteConfig"]["appSettings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .map(|s| s["value"].as_str().unwrap().to_string())
    };
    let pay = site("pay");
    assert_eq!(
        setting(&pay, "PAYMENT_API_KEY").as_deref(),
        Some(format!("@Microsoft.KeyVault(SecretUri=https://{vault}.vault.azure.net/secrets/payment-key/)").as_str())
    );
    assert!(
        pay["properties"]["keyVaultReferenceIdentity"]
            .as_str()
            .unwrap()
            .contains("/userAssignedIdentities/"),
        "{pay}"
    );
    let other = site("other");
    assert_eq!(setting(&other, "PAYMENT_API_KEY"), None);

    // The Functions host stand-in resolves the reference with pay's identity: pay sees the
    // value, other does not see the variable.
    let body = |function: &str| -> Value {
        let invoked = env.json(&["invoke", function, "--output", "json"]);
        serde_json::from_str(invoked["result"]["body"].as_str().unwrap())
            .unwrap_or_else(|e| panic!("{e}: {invoked}"))
    };
    assert_eq!(
        body("pay")["key_length"],
        CANARY.len(),
        "pay sees the value"
    );
    assert_eq!(
        body("other")["sees_key"],
        false,
        "other has no such variable"
    );
    drop(deployed);

    // The leak check: every file under .nimbus/ (the build, azuredeploy.json), the ARM
    // deployment's record (its template and parameters), every blob of the deployment
    // account (state, packages), and every output so far.
    let mut files = vec![dir.path().join(".nimbus")];
    let mut checked = Vec::new();
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(
                std::fs::read_dir(&path)
                    .unwrap()
                    .flatten()
                    .map(|e| e.path()),
            );
        } else {
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !String::from_utf8_lossy(&bytes).contains(CANARY),
                "the value is in {}",
                path.display()
            );
            checked.push(path);
        }
    }
    assert!(
        checked.iter().any(|f| f.ends_with("azuredeploy.json")),
        "{checked:?}"
    );
    let (status, record) = double.arm(
        "GET",
        "/subscriptions/00000000-0000-0000-0000-0000000000c1/resourceGroups/payments-dev/providers/Microsoft.Resources/deployments/nimbus-payments-dev?api-version=2024-03-01",
        &Value::Null,
    );
    assert_eq!(status, 200, "{record}");
    assert!(!record.to_string().contains(CANARY), "in the deployment");
    let state = azurite.blobs("nimbus-state");
    assert!(
        state
            .as_object()
            .unwrap()
            .keys()
            .any(|k| k.ends_with("azure/state.json")),
        "{state}"
    );
    for container in ["nimbus-state", "app-pay", "app-other"] {
        assert!(
            !azurite.blobs(container).to_string().contains(CANARY),
            "the value is in container {container}"
        );
    }

    // remove (no secret needed) keeps the vault (it holds values) unless --force.
    env.run(&["remove", "--yes"], None, 0);
    assert!(
        double
            .resources()
            .iter()
            .any(|r| r.ends_with(&format!("/vaults/{vault}")))
    );
    env.run(&["remove", "--yes", "--force"], None, 0);
    assert!(double.resources().is_empty(), "{:?}", double.resources());

    // rm: a soft delete; a second rm says there is nothing to remove.
    env.run(&["secret", "set", "payment-key"], Some(CANARY), 0);
    env.run(&["secret", "rm", "payment-key"], None, 0);
    let (_, err) = env.run(&["secret", "rm", "payment-key"], None, 1);
    assert!(err.contains("has no value"), "{err}");
    assert!(
        !env.seen.borrow().contains(CANARY),
        "the value appeared in an output"
    );
}

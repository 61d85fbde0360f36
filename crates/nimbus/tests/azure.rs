//! `nimbus … -p azure`, the real binary, against Azurite (deployment storage) and the ARM test
//! double (`crates/nimbus-azure/tests/arm_double.py`), configured only through the documented
//! environment variables: deploy, an unchanged redeploy, `plan --detailed-exitcode`, `info`,
//! `unlock` with a wrong id, failures with their hints (a failed ARM deployment, a refused
//! token, no subscription), and `remove`; and `examples/shop` as it is in the repository —
//! `build`, `deploy`, drift made outside nimbus shown by `plan --refresh` and put back by
//! `deploy --refresh`.

#[path = "../../nimbus-azure/tests/common/mod.rs"]
#[allow(missing_docs)]
mod common;

#[path = "support/stdin.rs"]
mod stdin;
use std::path::Path;
use std::process::{Command, Output};

use common::azurite::{Azurite, KEY};
use common::double::{ArmDouble, TOKEN};
use serde_json::Value;

fn command(args: &[&str], dir: &Path, azurite: &Azurite, double: &ArmDouble) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_nimbus"));
    c.args(args)
        .current_dir(dir)
        .env_remove("NIMBUS_PROVIDER")
        .env_remove("NIMBUS_STAGE")
        .env(
            "AZURE_SUBSCRIPTION_ID",
            "00000000-0000-0000-0000-0000000000c1",
        )
        .env("NIMBUS_AZURE_ACCESS_TOKEN", TOKEN)
        .env("NIMBUS_AZURE_ARM_ENDPOINT", double.url())
        .env(
            "NIMBUS_AZURE_KEYVAULT_ENDPOINT",
            format!("{}/_keyvault/{{vault}}", double.url()),
        )
        .env("NIMBUS_AZURE_STORAGE_ENDPOINT", azurite.blob_endpoint())
        .env("NIMBUS_AZURE_STORAGE_KEY", KEY);
    c
}

/// The shop's `charge-payment` reads the secret `payment-key`: `nimbus secret set -p azure`
/// stores it (creating the stage's Key Vault) before the first deploy, as a user would.
fn set_payment_key(dir: &Path, azurite: &Azurite, double: &ArmDouble) {
    let mut cmd = command(
        &["secret", "set", "payment-key", "-p", "azure"],
        dir,
        azurite,
        double,
    );
    let out = stdin::output_with_stdin(&mut cmd, Some(b"pk_test_shop"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

fn nimbus(args: &[&str], dir: &Path, azurite: &Azurite, double: &ArmDouble) -> Output {
    command(args, dir, azurite, double)
        .output()
        .expect("nimbus runs")
}

/// The `hint:` line of a failure's stderr.
fn hint(stderr: &str) -> &str {
    stderr
        .lines()
        .find_map(|l| l.trim().strip_prefix("hint: "))
        .unwrap_or_else(|| panic!("no hint in:\n{stderr}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn deploy_plan_info_unlock_and_remove_with_p_azure() {
    let azurite = Azurite::start();
    let double = ArmDouble::start(&azurite);
    // The shop in a temporary project.
    let shop = common::build_shop();
    let dir = shop.dir.path();
    let run = |args: &[&str]| nimbus(args, dir, &azurite, &double);
    set_payment_key(dir, &azurite, &double);

    let out = run(&["deploy", "-p", "azure", "--output", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let deployed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        deployed.to_string().contains("azurewebsites.net/orders"),
        "{deployed}"
    );
    assert!(
        text(&out.stderr).contains("uploaded"),
        "{}",
        text(&out.stderr)
    );
    let puts = |d: &ArmDouble| {
        d.calls()
            .iter()
            .filter(|(m, p)| m == "PUT" && p.contains("/deployments/"))
            .count()
    };
    assert_eq!(puts(&double), 1);

    // Unchanged: no PUT, and the plan says so with exit 0.
    let out = run(&["deploy", "-p", "azure"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(puts(&double), 1, "an unchanged redeploy makes no PUT");
    let out = run(&[
        "plan",
        "-p",
        "azure",
        "--detailed-exitcode",
        "--output",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["provider"], "azure");
    assert_eq!(plan["summary"]["create"], 0, "{plan}");

    // A change is pending: exit 2.
    let yaml = common::shop_yaml().replace("timeout: 60s", "timeout: 90s");
    std::fs::write(dir.join("nimbus.yaml"), yaml).unwrap();
    let out = run(&["plan", "-p", "azure", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));

    let out = run(&["info", "-p", "azure", "--output", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let info: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["deployed"], true);
    assert_eq!(info["functions"].as_array().unwrap().len(), 7);

    let out = run(&["unlock", "-p", "azure", "not-the-lock"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("not locked"),
        "{}",
        text(&out.stderr)
    );

    // Failures reach the user with ARM's code and message, and a hint saying how to fix them.
    double.fail_next_deployment_with(
        "MissingSubscriptionRegistration",
        "The subscription is not registered to use namespace 'Microsoft.Web'.",
    );
    let out = run(&["deploy", "-p", "azure"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("DeploymentFailed: At least one resource deployment operation failed.")
            && stderr.contains(
                "MissingSubscriptionRegistration: The subscription is not registered to use namespace 'Microsoft.Web'."
            ),
        "{stderr}"
    );
    assert_eq!(
        hint(&stderr),
        "register the resource provider once per subscription: `az provider register --namespace Microsoft.Web`"
    );
    double.fail_next_deployment("the plan's quota is exhausted");
    let out = run(&["deploy", "-p", "azure"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("Conflict: the plan's quota is exhausted"),
        "{stderr}"
    );
    assert!(
        hint(&stderr).contains("az deployment operation group list --resource-group shop --name "),
        "{stderr}"
    );
    // A refused token: ARM's 401 and its code.
    let out = command(&["info", "-p", "azure"], dir, &azurite, &double)
        .env("NIMBUS_AZURE_ACCESS_TOKEN", "expired")
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("InvalidAuthenticationToken"), "{stderr}");
    assert!(
        hint(&stderr).starts_with("sign in again: `az login`"),
        "{stderr}"
    );
    // No subscription anywhere: refused as `validate` refuses it, before anything is built,
    // at the manifest's `providers:` block with the variable that can give it.
    let out = command(&["plan", "-p", "azure"], dir, &azurite, &double)
        .env_remove("AZURE_SUBSCRIPTION_ID")
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("needs `providers.azure.subscription`")
            && stderr.contains("`AZURE_SUBSCRIPTION_ID`"),
        "{stderr}"
    );
    // After the failures, the same deploy goes through.
    let out = run(&["deploy", "-p", "azure"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    let out = run(&["remove", "-p", "azure", "--yes", "--force"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(double.resources().is_empty(), "{:?}", double.resources());
}

/// `examples/shop`, unchanged (its `table` trigger included), builds and deploys with `-p azure`;
/// a queue deleted outside nimbus is drift that `plan --refresh` reports (exit 2 with
/// `--detailed-exitcode`) and `deploy --refresh` puts back.
#[test]
fn the_shop_as_it_is_builds_and_deploys_and_drift_is_repaired_with_p_azure() {
    let azurite = Azurite::start();
    let double = ArmDouble::start(&azurite);
    let shop = common::build_shop();
    let dir = shop.dir.path();
    assert_eq!(
        std::fs::read(dir.join("nimbus.yaml")).unwrap(),
        std::fs::read(common::repo().join("examples/shop/nimbus.yaml")).unwrap(),
        "the example's manifest, unchanged"
    );
    let run = |args: &[&str]| nimbus(args, dir, &azurite, &double);
    set_payment_key(dir, &azurite, &double);

    let out = run(&["build", "-p", "azure"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let template = std::fs::read_to_string(
        walk(dir, "azuredeploy.json").expect("build writes azuredeploy.json"),
    )
    .unwrap();
    assert!(template.contains("Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers"));
    assert!(template.contains("audit-orders"));

    let out = run(&["deploy", "-p", "azure", "--output", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let deployed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(deployed.to_string().contains("audit-orders"), "{deployed}");

    // Outside nimbus: the payments queue is deleted through ARM.
    let queue = double
        .resources()
        .into_iter()
        .find(|r| r.ends_with("/queues/payments"))
        .unwrap();
    let (status, _) = double.arm(
        "DELETE",
        &format!("{queue}?api-version=2023-05-01"),
        &Value::Null,
    );
    assert!(status == 200 || status == 202, "{status}");
    let out = run(&["plan", "-p", "azure", "--detailed-exitcode"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "without refresh, against the state: {}",
        text(&out.stderr)
    );
    let out = run(&["plan", "-p", "azure", "--refresh", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let shown = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        shown.contains("deleted outside nimbus") && shown.contains("payments"),
        "{shown}"
    );
    let out = run(&["deploy", "-p", "azure", "--refresh"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(double.resources().contains(&queue), "the queue is back");
    let out = run(&["plan", "-p", "azure", "--refresh", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

/// The first file named `name` under `dir`.
fn walk(dir: &Path, name: &str) -> Option<std::path::PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if let Some(found) = walk(&path, name) {
                return Some(found);
            }
        } else if path.file_name().is_some_and(|n| n == name) {
            return Some(path);
        }
    }
    None
}

//! `nimbus … -p azure`, the real binary, against Azurite (deployment storage) and the ARM test
//! double (`crates/nimbus-azure/tests/arm_double.py`), configured only through the documented
//! environment variables: deploy, an unchanged redeploy, `plan --detailed-exitcode`, `info`,
//! `unlock` with a wrong id, failures with their hints (a failed ARM deployment, a refused
//! token, no subscription), and `remove`.

#[path = "../../nimbus-azure/tests/common/mod.rs"]
#[allow(missing_docs)]
mod common;

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
        .env("NIMBUS_AZURE_STORAGE_ENDPOINT", azurite.blob_endpoint())
        .env("NIMBUS_AZURE_STORAGE_KEY", KEY);
    c
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
    // The shop (without `audit-orders`, which Azure refuses) in a temporary project.
    let shop = common::build_shop();
    let dir = shop.dir.path();
    let run = |args: &[&str]| nimbus(args, dir, &azurite, &double);

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
    assert_eq!(info["functions"].as_array().unwrap().len(), 6);

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

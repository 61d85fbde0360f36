//! `nimbus … -p azure`, the real binary, against Azurite (deployment storage) and the ARM test
//! double (`crates/nimbus-azure/tests/arm_double.py`), configured only through the documented
//! environment variables: deploy, an unchanged redeploy, `plan --detailed-exitcode`, `info`,
//! `unlock` with a wrong id, and `remove`.

#[path = "../../nimbus-azure/tests/common/mod.rs"]
#[allow(missing_docs)]
mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::azurite::{Azurite, KEY};
use common::double::{ArmDouble, TOKEN};
use serde_json::Value;

fn nimbus(args: &[&str], dir: &Path, azurite: &Azurite, double: &ArmDouble) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nimbus"))
        .args(args)
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
        .env("NIMBUS_AZURE_STORAGE_KEY", KEY)
        .output()
        .expect("nimbus runs")
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

    let out = run(&["remove", "-p", "azure", "--yes", "--force"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(double.resources().is_empty(), "{:?}", double.resources());
}

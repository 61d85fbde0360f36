//! Secrets in the ARM template: one Key Vault (RBAC authorization) and no secret resource, Key
//! Vault Secrets User per secret for exactly the functions that read it, Key Vault references
//! as app settings resolved with the app's own identity; and the ARM test double, which
//! validates the vault with `azure-mgmt-keyvault`'s model, refusing what that model rejects and
//! a role assignment whose secret has no value yet.

mod common;

use serde_json::{Value, json};

const GROUP: &str = "/subscriptions/00000000-0000-0000-0000-0000000000aa/resourcegroups/rg";

fn template() -> Value {
    let g = common::graph_in(
        &common::shop_with_secret_yaml(),
        Some(&common::repo().join("examples/shop")),
    );
    let text = nimbus_azure::template(&g, &common::build_of(&g), &common::settings(&g)).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn of_type<'a>(doc: &'a Value, t: &str) -> Vec<&'a Value> {
    doc["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["type"] == t)
        .collect()
}

#[test]
fn one_vault_per_stage_with_rbac_and_no_value() {
    let doc = template();
    let vaults = of_type(&doc, "Microsoft.KeyVault/vaults");
    assert_eq!(vaults.len(), 1);
    let p = &vaults[0]["properties"];
    assert_eq!(p["enableRbacAuthorization"], true);
    assert_eq!(p["tenantId"], "[subscription().tenantId]");
    assert_eq!(p["enableSoftDelete"], true);
    assert!(p.get("accessPolicies").is_none(), "{p}");
    assert!(p.get("enablePurgeProtection").is_none(), "{p}");
    assert_eq!(
        doc["variables"]["keyVault"],
        "[concat('shop-dev-', parameters('suffix'))]"
    );
    assert!(of_type(&doc, "Microsoft.KeyVault/vaults/secrets").is_empty());
    // The shop without secrets has no vault.
    let g = common::graph_in(
        &common::shop_without_secret_yaml(),
        Some(&common::repo().join("examples/shop")),
    );
    let plain = nimbus_azure::template(&g, &common::build_of(&g), &common::settings(&g)).unwrap();
    assert!(!plain.contains("Microsoft.KeyVault"));
}

#[test]
fn only_the_reader_gets_the_secret_through_its_own_identity() {
    let doc = template();
    let grants: Vec<&Value> = of_type(&doc, "Microsoft.Authorization/roleAssignments")
        .into_iter()
        .filter(|r| r["scope"].as_str().unwrap().contains("Microsoft.KeyVault"))
        .collect();
    assert_eq!(grants.len(), 1, "{grants:?}");
    let g = grants[0];
    assert_eq!(
        g["scope"],
        "[resourceId('Microsoft.KeyVault/vaults/secrets', variables('keyVault'), 'payment-key')]"
    );
    assert!(
        g["properties"]["roleDefinitionId"]
            .as_str()
            .unwrap()
            .contains("4633458b-17de-408a-b874-0445c86b69e6")
    );
    assert!(
        g["properties"]["principalId"]
            .as_str()
            .unwrap()
            .contains("'shop-dev-charge-payment'"),
        "{g}"
    );
    for site in of_type(&doc, "Microsoft.Web/sites") {
        let settings = site["properties"]["siteConfig"]["appSettings"]
            .as_array()
            .unwrap();
        let key = settings.iter().find(|s| s["name"] == "PAYMENT_API_KEY");
        let reader = site["name"] == "[variables('app-charge-payment')]";
        assert_eq!(key.is_some(), reader, "{}", site["name"]);
        assert_eq!(
            site["properties"]
                .get("keyVaultReferenceIdentity")
                .is_some(),
            reader
        );
        if reader {
            assert_eq!(
                key.unwrap()["value"],
                "[concat('@Microsoft.KeyVault(SecretUri=', reference(resourceId('Microsoft.KeyVault/vaults', variables('keyVault')), '2024-11-01').vaultUri, 'secrets/payment-key/)')]"
            );
            assert_eq!(
                site["properties"]["keyVaultReferenceIdentity"],
                "[resourceId('Microsoft.ManagedIdentity/userAssignedIdentities', 'shop-dev-charge-payment')]"
            );
        }
    }
}

fn deploy(double: &common::double::ArmDouble, name: &str, template: &Value) -> (u16, Value) {
    double.arm(
        "PUT",
        &format!("{GROUP}/providers/Microsoft.Resources/deployments/{name}?api-version=2024-03-01"),
        &json!({ "properties": { "mode": "Incremental", "template": template, "parameters": {} } }),
    )
}

#[test]
fn the_arm_double_checks_the_vault_and_the_secret_scope() {
    let double = common::double::ArmDouble::start_without_storage();
    let (status, body) = double.arm(
        "PUT",
        &format!("{GROUP}?api-version=2021-04-01"),
        &json!({ "location": "westeurope" }),
    );
    assert_eq!(status, 201, "{body}");
    let template = template();

    // The secret has no value yet: the role assignment's scope does not exist.
    let (status, body) = deploy(&double, "no-value", &template);
    assert_eq!(status, 404, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Key Vault secret `payment-key` has no value"),
        "{body}"
    );

    // Model violations of the vault are refused.
    type Change = fn(&mut Value);
    let cases: [(&str, Change, &str); 3] = [
        (
            "a vault without a tenant",
            |p| {
                p.as_object_mut().unwrap().remove("tenantId");
            },
            "requires `tenantId`",
        ),
        (
            "RBAC authorization as text",
            |p| p["enableRbacAuthorization"] = "yes".into(),
            "expected bool, got str",
        ),
        (
            "an unknown property",
            |p| p["rbac"] = true.into(),
            "`rbac` is not a property of",
        ),
    ];
    for (i, (what, change, message)) in cases.into_iter().enumerate() {
        let mut t = template.clone();
        for r in t["resources"].as_array_mut().unwrap() {
            if r["type"] == "Microsoft.KeyVault/vaults" {
                change(&mut r["properties"]);
            }
        }
        let (status, body) = deploy(&double, &format!("invalid-{i}"), &t);
        assert_eq!(status, 400, "{what}: {body}");
        let got = body["error"]["message"].as_str().unwrap_or_default();
        assert!(got.contains(message), "{what}: `{got}` lacks `{message}`");
    }

    // The vault alone (as `nimbus secret set` creates it), then a value: the template deploys.
    let suffix = template["parameters"]["suffix"]["defaultValue"]
        .as_str()
        .unwrap()
        .to_string();
    let vault_name = format!("shop-dev-{suffix}");
    let (status, body) = double.arm(
        "PUT",
        &format!("{GROUP}/providers/Microsoft.KeyVault/vaults/{vault_name}?api-version=2024-11-01"),
        &json!({
            "location": "westeurope",
            "properties": nimbus_azure::template::vault_properties(json!("00000000-0000-0000-0000-0000000000aa")),
        }),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["properties"]["vaultUri"],
        format!("https://{vault_name}.vault.azure.net/")
    );
    let (status, body) = double.arm(
        "PUT",
        &format!("/_keyvault/{vault_name}/secrets/payment-key?api-version=7.4"),
        &json!({ "value": "v" }),
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = double.arm(
        "PUT",
        &format!("/_keyvault/{vault_name}/secrets/other?api-version=7.4"),
        &json!({ "value": "v", "password": true }),
    );
    assert_eq!(status, 400, "not a SecretSetParameters body: {body}");
    let (status, body) = deploy(&double, "valid", &template);
    assert_eq!(status, 201, "{body}");
}

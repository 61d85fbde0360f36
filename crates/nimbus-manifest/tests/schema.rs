//! The checked-in JSON Schema (`schemas/nimbus.schema.json`) must equal the one generated from
//! the Rust types. Run with `BLESS=1` to regenerate it.

use std::path::Path;

#[test]
fn checked_in_schema_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas/nimbus.schema.json");
    let generated = nimbus_manifest::json_schema();
    if std::env::var_os("BLESS").is_some() {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "schemas/nimbus.schema.json is stale; regenerate it with `BLESS=1 cargo test -p nimbus-manifest --test schema` (or `nimbus schema > schemas/nimbus.schema.json`)"
    );
}

#[test]
fn schema_describes_every_top_level_key_and_trigger() {
    let schema: serde_json::Value = serde_json::from_str(&nimbus_manifest::json_schema()).unwrap();
    let props = schema["properties"]
        .as_object()
        .expect("top-level properties");
    let mut keys: Vec<&str> = props.keys().map(String::as_str).collect();
    keys.sort();
    let mut expected = nimbus_manifest::TOP_LEVEL_KEYS.to_vec();
    expected.sort();
    assert_eq!(
        keys, expected,
        "TOP_LEVEL_KEYS must list exactly the Manifest fields"
    );
    for (key, value) in props {
        assert!(
            value.get("description").is_some() || value.get("$ref").is_some(),
            "`{key}` has no description"
        );
    }
    let text = schema.to_string();
    for trigger in ["http", "schedule", "queue", "topic", "bucket", "table"] {
        assert!(
            text.contains(&format!("\"{trigger}\"")),
            "schema lacks trigger `{trigger}`"
        );
    }
    assert_eq!(
        schema["required"],
        serde_json::json!(["version", "service", "functions"])
    );
}

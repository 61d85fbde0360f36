//! Native resources: what a provider adapter lowers the app graph into, and what the engine
//! plans and applies. Properties are plain JSON; a property may refer to another resource's
//! output with `{"$ref": "<logical id>", "output": "<name>"}`, resolved at apply time.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One resource as the provider wants it to be.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NativeResource {
    /// Stable logical id, unique in a deployment: `<kind>/<name>`, e.g.
    /// `aws.lambda.function/place-order`.
    pub id: String,
    /// The resource type the driver knows, e.g. `aws.lambda.function`.
    pub kind: String,
    /// The name the resource gets in the cloud when the provider decides it (deterministic names
    /// let an interrupted create be found and adopted instead of created twice).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub physical_name: Option<String>,
    /// Desired properties; values may be [`reference()`]s to other resources' outputs.
    pub properties: Value,
    /// Logical ids this resource needs to exist first (references add their target implicitly).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    /// Top-level property names whose change cannot be applied in place: the resource is
    /// replaced (deleted, then created) instead.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replace_on: Vec<String>,
    /// Never delete it when it still holds data (buckets, tables) unless forced.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub retain_data: bool,
}

impl NativeResource {
    /// Every logical id this resource needs first: `depends_on` plus the target of every
    /// reference in its properties, sorted and without repeats.
    pub fn dependencies(&self) -> BTreeSet<String> {
        let mut deps: BTreeSet<String> = self.depends_on.iter().cloned().collect();
        deps.extend(references(&self.properties).into_iter().map(|(id, _)| id));
        deps
    }
}

/// Whether resources of `kind` stand for something the deployment uses but does not own: kinds
/// named `<provider>.existing`. Their driver only reads (create and update look the resource
/// up, delete forgets it), and plans show them as `existing (not managed)`.
pub fn is_external(kind: &str) -> bool {
    kind.ends_with(".existing")
}

/// A reference to `output` of resource `id`, to put in a property.
pub fn reference(id: &str, output: &str) -> Value {
    serde_json::json!({ "$ref": id, "output": output })
}

/// The (id, output) of a reference value, if it is one.
pub fn as_reference(v: &Value) -> Option<(&str, &str)> {
    let obj = v.as_object()?;
    if obj.len() != 2 {
        return None;
    }
    Some((obj.get("$ref")?.as_str()?, obj.get("output")?.as_str()?))
}

/// Every reference inside `v`, depth first.
pub fn references(v: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    collect(v, &mut out);
    out
}

fn collect(v: &Value, out: &mut Vec<(String, String)>) {
    if let Some((id, output)) = as_reference(v) {
        out.push((id.to_string(), output.to_string()));
        return;
    }
    match v {
        Value::Array(items) => items.iter().for_each(|i| collect(i, out)),
        Value::Object(map) => map.values().for_each(|i| collect(i, out)),
        _ => {}
    }
}

/// Outputs of applied resources, by logical id.
pub type Outputs = BTreeMap<String, BTreeMap<String, Value>>;

/// `v` with every reference replaced by the output it names, or the first unresolved one.
pub fn resolve(v: &Value, outputs: &Outputs) -> Result<Value, (String, String)> {
    if let Some((id, output)) = as_reference(v) {
        return outputs
            .get(id)
            .and_then(|o| o.get(output))
            .cloned()
            .ok_or_else(|| (id.to_string(), output.to_string()));
    }
    Ok(match v {
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|i| resolve(i, outputs))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, i)| resolve(i, outputs).map(|r| (k.clone(), r)))
                .collect::<Result<_, _>>()?,
        ),
        other => other.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn references_are_found_and_resolved() {
        let props = json!({ "Role": reference("aws.iam.role/a", "arn"), "List": [1, reference("x", "y")], "Plain": { "$ref": "not-a-ref" } });
        assert_eq!(
            references(&props),
            vec![
                ("aws.iam.role/a".into(), "arn".into()),
                ("x".into(), "y".into())
            ]
        );
        let mut outputs = Outputs::new();
        outputs
            .entry("aws.iam.role/a".into())
            .or_default()
            .insert("arn".into(), json!("arn:aws:iam::1:role/a"));
        assert_eq!(resolve(&props, &outputs), Err(("x".into(), "y".into())));
        outputs
            .entry("x".into())
            .or_default()
            .insert("y".into(), json!(2));
        let r = resolve(&props, &outputs).unwrap();
        assert_eq!(
            r,
            json!({ "Role": "arn:aws:iam::1:role/a", "List": [1, 2], "Plain": { "$ref": "not-a-ref" } })
        );
    }
}

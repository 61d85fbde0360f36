//! The client libraries a provider's shim needs, merged into each function's dependencies.
//!
//! A provider declares them as data: `providers/<id>/shims/python/requirements.txt` (pinned pip
//! lines) and `providers/<id>/shims/node/package.json` (`dependencies`). For that provider,
//! `nimbus build` merges them with the function's own `requirements.txt` / `package.json`: the
//! user's lines come first and stay as written, and a provider line is added only when the user
//! does not name the same package (the user's pin wins). The capability `[package] shim_deps`
//! says where the merged result goes:
//! - `vendor` (default): it is what gets installed into the zip, so the provider's libraries
//!   count in the dependency cache key like the user's own (a build that changes only handler
//!   code reuses the installed tree);
//! - `list`: nothing more is installed; the provider's libraries are written into the zip's root
//!   dependency file (`requirements.txt`, or the root `package.json`'s `dependencies`) for the
//!   platform's own build to install (Cloud Functions does), which keeps zips small and builds fast.
//!
//! A function gets only the libraries its `uses` need: the capability table `[package.libraries]`
//! names them per resource kind (and `always`, and `uses` for any resource), so a hello-world
//! function ships none of the resource SDKs, and one that uses a queue gets the queue client.
//!
//! Everything here is data-driven: no provider is named in code.

use nimbus_manifest::{Language, ResourceKind};
use nimbus_provider::ProviderId;
use serde_json::{Map, Value};

use crate::shims::PROVIDER_DEPS;

/// The dependency file bytes `provider` declares for `language`, if any: every library.
pub(crate) fn declared_all(provider: ProviderId, language: Language) -> Option<&'static [u8]> {
    let lang = match language {
        Language::Python => "python",
        Language::Node => "node",
    };
    PROVIDER_DEPS
        .iter()
        .find(|(p, l, _)| *p == provider.as_str() && *l == lang)
        .map(|(_, _, bytes)| *bytes)
}

/// The part of `provider`'s dependency file for `language` that a function using resources of
/// `used` kinds needs (see `[package.libraries]`), or `None` when it needs none of them.
pub(crate) fn declared(
    provider: ProviderId,
    language: Language,
    used: &[ResourceKind],
) -> Option<Vec<u8>> {
    let all = declared_all(provider, language)?;
    let wanted = provider
        .capabilities()
        .package
        .as_ref()
        .and_then(|p| p.libraries_for(used.iter().copied()));
    let Some(wanted) = wanted else {
        return Some(all.to_vec());
    };
    let picked = match language {
        Language::Python => {
            let wanted: std::collections::BTreeSet<String> =
                wanted.iter().filter_map(|n| requirement_name(n)).collect();
            let lines: Vec<&str> = std::str::from_utf8(all)
                .unwrap_or_default()
                .lines()
                .filter(|l| requirement_name(l).is_some_and(|n| wanted.contains(&n)))
                .collect();
            if lines.is_empty() {
                return None;
            }
            let mut text = lines.join("\n");
            text.push('\n');
            text.into_bytes()
        }
        Language::Node => {
            let mut doc: Value = serde_json::from_slice(all).ok()?;
            let deps = doc.get_mut("dependencies")?.as_object_mut()?;
            deps.retain(|name, _| wanted.contains(name.as_str()));
            if deps.is_empty() {
                return None;
            }
            to_bytes(&doc)
        }
    };
    Some(picked)
}

/// The PEP 503 name a requirement line is about (`Google_Cloud.Firestore>=2` →
/// `google-cloud-firestore`), or `None` for comments, options and blank lines.
pub(crate) fn requirement_name(line: &str) -> Option<String> {
    let line = line.split('#').next().unwrap_or_default().trim();
    if line.is_empty() || line.starts_with('-') {
        return None;
    }
    let end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        .unwrap_or(line.len());
    let name = &line[..end];
    if name.is_empty() {
        return None;
    }
    let mut out = String::new();
    for c in name.chars() {
        let c = if matches!(c, '_' | '.') {
            '-'
        } else {
            c.to_ascii_lowercase()
        };
        if !(c == '-' && out.ends_with('-')) {
            out.push(c);
        }
    }
    Some(out)
}

/// The provider's requirement lines the user's file does not name, in the provider's order.
pub(crate) fn missing_requirements(user: Option<&[u8]>, provider: &[u8]) -> Vec<String> {
    let user = String::from_utf8_lossy(user.unwrap_or_default());
    let named: std::collections::BTreeSet<String> =
        user.lines().filter_map(requirement_name).collect();
    String::from_utf8_lossy(provider)
        .lines()
        .filter(|l| requirement_name(l).is_some_and(|n| !named.contains(&n)))
        .map(|l| l.trim().to_string())
        .collect()
}

/// The user's `requirements.txt` with the provider's missing lines appended.
pub(crate) fn merge_requirements(user: Option<&[u8]>, provider: &[u8]) -> Vec<u8> {
    let missing = missing_requirements(user, provider);
    let mut out = user.unwrap_or_default().to_vec();
    if missing.is_empty() {
        return out;
    }
    if !out.is_empty() && !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    out.extend_from_slice(b"# client libraries of the nimbus shim\n");
    for line in missing {
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    out
}

/// The provider's `dependencies` the user's `package.json` does not name, sorted by name.
pub(crate) fn missing_dependencies(user: Option<&[u8]>, provider: &[u8]) -> Map<String, Value> {
    let deps = |bytes: &[u8]| -> Map<String, Value> {
        serde_json::from_slice::<Value>(bytes)
            .ok()
            .and_then(|v| v.get("dependencies").and_then(Value::as_object).cloned())
            .unwrap_or_default()
    };
    let user = user.map(deps).unwrap_or_default();
    let mut missing: Vec<(String, Value)> = deps(provider)
        .into_iter()
        .filter(|(k, _)| !user.contains_key(k))
        .collect();
    missing.sort_by(|a, b| a.0.cmp(&b.0));
    missing.into_iter().collect()
}

/// The user's `package.json` (or a minimal one) with the provider's missing dependencies added.
pub(crate) fn merge_package_json(user: Option<&[u8]>, provider: &[u8]) -> Vec<u8> {
    let missing = missing_dependencies(user, provider);
    let mut doc = user
        .and_then(|b| serde_json::from_slice::<Value>(b).ok())
        .filter(Value::is_object)
        .unwrap_or_else(|| serde_json::json!({ "name": "nimbus-function", "private": true }));
    if missing.is_empty() {
        return user.map(<[u8]>::to_vec).unwrap_or_else(|| to_bytes(&doc));
    }
    let deps = doc
        .as_object_mut()
        .expect("an object")
        .entry("dependencies")
        .or_insert_with(|| Value::Object(Map::new()));
    if !deps.is_object() {
        *deps = Value::Object(Map::new());
    }
    let deps = deps.as_object_mut().expect("an object");
    deps.extend(missing);
    to_bytes(&doc)
}

fn to_bytes(v: &Value) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(v).expect("json");
    bytes.push(b'\n');
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every library a provider declares is named in its `[package.libraries]` table and the
    /// other way round, so a library added to a shim (or renamed) cannot be silently left out of
    /// every package, nor a table entry point at nothing.
    #[test]
    fn every_declared_library_has_a_row_and_every_row_a_library() {
        for provider in ProviderId::ALL {
            let Some(table) = provider
                .capabilities()
                .package
                .as_ref()
                .and_then(|p| p.libraries.clone())
            else {
                continue;
            };
            let mut declared = std::collections::BTreeSet::new();
            if let Some(bytes) = declared_all(provider, Language::Python) {
                declared.extend(
                    String::from_utf8_lossy(bytes)
                        .lines()
                        .filter_map(requirement_name),
                );
            }
            if let Some(bytes) = declared_all(provider, Language::Node) {
                let doc: Value = serde_json::from_slice(bytes).unwrap();
                declared.extend(doc["dependencies"].as_object().unwrap().keys().cloned());
            }
            let listed: std::collections::BTreeSet<String> = table
                .values()
                .flatten()
                .map(|n| {
                    requirement_name(n)
                        .filter(|_| !n.starts_with('@'))
                        .unwrap_or(n.clone())
                })
                .collect();
            assert_eq!(
                declared, listed,
                "{provider}: the shim's dependency files and `[package.libraries]` disagree"
            );
        }
    }

    #[test]
    fn a_function_gets_only_the_libraries_its_uses_need() {
        let names = |bytes: Option<Vec<u8>>| -> Vec<String> {
            let Some(bytes) = bytes else { return vec![] };
            match serde_json::from_slice::<Value>(&bytes) {
                Ok(doc) => doc["dependencies"]
                    .as_object()
                    .unwrap()
                    .keys()
                    .cloned()
                    .collect(),
                Err(_) => String::from_utf8_lossy(&bytes)
                    .lines()
                    .filter_map(requirement_name)
                    .collect(),
            }
        };
        let azure = ProviderId::Azure;
        assert!(names(declared(azure, Language::Python, &[])).is_empty());
        assert_eq!(
            names(declared(azure, Language::Node, &[])),
            ["@azure/functions"]
        );
        assert_eq!(
            names(declared(azure, Language::Python, &[ResourceKind::Queue])),
            ["azure-identity", "azure-storage-queue"]
        );
        assert_eq!(
            names(declared(
                ProviderId::Gcp,
                Language::Node,
                &[ResourceKind::Topic, ResourceKind::Queue]
            )),
            ["@google-cloud/pubsub"]
        );
    }

    #[test]
    fn requirement_names_are_normalized() {
        assert_eq!(
            requirement_name("Google_Cloud.Firestore>=2 # x").as_deref(),
            Some("google-cloud-firestore")
        );
        assert_eq!(
            requirement_name("requests[socks]==2.32"),
            Some("requests".into())
        );
        assert_eq!(requirement_name("-r other.txt"), None);
        assert_eq!(requirement_name("   # comment"), None);
    }

    #[test]
    fn the_users_pin_wins_and_the_rest_is_appended() {
        let provider = b"google-cloud-firestore==2.21.0\ngoogle-cloud-pubsub==2.31.1\n";
        let user = b"Pillow==11.1.0\ngoogle_cloud_firestore==2.19.0";
        let merged = String::from_utf8(merge_requirements(Some(user), provider)).unwrap();
        assert_eq!(
            merged,
            "Pillow==11.1.0\ngoogle_cloud_firestore==2.19.0\n# client libraries of the nimbus shim\ngoogle-cloud-pubsub==2.31.1\n"
        );
        assert_eq!(
            String::from_utf8(merge_requirements(None, provider)).unwrap(),
            "# client libraries of the nimbus shim\ngoogle-cloud-firestore==2.21.0\ngoogle-cloud-pubsub==2.31.1\n"
        );
        // Nothing to add: the user's bytes are kept as they are.
        assert_eq!(
            merge_requirements(
                Some(b"google-cloud-firestore\ngoogle-cloud-pubsub"),
                provider
            ),
            b"google-cloud-firestore\ngoogle-cloud-pubsub"
        );
    }

    #[test]
    fn package_json_dependencies_merge_with_the_users_pin_winning() {
        let provider = br#"{"dependencies": {"@google-cloud/pubsub": "4.0.0", "@google-cloud/firestore": "7.0.0"}}"#;
        let user = br#"{"name": "pay", "dependencies": {"stripe": "1.0.0", "@google-cloud/firestore": "6.0.0"}}"#;
        let merged: Value =
            serde_json::from_slice(&merge_package_json(Some(user), provider)).unwrap();
        assert_eq!(
            merged["dependencies"],
            serde_json::json!({"stripe": "1.0.0", "@google-cloud/firestore": "6.0.0", "@google-cloud/pubsub": "4.0.0"})
        );
        assert_eq!(merged["name"], "pay");
        let alone: Value = serde_json::from_slice(&merge_package_json(None, provider)).unwrap();
        assert_eq!(
            alone["dependencies"]
                .as_object()
                .unwrap()
                .keys()
                .collect::<Vec<_>>(),
            ["@google-cloud/firestore", "@google-cloud/pubsub"]
        );
    }
}

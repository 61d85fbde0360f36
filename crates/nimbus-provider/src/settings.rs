//! The deployment settings a provider needs (`providers.<id>.<key>`): filled in from the
//! environment when the manifest leaves them out, and reported at the manifest's `providers:`
//! block with the exact lines to add when they are nowhere.
//!
//! Which settings, which variables and what deploy does without them is capability data
//! (`[settings.<key>]` in `providers/<id>/capabilities.toml`).

use nimbus_diagnostic::{Diagnostic, Span};
use nimbus_graph::AppGraph;
use nimbus_manifest::Manifest;
use serde_json::Value;

use crate::Capabilities;
use crate::capabilities::SettingCapability;

/// Looks an environment variable up.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Fills the settings the manifest leaves unset from the environment (the first variable of
/// each `env` list that is set), in `graph.settings[<id>]`; returns the settings still missing.
pub fn fill_settings<'c>(
    graph: &mut AppGraph,
    caps: &'c Capabilities,
    env: Env<'_>,
) -> Vec<(&'c str, &'c SettingCapability)> {
    let mut missing = Vec::new();
    let mut changed = false;
    for (key, setting) in &caps.settings {
        let set = graph
            .settings
            .get(&caps.id)
            .and_then(|v| v.get(key))
            .and_then(Value::as_str)
            .is_some_and(|v| !v.trim().is_empty());
        if set {
            continue;
        }
        let found = setting
            .env
            .iter()
            .find_map(|name| env(name).filter(|v| !v.trim().is_empty()));
        match found {
            Some(value) => {
                let block = graph
                    .settings
                    .entry(caps.id.clone())
                    .or_insert_with(|| Value::Object(Default::default()));
                if !block.is_object() {
                    *block = Value::Object(Default::default());
                }
                block[key.as_str()] = Value::String(value);
                changed = true;
            }
            None => missing.push((key.as_str(), setting)),
        }
    }
    if changed {
        graph.rehash();
    }
    missing
}

/// Tags (`providers.<id>.tags`) over the provider's lengths, at the `providers.<id>:` key.
fn tags(graph: &AppGraph, manifest: &Manifest, caps: &Capabilities) -> Vec<Diagnostic> {
    let id = caps.id.as_str();
    let Some(tags) = graph
        .settings
        .get(id)
        .and_then(|v| v.get("tags"))
        .and_then(Value::as_object)
    else {
        return Vec::new();
    };
    let span = manifest
        .spans
        .provider
        .get(id)
        .copied()
        .or(manifest.spans.providers)
        .unwrap_or(Span::at(1, 1, 1));
    let mut diags = Vec::new();
    for (key, value) in tags {
        let value = value.as_str().unwrap_or_default();
        for (what, text, max) in [
            ("key", key.as_str(), caps.text.tag_key),
            ("value", value, caps.text.tag_value),
        ] {
            let chars = text.chars().count();
            if let Some(max) = max.filter(|max| chars > *max) {
                diags.push(
                    Diagnostic::error(
                        span,
                        format!(
                            "the {what} of tag `{key}` in `providers.{id}.tags` is {chars} characters long; {} takes at most {max}",
                            caps.name
                        ),
                    )
                    .with_hint(format!("shorten it to {max} characters or fewer")),
                );
            }
        }
    }
    diags
}

/// [`fill_settings`], then an error for the required settings still missing (deploy would
/// refuse to run) and a warning for the others, at the `providers.<id>:` key, else the
/// `providers:` key, else the first line, with the lines to add and the variables to set; and
/// tags over the provider's lengths.
pub fn check_settings(
    graph: &mut AppGraph,
    manifest: &Manifest,
    caps: &Capabilities,
    env: Env<'_>,
) -> Vec<Diagnostic> {
    let missing = fill_settings(graph, caps, env);
    let id = caps.id.as_str();
    let spans = &manifest.spans;
    let mut diags = tags(graph, manifest, caps);
    // Where to add, and the lines, indented as they go in the file.
    let (span, label, place, indent, opening) = match (spans.provider.get(id), spans.providers) {
        (Some(s), _) => (
            *s,
            format!("`{id}` settings"),
            format!("under `{id}:` (line {})", s.line),
            s.column as usize + 1,
            Vec::new(),
        ),
        (None, Some(s)) => (
            s,
            format!("no `{id}:` here"),
            format!("under `providers:` (line {})", s.line),
            s.column as usize + 3,
            vec![format!("{}{id}:", " ".repeat(s.column as usize + 1))],
        ),
        (None, None) => (
            Span::at(1, 1, 1),
            "no `providers:` block in this file".to_string(),
            "at the end of the file".to_string(),
            4,
            vec!["providers:".to_string(), format!("  {id}:")],
        ),
    };
    for required in [true, false] {
        let keys: Vec<_> = missing
            .iter()
            .filter(|(_, s)| s.required == required)
            .collect();
        if keys.is_empty() {
            continue;
        }
        let names = keys
            .iter()
            .map(|(k, _)| format!("`providers.{id}.{k}`"))
            .collect::<Vec<_>>()
            .join(" and ");
        let mut lines = opening.clone();
        lines.extend(
            keys.iter()
                .map(|(k, s)| format!("{}{k}: {}", " ".repeat(indent), s.example)),
        );
        let from_env = keys
            .iter()
            .filter(|(_, s)| !s.env.is_empty())
            .map(|(_, s)| {
                s.env
                    .iter()
                    .map(|v| format!("`{v}`"))
                    .collect::<Vec<_>>()
                    .join(" or ")
            })
            .collect::<Vec<_>>();
        let mut hint = format!(
            "add {place}:\n{}",
            lines
                .iter()
                .map(|l| format!("            {l}"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        if !from_env.is_empty() {
            hint.push_str(&format!(
                "\n          or set {} in the environment",
                from_env.join(", and ")
            ));
        }
        let d = if required {
            Diagnostic::error(span, format!("deploying to {} needs {names}", caps.name))
        } else {
            let why = keys
                .iter()
                .filter_map(|(_, s)| s.missing.as_deref())
                .collect::<Vec<_>>()
                .join("; ");
            Diagnostic::warning(span, format!("{names} is not set: {why}"))
        };
        diags.push(d.with_label(label.clone()).with_hint(hint));
    }
    diags
}

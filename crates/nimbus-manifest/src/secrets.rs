//! Checks about secrets: references to undeclared secrets, and credentials passed in through
//! `{{ env.X }}` templates (which would write their value into every build output) instead of
//! `secrets:`.

use marked_yaml::Node;
use marked_yaml::types::MarkedMappingNode;
use nimbus_diagnostic::{Diagnostic, did_you_mean};

use crate::de::scalar_span;
use crate::model::Manifest;

/// Parts of an environment variable's name that say it holds a credential.
const CREDENTIAL_WORDS: &[&str] = &["KEY", "SECRET", "TOKEN", "PASSWORD"];

/// Whether an environment variable's name looks like it holds a credential.
pub fn looks_like_credential(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    CREDENTIAL_WORDS.iter().any(|w| upper.contains(w))
}

/// Warns, before templates are rendered, about each credential-looking environment variable whose
/// value reads `{{ env.X }}`: the value would end up in plain text in templates and state.
pub(crate) fn credential_templates(root: &MarkedMappingNode, diags: &mut Vec<Diagnostic>) {
    let mut envs: Vec<&MarkedMappingNode> = Vec::new();
    fn env_of(n: &Node) -> Option<&MarkedMappingNode> {
        match n {
            Node::Mapping(m) => m.get_mapping("env"),
            _ => None,
        }
    }
    if let Some(d) = root.get_node("defaults") {
        envs.extend(env_of(d));
    }
    if let Some(Node::Mapping(functions)) = root.get_node("functions") {
        for (_, f) in functions.iter() {
            envs.extend(env_of(f));
        }
    }
    if let Some(Node::Mapping(stages)) = root.get_node("stages") {
        for (_, st) in stages.iter() {
            if let Node::Mapping(st) = st {
                envs.extend(st.get_node("defaults").and_then(env_of));
            }
        }
    }
    for env in envs {
        for (key, value) in env.iter() {
            let Node::Scalar(v) = value else { continue };
            let text = v.as_str();
            let reads_env = text
                .split("{{")
                .skip(1)
                .any(|t| t.trim_start().starts_with("env."));
            if reads_env && looks_like_credential(key.as_str()) {
                let name = key.as_str();
                let secret = name.to_ascii_lowercase().replace('_', "-");
                diags.push(
                    Diagnostic::warning(
                        scalar_span(v),
                        format!("`{name}` looks like a credential, passed in from the environment"),
                    )
                    .with_label("its value is written in plain text into build outputs and state")
                    .with_hint(format!(
                        "declare it under `secrets:` (`secrets: {{ {secret}: {{}} }}`), write \
                         `{name}: {{ secret: {secret} }}` and set it with `nimbus secret set {secret}`"
                    )),
                );
            }
        }
    }
}

/// Reports each `{ secret: NAME }` that names no secret declared under `secrets:`.
pub(crate) fn undeclared(manifest: &Manifest, diags: &mut Vec<Diagnostic>) {
    let declared: Vec<&str> = manifest.secrets.keys().map(|s| s.as_str()).collect();
    let envs =
        std::iter::once(&manifest.defaults.env).chain(manifest.functions.values().map(|f| &f.env));
    for env in envs {
        for (var, value) in env {
            let Some(secret) = value.secret() else {
                continue;
            };
            if declared.contains(&secret.as_str()) {
                continue;
            }
            let hint = match did_you_mean(secret.as_str(), declared.iter().copied()) {
                Some(best) => format!("did you mean `{best}`?"),
                None => format!("declare it: `secrets: {{ {secret}: {{}} }}`"),
            };
            diags.push(
                Diagnostic::error(
                    secret.span,
                    format!("`{var}` reads secret `{}`, which is not declared", **secret),
                )
                .with_label("not under `secrets:`")
                .with_hint(hint),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::{LoadOptions, load_str};

    fn warnings(yaml: &str) -> Vec<String> {
        let options = LoadOptions {
            check_files: false,
            ..LoadOptions::default()
        };
        let loaded = load_str(Path::new("nimbus.yaml"), yaml.to_string(), &options).unwrap();
        loaded
            .warnings
            .iter()
            .map(|w| {
                let s = w.span.expect("a warning points at its value");
                format!(
                    "{}:{} {} | {}",
                    s.line,
                    s.column,
                    w.message,
                    w.hint.clone().unwrap_or_default()
                )
            })
            .collect()
    }

    #[test]
    fn credentials_from_env_templates_are_warned_about() {
        let found = warnings(
            "version: 1\nservice: shop\ndefaults:\n  env:\n    STRIPE_TOKEN: \"{{ env.T | default('x') }}\"\n\
             functions:\n  hello:\n    handler: app.py:handler\n    env:\n      API_KEY: \"{{ env.K | default('') }}\"\n\
             \x20     LOG_LEVEL: \"{{ env.L | default('info') }}\"\n      DB_PASSWORD: \"{{ vars.x | default('p') }}\"\n",
        );
        assert_eq!(found.len(), 2, "{found:#?}");
        assert!(
            found[0].starts_with("5:19 `STRIPE_TOKEN` looks like a credential"),
            "{found:#?}"
        );
        assert!(
            found[0].contains("nimbus secret set stripe-token"),
            "{found:#?}"
        );
        assert!(
            found[1].starts_with("10:16 `API_KEY` looks like a credential"),
            "{found:#?}"
        );
        assert!(
            found[1].contains("API_KEY: { secret: api-key }"),
            "{found:#?}"
        );
    }

    #[test]
    fn credential_words() {
        for yes in [
            "API_KEY",
            "stripe_secret",
            "GH_TOKEN",
            "DB_PASSWORD",
            "KEYRING",
        ] {
            assert!(super::looks_like_credential(yes), "{yes}");
        }
        for no in ["LOG_LEVEL", "TABLE", "MODE"] {
            assert!(!super::looks_like_credential(no), "{no}");
        }
    }
}

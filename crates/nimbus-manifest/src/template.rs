//! Template rendering: `{{ stage }}`, `{{ provider }}`, `{{ service }}`, `{{ vars.x }}` and
//! `{{ env.NAME | default('x') }}` in any string value, with minijinja in strict mode.
//!
//! Templates are rendered in the YAML node tree before values are decoded, so a rendered
//! `"{{ vars.memory }}"` is checked as a memory size. An undefined name is an error at the exact
//! column of the expression, never an empty string — except in the deferred mode
//! ([`Context::defer_env`]) of the commands that work from what was deployed: there an
//! `{{ env.NAME }}` whose variable is not set leaves its value unrendered and is listed instead.
//!
//! Rendering is bounded in work, output and growth ([`bounds`]): a template that would hang or
//! exhaust memory is stopped with an error naming the limit, at the template's position.

mod bounds;

use std::cell::RefCell;
use std::collections::BTreeMap;

use marked_yaml::Node;
use marked_yaml::types::MarkedScalarNode;
use minijinja::{Environment, ErrorKind, Value};
use nimbus_diagnostic::{Diagnostic, Span, did_you_mean};

use crate::de::scalar_span;

/// The names templates can use.
pub(crate) struct Context {
    pub stage: String,
    pub provider: String,
    pub service: String,
    pub env: BTreeMap<String, String>,
    pub vars: Option<BTreeMap<String, serde_json::Value>>,
    /// Leave values whose `{{ env.NAME }}` is not set unrendered, listing them in `deferred`.
    pub defer_env: bool,
    /// The values left unrendered in the deferred mode.
    pub deferred: RefCell<Vec<Deferred>>,
    /// What the manifest's templates have left to spend.
    pub budget: bounds::Budget,
}

/// A value left unrendered because the environment variable it reads is not set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deferred {
    /// The environment variable (`NAME` of `{{ env.NAME }}`).
    pub variable: String,
    /// The value in the manifest.
    pub span: Span,
}

impl Context {
    fn value(&self) -> Value {
        let mut root = BTreeMap::new();
        root.insert("stage", Value::from(self.stage.clone()));
        root.insert("provider", Value::from(self.provider.clone()));
        root.insert("service", Value::from(self.service.clone()));
        root.insert("env", Value::from_serialize(&self.env));
        if let Some(vars) = &self.vars {
            root.insert("vars", Value::from_serialize(vars));
        }
        Value::from_serialize(&root)
    }
}

/// Renders every templated scalar below `node`, in place.
pub(crate) fn render_tree(node: &mut Node, ctx: &Context, diags: &mut Vec<Diagnostic>) {
    let mut env = bounds::environment();
    let value = ctx.value();
    walk(node, &mut |scalar| {
        render_scalar(&mut env, &value, ctx, scalar, diags)
    });
}

fn walk(node: &mut Node, f: &mut dyn FnMut(&mut MarkedScalarNode)) {
    match node {
        Node::Scalar(s) => f(s),
        Node::Sequence(seq) => seq.iter_mut().for_each(|n| walk(n, f)),
        Node::Mapping(map) => map.values_mut().for_each(|n| walk(n, f)),
    }
}

fn render_scalar(
    env: &mut Environment,
    value: &Value,
    ctx: &Context,
    scalar: &mut MarkedScalarNode,
    diags: &mut Vec<Diagnostic>,
) {
    let text = scalar.as_str().to_string();
    let text = text.as_str();
    if !text.contains("{{") && !text.contains("{%") {
        return;
    }
    match bounds::render(env, text, value, &ctx.budget) {
        Ok(rendered) => {
            // Keep pointing at the whole original value, not at the width of the rendered text.
            let original = scalar_span(scalar);
            let mut span = *scalar.span();
            if let Some(start) = span.start().copied() {
                let width = original.end_column.saturating_sub(original.column) as usize;
                let end = marked_yaml::Marker::new(
                    start.source(),
                    start.character() + width,
                    start.line(),
                    start.column() + width,
                );
                span.set_end(Some(end));
            }
            *scalar = MarkedScalarNode::new(span, rendered);
            scalar.set_coerce(true);
        }
        Err(bounds::Refusal::Construct {
            range,
            message,
            hint,
        }) => diags.push(
            Diagnostic::error(span_of(text, scalar, Some(range)), message)
                .with_label("not allowed in manifest templates")
                .with_hint(hint),
        ),
        Err(bounds::Refusal::Limit {
            error,
            message,
            hint,
        }) => diags.push(
            Diagnostic::error(span_of(text, scalar, error_range(text, &error)), message)
                .with_label("stopped here")
                .with_hint(hint),
        ),
        Err(bounds::Refusal::Template(error)) => {
            let undefined_env = (error.kind() == ErrorKind::UndefinedError)
                .then(|| undefined_name(text, &error))
                .and_then(|name| name.strip_prefix("env.").map(str::to_string));
            match undefined_env {
                Some(variable) if ctx.defer_env => ctx.deferred.borrow_mut().push(Deferred {
                    variable,
                    span: scalar_span(scalar),
                }),
                _ => diags.push(template_error(text, ctx, scalar, &error)),
            }
        }
    }
}

/// The valid byte range of the expression `error` points at in `text`, if any.
fn error_range(text: &str, error: &minijinja::Error) -> Option<std::ops::Range<usize>> {
    error
        .range()
        .filter(|r| {
            r.start <= r.end && text.is_char_boundary(r.start) && text.is_char_boundary(r.end)
        })
        .filter(|r| r.end <= text.len() && !text.contains('\n'))
}

/// The undefined name (`vars.x`, `env.NAME`) an undefined-value error is about.
fn undefined_name(text: &str, error: &minijinja::Error) -> String {
    let expr = error_range(text, error)
        .map(|r| text[r].trim().to_string())
        .unwrap_or_else(|| text.trim().to_string());
    let name = expr
        .trim_start_matches("{{")
        .trim_end_matches("}}")
        .trim()
        .to_string();
    name.split('|').next().unwrap_or("").trim().to_string()
}

/// The span of `range` (bytes of `text`) in the scalar, or the whole scalar. Multi-line values
/// point at the whole value: their columns do not map back to the file simply.
fn span_of(text: &str, scalar: &MarkedScalarNode, range: Option<std::ops::Range<usize>>) -> Span {
    let base = scalar_span(scalar);
    let quote = u32::from(!scalar.may_coerce());
    let valid = range.filter(|r| {
        r.start <= r.end
            && r.end <= text.len()
            && text.is_char_boundary(r.start)
            && text.is_char_boundary(r.end)
            && !text.contains('\n')
    });
    match valid {
        Some(r) => {
            let start = text[..r.start].chars().count() as u32;
            let len = text[r].chars().count() as u32;
            Span::at(base.line, base.column + quote + start, len)
        }
        None => base,
    }
}

fn template_error(
    text: &str,
    ctx: &Context,
    scalar: &MarkedScalarNode,
    error: &minijinja::Error,
) -> Diagnostic {
    let span = span_of(text, scalar, error_range(text, error));
    match error.kind() {
        ErrorKind::UndefinedError => {
            let name = undefined_name(text, error);
            if ctx.vars.is_none() && name.starts_with("vars") {
                return Diagnostic::error(span, format!("`vars` cannot refer to other vars (`{name}`)"))
                    .with_label("vars are rendered before they exist")
                    .with_hint("use `stage`, `provider`, `service` or `env` in vars, or repeat the value");
            }
            Diagnostic::error(span, format!("undefined template variable `{name}`"))
                .with_label("not defined")
                .with_hint(undefined_hint(&name, ctx))
        }
        _ => Diagnostic::error(span, format!("invalid template: {}", error.detail().unwrap_or("syntax error")))
            .with_hint("templates look like `{{ vars.name }}`, `{{ stage }}` or `{{ env.NAME | default('x') }}`"),
    }
}

fn undefined_hint(name: &str, ctx: &Context) -> String {
    if let Some(var) = name.strip_prefix("vars.") {
        let Some(vars) = &ctx.vars else {
            return "`vars` cannot refer to other vars; use `stage`, `provider`, `service` or `env`".into();
        };
        return match did_you_mean(var, vars.keys().map(String::as_str)) {
            Some(best) => format!("did you mean `vars.{best}`?"),
            None => format!("define `{var}` under `vars:` (or under the stage's `vars:`)"),
        };
    }
    if let Some(var) = name.strip_prefix("env.") {
        return format!(
            "set the environment variable `{var}`, or give a fallback: `{{{{ env.{var} | default('...') }}}}`"
        );
    }
    let roots = ["stage", "provider", "service", "vars", "env"];
    match did_you_mean(name, roots) {
        Some(best) => format!("did you mean `{best}`?"),
        None => "templates can use `stage`, `provider`, `service`, `vars.<name>` and `env.<NAME>`"
            .into(),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::{LoadError, LoadOptions, load_str};

    const MANIFEST: &str = "version: 1\nservice: s\nproviders:\n  aws: { region: \"{{ env.REGION | default('us-east-1') }}\" }\nfunctions:\n  f:\n    handler: app.py:handler\n    env:\n      KEY: \"{{ env.STRIPE_KEY }}\"\n      STAGE: \"{{ stage }}-{{ env.SUFFIX }}\"\n";

    fn options(defer_env: bool) -> LoadOptions {
        LoadOptions {
            check_files: false,
            defer_env,
            ..LoadOptions::default()
        }
    }

    #[test]
    fn an_unset_env_variable_is_an_error_unless_deferred() {
        let strict = load_str(Path::new("nimbus.yaml"), MANIFEST.into(), &options(false));
        let Err(LoadError::Invalid(report)) = strict else {
            panic!("an unset variable must be an error when not deferred")
        };
        let text = report.render(false);
        assert!(
            text.contains("undefined template variable `env.STRIPE_KEY`")
                && text.contains("undefined template variable `env.SUFFIX`"),
            "{text}"
        );

        let loaded = load_str(Path::new("nimbus.yaml"), MANIFEST.into(), &options(true)).unwrap();
        let deferred: Vec<(&str, u32)> = loaded
            .deferred
            .iter()
            .map(|d| (d.variable.as_str(), d.span.line))
            .collect();
        assert_eq!(deferred, [("STRIPE_KEY", 9), ("SUFFIX", 10)]);
        let env = &loaded.manifest.functions.values().next().unwrap().env;
        let key = env
            .iter()
            .find(|(k, _)| k.value.as_str() == "KEY")
            .unwrap()
            .1;
        assert_eq!(
            key.value.text(),
            Some("{{ env.STRIPE_KEY }}"),
            "kept unrendered"
        );
        // What is set, or has a default, is still rendered.
        let region = loaded
            .manifest
            .providers
            .aws
            .as_ref()
            .unwrap()
            .region
            .as_ref();
        assert_eq!(region.unwrap().value, "us-east-1");
    }

    #[test]
    fn deferring_does_not_hide_other_template_errors() {
        let text = MANIFEST.replace("{{ stage }}", "{{ stag }}");
        let Err(LoadError::Invalid(report)) =
            load_str(Path::new("nimbus.yaml"), text, &options(true))
        else {
            panic!("a misspelt name is an error in every mode")
        };
        assert!(report.render(false).contains("`stag`"));
    }
}

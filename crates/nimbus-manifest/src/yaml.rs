//! The one place that parses YAML text (with marked-yaml, for positions on every node).
//!
//! marked-yaml was chosen over serde_yaml (deprecated upstream), serde_yml (RUSTSEC-2025-0068),
//! serde_yaml_ng and serde-saphyr because it exposes the parsed node tree with a start mark on
//! every node and key, which lets us render templates in place, decode the manifest section by
//! section (so one run reports many errors) and point semantic errors at exact columns.

use marked_yaml::{LoadError, LoaderOptions, Node};
use nimbus_diagnostic::{Diagnostic, Span, line_count, source_line};

/// Parses `source` into a node tree whose top level is a mapping.
pub(crate) fn parse(source: &str) -> Result<Node, Diagnostic> {
    if source.trim().is_empty() {
        return Err(Diagnostic::error(Span::at(1, 1, 1), "the manifest is empty")
            .with_hint("start with `version: 1`, `service: <name>` and `functions:`; `nimbus init` writes a starter"));
    }
    let options = LoaderOptions::default()
        .error_on_duplicate_keys(true)
        .prevent_coercion(true);
    marked_yaml::parse_yaml_with_options(0, source, options).map_err(|e| load_error(source, e))
}

fn at(marker: &marked_yaml::Marker) -> Span {
    Span::at(marker.line() as u32, marker.column() as u32, 1)
}

fn load_error(source: &str, error: LoadError) -> Diagnostic {
    match error {
        LoadError::TopLevelMustBeMapping(m) => {
            Diagnostic::error(at(&m), "the manifest must be a mapping of keys to values")
                .with_hint("start with `version: 1` and `service: <name>`")
        }
        LoadError::TopLevelMustBeSequence(m) => {
            Diagnostic::error(at(&m), "expected a list at the top level")
        }
        LoadError::UnexpectedAnchor(m) => {
            Diagnostic::error(at(&m), "YAML anchors and aliases are not supported")
                .with_hint("repeat the value, or move shared settings into `defaults`")
        }
        LoadError::MappingKeyMustBeScalar(m) => Diagnostic::error(
            at(&m),
            "a mapping key must be a plain value, not a list or mapping",
        ),
        LoadError::UnexpectedTag(m) => {
            Diagnostic::error(at(&m), "YAML tags (`!tag`) are not supported")
                .with_hint("remove the tag; write templates as `{{ ... }}` instead")
        }
        LoadError::ScanError(m, e) => {
            let info = e.info().to_string();
            let mut span = at(&m);
            // The scanner reports the end of input one line past the last; point at the last line.
            let lines = line_count(source);
            if span.line > lines.max(1) {
                span = Span::at(lines.max(1), 1, 1);
            }
            let line = source_line(source, span.line).unwrap_or("");
            if info.contains("tab")
                || (line.starts_with(|c: char| c.is_whitespace()) && line.contains('\t'))
            {
                if let Some(col) = line.chars().position(|c| c == '\t') {
                    span = Span::at(span.line, col as u32 + 1, 1);
                }
                return Diagnostic::error(span, "tab character in indentation")
                    .with_label("tab")
                    .with_hint("indent with spaces; YAML does not allow tabs");
            }
            if info.contains("quoted scalar") {
                return Diagnostic::error(span, "unclosed quote: this string has no closing quote")
                    .with_hint("add the closing quote, or escape quotes inside the string");
            }
            Diagnostic::error(span, format!("invalid YAML: {info}")).with_hint(scan_hint(&info))
        }
        LoadError::DuplicateKey(inner) => {
            let key = inner.key.as_str().to_string();
            let first = inner.prev_key.span().start().map(|m| m.line()).unwrap_or(0);
            let m = inner
                .key
                .span()
                .start()
                .copied()
                .unwrap_or_else(|| marked_yaml::Marker::new(0, 0, 1, 1));
            Diagnostic::error(
                Span::at(
                    m.line() as u32,
                    m.column() as u32,
                    key.chars().count() as u32,
                ),
                format!("key `{key}` is given twice"),
            )
            .with_label(format!("first given on line {first}"))
            .with_hint("remove one of them, or merge their settings")
        }
    }
}

fn scan_hint(info: &str) -> String {
    if info.contains("tab") {
        "indent with spaces; YAML does not allow tabs".into()
    } else if info.contains("mapping values") {
        "a value containing `: ` must be quoted, and nested keys must be indented consistently"
            .into()
    } else if info.contains("did not find expected") || info.contains("flow") {
        "check for an unclosed `[`, `{` or quote".into()
    } else {
        "check the indentation and quoting around this place".into()
    }
}

/// Writes a JSON value as block-style YAML (for `nimbus graph --format yaml`).
pub fn to_yaml(value: &serde_json::Value) -> String {
    let mut out = String::new();
    emit(value, 0, &mut out);
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

fn emit(value: &serde_json::Value, indent: usize, out: &mut String) {
    use serde_json::Value;
    let pad = " ".repeat(indent);
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                out.push_str(&pad);
                out.push_str(&scalar_text(k));
                out.push(':');
                emit_child(v, indent, out);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for v in items {
                out.push_str(&pad);
                out.push('-');
                match v {
                    Value::Object(m) if !m.is_empty() => {
                        // The first key goes on the dash's line.
                        let mut inner = String::new();
                        emit(v, indent + 2, &mut inner);
                        out.push(' ');
                        out.push_str(inner.trim_start());
                    }
                    _ => emit_child(v, indent, out),
                }
            }
        }
        other => {
            out.push_str(&pad);
            out.push_str(&inline(other));
            out.push('\n');
        }
    }
}

fn emit_child(v: &serde_json::Value, indent: usize, out: &mut String) {
    use serde_json::Value;
    match v {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            emit(v, indent + 2, out);
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            emit(v, indent + 2, out);
        }
        _ => {
            out.push(' ');
            out.push_str(&inline(v));
            out.push('\n');
        }
    }
}

fn inline(v: &serde_json::Value) -> String {
    use serde_json::Value;
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => scalar_text(s),
        Value::Array(_) => "[]".into(),
        Value::Object(_) => "{}".into(),
    }
}

/// A string as a YAML scalar, quoted when a plain scalar would read differently.
fn scalar_text(s: &str) -> String {
    let plain_ok = !s.is_empty()
        && !s.starts_with(|c: char| c.is_whitespace() || "-?:,[]{}#&*!|>'\"%@`".contains(c))
        && !s.ends_with(char::is_whitespace)
        && !s.contains(": ")
        && !s.contains(" #")
        && !s.contains('\n')
        && !matches!(
            s,
            "true"
                | "false"
                | "null"
                | "~"
                | "True"
                | "False"
                | "Null"
                | "NULL"
                | "TRUE"
                | "FALSE"
                | "yes"
                | "no"
                | "on"
                | "off"
        )
        && s.parse::<f64>().is_err();
    if plain_ok {
        s.to_string()
    } else {
        serde_json::to_string(s).expect("strings serialize")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_output_parses_back_to_the_same_value() {
        let value = serde_json::json!({
            "service": "shop",
            "n": 3, "ok": true, "none": null,
            "tricky": ["yes", "1.5", "a: b", "#x", "", " lead", "{{ x }}", "multi\nline"],
            "empty": {}, "list": [],
            "functions": [{"name": "a", "triggers": [{"kind": "http", "path": "/x"}]}, {"name": "b"}],
        });
        let text = to_yaml(&value);
        let node = parse(&text).expect("valid yaml");
        let back: serde_json::Value = crate::de::from_node(&node).expect("decodes");
        assert_eq!(back, value, "{text}");
    }
}

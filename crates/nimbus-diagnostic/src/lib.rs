//! Source spans and user-facing diagnostics.
//!
//! Every stage that reports a problem in the user's manifest (parsing, templating, validation,
//! provider limits) produces [`Diagnostic`]s that point at a [`Span`]. A [`Report`] pairs them
//! with the file they came from and renders them the way `rustc` does: the location, the source
//! line, a caret under the offending text, and a hint. Rendering never needs colour
//! (`NO_COLOR` output is the same text without escape codes).
//!
//! This crate knows nothing about YAML, the manifest or providers.

#![deny(missing_docs)]

use std::fmt::{self, Write as _};
use std::path::PathBuf;

use serde::Serialize;

/// A region of a source file, 1-based lines and columns (columns count characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize)]
pub struct Span {
    /// First line, 1-based.
    pub line: u32,
    /// First column, 1-based, in characters.
    pub column: u32,
    /// Last line, 1-based (inclusive).
    pub end_line: u32,
    /// Column just past the end on `end_line`, 1-based.
    pub end_column: u32,
}

impl Span {
    /// A span of `len` characters starting at `line:column`.
    pub fn at(line: u32, column: u32, len: u32) -> Self {
        Span {
            line,
            column,
            end_line: line,
            end_column: column + len.max(1),
        }
    }

    /// A span from `line:column` to `end_line:end_column`.
    pub fn new(line: u32, column: u32, end_line: u32, end_column: u32) -> Self {
        Span {
            line,
            column,
            end_line,
            end_column,
        }
    }

    /// True for the placeholder span of values that did not come from a file.
    pub fn is_unknown(&self) -> bool {
        self.line == 0
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// How serious a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The input cannot be used.
    Error,
    /// The input works but is probably not what the user meant.
    Warning,
}

/// One problem found in a source file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// What is wrong: a lowercase phrase, literals in backticks, no trailing period.
    pub message: String,
    /// Where it is; `None` when the problem is not tied to a place in the file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub span: Option<Span>,
    /// A short text printed under the caret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// How to fix it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Diagnostic {
    /// An error at `span`.
    pub fn error(span: impl Into<Option<Span>>, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            message: message.into(),
            span: span.into(),
            label: None,
            hint: None,
        }
    }

    /// A warning at `span`.
    pub fn warning(span: impl Into<Option<Span>>, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(span, message)
        }
    }

    /// Adds the text printed under the caret.
    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// Adds a hint on how to fix the problem.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Adds a hint only when there is one.
    pub fn with_hint_opt(mut self, hint: Option<String>) -> Self {
        self.hint = hint;
        self
    }

    /// True for errors.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// Diagnostics for one source file, with the text needed to render them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The file as the user named it (printed as is).
    pub path: PathBuf,
    /// The file's text.
    pub source: String,
    /// The problems, in the order they were found.
    pub diagnostics: Vec<Diagnostic>,
}

impl Report {
    /// A report on `path` whose content is `source`.
    pub fn new(
        path: impl Into<PathBuf>,
        source: impl Into<String>,
        diagnostics: Vec<Diagnostic>,
    ) -> Self {
        Report {
            path: path.into(),
            source: source.into(),
            diagnostics,
        }
    }

    /// Number of errors (not warnings).
    pub fn error_count(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }

    /// Renders every diagnostic, sorted by position, followed by a count line.
    pub fn render(&self, color: bool) -> String {
        let style = Style { color };
        let mut out = String::new();
        let mut sorted: Vec<&Diagnostic> = self.diagnostics.iter().collect();
        sorted.sort_by_key(|d| d.span.map(|s| (s.line, s.column)).unwrap_or((u32::MAX, 0)));
        for diagnostic in sorted {
            render_one(
                &mut out,
                &self.path.display().to_string(),
                &self.source,
                diagnostic,
                style,
            );
            out.push('\n');
        }
        let errors = self.error_count();
        let warnings = self.diagnostics.len() - errors;
        if errors > 0 {
            let _ = write!(
                out,
                "{}: {} found {} error{}",
                style.red("error"),
                self.path.display(),
                errors,
                if errors == 1 { "" } else { "s" }
            );
            if warnings > 0 {
                let _ = write!(
                    out,
                    " and {warnings} warning{}",
                    if warnings == 1 { "" } else { "s" }
                );
            }
            out.push('\n');
        }
        out
    }
}

#[derive(Clone, Copy)]
struct Style {
    color: bool,
}

impl Style {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
    fn red(&self, text: &str) -> String {
        self.paint("1;31", text)
    }
    fn yellow(&self, text: &str) -> String {
        self.paint("1;33", text)
    }
    fn blue(&self, text: &str) -> String {
        self.paint("1;34", text)
    }
}

fn render_one(out: &mut String, path: &str, source: &str, d: &Diagnostic, style: Style) {
    let kind = match d.severity {
        Severity::Error => style.red("error"),
        Severity::Warning => style.yellow("warning"),
    };
    let _ = writeln!(out, "{kind}: {}", d.message);
    let Some(span) = d.span.filter(|s| !s.is_unknown()) else {
        let _ = writeln!(out, "  {} {path}", style.blue("-->"));
        if let Some(hint) = &d.hint {
            let _ = writeln!(out, "  = hint: {hint}");
        }
        return;
    };
    let line_no = span.line.to_string();
    let gutter = " ".repeat(line_no.len());
    let bar = style.blue("|");
    let _ = writeln!(
        out,
        "{gutter}{} {path}:{}:{}",
        style.blue("-->"),
        span.line,
        span.column
    );
    let _ = writeln!(out, "{gutter} {bar}");
    let text = source_line(source, span.line).unwrap_or("");
    let text = text.replace('\t', " ");
    let _ = writeln!(out, "{} {bar} {text}", style.blue(&line_no));
    let line_chars = text.chars().count() as u32;
    let start = span.column.saturating_sub(1).min(line_chars);
    let end = if span.end_line == span.line {
        span.end_column.saturating_sub(1)
    } else {
        line_chars
    };
    let width = end
        .min(line_chars.max(start + 1))
        .saturating_sub(start)
        .max(1);
    let carets = "^".repeat(width as usize);
    let marker = match d.severity {
        Severity::Error => style.red(&carets),
        Severity::Warning => style.yellow(&carets),
    };
    let label = d
        .label
        .as_deref()
        .map(|l| format!(" {l}"))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "{gutter} {bar} {}{marker}{label}",
        " ".repeat(start as usize)
    );
    if let Some(hint) = &d.hint {
        let _ = writeln!(out, "{gutter} {bar}");
        let _ = writeln!(out, "{gutter} = hint: {hint}");
    }
}

/// The byte offset where each line of `source` starts (the first is 0). Lines end at `\n`,
/// `\r\n` or a lone `\r`, as YAML counts them, so files with old Mac line endings point at
/// the right line.
pub fn line_starts(source: &str) -> Vec<usize> {
    let bytes = source.as_bytes();
    let mut starts = vec![0];
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => starts.push(i + 1),
            b'\r' if bytes.get(i + 1) == Some(&b'\n') => {
                starts.push(i + 2);
                i += 1;
            }
            b'\r' => starts.push(i + 1),
            _ => {}
        }
        i += 1;
    }
    starts
}

/// Line `n` (1-based) of `source` without its line break; lines as in [`line_starts`].
pub fn source_line(source: &str, n: u32) -> Option<&str> {
    let starts = line_starts(source);
    let start = *starts.get((n as usize).checked_sub(1)?)?;
    let end = starts.get(n as usize).copied().unwrap_or(source.len());
    Some(source[start..end].trim_end_matches(['\n', '\r']))
}

/// The number of lines of `source`, as [`line_starts`] counts them (a final line break does not
/// start another line).
pub fn line_count(source: &str) -> u32 {
    let starts = line_starts(source);
    let trailing = starts.len() > 1 && *starts.last().expect("not empty") == source.len();
    (starts.len() - usize::from(trailing)) as u32
}

/// The closest of `candidates` to `word`, if it is close enough to be a likely typo.
pub fn did_you_mean<'a, I>(word: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    candidates
        .into_iter()
        .map(|c| (strsim::osa_distance(word, c), c))
        .filter(|(d, c)| *d <= (c.len().max(word.len()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_caret_under_span_with_hint() {
        let src = "version: 1\nservice: shop\nfunctionz: {}\n";
        let d = Diagnostic::error(Span::at(3, 1, 9), "unknown key `functionz`")
            .with_label("not a top-level key")
            .with_hint("did you mean `functions`?");
        let out = Report::new("nimbus.yaml", src, vec![d]).render(false);
        assert_eq!(
            out,
            "error: unknown key `functionz`\n --> nimbus.yaml:3:1\n  |\n3 | functionz: {}\n  | ^^^^^^^^^ not a top-level key\n  |\n  = hint: did you mean `functions`?\n\nerror: nimbus.yaml found 1 error\n"
        );
    }

    #[test]
    fn sorts_by_position_and_counts() {
        let src = "a: 1\nb: 2\n";
        let out = Report::new(
            "f.yaml",
            src,
            vec![
                Diagnostic::error(Span::at(2, 1, 1), "second"),
                Diagnostic::error(Span::at(1, 1, 1), "first"),
            ],
        )
        .render(false);
        assert!(out.find("first").unwrap() < out.find("second").unwrap());
        assert!(out.ends_with("found 2 errors\n"));
    }

    #[test]
    fn span_past_line_end_is_clamped() {
        let out = Report::new(
            "f",
            "ab\n",
            vec![Diagnostic::error(Span::new(1, 2, 3, 1), "x")],
        )
        .render(false);
        assert!(out.contains("1 | ab\n  |  ^\n"), "{out}");
    }

    #[test]
    fn no_color_has_no_escapes_and_color_has() {
        let r = Report::new("f", "a\n", vec![Diagnostic::error(Span::at(1, 1, 1), "x")]);
        assert!(!r.render(false).contains('\x1b'));
        assert!(r.render(true).contains('\x1b'));
    }

    #[test]
    fn cr_only_line_endings_show_the_right_line() {
        let src = "a: 1\rb: 2\rc: x\r";
        let out =
            Report::new("f", src, vec![Diagnostic::error(Span::at(3, 4, 1), "bad")]).render(false);
        assert!(out.contains("3 | c: x\n  |    ^\n"), "{out}");
        assert_eq!(source_line("a\r\nb\rc\n", 2), Some("b"));
        assert_eq!(source_line("a\r\nb\rc\n", 3), Some("c"));
        assert_eq!(line_count("a\r\nb\rc\n"), 3);
        assert_eq!(line_count("a\rb"), 2);
        assert_eq!(line_starts("a\r\nb"), [0, 3]);
    }

    #[test]
    fn suggestions() {
        assert_eq!(
            did_you_mean("handlr", ["handler", "runtime"]),
            Some("handler")
        );
        assert_eq!(
            did_you_mean("tiemout", ["timeout", "memory"]),
            Some("timeout")
        );
        assert_eq!(did_you_mean("zzzzzz", ["handler", "runtime"]), None);
    }
}

//! Terminal output: colours, where text goes (data on stdout, the rest on stderr), and how
//! failures are classified into exit codes.

use std::io::IsTerminal;

use nimbus_diagnostic::{Diagnostic, Report};

use crate::cli::{Global, OutputFormat};

/// How a command failed; decides the exit code.
#[derive(Debug)]
pub enum Failure {
    /// The user's input is wrong (exit 1); the message is shown with its causes.
    User(anyhow::Error),
    /// The problem was already shown (a rendered report); exit 1.
    Reported,
    /// A bug or an environment failure (exit 2).
    Internal(anyhow::Error),
    /// `plan --detailed-exitcode` found changes (exit 2, as Terraform does); not an error.
    Changes,
}

impl Failure {
    /// A user error with a message.
    pub fn user(message: impl std::fmt::Display) -> Self {
        Failure::User(anyhow::anyhow!("{message}"))
    }
}

/// Where and how to print.
pub struct Out {
    pub color: bool,
    pub json: bool,
    pub verbose: bool,
}

impl Out {
    pub fn new(global: &Global) -> Self {
        let color = !global.no_color
            && std::env::var_os("NO_COLOR").is_none()
            && std::io::stderr().is_terminal();
        Out {
            color,
            json: global.output == OutputFormat::Json,
            verbose: global.verbose,
        }
    }

    /// An error and its chain of causes, on stderr.
    pub fn error(&self, e: &anyhow::Error) {
        let label = if self.color {
            "\x1b[1;31merror\x1b[0m"
        } else {
            "error"
        };
        let message = e.to_string();
        eprintln!("{label}: {message}");
        // A cause whose text the message already quotes (`function `f`: <cause>`) is not
        // printed again: each line of a tool's error appears once.
        let mut shown = message;
        for cause in e.chain().skip(1) {
            let cause = cause.to_string();
            if shown.contains(&cause) {
                continue;
            }
            eprintln!("  caused by: {cause}");
            shown.push_str(&cause);
        }
    }

    /// A rendered report (errors and warnings) on stderr.
    pub fn report(&self, report: &Report) {
        if !report.diagnostics.is_empty() {
            eprint!("{}", report.render(self.color));
        }
    }

    /// `text` in the ANSI style `code` (`1` bold, `32` green) when colours are on.
    pub fn paint(&self, code: &str, text: &str) -> String {
        match self.color {
            true => format!("\x1b[{code}m{text}\x1b[0m"),
            false => text.to_string(),
        }
    }

    /// A line of progress or detail on stderr, only with `--verbose`.
    pub fn detail(&self, text: impl std::fmt::Display) {
        if self.verbose {
            eprintln!("{text}");
        }
    }
}

/// Diagnostics as JSON objects with the file name, for `--output json`.
pub fn diagnostics_json(path: &std::path::Path, diags: &[Diagnostic]) -> serde_json::Value {
    diags
        .iter()
        .map(|d| {
            let mut v = serde_json::to_value(d).expect("diagnostics serialize");
            v["file"] = serde_json::Value::String(path.display().to_string());
            v
        })
        .collect()
}

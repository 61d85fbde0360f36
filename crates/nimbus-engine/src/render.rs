//! The human rendering of a [`Plan`], one line per resource that changes:
//!
//! ```text
//! Plan for `shop/dev` on `aws`:
//!   + create  aws.sqs.queue/payments
//!   ~ update  aws.lambda.function/place-order (memory: 256 → 512)
//! -/+ replace aws.dynamodb.table/orders (key: "id" → "sk", forces replacement)
//!   - delete  aws.sns.topic/old
//! Plan: 1 to create, 1 to update, 1 to replace, 1 to delete, 3 unchanged.
//! ```
//!
//! Plain text, no colour; unchanged resources are left out unless a refresh found drift. A
//! resource the deployment uses but does not own ([`crate::resource::is_external`]) reads
//! `  = existing <id> (not managed)` when it is first recorded.

use std::fmt::Write;

use serde_json::Value;

use crate::diff::KNOWN_AFTER_APPLY;
use crate::plan::{Action, Plan, PropertyChange};

/// Longest value shown before it is cut with `…`.
const MAX_VALUE: usize = 60;

/// `plan` as text for a terminal or a log.
pub fn render(plan: &Plan) -> String {
    let mut out = String::new();
    let refreshed = if plan.refreshed { " (refreshed)" } else { "" };
    let _ = writeln!(
        out,
        "Plan for `{}/{}` on `{}`{refreshed}:",
        plan.service, plan.stage, plan.provider
    );
    for i in &plan.interrupted {
        let how = i
            .error
            .as_deref()
            .map(|e| format!(" (failed: {e})"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  ! interrupted {} of {}{how}: apply reads the cloud to finish it",
            i.op.as_str(),
            i.id
        );
    }
    for r in &plan.resources {
        if r.action == Action::Same && r.drift.is_empty() && !r.missing_in_cloud {
            continue;
        }
        if crate::resource::is_external(&r.kind) {
            let what = match r.action {
                Action::Delete => "no longer used; left as it is",
                _ => "not managed",
            };
            let _ = writeln!(out, "  = existing {} ({what})", r.id);
            continue;
        }
        let symbol = match r.action {
            Action::Create => "+",
            Action::Update => "~",
            Action::Replace => "-/+",
            Action::Delete => "-",
            Action::Same => "=",
        };
        let details = match r.action {
            Action::Update | Action::Replace => {
                let list: Vec<String> = r.changes.iter().map(change).collect();
                format!(" ({})", list.join(", "))
            }
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "{symbol:>3} {:<7} {}{details}",
            r.action.as_str(),
            r.id
        );
        if r.missing_in_cloud {
            let _ = writeln!(out, "      drift: deleted outside nimbus");
        }
        for d in &r.drift {
            let _ = writeln!(
                out,
                "      drift: {}: state {}, live {}",
                d.path,
                value(d.state.as_ref()),
                value(d.live.as_ref())
            );
        }
    }
    // What the deployment does not own is counted apart: it is recorded or forgotten, never
    // created or deleted.
    let mut s = plan.summary;
    let mut external = 0;
    for r in &plan.resources {
        if crate::resource::is_external(&r.kind) {
            match r.action {
                Action::Create => s.create -= 1,
                Action::Delete => s.delete -= 1,
                _ => continue,
            }
            external += 1;
        }
    }
    let external = match external {
        0 => String::new(),
        n => format!(" ({n} existing, not managed)"),
    };
    if s.changes() == 0 && plan.interrupted.is_empty() && external.is_empty() {
        let _ = writeln!(out, "No changes: {} resources unchanged.", s.same);
    } else {
        let _ = writeln!(
            out,
            "Plan: {} to create, {} to update, {} to replace, {} to delete, {} unchanged.{external}",
            s.create, s.update, s.replace, s.delete, s.same
        );
    }
    out
}

fn change(c: &PropertyChange) -> String {
    let after = match &c.after {
        Some(Value::String(s)) if c.known_after_apply && s == KNOWN_AFTER_APPLY => {
            KNOWN_AFTER_APPLY.to_string()
        }
        other => value(other.as_ref()),
    };
    let forced = if c.forces_replacement {
        ", forces replacement"
    } else {
        ""
    };
    format!("{}: {} → {after}{forced}", c.path, value(c.before.as_ref()))
}

fn value(v: Option<&Value>) -> String {
    let Some(v) = v else {
        return "(none)".into();
    };
    let text = v.to_string();
    if text.chars().count() <= MAX_VALUE {
        return text;
    }
    let cut: String = text.chars().take(MAX_VALUE - 1).collect();
    format!("{cut}…")
}

//! `nimbus invoke`: send one event to a deployed function and print its result. The function
//! and its triggers come from what was deployed (`deployment.json`); a handler that fails — an
//! error, or failed messages in its result — makes the command fail.

use std::time::Duration;

use serde_json::json;

use super::{admin, running, target};
use crate::cli::{Global, InvokeArgs};
use crate::commands::event;
use crate::output::{Failure, Out};

pub fn invoke(global: &Global, args: &InvokeArgs, out: &Out) -> Result<(), Failure> {
    let target = target::resolve(global, &args.which, out)?;
    let info = running(&target)?;
    let name = args.function.as_deref().unwrap_or_default();
    let deployed = nimbus_local::Deployment::read(&target.state.deployment())
        .map_err(|e| Failure::Internal(e.into()))?;
    let Some(function) = deployed.functions.get(name) else {
        return Err(event::unknown_function(
            name,
            &format!("the local deployment of {}", target.name()),
            deployed.functions.keys().map(String::as_str),
        ));
    };
    let triggers: Vec<_> = function.triggers.iter().map(|t| &t.spec).collect();
    let event = event::for_invoke(name, &triggers, args)?;
    let timeout = Duration::from_millis(function.timeout_ms + 30_000);
    let reply = admin(
        &info,
        "POST",
        "/invoke",
        Some(&json!({ "function": name, "event": event })),
        timeout,
    )?;
    if out.json {
        println!("{}", serde_json::to_string_pretty(&reply).expect("json"));
    } else if reply["ok"] == true {
        println!(
            "{}",
            serde_json::to_string_pretty(&reply["result"]).expect("json")
        );
        eprintln!(
            "{name} {} in {} ms{} (request {})",
            if event::failed_messages(&event, &reply["result"]).is_some() {
                "returned"
            } else {
                "ok"
            },
            reply["duration_ms"],
            if reply["cold"] == true {
                ", cold start"
            } else {
                ""
            },
            reply["request_id"].as_str().unwrap_or("")
        );
    }
    let hint = format!(
        "  hint: `nimbus logs {name}{}` shows what it printed",
        target.flags
    );
    if reply["ok"] != true {
        // The handler's stack trace (its own frames, the user's file:line first), indented.
        let stack: String = reply["stack"]
            .as_str()
            .unwrap_or("")
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| format!("    {l}\n"))
            .collect();
        return Err(Failure::user(format!(
            "`{name}` failed ({}): {}\n{stack}{hint}",
            reply["status"].as_str().unwrap_or("error"),
            reply["error"].as_str().unwrap_or(""),
        )));
    }
    if let Some(failed) = event::failed_messages(&event, &reply["result"]) {
        let total = event["messages"].as_array().map_or(0, Vec::len);
        return Err(Failure::user(format!(
            "`{name}` reported {} of {total} message{} as failed: {} (they would be delivered again)\n{hint}",
            failed.len(),
            if total == 1 { "" } else { "s" },
            failed
                .iter()
                .map(|f| format!("`{f}`"))
                .collect::<Vec<_>>()
                .join(", "),
        )));
    }
    Ok(())
}

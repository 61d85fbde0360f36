//! `nimbus invoke`: send one event to a deployed function and print its result.

use std::time::Duration;

use serde_json::json;

use super::{admin, compile_local, running};
use crate::cli::{Global, InvokeArgs};
use crate::output::{Failure, Out};

pub fn invoke(global: &Global, args: &InvokeArgs, out: &Out) -> Result<(), Failure> {
    let compiled = compile_local(global, out)?;
    let (function, event) = super::super::event::for_invoke(&compiled.graph, args, global)?;
    let info = running(&compiled)?;
    let timeout = Duration::from_millis(function.timeout_ms + 30_000);
    let reply = admin(
        &info,
        "POST",
        "/invoke",
        Some(&json!({ "function": args.function, "event": event })),
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
            "{} ok in {} ms{} (request {})",
            args.function,
            reply["duration_ms"],
            if reply["cold"] == true {
                ", cold start"
            } else {
                ""
            },
            reply["request_id"].as_str().unwrap_or("")
        );
    }
    if reply["ok"] != true {
        return Err(Failure::user(format!(
            "`{}` failed ({}): {}\n  hint: `nimbus logs {}` shows what it printed",
            args.function,
            reply["status"].as_str().unwrap_or("error"),
            reply["error"].as_str().unwrap_or(""),
            args.function
        )));
    }
    Ok(())
}

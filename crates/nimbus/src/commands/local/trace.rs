//! `nimbus trace ID`: the causal tree of the trace holding invocation ID (or trace ID), read
//! from the local runtime's log files (every invocation's record carries its trace id, span id
//! and parent span id), so it works past the runtime's in-memory ring and after it stopped.

use nimbus_local::{logs, trace};

use super::target;
use crate::cli::{Global, TraceArgs};
use crate::output::{Failure, Out};

pub fn trace(global: &Global, args: &TraceArgs, out: &Out) -> Result<(), Failure> {
    let target = target::resolve(global, &args.which, out)?;
    let dir = target.state.logs();
    let records = if dir.exists() {
        logs::read(&dir, &logs::Filter::default()).map_err(|e| Failure::Internal(e.into()))?
    } else {
        Vec::new()
    };
    let id = args.id.trim();
    let spans = trace::select(records, id);
    if spans.is_empty() {
        return Err(Failure::user(format!(
            "no invocation of {} has request id or trace id `{id}`\n  hint: request ids are in `nimbus logs` and in the `x-nimbus-request-id` header of HTTP responses",
            target.name()
        )));
    }
    let tree = trace::tree(&spans);
    if out.json {
        println!("{tree}");
    } else {
        print!("{}", trace::render(&tree));
    }
    Ok(())
}

//! `nimbus logs`: a function's (or every function's) invocations and output, from the local
//! runtime's log files; `--tail` keeps printing; `--since`, `--filter` and `--level` choose
//! lines. The function is checked against what was
//! deployed (`deployment.json`), not against the manifest.

use std::time::Duration;

use nimbus_local::logs::{self, Filter, Follower};

use super::target;
use crate::cli::{Global, LogsArgs};
use crate::output::{Failure, Out};

pub fn logs(global: &Global, args: &LogsArgs, out: &Out) -> Result<(), Failure> {
    let target = target::resolve(global, &args.which, out)?;
    if let Some(f) = &args.function
        && let Ok(deployed) = nimbus_local::Deployment::read(&target.state.deployment())
        && !deployed.functions.contains_key(f)
    {
        return Err(crate::commands::event::unknown_function(
            f,
            &format!("the local deployment of {}", target.name()),
            deployed.functions.keys().map(String::as_str),
        ));
    }
    let since = match &args.since {
        None => None,
        Some(text) => Some(since(text)?),
    };
    let level = match &args.level {
        None => None,
        Some(l) => Some(
            l.parse::<logs::Level>()
                .map_err(|e| Failure::user(format!("--level: {e}")))?,
        ),
    };
    let filter = Filter {
        function: args.function.clone(),
        since,
        level,
        text: args.filter.clone(),
    };
    let dir = target.state.logs();
    if !dir.exists() {
        return Err(Failure::user(format!(
            "{} has no local logs yet\n  hint: deploy it with `nimbus deploy{}`",
            target.name(),
            super::deploy_flags(&target)
        )));
    }
    let print = |record: &serde_json::Value| {
        if out.json {
            println!("{record}");
        } else if logs::level_of(record) > logs::Level::Debug || level.is_some() {
            println!("{}", logs::render(record));
        }
    };
    let mut follower = Follower::at_end(&dir);
    for record in logs::read(&dir, &filter).map_err(|e| Failure::Internal(e.into()))? {
        print(&record);
    }
    if args.follow {
        loop {
            std::thread::sleep(Duration::from_millis(200));
            for record in follower.poll().map_err(|e| Failure::Internal(e.into()))? {
                if filter.accepts(&record) {
                    print(&record);
                }
            }
        }
    }
    Ok(())
}

/// `--since`: an age (`10m`) or a time (RFC 3339).
fn since(text: &str) -> Result<chrono::DateTime<chrono::Utc>, Failure> {
    if let Ok(at) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&chrono::Utc));
    }
    let d: nimbus_manifest::Duration = text.parse().map_err(|e: String| {
        Failure::user(format!(
            "--since: {e}\n  hint: an age such as `10m` or `2h`, or a time such as `2026-01-02T03:04:05Z`"
        ))
    })?;
    Ok(chrono::Utc::now() - chrono::Duration::milliseconds(d.as_millis() as i64))
}

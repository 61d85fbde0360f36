//! `nimbus logs`: a function's (or every function's) invocations and output, from the local
//! runtime's log files; `--follow` keeps printing. The function is checked against what was
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
        Some(text) => {
            let d: nimbus_manifest::Duration = text
                .parse()
                .map_err(|e: String| Failure::user(format!("--since: {e}")))?;
            Some(chrono::Utc::now() - chrono::Duration::milliseconds(d.as_millis() as i64))
        }
    };
    let filter = Filter {
        function: args.function.clone(),
        since,
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
        } else if record.get("kind").and_then(|k| k.as_str()) != Some("runtime")
            || record.get("level").and_then(|l| l.as_str()) != Some("debug")
        {
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

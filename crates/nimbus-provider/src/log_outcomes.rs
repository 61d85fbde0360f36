//! What a cloud's own log lines say about an invocation's outcome (`[logs]` in
//! `capabilities.toml`): the platform writes a line of its own when an invocation times out, runs
//! out of memory, crashes or fails (Lambda's `Task timed out after …`, Azure's `Executed '…'
//! (Failed, …)`), and `nimbus logs -p <cloud>` shows it with the same word the local runtime uses
//! (`error`, `timeout`, `out of memory`, `crashed`), so `--level error` works on every target.

use serde::Deserialize;

/// The failure words, as the local runtime logs them.
pub const FAILURES: [&str; 4] = ["error", "timeout", "out of memory", "crashed"];

/// The provider's log lines that carry an outcome (`[logs]`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogsCapability {
    /// First match wins: put the more precise texts first.
    #[serde(default)]
    pub outcomes: Vec<LogOutcome>,
}

/// One platform text and the outcome it means.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogOutcome {
    /// Text the platform's line contains.
    pub contains: String,
    /// `ok`, or one of [`FAILURES`].
    pub outcome: String,
}

impl LogsCapability {
    /// The outcome a platform line reports, if it is one of those lines.
    pub fn outcome_of(&self, line: &str) -> Option<&str> {
        self.outcomes
            .iter()
            .find(|o| line.contains(&o.contains))
            .map(|o| o.outcome.as_str())
    }
}

#[cfg(test)]
mod tests {
    use crate::ProviderId;

    /// Lines as each platform writes them (from the providers' documentation and real logs),
    /// with the word `nimbus logs` must show.
    const LINES: &[(ProviderId, &str, Option<&str>)] = &[
        (
            ProviderId::Aws,
            "2026-12-08T03:14:47.615Z 6f0c… Task timed out after 3.00 seconds",
            Some("timeout"),
        ),
        (
            ProviderId::Aws,
            "REPORT RequestId: 6f0c… Duration: 3000.00 ms Billed Duration: 3000 ms Memory Size: 128 MB Max Memory Used: 49 MB Status: timeout",
            Some("timeout"),
        ),
        (
            ProviderId::Aws,
            "REPORT RequestId: 6f0c… Duration: 812.10 ms Billed Duration: 813 ms Memory Size: 128 MB Max Memory Used: 128 MB Status: error Error Type: Runtime.OutOfMemory",
            Some("out of memory"),
        ),
        (
            ProviderId::Aws,
            "RequestId: 6f0c… Error: Runtime exited with error: signal: killed Runtime.ExitError",
            Some("out of memory"),
        ),
        (
            ProviderId::Aws,
            "RequestId: 6f0c… Error: Runtime exited with error: exit status 1 Runtime.ExitError",
            Some("crashed"),
        ),
        (
            ProviderId::Aws,
            "RequestId: 16f8… Process exited before completing request",
            Some("crashed"),
        ),
        (
            ProviderId::Aws,
            "[ERROR] KeyError: 'id'\nTraceback (most recent call last):",
            Some("error"),
        ),
        (
            ProviderId::Aws,
            "2026-12-08T03:14:47.615Z\t6f0c…\tERROR\tInvoke Error \t{\"errorType\":\"TypeError\",\"errorMessage\":\"x is undefined\"}",
            Some("error"),
        ),
        (
            ProviderId::Aws,
            "REPORT RequestId: 6f0c… Duration: 12.10 ms Billed Duration: 13 ms Memory Size: 128 MB Max Memory Used: 49 MB",
            None,
        ),
        (ProviderId::Aws, "order 42 read", None),
        (
            ProviderId::Gcp,
            "The request has been terminated because it has reached the maximum request timeout. To change this limit, see https://cloud.google.com/run/docs/configuring/request-timeout",
            Some("timeout"),
        ),
        (
            ProviderId::Gcp,
            "Memory limit of 256 MiB exceeded with 262 MiB used. Consider increasing the memory limit, see https://cloud.google.com/run/docs/configuring/memory-limits",
            Some("out of memory"),
        ),
        (
            ProviderId::Gcp,
            "Uncaught exception in the worker: Container called exit(1).",
            Some("crashed"),
        ),
        (
            ProviderId::Gcp,
            "Traceback (most recent call last):\n  File \"/workspace/main.py\", line 14",
            Some("error"),
        ),
        (ProviderId::Gcp, "order 42 read", None),
        (
            ProviderId::Azure,
            "Timeout value of 00:00:05 exceeded by function 'Functions.get-order' (Id: '7c1e…'). Initiating cancellation.",
            Some("timeout"),
        ),
        (
            ProviderId::Azure,
            "Executed 'Functions.get-order' (Failed, Id=7c1e…, Duration=12ms)",
            Some("error"),
        ),
        (
            ProviderId::Azure,
            "Executed 'Functions.get-order' (Succeeded, Id=7c1e…, Duration=12ms)",
            Some("ok"),
        ),
        (
            ProviderId::Azure,
            "Language Worker Process exited. Pid=412. python exited with code 137 (0x89). OutOfMemoryError",
            Some("out of memory"),
        ),
        (
            ProviderId::Azure,
            "Language Worker Process exited. Pid=412. python exited with code 1 (0x1).",
            Some("crashed"),
        ),
        (ProviderId::Azure, "order 42 read", None),
    ];

    #[test]
    fn platform_lines_read_as_the_local_outcome_words() {
        for (provider, line, want) in LINES {
            let logs = &provider.capabilities().logs;
            assert_eq!(logs.outcome_of(line), *want, "{provider:?}: {line}");
        }
        for provider in [ProviderId::Aws, ProviderId::Gcp, ProviderId::Azure] {
            for o in &provider.capabilities().logs.outcomes {
                assert!(
                    o.outcome == "ok" || super::FAILURES.contains(&o.outcome.as_str()),
                    "{provider:?}: unknown outcome word `{}`",
                    o.outcome
                );
            }
        }
    }
}

//! Retrying driver calls that failed with a retryable error, with exponential backoff and a
//! bounded number of attempts.

use std::future::Future;
use std::time::Duration;

use crate::driver::DriverError;

/// How retryable errors are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (at least 1).
    pub max_attempts: u32,
    /// The wait after the first failure; doubled after each further one.
    pub initial_backoff: Duration,
    /// The longest wait.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(20),
        }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt `attempt` (1-based).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

/// Calls `call(attempt)` until it succeeds, fails permanently, or `policy.max_attempts` is
/// reached; `on_retry(attempt, delay, error)` is told before each wait.
pub(crate) async fn with_retry<T, F, Fut>(
    policy: &RetryPolicy,
    mut on_retry: impl FnMut(u32, Duration, &DriverError),
    mut call: F,
) -> Result<T, DriverError>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, DriverError>>,
{
    let mut attempt = 1;
    loop {
        match call(attempt).await {
            Err(e) if e.retryable && attempt < policy.max_attempts.max(1) => {
                let delay = policy.backoff(attempt);
                on_retry(attempt, delay, &e);
                tokio::time::sleep(delay).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = RetryPolicy {
            max_attempts: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(500),
        };
        let waits: Vec<u128> = (1..=5).map(|a| p.backoff(a).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 500, 500]);
    }

    #[tokio::test(start_paused = true)]
    async fn retryable_errors_are_retried_until_the_limit() {
        let p = RetryPolicy {
            max_attempts: 3,
            ..Default::default()
        };
        let mut seen = Vec::new();
        let r: Result<(), _> = with_retry(
            &p,
            |a, _, _| seen.push(a),
            |_| async { Err(DriverError::retryable("slow down")) },
        )
        .await;
        assert_eq!(r.unwrap_err().message, "slow down");
        assert_eq!(seen, [1, 2]);
        let r: Result<u32, _> = with_retry(
            &p,
            |_, _, _| {},
            |a| async move {
                if a < 2 {
                    Err(DriverError::retryable("x"))
                } else {
                    Ok(a)
                }
            },
        )
        .await;
        assert_eq!(r, Ok(2));
        let mut calls = 0;
        let r: Result<(), _> = with_retry(
            &p,
            |_, _, _| {},
            |_| {
                calls += 1;
                async { Err(DriverError::permanent("no")) }
            },
        )
        .await;
        assert!(r.is_err());
        assert_eq!(calls, 1);
    }
}

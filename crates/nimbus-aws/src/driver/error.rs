//! AWS SDK errors as the engine sees them: a message with the API call, the error code and
//! AWS's text, and whether retrying may help (throttling, 5xx, timeouts, lost connections, and
//! the eventual-consistency errors AWS is known for right after a create).

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use nimbus_engine::DriverError;

/// One failed AWS call, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CallError {
    /// The API operation, e.g. `CreateFunction`.
    pub operation: &'static str,
    /// The AWS error code, e.g. `ResourceNotFoundException`.
    pub code: Option<String>,
    /// The HTTP status, when a response came back.
    pub status: Option<u16>,
    /// AWS's message, or the transport's.
    pub message: String,
    /// Whether trying again may succeed.
    pub retryable: bool,
}

/// Error codes that mean "try again later".
const RETRYABLE_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "ProvisionedThroughputExceededException",
    "SlowDown",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "InternalError",
    "InternalFailure",
    "InternalServerError",
    "InternalServerException",
    "ServiceException",
    // Lambda: another update of the function is in progress.
    "ResourceConflictException",
    // S3: a conflicting conditional operation is in progress.
    "OperationAborted",
    "ConcurrentModificationException",
    "ConflictException",
    // SQS: a queue of this name was deleted less than 60 s ago.
    "AWS.SimpleQueueService.QueueDeletedRecently",
    "QueueDeletedRecently",
    // DynamoDB: the table is being created, updated or deleted.
    "ResourceInUseException",
];

/// Error codes that mean "it does not exist".
const NOT_FOUND_CODES: &[&str] = &[
    "NoSuchEntity",
    "ResourceNotFoundException",
    "NotFoundException",
    "NotFound",
    "NoSuchBucket",
    "NoSuchKey",
    "NoSuchLifecycleConfiguration",
    "AWS.SimpleQueueService.NonExistentQueue",
    "QueueDoesNotExist",
];

impl CallError {
    /// Classifies `err` from the call `operation`.
    pub fn new<E>(operation: &'static str, err: SdkError<E>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let status = err.raw_response().map(|r| r.status().as_u16());
        match &err {
            SdkError::ServiceError(service) => {
                let e = service.err();
                let code = e.code().map(str::to_string);
                let message = e
                    .message()
                    .map(str::to_string)
                    .unwrap_or_else(|| describe(&err));
                let retryable = status.is_some_and(|s| s >= 500)
                    || code
                        .as_deref()
                        .is_some_and(|c| RETRYABLE_CODES.contains(&c))
                    || iam_not_ready(code.as_deref(), &message);
                CallError {
                    operation,
                    code,
                    status,
                    message,
                    retryable,
                }
            }
            SdkError::ConstructionFailure(_) => CallError {
                operation,
                code: None,
                status,
                message: describe(&err),
                retryable: false,
            },
            // Timeouts, lost connections, unparsable responses.
            _ => CallError {
                operation,
                code: None,
                status,
                message: describe(&err),
                retryable: true,
            },
        }
    }

    /// Whether the error says the resource does not exist.
    pub fn is_not_found(&self) -> bool {
        self.code
            .as_deref()
            .is_some_and(|c| NOT_FOUND_CODES.contains(&c))
            || self.status == Some(404)
    }

    /// Whether the error says a role created a moment ago is not usable yet (IAM propagates
    /// new roles to other services within seconds, sometimes tens of seconds).
    pub fn is_role_not_ready(&self) -> bool {
        iam_not_ready(self.code.as_deref(), &self.message)
    }

    /// Whether the error has this code.
    pub fn is(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }
}

impl From<CallError> for DriverError {
    fn from(e: CallError) -> Self {
        let message = match (&e.code, e.status) {
            (Some(code), _) => format!("{}: {code}: {}", e.operation, e.message),
            (None, Some(status)) => format!("{}: HTTP {status}: {}", e.operation, e.message),
            (None, None) => format!("{}: {}", e.operation, e.message),
        };
        DriverError {
            message,
            retryable: e.retryable,
        }
    }
}

/// Lambda and the scheduler reject a role created a moment ago until IAM has propagated it.
fn iam_not_ready(code: Option<&str>, message: &str) -> bool {
    matches!(
        code,
        Some("InvalidParameterValueException" | "ValidationException")
    ) && (message.contains("cannot be assumed")
        || message.contains("role defined for the function")
        || message.contains("assume the role"))
}

/// How long a create waits for IAM to make a new role usable.
const ROLE_PROPAGATION: std::time::Duration = std::time::Duration::from_secs(60);

/// Calls `call` again every 2 s while it fails because a role created a moment ago is not
/// usable yet (Lambda, EventBridge Scheduler), for up to a minute — longer than the engine's
/// retries would wait, since IAM can take that long.
pub(crate) async fn once_role_is_ready<T, Fut>(
    mut call: impl FnMut() -> Fut,
) -> Result<T, CallError>
where
    Fut: std::future::Future<Output = Result<T, CallError>>,
{
    let started = tokio::time::Instant::now();
    loop {
        match call().await {
            Err(e) if e.is_role_not_ready() && started.elapsed() < ROLE_PROPAGATION => {
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            }
            result => return result,
        }
    }
}

/// The error and its sources, on one line.
fn describe(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

/// `Ok(None)` when `result` failed with "not found", else the result.
pub(crate) fn found<T>(result: Result<T, CallError>) -> Result<Option<T>, CallError> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// `Ok(())` when `result` succeeded or failed with "not found" (deletes are idempotent).
pub(crate) fn gone<T>(result: Result<T, CallError>) -> Result<(), CallError> {
    found(result).map(|_| ())
}

/// Adds `.call("Operation")` to SDK futures' results.
pub(crate) trait Call<T> {
    fn call(self, operation: &'static str) -> Result<T, CallError>;
}

impl<T, E> Call<T> for Result<T, SdkError<E>>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    fn call(self, operation: &'static str) -> Result<T, CallError> {
        self.map_err(|e| CallError::new(operation, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(code: &str, message: &str, status: u16) -> CallError {
        let retryable =
            status >= 500 || RETRYABLE_CODES.contains(&code) || iam_not_ready(Some(code), message);
        CallError {
            operation: "Op",
            code: Some(code.into()),
            status: Some(status),
            message: message.into(),
            retryable,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn creates_wait_for_a_new_role_and_nothing_else() {
        let calls = std::cell::Cell::new(0);
        let out = once_role_is_ready(|| {
            calls.set(calls.get() + 1);
            let n = calls.get();
            async move {
                match n {
                    1 | 2 => Err(err(
                        "InvalidParameterValueException",
                        "The role defined for the function cannot be assumed by Lambda.",
                        400,
                    )),
                    _ => Ok(n),
                }
            }
        })
        .await;
        assert_eq!(out, Ok(3));
        calls.set(0);
        let out: Result<u32, _> = once_role_is_ready(|| {
            calls.set(calls.get() + 1);
            async { Err(err("AccessDenied", "no", 403)) }
        })
        .await;
        assert!(out.is_err());
        assert_eq!(calls.get(), 1, "other errors are not waited on");
        // A role that never becomes usable gives up after a minute.
        let started = tokio::time::Instant::now();
        let out: Result<u32, _> = once_role_is_ready(|| async {
            Err(err(
                "ValidationException",
                "Scheduler cannot assume the role",
                400,
            ))
        })
        .await;
        assert!(out.unwrap_err().is_role_not_ready());
        assert!(started.elapsed() >= ROLE_PROPAGATION);
    }

    #[test]
    fn classification() {
        assert!(err("ThrottlingException", "slow down", 400).retryable);
        assert!(err("Anything", "boom", 503).retryable);
        assert!(
            err(
                "InvalidParameterValueException",
                "The role defined for the function cannot be assumed by Lambda.",
                400
            )
            .retryable
        );
        assert!(!err("InvalidParameterValueException", "bad memory", 400).retryable);
        assert!(err("NoSuchEntity", "no role", 404).is_not_found());
        assert!(err("Whatever", "gone", 404).is_not_found());
        assert!(!err("AccessDenied", "no", 403).is_not_found());
        let d: DriverError = err("AccessDenied", "not allowed", 403).into();
        assert_eq!(d.message, "Op: AccessDenied: not allowed");
        assert!(!d.retryable);
    }
}

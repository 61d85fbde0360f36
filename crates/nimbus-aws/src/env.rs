//! The environment variables that tell the AWS shim the native names of what a function uses.
//!
//! Packages are built before anything is deployed, so `_nimbus/function.json` carries an empty
//! `native` block for every resource. Lowering fills the gap through the function's environment:
//! for every resource in its function.json `resources` (what it `uses` and what triggers it),
//!
//! | variable | value | for |
//! |---|---|---|
//! | `NIMBUS_RESOURCE_<R>_NAME` | the physical name (table, queue, topic, bucket) | all |
//! | `NIMBUS_RESOURCE_<R>_ARN` | its ARN | all |
//! | `NIMBUS_RESOURCE_<R>_URL` | the queue URL (what SQS SendMessage takes) | queues |
//! | `NIMBUS_RESOURCE_<R>_STREAM_ARN` | the table's stream ARN | tables that trigger the function |
//!
//! and for every schedule trigger `NIMBUS_SCHEDULE_<T>_ARN` = the EventBridge Scheduler
//! schedule's ARN, where `<T>` is the trigger's function.json `name` (`nightly-report-schedule-0`).
//! `<R>` and `<T>` are the neutral name upper-cased with `-` as `_` ([`var_part`]); neutral
//! names are lowercase letters, digits and `-`, so the mapping is one-to-one and the shim can
//! compute each variable's name from function.json instead of parsing variable names.
//!
//! The AWS shim (`aws.with_env_natives` / `withEnvNatives`) merges them into a copy of
//! function.json when it converts an event: `resources[R].native` gains
//! `{"name", "arn", "url", "stream_arn"}` and a schedule trigger's `native` gains `{"arn"}` —
//! exactly the keys the contract suggests (docs/function-contract.md), which its matching
//! (`core.resolve_resource`, `core.resolve_schedule`: any string in `native` equal to the
//! event's ARN or its last segment; for DynamoDB the table ARN before `/stream/`) then uses, so
//! two triggers of the same type map exactly. Without them the shim falls back to the function's
//! only trigger of the event's type, then to the native name.

/// `orders` → `ORDERS`, `order-events` → `ORDER_EVENTS`.
pub fn var_part(name: &str) -> String {
    name.to_ascii_uppercase().replace('-', "_")
}

/// `NIMBUS_RESOURCE_<R>_<FIELD>` where `field` is `NAME`, `ARN`, `URL` or `STREAM_ARN`.
pub fn resource_var(resource: &str, field: &str) -> String {
    format!("NIMBUS_RESOURCE_{}_{field}", var_part(resource))
}

/// `NIMBUS_SCHEDULE_<T>_ARN` for the schedule trigger named `trigger_name`.
pub fn schedule_var(trigger_name: &str) -> String {
    format!("NIMBUS_SCHEDULE_{}_ARN", var_part(trigger_name))
}

/// `NIMBUS_SECRET_<VAR>`: the reference to the secret whose value the shim puts in `<VAR>` at
/// cold start (`<VAR>` is the user's variable, kept as written).
pub fn secret_var(var: &str) -> String {
    format!("NIMBUS_SECRET_{var}")
}

/// Lambda's limit on the total size of a function's environment (names and values).
pub const LAMBDA_ENV_LIMIT: usize = 4096;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            resource_var("order-events", "ARN"),
            "NIMBUS_RESOURCE_ORDER_EVENTS_ARN"
        );
        assert_eq!(
            resource_var("payments", "URL"),
            "NIMBUS_RESOURCE_PAYMENTS_URL"
        );
        assert_eq!(
            schedule_var("nightly-report-schedule-0"),
            "NIMBUS_SCHEDULE_NIGHTLY_REPORT_SCHEDULE_0_ARN"
        );
        assert_eq!(
            secret_var("PAYMENT_API_KEY"),
            "NIMBUS_SECRET_PAYMENT_API_KEY"
        );
    }
}

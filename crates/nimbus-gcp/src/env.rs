//! The environment variables that tell the GCP shim the native names of what a function uses.
//!
//! Packages are built before anything is deployed, so `_nimbus/function.json` carries an empty
//! `native` block for every resource. Lowering fills the gap through the function's environment:
//! for every resource in its function.json `resources` (what it `uses` and what triggers it),
//!
//! | variable | value | for |
//! |---|---|---|
//! | `NIMBUS_RESOURCE_<R>_COLLECTION` | the Firestore collection id | tables |
//! | `NIMBUS_RESOURCE_<R>_DATABASE` | the Firestore database (`projects/P/databases/(default)`) | tables |
//! | `NIMBUS_RESOURCE_<R>_TOPIC` | the topic's full name (`projects/P/topics/T`) | topics, queues |
//! | `NIMBUS_RESOURCE_<R>_SUBSCRIPTION` | the queue's subscription (`projects/P/subscriptions/S`) | queues |
//! | `NIMBUS_RESOURCE_<R>_NAME` | the bucket's name | buckets |
//!
//! plus `NIMBUS_SCHEDULE_<T>_JOB` = the Cloud Scheduler job's full name for every schedule trigger
//! (`<T>` is the trigger's function.json `name`), and `NIMBUS_GCP_PROJECT`. `<R>` and `<T>` are the
//! neutral name upper-cased with `-` as `_`, as on AWS. The GCP shim merges them into function.json's
//! `native` blocks (`collection`, `database`, `topic`, `subscription`, `name`; a schedule trigger's
//! `native.job`), which its event matching and its resource clients use.

/// `orders` → `ORDERS`, `order-events` → `ORDER_EVENTS`.
pub fn var_part(name: &str) -> String {
    name.to_ascii_uppercase().replace('-', "_")
}

/// `NIMBUS_RESOURCE_<R>_<FIELD>`.
pub fn resource_var(resource: &str, field: &str) -> String {
    format!("NIMBUS_RESOURCE_{}_{field}", var_part(resource))
}

/// `NIMBUS_SCHEDULE_<T>_JOB` for the schedule trigger named `trigger_name`.
pub fn schedule_var(trigger_name: &str) -> String {
    format!("NIMBUS_SCHEDULE_{}_JOB", var_part(trigger_name))
}

/// The project the function runs in.
pub const PROJECT_VAR: &str = "NIMBUS_GCP_PROJECT";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            resource_var("order-events", "TOPIC"),
            "NIMBUS_RESOURCE_ORDER_EVENTS_TOPIC"
        );
        assert_eq!(
            schedule_var("nightly-report-schedule-0"),
            "NIMBUS_SCHEDULE_NIGHTLY_REPORT_SCHEDULE_0_JOB"
        );
    }
}

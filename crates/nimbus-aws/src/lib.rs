//! The AWS provider: what a Nimbus app becomes on AWS.
//!
//! [`lower`] turns the app graph and its build into native resources — one per AWS object
//! (IAM roles and policies, log groups, Lambda functions and permissions, an API Gateway HTTP
//! API, EventBridge Scheduler schedules, SQS queues and event source mappings, SNS topics and
//! subscriptions, S3 buckets and notifications, DynamoDB tables, Secrets Manager secrets),
//! with properties shaped like the AWS API requests that create them ([`kinds`]) and
//! deterministic physical names ([`names`]); [`secrets`] sets and checks secret values. The deploy engine plans and applies them through this crate's driver.
//! [`template`] writes the same app as a CloudFormation template, for pipelines that deploy
//! with CloudFormation or check templates with cfn-lint and checkov.
//!
//! This crate knows the app graph, the build manifest and the engine's resource model; it never
//! reads the manifest's YAML. The AWS SDK appears only here (in the driver).

#![deny(missing_docs)]

pub mod clients;
mod cloud;
pub mod cloudformation;
pub mod driver;
pub mod env;
mod error;
pub mod events;
pub mod kinds;
mod lower;
pub mod names;
pub mod queues;
pub mod secrets;
pub mod store;

pub use cloud::{Aws, AwsEngine, STATE_PREFIX, connect};
pub use cloudformation::template;
pub use driver::{Artifacts, AwsDriver};
pub use error::{AwsError, ScheduleProblem};
pub use lower::{AwsSettings, LOG_RETENTION_DAYS, lower};

/// The Lambda handler of the AWS shim.
pub const HANDLER: &str = "_nimbus_aws.handler";

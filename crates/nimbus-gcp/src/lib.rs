//! The GCP provider: what a Nimbus app becomes on Google Cloud.
//!
//! [`lower`] turns the app graph and its build into native resources — one per Google Cloud
//! object (service accounts and IAM bindings, Cloud Functions (2nd gen), Pub/Sub topics and
//! subscriptions, Cloud Storage buckets, Firestore collections, Eventarc triggers, Cloud
//! Scheduler jobs, an API Gateway) — with properties shaped like the REST bodies that create them
//! ([`kinds`]) and deterministic physical names ([`names`]). The deploy engine plans and applies
//! them through this crate's REST driver. [`terraform`] writes the same app as Terraform JSON
//! (`main.tf.json`), for pipelines that deploy with Terraform or check configurations with
//! checkov.
//!
//! This crate knows the app graph, the build manifest and the engine's resource model; it never
//! reads the manifest's YAML. Google's APIs appear only here.

#![deny(missing_docs)]

pub mod api;
mod cloud;
pub mod driver;
pub mod env;
mod error;
pub mod events;
pub mod kinds;
mod lower;
pub mod names;
pub mod queues;
pub mod secrets;
pub mod storage;
pub mod terraform;

pub use cloud::{Gcp, connect};
pub use error::GcpError;
pub use lower::{GcpSettings, lower};
pub use terraform::main_tf_json;

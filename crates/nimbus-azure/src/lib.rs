//! The Azure provider: what a Nimbus app becomes on Azure Functions (Flex Consumption, Linux),
//! and how it gets there through Azure Resource Manager (ARM).
//!
//! [`apps`] maps each neutral function to its own Function App (and says why one app per
//! function); [`entry`] generates each app's entry point in the Python v2 / Node v4 programming
//! model and its `host.json`; [`package`] makes a function's zip an app package; [`template`]
//! writes the whole app as one deterministic ARM template, with deterministic [`names`] and the
//! least-privilege role assignments of [`roles`]; [`env`] lists the settings the shim's
//! resource clients read.
//!
//! ARM is the state of record: a deploy uploads the packages, PUTs the template as a deployment
//! and polls it. This crate knows the app graph, the build manifest and the engine's report
//! shapes; it never reads the manifest's YAML. The Azure SDK crates appear only here.

#![deny(missing_docs)]

pub mod apps;
pub mod arm;
mod cloud;
pub mod credential;
pub mod entry;
pub mod env;
mod error;
pub mod names;
pub mod package;
pub mod roles;
pub mod sas;
pub mod storage;
pub mod template;

pub use apps::{App, AzureSettings, apps};
pub use cloud::queues;
pub use cloud::{Azure, DATA_API, DATA_SCOPE, State, connect, connect_with};
pub use error::AzureError;
pub use template::template;

/// Makes rustls with ring the process's TLS provider, once (azure_core's reqwest client is
/// built without one; a second install is a no-op). ring, not aws-lc: no C build.
pub(crate) fn tls() {
    #[allow(deprecated)]
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// azure_core's HTTP client, with the TLS provider installed first.
pub(crate) fn http_client() -> std::sync::Arc<dyn azure_core::http::HttpClient> {
    tls();
    azure_core::http::new_http_client(None)
}

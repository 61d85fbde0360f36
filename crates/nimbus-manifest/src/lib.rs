//! The Nimbus manifest (`nimbus.yaml`, version 1): its model, parsing with source spans,
//! templating, stage resolution and validation.
//!
//! This is the only crate that knows YAML. It turns text into a [`Manifest`] resolved for one
//! stage and provider, or into a [`nimbus_diagnostic::Report`] whose every entry points at a
//! line and column. It knows nothing of providers' limits or SDKs: those checks run on the app
//! graph (`nimbus-graph`, `nimbus-provider`).
//!
//! ```no_run
//! use nimbus_manifest::{load_file, LoadOptions};
//! let loaded = load_file("examples/shop/nimbus.yaml".as_ref(), &LoadOptions::default())?;
//! assert_eq!(loaded.manifest.service.as_str(), "shop");
//! # Ok::<(), nimbus_manifest::LoadError>(())
//! ```

#![deny(missing_docs)]

pub mod cors;
mod de;
pub mod external;
pub mod extras;
mod extras_check;
mod load;
pub mod model;
pub mod routes;
mod secrets;
mod spanned;
mod template;
mod text;
pub mod types;
mod validate;
pub(crate) mod yaml;

pub use cors::{Cors, CorsOrigin, HeaderName, RouteCors};
pub use external::{Certificate, Domain, Existing, Http};
pub use extras::*;
pub use load::{
    Checked, DEFAULT_STAGE, LoadError, LoadOptions, Loaded, check_bytes, check_file, check_str,
    load_file, load_str,
};
pub use model::*;
pub use secrets::looks_like_credential;
pub use spanned::Spanned;
pub use template::Deferred;
pub use types::*;
pub use validate::SUPPORTED_VERSION;
pub use yaml::to_yaml;

/// Memory when neither the function nor the defaults set it.
pub const DEFAULT_MEMORY: MemoryMb = MemoryMb::new(256);
/// Timeout when neither the function nor the defaults set it.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Concurrency cap when neither the function nor the defaults set it.
pub const DEFAULT_CONCURRENCY: u32 = 10;

/// The manifest's JSON Schema, as pretty JSON with a trailing newline.
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(Manifest);
    let mut text = serde_json::to_string_pretty(&schema).expect("a schema serializes");
    text.push('\n');
    text
}

//! The queue tools on Azure: not in this build yet.

use nimbus_graph::AppGraph;
use serde_json::Value;

use super::Op;
use crate::output::Failure;

/// Refuses: Azure Queue Storage is not called by this build.
pub(super) async fn run(_graph: &AppGraph, _op: &Op) -> Result<Value, Failure> {
    Err(Failure::user(
        "`nimbus queue` is not available on azure in this build",
    ))
}

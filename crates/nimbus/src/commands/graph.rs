//! `nimbus graph`: print the resolved app graph.

use crate::cli::{Global, GraphArgs, GraphFormat};
use crate::output::{Failure, Out};

pub fn run(global: &Global, args: &GraphArgs, out: &Out) -> Result<(), Failure> {
    let compiled = super::compile(global, out, nimbus_provider::Purpose::Export)?;
    if out.json || args.format == GraphFormat::Json {
        print!("{}", compiled.graph.to_json());
    } else {
        let value =
            serde_json::to_value(&compiled.graph).map_err(|e| Failure::Internal(e.into()))?;
        print!("{}", nimbus_manifest::to_yaml(&value));
    }
    Ok(())
}

//! `nimbus schema`: print the manifest's JSON Schema.

use crate::output::Failure;

pub fn run() -> Result<(), Failure> {
    print!("{}", nimbus_manifest::json_schema());
    Ok(())
}

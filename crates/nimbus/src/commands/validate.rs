//! `nimbus validate`: compile the manifest for a provider and say whether it holds.

use crate::cli::Global;
use crate::output::{Failure, Out, diagnostics_json};

pub fn run(global: &Global, out: &Out) -> Result<(), Failure> {
    let compiled = super::compile(global, out, nimbus_provider::Purpose::Deploy)?;
    let g = &compiled.graph;
    if out.json {
        let json = serde_json::json!({
            "valid": true,
            "file": compiled.loaded.path.display().to_string(),
            "service": g.service,
            "stage": g.stage,
            "provider": g.provider,
            "functions": g.functions.len(),
            "resources": g.resources.len(),
            "hash": g.hash,
            "diagnostics": diagnostics_json(&compiled.loaded.path, &compiled.warnings),
        });
        println!("{}", serde_json::to_string_pretty(&json).expect("json"));
    } else {
        let warnings = compiled.warnings.len();
        println!(
            "{} is valid for {} (service `{}`, stage `{}`): {} function{}, {} resource{}{}",
            compiled.loaded.path.display(),
            g.provider,
            g.service,
            g.stage,
            g.functions.len(),
            if g.functions.len() == 1 { "" } else { "s" },
            g.resources.len(),
            if g.resources.len() == 1 { "" } else { "s" },
            if warnings > 0 {
                format!(
                    ", {warnings} warning{}",
                    if warnings == 1 { "" } else { "s" }
                )
            } else {
                String::new()
            },
        );
    }
    Ok(())
}

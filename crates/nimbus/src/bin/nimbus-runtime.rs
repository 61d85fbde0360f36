//! `nimbus-runtime`: the local runtime's background process, started by `nimbus deploy`.
//!
//! A separate executable so that an idle runtime holds only the local runtime's code in
//! memory, not the cloud SDKs linked into `nimbus`. Not meant to be run by hand.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// Serves a local deployment until `nimbus remove` (or SIGTERM) stops it.
#[derive(Debug, Parser)]
#[command(name = "nimbus-runtime", version)]
struct Args {
    /// The state folder of the deployment
    #[arg(long)]
    state: PathBuf,
    /// Gateway port (default: the deployment's)
    #[arg(long)]
    port: Option<u16>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match nimbus_local::daemon::serve(args.state, args.port) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let mut message = format!("error: {e}");
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                message.push_str(&format!("\n  caused by: {s}"));
                source = s.source();
            }
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}

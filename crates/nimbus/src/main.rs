//! The `nimbus` command: parses arguments, runs one command, renders errors, sets the exit code.
//!
//! Only this crate knows clap and the terminal. Each command lives in its own module under
//! `commands/` and calls into the library crates. Exit codes: 0 ok, 1 user error, 2 internal.

mod cli;
mod commands;
mod output;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::Cli;
use crate::output::{Failure, Out};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let out = Out::new(&cli.global);
    match commands::run(cli, &out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::User(e)) => {
            out.error(&e);
            ExitCode::from(1)
        }
        Err(Failure::Reported) => ExitCode::from(1),
        Err(Failure::Changes) => ExitCode::from(2),
        Err(Failure::Internal(e)) => {
            out.error(&e.context("internal error (please report it with the command you ran)"));
            ExitCode::from(2)
        }
    }
}

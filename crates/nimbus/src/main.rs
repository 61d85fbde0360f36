//! The `nimbus` command: parses arguments, runs one command, renders errors, sets the exit code.
//!
//! Only this crate knows clap and the terminal. Each command lives in its own module under
//! `commands/` and calls into the library crates. Exit codes: 0 ok, 1 user error, 2 internal;
//! with `plan --detailed-exitcode`: 0 no changes, 1 any error, 2 changes pending.

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
    // With `plan --detailed-exitcode`, 2 means "changes pending" (as in Terraform), so every
    // failure, internal ones included, exits 1: a CI gate never mistakes an error for changes.
    let detailed = matches!(&cli.command, cli::Command::Plan(a) if a.detailed_exitcode);
    let internal_code = if detailed { 1 } else { 2 };
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
            ExitCode::from(internal_code)
        }
    }
}

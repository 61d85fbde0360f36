//! Running a prepared `nimbus` command with text on its standard input (secret values are never
//! arguments), collecting what it printed.

use std::io::Write;
use std::process::{Command, Output, Stdio};

/// Runs `cmd` with `input` on stdin (then closed; nothing when `None`), stdout and stderr
/// captured.
pub fn output_with_stdin(cmd: &mut Command, input: Option<&[u8]>) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("nimbus runs");
    let mut stdin = child.stdin.take().expect("piped stdin");
    if let Some(bytes) = input {
        stdin.write_all(bytes).expect("nimbus reads its stdin");
    }
    drop(stdin);
    child.wait_with_output().expect("nimbus ends")
}

//! Tools installed in the test venv: the directory of `NIMBUS_TEST_PYTHON` (which `scripts/test`
//! sets), else `<repo>/.tools/venv/bin/`. `scripts/test` installs `tests/requirements.txt` there.

use std::path::PathBuf;

/// Where `name` would be installed in the test venv.
fn venv_path(name: &str) -> PathBuf {
    let dir = match std::env::var_os("NIMBUS_TEST_PYTHON") {
        Some(python) => PathBuf::from(python)
            .parent()
            .expect("NIMBUS_TEST_PYTHON is a file path")
            .to_path_buf(),
        None => crate::repo().join(".tools/venv/bin"),
    };
    dir.join(name)
}

fn not_installed(name: &str, path: &std::path::Path) -> String {
    format!(
        "`{name}` is not installed at {}: run scripts/test (it installs tests/requirements.txt into .tools/venv)",
        path.display()
    )
}

/// The venv tool `name`. A missing tool fails the test, never skips it.
pub fn required_venv_tool(name: &str) -> PathBuf {
    let path = venv_path(name);
    assert!(path.is_file(), "{}", not_installed(name, &path));
    path
}

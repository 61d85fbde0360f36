//! Golden files: generated text compared byte for byte with a committed file; `BLESS=1`
//! (re)writes the file instead.

use std::path::Path;

/// Asserts that `got` is the content of `path` (`what` names it in the failure, e.g. "the
/// shop's template"); with `BLESS` set, writes `got` to `path` instead.
pub fn assert_snapshot(path: &Path, got: &str, what: &str) {
    if std::env::var_os("BLESS").is_some() {
        std::fs::write(path, got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e} (BLESS=1 writes it)", path.display()));
    assert!(
        got == want,
        "{what} differs from {} (BLESS=1 rewrites it); first difference at line {}",
        path.display(),
        got.lines()
            .zip(want.lines())
            .position(|(a, b)| a != b)
            .map_or(got.lines().count().min(want.lines().count()) + 1, |i| i + 1)
    );
}

//! What the binary's test files share: running `nimbus` with a clean environment.

use std::path::Path;
use std::process::{Command, Output};

/// Deploy settings a provider may read from the environment (`[settings.*]` in
/// `providers/*/capabilities.toml`); removed from the test's environment unless given.
pub const SETTINGS_ENV: &[&str] = &[
    "GOOGLE_CLOUD_PROJECT",
    "CLOUDSDK_CORE_PROJECT",
    "CLOUDSDK_FUNCTIONS_REGION",
    "GOOGLE_CLOUD_REGION",
    "AZURE_SUBSCRIPTION_ID",
    "AZURE_DEFAULTS_LOCATION",
];

/// Runs `nimbus args` in `dir` with an empty registry of local deployments of its own, no
/// provider or stage from the environment, no colour, and only the deploy settings in `env`.
pub fn nimbus_env(args: &[&str], dir: &Path, env: &[(&str, &str)]) -> Output {
    let data = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_nimbus"));
    command
        .args(args)
        .current_dir(dir)
        .env_remove("NIMBUS_PROVIDER")
        .env_remove("NIMBUS_STAGE")
        .env("NO_COLOR", "1")
        .env("XDG_DATA_HOME", data.path());
    for name in SETTINGS_ENV {
        command.env_remove(name);
    }
    command.envs(env.iter().copied());
    command.output().expect("nimbus runs")
}

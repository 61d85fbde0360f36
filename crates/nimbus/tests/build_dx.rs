//! The binary where a build meets the user's machine: installer failures shown once with the
//! user's file named and the full log kept, a missing interpreter explained, package sizes in the
//! output, and cloud credentials checked before anything is built.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `nimbus` in `dir` with a registry of its own and `env` applied (`None` removes a variable).
fn nimbus(args: &[&str], dir: &Path, env: &[(&str, Option<&str>)]) -> Output {
    let data = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nimbus"));
    cmd.args(args)
        .current_dir(dir)
        .env_remove("NIMBUS_PROVIDER")
        .env_remove("NIMBUS_STAGE")
        .env("XDG_DATA_HOME", data.path())
        .env("NO_COLOR", "1");
    for (name, value) in env {
        match value {
            Some(v) => cmd.env(name, v),
            None => cmd.env_remove(name),
        };
    }
    cmd.output().expect("nimbus runs")
}

/// A project: `nimbus.yaml` and `files` (path, content).
fn project(manifest: &str, files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("nimbus.yaml"), manifest).unwrap();
    for (path, content) in files {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    dir
}

const HELLO: &str = "version: 1\nservice: hello\nfunctions:\n  f:\n    handler: app.py:handler\n    triggers: [ { http: { method: GET, path: / } } ]\n";
const HANDLER: &str = "def handler(e, c):\n    return {'status': 200}\n";

#[test]
fn a_failing_pip_shows_its_own_error_once_names_the_users_file_and_keeps_the_log() {
    // A line pip cannot parse: it fails without reaching any index.
    let dir = project(
        HELLO,
        &[
            ("app.py", HANDLER),
            ("requirements.txt", "this is not === a requirement\n"),
        ],
    );
    let out = nimbus(&["build"], dir.path(), &[]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    // Named as the user knows it: relative to where they ran the command.
    assert!(
        stderr.contains("pip could not install `./requirements.txt`")
            && stderr.contains("(from line 1 of ./requirements.txt)"),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("Invalid requirement").count(),
        1,
        "pip's error appears once: {stderr}"
    );
    for internal in [".partial-", "--target", "-m pip", "--platform"] {
        assert!(!stderr.contains(internal), "`{internal}` leaked: {stderr}");
    }
    let log = stderr
        .lines()
        .find_map(|l| l.trim().strip_prefix("full log: "))
        .unwrap_or_else(|| panic!("no log path: {stderr}"));
    let log_text = std::fs::read_to_string(dir.path().join(log)).unwrap();
    assert!(log_text.contains("Invalid requirement"), "{log_text}");
    assert!(!log_text.contains(".partial-"), "{log_text}");
}

/// The real path of an installed Python `version` (not a pyenv shim, which needs pyenv on
/// PATH), or a failure saying how to install it.
fn python(version: &str) -> PathBuf {
    let found = nimbus_package::find_python(version).unwrap_or_else(|| {
        panic!("this test needs Python {version}: `pyenv install {version}` or `apt-get install python{version}`")
    });
    let out = Command::new(found)
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .unwrap();
    PathBuf::from(text(&out.stdout).trim())
}

#[test]
fn a_missing_interpreter_names_the_installed_ones_and_how_to_pick_one() {
    // PATH holds only python3.11: the default runtime's python3.12 is missing.
    let dir = project(
        HELLO,
        &[("app.py", HANDLER), ("requirements.txt", "six==1.17.0\n")],
    );
    let bin = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(python("3.11"), bin.path().join("python3.11")).unwrap();
    let path = bin.path().to_str().unwrap();
    let out = nimbus(&["build"], dir.path(), &[("PATH", Some(path))]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("`python3.12` is needed to install the dependencies in")
            && stderr.contains("this machine has `python3.11`")
            && stderr.contains("set `runtime: python3.11` on the function (or in `defaults`)")
            && stderr.contains("pyenv install 3.12"),
        "{stderr}"
    );
}

#[test]
fn build_reports_every_package_size() {
    let dir = project(HELLO, &[("app.py", HANDLER)]);
    for pass in ["built", "cached"] {
        let out = nimbus(&["build", "-p", "azure"], dir.path(), &[]);
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        let line = stderr
            .lines()
            .find(|l| l.trim_start().starts_with(pass))
            .unwrap_or_else(|| panic!("no `{pass}` line: {stderr}"));
        assert!(
            line.contains(" files ") && line.contains(" zipped ") && line.contains(" unzipped"),
            "{line}"
        );
        assert!(
            stdout.contains(" zipped, ") && stdout.contains(" unzipped) -> "),
            "{stdout}"
        );
    }
}

/// A project for `provider` whose build would fail loudly (a requirement pip cannot parse): a
/// command that checks credentials first never gets there.
fn cloud_project() -> tempfile::TempDir {
    let manifest = format!(
        "{HELLO}providers:\n  gcp: {{ project: p-123, region: europe-west1 }}\n  aws: {{ region: us-east-1 }}\n"
    );
    project(
        &manifest,
        &[
            ("app.py", HANDLER),
            ("requirements.txt", "this is not === a requirement\n"),
        ],
    )
}

/// A TCP port on 127.0.0.1 that nothing listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn gcp_without_credentials_says_how_to_provide_them_before_building() {
    let dir = cloud_project();
    let home = tempfile::tempdir().unwrap();
    let metadata = format!("127.0.0.1:{}", closed_port());
    for args in [
        &["plan", "-p", "gcp", "--detailed-exitcode"][..],
        &["deploy", "-p", "gcp"][..],
    ] {
        let out = nimbus(
            args,
            dir.path(),
            &[
                ("HOME", Some(home.path().to_str().unwrap())),
                ("GCE_METADATA_HOST", Some(&metadata)),
                ("GOOGLE_APPLICATION_CREDENTIALS", None),
                ("GOOGLE_OAUTH_ACCESS_TOKEN", None),
                ("NIMBUS_GCP_ANONYMOUS", None),
            ],
        );
        let stderr = text(&out.stderr);
        // 1, not 2: with --detailed-exitcode, 2 would read as "changes pending".
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains("Google Cloud credentials: none found")
                && stderr.contains("gcloud auth application-default login")
                && stderr.contains("GOOGLE_APPLICATION_CREDENTIALS"),
            "{stderr}"
        );
        assert!(
            !stderr.contains("computeMetadata") && !stderr.contains(&metadata),
            "no metadata-server address: {stderr}"
        );
        assert!(
            !stderr.contains("pip could not install") && !dir.path().join(".nimbus/build").exists(),
            "nothing was built: {stderr}"
        );
    }
}

#[test]
fn aws_without_credentials_fails_before_building() {
    let dir = cloud_project();
    let home = tempfile::tempdir().unwrap();
    let endpoint = format!("http://127.0.0.1:{}", closed_port());
    let out = nimbus(
        &["deploy", "-p", "aws"],
        dir.path(),
        &[
            ("HOME", Some(home.path().to_str().unwrap())),
            ("NIMBUS_AWS_ENDPOINT_URL", Some(&endpoint)),
            ("AWS_EC2_METADATA_DISABLED", Some("true")),
            ("AWS_ACCESS_KEY_ID", None),
            ("AWS_SECRET_ACCESS_KEY", None),
            ("AWS_SESSION_TOKEN", None),
            ("AWS_PROFILE", None),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", None),
            ("AWS_ROLE_ARN", None),
        ],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("check your credentials"), "{stderr}");
    assert!(
        !stderr.contains("pip could not install") && !dir.path().join(".nimbus/build").exists(),
        "nothing was built: {stderr}"
    );
}

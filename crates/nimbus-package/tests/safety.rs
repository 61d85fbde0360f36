//! The packaging safety rules against real files: nothing secret is shipped, nothing outside the
//! project is read, a refused or interrupted build leaves nothing behind, and concurrent builds
//! of one project do not disturb each other.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Mutex;

use common::*;
use nimbus_package::{BuildOptions, BuildReport, LeftOut, PackageError, Progress, build};
use nimbus_provider::ProviderId;

#[test]
fn a_symlink_out_of_the_function_directory_is_refused() {
    let dir = project(
        ONE_FN,
        &[
            ("fn/app.py", "def handler(e, c): pass\n"),
            ("secret.txt", "top secret\n"),
        ],
    );
    std::os::unix::fs::symlink(
        dir.path().join("secret.txt"),
        dir.path().join("fn/leak.txt"),
    )
    .unwrap();
    let err = failure(dir.path());
    assert!(
        err.contains("fn/leak.txt") && err.contains("outside the function's directory"),
        "{err}"
    );

    // A link that stays inside is followed and packaged as a file.
    std::fs::remove_file(dir.path().join("fn/leak.txt")).unwrap();
    std::fs::write(dir.path().join("fn/data.txt"), "inside\n").unwrap();
    std::os::unix::fs::symlink("data.txt", dir.path().join("fn/alias.txt")).unwrap();
    build_dir(dir.path(), ProviderId::Aws, None).unwrap();
    let names = zip_names(&dir.path().join(".nimbus/build/aws/dev/f.zip"));
    assert!(
        names.contains(&"fn/alias.txt".to_string()) && names.contains(&"fn/data.txt".to_string())
    );

    // A dangling link is an error too.
    std::os::unix::fs::symlink("missing.txt", dir.path().join("fn/dangling.txt")).unwrap();
    assert!(failure(dir.path()).contains("does not exist"));
}

#[test]
fn globs_that_leave_the_directory_are_refused() {
    let manifest = format!("{ONE_FN}    package: {{ include: [\"../*.py\"] }}\n");
    let dir = project(&manifest, &[("fn/app.py", "def handler(e, c): pass\n")]);
    let err = failure(dir.path());
    assert!(
        err.contains("`../*.py`") && err.contains("cannot leave it"),
        "{err}"
    );
}

#[test]
fn unreadable_files_are_reported() {
    let dir = project(
        ONE_FN,
        &[
            ("fn/app.py", "def handler(e, c): pass\n"),
            ("fn/locked.dat", "x"),
        ],
    );
    std::fs::set_permissions(
        dir.path().join("fn/locked.dat"),
        std::fs::Permissions::from_mode(0o000),
    )
    .unwrap();
    let err = failure(dir.path());
    assert!(
        err.contains("fn/locked.dat") && err.contains("no read permission"),
        "{err}"
    );
    // Excluding it is the documented way out.
    let manifest = format!("{ONE_FN}    package: {{ exclude: [locked.dat] }}\n");
    std::fs::write(dir.path().join("nimbus.yaml"), manifest).unwrap();
    build_dir(dir.path(), ProviderId::Aws, None).unwrap();
}

#[test]
fn special_files_are_refused() {
    let dir = project(ONE_FN, &[("fn/app.py", "def handler(e, c): pass\n")]);
    let status = std::process::Command::new("mkfifo")
        .arg(dir.path().join("fn/pipe"))
        .status()
        .unwrap();
    assert!(status.success());
    assert!(failure(dir.path()).contains("not a regular file"));
}

/// Builds `dir` for `provider`, collecting the left-out notes as reported.
fn build_noting(
    dir: &Path,
    provider: ProviderId,
) -> (Result<BuildReport, PackageError>, Vec<LeftOut>) {
    let g = graph(&dir.join("nimbus.yaml"), provider);
    let mut options = BuildOptions::conventional(dir, provider, "dev");
    // The shim libraries some providers install are cached across tests and runs.
    options.cache_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("nimbus-package-cache");
    let notes = Mutex::new(Vec::new());
    let result = build(&g, &options, &|p| {
        if let Progress::LeftOut(l) = p {
            notes.lock().unwrap().push(l);
        }
    });
    (result, notes.into_inner().unwrap())
}

fn paths(notes: &[LeftOut]) -> Vec<&str> {
    notes.iter().map(|n| n.path.as_str()).collect()
}

fn whys(notes: &[LeftOut]) -> Vec<(&str, Option<&str>)> {
    notes
        .iter()
        .map(|n| (n.path.as_str(), n.why.as_deref()))
        .collect()
}

/// Every name the hostile probe saw shipped, in the case it was written.
const SECRET_NAMES: &[&str] = &[
    "SERVER.PEM",
    "TLS.KEY",
    "Credentials",
    "service-account.json",
    "gcp-key.json",
    ".git-credentials",
    ".dockercfg",
    ".docker/config.json",
    ".pgpass",
    ".htpasswd",
    "prod.env",
    ".env",
    ".env.production",
    "putty.ppk",
    "release.jks",
    "app.keystore",
    "terraform.tfstate",
    "terraform.tfstate.backup",
    "secrets.yaml",
    "secrets.json",
    "id_ed25519",
    "id_rsa",
    ".npmrc",
    ".pypirc",
];

#[test]
fn every_secret_looking_name_is_left_out_for_every_provider() {
    let mut files = vec![
        ("fn/app.py".to_string(), "def handler(e, c): pass\n"),
        ("fn/.env.example".to_string(), "TOKEN=\n"),
        ("fn/config.json".to_string(), "{}\n"),
    ];
    files.extend(
        SECRET_NAMES
            .iter()
            .map(|n| (format!("fn/conf/{n}"), "value\n")),
    );
    let files: Vec<(&str, &str)> = files.iter().map(|(p, c)| (p.as_str(), *c)).collect();
    let dir = project(ONE_FN, &files);
    let mut expected: Vec<String> = SECRET_NAMES
        .iter()
        .map(|n| format!("fn/conf/{n}"))
        .collect();
    expected.sort();
    for provider in [
        ProviderId::Aws,
        ProviderId::Gcp,
        ProviderId::Azure,
        ProviderId::Local,
    ] {
        let (result, notes) = build_noting(dir.path(), provider);
        let report = result.unwrap_or_else(|e| panic!("{provider}: {e}"));
        assert_eq!(paths(&notes), expected, "{provider}: each once, sorted");
        assert_eq!(report.left_out, notes);
        let zip = dir
            .path()
            .join(format!(".nimbus/build/{provider}/dev/f.zip"));
        let names = zip_names(&zip);
        let shipped: Vec<&String> = names.iter().filter(|n| n.starts_with("fn/conf/")).collect();
        assert!(shipped.is_empty(), "{provider} shipped {shipped:?}");
        assert!(names.contains(&"fn/.env.example".to_string()));
        assert!(names.contains(&"fn/config.json".to_string()));
    }
    assert_eq!(
        build_noting(dir.path(), ProviderId::Aws).1[0].to_string(),
        "left out fn/conf/.docker/config.json: looks like a secret; add it to package.include to ship it anyway"
    );
}

const PEM_KEY: &str =
    "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n";
const SERVICE_ACCOUNT: &str = r#"{"type": "service_account", "project_id": "p", "private_key_id": "1", "private_key": "-----BEGIN PRIVATE KEY-----\nMII\n-----END PRIVATE KEY-----\n", "client_email": "a@p.iam.gserviceaccount.com"}"#;

#[test]
fn private_keys_and_service_accounts_are_left_out_by_content() {
    let dir = project(
        ONE_FN,
        &[
            ("fn/app.py", "def handler(e, c): pass\n"),
            ("fn/deploy-key.json", SERVICE_ACCOUNT),
            ("fn/certs/tls.crt.txt", PEM_KEY),
            (
                "fn/pem.py",
                "HEADER = \"-----BEGIN PRIVATE KEY-----\"\nBODY = \"\"\n",
            ),
            (
                "fn/data.json",
                r#"{"private_key": "not a credentials file"}"#,
            ),
        ],
    );
    let (result, notes) = build_noting(dir.path(), ProviderId::Aws);
    result.unwrap();
    assert_eq!(
        whys(&notes),
        [
            ("fn/certs/tls.crt.txt", Some("it holds a PEM private key")),
            (
                "fn/deploy-key.json",
                Some("it holds a Google service-account private key")
            ),
        ]
    );
    let names = zip_names(&dir.path().join(".nimbus/build/aws/dev/f.zip"));
    assert!(
        names.contains(&"fn/pem.py".to_string()),
        "a mention is code"
    );
    assert!(names.contains(&"fn/data.json".to_string()));
    assert!(
        !names
            .iter()
            .any(|n| n.contains("deploy-key") || n.contains("tls.crt"))
    );

    // A handler that holds a key is not silently dropped: the build says why it cannot ship it.
    let code = format!("KEY = \"\"\"\n{PEM_KEY}\"\"\"\ndef handler(e, c): pass\n");
    std::fs::write(dir.path().join("fn/app.py"), code).unwrap();
    let err = failure(dir.path());
    assert!(
        err.contains("handler file `fn/app.py` looks like a secret (it holds a PEM private key)"),
        "{err}"
    );
}

#[test]
fn a_link_to_a_secret_is_treated_as_the_secret() {
    let dir = project(
        ONE_FN,
        &[
            ("fn/app.py", "def handler(e, c): pass\n"),
            ("fn/.env", "TOKEN=1\n"),
            ("fn/keys/signing.txt", PEM_KEY),
        ],
    );
    std::os::unix::fs::symlink(".env", dir.path().join("fn/config.txt")).unwrap();
    std::os::unix::fs::symlink("keys/signing.txt", dir.path().join("fn/public.txt")).unwrap();
    let (result, notes) = build_noting(dir.path(), ProviderId::Aws);
    result.unwrap();
    assert_eq!(
        whys(&notes),
        [
            ("fn/.env", None),
            ("fn/config.txt", Some("it is a link to `fn/.env`")),
            ("fn/keys/signing.txt", Some("it holds a PEM private key")),
            ("fn/public.txt", Some("it holds a PEM private key")),
        ]
    );
    let names = zip_names(&dir.path().join(".nimbus/build/aws/dev/f.zip"));
    let user: Vec<&String> = names.iter().filter(|n| n.starts_with("fn/")).collect();
    assert_eq!(user, ["fn/app.py"]);
}

#[test]
fn a_directory_shared_by_two_functions_reports_each_secret_once() {
    let manifest = "version: 1\nservice: t\nfunctions:\n  a:\n    handler: fn/app.py:handler\n  b:\n    handler: fn/app.py:other\n";
    let dir = project(
        manifest,
        &[
            (
                "fn/app.py",
                "def handler(e, c): pass\ndef other(e, c): pass\n",
            ),
            ("fn/.env", "TOKEN=1\n"),
        ],
    );
    let (result, notes) = build_noting(dir.path(), ProviderId::Aws);
    result.unwrap();
    assert_eq!(paths(&notes), ["fn/.env"]);
    // A build that reuses both packages still says what was left out.
    let (result, notes) = build_noting(dir.path(), ProviderId::Aws);
    assert_eq!(result.unwrap().cached.len(), 2);
    assert_eq!(paths(&notes), ["fn/.env"]);
}

#[test]
fn only_an_include_that_names_a_secret_ships_it() {
    let files = [
        ("fn/app.py", "def handler(e, c): pass\n"),
        ("fn/.env", "TOKEN=1\n"),
        ("fn/server.pem", "key\n"),
        ("fn/ca.PEM", "certs\n"),
        ("fn/sa.json", SERVICE_ACCOUNT),
    ];
    let dir = project(ONE_FN, &files);
    let shipped = |include: &str| {
        let manifest = format!("{ONE_FN}    package: {{ include: {include} }}\n");
        std::fs::write(dir.path().join("nimbus.yaml"), manifest).unwrap();
        let (result, notes) = build_noting(dir.path(), ProviderId::Aws);
        result.unwrap();
        let mut names = zip_names(&dir.path().join(".nimbus/build/aws/dev/f.zip"));
        names.retain(|n| n.starts_with("fn/") && n != "fn/app.py");
        (names, notes.len())
    };
    // Globs that narrow the selection do not ship secrets by accident.
    assert_eq!(shipped("[\"**\"]"), (vec![], 4));
    assert_eq!(shipped("[\"*.py\", \"*.json\"]"), (vec![], 1));
    // A glob that names the file, or is written for such files, ships it knowingly.
    assert_eq!(
        shipped("[\"*.py\", server.pem, sa.json]"),
        (
            vec!["fn/sa.json".to_string(), "fn/server.pem".to_string()],
            0
        )
    );
    // (Include globs themselves match case-sensitively, as the file system does.)
    assert_eq!(
        shipped("[\"*.py\", \"*.pem\"]"),
        (vec!["fn/server.pem".to_string()], 0)
    );
}

#[test]
fn excluding_the_handler_is_an_error() {
    let manifest = format!("{ONE_FN}    package: {{ exclude: [\"*.py\"] }}\n");
    let dir = project(&manifest, &[("fn/app.py", "def handler(e, c): pass\n")]);
    assert!(failure(dir.path()).contains("handler file `fn/app.py` is not in the package"));
}

#[test]
fn a_user_file_may_not_replace_the_entry_point() {
    let manifest = "version: 1\nservice: t\nfunctions:\n  f:\n    handler: app.py:handler\n";
    let dir = project(
        manifest,
        &[
            ("app.py", "def handler(e, c): pass\n"),
            ("_nimbus_aws.py", "evil = 1\n"),
        ],
    );
    let err = failure(dir.path());
    assert!(
        err.contains("`_nimbus_aws.py`") && err.contains("clashes"),
        "{err}"
    );
}

/// A project in `<tmp>/project` with an `outside/app.py` beside it.
fn project_beside_outside(manifest: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("project");
    let outside = tmp.path().join("outside");
    std::fs::create_dir_all(outside.join("deep")).unwrap();
    std::fs::write(outside.join("app.py"), "def handler(e, c): pass\n").unwrap();
    std::fs::write(outside.join("deep/app.py"), "def handler(e, c): pass\n").unwrap();
    std::fs::write(outside.join("private.txt"), "not the project's\n").unwrap();
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("nimbus.yaml"), manifest).unwrap();
    (tmp, root)
}

#[test]
fn a_function_directory_linked_out_of_the_project_is_refused() {
    // Validation refuses these at the manifest line (nimbus-manifest's `handler_links`); packaging
    // refuses them too, whatever graph it is given.
    let failure = |root: &Path| {
        let g = graph_with(&root.join("nimbus.yaml"), ProviderId::Aws, false);
        let options = BuildOptions::conventional(root, ProviderId::Aws, "dev");
        build(&g, &options, &|_| {}).unwrap_err().to_string()
    };
    // The handler's directory itself is the link.
    let manifest = "version: 1\nservice: t\nfunctions:\n  f:\n    handler: lnk/app.py:handler\n";
    let (_tmp, root) = project_beside_outside(manifest);
    std::os::unix::fs::symlink("../outside", root.join("lnk")).unwrap();
    let err = failure(&root);
    assert!(
        err.contains("lnk` is a symlink to") && err.contains("outside the project"),
        "{err}"
    );
    assert!(!root.join(".nimbus/build/aws/dev/f.zip").exists());

    // A link further up the handler's path.
    let manifest =
        "version: 1\nservice: t\nfunctions:\n  f:\n    handler: src/deep/app.py:handler\n";
    let (_tmp, root) = project_beside_outside(manifest);
    std::os::unix::fs::symlink("../outside", root.join("src")).unwrap();
    let err = failure(&root);
    assert!(err.contains("src` is a symlink to"), "{err}");

    // The handler file alone.
    let manifest = "version: 1\nservice: t\nfunctions:\n  f:\n    handler: app.py:handler\n";
    let (_tmp, root) = project_beside_outside(manifest);
    std::os::unix::fs::symlink("../outside/app.py", root.join("app.py")).unwrap();
    let err = failure(&root);
    assert!(
        err.contains("app.py` is a symlink to") && err.contains("outside the function's directory"),
        "{err}"
    );

    // A link inside the project to another folder of it is fine.
    let manifest = "version: 1\nservice: t\nfunctions:\n  f:\n    handler: lnk/app.py:handler\n";
    let (_tmp, root) = project_beside_outside(manifest);
    std::fs::create_dir_all(root.join("code")).unwrap();
    std::fs::write(root.join("code/app.py"), "def handler(e, c): pass\n").unwrap();
    std::os::unix::fs::symlink("code", root.join("lnk")).unwrap();
    build_dir(&root, ProviderId::Aws, None).unwrap();
    assert!(zip_names(&root.join(".nimbus/build/aws/dev/f.zip")).contains(&"lnk/app.py".into()));
}

/// Files in `dir`, sorted (none when it does not exist).
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// 51 MB that deflate cannot shrink.
fn noise() -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    (0..51_000_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

#[test]
fn packages_over_the_provider_limit_are_refused_and_leave_nothing() {
    let dir = project(ONE_FN, &[("fn/app.py", "def handler(e, c): pass\n")]);
    let out = dir.path().join(".nimbus/build/aws/dev");
    // A good build first: its package and build.json stay as they were.
    build_dir(dir.path(), ProviderId::Aws, None).unwrap();
    let before = std::fs::read(out.join("f.zip")).unwrap();
    std::fs::write(dir.path().join("fn/blob.bin"), noise()).unwrap();
    let err = failure(dir.path());
    assert!(
        err.contains("MB zipped") && err.contains("at most 50 MB"),
        "{err}"
    );
    assert_eq!(
        listing(&out),
        ["build.json", "f.zip"],
        "no over-limit zip, no temporary file"
    );
    assert_eq!(std::fs::read(out.join("f.zip")).unwrap(), before);
}

#[test]
fn a_file_over_4_gib_gets_a_true_message_at_once() {
    let dir = project(ONE_FN, &[("fn/app.py", "def handler(e, c): pass\n")]);
    // Sparse: no disk is used and, as the size is refused before reading, nothing is read.
    let big = std::fs::File::create(dir.path().join("fn/model.bin")).unwrap();
    big.set_len(5 << 30).unwrap();
    let err = failure(dir.path());
    assert!(
        err.contains("5369 MB unzipped") && err.contains("at most 250 MB"),
        "{err}"
    );
    assert!(!err.contains("permissions"), "{err}");
    assert_eq!(
        listing(&dir.path().join(".nimbus/build/aws/dev")),
        Vec::<String>::new()
    );
}

#[test]
fn temporary_files_of_interrupted_builds_are_removed_by_the_next() {
    let dir = project(ONE_FN, &[("fn/app.py", "def handler(e, c): pass\n")]);
    let out = dir.path().join(".nimbus/build/aws/dev");
    std::fs::create_dir_all(&out).unwrap();
    // A build killed outright (`kill -9`) leaves its temporary files: a process that is gone.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let gone = child.id();
    child.wait().unwrap();
    let old_layout = out.join(format!("f.zip.tmp-{gone}"));
    let new_layout = out.join(format!(".f.zip.{gone}.Xy12Ab.tmp"));
    // A build running right now (this process) keeps its own.
    let running = out.join(format!(".f.zip.{}.Zz98Qq.tmp", std::process::id()));
    for p in [&old_layout, &new_layout, &running] {
        std::fs::write(p, b"partial").unwrap();
    }
    build_dir(dir.path(), ProviderId::Aws, None).unwrap();
    assert_eq!(
        listing(&out),
        [
            format!(".f.zip.{}.Zz98Qq.tmp", std::process::id()),
            "build.json".into(),
            "f.zip".into()
        ]
    );
}

#[test]
fn concurrent_builds_of_one_project_do_not_disturb_each_other() {
    let manifest = "version: 1\nservice: t\nfunctions:\n  a:\n    handler: fn/app.py:handler\n  b:\n    handler: fn/app.py:other\n";
    let dir = project(
        manifest,
        &[(
            "fn/app.py",
            "def handler(e, c): pass\ndef other(e, c): pass\n",
        )],
    );
    let g = graph(&dir.path().join("nimbus.yaml"), ProviderId::Aws);
    let mut options = BuildOptions::conventional(dir.path(), ProviderId::Aws, "dev");
    // Every round really writes both zips and build.json.
    options.force = true;
    let failures = Mutex::new(Vec::new());
    for _ in 0..25 {
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    if let Err(e) = build(&g, &options, &|_| {}) {
                        failures.lock().unwrap().push(e.to_string());
                    }
                });
            }
        });
    }
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} of 50 builds failed: {failures:?}",
        failures.len()
    );
    let out = dir.path().join(".nimbus/build/aws/dev");
    assert_eq!(listing(&out), ["a.zip", "b.zip", "build.json"]);
    let manifest: nimbus_package::BuildManifest =
        serde_json::from_slice(&std::fs::read(out.join("build.json")).unwrap()).unwrap();
    for (name, artifact) in &manifest.functions {
        let zip = std::fs::read(out.join(format!("{name}.zip"))).unwrap();
        assert_eq!(zip.len() as u64, artifact.size, "{name}");
    }
}

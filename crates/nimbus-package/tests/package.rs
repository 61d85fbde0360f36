//! Packaging against real files: reproducibility across directories, the build cache,
//! dependency installs with the real pip and npm, and the zip layout per provider (the safety
//! rules are in `safety.rs`).

mod common;

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::*;
use nimbus_provider::ProviderId;

#[test]
fn shop_builds_byte_identically_in_two_directories() {
    // Different paths, separate dependency caches (so pip really runs twice), and different
    // file timestamps and permission bits: the zips must not differ by a byte.
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let (a_dir, b_dir) = (a.path().join("shop"), b.path().join("elsewhere/shop-copy"));
    copy_dir(&repo().join("examples/shop"), &a_dir);
    copy_dir(&repo().join("examples/shop"), &b_dir);
    let handler = b_dir.join("orders/get.py");
    std::fs::set_permissions(&handler, std::fs::Permissions::from_mode(0o600)).unwrap();
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(86_400);
    std::fs::File::options()
        .write(true)
        .open(&handler)
        .unwrap()
        .set_modified(later)
        .unwrap();

    let ra = build_dir(&a_dir, ProviderId::Aws, None).unwrap();
    let rb = build_dir(&b_dir, ProviderId::Aws, None).unwrap();
    assert_eq!(ra.built.len(), 7);
    assert_eq!(hashes(&ra), hashes(&rb));
    let thumb = &ra.manifest.functions["make-thumbnail"];
    assert!(
        thumb.deps.is_some(),
        "Pillow is installed for make-thumbnail"
    );
    let names = zip_names(&a_dir.join(".nimbus/build/aws/dev/make-thumbnail.zip"));
    assert!(
        names.iter().any(|n| n.starts_with("PIL/")),
        "the Linux Pillow wheel is in the package"
    );
    assert!(
        names
            .iter()
            .all(|n| !n.starts_with("bin/") && !n.ends_with(".pyc"))
    );

    // Every other provider: the same inputs give the same zips too.
    let shared = tempfile::tempdir().unwrap();
    for provider in [ProviderId::Local, ProviderId::Gcp, ProviderId::Azure] {
        let x = build_dir(&a_dir, provider, Some(shared.path())).unwrap();
        let y = build_dir(&b_dir, provider, Some(shared.path())).unwrap();
        assert_eq!(hashes(&x), hashes(&y), "{provider}");
    }
}

#[test]
fn zips_are_normalized_and_carry_the_provider_shim() {
    let dir = tempfile::tempdir().unwrap();
    let shop = dir.path().join("shop");
    copy_dir(&repo().join("examples/shop"), &shop);
    std::fs::remove_file(shop.join("images/requirements.txt")).unwrap(); // keep this test offline
    let expected: [(ProviderId, &str, &[&str]); 4] = [
        (
            ProviderId::Aws,
            "get-order",
            &[
                "_nimbus_aws.py",
                "_nimbus/aws.py",
                "_nimbus/aws_secrets.py",
                "_nimbus/core.py",
            ],
        ),
        (
            ProviderId::Gcp,
            "get-order",
            &["main.py", "_nimbus/gcp.py", "_nimbus/gcp_resources.py"],
        ),
        (
            ProviderId::Gcp,
            "charge-payment",
            &[
                "package.json",
                "_nimbus_gcp.js",
                "_nimbus/gcp.js",
                "_nimbus/gcp_resources.js",
            ],
        ),
        (
            ProviderId::Local,
            "charge-payment",
            &["_nimbus/local_worker.js", "_nimbus/core.js"],
        ),
    ];
    for (provider, function, files) in expected {
        build_dir(&shop, provider, None).unwrap();
        let path = shop.join(format!(".nimbus/build/{provider}/dev/{function}.zip"));
        let mut z = zip::ZipArchive::new(std::fs::File::open(&path).unwrap()).unwrap();
        let names: Vec<String> = (0..z.len())
            .map(|i| z.by_index(i).unwrap().name().unwrap().to_string())
            .collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted, "entries are sorted");
        for f in files.iter().chain(["_nimbus/function.json"].iter()) {
            assert!(
                names.iter().any(|n| n == f),
                "{provider}/{function}: missing {f} in {names:?}"
            );
        }
        for i in 0..z.len() {
            let entry = z.by_index(i).unwrap();
            let t = entry.last_modified().unwrap();
            assert_eq!(
                (t.year(), t.month(), t.day(), t.hour(), t.minute()),
                (1980, 1, 1, 0, 0)
            );
            assert!(
                matches!(
                    entry.unix_mode().map(|m| m & 0o777),
                    Some(0o644) | Some(0o755)
                ),
                "{}",
                entry.name().unwrap()
            );
            let name = entry.name().unwrap().to_string();
            assert!(!name.starts_with('/') && !name.contains(".."));
        }
        let mut json = String::new();
        z.by_name("_nimbus/function.json")
            .unwrap()
            .read_to_string(&mut json)
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["function"], function);
        assert_eq!(v["provider"], provider.as_str());
        assert!(
            !json.contains(&shop.display().to_string()),
            "no absolute paths"
        );
        if provider == ProviderId::Gcp {
            // An HTTP route and a queue's push subscription both call the function over HTTP.
            assert_eq!(v["gcp"]["signature"], "http");
        }
    }
    // Tests, caches and other functions' directories are not in the package.
    let names = zip_names(&shop.join(".nimbus/build/aws/dev/get-order.zip"));
    assert!(
        names
            .iter()
            .all(|n| !n.starts_with("tests/") && !n.starts_with("payments/")),
        "{names:?}"
    );
}

#[test]
fn only_the_changed_function_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let shop = dir.path().join("shop");
    copy_dir(&repo().join("examples/shop"), &shop);
    std::fs::remove_file(shop.join("images/requirements.txt")).unwrap();
    let first = build_dir(&shop, ProviderId::Local, None).unwrap();
    assert_eq!(first.built.len(), 7);
    let again = build_dir(&shop, ProviderId::Local, None).unwrap();
    assert!(again.built.is_empty(), "nothing changed: {:?}", again.built);
    assert_eq!(again.cached.len(), 7);
    assert_eq!(hashes(&first), hashes(&again));

    let charge = shop.join("payments/charge.js");
    let text = std::fs::read_to_string(&charge).unwrap();
    std::fs::write(&charge, format!("{text}\n// changed\n")).unwrap();
    let third = build_dir(&shop, ProviderId::Local, None).unwrap();
    assert_eq!(third.built, vec!["charge-payment".to_string()]);
    assert_ne!(
        third.manifest.functions["charge-payment"].sha256,
        first.manifest.functions["charge-payment"].sha256
    );

    // A package deleted behind the cache's back is rebuilt, not trusted.
    std::fs::remove_file(shop.join(".nimbus/build/local/dev/get-order.zip")).unwrap();
    let fourth = build_dir(&shop, ProviderId::Local, None).unwrap();
    assert_eq!(fourth.built, vec!["get-order".to_string()]);
    assert_eq!(
        fourth.manifest.functions["get-order"].sha256,
        first.manifest.functions["get-order"].sha256
    );
}

#[test]
fn removed_functions_lose_their_package() {
    let dir = project(
        "version: 1\nservice: t\nfunctions:\n  a: { handler: a/app.py:handler }\n  b: { handler: b/app.py:handler }\n",
        &[
            ("a/app.py", "def handler(e, c): pass\n"),
            ("b/app.py", "def handler(e, c): pass\n"),
        ],
    );
    build_dir(dir.path(), ProviderId::Aws, None).unwrap();
    assert!(dir.path().join(".nimbus/build/aws/dev/b.zip").exists());
    std::fs::write(
        dir.path().join("nimbus.yaml"),
        "version: 1\nservice: t\nfunctions:\n  a: { handler: a/app.py:handler }\n",
    )
    .unwrap();
    let report = build_dir(dir.path(), ProviderId::Aws, None).unwrap();
    assert_eq!(report.cached, vec!["a".to_string()]);
    assert!(!dir.path().join(".nimbus/build/aws/dev/b.zip").exists());
}

#[test]
fn node_dependencies_are_installed_with_npm_into_the_function_directory() {
    let manifest = "version: 1\nservice: t\nfunctions:\n  f:\n    handler: fn/index.js:handler\n";
    let dir = project(
        manifest,
        &[
            (
                "fn/index.js",
                "const isNumber = require('is-number');\nexports.handler = async () => ({ status: 200, body: String(isNumber(5)) });\n",
            ),
            (
                "fn/package.json",
                "{ \"name\": \"f\", \"version\": \"1.0.0\", \"dependencies\": { \"is-number\": \"7.0.0\" } }\n",
            ),
            (
                "fn/node_modules/stale/index.js",
                "// a local install that must not be shipped\n",
            ),
        ],
    );
    let report = build_dir(dir.path(), ProviderId::Aws, None).unwrap();
    assert!(report.manifest.functions["f"].deps.is_some());
    let names = zip_names(&dir.path().join(".nimbus/build/aws/dev/f.zip"));
    assert!(
        names.contains(&"fn/node_modules/is-number/index.js".to_string()),
        "{names:?}"
    );
    assert!(!names.iter().any(|n| n.contains("stale")));
    let again = build_dir(dir.path(), ProviderId::Aws, None).unwrap();
    assert_eq!(again.cached, vec!["f".to_string()]);
}

fn zip_text(path: &Path, name: &str) -> String {
    let mut z = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut f = z.by_name(name).unwrap();
    let mut s = String::new();
    std::io::Read::read_to_string(&mut f, &mut s).unwrap();
    s
}

#[test]
fn a_provider_lists_its_shim_libraries_in_the_root_dependency_file() {
    // GCP declares `shim_deps = "list"`: the client libraries a function's `uses` need go into the
    // zip's root requirements.txt / package.json for Cloud Functions' build; nothing is installed
    // here, and a function that uses nothing lists nothing.
    let manifest = r#"version: 1
service: t
resources:
  orders: { type: table, key: { id: string } }
  files: { type: bucket }
  jobs: { type: queue }
functions:
  f:
    handler: app.py:handler
    uses: [ { resource: orders, access: read }, { resource: files, access: read } ]
  g:
    handler: fn/app.py:handler
    uses: [ { resource: jobs, access: send } ]
  hello:
    handler: hello/app.py:handler
  n:
    runtime: nodejs22
    handler: js/app.js:handler
    uses: [ { resource: orders, access: write } ]
"#;
    let dir = project(
        manifest,
        &[
            ("app.py", "def handler(e, c): pass\n"),
            // The user's own file at the root (nothing to install): merged into the root file.
            ("requirements.txt", "# mine\n"),
            ("fn/app.py", "def handler(e, c): pass\n"),
            ("hello/app.py", "def handler(e, c): pass\n"),
            ("js/app.js", "exports.handler = async () => 1;\n"),
        ],
    );
    let report = build_dir(dir.path(), ProviderId::Gcp, None).unwrap();
    let out = dir.path().join(".nimbus/build/gcp/dev");
    let root = zip_text(&out.join("f.zip"), "requirements.txt");
    assert!(root.starts_with("# mine\n"), "{root}");
    assert!(
        root.contains("google-cloud-firestore==") && root.contains("google-cloud-storage=="),
        "{root}"
    );
    assert!(
        !root.contains("google-cloud-pubsub"),
        "f uses no queue or topic: {root}"
    );
    // (That the user's own pin of a listed package wins is a unit test of provider_deps.)
    let g = zip_text(&out.join("g.zip"), "requirements.txt");
    assert!(g.contains("google-cloud-pubsub=="), "{g}");
    assert!(
        !g.contains("google-cloud-firestore"),
        "g uses no table: {g}"
    );
    assert!(
        !zip_names(&out.join("hello.zip")).contains(&"requirements.txt".to_string()),
        "a function that uses nothing lists no library"
    );
    let pkg: serde_json::Value =
        serde_json::from_str(&zip_text(&out.join("n.zip"), "package.json")).unwrap();
    assert_eq!(pkg["main"], "_nimbus_gcp.js");
    assert_eq!(
        pkg["dependencies"],
        serde_json::json!({ "@google-cloud/firestore": pkg["dependencies"]["@google-cloud/firestore"].clone() }),
        "{pkg}"
    );
    assert!(
        report.manifest.functions.values().all(|a| a.deps.is_none()),
        "nothing installed"
    );
    // The declared files are data, never copied as shim files.
    assert!(!zip_names(&out.join("g.zip")).contains(&"fn/requirements.txt".to_string()));
    // Other providers declare nothing: no root requirements.txt appears.
    build_dir(dir.path(), ProviderId::Aws, None).unwrap();
    let aws = dir.path().join(".nimbus/build/aws/dev/g.zip");
    assert!(!zip_names(&aws).contains(&"requirements.txt".to_string()));
}

/// Azure installs the shim's client libraries into the package (`shim_deps = "vendor"`), but only
/// those the function's `uses` need: a hello-world gets none of the SDKs (it was 948 files and
/// 8.1 MiB with every Azure SDK), a function that sends to a queue gets the queue client and the
/// identity library, and nothing else.
#[test]
fn azure_packages_hold_only_the_sdks_their_uses_need() {
    let manifest = r#"version: 1
service: t
resources:
  jobs: { type: queue }
functions:
  hello:
    handler: hello/app.py:handler
  sender:
    handler: sender/app.py:handler
    uses: [ { resource: jobs, access: send } ]
"#;
    let dir = project(
        manifest,
        &[
            (
                "hello/app.py",
                "def handler(e, c): return {'status': 200}\n",
            ),
            ("sender/app.py", "def handler(e, c): pass\n"),
        ],
    );
    let report = build_dir(dir.path(), ProviderId::Azure, None).unwrap();
    let hello = &report.manifest.functions["hello"];
    assert!(hello.deps.is_none(), "nothing to install for hello-world");
    assert!(
        hello.files < 20 && hello.size < 100_000,
        "hello-world is {} files, {} bytes zipped",
        hello.files,
        hello.size
    );
    let out = dir.path().join(".nimbus/build/azure/dev");
    let names = zip_names(&out.join("sender.zip"));
    let has = |prefix: &str| names.iter().any(|n| n.starts_with(prefix));
    assert!(
        has("azure/storage/queue/"),
        "the queue client is in the package"
    );
    assert!(has("azure/identity/"), "so is the identity library");
    for absent in [
        "azure/data/tables/",
        "azure/servicebus/",
        "azure/storage/blob/",
    ] {
        assert!(!has(absent), "`{absent}` is not needed by a queue sender");
    }
}

#[test]
fn node_packages_get_the_prebuilt_binaries_of_the_functions_cpu() {
    // `lightningcss` publishes its native addon per platform as optional dependencies: npm must
    // pick the cloud's Linux CPU (arm64 for an AWS Graviton function), not the host's, and the
    // local target keeps the host's.
    let manifest = "version: 1\nservice: t\nfunctions:\n  arm:\n    handler: arm/index.js:handler\n    aws: { architecture: arm64 }\n  x86:\n    handler: x86/index.js:handler\n";
    let pkg = "{ \"name\": \"f\", \"version\": \"1.0.0\", \"dependencies\": { \"lightningcss\": \"1.33.0\" } }\n";
    let code = "exports.handler = async () => ({ status: 200 });\n";
    let dir = project(
        manifest,
        &[
            ("arm/index.js", code),
            ("arm/package.json", pkg),
            ("x86/index.js", code),
            ("x86/package.json", pkg),
        ],
    );
    build_dir(dir.path(), ProviderId::Aws, None).unwrap();
    let addons = |function: &str| -> Vec<String> {
        zip_names(
            &dir.path()
                .join(format!(".nimbus/build/aws/dev/{function}.zip")),
        )
        .into_iter()
        .filter(|n| n.ends_with(".node"))
        .collect()
    };
    assert_eq!(
        addons("arm"),
        ["arm/node_modules/lightningcss-linux-arm64-gnu/lightningcss.linux-arm64-gnu.node"]
    );
    assert_eq!(
        addons("x86"),
        ["x86/node_modules/lightningcss-linux-x64-gnu/lightningcss.linux-x64-gnu.node"]
    );
}

#[test]
fn an_addon_compiled_for_another_cpu_is_refused_with_its_path() {
    // A package whose install script leaves an x86-64 addon (as node-gyp does on this host) in
    // an arm64 function's package would fail only when Lambda loads it: the build refuses it.
    let manifest = "version: 1\nservice: t\nfunctions:\n  arm:\n    handler: fn/index.js:handler\n    aws: { architecture: arm64 }\n";
    // The project's own install script stands in for node-gyp: it leaves an x86-64 ELF addon.
    let script = "node -e \\\"const fs=require('fs');fs.mkdirSync('node_modules/gyp/build/Release',{recursive:true});const b=Buffer.alloc(64);b[0]=127;b.write('ELF',1);b[4]=2;b[5]=1;b[18]=62;fs.writeFileSync('node_modules/gyp/build/Release/addon.node',b)\\\"";
    let pkg = format!(
        "{{ \"name\": \"f\", \"version\": \"1.0.0\", \"dependencies\": {{ \"is-number\": \"7.0.0\" }}, \"scripts\": {{ \"install\": \"{script}\" }} }}\n"
    );
    let dir = project(
        manifest,
        &[
            (
                "fn/index.js",
                "exports.handler = async () => ({ status: 200 });\n",
            ),
            ("fn/package.json", &pkg),
        ],
    );
    let err = build_dir(dir.path(), ProviderId::Aws, None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("will not load on linux-arm64"), "{err}");
    assert!(
        err.contains("node_modules/gyp/build/Release/addon.node (built for x64)"),
        "{err}"
    );
}

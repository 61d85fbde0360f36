//! A handler whose path leads out of the project through a symlink is refused at its manifest
//! line, whether the link is the file, its folder, or a folder further up.

use std::path::Path;

use nimbus_manifest::{LoadError, LoadOptions, load_file};

/// The rendered diagnostics of loading `root/nimbus.yaml`, or `None` when it loads.
fn diagnostics(root: &Path) -> Option<String> {
    let options = LoadOptions {
        provider: "aws".into(),
        ..Default::default()
    };
    match load_file(&root.join("nimbus.yaml"), &options) {
        Ok(_) => None,
        Err(LoadError::Invalid(r)) => Some(r.render(false)),
        Err(e) => panic!("{e}"),
    }
}

/// `<tmp>/project/nimbus.yaml` with `handler`, and `<tmp>/outside/sub/app.py` beside it.
fn project(handler: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("project");
    std::fs::create_dir_all(tmp.path().join("outside/sub")).unwrap();
    for f in ["outside/app.py", "outside/sub/app.py"] {
        std::fs::write(tmp.path().join(f), "def handler(e, c): pass\n").unwrap();
    }
    std::fs::create_dir_all(&root).unwrap();
    let manifest = format!("version: 1\nservice: t\nfunctions:\n  f:\n    handler: {handler}\n");
    std::fs::write(root.join("nimbus.yaml"), manifest).unwrap();
    (tmp, root)
}

#[test]
fn a_handler_linked_out_of_the_project_is_refused_at_its_line() {
    for (handler, link, target) in [
        ("lnk/app.py:handler", "lnk", "../outside"),
        ("lnk/sub/app.py:handler", "lnk", "../outside"),
        ("app.py:handler", "app.py", "../outside/app.py"),
    ] {
        let (_tmp, root) = project(handler);
        std::os::unix::fs::symlink(target, root.join(link)).unwrap();
        let out = diagnostics(&root).unwrap_or_else(|| panic!("{handler} should be refused"));
        let file = handler.split(':').next().unwrap();
        assert!(
            out.contains(&format!(
                "handler file `{file}` is outside the project: `{link}` is a symlink to"
            )) && out.contains("nimbus.yaml:5:14")
                && out.contains("packages never follow links out of the project"),
            "{out}"
        );
    }

    // A link that stays inside the project is fine.
    let (_tmp, root) = project("lnk/app.py:handler");
    std::fs::create_dir_all(root.join("code")).unwrap();
    std::fs::write(root.join("code/app.py"), "def handler(e, c): pass\n").unwrap();
    std::os::unix::fs::symlink("code", root.join("lnk")).unwrap();
    assert_eq!(diagnostics(&root), None);
}

//! Embeds every shim source under `providers/<id>/shims/<language>/` into the crate, so the
//! binary carries them and packaging never depends on the checkout it was built from. The
//! dependency files at a shim's root (`python/requirements.txt`, `node/package.json`) are the
//! client libraries the provider's shim needs: they are embedded apart (`PROVIDER_DEPS`) and are
//! not copied into packages as shim files.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let providers = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../providers")
        .canonicalize()
        .expect("providers/ exists");
    println!("cargo:rerun-if-changed={}", providers.display());
    let mut files = Vec::new();
    let mut deps = Vec::new();
    for provider in ["common", "aws", "gcp", "azure", "local"] {
        for language in ["python", "node"] {
            let root = providers.join(provider).join("shims").join(language);
            println!("cargo:rerun-if-changed={}", root.display());
            let mut found = Vec::new();
            walk(&root, &mut found);
            found.sort();
            for path in found {
                let rel = path
                    .strip_prefix(&root)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                if rel == dependency_file(language) {
                    deps.push((provider, language, path));
                } else {
                    files.push((provider, language, rel, path));
                }
            }
        }
    }
    let mut out = String::from(
        "/// Every embedded shim file: (provider or `common`, language, path in the package, bytes).\n",
    );
    out.push_str("pub(crate) static SHIM_FILES: &[(&str, &str, &str, &[u8])] = &[\n");
    for (provider, language, rel, path) in &files {
        writeln!(
            out,
            "    ({provider:?}, {language:?}, {rel:?}, include_bytes!({:?})),",
            path.display().to_string()
        )
        .unwrap();
    }
    out.push_str("];\n");
    out.push_str(
        "/// Client libraries each provider's shim needs: (provider, language, dependency file bytes).\n",
    );
    out.push_str("pub(crate) static PROVIDER_DEPS: &[(&str, &str, &[u8])] = &[\n");
    for (provider, language, path) in &deps {
        writeln!(
            out,
            "    ({provider:?}, {language:?}, include_bytes!({:?})),",
            path.display().to_string()
        )
        .unwrap();
    }
    out.push_str("];\n");
    let dest = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("shims.rs");
    std::fs::write(dest, out).unwrap();
}

/// The dependency file of a language, at a shim's root.
fn dependency_file(language: &str) -> &'static str {
    match language {
        "python" => "requirements.txt",
        _ => "package.json",
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == "__pycache__" || name == "node_modules" || name.ends_with(".pyc") {
            continue;
        }
        if path.is_dir() {
            println!("cargo:rerun-if-changed={}", path.display());
            walk(&path, out);
        } else {
            out.push(path);
        }
    }
}

//! Third-party dependencies: `requirements.txt` through `pip install --target`, `package.json`
//! through `npm ci --omit=dev` (or `npm install --omit=dev` without a lockfile).
//!
//! Installs are cached under `.nimbus/cache/deps/<key>/`, keyed by the dependency files' bytes,
//! the runtime and the target platform, so an unchanged function never reinstalls. For the clouds,
//! pip fetches Linux x86_64 manylinux wheels for the runtime's Python version whatever the host
//! is; for `local`, it installs for the host interpreter of that version.

use std::path::{Path, PathBuf};
use std::process::Command;

use nimbus_manifest::{Language, ResourceKind, Runtime};
use nimbus_provider::ProviderId;
use sha2::{Digest, Sha256};

use crate::error::PackageError;

/// Dependencies a function declares.
#[derive(Debug, Clone)]
pub(crate) struct DepsPlan {
    language: Language,
    /// The dependency files, by name, with their bytes.
    files: Vec<(&'static str, Vec<u8>)>,
    /// Where the dependency files are (for messages).
    dir: PathBuf,
    /// The cache key: what was installed is determined by it.
    pub key: String,
}

/// What `dir` declares for `runtime` (with the provider's shim libraries that resources of the
/// `used` kinds need), or `None` when it needs nothing installed.
pub(crate) fn plan(
    dir: &Path,
    runtime: Runtime,
    provider: ProviderId,
    used: &[ResourceKind],
) -> Result<Option<DepsPlan>, PackageError> {
    let language = runtime.language();
    let names: &[&'static str] = match language {
        Language::Python => &["requirements.txt"],
        Language::Node => &["package.json", "package-lock.json"],
    };
    let mut files = Vec::new();
    for name in names {
        let path = dir.join(name);
        if path.is_file() {
            files.push((
                *name,
                std::fs::read(&path).map_err(PackageError::io("reading", &path))?,
            ));
        }
    }
    merge_provider_deps(&mut files, language, provider, used);
    let Some((_, main)) = files.first() else {
        return Ok(None);
    };
    let needs_install = match language {
        Language::Python => String::from_utf8_lossy(main).lines().any(|l| {
            let l = l.trim();
            !l.is_empty() && !l.starts_with('#')
        }),
        Language::Node => serde_json::from_slice::<serde_json::Value>(main)
            .ok()
            .and_then(|v| {
                v.get("dependencies")
                    .and_then(|d| d.as_object())
                    .map(|d| !d.is_empty())
            })
            .unwrap_or(false),
    };
    if !needs_install {
        return Ok(None);
    }
    let mut hasher = Sha256::new();
    hasher.update(format!(
        "deps-v1\0{}\0{}\0",
        runtime.id(),
        platform(provider)
    ));
    for (name, bytes) in &files {
        hasher.update(name.as_bytes());
        hasher.update([0]);
        hasher.update(bytes);
        hasher.update([0]);
    }
    let key = crate::hash::hex(&hasher.finalize());
    Ok(Some(DepsPlan {
        language,
        files,
        dir: dir.to_path_buf(),
        key,
    }))
}

/// In `vendor` mode, the provider's shim libraries join the user's dependency file (see
/// [`crate::provider_deps`]), so they are installed and hashed with it. A lockfile no longer
/// matches a `package.json` that gained dependencies: it is left out (npm then installs).
fn merge_provider_deps(
    files: &mut Vec<(&'static str, Vec<u8>)>,
    language: Language,
    provider: ProviderId,
    used: &[ResourceKind],
) {
    let mode = provider
        .capabilities()
        .package
        .as_ref()
        .map(|p| p.shim_deps)
        .unwrap_or_default();
    let Some(declared) = crate::provider_deps::declared(provider, language, used) else {
        return;
    };
    if mode != nimbus_provider::ShimDeps::Vendor {
        return;
    }
    let (name, merged) = match language {
        Language::Python => {
            let user = files.first().map(|(_, b)| b.as_slice());
            (
                "requirements.txt",
                crate::provider_deps::merge_requirements(user, &declared),
            )
        }
        Language::Node => {
            let user = files
                .iter()
                .find(|(n, _)| *n == "package.json")
                .map(|(_, b)| b.as_slice());
            (
                "package.json",
                crate::provider_deps::merge_package_json(user, &declared),
            )
        }
    };
    match files.iter_mut().find(|(n, _)| *n == name) {
        Some((_, bytes)) if *bytes == merged => return,
        Some((_, bytes)) => *bytes = merged,
        None => files.insert(0, (name, merged)),
    }
    files.retain(|(n, _)| *n != "package-lock.json");
}

/// The platform wheels are chosen for.
fn platform(provider: ProviderId) -> &'static str {
    match provider {
        ProviderId::Local => "host",
        _ => "linux-x86_64",
    }
}

impl DepsPlan {
    /// The name of the main dependency file (`requirements.txt`, `package.json`).
    pub fn manifest_name(&self) -> &'static str {
        self.files[0].0
    }

    /// Installs (or reuses) the dependencies; returns the directory holding the installed tree:
    /// the `--target` directory for Python, the `node_modules` directory for Node.
    pub fn ensure(
        &self,
        cache_dir: &Path,
        runtime: Runtime,
        provider: ProviderId,
    ) -> Result<PathBuf, PackageError> {
        let done = cache_dir.join("deps").join(&self.key);
        let tree = match self.language {
            Language::Python => done.clone(),
            Language::Node => done.join("node_modules"),
        };
        if done.join(".complete").is_file() {
            return Ok(tree);
        }
        let parent = cache_dir.join("deps");
        std::fs::create_dir_all(&parent).map_err(PackageError::io("creating", &parent))?;
        // Absolute: the installers run in the function's directory.
        let parent = parent
            .canonicalize()
            .map_err(PackageError::io("resolving", &parent))?;
        let work = parent.join(format!("{}.partial-{}", self.key, std::process::id()));
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(&work).map_err(PackageError::io("creating", &work))?;
        let result = match self.language {
            Language::Python => self.pip(&work, runtime, provider),
            Language::Node => self.npm(&work),
        };
        if let Err(e) = result {
            let _ = std::fs::remove_dir_all(&work);
            return Err(e);
        }
        std::fs::write(work.join(".complete"), b"").map_err(PackageError::io("writing", &work))?;
        if std::fs::rename(&work, &done).is_err() {
            // Another build finished the same install first; theirs is as good as ours.
            let _ = std::fs::remove_dir_all(&work);
        }
        Ok(tree)
    }

    fn pip(
        &self,
        target: &Path,
        runtime: Runtime,
        provider: ProviderId,
    ) -> Result<(), PackageError> {
        let version = runtime.id().trim_start_matches("python");
        // The requirements as planned (with the provider's libraries merged in), beside the
        // target; pip runs in the function's directory so relative references resolve.
        let mut name = target.file_name().unwrap_or_default().to_os_string();
        name.push(".requirements.txt");
        let requirements = target.with_file_name(name);
        std::fs::write(&requirements, &self.files[0].1)
            .map_err(PackageError::io("writing", &requirements))?;
        let mut args: Vec<String> = vec![
            "-m".into(),
            "pip".into(),
            "install".into(),
            "--quiet".into(),
            "--disable-pip-version-check".into(),
            "--no-input".into(),
            "--no-compile".into(),
            "--no-warn-script-location".into(),
            "--target".into(),
            target.display().to_string(),
            "-r".into(),
            requirements.display().to_string(),
        ];
        let python = if provider == ProviderId::Local {
            find_python(version).ok_or_else(|| PackageError::ToolMissing {
                tool: format!("python{version}"),
                manifest: requirements.display().to_string(),
            })?
        } else {
            for a in [
                "--only-binary=:all:",
                "--implementation",
                "cp",
                "--python-version",
                version,
            ] {
                args.push(a.into());
            }
            for p in [
                "manylinux2014_x86_64",
                "manylinux_2_17_x86_64",
                "manylinux_2_28_x86_64",
            ] {
                args.push("--platform".into());
                args.push(p.into());
            }
            find_python("3").ok_or_else(|| PackageError::ToolMissing {
                tool: "python3".into(),
                manifest: requirements.display().to_string(),
            })?
        };
        let result = run(
            Command::new(&python).args(&args).current_dir(&self.dir),
            &format!("{} {}", python.display(), args.join(" ")),
            &self.dir.join("requirements.txt"),
        );
        let _ = std::fs::remove_file(&requirements);
        result?;
        // Console scripts carry the build machine's interpreter path: not portable, not needed.
        let _ = std::fs::remove_dir_all(target.join("bin"));
        Ok(())
    }

    fn npm(&self, work: &Path) -> Result<(), PackageError> {
        for (name, bytes) in &self.files {
            std::fs::write(work.join(name), bytes).map_err(PackageError::io("writing", work))?;
        }
        let manifest = self.dir.join("package.json");
        let locked = self.files.iter().any(|(n, _)| *n == "package-lock.json");
        let args: &[&str] = if locked {
            &[
                "ci",
                "--omit=dev",
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
            ]
        } else {
            &[
                "install",
                "--omit=dev",
                "--no-audit",
                "--no-fund",
                "--no-package-lock",
                "--loglevel=error",
            ]
        };
        if which("npm").is_none() {
            return Err(PackageError::ToolMissing {
                tool: "npm".into(),
                manifest: manifest.display().to_string(),
            });
        }
        run(
            Command::new("npm").args(args).current_dir(work),
            &format!("npm {}", args.join(" ")),
            &manifest,
        )?;
        let _ = std::fs::remove_dir_all(work.join("node_modules/.bin"));
        let _ = std::fs::remove_file(work.join("node_modules/.package-lock.json"));
        Ok(())
    }
}

fn run(cmd: &mut Command, shown: &str, manifest: &Path) -> Result<(), PackageError> {
    let output = cmd.output().map_err(|e| PackageError::DepsFailed {
        command: shown.to_string(),
        manifest: manifest.display().to_string(),
        status: "not started".into(),
        output: e.to_string(),
    })?;
    if output.status.success() {
        return Ok(());
    }
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let tail: Vec<&str> = text.lines().rev().take(15).collect();
    Err(PackageError::DepsFailed {
        command: shown.to_string(),
        manifest: manifest.display().to_string(),
        status: output
            .status
            .code()
            .map(|c| c.to_string())
            .unwrap_or_else(|| "signal".into()),
        output: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
    })
}

/// A program on PATH.
pub(crate) fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// The real path of an interpreter for Python `version` (`3.12`, or `3` for any): `pythonX.Y` on
/// PATH or from pyenv, checked to really be that version (never a pyenv shim, which costs ~70 ms
/// a start).
pub fn find_python(version: &str) -> Option<PathBuf> {
    let mut candidates = vec![which(&format!("python{version}"))];
    if let Ok(out) = Command::new("pyenv").args(["prefix", version]).output()
        && out.status.success()
    {
        let prefix = String::from_utf8_lossy(&out.stdout).trim().to_string();
        candidates.push(Some(
            PathBuf::from(prefix)
                .join("bin")
                .join(format!("python{version}")),
        ));
    }
    candidates.push(which("python3"));
    candidates.into_iter().flatten().find(|p| {
        Command::new(p)
            .args(["-c", "import sys; print('%d.%d' % sys.version_info[:2])"])
            .output()
            .is_ok_and(|o| {
                o.status.success()
                    && (version == "3" || String::from_utf8_lossy(&o.stdout).trim() == version)
            })
    })
}

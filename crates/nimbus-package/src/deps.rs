//! Third-party dependencies: `requirements.txt` through `pip install --target`, `package.json`
//! through `npm ci --omit=dev` (or `npm install --omit=dev` without a lockfile).
//!
//! Installs are cached under `.nimbus/cache/deps/<key>/`, keyed by the dependency files' bytes,
//! the runtime and the target platform, so an unchanged function never reinstalls. For the clouds,
//! pip fetches Linux manylinux wheels for the runtime's Python version and the function's CPU
//! (x86_64, or aarch64 for an AWS function with `aws.architecture: arm64`) whatever the host
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
    /// The user's own dependency file, if any (what messages name); `None` when only the
    /// provider's shim libraries are installed.
    user_file: Option<PathBuf>,
    /// The cache key: what was installed is determined by it.
    pub key: String,
    /// Wheels for aarch64 (Graviton) rather than x86_64.
    arm64: bool,
    /// Installed for the host (`local`) rather than for the cloud's Linux.
    host: bool,
}

/// What `dir` declares for `runtime` (with the provider's shim libraries that resources of the
/// `used` kinds need), or `None` when it needs nothing installed.
pub(crate) fn plan(
    dir: &Path,
    runtime: Runtime,
    provider: ProviderId,
    used: &[ResourceKind],
    arm64: bool,
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
    let user_file = files.first().map(|(name, _)| dir.join(name));
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
        "deps-v2\0{}\0{}\0",
        runtime.id(),
        platform(provider, arm64)
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
        user_file,
        key,
        arm64,
        host: provider == ProviderId::Local,
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
fn platform(provider: ProviderId, arm64: bool) -> &'static str {
    match (provider, arm64) {
        (ProviderId::Local, _) => "host",
        (_, true) => "linux-aarch64",
        (_, false) => "linux-x86_64",
    }
}

/// The manylinux platform tags pip may pick wheels for (oldest glibc first).
fn wheel_platforms(arm64: bool) -> [&'static str; 3] {
    if arm64 {
        [
            "manylinux2014_aarch64",
            "manylinux_2_17_aarch64",
            "manylinux_2_28_aarch64",
        ]
    } else {
        [
            "manylinux2014_x86_64",
            "manylinux_2_17_x86_64",
            "manylinux_2_28_x86_64",
        ]
    }
}

impl DepsPlan {
    /// The name of the main dependency file (`requirements.txt`, `package.json`).
    pub fn manifest_name(&self) -> &'static str {
        self.files[0].0
    }

    /// What messages call the dependencies: the user's file, or the provider's libraries.
    fn shown(&self) -> String {
        match &self.user_file {
            Some(path) => path.display().to_string(),
            None => format!(
                "{} (the provider shim's client libraries)",
                self.manifest_name()
            ),
        }
    }

    /// Where the full output of a failed install is kept.
    fn log_path(&self, cache_dir: &Path, tool: &str) -> PathBuf {
        cache_dir.join("logs").join(format!(
            "{tool}-{}.log",
            &self.key[..16.min(self.key.len())]
        ))
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
            Language::Python => self.pip(&work, runtime, provider, cache_dir),
            Language::Node => self.npm(&work, cache_dir),
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
        cache_dir: &Path,
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
                manifest: self.shown(),
                hint: missing_python_hint(version),
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
            for p in wheel_platforms(self.arm64) {
                args.push("--platform".into());
                args.push(p.into());
            }
            find_python("3").ok_or_else(|| PackageError::ToolMissing {
                tool: "python3".into(),
                manifest: self.shown(),
                hint: "install Python 3 (e.g. `apt-get install python3 python3-pip`)".into(),
            })?
        };
        // pip's messages name the file it was given and the target: the user's file and the
        // cache folder are what mean something to them.
        let user = self.shown();
        let replacements = [
            (requirements.display().to_string(), user.clone()),
            (
                target.display().to_string(),
                ".nimbus/cache/deps".to_string(),
            ),
        ];
        let result = run(
            Command::new(&python).args(&args).current_dir(&self.dir),
            "pip",
            &user,
            &replacements,
            &self.log_path(cache_dir, "pip"),
        );
        let _ = std::fs::remove_file(&requirements);
        result?;
        // Console scripts carry the build machine's interpreter path: not portable, not needed.
        let _ = std::fs::remove_dir_all(target.join("bin"));
        Ok(())
    }

    fn npm(&self, work: &Path, cache_dir: &Path) -> Result<(), PackageError> {
        for (name, bytes) in &self.files {
            std::fs::write(work.join(name), bytes).map_err(PackageError::io("writing", work))?;
        }
        let locked = self.files.iter().any(|(n, _)| *n == "package-lock.json");
        let mut args: Vec<String> = if locked {
            vec!["ci".into()]
        } else {
            vec!["install".into(), "--no-package-lock".into()]
        };
        args.extend(
            ["--omit=dev", "--no-audit", "--no-fund", "--loglevel=error"].map(String::from),
        );
        let cpu = crate::native::npm_cpu(self.arm64);
        if !self.host {
            // The cloud's Linux and CPU, whatever the host: npm then picks the matching
            // prebuilt binaries among a package's per-platform optional dependencies.
            args.extend([
                "--os=linux".into(),
                format!("--cpu={cpu}"),
                "--libc=glibc".into(),
            ]);
        }
        if which("npm").is_none() {
            return Err(PackageError::ToolMissing {
                tool: "npm".into(),
                manifest: self.shown(),
                hint:
                    "install Node.js with npm (https://nodejs.org, or `apt-get install nodejs npm`)"
                        .into(),
            });
        }
        let user = self.shown();
        let replacements = [
            (
                work.join("package.json").display().to_string(),
                user.clone(),
            ),
            (work.display().to_string(), self.dir.display().to_string()),
        ];
        run(
            Command::new("npm").args(args).current_dir(work),
            "npm",
            &user,
            &replacements,
            &self.log_path(cache_dir, "npm"),
        )?;
        let _ = std::fs::remove_dir_all(work.join("node_modules/.bin"));
        let _ = std::fs::remove_file(work.join("node_modules/.package-lock.json"));
        if !self.host {
            let foreign = crate::native::foreign_addons(work, cpu);
            if !foreign.is_empty() {
                return Err(PackageError::ForeignAddons {
                    manifest: user,
                    cpu,
                    files: foreign
                        .iter()
                        .map(|(path, built)| format!("\n  {} (built for {built})", path.display()))
                        .collect::<String>()
                        + "\n  hint: use a version of the package that publishes prebuilt binaries for this platform, or build on a matching linux machine (for arm64: an arm64 CI runner)",
                });
            }
        }
        Ok(())
    }
}

/// Runs an installer. On failure, its whole output goes to `log` and the error carries only the
/// tool's own error lines (pip's `ERROR:` lines, npm's `npm error` lines), with internal paths
/// replaced by what the user knows (`replacements`: from → to).
fn run(
    cmd: &mut Command,
    tool: &str,
    manifest: &str,
    replacements: &[(String, String)],
    log: &Path,
) -> Result<(), PackageError> {
    let failed = |status: String, output: String, log: Option<PathBuf>| PackageError::DepsFailed {
        tool: tool.to_string(),
        manifest: manifest.to_string(),
        status,
        output,
        log,
    };
    let output = cmd
        .output()
        .map_err(|e| failed("not started".into(), e.to_string(), None))?;
    if output.status.success() {
        return Ok(());
    }
    let mut text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    for (from, to) in replacements {
        text = text.replace(from.as_str(), to);
    }
    let kept = log.parent().and_then(|dir| {
        std::fs::create_dir_all(dir).ok()?;
        std::fs::write(log, &text).ok()?;
        Some(log.to_path_buf())
    });
    let status = output
        .status
        .code()
        .map(|c| c.to_string())
        .unwrap_or_else(|| "signal".into());
    Err(failed(status, tool_errors(tool, &text), kept))
}

/// The lines of an installer's output that state its error, each once (at most 15); the last
/// lines when it marked none.
pub(crate) fn tool_errors(tool: &str, text: &str) -> String {
    let marked = |l: &str| match tool {
        "pip" => l.trim_start().starts_with("ERROR:"),
        _ => {
            (l.starts_with("npm error") || l.starts_with("npm ERR!"))
                && !l.contains("A complete log of this run")
                && !l.contains("/_logs/")
        }
    };
    let mut lines: Vec<&str> = text.lines().filter(|l| marked(l)).collect();
    if lines.is_empty() {
        lines = text.lines().filter(|l| !l.trim().is_empty()).collect();
        lines = lines.split_off(lines.len().saturating_sub(15));
    }
    let mut seen = std::collections::BTreeSet::new();
    lines.retain(|l| seen.insert(l.trim().to_string()));
    lines.truncate(15);
    lines.join("\n")
}

/// How to get an interpreter for Python `version`: which ones this machine has, and how to pick
/// one of them or install the missing one.
pub fn missing_python_hint(version: &str) -> String {
    let have: Vec<&str> = Runtime::ALL
        .iter()
        .filter(|r| r.language() == Language::Python)
        .map(|r| r.id())
        .filter(|id| find_python(id.trim_start_matches("python")).is_some())
        .collect();
    let install = format!(
        "install Python {version} (e.g. `pyenv install {version}`, or your system's `python{version}` package)"
    );
    match have.last() {
        Some(pick) => format!(
            "this machine has {}; set `runtime: {pick}` on the function (or in `defaults`) to use one of them, or {install}",
            have.iter()
                .map(|h| format!("`{h}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        None => format!("no Python 3 interpreter was found on PATH or through pyenv: {install}"),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_tools_own_error_lines_are_kept_once() {
        let pip = "Collecting x\nERROR: Invalid requirement: 'x ===' (from line 1 of fn/requirements.txt)\nERROR: Invalid requirement: 'x ===' (from line 1 of fn/requirements.txt)\n";
        assert_eq!(
            tool_errors("pip", pip),
            "ERROR: Invalid requirement: 'x ===' (from line 1 of fn/requirements.txt)"
        );
        let npm = "npm error code E404\nnpm error 404 Not Found - GET https://registry.npmjs.org/nope\nnpm error A complete log of this run can be found in: /root/.npm/_logs/x.log\n";
        assert_eq!(
            tool_errors("npm", npm),
            "npm error code E404\nnpm error 404 Not Found - GET https://registry.npmjs.org/nope"
        );
        assert_eq!(tool_errors("pip", "\nboom\n"), "boom");
    }

    /// An arm64 AWS function gets aarch64 wheels and a dependency cache of its own.
    #[test]
    fn arm64_picks_aarch64_wheels_and_its_own_cache_key() {
        assert!(
            wheel_platforms(true)
                .iter()
                .all(|p| p.ends_with("_aarch64"))
        );
        assert!(
            wheel_platforms(false)
                .iter()
                .all(|p| p.ends_with("_x86_64"))
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("requirements.txt"), "six==1.16.0\n").unwrap();
        let key = |arm64| {
            plan(dir.path(), Runtime::Python312, ProviderId::Aws, &[], arm64)
                .unwrap()
                .expect("requirements to install")
                .key
        };
        assert_ne!(key(true), key(false));
        assert_eq!(key(true), key(true));
    }
}

//! Which files of a function's directory go into its package.
//!
//! The walk is sorted and never follows a symlink out of the function's directory. Caches,
//! VCS folders and tests are left out by default; files that look like secrets (`.env`, keys,
//! credentials; see [`crate::secrets`]) are left out unless an `include` glob names them.
//! `package.include` narrows the selection, `package.exclude` removes from it. The function's
//! directory itself must resolve inside the project: a directory that is (or passes through) a
//! symlink out of it is refused like any other escaping link.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use globset::{Glob, GlobSet, GlobSetBuilder};

use crate::error::PackageError;
use crate::secrets::{Secrets, Why};

/// A file selected for a package.
#[derive(Debug, Clone)]
pub(crate) struct Selected {
    /// Path inside the package, `/`-separated.
    pub zip_path: String,
    /// Where to read it.
    pub disk_path: PathBuf,
    /// Normalized mode: 0o755 when any execute bit is set, else 0o644.
    pub mode: u32,
    /// Size in bytes when selected.
    pub size: u64,
}

/// The selection for one function.
#[derive(Debug, Default)]
pub(crate) struct Selection {
    pub files: Vec<Selected>,
    /// Secret-looking files that were left out (paths in the package), with the reason.
    pub left_out: Vec<(String, Why)>,
}

/// Directory names never packaged unless an include glob names them.
const SKIP_DIRS: &[&str] = &[
    ".git",
    ".hg",
    ".svn",
    "__pycache__",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    ".tox",
    ".venv",
    "venv",
    ".nimbus",
    ".idea",
    ".vscode",
    "tests",
    "test",
    "__tests__",
];
/// File globs never packaged unless an include glob names them.
const SKIP_FILES: &[&str] = &[
    // The manifest's JSON Schema that `nimbus init` writes for editors.
    "nimbus.schema.json",
    "*.pyc",
    "*.pyo",
    ".DS_Store",
    "Thumbs.db",
    "test_*.py",
    "*_test.py",
    "*.test.js",
    "*.spec.js",
    "*.test.mjs",
    "*.test.cjs",
];
fn globset(patterns: &[&str]) -> GlobSet {
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        b.add(Glob::new(p).expect("built-in globs are valid"));
    }
    b.build().expect("built-in globs are valid")
}

fn user_globs(patterns: &[String]) -> Result<Option<GlobSet>, PackageError> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        if p.starts_with('/') || p.split('/').any(|part| part == "..") {
            return Err(PackageError::BadGlob {
                glob: p.clone(),
                reason: "globs are relative to the function's directory and cannot leave it".into(),
            });
        }
        let glob = globset::GlobBuilder::new(p)
            .literal_separator(true)
            .build()
            .map_err(|e| PackageError::BadGlob {
                glob: p.clone(),
                reason: e.kind().to_string(),
            })?;
        b.add(glob);
        // `dir/` and `dir` also select everything below the directory.
        let trimmed = p.trim_end_matches('/');
        if !trimmed.contains('*') {
            b.add(
                Glob::new(&format!("{trimmed}/**")).map_err(|e| PackageError::BadGlob {
                    glob: p.clone(),
                    reason: e.kind().to_string(),
                })?,
            );
        }
    }
    b.build().map(Some).map_err(|e| PackageError::BadGlob {
        glob: patterns.join(", "),
        reason: e.to_string(),
    })
}

struct Walker {
    root: PathBuf,
    prefix: String,
    include: Option<GlobSet>,
    /// The include globs that name files knowingly (see [`naming_globs`]).
    forced: Option<GlobSet>,
    exclude: Option<GlobSet>,
    skip_files: GlobSet,
    secrets: Option<Secrets>,
    skip_dirs: BTreeSet<String>,
    include_text: Vec<String>,
    visited: BTreeSet<PathBuf>,
    out: Selection,
}

/// What to select from a directory.
pub(crate) struct Filter<'a> {
    /// `package.include` globs.
    pub include: &'a [String],
    /// `package.exclude` globs.
    pub exclude: &'a [String],
    /// Dependencies are installed fresh, so a local `node_modules` is ignored.
    pub skip_node_modules: bool,
    /// Leave secret-looking files out (the user's code; not installed dependencies).
    pub secrets: bool,
}

/// The include globs that ship a secret-looking file knowingly: those whose last part names a
/// file (no wildcard: `server.pem`, `conf/.env`) or is itself secret-looking (`*.pem`). A
/// narrowing glob such as `**` or `*.json` does not.
fn naming_globs(include: &[String], secrets: &Secrets) -> Result<Option<GlobSet>, PackageError> {
    let naming: Vec<String> = include
        .iter()
        .filter(|g| {
            let last = g.trim_end_matches('/').rsplit('/').next().unwrap_or(g);
            !last.contains(['*', '?', '[', '{']) || secrets.names_secrets(g)
        })
        .cloned()
        .collect();
    let mut b = GlobSetBuilder::new();
    for p in &naming {
        b.add(
            globset::GlobBuilder::new(p)
                .literal_separator(true)
                .build()
                .map_err(|e| PackageError::BadGlob {
                    glob: p.clone(),
                    reason: e.kind().to_string(),
                })?,
        );
    }
    b.build().map(Some).map_err(|e| PackageError::BadGlob {
        glob: naming.join(", "),
        reason: e.to_string(),
    })
}

/// Refuses a function directory (`rel`, under `project`) that resolves outside the project,
/// naming the symlink on its way that leads out.
pub(crate) fn check_inside(project: &Path, rel: &str) -> Result<(), PackageError> {
    if rel.is_empty() {
        return Ok(());
    }
    let project = project
        .canonicalize()
        .map_err(PackageError::io("reading the project directory", project))?;
    let mut at = project.clone();
    for part in rel.split('/') {
        at.push(part);
        let Ok(meta) = std::fs::symlink_metadata(&at) else {
            return Ok(()); // a missing directory is reported when it is read
        };
        if !meta.file_type().is_symlink() {
            continue;
        }
        let target = at
            .canonicalize()
            .map_err(|_| PackageError::DanglingSymlink { path: at.clone() })?;
        if !target.starts_with(&project) {
            return Err(PackageError::DirEscapes {
                path: at,
                target,
                project,
            });
        }
        at = target;
    }
    Ok(())
}

/// Selects the files of the function whose code is in `root` (`prefix` is its path inside the
/// package).
pub(crate) fn select(
    root: &Path,
    prefix: &str,
    filter: &Filter,
) -> Result<Selection, PackageError> {
    let canonical = root
        .canonicalize()
        .map_err(PackageError::io("reading the function directory", root))?;
    let mut skip_dirs: BTreeSet<String> = SKIP_DIRS.iter().map(|s| s.to_string()).collect();
    if filter.skip_node_modules {
        skip_dirs.insert("node_modules".into());
    }
    let secrets = filter.secrets.then(Secrets::new);
    let forced = match &secrets {
        Some(s) => naming_globs(filter.include, s)?,
        None => None,
    };
    let mut walker = Walker {
        root: canonical.clone(),
        prefix: prefix.to_string(),
        include: user_globs(filter.include)?,
        forced,
        exclude: user_globs(filter.exclude)?,
        skip_files: globset(SKIP_FILES),
        secrets,
        skip_dirs,
        include_text: filter.include.to_vec(),
        visited: BTreeSet::new(),
        out: Selection::default(),
    };
    walker.visited.insert(canonical.clone());
    walker.walk(&canonical, "")?;
    walker.out.files.sort_by(|a, b| a.zip_path.cmp(&b.zip_path));
    Ok(walker.out)
}

impl Walker {
    fn explicitly_included(&self, rel: &str) -> bool {
        self.include.as_ref().is_some_and(|g| g.is_match(rel))
    }

    fn walk(&mut self, dir: &Path, rel_dir: &str) -> Result<(), PackageError> {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .map_err(PackageError::io("reading directory", dir))?
            .collect::<Result<_, _>>()
            .map_err(PackageError::io("reading directory", dir))?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            let rel = if rel_dir.is_empty() {
                name.clone()
            } else {
                format!("{rel_dir}/{name}")
            };
            let meta =
                std::fs::symlink_metadata(&path).map_err(PackageError::io("reading", &path))?;
            let linked = meta.file_type().is_symlink();
            let (real, meta) = if linked {
                let target = match path.canonicalize() {
                    Ok(t) => t,
                    Err(_) => return Err(PackageError::DanglingSymlink { path }),
                };
                if !target.starts_with(&self.root) {
                    return Err(PackageError::SymlinkEscapes {
                        path,
                        target,
                        root: self.root.clone(),
                    });
                }
                let meta =
                    std::fs::metadata(&target).map_err(PackageError::io("reading", &target))?;
                (target, meta)
            } else {
                (path.clone(), meta)
            };
            if meta.is_dir() {
                let named = self
                    .include_text
                    .iter()
                    .any(|g| g.split('/').any(|part| part == name));
                if self.skip_dirs.contains(&name) && !named {
                    continue;
                }
                let canonical = real
                    .canonicalize()
                    .map_err(PackageError::io("reading", &real))?;
                if !self.visited.insert(canonical.clone()) {
                    continue; // a link back to a directory already walked
                }
                self.walk(&canonical, &rel)?;
                continue;
            }
            if !meta.is_file() {
                return Err(PackageError::Unreadable {
                    path,
                    reason: "not a regular file (a socket, pipe or device)".into(),
                });
            }
            // A link is judged as its target too: its path in the function's directory.
            let real_rel = linked.then(|| {
                real.strip_prefix(&self.root)
                    .unwrap_or(&real)
                    .to_string_lossy()
                    .into_owned()
            });
            self.file(rel, &path, &real, real_rel.as_deref(), &meta)?;
        }
        Ok(())
    }

    fn file(
        &mut self,
        rel: String,
        path: &Path,
        real: &Path,
        real_rel: Option<&str>,
        meta: &std::fs::Metadata,
    ) -> Result<(), PackageError> {
        let explicit = self.explicitly_included(&rel);
        if let Some(include) = &self.include
            && !include.is_match(&rel)
        {
            return Ok(());
        }
        if self.exclude.as_ref().is_some_and(|g| g.is_match(&rel)) {
            return Ok(());
        }
        let name = rel.rsplit('/').next().unwrap_or(&rel);
        if !explicit && self.skip_files.is_match(name) {
            return Ok(());
        }
        let zip_path = if self.prefix.is_empty() {
            rel.clone()
        } else {
            format!("{}/{rel}", self.prefix)
        };
        let forced = self.forced.as_ref().is_some_and(|g| g.is_match(&rel));
        if !forced
            && let Some(secrets) = &self.secrets
            && let Some(why) = secrets.check(&rel, real, real_rel)
        {
            let why = match why {
                Why::LinksTo(target) if !self.prefix.is_empty() => {
                    Why::LinksTo(format!("{}/{target}", self.prefix))
                }
                why => why,
            };
            self.out.left_out.push((zip_path, why));
            return Ok(());
        }
        let mode = meta.permissions().mode();
        if mode & 0o444 == 0 {
            return Err(PackageError::Unreadable {
                path: path.to_path_buf(),
                reason: format!("it has no read permission (mode {:03o})", mode & 0o777),
            });
        }
        self.out.files.push(Selected {
            zip_path,
            disk_path: real.to_path_buf(),
            mode: if mode & 0o111 != 0 { 0o755 } else { 0o644 },
            size: meta.len(),
        });
        Ok(())
    }
}

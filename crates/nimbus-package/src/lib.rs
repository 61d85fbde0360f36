//! Packaging: one deterministic zip per function, holding the user's code (the handler's
//! directory, filtered), its dependencies and the provider shim — the very bytes that get
//! deployed, and that the local runtime runs.
//!
//! A build writes `<out>/<function>.zip` and `<out>/build.json`. Each function's *input hash*
//! covers everything that goes into its zip (file paths, modes and contents, the dependency
//! files, the shim, the generated `function.json`); when it matches the last build and the zip
//! is still there untouched, the function is not rebuilt. Functions are packaged in parallel.
//! This crate knows the app graph and the providers' capabilities, not the manifest's YAML.

#![deny(missing_docs)]

mod archive;
mod deps;
mod error;
mod hash;
mod native;
mod provider_deps;
mod secrets;
mod select;
mod shims;
mod temp;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use nimbus_graph::{AppGraph, FunctionNode};
use nimbus_manifest::{Language, ResourceKind};
use nimbus_provider::ProviderId;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use deps::{find_python, missing_python_hint};
pub use error::PackageError;
pub use temp::{temp_prefix, write_atomically};

use crate::archive::{Data, Entry};

/// Bumped whenever the package layout changes, so old caches are not reused.
const FORMAT: &str = "nimbus-package-v1";

/// Where and for what to build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The directory handler paths are relative to (the manifest's).
    pub manifest_dir: PathBuf,
    /// Where zips and `build.json` go (`.nimbus/build/<provider>/<stage>`).
    pub out_dir: PathBuf,
    /// Where installed dependencies are cached (`.nimbus/cache`).
    pub cache_dir: PathBuf,
    /// The target.
    pub provider: ProviderId,
    /// Rebuild even when the cache says nothing changed.
    pub force: bool,
}

impl BuildOptions {
    /// The conventional layout under `<manifest dir>/.nimbus/`.
    pub fn conventional(manifest_dir: &Path, provider: ProviderId, stage: &str) -> Self {
        let nimbus = manifest_dir.join(".nimbus");
        BuildOptions {
            manifest_dir: manifest_dir.to_path_buf(),
            out_dir: nimbus.join("build").join(provider.as_str()).join(stage),
            cache_dir: nimbus.join("cache"),
            provider,
            force: false,
        }
    }
}

/// One function's package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artifact {
    /// The zip's file name in the output directory.
    pub file: String,
    /// Hex SHA-256 of the zip.
    pub sha256: String,
    /// Zip size in bytes.
    pub size: u64,
    /// Total size of the files inside, in bytes.
    pub unzipped_size: u64,
    /// Number of files inside.
    pub files: usize,
    /// Hash of everything that went in; equal inputs give an equal zip.
    pub input_hash: String,
    /// Cache key of the installed dependencies, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deps: Option<String>,
}

/// The build manifest, `build.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildManifest {
    /// Always `nimbus-package-v1` for this layout.
    pub format: String,
    /// The service.
    pub service: String,
    /// The stage.
    pub stage: String,
    /// The provider.
    pub provider: String,
    /// The packages, by function.
    pub functions: BTreeMap<String, Artifact>,
}

/// What happened to one function in a build.
#[derive(Debug, Clone)]
pub enum Progress {
    /// Its package was written.
    Built {
        /// The function.
        function: String,
        /// The package.
        artifact: Artifact,
        /// How long it took.
        millis: u128,
    },
    /// Nothing changed; the previous package stands.
    Cached {
        /// The function.
        function: String,
    },
    /// Its dependencies are being installed (this can take a while).
    InstallingDeps {
        /// The function.
        function: String,
        /// `requirements.txt` or `package.json`.
        manifest: String,
    },
    /// A secret-looking file was left out (reported once per build, even when several
    /// functions share its directory).
    LeftOut(LeftOut),
}

/// A secret-looking file left out of the packages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeftOut {
    /// Its path in the package (`fn/.env`).
    pub path: String,
    /// Why it looks like a secret, when its name does not say it (`it holds a PEM private key`,
    /// `it is a link to `fn/.env``).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

impl std::fmt::Display for LeftOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "left out {}: looks like a secret", self.path)?;
        if let Some(why) = &self.why {
            write!(f, " ({why})")?;
        }
        f.write_str("; add it to package.include to ship it anyway")
    }
}

/// The outcome of a build.
#[derive(Debug, Clone)]
pub struct BuildReport {
    /// What was written to `build.json`.
    pub manifest: BuildManifest,
    /// The functions that were (re)built.
    pub built: Vec<String>,
    /// The functions whose previous package was reused.
    pub cached: Vec<String>,
    /// Where `build.json` is.
    pub manifest_path: PathBuf,
    /// The secret-looking files left out, sorted, each once.
    pub left_out: Vec<LeftOut>,
}

/// Packages every function of `graph`.
pub fn build(
    graph: &AppGraph,
    options: &BuildOptions,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<BuildReport, PackageError> {
    std::fs::create_dir_all(&options.out_dir)
        .map_err(PackageError::io("creating", &options.out_dir))?;
    temp::remove_stale(&options.out_dir);
    let manifest_path = options.out_dir.join("build.json");
    let previous: Option<BuildManifest> = std::fs::read(&manifest_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .filter(|m: &BuildManifest| m.format == FORMAT && m.provider == options.provider.as_str());
    let previous = previous.map(|m| m.functions).unwrap_or_default();
    let limits = options.provider.capabilities().package.clone();

    let results: Vec<(String, Outcome)> = graph
        .functions
        .par_iter()
        .map(|(name, f)| {
            let result = package_one(
                graph,
                f,
                options,
                limits.as_ref(),
                previous.get(name),
                progress,
            );
            (name.clone(), result)
        })
        .collect();

    let mut functions = BTreeMap::new();
    let (mut built, mut cached, mut errors) = (Vec::new(), Vec::new(), Vec::new());
    let mut left_out: BTreeMap<String, Option<String>> = BTreeMap::new();
    for (name, result) in results {
        let result = result.map(|(artifact, built, secrets)| {
            for (path, why) in secrets {
                let why = (why != secrets::Why::Name).then(|| why.to_string());
                left_out.entry(path).or_insert(why);
            }
            (artifact, built)
        });
        match result {
            Ok((artifact, true)) => {
                built.push(name.clone());
                functions.insert(name, artifact);
            }
            Ok((artifact, false)) => {
                cached.push(name.clone());
                functions.insert(name, artifact);
            }
            Err(e) => errors.push(PackageError::Function {
                function: name,
                source: Box::new(e),
            }),
        }
    }
    let left_out: Vec<LeftOut> = left_out
        .into_iter()
        .map(|(path, why)| LeftOut { path, why })
        .collect();
    for l in &left_out {
        progress(Progress::LeftOut(l.clone()));
    }
    if !errors.is_empty() {
        return Err(if errors.len() == 1 {
            errors.remove(0)
        } else {
            PackageError::Many(errors)
        });
    }
    // Packages of functions that no longer exist are ours to remove.
    for (name, old) in &previous {
        if !functions.contains_key(name) {
            let _ = std::fs::remove_file(options.out_dir.join(&old.file));
        }
    }
    let manifest = BuildManifest {
        format: FORMAT.into(),
        service: graph.service.clone(),
        stage: graph.stage.clone(),
        provider: options.provider.as_str().into(),
        functions,
    };
    let mut text = serde_json::to_vec_pretty(&manifest).expect("json");
    text.push(b'\n');
    // A temporary file of our own, renamed over `build.json`: concurrent builds never share one.
    temp::write_atomically(&manifest_path, &text)?;
    Ok(BuildReport {
        manifest,
        built,
        cached,
        manifest_path,
        left_out,
    })
}

/// Refuses sizes over the provider's limits (`None`: not known yet).
fn check_size(
    zipped: Option<u64>,
    unzipped: u64,
    limits: Option<&nimbus_provider::PackageLimits>,
    provider: ProviderId,
) -> Result<(), PackageError> {
    const MB: u64 = 1_000_000;
    let Some(limits) = limits else {
        return Ok(());
    };
    let provider = &provider.capabilities().name;
    for (what, actual, limit) in [
        ("zipped", zipped, limits.max_zipped_mb),
        ("unzipped", Some(unzipped), limits.max_unzipped_mb),
    ] {
        let Some(actual) = actual else { continue };
        if let Some(limit) = limit
            && actual > limit * MB
        {
            return Err(PackageError::TooLarge {
                what,
                actual: actual.div_ceil(MB),
                limit,
                provider: provider.into(),
            });
        }
    }
    Ok(())
}

/// In `list` mode (see [`provider_deps`]), writes the provider's shim libraries into the zip's
/// root dependency file for the platform's build to install. Returns the zip path of a user file
/// the generated one replaces (a root `requirements.txt` it was merged with).
fn list_provider_deps(
    entries: &mut Vec<Entry>,
    root: &Path,
    f: &FunctionNode,
    provider: ProviderId,
    used: &[ResourceKind],
) -> Result<Option<String>, PackageError> {
    let listed = provider
        .capabilities()
        .package
        .as_ref()
        .is_some_and(|p| p.shim_deps == nimbus_provider::ShimDeps::List);
    let Some(declared) = provider_deps::declared(provider, f.language, used) else {
        return Ok(None);
    };
    if !listed {
        return Ok(None);
    }
    let file = match f.language {
        Language::Python => "requirements.txt",
        Language::Node => "package.json",
    };
    let user_path = root.join(file);
    let user = match user_path.is_file() {
        true => Some(std::fs::read(&user_path).map_err(PackageError::io("reading", &user_path))?),
        false => None,
    };
    let at_root = f.source_dir.is_empty();
    let (bytes, replaced) = match f.language {
        Language::Python if at_root => (
            provider_deps::merge_requirements(user.as_deref(), &declared),
            user.is_some().then(|| file.to_string()),
        ),
        Language::Python => {
            let mut text = String::from("# client libraries of the nimbus shim\n");
            for line in provider_deps::missing_requirements(user.as_deref(), &declared) {
                text.push_str(&line);
                text.push('\n');
            }
            (text.into_bytes(), None)
        }
        Language::Node => {
            // The root package.json is the provider's own when its shim generates one.
            let generated = entries
                .iter()
                .find(|e| e.path == file)
                .and_then(|e| match &e.data {
                    Data::Bytes(b) => Some(b.to_vec()),
                    Data::File(_) => None,
                });
            let missing = provider_deps::missing_dependencies(user.as_deref(), &declared);
            let provider_only =
                serde_json::to_vec(&serde_json::json!({ "dependencies": missing })).expect("json");
            (
                provider_deps::merge_package_json(generated.as_deref(), &provider_only),
                None,
            )
        }
    };
    entries.retain(|e| e.path != file);
    entries.push(Entry {
        path: file.to_string(),
        mode: 0o644,
        data: Data::Bytes(Arc::from(bytes)),
    });
    Ok(replaced)
}

/// The kinds of the resources a function's `uses` grants (each once, in kind order): what
/// decides which of the provider's client libraries its package gets.
fn used_kinds(graph: &AppGraph, f: &FunctionNode) -> Vec<ResourceKind> {
    let kinds: std::collections::BTreeSet<ResourceKind> = graph
        .edges
        .iter()
        .filter(|e| e.from == f.id && matches!(e.link, nimbus_graph::Link::Uses { .. }))
        .filter_map(|e| graph.resources.get(e.to.trim_start_matches("resource:")))
        .map(|r| r.kind)
        .collect();
    kinds.into_iter().collect()
}

/// A function's package, whether it was built (`true`) or reused, and the secret-looking files
/// left out of it.
type Outcome = Result<(Artifact, bool, Vec<(String, secrets::Why)>), PackageError>;

/// Packages one function, or reuses its previous package; `true` when it was built.
fn package_one(
    graph: &AppGraph,
    f: &FunctionNode,
    options: &BuildOptions,
    limits: Option<&nimbus_provider::PackageLimits>,
    previous: Option<&Artifact>,
    progress: &(dyn Fn(Progress) + Sync),
) -> Outcome {
    let started = Instant::now();
    let root = if f.source_dir.is_empty() {
        options.manifest_dir.clone()
    } else {
        options.manifest_dir.join(&f.source_dir)
    };
    select::check_inside(&options.manifest_dir, &f.source_dir)?;
    let used = used_kinds(graph, f);
    let deps = deps::plan(
        &root,
        f.runtime,
        options.provider,
        &used,
        arm64(f, options.provider),
    )?;
    let filter = select::Filter {
        include: &f.include,
        exclude: &f.exclude,
        skip_node_modules: f.language == Language::Node && deps.is_some(),
        secrets: true,
    };
    let selection = select::select(&root, &f.source_dir, &filter)?;
    if !selection.files.iter().any(|s| s.zip_path == f.handler_file) {
        if let Some((_, why)) = selection
            .left_out
            .iter()
            .find(|(path, _)| *path == f.handler_file)
        {
            return Err(PackageError::HandlerLooksSecret {
                file: f.handler_file.clone(),
                why: why.to_string(),
            });
        }
        return Err(PackageError::HandlerExcluded {
            file: f.handler_file.clone(),
        });
    }
    // Over the limit before anything is read or written (a 5 GB file fails at once).
    check_size(
        None,
        selection.files.iter().map(|s| s.size).sum(),
        limits,
        options.provider,
    )?;

    let mut entries: Vec<Entry> = shims::files(options.provider, f.language);
    let function_json = shims::function_json(graph, f);
    entries.push(Entry {
        path: "_nimbus/function.json".into(),
        mode: 0o644,
        data: Data::Bytes(Arc::from(function_json)),
    });
    let replaced = list_provider_deps(&mut entries, &root, f, options.provider, &used)?;
    let generated: std::collections::BTreeSet<String> =
        entries.iter().map(|e| e.path.clone()).collect();
    let mut selection = selection;
    if let Some(path) = replaced {
        selection.files.retain(|s| s.zip_path != path);
    }

    // The input hash: every path, mode and content hash that will be in the zip.
    let mut hasher = Sha256::new();
    hasher.update(FORMAT);
    hasher.update(options.provider.as_str());
    for e in &entries {
        let Data::Bytes(b) = &e.data else { continue };
        hasher.update(format!("\n{} {:o} {}", e.path, e.mode, hash::bytes(b)));
    }
    for s in &selection.files {
        if generated.contains(&s.zip_path) {
            return Err(PackageError::Clash {
                path: s.zip_path.clone(),
                provider: options.provider.to_string(),
            });
        }
        hasher.update(format!(
            "\n{} {:o} {}",
            s.zip_path,
            s.mode,
            hash::file(&s.disk_path)?
        ));
    }
    if let Some(d) = &deps {
        hasher.update(format!("\ndeps {}", d.key));
    }
    let input_hash = hash::hex(&hasher.finalize());

    let file = format!("{}.zip", f.name);
    let dest = options.out_dir.join(&file);
    if !options.force
        && let Some(prev) = previous
        && prev.input_hash == input_hash
        && std::fs::metadata(&dest).is_ok_and(|m| m.len() == prev.size)
    {
        progress(Progress::Cached {
            function: f.name.clone(),
        });
        return Ok((prev.clone(), false, selection.left_out));
    }

    let mut deps_key = None;
    if let Some(d) = &deps {
        let installed_before = options
            .cache_dir
            .join("deps")
            .join(&d.key)
            .join(".complete")
            .is_file();
        if !installed_before {
            progress(Progress::InstallingDeps {
                function: f.name.clone(),
                manifest: match f.source_dir.as_str() {
                    "" => d.manifest_name().to_string(),
                    dir => format!("{dir}/{}", d.manifest_name()),
                },
            });
        }
        let tree = d.ensure(&options.cache_dir, f.runtime, options.provider)?;
        let prefix = match f.language {
            Language::Python => String::new(),
            Language::Node if f.source_dir.is_empty() => "node_modules".to_string(),
            Language::Node => format!("{}/node_modules", f.source_dir),
        };
        // Installed from the registry: not the user's files, so not judged as secrets (a CA
        // bundle such as certifi's `cacert.pem` must stay).
        let all = select::Filter {
            include: &[],
            exclude: &[],
            skip_node_modules: false,
            secrets: false,
        };
        let installed = select::select(&tree, &prefix, &all)?;
        let taken: std::collections::BTreeSet<String> = entries
            .iter()
            .map(|e| e.path.clone())
            .chain(selection.files.iter().map(|s| s.zip_path.clone()))
            .collect();
        for s in installed
            .files
            .into_iter()
            .filter(|s| !taken.contains(&s.zip_path))
        {
            entries.push(Entry {
                path: s.zip_path,
                mode: s.mode,
                data: Data::File(s.disk_path),
            });
        }
        deps_key = Some(d.key.clone());
    }
    let left_out = selection.left_out;
    for s in selection.files {
        entries.push(Entry {
            path: s.zip_path,
            mode: s.mode,
            data: Data::File(s.disk_path),
        });
    }
    let count = entries.len();
    let (written, sha256) = archive::write(&mut entries, &dest, |w| {
        check_size(Some(w.zipped), w.unzipped, limits, options.provider)
    })?;
    let artifact = Artifact {
        file,
        sha256,
        size: written.zipped,
        unzipped_size: written.unzipped,
        files: count,
        input_hash,
        deps: deps_key,
    };
    progress(Progress::Built {
        function: f.name.clone(),
        artifact: artifact.clone(),
        millis: started.elapsed().as_millis(),
    });
    Ok((artifact, true, left_out))
}

/// Whether the function runs on ARM: only AWS lets a function choose (`aws.architecture`).
fn arm64(f: &FunctionNode, provider: ProviderId) -> bool {
    provider == ProviderId::Aws
        && f.aws
            .architecture
            .as_ref()
            .is_some_and(|a| a.value == nimbus_manifest::Architecture::Arm64)
}

//! `nimbus build`: package every function for a provider and stage.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;
use nimbus_graph::AppGraph;
use nimbus_package::{BuildManifest, BuildOptions, Progress};
use nimbus_provider::ProviderId;

use crate::cli::{BuildArgs, Global};
use crate::output::{Failure, Out};

/// Builds every function's package for `provider`, printing progress on stderr (unless
/// `--output json`); returns the report and the folder the packages are in.
pub fn package(
    compiled: &nimbus_provider::Compiled,
    provider: ProviderId,
    force: bool,
    out: &Out,
) -> Result<(nimbus_package::BuildReport, PathBuf), Failure> {
    let mut options =
        BuildOptions::conventional(&compiled.loaded.dir, provider, &compiled.graph.stage);
    options.force = force;
    let quiet = out.json;
    let report = nimbus_package::build(&compiled.graph, &options, &|event| {
        if quiet {
            return;
        }
        match event {
            Progress::Built {
                function,
                artifact,
                millis,
            } => eprintln!(
                "  built     {}  {millis} ms",
                package_line(&function, &artifact)
            ),
            // Reused packages are listed with their sizes once the build is done.
            Progress::Cached { .. } => {}
            Progress::InstallingDeps { function, manifest } => {
                eprintln!("  deps      {function:<24} installing {manifest} (cached for next time)")
            }
            Progress::LeftOut(left_out) => eprintln!("  note      {left_out}"),
        }
    })
    .map_err(|e| Failure::User(e.into()))?;
    if !quiet {
        for function in &report.cached {
            if let Some(artifact) = report.manifest.functions.get(function) {
                eprintln!("  cached    {}", package_line(function, artifact));
            }
        }
    }
    Ok((report, options.out_dir))
}

/// A package's size, as `build` prints it: files, zipped and unzipped bytes.
fn package_line(function: &str, a: &nimbus_package::Artifact) -> String {
    format!(
        "{function:<24} {:>5} files {:>10} zipped {:>10} unzipped",
        a.files,
        human_bytes(a.size),
        human_bytes(a.unzipped_size)
    )
}

pub fn run(global: &Global, args: &BuildArgs, out: &Out) -> Result<(), Failure> {
    let compiled = super::compile(global, out, nimbus_provider::Purpose::Export)?;
    let provider = super::provider(global)?;
    let started = Instant::now();
    let (report, _) = package(&compiled, provider, args.force, out)?;
    let template = match provider {
        ProviderId::Aws => Some(write_aws_template(
            &compiled.graph,
            &report.manifest,
            &report.manifest_path,
        )?),
        ProviderId::Gcp => Some(write_gcp_terraform(
            &compiled.graph,
            &report.manifest,
            &report.manifest_path,
        )?),
        ProviderId::Azure => Some(write_azure_outputs(
            &compiled.graph,
            &report.manifest,
            &report.manifest_path,
        )?),
        _ => None,
    };
    if out.json {
        let mut json = serde_json::json!({
            "build": report.manifest,
            "built": report.built,
            "cached": report.cached,
            "path": report.manifest_path.display().to_string(),
            "left_out": report.left_out,
        });
        if let Some(t) = &template {
            json["template"] = serde_json::json!(t.display().to_string());
        }
        println!("{}", serde_json::to_string_pretty(&json).expect("json"));
    } else {
        let zipped: u64 = report.manifest.functions.values().map(|a| a.size).sum();
        let unzipped: u64 = report
            .manifest
            .functions
            .values()
            .map(|a| a.unzipped_size)
            .sum();
        println!(
            "built {} and reused {} package{} for {} in {:.2?} ({} zipped, {} unzipped) -> {}",
            report.built.len(),
            report.cached.len(),
            if report.cached.len() == 1 { "" } else { "s" },
            provider,
            started.elapsed(),
            human_bytes(zipped),
            human_bytes(unzipped),
            report.manifest_path.display()
        );
        if let Some(t) = &template {
            let what = match provider {
                ProviderId::Gcp => "the Terraform configuration",
                ProviderId::Azure => "the ARM template and the app entry points",
                _ => "the CloudFormation template",
            };
            println!("wrote {what} -> {}", t.display());
        }
    }
    Ok(())
}

/// Writes the app's CloudFormation template as `template.json` next to `build.json`.
fn write_aws_template(
    graph: &AppGraph,
    build: &BuildManifest,
    build_json: &std::path::Path,
) -> Result<PathBuf, Failure> {
    // The template uses the pseudo parameters for the account and region; only the package
    // key prefix comes from the settings.
    let region = graph
        .settings
        .get("aws")
        .and_then(|a| a.get("region"))
        .and_then(|r| r.as_str())
        .unwrap_or_default();
    let path = build_json.with_file_name("template.json");
    // The template is a pure function of the graph and the packages: when neither changed
    // since it was written, it is not generated again (this keeps an unchanged build fast).
    let key = format!(
        "{}:{}:{}:{region}",
        env!("CARGO_PKG_VERSION"),
        graph.hash,
        build_key(build)
    );
    let key_path = build_json.with_file_name("template.key");
    if path.is_file() && std::fs::read_to_string(&key_path).is_ok_and(|k| k == key) {
        return Ok(path);
    }
    let settings = nimbus_aws::AwsSettings::conventional(graph, region, "");
    let text =
        nimbus_aws::template(graph, build, &settings).map_err(|e| Failure::User(e.into()))?;
    write_both(&path, text.as_bytes(), &key_path, &key)?;
    Ok(path)
}

/// Writes the app's Terraform JSON as `main.tf.json` next to `build.json` (and the zips it
/// uploads), unless neither the graph nor the packages changed since it was written.
fn write_gcp_terraform(
    graph: &AppGraph,
    build: &BuildManifest,
    build_json: &std::path::Path,
) -> Result<PathBuf, Failure> {
    let path = build_json.with_file_name("main.tf.json");
    let key = format!(
        "{}:{}:{}",
        env!("CARGO_PKG_VERSION"),
        graph.hash,
        build_key(build)
    );
    let key_path = build_json.with_file_name("main.tf.key");
    if path.is_file() && std::fs::read_to_string(&key_path).is_ok_and(|k| k == key) {
        return Ok(path);
    }
    let settings =
        nimbus_gcp::terraform::export_settings(graph).map_err(|e| Failure::User(e.into()))?;
    let text =
        nimbus_gcp::main_tf_json(graph, build, &settings).map_err(|e| Failure::User(e.into()))?;
    write_both(&path, text.as_bytes(), &key_path, &key)?;
    Ok(path)
}

/// Writes the app's ARM template (`azuredeploy.json`) and each app's generated entry point and
/// `host.json` (`azure/<function>/`) next to `build.json`. The subscription for global names
/// comes from the manifest or `AZURE_SUBSCRIPTION_ID`; without either, the template's `suffix`
/// parameter has no default.
fn write_azure_outputs(
    graph: &AppGraph,
    build: &BuildManifest,
    build_json: &std::path::Path,
) -> Result<PathBuf, Failure> {
    let mut settings = nimbus_azure::AzureSettings::of(graph);
    if settings.subscription.is_none() {
        settings.subscription = std::env::var("AZURE_SUBSCRIPTION_ID")
            .ok()
            .filter(|s| !s.trim().is_empty());
    }
    let files = nimbus_azure::template::build_outputs(graph, build, &settings)
        .map_err(|e| Failure::User(e.into()))?;
    let dir = build_json.parent().unwrap_or(std::path::Path::new("."));
    // The `azure/` folder is written beside and swapped in whole, so concurrent builds never
    // write into one another's; the other files are each written atomically.
    let (apps, others): (Vec<_>, Vec<_>) = files.iter().partition(|(rel, _)| {
        std::path::Path::new(rel)
            .components()
            .next()
            .is_some_and(|c| c.as_os_str() == "azure")
    });
    let staging = tempfile::Builder::new()
        .prefix(&nimbus_package::temp_prefix("azure"))
        .suffix(".tmp")
        .tempdir_in(dir)
        .with_context(|| format!("creating a temporary folder in {}", dir.display()))
        .map_err(Failure::Internal)?;
    let staged = staging.path().join("azure");
    std::fs::create_dir_all(&staged)
        .with_context(|| format!("creating {}", staged.display()))
        .map_err(Failure::Internal)?;
    for (rel, bytes) in apps {
        let path = staging.path().join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))
                .map_err(Failure::Internal)?;
        }
        std::fs::write(&path, bytes)
            .with_context(|| format!("writing {}", path.display()))
            .map_err(Failure::Internal)?;
    }
    swap_dir(&staged, &dir.join("azure"))?;
    for (rel, bytes) in others {
        let path = dir.join(rel);
        nimbus_package::write_atomically(&path, bytes)
            .with_context(|| format!("writing {}", path.display()))
            .map_err(Failure::Internal)?;
    }
    Ok(dir.join(nimbus_azure::template::TEMPLATE_FILE))
}

/// Moves the folder `new` to `dest`, replacing what is there. Another build may put its own
/// there between the two renames; then it is moved aside again (the last build wins whole).
fn swap_dir(new: &std::path::Path, dest: &std::path::Path) -> Result<(), Failure> {
    let parent = dest.parent().unwrap_or(std::path::Path::new("."));
    let aside = tempfile::Builder::new()
        .prefix(&nimbus_package::temp_prefix("azure-old"))
        .suffix(".tmp")
        .tempdir_in(parent)
        .with_context(|| format!("creating a temporary folder in {}", parent.display()))
        .map_err(Failure::Internal)?;
    let mut last = None;
    for attempt in 0..20 {
        let _ = std::fs::rename(dest, aside.path().join(attempt.to_string()));
        match std::fs::rename(new, dest) {
            Ok(()) => return Ok(()),
            Err(e) => last = Some(e),
        }
    }
    Err(Failure::Internal(
        anyhow::Error::from(last.expect("tried")).context(format!("replacing {}", dest.display())),
    ))
}

/// Writes a generated file and then its key, each atomically.
fn write_both(
    path: &std::path::Path,
    text: &[u8],
    key_path: &std::path::Path,
    key: &str,
) -> Result<(), Failure> {
    nimbus_package::write_atomically(path, text)
        .and_then(|()| nimbus_package::write_atomically(key_path, key.as_bytes()))
        .with_context(|| format!("writing {}", path.display()))
        .map_err(Failure::Internal)
}

/// A digest of the packages a template refers to.
fn build_key(build: &BuildManifest) -> String {
    build
        .functions
        .values()
        .map(|a| &a.sha256[..12.min(a.sha256.len())])
        .collect::<Vec<_>>()
        .join("")
}

pub(crate) fn human_bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_swaps_of_a_folder_always_leave_a_whole_one() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("azure");
        let failures = std::sync::Mutex::new(Vec::new());
        for round in 0..50 {
            std::thread::scope(|s| {
                for writer in 0..2 {
                    let (dir, dest, failures) = (dir.path(), &dest, &failures);
                    s.spawn(move || {
                        let staging = tempfile::tempdir_in(dir).unwrap();
                        let new = staging.path().join("azure");
                        std::fs::create_dir_all(new.join("f")).unwrap();
                        std::fs::write(new.join("f/host.json"), format!("{round}/{writer}"))
                            .unwrap();
                        std::fs::write(new.join("f/function_app.py"), "x").unwrap();
                        if let Err(e) = swap_dir(&new, dest) {
                            failures.lock().unwrap().push(format!("{e:?}"));
                        }
                    });
                }
            });
            let files = std::fs::read_dir(dest.join("f")).unwrap().count();
            assert_eq!(files, 2, "round {round}: a whole folder");
        }
        assert!(failures.into_inner().unwrap().is_empty());
        // Nothing is left beside it but the folder itself.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["azure"]);
    }
}

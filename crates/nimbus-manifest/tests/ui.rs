//! Manifest UI tests: every `tests/ui/valid/*.yaml` compiles, every `tests/ui/invalid/*.yaml`
//! fails with exactly the diagnostics in the `.txt` beside it.
//!
//! A case can set what it is compiled for in comment lines at its top:
//! `# provider: gcp`, `# stage: prod`, `# env: NAME=value`, and `# deploy` to check it as
//! `validate` does (the provider's required settings too; otherwise as `build` does). Run with `BLESS=1` to write the
//! expected output of new or changed cases (then read every changed `.txt` before committing).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use nimbus_manifest::LoadOptions;
use nimbus_provider::{ProviderId, Purpose};

struct Case {
    path: PathBuf,
    provider: ProviderId,
    options: LoadOptions,
    purpose: Purpose,
}

fn cases(dir: &str) -> Vec<Case> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/ui")
        .join(dir);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("reading {}: {e}", root.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
            let mut provider = ProviderId::Local;
            let mut purpose = Purpose::Export;
            let mut options = LoadOptions {
                env: BTreeMap::new(),
                ..LoadOptions::default()
            };
            for line in text.lines().take_while(|l| l.starts_with('#')) {
                let line = line.trim_start_matches('#').trim();
                if let Some(p) = line.strip_prefix("provider:") {
                    provider = p.trim().parse().unwrap();
                } else if let Some(s) = line.strip_prefix("stage:") {
                    options.stage = Some(s.trim().to_string());
                } else if line == "deploy" {
                    purpose = Purpose::Deploy;
                } else if let Some(kv) = line.strip_prefix("env:") {
                    let (k, v) = kv.trim().split_once('=').expect("env: NAME=value");
                    options.env.insert(k.to_string(), v.to_string());
                }
            }
            options.provider = provider.to_string();
            Case {
                path,
                provider,
                options,
                purpose,
            }
        })
        .collect()
}

/// Loads and compiles a case; the rendered report on failure.
fn compile(case: &Case) -> Result<usize, String> {
    let checked = nimbus_manifest::check_file(&case.path, &case.options)
        .unwrap_or_else(|e| panic!("{}: {e}", case.path.display()));
    let env = |name: &str| case.options.env.get(name).cloned();
    let report = match nimbus_provider::compile_checked(checked, case.provider, case.purpose, &env)
    {
        Ok(compiled) => return Ok(compiled.warnings.len()),
        Err(report) => report,
    };
    let mut report = report;
    report.path = PathBuf::from(case.path.file_name().unwrap());
    Err(report.render(false))
}

#[test]
fn valid_manifests_compile() {
    let cases = cases("valid");
    assert!(cases.len() >= 5, "too few valid cases");
    for case in &cases {
        if let Err(rendered) = compile(case) {
            panic!("{} should be valid:\n{rendered}", case.path.display());
        }
    }
}

#[test]
fn invalid_manifests_report_expected_diagnostics() {
    let bless = std::env::var_os("BLESS").is_some();
    let cases = cases("invalid");
    assert!(
        cases.len() >= 40,
        "the corpus must hold at least 40 invalid manifests, found {}",
        cases.len()
    );
    let mut failures = Vec::new();
    for case in &cases {
        let expected_path = case.path.with_extension("txt");
        let rendered = match compile(case) {
            Ok(_) => {
                failures.push(format!("{} compiled but should fail", case.path.display()));
                continue;
            }
            Err(rendered) => rendered,
        };
        assert!(!rendered.contains("panicked"), "{rendered}");
        if bless {
            std::fs::write(&expected_path, &rendered).unwrap();
            continue;
        }
        match std::fs::read_to_string(&expected_path) {
            Ok(expected) if expected == rendered => {}
            Ok(expected) => failures.push(format!(
                "{} differs (BLESS=1 rewrites it):\n--- expected\n{expected}--- actual\n{rendered}",
                case.path.display()
            )),
            Err(_) => failures.push(format!(
                "{} has no expected output; run with BLESS=1",
                case.path.display()
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn every_invalid_case_points_at_a_line() {
    for case in cases("invalid") {
        let rendered = compile(&case).expect_err("invalid");
        let name = case
            .path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(
            rendered.contains(&format!("{name}:")),
            "{name} has an error without a location:\n{rendered}"
        );
    }
}

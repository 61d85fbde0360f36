//! Which local deployment `info`, `logs`, `remove` and `invoke` work on: the one of the manifest
//! found (`-f`, or `nimbus.yaml` here or above), else one from the registry of local deployments
//! (`nimbus_local::registry`) — by `--service NAME [-s STAGE]`, by the recorded manifest path
//! of a project that was moved or deleted (`-f OLD/PATH`), or the one deployed from this folder.
//! Only the service name is read from a manifest, without deploy-time inputs: everything else
//! comes from what was deployed (the state folder and its record).

use std::path::{Component, Path, PathBuf};

use nimbus_local::StateDir;
use nimbus_local::registry::{self, Record};

use crate::cli::{Global, Which};
use crate::commands::project;
use crate::output::{Failure, Out};

/// A local deployment a command works on.
pub struct Target {
    /// The service.
    pub service: String,
    /// The stage.
    pub stage: String,
    /// Its state folder.
    pub state: StateDir,
    /// The flags that address it again, for hints (` -f PATH -s STAGE`, ` --service NAME`).
    pub flags: String,
}

impl Target {
    /// "`shop` (stage `dev`)".
    pub fn name(&self) -> String {
        format!("`{}` (stage `{}`)", self.service, self.stage)
    }

    /// Its record in the registry, if it has one.
    pub fn record(&self) -> Option<Record> {
        registry::find(&absolute(self.state.root()))
    }
}

/// The local deployment the command addresses.
pub fn resolve(global: &Global, which: &Which, out: &Out) -> Result<Target, Failure> {
    let stage_flag = global
        .stage
        .as_ref()
        .map(|s| format!(" -s {s}"))
        .unwrap_or_default();
    let of_stage = |r: &Record| global.stage.as_ref().is_none_or(|s| *s == r.stage);
    if let Some(service) = &which.service {
        let found: Vec<Record> = registry::all()
            .into_iter()
            .filter(|r| &r.service == service && of_stage(r))
            .collect();
        let flags = format!(" --service {service}{stage_flag}");
        return one(found, flags, || {
            format!(
                "no local deployment of `{service}`{} is recorded on this machine",
                global
                    .stage
                    .as_ref()
                    .map(|s| format!(" (stage `{s}`)"))
                    .unwrap_or_default()
            )
        });
    }
    match project::find(global)? {
        Some(manifest) if manifest.is_file() => {
            let compiled = crate::commands::load_deployed(global, out)?;
            let file_flag = global
                .file
                .as_ref()
                .map(|f| format!(" -f {}", f.display()))
                .unwrap_or_default();
            Ok(Target {
                state: StateDir::for_service(
                    &compiled.loaded.dir,
                    &compiled.graph.service,
                    &compiled.graph.stage,
                ),
                service: compiled.graph.service,
                stage: compiled.graph.stage,
                flags: format!("{file_flag}{stage_flag}"),
            })
        }
        Some(missing) => {
            // `-f` names no file: a deployment made from that manifest before it moved or went.
            let wanted = absolute(&missing);
            let found: Vec<Record> = registry::all()
                .into_iter()
                .filter(|r| r.manifest == wanted && of_stage(r))
                .collect();
            let flags = format!(" -f {}{stage_flag}", missing.display());
            one(found, flags, || {
                format!(
                    "cannot read manifest `{}`, and no local deployment made from it is recorded",
                    missing.display()
                )
            })
        }
        None => {
            // No manifest here or above: the deployment made from this folder.
            let here = std::env::current_dir()
                .ok()
                .map(|d| absolute(&d))
                .unwrap_or_default();
            let found: Vec<Record> = registry::all()
                .into_iter()
                .filter(|r| r.deployed_from == here && of_stage(r))
                .collect();
            if found.is_empty() {
                return Err(Failure::user(format!(
                    "{}{}",
                    project::not_found_message(),
                    known()
                )));
            }
            one(found, stage_flag, String::new)
        }
    }
}

/// The one record in `found`, or an error: `none()` when there is none, the list when several.
fn one(
    mut found: Vec<Record>,
    flags: String,
    none: impl FnOnce() -> String,
) -> Result<Target, Failure> {
    match found.len() {
        1 => {
            let r = found.remove(0);
            Ok(Target {
                state: r.state_dir(),
                service: r.service,
                stage: r.stage,
                flags,
            })
        }
        0 => Err(Failure::user(format!("{}{}", none(), known()))),
        _ => Err(Failure::user(format!(
            "{} local deployments match:\n{}\n  hint: pick one with `-s STAGE`, or with `-f MANIFEST`",
            found.len(),
            found.iter().map(line).collect::<Vec<_>>().join("\n")
        ))),
    }
}

/// The recorded deployments, as a hint; empty when there are none.
fn known() -> String {
    let all = registry::all();
    if all.is_empty() {
        return String::new();
    }
    format!(
        "\n  local deployments on this machine:\n{}\n  hint: `nimbus info --service NAME [-s STAGE]` addresses one without its manifest",
        all.iter().map(line).collect::<Vec<_>>().join("\n")
    )
}

fn line(r: &Record) -> String {
    format!(
        "    `{}` (stage `{}`) from {} — {}",
        r.service,
        r.stage,
        r.manifest.display(),
        r.status()
    )
}

/// `path` made absolute and free of `.`/`..` (through the real path when it exists).
pub fn absolute(path: &Path) -> PathBuf {
    if let Ok(real) = path.canonicalize() {
        return real;
    }
    let joined = std::env::current_dir().unwrap_or_default().join(path);
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

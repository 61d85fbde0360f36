//! Loading a manifest: parse, render templates, decode section by section, merge the stage.
//!
//! Decoding is done per top-level key and per function, resource and stage, so a manifest with
//! mistakes in three functions reports all three. Whatever decoded cleanly is still validated.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use marked_yaml::Node;
use marked_yaml::types::{MarkedMappingNode, MarkedScalarNode};
use nimbus_diagnostic::{Diagnostic, Report, Span, did_you_mean};
use serde::Deserialize;

use crate::de::{DeError, from_key, from_node, node_span, scalar_span};
use crate::extras::{AwsFunction, AzureFunction, GcpFunction};
use crate::model::{Defaults, Manifest, Providers, TOP_LEVEL_KEYS};
use crate::template::{self, Context, Deferred};
use crate::types::Name;
use crate::{Spanned, text, validate, yaml};

/// What the manifest is resolved for.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// The stage (`dev` when unset).
    pub stage: Option<String>,
    /// The target provider, as templates see it (`{{ provider }}`).
    pub provider: String,
    /// Environment variables templates may read (`{{ env.NAME }}`).
    pub env: BTreeMap<String, String>,
    /// Check that handler files exist (off for in-memory tests and fuzzing).
    pub check_files: bool,
    /// For commands that work from what was deployed (`info`, `logs`, `remove`): a value whose
    /// `{{ env.NAME }}` is not set keeps its template text instead of being an error, and is
    /// listed in [`Loaded::deferred`]. Deploy-time inputs are then not needed.
    pub defer_env: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            stage: None,
            provider: "local".into(),
            env: BTreeMap::new(),
            check_files: true,
            defer_env: false,
        }
    }
}

/// The stage used when none is given.
pub const DEFAULT_STAGE: &str = "dev";

/// A manifest resolved for one stage and provider, and checked.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The manifest with templates rendered and the stage's overrides merged.
    pub manifest: Manifest,
    /// The stage it was resolved for.
    pub stage: Name,
    /// The provider it was resolved for.
    pub provider: String,
    /// The manifest file as the user named it.
    pub path: PathBuf,
    /// The directory handler paths are relative to.
    pub dir: PathBuf,
    /// The manifest's text.
    pub source: String,
    /// Problems that do not stop the manifest from being used.
    pub warnings: Vec<Diagnostic>,
    /// Values left unrendered because their environment variable is not set (only with
    /// [`LoadOptions::defer_env`]).
    pub deferred: Vec<Deferred>,
}

impl Loaded {
    /// The warnings as a renderable report.
    pub fn warning_report(&self) -> Report {
        Report::new(&self.path, &self.source, self.warnings.clone())
    }
}

/// Errors from loading a manifest.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read manifest `{path}`")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The manifest has errors; the report renders them.
    #[error("{} has {} error{}", .0.path.display(), .0.error_count(), if .0.error_count() == 1 { "" } else { "s" })]
    Invalid(Report),
}

/// Reads and loads the manifest at `path`.
/// A UTF-8 byte-order mark is dropped; bytes that are not UTF-8 are an error at the first one.
pub fn load_file(path: &Path, options: &LoadOptions) -> Result<Loaded, LoadError> {
    load_str(path, load_bytes(path)?, options)
}

/// The manifest's text (see [`text::decode`]).
fn load_bytes(path: &Path) -> Result<String, LoadError> {
    let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    text::decode(bytes).map_err(|(shown, d)| LoadError::Invalid(Report::new(path, shown, vec![d])))
}

/// Loads a manifest from text; `path` names it in messages and anchors relative handler paths.
pub fn load_str(path: &Path, source: String, options: &LoadOptions) -> Result<Loaded, LoadError> {
    let checked = check_str(path, source, options);
    match checked.loaded {
        Some(loaded) if checked.report.error_count() == 0 => Ok(loaded),
        _ => Err(LoadError::Invalid(checked.report)),
    }
}

/// What [`check_file`] makes of a manifest: everything wrong with it, and the manifest as far as
/// it decodes, so that later stages (the provider's limits) can report their problems in the
/// same pass.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The manifest, resolved and merged, even when some of it has errors; `None` only when no
    /// later stage can run (YAML that does not parse, a missing `version`, `service` or
    /// `functions`). Its `warnings` are the warnings only.
    pub loaded: Option<Loaded>,
    /// Every error and warning found.
    pub report: Report,
}

/// Reads and checks the manifest at `path` in one pass (see [`Checked`]); only a file that
/// cannot be read is an `Err`.
pub fn check_file(path: &Path, options: &LoadOptions) -> Result<Checked, LoadError> {
    let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(check_bytes(path, bytes, options))
}

/// [`check_file`] on the file's bytes (a byte-order mark dropped, anything not UTF-8 an error).
pub fn check_bytes(path: &Path, bytes: Vec<u8>, options: &LoadOptions) -> Checked {
    match text::decode(bytes) {
        Ok(source) => check_str(path, source, options),
        Err((shown, d)) => Checked {
            loaded: None,
            report: Report::new(path, shown, vec![d]),
        },
    }
}

/// [`check_file`] on text.
pub fn check_str(path: &Path, source: String, options: &LoadOptions) -> Checked {
    let source = text::strip_bom(source);
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let dir = if dir.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        dir
    };
    let (resolved, diagnostics) = resolve(&source, &dir, options);
    let loaded = resolved.map(|r| Loaded {
        manifest: r.manifest,
        stage: r.stage,
        provider: options.provider.clone(),
        path: path.to_path_buf(),
        dir,
        source: source.clone(),
        warnings: diagnostics
            .iter()
            .filter(|d| !d.is_error())
            .cloned()
            .collect(),
        deferred: r.deferred,
    });
    Checked {
        loaded,
        report: Report::new(path, source, diagnostics),
    }
}

/// Everything but I/O: text in, the resolved manifest (when its structure decodes) and every
/// diagnostic out.
fn resolve(source: &str, dir: &Path, options: &LoadOptions) -> (Option<Resolved>, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    match resolve_into(source, dir, options, &mut diags) {
        Ok(resolved) => (Some(resolved), diags),
        Err(()) => (None, diags),
    }
}

/// [`resolve`], pushing diagnostics as it goes; `Err` where no later stage can run.
fn resolve_into(
    source: &str,
    dir: &Path,
    options: &LoadOptions,
    diags: &mut Vec<Diagnostic>,
) -> Result<Resolved, ()> {
    let mut root = yaml::parse(source).map_err(|d| diags.push(d))?;

    let stage_text = options
        .stage
        .clone()
        .unwrap_or_else(|| DEFAULT_STAGE.to_string());
    let stage: Name = stage_text.parse().map_err(|e: String| {
        diags.push(
            Diagnostic::error(None, format!("invalid stage: {e}"))
                .with_hint("stages are names such as `dev` or `prod`"),
        )
    })?;

    let Node::Mapping(map) = &mut root else {
        diags.push(Diagnostic::error(
            node_span(&root),
            "the manifest must be a mapping of keys to values",
        ));
        return Err(());
    };

    // `service` is read first: templates may use it, so it cannot be templated itself.
    let service = map
        .get_scalar("service")
        .map(|s| s.as_str().to_string())
        .unwrap_or_default();
    if service.contains("{{") || service.contains("{%") {
        let span = map.get_scalar("service").map(scalar_span);
        diags.push(
            Diagnostic::error(span, "`service` cannot use templates")
                .with_label("a literal name is needed")
                .with_hint("name the service literally; stages already keep deployments apart"),
        );
        return Err(());
    }
    let mut ctx = Context {
        stage: stage.to_string(),
        provider: options.provider.clone(),
        service,
        env: options.env.clone(),
        vars: None,
        defer_env: options.defer_env,
        deferred: Default::default(),
        budget: Default::default(),
    };
    crate::secrets::credential_templates(map, diags);
    let vars = render_vars(map, &stage, &ctx, diags);
    ctx.vars = Some(vars.clone());
    for (key, value) in map.iter_mut() {
        if key.as_str() != "vars" {
            template::render_tree(value, &ctx, diags);
        }
    }
    // A value whose template failed stays unrendered: what decoding says about it would only
    // repeat the template error, so it is left out. Everything else is still decoded.
    let template_lines: BTreeSet<u32> = diags
        .iter()
        .filter_map(|d| d.span)
        .map(|s| s.line)
        .collect();

    let mut broken = Broken::default();
    let mut decoded = Vec::new();
    let manifest = decode(map, vars, &mut decoded, &mut broken);
    diags.extend(
        decoded
            .into_iter()
            .filter(|d| d.span.is_none_or(|s| !template_lines.contains(&s.line))),
    );
    let Some(mut manifest) = manifest else {
        return Err(());
    };
    if !manifest.stages.is_empty() && !manifest.stages.contains_key(stage.as_str()) {
        let declared = manifest.stages.keys().map(|s| s.as_str());
        let hint = match did_you_mean(stage.as_str(), declared) {
            Some(best) => format!("did you mean `{best}`?"),
            None => format!("declare it (`stages: {{ {stage}: {{}} }}`) to silence this"),
        };
        diags.push(
            Diagnostic::warning(
                None,
                format!(
                    "stage `{stage}` is not declared under `stages:`; only the base settings apply"
                ),
            )
            .with_hint(hint),
        );
    }
    apply_stage(&mut manifest, &stage);
    broken.had_errors = diags.iter().any(Diagnostic::is_error);
    let mut findings = validate::validate(&manifest, dir, options.check_files, &broken);
    diags.append(&mut findings);
    Ok(Resolved {
        manifest,
        stage,
        deferred: ctx.deferred.take(),
    })
}

/// What [`resolve`] makes of the text.
struct Resolved {
    manifest: Manifest,
    stage: Name,
    deferred: Vec<Deferred>,
}

/// Renders and merges the base `vars` with the stage's `vars`.
fn render_vars(
    map: &mut MarkedMappingNode,
    stage: &Name,
    ctx: &Context,
    diags: &mut Vec<Diagnostic>,
) -> BTreeMap<String, serde_json::Value> {
    let mut vars = BTreeMap::new();
    if let Some(node) = child_mut(map, "vars") {
        template::render_tree(node, ctx, diags);
        if let Some(v) = collect(
            from_node::<BTreeMap<String, serde_json::Value>>(node),
            diags,
        ) {
            vars.extend(v);
        }
    }
    let stage_vars = child_mut(map, "stages")
        .and_then(Node::as_mapping_mut)
        .and_then(|stages| child_mut(stages, stage.as_str()))
        .and_then(Node::as_mapping_mut)
        .and_then(|s| child_mut(s, "vars"));
    if let Some(node) = stage_vars {
        template::render_tree(node, ctx, diags);
        // Errors here are reported when the stage itself is decoded.
        if let Ok(v) = from_node::<BTreeMap<String, serde_json::Value>>(node) {
            vars.extend(v);
        }
    }
    vars
}

fn child_mut<'a>(map: &'a mut MarkedMappingNode, key: &str) -> Option<&'a mut Node> {
    map.iter_mut()
        .find(|(k, _)| k.as_str() == key)
        .map(|(_, v)| v)
}

fn collect<T>(result: Result<T, DeError>, diags: &mut Vec<Diagnostic>) -> Option<T> {
    result.map_err(|e| diags.push(e.into_diagnostic())).ok()
}

/// Entries that failed to decode: references to them are not reported again.
#[derive(Debug, Default)]
pub(crate) struct Broken {
    pub functions: BTreeSet<String>,
    pub resources: BTreeSet<String>,
    pub had_errors: bool,
}

/// Decodes the top level key by key, and the named sections entry by entry.
fn decode(
    map: &MarkedMappingNode,
    vars: BTreeMap<String, serde_json::Value>,
    diags: &mut Vec<Diagnostic>,
    broken: &mut Broken,
) -> Option<Manifest> {
    let errors_before = diags.len();
    let mut suggested = Vec::new();
    let mut version = None;
    let mut service = None;
    let mut functions = None;
    let mut defaults = Defaults::default();
    let mut providers = Providers::default();
    let mut stages = BTreeMap::new();
    let mut resources = BTreeMap::new();
    let mut secrets = BTreeMap::new();
    let mut http = crate::Http::default();
    for (key, value) in map.iter() {
        match key.as_str() {
            "version" => version = collect(from_node::<Spanned<u32>>(value), diags),
            "service" => service = collect(from_node::<Spanned<Name>>(value), diags),
            "defaults" => defaults = collect(from_node(value), diags).unwrap_or_default(),
            "vars" => {
                // Already decoded for templating; decode again only to report its errors.
                collect(
                    from_node::<BTreeMap<String, serde_json::Value>>(value),
                    diags,
                );
            }
            "stages" => stages = entries(value, "stages", diags, &mut BTreeSet::new()),
            "resources" => resources = entries(value, "resources", diags, &mut broken.resources),
            "functions" => {
                let decoded = entries(value, "functions", diags, &mut broken.functions);
                let wrong_shape = matches!(value, Node::Sequence(_))
                    || matches!(value, Node::Scalar(s) if !matches!(s.as_str(), "" | "~" | "null"));
                if decoded.is_empty() && broken.functions.is_empty() && !wrong_shape {
                    let span = match value {
                        Node::Mapping(_) => node_span(value),
                        _ => scalar_span(key),
                    };
                    diags.push(
                        Diagnostic::error(span, "the manifest has no functions").with_hint(
                            "add one under `functions:`, e.g. `hello: { handler: app.py:handler }`",
                        ),
                    );
                }
                functions = Some(decoded);
            }
            "providers" => providers = collect(from_node(value), diags).unwrap_or_default(),
            "secrets" => secrets = collect(from_node(value), diags).unwrap_or_default(),
            "http" => http = collect(from_node(value), diags).unwrap_or_default(),
            other => {
                let best = did_you_mean(other, TOP_LEVEL_KEYS.iter().copied());
                suggested.extend(best);
                diags.push(
                    Diagnostic::error(scalar_span(key), format!("unknown key `{other}`"))
                        .with_label("not a top-level key")
                        .with_hint(match best {
                            Some(best) => format!("did you mean `{best}`?"),
                            None => format!(
                                "the top-level keys are {}",
                                TOP_LEVEL_KEYS
                                    .iter()
                                    .map(|k| format!("`{k}`"))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        }),
                );
            }
        }
    }
    let top = Span::at(1, 1, 1);
    if version.is_none() && map.get_node("version").is_none() && !suggested.contains(&"version") {
        diags.push(
            Diagnostic::error(top, "missing required key `version`")
                .with_hint("add `version: 1` at the top"),
        );
    }
    if service.is_none() && map.get_node("service").is_none() && !suggested.contains(&"service") {
        diags.push(
            Diagnostic::error(top, "missing required key `service`")
                .with_hint("add `service: <name>`, e.g. `service: shop`"),
        );
    }
    if functions.is_none()
        && map.get_node("functions").is_none()
        && !suggested.contains(&"functions")
    {
        diags.push(
            Diagnostic::error(top, "missing required key `functions`")
                .with_hint("add at least one function under `functions:`"),
        );
    }
    if diags.len() > errors_before
        && (version.is_none() || service.is_none() || functions.is_none())
    {
        return None;
    }
    let mut spans = crate::model::ManifestSpans::default();
    if let Some((key, value)) = map.iter().find(|(k, _)| k.as_str() == "providers") {
        spans.providers = Some(scalar_span(key));
        if let Node::Mapping(ids) = value {
            for (id, _) in ids.iter() {
                spans
                    .provider
                    .insert(id.as_str().to_string(), scalar_span(id));
            }
        }
    }
    Some(Manifest {
        spans,
        version: version?,
        service: service?,
        defaults,
        vars,
        stages,
        resources,
        secrets,
        functions: functions?,
        http,
        providers,
    })
}

/// Decodes a `name: settings` mapping entry by entry.
fn entries<T: for<'de> Deserialize<'de>>(
    node: &Node,
    section: &str,
    diags: &mut Vec<Diagnostic>,
    broken: &mut BTreeSet<String>,
) -> BTreeMap<Spanned<Name>, T> {
    let mut out = BTreeMap::new();
    let Node::Mapping(map) = node else {
        if !matches!(node, Node::Scalar(s) if s.as_str().is_empty() || s.as_str() == "~" || s.as_str() == "null")
        {
            diags.push(
                Diagnostic::error(
                    node_span(node),
                    format!("`{section}` must be a mapping of names to settings"),
                )
                .with_hint(format!(
                    "write `{section}:` followed by indented `name: {{ ... }}` entries"
                )),
            );
        }
        return out;
    };
    for (key, value) in map.iter() {
        let name = collect(from_key::<Spanned<Name>>(key), diags);
        let item = collect(
            from_node::<T>(value).map_err(|e| at_entry_key(e, key, value, section)),
            diags,
        );
        match (name, item) {
            (Some(name), Some(item)) => {
                out.insert(name, item);
            }
            _ => {
                broken.insert(key.as_str().to_string());
            }
        }
    }
    out
}

/// A required key missing from an entry's own settings is reported at the entry's name (the
/// line that starts it), not wherever its mapping happens to end.
fn at_entry_key(mut e: DeError, key: &MarkedScalarNode, value: &Node, section: &str) -> DeError {
    if e.message.starts_with("missing required key") && e.span == Some(node_span(value)) {
        e.span = Some(scalar_span(key));
        let what = section.trim_end_matches('s');
        e.message = format!(
            "{what} `{}` has no `{}`",
            key.as_str(),
            e.message
                .trim_start_matches("missing required key `")
                .trim_end_matches('`')
        );
        if e.hint.is_none() && section == "functions" && e.message.ends_with("`handler`") {
            e.hint = Some(format!(
                "add `handler: <file>:<function>` under `{}`, e.g. `handler: app.py:handler`",
                key.as_str()
            ));
        }
    }
    e
}

/// A stage's provider block merged key by key over the base one.
fn merge<T>(stage: Option<T>, base: Option<T>, over: fn(&T, &T) -> T) -> Option<T> {
    match (stage, base) {
        (Some(s), Some(b)) => Some(over(&s, &b)),
        (s, b) => s.or(b),
    }
}

/// Merges the chosen stage's `defaults` and `providers` over the base ones.
fn apply_stage(manifest: &mut Manifest, stage: &Name) {
    let Some(overrides) = manifest.stages.get(stage.as_str()).cloned() else {
        return;
    };
    if let Some(d) = overrides.defaults {
        let base = &mut manifest.defaults;
        base.runtime = d.runtime.or(base.runtime.take());
        base.memory = d.memory.or(base.memory.take());
        base.timeout = d.timeout.or(base.timeout.take());
        base.concurrency = d.concurrency.or(base.concurrency.take());
        base.env.extend(d.env);
        base.aws = merge(d.aws, base.aws.take(), AwsFunction::over);
        base.gcp = merge(d.gcp, base.gcp.take(), GcpFunction::over);
        base.azure = merge(d.azure, base.azure.take(), AzureFunction::over);
    }
    if let Some(h) = overrides.http {
        manifest.http.domain = h.domain.or(manifest.http.domain.take());
        manifest.http.cors = h.cors.or(manifest.http.cors.take());
    }
    if let Some(p) = overrides.providers {
        let base = &mut manifest.providers;
        if let Some(aws) = p.aws {
            let b = base.aws.get_or_insert_with(Default::default);
            b.region = aws.region.or(b.region.take());
            b.profile = aws.profile.or(b.profile.take());
            b.tags.extend(aws.tags);
        }
        if let Some(gcp) = p.gcp {
            let b = base.gcp.get_or_insert_with(Default::default);
            b.project = gcp.project.or(b.project.take());
            b.region = gcp.region.or(b.region.take());
        }
        if let Some(azure) = p.azure {
            let b = base.azure.get_or_insert_with(Default::default);
            b.location = azure.location.or(b.location.take());
            b.resource_group = azure.resource_group.or(b.resource_group.take());
            b.subscription = azure.subscription.or(b.subscription.take());
        }
        if let Some(local) = p.local {
            let b = base.local.get_or_insert_with(Default::default);
            b.port = local.port.or(b.port.take());
            b.idle_timeout = local.idle_timeout.or(b.idle_timeout.take());
        }
    }
}

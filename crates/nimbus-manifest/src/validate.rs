//! Semantic checks that need the whole manifest: references between functions and resources,
//! settings that only fit some resource kinds, clashing routes, handler files, schedules.
//!
//! Every finding points at the value it is about. Provider-specific limits are checked later,
//! against the app graph, by `nimbus-provider`.

use std::collections::BTreeMap;
use std::path::Path;

use nimbus_diagnostic::{Diagnostic, Span, did_you_mean};

use crate::Spanned;
use crate::extras::Only;
use crate::load::Broken;
use crate::model::{Function, Manifest, Resource, ScheduleTrigger, Trigger};
use crate::types::{HttpMethod, Name, ResourceKind, RoutePath};

/// The manifest version this crate reads.
pub const SUPPORTED_VERSION: u32 = 1;

/// Runs every check; returns errors and warnings.
pub(crate) fn validate(
    manifest: &Manifest,
    dir: &Path,
    check_files: bool,
    broken: &Broken,
) -> Vec<Diagnostic> {
    let mut v = Validator {
        manifest,
        broken,
        diags: Vec::new(),
    };
    if *manifest.version != SUPPORTED_VERSION {
        v.diags.push(
            Diagnostic::error(
                manifest.version.span,
                format!("unsupported manifest version `{}`", *manifest.version),
            )
            .with_hint(format!("this nimbus reads `version: {SUPPORTED_VERSION}`")),
        );
    }
    for (name, resource) in &manifest.resources {
        v.resource(name, resource);
    }
    for (name, function) in &manifest.functions {
        v.function(name, function, dir, check_files);
    }
    v.routes();
    v.queue_consumers();
    crate::secrets::undeclared(manifest, &mut v.diags);
    crate::external::validate(manifest, &mut v.diags);
    crate::cors::check(manifest, &mut v.diags);
    crate::extras_check::check(manifest, &mut v.diags);
    // Unused-resource warnings would only echo errors already shown.
    if !broken.had_errors
        && broken.functions.is_empty()
        && !v.diags.iter().any(Diagnostic::is_error)
    {
        v.unused_resources();
    }
    v.diags
}

struct Validator<'a> {
    manifest: &'a Manifest,
    broken: &'a Broken,
    diags: Vec<Diagnostic>,
}

impl Validator<'_> {
    fn error(&mut self, span: Span, message: impl Into<String>) -> &mut Diagnostic {
        self.diags.push(Diagnostic::error(span, message));
        self.diags.last_mut().expect("just pushed")
    }

    fn resource(&mut self, name: &Spanned<Name>, r: &Resource) {
        let kind = *r.kind;
        let only = |setting: &str, span: Span, for_kind: &str| {
            Diagnostic::error(span, format!("`{setting}` does not apply to a {kind}"))
                .with_label(format!("only {for_kind} have `{setting}`"))
                .with_hint(format!("remove `{setting}` from resource `{name}`"))
        };
        if kind != ResourceKind::Table {
            if let Some(k) = &r.key {
                self.diags.push(only("key", k.span, "tables"));
            }
            if let Some(k) = &r.sort_key {
                self.diags.push(only("sort_key", k.span, "tables"));
            }
        }
        if kind != ResourceKind::Queue {
            if let Some(x) = &r.visibility_timeout {
                self.diags
                    .push(only("visibility_timeout", x.span, "queues"));
            }
            if let Some(x) = &r.retention {
                self.diags.push(only("retention", x.span, "queues"));
            }
            if let Some(x) = &r.dead_letter {
                self.diags.push(only("dead_letter", x.span, "queues"));
            }
        }
        if kind != ResourceKind::Bucket
            && let Some(x) = &r.versioning
        {
            self.diags.push(only("versioning", x.span, "buckets"));
        }
        match kind {
            ResourceKind::Table => match &r.key {
                None => {
                    self.error(name.span, format!("table `{name}` has no `key`"))
                        .hint = Some(
                        "give the partition key and its type, e.g. `key: { id: string }`".into(),
                    );
                }
                Some(key) => {
                    self.key_attributes(key, "key");
                    if let Some(sort) = &r.sort_key {
                        self.key_attributes(sort, "sort_key");
                        let both = key.keys().any(|k| sort.contains_key(k));
                        if both {
                            self.error(
                                sort.span,
                                "the sort key must differ from the partition key",
                            );
                        }
                    }
                }
            },
            ResourceKind::Queue => {
                if let Some(vt) = &r.visibility_timeout
                    && vt.as_millis() > 12 * 3_600_000
                {
                    self.error(
                        vt.span,
                        format!(
                            "visibility timeout `{}` is longer than the 12h maximum",
                            **vt
                        ),
                    );
                }
                if let Some(ret) = &r.retention
                    && !(60_000..=14 * 86_400_000).contains(&ret.as_millis())
                {
                    self.error(
                        ret.span,
                        format!(
                            "retention `{}` must be between 1m and 14 days (336h)",
                            **ret
                        ),
                    );
                }
                if let Some(dl) = &r.dead_letter
                    && !(1..=1000).contains(&*dl.max_receives)
                {
                    self.error(
                        dl.max_receives.span,
                        "`max_receives` must be between 1 and 1000",
                    );
                }
            }
            ResourceKind::Topic | ResourceKind::Bucket => {}
        }
    }

    fn key_attributes(
        &mut self,
        key: &Spanned<BTreeMap<Spanned<String>, crate::types::KeyType>>,
        what: &str,
    ) {
        if key.len() != 1 {
            self.error(
                key.span,
                format!(
                    "`{what}` must name exactly one attribute, found {}",
                    key.len()
                ),
            )
            .hint = Some(format!(
                "write `{what}: {{ id: string }}`; use `sort_key` for a second attribute"
            ));
        }
        for attr in key.keys() {
            let ok = attr
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && attr.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && attr.len() <= 255;
            if !ok {
                self.error(
                    attr.span,
                    format!(
                        "key attribute `{}` must use letters, digits and `_`",
                        **attr
                    ),
                );
            }
        }
    }

    fn function(&mut self, name: &Spanned<Name>, f: &Function, dir: &Path, check_files: bool) {
        let handler = &f.handler;
        if check_files {
            self.handler_file(handler, dir);
        }
        let runtime = f
            .runtime
            .as_ref()
            .or(self.manifest.defaults.runtime.as_ref());
        if let Some(rt) = runtime
            && rt.language() != handler.language()
        {
            let span = if f.runtime.is_some() {
                rt.span
            } else {
                handler.span
            };
            let d = self.error(
                span,
                format!("runtime `{}` cannot run handler `{}`", **rt, handler.file),
            );
            if f.runtime.is_none() {
                d.label = Some(format!(
                    "`{}` comes from `defaults.runtime` on line {}",
                    **rt, rt.span.line
                ));
            }
            d.hint = Some(format!(
                "use a {} runtime for this file, or set `runtime:` on function `{name}`",
                match handler.language() {
                    crate::types::Language::Python => "Python (`python3.12`)",
                    crate::types::Language::Node => "Node.js (`nodejs22`)",
                }
            ));
        }
        if let Some(c) = f
            .concurrency
            .as_ref()
            .or(self.manifest.defaults.concurrency.as_ref())
            && let Some(max) = &c.max
            && !(1..=1000).contains(&**max)
        {
            self.error(max.span, "`concurrency.max` must be between 1 and 1000")
                .hint = Some(
                "it is the most invocations that run at once; leave it out for the default of 10"
                    .into(),
            );
        }
        for trigger in &f.triggers {
            self.trigger(name, f, trigger);
        }
        let mut seen: BTreeMap<&str, Span> = BTreeMap::new();
        for grant in &f.uses {
            if let Some(first) = seen.insert(grant.resource.as_str(), grant.resource.span) {
                self.error(
                    grant.resource.span,
                    format!(
                        "function `{name}` lists resource `{}` twice in `uses`",
                        *grant.resource
                    ),
                )
                .label = Some(format!("first listed on line {}", first.line));
                continue;
            }
            let Some(kind) = self.resource_kind(&grant.resource, None) else {
                continue;
            };
            if !kind.access_levels().contains(&grant.access) {
                let allowed: Vec<String> = kind
                    .access_levels()
                    .iter()
                    .map(|a| format!("`{a}`"))
                    .collect();
                self.error(
                    grant.access.span,
                    format!(
                        "`{}` access does not apply to {kind} `{}`",
                        *grant.access, *grant.resource
                    ),
                )
                .hint = Some(format!("a {kind} allows {}", allowed.join(", ")));
            }
        }
    }

    fn handler_file(&mut self, handler: &Spanned<crate::types::Handler>, dir: &Path) {
        let path = dir.join(&handler.file);
        if path.is_file() {
            self.handler_inside(handler, dir, &path);
            return;
        }
        let parent = path.parent().unwrap_or(dir);
        let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let siblings: Vec<String> = std::fs::read_dir(parent)
            .map(|rd| {
                rd.filter_map(|e| e.ok()?.file_name().into_string().ok())
                    .collect()
            })
            .unwrap_or_default();
        let hint = match did_you_mean(file_name, siblings.iter().map(String::as_str)) {
            Some(best) => format!("did you mean `{}`?", handler.file.replace(file_name, best)),
            None if path.exists() => "the handler must be a file, not a directory".into(),
            None if !parent.is_dir() => {
                format!(
                    "directory `{}/` does not exist next to the manifest",
                    handler.dir()
                )
            }
            None => "handler paths are relative to the directory that holds the manifest".into(),
        };
        self.error(
            handler.span,
            format!("handler file `{}` does not exist", handler.file),
        )
        .hint = Some(hint);
    }

    /// Refuses a handler file that a symlink on its path (the file or a folder) leads out of the
    /// project: packages never follow links out of it.
    fn handler_inside(
        &mut self,
        handler: &Spanned<crate::types::Handler>,
        dir: &Path,
        path: &Path,
    ) {
        let (Ok(project), Ok(real)) = (dir.canonicalize(), path.canonicalize()) else {
            return;
        };
        if real.starts_with(&project) {
            return;
        }
        // The first link on the way is the one to name.
        let mut at = dir.to_path_buf();
        let mut link = handler.file.clone();
        for part in handler.file.split('/') {
            at.push(part);
            if at
                .symlink_metadata()
                .is_ok_and(|m| m.file_type().is_symlink())
            {
                link = at
                    .strip_prefix(dir)
                    .unwrap_or(&at)
                    .to_string_lossy()
                    .into_owned();
                break;
            }
        }
        self.error(
            handler.span,
            format!(
                "handler file `{}` is outside the project: `{link}` is a symlink to `{}`",
                handler.file,
                at.canonicalize().unwrap_or(real).display()
            ),
        )
        .hint = Some(
            "packages never follow links out of the project; move the code into it, or the manifest above it".into(),
        );
    }

    /// The kind of the resource `name`, or an error pointing at the reference.
    fn resource_kind(
        &mut self,
        name: &Spanned<Name>,
        wanted: Option<ResourceKind>,
    ) -> Option<ResourceKind> {
        if let Some(r) = self.manifest.resources.get(name.as_str()) {
            return Some(*r.kind);
        }
        if self.broken.resources.contains(name.as_str()) {
            return None; // its own error was reported where it is declared
        }
        let candidates: Vec<&str> = self
            .manifest
            .resources
            .iter()
            .filter(|(_, r)| wanted.is_none_or(|w| *r.kind == w))
            .map(|(n, _)| n.as_str())
            .collect();
        let hint = match did_you_mean(name.as_str(), candidates.iter().copied()) {
            Some(best) => format!("did you mean `{best}`?"),
            None if candidates.is_empty() => match wanted {
                Some(kind) => {
                    format!("declare it under `resources:` as `{name}: {{ type: {kind} }}`")
                }
                None => format!(
                    "declare it under `resources:`, e.g. `{name}: {{ type: table, key: {{ id: string }} }}`"
                ),
            },
            None => format!(
                "declared resources: {}",
                candidates
                    .iter()
                    .map(|c| format!("`{c}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        self.error(name.span, format!("unknown resource `{name}`"))
            .hint = Some(hint);
        None
    }

    fn trigger(&mut self, function: &Spanned<Name>, f: &Function, trigger: &Spanned<Trigger>) {
        let wanted = match &trigger.value {
            Trigger::Http(_) => None,
            Trigger::Schedule(s) => {
                self.schedule(s);
                None
            }
            Trigger::Queue(q) => {
                if let Some(b) = &q.batch_size
                    && !(1..=10_000).contains(&**b)
                {
                    self.error(b.span, "`batch_size` must be between 1 and 10000")
                        .hint = Some(
                        "it is the most messages per invocation; leave it out for one at a time"
                            .into(),
                    );
                }
                Some(ResourceKind::Queue)
            }
            Trigger::Topic(_) => Some(ResourceKind::Topic),
            Trigger::Bucket(b) => {
                self.event_list(&b.events, "bucket");
                Some(ResourceKind::Bucket)
            }
            Trigger::Table(t) => {
                self.event_list(&t.events, "table");
                if let Some(b) = &t.batch_size
                    && !(1..=10_000).contains(&**b)
                {
                    self.error(b.span, "`batch_size` must be between 1 and 10000");
                }
                Some(ResourceKind::Table)
            }
        };
        let (Some(wanted), Some(target)) = (wanted, trigger.resource()) else {
            return;
        };
        let Some(kind) = self.resource_kind(target, Some(wanted)) else {
            return;
        };
        if kind != wanted {
            let same_kind: Vec<String> = self
                .manifest
                .resources
                .iter()
                .filter(|(_, r)| *r.kind == wanted)
                .map(|(n, _)| format!("`{n}`"))
                .collect();
            let hint = if same_kind.is_empty() {
                format!("declare a {wanted} resource, or use a `{kind}` trigger for a {kind}")
            } else {
                format!(
                    "{wanted} resources: {}; or use a `{kind}` trigger for a {kind}",
                    same_kind.join(", ")
                )
            };
            self.error(
                target.span,
                format!("a `{wanted}` trigger needs a {wanted}, but `{target}` is a {kind}"),
            )
            .hint = Some(hint);
            return;
        }
        if let (Trigger::Queue(_), Some(queue)) =
            (&trigger.value, self.manifest.resources.get(target.as_str()))
        {
            let visibility = queue
                .visibility_timeout
                .as_ref()
                .map(|v| v.as_millis())
                .unwrap_or(30_000);
            let timeout = f
                .timeout
                .as_ref()
                .or(self.manifest.defaults.timeout.as_ref())
                .map(|t| t.as_millis())
                .unwrap_or(crate::DEFAULT_TIMEOUT.as_millis());
            if visibility < timeout {
                self.error(target.span, format!(
                    "queue `{target}` hides a received message for {} but `{function}` may run for {}",
                    crate::types::Duration::from_secs(visibility / 1000),
                    crate::types::Duration::from_secs(timeout.div_ceil(1000)),
                ))
                .hint = Some(format!("set `visibility_timeout` on queue `{target}` to at least the function's timeout, or the message is delivered twice"));
            }
        }
    }

    fn event_list<T: PartialEq + std::fmt::Debug>(&mut self, events: &Spanned<Vec<T>>, what: &str) {
        if events.is_empty() {
            self.error(
                events.span,
                format!("`events` of a {what} trigger cannot be empty"),
            );
        }
        for (i, e) in events.iter().enumerate() {
            if events[..i].contains(e) {
                self.error(
                    events.span,
                    format!("`events` lists `{}` twice", format!("{e:?}").to_lowercase()),
                );
            }
        }
    }

    fn schedule(&mut self, s: &ScheduleTrigger) {
        let expr = &s.expression;
        if let Err(e) = nimbus_schedule::parse(expr) {
            let span = inner_span(expr.span, expr.value.as_str(), e.offset);
            let d = self.error(span, e.message.clone());
            d.hint = e.hint.clone();
        }
        if let Some(tz) = &s.timezone
            && let Err(e) = nimbus_schedule::validate_timezone(tz)
        {
            let d = self.error(tz.span, e.message.clone());
            d.hint = e.hint.clone();
        }
    }

    /// Functions in the order they are written in the file.
    fn in_file_order(&self) -> Vec<(&'_ Spanned<Name>, &'_ Function)> {
        let mut functions: Vec<_> = self.manifest.functions.iter().collect();
        functions.sort_by_key(|(name, _)| (name.span.line, name.span.column));
        functions
    }

    /// Routes two functions (or one twice) would share, and pairs whose precedence differs
    /// between platforms (`crate::routes::crossed`). `ANY` beside a named method on the same
    /// path is fine: the named method wins everywhere. Functions that `only:` keeps apart
    /// (other providers or other stages) never share a gateway, so their routes never meet.
    fn routes(&mut self) {
        type Seen<'a> = (HttpMethod, &'a RoutePath, &'a Name, Span, Option<&'a Only>);
        let mut all: Vec<Seen<'_>> = Vec::new();
        let mut found = Vec::new();
        for (name, f) in self.in_file_order() {
            let only = f.only.as_ref().map(|o| &o.value);
            for trigger in &f.triggers {
                let Trigger::Http(http) = &trigger.value else {
                    continue;
                };
                let seen: Vec<_> = all
                    .iter()
                    .filter(|s| Only::overlap(s.4, only))
                    .map(|s| (s.0, s.1, s.2, s.3))
                    .collect();
                let (method, path) = (*http.method, &http.path.value);
                let shape = path.shape();
                let methods_meet = |m: HttpMethod| {
                    m == method || m == HttpMethod::Any || method == HttpMethod::Any
                };
                if let Some((_, _, other, span)) = seen
                    .iter()
                    .find(|(m, p, _, _)| p.shape() == shape && *m == method)
                {
                    found.push(
                        Diagnostic::error(
                            http.path.span,
                            format!(
                                "route `{method} {path}` is already taken by function `{other}` (line {})",
                                span.line
                            ),
                        )
                        .with_label("second route for the same method and path")
                        .with_hint("give each method and path to one function; paths differing only in parameter names are the same route"),
                    );
                    continue;
                }
                if let Some((m, p, other, span)) = seen
                    .iter()
                    .find(|(m, p, _, _)| methods_meet(*m) && crate::routes::crossed(p, path))
                {
                    found.push(
                        Diagnostic::error(
                            http.path.span,
                            format!(
                                "route `{method} {path}` and `{m} {p}` of function `{other}` (line {}) both match `{}`, and each is more specific at another segment",
                                span.line,
                                witness(p, path)
                            ),
                        )
                        .with_label("platforms disagree on which of these routes wins")
                        .with_hint("make one route at least as specific as the other at every segment (a literal where the other has a parameter), or serve both with one route and branch in the handler"),
                    );
                    continue;
                }
                if let Some((m, p, other, span)) = seen
                    .iter()
                    .find(|(m, p, _, _)| crate::routes::method_crossed(*m, p, method, path))
                {
                    let (specific, named) = if *m == HttpMethod::Any {
                        (format!("{m} {p}"), format!("{method} {path}"))
                    } else {
                        (format!("{method} {path}"), format!("{m} {p}"))
                    };
                    found.push(
                        Diagnostic::error(
                            http.path.span,
                            format!(
                                "route `{method} {path}` and `{m} {p}` of function `{other}` (line {}) both match `{}`: `{specific}` has the more specific path, `{named}` the named method",
                                span.line,
                                witness(p, path)
                            ),
                        )
                        .with_label("platforms disagree on which of these routes wins")
                        .with_hint(format!("name the method on the more specific path too (not `ANY`), or use `ANY` on both; the more specific path then wins everywhere ({})", "docs/routing.md")),
                    );
                    continue;
                }
                all.push((method, path, name, http.path.span, only));
            }
        }
        self.diags.extend(found);
    }

    fn queue_consumers(&mut self) {
        let mut consumers: BTreeMap<&str, (&Name, Span)> = BTreeMap::new();
        let mut found = Vec::new();
        for (name, f) in self.in_file_order() {
            for trigger in &f.triggers {
                let Trigger::Queue(q) = &trigger.value else {
                    continue;
                };
                if let Some((first, span)) = consumers.get(q.name.as_str()).copied()
                    && first != &name.value
                {
                    found.push(
                        Diagnostic::error(q.name.span, format!("queue `{}` is already consumed by function `{first}`", *q.name))
                            .with_label(format!("first consumed on line {}", span.line))
                            .with_hint("a queue delivers each message to one consumer; publish to a `topic` to fan out to several functions"),
                    );
                } else {
                    consumers
                        .entry(q.name.as_str())
                        .or_insert((name, q.name.span));
                }
            }
        }
        self.diags.extend(found);
    }

    fn unused_resources(&mut self) {
        for name in self.manifest.resources.keys() {
            let used = self.manifest.functions.values().any(|f| {
                f.uses.iter().any(|u| u.resource.as_str() == name.as_str())
                    || f.triggers
                        .iter()
                        .any(|t| t.resource().is_some_and(|r| r.as_str() == name.as_str()))
            });
            if !used {
                self.diags.push(
                    Diagnostic::warning(
                        name.span,
                        format!("resource `{name}` is not used by any function"),
                    )
                    .with_hint("reference it in a function's `uses` or `triggers`, or remove it"),
                );
            }
        }
    }
}

/// A request path both `a` and `b` match: each segment the literal of either, else `x`.
fn witness(a: &RoutePath, b: &RoutePath) -> String {
    use crate::routes::{Segment, segments};
    let (a, b) = (segments(a), segments(b));
    let len = a.len().max(b.len());
    let mut out = String::new();
    for i in 0..len {
        let lit = [a.get(i), b.get(i)]
            .into_iter()
            .flatten()
            .find_map(|s| match s {
                Segment::Literal(l) => Some(*l),
                _ => None,
            });
        out.push('/');
        out.push_str(lit.unwrap_or("x"));
    }
    if out.is_empty() { "/".into() } else { out }
}

/// The span of a part of a string value, `offset` characters in (quotes accounted for).
fn inner_span(span: Span, text: &str, offset: Option<usize>) -> Span {
    let Some(offset) = offset else { return span };
    let quoted = span.end_column.saturating_sub(span.column) as usize == text.chars().count() + 2;
    let start = span.column + u32::from(quoted) + offset as u32;
    let rest: String = text.chars().skip(offset).collect();
    let len = rest.find([' ', ')']).map(|n| n.max(1)).unwrap_or(1) as u32;
    Span::at(span.line, start, len)
}

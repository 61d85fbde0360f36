//! Holding an app graph against one provider's capabilities.

use nimbus_diagnostic::Diagnostic;
use nimbus_graph::{
    AppGraph, FunctionNode, ResourceNode, ResourceSpec, TriggerKind, TriggerNode, TriggerSpec,
};
use nimbus_manifest::{Auth, Runtime};
use nimbus_schedule::ScheduleExpr;

use crate::Capabilities;
use crate::RuntimeSupport;
use crate::capabilities::{Range, ResourceCapability};

/// Everything in `graph` that the provider described by `caps` cannot do, at the manifest line.
pub fn check(graph: &AppGraph, caps: &Capabilities) -> Vec<Diagnostic> {
    check_at(graph, caps, &crate::today())
}

/// [`check`] as of `today` (`YYYY-MM-DD`), which decides whether a runtime is retired.
pub fn check_at(graph: &AppGraph, caps: &Capabilities, today: &str) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    for resource in graph.resources.values() {
        match caps.resource(resource.kind) {
            None => diags.push(Diagnostic::error(
                resource.span,
                format!("{} has no {} resources", caps.name, resource.kind),
            )),
            Some(cap) => queue_limits(resource, cap, caps, &mut diags),
        }
    }
    for f in graph.functions.values() {
        function(f, caps, today, &mut diags);
    }
    crate::external::check(graph, caps, &mut diags);
    crate::cors::check(graph, caps, &mut diags);
    crate::extras::check(graph, caps, &mut diags);
    diags
}

/// A runtime the provider does not offer, or whose support has ended, with the current ones of
/// the same language.
fn runtime(f: &FunctionNode, caps: &Capabilities, today: &str, diags: &mut Vec<Diagnostic>) {
    let current: Vec<String> = Runtime::ALL
        .iter()
        .filter(|r| {
            r.language() == f.runtime.language()
                && matches!(
                    caps.runtime_support(**r, today),
                    RuntimeSupport::Supported(_)
                )
        })
        .map(|r| format!("`{r}`"))
        .collect();
    let hint = match current.as_slice() {
        [] => format!("{} offers no current runtime for this language", caps.name),
        [one] => format!("use {one}"),
        [rest @ .., last] => format!("use {} or {last}", rest.join(", ")),
    };
    let message = match caps.runtime_support(f.runtime, today) {
        RuntimeSupport::Supported(_) => return,
        RuntimeSupport::Unsupported(why) => {
            format!(
                "{} does not support runtime `{}`: {why}",
                caps.name, f.runtime
            )
        }
        RuntimeSupport::Retired {
            id,
            deprecated,
            blocked,
        } => {
            let blocked = match blocked {
                Some(b) if today >= b => format!("; it accepts no new functions since {b}"),
                Some(b) => format!("; it accepts no new functions from {b}"),
                None => String::new(),
            };
            format!(
                "runtime `{}` is retired on {}: support for `{id}` ended on {deprecated}{blocked}",
                f.runtime, caps.name
            )
        }
    };
    diags.push(Diagnostic::error(f.spans.runtime, message).with_hint(hint));
}

fn function(f: &FunctionNode, caps: &Capabilities, today: &str, diags: &mut Vec<Diagnostic>) {
    let provider = caps.id.as_str();
    // A deploy must not silently drop a variable the code needs.
    if !caps.secrets.supported {
        for (var, secret) in &f.secrets {
            let span = f.secret_spans.get(var).copied().unwrap_or(f.spans.name);
            diags.push(
                Diagnostic::error(
                    span,
                    format!(
                        "secrets are not yet supported for {provider}; supported: {} \
                         (`{var}` of function `{}` reads secret `{secret}`)",
                        crate::ProviderId::with_secrets(),
                        f.name
                    ),
                )
                .with_hint("deploy with `-p local`, or pass the value another way for now"),
            );
        }
    }
    runtime(f, caps, today, diags);
    if caps.effective_memory(f.memory_mb).is_none() {
        let m = &caps.memory;
        let range = if m.sizes.is_empty() {
            format!("{} to {} MiB", m.min, m.max)
        } else {
            format!(
                "up to {} MiB (instance sizes {})",
                m.max,
                m.sizes
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        diags.push(
            Diagnostic::error(
                f.spans.memory,
                format!(
                    "function `{}` asks for {} MiB; {} allows {range}",
                    f.name, f.memory_mb, caps.name
                ),
            )
            .with_label(format!(
                "too {} for {provider}",
                if f.memory_mb < m.min {
                    "small"
                } else {
                    "large"
                }
            ))
            .with_hint(format!(
                "set `memory` on function `{}` to a value between {} and {}",
                f.name, m.min, m.max
            )),
        );
    }
    if f.concurrency > caps.concurrency.max {
        diags.push(Diagnostic::error(
            f.spans.concurrency,
            format!(
                "function `{}` allows {} concurrent invocations; {} allows at most {}",
                f.name, f.concurrency, caps.name, caps.concurrency.max
            ),
        ));
    }
    timeout(f, caps, diags);
    text(f, caps, diags);
    alone(f, caps, diags);
    for t in &f.triggers {
        trigger(f, t, caps, diags);
    }
}

/// A queue's visibility timeout, retention and receives against the provider's ranges.
fn queue_limits(
    r: &ResourceNode,
    cap: &ResourceCapability,
    caps: &Capabilities,
    diags: &mut Vec<Diagnostic>,
) {
    let ResourceSpec::Queue {
        visibility_timeout_ms,
        retention_ms,
        max_receives,
    } = &r.spec
    else {
        return;
    };
    let secs = |ms: u64| ms.div_ceil(1000);
    let mut limit =
        |range: Option<Range>, value: u64, span, what: &str, show: fn(u64) -> String| {
            let Some(range) = range else { return };
            if range.contains(value) {
                return;
            }
            let (min, max) = (show(range.min), show(range.max));
            diags.push(
                Diagnostic::error(
                    span,
                    format!(
                        "queue `{}` has a `{what}` of {}; on {} it must be between {min} and {max}",
                        r.name,
                        show(value),
                        caps.id
                    ),
                )
                .with_label(format!("outside {}'s range", caps.id))
                .with_hint(format!(
                    "set `{what}` of queue `{}` between {min} and {max}",
                    r.name
                )),
            );
        };
    limit(
        cap.visibility_timeout,
        secs(*visibility_timeout_ms),
        r.spans.visibility_timeout,
        "visibility_timeout",
        duration,
    );
    limit(
        cap.retention,
        secs(*retention_ms),
        r.spans.retention,
        "retention",
        duration,
    );
    if let Some(n) = max_receives {
        limit(
            cap.max_receives,
            u64::from(*n),
            r.spans.max_receives,
            "max_receives",
            |n| n.to_string(),
        );
    }
}

/// Seconds as the manifest writes durations, in the largest unit that divides them (`10m`).
fn duration(secs: u64) -> String {
    match secs {
        s if s > 0 && s % 3600 == 0 => format!("{}h", s / 3600),
        s if s > 0 && s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// Free text over the provider's length limits.
fn text(f: &FunctionNode, caps: &Capabilities, diags: &mut Vec<Diagnostic>) {
    if let (Some(max), Some(description)) = (caps.text.description, &f.description) {
        let chars = description.chars().count();
        if chars > max {
            diags.push(
                Diagnostic::error(
                    f.spans.description,
                    format!(
                        "the description of function `{}` is {chars} characters long; {} takes at most {max}",
                        f.name, caps.name
                    ),
                )
                .with_label(format!("over the {} limit", caps.id))
                .with_hint(format!("shorten it to {max} characters or fewer")),
            );
        }
    }
}

/// A trigger kind that must be a function's only kind (`alone` in the capabilities), mixed
/// with another kind: an error at the first trigger of another kind.
fn alone(f: &FunctionNode, caps: &Capabilities, diags: &mut Vec<Diagnostic>) {
    for t in &f.triggers {
        let kind = t.spec.kind();
        let Some(reason) = caps.trigger(kind).and_then(|c| c.alone.as_ref()) else {
            continue;
        };
        if let Some(other) = f.triggers.iter().find(|o| o.spec.kind() != kind) {
            diags.push(
                Diagnostic::error(
                    other.span,
                    format!(
                        "function `{}` has `{kind}` and `{}` triggers; on {} {reason}",
                        f.name,
                        other.spec.kind(),
                        caps.name
                    ),
                )
                .with_hint(format!(
                    "move the `{}` trigger to a function of its own (two functions can share one handler file)",
                    other.spec.kind()
                )),
            );
            return;
        }
    }
}

fn timeout(f: &FunctionNode, caps: &Capabilities, diags: &mut Vec<Diagnostic>) {
    let secs = f.timeout_ms.div_ceil(1000);
    let kinds: Vec<Option<TriggerKind>> = if f.triggers.is_empty() {
        vec![None]
    } else {
        f.triggers.iter().map(|t| Some(t.spec.kind())).collect()
    };
    let Some((kind, limit)) = kinds
        .into_iter()
        .map(|k| (k, caps.max_timeout_secs(k)))
        .filter(|(_, limit)| secs > *limit)
        .min_by_key(|(_, limit)| *limit)
    else {
        return;
    };
    let why = match kind {
        Some(TriggerKind::Http) => format!(
            "HTTP functions on {} time out after at most {limit} s",
            caps.name
        ),
        Some(k) => format!("{} limits {k}-triggered functions to {limit} s", caps.name),
        None => format!("{} limits functions to {limit} s", caps.name),
    };
    diags.push(
        Diagnostic::error(
            f.spans.timeout,
            format!("function `{}` has a timeout of {secs} s; {why}", f.name),
        )
        .with_label(format!("over the {provider} limit", provider = caps.id))
        .with_hint(format!(
            "set `timeout: {limit}s` (or less) on function `{}`",
            f.name
        )),
    );
}

fn trigger(f: &FunctionNode, t: &TriggerNode, caps: &Capabilities, diags: &mut Vec<Diagnostic>) {
    let kind = t.spec.kind();
    let Some(cap) = caps.trigger(kind) else {
        diags.push(Diagnostic::error(
            t.span,
            format!(
                "{} cannot run a function from a `{kind}` trigger",
                caps.name
            ),
        ));
        return;
    };
    if let Some(reason) = &cap.unsupported {
        diags.push(Diagnostic::error(
            t.span,
            format!(
                "{} cannot run a function from a `{kind}` trigger: {reason}",
                caps.name
            ),
        ));
        return;
    }
    match &t.spec {
        TriggerSpec::Http { auth, .. } => {
            if let (Auth::ApiKey(key), Some(header)) = (auth, &cap.api_key_header)
                && !key.header.eq_ignore_ascii_case(header)
            {
                diags.push(
                    Diagnostic::error(
                        t.span,
                        format!(
                            "{} reads API keys from the `{header}` header, not `{}`",
                            caps.name, key.header
                        ),
                    )
                    .with_hint(format!("set `auth: {{ api_key: {{ header: {header} }} }}`")),
                );
            }
            let mode = match auth {
                Auth::None => "none",
                Auth::ApiKey(_) => "api_key",
                Auth::Jwt(_) => "jwt",
            };
            if let Some(modes) = &cap.auth
                && !modes.iter().any(|m| m == mode)
            {
                let others = modes
                    .iter()
                    .map(|m| format!("`{m}`"))
                    .collect::<Vec<_>>()
                    .join(", ");
                diags.push(
                    Diagnostic::error(
                        t.span,
                        format!(
                            "{} does not support `{mode}` auth on HTTP routes",
                            caps.name
                        ),
                    )
                    .with_hint(format!("{} routes can use {others}", caps.id)),
                );
            }
        }
        TriggerSpec::Schedule {
            expression,
            timezone,
        } => {
            if let Some(zones) = &cap.timezones
                && !zones.iter().any(|z| z == timezone)
            {
                diags.push(
                    Diagnostic::error(
                        t.span,
                        format!(
                            "{} runs schedules in {} only, not `{timezone}`",
                            caps.name,
                            zones
                                .iter()
                                .map(|z| format!("`{z}`"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    )
                    .with_hint("convert the expression to UTC and drop `timezone`"),
                );
            }
            let Ok(expr) = nimbus_schedule::parse(expression) else {
                return;
            };
            if let Err(e) = translate(&expr, &caps.schedule_format) {
                diags.push(
                    Diagnostic::error(
                        t.value_span,
                        format!(
                            "schedule `{expression}` cannot be expressed for {}: {}",
                            e.target, e.reason
                        ),
                    )
                    .with_hint_opt(e.hint.clone()),
                );
            }
        }
        TriggerSpec::Queue { batch_size, .. } | TriggerSpec::Table { batch_size, .. } => {
            if let Some(max) = cap.max_batch
                && *batch_size > max
            {
                let message = format!(
                    "`batch_size: {batch_size}` of function `{}` exceeds {}'s {max}",
                    f.name, caps.name
                );
                diags.push(match &cap.batch_note {
                    Some(note) => Diagnostic::warning(t.span, format!("{message}; {note}"))
                        .with_hint(
                            "the handler still receives a list of messages; it will hold one",
                        ),
                    None => Diagnostic::error(t.span, message)
                        .with_hint(format!("set `batch_size` to at most {max}")),
                });
            }
            if let TriggerSpec::Table { events, .. } = &t.spec {
                unsupported_events(
                    t,
                    caps,
                    cap.events.as_deref(),
                    events.iter().map(|e| format!("{e:?}").to_lowercase()),
                    diags,
                );
            }
        }
        TriggerSpec::Bucket { events, .. } => {
            unsupported_events(
                t,
                caps,
                cap.events.as_deref(),
                events.iter().map(|e| format!("{e:?}").to_lowercase()),
                diags,
            );
        }
        TriggerSpec::Topic { .. } => {}
    }
}

fn unsupported_events(
    t: &TriggerNode,
    caps: &Capabilities,
    supported: Option<&[String]>,
    events: impl Iterator<Item = String>,
    diags: &mut Vec<Diagnostic>,
) {
    let Some(supported) = supported else { return };
    for e in events {
        if !supported.contains(&e) {
            diags.push(Diagnostic::error(
                t.span,
                format!(
                    "{} cannot deliver `{e}` events of a `{}` trigger",
                    caps.name,
                    t.spec.kind()
                ),
            ));
        }
    }
}

fn translate(expr: &ScheduleExpr, format: &str) -> Result<String, nimbus_schedule::Unsupported> {
    match format {
        "aws" => nimbus_schedule::to_aws(expr),
        "gcp" => nimbus_schedule::to_gcp(expr),
        "azure" => nimbus_schedule::to_azure(expr),
        _ => Ok(expr.to_string()),
    }
}

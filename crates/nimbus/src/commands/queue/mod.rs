//! `nimbus queue peek | send | purge | redrive` and `nimbus topic publish`: the dead-letter and
//! messaging tools, on the queues and topics the manifest declares.
//!
//! A name is the manifest's; it is checked against the manifest (an unknown one lists the
//! declared ones; `--dlq` on a queue without `dead_letter:` says so) and resolved to what is
//! deployed: locally through the runtime's admin API ([`local`]), on a cloud through its own
//! API and the deployment's state, as `invoke` and `info` find things ([`aws`]: SQS and SNS;
//! [`gcp`]: Pub/Sub; [`azure`]: Queue Storage). How each provider peeks, redrives and purges is
//! data (`[queue_tools]` in `providers/<id>/capabilities.toml`), printed with the result.
//! Every command prints one JSON document with `--output json`.

mod aws;
mod azure;
mod gcp;
mod local;

use std::collections::BTreeMap;

use nimbus_graph::{AppGraph, ResourceSpec};
use nimbus_manifest::ResourceKind;
use nimbus_provider::ProviderId;
use serde_json::Value;

use crate::cli::{Global, MessageArgs, QueueAction, TopicAction, Which};
use crate::output::{Failure, Out};

/// A message to send or publish.
#[derive(Debug, Clone)]
pub(crate) struct Message {
    pub body: String,
    pub attributes: BTreeMap<String, String>,
}

/// One operation, with the manifest's name of its queue or topic.
#[derive(Debug)]
pub(crate) enum Op {
    Peek { queue: String, dlq: bool, max: u32 },
    Send { queue: String, message: Message },
    Purge { queue: String, dlq: bool },
    Redrive { queue: String },
    Publish { topic: String, message: Message },
}

impl Op {
    /// The resource named, and its kind.
    fn resource(&self) -> (&str, ResourceKind) {
        match self {
            Op::Peek { queue, .. }
            | Op::Send { queue, .. }
            | Op::Purge { queue, .. }
            | Op::Redrive { queue } => (queue, ResourceKind::Queue),
            Op::Publish { topic, .. } => (topic, ResourceKind::Topic),
        }
    }

    /// Whether the operation is on the queue's dead-letter queue.
    fn needs_dlq(&self) -> bool {
        matches!(
            self,
            Op::Peek { dlq: true, .. } | Op::Purge { dlq: true, .. } | Op::Redrive { .. }
        )
    }
}

/// Runs `nimbus queue ...`.
pub fn run(global: &Global, action: &QueueAction, out: &Out) -> Result<(), Failure> {
    let (op, which) = match action {
        QueueAction::Peek {
            name,
            dlq,
            max,
            which,
        } => (
            Op::Peek {
                queue: name.clone(),
                dlq: *dlq,
                max: *max,
            },
            which,
        ),
        QueueAction::Redrive { name, which } => (
            Op::Redrive {
                queue: name.clone(),
            },
            which,
        ),
        QueueAction::Purge {
            name,
            dlq,
            yes,
            which,
        } => {
            if !yes {
                let what = match dlq {
                    true => format!("the dead-letter queue of `{name}`"),
                    false => format!("queue `{name}`"),
                };
                return Err(Failure::user(format!(
                    "purging deletes every message of {what} for good (no provider can bring them back); pass --yes to confirm\n  hint: `nimbus queue peek {name}{}` shows what it holds",
                    if *dlq { " --dlq" } else { "" }
                )));
            }
            (
                Op::Purge {
                    queue: name.clone(),
                    dlq: *dlq,
                },
                which,
            )
        }
        QueueAction::Send {
            name,
            message,
            which,
        } => (
            Op::Send {
                queue: name.clone(),
                message: read_message(message)?,
            },
            which,
        ),
    };
    dispatch(global, &op, which, out)
}

/// Runs `nimbus topic publish`.
pub fn publish(global: &Global, action: &TopicAction, out: &Out) -> Result<(), Failure> {
    let TopicAction::Publish {
        name,
        message,
        which,
    } = action;
    let op = Op::Publish {
        topic: name.clone(),
        message: read_message(message)?,
    };
    dispatch(global, &op, which, out)
}

fn dispatch(global: &Global, op: &Op, which: &Which, out: &Out) -> Result<(), Failure> {
    let provider = super::provider(global)?;
    let caps = &provider.capabilities().queue_tools;
    let answer = if provider == ProviderId::Local {
        local::run(global, which, op, out)?
    } else {
        super::cloud::local_only(None, which)?;
        let compiled = super::load_deployed(global, out)?;
        let where_ = compiled.loaded.path.display().to_string();
        check(&compiled.graph, op, &where_)?;
        if let (Op::Publish { .. }, Some(why)) = (op, &caps.publish_unsupported) {
            return Err(Failure::user(format!(
                "`nimbus topic publish` is not available on {provider}: {why}"
            )));
        }
        if let (Op::Send { message, .. }, Some(why)) = (op, &caps.attributes_unsupported)
            && !message.attributes.is_empty()
        {
            return Err(Failure::user(format!(
                "--attr is not available on {provider}: {why}"
            )));
        }
        if let (Op::Peek { max, .. }, Some(cap)) = (op, caps.peek_max)
            && *max > cap
        {
            eprintln!(
                "note: {} returns at most {cap} messages per peek",
                caps.service
            );
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Failure::Internal(e.into()))?;
        let graph = &compiled.graph;
        runtime.block_on(async {
            match provider {
                ProviderId::Aws => aws::run(global, graph, op).await,
                ProviderId::Gcp => gcp::run(graph, op).await,
                ProviderId::Azure => azure::run(graph, op).await,
                ProviderId::Local => unreachable!("handled above"),
            }
        })?
    };
    print(op, provider, &answer, out);
    Ok(())
}

/// Checks the name against the manifest: declared, of the right kind, and with a dead-letter
/// queue when the operation needs one.
pub(crate) fn check(graph: &AppGraph, op: &Op, manifest: &str) -> Result<(), Failure> {
    let (name, kind) = op.resource();
    let declared: Vec<&str> = graph
        .resources
        .values()
        .filter(|r| r.kind == kind)
        .map(|r| r.name.as_str())
        .collect();
    match graph.resources.get(name) {
        Some(r) if r.kind == kind => {
            let has_dlq = matches!(
                r.spec,
                ResourceSpec::Queue {
                    max_receives: Some(_),
                    ..
                }
            );
            if op.needs_dlq() && !has_dlq {
                return Err(no_dlq(name));
            }
            Ok(())
        }
        found => Err(unknown(
            name,
            kind,
            found.map(|r| r.kind),
            &declared,
            manifest,
        )),
    }
}

/// The error of a queue without a dead-letter queue.
pub(crate) fn no_dlq(name: &str) -> Failure {
    Failure::user(format!(
        "queue `{name}` has no dead-letter queue\n  hint: give it one in the manifest (`{name}: {{ type: queue, dead_letter: {{ max_receives: 5 }} }}`) and deploy; failed messages then land there"
    ))
}

/// The error of a name that is not a declared queue (or topic).
pub(crate) fn unknown(
    name: &str,
    kind: ResourceKind,
    found: Option<ResourceKind>,
    declared: &[&str],
    place: &str,
) -> Failure {
    let kind = kind.as_str();
    let what = match found {
        Some(k) => format!("`{name}` is a {} in {place}, not a {kind}", k.as_str()),
        None => format!("no {kind} `{name}` is declared in {place}"),
    };
    let hint = match (
        nimbus_diagnostic::did_you_mean(name, declared.iter().copied()),
        declared.is_empty(),
    ) {
        (_, true) => format!("it declares no {kind}"),
        (Some(best), false) => format!(
            "did you mean `{best}`? declared {kind}s: {}",
            list(declared)
        ),
        (None, false) => format!("declared {kind}s: {}", list(declared)),
    };
    Failure::user(format!("{what}\n  hint: {hint}"))
}

fn list(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The body (`TEXT` or `@FILE`) and the `KEY=VALUE` attributes.
fn read_message(args: &MessageArgs) -> Result<Message, Failure> {
    let body = match args.body.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path).map_err(|e| {
            Failure::user(format!(
                "--body @{path}: cannot read `{path}`: {e}\n  hint: `@` reads a UTF-8 text file; without `@` the text is the body"
            ))
        })?,
        None => args.body.clone(),
    };
    let mut attributes = BTreeMap::new();
    for a in &args.attrs {
        match a.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                attributes.insert(k.trim().to_string(), v.to_string());
            }
            _ => {
                return Err(Failure::user(format!(
                    "--attr `{a}`: write KEY=VALUE (`--attr source=cli`)"
                )));
            }
        }
    }
    Ok(Message { body, attributes })
}

/// Prints the answer: JSON on stdout, or the messages on stdout and the rest on stderr.
fn print(op: &Op, provider: ProviderId, answer: &Value, out: &Out) {
    if out.json {
        println!(
            "{}",
            serde_json::to_string_pretty(answer).expect("JSON prints")
        );
        return;
    }
    let caps = &provider.capabilities().queue_tools;
    let n = |key: &str| answer[key].as_u64().unwrap_or_default();
    match op {
        Op::Peek { queue, dlq, .. } => {
            let messages = answer["messages"].as_array().cloned().unwrap_or_default();
            let of = match dlq {
                true => format!("dead-letter queue of `{queue}`"),
                false => format!("queue `{queue}`"),
            };
            let physical = answer["physical"].as_str().unwrap_or_default();
            match messages.is_empty() {
                true => eprintln!("the {of} ({physical}) is empty"),
                false => eprintln!(
                    "{} message(s) in the {of} ({physical}){}",
                    messages.len(),
                    answer["total"]
                        .as_u64()
                        .map(|t| format!(", of {t}"))
                        .unwrap_or_default()
                ),
            }
            for m in &messages {
                let count = m["receive_count"]
                    .as_u64()
                    .map(|c| format!("  received {c}x"))
                    .unwrap_or_default();
                println!("{}{count}", m["id"].as_str().unwrap_or_default());
                println!("  body: {}", m["body"].as_str().unwrap_or_default());
                if let Some(attrs) = m["attributes"].as_object().filter(|a| !a.is_empty()) {
                    let attrs: Vec<String> = attrs
                        .iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                        .collect();
                    println!("  attributes: {}", attrs.join(", "));
                }
            }
            if provider != ProviderId::Local {
                eprintln!("note: {}", caps.peek);
            }
            if *dlq && !messages.is_empty() {
                eprintln!("hint: `nimbus queue redrive {queue}` moves them back to `{queue}`");
            }
        }
        Op::Send { queue, .. } => eprintln!(
            "sent {} to queue `{queue}`",
            answer["id"].as_str().unwrap_or_default()
        ),
        Op::Purge { queue, dlq } => {
            let what = match dlq {
                true => format!("the dead-letter queue of `{queue}`"),
                false => format!("queue `{queue}`"),
            };
            match answer["purged"].as_u64() {
                Some(count) => eprintln!("purged {count} message(s) from {what}"),
                None => eprintln!("purged {what} ({})", caps.purge),
            }
        }
        Op::Redrive { queue } => {
            match answer["started"].as_bool() {
                Some(true) => eprintln!(
                    "started moving the dead letters of `{queue}` back to it (task {}); `nimbus queue peek {queue} --dlq` shows what is left",
                    answer["task"].as_str().unwrap_or_default()
                ),
                _ => eprintln!(
                    "moved {} message(s) from the dead-letter queue back to `{queue}`",
                    n("moved")
                ),
            }
            if let Some(how) = answer["how"].as_str() {
                eprintln!("note: {how}");
            }
        }
        Op::Publish { topic, .. } => eprintln!(
            "published to topic `{topic}`{}",
            answer["subscribers"]
                .as_array()
                .map(|s| format!(" ({} subscriber(s))", s.len()))
                .unwrap_or_default()
        ),
    }
}

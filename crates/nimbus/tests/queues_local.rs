//! `nimbus queue …` and `nimbus topic publish` on the local runtime, through the real binary:
//! a message sent with `queue send` runs its handler; a failing handler's message lands in the
//! dead-letter queue, where `peek --dlq` shows it (without consuming it); `redrive` moves it
//! back and the fixed handler runs it; `purge` needs `--yes`; a topic publish reaches its
//! subscriber; unknown names list the declared ones. The durable store is read back with the
//! store crate, never through nimbus's own commands alone.

use std::path::Path;
use std::process::{Command, Output};

#[path = "support/poll.rs"]
mod poll;
use poll::eventually;

use nimbus_local_store::{KeyType, Store, TableKey};
use serde_json::{Value, json};

const APP: &str = r#"version: 1
service: dlqs
resources:
  payments: { type: queue, visibility_timeout: 1s, dead_letter: { max_receives: 2 } }
  plain: { type: queue }
  events: { type: topic }
  seen: { type: table, key: { id: string } }
functions:
  charge:
    handler: fns/charge.py:handler
    timeout: 1s
    triggers: [ { queue: { name: payments, batch_size: 1 } } ]
    uses: [ { resource: seen, access: write } ]
  audit:
    handler: fns/audit.py:handler
    triggers: [ { topic: events } ]
    uses: [ { resource: seen, access: write } ]
"#;

/// Declines every payment until the flag file named in the message exists.
const CHARGE: &str = r#"import json, os

def handler(event, context):
    for m in event['messages']:
        body = json.loads(m['body'])
        if not os.path.exists(body['flag']):
            raise ValueError('card declined')
        context.resources['seen'].put({'id': body['id'], 'source': m['attributes'].get('source', '')})
"#;

const AUDIT: &str = r#"import json

def handler(event, context):
    for m in event['messages']:
        context.resources['seen'].put({'id': json.loads(m['body'])['id'], 'source': 'topic'})
"#;

struct App {
    dir: tempfile::TempDir,
    data: tempfile::TempDir,
}

impl App {
    fn nimbus(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_nimbus"))
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("NIMBUS_PROVIDER")
            .env_remove("NIMBUS_STAGE")
            .env("NO_COLOR", "1")
            .env("XDG_DATA_HOME", self.data.path())
            .output()
            .expect("nimbus runs")
    }

    /// Requires exit 0; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.nimbus(args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "nimbus {}:\n{}\n{}",
            args.join(" "),
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    /// Requires exit 1; returns stderr.
    fn fails(&self, args: &[&str]) -> String {
        let out = self.nimbus(args);
        assert_eq!(
            out.status.code(),
            Some(1),
            "nimbus {}:\n{}\n{}",
            args.join(" "),
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stderr)
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["--output", "json"]);
        let out = self.ok(&all);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
    }

    fn store(&self) -> Store {
        Store::open(&self.dir.path().join(".nimbus/local/dlqs/dev/state.db")).unwrap()
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.nimbus(&["remove", "--yes"]);
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn seen(store: &Store, id: &str) -> Option<Value> {
    let key = TableKey {
        partition: ("id".into(), KeyType::String),
        sort: None,
    };
    store.table_get("seen", &key, &json!({ "id": id })).unwrap()
}

fn write(dir: &Path, path: &str, content: &str) {
    let p = dir.join(path);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, content).unwrap();
}

#[test]
fn a_dead_lettered_message_is_peeked_redriven_and_handled_again() {
    let app = App {
        dir: tempfile::tempdir().unwrap(),
        data: tempfile::tempdir().unwrap(),
    };
    let dir = app.dir.path();
    write(dir, "nimbus.yaml", APP);
    write(dir, "fns/charge.py", CHARGE);
    write(dir, "fns/audit.py", AUDIT);
    app.ok(&["deploy", "--port", "0"]);
    let store = app.store();
    let flag = dir.join("fixed");
    let body = json!({ "id": "m1", "flag": flag }).to_string();

    // Sent from the command line: the handler fails on every receive, then it is dead-lettered.
    let sent = app.json(&[
        "queue",
        "send",
        "payments",
        "--body",
        &body,
        "--attr",
        "source=cli",
    ]);
    let id = sent["id"].as_str().unwrap().to_string();
    let dlq = eventually(30, "the message in the dead-letter queue", || {
        let p = app.json(&["queue", "peek", "payments", "--dlq"]);
        (p["messages"].as_array()?.len() == 1).then_some(p)
    });
    let m = &dlq["messages"][0];
    assert_eq!(m["id"], id.as_str(), "{dlq}");
    assert_eq!(m["body"], body.as_str(), "{dlq}");
    assert_eq!(m["attributes"]["source"], "cli", "{dlq}");
    assert_eq!(dlq["physical"], "payments-dlq", "{dlq}");
    assert!(seen(&store, "m1").is_none());

    // Peeking changes nothing: the same message, the same receive count, still visible.
    let again = app.json(&["queue", "peek", "payments", "--dlq"]);
    assert_eq!(
        again["messages"], dlq["messages"],
        "a peek consumed nothing"
    );
    let raw = store.peek_all("payments-dlq").unwrap();
    assert_eq!(raw.len(), 1);
    assert!(!raw[0].leased, "peek leased nothing");
    let human = app.nimbus(&["queue", "peek", "payments", "--dlq"]);
    let (out, err) = (text(&human.stdout), text(&human.stderr));
    assert!(
        out.contains(&id) && out.contains("body: {") && out.contains("attributes: source=cli"),
        "{out}"
    );
    assert!(err.contains("nimbus queue redrive payments"), "{err}");
    assert_eq!(app.json(&["queue", "peek", "payments"])["total"], 0);

    // Fixed, then redriven: back in `payments`, handled, gone from the dead-letter queue.
    std::fs::write(&flag, "").unwrap();
    let moved = app.json(&["queue", "redrive", "payments"]);
    assert_eq!(moved["moved"], 1, "{moved}");
    let row = eventually(30, "the redriven message handled", || seen(&store, "m1"));
    assert_eq!(row["source"], "cli", "its attributes came back with it");
    assert!(store.peek_all("payments-dlq").unwrap().is_empty());
    eventually(10, "the handled message acknowledged", || {
        store.peek_all("payments").ok()?.is_empty().then_some(())
    });
    // A message sent now is handled at once (the consumer is woken, not polled).
    let body2 = json!({ "id": "m2", "flag": flag }).to_string();
    app.ok(&["queue", "send", "payments", "--body", &body2]);
    eventually(10, "a sent message handled", || seen(&store, "m2"));
    assert!(store.peek_all("payments-dlq").unwrap().is_empty());
    // Purging the dead-letter queue leaves the queue itself alone.
    let body3 = json!({ "id": "m3", "flag": dir.join("never") }).to_string();
    app.ok(&["queue", "send", "payments", "--body", &body3]);
    eventually(30, "m3 dead-lettered", || {
        (store.peek_all("payments-dlq").ok()?.len() == 1).then_some(())
    });
    let purged = app.json(&["queue", "purge", "payments", "--dlq", "--yes"]);
    assert_eq!(purged["purged"], 1, "{purged}");
    assert_eq!(purged["physical"], "payments-dlq", "{purged}");
    assert!(store.peek_all("payments-dlq").unwrap().is_empty());

    // A body from a file; purge refuses without --yes, then deletes what `plain` holds.
    write(dir, "msg.json", "{\"n\": 1}");
    app.ok(&["queue", "send", "plain", "--body", "@msg.json"]);
    app.ok(&["queue", "send", "plain", "--body", "two"]);
    let plain = app.json(&["queue", "peek", "plain", "--max", "1"]);
    assert_eq!(plain["total"], 2, "{plain}");
    assert_eq!(plain["messages"].as_array().unwrap().len(), 1, "--max 1");
    assert_eq!(plain["messages"][0]["body"], "{\"n\": 1}");
    let err = app.fails(&["queue", "purge", "plain"]);
    assert!(err.contains("pass --yes to confirm"), "{err}");
    assert_eq!(store.peek_all("plain").unwrap().len(), 2, "nothing purged");
    let purged = app.json(&["queue", "purge", "plain", "--yes"]);
    assert_eq!(purged["purged"], 2, "{purged}");
    assert!(store.peek_all("plain").unwrap().is_empty());

    // A topic publish reaches its subscriber.
    let published = app.json(&["topic", "publish", "events", "--body", "{\"id\": \"t1\"}"]);
    assert_eq!(published["subscribers"], json!(["audit"]), "{published}");
    let row = eventually(30, "the subscriber ran", || seen(&store, "t1"));
    assert_eq!(row["source"], "topic");

    // Wrong names: the declared ones are listed; a queue without a dead-letter queue says so.
    let err = app.fails(&["queue", "peek", "paymnts"]);
    assert!(err.contains("no queue `paymnts`"), "{err}");
    assert!(err.contains("did you mean `payments`?"), "{err}");
    assert!(err.contains("`payments`, `plain`"), "{err}");
    let err = app.fails(&["queue", "peek", "events"]);
    assert!(err.contains("`events` is a topic"), "{err}");
    let err = app.fails(&["queue", "peek", "plain", "--dlq"]);
    assert!(
        err.contains("queue `plain` has no dead-letter queue"),
        "{err}"
    );
    assert!(err.contains("dead_letter: { max_receives: 5 }"), "{err}");
    let err = app.fails(&["queue", "redrive", "plain"]);
    assert!(err.contains("has no dead-letter queue"), "{err}");
    let err = app.fails(&["topic", "publish", "payments", "--body", "x"]);
    assert!(err.contains("`payments` is a queue"), "{err}");
    let err = app.fails(&["queue", "send", "plain", "--body", "x", "--attr", "novalue"]);
    assert!(err.contains("write KEY=VALUE"), "{err}");
    let err = app.fails(&["queue", "send", "plain", "--body", "@missing.json"]);
    assert!(err.contains("cannot read `missing.json`"), "{err}");
}

#[test]
fn the_queue_commands_document_themselves_and_need_a_running_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    write(dir.path(), "nimbus.yaml", APP);
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_nimbus"))
            .args(args)
            .current_dir(dir.path())
            .env_remove("NIMBUS_PROVIDER")
            .env("XDG_DATA_HOME", data.path())
            .output()
            .unwrap()
    };
    let help = text(&run(&["queue", "--help"]).stdout);
    assert!(help.contains("nimbus queue redrive payments"), "{help}");
    for sub in ["peek", "redrive", "purge", "send"] {
        let out = run(&["queue", sub, "--help"]);
        assert!(out.status.success(), "queue {sub} --help");
    }
    let help = text(&run(&["topic", "publish", "--help"]).stdout);
    assert!(help.contains("--attr <KEY=VALUE>"), "{help}");
    let out = run(&["queue", "peek", "payments"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("no local runtime is running"), "{err}");
    assert!(err.contains("nimbus deploy"), "{err}");
}

//! `nimbus queue … -p azure` against Azurite's queue service: the stage's queues and their
//! poison queues (`<queue>-poison`, the Functions host's dead letters), as the deployment
//! creates them, are made and read here with Microsoft's `azure-storage-queue` client — never
//! with nimbus's own code — and written as the Functions host does (base64 text). The binary
//! reaches Azurite through `NIMBUS_AZURE_QUEUE_ENDPOINT` with an account SAS it signs with
//! `NIMBUS_AZURE_STORAGE_KEY`.

#[path = "../../nimbus-azure/tests/common/mod.rs"]
#[allow(missing_docs)]
mod common;

use std::process::{Command, Output};

use common::azurite::{ACCOUNT, Azurite, KEY};
use serde_json::Value;

const APP: &str = r#"version: 1
service: qtools
resources:
  payments: { type: queue, dead_letter: { max_receives: 5 } }
  plain: { type: queue }
  missing: { type: queue }
  events: { type: topic }
functions:
  ping:
    handler: app.py:handler
    triggers: [ { http: { method: GET, path: /ping } } ]
providers:
  azure: { location: westeurope, resource_group: qtools }
"#;

/// Runs `script` with Microsoft's queue client (`svc`: a QueueServiceClient on Azurite,
/// `B64`: the host's base64 policies); returns what it prints as JSON.
fn python(azurite: &Azurite, script: &str) -> Value {
    let prelude = "import sys, json\nfrom azure.storage.queue import QueueServiceClient, TextBase64EncodePolicy, TextBase64DecodePolicy\nsvc = QueueServiceClient.from_connection_string(sys.argv[1])\ndef q(name):\n    return svc.get_queue_client(name, message_encode_policy=TextBase64EncodePolicy(), message_decode_policy=TextBase64DecodePolicy())\n";
    let out = Command::new(nimbus_test_support::required_venv_tool("python"))
        .arg("-c")
        .arg(format!("{prelude}{script}"))
        .arg(azurite.connection_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

fn nimbus(dir: &std::path::Path, azurite: &Azurite, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nimbus"))
        .args(args)
        .args(["-p", "azure"])
        .current_dir(dir)
        .env_remove("NIMBUS_PROVIDER")
        .env_remove("NIMBUS_STAGE")
        .env("NO_COLOR", "1")
        .env(
            "AZURE_SUBSCRIPTION_ID",
            "00000000-0000-0000-0000-0000000000c1",
        )
        .env("NIMBUS_AZURE_ACCESS_TOKEN", "unused-token")
        .env("NIMBUS_AZURE_ARM_ENDPOINT", "http://127.0.0.1:9")
        .env(
            "NIMBUS_AZURE_QUEUE_ENDPOINT",
            format!("http://127.0.0.1:{}/{ACCOUNT}", azurite.queue),
        )
        .env("NIMBUS_AZURE_STORAGE_KEY", KEY)
        .output()
        .expect("nimbus runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ok(out: Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn fails(out: Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stderr)
}

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

#[test]
fn poison_messages_are_peeked_and_redriven_and_queues_sent_to_and_cleared_on_azurite() {
    let azurite = Azurite::start();
    let project = tempfile::tempdir().unwrap();
    let dir = project.path();
    std::fs::write(dir.join("nimbus.yaml"), APP).unwrap();
    std::fs::write(
        dir.join("app.py"),
        "def handler(e, c):\n    return 'pong'\n",
    )
    .unwrap();
    // As the deployment makes them; a message the host gave up on, in the poison queue.
    python(
        &azurite,
        "for n in ['payments', 'payments-poison', 'plain']:\n    svc.create_queue(n)\nq('payments-poison').send_message('{\"order\": \"42\"}')\nprint('null')",
    );

    let peeked = json(&ok(nimbus(
        dir,
        &azurite,
        &["queue", "peek", "payments", "--dlq", "--output", "json"],
    )));
    assert_eq!(
        peeked["physical"], "devstoreaccount1/payments-poison",
        "{peeked}"
    );
    assert_eq!(
        peeked["messages"][0]["body"], "{\"order\": \"42\"}",
        "{peeked}"
    );
    assert_eq!(peeked["messages"][0]["receive_count"], 0, "{peeked}");
    let seen = python(
        &azurite,
        "print(json.dumps([m.dequeue_count for m in q('payments-poison').peek_messages(max_messages=32)]))",
    );
    assert_eq!(seen, serde_json::json!([0]), "a peek dequeued nothing");

    let moved = json(&ok(nimbus(
        dir,
        &azurite,
        &["queue", "redrive", "payments", "--output", "json"],
    )));
    assert_eq!(moved["moved"], 1, "{moved}");
    let state = python(
        &azurite,
        "print(json.dumps({'back': [m.content for m in q('payments').receive_messages()], 'poison': [m.content for m in q('payments-poison').peek_messages()]}))",
    );
    assert_eq!(
        state["back"],
        serde_json::json!(["{\"order\": \"42\"}"]),
        "{state}"
    );
    assert_eq!(state["poison"], serde_json::json!([]), "{state}");

    // Send (base64 text, as the host reads it), then clear with --yes.
    ok(nimbus(
        dir,
        &azurite,
        &["queue", "send", "plain", "--body", "hello"],
    ));
    let got = python(
        &azurite,
        "print(json.dumps([m.content for m in q('plain').peek_messages()]))",
    );
    assert_eq!(got, serde_json::json!(["hello"]));
    let err = fails(nimbus(dir, &azurite, &["queue", "purge", "plain"]));
    assert!(err.contains("pass --yes"), "{err}");
    ok(nimbus(dir, &azurite, &["queue", "purge", "plain", "--yes"]));
    let got = python(
        &azurite,
        "print(json.dumps([m.content for m in q('plain').peek_messages()]))",
    );
    assert_eq!(got, serde_json::json!([]));

    // What Azure cannot do, said before any call; names that are not deployed or declared.
    let err = fails(nimbus(
        dir,
        &azurite,
        &["queue", "send", "plain", "--body", "x", "--attr", "k=v"],
    ));
    assert!(err.contains("--attr is not available on azure"), "{err}");
    let err = fails(nimbus(
        dir,
        &azurite,
        &["topic", "publish", "events", "--body", "x"],
    ));
    assert!(err.contains("Service Bus"), "{err}");
    let err = fails(nimbus(dir, &azurite, &["queue", "peek", "missing"]));
    assert!(
        err.contains("queue `missing` does not exist in storage account `devstoreaccount1`"),
        "{err}"
    );
    let err = fails(nimbus(dir, &azurite, &["queue", "peek", "paymnts"]));
    assert!(err.contains("did you mean `payments`?"), "{err}");
    let err = fails(nimbus(dir, &azurite, &["queue", "redrive", "plain"]));
    assert!(
        err.contains("queue `plain` has no dead-letter queue"),
        "{err}"
    );
}

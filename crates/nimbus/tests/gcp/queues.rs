//! `nimbus queue … -p gcp` and `nimbus topic publish -p gcp` on Google's Pub/Sub emulator
//! (behind the discovery-validated double): names resolve to the topics and subscriptions the
//! deploy created; what each command did is checked on the emulator directly, through probe
//! subscriptions of our own. No function runs here, so a dead letter is published to the
//! dead-letter topic directly, as Pub/Sub does after `maxDeliveryAttempts`.

use base64::Engine as _;
use serde_json::{Value, json};

use super::{Shop, common::cloud::CloudEnv, json_of, text};

const PROJECT: &str = "nimbus-cli-queues";

const APP: &str = r#"version: 1
service: qtools
resources:
  payments: { type: queue, visibility_timeout: 30s, dead_letter: { max_receives: 5 } }
  plain: { type: queue }
  events: { type: topic }
functions:
  charge:
    handler: app.py:handler
    triggers: [ { queue: { name: payments } } ]
providers:
  gcp: { project: nimbus-cli-queues, region: europe-west1 }
"#;

/// A call to the Pub/Sub emulator itself.
fn pubsub(env: &CloudEnv, method: &str, path: &str, body: Value) -> Value {
    let out = std::process::Command::new("curl")
        .args(["-sS", "-X", method, &format!("{}/v1/{path}", env.pubsub)])
        .args([
            "-H",
            "content-type: application/json",
            "-d",
            &body.to_string(),
        ])
        .output()
        .expect("curl");
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

/// A pull subscription of ours on `topic`.
fn probe(env: &CloudEnv, topic: &str) -> String {
    let sub = format!("projects/{PROJECT}/subscriptions/probe-{topic}");
    pubsub(
        env,
        "PUT",
        &sub,
        json!({ "topic": format!("projects/{PROJECT}/topics/{topic}") }),
    );
    sub
}

/// Pulls and acknowledges what `sub` holds: (data, attributes) of each message.
fn drain(env: &CloudEnv, sub: &str) -> Vec<(String, Value)> {
    let got = pubsub(
        env,
        "POST",
        &format!("{sub}:pull"),
        json!({ "maxMessages": 10, "returnImmediately": true }),
    );
    let received = got["receivedMessages"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let ack_ids: Vec<Value> = received.iter().map(|r| r["ackId"].clone()).collect();
    if !ack_ids.is_empty() {
        pubsub(
            env,
            "POST",
            &format!("{sub}:acknowledge"),
            json!({ "ackIds": ack_ids }),
        );
    }
    received
        .iter()
        .map(|r| {
            let data = base64::engine::general_purpose::STANDARD
                .decode(r["message"]["data"].as_str().unwrap_or_default())
                .unwrap();
            (
                String::from_utf8(data).unwrap(),
                r["message"]["attributes"].clone(),
            )
        })
        .collect()
}

pub(super) fn queue_tools_on_pubsub(env: &CloudEnv) {
    let shop = Shop::new(PROJECT);
    let dir = shop.dir.path();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            std::fs::remove_dir_all(&path).unwrap();
        } else {
            std::fs::remove_file(&path).unwrap();
        }
    }
    std::fs::write(dir.join("nimbus.yaml"), APP).unwrap();
    std::fs::write(
        dir.join("app.py"),
        "def handler(event, context):\n    pass\n",
    )
    .unwrap();

    let err = text(
        &shop
            .run(env, &["queue", "peek", "payments", "--dlq"])
            .stderr,
    );
    assert!(
        err.contains("the dead-letter queue of `payments` is not deployed on GCP"),
        "{err}"
    );
    shop.expect(env, &["deploy"], 0);
    let on_payments = probe(env, "qtools-dev-payments");
    let on_events = probe(env, "qtools-dev-events");
    let plain_sub = format!("projects/{PROJECT}/subscriptions/qtools-dev-plain");

    // A dead letter, with an attribute.
    let data = base64::engine::general_purpose::STANDARD.encode("{\"order\": \"42\"}");
    pubsub(
        env,
        "POST",
        &format!("projects/{PROJECT}/topics/qtools-dev-payments-dlq:publish"),
        json!({ "messages": [{ "data": data, "attributes": { "source": "checkout" } }] }),
    );
    let peeked = json_of(&shop.expect(
        env,
        &["queue", "peek", "payments", "--dlq", "--output", "json"],
        0,
    ));
    assert_eq!(
        peeked["physical"],
        format!("projects/{PROJECT}/subscriptions/qtools-dev-payments-dlq"),
        "{peeked}"
    );
    assert_eq!(
        peeked["messages"][0]["body"], "{\"order\": \"42\"}",
        "{peeked}"
    );
    assert_eq!(peeked["messages"][0]["attributes"]["source"], "checkout");
    // Given back at once: a second peek sees it again.
    let again = json_of(&shop.expect(
        env,
        &["queue", "peek", "payments", "--dlq", "--output", "json"],
        0,
    ));
    assert_eq!(
        again["messages"][0]["id"], peeked["messages"][0]["id"],
        "{again}"
    );

    // The consumed queue is a push subscription: refused, with the way to its dead letters.
    let out = shop.run(env, &["queue", "peek", "payments"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("push subscription"), "{err}");
    assert!(err.contains("--dlq"), "{err}");

    // Redrive: republished to the queue's topic, acknowledged on the dead-letter subscription.
    let moved = json_of(&shop.expect(
        env,
        &["queue", "redrive", "payments", "--output", "json"],
        0,
    ));
    assert_eq!(moved["moved"], 1, "{moved}");
    let back = drain(env, &on_payments);
    assert_eq!(back.len(), 1, "{back:?}");
    assert_eq!(back[0].0, "{\"order\": \"42\"}");
    assert_eq!(back[0].1["source"], "checkout");
    let left = json_of(&shop.expect(
        env,
        &["queue", "peek", "payments", "--dlq", "--output", "json"],
        0,
    ));
    assert_eq!(left["messages"], json!([]), "{left}");

    // Send to a pull queue, peek it, purge it (seek to now).
    shop.expect(
        env,
        &["queue", "send", "plain", "--body", "hello", "--attr", "k=v"],
        0,
    );
    let peeked = json_of(&shop.expect(env, &["queue", "peek", "plain", "--output", "json"], 0));
    assert_eq!(peeked["messages"][0]["body"], "hello", "{peeked}");
    assert_eq!(peeked["messages"][0]["attributes"]["k"], "v", "{peeked}");
    let out = shop.run(env, &["queue", "purge", "plain"]);
    assert_eq!(out.status.code(), Some(1), "purge needs --yes");
    shop.expect(env, &["queue", "purge", "plain", "--yes"], 0);
    assert_eq!(drain(env, &plain_sub), Vec::new(), "purged");

    // Publish to the topic: our probe subscription gets it.
    shop.expect(
        env,
        &["topic", "publish", "events", "--body", "{\"id\": \"t1\"}"],
        0,
    );
    let got = drain(env, &on_events);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0, "{\"id\": \"t1\"}");

    // Wrong names: the declared ones are listed.
    let err = text(&shop.run(env, &["queue", "peek", "paymnts"]).stderr);
    assert!(err.contains("did you mean `payments`?"), "{err}");
    let err = text(
        &shop
            .run(env, &["queue", "purge", "plain", "--dlq", "--yes"])
            .stderr,
    );
    assert!(
        err.contains("queue `plain` has no dead-letter queue"),
        "{err}"
    );
    assert!(
        env.violations(PROJECT).is_empty(),
        "{:?}",
        env.violations(PROJECT)
    );
}

//! `nimbus queue … -p aws` and `nimbus topic publish -p aws` against moto: names resolve to
//! the queues and topic the deploy created (from its state); what each command did is checked
//! with the AWS CLI. moto runs no Lambda code, so a dead-lettered message is put into the
//! dead-letter queue with the AWS CLI, as SQS would after `maxReceiveCount` failed receives.
//! moto does not implement `StartMessageMoveTask`: the redrive falls back to receive + send +
//! delete, and says so.

use serde_json::Value;

use crate::{Shop, json, text};

const APP: &str = r#"version: 1
service: qtools
resources:
  payments: { type: queue, visibility_timeout: 30s, dead_letter: { max_receives: 3 } }
  plain: { type: queue }
  events: { type: topic }
functions:
  ping:
    handler: app.py:handler
    triggers: [ { http: { method: GET, path: /ping } } ]
"#;

impl Shop {
    fn queue_url(&self, name: &str) -> String {
        let name = format!("qtools-{}-{name}", self.stage);
        self.aws(&["sqs", "get-queue-url", "--queue-name", &name])["QueueUrl"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Receives (and deletes) what the queue holds, with the AWS CLI.
    fn drain(&self, url: &str) -> Vec<Value> {
        let got = self.aws(&[
            "sqs",
            "receive-message",
            "--queue-url",
            url,
            "--max-number-of-messages",
            "10",
            "--message-attribute-names",
            "All",
            "--wait-time-seconds",
            "1",
        ]);
        let messages = got["Messages"].as_array().cloned().unwrap_or_default();
        for m in &messages {
            self.aws.aws_raw(&[
                "sqs",
                "delete-message",
                "--queue-url",
                url,
                "--receipt-handle",
                m["ReceiptHandle"].as_str().unwrap(),
            ]);
        }
        messages
    }

    fn depth(&self, url: &str) -> u64 {
        let a = self.aws(&[
            "sqs",
            "get-queue-attributes",
            "--queue-url",
            url,
            "--attribute-names",
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
        ]);
        [
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
        ]
        .iter()
        .map(|k| a["Attributes"][k].as_str().unwrap().parse::<u64>().unwrap())
        .sum()
    }

    fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
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
}

#[test]
fn dead_letters_are_peeked_redriven_and_queues_sent_to_and_purged_on_sqs() {
    let project = tempfile::tempdir().unwrap();
    std::fs::write(project.path().join("nimbus.yaml"), APP).unwrap();
    std::fs::write(
        project.path().join("app.py"),
        "def handler(event, context):\n    return 'pong'\n",
    )
    .unwrap();
    let app = Shop::of(project.path().to_str().unwrap(), "qt");

    // Before a deploy: nothing to resolve the name to.
    let err = app.fails(&["queue", "peek", "payments", "--dlq"]);
    assert!(
        err.contains("the dead-letter queue of `payments` is not deployed to aws (stage `qt`)"),
        "{err}"
    );
    app.deploy();
    let (source, dlq, plain) = (
        app.queue_url("payments"),
        app.queue_url("payments-dlq"),
        app.queue_url("plain"),
    );

    // A message dead-lettered by SQS, with an attribute.
    app.aws(&[
        "sqs",
        "send-message",
        "--queue-url",
        &dlq,
        "--message-body",
        "{\"order\": \"42\"}",
        "--message-attributes",
        "source={DataType=String,StringValue=checkout}",
    ]);
    let peeked = json(&app.ok(&["queue", "peek", "payments", "--dlq", "--output", "json"]));
    // The URL recorded by the deploy (made through the recording proxy, so its port differs).
    assert!(
        peeked["physical"]
            .as_str()
            .unwrap()
            .ends_with("/123456789012/qtools-qt-payments-dlq"),
        "{peeked}"
    );
    let m = &peeked["messages"][0];
    assert_eq!(m["body"], "{\"order\": \"42\"}", "{peeked}");
    assert_eq!(m["attributes"]["source"], "checkout", "{peeked}");
    assert_eq!(m["receive_count"], 1, "{peeked}");
    // Still there and visible: a second peek sees it again (SQS counted the receive).
    let again = json(&app.ok(&["queue", "peek", "payments", "--dlq", "--output", "json"]));
    assert_eq!(again["messages"][0]["id"], m["id"], "{again}");
    assert_eq!(again["messages"][0]["receive_count"], 2, "{again}");
    assert_eq!(app.depth(&dlq), 1);
    let human = app.run(&["queue", "peek", "payments", "--dlq"]);
    let err = text(&human.stderr);
    assert!(
        err.contains("VisibilityTimeout=0"),
        "the peek's effect is said: {err}"
    );

    // Redrive: back in the source queue with its attributes; the dead-letter queue is empty.
    let moved = json(&app.ok(&["queue", "redrive", "payments", "--output", "json"]));
    assert_eq!(moved["moved"], 1, "{moved}");
    assert!(
        moved["how"]
            .as_str()
            .unwrap()
            .contains("StartMessageMoveTask"),
        "{moved}"
    );
    assert!(
        app.proxy
            .calls()
            .iter()
            .any(|c| c.operation == "StartMessageMoveTask"),
        "the native move was tried first"
    );
    assert_eq!(app.depth(&dlq), 0);
    let back = app.drain(&source);
    assert_eq!(back.len(), 1, "{back:?}");
    assert_eq!(back[0]["Body"], "{\"order\": \"42\"}");
    assert_eq!(
        back[0]["MessageAttributes"]["source"]["StringValue"],
        "checkout"
    );

    // Send (with an attribute), then purge with --yes.
    let sent = json(&app.ok(&[
        "queue", "send", "plain", "--body", "hello", "--attr", "k=v", "--output", "json",
    ]));
    assert!(!sent["id"].as_str().unwrap().is_empty(), "{sent}");
    app.ok(&["queue", "send", "plain", "--body", "second"]);
    assert_eq!(app.depth(&plain), 2);
    let err = app.fails(&["queue", "purge", "plain"]);
    assert!(err.contains("pass --yes"), "{err}");
    assert_eq!(app.depth(&plain), 2, "nothing purged without --yes");
    app.ok(&["queue", "purge", "plain", "--yes"]);
    assert_eq!(app.depth(&plain), 0);
    app.ok(&["queue", "send", "plain", "--body", "hello", "--attr", "k=v"]);
    let got = app.drain(&plain);
    assert_eq!(got[0]["Body"], "hello");
    assert_eq!(got[0]["MessageAttributes"]["k"]["StringValue"], "v");

    // Publish: an SQS queue subscribed to the topic (raw delivery) receives it.
    let probe = app.aws(&["sqs", "create-queue", "--queue-name", "qtools-probe"])["QueueUrl"]
        .as_str()
        .unwrap()
        .to_string();
    let topic = format!(
        "arn:aws:sns:us-east-1:123456789012:qtools-{}-events",
        app.stage
    );
    app.aws(&[
        "sns",
        "subscribe",
        "--topic-arn",
        &topic,
        "--protocol",
        "sqs",
        "--notification-endpoint",
        "arn:aws:sqs:us-east-1:123456789012:qtools-probe",
        "--attributes",
        "RawMessageDelivery=true",
    ]);
    app.ok(&["topic", "publish", "events", "--body", "{\"id\": \"t1\"}"]);
    let got = app.drain(&probe);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["Body"], "{\"id\": \"t1\"}");

    // Wrong names fail before any AWS call, listing the declared queues.
    app.proxy.clear();
    let err = app.fails(&["queue", "peek", "paymnts"]);
    assert!(err.contains("no queue `paymnts` is declared"), "{err}");
    assert!(err.contains("did you mean `payments`?"), "{err}");
    assert!(err.contains("`payments`, `plain`"), "{err}");
    let err = app.fails(&["queue", "redrive", "plain"]);
    assert!(
        err.contains("queue `plain` has no dead-letter queue"),
        "{err}"
    );
    let err = app.fails(&["queue", "peek", "events"]);
    assert!(err.contains("`events` is a topic"), "{err}");
    let err = app.fails(&["queue", "peek", "plain", "--service", "qtools"]);
    assert!(err.contains("`--service` finds local deployments"), "{err}");
    assert!(app.proxy.calls().is_empty(), "no call was made");
}

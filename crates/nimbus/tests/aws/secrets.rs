//! `examples/secrets` on AWS: `nimbus secret set -p aws` (stdin) stores the value in Secrets
//! Manager; `plan` and `deploy` refuse before any write while it is missing; the deploy gives
//! `pay` alone a reference to the secret's ARN and a policy naming exactly that ARN; `remove`
//! keeps a secret holding a value unless `--force`; `list`, `rm`. Everything is checked with the
//! AWS CLI. The leak test: the value appears in no output (of `secret`, `build`, `plan`,
//! `deploy`, `info`, `logs`, `remove`, text or JSON), no file under `.nimbus/` (the
//! CloudFormation export included), no object of the deployment bucket (the state, the
//! packages), and not in the Lambda configuration.

use serde_json::Value;

use crate::{Shop, json, text};

const CANARY: &str = "sk_live_AWS_CANARY_93d1e07a";

/// `nimbus ARGS -p aws -s STAGE` with `stdin`; asserts the exit code, records every output;
/// returns stdout and stderr together.
fn run(app: &Shop, seen: &mut String, args: &[&str], stdin: Option<&str>, code: i32) -> String {
    let (stdout, stderr) = run_apart(app, seen, args, stdin, code);
    format!("{stdout}{stderr}")
}

/// [`run`], returning stdout and stderr apart.
fn run_apart(
    app: &Shop,
    seen: &mut String,
    args: &[&str],
    stdin: Option<&str>,
    code: i32,
) -> (String, String) {
    let out = super::stdin::output_with_stdin(&mut app.command(args), stdin.map(str::as_bytes));
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    seen.push_str(&format!("{stdout}\n{stderr}\n"));
    assert_eq!(
        out.status.code(),
        Some(code),
        "nimbus {} -p aws:\n{stdout}\n{stderr}",
        args.join(" ")
    );
    (stdout, stderr)
}

fn get_value(app: &Shop, id: &str) -> String {
    let v = app.aws(&["secretsmanager", "get-secret-value", "--secret-id", id]);
    v["SecretString"].as_str().unwrap().to_string()
}

/// The statements of a function role's inline policy that mention Secrets Manager.
fn secret_statements(app: &Shop, function: &str) -> Vec<Value> {
    let doc = app.aws(&[
        "iam",
        "get-role-policy",
        "--role-name",
        &format!("payments-{}-{function}-us-east-1-lambda", app.stage),
        "--policy-name",
        "nimbus",
    ]);
    crate::statements(&doc["PolicyDocument"])
        .into_iter()
        .filter(|s| s.to_string().contains("secretsmanager"))
        .collect()
}

#[test]
fn a_secret_value_reaches_only_secrets_manager() {
    let app = Shop::of("examples/secrets", "sec");
    let stage = app.stage.clone();
    let id = format!("payments-{stage}/payment-key");
    let mut seen = String::new();
    let seen = &mut seen;

    // Missing value: plan and deploy refuse before any write, naming the command.
    for cmd in [&["plan"][..], &["deploy"][..]] {
        let err = run(&app, seen, cmd, None, 1);
        assert!(
            err.contains(&format!("nimbus secret set payment-key -p aws -s {stage}")),
            "{err}"
        );
        assert!(err.contains("payment-key (read by pay)"), "{err}");
    }
    assert_eq!(app.proxy.writes(), Vec::new(), "nothing was changed");
    let listed = json(&run(
        &app,
        seen,
        &["secret", "list", "--output", "json"],
        None,
        0,
    ));
    assert_eq!(listed["secrets"][0]["set"], false, "{listed}");

    // Over Secrets Manager's limit: refused before any call.
    app.proxy.clear();
    let big = "x".repeat(65537);
    let err = run(&app, seen, &["secret", "set", "payment-key"], Some(&big), 1);
    assert!(err.contains("over aws's limit of 65536"), "{err}");
    assert!(app.proxy.calls().is_empty(), "no call was made");

    // Set from stdin (one final newline dropped): created with the value, tagged.
    run(
        &app,
        seen,
        &["secret", "set", "payment-key"],
        Some(&format!("{CANARY}\n")),
        0,
    );
    assert_eq!(
        get_value(&app, &id),
        CANARY,
        "the value, without the newline"
    );
    let described = app.aws(&["secretsmanager", "describe-secret", "--secret-id", &id]);
    let arn = described["ARN"].as_str().unwrap().to_string();
    let tags = described["Tags"].to_string();
    assert!(
        tags.contains("nimbus:service") && tags.contains("payments"),
        "{tags}"
    );
    let listed = json(&run(
        &app,
        seen,
        &["secret", "list", "--output", "json"],
        None,
        0,
    ));
    assert_eq!(listed["secrets"][0]["name"], "payment-key");
    assert_eq!(listed["secrets"][0]["set"], true, "{listed}");
    assert!(listed["secrets"][0]["set_at"].is_string(), "{listed}");

    // Build, plan, deploy, info, logs: the deploy adopts the secret (same ARN).
    run(&app, seen, &["build", "--output", "json"], None, 0);
    run(&app, seen, &["plan", "--output", "json"], None, 0);
    run(&app, seen, &["deploy", "--output", "json"], None, 0);
    run(&app, seen, &["deploy"], None, 0);
    run(&app, seen, &["info", "--output", "json"], None, 0);
    run(&app, seen, &["info"], None, 0);
    run(&app, seen, &["logs", "pay"], None, 0);
    // The recorded secret reads back exactly as lowered: no drift.
    run(
        &app,
        seen,
        &["plan", "--refresh", "--detailed-exitcode"],
        None,
        0,
    );
    let described = app.aws(&["secretsmanager", "describe-secret", "--secret-id", &id]);
    assert_eq!(described["ARN"], arn.as_str(), "adopted, not recreated");
    assert_eq!(get_value(&app, &id), CANARY);

    // pay: only the ARN in its environment; its role reads exactly that ARN. other: neither.
    let pay = app.aws(&[
        "lambda",
        "get-function-configuration",
        "--function-name",
        &format!("payments-{stage}-pay"),
    ]);
    let vars = &pay["Environment"]["Variables"];
    assert_eq!(
        vars["NIMBUS_SECRET_PAYMENT_API_KEY"],
        arn.as_str(),
        "{vars}"
    );
    assert!(vars.get("PAYMENT_API_KEY").is_none(), "{vars}");
    assert!(
        !pay.to_string().contains(CANARY),
        "the value is in pay's configuration"
    );
    assert_eq!(
        secret_statements(&app, "pay"),
        vec![
            serde_json::json!({ "Sid": "ReadSecretPaymentKey", "Effect": "Allow",
            "Action": ["secretsmanager:GetSecretValue"], "Resource": [arn] })
        ]
    );
    let other = app.aws(&[
        "lambda",
        "get-function-configuration",
        "--function-name",
        &format!("payments-{stage}-other"),
    ]);
    assert!(!other.to_string().contains("NIMBUS_SECRET"), "{other}");
    assert_eq!(secret_statements(&app, "other"), Vec::<Value>::new());

    // The leak check: every file under .nimbus/ (builds, the CloudFormation export), every
    // object of the deployment bucket (the state, the packages).
    let mut files = vec![app.dir.path().join(".nimbus")];
    let mut checked = Vec::new();
    while let Some(path) = files.pop() {
        if path.is_symlink() {
            continue; // the shared dependency cache
        }
        if path.is_dir() {
            files.extend(
                std::fs::read_dir(&path)
                    .unwrap()
                    .flatten()
                    .map(|e| e.path()),
            );
        } else {
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !String::from_utf8_lossy(&bytes).contains(CANARY),
                "the value is in {}",
                path.display()
            );
            checked.push(path);
        }
    }
    let template = checked
        .iter()
        .find(|f| f.ends_with("template.json"))
        .unwrap_or_else(|| panic!("no CloudFormation export in {checked:?}"));
    let template = std::fs::read_to_string(template).unwrap();
    assert!(
        template.contains("AWS::SecretsManager::Secret"),
        "{template}"
    );
    let bucket = format!("nimbus-payments-{stage}-123456789012-us-east-1");
    let objects = app.aws(&["s3api", "list-objects-v2", "--bucket", &bucket]);
    let keys: Vec<&str> = objects["Contents"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o["Key"].as_str())
        .collect();
    assert!(keys.iter().any(|k| k.starts_with("state/")), "{keys:?}");
    let scratch = tempfile::tempdir().unwrap();
    for key in &keys {
        let to = scratch.path().join("object");
        app.aws(&[
            "s3api",
            "get-object",
            "--bucket",
            &bucket,
            "--key",
            key,
            to.to_str().unwrap(),
        ]);
        let bytes = std::fs::read(&to).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(CANARY),
            "the value is in s3://{bucket}/{key}"
        );
    }

    // rm, then set, while deployed: a new secret with a new ARN; the next deploy notices and
    // points pay's environment and policy at it.
    run(&app, seen, &["secret", "rm", "payment-key"], None, 0);
    run(
        &app,
        seen,
        &["secret", "set", "payment-key"],
        Some(CANARY),
        0,
    );
    let described = app.aws(&["secretsmanager", "describe-secret", "--secret-id", &id]);
    let new_arn = described["ARN"].as_str().unwrap().to_string();
    assert_ne!(new_arn, arn);
    let out = run(&app, seen, &["deploy"], None, 0);
    assert!(out.contains("deleted and set again"), "{out}");
    let pay = app.aws(&[
        "lambda",
        "get-function-configuration",
        "--function-name",
        &format!("payments-{stage}-pay"),
    ]);
    assert_eq!(
        pay["Environment"]["Variables"]["NIMBUS_SECRET_PAYMENT_API_KEY"],
        new_arn.as_str()
    );
    assert_eq!(
        secret_statements(&app, "pay")[0]["Resource"],
        serde_json::json!([new_arn])
    );

    // remove keeps the secret while it holds a value, like a table; --force deletes it.
    let removed = json(
        &run_apart(
            &app,
            seen,
            &["remove", "--yes", "--output", "json"],
            None,
            0,
        )
        .0,
    );
    let kept: Vec<&str> = removed["retained"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(kept, ["aws.secretsmanager.secret/payment-key"], "{removed}");
    assert_eq!(get_value(&app, &id), CANARY, "kept with its value");
    run(&app, seen, &["remove", "--yes", "--force"], None, 0);
    let gone = app
        .aws
        .aws_raw(&["secretsmanager", "describe-secret", "--secret-id", &id]);
    assert!(!gone.status.success(), "deleted without a recovery window");

    // info and logs need no secret once nothing is deployed; rm deletes at once.
    run(&app, seen, &["info"], None, 0);
    run(&app, seen, &["logs"], None, 0);
    run(
        &app,
        seen,
        &["secret", "set", "payment-key"],
        Some(CANARY),
        0,
    );
    run(&app, seen, &["secret", "rm", "payment-key"], None, 0);
    let gone = app
        .aws
        .aws_raw(&["secretsmanager", "describe-secret", "--secret-id", &id]);
    assert!(!gone.status.success(), "rm deletes the secret");
    let err = run(&app, seen, &["secret", "rm", "payment-key"], None, 1);
    assert!(err.contains("has no value"), "{err}");
    assert!(!seen.contains(CANARY), "the value appeared in an output");
}

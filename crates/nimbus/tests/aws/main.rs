//! AWS contract tests: the real `nimbus` binary deploys the example shop to an AWS endpoint
//! (moto, started here; or `NIMBUS_TEST_AWS_ENDPOINT`, e.g. a LocalStack run elsewhere), and
//! what it created is checked with the AWS CLI — never with nimbus's own code. Every request
//! goes through a recording proxy ([`proxy`]) that counts reads and writes and injects faults.
//!
//! Each test deploys its own stage of its own copy of the shop, so tests never see each
//! other's resources. Installed dependencies are shared through one cache under cargo's target
//! directory, so only the first build of a run installs Pillow.

mod domain;
mod existing;
mod moto;
mod proxy;
mod queues;
mod secrets;

#[path = "../support/stdin.rs"]
mod stdin;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use nimbus_test_support::repo;
use serde_json::Value;

use crate::moto::Endpoint;
use crate::proxy::Proxy;

/// A copy of the shop deployed to one stage, behind a recording proxy.
struct Shop {
    dir: tempfile::TempDir,
    stage: String,
    aws: Endpoint,
    proxy: Proxy,
}

impl Shop {
    fn new(stage: &str) -> Shop {
        Shop::of("examples/shop", stage)
    }

    /// A copy of another example (a folder of the repository) deployed to `stage`.
    fn of(example: &str, stage: &str) -> Shop {
        let aws = Endpoint::start();
        let proxy = Proxy::start(&aws.url);
        // The shop's `reports` bucket exists before it is deployed: it is made elsewhere.
        existing::make_reports_bucket(&aws);
        let dir = tempfile::tempdir().unwrap();
        copy_dir(&repo().join(example), dir.path());
        // One dependency cache for every test of the run (installs are atomic renames).
        let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("nimbus-aws-deps-cache");
        std::fs::create_dir_all(&cache).unwrap();
        std::fs::create_dir_all(dir.path().join(".nimbus")).unwrap();
        std::os::unix::fs::symlink(&cache, dir.path().join(".nimbus/cache")).unwrap();
        let shop = Shop {
            dir,
            stage: stage.to_string(),
            aws,
            proxy,
        };
        if example == "examples/shop" {
            shop.set_payment_key();
        }
        shop
    }

    /// The shop's `charge-payment` reads the secret `payment-key`: its value is set in Secrets
    /// Manager before the first deploy, as a user would, past the recording proxy (the tests
    /// count the deploy's own calls).
    fn set_payment_key(&self) {
        let mut cmd = self.command_to(&self.aws.url, &["secret", "set", "payment-key"]);
        let out = stdin::output_with_stdin(&mut cmd, Some(b"pk_test_shop"));
        assert!(out.status.success(), "secret set: {}", text(&out.stderr));
    }

    fn command(&self, args: &[&str]) -> Command {
        self.command_to(&self.proxy.url, args)
    }

    /// `nimbus ARGS` against the AWS endpoint `url`.
    fn command_to(&self, url: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_nimbus"));
        cmd.args(args)
            .args(["-p", "aws", "-s", &self.stage, "--endpoint-url", url])
            .current_dir(self.dir.path())
            .env_remove("NIMBUS_PROVIDER")
            .env_remove("NIMBUS_STAGE")
            .env_remove("NIMBUS_AWS_ENDPOINT_URL")
            .env("NO_COLOR", "1")
            .envs(moto::credentials());
        cmd
    }

    /// Runs nimbus; returns its output whatever the exit code.
    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("nimbus runs")
    }

    /// Runs nimbus and requires success; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "nimbus {} failed ({}):\n{}\n{}",
            args.join(" "),
            out.status,
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    /// `nimbus deploy --output json`.
    fn deploy(&self) -> Value {
        json(&self.ok(&["deploy", "--output", "json"]))
    }

    fn spawn(&self, args: &[&str]) -> Child {
        self.command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("nimbus starts")
    }

    fn name(&self, neutral: &str) -> String {
        format!("shop-{}-{neutral}", self.stage)
    }

    fn aws(&self, args: &[&str]) -> Value {
        self.aws.aws(args)
    }

    fn function(&self, neutral: &str) -> Value {
        self.aws(&[
            "lambda",
            "get-function",
            "--function-name",
            &self.name(neutral),
        ])
    }

    fn deployment_bucket(&self) -> String {
        format!("nimbus-shop-{}-123456789012-us-east-1", self.stage)
    }

    fn edit(&self, file: &str, append: &str) {
        let path = self.dir.path().join(file);
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str(append);
        std::fs::write(path, text).unwrap();
    }

    /// The write calls that are not the state or the lock.
    fn resource_writes(&self) -> Vec<String> {
        self.proxy
            .writes()
            .into_iter()
            .filter(|c| !c.path.contains("/state/"))
            .map(|c| c.operation)
            .collect()
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let name = e.file_name();
        if [
            ".nimbus",
            "__pycache__",
            ".pytest_cache",
            "tests",
            "node_modules",
        ]
        .iter()
        .any(|n| name == *n)
        {
            continue;
        }
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(&name));
        } else {
            std::fs::copy(e.path(), to.join(&name)).unwrap();
        }
    }
}

fn eventually<T>(secs: u64, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The lock id in an error's `nimbus unlock <id>` hint.
fn unlock_id(err: &str) -> String {
    err.split("nimbus unlock ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| c.is_whitespace() || c == '`').next())
        .unwrap_or_else(|| panic!("no unlock hint: {err}"))
        .to_string()
}

fn strings(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect()
}

/// Every statement of a policy document, with no `*` action and no `Resource: *`.
fn statements(doc: &Value) -> Vec<Value> {
    let list = doc["Statement"].as_array().cloned().unwrap_or_default();
    for s in &list {
        for action in strings(&s["Action"])
            .iter()
            .chain(s["Action"].as_str().map(str::to_string).iter())
        {
            assert!(!action.contains('*'), "wildcard action {action} in {s}");
        }
        let resources: Vec<&Value> = match &s["Resource"] {
            Value::Array(items) => items.iter().collect(),
            other => vec![other],
        };
        for r in resources {
            assert_ne!(r, "*", "Resource * in {s}");
        }
    }
    list
}

fn statement_for<'a>(list: &'a [Value], action: &str) -> &'a Value {
    list.iter()
        .find(|s| strings(&s["Action"]).contains(action) || s["Action"] == action)
        .unwrap_or_else(|| panic!("no statement allows {action}: {list:?}"))
}

/// What of the shop exists in the account, per kind, by name (checked with the AWS CLI).
fn leftovers(shop: &Shop) -> Vec<String> {
    let prefix = format!("shop-{}-", shop.stage);
    let mut left = Vec::new();
    let mut keep = |kind: &str, names: Vec<String>| {
        left.extend(
            names
                .into_iter()
                .filter(|n| n.contains(&prefix))
                .map(|n| format!("{kind} {n}")),
        )
    };
    let names = |v: &Value, list: &str, key: &str| -> Vec<String> {
        v[list]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| i[key].as_str().map(str::to_string))
            .collect()
    };
    let functions = shop.aws(&["lambda", "list-functions"]);
    keep("function", names(&functions, "Functions", "FunctionName"));
    let roles = shop.aws(&["iam", "list-roles"]);
    keep("role", names(&roles, "Roles", "RoleName"));
    let queues = shop.aws(&["sqs", "list-queues"]);
    keep("queue", strings(&queues["QueueUrls"]).into_iter().collect());
    let topics = shop.aws(&["sns", "list-topics"]);
    keep("topic", names(&topics, "Topics", "TopicArn"));
    let subscriptions = shop.aws(&["sns", "list-subscriptions"]);
    keep(
        "subscription",
        names(&subscriptions, "Subscriptions", "TopicArn"),
    );
    let tables = shop.aws(&["dynamodb", "list-tables"]);
    keep(
        "table",
        strings(&tables["TableNames"]).into_iter().collect(),
    );
    let buckets = shop.aws(&["s3api", "list-buckets"]);
    // The deployment bucket (`nimbus-shop-<stage>-…`) matches the prefix too.
    keep("bucket", names(&buckets, "Buckets", "Name"));
    let apis = shop.aws(&["apigatewayv2", "get-apis"]);
    keep(
        "api",
        names(&apis, "Items", "Name")
            .into_iter()
            .map(|n| format!("{n}-"))
            .collect(),
    );
    let schedules = shop.aws(&["scheduler", "list-schedules"]);
    keep("schedule", names(&schedules, "Schedules", "Name"));
    let groups = shop.aws(&["logs", "describe-log-groups"]);
    keep("log group", names(&groups, "logGroups", "logGroupName"));
    let mappings = shop.aws(&["lambda", "list-event-source-mappings"]);
    keep(
        "mapping",
        names(&mappings, "EventSourceMappings", "FunctionArn"),
    );
    left
}

/// How many of the shop's sub-objects exist, where a duplicate could hide.
fn counts(shop: &Shop) -> Vec<(String, usize)> {
    let apis: Vec<Value> = shop.aws(&["apigatewayv2", "get-apis"])["Items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|a| a["Name"] == format!("shop-{}", shop.stage))
        .collect();
    let mut out = vec![("apis".to_string(), apis.len())];
    if let Some(api) = apis.first() {
        let id = api["ApiId"].as_str().unwrap();
        let routes = shop.aws(&["apigatewayv2", "get-routes", "--api-id", id]);
        out.push((
            "routes".into(),
            routes["Items"].as_array().map_or(0, Vec::len),
        ));
        let integrations = shop.aws(&["apigatewayv2", "get-integrations", "--api-id", id]);
        out.push((
            "integrations".into(),
            integrations["Items"].as_array().map_or(0, Vec::len),
        ));
    }
    for f in ["charge-payment", "audit-orders"] {
        let m = shop.aws(&[
            "lambda",
            "list-event-source-mappings",
            "--function-name",
            &shop.name(f),
        ]);
        out.push((
            format!("mappings of {f}"),
            m["EventSourceMappings"].as_array().map_or(0, Vec::len),
        ));
    }
    let topic = format!(
        "arn:aws:sns:us-east-1:123456789012:{}",
        shop.name("order-events")
    );
    let subs = shop.aws(&["sns", "list-subscriptions-by-topic", "--topic-arn", &topic]);
    out.push((
        "subscriptions".into(),
        subs["Subscriptions"].as_array().map_or(0, Vec::len),
    ));
    out
}

fn expected_counts() -> Vec<(String, usize)> {
    vec![
        ("apis".into(), 1),
        ("routes".into(), 3),
        ("integrations".into(), 2),
        ("mappings of charge-payment".into(), 1),
        ("mappings of audit-orders".into(), 1),
        ("subscriptions".into(), 1),
    ]
}

#[test]
fn the_shop_deploys_updates_one_function_redeploys_without_writes_and_is_removed() {
    let shop = Shop::new("contract");
    let deployed = shop.deploy();
    let summary = &deployed["report"]["summary"];
    assert_eq!(summary["same"], 0);
    let created = summary["create"].as_u64().unwrap();
    assert!(created > 40, "{summary}");
    assert_eq!(deployed["uploads"].as_array().unwrap().len(), 7);

    // Functions: runtime, handler, memory, timeout, environment.
    let place = shop.function("place-order")["Configuration"].clone();
    assert_eq!(place["Runtime"], "python3.12");
    assert_eq!(place["Handler"], "_nimbus_aws.handler");
    assert_eq!(place["MemorySize"], 256);
    assert_eq!(place["Timeout"], 10);
    let env = &place["Environment"]["Variables"];
    assert_eq!(env["LOG_LEVEL"], "info");
    assert_eq!(env["NIMBUS_RESOURCE_ORDERS_NAME"], shop.name("orders"));
    assert_eq!(
        env["NIMBUS_RESOURCE_ORDER_EVENTS_ARN"],
        format!(
            "arn:aws:sns:us-east-1:123456789012:{}",
            shop.name("order-events")
        )
    );
    assert!(
        env["NIMBUS_RESOURCE_PAYMENTS_URL"]
            .as_str()
            .unwrap()
            .ends_with(&shop.name("payments"))
    );
    let charge = shop.function("charge-payment")["Configuration"].clone();
    assert_eq!(charge["Runtime"], "nodejs22.x");
    let thumb = shop.function("make-thumbnail")["Configuration"].clone();
    assert_eq!(
        (thumb["MemorySize"].clone(), thumb["Timeout"].clone()),
        (512.into(), 30.into())
    );
    assert_eq!(
        shop.function("nightly-report")["Configuration"]["Timeout"],
        60
    );

    // The role policy grants exactly the manifest's `uses` on exact ARNs.
    let role = format!("{}-us-east-1-lambda", shop.name("place-order"));
    let policy = shop.aws(&[
        "iam",
        "get-role-policy",
        "--role-name",
        &role,
        "--policy-name",
        "nimbus",
    ]);
    let list = statements(&policy["PolicyDocument"]);
    let table_arn = format!(
        "arn:aws:dynamodb:us-east-1:123456789012:table/{}",
        shop.name("orders")
    );
    let put = statement_for(&list, "dynamodb:PutItem");
    assert_eq!(
        strings(&put["Resource"]),
        BTreeSet::from([table_arn.clone()])
    );
    assert!(
        !list
            .iter()
            .any(|s| strings(&s["Action"]).contains("dynamodb:GetItem")),
        "place-order only writes orders"
    );
    statement_for(&list, "sns:Publish");
    statement_for(&list, "sqs:SendMessage");
    // The manifest's extra permission (`permissions.aws`): exactly its statement, on this
    // function's role only.
    let extra: Vec<&Value> = list
        .iter()
        .filter(|s| {
            s["Sid"]
                .as_str()
                .is_some_and(|sid| sid.starts_with("Extra"))
        })
        .collect();
    assert_eq!(
        extra,
        vec![&serde_json::json!({
            "Sid": "Extra1",
            "Effect": "Allow",
            "Action": ["ses:SendEmail"],
            "Resource": ["arn:aws:ses:us-east-1:123456789012:identity/example.com"],
        })],
        "{list:?}"
    );
    let get_role = format!("{}-us-east-1-lambda", shop.name("get-order"));
    let get_policy = shop.aws(&[
        "iam",
        "get-role-policy",
        "--role-name",
        &get_role,
        "--policy-name",
        "nimbus",
    ]);
    let get_list = statements(&get_policy["PolicyDocument"]);
    assert_eq!(
        strings(&statement_for(&get_list, "dynamodb:GetItem")["Resource"]),
        BTreeSet::from([table_arn])
    );
    assert!(
        !get_list
            .iter()
            .any(|s| strings(&s["Action"]).contains("dynamodb:PutItem"))
    );
    assert!(
        !get_list
            .iter()
            .any(|s| strings(&s["Action"]).contains("ses:SendEmail")),
        "the extra grant is place-order's only"
    );

    // Routes, each to its function.
    let api = shop.aws(&["apigatewayv2", "get-apis"])["Items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["Name"] == format!("shop-{}", shop.stage))
        .cloned()
        .expect("the HTTP API");
    let api_id = api["ApiId"].as_str().unwrap();
    let routes = shop.aws(&["apigatewayv2", "get-routes", "--api-id", api_id]);
    let keys: BTreeSet<String> = routes["Items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["RouteKey"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from([
            "POST /orders".to_string(),
            "GET /orders/{id}".to_string(),
            "GET /orders/{id}/{field+}".to_string()
        ])
    );
    let integrations = shop.aws(&["apigatewayv2", "get-integrations", "--api-id", api_id]);
    let uris: BTreeSet<String> = integrations["Items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["IntegrationUri"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        uris,
        BTreeSet::from([
            place["FunctionArn"].as_str().unwrap().to_string(),
            shop.function("get-order")["Configuration"]["FunctionArn"]
                .as_str()
                .unwrap()
                .to_string(),
        ])
    );

    // The schedule, in its time zone, on its function.
    let schedule = shop.aws(&[
        "scheduler",
        "get-schedule",
        "--name",
        &shop.name("nightly-report-schedule-0"),
    ]);
    assert_eq!(schedule["ScheduleExpression"], "cron(0 3 * * ? *)");
    assert_eq!(schedule["ScheduleExpressionTimezone"], "UTC");
    assert_eq!(
        schedule["Target"]["Arn"],
        shop.function("nightly-report")["Configuration"]["FunctionArn"]
    );

    // Queue: dead letters after 5 receives; the mapping reports partial batch failures.
    let queue_url = shop.aws(&[
        "sqs",
        "get-queue-url",
        "--queue-name",
        &shop.name("payments"),
    ])["QueueUrl"]
        .as_str()
        .unwrap()
        .to_string();
    let attrs = shop.aws(&[
        "sqs",
        "get-queue-attributes",
        "--queue-url",
        &queue_url,
        "--attribute-names",
        "All",
    ])["Attributes"]
        .clone();
    assert_eq!(attrs["VisibilityTimeout"], "60");
    let redrive = json(attrs["RedrivePolicy"].as_str().unwrap());
    assert_eq!(
        redrive["maxReceiveCount"].to_string().trim_matches('"'),
        "5"
    );
    assert!(
        redrive["deadLetterTargetArn"]
            .as_str()
            .unwrap()
            .ends_with(&format!("{}-dlq", shop.name("payments")))
    );
    let mappings = shop.aws(&[
        "lambda",
        "list-event-source-mappings",
        "--function-name",
        &shop.name("charge-payment"),
    ]);
    let m = &mappings["EventSourceMappings"][0];
    assert_eq!(m["EventSourceArn"], attrs["QueueArn"]);
    assert_eq!(m["BatchSize"], 10);
    let table = shop.aws(&[
        "dynamodb",
        "describe-table",
        "--table-name",
        &shop.name("orders"),
    ])["Table"]
        .clone();
    let audit = shop.aws(&[
        "lambda",
        "list-event-source-mappings",
        "--function-name",
        &shop.name("audit-orders"),
    ]);
    assert_eq!(
        audit["EventSourceMappings"][0]["EventSourceArn"],
        table["LatestStreamArn"]
    );
    assert_eq!(
        audit["EventSourceMappings"][0]["StartingPosition"],
        "LATEST"
    );

    // Table, topic subscription, bucket notification.
    assert_eq!(
        table["KeySchema"],
        serde_json::json!([{ "AttributeName": "id", "KeyType": "HASH" }])
    );
    assert_eq!(
        table["BillingModeSummary"]["BillingMode"],
        "PAY_PER_REQUEST"
    );
    assert_eq!(
        table["StreamSpecification"]["StreamViewType"],
        "NEW_AND_OLD_IMAGES"
    );
    let topic = format!(
        "arn:aws:sns:us-east-1:123456789012:{}",
        shop.name("order-events")
    );
    let subs = shop.aws(&["sns", "list-subscriptions-by-topic", "--topic-arn", &topic]);
    assert_eq!(subs["Subscriptions"][0]["Protocol"], "lambda");
    assert_eq!(
        subs["Subscriptions"][0]["Endpoint"],
        shop.function("reserve-stock")["Configuration"]["FunctionArn"]
    );
    let images = format!("shop-{}-images-123456789012-us-east-1", shop.stage);
    let notification = shop.aws(&[
        "s3api",
        "get-bucket-notification-configuration",
        "--bucket",
        &images,
    ]);
    let n = &notification["LambdaFunctionConfigurations"][0];
    assert_eq!(n["LambdaFunctionArn"], thumb["FunctionArn"]);
    assert_eq!(
        strings(&n["Events"]),
        BTreeSet::from(["s3:ObjectCreated:*".to_string()])
    );
    assert_eq!(n["Filter"]["Key"]["FilterRules"][0]["Value"], "uploads/");
    let block = shop.aws(&["s3api", "get-public-access-block", "--bucket", &images]);
    assert_eq!(
        block["PublicAccessBlockConfiguration"]["BlockPublicPolicy"],
        true
    );
    assert_eq!(counts(&shop), expected_counts());

    // Unchanged: not one write request, the lock and the state included.
    shop.proxy.clear();
    let again = shop.deploy();
    assert_eq!(
        again["report"]["summary"]["same"].as_u64().unwrap(),
        created
    );
    assert!(shop.proxy.writes().is_empty(), "{:?}", shop.proxy.writes());
    assert!(
        again["uploads"]
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u["skipped"] == true)
    );
    let status = shop.run(&["plan", "--detailed-exitcode"]).status.code();
    assert_eq!(status, Some(0), "no changes");

    // One handler changes: its package is uploaded and only that function's code is updated.
    // (`inventory/` is packaged by reserve-stock alone; `orders/` by three functions.)
    let before = shop.function("place-order")["Configuration"]["CodeSha256"].clone();
    let old_code = shop.function("reserve-stock")["Configuration"]["CodeSha256"].clone();
    shop.edit("inventory/reserve.py", "\n# touched by the contract test\n");
    let status = shop.run(&["plan", "--detailed-exitcode"]).status.code();
    assert_eq!(status, Some(2), "changes pending");
    shop.proxy.clear();
    let updated = shop.deploy();
    assert_eq!(
        updated["report"]["summary"]["update"], 1,
        "{}",
        updated["report"]
    );
    let writes = shop.resource_writes();
    assert_eq!(writes.len(), 2, "{writes:?}");
    assert!(
        writes[0].starts_with("PUT /nimbus-shop-contract-") && writes[0].ends_with(".zip"),
        "{writes:?}"
    );
    assert_eq!(
        writes[1],
        format!(
            "PUT /2015-03-31/functions/{}/code",
            shop.name("reserve-stock")
        )
    );
    assert_ne!(
        shop.function("reserve-stock")["Configuration"]["CodeSha256"],
        old_code
    );
    assert_eq!(
        shop.function("place-order")["Configuration"]["CodeSha256"],
        before
    );

    // Invoke sends the native event the route would (moto echoes it instead of running code).
    let invoked = json(&shop.ok(&[
        "invoke",
        "get-order",
        "--data",
        r#"{"id": "42"}"#,
        "--output",
        "json",
    ]));
    let event = json(invoked["result"]["body"].as_str().unwrap());
    assert_eq!(event["routeKey"], "GET /orders/{id}");
    assert_eq!(event["pathParameters"]["id"], "42");

    // Info from the state.
    let info = json(&shop.ok(&["info", "--output", "json"]));
    assert_eq!(info["deployed"], true);
    assert_eq!(info["functions"].as_array().unwrap().len(), 7);
    assert!(
        info["endpoints"][0]["url"]
            .as_str()
            .unwrap()
            .contains(api_id)
    );

    // Remove: nothing of the shop is left (no table or bucket held data; the secret holds a
    // value, which only `--force` deletes).
    let removed = json(&shop.ok(&["remove", "--yes", "--force", "--output", "json"]));
    assert!(removed["retained"].as_array().unwrap().is_empty());
    assert_eq!(leftovers(&shop), Vec::<String>::new());
}

#[test]
fn tables_and_buckets_holding_data_are_kept_on_remove_unless_forced() {
    let shop = Shop::new("keep");
    shop.deploy();
    shop.aws(&[
        "dynamodb",
        "put-item",
        "--table-name",
        &shop.name("orders"),
        "--item",
        r#"{"id": {"S": "o-1"}}"#,
    ]);
    let out = shop.run(&["remove"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "without a terminal, remove needs --yes"
    );
    assert!(text(&out.stderr).contains("--yes"));
    let removed = json(&shop.ok(&["remove", "--yes", "--output", "json"]));
    let mut kept: Vec<&str> = removed["retained"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    kept.sort_unstable();
    // The table holds an item and the secret a value: both are kept.
    assert_eq!(
        kept,
        [
            "aws.dynamodb.table/orders",
            "aws.secretsmanager.secret/payment-key"
        ]
    );
    let left = leftovers(&shop);
    assert_eq!(
        left,
        [
            format!("table {}", shop.name("orders")),
            format!("bucket {}", shop.deployment_bucket())
        ],
        "the table and the state that records it"
    );
    shop.ok(&["remove", "--yes", "--force"]);
    assert_eq!(leftovers(&shop), Vec::<String>::new());
}

#[test]
fn a_deploy_cut_off_half_way_converges_when_run_again() {
    let shop = Shop::new("fault");
    shop.proxy.fail_after_writes(25);
    let out = shop.run(&["deploy"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("failed") && err.contains("503"), "{err}");
    assert!(
        err.contains("hint: fix the cause and run the same command again"),
        "{err}"
    );
    // The network never came back during that run, so its lock is still there; it says how to
    // remove it.
    shop.proxy.heal();
    let id = unlock_id(&err);
    let locked = text(&shop.run(&["deploy"]).stderr);
    assert!(locked.contains("is locked by"), "{locked}");
    shop.ok(&["unlock", &id]);
    let deployed = shop.deploy();
    assert!(deployed["report"]["summary"]["create"].as_u64().unwrap() > 0);
    assert_eq!(
        counts(&shop),
        expected_counts(),
        "nothing was created twice"
    );
    let plan = json(&shop.ok(&["plan", "--refresh", "--output", "json"]));
    assert_eq!(plan["summary"]["create"], 0, "{plan}");
    assert_eq!(plan["summary"]["update"], 0, "{plan}");
    assert!(plan["interrupted"].as_array().unwrap().is_empty(), "{plan}");
    shop.ok(&["remove", "--yes", "--force"]);
    assert_eq!(
        leftovers(&shop),
        Vec::<String>::new(),
        "nothing was orphaned"
    );
}

#[test]
fn a_killed_deploy_leaves_a_lock_that_unlock_clears_and_a_rerun_converges() {
    let shop = Shop::new("killed");
    shop.proxy.slow_down(Duration::from_millis(40));
    let mut child = shop.spawn(&["deploy"]);
    eventually(120, "the deploy to be half done", || {
        (shop.resource_writes().len() >= 30).then_some(())
    });
    child.kill().unwrap();
    child.wait().unwrap();
    shop.proxy.slow_down(Duration::ZERO);
    let out = shop.run(&["deploy"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    // Its process is gone: the lock is reported stale at once, with the command to take it over.
    assert!(err.contains("is locked by a run that is gone"), "{err}");
    let id = unlock_id(&err);
    let wrong = shop.run(&["unlock", "not-the-id"]);
    assert_eq!(wrong.status.code(), Some(1));
    shop.ok(&["unlock", &id]);
    shop.deploy();
    assert_eq!(
        counts(&shop),
        expected_counts(),
        "nothing was created twice"
    );
    shop.proxy.clear();
    shop.deploy();
    assert!(shop.proxy.writes().is_empty());
    shop.ok(&["remove", "--yes", "--force"]);
    assert_eq!(
        leftovers(&shop),
        Vec::<String>::new(),
        "nothing was orphaned"
    );
}

#[test]
fn a_second_concurrent_deploy_is_refused_naming_the_holder() {
    let shop = Shop::new("locked");
    shop.proxy.slow_down(Duration::from_millis(25));
    // Both start at once, so they also build the same packages at once: the second must be
    // refused by the lock, not fail in a race over the build folder.
    let (a, b) = (shop.spawn(&["deploy"]), shop.spawn(&["deploy"]));
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let (done, refused) = match a.status.success() {
        true => (a, b),
        false => (b, a),
    };
    assert!(done.status.success(), "{}", text(&done.stderr));
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused.stderr));
    let err = text(&refused.stderr);
    let holder = format!(
        "{}@",
        std::env::var("USER").unwrap_or_else(|_| "unknown".into())
    );
    assert!(
        err.contains("is locked by") && err.contains(&holder),
        "{err}"
    );
    shop.proxy.slow_down(Duration::ZERO);
    shop.ok(&["remove", "--yes", "--force"]);
}

#[test]
fn a_corrupt_state_is_refused_and_left_untouched() {
    let shop = Shop::new("corrupt");
    shop.deploy();
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage");
    std::fs::write(&garbage, "{ not a state").unwrap();
    let key = format!("state/shop/{}/aws/state.json", shop.stage);
    let bucket = shop.deployment_bucket();
    let body = garbage.display().to_string();
    shop.aws(&[
        "s3api",
        "put-object",
        "--bucket",
        &bucket,
        "--key",
        &key,
        "--body",
        &body,
    ]);
    shop.edit("orders/get.py", "\n# a change to deploy\n");
    for args in [&["deploy"][..], &["plan", "--detailed-exitcode"][..]] {
        let out = shop.run(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = text(&out.stderr);
        assert!(
            err.contains("is corrupt, so it was left untouched"),
            "{err}"
        );
    }
    let back = dir.path().join("back");
    shop.aws(&[
        "s3api",
        "get-object",
        "--bucket",
        &bucket,
        "--key",
        &key,
        &back.display().to_string(),
    ]);
    assert_eq!(std::fs::read_to_string(back).unwrap(), "{ not a state");
}

#[test]
fn plan_refresh_reports_exactly_the_drift_and_deploy_refresh_puts_it_back() {
    let shop = Shop::new("drift");
    shop.deploy();
    let plan = json(&shop.ok(&["plan", "--refresh", "--output", "json"]));
    assert_eq!(
        plan["summary"]["update"], 0,
        "no drift right after a deploy: {plan}"
    );
    shop.aws(&[
        "lambda",
        "update-function-configuration",
        "--function-name",
        &shop.name("place-order"),
        "--memory-size",
        "1024",
    ]);
    let out = shop.run(&[
        "plan",
        "--refresh",
        "--detailed-exitcode",
        "--output",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let plan = json(&text(&out.stdout));
    let drifted: Vec<(&str, &Value)> = plan["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| !r["drift"].as_array().unwrap().is_empty())
        .map(|r| (r["id"].as_str().unwrap(), &r["drift"]))
        .collect();
    assert_eq!(drifted.len(), 1, "{drifted:?}");
    assert_eq!(drifted[0].0, "aws.lambda.function/place-order");
    assert_eq!(
        drifted[0].1,
        &serde_json::json!([{ "path": "MemorySize", "state": 256, "live": 1024 }])
    );
    // Without --refresh the state still says 256: nothing to do.
    assert_eq!(
        shop.run(&["plan", "--detailed-exitcode"]).status.code(),
        Some(0)
    );
    shop.ok(&["deploy", "--refresh"]);
    assert_eq!(
        shop.function("place-order")["Configuration"]["MemorySize"],
        256
    );
    assert_eq!(
        shop.run(&["plan", "--refresh", "--detailed-exitcode"])
            .status
            .code(),
        Some(0)
    );
}

#[test]
fn logs_come_from_cloudwatch_and_plan_exit_codes_follow_terraform() {
    let shop = Shop::new("logs");
    // Nothing deployed: everything is to create (exit 2); a broken manifest is an error (1).
    assert_eq!(
        shop.run(&["plan", "--detailed-exitcode"]).status.code(),
        Some(2)
    );
    shop.edit("nimbus.yaml", "\nbogus: 1\n");
    assert_eq!(
        shop.run(&["plan", "--detailed-exitcode"]).status.code(),
        Some(1)
    );
    let manifest = shop.dir.path().join("nimbus.yaml");
    let fixed = std::fs::read_to_string(&manifest)
        .unwrap()
        .replace("\nbogus: 1\n", "");
    std::fs::write(&manifest, fixed).unwrap();
    shop.deploy();
    let group = format!("/aws/lambda/{}", shop.name("get-order"));
    shop.aws(&[
        "logs",
        "create-log-stream",
        "--log-group-name",
        &group,
        "--log-stream-name",
        "s1",
    ]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let events = format!(
        r#"[{{"timestamp": {now}, "message": "order 42 read"}}, {{"timestamp": {now}, "message": "2026-12-08T03:14:47.615Z 6f0c Task timed out after 3.00 seconds"}}]"#
    );
    shop.aws(&[
        "logs",
        "put-log-events",
        "--log-group-name",
        &group,
        "--log-stream-name",
        "s1",
        "--log-events",
        &events,
    ]);
    let out = shop.ok(&["logs", "get-order", "--since", "5m", "--output", "json"]);
    let lines: Vec<Value> = out.lines().map(json).collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(lines[0]["function"], "get-order");
    assert_eq!(lines[0]["message"], "order 42 read");
    assert_eq!(lines[0].get("outcome"), None, "{out}");
    // Lambda's own timeout line reads as the local runtime's word, and `--level error` keeps it.
    assert_eq!(lines[1]["outcome"], "timeout", "{out}");
    let failed = shop.ok(&["logs", "get-order", "--since", "5m", "--level", "error"]);
    assert_eq!(failed.lines().count(), 1, "{failed}");
    assert!(
        failed.contains("[timeout] 2026-12-08T03:14:47.615Z 6f0c Task timed out"),
        "{failed}"
    );
    let refused = shop.run(&["logs", "get-order", "--level", "warn"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        text(&refused.stderr).contains("--level error"),
        "{}",
        text(&refused.stderr)
    );
    let none = shop.run(&["logs", "no-such-function"]);
    assert_eq!(none.status.code(), Some(1));
    assert!(text(&none.stderr).contains("no function `no-such-function`"));

    // A deploy-time input this shell does not have: `logs`, `info` and `remove` work from what
    // was deployed all the same; `plan` (like `deploy`) needs it and names it.
    let yaml = std::fs::read_to_string(&manifest).unwrap();
    let templated = yaml.replace(
        "LOG_LEVEL: \"{{ vars.log_level }}\"",
        "LOG_LEVEL: \"{{ env.NIMBUS_TEST_UNSET_LEVEL }}\"",
    );
    assert_ne!(templated, yaml);
    std::fs::write(&manifest, &templated).unwrap();
    let err = text(&shop.run(&["plan"]).stderr);
    assert!(
        err.contains("undefined template variable `env.NIMBUS_TEST_UNSET_LEVEL`"),
        "{err}"
    );
    let out = shop.ok(&["logs", "get-order", "--since", "5m"]);
    assert!(out.contains("order 42 read"), "{out}");
    assert_eq!(
        json(&shop.ok(&["info", "--output", "json"]))["deployed"],
        true
    );
    // What locates the deployment (the region) is needed, and named.
    std::fs::write(
        &manifest,
        templated.replace(
            "aws:   { region: us-east-1 }",
            "aws:   { region: \"{{ env.NIMBUS_TEST_UNSET_REGION }}\" }",
        ),
    )
    .unwrap();
    let out = shop.run(&["info"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("`providers.aws` in nimbus.yaml reads `NIMBUS_TEST_UNSET_REGION` from the environment, and it is not set here"),
        "{err}"
    );
    std::fs::write(&manifest, &templated).unwrap();
    let removed = json(&shop.ok(&["remove", "--yes", "--force", "--output", "json"]));
    assert!(
        removed["summary"]["delete"].as_u64().unwrap() > 0,
        "{removed}"
    );
    assert_eq!(leftovers(&shop), Vec::<String>::new());
}

//! The generated Function Apps, run by Microsoft's own libraries.
//!
//! The shop is really built for Azure (`nimbus_package::build`), each function's zip is made an
//! app package (`nimbus_azure::package::assemble`) and unpacked. Python apps are imported with
//! `azure-functions` (as the Python worker indexes `function_app.py`); the Node app is loaded with
//! `@azure/functions` and a recording stand-in of the worker's `@azure/functions-core`, so the
//! metadata checked is what each library itself produces. The functions each app registers —
//! names, trigger types, routes, methods, auth levels, schedules, queue, topic and container
//! names, Cosmos DB databases, containers and leases, connections — must be what the manifest
//! says. Then `get-order` is called with an `azure.functions.HttpRequest` and `charge-payment`
//! with a queue message, against Azurite and a Cosmos DB API server, and `audit-orders` with
//! change feed documents (a tombstone among them): the neutral handlers answer through the shim
//! and their resource clients.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::azurite::Azurite;
use serde_json::{Value, json};

fn python() -> PathBuf {
    std::env::var_os("NIMBUS_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| nimbus_test_support::required_venv_tool("python"))
}

fn tests_dir() -> PathBuf {
    common::repo().join("crates/nimbus-azure/tests/apps")
}

fn unzip(bytes: &[u8], dest: &Path) {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    zip.extract(dest).unwrap();
}

fn run(cmd: &mut Command) -> Value {
    let out = cmd.output().expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({:?}):\n{stdout}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// The trigger binding of each registered function, by name, with the keys that matter.
fn triggers(report: &Value) -> BTreeMap<String, Value> {
    report["functions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let bindings = f["bindings"].as_array().unwrap();
            let trigger = bindings
                .iter()
                .find(|b| {
                    b["type"].as_str().unwrap().ends_with("Trigger")
                        && b["direction"].as_str().unwrap().eq_ignore_ascii_case("in")
                })
                .unwrap_or_else(|| panic!("no trigger in {f}"));
            let mut t = serde_json::Map::new();
            for key in [
                "type",
                "route",
                "methods",
                "authLevel",
                "schedule",
                "queueName",
                "topicName",
                "subscriptionName",
                "path",
                "source",
                "connection",
                "databaseName",
                "containerName",
                "leaseContainerName",
                "leaseContainerPrefix",
                "createLeaseContainerIfNotExists",
                "maxItemsPerInvocation",
            ] {
                if let Some(v) = trigger.get(key) {
                    let v = match (key, v) {
                        ("methods", Value::Array(m)) => json!(
                            m.iter()
                                .map(|x| x.as_str().unwrap().to_ascii_uppercase())
                                .collect::<Vec<_>>()
                        ),
                        ("authLevel" | "source", Value::String(s)) => json!(s.to_ascii_lowercase()),
                        _ => v.clone(),
                    };
                    t.insert(key.into(), v);
                }
            }
            (f["name"].as_str().unwrap().to_string(), Value::Object(t))
        })
        .collect()
}

#[test]
fn generated_apps_register_what_the_manifest_says_and_reach_the_handlers() {
    let shop = common::build_shop();
    let apps = nimbus_azure::apps(&shop.graph).unwrap();
    let root = shop.dir.path().join("apps");
    for app in &apps {
        let zip = shop.out.join(&shop.build.functions[&app.function].file);
        let bytes = nimbus_azure::package::assemble(&shop.graph, app, &zip).unwrap();
        // Deterministic: the same inputs give the same package.
        assert_eq!(
            bytes,
            nimbus_azure::package::assemble(&shop.graph, app, &zip).unwrap()
        );
        unzip(&bytes, &root.join(&app.function));
    }
    let azurite = Azurite::start();
    let conn = azurite.connection_string();

    let cosmos = common::cosmos::Cosmos::start();
    let expected: BTreeMap<&str, Value> = BTreeMap::from([
        (
            "audit-orders",
            json!({"audit-orders-table-0": {"type": "cosmosDBTrigger", "databaseName": "shop", "containerName": "orders", "leaseContainerName": "nimbus_leases", "leaseContainerPrefix": "audit-orders.", "createLeaseContainerIfNotExists": false, "maxItemsPerInvocation": 1, "connection": "NIMBUS_COSMOS"}}),
        ),
        (
            "place-order",
            json!({"place-order-http-0": {"type": "httpTrigger", "route": "orders", "methods": ["POST"], "authLevel": "anonymous"}}),
        ),
        (
            "get-order",
            json!({
                "get-order-http-0": {"type": "httpTrigger", "route": "orders/{id}", "methods": ["GET"], "authLevel": "anonymous"},
                "get-order-http-1": {"type": "httpTrigger", "route": "orders/{id}/{*field}", "methods": ["GET"], "authLevel": "anonymous"},
            }),
        ),
        (
            "reserve-stock",
            json!({"reserve-stock-topic-0": {"type": "serviceBusTrigger", "topicName": "order-events", "subscriptionName": "reserve-stock", "connection": "NIMBUS_SERVICEBUS"}}),
        ),
        (
            "make-thumbnail",
            json!({"make-thumbnail-bucket-0": {"type": "blobTrigger", "path": "images/uploads/{name}", "source": "eventgrid", "connection": "NIMBUS_STORAGE"}}),
        ),
        (
            "nightly-report",
            json!({"nightly-report-schedule-0": {"type": "timerTrigger", "schedule": "0 0 3 * * *"}}),
        ),
        (
            "charge-payment",
            json!({"charge-payment-queue-0": {"type": "queueTrigger", "queueName": "payments", "connection": "NIMBUS_STORAGE"}}),
        ),
    ]);
    assert_eq!(
        expected.keys().copied().collect::<Vec<_>>(),
        shop.graph
            .functions
            .keys()
            .map(String::as_str)
            .collect::<Vec<_>>()
    );

    // Python apps, through azure-functions.
    for app in apps.iter().filter(|a| a.runtime_name == "python") {
        let report = run(Command::new(python())
            .arg(tests_dir().join("inspect_app.py"))
            .arg(root.join(&app.function)));
        let got = triggers(&report);
        assert_eq!(
            json!(got),
            expected[app.function.as_str()],
            "{}: {report}",
            app.function
        );
    }

    // audit-orders' retry policy: the Cosmos DB trigger moves past a failed batch without one.
    let audit = run(Command::new(python())
        .arg(tests_dir().join("inspect_app.py"))
        .arg(root.join("audit-orders")));
    let retry = std::fs::read_to_string(root.join("audit-orders/function_app.py")).unwrap();
    assert!(
        retry.contains("@app.retry(strategy=\"exponential_backoff\""),
        "{retry}"
    );
    assert_eq!(audit["functions"].as_array().unwrap().len(), 1);

    // get-order through its HTTP function, against the Cosmos DB server: 404, then 200 with a
    // stored order (seeded in the shim's layout).
    let cosmos_conn = cosmos.connection_string();
    let table = Command::new(python())
        .arg("-c")
        .arg(
            "import sys\nfrom azure.cosmos import CosmosClient, PartitionKey\n\
             db = CosmosClient.from_connection_string(sys.argv[1]).create_database_if_not_exists('shop')\n\
             c = db.create_container_if_not_exists('orders', PartitionKey(path='/pk'), default_ttl=-1)\n\
             for i in ('42', 'o1'):\n    c.upsert_item({'id': i, 'pk': i, 'key': {'id': i}, 'item': {'id': i, 'status': 'new'}, 'old': None, 'op': 'insert'})\n",
        )
        .arg(&cosmos_conn)
        .status()
        .unwrap();
    assert!(table.success());
    let http_on = |binding: &str, path: &str| {
        run(Command::new(python())
            .arg(tests_dir().join("inspect_app.py"))
            .arg(root.join("get-order"))
            .args([
                "--http",
                binding,
                "GET",
                &format!("https://shop.azurewebsites.net{path}"),
            ])
            .env("NIMBUS_AZURE_COSMOS_CONNECTION_STRING", &cosmos_conn)
            .env("NIMBUS_AZURE_COSMOS_DATABASE", "shop")
            .env("NIMBUS_RESOURCE_ORDERS_NAME", "orders"))["response"]
            .clone()
    };
    let http = |id: &str| http_on("get-order-http-0", &format!("/orders/{id}"));
    // the catch-all route: the rest of the path, without its leading `/`
    let part = http_on("get-order-http-1", "/orders/42/status");
    assert_eq!(part["status"], 200, "{part}");
    assert_eq!(
        serde_json::from_str::<Value>(part["body"].as_str().unwrap()).unwrap(),
        json!({"id": "42", "field": "status", "value": "new"})
    );
    let found = http("42");
    assert_eq!(found["status"], 200, "{found}");
    assert_eq!(
        serde_json::from_str::<Value>(found["body"].as_str().unwrap()).unwrap(),
        json!({"id": "42", "status": "new"})
    );
    let missing = http("nope");
    assert_eq!(missing["status"], 404, "{missing}");

    // The Node app, through @azure/functions: registration, then a queue message for order o1.
    let node = run(Command::new("node")
        .arg(tests_dir().join("inspect_app.js"))
        .arg(root.join("charge-payment"))
        .arg("charge-payment-queue-0")
        .arg(r#"{"order_id": "o1", "amount": 5}"#)
        .env("NODE_PATH", common::azurite::node_modules())
        .env("NODE_EXTRA_CA_CERTS", &cosmos.cert)
        // What the platform resolves charge-payment's Key Vault reference to.
        .env("PAYMENT_API_KEY", "pk_test_shop")
        .env("NIMBUS_AZURE_STORAGE_CONNECTION_STRING", &conn)
        .env("NIMBUS_AZURE_COSMOS_CONNECTION_STRING", &cosmos_conn)
        .env("NIMBUS_AZURE_COSMOS_DATABASE", "shop")
        .env("NIMBUS_RESOURCE_ORDERS_NAME", "orders"));
    assert_eq!(json!(triggers(&node)), expected["charge-payment"], "{node}");
    assert_eq!(node["result"], json!({"ok": true}), "{node}");
    let paid = Command::new(python())
        .arg("-c")
        .arg(
            "import sys\nfrom azure.cosmos import CosmosClient\n\
             c = CosmosClient.from_connection_string(sys.argv[1]).get_database_client('shop').get_container_client('orders')\n\
             d = c.read_item('o1', partition_key='o1')\n\
             print(d['item']['status'], d['op'], d['old']['status'])\n",
        )
        .arg(&cosmos_conn)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&paid.stdout).trim(),
        "paid modify new",
        "{}",
        String::from_utf8_lossy(&paid.stderr)
    );

    // audit-orders with a batch of change feed documents: one audit line per change, the
    // tombstone as `remove`.
    let feed = std::fs::read_to_string(
        common::repo().join("tests/shims/events/azure/cosmos-change-feed.json"),
    )
    .unwrap();
    let out = Command::new(python())
        .arg(tests_dir().join("inspect_app.py"))
        .arg(root.join("audit-orders"))
        .args(["--invoke", "audit-orders-table-0", &feed])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {stdout}")))
        .collect();
    assert_eq!(
        lines.last().unwrap()["invoked"],
        json!({"ok": true}),
        "{stdout}"
    );
    assert_eq!(
        lines[..lines.len() - 1],
        [
            json!({"audit": "insert", "key": {"id": "o1"}, "old_status": null, "new_status": "placed"}),
            json!({"audit": "modify", "key": {"id": "o2"}, "old_status": "placed", "new_status": "paid"}),
            json!({"audit": "remove", "key": {"id": "o3"}, "old_status": "cancelled", "new_status": null}),
            json!({"audit": "modify", "key": {"id": "o4"}, "old_status": null, "new_status": "imported"}),
        ],
        "{stdout}"
    );
}

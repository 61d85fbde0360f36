//! Existing resources (`existing.aws`): the shop's `reports` bucket is made elsewhere (by the
//! test, with the AWS CLI, before the deploy), and a table made elsewhere triggers a function.
//! Nimbus grants on them and wires them, never writes to them, and `remove` leaves them.

use super::*;

/// The bucket the shop's manifest names as existing on AWS.
pub const REPORTS: &str = "acme-shop-reports";

/// Makes the shop's existing bucket, as its owner would (tagged, with an object), unless a
/// shared endpoint has it already.
pub fn make_reports_bucket(aws: &Endpoint) {
    let out = aws.aws_raw(&["s3api", "create-bucket", "--bucket", REPORTS]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() || err.contains("BucketAlreadyOwnedByYou"),
        "create-bucket {REPORTS}: {err}"
    );
}

/// Every call nimbus made that names `what` and writes.
fn writes_to(shop: &Shop, what: &str) -> Vec<String> {
    shop.proxy
        .writes()
        .into_iter()
        .filter(|c| c.path.contains(what))
        .map(|c| format!("{} {}", c.method, c.path))
        .collect()
}

fn owner_tags(shop: &Shop) -> Value {
    shop.aws(&["s3api", "get-bucket-tagging", "--bucket", REPORTS])["TagSet"].clone()
}

#[test]
fn an_existing_bucket_is_used_but_never_created_changed_or_removed() {
    let shop = Shop::new("existing");
    // Its owner's bucket: a tag and an object of theirs.
    shop.aws(&[
        "s3api",
        "put-bucket-tagging",
        "--bucket",
        REPORTS,
        "--tagging",
        r#"{"TagSet": [{"Key": "owner", "Value": "finance"}]}"#,
    ]);
    let ledger = shop.dir.path().join("ledger.csv");
    std::fs::write(&ledger, "2026-12-01,42\n").unwrap();
    shop.aws(&[
        "s3",
        "cp",
        ledger.to_str().unwrap(),
        &format!("s3://{REPORTS}/finance/ledger.csv"),
    ]);
    let tags = owner_tags(&shop);

    // The plan shows it as existing, not as something to create.
    let plan = shop.ok(&["plan"]);
    assert!(
        plan.contains("= existing aws.existing/reports (not managed)"),
        "{plan}"
    );
    assert!(!plan.contains("aws.s3.bucket/reports"), "{plan}");

    shop.proxy.clear();
    shop.deploy();
    assert_eq!(writes_to(&shop, REPORTS), Vec::<String>::new());
    let reads: Vec<String> = shop
        .proxy
        .calls()
        .into_iter()
        .filter(|c| c.path.contains(REPORTS))
        .map(|c| c.operation)
        .collect();
    assert!(!reads.is_empty(), "the deploy looked the bucket up");
    assert_eq!(owner_tags(&shop), tags, "its tags are its owner's");

    // nightly-report may write there, by the exact ARN, and knows the bucket's name.
    let role = shop.function("nightly-report")["Configuration"]["Role"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let policy = shop.aws(&[
        "iam",
        "get-role-policy",
        "--role-name",
        &role,
        "--policy-name",
        "nimbus",
    ]);
    let list = statements(&policy["PolicyDocument"]);
    let put = statement_for(&list, "s3:PutObject");
    assert_eq!(
        strings(&put["Resource"]),
        BTreeSet::from([format!("arn:aws:s3:::{REPORTS}/*")])
    );
    let env = &shop.function("nightly-report")["Configuration"]["Environment"]["Variables"];
    assert_eq!(env["NIMBUS_RESOURCE_REPORTS_NAME"], REPORTS);
    assert_eq!(
        env["NIMBUS_RESOURCE_REPORTS_ARN"],
        format!("arn:aws:s3:::{REPORTS}")
    );

    let info = shop.ok(&["info"]);
    assert!(
        info.contains(&format!("arn:aws:s3:::{REPORTS} (existing, not managed)")),
        "{info}"
    );

    // Remove, even forced, leaves it with its object and its tags.
    shop.proxy.clear();
    shop.ok(&["remove", "--yes", "--force"]);
    assert_eq!(writes_to(&shop, REPORTS), Vec::<String>::new());
    let objects = shop.aws(&["s3api", "list-objects-v2", "--bucket", REPORTS]);
    assert_eq!(objects["Contents"][0]["Key"], "finance/ledger.csv");
    assert_eq!(owner_tags(&shop), tags);
    assert_eq!(leftovers(&shop), Vec::<String>::new());
}

/// The shop with a table made elsewhere whose changes `audit-ledger` listens to.
fn with_ledger(shop: &Shop) {
    let path = shop.dir.path().join("nimbus.yaml");
    let manifest = std::fs::read_to_string(&path).unwrap();
    let manifest = manifest
        .replacen(
            "resources:\n",
            "resources:\n  ledger:\n    type: table\n    key: { id: string }\n    existing: { aws: \"arn:aws:dynamodb:us-east-1:123456789012:table/ledger\" }\n",
            1,
        )
        .replacen(
            "functions:\n",
            "functions:\n  audit-ledger:\n    handler: orders/audit.py:handler\n    triggers: [ { table: ledger } ]\n",
            1,
        );
    std::fs::write(path, manifest).unwrap();
}

#[test]
fn a_trigger_on_an_existing_table_needs_its_stream_and_nothing_changes_until_it_is_on() {
    let shop = Shop::new("ledger");
    with_ledger(&shop);
    shop.aws(&[
        "dynamodb",
        "create-table",
        "--table-name",
        "ledger",
        "--attribute-definitions",
        "AttributeName=id,AttributeType=S",
        "--key-schema",
        "AttributeName=id,KeyType=HASH",
        "--billing-mode",
        "PAY_PER_REQUEST",
    ]);

    // No stream: refused before any write, with the command that turns it on.
    shop.proxy.clear();
    let out = shop.run(&["deploy"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("the existing table `ledger` has no stream")
            && err.contains("aws dynamodb update-table --table-name ledger --stream-specification"),
        "{err}"
    );
    assert_eq!(shop.proxy.writes(), Vec::new(), "nothing was changed");

    // Its owner turns the stream on: the deploy wires the function to it, and only reads it.
    shop.aws(&[
        "dynamodb",
        "update-table",
        "--table-name",
        "ledger",
        "--stream-specification",
        "StreamEnabled=true,StreamViewType=NEW_AND_OLD_IMAGES",
    ]);
    let table = shop.aws(&["dynamodb", "describe-table", "--table-name", "ledger"]);
    let stream = table["Table"]["LatestStreamArn"]
        .as_str()
        .unwrap()
        .to_string();
    shop.proxy.clear();
    shop.deploy();
    let table_writes: Vec<String> = shop
        .proxy
        .writes()
        .into_iter()
        .filter(|c| c.operation.contains("Table") || c.operation.contains("Stream"))
        .map(|c| c.operation)
        .collect();
    assert!(
        table_writes
            .iter()
            .all(|op| !op.contains("UpdateTable") && !op.contains("DeleteTable")),
        "{table_writes:?}"
    );
    let mappings = shop.aws(&[
        "lambda",
        "list-event-source-mappings",
        "--function-name",
        &shop.name("audit-ledger"),
    ]);
    assert_eq!(mappings["EventSourceMappings"][0]["EventSourceArn"], stream);

    // Remove leaves the table.
    shop.ok(&["remove", "--yes", "--force"]);
    let after = shop.aws(&["dynamodb", "describe-table", "--table-name", "ledger"]);
    assert_eq!(after["Table"]["TableName"], "ledger");
}

#[test]
fn a_missing_existing_resource_stops_the_deploy_before_anything_changes() {
    let shop = Shop::new("missing");
    let path = shop.dir.path().join("nimbus.yaml");
    let manifest = std::fs::read_to_string(&path).unwrap().replace(
        "arn:aws:s3:::acme-shop-reports",
        "arn:aws:s3:::acme-nowhere",
    );
    std::fs::write(&path, manifest).unwrap();
    shop.proxy.clear();
    let out = shop.run(&["deploy"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("the existing bucket `arn:aws:s3:::acme-nowhere` was not found"),
        "{err}"
    );
    assert_eq!(shop.proxy.writes(), Vec::new());
}

//! Custom domains (`http.domain`): an ACM certificate requested in the endpoint first, as a
//! user would, then the API Gateway regional domain name and the mapping of its root to the
//! API's `$default` stage, checked with the AWS CLI; `info` prints the CNAME to create.
//!
//! moto 5.2 leaves two things out, said here so that nobody mistakes them for Nimbus's: its
//! domain names carry no `ApiGatewayDomainName`/`HostedZoneId` (the proxy fills them as AWS
//! returns them, [`crate::proxy::Proxy::fill_domain_targets`]), and it has no
//! `UpdateDomainName` (`PATCH /v2/domainnames/{name}` answers 500), so a changed certificate
//! is checked by the request Nimbus sends; against an endpoint that has it (LocalStack), by
//! the certificate the domain then carries.

use super::*;
use crate::proxy::{Call, DOMAIN_TARGET};

const HOST: &str = "api.example.com";

fn request_certificate(app: &Shop) -> String {
    let cert = app.aws(&["acm", "request-certificate", "--domain-name", HOST]);
    cert["CertificateArn"].as_str().unwrap().to_string()
}

/// hello-http with its handler in a folder of its own, so that editing the manifest does not
/// change the function's package (the handler's folder is what is packaged).
fn hello(stage: &str) -> Shop {
    let app = Shop::of("examples/hello-http", stage);
    let dir = app.dir.path();
    std::fs::create_dir(dir.join("api")).unwrap();
    std::fs::rename(dir.join("hello.py"), dir.join("api/hello.py")).unwrap();
    let path = dir.join("nimbus.yaml");
    let manifest = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        manifest.replace("handler: hello.py", "handler: api/hello.py"),
    )
    .unwrap();
    app
}

fn set_domain(app: &Shop, certificate: &str) {
    let path = app.dir.path().join("nimbus.yaml");
    let manifest = std::fs::read_to_string(&path).unwrap();
    let base = manifest.split("http:\n").next().unwrap().to_string();
    let domain = format!(
        "http:\n  domain:\n    name: {HOST}\n    certificate: {{ aws: \"{certificate}\" }}\n"
    );
    std::fs::write(path, base + &domain).unwrap();
}

/// The API's id (the app's only HTTP API).
fn api_id(app: &Shop) -> String {
    let apis = app.aws(&["apigatewayv2", "get-apis"]);
    let name = format!("hello-{}", app.stage);
    let api = apis["Items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["Name"] == name.as_str())
        .unwrap_or_else(|| panic!("no API {name}: {apis}"));
    api["ApiId"].as_str().unwrap().to_string()
}

#[test]
fn a_custom_domain_is_created_mapped_printed_kept_updated_and_removed() {
    let app = hello("dom");
    app.proxy.fill_domain_targets();
    let first = request_certificate(&app);
    set_domain(&app, &first);

    app.deploy();
    let domain = app.aws(&["apigatewayv2", "get-domain-name", "--domain-name", HOST]);
    let config = &domain["DomainNameConfigurations"][0];
    assert_eq!(config["CertificateArn"], first.as_str(), "{domain}");
    assert_eq!(config["EndpointType"], "REGIONAL");
    assert_eq!(config["SecurityPolicy"], "TLS_1_2");
    assert!(
        domain["Tags"].as_object().is_some_and(|t| !t.is_empty()),
        "tagged: {domain}"
    );
    let mappings = app.aws(&["apigatewayv2", "get-api-mappings", "--domain-name", HOST]);
    let items = mappings["Items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{mappings}");
    assert_eq!(items[0]["ApiId"], api_id(&app).as_str());
    assert_eq!(items[0]["Stage"], "$default");
    assert_eq!(items[0]["ApiMappingKey"], "");

    // Unchanged: no write at all.
    app.proxy.clear();
    app.deploy();
    assert_eq!(app.resource_writes(), Vec::<String>::new());

    // The DNS record to create, in text and JSON.
    let info = app.ok(&["info"]);
    let line = info
        .lines()
        .find(|l| l.trim_start().starts_with(HOST))
        .unwrap_or_else(|| panic!("no DNS record for {HOST}:\n{info}"));
    assert!(
        line.contains("CNAME") && line.contains(DOMAIN_TARGET),
        "{line}"
    );
    assert!(info.contains("DNS records to create"), "{info}");
    let info = json(&app.ok(&["info", "--output", "json"]));
    let records = info["dns_records"].as_array().unwrap();
    assert_eq!(records.len(), 1, "{info}");
    assert_eq!(records[0]["name"], HOST);
    assert_eq!(records[0]["type"], "CNAME");
    assert_eq!(records[0]["value"], DOMAIN_TARGET);

    // A new certificate updates the domain in place: the same name, the mapping kept.
    let second = request_certificate(&app);
    assert_ne!(first, second);
    set_domain(&app, &second);
    let plan = json(&app.ok(&["plan", "--output", "json"]));
    assert_eq!(plan["summary"]["update"], 1, "{plan}");
    assert_eq!(plan["summary"]["create"], 0, "{plan}");
    assert_eq!(plan["summary"]["delete"], 0, "{plan}");
    assert_eq!(plan["summary"]["replace"], 0, "{plan}");
    app.proxy.clear();
    let out = app.run(&["deploy"]);
    let updates: Vec<Call> = app
        .proxy
        .writes()
        .into_iter()
        .filter(|c| c.method == "PATCH" && c.path == format!("/v2/domainnames/{HOST}"))
        .collect();
    assert!(!updates.is_empty(), "{:?}", app.proxy.writes());
    assert!(
        updates.iter().all(|c| c.body.contains(&second)),
        "{updates:?}"
    );
    let writes = app.resource_writes();
    assert!(
        writes
            .iter()
            .all(|w| w.starts_with("PATCH /v2/domainnames")),
        "only the domain is written: {writes:?}"
    );
    if out.status.success() {
        let domain = app.aws(&["apigatewayv2", "get-domain-name", "--domain-name", HOST]);
        let config = &domain["DomainNameConfigurations"][0];
        assert_eq!(config["CertificateArn"], second.as_str(), "{domain}");
    } else {
        // moto 5.2: no UpdateDomainName.
        let err = text(&out.stderr);
        assert!(err.contains("UpdateDomainName"), "{err}");
        assert!(std::env::var("NIMBUS_TEST_AWS_ENDPOINT").is_err(), "{err}");
    }

    // Remove: the mapping and the domain go.
    app.proxy.clear();
    app.ok(&["remove", "--yes"]);
    let deleted: Vec<String> = app
        .proxy
        .writes()
        .into_iter()
        .filter(|c| c.method == "DELETE" && c.path.starts_with("/v2/domainnames"))
        .map(|c| c.path)
        .collect();
    assert_eq!(deleted.len(), 2, "{deleted:?}");
    assert!(
        deleted[0].contains("/apimappings/"),
        "mapping first: {deleted:?}"
    );
    let gone = app
        .aws
        .aws_raw(&["apigatewayv2", "get-domain-name", "--domain-name", HOST]);
    assert!(!gone.status.success());
    assert!(
        text(&gone.stderr).contains("NotFound"),
        "{}",
        text(&gone.stderr)
    );
    let names = app.aws(&["apigatewayv2", "get-domain-names"]);
    assert_eq!(names["Items"].as_array().map_or(0, Vec::len), 0, "{names}");
}

//! AWS-specific test helpers; the provider-neutral ones (the shop as a graph, a build of it,
//! venv tools) are in `nimbus-test-support`.

#![allow(dead_code)]

use nimbus_aws::AwsSettings;
use nimbus_graph::AppGraph;

/// us-east-1, the account moto uses, the conventional bucket.
pub fn settings(graph: &AppGraph) -> AwsSettings {
    AwsSettings::conventional(graph, "us-east-1", "123456789012")
}

//! AWS-specific test helpers; the provider-neutral ones (the shop as a graph, a build of it,
//! venv tools) are in `nimbus-test-support`.

#![allow(dead_code)]

use nimbus_aws::AwsSettings;
use nimbus_graph::AppGraph;

/// us-east-1, the account moto uses, the conventional bucket.
pub fn settings(graph: &AppGraph) -> AwsSettings {
    AwsSettings::conventional(graph, "us-east-1", "123456789012")
}

/// A function with every AWS escape hatch: extra statements, Graviton, reserved concurrency and
/// a VPC; and one left out by `only:`.
pub const ESCAPE_HATCHES: &str = r#"
version: 1
service: hatch
defaults:
  aws: { architecture: arm64 }
functions:
  mailer:
    handler: a.py:handler
    concurrency: { max: 7 }
    permissions:
      aws:
        - actions: [ses:SendEmail, ses:SendRawEmail]
          resources: ["arn:aws:ses:us-east-1:123456789012:identity/example.com"]
      gcp: [ { role: roles/aiplatform.user } ]
    aws:
      reserved_concurrency: 0
      vpc: { subnet_ids: [subnet-0123456789abcdef0, subnet-01234567], security_group_ids: [sg-0123456789abcdef0] }
  plain:
    handler: b.py:handler
    aws: { architecture: x86_64 }
  gcp-only:
    handler: b.py:handler
    only: { providers: [gcp] }
"#;

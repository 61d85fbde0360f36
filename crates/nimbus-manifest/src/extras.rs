//! The escape hatches of a function, as the user writes them: extra provider permissions
//! (`permissions:`), where the function exists (`only:`), and the per-provider settings that
//! have no neutral form (`aws:`, `gcp:`, `azure:` under a function, and the same keys under
//! `providers.<id>` as app-wide defaults).
//!
//! Shapes are checked in [`crate::extras_check`]; each provider's limits are data in its
//! `capabilities.toml` and are checked on the app graph by `nimbus-provider`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Spanned;
use crate::types::Name;

/// Extra permissions for services outside the neutral model, per provider. Each grant goes to
/// this function's own identity only (its AWS role, its GCP service account, its Azure function
/// app's managed identity). A provider without a block gets no extra grant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Permissions {
    /// IAM policy statements added to the function role's policy:
    /// `[{ actions: [ses:SendEmail], resources: ["arn:aws:ses:us-east-1:123456789012:identity/example.com"] }]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aws: Vec<Spanned<AwsStatement>>,
    /// IAM role bindings for the function's service account:
    /// `[{ role: roles/aiplatform.user }]` (project level) or with a `resource`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gcp: Vec<Spanned<GcpGrant>>,
    /// Role assignments for the function app's managed identity:
    /// `[{ role: "Cognitive Services User", scope: "/subscriptions/…/resourceGroups/ai" }]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub azure: Vec<Spanned<AzureGrant>>,
}

impl Permissions {
    /// True when no provider has a grant.
    pub fn is_empty(&self) -> bool {
        self.aws.is_empty() && self.gcp.is_empty() && self.azure.is_empty()
    }

    /// Whether `provider` (`aws`, `gcp`, `azure`) has at least one grant.
    pub fn has(&self, provider: &str) -> bool {
        match provider {
            "aws" => !self.aws.is_empty(),
            "gcp" => !self.gcp.is_empty(),
            "azure" => !self.azure.is_empty(),
            _ => false,
        }
    }
}

/// One AWS IAM statement (always `Effect: Allow`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AwsStatement {
    /// IAM actions, `service:Action` (`ses:SendEmail`; `ses:Send*` and `*` are allowed but warned about).
    pub actions: Vec<Spanned<String>>,
    /// ARNs the actions apply to (`arn:aws:ses:us-east-1:123456789012:identity/example.com`);
    /// `*` is allowed but warned about.
    pub resources: Vec<Spanned<String>>,
}

/// One GCP IAM binding for the function's service account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GcpGrant {
    /// A predefined role (`roles/aiplatform.user`) or a custom one
    /// (`projects/P/roles/R`, `organizations/O/roles/R`).
    pub role: Spanned<String>,
    /// Where the binding goes: a full resource name whose type Nimbus binds on directly
    /// (`projects/P/topics/T`, `projects/P/subscriptions/S`, `projects/P/secrets/S`,
    /// `projects/_/buckets/B`), or unset for the deployment's project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<Spanned<String>>,
}

/// One Azure role assignment for the function app's managed identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AzureGrant {
    /// A built-in role by name (`Cognitive Services User`) or a role definition id (a GUID).
    pub role: Spanned<String>,
    /// The scope: a resource id (`/subscriptions/S/resourceGroups/G[/providers/…]`).
    pub scope: Spanned<String>,
}

/// Where a function exists: unset lists mean every provider / every stage.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Only {
    /// The providers (`aws`, `gcp`, `azure`, `local`) the function is deployed to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub providers: Option<Vec<Spanned<String>>>,
    /// The stages the function is deployed in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stages: Option<Vec<Spanned<Name>>>,
}

impl Only {
    /// Whether the function exists for `provider` in `stage`.
    pub fn includes(&self, provider: &str, stage: &str) -> bool {
        self.providers
            .as_ref()
            .is_none_or(|p| p.iter().any(|p| p.as_str() == provider))
            && self
                .stages
                .as_ref()
                .is_none_or(|s| s.iter().any(|s| s.as_str() == stage))
    }

    /// Whether two functions limited by `a` and `b` (`None`: everywhere) are ever deployed to
    /// the same provider in the same stage: only then can their routes clash.
    pub fn overlap(a: Option<&Only>, b: Option<&Only>) -> bool {
        fn meet<T: PartialEq>(a: Option<&Vec<Spanned<T>>>, b: Option<&Vec<Spanned<T>>>) -> bool {
            match (a, b) {
                (Some(a), Some(b)) => a.iter().any(|x| b.iter().any(|y| x.value == y.value)),
                _ => true,
            }
        }
        let (pa, sa) = a.map_or((None, None), |o| (o.providers.as_ref(), o.stages.as_ref()));
        let (pb, sb) = b.map_or((None, None), |o| (o.providers.as_ref(), o.stages.as_ref()));
        meet(pa, pb) && meet(sa, sb)
    }
}

/// A Lambda instruction set.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
pub enum Architecture {
    /// Graviton (ARM); cheaper per GB-second.
    #[serde(rename = "arm64")]
    Arm64,
    /// Intel/AMD 64-bit (Lambda's default).
    #[serde(rename = "x86_64")]
    X86_64,
}

impl Architecture {
    /// Lambda's name for it.
    pub fn as_str(&self) -> &'static str {
        match self {
            Architecture::Arm64 => "arm64",
            Architecture::X86_64 => "x86_64",
        }
    }
}

/// AWS settings of a function (under the function's `aws:`, or app-wide under `providers.aws`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AwsFunction {
    /// `arm64` (Graviton) or `x86_64` (the default); Python dependencies are installed from
    /// wheels for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architecture: Option<Spanned<Architecture>>,
    /// Concurrency reserved for the function (0 stops it from running); wins over
    /// `concurrency.max` on AWS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserved_concurrency: Option<Spanned<u32>>,
    /// Attach the function to a VPC; its role gets the network-interface actions Lambda needs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc: Option<Spanned<AwsVpc>>,
}

/// A Lambda VPC attachment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AwsVpc {
    /// Subnet ids (`subnet-0123456789abcdef0`), at least one.
    pub subnet_ids: Vec<Spanned<String>>,
    /// Security group ids (`sg-0123456789abcdef0`), at least one.
    pub security_group_ids: Vec<Spanned<String>>,
}

/// Which outbound traffic of a GCP function goes through its VPC connector.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Egress {
    /// Only traffic to private (RFC 1918) ranges (the default).
    PrivateRangesOnly,
    /// All traffic.
    All,
}

impl Egress {
    /// Cloud Functions' `vpcConnectorEgressSettings` value.
    pub fn native(&self) -> &'static str {
        match self {
            Egress::PrivateRangesOnly => "PRIVATE_RANGES_ONLY",
            Egress::All => "ALL_TRAFFIC",
        }
    }
}

/// GCP settings of a function (under the function's `gcp:`, or app-wide under `providers.gcp`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GcpFunction {
    /// A Serverless VPC Access connector: `projects/P/locations/R/connectors/N`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc_connector: Option<Spanned<String>>,
    /// `private-ranges-only` (the default) or `all`; needs `vpc_connector`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress: Option<Spanned<Egress>>,
    /// Instances kept warm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_instances: Option<Spanned<u32>>,
}

/// Azure settings of a function (under the function's `azure:`, or app-wide under `providers.azure`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AzureFunction {
    /// Always-ready instances of the function's Flex Consumption app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub always_ready: Option<Spanned<u32>>,
}

impl AwsFunction {
    /// `self` (a function's block) merged key by key over `base` (the app-wide one).
    pub fn over(&self, base: &AwsFunction) -> AwsFunction {
        AwsFunction {
            architecture: self.architecture.clone().or(base.architecture.clone()),
            reserved_concurrency: self
                .reserved_concurrency
                .clone()
                .or(base.reserved_concurrency.clone()),
            vpc: self.vpc.clone().or(base.vpc.clone()),
        }
    }

    /// True when nothing is set.
    pub fn is_empty(&self) -> bool {
        *self == AwsFunction::default()
    }
}

impl GcpFunction {
    /// `self` merged key by key over `base`.
    pub fn over(&self, base: &GcpFunction) -> GcpFunction {
        GcpFunction {
            vpc_connector: self.vpc_connector.clone().or(base.vpc_connector.clone()),
            egress: self.egress.clone().or(base.egress.clone()),
            min_instances: self.min_instances.clone().or(base.min_instances.clone()),
        }
    }

    /// True when nothing is set.
    pub fn is_empty(&self) -> bool {
        *self == GcpFunction::default()
    }
}

impl AzureFunction {
    /// `self` merged key by key over `base`.
    pub fn over(&self, base: &AzureFunction) -> AzureFunction {
        AzureFunction {
            always_ready: self.always_ready.clone().or(base.always_ready.clone()),
        }
    }

    /// True when nothing is set.
    pub fn is_empty(&self) -> bool {
        *self == AzureFunction::default()
    }
}

//! One SDK client per AWS service the provider calls, all made from one configuration
//! (credentials, region, endpoint override), so an emulator endpoint reaches every client.

use aws_config::SdkConfig;

/// The SDK clients.
#[derive(Debug, Clone)]
pub struct Clients {
    pub(crate) apigw: aws_sdk_apigatewayv2::Client,
    pub(crate) dynamodb: aws_sdk_dynamodb::Client,
    pub(crate) iam: aws_sdk_iam::Client,
    pub(crate) lambda: aws_sdk_lambda::Client,
    pub(crate) logs: aws_sdk_cloudwatchlogs::Client,
    pub(crate) s3: aws_sdk_s3::Client,
    pub(crate) scheduler: aws_sdk_scheduler::Client,
    pub(crate) secrets: aws_sdk_secretsmanager::Client,
    pub(crate) sns: aws_sdk_sns::Client,
    pub(crate) sqs: aws_sdk_sqs::Client,
    pub(crate) sts: aws_sdk_sts::Client,
}

impl Clients {
    /// Clients for `config`. With an endpoint override (an emulator), S3 is addressed by path
    /// (`http://host/bucket/key`) since emulators do not serve bucket subdomains.
    pub fn new(config: &SdkConfig) -> Self {
        let s3 = aws_sdk_s3::config::Builder::from(config)
            .force_path_style(config.endpoint_url().is_some())
            .build();
        Clients {
            apigw: aws_sdk_apigatewayv2::Client::new(config),
            dynamodb: aws_sdk_dynamodb::Client::new(config),
            iam: aws_sdk_iam::Client::new(config),
            lambda: aws_sdk_lambda::Client::new(config),
            logs: aws_sdk_cloudwatchlogs::Client::new(config),
            s3: aws_sdk_s3::Client::from_conf(s3),
            scheduler: aws_sdk_scheduler::Client::new(config),
            secrets: aws_sdk_secretsmanager::Client::new(config),
            sns: aws_sdk_sns::Client::new(config),
            sqs: aws_sdk_sqs::Client::new(config),
            sts: aws_sdk_sts::Client::new(config),
        }
    }
}

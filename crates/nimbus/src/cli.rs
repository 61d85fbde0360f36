//! The command-line interface: every command, flag and help text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Nimbus: one provider-neutral manifest for serverless apps, deployed to AWS, GCP, Azure or a
/// local runtime by switching one flag.
#[derive(Debug, Parser)]
#[command(
    name = "nimbus",
    version,
    about,
    propagate_version = true,
    max_term_width = 100
)]
#[command(
    after_help = "Examples:\n  nimbus init my-app && cd my-app\n  nimbus validate -p aws\n  nimbus graph -f examples/shop/nimbus.yaml -s prod --format json\n\nThe manifest is `-f PATH`, else `nimbus.yaml` (or `nimbus.yml`) in this folder or the nearest\nparent folder that has one, as cargo finds Cargo.toml."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command accepts.
#[derive(Debug, Args)]
pub struct Global {
    /// The manifest file (or its folder); default: `nimbus.yaml` in this folder or the nearest
    /// parent that has one. Always the manifest: a function is named without a flag
    /// (`nimbus logs FUNCTION`)
    #[arg(short = 'f', long = "file", global = true, value_name = "PATH")]
    pub file: Option<PathBuf>,

    /// Target provider: local, aws, gcp or azure
    #[arg(
        short = 'p',
        long,
        global = true,
        env = "NIMBUS_PROVIDER",
        default_value = "local",
        value_name = "PROVIDER"
    )]
    pub provider: String,

    /// Stage to resolve (`dev` when unset); picks the manifest's `stages.<name>` overrides
    #[arg(
        short = 's',
        long,
        global = true,
        env = "NIMBUS_STAGE",
        value_name = "STAGE"
    )]
    pub stage: Option<String>,

    /// Output format: human-readable text, or JSON on stdout for scripts and CI
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Human)]
    pub output: OutputFormat,

    /// Disable colours (also when NO_COLOR is set or stderr is not a terminal)
    #[arg(long, global = true)]
    pub no_color: bool,

    /// Print more about what is happening (timings, resolved settings)
    #[arg(short = 'v', long, global = true)]
    pub verbose: bool,

    /// AWS: send every AWS API call to this URL (moto, LocalStack) instead of AWS
    #[arg(
        long,
        global = true,
        env = "NIMBUS_AWS_ENDPOINT_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub endpoint_url: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a working starter project (manifest + handler) into a directory
    #[command(
        after_help = "Examples:\n  nimbus init                 # in the current directory\n  nimbus init my-app --template node\n\nExisting files are never overwritten."
    )]
    Init(InitArgs),

    /// Check the manifest: syntax, types, references, and the provider's limits
    #[command(
        after_help = "Examples:\n  nimbus validate\n  nimbus validate -f examples/shop/nimbus.yaml -p gcp -s prod\n  nimbus validate --output json   # machine-readable diagnostics\n\nExit codes: 0 valid, 1 invalid, 2 internal error."
    )]
    Validate,

    /// Package every function: one reproducible zip each, with its dependencies and the provider shim
    #[command(
        after_help = "Examples:\n  nimbus build                      # for the local runtime\n  nimbus build -p aws -s prod\n  nimbus build -p gcp --output json # build.json on stdout\n\nZips go to .nimbus/build/<provider>/<stage>/ next to the manifest, with build.json.\nUnchanged functions are not rebuilt; --force rebuilds them all."
    )]
    Build(BuildArgs),

    /// Deploy: build the packages, then update the cloud (or start the local runtime) to match
    #[command(
        after_help = "Examples:\n  nimbus deploy                        # the local runtime (the default provider)\n  nimbus deploy --port 3500            # local: exactly this port (an error when it is taken)\n  nimbus deploy -p aws -s prod         # AWS Lambda, through a plan and the deploy engine\n  nimbus deploy -p aws --output json   # endpoints and the report on stdout, for CI\n\nLocal: the URL it serves on is printed on stdout (`URL=$(nimbus deploy)`). Redeploying\nreplaces only changed functions; in-flight requests finish first.\nClouds: only what changed is touched; an unchanged redeploy makes no write call. The state\nand a lock live in the deployment's own storage, so CI runners share them. A deploy that\nwould delete or replace a table or bucket holding data stops before changing anything,\nunless --force. Interrupted? Run it again: it continues from what was recorded."
    )]
    Deploy(DeployArgs),

    /// Show what a deploy would change, without changing anything
    #[command(
        after_help = "Examples:\n  nimbus plan -p aws\n  nimbus plan -p aws --refresh                      # also read the cloud: report drift\n  nimbus plan -p aws --detailed-exitcode --output json  # for CI gates\n\nExit codes with --detailed-exitcode: 0 no changes, 1 error, 2 changes pending."
    )]
    Plan(PlanArgs),

    /// Remove a lock left by a deploy that died (clouds)
    #[command(
        after_help = "Examples:\n  nimbus unlock -p aws 3f2a9c0e1b7d4a56\n\nThe id is in the error of the deploy that found the lock. Only remove a lock when\nno deploy of this service and stage is running."
    )]
    Unlock(UnlockArgs),

    /// Run the app in the local runtime in the foreground, reloading changed functions
    #[command(
        after_help = "Examples:\n  nimbus dev\n  nimbus dev --port 8080     # exactly this port (an error when it is taken)\n\nEdit a handler or the manifest and the changed functions reload within a second.\nCtrl-C stops it, letting in-flight requests finish."
    )]
    Dev(DevArgs),

    /// Remove the deployed app: stop the local runtime, or delete its cloud resources
    #[command(
        after_help = "Examples:\n  nimbus remove --yes\n  nimbus remove --keep-data       # local: stop it, keep tables, queues and buckets\n  nimbus remove --service shop -s dev --yes   # local: one whose project moved or is gone\n  nimbus remove -p aws --yes      # clouds: tables and buckets holding data are kept\n  nimbus remove -p aws --yes --force   # ...and deleted too\n\nWithout a terminal, removing needs --yes. Needs no deploy-time input: values from unset\nenvironment variables are not read."
    )]
    Remove(RemoveArgs),

    /// Show the deployed app: its URL, endpoints, functions and their instances, queue depths
    #[command(
        after_help = "Examples:\n  nimbus info                       # the app of the manifest found here (or above)\n  nimbus info -f examples/shop/nimbus.yaml -s prod\n  nimbus info --all                 # every local deployment on this machine\n  nimbus info --service shop        # a local deployment, without its manifest\n  nimbus info --output json\n  nimbus info --console             # the link to the local web console\n\nWithout a manifest here or above, the local deployment made from this folder is shown.\nNeeds no deploy-time input: values from unset environment variables are not read."
    )]
    Info(InfoArgs),

    /// Invoke a deployed function with an event
    #[command(
        after_help = "Examples:\n  nimbus invoke get-order --data '{\"id\": \"42\"}'          # its HTTP route; data = path params (GET) or body\n  nimbus invoke get-order --path /orders/42\n  nimbus invoke charge-payment --data @payment.json      # a queue message (an array: several)\n  nimbus invoke nightly-report                           # its schedule\n  nimbus invoke audit-orders --data '{\"action\": \"insert\", \"key\": {\"id\": \"1\"}, \"new\": {\"id\": \"1\"}}'\n  nimbus invoke get-order --raw --data @saved-http-event.json\n\nThe event's kind is --event-type, else the kind of the function's triggers. A handler that\nfails (an error, or failed messages in its result) makes invoke exit 1."
    )]
    Invoke(InvokeArgs),

    /// Show a function's logs: invocations and what the handler printed
    #[command(
        after_help = "Examples:\n  nimbus logs place-order\n  nimbus logs --since 10m --tail       # every function, then new lines as they come\n  nimbus logs -t --level error         # failed invocations with their stack traces\n  nimbus logs --filter /orders/42      # lines containing the text\n  nimbus logs --since 2026-01-02T03:04:05Z\n  nimbus logs charge-payment --output json\n  nimbus logs --service shop           # local: a deployment, without its manifest\n\nEach invocation ends in one line with its outcome (ok, error, timeout, out of memory,\ncrashed; failed messages of a batch); HTTP lines show method, path, status, latency and\nrequest id. On the clouds, the platform's own lines about an invocation's end (Lambda's
`Task timed out`, Azure's `Executed … (Failed …)`) are marked with the same words, and
`--level error` keeps them. The function is an argument, not `-f` (which is always the manifest file). Needs\nno deploy-time input: values from unset environment variables are not read."
    )]
    Logs(LogsArgs),

    /// Show the causal tree of a trace: the invocations one request caused, through queues,
    /// topics, table and bucket triggers (local)
    #[command(
        after_help = "Examples:\n  nimbus trace 3f2a9c0e1b7d4a56c0ffee00      # any request id of the trace (from `nimbus logs`)\n  nimbus trace 4bf92f3577b34da6a3ce929d0e0e4736   # or its trace id\n  nimbus trace 3f2a9c0e1b7d4a56c0ffee00 --output json\n\nEach line is one invocation (a span): function, trigger, outcome, offset from the trace's\nstart and duration, indented under the invocation that caused it. Read from the local\nruntime's logs, so it works after the runtime stopped. How traces reach OTLP collectors and\nthe clouds' tracing is in docs/tracing.md."
    )]
    Trace(TraceArgs),

    /// Runs the local runtime process (started by `nimbus deploy`)
    #[command(name = "__runtime", hide = true)]
    Runtime(RuntimeArgs),

    /// Print the resolved app graph (functions, triggers, resources, access edges)
    #[command(
        after_help = "Examples:\n  nimbus graph\n  nimbus graph -p aws -s prod --format json > graph.json"
    )]
    Graph(GraphArgs),

    /// Set, list, remove and import secrets: values kept outside the project, never in argv
    #[command(
        after_help = "Examples:\n  printf %s \"$KEY\" | nimbus secret set payment-key      # the value from stdin\n  nimbus secret set payment-key --from-file key.txt -s prod\n  printf %s \"$NEW\" | nimbus secret set payment-key --restart   # readers restart now\n  nimbus secret list                                     # names and when set, never values\n  nimbus secret rm payment-key\n  nimbus secret import .env                              # local development\n\nSecrets are declared in the manifest (`secrets: { payment-key: {} }`) and read by a function\nthrough `env: { PAYMENT_API_KEY: { secret: payment-key } }`. Local values live in\n$XDG_DATA_HOME/nimbus/local/secrets/ (0600). On the clouds, `-p aws|gcp|azure` stores\nthe value in AWS Secrets Manager, Secret Manager or the stage's Key Vault."
    )]
    Secret(SecretArgs),

    /// Look into queues and their dead-letter queues, send to them, purge them, redrive dead letters
    #[command(
        after_help = "Examples:\n  nimbus queue send payments --body '{\"order\": \"42\"}' --attr source=cli\n  nimbus queue peek payments --dlq                # what failed, without consuming it\n  nimbus queue redrive payments                   # dead letters back to `payments`\n  nimbus queue purge payments --dlq --yes\n  nimbus queue peek payments -p aws -s prod --output json\n\nNAME is the queue as the manifest declares it; on a cloud it is resolved to the deployed\nqueue of the stage. How each provider peeks, redrives and purges (and what a peek changes\nthere) is in docs/operations.md."
    )]
    Queue(QueueArgs),

    /// Publish a message to a topic: every subscriber gets it
    #[command(
        after_help = "Examples:\n  nimbus topic publish order-events --body '{\"id\": \"42\"}'\n  nimbus topic publish order-events --body @event.json --attr kind=test -p gcp"
    )]
    Topic(TopicArgs),

    /// Print the manifest's JSON Schema (for editors and CI linters)
    #[command(
        after_help = "Examples:\n  nimbus schema > nimbus.schema.json\n\nEditors pick it up from a first line such as:\n  # yaml-language-server: $schema=./nimbus.schema.json"
    )]
    Schema,
}

#[derive(Debug, Args)]
pub struct SecretArgs {
    #[command(subcommand)]
    pub action: SecretAction,
}

#[derive(Debug, Subcommand)]
pub enum SecretAction {
    /// Set a secret's value, read from stdin or --from-file (never from the command line)
    Set {
        /// The secret, as declared under `secrets:`
        name: String,
        /// Read the value from this file instead of stdin (taken as is: a final newline stays)
        #[arg(long, value_name = "PATH")]
        from_file: Option<PathBuf>,
        /// Then restart the functions that read it, so that they use the new value now (local:
        /// their running invocations finish first); refused, before anything is stored, where
        /// the provider cannot
        #[arg(long)]
        restart: bool,
    },
    /// List the declared secrets: whether each has a value, and when it was set (never values)
    List,
    /// Remove a secret's value
    Rm {
        /// The secret
        name: String,
    },
    /// Set secrets from a dotenv file: keys are secret names, or variables that read a secret
    Import {
        /// The dotenv file (not `-f`, which is always the manifest)
        #[arg(value_name = "DOTENV_FILE")]
        dotenv: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct QueueArgs {
    #[command(subcommand)]
    pub action: QueueAction,
}

#[derive(Debug, Subcommand)]
pub enum QueueAction {
    /// Show a queue's messages (id, body, attributes, receive count) without consuming them
    Peek {
        /// The queue, as the manifest declares it
        name: String,
        /// Its dead-letter queue instead (the queue needs `dead_letter:` in the manifest)
        #[arg(long)]
        dlq: bool,
        /// At most this many messages
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1000))]
        max: u32,
        #[command(flatten)]
        which: Which,
    },
    /// Move the dead-lettered messages of a queue back to it, to be handled again
    Redrive {
        /// The queue, as the manifest declares it
        name: String,
        #[command(flatten)]
        which: Which,
    },
    /// Delete every message of a queue (or of its dead-letter queue): needs --yes
    Purge {
        /// The queue, as the manifest declares it
        name: String,
        /// Its dead-letter queue instead
        #[arg(long)]
        dlq: bool,
        /// Confirm: the messages are deleted for good
        #[arg(long, short = 'y')]
        yes: bool,
        #[command(flatten)]
        which: Which,
    },
    /// Send a message to a queue
    Send {
        /// The queue, as the manifest declares it
        name: String,
        #[command(flatten)]
        message: MessageArgs,
        #[command(flatten)]
        which: Which,
    },
}

/// A message's body and attributes.
#[derive(Debug, Args)]
pub struct MessageArgs {
    /// The body: text, or @file for a file's content
    #[arg(long, value_name = "TEXT|@FILE")]
    pub body: String,
    /// An attribute, `key=value` (repeatable)
    #[arg(long = "attr", value_name = "KEY=VALUE")]
    pub attrs: Vec<String>,
}

#[derive(Debug, Args)]
pub struct TopicArgs {
    #[command(subcommand)]
    pub action: TopicAction,
}

#[derive(Debug, Subcommand)]
pub enum TopicAction {
    /// Publish a message to a topic
    Publish {
        /// The topic, as the manifest declares it
        name: String,
        #[command(flatten)]
        message: MessageArgs,
        #[command(flatten)]
        which: Which,
    },
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Directory to create the project in (created if missing)
    #[arg(default_value = ".")]
    pub dir: PathBuf,

    /// Starter template
    #[arg(short = 't', long, value_enum, default_value_t = Template::Python)]
    pub template: Template,

    /// Service name (the directory's name when unset)
    #[arg(long)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Template {
    /// One Python HTTP function
    Python,
    /// One Node.js HTTP function
    Node,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Rebuild every function, even those the cache says are unchanged
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct DeployArgs {
    /// Local: the gateway's port, exactly (an error when it is taken; `0`: any free port).
    /// Unset: `providers.local.port`, else the port of the last deploy, else 3000 or the next
    /// free one
    #[arg(long)]
    pub port: Option<u16>,
    /// Clouds: allow deleting or replacing tables and buckets that hold data
    #[arg(long)]
    pub force: bool,
    /// Clouds: read every deployed resource first and put back changes made outside nimbus
    #[arg(long)]
    pub refresh: bool,
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// How a cloud deploy or remove runs.
#[derive(Debug, Args)]
pub struct EngineArgs {
    /// Clouds: wait this long for a lock another run holds (`30s`, `5m`; 0 fails at once)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub lock_timeout: Option<std::time::Duration>,
    /// Clouds: most cloud operations in flight at once
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub parallelism: u16,
}

/// A duration as the manifest writes them: `500ms`, `30s`, `5m`, `2h` (or `0`).
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    if text.trim_end_matches(['s', 'm', 'h']) == "0" {
        return Ok(std::time::Duration::ZERO);
    }
    let d: nimbus_manifest::Duration = text.parse()?;
    Ok(std::time::Duration::from_millis(d.as_millis()))
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Read every deployed resource from the cloud first and report drift
    #[arg(long)]
    pub refresh: bool,
    /// Exit 2 when there are changes, 0 when there are none (1 stays an error)
    #[arg(long)]
    pub detailed_exitcode: bool,
}

#[derive(Debug, Args)]
pub struct UnlockArgs {
    /// The lock's id, as the error that found it printed
    pub lock_id: String,
}

#[derive(Debug, Args)]
pub struct DevArgs {
    /// The gateway's port, exactly (an error when it is taken; `0`: any free port). Unset:
    /// `providers.local.port`, else the port used last time, else 3000 or the next free one
    #[arg(long)]
    pub port: Option<u16>,
}

/// Which local deployment, when there is no manifest to say it.
#[derive(Debug, Args)]
pub struct Which {
    /// Local: the deployment of this service (as `nimbus info --all` lists them), found in the
    /// registry of local deployments instead of through a manifest; with `-s` for its stage
    #[arg(long, value_name = "NAME")]
    pub service: Option<String>,
}

#[derive(Debug, Args)]
pub struct InfoArgs {
    /// Local: list every local deployment on this machine (service, stage, manifest, URL,
    /// running or not), wherever its project is
    #[arg(long, conflicts_with = "service")]
    pub all: bool,
    /// Local: print only the link to the running runtime's web console (the admin token is in
    /// the link's `#token=` fragment: keep it private)
    #[arg(long, conflicts_with = "all")]
    pub console: bool,
    #[command(flatten)]
    pub which: Which,
}

#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// Local: stop the runtime but keep its tables, queues, buckets and logs
    #[arg(long)]
    pub keep_data: bool,
    /// Do not ask before deleting
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Clouds: also delete tables and buckets that hold data
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub which: Which,
    #[command(flatten)]
    pub engine: EngineArgs,
}

#[derive(Debug, Args)]
pub struct InvokeArgs {
    /// The function to invoke (required)
    pub function: Option<String>,
    /// The event's data: JSON, or @file with JSON. It fills the event (the HTTP body and path
    /// parameters, the queue or topic messages, ...); a `type` field in it is data too
    #[arg(long, short = 'd')]
    pub data: Option<String>,
    /// Which of the function's triggers to simulate; unset, the kind of its triggers (required
    /// when it has triggers of several kinds)
    #[arg(long, value_enum)]
    pub event_type: Option<EventType>,
    /// The data is a whole neutral event (`{"type": "http", "method": ..., "path": ...}`, as
    /// docs/function-contract.md shows), sent as it is; an HTTP event's path is matched against
    /// the function's routes to fill its route and path parameters
    #[arg(long, requires = "data")]
    pub raw: bool,
    /// HTTP: the request path (`/orders/42?verbose=1`), matched against the function's routes;
    /// unset, the function's route with its parameters taken from the data's fields
    #[arg(long, value_name = "PATH")]
    pub path: Option<String>,
    #[command(flatten)]
    pub which: Which,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EventType {
    Http,
    Queue,
    Topic,
    Schedule,
    Bucket,
    Table,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Only this function (every function when unset)
    pub function: Option<String>,
    /// Keep printing new lines as they come (`--follow` also works)
    #[arg(long = "tail", short = 't', visible_alias = "follow")]
    pub follow: bool,
    /// Only lines newer than this: an age (`30s`, `10m`, `2h`) or a time (RFC 3339,
    /// `2026-01-02T03:04:05Z`)
    #[arg(long)]
    pub since: Option<String>,
    /// Only lines containing this text (as printed; a stack trace is part of its line), or the
    /// invocations of this trace id (local)
    #[arg(long, value_name = "TEXT")]
    pub filter: Option<String>,
    /// Only lines at this level or above: debug, info, warn (4xx, retries), error (failed
    /// invocations, 5xx)
    #[arg(long, value_name = "LEVEL")]
    pub level: Option<String>,
    #[command(flatten)]
    pub which: Which,
}

#[derive(Debug, Args)]
pub struct TraceArgs {
    /// A request id of any invocation of the trace, or the trace id
    pub id: String,
    #[command(flatten)]
    pub which: Which,
}

#[derive(Debug, Args)]
pub struct RuntimeArgs {
    /// The state folder of the deployment
    #[arg(long)]
    pub state: std::path::PathBuf,
    /// Gateway port
    #[arg(long)]
    pub port: Option<u16>,
}

#[derive(Debug, Args)]
pub struct GraphArgs {
    /// yaml or json (`--output json` implies json)
    #[arg(long, value_enum, default_value_t = GraphFormat::Yaml)]
    pub format: GraphFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    Yaml,
    Json,
}

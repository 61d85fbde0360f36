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
    after_help = "Examples:\n  nimbus init my-app && cd my-app\n  nimbus validate -p aws\n  nimbus graph -f examples/shop/nimbus.yaml -s prod --format json"
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
    /// The manifest file
    #[arg(
        short = 'f',
        long = "file",
        global = true,
        default_value = "nimbus.yaml",
        value_name = "PATH"
    )]
    pub file: PathBuf,

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

    /// Deploy: build the packages and start (or update) the local runtime in the background
    #[command(
        after_help = "Examples:\n  nimbus deploy                        # the local runtime (the default provider)\n  nimbus deploy -f examples/shop/nimbus.yaml --output json\n\nRedeploying replaces only changed functions; in-flight requests finish first.\nStop it with `nimbus remove`."
    )]
    Deploy(DeployArgs),

    /// Run the app in the local runtime in the foreground, reloading changed functions
    #[command(
        after_help = "Examples:\n  nimbus dev\n  nimbus dev --port 8080\n\nEdit a handler or the manifest and the changed functions reload within a second.\nCtrl-C stops it, letting in-flight requests finish."
    )]
    Dev(DevArgs),

    /// Stop the local runtime and delete its data (tables, queues, buckets, logs)
    #[command(
        after_help = "Examples:\n  nimbus remove --yes\n  nimbus remove --keep-data   # stop it, keep tables, queues and buckets\n\nWithout a terminal, deleting data needs --yes."
    )]
    Remove(RemoveArgs),

    /// Show the deployed app: endpoints, functions and their instances, queue depths
    #[command(after_help = "Examples:\n  nimbus info\n  nimbus info --output json")]
    Info,

    /// Invoke a deployed function with an event
    #[command(
        after_help = "Examples:\n  nimbus invoke get-order --data '{\"id\": \"42\"}'          # as its HTTP route, data = path params/body\n  nimbus invoke charge-payment --data @payment.json\n  nimbus invoke nightly-report --event-type schedule\n  nimbus invoke audit-orders --data '{\"type\": \"table\", \"table\": \"orders\", \"action\": \"insert\", \"key\": {\"id\": \"1\"}, \"new\": {\"id\": \"1\"}}'\n\nData with a `type` field is used as the neutral event as is."
    )]
    Invoke(InvokeArgs),

    /// Show a function's logs: invocations and what the handler printed
    #[command(
        after_help = "Examples:\n  nimbus logs place-order\n  nimbus logs --since 10m --follow     # every function\n  nimbus logs charge-payment --output json"
    )]
    Logs(LogsArgs),

    /// Runs the local runtime process (started by `nimbus deploy`)
    #[command(name = "__runtime", hide = true)]
    Runtime(RuntimeArgs),

    /// Print the resolved app graph (functions, triggers, resources, access edges)
    #[command(
        after_help = "Examples:\n  nimbus graph\n  nimbus graph -p aws -s prod --format json > graph.json"
    )]
    Graph(GraphArgs),

    /// Print the manifest's JSON Schema (for editors and CI linters)
    #[command(
        after_help = "Examples:\n  nimbus schema > nimbus.schema.json\n\nEditors pick it up from a first line such as:\n  # yaml-language-server: $schema=./nimbus.schema.json"
    )]
    Schema,
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
    /// Gateway port (3000, or the next free one, when unset)
    #[arg(long)]
    pub port: Option<u16>,
}

#[derive(Debug, Args)]
pub struct DevArgs {
    /// Gateway port (3000, or the next free one, when unset)
    #[arg(long)]
    pub port: Option<u16>,
}

#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// Stop the runtime but keep its tables, queues, buckets and logs
    #[arg(long)]
    pub keep_data: bool,
    /// Do not ask before deleting data
    #[arg(long, short = 'y')]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct InvokeArgs {
    /// The function
    pub function: String,
    /// The event data: JSON, or @file with JSON
    #[arg(long, short = 'd')]
    pub data: Option<String>,
    /// Which trigger to simulate (the function's first trigger when unset)
    #[arg(long, value_enum)]
    pub event_type: Option<EventType>,
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
    /// Keep printing new lines as they come
    #[arg(long, short = 't')]
    pub follow: bool,
    /// Only lines newer than this: `30s`, `5m`, `2h`
    #[arg(long)]
    pub since: Option<String>,
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

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

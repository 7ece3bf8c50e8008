//! The command line (clap derive). Global options select the API and the output; each
//! subcommand is one operator task.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "bluegreen",
    version,
    about = "Operate Blue/Green deployments: deploy, follow, roll back, promote, approve, and read history and metrics",
    after_help = "The API is found from --local, --endpoint / BLUEGREEN_ENDPOINT, or the config file (~/.config/bluegreen/config.toml)."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// The HTTP API's URL, e.g. https://abc123.execute-api.us-east-1.amazonaws.com
    #[arg(long, global = true, env = "BLUEGREEN_ENDPOINT")]
    pub endpoint: Option<String>,
    /// Use the local stack (make stack-up): the api function invoked through its router.
    /// BLUEGREEN_LOCAL takes 1/0, true/false, yes/no, on/off.
    #[arg(long, global = true, env = "BLUEGREEN_LOCAL", value_parser = clap::builder::BoolishValueParser::new(), num_args = 0, default_missing_value = "true")]
    pub local: bool,
    /// The CloudFormation stack whose ApiUrl output is the endpoint (not looked up: see README).
    #[arg(long, global = true, env = "BLUEGREEN_STACK")]
    pub stack: Option<String>,
    /// AWS region for signing (default: from the endpoint's host, then the AWS config).
    #[arg(long, global = true)]
    pub region: Option<String>,
    /// The config file (default: $XDG_CONFIG_HOME or ~/.config, then bluegreen/config.toml).
    #[arg(long, global = true, env = "BLUEGREEN_CONFIG")]
    pub config: Option<PathBuf>,
    /// human: reports and tables; json: the API's JSON, for CI.
    #[arg(long, short, global = true, value_enum, default_value_t = Output::Human)]
    pub output: Output,
    /// The MFA device for approvals and promotions: arn:aws:iam::<account>:mfa/<name>.
    #[arg(long, global = true, env = "BLUEGREEN_MFA_SERIAL")]
    pub mfa_serial: Option<String>,
    /// The TOTP code, for scripts (asked for on a terminal otherwise).
    #[arg(
        long,
        global = true,
        env = "BLUEGREEN_MFA_CODE",
        hide_env_values = true
    )]
    pub mfa_code: Option<String>,
    /// The IAM identity the local stack sees as the caller.
    #[arg(long, global = true, env = "BLUEGREEN_CALLER")]
    pub caller: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start a deployment of a version (POST /deployments).
    Deploy {
        version: String,
        #[arg(long, short)]
        service: String,
        #[arg(long = "env", short = 'e')]
        environment: String,
        /// The image; default <registry>/<the service's repository>:<version>.
        #[arg(long)]
        image: Option<String>,
        #[arg(long)]
        image_digest: Option<String>,
        /// Registry host for the default image, e.g. 123456789012.dkr.ecr.us-east-1.amazonaws.com
        #[arg(long, env = "BLUEGREEN_REGISTRY")]
        registry: Option<String>,
        /// Watch it until it ends (exit 1 unless it succeeds).
        #[arg(long, short)]
        follow: bool,
    },
    /// A deployment's phases, steps and weights (by id, or an environment's latest).
    Status {
        /// A deployment id, or an environment (its latest deployment).
        target: String,
        #[arg(long, short)]
        service: Option<String>,
        /// Watch it until it ends (exit 1 unless it succeeds).
        #[arg(long, short)]
        follow: bool,
        /// Seconds between polls with --follow.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=300))]
        interval: u64,
    },
    /// Put the previous version back in an environment (asks for confirmation).
    Rollback {
        #[arg(value_name = "ENV")]
        environment: String,
        #[arg(long, short)]
        service: String,
        #[arg(long)]
        reason: Option<String>,
        /// Do not ask (needed when stdin is not a terminal).
        #[arg(long, short)]
        yes: bool,
    },
    /// Promote a version between environments through the gates (MFA for prd).
    Promote {
        version: String,
        #[arg(long, short)]
        service: String,
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
    },
    /// Approve a deployment waiting for approval (MFA when configured).
    Approve {
        id: String,
        #[arg(long)]
        comment: Option<String>,
    },
    /// Reject a deployment waiting for approval (MFA when configured).
    Reject {
        id: String,
        #[arg(long)]
        reason: String,
    },
    /// Deployments of an environment, newest first.
    History {
        #[arg(long = "env", short = 'e')]
        environment: String,
        #[arg(long, short)]
        service: Option<String>,
        #[arg(long, short, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=1000))]
        limit: u64,
    },
    /// Per-environment deployment metrics and the DORA four.
    Metrics {
        #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..=90))]
        days: u32,
        /// The environment for the DORA block (the API's default otherwise).
        #[arg(long = "env", short = 'e')]
        environment: Option<String>,
    },
    /// Show what governs a service or an environment, or change it (administrators, with MFA):
    /// an environment's protection and approval, a service's accounts and promotion gates.
    Policy {
        #[arg(long, short)]
        service: String,
        /// The environment; without it, the service's policy.
        #[arg(long = "env", short = 'e')]
        environment: Option<String>,
        /// Environment: deployments only through promotion, pinned by digest.
        #[arg(long, value_name = "true|false")]
        protected: Option<bool>,
        /// Environment: deployments wait for a person's approval.
        #[arg(long, value_name = "true|false")]
        approval: Option<bool>,
        /// Environment: how long an approval may wait, in seconds (at most 7 days).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=604_800))]
        approval_timeout: Option<u64>,
        /// Service: the accounts its environments' roles may be in (comma-separated; "" for none).
        #[arg(long, value_delimiter = ',', num_args = 0..)]
        accounts: Option<Vec<String>>,
        /// Service: the performance gate passes when the recorded P99 is under this.
        #[arg(long)]
        p99_limit_ms: Option<f64>,
        /// Service: scan severities that block a promotion (comma-separated).
        #[arg(long, value_delimiter = ',')]
        blocking_severities: Option<Vec<String>>,
    },
    /// Why a deployment failed: target health, ECS, links, next steps.
    Troubleshoot {
        /// A deployment id, or an environment (its latest deployment).
        target: String,
        #[arg(long, short)]
        service: Option<String>,
    },
}

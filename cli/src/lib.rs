//! `bluegreen`, the operator CLI: commands over the deployment API, rendered like the product's
//! reports. `main` wires the real session and terminal; tests drive [`dispatch`] with an
//! in-memory transport.

pub mod app;
pub mod args;
pub mod config;
pub mod error;
pub mod https;
pub mod progress;
pub mod real;
pub mod render;
pub mod style;
pub mod transport;

use app::{Ctx, Decision, Deploy, PolicyChange};
use args::Command;
use error::CliError;

/// Runs one command.
pub fn dispatch(ctx: &mut Ctx, command: &Command) -> Result<(), CliError> {
    match command {
        Command::Deploy {
            version,
            service,
            environment,
            image,
            image_digest,
            registry,
            follow,
        } => {
            if registry.is_some() {
                ctx.settings.registry.clone_from(registry);
            }
            app::deploy(
                ctx,
                &Deploy {
                    version: version.clone(),
                    service: service.clone(),
                    environment: environment.clone(),
                    image: image.clone(),
                    image_digest: image_digest.clone(),
                    follow: *follow,
                },
            )
        }
        Command::Status {
            target,
            service,
            follow,
            interval,
        } => {
            ctx.settings.interval = std::time::Duration::from_secs(*interval);
            app::status(ctx, target, service.as_deref(), *follow)
        }
        Command::Rollback {
            environment,
            service,
            reason,
            yes,
        } => app::rollback(ctx, environment, service, reason.as_deref(), *yes),
        Command::Promote {
            version,
            service,
            from,
            to,
        } => app::promote(ctx, version, service, from, to),
        Command::Approve { id, comment } => app::decide(
            ctx,
            id,
            &Decision::Approve {
                comment: comment.clone(),
            },
        ),
        Command::Reject { id, reason } => app::decide(
            ctx,
            id,
            &Decision::Reject {
                reason: reason.clone(),
            },
        ),
        Command::History {
            environment,
            service,
            limit,
        } => app::history(
            ctx,
            environment,
            service.as_deref(),
            usize::try_from(*limit).unwrap_or(20),
        ),
        Command::Metrics { days, environment } => app::metrics(ctx, *days, environment.as_deref()),
        Command::Policy {
            service,
            environment,
            protected,
            approval,
            approval_timeout,
            accounts,
            p99_limit_ms,
            blocking_severities,
        } => app::policy(
            ctx,
            service,
            environment.as_deref(),
            &PolicyChange {
                protected: *protected,
                approval: *approval,
                approval_timeout: *approval_timeout,
                accounts: accounts.clone(),
                p99_limit_ms: *p99_limit_ms,
                blocking_severities: blocking_severities.clone(),
            },
        ),
        Command::Troubleshoot { target, service } => {
            app::troubleshoot(ctx, target, service.as_deref())
        }
    }
}

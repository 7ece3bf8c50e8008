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
            let service = ctx.service(service.as_deref(), "deploy")?;
            app::deploy(
                ctx,
                &Deploy {
                    version: version.clone(),
                    service,
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
            environment,
            follow,
            interval,
        } => {
            ctx.settings.interval = std::time::Duration::from_secs(*interval);
            let service = ctx.service(service.as_deref(), "status")?;
            app::status(ctx, target, &service, environment.as_deref(), *follow)
        }
        Command::Rollback {
            environment,
            service,
            reason,
            yes,
        } => {
            let service = ctx.service(service.as_deref(), "rollback")?;
            app::rollback(ctx, environment, &service, reason.as_deref(), *yes)
        }
        Command::Promote {
            version,
            service,
            from,
            to,
        } => {
            let service = ctx.service(service.as_deref(), "promote")?;
            app::promote(ctx, version, &service, from, to)
        }
        Command::Approve {
            id,
            service,
            environment,
            comment,
        } => {
            let service = ctx.service(service.as_deref(), "approve")?;
            app::decide(
                ctx,
                &app::Scope::new(&service, environment)?,
                id,
                &Decision::Approve {
                    comment: comment.clone(),
                },
            )
        }
        Command::Reject {
            id,
            service,
            environment,
            reason,
        } => {
            let service = ctx.service(service.as_deref(), "reject")?;
            app::decide(
                ctx,
                &app::Scope::new(&service, environment)?,
                id,
                &Decision::Reject {
                    reason: reason.clone(),
                },
            )
        }
        Command::History {
            environment,
            service,
            limit,
        } => {
            let service = ctx.service(service.as_deref(), "history")?;
            app::history(
                ctx,
                &app::Scope::new(&service, environment)?,
                usize::try_from(*limit).unwrap_or(20),
            )
        }
        Command::Metrics {
            service,
            days,
            environment,
        } => {
            let service = ctx.service(service.as_deref(), "metrics")?;
            app::metrics(ctx, &service, *days, environment.as_deref())
        }
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
        Command::Troubleshoot {
            target,
            service,
            environment,
        } => {
            let service = ctx.service(service.as_deref(), "troubleshoot")?;
            app::troubleshoot(ctx, target, &service, environment.as_deref())
        }
    }
}

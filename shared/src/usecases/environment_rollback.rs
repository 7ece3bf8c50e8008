//! Rolling an environment back after a finished release: all traffic to the standby color,
//! which still runs the previous version. It is recorded as a deployment of its own (strategy
//! `rollback`) under the environment's lock, so it cannot interleave with a release, and it
//! writes its metrics line like every other deployment that ends.

use crate::domain::{
    Color, DeploymentRecord, DeploymentStatus, EnvironmentState, Phase, STALE_LOCK_AFTER,
    StepRecord, Strategy, TrafficSplit, environment_after,
};
use crate::error::AdapterError;
use crate::ports::{
    BeginOutcome, Clock, DeploymentStore, EnvironmentAccess, ForwardTarget, LockOutcome, Reach,
    Registry,
};
use crate::registry::EnvironmentConfig;
use std::sync::Arc;
use time::OffsetDateTime;

pub struct EnvironmentRollbackDeps {
    pub registry: Arc<dyn Registry>,
    pub store: Arc<dyn DeploymentStore>,
    /// Reaches the environment's account (through its role, if it has one).
    pub access: Arc<dyn EnvironmentAccess>,
    pub clock: Arc<dyn Clock>,
}

/// A person's request to roll `service`/`environment` back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvironmentRollbackRequest {
    pub service: String,
    pub environment: String,
    /// Without it nothing changes: the answer says what would happen.
    pub confirm: bool,
    pub reason: Option<String>,
    /// Who asks (recorded as the deployer).
    pub caller: String,
}

/// A finished environment rollback.
#[derive(Debug, Clone, PartialEq)]
pub struct EnvironmentRolledBack {
    /// Its deployment record, SUCCEEDED.
    pub record: DeploymentRecord,
    /// The color serving now (the former standby) and the version it runs.
    pub active: Color,
    pub active_version: String,
    /// The color that served before, now standby, and its version if known.
    pub standby: Color,
    pub standby_version: Option<String>,
    /// The split written (100 % on `active`).
    pub split: TrafficSplit,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EnvironmentRollbackError {
    #[error(
        "{service}/{environment} is not in the registry: register it with PUT /services/{service}/environments/{environment}"
    )]
    NotRegistered {
        service: String,
        environment: String,
    },
    #[error(
        "{service}/{environment} has no previous version to roll back to: its standby color gets one when a deployment finishes"
    )]
    NothingToRollBackTo {
        service: String,
        environment: String,
    },
    #[error(
        "{service}/{environment} has a deployment running: {by}; roll it back with POST /services/{service}/environments/{environment}/deployments/{by}/rollback"
    )]
    Running {
        service: String,
        environment: String,
        by: String,
    },
    /// Not confirmed: what the rollback would do.
    #[error("{0}")]
    ConfirmationRequired(String),
    /// The standby color has no healthy targets: traffic is never shifted to it.
    #[error("{0}")]
    StandbyUnhealthy(String),
    /// Another deployment began between the lock and the record.
    #[error("{service}/{environment} has a deployment running: {by}")]
    Locked {
        service: String,
        environment: String,
        by: String,
    },
    #[error("the registry's traffic wiring is invalid: {0}")]
    InvalidWiring(String),
    #[error("rollback {0} ended with no colors recorded; inspect the record")]
    NoColors(String),
    #[error("{0}")]
    Aws(#[from] AdapterError),
    /// The rollback failed, and undoing what it had done failed too.
    #[error(
        "{error}; cleaning up also failed ({cleanup}): {service}/{environment} may stay locked by {id} until it is released"
    )]
    CleanupFailed {
        error: Box<EnvironmentRollbackError>,
        cleanup: String,
        service: String,
        environment: String,
        id: String,
    },
}

type Error = EnvironmentRollbackError;

/// `<service>-<environment>-rollback-<unix millis>`, shortened to fit 80 characters.
fn rollback_id(service: &str, environment: &str, now: OffsetDateTime) -> String {
    let suffix = format!("-rollback-{}", now.unix_timestamp_nanos() / 1_000_000);
    let mut prefix = format!("{service}-{environment}");
    prefix.truncate(80usize.saturating_sub(suffix.len()));
    format!("{prefix}{suffix}")
}

fn v(version: Option<&str>) -> String {
    version.map_or_else(|| "version unknown".to_string(), |s| format!("v{s}"))
}

/// Everything the rollback acts on, resolved before the lock is taken.
struct Plan {
    id: String,
    config: EnvironmentConfig,
    state: EnvironmentState,
    active: Color,
    active_version: Option<String>,
    standby_version: String,
    reason: String,
    deployer: String,
}

impl Plan {
    /// How this environment rollback (recorded as deployment `id`) reaches the account.
    fn reach(&self) -> Reach {
        Reach {
            role_arn: self.config.role_arn.as_ref().map(|r| r.to_string()),
            service: self.config.service.to_string(),
            environment: self.config.environment.to_string(),
            on_behalf_of: self.id.clone(),
        }
    }

    fn standby(&self) -> Color {
        self.active.other()
    }

    fn forward(&self) -> Result<ForwardTarget, Error> {
        let t = &self.config.traffic;
        Ok(ForwardTarget {
            target: t
                .target()
                .map_err(|e| Error::InvalidWiring(e.to_string()))?,
            blue: t.blue_target_group_arn.clone(),
            green: t.green_target_group_arn.clone(),
        })
    }
}

/// How far a rollback got before it failed: what has to be undone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reached {
    Locked,
    Recorded,
    TrafficWritten,
}

/// Rolls the environment back to its standby color. Refused, changing nothing, when the
/// environment is not registered, has no previous version, has a deployment running, or the
/// request is not confirmed. A failure after the lock leaves the environment as it was: traffic
/// back on the active color, the rollback's record FAILED with why, the lock released.
pub async fn roll_back_environment(
    deps: &EnvironmentRollbackDeps,
    req: &EnvironmentRollbackRequest,
) -> Result<EnvironmentRolledBack, Error> {
    let (service, environment) = (&req.service, &req.environment);
    let Some(config) = deps
        .registry
        .environment_config(service, environment)
        .await?
    else {
        return Err(Error::NotRegistered {
            service: service.clone(),
            environment: environment.clone(),
        });
    };
    let state = deps.store.environment(service, environment).await?;
    let Some((state, active, standby_version)) = state.and_then(|s| {
        let active = s.active_color?;
        let standby = s.standby_version.clone()?;
        Some((s, active, standby))
    }) else {
        return Err(Error::NothingToRollBackTo {
            service: service.clone(),
            environment: environment.clone(),
        });
    };
    if let Some(by) = &state.active_deployment {
        return Err(Error::Running {
            service: service.clone(),
            environment: environment.clone(),
            by: by.clone(),
        });
    }
    let standby = active.other();
    if !req.confirm {
        return Err(Error::ConfirmationRequired(format!(
            "Rollback will shift all traffic to {} (v{standby_version}); {} ({}) becomes standby. Send {{\"confirm\": true}} to proceed.",
            standby.title(),
            active.title(),
            v(state.active_version.as_deref()),
        )));
    }
    let now = deps.clock.now();
    let id = rollback_id(service, environment, now);
    let reason = match req.reason.as_deref().map(str::trim) {
        Some(why) if !why.is_empty() => format!("manual rollback by {}: {why}", req.caller),
        _ => format!("manual rollback by {}", req.caller),
    };
    match deps
        .store
        .acquire_lock(service, environment, &id, now, STALE_LOCK_AFTER)
        .await?
    {
        LockOutcome::Acquired => {}
        LockOutcome::HeldBy(by) => {
            return Err(Error::Running {
                service: service.clone(),
                environment: environment.clone(),
                by,
            });
        }
    }
    let plan = Plan {
        id,
        active_version: state.active_version.clone(),
        config,
        state,
        active,
        standby_version,
        reason,
        deployer: req.caller.clone(),
    };
    match run(deps, &plan).await {
        Ok(done) => Ok(done),
        Err((e, reached)) => Err(undo(deps, &plan, reached, e).await),
    }
}

async fn run(
    deps: &EnvironmentRollbackDeps,
    p: &Plan,
) -> Result<EnvironmentRolledBack, (Error, Reached)> {
    let at = |reached: Reached| move |e: Error| (e, reached);
    let aws = |reached: Reached| move |e: AdapterError| (Error::Aws(e), reached);
    let standby = p.standby();
    let role = &p.reach();
    let tg = p.config.traffic.target_group(standby);

    // Never shift traffic to a target group without healthy targets.
    let health = async {
        let targets = deps.access.targets(role).await?;
        targets.target_health(tg).await
    }
    .await
    .map_err(aws(Reached::Locked))?;
    if health.healthy == 0 {
        let problems = if health.problems.is_empty() {
            String::new()
        } else {
            format!(": {}", health.problems.join("; "))
        };
        return Err(at(Reached::Locked)(Error::StandbyUnhealthy(format!(
            "{} has no healthy targets ({}/{} healthy){problems}; bring its service back before rolling back",
            standby.title(),
            health.healthy,
            health.registered
        ))));
    }

    let now = deps.clock.now();
    let record = DeploymentRecord {
        id: p.id.clone(),
        execution_arn: String::new(),
        service: p.config.service.to_string(),
        environment: p.config.environment.to_string(),
        version: p.standby_version.clone(),
        image: standby_image(deps, p).await,
        image_digest: None,
        strategy: Strategy::Rollback,
        deployer: p.deployer.clone(),
        triggered_by: None,
        active_color: Some(p.active),
        target_color: Some(standby),
        previous_version: p.active_version.clone(),
        replaced_version: Some(p.standby_version.clone()),
        phase: Phase::ShiftingTraffic,
        status: DeploymentStatus::InProgress,
        target_weight: 0,
        started_at: now,
        finished_at: None,
        duration_seconds: None,
        reason: Some(p.reason.clone()),
        readiness: None,
        traffic: p.config.traffic.clone(),
        role_arn: p.config.role_arn.as_ref().map(|r| r.to_string()),
        approval: None,
        gates: None,
        image_pushed_at: None,
    };
    match deps
        .store
        .begin(&record)
        .await
        .map_err(aws(Reached::Locked))?
    {
        BeginOutcome::Started | BeginOutcome::AlreadyStarted(_) => {}
        BeginOutcome::Locked { by } => {
            return Err(at(Reached::Locked)(Error::Locked {
                service: record.service.clone(),
                environment: record.environment.clone(),
                by,
            }));
        }
    }

    let split = TrafficSplit::all_on(standby);
    let fwd = p.forward().map_err(at(Reached::Recorded))?;
    let router = deps
        .access
        .router(role)
        .await
        .map_err(aws(Reached::Recorded))?;
    router
        .set_split(&fwd, split)
        .await
        .map_err(aws(Reached::TrafficWritten))?;
    deps.store
        .record_step(&StepRecord {
            deployment_id: p.id.clone(),
            step_index: 0,
            split,
            target_color: standby,
            shifted_at: deps.clock.now(),
        })
        .await
        .map_err(aws(Reached::TrafficWritten))?;
    let mut record = deps
        .store
        .transition(&p.id, Phase::Verifying, Some(100), None)
        .await
        .map_err(aws(Reached::TrafficWritten))?;
    let now = deps.clock.now();
    record.finish(Phase::Succeeded, now, Some(p.reason.clone()));
    let env = environment_after(&record, Some(&p.state), now)
        .ok_or_else(|| (Error::NoColors(p.id.clone()), Reached::TrafficWritten))?;
    deps.store
        .finish(&record, &env)
        .await
        .map_err(aws(Reached::TrafficWritten))?;
    crate::emf::emit(&record);
    tracing::warn!(deployment_id = %p.id, reason = %p.reason, active = %standby, "environment rolled back");
    Ok(EnvironmentRolledBack {
        record,
        active: standby,
        active_version: p.standby_version.clone(),
        standby: p.active,
        standby_version: p.active_version.clone(),
        split,
        reason: p.reason.clone(),
    })
}

/// The image the standby color runs, for the record; best effort.
async fn standby_image(deps: &EnvironmentRollbackDeps, p: &Plan) -> String {
    let workload = p.config.compute.workload(p.standby());
    let image = async {
        let compute = deps.access.compute(&p.reach(), workload.platform).await?;
        compute.current_image(&workload).await
    }
    .await;
    match image {
        Ok(Some(image)) => image,
        Ok(None) => "unknown".into(),
        Err(e) => {
            tracing::warn!(error = %e, "the standby color's image could not be read");
            "unknown".into()
        }
    }
}

/// Leaves the environment as it was: traffic back on the active color, the record failed
/// with the reason (and its metrics line written), the lock released. Returns the error to
/// report.
async fn undo(deps: &EnvironmentRollbackDeps, p: &Plan, reached: Reached, e: Error) -> Error {
    let why = format!("{}: {e}", p.reason);
    let cleanup: Result<(), String> = async {
        if reached == Reached::TrafficWritten {
            let router = deps
                .access
                .router(&p.reach())
                .await
                .map_err(|e| e.to_string())?;
            crate::usecases::rollback::restore(
                router.as_ref(),
                &p.forward().map_err(|e| e.to_string())?,
                p.active,
            )
            .await
            .map_err(|e| e.to_string())?;
        }
        if reached == Reached::Locked {
            return deps
                .store
                .release_lock(&p.config.service, &p.config.environment, &p.id)
                .await
                .map_err(|e| e.to_string());
        }
        let mut record = deps
            .store
            .transition(&p.id, Phase::RollingBack, None, Some(&why))
            .await
            .map_err(|e| e.to_string())?;
        let now = deps.clock.now();
        record.finish(Phase::Failed, now, Some(why.clone()));
        let env = environment_after(&record, Some(&p.state), now)
            .ok_or_else(|| Error::NoColors(p.id.clone()).to_string())?;
        deps.store
            .finish(&record, &env)
            .await
            .map_err(|e| e.to_string())?;
        crate::emf::emit(&record);
        Ok(())
    }
    .await;
    match cleanup {
        Ok(()) => e,
        Err(c) => {
            tracing::error!(deployment_id = %p.id, error = %c, "rollback cleanup failed");
            Error::CleanupFailed {
                error: Box::new(e),
                cleanup: c,
                service: p.config.service.to_string(),
                environment: p.config.environment.to_string(),
                id: p.id.clone(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::sample::{self, World};
    use time::macros::datetime;

    /// checkout/dev after 1.3.0 succeeded on green: green active, blue standby on 1.2.0.
    async fn released() -> World {
        let w = World::default().with_registry().await;
        w.store.put_env(EnvironmentState {
            service: "checkout".into(),
            environment: "dev".into(),
            active_color: Some(Color::Green),
            active_version: Some("1.3.0".into()),
            standby_version: Some("1.2.0".into()),
            active_deployment: None,
            last_deployment: Some(sample::DEPLOYMENT_ID.into()),
            updated_at: datetime!(2025-01-03 09:50:00 UTC),
        });
        *w.router.split.lock().unwrap_or_else(|p| p.into_inner()) =
            TrafficSplit::all_on(Color::Green);
        w
    }

    fn deps(w: &World) -> EnvironmentRollbackDeps {
        EnvironmentRollbackDeps {
            registry: w.registry.clone(),
            store: w.store.clone(),
            access: w.access.clone(),
            clock: w.clock.clone(),
        }
    }

    fn request(confirm: bool) -> EnvironmentRollbackRequest {
        EnvironmentRollbackRequest {
            service: "checkout".into(),
            environment: "dev".into(),
            confirm,
            reason: Some("1.3.0 corrupts carts".into()),
            caller: "alice".into(),
        }
    }

    /// The metrics lines written since the last call: (deployment id, status) of each.
    fn metrics_lines() -> Vec<(String, String)> {
        crate::emf::emitted::take()
            .iter()
            .map(|doc| {
                (
                    doc["DeploymentId"].as_str().unwrap_or_default().to_string(),
                    doc["Status"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }

    #[tokio::test]
    async fn a_finished_environment_rollback_writes_its_metrics_line_once() {
        // GIVEN a released environment
        let w = released().await;
        let _ = metrics_lines();
        // WHEN it is rolled back
        let done = roll_back_environment(&deps(&w), &request(true))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        // THEN blue serves 1.2.0, and one metrics line counts the rollback as a succeeded
        // deployment of its own, like every other deployment that ends
        assert_eq!(
            (done.active, done.active_version.as_str()),
            (Color::Blue, "1.2.0")
        );
        assert_eq!(done.record.strategy, Strategy::Rollback);
        assert_eq!(
            metrics_lines(),
            vec![(done.record.id.clone(), "SUCCEEDED".to_string())]
        );
        let doc = crate::emf::deployment_finished(&done.record)
            .unwrap_or_else(|| panic!("a finished rollback has metrics"));
        assert_eq!(
            (
                &doc["Service"],
                &doc["Environment"],
                &doc[crate::emf::DURATION]
            ),
            (
                &serde_json::json!("checkout"),
                &serde_json::json!("dev"),
                &serde_json::json!(0)
            )
        );
    }

    #[tokio::test]
    async fn a_failed_environment_rollback_writes_a_failed_metrics_line_and_changes_nothing() {
        // GIVEN the listener refuses the write
        let w = released().await;
        w.router
            .fail_next_writes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(AdapterError::Other(
                "listener reads back Blue: 50% | Green: 50%".into(),
            ));
        let _ = metrics_lines();
        // WHEN it is rolled back
        let err = roll_back_environment(&deps(&w), &request(true)).await;
        // THEN it fails, the environment is as it was and released, and its record ends FAILED
        // with one metrics line
        assert!(
            matches!(&err, Err(EnvironmentRollbackError::Aws(_))),
            "{err:?}"
        );
        let env = w
            .store
            .env("checkout", "dev")
            .unwrap_or_else(|| panic!("no environment"));
        assert_eq!(
            (
                env.active_color,
                env.active_deployment,
                env.last_deployment.as_deref()
            ),
            (Some(Color::Green), None, Some(sample::DEPLOYMENT_ID))
        );
        let lines = metrics_lines();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert_eq!(lines[0].1, "FAILED");
        assert_eq!(
            w.store.record(&lines[0].0).map(|r| r.status),
            Some(DeploymentStatus::Failed)
        );
    }

    #[tokio::test]
    async fn a_refused_environment_rollback_writes_no_metrics_line() {
        let w = released().await;
        let _ = metrics_lines();
        let err = roll_back_environment(&deps(&w), &request(false)).await;
        assert!(
            matches!(&err, Err(EnvironmentRollbackError::ConfirmationRequired(_))),
            "{err:?}"
        );
        // an unhealthy standby is refused after the lock: released, nothing recorded
        w.targets.set(&sample::tg(sample::BLUE_TG), 2, 0);
        let err = roll_back_environment(&deps(&w), &request(true)).await;
        assert!(
            matches!(&err, Err(EnvironmentRollbackError::StandbyUnhealthy(_))),
            "{err:?}"
        );
        assert_eq!(metrics_lines(), Vec::new());
        assert!(w.router.writes().is_empty());
        assert_eq!(
            w.store
                .env("checkout", "dev")
                .and_then(|e| e.active_deployment),
            None
        );
    }
}

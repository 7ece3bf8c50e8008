//! Rolling an environment back after a finished release: all traffic to the standby color,
//! which still runs the previous version. It is recorded as a deployment of its own (strategy
//! `rollback`) under the environment's lock, so it cannot interleave with a release.

use crate::http::{ApiError, Reply};
use crate::views::weights;
use crate::{ApiDeps, Call, requests};
use serde_json::json;
use shared::domain::{
    Color, DeploymentRecord, DeploymentStatus, EnvironmentState, Phase, StepRecord, TrafficSplit,
};
use shared::ports::{ForwardTarget, LockOutcome};
use shared::registry::EnvironmentConfig;
use time::OffsetDateTime;

fn v(version: Option<&str>) -> String {
    version.map_or_else(|| "version unknown".to_string(), |s| format!("v{s}"))
}

/// `<service>-<environment>-rollback-<unix millis>`, shortened to fit 80 characters.
fn rollback_id(service: &str, environment: &str, now: OffsetDateTime) -> String {
    let suffix = format!("-rollback-{}", now.unix_timestamp_nanos() / 1_000_000);
    let mut prefix = format!("{service}-{environment}");
    prefix.truncate(80usize.saturating_sub(suffix.len()));
    format!("{prefix}{suffix}")
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
    fn reach(&self) -> shared::ports::Reach {
        shared::ports::Reach {
            role_arn: self.config.role_arn.as_ref().map(|r| r.to_string()),
            service: self.config.service.to_string(),
            environment: self.config.environment.to_string(),
            on_behalf_of: self.id.clone(),
        }
    }

    fn standby(&self) -> Color {
        self.active.other()
    }
    fn forward(&self) -> Result<ForwardTarget, ApiError> {
        let t = &self.config.traffic;
        Ok(ForwardTarget {
            target: t.target().map_err(|e| {
                ApiError::internal(format!("the registry's traffic wiring is invalid: {e}"))
            })?,
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

pub async fn roll_back(deps: &ApiDeps, call: &Call) -> Result<Reply, ApiError> {
    let body = requests::environment_rollback(call.body(), &call.scope)?;
    let service = call.scope.service.clone();
    let environment = call.scope.environment()?.to_string();
    let config = match deps
        .registry
        .environment_config(&service, &environment)
        .await?
    {
        Some(c) => c,
        None => {
            return Err(ApiError::not_found(format!(
                "{service}/{environment} is not in the registry: register it with PUT /services/{service}/environments/{environment}"
            )));
        }
    };
    let state = deps.store.environment(&service, &environment).await?;
    let Some((state, active, standby_version)) = state.and_then(|s| {
        let active = s.active_color?;
        let standby = s.standby_version.clone()?;
        Some((s, active, standby))
    }) else {
        return Err(ApiError::conflict(format!(
            "{service}/{environment} has no previous version to roll back to: its standby color gets one when a deployment finishes"
        )));
    };
    if let Some(by) = &state.active_deployment {
        return Err(ApiError::conflict(format!(
            "{service}/{environment} has a deployment running: {by}; roll it back with POST /services/{service}/environments/{environment}/deployments/{by}/rollback"
        )));
    }
    let standby = active.other();
    if !body.confirm {
        return Err(ApiError::confirmation_required(format!(
            "Rollback will shift all traffic to {} (v{standby_version}); {} ({}) becomes standby. Send {{\"confirm\": true}} to proceed.",
            standby.title(),
            active.title(),
            v(state.active_version.as_deref()),
        )));
    }
    let now = deps.clock.now();
    let id = rollback_id(&service, &environment, now);
    let reason = match body.reason.as_deref().map(str::trim) {
        Some(why) if !why.is_empty() => format!("manual rollback by {}: {why}", call.caller),
        _ => format!("manual rollback by {}", call.caller),
    };
    match deps
        .store
        .acquire_lock(
            &service,
            &environment,
            &id,
            now,
            shared::start::STALE_LOCK_AFTER,
        )
        .await?
    {
        LockOutcome::Acquired => {}
        LockOutcome::HeldBy(by) => {
            return Err(ApiError::conflict(format!(
                "{service}/{environment} has a deployment running: {by}; roll it back with POST /services/{service}/environments/{environment}/deployments/{by}/rollback"
            )));
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
        deployer: call.caller.clone(),
    };
    match run(deps, &plan).await {
        Ok(reply) => Ok(reply),
        Err((e, reached)) => Err(undo(deps, &plan, reached, e).await),
    }
}

async fn run(deps: &ApiDeps, p: &Plan) -> Result<Reply, (ApiError, Reached)> {
    let at = |reached: Reached| move |e: ApiError| (e, reached);
    let standby = p.standby();
    let role = &p.reach();
    let tg = p.config.traffic.target_group(standby);

    // Never shift traffic to a target group without healthy targets.
    let health = async {
        let targets = deps.access.targets(role).await?;
        targets.target_health(tg).await
    }
    .await
    .map_err(|e| at(Reached::Locked)(e.into()))?;
    if health.healthy == 0 {
        let problems = if health.problems.is_empty() {
            String::new()
        } else {
            format!(": {}", health.problems.join("; "))
        };
        return Err(at(Reached::Locked)(ApiError::conflict(format!(
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
        strategy: shared::domain::Strategy::Rollback,
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
        .map_err(|e| at(Reached::Locked)(e.into()))?
    {
        shared::ports::BeginOutcome::Started | shared::ports::BeginOutcome::AlreadyStarted(_) => {}
        shared::ports::BeginOutcome::Locked { by } => {
            return Err(at(Reached::Locked)(ApiError::conflict(format!(
                "{}/{} has a deployment running: {by}",
                record.service, record.environment
            ))));
        }
    }

    let split = TrafficSplit::all_on(standby);
    let fwd = p.forward().map_err(at(Reached::Recorded))?;
    let router = deps
        .access
        .router(role)
        .await
        .map_err(|e| at(Reached::Recorded)(e.into()))?;
    router
        .set_split(&fwd, split)
        .await
        .map_err(|e| at(Reached::TrafficWritten)(e.into()))?;
    deps.store
        .record_step(&StepRecord {
            deployment_id: p.id.clone(),
            step_index: 0,
            split,
            target_color: standby,
            shifted_at: deps.clock.now(),
        })
        .await
        .map_err(|e| at(Reached::TrafficWritten)(e.into()))?;
    let mut record = deps
        .store
        .transition(&p.id, Phase::Verifying, Some(100), None)
        .await
        .map_err(|e| at(Reached::TrafficWritten)(e.into()))?;
    let now = deps.clock.now();
    record.finish(Phase::Succeeded, now, Some(p.reason.clone()));
    let env = EnvironmentState {
        active_color: Some(standby),
        active_version: Some(p.standby_version.clone()),
        standby_version: p.active_version.clone(),
        active_deployment: None,
        last_deployment: Some(p.id.clone()),
        updated_at: now,
        ..p.state.clone()
    };
    deps.store
        .finish(&record, &env)
        .await
        .map_err(|e| at(Reached::TrafficWritten)(e.into()))?;
    tracing::warn!(deployment_id = %p.id, reason = %p.reason, active = %standby, "environment rolled back");

    let mut report = vec![
        "Rolling back...".to_string(),
        format!("  [100%] {split}"),
        format!("{} Rollback complete", shared::report::OK),
    ];
    report.extend(shared::report::colors(
        standby,
        Some(&p.standby_version),
        p.active_version.as_deref(),
        split,
    ));
    Ok(Reply::ok(json!({
        "deployment_id": p.id,
        "service": record.service,
        "environment": record.environment,
        "status": record.status.as_str(),
        "active": {"color": standby, "version": p.standby_version},
        "standby": {"color": p.active, "version": p.active_version},
        "weights": weights(split),
        "reason": p.reason,
        "report": report,
    })))
}

/// The image the standby color runs, for the record; best effort.
async fn standby_image(deps: &ApiDeps, p: &Plan) -> String {
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
/// with the reason, the lock released. Returns the error to report.
async fn undo(deps: &ApiDeps, p: &Plan, reached: Reached, e: ApiError) -> ApiError {
    let why = format!("{}: {}", p.reason, e.message);
    let cleanup: Result<(), String> = async {
        if reached == Reached::TrafficWritten {
            let router = deps
                .access
                .router(&p.reach())
                .await
                .map_err(|e| e.to_string())?;
            shared::rollback::restore(
                router.as_ref(),
                &p.forward().map_err(|e| e.message)?,
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
        let env = EnvironmentState {
            active_deployment: None,
            updated_at: now,
            ..p.state.clone()
        };
        deps.store
            .finish(&record, &env)
            .await
            .map_err(|e| e.to_string())
    }
    .await;
    match cleanup {
        Ok(()) => e,
        Err(c) => {
            tracing::error!(deployment_id = %p.id, error = %c, "rollback cleanup failed");
            ApiError {
                message: format!(
                    "{}; cleaning up also failed ({c}): {}/{} may stay locked by {} until it is released",
                    e.message, p.config.service, p.config.environment, p.id
                ),
                ..e
            }
        }
    }
}

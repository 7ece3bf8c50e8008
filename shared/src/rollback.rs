//! Rolling a deployment back: all traffic to the color that was active when it started
//! (written once, read back and verified), the reason recorded, the environment released.
//! Shared by the rollback phase, the alarm trigger, the API and the execution-status handler,
//! so every path restores traffic the same way. Idempotent.

use crate::domain::{Color, DeploymentRecord, EnvironmentState, Phase, TrafficSplit};
use crate::error::PhaseError;
use crate::ports::{Clock, DeploymentStore, EnvironmentAccess, ForwardTarget, TrafficRouter};
use std::sync::Arc;

pub struct RollbackDeps {
    pub store: Arc<dyn DeploymentStore>,
    /// Reaches the environment's account (its role is on the record).
    pub access: Arc<dyn EnvironmentAccess>,
    pub clock: Arc<dyn Clock>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RollbackOutcome {
    /// Traffic had moved and is back on the previous color.
    RolledBack(DeploymentRecord),
    /// The new version never received traffic; the deployment is marked failed.
    Failed(DeploymentRecord),
    /// It was waiting for approval (rejected, timed out, or stopped): nothing was deployed.
    NotDeployed(DeploymentRecord),
    /// The deployment had already ended (traffic re-verified unless it succeeded).
    AlreadyFinished(DeploymentRecord),
    /// No record: the deployment never started. Its lock, if any, was released.
    NeverStarted,
}

/// Who holds a lock when there is no record to say: the environment of a start request.
#[derive(Debug, Clone, Copy)]
pub struct LockOwner<'a> {
    pub service: &'a str,
    pub environment: &'a str,
}

fn forward(record: &DeploymentRecord) -> Result<ForwardTarget, PhaseError> {
    Ok(ForwardTarget {
        target: record.traffic.target()?,
        blue: record.traffic.blue_target_group_arn.clone(),
        green: record.traffic.green_target_group_arn.clone(),
    })
}

/// Puts 100 % on `active` unless it is already there; true if traffic had to be moved.
pub async fn restore(
    router: &dyn TrafficRouter,
    fwd: &ForwardTarget,
    active: Color,
) -> Result<bool, PhaseError> {
    let restore = TrafficSplit::all_on(active);
    if router.current_split(fwd).await? == restore {
        return Ok(false);
    }
    router
        .set_split(fwd, restore)
        .await
        .map_err(|e| PhaseError::traffic_write(e, format!("restoring {restore}")))?;
    Ok(true)
}

/// Whether the deployment was waiting for approval when its rollback began: in that phase, or
/// already ROLLING_BACK (a retried rollback) with an approval that never said yes, so no traffic
/// can have moved. Without the second case a retry would end it FAILED instead of NOT_DEPLOYED.
pub fn waiting_for_approval(record: &DeploymentRecord) -> bool {
    match record.phase {
        Phase::AwaitingApproval => true,
        Phase::RollingBack => record
            .approval
            .as_ref()
            .is_some_and(|a| a.state != crate::domain::ApprovalState::Approved),
        _ => false,
    }
}

pub async fn roll_back(
    deps: &RollbackDeps,
    id: &str,
    reason: &str,
    owner: Option<LockOwner<'_>>,
) -> Result<RollbackOutcome, PhaseError> {
    let Some(record) = deps.store.deployment(id).await? else {
        if let Some(o) = owner {
            deps.store
                .release_lock(o.service, o.environment, id)
                .await?;
        }
        tracing::warn!(%reason, "nothing to roll back: the deployment never started");
        return Ok(RollbackOutcome::NeverStarted);
    };
    if record.phase.is_terminal() {
        // Finished already (e.g. rolled back by an alarm). If a phase raced it and moved
        // traffic afterwards, put it back: a rolled-back environment serves only the active color.
        if record.phase != Phase::Succeeded {
            let router = deps.access.router(record.role_arn.as_deref()).await?;
            restore(router.as_ref(), &forward(&record)?, record.active_color).await?;
        }
        return Ok(RollbackOutcome::AlreadyFinished(record));
    }

    let was_awaiting_approval = waiting_for_approval(&record);
    let mut record = deps
        .store
        .transition(id, Phase::RollingBack, None, Some(reason))
        .await
        .map_err(PhaseError::from)?;
    let active = record.active_color;
    let router = deps.access.router(record.role_arn.as_deref()).await?;
    let moved = restore(router.as_ref(), &forward(&record)?, active).await?;
    let shifted = moved || !deps.store.steps(id).await?.is_empty();
    let final_phase = if shifted {
        Phase::RolledBack
    } else if was_awaiting_approval {
        Phase::NotDeployed
    } else {
        Phase::Failed
    };
    let now = deps.clock.now();
    record.finish(final_phase, now, Some(reason.to_string()));
    let env = environment_after(deps, &record, active, now).await?;
    deps.store.finish(&record, &env).await?;
    // Every way a rollback happens (the phase, an alarm, a person, an ended execution) comes
    // through here once: one metrics line per rolled-back deployment.
    crate::emf::emit(&record);
    tracing::warn!(%reason, restored = %active, status = record.status.as_str(), "deployment rolled back");
    Ok(match final_phase {
        Phase::RolledBack => RollbackOutcome::RolledBack(record),
        Phase::NotDeployed => RollbackOutcome::NotDeployed(record),
        _ => RollbackOutcome::Failed(record),
    })
}

/// [`roll_back`], run again while it fails with a retryable error (throttling, 5xx or timeouts
/// that outlasted the SDK's own retries), up to `attempts` runs in all. For the asynchronously
/// invoked backstops, whose only other retries are Lambda's two: without this, three throttled
/// calls in a row leave a deployment half rolled back and its environment locked until a
/// person acts. Safe because `roll_back` is idempotent.
pub async fn roll_back_retrying(
    deps: &RollbackDeps,
    id: &str,
    reason: &str,
    owner: Option<LockOwner<'_>>,
    attempts: u32,
) -> Result<RollbackOutcome, PhaseError> {
    let mut tries = 1;
    loop {
        match roll_back(deps, id, reason, owner).await {
            Err(PhaseError::Retryable(e)) if tries < attempts => {
                tracing::warn!(attempt = tries, error = %e, "rollback interrupted; trying again");
                tries += 1;
            }
            other => return other,
        }
    }
}

/// The environment after a rollback: the active color is unchanged; the standby color now runs
/// the version that was being deployed.
async fn environment_after(
    deps: &RollbackDeps,
    record: &DeploymentRecord,
    active: Color,
    now: time::OffsetDateTime,
) -> Result<EnvironmentState, PhaseError> {
    let known = deps
        .store
        .environment(&record.service, &record.environment)
        .await?;
    Ok(EnvironmentState {
        service: record.service.clone(),
        environment: record.environment.clone(),
        active_color: Some(active),
        active_version: known
            .and_then(|e| e.active_version)
            .or_else(|| record.previous_version.clone()),
        standby_version: Some(record.version.clone()),
        active_deployment: None,
        last_deployment: Some(record.id.clone()),
        updated_at: now,
    })
}

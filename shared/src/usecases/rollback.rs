//! Rolling a deployment back: all traffic to the color that was active when it started
//! (written once, read back and verified), the reason recorded, the environment released.
//! Shared by the rollback phase, the alarm trigger, the API and the execution-status handler,
//! so every path restores traffic the same way. Idempotent.

use crate::domain::{self, Color, DeploymentRecord, Phase, TrafficSplit};
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
    /// It never got past REQUESTED (no colors read, nothing deployed): its lock, if it held
    /// one, is released and the record ends FAILED with "never got past deploying green: ...".
    NeverStarted(DeploymentRecord),
    /// No record, and the caller had no request to write one from (e.g. an execution-status
    /// event without its input). A lock can only be released by the caller that knows it.
    NotRecorded,
}

/// The prefix of the reason of a deployment that ended before its first phase got through.
pub const NEVER_STARTED: &str = "never got past deploying green";

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

/// Rolls deployment `id` back for `reason`. `requested` is the record the caller can write when
/// none exists yet (built from the execution's request): with it, an execution that ends before
/// its first phase recorded anything still ends in history.
pub async fn roll_back(
    deps: &RollbackDeps,
    id: &str,
    reason: &str,
    requested: Option<&DeploymentRecord>,
) -> Result<RollbackOutcome, PhaseError> {
    // Twice at most: a REQUESTED deployment whose first phase begins while this ends it is
    // rolled back as a begun one.
    for _ in 0..2 {
        let record = match deps.store.deployment(id).await? {
            Some(r) => r,
            None => match requested {
                Some(r) => r.clone(),
                None => {
                    tracing::warn!(%reason, "nothing to roll back: the deployment has no record");
                    return Ok(RollbackOutcome::NotRecorded);
                }
            },
        };
        if record.phase == Phase::Requested {
            match end_unstarted(deps, record, reason).await? {
                Some(ended) => return Ok(RollbackOutcome::NeverStarted(ended)),
                None => continue,
            }
        }
        return roll_back_begun(deps, record, reason).await;
    }
    Err(PhaseError::Retryable(format!(
        "deployment {id} changed phase twice while being rolled back; retry"
    )))
}

/// Ends a deployment that never got past REQUESTED: its lock released first (so a crash in
/// between leaves a record to finish, never a lock with an ended record), then the record
/// FAILED with why. `None` when its first phase began meanwhile.
async fn end_unstarted(
    deps: &RollbackDeps,
    mut record: DeploymentRecord,
    reason: &str,
) -> Result<Option<DeploymentRecord>, PhaseError> {
    deps.store
        .release_lock(&record.service, &record.environment, &record.id)
        .await?;
    let why = format!("{NEVER_STARTED}: {reason}");
    record.finish(Phase::Failed, deps.clock.now(), Some(why));
    match deps.store.end_request(&record).await {
        Ok(()) => {}
        Err(crate::error::AdapterError::ConditionFailed(m)) => {
            tracing::info!(detail = %m, "the deployment began while it was being ended");
            return Ok(None);
        }
        Err(e) => return Err(e.into()),
    }
    crate::emf::emit(&record);
    tracing::warn!(
        reason = record.reason.as_deref().unwrap_or_default(),
        "deployment ended before deploying anything"
    );
    Ok(Some(record))
}

async fn roll_back_begun(
    deps: &RollbackDeps,
    record: DeploymentRecord,
    reason: &str,
) -> Result<RollbackOutcome, PhaseError> {
    if record.phase.is_terminal() {
        // Finished already (e.g. rolled back by an alarm). If a phase raced it and moved
        // traffic afterwards, put it back: a rolled-back environment serves only the active color.
        // (One that ended before its colors were read never moved any.)
        if let Some((active, _)) = record.colors().filter(|_| record.phase != Phase::Succeeded) {
            let router = deps.access.router(&record.reach()).await?;
            restore(router.as_ref(), &forward(&record)?, active).await?;
        }
        return Ok(RollbackOutcome::AlreadyFinished(record));
    }
    let Some((active, _)) = record.colors() else {
        return Err(PhaseError::Internal(format!(
            "deployment {} is in phase {} but has no colors recorded; inspect the record",
            record.id, record.phase
        )));
    };
    let id = record.id.as_str();

    let was_awaiting_approval = domain::waiting_for_approval(&record);
    let mut record = deps
        .store
        .transition(id, Phase::RollingBack, None, Some(reason))
        .await
        .map_err(PhaseError::from)?;
    let id = record.id.clone();
    let router = deps.access.router(&record.reach()).await?;
    let moved = restore(router.as_ref(), &forward(&record)?, active).await?;
    let shifted = moved || !deps.store.steps(&id).await?.is_empty();
    let final_phase = domain::rollback_final_phase(shifted, was_awaiting_approval);
    let now = deps.clock.now();
    record.finish(final_phase, now, Some(reason.to_string()));
    let known = deps
        .store
        .environment(&record.service, &record.environment)
        .await?;
    let env = domain::environment_after(&record, known.as_ref(), now).ok_or_else(|| {
        PhaseError::Internal(format!(
            "deployment {id} ended {final_phase} with no colors recorded; inspect the record"
        ))
    })?;
    match deps.store.finish(&record, &env).await {
        Ok(()) => {}
        // Another rollback of the same deployment (a person's, an alarm's, the execution's
        // Catch) finished it first, with its own reason: that one stands, and it emitted the
        // metrics line. Traffic is on the active color either way.
        Err(crate::error::AdapterError::ConditionFailed(m)) => {
            match deps.store.deployment(&id).await? {
                Some(finished) if finished.phase.is_terminal() => {
                    tracing::info!(detail = %m, phase = %finished.phase, "another rollback finished the deployment first");
                    return Ok(RollbackOutcome::AlreadyFinished(finished));
                }
                _ => return Err(crate::error::AdapterError::ConditionFailed(m).into()),
            }
        }
        Err(e) => return Err(e.into()),
    }
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
    requested: Option<&DeploymentRecord>,
    attempts: u32,
) -> Result<RollbackOutcome, PhaseError> {
    let mut tries = 1;
    loop {
        match roll_back(deps, id, reason, requested).await {
            Err(PhaseError::Retryable(e) | PhaseError::Throttled(e)) if tries < attempts => {
                tracing::warn!(attempt = tries, error = %e, "rollback interrupted; trying again");
                tries += 1;
            }
            other => return other,
        }
    }
}

//! Finalize: after verification, confirms the listener is fully on the new color, then in one
//! transaction marks the deployment SUCCEEDED, makes the new color active (the old one becomes
//! standby for instant rollback) and releases the environment's lock.

use serde_json::Value;
use shared::contracts::{ExecutionState, NextAction};
use shared::domain::{Phase, environment_after};
use shared::error::PhaseError;
use tracing::Instrument;

pub use shared::ports::PhaseDeps as Deps;

pub async fn handle(deps: &Deps, input: Value) -> Result<ExecutionState, PhaseError> {
    let state = ExecutionState::from_value(input)?;
    let span = tracing::info_span!("finalize", deployment_id = %state.deployment_id);
    run(deps, state).instrument(span).await
}

async fn run(deps: &Deps, mut state: ExecutionState) -> Result<ExecutionState, PhaseError> {
    let mut progress = state.progress()?.clone();
    let id = state.deployment_id.clone();
    let mut record = shared::ports::recorded(deps.store.as_ref(), &id).await?;

    if record.phase != Phase::Succeeded {
        if record.phase != Phase::Verifying {
            return Err(PhaseError::Aborted(format!(
                "deployment {id} is {}; only a verified deployment can be finalized",
                record.phase
            )));
        }
        let target = record.target_color.ok_or_else(|| {
            PhaseError::Internal(format!(
                "deployment {id} is verifying but has no colors recorded; inspect the record"
            ))
        })?;
        let split = deps
            .access
            .router(&state.request.reach(&state.deployment_id))
            .await?
            .current_split(&state.request.forward_target()?)
            .await?;
        if split.sole_color() != Some(target) {
            return Err(PhaseError::TrafficMismatch(format!(
                "the listener is at {split}, not 100% {}: refusing to finalize",
                target.title()
            )));
        }
        let now = deps.clock.now();
        record.finish(Phase::Succeeded, now, None);
        // A success does not depend on what was stored before: its own colors and versions say
        // what the environment runs now.
        let env = environment_after(&record, None, now).ok_or_else(|| {
            PhaseError::Internal(format!(
                "deployment {id} succeeded with no colors recorded; inspect the record"
            ))
        })?;
        deps.store.finish(&record, &env).await?;
        shared::emf::emit(&record);
        tracing::info!(
            active = %target,
            version = %record.version,
            standby_version = ?record.previous_version,
            duration_seconds = record.duration_seconds,
            "deployment succeeded"
        );
    }
    progress.next = NextAction::Done;
    progress.wait_seconds = 0;
    state.progress = Some(progress);
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::domain::{Color, DeploymentStatus, TrafficSplit};
    use shared::fakes::sample::{self, World};
    use shared::ports::DeploymentStore as _;

    fn deps(w: &World) -> Deps {
        w.phase_deps()
    }

    async fn verified(w: &World) {
        let _ = w.store.begin(&sample::record(Phase::DeployingGreen)).await;
        let _ = w
            .store
            .transition(
                sample::DEPLOYMENT_ID,
                Phase::ShiftingTraffic,
                Some(100),
                None,
            )
            .await;
        let _ = w
            .store
            .transition(sample::DEPLOYMENT_ID, Phase::Verifying, None, None)
            .await;
    }

    #[tokio::test]
    async fn green_becomes_active_blue_standby_and_the_lock_is_released() {
        let w = World::default();
        verified(&w).await;
        *w.router.split.lock().unwrap_or_else(|p| p.into_inner()) =
            TrafficSplit::all_on(Color::Green);
        w.clock.advance(760);
        let d = deps(&w);
        for _ in 0..2 {
            // the second run is a retry: same result, nothing more written
            let out = handle(&d, sample::state_with(&sample::progress(Some(3), 100)))
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(out.progress.map(|p| p.next), Some(NextAction::Done));
        }
        let r = w
            .store
            .record(sample::DEPLOYMENT_ID)
            .unwrap_or_else(|| panic!("no record"));
        assert_eq!(
            (r.status, r.duration_seconds),
            (DeploymentStatus::Succeeded, Some(765))
        );
        let env = w
            .store
            .env("checkout", "dev")
            .unwrap_or_else(|| panic!("no env"));
        assert_eq!(env.active_color, Some(Color::Green));
        assert_eq!(
            (
                env.active_version.as_deref(),
                env.standby_version.as_deref()
            ),
            (Some("1.3.0"), Some("1.2.0"))
        );
        assert_eq!(env.active_deployment, None);
    }

    #[tokio::test]
    async fn refuses_when_the_listener_is_not_fully_on_green() {
        let w = World::default();
        verified(&w).await;
        *w.router.split.lock().unwrap_or_else(|p| p.into_inner()) =
            TrafficSplit::new(50, 50).unwrap_or_else(|e| panic!("{e}"));
        let err = handle(
            &deps(&w),
            sample::state_with(&sample::progress(Some(3), 100)),
        )
        .await
        .err();
        assert_eq!(
            err.map(|e| e.error_type()),
            Some("BlueGreen.TrafficMismatch")
        );
        assert_eq!(
            w.store.record(sample::DEPLOYMENT_ID).map(|r| r.phase),
            Some(Phase::Verifying)
        );
    }

    #[tokio::test]
    async fn a_rolled_back_deployment_is_never_finalized() {
        let w = World::default();
        verified(&w).await;
        let _ = w
            .store
            .transition(
                sample::DEPLOYMENT_ID,
                Phase::RollingBack,
                None,
                Some("alarm"),
            )
            .await;
        let err = handle(
            &deps(&w),
            sample::state_with(&sample::progress(Some(3), 100)),
        )
        .await
        .err();
        assert_eq!(err.map(|e| e.error_type()), Some("BlueGreen.Aborted"));
    }
}

//! Rollback: puts all traffic back on the color that was active when the deployment started
//! (written once, read back and verified), then records why and releases the environment.
//! Idempotent: a rollback of a finished deployment changes nothing.

use serde_json::Value;
use shared::contracts::{ExecutionState, NextAction};
use shared::domain::{ApprovalDecision, ApprovalState, Phase};
use shared::error::PhaseError;
use shared::usecases::rollback::{RollbackDeps, RollbackOutcome, roll_back};
use tracing::Instrument;

pub use shared::ports::PhaseDeps as Deps;

fn core(deps: &Deps) -> RollbackDeps {
    RollbackDeps {
        store: deps.store.clone(),
        access: deps.access.clone(),
        clock: deps.clock.clone(),
    }
}

pub async fn handle(deps: &Deps, input: Value) -> Result<ExecutionState, PhaseError> {
    let state = ExecutionState::from_value(input)?;
    let span = tracing::info_span!("rollback", deployment_id = %state.deployment_id);
    run(deps, state).instrument(span).await
}

fn outcome(phase: Phase) -> NextAction {
    match phase {
        Phase::Failed => NextAction::Failed,
        Phase::NotDeployed => NextAction::NotDeployed,
        // A deployment that already succeeded stays succeeded; rolling an environment back
        // after a release is its own command.
        Phase::Succeeded => NextAction::Done,
        _ => NextAction::RolledBack,
    }
}

/// Why a deployment waiting for approval ends: the rejection recorded with it (who and why),
/// or a timeout, which this marks on the approval. `None` when it was not waiting.
async fn approval_outcome(
    deps: &Deps,
    state: &ExecutionState,
) -> Result<Option<String>, PhaseError> {
    let Some(record) = deps.store.deployment(&state.deployment_id).await? else {
        return Ok(None);
    };
    if !shared::domain::waiting_for_approval(&record) {
        return Ok(None);
    }
    let never = format!("{} never received traffic", record.target_title());
    if let Some(a) = record
        .approval
        .as_ref()
        .filter(|a| a.state == ApprovalState::Rejected)
    {
        return Ok(Some(format!(
            "rejected by {}: {}",
            a.decided_by.as_deref().unwrap_or("unknown"),
            a.comment.as_deref().unwrap_or("no reason given")
        )));
    }
    let timed_out = state
        .error
        .as_ref()
        .is_some_and(|e| e.error == "States.Timeout" || e.error == "States.HeartbeatTimeout");
    let Some(timeout) = state.request.approval_timeout_seconds.filter(|_| timed_out) else {
        return Ok(None);
    };
    let decision = ApprovalDecision {
        state: ApprovalState::TimedOut,
        by: "timeout".to_string(),
        at: deps.clock.now(),
        comment: None,
    };
    match deps
        .store
        .decide_approval(&state.deployment_id, &decision)
        .await
    {
        // decided meanwhile: whatever it was, this execution is ending without traffic
        Ok(_) | Err(shared::error::AdapterError::ConditionFailed(_)) => {}
        Err(e) => return Err(e.into()),
    }
    // The waiting task is gone: its token resumes nothing and leaves the table.
    match deps.store.forget_task_token(&state.deployment_id).await {
        Ok(()) | Err(shared::error::AdapterError::ConditionFailed(_)) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(Some(format!(
        "approval timed out after {}; {never}",
        shared::report::duration(timeout)
    )))
}

async fn run(deps: &Deps, state: ExecutionState) -> Result<ExecutionState, PhaseError> {
    let reason = match approval_outcome(deps, &state).await? {
        Some(why) => why,
        None => state
            .error
            .as_ref()
            .map(|e| e.message())
            .unwrap_or_else(|| "rollback requested".to_string()),
    };
    // The first phase may never have recorded the deployment: then this writes it.
    let requested = state.request.requested_record(
        &state.deployment_id,
        &state.execution_arn,
        state.started_at,
    );
    let next = match roll_back(&core(deps), &state.deployment_id, &reason, Some(&requested)).await?
    {
        // the shared rollback wrote the deployment's metrics line
        RollbackOutcome::RolledBack(_) => NextAction::RolledBack,
        RollbackOutcome::Failed(_) => NextAction::Failed,
        RollbackOutcome::NotDeployed(_) => NextAction::NotDeployed,
        RollbackOutcome::NeverStarted(_) | RollbackOutcome::NotRecorded => NextAction::Failed,
        RollbackOutcome::AlreadyFinished(r) => outcome(r.phase),
    };
    Ok(done(state, next))
}

fn done(mut state: ExecutionState, next: NextAction) -> ExecutionState {
    if let Some(p) = state.progress.as_mut() {
        p.next = next;
        p.wait_seconds = 0;
    }
    state
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

    fn caught(error: &str, message: &str) -> Value {
        let mut v = sample::state_with(&sample::progress(Some(1), 25));
        v["error"] = serde_json::json!({
            "Error": error,
            "Cause": serde_json::json!({"errorType": error, "errorMessage": message}).to_string()
        });
        v
    }

    async fn awaiting_approval() -> (World, Value) {
        let w = World::default();
        w.store
            .begin(&sample::record(Phase::DeployingGreen))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        w.store
            .await_approval(
                sample::DEPLOYMENT_ID,
                "tok",
                3600,
                time::macros::datetime!(2025-01-03 10:05:00 UTC),
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let mut input = sample::state_with(&sample::progress(None, 0));
        input["request"]["approval_timeout_seconds"] = serde_json::json!(3600);
        (w, input)
    }

    #[tokio::test]
    async fn a_retried_rollback_of_a_timed_out_approval_still_ends_not_deployed() {
        use shared::faults::{FaultRates, Faults, FaultyAccess};
        // GIVEN a deployment whose approval timed out, and a first rollback that moved the
        // record to ROLLING_BACK, then failed reaching the listener (throttled)
        let (w, mut input) = awaiting_approval().await;
        input["error"] = serde_json::json!({"Error": "States.Timeout", "Cause": ""});
        let mut throttled = FaultRates::none();
        throttled.throttle = 1.0;
        let first = Deps {
            store: w.store.clone(),
            access: std::sync::Arc::new(FaultyAccess {
                inner: w.access.clone(),
                faults: Faults::new(1, throttled),
            }),
            registry: w.registry.clone(),
            clock: w.clock.clone(),
        };
        let e = handle(&first, input.clone()).await.err();
        assert_eq!(e.map(|e| e.error_type()), Some("BlueGreen.Retryable"));
        assert_eq!(
            w.store.record(sample::DEPLOYMENT_ID).map(|r| r.phase),
            Some(Phase::RollingBack)
        );
        // WHEN the state machine retries the rollback
        let out = handle(&deps(&w), input)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        // THEN it ends as the first attempt would have: not deployed, for the timeout
        assert_eq!(out.progress.map(|p| p.next), Some(NextAction::NotDeployed));
        let r = w
            .store
            .record(sample::DEPLOYMENT_ID)
            .unwrap_or_else(|| panic!("no record"));
        assert_eq!(r.status, DeploymentStatus::NotDeployed);
        assert_eq!(
            r.reason.as_deref(),
            Some("approval timed out after 1h 00m; Green never received traffic")
        );
    }

    #[tokio::test]
    async fn an_approval_timeout_ends_not_deployed_with_no_traffic_moved() {
        let (w, mut input) = awaiting_approval().await;
        input["error"] = serde_json::json!({"Error": "States.Timeout", "Cause": ""});
        let out = handle(&deps(&w), input)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out.progress.map(|p| p.next), Some(NextAction::NotDeployed));
        let r = w
            .store
            .record(sample::DEPLOYMENT_ID)
            .unwrap_or_else(|| panic!("no record"));
        assert_eq!(r.status, DeploymentStatus::NotDeployed);
        assert_eq!(
            r.reason.as_deref(),
            Some("approval timed out after 1h 00m; Green never received traffic")
        );
        assert_eq!(
            r.approval.map(|a| (a.state, a.decided_by)),
            Some((ApprovalState::TimedOut, Some("timeout".to_string())))
        );
        assert!(w.router.writes().is_empty(), "no traffic ever moved");
        assert_eq!(
            w.store
                .env("checkout", "dev")
                .and_then(|e| e.active_deployment),
            None,
            "the environment is released"
        );
        assert!(
            w.store
                .quarantine("checkout", "1.3.0")
                .await
                .ok()
                .flatten()
                .is_none(),
            "a version that was never tried is not quarantined"
        );
    }

    #[tokio::test]
    async fn a_rejection_ends_not_deployed_with_the_rejection_as_reason() {
        let (w, mut input) = awaiting_approval().await;
        w.store
            .decide_approval(
                sample::DEPLOYMENT_ID,
                &ApprovalDecision {
                    state: ApprovalState::Rejected,
                    by: "arn:aws:iam::123456789012:user/carol".into(),
                    at: time::macros::datetime!(2025-01-03 10:06:00 UTC),
                    comment: Some("error budget spent".into()),
                },
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        // the reason comes from the record, whatever the failure carried (here: no cause)
        input["error"] = serde_json::json!({"Error": "BlueGreen.ApprovalRejected", "Cause": null});
        let out = handle(&deps(&w), input)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out.progress.map(|p| p.next), Some(NextAction::NotDeployed));
        let r = w
            .store
            .record(sample::DEPLOYMENT_ID)
            .unwrap_or_else(|| panic!("no record"));
        assert_eq!(r.status, DeploymentStatus::NotDeployed);
        assert_eq!(
            r.reason.as_deref(),
            Some("rejected by arn:aws:iam::123456789012:user/carol: error budget spent")
        );
        assert!(w.router.writes().is_empty());
    }

    #[tokio::test]
    async fn a_rolled_back_version_is_quarantined() {
        let w = shifted_to_25().await;
        handle(
            &deps(&w),
            caught("BlueGreen.ThresholdBreached", "error rate 8.00%"),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        let q = w
            .store
            .quarantine("checkout", "1.3.0")
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| panic!("not quarantined"));
        assert!(!q.cleared);
        assert_eq!(q.deployment_id, sample::DEPLOYMENT_ID);
        assert_eq!(q.reason, "error rate 8.00%");
    }

    async fn shifted_to_25() -> World {
        World::default().shifted_to(25, 1).await
    }

    #[tokio::test]
    async fn restores_blue_records_the_reason_and_releases_the_lock() {
        let w = shifted_to_25().await;
        let msg = "at 25% (Blue: 75% | Green: 25%) on Green: error rate 8.00% (40 of 500 requests returned 5xx) exceeds 1.00%";
        let d = deps(&w);
        for _ in 0..2 {
            let out = handle(&d, caught("BlueGreen.ThresholdBreached", msg))
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(out.progress.map(|p| p.next), Some(NextAction::RolledBack));
        }
        assert_eq!(w.router.split(), TrafficSplit::all_on(Color::Blue));
        assert_eq!(
            w.router.writes().len(),
            1,
            "a repeated rollback writes nothing more"
        );
        let r = w
            .store
            .record(sample::DEPLOYMENT_ID)
            .unwrap_or_else(|| panic!("no record"));
        assert_eq!(r.status, DeploymentStatus::RolledBack);
        assert_eq!(r.reason.as_deref(), Some(msg));
        let env = w
            .store
            .env("checkout", "dev")
            .unwrap_or_else(|| panic!("no env"));
        assert_eq!(
            (env.active_color, env.active_deployment),
            (Some(Color::Blue), None)
        );
        assert_eq!(env.standby_version.as_deref(), Some("1.3.0"));
    }

    #[tokio::test]
    async fn green_never_healthy_ends_failed_without_touching_traffic() {
        let w = World::default();
        let _ = w.store.begin(&sample::record(Phase::DeployingGreen)).await;
        let mut input = caught(
            "BlueGreen.HealthCheckFailed",
            "health check timeout: Green (checkout-green) did not become healthy within 3s: 0/2 targets healthy",
        );
        input["progress"] = serde_json::to_value(sample::progress(None, 0)).unwrap_or_default();
        let out = handle(&deps(&w), input)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out.progress.map(|p| p.next), Some(NextAction::Failed));
        assert!(w.router.writes().is_empty());
        let r = w
            .store
            .record(sample::DEPLOYMENT_ID)
            .unwrap_or_else(|| panic!("no record"));
        assert_eq!(r.status, DeploymentStatus::Failed);
        assert!(
            r.reason
                .unwrap_or_default()
                .starts_with("health check timeout")
        );
    }

    #[tokio::test]
    async fn a_failed_restore_is_an_error_and_leaves_the_deployment_rolling_back() {
        let w = shifted_to_25().await;
        w.router
            .fail_next_writes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(shared::error::AdapterError::Other(
                "listener reads back Blue: 75% | Green: 25%".into(),
            ));
        let err = handle(&deps(&w), caught("BlueGreen.AlarmBreached", "alarm"))
            .await
            .err();
        assert_eq!(
            err.map(|e| e.error_type()),
            Some("BlueGreen.TrafficMismatch")
        );
        assert_eq!(
            w.store.record(sample::DEPLOYMENT_ID).map(|r| r.phase),
            Some(Phase::RollingBack)
        );
        // the state machine retries: the next attempt completes
        let out = handle(&deps(&w), caught("BlueGreen.AlarmBreached", "alarm"))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out.progress.map(|p| p.next), Some(NextAction::RolledBack));
        assert_eq!(w.router.split(), TrafficSplit::all_on(Color::Blue));
    }

    #[tokio::test]
    async fn a_rollback_that_another_rollback_finishes_first_ends_with_that_ones_outcome() {
        // GIVEN a deployment at 25 %, and a person's rollback that finishes it (FAILED, with
        // their reason) while this rollback is restoring traffic
        let w = shifted_to_25().await;
        let store = w.store.clone();
        *w.router
            .during_write
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(Box::new(move || {
            let mut records = store.records.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(r) = records.get_mut(sample::DEPLOYMENT_ID) {
                r.finish(
                    Phase::Failed,
                    time::macros::datetime!(2025-01-03 10:09:00 UTC),
                    Some("manual rollback by bob".into()),
                );
            }
        }));
        // WHEN the execution's own rollback (its Catch) runs
        let out = handle(
            &deps(&w),
            caught("BlueGreen.Aborted", "moved while shifting"),
        )
        .await
        .unwrap_or_else(|e| panic!("a conflict instead of the outcome: {e}"));
        // THEN it ends as the first rollback decided, which stands
        assert_eq!(out.progress.map(|p| p.next), Some(NextAction::Failed));
        assert_eq!(w.router.split(), TrafficSplit::all_on(Color::Blue));
        let r = w
            .store
            .record(sample::DEPLOYMENT_ID)
            .unwrap_or_else(|| panic!("no record"));
        assert_eq!(
            (r.phase, r.reason.as_deref()),
            (Phase::Failed, Some("manual rollback by bob"))
        );
    }

    #[tokio::test]
    async fn traffic_moved_after_a_finished_rollback_is_put_back() {
        // GIVEN a deployment already rolled back, but a racing shift wrote 50 % afterwards
        let w = shifted_to_25().await;
        let d = deps(&w);
        handle(&d, caught("BlueGreen.AlarmBreached", "alarm"))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        *w.router.split.lock().unwrap_or_else(|p| p.into_inner()) =
            TrafficSplit::with_percent_on(Color::Green, 50).unwrap_or_else(|e| panic!("{e}"));
        // WHEN rollback runs again
        let out = handle(&d, caught("BlueGreen.Aborted", "moved while shifting"))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        // THEN blue has everything again and the record is unchanged
        assert_eq!(out.progress.map(|p| p.next), Some(NextAction::RolledBack));
        assert_eq!(w.router.split(), TrafficSplit::all_on(Color::Blue));
        assert_eq!(
            w.store.record(sample::DEPLOYMENT_ID).and_then(|r| r.reason),
            Some("alarm".into())
        );
    }

    #[tokio::test]
    async fn a_deployment_whose_first_phase_never_got_through_ends_failed_in_history() {
        // GIVEN an execution whose DeployGreen exhausted its retries before recording anything,
        // holding the lock its start request took
        let w = World::default();
        w.store
            .acquire_lock(
                "checkout",
                "dev",
                sample::DEPLOYMENT_ID,
                time::macros::datetime!(2025-01-03 10:00:00 UTC),
                time::Duration::minutes(10),
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let mut input = caught("BlueGreen.Retryable", "DescribeAlarms: throttled");
        input.as_object_mut().map(|o| o.remove("progress"));
        // WHEN the Catch runs the rollback
        let out = handle(&deps(&w), input.clone())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        // THEN the execution ends failed, nothing moved, the lock is free, and history has the
        // attempt: who started it, what, and why it ended
        assert_eq!(out.progress.map(|p| p.next), None);
        assert!(w.router.writes().is_empty());
        assert_eq!(
            w.store
                .env("checkout", "dev")
                .and_then(|e| e.active_deployment),
            None
        );
        let r = w
            .store
            .record(sample::DEPLOYMENT_ID)
            .unwrap_or_else(|| panic!("no record"));
        assert_eq!(
            (r.phase, r.status),
            (Phase::Failed, DeploymentStatus::Failed)
        );
        assert_eq!(
            r.reason.as_deref(),
            Some("never got past deploying green: DescribeAlarms: throttled")
        );
        assert_eq!(
            (r.deployer.as_str(), r.version.as_str()),
            (
                sample::request()["deployer"].as_str().unwrap_or_default(),
                "1.3.0"
            )
        );
        assert_eq!(r.colors(), None);
        assert!(r.finished_at.is_some());
        // AND a retried rollback changes nothing
        let again = handle(&deps(&w), input)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(again.progress, None);
        assert_eq!(w.store.record(sample::DEPLOYMENT_ID), Some(r));
    }

    #[tokio::test]
    async fn a_succeeded_deployment_is_left_alone() {
        let w = World::default();
        let mut r = sample::record(Phase::Succeeded);
        r.status = DeploymentStatus::Succeeded;
        let _ = w.store.begin(&r).await;
        let out = handle(&deps(&w), caught("BlueGreen.Internal", "late"))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out.progress.map(|p| p.next), Some(NextAction::Done));
        assert!(w.router.writes().is_empty());
    }
}

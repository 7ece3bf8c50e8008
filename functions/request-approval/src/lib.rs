//! Request approval: invoked by the state machine with a task token once green is ready and the
//! environment needs a person's approval. It stores the token with the deployment (phase
//! AWAITING_APPROVAL) and returns; the execution waits until the API's approve or reject sends
//! the token back, or the state's timeout ends it. No traffic has moved at this point.
//! Idempotent: a retry stores the newer token while the approval is still pending.

use serde::Deserialize;
use serde_json::{Value, json};
use shared::contracts::ExecutionState;
use shared::error::PhaseError;
use tracing::Instrument;

pub use shared::ports::PhaseDeps as Deps;

/// What the state machine sends: the execution state and the task token to resume it with.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    state: Value,
    task_token: String,
}

pub async fn handle(deps: &Deps, input: Value) -> Result<Value, PhaseError> {
    let input: Input = serde_json::from_value(input).map_err(|e| {
        PhaseError::InvalidInput(format!(
            "request-approval takes {{\"state\": <execution state>, \"task_token\": <token>}}: {e}"
        ))
    })?;
    let state = ExecutionState::from_value(input.state)?;
    // Step Functions task tokens are 1..=1024 characters.
    if input.task_token.is_empty() || input.task_token.len() > 1024 {
        return Err(PhaseError::InvalidInput(
            "task_token must be 1-1024 characters".into(),
        ));
    }
    let span = tracing::info_span!("request_approval", deployment_id = %state.deployment_id);
    run(deps, state, &input.task_token).instrument(span).await
}

async fn run(deps: &Deps, state: ExecutionState, token: &str) -> Result<Value, PhaseError> {
    let Some(timeout) = state.request.approval_timeout_seconds else {
        return Err(PhaseError::InvalidInput(format!(
            "deployment {} needs no approval (its request has no approval_timeout_seconds)",
            state.deployment_id
        )));
    };
    let record = deps
        .store
        .await_approval(&state.deployment_id, token, timeout, deps.clock.now())
        .await
        .map_err(|e| match e {
            shared::error::AdapterError::ConditionFailed(m) => PhaseError::Aborted(m),
            other => other.into(),
        })?;
    tracing::info!(
        service = %record.service,
        environment = %record.environment,
        version = %record.version,
        timeout_seconds = timeout,
        "waiting for approval; no traffic has moved"
    );
    Ok(json!({
        "deployment_id": record.id,
        "phase": record.phase,
        "timeout_seconds": timeout,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::domain::{ApprovalState, Phase};
    use shared::fakes::sample::{self, World};
    use shared::ports::DeploymentStore as _;

    fn input(timeout: Option<u64>, token: &str) -> Value {
        let mut state = sample::state_with(&sample::progress(None, 0));
        if let Some(t) = timeout {
            state["request"]["approval_timeout_seconds"] = json!(t);
        }
        json!({"state": state, "task_token": token})
    }

    async fn deploying() -> World {
        let w = World::default();
        w.store
            .begin(&sample::record(Phase::DeployingGreen))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        w
    }

    #[tokio::test]
    async fn stores_the_token_and_waits_and_a_retry_keeps_waiting_with_the_newer_token() {
        let w = deploying().await;
        let d = w.phase_deps();
        handle(&d, input(Some(3600), "token-1"))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        handle(&d, input(Some(3600), "token-2"))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let r = w
            .store
            .record(sample::DEPLOYMENT_ID)
            .unwrap_or_else(|| panic!("no record"));
        assert_eq!(r.phase, Phase::AwaitingApproval);
        let a = r.approval.unwrap_or_else(|| panic!("no approval"));
        assert_eq!(a.state, ApprovalState::Pending);
        assert_eq!(a.task_token.as_deref(), Some("token-2"));
        assert_eq!(a.timeout_seconds, 3600);
        assert!(w.router.writes().is_empty(), "no traffic moves");
    }

    #[tokio::test]
    async fn a_deployment_that_needs_no_approval_or_has_moved_on_is_refused() {
        let w = deploying().await;
        let d = w.phase_deps();
        let err = handle(&d, input(None, "t")).await;
        assert!(matches!(err, Err(PhaseError::InvalidInput(_))), "{err:?}");

        let w = World::default().shifted_to(25, 1).await;
        let err = handle(&w.phase_deps(), input(Some(60), "t")).await;
        assert!(matches!(err, Err(PhaseError::Aborted(_))), "{err:?}");
    }

    #[tokio::test]
    async fn malformed_input_is_a_named_error_and_changes_nothing() {
        let w = deploying().await;
        let d = w.phase_deps();
        for bad in [
            json!({"task_token": "t"}),
            json!({"state": {}, "task_token": "t"}),
            input(Some(60), ""),
            json!({"state": sample::state_with(&sample::progress(None, 0)), "task_token": "t", "x": 1}),
        ] {
            let err = handle(&d, bad).await;
            assert!(matches!(err, Err(PhaseError::InvalidInput(_))), "{err:?}");
        }
        let r = w.store.record(sample::DEPLOYMENT_ID);
        assert_eq!(r.map(|r| r.phase), Some(Phase::DeployingGreen));
    }
}

//! Execution status: when a deployment's execution ends without its Rollback state running
//! (stopped by a person, timed out, failed outside a Catch), restores traffic from the record,
//! marks the deployment and releases the environment's lock.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use shared::contracts::{CaughtError, DeploymentRequest};
use shared::domain::{DeploymentRecord, TrafficSplit};
use shared::error::PhaseError;
use shared::ports::{Clock, DeploymentStore, EnvironmentAccess};
use shared::usecases::rollback::{RollbackDeps, RollbackOutcome, roll_back_retrying};
use std::sync::Arc;
use tracing::Instrument;

pub const SOURCE: &str = "aws.states";
pub const DETAIL_TYPE: &str = "Step Functions Execution Status Change";
/// Rollback runs per invocation before a retryable failure is returned. This function is the
/// last automatic line of defence (Lambda retries it twice, then the event goes to the failed
/// events queue), so it retries as its own caller cannot.
pub const ROLLBACK_ATTEMPTS: u32 = 5;

pub struct Deps {
    pub store: Arc<dyn DeploymentStore>,
    pub access: Arc<dyn EnvironmentAccess>,
    pub clock: Arc<dyn Clock>,
    /// Only this state machine's executions are handled.
    pub state_machine_arn: String,
}

impl Deps {
    fn rollback(&self) -> RollbackDeps {
        RollbackDeps {
            store: self.store.clone(),
            access: self.access.clone(),
            clock: self.clock.clone(),
        }
    }
}

/// The `detail` of a `Step Functions Execution Status Change` event.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Detail {
    execution_arn: String,
    state_machine_arn: String,
    name: String,
    status: String,
    /// The execution input as a JSON string; absent when it was too large to include.
    #[serde(default)]
    input: Option<String>,
    /// When the execution started, in milliseconds since the epoch.
    #[serde(default)]
    start_date: Option<i64>,
    /// The error and cause the execution failed with (null unless it failed).
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    cause: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecutionStatus {
    Running,
    Succeeded,
    Failed,
    TimedOut,
    Aborted,
    /// A status this function does not act on (e.g. PENDING_REDRIVE).
    Other(String),
}

impl ExecutionStatus {
    fn parse(s: &str) -> Self {
        match s {
            "RUNNING" => Self::Running,
            "SUCCEEDED" => Self::Succeeded,
            "FAILED" => Self::Failed,
            "TIMED_OUT" => Self::TimedOut,
            "ABORTED" => Self::Aborted,
            other => Self::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Running => "RUNNING",
            Self::Succeeded => "SUCCEEDED",
            Self::Failed => "FAILED",
            Self::TimedOut => "TIMED_OUT",
            Self::Aborted => "ABORTED",
            Self::Other(s) => s,
        }
    }

    /// Ended without finishing the deployment: whatever it left must be undone.
    pub fn is_failure(&self) -> bool {
        matches!(self, Self::Failed | Self::TimedOut | Self::Aborted)
    }
}

/// An execution's status change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionChange {
    pub execution_arn: String,
    pub state_machine_arn: String,
    /// The execution name: the deployment id.
    pub name: String,
    pub status: ExecutionStatus,
    pub input: Option<String>,
    /// When the execution started; the event's time when the detail has no start date.
    pub started_at: time::OffsetDateTime,
    /// What it failed with, if it failed.
    pub error: Option<CaughtError>,
}

fn invalid(m: impl Into<String>) -> PhaseError {
    PhaseError::InvalidInput(m.into())
}

/// Parses the raw event. The execution input is left as text: only our own state machine's
/// input is a deployment request (see [`ExecutionChange::owner`]).
pub fn parse(input: Value) -> Result<ExecutionChange, PhaseError> {
    let event: EventBridgeEvent<Detail> = serde_json::from_value(input)
        .map_err(|e| invalid(format!("not an EventBridge {DETAIL_TYPE:?} event: {e}")))?;
    if event.source != SOURCE || event.detail_type != DETAIL_TYPE {
        return Err(invalid(format!(
            "expected source {SOURCE:?} and detail-type {DETAIL_TYPE:?}, got {:?} and {:?}: check the EventBridge rule's pattern",
            event.source, event.detail_type
        )));
    }
    let d = event.detail;
    // Any execution name of the state machine (1-80 characters), not only a DeploymentId: an
    // execution started by hand under a name the phases refuse still ends here, and is
    // recorded as failed under that name.
    if d.name.is_empty() || d.name.len() > 80 {
        return Err(invalid("detail.name must be 1-80 characters"));
    }
    if d.state_machine_arn.is_empty() || d.execution_arn.is_empty() {
        return Err(invalid(
            "detail.stateMachineArn and detail.executionArn are required",
        ));
    }
    let ms = d
        .start_date
        .or_else(|| event.time.map(|t| t.timestamp_millis()))
        .ok_or_else(|| invalid("the event has neither detail.startDate nor time"))?;
    let started_at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map_err(|e| invalid(format!("detail.startDate {ms} is not a time: {e}")))?;
    Ok(ExecutionChange {
        execution_arn: d.execution_arn,
        state_machine_arn: d.state_machine_arn,
        name: d.name,
        status: ExecutionStatus::parse(&d.status),
        input: d.input,
        started_at,
        error: d.error.map(|error| CaughtError {
            error,
            cause: d.cause.unwrap_or_default(),
        }),
    })
}

impl ExecutionChange {
    /// The service and environment from the execution input (a deployment request); `None`
    /// when the event did not include the input.
    pub fn request(&self) -> Result<Option<DeploymentRequest>, PhaseError> {
        self.input
            .as_deref()
            .map(|text| {
                serde_json::from_str::<DeploymentRequest>(text).map_err(|e| {
                    invalid(format!(
                        "execution {}: its input is not a deployment request: {e}",
                        self.name
                    ))
                })
            })
            .transpose()
    }
}

/// What was done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Summary {
    Ignored {
        reason: String,
    },
    /// Traffic was back on the active color and the deployment is marked rolled back.
    RolledBack {
        deployment_id: String,
        status: String,
        restored_blue: u16,
        restored_green: u16,
    },
    /// Traffic had never moved; the deployment is marked failed.
    Failed {
        deployment_id: String,
        status: String,
    },
    /// The deployment had already ended; its lock is released if it still held it.
    AlreadyFinished {
        deployment_id: String,
        phase: String,
        lock_released: bool,
    },
    /// The execution ended before its first phase got through: the deployment is recorded as
    /// FAILED with why (written here if nothing had recorded it), its lock released if held.
    NeverStarted {
        deployment_id: String,
        status: String,
        lock_released: bool,
    },
    /// No record, and the event carried no execution input to write one from.
    NotRecorded {
        deployment_id: String,
    },
}

fn ignored(reason: String) -> Summary {
    tracing::info!(action = "ignored", %reason, "execution status change ignored");
    Summary::Ignored { reason }
}

pub async fn handle(deps: &Deps, input: Value) -> Result<Value, PhaseError> {
    let change = parse(input)?;
    let span = tracing::info_span!(
        "execution_status",
        deployment_id = %change.name,
        status = change.status.as_str()
    );
    let summary = run(deps, change).instrument(span).await?;
    serde_json::to_value(&summary)
        .map_err(|e| PhaseError::Internal(format!("serializing the result: {e}")))
}

async fn run(deps: &Deps, change: ExecutionChange) -> Result<Summary, PhaseError> {
    if change.state_machine_arn != deps.state_machine_arn {
        return Ok(ignored(format!(
            "execution {} belongs to state machine {}, not this controller's",
            change.name, change.state_machine_arn
        )));
    }
    if !change.status.is_failure() {
        return settle(deps, &change).await;
    }
    let request = change.request()?;
    let reason = match &change.error {
        Some(e) => format!("execution {}: {}", change.status.as_str(), e.message()),
        None => format!("execution {}", change.status.as_str()),
    };
    // The record this execution would have written first: written here if nothing did.
    let requested = request
        .as_ref()
        .map(|r| r.requested_record(&change.name, &change.execution_arn, change.started_at));
    if requested.is_none() {
        tracing::warn!(
            "the event carries no execution input: a deployment without a record cannot be recorded from it"
        );
    }
    let had_lock = match &request {
        Some(r) => holds_lock(deps, &r.service, &r.environment, &change.name).await?,
        None => false,
    };
    Ok(
        match roll_back_retrying(
            &deps.rollback(),
            &change.name,
            &reason,
            requested.as_ref(),
            ROLLBACK_ATTEMPTS,
        )
        .await?
        {
            RollbackOutcome::RolledBack(r) => {
                // a rolled-back deployment had begun, so its colors are recorded
                let (blue, green) = shared::domain::active_after(&r)
                    .map(TrafficSplit::all_on)
                    .map_or((0, 0), |s| (s.blue(), s.green()));
                Summary::RolledBack {
                    deployment_id: r.id,
                    status: r.status.as_str().to_string(),
                    restored_blue: blue,
                    restored_green: green,
                }
            }
            RollbackOutcome::Failed(r) | RollbackOutcome::NotDeployed(r) => Summary::Failed {
                deployment_id: r.id,
                status: r.status.as_str().to_string(),
            },
            RollbackOutcome::AlreadyFinished(r) => finished(deps, &r).await?,
            RollbackOutcome::NeverStarted(r) => {
                tracing::info!(
                    lock_released = had_lock,
                    reason = r.reason.as_deref().unwrap_or_default(),
                    "execution ended before its first phase got through"
                );
                Summary::NeverStarted {
                    deployment_id: r.id,
                    status: r.status.as_str().to_string(),
                    lock_released: had_lock,
                }
            }
            RollbackOutcome::NotRecorded => Summary::NotRecorded {
                deployment_id: change.name.clone(),
            },
        },
    )
}

/// RUNNING, SUCCEEDED and unknown statuses: nothing to undo; an ended deployment must not keep
/// its environment locked.
async fn settle(deps: &Deps, change: &ExecutionChange) -> Result<Summary, PhaseError> {
    match deps.store.deployment(&change.name).await? {
        Some(r) if r.phase.is_terminal() => finished(deps, &r).await,
        Some(r) => Ok(ignored(format!(
            "execution {}: deployment {} is {}, nothing to do",
            change.status.as_str(),
            r.id,
            r.phase
        ))),
        None => Ok(ignored(format!(
            "execution {}: deployment {} has no record yet, nothing to do",
            change.status.as_str(),
            change.name
        ))),
    }
}

async fn holds_lock(
    deps: &Deps,
    service: &str,
    environment: &str,
    id: &str,
) -> Result<bool, PhaseError> {
    Ok(deps
        .store
        .environment(service, environment)
        .await?
        .and_then(|e| e.active_deployment)
        .is_some_and(|held| held == id))
}

async fn finished(deps: &Deps, r: &DeploymentRecord) -> Result<Summary, PhaseError> {
    let held = holds_lock(deps, &r.service, &r.environment, &r.id).await?;
    if held {
        deps.store
            .release_lock(&r.service, &r.environment, &r.id)
            .await?;
        tracing::warn!(phase = %r.phase, "released the lock of an ended deployment");
    } else {
        tracing::info!(phase = %r.phase, "deployment already ended and released");
    }
    Ok(Summary::AlreadyFinished {
        deployment_id: r.id.clone(),
        phase: r.phase.as_str().to_string(),
        lock_released: held,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;
    use shared::domain::{Color, DeploymentStatus, Phase};
    use shared::fakes::sample::{self, DEPLOYMENT_ID, World};

    const STATE_MACHINE: &str = "arn:aws:states:us-east-1:123456789012:stateMachine:blue-green";

    fn event(name: &str, status: &str) -> Value {
        json!({
            "version": "0",
            "id": "315c1398-40ff-a850-213b-158f73e60175",
            "detail-type": "Step Functions Execution Status Change",
            "source": "aws.states",
            "account": "123456789012",
            "time": "2025-01-03T10:03:00Z",
            "region": "us-east-1",
            "resources": [format!("arn:aws:states:us-east-1:123456789012:execution:blue-green:{name}")],
            "detail": {
                "executionArn": format!("arn:aws:states:us-east-1:123456789012:execution:blue-green:{name}"),
                "stateMachineArn": STATE_MACHINE,
                "name": name,
                "status": status,
                "startDate": 1_735_898_400_000u64,
                "stopDate": 1_735_898_580_000u64,
                "input": sample::request().to_string(),
                "inputDetails": {"included": true},
                "output": null,
                "outputDetails": null,
                "error": null,
                "cause": null
            }
        })
    }

    #[test]
    fn parses_every_status_and_leaves_the_input_for_later() {
        let cases = [
            ("RUNNING", ExecutionStatus::Running, false),
            ("SUCCEEDED", ExecutionStatus::Succeeded, false),
            ("FAILED", ExecutionStatus::Failed, true),
            ("TIMED_OUT", ExecutionStatus::TimedOut, true),
            ("ABORTED", ExecutionStatus::Aborted, true),
            (
                "PENDING_REDRIVE",
                ExecutionStatus::Other("PENDING_REDRIVE".into()),
                false,
            ),
        ];
        for (text, status, failure) in cases {
            let c = parse(event(DEPLOYMENT_ID, text)).unwrap();
            assert_eq!(c.status, status);
            assert_eq!(c.status.is_failure(), failure, "{text}");
            assert_eq!(c.status.as_str(), text);
            assert_eq!(c.name, DEPLOYMENT_ID);
            assert_eq!(c.state_machine_arn, STATE_MACHINE);
            let req = c.request().unwrap().unwrap();
            assert_eq!(
                (req.service.as_str(), req.environment.as_str()),
                ("checkout", "dev")
            );
        }
    }

    #[test]
    fn malformed_events_are_invalid_input() {
        type Mutation = Box<dyn Fn(&mut Value)>;
        let cases: Vec<(Mutation, &str)> = vec![
            (Box::new(|e| *e = json!(42)), "not an EventBridge"),
            (
                Box::new(|e| e["source"] = json!("aws.ecr")),
                "expected source",
            ),
            (
                Box::new(|e| {
                    e["detail"].as_object_mut().map(|o| o.remove("status"));
                }),
                "missing field `status`",
            ),
            (Box::new(|e| e["detail"]["name"] = json!("")), "detail.name"),
            (
                Box::new(|e| e["detail"]["stateMachineArn"] = json!("")),
                "stateMachineArn",
            ),
            (
                Box::new(|e| e["detail"]["input"] = json!({"not": "a string"})),
                "expected a string",
            ),
        ];
        for (mutate, needle) in cases {
            let mut input = event(DEPLOYMENT_ID, "ABORTED");
            mutate(&mut input);
            match parse(input.clone()) {
                Err(PhaseError::InvalidInput(m)) => assert!(m.contains(needle), "{needle}: {m}"),
                other => panic!("{input}: expected invalid input, got {other:?}"),
            }
        }
        let mut bad_input = event(DEPLOYMENT_ID, "ABORTED");
        bad_input["detail"]["input"] = json!("{\"service\": \"checkout\"}");
        let c = parse(bad_input).unwrap();
        assert!(
            matches!(c.request(), Err(PhaseError::InvalidInput(m)) if m.contains("not a deployment request"))
        );
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            prop::sample::select(vec![
                "aws.states",
                DETAIL_TYPE,
                STATE_MACHINE,
                DEPLOYMENT_ID,
                "ABORTED",
                "FAILED",
                "SUCCEEDED",
                "{}",
                "{\"service\":\"checkout\"}",
            ])
            .prop_map(Value::from),
            "[ -~]{0,12}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 48, 8, |inner| {
            let keys = prop::sample::select(vec![
                "detail-type",
                "source",
                "detail",
                "time",
                "executionArn",
                "stateMachineArn",
                "name",
                "status",
                "input",
                "output",
            ]);
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                prop::collection::btree_map(keys, inner, 0..8).prop_map(|m| Value::Object(
                    m.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
                )),
            ]
        })
    }

    proptest! {
        #[test]
        fn arbitrary_json_never_panics_and_is_parsed_or_invalid(v in arb_json()) {
            match parse(v).and_then(|c| c.request().map(|_| ())) {
                Ok(()) | Err(PhaseError::InvalidInput(_)) => {}
                Err(other) => prop_assert!(false, "unexpected error {other:?}"),
            }
        }

        #[test]
        fn near_miss_events_never_panic(
            name in "[ -~]{0,100}",
            status in "[A-Z_]{0,12}",
            input in prop::option::of("[ -~]{0,40}"),
        ) {
            let mut e = event(&name, &status);
            e["detail"]["input"] = json!(input);
            match parse(e).and_then(|c| c.request().map(|_| ())) {
                Ok(()) | Err(PhaseError::InvalidInput(_)) => {}
                Err(other) => prop_assert!(false, "unexpected error {other:?}"),
            }
        }
    }

    fn deps(w: &World) -> Deps {
        Deps {
            store: w.store.clone(),
            access: w.access.clone(),
            clock: w.clock.clone(),
            state_machine_arn: STATE_MACHINE.into(),
        }
    }

    async fn shifted_to(percent: u16) -> World {
        World::default().shifted_to(percent, 2).await
    }

    fn lock_holder(w: &World) -> Option<String> {
        w.store
            .env("checkout", "dev")
            .and_then(|e| e.active_deployment)
    }

    #[tokio::test]
    async fn throttling_that_outlasts_the_sdk_retries_does_not_stop_the_backstop() {
        use shared::error::AdapterError;
        // GIVEN a deployment stopped at 50 % while the listener's API throttles (found by the
        // chaos test: three throttled invocations left the record ROLLING_BACK and the lock held)
        let w = shifted_to(50).await;
        *w.router.fail_next_writes.lock().unwrap() =
            vec![AdapterError::Transient("ThrottlingException".into()); 3];
        // WHEN its ABORTED event arrives once
        let out = handle(&deps(&w), event(DEPLOYMENT_ID, "ABORTED"))
            .await
            .unwrap();
        // THEN that one invocation restored blue, finished the record and released the lock
        assert_eq!(out["action"], "rolled_back");
        assert_eq!(w.router.split(), TrafficSplit::all_on(Color::Blue));
        let r = w.store.record(DEPLOYMENT_ID).unwrap();
        assert_eq!(r.status, DeploymentStatus::RolledBack);
        assert_eq!(lock_holder(&w), None);
    }

    #[tokio::test]
    async fn an_execution_aborted_at_50_percent_is_rolled_back_and_released() {
        // GIVEN a deployment someone stopped in the console at 50 %
        let w = shifted_to(50).await;
        // WHEN its ABORTED event arrives
        let out = handle(&deps(&w), event(DEPLOYMENT_ID, "ABORTED"))
            .await
            .unwrap();
        // THEN all traffic is back on blue, the record says why, the lock is free
        assert_eq!(w.router.split(), TrafficSplit::all_on(Color::Blue));
        assert_eq!(w.router.writes(), vec![TrafficSplit::all_on(Color::Blue)]);
        let r = w.store.record(DEPLOYMENT_ID).unwrap();
        assert_eq!(r.status, DeploymentStatus::RolledBack);
        assert_eq!(r.reason.as_deref(), Some("execution ABORTED"));
        assert_eq!(lock_holder(&w), None);
        assert_eq!(
            out,
            json!({
                "action": "rolled_back",
                "deployment_id": DEPLOYMENT_ID,
                "status": "ROLLED_BACK",
                "restored_blue": 100,
                "restored_green": 0
            })
        );
        // AND a redelivery changes nothing more
        let again = handle(&deps(&w), event(DEPLOYMENT_ID, "ABORTED"))
            .await
            .unwrap();
        assert_eq!(again["action"], "already_finished");
        assert_eq!(w.router.writes().len(), 1);
    }

    #[tokio::test]
    async fn timed_out_before_any_shift_marks_the_deployment_failed() {
        let w = World::default();
        let _ = w.store.begin(&sample::record(Phase::DeployingGreen)).await;
        let out = handle(&deps(&w), event(DEPLOYMENT_ID, "TIMED_OUT"))
            .await
            .unwrap();
        assert_eq!(out["action"], "failed");
        assert!(w.router.writes().is_empty());
        let r = w.store.record(DEPLOYMENT_ID).unwrap();
        assert_eq!(
            (r.status, r.reason.as_deref()),
            (DeploymentStatus::Failed, Some("execution TIMED_OUT"))
        );
        assert_eq!(lock_holder(&w), None);
    }

    #[tokio::test]
    async fn an_execution_refused_before_any_record_is_recorded_failed_and_releases_its_lock() {
        // GIVEN a start took the lock, and its first phase was refused before it recorded
        // anything (the Rejected state: the execution fails with the handler's error as cause)
        let w = World::default();
        w.store
            .acquire_lock(
                "checkout",
                "dev",
                DEPLOYMENT_ID,
                w.clock.now(),
                shared::domain::STALE_LOCK_AFTER,
            )
            .await
            .unwrap();
        let mut e = event(DEPLOYMENT_ID, "FAILED");
        e["detail"]["error"] = json!("BlueGreen.Rejected");
        e["detail"]["cause"] = json!(
            json!({"errorType": "BlueGreen.InvalidInput", "errorMessage": "alarms [\"x\"] do not exist"})
                .to_string()
        );
        // WHEN the execution's FAILED event arrives
        let out = handle(&deps(&w), e.clone()).await.unwrap();
        // THEN the environment is free, nothing moved, and history has the attempt with why
        assert_eq!(lock_holder(&w), None);
        assert_eq!(
            out,
            json!({"action": "never_started", "deployment_id": DEPLOYMENT_ID, "status": "FAILED", "lock_released": true})
        );
        assert!(w.router.writes().is_empty());
        let r = w.store.record(DEPLOYMENT_ID).unwrap();
        assert_eq!((r.phase, r.colors()), (Phase::Failed, None));
        assert_eq!(
            r.reason.as_deref(),
            Some("never got past deploying green: execution FAILED: alarms [\"x\"] do not exist")
        );
        assert_eq!(r.deployer, "alice@example.com");
        assert_eq!(
            r.started_at,
            time::macros::datetime!(2025-01-03 10:00:00 UTC)
        );
        assert_eq!(
            r.execution_arn,
            e["detail"]["executionArn"].as_str().unwrap()
        );
        // AND a redelivered event changes nothing
        let again = handle(&deps(&w), e).await.unwrap();
        assert_eq!(again["action"], "already_finished");
        assert_eq!(w.store.record(DEPLOYMENT_ID), Some(r));
    }

    #[tokio::test]
    async fn an_execution_stopped_by_hand_before_its_first_task_ran_is_recorded_failed() {
        // GIVEN an execution started from the console (no start request, so no lock and no
        // record) and stopped before DeployGreen ever ran
        let w = World::default();
        // WHEN its ABORTED event arrives
        let out = handle(&deps(&w), event(DEPLOYMENT_ID, "ABORTED"))
            .await
            .unwrap();
        // THEN it is in history, FAILED, with who started it and why it ended
        assert_eq!(out["action"], "never_started");
        assert_eq!(out["lock_released"], false);
        let r = w.store.record(DEPLOYMENT_ID).unwrap();
        assert_eq!(r.status, DeploymentStatus::Failed);
        assert_eq!(
            r.reason.as_deref(),
            Some("never got past deploying green: execution ABORTED")
        );
        assert_eq!(
            (r.version.as_str(), r.deployer.as_str()),
            ("1.3.0", "alice@example.com")
        );
        assert!(w.router.writes().is_empty());
        assert_eq!(lock_holder(&w), None);
    }

    #[tokio::test]
    async fn an_execution_named_outside_the_deployment_id_alphabet_is_still_recorded() {
        // GIVEN an execution started by hand as "release.1.3", a name Step Functions allows
        // but the phases refuse as a deployment id (so its first phase failed, changing nothing)
        let w = World::default();
        assert!(shared::domain::DeploymentId::parse("release.1.3").is_err());
        // WHEN its FAILED event arrives
        let out = handle(&deps(&w), event("release.1.3", "FAILED"))
            .await
            .unwrap();
        // THEN it is in history under that name, FAILED, and nothing else moved
        assert_eq!(out["action"], "never_started");
        let r = w.store.record("release.1.3").unwrap();
        assert_eq!(r.status, DeploymentStatus::Failed);
        assert!(w.router.writes().is_empty());
        assert_eq!(lock_holder(&w), None);
    }

    #[tokio::test]
    async fn an_execution_stopped_while_only_requested_ends_that_record() {
        // GIVEN the start request recorded the deployment (REQUESTED) and holds the lock
        let w = World::default();
        let request: DeploymentRequest = serde_json::from_value(sample::request()).unwrap();
        let requested = request.requested_record(
            DEPLOYMENT_ID,
            "arn:aws:states:us-east-1:123456789012:execution:blue-green:x",
            w.clock.now(),
        );
        w.store.record_request(&requested).await.unwrap();
        w.store
            .acquire_lock(
                "checkout",
                "dev",
                DEPLOYMENT_ID,
                w.clock.now(),
                shared::domain::STALE_LOCK_AFTER,
            )
            .await
            .unwrap();
        // WHEN the execution is stopped
        let out = handle(&deps(&w), event(DEPLOYMENT_ID, "ABORTED"))
            .await
            .unwrap();
        // THEN that record ends FAILED (its start time kept) and the lock is free
        assert_eq!(out["lock_released"], true);
        let r = w.store.record(DEPLOYMENT_ID).unwrap();
        assert_eq!(
            (r.phase, r.started_at),
            (Phase::Failed, requested.started_at)
        );
        assert_eq!(r.execution_arn, requested.execution_arn);
        assert_eq!(lock_holder(&w), None);
    }

    #[tokio::test]
    async fn without_the_input_a_missing_record_cannot_be_written() {
        let w = World::default();
        let mut e = event(DEPLOYMENT_ID, "ABORTED");
        e["detail"]["input"] = Value::Null;
        e["detail"]["inputDetails"] = json!({"included": false});
        let out = handle(&deps(&w), e).await.unwrap();
        assert_eq!(
            out,
            json!({"action": "not_recorded", "deployment_id": DEPLOYMENT_ID})
        );
        assert!(w.store.record(DEPLOYMENT_ID).is_none());
    }

    #[tokio::test]
    async fn a_failed_execution_never_releases_another_deployments_lock() {
        let w = World::default();
        w.store
            .acquire_lock(
                "checkout",
                "dev",
                "someone-else",
                w.clock.now(),
                shared::domain::STALE_LOCK_AFTER,
            )
            .await
            .unwrap();
        let out = handle(&deps(&w), event(DEPLOYMENT_ID, "FAILED"))
            .await
            .unwrap();
        assert_eq!(out["lock_released"], false);
        assert_eq!(lock_holder(&w), Some("someone-else".into()));
    }

    #[tokio::test]
    async fn another_state_machines_execution_is_ignored() {
        let w = shifted_to(50).await;
        let mut e = event(DEPLOYMENT_ID, "ABORTED");
        e["detail"]["stateMachineArn"] =
            json!("arn:aws:states:us-east-1:123456789012:stateMachine:nightly-report");
        // its input is not ours to read
        e["detail"]["input"] = json!("{\"report\": \"nightly\"}");
        let out = handle(&deps(&w), e).await.unwrap();
        assert_eq!(out["action"], "ignored");
        assert!(out["reason"].as_str().unwrap().contains("nightly-report"));
        assert!(w.router.writes().is_empty());
        assert_eq!(
            w.store.record(DEPLOYMENT_ID).map(|r| r.phase),
            Some(Phase::ShiftingTraffic)
        );
        assert_eq!(lock_holder(&w), Some(DEPLOYMENT_ID.into()));
    }

    #[tokio::test]
    async fn succeeded_with_a_terminal_record_changes_nothing() {
        // GIVEN a deployment that finalized (record SUCCEEDED, lock released)
        let w = World::default();
        let mut r = sample::record(Phase::Succeeded);
        r.status = DeploymentStatus::Succeeded;
        w.store
            .records
            .lock()
            .unwrap()
            .insert(DEPLOYMENT_ID.into(), r.clone());
        // WHEN its SUCCEEDED event arrives
        let out = handle(&deps(&w), event(DEPLOYMENT_ID, "SUCCEEDED"))
            .await
            .unwrap();
        // THEN nothing changes
        assert_eq!(
            out,
            json!({"action": "already_finished", "deployment_id": DEPLOYMENT_ID, "phase": "SUCCEEDED", "lock_released": false})
        );
        assert_eq!(w.store.record(DEPLOYMENT_ID), Some(r));
        assert!(w.router.writes().is_empty());
        assert!(w.store.env("checkout", "dev").is_none());
    }

    #[tokio::test]
    async fn an_ended_deployment_still_holding_its_lock_is_released() {
        let w = World::default();
        let mut r = sample::record(Phase::Succeeded);
        r.status = DeploymentStatus::Succeeded;
        w.store
            .records
            .lock()
            .unwrap()
            .insert(DEPLOYMENT_ID.into(), r);
        w.store
            .acquire_lock(
                "checkout",
                "dev",
                DEPLOYMENT_ID,
                w.clock.now(),
                shared::domain::STALE_LOCK_AFTER,
            )
            .await
            .unwrap();
        let out = handle(&deps(&w), event(DEPLOYMENT_ID, "SUCCEEDED"))
            .await
            .unwrap();
        assert_eq!(out["lock_released"], true);
        assert_eq!(lock_holder(&w), None);
    }

    #[tokio::test]
    async fn running_changes_nothing() {
        let w = shifted_to(25).await;
        let out = handle(&deps(&w), event(DEPLOYMENT_ID, "RUNNING"))
            .await
            .unwrap();
        assert_eq!(out["action"], "ignored");
        assert!(w.router.writes().is_empty());
        assert_eq!(lock_holder(&w), Some(DEPLOYMENT_ID.into()));
    }

    #[tokio::test]
    async fn malformed_events_are_a_named_error_and_change_nothing() {
        let w = shifted_to(50).await;
        let mut bad_input = event(DEPLOYMENT_ID, "ABORTED");
        bad_input["detail"]["input"] = json!("not json");
        let mut no_name = event(DEPLOYMENT_ID, "ABORTED");
        no_name["detail"].as_object_mut().map(|o| o.remove("name"));
        for input in [json!({}), json!([1, 2]), bad_input, no_name] {
            let err = handle(&deps(&w), input).await.unwrap_err();
            assert_eq!(
                lambda_runtime::Diagnostic::from(err).error_type,
                "BlueGreen.InvalidInput"
            );
        }
        assert!(w.router.writes().is_empty());
        assert_eq!(
            w.store.record(DEPLOYMENT_ID).map(|r| r.phase),
            Some(Phase::ShiftingTraffic)
        );
        assert_eq!(lock_holder(&w), Some(DEPLOYMENT_ID.into()));
    }
}

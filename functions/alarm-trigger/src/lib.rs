//! Alarm trigger: an alarm bound to an environment going to ALARM rolls back that environment's
//! running deployment at once (traffic restored and verified in this invocation), then stops
//! its execution. Accepts the EventBridge state-change event and the alarm's Lambda action.

use aws_lambda_events::cloudwatch_alarms::{
    CloudWatchAlarm, CloudWatchAlarmData, CloudWatchAlarmStateValue,
};
use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use shared::domain::TrafficSplit;
use shared::error::PhaseError;
use shared::ports::{Clock, DeploymentStore, EnvironmentAccess, Executions, Registry};
use shared::usecases::rollback::{RollbackDeps, RollbackOutcome, roll_back};
use std::sync::Arc;
use tracing::Instrument;

pub const SOURCE: &str = "aws.cloudwatch";
pub const DETAIL_TYPE: &str = "CloudWatch Alarm State Change";
/// The error name an execution stopped by an alarm ends with.
pub const STOP_ERROR: &str = shared::error::ExecutionError::RolledBack.name();

pub struct Deps {
    pub registry: Arc<dyn Registry>,
    pub store: Arc<dyn DeploymentStore>,
    pub access: Arc<dyn EnvironmentAccess>,
    pub executions: Arc<dyn Executions>,
    pub clock: Arc<dyn Clock>,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AlarmValue {
    Ok,
    Alarm,
    InsufficientData,
}

impl AlarmValue {
    pub fn as_str(self) -> &'static str {
        match self {
            AlarmValue::Ok => "OK",
            AlarmValue::Alarm => "ALARM",
            AlarmValue::InsufficientData => "INSUFFICIENT_DATA",
        }
    }
}

/// Where an alarm change came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    EventBridge,
    LambdaAction,
}

/// An alarm's state change, whichever way it was delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmChange {
    pub name: String,
    pub state: AlarmValue,
    pub reason: String,
    pub delivery: Delivery,
    /// The account and region the alarm lives in: with its name, the alarm's ARN.
    pub account: String,
    pub region: String,
}

fn invalid(m: impl Into<String>) -> PhaseError {
    PhaseError::InvalidInput(m.into())
}

/// Parses either delivery into (alarm name, state, reason). Anything else is
/// `BlueGreen.InvalidInput`.
pub fn parse(input: Value) -> Result<AlarmChange, PhaseError> {
    let Some(obj) = input.as_object() else {
        return Err(invalid("an alarm event must be a JSON object"));
    };
    let (data, delivery, account, region) = if obj.contains_key("detail-type") {
        let e: EventBridgeEvent<CloudWatchAlarmData<Value, Value>> = serde_json::from_value(input)
            .map_err(|e| invalid(format!("not an EventBridge {DETAIL_TYPE:?} event: {e}")))?;
        if e.source != SOURCE || e.detail_type != DETAIL_TYPE {
            return Err(invalid(format!(
                "expected source {SOURCE:?} and detail-type {DETAIL_TYPE:?}, got {:?} and {:?}: check the EventBridge rule's pattern",
                e.source, e.detail_type
            )));
        }
        (e.detail, Delivery::EventBridge, e.account, e.region)
    } else if obj.contains_key("alarmData") {
        let e: CloudWatchAlarm<Value, Value> = serde_json::from_value(input)
            .map_err(|e| invalid(format!("not a CloudWatch alarm action payload: {e}")))?;
        (e.alarm_data, Delivery::LambdaAction, e.account_id, e.region)
    } else {
        return Err(invalid(format!(
            "expected an EventBridge {DETAIL_TYPE:?} event (detail-type) or an alarm action payload (alarmData)"
        )));
    };
    if data.alarm_name.is_empty() || data.alarm_name.len() > 255 {
        return Err(invalid("the alarm name must be 1-255 characters"));
    }
    let account = account
        .filter(|a| shared::domain::is_account_id(a))
        .ok_or_else(|| {
            invalid(format!(
                "alarm {}: the event names no 12-digit account, so the alarm cannot be told from a same-named one elsewhere",
                data.alarm_name
            ))
        })?;
    let region = region
        .filter(|r| {
            !r.is_empty()
                && r.len() <= 32
                && r.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
        .ok_or_else(|| {
            invalid(format!(
                "alarm {}: the event names no region",
                data.alarm_name
            ))
        })?;
    let state = data
        .state
        .ok_or_else(|| invalid(format!("alarm {}: the event has no state", data.alarm_name)))?;
    let value = match state.value {
        CloudWatchAlarmStateValue::Ok => AlarmValue::Ok,
        CloudWatchAlarmStateValue::Alarm => AlarmValue::Alarm,
        CloudWatchAlarmStateValue::InsufficientData => AlarmValue::InsufficientData,
        other => {
            return Err(invalid(format!(
                "alarm {}: unknown state {other:?}",
                data.alarm_name
            )));
        }
    };
    Ok(AlarmChange {
        name: data.alarm_name,
        state: value,
        reason: state.reason,
        delivery,
        account,
        region,
    })
}

/// Traffic after a rollback, as the result shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Split {
    pub blue: u16,
    pub green: u16,
}

impl From<TrafficSplit> for Split {
    fn from(s: TrafficSplit) -> Self {
        Self {
            blue: s.blue(),
            green: s.green(),
        }
    }
}

/// What happened in one environment the alarm is bound to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum EnvironmentOutcome {
    RolledBack {
        service: String,
        environment: String,
        deployment_id: String,
        /// ROLLED_BACK (traffic had moved) or FAILED (it never had).
        status: String,
        restored: Split,
        /// Whether the execution was stopped; if not, its next phase finds the deployment
        /// finished and ends it.
        execution_stopped: bool,
    },
    NothingToDo {
        service: String,
        environment: String,
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Summary {
    Ignored {
        alarm: String,
        reason: String,
    },
    Checked {
        alarm: String,
        environments: Vec<EnvironmentOutcome>,
    },
}

fn ignored(alarm: &AlarmChange, reason: String) -> Summary {
    tracing::info!(action = "ignored", alarm = %alarm.name, state = alarm.state.as_str(), %reason, "alarm change ignored");
    Summary::Ignored {
        alarm: alarm.name.clone(),
        reason,
    }
}

pub async fn handle(deps: &Deps, input: Value) -> Result<Value, PhaseError> {
    let alarm = parse(input)?;
    let span =
        tracing::info_span!("alarm_trigger", alarm = %alarm.name, state = alarm.state.as_str());
    let summary = run(deps, &alarm).instrument(span).await?;
    serde_json::to_value(&summary)
        .map_err(|e| PhaseError::Internal(format!("serializing the result: {e}")))
}

async fn run(deps: &Deps, alarm: &AlarmChange) -> Result<Summary, PhaseError> {
    if alarm.state != AlarmValue::Alarm {
        return Ok(ignored(
            alarm,
            format!(
                "alarm {} is {}: only ALARM rolls back",
                alarm.name,
                alarm.state.as_str()
            ),
        ));
    }
    let bound = deps.registry.environments_by_alarm(&alarm.name).await?;
    if bound.is_empty() {
        return Ok(ignored(
            alarm,
            format!(
                "alarm {} is bound to no environment in the registry",
                alarm.name
            ),
        ));
    }
    let reason = format!("alarm {}: {}", alarm.name, alarm.reason);
    let mut environments = Vec::with_capacity(bound.len());
    let mut first_error = None;
    // Every bound environment is tried even if one fails; the failure is then returned so the
    // delivery is retried (rolling back is idempotent).
    for (service, environment) in bound {
        match act(deps, alarm, &service, &environment, &reason).await {
            Ok(o) => environments.push(o),
            Err(e) => {
                tracing::error!(%service, %environment, error = %e, "rollback failed");
                first_error.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    Ok(Summary::Checked {
        alarm: alarm.name.clone(),
        environments,
    })
}

/// The account and region of the environment's load balancer (its listener's or rule's ARN):
/// where the alarms that judge it live.
fn home(config: &shared::registry::EnvironmentConfig) -> Option<(String, String)> {
    let arn = config
        .traffic
        .listener_arn
        .as_deref()
        .or(config.traffic.rule_arn.as_deref())?;
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    match parts.as_slice() {
        ["arn", _, _, region, account, _] => Some((account.to_string(), region.to_string())),
        _ => None,
    }
}

async fn act(
    deps: &Deps,
    alarm: &AlarmChange,
    service: &str,
    environment: &str,
    reason: &str,
) -> Result<EnvironmentOutcome, PhaseError> {
    let nothing = |why: String| {
        tracing::info!(%service, %environment, reason = %why, "nothing to roll back");
        Ok(EnvironmentOutcome::NothingToDo {
            service: service.to_string(),
            environment: environment.to_string(),
            reason: why,
        })
    };
    // An alarm is its ARN: the same name in another account or region is another alarm.
    let config = deps
        .registry
        .environment_config(service, environment)
        .await?;
    let Some((account, region)) = config.as_ref().and_then(home) else {
        return nothing(format!(
            "{service}/{environment} has no registered load balancer to tell which account's alarm {} is its",
            alarm.name
        ));
    };
    if (account.as_str(), region.as_str()) != (alarm.account.as_str(), alarm.region.as_str()) {
        return nothing(format!(
            "alarm {} fired in account {} ({}); {service}/{environment} runs in account {account} ({region}), so this same-named alarm is not its",
            alarm.name, alarm.account, alarm.region
        ));
    }
    let running = deps
        .store
        .environment(service, environment)
        .await?
        .and_then(|e| e.active_deployment);
    let Some(id) = running else {
        return nothing(format!(
            "no deployment is running in {service}/{environment}"
        ));
    };
    let Some(record) = deps.store.deployment(&id).await? else {
        return nothing(format!(
            "deployment {id} holds {service}/{environment} but has not begun (no record); nothing has moved"
        ));
    };
    if record.phase.is_terminal() {
        return nothing(format!(
            "deployment {id} has already ended ({})",
            record.phase
        ));
    }
    let Some((active, _)) = record.colors() else {
        return nothing(format!(
            "deployment {id} holds {service}/{environment} but has not begun (it is {}); nothing has moved",
            record.phase
        ));
    };
    let record = match roll_back(&deps.rollback(), &id, reason, None).await? {
        RollbackOutcome::RolledBack(r)
        | RollbackOutcome::Failed(r)
        | RollbackOutcome::NotDeployed(r) => r,
        RollbackOutcome::AlreadyFinished(r) => {
            return nothing(format!(
                "deployment {id} ended ({}) while the alarm was handled",
                r.phase
            ));
        }
        RollbackOutcome::NeverStarted(_) | RollbackOutcome::NotRecorded => {
            return nothing(format!("deployment {id} had not begun"));
        }
    };
    // The rollback is done and recorded; stopping the execution only saves its remaining
    // phases a trip (each would find the deployment finished and end), so a failure here is
    // reported, not retried.
    let execution_stopped = match deps
        .executions
        .stop(&record.execution_arn, STOP_ERROR, reason)
        .await
    {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(execution_arn = %record.execution_arn, error = %e, "execution not stopped");
            false
        }
    };
    let restored = TrafficSplit::all_on(active);
    tracing::warn!(
        %service, %environment, deployment_id = %id,
        blue = restored.blue(), green = restored.green(),
        status = record.status.as_str(), "deployment rolled back by alarm"
    );
    Ok(EnvironmentOutcome::RolledBack {
        service: service.to_string(),
        environment: environment.to_string(),
        deployment_id: id,
        status: record.status.as_str().to_string(),
        restored: restored.into(),
        execution_stopped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;
    use shared::domain::{Color, DeploymentStatus, Phase};
    use shared::fakes::FakeExecutions;
    use shared::fakes::sample::{self, ALARM, DEPLOYMENT_ID, World};

    const REASON: &str = "Threshold Crossed: 1 out of the last 1 datapoints [12.0 (03/01/25 10:01:00)] was greater than the threshold (5.0) (minimum 1 datapoint for OK -> ALARM transition).";

    fn state(value: &str) -> Value {
        json!({"value": value, "reason": REASON, "timestamp": "2025-01-03T10:02:00.123+0000"})
    }

    fn eventbridge(name: &str, value: &str) -> Value {
        json!({
            "version": "0",
            "id": "c4c1c1c9-6542-e61b-6ef0-8c4d36933a92",
            "detail-type": "CloudWatch Alarm State Change",
            "source": "aws.cloudwatch",
            "account": "123456789012",
            "time": "2025-01-03T10:02:00Z",
            "region": "us-east-1",
            "resources": [format!("arn:aws:cloudwatch:us-east-1:123456789012:alarm:{name}")],
            "detail": {
                "alarmName": name,
                "state": state(value),
                "previousState": state("OK"),
                "configuration": {"metrics": []}
            }
        })
    }

    fn lambda_action(name: &str, value: &str) -> Value {
        json!({
            "source": "aws.cloudwatch",
            "alarmArn": format!("arn:aws:cloudwatch:us-east-1:123456789012:alarm:{name}"),
            "accountId": "123456789012",
            "time": "2025-01-03T10:02:00.123+0000",
            "region": "us-east-1",
            "alarmData": {
                "alarmName": name,
                "state": state(value),
                "previousState": state("OK"),
                "configuration": {"description": "5xx on green", "metrics": []}
            }
        })
    }

    #[test]
    fn both_deliveries_normalize_to_name_state_and_reason() {
        let cases = [
            (
                eventbridge(ALARM, "ALARM"),
                AlarmValue::Alarm,
                Delivery::EventBridge,
            ),
            (
                eventbridge(ALARM, "OK"),
                AlarmValue::Ok,
                Delivery::EventBridge,
            ),
            (
                eventbridge(ALARM, "INSUFFICIENT_DATA"),
                AlarmValue::InsufficientData,
                Delivery::EventBridge,
            ),
            (
                lambda_action(ALARM, "ALARM"),
                AlarmValue::Alarm,
                Delivery::LambdaAction,
            ),
            (
                lambda_action(ALARM, "OK"),
                AlarmValue::Ok,
                Delivery::LambdaAction,
            ),
        ];
        for (input, state, delivery) in cases {
            assert_eq!(
                parse(input),
                Ok(AlarmChange {
                    name: ALARM.into(),
                    state,
                    reason: REASON.into(),
                    delivery,
                    account: "123456789012".into(),
                    region: "us-east-1".into(),
                })
            );
        }
    }

    #[test]
    fn malformed_alarm_events_are_invalid_input() {
        type Mutation = Box<dyn Fn(&mut Value)>;
        let cases: Vec<(Value, Mutation, &str)> = vec![
            (json!(null), Box::new(|_| {}), "JSON object"),
            (
                json!({"hello": 1}),
                Box::new(|_| {}),
                "expected an EventBridge",
            ),
            (
                eventbridge(ALARM, "ALARM"),
                Box::new(|e| e["source"] = json!("aws.ecr")),
                "expected source",
            ),
            (
                eventbridge(ALARM, "ALARM"),
                Box::new(|e| e["detail"]["state"]["value"] = json!("FIRE")),
                "unknown variant",
            ),
            (
                eventbridge(ALARM, "ALARM"),
                Box::new(|e| {
                    e["detail"].as_object_mut().map(|o| o.remove("state"));
                }),
                "has no state",
            ),
            (
                eventbridge("", "ALARM"),
                Box::new(|_| {}),
                "1-255 characters",
            ),
            (
                eventbridge(ALARM, "ALARM"),
                Box::new(|e| {
                    e.as_object_mut().map(|o| o.remove("account"));
                }),
                "no 12-digit account",
            ),
            (
                lambda_action(ALARM, "ALARM"),
                Box::new(|e| e["accountId"] = json!("12345")),
                "no 12-digit account",
            ),
            (
                eventbridge(ALARM, "ALARM"),
                Box::new(|e| e["region"] = json!("US EAST")),
                "no region",
            ),
            (
                lambda_action(ALARM, "ALARM"),
                Box::new(|e| e["alarmData"]["alarmName"] = json!(7)),
                "not a CloudWatch alarm action payload",
            ),
            (
                lambda_action(ALARM, "ALARM"),
                Box::new(|e| {
                    e["alarmData"]["state"]
                        .as_object_mut()
                        .map(|o| o.remove("reason"));
                }),
                "reason",
            ),
        ];
        for (mut input, mutate, needle) in cases {
            mutate(&mut input);
            match parse(input.clone()) {
                Err(PhaseError::InvalidInput(m)) => assert!(m.contains(needle), "{needle}: {m}"),
                other => panic!("{input}: expected invalid input, got {other:?}"),
            }
        }
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            prop::sample::select(vec![
                "ALARM",
                "OK",
                "INSUFFICIENT_DATA",
                "aws.cloudwatch",
                DETAIL_TYPE,
                ALARM,
                "2025-01-03T10:02:00Z",
                "2025-01-03T10:02:00.123+0000",
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
                "alarmData",
                "alarmName",
                "state",
                "value",
                "reason",
                "timestamp",
                "configuration",
                "previousState",
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
            match parse(v) {
                Ok(_) | Err(PhaseError::InvalidInput(_)) => {}
                Err(other) => prop_assert!(false, "unexpected error {other:?}"),
            }
        }

        #[test]
        fn near_miss_events_never_panic(
            lambda in any::<bool>(),
            name in "[ -~]{0,300}",
            value in prop::sample::select(vec!["ALARM", "OK", "INSUFFICIENT_DATA", "", "alarm"]),
            drop in prop::sample::select(vec!["", "state", "time", "configuration", "alarmName"]),
        ) {
            let mut e = if lambda { lambda_action(&name, value) } else { eventbridge(&name, value) };
            if let Some(o) = e.as_object_mut() { o.remove(drop); }
            let data = if lambda { "alarmData" } else { "detail" };
            if let Some(o) = e[data].as_object_mut() { o.remove(drop); }
            match parse(e) {
                Ok(a) => prop_assert!(!a.name.is_empty() && a.name.len() <= 255),
                Err(PhaseError::InvalidInput(_)) => {}
                Err(other) => prop_assert!(false, "unexpected error {other:?}"),
            }
        }
    }

    fn deps(w: &World) -> Deps {
        Deps {
            registry: w.registry.clone(),
            store: w.store.clone(),
            access: w.access.clone(),
            executions: w.executions.clone(),
            clock: w.clock.clone(),
        }
    }

    async fn shifted_to(percent: u16) -> World {
        World::default()
            .with_registry()
            .await
            .shifted_to(percent, 1)
            .await
    }

    fn expected_reason() -> String {
        format!("alarm {ALARM}: {REASON}")
    }

    #[tokio::test]
    async fn an_alarm_rolls_the_running_deployment_back_at_once_and_stops_its_execution() {
        for input in [eventbridge(ALARM, "ALARM"), lambda_action(ALARM, "ALARM")] {
            // GIVEN checkout/dev at 25 % green
            let w = shifted_to(25).await;
            // WHEN its alarm goes to ALARM
            let out = handle(&deps(&w), input).await.unwrap();
            // THEN blue has everything again, verified by read-back, in this invocation
            assert_eq!(w.router.split(), TrafficSplit::all_on(Color::Blue));
            assert_eq!(w.router.writes(), vec![TrafficSplit::all_on(Color::Blue)]);
            // AND the record says why, the lock is free, the execution is stopped
            let r = w.store.record(DEPLOYMENT_ID).unwrap();
            assert_eq!(r.status, DeploymentStatus::RolledBack);
            assert_eq!(r.reason, Some(expected_reason()));
            assert_eq!(
                w.store
                    .env("checkout", "dev")
                    .and_then(|e| e.active_deployment),
                None
            );
            assert_eq!(
                w.executions.stopped.lock().unwrap().clone(),
                vec![(
                    FakeExecutions::arn(DEPLOYMENT_ID),
                    STOP_ERROR.to_string(),
                    expected_reason()
                )]
            );
            assert_eq!(
                out,
                json!({
                    "action": "checked",
                    "alarm": ALARM,
                    "environments": [{
                        "outcome": "rolled_back",
                        "service": "checkout",
                        "environment": "dev",
                        "deployment_id": DEPLOYMENT_ID,
                        "status": "ROLLED_BACK",
                        "restored": {"blue": 100, "green": 0},
                        "execution_stopped": true
                    }]
                })
            );
        }
    }

    /// An alarm is its ARN: the same name in another account (an environment account, or the
    /// controller's own for another team) or another region rolls nothing back.
    #[tokio::test]
    async fn a_same_named_alarm_in_another_account_or_region_rolls_nothing_back() {
        for (key, value, delivery) in [
            (
                "account",
                "210987654321",
                eventbridge as fn(&str, &str) -> Value,
            ),
            ("region", "eu-west-1", eventbridge),
            ("accountId", "210987654321", lambda_action),
            ("region", "eu-west-1", lambda_action),
        ] {
            let w = shifted_to(25).await;
            let mut input = delivery(ALARM, "ALARM");
            input[key] = json!(value);
            let out = handle(&deps(&w), input).await.unwrap();
            assert_eq!(out["environments"][0]["outcome"], "nothing_to_do", "{out}");
            let why = out["environments"][0]["reason"]
                .as_str()
                .unwrap_or_default();
            assert!(
                why.contains("runs in account 123456789012 (us-east-1)"),
                "{why}"
            );
            assert!(w.router.writes().is_empty(), "{key}={value}: traffic moved");
            assert_eq!(
                w.store.record(DEPLOYMENT_ID).unwrap().status,
                DeploymentStatus::InProgress
            );
            assert!(w.executions.stopped.lock().unwrap().is_empty());
        }
    }

    #[tokio::test]
    async fn after_the_alarm_a_later_shift_is_aborted_and_writes_no_weights() {
        // GIVEN the alarm rolled back the deployment at 25 %
        let w = shifted_to(25).await;
        handle(&deps(&w), eventbridge(ALARM, "ALARM"))
            .await
            .unwrap();
        let writes = w.router.writes();
        // WHEN the execution's shift-traffic phase runs next (it was already in flight)
        let err = shift_traffic::handle(
            &w.phase_deps(),
            sample::state_with(&sample::progress(Some(1), 25)),
        )
        .await
        .unwrap_err();
        // THEN it refuses, and the listener is untouched
        assert_eq!(err.error_type(), "BlueGreen.Aborted");
        assert_eq!(w.router.writes(), writes);
        assert_eq!(w.router.split(), TrafficSplit::all_on(Color::Blue));
        assert_eq!(
            w.store.record(DEPLOYMENT_ID).map(|r| r.phase),
            Some(Phase::RolledBack)
        );
    }

    #[tokio::test]
    async fn ok_and_insufficient_data_change_nothing() {
        let w = shifted_to(25).await;
        for input in [
            eventbridge(ALARM, "OK"),
            lambda_action(ALARM, "INSUFFICIENT_DATA"),
        ] {
            let out = handle(&deps(&w), input).await.unwrap();
            assert_eq!(out["action"], "ignored");
            assert!(
                out["reason"]
                    .as_str()
                    .unwrap()
                    .contains("only ALARM rolls back")
            );
        }
        assert!(w.router.writes().is_empty());
        assert_eq!(
            w.store.record(DEPLOYMENT_ID).map(|r| r.phase),
            Some(Phase::ShiftingTraffic)
        );
        assert!(w.executions.stopped.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn an_alarm_bound_to_nothing_changes_nothing() {
        let w = shifted_to(25).await;
        let out = handle(&deps(&w), eventbridge("billing-latency", "ALARM"))
            .await
            .unwrap();
        assert_eq!(out["action"], "ignored");
        assert!(
            out["reason"]
                .as_str()
                .unwrap()
                .contains("bound to no environment")
        );
        assert!(w.router.writes().is_empty());
        assert_eq!(
            w.store.record(DEPLOYMENT_ID).map(|r| r.phase),
            Some(Phase::ShiftingTraffic)
        );
    }

    #[tokio::test]
    async fn no_running_or_an_ended_deployment_means_nothing_to_do() {
        // GIVEN no deployment at all
        let w = World::default().with_registry().await;
        let out = handle(&deps(&w), eventbridge(ALARM, "ALARM"))
            .await
            .unwrap();
        assert_eq!(out["environments"][0]["outcome"], "nothing_to_do");
        assert!(
            out["environments"][0]["reason"]
                .as_str()
                .unwrap()
                .contains("no deployment is running")
        );
        // GIVEN a lock taken by a start whose execution has not begun
        w.store
            .acquire_lock(
                "checkout",
                "dev",
                "starting",
                w.clock.now(),
                shared::domain::STALE_LOCK_AFTER,
            )
            .await
            .unwrap();
        let out = handle(&deps(&w), eventbridge(ALARM, "ALARM"))
            .await
            .unwrap();
        assert!(
            out["environments"][0]["reason"]
                .as_str()
                .unwrap()
                .contains("has not begun")
        );
        assert!(w.router.writes().is_empty());
        assert!(w.executions.stopped.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_repeated_alarm_after_the_rollback_does_nothing_more() {
        let w = shifted_to(50).await;
        let d = deps(&w);
        handle(&d, eventbridge(ALARM, "ALARM")).await.unwrap();
        let out = handle(&d, lambda_action(ALARM, "ALARM")).await.unwrap();
        assert_eq!(out["environments"][0]["outcome"], "nothing_to_do");
        assert_eq!(w.router.writes().len(), 1);
        assert_eq!(w.executions.stopped.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_deployment_before_any_shift_ends_failed_and_its_execution_stops() {
        let w = World::default().with_registry().await;
        let _ = w.store.begin(&sample::record(Phase::DeployingGreen)).await;
        let out = handle(&deps(&w), eventbridge(ALARM, "ALARM"))
            .await
            .unwrap();
        assert_eq!(out["environments"][0]["status"], "FAILED");
        assert!(w.router.writes().is_empty());
        assert_eq!(w.executions.stopped.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_failed_restore_is_an_error_and_the_execution_keeps_running() {
        let w = shifted_to(25).await;
        w.router
            .fail_next_writes
            .lock()
            .unwrap()
            .push(shared::error::AdapterError::Transient("Throttling".into()));
        let err = handle(&deps(&w), eventbridge(ALARM, "ALARM"))
            .await
            .unwrap_err();
        assert_eq!(err.error_type(), "BlueGreen.Retryable");
        assert!(w.executions.stopped.lock().unwrap().is_empty());
        // the redelivery finishes the job
        handle(&deps(&w), eventbridge(ALARM, "ALARM"))
            .await
            .unwrap();
        assert_eq!(w.router.split(), TrafficSplit::all_on(Color::Blue));
        assert_eq!(w.executions.stopped.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn malformed_input_is_a_named_error_and_changes_nothing() {
        let w = shifted_to(25).await;
        let err = handle(&deps(&w), json!({"alarmData": {}}))
            .await
            .unwrap_err();
        assert_eq!(
            lambda_runtime::Diagnostic::from(err).error_type,
            "BlueGreen.InvalidInput"
        );
        assert!(w.router.writes().is_empty());
        assert_eq!(
            w.store.record(DEPLOYMENT_ID).map(|r| r.phase),
            Some(Phase::ShiftingTraffic)
        );
    }
}

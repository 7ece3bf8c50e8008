//! Lambda wiring shared by every phase binary: logging, configuration and the AWS config at
//! cold start, and the invocation loop that turns a `PhaseError` into the named error the
//! state machine matches.

use crate::config::Config;
use crate::contracts::ExecutionState;
use crate::error::PhaseError;
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde_json::Value;
use std::future::Future;

/// Cold start: JSON logs, typed configuration (failing fast on a missing variable), AWS config.
pub async fn init() -> Result<(Config, aws_config::SdkConfig), lambda_runtime::Error> {
    crate::telemetry::init();
    let config = Config::from_env()?;
    let aws = crate::adapters::load_aws_config().await?;
    Ok((config, aws))
}

/// Cold start of a phase function: the deployment table and access to environments' accounts.
#[cfg(all(feature = "dynamodb", feature = "registry", feature = "access"))]
pub async fn phase_deps() -> Result<crate::ports::PhaseDeps, lambda_runtime::Error> {
    let (config, aws) = init().await?;
    let dynamodb = aws_sdk_dynamodb::Client::new(&aws);
    Ok(crate::ports::PhaseDeps {
        store: std::sync::Arc::new(crate::adapters::dynamodb::DynamoStore::new(
            dynamodb.clone(),
            config.table_name.clone(),
        )),
        registry: std::sync::Arc::new(crate::adapters::registry::DynamoRegistry::new(
            dynamodb,
            config.table_name,
        )),
        access: std::sync::Arc::new(crate::adapters::access::AwsAccess::new(aws)),
        clock: std::sync::Arc::new(crate::ports::SystemClock),
    })
}

/// Serves `handler` until the runtime stops.
pub async fn serve<F, Fut>(handler: F) -> Result<(), lambda_runtime::Error>
where
    F: Fn(Value) -> Fut,
    Fut: Future<Output = Result<ExecutionState, PhaseError>>,
{
    let handler = &handler;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        handler(event.payload).await.map_err(Diagnostic::from)
    }))
    .await
}

/// Serves a handler whose output is any JSON (the trigger functions' summaries), with the same
/// error mapping as [`serve`]. An event the handler refuses is also logged as one structured
/// line ([`Refusal`]), as ignored events are.
pub async fn serve_json<F, Fut, R>(handler: F) -> Result<(), lambda_runtime::Error>
where
    F: Fn(Value) -> Fut,
    Fut: Future<Output = Result<R, PhaseError>>,
    R: serde::Serialize,
{
    let handler = &handler;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let source = EventSource::of(&event.payload);
        handler(event.payload).await.map_err(|e| {
            if let Some(r) = Refusal::of(&source, &e) {
                r.log();
            }
            Diagnostic::from(e)
        })
    }))
    .await
}

/// Where an event came from, read before the handler takes it: its `source` and `id`
/// (EventBridge), or the alarm's ARN (a CloudWatch alarm's Lambda action). Only the first 200
/// characters of each, control characters removed: they are foreign text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSource {
    pub source: String,
    pub id: String,
}

impl EventSource {
    pub fn of(payload: &Value) -> Self {
        let text = |v: &Value| {
            v.as_str().map(|s| {
                s.chars()
                    .filter(|c| !c.is_control())
                    .take(200)
                    .collect::<String>()
            })
        };
        Self {
            source: text(&payload["source"]).unwrap_or_else(|| "unknown".to_string()),
            id: text(&payload["id"])
                .or_else(|| text(&payload["alarmArn"]))
                .unwrap_or_else(|| "none".to_string()),
        }
    }
}

/// A refused event: what came in and what was wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub event_source: String,
    pub event_id: String,
    pub error_type: &'static str,
    pub reason: String,
}

impl Refusal {
    /// The refusal of `error`, if it refuses the event itself (invalid input); other errors
    /// are failures to act on a valid event, logged where they happen.
    pub fn of(source: &EventSource, error: &PhaseError) -> Option<Self> {
        matches!(error, PhaseError::InvalidInput(_)).then(|| Self {
            event_source: source.source.clone(),
            event_id: source.id.clone(),
            error_type: error.error_type(),
            reason: error.to_string(),
        })
    }

    pub fn log(&self) {
        tracing::warn!(
            action = "refused",
            event_source = %self.event_source,
            event_id = %self.event_id,
            error_type = self.error_type,
            reason = %self.reason,
            "event refused"
        );
    }
}

/// The AWS-backed ports of the control functions (API and triggers), built once at cold start.
#[cfg(all(
    feature = "dynamodb",
    feature = "registry",
    feature = "access",
    feature = "sfn"
))]
pub struct ControlDeps {
    pub registry: std::sync::Arc<crate::adapters::registry::DynamoRegistry>,
    pub store: std::sync::Arc<crate::adapters::dynamodb::DynamoStore>,
    pub executions: std::sync::Arc<crate::adapters::sfn::StepFunctions>,
    pub access: std::sync::Arc<crate::adapters::access::AwsAccess>,
    /// The controller's own AWS config, for the adapters only some control functions build
    /// (the API's ECR images).
    pub aws: aws_config::SdkConfig,
    pub clock: std::sync::Arc<crate::ports::SystemClock>,
    pub state_machine_arn: String,
}

/// Cold start of a control function: fails fast without STATE_MACHINE_ARN, since starting,
/// stopping or recognising executions is what these functions are for.
#[cfg(all(
    feature = "dynamodb",
    feature = "registry",
    feature = "access",
    feature = "sfn"
))]
pub async fn control_deps() -> Result<ControlDeps, lambda_runtime::Error> {
    let (config, aws) = init().await?;
    let state_machine_arn = config.require_state_machine_arn()?;
    let dynamodb = aws_sdk_dynamodb::Client::new(&aws);
    Ok(ControlDeps {
        registry: std::sync::Arc::new(crate::adapters::registry::DynamoRegistry::new(
            dynamodb.clone(),
            config.table_name.clone(),
        )),
        store: std::sync::Arc::new(crate::adapters::dynamodb::DynamoStore::new(
            dynamodb,
            config.table_name,
        )),
        executions: std::sync::Arc::new(crate::adapters::sfn::StepFunctions::new(
            aws_sdk_sfn::Client::new(&aws),
            state_machine_arn.clone(),
        )),
        access: std::sync::Arc::new(crate::adapters::access::AwsAccess::new(aws.clone())),
        aws,
        clock: std::sync::Arc::new(crate::ports::SystemClock),
        state_machine_arn,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_malformed_event_is_one_refusal_naming_its_source_id_and_what_was_wrong() {
        let event = json!({"source": "aws.ecr", "id": "ev-1\u{1b}[31m", "detail": 7});
        let r = Refusal::of(
            &EventSource::of(&event),
            &PhaseError::InvalidInput("detail must be an object".into()),
        );
        assert_eq!(
            r,
            Some(Refusal {
                event_source: "aws.ecr".into(),
                event_id: "ev-1[31m".into(),
                error_type: "BlueGreen.InvalidInput",
                reason: "invalid input: detail must be an object".into(),
            })
        );
        // an alarm's Lambda action names the alarm; a payload with neither says so
        let alarm = json!({"source": "aws.cloudwatch", "alarmArn": "arn:aws:cloudwatch:us-east-1:123456789012:alarm:x"});
        assert_eq!(
            EventSource::of(&alarm).id,
            "arn:aws:cloudwatch:us-east-1:123456789012:alarm:x"
        );
        assert_eq!(
            EventSource::of(&json!([1, 2])),
            EventSource {
                source: "unknown".into(),
                id: "none".into()
            }
        );
        // a failure to act on a valid event is not a refusal
        assert_eq!(
            Refusal::of(
                &EventSource::of(&event),
                &PhaseError::Retryable("throttled".into())
            ),
            None
        );
    }
}

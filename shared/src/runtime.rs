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
pub async fn phase_deps() -> Result<crate::ports::PhaseDeps, lambda_runtime::Error> {
    let (config, aws) = init().await?;
    Ok(crate::ports::PhaseDeps {
        store: std::sync::Arc::new(crate::adapters::dynamodb::DynamoStore::new(
            aws_sdk_dynamodb::Client::new(&aws),
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
/// error mapping as [`serve`].
pub async fn serve_json<F, Fut, R>(handler: F) -> Result<(), lambda_runtime::Error>
where
    F: Fn(Value) -> Fut,
    Fut: Future<Output = Result<R, PhaseError>>,
    R: serde::Serialize,
{
    let handler = &handler;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        handler(event.payload).await.map_err(Diagnostic::from)
    }))
    .await
}

/// The AWS-backed ports of the control functions (API and triggers), built once at cold start.
pub struct ControlDeps {
    pub registry: std::sync::Arc<crate::adapters::registry::DynamoRegistry>,
    pub store: std::sync::Arc<crate::adapters::dynamodb::DynamoStore>,
    pub executions: std::sync::Arc<crate::adapters::sfn::StepFunctions>,
    pub access: std::sync::Arc<crate::adapters::access::AwsAccess>,
    /// The controller account's ECR (scan findings and push times for promotion gates).
    pub images: std::sync::Arc<crate::adapters::ecr::EcrImages>,
    pub clock: std::sync::Arc<crate::ports::SystemClock>,
    pub state_machine_arn: String,
}

/// Cold start of a control function: fails fast without STATE_MACHINE_ARN, since starting,
/// stopping or recognising executions is what these functions are for.
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
        images: std::sync::Arc::new(crate::adapters::ecr::EcrImages::new(
            aws_sdk_ecr::Client::new(&aws),
        )),
        access: std::sync::Arc::new(crate::adapters::access::AwsAccess::new(aws)),
        clock: std::sync::Arc::new(crate::ports::SystemClock),
        state_machine_arn,
    })
}

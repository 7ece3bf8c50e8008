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
    let aws = crate::adapters::load_aws_config().await;
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

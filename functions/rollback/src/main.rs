use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde_json::Value;
use shared::adapters::{dynamodb::DynamoStore, elbv2::AlbRouter};
use shared::ports::SystemClock;
use std::sync::Arc;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let config = shared::config::Config::from_env()?;
    let aws = shared::adapters::load_aws_config().await;
    let deps = rollback::Deps {
        store: Arc::new(DynamoStore::new(
            aws_sdk_dynamodb::Client::new(&aws),
            config.table_name,
        )),
        router: Arc::new(AlbRouter::new(aws_sdk_elasticloadbalancingv2::Client::new(
            &aws,
        ))),
        clock: Arc::new(SystemClock),
    };
    let deps = &deps;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        rollback::handle(deps, event.payload)
            .await
            .map_err(Diagnostic::from)
    }))
    .await
}

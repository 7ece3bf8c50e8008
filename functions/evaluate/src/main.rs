use shared::adapters::{cloudwatch::CloudWatchSignals, dynamodb::DynamoStore};
use shared::ports::SystemClock;
use std::sync::Arc;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let (config, aws) = shared::runtime::init().await?;
    let deps = evaluate::Deps {
        store: Arc::new(DynamoStore::new(
            aws_sdk_dynamodb::Client::new(&aws),
            config.table_name,
        )),
        signals: Arc::new(CloudWatchSignals::new(aws_sdk_cloudwatch::Client::new(
            &aws,
        ))),
        clock: Arc::new(SystemClock),
    };
    shared::runtime::serve(|input| evaluate::handle(&deps, input)).await
}

use shared::adapters::{dynamodb::DynamoStore, elbv2::AlbRouter};
use shared::ports::SystemClock;
use std::sync::Arc;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let (config, aws) = shared::runtime::init().await?;
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
    shared::runtime::serve(|input| rollback::handle(&deps, input)).await
}

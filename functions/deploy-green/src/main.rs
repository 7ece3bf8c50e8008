use shared::adapters::{
    cloudwatch::CloudWatchSignals, dynamodb::DynamoStore, ecs::EcsPlatform, elbv2::AlbRouter,
};
use shared::ports::SystemClock;
use std::sync::Arc;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let (config, aws) = shared::runtime::init().await?;
    let router = Arc::new(AlbRouter::new(aws_sdk_elasticloadbalancingv2::Client::new(
        &aws,
    )));
    let deps = deploy_green::Deps {
        store: Arc::new(DynamoStore::new(
            aws_sdk_dynamodb::Client::new(&aws),
            config.table_name,
        )),
        router: router.clone(),
        targets: router,
        compute: Arc::new(EcsPlatform::new(aws_sdk_ecs::Client::new(&aws))),
        signals: Arc::new(CloudWatchSignals::new(aws_sdk_cloudwatch::Client::new(
            &aws,
        ))),
        clock: Arc::new(SystemClock),
    };
    shared::runtime::serve(|input| deploy_green::handle(&deps, input)).await
}

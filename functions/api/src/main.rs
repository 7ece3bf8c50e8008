use api::{ApiDeps, handle};
use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let ci_roles = api::ci_roles(std::env::var(api::CI_ROLE_ARNS).ok().as_deref())?;
    let c = shared::runtime::control_deps().await?;
    let deps = ApiDeps {
        registry: c.registry,
        store: c.store,
        executions: c.executions,
        access: c.access,
        images: std::sync::Arc::new(shared::adapters::ecr::EcrImages::from_config(&c.aws)),
        clock: c.clock,
        ci_roles,
    };
    let deps = &deps;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<ApiGatewayV2httpRequest>| async move {
            // Bad input is a response, never an invocation error.
            Ok::<_, lambda_runtime::Error>(handle(deps, event.payload).await)
        },
    ))
    .await
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let c = shared::runtime::control_deps().await?;
    let deps = execution_status::Deps {
        state_machine_arn: c.state_machine_arn,
        store: c.store,
        access: c.access,
        clock: c.clock,
    };
    shared::runtime::serve_json(|input| execution_status::handle(&deps, input)).await
}

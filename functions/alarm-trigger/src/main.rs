#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let c = shared::runtime::control_deps().await?;
    let deps = alarm_trigger::Deps {
        registry: c.registry,
        store: c.store,
        executions: c.executions,
        access: c.access,
        clock: c.clock,
    };
    shared::runtime::serve_json(|input| alarm_trigger::handle(&deps, input)).await
}

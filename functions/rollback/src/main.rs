#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let deps = shared::runtime::phase_deps().await?;
    shared::runtime::serve(|input| rollback::handle(&deps, input)).await
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let deps = shared::runtime::phase_deps().await?;
    shared::runtime::serve_json(|input| request_approval::handle(&deps, input)).await
}

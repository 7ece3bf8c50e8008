#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let deps = shared::runtime::phase_deps().await?;
    shared::runtime::serve(|input| shift_traffic::handle(&deps, input)).await
}

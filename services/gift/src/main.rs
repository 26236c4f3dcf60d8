//! The gift service binary: configuration, telemetry, then the app.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let telemetry = platform::telemetry::init(gift::SPEC.name);
    let config = gift::GiftConfig::from_env()?;
    let app = gift::build(config).await?;
    let served = app.run_until_stopped(platform::shutdown_signal()).await;
    telemetry.shutdown().await;
    served?;
    Ok(())
}

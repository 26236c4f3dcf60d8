//! The reward service binary: configuration, telemetry, then the app.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let telemetry = platform::telemetry::init(reward::SPEC.name);
    let config = reward::config_from_env()?;
    let app = reward::build(config).await?;
    let served = app.run_until_stopped(platform::shutdown_signal()).await;
    telemetry.shutdown().await;
    served?;
    Ok(())
}

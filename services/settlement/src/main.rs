//! The settlement service binary: configuration, telemetry, then the app.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let telemetry = platform::telemetry::init(settlement::SPEC.name);
    let config = settlement::SettlementConfig::from_env()?;
    let app = settlement::build(config).await?;
    let served = app.run_until_stopped(platform::shutdown_signal()).await;
    telemetry.shutdown().await;
    served?;
    Ok(())
}

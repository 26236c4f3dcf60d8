//! The settlement service binary: configuration, telemetry, then the app.

use platform::config::ServiceConfig;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let telemetry = platform::telemetry::init(settlement::SPEC.name);
    let config = ServiceConfig::from_env(settlement::SPEC.name, settlement::DEFAULT_PORT)?;
    let app = settlement::build(config).await?;
    let served = app.run_until_stopped(platform::shutdown_signal()).await;
    telemetry.shutdown().await;
    served?;
    Ok(())
}

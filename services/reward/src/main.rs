//! The reward service binary: configuration, telemetry, then the app.

use platform::config::ServiceConfig;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let telemetry = platform::telemetry::init(reward::SPEC.name);
    let config = ServiceConfig::from_env(reward::SPEC.name, reward::DEFAULT_PORT)?;
    let app = reward::build(config).await?;
    let served = app.run_until_stopped(platform::shutdown_signal()).await;
    telemetry.shutdown().await;
    served?;
    Ok(())
}

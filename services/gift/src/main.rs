//! The gift service binary: configuration, telemetry, then the app.

use platform::config::ServiceConfig;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    platform::telemetry::init(gift::SPEC.name);
    let config = ServiceConfig::from_env(gift::SPEC.name, gift::DEFAULT_PORT)?;
    let app = gift::build(config).await?;
    app.run_until_stopped(platform::shutdown_signal()).await?;
    Ok(())
}

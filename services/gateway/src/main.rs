//! The gateway binary: configuration, telemetry, then the app.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    platform::telemetry::init("gateway");
    let config = gateway::GatewayConfig::from_env()?;
    let app = gateway::App::build(config).await?;
    app.run_until_stopped(platform::shutdown_signal()).await?;
    Ok(())
}

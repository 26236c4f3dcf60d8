//! The wallet service binary: configuration, telemetry, then the app.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let telemetry = platform::telemetry::init(wallet::SPEC.name);
    let config = wallet::WalletConfig::from_env()?;
    let app = wallet::build(config).await?;
    let served = app.run_until_stopped(platform::shutdown_signal()).await;
    telemetry.shutdown().await;
    served?;
    Ok(())
}

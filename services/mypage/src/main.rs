//! The my page service binary: configuration, telemetry, then the app.

use platform::config::ServiceConfig;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let telemetry = platform::telemetry::init(mypage::SPEC.name);
    let config = ServiceConfig::from_env(mypage::SPEC.name, mypage::DEFAULT_PORT)?;
    let app = mypage::build(config).await?;
    let served = app.run_until_stopped(platform::shutdown_signal()).await;
    telemetry.shutdown().await;
    served?;
    Ok(())
}

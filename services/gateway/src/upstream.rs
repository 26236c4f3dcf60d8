//! The services behind the gateway: which gRPC package goes where, and a
//! lazily connected channel to each.

use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

/// One routed service.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// The fully qualified gRPC service, e.g. `game.mission.v1.MissionService`.
    pub service: &'static str,
    /// Requests whose path starts with this (`/game.mission.v1.`) go here.
    pub path_prefix: String,
    /// Where the service listens.
    pub url: String,
    pub channel: Channel,
}

/// Why an upstream URL is unusable.
#[derive(Debug, thiserror::Error)]
#[error("upstream URL {url:?} for {service} is invalid")]
pub struct InvalidUpstream {
    service: &'static str,
    url: String,
    #[source]
    source: tonic::transport::Error,
}

impl Upstream {
    /// Routes the package of `service` to `url`. Connects lazily, so the
    /// gateway starts before (and survives) its upstreams.
    ///
    /// # Errors
    /// When `url` is not a valid URI.
    pub fn new(service: &'static str, url: &str) -> Result<Self, InvalidUpstream> {
        let invalid = |source| InvalidUpstream { service, url: url.to_owned(), source };
        let channel = Endpoint::from_shared(url.to_owned())
            .map_err(invalid)?
            .connect_timeout(Duration::from_secs(1))
            .http2_keep_alive_interval(Duration::from_secs(20))
            .keep_alive_timeout(Duration::from_secs(10))
            .keep_alive_while_idle(true)
            .tcp_nodelay(true)
            .connect_lazy();
        let package = service.rsplit_once('.').map_or(service, |(package, _)| package);
        Ok(Self { service, path_prefix: format!("/{package}."), url: url.to_owned(), channel })
    }
}

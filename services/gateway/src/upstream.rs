//! The services behind the gateway: which gRPC package goes where, and the
//! replicas serving it. Calls are balanced over the replicas that answer
//! their health check; a replica that stops answering is taken out of the
//! balance until it answers again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::join_all;
use tokio::sync::{Mutex, mpsc};
use tonic::transport::channel::Change;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::health_check_response::ServingStatus as WireStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

/// How long a replica may take to answer its health check before it counts
/// as not serving.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(1);

/// One routed service.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// The fully qualified gRPC service, e.g. `game.mission.v1.MissionService`.
    pub service: &'static str,
    /// Requests whose path starts with this (`/game.mission.v1.`) go here.
    pub path_prefix: String,
    /// The replicas and the balance over them, shared by the proxy and the
    /// health watcher.
    pub replicas: Arc<Replicas>,
}

/// Why an upstream URL is unusable.
#[derive(Debug, thiserror::Error)]
pub enum InvalidUpstream {
    #[error("upstream URL {url:?} for {service} is invalid")]
    Url {
        service: &'static str,
        url: String,
        #[source]
        source: tonic::transport::Error,
    },
    #[error("no upstream URL for {service}")]
    Empty { service: &'static str },
}

impl Upstream {
    /// Routes the package of `service` to `urls`, a comma-separated list of
    /// its replicas. Connects lazily, so the gateway starts before (and
    /// survives) its upstreams.
    ///
    /// # Errors
    /// When the list is empty or a URL is not a valid URI.
    pub fn new(service: &'static str, urls: &str) -> Result<Self, InvalidUpstream> {
        let replicas = Replicas::new(service, urls)?;
        let package = service.rsplit_once('.').map_or(service, |(package, _)| package);
        Ok(Self { service, path_prefix: format!("/{package}."), replicas: Arc::new(replicas) })
    }
}

/// One replica of a service.
#[derive(Debug)]
struct Replica {
    url: String,
    /// How the balance connects to it; re-inserted as is when it returns.
    endpoint: Endpoint,
    /// A channel of its own, so its health is asked of it and not of
    /// whichever replica the balance would pick.
    health: Channel,
}

/// What the last health round saw.
#[derive(Debug)]
struct Membership {
    /// Per replica, whether it answered SERVING.
    serving: Vec<bool>,
    /// Per replica, whether the balance holds it.
    balanced: Vec<bool>,
    /// When the last round started; a caller whose call failed before that
    /// reuses the round instead of asking again.
    last_round: Option<Instant>,
}

/// The replicas of one service and the balanced channel over them.
#[derive(Debug)]
pub struct Replicas {
    service: &'static str,
    replicas: Vec<Replica>,
    channel: Channel,
    changes: mpsc::Sender<Change<String, Endpoint>>,
    membership: Mutex<Membership>,
}

impl Replicas {
    fn new(service: &'static str, urls: &str) -> Result<Self, InvalidUpstream> {
        let urls: Vec<&str> = urls.split(',').map(str::trim).filter(|url| !url.is_empty()).collect();
        if urls.is_empty() {
            return Err(InvalidUpstream::Empty { service });
        }
        let mut replicas = Vec::with_capacity(urls.len());
        for url in urls {
            let invalid = |source| InvalidUpstream::Url { service, url: url.to_owned(), source };
            let endpoint = Endpoint::from_shared(url.to_owned())
                .map_err(invalid)?
                .connect_timeout(Duration::from_secs(1))
                .http2_keep_alive_interval(Duration::from_secs(20))
                .keep_alive_timeout(Duration::from_secs(10))
                .keep_alive_while_idle(true)
                .tcp_nodelay(true);
            let health = endpoint.connect_lazy();
            replicas.push(Replica { url: url.to_owned(), endpoint, health });
        }
        // The balance starts with every replica, as `Channel::balance_list`
        // would; the health rounds then keep only those that answer.
        let (channel, changes) = Channel::balance_channel(64);
        for replica in &replicas {
            let insert = Change::Insert(replica.url.clone(), replica.endpoint.clone());
            if changes.try_send(insert).is_err() {
                tracing::error!(service, url = %replica.url, "replica could not join the balance");
            }
        }
        let count = replicas.len();
        let membership = Membership { serving: vec![true; count], balanced: vec![true; count], last_round: None };
        Ok(Self { service, replicas, channel, changes, membership: Mutex::new(membership) })
    }

    /// The balanced channel over the replicas in the balance.
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// How many replicas the service has.
    pub fn len(&self) -> usize {
        self.replicas.len()
    }

    /// Whether the service has no replica (never: a list is never empty).
    pub fn is_empty(&self) -> bool {
        self.replicas.is_empty()
    }

    /// The replicas' URLs, in configuration order.
    pub fn urls(&self) -> Vec<String> {
        self.replicas.iter().map(|r| r.url.clone()).collect()
    }

    /// Asks every replica for its health, keeps only the serving ones in the
    /// balance (all of them when none serves, so that calls fail at once
    /// instead of waiting for a replica), and returns how many serve.
    ///
    /// A round that started after `failed_at` already knows of that failure:
    /// its result is returned without asking again, so that many calls
    /// failing together cost one round.
    pub async fn refresh(&self, failed_at: Instant) -> usize {
        let mut membership = self.membership.lock().await;
        if membership.last_round.is_some_and(|round| round >= failed_at) {
            return membership.serving.iter().filter(|s| **s).count();
        }
        membership.last_round = Some(Instant::now());
        let serving = join_all(self.replicas.iter().map(|replica| is_serving(self.service, replica))).await;
        let any = serving.iter().any(|s| *s);
        for (index, replica) in self.replicas.iter().enumerate() {
            if serving[index] != membership.serving[index] {
                if serving[index] {
                    tracing::info!(service = self.service, url = %replica.url, "replica serving again");
                } else {
                    tracing::warn!(service = self.service, url = %replica.url, "replica not serving");
                }
            }
            let wanted = serving[index] || !any;
            if wanted == membership.balanced[index] {
                continue;
            }
            let change = if wanted {
                Change::Insert(replica.url.clone(), replica.endpoint.clone())
            } else {
                Change::Remove(replica.url.clone())
            };
            // The balance reads changes before it picks a replica for the
            // next call, so a call made after this returns sees it.
            if self.changes.send(change).await.is_ok() {
                membership.balanced[index] = wanted;
            }
        }
        let count = serving.iter().filter(|s| **s).count();
        membership.serving = serving;
        count
    }
}

async fn is_serving(service: &'static str, replica: &Replica) -> bool {
    let mut client = HealthClient::new(replica.health.clone());
    let mut request = tonic::Request::new(HealthCheckRequest { service: service.to_owned() });
    request.set_timeout(HEALTH_TIMEOUT);
    let answer = tokio::time::timeout(HEALTH_TIMEOUT, client.check(request)).await;
    matches!(answer, Ok(Ok(response)) if response.get_ref().status() == WireStatus::Serving)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_comma_separated_list_names_every_replica() {
        let upstream =
            Upstream::new("game.mission.v1.MissionService", "http://127.0.0.1:1, http://127.0.0.1:2").unwrap();
        assert_eq!(upstream.replicas.urls(), ["http://127.0.0.1:1", "http://127.0.0.1:2"]);
    }

    #[tokio::test]
    async fn an_empty_list_is_refused() {
        let refused = Upstream::new("game.mission.v1.MissionService", " , ").unwrap_err();
        assert_eq!(refused.to_string(), "no upstream URL for game.mission.v1.MissionService");
    }

    #[tokio::test]
    async fn one_invalid_url_in_the_list_is_named() {
        let refused = Upstream::new("game.mission.v1.MissionService", "http://127.0.0.1:1,not a url").unwrap_err();
        assert!(refused.to_string().contains("\"not a url\""), "{refused}");
    }
}

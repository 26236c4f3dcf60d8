//! The services behind the gateway: which gRPC package goes where, and the
//! replicas serving it. Calls are balanced over the replicas judged healthy
//! from evidence ([`judge`]):
//!
//! - a replica that answers its check NOT_SERVING, or refuses connections,
//!   is taken out at once, and back in as soon as it answers SERVING;
//! - a check that only timed out is weak evidence — a busy gateway (its own
//!   CPU saturated by a flood) misses deadlines on healthy replicas — so a
//!   replica is taken out only after several in a row;
//! - replicas are never all taken out on timeouts alone: with nothing else
//!   in the balance, the gateway keeps sending to those it merely did not
//!   hear from, rather than failing every call itself.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::future::join_all;
use http::{Request, Response};
use tokio::sync::Mutex;
use tonic::body::Body;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::health_check_response::ServingStatus as WireStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use crate::link::{CONNECT_TIMEOUT, ForwardError, KEEP_ALIVE_INTERVAL, KEEP_ALIVE_TIMEOUT, Link, UnusableUrl};

/// How long a replica may take to answer its health check before the
/// check counts as timed out.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(1);

/// Checks in a row that must time out before a replica that answers
/// nothing is taken out.
pub const TIMEOUTS_BEFORE_OUT: u32 = 3;

/// What one health check of a replica saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// It answered SERVING.
    Serving,
    /// It answered, and not SERVING (or does not know the service).
    NotServing,
    /// Its connection was refused: nothing listens there.
    Unreachable,
    /// No answer within the check's deadline.
    TimedOut,
}

/// What the gateway believes of one replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Health {
    /// Whether calls go to it.
    pub serving: bool,
    /// Checks in a row that timed out.
    pub timeouts: u32,
}

impl Health {
    /// A replica not checked yet: trusted until the evidence says otherwise.
    pub const NEW: Self = Self { serving: true, timeouts: 0 };
}

/// The replicas' health after a round of `checks`, from what was believed
/// before (see the module documentation for the rules).
pub fn judge(before: &[Health], checks: &[Check]) -> Vec<Health> {
    let mut after: Vec<Health> = before
        .iter()
        .zip(checks)
        .map(|(before, check)| match check {
            Check::Serving => Health { serving: true, timeouts: 0 },
            Check::NotServing | Check::Unreachable => Health { serving: false, timeouts: 0 },
            Check::TimedOut => {
                let timeouts = before.timeouts.saturating_add(1);
                Health { serving: before.serving && timeouts < TIMEOUTS_BEFORE_OUT, timeouts }
            }
        })
        .collect();
    if !after.iter().any(|h| h.serving) {
        for (health, check) in after.iter_mut().zip(checks) {
            if *check == Check::TimedOut {
                health.serving = true;
            }
        }
    }
    after
}

/// One routed service.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// The fully qualified gRPC service, e.g. `game.mission.v1.MissionService`.
    pub service: &'static str,
    /// Requests whose path starts with this (`/game.mission.v1.`) go here.
    pub path_prefix: String,
    /// Further services the same processes serve (the mission service's
    /// `game.programme.v1.ProgrammeService`), with their path prefixes: routed
    /// to the same replicas, healthy when the service is.
    pub hosted: Vec<(&'static str, String)>,
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
    #[error("upstream URL {url:?} for {service} cannot be forwarded to")]
    Unusable {
        service: &'static str,
        url: String,
        #[source]
        source: UnusableUrl,
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
        Ok(Self { service, path_prefix: path_prefix(service), hosted: Vec::new(), replicas: Arc::new(replicas) })
    }

    /// Routes the package of `service`, which the same processes serve, here too.
    #[must_use]
    pub fn hosting(mut self, service: &'static str) -> Self {
        self.hosted.push((service, path_prefix(service)));
        self
    }

    /// Whether a call to `path` goes here.
    pub fn routes(&self, path: &str) -> bool {
        path.starts_with(&self.path_prefix) || self.hosted.iter().any(|(_, prefix)| path.starts_with(prefix))
    }

    /// The gRPC services routed here: its own, then the hosted ones.
    pub fn services(&self) -> impl Iterator<Item = &'static str> + '_ {
        std::iter::once(self.service).chain(self.hosted.iter().map(|(service, _)| *service))
    }
}

/// The path prefix of the package of `service`: `/game.mission.v1.`.
fn path_prefix(service: &str) -> String {
    let package = service.rsplit_once('.').map_or(service, |(package, _)| package);
    format!("/{package}.")
}

/// One replica of a service.
#[derive(Debug)]
struct Replica {
    url: String,
    /// The connection calls are forwarded over.
    link: Link,
    /// Whether the balance sends calls to it.
    balanced: AtomicBool,
    /// A channel of its own for its health checks, apart from the calls.
    health: Channel,
}

/// What the last health round saw.
#[derive(Debug)]
struct Membership {
    /// Per replica, what the gateway believes of it.
    health: Vec<Health>,
    /// When the last round started; a caller whose call failed before that
    /// reuses the round instead of asking again.
    last_round: Option<Instant>,
}

/// The replicas of one service and the balance over them.
#[derive(Debug)]
pub struct Replicas {
    service: &'static str,
    replicas: Vec<Replica>,
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
            let health = Endpoint::from_shared(url.to_owned())
                .map_err(invalid)?
                .connect_timeout(CONNECT_TIMEOUT)
                .http2_keep_alive_interval(KEEP_ALIVE_INTERVAL)
                .keep_alive_timeout(KEEP_ALIVE_TIMEOUT)
                .keep_alive_while_idle(true)
                .tcp_nodelay(true)
                .connect_lazy();
            let link =
                Link::new(url).map_err(|source| InvalidUpstream::Unusable { service, url: url.to_owned(), source })?;
            // Every replica starts in the balance; the health rounds then
            // keep only those that answer.
            replicas.push(Replica { url: url.to_owned(), link, balanced: AtomicBool::new(true), health });
        }
        let count = replicas.len();
        let membership = Membership { health: vec![Health::NEW; count], last_round: None };
        Ok(Self { service, replicas, membership: Mutex::new(membership) })
    }

    /// Forwards `request` to a replica in the balance: of two picked at
    /// random, the one with fewer calls waiting for an answer.
    ///
    /// # Errors
    /// See [`ForwardError`]; when it never reached the replica, the
    /// request body was not read unless the connection closed under it.
    pub async fn send(&self, request: Request<Body>) -> Result<Response<Body>, ForwardError> {
        self.pick().link.send(request).await
    }

    fn pick(&self) -> &Replica {
        // Never empty by the rounds' rule; were it so, every replica is a candidate.
        let everyone = !self.replicas.iter().any(|r| r.balanced.load(Ordering::Relaxed));
        let candidate = |r: &&Replica| everyone || r.balanced.load(Ordering::Relaxed);
        let count = self.replicas.iter().filter(candidate).count();
        let nth = |n: usize| self.replicas.iter().filter(candidate).nth(n).unwrap_or(&self.replicas[0]);
        if count < 2 {
            return nth(0);
        }
        let first = rand::random_range(0..count);
        let second = (first + rand::random_range(1..count)) % count;
        let (a, b) = (nth(first), nth(second));
        if b.link.in_flight() < a.link.in_flight() { b } else { a }
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

    /// Asks every replica for its health, judges each from the evidence
    /// ([`judge`]), keeps the serving ones in the balance (all of them when
    /// none serves, so that calls fail at once instead of waiting for a
    /// replica), and returns how many serve.
    ///
    /// A round that started after `failed_at` already knows of that failure:
    /// its result is returned without asking again, so that many calls
    /// failing together cost one round.
    pub async fn refresh(&self, failed_at: Instant) -> usize {
        let mut membership = self.membership.lock().await;
        if membership.last_round.is_some_and(|round| round >= failed_at) {
            return membership.health.iter().filter(|h| h.serving).count();
        }
        membership.last_round = Some(Instant::now());
        let checks = join_all(self.replicas.iter().map(|replica| check(self.service, replica))).await;
        let health = judge(&membership.health, &checks);
        let serving: Vec<bool> = health.iter().map(|h| h.serving).collect();
        let any = serving.iter().any(|s| *s);
        for (index, replica) in self.replicas.iter().enumerate() {
            if serving[index] != membership.health[index].serving {
                if serving[index] {
                    tracing::info!(service = self.service, url = %replica.url, "replica serving again");
                } else {
                    tracing::warn!(service = self.service, url = %replica.url, check = ?checks[index], "replica not serving");
                }
            }
            let wanted = serving[index] || !any;
            // A call picking a replica after this store sees it.
            let was = replica.balanced.swap(wanted, Ordering::Relaxed);
            if was && !wanted {
                replica.link.release();
            }
        }
        let count = serving.iter().filter(|s| **s).count();
        membership.health = health;
        count
    }
}

/// Asks `replica` for the health of `service`.
async fn check(service: &'static str, replica: &Replica) -> Check {
    let mut client = HealthClient::new(replica.health.clone());
    let mut request = tonic::Request::new(HealthCheckRequest { service: service.to_owned() });
    request.set_timeout(HEALTH_TIMEOUT);
    match tokio::time::timeout(HEALTH_TIMEOUT, client.check(request)).await {
        Ok(Ok(response)) if response.get_ref().status() == WireStatus::Serving => Check::Serving,
        Ok(Ok(_)) => Check::NotServing,
        Ok(Err(status)) if platform::grpc::never_reached(&status) => Check::Unreachable,
        Ok(Err(status)) if matches!(status.code(), tonic::Code::Unimplemented | tonic::Code::NotFound) => {
            Check::NotServing
        }
        // A deadline, a connection that broke mid-call, a connect that timed
        // out: nothing says the replica is down rather than slow to reach.
        Ok(Err(_)) | Err(_) => Check::TimedOut,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IN: Health = Health { serving: true, timeouts: 0 };

    fn rounds(checks: &[&[Check]]) -> Vec<Health> {
        let mut health = vec![Health::NEW; checks[0].len()];
        for round in checks {
            health = judge(&health, round);
        }
        health
    }

    #[test]
    fn a_replica_that_answers_not_serving_or_refuses_is_out_at_once_and_back_when_it_serves() {
        use Check::*;
        let after = rounds(&[&[Serving, NotServing, Unreachable]]);
        assert_eq!(after.iter().map(|h| h.serving).collect::<Vec<_>>(), [true, false, false]);
        let back = rounds(&[&[Serving, NotServing], &[Serving, Serving]]);
        assert_eq!(back, [IN, IN]);
    }

    #[test]
    fn a_replica_that_only_times_out_is_out_after_several_checks_in_a_row() {
        use Check::*;
        let twice = rounds(&[&[Serving, TimedOut], &[Serving, TimedOut]]);
        assert!(twice[1].serving, "two timeouts are not enough: the gateway may be the slow one");
        let thrice = rounds(&[&[Serving, TimedOut], &[Serving, TimedOut], &[Serving, TimedOut]]);
        assert!(!thrice[1].serving);
        let interrupted =
            rounds(&[&[Serving, TimedOut], &[Serving, TimedOut], &[Serving, Serving], &[Serving, TimedOut]]);
        assert!(interrupted[1].serving, "an answer starts the count again");
    }

    #[test]
    fn timeouts_alone_never_take_every_replica_out() {
        use Check::*;
        let saturated = rounds(&[&[TimedOut, TimedOut] as &[Check]; 5]);
        assert!(saturated.iter().all(|h| h.serving), "{saturated:?}");
        // A replica that said it is down stays out; the silent one stays in.
        let mixed = rounds(&[&[NotServing, TimedOut] as &[Check]; 5]);
        assert_eq!(mixed.iter().map(|h| h.serving).collect::<Vec<_>>(), [false, true]);
        // Definite answers can take all out: the service is down.
        let down = rounds(&[&[Unreachable, NotServing]]);
        assert!(down.iter().all(|h| !h.serving));
    }

    #[tokio::test]
    async fn calls_go_to_the_less_busy_of_the_replicas_in_the_balance() {
        let upstream =
            Upstream::new("game.mission.v1.MissionService", "http://127.0.0.1:1,http://127.0.0.1:2,http://127.0.0.1:3")
                .unwrap();
        let replicas = &upstream.replicas;
        let picked = |times: usize| {
            let mut seen = [0; 3];
            for _ in 0..times {
                let pick = replicas.pick();
                seen[replicas.replicas.iter().position(|r| std::ptr::eq(r, pick)).unwrap()] += 1;
            }
            seen
        };
        let spread = picked(300);
        assert!(spread.iter().all(|n| *n > 50), "idle replicas share the calls: {spread:?}");

        replicas.replicas[2].balanced.store(false, Ordering::Relaxed);
        assert_eq!(picked(100)[2], 0, "a replica out of the balance gets no call");

        // Of two in the balance, both are always the candidates: the idle one wins.
        replicas.replicas[0].link.add_in_flight(5);
        assert_eq!(picked(100), [0, 100, 0]);

        // With none in the balance (never by the rounds' rule), any replica serves.
        for replica in &replicas.replicas {
            replica.balanced.store(false, Ordering::Relaxed);
        }
        assert!(picked(300)[2] > 0, "every replica is a candidate again");
    }

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

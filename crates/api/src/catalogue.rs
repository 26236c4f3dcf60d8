//! The catalogue of the system's services: what each is called, where it
//! listens by default, the gRPC service it serves (which is also the health
//! entry that turns SERVING when it can do its job), the variable that tells
//! its callers where it is, the stream it publishes to, and the durable
//! consumers its reactions run on.
//!
//! The one place these facts are written: the services, the gateway, the
//! local runner, the system tests and the chaos checks read them from here
//! (a service refuses to start a consumer it does not list here), and
//! `scripts/check_chart.py` checks the Helm chart against
//! `contracts/catalogue.json`, which `tests/catalogue.rs` keeps equal to
//! this module.

use crate::game;

/// One service behind the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Service {
    /// The short name: the binary, the Kubernetes workload, the logs' `service`.
    pub name: &'static str,
    /// The gRPC port it listens on by default (`GRPC_ADDR` overrides it);
    /// the local runner's well-known layout starts from it.
    pub port: u16,
    /// The fully qualified gRPC service it serves, which the gateway routes
    /// to it by package, and also its health entry.
    pub grpc_service: &'static str,
    /// The variable that tells its callers (the gateway; the wallet for
    /// gift) where it is: one URL, or several separated by commas.
    pub url_variable: &'static str,
    /// The stream it publishes its events to, if it publishes any.
    pub publishes: Option<&'static str>,
    /// Further gRPC services its processes serve (the operators' programme
    /// on mission, catalogue on gift): routed to its replicas, healthy with it.
    pub also_serves: &'static [&'static str],
    /// The durable consumers its reactions run on, each on another
    /// context's stream; the only ones it may start.
    pub consumes: &'static [Consumer],
}

/// A durable JetStream consumer a service's reaction (policy) runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Consumer {
    /// Its durable name, `<service>-<policy>`: shared by the service's replicas.
    pub name: &'static str,
    /// The stream it reads.
    pub stream: &'static str,
}

const fn consumer(name: &'static str, stream: &'static str) -> Consumer {
    Consumer { name, stream }
}

impl Service {
    /// The health entry that turns SERVING when the service can do its job.
    pub const fn health(&self) -> &'static str {
        self.grpc_service
    }

    /// Its URL on this machine at its default port.
    pub fn local_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// The edge gateway, in front of every service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gateway {
    /// The short name, as for a [`Service`].
    pub name: &'static str,
    /// The one port players and tools use by default (`GATEWAY_ADDR`).
    pub port: u16,
    /// Its health entry: the overall one (`""`), which turns NOT_SERVING
    /// when the gateway drains; the per-service entries it also serves
    /// follow the replicas behind it.
    pub health: &'static str,
}

pub const MISSION: Service = Service {
    name: "mission",
    port: 50051,
    grpc_service: game::mission::v1::mission_service_server::SERVICE_NAME,
    url_variable: "MISSION_URL",
    publishes: Some("MISSION"),
    also_serves: &[game::programme::v1::programme_service_server::SERVICE_NAME],
    consumes: &[consumer("mission-record-reward", "REWARD")],
};

pub const REWARD: Service = Service {
    name: "reward",
    port: 50052,
    grpc_service: game::reward::v1::reward_service_server::SERVICE_NAME,
    url_variable: "REWARD_URL",
    publishes: Some("REWARD"),
    also_serves: &[],
    consumes: &[
        consumer("reward-allocate", "MISSION"),
        consumer("reward-track-wallet", "WALLET"),
        consumer("reward-track-expiry", "WALLET"),
    ],
};

pub const WALLET: Service = Service {
    name: "wallet",
    port: 50053,
    grpc_service: game::wallet::v1::wallet_service_server::SERVICE_NAME,
    url_variable: "WALLET_URL",
    publishes: Some("WALLET"),
    also_serves: &[],
    consumes: &[
        consumer("wallet-issue-reward", "REWARD"),
        consumer("wallet-keep-product-price", "GIFT"),
        consumer("wallet-refund-points", "GIFT"),
    ],
};

pub const GIFT: Service = Service {
    name: "gift",
    port: 50054,
    grpc_service: game::gift::v1::gift_service_server::SERVICE_NAME,
    url_variable: "GIFT_URL",
    publishes: Some("GIFT"),
    also_serves: &[game::gift::admin::v1::catalogue_service_server::SERVICE_NAME],
    consumes: &[consumer("gift-keep-programme-event", "MISSION")],
};

pub const MYPAGE: Service = Service {
    name: "mypage",
    port: 50055,
    grpc_service: game::mypage::v1::my_page_service_server::SERVICE_NAME,
    url_variable: "MYPAGE_URL",
    publishes: None,
    also_serves: &[],
    consumes: &[
        consumer("mypage-missions", "MISSION"),
        consumer("mypage-rewards", "REWARD"),
        consumer("mypage-wallet", "WALLET"),
        consumer("mypage-exchanges", "WALLET"),
    ],
};

pub const SETTLEMENT: Service = Service {
    name: "settlement",
    port: 50056,
    grpc_service: game::settlement::v1::settlement_service_server::SERVICE_NAME,
    url_variable: "SETTLEMENT_URL",
    publishes: Some("SETTLEMENT"),
    also_serves: &[],
    consumes: &[consumer("settlement-record", "GIFT"), consumer("settlement-reverse", "GIFT")],
};

/// Every service behind the gateway, in the order the event flow meets them.
pub const SERVICES: [Service; 6] = [MISSION, REWARD, WALLET, GIFT, MYPAGE, SETTLEMENT];

/// How many gRPC services the gateway routes: each service's own and those
/// it also serves.
pub const GRPC_SERVICES: usize = {
    let (mut i, mut n) = (0, 0);
    while i < SERVICES.len() {
        n += 1 + SERVICES[i].also_serves.len();
        i += 1;
    }
    n
};

pub const GATEWAY: Gateway = Gateway { name: "gateway", port: 8080, health: "" };

impl Gateway {
    /// Its URL on this machine at its default port: where tools call by default.
    pub fn local_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// The service called `name`.
pub fn service(name: &str) -> Option<&'static Service> {
    SERVICES.iter().find(|s| s.name == name)
}

/// Every durable consumer of the system, service by service.
pub fn consumers() -> impl Iterator<Item = &'static Consumer> {
    SERVICES.iter().flat_map(|s| s.consumes)
}

/// The catalogue as JSON, for tools outside Rust (the chart's check).
pub fn to_json() -> String {
    let quote = |text: &str| format!("\"{text}\"");
    let services: Vec<String> = SERVICES
        .iter()
        .map(|s| {
            format!(
                "    {{\"name\": {}, \"port\": {}, \"grpc_service\": {}, \"health\": {}, \"url_variable\": {}, \"publishes\": {}, \"also_serves\": [{}], \"consumes\": [{}]}}",
                quote(s.name),
                s.port,
                quote(s.grpc_service),
                quote(s.health()),
                quote(s.url_variable),
                s.publishes.map_or_else(|| "null".to_owned(), quote),
                s.also_serves.iter().map(|name| quote(name)).collect::<Vec<_>>().join(", "),
                s.consumes
                    .iter()
                    .map(|c| format!("{{\"name\": {}, \"stream\": {}}}", quote(c.name), quote(c.stream)))
                    .collect::<Vec<_>>()
                    .join(", "),
            )
        })
        .collect();
    format!(
        "{{\n  \"gateway\": {{\"name\": {}, \"port\": {}, \"health\": {}}},\n  \"services\": [\n{}\n  ]\n}}\n",
        quote(GATEWAY.name),
        GATEWAY.port,
        quote(GATEWAY.health),
        services.join(",\n"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_service_has_its_own_name_port_and_variable() {
        let mut names: Vec<_> = SERVICES.iter().map(|s| s.name).chain([GATEWAY.name]).collect();
        let mut ports: Vec<_> = SERVICES.iter().map(|s| s.port).chain([GATEWAY.port]).collect();
        names.sort_unstable();
        names.dedup();
        ports.sort_unstable();
        ports.dedup();
        assert_eq!((names.len(), ports.len()), (7, 7));
        for s in SERVICES {
            // The chart derives the variable from the name the same way.
            assert_eq!(s.url_variable, format!("{}_URL", s.name.to_uppercase()));
            assert!(s.grpc_service.starts_with(&format!("game.{}.v1.", s.name)), "{}", s.grpc_service);
        }
    }

    #[test]
    fn every_consumer_is_its_services_own_on_another_contexts_stream() {
        let mut names: Vec<_> = consumers().map(|c| c.name).collect();
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count, "durable names are unique across the system");
        let streams: Vec<_> = SERVICES.iter().filter_map(|s| s.publishes).collect();
        for s in SERVICES {
            for c in s.consumes {
                assert!(c.name.starts_with(&format!("{}-", s.name)), "{} of {}", c.name, s.name);
                assert!(streams.contains(&c.stream), "{} reads {}, which no service publishes", c.name, c.stream);
                assert_ne!(s.publishes, Some(c.stream), "{} reads its own stream", c.name);
            }
        }
    }

    #[test]
    fn services_are_found_by_name() {
        assert_eq!(service("gift"), Some(&GIFT));
        assert_eq!(service("gateway"), None);
        assert_eq!(GIFT.local_url(), "http://127.0.0.1:50054");
    }
}

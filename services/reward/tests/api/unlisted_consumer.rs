//! A service starts only the durable consumers its catalogue entry lists
//! (`api::catalogue`), which the chaos checks and the chart read too.

use platform::consumer::{Policy, PolicyError, ReceivedEvent};
use platform::db::DbConnection;
use platform::events::{StreamDef, WALLET_STREAM};
use platform::host::ServiceHost;
use testkit::{Broker, TempStore, service_config};

/// A reaction the catalogue does not know.
struct Unlisted {
    name: &'static str,
}

impl Policy for Unlisted {
    fn name(&self) -> &'static str {
        self.name
    }

    fn stream(&self) -> StreamDef {
        WALLET_STREAM
    }

    fn subjects(&self) -> Vec<String> {
        vec!["wallet.reward_issued".to_owned()]
    }

    fn apply(&self, _conn: &mut DbConnection, _event: &ReceivedEvent) -> Result<(), PolicyError> {
        Ok(())
    }
}

#[tokio::test]
async fn a_consumer_the_catalogue_does_not_list_for_the_service_is_refused_and_never_declared() {
    let broker = Broker::start().await;
    let store = TempStore::new();
    let config = service_config(&broker, store.sqlite_url("reward"));
    let mut host = ServiceHost::start(reward::SPEC, &config).await.unwrap();

    let unknown = host.spawn_policy(Unlisted { name: "reward-audit" }).await.unwrap_err();
    // A listed name on a stream the catalogue does not say is refused too.
    let elsewhere = host.spawn_policy(Unlisted { name: "reward-allocate" }).await.unwrap_err();

    assert_eq!(
        unknown.to_string(),
        "reward may not start consumer reward-audit on stream WALLET: the catalogue (crates/api/src/catalogue.rs) \
         lists reward-allocate (MISSION), reward-track-wallet (WALLET), reward-track-expiry (WALLET) as its consumers"
    );
    assert!(elsewhere.to_string().starts_with("reward may not start consumer reward-allocate on stream WALLET"));
    let declared = match broker.js.get_stream(WALLET_STREAM.name).await {
        Ok(stream) => stream.consumer_info("reward-audit").await.is_ok(),
        Err(_) => false,
    };
    assert!(!declared, "a refused consumer is never declared");
}

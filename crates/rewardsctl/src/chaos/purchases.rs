//! Purchases: players who spend their balance on a product no single reward
//! pays for, so that every purchase reserves points across several entries
//! (the finale's expiring entry first, where the player has one) while
//! processes die, the vendor cancels some orders and the finale expires.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use api::game::gift::admin::v1 as catalogue;
use api::game::wallet::v1 as wallet;
use tokio::task::JoinSet;
use tonic::Code;

use crate::clients::{Clients, pause, worth_retrying};

/// The product the run lists for its purchases, in `LAUNCH` (always open).
pub const PRODUCT: &str = "CHAOS-CROWN";
/// Dearer than any one reward of the catalogue (2,000 at most), within the
/// 3,700 points a player earns by achieving the whole catalogue.
pub const PRICE: i64 = 2500;
/// Every purchase uses this key, once per player: a retry is the same purchase.
pub const KEY: &str = "chaos-purchase";
/// How long a purchase waits for the player's balance and retries.
const PATIENCE: Duration = Duration::from_secs(300);

/// Who purchases: up to `count` players with no planned reward exchange, so
/// that a purchase never races with an exchange of the same player's entry,
/// taken from the end of the list (the finale's players are the first).
pub fn purchasers(players: usize, exchanged: &BTreeSet<usize>, count: usize) -> Vec<usize> {
    (0..players).rev().filter(|p| !exchanged.contains(p)).take(count).collect()
}

/// What the wallet answered a purchase with, by player.
#[derive(Debug, Default)]
pub struct Purchases {
    pub confirmed: BTreeMap<String, wallet::Exchange>,
    pub failures: Vec<String>,
}

/// Lists [`PRODUCT`] with stock for every purchase, twice over (a cancelled
/// order's unit comes back, but a refused purchase must never be for want
/// of stock), as an operator through the gateway.
///
/// # Errors
/// When the catalogue refuses or stays unreachable.
pub async fn list_product(clients: &Clients, purchases: usize) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let request = catalogue::ListProductRequest {
        sku: PRODUCT.to_owned(),
        name: "Chaos crown (paid from several rewards)".to_owned(),
        price_points: PRICE,
        stock: i64::try_from(purchases.max(1) * 2).unwrap_or(i64::MAX),
        vendor_cost: 1000,
        currency: "EUR".to_owned(),
        programme_event_id: "LAUNCH".to_owned(),
    };
    clients
        .patiently(deadline, || {
            let (mut catalogue, request) = (clients.catalogue.clone(), clients.as_operator(request.clone()));
            async move { catalogue.list_product(request).await }
        })
        .await
        .map(drop)
        .map_err(|s| anyhow::anyhow!("ListProduct({PRODUCT}) failed: {:?} {}", s.code(), s.message()))
}

/// Each of `players` purchases [`PRODUCT`] once their balance covers it.
pub async fn drive(clients: &Clients, players: Vec<String>) -> Purchases {
    let mut tasks = JoinSet::new();
    for player in players {
        let clients = clients.clone();
        tasks.spawn(async move {
            let answer = purchase(&clients, &player).await;
            (player, answer)
        });
    }
    let mut purchases = Purchases::default();
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok((player, Ok(exchange))) => drop(purchases.confirmed.insert(player, exchange)),
            Ok((_, Err(failure))) => purchases.failures.push(failure),
            Err(panic) => purchases.failures.push(format!("a purchase task failed: {panic}")),
        }
    }
    purchases
}

async fn purchase(clients: &Clients, player: &str) -> Result<wallet::Exchange, String> {
    let deadline = Instant::now() + PATIENCE;
    wait_for_balance(clients, player, deadline).await?;
    let request = wallet::ExchangeRequest {
        customer_id: player.to_owned(),
        product_sku: PRODUCT.to_owned(),
        idempotency_key: KEY.into(),
    };
    let mut attempt = 0u32;
    loop {
        attempt = attempt.saturating_add(1);
        let failed = match clients.wallets.clone().exchange(clients.as_player(player, request.clone())).await {
            Ok(answer) => {
                return answer.into_inner().exchange.ok_or_else(|| format!("Exchange({player}) answered no exchange"));
            }
            Err(status) => status,
        };
        // The wallet learns the product from gift's events: until then it
        // does not know it.
        let not_learnt_yet = failed.code() == Code::NotFound;
        if (worth_retrying(&failed) || not_learnt_yet) && Instant::now() < deadline {
            clients.retrying(&failed);
            tokio::time::sleep(pause(attempt)).await;
            continue;
        }
        return Err(format!("Exchange({player}, {PRODUCT}) failed: {:?} {}", failed.code(), failed.message()));
    }
}

/// Waits until the player's balance covers [`PRICE`]: every mission of the
/// catalogue rewarded.
async fn wait_for_balance(clients: &Clients, player: &str, deadline: Instant) -> Result<(), String> {
    let mut attempt = 0u32;
    while Instant::now() < deadline {
        attempt = attempt.saturating_add(1);
        let request = wallet::GetWalletRequest { customer_id: player.to_owned() };
        match clients.wallets.clone().get_wallet(clients.as_player(player, request)).await {
            Ok(answer) if answer.get_ref().wallet.as_ref().is_some_and(|w| w.balance >= PRICE) => return Ok(()),
            Ok(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            Err(status) => {
                clients.retrying(&status);
                tokio::time::sleep(pause(attempt)).await;
            }
        }
    }
    Err(format!("{player}'s balance never reached {PRICE} points"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purchasers_are_players_without_a_planned_exchange_from_the_end() {
        let exchanged: BTreeSet<usize> = [0, 2, 5, 7].into();
        assert_eq!(purchasers(8, &exchanged, 3), [6, 4, 3]);
        assert_eq!(purchasers(3, &[0, 1, 2].into(), 5), Vec::<usize>::new());
    }

    #[test]
    fn the_product_needs_more_than_one_reward_and_less_than_a_whole_catalogue() {
        let catalogue = [100, 300, 500, 800, 2000];
        assert!(PRICE > catalogue.into_iter().max().unwrap());
        assert!(PRICE <= catalogue.into_iter().sum());
    }
}

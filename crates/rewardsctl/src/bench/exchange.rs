//! The exchange benchmark: ExchangeReward through the gateway at a fixed
//! rate (open loop), first with gift healthy (every call reserves the
//! entry, places a gift order and settles it), then with gift failing every
//! call, which opens the wallet's circuit breaker: the figure is then the
//! fallback's latency, "try again later" with the reward untouched.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use api::game::gift::admin::v1::{self as admin, vendor_simulation_service_client::VendorSimulationServiceClient};
use api::game::gift::v1::{ListProductsRequest, Product, gift_service_client::GiftServiceClient};
use api::game::wallet::v1::{ExchangeRewardRequest, wallet_service_client::WalletServiceClient};
use loadgen::grpc::{Target, outcome, outcome_expecting};
use loadgen::run::{OpenLoop, Report, open_loop};
use serde::Serialize;
use tonic::Code;
use tonic::metadata::AsciiMetadataValue;

use super::system::{Entry, System, wait_until_quiet};
use crate::mesh::{scrape, sum_metric};
use crate::resources::{self, LOAD_GENERATOR};

/// Entries cycled through while the breaker is open: each refused call
/// returns its entry to AVAILABLE long before the entry's next turn.
pub const BREAKER_POOL: usize = 1_000;

/// How the exchange is driven.
#[derive(Debug, Clone)]
pub struct Options {
    pub rate: f64,
    pub duration: Duration,
}

impl Options {
    /// Wallet entries the benchmark consumes: one per healthy exchange, and
    /// the pool for the breaker-open run.
    pub fn entries_needed(&self) -> u64 {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // a positive rate × seconds
        let healthy = (self.rate * self.duration.as_secs_f64()).ceil() as u64;
        healthy + BREAKER_POOL as u64
    }
}

/// The environment of the system the benchmark runs on: gift serves its
/// vendor simulation, which the breaker-open run makes fail every call.
pub fn system_env() -> Vec<(String, String, String)> {
    vec![("gift".into(), "GIFT_VENDOR_SIMULATION".into(), "true".into())]
}

/// What the benchmark measured.
#[derive(Debug, Clone, Serialize)]
pub struct Exchange {
    /// Gift healthy: the whole saga per call.
    pub healthy: Report,
    /// CPU milliseconds each kind of process spent per healthy call started,
    /// from the first call until every consumer was idle again (the
    /// settlement and my page's projections of the exchanges included).
    pub healthy_cpu_ms_per_call: BTreeMap<String, f64>,
    /// The breaker open: the fallback per call.
    pub breaker_open: Report,
    /// Calls it took to open the breaker once gift failed every call.
    pub calls_to_open: u32,
    /// The product exchanged, picked from gift's ListProducts.
    pub product_sku: String,
}

/// Runs both phases over `entries` (at least [`Options::entries_needed`]).
///
/// # Errors
/// When there are too few entries, the vendor cannot be set, or the breaker does not open.
pub async fn run(system: &System, entries: &[Entry], options: &Options) -> anyhow::Result<Exchange> {
    let needed = usize::try_from(options.entries_needed()).unwrap_or(usize::MAX);
    if entries.len() < needed {
        bail!("the exchange benchmark needs {needed} wallet entries, {} were seeded", entries.len());
    }
    // Each exchange is its player's: signed here, outside the timed runs.
    let entries = entries
        .iter()
        .map(|entry| Ok((entry.clone(), system.bearer(&entry.customer_id)?)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let (healthy_entries, pool) = entries.split_at(needed - BREAKER_POOL);
    let target = Target::connect(&system.gateway(), 2, &[]).await?;
    let least_points = entries.iter().map(|(entry, _)| entry.points).min().unwrap_or(0);
    let mut list = target.request(ListProductsRequest {});
    list.metadata_mut().insert("authorization", entries[0].1.clone());
    let products = GiftServiceClient::new(target.channel(0)).list_products(list).await?.into_inner().products;
    let Some(product) = pick_product(&products, least_points) else {
        bail!("gift lists no product in stock for {least_points} points: {products:?}");
    };
    println!(
        "  product: {} ({} points, the cheapest in stock of {})",
        product.sku,
        product.price_points,
        products.len()
    );
    let product = Arc::new(product.sku.clone());
    let config = OpenLoop {
        rate: options.rate,
        duration: options.duration,
        max_in_flight: 1_024,
        timeout: Duration::from_secs(10),
    };

    println!("  exchange, gift healthy: {:.0} calls/s for {}s", options.rate, options.duration.as_secs());
    let before = resources::snapshot(&system.mesh);
    let healthy = drive(&target, &config, &product, healthy_entries.to_vec(), None).await;
    print_line("healthy", &healthy);
    wait_until_quiet(system, Duration::from_secs(120)).await?;
    let spent = resources::spent(&before, &resources::snapshot(&system.mesh));
    let healthy_cpu_ms_per_call = cpu_ms_per_call(&spent, healthy.sent);
    println!("    CPU-ms per call started: {}", cpu_line(&healthy_cpu_ms_per_call));

    set_vendor(system, admin::VendorBehaviour { failure_percent: 100, ..Default::default() }).await?;
    let calls_to_open = open_breaker(system, &target, &product, pool).await?;
    println!("  exchange, breaker open (after {calls_to_open} failing calls): {:.0} calls/s", options.rate);
    let breaker_open = drive(&target, &config, &product, pool.to_vec(), Some(Code::Unavailable)).await;
    print_line("breaker open", &breaker_open);
    set_vendor(system, admin::VendorBehaviour::default()).await?;
    Ok(Exchange { healthy, healthy_cpu_ms_per_call, breaker_open, calls_to_open, product_sku: product.to_string() })
}

/// CPU milliseconds per call by kind of process (replicas summed), the
/// load generator left out.
fn cpu_ms_per_call(spent: &BTreeMap<String, resources::Usage>, calls: u64) -> BTreeMap<String, f64> {
    let services = spent.iter().filter(|(name, _)| name.as_str() != LOAD_GENERATOR);
    resources::per_kind(services, calls, |usage| 1_000.0 * usage.cpu_s)
}

/// "total 1.23 (gateway 0.10, …)", the busiest first.
fn cpu_line(by_kind: &BTreeMap<String, f64>) -> String {
    let mut kinds: Vec<_> = by_kind.iter().filter(|(_, ms)| **ms >= 0.005).collect();
    kinds.sort_by(|a, b| b.1.total_cmp(a.1));
    let each: Vec<String> = kinds.iter().map(|(kind, ms)| format!("{kind} {ms:.2}")).collect();
    format!("total {:.2} ({})", by_kind.values().sum::<f64>(), each.join(", "))
}

/// The product the benchmark exchanges: the cheapest in stock that every
/// entry can afford (ties by SKU, so runs pick the same one).
fn pick_product(products: &[Product], least_points: i64) -> Option<&Product> {
    products
        .iter()
        .filter(|p| p.stock > 0 && p.price_points <= least_points)
        .min_by(|a, b| a.price_points.cmp(&b.price_points).then_with(|| a.sku.cmp(&b.sku)))
}

fn print_line(what: &str, report: &Report) {
    let l = &report.latency;
    println!(
        "    {what}: {} of {} answered at {:.0}/s; ms p50 {:.2} p90 {:.2} p99 {:.2} max {:.1}{}",
        report.ok,
        report.sent,
        report.achieved_rate,
        l.p50_ms,
        l.p90_ms,
        l.p99_ms,
        l.max_ms,
        if report.failed.is_empty() { String::new() } else { format!("; failed {:?}", report.failed) }
    );
}

/// Exchanges `entries[i % len]` in call `i`; with `expected`, that failure
/// is the answer sought.
async fn drive(
    target: &Target,
    config: &OpenLoop,
    product: &Arc<String>,
    entries: Vec<Signed>,
    expected: Option<Code>,
) -> Report {
    let entries = Arc::new(entries);
    let (target, product) = (target.clone(), Arc::clone(product));
    open_loop(config, move |i, _| {
        let (target, entries, product) = (target.clone(), Arc::clone(&entries), Arc::clone(&product));
        async move {
            let signed = &entries[usize::try_from(i).unwrap_or_default() % entries.len()];
            let answer =
                WalletServiceClient::new(target.channel(i)).exchange_reward(request(&target, &product, signed)).await;
            match expected {
                Some(code) => outcome_expecting(answer, code),
                None => outcome(answer),
            }
        }
    })
    .await
}

/// A seeded entry and its player's `authorization` value.
type Signed = (Entry, AsciiMetadataValue);

/// The exchange of `entry`, as its player's call.
fn request(target: &Target, product: &str, (entry, bearer): &Signed) -> tonic::Request<ExchangeRewardRequest> {
    let mut request = target.request(ExchangeRewardRequest {
        customer_id: entry.customer_id.clone(),
        entry_id: entry.entry_id.clone(),
        product_sku: product.to_owned(),
    });
    request.metadata_mut().insert("authorization", bearer.clone());
    request
}

/// Sets gift's simulated behaviour, as the operator the simulation answers alone.
async fn set_vendor(system: &System, behaviour: admin::VendorBehaviour) -> anyhow::Result<()> {
    let mut client = VendorSimulationServiceClient::connect(system.service("gift")).await?;
    let request = admin::SetVendorBehaviourRequest { behaviour: Some(behaviour) };
    client.set_vendor_behaviour(dev_issuer::authorized(request, &system.mesh.identity().operator())).await?;
    Ok(())
}

/// Exchanges one entry after another until the wallet reports its breaker
/// open (gauge 2); returns how many calls that took.
async fn open_breaker(system: &System, target: &Target, product: &str, pool: &[Signed]) -> anyhow::Result<u32> {
    let wallet = system.mesh.layout().members_of("wallet").next().cloned();
    let deadline = Instant::now() + Duration::from_secs(30);
    for (calls, entry) in (0u32..).zip(pool.iter().cycle()) {
        if let Some(wallet) = &wallet
            && let Some(metrics) = scrape(wallet).await
            && sum_metric(&metrics, "rewards_circuit_breaker_state", &["dependency=\"gift\""]) >= 2.0
        {
            return Ok(calls);
        }
        if Instant::now() > deadline {
            bail!("the wallet's breaker did not open after {calls} failing exchanges");
        }
        let _ = WalletServiceClient::new(target.channel(u64::from(calls)))
            .exchange_reward(request(target, product, entry))
            .await;
    }
    bail!("no entries to open the breaker with")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product(sku: &str, price_points: i64, stock: i64) -> Product {
        Product { sku: sku.into(), name: sku.into(), price_points, stock }
    }

    #[test]
    fn cpu_per_call_sums_replicas_by_kind_and_leaves_the_load_generator_out() {
        let used = |cpu_s| resources::Usage { cpu_s, ..Default::default() };
        let spent = BTreeMap::from([
            ("wallet-1".to_owned(), used(1.0)),
            ("wallet-2".to_owned(), used(0.5)),
            ("gift".to_owned(), used(0.25)),
            (LOAD_GENERATOR.to_owned(), used(9.0)),
        ]);
        let by_kind = cpu_ms_per_call(&spent, 500);
        assert_eq!(by_kind, BTreeMap::from([("gift".to_owned(), 0.5), ("wallet".to_owned(), 3.0)]));
        assert_eq!(cpu_line(&by_kind), "total 3.50 (wallet 3.00, gift 0.50)");
        assert!(cpu_ms_per_call(&spent, 0).is_empty());
    }

    #[test]
    fn the_cheapest_product_in_stock_that_every_entry_affords() {
        let products =
            [product("POSTER", 300, 5), product("STICKER", 100, 0), product("BADGE", 100, 9), product("PIN", 90, 9)];
        assert_eq!(pick_product(&products, 100).map(|p| p.sku.as_str()), Some("PIN"));
        assert_eq!(pick_product(&products[..3], 100).map(|p| p.sku.as_str()), Some("BADGE"));
        assert_eq!(pick_product(&products, 50), None);
    }
}

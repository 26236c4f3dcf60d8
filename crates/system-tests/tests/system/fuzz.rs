//! A property over request validation, through the gateway: random calls to
//! every player RPC, with field values of every kind (valid, empty, too
//! long, not UTF-8-clean, injections, another player's, oversized messages),
//! signed as the owner, another player, an operator or no one. Every answer
//! is OK or a precise refusal (never INTERNAL or UNKNOWN, which is what a
//! panic becomes), nothing refused changes anything, and every service still
//! serves at the end.
//!
//! The run is seeded: `FUZZ_SEED=<n>` replays a failing run (the seed is printed).

use api::game::gift::v1 as gift;
use api::game::mission::v1 as mission;
use api::game::mypage::v1 as mypage;
use api::game::reward::v1 as reward;
use api::game::settlement::v1 as settlement;
use api::game::wallet::v1 as wallet;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom as _;
use rand::{Rng as _, SeedableRng as _};
use system_tests::{Mesh, MeshOptions};
use testkit::{AsCaller as _, authorized, identity};
use tonic::Code;

use crate::clients::{Clients, SETTLE, player};

/// Calls per run.
const CALLS: usize = 150;

/// What one player owns, as an operator reads it.
#[derive(Debug, PartialEq)]
struct Holdings {
    missions: Vec<(String, i32, String)>,
    wallet: Vec<wallet::WalletEntry>,
}

async fn holdings(c: &Clients, customer: &str) -> Holdings {
    let request = mission::ListMissionsRequest { customer_id: customer.into() }.by_operator();
    let mut missions: Vec<_> = c
        .missions
        .clone()
        .list_missions(request)
        .await
        .unwrap()
        .into_inner()
        .missions
        .into_iter()
        .map(|m| (m.mission_id, m.status, m.mission_code))
        .collect();
    missions.sort();
    let request = wallet::GetWalletRequest { customer_id: customer.into() }.by_operator();
    let mut wallet = c.wallets.clone().get_wallet(request).await.unwrap().into_inner().wallet.unwrap().entries;
    wallet.sort_by(|a, b| a.entry_id.cmp(&b.entry_id));
    Holdings { missions, wallet }
}

/// Waits until each of `customer`'s missions is rewarded and in the wallet.
async fn settled(c: &Clients, customer: &str) {
    testkit::eventually("the player's rewards to settle", SETTLE, || async {
        let now = holdings(c, customer).await;
        let rewarded = now.missions.iter().all(|(_, status, _)| *status == mission::MissionStatus::Rewarded as i32);
        (rewarded && now.wallet.len() == now.missions.len()).then_some(())
    })
    .await;
}

/// Who signs a call.
#[derive(Debug, Clone, Copy)]
enum Signer {
    Owner,
    Intruder,
    Operator,
    Nobody,
}

struct Pools {
    owner: String,
    intruder: String,
    mission_id: String,
    reward_id: String,
    entry_id: String,
    order_id: String,
}

fn text(rng: &mut StdRng, pools: &Pools) -> String {
    let fixed = [
        "",
        " ",
        "player-1",
        "a b",
        "FIRST_WIN",
        "NO_SUCH_MISSION",
        "STICKER-PACK",
        "AVATAR-FRAME",
        "NO-SUCH-PRODUCT",
        "'; DROP TABLE missions; --",
        "../../etc/passwd",
        "%00",
        "\u{0}",
        "\u{202e}",
        "é",
        "😀",
        "00000000-0000-0000-0000-000000000000",
    ];
    match rng.random_range(0..7) {
        0 => (*fixed.choose(rng).unwrap_or(&"")).to_owned(),
        1 => [&pools.owner, &pools.intruder, &pools.mission_id, &pools.reward_id, &pools.entry_id, &pools.order_id]
            .choose(rng)
            .map(|s| (*s).clone())
            .unwrap_or_default(),
        2 => "x".repeat(rng.random_range(60..70)),
        3 => uuid::Uuid::new_v4().to_string(),
        4 => (0..rng.random_range(0..40)).map(|_| char::from(rng.random_range(32u8..127))).collect(),
        5 => String::from_utf8_lossy(&(0..rng.random_range(0..40)).map(|_| rng.random()).collect::<Vec<u8>>())
            .into_owned(),
        // Far over the gateway's message size limit.
        _ => "y".repeat(100_000),
    }
}

fn sign<M>(message: M, signer: Signer, pools: &Pools) -> tonic::Request<M> {
    match signer {
        Signer::Owner => authorized(message, &identity().player(&pools.owner)),
        Signer::Intruder => authorized(message, &identity().player(&pools.intruder)),
        Signer::Operator => message.by_operator(),
        Signer::Nobody => tonic::Request::new(message),
    }
}

fn answer<T>(result: Result<tonic::Response<T>, tonic::Status>) -> Code {
    result.map_or_else(|status| status.code(), |_| Code::Ok)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn random_requests_get_precise_answers_and_refused_ones_change_nothing() {
    let seed = std::env::var("FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random::<u64>);
    println!("FUZZ_SEED={seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let mesh = Mesh::start(MeshOptions::default()).await;
    let c = Clients::of(&mesh).await;

    // The owner has a rewarded mission, an available entry and an order.
    let (owner, intruder) = (player(), player());
    let first = c.achieve(&owner, "FIRST_WIN").await;
    let first = c.rewarded(&first.mission_id).await;
    let spent = c.wallet_entry(&owner, &first.reward_id).await;
    let exchange = wallet::ExchangeRewardRequest {
        customer_id: owner.clone(),
        entry_id: spent.entry_id.clone(),
        // All 300 points: the entry is used up, its order on it.
        product_sku: "AVATAR-FRAME".into(),
    };
    let order_id =
        c.wallets.clone().exchange_reward(exchange.by_player(&owner)).await.unwrap().into_inner().entry.unwrap();
    let second = c.achieve(&owner, "FIRST_LOGIN").await;
    let second = c.rewarded(&second.mission_id).await;
    let available = c.wallet_entry(&owner, &second.reward_id).await;
    let pools = Pools {
        owner: owner.clone(),
        intruder,
        mission_id: first.mission_id.clone(),
        reward_id: first.reward_id.clone(),
        entry_id: available.entry_id.clone(),
        order_id: order_id.gift_order_id,
    };

    let refusals = [
        Code::InvalidArgument,
        Code::NotFound,
        Code::PermissionDenied,
        Code::Unauthenticated,
        Code::FailedPrecondition,
        Code::ResourceExhausted,
    ];
    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    for call in 0..CALLS {
        let signer = *[Signer::Owner, Signer::Owner, Signer::Intruder, Signer::Operator, Signer::Nobody]
            .choose(&mut rng)
            .unwrap_or(&Signer::Owner);
        let before = holdings(&c, &owner).await;
        let (rpc, code, writes) = match rng.random_range(0..11) {
            0 => {
                let m = mission::AchieveMissionRequest {
                    customer_id: text(&mut rng, &pools),
                    mission_code: text(&mut rng, &pools),
                    achievement_id: None,
                };
                ("AchieveMission", answer(c.missions.clone().achieve_mission(sign(m, signer, &pools)).await), true)
            }
            1 => {
                let m = mission::GetMissionRequest { mission_id: text(&mut rng, &pools) };
                ("GetMission", answer(c.missions.clone().get_mission(sign(m, signer, &pools)).await), false)
            }
            2 => {
                let m = mission::ListMissionsRequest { customer_id: text(&mut rng, &pools) };
                ("ListMissions", answer(c.missions.clone().list_missions(sign(m, signer, &pools)).await), false)
            }
            3 => {
                let m = reward::GetRewardRequest { reward_id: text(&mut rng, &pools) };
                ("GetReward", answer(c.rewards.clone().get_reward(sign(m, signer, &pools)).await), false)
            }
            4 => {
                let m = wallet::GetWalletRequest { customer_id: text(&mut rng, &pools) };
                ("GetWallet", answer(c.wallets.clone().get_wallet(sign(m, signer, &pools)).await), false)
            }
            5 => {
                let m = wallet::ExchangeRewardRequest {
                    customer_id: text(&mut rng, &pools),
                    entry_id: text(&mut rng, &pools),
                    product_sku: text(&mut rng, &pools),
                };
                ("ExchangeReward", answer(c.wallets.clone().exchange_reward(sign(m, signer, &pools)).await), true)
            }
            6 => {
                let m = gift::GetOrderRequest { order_id: text(&mut rng, &pools) };
                ("GetOrder", answer(c.gifts.clone().get_order(sign(m, signer, &pools)).await), false)
            }
            7 => {
                let m = gift::ExchangeRequest {
                    idempotency_key: text(&mut rng, &pools),
                    customer_id: text(&mut rng, &pools),
                    reward_id: text(&mut rng, &pools),
                    product_sku: text(&mut rng, &pools),
                    points: rng.random(),
                    mission_id: text(&mut rng, &pools),
                    exchange_id: text(&mut rng, &pools),
                };
                let code = answer(c.gifts.clone().exchange(sign(m, signer, &pools)).await);
                assert_eq!(
                    code,
                    Code::PermissionDenied,
                    "seed {seed}: gift's Exchange is never reachable from outside"
                );
                ("Exchange", code, true)
            }
            8 => {
                let m = mypage::GetMyPageRequest { customer_id: text(&mut rng, &pools) };
                ("GetMyPage", answer(c.my_pages.clone().get_my_page(sign(m, signer, &pools)).await), false)
            }
            9 => {
                let m = settlement::ListSettlementsRequest {
                    product_sku: text(&mut rng, &pools),
                    page_size: *[-1, 0, 1, 500, 501, i32::MAX, i32::MIN, rng.random()].choose(&mut rng).unwrap_or(&0),
                    page_token: text(&mut rng, &pools),
                };
                (
                    "ListSettlements",
                    answer(c.settlements.clone().list_settlements(sign(m, signer, &pools)).await),
                    false,
                )
            }
            _ => {
                let m = mission::ListMissionDefinitionsRequest {};
                let code = answer(c.missions.clone().list_mission_definitions(sign(m, signer, &pools)).await);
                ("ListMissionDefinitions", code, false)
            }
        };
        *seen.entry(format!("{rpc} {code:?}")).or_default() += 1;
        assert!(
            code == Code::Ok || refusals.contains(&code),
            "seed {seed}, call {call}: {rpc} as {signer:?} answered {code:?}"
        );
        if code != Code::Ok || !writes {
            assert_eq!(holdings(&c, &owner).await, before, "seed {seed}, call {call}: a refused {rpc} changed data");
        } else if rpc == "AchieveMission" {
            // Its reward arrives by events: wait for it before comparing again.
            settled(&c, &owner).await;
        }
    }
    println!("{seen:#?}");

    // Every service still serves: the owner's page still reads.
    let request = mypage::GetMyPageRequest { customer_id: owner.clone() }.by_player(&owner);
    c.my_pages.clone().get_my_page(request).await.unwrap();
}

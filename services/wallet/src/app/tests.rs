//! The wallet's use cases driven through every outcome of the exchange saga
//! with an in-memory store and a scripted gift: no database, no network.
//! The adapters behind the same ports are tested against real parts in
//! `tests/api` and the system tests.

#![allow(clippy::unwrap_used)] // a test that cannot proceed should stop right there

mod doubles;

use std::time::Duration;

use kernel::StoreErrorKind;
use kernel::{CustomerId, Points};

use self::doubles::{InMemoryWalletStore, ScriptedGift};
use super::*;
use crate::domain::{
    EntryStatus, ExchangeRefused, MissionId, ProductSku, RewardExpiry, RewardId, WalletEntry, WalletEvent,
};
use crate::ports::{GiftOutcome, GiftRefusal};

struct World {
    wallets: Wallets<InMemoryWalletStore, ScriptedGift>,
    store: InMemoryWalletStore,
    gift: ScriptedGift,
    /// An AVAILABLE entry of `player()`, worth 300 points.
    entry: WalletEntry,
}

fn player() -> CustomerId {
    CustomerId::parse("player-1").unwrap()
}

fn sku(value: &str) -> ProductSku {
    ProductSku::parse(value).unwrap()
}

/// A reward of 300 points for `player()`, earned in an event that ends at
/// `event_ends_at` (`None`: one that never ends).
fn allocated(event_ends_at: Option<i64>) -> AllocatedReward {
    AllocatedReward {
        reward_id: RewardId::generate(),
        mission_id: MissionId::generate(),
        customer_id: player(),
        points: Points::new(300).unwrap(),
        event_ends_at,
    }
}

/// Issues `reward` into `store`, expiring `expiry` after its event ends;
/// returns its entry.
async fn issued(store: &InMemoryWalletStore, reward: AllocatedReward, expiry: RewardExpiry) -> WalletEntry {
    let reward_id = reward.reward_id;
    store.write(move |tx| issue(tx, reward, expiry)).await.unwrap();
    store.entries().into_iter().find(|entry| entry.reward_id == reward_id).unwrap()
}

/// A wallet holding one issued reward, of an event that never ends.
async fn world() -> World {
    let (store, gift) = (InMemoryWalletStore::default(), ScriptedGift::default());
    let wallets = Wallets::new(store.clone(), gift.clone());
    let entry = issued(&store, allocated(None), RewardExpiry::default()).await;
    World { wallets, store, gift, entry }
}

impl World {
    async fn exchange(&self, product: &str) -> Result<WalletEntry, WalletError> {
        self.wallets.exchange(player(), self.entry.id, sku(product), None).await
    }

    /// The exchange as a call running beside the test.
    fn spawn_exchange(&self, product: &str) -> tokio::task::JoinHandle<Result<WalletEntry, WalletError>> {
        let (wallets, id, product) = (self.wallets.clone(), self.entry.id, sku(product));
        tokio::spawn(async move { wallets.exchange(player(), id, product, None).await })
    }

    fn status(&self) -> EntryStatus {
        self.store.entry(self.entry.id).status
    }

    fn key(&self, attempt: i64) -> String {
        format!("{}:{attempt}", self.entry.id)
    }

    /// One re-drive round over every pending exchange, however young.
    async fn redrive(&self) -> usize {
        // Pending since strictly before now: let the clock move past the
        // millisecond the exchange began in.
        tokio::time::sleep(Duration::from_millis(5)).await;
        self.wallets.redrive_once(Duration::ZERO).await.unwrap()
    }
}

fn placed(order: &str) -> GiftOutcome {
    GiftOutcome::Placed { gift_order_id: order.into() }
}

fn out_of_stock() -> GiftOutcome {
    GiftOutcome::Refused(GiftRefusal::Rejected("AVATAR-FRAME is out of stock".into()))
}

/// The call's deadline passed after it was sent: an order may exist.
fn timed_out() -> GiftOutcome {
    GiftOutcome::Unknown { reason: "DeadlineExceeded: deadline has elapsed".into() }
}

/// The call was sent and its connection lost: an order may exist.
fn connection_lost() -> GiftOutcome {
    GiftOutcome::Unknown { reason: "Unavailable: connection reset".into() }
}

/// Gift could not be reached; the call never left.
fn unreachable() -> GiftOutcome {
    GiftOutcome::Refused(GiftRefusal::Busy { reason: "tcp connect error".into(), retry_after: None })
}

/// Gift, or the wallet's own concurrency limit, shed the call before any work.
fn shed() -> GiftOutcome {
    GiftOutcome::Refused(GiftRefusal::Busy {
        reason: "64 calls to gift already in flight".into(),
        retry_after: Some(Duration::from_millis(250)),
    })
}

/// The wallet's circuit breaker turned the call away.
fn breaker_open() -> GiftOutcome {
    GiftOutcome::Refused(GiftRefusal::Busy {
        reason: "gift is failing; the circuit is open".into(),
        retry_after: Some(Duration::from_millis(1500)),
    })
}

fn pending(product: &str) -> impl Fn(&EntryStatus) -> bool {
    let product = sku(product);
    move |status| matches!(status, EntryStatus::ExchangePending { product: p, .. } if *p == product)
}

#[tokio::test]
async fn a_placed_order_completes_the_exchange_and_publishes_reward_exchanged_once() {
    let world = world().await;
    world.gift.answers([placed("o-1")]);

    let exchanged = world.exchange("AVATAR-FRAME").await.unwrap();

    assert!(matches!(&exchanged.status, EntryStatus::Exchanged { gift_order_id, .. } if gift_order_id == "o-1"));
    assert_eq!(world.status(), exchanged.status);
    assert_eq!(world.gift.keys(), [world.key(1)]);
    assert_eq!(world.store.exchanged_orders(), ["o-1"]);
    let again = world.exchange("AVATAR-FRAME").await;
    assert!(matches!(again, Err(WalletError::Refused(ExchangeRefused::AlreadyExchanged { .. }))), "{again:?}");
    assert_eq!(world.gift.keys().len(), 1, "an exchanged entry never asks gift again");
}

#[tokio::test]
async fn a_refusal_by_gift_releases_the_entry_and_tells_the_player_why() {
    let world = world().await;
    world.gift.answers([out_of_stock()]);

    let refused = world.exchange("AVATAR-FRAME").await;

    assert!(matches!(refused, Err(WalletError::Gift(GiftRefusal::Rejected(_)))), "{refused:?}");
    assert_eq!(world.status(), EntryStatus::Available);
    assert!(world.store.exchanged_orders().is_empty());
    // The next exchange is a new attempt under a new key.
    world.gift.answers([placed("o-2")]);
    world.exchange("TITLE-CHAMPION").await.unwrap();
    assert_eq!(world.gift.keys(), [world.key(1), world.key(2)]);
}

#[tokio::test]
async fn a_timed_out_call_leaves_the_entry_pending_and_the_player_told_it_is_unsettled() {
    for unknown in [timed_out(), connection_lost()] {
        let world = world().await;
        world.gift.answers([unknown.clone()]);

        let answer = world.exchange("AVATAR-FRAME").await;

        assert!(matches!(answer, Err(WalletError::Unsettled(id)) if id == world.entry.id), "{unknown:?}: {answer:?}");
        assert!(pending("AVATAR-FRAME")(&world.status()), "{unknown:?}");
        assert!(world.store.exchanged_orders().is_empty());
    }
}

#[tokio::test]
async fn gift_unreachable_or_shedding_load_turns_a_fresh_exchange_away_with_the_entry_as_it_was() {
    for busy in [unreachable(), shed(), breaker_open()] {
        let world = world().await;
        world.gift.answers([busy.clone()]);

        let answer = world.exchange("AVATAR-FRAME").await;

        let GiftOutcome::Refused(expected) = busy else { unreachable!() };
        assert!(matches!(&answer, Err(WalletError::Gift(refusal)) if *refusal == expected), "{answer:?}");
        assert_eq!(world.status(), EntryStatus::Available, "{expected:?}");
    }
}

#[tokio::test]
async fn gift_not_asked_keeps_a_resumed_attempt_pending() {
    let world = world().await;
    world.gift.answers([timed_out()]);
    assert!(matches!(world.exchange("AVATAR-FRAME").await, Err(WalletError::Unsettled(_))));

    // The first call's order may exist: a retry that cannot reach gift, or
    // the re-driver finding the circuit open, learns nothing about it.
    for not_asked in [breaker_open(), shed(), unreachable()] {
        world.gift.answers([not_asked]);
        let answer = world.exchange("AVATAR-FRAME").await;
        assert!(matches!(answer, Err(WalletError::Gift(GiftRefusal::Busy { .. }))), "{answer:?}");
        assert!(pending("AVATAR-FRAME")(&world.status()));
    }
    world.gift.answers([breaker_open()]);
    assert_eq!(world.redrive().await, 0);
    assert!(pending("AVATAR-FRAME")(&world.status()));
    assert!(world.gift.keys().iter().all(|key| *key == world.key(1)), "every call asked under the first key");
}

#[tokio::test]
async fn a_retry_after_an_unknown_outcome_asks_under_the_same_key_and_completes() {
    let world = world().await;
    world.gift.answers([timed_out(), placed("o-1")]);
    assert!(matches!(world.exchange("AVATAR-FRAME").await, Err(WalletError::Unsettled(_))));

    let exchanged = world.exchange("AVATAR-FRAME").await.unwrap();

    assert!(matches!(exchanged.status, EntryStatus::Exchanged { .. }));
    assert_eq!(world.gift.keys(), [world.key(1), world.key(1)]);
    assert_eq!(world.store.exchanged_orders(), ["o-1"]);
}

#[tokio::test]
async fn a_pending_entry_cannot_be_exchanged_for_another_product() {
    let world = world().await;
    world.gift.answers([timed_out()]);
    assert!(world.exchange("AVATAR-FRAME").await.is_err());

    let answer = world.exchange("TITLE-CHAMPION").await;

    assert!(
        matches!(answer, Err(WalletError::Refused(ExchangeRefused::PendingForAnotherProduct { .. }))),
        "{answer:?}"
    );
    assert_eq!(world.gift.keys().len(), 1, "gift is not asked");
}

#[tokio::test]
async fn an_order_placed_for_the_latest_attempt_completes_it_after_a_concurrent_call_released_it() {
    let world = world().await;
    // The first call is turned away by the breaker, but only after a
    // second call resumed its attempt and was sent.
    let mut first_call = world.gift.holds(breaker_open());
    let mut second_call = world.gift.holds(placed("o-1"));
    let first = world.spawn_exchange("AVATAR-FRAME");
    first_call.entered().await;
    let second = world.spawn_exchange("AVATAR-FRAME");
    second_call.entered().await;

    first_call.answer();
    assert!(matches!(first.await.unwrap(), Err(WalletError::Gift(GiftRefusal::Busy { .. }))));
    assert_eq!(world.status(), EntryStatus::Available, "the first call released its fresh attempt");
    second_call.answer();
    let exchanged = second.await.unwrap().unwrap();

    assert!(matches!(&exchanged.status, EntryStatus::Exchanged { gift_order_id, .. } if gift_order_id == "o-1"));
    assert_eq!(world.status(), exchanged.status);
    assert_eq!(world.store.exchanged_orders(), ["o-1"]);
}

#[tokio::test]
async fn a_call_is_answered_ok_only_when_the_entry_holds_its_order() {
    let world = world().await;
    // The first call's order arrives after its attempt was released (by a
    // concurrent refusal) and a newer attempt began.
    let mut first_call = world.gift.holds(placed("o-1"));
    let first = world.spawn_exchange("AVATAR-FRAME");
    first_call.entered().await;
    world.gift.answers([out_of_stock(), timed_out()]);
    assert!(matches!(world.exchange("AVATAR-FRAME").await, Err(WalletError::Gift(GiftRefusal::Rejected(_)))));
    assert!(matches!(world.exchange("TITLE-CHAMPION").await, Err(WalletError::Unsettled(_))));

    first_call.answer();
    let answer = first.await.unwrap();

    assert!(matches!(answer, Err(WalletError::Unsettled(_))), "{answer:?}");
    assert!(pending("TITLE-CHAMPION")(&world.status()), "the newer attempt still owns the entry");
    assert_eq!(world.store.entry(world.entry.id).exchange_attempt, 2);
    assert!(world.store.exchanged_orders().is_empty());
}

#[tokio::test]
async fn the_redriver_completes_a_pending_exchange_with_the_order_gift_confirms() {
    let world = world().await;
    world.gift.answers([timed_out()]);
    assert!(world.exchange("AVATAR-FRAME").await.is_err());
    world.gift.answers([placed("o-1")]);

    assert_eq!(world.redrive().await, 1);

    assert!(matches!(world.status(), EntryStatus::Exchanged { gift_order_id, .. } if gift_order_id == "o-1"));
    assert_eq!(world.gift.keys(), [world.key(1), world.key(1)]);
    assert_eq!(world.store.exchanged_orders(), ["o-1"]);
    assert_eq!(world.redrive().await, 0, "nothing is left pending");
}

#[tokio::test]
async fn the_redriver_releases_a_pending_exchange_gift_refused() {
    let world = world().await;
    world.gift.answers([connection_lost(), out_of_stock()]);
    assert!(world.exchange("AVATAR-FRAME").await.is_err());

    assert_eq!(world.redrive().await, 1);

    assert_eq!(world.status(), EntryStatus::Available);
    assert!(world.store.exchanged_orders().is_empty());
}

#[tokio::test]
async fn the_redriver_leaves_an_exchange_pending_while_gift_cannot_tell() {
    let world = world().await;
    world.gift.answers([timed_out(), timed_out(), shed(), unreachable()]);
    assert!(world.exchange("AVATAR-FRAME").await.is_err());

    for _ in 0..3 {
        assert_eq!(world.redrive().await, 0);
        assert!(pending("AVATAR-FRAME")(&world.status()));
    }
    assert_eq!(world.gift.keys(), [world.key(1), world.key(1), world.key(1), world.key(1)]);
}

#[tokio::test]
async fn the_redriver_leaves_young_exchanges_to_the_call_in_flight() {
    let world = world().await;
    world.gift.answers([timed_out()]);
    assert!(world.exchange("AVATAR-FRAME").await.is_err());

    // The script has no answer left: asking gift would panic.
    assert_eq!(world.wallets.redrive_once(Duration::from_secs(3600)).await.unwrap(), 0);
    assert_eq!(world.gift.keys().len(), 1);
}

#[tokio::test]
async fn an_order_placed_while_the_store_failed_is_completed_by_the_redriver() {
    let world = world().await;
    // The reservation commits; the settlement after gift's answer does not.
    world.store.script_writes([None, Some(StoreErrorKind::Unavailable)]);
    world.gift.answers([placed("o-1"), placed("o-1")]);

    let answer = world.exchange("AVATAR-FRAME").await;

    assert!(
        matches!(&answer, Err(WalletError::Storage(error)) if error.kind() == StoreErrorKind::Unavailable),
        "{answer:?}"
    );
    assert!(pending("AVATAR-FRAME")(&world.status()), "nothing of the settlement was stored");
    assert_eq!(world.redrive().await, 1);
    assert!(matches!(world.status(), EntryStatus::Exchanged { .. }));
    assert_eq!(world.store.exchanged_orders(), ["o-1"]);
}

#[tokio::test]
async fn a_lost_write_race_is_decided_again() {
    let world = world().await;
    world.store.script_writes([Some(StoreErrorKind::Conflict), None, Some(StoreErrorKind::Conflict)]);
    world.gift.answers([placed("o-1")]);

    let exchanged = world.exchange("AVATAR-FRAME").await.unwrap();

    assert!(matches!(exchanged.status, EntryStatus::Exchanged { .. }));
    assert_eq!(world.gift.keys(), [world.key(1)], "gift is asked once");
}

#[tokio::test]
async fn a_store_that_cannot_be_reached_reserves_nothing_and_never_asks_gift() {
    for kind in [StoreErrorKind::Unavailable, StoreErrorKind::Busy] {
        let world = world().await;
        world.store.script_writes([Some(kind)]);

        let answer = world.exchange("AVATAR-FRAME").await;

        assert!(matches!(&answer, Err(WalletError::Storage(error)) if error.kind() == kind), "{answer:?}");
        assert_eq!(world.status(), EntryStatus::Available);
        assert!(world.gift.keys().is_empty());
    }
}

#[tokio::test]
async fn an_entry_that_does_not_exist_or_is_not_the_players_is_refused_without_asking_gift() {
    let world = world().await;
    let missing = EntryId::generate();
    let answer = world.wallets.exchange(player(), missing, sku("AVATAR-FRAME"), None).await;
    assert!(matches!(answer, Err(WalletError::EntryNotFound(id)) if id == missing), "{answer:?}");

    let intruder = CustomerId::parse("player-2").unwrap();
    let answer = world.wallets.exchange(intruder, world.entry.id, sku("AVATAR-FRAME"), None).await;
    assert!(matches!(answer, Err(WalletError::Refused(ExchangeRefused::NotYours { .. }))), "{answer:?}");

    assert_eq!(world.status(), EntryStatus::Available);
    assert!(world.gift.keys().is_empty());
}

#[tokio::test]
async fn a_reward_issued_twice_enters_the_wallet_once() {
    let world = world().await;
    let again =
        AllocatedReward { reward_id: world.entry.reward_id, mission_id: world.entry.mission_id, ..allocated(None) };

    world.store.write(move |tx| issue(tx, again, RewardExpiry::default())).await.unwrap();

    assert_eq!(world.wallets.wallet(player()).await.unwrap(), std::slice::from_ref(&world.entry));
    let issued = world.store.published();
    assert!(matches!(issued.as_slice(), [WalletEvent::RewardIssued { entry }] if *entry == world.entry));
}

/// An hour, in milliseconds.
const HOUR: i64 = 3_600_000;

/// Rewards that expire the moment their event ends: the tests choose the
/// event's end relative to the real clock the exchange reads.
fn at_the_events_end() -> RewardExpiry {
    RewardExpiry::after(Duration::ZERO)
}

#[tokio::test]
async fn a_reward_is_issued_expiring_the_configured_time_after_its_event_ends_and_never_without_an_end() {
    let store = InMemoryWalletStore::default();
    let winter_ends = 1_799_539_200_000;

    let of_an_event = issued(&store, allocated(Some(winter_ends)), RewardExpiry::default()).await;
    let of_launch = issued(&store, allocated(None), RewardExpiry::default()).await;

    assert_eq!(of_an_event.expires_at, Some(winter_ends + 30 * 24 * HOUR));
    assert_eq!(of_launch.expires_at, None);
    assert_eq!(store.published().len(), 2, "one RewardIssued each");
}

#[tokio::test]
async fn an_entry_past_its_expiry_is_refused_at_exchange_and_gift_is_never_asked() {
    let world = world().await;
    let ended_an_hour_ago = now_millis() - HOUR;
    let entry = issued(&world.store, allocated(Some(ended_an_hour_ago)), at_the_events_end()).await;

    let answer = world.wallets.exchange(player(), entry.id, sku("AVATAR-FRAME"), None).await;

    let refused = match answer {
        Err(WalletError::Refused(refused @ ExchangeRefused::Expired { .. })) => refused,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        refused.to_string(),
        format!(
            "reward {} (wallet entry {}) expired at {}",
            entry.reward_id,
            entry.id,
            kernel::rfc3339(ended_an_hour_ago)
        )
    );
    assert_eq!(world.store.entry(entry.id).status, EntryStatus::Available, "the job expires it, not the refusal");
    assert!(world.gift.keys().is_empty());
}

#[tokio::test]
async fn the_expiry_job_expires_each_due_entry_once_and_publishes_points_expired() {
    let world = world().await;
    let now = now_millis();
    let due = issued(&world.store, allocated(Some(now - HOUR)), at_the_events_end()).await;
    let later = issued(&world.store, allocated(Some(now + HOUR)), at_the_events_end()).await;

    assert_eq!(world.wallets.expire_due(now).await.unwrap(), 1);

    assert_eq!(world.store.entry(due.id).status, EntryStatus::Expired { at: now });
    assert_eq!(world.store.entry(later.id).status, EntryStatus::Available);
    assert_eq!(world.status(), EntryStatus::Available, "a reward of an event that never ends never expires");
    let expired = world.store.published().into_iter().find_map(|event| match event {
        WalletEvent::PointsExpired { entry, expired } => Some((entry.id, expired.points, expired.expires_at)),
        _ => None,
    });
    assert_eq!(expired, Some((due.id, Points::new(300).unwrap(), now - HOUR)));
    assert_eq!(world.wallets.expire_due(now).await.unwrap(), 0, "expired once");
    assert_eq!(world.store.expired_entries(), [due.id]);
    assert_eq!(world.wallets.expire_due(now + 2 * HOUR).await.unwrap(), 1, "the later one in its turn");
    assert_eq!(world.store.expired_entries(), [due.id, later.id]);
}

#[tokio::test]
async fn an_entry_reserved_for_an_exchange_is_expired_only_once_the_exchange_released_it() {
    let world = world().await;
    let expires_at = now_millis() + HOUR;
    let entry = issued(&world.store, allocated(Some(expires_at)), at_the_events_end()).await;
    world.gift.answers([timed_out()]);
    let answer = world.wallets.exchange(player(), entry.id, sku("AVATAR-FRAME"), None).await;
    assert!(matches!(answer, Err(WalletError::Unsettled(_))), "{answer:?}");

    assert_eq!(world.wallets.expire_due(expires_at + 1).await.unwrap(), 0);
    assert!(pending("AVATAR-FRAME")(&world.store.entry(entry.id).status), "the exchange is not decided yet");

    world.gift.answers([out_of_stock()]);
    assert_eq!(world.redrive().await, 1);
    assert_eq!(world.store.entry(entry.id).status, EntryStatus::Available);
    assert_eq!(world.wallets.expire_due(expires_at + 2).await.unwrap(), 1, "released, then expired at the next run");
    assert_eq!(world.store.entry(entry.id).status, EntryStatus::Expired { at: expires_at + 2 });
}

#[tokio::test]
async fn a_run_that_loses_the_race_for_an_entry_to_another_replica_publishes_nothing_for_it() {
    let world = world().await;
    let now = now_millis();
    let entry = issued(&world.store, allocated(Some(now - HOUR)), at_the_events_end()).await;
    world.store.lose_next_write_to_an_expiry_of(entry.id, now - 1);

    assert_eq!(world.wallets.expire_due(now).await.unwrap(), 0, "the rival expired it");

    assert_eq!(world.store.entry(entry.id).status, EntryStatus::Expired { at: now - 1 });
    assert_eq!(world.store.expired_entries(), [entry.id], "PointsExpired once, the rival's");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_expiring_at_once_expire_each_entry_exactly_once() {
    let store = InMemoryWalletStore::default();
    let now = now_millis();
    let mut due = Vec::new();
    // More than one batch.
    for _ in 0..(2 * EXPIRY_BATCH + 10) {
        due.push(issued(&store, allocated(Some(now - HOUR)), at_the_events_end()).await.id);
    }
    let replicas =
        [Wallets::new(store.clone(), ScriptedGift::default()), Wallets::new(store.clone(), ScriptedGift::default())];

    let runs = replicas.map(|replica| tokio::spawn(async move { replica.expire_due(now).await.unwrap() }));
    let mut expired = 0;
    for run in runs {
        expired += run.await.unwrap();
    }

    assert_eq!(expired, due.len(), "between them, every due entry once");
    let mut published = store.expired_entries();
    published.sort_unstable();
    due.sort_unstable();
    assert_eq!(published, due, "one PointsExpired per entry");
}

#[tokio::test]
async fn an_expiry_run_cut_short_is_finished_by_the_next_one_from_the_store() {
    let store = InMemoryWalletStore::default();
    let now = now_millis();
    for _ in 0..5 {
        issued(&store, allocated(Some(now - HOUR)), at_the_events_end()).await;
    }
    // Two entries expire; then the store goes away mid-run (a crash, a
    // restart): the run stops there.
    store.script_writes([None, None, Some(StoreErrorKind::Unavailable)]);
    let cut_short = Wallets::new(store.clone(), ScriptedGift::default()).expire_due(now).await;
    assert!(
        matches!(&cut_short, Err(WalletError::Storage(e)) if e.kind() == StoreErrorKind::Unavailable),
        "{cut_short:?}"
    );
    assert_eq!(store.expired_entries().len(), 2);

    let restarted = Wallets::new(store.clone(), ScriptedGift::default());
    assert_eq!(restarted.expire_due(now).await.unwrap(), 3);

    let mut published = store.expired_entries();
    published.sort_unstable();
    published.dedup();
    assert_eq!(published.len(), 5, "each of the five expired once");
    assert!(store.entries().iter().all(|entry| matches!(entry.status, EntryStatus::Expired { .. })));
}

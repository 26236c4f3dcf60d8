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
    ExchangeRefused, ExchangeStatus, MissionId, ProductSku, RewardExpiry, RewardId, Standing, WalletEntry, WalletEvent,
};
use crate::ports::{GiftOutcome, GiftRefusal};

struct World {
    wallets: Wallets<InMemoryWalletStore, ScriptedGift>,
    store: InMemoryWalletStore,
    gift: ScriptedGift,
    /// An entry of `player()`, worth 300 points, that never expires.
    entry: WalletEntry,
}

fn player() -> CustomerId {
    CustomerId::parse("player-1").unwrap()
}

fn sku(value: &str) -> ProductSku {
    ProductSku::parse(value).unwrap()
}

fn key(value: &str) -> IdempotencyKey {
    IdempotencyKey::parse(value).unwrap()
}

/// A reward of `points` for `player()`, earned in an event that ends at
/// `event_ends_at` (`None`: one that never ends).
fn worth(points: i64, event_ends_at: Option<i64>) -> AllocatedReward {
    AllocatedReward {
        reward_id: RewardId::generate(),
        mission_id: MissionId::generate(),
        customer_id: player(),
        points: Points::new(points).unwrap(),
        event_ends_at,
    }
}

/// A reward of 300 points (see [`worth`]).
fn allocated(event_ends_at: Option<i64>) -> AllocatedReward {
    worth(300, event_ends_at)
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
    async fn exchange_reward(&self, product: &str) -> Result<WalletEntry, WalletError> {
        self.wallets.exchange_reward(player(), self.entry.id, sku(product), None).await
    }

    async fn exchange(&self, product: &str, idempotency_key: &str) -> Result<Exchange, WalletError> {
        self.wallets.exchange(player(), sku(product), key(idempotency_key), None).await
    }

    /// The exchange of the entry as a call running beside the test.
    fn spawn_exchange_reward(&self, product: &str) -> tokio::task::JoinHandle<Result<WalletEntry, WalletError>> {
        let (wallets, id, product) = (self.wallets.clone(), self.entry.id, sku(product));
        tokio::spawn(async move { wallets.exchange_reward(player(), id, product, None).await })
    }

    fn standing(&self) -> Standing {
        self.store.entry(self.entry.id).standing()
    }

    fn points_of(&self, id: EntryId) -> [i64; 4] {
        let entry = self.store.entry(id);
        [entry.remaining, entry.reserved, entry.spent, entry.expired]
    }

    /// The only exchange stored.
    fn the_exchange(&self) -> Exchange {
        let mut all = self.store.exchanges();
        assert_eq!(all.len(), 1, "{all:?}");
        all.remove(0)
    }

    /// The player's totals, checked to add up.
    async fn totals(&self) -> Totals {
        let totals = self.wallets.wallet(player(), now_millis()).await.unwrap().totals;
        assert!(totals.add_up(), "{totals:?}");
        totals
    }

    /// One re-drive round over every pending exchange, however young.
    async fn redrive(&self) -> usize {
        // Pending since strictly before now: let the clock move past the
        // millisecond the exchange began in.
        tokio::time::sleep(Duration::from_millis(5)).await;
        self.wallets.redrive_once(Duration::ZERO).await.unwrap()
    }

    /// The vendor cancels the order placed under `gift_key`.
    async fn cancel(&self, gift_key: &str, order: &str) -> Refund {
        let cancelled =
            CancelledOrder { gift_key: gift_key.into(), gift_order_id: order.into(), reason: "no supply".into() };
        self.store.write(move |tx| refund(tx, &cancelled, now_millis())).await.unwrap()
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

// --- ExchangeReward: one entry pays -------------------------------------

#[tokio::test]
async fn a_placed_order_completes_the_exchange_and_publishes_it_once() {
    let world = world().await;
    world.gift.answers([placed("o-1")]);

    let exchanged = world.exchange_reward("AVATAR-FRAME").await.unwrap();

    assert_eq!(exchanged.standing(), Standing::Exchanged);
    assert_eq!(exchanged.gift_order_id.as_deref(), Some("o-1"));
    assert_eq!(world.points_of(world.entry.id), [0, 0, 300, 0]);
    let exchange = world.the_exchange();
    assert!(matches!(&exchange.status, ExchangeStatus::Placed { gift_order_id, .. } if gift_order_id == "o-1"));
    assert_eq!(world.gift.keys(), [exchange.gift_key.to_string()]);
    assert_eq!(world.store.placed_orders(), ["o-1"]);
    assert!(world.store.published().iter().any(|e| matches!(e, WalletEvent::RewardExchanged { .. })));
    let again = world.exchange_reward("AVATAR-FRAME").await;
    assert!(matches!(again, Err(WalletError::Refused(ExchangeRefused::AlreadyExchanged { .. }))), "{again:?}");
    assert_eq!(world.gift.keys().len(), 1, "a spent entry never asks gift again");
}

#[tokio::test]
async fn the_change_beyond_the_price_stays_in_the_entry_and_pays_for_the_next_exchange() {
    let world = world().await;
    world.gift.answers([placed("o-1"), placed("o-2")]);

    let first = world.exchange_reward("STICKER-PACK").await.unwrap();

    assert_eq!((first.standing(), first.remaining, first.spent), (Standing::Available, 200, 100));
    assert_eq!(world.gift.offered(), [100], "gift is offered the price, not the whole reward");
    let second = world.exchange_reward("STICKER-PACK").await.unwrap();
    assert_eq!((second.remaining, second.spent), (100, 200));
    let keys = world.gift.keys();
    assert_ne!(keys[0], keys[1], "two exchanges, two keys");
    assert_eq!(world.totals().await.spent, 200);
}

#[tokio::test]
async fn a_refusal_by_gift_releases_the_points_and_tells_the_player_why() {
    let world = world().await;
    world.gift.answers([out_of_stock()]);

    let refused = world.exchange_reward("AVATAR-FRAME").await;

    assert!(matches!(refused, Err(WalletError::Gift(GiftRefusal::Rejected(_)))), "{refused:?}");
    assert_eq!(world.points_of(world.entry.id), [300, 0, 0, 0]);
    assert_eq!(
        world.the_exchange().status,
        ExchangeStatus::Released { reason: "AVATAR-FRAME is out of stock".into(), at: world.released_at() }
    );
    assert!(world.store.placed_orders().is_empty());
    // The next exchange is a new one under a new key.
    world.gift.answers([placed("o-2")]);
    world.exchange_reward("TITLE-CHAMPION").await.unwrap();
    let keys = world.gift.keys();
    assert_eq!(keys.len(), 2);
    assert_ne!(keys[0], keys[1]);
}

impl World {
    /// When the only released exchange was released.
    fn released_at(&self) -> i64 {
        self.store
            .exchanges()
            .iter()
            .find_map(|e| match e.status {
                ExchangeStatus::Released { at, .. } => Some(at),
                _ => None,
            })
            .unwrap()
    }
}

#[tokio::test]
async fn a_timed_out_call_leaves_the_exchange_pending_and_the_player_told_it_is_unsettled() {
    for unknown in [timed_out(), connection_lost()] {
        let world = world().await;
        world.gift.answers([unknown.clone()]);

        let answer = world.exchange_reward("AVATAR-FRAME").await;

        assert!(matches!(answer, Err(WalletError::Unsettled(id)) if id == world.entry.id), "{unknown:?}: {answer:?}");
        assert_eq!(world.standing(), Standing::ExchangePending, "{unknown:?}");
        assert_eq!(world.points_of(world.entry.id), [0, 300, 0, 0]);
        assert_eq!(world.totals().await.reserved, 300);
        assert!(world.store.placed_orders().is_empty());
    }
}

#[tokio::test]
async fn gift_unreachable_or_shedding_load_turns_a_fresh_exchange_away_with_the_points_as_they_were() {
    for busy in [unreachable(), shed(), breaker_open()] {
        let world = world().await;
        world.gift.answers([busy.clone()]);

        let answer = world.exchange_reward("AVATAR-FRAME").await;

        let GiftOutcome::Refused(expected) = busy else { unreachable!() };
        assert!(matches!(&answer, Err(WalletError::Gift(refusal)) if *refusal == expected), "{answer:?}");
        assert_eq!(world.points_of(world.entry.id), [300, 0, 0, 0], "{expected:?}");
    }
}

#[tokio::test]
async fn gift_not_asked_keeps_a_resumed_exchange_pending() {
    let world = world().await;
    world.gift.answers([timed_out()]);
    assert!(matches!(world.exchange_reward("AVATAR-FRAME").await, Err(WalletError::Unsettled(_))));

    // The first call's order may exist: a retry that cannot reach gift, or
    // the re-driver finding the circuit open, learns nothing about it.
    for not_asked in [breaker_open(), shed(), unreachable()] {
        world.gift.answers([not_asked]);
        let answer = world.exchange_reward("AVATAR-FRAME").await;
        assert!(matches!(answer, Err(WalletError::Gift(GiftRefusal::Busy { .. }))), "{answer:?}");
        assert_eq!(world.standing(), Standing::ExchangePending);
    }
    world.gift.answers([breaker_open()]);
    assert_eq!(world.redrive().await, 0);
    assert_eq!(world.standing(), Standing::ExchangePending);
    let gift_key = world.the_exchange().gift_key.to_string();
    assert!(world.gift.keys().iter().all(|key| *key == gift_key), "every call asked under the first key");
}

#[tokio::test]
async fn a_retry_after_an_unknown_outcome_asks_under_the_same_key_and_completes() {
    let world = world().await;
    world.gift.answers([timed_out(), placed("o-1")]);
    assert!(matches!(world.exchange_reward("AVATAR-FRAME").await, Err(WalletError::Unsettled(_))));

    let exchanged = world.exchange_reward("AVATAR-FRAME").await.unwrap();

    assert_eq!(exchanged.standing(), Standing::Exchanged);
    let gift_key = world.the_exchange().gift_key.to_string();
    assert_eq!(world.gift.keys(), [gift_key.clone(), gift_key]);
    assert_eq!(world.store.placed_orders(), ["o-1"]);
}

#[tokio::test]
async fn a_pending_entry_cannot_be_exchanged_for_another_product_it_cannot_also_pay_for() {
    let world = world().await;
    world.gift.answers([timed_out()]);
    assert!(world.exchange_reward("AVATAR-FRAME").await.is_err());

    let answer = world.exchange_reward("TITLE-CHAMPION").await;

    assert!(
        matches!(answer, Err(WalletError::Refused(ExchangeRefused::PendingForAnotherProduct { .. }))),
        "{answer:?}"
    );
    assert_eq!(world.gift.keys().len(), 1, "gift is not asked");
}

#[tokio::test]
async fn a_call_turned_away_while_another_was_sent_leaves_the_exchange_to_that_call() {
    let world = world().await;
    // The first call is turned away by the breaker, but only after a
    // second call resumed the exchange and was sent.
    let mut first_call = world.gift.holds(breaker_open());
    let mut second_call = world.gift.holds(placed("o-1"));
    let first = world.spawn_exchange_reward("AVATAR-FRAME");
    first_call.entered().await;
    let second = world.spawn_exchange_reward("AVATAR-FRAME");
    second_call.entered().await;

    first_call.answer();
    assert!(matches!(first.await.unwrap(), Err(WalletError::Gift(GiftRefusal::Busy { .. }))));
    assert_eq!(world.standing(), Standing::ExchangePending, "not released: the second call may place the order");
    second_call.answer();
    let exchanged = second.await.unwrap().unwrap();

    assert_eq!(exchanged.gift_order_id.as_deref(), Some("o-1"));
    assert_eq!(world.points_of(world.entry.id), [0, 0, 300, 0]);
    assert_eq!(world.store.placed_orders(), ["o-1"]);
}

#[tokio::test]
async fn an_entry_that_does_not_exist_or_is_not_the_players_is_refused_without_asking_gift() {
    let world = world().await;
    let missing = EntryId::generate();
    let answer = world.wallets.exchange_reward(player(), missing, sku("AVATAR-FRAME"), None).await;
    assert!(matches!(answer, Err(WalletError::EntryNotFound(id)) if id == missing), "{answer:?}");

    let intruder = CustomerId::parse("player-2").unwrap();
    let answer = world.wallets.exchange_reward(intruder, world.entry.id, sku("AVATAR-FRAME"), None).await;
    assert!(matches!(answer, Err(WalletError::Refused(ExchangeRefused::NotYours { .. }))), "{answer:?}");

    assert_eq!(world.points_of(world.entry.id), [300, 0, 0, 0]);
    assert!(world.gift.keys().is_empty());
}

// --- Exchange: the balance pays -----------------------------------------

#[tokio::test]
async fn an_exchange_is_paid_from_several_rewards_the_change_staying_in_the_last() {
    let world = world().await;
    let now = now_millis();
    let expiring = issued(&world.store, worth(100, Some(now + 3_600_000)), at_the_events_end()).await;
    world.gift.answers([placed("o-1")]);

    let exchange = world.exchange("GAME-SOUNDTRACK-300", "k-1").await;

    assert!(matches!(exchange, Err(WalletError::UnknownProduct(_))), "{exchange:?}");
    let exchange = world.exchange("SNOW-SLED", "k-1").await.unwrap();
    assert!(matches!(&exchange.status, ExchangeStatus::Placed { gift_order_id, .. } if gift_order_id == "o-1"));
    let paid: Vec<(EntryId, i64)> = exchange.reservations.iter().map(|r| (r.entry_id, r.points.value())).collect();
    assert_eq!(paid, [(expiring.id, 100), (world.entry.id, 200)], "the expiring reward first");
    assert_eq!(world.points_of(expiring.id), [0, 0, 100, 0]);
    assert_eq!(world.points_of(world.entry.id), [100, 0, 200, 0]);
    assert_eq!(world.gift.keys(), [exchange.id.to_string()], "gift is asked under the exchange's own key");
    assert_eq!(world.gift.offered(), [300]);
    let totals = world.totals().await;
    assert_eq!((totals.earned, totals.balance, totals.spent), (400, 100, 300));
}

#[tokio::test]
async fn an_exchange_the_balance_cannot_pay_is_refused_naming_both_and_reserves_nothing() {
    let world = world().await;
    issued(&world.store, worth(100, None), RewardExpiry::default()).await;

    let answer = world.exchange("LIMITED-FIGURE", "k-1").await;

    assert!(matches!(answer, Err(WalletError::UnknownProduct(_))), "not in the in-memory price list: {answer:?}");
    world.store.write(|tx| keep_price(tx, &sku("LIMITED-FIGURE"), Points::new(2000).unwrap())).await.unwrap();
    let answer = world.exchange("LIMITED-FIGURE", "k-1").await;
    let Err(WalletError::Refused(refused)) = answer else { panic!("{answer:?}") };
    assert_eq!(refused.to_string(), "player-1 has 400 points; LIMITED-FIGURE costs 2000");
    assert!(world.store.exchanges().is_empty());
    assert_eq!(world.totals().await.balance, 400);
    assert!(world.gift.keys().is_empty());
}

#[tokio::test]
async fn a_repeated_request_answers_with_the_first_exchange_and_never_reserves_twice() {
    let world = world().await;
    world.gift.answers([timed_out(), placed("o-1")]);
    let first = world.exchange("STICKER-PACK", "k-1").await;
    assert!(matches!(first, Err(WalletError::ExchangeUnsettled(_))), "{first:?}");

    let retried = world.exchange("STICKER-PACK", "k-1").await.unwrap();
    let again = world.exchange("STICKER-PACK", "k-1").await.unwrap();

    assert_eq!(retried, again, "settled: answered as it stands, gift not asked");
    assert_eq!(world.gift.keys(), [retried.id.to_string(), retried.id.to_string()]);
    assert_eq!(world.points_of(world.entry.id), [200, 0, 100, 0], "reserved once");
    let other = world.exchange("AVATAR-FRAME", "k-1").await;
    assert!(matches!(other, Err(WalletError::Refused(ExchangeRefused::KeyReused { .. }))), "{other:?}");
    world.gift.answers([placed("o-2")]);
    let another_key = world.exchange("STICKER-PACK", "k-2").await.unwrap();
    assert_ne!(another_key.id, retried.id);
}

// --- Refunds ------------------------------------------------------------

#[tokio::test]
async fn a_cancelled_order_is_refunded_once_and_its_points_are_spendable_again() {
    let world = world().await;
    world.gift.answers([placed("o-1")]);
    let exchange = world.exchange("AVATAR-FRAME", "k-1").await.unwrap();

    assert_eq!(world.cancel(exchange.gift_key.as_str(), "o-1").await, Refund::Refunded);
    assert_eq!(world.cancel(exchange.gift_key.as_str(), "o-1").await, Refund::AlreadySettled, "redelivered");

    assert_eq!(world.points_of(world.entry.id), [300, 0, 0, 0]);
    assert!(matches!(world.the_exchange().status, ExchangeStatus::Refunded { .. }));
    assert_eq!(world.store.refunded_exchanges(), [exchange.id]);
    let totals = world.totals().await;
    assert_eq!((totals.balance, totals.spent, totals.refunded), (300, 0, 300));
    assert_eq!(world.cancel("someone-elses-order", "o-9").await, Refund::NoExchange);
}

#[tokio::test]
async fn a_cancellation_that_overtakes_the_saga_places_then_refunds_the_exchange() {
    let world = world().await;
    world.gift.answers([timed_out()]);
    let pending = world.exchange("AVATAR-FRAME", "k-1").await;
    assert!(pending.is_err());
    let gift_key = world.the_exchange().gift_key.to_string();

    assert_eq!(world.cancel(&gift_key, "o-1").await, Refund::Refunded);

    assert_eq!(world.points_of(world.entry.id), [300, 0, 0, 0]);
    assert_eq!(world.store.placed_orders(), ["o-1"]);
    // The saga's own answer arrives late: it changes nothing.
    world.gift.answers([placed("o-1")]);
    let late = world.exchange("AVATAR-FRAME", "k-1").await.unwrap();
    assert!(matches!(late.status, ExchangeStatus::Refunded { .. }));
    assert_eq!(world.points_of(world.entry.id), [300, 0, 0, 0]);
}

#[tokio::test]
async fn a_refund_to_a_reward_past_its_expiry_expires_at_once() {
    let store = InMemoryWalletStore::default();
    let gift = ScriptedGift::default();
    let wallets = Wallets::new(store.clone(), gift.clone());
    let expires_at = now_millis() + 200;
    let entry = issued(&store, allocated(Some(expires_at)), at_the_events_end()).await;
    gift.answers([placed("o-1")]);
    let exchange = wallets.exchange(player(), sku("AVATAR-FRAME"), key("k-1"), None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(250)).await;

    let cancelled =
        CancelledOrder { gift_key: exchange.gift_key.to_string(), gift_order_id: "o-1".into(), reason: "x".into() };
    store.write(move |tx| refund(tx, &cancelled, now_millis())).await.unwrap();

    let refunded = store.entry(entry.id);
    assert_eq!([refunded.remaining, refunded.spent, refunded.expired], [0, 0, 300], "never revived");
    let totals = wallets.wallet(player(), now_millis()).await.unwrap().totals;
    assert!(totals.add_up(), "{totals:?}");
    assert_eq!((totals.expired, totals.refunded), (300, 300));
}

#[tokio::test]
async fn a_product_gift_lists_can_be_exchanged_at_its_price() {
    let world = world().await;
    world.store.write(|tx| keep_price(tx, &sku("WINTER-SCARF"), Points::new(250).unwrap())).await.unwrap();
    world.gift.answers([placed("o-1")]);

    let exchange = world.exchange("WINTER-SCARF", "k-1").await.unwrap();

    assert_eq!(exchange.price.value(), 250);
    assert_eq!(world.points_of(world.entry.id), [50, 0, 250, 0]);
}

// --- The re-driver ------------------------------------------------------

#[tokio::test]
async fn the_redriver_completes_a_pending_exchange_with_the_order_gift_confirms() {
    let world = world().await;
    world.gift.answers([timed_out()]);
    assert!(world.exchange_reward("AVATAR-FRAME").await.is_err());
    world.gift.answers([placed("o-1")]);

    assert_eq!(world.redrive().await, 1);

    assert_eq!(world.standing(), Standing::Exchanged);
    let gift_key = world.the_exchange().gift_key.to_string();
    assert_eq!(world.gift.keys(), [gift_key.clone(), gift_key]);
    assert_eq!(world.store.placed_orders(), ["o-1"]);
    assert_eq!(world.redrive().await, 0, "nothing is left pending");
}

#[tokio::test]
async fn the_redriver_releases_a_pending_exchange_gift_refused() {
    let world = world().await;
    world.gift.answers([connection_lost(), out_of_stock()]);
    assert!(world.exchange("AVATAR-FRAME", "k-1").await.is_err());

    assert_eq!(world.redrive().await, 1);

    assert_eq!(world.points_of(world.entry.id), [300, 0, 0, 0]);
    assert!(matches!(world.the_exchange().status, ExchangeStatus::Released { .. }));
    assert!(world.store.placed_orders().is_empty());
}

#[tokio::test]
async fn the_redriver_leaves_an_exchange_pending_while_gift_cannot_tell() {
    let world = world().await;
    world.gift.answers([timed_out(), timed_out(), shed(), unreachable()]);
    assert!(world.exchange_reward("AVATAR-FRAME").await.is_err());

    for _ in 0..3 {
        assert_eq!(world.redrive().await, 0);
        assert_eq!(world.standing(), Standing::ExchangePending);
    }
    assert_eq!(world.gift.keys().len(), 4);
    assert_eq!(world.the_exchange().calls, 4, "each re-drive is a call of its own");
}

#[tokio::test]
async fn the_redriver_leaves_young_exchanges_to_the_call_in_flight() {
    let world = world().await;
    world.gift.answers([timed_out()]);
    assert!(world.exchange_reward("AVATAR-FRAME").await.is_err());

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

    let answer = world.exchange_reward("AVATAR-FRAME").await;

    assert!(
        matches!(&answer, Err(WalletError::Storage(error)) if error.kind() == StoreErrorKind::Unavailable),
        "{answer:?}"
    );
    assert_eq!(world.standing(), Standing::ExchangePending, "nothing of the settlement was stored");
    assert_eq!(world.redrive().await, 1);
    assert_eq!(world.standing(), Standing::Exchanged);
    assert_eq!(world.store.placed_orders(), ["o-1"]);
}

#[tokio::test]
async fn a_lost_write_race_is_decided_again() {
    let world = world().await;
    world.store.script_writes([Some(StoreErrorKind::Conflict), None, Some(StoreErrorKind::Conflict)]);
    world.gift.answers([placed("o-1")]);

    let exchanged = world.exchange_reward("AVATAR-FRAME").await.unwrap();

    assert_eq!(exchanged.standing(), Standing::Exchanged);
    assert_eq!(world.gift.keys().len(), 1, "gift is asked once");
}

#[tokio::test]
async fn a_store_that_cannot_be_reached_reserves_nothing_and_never_asks_gift() {
    for kind in [StoreErrorKind::Unavailable, StoreErrorKind::Busy] {
        let world = world().await;
        world.store.script_writes([Some(kind)]);

        let answer = world.exchange_reward("AVATAR-FRAME").await;

        assert!(matches!(&answer, Err(WalletError::Storage(error)) if error.kind() == kind), "{answer:?}");
        assert_eq!(world.points_of(world.entry.id), [300, 0, 0, 0]);
        assert!(world.gift.keys().is_empty());
    }
}

#[tokio::test]
async fn a_reward_issued_twice_enters_the_wallet_once() {
    let world = world().await;
    let again =
        AllocatedReward { reward_id: world.entry.reward_id, mission_id: world.entry.mission_id, ..allocated(None) };

    world.store.write(move |tx| issue(tx, again, RewardExpiry::default())).await.unwrap();

    let view = world.wallets.wallet(player(), now_millis()).await.unwrap();
    assert_eq!(view.entries, std::slice::from_ref(&world.entry));
    let issued = world.store.published();
    assert!(matches!(issued.as_slice(), [WalletEvent::RewardIssued { entry }] if *entry == world.entry));
}

// --- Expiry -------------------------------------------------------------

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

    let answer = world.wallets.exchange_reward(player(), entry.id, sku("AVATAR-FRAME"), None).await;

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
    assert_eq!(world.store.entry(entry.id).remaining, 300, "the job expires it, not the refusal");
    assert_eq!(world.totals().await.expired, 300, "yet it no longer counts as spendable");
    assert!(world.gift.keys().is_empty());
}

#[tokio::test]
async fn the_expiry_job_expires_each_due_entry_once_and_publishes_points_expired() {
    let world = world().await;
    let now = now_millis();
    let due = issued(&world.store, allocated(Some(now - HOUR)), at_the_events_end()).await;
    let later = issued(&world.store, allocated(Some(now + HOUR)), at_the_events_end()).await;

    assert_eq!(world.wallets.expire_due(now).await.unwrap(), 1);

    assert_eq!(world.points_of(due.id), [0, 0, 0, 300]);
    assert_eq!(world.store.entry(due.id).expired_at, Some(now));
    assert_eq!(world.points_of(later.id), [300, 0, 0, 0]);
    assert_eq!(world.points_of(world.entry.id), [300, 0, 0, 0], "a reward of an event that never ends never expires");
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
async fn reserved_points_are_never_expired_and_released_ones_expire_at_the_next_run() {
    let world = world().await;
    let expires_at = now_millis() + HOUR;
    let entry = issued(&world.store, allocated(Some(expires_at)), at_the_events_end()).await;
    world.gift.answers([timed_out()]);
    let answer = world.wallets.exchange_reward(player(), entry.id, sku("STICKER-PACK"), None).await;
    assert!(matches!(answer, Err(WalletError::Unsettled(_))), "{answer:?}");

    assert_eq!(world.wallets.expire_due(expires_at + 1).await.unwrap(), 1);
    assert_eq!(world.points_of(entry.id), [0, 100, 0, 200], "the reserved 100 wait for the exchange");

    world.gift.answers([out_of_stock()]);
    assert_eq!(world.redrive().await, 1);
    assert_eq!(world.points_of(entry.id), [100, 0, 0, 200]);
    assert_eq!(world.wallets.expire_due(expires_at + 2).await.unwrap(), 1, "released, then expired at the next run");
    assert_eq!(world.points_of(entry.id), [0, 0, 0, 300]);
    assert_eq!(world.store.expired_entries(), [entry.id, entry.id], "two expiries, two events");
}

#[tokio::test]
async fn a_run_that_loses_the_race_for_an_entry_to_another_replica_publishes_nothing_for_it() {
    let world = world().await;
    let now = now_millis();
    let entry = issued(&world.store, allocated(Some(now - HOUR)), at_the_events_end()).await;
    world.store.lose_next_write_to_an_expiry_of(entry.id, now - 1);

    assert_eq!(world.wallets.expire_due(now).await.unwrap(), 0, "the rival expired it");

    assert_eq!(world.store.entry(entry.id).expired_at, Some(now - 1));
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
    assert!(store.entries().iter().all(|entry| entry.standing() == Standing::Expired));
}

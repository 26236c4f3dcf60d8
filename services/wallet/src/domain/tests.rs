//! The wallet's rules, given/when/then, without a runtime.

use super::*;

fn player() -> CustomerId {
    CustomerId::parse("player-1").unwrap()
}

fn sku(value: &str) -> ProductSku {
    ProductSku::parse(value).unwrap()
}

fn points(value: i64) -> Points {
    Points::new(value).unwrap()
}

/// 2027-01-10T00:00:00Z: WINTER-2026 ends.
const WINTER_ENDS: i64 = 1_799_539_200_000;
/// 2027-02-09T00:00:00Z: 30 days later, its rewards expire.
const WINTER_EXPIRES: i64 = WINTER_ENDS + 30 * 24 * 3600 * 1000;

/// An entry of `worth` points for `player()`, issued at `issued_at`,
/// expiring at `expires_at`.
fn entry(worth: i64, issued_at: i64, expires_at: Option<i64>) -> WalletEntry {
    WalletEntry::issue(RewardId::generate(), MissionId::generate(), player(), points(worth), expires_at, issued_at)
}

fn purchase(product: &str, price: i64) -> Purchase {
    Purchase {
        id: ExchangeId::generate(),
        customer_id: player(),
        product: sku(product),
        price: points(price),
        idempotency_key: Some(IdempotencyKey::parse("k-1").unwrap()),
    }
}

fn placed(order: &str) -> GiftAnswer {
    GiftAnswer::Placed { gift_order_id: order.into() }
}

fn refused() -> GiftAnswer {
    GiftAnswer::Refused { reason: "SNOW-SLED is out of stock".into() }
}

fn not_asked() -> GiftAnswer {
    GiftAnswer::NotAsked { reason: "gift is failing; the circuit is open".into() }
}

fn where_points_are(entry: &WalletEntry) -> [i64; 4] {
    [entry.remaining, entry.reserved, entry.spent, entry.expired]
}

#[test]
fn an_issued_reward_holds_all_its_points_and_its_entry_id_follows_from_the_reward() {
    let reward = RewardId::generate();
    let mission = MissionId::generate();
    let issued = WalletEntry::issue(reward, mission, player(), points(300), None, 10);
    assert_eq!(where_points_are(&issued), [300, 0, 0, 0]);
    assert_eq!(issued.standing(), Standing::Available);
    let again = WalletEntry::issue(reward, mission, player(), points(300), None, 99);
    assert_eq!(issued.id, again.id);
}

#[test]
fn an_exchange_reserves_the_price_from_the_entries_expiring_first_then_the_oldest() {
    // Given a player's entries: two that never expire, one expiring soon, one later
    let old_forever = entry(100, 10, None);
    let new_forever = entry(100, 20, None);
    let soon = entry(50, 30, Some(WINTER_EXPIRES));
    let later = entry(80, 5, Some(WINTER_EXPIRES + 1));
    let mut entries = vec![new_forever, later, old_forever, soon];
    // When a product of 200 points is bought
    let (exchange, ticket) = purchase("SNOW-SLED", 200).reserve_across(&mut entries, WINTER_ENDS).unwrap();
    // Then the soonest expiry pays first, then the later one, then the oldest of the rest
    let paid: Vec<(EntryId, i64)> = exchange.reservations.iter().map(|r| (r.entry_id, r.points.value())).collect();
    assert_eq!(paid, [(entries[3].id, 50), (entries[1].id, 80), (entries[2].id, 70)]);
    assert_eq!(where_points_are(&entries[2]), [30, 70, 0, 0], "the change stays in the entry");
    assert_eq!(where_points_are(&entries[0]), [100, 0, 0, 0], "not needed, not touched");
    assert_eq!(entries[0].version, 1);
    assert_eq!(
        (exchange.status.clone(), exchange.calls, exchange.reserved_points()),
        (ExchangeStatus::Pending, 1, 200)
    );
    assert_eq!(exchange.mission_id, entries[3].mission_id, "correlated by the entry paying first");
    assert_eq!(exchange.gift_key.as_str(), exchange.id.to_string());
    assert_eq!(ticket, ExchangeTicket { exchange_id: exchange.id, call: 1, resumed: false });
    assert!(entries.iter().all(WalletEntry::is_whole));
}

#[test]
fn an_exchange_the_balance_cannot_pay_reserves_nothing_and_names_the_balance_and_price() {
    let mut entries = vec![entry(100, 10, None), entry(20, 20, None)];
    let before = entries.clone();

    let refused = purchase("SNOW-SLED", 300).reserve_across(&mut entries, 30).unwrap_err();

    assert_eq!(refused.to_string(), "player-1 has 120 points; SNOW-SLED costs 300");
    assert_eq!(entries, before);
}

#[test]
fn points_past_their_expiry_and_other_players_points_never_pay() {
    let due = entry(500, 10, Some(WINTER_EXPIRES));
    let mut theirs = entry(500, 10, None);
    theirs.customer_id = CustomerId::parse("player-2").unwrap();
    let mut entries = vec![due, theirs, entry(100, 20, None)];

    let refused = purchase("SNOW-SLED", 300).reserve_across(&mut entries, WINTER_EXPIRES).unwrap_err();

    assert!(matches!(refused, ExchangeRefused::NotEnoughPoints { balance: 100, .. }), "{refused:?}");
}

#[test]
fn an_exchange_of_one_entry_keeps_the_change_in_it() {
    let mut single = entry(300, 10, None);

    let (exchange, _) = purchase("STICKER-PACK", 100).reserve_from(&mut single, 20).unwrap();

    assert_eq!(where_points_are(&single), [200, 100, 0, 0]);
    assert_eq!(single.standing(), Standing::ExchangePending);
    assert_eq!(single.product, Some(sku("STICKER-PACK")));
    assert_eq!(
        exchange.reservations,
        [Reservation { entry_id: single.id, reward_id: single.reward_id, points: points(100) }]
    );
    assert_eq!(exchange.mission_id, single.mission_id);
}

#[test]
fn an_entry_that_cannot_pay_says_why_and_changes_nothing() {
    let intruder = Purchase { customer_id: CustomerId::parse("player-2").unwrap(), ..purchase("X", 100) };
    let mut mine = entry(300, 10, None);
    assert!(matches!(intruder.reserve_from(&mut mine, 20), Err(ExchangeRefused::NotYours { .. })));

    let refused = purchase("LIMITED-FIGURE", 2000).reserve_from(&mut mine, 20).unwrap_err();
    assert_eq!(
        refused.to_string(),
        format!(
            "not enough points: LIMITED-FIGURE costs 2000 points, reward {} (wallet entry {}) has 300 left",
            mine.reward_id, mine.id
        )
    );

    let (mut pending, ticket) = purchase("AVATAR-FRAME", 300).reserve_from(&mut mine, 20).unwrap();
    assert!(matches!(
        purchase("Y", 100).reserve_from(&mut mine, 21),
        Err(ExchangeRefused::PendingForAnotherProduct { product, .. }) if product == sku("AVATAR-FRAME")
    ));
    pending.settle(std::slice::from_mut(&mut mine), &ticket, placed("o-1"), 22);
    let before = mine.clone();
    assert_eq!(
        purchase("Y", 100).reserve_from(&mut mine, 23),
        Err(ExchangeRefused::AlreadyExchanged { entry_id: mine.id, gift_order_id: "o-1".into() })
    );
    assert_eq!(mine, before);
}

#[test]
fn an_entry_past_its_expiry_cannot_pay_expired_by_the_job_or_not_yet() {
    let mut due = entry(50, 10, Some(WINTER_EXPIRES));
    let refused = purchase("X", 50).reserve_from(&mut due, WINTER_EXPIRES).unwrap_err();
    assert_eq!(
        refused.to_string(),
        format!("reward {} (wallet entry {}) expired at 2027-02-09T00:00:00Z", due.reward_id, due.id)
    );
    assert_eq!(where_points_are(&due), [50, 0, 0, 0], "refusing changes nothing");

    due.expire(WINTER_EXPIRES + 60_000).unwrap();
    let refused = purchase("X", 50).reserve_from(&mut due, WINTER_EXPIRES + 120_000).unwrap_err();
    assert!(matches!(refused, ExchangeRefused::Expired { expires_at: WINTER_EXPIRES, .. }), "{refused:?}");

    // Before the expiry the reward is spent as ever.
    assert!(purchase("X", 50).reserve_from(&mut entry(50, 10, Some(WINTER_EXPIRES)), WINTER_EXPIRES - 1).is_ok());
}

/// A 300-point entry and a 100-point one paying a 350-point exchange.
fn two_paying() -> (Vec<WalletEntry>, Exchange, ExchangeTicket) {
    let mut entries = vec![entry(300, 10, None), entry(100, 20, None)];
    let (exchange, ticket) = purchase("SNOW-SLED", 350).reserve_across(&mut entries, 30).unwrap();
    (entries, exchange, ticket)
}

#[test]
fn a_placed_order_spends_the_reservations_and_publishes_the_exchange_and_each_used_up_reward() {
    let (mut entries, mut exchange, ticket) = two_paying();

    let (settlement, events) = exchange.settle(&mut entries, &ticket, placed("o-1"), 40);

    assert_eq!(settlement, Settlement::Completed);
    assert_eq!(exchange.status, ExchangeStatus::Placed { gift_order_id: "o-1".into(), at: 40 });
    assert_eq!(where_points_are(&entries[0]), [0, 0, 300, 0]);
    assert_eq!(where_points_are(&entries[1]), [50, 0, 50, 0]);
    assert_eq!(entries[0].standing(), Standing::Exchanged);
    assert_eq!(entries[1].standing(), Standing::Available, "its change is still spendable");
    assert!(matches!(&events[0], WalletEvent::ExchangePlaced { exchange: e } if *e == exchange));
    let used_up: Vec<EntryId> = events
        .iter()
        .filter_map(|event| match event {
            WalletEvent::RewardExchanged { entry, exchanged } if exchanged.gift_order_id == "o-1" => Some(entry.id),
            _ => None,
        })
        .collect();
    assert_eq!(used_up, [entries[0].id]);
    // A late answer to the same call changes nothing.
    let before = (exchange.clone(), entries.clone());
    assert_eq!(exchange.settle(&mut entries, &ticket, refused(), 50), (Settlement::Stale, Vec::new()));
    assert_eq!((exchange, entries), before);
}

#[test]
fn a_refusal_releases_every_reservation_as_it_was() {
    let (mut entries, mut exchange, ticket) = two_paying();

    assert_eq!(exchange.settle(&mut entries, &ticket, refused(), 40), (Settlement::Released, Vec::new()));

    assert_eq!(exchange.status, ExchangeStatus::Released { reason: "SNOW-SLED is out of stock".into(), at: 40 });
    assert_eq!(where_points_are(&entries[0]), [300, 0, 0, 0]);
    assert_eq!(where_points_are(&entries[1]), [100, 0, 0, 0]);
    assert_eq!(exchange.resume(), None, "a released exchange is final");
}

#[test]
fn an_unknown_outcome_leaves_the_exchange_pending_for_a_call_under_the_same_key() {
    let (mut entries, mut exchange, ticket) = two_paying();

    assert_eq!(exchange.settle(&mut entries, &ticket, GiftAnswer::Unknown, 40), (Settlement::StillPending, Vec::new()));

    assert_eq!(exchange.status, ExchangeStatus::Pending);
    assert_eq!(entries[0].reserved + entries[1].reserved, 350);
    let retry = exchange.resume().unwrap();
    assert_eq!(retry, ExchangeTicket { exchange_id: exchange.id, call: 2, resumed: true });
}

#[test]
fn gift_not_asked_releases_a_lone_first_call_but_keeps_an_exchange_another_call_may_have_placed() {
    let (mut entries, mut exchange, first) = two_paying();
    let fresh = exchange.clone();
    let mut alone = fresh.clone();
    let mut alone_entries = entries.clone();
    assert_eq!(alone.settle(&mut alone_entries, &first, not_asked(), 40).0, Settlement::Released);

    // A retry began a second call before the first was turned away: the
    // second may reach gift, so the first tells nothing.
    let retry = exchange.resume().unwrap();
    assert_eq!(exchange.settle(&mut entries, &first, not_asked(), 40).0, Settlement::StillPending);
    // Nor does a resumed call turned away.
    assert_eq!(exchange.settle(&mut entries, &retry, not_asked(), 41).0, Settlement::StillPending);
    assert_eq!(exchange.status, ExchangeStatus::Pending);
    assert_eq!(exchange.settle(&mut entries, &retry, placed("o-1"), 42).0, Settlement::Completed);
}

#[test]
fn a_cancelled_order_is_refunded_once_back_to_the_entries_it_came_from() {
    let (mut entries, mut exchange, ticket) = two_paying();
    exchange.settle(&mut entries, &ticket, placed("o-1"), 40);

    let refunded = exchange.refund(&mut entries, "no supply".into(), 50).unwrap();

    assert_eq!(
        exchange.status,
        ExchangeStatus::Refunded { gift_order_id: "o-1".into(), placed_at: 40, reason: "no supply".into(), at: 50 }
    );
    assert_eq!(where_points_are(&entries[0]), [300, 0, 0, 0]);
    assert_eq!(where_points_are(&entries[1]), [100, 0, 0, 0]);
    let WalletEvent::PointsRefunded { refunds, .. } = refunded else { panic!("{refunded:?}") };
    assert_eq!(
        refunds,
        [
            EntryRefund { entry_id: entries[0].id, reward_id: entries[0].reward_id, refunded: 300, expired: 0 },
            EntryRefund { entry_id: entries[1].id, reward_id: entries[1].reward_id, refunded: 50, expired: 0 },
        ]
    );
    let before = (exchange.clone(), entries.clone());
    assert_eq!(exchange.refund(&mut entries, "no supply".into(), 60), None, "refunded once");
    assert_eq!((exchange, entries), before);
}

#[test]
fn a_refund_to_an_entry_past_its_expiry_expires_at_once() {
    let mut entries = vec![entry(50, 10, Some(WINTER_EXPIRES)), entry(300, 20, None)];
    let (mut exchange, ticket) = purchase("SNOW-SLED", 300).reserve_across(&mut entries, WINTER_EXPIRES - 10).unwrap();
    exchange.settle(&mut entries, &ticket, placed("o-1"), WINTER_EXPIRES - 5);

    let refunded = exchange.refund(&mut entries, "no supply".into(), WINTER_EXPIRES + 5).unwrap();

    assert_eq!(where_points_are(&entries[0]), [0, 0, 0, 50], "never revived");
    assert_eq!(entries[0].expired_at, Some(WINTER_EXPIRES + 5));
    assert_eq!(where_points_are(&entries[1]), [300, 0, 0, 0]);
    let WalletEvent::PointsRefunded { refunds, .. } = refunded else { panic!("{refunded:?}") };
    assert_eq!((refunds[0].refunded, refunds[0].expired), (0, 50));
    assert_eq!((refunds[1].refunded, refunds[1].expired), (250, 0));
}

#[test]
fn only_a_placed_exchange_is_refunded() {
    let (mut entries, mut pending, ticket) = two_paying();
    assert_eq!(pending.refund(&mut entries, "x".into(), 40), None);
    pending.settle(&mut entries, &ticket, refused(), 41);
    assert_eq!(pending.refund(&mut entries, "x".into(), 42), None, "released: the points are back already");
    assert_eq!(where_points_are(&entries[0]), [300, 0, 0, 0]);
}

#[test]
fn a_reward_expires_the_configured_time_after_its_event_ends_and_never_without_an_end() {
    assert_eq!(RewardExpiry::default().expires_at(Some(WINTER_ENDS)), Some(WINTER_EXPIRES));
    assert_eq!(RewardExpiry::after(Duration::from_secs(60)).expires_at(Some(WINTER_ENDS)), Some(WINTER_ENDS + 60_000));
    assert_eq!(RewardExpiry::default().expires_at(None), None, "LAUNCH never ends");
    assert_eq!(RewardExpiry::after(Duration::MAX).expires_at(Some(WINTER_ENDS)), Some(i64::MAX));
}

#[test]
fn an_entry_past_its_expiry_expires_its_remaining_points_once() {
    let mut winter = entry(50, 10, Some(WINTER_EXPIRES));
    assert_eq!(winter.expire(WINTER_EXPIRES - 1), None, "not due yet");
    assert_eq!(winter.spendable(WINTER_EXPIRES - 1), 50);
    assert_eq!(winter.spendable(WINTER_EXPIRES), 0, "due: no longer spendable");

    let expired = winter.expire(WINTER_EXPIRES + 5).unwrap();

    assert_eq!(
        expired,
        PointsExpired { points: points(50), expired_total: 50, expires_at: WINTER_EXPIRES, at: WINTER_EXPIRES + 5 }
    );
    assert_eq!(where_points_are(&winter), [0, 0, 0, 50]);
    assert_eq!((winter.standing(), winter.version), (Standing::Expired, 2));
    let before = winter.clone();
    assert_eq!(winter.expire(WINTER_EXPIRES + 10), None, "expired once");
    assert_eq!(winter, before);
    assert_eq!(entry(50, 10, None).expire(i64::MAX), None, "a reward that never expires never does");
}

#[test]
fn reserved_points_never_expire_and_released_ones_expire_at_the_next_run() {
    let mut entries = vec![entry(300, 10, Some(WINTER_EXPIRES))];
    let (mut exchange, ticket) =
        purchase("STICKER-PACK", 100).reserve_across(&mut entries, WINTER_EXPIRES - 1).unwrap();

    let expired = entries[0].expire(WINTER_EXPIRES).unwrap();
    assert_eq!(expired.points, points(200), "only what was not reserved");
    assert_eq!(where_points_are(&entries[0]), [0, 100, 0, 200]);
    assert_eq!(entries[0].standing(), Standing::ExchangePending);

    exchange.settle(&mut entries, &ticket, refused(), WINTER_EXPIRES + 1);
    assert_eq!(where_points_are(&entries[0]), [100, 0, 0, 200]);
    let later = entries[0].expire(WINTER_EXPIRES + 2).unwrap();
    assert_eq!((later.points, later.expired_total), (points(100), 300), "a second expiry, told apart by its total");
    assert_eq!(where_points_are(&entries[0]), [0, 0, 0, 300]);
}

#[test]
fn an_exchange_placed_past_the_expiry_stands_and_its_points_are_never_expired() {
    let mut entries = vec![entry(50, 10, Some(WINTER_EXPIRES))];
    let (mut exchange, ticket) = purchase("X", 50).reserve_across(&mut entries, WINTER_EXPIRES - 1).unwrap();
    let retry = exchange.resume().unwrap();
    assert_eq!(exchange.settle(&mut entries, &retry, placed("o-1"), WINTER_EXPIRES + 1).0, Settlement::Completed);
    assert_eq!(entries[0].expire(WINTER_EXPIRES + 2), None);
    assert_eq!(where_points_are(&entries[0]), [0, 0, 50, 0]);
    assert_eq!(exchange.settle(&mut entries, &ticket, placed("o-1"), WINTER_EXPIRES + 3).0, Settlement::Stale);
}

#[test]
fn only_the_pending_exchange_of_one_entry_for_the_same_product_is_resumed_by_exchange_reward() {
    let mut single = entry(300, 10, None);
    let by_entry = Purchase { idempotency_key: None, ..purchase("X", 100) };
    let (exchange, _) = by_entry.reserve_from(&mut single, 20).unwrap();
    assert!(exchange.is_pending_exchange_of(single.id, &sku("X")));
    assert!(!exchange.is_pending_exchange_of(single.id, &sku("Y")));
    assert!(!exchange.is_pending_exchange_of(EntryId::generate(), &sku("X")));
    let (by_key, _) = purchase("X", 100).reserve_from(&mut single, 21).unwrap();
    assert!(!by_key.is_pending_exchange_of(single.id, &sku("X")), "the player's keyed exchange is theirs to retry");
}

/// A small deterministic generator: the same run every time.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, sides: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % sides
    }
}

#[test]
fn every_point_earned_is_in_exactly_one_place_whatever_happens() {
    let mut dice = Dice(0x5eed_1234_abcd_0001);
    let mut entries: Vec<WalletEntry> = Vec::new();
    let mut exchanges: Vec<(Exchange, ExchangeTicket)> = Vec::new();
    let mut now = 1_000;
    for _ in 0..2_000 {
        now += i64::try_from(dice.roll(50)).unwrap();
        match dice.roll(7) {
            0 => {
                let expires = (dice.roll(2) == 0).then(|| now + i64::try_from(dice.roll(3_000)).unwrap());
                entries.push(entry(50 * (1 + i64::try_from(dice.roll(6)).unwrap()), now, expires));
            }
            1 => {
                let price = 50 * (1 + i64::try_from(dice.roll(8)).unwrap());
                if let Ok(begun) = purchase("X", price).reserve_across(&mut entries, now) {
                    exchanges.push(begun);
                }
            }
            2 | 3 if !exchanges.is_empty() => {
                let i = usize::try_from(dice.roll(exchanges.len() as u64)).unwrap();
                let answer = match dice.roll(4) {
                    0 => placed("o"),
                    1 => refused(),
                    2 => not_asked(),
                    _ => GiftAnswer::Unknown,
                };
                let (exchange, ticket) = &mut exchanges[i];
                exchange.settle(&mut entries, ticket, answer, now);
            }
            4 if !exchanges.is_empty() => {
                let i = usize::try_from(dice.roll(exchanges.len() as u64)).unwrap();
                let (exchange, ticket) = &mut exchanges[i];
                if let Some(resumed) = exchange.resume() {
                    *ticket = resumed;
                }
            }
            5 if !exchanges.is_empty() => {
                let i = usize::try_from(dice.roll(exchanges.len() as u64)).unwrap();
                exchanges[i].0.refund(&mut entries, "cancelled".into(), now);
            }
            _ => {
                for entry in &mut entries {
                    entry.expire(now);
                }
            }
        }
        assert!(entries.iter().all(WalletEntry::is_whole), "an entry lost or doubled points at {now}");
        let all: Vec<Exchange> = exchanges.iter().map(|(e, _)| e.clone()).collect();
        let totals = Totals::of(&entries, &all, now);
        assert!(totals.add_up(), "{totals:?} at {now}");
        let held_by_pending: i64 =
            all.iter().filter(|e| e.status == ExchangeStatus::Pending).map(Exchange::reserved_points).sum();
        assert_eq!(totals.reserved, held_by_pending, "reserved is what pending exchanges hold");
    }
    let refunded = exchanges.iter().filter(|(e, _)| matches!(e.status, ExchangeStatus::Refunded { .. })).count();
    assert!(exchanges.len() > 50 && refunded > 5, "the run exchanged {} times, refunded {refunded}", exchanges.len());
}

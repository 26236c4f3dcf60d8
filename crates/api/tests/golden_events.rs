//! Golden fixtures: the bytes of every event message as an earlier build
//! wrote them. Events live on the streams for a week and in dead letters for
//! a month, so a new build must still read every one of them exactly.
//! `UPDATE_GOLDEN=1 cargo test -p api --test golden_events` writes missing
//! fixtures; an existing fixture is never rewritten by the test.

#![allow(clippy::unwrap_used)] // a test that cannot proceed should stop right there

use std::path::PathBuf;

use api::game::{gift, mission, reward, settlement, wallet};
use prost::Message;

fn at(seconds: i64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp { seconds, nanos: 123_000_000 })
}

fn check<M: Message + Default + PartialEq + std::fmt::Debug>(name: &str, expected: &M) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(format!("{name}.binpb"));
    if !path.exists() && std::env::var("UPDATE_GOLDEN").as_deref() == Ok("1") {
        std::fs::write(&path, expected.encode_to_vec()).unwrap();
    }
    let bytes =
        std::fs::read(&path).unwrap_or_else(|_| panic!("{} is missing: UPDATE_GOLDEN=1 writes it", path.display()));
    let decoded = M::decode(bytes.as_slice()).unwrap_or_else(|e| panic!("{name}: an old event no longer decodes: {e}"));
    assert_eq!(&decoded, expected, "{name}: an old event reads differently");
}

#[test]
fn every_event_written_by_an_earlier_build_still_reads_the_same() {
    let mission_id = "2d6c0a57-6f3b-4d42-9c55-0b7d3f0a1e10".to_owned();
    let customer_id = "player-42".to_owned();
    check(
        "mission.v1.MissionAchieved",
        &mission::v1::MissionAchieved {
            event_id: "6f1d2c3b-0000-5000-8000-000000000001".into(),
            mission_id: mission_id.clone(),
            customer_id: customer_id.clone(),
            mission_code: "FIRST_WIN".into(),
            reward_points: 300,
            achieved_at: at(1_764_000_000),
            // Written before the programme: no event.
            programme_event_id: String::new(),
            event_ends_at: None,
        },
    );
    check(
        "mission.v1.MissionAchieved.in_an_event",
        &mission::v1::MissionAchieved {
            event_id: "6f1d2c3b-0000-5000-8000-000000000011".into(),
            mission_id: mission_id.clone(),
            customer_id: customer_id.clone(),
            mission_code: "WIN_A_MATCH".into(),
            reward_points: 50,
            achieved_at: at(1_798_113_600),
            programme_event_id: "WINTER-2026".into(),
            event_ends_at: at(1_799_539_200),
        },
    );
    let winter = mission::v1::ProgrammeEvent {
        programme_event_id: "WINTER-2026".into(),
        title: "Winter 2026".into(),
        starts_at: at(1_798_070_400),
        ends_at: at(1_799_539_200),
    };
    check(
        "mission.v1.ProgrammeEventScheduled",
        &mission::v1::ProgrammeEventScheduled {
            event_id: "6f1d2c3b-0000-5000-8000-000000000012".into(),
            programme_event: Some(winter),
            operator: "operator-ann".into(),
            changed_at: at(1_797_000_000),
        },
    );
    check(
        "mission.v1.MissionDefined",
        &mission::v1::MissionDefined {
            event_id: "6f1d2c3b-0000-5000-8000-000000000013".into(),
            definition: Some(mission::v1::MissionDefinition {
                mission_code: "WIN_A_MATCH".into(),
                title: "Win a match".into(),
                reward_points: 50,
                programme_event_id: "WINTER-2026".into(),
                limit: Some(mission::v1::MissionLimit { kind: mission::v1::MissionLimitKind::Times.into(), times: 3 }),
            }),
            operator: "operator-ann".into(),
            changed_at: at(1_797_000_001),
        },
    );
    check(
        "reward.v1.RewardAllocated",
        &reward::v1::RewardAllocated {
            event_id: "6f1d2c3b-0000-5000-8000-000000000002".into(),
            reward_id: "9a0b1c2d-0000-5000-8000-000000000003".into(),
            mission_id: mission_id.clone(),
            customer_id: customer_id.clone(),
            mission_code: "FIRST_WIN".into(),
            points: 300,
            allocated_at: at(1_764_000_001),
            // Written before the programme: no event, no end.
            programme_event_id: String::new(),
            event_ends_at: None,
        },
    );
    check(
        "reward.v1.RewardAllocated.in_an_event",
        &reward::v1::RewardAllocated {
            event_id: "6f1d2c3b-0000-5000-8000-000000000014".into(),
            reward_id: "9a0b1c2d-0000-5000-8000-000000000015".into(),
            mission_id: mission_id.clone(),
            customer_id: customer_id.clone(),
            mission_code: "WIN_A_MATCH".into(),
            points: 50,
            allocated_at: at(1_798_113_601),
            programme_event_id: "WINTER-2026".into(),
            event_ends_at: at(1_799_539_200),
        },
    );
    check(
        "wallet.v1.RewardIssued",
        &wallet::v1::RewardIssued {
            event_id: "6f1d2c3b-0000-5000-8000-000000000004".into(),
            entry_id: "1b2c3d4e-0000-5000-8000-000000000005".into(),
            reward_id: "9a0b1c2d-0000-5000-8000-000000000003".into(),
            mission_id: mission_id.clone(),
            customer_id: customer_id.clone(),
            points: 300,
            issued_at: at(1_764_000_002),
            // Written before rewards expired.
            expires_at: None,
        },
    );
    check(
        "wallet.v1.RewardIssued.expiring",
        &wallet::v1::RewardIssued {
            event_id: "6f1d2c3b-0000-5000-8000-000000000016".into(),
            entry_id: "1b2c3d4e-0000-5000-8000-000000000017".into(),
            reward_id: "9a0b1c2d-0000-5000-8000-000000000015".into(),
            mission_id: mission_id.clone(),
            customer_id: customer_id.clone(),
            points: 50,
            issued_at: at(1_798_113_602),
            expires_at: at(1_802_131_200),
        },
    );
    check(
        "wallet.v1.PointsExpired",
        &wallet::v1::PointsExpired {
            event_id: "6f1d2c3b-0000-5000-8000-000000000018".into(),
            entry_id: "1b2c3d4e-0000-5000-8000-000000000017".into(),
            reward_id: "9a0b1c2d-0000-5000-8000-000000000015".into(),
            mission_id: mission_id.clone(),
            customer_id: customer_id.clone(),
            points: 50,
            expires_at: at(1_802_131_200),
            expired_at: at(1_802_131_260),
        },
    );
    check(
        "wallet.v1.RewardExchanged",
        &wallet::v1::RewardExchanged {
            event_id: "6f1d2c3b-0000-5000-8000-000000000006".into(),
            entry_id: "1b2c3d4e-0000-5000-8000-000000000005".into(),
            reward_id: "9a0b1c2d-0000-5000-8000-000000000003".into(),
            mission_id: mission_id.clone(),
            customer_id: customer_id.clone(),
            gift_order_id: "7c8d9e0f-0000-5000-8000-000000000007".into(),
            product_sku: "AVATAR-FRAME".into(),
            exchanged_at: at(1_764_000_003),
        },
    );
    let reservations = vec![
        wallet::v1::Reservation {
            entry_id: "1b2c3d4e-0000-5000-8000-000000000017".into(),
            reward_id: "9a0b1c2d-0000-5000-8000-000000000015".into(),
            points: 50,
        },
        wallet::v1::Reservation {
            entry_id: "1b2c3d4e-0000-5000-8000-000000000005".into(),
            reward_id: "9a0b1c2d-0000-5000-8000-000000000003".into(),
            points: 250,
        },
    ];
    check(
        "wallet.v1.ExchangePlaced",
        &wallet::v1::ExchangePlaced {
            event_id: "6f1d2c3b-0000-5000-8000-000000000022".into(),
            exchange_id: "5d6e7f80-0000-5000-8000-000000000023".into(),
            customer_id: customer_id.clone(),
            product_sku: "SNOW-SLED".into(),
            price_points: 300,
            gift_order_id: "7c8d9e0f-0000-5000-8000-000000000024".into(),
            reservations,
            placed_at: at(1_798_113_700),
        },
    );
    check(
        "wallet.v1.PointsRefunded",
        &wallet::v1::PointsRefunded {
            event_id: "6f1d2c3b-0000-5000-8000-000000000025".into(),
            exchange_id: "5d6e7f80-0000-5000-8000-000000000023".into(),
            customer_id: customer_id.clone(),
            gift_order_id: "7c8d9e0f-0000-5000-8000-000000000024".into(),
            product_sku: "SNOW-SLED".into(),
            refunds: vec![
                // Its entry had expired meanwhile: the points expire on return.
                wallet::v1::EntryRefund {
                    entry_id: "1b2c3d4e-0000-5000-8000-000000000017".into(),
                    reward_id: "9a0b1c2d-0000-5000-8000-000000000015".into(),
                    refunded_points: 0,
                    expired_points: 50,
                },
                wallet::v1::EntryRefund {
                    entry_id: "1b2c3d4e-0000-5000-8000-000000000005".into(),
                    reward_id: "9a0b1c2d-0000-5000-8000-000000000003".into(),
                    refunded_points: 250,
                    expired_points: 0,
                },
            ],
            reason: "the item could not be supplied".into(),
            refunded_at: at(1_802_131_300),
        },
    );
    check(
        "gift.v1.GiftExchanged",
        &gift::v1::GiftExchanged {
            event_id: "6f1d2c3b-0000-5000-8000-000000000008".into(),
            order_id: "7c8d9e0f-0000-5000-8000-000000000007".into(),
            customer_id: customer_id.clone(),
            reward_id: "9a0b1c2d-0000-5000-8000-000000000003".into(),
            mission_id: mission_id.clone(),
            product_sku: "AVATAR-FRAME".into(),
            points: 300,
            vendor_cost: 150,
            currency: "EUR".into(),
            placed_at: at(1_764_000_004),
            // Written before exchanges: paid by one reward.
            exchange_id: String::new(),
            // Written before vendors were named: the default vendor's.
            vendor: String::new(),
        },
    );
    check(
        "gift.v1.GiftExchanged.by_a_vendor",
        &gift::v1::GiftExchanged {
            event_id: "6f1d2c3b-0000-5000-8000-000000000022".into(),
            order_id: "7c8d9e0f-0000-5000-8000-000000000023".into(),
            customer_id: customer_id.clone(),
            reward_id: "9a0b1c2d-0000-5000-8000-000000000024".into(),
            mission_id: mission_id.clone(),
            product_sku: "SNOW-SLED".into(),
            points: 300,
            vendor_cost: 990,
            currency: "EUR".into(),
            placed_at: at(1_798_113_700),
            exchange_id: String::new(),
            vendor: "acme-toys".into(),
        },
    );
    check(
        "gift.v1.GiftOrderCancelled",
        &gift::v1::GiftOrderCancelled {
            event_id: "6f1d2c3b-0000-5000-8000-000000000014".into(),
            order_id: "7c8d9e0f-0000-5000-8000-000000000007".into(),
            idempotency_key: "1b2c3d4e-0000-5000-8000-000000000005:1".into(),
            customer_id: customer_id.clone(),
            reward_id: "9a0b1c2d-0000-5000-8000-000000000003".into(),
            mission_id: mission_id.clone(),
            product_sku: "AVATAR-FRAME".into(),
            points: 300,
            vendor_cost: 150,
            currency: "EUR".into(),
            reason: "the item could not be supplied".into(),
            cancelled_at: at(1_764_000_104),
            exchange_id: String::new(),
        },
    );
    check(
        "gift.v1.ProductListed",
        &gift::v1::ProductListed {
            event_id: "6f1d2c3b-0000-5000-8000-000000000015".into(),
            product: Some(gift::v1::CatalogueProduct {
                sku: "SNOW-SLED".into(),
                name: "Snow sled".into(),
                price_points: 300,
                stock: 40,
                vendor_cost: 990,
                currency: "EUR".into(),
                programme_event_id: "WINTER-2026".into(),
            }),
            operator: "operator-ann".into(),
            changed_at: at(1_797_000_002),
        },
    );
    check(
        "gift.v1.ProductRestocked",
        &gift::v1::ProductRestocked {
            event_id: "6f1d2c3b-0000-5000-8000-000000000016".into(),
            product_sku: "SNOW-SLED".into(),
            units: 20,
            stock: 55,
            operator: "operator-ann".into(),
            changed_at: at(1_797_000_003),
        },
    );
    check(
        "settlement.v1.SettlementRecorded",
        &settlement::v1::SettlementRecorded {
            event_id: "6f1d2c3b-0000-5000-8000-000000000009".into(),
            settlement_id: "3e4f5a6b-0000-5000-8000-000000000010".into(),
            order_id: "7c8d9e0f-0000-5000-8000-000000000007".into(),
            mission_id: mission_id.clone(),
            customer_id: customer_id.clone(),
            product_sku: "AVATAR-FRAME".into(),
            amount: 150,
            currency: "EUR".into(),
            recorded_at: at(1_764_000_005),
            // Written before periods: in none.
            period_id: String::new(),
            vendor: String::new(),
        },
    );
    check(
        "settlement.v1.SettlementRecorded.in_a_period",
        &settlement::v1::SettlementRecorded {
            event_id: "6f1d2c3b-0000-5000-8000-000000000014".into(),
            settlement_id: "3e4f5a6b-0000-5000-8000-000000000015".into(),
            order_id: "7c8d9e0f-0000-5000-8000-000000000016".into(),
            mission_id: mission_id.clone(),
            customer_id: customer_id.clone(),
            product_sku: "AVATAR-FRAME".into(),
            amount: 150,
            currency: "EUR".into(),
            recorded_at: at(1_798_113_600),
            period_id: "019b4e9c-c000-8000-8000-000000000017".into(),
            vendor: String::new(),
        },
    );
    check(
        "settlement.v1.SettlementRecorded.by_a_vendor",
        &settlement::v1::SettlementRecorded {
            event_id: "6f1d2c3b-0000-5000-8000-000000000025".into(),
            settlement_id: "3e4f5a6b-0000-5000-8000-000000000026".into(),
            order_id: "7c8d9e0f-0000-5000-8000-000000000023".into(),
            mission_id: mission_id.clone(),
            customer_id: customer_id.clone(),
            product_sku: "SNOW-SLED".into(),
            amount: 990,
            currency: "EUR".into(),
            recorded_at: at(1_798_113_701),
            period_id: "019b4e9c-c000-8000-8000-000000000017".into(),
            vendor: "acme-toys".into(),
        },
    );
    check(
        "settlement.v1.SettlementReversed.by_a_vendor",
        &settlement::v1::SettlementReversed {
            event_id: "6f1d2c3b-0000-5000-8000-000000000027".into(),
            settlement_id: "3e4f5a6b-0000-5000-8000-000000000028".into(),
            reversed_settlement_id: "3e4f5a6b-0000-5000-8000-000000000026".into(),
            order_id: "7c8d9e0f-0000-5000-8000-000000000023".into(),
            mission_id: mission_id.clone(),
            customer_id: customer_id.clone(),
            product_sku: "SNOW-SLED".into(),
            amount: -990,
            currency: "EUR".into(),
            recorded_at: at(1_798_113_800),
            period_id: "019b4e9c-c000-8000-8000-000000000017".into(),
            vendor: "acme-toys".into(),
        },
    );
    check(
        "settlement.v1.SettlementReversed",
        &settlement::v1::SettlementReversed {
            event_id: "6f1d2c3b-0000-5000-8000-000000000018".into(),
            settlement_id: "3e4f5a6b-0000-5000-8000-000000000019".into(),
            reversed_settlement_id: "3e4f5a6b-0000-5000-8000-000000000015".into(),
            order_id: "7c8d9e0f-0000-5000-8000-000000000016".into(),
            mission_id,
            customer_id,
            product_sku: "AVATAR-FRAME".into(),
            amount: -150,
            currency: "EUR".into(),
            recorded_at: at(1_798_200_000),
            period_id: "019b53c3-1c00-8000-8000-000000000020".into(),
            vendor: String::new(),
        },
    );
    check(
        "settlement.v1.SettlementPeriodClosed",
        &settlement::v1::SettlementPeriodClosed {
            event_id: "6f1d2c3b-0000-5000-8000-000000000021".into(),
            period: Some(settlement::v1::SettlementPeriod {
                period_id: "019b4e9c-c000-8000-8000-000000000017".into(),
                starts_at: Some(prost_types::Timestamp { seconds: 1_798_070_400, nanos: 0 }),
                ends_at: Some(prost_types::Timestamp { seconds: 1_798_156_800, nanos: 0 }),
                status: settlement::v1::PeriodStatus::Closed.into(),
                closed_at: at(1_798_156_830),
                totals: vec![settlement::v1::PeriodTotal {
                    product_sku: "AVATAR-FRAME".into(),
                    currency: "EUR".into(),
                    charges: 2,
                    reversals: 1,
                    amount: 150,
                    vendor: String::new(),
                }],
            }),
        },
    );
    let total = |vendor: &str, sku: &str, charges, reversals, amount| settlement::v1::PeriodTotal {
        product_sku: sku.into(),
        currency: "EUR".into(),
        charges,
        reversals,
        amount,
        vendor: vendor.into(),
    };
    check(
        "settlement.v1.SettlementPeriodClosed.per_vendor",
        &settlement::v1::SettlementPeriodClosed {
            event_id: "6f1d2c3b-0000-5000-8000-000000000029".into(),
            period: Some(settlement::v1::SettlementPeriod {
                period_id: "019b4e9c-c000-8000-8000-000000000017".into(),
                starts_at: Some(prost_types::Timestamp { seconds: 1_798_070_400, nanos: 0 }),
                ends_at: Some(prost_types::Timestamp { seconds: 1_798_156_800, nanos: 0 }),
                status: settlement::v1::PeriodStatus::Closed.into(),
                closed_at: at(1_798_156_830),
                totals: vec![
                    total("acme-toys", "SNOW-SLED", 1, 1, 0),
                    total("gift", "AVATAR-FRAME", 2, 1, 150),
                    total("gift", "SNOW-SLED", 1, 0, 990),
                ],
            }),
        },
    );
}

//! Periods, reversals and the closing job through the real service: the
//! gift context's events in, the operators' RPCs and the SETTLEMENT stream out.

use std::time::Duration;

use api::game::settlement::v1::{self as pb, SettlementPeriodClosed, SettlementReversed};
use platform::events::{GIFT_STREAM, SETTLEMENT_STREAM};
use settlement::SettlementConfig;
use testkit::{AsCaller, TempStore};
use tonic::Code;

use crate::helpers::{
    gift_exchanged, gift_order_cancelled, list, period, periods, settlement_id_for, short_periods, spawn_app,
    spawn_app_with,
};

fn total(sku: &str, charges: i64, reversals: i64, amount: i64) -> pb::PeriodTotal {
    pb::PeriodTotal {
        product_sku: sku.into(),
        currency: "JPY".into(),
        charges,
        reversals,
        amount,
        vendor: "gift".into(),
    }
}

#[tokio::test]
async fn a_cancelled_order_is_reversed_once_under_redelivery_in_the_period_open_now() {
    let app = spawn_app(None).await;
    let exchanged = gift_exchanged("COFFEE-S", 350);
    app.publish(&exchanged).await;
    app.recorded(1).await;
    let cancelled = gift_order_cancelled(&exchanged);
    app.publish(&cancelled).await;
    // The same cancellation again under a new message id: JetStream keeps
    // it and the inbox does not know it; the order's unique reversal does.
    let mut again = cancelled.clone();
    again.event_id = uuid::Uuid::new_v4().to_string();
    app.publish(&again).await;
    app.settled(GIFT_STREAM, "settlement-reverse").await;

    let settlements = app.recorded(2).await;
    let (charge, reversal) = (&settlements[0], &settlements[1]);
    assert_eq!((charge.kind(), charge.amount), (pb::SettlementKind::Charge, 350));
    assert_eq!(
        (reversal.kind(), reversal.amount, &reversal.order_id),
        (pb::SettlementKind::Reversal, -350, &exchanged.order_id)
    );
    assert_ne!(reversal.settlement_id, charge.settlement_id);
    assert_eq!(reversal.period_id, charge.period_id, "the day is still open: both land in it");
    let published = app.published(SETTLEMENT_STREAM, 2).await;
    let subjects: Vec<&str> = published.iter().map(|m| m.subject.as_str()).collect();
    assert_eq!(subjects, ["settlement.recorded", "settlement.reversed"], "one of each");
    let event: SettlementReversed = prost::Message::decode(published[1].payload.as_ref()).unwrap();
    assert_eq!(
        (event.settlement_id.as_str(), event.reversed_settlement_id, event.amount),
        (reversal.settlement_id.as_str(), settlement_id_for(&exchanged), -350)
    );
    let open = app.client.clone().get_period(period(&charge.period_id)).await.unwrap().into_inner().period.unwrap();
    assert_eq!((open.status(), open.totals), (pb::PeriodStatus::Open, vec![total("COFFEE-S", 1, 1, 0)]));
}

#[tokio::test]
async fn a_cancellation_that_overtakes_its_exchange_is_reversed_once_the_settlement_is_there() {
    let app = spawn_app(None).await;
    let exchanged = gift_exchanged("COFFEE-S", 350);
    app.publish(&gift_order_cancelled(&exchanged)).await;
    // Let the cancellation be refused at least once before its exchange arrives.
    tokio::time::sleep(Duration::from_millis(300)).await;
    app.publish(&exchanged).await;

    let settlements = app.recorded(2).await;

    let amounts: Vec<(pb::SettlementKind, i64)> = settlements.iter().map(|s| (s.kind(), s.amount)).collect();
    assert_eq!(amounts, [(pb::SettlementKind::Charge, 350), (pb::SettlementKind::Reversal, -350)]);
}

#[tokio::test]
async fn a_period_closes_once_after_its_end_and_a_late_reversal_lands_in_the_next() {
    let app = spawn_app_with(None, short_periods).await;
    let coffee = gift_exchanged("COFFEE-S", 350);
    app.publish(&coffee).await;
    let first_period = app.recorded(1).await[0].period_id.clone();

    let closed = app.closed(&first_period).await;
    app.publish(&gift_order_cancelled(&coffee)).await;
    let settlements = app.recorded(2).await;

    assert!(closed.closed_at.is_some());
    assert_eq!(closed.totals, [total("COFFEE-S", 1, 0, 350)]);
    let reversal = &settlements[1];
    assert_ne!(reversal.period_id, first_period, "the closed period never changes");
    let next = app.closed(&reversal.period_id).await;
    assert_eq!(next.totals, [total("COFFEE-S", 0, 1, -350)]);
    assert_eq!(app.closed(&first_period).await, closed);

    let published = app.published(SETTLEMENT_STREAM, 4).await;
    let closings: Vec<SettlementPeriodClosed> = published
        .iter()
        .filter(|m| m.subject.as_str() == "settlement.period_closed")
        .map(|m| prost::Message::decode(m.payload.as_ref()).unwrap())
        .collect();
    assert_eq!(closings.len(), 2, "one per period");
    assert_eq!(closings[0].period.as_ref(), Some(&closed));
    assert_eq!(closings[1].period.as_ref(), Some(&next));
}

#[tokio::test]
async fn a_period_that_ended_while_the_service_was_down_is_closed_when_it_starts_again() {
    let store = TempStore::new();
    let url = store.sqlite_url("settlement");
    // The closing job looks at start, and then not for an hour.
    let rarely = |config: &mut SettlementConfig| {
        short_periods(config);
        config.close_interval = Duration::from_secs(3600);
    };
    let before = spawn_app_with(Some(url.clone()), rarely).await;
    before.publish(&gift_exchanged("COFFEE-S", 350)).await;
    let period_id = before.recorded(1).await[0].period_id.clone();
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let ended = before.client.clone().get_period(period(&period_id)).await.unwrap().into_inner().period.unwrap();
    drop(before);

    let after = spawn_app_with(Some(url), rarely).await;
    let closed = after.closed(&period_id).await;

    assert_eq!(ended.status(), pb::PeriodStatus::Open, "ended, but no closing job looked");
    assert_eq!(closed.totals, [total("COFFEE-S", 1, 0, 350)]);
}

#[tokio::test]
async fn periods_are_listed_latest_first_in_pages() {
    let app = spawn_app_with(None, short_periods).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        app.publish(&gift_exchanged("COFFEE-S", 100)).await;
        let settlements = app.recorded(ids.len() + 1).await;
        let id = settlements.last().unwrap().period_id.clone();
        app.closed(&id).await;
        ids.push(id);
    }

    let first = app.client.clone().list_periods(periods(2, "")).await.unwrap().into_inner();
    let last = app.client.clone().list_periods(periods(2, &first.next_page_token)).await.unwrap().into_inner();

    let listed: Vec<String> = first.periods.iter().chain(&last.periods).map(|p| p.period_id.clone()).collect();
    ids.reverse();
    assert_eq!(listed, ids);
    assert!(last.next_page_token.is_empty());
    assert!(first.periods.iter().all(|p| p.totals.is_empty() && p.status() == pb::PeriodStatus::Closed));
}

#[tokio::test]
async fn periods_are_for_operators_and_bad_ids_and_tokens_are_precise() {
    let app = spawn_app(None).await;
    let mut client = app.client.clone();
    let unknown = uuid::Uuid::now_v7().to_string();
    let player = pb::ListPeriodsRequest::default().by_player("player-1");
    let player_get = pb::GetPeriodRequest { period_id: unknown.clone() }.by_player("player-1");

    let answers = [
        client.list_periods(player).await.map(drop),
        client.get_period(player_get).await.map(drop),
        client.get_period(period("")).await.map(drop),
        client.get_period(period("not-a-period")).await.map(drop),
        client.get_period(period(&unknown)).await.map(drop),
        client.list_periods(periods(501, "")).await.map(drop),
        client.list_periods(periods(0, "nope")).await.map(drop),
    ];

    let codes: Vec<Code> = answers.iter().map(|a| a.as_ref().unwrap_err().code()).collect();
    assert_eq!(
        codes,
        [
            Code::PermissionDenied,
            Code::PermissionDenied,
            Code::InvalidArgument,
            Code::InvalidArgument,
            Code::NotFound,
            Code::InvalidArgument,
            Code::InvalidArgument
        ]
    );
    assert_eq!(answers[4].as_ref().unwrap_err().message(), format!("settlement period {unknown} not found"));
    let empty = client.list_periods(periods(0, "")).await.unwrap().into_inner();
    assert!(empty.periods.is_empty() && empty.next_page_token.is_empty());
    let settlements = client.list_settlements(list("", 0, "")).await.unwrap().into_inner();
    assert!(settlements.settlements.is_empty());
}

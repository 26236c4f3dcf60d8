//! The published form of the settlement's events and views
//! (`game.settlement.v1`): domain values in, protobuf messages out.

use api::game::settlement::v1 as pb;
use kernel::derived_uuid;
use platform::events::timestamp;

use crate::domain::{Period, PeriodStatus, PeriodTotal, Settlement, SettlementId, SettlementKind};

/// SettlementRecorded, for `settlement` as it was recorded.
pub fn settlement_recorded(settlement: &Settlement) -> pb::SettlementRecorded {
    pb::SettlementRecorded {
        // Derived from the settlement id, so a re-staged copy could never be
        // a second, different event.
        event_id: derived_uuid(settlement.id.as_uuid(), b"SettlementRecorded").to_string(),
        settlement_id: settlement.id.to_string(),
        order_id: settlement.order_id.to_string(),
        mission_id: settlement.mission_id.to_string(),
        customer_id: settlement.customer_id.to_string(),
        product_sku: settlement.product_sku.to_string(),
        amount: settlement.owed(),
        currency: settlement.amount.currency().to_string(),
        recorded_at: Some(timestamp(settlement.recorded_at)),
        period_id: settlement.period.to_string(),
        vendor: settlement.vendor.to_string(),
    }
}

/// SettlementReversed, for `reversal` of the settlement `reversed`.
pub fn settlement_reversed(reversal: &Settlement, reversed: SettlementId) -> pb::SettlementReversed {
    pb::SettlementReversed {
        event_id: derived_uuid(reversal.id.as_uuid(), b"SettlementReversed").to_string(),
        settlement_id: reversal.id.to_string(),
        reversed_settlement_id: reversed.to_string(),
        order_id: reversal.order_id.to_string(),
        mission_id: reversal.mission_id.to_string(),
        customer_id: reversal.customer_id.to_string(),
        product_sku: reversal.product_sku.to_string(),
        amount: reversal.owed(),
        currency: reversal.amount.currency().to_string(),
        recorded_at: Some(timestamp(reversal.recorded_at)),
        period_id: reversal.period.to_string(),
        vendor: reversal.vendor.to_string(),
    }
}

/// SettlementPeriodClosed, for `period` as closed with its `totals`.
pub fn period_closed(period: &Period, totals: &[PeriodTotal]) -> pb::SettlementPeriodClosed {
    pb::SettlementPeriodClosed {
        // One per period, however often the closing is attempted.
        event_id: derived_uuid(period.id.as_uuid(), b"SettlementPeriodClosed").to_string(),
        period: Some(settlement_period(period, totals)),
    }
}

/// A period as the contract shows it, with `totals`.
pub fn settlement_period(period: &Period, totals: &[PeriodTotal]) -> pb::SettlementPeriod {
    let (status, closed_at) = match period.status {
        PeriodStatus::Open => (pb::PeriodStatus::Open, None),
        PeriodStatus::Closed { at } => (pb::PeriodStatus::Closed, Some(timestamp(at))),
    };
    pb::SettlementPeriod {
        period_id: period.id.to_string(),
        starts_at: Some(timestamp(period.starts_at)),
        ends_at: Some(timestamp(period.ends_at)),
        status: status.into(),
        closed_at,
        totals: totals
            .iter()
            .map(|total| pb::PeriodTotal {
                product_sku: total.product_sku.to_string(),
                currency: total.currency.to_string(),
                charges: total.charges,
                reversals: total.reversals,
                amount: total.amount,
                vendor: total.vendor.to_string(),
            })
            .collect(),
    }
}

/// A settlement as the contract shows it.
pub fn settlement(settlement: Settlement) -> pb::Settlement {
    let kind = match settlement.kind {
        SettlementKind::Charge => pb::SettlementKind::Charge,
        SettlementKind::Reversal => pb::SettlementKind::Reversal,
    };
    pb::Settlement {
        settlement_id: settlement.id.to_string(),
        order_id: settlement.order_id.to_string(),
        mission_id: settlement.mission_id.to_string(),
        product_sku: settlement.product_sku.to_string(),
        amount: settlement.owed(),
        currency: settlement.amount.currency().to_string(),
        customer_id: settlement.customer_id.to_string(),
        recorded_at: Some(timestamp(settlement.recorded_at)),
        period_id: settlement.period.to_string(),
        kind: kind.into(),
        vendor: settlement.vendor.to_string(),
    }
}

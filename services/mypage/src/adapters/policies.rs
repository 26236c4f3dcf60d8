//! The events the page is built from: one durable consumer per stream, each
//! decoding its events into [`PageEvent`]s and merging them into the page of
//! the player the event names. Streams are consumed independently, so events
//! of one mission arrive in any order; the merge never needs to wait.

use api::game::mission::v1::MissionAchieved;
use api::game::reward::v1::RewardAllocated;
use api::game::wallet::v1::{ExchangePlaced, PointsExpired, PointsRefunded, RewardExchanged, RewardIssued};
use kernel::{CustomerId, IdError, Points};
use platform::consumer::{Policy, PolicyError, ReceivedEvent};
use platform::db::DbConnection;
use platform::events::{Event, MISSION_STREAM, REWARD_STREAM, StreamDef, WALLET_STREAM, millis};
use platform::store::DbTx;

use crate::app::{self, PageChanges};
use crate::domain::{EntryId, ExchangeId, MissionId, PageEvent, Refund, RewardId};

/// Which stream a [`MergeIntoPage`] policy reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// MissionAchieved.
    Missions,
    /// RewardAllocated.
    Rewards,
    /// RewardIssued, RewardExchanged and PointsExpired.
    Wallet,
    /// ExchangePlaced and PointsRefunded, of the WALLET stream too: a
    /// consumer of their own rather than more subjects of `mypage-wallet`,
    /// since a new consumer starts at the beginning of the stream, so the
    /// exchanges published before the upgrade reach the page too.
    Exchanges,
}

impl Source {
    /// Every stream the page is built from.
    pub const ALL: [Self; 4] = [Self::Missions, Self::Rewards, Self::Wallet, Self::Exchanges];
}

/// On every event of a mission's life: merge it into the player's page.
#[derive(Debug)]
pub struct MergeIntoPage {
    source: Source,
    changes: PageChanges,
}

impl MergeIntoPage {
    /// The policy reading `source`, waking this replica's watchers on `changes`.
    pub fn new(source: Source, changes: PageChanges) -> Self {
        Self { source, changes }
    }
}

impl Policy for MergeIntoPage {
    fn name(&self) -> &'static str {
        match self.source {
            Source::Missions => "mypage-missions",
            Source::Rewards => "mypage-rewards",
            Source::Wallet => "mypage-wallet",
            Source::Exchanges => "mypage-exchanges",
        }
    }

    fn stream(&self) -> StreamDef {
        match self.source {
            Source::Missions => MISSION_STREAM,
            Source::Rewards => REWARD_STREAM,
            Source::Wallet | Source::Exchanges => WALLET_STREAM,
        }
    }

    fn subjects(&self) -> Vec<String> {
        let subjects: &[&str] = match self.source {
            Source::Missions => &[MissionAchieved::SUBJECT],
            Source::Rewards => &[RewardAllocated::SUBJECT],
            Source::Wallet => &[RewardIssued::SUBJECT, RewardExchanged::SUBJECT, PointsExpired::SUBJECT],
            Source::Exchanges => &[ExchangePlaced::SUBJECT, PointsRefunded::SUBJECT],
        };
        subjects.iter().map(|s| (*s).to_owned()).collect()
    }

    fn apply(&self, conn: &mut DbConnection, event: &ReceivedEvent) -> Result<(), PolicyError> {
        let (customer, page_event) = page_event(event)?;
        // The effect joins the consumer's transaction, inbox and all.
        app::merge_event(&mut DbTx::new(conn), &customer, &page_event)?;
        Ok(())
    }

    fn applied(&self, event: &ReceivedEvent) {
        // The payload, not the optional header, names the player: it is what
        // `apply` merged by.
        if let Ok((customer, _)) = page_event(event) {
            self.changes.notify(customer);
        }
    }
}

/// The player an event is about, and what it tells their page.
///
/// # Errors
/// [`PolicyError::Malformed`] for a payload that is not one of the page's
/// events or does not carry valid ids and points.
fn page_event(event: &ReceivedEvent) -> Result<(CustomerId, PageEvent), PolicyError> {
    let subject = event.subject.as_str();
    if subject == MissionAchieved::SUBJECT {
        let achieved: MissionAchieved = event.decode()?;
        Ok((
            customer(&achieved.customer_id)?,
            PageEvent::MissionAchieved {
                mission_id: id("mission_id", &achieved.mission_id, MissionId::parse)?,
                mission_code: text(achieved.mission_code),
                reward_points: points("reward_points", achieved.reward_points)?,
                achieved_at: time(achieved.achieved_at.as_ref()),
            },
        ))
    } else if subject == RewardAllocated::SUBJECT {
        let allocated: RewardAllocated = event.decode()?;
        Ok((
            customer(&allocated.customer_id)?,
            PageEvent::RewardAllocated {
                reward_id: id("reward_id", &allocated.reward_id, RewardId::parse)?,
                mission_id: id("mission_id", &allocated.mission_id, MissionId::parse)?,
                mission_code: text(allocated.mission_code),
                points: points("points", allocated.points)?,
            },
        ))
    } else if subject == RewardIssued::SUBJECT {
        let issued: RewardIssued = event.decode()?;
        Ok((
            customer(&issued.customer_id)?,
            PageEvent::RewardIssued {
                entry_id: id("entry_id", &issued.entry_id, EntryId::parse)?,
                reward_id: id("reward_id", &issued.reward_id, RewardId::parse)?,
                mission_id: id("mission_id", &issued.mission_id, MissionId::parse)?,
                points: points("points", issued.points)?,
                issued_at: time(issued.issued_at.as_ref()),
                expires_at: time(issued.expires_at.as_ref()),
            },
        ))
    } else if subject == PointsExpired::SUBJECT {
        let expired: PointsExpired = event.decode()?;
        Ok((
            customer(&expired.customer_id)?,
            PageEvent::PointsExpired {
                entry_id: id("entry_id", &expired.entry_id, EntryId::parse)?,
                reward_id: id("reward_id", &expired.reward_id, RewardId::parse)?,
                mission_id: id("mission_id", &expired.mission_id, MissionId::parse)?,
                points: points("points", expired.points)?,
                expires_at: time(expired.expires_at.as_ref()),
            },
        ))
    } else if subject == RewardExchanged::SUBJECT {
        let exchanged: RewardExchanged = event.decode()?;
        Ok((
            customer(&exchanged.customer_id)?,
            PageEvent::RewardExchanged {
                entry_id: id("entry_id", &exchanged.entry_id, EntryId::parse)?,
                reward_id: id("reward_id", &exchanged.reward_id, RewardId::parse)?,
                mission_id: id("mission_id", &exchanged.mission_id, MissionId::parse)?,
                gift_order_id: text(exchanged.gift_order_id),
                product_sku: text(exchanged.product_sku),
            },
        ))
    } else if subject == ExchangePlaced::SUBJECT {
        let placed: ExchangePlaced = event.decode()?;
        let reservations = placed
            .reservations
            .iter()
            .map(|reservation| {
                Ok((
                    id("reservations.entry_id", &reservation.entry_id, EntryId::parse)?,
                    id("reservations.reward_id", &reservation.reward_id, RewardId::parse)?,
                    points("reservations.points", reservation.points)?,
                ))
            })
            .collect::<Result<_, PolicyError>>()?;
        Ok((
            customer(&placed.customer_id)?,
            PageEvent::ExchangePlaced {
                exchange_id: id("exchange_id", &placed.exchange_id, ExchangeId::parse)?,
                product_sku: text(placed.product_sku),
                price_points: points("price_points", placed.price_points)?,
                gift_order_id: text(placed.gift_order_id),
                reservations,
                placed_at: time(placed.placed_at.as_ref()),
            },
        ))
    } else if subject == PointsRefunded::SUBJECT {
        let refunded: PointsRefunded = event.decode()?;
        let refunds = refunded
            .refunds
            .iter()
            .map(|refund| {
                Ok(Refund {
                    entry_id: id("refunds.entry_id", &refund.entry_id, EntryId::parse)?,
                    reward_id: id("refunds.reward_id", &refund.reward_id, RewardId::parse)?,
                    refunded: points("refunds.refunded_points", refund.refunded_points)?,
                    expired: points("refunds.expired_points", refund.expired_points)?,
                })
            })
            .collect::<Result<_, PolicyError>>()?;
        Ok((
            customer(&refunded.customer_id)?,
            PageEvent::PointsRefunded {
                exchange_id: id("exchange_id", &refunded.exchange_id, ExchangeId::parse)?,
                product_sku: text(refunded.product_sku),
                gift_order_id: text(refunded.gift_order_id),
                refunds,
                reason: text(refunded.reason),
                refunded_at: time(refunded.refunded_at.as_ref()),
            },
        ))
    } else {
        Err(PolicyError::Malformed(format!("no page event is published on {subject}")))
    }
}

fn customer(value: &str) -> Result<CustomerId, PolicyError> {
    id("customer_id", value, CustomerId::parse)
}

fn id<T>(field: &str, value: &str, parse: impl FnOnce(&str) -> Result<T, IdError>) -> Result<T, PolicyError> {
    parse(value).map_err(|e| PolicyError::Malformed(format!("{field}: {e}")))
}

fn points(field: &str, value: i64) -> Result<Points, PolicyError> {
    Points::new(value).map_err(|e| PolicyError::Malformed(format!("{field}: {e}")))
}

/// A timestamp the event carries, in milliseconds; `None` when absent.
fn time(timestamp: Option<&prost_types::Timestamp>) -> Option<i64> {
    timestamp.map(|at| millis(Some(at)))
}

/// proto3 sends an absent text as empty.
fn text(value: String) -> Option<String> {
    (!value.is_empty()).then_some(value)
}

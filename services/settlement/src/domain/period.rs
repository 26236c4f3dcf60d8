//! Settlement periods, pure: the spans of time settlements are recorded in
//! and closed by.
//!
//! A period is `[starts_at, ends_at)`, its bounds aligned to the Unix epoch
//! in steps of the configured [`PeriodLength`], so that daily periods run
//! from midnight to midnight UTC. A settlement lands in the period open when
//! it is *recorded* (never when its order was placed): the latest period
//! while it is open and its end has not passed, otherwise a new one. So a
//! period whose end passed takes nothing more, and once closed its totals
//! are final; a late reversal lands in the next period.

use std::fmt;
use std::str::FromStr;

use kernel::{Currency, ProductSku, Uuid, Vendor, derived_uuid};

use super::{Settlement, SettlementEvent, SettlementKind};

kernel::uuid_id!(
    /// One settlement period.
    PeriodId
);

impl PeriodId {
    /// The period the migration that introduced periods put every settlement
    /// recorded before them in (`00000000-0000-8000-8000-000000000000`):
    /// closed at the first run of the closing job, like any period whose end
    /// passed.
    pub const BEFORE_PERIODS: Self = Self(Uuid::from_u128(0x0000_0000_0000_8000_8000_0000_0000_0000));

    /// The one id of the period starting at `starts_at`: replicas opening
    /// the same period at once name the same row, and one insert wins. It
    /// begins with the start's 48 bits of milliseconds, as the system's
    /// time-ordered ids do, so later periods sort after earlier ones.
    pub fn starting_at(starts_at: i64) -> Self {
        let leading = u128::from(starts_at.max(0).unsigned_abs()) << 80;
        Self(derived_uuid(Uuid::from_u128(leading), b"SettlementPeriod"))
    }
}

const SECOND: i64 = 1_000;
const MINUTE: i64 = 60 * SECOND;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

/// How long a settlement period lasts: whole seconds that divide a day, or
/// whole days, so that every period starts where a day, an hour, … starts
/// in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeriodLength(i64);

/// Why a duration is not a period length.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeriodLengthError {
    #[error("must be a whole number of days, hours, minutes or seconds above zero, e.g. 1d, 6h, 15m or 30s")]
    NotADuration,
    #[error("must divide a day or be whole days, so that periods start at UTC midnight")]
    NotAligned,
}

impl PeriodLength {
    /// A day, the default: periods from midnight to midnight UTC.
    pub const DAY: Self = Self(DAY);

    /// A period of `millis` milliseconds.
    ///
    /// # Errors
    /// [`PeriodLengthError`] when it is not whole seconds above zero that
    /// divide a day or are whole days.
    pub fn new(millis: i64) -> Result<Self, PeriodLengthError> {
        if millis < SECOND || millis % SECOND != 0 {
            return Err(PeriodLengthError::NotADuration);
        }
        if DAY % millis != 0 && millis % DAY != 0 {
            return Err(PeriodLengthError::NotAligned);
        }
        Ok(Self(millis))
    }

    /// The length in milliseconds.
    pub fn millis(self) -> i64 {
        self.0
    }

    /// Where the aligned period holding `at` starts.
    fn start_of(self, at: i64) -> i64 {
        at - at.rem_euclid(self.0)
    }
}

const UNITS: [(char, i64); 4] = [('d', DAY), ('h', HOUR), ('m', MINUTE), ('s', SECOND)];

/// `1d`, `6h`, `15m`, `30s`: a number and its unit.
impl FromStr for PeriodLength {
    type Err = PeriodLengthError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let unit = text.chars().last().ok_or(PeriodLengthError::NotADuration)?;
        let (_, unit_millis) = UNITS.iter().find(|(name, _)| *name == unit).ok_or(PeriodLengthError::NotADuration)?;
        let digits = &text[..text.len() - unit.len_utf8()];
        // Digits only: `u32`'s parser would also take a sign.
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(PeriodLengthError::NotADuration);
        }
        let count = digits.parse::<u32>().map_err(|_| PeriodLengthError::NotADuration)?;
        Self::new(i64::from(count) * unit_millis)
    }
}

/// In the largest unit that counts it whole: `1d`, `6h`, `90s`.
impl fmt::Display for PeriodLength {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (unit, millis) = UNITS.iter().find(|(_, millis)| self.0 % millis == 0).unwrap_or(&UNITS[3]);
        write!(f, "{}{unit}", self.0 / millis)
    }
}

/// Where a period is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeriodStatus {
    /// Settlements land in it until its end.
    Open,
    /// Closed at `at` (milliseconds since the epoch): its totals are final.
    Closed { at: i64 },
}

/// A settlement period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    pub id: PeriodId,
    /// Milliseconds since the epoch, inclusive.
    pub starts_at: i64,
    /// Milliseconds since the epoch, exclusive.
    pub ends_at: i64,
    pub status: PeriodStatus,
    /// Moves on with every settlement recorded in it and when it closes: a
    /// closing that read an older version lost a race and decides again.
    pub version: i64,
}

/// The period a settlement recorded now lands in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Landing {
    /// The latest period, open and not yet ended.
    Into(Period),
    /// A new period, to be opened by the recording.
    Opening(Period),
}

/// Why a period cannot be closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotClosable {
    #[error("period {id} is closed already")]
    Closed { id: PeriodId },
    #[error("period {id} ends at {ends_at} ms, after {now} ms")]
    NotEnded { id: PeriodId, ends_at: i64, now: i64 },
}

impl Period {
    /// Where a settlement recorded at `now` lands, given the `latest`
    /// period (the one that starts last), if any: in it while it is open and
    /// has not ended; otherwise in a new period of `length`, aligned, that
    /// starts no earlier than the latest one's end. A period may therefore
    /// start after `now` (the latest one was closed early by a replica whose
    /// clock runs ahead), or be shorter than `length` (after a change of
    /// `SETTLEMENT_PERIOD`, until the next aligned boundary).
    pub fn landing(latest: Option<Self>, now: i64, length: PeriodLength) -> Landing {
        match latest {
            Some(latest) if latest.status == PeriodStatus::Open && now < latest.ends_at => Landing::Into(latest),
            latest => {
                let aligned = length.start_of(now);
                let starts_at = latest.map_or(aligned, |latest| aligned.max(latest.ends_at));
                let ends_at = length.start_of(starts_at) + length.millis();
                Landing::Opening(Self {
                    id: PeriodId::starting_at(starts_at),
                    starts_at,
                    ends_at,
                    status: PeriodStatus::Open,
                    version: 0,
                })
            }
        }
    }

    /// Whether the closing job should close it at `now`: open, and ended.
    pub fn is_due(&self, now: i64) -> bool {
        self.status == PeriodStatus::Open && self.ends_at <= now
    }

    /// Closes the period at `now` with its `totals`, which become final,
    /// and the event that says so.
    ///
    /// # Errors
    /// [`NotClosable`] when it is closed already or has not ended.
    pub fn close(&self, totals: Vec<PeriodTotal>, now: i64) -> Result<(Self, SettlementEvent), NotClosable> {
        if self.status != PeriodStatus::Open {
            return Err(NotClosable::Closed { id: self.id });
        }
        if !self.is_due(now) {
            return Err(NotClosable::NotEnded { id: self.id, ends_at: self.ends_at, now });
        }
        let closed = Self { status: PeriodStatus::Closed { at: now }, version: self.version + 1, ..self.clone() };
        let event = SettlementEvent::PeriodClosed { period: closed.clone(), totals };
        Ok((closed, event))
    }
}

/// What one vendor billed for one product in one currency over a period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeriodTotal {
    pub vendor: Vendor,
    pub product_sku: ProductSku,
    pub currency: Currency,
    /// Charges recorded in the period.
    pub charges: i64,
    /// Reversals recorded in the period.
    pub reversals: i64,
    /// Charges minus reversals, in minor units of `currency`.
    pub amount: i64,
}

impl PeriodTotal {
    /// The totals of `settlements` per vendor, product and currency,
    /// ordered by vendor, then product, then currency.
    pub fn of<'a>(settlements: impl IntoIterator<Item = &'a Settlement>) -> Vec<Self> {
        let mut totals: Vec<Self> = Vec::new();
        for settlement in settlements {
            let (vendor, sku, currency) = (&settlement.vendor, &settlement.product_sku, settlement.amount.currency());
            let index = match totals.iter().position(|t| t.is_for(vendor, sku, currency)) {
                Some(index) => index,
                None => {
                    totals.push(Self {
                        vendor: vendor.clone(),
                        product_sku: sku.clone(),
                        currency: currency.clone(),
                        charges: 0,
                        reversals: 0,
                        amount: 0,
                    });
                    totals.len() - 1
                }
            };
            let total = &mut totals[index];
            match settlement.kind {
                SettlementKind::Charge => total.charges += 1,
                SettlementKind::Reversal => total.reversals += 1,
            }
            total.amount += settlement.owed();
        }
        Self::sorted(totals)
    }

    fn is_for(&self, vendor: &Vendor, sku: &ProductSku, currency: &Currency) -> bool {
        self.vendor == *vendor && self.product_sku == *sku && self.currency == *currency
    }

    /// `totals` ordered by vendor, then product, then currency, as they are shown.
    pub fn sorted(mut totals: Vec<Self>) -> Vec<Self> {
        totals.sort_by(|a, b| {
            (&a.vendor, &a.product_sku, a.currency.as_str()).cmp(&(&b.vendor, &b.product_sku, b.currency.as_str()))
        });
        totals
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // a test that cannot proceed should stop right there

    use super::*;

    /// 2026-12-24T00:00:00Z.
    const CHRISTMAS_EVE: i64 = 1_798_070_400_000;

    fn open(starts_at: i64, ends_at: i64) -> Period {
        Period { id: PeriodId::starting_at(starts_at), starts_at, ends_at, status: PeriodStatus::Open, version: 3 }
    }

    fn opening(landing: Landing) -> (i64, i64) {
        match landing {
            Landing::Opening(period) => {
                assert_eq!(
                    (period.id, period.status, period.version),
                    (PeriodId::starting_at(period.starts_at), PeriodStatus::Open, 0)
                );
                (period.starts_at, period.ends_at)
            }
            Landing::Into(period) => panic!("landed in {period:?}, expected a new period"),
        }
    }

    #[test]
    fn lengths_are_whole_units_that_keep_periods_on_utc_days() {
        assert_eq!("1d".parse::<PeriodLength>(), Ok(PeriodLength::DAY));
        assert_eq!("6h".parse::<PeriodLength>().map(PeriodLength::millis), Ok(6 * HOUR));
        assert_eq!("15m".parse::<PeriodLength>().map(PeriodLength::millis), Ok(15 * MINUTE));
        assert_eq!("2s".parse::<PeriodLength>().map(PeriodLength::millis), Ok(2 * SECOND));
        assert_eq!("7d".parse::<PeriodLength>().map(PeriodLength::millis), Ok(7 * DAY));
        for bad in ["", "d", "0d", "1", "1w", "-1h", "+1h", "1.5h", "h1", "1 h", "99999999999d"] {
            assert_eq!(bad.parse::<PeriodLength>(), Err(PeriodLengthError::NotADuration), "{bad:?}");
        }
        for unaligned in ["7h", "25h", "7s"] {
            assert_eq!(unaligned.parse::<PeriodLength>(), Err(PeriodLengthError::NotAligned), "{unaligned:?}");
        }
        assert_eq!(PeriodLength::new(1_500), Err(PeriodLengthError::NotADuration));
        let shown: Vec<String> =
            ["1d", "24h", "90m", "30s", "2d"].iter().map(|t| t.parse::<PeriodLength>().unwrap().to_string()).collect();
        assert_eq!(shown, ["1d", "1d", "90m", "30s", "2d"]);
    }

    #[test]
    fn the_first_settlement_opens_the_utc_day_it_is_recorded_in() {
        let noon = CHRISTMAS_EVE + 12 * HOUR;
        assert_eq!(opening(Period::landing(None, noon, PeriodLength::DAY)), (CHRISTMAS_EVE, CHRISTMAS_EVE + DAY));
        let hourly = PeriodLength::new(HOUR).unwrap();
        assert_eq!(opening(Period::landing(None, noon + 59 * MINUTE, hourly)), (noon, noon + HOUR));
    }

    #[test]
    fn a_settlement_lands_in_the_latest_period_while_it_is_open_and_has_not_ended() {
        let today = open(CHRISTMAS_EVE, CHRISTMAS_EVE + DAY);
        let landing = Period::landing(Some(today.clone()), CHRISTMAS_EVE + DAY - 1, PeriodLength::DAY);
        assert_eq!(landing, Landing::Into(today));
    }

    #[test]
    fn once_its_end_passed_a_period_takes_nothing_more_closed_or_not() {
        let yesterday = open(CHRISTMAS_EVE - DAY, CHRISTMAS_EVE);
        let still_open = Period::landing(Some(yesterday.clone()), CHRISTMAS_EVE, PeriodLength::DAY);
        assert_eq!(opening(still_open), (CHRISTMAS_EVE, CHRISTMAS_EVE + DAY));
        let (closed, _) = yesterday.close(Vec::new(), CHRISTMAS_EVE + 5).unwrap();
        let after_closing = Period::landing(Some(closed), CHRISTMAS_EVE + 3 * DAY + 1, PeriodLength::DAY);
        assert_eq!(
            opening(after_closing),
            (CHRISTMAS_EVE + 3 * DAY, CHRISTMAS_EVE + 4 * DAY),
            "days with nothing recorded have no period"
        );
    }

    #[test]
    fn a_period_closed_early_by_a_clock_running_ahead_sends_later_settlements_to_the_next() {
        let (closed_early, _) =
            open(CHRISTMAS_EVE, CHRISTMAS_EVE + DAY).close(Vec::new(), CHRISTMAS_EVE + DAY).unwrap();
        let landing = Period::landing(Some(closed_early), CHRISTMAS_EVE + DAY - 10, PeriodLength::DAY);
        assert_eq!(opening(landing), (CHRISTMAS_EVE + DAY, CHRISTMAS_EVE + 2 * DAY));
    }

    #[test]
    fn after_the_length_changes_the_next_period_starts_where_the_last_ended_and_ends_on_the_new_boundary() {
        let hour = open(CHRISTMAS_EVE + 13 * HOUR, CHRISTMAS_EVE + 14 * HOUR);
        let landing = Period::landing(Some(hour), CHRISTMAS_EVE + 14 * HOUR + 10, PeriodLength::DAY);
        assert_eq!(opening(landing), (CHRISTMAS_EVE + 14 * HOUR, CHRISTMAS_EVE + DAY));
        let before_periods = Period { id: PeriodId::BEFORE_PERIODS, ..open(CHRISTMAS_EVE + 5, CHRISTMAS_EVE + 77) };
        let landing = Period::landing(Some(before_periods), CHRISTMAS_EVE + 100, PeriodLength::DAY);
        assert_eq!(opening(landing), (CHRISTMAS_EVE + 77, CHRISTMAS_EVE + DAY));
    }

    #[test]
    fn a_period_closes_once_after_its_end_with_its_version_moved_on() {
        let today = open(CHRISTMAS_EVE, CHRISTMAS_EVE + DAY);
        assert_eq!(
            today.close(Vec::new(), CHRISTMAS_EVE + DAY - 1).unwrap_err(),
            NotClosable::NotEnded { id: today.id, ends_at: CHRISTMAS_EVE + DAY, now: CHRISTMAS_EVE + DAY - 1 }
        );
        let (closed, event) = today.close(Vec::new(), CHRISTMAS_EVE + DAY).unwrap();
        assert_eq!((closed.status, closed.version), (PeriodStatus::Closed { at: CHRISTMAS_EVE + DAY }, 4));
        assert_eq!(event, SettlementEvent::PeriodClosed { period: closed.clone(), totals: Vec::new() });
        assert!(!closed.is_due(CHRISTMAS_EVE + 2 * DAY));
        assert_eq!(
            closed.close(Vec::new(), CHRISTMAS_EVE + 2 * DAY).unwrap_err(),
            NotClosable::Closed { id: today.id }
        );
    }

    #[test]
    fn period_ids_are_one_per_start_and_sort_by_it() {
        assert_eq!(PeriodId::starting_at(CHRISTMAS_EVE), PeriodId::starting_at(CHRISTMAS_EVE));
        assert!(PeriodId::starting_at(CHRISTMAS_EVE) < PeriodId::starting_at(CHRISTMAS_EVE + DAY));
        assert!(PeriodId::BEFORE_PERIODS < PeriodId::starting_at(0));
        assert_eq!(PeriodId::BEFORE_PERIODS.to_string(), "00000000-0000-8000-8000-000000000000");
    }
}

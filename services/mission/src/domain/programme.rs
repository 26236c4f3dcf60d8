//! The event programme, pure: events and their windows, how often a player
//! may achieve a mission, and the slot each achievement takes.
//!
//! Times are milliseconds since the Unix epoch, UTC; they are shown to
//! people in RFC 3339 (`2027-01-10T00:00:00Z`).

use std::fmt;
use std::num::NonZeroU32;

pub use kernel::programme::{
    EndsBeforeStart, LAUNCH, Operator, ProgrammeEventId, ProgrammeEventIdError, Title, TitleError, Window,
};
use kernel::{CustomerId, rfc3339, utc_date};

use super::MissionCode;

const DAY_MILLIS: i64 = 24 * 60 * 60 * 1000;

/// The game server's id of one achievement: the idempotency key of a
/// repeatable mission. 1 to 128 of letters, digits, `-`, `_`, `.` and `:`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AchievementId(String);

/// Why a text is not an achievement id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AchievementIdError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most 128 characters")]
    TooLong,
    #[error("may only contain letters, digits, '-', '_', '.' and ':'")]
    BadCharacter,
}

impl AchievementId {
    /// Parses an achievement id.
    ///
    /// # Errors
    /// When `value` is empty, longer than 128 characters, or has other characters.
    pub fn parse(value: &str) -> Result<Self, AchievementIdError> {
        if value.is_empty() {
            return Err(AchievementIdError::Empty);
        }
        if value.len() > 128 {
            return Err(AchievementIdError::TooLong);
        }
        if !value.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':')) {
            return Err(AchievementIdError::BadCharacter);
        }
        Ok(Self(value.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AchievementId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An event of the programme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgrammeEvent {
    pub id: ProgrammeEventId,
    pub title: String,
    pub window: Window,
}

impl ProgrammeEvent {
    /// Checks that the event is open at `now`.
    ///
    /// # Errors
    /// [`ProgrammeRuleViolation::NotOpenYet`] or [`ProgrammeRuleViolation::Ended`].
    pub fn check_open(&self, now: i64) -> Result<(), ProgrammeRuleViolation> {
        if now < self.window.starts_at() {
            return Err(ProgrammeRuleViolation::NotOpenYet {
                event: self.id.clone(),
                opens_at: self.window.starts_at(),
            });
        }
        self.check_not_ended(now)
    }

    /// Checks that missions may still be added at `now`: the event has not ended.
    ///
    /// # Errors
    /// [`ProgrammeRuleViolation::Ended`].
    pub fn check_not_ended(&self, now: i64) -> Result<(), ProgrammeRuleViolation> {
        match self.window.ends_at() {
            Some(ended_at) if ended_at <= now => {
                Err(ProgrammeRuleViolation::Ended { event: self.id.clone(), ended_at })
            }
            _ => Ok(()),
        }
    }
}

/// How often one player may achieve a mission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissionLimit {
    /// Once per event: the mission's code is the idempotency key.
    Once,
    /// Up to this many times per event.
    Times(NonZeroU32),
    /// Once per UTC day of the event.
    Daily,
}

/// The place an achievement takes among a player's achievements of one
/// mission: `1` for [`MissionLimit::Once`], the ordinal `1..=n` for
/// [`MissionLimit::Times`], the day number since the epoch for
/// [`MissionLimit::Daily`]. (customer, code, slot) is unique in the store,
/// so two achievements racing for the same slot cannot both be kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Slot(i64);

impl Slot {
    /// The slot of a once-per-event mission.
    pub const ONCE: Self = Self(1);

    /// A slot as stored.
    pub fn from_stored(value: i64) -> Self {
        Self(value)
    }

    /// The slot as stored.
    pub fn value(self) -> i64 {
        self.0
    }
}

impl MissionLimit {
    /// Whether a player may achieve the mission more than once, so that
    /// each achievement needs the game's [`AchievementId`].
    pub fn is_repeatable(self) -> bool {
        !matches!(self, Self::Once)
    }

    /// The slot `customer`'s next achievement of `code` takes at `now`,
    /// given the slots their earlier achievements took.
    ///
    /// # Errors
    /// [`ProgrammeRuleViolation::TimesReached`] or
    /// [`ProgrammeRuleViolation::AchievedToday`] beyond the limit;
    /// [`ProgrammeRuleViolation::AchievedOnce`] for a second achievement of a
    /// once-per-event mission (which callers answer with the first instead).
    pub fn next_slot(
        self,
        code: &MissionCode,
        customer: &CustomerId,
        taken: &[Slot],
        now: i64,
    ) -> Result<Slot, ProgrammeRuleViolation> {
        match self {
            Self::Once if taken.is_empty() => Ok(Slot::ONCE),
            Self::Once => Err(ProgrammeRuleViolation::AchievedOnce { code: code.clone(), customer: customer.clone() }),
            Self::Times(times) => {
                let achieved = u32::try_from(taken.len()).unwrap_or(u32::MAX);
                if achieved >= times.get() {
                    return Err(ProgrammeRuleViolation::TimesReached {
                        code: code.clone(),
                        customer: customer.clone(),
                        times: times.get(),
                    });
                }
                Ok(Slot(i64::from(achieved) + 1))
            }
            Self::Daily => {
                let today = Slot(now.div_euclid(DAY_MILLIS));
                if taken.contains(&today) {
                    return Err(ProgrammeRuleViolation::AchievedToday {
                        code: code.clone(),
                        customer: customer.clone(),
                        day: today.0,
                    });
                }
                Ok(today)
            }
        }
    }
}

impl fmt::Display for MissionLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Once => f.write_str("once per event"),
            Self::Times(times) => write!(f, "{times} times per player"),
            Self::Daily => f.write_str("once per day"),
        }
    }
}

/// A rule of the programme that an achievement or a change would break.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProgrammeRuleViolation {
    #[error("event {event} opens at {}", rfc3339(*opens_at))]
    NotOpenYet { event: ProgrammeEventId, opens_at: i64 },
    #[error("event {event} ended at {}", rfc3339(*ended_at))]
    Ended { event: ProgrammeEventId, ended_at: i64 },
    #[error("mission {code} may be achieved once per event; {customer} has achieved it")]
    AchievedOnce { code: MissionCode, customer: CustomerId },
    #[error("mission {code} may be achieved {times} times per player; {customer} has achieved it {times} times")]
    TimesReached { code: MissionCode, customer: CustomerId, times: u32 },
    #[error("mission {code} may be achieved once per day; {customer} achieved it today ({} UTC) already", day_date(*day))]
    AchievedToday { code: MissionCode, customer: CustomerId, day: i64 },
}

/// The calendar date of day `day` since the epoch (`2026-12-24`).
fn day_date(day: i64) -> String {
    utc_date(day.saturating_mul(DAY_MILLIS))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // a test that cannot proceed should stop right there

    use super::*;

    /// 2026-12-24T00:00:00Z.
    const CHRISTMAS_EVE: i64 = 1_798_070_400_000;
    /// 2027-01-10T00:00:00Z.
    const JAN_10: i64 = 1_799_539_200_000;

    fn winter() -> ProgrammeEvent {
        ProgrammeEvent {
            id: ProgrammeEventId::parse("WINTER-2026").unwrap(),
            title: "Winter 2026".into(),
            window: Window::new(CHRISTMAS_EVE, JAN_10).unwrap(),
        }
    }

    fn code() -> MissionCode {
        MissionCode::parse("WIN_A_MATCH").unwrap()
    }

    fn player() -> CustomerId {
        CustomerId::parse("player-1").unwrap()
    }

    #[test]
    fn an_event_is_open_from_its_start_until_just_before_its_end() {
        let event = winter();
        assert!(event.check_open(CHRISTMAS_EVE).is_ok());
        assert!(event.check_open(JAN_10 - 1).is_ok());
        assert_eq!(
            event.check_open(JAN_10).unwrap_err().to_string(),
            "event WINTER-2026 ended at 2027-01-10T00:00:00Z"
        );
        assert_eq!(
            event.check_open(CHRISTMAS_EVE - 1).unwrap_err().to_string(),
            "event WINTER-2026 opens at 2026-12-24T00:00:00Z"
        );
    }

    #[test]
    fn an_open_ended_event_never_closes() {
        let launch =
            ProgrammeEvent { id: ProgrammeEventId::launch(), title: "Launch".into(), window: Window::open_ended(0) };
        assert!(launch.check_open(i64::MAX).is_ok());
        assert!(launch.check_not_ended(i64::MAX).is_ok());
    }

    #[test]
    fn missions_may_be_added_until_the_event_ends() {
        let event = winter();
        assert!(event.check_not_ended(CHRISTMAS_EVE - 1).is_ok(), "before it opens");
        assert!(event.check_not_ended(JAN_10 - 1).is_ok());
        assert!(matches!(event.check_not_ended(JAN_10), Err(ProgrammeRuleViolation::Ended { .. })));
    }

    #[test]
    fn a_once_mission_takes_slot_one_and_no_other() {
        assert_eq!(MissionLimit::Once.next_slot(&code(), &player(), &[], 0), Ok(Slot::ONCE));
        assert!(matches!(
            MissionLimit::Once.next_slot(&code(), &player(), &[Slot::ONCE], 0),
            Err(ProgrammeRuleViolation::AchievedOnce { .. })
        ));
    }

    #[test]
    fn a_times_mission_takes_ordinals_up_to_its_limit() {
        let three = MissionLimit::Times(NonZeroU32::new(3).unwrap());
        assert_eq!(three.next_slot(&code(), &player(), &[], 0), Ok(Slot(1)));
        assert_eq!(three.next_slot(&code(), &player(), &[Slot(1), Slot(2)], 0), Ok(Slot(3)));
        let refused = three.next_slot(&code(), &player(), &[Slot(1), Slot(2), Slot(3)], 0).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "mission WIN_A_MATCH may be achieved 3 times per player; player-1 has achieved it 3 times"
        );
    }

    #[test]
    fn a_daily_mission_takes_the_day_and_refuses_a_second_one_that_day() {
        let noon = CHRISTMAS_EVE + 12 * 3_600_000;
        let slot = MissionLimit::Daily.next_slot(&code(), &player(), &[], noon).unwrap();
        assert_eq!(slot, Slot(CHRISTMAS_EVE / DAY_MILLIS));
        let refused = MissionLimit::Daily.next_slot(&code(), &player(), &[slot], CHRISTMAS_EVE + DAY_MILLIS - 1);
        assert_eq!(
            refused.unwrap_err().to_string(),
            "mission WIN_A_MATCH may be achieved once per day; player-1 achieved it today (2026-12-24 UTC) already"
        );
        let next_day = MissionLimit::Daily.next_slot(&code(), &player(), &[slot], CHRISTMAS_EVE + DAY_MILLIS);
        assert_eq!(next_day, Ok(Slot(slot.value() + 1)), "the UTC day turned");
    }

    #[test]
    fn only_once_missions_need_no_achievement_id() {
        assert!(!MissionLimit::Once.is_repeatable());
        assert!(MissionLimit::Daily.is_repeatable());
        assert!(MissionLimit::Times(NonZeroU32::MIN).is_repeatable());
    }

    #[test]
    fn achievement_ids_and_titles_are_parsed() {
        assert!(AchievementId::parse("match:2026-12-24:42").is_ok());
        assert_eq!(AchievementId::parse(""), Err(AchievementIdError::Empty));
        assert_eq!(AchievementId::parse("a b"), Err(AchievementIdError::BadCharacter));
        assert_eq!(AchievementId::parse(&"a".repeat(129)), Err(AchievementIdError::TooLong));
        assert!(Title::parse("Winter 2026").is_ok());
        assert_eq!(Title::parse("  "), Err(TitleError::Blank));
        assert_eq!(Title::parse(&"é".repeat(201)), Err(TitleError::TooLong));
    }
}

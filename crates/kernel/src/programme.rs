//! The event programme's shared vocabulary: which event, when it is open,
//! who changed it, and how its times are shown to people.
//!
//! The mission context owns the programme; the gift context sells products
//! in its events' windows from a copy it keeps. Both speak these values.
//! Times are milliseconds since the Unix epoch, UTC; they are shown in
//! RFC 3339 ([`crate::utc`]).

use std::fmt;

use crate::utc::rfc3339;

/// The event everything belonged to before events could be scheduled:
/// always open, never ending.
pub const LAUNCH: &str = "LAUNCH";

/// An event of the programme: 1 to 64 of `A-Z`, `0-9`, `_` and `-`
/// (`WINTER-2026`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProgrammeEventId(String);

/// Why a text is not an event id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProgrammeEventIdError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most 64 characters")]
    TooLong,
    #[error("may only contain A-Z, 0-9, '_' and '-'")]
    BadCharacter,
}

impl ProgrammeEventId {
    /// Parses an event id.
    ///
    /// # Errors
    /// When `value` is empty, longer than 64 characters, or has other characters.
    pub fn parse(value: &str) -> Result<Self, ProgrammeEventIdError> {
        if value.is_empty() {
            return Err(ProgrammeEventIdError::Empty);
        }
        if value.len() > 64 {
            return Err(ProgrammeEventIdError::TooLong);
        }
        if !value.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_' || b == b'-') {
            return Err(ProgrammeEventIdError::BadCharacter);
        }
        Ok(Self(value.to_owned()))
    }

    /// The always-open event of what predates the programme.
    pub fn launch() -> Self {
        Self(LAUNCH.to_owned())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProgrammeEventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A title or name shown to players (an event's, a mission's, a product's):
/// 1 to 200 characters, not only blanks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Title(String);

/// Why a text is not a title.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TitleError {
    #[error("must not be blank")]
    Blank,
    #[error("must be at most 200 characters")]
    TooLong,
}

impl Title {
    /// Parses a title.
    ///
    /// # Errors
    /// When `value` is blank or longer than 200 characters.
    pub fn parse(value: &str) -> Result<Self, TitleError> {
        if value.trim().is_empty() {
            return Err(TitleError::Blank);
        }
        if value.chars().count() > 200 {
            return Err(TitleError::TooLong);
        }
        Ok(Self(value.to_owned()))
    }

    /// The title as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The title as text, owned.
    pub fn into_string(self) -> String {
        self.0
    }
}

/// Who changed the programme or the catalogue: the subject of an operator's token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator(String);

impl Operator {
    /// The operator named `subject` (a verified token's, never empty).
    pub fn new(subject: impl Into<String>) -> Self {
        Self(subject.into())
    }

    /// The operator's name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// When an event is open (its missions achieved, its products sold): from
/// `starts_at` (inclusive) until `ends_at` (exclusive), or for ever when it
/// has no end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    starts_at: i64,
    ends_at: Option<i64>,
}

/// Why two times make no window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("must be after starts_at ({})", rfc3339(*starts_at))]
pub struct EndsBeforeStart {
    pub starts_at: i64,
}

impl Window {
    /// The window from `starts_at` until `ends_at`.
    ///
    /// # Errors
    /// [`EndsBeforeStart`] unless `ends_at` is after `starts_at`.
    pub fn new(starts_at: i64, ends_at: i64) -> Result<Self, EndsBeforeStart> {
        if ends_at <= starts_at {
            return Err(EndsBeforeStart { starts_at });
        }
        Ok(Self { starts_at, ends_at: Some(ends_at) })
    }

    /// The window from `starts_at` until `ends_at`, or for ever without one.
    ///
    /// # Errors
    /// [`EndsBeforeStart`] unless `ends_at`, if any, is after `starts_at`.
    pub fn from_times(starts_at: i64, ends_at: Option<i64>) -> Result<Self, EndsBeforeStart> {
        match ends_at {
            Some(ends_at) => Self::new(starts_at, ends_at),
            None => Ok(Self::open_ended(starts_at)),
        }
    }

    /// The window that opened at `starts_at` and never closes.
    pub fn open_ended(starts_at: i64) -> Self {
        Self { starts_at, ends_at: None }
    }

    /// When it opens.
    pub fn starts_at(&self) -> i64 {
        self.starts_at
    }

    /// When it closes, if ever.
    pub fn ends_at(&self) -> Option<i64> {
        self.ends_at
    }

    /// Whether it is open at `now`.
    pub fn is_open_at(&self, now: i64) -> bool {
        self.starts_at <= now && self.ends_at.is_none_or(|ends_at| now < ends_at)
    }
}

/// The ids of the events open at `now`, of `events` given as (id, window):
/// what players are shown of a catalogue, in mission and in gift alike.
pub fn open_at<'a>(
    events: impl IntoIterator<Item = (&'a ProgrammeEventId, &'a Window)>,
    now: i64,
) -> Vec<ProgrammeEventId> {
    events.into_iter().filter(|(_, window)| window.is_open_at(now)).map(|(id, _)| id.clone()).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // a test that cannot proceed should stop right there

    use super::*;

    /// 2026-12-24T00:00:00Z.
    const CHRISTMAS_EVE: i64 = 1_798_070_400_000;
    /// 2027-01-10T00:00:00Z.
    const JAN_10: i64 = 1_799_539_200_000;

    #[test]
    fn a_window_is_open_from_its_start_until_just_before_its_end() {
        let winter = Window::new(CHRISTMAS_EVE, JAN_10).unwrap();
        assert!(!winter.is_open_at(CHRISTMAS_EVE - 1));
        assert!(winter.is_open_at(CHRISTMAS_EVE));
        assert!(winter.is_open_at(JAN_10 - 1));
        assert!(!winter.is_open_at(JAN_10));
        assert!(Window::open_ended(0).is_open_at(i64::MAX));
    }

    #[test]
    fn a_window_ends_after_it_starts() {
        assert!(Window::new(CHRISTMAS_EVE, CHRISTMAS_EVE + 1).is_ok());
        assert_eq!(
            Window::new(CHRISTMAS_EVE, CHRISTMAS_EVE).unwrap_err().to_string(),
            "must be after starts_at (2026-12-24T00:00:00Z)"
        );
        assert!(Window::new(JAN_10, CHRISTMAS_EVE).is_err());
    }

    #[test]
    fn event_ids_look_like_winter_2026() {
        assert!(ProgrammeEventId::parse("WINTER-2026").is_ok());
        assert_eq!(ProgrammeEventId::parse("LAUNCH"), Ok(ProgrammeEventId::launch()));
        assert_eq!(ProgrammeEventId::parse(""), Err(ProgrammeEventIdError::Empty));
        assert_eq!(ProgrammeEventId::parse("winter"), Err(ProgrammeEventIdError::BadCharacter));
        assert_eq!(ProgrammeEventId::parse(&"W".repeat(65)), Err(ProgrammeEventIdError::TooLong));
    }
}

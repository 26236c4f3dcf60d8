//! Times as every context prints them to people: milliseconds since the Unix
//! epoch, UTC, in RFC 3339 (`2027-01-10T00:00:00Z`). One calendar, the
//! `time` crate's, for every message that names a time.

/// `millis` in RFC 3339, UTC (`2027-01-10T00:00:00Z`), with milliseconds
/// only when there are any.
pub fn rfc3339(millis: i64) -> String {
    let at = utc(millis);
    let time = format!("{:02}:{:02}:{:02}", at.hour(), at.minute(), at.second());
    match at.millisecond() {
        0 => format!("{}T{time}Z", date(at.date())),
        ms => format!("{}T{time}.{ms:03}Z", date(at.date())),
    }
}

/// The calendar date, UTC, `millis` after the epoch falls on (`2026-12-24`).
pub fn utc_date(millis: i64) -> String {
    date(utc(millis).date())
}

fn date(date: time::Date) -> String {
    format!("{:04}-{:02}-{:02}", date.year(), u8::from(date.month()), date.day())
}

/// The UTC time `millis` after the epoch; beyond the calendar's range (years
/// ±9999), its nearest end, as a message only ever prints it.
fn utc(millis: i64) -> time::OffsetDateTime {
    let nanos = i128::from(millis) * 1_000_000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap_or(if millis < 0 {
        time::PrimitiveDateTime::MIN.assume_utc()
    } else {
        time::PrimitiveDateTime::MAX.assume_utc()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-12-24T00:00:00Z.
    const CHRISTMAS_EVE: i64 = 1_798_070_400_000;
    /// 2027-01-10T00:00:00Z.
    const JAN_10: i64 = 1_799_539_200_000;

    #[test]
    fn times_are_shown_in_rfc_3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(JAN_10), "2027-01-10T00:00:00Z");
        assert_eq!(rfc3339(CHRISTMAS_EVE + 13 * 3_600_000 + 5 * 60_000 + 9_000 + 42), "2026-12-24T13:05:09.042Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00Z", "a leap day");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn a_time_falls_on_its_utc_date() {
        assert_eq!(utc_date(CHRISTMAS_EVE), "2026-12-24");
        assert_eq!(utc_date(CHRISTMAS_EVE + 24 * 3_600_000 - 1), "2026-12-24");
        assert_eq!(utc_date(i64::MAX), "9999-12-31", "beyond the calendar, its end");
    }
}

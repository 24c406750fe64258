//! German civil time for the VwZG §5a (4) deadline, without a tz database: CET (UTC+1), and
//! CEST (UTC+2) from the last Sunday of March 01:00 UTC to the last Sunday of October
//! 01:00 UTC (the EU rule in force since 1996; earlier years are not needed for evidence).

use time::{Date, Duration, Month, OffsetDateTime, Time, UtcOffset, Weekday};

const CET: i8 = 1;
const CEST: i8 = 2;

fn last_sunday(year: i32, month: Month) -> Option<Date> {
    let mut d = Date::from_calendar_date(year, month, month.length(year)).ok()?;
    while d.weekday() != Weekday::Sunday {
        d = d.previous_day()?;
    }
    Some(d)
}

fn offset(hours: i8) -> UtcOffset {
    UtcOffset::from_hms(hours, 0, 0).unwrap_or(UtcOffset::UTC)
}

/// The German UTC offset in force at instant `t`.
pub(crate) fn offset_at(t: OffsetDateTime) -> UtcOffset {
    let utc = t.to_offset(UtcOffset::UTC);
    let year = utc.year();
    let switch = |m| {
        last_sunday(year, m).map(|d| d.with_time(Time::MIDNIGHT).assume_utc() + Duration::hours(1))
    };
    match (switch(Month::March), switch(Month::October)) {
        (Some(start), Some(end)) if utc >= start && utc < end => offset(CEST),
        _ => offset(CET),
    }
}

/// The instant German local midnight starts `date`. Midnight is never inside a switch
/// (they happen at 02:00/03:00 local), so the offset follows from the date alone.
pub(crate) fn start_of_day(date: Date) -> OffsetDateTime {
    let summer = match (
        last_sunday(date.year(), Month::March),
        last_sunday(date.year(), Month::October),
    ) {
        (Some(start), Some(end)) => date > start && date <= end,
        _ => false,
    };
    date.with_time(Time::MIDNIGHT)
        .assume_offset(offset(if summer { CEST } else { CET }))
}

/// The German calendar date of instant `t`.
pub(crate) fn local_date(t: OffsetDateTime) -> Date {
    t.to_offset(offset_at(t)).date()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    #[test]
    fn switches_at_one_utc_on_the_last_sundays() {
        assert_eq!(
            offset_at(datetime!(2026-03-29 00:59:59 UTC)).whole_hours(),
            1
        );
        assert_eq!(offset_at(datetime!(2026-03-29 01:00 UTC)).whole_hours(), 2);
        assert_eq!(
            offset_at(datetime!(2026-10-25 00:59:59 UTC)).whole_hours(),
            2
        );
        assert_eq!(offset_at(datetime!(2026-10-25 01:00 UTC)).whole_hours(), 1);
        assert_eq!(offset_at(datetime!(2026-12-31 23:00 UTC)).whole_hours(), 1);
    }

    #[test]
    fn local_date_and_midnight() {
        // 23:30 UTC in summer is already the next day in Berlin.
        assert_eq!(
            local_date(datetime!(2026-07-01 22:30 UTC)),
            date!(2026 - 07 - 02)
        );
        assert_eq!(
            local_date(datetime!(2026-01-01 22:30 UTC)),
            date!(2026 - 01 - 01)
        );
        assert_eq!(
            start_of_day(date!(2026 - 03 - 29)),
            datetime!(2026-03-28 23:00 UTC)
        );
        assert_eq!(
            start_of_day(date!(2026 - 03 - 30)),
            datetime!(2026-03-29 22:00 UTC)
        );
        assert_eq!(
            start_of_day(date!(2026 - 10 - 25)),
            datetime!(2026-10-24 22:00 UTC)
        );
        assert_eq!(
            start_of_day(date!(2026 - 10 - 26)),
            datetime!(2026-10-25 23:00 UTC)
        );
    }
}

//! Japan time and the service windows (phone 9:00–21:00, repair dispatch).
//!
//! Pure arithmetic on Unix seconds (UTC): nothing here reads the clock. Japan is UTC+9 all
//! year (no daylight saving), so a JST wall time is the UTC one shifted by nine hours.
//! Inputs outside years 1–9999 are clamped to that range rather than overflowing: no
//! function here panics, whatever `i64` it is given.

use mimamori_contracts::RepairWindow;
use std::fmt;
use time::Weekday;

/// Japan's offset from UTC, in seconds.
pub const JST_OFFSET_SECS: i64 = 9 * 3600;
const DAY_SECS: i64 = 86_400;
/// 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z: the range every input is clamped to.
const MIN_UNIX: i64 = -62_135_596_800;
const MAX_UNIX: i64 = 253_402_300_799;

/// The desk's phones: 「電話によるご連絡・お問い合わせ対応時間は9：00～21：00（年中無休）」.
pub const PHONE_OPENS_HOUR: u8 = 9;
/// Phones close at 21:00 (21:00 itself is closed).
pub const PHONE_CLOSES_HOUR: u8 = 21;

/// A wall-clock time in Japan, to the minute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JstTime {
    pub year: i32,
    /// 1–12.
    pub month: u8,
    /// 1–31.
    pub day: u8,
    /// 0–23.
    pub hour: u8,
    /// 0–59.
    pub minute: u8,
    pub weekday: Weekday,
}

impl fmt::Display for JstTime {
    /// `2026-11-03 14:05 (JST)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02} {:02}:{:02} (JST)",
            self.year, self.month, self.day, self.hour, self.minute
        )
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (the "days from civil" algorithm).
pub(crate) fn days_from_civil(year: i64, month: u8, day: u8) -> i64 {
    let month = i64::from(month);
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date of a day count since 1970-01-01: (year, month, day).
fn civil_from_days(days: i64) -> (i64, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    // The ranges are guaranteed by the algorithm: month 1–12, day 1–31.
    (year, month as u8, day as u8)
}

pub(crate) fn is_leap_year(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// Days in a month (0 for a month outside 1–12).
pub(crate) fn days_in_month(year: i64, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => 0,
    }
}

fn weekday_of_days(days: i64) -> Weekday {
    // 1970-01-01 was a Thursday (index 3 counting Monday as 0).
    match (days + 3).rem_euclid(7) {
        0 => Weekday::Monday,
        1 => Weekday::Tuesday,
        2 => Weekday::Wednesday,
        3 => Weekday::Thursday,
        4 => Weekday::Friday,
        5 => Weekday::Saturday,
        _ => Weekday::Sunday,
    }
}

fn clamp(unix: i64) -> i64 {
    unix.clamp(MIN_UNIX, MAX_UNIX)
}

/// Japan time of a Unix time (seconds are dropped).
pub fn jst(unix: i64) -> JstTime {
    let local = clamp(unix) + JST_OFFSET_SECS;
    let days = local.div_euclid(DAY_SECS);
    let secs_of_day = local.rem_euclid(DAY_SECS);
    let (year, month, day) = civil_from_days(days);
    JstTime {
        // Clamping keeps the year within 1–10000.
        year: year as i32,
        month,
        day,
        hour: (secs_of_day / 3600) as u8,
        minute: (secs_of_day % 3600 / 60) as u8,
        weekday: weekday_of_days(days),
    }
}

/// The Unix time of a Japan wall time, or `None` when it is no such time (month 13,
/// 31 April, 24:00, a year outside 1–9999).
pub fn unix_of_jst(year: i32, month: u8, day: u8, hour: u8, minute: u8) -> Option<i64> {
    let year = i64::from(year);
    if !(1..=9999).contains(&year) || hour > 23 || minute > 59 {
        return None;
    }
    if day == 0 || day > days_in_month(year, month) {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(days * DAY_SECS + i64::from(hour) * 3600 + i64::from(minute) * 60 - JST_OFFSET_SECS)
}

/// Start of the JST day holding `unix` (00:00 JST), as a Unix time.
fn jst_midnight(unix: i64) -> i64 {
    let local = clamp(unix) + JST_OFFSET_SECS;
    local.div_euclid(DAY_SECS) * DAY_SECS - JST_OFFSET_SECS
}

/// Seconds since 00:00 JST of the day holding `unix`.
fn jst_secs_of_day(unix: i64) -> i64 {
    (clamp(unix) + JST_OFFSET_SECS).rem_euclid(DAY_SECS)
}

/// The calendar month (year, month 1–12) holding `unix` in Japan time.
pub fn jst_month(unix: i64) -> (i32, u8) {
    let t = jst(unix);
    (t.year, t.month)
}

/// The Unix-second bounds of a calendar month in Japan time: start inclusive (the 1st,
/// 00:00 JST), end exclusive (the next month's 1st, 00:00 JST). `None` for a month outside
/// 1–12 or a year outside 1–9999.
pub fn month_bounds_jst(year: i32, month: u8) -> Option<(i64, i64)> {
    unix_of_jst(year, month, 1, 0, 0)?;
    Some(bounds_of_month(i64::from(year), month))
}

/// Month bounds for a valid (year, month); computed directly so December 9999 still has an end.
fn bounds_of_month(year: i64, month: u8) -> (i64, i64) {
    let start = days_from_civil(year, month, 1) * DAY_SECS - JST_OFFSET_SECS;
    let (next_year, next_month) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    let end = days_from_civil(next_year, next_month, 1) * DAY_SECS - JST_OFFSET_SECS;
    (start, end)
}

/// The bounds of the JST calendar month holding `unix` (never fails).
pub fn month_bounds_of(unix: i64) -> (i64, i64) {
    let (year, month) = jst_month(unix);
    bounds_of_month(i64::from(year), month)
}

/// Whether two Unix times fall in the same JST calendar month.
pub fn same_jst_month(a: i64, b: i64) -> bool {
    jst_month(a) == jst_month(b)
}

/// Whether the desk's phones are staffed: 9:00 up to (not including) 21:00 JST, every day.
pub fn phone_open(unix: i64) -> bool {
    let hour = jst(unix).hour;
    (PHONE_OPENS_HOUR..PHONE_CLOSES_HOUR).contains(&hour)
}

/// The earliest time ≥ `unix` at which the desk may phone a customer: `unix` itself when the
/// phones are open, else the next 9:00 JST.
pub fn next_phone_slot(unix: i64) -> i64 {
    let unix = clamp(unix);
    if phone_open(unix) {
        return unix;
    }
    let opening = jst_midnight(unix) + i64::from(PHONE_OPENS_HOUR) * 3600;
    if jst_secs_of_day(unix) < i64::from(PHONE_OPENS_HOUR) * 3600 {
        opening
    } else {
        opening + DAY_SECS
    }
}

/// The earliest time ≥ `unix` at which a repair visit may be dispatched under `window`
/// (daily, 年中無休). A window that covers no minute at all (a malformed `Daytime` with
/// `from_hour ≥ to_hour`) dispatches at once: a broken setting must not delay a repair forever.
pub fn next_dispatch(window: RepairWindow, unix: i64) -> i64 {
    let unix = clamp(unix);
    let covers = |t: i64| {
        let local = jst(t);
        window.covers(local.hour, local.minute)
    };
    match window {
        RepairWindow::AllDay => unix,
        RepairWindow::Daytime { from_hour, .. } => {
            if covers(unix) {
                return unix;
            }
            let opening = jst_midnight(unix) + i64::from(from_hour.min(23)) * 3600;
            [opening, opening + DAY_SECS]
                .into_iter()
                .find(|&t| t >= unix && covers(t))
                .unwrap_or(unix)
        }
    }
}

/// `2026-11-03 14:05 (JST)`, for mail and the UI.
pub fn format_jst(unix: i64) -> String {
    jst(unix).to_string()
}

/// An EVE timestamp (`2026-11-03T14:05:00.123456+0000`, `+09:00`, `Z`) in Unix seconds;
/// `None` for anything else.
pub fn parse_eve_timestamp(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() < 20 || b.len() > 40 {
        return None;
    }
    let digits = |from: usize, len: usize| -> Option<i64> {
        let part = b.get(from..from + len)?;
        part.iter().try_fold(0i64, |acc, d| {
            d.is_ascii_digit().then(|| acc * 10 + i64::from(d - b'0'))
        })
    };
    let sep = |at: usize, allowed: &[u8]| b.get(at).is_some_and(|c| allowed.contains(c));
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"T ") && sep(13, b":") && sep(16, b":")) {
        return None;
    }
    let (year, month, day) = (digits(0, 4)?, digits(5, 2)?, digits(8, 2)?);
    let (hour, minute, second) = (digits(11, 2)?, digits(14, 2)?, digits(17, 2)?);
    let month = u8::try_from(month).ok()?;
    if year < 1 || day < 1 || day > i64::from(days_in_month(year, month)) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut at = 19;
    if sep(at, b".") {
        at += 1;
        let start = at;
        while b.get(at).is_some_and(u8::is_ascii_digit) {
            at += 1;
        }
        if at == start || at - start > 9 {
            return None;
        }
    }
    let offset = match b.get(at)? {
        b'Z' if at + 1 == b.len() => 0,
        sign @ (b'+' | b'-') => {
            let oh = digits(at + 1, 2)?;
            let colon = sep(at + 3, b":");
            let om = digits(at + 3 + usize::from(colon), 2)?;
            if at + 5 + usize::from(colon) != b.len() || oh > 23 || om > 59 {
                return None;
            }
            let secs = oh * 3600 + om * 60;
            if *sign == b'-' { -secs } else { secs }
        }
        _ => return None,
    };
    let day = u8::try_from(day).ok()?;
    // A leap second (:60) counts as :59.
    let local =
        days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second.min(59);
    Some(local - offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(y: i32, mo: u8, d: u8, h: u8, mi: u8) -> i64 {
        unix_of_jst(y, mo, d, h, mi).expect("valid test time")
    }

    #[test]
    fn known_instants() {
        // 1970-01-01T00:00Z is 09:00 JST, a Thursday.
        let t = jst(0);
        assert_eq!(
            (t.year, t.month, t.day, t.hour, t.minute),
            (1970, 1, 1, 9, 0)
        );
        assert_eq!(t.weekday, Weekday::Thursday);
        // 2026-11-03T05:05:00Z = 1793682300 is 14:05 JST, a Tuesday.
        assert_eq!(at(2026, 11, 3, 14, 5), 1_793_682_300);
        assert_eq!(jst(1_793_682_300).weekday, Weekday::Tuesday);
        assert_eq!(format_jst(1_793_682_300), "2026-11-03 14:05 (JST)");
        // Leap day.
        let leap = jst(at(2028, 2, 29, 23, 59));
        assert_eq!((leap.month, leap.day), (2, 29));
    }

    #[test]
    fn round_trip_over_many_days() {
        let start = at(1999, 12, 25, 0, 0);
        for step in 0..2000 {
            let unix = start + step * 86_400 + step * 97 % 86_400;
            let t = jst(unix);
            let back = unix_of_jst(t.year, t.month, t.day, t.hour, t.minute).unwrap();
            assert_eq!(back, unix - unix.rem_euclid(60));
        }
    }

    #[test]
    fn invalid_wall_times_are_none() {
        assert_eq!(unix_of_jst(2026, 13, 1, 0, 0), None);
        assert_eq!(unix_of_jst(2026, 0, 1, 0, 0), None);
        assert_eq!(unix_of_jst(2026, 4, 31, 0, 0), None);
        assert_eq!(unix_of_jst(2026, 2, 29, 0, 0), None);
        assert_eq!(unix_of_jst(2026, 1, 1, 24, 0), None);
        assert_eq!(unix_of_jst(2026, 1, 1, 0, 60), None);
        assert_eq!(unix_of_jst(0, 1, 1, 0, 0), None);
        assert_eq!(unix_of_jst(10_000, 1, 1, 0, 0), None);
    }

    #[test]
    fn hostile_instants_do_not_panic() {
        for unix in [i64::MIN, i64::MAX, -1, MIN_UNIX - 1, MAX_UNIX + 1] {
            let _ = jst(unix);
            let _ = format_jst(unix);
            let _ = next_phone_slot(unix);
            let _ = month_bounds_of(unix);
            let _ = next_dispatch(
                RepairWindow::Daytime {
                    from_hour: 9,
                    to_hour: 17,
                },
                unix,
            );
        }
    }

    #[test]
    fn month_bounds_are_in_japan_time() {
        let (start, end) = month_bounds_jst(2026, 12).unwrap();
        assert_eq!(start, at(2026, 12, 1, 0, 0));
        assert_eq!(end, at(2027, 1, 1, 0, 0));
        // 2026-12-01 00:10 JST is 2026-11-30 15:10 UTC, yet it is December in Japan.
        let early_december = at(2026, 12, 1, 0, 10);
        assert_eq!(jst_month(early_december), (2026, 12));
        assert_eq!(jst_month(at(2026, 11, 30, 23, 30)), (2026, 11));
        assert_eq!(month_bounds_of(early_december), (start, end));
        assert_eq!(month_bounds_of(end - 1), (start, end));
        assert_eq!(month_bounds_of(end).0, end);
        assert_eq!(month_bounds_jst(2026, 13), None);
        assert_eq!(month_bounds_jst(2028, 2).unwrap().1, at(2028, 3, 1, 0, 0));
        assert!(same_jst_month(start, end - 1));
        assert!(!same_jst_month(start - 1, start));
    }

    #[test]
    fn phone_hours() {
        assert!(!phone_open(at(2026, 11, 3, 8, 59)));
        assert!(phone_open(at(2026, 11, 3, 9, 0)));
        assert!(phone_open(at(2026, 11, 3, 20, 59)));
        assert!(!phone_open(at(2026, 11, 3, 21, 0)));
        // Open: now. Early morning: 9:00 today. Evening: 9:00 tomorrow (across a month end).
        let noon = at(2026, 11, 3, 12, 0) + 17;
        assert_eq!(next_phone_slot(noon), noon);
        assert_eq!(
            next_phone_slot(at(2026, 11, 3, 3, 0)),
            at(2026, 11, 3, 9, 0)
        );
        assert_eq!(
            next_phone_slot(at(2026, 11, 30, 21, 0)),
            at(2026, 12, 1, 9, 0)
        );
        assert_eq!(
            next_phone_slot(at(2026, 12, 31, 23, 59)),
            at(2027, 1, 1, 9, 0)
        );
    }

    #[test]
    fn repair_dispatch() {
        let day = RepairWindow::Daytime {
            from_hour: 9,
            to_hour: 17,
        };
        let now = at(2026, 11, 3, 10, 30);
        assert_eq!(next_dispatch(day, now), now);
        assert_eq!(
            next_dispatch(day, at(2026, 11, 3, 6, 0)),
            at(2026, 11, 3, 9, 0)
        );
        assert_eq!(
            next_dispatch(day, at(2026, 11, 3, 17, 0)),
            at(2026, 11, 4, 9, 0)
        );
        assert_eq!(
            next_dispatch(day, at(2026, 11, 3, 16, 59)),
            at(2026, 11, 3, 16, 59)
        );
        let night = at(2026, 11, 3, 2, 0);
        assert_eq!(next_dispatch(RepairWindow::AllDay, night), night);
        // A malformed window dispatches at once rather than never.
        let broken = RepairWindow::Daytime {
            from_hour: 17,
            to_hour: 9,
        };
        assert_eq!(next_dispatch(broken, night), night);
    }

    #[test]
    fn eve_timestamps() {
        let t = 1_793_682_300;
        assert_eq!(
            parse_eve_timestamp("2026-11-03T05:05:00.123456+0000"),
            Some(t)
        );
        assert_eq!(parse_eve_timestamp("2026-11-03T14:05:00+09:00"), Some(t));
        assert_eq!(parse_eve_timestamp("2026-11-03T14:05:00.5+0900"), Some(t));
        assert_eq!(parse_eve_timestamp("2026-11-03T05:05:00Z"), Some(t));
        assert_eq!(parse_eve_timestamp("2026-11-02T20:05:00-0900"), Some(t));
        assert_eq!(parse_eve_timestamp("2026-11-03 05:05:00+0000"), Some(t));
        for bad in [
            "",
            "garbage",
            "2026-11-03T05:05:00",
            "2026-11-03T05:05:00+",
            "2026-11-03T05:05:00+00",
            "2026-11-03T05:05:00+0000x",
            "2026-11-03T05:05:00.+0000",
            "2026-13-03T05:05:00+0000",
            "2026-02-29T05:05:00+0000",
            "2026-11-03T24:05:00+0000",
            "2026-11-03T05:60:00+0000",
            "2026-11-03T05:05:00+2400",
            "0000-11-03T05:05:00+0000",
            "２０２６-11-03T05:05:00+0000",
            "2026-11-03T05:05:00.1234567890+0000",
        ] {
            assert_eq!(parse_eve_timestamp(bad), None, "{bad:?}");
        }
    }
}

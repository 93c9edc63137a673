//! The monthly report (issue 17, the box-local part): what the box blocked in a calendar
//! month in Japan time, computed from the event store (`aggregate`), rendered as printable
//! HTML with hand-built SVG charts (`html`), turned into a PDF by headless Chromium
//! (`pdf`), and kept per month in the `report` table. The counts come from per-day
//! rollups kept at intake (`rollup`).

pub mod aggregate;
pub mod html;
pub mod pdf;
pub mod rollup;
mod summary;

pub use aggregate::{Func, Report, aggregate};

use rusqlite::{Connection, OptionalExtension, params};

/// Japan Standard Time, UTC+9 all year (Japan has no daylight saving time).
pub const JST: i64 = 9 * 3600;

/// Reports of this many months back from the newest are kept; older ones are deleted.
pub const KEEP_MONTHS: i64 = 24;

/// A calendar month.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Month {
    pub year: i64,
    /// 1–12.
    pub month: u32,
}

impl Month {
    /// `2026-11`, strictly (four digits, a dash, two digits).
    pub fn parse(s: &str) -> Result<Month, String> {
        let b = s.as_bytes();
        let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
        if b.len() != 7 || b[4] != b'-' || !digits(0..4) || !digits(5..7) {
            return Err(format!("{s:?} is not a month (YYYY-MM, e.g. 2026-11)"));
        }
        let year: i64 = s[0..4].parse().map_err(|_| format!("{s:?}: bad year"))?;
        let month: u32 = s[5..7].parse().map_err(|_| format!("{s:?}: bad month"))?;
        if !(1..=12).contains(&month) || year < 2000 {
            return Err(format!(
                "{s:?} is not a month (YYYY-MM, month 01-12, year 2000 or later)"
            ));
        }
        Ok(Month { year, month })
    }

    /// The Japan-time month an instant falls in.
    pub fn of(ts: i64) -> Month {
        let (y, m, _) = crate::events::civil_from_days((ts + JST).div_euclid(86_400));
        Month { year: y, month: m }
    }

    /// Its first instant: 00:00 JST on the 1st, in Unix seconds.
    pub fn start(self) -> i64 {
        crate::events::days_from_civil(self.year, i64::from(self.month), 1) * 86_400 - JST
    }

    /// The first instant after it.
    pub fn end(self) -> i64 {
        self.next().start()
    }

    pub fn days(self) -> u32 {
        ((self.end() - self.start()) / 86_400) as u32
    }

    pub fn next(self) -> Month {
        self.plus(1)
    }

    pub fn prev(self) -> Month {
        self.plus(-1)
    }

    pub fn plus(self, n: i64) -> Month {
        let i = self.year * 12 + i64::from(self.month) - 1 + n;
        Month {
            year: i.div_euclid(12),
            month: (i.rem_euclid(12) + 1) as u32,
        }
    }
}

impl std::fmt::Display for Month {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    Ja,
    En,
}

impl Lang {
    pub fn parse(s: &str) -> Result<Lang, String> {
        match s {
            "ja" => Ok(Lang::Ja),
            "en" => Ok(Lang::En),
            _ => Err(format!("{s:?}: expected ja or en")),
        }
    }
    pub fn code(self) -> &'static str {
        match self {
            Lang::Ja => "ja",
            Lang::En => "en",
        }
    }
}

/// A month the box can report on: not one that has not begun.
pub fn check_month(m: Month, now: i64) -> Result<(), String> {
    if m.start() > now {
        return Err(format!(
            "{m} has not begun yet (it is {} in Japan)",
            Month::of(now)
        ));
    }
    Ok(())
}

/// What the gateway says about itself while the report is made (nothing when it is down).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Live {
    pub gateway_up: bool,
    pub uptime_secs: Option<f64>,
    pub policy_version: Option<u64>,
    /// MAC, IPv4 and DHCP host name of the hosts the gateway knows now.
    pub hosts: Vec<(String, String, String)>,
}

/// A kept report.
pub struct Stored {
    pub created: i64,
    pub complete: bool,
    pub html: String,
}

pub fn stored(c: &Connection, m: Month, lang: Lang) -> rusqlite::Result<Option<Stored>> {
    c.query_row(
        "SELECT created, final, html FROM report WHERE month = ?1 AND lang = ?2",
        params![m.to_string(), lang.code()],
        |r| {
            Ok(Stored {
                created: r.get(0)?,
                complete: r.get(1)?,
                html: r.get(2)?,
            })
        },
    )
    .optional()
}

/// The counts per function a kept report recorded (for the trend once its events are gone).
pub fn stored_counts(c: &Connection, m: Month) -> rusqlite::Result<Option<Vec<i64>>> {
    let s: Option<String> = c
        .query_row(
            "SELECT counts FROM report WHERE month = ?1 ORDER BY final DESC, created DESC LIMIT 1",
            params![m.to_string()],
            |r| r.get(0),
        )
        .optional()?;
    Ok(s.and_then(|s| serde_json::from_str(&s).ok()))
}

/// Keeps a rendered report (replacing the same month and language), then deletes those
/// more than `KEEP_MONTHS` older than the newest.
pub fn keep(c: &Connection, r: &Report, lang: Lang, html: &str) -> rusqlite::Result<()> {
    c.execute(
        "INSERT OR REPLACE INTO report (month, lang, created, final, counts, html) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            r.month.to_string(),
            lang.code(),
            r.generated,
            r.complete(),
            serde_json::to_string(&r.totals.to_vec()).unwrap_or_default(),
            html
        ],
    )?;
    let newest: Option<String> = c.query_row("SELECT max(month) FROM report", [], |r| r.get(0))?;
    if let Some(oldest) = newest
        .and_then(|n| Month::parse(&n).ok())
        .map(|n| n.plus(-KEEP_MONTHS))
    {
        c.execute(
            "DELETE FROM report WHERE month < ?1",
            params![oldest.to_string()],
        )?;
    }
    Ok(())
}

/// The months kept, newest first, with their languages.
pub fn kept(c: &Connection) -> rusqlite::Result<Vec<(String, String, i64, bool)>> {
    let mut s =
        c.prepare("SELECT month, lang, created, final FROM report ORDER BY month DESC, lang")?;
    s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect()
}

/// The report for a month: the kept one when the month was complete when it was made,
/// else aggregated and rendered now (and kept).
pub fn get_or_render(
    c: &Connection,
    m: Month,
    lang: Lang,
    now: i64,
    live: &Live,
) -> anyhow::Result<String> {
    if let Some(s) = stored(c, m, lang)?
        && s.complete
    {
        return Ok(s.html);
    }
    let r = aggregate(c, m, now, live)?;
    let page = html::render(&r, lang);
    keep(c, &r, lang, &page)?;
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_in_japan_time() {
        let m = Month::parse("2026-11").unwrap();
        assert_eq!(m.to_string(), "2026-11");
        // 2026-11-01 00:00 JST is 2026-10-31 15:00 UTC.
        assert_eq!(
            m.start(),
            crate::events::eve_epoch("2026-10-31T15:00:00+0000").unwrap()
        );
        assert_eq!(m.days(), 30);
        let t = crate::events::eve_epoch("2026-11-30T15:30:00+0000").unwrap();
        assert_eq!(Month::of(t).to_string(), "2026-12");
        assert_eq!(Month::of(t - 3600).to_string(), "2026-11");
        assert_eq!(
            Month::parse("2026-01").unwrap().prev().to_string(),
            "2025-12"
        );
        assert_eq!(
            Month::parse("2026-12").unwrap().next().to_string(),
            "2027-01"
        );
        assert_eq!(Month::parse("2028-02").unwrap().days(), 29);
        for bad in [
            "2026-13",
            "2026-00",
            "26-11",
            "2026/11",
            "2026-1",
            "abcd-ef",
            "",
            "2026-11-01",
        ] {
            assert!(Month::parse(bad).is_err(), "{bad}");
        }
        let now = crate::events::eve_epoch("2026-11-30T15:30:00+0000").unwrap();
        assert!(check_month(Month::parse("2026-12").unwrap(), now).is_ok());
        assert!(check_month(Month::parse("2027-01").unwrap(), now).is_err());
    }
}

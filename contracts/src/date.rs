//! Calendar months and the month counts the terms are written in.
//!
//! The seed counts months from the month that holds the start date: "本サービスの提供を開始した日の
//! 属する月からその月を含む3カ月" — the start month is month 1, whatever the day. Every count
//! here is a count of calendar months, never of days.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use time::{Date, Month};

/// A calendar month (`2025-04`), the unit the terms bill and count in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct YearMonth {
    /// Months since year 0 (`year * 12 + month - 1`): ordering and arithmetic in one number.
    index: i32,
}

impl YearMonth {
    /// `month` is 1..=12; anything else is `None`.
    pub fn new(year: i32, month: u8) -> Option<YearMonth> {
        (1..=12).contains(&month).then(|| YearMonth {
            index: year * 12 + i32::from(month) - 1,
        })
    }

    /// The month that holds `date`.
    pub fn of(date: Date) -> YearMonth {
        YearMonth {
            index: date.year() * 12 + i32::from(u8::from(date.month())) - 1,
        }
    }

    pub fn year(self) -> i32 {
        self.index.div_euclid(12)
    }

    /// 1..=12.
    pub fn month(self) -> u8 {
        (self.index.rem_euclid(12) + 1) as u8
    }

    /// The first day of this month.
    pub fn first_day(self) -> Date {
        let month = Month::try_from(self.month()).expect("1..=12 is a month");
        Date::from_calendar_date(self.year(), month, 1).expect("the 1st exists in every month")
    }

    /// This month moved by `months` (negative: back).
    pub fn plus(self, months: i32) -> YearMonth {
        YearMonth {
            index: self.index + months,
        }
    }

    /// The ordinal of `self` counted from `from` as month 1 (the seed's way of counting: the
    /// month of `from` is 1, the next is 2, …). Zero or negative when `self` is before `from`.
    pub fn nth_since(self, from: YearMonth) -> i32 {
        self.index - from.index + 1
    }
}

impl fmt::Display for YearMonth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year(), self.month())
    }
}

impl Serialize for YearMonth {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for YearMonth {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<YearMonth, D::Error> {
        let text = String::deserialize(d)?;
        parse_year_month(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("not a month (YYYY-MM): {text:?}")))
    }
}

/// `YYYY-MM`.
pub fn parse_year_month(text: &str) -> Option<YearMonth> {
    let (y, m) = text.split_once('-')?;
    if y.len() != 4 || m.len() != 2 {
        return None;
    }
    YearMonth::new(y.parse().ok()?, m.parse().ok()?)
}

/// `YYYY-MM-DD`.
pub fn parse_date(text: &str) -> Option<Date> {
    let mut parts = text.split('-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    let month = Month::try_from(m.parse::<u8>().ok()?).ok()?;
    Date::from_calendar_date(y.parse().ok()?, month, d.parse().ok()?).ok()
}

/// `YYYY-MM-DD` (the desk's JSON and the CLI write dates this way).
pub fn format_date(date: Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// Serde for a [`Date`] as `YYYY-MM-DD`, without `time`'s formatting features.
pub mod iso {
    use super::{format_date, parse_date};
    use serde::{Deserialize, Deserializer, Serializer};
    use time::Date;

    pub fn serialize<S: Serializer>(date: &Date, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_date(*date))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Date, D::Error> {
        let text = String::deserialize(d)?;
        parse_date(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("not a date (YYYY-MM-DD): {text:?}")))
    }

    /// The same for `Option<Date>` (`null` when absent).
    pub mod option {
        use super::{format_date, parse_date};
        use serde::{Deserialize, Deserializer, Serializer};
        use time::Date;

        pub fn serialize<S: Serializer>(date: &Option<Date>, s: S) -> Result<S::Ok, S::Error> {
            match date {
                Some(d) => s.serialize_some(&format_date(*d)),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Date>, D::Error> {
            match Option::<String>::deserialize(d)? {
                None => Ok(None),
                Some(text) => parse_date(&text).map(Some).ok_or_else(|| {
                    serde::de::Error::custom(format!("not a date (YYYY-MM-DD): {text:?}"))
                }),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_months_like_the_seed() {
        let start = YearMonth::new(2025, 1).unwrap();
        assert_eq!(start.nth_since(start), 1);
        assert_eq!(YearMonth::new(2025, 3).unwrap().nth_since(start), 3);
        assert_eq!(YearMonth::new(2026, 12).unwrap().nth_since(start), 24);
        assert_eq!(YearMonth::new(2024, 12).unwrap().nth_since(start), 0);
        assert_eq!(start.plus(60).to_string(), "2030-01");
        assert_eq!(start.plus(-1).to_string(), "2024-12");
    }

    #[test]
    fn parses_and_formats() {
        let d = parse_date("2024-02-29").unwrap();
        assert_eq!(format_date(d), "2024-02-29");
        assert!(parse_date("2023-02-29").is_none());
        assert!(parse_date("2024-2-1").is_none());
        assert!(parse_date("2024-02-01-").is_none());
        assert_eq!(parse_year_month("2025-11").unwrap().to_string(), "2025-11");
        assert!(parse_year_month("2025-13").is_none());
        assert_eq!(
            YearMonth::of(d).first_day(),
            parse_date("2024-02-01").unwrap()
        );
    }
}

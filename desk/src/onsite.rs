//! On-site support: the monthly quota per plan and the hours visits may be booked in.
//!
//! The seed (サービスの概要 › 訪問サポート):
//! 「訪問サポートは専用BOXの設置拠点に限り、電話などでの対応が困難なパソコンのOSリカバリに無料で
//! 対応いたします（月1回 Lightプラン：1台、Standardプラン：1台、Professionalプラン3台まで）。
//! 一部島嶼部にて訪問サポートをご利用いただく場合、別途交通費（実費）をご負担いただきます。…
//! 対応時間は東日本エリアは12月30日～1月3日を除く9：00～19：00、西日本エリアは12月29日～1月3日を
//! 除く月曜日～土曜日9：00～17：00となります。」 and 「訪問サポートはVPN接続拠点などは、有料で対応
//! いたします。」
//!
//! Choices where the seed is silent:
//! - A visit must **start** inside the window: 9:00 is in, the closing time itself is out
//!   (East 18:59 may start, 19:00 may not). The seed gives no visit length, so we do not ask
//!   that the visit also ends inside the window.
//! - National holidays are not excluded: the seed names only the year-end period (and, for
//!   West, Sundays).
//! - The quota counts **free** visits per box per calendar month in Japan time. `check_booking`
//!   filters the visits it is given to the request's JST month itself, so the caller may pass
//!   more than one month's.
//! - A VPN-connected site is not the box's own site (「専用BOXの設置拠点に限り」), so its visit is
//!   charged (「有料」) and neither uses nor is limited by the free quota. An island site's visit
//!   is free (it uses the quota) with the travel cost charged on top.

use crate::clock::{jst, jst_month};
use mimamori_contracts::{Plan, profile};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use thiserror::Error;
use time::Weekday;

/// A seed sentence an on-site answer rests on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VisitClause {
    /// What the free visit covers, and where.
    Scope,
    /// Once a month, 1 / 1 / 3 PCs.
    Quota,
    /// Islands pay travel.
    IslandTravel,
    /// VPN-connected sites pay.
    VpnSite,
    /// East's hours.
    HoursEast,
    /// West's hours.
    HoursWest,
}

impl VisitClause {
    /// The seed's words (verbatim).
    pub fn quote(self) -> &'static str {
        match self {
            VisitClause::Scope => {
                "訪問サポートは専用BOXの設置拠点に限り、電話などでの対応が困難なパソコンのOSリカバリに無料で対応いたします"
            }
            VisitClause::Quota => {
                "月1回 Lightプラン：1台、Standardプラン：1台、Professionalプラン3台まで"
            }
            VisitClause::IslandTravel => {
                "一部島嶼部にて訪問サポートをご利用いただく場合、別途交通費（実費）をご負担いただきます。"
            }
            VisitClause::VpnSite => "訪問サポートはVPN接続拠点などは、有料で対応いたします。",
            VisitClause::HoursEast => "東日本エリアは12月30日～1月3日を除く9：00～19：00",
            VisitClause::HoursWest => {
                "西日本エリアは12月29日～1月3日を除く月曜日～土曜日9：00～17：00となります。"
            }
        }
    }
}

impl fmt::Display for VisitClause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "「{}」", self.quote())
    }
}

/// Which operator's area the site is in: the hours differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Area {
    East,
    West,
}

impl Area {
    pub fn as_str(self) -> &'static str {
        match self {
            Area::East => "east",
            Area::West => "west",
        }
    }

    /// First hour a visit may start.
    pub fn opens_hour(self) -> u8 {
        9
    }

    /// The closing hour (a visit must start before it).
    pub fn closes_hour(self) -> u8 {
        match self {
            Area::East => 19,
            Area::West => 17,
        }
    }

    /// The first day of the year-end closure in December (through 3 January).
    fn year_end_from_day(self) -> u8 {
        match self {
            Area::East => 30,
            Area::West => 29,
        }
    }

    fn hours_clause(self) -> VisitClause {
        match self {
            Area::East => VisitClause::HoursEast,
            Area::West => VisitClause::HoursWest,
        }
    }
}

impl fmt::Display for Area {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown area {0:?}: expected \"east\" or \"west\"")]
pub struct UnknownArea(pub String);

impl FromStr for Area {
    type Err = UnknownArea;

    /// `east` / `west`, any case, surrounding space ignored.
    fn from_str(text: &str) -> Result<Area, UnknownArea> {
        let name = text.trim();
        [Area::East, Area::West]
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(name))
            .ok_or_else(|| UnknownArea(text.chars().take(40).collect()))
    }
}

/// Where the visit goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Site {
    pub area: Area,
    /// One of the islands where travel is charged at cost.
    pub island: bool,
    /// Connected to the box's office by VPN rather than hosting a box itself: visits are paid.
    pub vpn_connected: bool,
}

/// Why a visit may not start at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum HoursRefusal {
    #[error(
        "{month}/{day} is in the {area} area's year-end closure (no visits {from_day} Dec – 3 Jan)"
    )]
    YearEnd {
        area: Area,
        month: u8,
        day: u8,
        from_day: u8,
    },
    #[error("the west area has no visits on Sundays (Monday to Saturday only)")]
    Sunday,
    #[error("{hour:02}:{minute:02} is before the {area} area's visits open at {opens}:00")]
    BeforeHours {
        area: Area,
        hour: u8,
        minute: u8,
        opens: u8,
    },
    #[error("{hour:02}:{minute:02} is not before the {area} area's visits close at {closes}:00")]
    AfterHours {
        area: Area,
        hour: u8,
        minute: u8,
        closes: u8,
    },
}

impl HoursRefusal {
    pub fn clause(self) -> VisitClause {
        match self {
            HoursRefusal::YearEnd { area, .. }
            | HoursRefusal::BeforeHours { area, .. }
            | HoursRefusal::AfterHours { area, .. } => area.hours_clause(),
            HoursRefusal::Sunday => VisitClause::HoursWest,
        }
    }

    /// The refusal with its seed sentence, for the operator.
    pub fn explain(self) -> String {
        format!("{self} — {}", self.clause())
    }
}

/// Whether a visit may start at `unix` in `area` (see the module notes: start inside the window).
pub fn visit_hours_open(area: Area, unix: i64) -> Result<(), HoursRefusal> {
    let local = jst(unix);
    let year_end = (local.month == 12 && local.day >= area.year_end_from_day())
        || (local.month == 1 && local.day <= 3);
    if year_end {
        return Err(HoursRefusal::YearEnd {
            area,
            month: local.month,
            day: local.day,
            from_day: area.year_end_from_day(),
        });
    }
    if area == Area::West && local.weekday == Weekday::Sunday {
        return Err(HoursRefusal::Sunday);
    }
    if local.hour < area.opens_hour() {
        return Err(HoursRefusal::BeforeHours {
            area,
            hour: local.hour,
            minute: local.minute,
            opens: area.opens_hour(),
        });
    }
    if local.hour >= area.closes_hour() {
        return Err(HoursRefusal::AfterHours {
            area,
            hour: local.hour,
            minute: local.minute,
            closes: area.closes_hour(),
        });
    }
    Ok(())
}

/// A free visit already booked for this box.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookedVisit {
    pub start: i64,
    pub pcs: u8,
}

/// A request for an on-site OS-recovery visit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisitRequest {
    /// The plan of the box the site belongs to (on the visit's date).
    pub box_plan: Plan,
    pub site: Site,
    /// When the visit starts (Unix seconds).
    pub start: i64,
    /// PCs to recover.
    pub pcs: u8,
}

/// Something the customer pays for on a visit. The seed gives no amount (実費 / 有料), so these
/// are notes for the booking, not yen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Charge {
    /// 「別途交通費（実費）」.
    TravelCostIsland,
    /// 「有料で対応いたします」: the whole visit is paid.
    VpnSite,
}

impl Charge {
    pub fn note_ja(self) -> &'static str {
        match self {
            Charge::TravelCostIsland => "別途交通費（実費）をご負担いただきます",
            Charge::VpnSite => "VPN接続拠点への訪問のため有料です",
        }
    }

    pub fn note_en(self) -> &'static str {
        match self {
            Charge::TravelCostIsland => "travel costs are charged at cost (island site)",
            Charge::VpnSite => "paid visit (VPN-connected site)",
        }
    }

    pub fn clause(self) -> VisitClause {
        match self {
            Charge::TravelCostIsland => VisitClause::IslandTravel,
            Charge::VpnSite => VisitClause::VpnSite,
        }
    }
}

/// An accepted visit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Booking {
    pub start: i64,
    pub pcs: u8,
    /// The JST month whose quota it uses (or would, were it free).
    pub month: (i32, u8),
    /// Whether the OS recovery itself is free. Only such a visit should be stored as a
    /// [`BookedVisit`] for later quota checks.
    pub free: bool,
    /// What the customer pays besides (empty: nothing).
    pub charges: Vec<Charge>,
}

/// Why a visit cannot be booked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum BookingRefusal {
    #[error("a visit must recover at least one PC (pcs = 0)")]
    NoPcs,
    #[error("the visit cannot start then: {0}")]
    Hours(HoursRefusal),
    #[error(
        "this box has used its free visits for {year}-{month:02} ({used} of {allowed} a month, JST)"
    )]
    MonthlyVisitsUsed {
        year: i32,
        month: u8,
        used: usize,
        allowed: u8,
    },
    #[error("pcs = {requested}: the {plan} plan's free visit covers at most {allowed} PC(s)")]
    TooManyPcs {
        plan: Plan,
        requested: u8,
        allowed: u8,
    },
}

impl BookingRefusal {
    pub fn clause(self) -> VisitClause {
        match self {
            BookingRefusal::NoPcs => VisitClause::Scope,
            BookingRefusal::Hours(h) => h.clause(),
            BookingRefusal::MonthlyVisitsUsed { .. } | BookingRefusal::TooManyPcs { .. } => {
                VisitClause::Quota
            }
        }
    }

    /// The refusal with its seed sentence, for the operator.
    pub fn explain(self) -> String {
        format!("{self} — {}", self.clause())
    }
}

/// Free visits among `booked` that fall in the same JST month as `unix`.
pub fn visits_in_month(booked: &[BookedVisit], unix: i64) -> impl Iterator<Item = &BookedVisit> {
    let month = jst_month(unix);
    booked.iter().filter(move |v| jst_month(v.start) == month)
}

/// Decide a visit request against the hours and this box's free visits (any months: filtered
/// here to the request's JST month). Checks in order: PCs, hours, then (free visits only) the
/// monthly visit count and the PCs per visit.
pub fn check_booking(
    req: &VisitRequest,
    booked_free_visits: &[BookedVisit],
) -> Result<Booking, BookingRefusal> {
    if req.pcs == 0 {
        return Err(BookingRefusal::NoPcs);
    }
    visit_hours_open(req.site.area, req.start).map_err(BookingRefusal::Hours)?;
    let month = jst_month(req.start);
    let mut charges = Vec::new();
    if req.site.island {
        charges.push(Charge::TravelCostIsland);
    }
    if req.site.vpn_connected {
        // Paid visit: the free quota neither applies nor is used.
        charges.push(Charge::VpnSite);
        return Ok(Booking {
            start: req.start,
            pcs: req.pcs,
            month,
            free: false,
            charges,
        });
    }
    // The repair option does not change the on-site quota.
    let quota = profile(req.box_plan, false).on_site;
    let used = visits_in_month(booked_free_visits, req.start).count();
    if used >= usize::from(quota.visits_per_month) {
        return Err(BookingRefusal::MonthlyVisitsUsed {
            year: month.0,
            month: month.1,
            used,
            allowed: quota.visits_per_month,
        });
    }
    if req.pcs > quota.pcs_per_visit {
        return Err(BookingRefusal::TooManyPcs {
            plan: req.box_plan,
            requested: req.pcs,
            allowed: quota.pcs_per_visit,
        });
    }
    Ok(Booking {
        start: req.start,
        pcs: req.pcs,
        month,
        free: true,
        charges,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::unix_of_jst;

    fn at(y: i32, mo: u8, d: u8, h: u8, mi: u8) -> i64 {
        unix_of_jst(y, mo, d, h, mi).expect("valid test time")
    }

    const OFFICE_EAST: Site = Site {
        area: Area::East,
        island: false,
        vpn_connected: false,
    };

    fn request(plan: Plan, site: Site, start: i64, pcs: u8) -> VisitRequest {
        VisitRequest {
            box_plan: plan,
            site,
            start,
            pcs,
        }
    }

    #[test]
    fn every_quote_is_the_seeds_when_the_seed_is_beside_the_checkout() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/seed/service-description-ja.txt"
        );
        let Ok(seed) = std::fs::read_to_string(path) else {
            eprintln!("seed not found at {path}; quotes not checked");
            return;
        };
        for clause in [
            VisitClause::Scope,
            VisitClause::Quota,
            VisitClause::IslandTravel,
            VisitClause::VpnSite,
            VisitClause::HoursEast,
            VisitClause::HoursWest,
        ] {
            assert!(seed.contains(clause.quote()), "{clause:?} not in the seed");
        }
    }

    #[test]
    fn east_hours_nine_to_nineteen() {
        // 「東日本エリアは12月30日～1月3日を除く9：00～19：00」
        assert_eq!(visit_hours_open(Area::East, at(2026, 11, 4, 9, 0)), Ok(()));
        assert_eq!(
            visit_hours_open(Area::East, at(2026, 11, 4, 18, 59)),
            Ok(())
        );
        let refused = visit_hours_open(Area::East, at(2026, 11, 4, 19, 0)).unwrap_err();
        assert!(matches!(
            refused,
            HoursRefusal::AfterHours { closes: 19, .. }
        ));
        assert_eq!(refused.clause(), VisitClause::HoursEast);
        assert!(matches!(
            visit_hours_open(Area::East, at(2026, 11, 4, 8, 59)),
            Err(HoursRefusal::BeforeHours { opens: 9, .. })
        ));
    }

    #[test]
    fn east_year_end_thirtieth_to_third() {
        // 「東日本エリアは12月30日～1月3日を除く」
        for (y, m, d) in [(2026, 12, 30), (2026, 12, 31), (2027, 1, 1), (2027, 1, 3)] {
            assert!(matches!(
                visit_hours_open(Area::East, at(y, m, d, 10, 0)),
                Err(HoursRefusal::YearEnd { .. })
            ));
        }
        assert_eq!(
            visit_hours_open(Area::East, at(2026, 12, 29, 10, 0)),
            Ok(())
        );
        assert_eq!(visit_hours_open(Area::East, at(2027, 1, 4, 10, 0)), Ok(()));
    }

    #[test]
    fn west_year_end_starts_on_the_twenty_ninth() {
        // 「西日本エリアは12月29日～1月3日を除く月曜日～土曜日9：00～17：00」 (2026-12-29 is a Tuesday)
        let refused = visit_hours_open(Area::West, at(2026, 12, 29, 10, 0)).unwrap_err();
        assert!(matches!(
            refused,
            HoursRefusal::YearEnd { from_day: 29, .. }
        ));
        assert_eq!(refused.clause(), VisitClause::HoursWest);
        assert_eq!(
            visit_hours_open(Area::West, at(2026, 12, 28, 10, 0)),
            Ok(())
        );
    }

    #[test]
    fn west_monday_to_saturday_nine_to_seventeen() {
        // 「月曜日～土曜日9：00～17：00」: 2026-11-01 is a Sunday, 2026-11-07 a Saturday.
        assert_eq!(
            visit_hours_open(Area::West, at(2026, 11, 1, 10, 0)),
            Err(HoursRefusal::Sunday)
        );
        assert_eq!(visit_hours_open(Area::East, at(2026, 11, 1, 10, 0)), Ok(()));
        assert_eq!(visit_hours_open(Area::West, at(2026, 11, 7, 10, 0)), Ok(()));
        assert_eq!(
            visit_hours_open(Area::West, at(2026, 11, 7, 16, 59)),
            Ok(())
        );
        assert!(matches!(
            visit_hours_open(Area::West, at(2026, 11, 7, 17, 0)),
            Err(HoursRefusal::AfterHours { closes: 17, .. })
        ));
        // 18:00 is fine in the east, not in the west.
        assert_eq!(visit_hours_open(Area::East, at(2026, 11, 7, 18, 0)), Ok(()));
    }

    #[test]
    fn professional_three_pcs_not_four() {
        // 「Professionalプラン3台まで」
        let start = at(2026, 11, 4, 10, 0);
        let ok = check_booking(&request(Plan::Professional, OFFICE_EAST, start, 3), &[]).unwrap();
        assert!(ok.free && ok.charges.is_empty());
        assert_eq!(ok.month, (2026, 11));
        let refused =
            check_booking(&request(Plan::Professional, OFFICE_EAST, start, 4), &[]).unwrap_err();
        assert!(matches!(
            refused,
            BookingRefusal::TooManyPcs {
                allowed: 3,
                requested: 4,
                ..
            }
        ));
        assert_eq!(refused.clause(), VisitClause::Quota);
        assert!(refused.explain().contains("Professionalプラン3台まで"));
        // 「Lightプラン：1台、Standardプラン：1台」
        for plan in [Plan::Light, Plan::Standard] {
            assert!(check_booking(&request(plan, OFFICE_EAST, start, 1), &[]).is_ok());
            assert!(matches!(
                check_booking(&request(plan, OFFICE_EAST, start, 2), &[]),
                Err(BookingRefusal::TooManyPcs { allowed: 1, .. })
            ));
        }
    }

    #[test]
    fn zero_pcs_refused() {
        let start = at(2026, 11, 4, 10, 0);
        assert_eq!(
            check_booking(&request(Plan::Light, OFFICE_EAST, start, 0), &[]),
            Err(BookingRefusal::NoPcs)
        );
    }

    #[test]
    fn outside_hours_refused_with_the_hours_clause() {
        let night = at(2026, 11, 4, 22, 0);
        let refused = check_booking(&request(Plan::Light, OFFICE_EAST, night, 1), &[]).unwrap_err();
        assert!(matches!(
            refused,
            BookingRefusal::Hours(HoursRefusal::AfterHours { .. })
        ));
        assert!(refused.explain().contains("9：00～19：00"));
    }

    #[test]
    fn light_second_visit_in_a_month_refused_next_month_ok() {
        // 「月1回」, counted per calendar month in Japan time.
        let first = BookedVisit {
            start: at(2026, 11, 4, 10, 0),
            pcs: 1,
        };
        let later = at(2026, 11, 20, 10, 0);
        let refused =
            check_booking(&request(Plan::Light, OFFICE_EAST, later, 1), &[first]).unwrap_err();
        assert!(matches!(
            refused,
            BookingRefusal::MonthlyVisitsUsed {
                year: 2026,
                month: 11,
                used: 1,
                allowed: 1
            }
        ));
        let december = at(2026, 12, 1, 10, 0);
        assert!(check_booking(&request(Plan::Light, OFFICE_EAST, december, 1), &[first]).is_ok());
    }

    #[test]
    fn month_boundary_is_japan_time() {
        // 2026-11-30 23:30 JST is 14:30 UTC and 2026-12-01 00:10 JST is 15:10 UTC, both on
        // 30 November in UTC: only the second is December's.
        let november_late = BookedVisit {
            start: at(2026, 11, 30, 23, 30),
            pcs: 1,
        };
        let december_early = BookedVisit {
            start: at(2026, 12, 1, 0, 10),
            pcs: 1,
        };
        assert_eq!(december_early.start - november_late.start, 40 * 60);
        let december_visit = at(2026, 12, 2, 10, 0);
        let req = request(Plan::Light, OFFICE_EAST, december_visit, 1);
        assert!(check_booking(&req, &[november_late]).is_ok());
        assert!(matches!(
            check_booking(&req, &[november_late, december_early]),
            Err(BookingRefusal::MonthlyVisitsUsed {
                month: 12,
                used: 1,
                ..
            })
        ));
        assert_eq!(
            visits_in_month(&[november_late, december_early], december_visit).count(),
            1
        );
    }

    #[test]
    fn island_pays_travel_but_visit_is_free() {
        // 「一部島嶼部にて訪問サポートをご利用いただく場合、別途交通費（実費）をご負担いただきます」
        let island = Site {
            island: true,
            ..OFFICE_EAST
        };
        let start = at(2026, 11, 4, 10, 0);
        let booking = check_booking(&request(Plan::Standard, island, start, 1), &[]).unwrap();
        assert!(booking.free);
        assert_eq!(booking.charges, vec![Charge::TravelCostIsland]);
        assert_eq!(booking.charges[0].clause(), VisitClause::IslandTravel);
    }

    #[test]
    fn vpn_site_is_a_paid_visit_outside_the_quota() {
        // 「訪問サポートはVPN接続拠点などは、有料で対応いたします」
        let vpn = Site {
            vpn_connected: true,
            ..OFFICE_EAST
        };
        let start = at(2026, 11, 4, 10, 0);
        let used = BookedVisit { start, pcs: 1 };
        let booking = check_booking(&request(Plan::Light, vpn, start, 2), &[used]).unwrap();
        assert!(!booking.free);
        assert_eq!(booking.charges, vec![Charge::VpnSite]);
        // Hours still apply to a paid visit.
        let night = at(2026, 11, 4, 20, 0);
        assert!(check_booking(&request(Plan::Light, vpn, night, 1), &[]).is_err());
    }

    #[test]
    fn area_parses_and_serialises() {
        assert_eq!(" East ".parse::<Area>(), Ok(Area::East));
        assert_eq!("west".parse::<Area>(), Ok(Area::West));
        assert!("north".parse::<Area>().is_err());
        assert_eq!(serde_json::to_string(&Area::West).unwrap(), "\"west\"");
        let site: Site =
            serde_json::from_str(r#"{"area":"east","island":false,"vpn_connected":true}"#).unwrap();
        assert!(site.vpn_connected);
    }
}

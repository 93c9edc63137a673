//! Plans, prices and what a plan gives the box (料金 and サービスの概要 of the seed).
//!
//! Every amount is the seed's own figure. The seed marks its price tables 税込 (tax included)
//! and gives **no tax-exclusive amount anywhere**, so none is stored: a 10 % back-calculation
//! would be our number, not the seed's. The one amount without a 税込 marker is the 16,500 yen
//! cancellation fee (section 3 has none); it is billed as written and tagged
//! [`TaxBasis::NotStated`].

use crate::clause::Clause;
use crate::error::Refusal;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::iter::Sum;
use std::ops::Add;
use std::str::FromStr;

/// An amount in yen.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Yen(pub u64);

impl Add for Yen {
    type Output = Yen;
    fn add(self, other: Yen) -> Yen {
        Yen(self.0 + other.0)
    }
}

impl Sum for Yen {
    fn sum<I: Iterator<Item = Yen>>(iter: I) -> Yen {
        iter.fold(Yen(0), Add::add)
    }
}

impl fmt::Display for Yen {
    /// `16,500円`, as the seed writes amounts.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.0.to_string();
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        write!(f, "{out}円")
    }
}

/// Whether the seed says an amount includes tax.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TaxBasis {
    /// The seed's table is headed (税込).
    Included,
    /// The seed gives the amount without saying (the cancellation fee). Billed as written.
    NotStated,
}

/// A price as the seed gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Price {
    pub amount: Yen,
    pub tax: TaxBasis,
}

const fn incl(amount: u64) -> Price {
    Price {
        amount: Yen(amount),
        tax: TaxBasis::Included,
    }
}

/// A box's plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Plan {
    Light,
    Standard,
    Professional,
}

impl Plan {
    pub const ALL: [Plan; 3] = [Plan::Light, Plan::Standard, Plan::Professional];

    /// `light`, `standard`, `professional`.
    pub fn as_str(self) -> &'static str {
        match self {
            Plan::Light => "light",
            Plan::Standard => "standard",
            Plan::Professional => "professional",
        }
    }

    /// The seed's name: `Lightプラン`.
    pub fn seed_name(self) -> &'static str {
        match self {
            Plan::Light => "Lightプラン",
            Plan::Standard => "Standardプラン",
            Plan::Professional => "Professionalプラン",
        }
    }

    /// Light and Standard may be installed by the customer with no initial fee
    /// (「LightプランとStandardプランについては、お客さまご自身で…初期費用はかかりません」).
    pub fn self_install_waived(self) -> bool {
        matches!(self, Plan::Light | Plan::Standard)
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Plan {
    type Err = Refusal;

    /// `light`, `Light`, `LIGHT`, `Lightプラン` (and the same for the other two). Anything else is
    /// [`Refusal::UnknownPlan`], citing the plan table.
    fn from_str(text: &str) -> Result<Plan, Refusal> {
        let name = text.trim();
        let name = name.strip_suffix("プラン").unwrap_or(name);
        Plan::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(name))
            .ok_or_else(|| Refusal::UnknownPlan {
                name: text.to_string(),
                clause: Clause::PlanNames,
            })
    }
}

/// Rental (a monthly fee) or purchase (売切: one price, 60 months).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContractKind {
    Rental,
    Purchase,
}

/// The rental monthly fee per box: 「レンタルタイプ 月額利用料 (税込)」.
pub fn rental_monthly(plan: Plan) -> Price {
    match plan {
        Plan::Light => incl(7_150),
        Plan::Standard => incl(11_000),
        Plan::Professional => incl(18_700),
    }
}

/// The 24 h repair option on rental, per box and month: 「24時間訪問修理オプション 専用BOX1台ごと 2,200円」.
pub const REPAIR_OPTION_MONTHLY: Price = incl(2_200);

/// The purchase price per box, paid once; the 24 h option is part of it.
pub fn purchase_price(plan: Plan, repair_24h: bool) -> Price {
    match (plan, repair_24h) {
        (Plan::Light, true) => incl(473_000),
        (Plan::Light, false) => incl(363_000),
        (Plan::Standard, true) => incl(671_000),
        (Plan::Standard, false) => incl(561_000),
        (Plan::Professional, true) => incl(1_067_000),
        (Plan::Professional, false) => incl(957_000),
    }
}

/// 基本工事費, per job (1工事ごと), rental and purchase alike.
pub const BASIC_WORK: Price = incl(4_950);

/// 機器工事費, per box (専用BOX1台ごと), rental and purchase alike.
pub const DEVICE_WORK: Price = incl(11_000);

/// 機器再生費用 (解約金): 「16,500円の機器再生費用 (解約金)」. Section 3 has no 税込 marker.
pub const CANCELLATION_FEE: Price = Price {
    amount: Yen(16_500),
    tax: TaxBasis::NotStated,
};

/// No cancellation fee in months 1..=3 of the service (「その月を含む3カ月の間に解約された場合は…いただきません」).
pub const FEE_FREE_MONTHS: i32 = 3;

/// The fee is due up to month 24 (「4カ月め以降、24カ月以内に解約された場合」), and up to month 24
/// counted from a plan change's month (「プラン変更を行った月から24カ月以内」).
pub const FEE_LAST_MONTH: i32 = 24;

/// A purchase runs 60 months from its start month (「利用開始月から60カ月」).
pub const PURCHASE_MONTHS: i32 = 60;

/// The gateway's `--tier` value (`mimamori-gw run --tier light|standard|professional`;
/// `gateway::dataplane::Tier`, a clap value enum whose names are these, lowercase).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GatewayTier {
    Light,
    Standard,
    Professional,
}

impl GatewayTier {
    /// The `--tier` argument.
    pub fn as_str(self) -> &'static str {
        match self {
            GatewayTier::Light => "light",
            GatewayTier::Standard => "standard",
            GatewayTier::Professional => "professional",
        }
    }
}

/// Free on-site OS recovery: once a month, up to a number of PCs, at the box's site
/// (「月1回 Lightプラン：1台、Standardプラン：1台、Professionalプラン3台まで」).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OnSiteQuota {
    pub visits_per_month: u8,
    pub pcs_per_visit: u8,
}

/// When a failed box is repaired on site. Both windows are every day of the year (年中無休).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "hours")]
pub enum RepairWindow {
    /// 「9：00～17：00（年中無休）で訪問修理に伺います」: from `from_hour`:00 to `to_hour`:00.
    Daytime { from_hour: u8, to_hour: u8 },
    /// With the option: 「24時間訪問修理オプションサービス」.
    AllDay,
}

impl RepairWindow {
    /// Whether a repair visit may be dispatched at `hour:minute` (local time).
    /// Choice: the daytime window includes 9:00 and ends before 17:00 (17:00 itself is out).
    pub fn covers(self, hour: u8, minute: u8) -> bool {
        match self {
            RepairWindow::AllDay => hour < 24 && minute < 60,
            RepairWindow::Daytime { from_hour, to_hour } => {
                minute < 60 && hour >= from_hour && hour < to_hour
            }
        }
    }

    pub fn clause(self) -> Clause {
        match self {
            RepairWindow::Daytime { .. } => Clause::RepairDaytime,
            RepairWindow::AllDay => Clause::RepairOption,
        }
    }
}

/// What a plan gives a box: the data the gateway, the desk's visit planning and fault
/// dispatch read. ("The plan drives the box.")
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BoxProfile {
    pub plan: Plan,
    /// The gateway layout to run (`--tier`).
    pub tier: GatewayTier,
    pub on_site: OnSiteQuota,
    pub repair: RepairWindow,
}

/// The profile of a plan, with or without the 24 h repair option.
pub fn profile(plan: Plan, repair_24h: bool) -> BoxProfile {
    let (tier, pcs) = match plan {
        Plan::Light => (GatewayTier::Light, 1),
        Plan::Standard => (GatewayTier::Standard, 1),
        Plan::Professional => (GatewayTier::Professional, 3),
    };
    BoxProfile {
        plan,
        tier,
        on_site: OnSiteQuota {
            visits_per_month: 1,
            pcs_per_visit: pcs,
        },
        repair: if repair_24h {
            RepairWindow::AllDay
        } else {
            RepairWindow::Daytime {
                from_hour: 9,
                to_hour: 17,
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yen_prints_like_the_seed() {
        assert_eq!(Yen(7_150).to_string(), "7,150円");
        assert_eq!(Yen(1_067_000).to_string(), "1,067,000円");
        assert_eq!(Yen(0).to_string(), "0円");
        assert_eq!(Yen(950).to_string(), "950円");
    }

    #[test]
    fn plans_parse_by_any_of_their_names() {
        assert_eq!("light".parse::<Plan>().unwrap(), Plan::Light);
        assert_eq!(
            "Professionalプラン".parse::<Plan>().unwrap(),
            Plan::Professional
        );
        assert_eq!(" STANDARD ".parse::<Plan>().unwrap(), Plan::Standard);
        assert!(matches!(
            "premium".parse::<Plan>(),
            Err(Refusal::UnknownPlan {
                clause: Clause::PlanNames,
                ..
            })
        ));
    }

    #[test]
    fn upgrade_order_is_the_monthly_fee_order() {
        // 「アップグレードとは、月額利用料の安いプランから高いプランへの変更」: the enum order must
        // agree with the fees, since changes are classified by comparing plans.
        for w in Plan::ALL.windows(2) {
            assert!(w[0] < w[1]);
            assert!(rental_monthly(w[0]).amount < rental_monthly(w[1]).amount);
        }
    }

    #[test]
    fn repair_window_edges() {
        let day = profile(Plan::Light, false).repair;
        assert!(day.covers(9, 0) && day.covers(16, 59));
        assert!(!day.covers(8, 59) && !day.covers(17, 0));
        assert!(profile(Plan::Light, true).repair.covers(3, 0));
    }
}

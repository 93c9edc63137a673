//! What an event costs, line by line, and why.
//!
//! [`fees`] answers for one contract, one event, one date; [`apply`] answers and makes the
//! change. A line with amount 0 is a fee the terms waive, kept so the answer says why nothing
//! is charged (the cancellation fee in months 1–3, the work fees on a self-installed Light box,
//! a purchase's month…).
//!
//! # How the cancellation fee (機器再生費用) is decided
//!
//! The fee is due on a cancellation when either window is open:
//! - months 4 to 24 of the service (「本サービスご利用開始月の4カ月め以降、24カ月以内に解約された場合」);
//!   months 1–3 are free (「その月を含む3カ月の間に解約された場合は、…いただきません」);
//! - months 1 to 24 counted from the month of the last plan change, the change month being
//!   month 1 (「プラン変更を行った月から24カ月以内に解約された場合に機器再生費用 (解約金) が必要」),
//!   with no free months (「変更後プラン利用開始月から3カ月以内であっても」).
//!   Choice: 「変更後プラン利用開始月」 is read as the change month, the month the change window
//!   counts from, not the month after (when the new fee starts); and a change made in months
//!   1–3 of the service opens this window too, so cancelling in month 3 after a change in month
//!   2 pays.
//!
//! A plan change itself:
//! - an upgrade never pays the fee (「24カ月以内にアップグレードにあたるプラン変更をする場合、
//!   機器再生費用 (解約金) は不要」; after month 24 no sentence charges an upgrade either);
//! - a downgrade pays it (「ダウングレードにあたるプラン変更をする場合、機器再生費用 (解約金) をお支払い
//!   いただけますが」) except in months 1–3 of the service. Choice: only while a cancellation
//!   on that date would pay it (months 4–24, or inside a change window). The sentence does
//!   not repeat 「24カ月以内」; read literally it would charge a downgrade in month 40, while
//!   cancelling and taking a new contract at the lower plan would cost nothing — the fee is
//!   named the cancellation fee and section 3 bounds it to 24 months;
//! - upgrade and downgrade are by monthly fee (「月額利用料の安いプランから高いプランへの変更」).

use crate::clause::Clause;
use crate::contract::{ChangeKind, Contract, Installer, JobId, Work};
use crate::date::YearMonth;
use crate::error::Refusal;
use crate::plans::{
    BASIC_WORK, CANCELLATION_FEE, ContractKind, DEVICE_WORK, FEE_FREE_MONTHS, FEE_LAST_MONTH,
    PURCHASE_MONTHS, Plan, Price, REPAIR_OPTION_MONTHLY, TaxBasis, Yen, purchase_price,
    rental_monthly,
};
use serde::{Deserialize, Serialize};
use std::fmt;
use time::Date;

/// The price of a line that has none of its own (a purchase's month, a licence end).
const NOTHING: Price = Price {
    amount: Yen(0),
    tax: TaxBasis::Included,
};

/// Something that happens to a contract and may cost something.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "event")]
pub enum Event {
    /// The contract starts (its date must be the start date): purchase price, work fees.
    Start,
    /// The calendar month holding the date: the monthly fee (rental) or nothing (purchase).
    Month,
    /// A plan change (rental only).
    PlanChange { to: Plan, work: Work },
    /// The 24 h repair option on or off (rental only).
    OptionChange { repair_24h: bool },
    /// The contract is cancelled on the date.
    Cancellation,
    /// A purchase's licence has ended (the date is on or after the licence end).
    LicenceEnd,
}

/// What a line is for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "item")]
pub enum Item {
    /// The month's fee for a plan (0 on a purchase).
    MonthlyFee { plan: Plan },
    /// The 24 h repair option's month on rental.
    RepairOption,
    /// A purchase's one-off price.
    PurchasePrice { plan: Plan, repair_24h: bool },
    /// 基本工事費, once per job.
    BasicWork { job: JobId },
    /// 機器工事費, per box.
    DeviceWork,
    /// 機器再生費用 (解約金).
    CancellationFee,
    /// The option changed (no charge of its own).
    OptionChange { repair_24h: bool },
    /// A purchase's licence ended: the service ends, nothing is charged or refunded.
    LicenceEnd,
}

impl fmt::Display for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Item::MonthlyFee { plan } => {
                write!(f, "monthly fee, {} (月額利用料)", plan.seed_name())
            }
            Item::RepairOption => {
                f.write_str("24 h repair option, monthly (24時間訪問修理オプション)")
            }
            Item::PurchasePrice { plan, repair_24h } => write!(
                f,
                "purchase price, {} {} (売切タイプ)",
                plan.seed_name(),
                if *repair_24h {
                    "with the 24 h repair option"
                } else {
                    "without the option"
                }
            ),
            Item::BasicWork { job } => write!(f, "basic work fee, job {} (基本工事費)", job.0),
            Item::DeviceWork => f.write_str("device work fee (機器工事費)"),
            Item::CancellationFee => f.write_str("cancellation fee (機器再生費用 (解約金))"),
            Item::OptionChange { repair_24h } => write!(
                f,
                "24 h repair option {}",
                if *repair_24h { "added" } else { "removed" }
            ),
            Item::LicenceEnd => f.write_str("licence ended (契約満了)"),
        }
    }
}

/// One line of a charge: how much, for what, and from which clause.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChargeLine {
    pub amount: Yen,
    pub tax: TaxBasis,
    pub item: Item,
    /// Why the line is (or is not) charged.
    pub clause: Clause,
    /// Where the amount is written, when that is another clause than `clause` (a downgrade's
    /// fee is charged by the plan-change note, its 16,500 yen comes from section 3).
    pub amount_from: Option<Clause>,
}

impl ChargeLine {
    fn charged(price: Price, item: Item, clause: Clause) -> ChargeLine {
        ChargeLine {
            amount: price.amount,
            tax: price.tax,
            item,
            clause,
            amount_from: None,
        }
    }

    fn waived(price: Price, item: Item, clause: Clause) -> ChargeLine {
        ChargeLine {
            amount: Yen(0),
            tax: price.tax,
            item,
            clause,
            amount_from: None,
        }
    }

    fn with_amount_from(mut self, clause: Clause) -> ChargeLine {
        self.amount_from = Some(clause);
        self
    }

    /// Whether the line is a waived (zero) fee.
    pub fn is_waived(&self) -> bool {
        self.amount == Yen(0)
    }
}

impl fmt::Display for ChargeLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:>12}  {}  [{}]",
            self.amount.to_string(),
            self.item,
            self.clause
        )
    }
}

/// What `event` on `date` costs `contract` (the contract as it stands before the event).
/// Refused exactly when the operation itself would be refused.
pub fn fees(contract: &Contract, event: &Event, date: Date) -> Result<Vec<ChargeLine>, Refusal> {
    match event {
        Event::Start => start_fees(contract, date),
        Event::Month => month_fees(contract, YearMonth::of(date), date),
        Event::PlanChange { to, work } => plan_change_fees(contract, *to, work, date),
        Event::OptionChange { repair_24h } => {
            contract.check_option_change(*repair_24h, date)?;
            let item = Item::OptionChange {
                repair_24h: *repair_24h,
            };
            Ok(vec![ChargeLine::waived(
                REPAIR_OPTION_MONTHLY,
                item,
                Clause::ModelOptionChange,
            )])
        }
        Event::Cancellation => cancellation_fees(contract, date),
        Event::LicenceEnd => licence_end_fees(contract, date),
    }
}

/// [`fees`], then the event applied: the new contract and what it cost, or a refusal and
/// nothing changed.
pub fn apply(
    contract: &Contract,
    event: &Event,
    date: Date,
) -> Result<(Contract, Vec<ChargeLine>), Refusal> {
    let lines = fees(contract, event, date)?;
    let next = match event {
        Event::PlanChange { to, work } => contract.change_plan(*to, work.clone(), date)?,
        Event::OptionChange { repair_24h } => contract.change_option(*repair_24h, date)?,
        Event::Cancellation => contract.cancel(date)?,
        Event::Start | Event::Month | Event::LicenceEnd => contract.clone(),
    };
    Ok((next, lines))
}

/// The recorded events of a contract, each with the event it was and its date: the start, its
/// changes in order, its cancellation. (A licence end is not recorded: it follows from the
/// start.)
pub fn history(contract: &Contract) -> Vec<(Date, Event)> {
    let mut out = vec![(contract.start(), Event::Start)];
    for change in contract.changes() {
        let event = match &change.what {
            ChangeKind::Plan { to, work } => Event::PlanChange {
                to: *to,
                work: work.clone(),
            },
            ChangeKind::Option { repair_24h } => Event::OptionChange {
                repair_24h: *repair_24h,
            },
        };
        out.push((change.date, event));
    }
    if let Some(date) = contract.cancelled() {
        out.push((date, Event::Cancellation));
    }
    out
}

fn start_fees(c: &Contract, date: Date) -> Result<Vec<ChargeLine>, Refusal> {
    if date != c.start() {
        return Err(Refusal::NotTheStart {
            date,
            start: c.start(),
            clause: Clause::ModelDatesInOrder,
        });
    }
    let terms = c.opening();
    let mut lines = Vec::new();
    if terms.kind == ContractKind::Purchase {
        let price = purchase_price(terms.plan, terms.repair_24h);
        let item = Item::PurchasePrice {
            plan: terms.plan,
            repair_24h: terms.repair_24h,
        };
        lines.push(ChargeLine::charged(
            price,
            item,
            Clause::PurchasePrice(terms.plan),
        ));
    }
    lines.extend(work_lines(terms.plan, &terms.work, None));
    Ok(lines)
}

/// The initial work fees of a start (`again` = None) or of a plan change
/// (`again` = the change's clause, 「プラン変更の際は再度初期費用がかかります」).
///
/// Choice: on a change the fees are the new plan's, and the self-install waiver applies to
/// them as to a start: the seed says the initial fees are charged again, and the initial
/// fees are defined with that waiver.
fn work_lines(plan: Plan, work: &Work, again: Option<Clause>) -> Vec<ChargeLine> {
    let basic = Item::BasicWork {
        job: work.job.clone(),
    };
    if work.installer == Installer::Customer && plan.self_install_waived() {
        return vec![
            ChargeLine::waived(BASIC_WORK, basic, Clause::SelfInstallWaiver),
            ChargeLine::waived(DEVICE_WORK, Item::DeviceWork, Clause::SelfInstallWaiver),
        ];
    }
    match again {
        None => vec![
            ChargeLine::charged(BASIC_WORK, basic, Clause::BasicWork),
            ChargeLine::charged(DEVICE_WORK, Item::DeviceWork, Clause::DeviceWork),
        ],
        Some(clause) => vec![
            ChargeLine::charged(BASIC_WORK, basic, clause).with_amount_from(Clause::BasicWork),
            ChargeLine::charged(DEVICE_WORK, Item::DeviceWork, clause)
                .with_amount_from(Clause::DeviceWork),
        ],
    }
}

fn month_fees(c: &Contract, month: YearMonth, date: Date) -> Result<Vec<ChargeLine>, Refusal> {
    if month < c.start_month() {
        return Err(Refusal::OutOfOrder {
            what: "monthly fee",
            date,
            not_before: c.start(),
            clause: Clause::ModelDatesInOrder,
        });
    }
    if let Some(ended) = c.cancelled().filter(|d| YearMonth::of(*d) < month) {
        return Err(Refusal::Ended {
            ended,
            clause: Clause::ModelEnded,
        });
    }
    if c.kind() == ContractKind::Purchase {
        if month.nth_since(c.start_month()) > PURCHASE_MONTHS {
            let ended = c.licence_end().expect("a purchase has a licence end");
            return Err(Refusal::Ended {
                ended,
                clause: Clause::LicenceEnd,
            });
        }
        let item = Item::MonthlyFee {
            plan: c.opening().plan,
        };
        return Ok(vec![ChargeLine::waived(
            NOTHING,
            item,
            Clause::PurchaseNoMonthly,
        )]);
    }
    // Rental. A change in this month or the last one is why this month's plan is what it is.
    let changed_near = |plan_change: bool| {
        c.changes().iter().any(|ch| {
            matches!(ch.what, ChangeKind::Plan { .. }) == plan_change && {
                let m = YearMonth::of(ch.date);
                m == month || m == month.plus(-1)
            }
        })
    };
    let plan = c.billed_plan(month);
    let fee_clause = Clause::RentalMonthly(plan);
    let mut line = ChargeLine::charged(rental_monthly(plan), Item::MonthlyFee { plan }, fee_clause);
    if changed_near(true) {
        line = ChargeLine {
            clause: Clause::ChangeFeeNextMonth,
            ..line
        }
        .with_amount_from(fee_clause);
    }
    let mut lines = vec![line];
    if c.billed_option(month) {
        let mut opt = ChargeLine::charged(
            REPAIR_OPTION_MONTHLY,
            Item::RepairOption,
            Clause::RepairOptionMonthly,
        );
        if changed_near(false) {
            opt = ChargeLine {
                clause: Clause::ModelOptionChange,
                ..opt
            }
            .with_amount_from(Clause::RepairOptionMonthly);
        }
        lines.push(opt);
    }
    Ok(lines)
}

/// Which window makes a rental cancellation on `date` pay the fee, if any.
pub fn fee_window(c: &Contract, date: Date) -> Option<Clause> {
    if let Some((changed, _)) = c.last_plan_change(date) {
        let n = YearMonth::of(date).nth_since(YearMonth::of(changed));
        if n <= FEE_LAST_MONTH {
            return Some(if n <= FEE_FREE_MONTHS {
                Clause::ChangeCancelEvenEarly
            } else {
                Clause::ChangeCancelWindow
            });
        }
    }
    let n = c.service_month(date);
    (n > FEE_FREE_MONTHS && n <= FEE_LAST_MONTH).then_some(Clause::RentalCancelFee)
}

fn plan_change_fees(
    c: &Contract,
    to: Plan,
    work: &Work,
    date: Date,
) -> Result<Vec<ChargeLine>, Refusal> {
    c.check_plan_change(to, date)?;
    let from = c.plan_on(date);
    let upgrade = rental_monthly(to).amount > rental_monthly(from).amount;
    let fee = if upgrade {
        ChargeLine::waived(
            CANCELLATION_FEE,
            Item::CancellationFee,
            Clause::UpgradeWaiver,
        )
    } else if c.service_month(date) <= FEE_FREE_MONTHS {
        ChargeLine::waived(
            CANCELLATION_FEE,
            Item::CancellationFee,
            Clause::DowngradeFee,
        )
    } else if let Some(window) = fee_window(c, date) {
        ChargeLine::charged(
            CANCELLATION_FEE,
            Item::CancellationFee,
            Clause::DowngradeFee,
        )
        .with_amount_from(window)
    } else {
        // Past every window: see the module notes on why a late downgrade pays nothing.
        ChargeLine::waived(
            CANCELLATION_FEE,
            Item::CancellationFee,
            Clause::RentalCancelFee,
        )
    };
    let mut lines = work_lines(to, work, Some(Clause::ChangeInitialFees));
    lines.push(fee);
    Ok(lines)
}

fn cancellation_fees(c: &Contract, date: Date) -> Result<Vec<ChargeLine>, Refusal> {
    c.check_cancel(date)?;
    let line = if c.kind() == ContractKind::Purchase {
        ChargeLine::waived(
            CANCELLATION_FEE,
            Item::CancellationFee,
            Clause::PurchaseCancel,
        )
    } else if let Some(window) = fee_window(c, date) {
        let line = ChargeLine::charged(CANCELLATION_FEE, Item::CancellationFee, window);
        if window == Clause::RentalCancelFee {
            line
        } else {
            line.with_amount_from(Clause::RentalCancelFee)
        }
    } else if c.service_month(date) <= FEE_FREE_MONTHS {
        ChargeLine::waived(
            CANCELLATION_FEE,
            Item::CancellationFee,
            Clause::RentalCancelFirstMonths,
        )
    } else {
        ChargeLine::waived(
            CANCELLATION_FEE,
            Item::CancellationFee,
            Clause::RentalCancelFee,
        )
    };
    Ok(vec![line])
}

fn licence_end_fees(c: &Contract, date: Date) -> Result<Vec<ChargeLine>, Refusal> {
    let Some(ends) = c.licence_end() else {
        return Err(Refusal::NoLicenceTerm {
            clause: Clause::PurchaseTerm,
        });
    };
    if let Some(ended) = c.cancelled().filter(|d| *d < ends) {
        return Err(Refusal::Ended {
            ended,
            clause: Clause::ModelEnded,
        });
    }
    if date < ends {
        return Err(Refusal::LicenceNotEnded {
            date,
            ends,
            clause: Clause::LicenceEnd,
        });
    }
    let price = Price {
        amount: Yen(0),
        tax: TaxBasis::Included,
    };
    Ok(vec![ChargeLine::waived(
        price,
        Item::LicenceEnd,
        Clause::LicenceEnd,
    )])
}

/// The lines of a switch: the old contract's cancellation, then the new one's start.
pub fn switch_fees(old: &Contract, date: Date, new: &Contract) -> Result<Vec<ChargeLine>, Refusal> {
    let mut lines = fees(old, &Event::Cancellation, date)?;
    lines.extend(fees(new, &Event::Start, new.start())?);
    Ok(lines)
}

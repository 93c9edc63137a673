//! A box's contract, its changes and its end.
//!
//! A [`Contract`] is the opening terms plus the dated changes and the cancellation, in order.
//! Every question (which plan serves the box on a day, which plan a month bills) is answered
//! from that history, so a stored contract is never out of step with itself. Operations take
//! `&self` and return a new contract or a [`Refusal`]; nothing is ever half applied. A
//! contract read back through serde is replayed through the same operations, so one that
//! breaks a rule does not load.

use crate::clause::Clause;
use crate::date::{YearMonth, iso};
use crate::error::Refusal;
use crate::plans::{BoxProfile, ContractKind, PURCHASE_MONTHS, Plan, profile};
use serde::{Deserialize, Serialize};
use time::{Date, Duration};

/// The desk's number for one installation job (one visit may set up several boxes: the basic
/// work fee is 「1工事ごと」, once per job).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(pub String);

/// Who installs and sets up the box.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Installer {
    /// The provider's engineers (the work fees apply).
    Provider,
    /// The customer (「お客さまご自身で機器の設置、設定をされる場合」): no initial fee on Light and
    /// Standard. Choice: Professional is not named by that sentence, so it pays the work fees
    /// whoever installs it.
    Customer,
}

/// The installation work of a start or a plan change.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Work {
    pub installer: Installer,
    pub job: JobId,
}

impl Work {
    pub fn provider(job: &str) -> Work {
        Work {
            installer: Installer::Provider,
            job: JobId(job.to_string()),
        }
    }

    pub fn by_customer(job: &str) -> Work {
        Work {
            installer: Installer::Customer,
            job: JobId(job.to_string()),
        }
    }
}

/// What a change changes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum ChangeKind {
    /// A plan change (rental only), with its installation work (「再度初期費用がかかります」).
    Plan { to: Plan, work: Work },
    /// The 24 h repair option on or off (rental only).
    Option { repair_24h: bool },
}

/// A dated change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    #[serde(with = "iso")]
    pub date: Date,
    pub what: ChangeKind,
}

/// The terms a contract opens with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewContract {
    pub customer: String,
    pub box_id: String,
    pub kind: ContractKind,
    pub plan: Plan,
    /// The 24 h repair option (monthly on rental; part of the price on purchase).
    pub repair_24h: bool,
    #[serde(with = "iso")]
    pub start: Date,
    pub work: Work,
}

/// How a contract is stored: the opening terms, the changes, the cancellation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContractRecord {
    #[serde(flatten)]
    pub opening: NewContract,
    #[serde(default)]
    pub changes: Vec<Change>,
    #[serde(default, with = "iso::option")]
    pub cancelled: Option<Date>,
}

/// One box's contract. Build it with [`Contract::open`]; change it with the operations.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "ContractRecord", into = "ContractRecord")]
pub struct Contract {
    opening: NewContract,
    changes: Vec<Change>,
    cancelled: Option<Date>,
}

impl TryFrom<ContractRecord> for Contract {
    type Error = Refusal;

    /// Replays the record through the operations: a record that breaks a rule is refused.
    fn try_from(record: ContractRecord) -> Result<Contract, Refusal> {
        let mut contract = Contract::open(record.opening);
        for change in record.changes {
            contract = match change.what {
                ChangeKind::Plan { to, work } => contract.change_plan(to, work, change.date)?,
                ChangeKind::Option { repair_24h } => {
                    contract.change_option(repair_24h, change.date)?
                }
            };
        }
        if let Some(date) = record.cancelled {
            contract = contract.cancel(date)?;
        }
        Ok(contract)
    }
}

impl From<Contract> for ContractRecord {
    fn from(c: Contract) -> ContractRecord {
        ContractRecord {
            opening: c.opening,
            changes: c.changes,
            cancelled: c.cancelled,
        }
    }
}

/// A switch between rental and purchase: the old contract cancelled, a new one opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Switch {
    pub cancelled: Contract,
    pub new: Contract,
    /// 「レンタルタイプを解約し、改めて売切タイプの新規契約が必要です」 or the reverse.
    pub clause: Clause,
}

impl Contract {
    /// A new contract: rental or purchase, from its start date.
    pub fn open(terms: NewContract) -> Contract {
        Contract {
            opening: terms,
            changes: Vec::new(),
            cancelled: None,
        }
    }

    pub fn customer(&self) -> &str {
        &self.opening.customer
    }

    pub fn box_id(&self) -> &str {
        &self.opening.box_id
    }

    pub fn kind(&self) -> ContractKind {
        self.opening.kind
    }

    pub fn start(&self) -> Date {
        self.opening.start
    }

    pub fn opening(&self) -> &NewContract {
        &self.opening
    }

    pub fn changes(&self) -> &[Change] {
        &self.changes
    }

    /// The cancellation date, if cancelled.
    pub fn cancelled(&self) -> Option<Date> {
        self.cancelled
    }

    /// Month 1 of the service: the month of the start date.
    pub fn start_month(&self) -> YearMonth {
        YearMonth::of(self.opening.start)
    }

    /// Which month of the service `date` falls in (the start month is 1; 0 or less before it).
    pub fn service_month(&self, date: Date) -> i32 {
        YearMonth::of(date).nth_since(self.start_month())
    }

    /// A purchase's licence end: the first day after its 60 months
    /// (「開始月から60カ月間を経過した以降は、契約満了 (機器のライセンス切れ) のためサービス提供終了」).
    /// `None` on rental.
    pub fn licence_end(&self) -> Option<Date> {
        (self.kind() == ContractKind::Purchase)
            .then(|| self.start_month().plus(PURCHASE_MONTHS).first_day())
    }

    /// The last day the box is served: the cancellation date (choice: a cancellation takes
    /// effect at the end of its day), or the day before the licence ends.
    pub fn last_day(&self) -> Option<Date> {
        let licence = self.licence_end().map(|d| d - Duration::days(1));
        match (self.cancelled, licence) {
            (Some(c), Some(l)) => Some(c.min(l)),
            (c, l) => c.or(l),
        }
    }

    /// Whether the box is served on `date`.
    pub fn in_force_on(&self, date: Date) -> bool {
        date >= self.start() && self.last_day().is_none_or(|last| date <= last)
    }

    /// Whether any day of `month` is served (the month is then billed whole).
    pub fn in_force_in(&self, month: YearMonth) -> bool {
        month >= self.start_month()
            && self
                .last_day()
                .is_none_or(|last| month <= YearMonth::of(last))
    }

    /// The date of the last recorded event (start, change or cancellation).
    pub fn last_event(&self) -> Date {
        let last_change = self.changes.last().map(|c| c.date);
        let mut last = self.opening.start;
        for d in [last_change, self.cancelled].into_iter().flatten() {
            last = last.max(d);
        }
        last
    }

    fn plan_changes(&self) -> impl DoubleEndedIterator<Item = (Date, Plan)> + '_ {
        self.changes.iter().filter_map(|c| match &c.what {
            ChangeKind::Plan { to, .. } => Some((c.date, *to)),
            ChangeKind::Option { .. } => None,
        })
    }

    fn option_changes(&self) -> impl DoubleEndedIterator<Item = (Date, bool)> + '_ {
        self.changes.iter().filter_map(|c| match &c.what {
            ChangeKind::Option { repair_24h } => Some((c.date, *repair_24h)),
            ChangeKind::Plan { .. } => None,
        })
    }

    /// The last plan change dated on or before `date`.
    pub fn last_plan_change(&self, date: Date) -> Option<(Date, Plan)> {
        self.plan_changes().rev().find(|(d, _)| *d <= date)
    }

    /// The plan serving the box on `date`. Choice: a change serves from its own date (the work
    /// is done then); only the fee waits for the next month.
    pub fn plan_on(&self, date: Date) -> Plan {
        self.last_plan_change(date)
            .map_or(self.opening.plan, |(_, p)| p)
    }

    /// Whether the 24 h repair option serves the box on `date`.
    pub fn repair_24h_on(&self, date: Date) -> bool {
        let last = self.option_changes().rev().find(|(d, _)| *d <= date);
        last.map_or(self.opening.repair_24h, |(_, on)| on)
    }

    /// The plan `month` is billed at: 「契約変更日の翌月から変更後プランの月額利用料」, so a change
    /// counts from the month after its date.
    pub fn billed_plan(&self, month: YearMonth) -> Plan {
        let last = self
            .plan_changes()
            .rev()
            .find(|(d, _)| YearMonth::of(*d) < month);
        last.map_or(self.opening.plan, |(_, p)| p)
    }

    /// Whether `month` bills the 24 h option (an option change bills from the month after, as a
    /// plan change does: our rule, the seed is silent).
    pub fn billed_option(&self, month: YearMonth) -> bool {
        let last = self
            .option_changes()
            .rev()
            .find(|(d, _)| YearMonth::of(*d) < month);
        last.map_or(self.opening.repair_24h, |(_, on)| on)
    }

    /// What the plan gives the box on `date`; `None` when the box is not served that day.
    pub fn box_profile(&self, date: Date) -> Option<BoxProfile> {
        self.in_force_on(date)
            .then(|| profile(self.plan_on(date), self.repair_24h_on(date)))
    }

    /// The contract as it stood before its change number `index` (and before any cancellation):
    /// the state that change's fees are computed from.
    pub(crate) fn before_change(&self, index: usize) -> Contract {
        Contract {
            opening: self.opening.clone(),
            changes: self.changes[..index].to_vec(),
            cancelled: None,
        }
    }

    /// The contract with its cancellation undone: the state the cancellation's fees come from.
    pub(crate) fn before_cancellation(&self) -> Contract {
        Contract {
            cancelled: None,
            ..self.clone()
        }
    }

    /// Refusals shared by every change: purchase, ended, out of order.
    fn check_change(&self, date: Date, plan: bool, what: &'static str) -> Result<(), Refusal> {
        if self.kind() == ContractKind::Purchase {
            return Err(if plan {
                Refusal::PurchasePlanChange {
                    clause: Clause::PurchaseNoPlanChange,
                }
            } else {
                Refusal::PurchaseOptionChange {
                    clause: Clause::PurchaseNoOptionChange,
                }
            });
        }
        if let Some(ended) = self.cancelled {
            return Err(Refusal::Ended {
                ended,
                clause: Clause::ModelEnded,
            });
        }
        self.check_order(date, what)
    }

    fn check_order(&self, date: Date, what: &'static str) -> Result<(), Refusal> {
        let not_before = self.last_event();
        if date < not_before {
            return Err(Refusal::OutOfOrder {
                what,
                date,
                not_before,
                clause: Clause::ModelDatesInOrder,
            });
        }
        Ok(())
    }

    /// Checks a plan change without making it (the fees use this too).
    pub fn check_plan_change(&self, to: Plan, date: Date) -> Result<(), Refusal> {
        self.check_change(date, true, "plan change")?;
        if self.plan_on(date) == to {
            return Err(Refusal::SamePlan {
                plan: to,
                clause: Clause::ModelNothingChanged,
            });
        }
        Ok(())
    }

    /// Changes the plan (rental only: 「レンタルタイプ：可能」, 「売切タイプ：不可能」).
    pub fn change_plan(&self, to: Plan, work: Work, date: Date) -> Result<Contract, Refusal> {
        self.check_plan_change(to, date)?;
        let mut next = self.clone();
        next.changes.push(Change {
            date,
            what: ChangeKind::Plan { to, work },
        });
        Ok(next)
    }

    /// Checks an option change without making it.
    pub fn check_option_change(&self, repair_24h: bool, date: Date) -> Result<(), Refusal> {
        self.check_change(date, false, "option change")?;
        if self.repair_24h_on(date) == repair_24h {
            return Err(Refusal::SameOption {
                on: repair_24h,
                clause: Clause::ModelNothingChanged,
            });
        }
        Ok(())
    }

    /// Turns the 24 h repair option on or off (rental only; a purchase cannot:
    /// 「…などのオプション変更も行うことはできません」).
    pub fn change_option(&self, repair_24h: bool, date: Date) -> Result<Contract, Refusal> {
        self.check_option_change(repair_24h, date)?;
        let mut next = self.clone();
        next.changes.push(Change {
            date,
            what: ChangeKind::Option { repair_24h },
        });
        Ok(next)
    }

    /// Checks a cancellation without making it.
    pub fn check_cancel(&self, date: Date) -> Result<(), Refusal> {
        if let Some(ended) = self.cancelled {
            return Err(Refusal::Ended {
                ended,
                clause: Clause::ModelEnded,
            });
        }
        if let Some(ends) = self.licence_end().filter(|ends| date >= *ends) {
            return Err(Refusal::Ended {
                ended: ends,
                clause: Clause::LicenceEnd,
            });
        }
        self.check_order(date, "cancellation")
    }

    /// Cancels the contract on `date`.
    pub fn cancel(&self, date: Date) -> Result<Contract, Refusal> {
        self.check_cancel(date)?;
        Ok(Contract {
            cancelled: Some(date),
            ..self.clone()
        })
    }

    /// Switches rental ↔ purchase: cancels this contract on `date` and opens `new`, which
    /// must be of the other kind and start on or after `date`.
    pub fn switch(&self, date: Date, new: NewContract) -> Result<Switch, Refusal> {
        let clause = match (self.kind(), new.kind) {
            (ContractKind::Rental, ContractKind::Purchase) => Clause::RentalToPurchase,
            (ContractKind::Purchase, ContractKind::Rental) => Clause::PurchaseToRental,
            _ => {
                return Err(Refusal::NotASwitch {
                    clause: Clause::ModelSwitchKinds,
                });
            }
        };
        if new.start < date {
            return Err(Refusal::OutOfOrder {
                what: "the new contract's start",
                date: new.start,
                not_before: date,
                clause: Clause::ModelSwitchKinds,
            });
        }
        let cancelled = self.cancel(date)?;
        Ok(Switch {
            cancelled,
            new: Contract::open(new),
            clause,
        })
    }
}

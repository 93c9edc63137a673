//! A customer's monthly statement: every box, every contract, one calendar month.
//!
//! For each contract the month holds: its start (purchase price, work fees), its changes,
//! its cancellation, a purchase's licence end, and the month's fee when the box is served in
//! any day of the month (whole months, [`Clause::ModelWholeMonths`]). Each event's fees are
//! computed from the contract as it stood before that event, so a statement for a past month
//! reads the same whatever happened later.
//!
//! The basic work fee is 「1工事ごと」: when several boxes (or a start and a change) name the
//! same job in one month, the first line carries the 4,950 yen and the others are waived,
//! citing the same clause.

use crate::clause::Clause;
use crate::contract::Contract;
use crate::date::{YearMonth, iso};
use crate::error::Refusal;
use crate::fees::{ChargeLine, Event, Item, fees, history};
use crate::plans::Yen;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::fmt;
use time::Date;

/// A line of a statement: which box, which day, the charge.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatementLine {
    pub box_id: String,
    #[serde(with = "iso")]
    pub date: Date,
    #[serde(flatten)]
    pub charge: ChargeLine,
}

/// One customer's charges for one month.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statement {
    pub customer: String,
    pub month: YearMonth,
    /// By date, then in the order the contracts were given.
    pub lines: Vec<StatementLine>,
    pub total: Yen,
}

/// The statement of `customer` for `month`, over their contracts (one per box; a box that
/// switched rental ↔ purchase has two). A contract of another customer is refused, and so
/// is the whole statement.
pub fn statement(
    customer: &str,
    contracts: &[Contract],
    month: YearMonth,
) -> Result<Statement, Refusal> {
    let mut dated: Vec<(Date, usize, StatementLine)> = Vec::new();
    for contract in contracts {
        if contract.customer() != customer {
            return Err(Refusal::OtherCustomer {
                box_id: contract.box_id().to_string(),
                customer: customer.to_string(),
                other: contract.customer().to_string(),
                clause: Clause::ModelOneCustomer,
            });
        }
        let mut push = |date: Date, lines: Vec<ChargeLine>| {
            for charge in lines {
                let seq = dated.len();
                let line = StatementLine {
                    box_id: contract.box_id().to_string(),
                    date,
                    charge,
                };
                dated.push((date, seq, line));
            }
        };
        let mut changes = 0;
        for (date, event) in history(contract) {
            let before = match event {
                Event::Start => contract.before_change(0),
                Event::Cancellation => contract.before_cancellation(),
                _ => {
                    changes += 1;
                    contract.before_change(changes - 1)
                }
            };
            if YearMonth::of(date) == month {
                push(date, fees(&before, &event, date)?);
            }
        }
        let licence_end = contract.licence_end().filter(|ends| {
            YearMonth::of(*ends) == month && contract.cancelled().is_none_or(|c| c >= *ends)
        });
        if let Some(ends) = licence_end {
            push(ends, fees(contract, &Event::LicenceEnd, ends)?);
        }
        if contract.in_force_in(month) {
            let date = month.first_day().max(contract.start());
            push(date, fees(contract, &Event::Month, date)?);
        }
    }
    dated.sort_by_key(|(date, seq, _)| (*date, *seq));
    let mut jobs = HashSet::new();
    let lines: Vec<StatementLine> = dated
        .into_iter()
        .map(|(_, _, mut line)| {
            let repeated = match &line.charge.item {
                Item::BasicWork { job } => !line.charge.is_waived() && !jobs.insert(job.clone()),
                _ => false,
            };
            if repeated {
                line.charge.amount = Yen(0);
                line.charge.clause = Clause::BasicWork;
                line.charge.amount_from = None;
            }
            line
        })
        .collect();
    let total = lines.iter().map(|l| l.charge.amount).sum();
    Ok(Statement {
        customer: customer.to_string(),
        month,
        lines,
        total,
    })
}

impl Statement {
    /// The lines of one box.
    pub fn for_box<'a>(&'a self, box_id: &'a str) -> impl Iterator<Item = &'a StatementLine> {
        self.lines.iter().filter(move |l| l.box_id == box_id)
    }
}

impl fmt::Display for Statement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "statement {} for {}", self.month, self.customer)?;
        for l in &self.lines {
            writeln!(
                f,
                "{} {:<10} {}",
                crate::date::format_date(l.date),
                l.box_id,
                l.charge
            )?;
        }
        write!(f, "total {}", self.total)
    }
}

//! Refusals: every one names the clause it follows from.

use crate::clause::Clause;
use crate::date::format_date;
use crate::plans::Plan;
use thiserror::Error;
use time::Date;

/// Why an operation or a fee question was refused. Nothing is applied when one is returned:
/// operations hand back a new contract only on success.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum Refusal {
    #[error("unknown plan {name:?}: the plans are light, standard, professional ({clause})")]
    UnknownPlan { name: String, clause: Clause },

    #[error("a purchased box cannot change plan ({clause})")]
    PurchasePlanChange { clause: Clause },

    #[error("a purchased box cannot change its 24 h repair option ({clause})")]
    PurchaseOptionChange { clause: Clause },

    #[error("the contract ended on {} ({clause})", format_date(*ended))]
    Ended { ended: Date, clause: Clause },

    #[error(
        "{what} dated {} comes before {} ({clause})",
        format_date(*date),
        format_date(*not_before)
    )]
    OutOfOrder {
        what: &'static str,
        date: Date,
        not_before: Date,
        clause: Clause,
    },

    #[error(
        "the contract starts on {}, not on {} ({clause})",
        format_date(*start),
        format_date(*date)
    )]
    NotTheStart {
        date: Date,
        start: Date,
        clause: Clause,
    },

    #[error("the box is already on the {plan} plan ({clause})")]
    SamePlan { plan: Plan, clause: Clause },

    #[error("the 24 h repair option is already {} ({clause})", if *on { "on" } else { "off" })]
    SameOption { on: bool, clause: Clause },

    #[error(
        "the licence runs until {}; it has not ended on {} ({clause})",
        format_date(*ends),
        format_date(*date)
    )]
    LicenceNotEnded {
        date: Date,
        ends: Date,
        clause: Clause,
    },

    #[error("a rental contract has no licence term ({clause})")]
    NoLicenceTerm { clause: Clause },

    #[error("a switch must go between rental and purchase ({clause})")]
    NotASwitch { clause: Clause },

    #[error("contract for box {box_id} belongs to customer {other}, not {customer} ({clause})")]
    OtherCustomer {
        box_id: String,
        customer: String,
        other: String,
        clause: Clause,
    },
}

impl Refusal {
    /// The clause the refusal follows from.
    pub fn clause(&self) -> Clause {
        match self {
            Refusal::UnknownPlan { clause, .. }
            | Refusal::PurchasePlanChange { clause }
            | Refusal::PurchaseOptionChange { clause }
            | Refusal::Ended { clause, .. }
            | Refusal::OutOfOrder { clause, .. }
            | Refusal::NotTheStart { clause, .. }
            | Refusal::SamePlan { clause, .. }
            | Refusal::SameOption { clause, .. }
            | Refusal::LicenceNotEnded { clause, .. }
            | Refusal::NoLicenceTerm { clause }
            | Refusal::NotASwitch { clause }
            | Refusal::OtherCustomer { clause, .. } => *clause,
        }
    }
}

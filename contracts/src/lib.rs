//! Plans, contracts and fees of the mimamori service, exactly as the service terms state them.
//!
//! The authority is the seed, `../shared/seed/service-description-ja.txt` (its 料金 section
//! and the プラン変更 conditions); every amount and rule here is one of its sentences, each
//! named by a [`Clause`]. Where the seed is silent or ambiguous the choice is written at the
//! place it is made and listed in `docs/CONTRACTS.md`.
//!
//! Pure logic: no I/O, no clock, no async. Dates are [`time::Date`]s the caller gives.
//!
//! - [`plans`]: plans, prices, and what a plan gives the box ([`plans::profile`]: the
//!   gateway's `--tier`, the on-site quota, the repair window).
//! - [`contract`]: a box's contract and its operations (plan change, option change,
//!   cancellation, rental ↔ purchase switch), each returning a new contract or a [`Refusal`].
//! - [`fees`]: [`fees()`] — what an event costs, line by line, with the clause.
//! - [`statement`]: a customer's monthly statement over all their boxes.
//!
//! ```
//! use mimamori_contracts::*;
//! use time::{Date, Month};
//!
//! let start = Date::from_calendar_date(2025, Month::April, 10).unwrap();
//! let box1 = Contract::open(NewContract {
//!     customer: "c1".into(),
//!     box_id: "box-1".into(),
//!     kind: ContractKind::Rental,
//!     plan: Plan::Standard,
//!     repair_24h: false,
//!     start,
//!     work: Work::provider("job-1"),
//! });
//! let lines = fees(&box1, &Event::Month, start).unwrap();
//! assert_eq!(lines[0].amount, Yen(11_000));
//! assert_eq!(box1.box_profile(start).unwrap().tier.as_str(), "standard");
//! ```

#![forbid(unsafe_code)]

pub mod clause;
pub mod contract;
pub mod date;
pub mod error;
pub mod fees;
pub mod plans;
pub mod statement;

pub use clause::Clause;
pub use contract::{
    Change, ChangeKind, Contract, ContractRecord, Installer, JobId, NewContract, Switch, Work,
};
pub use date::YearMonth;
pub use error::Refusal;
pub use fees::{ChargeLine, Event, Item, apply, fees, history, switch_fees};
pub use plans::{
    BoxProfile, ContractKind, GatewayTier, OnSiteQuota, Plan, Price, RepairWindow, TaxBasis, Yen,
    profile,
};
pub use statement::{Statement, StatementLine, statement};

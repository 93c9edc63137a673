//! Shared by the test files: the seed, read when it is there, and small builders.

#![allow(dead_code)]

use mimamori_contracts::*;
use std::sync::OnceLock;
use time::{Date, Month};

/// The seed with every run of whitespace made one space (its tables are tab-separated), or
/// `None` when the file is not beside the checkout (`../shared/seed/`, or `$MIMAMORI_SEED`).
pub fn seed() -> Option<&'static str> {
    static SEED: OnceLock<Option<String>> = OnceLock::new();
    SEED.get_or_init(|| {
        let path = std::env::var("MIMAMORI_SEED").unwrap_or_else(|_| {
            format!(
                "{}/../../shared/seed/service-description-ja.txt",
                env!("CARGO_MANIFEST_DIR")
            )
        });
        std::fs::read_to_string(path).ok().map(|s| squash(&s))
    })
    .as_deref()
}

pub fn squash(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Panics unless `quote` is in the seed (skipped, with a note, when the seed is absent).
/// A citation starting `model:` names one of our own rules and is not looked up.
pub fn assert_cited(quote: &str) {
    if let Some(rule) = quote.strip_prefix("model:") {
        assert!(!rule.trim().is_empty(), "a model citation names its rule");
        return;
    }
    match seed() {
        Some(seed) => assert!(
            seed.contains(&squash(quote)),
            "not in the seed: 「{quote}」"
        ),
        None => eprintln!("seed not found; citation 「{quote}」 not checked"),
    }
}

pub fn d(year: i32, month: u8, day: u8) -> Date {
    Date::from_calendar_date(year, Month::try_from(month).unwrap(), day).unwrap()
}

pub fn ym(year: i32, month: u8) -> YearMonth {
    YearMonth::new(year, month).unwrap()
}

pub fn terms(kind: ContractKind, plan: Plan, repair_24h: bool, start: Date) -> NewContract {
    NewContract {
        customer: "c1".into(),
        box_id: "b1".into(),
        kind,
        plan,
        repair_24h,
        start,
        work: Work::provider("j1"),
    }
}

pub fn rental(plan: Plan, start: Date) -> Contract {
    Contract::open(terms(ContractKind::Rental, plan, false, start))
}

pub fn purchase(plan: Plan, repair_24h: bool, start: Date) -> Contract {
    Contract::open(terms(ContractKind::Purchase, plan, repair_24h, start))
}

/// `(amount, clause)` of each line.
pub fn lines(charges: &[ChargeLine]) -> Vec<(u64, Clause)> {
    charges.iter().map(|l| (l.amount.0, l.clause)).collect()
}

pub fn total(charges: &[ChargeLine]) -> u64 {
    charges.iter().map(|l| l.amount.0).sum()
}

/// The cancellation-fee line of a set of lines.
pub fn cancel_fee(charges: &[ChargeLine]) -> (u64, Clause) {
    let l = charges
        .iter()
        .find(|l| l.item == Item::CancellationFee)
        .expect("a fee line");
    (l.amount.0, l.clause)
}

//! Every clause's quote is the seed's own text (but for whitespace).

mod common;

use mimamori_contracts::Clause;

#[test]
fn every_seed_clause_is_quoted_verbatim() {
    let Some(seed) = common::seed() else {
        eprintln!("seed not found beside the checkout; quotes not checked");
        return;
    };
    let missing: Vec<_> = Clause::all()
        .into_iter()
        .filter(|c| c.is_seed() && !seed.contains(&common::squash(c.quote())))
        .map(|c| format!("{c:?}: 「{}」", c.quote()))
        .collect();
    assert!(
        missing.is_empty(),
        "quotes not in the seed:\n{}",
        missing.join("\n")
    );
}

#[test]
fn clauses_are_listed_once_and_model_rules_are_marked() {
    let all = Clause::all();
    let unique: std::collections::HashSet<_> = all.iter().collect();
    assert_eq!(unique.len(), all.len());
    assert!(all.iter().any(|c| !c.is_seed()));
    for c in &all {
        let shown = c.to_string();
        assert!(if c.is_seed() {
            shown.contains('「')
        } else {
            shown.starts_with("model rule")
        });
    }
}

/// The scenario table is the two `scenarios_*.rs` files: every scenario is a `#[test] fn sNN_…`
/// whose first line is its citation.
#[test]
fn the_scenario_table_has_at_least_forty_cited_scenarios() {
    let files = [
        include_str!("scenarios_fees.rs"),
        include_str!("scenarios_changes.rs"),
    ];
    let lines = || files.iter().flat_map(|f| f.lines());
    let marker = concat!("    assert_cited", "(\"");
    let tests = lines().filter(|l| l.starts_with("fn s")).count();
    let cites: Vec<&str> = lines().filter(|l| l.starts_with(marker)).collect();
    assert_eq!(
        cites.len(),
        tests,
        "every scenario cites its sentence on its first line"
    );
    assert!(tests >= 40, "{tests} scenarios");
    let from_seed = cites.iter().filter(|l| !l.contains("\"model:")).count();
    assert!(from_seed >= 40, "{from_seed} scenarios cite the seed");
}

//! The classify stage on the synthesizer's office mix, without and with the web filter
//! (same frames, same run): what inspecting the first packets of every flow costs. Each
//! iteration starts from an empty flow table, so every flow is inspected again.
//! With `MIMAMORI_DATA` (or ../shared/data) present, also with the real lists loaded.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use mimamori_benches::office_mix;
use mimamori_pipelines::flow::Side;
use mimamori_pipelines::web::{Hosts, WebFilter, WebRules};
use mimamori_pipelines::{Classifier, Policy};
use mimamori_signatures::category::{Builder, CategoryDb};
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn db_from(build: impl FnOnce(&mut Builder)) -> Arc<CategoryDb> {
    let mut b = Builder::default();
    build(&mut b);
    Arc::new(CategoryDb::from_bytes(b.finish(0).0).expect("db"))
}

fn web(c: &mut Criterion) {
    let frames = office_mix(2000);
    let bytes: u64 = frames.iter().map(|f| f.len() as u64).sum();
    let mut policy = Policy::default();
    policy.flows.capacity = 8192;
    let policy = Arc::new(policy);
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/categories");
    let mut dbs = vec![(
        "sample lists",
        db_from(|b| b.add_squidguard_dir(&samples, "samples", "-").unwrap()),
    )];
    let data = std::env::var_os("MIMAMORI_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"));
    let ut1 = data.join("categories/ut1");
    if ut1.is_dir() {
        // The real lists with the sample ones: the mix's listed names still match.
        dbs.push((
            "ut1 + samples",
            db_from(|b| {
                b.add_squidguard_dir(&ut1, "ut1", "-").unwrap();
                b.add_squidguard_dir(&samples, "samples", "-").unwrap();
            }),
        ));
    } else {
        eprintln!("web bench: {} not found, real lists skipped", ut1.display());
    }
    let side_of = |m: &mimamori_pipelines::PacketMeta| policy.sides.side_of(m);
    let run = |cls: &mut Classifier| {
        for (i, f) in frames.iter().enumerate() {
            cls.process_with(f, i as u64 * 1000, side_of);
            cls.injects.clear();
            if i % 64 == 0 {
                cls.tick(i as u64 * 1000);
                cls.events.drain().for_each(drop);
            }
        }
        let _ = Side::Lan;
    };
    let mut g = c.benchmark_group("office_mix_2000_sessions");
    g.throughput(Throughput::Bytes(bytes));
    g.sample_size(20);
    g.bench_function("classify", |b| {
        b.iter_batched_ref(
            || Classifier::new(policy.clone()),
            run,
            BatchSize::LargeInput,
        )
    });
    for (name, db) in dbs {
        let rules = Arc::new(WebRules::new(&policy.web, db, "<embedded default>").expect("rules"));
        g.bench_function(format!("classify+web ({name})"), |b| {
            b.iter_batched_ref(
                || {
                    let hosts = Hosts::new(&rules.config);
                    Classifier::with_web(policy.clone(), Some(WebFilter::new(rules.clone(), hosts)))
                },
                run,
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, web);
criterion_main!(benches);

//! The classify stage on the synthesizer's office mix, without and with the signature
//! inspector (same frames, same run): what reassembly, app-layer buffers and rule matching
//! cost per byte. A small rule set written here always runs; with `MIMAMORI_DATA` (or
//! ../shared/data) present, ET Open too. Each iteration starts from an empty flow table.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use mimamori_benches::office_mix;
use mimamori_pipelines::classify::Stages;
use mimamori_pipelines::inspect::{Inspector, InspectorLimits, IpsSettings, RuleBook};
use mimamori_pipelines::{Classifier, Policy};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Rules over every kind of buffer the mix carries (HTTP, TLS, DNS, raw TCP/UDP).
const RULES: &str = r#"
alert http any any -> any any (msg:"admin uri"; http.uri; content:"/admin/"; sid:1;)
alert http any any -> any any (msg:"curl"; http.user_agent; content:"curl/"; sid:2;)
alert http any any -> any any (msg:"exe body"; file_data; content:"MZ"; startswith; sid:3;)
alert tls any any -> any any (msg:"sni"; tls.sni; content:".evil.test"; endswith; sid:4;)
alert dns any any -> any any (msg:"query"; dns.query; content:"c2."; sid:5;)
alert tcp any any -> any any (msg:"token"; content:"EVILTOKEN"; sid:6;)
alert udp any any -> any any (msg:"udp token"; content:"|de ad be ef|"; sid:7;)
alert tcp any any -> any 25 (msg:"smtp attach"; content:"Content-Disposition|3a| attachment"; nocase; sid:8;)
"#;

fn book(path: &Path) -> Arc<RuleBook> {
    Arc::new(RuleBook::load(path, &Default::default()).expect("rules"))
}

fn ips(c: &mut Criterion) {
    let frames = office_mix(2000);
    let bytes: u64 = frames.iter().map(|f| f.len() as u64).sum();
    let mut policy = Policy::default();
    policy.flows.capacity = 8192;
    let policy = Arc::new(policy);
    let small = std::env::temp_dir().join(format!("mimamori-bench-{}.rules", std::process::id()));
    std::fs::write(&small, RULES).expect("write rules");
    let mut books = vec![("8 rules", book(&small))];
    let _ = std::fs::remove_file(&small);
    let data = std::env::var_os("MIMAMORI_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"));
    let et = data.join("rules-et-open");
    if et.is_dir() {
        books.push(("ET Open", book(&et)));
    } else {
        eprintln!("ips bench: {} not found, ET Open skipped", et.display());
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
    };
    let mut g = c.benchmark_group("office_mix_2000_sessions");
    g.throughput(Throughput::Bytes(bytes));
    g.sample_size(10);
    g.bench_function("classify", |b| {
        b.iter_batched_ref(
            || Classifier::new(policy.clone()),
            run,
            BatchSize::LargeInput,
        )
    });
    for (name, book) in books {
        let settings = IpsSettings::compile(book, &policy.ips);
        g.bench_function(format!("classify+ips ({name})"), |b| {
            b.iter_batched_ref(
                || {
                    let stages = Stages {
                        web: None,
                        ips: Some(Inspector::new(settings.clone(), InspectorLimits::default())),
                    };
                    Classifier::with_stages(policy.clone(), stages)
                },
                run,
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, ips);
criterion_main!(benches);

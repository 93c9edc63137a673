use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mimamori_benches::tcp_ack;
use mimamori_pipelines::{Policy, Side, parse};
use std::fmt::Write;
use std::hint::black_box;

/// A policy of `n` rules, none of which matches the benchmark packet until the last.
fn policy(n: usize) -> Policy {
    let mut text = String::from("[sides]\nlan_subnets = [\"198.18.0.0/16\"]\n");
    for i in 0..n {
        let _ = write!(
            text,
            "[[firewall.rule]]\nname = \"r{i}\"\nfrom = \"lan\"\ndst = [\"10.{}.{}.0/24\"]\nproto = \"tcp\"\ndst_ports = [\"{}-{}\"]\naction = \"deny\"\n",
            (i >> 8) & 255,
            i & 255,
            1000 + i % 1000,
            1100 + i % 1000
        );
    }
    Policy::from_toml("bench.toml", &text).expect("bench policy")
}

fn decide(c: &mut Criterion) {
    let mut g = c.benchmark_group("firewall_decide");
    let m = parse(&tcp_ack(1, false)).unwrap();
    for n in [10usize, 100, 1000] {
        let p = policy(n);
        g.throughput(Throughput::Elements(1));
        g.bench_function(format!("rules_{n}_no_match"), |b| {
            b.iter(|| black_box(p.firewall.decide(Side::Lan, black_box(&m))))
        });
    }
    g.finish();
}

criterion_group!(benches, decide);
criterion_main!(benches);

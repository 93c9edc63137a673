use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mimamori_benches::{office_mix, tcp_ack};
use std::hint::black_box;

fn parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse");
    for (name, frame) in [
        ("tcp_ack_v4_60B", tcp_ack(1, false)),
        ("tcp_ack_v6_74B", tcp_ack(1, true)),
    ] {
        g.throughput(Throughput::Elements(1));
        g.bench_function(name, |b| {
            b.iter(|| mimamori_pipelines::parse(black_box(&frame)))
        });
    }
    let mix = office_mix(200);
    g.throughput(Throughput::Elements(mix.len() as u64));
    g.bench_function("office_mix", |b| {
        b.iter(|| {
            for f in &mix {
                let _ = black_box(mimamori_pipelines::parse(black_box(f)));
            }
        })
    });
    g.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);

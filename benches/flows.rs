use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use mimamori_pipelines::flow::{FlowKey, FlowTable, OnFull};
use mimamori_pipelines::packet::v4_bits;
use std::hint::black_box;

fn key(i: u32) -> FlowKey {
    FlowKey::new(
        v4_bits((0xc612_0000 | (i & 0xffff)).to_be_bytes()),
        10_000 + (i >> 16) as u16,
        v4_bits([198, 19, 0, 1]),
        443,
        6,
        0,
    )
    .0
}

fn flows(c: &mut Criterion) {
    let mut g = c.benchmark_group("flow_table");
    for n in [1_000u32, 100_000] {
        let mut t = FlowTable::new(n as usize * 2, OnFull::EvictOldest);
        for i in 0..n {
            let k = key(i);
            let h = t.hash(&k);
            t.insert(k, h, 0, |_, _, _| {});
        }
        let keys: Vec<_> = (0..n)
            .map(|i| key(i.wrapping_mul(2_654_435_761) % n))
            .collect();
        g.throughput(Throughput::Elements(keys.len() as u64));
        g.bench_function(format!("lookup_hit_{n}"), |b| {
            b.iter(|| {
                for k in &keys {
                    black_box(t.find(k, t.hash(k)));
                }
            })
        });
        g.throughput(Throughput::Elements(1000));
        g.bench_function(format!("lookup_miss_{n}"), |b| {
            b.iter(|| {
                for i in 0..1000u32 {
                    let k = key(n + i);
                    black_box(t.find(&k, t.hash(&k)));
                }
            })
        });
    }
    g.throughput(Throughput::Elements(10_000));
    g.bench_function("insert_remove_10k", |b| {
        b.iter_batched(
            || FlowTable::new(16_384, OnFull::EvictOldest),
            |mut t| {
                for i in 0..10_000 {
                    let k = key(i);
                    let h = t.hash(&k);
                    let idx = t.insert(k, h, 0, |_, _, _| {});
                    if i % 2 == 0
                        && let Some(idx) = idx
                    {
                        t.remove(idx);
                    }
                }
                t
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, flows);
criterion_main!(benches);

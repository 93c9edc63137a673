//! `mimamori-gw bench`: the macro benchmark of the firewall path (parse + flow lookup +
//! cached verdict) over an in-memory set of 64-byte packets, beside a parse-only baseline
//! over the same packets in the same run.

use mimamori_pipelines::packet::v4_bits;
use mimamori_pipelines::policy::FlowEvents;
use mimamori_pipelines::synth::Rng;
use mimamori_pipelines::wire::MacAddr;
use mimamori_pipelines::wire::emit::{self, Ip, L2, Transport};
use mimamori_pipelines::wire::tcp::flags::{ACK, SYN};
use mimamori_pipelines::{Classifier, ForwardReason, Policy, Side, Verdict};
use serde::Serialize;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Frames sit at this stride in one buffer, as mbufs would in a mempool.
const STRIDE: usize = 64;
const BURST: usize = 32;

#[derive(Clone, Debug)]
pub struct BenchConfig {
    pub flows: usize,
    pub packets: usize,
    pub seconds: f64,
    /// Visit flows in random order (worst case for caches) rather than round-robin.
    pub random: bool,
    pub seed: u64,
}

#[derive(Debug, Serialize)]
pub struct BenchResult {
    pub flows: usize,
    pub packets_in_set: usize,
    pub frame_bytes: usize,
    pub order: &'static str,
    pub baseline_parse_mpps: f64,
    pub firewall_path_mpps: f64,
    pub ratio_to_parse: f64,
    pub ns_per_packet: f64,
    pub forwarded_share: f64,
}

/// Flow `i`'s frame in one direction: LAN client 198.18.x.y:cport ↔ WAN server 198.19.z.1,
/// at least 60 bytes on the wire (64 with the FCS). `l4` gets (client port, from_lan) and
/// returns the transport header to use.
fn flow_frame_with(
    out: &mut [u8],
    i: usize,
    from_lan: bool,
    payload: &[u8],
    l4: impl Fn(u16, bool) -> Transport<'static>,
) -> usize {
    let client = v4_bits([198, 18, (i >> 8) as u8, i as u8]);
    let server = v4_bits([198, 19, (i >> 16) as u8 & 0x3f, 1]);
    let cport = 10_000 + (i >> 22) as u16;
    let (cmac, rmac) = (MacAddr([2, 0, 0, 0, 0, 1]), MacAddr([2, 0, 0, 0, 0xff, 1]));
    let ((smac, dmac), (src, dst)) = if from_lan {
        ((cmac, rmac), (client, server))
    } else {
        ((rmac, cmac), (server, client))
    };
    let l2 = L2 {
        src: smac,
        dst: dmac,
        ..L2::default()
    };
    let ip = Ip {
        src,
        dst,
        v4: true,
        ttl: 64,
        ident: 0,
    };
    let n = emit::build(out, &l2, &ip, &l4(cport, from_lan), payload).unwrap_or(0);
    out[n..60.max(n)].fill(0);
    60.max(n)
}

/// One TCP segment of flow `i` (server port 443).
fn flow_frame(out: &mut [u8], i: usize, from_lan: bool, flags: u8) -> usize {
    flow_frame_with(out, i, from_lan, &[], |cport, lan| {
        let (src_port, dst_port) = if lan { (cport, 443) } else { (443, cport) };
        Transport::Tcp {
            src_port,
            dst_port,
            seq: 1,
            ack: 1,
            flags,
            window: 1000,
            options: &[],
        }
    })
}

fn bench_policy(capacity: usize) -> Arc<Policy> {
    let mut p = Policy::default();
    p.flows.capacity = capacity;
    p.events.flow = FlowEvents::None;
    Arc::new(p)
}

/// Opens `n` flows with a full handshake each.
pub fn open_flows(cls: &mut Classifier, n: usize, now: u64) {
    let mut buf = [0u8; STRIDE];
    for i in 0..n {
        for (lan, flags) in [(true, SYN), (false, SYN | ACK), (true, ACK)] {
            let len = flow_frame(&mut buf, i, lan, flags);
            cls.process(&buf[..len], if lan { Side::Lan } else { Side::Wan }, now);
        }
    }
}

pub fn run(cfg: &BenchConfig) -> BenchResult {
    let flows = cfg.flows.clamp(1, 1 << 24);
    let mut cls = Classifier::new(bench_policy(flows.next_power_of_two().max(1024)));
    let now = 1_795_708_800_000_000_000u64;
    open_flows(&mut cls, flows, now);

    let mut rng = Rng::new(cfg.seed);
    let mut set = vec![0u8; cfg.packets * STRIDE];
    let mut sides = Vec::with_capacity(cfg.packets);
    for p in 0..cfg.packets {
        let i = if cfg.random {
            rng.below(flows as u64) as usize
        } else {
            p % flows
        };
        let lan = p % 2 == 0;
        flow_frame(&mut set[p * STRIDE..(p + 1) * STRIDE], i, lan, ACK);
        sides.push(if lan { Side::Lan } else { Side::Wan });
    }
    let frames = || set.chunks_exact(STRIDE).map(|c| &c[..60]);

    let budget = Duration::from_secs_f64(cfg.seconds.max(0.05));
    let baseline = measure(budget, cfg.packets, || {
        let mut ok = 0usize;
        for f in frames() {
            ok += usize::from(mimamori_pipelines::parse(black_box(f)).is_ok());
        }
        black_box(ok);
    });

    let (fwd0, pkts0) = (cls.stats.forwarded_total(), cls.stats.packets);
    let mut t = now;
    let mut verdicts = [Verdict::Forward(ForwardReason::Flow); BURST];
    let mut burst: Vec<&[u8]> = Vec::with_capacity(BURST);
    let path = measure(budget, cfg.packets, || {
        for (frames32, sides32) in set.chunks(STRIDE * BURST).zip(sides.chunks(BURST)) {
            burst.clear();
            burst.extend(frames32.chunks_exact(STRIDE).map(|c| &c[..60]));
            cls.process_burst(&burst, t, |i, _| sides32[i], &mut verdicts);
            black_box(&verdicts);
            t += 1_000;
            cls.tick(t);
        }
    });
    let forwarded_share =
        (cls.stats.forwarded_total() - fwd0) as f64 / (cls.stats.packets - pkts0).max(1) as f64;
    BenchResult {
        flows: cls.flows().len(),
        packets_in_set: cfg.packets,
        frame_bytes: 60,
        order: if cfg.random { "random" } else { "round-robin" },
        baseline_parse_mpps: baseline.0,
        firewall_path_mpps: path.0,
        ratio_to_parse: path.0 / baseline.0,
        ns_per_packet: 1e3 / path.0,
        forwarded_share,
    }
}

/// Runs `pass` (one pass over `per_pass` packets) until `budget` is spent; Mpps and passes.
fn measure(budget: Duration, per_pass: usize, mut pass: impl FnMut()) -> (f64, u64) {
    pass(); // warm caches and branch predictors
    let start = Instant::now();
    let mut passes = 0u64;
    while start.elapsed() < budget {
        pass();
        passes += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    ((passes as f64 * per_pass as f64) / secs / 1e6, passes)
}

#[derive(Debug, Serialize)]
pub struct MemoryResult {
    pub flows: usize,
    pub resident_bytes: u64,
    pub bytes_per_flow: f64,
    pub flow_entry_bytes: usize,
}

/// Resident memory of a flow table holding `n` flows (RSS growth while filling it).
pub fn memory(n: usize) -> std::io::Result<MemoryResult> {
    let before = rss_bytes()?;
    let mut cls = Classifier::new(bench_policy(n));
    open_flows(&mut cls, n, 1_795_708_800_000_000_000);
    let after = rss_bytes()?;
    let grown = after.saturating_sub(before);
    Ok(MemoryResult {
        flows: cls.flows().len(),
        resident_bytes: grown,
        bytes_per_flow: grown as f64 / n.max(1) as f64,
        flow_entry_bytes: std::mem::size_of::<mimamori_pipelines::flow::Flow>(),
    })
}

fn rss_bytes() -> std::io::Result<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm")?;
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok(pages * 4096)
}

/// Writes the live-bench traffic: `flows` UDP flows, one 60-byte frame per flow from the
/// LAN side to `lan`, and the replies to `wan` (for net_pcap ports with `infinite_rx=1`).
pub fn write_flow_pcaps(
    flows: usize,
    lan: &std::path::Path,
    wan: &std::path::Path,
) -> std::io::Result<()> {
    let mut lw = crate::capture::PcapWriter::create(lan)?;
    let mut ww = crate::capture::PcapWriter::create(wan)?;
    let mut buf = [0u8; STRIDE];
    for i in 0..flows {
        for (w, from_lan) in [(&mut lw, true), (&mut ww, false)] {
            let n = flow_frame_with(&mut buf, i, from_lan, &[0u8; 18], |cport, lan| {
                let (src_port, dst_port) = if lan { (cport, 5001) } else { (5001, cport) };
                Transport::Udp { src_port, dst_port }
            });
            w.write(i as u64 * 1000, &buf[..n])?;
        }
    }
    lw.finish()?;
    ww.finish()?;
    Ok(())
}

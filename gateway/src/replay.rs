//! `mimamori-gw replay`: a capture through the same classify stage the live path runs,
//! forwarded packets (and the gateway's own answers) to a pcap, events to EVE JSON.

use crate::capture::{CaptureError, CaptureReader, PcapWriter, to_ethernet};
use crate::eve::{EveWriter, PolicyHistory};
use crate::webfilter::WebSetup;
use anyhow::Context;
use mimamori_pipelines::classify::{Report, Stages};
use mimamori_pipelines::event::{EventQueue, EventRecord};
use mimamori_pipelines::inspect::{IdsStats, Inspector, InspectorLimits, IpsSettings, RuleBook};
use mimamori_pipelines::packet::ParseOptions;
use mimamori_pipelines::policy::SideMap;
use mimamori_pipelines::stage::Arrival;
use mimamori_pipelines::web::hosts::Host;
use mimamori_pipelines::wire::{ip_proto, tcp};
use mimamori_pipelines::{Classifier, ForwardReason, PacketMeta, Policy, Side, Verdict};
use serde::Serialize;
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

/// Frames per burst, as on the live path.
const BURST: usize = 32;

/// Up to [`BURST`] frames copied out of the reader, with their timestamps.
struct Burst {
    frames: Vec<Vec<u8>>,
    ts: Vec<u64>,
    /// Each frame's record number in the capture (1-based).
    cnt: Vec<u64>,
    n: usize,
    verdicts: Vec<Verdict>,
}

impl Burst {
    fn new() -> Self {
        Self {
            frames: (0..BURST).map(|_| Vec::with_capacity(2048)).collect(),
            ts: vec![0; BURST],
            cnt: vec![0; BURST],
            n: 0,
            verdicts: vec![Verdict::Forward(ForwardReason::NonIp); BURST],
        }
    }

    /// Adds a frame; true when the burst is full.
    fn push(&mut self, ts: u64, cnt: u64, data: &[u8]) -> bool {
        self.frames[self.n].clear();
        self.frames[self.n].extend_from_slice(data);
        self.ts[self.n] = ts;
        self.cnt[self.n] = cnt;
        self.n += 1;
        self.n == BURST
    }

    /// Classifies the burst (stamped with its first frame's time), writes what passed and
    /// the gateway's answers, exports events and runs expiry. Returns packets written.
    fn run(
        &mut self,
        cls: &mut Classifier,
        sides: &Sides,
        out: Option<&mut PcapWriter<BufWriter<File>>>,
        eve: Option<&mut EveWriter>,
        sink: &mut dyn FnMut(&EventRecord),
    ) -> anyhow::Result<u64> {
        if self.n == 0 {
            return Ok(0);
        }
        let mut frames: [&[u8]; BURST] = [&[]; BURST];
        for (f, buf) in frames.iter_mut().zip(&self.frames[..self.n]) {
            *f = buf;
        }
        let (ts, cnt) = (&self.ts, &self.cnt);
        cls.process_burst_at(
            &frames[..self.n],
            |i, m| Arrival {
                side: sides.side_of(m),
                now_ns: ts[i],
                pcap_cnt: cnt[i],
            },
            &mut self.verdicts[..self.n],
        );
        let mut written = 0;
        if let Some(w) = out {
            for i in 0..self.n {
                if self.verdicts[i].is_forward() {
                    w.write(self.ts[i], &self.frames[i])?;
                    written += 1;
                }
            }
            for (frame, _side) in cls.injects.iter() {
                w.write(self.ts[self.n - 1], frame)?;
                written += 1;
            }
        }
        cls.injects.clear();
        cls.tick(self.ts[self.n - 1]);
        export(&mut cls.events, eve, sink)?;
        self.n = 0;
        Ok(written)
    }
}

/// Hands every queued event to the sink and, when there is one, the EVE writer.
fn export(
    q: &mut EventQueue,
    mut eve: Option<&mut EveWriter>,
    sink: &mut dyn FnMut(&EventRecord),
) -> std::io::Result<()> {
    for rec in q.drain() {
        sink(&rec);
        if let Some(e) = eve.as_deref_mut() {
            e.write_one(&rec)?;
        }
    }
    Ok(())
}

/// How `replay` decides which port a frame arrived on (the capture is one wire).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LanSide {
    /// The policy's `[sides]`: a frame whose source MAC or IP is listed there came from
    /// the LAN, anything else from the WAN.
    #[default]
    Subnets,
    /// The host that opened a flow is on the LAN (captures from anywhere, whatever their
    /// addresses). The first packet seen of a flow decides: a TCP SYN without ACK was sent
    /// by the LAN host, a SYN-ACK was sent to it; otherwise its sender is the LAN host.
    /// Frames that are not IP fall back to `[sides]`.
    Initiator,
}

/// Flows remembered by [`LanSide::Initiator`] before the oldest is forgotten.
pub const INITIATOR_TABLE_CAP: usize = 1 << 20;

/// A flow's endpoints in a canonical order (the same for both directions): TCP and UDP by
/// addresses and ports, anything else (and later fragments) by addresses and protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct FlowEnds {
    lo: (u128, u16),
    hi: (u128, u16),
    proto: u8,
    vlan: u32,
}

/// One end of a flow: address and port (0 when the protocol has none).
type End = (u128, u16);

fn ends(m: &PacketMeta) -> (FlowEnds, End, End) {
    let ported = m.has_l4() && matches!(m.proto, ip_proto::TCP | ip_proto::UDP);
    let (sp, dp) = if ported {
        (m.src_port, m.dst_port)
    } else {
        (0, 0)
    };
    let (src, dst) = ((m.src, sp), (m.dst, dp));
    let (lo, hi) = if src <= dst { (src, dst) } else { (dst, src) };
    let key = FlowEnds {
        lo,
        hi,
        proto: m.proto,
        vlan: m.vlan_key(),
    };
    (key, src, dst)
}

/// The LAN end of every flow seen, bounded: past the cap the oldest flow is forgotten
/// (and counted); a forgotten flow seen again is decided anew by its next packet.
#[derive(Debug, Default)]
pub struct InitiatorTable {
    lan_end: HashMap<FlowEnds, End>,
    order: VecDeque<FlowEnds>,
    cap: usize,
    pub evicted: u64,
}

impl InitiatorTable {
    pub fn new(cap: usize) -> Self {
        Self {
            cap: cap.max(1),
            ..Self::default()
        }
    }

    /// The side the packet came from: LAN when its sender is the flow's LAN end.
    pub fn side_of(&mut self, m: &PacketMeta) -> Side {
        let (key, src, dst) = ends(m);
        let lan = match self.lan_end.get(&key) {
            Some(&lan) => lan,
            None => {
                let syn =
                    m.proto == ip_proto::TCP && m.has_l4() && m.tcp_flags & tcp::flags::SYN != 0;
                let lan = if syn && m.tcp_flags & tcp::flags::ACK != 0 {
                    dst
                } else {
                    src
                };
                if self.lan_end.len() >= self.cap
                    && let Some(old) = self.order.pop_front()
                {
                    self.lan_end.remove(&old);
                    self.evicted += 1;
                }
                self.lan_end.insert(key, lan);
                self.order.push_back(key);
                lan
            }
        };
        if src == lan { Side::Lan } else { Side::Wan }
    }

    pub fn len(&self) -> usize {
        self.lan_end.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lan_end.is_empty()
    }
}

/// The side of each frame, as `--lan-side` says.
enum Sides {
    Subnets(SideMap),
    /// A `RefCell` because the classifier asks through an `Fn`; the replay is one thread.
    Initiator(SideMap, RefCell<InitiatorTable>),
}

impl Sides {
    fn side_of(&self, m: &PacketMeta) -> Side {
        match self {
            Sides::Subnets(s) => s.side_of(m),
            Sides::Initiator(s, _) if !m.is_ip() => s.side_of(m),
            Sides::Initiator(_, t) => t.borrow_mut().side_of(m),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Summary {
    pub input: String,
    pub records: u64,
    /// Records whose link type is not read (Ethernet, raw IP and Linux cooked are),
    /// skipped and counted.
    pub skipped_link_type: u64,
    /// Where the capture was damaged, if it was; everything before it was processed.
    pub damage: Option<String>,
    pub lan_side: LanSide,
    /// Flows the `--lan-side initiator` table forgot when full.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initiator_evicted: Option<u64>,
    pub written: u64,
    pub events_written: u64,
    pub elapsed_secs: f64,
    pub packets_per_sec: f64,
    pub gbits_per_sec: f64,
    pub classifier: Report,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ids: Option<IdsSummary>,
    /// LAN hosts the web filter learned (with the quarantined ones marked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hosts: Option<Vec<Host>>,
}

pub struct Replay<'a> {
    pub input: &'a Path,
    pub output: Option<&'a Path>,
    pub eve: Option<&'a Path>,
    pub policy: Arc<Policy>,
    /// Suricata rules to inspect forwarded packets with (IDS mode: alerts only).
    pub rules: Option<&'a Path>,
    /// A `threshold.config` for those rules (a rules folder's own is read anyway).
    pub threshold_file: Option<&'a Path>,
    /// The web filter (category database and the policy's `[web]` section).
    pub web: Option<WebSetup>,
    /// Which side of the gateway each frame is taken to have arrived on.
    pub lan_side: LanSide,
    /// Check IPv4 header checksums (off for captures taken with checksum offload or
    /// anonymised without fixing them, like Suricata's `-k none`).
    pub ipv4_checksums: bool,
}

/// What the signature inspection did.
#[derive(Debug, Serialize)]
pub struct IdsSummary {
    pub rules_enabled: usize,
    pub rules_parsed: usize,
    pub rules_compiled: usize,
    pub skipped_by_reason: std::collections::BTreeMap<String, usize>,
    pub mode: String,
    #[serde(flatten)]
    pub stats: IdsStats,
}

impl Replay<'_> {
    pub fn run(&self) -> anyhow::Result<Summary> {
        self.run_with(&mut |_| {})
    }

    /// As [`Replay::run`], and every event is also handed to `sink` (before it is written
    /// to the EVE file, if there is one), in the order the classifier produced them.
    pub fn run_with(&self, sink: &mut dyn FnMut(&EventRecord)) -> anyhow::Result<Summary> {
        let mut reader = CaptureReader::open(self.input).map_err(anyhow::Error::new)?;
        let mut out = match self.output {
            Some(p) => Some(
                PcapWriter::create(p).with_context(|| format!("{}: cannot create", p.display()))?,
            ),
            None => None,
        };
        let mut eve = match self.eve {
            Some(p) => Some(
                EveWriter::create(
                    p,
                    PolicyHistory::new(
                        0,
                        self.policy.clone(),
                        self.web.as_ref().map(|w| w.rules.clone()),
                    ),
                )
                .with_context(|| format!("{}: cannot create", p.display()))?,
            ),
            None => None,
        };
        let ips = match self.rules {
            Some(p) => {
                let lan = &self.policy.sides.lan_subnets;
                let mut book = RuleBook::load(p, lan).map_err(anyhow::Error::msg)?;
                if let Some(t) = self.threshold_file {
                    book.load_thresholds(t, lan).map_err(anyhow::Error::msg)?;
                }
                let book = Arc::new(book);
                if let Some(e) = eve.as_ref() {
                    e.history().set_rules(book.clone());
                }
                let settings = IpsSettings::compile(book, &self.policy.ips);
                Some(Inspector::new(settings, InspectorLimits::default()))
            }
            None => None,
        };
        let sides = match self.lan_side {
            LanSide::Subnets => Sides::Subnets(self.policy.sides.clone()),
            LanSide::Initiator => Sides::Initiator(
                self.policy.sides.clone(),
                RefCell::new(InitiatorTable::new(INITIATOR_TABLE_CAP)),
            ),
        };
        let stages = Stages {
            web: self.web.as_ref().map(|w| w.filter()),
            ips,
        };
        let mut cls = Classifier::with_stages(self.policy.clone(), stages);
        cls.set_parse_options(ParseOptions {
            ipv4_checksum: self.ipv4_checksums,
        });
        let mut burst = Burst::new();
        let mut frame = Vec::with_capacity(2048);
        let (mut skipped, mut written, mut last_ts, mut damage) = (0u64, 0u64, 0u64, None);
        let started = Instant::now();
        loop {
            let rec = match reader.next_record() {
                Ok(Some(r)) => r,
                Ok(None) => break,
                Err(e @ (CaptureError::Truncated { .. } | CaptureError::BadRecord { .. })) => {
                    damage = Some(e.to_string());
                    break;
                }
                Err(e) => {
                    return Err(anyhow::Error::new(e).context(self.input.display().to_string()));
                }
            };
            if !to_ethernet(rec.linktype, rec.data, &mut frame) {
                skipped += 1;
                continue;
            }
            last_ts = last_ts.max(rec.ts_ns);
            if burst.push(rec.ts_ns, reader.records(), &frame) {
                written += burst.run(&mut cls, &sides, out.as_mut(), eve.as_mut(), sink)?;
            }
        }
        written += burst.run(&mut cls, &sides, out.as_mut(), eve.as_mut(), sink)?;
        cls.finish(last_ts);
        export(&mut cls.events, eve.as_mut(), sink)?;
        let elapsed = started.elapsed().as_secs_f64().max(1e-9);
        if let Some(w) = out {
            w.finish()?;
        }
        let events_written = match eve {
            Some(e) => e.finish()?,
            None => 0,
        };
        let report = cls.report();
        Ok(Summary {
            input: self.input.display().to_string(),
            records: reader.records(),
            skipped_link_type: skipped,
            damage,
            lan_side: self.lan_side,
            initiator_evicted: match &sides {
                Sides::Initiator(_, t) => Some(t.borrow().evicted),
                Sides::Subnets(_) => None,
            },
            written,
            events_written,
            elapsed_secs: elapsed,
            packets_per_sec: report.packets as f64 / elapsed,
            gbits_per_sec: report.bytes as f64 * 8.0 / elapsed / 1e9,
            classifier: report,
            hosts: self.web.as_ref().map(|w| w.hosts.snapshot().0),
            ids: cls.ips().map(|i| {
                let b = i.book();
                let mut skipped = b.load.skipped_by_reason.clone();
                for (k, v) in &b.build.skipped_by_reason {
                    *skipped.entry(k.clone()).or_default() += v;
                }
                IdsSummary {
                    rules_enabled: b.load.enabled,
                    rules_parsed: b.load.loaded,
                    rules_compiled: b.build.compiled,
                    skipped_by_reason: skipped,
                    mode: format!("{:?}", i.mode()).to_lowercase(),
                    stats: i.stats.clone(),
                }
            }),
        })
    }
}

impl Summary {
    /// The human-readable form printed by the CLI.
    pub fn text(&self) -> String {
        use std::fmt::Write;
        let r = &self.classifier;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "input            {} ({} records)",
            self.input, self.records
        );
        if let Some(d) = &self.damage {
            let _ = writeln!(s, "DAMAGED          {d}; processed everything before it");
        }
        if self.skipped_link_type > 0 {
            let _ = writeln!(
                s,
                "skipped          {} records with a link type not read (Ethernet, raw IP, Linux cooked are)",
                self.skipped_link_type
            );
        }
        if let Some(evicted) = self.initiator_evicted {
            let _ = writeln!(
                s,
                "lan side         the initiator of each flow ({evicted} flows forgotten, table full)"
            );
        }
        let _ = writeln!(s, "packets          {} ({} bytes)", r.packets, r.bytes);
        let _ = writeln!(
            s,
            "flows            {} created, {} evicted, {} refused (table full)",
            r.flows.created, r.flows.evicted, r.flows.refused
        );
        let _ = writeln!(s, "forwarded        {}", counts(&r.forwarded));
        let _ = writeln!(s, "dropped          {}", counts(&r.dropped));
        if r.parse_errors.total() > 0 {
            let pe: Vec<_> = r.parse_errors.nonzero().collect();
            let _ = writeln!(
                s,
                "parse errors     {}",
                pe.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
        }
        if r.tcp_invalid > 0 {
            let _ = writeln!(
                s,
                "tcp invalid      {} (out-of-state packets)",
                r.tcp_invalid
            );
        }
        if r.fragments.fragments > 0 {
            let f = &r.fragments;
            let _ = writeln!(
                s,
                "fragments        {} seen, {} datagrams complete, {} overlaps, {} without head",
                f.fragments, f.datagrams_completed, f.overlaps, f.no_head
            );
        }
        let _ = writeln!(
            s,
            "injected         {} answers (RST, ICMP unreachable, block pages, DNS sinkhole), {} not sent (queue full)",
            r.injected, r.inject_dropped
        );
        if let Some(w) = &r.web {
            let _ = writeln!(
                s,
                "web              {} DNS queries, {} SNI, {} QUIC SNI, {} HTTP hosts; {} blocked, {} sinkholed, {} monitored, {} exceptions, {} callbacks",
                w.dns_queries,
                w.tls_sni,
                w.quic_sni,
                w.http_hosts,
                w.blocked,
                w.sinkholed,
                w.monitored,
                w.exceptions,
                w.callbacks
            );
        }
        if let Some(h) = self
            .hosts
            .as_ref()
            .filter(|h| h.iter().any(|h| h.quarantined))
        {
            for h in h.iter().filter(|h| h.quarantined) {
                let _ = writeln!(
                    s,
                    "QUARANTINED      {} {} ({}), {} callbacks",
                    h.mac,
                    h.ipv4.map(|a| a.to_string()).unwrap_or_default(),
                    h.hostname,
                    h.callbacks_total
                );
            }
        }
        let _ = writeln!(
            s,
            "rule hits        {}",
            r.rule_hits
                .iter()
                .filter(|(_, n)| *n > 0)
                .map(|(k, v)| format!("[{k}]={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
        let _ = writeln!(
            s,
            "output           {} packets written, {} events written, {} events dropped",
            self.written, self.events_written, r.events_dropped
        );
        if let Some(i) = &self.ids {
            let _ = writeln!(
                s,
                "rules            {} enabled, {} parsed, {} compiled (`mimamori-sig rules-report` says why the rest were skipped)",
                i.rules_enabled, i.rules_parsed, i.rules_compiled
            );
            let _ = writeln!(
                s,
                "signature alerts {} over {} inspected packets, {} mode: dropped {} rejected {} (HTTP requests {}, responses {}, TLS hellos {}, DNS {})",
                i.stats.alerts,
                i.stats.inspected,
                i.mode,
                r.dropped.get("signature").copied().unwrap_or(0),
                i.stats.rejected,
                i.stats.http_requests,
                i.stats.http_responses,
                i.stats.tls_hellos,
                i.stats.dns_messages
            );
            let t = &i.stats.stream;
            let _ = writeln!(
                s,
                "reassembly       {} segments, {} out of order, {} overlapping ({} rewrites refused), {} not held; {} datagrams defragmented",
                t.segments,
                t.out_of_order,
                t.overlaps,
                t.overlap_diff,
                i.stats.stream_unheld,
                i.stats.defrag.reassembled
            );
        }
        let _ = writeln!(
            s,
            "throughput       {:.3} Mpps, {:.2} Gbit/s over {:.3} s (including file I/O)",
            self.packets_per_sec / 1e6,
            self.gbits_per_sec,
            self.elapsed_secs
        );
        s
    }
}

fn counts(m: &std::collections::BTreeMap<&'static str, u64>) -> String {
    let total: u64 = m.values().sum();
    let parts: Vec<_> = m.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{total} ({})", parts.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mimamori_pipelines::parse;
    use mimamori_pipelines::synth::{Endpoint, tcp_frame, udp_frame};
    use mimamori_pipelines::wire::tcp::flags::{ACK, PSH, SYN};

    fn side(t: &mut InitiatorTable, frame: &[u8]) -> Side {
        t.side_of(&parse(frame).unwrap())
    }

    #[test]
    fn a_syn_sender_is_the_lan_host() {
        // Both hosts outside any LAN subnet: only the flow's opening decides.
        let (a, b) = (
            Endpoint::server(1, false, 40000),
            Endpoint::server(2, false, 443),
        );
        let mut t = InitiatorTable::new(16);
        assert_eq!(side(&mut t, &tcp_frame(&a, &b, SYN, 1, 0, &[])), Side::Lan);
        assert_eq!(
            side(&mut t, &tcp_frame(&b, &a, SYN | ACK, 9, 2, &[])),
            Side::Wan
        );
        assert_eq!(
            side(&mut t, &tcp_frame(&a, &b, ACK | PSH, 2, 10, b"x")),
            Side::Lan
        );
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn a_syn_ack_first_names_its_receiver() {
        let (c, s) = (
            Endpoint::server(1, true, 40000),
            Endpoint::server(2, true, 443),
        );
        let mut t = InitiatorTable::new(16);
        assert_eq!(
            side(&mut t, &tcp_frame(&s, &c, SYN | ACK, 9, 2, &[])),
            Side::Wan
        );
        assert_eq!(
            side(&mut t, &tcp_frame(&c, &s, ACK | PSH, 2, 10, b"x")),
            Side::Lan
        );
    }

    #[test]
    fn otherwise_the_first_sender_and_ports_separate_flows() {
        let (c, s) = (
            Endpoint::server(1, false, 5000),
            Endpoint::server(2, false, 443),
        );
        let mut t = InitiatorTable::new(16);
        // Mid-stream TCP: the first packet's sender.
        assert_eq!(
            side(&mut t, &tcp_frame(&s, &c, ACK | PSH, 9, 2, b"y")),
            Side::Lan
        );
        assert_eq!(side(&mut t, &tcp_frame(&c, &s, ACK, 2, 10, &[])), Side::Wan);
        // UDP between the same hosts is its own flow, opened the other way.
        assert_eq!(side(&mut t, &udp_frame(&c, &s, b"q")), Side::Lan);
        assert_eq!(side(&mut t, &udp_frame(&s, &c, b"r")), Side::Wan);
        let other = c.with_port(5001);
        assert_eq!(side(&mut t, &udp_frame(&s, &other, b"r")), Side::Lan);
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn the_table_is_bounded_and_counts_what_it_forgets() {
        let s = Endpoint::server(2, false, 53);
        let mut t = InitiatorTable::new(4);
        for p in 0..10u16 {
            let c = Endpoint::server(1, false, 1000 + p);
            assert_eq!(side(&mut t, &udp_frame(&c, &s, b"q")), Side::Lan);
        }
        assert_eq!((t.len(), t.evicted), (4, 6));
        // The newest flows are remembered.
        let c = Endpoint::server(1, false, 1009);
        assert_eq!(side(&mut t, &udp_frame(&s, &c, b"a")), Side::Wan);
    }
}

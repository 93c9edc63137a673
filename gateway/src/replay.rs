//! `mimamori-gw replay`: a capture through the same classify stage the live path runs,
//! forwarded packets (and the gateway's own answers) to a pcap, events to EVE JSON.

use crate::capture::{CaptureError, CaptureReader, PcapWriter, to_ethernet};
use crate::eve::{EveWriter, PolicyHistory};
use crate::webfilter::WebSetup;
use anyhow::Context;
use mimamori_pipelines::classify::{Report, Stages};
use mimamori_pipelines::inspect::{IdsStats, Inspector, InspectorLimits, IpsSettings, RuleBook};
use mimamori_pipelines::policy::SideMap;
use mimamori_pipelines::stage::Arrival;
use mimamori_pipelines::web::hosts::Host;
use mimamori_pipelines::{Classifier, ForwardReason, Policy, Verdict};
use serde::Serialize;
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
        sides: &SideMap,
        out: Option<&mut PcapWriter<BufWriter<File>>>,
        eve: Option<&mut EveWriter>,
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
        match eve {
            Some(e) => e.write_all(&mut cls.events)?,
            None => cls.events.drain().for_each(drop),
        }
        self.n = 0;
        Ok(written)
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
    /// The web filter (category database and the policy's `[web]` section).
    pub web: Option<WebSetup>,
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
                let book = Arc::new(
                    RuleBook::load(p, &self.policy.sides.lan_subnets)
                        .map_err(anyhow::Error::msg)?,
                );
                if let Some(e) = eve.as_ref() {
                    e.history().set_rules(book.clone());
                }
                let settings = IpsSettings::compile(book, &self.policy.ips);
                Some(Inspector::new(settings, InspectorLimits::default()))
            }
            None => None,
        };
        let sides = self.policy.sides.clone();
        let stages = Stages {
            web: self.web.as_ref().map(|w| w.filter()),
            ips,
        };
        let mut cls = Classifier::with_stages(self.policy.clone(), stages);
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
                written += burst.run(&mut cls, &sides, out.as_mut(), eve.as_mut())?;
            }
        }
        written += burst.run(&mut cls, &sides, out.as_mut(), eve.as_mut())?;
        cls.finish(last_ts);
        if let Some(e) = eve.as_mut() {
            e.write_all(&mut cls.events)?;
        }
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

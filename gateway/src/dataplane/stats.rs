//! Counters shared between the stage lcores and the control thread. Stages bump their own
//! atomics once per burst (relaxed: they are statistics, not synchronisation).

use mimamori_pipelines::classify::Report;
use mimamori_pipelines::inspect::IdsStats;
use serde::Serialize;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

#[derive(Default)]
pub struct StageCounters {
    pub name: String,
    pub lcore: AtomicU64,
    pub rx: AtomicU64,
    pub tx: AtomicU64,
    /// Packets the firewall dropped (by reason in the classifier report).
    pub dropped: AtomicU64,
    /// Frames not sent because the NIC's TX queue was full.
    pub tx_full: AtomicU64,
    /// Frames that met a full ring on the way out of this stage.
    pub ring_full: AtomicU64,
    /// Frames forwarded unclassified because the classify ring was full (fail-open).
    pub fail_open: AtomicU64,
    /// Frames dropped because the classify ring was full (fail-closed).
    pub fail_closed: AtomicU64,
    /// Answers (RST, ICMP) not sent because the mempool was empty.
    pub inject_nombuf: AtomicU64,
    /// Events not exported because the exporter queue was full.
    pub events_dropped: AtomicU64,
    /// Bumped every loop; the watchdog looks for it standing still.
    pub heartbeat: AtomicU64,
    pub stalled: AtomicBool,
    /// The stage's last classifier report (classify stages only), refreshed ~10 times a second.
    pub report: Mutex<Option<Report>>,
    /// The stage's signature inspection counters, when rules are loaded.
    pub ips: Mutex<Option<IdsStats>>,
}

impl StageCounters {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            ..Self::default()
        }
    }
    pub fn add(c: &AtomicU64, n: usize) {
        if n > 0 {
            c.fetch_add(n as u64, Relaxed);
        }
    }
    pub fn snapshot(&self) -> StageSnapshot {
        StageSnapshot {
            name: self.name.clone(),
            lcore: self.lcore.load(Relaxed),
            rx: self.rx.load(Relaxed),
            tx: self.tx.load(Relaxed),
            dropped: self.dropped.load(Relaxed),
            tx_full: self.tx_full.load(Relaxed),
            ring_full: self.ring_full.load(Relaxed),
            fail_open: self.fail_open.load(Relaxed),
            fail_closed: self.fail_closed.load(Relaxed),
            inject_nombuf: self.inject_nombuf.load(Relaxed),
            events_dropped: self.events_dropped.load(Relaxed),
            stalled: self.stalled.load(Relaxed),
            classifier: self.report.lock().ok().and_then(|r| r.clone()),
            ips: self.ips.lock().ok().and_then(|r| r.clone()),
        }
    }
}

#[derive(Serialize, Clone, Debug)]
pub struct StageSnapshot {
    pub name: String,
    pub lcore: u64,
    pub rx: u64,
    pub tx: u64,
    pub dropped: u64,
    pub tx_full: u64,
    pub ring_full: u64,
    pub fail_open: u64,
    pub fail_closed: u64,
    pub inject_nombuf: u64,
    pub events_dropped: u64,
    pub stalled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub classifier: Option<Report>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ips: Option<IdsStats>,
}

#[derive(Serialize, Clone, Debug)]
pub struct PortSnapshot {
    pub side: &'static str,
    pub name: String,
    #[serde(flatten)]
    pub stats: crate::dpdk::PortStats,
}

#[derive(Serialize, Clone, Debug)]
pub struct Snapshot {
    pub layout: String,
    pub uptime_secs: f64,
    pub ports: Vec<PortSnapshot>,
    pub stages: Vec<StageSnapshot>,
    pub mempool_in_use: u32,
    pub mempool_available: u32,
    pub ring_depth: Vec<(String, u32)>,
    pub events_written: u64,
    /// The policy version every classify stage runs.
    pub policy_version: u64,
    /// Where the policy the gateway started under came from.
    pub policy_origin: String,
    /// Versions passed over at start (did not compile here), with the reasons.
    pub policy_refused: Vec<String>,
    /// Events for the control plane lost: dropped from a full spool (oldest first).
    pub events_unsent: u64,
    /// Events written to the spool for the control plane (its last sequence number).
    pub events_spooled: u64,
    /// …of which the control plane committed (acknowledged) up to this number.
    pub events_acked: u64,
    pub control_plane_connected: bool,
    /// The pattern sets that run (from the control plane, at start or swapped in while
    /// running), the refusals, and the swaps done.
    pub patterns: super::apply::PatternsState,
}

impl Snapshot {
    pub fn text(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "layout {}  uptime {:.1} s  mbufs in use {} (free {})  events written {}  policy version {}",
            self.layout,
            self.uptime_secs,
            self.mempool_in_use,
            self.mempool_available,
            self.events_written,
            self.policy_version
        );
        for p in &self.ports {
            let t = &p.stats;
            let _ = writeln!(
                s,
                "port {:<3} {:<16} rx {:>10} tx {:>10}  missed {} rx_err {} tx_err {} nombuf {}",
                p.side,
                p.name,
                t.rx_packets,
                t.tx_packets,
                t.rx_missed,
                t.rx_errors,
                t.tx_errors,
                t.rx_nombuf
            );
        }
        for st in &self.stages {
            let _ = writeln!(
                s,
                "stage {:<10} lcore {:<2} rx {:>10} tx {:>10} dropped {:>8} ring_full {} tx_full {} fail_open {} fail_closed {} inject_nombuf {} events_dropped {}{}",
                st.name,
                st.lcore,
                st.rx,
                st.tx,
                st.dropped,
                st.ring_full,
                st.tx_full,
                st.fail_open,
                st.fail_closed,
                st.inject_nombuf,
                st.events_dropped,
                if st.stalled { "  STALLED" } else { "" }
            );
            if let Some(r) = &st.classifier {
                let f: Vec<_> = r
                    .forwarded
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                let d: Vec<_> = r.dropped.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let _ = writeln!(
                    s,
                    "      flows live {} created {}  forwarded [{}]  dropped [{}]  injected {}",
                    r.flows_live,
                    r.flows.created,
                    f.join(" "),
                    d.join(" "),
                    r.injected
                );
            }
            if let Some(i) = &st.ips {
                let _ = writeln!(
                    s,
                    "      ips inspected {} alerts {} dropped {} rejected {}  stream segments {} out_of_order {} overlap_diff {} memcap_refused {}  datagrams reassembled {}",
                    i.inspected,
                    i.alerts,
                    i.dropped,
                    i.rejected,
                    i.stream.segments,
                    i.stream.out_of_order,
                    i.stream.overlap_diff,
                    i.stream.memcap_refused,
                    i.defrag.reassembled
                );
            }
        }
        for (name, depth) in &self.ring_depth {
            let _ = writeln!(s, "ring  {name:<10} depth {depth}");
        }
        s
    }
}

//! `mimamori-gw run`: the live bridge between a LAN port and a WAN port on DPDK.

pub mod apply;
pub mod config;
pub mod control;
mod stage;
pub mod stats;

pub use config::{Layout, Overload, RunConfig, Tier};
use mimamori_pipelines::classify::Stages;
use mimamori_pipelines::inspect::{Inspector, InspectorLimits};

/// How long a control-socket client waits on each read and write.
pub const SOCKET_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Asks the control plane's gateway socket for the current policy: `Some((version,
/// policy))`, or `None` when it has none yet.
pub fn current_policy(path: &std::path::Path) -> anyhow::Result<Option<(u64, String)>> {
    use mimamori_proto::{CpAnswer, CpRequest};
    match mimamori_proto::call(path, &CpRequest::Current, SOCKET_TIMEOUT)? {
        CpAnswer::None => Ok(None),
        CpAnswer::Policy { version, policy } => Ok(Some((version, policy))),
        CpAnswer::Error(reason) => {
            anyhow::bail!("{}: the control plane refused: {reason}", path.display())
        }
        other => anyhow::bail!("{}: unexpected answer {other:?}", path.display()),
    }
}

/// Asks the control plane's gateway socket for its current pattern bundles (verified
/// files in its patterns folder, by path and SHA-256).
pub fn current_patterns(
    path: &std::path::Path,
) -> anyhow::Result<Vec<mimamori_proto::PatternFile>> {
    use mimamori_proto::{CpAnswer, CpRequest};
    match mimamori_proto::call(path, &CpRequest::Patterns, SOCKET_TIMEOUT)? {
        CpAnswer::Patterns(files) => Ok(files),
        CpAnswer::None => Ok(Vec::new()),
        CpAnswer::Error(reason) => {
            anyhow::bail!("{}: the control plane refused: {reason}", path.display())
        }
        other => anyhow::bail!("{}: unexpected answer {other:?}", path.display()),
    }
}

/// Asks the control plane which layout the box's contract gives it: `None` when the box
/// has no desk (or the desk has not said yet).
pub fn current_tier(path: &std::path::Path) -> anyhow::Result<Option<String>> {
    use mimamori_proto::{CpAnswer, CpRequest};
    match mimamori_proto::call(path, &CpRequest::Tier, SOCKET_TIMEOUT)? {
        CpAnswer::Tier(t) => Ok(Some(t)),
        CpAnswer::None => Ok(None),
        CpAnswer::Error(reason) => {
            anyhow::bail!("{}: the control plane refused: {reason}", path.display())
        }
        other => anyhow::bail!("{}: unexpected answer {other:?}", path.display()),
    }
}

/// One request to a running gateway's control socket (`mimamori-gw apply/stats`).
pub fn control_call(
    path: &std::path::Path,
    request: &mimamori_proto::Request,
) -> anyhow::Result<mimamori_proto::Answer> {
    mimamori_proto::call(path, request, SOCKET_TIMEOUT).map_err(|e| match e {
        mimamori_proto::CallError::Connect { .. } => {
            anyhow::anyhow!("{e} (is mimamori-gw run going with --stats-socket?)")
        }
        other => other.into(),
    })
}

use crate::dpdk::{self, Eal, Mempool, Port, Ring};
use anyhow::Context;
use mimamori_pipelines::Classifier;
use stage::{ClassifyStage, Clock, Ports};
use stats::{Snapshot, StageCounters};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// The name this gateway's events carry on the acknowledged stream.
const EVENT_SOURCE: &str = "gateway";
/// Most bytes of events kept on disk for the control plane (oldest dropped, counted).
const SPOOL_BYTES: u64 = 256 << 20;

/// Capacity of each ring between stages.
const RING_SLOTS: u32 = 4096;
/// Events held for the EVE exporter thread.
const EVENT_QUEUE: usize = 65_536;

pub fn run(cfg: RunConfig) -> anyhow::Result<Snapshot> {
    let args = cfg.eal_args()?;
    let eal = Eal::init(&args)?;
    let lcores = dpdk::worker_lcores(&eal);
    if lcores.len() < cfg.stage_lcores() {
        anyhow::bail!(
            "the {:?} layout needs {} stage lcores besides the main one; the EAL has {}",
            cfg.layout,
            cfg.stage_lcores(),
            lcores.len()
        );
    }
    let pool = Mempool::new("mimamori_mbufs", cfg.mbufs, -1)?;
    let (lan_name, _) = config::device_name("lan", &cfg.lan)?;
    let (wan_name, _) = config::device_name("wan", &cfg.wan)?;
    let ports = Ports {
        ports: Arc::new([
            Port::open(&lan_name, pool, 1)?,
            Port::open(&wan_name, pool, 1)?,
        ]),
    };

    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).context("installing signal handlers")?;
    }
    let (policy_origin, policy_refused) = (cfg.policy_origin.clone(), cfg.policy_refused.clone());
    let classify_stages = match cfg.layout {
        Layout::Rtc => 1,
        Layout::Pipeline => cfg.workers,
    };
    let initial = Arc::new(apply::PolicyUpdate::new(
        cfg.policy_version,
        cfg.policy.clone(),
        cfg.web.clone(),
        cfg.rules.as_ref(),
        classify_stages,
    ));
    let slot = apply::PolicySlot::new(
        initial.clone(),
        cfg.rules.clone(),
        classify_stages,
        cfg.last_good.clone(),
    );
    let uplink = match &cfg.control_plane {
        Some(cp) => Some(crate::uplink::Uplink::open(
            cp,
            EVENT_SOURCE,
            &cfg.state_dir.join("spool"),
            SPOOL_BYTES,
        )?),
        None => None,
    };
    let uplink_counters = uplink
        .as_ref()
        .map_or_else(Default::default, |u| u.counters.clone());
    let eve_written = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let (events_tx, exporter) = if cfg.eve.is_some() || uplink.is_some() {
        let (tx, handle) = control::spawn_eve_exporter(
            cfg.eve.as_deref(),
            uplink,
            slot.history.clone(),
            EVENT_QUEUE,
            eve_written.clone(),
        )?;
        (Some(tx), Some(handle))
    } else {
        (None, None)
    };

    for info in &cfg.patterns {
        slot.note_pattern(info.clone());
    }
    for r in &cfg.patterns_refused {
        slot.note_refusal(r);
    }
    // Stage `i`'s classifier: the firewall, then the web filter and the signature
    // inspector built from the initial snapshot.
    let classifier = |i: usize| {
        let stages = Stages {
            web: initial.take_filter(i),
            ips: initial
                .ips
                .clone()
                .map(|s| Inspector::new(s, InspectorLimits::default())),
        };
        let mut cls = Classifier::with_stages(initial.policy.clone(), stages);
        cls.events.policy_version = initial.generation;
        cls
    };
    let clock = Clock::new();
    let mut stages: Vec<Arc<StageCounters>> = Vec::new();
    let mut rings: Vec<(String, Arc<Ring>)> = Vec::new();
    let mut launched = Vec::new();
    let new_stage = |name: &str, lcore: u32, stages: &mut Vec<Arc<StageCounters>>| {
        let c = Arc::new(StageCounters::new(name));
        c.lcore.store(u64::from(lcore), Ordering::Relaxed);
        stages.push(c.clone());
        c
    };
    match cfg.layout {
        Layout::Rtc => {
            let l = lcores[0];
            let c = new_stage("rtc", l, &mut stages);
            let st = ClassifyStage::new(classifier(0), pool, ports.clone(), events_tx.clone(), c)
                .follow(slot.clone(), 0, initial.generation);
            let stop = stop.clone();
            dpdk::launch(&eal, l, move || stage::run_to_completion(st, stop, clock))?;
            launched.push(l);
        }
        Layout::Pipeline => {
            let tx_ring = Arc::new(Ring::new("to_tx", RING_SLOTS, false, true)?);
            rings.push(("to_tx".into(), tx_ring.clone()));
            let mut worker_rings = Vec::new();
            for w in 0..cfg.workers {
                let r = Arc::new(Ring::new(&format!("to_worker{w}"), RING_SLOTS, true, true)?);
                rings.push((format!("to_worker{w}"), r.clone()));
                worker_rings.push(r);
            }
            let (rx_l, tx_l) = (lcores[0], lcores[1]);
            let c = new_stage("rx", rx_l, &mut stages);
            let (p, wr, tr, s, o) = (
                ports.clone(),
                worker_rings.clone(),
                tx_ring.clone(),
                stop.clone(),
                cfg.overload,
            );
            dpdk::launch(&eal, rx_l, move || stage::rx_stage(p, wr, tr, o, c, s))?;
            launched.push(rx_l);
            for (w, ring) in worker_rings.iter().enumerate() {
                let l = lcores[2 + w];
                let c = new_stage(&format!("classify{w}"), l, &mut stages);
                let st =
                    ClassifyStage::new(classifier(w), pool, ports.clone(), events_tx.clone(), c)
                        .follow(slot.clone(), w, initial.generation);
                let (r, t, s) = (ring.clone(), tx_ring.clone(), stop.clone());
                dpdk::launch(&eal, l, move || stage::worker_stage(st, r, t, s, clock))?;
                launched.push(l);
            }
            let c = new_stage("tx", tx_l, &mut stages);
            let (p, t, s) = (ports.clone(), tx_ring.clone(), stop.clone());
            dpdk::launch(&eal, tx_l, move || stage::tx_stage(p, t, c, s))?;
            launched.push(tx_l);
        }
    }
    drop(events_tx);
    drop(initial);

    let started = Instant::now();
    let layout = format!("{:?}", cfg.layout).to_lowercase();
    let snapshot = {
        let (ports, pool, stages, rings, layout, slot, up, written) = (
            ports.clone(),
            pool,
            stages.clone(),
            rings.clone(),
            layout.clone(),
            slot.clone(),
            uplink_counters.clone(),
            eve_written.clone(),
        );
        move || {
            let mut s = control::snapshot(&layout, started, &ports, pool, &stages, &rings);
            s.policy_version = slot.current().version;
            s.patterns = slot.patterns();
            s.policy_origin = policy_origin.clone();
            s.policy_refused = policy_refused.clone();
            s.events_written = written.load(Ordering::Relaxed);
            s.events_unsent = up.dropped.load(Ordering::Relaxed);
            s.events_spooled = up.written.load(Ordering::Relaxed);
            s.events_acked = up.acked.load(Ordering::Relaxed);
            s.control_plane_connected = up.connected.load(Ordering::Relaxed);
            s
        }
    };
    let server = match &cfg.stats_socket {
        Some(path) => Some(control::spawn_control_server(
            path,
            stop.clone(),
            snapshot.clone(),
            slot.clone(),
            cfg.web.as_ref().map(|w| w.hosts.clone()),
        )?),
        None => None,
    };
    eprintln!(
        "mimamori-gw: bridging {} (lan) <-> {} (wan), layout {layout}, {} stage lcores; Ctrl-C stops",
        lan_name,
        wan_name,
        launched.len()
    );
    let mut watchdog = control::Watchdog::new(&stages);
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(std::time::Duration::from_millis(100));
        watchdog.check(&stages);
        if cfg.duration.is_some_and(|d| started.elapsed() >= d) {
            stop.store(true, Ordering::Relaxed);
        }
    }
    let mut failed = Vec::new();
    for l in launched {
        let code = dpdk::wait_lcore(&eal, l);
        if code != 0 {
            failed.push(l);
        }
    }
    let mut snap = snapshot();
    if let Some(s) = server {
        let _ = s.join();
    }
    drop(rings);
    drop(snapshot);
    match Arc::try_unwrap(ports.ports) {
        Ok([lan, wan]) => {
            lan.close();
            wan.close();
        }
        Err(_) => anyhow::bail!("internal: ports still shared after all lcores stopped"),
    }
    if let Some(h) = exporter {
        snap.events_written = h.join().unwrap_or(0);
    }
    snap.mempool_in_use = pool.in_use();
    snap.mempool_available = pool.available();
    if !failed.is_empty() {
        anyhow::bail!("stage lcores {failed:?} ended with an error");
    }
    drop(eal);
    Ok(snap)
}

//! The control side of the running gateway: statistics over a Unix socket, the watchdog,
//! and the EVE exporter thread (the data path only enqueues).

use super::stage::Ports;
use super::stats::{PortSnapshot, Snapshot, StageCounters};
use crate::dpdk::{Mempool, Ring};
use crate::eve::EveWriter;
use mimamori_pipelines::Policy;
use mimamori_pipelines::event::EventRecord;
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub fn snapshot(
    layout: &str,
    started: Instant,
    ports: &Ports,
    pool: &Mempool,
    stages: &[Arc<StageCounters>],
    rings: &[(String, Arc<Ring>)],
) -> Snapshot {
    Snapshot {
        layout: layout.to_string(),
        uptime_secs: started.elapsed().as_secs_f64(),
        ports: ports
            .ports
            .iter()
            .zip(["lan", "wan"])
            .map(|(p, side)| PortSnapshot {
                side,
                name: p.name().to_string(),
                stats: p.stats(),
            })
            .collect(),
        stages: stages.iter().map(|s| s.snapshot()).collect(),
        mempool_in_use: pool.in_use(),
        mempool_available: pool.available(),
        ring_depth: rings.iter().map(|(n, r)| (n.clone(), r.count())).collect(),
        events_written: 0,
    }
}

/// Serves one JSON snapshot per connection until `stop`.
pub fn spawn_stats_server(
    path: &Path,
    stop: Arc<AtomicBool>,
    snap: impl Fn() -> Snapshot + Send + 'static,
) -> anyhow::Result<JoinHandle<()>> {
    if path.exists() {
        std::fs::remove_file(path)
            .map_err(|e| anyhow::anyhow!("{}: cannot replace stale socket: {e}", path.display()))?;
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
    }
    let listener = UnixListener::bind(path)
        .map_err(|e| anyhow::anyhow!("{}: cannot listen: {e}", path.display()))?;
    listener.set_nonblocking(true)?;
    let path = path.to_path_buf();
    Ok(std::thread::spawn(move || {
        while !stop.load(Relaxed) {
            match listener.accept() {
                Ok((mut s, _)) => {
                    let _ = s.set_nonblocking(false);
                    let _ = serde_json::to_writer(&mut s, &snap());
                    let _ = s.write_all(b"\n");
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
        let _ = std::fs::remove_file(&path);
    }))
}

/// `mimamori-gw stats`: one snapshot from a running gateway.
pub fn query_stats(path: &Path) -> anyhow::Result<serde_json::Value> {
    let mut s = UnixStream::connect(path).map_err(|e| {
        anyhow::anyhow!(
            "{}: cannot connect (is mimamori-gw run going with --stats-socket?): {e}",
            path.display()
        )
    })?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut buf = String::new();
    s.read_to_string(&mut buf)?;
    serde_json::from_str(&buf)
        .map_err(|e| anyhow::anyhow!("bad stats from {}: {e}", path.display()))
}

/// Notices a stage whose heartbeat stands still for a second.
pub struct Watchdog {
    last: Vec<(u64, Instant)>,
}

impl Watchdog {
    pub fn new(stages: &[Arc<StageCounters>]) -> Self {
        Self {
            last: stages
                .iter()
                .map(|s| (s.heartbeat.load(Relaxed), Instant::now()))
                .collect(),
        }
    }
    pub fn check(&mut self, stages: &[Arc<StageCounters>]) {
        for (s, (beat, since)) in stages.iter().zip(self.last.iter_mut()) {
            let now = s.heartbeat.load(Relaxed);
            if now != *beat {
                *beat = now;
                *since = Instant::now();
                if s.stalled.swap(false, Relaxed) {
                    eprintln!(
                        "mimamori-gw: stage {} on lcore {} is running again",
                        s.name,
                        s.lcore.load(Relaxed)
                    );
                }
            } else if since.elapsed() > Duration::from_secs(1) && !s.stalled.swap(true, Relaxed) {
                eprintln!(
                    "mimamori-gw: WATCHDOG: stage {} on lcore {} has not looped for {:.1} s",
                    s.name,
                    s.lcore.load(Relaxed),
                    since.elapsed().as_secs_f64()
                );
            }
        }
    }
}

/// A thread that writes events to an EVE file; returns how many it wrote when the
/// senders are gone.
pub fn spawn_eve_exporter(
    path: &Path,
    policy: Arc<Policy>,
    web: Option<Arc<mimamori_pipelines::web::WebRules>>,
    queue: usize,
) -> anyhow::Result<(SyncSender<EventRecord>, JoinHandle<u64>)> {
    let mut w = EveWriter::create(path, policy)
        .map_err(|e| anyhow::anyhow!("{}: cannot create: {e}", path.display()))?
        .with_web(web);
    let (tx, rx) = sync_channel::<EventRecord>(queue);
    let h = std::thread::spawn(move || {
        // Write everything queued, then flush once the queue is empty.
        'outer: while let Ok(first) = rx.recv() {
            let mut next = Some(first);
            while let Some(rec) = next {
                if w.write_one(&rec).is_err() {
                    break 'outer;
                }
                next = rx.try_recv().ok();
            }
            let _ = w.flush();
        }
        w.finish().unwrap_or(0)
    });
    Ok((tx, h))
}

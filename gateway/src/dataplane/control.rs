//! The control side of the running gateway: statistics over a Unix socket, the watchdog,
//! and the EVE exporter thread (the data path only enqueues).

use super::apply::PolicySlot;
use super::stage::Ports;
use super::stats::{PortSnapshot, Snapshot, StageCounters};
use crate::dpdk::{Mempool, Ring};
use crate::eve::{EveWriter, PolicyHistory};
use crate::uplink::Uplink;
use mimamori_pipelines::event::EventRecord;
use mimamori_pipelines::web::Hosts;
use mimamori_pipelines::wire::MacAddr;
use mimamori_proto::{Answer, ProtoError, Request};
use std::io::BufReader;
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
        policy_version: 0,
        policy_origin: String::new(),
        policy_refused: Vec::new(),
        events_unsent: 0,
        events_spooled: 0,
        events_acked: 0,
        control_plane_connected: false,
        patterns: Default::default(),
    }
}

/// The gateway's control socket: one command line per connection, one answer (the
/// commands and their wire format: `mimamori_proto::control`).
/// Refuses to start when another gateway answers on `path` (a second `run` must not
/// take the running one's socket, or its ports); a socket nobody answers on is stale.
pub fn refuse_if_running(path: &Path) -> anyhow::Result<()> {
    if path.exists() && UnixStream::connect(path).is_ok() {
        anyhow::bail!(
            "{}: another gateway is running and answers on this socket (stop it first, or pass another --stats-socket)",
            path.display()
        );
    }
    Ok(())
}

pub fn spawn_control_server(
    path: &Path,
    stop: Arc<AtomicBool>,
    snap: impl Fn() -> Snapshot + Send + 'static,
    slot: Arc<PolicySlot>,
    hosts: Option<Arc<Hosts>>,
) -> anyhow::Result<JoinHandle<()>> {
    refuse_if_running(path)?;
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
                Ok((s, _)) => {
                    let _ = s.set_nonblocking(false);
                    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                    let _ = serve_one(s, &snap, &slot, hosts.as_deref());
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        let _ = std::fs::remove_file(&path);
    }))
}

fn serve_one(
    s: UnixStream,
    snap: &impl Fn() -> Snapshot,
    slot: &PolicySlot,
    hosts: Option<&Hosts>,
) -> Result<(), ProtoError> {
    let mut r = BufReader::new(s.try_clone()?);
    let mut w = s;
    let answer = match Request::decode(&mut r) {
        Ok(request) => answer(request, snap, slot, hosts),
        Err(ProtoError::Io(e)) => return Err(e.into()),
        Err(e) => Answer::Error(e.to_string()),
    };
    answer.encode(&mut w)
}

const NO_WEB_FILTER: &str = "no web filter (start the gateway with --categories)";

fn answer(
    request: Request,
    snap: &impl Fn() -> Snapshot,
    slot: &PolicySlot,
    hosts: Option<&Hosts>,
) -> Answer {
    match request {
        Request::Stats => match serde_json::to_value(snap()) {
            Ok(v) => Answer::Stats(v),
            Err(e) => Answer::Error(format!("cannot write the snapshot: {e}")),
        },
        Request::Version => Answer::Version(slot.current().version),
        Request::Apply { version, policy } => match slot.apply(version, &policy) {
            Ok(took) => Answer::Applied {
                version,
                micros: u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
            },
            Err(e) => Answer::Error(e),
        },
        Request::Patterns { kind, sha256, path } => {
            match slot.load_patterns(&kind, Path::new(&path), &sha256) {
                Ok((info, took)) => {
                    eprintln!(
                        "mimamori-gw: {} version {} runs on every stage ({}; {:.3} s from the request)",
                        info.kind,
                        info.version,
                        info.summary,
                        took.as_secs_f64()
                    );
                    Answer::PatternsLoaded {
                        version: info.version,
                        micros: u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
                        summary: info.summary,
                    }
                }
                Err(e) => {
                    eprintln!("mimamori-gw: pattern set refused, the running one stays: {e}");
                    Answer::Error(e)
                }
            }
        }
        Request::Hosts => match hosts {
            Some(h) => {
                let (list, stats) = h.snapshot();
                Answer::Hosts(serde_json::json!({"hosts": list, "stats": stats}))
            }
            None => Answer::Error(NO_WEB_FILTER.into()),
        },
        Request::Release { mac } => match (hosts, mac.parse::<MacAddr>()) {
            (Some(h), Ok(m)) if h.release(m) => Answer::Released,
            (Some(_), Ok(m)) => Answer::Error(format!("{m} is not quarantined")),
            (None, _) => Answer::Error(NO_WEB_FILTER.into()),
            (_, Err(e)) => Answer::Error(e.to_string()),
        },
    }
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

/// A thread that writes events to an EVE file and/or hands them to the control plane's
/// acknowledged stream (spooled on disk first, sent when connected, kept until
/// committed); returns how many it wrote to the file when the senders are gone. The
/// channel is the bounded queue (the stages count what does not fit).
pub fn spawn_eve_exporter(
    path: Option<&Path>,
    uplink: Option<Uplink>,
    history: Arc<PolicyHistory>,
    queue: usize,
    written: Arc<std::sync::atomic::AtomicU64>,
) -> anyhow::Result<(SyncSender<EventRecord>, JoinHandle<u64>)> {
    let mut w = match path {
        Some(path) => Some(
            EveWriter::create(path, history.clone())
                .map_err(|e| anyhow::anyhow!("{}: cannot create: {e}", path.display()))?,
        ),
        None => None,
    };
    let mut cp = uplink;
    let (tx, rx) = sync_channel::<EventRecord>(queue);
    let h = std::thread::spawn(move || {
        let mut json = Vec::with_capacity(1024);
        // Write everything queued, then flush once the queue is empty; while idle, keep
        // the stream going (reconnect, resend, take acks).
        'outer: loop {
            let first = match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(r) => r,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    if let Some(cp) = cp.as_mut() {
                        cp.pump();
                    }
                    continue;
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            };
            let mut next = Some(first);
            while let Some(rec) = next {
                if let Some(w) = w.as_mut() {
                    if w.write_one(&rec).is_err() {
                        break 'outer;
                    }
                    written.fetch_add(1, Relaxed);
                }
                if let Some(cp) = cp.as_mut() {
                    json.clear();
                    let eve = crate::eve::to_eve(&rec, &history);
                    if serde_json::to_writer(&mut json, &eve).is_ok()
                        && let Err(e) = cp.push(&json)
                    {
                        eprintln!("mimamori-gw: event spool: {e:#}");
                    }
                }
                next = rx.try_recv().ok();
            }
            if let Some(w) = w.as_mut() {
                let _ = w.flush();
            }
            if let Some(cp) = cp.as_mut() {
                cp.pump();
            }
        }
        if let Some(cp) = cp.as_mut() {
            cp.drain(Duration::from_secs(2));
        }
        w.map_or(0, |w| w.finish().unwrap_or(0))
    });
    Ok((tx, h))
}

//! The control side of the running gateway: statistics over a Unix socket, the watchdog,
//! and the EVE exporter thread (the data path only enqueues).

use super::apply::PolicySlot;
use super::stage::Ports;
use super::stats::{PortSnapshot, Snapshot, StageCounters};
use crate::dpdk::{Mempool, Ring};
use crate::eve::{EveWriter, PolicyHistory};
use mimamori_pipelines::event::EventRecord;
use mimamori_pipelines::web::Hosts;
use mimamori_pipelines::wire::MacAddr;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
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
        events_unsent: 0,
    }
}

/// The gateway's control socket: one command line per connection, one answer.
///
/// ```text
/// stats                       -> the JSON snapshot
/// version                     -> the running policy version
/// apply <version> <bytes>\n<policy TOML>
///                             -> "ok <version> <microseconds>" once every stage runs it,
///                                or "error <reason>" (the running policy stays)
/// hosts                       -> JSON: the web filter's LAN hosts (quarantined marked)
/// release <mac>               -> "ok" or "error <reason>": lets a quarantined host out
/// ```
pub fn spawn_control_server(
    path: &Path,
    stop: Arc<AtomicBool>,
    snap: impl Fn() -> Snapshot + Send + 'static,
    slot: Arc<PolicySlot>,
    hosts: Option<Arc<Hosts>>,
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

/// Longest policy text accepted over the socket.
const POLICY_MAX: usize = 16 << 20;

fn serve_one(
    s: UnixStream,
    snap: &impl Fn() -> Snapshot,
    slot: &PolicySlot,
    hosts: Option<&Hosts>,
) -> std::io::Result<()> {
    let mut r = BufReader::new(s.try_clone()?);
    let mut w = s;
    let mut line = String::new();
    r.by_ref().take(256).read_line(&mut line)?;
    let mut words = line.split_whitespace();
    let answer = match (words.next(), words.next(), words.next()) {
        (Some("stats") | None, _, _) => {
            let mut v = serde_json::to_vec(&snap()).unwrap_or_default();
            v.push(b'\n');
            v
        }
        (Some("version"), _, _) => format!("{}\n", slot.current().version).into_bytes(),
        (Some("apply"), Some(v), Some(n)) => match (v.parse::<u64>(), n.parse::<usize>()) {
            (Ok(version), Ok(n)) if n <= POLICY_MAX => {
                let mut text = vec![0u8; n];
                r.read_exact(&mut text)?;
                match String::from_utf8(text) {
                    Ok(text) => match slot.apply(version, &text) {
                        Ok(took) => format!("ok {version} {}\n", took.as_micros()).into_bytes(),
                        Err(e) => format!("error {}\n", e.replace('\n', " ")).into_bytes(),
                    },
                    Err(_) => b"error the policy is not UTF-8\n".to_vec(),
                }
            }
            _ => {
                format!("error apply wants <version> <bytes> (at most {POLICY_MAX})\n").into_bytes()
            }
        },
        (Some("hosts"), _, _) => match hosts {
            Some(h) => {
                let (list, stats) = h.snapshot();
                let mut v = serde_json::to_vec(&serde_json::json!({"hosts": list, "stats": stats}))
                    .unwrap_or_default();
                v.push(b'\n');
                v
            }
            None => b"error no web filter (start the gateway with --categories)\n".to_vec(),
        },
        (Some("release"), Some(mac), _) => match (hosts, mac.parse::<MacAddr>()) {
            (Some(h), Ok(m)) if h.release(m) => b"ok\n".to_vec(),
            (Some(_), Ok(m)) => format!("error {m} is not quarantined\n").into_bytes(),
            (None, _) => b"error no web filter (start the gateway with --categories)\n".to_vec(),
            (_, Err(e)) => format!("error {e}\n").into_bytes(),
        },
        (Some(other), _, _) => format!("error unknown command {other:?}\n").into_bytes(),
    };
    w.write_all(&answer)
}

/// Sends one command to a gateway's control socket and returns the answer.
pub fn command(path: &Path, line: &str, body: &[u8]) -> anyhow::Result<String> {
    let mut s = UnixStream::connect(path).map_err(|e| {
        anyhow::anyhow!(
            "{}: cannot connect (is mimamori-gw run going with --stats-socket?): {e}",
            path.display()
        )
    })?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(line.as_bytes())?;
    s.write_all(b"\n")?;
    s.write_all(body)?;
    let mut buf = String::new();
    s.read_to_string(&mut buf)?;
    Ok(buf)
}

/// `mimamori-gw stats`: one snapshot from a running gateway.
pub fn query_stats(path: &Path) -> anyhow::Result<serde_json::Value> {
    let buf = command(path, "stats", b"")?;
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

/// A thread that writes events to an EVE file and/or streams them as EVE lines to the
/// control plane's socket; returns how many it wrote to the file when the senders are
/// gone. The channel is the bounded queue (the stages count what does not fit); lines the
/// control plane could not take (socket down) are counted in `unsent`, and the socket is
/// tried again every second.
pub fn spawn_eve_exporter(
    path: Option<&Path>,
    control_plane: Option<PathBuf>,
    unsent: Arc<AtomicU64>,
    history: Arc<PolicyHistory>,
    queue: usize,
) -> anyhow::Result<(SyncSender<EventRecord>, JoinHandle<u64>)> {
    let mut w = match path {
        Some(path) => Some(
            EveWriter::create(path, history.clone())
                .map_err(|e| anyhow::anyhow!("{}: cannot create: {e}", path.display()))?,
        ),
        None => None,
    };
    let mut cp = control_plane.map(|p| CpSink::new(p, history));
    let (tx, rx) = sync_channel::<EventRecord>(queue);
    let h = std::thread::spawn(move || {
        // Write everything queued, then flush once the queue is empty.
        'outer: while let Ok(first) = rx.recv() {
            let mut next = Some(first);
            while let Some(rec) = next {
                if let Some(w) = w.as_mut()
                    && w.write_one(&rec).is_err()
                {
                    break 'outer;
                }
                if let Some(cp) = cp.as_mut()
                    && !cp.send(&rec)
                {
                    unsent.fetch_add(1, Relaxed);
                }
                next = rx.try_recv().ok();
            }
            if let Some(w) = w.as_mut() {
                let _ = w.flush();
            }
            if let Some(cp) = cp.as_mut() {
                cp.flush();
            }
        }
        w.map_or(0, |w| w.finish().unwrap_or(0))
    });
    Ok((tx, h))
}

/// The control plane's event socket, reconnected at most once a second.
struct CpSink {
    path: PathBuf,
    conn: Option<std::io::BufWriter<UnixStream>>,
    last_try: Option<Instant>,
    history: Arc<PolicyHistory>,
    line: Vec<u8>,
}

impl CpSink {
    fn new(path: PathBuf, history: Arc<PolicyHistory>) -> Self {
        Self {
            path,
            conn: None,
            last_try: None,
            history,
            line: Vec::with_capacity(512),
        }
    }

    fn send(&mut self, rec: &EventRecord) -> bool {
        if self.conn.is_none()
            && self
                .last_try
                .is_none_or(|t| t.elapsed() > Duration::from_secs(1))
        {
            self.last_try = Some(Instant::now());
            if let Ok(mut s) = UnixStream::connect(&self.path) {
                let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
                if s.write_all(b"events\n").is_ok() {
                    self.conn = Some(std::io::BufWriter::with_capacity(1 << 16, s));
                }
            }
        }
        let Some(c) = self.conn.as_mut() else {
            return false;
        };
        let eve = crate::eve::to_eve(rec, &self.history);
        self.line.clear();
        if serde_json::to_writer(&mut self.line, &eve).is_err() {
            return false;
        }
        self.line.push(b'\n');
        if c.write_all(&self.line).is_err() {
            self.conn = None;
            return false;
        }
        true
    }

    fn flush(&mut self) {
        if let Some(c) = self.conn.as_mut()
            && c.flush().is_err()
        {
            self.conn = None;
        }
    }
}

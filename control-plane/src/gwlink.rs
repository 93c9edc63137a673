//! The control plane's two sockets with the gateway: the gateway's control socket (apply
//! a snapshot, read counters and hosts, release a host) and our gateway-facing socket
//! (the gateway asks for the current policy at start and streams its events).

use crate::events::EventStore;
use mimamori_proto::gateway::decode_event;
use mimamori_proto::{Answer, CpAnswer, CpRequest, PatternFile, ProtoError, Request, stream};
use std::io::BufReader;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GwError {
    /// The gateway answered and said no: the reason is its own.
    #[error("the gateway refused: {0}")]
    Refused(String),
    /// No answer: not running, socket missing, timed out, or an answer we cannot read.
    #[error("the gateway is unreachable: {0}")]
    Unreachable(String),
}

/// How long we wait on each read and write to the gateway.
const GATEWAY_TIMEOUT: Duration = Duration::from_secs(10);
/// …and for a pattern swap (the gateway compiles the set before it answers).
const PATTERNS_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Clone, Debug)]
pub struct GatewayLink {
    pub socket: PathBuf,
}

impl GatewayLink {
    fn call(&self, request: &Request) -> Result<Answer, GwError> {
        match mimamori_proto::call(&self.socket, request, GATEWAY_TIMEOUT) {
            Ok(Answer::Error(reason)) => Err(GwError::Refused(reason)),
            Ok(answer) => Ok(answer),
            Err(e) => Err(GwError::Unreachable(e.to_string())),
        }
    }

    fn unexpected(answer: Answer) -> GwError {
        GwError::Unreachable(format!("unexpected answer {answer:?}"))
    }

    /// Hands a policy snapshot over; returns the microseconds until every stage ran it.
    pub fn apply(&self, version: u64, toml: &str) -> Result<u64, GwError> {
        let request = Request::Apply {
            version,
            policy: toml.to_string(),
        };
        match self.call(&request)? {
            Answer::Applied { micros, .. } => Ok(micros),
            other => Err(Self::unexpected(other)),
        }
    }

    pub fn stats(&self) -> Result<serde_json::Value, GwError> {
        match self.call(&Request::Stats)? {
            Answer::Stats(v) => Ok(v),
            other => Err(Self::unexpected(other)),
        }
    }

    pub fn hosts(&self) -> Result<serde_json::Value, GwError> {
        match self.call(&Request::Hosts)? {
            Answer::Hosts(v) => Ok(v),
            other => Err(Self::unexpected(other)),
        }
    }

    /// Hands a verified pattern bundle over by path and SHA-256; returns its version, the
    /// microseconds until every stage ran it, and the gateway's summary.
    pub fn patterns(
        &self,
        kind: &str,
        sha256: &str,
        path: &Path,
    ) -> Result<(u64, u64, String), GwError> {
        let request = Request::Patterns {
            kind: kind.to_string(),
            sha256: sha256.to_string(),
            path: path.display().to_string(),
        };
        // A large rule set compiles for seconds: the gateway answers when it runs.
        match mimamori_proto::call(&self.socket, &request, PATTERNS_TIMEOUT) {
            Ok(Answer::PatternsLoaded {
                version,
                micros,
                summary,
            }) => Ok((version, micros, summary)),
            Ok(Answer::Error(reason)) => Err(GwError::Refused(reason)),
            Ok(other) => Err(Self::unexpected(other)),
            Err(e) => Err(GwError::Unreachable(e.to_string())),
        }
    }

    pub fn release(&self, mac: &str) -> Result<(), GwError> {
        let request = Request::Release {
            mac: mac.to_string(),
        };
        match self.call(&request)? {
            Answer::Released => Ok(()),
            other => Err(Self::unexpected(other)),
        }
    }
}

/// The policy the gateway gets when it asks (`current`): version and TOML.
pub type Current = Arc<Mutex<Option<(u64, String)>>>;

/// The current pattern bundle of each kind, as the gateway loads them at start.
pub type PatternFiles = Arc<Mutex<Vec<PatternFile>>>;

/// Serves the gateway-facing socket: `current` answers `policy <version>\n<TOML>` (or
/// `none`), `events` is followed by EVE lines until the gateway closes; `patterns` lists
/// no pattern bundles (see [`spawn_gateway_socket_with`]).
pub fn spawn_gateway_socket(
    path: &Path,
    current: Current,
    store: Arc<EventStore>,
) -> anyhow::Result<()> {
    spawn_gateway_socket_with(path, current, store, PatternFiles::default())
}

/// As [`spawn_gateway_socket`], `patterns` answering with the current pattern bundles.
/// Watches the gateway: a policy version it refused at start (it runs an older one) is an
/// event in the store, once per reason while this control plane runs (`event_type`
/// `policy`), so the refusal reaches the events, the report and the desk.
pub fn spawn_refusal_watch(
    gateway: GatewayLink,
    store: Arc<EventStore>,
    every: std::time::Duration,
) {
    std::thread::spawn(move || {
        let mut told: std::collections::HashSet<String> = Default::default();
        loop {
            if let Ok(s) = gateway.stats() {
                for r in s["policy_refused"].as_array().into_iter().flatten() {
                    let Some(reason) = r.as_str() else { continue };
                    if told.insert(reason.to_string()) {
                        let now = crate::db::now().max(0) as u64;
                        let e = serde_json::json!({
                            "timestamp": mimamori_pipelines::event::eve_time(now * 1_000_000_000),
                            "event_type": "policy",
                            "policy": {"state": "refused", "reason": reason,
                                       "running_version": s["policy_version"]},
                        });
                        store.put(&e.to_string());
                    }
                }
            }
            std::thread::sleep(every);
        }
    });
}

pub fn spawn_gateway_socket_with(
    path: &Path,
    current: Current,
    store: Arc<EventStore>,
    patterns: PatternFiles,
) -> anyhow::Result<()> {
    if path.exists() {
        // A socket someone answers on belongs to a running control plane: leave it.
        if UnixStream::connect(path).is_ok() {
            anyhow::bail!(
                "{}: another control plane is serving this socket (stop it first, or pass another --cp-socket)",
                path.display()
            );
        }
        std::fs::remove_file(path)
            .map_err(|e| anyhow::anyhow!("{}: cannot replace stale socket: {e}", path.display()))?;
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let listener = UnixListener::bind(path)
        .map_err(|e| anyhow::anyhow!("{}: cannot listen: {e}", path.display()))?;
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let (current, store, patterns) = (current.clone(), store.clone(), patterns.clone());
            std::thread::spawn(move || {
                let _ = serve(conn, &current, &store, &patterns);
            });
        }
    });
    Ok(())
}

fn serve(
    conn: UnixStream,
    current: &Current,
    store: &EventStore,
    patterns: &PatternFiles,
) -> Result<(), ProtoError> {
    let mut r = BufReader::with_capacity(1 << 16, conn.try_clone()?);
    let mut w = conn;
    match CpRequest::decode(&mut r) {
        Ok(CpRequest::Current) => {
            let cur = current.lock().unwrap_or_else(|e| e.into_inner()).clone();
            match cur {
                Some((version, policy)) => CpAnswer::Policy { version, policy },
                None => CpAnswer::None,
            }
            .encode(&mut w)
        }
        Ok(CpRequest::Events) => {
            let mut buf = String::new();
            while let Some(line) = decode_event(&mut r, &mut buf)? {
                if !store.put(line) {
                    break;
                }
            }
            Ok(())
        }
        Ok(CpRequest::Stream(source)) => stream(r, w, &source, store),
        Ok(CpRequest::Tier) => match crate::desk::tier(store.path()) {
            Some(t) => CpAnswer::Tier(t),
            None => CpAnswer::None,
        }
        .encode(&mut w),
        Ok(CpRequest::Patterns) => {
            let files = patterns.lock().unwrap_or_else(|e| e.into_inner()).clone();
            CpAnswer::Patterns(files).encode(&mut w)
        }
        Err(ProtoError::Io(e)) => Err(e.into()),
        Err(e) => CpAnswer::Error(e.to_string()).encode(&mut w),
    }
}

/// The acknowledged stream from `source` (see `mimamori_proto::stream`): say where to
/// resume, take numbered lines, and acknowledge each commit from a second thread.
fn stream(
    mut r: BufReader<UnixStream>,
    mut w: UnixStream,
    source: &str,
    store: &EventStore,
) -> Result<(), ProtoError> {
    let source: Arc<str> = Arc::from(source);
    let resume = store.committed.get(&source);
    stream::encode_resume(&mut w, resume)?;
    // No read timeout: a quiet gateway is not a dead one (it closes when it stops).
    r.get_ref().set_read_timeout(None)?;
    let open = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let acker = {
        let (committed, source, open) = (store.committed.clone(), source.clone(), open.clone());
        std::thread::spawn(move || {
            let mut seen = resume;
            while open.load(Relaxed) {
                let now = committed.wait_past(&source, seen, Duration::from_millis(200));
                if now > seen {
                    if stream::encode_ack(&mut w, now).is_err() {
                        break;
                    }
                    seen = now;
                }
            }
        })
    };
    let mut buf = String::new();
    let result = loop {
        match decode_event(&mut r, &mut buf) {
            Ok(Some(line)) => {
                let Some((seq, json)) = stream::split_item(line) else {
                    store.counters.malformed.fetch_add(1, Relaxed);
                    continue;
                };
                if !store.put_numbered(&source, seq, json) {
                    break Ok(());
                }
            }
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    open.store(false, Relaxed);
    let _ = acker.join();
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn eve(i: u64) -> String {
        format!(
            "{{\"timestamp\":\"2026-12-01T00:00:00.000000+0000\",\"event_type\":\"flow\",\"src_ip\":\"198.18.0.{}\"}}",
            i % 250
        )
    }

    /// Sends numbered lines `from..=to` on a new stream connection; returns the resume
    /// number it was told and the last acknowledgement it read.
    fn send(sock: &Path, from: u64, to: u64) -> (u64, u64) {
        let s = UnixStream::connect(sock).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut w = s.try_clone().unwrap();
        let mut r = std::io::BufReader::new(s);
        w.write_all(b"stream gw-test\n").unwrap();
        let resume = stream::decode_resume(&mut r).unwrap();
        for i in from..=to {
            writeln!(w, "{i} {}", eve(i)).unwrap();
        }
        let mut acked = 0;
        while acked < to {
            match stream::decode_ack(&mut r).unwrap() {
                Some(a) => acked = a,
                None => break,
            }
        }
        (resume, acked)
    }

    #[test]
    fn the_acknowledged_stream_stores_each_number_once_across_reconnects() {
        let dir = std::env::temp_dir().join(format!("mimamori-stream-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let db = dir.join("cp.db");
        crate::db::open(&db).unwrap();
        let (store, _w) = EventStore::start(&db, 1024).unwrap();
        let store = Arc::new(store);
        let sock = dir.join("cp.sock");
        let current: Current = Arc::new(Mutex::new(None));
        spawn_gateway_socket(&sock, current, store.clone()).unwrap();
        assert_eq!(send(&sock, 1, 10), (0, 10));
        // The sender lost its acks and resends from 5: only 11..=15 are new.
        assert_eq!(send(&sock, 5, 15), (10, 15));
        let c = crate::db::open(&db).unwrap();
        let n: i64 = c
            .query_row("SELECT COUNT(*) FROM event", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 15);
        assert_eq!(store.counters.duplicates.load(Relaxed), 6);
        // A restarted control plane knows where the sender stands.
        drop(c);
        let (store2, _w2) = EventStore::start(&db, 16).unwrap();
        assert_eq!(store2.committed.get("gw-test"), 15);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_second_control_plane_leaves_the_running_ones_socket_alone() {
        let dir = std::env::temp_dir().join(format!("mimamori-gwlink-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let db = dir.join("cp.db");
        crate::db::open(&db).unwrap();
        let (store, _w) = EventStore::start(&db, 16).unwrap();
        let store = Arc::new(store);
        let sock = dir.join("cp.sock");
        let current: Current = Arc::new(Mutex::new(Some((7, "[sides]\n".into()))));
        spawn_gateway_socket(&sock, current.clone(), store.clone()).unwrap();
        let err = spawn_gateway_socket(&sock, current, store).unwrap_err();
        assert!(err.to_string().contains("another control plane"), "{err}");
        // The first one still answers.
        let mut s = UnixStream::connect(&sock).unwrap();
        s.write_all(b"current\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        assert!(out.starts_with("policy 7"), "{out:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

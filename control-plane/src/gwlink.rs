//! The control plane's two sockets with the gateway: the gateway's control socket (apply
//! a snapshot, read counters and hosts, release a host) and our gateway-facing socket
//! (the gateway asks for the current policy at start and streams its events).

use crate::events::EventStore;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GwError {
    /// The gateway answered and said no: the reason is its own.
    Refused(String),
    /// No answer: not running, socket missing, timed out.
    Unreachable(String),
}

impl std::fmt::Display for GwError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GwError::Refused(r) => write!(f, "the gateway refused: {r}"),
            GwError::Unreachable(r) => write!(f, "the gateway is unreachable: {r}"),
        }
    }
}

#[derive(Clone, Debug)]
pub struct GatewayLink {
    pub socket: PathBuf,
}

impl GatewayLink {
    fn call(&self, line: &str, body: &[u8]) -> Result<String, GwError> {
        let unreachable =
            |e: std::io::Error| GwError::Unreachable(format!("{}: {e}", self.socket.display()));
        let mut s = UnixStream::connect(&self.socket).map_err(unreachable)?;
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(unreachable)?;
        s.set_write_timeout(Some(Duration::from_secs(10)))
            .map_err(unreachable)?;
        s.write_all(line.as_bytes()).map_err(unreachable)?;
        s.write_all(b"\n").map_err(unreachable)?;
        s.write_all(body).map_err(unreachable)?;
        let mut out = String::new();
        s.read_to_string(&mut out).map_err(unreachable)?;
        if let Some(reason) = out.strip_prefix("error ") {
            return Err(GwError::Refused(reason.trim().to_string()));
        }
        if out.is_empty() {
            return Err(GwError::Unreachable("closed without an answer".into()));
        }
        Ok(out)
    }

    /// Hands a policy snapshot over; returns the microseconds until every stage ran it.
    pub fn apply(&self, version: u64, toml: &str) -> Result<u64, GwError> {
        let out = self.call(&format!("apply {version} {}", toml.len()), toml.as_bytes())?;
        let mut w = out.split_whitespace();
        match (w.next(), w.next(), w.next().and_then(|m| m.parse().ok())) {
            (Some("ok"), Some(_), Some(us)) => Ok(us),
            _ => Err(GwError::Unreachable(format!("unexpected answer {out:?}"))),
        }
    }

    pub fn stats(&self) -> Result<serde_json::Value, GwError> {
        let out = self.call("stats", b"")?;
        serde_json::from_str(&out).map_err(|e| GwError::Unreachable(format!("bad stats: {e}")))
    }

    pub fn hosts(&self) -> Result<serde_json::Value, GwError> {
        let out = self.call("hosts", b"")?;
        serde_json::from_str(&out).map_err(|e| GwError::Unreachable(format!("bad hosts: {e}")))
    }

    pub fn release(&self, mac: &str) -> Result<(), GwError> {
        self.call(&format!("release {mac}"), b"").map(|_| ())
    }
}

/// The policy the gateway gets when it asks (`current`): version and TOML.
pub type Current = Arc<Mutex<Option<(u64, String)>>>;

/// Serves the gateway-facing socket: `current` answers `policy <version>\n<TOML>` (or
/// `none`), `events` is followed by EVE lines until the gateway closes.
pub fn spawn_gateway_socket(
    path: &Path,
    current: Current,
    store: Arc<EventStore>,
) -> anyhow::Result<()> {
    if path.exists() {
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
            let (current, store) = (current.clone(), store.clone());
            std::thread::spawn(move || {
                let _ = serve(conn, &current, &store);
            });
        }
    });
    Ok(())
}

fn serve(conn: UnixStream, current: &Current, store: &EventStore) -> std::io::Result<()> {
    let mut r = BufReader::with_capacity(1 << 16, conn.try_clone()?);
    let mut w = conn;
    let mut line = String::new();
    r.read_line(&mut line)?;
    match line.trim() {
        "current" => {
            let cur = current.lock().unwrap_or_else(|e| e.into_inner()).clone();
            match cur {
                Some((v, toml)) => {
                    w.write_all(format!("policy {v}\n").as_bytes())?;
                    w.write_all(toml.as_bytes())?;
                }
                None => w.write_all(b"none\n")?,
            }
        }
        "events" => {
            let mut buf = String::new();
            loop {
                buf.clear();
                if r.by_ref().take(1 << 20).read_line(&mut buf)? == 0 {
                    break;
                }
                let l = buf.trim_end();
                if !l.is_empty() && !store.put(l) {
                    break;
                }
            }
        }
        other => w.write_all(format!("error unknown command {other:?}\n").as_bytes())?,
    }
    Ok(())
}

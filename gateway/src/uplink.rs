//! The gateway's side of the acknowledged event stream to the control plane
//! (`mimamori_proto::stream`): every event goes to the [`Spool`] first; a connection,
//! tried again every second while down, resumes where the control plane's last commit
//! left off and sends what the spool holds after it; the control plane's acks trim it.

use crate::spool::{Spool, SpoolStats};
use mimamori_proto::{CpRequest, stream};
use std::io::{BufReader, BufWriter, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// Lines sent per [`Uplink::pump`] at most, so catching up never starves the intake.
const PUMP_LINES: usize = 65_536;

/// The counters the stats socket shows.
#[derive(Default)]
pub struct UplinkCounters {
    pub written: AtomicU64,
    pub acked: AtomicU64,
    pub dropped: AtomicU64,
    pub connected: AtomicBool,
}

struct Conn {
    w: BufWriter<UnixStream>,
    acked: Arc<AtomicU64>,
    alive: Arc<AtomicBool>,
}

pub struct Uplink {
    socket: PathBuf,
    source: String,
    spool: Spool,
    conn: Option<Conn>,
    last_try: Option<Instant>,
    last_sync: Instant,
    pub counters: Arc<UplinkCounters>,
}

impl Uplink {
    pub fn open(
        socket: &Path,
        source: &str,
        spool_dir: &Path,
        max_bytes: u64,
    ) -> anyhow::Result<Uplink> {
        let spool = Spool::open(spool_dir, max_bytes)?;
        let u = Uplink {
            socket: socket.to_path_buf(),
            source: source.to_string(),
            spool,
            conn: None,
            last_try: None,
            last_sync: Instant::now(),
            counters: Arc::new(UplinkCounters::default()),
        };
        u.publish();
        Ok(u)
    }

    /// Spools one event (its EVE JSON).
    pub fn push(&mut self, json: &[u8]) -> anyhow::Result<u64> {
        self.spool.append(json)
    }

    pub fn stats(&self) -> SpoolStats {
        self.spool.stats
    }

    fn publish(&self) {
        let s = self.spool.stats;
        self.counters.written.store(s.written, Relaxed);
        self.counters.acked.store(s.acked, Relaxed);
        self.counters.dropped.store(s.dropped, Relaxed);
        self.counters.connected.store(self.conn.is_some(), Relaxed);
    }

    /// Makes the spool durable, takes acks, (re)connects when due and sends what is
    /// waiting. Called after every batch and while idle.
    pub fn pump(&mut self) {
        let _ = self.spool.flush();
        if self.last_sync.elapsed() > Duration::from_secs(1) {
            let _ = self.spool.sync();
            self.last_sync = Instant::now();
        }
        if let Some(c) = &self.conn {
            self.spool.ack(c.acked.load(Relaxed));
            if !c.alive.load(Relaxed) {
                self.conn = None;
            }
        }
        if self.conn.is_none()
            && self
                .last_try
                .is_none_or(|t| t.elapsed() > Duration::from_secs(1))
        {
            self.last_try = Some(Instant::now());
            self.conn = self.connect();
        }
        if let Some(c) = self.conn.as_mut() {
            let mut ok = true;
            for _ in 0..PUMP_LINES {
                match self.spool.next_line() {
                    Ok(Some(line)) => {
                        if c.w.write_all(line).is_err() {
                            ok = false;
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        eprintln!("mimamori-gw: event spool: {e:#}");
                        break;
                    }
                }
            }
            if !ok || c.w.flush().is_err() {
                self.conn = None;
            }
        }
        self.publish();
    }

    /// Opens the stream and rewinds the spool to the control plane's last commit.
    fn connect(&mut self) -> Option<Conn> {
        let s = mimamori_proto::connect(&self.socket, Duration::from_secs(2)).ok()?;
        let mut w = BufWriter::with_capacity(1 << 16, s.try_clone().ok()?);
        CpRequest::Stream(self.source.clone()).encode(&mut w).ok()?;
        w.flush().ok()?;
        let mut r = BufReader::new(s.try_clone().ok()?);
        let resume = stream::decode_resume(&mut r).ok()?;
        if resume > self.spool.stats.written {
            // The control plane has numbers this spool never wrote (the spool was lost
            // or reset): go on from there, so nothing new reads as a duplicate.
            eprintln!(
                "mimamori-gw: the control plane has events up to {resume}, the spool only to {}; numbering on from {resume}",
                self.spool.stats.written
            );
            self.spool.renumber_after(resume);
        }
        self.spool.ack(resume);
        self.spool.rewind(resume + 1);
        let _ = s.set_read_timeout(None);
        let acked = Arc::new(AtomicU64::new(resume));
        let alive = Arc::new(AtomicBool::new(true));
        let (a, l) = (acked.clone(), alive.clone());
        std::thread::spawn(move || {
            while let Ok(Some(n)) = stream::decode_ack(&mut r) {
                a.fetch_max(n, Relaxed);
            }
            l.store(false, Relaxed);
        });
        Some(Conn { w, acked, alive })
    }

    /// Sends what it can before a clean stop, waiting up to `grace` for the acks.
    pub fn drain(&mut self, grace: Duration) {
        let until = Instant::now() + grace;
        loop {
            self.pump();
            let s = self.spool.stats;
            if s.acked >= s.written || self.conn.is_none() || Instant::now() > until {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.spool.sync();
    }
}

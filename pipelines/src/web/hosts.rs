//! LAN hosts as the desk needs to name them: MAC, last addresses, DHCP host name and client
//! identifier, ARP; callbacks to C&C or malware names, and quarantine.
//!
//! The table is shared by all workers but never touched per packet: each worker buffers its
//! observations and hands them over between bursts (`HostAgent::sync`), one lock per sync.
//! The quarantined set is published with a generation counter, so a worker reads it from
//! its own copy and refreshes that only when the counter moves.

use super::names::{DhcpInfo, ShortName};
use crate::packet::to_ip;
use crate::wire::MacAddr;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Observation {
    Arp {
        mac: MacAddr,
        ip: u128,
    },
    Dhcp(DhcpInfo),
    /// A lookup of, or connection to, a callback-category name.
    Callback {
        mac: MacAddr,
        ip: u128,
        ts_ns: u64,
    },
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Host {
    pub mac: String,
    pub ipv4: Option<std::net::IpAddr>,
    pub ipv6: Option<std::net::IpAddr>,
    pub hostname: String,
    pub client_id: String,
    pub callbacks_total: u64,
    /// Callbacks in the current window.
    pub callbacks_window: u32,
    #[serde(skip)]
    window_start_ns: u64,
    pub quarantined: bool,
    #[serde(skip)]
    last_seen_ns: u64,
}

/// A host just quarantined, for its event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quarantined {
    pub mac: MacAddr,
    pub ip: u128,
    pub hostname: ShortName,
    pub client_id: ShortName,
    pub callbacks: u32,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct HostStats {
    pub hosts: usize,
    pub quarantined: usize,
    /// Hosts forgotten to make room (never a quarantined one).
    pub evicted: u64,
    /// Observations lost because the table was full of quarantined hosts.
    pub refused: u64,
}

struct Table {
    hosts: HashMap<MacAddr, Host>,
    capacity: usize,
    callbacks: u32,
    window_ns: u64,
    released: Vec<MacAddr>,
    stats: HostStats,
}

pub struct Hosts {
    table: Mutex<Table>,
    generation: AtomicU64,
}

impl Hosts {
    pub fn new(cfg: &super::WebConfig) -> Arc<Hosts> {
        Arc::new(Hosts {
            table: Mutex::new(Table {
                hosts: HashMap::with_capacity(cfg.hosts),
                capacity: cfg.hosts,
                callbacks: cfg.quarantine.callbacks,
                window_ns: u64::from(cfg.quarantine.window_secs) * 1_000_000_000,
                released: cfg.quarantine.released.clone(),
                stats: HostStats::default(),
            }),
            generation: AtomicU64::new(0),
        })
    }

    /// Takes a new policy's thresholds and release list; hosts and their state stay.
    pub fn reconfigure(&self, cfg: &super::WebConfig) {
        let mut t = self.lock();
        t.callbacks = cfg.quarantine.callbacks;
        t.window_ns = u64::from(cfg.quarantine.window_secs) * 1_000_000_000;
        t.released = cfg.quarantine.released.clone();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        // A worker that panicked mid-update leaves counters at worst; keep serving.
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies observations; returns the hosts this call quarantined.
    pub fn apply(&self, obs: &[Observation], now_ns: u64, out: &mut Vec<Quarantined>) {
        let mut t = self.lock();
        let (threshold, window) = (t.callbacks, t.window_ns);
        let mut changed = false;
        for o in obs {
            let mac = match o {
                Observation::Arp { mac, .. } | Observation::Callback { mac, .. } => *mac,
                Observation::Dhcp(d) => d.mac,
            };
            if mac.is_multicast() || mac.0 == [0; 6] {
                continue;
            }
            let released = t.released.contains(&mac);
            let Some(h) = t.entry(mac, now_ns) else {
                continue;
            };
            match *o {
                Observation::Arp { ip, .. } => h.set_ip(ip),
                Observation::Dhcp(d) => {
                    if let Some(a) = d.ip {
                        h.set_ip(crate::packet::v4_bits(a));
                    }
                    if !d.hostname.is_empty() {
                        h.hostname = d.hostname.as_str().to_string();
                    }
                    if !d.client_id.is_empty() {
                        h.client_id = d.client_id.as_str().to_string();
                    }
                }
                Observation::Callback { ip, ts_ns, .. } => {
                    h.set_ip(ip);
                    h.callbacks_total += 1;
                    // N callbacks within `window` of the first one of the run.
                    if h.callbacks_window == 0 || ts_ns.saturating_sub(h.window_start_ns) > window {
                        h.window_start_ns = ts_ns;
                        h.callbacks_window = 0;
                    }
                    h.callbacks_window += 1;
                    if !h.quarantined && h.callbacks_window >= threshold && !released {
                        h.quarantined = true;
                        out.push(Quarantined {
                            mac,
                            ip,
                            hostname: ShortName::new(h.hostname.as_bytes()),
                            client_id: ShortName::new(h.client_id.as_bytes()),
                            callbacks: h.callbacks_window,
                        });
                        t.stats.quarantined += 1;
                        changed = true;
                    }
                }
            }
        }
        t.stats.hosts = t.hosts.len();
        if changed {
            self.generation.fetch_add(1, Ordering::Release);
        }
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn quarantined(&self, out: &mut Vec<MacAddr>) {
        out.clear();
        out.extend(
            self.lock()
                .hosts
                .iter()
                .filter(|(_, h)| h.quarantined)
                .map(|(m, _)| *m),
        );
    }

    /// Lets a quarantined host out (the operator's decision); false if it was not in.
    pub fn release(&self, mac: MacAddr) -> bool {
        let mut t = self.lock();
        let was = match t.hosts.get_mut(&mac) {
            Some(h) if h.quarantined => {
                h.quarantined = false;
                h.callbacks_window = 0;
                true
            }
            _ => false,
        };
        if was {
            t.stats.quarantined -= 1;
            drop(t);
            self.generation.fetch_add(1, Ordering::Release);
        }
        was
    }

    pub fn get(&self, mac: MacAddr) -> Option<Host> {
        self.lock().hosts.get(&mac).cloned()
    }

    pub fn snapshot(&self) -> (Vec<Host>, HostStats) {
        let t = self.lock();
        let mut v: Vec<Host> = t.hosts.values().cloned().collect();
        v.sort_by(|a, b| a.mac.cmp(&b.mac));
        (v, t.stats.clone())
    }
}

impl Host {
    fn set_ip(&mut self, ip: u128) {
        let v4 = ip >> 32 == crate::packet::V4_MAPPED >> 32;
        let a = Some(to_ip(ip, v4));
        if v4 { self.ipv4 = a } else { self.ipv6 = a }
    }
}

impl Table {
    fn entry(&mut self, mac: MacAddr, now_ns: u64) -> Option<&mut Host> {
        if !self.hosts.contains_key(&mac) && self.hosts.len() >= self.capacity {
            // Forget the host seen longest ago; quarantined hosts are never forgotten.
            let victim = self
                .hosts
                .iter()
                .filter(|(_, h)| !h.quarantined)
                .min_by_key(|(_, h)| h.last_seen_ns)
                .map(|(m, _)| *m);
            match victim {
                Some(v) => {
                    self.hosts.remove(&v);
                    self.stats.evicted += 1;
                }
                None => {
                    self.stats.refused += 1;
                    return None;
                }
            }
        }
        let h = self.hosts.entry(mac).or_insert_with(|| Host {
            mac: mac.to_string(),
            ..Host::default()
        });
        h.last_seen_ns = now_ns;
        Some(h)
    }
}

/// A worker's side of the host table.
pub struct HostAgent {
    shared: Arc<Hosts>,
    pending: Vec<Observation>,
    quarantined: Vec<MacAddr>,
    seen_generation: u64,
    fresh: Vec<Quarantined>,
    /// Observations lost because the buffer was full between two syncs.
    pub dropped: u64,
}

const PENDING_MAX: usize = 256;

impl HostAgent {
    pub fn new(shared: Arc<Hosts>) -> Self {
        let mut quarantined = Vec::new();
        shared.quarantined(&mut quarantined);
        Self {
            seen_generation: shared.generation(),
            shared,
            pending: Vec::with_capacity(PENDING_MAX),
            quarantined,
            fresh: Vec::with_capacity(16),
            dropped: 0,
        }
    }

    pub fn shared(&self) -> &Arc<Hosts> {
        &self.shared
    }

    #[inline]
    pub fn observe(&mut self, o: Observation) {
        if self.pending.len() < PENDING_MAX {
            self.pending.push(o);
        } else {
            self.dropped += 1;
        }
    }

    #[inline]
    pub fn is_quarantined(&self, mac: MacAddr) -> bool {
        !self.quarantined.is_empty() && self.quarantined.contains(&mac)
    }

    /// Hands over the buffered observations and refreshes the quarantined set; returns
    /// the hosts quarantined by this hand-over.
    pub fn sync(&mut self, now_ns: u64) -> &[Quarantined] {
        self.fresh.clear();
        if !self.pending.is_empty() {
            self.shared.apply(&self.pending, now_ns, &mut self.fresh);
            self.pending.clear();
        }
        let g = self.shared.generation();
        if g != self.seen_generation {
            self.seen_generation = g;
            self.shared.quarantined(&mut self.quarantined);
        }
        &self.fresh
    }
}

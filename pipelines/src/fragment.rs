//! Fragment tracking for the firewall: later fragments carry no ports, so the tracker
//! remembers the first fragment's ports and lets the rest follow its flow. Overlaps (the
//! classic evasion) poison the whole datagram. Full reassembly is the IPS's job.

use crate::packet::PacketMeta;
use hashbrown::HashMap;
use serde::Serialize;

/// Most fragments one datagram may arrive in.
pub const MAX_FRAGMENTS: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct DatagramKey {
    src: u128,
    dst: u128,
    ident: u32,
    vlan: u32,
    proto: u8,
}

#[derive(Clone, Copy, Debug)]
struct Datagram {
    /// Ports from the first fragment, once it has been seen.
    ports: Option<(u16, u16)>,
    ranges: [(u16, u16); MAX_FRAGMENTS],
    n: u8,
    covered: u32,
    /// Length of the whole datagram, known from the last fragment.
    total: Option<u32>,
    poisoned: bool,
    expires_ns: u64,
}

impl DatagramKey {
    pub(crate) fn of(m: &PacketMeta, frag: crate::packet::Fragment) -> Self {
        DatagramKey {
            src: m.src,
            dst: m.dst,
            ident: frag.ident,
            vlan: m.vlan_key(),
            proto: m.proto,
        }
    }
}

/// Where a fragment's share of the datagram starts in its frame, and its length.
pub(crate) fn fragment_data(m: &PacketMeta) -> (usize, usize) {
    let start = usize::from(if m.has_l4() {
        m.l4_offset
    } else {
        m.payload_offset
    });
    let len = (usize::from(m.l3_offset) + usize::from(m.ip_len)).saturating_sub(start);
    (start, len)
}

/// What the tracker says about one fragment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FragmentVerdict {
    /// Belongs to the flow with these ports; classify as usual.
    Ports(u16, u16),
    /// Overlaps a fragment already seen (or follows one that did): drop.
    Overlap,
    /// A later fragment whose first one has not been seen: drop.
    NoHead,
    /// More than [`MAX_FRAGMENTS`] pieces: drop.
    TooMany,
    /// No room to track another datagram: drop.
    TableFull,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FragmentStats {
    pub fragments: u64,
    pub datagrams_completed: u64,
    pub overlaps: u64,
    pub no_head: u64,
    pub too_many: u64,
    pub table_full: u64,
    pub expired: u64,
}

pub struct FragmentTracker {
    map: HashMap<DatagramKey, Datagram, foldhash::fast::RandomState>,
    capacity: usize,
    timeout_ns: u64,
    next_sweep_ns: u64,
    pub stats: FragmentStats,
}

impl FragmentTracker {
    pub fn new(capacity: usize, timeout_secs: u32) -> Self {
        Self {
            map: HashMap::with_capacity_and_hasher(capacity, Default::default()),
            capacity,
            timeout_ns: u64::from(timeout_secs) * 1_000_000_000,
            next_sweep_ns: 0,
            stats: FragmentStats::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Records a fragment of `m` (which must have `m.fragment` set).
    pub fn track(&mut self, m: &PacketMeta, now_ns: u64) -> FragmentVerdict {
        let Some(frag) = m.fragment else {
            let (a, b) = crate::flow::FlowKey::ports_of(m);
            return FragmentVerdict::Ports(a, b);
        };
        self.stats.fragments += 1;
        self.sweep(now_ns);
        let key = DatagramKey::of(m, frag);
        let start = frag.offset;
        let data_len = fragment_data(m).1;
        let end = (usize::from(start) + data_len).min(65535) as u16;
        if !self.map.contains_key(&key) && self.map.len() >= self.capacity {
            self.stats.table_full += 1;
            return FragmentVerdict::TableFull;
        }
        let timeout = self.timeout_ns;
        let d = self.map.entry(key).or_insert_with(|| Datagram {
            ports: None,
            ranges: [(0, 0); MAX_FRAGMENTS],
            n: 0,
            covered: 0,
            total: None,
            poisoned: false,
            expires_ns: now_ns + timeout,
        });
        if d.poisoned {
            self.stats.overlaps += 1;
            return FragmentVerdict::Overlap;
        }
        if d.ranges[..usize::from(d.n)]
            .iter()
            .any(|&(s, e)| start < e && s < end)
        {
            d.poisoned = true;
            self.stats.overlaps += 1;
            return FragmentVerdict::Overlap;
        }
        if usize::from(d.n) == MAX_FRAGMENTS {
            d.poisoned = true;
            self.stats.too_many += 1;
            return FragmentVerdict::TooMany;
        }
        d.ranges[usize::from(d.n)] = (start, end);
        d.n += 1;
        d.covered += u32::from(end - start);
        if !frag.more {
            d.total = Some(u32::from(end));
        }
        if frag.offset == 0 {
            d.ports = Some(crate::flow::FlowKey::ports_of(m));
        }
        let Some((sp, dp)) = d.ports else {
            self.stats.no_head += 1;
            return FragmentVerdict::NoHead;
        };
        if d.total == Some(d.covered) {
            self.map.remove(&key);
            self.stats.datagrams_completed += 1;
        }
        FragmentVerdict::Ports(sp, dp)
    }

    /// Forgets datagrams that did not complete in time (at most once a second).
    fn sweep(&mut self, now_ns: u64) {
        if now_ns < self.next_sweep_ns {
            return;
        }
        self.next_sweep_ns = now_ns + 1_000_000_000;
        let before = self.map.len();
        self.map.retain(|_, d| d.expires_ns > now_ns);
        self.stats.expired += (before - self.map.len()) as u64;
    }
}

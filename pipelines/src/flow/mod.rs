//! The flow table: one entry per bidirectional conversation, found from either direction.
//!
//! Entries live in a slab allocated once at start-up; the hash index (hashbrown's
//! `HashTable`) holds only 4-byte slab indices. Nothing is allocated per packet. When the
//! table is full, a configurable policy either refuses the new flow or evicts an old one,
//! and both are counted.

pub mod tcp;

use crate::packet::PacketMeta;
use crate::wire::{icmp, ip_proto};
use hashbrown::HashTable;
use serde::{Deserialize, Serialize};
use std::hash::BuildHasher;

/// The folded multiply at the heart of foldhash: a 64x64→128 multiply, halves xored.
#[inline(always)]
fn fold_mul(x: u64, y: u64) -> u64 {
    let full = u128::from(x) * u128::from(y);
    (full as u64) ^ ((full >> 64) as u64)
}

#[inline]
fn hash_key(seeds: &[u64; 4], k: &FlowKey) -> u64 {
    let ports = u64::from(k.lo_port) | (u64::from(k.hi_port) << 16) | (u64::from(k.proto) << 32);
    let a = fold_mul(
        (k.lo_addr as u64) ^ seeds[0],
        ((k.lo_addr >> 64) as u64) ^ seeds[1],
    );
    let b = fold_mul(
        (k.hi_addr as u64) ^ seeds[2],
        ((k.hi_addr >> 64) as u64) ^ ports,
    );
    fold_mul(a ^ u64::from(k.vlan), b ^ seeds[3])
}

fn random_seeds() -> [u64; 4] {
    let rs = std::collections::hash_map::RandomState::new();
    [0u64, 1, 2, 3].map(|i| rs.hash_one(i) | 1)
}
pub use tcp::TcpState;

/// Symmetric flow key: the two endpoints in a fixed order, so both directions of a
/// conversation produce the same key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub lo_addr: u128,
    pub hi_addr: u128,
    pub lo_port: u16,
    pub hi_port: u16,
    pub vlan: u32,
    pub proto: u8,
}

impl FlowKey {
    /// The key of `m` and whether its sender is the key's `lo` endpoint.
    #[inline]
    pub fn from_meta(m: &PacketMeta) -> (FlowKey, bool) {
        let (sp, dp) = Self::ports_of(m);
        Self::new(m.src, sp, m.dst, dp, m.proto, m.vlan_key())
    }

    /// The "ports" a packet contributes to its key. ICMP queries use their identifier:
    /// `(id, 0)` for a request, `(0, id)` for a reply, so a reply lands on its request's
    /// flow while a request in the other direction is a flow of its own.
    #[inline]
    pub fn ports_of(m: &PacketMeta) -> (u16, u16) {
        match m.proto {
            ip_proto::TCP | ip_proto::UDP => (m.src_port, m.dst_port),
            ip_proto::ICMP | ip_proto::ICMPV6 if m.has_l4() => {
                icmp::query_ports(m.proto == ip_proto::ICMPV6, m.icmp_type, m.icmp_ident)
            }
            _ => (0, 0),
        }
    }

    #[inline]
    pub fn new(src: u128, sp: u16, dst: u128, dp: u16, proto: u8, vlan: u32) -> (FlowKey, bool) {
        let src_is_lo = (src, sp) <= (dst, dp);
        let ((lo_addr, lo_port), (hi_addr, hi_port)) = if src_is_lo {
            ((src, sp), (dst, dp))
        } else {
            ((dst, dp), (src, sp))
        };
        (
            FlowKey {
                lo_addr,
                hi_addr,
                lo_port,
                hi_port,
                vlan,
                proto,
            },
            src_is_lo,
        )
    }
}

/// Which bridge port a packet arrived on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[repr(u8)]
pub enum Side {
    #[default]
    Lan,
    Wan,
}

impl Side {
    pub fn other(self) -> Side {
        match self {
            Side::Lan => Side::Wan,
            Side::Wan => Side::Lan,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Side::Lan => "lan",
            Side::Wan => "wan",
        }
    }
}

/// The firewall's decision, taken when the flow is created and cached in it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(u8)]
pub enum FlowVerdict {
    #[default]
    Allow,
    Deny,
    Reject,
}

pub const NO_RULE: u32 = u32::MAX;

/// One flow, laid out in two cache lines: the first holds what a lookup compares and
/// what every packet updates in time, the second the counters and the decision.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C, align(64))]
pub struct Flow {
    pub key: FlowKey,
    pub last_seen_ns: u64,
    pub expires_ns: u64,
    /// `[0]` from the initiator (to server), `[1]` from the responder (to client).
    pub pkts: [u64; 2],
    pub bytes: [u64; 2],
    /// Unique per table, quoted by events as `flow_id`.
    pub id: u64,
    pub first_seen_ns: u64,
    /// Index of the firewall rule that decided, or [`NO_RULE`] for a zone default.
    pub rule: u32,
    /// The policy generation the verdict was taken under (re-decided when it moves).
    /// Compared for equality only: wrapping needs 2^32 swaps while a flow sits idle.
    pub generation: u32,
    pub verdict: FlowVerdict,
    pub tcp: TcpState,
    pub initiator_is_lo: bool,
    pub initiator_side: Side,
    /// Set when the decision was logged, so the flow's end is logged too.
    pub logged: bool,
    /// Set when an inspector blocked the flow: its later drops are counted for it, and a
    /// policy swap does not re-decide it.
    pub blocked: Option<crate::classify::DropReason>,
    live: bool,
}

impl Flow {
    /// Direction index for counters: 0 when the sender is the initiator.
    #[inline]
    pub fn dir(&self, src_is_lo: bool) -> usize {
        usize::from(src_is_lo != self.initiator_is_lo)
    }
    /// Both directions have been seen (conntrack's "assured"): such flows are evicted last.
    pub fn assured(&self) -> bool {
        match self.tcp {
            TcpState::None => self.pkts[1] > 0,
            s => s == TcpState::Established,
        }
    }
    /// Initiator's address and port, then responder's.
    pub fn endpoints(&self) -> ((u128, u16), (u128, u16)) {
        let lo = (self.key.lo_addr, self.key.lo_port);
        let hi = (self.key.hi_addr, self.key.hi_port);
        if self.initiator_is_lo {
            (lo, hi)
        } else {
            (hi, lo)
        }
    }
}

/// Idle timeouts in seconds, defaults after Linux nf_conntrack.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Timeouts {
    pub tcp_syn_sent: u32,
    pub tcp_syn_recv: u32,
    pub tcp_established: u32,
    pub tcp_fin_wait: u32,
    pub tcp_close_wait: u32,
    pub tcp_last_ack: u32,
    pub tcp_time_wait: u32,
    pub tcp_close: u32,
    /// UDP seen in one direction only.
    pub udp: u32,
    /// UDP with replies.
    pub udp_stream: u32,
    pub icmp: u32,
    pub other: u32,
    /// Flows the firewall denied: kept briefly so repeats are dropped without a rule walk.
    pub denied: u32,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            tcp_syn_sent: 120,
            tcp_syn_recv: 60,
            tcp_established: 432_000,
            tcp_fin_wait: 120,
            tcp_close_wait: 60,
            tcp_last_ack: 30,
            tcp_time_wait: 120,
            tcp_close: 10,
            udp: 30,
            udp_stream: 120,
            icmp: 30,
            other: 600,
            denied: 10,
        }
    }
}

impl Timeouts {
    /// Idle timeout in nanoseconds for a flow in its current state.
    #[inline]
    pub fn for_flow(&self, f: &Flow) -> u64 {
        let s = if f.verdict != FlowVerdict::Allow {
            self.denied
        } else {
            match (f.key.proto, f.tcp) {
                (ip_proto::TCP, TcpState::SynSent) => self.tcp_syn_sent,
                (ip_proto::TCP, TcpState::SynRecv) => self.tcp_syn_recv,
                (ip_proto::TCP, TcpState::Established) => self.tcp_established,
                (ip_proto::TCP, TcpState::FinWait) => self.tcp_fin_wait,
                (ip_proto::TCP, TcpState::CloseWait) => self.tcp_close_wait,
                (ip_proto::TCP, TcpState::LastAck) => self.tcp_last_ack,
                (ip_proto::TCP, TcpState::TimeWait) => self.tcp_time_wait,
                (ip_proto::TCP, _) => self.tcp_close,
                (ip_proto::UDP, _) if f.pkts[1] > 0 => self.udp_stream,
                (ip_proto::UDP, _) => self.udp,
                (ip_proto::ICMP | ip_proto::ICMPV6, _) => self.icmp,
                _ => self.other,
            }
        };
        u64::from(s) * 1_000_000_000
    }
}

/// What to do with a new flow when the table is full.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnFull {
    /// Evict the least recently seen of a small sample, unconfirmed flows first
    /// (like conntrack's early drop), and admit the new one.
    #[default]
    EvictOldest,
    /// Keep existing flows; drop the packet that would open a new one.
    DropNew,
}

/// Why a flow left the table (EVE's `flow.reason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndReason {
    Timeout,
    /// Evicted to make room for a new flow.
    Forced,
    Shutdown,
}

impl EndReason {
    pub fn name(self) -> &'static str {
        match self {
            EndReason::Timeout => "timeout",
            EndReason::Forced => "forced",
            EndReason::Shutdown => "shutdown",
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FlowTableStats {
    pub created: u64,
    pub expired: u64,
    pub evicted: u64,
    /// New flows refused because the table was full (`drop-new`).
    pub refused: u64,
}

/// How many slots an eviction samples.
const EVICTION_SAMPLE: usize = 8;

pub struct FlowTable {
    slab: Vec<Flow>,
    free: Vec<u32>,
    index: HashTable<u32>,
    /// Per-table random keys, so flow placement cannot be predicted from outside.
    seeds: [u64; 4],
    capacity: usize,
    on_full: OnFull,
    hand: usize,
    next_id: u64,
    live: usize,
    pub stats: FlowTableStats,
}

impl FlowTable {
    /// Allocates room for `capacity` flows up front.
    pub fn new(capacity: usize, on_full: OnFull) -> Self {
        let capacity = capacity.clamp(1, u32::MAX as usize - 1);
        Self {
            slab: Vec::with_capacity(capacity),
            free: Vec::with_capacity(capacity),
            index: HashTable::with_capacity(capacity),
            seeds: random_seeds(),
            capacity,
            on_full,
            hand: 0,
            next_id: 1,
            live: 0,
            stats: FlowTableStats::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.live
    }
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Bytes held by the table for `capacity` flows (slab, free list, index).
    pub fn memory_bytes(&self) -> usize {
        self.slab.capacity() * std::mem::size_of::<Flow>()
            + self.free.capacity() * 4
            + self.index.capacity() * 8 / 7 * (4 + 1)
    }

    #[inline]
    pub fn hash(&self, key: &FlowKey) -> u64 {
        hash_key(&self.seeds, key)
    }

    #[inline]
    pub fn find(&self, key: &FlowKey, hash: u64) -> Option<u32> {
        let slab = &self.slab;
        self.index
            .find(hash, |&i| slab[i as usize].key == *key)
            .copied()
    }

    /// `find`, then a read of the flow's second cache line so that it is on its way in
    /// by the time the packet is decided (used by the first pass over a burst).
    #[inline]
    pub fn find_and_touch(&self, key: &FlowKey, hash: u64) -> Option<u32> {
        let found = self.find(key, hash);
        if let Some(i) = found {
            std::hint::black_box(self.slab[i as usize].pkts[0]);
        }
        found
    }

    /// True when slot `idx` still holds the live flow `key` (a lookup made earlier in the
    /// burst may have been overtaken by an eviction or removal).
    #[inline]
    pub fn holds(&self, idx: u32, key: &FlowKey) -> bool {
        self.slab
            .get(idx as usize)
            .is_some_and(|f| f.live && f.key == *key)
    }

    #[inline]
    pub fn get(&self, idx: u32) -> &Flow {
        &self.slab[idx as usize]
    }
    #[inline]
    pub fn get_mut(&mut self, idx: u32) -> &mut Flow {
        &mut self.slab[idx as usize]
    }

    /// Inserts a new flow for `key` (which must not be present). When full, applies the
    /// `on_full` policy; an evicted flow is handed to `ended` (with its slot) before its
    /// slot is reused.
    /// Returns `None` when the flow was refused.
    pub fn insert(
        &mut self,
        key: FlowKey,
        hash: u64,
        now_ns: u64,
        mut ended: impl FnMut(u32, &Flow, EndReason),
    ) -> Option<u32> {
        if self.live >= self.capacity {
            match self.on_full {
                OnFull::DropNew => {
                    self.stats.refused += 1;
                    return None;
                }
                OnFull::EvictOldest => {
                    let victim = self.pick_victim();
                    ended(victim, &self.slab[victim as usize], EndReason::Forced);
                    self.remove(victim);
                    self.stats.evicted += 1;
                }
            }
        }
        let idx = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slab.push(Flow::default());
                (self.slab.len() - 1) as u32
            }
        };
        let id = self.next_id;
        self.next_id += 1;
        self.slab[idx as usize] = Flow {
            key,
            id,
            first_seen_ns: now_ns,
            last_seen_ns: now_ns,
            expires_ns: now_ns,
            rule: NO_RULE,
            live: true,
            ..Flow::default()
        };
        let (slab, seeds) = (&self.slab, &self.seeds);
        self.index
            .insert_unique(hash, idx, |&i| hash_key(seeds, &slab[i as usize].key));
        self.live += 1;
        self.stats.created += 1;
        Some(idx)
    }

    /// Removes a live flow.
    pub fn remove(&mut self, idx: u32) {
        let f = &mut self.slab[idx as usize];
        if !f.live {
            return;
        }
        f.live = false;
        f.expires_ns = u64::MAX; // so the expiry scan skips free slots on the first line
        let key = f.key;
        let hash = hash_key(&self.seeds, &key);
        let slab = &self.slab;
        if let Ok(e) = self
            .index
            .find_entry(hash, |&i| slab[i as usize].key == key)
        {
            e.remove();
        }
        self.free.push(idx);
        self.live -= 1;
    }

    /// The least recently seen of a few consecutive slots, preferring flows that never
    /// saw a reply (cheap to lose) over assured ones.
    fn pick_victim(&mut self) -> u32 {
        let n = self.slab.len();
        let mut best: Option<(bool, u64, u32)> = None;
        let mut looked = 0;
        while looked < EVICTION_SAMPLE || best.is_none() {
            self.hand = (self.hand + 1) % n;
            let f = &self.slab[self.hand];
            if f.live {
                let score = (f.assured(), f.last_seen_ns, self.hand as u32);
                if best.is_none_or(|b| (score.0, score.1) < (b.0, b.1)) {
                    best = Some(score);
                }
            }
            looked += 1;
        }
        best.map(|b| b.2).unwrap_or(0)
    }

    /// Visits up to `budget` slots and removes flows whose timeout has passed, handing
    /// each to `ended` first. Called between bursts, so the cost is spread out.
    pub fn expire(
        &mut self,
        now_ns: u64,
        budget: usize,
        mut ended: impl FnMut(u32, &Flow, EndReason),
    ) {
        let n = self.slab.len();
        if n == 0 {
            return;
        }
        for _ in 0..budget.min(n) {
            self.hand += 1;
            if self.hand >= n {
                self.hand = 0;
            }
            let f = &self.slab[self.hand];
            if f.expires_ns <= now_ns && f.live {
                ended(self.hand as u32, f, EndReason::Timeout);
                self.remove(self.hand as u32);
                self.stats.expired += 1;
            }
        }
    }

    /// Removes every flow (at shutdown), handing each to `ended`.
    pub fn drain(&mut self, mut ended: impl FnMut(u32, &Flow, EndReason)) {
        for i in 0..self.slab.len() {
            if self.slab[i].live {
                ended(i as u32, &self.slab[i], EndReason::Shutdown);
                self.remove(i as u32);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u32) -> FlowKey {
        FlowKey::new(
            crate::packet::v4_bits(n.to_be_bytes()),
            1000,
            1,
            80,
            ip_proto::TCP,
            0,
        )
        .0
    }

    #[test]
    fn both_directions_share_one_key() {
        let (a, a_lo) = FlowKey::new(5, 40000, 9, 443, 6, 0);
        let (b, b_lo) = FlowKey::new(9, 443, 5, 40000, 6, 0);
        assert_eq!(a, b);
        assert_ne!(a_lo, b_lo);
        let (c, _) = FlowKey::new(5, 40000, 9, 443, 6, 7);
        assert_ne!(a, c, "VLAN is part of the key");
    }

    #[test]
    fn insert_find_remove_reuses_slots() {
        let mut t = FlowTable::new(4, OnFull::DropNew);
        let k = key(1);
        let h = t.hash(&k);
        let i = t.insert(k, h, 0, |_, _, _| {}).unwrap();
        assert_eq!(t.find(&k, h), Some(i));
        t.remove(i);
        assert_eq!(t.find(&k, h), None);
        assert!(t.is_empty());
        let j = t.insert(key(2), t.hash(&key(2)), 0, |_, _, _| {}).unwrap();
        assert_eq!(i, j, "freed slot reused");
    }

    #[test]
    fn full_table_drop_new_refuses_and_counts() {
        let mut t = FlowTable::new(2, OnFull::DropNew);
        for n in 0..2 {
            assert!(t.insert(key(n), t.hash(&key(n)), 0, |_, _, _| {}).is_some());
        }
        assert!(t.insert(key(9), t.hash(&key(9)), 0, |_, _, _| {}).is_none());
        assert_eq!(t.stats.refused, 1);
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn full_table_evicts_unassured_oldest_first() {
        let mut t = FlowTable::new(3, OnFull::EvictOldest);
        for n in 0..3 {
            let i = t
                .insert(key(n), t.hash(&key(n)), u64::from(n), |_, _, _| {})
                .unwrap();
            t.get_mut(i).last_seen_ns = u64::from(n);
            t.get_mut(i).tcp = TcpState::Established;
        }
        // Flow 2 is the newest but never saw a reply: it goes before older assured ones.
        let i2 = t.find(&key(2), t.hash(&key(2))).unwrap();
        t.get_mut(i2).tcp = TcpState::SynSent;
        let mut ended = Vec::new();
        let i7 = t
            .insert(key(7), t.hash(&key(7)), 10, |_, f, r| {
                ended.push((f.key, r))
            })
            .unwrap();
        assert_eq!(ended, vec![(key(2), EndReason::Forced)]);
        t.get_mut(i7).tcp = TcpState::Established;
        t.get_mut(i7).last_seen_ns = 10;
        assert_eq!(t.stats.evicted, 1);
        let mut ended = Vec::new();
        t.insert(key(8), t.hash(&key(8)), 11, |_, f, _| ended.push(f.key))
            .unwrap();
        assert_eq!(ended, vec![key(0)], "then the least recently seen");
    }

    #[test]
    fn expiry_removes_only_timed_out_flows() {
        let mut t = FlowTable::new(8, OnFull::DropNew);
        for n in 0..4 {
            let i = t.insert(key(n), t.hash(&key(n)), 0, |_, _, _| {}).unwrap();
            t.get_mut(i).expires_ns = u64::from(n) * 10;
        }
        let mut gone = 0;
        t.expire(15, 100, |_, _, r| {
            assert_eq!(r, EndReason::Timeout);
            gone += 1
        });
        assert_eq!(gone, 2);
        assert_eq!(t.len(), 2);
        assert_eq!(t.stats.expired, 2);
    }

    #[test]
    fn entry_is_small() {
        // Slab entry plus index share; the target is 256 bytes per flow.
        assert_eq!(std::mem::size_of::<Flow>(), 128, "two cache lines");
        let t = FlowTable::new(1 << 16, OnFull::DropNew);
        assert!(
            t.memory_bytes() / t.capacity() <= 256,
            "{}",
            t.memory_bytes() / t.capacity()
        );
    }
}

//! IP fragment reassembly for the IPS: the pieces of a datagram are joined (first data
//! wins on overlap, as in the stream reassembler, whose byte placement is reused) and the
//! whole datagram is handed back as one rebuilt frame, so it is inspected like any other
//! packet. Bounded in datagrams, pieces and bytes; incomplete datagrams time out.
//!
//! On the firewall path overlapping fragments are already dropped ([`crate::fragment`]);
//! this joins what the firewall let through.

use crate::fragment::{DatagramKey, fragment_data};
use crate::packet::PacketMeta;
use crate::stream::{HalfStream, Memcap, StreamLimits, StreamStats};
use crate::wire::checksum;
use hashbrown::HashMap;
use serde::Serialize;

const MAX_DATAGRAM: usize = 65535;

struct Pending {
    data: HalfStream,
    /// Link and IP header of the first fragment, once seen.
    head: Vec<u8>,
    v6: bool,
    total: Option<usize>,
    expires_ns: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DefragStats {
    pub fragments: u64,
    pub reassembled: u64,
    pub overlaps: u64,
    pub overlap_diff: u64,
    /// Pieces that could not be held (too many holes, memcap).
    pub refused: u64,
    pub table_full: u64,
    pub timed_out: u64,
}

pub struct Defragmenter {
    map: HashMap<DatagramKey, Pending, foldhash::fast::RandomState>,
    capacity: usize,
    timeout_ns: u64,
    next_sweep_ns: u64,
    mem: Memcap,
    pub stats: DefragStats,
}

impl Defragmenter {
    pub fn new(capacity: usize, timeout_secs: u32, memcap: usize) -> Self {
        Defragmenter {
            map: HashMap::with_capacity_and_hasher(capacity.min(4096), Default::default()),
            capacity,
            timeout_ns: u64::from(timeout_secs) * 1_000_000_000,
            next_sweep_ns: 0,
            mem: Memcap::new(memcap),
            stats: DefragStats::default(),
        }
    }

    /// Adds one fragment of `frame` (parsed as `m`). When it completes its datagram, the
    /// rebuilt frame is written to `out` and true returned.
    pub fn add(&mut self, frame: &[u8], m: &PacketMeta, now_ns: u64, out: &mut Vec<u8>) -> bool {
        let Some(frag) = m.fragment else {
            return false;
        };
        self.stats.fragments += 1;
        self.sweep(now_ns);
        let key = DatagramKey::of(m, frag);
        if !self.map.contains_key(&key) && self.map.len() >= self.capacity {
            self.stats.table_full += 1;
            return false;
        }
        let timeout = self.timeout_ns;
        let p = self.map.entry(key).or_insert_with(|| Pending {
            data: HalfStream::starting_at(0),
            head: Vec::new(),
            v6: !m.is_v4(),
            total: None,
            expires_ns: now_ns + timeout,
        });
        let (start, len) = fragment_data(m);
        let Some(piece) = frame.get(start..start + len) else {
            return false;
        };
        if frag.offset == 0 && p.head.is_empty() {
            p.head.extend_from_slice(&frame[..start]);
        }
        if !frag.more {
            p.total = Some(usize::from(frag.offset) + piece.len());
        }
        let mut st = StreamStats::default();
        let limits = StreamLimits {
            depth: MAX_DATAGRAM,
            skip_unheld: false,
        };
        p.data.add(
            u32::from(frag.offset),
            piece,
            limits,
            &mut self.mem,
            &mut st,
        );
        self.stats.overlaps += st.overlaps;
        self.stats.overlap_diff += st.overlap_diff;
        self.stats.refused += st.memcap_refused + st.beyond_window;
        let body = p.data.contiguous();
        if p.head.is_empty() || p.total != Some(body.len()) {
            return false;
        }
        rebuild(&p.head, m.l3_offset.into(), p.v6, m.proto, body, out);
        if let Some(mut p) = self.map.remove(&key) {
            p.data.release(&mut self.mem);
        }
        self.stats.reassembled += 1;
        true
    }

    fn sweep(&mut self, now_ns: u64) {
        if now_ns < self.next_sweep_ns {
            return;
        }
        self.next_sweep_ns = now_ns + 1_000_000_000;
        let mem = &mut self.mem;
        let before = self.map.len();
        self.map.retain(|_, p| {
            let keep = p.expires_ns > now_ns;
            if !keep {
                p.data.release(mem);
            }
            keep
        });
        self.stats.timed_out += (before - self.map.len()) as u64;
    }
}

/// A frame holding the whole datagram: the first fragment's link and IP headers with the
/// fragment fields cleared (IPv4) or the fragment header removed (IPv6).
fn rebuild(head: &[u8], l3: usize, v6: bool, proto: u8, body: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&head[..l3]);
    if v6 {
        let ip = &head[l3..l3 + 40];
        out.extend_from_slice(&ip[..4]);
        out.extend_from_slice(&(body.len().min(65535) as u16).to_be_bytes());
        out.push(proto);
        out.extend_from_slice(&ip[7..40]);
    } else {
        let ip = &head[l3..];
        let start = out.len();
        out.extend_from_slice(ip);
        let total = (ip.len() + body.len()).min(65535) as u16;
        out[start + 2..start + 4].copy_from_slice(&total.to_be_bytes());
        out[start + 6..start + 8].copy_from_slice(&[0, 0]);
        out[start + 10..start + 12].copy_from_slice(&[0, 0]);
        let c = !checksum::fold(checksum::sum(&out[start..]));
        out[start + 10..start + 12].copy_from_slice(&c.to_be_bytes());
    }
    out.extend_from_slice(body);
}

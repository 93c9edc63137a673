//! TCP stream reassembly for the IPS. Each direction places bytes by sequence number into
//! a bounded window, so a pattern split over segments, sent out of order or overlapped is
//! seen as the receiving host will see it.
//!
//! - Overlap policy, fixed: **first data wins**. A retransmission cannot rewrite bytes
//!   already accepted; one that tries with different bytes is counted (`overlap_diff`).
//! - Data is kept per *message*: the bytes one side sends until the other side answers
//!   (a request, a response, a ClientHello). Inspection starts over for each message.
//! - A message longer than the depth slides: the inspected front is dropped at once (so a
//!   long message costs one move per depth, not one per segment), the last [`LOOKBACK`]
//!   inspected bytes are kept so a pattern across the cut still matches.
//! - A hole never stalls a stream: in-order bytes that cannot be held (memcap, a segment
//!   larger than the window) are skipped rather than left as a gap, and bytes the
//!   receiver acknowledges that were never seen (capture loss) are skipped when the ACK
//!   passes them ([`HalfStream::acked`]); the message is then `truncated` and the next
//!   one starts clean. Either is counted (`gaps`).
//! - Out-of-order data is written straight into the window (no per-segment buffers);
//!   at most [`MAX_RANGES`] separate runs of bytes are held per direction.
//! - All window memory of one inspector is charged to a [`Memcap`]; past it new data is
//!   refused (counted) and the caller inspects the packet on its own.

use serde::Serialize;

/// Separate received runs of bytes (holes + 1) one direction may hold.
pub const MAX_RANGES: usize = 8;
/// Bytes kept before the new data when a long message slides.
pub const LOOKBACK: usize = 256;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamLimits {
    /// Most bytes of one message held at once.
    pub depth: usize,
    /// In-order bytes that cannot be held are skipped, so the stream goes on in order
    /// (the IPS); otherwise they are cut off and the window keeps its front (a budget).
    pub skip_unheld: bool,
}

/// The default depth: 1 MiB, Suricata's stream reassembly depth.
pub const DEFAULT_DEPTH: usize = 1 << 20;
/// The smallest depth: the lookback and the largest TCP payload always fit.
pub const MIN_DEPTH: usize = 64 * 1024 + 2 * LOOKBACK;

impl Default for StreamLimits {
    fn default() -> Self {
        StreamLimits {
            depth: DEFAULT_DEPTH,
            skip_unheld: true,
        }
    }
}

/// Window memory shared by every stream of one inspector.
#[derive(Clone, Copy, Debug, Default)]
pub struct Memcap {
    pub used: usize,
    pub cap: usize,
}

impl Memcap {
    pub fn new(cap: usize) -> Self {
        Memcap { used: 0, cap }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StreamStats {
    pub segments: u64,
    pub out_of_order: u64,
    /// Segments overlapping bytes already held.
    pub overlaps: u64,
    /// …whose overlapping bytes differed (an evasion attempt or corruption).
    pub overlap_diff: u64,
    /// Segments (or parts) wholly before the window: already consumed.
    pub old_data: u64,
    /// Bytes beyond the window, or needing more than [`MAX_RANGES`] runs: not held.
    pub beyond_window: u64,
    pub memcap_refused: u64,
    /// Messages that outgrew the depth and slid.
    pub slid: u64,
    /// Holes skipped: bytes acknowledged by the receiver but never seen, or in-order
    /// bytes that could not be held.
    pub gaps: u64,
}

/// One direction of a TCP connection.
#[derive(Clone, Debug, Default)]
pub struct HalfStream {
    /// Sequence number of `buf[0]`; unknown until a SYN or the first data segment.
    base: Option<u32>,
    buf: Vec<u8>,
    /// Received runs of `buf`, sorted, disjoint and not touching.
    ranges: [(u32, u32); MAX_RANGES],
    n_ranges: u8,
    /// `buf[..inspected]` has been inspected.
    pub inspected: usize,
    /// The message lost its front to sliding (its start is no longer at `buf[0]`).
    pub truncated: bool,
    pub fin: bool,
}

impl HalfStream {
    /// A window whose first byte has sequence number `seq`.
    pub fn starting_at(seq: u32) -> Self {
        HalfStream {
            base: Some(seq),
            ..Default::default()
        }
    }

    /// Starts over with an empty window at `seq`, keeping its memory for the next user.
    pub fn restart_at(&mut self, seq: u32) {
        self.buf.clear();
        self.base = Some(seq);
        self.n_ranges = 0;
        self.inspected = 0;
        self.truncated = false;
        self.fin = false;
    }

    /// Learns the initial sequence number from a SYN: data starts one past it.
    pub fn syn(&mut self, seq: u32) {
        if self.buf.is_empty() {
            self.base = Some(seq.wrapping_add(1));
            self.n_ranges = 0;
        }
    }

    /// In-order bytes of the current message.
    pub fn contiguous(&self) -> &[u8] {
        &self.buf[..self.contiguous_len()]
    }

    fn contiguous_len(&self) -> usize {
        match self.ranges[..usize::from(self.n_ranges)].first() {
            Some(&(0, end)) => end as usize,
            _ => 0,
        }
    }

    /// Bytes of window memory held.
    pub fn held(&self) -> usize {
        self.buf.capacity()
    }

    /// Adds a segment's payload. Returns true if in-order data grew.
    pub fn add(
        &mut self,
        seq: u32,
        data: &[u8],
        limits: StreamLimits,
        mem: &mut Memcap,
        stats: &mut StreamStats,
    ) -> bool {
        if data.is_empty() {
            return false;
        }
        stats.segments += 1;
        let base = *self.base.get_or_insert(seq);
        let rel = seq.wrapping_sub(base) as i32 as i64;
        let (mut start, mut data) = (rel, data);
        if start < 0 {
            let skip = (-start) as usize;
            if skip >= data.len() {
                stats.old_data += 1;
                return false;
            }
            data = &data[skip..];
            start = 0;
        }
        let mut start = start as usize;
        let before = self.contiguous_len();
        // The segment continues (or overlaps) the in-order bytes.
        let in_order = start <= before;
        if !in_order {
            stats.out_of_order += 1;
        }
        // Make room: slide the inspected in-order bytes out, keeping a lookback.
        let need = start + data.len();
        if need > limits.depth {
            let can = self.inspected.min(before).saturating_sub(LOOKBACK);
            if can > 0 {
                self.slide(can);
                start -= can;
                stats.slid += 1;
            }
        }
        let room = limits.depth.saturating_sub(start);
        if data.len() > room {
            stats.beyond_window += 1;
            if in_order && limits.skip_unheld {
                // Holding part of it would leave a hole no retransmission fills.
                self.skip_past(start + data.len(), stats);
                return false;
            }
            if room == 0 {
                return false;
            }
            data = &data[..room];
        }
        let end = start + data.len();
        if end > self.buf.len() {
            let grow = end.max(self.buf.capacity()) - self.buf.capacity();
            if mem.used + grow > mem.cap {
                stats.memcap_refused += 1;
                if in_order && limits.skip_unheld {
                    self.skip_past(end, stats);
                }
                return false;
            }
            let cap_before = self.buf.capacity();
            self.buf.resize(end, 0);
            mem.used += self.buf.capacity() - cap_before;
        }
        if !self.place(start as u32, end as u32, data, stats) {
            stats.beyond_window += 1;
            return false;
        }
        self.contiguous_len() > before
    }

    /// Writes the parts of `[start, end)` not yet held (first data wins) and records them.
    fn place(&mut self, start: u32, end: u32, data: &[u8], stats: &mut StreamStats) -> bool {
        let n = usize::from(self.n_ranges);
        // Would the new run need a slot we do not have?
        let touching = self.ranges[..n]
            .iter()
            .filter(|&&(s, e)| s <= end && start <= e)
            .count();
        if touching == 0 && n == MAX_RANGES {
            return false;
        }
        let mut cursor = start;
        let mut overlapped = false;
        let mut differs = false;
        let held_runs = self.ranges;
        for &(s, e) in &held_runs[..n] {
            if e <= cursor || s >= end {
                continue;
            }
            if s > cursor {
                self.copy(cursor, s, start, data);
            }
            let (os, oe) = (s.max(cursor), e.min(end));
            overlapped = true;
            let held = &self.buf[os as usize..oe as usize];
            let new = &data[(os - start) as usize..(oe - start) as usize];
            differs |= held != new;
            cursor = e;
        }
        if cursor < end {
            self.copy(cursor, end, start, data);
        }
        if overlapped {
            stats.overlaps += 1;
            stats.overlap_diff += u64::from(differs);
        }
        // Merge [start, end) into the run list.
        let mut merged = (start, end);
        let mut out = [(0u32, 0u32); MAX_RANGES];
        let mut k = 0;
        let mut placed = false;
        for &(s, e) in &self.ranges[..n] {
            if e < merged.0 {
                out[k] = (s, e);
                k += 1;
            } else if s > merged.1 {
                if !placed {
                    out[k] = merged;
                    k += 1;
                    placed = true;
                }
                out[k] = (s, e);
                k += 1;
            } else {
                merged = (merged.0.min(s), merged.1.max(e));
            }
        }
        if !placed {
            out[k] = merged;
            k += 1;
        }
        self.ranges = out;
        self.n_ranges = k as u8;
        true
    }

    fn copy(&mut self, from: u32, to: u32, start: u32, data: &[u8]) {
        self.buf[from as usize..to as usize]
            .copy_from_slice(&data[(from - start) as usize..(to - start) as usize]);
    }

    /// Skips the window past relative offset `end`: what it held is dropped (it was
    /// inspected, or cannot be), the message is truncated, and the next in-order byte
    /// starts the window again.
    fn skip_past(&mut self, end: usize, stats: &mut StreamStats) {
        self.slide(end);
        self.inspected = 0;
        stats.gaps += 1;
    }

    /// The receiver acknowledged up to `ack`. Bytes it acknowledges that are not in the
    /// window were lost on the way to us (or not held): the hole is skipped, to the next
    /// run held if the ACK reaches it, so the stream goes on in order.
    pub fn acked(&mut self, ack: u32, stats: &mut StreamStats) {
        let Some(base) = self.base else {
            return;
        };
        let rel = ack.wrapping_sub(base) as i32;
        let have = self.contiguous_len();
        // Far beyond anything plausible: a bogus or unrelated ACK.
        if rel <= have as i32 || rel > 1 << 26 {
            return;
        }
        let rel = rel as u32;
        let next_run = self.ranges[..usize::from(self.n_ranges)]
            .iter()
            .map(|&(s, _)| s)
            .find(|&s| s as usize > have && s <= rel);
        self.skip_past(next_run.unwrap_or(rel) as usize, stats);
    }

    /// Drops `n` bytes from the front of the window (`n` may pass its end).
    fn slide(&mut self, n: usize) {
        self.buf.drain(..n.min(self.buf.len()));
        let n32 = n as u32;
        let mut k = 0;
        for i in 0..usize::from(self.n_ranges) {
            let (s, e) = self.ranges[i];
            if e > n32 {
                self.ranges[k] = (s.saturating_sub(n32), e - n32);
                k += 1;
            }
        }
        self.n_ranges = k as u8;
        self.base = self.base.map(|b| b.wrapping_add(n32));
        self.inspected = self.inspected.saturating_sub(n);
        self.truncated = true;
    }

    /// Ends the current message (the other side has answered): its in-order bytes are
    /// consumed; out-of-order bytes beyond it stay.
    pub fn next_message(&mut self) {
        let done = self.contiguous_len();
        if done > 0 {
            self.slide(done);
        }
        self.inspected = 0;
        self.truncated = false;
    }

    /// Gives back window memory a long message left behind once a short one follows.
    pub fn trim(&mut self, mem: &mut Memcap) {
        const KEEP: usize = 64 * 1024;
        let cap = self.buf.capacity();
        if cap > KEEP && self.buf.len() <= KEEP / 2 {
            self.buf.shrink_to(KEEP / 2);
            mem.used = mem.used.saturating_sub(cap - self.buf.capacity());
        }
    }

    /// Drops the inspected bytes of a message whose app-layer fields are all inspected,
    /// but the lookback (a long download then holds little).
    pub fn discard_inspected(&mut self) {
        let can = self
            .inspected
            .min(self.contiguous_len())
            .saturating_sub(LOOKBACK);
        if can >= 64 * 1024 {
            self.slide(can);
        }
    }

    /// Returns the window memory to the memcap.
    pub fn release(&mut self, mem: &mut Memcap) {
        mem.used = mem.used.saturating_sub(self.buf.capacity());
        self.buf = Vec::new();
        self.n_ranges = 0;
        self.inspected = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (HalfStream, StreamLimits, Memcap, StreamStats) {
        let mut h = HalfStream::default();
        h.syn(999);
        (
            h,
            StreamLimits {
                depth: 4096,
                skip_unheld: true,
            },
            Memcap::new(1 << 20),
            StreamStats::default(),
        )
    }

    #[test]
    fn in_order_and_out_of_order_join() {
        let (mut h, l, mut m, mut s) = setup();
        assert!(h.add(1000, b"GET /ev", l, &mut m, &mut s));
        assert!(!h.add(1010, b"HTTP/1.1", l, &mut m, &mut s));
        assert_eq!(h.contiguous(), b"GET /ev");
        assert!(h.add(1007, b"il ", l, &mut m, &mut s));
        assert_eq!(h.contiguous(), b"GET /evil HTTP/1.1");
        assert_eq!(s.out_of_order, 1);
    }

    #[test]
    fn first_data_wins_and_rewrites_are_counted() {
        let (mut h, l, mut m, mut s) = setup();
        h.add(1000, b"abcdef", l, &mut m, &mut s);
        h.add(1002, b"XYZW12", l, &mut m, &mut s);
        assert_eq!(h.contiguous(), b"abcdef12");
        assert_eq!((s.overlaps, s.overlap_diff), (1, 1));
        h.add(1000, b"abc", l, &mut m, &mut s);
        assert_eq!((s.overlaps, s.overlap_diff), (2, 1));
    }

    #[test]
    fn old_data_and_messages() {
        let (mut h, l, mut m, mut s) = setup();
        h.add(1000, b"hello", l, &mut m, &mut s);
        h.next_message();
        assert!(h.contiguous().is_empty());
        assert!(!h.add(1000, b"hello", l, &mut m, &mut s));
        assert_eq!(s.old_data, 1);
        assert!(h.add(1003, b"loworld", l, &mut m, &mut s));
        assert_eq!(h.contiguous(), b"world");
    }

    #[test]
    fn long_message_slides_and_keeps_a_lookback() {
        let (mut h, l, mut m, mut s) = setup();
        let mut seq = 1000u32;
        for i in 0..20u8 {
            let seg = [b'a' + i; 1000];
            h.add(seq, &seg, l, &mut m, &mut s);
            h.inspected = h.contiguous().len();
            seq += 1000;
        }
        assert!(h.truncated);
        assert!(h.contiguous().len() <= 4096);
        assert_eq!(*h.contiguous().last().unwrap(), b'a' + 19);
        assert!(s.slid > 0);
    }

    #[test]
    fn too_many_holes_and_memcap_are_refused() {
        let (mut h, l, _, mut s) = setup();
        let mut m = Memcap::new(1 << 20);
        for i in 0..MAX_RANGES as u32 {
            assert!(!h.add(1010 + i * 10, b"x", l, &mut m, &mut s));
        }
        h.add(2000, b"y", l, &mut m, &mut s);
        assert_eq!(s.beyond_window, 1);
        let mut tight = Memcap::new(0);
        let mut h2 = HalfStream::default();
        assert!(!h2.add(5, b"data", l, &mut tight, &mut s));
        assert_eq!(s.memcap_refused, 1);
    }
}

//! What detection keeps between packets: the flowbits of a flow, and the rate counters
//! behind threshold and detection_filter.

use super::{Inspection, Rate, Xbit};
use crate::rule::options::{FlowbitsCmd, ThresholdKind, Track};
use std::collections::HashMap;

/// The flowbits set on one flow (a short list: flows set few bits).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlowBits(Vec<u16>);

impl FlowBits {
    pub fn is_set(&self, b: u16) -> bool {
        self.0.contains(&b)
    }
    pub(super) fn set(&mut self, b: u16) {
        if !self.is_set(b) && self.0.len() < MAX_BITS_PER_FLOW {
            self.0.push(b);
        }
    }
    pub(super) fn unset(&mut self, b: u16) {
        self.0.retain(|&x| x != b);
    }
    /// Forgets every bit (their numbers belong to the rule set that set them); keeps
    /// the memory.
    pub fn clear(&mut self) {
        self.0.clear();
    }
}

/// Most flowbits one flow holds; more are not recorded.
const MAX_BITS_PER_FLOW: usize = 64;

/// State kept per host: alert rates of threshold and detection_filter (per rule and
/// tracked address) and xbits (per bit and host or host pair), bounded.
pub struct RateTable {
    map: HashMap<(u32, u128), (u64, u32)>,
    /// xbits per (bit, tracked host or pair): when each expires.
    xbits: HashMap<(u16, u128), u64>,
    cap: usize,
    /// Times the table was full and started over.
    pub resets: u64,
}

/// The host (or order-independent host pair) an xbit or a rate is kept for.
pub(super) fn tracked(track: Track, p: &Inspection<'_>) -> u128 {
    match track {
        Track::Src => p.src,
        Track::Dst => p.dst,
        Track::Rule => 0,
        Track::Both => {
            let (lo, hi) = (p.src.min(p.dst), p.src.max(p.dst));
            lo ^ hi.rotate_left(64)
        }
    }
}

impl RateTable {
    /// Forgets every rate and xbit (keyed by rule and bit numbers of one rule set); keeps
    /// the memory. `resets` is kept.
    pub fn clear(&mut self) {
        self.map.clear();
        self.xbits.clear();
    }

    pub(super) fn xbit_is_set(&self, x: &Xbit, p: &Inspection<'_>, now_ns: u64) -> bool {
        self.xbits
            .get(&(x.id, tracked(x.track, p)))
            .is_some_and(|&until| until > now_ns)
    }

    pub(super) fn change_xbit(&mut self, x: &Xbit, p: &Inspection<'_>, now_ns: u64) {
        let key = (x.id, tracked(x.track, p));
        let set = match x.cmd {
            FlowbitsCmd::Set => true,
            FlowbitsCmd::Toggle => !self.xbit_is_set(x, p, now_ns),
            _ => false,
        };
        if !set {
            self.xbits.remove(&key);
            return;
        }
        if self.xbits.len() >= self.cap && !self.xbits.contains_key(&key) {
            self.xbits.retain(|_, &mut until| until > now_ns);
            if self.xbits.len() >= self.cap {
                self.xbits.clear();
                self.resets += 1;
            }
        }
        let until = match x.expire_secs {
            0 => u64::MAX,
            s => now_ns.saturating_add(u64::from(s) * 1_000_000_000),
        };
        self.xbits.insert(key, until);
    }

    pub fn new(cap: usize) -> Self {
        Self {
            map: HashMap::new(),
            xbits: HashMap::new(),
            cap,
            resets: 0,
        }
    }

    /// Whether this match of `rule` (index `id`) may alert now.
    pub(super) fn allows(&mut self, id: u32, rate: &Rate, p: &Inspection<'_>, now_ns: u64) -> bool {
        self.permits(id, rate, p.src, p.dst, now_ns)
    }

    /// Whether a match of rule `id` between `src` and `dst` may alert now under `rate`.
    pub fn permits(&mut self, id: u32, rate: &Rate, src: u128, dst: u128, now_ns: u64) -> bool {
        let key = match rate.track {
            Track::Src => src,
            Track::Dst => dst,
            Track::Rule => 0,
            Track::Both => src ^ dst.rotate_left(64),
        };
        if self.map.len() >= self.cap && !self.map.contains_key(&(id, key)) {
            self.map.clear();
            self.resets += 1;
        }
        let window = u64::from(rate.seconds) * 1_000_000_000;
        let e = self.map.entry((id, key)).or_insert((now_ns, 0));
        if now_ns.saturating_sub(e.0) >= window {
            *e = (now_ns, 0);
        }
        e.1 = e.1.saturating_add(1);
        let n = e.1;
        match rate.kind {
            // The first `count` in each window.
            Some(ThresholdKind::Limit) => n <= rate.count,
            // Every `count`-th in a window.
            Some(ThresholdKind::Threshold) => {
                if n >= rate.count {
                    e.1 = 0;
                    true
                } else {
                    false
                }
            }
            // Once per window, when `count` is reached.
            Some(ThresholdKind::Both) => n == rate.count,
            // detection_filter: every match after the first `count` in the window.
            None => n > rate.count,
        }
    }
}

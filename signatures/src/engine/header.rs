//! A rule's header: its address sets, and whether a packet's protocol, addresses and
//! ports fit it.

use super::{CompiledRule, Inspection};
use crate::rule::header::Proto;

/// An address spec as sorted, merged ranges: membership is a binary search, which matters
/// for the IP-reputation rules that list hundreds of addresses.
pub struct AddrSet {
    any: bool,
    include: Vec<(u128, u128)>,
    exclude: Vec<(u128, u128)>,
}

pub(super) fn ranges(nets: &[crate::rule::header::Net]) -> Vec<(u128, u128)> {
    let mut v: Vec<(u128, u128)> = nets
        .iter()
        .map(|n| {
            let host = if n.prefix >= 128 {
                0
            } else {
                u128::MAX >> n.prefix
            };
            let lo = n.addr & !host;
            (lo, lo | host)
        })
        .collect();
    v.sort_unstable();
    let mut out: Vec<(u128, u128)> = Vec::with_capacity(v.len());
    for (lo, hi) in v {
        match out.last_mut() {
            Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
            _ => out.push((lo, hi)),
        }
    }
    out
}

pub(super) fn in_ranges(r: &[(u128, u128)], a: u128) -> bool {
    let i = r.partition_point(|&(lo, _)| lo <= a);
    i > 0 && r[i - 1].1 >= a
}

impl AddrSet {
    pub(super) fn new(spec: &crate::rule::AddrSpec) -> Self {
        AddrSet {
            any: spec.any,
            include: ranges(&spec.include),
            exclude: ranges(&spec.exclude),
        }
    }
    #[inline]
    pub fn contains(&self, a: u128) -> bool {
        (self.any || in_ranges(&self.include, a)) && !in_ranges(&self.exclude, a)
    }
}

/// Does the header admit this packet (either way round for `<>`)?
pub(crate) fn header_admits(r: &CompiledRule, p: &Inspection<'_>) -> bool {
    let h = &r.header;
    let proto_ok = match h.proto {
        Proto::Ip => true,
        Proto::Tcp => p.proto == 6,
        Proto::Udp => p.proto == 17,
        Proto::Icmp => p.proto == 1,
        Proto::Icmpv6 => p.proto == 58,
        Proto::App(a) => {
            p.app_proto == Some(a)
                && if a == "dns" {
                    p.proto == 17 || p.proto == 6
                } else {
                    p.proto == 6
                }
        }
    };
    if !proto_ok {
        return false;
    }
    let fwd = h.src_ports.matches(p.src_port)
        && h.dst_ports.matches(p.dst_port)
        && r.src.contains(p.src)
        && r.dst.contains(p.dst);
    fwd || (h.bidirectional
        && h.src_ports.matches(p.dst_port)
        && h.dst_ports.matches(p.src_port)
        && r.src.contains(p.dst)
        && r.dst.contains(p.src))
}

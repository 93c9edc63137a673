//! What a `reject` sends back: a TCP RST for TCP, an ICMP unreachable for everything
//! else, addressed from the blocked destination to the sender, on the port it came in.

use crate::flow::Side;
use crate::packet::PacketMeta;
use crate::wire::emit::{self, Ip, L2, Transport};
use crate::wire::tcp::flags::{ACK, FIN, RST, SYN};
use crate::wire::{icmp, ip_proto};

/// Largest injected frame: a full Ethernet frame (the block page fits in one).
pub const INJECT_MAX: usize = 1536;
/// Bytes of the offending IPv6 packet quoted in an ICMPv6 error.
const V6_QUOTE: usize = 128;

/// Builds the reject answer to `frame` into `out`. `None` when no answer is due: never to
/// a RST, an ICMP error, or a broadcast or multicast sender or destination, nor to a
/// tunnelled packet (the answer would need the tunnel's headers; the packet is dropped).
pub fn build(frame: &[u8], m: &PacketMeta, out: &mut [u8]) -> Option<usize> {
    if m.tunnels > 0
        || m.dst_mac.is_multicast()
        || m.src_mac.is_multicast()
        || is_group_addr(m.dst, m.is_v4())
    {
        return None;
    }
    let (l2, ip) = reply_headers(m);
    if m.proto == ip_proto::TCP && m.has_l4() {
        if m.tcp_flags & RST != 0 {
            return None;
        }
        // RFC 9293 3.10.7.1: answer an ACK with seq = its ack; otherwise ack what it sent.
        let t = if m.tcp_flags & ACK != 0 {
            Transport::Tcp {
                src_port: m.dst_port,
                dst_port: m.src_port,
                seq: m.tcp_ack,
                ack: 0,
                flags: RST,
                window: 0,
                options: &[],
            }
        } else {
            let len = u32::from(m.payload_len)
                + u32::from(m.tcp_flags & SYN != 0)
                + u32::from(m.tcp_flags & FIN != 0);
            Transport::Tcp {
                src_port: m.dst_port,
                dst_port: m.src_port,
                seq: 0,
                ack: m.tcp_seq.wrapping_add(len),
                flags: RST | ACK,
                window: 0,
                options: &[],
            }
        };
        return emit::build(out, &l2, &ip, &t, &[]);
    }
    if m.has_l4() && (m.proto == ip_proto::ICMP || m.proto == ip_proto::ICMPV6) {
        let is_error = if m.is_v4() {
            icmp::is_error_v4(m.icmp_type)
        } else {
            icmp::is_error_v6(m.icmp_type)
        };
        if is_error {
            return None;
        }
    }
    let l3 = usize::from(m.l3_offset);
    let (icmp_type, code, quote) = if m.is_v4() {
        let hl = usize::from(frame.get(l3)? & 0x0f) * 4;
        let code = if m.proto == ip_proto::UDP { 3 } else { 13 }; // port unreachable / admin prohibited
        (
            icmp::v4::DEST_UNREACHABLE,
            code,
            frame.get(l3..(l3 + hl + 8).min(l3 + usize::from(m.ip_len)))?,
        )
    } else {
        let code = if m.proto == ip_proto::UDP { 4 } else { 1 };
        (
            icmp::v6::DEST_UNREACHABLE,
            code,
            frame.get(l3..(l3 + V6_QUOTE).min(l3 + usize::from(m.ip_len)))?,
        )
    };
    emit::build(
        out,
        &l2,
        &ip,
        &Transport::Icmp {
            icmp_type,
            code,
            rest: [0; 4],
        },
        quote,
    )
}

/// Ethernet and IP headers for an answer to `m`: from its destination back to its sender.
pub(crate) fn reply_headers(m: &PacketMeta) -> (L2, Ip) {
    (
        L2 {
            src: m.dst_mac,
            dst: m.src_mac,
            vlan_outer: m.vlan_outer,
            vlan_inner: m.vlan_inner,
        },
        Ip {
            src: m.dst,
            dst: m.src,
            v4: m.is_v4(),
            ttl: 64,
            ident: 0,
        },
    )
}

fn is_group_addr(a: u128, v4: bool) -> bool {
    if v4 {
        let a = a as u32;
        a >> 28 == 0xe || a == u32::MAX
    } else {
        a >> 120 == 0xff
    }
}

/// Frames to send that the gateway made itself, in fixed slots (no allocation per packet).
pub struct InjectQueue {
    frames: Vec<[u8; INJECT_MAX]>,
    lens: Vec<u16>,
    sides: Vec<Side>,
    n: usize,
    /// Answers not sent because the queue was full.
    pub dropped: u64,
}

impl InjectQueue {
    pub fn new(slots: usize) -> Self {
        Self {
            frames: vec![[0; INJECT_MAX]; slots],
            lens: vec![0; slots],
            sides: vec![Side::Lan; slots],
            n: 0,
            dropped: 0,
        }
    }

    /// Builds a frame into the next free slot, to be sent out of `side`.
    pub fn push_with(
        &mut self,
        side: Side,
        build: impl FnOnce(&mut [u8]) -> Option<usize>,
    ) -> bool {
        if self.n == self.frames.len() {
            self.dropped += 1;
            return false;
        }
        match build(&mut self.frames[self.n]) {
            Some(len) => {
                self.lens[self.n] = len as u16;
                self.sides[self.n] = side;
                self.n += 1;
                true
            }
            None => false,
        }
    }

    pub fn len(&self) -> usize {
        self.n
    }
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], Side)> + '_ {
        (0..self.n).map(|i| (&self.frames[i][..usize::from(self.lens[i])], self.sides[i]))
    }
    pub fn clear(&mut self) {
        self.n = 0;
    }
}

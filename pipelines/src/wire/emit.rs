//! Building frames: the inverse of the parser, used by the reject path (RST, ICMP
//! unreachable) and the traffic synthesizer. Writes into a caller's buffer, never allocates.

use super::{EtherType, MacAddr, checksum, ip_proto};

#[derive(Clone, Copy, Debug, Default)]
pub struct L2 {
    pub src: MacAddr,
    pub dst: MacAddr,
    /// Outer then inner VLAN ID; 0 means no tag at that level.
    pub vlan_outer: u16,
    pub vlan_inner: u16,
}

#[derive(Clone, Copy, Debug)]
pub struct Ip {
    /// Addresses in the crate's `u128` form (IPv4-mapped for IPv4).
    pub src: u128,
    pub dst: u128,
    pub v4: bool,
    pub ttl: u8,
    pub ident: u16,
}

#[derive(Clone, Copy, Debug)]
pub enum Transport<'a> {
    Tcp {
        src_port: u16,
        dst_port: u16,
        seq: u32,
        ack: u32,
        flags: u8,
        window: u16,
        options: &'a [u8],
    },
    Udp {
        src_port: u16,
        dst_port: u16,
    },
    /// ICMP or ICMPv6 (by the IP family); `rest` is the 4 bytes after the checksum.
    Icmp {
        icmp_type: u8,
        code: u8,
        rest: [u8; 4],
    },
}

/// Writes Ethernet (+ tags) / IP / transport / payload into `out` with correct lengths and
/// checksums. Returns the frame length, or `None` when it does not fit in `out` or in an
/// IP datagram.
pub fn build(out: &mut [u8], l2: &L2, ip: &Ip, t: &Transport<'_>, payload: &[u8]) -> Option<usize> {
    let mut off = 12;
    let tag = |out: &mut [u8], off: &mut usize, tpid: u16, vid: u16| -> Option<()> {
        out.get_mut(*off..*off + 4)?.copy_from_slice(&[
            (tpid >> 8) as u8,
            tpid as u8,
            (vid >> 8) as u8 & 0x0f,
            vid as u8,
        ]);
        *off += 4;
        Some(())
    };
    out.get_mut(0..6)?.copy_from_slice(&l2.dst.0);
    out.get_mut(6..12)?.copy_from_slice(&l2.src.0);
    if l2.vlan_outer != 0 && l2.vlan_inner != 0 {
        tag(out, &mut off, EtherType::QINQ, l2.vlan_outer)?;
        tag(out, &mut off, EtherType::VLAN, l2.vlan_inner)?;
    } else if l2.vlan_outer != 0 {
        tag(out, &mut off, EtherType::VLAN, l2.vlan_outer)?;
    }
    let ethertype = if ip.v4 {
        EtherType::IPV4
    } else {
        EtherType::IPV6
    };
    out.get_mut(off..off + 2)?
        .copy_from_slice(&ethertype.to_be_bytes());
    off += 2;

    let (proto, l4_hdr_len) = match t {
        Transport::Tcp { options, .. } => {
            if options.len() % 4 != 0 || options.len() > 40 {
                return None;
            }
            (ip_proto::TCP, 20 + options.len())
        }
        Transport::Udp { .. } => (ip_proto::UDP, 8),
        Transport::Icmp { .. } => (
            if ip.v4 {
                ip_proto::ICMP
            } else {
                ip_proto::ICMPV6
            },
            8,
        ),
    };
    let l4_len = l4_hdr_len + payload.len();
    let ip_hdr_len = if ip.v4 { 20 } else { 40 };
    if l4_len + ip_hdr_len > 65535 {
        return None;
    }
    let l3 = off;
    let l4 = l3 + ip_hdr_len;
    let end = l4 + l4_len;
    if end > out.len() {
        return None;
    }
    let (src4, dst4) = ((ip.src as u32).to_be_bytes(), (ip.dst as u32).to_be_bytes());
    let (src6, dst6) = (ip.src.to_be_bytes(), ip.dst.to_be_bytes());
    if ip.v4 {
        let h = &mut out[l3..l4];
        h.fill(0);
        h[0] = 0x45;
        h[2..4].copy_from_slice(&((ip_hdr_len + l4_len) as u16).to_be_bytes());
        h[4..6].copy_from_slice(&ip.ident.to_be_bytes());
        h[6] = 0x40; // don't fragment
        h[8] = ip.ttl;
        h[9] = proto;
        h[12..16].copy_from_slice(&src4);
        h[16..20].copy_from_slice(&dst4);
        let c = !checksum::fold(checksum::sum(h));
        h[10..12].copy_from_slice(&c.to_be_bytes());
    } else {
        let h = &mut out[l3..l4];
        h.fill(0);
        h[0] = 0x60;
        h[4..6].copy_from_slice(&(l4_len as u16).to_be_bytes());
        h[6] = proto;
        h[7] = ip.ttl;
        h[8..24].copy_from_slice(&src6);
        h[24..40].copy_from_slice(&dst6);
    }

    let seg = &mut out[l4..end];
    seg.fill(0);
    let csum_at = match *t {
        Transport::Tcp {
            src_port,
            dst_port,
            seq,
            ack,
            flags,
            window,
            options,
        } => {
            seg[0..2].copy_from_slice(&src_port.to_be_bytes());
            seg[2..4].copy_from_slice(&dst_port.to_be_bytes());
            seg[4..8].copy_from_slice(&seq.to_be_bytes());
            seg[8..12].copy_from_slice(&ack.to_be_bytes());
            seg[12] = ((l4_hdr_len / 4) as u8) << 4;
            seg[13] = flags;
            seg[14..16].copy_from_slice(&window.to_be_bytes());
            seg[20..20 + options.len()].copy_from_slice(options);
            16
        }
        Transport::Udp { src_port, dst_port } => {
            seg[0..2].copy_from_slice(&src_port.to_be_bytes());
            seg[2..4].copy_from_slice(&dst_port.to_be_bytes());
            seg[4..6].copy_from_slice(&(l4_len as u16).to_be_bytes());
            6
        }
        Transport::Icmp {
            icmp_type,
            code,
            rest,
        } => {
            seg[0] = icmp_type;
            seg[1] = code;
            seg[4..8].copy_from_slice(&rest);
            2
        }
    };
    seg[l4_hdr_len..].copy_from_slice(payload);
    let pseudo = match (ip.v4, proto) {
        (true, ip_proto::ICMP) => 0, // ICMPv4 has no pseudo-header
        (true, _) => checksum::pseudo_v4(src4, dst4, proto, l4_len),
        (false, _) => checksum::pseudo_v6(src6, dst6, proto, l4_len),
    };
    let mut c = checksum::finish(pseudo, seg);
    if c == 0 && proto == ip_proto::UDP {
        c = 0xffff; // RFC 768: zero means "no checksum"
    }
    seg[csum_at..csum_at + 2].copy_from_slice(&c.to_be_bytes());
    Some(end)
}

/// Verifies the transport checksum of a parsed IPv4/IPv6 packet (tests and the synthesizer's
/// self-check use it; the data path trusts NIC offload).
pub fn transport_checksum_ok(frame: &[u8], m: &crate::packet::PacketMeta) -> bool {
    if !m.has_l4() || m.fragment.is_some() {
        return true;
    }
    let l4 = usize::from(m.l4_offset);
    let ip_end = usize::from(m.l3_offset) + usize::from(m.ip_len);
    let Some(seg) = frame.get(l4..ip_end) else {
        return false;
    };
    let pseudo = if m.is_v4() {
        if m.proto == ip_proto::ICMP {
            0
        } else {
            checksum::pseudo_v4(
                (m.src as u32).to_be_bytes(),
                (m.dst as u32).to_be_bytes(),
                m.proto,
                seg.len(),
            )
        }
    } else {
        checksum::pseudo_v6(m.src.to_be_bytes(), m.dst.to_be_bytes(), m.proto, seg.len())
    };
    checksum::fold(pseudo + u32::from(checksum::fold(checksum::sum(seg)))) == 0xffff
}

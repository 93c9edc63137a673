//! L2–L4 parse of one frame into a small metadata record that later stages read.
//!
//! The record holds offsets into the frame rather than copies, so the frame stays the only
//! home of the bytes. IP addresses are kept as `u128`, IPv4 in its IPv4-mapped form
//! (`::ffff:a.b.c.d`), so that one code path serves both families.

use crate::error::ParseError;
use crate::wire::{
    self, ArpPacket, EtherType, EthernetFrame, IcmpHeader, Ipv4Packet, Ipv6Packet, MacAddr,
    TcpHeader, UdpHeader, ethernet, ip_proto,
    tunnel::{self, Inner, TunnelKind},
};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum L3 {
    /// Not IP and not ARP (LLDP, STP, …): bridged untouched.
    #[default]
    Other,
    Arp,
    Ipv4,
    Ipv6,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fragment {
    /// Offset of this fragment's data in the datagram, in bytes.
    pub offset: u16,
    pub more: bool,
    pub ident: u32,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PacketMeta {
    pub frame_len: u16,
    pub src_mac: MacAddr,
    pub dst_mac: MacAddr,
    /// Outer and inner VLAN IDs (0 when untagged).
    pub vlan_outer: u16,
    pub vlan_inner: u16,
    /// EtherType after any tags.
    pub ethertype: u16,
    pub l3: L3,
    pub l3_offset: u16,
    /// IP length from the header (header plus payload).
    pub ip_len: u16,
    pub src: u128,
    pub dst: u128,
    pub ttl: u8,
    /// Upper-layer protocol (after IPv6 extension headers).
    pub proto: u8,
    /// Offset of the transport header, 0 when absent (a later fragment).
    pub l4_offset: u16,
    pub payload_offset: u16,
    pub payload_len: u16,
    pub src_port: u16,
    pub dst_port: u16,
    pub tcp_flags: u8,
    pub tcp_seq: u32,
    pub tcp_ack: u32,
    pub icmp_type: u8,
    pub icmp_code: u8,
    pub icmp_ident: u16,
    pub fragment: Option<Fragment>,
    /// Tunnels looked through to reach this packet (0: none). The fields from `ethertype`
    /// on describe the innermost packet; the MACs and VLANs stay the outer frame's.
    pub tunnels: u8,
    /// The outermost tunnel, when `tunnels > 0`.
    pub tunnel: TunnelKind,
}

impl PacketMeta {
    pub fn is_ip(&self) -> bool {
        matches!(self.l3, L3::Ipv4 | L3::Ipv6)
    }
    pub fn is_v4(&self) -> bool {
        self.l3 == L3::Ipv4
    }
    /// True when the transport header was parsed (not a later fragment).
    pub fn has_l4(&self) -> bool {
        self.l4_offset != 0
    }
    /// Both VLAN IDs in one value for flow keys.
    pub fn vlan_key(&self) -> u32 {
        (u32::from(self.vlan_outer) << 12) | u32::from(self.vlan_inner)
    }
    pub fn src_ip(&self) -> IpAddr {
        to_ip(self.src, self.is_v4())
    }
    pub fn dst_ip(&self) -> IpAddr {
        to_ip(self.dst, self.is_v4())
    }
    /// The same packet as its answer would address it: ends swapped, for judging a flow
    /// from the side that opened it when its first packet seen is a reply.
    pub fn mirrored(&self) -> PacketMeta {
        PacketMeta {
            src_mac: self.dst_mac,
            dst_mac: self.src_mac,
            src: self.dst,
            dst: self.src,
            src_port: self.dst_port,
            dst_port: self.src_port,
            ..*self
        }
    }
}

pub const V4_MAPPED: u128 = 0xffff_0000_0000;

#[inline]
pub fn v4_bits(a: [u8; 4]) -> u128 {
    V4_MAPPED | u128::from(u32::from_be_bytes(a))
}

#[inline]
pub fn v6_bits(a: [u8; 16]) -> u128 {
    u128::from_be_bytes(a)
}

pub fn ip_bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => v4_bits(a.octets()),
        IpAddr::V6(a) => v6_bits(a.octets()),
    }
}

pub fn to_ip(bits: u128, v4: bool) -> IpAddr {
    if v4 {
        IpAddr::V4(Ipv4Addr::from(bits as u32))
    } else {
        IpAddr::V6(Ipv6Addr::from(bits))
    }
}

/// Tunnels looked through at most; a packet nested deeper is refused.
pub const MAX_TUNNELS: u8 = 2;

/// What the parser checks beyond structure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParseOptions {
    /// Refuse IPv4 headers whose checksum is wrong (a host would drop them). Captures
    /// taken on a host with checksum offload, or anonymised, have wrong ones throughout.
    pub ipv4_checksum: bool,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions {
            ipv4_checksum: true,
        }
    }
}

/// Parses one Ethernet frame. Never panics; a malformed frame is a [`ParseError`].
pub fn parse(frame: &[u8]) -> Result<PacketMeta, ParseError> {
    let mut m = PacketMeta::default();
    parse_into(frame, &mut m, ParseOptions::default()).map(|()| m)
}

/// [`parse`] into a record the caller owns (a burst's scratch slot), avoiding a copy.
/// Tunnels ([`MAX_TUNNELS`] deep) are looked through: the packet described is the
/// innermost one.
#[inline]
pub fn parse_into(frame: &[u8], m: &mut PacketMeta, opts: ParseOptions) -> Result<(), ParseError> {
    parse_frame(frame, m, opts)?;
    if m.fragment.is_none() && may_be_tunnel(m) {
        decapsulate(frame, m, opts)?;
    }
    Ok(())
}

/// The cheap test before [`tunnel_inner`]: a tunnel's protocol or port.
#[inline]
fn may_be_tunnel(m: &PacketMeta) -> bool {
    match m.proto {
        ip_proto::IPIP | ip_proto::IPV6_IN_IP | ip_proto::GRE => m.is_ip(),
        ip_proto::UDP => {
            matches!(
                m.dst_port,
                tunnel::VXLAN_PORT | tunnel::GTPU_PORT | tunnel::CAPWAP_DATA_PORT
            ) || matches!(m.src_port, tunnel::GTPU_PORT | tunnel::CAPWAP_DATA_PORT)
        }
        _ => false,
    }
}

fn parse_frame(frame: &[u8], m: &mut PacketMeta, opts: ParseOptions) -> Result<(), ParseError> {
    let eth = EthernetFrame::new_checked(frame)?;
    *m = PacketMeta {
        frame_len: frame.len().min(u16::MAX as usize) as u16,
        src_mac: eth.src(),
        dst_mac: eth.dst(),
        ..PacketMeta::default()
    };
    let mut ethertype = eth.ethertype();
    let mut off = ethernet::HEADER_LEN;
    let mut tags = 0;
    while matches!(
        ethertype,
        EtherType::VLAN | EtherType::QINQ | EtherType::QINQ_OLD
    ) {
        if tags == 2 {
            return Err(ParseError::TooManyVlanTags);
        }
        if frame.len() < off + ethernet::VLAN_TAG_LEN {
            return Err(ParseError::VlanTruncated);
        }
        let vid = wire::be16(frame, off) & 0x0fff;
        if tags == 0 {
            m.vlan_outer = vid;
        } else {
            m.vlan_inner = vid;
        }
        ethertype = wire::be16(frame, off + 2);
        off += ethernet::VLAN_TAG_LEN;
        tags += 1;
    }
    m.ethertype = ethertype;
    m.l3_offset = off as u16;
    let l3 = &frame[off..];
    match ethertype {
        EtherType::ARP => {
            ArpPacket::new_checked(l3)?;
            m.l3 = L3::Arp;
        }
        EtherType::IPV4 => parse_ipv4(m, l3, off, opts)?,
        EtherType::IPV6 => parse_ipv6(m, l3, off)?,
        _ => {}
    }
    Ok(())
}

/// The packet inside the one `m` describes, if it is a tunnel: which tunnel, where the
/// inner packet starts and what it is.
fn tunnel_inner(frame: &[u8], m: &PacketMeta) -> Option<(TunnelKind, usize, Inner)> {
    let at = usize::from(m.payload_offset);
    let payload = frame.get(at..at + usize::from(m.payload_len))?;
    let port = |p: u16| m.dst_port == p || m.src_port == p;
    match m.proto {
        ip_proto::IPIP | ip_proto::IPV6_IN_IP => Some((TunnelKind::IpInIp, at, Inner::Ip)),
        ip_proto::GRE => tunnel::gre(payload).map(|(n, i)| (TunnelKind::Gre, at + n, i)),
        ip_proto::UDP if m.dst_port == tunnel::VXLAN_PORT => {
            tunnel::vxlan(payload).map(|n| (TunnelKind::Vxlan, at + n, Inner::Ethernet))
        }
        ip_proto::UDP if port(tunnel::GTPU_PORT) => {
            tunnel::gtp_u(payload).map(|n| (TunnelKind::GtpU, at + n, Inner::Ip))
        }
        ip_proto::UDP if port(tunnel::CAPWAP_DATA_PORT) => {
            tunnel::capwap_data(payload).map(|(n, i)| (TunnelKind::Capwap, at + n, i))
        }
        _ => None,
    }
}

/// Replaces `m` by the packet its tunnels carry, layer by layer. A payload that does not
/// parse as the packet its tunnel header promised leaves the outer packet standing.
#[inline(never)]
fn decapsulate(frame: &[u8], m: &mut PacketMeta, opts: ParseOptions) -> Result<(), ParseError> {
    while let Some((kind, at, inner)) = tunnel_inner(frame, m) {
        if m.tunnels == MAX_TUNNELS {
            return Err(ParseError::TunnelTooDeep);
        }
        let outer = *m;
        *m = PacketMeta {
            frame_len: outer.frame_len,
            src_mac: outer.src_mac,
            dst_mac: outer.dst_mac,
            vlan_outer: outer.vlan_outer,
            vlan_inner: outer.vlan_inner,
            tunnels: outer.tunnels + 1,
            tunnel: if outer.tunnels == 0 {
                kind
            } else {
                outer.tunnel
            },
            ..PacketMeta::default()
        };
        let l3 = match inner {
            Inner::Ip => frame.get(at).map(|&b| {
                let ethertype = if b >> 4 == 6 {
                    EtherType::IPV6
                } else {
                    EtherType::IPV4
                };
                (at, ethertype)
            }),
            Inner::Ethernet => frame
                .get(at..at + ethernet::HEADER_LEN)
                .map(|h| (at + ethernet::HEADER_LEN, wire::be16(h, 12))),
            Inner::Wifi => frame
                .get(at..)
                .and_then(tunnel::wifi_data)
                .map(|(n, ethertype)| (at + n, ethertype)),
        };
        let parsed = match l3 {
            Some((off, EtherType::IPV4)) => {
                m.ethertype = EtherType::IPV4;
                m.l3_offset = off as u16;
                parse_ipv4(m, &frame[off..], off, opts)
            }
            Some((off, EtherType::IPV6)) => {
                m.ethertype = EtherType::IPV6;
                m.l3_offset = off as u16;
                parse_ipv6(m, &frame[off..], off)
            }
            _ => Err(ParseError::Ipv4Truncated),
        };
        if parsed.is_err() {
            *m = outer;
            return Ok(());
        }
        if m.fragment.is_some() {
            return Ok(());
        }
    }
    Ok(())
}

fn parse_ipv4(
    m: &mut PacketMeta,
    l3: &[u8],
    off: usize,
    opts: ParseOptions,
) -> Result<(), ParseError> {
    let ip = Ipv4Packet::new_checked(l3, opts.ipv4_checksum)?;
    m.l3 = L3::Ipv4;
    m.ip_len = ip.total_len() as u16;
    m.src = v4_bits(ip.src());
    m.dst = v4_bits(ip.dst());
    m.ttl = ip.ttl();
    m.proto = ip.protocol();
    let payload = ip.payload();
    if ip.is_fragment() {
        let offset = ip.frag_offset();
        if offset + payload.len() > 65535 {
            return Err(ParseError::Ipv4BadFragment);
        }
        m.fragment = Some(Fragment {
            offset: offset as u16,
            more: ip.more_fragments(),
            ident: u32::from(ip.ident()),
        });
    }
    parse_l4(m, payload, off + ip.header_len(), false)
}

fn parse_ipv6(m: &mut PacketMeta, l3: &[u8], off: usize) -> Result<(), ParseError> {
    let ip = Ipv6Packet::new_checked(l3)?;
    m.l3 = L3::Ipv6;
    m.ip_len = ip.total_len() as u16;
    m.src = v6_bits(ip.src());
    m.dst = v6_bits(ip.dst());
    m.ttl = ip.hop_limit();
    let chain = ip.walk_extensions()?;
    m.proto = chain.protocol;
    let payload = &ip.as_bytes()[chain.l4_offset..];
    if let Some(f) = chain.fragment {
        if (f.more && payload.len() % 8 != 0) || f.offset + payload.len() > 65535 {
            return Err(ParseError::Ipv6BadFragment);
        }
        m.fragment = Some(Fragment {
            offset: f.offset as u16,
            more: f.more,
            ident: f.ident,
        });
    }
    parse_l4(m, payload, off + chain.l4_offset, true)
}

fn parse_l4(m: &mut PacketMeta, l4: &[u8], off: usize, v6: bool) -> Result<(), ParseError> {
    let frag = m.fragment;
    if let Some(f) = frag
        && f.offset != 0
    {
        // A later fragment: no transport header. RFC 1858: a TCP fragment at offset 8
        // can only be meant to rewrite the flags of the first one.
        if m.proto == ip_proto::TCP && f.offset == 8 {
            return Err(ParseError::TinyFragment);
        }
        m.payload_offset = off as u16;
        m.payload_len = l4.len() as u16;
        return Ok(());
    }
    let tiny = |e: ParseError| {
        if frag.is_some() {
            ParseError::TinyFragment
        } else {
            e
        }
    };
    match m.proto {
        ip_proto::TCP => {
            let tcp = TcpHeader::new_checked(l4).map_err(tiny)?;
            m.src_port = tcp.src_port();
            m.dst_port = tcp.dst_port();
            m.tcp_flags = tcp.flags();
            m.tcp_seq = tcp.seq();
            m.tcp_ack = tcp.ack();
            m.payload_offset = (off + tcp.header_len()) as u16;
            m.payload_len = tcp.payload().len() as u16;
        }
        ip_proto::UDP => {
            let udp = if frag.is_some() {
                UdpHeader::first_fragment(l4)?
            } else {
                UdpHeader::new_checked(l4)?
            };
            m.src_port = udp.src_port();
            m.dst_port = udp.dst_port();
            m.payload_offset = (off + wire::udp::HEADER_LEN) as u16;
            m.payload_len = udp.payload().len() as u16;
        }
        ip_proto::ICMP | ip_proto::ICMPV6 => {
            if (m.proto == ip_proto::ICMPV6) != v6 {
                // ICMPv6 inside IPv4 or ICMPv4 inside IPv6: opaque, tracked by addresses only.
                m.payload_offset = off as u16;
                m.payload_len = l4.len() as u16;
                return Ok(());
            }
            let icmp = IcmpHeader::new_checked(l4, v6).map_err(tiny)?;
            m.icmp_type = icmp.icmp_type();
            m.icmp_code = icmp.code();
            m.icmp_ident = icmp.ident();
            m.payload_offset = (off + wire::icmp::HEADER_LEN) as u16;
            m.payload_len = icmp.body().len() as u16;
        }
        _ => {
            m.payload_offset = off as u16;
            m.payload_len = l4.len() as u16;
            return Ok(());
        }
    }
    m.l4_offset = off as u16;
    Ok(())
}

/// The flow an ICMP error reports on, read from the packet quoted in its body: the
/// quoted packet went the other way, so its source is our destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuotedPacket {
    pub src: u128,
    pub dst: u128,
    pub proto: u8,
    pub src_port: u16,
    pub dst_port: u16,
}

/// Leniently parses the header quoted in an ICMP error (it is truncated by design).
pub fn parse_quoted(body: &[u8], v6: bool) -> Option<QuotedPacket> {
    let (src, dst, proto, l4) = if v6 {
        if body.len() < wire::ipv6::HEADER_LEN || body[0] >> 4 != 6 {
            return None;
        }
        let src = v6_bits(body[8..24].try_into().ok()?);
        let dst = v6_bits(body[24..40].try_into().ok()?);
        (src, dst, body[6], &body[wire::ipv6::HEADER_LEN..])
    } else {
        if body.len() < wire::ipv4::MIN_HEADER_LEN || body[0] >> 4 != 4 {
            return None;
        }
        let ihl = usize::from(body[0] & 0x0f) * 4;
        if ihl < wire::ipv4::MIN_HEADER_LEN || body.len() < ihl {
            return None;
        }
        let src = v4_bits(body[12..16].try_into().ok()?);
        let dst = v4_bits(body[16..20].try_into().ok()?);
        (src, dst, body[9], &body[ihl..])
    };
    let (src_port, dst_port) = match proto {
        ip_proto::TCP | ip_proto::UDP if l4.len() >= 4 => (wire::be16(l4, 0), wire::be16(l4, 2)),
        ip_proto::ICMP | ip_proto::ICMPV6 if l4.len() >= 8 => {
            wire::icmp::query_ports(v6, l4[0], wire::be16(l4, 4))
        }
        _ => (0, 0),
    };
    Some(QuotedPacket {
        src,
        dst,
        proto,
        src_port,
        dst_port,
    })
}

/// A symmetric hash of a frame's IP addresses (and TCP/UDP ports when the IPv4 header has
/// no options), for spreading flows over workers: both directions of a flow give the same
/// value. Reads only what is in bounds and validates nothing; non-IP frames hash to 0.
#[inline]
pub fn shard_hash(frame: &[u8]) -> u32 {
    let mut off = 12;
    let mut ethertype = frame
        .get(12..14)
        .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
    while matches!(ethertype, EtherType::VLAN | EtherType::QINQ) && off < 20 {
        off += 4;
        ethertype = frame
            .get(off..off + 2)
            .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
    }
    let l3 = off + 2;
    let word = |o: usize| {
        frame
            .get(o..o + 4)
            .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    let (a, b, ports) = match ethertype {
        EtherType::IPV4 => {
            let ports = if frame.get(l3) == Some(&0x45)
                && matches!(frame.get(l3 + 9), Some(&6) | Some(&17))
            {
                word(l3 + 20)
            } else {
                0
            };
            (word(l3 + 12), word(l3 + 16), ports)
        }
        EtherType::IPV6 => {
            let ports = if matches!(frame.get(l3 + 6), Some(&6) | Some(&17)) {
                word(l3 + 40)
            } else {
                0
            };
            (
                word(l3 + 8) ^ word(l3 + 20),
                word(l3 + 24) ^ word(l3 + 36),
                ports,
            )
        }
        _ => return 0,
    };
    let p = (ports >> 16) ^ (ports & 0xffff);
    (a ^ b ^ p).wrapping_mul(0x9e37_79b1)
}

#[cfg(test)]
mod shard_tests {
    #[test]
    fn both_directions_land_on_the_same_shard() {
        use crate::synth::{self, Endpoint};
        use crate::wire::emit::Transport;
        for v6 in [false, true] {
            let a = Endpoint::client(3, v6, 40000);
            let b = Endpoint::server(9, v6, 443);
            let t = |x: &Endpoint, y: &Endpoint| Transport::Tcp {
                src_port: x.port,
                dst_port: y.port,
                seq: 0,
                ack: 0,
                flags: 0x10,
                window: 1,
                options: &[],
            };
            let ab = synth::frame(&a, &b, 7, &t(&a, &b), b"x");
            let ba = synth::frame(&b, &a, 7, &t(&b, &a), b"y");
            assert_eq!(super::shard_hash(&ab), super::shard_hash(&ba));
            let other = synth::frame(
                &a.with_port(40001),
                &b,
                7,
                &t(&a.with_port(40001), &b),
                b"x",
            );
            assert_ne!(super::shard_hash(&ab), super::shard_hash(&other));
        }
    }
}

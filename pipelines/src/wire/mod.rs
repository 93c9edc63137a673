//! Zero-copy views over packet bytes, one per header, in the manner of smoltcp's `wire`.
//!
//! Every view is made by `new_checked`, which proves that the accessors it offers stay in
//! bounds; after that, accessors index without further checks failing. Nothing here
//! allocates, and nothing panics on any input.

pub mod arp;
pub mod checksum;
pub mod emit;
pub mod ethernet;
pub mod icmp;
pub mod ipv4;
pub mod ipv6;
pub mod tcp;
pub mod tunnel;
pub mod udp;

pub use arp::ArpPacket;
pub use ethernet::{EtherType, EthernetFrame, MacAddr};
pub use icmp::IcmpHeader;
pub use ipv4::Ipv4Packet;
pub use ipv6::Ipv6Packet;
pub use tcp::TcpHeader;
pub use udp::UdpHeader;

/// Big-endian u16 at `off`. Callers have checked the bounds in `new_checked`.
#[inline(always)]
pub(crate) fn be16(b: &[u8], off: usize) -> u16 {
    u16::from_be_bytes([b[off], b[off + 1]])
}

/// Big-endian u32 at `off`. Callers have checked the bounds in `new_checked`.
#[inline(always)]
pub(crate) fn be32(b: &[u8], off: usize) -> u32 {
    u32::from_be_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

/// IP protocol numbers the gateway looks at.
pub mod ip_proto {
    pub const HOPOPT: u8 = 0;
    pub const ICMP: u8 = 1;
    /// IPv4 in IP (RFC 2003).
    pub const IPIP: u8 = 4;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    /// IPv6 in IP (6in4, RFC 4213; 4in6 and 6in6 use 4 and 41 from IPv6 too).
    pub const IPV6_IN_IP: u8 = 41;
    pub const IPV6_ROUTING: u8 = 43;
    pub const IPV6_FRAGMENT: u8 = 44;
    pub const GRE: u8 = 47;
    pub const ESP: u8 = 50;
    pub const AH: u8 = 51;
    pub const ICMPV6: u8 = 58;
    pub const IPV6_NONXT: u8 = 59;
    pub const IPV6_DSTOPTS: u8 = 60;
}

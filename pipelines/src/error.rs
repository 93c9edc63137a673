//! Why a frame could not be parsed. Every reason has its own counter.

use serde::Serialize;

macro_rules! parse_errors {
    ($($variant:ident => $name:literal, $doc:literal;)*) => {
        /// A malformed or truncated frame. The gateway counts each reason separately and
        /// drops the frame; nothing in the parser panics.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
        #[repr(u8)]
        pub enum ParseError {
            $(#[doc = $doc] #[error($doc)] $variant,)*
        }

        impl ParseError {
            pub const ALL: &'static [ParseError] = &[$(ParseError::$variant,)*];
            pub const COUNT: usize = Self::ALL.len();

            /// Stable snake_case name used in summaries, stats and metrics.
            pub fn name(self) -> &'static str {
                match self { $(ParseError::$variant => $name,)* }
            }
        }
    };
}

parse_errors! {
    EthernetTruncated => "ethernet_truncated", "frame shorter than an Ethernet header";
    VlanTruncated => "vlan_truncated", "802.1Q/QinQ tag cut short";
    TooManyVlanTags => "too_many_vlan_tags", "more than two VLAN tags";
    ArpTruncated => "arp_truncated", "ARP packet shorter than 28 bytes";
    ArpUnsupported => "arp_unsupported", "ARP for something other than Ethernet/IPv4";
    Ipv4Truncated => "ipv4_truncated", "IPv4 header or payload cut short";
    Ipv4BadVersion => "ipv4_bad_version", "IPv4 EtherType but version is not 4";
    Ipv4BadIhl => "ipv4_bad_ihl", "IPv4 header length below 20 bytes";
    Ipv4BadTotalLength => "ipv4_bad_total_length", "IPv4 total length smaller than the header";
    Ipv4BadOptionLength => "ipv4_bad_option_length", "IPv4 option with an impossible length";
    Ipv4BadChecksum => "ipv4_bad_checksum", "IPv4 header checksum wrong";
    Ipv4BadFragment => "ipv4_bad_fragment", "IPv4 fragment that ends past 65535 bytes";
    Ipv6Truncated => "ipv6_truncated", "IPv6 header cut short";
    Ipv6BadVersion => "ipv6_bad_version", "IPv6 EtherType but version is not 6";
    Ipv6BadPayloadLength => "ipv6_bad_payload_length", "IPv6 payload length longer than the frame";
    Ipv6ExtTruncated => "ipv6_ext_truncated", "IPv6 extension header cut short";
    Ipv6BadExtOrder => "ipv6_bad_ext_order", "IPv6 hop-by-hop not first, or two fragment headers";
    Ipv6TooManyExtHeaders => "ipv6_too_many_ext_headers", "IPv6 extension header chain too long";
    Ipv6BadFragment => "ipv6_bad_fragment", "IPv6 fragment not a multiple of 8 bytes or past 65535";
    TinyFragment => "tiny_fragment", "first fragment too short to hold the transport header (RFC 1858)";
    TcpTruncated => "tcp_truncated", "TCP header cut short";
    TcpBadDataOffset => "tcp_bad_data_offset", "TCP data offset below 5 words";
    TcpBadOptionLength => "tcp_bad_option_length", "TCP option with an impossible length";
    UdpTruncated => "udp_truncated", "UDP header cut short";
    UdpBadLength => "udp_bad_length", "UDP length field below 8 or past the packet";
    IcmpTruncated => "icmp_truncated", "ICMP header cut short";
    Icmpv6Truncated => "icmpv6_truncated", "ICMPv6 header cut short";
    TunnelTooDeep => "tunnel_too_deep", "tunnels nested deeper than the gateway looks through";
}

/// One counter per [`ParseError`] reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseErrorCounts(pub [u64; ParseError::COUNT]);

impl Default for ParseErrorCounts {
    fn default() -> Self {
        Self([0; ParseError::COUNT])
    }
}

impl ParseErrorCounts {
    #[inline]
    pub fn count(&mut self, e: ParseError) {
        self.0[e as usize] += 1;
    }
    pub fn get(&self, e: ParseError) -> u64 {
        self.0[e as usize]
    }
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }
    pub fn merge(&mut self, other: &Self) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            *a += b;
        }
    }
    /// Non-zero counters by name, in declaration order.
    pub fn nonzero(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        ParseError::ALL
            .iter()
            .map(|&e| (e.name(), self.get(e)))
            .filter(|&(_, n)| n > 0)
    }
}

impl Serialize for ParseErrorCounts {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.nonzero())
    }
}

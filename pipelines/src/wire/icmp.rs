//! ICMP (RFC 792) and ICMPv6 (RFC 4443) headers: the first 8 bytes are common to both.

use super::be16;
use crate::error::ParseError;

pub const HEADER_LEN: usize = 8;

pub mod v4 {
    pub const ECHO_REPLY: u8 = 0;
    pub const DEST_UNREACHABLE: u8 = 3;
    pub const ECHO_REQUEST: u8 = 8;
    pub const TIME_EXCEEDED: u8 = 11;
    pub const PARAMETER_PROBLEM: u8 = 12;
    pub const TIMESTAMP: u8 = 13;
    pub const TIMESTAMP_REPLY: u8 = 14;
}

pub mod v6 {
    pub const DEST_UNREACHABLE: u8 = 1;
    pub const PACKET_TOO_BIG: u8 = 2;
    pub const TIME_EXCEEDED: u8 = 3;
    pub const PARAMETER_PROBLEM: u8 = 4;
    pub const ECHO_REQUEST: u8 = 128;
    pub const ECHO_REPLY: u8 = 129;
    /// Multicast listener and neighbour discovery messages: link-local plumbing.
    pub const MLD_QUERY: u8 = 130;
    pub const MLD_DONE: u8 = 132;
    pub const ROUTER_SOLICIT: u8 = 133;
    pub const REDIRECT: u8 = 137;
    pub const MLDV2_REPORT: u8 = 143;
}

#[derive(Clone, Copy)]
pub struct IcmpHeader<'a> {
    buf: &'a [u8],
}

impl<'a> IcmpHeader<'a> {
    pub fn new_checked(buf: &'a [u8], v6: bool) -> Result<Self, ParseError> {
        if buf.len() < HEADER_LEN {
            return Err(if v6 {
                ParseError::Icmpv6Truncated
            } else {
                ParseError::IcmpTruncated
            });
        }
        Ok(Self { buf })
    }
    pub fn icmp_type(&self) -> u8 {
        self.buf[0]
    }
    pub fn code(&self) -> u8 {
        self.buf[1]
    }
    /// Echo identifier (meaningful for echo and timestamp messages).
    pub fn ident(&self) -> u16 {
        be16(self.buf, 4)
    }
    /// The bytes after the 8-byte header: for errors, the offending packet's start.
    pub fn body(&self) -> &'a [u8] {
        &self.buf[HEADER_LEN..]
    }
}

/// ICMPv4 messages that report on another packet (and carry its header).
pub fn is_error_v4(t: u8) -> bool {
    matches!(
        t,
        v4::DEST_UNREACHABLE | v4::TIME_EXCEEDED | v4::PARAMETER_PROBLEM | 4 | 5
    )
}

/// ICMPv6 error messages (types below 128).
pub fn is_error_v6(t: u8) -> bool {
    t < 128
}

/// Neighbour discovery and MLD: must cross the bridge like ARP does, or IPv6 stops working.
pub fn is_link_plumbing_v6(t: u8) -> bool {
    (v6::MLD_QUERY..=v6::REDIRECT).contains(&t) || t == v6::MLDV2_REPORT
}

/// Flow-key ports for an ICMP message: `(ident, 0)` for a query, `(0, ident)` for its
/// answer, `(0, 0)` for anything else.
pub fn query_ports(v6: bool, t: u8, ident: u16) -> (u16, u16) {
    let (request, reply) = if v6 {
        (t == v6::ECHO_REQUEST, t == v6::ECHO_REPLY)
    } else {
        (
            t == v4::ECHO_REQUEST || t == v4::TIMESTAMP,
            t == v4::ECHO_REPLY || t == v4::TIMESTAMP_REPLY,
        )
    };
    match (request, reply) {
        (true, _) => (ident, 0),
        (_, true) => (0, ident),
        _ => (0, 0),
    }
}

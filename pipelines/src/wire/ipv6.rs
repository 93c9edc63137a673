//! IPv6 headers (RFC 8200) and the walk over extension headers.

use super::{be16, be32, ip_proto};
use crate::error::ParseError;

pub const HEADER_LEN: usize = 40;
/// More extension headers than this is an evasion attempt, not a real packet.
pub const MAX_EXT_HEADERS: usize = 8;

#[derive(Clone, Copy)]
pub struct Ipv6Packet<'a> {
    /// Header plus payload, trimmed to the payload length (Ethernet padding dropped).
    buf: &'a [u8],
}

/// Where the extension header chain ended, and what it said about fragmentation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ipv6Chain {
    /// Upper-layer protocol (or ESP / no-next-header) after the chain.
    pub protocol: u8,
    /// Offset of the upper-layer header from the start of the IPv6 header.
    pub l4_offset: usize,
    pub fragment: Option<Ipv6Fragment>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ipv6Fragment {
    /// Offset in bytes.
    pub offset: usize,
    pub more: bool,
    pub ident: u32,
}

impl<'a> Ipv6Packet<'a> {
    pub fn new_checked(buf: &'a [u8]) -> Result<Self, ParseError> {
        if buf.len() < HEADER_LEN {
            return Err(ParseError::Ipv6Truncated);
        }
        if buf[0] >> 4 != 6 {
            return Err(ParseError::Ipv6BadVersion);
        }
        let total = HEADER_LEN + usize::from(be16(buf, 4));
        if total > buf.len() {
            // Jumbograms (payload length 0 + hop-by-hop option) never cross an office link.
            return Err(ParseError::Ipv6BadPayloadLength);
        }
        Ok(Self { buf: &buf[..total] })
    }
    pub fn traffic_class(&self) -> u8 {
        ((be16(self.buf, 0) >> 4) & 0xff) as u8
    }
    pub fn next_header(&self) -> u8 {
        self.buf[6]
    }
    pub fn hop_limit(&self) -> u8 {
        self.buf[7]
    }
    pub fn src(&self) -> [u8; 16] {
        self.buf[8..24].try_into().unwrap_or_default()
    }
    pub fn dst(&self) -> [u8; 16] {
        self.buf[24..40].try_into().unwrap_or_default()
    }
    pub fn total_len(&self) -> usize {
        self.buf.len()
    }
    pub fn as_bytes(&self) -> &'a [u8] {
        self.buf
    }

    /// Follows hop-by-hop, routing, destination options, fragment and AH headers to the
    /// upper layer, bounding the walk at [`MAX_EXT_HEADERS`].
    pub fn walk_extensions(&self) -> Result<Ipv6Chain, ParseError> {
        let b = self.buf;
        let mut next = self.next_header();
        let mut off = HEADER_LEN;
        let mut fragment = None;
        for _ in 0..=MAX_EXT_HEADERS {
            match next {
                ip_proto::HOPOPT | ip_proto::IPV6_ROUTING | ip_proto::IPV6_DSTOPTS => {
                    if off + 8 > b.len() {
                        return Err(ParseError::Ipv6ExtTruncated);
                    }
                    let len = (usize::from(b[off + 1]) + 1) * 8;
                    if off + len > b.len() {
                        return Err(ParseError::Ipv6ExtTruncated);
                    }
                    if next == ip_proto::HOPOPT && off != HEADER_LEN {
                        // RFC 8200 4.1: hop-by-hop only directly after the fixed header.
                        return Err(ParseError::Ipv6BadExtOrder);
                    }
                    next = b[off];
                    off += len;
                }
                ip_proto::IPV6_FRAGMENT => {
                    if off + 8 > b.len() {
                        return Err(ParseError::Ipv6ExtTruncated);
                    }
                    if fragment.is_some() {
                        return Err(ParseError::Ipv6BadExtOrder);
                    }
                    let field = be16(b, off + 2);
                    fragment = Some(Ipv6Fragment {
                        offset: usize::from(field & 0xfff8),
                        more: field & 1 != 0,
                        ident: be32(b, off + 4),
                    });
                    next = b[off];
                    off += 8;
                    if field & 0xfff8 != 0 {
                        // A later fragment: what follows is the middle of the datagram.
                        return Ok(Ipv6Chain {
                            protocol: next,
                            l4_offset: off,
                            fragment,
                        });
                    }
                }
                ip_proto::AH => {
                    if off + 8 > b.len() {
                        return Err(ParseError::Ipv6ExtTruncated);
                    }
                    let len = (usize::from(b[off + 1]) + 2) * 4;
                    if off + len > b.len() {
                        return Err(ParseError::Ipv6ExtTruncated);
                    }
                    next = b[off];
                    off += len;
                }
                _ => {
                    return Ok(Ipv6Chain {
                        protocol: next,
                        l4_offset: off,
                        fragment,
                    });
                }
            }
        }
        Err(ParseError::Ipv6TooManyExtHeaders)
    }
}

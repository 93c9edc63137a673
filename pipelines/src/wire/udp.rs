//! UDP headers (RFC 768).

use super::be16;
use crate::error::ParseError;

pub const HEADER_LEN: usize = 8;

#[derive(Clone, Copy)]
pub struct UdpHeader<'a> {
    /// Header plus payload, trimmed to the UDP length field.
    buf: &'a [u8],
}

impl<'a> UdpHeader<'a> {
    pub fn new_checked(buf: &'a [u8]) -> Result<Self, ParseError> {
        if buf.len() < HEADER_LEN {
            return Err(ParseError::UdpTruncated);
        }
        let len = usize::from(be16(buf, 4));
        if len < HEADER_LEN || len > buf.len() {
            return Err(ParseError::UdpBadLength);
        }
        Ok(Self { buf: &buf[..len] })
    }
    /// The header at the front of a datagram's first fragment: its length field covers
    /// the whole datagram, so the payload is what this fragment carries.
    pub fn first_fragment(buf: &'a [u8]) -> Result<Self, ParseError> {
        if buf.len() < HEADER_LEN {
            return Err(ParseError::TinyFragment);
        }
        Ok(Self { buf })
    }
    pub fn src_port(&self) -> u16 {
        be16(self.buf, 0)
    }
    pub fn dst_port(&self) -> u16 {
        be16(self.buf, 2)
    }
    pub fn payload(&self) -> &'a [u8] {
        &self.buf[HEADER_LEN..]
    }
}

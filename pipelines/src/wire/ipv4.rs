//! IPv4 headers (RFC 791), with options and fragments.

use super::{be16, checksum};
use crate::error::ParseError;

pub const MIN_HEADER_LEN: usize = 20;

#[derive(Clone, Copy)]
pub struct Ipv4Packet<'a> {
    /// The header and payload, trimmed to the header's total length (Ethernet padding dropped).
    buf: &'a [u8],
}

impl<'a> Ipv4Packet<'a> {
    /// Checks version, IHL, total length, option encoding and (`checksum`) the header
    /// checksum.
    pub fn new_checked(buf: &'a [u8], checksum: bool) -> Result<Self, ParseError> {
        if buf.len() < MIN_HEADER_LEN {
            return Err(ParseError::Ipv4Truncated);
        }
        if buf[0] >> 4 != 4 {
            return Err(ParseError::Ipv4BadVersion);
        }
        let ihl = usize::from(buf[0] & 0x0f) * 4;
        if ihl < MIN_HEADER_LEN {
            return Err(ParseError::Ipv4BadIhl);
        }
        if ihl > buf.len() {
            return Err(ParseError::Ipv4Truncated);
        }
        let total = usize::from(be16(buf, 2));
        if total < ihl {
            return Err(ParseError::Ipv4BadTotalLength);
        }
        if total > buf.len() {
            return Err(ParseError::Ipv4Truncated);
        }
        if ihl > MIN_HEADER_LEN {
            check_options(&buf[MIN_HEADER_LEN..ihl])?;
        }
        if checksum && checksum::fold(checksum::sum(&buf[..ihl])) != 0xffff {
            return Err(ParseError::Ipv4BadChecksum);
        }
        Ok(Self { buf: &buf[..total] })
    }
    pub fn header_len(&self) -> usize {
        usize::from(self.buf[0] & 0x0f) * 4
    }
    pub fn total_len(&self) -> usize {
        self.buf.len()
    }
    pub fn tos(&self) -> u8 {
        self.buf[1]
    }
    pub fn ident(&self) -> u16 {
        be16(self.buf, 4)
    }
    pub fn dont_fragment(&self) -> bool {
        self.buf[6] & 0x40 != 0
    }
    pub fn more_fragments(&self) -> bool {
        self.buf[6] & 0x20 != 0
    }
    /// Fragment offset in bytes.
    pub fn frag_offset(&self) -> usize {
        usize::from(be16(self.buf, 6) & 0x1fff) * 8
    }
    pub fn is_fragment(&self) -> bool {
        self.more_fragments() || self.frag_offset() != 0
    }
    pub fn ttl(&self) -> u8 {
        self.buf[8]
    }
    pub fn protocol(&self) -> u8 {
        self.buf[9]
    }
    pub fn src(&self) -> [u8; 4] {
        [self.buf[12], self.buf[13], self.buf[14], self.buf[15]]
    }
    pub fn dst(&self) -> [u8; 4] {
        [self.buf[16], self.buf[17], self.buf[18], self.buf[19]]
    }
    pub fn header(&self) -> &'a [u8] {
        &self.buf[..self.header_len()]
    }
    pub fn payload(&self) -> &'a [u8] {
        &self.buf[self.header_len()..]
    }
}

/// Walks the option list: EOL and NOP are one byte, every other option carries a length
/// of at least 2 that must fit in the header.
fn check_options(opts: &[u8]) -> Result<(), ParseError> {
    let mut i = 0;
    while i < opts.len() {
        match opts[i] {
            0 => return Ok(()),
            1 => i += 1,
            _ => {
                let len = *opts.get(i + 1).ok_or(ParseError::Ipv4BadOptionLength)? as usize;
                if len < 2 || i + len > opts.len() {
                    return Err(ParseError::Ipv4BadOptionLength);
                }
                i += len;
            }
        }
    }
    Ok(())
}

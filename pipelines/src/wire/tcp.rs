//! TCP headers (RFC 9293) and options.

use super::{be16, be32};
use crate::error::ParseError;

pub const MIN_HEADER_LEN: usize = 20;

pub mod flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
}

#[derive(Clone, Copy)]
pub struct TcpHeader<'a> {
    buf: &'a [u8],
}

impl<'a> TcpHeader<'a> {
    /// Checks the data offset and the option encoding.
    pub fn new_checked(buf: &'a [u8]) -> Result<Self, ParseError> {
        if buf.len() < MIN_HEADER_LEN {
            return Err(ParseError::TcpTruncated);
        }
        let doff = usize::from(buf[12] >> 4) * 4;
        if doff < MIN_HEADER_LEN {
            return Err(ParseError::TcpBadDataOffset);
        }
        if doff > buf.len() {
            return Err(ParseError::TcpTruncated);
        }
        if doff > MIN_HEADER_LEN {
            check_options(&buf[MIN_HEADER_LEN..doff])?;
        }
        Ok(Self { buf })
    }
    pub fn src_port(&self) -> u16 {
        be16(self.buf, 0)
    }
    pub fn dst_port(&self) -> u16 {
        be16(self.buf, 2)
    }
    pub fn seq(&self) -> u32 {
        be32(self.buf, 4)
    }
    pub fn ack(&self) -> u32 {
        be32(self.buf, 8)
    }
    pub fn header_len(&self) -> usize {
        usize::from(self.buf[12] >> 4) * 4
    }
    pub fn flags(&self) -> u8 {
        self.buf[13]
    }
    pub fn window(&self) -> u16 {
        be16(self.buf, 14)
    }
    pub fn payload(&self) -> &'a [u8] {
        &self.buf[self.header_len()..]
    }
}

/// Options: EOL and NOP are one byte; the rest carry a length >= 2 that fits, and the
/// well-known kinds must have their fixed length.
fn check_options(opts: &[u8]) -> Result<(), ParseError> {
    let mut i = 0;
    while i < opts.len() {
        match opts[i] {
            0 => return Ok(()),
            1 => i += 1,
            kind => {
                let len = *opts.get(i + 1).ok_or(ParseError::TcpBadOptionLength)? as usize;
                if len < 2 || i + len > opts.len() {
                    return Err(ParseError::TcpBadOptionLength);
                }
                let fixed_ok = match kind {
                    2 => len == 4,                                 // MSS
                    3 => len == 3,                                 // window scale
                    4 => len == 2,                                 // SACK permitted
                    5 => len >= 10 && (len - 2).is_multiple_of(8), // SACK blocks
                    8 => len == 10,                                // timestamps
                    _ => true,
                };
                if !fixed_ok {
                    return Err(ParseError::TcpBadOptionLength);
                }
                i += len;
            }
        }
    }
    Ok(())
}

//! ARP over Ethernet for IPv4 (RFC 826).

use super::be16;
use crate::error::ParseError;

pub const LEN: usize = 28;

#[derive(Clone, Copy)]
pub struct ArpPacket<'a> {
    buf: &'a [u8],
}

impl<'a> ArpPacket<'a> {
    /// Accepts only Ethernet/IPv4 ARP, the only kind a LAN carries in practice.
    pub fn new_checked(buf: &'a [u8]) -> Result<Self, ParseError> {
        if buf.len() < LEN {
            return Err(ParseError::ArpTruncated);
        }
        if be16(buf, 0) != 1 || be16(buf, 2) != 0x0800 || buf[4] != 6 || buf[5] != 4 {
            return Err(ParseError::ArpUnsupported);
        }
        Ok(Self { buf })
    }
    pub fn operation(&self) -> u16 {
        be16(self.buf, 6)
    }
    pub fn sender_mac(&self) -> [u8; 6] {
        self.buf[8..14].try_into().unwrap_or_default()
    }
    pub fn sender_ip(&self) -> [u8; 4] {
        self.buf[14..18].try_into().unwrap_or_default()
    }
    pub fn target_ip(&self) -> [u8; 4] {
        self.buf[24..28].try_into().unwrap_or_default()
    }
}

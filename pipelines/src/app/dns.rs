//! DNS messages (RFC 1035): the question and the address answers, with name compression
//! followed safely (bounded jumps, no loops).

use std::net::IpAddr;

pub const MAX_ANSWERS: usize = 16;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub id: u16,
    pub response: bool,
    pub rcode: u8,
    /// The first question's name, lower-cased, without the trailing dot.
    pub qname: String,
    pub qtype: u16,
    /// A and AAAA answers (up to [`MAX_ANSWERS`]), with their owner names.
    pub answers: Vec<(String, IpAddr)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    #[error("message shorter than a DNS header")]
    Short,
    #[error("no question")]
    NoQuestion,
    #[error("malformed: {0}")]
    Malformed(&'static str),
}

/// Cheap plausibility check for protocol recognition: one question, sane counts and opcode.
pub fn looks_like_dns(b: &[u8]) -> bool {
    b.len() >= 17
        && u16::from_be_bytes([b[4], b[5]]) == 1
        && (b[2] >> 3) & 0x0f <= 2
        && u16::from_be_bytes([b[6], b[7]]) <= 64
}

fn u16_at(b: &[u8], i: usize) -> Result<u16, DnsError> {
    b.get(i..i + 2)
        .map(|s| u16::from_be_bytes([s[0], s[1]]))
        .ok_or(DnsError::Malformed("cut short"))
}

/// Reads a (possibly compressed) name at `at`; returns it and the offset after it.
fn name(msg: &[u8], mut at: usize) -> Result<(String, usize), DnsError> {
    let mut out = String::new();
    let mut end = None;
    for _ in 0..64 {
        let len = *msg
            .get(at)
            .ok_or(DnsError::Malformed("name runs past the message"))? as usize;
        match len {
            0 => {
                return Ok((out, end.unwrap_or(at + 1)));
            }
            l if l & 0xc0 == 0xc0 => {
                let ptr = usize::from(u16_at(msg, at)? & 0x3fff);
                end.get_or_insert(at + 2);
                if ptr >= at {
                    return Err(DnsError::Malformed(
                        "compression pointer does not point back",
                    ));
                }
                at = ptr;
            }
            l if l <= 63 => {
                let label = msg
                    .get(at + 1..at + 1 + l)
                    .ok_or(DnsError::Malformed("label runs past the message"))?;
                if !out.is_empty() {
                    out.push('.');
                }
                if out.len() + l > 253 {
                    return Err(DnsError::Malformed("name longer than 253 bytes"));
                }
                for &c in label {
                    out.push(if c.is_ascii_graphic() {
                        c.to_ascii_lowercase() as char
                    } else {
                        '?'
                    });
                }
                at += 1 + l;
            }
            _ => return Err(DnsError::Malformed("reserved label type")),
        }
    }
    Err(DnsError::Malformed("too many labels or pointers"))
}

pub fn parse(msg: &[u8]) -> Result<Message, DnsError> {
    if msg.len() < 12 {
        return Err(DnsError::Short);
    }
    let id = u16_at(msg, 0)?;
    let flags = u16_at(msg, 2)?;
    let qd = u16_at(msg, 4)?;
    let an = u16_at(msg, 6)?;
    if qd == 0 {
        return Err(DnsError::NoQuestion);
    }
    let (qname, mut at) = name(msg, 12)?;
    let qtype = u16_at(msg, at)?;
    at += 4;
    for _ in 1..qd.min(16) {
        let (_, next) = name(msg, at)?;
        at = next + 4;
    }
    let mut answers = Vec::new();
    for _ in 0..an.min(64) {
        let (owner, next) = name(msg, at)?;
        let rtype = u16_at(msg, next)?;
        let rdlen = usize::from(u16_at(msg, next + 8)?);
        let rdata = msg
            .get(next + 10..next + 10 + rdlen)
            .ok_or(DnsError::Malformed("record data runs past the message"))?;
        let ip = match (rtype, rdlen) {
            (1, 4) => Some(IpAddr::from(
                <[u8; 4]>::try_from(rdata).map_err(|_| DnsError::Malformed("A length"))?,
            )),
            (28, 16) => Some(IpAddr::from(
                <[u8; 16]>::try_from(rdata).map_err(|_| DnsError::Malformed("AAAA length"))?,
            )),
            (1 | 28, _) => return Err(DnsError::Malformed("address record of the wrong length")),
            _ => None,
        };
        if let Some(ip) = ip
            && answers.len() < MAX_ANSWERS
        {
            answers.push((owner, ip));
        }
        at = next + 10 + rdlen;
    }
    Ok(Message {
        id,
        response: flags & 0x8000 != 0,
        rcode: (flags & 0x0f) as u8,
        qname,
        qtype,
        answers,
    })
}

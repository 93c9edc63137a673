//! DNS (RFC 1035) recognition. The one reader of DNS messages is `web::names`
//! (`dns_question`, `dns_answers`): allocation-free, used by the web filter and the
//! signature inspector alike.

/// Cheap plausibility check for protocol recognition: one question, sane counts and opcode.
pub fn looks_like_dns(b: &[u8]) -> bool {
    b.len() >= 17
        && u16::from_be_bytes([b[4], b[5]]) == 1
        && (b[2] >> 3) & 0x0f <= 2
        && u16::from_be_bytes([b[6], b[7]]) <= 64
}

//! The acknowledged event stream: what a sender (the gateway; later the box's uplink to
//! the desk) and a receiver (the control plane; later the desk) say so that a cut
//! connection, or either side killed, loses nothing and stores nothing twice.
//!
//! ```text
//! sender:   stream <source>\n               (after the `events` socket's request line)
//! receiver: resume <seq>\n                  the last number it committed for <source>
//! sender:   <seq> <event JSON>\n ...        in order, from resume + 1
//! receiver: ack <seq>\n ...                 whenever it has committed up to <seq>
//! ```
//!
//! The receiver commits an event and its source's number in one transaction and skips
//! numbers it already has; the sender keeps every event until it is acknowledged.

use crate::ProtoError;
use crate::wire::{excerpt, read_line};
use std::io::{BufRead, Write};

/// Longest source name.
pub const SOURCE_MAX: usize = 64;

/// A source name: letters, digits, `-`, `_`, `.` (it names the sender in the receiver's
/// store).
pub fn valid_source(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= SOURCE_MAX
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

pub fn encode_resume<W: Write>(w: &mut W, seq: u64) -> Result<(), ProtoError> {
    w.write_all(format!("resume {seq}\n").as_bytes())?;
    Ok(())
}

pub fn decode_resume<R: BufRead>(r: &mut R) -> Result<u64, ProtoError> {
    let line = read_line(r, crate::LINE_MAX)?;
    if line.is_empty() {
        return Err(ProtoError::NoAnswer);
    }
    line.trim()
        .strip_prefix("resume ")
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| ProtoError::UnexpectedAnswer(excerpt(&line)))
}

pub fn encode_ack<W: Write>(w: &mut W, seq: u64) -> Result<(), ProtoError> {
    w.write_all(format!("ack {seq}\n").as_bytes())?;
    Ok(())
}

/// The next acknowledgement; `None` when the receiver closed.
pub fn decode_ack<R: BufRead>(r: &mut R) -> Result<Option<u64>, ProtoError> {
    let line = read_line(r, crate::LINE_MAX)?;
    if line.is_empty() {
        return Ok(None);
    }
    line.trim()
        .strip_prefix("ack ")
        .and_then(|n| n.parse().ok())
        .map(Some)
        .ok_or_else(|| ProtoError::UnexpectedAnswer(excerpt(&line)))
}

/// One numbered event line: its number and its JSON (not checked here).
pub fn split_item(line: &str) -> Option<(u64, &str)> {
    let (n, json) = line.split_once(' ')?;
    Some((n.parse().ok()?, json))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stream_words_round_trip_and_hostile_ones_are_refused() {
        let mut w = Vec::new();
        encode_resume(&mut w, 41).unwrap();
        encode_ack(&mut w, 42).unwrap();
        let mut r = w.as_slice();
        assert_eq!(decode_resume(&mut r).unwrap(), 41);
        assert_eq!(decode_ack(&mut r).unwrap(), Some(42));
        assert_eq!(decode_ack(&mut r).unwrap(), None);
        assert!(decode_resume(&mut b"resume x\n".as_slice()).is_err());
        assert!(decode_ack(&mut b"nack 3\n".as_slice()).is_err());
        assert_eq!(split_item("7 {\"a\":1}"), Some((7, "{\"a\":1}")));
        assert_eq!(split_item("x {}"), None);
        assert!(valid_source("gw-1.office") && !valid_source("a b") && !valid_source(""));
    }
}

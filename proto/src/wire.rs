//! Bounded reads shared by the decoders.

use crate::ProtoError;
use std::io::{BufRead, Read};

/// One line of at most `max` bytes (newline included), without its line ending. An empty
/// string means the peer closed before sending anything.
pub(crate) fn read_line<R: BufRead>(r: &mut R, max: usize) -> Result<String, ProtoError> {
    let mut buf = Vec::new();
    r.by_ref().take(max as u64).read_until(b'\n', &mut buf)?;
    if buf.len() == max && buf.last() != Some(&b'\n') {
        return Err(ProtoError::LineTooLong(max));
    }
    while matches!(buf.last(), Some(b'\n' | b'\r')) {
        buf.pop();
    }
    String::from_utf8(buf).map_err(|_| ProtoError::LineNotUtf8)
}

/// Everything up to the end of the stream, refused past `max` bytes.
pub(crate) fn read_to_end<R: Read>(
    r: &mut R,
    max: usize,
    too_long: fn(usize) -> ProtoError,
) -> Result<Vec<u8>, ProtoError> {
    let mut buf = Vec::new();
    r.take(max as u64 + 1).read_to_end(&mut buf)?;
    if buf.len() > max {
        return Err(too_long(max));
    }
    Ok(buf)
}

/// Exactly `len` bytes of policy text (`len` already checked against the limit).
pub(crate) fn read_policy<R: Read>(r: &mut R, len: usize) -> Result<String, ProtoError> {
    let mut buf = Vec::with_capacity(len);
    r.take(len as u64).read_to_end(&mut buf)?;
    if buf.len() != len {
        return Err(ProtoError::PolicyTruncated {
            got: buf.len(),
            want: len,
        });
    }
    String::from_utf8(buf).map_err(|_| ProtoError::PolicyNotUtf8)
}

/// A reason on one line, so the answer stays one line.
pub(crate) fn one_line(reason: &str) -> String {
    reason.replace(['\n', '\r'], " ")
}

/// The start of an answer we did not expect, short enough for an error message.
pub(crate) fn excerpt(text: &str) -> String {
    text.chars().take(120).collect()
}

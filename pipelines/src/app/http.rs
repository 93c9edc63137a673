//! HTTP/1.x: request and response heads, URI normalisation, chunked transfer decoding and
//! gzip/deflate content decoding — each bounded.
//!
//! Requests are tokenised by httparse (strict: a request a server would refuse is not
//! served). Responses are read the way browsers read them, because what the browser
//! renders is what an attacker aims at: line ends may be LF, CRLF, "\n\r" or a lone CR,
//! header lines may be folded, junk lines are skipped, framing headers are read through
//! junk (`Content-Length: 68A`, `Transfer-Encoding: x, chunked`), chunk sizes may carry
//! extensions or junk, a body declared chunked that is not is read as it is, and content
//! codings are undone layer by layer, each by what the bytes are (gzip, zlib or raw
//! deflate), since browsers accept all three for either name.

use flate2::read::{DeflateDecoder, ZlibDecoder};
use std::io::Read;

/// Headers kept per message; a head with more is refused (`TooManyHeaders`).
pub const MAX_HEADERS: usize = 64;
/// Longest normalised URI kept.
pub const MAX_URI: usize = 8192;
/// A response head that has not ended within this many bytes is refused.
pub const MAX_HEAD: usize = 64 * 1024;
/// Content codings undone at most (Suricata's `response-body-decompress-layer-limit`
/// as its tests set it): more layers are left as they are, so nesting cannot multiply work.
pub const MAX_LAYERS: usize = 3;
/// Longest chunk-size line read; a longer one ends the body (an endless size line).
const MAX_CHUNK_LINE: usize = 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    #[error("more bytes needed")]
    Partial,
    #[error("more than {MAX_HEADERS} headers")]
    TooManyHeaders,
    #[error("malformed: {0}")]
    Malformed(&'static str),
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Encoding {
    #[default]
    Identity,
    Gzip,
    Deflate,
    /// Something we do not decode (br, zstd, compress…).
    Other,
}

/// The content codings of a message, in the order they were applied (the last is undone
/// first). At most [`MAX_LAYERS`] are kept; `identity` is not listed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Codings {
    list: [Encoding; MAX_LAYERS],
    n: u8,
    /// More codings were named than are kept.
    pub overflow: bool,
}

impl Codings {
    pub fn as_slice(&self) -> &[Encoding] {
        &self.list[..usize::from(self.n)]
    }
    /// The coding applied last (the one undone first), if any.
    pub fn outer(&self) -> Option<Encoding> {
        self.as_slice().last().copied()
    }
    fn push(&mut self, e: Encoding) {
        match self.list.get_mut(usize::from(self.n)) {
            Some(slot) => {
                *slot = e;
                self.n += 1;
            }
            None => self.overflow = true,
        }
    }
}

/// The parts of a head that inspection reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head<'a> {
    /// Header lines as sent, without the request/status line and the final blank line.
    pub header_block: &'a [u8],
    /// Bytes of the whole head, including the blank line; the body starts here.
    pub head_len: usize,
    /// The request or status line, without its line end.
    pub first_line: &'a [u8],
    /// Each header's name, in order (at most [`MAX_HEADERS`]).
    pub names: [&'a [u8]; MAX_HEADERS],
    pub n_names: usize,
    pub host: Option<&'a [u8]>,
    pub user_agent: Option<&'a [u8]>,
    pub cookie: Option<&'a [u8]>,
    pub content_type: Option<&'a [u8]>,
    pub referer: Option<&'a [u8]>,
    pub location: Option<&'a [u8]>,
    pub server: Option<&'a [u8]>,
    pub accept: Option<&'a [u8]>,
    pub accept_encoding: Option<&'a [u8]>,
    pub accept_language: Option<&'a [u8]>,
    pub connection: Option<&'a [u8]>,
    /// The Content-Length value as sent.
    pub content_length_raw: Option<&'a [u8]>,
    pub content_length: Option<u64>,
    pub chunked: bool,
    pub codings: Codings,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request<'a> {
    pub method: &'a str,
    /// The request target as sent (`http.uri.raw`).
    pub uri: &'a str,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub version: u8,
    pub head: Head<'a>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response<'a> {
    pub status: u16,
    pub version: u8,
    pub head: Head<'a>,
    /// No status line: an HTTP/0.9-style answer whose bytes are all body.
    pub simple: bool,
}

const METHODS: &[&[u8]] = &[
    b"GET ",
    b"POST ",
    b"HEAD ",
    b"PUT ",
    b"DELETE ",
    b"OPTIONS ",
    b"PATCH ",
    b"CONNECT ",
    b"TRACE ",
];

pub fn looks_like_http(b: &[u8]) -> bool {
    b.starts_with(b"HTTP/1.") || METHODS.iter().any(|m| b.starts_with(m))
}

fn map_err(e: httparse::Error) -> HttpError {
    match e {
        httparse::Error::TooManyHeaders => HttpError::TooManyHeaders,
        httparse::Error::HeaderName => HttpError::Malformed("header name"),
        httparse::Error::HeaderValue => HttpError::Malformed("header value"),
        httparse::Error::NewLine => HttpError::Malformed("line ending"),
        httparse::Error::Status => HttpError::Malformed("status code"),
        httparse::Error::Token => HttpError::Malformed("method or token"),
        httparse::Error::Version => HttpError::Malformed("version"),
    }
}

impl<'a> Head<'a> {
    fn empty(head_len: usize) -> Self {
        Head {
            header_block: &[],
            head_len,
            first_line: &[],
            names: [&[]; MAX_HEADERS],
            n_names: 0,
            host: None,
            user_agent: None,
            cookie: None,
            content_type: None,
            referer: None,
            location: None,
            server: None,
            accept: None,
            accept_encoding: None,
            accept_language: None,
            connection: None,
            content_length_raw: None,
            content_length: None,
            chunked: false,
            codings: Codings::default(),
        }
    }

    /// Takes one header in. `Err` only for a second, different Content-Length (the caller
    /// decides whether that refuses the message).
    fn field(&mut self, name: &'a [u8], value: &'a [u8]) -> Result<(), HttpError> {
        if self.n_names < MAX_HEADERS {
            self.names[self.n_names] = name;
            self.n_names += 1;
        }
        let mut lower = [0u8; 24];
        let key = field_key(name, &mut lower);
        let v = trim_junk(value);
        let slot = match key {
            b"host" => &mut self.host,
            b"user-agent" => &mut self.user_agent,
            b"cookie" => &mut self.cookie,
            b"content-type" => &mut self.content_type,
            b"referer" => &mut self.referer,
            b"location" => &mut self.location,
            b"server" => &mut self.server,
            b"accept" => &mut self.accept,
            b"accept-encoding" => &mut self.accept_encoding,
            b"accept-language" => &mut self.accept_language,
            b"connection" => &mut self.connection,
            b"content-length" => &mut self.content_length_raw,
            _ => &mut None,
        };
        if slot.is_none() {
            *slot = Some(v);
        }
        match key {
            // The first run of digits, as browsers read `68A`, `68,68` or `(68) 34`.
            b"content-length" => match (first_number(v), self.content_length) {
                (Some(n), None) => self.content_length = Some(n),
                (Some(n), Some(old)) if n != old => {
                    return Err(HttpError::Malformed("conflicting content-length headers"));
                }
                _ => {}
            },
            b"transfer-encoding" => {
                self.chunked |= tokens(v, |t| t.eq_ignore_ascii_case(b"chunked"));
            }
            b"content-encoding" => {
                let codings = &mut self.codings;
                tokens(v, |t| {
                    let e = coding_of(t);
                    if e != Encoding::Identity {
                        codings.push(e);
                    }
                    false
                });
            }
            _ => {}
        }
        Ok(())
    }
}

/// A header name as compared: NULs dropped, junk at both ends trimmed, lower case. Names
/// longer than the buffer are kept unmatched.
fn field_key<'b>(name: &[u8], lower: &'b mut [u8; 24]) -> &'b [u8] {
    let mut n = 0;
    for &c in trim_junk(name) {
        if c == 0 {
            continue;
        }
        let Some(slot) = lower.get_mut(n) else {
            return &[];
        };
        *slot = c.to_ascii_lowercase();
        n += 1;
    }
    &lower[..n]
}

/// Space, tab, line ends, NUL, vertical tab and form feed: what browsers skip around a
/// header's name and value.
fn is_junk(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n' | 0 | 0x0b | 0x0c)
}

fn trim_junk(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|&c| !is_junk(c)).unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|&c| !is_junk(c))
        .map_or(start, |e| e + 1);
    &b[start..end.max(start)]
}

fn first_number(v: &[u8]) -> Option<u64> {
    let start = v.iter().position(u8::is_ascii_digit)?;
    let mut n: u64 = 0;
    for &c in v[start..].iter().take_while(|c| c.is_ascii_digit()) {
        n = n.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    Some(n)
}

/// Calls `f` on each word of a header value (letters, digits, `-`, `_`; NULs inside a word
/// are dropped, as `gz\0ip` reads "gzip"); stops when `f` says true, and says whether it did.
fn tokens(v: &[u8], mut f: impl FnMut(&[u8]) -> bool) -> bool {
    let mut word = [0u8; 16];
    let (mut n, mut long) = (0usize, false);
    for &c in v.iter().chain(std::iter::once(&b',')) {
        if c.is_ascii_alphanumeric() || c == b'-' || c == b'_' {
            match word.get_mut(n) {
                Some(w) => *w = c,
                None => long = true,
            }
            n += 1;
        } else if c != 0 && n > 0 {
            // An over-long word is passed on cut, so it matches nothing we know.
            let hit = f(&word[..n.min(word.len())]) && !long;
            if hit {
                return true;
            }
            (n, long) = (0, false);
        }
    }
    false
}

fn coding_of(t: &[u8]) -> Encoding {
    let is = |s: &[u8]| t.eq_ignore_ascii_case(s);
    if is(b"gzip") || is(b"x-gzip") {
        Encoding::Gzip
    } else if is(b"deflate") || is(b"x-deflate") {
        Encoding::Deflate
    } else if is(b"identity") {
        Encoding::Identity
    } else {
        Encoding::Other
    }
}

fn head<'a>(
    buf: &'a [u8],
    headers: &[httparse::Header<'a>],
    head_len: usize,
) -> Result<Head<'a>, HttpError> {
    let first_line = buf
        .windows(2)
        .position(|w| w == b"\r\n")
        .map_or(0, |p| p + 2);
    let block_end = head_len.saturating_sub(2).max(first_line);
    let mut h = Head::empty(head_len);
    h.header_block = buf.get(first_line..block_end).unwrap_or(&[]);
    h.first_line = &buf[..first_line.saturating_sub(2)];
    for hd in headers {
        h.field(hd.name.as_bytes(), hd.value)?;
    }
    Ok(h)
}

pub fn parse_request(buf: &[u8]) -> Result<Request<'_>, HttpError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf).map_err(map_err)? {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial => return Err(HttpError::Partial),
    };
    let (method, uri, version) = (
        req.method.unwrap_or(""),
        req.path.unwrap_or(""),
        req.version.unwrap_or(1),
    );
    let head = head(buf, req.headers, len)?;
    Ok(Request {
        method,
        uri,
        version,
        head,
    })
}

/// One line of a response head from `at`: `(end, next)`, the end of its content and the
/// start of the next line; `None` while the line is incomplete. A line ends at LF (a CR
/// before it dropped), at "\n\r" taken as one reversed pair, or at a lone CR that is not
/// followed by a space or tab (a CR before a space is blank inside a value, as browsers
/// read `Transfer-Encoding: \r chunked`).
fn head_line(buf: &[u8], at: usize) -> Option<(usize, usize)> {
    let mut i = at;
    while let Some(&c) = buf.get(i) {
        match c {
            b'\n' => {
                let end = if i > at && buf[i - 1] == b'\r' {
                    i - 1
                } else {
                    i
                };
                let after = &buf[i + 1..];
                // "\n\r\r\n" before another line end is one deformed line end.
                if after.starts_with(b"\r\r\n") && matches!(after.get(3), Some(b'\n' | b'\r')) {
                    return Some((end, i + 4));
                }
                let pair = after.first() == Some(&b'\r') && after.get(1) != Some(&b'\n');
                return Some((end, i + 1 + usize::from(pair)));
            }
            b'\r' => match buf.get(i + 1) {
                None => return None,
                Some(b'\n' | b' ' | b'\t') => {}
                Some(_) => return Some((i, i + 1)),
            },
            _ => {}
        }
        i += 1;
    }
    None
}

/// What a line of a response head is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum HeadLine {
    /// Empty: the head ends.
    End,
    /// Only spaces and tabs: an empty fold, passed over, unless the next line is neither
    /// a header nor a fold — then it ends the head (as `Content-Length: 68\n \nbody`).
    Blank,
    /// Starts with white space and is not itself `Name: value`: continues the header before.
    Fold,
    /// A header line, or a line without a colon that a fold may complete.
    Field,
}

fn classify(line: &[u8]) -> HeadLine {
    if line.is_empty() {
        return HeadLine::End;
    }
    if line.iter().all(|&c| c == b' ' || c == b'\t') {
        return HeadLine::Blank;
    }
    if !matches!(line[0], b' ' | b'\t' | 0) {
        return HeadLine::Field;
    }
    // "\tTransfer-Encoding: chunked" is a header of its own to browsers.
    let rest = &line[line
        .iter()
        .position(|&c| !matches!(c, b' ' | b'\t' | 0))
        .unwrap_or(0)..];
    let name = rest
        .iter()
        .take_while(|&&c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        .count();
    let after = trim_junk(&rest[name..]);
    if name > 0 && after.first() == Some(&b':') {
        HeadLine::Field
    } else {
        HeadLine::Fold
    }
}

/// `Name: value` with a name of token characters (white space before the colon allowed).
fn looks_like_field(line: &[u8]) -> bool {
    let name = line
        .iter()
        .take_while(|&&c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        .count();
    name > 0 && trim_junk(&line[name..]).first() == Some(&b':')
}

/// Parses a response head leniently (see the module notes). Bytes that do not start with
/// `HTTP/` (after blank lines) are an HTTP/0.9-style answer: all body.
pub fn parse_response(buf: &[u8]) -> Result<Response<'_>, HttpError> {
    let Some(start) = buf.iter().position(|&c| !is_junk(c)) else {
        return Err(HttpError::Partial);
    };
    let s = &buf[start..];
    if !(s.len() >= 5 && s[..5].eq_ignore_ascii_case(b"HTTP/")) {
        if s.len() < 5 && s.eq_ignore_ascii_case(&b"HTTP/"[..s.len()]) {
            return Err(HttpError::Partial);
        }
        return Ok(Response {
            status: 0,
            version: 0,
            head: Head::empty(0),
            simple: true,
        });
    }
    let too_long = || {
        if buf.len() > MAX_HEAD {
            HttpError::Malformed("response head never ends")
        } else {
            HttpError::Partial
        }
    };
    let (status_end, mut at) = head_line(buf, start).ok_or_else(too_long)?;
    let first_line = &buf[start..status_end];
    let (version, status) = status_line(first_line);
    let mut h = Head::empty(0);
    h.first_line = first_line;
    let block_start = at;
    // The header being read: its lines so far, as one span (folds included).
    let mut cur: Option<(usize, usize)> = None;
    fn take<'a>(buf: &'a [u8], h: &mut Head<'a>, span: Option<(usize, usize)>) {
        if let Some((a, b)) = span {
            let line = &buf[a..b];
            if let Some(colon) = line.iter().position(|&c| c == b':') {
                // A second Content-Length is not believed; the first stands.
                let _ = h.field(trim_junk(&line[..colon]), &line[colon + 1..]);
            }
        }
    }
    loop {
        let (end, next) = head_line(buf, at).ok_or_else(too_long)?;
        let line = &buf[at..end];
        match classify(line) {
            HeadLine::End => {
                take(buf, &mut h, cur.take());
                h.header_block = &buf[block_start..at.max(block_start)];
                h.head_len = next;
                break;
            }
            HeadLine::Blank => {
                // The next line as far as it has come: a body without line ends is one too.
                let after = head_line(buf, next).map_or(buf.len(), |(e, _)| e);
                if after == next && buf.len() == next {
                    return Err(too_long());
                }
                let following = &buf[next..after];
                let ends = !following.is_empty()
                    && classify(following) == HeadLine::Field
                    && !looks_like_field(following);
                if ends {
                    take(buf, &mut h, cur.take());
                    h.header_block = &buf[block_start..at.max(block_start)];
                    h.head_len = next;
                    break;
                }
            }
            HeadLine::Fold if cur.is_some() => cur = cur.map(|(a, _)| (a, end)),
            HeadLine::Fold => {}
            HeadLine::Field => {
                take(buf, &mut h, cur.replace((at, end)));
            }
        }
        at = next;
    }
    Ok(Response {
        status,
        version,
        head: h,
        simple: false,
    })
}

/// The version (0 below 1.1, 1 from 1.1 up) and status code of a status line read loosely:
/// `http/1.1`, `HTTP/2.0`, `HTTP/1.1\t 200`, `HTTP/1.1 20 ok` all give what they say.
fn status_line(line: &[u8]) -> (u8, u16) {
    let v = &line[5.min(line.len())..];
    let major = first_number(&v[..v.len().min(1)]).unwrap_or(1);
    let minor = v
        .get(2..3)
        .and_then(first_number)
        .filter(|_| v.get(1) == Some(&b'.'))
        .unwrap_or(0);
    let version = u8::from(major >= 2 || (major == 1 && minor >= 1));
    let rest = v
        .iter()
        .position(|c| !c.is_ascii_digit() && *c != b'.')
        .map_or(&[][..], |p| &v[p..]);
    let status = rest.iter().position(u8::is_ascii_digit).map_or(0, |p| {
        rest[p..]
            .iter()
            .take(3)
            .take_while(|c| c.is_ascii_digit())
            .fold(0u16, |n, &c| n * 10 + u16::from(c - b'0'))
    });
    (version, status)
}

/// Normalises a request target the way IDS buffers expect: scheme and authority dropped,
/// percent-escapes decoded, `//` collapsed, `/./` removed, `/../` resolved (never above
/// the root), query kept as is. Output is bounded by [`MAX_URI`].
pub fn normalize_uri(raw: &str) -> Vec<u8> {
    let mut out = Vec::new();
    normalize_uri_into(raw, &mut out);
    out
}

/// [`normalize_uri`] into a buffer the caller keeps.
pub fn normalize_uri_into(raw: &str, out: &mut Vec<u8>) {
    out.clear();
    let target = raw
        .split_once("://")
        .map_or(raw, |(_, rest)| rest.find('/').map_or("/", |i| &rest[i..]));
    let (path, query) = match target.find('?') {
        Some(i) => (&target[..i], Some(&target[i..])),
        None => (target, None),
    };
    let decoded = percent_decode(path.as_bytes());
    let mut segs: Vec<&[u8]> = Vec::new();
    for seg in decoded.split(|&c| c == b'/') {
        match seg {
            b"" | b"." => {}
            b".." => {
                segs.pop();
            }
            s => segs.push(s),
        }
    }
    for s in &segs {
        out.push(b'/');
        out.extend_from_slice(s);
    }
    if out.is_empty() || (decoded.ends_with(b"/") && !segs.is_empty()) {
        out.push(b'/');
    }
    if let Some(q) = query {
        out.extend_from_slice(q.as_bytes());
    }
    out.truncate(MAX_URI);
}

fn percent_decode(b: &[u8]) -> Vec<u8> {
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let (Some(h), Some(l)) = (
                b.get(i + 1).and_then(|&c| hex(c)),
                b.get(i + 2).and_then(|&c| hex(c)),
            )
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(if b[i] == b'\\' { b'/' } else { b[i] });
        i += 1;
    }
    out
}

/// Where a chunked body's reading stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ChunkState {
    /// Before a chunk-size line (blank lines before it are skipped, as browsers do).
    Size,
    /// Inside a chunk's data, this many bytes left.
    Data(usize),
    /// After a chunk's data: its line end.
    DataEnd,
    /// After the last chunk: trailer lines until a blank one.
    Trailer,
}

/// Decodes a chunked body into `out`, at most `limit` bytes, read as browsers read it:
/// leading white space and junk after the hex digits of a size are ignored (`f,`, `fx`,
/// `\x0bf`), line ends may be LF alone. Returns the bytes of `body` consumed; `Partial`
/// when the last chunk has not arrived (what came is in `out`); `Malformed` when a size
/// line has no digits (the first one: the body is not chunked at all).
pub fn dechunk(body: &[u8], limit: usize, out: &mut Vec<u8>) -> Result<usize, HttpError> {
    let mut at = 0;
    let mut state = ChunkState::Size;
    loop {
        let rest = &body[at..];
        state = match state {
            ChunkState::Size => {
                let nl = rest.iter().take(MAX_CHUNK_LINE).position(|&c| c == b'\n');
                let Some(nl) = nl else {
                    // A size line that cannot be one fails now, not when a line end comes.
                    let lead = rest.iter().find(|&&c| !is_junk(c));
                    if lead.is_some_and(|c| !c.is_ascii_hexdigit()) {
                        return Err(HttpError::Malformed("chunk size"));
                    }
                    return Err(if rest.len() >= MAX_CHUNK_LINE {
                        HttpError::Malformed("endless chunk size line")
                    } else {
                        HttpError::Partial
                    });
                };
                at += nl + 1;
                let line = trim_junk(&rest[..nl]);
                if line.is_empty() {
                    continue;
                }
                let digits = line.iter().take_while(|c| c.is_ascii_hexdigit()).count();
                if digits == 0 || digits > 15 {
                    return Err(HttpError::Malformed("chunk size"));
                }
                let size = line[..digits].iter().fold(0usize, |n, &c| {
                    n << 4 | (c as char).to_digit(16).unwrap_or(0) as usize
                });
                if size == 0 {
                    ChunkState::Trailer
                } else {
                    ChunkState::Data(size)
                }
            }
            ChunkState::Data(left) => {
                let take = left.min(rest.len());
                let room = limit.saturating_sub(out.len());
                out.extend_from_slice(&rest[..take.min(room)]);
                at += take;
                if take < left {
                    return Err(HttpError::Partial);
                }
                ChunkState::DataEnd
            }
            ChunkState::DataEnd => match rest {
                [b'\r', b'\n', ..] => {
                    at += 2;
                    ChunkState::Size
                }
                [b'\n', ..] => {
                    at += 1;
                    ChunkState::Size
                }
                [] | [b'\r'] => return Err(HttpError::Partial),
                _ => return Err(HttpError::Malformed("chunk not followed by a line end")),
            },
            ChunkState::Trailer => {
                let Some(nl) = rest.iter().position(|&c| c == b'\n') else {
                    // The last chunk came; a missing trailer end is no loss.
                    return Ok(body.len());
                };
                at += nl + 1;
                if trim_junk(&rest[..nl]).is_empty() {
                    return Ok(at);
                }
                ChunkState::Trailer
            }
        };
    }
}

/// How decoding a body's content codings went.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DecodeOutcome {
    /// A layer could not be undone (its bytes are not what the coding says): the body is
    /// inspected as far as it was decoded.
    pub malformed: bool,
    /// Decoding stopped at the limit (a decompression bomb, or a long body).
    pub capped: bool,
}

/// Undoes `codings` on `body` into `out`, at most `limit` bytes per layer and
/// [`MAX_LAYERS`] layers, reusing `scratch`. Each layer is read by what its bytes are
/// (gzip, zlib or raw deflate), whatever it was called; a layer that does not decode is
/// left as it is (browsers show it so) and counted.
pub fn decode_into(
    codings: &Codings,
    body: &[u8],
    limit: usize,
    out: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
) -> DecodeOutcome {
    let mut outcome = DecodeOutcome {
        malformed: codings.overflow,
        capped: false,
    };
    let mut decoded = false;
    for &coding in codings.as_slice().iter().rev() {
        scratch.clear();
        let src: &[u8] = if decoded { out } else { body };
        // A coding we cannot undo is passed over: the layers under it may still be ours.
        if coding == Encoding::Other {
            outcome.malformed = true;
            continue;
        }
        if !inflate_any(src, limit, scratch) {
            outcome.malformed = true;
            break;
        }
        outcome.capped |= scratch.len() >= limit;
        std::mem::swap(out, scratch);
        decoded = true;
    }
    if !decoded {
        out.clear();
        out.extend_from_slice(&body[..body.len().min(limit)]);
    }
    outcome
}

/// Decodes a gzip or deflate body, at most `limit` bytes of output (a zip bomb stops
/// there). Identity bodies are copied; `Other` encodings are refused.
pub fn decode(encoding: Encoding, body: &[u8], limit: usize) -> Result<Vec<u8>, HttpError> {
    let mut codings = Codings::default();
    if encoding != Encoding::Identity {
        codings.push(encoding);
    }
    let mut out = Vec::new();
    let outcome = decode_into(&codings, body, limit, &mut out, &mut Vec::new());
    if outcome.malformed {
        Err(HttpError::Malformed("compressed body"))
    } else {
        Ok(out)
    }
}

/// One layer of compression, by what the bytes are: gzip (its header read leniently:
/// reserved flags and header checksums are ignored, as browsers do), zlib, or raw
/// deflate. True when something was decoded; a stream cut short or with a bad trailer
/// still yields what it decoded.
fn inflate_any(src: &[u8], limit: usize, dst: &mut Vec<u8>) -> bool {
    let cap = limit as u64;
    if src.starts_with(&[0x1f, 0x8b]) {
        return match gzip_header_len(src) {
            Some(n) => {
                let _ = DeflateDecoder::new(&src[n..]).take(cap).read_to_end(dst);
                !dst.is_empty()
            }
            None => false,
        };
    }
    if let [cmf, flg, ..] = *src
        && cmf & 0x0f == 8
        && (u16::from(cmf) << 8 | u16::from(flg)) % 31 == 0
    {
        let _ = ZlibDecoder::new(src).take(cap).read_to_end(dst);
        if !dst.is_empty() {
            return true;
        }
    }
    dst.clear();
    let _ = DeflateDecoder::new(src).take(cap).read_to_end(dst);
    !dst.is_empty()
}

/// Bytes of a gzip member header (RFC 1952), `None` if it is cut short.
fn gzip_header_len(b: &[u8]) -> Option<usize> {
    const FHCRC: u8 = 0x02;
    const FEXTRA: u8 = 0x04;
    const FNAME: u8 = 0x08;
    const FCOMMENT: u8 = 0x10;
    let flags = *b.get(3)?;
    let mut at = 10;
    if flags & FEXTRA != 0 {
        let xlen = u16::from_le_bytes([*b.get(at)?, *b.get(at + 1)?]);
        at += 2 + usize::from(xlen);
    }
    for f in [FNAME, FCOMMENT] {
        if flags & f != 0 {
            at += b.get(at..)?.iter().position(|&c| c == 0)? + 1;
        }
    }
    if flags & FHCRC != 0 {
        at += 2;
    }
    (at <= b.len()).then_some(at)
}

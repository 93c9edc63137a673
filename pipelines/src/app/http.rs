//! HTTP/1.x: request and response heads (httparse does the tokenising), URI normalisation,
//! chunked transfer decoding and gzip/deflate content decoding — each bounded.

use flate2::read::{DeflateDecoder, GzDecoder, ZlibDecoder};
use std::io::Read;

/// Headers kept per message; a head with more is refused (`TooManyHeaders`).
pub const MAX_HEADERS: usize = 64;
/// Longest normalised URI kept.
pub const MAX_URI: usize = 8192;

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
    pub encoding: Encoding,
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
    let mut h = Head {
        header_block: buf.get(first_line..block_end).unwrap_or(&[]),
        head_len,
        first_line: &buf[..first_line.saturating_sub(2)],
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
        encoding: Encoding::Identity,
    };
    for hd in headers {
        let v = hd.value;
        if h.n_names < MAX_HEADERS {
            h.names[h.n_names] = hd.name.as_bytes();
            h.n_names += 1;
        }
        let mut lower = [0u8; 20];
        let name = hd.name.as_bytes();
        let key = match lower.get_mut(..name.len()) {
            Some(k) => {
                k.copy_from_slice(name);
                k.make_ascii_lowercase();
                &k[..]
            }
            None => &[][..],
        };
        let slot = match key {
            b"host" => &mut h.host,
            b"user-agent" => &mut h.user_agent,
            b"cookie" => &mut h.cookie,
            b"content-type" => &mut h.content_type,
            b"referer" => &mut h.referer,
            b"location" => &mut h.location,
            b"server" => &mut h.server,
            b"accept" => &mut h.accept,
            b"accept-encoding" => &mut h.accept_encoding,
            b"accept-language" => &mut h.accept_language,
            b"connection" => &mut h.connection,
            b"content-length" => &mut h.content_length_raw,
            _ => &mut None,
        };
        if slot.is_none() {
            *slot = Some(v);
        }
        match key {
            b"content-length" => {
                let n = std::str::from_utf8(v)
                    .ok()
                    .and_then(|s| s.trim().parse::<u64>().ok())
                    .ok_or(HttpError::Malformed("content-length"))?;
                if h.content_length.is_some_and(|old| old != n) {
                    return Err(HttpError::Malformed("conflicting content-length headers")); // smuggling
                }
                h.content_length = Some(n);
            }
            b"transfer-encoding" => {
                h.chunked |= v.windows(7).any(|w| w.eq_ignore_ascii_case(b"chunked"))
            }
            b"content-encoding" => {
                let t = String::from_utf8_lossy(v).trim().to_ascii_lowercase();
                h.encoding = match t.as_str() {
                    "gzip" | "x-gzip" => Encoding::Gzip,
                    "deflate" => Encoding::Deflate,
                    "identity" | "" => Encoding::Identity,
                    _ => Encoding::Other,
                };
            }
            _ => {}
        }
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

pub fn parse_response(buf: &[u8]) -> Result<Response<'_>, HttpError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let len = match resp.parse(buf).map_err(map_err)? {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial => return Err(HttpError::Partial),
    };
    let (status, version) = (resp.code.unwrap_or(0), resp.version.unwrap_or(1));
    let head = head(buf, resp.headers, len)?;
    Ok(Response {
        status,
        version,
        head,
    })
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

/// Decodes a complete chunked body into `out`, at most `limit` bytes. Returns the bytes of
/// `body` consumed, or `Partial` when the last chunk has not arrived.
pub fn dechunk(body: &[u8], limit: usize, out: &mut Vec<u8>) -> Result<usize, HttpError> {
    let mut at = 0;
    loop {
        let (hdr, size) = match httparse::parse_chunk_size(&body[at..])
            .map_err(|_| HttpError::Malformed("chunk size"))?
        {
            httparse::Status::Complete(x) => x,
            httparse::Status::Partial => return Err(HttpError::Partial),
        };
        at += hdr;
        let size = usize::try_from(size).map_err(|_| HttpError::Malformed("chunk size"))?;
        if size == 0 {
            // Trailers (rare) end at the blank line.
            let rest = &body[at..];
            let end = rest
                .windows(2)
                .position(|w| w == b"\r\n")
                .ok_or(HttpError::Partial)?;
            return Ok(at + end + 2);
        }
        let data = body
            .get(at..at.saturating_add(size))
            .ok_or(HttpError::Partial)?;
        let room = limit.saturating_sub(out.len());
        out.extend_from_slice(&data[..data.len().min(room)]);
        at += size;
        match body.get(at..at + 2) {
            Some(b"\r\n") => at += 2,
            Some(_) => return Err(HttpError::Malformed("chunk not followed by CRLF")),
            None => return Err(HttpError::Partial),
        }
    }
}

/// Decodes a gzip or deflate body, at most `limit` bytes of output (a zip bomb stops
/// there). Identity bodies are copied; `Other` encodings are refused.
pub fn decode(encoding: Encoding, body: &[u8], limit: usize) -> Result<Vec<u8>, HttpError> {
    let mut out = Vec::new();
    let r = match encoding {
        Encoding::Identity => {
            out.extend_from_slice(&body[..body.len().min(limit)]);
            return Ok(out);
        }
        Encoding::Gzip => GzDecoder::new(body)
            .take(limit as u64)
            .read_to_end(&mut out),
        // "deflate" is zlib-wrapped by the RFC, raw deflate in practice: try both.
        Encoding::Deflate => match ZlibDecoder::new(body)
            .take(limit as u64)
            .read_to_end(&mut out)
        {
            Ok(n) => Ok(n),
            Err(_) => {
                out.clear();
                DeflateDecoder::new(body)
                    .take(limit as u64)
                    .read_to_end(&mut out)
            }
        },
        Encoding::Other => return Err(HttpError::Malformed("content encoding not supported")),
    };
    match r {
        Ok(_) => Ok(out),
        // A truncated body still yields what was decoded (the rest may come later).
        Err(_) if !out.is_empty() => Ok(out),
        Err(_) => Err(HttpError::Malformed("compressed body")),
    }
}

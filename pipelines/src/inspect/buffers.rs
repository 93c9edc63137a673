//! The buffers of one inspection: the packet window, and the app-layer fields of the
//! current message, one function per protocol (HTTP request, HTTP response, the TLS
//! server flight, the ClientHello, a DNS question). Fields borrow from the message where
//! they can; what must be computed (a normalised URI, a decoded body, a JA3 string) goes
//! into [`AppWork`], reused across packets.

use super::IdsStats;
use super::message::{MessagePhase, due, due_progressive};
use crate::app::{AppProto, http, tls};
use crate::web::names::{self, NAME_MAX};
use mimamori_signatures::rule::Buffer;
use std::io::Write;

/// A server's TLS handshake messages are read up to this size.
const HANDSHAKE_LIMIT: usize = 64 * 1024;
/// Room kept at the end of the window: a message within this of the depth may slide with
/// its next segment, so its body is inspected now.
const SLIDE_MARGIN: usize = 64 * 1024;
/// Most buffers one inspection fills.
const MAX_BUFFERS: usize = 40;

/// The buffers of one inspection, on the stack.
pub(super) struct Buffers<'a> {
    items: [(Buffer, &'a [u8]); MAX_BUFFERS],
    n: usize,
}

impl Default for Buffers<'_> {
    fn default() -> Self {
        Buffers {
            items: [(Buffer::Packet, &[]); MAX_BUFFERS],
            n: 0,
        }
    }
}

impl<'a> Buffers<'a> {
    pub(super) fn push(&mut self, b: Buffer, v: &'a [u8]) {
        if self.n < MAX_BUFFERS {
            self.items[self.n] = (b, v);
            self.n += 1;
        }
    }
    fn push_some(&mut self, fields: impl IntoIterator<Item = (Buffer, Option<&'a [u8]>)>) {
        for (b, v) in fields {
            if let Some(v) = v {
                self.push(b, v);
            }
        }
    }
    pub(super) fn as_slice(&self) -> &[(Buffer, &'a [u8])] {
        &self.items[..self.n]
    }
}

/// Buffers computed from a message rather than borrowed from it.
#[derive(Default)]
pub(super) struct AppWork {
    uri: Vec<u8>,
    stat: Vec<u8>,
    body: Vec<u8>,
    dechunked: Vec<u8>,
    /// The other half of a decoding layer's double buffer.
    scratch: Vec<u8>,
    /// `http.header_names`: "\r\nName\r\nName\r\n\r\n".
    names: Vec<u8>,
    /// A server flight's handshake messages, joined across records.
    handshake: Vec<u8>,
    leaf: tls::CertFields,
    /// JA3 / JA3S string and hash, and the extension types behind them.
    ja3: String,
    ja3_hash: [u8; 32],
    ext_types: Vec<u8>,
}

/// The message an inspection reads its app-layer fields from.
pub(super) struct Message<'a> {
    /// The whole message (TCP, when it is all in order) or the datagram; empty otherwise.
    pub data: &'a [u8],
    pub to_server: bool,
    /// The sender closed its side: a body without a length is complete.
    pub fin: bool,
    /// The reassembly window: a message that (nearly) fills it is inspected as it is.
    pub depth: usize,
    /// HTTP body bytes inspected (wire bytes of a request; decoded bytes of a response).
    pub request_body_limit: usize,
    pub response_body_limit: usize,
}

impl Message<'_> {
    /// The message may slide with its next segment: inspect what there is.
    fn window_full(&self) -> bool {
        self.data.len() + SLIDE_MARGIN > self.depth
    }
}

/// Pushes the app-layer buffers of `msg` that are due in `phase`, read as the flow's
/// protocol `proto`.
pub(super) fn app_layer<'a>(
    proto: AppProto,
    msg: &Message<'a>,
    phase: &mut MessagePhase,
    body_seen: &mut usize,
    work: &'a mut AppWork,
    bufs: &mut Buffers<'a>,
    stats: &mut IdsStats,
) {
    if msg.data.is_empty() || *phase == MessagePhase::Done {
        return;
    }
    match proto {
        AppProto::Http if msg.to_server => http_request(msg, phase, work, bufs, stats),
        AppProto::Http => http_response(msg, phase, body_seen, work, bufs, stats),
        AppProto::Tls if !msg.to_server => tls_server(msg.data, phase, work, bufs, stats),
        AppProto::Tls => client_hello(msg.data, phase, work, bufs, stats),
        _ => {}
    }
}

/// The body after `head` is all there (by Content-Length or the last chunk; a message with
/// neither has no body unless it is a response, which the caller handles).
fn body_complete(head: &http::Head<'_>, rest: &[u8]) -> bool {
    if head.chunked {
        rest.ends_with(b"0\r\n\r\n")
    } else {
        head.content_length.is_none_or(|cl| rest.len() as u64 >= cl)
    }
}

/// The buffers requests and responses share.
fn common_head<'a>(
    head: &http::Head<'a>,
    message: &'a [u8],
    names: &'a mut Vec<u8>,
    bufs: &mut Buffers<'a>,
) {
    names.clear();
    for n in &head.names[..head.n_names] {
        names.extend_from_slice(b"\r\n");
        names.extend_from_slice(n);
    }
    names.extend_from_slice(b"\r\n\r\n");
    bufs.push(Buffer::HttpHeaderNames, names);
    bufs.push(Buffer::HttpHeaderRaw, head.header_block);
    bufs.push(
        Buffer::HttpStart,
        &message[..head.head_len.min(message.len())],
    );
    bufs.push_some([
        (Buffer::HttpContentType, head.content_type),
        (Buffer::HttpContentLen, head.content_length_raw),
        (Buffer::HttpConnection, head.connection),
    ]);
}

fn http_request<'a>(
    msg: &Message<'a>,
    phase: &mut MessagePhase,
    work: &'a mut AppWork,
    bufs: &mut Buffers<'a>,
    stats: &mut IdsStats,
) {
    let data = msg.data;
    let Ok(req) = http::parse_request(data) else {
        return;
    };
    let rest = &data[req.head.head_len.min(data.len())..];
    let body_ready = msg.fin
        || body_complete(&req.head, rest)
        || rest.len() >= msg.request_body_limit
        || msg.window_full();
    let Some(due) = due(phase, body_ready) else {
        return;
    };
    stats.http_requests += u64::from(due.first);
    let AppWork { uri, names, .. } = work;
    http::normalize_uri_into(req.uri, uri);
    bufs.push(Buffer::HttpUri, uri);
    bufs.push(Buffer::HttpUriRaw, req.uri.as_bytes());
    bufs.push(Buffer::HttpMethod, req.method.as_bytes());
    bufs.push(Buffer::HttpHeader, req.head.header_block);
    if let Some(h) = req.head.host {
        let host = h.split(|&c| c == b':').next().unwrap_or(h);
        bufs.push(Buffer::HttpHost, host);
    }
    let head = &req.head;
    bufs.push_some([
        (Buffer::HttpUserAgent, head.user_agent),
        (Buffer::HttpCookie, head.cookie),
        (Buffer::HttpReferer, head.referer),
        (Buffer::HttpAccept, head.accept),
        (Buffer::HttpAcceptEnc, head.accept_encoding),
        (Buffer::HttpAcceptLang, head.accept_language),
        (Buffer::HttpRequestLine, Some(head.first_line)),
        (
            Buffer::HttpProtocol,
            head.first_line.rsplit(|&c| c == b' ').next(),
        ),
    ]);
    common_head(head, data, names, bufs);
    if due.body && !rest.is_empty() {
        bufs.push(
            Buffer::HttpRequestBody,
            &rest[..rest.len().min(msg.request_body_limit)],
        );
    }
}

fn http_response<'a>(
    msg: &Message<'a>,
    phase: &mut MessagePhase,
    body_seen: &mut usize,
    work: &'a mut AppWork,
    bufs: &mut Buffers<'a>,
    stats: &mut IdsStats,
) {
    let data = msg.data;
    let Ok(resp) = http::parse_response(data) else {
        return;
    };
    let head = &resp.head;
    let rest = &data[head.head_len.min(data.len())..];
    // A body without length or chunking ends with the connection.
    let limit = msg.response_body_limit;
    let complete = msg.fin
        || msg.window_full()
        || rest.len() >= limit
        || (body_complete(head, rest) && (head.chunked || head.content_length.is_some()));
    let Some(due) = due_progressive(phase, body_seen, rest.len(), complete) else {
        return;
    };
    stats.http_responses += u64::from(due.first);
    let AppWork {
        stat,
        body,
        dechunked,
        scratch,
        names,
        ..
    } = work;
    if !resp.simple {
        stat.clear();
        let _ = write!(stat, "{}", resp.status);
        bufs.push(Buffer::HttpStatCode, stat);
    }
    bufs.push(Buffer::HttpHeader, head.header_block);
    let line = head.first_line;
    let mut parts = line.splitn(3, |&c| c == b' ');
    bufs.push(Buffer::HttpResponseLine, line);
    bufs.push_some([
        (Buffer::HttpProtocol, parts.next()),
        (Buffer::HttpStatMsg, parts.nth(1)),
        (Buffer::HttpLocation, head.location),
        (Buffer::HttpServer, head.server),
    ]);
    common_head(head, data, names, bufs);
    // The body is decoded once, when it is complete (or the window is full).
    if due.body && !rest.is_empty() {
        dechunked.clear();
        // A body inspected as it grows is counted once, at its last inspection.
        let mut malformed = false;
        let wire: &[u8] = if head.chunked {
            // A chunked body cut at the limit (or the window) is decoded as far as it goes.
            match http::dechunk(rest, limit, dechunked) {
                Ok(_) | Err(http::HttpError::Partial) => dechunked,
                // Declared chunked but not: read as it is, as browsers do.
                Err(_) if dechunked.is_empty() => {
                    malformed = true;
                    rest
                }
                Err(_) => {
                    malformed = true;
                    dechunked
                }
            }
        } else {
            rest
        };
        // Decoded into buffers kept across messages: no allocation once they have grown.
        let outcome = http::decode_into(&head.codings, wire, limit, body, scratch);
        if complete {
            stats.http_body_malformed += u64::from(malformed || outcome.malformed);
            stats.http_decompress_capped += u64::from(outcome.capped);
        }
        bufs.push(Buffer::HttpResponseBody, body);
        bufs.push(Buffer::FileData, body);
    }
}

/// The ServerHello is inspected (JA3S) once it is in; the certificates (TLS 1.2 and
/// earlier) once they are all in.
fn tls_server<'a>(
    data: &'a [u8],
    phase: &mut MessagePhase,
    work: &'a mut AppWork,
    bufs: &mut Buffers<'a>,
    stats: &mut IdsStats,
) {
    let AppWork {
        handshake,
        leaf,
        ja3,
        ja3_hash,
        ext_types,
        ..
    } = work;
    tls::handshake_bytes(data, handshake, HANDSHAKE_LIMIT);
    let handshake: &'a [u8] = handshake;
    let certs = tls::server_certificates(handshake);
    let Some(sh) = tls::server_hello(handshake) else {
        return;
    };
    let Some(due) = due(phase, certs.is_some()) else {
        return;
    };
    tls::ja3s_string(&sh, ja3, ext_types);
    *ja3_hash = tls::fingerprint_hash(ja3);
    bufs.push(Buffer::Ja3sString, ja3.as_bytes());
    bufs.push(Buffer::Ja3sHash, ja3_hash);
    if let (true, Some((certs, n))) = (due.body, certs) {
        stats.tls_certificates += 1;
        for c in &certs[..n] {
            bufs.push(Buffer::TlsCerts, c);
        }
        // Allocates the three strings once per TLS connection.
        if let Some(f) = certs.first().and_then(|c| tls::cert_fields(c)) {
            *leaf = f;
            bufs.push(Buffer::TlsCertSubject, leaf.subject.as_bytes());
            bufs.push(Buffer::TlsCertIssuer, leaf.issuer.as_bytes());
            bufs.push(Buffer::TlsCertSerial, leaf.serial.as_bytes());
        }
    }
}

fn client_hello<'a>(
    data: &'a [u8],
    phase: &mut MessagePhase,
    work: &'a mut AppWork,
    bufs: &mut Buffers<'a>,
    stats: &mut IdsStats,
) {
    let Ok(hello) = tls::parse_client_hello(data) else {
        return;
    };
    if due(phase, true).is_none() {
        return;
    }
    stats.tls_hellos += 1;
    if let Some(sni) = hello.sni {
        bufs.push(Buffer::TlsSni, sni.as_bytes());
    }
    let AppWork {
        ja3,
        ja3_hash,
        ext_types,
        ..
    } = work;
    tls::ja3_string(&hello, ja3, ext_types);
    *ja3_hash = tls::fingerprint_hash(ja3);
    bufs.push(Buffer::Ja3String, ja3.as_bytes());
    bufs.push(Buffer::Ja3Hash, ja3_hash);
}

/// A DNS question's name (`dns.query`), from a UDP datagram to or from port 53.
pub(super) fn dns_query<'a>(
    payload: &[u8],
    qname: &'a mut [u8; NAME_MAX],
    bufs: &mut Buffers<'a>,
    stats: &mut IdsStats,
) {
    if let Some(q) = names::dns_question(payload, qname) {
        stats.dns_messages += 1;
        bufs.push(Buffer::DnsQuery, &qname[..q.len]);
    }
}

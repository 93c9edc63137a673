//! TLS: the ClientHello (RFC 8446 4.1.2: version, SNI per RFC 6066 3, ALPN per RFC 7301)
//! and the server's certificates (RFC 5246 7.4.2) with the leaf's subject, issuer, serial.

/// Longest SNI kept (DNS names are at most 253 bytes).
pub const MAX_NAME: usize = 253;
/// ALPN protocols kept.
pub const MAX_ALPN: usize = 8;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientHello<'a> {
    /// `legacy_version` of the hello (0x0303 for TLS 1.2 and 1.3).
    pub version: u16,
    pub sni: Option<&'a str>,
    alpn: [&'a [u8]; MAX_ALPN],
    alpn_len: u8,
    /// The client offered TLS 1.3 in `supported_versions`.
    pub offers_tls13: bool,
    /// The hello carries `encrypted_client_hello` (real or GREASE): its SNI is the outer,
    /// public name.
    pub ech: bool,
    /// Raw lists for the JA3 fingerprint: cipher suites (u16s), the extensions block,
    /// supported groups (u16s) and EC point formats (u8s).
    pub suites: &'a [u8],
    pub extensions: &'a [u8],
    pub groups: &'a [u8],
    pub point_formats: &'a [u8],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TlsError {
    #[error("not a TLS handshake record")]
    NotHandshake,
    #[error("the first handshake message is not a ClientHello")]
    NotClientHello,
    #[error("more bytes needed")]
    Partial,
    #[error("malformed ClientHello: {0}")]
    Malformed(&'static str),
}

impl<'a> ClientHello<'a> {
    /// The offered ALPN protocols (the first [`MAX_ALPN`]).
    pub fn alpn(&self) -> &[&'a [u8]] {
        &self.alpn[..usize::from(self.alpn_len)]
    }
}

pub fn looks_like_tls(b: &[u8]) -> bool {
    b.len() >= 3 && b[0] == 22 && b[1] == 3 && b[2] <= 4
}

struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], TlsError> {
        if self.b.len() < n {
            return Err(TlsError::Malformed("length runs past its container"));
        }
        let (h, t) = self.b.split_at(n);
        self.b = t;
        Ok(h)
    }
    fn u8(&mut self) -> Result<usize, TlsError> {
        Ok(usize::from(self.take(1)?[0]))
    }
    fn u16(&mut self) -> Result<usize, TlsError> {
        let s = self.take(2)?;
        Ok(usize::from(u16::from_be_bytes([s[0], s[1]])))
    }
}

/// Parses the ClientHello at the start of a client's first flight. Only the first record
/// is read; a hello split over several records yields `Partial` when the record is cut.
pub fn parse_client_hello(buf: &[u8]) -> Result<ClientHello<'_>, TlsError> {
    if buf.len() < 5 {
        return Err(TlsError::Partial);
    }
    if !looks_like_tls(buf) {
        return Err(TlsError::NotHandshake);
    }
    let rec_len = usize::from(u16::from_be_bytes([buf[3], buf[4]]));
    let rec = buf.get(5..5 + rec_len).ok_or(TlsError::Partial)?;
    parse_handshake(rec)
}

/// Parses a ClientHello handshake message (type, 24-bit length, body) without the record
/// layer, as QUIC carries it in CRYPTO frames.
pub fn parse_handshake(msg: &[u8]) -> Result<ClientHello<'_>, TlsError> {
    if msg.len() < 4 {
        return Err(TlsError::Malformed("handshake header cut"));
    }
    if msg[0] != 1 {
        return Err(TlsError::NotClientHello);
    }
    let hs_len = (usize::from(msg[1]) << 16) | (usize::from(msg[2]) << 8) | usize::from(msg[3]);
    let body = msg.get(4..4 + hs_len).ok_or(TlsError::Partial)?;
    parse_body(body)
}

/// Like [`parse_handshake`], but a message cut short (the rest in a later segment or
/// packet) still yields the SNI when the part at hand contains it.
pub fn parse_handshake_prefix(msg: &[u8]) -> Result<ClientHello<'_>, TlsError> {
    match parse_handshake(msg) {
        Err(TlsError::Partial) => {
            let body = msg.get(4..).ok_or(TlsError::Partial)?;
            let mut hello = ClientHello::default();
            match walk_body(body, true, &mut hello) {
                _ if hello.sni.is_some() => Ok(hello),
                _ => Err(TlsError::Partial),
            }
        }
        r => r,
    }
}

/// [`parse_client_hello`] for a first segment that may hold only part of the hello.
pub fn parse_client_hello_prefix(buf: &[u8]) -> Result<ClientHello<'_>, TlsError> {
    if buf.len() < 5 {
        return Err(TlsError::Partial);
    }
    if !looks_like_tls(buf) {
        return Err(TlsError::NotHandshake);
    }
    let rec_len = usize::from(u16::from_be_bytes([buf[3], buf[4]]));
    parse_handshake_prefix(&buf[5..buf.len().min(5 + rec_len)])
}

fn parse_body(body: &[u8]) -> Result<ClientHello<'_>, TlsError> {
    let mut hello = ClientHello::default();
    walk_body(body, false, &mut hello)?;
    Ok(hello)
}

fn walk_body<'a>(body: &'a [u8], cut: bool, hello: &mut ClientHello<'a>) -> Result<(), TlsError> {
    let mut r = Reader { b: body };
    let v = r.take(2)?;
    hello.version = u16::from_be_bytes([v[0], v[1]]);
    r.take(32)?; // random
    let sid = r.u8()?;
    r.take(sid)?;
    let suites = r.u16()?;
    hello.suites = r.take(suites)?;
    let comp = r.u8()?;
    r.take(comp)?;
    if r.b.is_empty() {
        return Ok(()); // no extensions
    }
    let ext_len = r.u16()?;
    // A cut hello's extensions end where the bytes at hand do.
    let ext_len = if cut { ext_len.min(r.b.len()) } else { ext_len };
    hello.extensions = r.take(ext_len)?;
    let mut exts = Reader {
        b: hello.extensions,
    };
    while !exts.b.is_empty() {
        let kind = exts.u16()?;
        let len = exts.u16()?;
        let mut e = Reader { b: exts.take(len)? };
        match kind {
            0 => {
                let list = e.u16()?;
                let mut l = Reader { b: e.take(list)? };
                while !l.b.is_empty() {
                    let name_type = l.u8()?;
                    let n = l.u16()?;
                    let name = l.take(n)?;
                    if name_type == 0 && hello.sni.is_none() {
                        if name.len() > MAX_NAME || name.is_empty() {
                            return Err(TlsError::Malformed("server name length"));
                        }
                        hello.sni = Some(
                            std::str::from_utf8(name)
                                .map_err(|_| TlsError::Malformed("server name is not text"))?,
                        );
                    }
                }
            }
            16 => {
                let list = e.u16()?;
                let mut l = Reader { b: e.take(list)? };
                while !l.b.is_empty() {
                    let n = l.u8()?;
                    let p = l.take(n)?;
                    if usize::from(hello.alpn_len) < MAX_ALPN {
                        hello.alpn[usize::from(hello.alpn_len)] = p;
                        hello.alpn_len += 1;
                    }
                }
            }
            10 => {
                let n = e.u16()?;
                hello.groups = e.take(n)?;
            }
            11 => {
                let n = e.u8()?;
                hello.point_formats = e.take(n)?;
            }
            EXT_ECH => hello.ech = true,
            43 => {
                let n = e.u8()?;
                let vs = e.take(n)?;
                hello.offers_tls13 = vs.chunks_exact(2).any(|c| c == [3, 4]);
            }
            _ => {}
        }
    }
    Ok(())
}

/// `encrypted_client_hello` (draft-ietf-tls-esni, the code point browsers send).
const EXT_ECH: usize = 0xfe0d;

/// A client's first flight read as far as the bytes at hand go.
#[derive(Debug, PartialEq, Eq)]
pub enum HelloRead<'a> {
    /// The whole ClientHello (its SNI may be absent).
    Complete(ClientHello<'a>),
    /// Cut short; the SNI if the part at hand holds it.
    Partial(Option<&'a str>),
    /// Not a ClientHello, or malformed; the SNI if it came before the damage (a name
    /// followed by broken extensions is still the name the client asked for).
    Invalid(TlsError, Option<&'a str>),
}

/// Reads the ClientHello at the start of a client's TLS stream, however many records it
/// was split into: the handshake bytes of the leading records (a cut last record
/// included) are joined into `scratch` (bounded by its size) and parsed.
pub fn read_client_hello<'a>(stream: &[u8], scratch: &'a mut [u8]) -> HelloRead<'a> {
    let mut n = 0;
    let mut at = 0;
    while let Some(h) = stream.get(at..at + 5) {
        if !looks_like_tls(h) {
            if at == 0 {
                return HelloRead::Invalid(TlsError::NotHandshake, None);
            }
            break;
        }
        let len = usize::from(u16::from_be_bytes([h[3], h[4]]));
        let body = &stream[at + 5..stream.len().min(at + 5 + len)];
        let k = body.len().min(scratch.len() - n);
        scratch[n..n + k].copy_from_slice(&body[..k]);
        n += k;
        if body.len() < len || n == scratch.len() {
            break;
        }
        at += 5 + len;
    }
    read_handshake(&scratch[..n])
}

/// [`read_client_hello`] for handshake bytes without the record layer (QUIC's CRYPTO
/// stream).
pub fn read_handshake(hs: &[u8]) -> HelloRead<'_> {
    if hs.len() < 4 {
        return HelloRead::Partial(None);
    }
    match parse_handshake(hs) {
        Ok(h) => HelloRead::Complete(h),
        Err(TlsError::Partial) => HelloRead::Partial(sni_before_damage(&hs[4..])),
        Err(e @ TlsError::Malformed(_)) => {
            let len = (usize::from(hs[1]) << 16) | (usize::from(hs[2]) << 8) | usize::from(hs[3]);
            HelloRead::Invalid(e, sni_before_damage(&hs[4..hs.len().min(4 + len)]))
        }
        Err(e) => HelloRead::Invalid(e, None),
    }
}

/// The SNI of a ClientHello body, if it comes before the body is cut or broken.
fn sni_before_damage(body: &[u8]) -> Option<&str> {
    let mut hello = ClientHello::default();
    let _ = walk_body(body, true, &mut hello);
    hello.sni
}

/// Certificates kept from one server flight.
pub const MAX_CERTS: usize = 8;

/// Joins the handshake bytes of a record stream (records of type 22, up to the first
/// other record or the first cut record) into `out`, at most `limit` bytes.
pub fn handshake_bytes(records: &[u8], out: &mut Vec<u8>, limit: usize) {
    out.clear();
    let mut at = 0;
    while let Some(h) = records.get(at..at + 5) {
        let len = usize::from(u16::from_be_bytes([h[3], h[4]]));
        let Some(body) = records.get(at + 5..at + 5 + len) else {
            break;
        };
        if h[0] != 22 || out.len() + len > limit {
            break;
        }
        out.extend_from_slice(body);
        at += 5 + len;
    }
}

/// The DER certificates of the first Certificate message (TLS 1.2 and earlier; in 1.3 it
/// is encrypted) in joined handshake bytes, leaf first. `None` until it is complete.
pub fn server_certificates(hs: &[u8]) -> Option<([&[u8]; MAX_CERTS], usize)> {
    let mut at = 0;
    while let Some(h) = hs.get(at..at + 4) {
        let len = usize::from(h[1]) << 16 | usize::from(h[2]) << 8 | usize::from(h[3]);
        let body = hs.get(at + 4..at + 4 + len)?;
        if h[0] == 11 {
            let mut r = Reader { b: body };
            let total = r.take(3).ok()?;
            let total =
                usize::from(total[0]) << 16 | usize::from(total[1]) << 8 | usize::from(total[2]);
            let mut list = Reader {
                b: r.take(total).ok()?,
            };
            let (mut certs, mut n) = ([&[][..]; MAX_CERTS], 0);
            while !list.b.is_empty() && n < MAX_CERTS {
                let l = list.take(3).ok()?;
                let l = usize::from(l[0]) << 16 | usize::from(l[1]) << 8 | usize::from(l[2]);
                certs[n] = list.take(l).ok()?;
                n += 1;
            }
            return Some((certs, n));
        }
        at += 4 + len;
    }
    None
}

/// The leaf certificate's fields rules look at, as Suricata writes them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CertFields {
    /// `C=US, O=Example, CN=www.example.test`
    pub subject: String,
    pub issuer: String,
    /// `0A:1B:…`, upper-case hex.
    pub serial: String,
}

/// Reads a DER certificate's subject, issuer and serial (`None` if it does not parse).
pub fn cert_fields(der: &[u8]) -> Option<CertFields> {
    use x509_parser::prelude::FromDer;
    let (_, cert) = x509_parser::certificate::X509Certificate::from_der(der).ok()?;
    let serial = cert
        .raw_serial()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":");
    Some(CertFields {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        serial,
    })
}

/// GREASE values (RFC 8701) are left out of fingerprints.
fn grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a && v >> 8 == v & 0xff
}

/// Writes `items` (big-endian u16s, or u8s) as decimal numbers joined by '-'.
fn join_numbers(out: &mut String, items: &[u8], wide: bool) {
    use std::fmt::Write;
    let mut first = true;
    let step = if wide { 2 } else { 1 };
    for c in items.chunks_exact(step) {
        let v = if wide {
            u16::from_be_bytes([c[0], c[1]])
        } else {
            u16::from(c[0])
        };
        if wide && grease(v) {
            continue;
        }
        if !first {
            out.push('-');
        }
        first = false;
        let _ = write!(out, "{v}");
    }
}

/// Extension types of an extensions block, as big-endian u16s, into `out`.
fn extension_types(block: &[u8], out: &mut Vec<u8>) {
    out.clear();
    let mut r = Reader { b: block };
    while let (Ok(kind), Ok(len)) = (r.take(2), r.u16()) {
        out.extend_from_slice(kind);
        if r.take(len).is_err() {
            break;
        }
    }
}

/// The JA3 string of a ClientHello: `version,ciphers,extensions,groups,point_formats`.
/// `scratch` holds the extension types; both buffers are the caller's, reused.
pub fn ja3_string(h: &ClientHello<'_>, out: &mut String, scratch: &mut Vec<u8>) {
    use std::fmt::Write;
    out.clear();
    let _ = write!(out, "{},", h.version);
    join_numbers(out, h.suites, true);
    out.push(',');
    extension_types(h.extensions, scratch);
    join_numbers(out, scratch, true);
    out.push(',');
    join_numbers(out, h.groups, true);
    out.push(',');
    join_numbers(out, h.point_formats, false);
}

/// A ServerHello's fields for JA3S: version, chosen cipher, extensions block.
pub struct ServerHello<'a> {
    pub version: u16,
    pub cipher: u16,
    pub extensions: &'a [u8],
}

/// The ServerHello at the start of joined handshake bytes.
pub fn server_hello(hs: &[u8]) -> Option<ServerHello<'_>> {
    let mut r = Reader { b: hs };
    if r.u8().ok()? != 2 {
        return None;
    }
    let len = r.take(3).ok()?;
    let len = usize::from(len[0]) << 16 | usize::from(len[1]) << 8 | usize::from(len[2]);
    let mut b = Reader {
        b: r.take(len).ok()?,
    };
    let version = b.u16().ok()? as u16;
    b.take(32).ok()?;
    let sid = b.u8().ok()?;
    b.take(sid).ok()?;
    let cipher = b.u16().ok()? as u16;
    b.take(1).ok()?;
    let extensions = match b.u16() {
        Ok(n) => b.take(n).ok()?,
        Err(_) => &[],
    };
    Some(ServerHello {
        version,
        cipher,
        extensions,
    })
}

/// The JA3S string: `version,cipher,extensions`.
pub fn ja3s_string(h: &ServerHello<'_>, out: &mut String, scratch: &mut Vec<u8>) {
    use std::fmt::Write;
    out.clear();
    let _ = write!(out, "{},{},", h.version, h.cipher);
    extension_types(h.extensions, scratch);
    join_numbers(out, scratch, true);
}

/// MD5 of a fingerprint string as 32 lower-case hex digits.
pub fn fingerprint_hash(s: &str) -> [u8; 32] {
    use md5::{Digest, Md5};
    let d = Md5::digest(s.as_bytes());
    let mut out = [0u8; 32];
    for (i, b) in d.iter().enumerate() {
        out[2 * i] = b"0123456789abcdef"[usize::from(b >> 4)];
        out[2 * i + 1] = b"0123456789abcdef"[usize::from(b & 15)];
    }
    out
}

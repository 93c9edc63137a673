//! The TLS ClientHello (RFC 8446 4.1.2): version, SNI (RFC 6066 3) and ALPN (RFC 7301).

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
    let body = msg.get(4..4 + hs_len).ok_or(if hs_len > msg.len() {
        TlsError::Partial
    } else {
        TlsError::Malformed("handshake length")
    })?;
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
    r.take(suites)?;
    let comp = r.u8()?;
    r.take(comp)?;
    if r.b.is_empty() {
        return Ok(()); // no extensions
    }
    let ext_len = r.u16()?;
    // A cut hello's extensions end where the bytes at hand do.
    let ext_len = if cut { ext_len.min(r.b.len()) } else { ext_len };
    let mut exts = Reader {
        b: r.take(ext_len)?,
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

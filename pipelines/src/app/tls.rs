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
    pub alpn: Vec<&'a [u8]>,
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
    if rec.len() < 4 {
        return Err(TlsError::Malformed("handshake header cut"));
    }
    if rec[0] != 1 {
        return Err(TlsError::NotClientHello);
    }
    let hs_len = (usize::from(rec[1]) << 16) | (usize::from(rec[2]) << 8) | usize::from(rec[3]);
    let body = rec.get(4..4 + hs_len).ok_or(if hs_len > rec.len() {
        TlsError::Partial
    } else {
        TlsError::Malformed("handshake length")
    })?;
    let mut r = Reader { b: body };
    let v = r.take(2)?;
    let mut hello = ClientHello {
        version: u16::from_be_bytes([v[0], v[1]]),
        ..ClientHello::default()
    };
    r.take(32)?; // random
    let sid = r.u8()?;
    r.take(sid)?;
    let suites = r.u16()?;
    r.take(suites)?;
    let comp = r.u8()?;
    r.take(comp)?;
    if r.b.is_empty() {
        return Ok(hello); // no extensions
    }
    let ext_len = r.u16()?;
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
                    if hello.alpn.len() < MAX_ALPN {
                        hello.alpn.push(p);
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
    Ok(hello)
}

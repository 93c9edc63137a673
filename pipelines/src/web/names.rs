//! Reading the name a flow is about, without allocating: the DNS question (and the
//! addresses in the answer), the HTTP request's Host and path, a DHCP client's identity.

/// A name held inline (events and tables are fixed-size); longer names are cut and marked.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ShortName {
    len: u8,
    cut: bool,
    bytes: [u8; ShortName::CAP],
}

impl ShortName {
    pub const CAP: usize = 96;
    pub const EMPTY: ShortName = ShortName {
        len: 0,
        cut: false,
        bytes: [0; ShortName::CAP],
    };
    /// Keeps the first [`Self::CAP`] bytes of printable ASCII (anything else becomes `?`).
    pub fn new(b: &[u8]) -> ShortName {
        let mut n = ShortName::EMPTY;
        let k = b.len().min(Self::CAP);
        for (d, &s) in n.bytes.iter_mut().zip(&b[..k]) {
            *d = if s.is_ascii_graphic() { s } else { b'?' };
        }
        n.len = k as u8;
        n.cut = b.len() > k;
        n
    }
    pub fn as_str(&self) -> &str {
        // Only ASCII is stored.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("")
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn was_cut(&self) -> bool {
        self.cut
    }
}

impl Default for ShortName {
    fn default() -> Self {
        ShortName::EMPTY
    }
}

impl std::fmt::Debug for ShortName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

/// Longest DNS name in text form.
pub const NAME_MAX: usize = 253;

/// The question of a DNS message.
pub struct Question {
    pub len: usize,
    pub qtype: u16,
    /// Offset just past the question (type and class included).
    pub end: usize,
    pub response: bool,
}

/// Writes the first question's name, lower-cased and dotted, into `out`. Only the plain
/// label form is accepted in a question (compression there is legal but never used by
/// resolvers' clients; a message using it is not inspected and is counted by the caller).
pub fn dns_question(msg: &[u8], out: &mut [u8; NAME_MAX]) -> Option<Question> {
    if msg.len() < 12 || u16::from_be_bytes([msg[4], msg[5]]) != 1 || (msg[2] >> 3) & 0x0f != 0 {
        return None;
    }
    let mut at = 12;
    let mut len = 0;
    loop {
        let l = usize::from(*msg.get(at)?);
        at += 1;
        if l == 0 {
            break;
        }
        if l > 63 {
            return None;
        }
        let label = msg.get(at..at + l)?;
        let need = l + usize::from(len > 0);
        if len + need > NAME_MAX {
            return None;
        }
        if len > 0 {
            out[len] = b'.';
            len += 1;
        }
        for (d, s) in out[len..len + l].iter_mut().zip(label) {
            *d = s.to_ascii_lowercase();
        }
        len += l;
        at += l;
    }
    let qtype = u16::from_be_bytes([*msg.get(at)?, *msg.get(at + 1)?]);
    msg.get(at + 3)?;
    Some(Question {
        len,
        qtype,
        end: at + 4,
        response: msg[2] & 0x80 != 0,
    })
}

/// Skips a (possibly compressed) name in a DNS message; returns the offset after it.
fn skip_name(msg: &[u8], mut at: usize) -> Option<usize> {
    for _ in 0..128 {
        let l = *msg.get(at)?;
        match l {
            0 => return Some(at + 1),
            0xc0..=0xff => return Some(at + 2).filter(|&e| e <= msg.len()),
            1..=63 => at += 1 + usize::from(l),
            _ => return None,
        }
    }
    None
}

/// Calls `f` with each A (IPv4-mapped) and AAAA address in the answer section, at most
/// `limit` of them. Answers to CNAME chains belong to the question's name.
pub fn dns_answers(msg: &[u8], q: &Question, limit: usize, mut f: impl FnMut(u128, u32)) {
    let Some(an) = msg.get(6..8).map(|b| u16::from_be_bytes([b[0], b[1]])) else {
        return;
    };
    let mut at = q.end;
    let mut seen = 0;
    for _ in 0..an {
        let Some(after) = skip_name(msg, at) else {
            return;
        };
        let Some(h) = msg.get(after..after + 10) else {
            return;
        };
        let (rtype, ttl) = (
            u16::from_be_bytes([h[0], h[1]]),
            u32::from_be_bytes([h[4], h[5], h[6], h[7]]),
        );
        let rdlen = usize::from(u16::from_be_bytes([h[8], h[9]]));
        let Some(rdata) = msg.get(after + 10..after + 10 + rdlen) else {
            return;
        };
        let addr = match (rtype, rdata.len()) {
            (1, 4) => Some(crate::packet::v4_bits([
                rdata[0], rdata[1], rdata[2], rdata[3],
            ])),
            (28, 16) => rdata.try_into().ok().map(crate::packet::v6_bits),
            _ => None,
        };
        if let Some(a) = addr {
            f(a, ttl);
            seen += 1;
            if seen >= limit {
                return;
            }
        }
        at = after + 10 + rdlen;
    }
}

/// The host and path of an HTTP/1.x request's head, as far as the bytes at hand go. The
/// Host header wins over an absolute-form target's authority (RFC 9112 3.2.2 says they
/// must agree; a filter must not be fooled when they do not, so the Host is what the
/// origin will serve and what we judge).
pub fn http_target(b: &[u8]) -> Option<(&str, &str)> {
    let line_end = memchr_crlf(b)?;
    let line = std::str::from_utf8(&b[..line_end]).ok()?;
    let mut parts = line.split(' ');
    let method = parts.next()?;
    let target = parts.next()?;
    if method.is_empty() || !method.bytes().all(|c| c.is_ascii_uppercase()) {
        return None;
    }
    parts.next().filter(|v| v.starts_with("HTTP/1."))?;
    let (mut host, path) = match target.split_once("://") {
        Some((_, rest)) => match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        },
        None => ("", target),
    };
    let mut rest = &b[line_end + 2..];
    while let Some(e) = memchr_crlf(rest) {
        if e == 0 {
            break;
        }
        let h = &rest[..e];
        if h.len() > 5 && h[..5].eq_ignore_ascii_case(b"host:") {
            if let Ok(v) = std::str::from_utf8(&h[5..]) {
                host = v.trim();
            }
            break;
        }
        rest = &rest[e + 2..];
    }
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    let host = if host.starts_with('[') {
        host
    } else {
        host.split(':').next().unwrap_or(host)
    };
    (!host.is_empty()).then_some((host, path))
}

/// How far an HTTP/1.x request head has come.
#[derive(Debug, PartialEq, Eq)]
pub enum HttpHead<'a> {
    /// Host and path, final: from a Host header, or the head is complete.
    Named(&'a str, &'a str),
    /// A request line so far (or part of one): more bytes may name it.
    Incomplete,
    /// A complete head without a host.
    Nameless,
    NotHttp,
}

/// Reads the start of a client's stream as an HTTP request head.
pub fn http_head(b: &[u8]) -> HttpHead<'_> {
    let Some(line_end) = memchr_crlf(b) else {
        // Part of a request line: a method token, perhaps more.
        let method = b.split(|&c| c == b' ').next().unwrap_or(b);
        let plausible = !method.is_empty()
            && method.len() <= 16
            && method.iter().all(|c| c.is_ascii_uppercase());
        return if plausible {
            HttpHead::Incomplete
        } else {
            HttpHead::NotHttp
        };
    };
    // Searched only when the answer depends on it (most heads name their Host early).
    let complete = || b.windows(4).any(|w| w == b"\r\n\r\n");
    let line = &b[..line_end];
    match http_target(b) {
        // An absolute-form target names the host, but a later Host header wins.
        Some((h, p)) if !line.windows(3).any(|w| w == b"://") || complete() => {
            HttpHead::Named(h, p)
        }
        Some(_) => HttpHead::Incomplete,
        None if !(line.ends_with(b" HTTP/1.1") || line.ends_with(b" HTTP/1.0")) => {
            HttpHead::NotHttp
        }
        None if complete() => HttpHead::Nameless,
        None => HttpHead::Incomplete,
    }
}

fn memchr_crlf(b: &[u8]) -> Option<usize> {
    b.windows(2).position(|w| w == b"\r\n")
}

/// What a DHCP client message tells about its sender.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DhcpInfo {
    pub mac: crate::wire::MacAddr,
    /// The address the client has or asks for, or the server assigns (ACK).
    pub ip: Option<[u8; 4]>,
    pub hostname: ShortName,
    pub client_id: ShortName,
    /// The DHCP message type (option 53).
    pub kind: u8,
}

/// Parses a BOOTP/DHCP message (RFC 2131/2132): chaddr, ciaddr/yiaddr, options 12 (host
/// name), 50 (requested address), 53 (type), 61 (client identifier), 81 (client FQDN).
pub fn dhcp(msg: &[u8]) -> Option<DhcpInfo> {
    if msg.len() < 240 || msg[1] != 1 || msg[2] != 6 || msg[236..240] != [99, 130, 83, 99] {
        return None;
    }
    let mut info = DhcpInfo {
        mac: crate::wire::MacAddr(msg[28..34].try_into().ok()?),
        ..DhcpInfo::default()
    };
    let addr = |at: usize| -> Option<[u8; 4]> {
        let a: [u8; 4] = msg[at..at + 4].try_into().ok()?;
        (a != [0; 4]).then_some(a)
    };
    info.ip = addr(12).or(addr(16));
    let mut at = 240;
    while at < msg.len() {
        let code = msg[at];
        if code == 0 {
            at += 1;
            continue;
        }
        if code == 255 {
            break;
        }
        let len = usize::from(*msg.get(at + 1)?);
        let v = msg.get(at + 2..at + 2 + len)?;
        match code {
            12 => info.hostname = ShortName::new(v),
            50 if len == 4 && info.ip.is_none() => info.ip = v.try_into().ok(),
            53 if len == 1 => info.kind = v[0],
            61 if !v.is_empty() => {
                // Type 1 is a hardware address: print it as one.
                let mut text = [0u8; 64];
                let mut n = 0;
                for (i, b) in v.iter().take(20).enumerate() {
                    let sep = if i == 0 { "" } else { ":" };
                    let s = format_hex(*b);
                    for c in sep.bytes().chain(s) {
                        text[n] = c;
                        n += 1;
                    }
                }
                info.client_id = ShortName::new(&text[..n]);
            }
            81 if len > 3 && info.hostname.is_empty() => {
                let name = &v[3..];
                // Flag E (0x04): wire format; take the first label then.
                let name = if v[0] & 0x04 != 0 {
                    let l = usize::from(name[0]).min(name.len() - 1);
                    &name[1..1 + l]
                } else {
                    name
                };
                info.hostname = ShortName::new(name);
            }
            _ => {}
        }
        at += 2 + len;
    }
    Some(info)
}

fn format_hex(b: u8) -> [u8; 2] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    [HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_target_prefers_host_header() {
        let r = b"GET http://a.test/x HTTP/1.1\r\nUser-Agent: t\r\nHOST: b.test:8080\r\n\r\n";
        assert_eq!(http_target(r), Some(("b.test", "/x")));
        assert_eq!(
            http_target(b"GET /p/q HTTP/1.1\r\nHost: c.test\r\n"),
            Some(("c.test", "/p/q"))
        );
        assert_eq!(http_target(b"GET /p HTTP/1.1\r\n"), None);
        assert_eq!(http_target(b"\x16\x03\x01"), None);
    }

    #[test]
    fn dns_question_reads_and_bounds() {
        let mut q = vec![0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        q.extend_from_slice(b"\x03WWW\x04Test\x04TEST\x00\x00\x01\x00\x01");
        let mut out = [0u8; NAME_MAX];
        let got = dns_question(&q, &mut out).unwrap();
        assert_eq!(&out[..got.len], b"www.test.test");
        assert_eq!((got.qtype, got.end, got.response), (1, q.len(), false));
        assert!(dns_question(&q[..q.len() - 1], &mut out).is_none());
        let mut looped = vec![0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1];
        assert!(dns_question(&looped, &mut out).is_none());
        looped[12] = 64;
        assert!(dns_question(&looped, &mut out).is_none());
    }
}

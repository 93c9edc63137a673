//! The client's first message (a TLS ClientHello, an HTTP request head, QUIC's CRYPTO
//! stream) joined across segments or Initials, whatever their size, order and overlap, so
//! the web filter reads a name wherever the client put it.
//!
//! A flow needs a buffer only while its first message is incomplete: the first packet is
//! read in place (or, for QUIC, into the reusable probe), and only a cut message takes one
//! of a fixed number of pooled buffers, each bounded by [`HELLO_MAX`]. Bytes are placed by
//! the same reassembler the IPS uses ([`crate::stream::HalfStream`]: first data wins). A
//! full pool or a message past the budget is counted and judged by what was read.

use super::Via;
use super::names::{self, HttpHead, ShortName};
use crate::app::tls::{self, HelloRead};
use crate::stream::{HalfStream, Memcap, StreamLimits, StreamStats};
use serde::Serialize;

/// Most bytes of a first message held (Chrome's post-quantum hellos are ~2 KB).
pub const HELLO_MAX: usize = 16 * 1024;

/// A pooled buffer, named by its index.
pub type Handle = u16;

#[derive(Clone, Debug, Default, Serialize)]
pub struct HelloStats {
    /// First messages that needed more than one packet.
    pub joined: u64,
    /// …for which no buffer was free: judged by their first packet.
    pub pool_full: u64,
    /// …that ran past [`HELLO_MAX`]: judged by what was read.
    pub over_budget: u64,
    pub stream: StreamStats,
}

pub struct Hellos {
    capacity: usize,
    bufs: Vec<HalfStream>,
    free: Vec<Handle>,
    /// The first packet's buffer when it must be assembled before reading (QUIC frames).
    probe: HalfStream,
    mem: Memcap,
}

/// Where a message's bytes go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    Probe,
    Kept(Handle),
}

/// What adding bytes did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Added {
    Ok,
    /// The message ran past the budget: read what is there and stop.
    OverBudget,
}

const LIMITS: StreamLimits = StreamLimits {
    depth: HELLO_MAX,
    skip_unheld: false,
};

impl Hellos {
    /// A pool of `capacity` buffers (at most [`Handle::MAX`]).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.min(usize::from(Handle::MAX));
        Hellos {
            capacity,
            bufs: Vec::new(),
            free: (0..capacity as Handle).rev().collect(),
            probe: HalfStream::default(),
            // The probe and every pooled buffer, each at most the budget.
            mem: Memcap::new((capacity + 1) * HELLO_MAX * 2),
        }
    }

    /// Empties the probe for a message whose first byte is `seq`.
    pub fn start_probe(&mut self, seq: u32) {
        self.probe.restart_at(seq);
    }

    /// A pooled buffer for a message whose first byte is `seq`, if one is free.
    pub fn take(&mut self, seq: u32, stats: &mut HelloStats) -> Option<Handle> {
        let Some(h) = self.free.pop() else {
            stats.pool_full += 1;
            return None;
        };
        stats.joined += 1;
        let i = usize::from(h);
        if i >= self.bufs.len() {
            self.bufs.resize_with(i + 1, HalfStream::default);
        }
        self.bufs[i].restart_at(seq);
        Some(h)
    }

    /// Moves what the probe holds into a pooled buffer (no copy), if one is free.
    pub fn keep_probe(&mut self, stats: &mut HelloStats) -> Option<Handle> {
        let h = self.take(0, stats)?;
        std::mem::swap(&mut self.probe, &mut self.bufs[usize::from(h)]);
        Some(h)
    }

    pub fn release(&mut self, h: Handle) {
        if let Some(b) = self.bufs.get_mut(usize::from(h)) {
            b.restart_at(0);
            self.free.push(h);
        }
    }

    fn buf(&mut self, s: Slot) -> &mut HalfStream {
        match s {
            Slot::Probe => &mut self.probe,
            Slot::Kept(h) => &mut self.bufs[usize::from(h)],
        }
    }

    /// Places `data` at sequence number (or CRYPTO offset) `seq`.
    pub fn add(&mut self, s: Slot, seq: u32, data: &[u8], stats: &mut HelloStats) -> Added {
        let refused = |st: &StreamStats| st.beyond_window + st.memcap_refused;
        let before = refused(&stats.stream);
        let b = match s {
            Slot::Probe => &mut self.probe,
            Slot::Kept(h) => &mut self.bufs[usize::from(h)],
        };
        b.add(seq, data, LIMITS, &mut self.mem, &mut stats.stream);
        if refused(&stats.stream) != before {
            stats.over_budget += 1;
            return Added::OverBudget;
        }
        Added::Ok
    }

    /// The in-order bytes from the message's start.
    pub fn bytes(&mut self, s: Slot) -> &[u8] {
        self.buf(s).contiguous()
    }

    /// Buffers in use.
    pub fn in_use(&self) -> usize {
        self.capacity - self.free.len()
    }
}

/// Longest HTTP path kept for URL-prefix judgements.
pub const PATH_MAX: usize = 512;

/// An HTTP path, copied out of the packet.
#[derive(Clone, Copy)]
pub struct ShortPath {
    bytes: [u8; PATH_MAX],
    len: u16,
}

impl ShortPath {
    pub fn new(p: &str) -> ShortPath {
        // Cut on a character boundary, so the path stays text.
        let mut n = p.len().min(PATH_MAX);
        while !p.is_char_boundary(n) {
            n -= 1;
        }
        let mut s = ShortPath {
            bytes: [0; PATH_MAX],
            len: n as u16,
        };
        s.bytes[..n].copy_from_slice(&p.as_bytes()[..n]);
        s
    }
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("/")
    }
}

/// What a client's first message gave.
// Returned by value once per first message; boxing the name would allocate per flow.
#[allow(clippy::large_enum_variant)]
pub enum ClientRead {
    Named {
        name: ShortName,
        path: Option<ShortPath>,
        via: Via,
        /// The hello carried `encrypted_client_hello`: `name` is the outer one.
        ech: bool,
    },
    /// Cut short: more bytes may name it.
    More,
    /// Complete, or read as far as it will go, without a name.
    Nameless,
    /// Neither a ClientHello nor an HTTP request.
    Other,
}

fn sni(name: Option<&str>, via: Via, ech: bool) -> ClientRead {
    match name {
        Some(n) => ClientRead::Named {
            name: ShortName::new(n.as_bytes()),
            path: None,
            via,
            ech,
        },
        None => ClientRead::Nameless,
    }
}

/// Reads the start of a TCP client's stream: a ClientHello (however many records and
/// segments) or an HTTP request head. `last`: no more bytes will be read (the budget ran
/// out, no buffer was free, the server spoke), so a cut message gives what it has.
pub fn read_tcp(bytes: &[u8], scratch: &mut [u8], last: bool) -> ClientRead {
    if bytes.is_empty() {
        return if last {
            ClientRead::Nameless
        } else {
            ClientRead::More
        };
    }
    if bytes[0] == 22 && (bytes.len() < 3 || tls::looks_like_tls(bytes)) {
        return read_hello(tls::read_client_hello(bytes, scratch), Via::Sni, last);
    }
    match names::http_head(bytes) {
        HttpHead::Named(host, path) => ClientRead::Named {
            name: ShortName::new(host.as_bytes()),
            path: Some(ShortPath::new(path)),
            via: Via::Http,
            ech: false,
        },
        HttpHead::Incomplete if !last => ClientRead::More,
        HttpHead::Incomplete | HttpHead::Nameless => ClientRead::Nameless,
        HttpHead::NotHttp => ClientRead::Other,
    }
}

/// Reads QUIC's CRYPTO stream (handshake messages without records).
pub fn read_crypto(bytes: &[u8], last: bool) -> ClientRead {
    read_hello(tls::read_handshake(bytes), Via::Quic, last)
}

fn read_hello(r: HelloRead<'_>, via: Via, last: bool) -> ClientRead {
    match r {
        HelloRead::Complete(h) => sni(h.sni, via, h.ech),
        HelloRead::Partial(name) if last => sni(name, via, false),
        HelloRead::Partial(_) => ClientRead::More,
        HelloRead::Invalid(_, name) => sni(name, via, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pool_is_bounded_and_reused() {
        let (mut p, mut st) = (Hellos::new(2), HelloStats::default());
        let a = p.take(100, &mut st).unwrap();
        let b = p.take(200, &mut st).unwrap();
        assert_eq!(p.take(300, &mut st), None);
        assert_eq!((st.joined, st.pool_full), (2, 1));
        assert_eq!(p.add(Slot::Kept(a), 105, b"world", &mut st), Added::Ok);
        assert_eq!(p.add(Slot::Kept(a), 100, b"hello", &mut st), Added::Ok);
        assert_eq!(p.bytes(Slot::Kept(a)), b"helloworld");
        assert_eq!(p.in_use(), 2);
        p.release(a);
        let c = p.take(7, &mut st).unwrap();
        assert!(p.bytes(Slot::Kept(c)).is_empty());
        let _ = b;
    }

    #[test]
    fn the_probe_moves_into_the_pool_and_the_budget_holds() {
        let (mut p, mut st) = (Hellos::new(1), HelloStats::default());
        p.start_probe(0);
        p.add(Slot::Probe, 0, b"abc", &mut st);
        let h = p.keep_probe(&mut st).unwrap();
        assert_eq!(p.bytes(Slot::Kept(h)), b"abc");
        p.start_probe(0);
        assert!(p.bytes(Slot::Probe).is_empty());
        let big = vec![7u8; HELLO_MAX];
        assert_eq!(p.add(Slot::Kept(h), 3, &big, &mut st), Added::OverBudget);
        assert_eq!(p.bytes(Slot::Kept(h)).len(), HELLO_MAX);
        assert_eq!(
            p.add(Slot::Kept(h), 1 << 30, b"far", &mut st),
            Added::OverBudget
        );
        assert_eq!(st.over_budget, 2);
    }
}

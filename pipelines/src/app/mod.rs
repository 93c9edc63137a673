//! Application-layer parsers that feed inspection (signature buffers, URL categories):
//! HTTP/1.x, the TLS ClientHello, DNS. Each works on the bytes it is given, borrows rather
//! than copies where it can, bounds everything it keeps, and returns an error or `Partial`
//! on anything it cannot use — never a panic.

pub mod dns;
pub mod http;
pub mod tls;

/// Application protocols recognised by content (not by port).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppProto {
    Http,
    Tls,
    Dns,
    Smtp,
    Unknown,
}

/// Guesses the protocol of a TCP stream from the first bytes of either direction, or of a
/// UDP datagram (`udp` = true).
pub fn recognise(first: &[u8], udp: bool) -> AppProto {
    if udp {
        return if dns::looks_like_dns(first) {
            AppProto::Dns
        } else {
            AppProto::Unknown
        };
    }
    if tls::looks_like_tls(first) {
        AppProto::Tls
    } else if http::looks_like_http(first) {
        AppProto::Http
    } else if first.starts_with(b"220 ")
        || first.starts_with(b"220-")
        || first.starts_with(b"EHLO ")
        || first.starts_with(b"HELO ")
    {
        AppProto::Smtp
    } else {
        AppProto::Unknown
    }
}

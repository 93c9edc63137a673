//! Application-layer parsers that feed inspection (signature buffers, URL categories):
//! HTTP/1.x, the TLS ClientHello, DNS. Each works on the bytes it is given, borrows rather
//! than copies where it can, bounds everything it keeps, and returns an error or `Partial`
//! on anything it cannot use — never a panic.
//!
//! Protocol recognition is by content, never by port: [`recognise`] looks at the start of
//! one message, [`Detector`] decides a flow's protocol from the first message of each
//! direction (FTP and SMTP both greet with "220": the banner text or the client's first
//! command tells them apart).

pub mod dns;
pub mod http;
pub mod tls;

/// Application protocols recognised by content (not by port).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AppProto {
    Http,
    Tls,
    Dns,
    Smtp,
    Ftp,
    Ssh,
    Smb,
    Dcerpc,
    Imap,
    Pop3,
    #[default]
    Unknown,
}

impl AppProto {
    /// The name a Suricata rule header uses for it (`alert <name> …`).
    pub fn rule_name(self) -> Option<&'static str> {
        Some(match self {
            AppProto::Http => "http",
            AppProto::Tls => "tls",
            AppProto::Dns => "dns",
            AppProto::Smtp => "smtp",
            AppProto::Ftp => "ftp",
            AppProto::Ssh => "ssh",
            AppProto::Smb => "smb",
            AppProto::Dcerpc => "dcerpc",
            AppProto::Imap => "imap",
            AppProto::Pop3 => "pop3",
            AppProto::Unknown => return None,
        })
    }
}

/// Commands only an SMTP client starts with.
const SMTP_CLIENT: &[&[u8]] = &[b"EHLO", b"HELO", b"LHLO", b"MAIL FROM", b"STARTTLS"];
/// Commands an FTP client starts with (after the server's "220").
const FTP_CLIENT: &[&[u8]] = &[
    b"USER ", b"PASS ", b"AUTH ", b"FEAT", b"SYST", b"OPTS ", b"PORT ", b"EPRT ", b"PASV", b"EPSV",
    b"TYPE ", b"CWD ", b"PWD", b"LIST", b"NLST", b"RETR ", b"STOR ", b"ACCT ",
];

fn starts_with_ci(b: &[u8], p: &[u8]) -> bool {
    b.len() >= p.len() && b[..p.len()].eq_ignore_ascii_case(p)
}

fn any_prefix(b: &[u8], ps: &[&[u8]]) -> bool {
    ps.iter().any(|p| starts_with_ci(b, p))
}

/// DNS over TCP: a two-byte length, then a DNS message.
fn looks_like_dns_tcp(b: &[u8]) -> bool {
    b.len() >= 2 + 12 && usize::from(u16::from_be_bytes([b[0], b[1]])) >= 12 && {
        let m = &b[2..];
        dns::looks_like_dns(m)
    }
}

/// SMB (1, 2 or 3) behind its NetBIOS session header.
fn looks_like_smb(b: &[u8]) -> bool {
    b.len() >= 8 && b[0] == 0 && matches!(&b[4..8], b"\xffSMB" | b"\xfeSMB" | b"\xfdSMB")
}

/// A DCE/RPC connection-oriented PDU, version 5.0, of a type a client opens with (bind,
/// alter context) or a server answers with (bind ack / nak).
fn looks_like_dcerpc(b: &[u8]) -> bool {
    b.len() >= 16 && b[0] == 5 && b[1] == 0 && matches!(b[2], 11..=14)
}

/// Guesses the protocol of a TCP stream from the first bytes of either direction, or of a
/// UDP datagram (`udp` = true). A "220" greeting is taken for SMTP here unless it names
/// FTP; [`Detector`] decides the ambiguous ones from the client's commands.
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
    } else if first.starts_with(b"SSH-") {
        AppProto::Ssh
    } else if first.starts_with(b"220 ") || first.starts_with(b"220-") {
        match greeting(first) {
            Greeting::Ftp => AppProto::Ftp,
            _ => AppProto::Smtp,
        }
    } else if any_prefix(first, SMTP_CLIENT) {
        AppProto::Smtp
    } else if looks_like_smb(first) {
        AppProto::Smb
    } else if looks_like_dcerpc(first) {
        AppProto::Dcerpc
    } else if looks_like_dns_tcp(first) {
        AppProto::Dns
    } else {
        AppProto::Unknown
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Greeting {
    Smtp,
    Ftp,
    /// "220" and nothing that says which.
    Either,
}

/// What a "220" banner's first line says about the server.
fn greeting(b: &[u8]) -> Greeting {
    let line = &b[..b.iter().position(|&c| c == b'\n').unwrap_or(b.len())];
    let has = |w: &[u8]| line.windows(w.len()).any(|x| x.eq_ignore_ascii_case(w));
    if has(b"SMTP") {
        Greeting::Smtp
    } else if has(b"FTP") {
        Greeting::Ftp
    } else if has(b"mail") || has(b"Postfix") || has(b"Exim") || has(b"Sendmail") {
        Greeting::Smtp
    } else {
        Greeting::Either
    }
}

/// One flow's protocol detection: fed the first message of each direction as it grows;
/// [`Detector::proto`] is `Unknown` until the protocol is known (and stays so if it never
/// is). Decided once; later messages do not change it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Detector {
    proto: AppProto,
    /// The decision is final (a protocol, or none after both first messages).
    done: bool,
    /// The server greeted with a "220" that could be FTP or SMTP.
    greeted_220: bool,
    /// Each direction's first message was seen whole ([to_server, to_client]).
    tried: [bool; 2],
}

/// Bytes of a first message after which it is given up on.
const DETECT_BYTES: usize = 512;

impl Detector {
    pub fn proto(&self) -> AppProto {
        self.proto
    }

    pub fn done(&self) -> bool {
        self.done
    }

    /// Looks at the first message of a direction so far (`data` starts at its first byte).
    /// `complete`: that message is over (the sender closed). DNS is taken only on port 53
    /// (`port53`), as Suricata's detection ports.
    pub fn feed(&mut self, data: &[u8], to_server: bool, udp: bool, complete: bool, port53: bool) {
        if self.done || data.is_empty() {
            return;
        }
        let d = usize::from(!to_server);
        if self.tried[d] {
            return;
        }
        let mut found = if udp {
            recognise(data, true)
        } else if self.greeted_220 && to_server {
            if any_prefix(data, SMTP_CLIENT) {
                AppProto::Smtp
            } else if any_prefix(data, FTP_CLIENT) {
                AppProto::Ftp
            } else if data.len() >= 4 || complete {
                // Neither set of commands: not something we can tell; SMTP's grammar is
                // the stricter, so an unknown command is taken for FTP only if the
                // banner said nothing — leave it unknown.
                AppProto::Unknown
            } else {
                return;
            }
        } else if !to_server && (data.starts_with(b"220 ") || data.starts_with(b"220-")) {
            match greeting(data) {
                Greeting::Smtp => AppProto::Smtp,
                Greeting::Ftp => AppProto::Ftp,
                Greeting::Either => {
                    self.greeted_220 = true;
                    self.tried[d] = true;
                    return;
                }
            }
        } else if !to_server && data.starts_with(b"+OK") {
            AppProto::Pop3
        } else if !to_server && data.starts_with(b"* OK") {
            AppProto::Imap
        } else {
            recognise(data, false)
        };
        if found == AppProto::Dns && !port53 {
            found = AppProto::Unknown;
        }
        if found != AppProto::Unknown {
            self.proto = found;
            self.done = true;
            return;
        }
        if udp || complete || data.len() >= DETECT_BYTES || (self.greeted_220 && to_server) {
            self.tried[d] = true;
        }
        if self.tried == [true, true] || udp {
            self.done = true;
        }
    }

    /// The first message of a direction is over (the other side answered): what it did
    /// not reveal, it never will.
    pub fn message_ended(&mut self, to_server: bool) {
        if !self.done {
            self.tried[usize::from(!to_server)] = true;
            self.done = self.tried == [true, true];
        }
    }
}

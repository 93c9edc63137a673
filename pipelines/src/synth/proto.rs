//! The conversations of the office mix: what each protocol puts on the wire.

use super::tcp::{Endpoint, TcpConv};
use super::{Kind, Packet, Rng, frame};
use crate::wire::emit::Transport;
use crate::wire::tcp::flags::SYN;
use flate2::Compression;
use flate2::write::GzEncoder;
use std::io::Write;

const SITES: &[&str] = &[
    "intranet", "shop", "news", "mail", "files", "cloud", "video", "bank", "maps", "docs",
];
/// Names from the project's sample category lists (`samples/categories`), visited now and
/// then, so replays and the demo show the web filter at work.
const LISTED: &[&str] = &[
    "www.casino.test",
    "chatter.test",
    "c2-callback.test",
    "adult-site.test",
    "phish-bank.test",
    "bet-now.test",
];
const DNS_SERVER: u16 = 53; // 198.19.0.53

pub struct Gen<'a> {
    pub rng: Rng,
    pub out: &'a mut Vec<Packet>,
    pub t: u64,
    pub vlan: u16,
}

impl Gen<'_> {
    fn name(&mut self) -> String {
        if self.rng.below(100) < 3 {
            return LISTED[self.rng.below(LISTED.len() as u64) as usize].to_string();
        }
        let site = SITES[self.rng.below(SITES.len() as u64) as usize];
        format!("www.{site}{}.test", self.rng.below(50))
    }

    fn server(&mut self, client: &Endpoint, port: u16) -> Endpoint {
        Endpoint::server(100 + self.rng.below(4000) as u16, !client.v4, port)
    }

    fn conv<'b>(&'b mut self, client: Endpoint, server: Endpoint) -> TcpConv<'b> {
        let rtt = self.rng.range(1_000_000, 30_000_000);
        let isn = (self.rng.next_u64() as u32, self.rng.next_u64() as u32);
        TcpConv::new(self.out, client, server, self.vlan, self.t, rtt, isn)
    }

    pub fn session(&mut self, kind: Kind, client: Endpoint) {
        match kind {
            Kind::Http => self.http(client),
            Kind::Tls => self.tls(client),
            Kind::Dns => self.dns(client),
            Kind::Smtp => self.smtp(client),
            Kind::Quic => self.quic(client),
            Kind::Icmp => self.icmp(client),
            Kind::Imix => self.imix(client),
            Kind::Telnet => self.telnet(client),
        }
    }

    fn http(&mut self, client: Endpoint) {
        let server = self.server(&client, 80);
        let host = self.name();
        let path = format!(
            "/{}/item{}.html",
            ["static", "api", "img", "news"][self.rng.below(4) as usize],
            self.rng.below(1000)
        );
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64)\r\nAccept: */*\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n"
        );
        let body_len = self.rng.range(200, 48_000) as usize;
        let body = text_body(&mut self.rng, body_len);
        let style = self.rng.below(3);
        let response = match style {
            0 => {
                let mut r = "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n".to_string().into_bytes();
                for chunk in body.chunks(4096) {
                    r.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                    r.extend_from_slice(chunk);
                    r.extend_from_slice(b"\r\n");
                }
                r.extend_from_slice(b"0\r\n\r\n");
                r
            }
            1 => {
                let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
                let _ = gz.write_all(&body);
                let z = gz.finish().unwrap_or_default();
                let mut r = format!("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n", z.len()).into_bytes();
                r.extend_from_slice(&z);
                r
            }
            _ => {
                let mut r = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                )
                .into_bytes();
                r.extend_from_slice(&body);
                r
            }
        };
        let mut c = self.conv(client, server);
        c.handshake();
        c.send(true, request.as_bytes());
        c.send(false, &response);
        c.close();
    }

    fn tls(&mut self, client: Endpoint) {
        let server = self.server(&client, 443);
        let sni = self.name();
        let hello = client_hello(&mut self.rng, &sni);
        let mut server_flight = record(22, &self.rng.bytes_between(1500, 4500));
        server_flight.extend(record(20, &[1]));
        let rounds = self.rng.range(1, 4);
        let mut app: Vec<(bool, Vec<u8>)> = Vec::new();
        for _ in 0..rounds {
            app.push((true, record(23, &self.rng.bytes_between(100, 900))));
            app.push((false, record(23, &self.rng.bytes_between(500, 30_000))));
        }
        let mut c = self.conv(client, server);
        c.handshake();
        c.send(true, &hello);
        c.send(false, &server_flight);
        for (from_client, data) in &app {
            c.send(*from_client, data);
        }
        c.close();
    }

    fn dns(&mut self, client: Endpoint) {
        let server = Endpoint::server(DNS_SERVER, !client.v4, 53);
        let name = self.name();
        let id = self.rng.next_u64() as u16;
        let qtype = if client.v4 { 1 } else { 28 };
        let query = dns_message(id, &name, qtype, None);
        let answer_ip = self.rng.bytes(if qtype == 1 { 4 } else { 16 });
        let answer = dns_message(id, &name, qtype, Some(&answer_ip));
        let t = self.t;
        self.udp(&client, &server, &query, t);
        let rtt = self.rng.range(500_000, 20_000_000);
        self.udp(&server, &client, &answer, t + rtt);
    }

    fn udp(&mut self, from: &Endpoint, to: &Endpoint, payload: &[u8], ts_ns: u64) {
        let t = Transport::Udp {
            src_port: from.port,
            dst_port: to.port,
        };
        self.out.push(Packet {
            ts_ns,
            frame: frame(from, to, self.vlan, &t, payload),
        });
    }

    fn smtp(&mut self, client: Endpoint) {
        let server = self.server(&client, 25);
        let attachment = base64(&self.rng.bytes_between(1000, 20_000));
        let n = self.rng.below(1000);
        let message = format!(
            "From: user{n}@office.test\r\nTo: partner@supplier.test\r\nSubject: Quarterly figures {n}\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/mixed; boundary=\"b{n}\"\r\n\r\n--b{n}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
             Please find the figures attached.\r\n\r\n--b{n}\r\nContent-Type: application/pdf; name=\"figures{n}.pdf\"\r\n\
             Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"figures{n}.pdf\"\r\n\r\n{attachment}\r\n--b{n}--\r\n.\r\n"
        );
        let mut c = self.conv(client, server);
        c.handshake();
        c.send(false, b"220 mx.supplier.test ESMTP\r\n");
        c.send(true, b"EHLO pc.office.test\r\n");
        c.send(
            false,
            b"250-mx.supplier.test\r\n250-SIZE 10240000\r\n250 8BITMIME\r\n",
        );
        c.send(true, b"MAIL FROM:<user@office.test>\r\n");
        c.send(false, b"250 2.1.0 Ok\r\n");
        c.send(true, b"RCPT TO:<partner@supplier.test>\r\n");
        c.send(false, b"250 2.1.5 Ok\r\n");
        c.send(true, b"DATA\r\n");
        c.send(false, b"354 End data with <CR><LF>.<CR><LF>\r\n");
        c.send(true, message.as_bytes());
        c.send(false, b"250 2.0.0 Ok: queued\r\n");
        c.send(true, b"QUIT\r\n");
        c.send(false, b"221 2.0.0 Bye\r\n");
        c.close();
    }

    fn quic(&mut self, client: Endpoint) {
        let server = self.server(&client, 443);
        let dcid = self.rng.bytes(8);
        let scid = self.rng.bytes(8);
        // A real v1 client Initial (RFC 9000 17.2.2, protected per RFC 9001) around a
        // ClientHello, padded to 1200 bytes as clients must.
        let name = self.name();
        let hello = client_hello(&mut self.rng, &name);
        let mut buf = [0u8; 1500];
        let n =
            crate::web::quic::seal_initial(crate::web::quic::V1, &dcid, 0, &hello[5..], &mut buf)
                .unwrap_or(0);
        let initial = buf[..n].to_vec();
        let mut t = self.t;
        self.udp(&client, &server, &initial, t);
        let rtt = self.rng.range(2_000_000, 30_000_000);
        t += rtt / 2;
        for i in 0..self.rng.range(4, 40) {
            let from_client = i % 3 == 2;
            let len = if from_client {
                self.rng.range(40, 200)
            } else {
                self.rng.range(300, 1350)
            } as usize;
            let mut p = vec![0x40 | (self.rng.below(4) as u8)];
            p.extend_from_slice(if from_client { &scid } else { &dcid });
            p.extend(self.rng.bytes(len));
            let (a, b) = if from_client {
                (client, server)
            } else {
                (server, client)
            };
            self.udp(&a, &b, &p, t);
            t += self.rng.range(50_000, 2_000_000);
        }
    }

    fn icmp(&mut self, client: Endpoint) {
        let server = self.server(&client, 0);
        let ident = self.rng.next_u64() as u16;
        let (req, rep) = if client.v4 { (8, 0) } else { (128, 129) };
        let payload = self.rng.bytes(56);
        let mut t = self.t;
        for seq in 0..self.rng.range(1, 4) as u16 {
            let mut rest = [0u8; 4];
            rest[..2].copy_from_slice(&ident.to_be_bytes());
            rest[2..].copy_from_slice(&seq.to_be_bytes());
            let q = Transport::Icmp {
                icmp_type: req,
                code: 0,
                rest,
            };
            let r = Transport::Icmp {
                icmp_type: rep,
                code: 0,
                rest,
            };
            self.out.push(Packet {
                ts_ns: t,
                frame: frame(&client, &server, self.vlan, &q, &payload),
            });
            let rtt = self.rng.range(1_000_000, 30_000_000);
            self.out.push(Packet {
                ts_ns: t + rtt,
                frame: frame(&server, &client, self.vlan, &r, &payload),
            });
            t += 1_000_000_000;
        }
    }

    /// A UDP stream with the IMIX frame sizes 64/594/1518 (with FCS) at 7:4:1.
    fn imix(&mut self, client: Endpoint) {
        let server = self.server(&client, 5001);
        let headers = 14 + if client.v4 { 20 } else { 40 } + 8 + if self.vlan != 0 { 4 } else { 0 };
        let mut t = self.t;
        for _ in 0..self.rng.range(12, 120) {
            let frame_len = match self.rng.below(12) {
                0..=6 => 60,
                7..=10 => 590,
                _ => 1514,
            };
            let payload = vec![0u8; (frame_len as usize).saturating_sub(headers)];
            self.udp(&client, &server, &payload, t);
            t += self.rng.range(10_000, 500_000);
        }
    }

    fn telnet(&mut self, client: Endpoint) {
        let server = self.server(&client, 23);
        let mut c = self.conv(client, server);
        c.handshake();
        c.send(false, b"\xff\xfd\x18\xff\xfd\x20login: ");
        c.send(true, b"admin\r\n");
        c.close();
    }

    /// A scanner on the WAN knocking on a LAN host: SYN and its retransmissions.
    pub fn inbound_probe(&mut self, client: Endpoint) {
        let port = [22u16, 23, 445, 3389, 8080][self.rng.below(5) as usize];
        let target = client.with_port(port);
        let scanner = Endpoint::server(
            60_000 + self.rng.below(100) as u16,
            !client.v4,
            40_000 + self.rng.below(20_000) as u16,
        );
        let seq = self.rng.next_u64() as u32;
        let mut t = self.t;
        for _ in 0..3 {
            let syn = Transport::Tcp {
                src_port: scanner.port,
                dst_port: port,
                seq,
                ack: 0,
                flags: SYN,
                window: 1024,
                options: &[],
            };
            self.out.push(Packet {
                ts_ns: t,
                frame: frame(&scanner, &target, self.vlan, &syn, &[]),
            });
            t += 1_000_000_000;
        }
    }
}

fn text_body(rng: &mut Rng, len: usize) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "<p>", "office", "security", "gateway", "report", "the", "and", "quarter", "</p>\n",
        "network", "safe", "mimamori",
    ];
    let mut out = Vec::with_capacity(len + 16);
    while out.len() < len {
        out.extend_from_slice(WORDS[rng.below(WORDS.len() as u64) as usize].as_bytes());
        out.push(b' ');
    }
    out.truncate(len);
    out
}

fn record(content_type: u8, body: &[u8]) -> Vec<u8> {
    let mut r = vec![content_type, 3, 3];
    r.extend_from_slice(&(body.len() as u16).to_be_bytes());
    r.extend_from_slice(body);
    r
}

/// A TLS 1.3-style ClientHello with SNI and ALPN (RFC 8446 4.1.2, RFC 6066 3, RFC 7301).
pub fn client_hello(rng: &mut Rng, sni: &str) -> Vec<u8> {
    shaped_client_hello(rng, sni, HelloShape::default())
}

/// How a built ClientHello looks on the wire, as modern browsers send them.
#[derive(Clone, Copy, Debug, Default)]
pub struct HelloShape {
    /// A `key_share` of this many bytes before the SNI (X25519MLKEM768 is ~1,220).
    pub key_share_before_sni: usize,
    /// An `encrypted_client_hello` extension (outer form) of this many payload bytes.
    pub ech: Option<usize>,
}

/// A ClientHello record of `shape` naming `sni`.
pub fn shaped_client_hello(rng: &mut Rng, sni: &str, shape: HelloShape) -> Vec<u8> {
    let mut ext = Vec::new();
    if shape.key_share_before_sni > 0 {
        let n = shape.key_share_before_sni;
        // key_share: list length, one entry (group 0x11ec, key length, key).
        ext.extend_from_slice(&51u16.to_be_bytes());
        ext.extend_from_slice(&((n + 6) as u16).to_be_bytes());
        ext.extend_from_slice(&((n + 4) as u16).to_be_bytes());
        ext.extend_from_slice(&[0x11, 0xec]);
        ext.extend_from_slice(&(n as u16).to_be_bytes());
        ext.extend(rng.bytes(n));
    }
    let name = sni.as_bytes();
    ext.extend_from_slice(&0u16.to_be_bytes());
    ext.extend_from_slice(&((name.len() + 5) as u16).to_be_bytes());
    ext.extend_from_slice(&((name.len() + 3) as u16).to_be_bytes());
    ext.push(0);
    ext.extend_from_slice(&(name.len() as u16).to_be_bytes());
    ext.extend_from_slice(name);
    let alpn: &[&[u8]] = &[b"h2", b"http/1.1"];
    let list: Vec<u8> = alpn
        .iter()
        .flat_map(|p| std::iter::once(p.len() as u8).chain(p.iter().copied()))
        .collect();
    ext.extend_from_slice(&16u16.to_be_bytes());
    ext.extend_from_slice(&((list.len() + 2) as u16).to_be_bytes());
    ext.extend_from_slice(&(list.len() as u16).to_be_bytes());
    ext.extend_from_slice(&list);
    ext.extend_from_slice(&[0, 43, 0, 3, 2, 3, 4]); // supported_versions: TLS 1.3
    if let Some(n) = shape.ech {
        // Outer ECH: type 0, cipher suite, config id, enc (32), payload (n).
        ext.extend_from_slice(&0xfe0du16.to_be_bytes());
        ext.extend_from_slice(&((n + 42) as u16).to_be_bytes());
        ext.extend_from_slice(&[0, 0, 1, 0, 1, 0x2a, 0, 32]);
        ext.extend(rng.bytes(32));
        ext.extend_from_slice(&(n as u16).to_be_bytes());
        ext.extend(rng.bytes(n));
    }
    let mut body = vec![3, 3];
    body.extend(rng.bytes(32));
    body.push(32);
    body.extend(rng.bytes(32));
    let suites = [0x13u8, 0x01, 0x13, 0x02, 0x13, 0x03, 0xc0, 0x2b, 0xc0, 0x2f];
    body.extend_from_slice(&(suites.len() as u16).to_be_bytes());
    body.extend_from_slice(&suites);
    body.extend_from_slice(&[1, 0]);
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&ext);
    let mut hs = vec![1, 0, (body.len() >> 8) as u8, body.len() as u8];
    hs[1] = (body.len() >> 16) as u8;
    hs.extend_from_slice(&body);
    let mut rec = vec![22, 3, 1];
    rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    rec.extend_from_slice(&hs);
    rec
}

/// A DNS query, or its answer when `answer` holds the address (RFC 1035 4.1).
pub fn dns_message(id: u16, name: &str, qtype: u16, answer: Option<&[u8]>) -> Vec<u8> {
    let mut m = Vec::with_capacity(64);
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(if answer.is_some() {
        &[0x81, 0x80]
    } else {
        &[0x01, 0x00]
    });
    m.extend_from_slice(&[0, 1, 0, u8::from(answer.is_some()), 0, 0, 0, 0]);
    for label in name.split('.').filter(|l| !l.is_empty()) {
        m.push(label.len().min(63) as u8);
        m.extend_from_slice(&label.as_bytes()[..label.len().min(63)]);
    }
    m.push(0);
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&[0, 1]);
    if let Some(addr) = answer {
        m.extend_from_slice(&[0xc0, 0x0c]);
        m.extend_from_slice(&qtype.to_be_bytes());
        m.extend_from_slice(&[0, 1, 0, 0, 1, 0x2c]);
        m.extend_from_slice(&(addr.len() as u16).to_be_bytes());
        m.extend_from_slice(addr);
    }
    m
}

fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len() * 4 / 3 + data.len() / 57 * 2 + 4);
    for (i, c) in data.chunks(3).enumerate() {
        if i > 0 && i % 19 == 0 {
            out.push_str("\r\n"); // 76-character lines (RFC 2045)
        }
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for k in 0..4 {
            if k <= c.len() {
                out.push(T[(n >> (18 - 6 * k)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

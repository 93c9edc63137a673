//! What the gateway sends when it blocks a name: the block (or quarantine) page as the
//! server's reply to an HTTP request, and a sinkhole answer to a DNS query. Frames are
//! written into the caller's buffer; nothing is allocated.

use super::names::Question;
use crate::packet::PacketMeta;
use crate::reject::reply_headers;
use crate::wire::emit::{self, Ip, L2, Transport};
use crate::wire::tcp::flags::{ACK, FIN, PSH, RST};
use std::io::Write;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Largest page body (the page and its headers fit one Ethernet frame).
pub const PAGE_MAX: usize = 1200;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageKind {
    Blocked,
    Quarantine,
}

/// Writes the HTTP 403 response (headers and bilingual HTML) into `out`; returns its length.
pub fn page(kind: PageKind, name: &str, category: &str, desk: &str, out: &mut [u8]) -> usize {
    let mut body = [0u8; PAGE_MAX];
    let esc = |s: &str| -> String {
        s.chars()
            .filter(|c| c.is_ascii_graphic() || *c == ' ' || !c.is_ascii())
            .map(|c| match c {
                '<' | '>' | '&' | '"' | '\'' => '_',
                c => c,
            })
            .take(96)
            .collect()
    };
    let (name, category, desk) = (esc(name), esc(category), esc(desk));
    let mut w = &mut body[..];
    let _ = match kind {
        PageKind::Blocked => writeln!(
            w,
            "<!doctype html><html lang=\"ja\"><meta charset=\"utf-8\"><title>403 Blocked</title>\
             <h1>このサイトはブロックされました</h1>\
             <p>{name} はカテゴリ「{category}」に該当するため、社内のポリシーによりブロックされています。</p>\
             <h1>This site is blocked</h1>\
             <p>{name} is in the category \"{category}\", which your organisation's policy blocks.</p>\
             <p>お問い合わせ / Questions: {desk}</p></html>"
        ),
        PageKind::Quarantine => writeln!(
            w,
            "<!doctype html><html lang=\"ja\"><meta charset=\"utf-8\"><title>403 Quarantined</title>\
             <h1>この端末は隔離されています</h1>\
             <p>この端末からマルウェアの通信が検知されたため、ネットワークへの接続を制限しています。</p>\
             <h1>This computer is quarantined</h1>\
             <p>Traffic from this computer matched malware callbacks ({category}), so its network access is restricted.</p>\
             <p>お問い合わせ / Contact: {desk}</p></html>"
        ),
    };
    let body_len = PAGE_MAX - w.len();
    let mut o = &mut out[..];
    let status = "403 Forbidden";
    if write!(
        o,
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {body_len}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n\r\n"
    )
    .is_err()
        || o.write_all(&body[..body_len]).is_err()
    {
        return 0;
    }
    let left = o.len();
    out.len() - left
}

/// The page as the server's answer to the client's request `m` (seq = what the client
/// acknowledged, ack = past the request), with FIN: the client reads the page and the
/// connection is over.
pub fn page_to_client(m: &PacketMeta, page: &[u8], out: &mut [u8]) -> Option<usize> {
    if m.tunnels > 0 {
        return None; // see reject::build
    }
    let (l2, ip) = reply_headers(m);
    emit::build(
        out,
        &l2,
        &ip,
        &Transport::Tcp {
            src_port: m.dst_port,
            dst_port: m.src_port,
            seq: m.tcp_ack,
            ack: m.tcp_seq.wrapping_add(u32::from(m.payload_len)),
            flags: ACK | PSH | FIN,
            window: 0xffff,
            options: &[],
        },
        page,
    )
}

/// A RST from the client to the server in place of the request `m`, so the server stops
/// waiting for it.
pub fn rst_to_server(m: &PacketMeta, out: &mut [u8]) -> Option<usize> {
    if m.tunnels > 0 {
        return None;
    }
    emit::build(
        out,
        &L2 {
            src: m.src_mac,
            dst: m.dst_mac,
            vlan_outer: m.vlan_outer,
            vlan_inner: m.vlan_inner,
        },
        &Ip {
            src: m.src,
            dst: m.dst,
            v4: m.is_v4(),
            ttl: 64,
            ident: 0,
        },
        &Transport::Tcp {
            src_port: m.src_port,
            dst_port: m.dst_port,
            seq: m.tcp_seq,
            ack: m.tcp_ack,
            flags: RST | ACK,
            window: 0,
            options: &[],
        },
        &[],
    )
}

/// The sinkhole answer to the DNS query `m` (its UDP payload is `query`): NXDOMAIN, or an
/// A/AAAA record with the sinkhole address when one is set for the query's type.
pub fn dns_sinkhole(
    m: &PacketMeta,
    query: &[u8],
    q: &Question,
    v4: Option<Ipv4Addr>,
    v6: Option<Ipv6Addr>,
    out: &mut [u8],
) -> Option<usize> {
    if m.tunnels > 0 {
        return None;
    }
    let mut msg = [0u8; 512];
    let qlen = q.end;
    if qlen > 512 - 28 {
        return None;
    }
    msg[..qlen].copy_from_slice(query.get(..qlen)?);
    let rdata: Option<([u8; 16], usize)> = match (q.qtype, v4, v6) {
        (1, Some(a), _) => {
            let mut b = [0u8; 16];
            b[..4].copy_from_slice(&a.octets());
            Some((b, 4))
        }
        (28, _, Some(a)) => Some((a.octets(), 16)),
        _ => None,
    };
    // QR, opcode 0, AA off, keep RD; RA on. RCODE 3 (NXDOMAIN) when answering nothing in
    // NXDOMAIN mode, 0 (NOERROR, no data) when an address mode has none for this type.
    msg[2] = 0x80 | (msg[2] & 0x01);
    let nx = v4.is_none() && v6.is_none();
    msg[3] = 0x80 | if nx { 3 } else { 0 };
    msg[6..12].copy_from_slice(&[0, 0, 0, 0, 0, 0]);
    let mut len = qlen;
    if let Some((addr, n)) = rdata {
        msg[7] = 1;
        let rr = [
            0xc0,
            12, // the question's name
            0,
            if n == 4 { 1 } else { 28 },
            0,
            1, // type, class IN
            0,
            0,
            0,
            60, // TTL
            0,
            n as u8,
        ];
        msg[len..len + rr.len()].copy_from_slice(&rr);
        len += rr.len();
        msg[len..len + n].copy_from_slice(&addr[..n]);
        len += n;
    }
    let (l2, ip) = reply_headers(m);
    emit::build(
        out,
        &l2,
        &ip,
        &Transport::Udp {
            src_port: m.dst_port,
            dst_port: m.src_port,
        },
        &msg[..len],
    )
}

//! Every malformed-packet class is a typed error, counted per reason, and dropped.

use mimamori_pipelines::synth::{self, Endpoint};
use mimamori_pipelines::wire::emit::Transport;
use mimamori_pipelines::wire::tcp::flags::{ACK, SYN};
use mimamori_pipelines::{Classifier, DropReason, ParseError, Policy, Side, Verdict, parse};
use std::sync::Arc;

fn tcp_v4() -> Vec<u8> {
    let c = Endpoint::client(10, false, 40000);
    let s = Endpoint::server(7, false, 80);
    synth::frame(
        &c,
        &s,
        0,
        &Transport::Tcp {
            src_port: 40000,
            dst_port: 80,
            seq: 1,
            ack: 0,
            flags: SYN,
            window: 100,
            options: &[2, 4, 5, 0xb4],
        },
        b"",
    )
}

fn udp_v6() -> Vec<u8> {
    let c = Endpoint::client(10, true, 5353);
    let s = Endpoint::server(7, true, 53);
    synth::frame(
        &c,
        &s,
        0,
        &Transport::Udp {
            src_port: 5353,
            dst_port: 53,
        },
        b"0123456789abcdef",
    )
}

/// Recomputes the IPv4 header checksum after a test edited the header.
fn fix_ipv4_checksum(f: &mut [u8], l3: usize) {
    let ihl = usize::from(f[l3] & 0x0f) * 4;
    f[l3 + 10] = 0;
    f[l3 + 11] = 0;
    let end = (l3 + ihl).min(f.len());
    let c = !mimamori_pipelines::wire::checksum::fold(mimamori_pipelines::wire::checksum::sum(
        &f[l3..end],
    ));
    f[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
}

fn expect(frame: &[u8], want: ParseError) {
    assert_eq!(parse(frame).map(|_| ()), Err(want), "frame {frame:02x?}");
    let mut c = Classifier::new(Arc::new(Policy::default()));
    assert_eq!(
        c.process(frame, Side::Lan, 1),
        Verdict::Drop(DropReason::Malformed)
    );
    assert_eq!(c.stats.parse_errors.get(want), 1);
    assert_eq!(c.stats.parse_errors.total(), 1);
}

#[test]
fn good_frames_parse() {
    let m = parse(&tcp_v4()).unwrap();
    assert_eq!((m.src_port, m.dst_port, m.tcp_flags), (40000, 80, SYN));
    let m = parse(&udp_v6()).unwrap();
    assert_eq!((m.src_port, m.dst_port, m.payload_len), (5353, 53, 16));
}

#[test]
fn truncated_headers() {
    let f = tcp_v4();
    expect(&f[..10], ParseError::EthernetTruncated);
    expect(&f[..14 + 12], ParseError::Ipv4Truncated);
    // IP total length says more than the frame holds.
    expect(&f[..f.len() - 4], ParseError::Ipv4Truncated);
    let mut short = f.clone();
    // Total length covering only 10 bytes of TCP.
    short[16..18].copy_from_slice(&30u16.to_be_bytes());
    fix_ipv4_checksum(&mut short, 14);
    expect(&short, ParseError::TcpTruncated);
    let g = udp_v6();
    expect(&g[..14 + 30], ParseError::Ipv6Truncated);
    expect(&g[..g.len() - 3], ParseError::Ipv6BadPayloadLength);
    let mut u = g.clone();
    u[18..20].copy_from_slice(&4u16.to_be_bytes()); // payload length 4: UDP header cut
    expect(&u[..14 + 44], ParseError::UdpTruncated);
}

#[test]
fn bad_ip_header_fields() {
    let f = tcp_v4();
    let mut v = f.clone();
    v[14] = 0x65;
    expect(&v, ParseError::Ipv4BadVersion);
    let mut ihl = f.clone();
    ihl[14] = 0x44;
    expect(&ihl, ParseError::Ipv4BadIhl);
    let mut tl = f.clone();
    tl[16..18].copy_from_slice(&10u16.to_be_bytes());
    fix_ipv4_checksum(&mut tl, 14);
    expect(&tl, ParseError::Ipv4BadTotalLength);
    let mut ck = f.clone();
    ck[24] ^= 0xff;
    expect(&ck, ParseError::Ipv4BadChecksum);
    let mut v6 = udp_v6();
    v6[14] = 0x45;
    expect(&v6, ParseError::Ipv6BadVersion);
}

/// An IPv4 packet with the given option bytes (padded by the caller to a multiple of 4).
fn with_ip_options(opts: &[u8]) -> Vec<u8> {
    let f = tcp_v4();
    let mut out = f[..14].to_vec();
    let mut ip = f[14..34].to_vec();
    ip[0] = 0x45 + (opts.len() / 4) as u8;
    let total = 20 + opts.len() + (f.len() - 34);
    ip[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    out.extend_from_slice(&ip);
    out.extend_from_slice(opts);
    out.extend_from_slice(&f[34..]);
    fix_ipv4_checksum(&mut out, 14);
    out
}

#[test]
fn bad_option_lengths() {
    parse(&with_ip_options(&[1, 1, 1, 0])).expect("NOPs and EOL are fine");
    parse(&with_ip_options(&[7, 7, 4, 0, 0, 0, 0, 0])).expect("record route with room");
    expect(
        &with_ip_options(&[7, 1, 0, 0]),
        ParseError::Ipv4BadOptionLength,
    );
    expect(
        &with_ip_options(&[7, 9, 0, 0]),
        ParseError::Ipv4BadOptionLength,
    );
    expect(
        &with_ip_options(&[1, 1, 1, 7]),
        ParseError::Ipv4BadOptionLength,
    );

    let c = Endpoint::client(10, false, 1);
    let s = Endpoint::server(7, false, 2);
    let tcp = |opts: &[u8]| {
        synth::frame(
            &c,
            &s,
            0,
            &Transport::Tcp {
                src_port: 1,
                dst_port: 2,
                seq: 0,
                ack: 0,
                flags: ACK,
                window: 1,
                options: opts,
            },
            b"",
        )
    };
    parse(&tcp(&[2, 4, 5, 0xb4, 1, 3, 3, 7])).expect("MSS and window scale");
    expect(
        &tcp(&[2, 3, 5, 0, 0, 0, 0, 0]),
        ParseError::TcpBadOptionLength,
    );
    expect(&tcp(&[8, 1, 0, 0]), ParseError::TcpBadOptionLength);
    expect(&tcp(&[1, 1, 30, 40]), ParseError::TcpBadOptionLength);
    expect(
        &tcp(&[5, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
        ParseError::TcpBadOptionLength,
    );
}

#[test]
fn bad_tcp_data_offset() {
    let f = tcp_v4();
    let mut d = f.clone();
    d[14 + 20 + 12] = 0x40; // 4 words
    expect(&d, ParseError::TcpBadDataOffset);
    let mut d = f.clone();
    d[14 + 20 + 12] = 0xf0; // 60 bytes, more than the segment
    expect(&d, ParseError::TcpTruncated);
}

#[test]
fn bad_udp_length() {
    let mut g = udp_v6();
    g[14 + 40 + 4..14 + 40 + 6].copy_from_slice(&7u16.to_be_bytes());
    expect(&g, ParseError::UdpBadLength);
    let mut g = udp_v6();
    g[14 + 40 + 4..14 + 40 + 6].copy_from_slice(&200u16.to_be_bytes());
    expect(&g, ParseError::UdpBadLength);
}

#[test]
fn vlan_and_arp() {
    let mut tagged = tcp_v4()[..12].to_vec();
    tagged.extend_from_slice(&[0x81, 0x00]);
    expect(&tagged[..14], ParseError::VlanTruncated);
    let mut three = tcp_v4()[..12].to_vec();
    for _ in 0..3 {
        three.extend_from_slice(&[0x81, 0x00, 0x00, 0x05]);
    }
    three.extend_from_slice(&tcp_v4()[12..]);
    expect(&three, ParseError::TooManyVlanTags);
    let mut qinq = tcp_v4()[..12].to_vec();
    qinq.extend_from_slice(&[0x88, 0xa8, 0x00, 0x64, 0x81, 0x00, 0x00, 0x07]);
    qinq.extend_from_slice(&tcp_v4()[12..]);
    let m = parse(&qinq).unwrap();
    assert_eq!((m.vlan_outer, m.vlan_inner, m.dst_port), (100, 7, 80));

    let mut arp = vec![0xff; 6];
    arp.extend_from_slice(&[2, 0, 0, 0, 0, 1, 0x08, 0x06]);
    arp.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    expect(&arp, ParseError::ArpTruncated);
    arp.extend_from_slice(&[0; 20]);
    parse(&arp).expect("a whole ARP request");
    let mut bad = arp.clone();
    bad[14 + 4] = 8; // hardware length 8
    expect(&bad, ParseError::ArpUnsupported);
}

#[test]
fn ipv6_extension_headers() {
    let g = udp_v6();
    // Insert extension headers between the fixed header and UDP.
    let with_ext = |chain: &[(u8, Vec<u8>)], first: u8| {
        let mut out = g[..14 + 40].to_vec();
        let mut body = Vec::new();
        for (i, (_, h)) in chain.iter().enumerate() {
            let mut h = h.clone();
            h[0] = chain.get(i + 1).map_or(17, |c| c.0);
            body.extend_from_slice(&h);
        }
        body.extend_from_slice(&g[14 + 40..]);
        out[14 + 6] = first;
        out[18..20].copy_from_slice(&(body.len() as u16).to_be_bytes());
        out.extend_from_slice(&body);
        out
    };
    let hop = (0u8, vec![0, 0, 1, 4, 0, 0, 0, 0]);
    let dst = (60u8, vec![0, 0, 1, 4, 0, 0, 0, 0]);
    let m = parse(&with_ext(&[hop.clone(), dst.clone()], 0)).unwrap();
    assert_eq!((m.proto, m.dst_port), (17, 53));
    expect(
        &with_ext(&[dst.clone(), hop.clone()], 60),
        ParseError::Ipv6BadExtOrder,
    );
    let many: Vec<_> = (0..9).map(|_| dst.clone()).collect();
    expect(&with_ext(&many, 60), ParseError::Ipv6TooManyExtHeaders);
    let long = (60u8, vec![0, 9, 1, 4, 0, 0, 0, 0]); // claims 80 bytes
    expect(&with_ext(&[long], 60), ParseError::Ipv6ExtTruncated);
}

/// An IPv4 fragment of a UDP datagram: `offset` in bytes, `data` the fragment's bytes.
fn v4_fragment(ident: u16, offset: usize, more: bool, data: &[u8]) -> Vec<u8> {
    let f = tcp_v4();
    let mut out = f[..14].to_vec();
    let mut ip = f[14..34].to_vec();
    ip[2..4].copy_from_slice(&((20 + data.len()) as u16).to_be_bytes());
    ip[4..6].copy_from_slice(&ident.to_be_bytes());
    let field = (offset / 8) as u16 | if more { 0x2000 } else { 0 };
    ip[6..8].copy_from_slice(&field.to_be_bytes());
    ip[9] = 17;
    out.extend_from_slice(&ip);
    out.extend_from_slice(data);
    fix_ipv4_checksum(&mut out, 14);
    out
}

#[test]
fn fragments_tiny_overlapping_and_headless() {
    let mut udp_head = vec![0x9c, 0x40, 0x00, 0x35, 0x00, 0x30, 0, 0];
    udp_head.extend_from_slice(&[0xaa; 16]);
    expect(
        &v4_fragment(1, 0, true, &[0x9c, 0x40]),
        ParseError::TinyFragment,
    );
    expect(
        &v4_fragment(1, 65528, false, &[0; 16]),
        ParseError::Ipv4BadFragment,
    );

    let mut c = Classifier::new(Arc::new(Policy::default()));
    let mut lan = |f: &[u8]| c.process(f, Side::Lan, 1);
    assert!(
        lan(&v4_fragment(9, 0, true, &udp_head)).is_forward(),
        "head opens the flow"
    );
    assert!(
        lan(&v4_fragment(9, 24, true, &[0xbb; 16])).is_forward(),
        "next piece follows it"
    );
    assert_eq!(
        lan(&v4_fragment(9, 32, false, &[0xcc; 16])),
        Verdict::Drop(DropReason::FragmentOverlap)
    );
    assert_eq!(
        lan(&v4_fragment(9, 48, false, &[0xcc; 8])),
        Verdict::Drop(DropReason::FragmentOverlap),
        "the datagram stays poisoned"
    );
    assert_eq!(
        lan(&v4_fragment(77, 64, false, &[0xdd; 8])),
        Verdict::Drop(DropReason::FragmentNoHead)
    );
    let r = c.report();
    assert_eq!((r.fragments.overlaps, r.fragments.no_head), (2, 1));
    assert_eq!(r.dropped.get("fragment_overlap"), Some(&2));
}

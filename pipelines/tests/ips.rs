//! The signature inspector on hand-built traffic, behind the classifier as on the data
//! path: reassembly closes the evasions (segmentation, reordering, overlap,
//! fragmentation), alerts come once per message, IPS mode drops and rejects, IDS mode
//! only alerts, and the inspector's flow state lives and dies with the classifier's flow.

use mimamori_pipelines::inspect::IpsSettings;
use mimamori_pipelines::policy::{IpsConfig, IpsMode};
use mimamori_pipelines::synth::{self, Endpoint};
use mimamori_pipelines::wire::checksum;
use mimamori_pipelines::wire::tcp::flags::{ACK, FIN, RST};
use mimamori_pipelines::{DropReason, Side, parse};
use std::sync::Arc;

mod ips_common;
use ips_common::*;

#[test]
fn a_token_split_over_segments_alerts_once() {
    for v6 in [false, true] {
        let mut ips = inspector(IpsMode::Ids);
        let mut c = Conn::new(v6);
        let mut f = c.handshake();
        f.push(c.data(true, 0, b"hello EVIL"));
        f.push(c.data(true, 10, b"TOKEN world"));
        f.push(c.data(true, 21, b" more bytes"));
        let (_, sids) = run(&mut ips, &f);
        assert_eq!(sids, vec![100], "v6={v6}");
    }
}

#[test]
fn out_of_order_segments_are_inspected_in_order() {
    let mut ips = inspector(IpsMode::Ids);
    let mut c = Conn::new(false);
    let mut f = c.handshake();
    f.push(c.data(true, 4, b"TOKEN"));
    f.push(c.data(true, 0, b"EVIL"));
    let (_, sids) = run(&mut ips, &f);
    assert_eq!(sids, vec![100]);
    assert_eq!(ips.stats().stream.out_of_order, 1);
}

#[test]
fn an_overlapping_rewrite_cannot_hide_or_forge_a_token() {
    // First data wins: the receiver keeps "EVILTOKEN"; the rewrite is counted.
    let mut ips = inspector(IpsMode::Ids);
    let mut c = Conn::new(false);
    let mut f = c.handshake();
    f.push(c.data(true, 4, b"TOKEN"));
    f.push(c.data(true, 0, b"EVILxxxxx"));
    let (_, sids) = run(&mut ips, &f);
    assert_eq!(sids, vec![100]);
    assert_eq!(ips.stats().stream.overlap_diff, 1);
}

#[test]
fn http_request_split_over_segments_matches_its_uri_once() {
    let mut ips = inspector(IpsMode::Ids);
    let mut c = Conn::new(false);
    let mut f = c.handshake();
    f.push(c.data(true, 0, b"GET /adm"));
    f.push(c.data(true, 8, b"in/secret HTTP/1.1\r\nHost: a.test\r\n"));
    f.push(c.data(true, 42, b"\r\n"));
    let (_, sids) = run(&mut ips, &f);
    assert_eq!(sids, vec![103]);
    assert_eq!(ips.stats().http_requests, 1);
    // The next request of the same connection is a new message: it alerts again.
    f.clear();
    f.push(c.data(
        false,
        0,
        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
    ));
    f.push(c.data(
        true,
        44,
        b"GET /admin/secret HTTP/1.1\r\nHost: a.test\r\n\r\n",
    ));
    let (_, sids) = run(&mut ips, &f);
    assert_eq!(sids, vec![103]);
}

#[test]
fn ips_mode_drops_the_flow_and_ids_mode_only_alerts() {
    for (mode, want) in [(IpsMode::Ips, DROP), (IpsMode::Ids, PASS)] {
        let mut ips = inspector(mode);
        let mut c = Conn::new(false);
        let mut f = c.handshake();
        f.push(c.data(true, 0, b"xx DROPME xx"));
        f.push(c.data(true, 12, b"harmless"));
        let (verdicts, sids) = run(&mut ips, &f);
        assert_eq!(sids, vec![101]);
        assert_eq!(verdicts[3], want, "{mode:?}");
        // The rest of the flow follows in IPS mode, dropped by the classifier itself.
        assert_eq!(verdicts[4], want, "{mode:?}");
        let flow_drops = ips.cls.stats.dropped[DropReason::Signature as usize];
        assert_eq!(flow_drops, if mode == IpsMode::Ips { 2 } else { 0 });
        // In IPS mode the blocked flow's last packet is not inspected again.
        let inspected = if mode == IpsMode::Ips { 4 } else { 5 };
        assert_eq!(ips.stats().inspected, inspected, "{mode:?}");
    }
}

#[test]
fn reject_sends_a_reset_both_ways() {
    let mut ips = inspector(IpsMode::Ips);
    let mut c = Conn::new(false);
    let f = c.handshake();
    run(&mut ips, &f);
    let (frame, side) = c.data(true, 0, b"REJECTME");
    let m = parse(&frame).unwrap();
    let v = ips.cls.process(&frame, side, T0);
    assert_eq!(v, DROP);
    assert_eq!(ips.stats().rejected, 1);
    let sent: Vec<_> = ips
        .cls
        .injects
        .iter()
        .map(|(f, s)| (parse(f).unwrap(), s))
        .collect();
    assert_eq!(sent.len(), 2);
    for (rm, s) in &sent {
        assert!(rm.tcp_flags & RST != 0);
        if *s == Side::Lan {
            assert_eq!((rm.src, rm.dst), (m.dst, m.src));
        } else {
            assert_eq!((rm.src, rm.dst), (m.src, m.dst));
        }
    }
}

#[test]
fn pass_rules_silence_alerts_and_disabled_sids_are_quiet() {
    let mut ips = inspector(IpsMode::Ids);
    let mut c = Conn::new(false);
    let mut f = c.handshake();
    f.push(c.data(true, 0, b"TRUSTED EVILTOKEN"));
    let (_, sids) = run(&mut ips, &f);
    assert!(sids.is_empty(), "{sids:?}");

    // A disabled pass rule silences nothing.
    let mut ips = inspector(IpsMode::Ids);
    ips.set_config(IpsConfig {
        disabled_sids: vec![104],
        ..Default::default()
    });
    let mut c = Conn::new(false);
    let mut f = c.handshake();
    f.push(c.data(true, 0, b"TRUSTED EVILTOKEN"));
    let (_, mut sids) = run(&mut ips, &f);
    sids.sort_unstable();
    assert_eq!(sids, vec![100, 105]);

    let mut ips = inspector(IpsMode::Ips);
    ips.set_config(IpsConfig {
        mode: IpsMode::Ips,
        disabled_sids: vec![101],
        ..Default::default()
    });
    let mut c = Conn::new(false);
    let mut f = c.handshake();
    f.push(c.data(true, 0, b"DROPME"));
    let (verdicts, sids) = run(&mut ips, &f);
    assert!(sids.is_empty());
    assert_eq!(verdicts[3], PASS);
}

#[test]
fn a_closed_flow_frees_its_reassembly_memory() {
    let mut ips = inspector(IpsMode::Ids);
    let mut c = Conn::new(false);
    let mut f = c.handshake();
    f.push(c.data(true, 0, &[b'a'; 1000]));
    run(&mut ips, &f);
    assert!(ips.stream_memory() > 0);
    let fin = c.frame(true, FIN | ACK, c.cseq + 1000, b"");
    let fin2 = c.frame(false, FIN | ACK, c.sseq, b"");
    run(&mut ips, &[(fin, Side::Lan), (fin2, Side::Wan)]);
    assert_eq!(ips.stream_memory(), 0);
}

/// Cuts a UDP/IPv4 frame's IP payload into two fragments at `at` (a multiple of 8).
fn fragment_v4(frame: &[u8], at: usize) -> [Vec<u8>; 2] {
    let l3 = 14;
    let ihl = usize::from(frame[l3] & 0x0f) * 4;
    let body = &frame[l3 + ihl..];
    let piece = |data: &[u8], offset: usize, more: bool| {
        let mut f = frame[..l3 + ihl].to_vec();
        f.extend_from_slice(data);
        let total = (ihl + data.len()) as u16;
        f[l3 + 2..l3 + 4].copy_from_slice(&total.to_be_bytes());
        let fo = (offset / 8) as u16 | if more { 0x2000 } else { 0 };
        f[l3 + 6..l3 + 8].copy_from_slice(&fo.to_be_bytes());
        f[l3 + 10..l3 + 12].copy_from_slice(&[0, 0]);
        let c = !checksum::fold(checksum::sum(&f[l3..l3 + ihl]));
        f[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
        f
    };
    [piece(&body[..at], 0, true), piece(&body[at..], at, false)]
}

/// The same for IPv6: a fragment header after the fixed header.
fn fragment_v6(frame: &[u8], at: usize) -> [Vec<u8>; 2] {
    let l3 = 14;
    let next = frame[l3 + 6];
    let body = &frame[l3 + 40..];
    let piece = |data: &[u8], offset: usize, more: bool| {
        let mut f = frame[..l3 + 40].to_vec();
        f[l3 + 6] = 44;
        let plen = (8 + data.len()) as u16;
        f[l3 + 4..l3 + 6].copy_from_slice(&plen.to_be_bytes());
        let fo = (offset as u16) | u16::from(more);
        f.extend_from_slice(&[next, 0]);
        f.extend_from_slice(&fo.to_be_bytes());
        f.extend_from_slice(&0x1234_5678u32.to_be_bytes());
        f.extend_from_slice(data);
        f
    };
    [piece(&body[..at], 0, true), piece(&body[at..], at, false)]
}

#[test]
fn a_token_split_over_ip_fragments_is_found() {
    for v6 in [false, true] {
        let mut ips = inspector(IpsMode::Ids);
        let c = Endpoint::client(3, v6, 5353);
        let s = Endpoint::server(4, v6, 9999);
        // 8 bytes of UDP header + 4 of payload in the first fragment: "FRAG" | "TOKEN".
        let whole = synth::udp_frame(&c, &s, b"FRAGTOKEN and the rest");
        let [a, b] = if v6 {
            fragment_v6(&whole, 16)
        } else {
            fragment_v4(&whole, 16)
        };
        // Nothing to inspect until the datagram is whole.
        let (_, sids) = run(&mut ips, &[(a, Side::Lan), (b, Side::Lan)]);
        assert_eq!(sids, vec![106], "v6={v6}");
        assert_eq!(ips.stats().defrag.reassembled, 1);
    }
}

#[test]
fn http_header_buffers_and_urilen() {
    let rules = r#"
alert http any any -> any any (msg:"names"; http.header_names; content:"|0d 0a|Host|0d 0a|X-Evil|0d 0a|"; content:"Content-Length|0d 0a 0d 0a|"; endswith; sid:1;)
alert http any any -> any any (msg:"content type"; http.content_type; content:"application/x-evil"; bsize:18; sid:2;)
alert http any any -> any any (msg:"long uri"; urilen:>20; sid:3;)
alert http any any -> any any (msg:"short uri"; urilen:<5; sid:4;)
alert http any any -> any any (msg:"request line"; http.request_line; content:"POST /upload/x.php?a=bbbbbbbb HTTP/1.1"; bsize:38; sid:5;)
alert http any any -> any any (msg:"server"; http.server; content:"EvilServer/1.0"; sid:6;)
alert http any any -> any any (msg:"stat msg"; http.stat_msg; content:"Not Here"; sid:7;)
alert http any any -> any any (msg:"start"; http.start; content:"|0d 0a 0d 0a|"; endswith; sid:8;)
alert http any any -> any any (msg:"protocol"; http.protocol; content:"HTTP/1.0"; sid:9;)
"#;
    let mut ips = ips_with(book_of(rules, 9), IpsMode::Ids);
    let mut c = Conn::new(false);
    let mut f = c.handshake();
    let req = b"POST /upload/x.php?a=bbbbbbbb HTTP/1.1\r\nHost: a.test\r\nX-Evil: 1\r\nContent-Type: application/x-evil\r\nContent-Length: 0\r\n\r\n";
    f.push(c.data(true, 0, req));
    f.push(c.data(
        false,
        0,
        b"HTTP/1.0 404 Not Here\r\nServer: EvilServer/1.0\r\nContent-Length: 0\r\n\r\n",
    ));
    let (_, mut sids) = run(&mut ips, &f);
    sids.sort_unstable();
    // Two `start` alerts: request and response heads. Not 4 (the URI is long).
    assert_eq!(sids, vec![1, 2, 3, 5, 6, 7, 8, 8, 9]);
}

/// A self-signed certificate made for this test (C=JP, O=Mimamori Test, CN=c2.evil.test,
/// serial 0A1B2C), DER in hex.
const TEST_CERT_HEX: &str = concat!(
    "308201bb30820162a00302010202030a1b2c300a06082a8648ce3d040302303c310b3009060355040613024a50311630",
    "14060355040a0c0d4d696d616d6f726920546573743115301306035504030c0c63322e6576696c2e74657374301e170d",
    "3236313132363232323335395a170d3336313132333232323335395a303c310b3009060355040613024a503116301406",
    "0355040a0c0d4d696d616d6f726920546573743115301306035504030c0c63322e6576696c2e74657374305930130607",
    "2a8648ce3d020106082a8648ce3d030107034200048e994b007bc744a68aaceeb74d25de7f1f850e905dcbb046e184f4",
    "55976e3e37e79c21318b4214d004c416ab936d80231db9401e801e636d16b6e579190c2762a3533051301d0603551d0e",
    "0416041434fe923b98f11e2dd14ccc4d55918b1bcde6c6f5301f0603551d2304183016801434fe923b98f11e2dd14ccc",
    "4d55918b1bcde6c6f5300f0603551d130101ff040530030101ff300a06082a8648ce3d0403020347003044022065b455",
    "0499d6d3985a1d9d01204501e1a421472aaed4943b045bdc59920519d70220129d98100806e9ce77c9c854b24e8b74a7",
    "a5105f1f34fb44f747521a4c10902a",
);

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// A TLS record of `kind` around `body`.
fn record(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut r = vec![kind, 3, 3];
    r.extend_from_slice(&(body.len() as u16).to_be_bytes());
    r.extend_from_slice(body);
    r
}

/// A handshake message of `kind` around `body`.
fn handshake(kind: u8, body: &[u8]) -> Vec<u8> {
    let n = body.len() as u32;
    let mut h = vec![kind, (n >> 16) as u8, (n >> 8) as u8, n as u8];
    h.extend_from_slice(body);
    h
}

fn u24(n: usize) -> [u8; 3] {
    [(n >> 16) as u8, (n >> 8) as u8, n as u8]
}

#[test]
fn server_certificates_are_inspected_across_segments_and_records() {
    let rules = r#"
alert tls any any -> any any (msg:"cert subject"; flow:to_client; tls.cert_subject; content:"CN=c2.evil.test"; endswith; sid:1;)
alert tls any any -> any any (msg:"cert issuer"; tls.cert_issuer; content:"C=JP, O=Mimamori Test, CN=c2.evil.test"; bsize:38; sid:2;)
alert tls any any -> any any (msg:"cert serial"; tls.cert_serial; content:"0A:1B:2C"; sid:3;)
alert tls any any -> any any (msg:"cert der"; tls.certs; content:"Mimamori Test"; sid:4;)
alert tls any any -> any any (msg:"other subject"; tls.cert_subject; content:"CN=good.test"; sid:5;)
alert tls any any -> any any (msg:"ja3s"; ja3s.hash; content:"f4febc55ea12b31ae17cfb7e614afda8"; sid:6;)
"#;
    let cert = unhex(TEST_CERT_HEX);
    let mut list = u24(cert.len()).to_vec();
    list.extend_from_slice(&cert);
    let mut body = u24(list.len()).to_vec();
    body.extend_from_slice(&list);
    // ServerHello: TLS 1.2, cipher 0x1301, extensions 43 and 51 -> JA3S "771,4865,43-51".
    let mut sh = vec![3, 3];
    sh.extend_from_slice(&[0; 32]);
    sh.extend_from_slice(&[0, 0x13, 0x01, 0, 0, 8, 0, 43, 0, 0, 0, 51, 0, 0]);
    let server_hello = handshake(2, &sh);
    let certificate = handshake(11, &body);
    // ServerHello in one record, the Certificate message split over two records.
    let mut flight = record(22, &server_hello);
    let (a, b) = certificate.split_at(100);
    flight.extend(record(22, a));
    flight.extend(record(22, b));

    let mut ips = ips_with(book_of(rules, 6), IpsMode::Ids);
    let mut c = Conn::new(false);
    c.s.port = 443;
    let mut f = c.handshake();
    f.push(c.data(true, 0, b"\x16\x03\x01\x00\x05\x01\x00\x00\x01\x00"));
    // The flight crosses a TCP segment boundary inside the certificate.
    f.push(c.data(false, 0, &flight[..300]));
    f.push(c.data(false, 300, &flight[300..]));
    let (_, mut sids) = run(&mut ips, &f);
    sids.sort_unstable();
    assert_eq!(sids, vec![1, 2, 3, 4, 6]);
    assert_eq!(ips.stats().tls_certificates, 1);
}

#[test]
fn ja3_fingerprints_the_client_hello() {
    // JA3 "771,4865-4866,0-10-11,29-23,0" (GREASE left out); MD5 by Python's hashlib.
    let rules = r#"
alert tls any any -> any any (msg:"ja3 hash"; ja3.hash; content:"38eaca597c62da4c9db8cfad482f14ad"; sid:1;)
alert tls any any -> any any (msg:"ja3 legacy"; ja3_hash; content:"38eaca597c62da4c9db8cfad482f14ad"; sid:2;)
alert tls any any -> any any (msg:"ja3 string"; ja3.string; content:"771,4865-4866,0-10-11,29-23,0"; bsize:29; sid:3;)
"#;
    let mut body = vec![3, 3];
    body.extend_from_slice(&[0; 32]); // random
    body.push(0); // session id
    body.extend_from_slice(&[0, 6, 0x13, 0x01, 0x0a, 0x0a, 0x13, 0x02]); // suites
    body.extend_from_slice(&[1, 0]); // compression
    let mut ext = Vec::new();
    let sni = b"ja3.test";
    ext.extend_from_slice(&[
        0,
        0,
        0,
        (sni.len() + 5) as u8,
        0,
        (sni.len() + 3) as u8,
        0,
        0,
        sni.len() as u8,
    ]);
    ext.extend_from_slice(sni);
    ext.extend_from_slice(&[0x0a, 0x0a, 0, 0]); // GREASE extension
    ext.extend_from_slice(&[0, 10, 0, 6, 0, 4, 0, 0x1d, 0, 0x17]); // groups
    ext.extend_from_slice(&[0, 11, 0, 2, 1, 0]); // point formats
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&ext);
    let hello = record(22, &handshake(1, &body));
    let mut ips = ips_with(book_of(rules, 3), IpsMode::Ids);
    let mut c = Conn::new(false);
    c.s.port = 443;
    let mut f = c.handshake();
    f.push(c.data(true, 0, &hello));
    let (_, mut sids) = run(&mut ips, &f);
    sids.sort_unstable();
    assert_eq!(sids, vec![1, 2, 3]);
}

#[test]
fn stream_size_counts_what_each_side_sent() {
    let rules = r#"
alert tcp any any -> any any (msg:"client sent over 20"; flow:to_server; stream_size:client,>,20; sid:1;)
alert tcp any any -> any any (msg:"server quiet"; content:"a"; stream_size:server,=,0; sid:2;)
"#;
    let mut ips = ips_with(book_of(rules, 2), IpsMode::Ids);
    let mut c = Conn::new(false);
    let mut f = c.handshake();
    f.push(c.data(true, 0, &[b'a'; 10]));
    f.push(c.data(true, 10, &[b'b'; 10]));
    f.push(c.data(true, 20, &[b'c'; 10]));
    let (_, sids) = run(&mut ips, &f);
    // sid 2 once (one message), sid 1 once the client passed 20 bytes.
    assert_eq!(sids, vec![2, 1]);
}

#[test]
fn a_flow_the_classifier_ends_takes_its_inspection_state_with_it() {
    let mut ips = inspector(IpsMode::Ids);
    let mut c = Conn::new(false);
    let mut f = c.handshake();
    f.push(c.data(true, 0, &[b'a'; 1000]));
    run(&mut ips, &f);
    assert!(ips.stream_memory() > 0);
    // The classifier is the only flow table: its end of the flow frees the window.
    ips.cls.finish(T0 + 1_000_000);
    assert_eq!(ips.stream_memory(), 0);
    assert_eq!(ips.cls.flows().len(), 0);
}

#[test]
fn a_reused_flow_slot_starts_with_fresh_inspection_state() {
    // Half a token on one connection, the other half on a new connection that gets the
    // same slot once the first is gone: no alert may join them.
    let mut ips = inspector(IpsMode::Ids);
    let mut c = Conn::new(false);
    let mut f = c.handshake();
    f.push(c.data(true, 0, b"EVIL"));
    run(&mut ips, &f);
    ips.cls.finish(T0 + 1_000_000);
    let mut c = Conn::new(false);
    c.c.port = 40001;
    let mut f = c.handshake();
    f.push(c.data(true, 0, b"TOKEN"));
    let (_, sids) = run(&mut ips, &f);
    assert!(sids.is_empty(), "{sids:?}");
}

#[test]
fn a_policy_swap_hands_over_settings_compiled_off_the_data_path() {
    let mut ips = inspector(IpsMode::Ids);
    let cfg = IpsConfig {
        mode: IpsMode::Ips,
        disabled_sids: vec![100],
        ..Default::default()
    };
    // The apply path compiles; the swap only stores the pointer (no rule-sized work).
    let compiled = IpsSettings::compile(ips.book.clone(), &cfg);
    ips.cls
        .set_policy(policy_with(cfg), None, Some(compiled.clone()), 2);
    assert!(Arc::ptr_eq(ips.inspector().settings(), &compiled));
    assert_eq!(ips.inspector().mode(), IpsMode::Ips);
    let mut c = Conn::new(false);
    let mut f = c.handshake();
    f.push(c.data(true, 0, b"EVILTOKEN DROPME"));
    let (verdicts, sids) = run(&mut ips, &f);
    assert_eq!(sids, vec![101], "sid 100 is disabled");
    assert_eq!(verdicts[3], DROP);
}

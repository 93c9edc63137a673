//! The signature inspector and the flow's application protocol: rules naming a protocol
//! in their header, and bodies past the stream depth.

use mimamori_pipelines::Side;
use mimamori_pipelines::inspect::IdsStats;
use mimamori_pipelines::policy::{IpsConfig, IpsMode};
use mimamori_pipelines::synth::{self};
use mimamori_pipelines::wire::tcp::flags::{ACK, PSH};

mod ips_common;
use ips_common::*;

/// A conversation of alternating messages (client first unless the first is the server's),
/// after the handshake; returns the sids that alerted.
fn converse(ips: &mut Ips, port: u16, msgs: &[(bool, &[u8])]) -> Vec<u32> {
    let mut c = Conn::to_port(false, port);
    let mut f = c.handshake();
    let mut off = [0u32; 2];
    for (to_server, m) in msgs {
        let d = usize::from(!*to_server);
        f.push(c.data(*to_server, off[d], m));
        off[d] += m.len() as u32;
    }
    let (_, mut sids) = run(ips, &f);
    sids.sort_unstable();
    sids
}

const PROTO_RULES: &str = r#"
alert ftp any any -> any any (msg:"ftp PASS"; flow:to_server; content:"PASS "; sid:200; rev:1;)
alert smtp any any -> any any (msg:"smtp RCPT"; flow:to_server; content:"RCPT TO"; sid:201; rev:1;)
alert http any any -> any 80 (msg:"http marker"; content:"MARKER"; sid:202; rev:1;)
alert tcp any any -> any any (msg:"tcp marker"; content:"MARKER"; sid:203; rev:1;)
alert ssh any any -> any any (msg:"ssh banner"; content:"SSH-2.0-evil"; sid:204; rev:1;)
alert dns any any -> any any (msg:"dns over tcp"; content:"|05|evil1|04|test|00|"; sid:205; rev:1;)
"#;

#[test]
fn an_ftp_rule_does_not_fire_on_smtp_mail_and_the_reverse() {
    let book = book_of(PROTO_RULES, 6);
    // SMTP whose mail carries a line an FTP rule looks for.
    let mut ips = ips_with(book.clone(), IpsMode::Ids);
    let smtp: &[(bool, &[u8])] = &[
        (false, b"220 mx.test ESMTP Postfix\r\n"),
        (true, b"EHLO client.test\r\n"),
        (false, b"250 mx.test\r\n"),
        (true, b"MAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\n"),
        (false, b"250 ok\r\n"),
        (true, b"DATA\r\nPASS the salt\r\n.\r\n"),
    ];
    assert_eq!(converse(&mut ips, 25, smtp), vec![201]);
    // FTP whose banner says nothing: the client's USER tells; an SMTP rule stays quiet.
    let mut ips = ips_with(book.clone(), IpsMode::Ids);
    let ftp: &[(bool, &[u8])] = &[
        (false, b"220 Welcome\r\n"),
        (true, b"USER bob\r\n"),
        (false, b"331 Password required\r\n"),
        (true, b"PASS secret\r\n"),
        (false, b"230 ok\r\n"),
        (true, b"RCPT TO nowhere\r\n"),
    ];
    assert_eq!(converse(&mut ips, 21, ftp), vec![200]);
    // An SMTP server on a port no one expects is still SMTP.
    let mut ips = ips_with(book, IpsMode::Ids);
    assert_eq!(converse(&mut ips, 2525, smtp), vec![201]);
}

#[test]
fn an_http_rule_does_not_match_a_port_80_flow_that_is_not_http() {
    let book = book_of(PROTO_RULES, 6);
    let mut ips = ips_with(book.clone(), IpsMode::Ids);
    let not_http: &[(bool, &[u8])] = &[(true, b"\x01\x02 binary MARKER protocol")];
    assert_eq!(converse(&mut ips, 80, not_http), vec![203]);
    let mut ips = ips_with(book, IpsMode::Ids);
    let http: &[(bool, &[u8])] = &[(true, b"GET /MARKER HTTP/1.1\r\nHost: a.test\r\n\r\n")];
    assert_eq!(converse(&mut ips, 80, http), vec![202, 203]);
}

#[test]
fn ssh_and_dns_over_tcp_are_recognised() {
    let book = book_of(PROTO_RULES, 6);
    let mut ips = ips_with(book.clone(), IpsMode::Ids);
    let ssh: &[(bool, &[u8])] = &[
        (false, b"SSH-2.0-OpenSSH_9.2\r\n"),
        (true, b"SSH-2.0-evil_client\r\n"),
    ];
    assert_eq!(converse(&mut ips, 22, ssh), vec![204]);
    // A DNS query over TCP: length, header (one question), name, type, class.
    let mut q = vec![0u8, 0, 0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    q.extend_from_slice(b"\x05evil1\x04test\x00\x00\x01\x00\x01");
    let len = (q.len() - 2) as u16;
    q[..2].copy_from_slice(&len.to_be_bytes());
    let mut ips = ips_with(book.clone(), IpsMode::Ids);
    assert_eq!(converse(&mut ips, 53, &[(true, &q)]), vec![205]);
    // The same bytes to another port are not DNS (Suricata's detection ports).
    let mut ips = ips_with(book, IpsMode::Ids);
    assert!(converse(&mut ips, 5300, &[(true, &q)]).is_empty());
}

const BODY_RULES: &str = r#"
alert http any any -> any any (msg:"file sig"; flow:to_client; file_data; content:"FILESIG"; sid:300; rev:1;)
alert tcp any any -> any any (msg:"stream sig"; flow:to_client; content:"STREAMSIG"; sid:301; rev:1;)
alert http any any -> any any (msg:"second response"; flow:to_client; http.stat_msg; content:"Second"; sid:302; rev:1;)
"#;

/// Segments of at most 1448 bytes of `bytes`, from `off` in the server's stream.
fn segments(c: &Conn, to_server: bool, off: u32, bytes: &[u8]) -> Vec<(Vec<u8>, Side)> {
    bytes
        .chunks(1448)
        .enumerate()
        .map(|(i, s)| c.data(to_server, off + (i * 1448) as u32, s))
        .collect()
}

/// A 200 response with a body of `len` bytes and `sig` at `at` in it.
fn response_with(len: usize, at: usize, sig: &[u8]) -> Vec<u8> {
    let mut r = format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n").into_bytes();
    let mut body = vec![b'x'; len];
    body[at..at + sig.len()].copy_from_slice(sig);
    r.extend_from_slice(&body);
    r
}

fn download(cfg: IpsConfig, resp: &[u8]) -> (Vec<u32>, IdsStats) {
    let mut ips = Ips::new(book_of(BODY_RULES, 3), cfg);
    let mut c = Conn::new(false);
    let mut f = c.handshake();
    let req = b"GET /big HTTP/1.1\r\nHost: a.test\r\n\r\n";
    f.push(c.data(true, 0, req));
    f.extend(segments(&c, false, 0, resp));
    let (_, mut sids) = run(&mut ips, &f);
    sids.sort_unstable();
    (sids, ips.stats().clone())
}

#[test]
fn file_data_sees_a_body_past_64_kib_up_to_the_limit() {
    for at in [70_000, 500_000] {
        let (sids, st) = download(
            IpsConfig::default(),
            &response_with(600_000, at, b"FILESIG"),
        );
        assert_eq!(sids, vec![300], "file_data signature at {at}");
        assert_eq!(st.http_responses, 1);
    }
    // A packet signature anywhere in a long download, the window sliding under it.
    let (sids, st) = download(
        IpsConfig::default(),
        &response_with(1_200_000, 1_000_000, b"STREAMSIG"),
    );
    assert_eq!(sids, vec![301]);
    assert_eq!((st.stream.out_of_order, st.stream.gaps), (0, 0));
    // The limits are the policy's: Suricata's 100 KiB body limit misses byte 500,000…
    let suricata = IpsConfig {
        response_body_limit: 100 << 10,
        ..Default::default()
    };
    let (sids, _) = download(
        suricata.clone(),
        &response_with(600_000, 70_000, b"FILESIG"),
    );
    assert_eq!(sids, vec![300]);
    let (sids, _) = download(suricata, &response_with(600_000, 500_000, b"FILESIG"));
    assert!(sids.is_empty(), "{sids:?}");
    // …and a larger depth and limit reach byte 1,000,000.
    let deep = IpsConfig {
        stream_depth: 2 << 20,
        response_body_limit: 3 << 19,
        ..Default::default()
    };
    let (sids, _) = download(deep, &response_with(1_100_000, 1_000_000, b"FILESIG"));
    assert_eq!(sids, vec![300]);
}

fn chunked(body: &[u8], status: &str) -> Vec<u8> {
    let mut r = format!("HTTP/1.1 {status}\r\nTransfer-Encoding: chunked\r\n\r\n").into_bytes();
    for c in body.chunks(4000) {
        r.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
        r.extend_from_slice(c);
        r.extend_from_slice(b"\r\n");
    }
    r.extend_from_slice(b"0\r\n\r\n");
    r
}

#[test]
fn each_chunked_response_of_a_connection_is_decoded_afresh() {
    let mut ips = Ips::new(book_of(BODY_RULES, 3), IpsConfig::default());
    let mut c = Conn::new(false);
    let mut f = c.handshake();
    let req = b"GET /a HTTP/1.1\r\nHost: a.test\r\n\r\n";
    let first = chunked(&vec![b'a'; 100_000], "200 OK");
    let second = chunked(b"small body with FILESIG in it", "200 Second");
    f.push(c.data(true, 0, req));
    f.extend(segments(&c, false, 0, &first));
    f.push(c.data(true, req.len() as u32, req));
    f.extend(segments(&c, false, first.len() as u32, &second));
    let (_, mut sids) = run(&mut ips, &f);
    sids.sort_unstable();
    assert_eq!(sids, vec![300, 302]);
}

#[test]
fn a_segment_lost_before_the_capture_does_not_stall_the_connection() {
    // Response 1 loses a segment on the way to us; the client acknowledges past it (it got
    // it). Response 2 on the same connection is reassembled and parsed as usual.
    let mut ips = Ips::new(book_of(BODY_RULES, 3), IpsConfig::default());
    let mut c = Conn::new(false);
    let mut f = c.handshake();
    let req = b"GET /a HTTP/1.1\r\nHost: a.test\r\n\r\n";
    let first = response_with(10_000, 10, b"nothing");
    f.push(c.data(true, 0, req));
    let mut segs = segments(&c, false, 0, &first);
    segs.remove(2);
    f.extend(segs);
    // The client's next request acknowledges all of response 1.
    let ack = c.sseq + first.len() as u32;
    let next = synth::tcp_frame(&c.c, &c.s, ACK | PSH, c.cseq + req.len() as u32, ack, req);
    f.push((next, Side::Lan));
    let second = b"HTTP/1.1 200 Second\r\nContent-Length: 7\r\n\r\nFILESIG";
    f.push(c.data(false, first.len() as u32, second));
    let (_, mut sids) = run(&mut ips, &f);
    sids.sort_unstable();
    assert_eq!(sids, vec![300, 302]);
    let st = ips.stats();
    assert_eq!(st.http_responses, 2);
    assert_eq!(st.stream.gaps, 1);
    // Only the segments of response 1 after the hole were out of order.
    assert_eq!(
        st.stream.out_of_order,
        (first.len() as u64).div_ceil(1448) - 3
    );
}

#[test]
fn a_body_that_never_completes_is_inspected_as_it_grows() {
    // Content-Length says 250,000; the connection stops at 90,000 (as a capture ends).
    let resp = response_with(250_000, 0, b"FILESIG");
    let (sids, st) = download(IpsConfig::default(), &resp[..90_000]);
    assert_eq!(sids, vec![300]);
    assert_eq!(st.http_responses, 1);
}

#[test]
fn app_layer_protocol_reads_the_recognised_protocol_not_the_port() {
    let rules = r#"
alert tcp any any -> any any (msg:"is http"; app-layer-protocol:http; content:"MARKER"; sid:220; rev:1;)
alert tcp any any -> any any (msg:"known, not http"; app-layer-protocol:!http; content:"MARKER"; sid:221; rev:1;)
alert tcp any any -> any any (msg:"none recognised"; app-layer-protocol:unknown; content:"MARKER"; sid:222; rev:1;)
alert tcp any any -> any any (msg:"tls or smtp"; app-layer-protocol:tls|smtp,either; content:"MARKER"; sid:223; rev:1;)
"#;
    let book = book_of(rules, 4);
    let http: &[(bool, &[u8])] = &[(true, b"GET /MARKER HTTP/1.1\r\nHost: a.test\r\n\r\n")];
    // HTTP on a port no one expects is HTTP.
    let mut ips = ips_with(book.clone(), IpsMode::Ids);
    assert_eq!(converse(&mut ips, 8081, http), vec![220]);
    let mut ips = ips_with(book.clone(), IpsMode::Ids);
    let smtp: &[(bool, &[u8])] = &[
        (false, b"220 mx.test ESMTP\r\n"),
        (true, b"EHLO c.test\r\n"),
        (false, b"250 ok\r\n"),
        (true, b"MAIL FROM:<MARKER@b.test>\r\n"),
    ];
    assert_eq!(converse(&mut ips, 25, smtp), vec![221, 223]);
    // Port 80, but not HTTP.
    let mut ips = ips_with(book, IpsMode::Ids);
    let binary: &[(bool, &[u8])] = &[(true, b"\x01\x02 binary MARKER protocol")];
    assert_eq!(converse(&mut ips, 80, binary), vec![222]);
}

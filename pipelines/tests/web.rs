//! The web filter through the classifier: names from DNS, TLS, QUIC and HTTP judged by the
//! policy's `[web]` section against the project's sample lists (`samples/categories`).

use mimamori_pipelines::classify::{DropReason, Verdict};
use mimamori_pipelines::event::EventKind;
use mimamori_pipelines::flow::Side;
use mimamori_pipelines::synth::{self, Endpoint, Rng};
use mimamori_pipelines::web::{Outcome, Via, WebRules, quic};
use mimamori_pipelines::wire::tcp::flags::{ACK, FIN, PSH, RST};
use mimamori_pipelines::{Policy, parse};

mod web_common;
use web_common::*;

#[test]
fn http_block_gets_the_page_and_the_server_a_reset() {
    let (mut cls, _) = classifier(POLICY);
    let (c, s) = (
        Endpoint::client(10, false, 40000),
        Endpoint::server(80, false, 80),
    );
    let v = connect_and_send(&mut cls, &c, &s, &http_get("www.casino.test", "/"), 1);
    assert_eq!(v, Verdict::Drop(DropReason::WebBlock));
    let out = injected(&cls);
    assert_eq!(out.len(), 2, "page to the client, RST to the server");
    let (page, side) = &out[0];
    assert_eq!(*side, Side::Lan);
    let m = parse(page).unwrap();
    assert_eq!(
        (m.src, m.dst, m.src_port, m.dst_port),
        (s.ip, c.ip, 80, 40000)
    );
    assert_eq!(
        (m.tcp_seq, m.tcp_ack),
        (5001, 1001 + http_get("www.casino.test", "/").len() as u32)
    );
    assert_eq!(m.tcp_flags & (FIN | PSH | ACK), FIN | PSH | ACK);
    let body = String::from_utf8_lossy(&page[usize::from(m.payload_offset)..]);
    assert!(body.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{body}");
    assert!(
        body.contains("gambling")
            && body.contains("ブロック")
            && body.contains("desk@mimamori.test"),
        "{body}"
    );
    let (rst, side) = &out[1];
    let r = parse(rst).unwrap();
    assert_eq!(
        (*side, r.src, r.dst, r.tcp_flags & RST),
        (Side::Wan, c.ip, s.ip, RST)
    );
    assert_eq!(r.tcp_seq, 1001);
    // The rest of the flow is refused with a reset.
    cls.injects.clear();
    let v = cls.process(&tcp(&c, &s, ACK, 1001, 5002, &[]), Side::Lan, 2);
    assert_eq!(v, Verdict::Drop(DropReason::WebBlock));
    assert_eq!(injected(&cls).len(), 1, "a RST for the late packet");
    let h = web_events(&mut cls);
    assert_eq!(h.len(), 1);
    assert_eq!(
        (h[0].outcome, h[0].via, h[0].name.as_str()),
        (Outcome::Blocked, Via::Http, "www.casino.test")
    );
    let rules = cls.web().unwrap().rules();
    assert_eq!(
        (
            rules.category_name(h[0].category),
            rules.source_name(h[0].source)
        ),
        ("gambling", "samples")
    );
}

#[test]
fn url_entries_and_exceptions_both_ways() {
    let (mut cls, _) = classifier(POLICY);
    let s = Endpoint::server(80, false, 80);
    // A malware URL prefix blocks that path only.
    let v = connect_and_send(
        &mut cls,
        &Endpoint::client(10, false, 40001),
        &s,
        &http_get("files.example.test", "/payloads/a.exe"),
        1,
    );
    assert_eq!(v, Verdict::Drop(DropReason::WebBlock));
    let v = connect_and_send(
        &mut cls,
        &Endpoint::client(10, false, 40002),
        &s,
        &http_get("files.example.test", "/docs/a.pdf"),
        1,
    );
    assert!(v.is_forward());
    // An allow exception beats a blocked category; a block exception beats an allowed site.
    let v = connect_and_send(
        &mut cls,
        &Endpoint::client(10, false, 40003),
        &s,
        &http_get("bet-now.test", "/"),
        1,
    );
    assert!(v.is_forward(), "{v:?}");
    let v = connect_and_send(
        &mut cls,
        &Endpoint::client(10, false, 40004),
        &s,
        &http_get("daily-news.test", "/sports/today"),
        1,
    );
    assert_eq!(v, Verdict::Drop(DropReason::WebBlock));
    let v = connect_and_send(
        &mut cls,
        &Endpoint::client(10, false, 40005),
        &s,
        &http_get("daily-news.test", "/politics"),
        1,
    );
    assert!(v.is_forward());
    // Not `aamex`-style suffix matches: a different name is not a subdomain.
    let v = connect_and_send(
        &mut cls,
        &Endpoint::client(10, false, 40006),
        &s,
        &http_get("notcasino.test", "/"),
        1,
    );
    assert!(v.is_forward());
}

#[test]
fn tls_sni_block_resets_both_ways_and_groups_differ() {
    let (mut cls, _) = classifier(POLICY);
    let s = Endpoint::server(443, false, 443);
    let hello = synth::client_hello(&mut Rng::new(1), "chatter.test");
    // Default group: social networks are monitored.
    let v = connect_and_send(&mut cls, &Endpoint::client(10, false, 40010), &s, &hello, 1);
    assert!(v.is_forward());
    let h = web_events(&mut cls);
    assert_eq!((h[0].outcome, h[0].via), (Outcome::Monitored, Via::Sni));
    // The guests group blocks them, and allows gambling.
    let guest = Endpoint::client(201, false, 40011);
    let v = connect_and_send(&mut cls, &guest, &s, &hello, 1);
    assert_eq!(v, Verdict::Drop(DropReason::WebBlock));
    let out = injected(&cls);
    assert_eq!(out.len(), 2);
    let to_client = parse(&out[0].0).unwrap();
    assert_eq!(
        (out[0].1, to_client.dst, to_client.tcp_flags & RST),
        (Side::Lan, guest.ip, RST)
    );
    assert_eq!(to_client.tcp_seq, 5001, "RST in the client's window");
    cls.injects.clear();
    let casino = synth::client_hello(&mut Rng::new(2), "casino.test");
    let v = connect_and_send(
        &mut cls,
        &Endpoint::client(202, false, 40012),
        &s,
        &casino,
        1,
    );
    assert!(v.is_forward());
    let v = connect_and_send(
        &mut cls,
        &Endpoint::client(10, false, 40013),
        &s,
        &casino,
        1,
    );
    assert!(!v.is_forward());
}

#[test]
fn dns_sinkhole_nxdomain_and_address() {
    let (mut cls, _) = classifier(POLICY);
    let (c, r) = (
        Endpoint::client(10, false, 5353),
        Endpoint::server(53, false, 53),
    );
    let q = dns_query("Explicit.TEST", 1);
    let v = cls.process(&udp(&c, &r, &q), Side::Lan, 1);
    assert_eq!(v, Verdict::Drop(DropReason::WebSinkhole));
    let out = injected(&cls);
    let m = parse(&out[0].0).unwrap();
    assert_eq!(
        (out[0].1, m.src, m.dst, m.src_port, m.dst_port),
        (Side::Lan, r.ip, c.ip, 53, 5353)
    );
    let ans = &out[0].0[usize::from(m.payload_offset)..];
    assert_eq!(&ans[..2], &[0xab, 0xcd]);
    assert_eq!(ans[3] & 0x0f, 3, "NXDOMAIN");
    // The same flow may ask for an allowed name next.
    cls.injects.clear();
    assert!(
        cls.process(&udp(&c, &r, &dns_query("web.test", 1)), Side::Lan, 1)
            .is_forward()
    );

    let with_addr = POLICY.replace("sinkhole = \"nxdomain\"", "sinkhole = \"198.18.0.1\"");
    let (mut cls, _) = classifier(&with_addr);
    assert!(!cls.process(&udp(&c, &r, &q), Side::Lan, 1).is_forward());
    let out = injected(&cls);
    let m = parse(&out[0].0).unwrap();
    let ans = &out[0].0[usize::from(m.payload_offset)..];
    assert_eq!((ans[3] & 0x0f, ans[7]), (0, 1), "NOERROR with one answer");
    assert_eq!(&ans[ans.len() - 4..], &[198, 18, 0, 1]);
    let h = web_events(&mut cls);
    assert_eq!(
        (h[0].outcome, h[0].via, h[0].name.as_str()),
        (Outcome::Sinkholed, Via::Dns, "explicit.test")
    );
}

#[test]
fn quic_initial_sni_is_read_and_blocked() {
    let (mut cls, _) = classifier(POLICY);
    let (c, s) = (
        Endpoint::client(10, false, 50000),
        Endpoint::server(443, false, 443),
    );
    let hello = synth::client_hello(&mut Rng::new(3), "phish-bank.test");
    // QUIC carries the handshake message without the TLS record header.
    let mut pkt = [0u8; 1500];
    let n = quic::seal_initial(
        quic::V1,
        &[9, 8, 7, 6, 5, 4, 3, 2],
        0,
        &hello[5..],
        &mut pkt,
    )
    .unwrap();
    let v = cls.process(&udp(&c, &s, &pkt[..n]), Side::Lan, 1);
    assert_eq!(v, Verdict::Drop(DropReason::WebBlock));
    assert!(
        !cls.process(&udp(&c, &s, &pkt[..n]), Side::Lan, 2)
            .is_forward(),
        "the flow stays blocked"
    );
    let h = web_events(&mut cls);
    assert_eq!(
        (h[0].via, h[0].name.as_str(), h[0].threat),
        (Via::Quic, "phish-bank.test", true)
    );
    let ok = synth::client_hello(&mut Rng::new(4), "web.test");
    let n = quic::seal_initial(quic::V1, &[1; 8], 0, &ok[5..], &mut pkt).unwrap();
    let c2 = Endpoint::client(10, false, 50001);
    assert!(
        cls.process(&udp(&c2, &s, &pkt[..n]), Side::Lan, 1)
            .is_forward()
    );
    assert_eq!(cls.web().unwrap().stats.quic_sni, 2);
}

fn dhcp_request(mac: [u8; 6], hostname: &str) -> Vec<u8> {
    let mut m = vec![0u8; 240];
    m[0] = 1;
    m[1] = 1;
    m[2] = 6;
    m[28..34].copy_from_slice(&mac);
    m[236..240].copy_from_slice(&[99, 130, 83, 99]);
    m.extend_from_slice(&[53, 1, 3, 50, 4, 198, 18, 0, 10, 12, hostname.len() as u8]);
    m.extend_from_slice(hostname.as_bytes());
    m.extend_from_slice(&[61, 7, 1]);
    m.extend_from_slice(&mac);
    m.push(255);
    m
}

#[test]
fn callbacks_quarantine_the_host_named_by_dhcp_until_released() {
    let (mut cls, hosts) = classifier(POLICY);
    let c = Endpoint::client(10, false, 68);
    let bcast = Endpoint {
        mac: mimamori_pipelines::wire::MacAddr::BROADCAST,
        ip: mimamori_pipelines::packet::v4_bits([255, 255, 255, 255]),
        v4: true,
        port: 67,
    };
    assert!(
        cls.process(
            &udp(&c, &bcast, &dhcp_request(c.mac.0, "pc-suzuki")),
            Side::Lan,
            1
        )
        .is_forward()
    );
    let r = Endpoint::server(53, false, 53);
    for i in 0..5u16 {
        let q = Endpoint::client(10, false, 6000 + i);
        let v = cls.process(
            &udp(&q, &r, &dns_query("beacon.c2net.test", 1)),
            Side::Lan,
            10 + u64::from(i),
        );
        assert_eq!(v, Verdict::Drop(DropReason::WebSinkhole));
        cls.tick(10 + u64::from(i));
    }
    let ev: Vec<_> = cls.events.drain().collect();
    let q = ev
        .iter()
        .find_map(|e| match e.kind {
            EventKind::Quarantine(q) => Some(q),
            _ => None,
        })
        .expect("a quarantine event");
    assert_eq!(
        (q.mac, q.hostname.as_str(), q.callbacks),
        (c.mac, "pc-suzuki", 5)
    );
    assert!(q.client_id.as_str().starts_with("01:"), "{:?}", q.client_id);
    let host = hosts.get(c.mac).unwrap();
    assert!(host.quarantined);
    assert_eq!(host.ipv4.unwrap().to_string(), "198.18.0.10");

    // Quarantined: web gets the quarantine page, other traffic is refused, the
    // allow-list and DNS pass.
    let s = Endpoint::server(80, false, 80);
    cls.injects.clear();
    let v = connect_and_send(
        &mut cls,
        &Endpoint::client(10, false, 41000),
        &s,
        &http_get("web.test", "/"),
        20,
    );
    // Counted as the quarantine's, not as a category block.
    assert_eq!(v, Verdict::Drop(DropReason::Quarantine));
    let page = injected(&cls)[0].0.clone();
    let m = parse(&page).unwrap();
    assert!(String::from_utf8_lossy(&page[usize::from(m.payload_offset)..]).contains("隔離"));
    let v = connect_and_send(
        &mut cls,
        &Endpoint::client(10, false, 41001),
        &s,
        &http_get("update.vendor.test", "/"),
        20,
    );
    assert!(v.is_forward());
    let ntp = Endpoint::server(123, false, 123);
    let v = cls.process(
        &udp(&Endpoint::client(10, false, 123), &ntp, b"x"),
        Side::Lan,
        20,
    );
    assert_eq!(v, Verdict::Drop(DropReason::Quarantine));
    assert!(
        cls.process(
            &udp(
                &Endpoint::client(10, false, 7000),
                &r,
                &dns_query("web.test", 1)
            ),
            Side::Lan,
            20
        )
        .is_forward()
    );
    // Another host is not affected.
    let other = Endpoint::client(11, false, 41002);
    assert!(connect_and_send(&mut cls, &other, &s, &http_get("web.test", "/"), 20).is_forward());

    assert!(hosts.release(c.mac));
    cls.tick(30);
    let v = connect_and_send(
        &mut cls,
        &Endpoint::client(10, false, 41003),
        &s,
        &http_get("web.test", "/"),
        30,
    );
    assert!(v.is_forward());
}

#[test]
fn dns_answers_name_later_connections() {
    let (mut cls, _) = classifier(POLICY);
    let (c, r) = (
        Endpoint::client(10, false, 5300),
        Endpoint::server(53, false, 53),
    );
    // Monitored names are answered; the answer ties 198.19.0.99 to chatter.test.
    assert!(
        cls.process(&udp(&c, &r, &dns_query("chatter.test", 1)), Side::Lan, 1)
            .is_forward()
    );
    let mut a = dns_query("chatter.test", 1);
    a[2] |= 0x80;
    a[7] = 1;
    a.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 1, 0, 0, 4, 198, 19, 0, 99]);
    assert!(cls.process(&udp(&r, &c, &a), Side::Wan, 1).is_forward());
    cls.events.drain().for_each(drop);
    // A connection with no name of its own to that address is named by the answer.
    let s = Endpoint::server(99, false, 5222);
    let v = connect_and_send(
        &mut cls,
        &Endpoint::client(10, false, 42000),
        &s,
        b"\x00\x01binary",
        2,
    );
    assert!(v.is_forward());
    for i in 0..2u32 {
        cls.process(
            &tcp(
                &Endpoint::client(10, false, 42000),
                &s,
                ACK | PSH,
                1008 + i,
                5001,
                b"more",
            ),
            Side::Lan,
            2,
        );
    }
    let h = web_events(&mut cls);
    assert_eq!(
        (h.len(), h[0].via, h[0].name.as_str()),
        (1, Via::DnsAnswer, "chatter.test")
    );
}

#[test]
fn policy_errors_name_the_field() {
    let policy =
        Policy::from_toml("p.toml", "[web.categories]\ngambling = \"blok\"\n").unwrap_err();
    assert_eq!(policy.line, 2, "{policy}");
    let bad_cat = Policy::from_toml("p.toml", "[web.categories]\ngamblin = \"block\"\n").unwrap();
    let e = WebRules::new(&bad_cat.web, sample_db(), "p.toml").unwrap_err();
    assert_eq!((e.line, e.field.as_str()), (2, "web.categories.gamblin"));
    assert!(e.message.contains("no category"), "{e}");
    let e = Policy::from_toml("p.toml", "[web]\nsinkhole = \"10.0.0.300\"\n").unwrap_err();
    assert_eq!(e.field, "web.sinkhole");
    let e = Policy::from_toml(
        "p.toml",
        "[[web.exception]]\nentry = \"not a name\"\naction = \"allow\"\n",
    )
    .unwrap_err();
    assert_eq!(e.field, "web.exception[0].entry");
    let e = Policy::from_toml("p.toml", "[web.quarantine]\ncallbacks = 0\n").unwrap_err();
    assert_eq!(e.field, "web.quarantine.callbacks");
}

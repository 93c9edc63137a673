//! The web filter through the classifier: names from DNS, TLS, QUIC and HTTP judged by the
//! policy's `[web]` section against the project's sample lists (`samples/categories`).

use mimamori_pipelines::classify::{Classifier, DropReason, Verdict};
use mimamori_pipelines::event::EventKind;
use mimamori_pipelines::flow::Side;
use mimamori_pipelines::synth::{self, Endpoint, Rng};
use mimamori_pipelines::web::{Hosts, Outcome, Via, WebFilter, WebRules, quic};
use mimamori_pipelines::wire::tcp::flags::{ACK, FIN, PSH, RST, SYN};
use mimamori_pipelines::{Policy, parse};
use mimamori_signatures::category::{Builder, CategoryDb};
use std::path::Path;
use std::sync::Arc;

const POLICY: &str = r#"
[sides]
lan_subnets = ["198.18.0.0/16", "2001:db8:1::/48"]

[web]
sinkhole = "nxdomain"
desk_contact = "desk@mimamori.test"

[web.categories]
adult = "block"
gambling = "block"
malware = "block"
phishing = "block"
c2 = "block"
social_networks = "monitor"

[[web.exception]]
entry = "bet-now.test"
action = "allow"

[[web.exception]]
entry = "daily-news.test/sports"
action = "block"

[[web.group]]
name = "guests"
subnets = ["198.18.0.200/29"]
categories = { social_networks = "block", gambling = "allow" }

[web.quarantine]
callbacks = 5
allow = ["update.vendor.test"]
"#;

fn sample_db() -> Arc<CategoryDb> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/categories");
    let mut b = Builder::default();
    b.add_squidguard_dir(&dir, "samples", "2026-11-01").unwrap();
    Arc::new(CategoryDb::from_bytes(b.finish(0).0).unwrap())
}

fn classifier(policy_text: &str) -> (Classifier, Arc<Hosts>) {
    let policy = Arc::new(Policy::from_toml("web.toml", policy_text).unwrap());
    let rules = Arc::new(WebRules::new(&policy.web, sample_db(), "web.toml").unwrap());
    let hosts = Hosts::new(&rules.config);
    let web = WebFilter::new(rules, hosts.clone());
    (Classifier::with_web(policy, Some(web)), hosts)
}

fn tcp(from: &Endpoint, to: &Endpoint, flags: u8, seq: u32, ack: u32, payload: &[u8]) -> Vec<u8> {
    synth::tcp_frame(from, to, flags, seq, ack, payload)
}

fn udp(from: &Endpoint, to: &Endpoint, payload: &[u8]) -> Vec<u8> {
    synth::udp_frame(from, to, payload)
}

/// Opens a TCP connection and sends `request`; returns the request's verdict.
fn connect_and_send(
    cls: &mut Classifier,
    c: &Endpoint,
    s: &Endpoint,
    request: &[u8],
    t: u64,
) -> Verdict {
    assert!(
        cls.process(&tcp(c, s, SYN, 1000, 0, &[]), Side::Lan, t)
            .is_forward()
    );
    assert!(
        cls.process(&tcp(s, c, SYN | ACK, 5000, 1001, &[]), Side::Wan, t)
            .is_forward()
    );
    assert!(
        cls.process(&tcp(c, s, ACK, 1001, 5001, &[]), Side::Lan, t)
            .is_forward()
    );
    cls.process(&tcp(c, s, ACK | PSH, 1001, 5001, request), Side::Lan, t)
}

fn http_get(host: &str, path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: test\r\n\r\n").into_bytes()
}

fn dns_query(name: &str, qtype: u16) -> Vec<u8> {
    let mut q = vec![0xab, 0xcd, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    for l in name.split('.') {
        q.push(l.len() as u8);
        q.extend_from_slice(l.as_bytes());
    }
    q.extend_from_slice(&[0, (qtype >> 8) as u8, qtype as u8, 0, 1]);
    q
}

fn web_events(cls: &mut Classifier) -> Vec<mimamori_pipelines::web::WebHit> {
    cls.events
        .drain()
        .filter_map(|e| match e.kind {
            EventKind::Web(h) => Some(h),
            _ => None,
        })
        .collect()
}

fn injected(cls: &Classifier) -> Vec<(Vec<u8>, Side)> {
    cls.injects.iter().map(|(f, s)| (f.to_vec(), s)).collect()
}

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

/// Sends `hello` in segments cut at `cuts` (byte offsets), in the order `order` gives;
/// returns each segment's verdict in sending order.
fn send_cut(
    cls: &mut Classifier,
    c: &Endpoint,
    s: &Endpoint,
    hello: &[u8],
    cuts: &[usize],
    order: &[usize],
) -> Vec<Verdict> {
    connect_and_send(cls, c, s, &[], 1);
    let mut bounds = vec![0];
    bounds.extend_from_slice(cuts);
    bounds.push(hello.len());
    order
        .iter()
        .map(|&i| {
            let (a, b) = (bounds[i], bounds[i + 1]);
            let seg = tcp(c, s, ACK | PSH, 1001 + a as u32, 5001, &hello[a..b]);
            cls.process(&seg, Side::Lan, 2)
        })
        .collect()
}

fn pq_hello(seed: u64, sni: &str) -> Vec<u8> {
    let shape = synth::HelloShape {
        key_share_before_sni: 1220,
        ech: None,
    };
    synth::shaped_client_hello(&mut Rng::new(seed), sni, shape)
}

#[test]
fn a_hello_whose_name_is_in_a_later_segment_is_judged_on_the_segment_completing_it() {
    let (mut cls, _) = classifier(POLICY);
    let s = Endpoint::server(443, false, 443);
    let hello = pq_hello(7, "casino.test");
    assert!(hello.len() > 1300, "{}", hello.len());
    // SNI at ~1,300: the first segment passes, the second is the one dropped.
    let v = send_cut(
        &mut cls,
        &Endpoint::client(10, false, 41000),
        &s,
        &hello,
        &[1200],
        &[0, 1],
    );
    assert!(v[0].is_forward());
    assert_eq!(v[1], Verdict::Drop(DropReason::WebBlock));
    // Three segments, out of order (the middle one last), the name near byte 3,000.
    let shape = synth::HelloShape {
        key_share_before_sni: 2900,
        ech: None,
    };
    let long = synth::shaped_client_hello(&mut Rng::new(8), "casino.test", shape);
    let c = Endpoint::client(10, false, 41001);
    let v = send_cut(&mut cls, &c, &s, &long, &[1400, 2800], &[0, 2, 1]);
    assert!(v[0].is_forward() && v[1].is_forward(), "{v:?}");
    assert_eq!(v[2], Verdict::Drop(DropReason::WebBlock));
    // Each byte its own segment for the first 20, then the rest.
    let c = Endpoint::client(10, false, 41002);
    let cuts: Vec<usize> = (1..20).collect();
    let order: Vec<usize> = (0..20).collect();
    let v = send_cut(&mut cls, &c, &s, &hello, &cuts, &order);
    assert!(v.iter().take(19).all(|v| v.is_forward()));
    assert_eq!(v[19], Verdict::Drop(DropReason::WebBlock));
    // An allowed name over two segments passes, and the buffers are all back.
    let ok = pq_hello(9, "daily-news.test");
    let c = Endpoint::client(10, false, 41003);
    let v = send_cut(&mut cls, &c, &s, &ok, &[700], &[0, 1]);
    assert!(v.iter().all(|v| v.is_forward()));
    let st = &cls.web().unwrap().stats;
    assert_eq!((st.tls_sni, st.hellos.joined, st.blocked), (4, 4, 3));
    let h = web_events(&mut cls);
    assert!(
        h.iter()
            .all(|h| h.via == Via::Sni && h.name.as_str() == "casino.test")
    );
}

#[test]
fn a_hello_that_never_ends_is_judged_by_what_was_read() {
    let policy = POLICY.replace("[web]\n", "[web]\nunreadable = \"block\"\n");
    let (mut cls, _) = classifier(&policy);
    let s = Endpoint::server(443, false, 443);
    // A record header announcing 16 KiB, then padding that never reaches a name.
    let mut endless = vec![22, 3, 1, 0x40, 0, 1, 0, 0x3f, 0xfc, 3, 3];
    endless.resize(20_000, 0);
    let c = Endpoint::client(10, false, 42000);
    let cuts: Vec<usize> = (1..14).map(|i| i * 1400).collect();
    let order: Vec<usize> = (0..14).collect();
    let v = send_cut(&mut cls, &c, &s, &endless, &cuts, &order);
    let blocked = v.iter().position(|v| !v.is_forward()).expect("judged");
    assert!(blocked >= 11, "held to the budget: {blocked}");
    let st = &cls.web().unwrap().stats;
    assert_eq!((st.unreadable, st.hellos.over_budget), (1, 1));
    // The same under the default (allow): the flow passes, counted.
    let (mut cls, _) = classifier(POLICY);
    let v = send_cut(&mut cls, &c, &s, &endless, &cuts, &order);
    assert!(v.iter().all(|v| v.is_forward()));
    assert_eq!(cls.web().unwrap().stats.unreadable, 1);
}

#[test]
fn a_quic_hello_over_two_initials_is_joined_in_either_order_and_every_version() {
    let (mut cls, _) = classifier(POLICY);
    let s = Endpoint::server(443, false, 443);
    let hello = pq_hello(11, "phish-bank.test");
    let hs = &hello[5..];
    let cut = 1000;
    for (i, version) in [quic::V1, quic::V2, 0xff00_001d, 0xff00_0017, 0xface_b00e]
        .into_iter()
        .enumerate()
    {
        for reversed in [false, true] {
            let c = Endpoint::client(10, false, 50000 + (i as u16) * 2 + u16::from(reversed));
            let dcid = [i as u8; 8];
            let (mut a, mut b) = ([0u8; 1500], [0u8; 1500]);
            let na = quic::seal_initial(version, &dcid, 0, &hs[..cut], &mut a).unwrap();
            let nb = quic::seal_initial(version, &dcid, cut as u16, &hs[cut..], &mut b).unwrap();
            let (first, second) = if reversed {
                (&b[..nb], &a[..na])
            } else {
                (&a[..na], &b[..nb])
            };
            assert!(cls.process(&udp(&c, &s, first), Side::Lan, 1).is_forward());
            assert_eq!(
                cls.process(&udp(&c, &s, second), Side::Lan, 1),
                Verdict::Drop(DropReason::WebBlock),
                "version {version:#x} reversed {reversed}"
            );
        }
    }
    let st = &cls.web().unwrap().stats;
    assert_eq!((st.quic_sni, st.quic_unreadable), (10, 0));
}

/// Answers a DNS query for `name` with `addr`, so later connections there are named.
fn answer(cls: &mut Classifier, name: &str, addr: u8) {
    let (c, r) = (
        Endpoint::client(10, false, 5301),
        Endpoint::server(53, false, 53),
    );
    cls.process(&udp(&c, &r, &dns_query(name, 1)), Side::Lan, 1);
    let mut a = dns_query(name, 1);
    a[2] |= 0x80;
    a[7] = 1;
    a.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 1, 0, 0, 4, 198, 19, 0, addr]);
    cls.process(&udp(&r, &c, &a), Side::Wan, 1);
}

#[test]
fn an_ech_hello_is_judged_by_its_outer_name_and_the_name_looked_up() {
    let ech = |seed, name| {
        let shape = synth::HelloShape {
            key_share_before_sni: 0,
            ech: Some(200),
        };
        synth::shaped_client_hello(&mut Rng::new(seed), name, shape)
    };
    let block = POLICY.replace("[web]\n", "[web]\nech = \"block\"\n");
    for (policy, hidden_passes) in [(POLICY, true), (block.as_str(), false)] {
        let (mut cls, _) = classifier(policy);
        // The client looked up casino.test (blocked); the outer name is a public one.
        answer(&mut cls, "casino.test", 50);
        answer(&mut cls, "daily-news.test", 51);
        answer(&mut cls, "chatter.test", 52);
        let _ = web_events(&mut cls);
        let to = |a| Endpoint::server(a, false, 443);
        let c = Endpoint::client(10, false, 43000);
        let v = connect_and_send(&mut cls, &c, &to(50), &ech(1, "public-ech.test"), 1);
        assert_eq!(
            v,
            Verdict::Drop(DropReason::WebBlock),
            "by the looked-up name"
        );
        // GREASE ECH (Chrome's default): the outer name is the looked-up one.
        let c = Endpoint::client(10, false, 43001);
        let v = connect_and_send(&mut cls, &c, &to(51), &ech(2, "daily-news.test"), 1);
        assert!(v.is_forward());
        // Real ECH to an allowed site: the name stays hidden.
        let c = Endpoint::client(10, false, 43002);
        let v = connect_and_send(&mut cls, &c, &to(52), &ech(3, "public-ech.test"), 1);
        assert_eq!(v.is_forward(), hidden_passes);
        let st = &cls.web().unwrap().stats;
        assert_eq!((st.ech, st.ech_hidden), (3, 2));
        let h = web_events(&mut cls);
        assert!(
            h.iter()
                .any(|h| h.via == Via::DnsAnswer && h.name.as_str() == "casino.test")
        );
        assert_eq!(
            h.iter().any(|h| h.ech && h.outcome == Outcome::Blocked),
            !hidden_passes
        );
    }
}

#[test]
fn encrypted_dns_resolvers_are_a_category_by_name_and_by_address() {
    // The shipped list, plus the test's own resolver addresses (tests send nothing
    // outside the documentation ranges, so the real addresses are not dialled here).
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../patterns/categories");
    let mut b = Builder::default();
    b.add_squidguard_dir(&dir, "mimamori", "2026-12-01")
        .unwrap();
    assert!(b.report.invalid.is_empty(), "{:?}", b.report.invalid);
    assert!(b.report.domains > 50);
    let cat = b.category("encrypted_dns");
    let src = b.source("test", "");
    let dot = Endpoint::server(53, false, 853);
    let doh6 = Endpoint::server(53, true, 443);
    for e in [&dot, &doh6] {
        let ip = mimamori_pipelines::packet::to_ip(e.ip, e.v4).to_string();
        assert!(b.add_domain(&ip, cat, src), "{ip}");
    }
    let db = Arc::new(CategoryDb::from_bytes(b.finish(0).0).unwrap());
    let text = "[sides]\nlan_subnets = [\"198.18.0.0/16\", \"2001:db8:1::/48\"]\n\
                [web.categories]\nencrypted_dns = \"block\"\n";
    let policy = Arc::new(Policy::from_toml("p.toml", text).unwrap());
    let rules = Arc::new(WebRules::new(&policy.web, db, "p.toml").unwrap());
    let web = WebFilter::new(rules.clone(), Hosts::new(&rules.config));
    let mut cls = Classifier::with_web(policy, Some(web));
    // DoH by name (the SNI), DoT and DoH without SNI by address, both families.
    let named = synth::client_hello(&mut Rng::new(1), "dns.google");
    let s = Endpoint::server(60, false, 443);
    let v = connect_and_send(&mut cls, &Endpoint::client(10, false, 44000), &s, &named, 1);
    assert_eq!(v, Verdict::Drop(DropReason::WebBlock));
    let shape = synth::HelloShape::default();
    let anon = synth::shaped_client_hello(&mut Rng::new(2), "", shape);
    let anon = strip_sni(&anon);
    for (i, to) in [&dot, &doh6].into_iter().enumerate() {
        let c = Endpoint::client(10, !to.v4, 44001 + i as u16);
        let v = connect_and_send(&mut cls, &c, to, &anon, 1);
        assert_eq!(v, Verdict::Drop(DropReason::WebBlock), "{i}");
    }
    let h = web_events(&mut cls);
    assert_eq!(
        h.iter().map(|h| h.via).collect::<Vec<_>>(),
        vec![Via::Sni, Via::Address, Via::Address]
    );
}

/// A ClientHello without its server_name extension (the hello built for an empty name).
fn strip_sni(hello: &[u8]) -> Vec<u8> {
    // Extensions start after: record (5), handshake header (4), version (2), random
    // (32), session id (1 + 32), suites (2 + 10), compression (2), extensions length (2).
    let ext_at = 5 + 4 + 2 + 32 + 33 + 12 + 2;
    let sni_len = 4 + usize::from(u16::from_be_bytes([hello[ext_at + 4], hello[ext_at + 5]]));
    let mut out = hello[..ext_at].to_vec();
    out.extend_from_slice(&hello[ext_at + sni_len..]);
    let fix = |out: &mut Vec<u8>, at: usize, by: usize, wide: bool| {
        if wide {
            let v = (usize::from(out[at]) << 16
                | usize::from(out[at + 1]) << 8
                | usize::from(out[at + 2]))
                - by;
            out[at..at + 3].copy_from_slice(&[(v >> 16) as u8, (v >> 8) as u8, v as u8]);
        } else {
            let v = usize::from(u16::from_be_bytes([out[at], out[at + 1]])) - by;
            out[at..at + 2].copy_from_slice(&(v as u16).to_be_bytes());
        }
    };
    fix(&mut out, 3, sni_len, false);
    fix(&mut out, 6, sni_len, true);
    fix(&mut out, ext_at - 2, sni_len, false);
    out
}

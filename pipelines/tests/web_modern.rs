//! The web filter as modern clients send their first message: ClientHellos cut over
//! segments (post-quantum key shares), QUIC hellos over several Initials and versions,
//! endless hellos, ECH, and encrypted DNS resolvers.

use mimamori_pipelines::Policy;
use mimamori_pipelines::classify::{Classifier, DropReason, Verdict};
use mimamori_pipelines::flow::Side;
use mimamori_pipelines::synth::{self, Endpoint, Rng};
use mimamori_pipelines::web::{Hosts, Outcome, Via, WebFilter, WebRules, quic};
use mimamori_pipelines::wire::tcp::flags::{ACK, PSH};
use mimamori_signatures::category::{Builder, CategoryDb};
use std::path::Path;
use std::sync::Arc;

mod web_common;
use web_common::*;

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
    // The server acknowledges the first Initial before the client's second arrives
    // (Chrome's two Initials leave 26 µs apart; a server answers in about a millisecond).
    let c = Endpoint::client(10, false, 50100);
    let dcid = [42u8; 8];
    let (mut a, mut b, mut ack) = ([0u8; 1500], [0u8; 1500], [0u8; 1500]);
    let na = quic::seal_initial(quic::V1, &dcid, 0, &hs[..cut], &mut a).unwrap();
    let nb = quic::seal_initial(quic::V1, &dcid, cut as u16, &hs[cut..], &mut b).unwrap();
    let nack = quic::seal_initial(quic::V1, &[7; 8], 0, b"", &mut ack).unwrap();
    assert!(
        cls.process(&udp(&c, &s, &a[..na]), Side::Lan, 1)
            .is_forward()
    );
    assert!(
        cls.process(&udp(&s, &c, &ack[..nack]), Side::Wan, 1)
            .is_forward()
    );
    assert_eq!(
        cls.process(&udp(&c, &s, &b[..nb]), Side::Lan, 1),
        Verdict::Drop(DropReason::WebBlock),
        "a server's handshake packet does not end the wait"
    );
    let st = &cls.web().unwrap().stats;
    assert_eq!((st.quic_sni, st.quic_unreadable, st.unreadable), (11, 0, 0));
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

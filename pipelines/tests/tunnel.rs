//! Tunnels looked through: the classifier, the firewall and every stage see the inner
//! flow; nesting is bounded; a tunnel header with no packet inside leaves the outer one.

use mimamori_pipelines::classify::{Classifier, DropReason, Verdict};
use mimamori_pipelines::flow::Side;
use mimamori_pipelines::synth::{self, Endpoint, Rng};
use mimamori_pipelines::web::{Hosts, WebFilter, WebRules};
use mimamori_pipelines::wire::checksum;
use mimamori_pipelines::wire::tcp::flags::{ACK, PSH, SYN};
use mimamori_pipelines::wire::tunnel::TunnelKind;
use mimamori_pipelines::{ParseError, Policy, parse};
use mimamori_signatures::category::{Builder, CategoryDb};
use std::sync::Arc;

/// Wraps `inner` (an IP packet) in Ethernet + IPv4 (198.18.0.9 -> 198.19.0.9) carrying
/// `proto`, after `header` (a tunnel header, or nothing for IP in IP; for UDP tunnels a
/// UDP header to `port` is put first).
fn wrap(inner: &[u8], proto: u8, port: Option<u16>, header: &[u8]) -> Vec<u8> {
    let mut l4 = Vec::new();
    if let Some(p) = port {
        let len = (8 + header.len() + inner.len()) as u16;
        l4.extend_from_slice(&40000u16.to_be_bytes());
        l4.extend_from_slice(&p.to_be_bytes());
        l4.extend_from_slice(&len.to_be_bytes());
        l4.extend_from_slice(&[0, 0]); // no UDP checksum (allowed over IPv4)
    }
    l4.extend_from_slice(header);
    l4.extend_from_slice(inner);
    let total = (20 + l4.len()) as u16;
    let mut ip = vec![0x45, 0];
    ip.extend_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&[0, 1, 0x40, 0, 64, proto, 0, 0, 198, 18, 0, 9, 198, 19, 0, 9]);
    let c = !checksum::fold(checksum::sum(&ip));
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
    f.extend_from_slice(&ip);
    f.extend_from_slice(&l4);
    f
}

/// The IP packet of an Ethernet frame.
fn ip_of(frame: &[u8]) -> &[u8] {
    &frame[14..]
}

fn hello_frames(c: &Endpoint, s: &Endpoint, name: &str) -> Vec<Vec<u8>> {
    let hello = synth::client_hello(&mut Rng::new(5), name);
    vec![
        synth::tcp_frame(c, s, SYN, 1000, 0, &[]),
        synth::tcp_frame(c, s, ACK | PSH, 1001, 5001, &hello),
    ]
}

#[test]
fn every_tunnel_kind_is_looked_through_to_the_inner_flow() {
    let c = Endpoint::client(10, false, 41000);
    let s = Endpoint::server(80, false, 443);
    let c6 = Endpoint::client(10, true, 41000);
    let s6 = Endpoint::server(80, true, 443);
    let inner = synth::tcp_frame(&c, &s, SYN, 1000, 0, &[]);
    let inner6 = synth::tcp_frame(&c6, &s6, SYN, 1000, 0, &[]);
    let cases: Vec<(Vec<u8>, TunnelKind, bool)> = vec![
        (wrap(ip_of(&inner), 4, None, &[]), TunnelKind::IpInIp, false),
        (
            wrap(ip_of(&inner6), 41, None, &[]),
            TunnelKind::IpInIp,
            true,
        ),
        (
            wrap(ip_of(&inner), 47, None, &[0, 0, 0x08, 0]),
            TunnelKind::Gre,
            false,
        ),
        (
            wrap(&inner, 47, None, &[0, 0, 0x65, 0x58]),
            TunnelKind::Gre,
            false,
        ),
        (
            wrap(&inner6, 17, Some(4789), &[8, 0, 0, 0, 0, 0, 7, 0]),
            TunnelKind::Vxlan,
            true,
        ),
        (
            wrap(
                ip_of(&inner),
                17,
                Some(2152),
                &[0x30, 0xff, 0, 40, 0, 0, 0, 1],
            ),
            TunnelKind::GtpU,
            false,
        ),
    ];
    for (frame, kind, v6) in cases {
        let m = parse(&frame).unwrap();
        assert_eq!((m.tunnels, m.tunnel), (1, kind), "{kind:?}");
        assert_eq!(
            (m.is_v4(), m.dst_port, m.tcp_flags),
            (!v6, 443, SYN),
            "{kind:?}"
        );
        let want = if v6 { s6.ip } else { s.ip };
        assert_eq!(m.dst, want);
    }
    // Nested once more is still read; past the bound it is refused.
    let two = wrap(
        ip_of(&wrap(ip_of(&inner), 4, None, &[])),
        47,
        None,
        &[0, 0, 0x08, 0],
    );
    assert_eq!(parse(&two).unwrap().tunnels, 2);
    let three = wrap(ip_of(&two), 4, None, &[]);
    assert_eq!(parse(&three).unwrap_err(), ParseError::TunnelTooDeep);
    // A "tunnel" with no packet inside is the outer packet itself.
    let junk = wrap(b"not a packet", 17, Some(4789), &[8, 0, 0, 0, 0, 0, 7, 0]);
    let m = parse(&junk).unwrap();
    assert_eq!((m.tunnels, m.dst_port), (0, 4789));
}

#[test]
fn the_web_filter_judges_the_inner_flow_and_sends_no_answer_into_the_tunnel() {
    let policy = Arc::new(
        Policy::from_toml(
            "t.toml",
            "[sides]\nlan_subnets = [\"198.18.0.0/16\"]\n[web.categories]\ngambling = \"block\"\n",
        )
        .unwrap(),
    );
    let mut b = Builder::default();
    let src = b.source("t", "");
    let cat = b.category("gambling");
    assert!(b.add_domain("casino.test", cat, src));
    let db = Arc::new(CategoryDb::from_bytes(b.finish(0).0).unwrap());
    let rules = Arc::new(WebRules::new(&policy.web, db, "t.toml").unwrap());
    let web = WebFilter::new(rules.clone(), Hosts::new(&rules.config));
    let mut cls = Classifier::with_web(policy, Some(web));
    let c = Endpoint::client(10, false, 41000);
    let s = Endpoint::server(80, false, 443);
    let frames = hello_frames(&c, &s, "casino.test");
    let vx = |f: &[u8]| wrap(f, 17, Some(4789), &[8, 0, 0, 0, 0, 0, 7, 0]);
    assert!(cls.process(&vx(&frames[0]), Side::Lan, 1).is_forward());
    assert_eq!(
        cls.process(&vx(&frames[1]), Side::Lan, 2),
        Verdict::Drop(DropReason::WebBlock)
    );
    assert!(cls.injects.is_empty(), "no RST built from inner headers");
    assert_eq!(cls.web().unwrap().stats.tls_sni, 1);
}

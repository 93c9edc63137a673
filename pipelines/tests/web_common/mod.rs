//! What the web filter's tests share: the policy, the sample database, a classifier with
//! the filter, frame builders and event readers.
#![allow(dead_code)] // each test file uses its own subset

use mimamori_pipelines::Policy;
use mimamori_pipelines::classify::{Classifier, Verdict};
use mimamori_pipelines::event::EventKind;
use mimamori_pipelines::flow::Side;
use mimamori_pipelines::synth::{self, Endpoint};
use mimamori_pipelines::web::{Hosts, WebFilter, WebRules};
use mimamori_pipelines::wire::tcp::flags::{ACK, PSH, SYN};
use mimamori_signatures::category::{Builder, CategoryDb};
use std::path::Path;
use std::sync::Arc;

pub const POLICY: &str = r#"
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

pub fn sample_db() -> Arc<CategoryDb> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/categories");
    let mut b = Builder::default();
    b.add_squidguard_dir(&dir, "samples", "2026-11-01").unwrap();
    Arc::new(CategoryDb::from_bytes(b.finish(0).0).unwrap())
}

pub fn classifier(policy_text: &str) -> (Classifier, Arc<Hosts>) {
    let policy = Arc::new(Policy::from_toml("web.toml", policy_text).unwrap());
    let rules = Arc::new(WebRules::new(&policy.web, sample_db(), "web.toml").unwrap());
    let hosts = Hosts::new(&rules.config);
    let web = WebFilter::new(rules, hosts.clone());
    (Classifier::with_web(policy, Some(web)), hosts)
}

pub fn tcp(
    from: &Endpoint,
    to: &Endpoint,
    flags: u8,
    seq: u32,
    ack: u32,
    payload: &[u8],
) -> Vec<u8> {
    synth::tcp_frame(from, to, flags, seq, ack, payload)
}

pub fn udp(from: &Endpoint, to: &Endpoint, payload: &[u8]) -> Vec<u8> {
    synth::udp_frame(from, to, payload)
}

/// Opens a TCP connection and sends `request`; returns the request's verdict.
pub fn connect_and_send(
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

pub fn http_get(host: &str, path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: test\r\n\r\n").into_bytes()
}

pub fn dns_query(name: &str, qtype: u16) -> Vec<u8> {
    let mut q = vec![0xab, 0xcd, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    for l in name.split('.') {
        q.push(l.len() as u8);
        q.extend_from_slice(l.as_bytes());
    }
    q.extend_from_slice(&[0, (qtype >> 8) as u8, qtype as u8, 0, 1]);
    q
}

pub fn web_events(cls: &mut Classifier) -> Vec<mimamori_pipelines::web::WebHit> {
    cls.events
        .drain()
        .filter_map(|e| match e.kind {
            EventKind::Web(h) => Some(h),
            _ => None,
        })
        .collect()
}

pub fn injected(cls: &Classifier) -> Vec<(Vec<u8>, Side)> {
    cls.injects.iter().map(|(f, s)| (f.to_vec(), s)).collect()
}

/// Answers a DNS query for `name` with `addr`, so later connections there are named.
pub fn answer(cls: &mut Classifier, name: &str, addr: u8) {
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

//! The application-layer parsers on the synthesizer's traffic, on edge cases, and on
//! arbitrary bytes.

use mimamori_pipelines::app::{self, AppProto, http, tls};
use mimamori_pipelines::flow::FlowKey;
use mimamori_pipelines::synth;
use mimamori_pipelines::web::names::{self, NAME_MAX};
use mimamori_pipelines::wire::ip_proto;
use proptest::prelude::*;
use std::collections::HashMap;

/// Payloads of the synthesizer's conversations, per flow and direction, in order (the
/// synthesizer neither loses nor reorders, so concatenation is reassembly here).
fn streams() -> HashMap<(FlowKey, bool), Vec<u8>> {
    let mut out: HashMap<(FlowKey, bool), Vec<u8>> = HashMap::new();
    for p in synth::generate(&synth::Config {
        sessions: 300,
        probe_percent: 0,
        ..synth::Config::default()
    }) {
        let m = mimamori_pipelines::parse(&p.frame).unwrap();
        if m.proto != ip_proto::TCP || m.payload_len == 0 {
            continue;
        }
        let (key, _) = FlowKey::from_meta(&m);
        let to_server = m.dst_port < m.src_port; // servers sit on the low ports here
        let payload = &p.frame[usize::from(m.payload_offset)
            ..usize::from(m.payload_offset) + usize::from(m.payload_len)];
        out.entry((key, to_server))
            .or_default()
            .extend_from_slice(payload);
    }
    out
}

#[test]
fn http_from_the_synthesizer() {
    let s = streams();
    let (mut requests, mut chunked, mut gzipped) = (0, 0, 0);
    for ((key, to_server), data) in &s {
        if !*to_server || app::recognise(data, false) != AppProto::Http {
            continue;
        }
        let req = http::parse_request(data).unwrap();
        requests += 1;
        assert_eq!(req.method, "GET");
        assert!(req.head.host.unwrap().ends_with(b".test"));
        assert!(req.head.user_agent.unwrap().starts_with(b"Mozilla/5.0"));
        assert!(http::normalize_uri(req.uri).ends_with(b".html"));
        let resp_data = &s[&(*key, false)];
        let resp = http::parse_response(resp_data).unwrap();
        assert_eq!(resp.status, 200);
        let body = &resp_data[resp.head.head_len..];
        let text = if resp.head.chunked {
            chunked += 1;
            let mut out = Vec::new();
            let used = http::dechunk(body, 1 << 20, &mut out).unwrap();
            assert_eq!(used, body.len());
            out
        } else if resp.head.codings.outer() == Some(http::Encoding::Gzip) {
            gzipped += 1;
            assert_eq!(resp.head.content_length, Some(body.len() as u64));
            http::decode(http::Encoding::Gzip, body, 1 << 20).unwrap()
        } else {
            body.to_vec()
        };
        assert!(
            text.starts_with(b"<p>") || text.windows(6).any(|w| w == b"office" || w == b"safe  "),
            "decoded body is text"
        );
    }
    assert!(
        requests > 20 && chunked > 3 && gzipped > 3,
        "{requests} {chunked} {gzipped}"
    );
}

#[test]
fn tls_sni_and_alpn_from_the_synthesizer() {
    let mut seen = 0;
    for ((_, to_server), data) in streams() {
        if to_server && app::recognise(&data, false) == AppProto::Tls {
            let hello = tls::parse_client_hello(&data).unwrap();
            assert!(hello.sni.unwrap().ends_with(".test"));
            assert_eq!(hello.alpn(), &[&b"h2"[..], &b"http/1.1"[..]]);
            assert!(hello.offers_tls13);
            seen += 1;
        }
    }
    assert!(seen > 20, "{seen}");
}

#[test]
fn dns_from_the_synthesizer() {
    let (mut q, mut a) = (0, 0);
    for p in synth::generate(&synth::Config {
        sessions: 300,
        ..synth::Config::default()
    }) {
        let m = mimamori_pipelines::parse(&p.frame).unwrap();
        if m.proto != ip_proto::UDP || (m.src_port != 53 && m.dst_port != 53) {
            continue;
        }
        let payload = &p.frame[usize::from(m.payload_offset)
            ..usize::from(m.payload_offset) + usize::from(m.payload_len)];
        assert_eq!(app::recognise(payload, true), AppProto::Dns);
        let mut name = [0u8; NAME_MAX];
        let question = names::dns_question(payload, &mut name).unwrap();
        let qname = std::str::from_utf8(&name[..question.len]).unwrap();
        assert!(qname.ends_with(".test"), "{qname}");
        if question.response {
            a += 1;
            // The answer's owner is a compression pointer to the question.
            let mut answers = 0;
            names::dns_answers(payload, &question, 16, |_, _| answers += 1);
            assert_eq!(answers, 1);
        } else {
            q += 1;
        }
    }
    assert!(q > 20 && q == a, "{q} {a}");
}

#[test]
fn uri_normalisation() {
    let n = |s: &str| String::from_utf8(http::normalize_uri(s)).unwrap();
    assert_eq!(n("/a/./b//c/../d?x=/../y"), "/a/b/d?x=/../y");
    assert_eq!(n("/%2e%2e/%2E%2E/etc/passwd"), "/etc/passwd");
    assert_eq!(n("/a/b/"), "/a/b/");
    assert_eq!(n("http://www.shop1.test:8080/x/../y"), "/y");
    assert_eq!(n("/..\\..\\win.ini"), "/win.ini");
    assert_eq!(n("/bad%zzescape"), "/bad%zzescape");
    assert_eq!(n(""), "/");
}

#[test]
fn http_edge_cases() {
    assert_eq!(
        http::parse_request(b"GET / HTTP/1.1\r\nHost: a"),
        Err(http::HttpError::Partial)
    );
    assert!(
        matches!(http::parse_request(b"GET / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"), Err(http::HttpError::Malformed(m)) if m.contains("conflicting"))
    );
    let many: String = (0..100).map(|i| format!("X-{i}: v\r\n")).collect();
    assert_eq!(
        http::parse_request(format!("GET / HTTP/1.1\r\n{many}\r\n").as_bytes()),
        Err(http::HttpError::TooManyHeaders)
    );
    let mut out = Vec::new();
    assert_eq!(
        http::dechunk(b"5\r\nhello\r\n0\r\n\r\n", 3, &mut out),
        Ok(15)
    );
    assert_eq!(out, b"hel", "bounded by the limit");
    assert_eq!(
        http::dechunk(b"5\r\nhel", 100, &mut Vec::new()),
        Err(http::HttpError::Partial)
    );
    assert!(http::dechunk(b"zz\r\n", 100, &mut Vec::new()).is_err());
    // A gzip bomb stops at the limit.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut gz, &vec![0u8; 10 << 20]).unwrap();
    let bomb = gz.finish().unwrap();
    assert_eq!(
        http::decode(http::Encoding::Gzip, &bomb, 1 << 16)
            .unwrap()
            .len(),
        1 << 16
    );
}

#[test]
fn dns_compression_loops_are_refused() {
    // Header with one question whose name is a pointer to itself.
    let mut m = vec![0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
    assert!(names::dns_question(&m, &mut [0; NAME_MAX]).is_none());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn hostile_bodies_are_bounded(b in prop::collection::vec(any::<u8>(), 0..600), gz in any::<bool>()) {
        // Random bodies behind every framing and coding: bounded, never a panic.
        let mut m = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip, deflate\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        if gz {
            m.extend_from_slice(&[0x1f, 0x8b, 0x08, 0x1e]);
        }
        m.extend_from_slice(&b);
        let r = http::parse_response(&m).unwrap();
        let rest = &m[r.head.head_len..];
        let mut chunks = Vec::new();
        let _ = http::dechunk(rest, 500, &mut chunks);
        prop_assert!(chunks.len() <= 500);
        let (mut out, mut scratch) = (Vec::new(), Vec::new());
        for body in [rest, &chunks[..]] {
            let _ = http::decode_into(&r.head.codings, body, 500, &mut out, &mut scratch);
            prop_assert!(out.len() <= 500);
        }
    }

    #[test]
    fn parsers_never_panic(b in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = http::parse_request(&b);
        // A lenient head, then its body through every coding it names: bounded, no panic.
        if let Ok(r) = http::parse_response(&b) {
            let rest = &b[r.head.head_len.min(b.len())..];
            let (mut out, mut scratch) = (Vec::new(), Vec::new());
            let _ = http::decode_into(&r.head.codings, rest, 1000, &mut out, &mut scratch);
            prop_assert!(out.len() <= 1000);
        }
        let _ = http::dechunk(&b, 1000, &mut Vec::new());
        let _ = http::decode(http::Encoding::Gzip, &b, 1000);
        let _ = http::decode(http::Encoding::Deflate, &b, 1000);
        let _ = http::normalize_uri(&String::from_utf8_lossy(&b));
        let _ = tls::parse_client_hello(&b);
        let mut hs = Vec::new();
        tls::handshake_bytes(&b, &mut hs, 1000);
        prop_assert!(hs.len() <= 1000);
        let _ = tls::server_certificates(&b);
        let _ = tls::server_certificates(&hs);
        let _ = tls::cert_fields(&b);
        if let Some(sh) = tls::server_hello(&b) {
            let (mut s, mut v) = (String::new(), Vec::new());
            tls::ja3s_string(&sh, &mut s, &mut v);
        }
        if let Ok(h) = tls::parse_client_hello(&b) {
            let (mut s, mut v) = (String::new(), Vec::new());
            tls::ja3_string(&h, &mut s, &mut v);
            prop_assert_eq!(tls::fingerprint_hash(&s).len(), 32);
        }
        dns_never_panics(&b);
        let _ = app::recognise(&b, false);
    }

    #[test]
    fn mutated_hellos_and_dns_never_panic(at in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<prop::sample::Index>()) {
        let mut hello = synth_hello().to_vec();
        let i = at.index(hello.len());
        hello[i] = byte;
        hello.truncate(cut.index(hello.len() + 1));
        let _ = tls::parse_client_hello(&hello);
        let mut d = dns_answer().to_vec();
        let j = at.index(d.len());
        d[j] = byte;
        d.truncate(cut.index(d.len() + 1));
        dns_never_panics(&d);
    }
}

/// The one DNS reader over `b`: the question, then every answer it finds.
fn dns_never_panics(b: &[u8]) {
    if let Some(q) = names::dns_question(b, &mut [0; NAME_MAX]) {
        names::dns_answers(b, &q, 16, |_, _| {});
    }
}

fn synth_hello() -> &'static [u8] {
    static H: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    H.get_or_init(|| {
        streams()
            .into_iter()
            .find(|((_, to_server), data)| *to_server && data.first() == Some(&22))
            .map(|(_, d)| d)
            .expect("the synthesizer produces TLS")
    })
}

fn dns_answer() -> &'static [u8] {
    static D: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    D.get_or_init(|| {
        synth::generate(&synth::Config {
            sessions: 50,
            ..synth::Config::default()
        })
        .into_iter()
        .find_map(|p| {
            let m = mimamori_pipelines::parse(&p.frame).ok()?;
            (m.proto == ip_proto::UDP && m.src_port == 53)
                .then(|| p.frame[usize::from(m.payload_offset)..].to_vec())
        })
        .expect("the synthesizer produces DNS")
    })
}

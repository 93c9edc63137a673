//! Property tests: arbitrary and mutated input never panics any parser or stage.

use mimamori_pipelines::synth;
use mimamori_pipelines::{Classifier, ForwardReason, Policy, Side, Verdict, parse};
use proptest::prelude::*;
use std::sync::{Arc, OnceLock};

/// Real frames of every kind, to mutate.
fn corpus() -> &'static [Vec<u8>] {
    static C: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    C.get_or_init(|| {
        synth::generate(&synth::Config {
            sessions: 60,
            vlan: 0,
            ..synth::Config::default()
        })
        .into_iter()
        .map(|p| p.frame)
        .collect()
    })
}

fn mutated() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<prop::sample::Index>(),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
        any::<prop::sample::Index>(),
    )
        .prop_map(|(pick, flips, cut)| {
            let mut f = pick.get(corpus()).clone();
            for (at, byte) in flips {
                let i = at.index(f.len());
                f[i] = byte;
            }
            let keep = cut.index(f.len() + 1).max(f.len() / 2);
            f.truncate(keep);
            f
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn parse_never_panics_on_random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = parse(&bytes);
    }

    #[test]
    fn stage_never_panics_on_mutated_frames(frames in prop::collection::vec(mutated(), 1..40), wan in any::<bool>()) {
        let mut one = Classifier::new(Arc::new(Policy::default()));
        let mut many = Classifier::new(Arc::new(Policy::default()));
        let side = if wan { Side::Wan } else { Side::Lan };
        let singles: Vec<_> = frames.iter().map(|f| one.process(f, side, 1)).collect();
        let refs: Vec<&[u8]> = frames.iter().map(|f| f.as_slice()).collect();
        let mut bursts = vec![Verdict::Forward(ForwardReason::NonIp); refs.len()];
        many.process_burst(&refs, 1, |_, _| side, &mut bursts);
        prop_assert_eq!(singles, bursts);
        let r = one.report();
        prop_assert_eq!(r.packets, frames.len() as u64);
        prop_assert_eq!(one.stats.forwarded_total() + one.stats.dropped_total(), frames.len() as u64, "every packet has one verdict");
    }

    #[test]
    fn policy_parser_never_panics(text in "\\PC{0,300}") {
        let _ = Policy::from_toml("fuzz.toml", &text);
    }

    #[test]
    fn policy_parser_survives_mutations(at in any::<prop::sample::Index>(), junk in "[\\[\\]=\"a-z0-9./:,\\- \\n]{0,12}") {
        let base = mimamori_pipelines::policy::EMBEDDED_DEFAULT;
        let mut i = at.index(base.len());
        while !base.is_char_boundary(i) { i -= 1; }
        let text = format!("{}{}{}", &base[..i], junk, &base[i..]);
        if let Err(e) = Policy::from_toml("m.toml", &text) {
            prop_assert!(e.line >= 1 && e.line <= text.lines().count() + 1, "line {} of {}", e.line, text.lines().count());
        }
    }
}

/// A classifier with the web filter on the project's sample lists, blocking a few.
fn web_classifier() -> Classifier {
    use mimamori_pipelines::web::{Hosts, WebFilter, WebRules};
    use mimamori_signatures::category::{Builder, CategoryDb};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/categories");
    let mut b = Builder::default();
    b.add_squidguard_dir(&dir, "samples", "-").unwrap();
    let db = Arc::new(CategoryDb::from_bytes(b.finish(0).0).unwrap());
    let mut policy = Policy::from_toml(
        "fuzz.toml",
        "[sides]\nlan_subnets = [\"198.18.0.0/16\", \"2001:db8:1::/48\"]\n\
         [web.categories]\nc2 = \"block\"\nadult = \"block\"\nsocial_networks = \"monitor\"\n",
    )
    .unwrap();
    policy.flows.capacity = 4096;
    policy.web.quarantine.callbacks = 3;
    let rules = Arc::new(WebRules::new(&policy.web, db, "fuzz.toml").unwrap());
    let hosts = Hosts::new(&rules.config);
    Classifier::with_web(Arc::new(policy), Some(WebFilter::new(rules, hosts)))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn web_filter_never_panics_on_mutated_frames(frames in prop::collection::vec(mutated(), 1..40)) {
        let mut cls = web_classifier();
        for (i, f) in frames.iter().enumerate() {
            let side = if i % 3 == 0 { Side::Wan } else { Side::Lan };
            cls.process(f, side, i as u64);
            cls.injects.clear();
            cls.tick(i as u64);
        }
        cls.events.drain().for_each(drop);
    }

    #[test]
    fn web_name_readers_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        use mimamori_pipelines::web::{names, quic};
        let mut name = [0u8; names::NAME_MAX];
        if let Some(q) = names::dns_question(&bytes, &mut name) {
            prop_assert!(q.len <= names::NAME_MAX && q.end <= bytes.len());
            names::dns_answers(&bytes, &q, 16, |_, _| {});
        }
        let _ = names::http_target(&bytes);
        let _ = names::dhcp(&bytes);
        let mut scratch = [0u8; 2048];
        let mut d = &bytes[..];
        while let Ok((p, rest)) = quic::next_packet(d) {
            if let Ok(plain) = quic::open_initial(&p, &mut scratch) {
                let _ = quic::crypto_frames(plain, |_, _| {});
            }
            d = rest;
        }
        let _ = mimamori_pipelines::web::hello::read_tcp(&bytes, &mut scratch, false);
        let _ = mimamori_pipelines::web::hello::read_crypto(&bytes, true);
        let _ = mimamori_pipelines::app::tls::parse_client_hello_prefix(&bytes);
        let _ = mimamori_pipelines::app::tls::parse_handshake_prefix(&bytes);
    }
}

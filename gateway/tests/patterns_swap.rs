//! Pattern swaps on a running classify stage (issue 14 part 2): the apply path's
//! `PolicySlot::load_patterns` compiles a bundle handed over by path and SHA-256, and a
//! stage thread that follows the slot between bursts (as the DPDK stages do) takes it
//! with its flow table intact; a set that does not compile is refused and the old one
//! keeps matching; every packet sent is classified and forwarded.
#![cfg(feature = "dpdk")]

use mimamori_gateway::dataplane::apply::{self, PolicySlot, PolicyUpdate};
use mimamori_gateway::eve::to_eve;
use mimamori_pipelines::classify::Stages;
use mimamori_pipelines::firewall::CidrSet;
use mimamori_pipelines::inspect::{Inspector, InspectorLimits, RuleBook};
use mimamori_pipelines::synth::{self, Endpoint};
use mimamori_pipelines::wire::tcp::flags::{ACK, PSH, SYN};
use mimamori_pipelines::{Classifier, Policy, Side};
use mimamori_signatures::bundle::{self, BuildSpec, GatewayVersion, Kind, Limits};
use sha2::Digest;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::Duration;

const OLD_RULES: &str =
    "alert tcp any any -> any any (msg:\"old token\"; content:\"OLDTOKEN\"; sid:1001; rev:1;)\n";
const NEW_RULES: &str = "alert tcp any any -> any any (msg:\"new token\"; content:\"NEWTOKEN\"; sid:2002; rev:1;)\n\
alert tcp any any -> any any (msg:\"old token again\"; content:\"OLDTOKEN\"; sid:2001; rev:1;)\n";

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mimamori-swap-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Writes a bundle of `kind` with `parts` (unsigned: the control plane checked the
/// signature; the gateway checks the file's hash) and returns its path and SHA-256.
fn bundle_file(
    d: &Path,
    name: &str,
    kind: Kind,
    version: u64,
    parts: &[(&str, &[u8])],
) -> (PathBuf, String) {
    let spec = BuildSpec {
        kind,
        version,
        published: 1_795_708_800,
        min_gateway: GatewayVersion(0, 1, 0),
    };
    let parts: Vec<(String, Vec<u8>)> = parts
        .iter()
        .map(|(n, b)| (n.to_string(), b.to_vec()))
        .collect();
    let bytes = bundle::build(&spec, &parts, &Limits::default()).unwrap();
    let path = d.join(name);
    std::fs::write(&path, &bytes).unwrap();
    (path, bundle::hex(&sha2::Sha256::digest(&bytes)))
}

fn book(d: &Path, rules: &str) -> Arc<RuleBook> {
    let p = d.join("start.rules");
    std::fs::write(&p, rules).unwrap();
    Arc::new(RuleBook::load(&p, &CidrSet::default()).unwrap())
}

enum Msg {
    Frame(Vec<u8>, Side),
    Stop,
}

/// What the stage saw: per frame whether it was forwarded, and the sids of its alerts
/// (named through the slot's history, as the exporter names them).
struct Seen {
    frames: u64,
    forwarded: u64,
    sids: Vec<(u64, u32)>,
}

/// A classify stage on its own thread: frames in, and between two "bursts" (each frame)
/// a look at the published generation, as `ClassifyStage::housekeeping` does.
fn stage(
    slot: Arc<PolicySlot>,
    initial: Arc<PolicyUpdate>,
    rx: Receiver<Msg>,
) -> std::thread::JoinHandle<Seen> {
    let stages = Stages {
        web: initial.take_filter(0),
        ips: initial
            .ips
            .clone()
            .map(|s| Inspector::new(s, InspectorLimits::default())),
    };
    let mut cls = Classifier::with_stages(initial.policy.clone(), stages);
    cls.events.policy_version = initial.generation;
    let mut generation = initial.generation;
    drop(initial);
    std::thread::spawn(move || {
        let mut seen = Seen {
            frames: 0,
            forwarded: 0,
            sids: Vec::new(),
        };
        let mut now = 1_795_708_800_000_000_000u64;
        loop {
            match rx.recv_timeout(Duration::from_micros(200)) {
                Ok(Msg::Frame(f, side)) => {
                    now += 1000;
                    seen.frames += 1;
                    if cls.process(&f, side, now).is_forward() {
                        seen.forwarded += 1;
                    }
                    cls.injects.clear();
                    for rec in cls.events.drain() {
                        let eve = to_eve(&rec, &slot.history);
                        if let Some(a) = eve.alert {
                            seen.sids.push((seen.frames, a.signature_id));
                        }
                    }
                }
                Ok(Msg::Stop) => break,
                Err(_) => {}
            }
            if slot.published() != generation {
                let u = slot.current();
                apply::follow(&mut cls, &u, 0);
                generation = u.generation;
                slot.mark_applied(0, generation);
            }
        }
        seen
    })
}

struct Conn {
    c: Endpoint,
    s: Endpoint,
    cseq: u32,
    sseq: u32,
}

impl Conn {
    fn new(port: u16) -> Conn {
        Conn {
            c: Endpoint::client(7, false, port),
            s: Endpoint::server(9, false, 80),
            cseq: 1000,
            sseq: 5000,
        }
    }
    fn handshake(&mut self, tx: &Sender<Msg>) {
        let f = |from: &Endpoint, to: &Endpoint, fl, seq, ack| {
            synth::tcp_frame(from, to, fl, seq, ack, b"")
        };
        tx.send(Msg::Frame(
            f(&self.c, &self.s, SYN, self.cseq, 0),
            Side::Lan,
        ))
        .unwrap();
        tx.send(Msg::Frame(
            f(&self.s, &self.c, SYN | ACK, self.sseq, self.cseq + 1),
            Side::Wan,
        ))
        .unwrap();
        self.cseq += 1;
        self.sseq += 1;
        tx.send(Msg::Frame(
            f(&self.c, &self.s, ACK, self.cseq, self.sseq),
            Side::Lan,
        ))
        .unwrap();
    }
    /// A request and its answer: each a new message of the flow.
    fn exchange(&mut self, tx: &Sender<Msg>, payload: &[u8]) {
        let req = synth::tcp_frame(&self.c, &self.s, ACK | PSH, self.cseq, self.sseq, payload);
        self.cseq += payload.len() as u32;
        tx.send(Msg::Frame(req, Side::Lan)).unwrap();
        let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
        let resp = synth::tcp_frame(&self.s, &self.c, ACK | PSH, self.sseq, self.cseq, answer);
        self.sseq += answer.len() as u32;
        tx.send(Msg::Frame(resp, Side::Wan)).unwrap();
    }
}

/// Waits until the stage has seen `n` frames' alerts settle (the channel is in order).
fn settle(tx: &Sender<Msg>) {
    // A frame the stage has to take before this returns: a lone UDP datagram.
    let (a, b) = (
        Endpoint::client(50, false, 5353),
        Endpoint::server(51, false, 53),
    );
    tx.send(Msg::Frame(synth::udp_frame(&a, &b, b"x"), Side::Lan))
        .unwrap();
    std::thread::sleep(Duration::from_millis(50));
}

#[test]
fn a_new_rule_set_matches_on_the_same_flow_and_a_broken_one_is_refused() {
    let d = dir("rules");
    let policy = Arc::new(Policy::default());
    let old = book(&d, OLD_RULES);
    let initial = Arc::new(PolicyUpdate::new(7, policy, None, Some(&old), 1));
    let slot = PolicySlot::new(initial.clone(), Some(old), 1, None);
    let (tx, rx) = channel();
    let h = stage(slot.clone(), initial, rx);

    let mut conn = Conn::new(40000);
    conn.handshake(&tx);
    conn.exchange(&tx, b"GET /NEWTOKEN HTTP/1.1\r\n\r\n"); // no rule for it yet
    conn.exchange(&tx, b"GET /OLDTOKEN HTTP/1.1\r\n\r\n"); // sid 1001
    settle(&tx);

    // Traffic keeps flowing through the swap: a second flow, a packet every 100 µs.
    let feeder = {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let (a, b) = (
                Endpoint::client(60, false, 6000),
                Endpoint::server(61, false, 6001),
            );
            for _ in 0..2000 {
                tx.send(Msg::Frame(synth::udp_frame(&a, &b, b"ping"), Side::Lan))
                    .unwrap();
                std::thread::sleep(Duration::from_micros(100));
            }
            2000u64
        })
    };
    let (path, sha) = bundle_file(
        &d,
        "rules-2.mmb",
        Kind::Rules,
        2,
        &[("new.rules", NEW_RULES.as_bytes())],
    );
    let (info, took) = slot.load_patterns("rules", &path, &sha).unwrap();
    assert_eq!((info.kind.as_str(), info.version), ("rules", 2));
    assert!(
        info.summary.starts_with("2 of 2 enabled rules compiled"),
        "{}",
        info.summary
    );
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert_eq!(
        slot.current().version,
        7,
        "a pattern swap keeps the policy version"
    );

    // The same flow, after the swap: the new rule matches, the old numbering is gone.
    conn.exchange(&tx, b"GET /NEWTOKEN HTTP/1.1\r\n\r\n"); // sid 2002
    settle(&tx);

    // Refusals: a rule set that does not compile, a file that is not the one verified,
    // a bundle of another kind; the running set stays.
    let (bad, bad_sha) = bundle_file(
        &d,
        "rules-3.mmb",
        Kind::Rules,
        3,
        &[(
            "broken.rules",
            b"alert tcp any any -> (((\nthis is no rule\n",
        )],
    );
    let e = slot.load_patterns("rules", &bad, &bad_sha).unwrap_err();
    assert!(
        e.contains("rules-3.mmb")
            && e.contains("rules version 3")
            && e.contains("no rule compiled"),
        "{e}"
    );
    let e = slot
        .load_patterns("rules", &path, &"0".repeat(64))
        .unwrap_err();
    assert!(
        e.contains("rules-2.mmb") && e.contains("the file changed after it was verified"),
        "{e}"
    );
    let e = slot.load_patterns("categories", &path, &sha).unwrap_err();
    assert!(e.contains("the manifest says kind rules"), "{e}");
    let e = slot.load_patterns("apps", &path, &sha).unwrap_err();
    assert!(e.contains("does not take apps bundles"), "{e}");
    let state = slot.patterns();
    assert_eq!(state.refused.len(), 4);
    assert_eq!(state.swaps, 1);
    assert_eq!(state.active.len(), 1);
    assert_eq!(state.active[0].version, 2);

    conn.exchange(&tx, b"GET /OLDTOKEN/NEWTOKEN HTTP/1.1\r\n\r\n"); // still set 2: 2002 and 2001 (rule order)
    settle(&tx);

    // A policy apply after the swap resolves `[ips]` against the new rules.
    slot.apply(8, "[ips]\nmode = \"ids\"\n").unwrap();
    conn.exchange(&tx, b"GET /NEWTOKEN HTTP/1.1\r\n\r\n"); // sid 2002
    let sent_feeder = feeder.join().unwrap();
    settle(&tx);
    tx.send(Msg::Stop).unwrap();
    let seen = h.join().unwrap();

    let sids: Vec<u32> = seen.sids.iter().map(|s| s.1).collect();
    assert_eq!(sids, vec![1001, 2002, 2002, 2001, 2002], "{:?}", seen.sids);
    // Handshake 3, 5 exchanges of 2, 4 settles, the feeder: every one classified and
    // forwarded (IDS mode: nothing is dropped), none lost across the swaps.
    let sent = 3 + 5 * 2 + 4 + sent_feeder;
    assert_eq!(seen.frames, sent);
    assert_eq!(seen.forwarded, sent);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn rules_arrive_at_a_gateway_that_ran_without_any() {
    let d = dir("fresh");
    let initial = Arc::new(PolicyUpdate::new(
        1,
        Arc::new(Policy::default()),
        None,
        None,
        1,
    ));
    let slot = PolicySlot::new(initial.clone(), None, 1, None);
    let (tx, rx) = channel();
    let h = stage(slot.clone(), initial, rx);
    let mut conn = Conn::new(40001);
    conn.handshake(&tx);
    conn.exchange(&tx, b"GET /NEWTOKEN HTTP/1.1\r\n\r\n");
    settle(&tx);
    let (path, sha) = bundle_file(
        &d,
        "rules-1.mmb",
        Kind::Rules,
        1,
        &[
            ("a.rules", NEW_RULES.as_bytes()),
            ("classification.config", b"config classification: x,y,1\n"),
        ],
    );
    let (info, _) = slot.load_patterns("rules", &path, &sha).unwrap();
    assert!(info.summary.contains("from 1 parts"), "{}", info.summary);
    conn.exchange(&tx, b"GET /NEWTOKEN HTTP/1.1\r\n\r\n");
    settle(&tx);
    tx.send(Msg::Stop).unwrap();
    let seen = h.join().unwrap();
    assert_eq!(
        seen.sids.iter().map(|s| s.1).collect::<Vec<_>>(),
        vec![2002]
    );
    assert_eq!(seen.forwarded, seen.frames);
    let _ = std::fs::remove_dir_all(&d);
}

fn category_db(entries: &[(&str, &str)]) -> Vec<u8> {
    let mut b = mimamori_signatures::category::Builder::default();
    let src = b.source("test", "-");
    for (name, cat) in entries {
        let c = b.category(cat);
        assert!(b.add_domain(name, c, src));
    }
    b.finish(0).0
}

fn category_of(slot: &PolicySlot, host: &str) -> Option<String> {
    let u = slot.current();
    let db = u.web.as_ref().unwrap().rules.db().clone();
    let mut out = Vec::new();
    db.lookup_host(host, &mut out)
        .then(|| db.categories[usize::from(out[0].category)].clone())
}

#[test]
fn a_new_category_database_is_used_in_place_and_a_misfit_one_is_refused() {
    use mimamori_gateway::webfilter::WebSetup;
    use mimamori_signatures::category::CategoryDb;
    let d = dir("categories");
    let policy =
        Arc::new(Policy::from_toml("web.toml", "[web.categories]\nnews = \"block\"\n").unwrap());
    let db1 = CategoryDb::from_bytes(category_db(&[("old.test", "news")])).unwrap();
    let web = WebSetup::with_db(&policy, "web.toml", db1).unwrap();
    let initial = Arc::new(PolicyUpdate::new(3, policy, Some(web), None, 1));
    let hosts = initial.web.as_ref().unwrap().hosts.clone();
    let slot = PolicySlot::new(initial.clone(), None, 1, None);
    let (tx, rx) = channel();
    let h = stage(slot.clone(), initial, rx);
    assert_eq!(category_of(&slot, "new.test"), None);

    let db2 = category_db(&[("old.test", "news"), ("new.test", "news")]);
    let (path, sha) = bundle_file(
        &d,
        "cat-2.mmb",
        Kind::Categories,
        2,
        &[("sample.mmcat", &db2)],
    );
    let (info, _) = slot.load_patterns("categories", &path, &sha).unwrap();
    assert_eq!(info.version, 2);
    assert!(info.summary.contains("2 entries"), "{}", info.summary);
    assert_eq!(category_of(&slot, "new.test").as_deref(), Some("news"));
    // The host table (quarantines) is the same one.
    assert!(Arc::ptr_eq(
        &hosts,
        &slot.current().web.as_ref().unwrap().hosts
    ));

    // A database without the category the running policy blocks; a damaged one; two parts.
    let misfit = category_db(&[("new.test", "sports")]);
    let (p3, s3) = bundle_file(
        &d,
        "cat-3.mmb",
        Kind::Categories,
        3,
        &[("sample.mmcat", &misfit)],
    );
    let e = slot.load_patterns("categories", &p3, &s3).unwrap_err();
    assert!(
        e.contains("cat-3.mmb")
            && e.contains("does not compile against this category database")
            && e.contains("news"),
        "{e}"
    );
    let mut damaged = db2.clone();
    let mid = damaged.len() / 2;
    damaged[mid] ^= 0xff;
    let (p4, s4) = bundle_file(
        &d,
        "cat-4.mmb",
        Kind::Categories,
        4,
        &[("sample.mmcat", &damaged)],
    );
    let e = slot.load_patterns("categories", &p4, &s4).unwrap_err();
    assert!(
        e.contains("cat-4.mmb") && e.contains("part sample.mmcat"),
        "{e}"
    );
    let (p5, s5) = bundle_file(
        &d,
        "cat-5.mmb",
        Kind::Categories,
        5,
        &[("a.mmcat", &db2), ("b.mmcat", &db2)],
    );
    let e = slot.load_patterns("categories", &p5, &s5).unwrap_err();
    assert!(e.contains("holds 2 (a.mmcat, b.mmcat)"), "{e}");
    assert_eq!(
        category_of(&slot, "new.test").as_deref(),
        Some("news"),
        "the running database stays"
    );
    tx.send(Msg::Stop).unwrap();
    h.join().unwrap();
    let _ = std::fs::remove_dir_all(&d);
}

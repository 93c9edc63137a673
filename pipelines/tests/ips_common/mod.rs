//! What the signature inspector's tests share: rules, an inspector behind a classifier,
//! a TCP conversation builder.
#![allow(dead_code)] // each test file uses its own subset

use mimamori_pipelines::classify::Stages;
use mimamori_pipelines::event::EventKind;
use mimamori_pipelines::firewall::CidrSet;
use mimamori_pipelines::inspect::{IdsStats, Inspector, InspectorLimits, IpsSettings, RuleBook};
use mimamori_pipelines::policy::{IpsConfig, IpsMode};
use mimamori_pipelines::synth::{self, Endpoint};
use mimamori_pipelines::wire::tcp::flags::{ACK, PSH, SYN};
use mimamori_pipelines::{Classifier, DropReason, ForwardReason, Policy, Side, Verdict};
use std::sync::Arc;

pub const T0: u64 = 1_795_708_800_000_000_000;

pub const RULES: &str = r#"
alert tcp any any -> any any (msg:"split token"; content:"EVILTOKEN"; sid:100; rev:1;)
drop tcp any any -> any 80 (msg:"drop marker"; content:"DROPME"; sid:101; rev:1;)
reject tcp any any -> any 80 (msg:"reject marker"; content:"REJECTME"; sid:102; rev:1;)
alert http any any -> any any (msg:"admin uri"; http.uri; content:"/admin/secret"; sid:103; rev:1;)
pass tcp any any -> any any (msg:"trusted"; content:"TRUSTED"; sid:104; rev:1;)
alert tcp any any -> any any (msg:"also trusted"; content:"TRUSTED"; sid:105; rev:1;)
alert udp any any -> any any (msg:"udp token"; content:"FRAGTOKEN"; sid:106; rev:1;)
"#;

pub fn book() -> Arc<RuleBook> {
    book_of(RULES, 7)
}

pub fn book_of(rules: &str, want: usize) -> Arc<RuleBook> {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!(
        "mimamori-ips-test-{}-{n}.rules",
        std::process::id()
    ));
    std::fs::write(&path, rules).unwrap();
    let b = RuleBook::load(&path, &CidrSet::default()).unwrap();
    let _ = std::fs::remove_file(&path);
    assert_eq!(b.build.compiled, want, "{:?} {:?}", b.load, b.build.refused);
    Arc::new(b)
}

/// A classifier (the embedded default policy with `cfg` as its `[ips]`) whose only stage
/// is the signature inspector.
pub struct Ips {
    pub cls: Classifier,
    pub book: Arc<RuleBook>,
    pub version: u64,
}

impl Ips {
    pub fn new(book: Arc<RuleBook>, cfg: IpsConfig) -> Ips {
        let settings = IpsSettings::compile(book.clone(), &cfg);
        let stages = Stages {
            web: None,
            ips: Some(Inspector::new(settings, InspectorLimits::default())),
        };
        Ips {
            cls: Classifier::with_stages(policy_with(cfg), stages),
            book,
            version: 1,
        }
    }
    /// Applies a policy with a new `[ips]`, as the apply path does.
    pub fn set_config(&mut self, cfg: IpsConfig) {
        self.version += 1;
        let settings = IpsSettings::compile(self.book.clone(), &cfg);
        self.cls
            .set_policy(policy_with(cfg), None, Some(settings), self.version);
    }
    pub fn inspector(&self) -> &Inspector {
        self.cls.ips().unwrap()
    }
    pub fn stats(&self) -> &IdsStats {
        &self.inspector().stats
    }
    pub fn stream_memory(&self) -> usize {
        self.inspector().stream_memory()
    }
}

pub fn policy_with(cfg: IpsConfig) -> Arc<Policy> {
    Arc::new(Policy {
        ips: cfg,
        ..Policy::default()
    })
}

pub fn inspector(mode: IpsMode) -> Ips {
    ips_with(book(), mode)
}

pub fn ips_with(book: Arc<RuleBook>, mode: IpsMode) -> Ips {
    let cfg = IpsConfig {
        mode,
        ..Default::default()
    };
    Ips::new(book, cfg)
}

pub const PASS: Verdict = Verdict::Forward(ForwardReason::Flow);
pub const DROP: Verdict = Verdict::Drop(DropReason::Signature);

/// One TCP connection between a LAN client and a WAN server, with sequence numbers.
pub struct Conn {
    pub c: Endpoint,
    pub s: Endpoint,
    pub cseq: u32,
    pub sseq: u32,
}

impl Conn {
    pub fn new(v6: bool) -> Conn {
        Conn::to_port(v6, 80)
    }
    pub fn to_port(v6: bool, port: u16) -> Conn {
        Conn {
            c: Endpoint::client(7, v6, 40000),
            s: Endpoint::server(9, v6, port),
            cseq: 1000,
            sseq: 5000,
        }
    }
    pub fn frame(&self, to_server: bool, flags: u8, seq: u32, payload: &[u8]) -> Vec<u8> {
        let (from, to, ack) = if to_server {
            (&self.c, &self.s, self.sseq)
        } else {
            (&self.s, &self.c, self.cseq)
        };
        synth::tcp_frame(from, to, flags, seq, ack, payload)
    }
    /// The handshake frames (sequence numbers move past the SYNs).
    pub fn handshake(&mut self) -> Vec<(Vec<u8>, Side)> {
        let syn = self.frame(true, SYN, self.cseq, b"");
        let synack = self.frame(false, SYN | ACK, self.sseq, b"");
        self.cseq += 1;
        self.sseq += 1;
        let ack = self.frame(true, ACK, self.cseq, b"");
        vec![(syn, Side::Lan), (synack, Side::Wan), (ack, Side::Lan)]
    }
    /// A data segment at `offset` into the client's (or server's) stream.
    pub fn data(&self, to_server: bool, offset: u32, payload: &[u8]) -> (Vec<u8>, Side) {
        let seq = if to_server { self.cseq } else { self.sseq } + offset;
        let side = if to_server { Side::Lan } else { Side::Wan };
        (self.frame(to_server, ACK | PSH, seq, payload), side)
    }
}

/// Runs frames through the classifier; returns each frame's verdict and the sids of the
/// alert events, in order.
pub fn run(ips: &mut Ips, frames: &[(Vec<u8>, Side)]) -> (Vec<Verdict>, Vec<u32>) {
    let mut verdicts = Vec::new();
    let mut sids = Vec::new();
    for (i, (f, side)) in frames.iter().enumerate() {
        verdicts.push(ips.cls.process(f, *side, T0 + i as u64 * 1000));
        ips.cls.injects.clear();
        for e in ips.cls.events.drain() {
            if let EventKind::Signature { rule, .. } = e.kind {
                sids.push(ips.book.engine.rules[rule as usize].meta.sid);
            }
        }
    }
    (verdicts, sids)
}

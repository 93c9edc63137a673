//! A first detection engine over parsed rules: per-buffer fast-pattern prefilter
//! (Aho-Corasick), then full verification of each candidate rule in rule order, with
//! relative content matches backtracking as Suricata's do.
//!
//! What it does not do yet is refused at build time with a reason (never ignored):
//! `byte_test`/`byte_jump`/`byte_extract`, `flowbits`, `threshold`/`detection_filter`,
//! `byte_extract` variables in modifiers, and pcre that the `regex` crate cannot compile
//! (lookaround, backreferences). It inspects one buffer set at a time (a packet, or the
//! app-layer fields parsed from it); stream reassembly is not here.

mod verify;

use crate::rule::content::Value;
use crate::rule::header::Proto;
use crate::rule::load::Loaded;
use crate::rule::{Action, Buffer, Content, FlowOpt, Header, Match, Meta, RuleSet};
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use std::collections::{BTreeMap, HashMap};
pub use verify::Step;

/// An address spec as sorted, merged ranges: membership is a binary search, which matters
/// for the IP-reputation rules that list hundreds of addresses.
pub struct AddrSet {
    any: bool,
    include: Vec<(u128, u128)>,
    exclude: Vec<(u128, u128)>,
}

fn ranges(nets: &[crate::rule::header::Net]) -> Vec<(u128, u128)> {
    let mut v: Vec<(u128, u128)> = nets
        .iter()
        .map(|n| {
            let host = if n.prefix >= 128 {
                0
            } else {
                u128::MAX >> n.prefix
            };
            let lo = n.addr & !host;
            (lo, lo | host)
        })
        .collect();
    v.sort_unstable();
    let mut out: Vec<(u128, u128)> = Vec::with_capacity(v.len());
    for (lo, hi) in v {
        match out.last_mut() {
            Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
            _ => out.push((lo, hi)),
        }
    }
    out
}

fn in_ranges(r: &[(u128, u128)], a: u128) -> bool {
    let i = r.partition_point(|&(lo, _)| lo <= a);
    i > 0 && r[i - 1].1 >= a
}

impl AddrSet {
    fn new(spec: &crate::rule::AddrSpec) -> Self {
        AddrSet {
            any: spec.any,
            include: ranges(&spec.include),
            exclude: ranges(&spec.exclude),
        }
    }
    #[inline]
    pub fn contains(&self, a: u128) -> bool {
        (self.any || in_ranges(&self.include, a)) && !in_ranges(&self.exclude, a)
    }
}

/// One compiled rule.
pub struct CompiledRule {
    pub meta: Meta,
    pub action: Action,
    pub header: Header,
    pub src: AddrSet,
    pub dst: AddrSet,
    /// `Some(true)` to_server, `Some(false)` to_client.
    pub direction: Option<bool>,
    pub established: Option<bool>,
    /// Verification steps grouped by buffer, each group in rule order.
    pub groups: Vec<(Buffer, Vec<Step>)>,
    pub dsize: Option<crate::rule::options::SizeCmp>,
}

/// What one inspection sees.
pub struct Inspection<'a> {
    /// IP protocol number.
    pub proto: u8,
    pub src: u128,
    pub src_port: u16,
    pub dst: u128,
    pub dst_port: u16,
    /// The packet goes from the flow's initiator to its responder.
    pub to_server: bool,
    pub established: bool,
    /// Length of the packet's payload (for `dsize`).
    pub payload_len: usize,
    pub buffers: &'a [(Buffer, &'a [u8])],
}

#[derive(Default, Debug, Clone, serde::Serialize)]
pub struct EngineReport {
    pub compiled: usize,
    pub skipped_by_reason: BTreeMap<String, usize>,
    /// Each refused rule: sid and reason.
    pub refused: Vec<(u32, String)>,
    pub prefilter_patterns: usize,
    pub always_checked: usize,
}

pub struct Engine {
    pub rules: Vec<CompiledRule>,
    prefilters: Vec<(Buffer, AhoCorasick, Vec<u32>)>,
    /// Rules without a positive content: checked on every inspection…
    always: Vec<u32>,
    /// …except those whose source or destination is a list of single hosts (the IP
    /// reputation rules): found by address instead.
    by_host: HashMap<u128, Vec<u32>>,
}

/// The hosts of a side that is a plain list of single addresses.
fn host_list(spec: &crate::rule::AddrSpec) -> Option<Vec<u128>> {
    if spec.any || !spec.exclude.is_empty() || spec.include.is_empty() {
        return None;
    }
    spec.include
        .iter()
        .map(|n| (n.prefix == 128).then_some(n.addr))
        .collect()
}

/// Per-worker scratch space, reused across inspections (no allocation per packet once
/// warm): a generation stamp per rule instead of a set.
#[derive(Default)]
pub struct Scratch {
    stamp: Vec<u32>,
    generation: u32,
    candidates: Vec<u32>,
}

/// The content the prefilter looks for, in the raw (untransformed) buffer. The prefilter
/// is case-insensitive, which covers `to_lowercase`; under `dotprefix` a pattern's leading
/// '.' may be the one the transform adds, so it is dropped for the prefilter.
fn fast_pattern(groups: &[(Buffer, Vec<Step>)]) -> Option<(Buffer, Vec<u8>)> {
    let mut positive: Vec<(Buffer, bool, &Content)> = Vec::new();
    for (b, steps) in groups {
        let dot = steps
            .iter()
            .any(|s| matches!(s, Step::Transform(crate::rule::Transform::DotPrefix)));
        for s in steps {
            if let Step::Content(c, _) = s
                && !c.negated
            {
                positive.push((*b, dot, c));
            }
        }
    }
    let chosen = positive
        .iter()
        .find(|(_, _, c)| c.fast_pattern)
        .or_else(|| positive.iter().max_by_key(|(_, _, c)| c.pattern.len()))?;
    let mut pat = chosen.2.pattern.to_ascii_lowercase();
    if chosen.1 && pat.first() == Some(&b'.') {
        pat.remove(0);
    }
    (!pat.is_empty()).then_some((chosen.0, pat))
}

fn compile_rule(l: &Loaded) -> Result<CompiledRule, String> {
    let r = &l.rule;
    let mut groups: Vec<(Buffer, Vec<Step>)> = Vec::new();
    let (mut direction, mut established, mut dsize) = (None, None, None);
    let mut push = |b: Buffer, s: Step| match groups.iter_mut().find(|(gb, _)| *gb == b) {
        Some((_, v)) => v.push(s),
        None => groups.push((b, vec![s])),
    };
    for m in &r.matches {
        match m {
            Match::Buffer(_) => {}
            Match::Content(c) => {
                for v in [&c.depth, &c.offset, &c.distance, &c.within]
                    .into_iter()
                    .flatten()
                {
                    if let Value::Var(name) = v {
                        return Err(format!(
                            "byte_extract variable {name} in a content modifier"
                        ));
                    }
                }
                let finder =
                    (!c.nocase).then(|| memchr::memmem::Finder::new(&c.pattern).into_owned());
                push(c.buffer, Step::Content(c.clone(), finder));
            }
            Match::Pcre(p) => push(p.buffer, verify::compile_pcre(p)?),
            Match::Transform(b, t) => push(*b, Step::Transform(*t)),
            Match::IsDataAt {
                offset,
                relative,
                negated,
                buffer,
            } => push(
                *buffer,
                Step::IsDataAt {
                    offset: *offset as usize,
                    relative: *relative,
                    negated: *negated,
                },
            ),
            Match::Bsize(cmp, b) => push(*b, Step::Bsize(*cmp)),
            Match::Dsize(cmp) => dsize = Some(*cmp),
            Match::Flow(opts) => {
                for o in opts {
                    match o {
                        FlowOpt::ToServer => direction = Some(true),
                        FlowOpt::ToClient => direction = Some(false),
                        FlowOpt::Established => established = Some(true),
                        FlowOpt::NotEstablished => established = Some(false),
                        FlowOpt::Stateless => {}
                        FlowOpt::OnlyStream
                        | FlowOpt::NoStream
                        | FlowOpt::OnlyFrag
                        | FlowOpt::NoFrag => {}
                    }
                }
            }
            Match::ByteTest(..) => return Err("byte_test".into()),
            Match::ByteJump(..) => return Err("byte_jump".into()),
            Match::ByteExtract(..) => return Err("byte_extract".into()),
            Match::Flowbits(..) => return Err("flowbits".into()),
            Match::Threshold { .. } => return Err("threshold".into()),
            Match::DetectionFilter { .. } => return Err("detection_filter".into()),
        }
    }
    // Transforms must come before the matches of their buffer.
    for (_, steps) in &groups {
        let last_transform = steps.iter().rposition(|s| matches!(s, Step::Transform(_)));
        let first_match = steps.iter().position(|s| !matches!(s, Step::Transform(_)));
        if let (Some(t), Some(m)) = (last_transform, first_match)
            && t > m
        {
            return Err("transform after a match in the same buffer".into());
        }
    }
    Ok(CompiledRule {
        meta: r.meta.clone(),
        action: r.action,
        src: AddrSet::new(&r.header.src),
        dst: AddrSet::new(&r.header.dst),
        header: r.header.clone(),
        direction,
        established,
        groups,
        dsize,
    })
}

impl Engine {
    /// Compiles what can be compiled; the report says what was skipped and why.
    pub fn build(set: &RuleSet) -> (Engine, EngineReport) {
        let mut report = EngineReport::default();
        let mut rules = Vec::new();
        let mut patterns: HashMap<Buffer, (Vec<Vec<u8>>, Vec<u32>)> = HashMap::new();
        let mut always = Vec::new();
        let mut by_host: HashMap<u128, Vec<u32>> = HashMap::new();
        for l in &set.rules {
            match compile_rule(l) {
                Ok(c) => {
                    let id = rules.len() as u32;
                    match fast_pattern(&c.groups) {
                        Some((b, p)) => {
                            let e = patterns.entry(b).or_default();
                            e.0.push(p);
                            e.1.push(id);
                        }
                        None => match host_list(&l.rule.header.src)
                            .or_else(|| host_list(&l.rule.header.dst))
                        {
                            Some(hosts) if !l.rule.header.bidirectional => {
                                for h in hosts {
                                    by_host.entry(h).or_default().push(id);
                                }
                            }
                            _ => always.push(id),
                        },
                    }
                    rules.push(c);
                }
                Err(reason) => {
                    let reason = format!("unsupported by the engine: {reason}");
                    report.refused.push((l.rule.meta.sid, reason.clone()));
                    *report.skipped_by_reason.entry(reason).or_default() += 1
                }
            }
        }
        let mut prefilters = Vec::new();
        for (b, (pats, ids)) in patterns {
            report.prefilter_patterns += pats.len();
            let ac = AhoCorasickBuilder::new()
                .ascii_case_insensitive(true)
                .match_kind(MatchKind::Standard)
                .build(&pats);
            match ac {
                Ok(ac) => prefilters.push((b, ac, ids)),
                Err(e) => {
                    *report
                        .skipped_by_reason
                        .entry(format!("prefilter for {b:?} failed: {e}"))
                        .or_default() += ids.len();
                }
            }
        }
        report.compiled = rules.len();
        report.always_checked = always.len();
        for v in by_host.values_mut() {
            v.dedup();
        }
        (
            Engine {
                rules,
                prefilters,
                always,
                by_host,
            },
            report,
        )
    }

    /// Appends the index of every rule that matches `p` to `alerts`, in rule order.
    pub fn inspect(&self, p: &Inspection<'_>, scratch: &mut Scratch, alerts: &mut Vec<u32>) {
        if scratch.stamp.len() != self.rules.len() {
            scratch.stamp = vec![0; self.rules.len()];
            scratch.generation = 0;
        }
        scratch.generation = scratch.generation.wrapping_add(1);
        if scratch.generation == 0 {
            scratch.stamp.fill(0);
            scratch.generation = 1;
        }
        let g = scratch.generation;
        scratch.candidates.clear();
        for (b, ac, ids) in &self.prefilters {
            let Some(data) = p.buffers.iter().find(|(pb, _)| pb == b).map(|(_, d)| *d) else {
                continue;
            };
            for m in ac.find_overlapping_iter(data) {
                let id = ids[m.pattern().as_usize()];
                let s = &mut scratch.stamp[id as usize];
                if *s != g {
                    *s = g;
                    scratch.candidates.push(id);
                }
            }
        }
        for a in [p.src, p.dst] {
            for &id in self.by_host.get(&a).map_or(&[][..], |v| v.as_slice()) {
                let s = &mut scratch.stamp[id as usize];
                if *s != g {
                    *s = g;
                    scratch.candidates.push(id);
                }
            }
        }
        let before = alerts.len();
        for &id in scratch.candidates.iter().chain(self.always.iter()) {
            if verify::rule_matches(&self.rules[id as usize], p) {
                alerts.push(id);
            }
        }
        alerts[before..].sort_unstable();
    }
}

/// Does the header admit this packet (either way round for `<>`)?
pub(crate) fn header_admits(r: &CompiledRule, p: &Inspection<'_>) -> bool {
    let h = &r.header;
    let proto_ok = match h.proto {
        Proto::Ip => true,
        Proto::Tcp => p.proto == 6,
        Proto::Udp => p.proto == 17,
        Proto::Icmp => p.proto == 1,
        Proto::Icmpv6 => p.proto == 58,
        Proto::App(a) => match a {
            "dns" | "snmp" | "sip" | "ntp" | "dhcp" | "tftp" | "quic" => {
                p.proto == 17 || (a == "dns" && p.proto == 6)
            }
            _ => p.proto == 6,
        },
    };
    if !proto_ok {
        return false;
    }
    let fwd = h.src_ports.matches(p.src_port)
        && h.dst_ports.matches(p.dst_port)
        && r.src.contains(p.src)
        && r.dst.contains(p.dst);
    fwd || (h.bidirectional
        && h.src_ports.matches(p.dst_port)
        && h.dst_ports.matches(p.src_port)
        && r.src.contains(p.dst)
        && r.dst.contains(p.src))
}

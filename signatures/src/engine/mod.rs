//! The detection engine over parsed rules: per-buffer fast-pattern prefilter
//! (Aho-Corasick), then full verification of each candidate rule in rule order, with
//! relative content matches backtracking as Suricata's do, byte_test/jump/extract,
//! flowbits and alert rates.
//!
//! What it cannot run is refused at build time with a reason (never ignored). It inspects
//! one set of buffers at a time; reassembly and app-layer parsing happen before it
//! (`gateway::ips`).

mod header;
mod runs;
mod state;
mod verify;

use runs::Runs;

use crate::rule::content::Value;
use crate::rule::header::Proto;
use crate::rule::load::Loaded;
use crate::rule::options::{FlowbitsCmd, ThresholdKind, Track};
use crate::rule::{Action, Buffer, Content, FlowOpt, Header, Match, Meta, RuleSet};
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
pub use header::AddrSet;
pub(crate) use header::header_admits;
pub use state::{FlowBits, RateTable};
use std::collections::{BTreeMap, HashMap};
pub use verify::Step;

/// One compiled rule.
pub struct CompiledRule {
    /// Flowbit conditions: (isset, all names needed, bit ids); all must hold.
    pub bit_conditions: Vec<(bool, bool, Vec<u16>)>,
    /// Flowbit changes when the rule matches.
    pub bit_actions: Vec<(FlowbitsCmd, Vec<u16>)>,
    /// xbits tests and changes, in rule order.
    pub xbits: Vec<Xbit>,
    /// threshold / detection_filter.
    pub rate: Option<Rate>,
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
    pub flags: Option<crate::rule::options::TcpFlags>,
    pub stream_size: Option<crate::rule::options::StreamSize>,
    /// `app-layer-protocol`: negated, and the protocols (`None`: none recognised).
    pub app_layer: Option<(bool, Vec<Option<&'static str>>)>,
    /// ICMP type and code comparisons.
    pub itype: Option<crate::rule::options::SizeCmp>,
    pub icode: Option<crate::rule::options::SizeCmp>,
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
    /// TCP flags (0 when not TCP).
    pub tcp_flags: u8,
    /// ICMP type and code, for ICMP and ICMPv6.
    pub icmp: Option<(u8, u8)>,
    /// TCP bytes the client and the server have sent in order so far.
    pub stream_bytes: (u64, u64),
    /// The flow's application protocol as recognised from its content (a rule header's
    /// name: "http", "tls", "dns", "smtp", "ftp", …); `None` until (and unless) it is.
    /// A rule naming an app protocol in its header admits only flows recognised as it.
    pub app_proto: Option<&'static str>,
    pub buffers: &'a [(Buffer, &'a [u8])],
}

#[derive(Default, Debug, Clone, serde::Serialize)]
pub struct EngineReport {
    pub compiled: usize,
    pub skipped_by_reason: BTreeMap<String, usize>,
    /// Each refused rule: sid and reason.
    pub refused: Vec<(u32, String)>,
    pub prefilter_patterns: usize,
    /// Which multi-literal matcher the prefilters use.
    pub prefilter: String,
    pub always_checked: usize,
}

pub struct Engine {
    pub rules: Vec<CompiledRule>,
    /// Per buffer: the automaton over distinct fast patterns, the rules of each pattern,
    /// and the pattern numbering's offset into `Scratch::seen` (shared by all buffers).
    prefilters: Vec<Prefilter>,
    patterns_total: usize,
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
    /// Per fast pattern: the generation it was last seen in (later hits are skipped).
    seen: Vec<u32>,
    generation: u32,
    candidates: Vec<u32>,
    hits: Vec<u32>,
    /// Hyperscan's working memory, fitted to every database on first use.
    hs: hs_sys::Scratch,
    hs_fitted: bool,
    /// Scans that failed (the buffer's rules were all checked instead).
    pub hs_failures: u64,
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
            // What follows base64_decode is in the decoded bytes, not in the buffer.
            if matches!(s, Step::Base64 { .. }) {
                break;
            }
            if let Step::Content(c, ..) = s
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

/// One buffer's prefilter. Patterns are numbered per buffer; `base` places them in
/// `Scratch::seen`, which all buffers share.
struct Prefilter {
    buffer: Buffer,
    /// The patterns that are not one repeated byte…
    matcher: Matcher,
    /// …and each one's pattern number.
    ac_ids: Vec<u32>,
    /// The repeated-byte ones.
    runs: Runs,
    /// The rules of each pattern.
    rules: Vec<Vec<u32>>,
    base: usize,
}

/// The multi-literal matcher of a prefilter: Hyperscan/Vectorscan (each literal reported
/// once per scan; 3-5x the throughput of Aho-Corasick's overlapping search on ET Open),
/// or the aho-corasick crate when `MIMAMORI_PREFILTER=ac` (for comparison) or when
/// Hyperscan refuses the set.
enum Matcher {
    Hs(hs_sys::Database),
    Ac(AhoCorasick),
}

impl Matcher {
    fn build(pats: &[&[u8]], used: &mut String) -> Result<Matcher, String> {
        let ac = || {
            AhoCorasickBuilder::new()
                .ascii_case_insensitive(true)
                .match_kind(MatchKind::Standard)
                .build(pats)
                .map(Matcher::Ac)
                .map_err(|e| e.to_string())
        };
        if pats.is_empty() || std::env::var("MIMAMORI_PREFILTER").is_ok_and(|v| v == "ac") {
            return ac();
        }
        match hs_sys::Database::literals(pats, true) {
            Ok(db) => {
                if used.is_empty() {
                    *used = "hyperscan".into();
                }
                Ok(Matcher::Hs(db))
            }
            Err(e) => {
                *used = format!("aho-corasick (hyperscan refused a set: {e})");
                ac()
            }
        }
    }
}

/// Distinct fast patterns of one buffer, the rules of each, and each pattern's index.
type PatternSet = (Vec<Vec<u8>>, Vec<Vec<u32>>, HashMap<Vec<u8>, usize>);

/// One xbits keyword of a rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Xbit {
    pub cmd: FlowbitsCmd,
    pub id: u16,
    pub track: Track,
    pub expire_secs: u32,
}

impl Xbit {
    fn is_test(&self) -> bool {
        matches!(self.cmd, FlowbitsCmd::Isset | FlowbitsCmd::Isnotset)
    }
}

/// A rule's alert rate control.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    /// `None` for detection_filter.
    pub kind: Option<ThresholdKind>,
    pub track: Track,
    pub count: u32,
    pub seconds: u32,
}

/// Flowbit names, numbered as rules are compiled.
#[derive(Default)]
struct BitNames(HashMap<String, u16>);

impl BitNames {
    fn ids(&mut self, names: &[String]) -> Result<Vec<u16>, String> {
        names
            .iter()
            .map(|n| {
                let next = self.0.len();
                let id = *self.0.entry(n.clone()).or_insert(next as u16);
                if next > u16::MAX as usize {
                    return Err("more than 65,536 flowbit names".to_string());
                }
                Ok(id)
            })
            .collect()
    }
}

/// The application protocols the inspector recognises by content (what it can put in
/// [`Inspection::app_proto`]). A rule whose header names another one is refused: it
/// would never match, and treating it as any TCP or UDP would be broader than the rule.
pub const RECOGNISED_APP_PROTOS: &[&str] = &[
    "http", "tls", "dns", "smtp", "ftp", "ssh", "smb", "dcerpc", "imap", "pop3",
];

fn compile_rule(
    l: &Loaded,
    bits: &mut BitNames,
    xbit_names: &mut BitNames,
) -> Result<CompiledRule, String> {
    let r = &l.rule;
    if let Proto::App(a) = r.header.proto
        && !RECOGNISED_APP_PROTOS.contains(&a)
    {
        return Err(format!("protocol {a} is not recognised by the inspector"));
    }
    let mut xbits = Vec::new();
    let (mut bit_conditions, mut bit_actions, mut rate) = (Vec::new(), Vec::new(), None);
    let mut groups: Vec<(Buffer, Vec<Step>)> = Vec::new();
    let (mut direction, mut established, mut dsize) = (None, None, None);
    let (mut flags, mut itype, mut icode) = (None, None, None);
    let mut var_names = verify::VarNames::default();
    let mut stream_size = None;
    let mut app_layer = None;
    let mut push = |b: Buffer, s: Step| match groups.iter_mut().find(|(gb, _)| *gb == b) {
        Some((_, v)) => v.push(s),
        None => groups.push((b, vec![s])),
    };
    for m in &r.matches {
        match m {
            Match::Buffer(_) => {}
            Match::Content(c) => {
                let mut cv: verify::ContentVars = [None; 4];
                for (slot, v) in cv
                    .iter_mut()
                    .zip([&c.depth, &c.offset, &c.distance, &c.within])
                {
                    if let Some(Value::Var(name)) = v {
                        *slot = Some(var_names.slot(name)?);
                    }
                }
                let finder =
                    (!c.nocase).then(|| memchr::memmem::Finder::new(&c.pattern).into_owned());
                push(c.buffer, Step::Content(c.clone(), finder, cv));
            }
            Match::Pcre(p) => push(p.buffer, verify::compile_pcre(p)?),
            Match::Transform(b, t) => push(*b, Step::Transform(*t)),
            Match::Base64Decode {
                bytes,
                offset,
                relative,
                buffer,
            } => push(
                *buffer,
                Step::Base64 {
                    bytes: bytes.map(|b| b as usize),
                    offset: *offset as usize,
                    relative: *relative,
                },
            ),
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
            Match::Flags(f) => flags = Some(*f),
            Match::StreamSize(s) => stream_size = Some(*s),
            Match::Itype(c) => itype = Some(*c),
            Match::Icode(c) => icode = Some(*c),
            Match::AppLayerProtocol { negated, protos } => {
                // A protocol the inspector does not recognise would never be seen: refused.
                let unseen = protos
                    .iter()
                    .flatten()
                    .find(|a| !RECOGNISED_APP_PROTOS.contains(a));
                if let (Some(a), false) = (unseen, negated) {
                    return Err(format!("protocol {a} is not recognised by the inspector"));
                }
                app_layer = Some((*negated, protos.clone()));
            }
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
            Match::ByteTest(args, b) => push(
                *b,
                verify::compile_byte_test(args, &var_names)
                    .map_err(|e| format!("byte_test: {e}"))?,
            ),
            Match::ByteJump(args, b) => push(
                *b,
                verify::compile_byte_jump(args, &var_names)
                    .map_err(|e| format!("byte_jump: {e}"))?,
            ),
            Match::ByteExtract(args, b) => push(
                *b,
                verify::compile_byte_extract(args, &mut var_names)
                    .map_err(|e| format!("byte_extract: {e}"))?,
            ),
            Match::Flowbits(cmd, names, all) => match cmd {
                FlowbitsCmd::Noalert => {}
                FlowbitsCmd::Isset | FlowbitsCmd::Isnotset => {
                    bit_conditions.push((*cmd == FlowbitsCmd::Isset, *all, bits.ids(names)?))
                }
                _ => bit_actions.push((*cmd, bits.ids(names)?)),
            },
            Match::Xbits {
                cmd,
                name,
                track,
                expire,
            } => xbits.push(Xbit {
                cmd: *cmd,
                id: xbit_names.ids(std::slice::from_ref(name))?[0],
                track: *track,
                expire_secs: *expire,
            }),
            Match::Threshold {
                kind,
                track,
                count,
                seconds,
            } => {
                rate = Some(Rate {
                    kind: Some(*kind),
                    track: *track,
                    count: *count,
                    seconds: *seconds,
                })
            }
            Match::DetectionFilter {
                track,
                count,
                seconds,
            } => {
                rate = Some(Rate {
                    kind: None,
                    track: *track,
                    count: *count,
                    seconds: *seconds,
                })
            }
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
        bit_conditions,
        bit_actions,
        xbits,
        rate,
        // Alerts need the names, not the metadata and references (about 10 MB on ET Open).
        meta: crate::rule::Meta {
            metadata: Vec::new(),
            references: Vec::new(),
            ..r.meta.clone()
        },
        action: r.action,
        src: AddrSet::new(&r.header.src),
        dst: AddrSet::new(&r.header.dst),
        header: r.header.clone(),
        direction,
        established,
        groups,
        dsize,
        flags,
        stream_size,
        app_layer,
        itype,
        icode,
    })
}

impl Engine {
    /// Compiles what can be compiled; the report says what was skipped and why.
    pub fn build(set: &RuleSet) -> (Engine, EngineReport) {
        Self::build_from(set.rules.iter())
    }

    /// Like [`Engine::build`], freeing each parsed rule once it is compiled (a lower peak
    /// of memory while loading: the parsed set of ET Open is about 70 MB).
    pub fn build_owned(set: RuleSet) -> (Engine, EngineReport) {
        Self::build_from(set.rules.into_iter())
    }

    fn build_from<L: std::borrow::Borrow<Loaded>>(
        loaded: impl Iterator<Item = L>,
    ) -> (Engine, EngineReport) {
        let mut report = EngineReport::default();
        let mut rules = Vec::new();
        // Rules sharing a fast pattern share its automaton entry: a match is reported once
        // per pattern, not once per rule.
        let mut patterns: HashMap<Buffer, PatternSet> = HashMap::new();
        let mut always = Vec::new();
        let mut by_host: HashMap<u128, Vec<u32>> = HashMap::new();
        let (mut bits, mut xbit_names) = (BitNames::default(), BitNames::default());
        for l in loaded {
            let l = l.borrow();
            match compile_rule(l, &mut bits, &mut xbit_names) {
                Ok(c) => {
                    let id = rules.len() as u32;
                    match fast_pattern(&c.groups) {
                        Some((b, p)) => {
                            let e = patterns.entry(b).or_default();
                            match e.2.get(&p) {
                                Some(&i) => e.1[i].push(id),
                                None => {
                                    e.2.insert(p.clone(), e.0.len());
                                    e.0.push(p);
                                    e.1.push(vec![id]);
                                }
                            }
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
        let mut base = 0;
        for (b, (pats, ids, _)) in patterns {
            report.prefilter_patterns += pats.len();
            let n = pats.len();
            // A pattern of one repeated byte ("|00 00 00 00|", 73 ET rules) matches at every
            // position of a run of that byte (zero padding): ~120 M automaton matches on
            // the office mix. Those are looked for as runs instead.
            let (mut long, mut long_ids, mut runs) = (Vec::new(), Vec::new(), Runs::default());
            for (i, p) in pats.iter().enumerate() {
                if p.iter().all(|&c| c == p[0]) {
                    runs.add(p[0], p.len(), i as u32);
                } else {
                    long.push(p.as_slice());
                    long_ids.push(i as u32);
                }
            }
            match Matcher::build(&long, &mut report.prefilter) {
                Ok(matcher) => {
                    prefilters.push(Prefilter {
                        buffer: b,
                        matcher,
                        ac_ids: long_ids,
                        runs: runs.sorted(),
                        rules: ids,
                        base,
                    });
                    base += n;
                }
                Err(e) => {
                    *report
                        .skipped_by_reason
                        .entry(format!("prefilter for {b:?} failed: {e}"))
                        .or_default() += ids.iter().map(Vec::len).sum::<usize>();
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
                patterns_total: base,
                always,
                by_host,
            },
            report,
        )
    }

    /// A scratch sized and fitted for this engine (its Hyperscan databases included), so
    /// the first inspection after a rule swap allocates nothing: built off the data path.
    pub fn scratch(&self) -> Scratch {
        let mut s = Scratch {
            stamp: vec![0; self.rules.len()],
            seen: vec![0; self.patterns_total],
            hs_fitted: true,
            ..Scratch::default()
        };
        for pf in &self.prefilters {
            if let Matcher::Hs(db) = &pf.matcher {
                // A scan with an unfitted scratch fails and is counted.
                let _ = s.hs.fit(db);
            }
        }
        s
    }

    /// Appends the index of every rule that matches `p` to `alerts`, in rule order.
    /// Fills `scratch.candidates`: rules whose fast pattern or host list this packet hits.
    fn candidates(&self, p: &Inspection<'_>, scratch: &mut Scratch) {
        if scratch.stamp.len() != self.rules.len() || scratch.seen.len() != self.patterns_total {
            scratch.stamp = vec![0; self.rules.len()];
            scratch.seen = vec![0; self.patterns_total];
            scratch.generation = 0;
            scratch.hs_fitted = false;
        }
        scratch.generation = scratch.generation.wrapping_add(1);
        if scratch.generation == 0 {
            scratch.stamp.fill(0);
            scratch.seen.fill(0);
            scratch.generation = 1;
        }
        if !scratch.hs_fitted {
            scratch.hs_fitted = true;
            for pf in &self.prefilters {
                if let Matcher::Hs(db) = &pf.matcher {
                    // A scan with an unfitted scratch fails and is counted.
                    let _ = scratch.hs.fit(db);
                }
            }
        }
        let g = scratch.generation;
        scratch.candidates.clear();
        for (pb, data) in p.buffers {
            let Some(pf) = self.prefilters.iter().find(|p| p.buffer == *pb) else {
                continue;
            };
            let hit = |pat: usize, scratch: &mut Scratch| {
                // A pattern seen earlier in this buffer has queued its rules already.
                let seen = &mut scratch.seen[pf.base + pat];
                if *seen == g {
                    return;
                }
                *seen = g;
                for &id in &pf.rules[pat] {
                    let s = &mut scratch.stamp[id as usize];
                    if *s != g {
                        *s = g;
                        scratch.candidates.push(id);
                    }
                }
            };
            match &pf.matcher {
                Matcher::Ac(ac) => {
                    for m in ac.find_overlapping_iter(*data) {
                        hit(pf.ac_ids[m.pattern().as_usize()] as usize, scratch);
                    }
                }
                Matcher::Hs(db) => {
                    let mut hs = std::mem::take(&mut scratch.hs);
                    let scanned = db.scan(data, &mut hs, &mut |id| {
                        if let Some(&p) = pf.ac_ids.get(id as usize) {
                            hit(p as usize, scratch)
                        }
                    });
                    scratch.hs = hs;
                    if scanned.is_err() {
                        // Only a scratch that does not fit can fail; queue every rule of
                        // the buffer rather than miss one.
                        scratch.hs_failures += 1;
                        for p in 0..pf.rules.len() {
                            hit(p, scratch);
                        }
                    }
                }
            }
            pf.runs.find(data, |i| hit(i as usize, scratch));
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
    }

    /// The rules this packet matches on its own: no flowbits set (a rule testing for a
    /// set bit does not match), no alert-rate limits. `inspect_stateful` is the full one.
    pub fn inspect(&self, p: &Inspection<'_>, scratch: &mut Scratch, alerts: &mut Vec<u32>) {
        self.candidates(p, scratch);
        let before = alerts.len();
        for &id in scratch.candidates.iter().chain(self.always.iter()) {
            let r = &self.rules[id as usize];
            let holds = r.bit_conditions.iter().all(|(isset, _, _)| !isset)
                && r.xbits.iter().all(|x| x.cmd != FlowbitsCmd::Isset);
            if holds && verify::rule_matches(r, p) {
                alerts.push(id);
            }
        }
        alerts[before..].sort_unstable();
    }
}

impl Engine {
    /// [`Engine::inspect`] with the flow's flowbits and the alert rates: rules that set
    /// bits run before rules that test them (as Suricata orders them), `noalert` rules
    /// change bits without alerting, and threshold/detection_filter decide whether a
    /// match alerts.
    pub fn inspect_stateful(
        &self,
        p: &Inspection<'_>,
        scratch: &mut Scratch,
        bits: &mut FlowBits,
        rates: &mut RateTable,
        now_ns: u64,
        alerts: &mut Vec<u32>,
    ) {
        self.candidates(p, scratch);
        let mut hits = std::mem::take(&mut scratch.hits);
        hits.clear();
        for conditional in [false, true] {
            for &id in scratch.candidates.iter().chain(self.always.iter()) {
                let r = &self.rules[id as usize];
                let has_tests = !r.bit_conditions.is_empty() || r.xbits.iter().any(Xbit::is_test);
                if has_tests != conditional {
                    continue;
                }
                // Flowbit tests are cheap: before the content verification.
                let holds = r.bit_conditions.iter().all(|(isset, all, ids)| {
                    let test = |b: &u16| bits.is_set(*b) == *isset;
                    if *all || !*isset {
                        ids.iter().all(test)
                    } else {
                        ids.iter().any(test)
                    }
                });
                let holds = holds
                    && r.xbits
                        .iter()
                        .filter(|x| x.is_test())
                        .all(|x| rates.xbit_is_set(x, p, now_ns) == (x.cmd == FlowbitsCmd::Isset));
                if !holds || !verify::rule_matches(r, p) {
                    continue;
                }
                for x in r.xbits.iter().filter(|x| !x.is_test()) {
                    rates.change_xbit(x, p, now_ns);
                }
                for (cmd, ids) in &r.bit_actions {
                    for &b in ids {
                        match cmd {
                            FlowbitsCmd::Set => bits.set(b),
                            FlowbitsCmd::Unset => bits.unset(b),
                            FlowbitsCmd::Toggle if bits.is_set(b) => bits.unset(b),
                            FlowbitsCmd::Toggle => bits.set(b),
                            _ => {}
                        }
                    }
                }
                if r.meta.noalert {
                    continue;
                }
                if let Some(rate) = &r.rate
                    && !rates.allows(id, rate, p, now_ns)
                {
                    continue;
                }
                hits.push(id);
            }
        }
        alerts.extend_from_slice(&hits);
        alerts.sort_unstable();
        scratch.hits = hits;
    }
}

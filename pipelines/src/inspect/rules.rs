//! The compiled rules every inspector shares, and the policy's `[ips]` section resolved
//! against them. Both are built off the data path (at start, and by the apply path for
//! every new policy) and handed to the stages ready-made.

use crate::firewall::{Cidr, CidrSet};
use crate::packet::{V4_MAPPED, to_ip};
use crate::policy::{IpsConfig, IpsMode};
use crate::stream::StreamLimits;
use mimamori_signatures::engine::{Engine, EngineReport, Rate, RateTable};
use mimamori_signatures::rule::header::Proto;
use mimamori_signatures::rule::options::{ThresholdKind, Track};
use mimamori_signatures::rule::threshold_config::{Entry, RateTrack, SuppressTrack};
use mimamori_signatures::rule::{
    Action, AddrSpec, LoadReport, ThresholdConfig, Vars, load_files, load_texts,
};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

/// Rules parsed but not compiled yet (see [`RuleBook::parse`]).
pub struct ParsedRules {
    set: mimamori_signatures::rule::RuleSet,
    pub load: LoadReport,
}

/// Rules loaded from a file and compiled, shared by every inspector.
pub struct RuleBook {
    pub engine: Engine,
    pub load: LoadReport,
    pub build: EngineReport,
    /// `threshold.config` beside the rules (empty when there is none).
    pub thresholds: ThresholdConfig,
}

fn cidr_text(c: &Cidr) -> String {
    let v4 = c.net >> 32 == V4_MAPPED >> 32;
    let len = c.mask.count_ones() - if v4 { 96 } else { 0 };
    format!("{}/{len}", to_ip(c.net, v4))
}

impl RuleBook {
    /// Loads rules with `$HOME_NET` set to the policy's LAN subnets (when it has any).
    /// A rules folder's `threshold.config` is read too; a bad one refuses the whole book,
    /// naming its line.
    pub fn load(path: &Path, lan: &CidrSet) -> Result<RuleBook, String> {
        let (set, load) = load_files(&[path], &home_net(lan))?;
        let (engine, build) = Engine::build_owned(set);
        let mut book = RuleBook {
            engine,
            load,
            build,
            thresholds: ThresholdConfig::default(),
        };
        let beside = path.join("threshold.config");
        if path.is_dir() && beside.is_file() {
            book.load_thresholds(&beside, lan)?;
        }
        Ok(book)
    }

    /// Reads a `threshold.config` (replacing any read before); `$HOME_NET` as in `load`.
    pub fn load_thresholds(&mut self, file: &Path, lan: &CidrSet) -> Result<(), String> {
        let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
        self.thresholds = ThresholdConfig::parse(&text, &home_net(lan))
            .map_err(|e| format!("{}: {e}", file.display()))?;
        Ok(())
    }

    /// Loads rules from named texts (the parts of a pattern bundle), `$HOME_NET` as in
    /// [`RuleBook::load`].
    pub fn from_texts(texts: &[(&str, &[u8])], lan: &CidrSet) -> RuleBook {
        RuleBook::build(RuleBook::parse(texts, lan))
    }

    /// The first half of [`RuleBook::from_texts`]: the rules parsed, owning their text, so
    /// the caller can let the texts go before the (larger) engine is built.
    pub fn parse(texts: &[(&str, &[u8])], lan: &CidrSet) -> ParsedRules {
        let (set, load) = load_texts(texts, &home_net(lan));
        ParsedRules { set, load }
    }

    /// The second half: the engine built from parsed rules.
    pub fn build(parsed: ParsedRules) -> RuleBook {
        let (engine, build) = Engine::build_owned(parsed.set);
        RuleBook {
            engine,
            load: parsed.load,
            build,
            thresholds: ThresholdConfig::default(),
        }
    }
}

fn home_net(lan: &CidrSet) -> Vars {
    let mut vars = Vars::default();
    if !lan.0.is_empty() {
        let nets: Vec<String> = lan.0.iter().map(cidr_text).collect();
        vars.addr
            .insert("HOME_NET".into(), format!("[{}]", nets.join(",")));
    }
    vars
}

/// The policy's `[ips]` section resolved against one rule book: per rule, whether the
/// policy switched it off and the rate it set. O(rules) to build, so it is built once per
/// policy in the apply path, never on a classify lcore.
pub struct IpsSettings {
    pub book: Arc<RuleBook>,
    pub mode: IpsMode,
    pub(super) disabled: Vec<bool>,
    /// Per rule index: a rate the policy set for its sid.
    pub(super) rate: HashMap<u32, Rate>,
    /// Per rule index: `threshold.config`'s suppressions (`None`: every alert).
    pub(super) suppress: HashMap<u32, Vec<Option<(SuppressTrack, AddrSpec)>>>,
    /// Per rule index: `threshold.config`'s rate filter.
    pub(super) rate_filter: HashMap<u32, RateFilter>,
    /// Per rule index: a rule on packet properties only (`dsize`, `flags`, `itype`, …; no
    /// buffer, no app protocol), whose drop drops the packet, not the flow (as Suricata's
    /// packet rules; a rule of the header alone drops the flow, as its IP-only rules).
    pub(super) packet_only: Vec<bool>,
    /// Reassembly depth per message, and the HTTP body bytes inspected.
    pub stream: StreamLimits,
    pub request_body_limit: usize,
    pub response_body_limit: usize,
}

impl IpsSettings {
    pub fn compile(book: Arc<RuleBook>, cfg: &IpsConfig) -> Arc<IpsSettings> {
        let rules = &book.engine.rules;
        let sids: HashSet<u32> = cfg.disabled_sids.iter().copied().collect();
        let classtypes: HashSet<&str> =
            cfg.disabled_classtypes.iter().map(String::as_str).collect();
        let disabled = rules
            .iter()
            .map(|r| {
                sids.contains(&r.meta.sid)
                    || r.meta
                        .classtype
                        .as_deref()
                        .is_some_and(|c| classtypes.contains(c))
            })
            .collect();
        let limits: HashMap<u32, (u32, u32)> = cfg
            .thresholds
            .iter()
            .rev() // the first entry for a sid wins
            .map(|t| (t.sid, (t.count, t.seconds)))
            .collect();
        let mut rate: HashMap<u32, Rate> = rules
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                let &(count, seconds) = limits.get(&r.meta.sid)?;
                Some((
                    i as u32,
                    Rate {
                        kind: Some(ThresholdKind::Limit),
                        track: Track::Src,
                        count,
                        seconds,
                    },
                ))
            })
            .collect();
        // threshold.config: the first entry naming a rule wins for thresholds and rate
        // filters; suppressions add up. The policy's own limit stays first.
        let (mut suppress, mut rate_filter) = (HashMap::new(), HashMap::new());
        for (i, r) in rules.iter().enumerate() {
            let i = i as u32;
            for e in book
                .thresholds
                .entries
                .iter()
                .filter(|e| e.applies(r.meta.gid, r.meta.sid))
            {
                match e {
                    Entry::Suppress { only, .. } => suppress
                        .entry(i)
                        .or_insert_with(Vec::new)
                        .push(only.clone()),
                    &Entry::Threshold {
                        kind,
                        track,
                        count,
                        seconds,
                        ..
                    } => {
                        rate.entry(i).or_insert(Rate {
                            kind: Some(kind),
                            track,
                            count,
                            seconds,
                        });
                    }
                    &Entry::RateFilter {
                        track,
                        count,
                        seconds,
                        new_action,
                        timeout,
                        ..
                    } => {
                        rate_filter.entry(i).or_insert(RateFilter {
                            track,
                            count,
                            seconds,
                            new_action,
                            timeout,
                        });
                    }
                }
            }
        }
        // A packet rule tests properties of the packet (size, flags, ICMP type, …) and no
        // buffer; a rule of the header alone (Suricata's "IP-only") judges the flow.
        let packet_only = rules
            .iter()
            .map(|r| {
                r.groups.is_empty()
                    && !matches!(r.header.proto, Proto::App(_))
                    && (r.dsize.is_some()
                        || r.flags.is_some()
                        || r.itype.is_some()
                        || r.icode.is_some()
                        || r.stream_size.is_some())
            })
            .collect();
        Arc::new(IpsSettings {
            book,
            mode: cfg.mode,
            disabled,
            rate,
            suppress,
            rate_filter,
            packet_only,
            stream: StreamLimits {
                depth: cfg.stream_depth.max(crate::stream::MIN_DEPTH),
                skip_unheld: true,
            },
            request_body_limit: cfg.request_body_limit,
            response_body_limit: cfg.response_body_limit,
        })
    }

    pub fn is_disabled(&self, rule: u32) -> bool {
        self.disabled.get(rule as usize).copied().unwrap_or(true)
    }

    /// Whether `threshold.config` silences this rule's alert between `src` and `dst`.
    pub fn suppressed(&self, rule: u32, src: u128, dst: u128) -> bool {
        self.suppress.get(&rule).is_some_and(|list| {
            list.iter().any(|only| match only {
                None => true,
                Some((SuppressTrack::Src, a)) => a.matches(src),
                Some((SuppressTrack::Dst, a)) => a.matches(dst),
                Some((SuppressTrack::Either, a)) => a.matches(src) || a.matches(dst),
            })
        })
    }

    pub fn packet_only(&self, rule: u32) -> bool {
        self.packet_only
            .get(rule as usize)
            .copied()
            .unwrap_or(false)
    }
}

/// A `threshold.config` rate filter of one rule.
#[derive(Clone, Copy, Debug)]
pub struct RateFilter {
    pub track: RateTrack,
    pub count: u32,
    pub seconds: u32,
    pub new_action: Action,
    pub timeout: u32,
}

/// What an inspector counts for the policy and `threshold.config`: per-sid limits and
/// thresholds, and rate filters. Cleared when the rules change.
pub struct PolicyRates {
    pub limits: RateTable,
    pub filters: RateFilters,
}

impl PolicyRates {
    pub fn new() -> Self {
        PolicyRates {
            limits: RateTable::new(1 << 16),
            filters: RateFilters::default(),
        }
    }
    pub fn clear(&mut self) {
        self.limits.clear();
        self.filters.map.clear();
    }
}

impl Default for PolicyRates {
    fn default() -> Self {
        Self::new()
    }
}

/// The key a rate filter counts a packet under.
pub fn rate_key(track: RateTrack, m: &crate::packet::PacketMeta) -> u128 {
    let (a, b) = (m.src.min(m.dst), m.src.max(m.dst));
    match track {
        RateTrack::By(Track::Src) => m.src,
        RateTrack::By(Track::Dst) => m.dst,
        RateTrack::By(Track::Rule) => 0,
        RateTrack::By(Track::Both) => a ^ b.rotate_left(64),
        // Both directions of one connection.
        RateTrack::Flow => {
            let (p, q) = (m.src_port.min(m.dst_port), m.src_port.max(m.dst_port));
            a ^ b.rotate_left(64)
                ^ (u128::from(p) << 112 | u128::from(q) << 96)
                ^ u128::from(m.proto)
        }
    }
}

/// Matches per (rule, tracked key) for rate filters: the window's start and count, and
/// until when the new action holds. Bounded like the threshold table (cleared when full,
/// counted).
#[derive(Debug, Default)]
pub struct RateFilters {
    map: HashMap<(u32, u128), (u64, u32, u64)>,
    pub resets: u64,
}

impl RateFilters {
    const CAP: usize = 65_536;

    /// The action this match of `rule` takes: `new_action` once more than `count` matches
    /// came within `seconds`, for `timeout` seconds; else the rule's own.
    pub fn action(
        &mut self,
        rule: u32,
        f: &RateFilter,
        key: u128,
        own: Action,
        now_ns: u64,
    ) -> Action {
        if self.map.len() >= Self::CAP && !self.map.contains_key(&(rule, key)) {
            self.map.clear();
            self.resets += 1;
        }
        let e = self.map.entry((rule, key)).or_insert((now_ns, 0, 0));
        if now_ns < e.2 {
            return f.new_action;
        }
        if now_ns.saturating_sub(e.0) >= u64::from(f.seconds) * 1_000_000_000 {
            *e = (now_ns, 0, 0);
        }
        e.1 = e.1.saturating_add(1);
        if e.1 > f.count {
            e.2 = now_ns.saturating_add(u64::from(f.timeout) * 1_000_000_000);
            return f.new_action;
        }
        own
    }
}

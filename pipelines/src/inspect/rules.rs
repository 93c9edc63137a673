//! The compiled rules every inspector shares, and the policy's `[ips]` section resolved
//! against them. Both are built off the data path (at start, and by the apply path for
//! every new policy) and handed to the stages ready-made.

use crate::firewall::{Cidr, CidrSet};
use crate::packet::{V4_MAPPED, to_ip};
use crate::policy::{IpsConfig, IpsMode};
use crate::stream::StreamLimits;
use mimamori_signatures::engine::{Engine, EngineReport, Rate};
use mimamori_signatures::rule::options::{ThresholdKind, Track};
use mimamori_signatures::rule::{LoadReport, Vars, load_files, load_texts};
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
}

fn cidr_text(c: &Cidr) -> String {
    let v4 = c.net >> 32 == V4_MAPPED >> 32;
    let len = c.mask.count_ones() - if v4 { 96 } else { 0 };
    format!("{}/{len}", to_ip(c.net, v4))
}

impl RuleBook {
    /// Loads rules with `$HOME_NET` set to the policy's LAN subnets (when it has any).
    pub fn load(path: &Path, lan: &CidrSet) -> Result<RuleBook, String> {
        let (set, load) = load_files(&[path], &home_net(lan))?;
        let (engine, build) = Engine::build_owned(set);
        Ok(RuleBook {
            engine,
            load,
            build,
        })
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
        let rate = rules
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
        Arc::new(IpsSettings {
            book,
            mode: cfg.mode,
            disabled,
            rate,
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
}

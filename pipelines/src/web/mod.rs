//! Web filtering on the data path: the name a flow is about (DNS question, TLS SNI, QUIC
//! Initial SNI, HTTP Host and path, or a remembered DNS answer) is looked up in the URL
//! category database and judged by the policy's `[web]` section: allow, monitor or block,
//! with site exceptions and host groups. Blocks answer the client (block page, RST, DNS
//! sinkhole); callbacks to C&C and malware names are counted per LAN host and quarantine it.
//!
//! Only the first payload packets of a flow are looked at ([`WebPhase`], in a side table
//! by flow slot); a block is then kept in the flow like the firewall's. DNS flows are
//! looked at on every query. The filter is one stage behind [`crate::stage::Inspect`].

pub mod answer;
pub mod config;
pub mod hosts;
pub mod names;
pub mod quic;

pub use config::{WebAction, WebConfig};
pub use hosts::{HostAgent, Hosts, Observation, Quarantined};
pub use names::ShortName;

use crate::app::tls;
use crate::classify::DropReason;
use crate::event::{EventKind, EventRecord};
use crate::flow::Side;
use crate::packet::PacketMeta;
use crate::policy::PolicyError;
use crate::reject;
use crate::stage::{FlowRef, Inspect, Output, PacketCtx, StageVerdict};
use crate::wire::arp::ArpPacket;
use crate::wire::{MacAddr, ip_proto};
use mimamori_signatures::category::{Builder, CategoryDb, Match};
use serde::Serialize;
use std::sync::Arc;

/// Where the name came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    Dns,
    Sni,
    Quic,
    Http,
    /// A connection to an address a DNS answer gave for the name.
    DnsAnswer,
}

impl Via {
    pub fn name(self) -> &'static str {
        match self {
            Via::Dns => "dns",
            Via::Sni => "tls-sni",
            Via::Quic => "quic-sni",
            Via::Http => "http-host",
            Via::DnsAnswer => "dns-answer",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Blocked,
    Sinkholed,
    Monitored,
    /// A quarantined host's request, refused.
    Quarantine,
}

impl Outcome {
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Blocked => "blocked",
            Outcome::Sinkholed => "sinkholed",
            Outcome::Monitored => "monitored",
            Outcome::Quarantine => "quarantined",
        }
    }
}

/// No category matched (an exception, or a quarantine refusal).
pub const NO_CATEGORY: u16 = u16::MAX;

/// One web event, fixed-size for the event queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WebHit {
    pub outcome: Outcome,
    pub via: Via,
    pub name: ShortName,
    pub category: u16,
    pub source: u16,
    pub exception: bool,
    pub threat: bool,
    pub group: u16,
    pub mac: MacAddr,
}

/// The policy's judgement of one name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    pub action: WebAction,
    /// The category match behind the action, if any.
    pub hit: Option<Match>,
    /// A site exception decided.
    pub exception: bool,
    pub threat: bool,
    /// The name is in a callback category (C&C, malware): counts towards quarantine.
    pub callback: bool,
}

struct Group {
    subnets: crate::firewall::CidrSet,
    macs: Vec<MacAddr>,
    /// Per database category.
    actions: Vec<WebAction>,
    exceptions: Option<CategoryDb>,
}

/// The `[web]` policy compiled against a category database.
pub struct WebRules {
    db: Arc<CategoryDb>,
    pub config: WebConfig,
    groups: Vec<Group>,
    threat: Vec<bool>,
    callback: Vec<bool>,
    quarantine_allow: Option<CategoryDb>,
}

impl std::fmt::Debug for WebRules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WebRules({:?}, {} groups)", self.db, self.groups.len())
    }
}

const EXC_ALLOW: u16 = 0;

/// Site lists (exceptions, the quarantine allow-list) as small databases, so they match
/// exactly like the category lists.
fn site_list<'a>(
    entries: impl Iterator<Item = (&'a str, bool)>,
) -> Result<Option<CategoryDb>, String> {
    let mut b = Builder::default();
    let src = b.source("policy", "");
    let (allow, block) = (b.category("allow"), b.category("block"));
    debug_assert_eq!(allow, EXC_ALLOW);
    let mut any = false;
    for (entry, is_allow) in entries {
        let cat = if is_allow { allow } else { block };
        let ok = if entry.contains('/') {
            b.add_url(entry, cat, src)
        } else {
            b.add_domain(entry, cat, src)
        };
        if !ok {
            return Err(format!("{entry:?} is not a domain or URL prefix"));
        }
        any = true;
    }
    if !any {
        return Ok(None);
    }
    let (bytes, _) = b.finish(0);
    CategoryDb::from_bytes(bytes)
        .map(Some)
        .map_err(|e| e.to_string())
}

impl WebRules {
    /// Compiles `config` against `db`. A category the policy names must exist in the
    /// database (a typo must not silently allow what it meant to block); `file` names the
    /// policy in the error.
    pub fn new(
        config: &WebConfig,
        db: Arc<CategoryDb>,
        file: &str,
    ) -> Result<WebRules, PolicyError> {
        let n = db.categories.len();
        let index = |name: &str| db.categories.iter().position(|c| c == name);
        let mut groups = Vec::with_capacity(config.groups.len());
        let mut defaults = vec![WebAction::Allow; n];
        for (gi, g) in config.groups.iter().enumerate() {
            let mut actions = if gi == 0 {
                vec![WebAction::Allow; n]
            } else {
                defaults.clone()
            };
            for a in &g.categories {
                match index(&a.category) {
                    Some(c) => actions[c] = a.action,
                    None => {
                        return Err(PolicyError {
                            file: file.to_string(),
                            line: a.line,
                            field: a.field.clone(),
                            message: format!(
                                "no category {:?} in the category database ({} categories: {})",
                                a.category,
                                n,
                                db.categories
                                    .iter()
                                    .take(12)
                                    .cloned()
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        });
                    }
                }
            }
            if gi == 0 {
                defaults = actions.clone();
            }
            let exceptions = site_list(
                g.exceptions
                    .iter()
                    .map(|e| (e.entry.as_str(), e.action != WebAction::Block)),
            )
            .map_err(|message| PolicyError {
                file: file.to_string(),
                line: 0,
                field: format!("web.group[{gi}].exception"),
                message,
            })?;
            groups.push(Group {
                subnets: g.subnets.clone(),
                macs: g.macs.clone(),
                actions,
                exceptions,
            });
        }
        let flags = |list: &[String]| -> Vec<bool> {
            db.categories
                .iter()
                .map(|c| list.iter().any(|l| l == c))
                .collect()
        };
        let quarantine_allow = site_list(
            config.quarantine.allow.iter().map(|n| (n.as_str(), true)),
        )
        .map_err(|message| PolicyError {
            file: file.to_string(),
            line: 0,
            field: "web.quarantine.allow".into(),
            message,
        })?;
        Ok(WebRules {
            threat: flags(&config.threat_categories),
            callback: flags(&config.callback_categories),
            db,
            config: config.clone(),
            groups,
            quarantine_allow,
        })
    }

    pub fn db(&self) -> &Arc<CategoryDb> {
        &self.db
    }

    pub fn category_name(&self, c: u16) -> &str {
        self.db
            .categories
            .get(usize::from(c))
            .map_or("-", |s| s.as_str())
    }
    pub fn source_name(&self, s: u16) -> &str {
        self.db
            .sources
            .get(usize::from(s))
            .map_or("-", |s| s.0.as_str())
    }
    pub fn group_name(&self, g: u16) -> &str {
        self.config
            .groups
            .get(usize::from(g))
            .map_or("-", |g| g.name.as_str())
    }

    /// The host group of a LAN sender: the first listed group naming its MAC or subnet.
    pub fn group_of(&self, mac: MacAddr, src: u128) -> usize {
        self.groups
            .iter()
            .enumerate()
            .skip(1)
            .find(|(_, g)| {
                g.macs.contains(&mac) || (!g.subnets.0.is_empty() && g.subnets.matches(src))
            })
            .map_or(0, |(i, _)| i)
    }

    /// Judges a name (and a path, for HTTP). Exceptions beat categories; among categories
    /// the strictest action wins; a threat category is never less than monitored.
    pub fn decide(
        &self,
        group: usize,
        host: &str,
        path: Option<&str>,
        buf: &mut Vec<Match>,
    ) -> Decision {
        let lookup = |db: &CategoryDb, buf: &mut Vec<Match>| match path {
            Some(p) => db.lookup_url(host, p, buf),
            None => db.lookup_host(host, buf),
        };
        let mut d = Decision {
            action: WebAction::Allow,
            hit: None,
            exception: false,
            threat: false,
            callback: false,
        };
        if lookup(&self.db, buf) {
            let actions = &self.groups[group].actions;
            for m in buf.iter() {
                let c = usize::from(m.category);
                let a = actions[c];
                d.threat |= self.threat[c];
                d.callback |= self.callback[c];
                if d.hit.is_none() || a > d.action {
                    d.action = a;
                    d.hit = Some(*m);
                }
            }
            if d.threat && d.action == WebAction::Allow {
                d.action = WebAction::Monitor;
            }
        }
        let exc = [group, 0];
        for g in exc.iter().take(if group == 0 { 1 } else { 2 }) {
            if let Some(x) = &self.groups[*g].exceptions
                && lookup(x, buf)
            {
                let block = buf.iter().any(|m| m.category != EXC_ALLOW);
                d.action = if block {
                    WebAction::Block
                } else {
                    WebAction::Allow
                };
                d.exception = true;
                break;
            }
        }
        d
    }

    pub fn quarantine_allows(&self, host: &str, buf: &mut Vec<Match>) -> bool {
        self.quarantine_allow
            .as_ref()
            .is_some_and(|x| x.lookup_host(host, buf))
    }
}

/// Counters of the web filter.
#[derive(Clone, Debug, Default, Serialize)]
pub struct WebStats {
    pub dns_queries: u64,
    pub dns_answers_recorded: u64,
    pub dns_answers_replaced: u64,
    pub tls_sni: u64,
    pub quic_sni: u64,
    /// QUIC Initials that did not decrypt or held no SNI in their first packet.
    pub quic_unreadable: u64,
    pub http_hosts: u64,
    /// Flows given up on: no name in their first payload packets.
    pub no_name: u64,
    pub named_by_answer: u64,
    pub categorised: u64,
    pub blocked: u64,
    pub sinkholed: u64,
    pub monitored: u64,
    pub exceptions: u64,
    pub quarantine_refused: u64,
    pub callbacks: u64,
    pub dhcp: u64,
    pub arp: u64,
    pub host_observations_dropped: u64,
}

/// The web filter's phase in one flow: an explicit enum and a pure transition, like
/// `flow::tcp`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WebPhase {
    /// Looking for a name: `tries` payload packets seen without one.
    #[default]
    Waiting,
    Tried(u8),
    /// Judged, or given up on: nothing more to look at.
    Done,
}

impl WebPhase {
    /// After a payload packet that carried no name: wait for the next one, or give up
    /// (`Done`) after [`MAX_TRIES`].
    pub fn no_name(self) -> WebPhase {
        let tries = match self {
            WebPhase::Waiting => 1,
            WebPhase::Tried(n) => n + 1,
            WebPhase::Done => return WebPhase::Done,
        };
        if tries >= MAX_TRIES {
            WebPhase::Done
        } else {
            WebPhase::Tried(tries)
        }
    }
}

/// One flow's web state, in the side table at the flow's slot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WebFlow {
    pub phase: WebPhase,
    /// The flow is from a quarantined host: only the allow-list passes.
    pub quarantined: bool,
}

#[inline]
fn answer_slot(addr: u128) -> usize {
    let x = (addr as u64) ^ ((addr >> 64) as u64).rotate_left(29);
    (x.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) as usize
}

/// Payload packets looked at before a flow is given up on.
const MAX_TRIES: u8 = 3;

#[derive(Clone, Copy, Default)]
struct AnswerSlot {
    addr: u128,
    expires_ns: u64,
    name: ShortName,
}

/// One worker's web filter.
pub struct WebFilter {
    rules: Arc<WebRules>,
    pub hosts: HostAgent,
    /// The side table: per flow slot, grown on demand (bounded by the flow table).
    flows: Vec<WebFlow>,
    matches: Vec<Match>,
    name: [u8; names::NAME_MAX],
    answers: Box<[AnswerSlot]>,
    scratch: Box<[u8]>,
    crypto: Box<[u8]>,
    page: Box<[u8]>,
    pub stats: WebStats,
}

/// Blocks the rest of the flow; a TCP peer is answered with RSTs from then on.
fn block_flow(m: &PacketMeta, reason: DropReason) -> StageVerdict {
    StageVerdict::BlockFlow {
        reason,
        reset: m.proto == ip_proto::TCP,
    }
}

impl WebFilter {
    pub fn new(rules: Arc<WebRules>, hosts: Arc<Hosts>) -> Self {
        let slots = rules.config.dns_answers.next_power_of_two();
        Self {
            hosts: HostAgent::new(hosts),
            flows: Vec::new(),
            matches: Vec::with_capacity(16),
            name: [0; names::NAME_MAX],
            answers: vec![AnswerSlot::default(); slots].into_boxed_slice(),
            scratch: vec![0; 2048].into_boxed_slice(),
            crypto: vec![0; 4096].into_boxed_slice(),
            page: vec![0; answer::PAGE_MAX + 256].into_boxed_slice(),
            stats: WebStats::default(),
            rules,
        }
    }

    pub fn rules(&self) -> &Arc<WebRules> {
        &self.rules
    }

    /// Takes over what `old` (the filter of the policy before) learnt on the data path:
    /// its flows' states, its counters and, when the table has the same size, the DNS
    /// answers it remembered. Called at a policy swap, so nothing is forgotten.
    pub fn adopt(&mut self, old: WebFilter) {
        self.flows = old.flows;
        self.stats = old.stats;
        if old.answers.len() == self.answers.len() {
            self.answers = old.answers;
        }
    }

    /// The state of flow `slot` (the default for slots never seen).
    pub fn flow_state(&self, slot: u32) -> WebFlow {
        self.flows.get(slot as usize).copied().unwrap_or_default()
    }

    /// Whether a quarantined host may open this flow at all: DNS and DHCP, and TCP (its
    /// first payload then decides: allow-listed names pass, web requests get the page).
    pub fn quarantine_admits(m: &PacketMeta) -> bool {
        match m.proto {
            ip_proto::UDP => matches!(m.dst_port, 53 | 67 | 68 | 547),
            ip_proto::TCP => true,
            ip_proto::ICMPV6 => true, // neighbour discovery is needed to reach anything
            _ => false,
        }
    }

    /// A LAN ARP frame: learn which MAC holds which IPv4 address.
    pub fn learn_arp(&mut self, frame: &[u8], m: &PacketMeta) {
        let Some(arp) = frame
            .get(usize::from(m.l3_offset)..)
            .and_then(|b| ArpPacket::new_checked(b).ok())
        else {
            return;
        };
        let ip = arp.sender_ip();
        if ip != [0; 4] {
            self.stats.arp += 1;
            self.hosts.observe(Observation::Arp {
                mac: MacAddr(arp.sender_mac()),
                ip: crate::packet::v4_bits(ip),
            });
        }
    }

    /// The flow's entry, set up when the flow has just opened: a quarantined LAN host's
    /// flows carry the mark.
    fn entry(&mut self, f: FlowRef, pkt: &PacketCtx<'_>) -> &mut WebFlow {
        let slot = f.slot as usize;
        if slot >= self.flows.len() {
            self.flows.resize(slot + 1, WebFlow::default());
        }
        if f.opened {
            self.flows[slot] = WebFlow {
                phase: WebPhase::Waiting,
                quarantined: pkt.side == Side::Lan && self.hosts.is_quarantined(pkt.meta.src_mac),
            };
        }
        &mut self.flows[slot]
    }

    fn dns(&mut self, pkt: &PacketCtx<'_>, out: &mut Output<'_>) -> StageVerdict {
        let (payload, m) = (pkt.payload(), pkt.meta);
        let Some(q) = names::dns_question(payload, &mut self.name) else {
            return StageVerdict::Pass;
        };
        let name = self.name;
        let Ok(host) = std::str::from_utf8(&name[..q.len]) else {
            return StageVerdict::Pass;
        };
        if q.response {
            if pkt.side == Side::Wan {
                let short = ShortName::new(host.as_bytes());
                let mask = self.answers.len() - 1;
                let (answers, stats) = (&mut self.answers, &mut self.stats);
                names::dns_answers(payload, &q, 16, |addr, ttl| {
                    let slot = &mut answers[(answer_slot(addr)) & mask];
                    if slot.addr != addr && slot.expires_ns > pkt.now_ns {
                        stats.dns_answers_replaced += 1;
                    }
                    *slot = AnswerSlot {
                        addr,
                        expires_ns: pkt.now_ns + u64::from(ttl.clamp(60, 3600)) * 1_000_000_000,
                        name: short,
                    };
                    stats.dns_answers_recorded += 1;
                });
            }
            return StageVerdict::Pass;
        }
        if pkt.side != Side::Lan {
            return StageVerdict::Pass;
        }
        self.stats.dns_queries += 1;
        let seen = Seen {
            via: Via::Dns,
            name: host,
            path: None,
        };
        if self.judge(pkt, &seen, Outcome::Sinkholed, out).is_none() {
            return StageVerdict::Pass;
        }
        let c = &self.rules.config;
        let (v4, v6) = (c.sinkhole_v4, c.sinkhole_v6);
        out.injects.push_with(pkt.side, |o| {
            answer::dns_sinkhole(m, payload, &q, v4, v6, o)
        });
        StageVerdict::DropPacket(DropReason::WebSinkhole)
    }

    fn quic(&mut self, pkt: &PacketCtx<'_>, out: &mut Output<'_>) -> Option<StageVerdict> {
        let n = match quic::initial_crypto(pkt.payload(), &mut self.scratch, &mut self.crypto) {
            Ok(n) => n,
            Err(_) => {
                self.stats.quic_unreadable += 1;
                return None;
            }
        };
        let crypto = std::mem::take(&mut self.crypto);
        let sni = match tls::parse_handshake_prefix(&crypto[..n]) {
            Ok(h) => h.sni.map(|s| ShortName::new(s.as_bytes())),
            Err(_) => None,
        };
        self.crypto = crypto;
        let Some(sni) = sni else {
            self.stats.quic_unreadable += 1;
            return None;
        };
        self.stats.quic_sni += 1;
        let seen = Seen {
            via: Via::Quic,
            name: sni.as_str(),
            path: None,
        };
        Some(match self.judge(pkt, &seen, Outcome::Blocked, out) {
            Some(_) => block_flow(pkt.meta, DropReason::WebBlock),
            None => StageVerdict::Pass,
        })
    }

    /// A client's TCP payload: the SNI of a ClientHello or the Host of an HTTP request.
    fn tcp(
        &mut self,
        pkt: &PacketCtx<'_>,
        st: WebFlow,
        out: &mut Output<'_>,
    ) -> (WebFlow, StageVerdict) {
        let (payload, m) = (pkt.payload(), pkt.meta);
        let mut path_buf = [0u8; 512];
        let (host, path, via) = if tls::looks_like_tls(payload) {
            match tls::parse_client_hello_prefix(payload) {
                Ok(h) if h.sni.is_some() => {
                    self.stats.tls_sni += 1;
                    (
                        ShortName::new(h.sni.unwrap_or("").as_bytes()),
                        None,
                        Via::Sni,
                    )
                }
                _ => return self.give_up_or_wait(pkt, st, out),
            }
        } else if let Some((h, p)) = names::http_target(payload) {
            self.stats.http_hosts += 1;
            let p = &p.as_bytes()[..p.len().min(path_buf.len())];
            path_buf[..p.len()].copy_from_slice(p);
            (ShortName::new(h.as_bytes()), Some(p.len()), Via::Http)
        } else {
            return self.give_up_or_wait(pkt, st, out);
        };
        let done = WebFlow {
            phase: WebPhase::Done,
            ..st
        };
        let seen = Seen {
            via,
            name: host.as_str(),
            path: path.and_then(|n| std::str::from_utf8(&path_buf[..n]).ok()),
        };
        if st.quarantined {
            if self.rules.quarantine_allows(seen.name, &mut self.matches) {
                return (done, StageVerdict::Pass);
            }
            self.stats.quarantine_refused += 1;
            let d = Decision {
                action: WebAction::Block,
                hit: None,
                exception: false,
                threat: true,
                callback: false,
            };
            self.refuse(pkt, via, answer::PageKind::Quarantine, "quarantine", out);
            let group = self.rules.group_of(m.src_mac, m.src);
            self.event(pkt, &seen, Outcome::Quarantine, &d, group, out);
            return (done, block_flow(m, DropReason::Quarantine));
        }
        let Some(d) = self.judge(pkt, &seen, Outcome::Blocked, out) else {
            return (done, StageVerdict::Pass);
        };
        let cat_name = match d.hit {
            Some(h) => self.rules.category_name(h.category).to_string(),
            None => "site exception".to_string(),
        };
        self.refuse(pkt, via, answer::PageKind::Blocked, &cat_name, out);
        (done, block_flow(m, DropReason::WebBlock))
    }

    /// Answers a refused TCP request: the page over HTTP, a RST to the client otherwise;
    /// a RST to the server either way.
    fn refuse(
        &mut self,
        pkt: &PacketCtx<'_>,
        via: Via,
        kind: answer::PageKind,
        category: &str,
        out: &mut Output<'_>,
    ) {
        let (frame, m) = (pkt.frame, pkt.meta);
        if via == Via::Http {
            let host = names::http_target(pkt.payload()).map_or("", |(h, _)| h);
            let n = answer::page(
                kind,
                host,
                category,
                &self.rules.config.desk_contact,
                &mut self.page,
            );
            let page = &self.page[..n];
            out.injects
                .push_with(Side::Lan, |o| answer::page_to_client(m, page, o));
        } else {
            out.injects
                .push_with(Side::Lan, |o| reject::build(frame, m, o));
        }
        out.injects
            .push_with(Side::Wan, |o| answer::rst_to_server(m, o));
    }

    fn give_up_or_wait(
        &mut self,
        pkt: &PacketCtx<'_>,
        st: WebFlow,
        out: &mut Output<'_>,
    ) -> (WebFlow, StageVerdict) {
        let st = WebFlow {
            phase: st.phase.no_name(),
            ..st
        };
        if st.phase != WebPhase::Done {
            return (st, StageVerdict::Pass);
        }
        self.stats.no_name += 1;
        if st.quarantined {
            self.stats.quarantine_refused += 1;
            let (frame, m) = (pkt.frame, pkt.meta);
            out.injects
                .push_with(Side::Lan, |o| reject::build(frame, m, o));
            out.injects
                .push_with(Side::Wan, |o| answer::rst_to_server(m, o));
            return (st, block_flow(m, DropReason::Quarantine));
        }
        (st, self.by_answer(pkt, out))
    }

    /// Judges a flow with no name of its own by the name a DNS answer gave its address.
    fn by_answer(&mut self, pkt: &PacketCtx<'_>, out: &mut Output<'_>) -> StageVerdict {
        let m = pkt.meta;
        let slot = self.answers[answer_slot(m.dst) & (self.answers.len() - 1)];
        if slot.addr != m.dst || slot.expires_ns <= pkt.now_ns || slot.name.is_empty() {
            return StageVerdict::Pass;
        }
        self.stats.named_by_answer += 1;
        let name = slot.name;
        let seen = Seen {
            via: Via::DnsAnswer,
            name: name.as_str(),
            path: None,
        };
        if self.judge(pkt, &seen, Outcome::Blocked, out).is_none() {
            return StageVerdict::Pass;
        }
        if m.proto == ip_proto::TCP {
            let frame = pkt.frame;
            out.injects
                .push_with(Side::Lan, |o| reject::build(frame, m, o));
            out.injects
                .push_with(Side::Wan, |o| answer::rst_to_server(m, o));
        }
        block_flow(m, DropReason::WebBlock)
    }

    /// Judges a name by the sender's host group: counts it, writes the monitor or block
    /// event (`blocked` says which outcome a block is), and returns the decision when the
    /// caller must block.
    fn judge(
        &mut self,
        pkt: &PacketCtx<'_>,
        seen: &Seen<'_>,
        blocked: Outcome,
        out: &mut Output<'_>,
    ) -> Option<Decision> {
        let m = pkt.meta;
        let group = self.rules.group_of(m.src_mac, m.src);
        let d = self
            .rules
            .decide(group, seen.name, seen.path, &mut self.matches);
        self.count(&d, m, pkt.now_ns);
        let outcome = match d.action {
            WebAction::Allow => return None,
            WebAction::Monitor => Outcome::Monitored,
            WebAction::Block if blocked == Outcome::Sinkholed => {
                self.stats.sinkholed += 1;
                blocked
            }
            WebAction::Block => {
                self.stats.blocked += 1;
                blocked
            }
        };
        self.event(pkt, seen, outcome, &d, group, out);
        (outcome != Outcome::Monitored).then_some(d)
    }

    fn count(&mut self, d: &Decision, m: &PacketMeta, now_ns: u64) {
        if d.hit.is_some() {
            self.stats.categorised += 1;
        }
        if d.exception {
            self.stats.exceptions += 1;
        }
        if d.action == WebAction::Monitor {
            self.stats.monitored += 1;
        }
        if d.callback {
            self.stats.callbacks += 1;
            self.hosts.observe(Observation::Callback {
                mac: m.src_mac,
                ip: m.src,
                ts_ns: now_ns,
            });
        }
    }

    fn event(
        &self,
        pkt: &PacketCtx<'_>,
        seen: &Seen<'_>,
        outcome: Outcome,
        d: &Decision,
        group: usize,
        out: &mut Output<'_>,
    ) {
        let m = pkt.meta;
        let hit = WebHit {
            outcome,
            via: seen.via,
            name: ShortName::new(seen.name.as_bytes()),
            category: d.hit.map_or(NO_CATEGORY, |h| h.category),
            source: d.hit.map_or(NO_CATEGORY, |h| h.source),
            exception: d.exception,
            threat: d.threat,
            group: group as u16,
            mac: m.src_mac,
        };
        let mut rec =
            EventRecord::from_packet(m, pkt.side, pkt.flow_id(), EventKind::Web(hit), pkt.now_ns);
        rec.pcap_cnt = pkt.pcap_cnt;
        out.events.push(rec);
    }
}

/// A name found in a packet, and where.
struct Seen<'a> {
    via: Via,
    name: &'a str,
    path: Option<&'a str>,
}

impl Inspect for WebFilter {
    /// Looks at a packet of a flow still being judged; DHCP and DNS on every packet.
    fn inspect(&mut self, pkt: &PacketCtx<'_>, out: &mut Output<'_>) -> StageVerdict {
        let Some(f) = pkt.flow else {
            return StageVerdict::Pass;
        };
        let m = pkt.meta;
        let st = *self.entry(f, pkt);
        if f.opened && st.quarantined && !WebFilter::quarantine_admits(m) {
            self.stats.quarantine_refused += 1;
            self.flows[f.slot as usize].phase = WebPhase::Done;
            return StageVerdict::BlockFlow {
                reason: DropReason::Quarantine,
                reset: false,
            };
        }
        if st.phase == WebPhase::Done || m.payload_len == 0 {
            return StageVerdict::Pass;
        }
        let lan_client = f.initiator_side == Side::Lan;
        let (next, v) = match m.proto {
            ip_proto::UDP => {
                if m.dst_port == 67 || m.src_port == 67 {
                    if let Some(d) = names::dhcp(pkt.payload()) {
                        self.stats.dhcp += 1;
                        self.hosts.observe(Observation::Dhcp(d));
                    }
                    return StageVerdict::Pass;
                }
                if m.dst_port == 53 || m.src_port == 53 {
                    return self.dns(pkt, out);
                }
                let done = WebFlow {
                    phase: WebPhase::Done,
                    ..st
                };
                if !(lan_client && f.from_initiator) {
                    (done, StageVerdict::Pass)
                } else if quic::looks_like_initial(pkt.payload())
                    && let Some(v) = self.quic(pkt, out)
                {
                    (done, v)
                } else {
                    (done, self.by_answer(pkt, out))
                }
            }
            ip_proto::TCP if lan_client && f.from_initiator => self.tcp(pkt, st, out),
            ip_proto::TCP => (st, StageVerdict::Pass),
            _ => (
                WebFlow {
                    phase: WebPhase::Done,
                    ..st
                },
                StageVerdict::Pass,
            ),
        };
        self.flows[f.slot as usize] = next;
        v
    }

    /// Nothing to free: a slot's entry is set afresh when its next flow opens.
    fn flow_ended(&mut self, _slot: u32) {}

    /// Hands host observations over and writes quarantine events.
    fn tick(&mut self, now_ns: u64, out: &mut Output<'_>) {
        for q in self.hosts.sync(now_ns) {
            out.events.push(EventRecord::quarantine(*q, now_ns));
        }
        self.stats.host_observations_dropped = self.hosts.dropped;
    }
}

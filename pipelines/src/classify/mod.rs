//! The classify stage: parse, flow lookup or create, firewall decision cached in the flow,
//! TCP state, fragments, and the reject answer; then, for what the firewall allows, the
//! inspectors ([`Stages`]: web filter, signatures) through the one stage interface
//! ([`crate::stage`]). The same code runs in `replay` and on the live DPDK path; one
//! `Classifier` per worker, so nothing here is shared or locked.

use crate::error::ParseErrorCounts;
use crate::event::{EventKind, EventQueue, EventRecord};
use crate::flow::{EndReason, Flow, FlowKey, FlowTable, FlowTableStats, FlowVerdict, Side, tcp};
use crate::fragment::{FragmentStats, FragmentTracker, FragmentVerdict};
use crate::inspect::{Inspector, IpsSettings};
use crate::packet::{self, PacketMeta, ParseOptions, V4_MAPPED};
use crate::policy::{FlowEvents, Policy, SideMap};
use crate::reject::{self, InjectQueue};
use crate::stage::{Arrival, FlowRef, Inspect, Output, PacketCtx, StageVerdict};
use crate::web::{WebFilter, WebStats};
use crate::wire::tcp::flags::{ACK as TCP_ACK, SYN as TCP_SYN};
use crate::wire::{icmp, ip_proto};
use serde::Serialize;
use std::sync::Arc;

mod open;

macro_rules! reasons {
    ($ty:ident { $($variant:ident => $name:literal, $doc:literal;)* }) => {
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum $ty { $(#[doc = $doc] $variant,)* }
        impl $ty {
            pub const ALL: &'static [$ty] = &[$($ty::$variant,)*];
            pub const COUNT: usize = Self::ALL.len();
            pub fn name(self) -> &'static str { match self { $($ty::$variant => $name,)* } }
        }
    };
}

reasons!(ForwardReason {
    NonIp => "non_ip", "ARP and other non-IP frames are bridged untouched";
    LinkLocal => "link_local", "IPv6 neighbour discovery and MLD, bridged like ARP";
    Flow => "flow", "belongs to a flow the firewall allowed";
    Related => "related", "ICMP error about a flow the firewall allowed";
});

reasons!(DropReason {
    Malformed => "malformed", "the frame did not parse (see parse errors)";
    FirewallDeny => "firewall_deny", "the flow's firewall verdict is deny";
    FirewallReject => "firewall_reject", "the flow's firewall verdict is reject (an answer was sent)";
    TcpNoFlow => "tcp_no_flow", "a TCP packet that cannot open a flow (RST, or not a SYN with loose pickup off)";
    TcpInvalid => "tcp_invalid", "a TCP packet out of the connection's state (with tcp_drop_invalid)";
    FlowTableFull => "flow_table_full", "no room for a new flow (on_full = drop-new)";
    FragmentOverlap => "fragment_overlap", "a fragment overlapping another of its datagram";
    FragmentNoHead => "fragment_no_head", "a later fragment before its first one";
    FragmentTooMany => "fragment_too_many", "a datagram in too many fragments";
    FragmentTableFull => "fragment_table_full", "no room to track another fragmented datagram";
    WebBlock => "web_block", "the web filter blocked the flow's name (an answer was sent where due)";
    WebSinkhole => "web_sinkhole", "a DNS query for a blocked name, answered by the sinkhole";
    Quarantine => "quarantine", "a quarantined host's traffic other than DNS, DHCP and the allow-list";
    Signature => "signature", "an IPS-mode signature dropped or rejected it (or its flow earlier)";
});

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Forward(ForwardReason),
    Drop(DropReason),
}

impl Verdict {
    pub fn is_forward(self) -> bool {
        matches!(self, Verdict::Forward(_))
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stats {
    pub packets: u64,
    pub bytes: u64,
    pub forwarded: [u64; ForwardReason::COUNT],
    pub dropped: [u64; DropReason::COUNT],
    pub parse_errors: ParseErrorCounts,
    /// TCP packets out of state (dropped only with `tcp_drop_invalid`).
    pub tcp_invalid: u64,
    /// Hits per firewall rule, then the LAN and WAN defaults.
    pub rule_hits: Vec<u64>,
}

impl Stats {
    fn new(rules: usize) -> Self {
        Self {
            packets: 0,
            bytes: 0,
            forwarded: [0; ForwardReason::COUNT],
            dropped: [0; DropReason::COUNT],
            parse_errors: ParseErrorCounts::default(),
            tcp_invalid: 0,
            rule_hits: vec![0; rules + 2],
        }
    }
    pub fn forwarded_total(&self) -> u64 {
        self.forwarded.iter().sum()
    }
    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().sum()
    }
}

/// A serialisable snapshot of everything the classifier counts.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub packets: u64,
    pub bytes: u64,
    pub forwarded: std::collections::BTreeMap<&'static str, u64>,
    pub dropped: std::collections::BTreeMap<&'static str, u64>,
    pub parse_errors: ParseErrorCounts,
    pub tcp_invalid: u64,
    pub flows: FlowTableStats,
    pub flows_live: usize,
    pub fragments: FragmentStats,
    pub rule_hits: Vec<(String, u64)>,
    pub injected: u64,
    pub inject_dropped: u64,
    pub events_dropped: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub web: Option<WebStats>,
}

/// Most frames handled as one burst (bigger bursts are split).
pub const BURST_MAX: usize = 64;

/// A frame after the first pass of a burst.
#[derive(Clone, Copy, Default)]
struct Prepared {
    m: PacketMeta,
    class: Class,
    key: Keyed,
    found: Option<u32>,
}

#[derive(Clone, Copy, Default)]
enum Class {
    Malformed(crate::error::ParseError),
    /// Non-IP, fragments and ICMP: decided by the general path.
    #[default]
    Slow,
    /// A plain TCP/UDP/other-IP packet, its flow looked up in the first pass.
    Fast,
}

/// One packet on its way through the classifier: parsed once, here.
#[derive(Clone, Copy)]
struct Pkt<'a> {
    frame: &'a [u8],
    m: &'a PacketMeta,
    at: Arrival,
}

impl<'a> Pkt<'a> {
    fn ctx(&self, flow: Option<FlowRef>) -> PacketCtx<'a> {
        PacketCtx {
            frame: self.frame,
            meta: self.m,
            side: self.at.side,
            flow,
            now_ns: self.at.now_ns,
            pcap_cnt: self.at.pcap_cnt,
        }
    }
}

/// A packet's flow key, its hash and which end of the key sent it.
#[derive(Clone, Copy, Default)]
struct Keyed {
    key: FlowKey,
    hash: u64,
    src_is_lo: bool,
}

/// The inspectors behind the firewall, in the order they run. Each is a peer behind
/// [`Inspect`]; a new one is a field here and a link in [`Stages::each`].
#[derive(Default)]
pub struct Stages {
    pub web: Option<WebFilter>,
    pub ips: Option<Inspector>,
}

impl Stages {
    fn each(&mut self) -> impl Iterator<Item = &mut dyn Inspect> {
        let web = self.web.as_mut().map(|w| w as &mut dyn Inspect);
        let ips = self.ips.as_mut().map(|i| i as &mut dyn Inspect);
        web.into_iter().chain(ips)
    }

    /// Runs the stages in order while the packet passes; the strictest verdict wins.
    fn inspect(&mut self, pkt: &PacketCtx<'_>, out: &mut Output<'_>) -> StageVerdict {
        let mut v = StageVerdict::Pass;
        for s in self.each() {
            v = v.strictest(s.inspect(pkt, out));
            if !v.is_pass() {
                break;
            }
        }
        v
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.web.is_none() && self.ips.is_none()
    }
}

/// What a flow's end touches: its flow-end event and every stage's state for the slot.
struct FlowEnd<'a> {
    events: &'a mut EventQueue,
    stages: &'a mut Stages,
    which: FlowEvents,
    now_ns: u64,
}

impl FlowEnd<'_> {
    fn ended(&mut self, slot: u32, f: &Flow, reason: EndReason) {
        for s in self.stages.each() {
            s.flow_ended(slot);
        }
        push_flow_end(self.events, self.which, f, reason, self.now_ns);
    }
}

pub struct Classifier {
    policy: Arc<Policy>,
    scratch: Box<[Prepared]>,
    flows: FlowTable,
    frags: FragmentTracker,
    pub stats: Stats,
    pub events: EventQueue,
    pub injects: InjectQueue,
    injected: u64,
    stages: Stages,
    /// Moves with every policy swap; flows decided under an older one are re-decided.
    generation: u32,
    parse: ParseOptions,
}

/// Slots in the flow table visited for expiry on each `tick`.
const EXPIRY_BUDGET: usize = 16;

impl Classifier {
    pub fn new(policy: Arc<Policy>) -> Self {
        Self::with_stages(policy, Stages::default())
    }

    /// A classifier that also filters the web (`web` is built from the same policy's
    /// `[web]` section and a category database).
    pub fn with_web(policy: Arc<Policy>, web: Option<WebFilter>) -> Self {
        Self::with_stages(policy, Stages { web, ips: None })
    }

    /// A classifier that runs `stages` on what its firewall allows.
    pub fn with_stages(policy: Arc<Policy>, stages: Stages) -> Self {
        Self {
            stages,
            generation: 0,
            flows: FlowTable::new(policy.flows.capacity, policy.flows.on_full),
            frags: FragmentTracker::new(policy.fragments.capacity, policy.fragments.timeout),
            stats: Stats::new(policy.firewall.rules.len()),
            events: EventQueue::new(policy.events.queue),
            injects: InjectQueue::new(64),
            injected: 0,
            scratch: vec![Prepared::default(); BURST_MAX].into_boxed_slice(),
            parse: ParseOptions::default(),
            policy,
        }
    }

    /// What the parser checks (replay of third-party captures may skip IPv4 checksums).
    pub fn set_parse_options(&mut self, opts: ParseOptions) {
        self.parse = opts;
    }

    pub fn policy(&self) -> &Arc<Policy> {
        &self.policy
    }
    pub fn flows(&self) -> &FlowTable {
        &self.flows
    }
    pub fn web(&self) -> Option<&WebFilter> {
        self.stages.web.as_ref()
    }
    pub fn ips(&self) -> Option<&Inspector> {
        self.stages.ips.as_ref()
    }
    pub fn ips_mut(&mut self) -> Option<&mut Inspector> {
        self.stages.ips.as_mut()
    }
    /// Starts inspecting with `ips` when there was no inspector (rules arrived while
    /// running); flows already open are inspected from their next packet on.
    pub fn add_ips(&mut self, ips: Inspector) {
        if self.stages.ips.is_none() {
            self.stages.ips = Some(ips);
        }
    }
    pub fn stages(&self) -> &Stages {
        &self.stages
    }

    /// Swaps in policy `version` between bursts, with the tables the apply path compiled
    /// from it: a web filter (which takes over the old one's flow states and counters)
    /// and the IPS settings. Constant time apart from dropping what is replaced. Flows
    /// stay; each is re-decided by the new firewall rules at its next packet (blocks
    /// already taken stand). Table sizes are fixed at start: the caller refuses policies
    /// that change them.
    pub fn set_policy(
        &mut self,
        policy: Arc<Policy>,
        web: Option<WebFilter>,
        ips: Option<Arc<IpsSettings>>,
        version: u64,
    ) {
        self.events.policy_version = version;
        self.stats.rule_hits = vec![0; policy.firewall.rules.len() + 2];
        self.policy = policy;
        self.stages.web = match (web, self.stages.web.take()) {
            (Some(mut new), Some(old)) => {
                new.adopt(old);
                Some(new)
            }
            (new, _) => new,
        };
        if let (Some(i), Some(s)) = (self.stages.ips.as_mut(), ips) {
            i.set_settings(s);
        }
        self.generation = self.generation.wrapping_add(1);
    }

    /// Re-decides a flow's firewall verdict under the current policy, as if its first
    /// packet arrived now.
    fn redecide(&mut self, idx: u32) {
        let f = self.flows.get(idx);
        let ((src, src_port), (dst, dst_port)) = f.endpoints();
        let v4 = src >> 32 == V4_MAPPED >> 32;
        let m = PacketMeta {
            l3: if v4 {
                packet::L3::Ipv4
            } else {
                packet::L3::Ipv6
            },
            src,
            dst,
            src_port,
            dst_port,
            proto: f.key.proto,
            l4_offset: 1,
            ..PacketMeta::default()
        };
        let keep = matches!(f.key.proto, ip_proto::ICMP | ip_proto::ICMPV6) || f.blocked.is_some();
        let d = self.policy.firewall.decide(f.initiator_side, &m);
        let f = self.flows.get_mut(idx);
        f.generation = self.generation;
        if !keep {
            f.verdict = d.verdict;
            f.rule = d.rule;
        }
    }

    /// Classifies one frame that arrived on `side`.
    #[inline]
    pub fn process(&mut self, frame: &[u8], side: Side, now_ns: u64) -> Verdict {
        self.process_with(frame, now_ns, |_| side)
    }

    /// Classifies one frame whose side is found from its parsed headers (replay of a
    /// capture taken on one wire).
    #[inline]
    pub fn process_with(
        &mut self,
        frame: &[u8],
        now_ns: u64,
        side_of: impl FnOnce(&PacketMeta) -> Side,
    ) -> Verdict {
        self.stats.packets += 1;
        self.stats.bytes += frame.len() as u64;
        let mut m = PacketMeta::default();
        let v = match packet::parse_into(frame, &mut m, self.parse) {
            Ok(()) => {
                let at = Arrival {
                    side: side_of(&m),
                    now_ns,
                    pcap_cnt: 0,
                };
                self.classify(&Pkt { frame, m: &m, at })
            }
            Err(e) => {
                self.stats.parse_errors.count(e);
                Verdict::Drop(DropReason::Malformed)
            }
        };
        self.count(v);
        v
    }

    /// Classifies a burst of frames that arrived at `now_ns`, writing one verdict per
    /// frame; `side_of` gives the arrival side of frame `i`.
    pub fn process_burst(
        &mut self,
        frames: &[&[u8]],
        now_ns: u64,
        side_of: impl Fn(usize, &PacketMeta) -> Side,
        verdicts: &mut [Verdict],
    ) {
        self.process_burst_at(
            frames,
            |i, m| Arrival {
                side: side_of(i, m),
                now_ns,
                pcap_cnt: 0,
            },
            verdicts,
        );
    }

    /// Classifies a burst of frames, writing one verdict per frame. First every frame is
    /// parsed and its flow looked up, so the lookups' cache misses overlap; then each is
    /// decided in order. `arrival` gives where and when frame `i` arrived.
    pub fn process_burst_at(
        &mut self,
        frames: &[&[u8]],
        arrival: impl Fn(usize, &PacketMeta) -> Arrival,
        verdicts: &mut [Verdict],
    ) {
        let n = frames.len().min(verdicts.len());
        let mut base = 0;
        while base < n {
            let end = (base + BURST_MAX).min(n);
            self.burst_chunk(
                &frames[base..end],
                |i, m| arrival(base + i, m),
                &mut verdicts[base..end],
            );
            base = end;
        }
    }

    fn burst_chunk(
        &mut self,
        frames: &[&[u8]],
        arrival: impl Fn(usize, &PacketMeta) -> Arrival,
        verdicts: &mut [Verdict],
    ) {
        let mut pre = std::mem::take(&mut self.scratch);
        let n = frames.len().min(pre.len());
        for (p, frame) in pre.iter_mut().zip(frames) {
            p.class = match packet::parse_into(frame, &mut p.m, self.parse) {
                Err(e) => Class::Malformed(e),
                Ok(())
                    if !p.m.is_ip()
                        || p.m.fragment.is_some()
                        || matches!(p.m.proto, ip_proto::ICMP | ip_proto::ICMPV6) =>
                {
                    Class::Slow
                }
                Ok(()) => {
                    // Hash the key while it is in registers: reading it back from the
                    // slot just written stalls on store forwarding.
                    let (key, src_is_lo) = FlowKey::from_meta(&p.m);
                    p.key = Keyed {
                        hash: self.flows.hash(&key),
                        key,
                        src_is_lo,
                    };
                    Class::Fast
                }
            };
        }
        // A tight loop of independent lookups, so that their cache misses overlap.
        for p in pre[..n].iter_mut() {
            if let Class::Fast = p.class {
                p.found = self.flows.find_and_touch(&p.key.key, p.key.hash);
            }
        }
        for (i, (p, frame)) in pre[..n].iter().zip(frames).enumerate() {
            self.stats.packets += 1;
            self.stats.bytes += frame.len() as u64;
            let v = match p.class {
                Class::Malformed(e) => {
                    self.stats.parse_errors.count(e);
                    Verdict::Drop(DropReason::Malformed)
                }
                Class::Slow => self.classify(&Pkt {
                    frame,
                    m: &p.m,
                    at: arrival(i, &p.m),
                }),
                Class::Fast => {
                    // An earlier packet of this burst may have created or removed the flow.
                    let k = &p.key;
                    let found = match p.found {
                        Some(idx) if self.flows.holds(idx, &k.key) => Some(idx),
                        _ => self.flows.find(&k.key, k.hash),
                    };
                    let pkt = Pkt {
                        frame,
                        m: &p.m,
                        at: arrival(i, &p.m),
                    };
                    self.on_flow(&pkt, k, found)
                }
            };
            self.count(v);
            verdicts[i] = v;
        }
        self.scratch = pre;
    }

    #[inline]
    fn count(&mut self, v: Verdict) {
        match v {
            Verdict::Forward(r) => self.stats.forwarded[r as usize] += 1,
            Verdict::Drop(r) => self.stats.dropped[r as usize] += 1,
        }
    }

    fn classify(&mut self, p: &Pkt<'_>) -> Verdict {
        let m = p.m;
        if !m.is_ip() {
            if let Some(w) = self.stages.web.as_mut()
                && p.at.side == Side::Lan
                && m.ethertype == crate::wire::EtherType::ARP
            {
                w.learn_arp(p.frame, m);
            }
            return Verdict::Forward(ForwardReason::NonIp);
        }
        if m.proto == ip_proto::ICMPV6 && m.has_l4() && icmp::is_link_plumbing_v6(m.icmp_type) {
            return self.flowless(p, Verdict::Forward(ForwardReason::LinkLocal));
        }
        if let Some(v) = self.related(p.frame, m) {
            return self.flowless(p, v);
        }
        let (sp, dp) = if m.fragment.is_some() {
            match self.frags.track(m, p.at.now_ns) {
                FragmentVerdict::Ports(a, b) => (a, b),
                FragmentVerdict::Overlap => return Verdict::Drop(DropReason::FragmentOverlap),
                FragmentVerdict::NoHead => return Verdict::Drop(DropReason::FragmentNoHead),
                FragmentVerdict::TooMany => return Verdict::Drop(DropReason::FragmentTooMany),
                FragmentVerdict::TableFull => return Verdict::Drop(DropReason::FragmentTableFull),
            }
        } else {
            FlowKey::ports_of(m)
        };
        let (key, src_is_lo) = FlowKey::new(m.src, sp, m.dst, dp, m.proto, m.vlan_key());
        let hash = self.flows.hash(&key);
        let found = self.flows.find(&key, hash);
        let k = Keyed {
            key,
            hash,
            src_is_lo,
        };
        self.on_flow(p, &k, found)
    }

    /// A packet forwarded without a flow of its own (neighbour discovery, an ICMP error
    /// about a flow): the stages see it without flow state.
    fn flowless(&mut self, p: &Pkt<'_>, v: Verdict) -> Verdict {
        if !v.is_forward() || self.stages.is_empty() {
            return v;
        }
        self.run_stages(p, None).unwrap_or(v)
    }

    /// The flow part of classification, once the key is known and looked up.
    #[inline]
    fn on_flow(&mut self, p: &Pkt<'_>, k: &Keyed, found: Option<u32>) -> Verdict {
        let Some(idx) = found else {
            return self.open(p, k);
        };
        let (m, side) = (p.m, p.at.side);
        if self.flows.get(idx).generation != self.generation {
            self.redecide(idx);
        }
        let timeouts = &self.policy.flows.timeouts;
        let f = self.flows.get_mut(idx);
        if f.verdict != FlowVerdict::Allow
            && side != f.initiator_side
            && (m.proto != ip_proto::TCP
                || m.tcp_flags & (TCP_SYN | TCP_ACK) == TCP_SYN
                || (self.policy.flows.tcp_loose_pickup
                    && f.blocked.is_none()
                    && m.tcp_flags & TCP_SYN == 0
                    && tcp::opening_state(m.tcp_flags, true).is_some()))
        {
            // A flow refused from one side must not stop the other side from opening the
            // same tuple (UDP hole punching, a port scan racing a real connection), nor,
            // with loose pickup, from picking up a connection that outlived a restart:
            // the server's segments came first and were refused, the client's are not.
            self.end_flow(idx, EndReason::Forced, p.at.now_ns);
            return self.open(p, k);
        }
        let dir = f.dir(k.src_is_lo);
        f.pkts[dir] += 1;
        f.bytes[dir] += p.frame.len() as u64;
        f.last_seen_ns = p.at.now_ns;
        let mut invalid = false;
        if m.proto == ip_proto::TCP && m.has_l4() {
            match tcp::advance(f.tcp, m.tcp_flags, dir == 0) {
                Ok(s) => f.tcp = s,
                Err(tcp::Invalid) => invalid = true,
            }
        }
        f.expires_ns = p.at.now_ns + timeouts.for_flow(f);
        let (verdict, blocked, id, initiator_side) = (f.verdict, f.blocked, f.id, f.initiator_side);
        let (pkts, bytes, start_ns) = (f.pkts, f.bytes, f.first_seen_ns);
        if invalid {
            self.stats.tcp_invalid += 1;
            if self.policy.flows.tcp_drop_invalid && verdict == FlowVerdict::Allow {
                return Verdict::Drop(DropReason::TcpInvalid);
            }
        }
        if verdict == FlowVerdict::Allow && !self.stages.is_empty() {
            let flow = FlowRef {
                slot: idx,
                id,
                from_initiator: dir == 0,
                initiator_side,
                opened: false,
                pkts,
                bytes,
                start_ns,
            };
            if let Some(v) = self.run_stages(p, Some(flow)) {
                return v;
            }
        }
        match (self.apply(verdict, p), blocked) {
            (Verdict::Drop(_), Some(reason)) => Verdict::Drop(reason),
            (v, _) => v,
        }
    }

    /// Runs the stages on a packet the firewall allowed; `Some` when one dropped it. A
    /// stage that blocks the flow turns its verdict to deny (or reject, answering later
    /// TCP packets with a RST) and marks it with the stage's reason.
    #[inline(never)]
    fn run_stages(&mut self, p: &Pkt<'_>, flow: Option<FlowRef>) -> Option<Verdict> {
        let before = self.injects.len();
        let mut out = Output {
            events: &mut self.events,
            injects: &mut self.injects,
        };
        let v = self.stages.inspect(&p.ctx(flow), &mut out);
        self.injected += (self.injects.len() - before) as u64;
        match v {
            StageVerdict::Pass => None,
            StageVerdict::DropPacket(reason) => Some(Verdict::Drop(reason)),
            StageVerdict::BlockFlow { reason, reset } => {
                if let Some(fr) = flow {
                    let f = self.flows.get_mut(fr.slot);
                    f.verdict = if reset {
                        FlowVerdict::Reject
                    } else {
                        FlowVerdict::Deny
                    };
                    f.blocked = Some(reason);
                }
                Some(Verdict::Drop(reason))
            }
        }
    }

    #[inline]
    fn apply(&mut self, verdict: FlowVerdict, p: &Pkt<'_>) -> Verdict {
        match verdict {
            FlowVerdict::Allow => Verdict::Forward(ForwardReason::Flow),
            FlowVerdict::Deny => Verdict::Drop(DropReason::FirewallDeny),
            FlowVerdict::Reject => {
                let (frame, m) = (p.frame, p.m);
                if self
                    .injects
                    .push_with(p.at.side, |out| reject::build(frame, m, out))
                {
                    self.injected += 1;
                }
                Verdict::Drop(DropReason::FirewallReject)
            }
        }
    }

    fn end_flow(&mut self, idx: u32, reason: EndReason, now_ns: u64) {
        let mut end = FlowEnd {
            events: &mut self.events,
            stages: &mut self.stages,
            which: self.policy.events.flow,
            now_ns,
        };
        end.ended(idx, self.flows.get(idx), reason);
        self.flows.remove(idx);
    }

    /// Housekeeping between bursts: expires a slice of the flow table, lets the stages
    /// hand over what they collected.
    pub fn tick(&mut self, now_ns: u64) {
        let mut end = FlowEnd {
            events: &mut self.events,
            stages: &mut self.stages,
            which: self.policy.events.flow,
            now_ns,
        };
        self.flows
            .expire(now_ns, EXPIRY_BUDGET, |slot, f, r| end.ended(slot, f, r));
        let mut out = Output {
            events: &mut self.events,
            injects: &mut self.injects,
        };
        for s in self.stages.each() {
            s.tick(now_ns, &mut out);
        }
    }

    /// Ends every flow (shutdown, or the end of a replay), writing their flow-end events.
    pub fn finish(&mut self, now_ns: u64) {
        let mut end = FlowEnd {
            events: &mut self.events,
            stages: &mut self.stages,
            which: self.policy.events.flow,
            now_ns,
        };
        self.flows.drain(|slot, f, r| end.ended(slot, f, r));
    }

    pub fn report(&self) -> Report {
        let named = |names: &[&'static str], counts: &[u64]| {
            names
                .iter()
                .copied()
                .zip(counts.iter().copied())
                .filter(|&(_, n)| n > 0)
                .collect()
        };
        let fwd: Vec<_> = ForwardReason::ALL.iter().map(|r| r.name()).collect();
        let drp: Vec<_> = DropReason::ALL.iter().map(|r| r.name()).collect();
        let rules = &self.policy.firewall.rules;
        let rule_hits = self
            .stats
            .rule_hits
            .iter()
            .enumerate()
            .map(|(i, &n)| {
                let name = match i.checked_sub(rules.len()) {
                    None => rules[i].name.clone(),
                    Some(0) => format!(
                        "default lan->wan ({:?})",
                        self.policy.firewall.default_lan_to_wan
                    )
                    .to_lowercase(),
                    Some(_) => format!(
                        "default wan->lan ({:?})",
                        self.policy.firewall.default_wan_to_lan
                    )
                    .to_lowercase(),
                };
                (name, n)
            })
            .collect();
        Report {
            packets: self.stats.packets,
            bytes: self.stats.bytes,
            forwarded: named(&fwd, &self.stats.forwarded),
            dropped: named(&drp, &self.stats.dropped),
            parse_errors: self.stats.parse_errors.clone(),
            tcp_invalid: self.stats.tcp_invalid,
            flows: self.flows.stats.clone(),
            flows_live: self.flows.len(),
            fragments: self.frags.stats.clone(),
            rule_hits,
            injected: self.injected,
            inject_dropped: self.injects.dropped,
            events_dropped: self.events.dropped,
            web: self.web().map(|w| w.stats.clone()),
        }
    }
}

fn push_flow_end(
    events: &mut EventQueue,
    which: FlowEvents,
    f: &Flow,
    reason: EndReason,
    now_ns: u64,
) {
    let wanted = match which {
        FlowEvents::All => true,
        FlowEvents::Logged => f.logged,
        FlowEvents::None => false,
    };
    if wanted {
        let v4 = f.key.lo_addr >> 32 == V4_MAPPED >> 32 && f.key.hi_addr >> 32 == V4_MAPPED >> 32;
        events.push(EventRecord::from_flow(
            f,
            EventKind::FlowEnd { reason },
            now_ns,
            v4,
        ));
    }
}

impl SideMap {
    /// LAN when the source MAC or source IP is listed as LAN; WAN otherwise.
    pub fn side_of(&self, m: &PacketMeta) -> Side {
        if self.lan_macs.contains(&m.src_mac)
            || (m.is_ip() && !self.lan_subnets.0.is_empty() && self.lan_subnets.matches(m.src))
        {
            Side::Lan
        } else {
            Side::Wan
        }
    }
}

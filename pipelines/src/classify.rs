//! The classify stage: parse, flow lookup or create, firewall decision cached in the flow,
//! TCP state, fragments, and the reject answer. The same code runs in `replay` and on the
//! live DPDK path; one `Classifier` per worker, so nothing here is shared or locked.

use crate::error::ParseErrorCounts;
use crate::event::{EventKind, EventQueue, EventRecord};
use crate::flow::{
    EndReason, Flow, FlowKey, FlowTable, FlowTableStats, FlowVerdict, NO_RULE, Side, tcp,
};
use crate::fragment::{FragmentStats, FragmentTracker, FragmentVerdict};
use crate::packet::{self, PacketMeta, V4_MAPPED};
use crate::policy::{FlowEvents, Policy, SideMap};
use crate::reject::{self, InjectQueue};
use crate::web::{self, FlowCtx, WebFilter, WebStats, WebVerdict};
use crate::wire::tcp::flags::{ACK as TCP_ACK, SYN as TCP_SYN};
use crate::wire::{icmp, ip_proto};
use serde::Serialize;
use std::sync::Arc;

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
    key: FlowKey,
    hash: u64,
    src_is_lo: bool,
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

pub struct Classifier {
    policy: Arc<Policy>,
    scratch: Box<[Prepared]>,
    flows: FlowTable,
    frags: FragmentTracker,
    pub stats: Stats,
    pub events: EventQueue,
    pub injects: InjectQueue,
    injected: u64,
    web: Option<WebFilter>,
    /// Moves with every policy swap; flows decided under an older one are re-decided.
    generation: u8,
}

/// Slots in the flow table visited for expiry on each `tick`.
const EXPIRY_BUDGET: usize = 16;

impl Classifier {
    pub fn new(policy: Arc<Policy>) -> Self {
        Self::with_web(policy, None)
    }

    /// A classifier that also filters the web (`web` is built from the same policy's
    /// `[web]` section and a category database).
    pub fn with_web(policy: Arc<Policy>, web: Option<WebFilter>) -> Self {
        Self {
            web,
            generation: 0,
            flows: FlowTable::new(policy.flows.capacity, policy.flows.on_full),
            frags: FragmentTracker::new(policy.fragments.capacity, policy.fragments.timeout),
            stats: Stats::new(policy.firewall.rules.len()),
            events: EventQueue::new(policy.events.queue),
            injects: InjectQueue::new(64),
            injected: 0,
            scratch: vec![Prepared::default(); BURST_MAX].into_boxed_slice(),
            policy,
        }
    }

    pub fn policy(&self) -> &Arc<Policy> {
        &self.policy
    }
    pub fn flows(&self) -> &FlowTable {
        &self.flows
    }
    pub fn web(&self) -> Option<&WebFilter> {
        self.web.as_ref()
    }

    /// Swaps in policy `version` between bursts. Flows stay; each is re-decided by the new
    /// firewall rules at its next packet (web verdicts already taken stand). Table sizes
    /// are fixed at start: the caller refuses policies that change them.
    pub fn set_policy(&mut self, policy: Arc<Policy>, web: Option<WebFilter>, version: u64) {
        self.events.policy_version = version;
        self.stats.rule_hits = vec![0; policy.firewall.rules.len() + 2];
        self.policy = policy;
        self.web = web;
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
        let keep = matches!(f.key.proto, ip_proto::ICMP | ip_proto::ICMPV6)
            || f.web & (web::state::BLOCKED | web::state::QUARANTINE) != 0;
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
        let v = match packet::parse(frame) {
            Ok(m) => {
                let side = side_of(&m);
                self.classify(frame, &m, side, now_ns)
            }
            Err(e) => {
                self.stats.parse_errors.count(e);
                Verdict::Drop(DropReason::Malformed)
            }
        };
        self.count(v);
        v
    }

    /// Classifies a burst of frames, writing one verdict per frame. First every frame is
    /// parsed and its flow looked up, so the lookups' cache misses overlap; then each is
    /// decided in order. `side_of` gives the arrival side of frame `i`.
    pub fn process_burst(
        &mut self,
        frames: &[&[u8]],
        now_ns: u64,
        side_of: impl Fn(usize, &PacketMeta) -> Side,
        verdicts: &mut [Verdict],
    ) {
        let n = frames.len().min(verdicts.len());
        let mut base = 0;
        while base < n {
            let end = (base + BURST_MAX).min(n);
            self.burst_chunk(
                &frames[base..end],
                now_ns,
                |i, m| side_of(base + i, m),
                &mut verdicts[base..end],
            );
            base = end;
        }
    }

    fn burst_chunk(
        &mut self,
        frames: &[&[u8]],
        now_ns: u64,
        side_of: impl Fn(usize, &PacketMeta) -> Side,
        verdicts: &mut [Verdict],
    ) {
        let mut pre = std::mem::take(&mut self.scratch);
        let n = frames.len().min(pre.len());
        for (p, frame) in pre.iter_mut().zip(frames) {
            p.class = match packet::parse_into(frame, &mut p.m) {
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
                    p.hash = self.flows.hash(&key);
                    (p.key, p.src_is_lo) = (key, src_is_lo);
                    Class::Fast
                }
            };
        }
        // A tight loop of independent lookups, so that their cache misses overlap.
        for p in pre[..n].iter_mut() {
            if let Class::Fast = p.class {
                p.found = self.flows.find_and_touch(&p.key, p.hash);
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
                Class::Slow => self.classify(frame, &p.m, side_of(i, &p.m), now_ns),
                Class::Fast => {
                    // An earlier packet of this burst may have created or removed the flow.
                    let found = match p.found {
                        Some(idx) if self.flows.holds(idx, &p.key) => Some(idx),
                        _ => self.flows.find(&p.key, p.hash),
                    };
                    self.on_flow(
                        frame,
                        &p.m,
                        side_of(i, &p.m),
                        now_ns,
                        p.key,
                        p.hash,
                        p.src_is_lo,
                        found,
                    )
                }
            };
            self.count(v);
            verdicts[i] = v;
        }
        self.scratch = pre;
    }

    /// The id of the flow `m` belongs to (0 when it has none), for events of later stages.
    pub fn flow_id(&self, m: &PacketMeta) -> u64 {
        if !m.is_ip() {
            return 0;
        }
        let (key, _) = FlowKey::from_meta(m);
        let hash = self.flows.hash(&key);
        self.flows
            .find(&key, hash)
            .map_or(0, |i| self.flows.get(i).id)
    }

    /// A later stage (the IPS) drops a packet this classifier forwarded: the counters
    /// move it from its forward reason to `reason`.
    pub fn overrule(&mut self, v: &mut Verdict, reason: DropReason) {
        if let Verdict::Forward(r) = *v {
            self.stats.forwarded[r as usize] -= 1;
            self.stats.dropped[reason as usize] += 1;
            *v = Verdict::Drop(reason);
        }
    }

    #[inline]
    fn count(&mut self, v: Verdict) {
        match v {
            Verdict::Forward(r) => self.stats.forwarded[r as usize] += 1,
            Verdict::Drop(r) => self.stats.dropped[r as usize] += 1,
        }
    }

    fn classify(&mut self, frame: &[u8], m: &PacketMeta, side: Side, now_ns: u64) -> Verdict {
        if !m.is_ip() {
            if let Some(w) = self.web.as_mut()
                && side == Side::Lan
                && m.ethertype == crate::wire::EtherType::ARP
            {
                w.learn_arp(frame, m);
            }
            return Verdict::Forward(ForwardReason::NonIp);
        }
        if m.proto == ip_proto::ICMPV6 && m.has_l4() && icmp::is_link_plumbing_v6(m.icmp_type) {
            return Verdict::Forward(ForwardReason::LinkLocal);
        }
        if let Some(v) = self.related(frame, m) {
            return v;
        }
        let (sp, dp) = if m.fragment.is_some() {
            match self.frags.track(m, now_ns) {
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
        self.on_flow(frame, m, side, now_ns, key, hash, src_is_lo, found)
    }

    /// The flow part of classification, once the key is known and looked up.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn on_flow(
        &mut self,
        frame: &[u8],
        m: &PacketMeta,
        side: Side,
        now_ns: u64,
        key: FlowKey,
        hash: u64,
        src_is_lo: bool,
        found: Option<u32>,
    ) -> Verdict {
        let Some(idx) = found else {
            return self.open(frame, m, key, hash, src_is_lo, side, now_ns);
        };
        if self.flows.get(idx).generation != self.generation {
            self.redecide(idx);
        }
        let timeouts = &self.policy.flows.timeouts;
        let f = self.flows.get_mut(idx);
        let opens = m.proto != ip_proto::TCP || m.tcp_flags & (TCP_SYN | TCP_ACK) == TCP_SYN;
        if f.verdict != FlowVerdict::Allow && side != f.initiator_side && opens {
            // A flow refused from one side must not stop the other side from opening the
            // same tuple (UDP hole punching, a port scan racing a real connection).
            self.end_flow(idx, EndReason::Forced, now_ns);
            return self.open(frame, m, key, hash, src_is_lo, side, now_ns);
        }
        let dir = f.dir(src_is_lo);
        f.pkts[dir] += 1;
        f.bytes[dir] += frame.len() as u64;
        f.last_seen_ns = now_ns;
        let mut invalid = false;
        if m.proto == ip_proto::TCP && m.has_l4() {
            match tcp::advance(f.tcp, m.tcp_flags, dir == 0) {
                Ok(s) => f.tcp = s,
                Err(tcp::Invalid) => invalid = true,
            }
        }
        f.expires_ns = now_ns + timeouts.for_flow(f);
        let verdict = f.verdict;
        let web_state = f.web;
        let inspect = web_state & web::state::DONE == 0 && m.payload_len > 0;
        if invalid {
            self.stats.tcp_invalid += 1;
            if self.policy.flows.tcp_drop_invalid && verdict == FlowVerdict::Allow {
                return Verdict::Drop(DropReason::TcpInvalid);
            }
        }
        if inspect
            && verdict == FlowVerdict::Allow
            && let Some(v) = self.web_step(idx, frame, m, side, src_is_lo, now_ns)
        {
            return v;
        }
        match self.apply(verdict, frame, m, side) {
            Verdict::Drop(_) if web_state & web::state::BLOCKED != 0 => {
                Verdict::Drop(DropReason::WebBlock)
            }
            Verdict::Drop(_) if web_state & web::state::QUARANTINE != 0 => {
                Verdict::Drop(DropReason::Quarantine)
            }
            v => v,
        }
    }

    /// An ICMP error quoting a packet of an existing flow follows that flow's verdict.
    fn related(&mut self, frame: &[u8], m: &PacketMeta) -> Option<Verdict> {
        if !m.has_l4() || m.fragment.is_some() {
            return None;
        }
        let is_error = match m.proto {
            ip_proto::ICMP => icmp::is_error_v4(m.icmp_type),
            ip_proto::ICMPV6 => icmp::is_error_v6(m.icmp_type),
            _ => false,
        };
        if !is_error {
            return None;
        }
        let body = frame
            .get(usize::from(m.payload_offset)..usize::from(m.l3_offset) + usize::from(m.ip_len))?;
        let q = packet::parse_quoted(body, !m.is_v4())?;
        // The error goes back to whoever sent the quoted packet.
        if q.src != m.dst {
            return None;
        }
        let (key, _) = FlowKey::new(q.src, q.src_port, q.dst, q.dst_port, q.proto, m.vlan_key());
        let idx = self.flows.find(&key, self.flows.hash(&key))?;
        Some(match self.flows.get(idx).verdict {
            FlowVerdict::Allow => Verdict::Forward(ForwardReason::Related),
            _ => Verdict::Drop(DropReason::FirewallDeny),
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn open(
        &mut self,
        frame: &[u8],
        m: &PacketMeta,
        key: FlowKey,
        hash: u64,
        src_is_lo: bool,
        side: Side,
        now_ns: u64,
    ) -> Verdict {
        let mut state = tcp::TcpState::None;
        if m.proto == ip_proto::TCP {
            if m.has_l4() {
                match tcp::opening_state(m.tcp_flags, self.policy.flows.tcp_loose_pickup) {
                    Some(s) => state = s,
                    None => return Verdict::Drop(DropReason::TcpNoFlow),
                }
            } else {
                state = tcp::TcpState::Established;
            }
        }
        // Fragments after the first carry the first one's ports in `key`.
        let mut mm = *m;
        (mm.src_port, mm.dst_port) = if src_is_lo {
            (key.lo_port, key.hi_port)
        } else {
            (key.hi_port, key.lo_port)
        };
        let d = self.policy.firewall.decide(side, &mm);
        let hit = match (d.rule, side) {
            (NO_RULE, Side::Lan) => self.policy.firewall.rules.len(),
            (NO_RULE, Side::Wan) => self.policy.firewall.rules.len() + 1,
            (r, _) => r as usize,
        };
        self.stats.rule_hits[hit] += 1;

        let flow_events = self.policy.events.flow;
        let Self { flows, events, .. } = self;
        let Some(idx) = flows.insert(key, hash, now_ns, |f, r| {
            push_flow_end(events, flow_events, f, r, now_ns)
        }) else {
            return Verdict::Drop(DropReason::FlowTableFull);
        };
        let timeouts = self.policy.flows.timeouts;
        let f = self.flows.get_mut(idx);
        f.initiator_is_lo = src_is_lo;
        f.initiator_side = side;
        f.generation = self.generation;
        f.verdict = d.verdict;
        f.rule = d.rule;
        f.tcp = state;
        f.logged = d.log;
        f.pkts[0] = 1;
        f.bytes[0] = frame.len() as u64;
        f.expires_ns = now_ns + timeouts.for_flow(f);
        if let (Some(w), FlowVerdict::Allow) = (self.web.as_ref(), d.verdict) {
            let st = w.start_state(m, side);
            f.web = st;
            if st & web::state::QUARANTINE != 0 && !WebFilter::quarantine_admits(m) {
                f.verdict = FlowVerdict::Deny;
                f.web |= web::state::DONE;
                if let Some(w) = self.web.as_mut() {
                    w.stats.quarantine_refused += 1;
                }
                return Verdict::Drop(DropReason::Quarantine);
            }
        }
        if d.log {
            let f = self.flows.get(idx);
            let rec = EventRecord::from_flow(
                f,
                EventKind::Firewall {
                    verdict: d.verdict,
                    rule: d.rule,
                },
                now_ns,
                m.is_v4(),
            );
            self.events.push(rec);
        }
        if d.verdict == FlowVerdict::Allow
            && m.payload_len > 0
            && self.web.is_some()
            && let Some(v) = self.web_step(idx, frame, m, side, src_is_lo, now_ns)
        {
            return v;
        }
        self.apply(d.verdict, frame, m, side)
    }

    /// Runs the web filter on a packet of flow `idx`; `Some` when it decided the packet.
    fn web_step(
        &mut self,
        idx: u32,
        frame: &[u8],
        m: &PacketMeta,
        side: Side,
        src_is_lo: bool,
        now_ns: u64,
    ) -> Option<Verdict> {
        let w = self.web.as_mut()?;
        let f = self.flows.get(idx);
        let cx = FlowCtx {
            flow_id: f.id,
            side,
            from_initiator: f.dir(src_is_lo) == 0,
            initiator_side: f.initiator_side,
        };
        let mut st = f.web;
        let before = self.injects.len();
        let v = w.inspect(
            frame,
            m,
            cx,
            &mut st,
            &mut self.injects,
            &mut self.events,
            now_ns,
        );
        self.injected += (self.injects.len() - before) as u64;
        let f = self.flows.get_mut(idx);
        f.web = st;
        match v {
            WebVerdict::Pass => None,
            WebVerdict::DropPacket => Some(Verdict::Drop(DropReason::WebSinkhole)),
            WebVerdict::BlockFlow => {
                // Later packets of a blocked TCP flow get a RST (their peer gives up at
                // once); other protocols are dropped.
                f.verdict = if m.proto == ip_proto::TCP {
                    FlowVerdict::Reject
                } else {
                    FlowVerdict::Deny
                };
                f.web |= web::state::DONE | web::state::BLOCKED;
                Some(Verdict::Drop(DropReason::WebBlock))
            }
        }
    }

    #[inline]
    fn apply(&mut self, verdict: FlowVerdict, frame: &[u8], m: &PacketMeta, side: Side) -> Verdict {
        match verdict {
            FlowVerdict::Allow => Verdict::Forward(ForwardReason::Flow),
            FlowVerdict::Deny => Verdict::Drop(DropReason::FirewallDeny),
            FlowVerdict::Reject => {
                if self
                    .injects
                    .push_with(side, |out| reject::build(frame, m, out))
                {
                    self.injected += 1;
                }
                Verdict::Drop(DropReason::FirewallReject)
            }
        }
    }

    fn end_flow(&mut self, idx: u32, reason: EndReason, now_ns: u64) {
        push_flow_end(
            &mut self.events,
            self.policy.events.flow,
            self.flows.get(idx),
            reason,
            now_ns,
        );
        self.flows.remove(idx);
    }

    /// Housekeeping between bursts: expires a slice of the flow table.
    pub fn tick(&mut self, now_ns: u64) {
        let flow_events = self.policy.events.flow;
        let Self { flows, events, .. } = self;
        flows.expire(now_ns, EXPIRY_BUDGET, |f, r| {
            push_flow_end(events, flow_events, f, r, now_ns)
        });
        if let Some(w) = self.web.as_mut() {
            w.tick(now_ns, &mut self.events);
        }
    }

    /// Ends every flow (shutdown, or the end of a replay), writing their flow-end events.
    pub fn finish(&mut self, now_ns: u64) {
        let flow_events = self.policy.events.flow;
        let Self { flows, events, .. } = self;
        flows.drain(|f, r| push_flow_end(events, flow_events, f, r, now_ns));
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
            web: self.web.as_ref().map(|w| w.stats.clone()),
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

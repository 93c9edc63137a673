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
mod first;
pub mod hello;
pub mod hosts;
pub mod names;
pub mod quic;
pub mod rules;
mod verdict;

pub use config::{WebAction, WebConfig};
pub use hosts::{HostAgent, Hosts, Observation, Quarantined};
pub use names::ShortName;
pub use rules::{Decision, WebRules};

use crate::classify::DropReason;
use crate::event::{EventKind, EventRecord};
use crate::flow::Side;
use crate::packet::PacketMeta;
use crate::stage::{FlowRef, Inspect, Output, PacketCtx, StageVerdict};
use crate::wire::arp::ArpPacket;
use crate::wire::{MacAddr, ip_proto, tcp::flags as tcp_flags};
use hello::{Handle, Hellos};
use mimamori_signatures::category::Match;
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
    /// A connection with no name at all, judged by its destination address (lists may
    /// hold addresses, e.g. encrypted DNS resolvers reached by IP).
    Address,
}

impl Via {
    pub fn name(self) -> &'static str {
        match self {
            Via::Dns => "dns",
            Via::Sni => "tls-sni",
            Via::Quic => "quic-sni",
            Via::Http => "http-host",
            Via::DnsAnswer => "dns-answer",
            Via::Address => "address",
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
    /// The name is an ECH hello's outer name.
    pub ech: bool,
}

/// Counters of the web filter.
#[derive(Clone, Debug, Default, Serialize)]
pub struct WebStats {
    pub dns_queries: u64,
    pub dns_answers_recorded: u64,
    pub dns_answers_replaced: u64,
    pub tls_sni: u64,
    pub quic_sni: u64,
    /// Client Initials that did not decrypt (or were cut short).
    pub quic_unreadable: u64,
    /// Long-header packets of versions not read (gQUIC, unknown): their flows are judged
    /// by the DNS answer cache.
    pub quic_other_version: u64,
    /// Google QUIC plaintext hellos (up to Q046) whose SNI was read.
    pub gquic_sni: u64,
    /// 0-RTT packets seen behind a client's Initial.
    pub quic_0rtt: u64,
    /// ClientHellos with `encrypted_client_hello` (real or GREASE).
    pub ech: u64,
    /// …whose outer name was not the name looked up for the address.
    pub ech_hidden: u64,
    /// …with no looked-up name to compare (judged by the outer name).
    pub ech_unverified: u64,
    /// First messages that could not be read to a name (past the budget, malformed).
    pub unreadable: u64,
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
    pub hellos: hello::HelloStats,
}

/// The web filter's phase in one flow: an explicit enum and a pure transition, like
/// `flow::tcp`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WebPhase {
    /// Looking for a name: `tries` payload packets seen without one.
    #[default]
    Waiting,
    Tried(u8),
    /// The client's first message is cut: its bytes gather in a pooled buffer.
    Joining(Handle),
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
            WebPhase::Joining(_) | WebPhase::Done => return WebPhase::Done,
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
    /// The client's initial sequence number, from its SYN: where its stream starts.
    pub isn: Option<u32>,
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
    /// First messages being joined across packets.
    hellos: Hellos,
    /// Decrypted QUIC packets, joined TLS handshake records.
    scratch: Box<[u8]>,
    page: Box<[u8]>,
    pub stats: WebStats,
}

/// Flows whose first message may be joined at once, per worker (each up to
/// [`hello::HELLO_MAX`]).
const HELLO_BUFFERS: usize = 1024;

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
            hellos: Hellos::new(HELLO_BUFFERS),
            scratch: vec![0; hello::HELLO_MAX].into_boxed_slice(),
            page: vec![0; answer::PAGE_MAX + 256].into_boxed_slice(),
            stats: WebStats::default(),
            rules,
        }
    }

    pub fn rules(&self) -> &Arc<WebRules> {
        &self.rules
    }

    /// Takes over what `old` (the filter of the policy before) learnt on the data path:
    /// its flows' states and the messages it was joining, its counters and, when the table
    /// has the same size, the DNS answers it remembered. Called at a policy swap, so
    /// nothing is forgotten.
    pub fn adopt(&mut self, old: WebFilter) {
        self.flows = old.flows;
        self.hellos = old.hellos;
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
            self.end_joining(slot);
            let m = pkt.meta;
            // A flow opened by its SYN: the client's stream starts one past its number.
            let syn = m.proto == ip_proto::TCP
                && f.from_initiator
                && m.tcp_flags & (tcp_flags::SYN | tcp_flags::ACK) == tcp_flags::SYN;
            self.flows[slot] = WebFlow {
                phase: WebPhase::Waiting,
                quarantined: pkt.side == Side::Lan && self.hosts.is_quarantined(m.src_mac),
                isn: syn.then_some(m.tcp_seq),
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
            ech: false,
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
            ech: seen.ech,
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
    /// A ClientHello with `encrypted_client_hello`: `name` is its outer name.
    ech: bool,
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
        let client = lan_client && f.from_initiator;
        let (next, v) = match (m.proto, st.phase) {
            (ip_proto::UDP, _) if m.dst_port == 67 || m.src_port == 67 => {
                if let Some(d) = names::dhcp(pkt.payload()) {
                    self.stats.dhcp += 1;
                    self.hosts.observe(Observation::Dhcp(d));
                }
                return StageVerdict::Pass;
            }
            (ip_proto::UDP, _) if m.dst_port == 53 || m.src_port == 53 => {
                return self.dns(pkt, out);
            }
            // A QUIC server answers a cut hello's first Initial (an ACK, its own Initial)
            // before the client's next one arrives: handshake packets carry no
            // application data, so the wait goes on; a 1-RTT packet would end it.
            (ip_proto::UDP, WebPhase::Joining(_))
                if !f.from_initiator && quic::looks_like_long(pkt.payload()) =>
            {
                (st, StageVerdict::Pass)
            }
            (ip_proto::UDP | ip_proto::TCP, WebPhase::Joining(h)) if !f.from_initiator => {
                self.server_spoke(pkt, st, h, out)
            }
            (ip_proto::UDP, _) if client && quic::looks_like_long(pkt.payload()) => {
                self.quic(pkt, st, out)
            }
            (ip_proto::UDP, _) if client => self.gquic(pkt, st, out),
            (ip_proto::TCP, _) if client => self.tcp(pkt, st, out),
            (ip_proto::TCP, _) => (st, StageVerdict::Pass),
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

    /// Frees the buffer of a flow that ended while its first message was cut.
    fn flow_ended(&mut self, slot: u32) {
        self.end_joining(slot as usize);
    }

    /// Hands host observations over and writes quarantine events.
    fn tick(&mut self, now_ns: u64, out: &mut Output<'_>) {
        for q in self.hosts.sync(now_ns) {
            out.events.push(EventRecord::quarantine(*q, now_ns));
        }
        self.stats.host_observations_dropped = self.hosts.dropped;
    }
}

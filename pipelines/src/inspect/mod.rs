//! Signature inspection (the IPS), one stage behind [`crate::stage::Inspect`].
//!
//! TCP is inspected as the receiving host sees it: each direction is reassembled
//! ([`crate::stream`]) and the current *message* (a request, a response, a ClientHello,
//! however many segments it took) is inspected each time it grows, with its HTTP or TLS
//! fields parsed from the whole message ([`buffers`]). A rule alerts at most once per
//! message. IP fragments are joined first ([`crate::defrag`]) and the whole datagram is
//! inspected at its last fragment.
//!
//! Per-flow state lives in a side table indexed by the classifier's flow slot, created on
//! a flow's first packet and freed when the classifier ends the flow: the classifier's
//! table is the only flow table, with its one expiry and eviction.
//!
//! In IPS mode `drop` drops the packet and the rest of its flow, `reject` also sends a RST
//! both ways (or ICMP unreachable to the sender). `pass` lets the packet go without the
//! alerts of `alert` rules (drop and reject rules are applied before it). In IDS mode every
//! match only alerts.

mod buffers;
pub mod message;
mod rules;

pub use rules::{IpsSettings, PolicyRates, RateFilter, RateFilters, RuleBook, rate_key};

use crate::app::{AppProto, Detector};
use crate::classify::DropReason;
use crate::defrag::{DefragStats, Defragmenter};
use crate::event::{EventKind, EventRecord};
use crate::packet::PacketMeta;
use crate::policy::IpsMode;
use crate::reject;
use crate::stage::{FlowRef, Inspect, Output, PacketCtx, StageVerdict};
use crate::stream::{HalfStream, LOOKBACK, Memcap, StreamLimits, StreamStats};
use crate::web::answer;
use crate::web::names::NAME_MAX;
use crate::wire::{ip_proto, tcp::flags};
use buffers::{AppWork, Buffers, Message};
use message::MessagePhase;
use mimamori_signatures::engine::{CompiledRule, FlowBits, Inspection, RateTable, Scratch};
use mimamori_signatures::rule::{Action, Buffer};
use serde::Serialize;
use std::sync::Arc;

/// Distinct rules remembered per message for "alert once"; past it a rule may repeat.
const ALERTED_PER_MESSAGE: usize = 32;

/// Sizes of one inspector's tables (the flow side table follows the flow table).
#[derive(Clone, Copy, Debug)]
pub struct InspectorLimits {
    /// Reassembly window memory, all flows together (the depth per message and the body
    /// limits are the policy's, in [`IpsSettings`]).
    pub stream_memcap: usize,
    pub datagrams: usize,
    pub defrag_memcap: usize,
}

impl Default for InspectorLimits {
    fn default() -> Self {
        InspectorLimits {
            stream_memcap: 256 << 20,
            datagrams: 4096,
            defrag_memcap: 32 << 20,
        }
    }
}

/// What happens to the packet, mildest first (several rules: the strictest wins).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum IpsVerdict {
    Pass,
    /// This packet only (a rule on packet properties alone, as Suricata's packet rules).
    DropPacket,
    Drop,
    /// Dropped, and answers were queued (RST both ways or ICMP unreachable).
    Reject,
}

/// One alert of the last inspection: the rule (index into [`Inspector::rule`]) and
/// whether the packet was blocked because of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Alert {
    pub rule: u32,
    pub blocked: bool,
    /// The packet inspected was a datagram joined from fragments.
    pub defrag: bool,
    /// The flow's protocol when the rule matched.
    pub app_proto: AppProto,
    /// The transaction (request and its response, from 0) the match was in.
    pub tx_id: Option<u32>,
}

#[derive(Default, Debug, Clone, Serialize)]
pub struct IdsStats {
    pub inspected: u64,
    pub alerts: u64,
    pub dropped: u64,
    pub rejected: u64,
    /// Packets a pass rule matched (their alerts suppressed).
    pub passed: u64,
    pub http_requests: u64,
    pub http_responses: u64,
    /// HTTP bodies whose framing or content coding was not what the head said (a body
    /// declared chunked that is not, a compressed layer that does not decode): inspected
    /// as far as they could be read.
    pub http_body_malformed: u64,
    /// HTTP bodies whose decompression stopped at the body limit (bombs among them).
    pub http_decompress_capped: u64,
    pub tls_hellos: u64,
    /// Server certificate chains read (TLS 1.2 and earlier).
    pub tls_certificates: u64,
    pub dns_messages: u64,
    /// TCP payloads the reassembler could not hold (memcap, window): inspected alone.
    pub stream_unheld: u64,
    /// Flows whose inspection state was freed because the classifier ended them.
    pub flows_ended: u64,
    pub stream: StreamStats,
    pub defrag: DefragStats,
}

/// One flow's inspection state, in the side table at the flow's slot.
#[derive(Default)]
struct SigFlow {
    replied: bool,
    bits: FlowBits,
    /// [to_server, to_client].
    half: [HalfStream; 2],
    alerted: [Vec<u32>; 2],
    /// In-order TCP payload bytes each side has sent ([client, server]).
    sent: [u64; 2],
    /// How far the current message of each direction was inspected.
    phase: [MessagePhase; 2],
    /// Body bytes of the current message last inspected (bodies are inspected as they grow).
    body_seen: [usize; 2],
    /// The flow's application protocol, detected from the first messages.
    detect: Detector,
    /// The rule set (`Inspector::rules_epoch`) `bits` and `alerted` were written under.
    epoch: u32,
    /// Messages each direction has ended: the current one's transaction id.
    tx: [u32; 2],
}

impl SigFlow {
    fn release(&mut self, mem: &mut Memcap) {
        for h in &mut self.half {
            h.release(mem);
        }
    }
}

/// Where a packet's bytes stand in its direction's stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Window {
    /// Not reassembled (out of order, a retransmission, not held, not TCP): the payload
    /// is inspected alone.
    Payload,
    /// In order: the message so far. The packet buffer starts at `from` (the new bytes
    /// and a lookback before them); `whole` says the message still has its start.
    Message { from: usize, whole: bool },
}

pub struct Inspector {
    settings: Arc<IpsSettings>,
    /// Moves with every new rule set (see [`Inspector::set_rules`]).
    rules_epoch: u32,
    scratch: Scratch,
    /// The side table: one entry per flow slot seen, grown on demand (bounded by the flow
    /// table's capacity).
    flows: Vec<SigFlow>,
    /// State for a packet without a flow, fresh for each.
    lone: SigFlow,
    mem: Memcap,
    defrag: Defragmenter,
    rates: RateTable,
    policy_rates: PolicyRates,
    hits: Vec<u32>,
    app: AppWork,
    qname: Box<[u8; NAME_MAX]>,
    datagram: Vec<u8>,
    /// Alerts of the last inspection.
    pub alerts: Vec<Alert>,
    pub stats: IdsStats,
}

impl Inspector {
    pub fn new(settings: Arc<IpsSettings>, limits: InspectorLimits) -> Self {
        Inspector {
            settings,
            rules_epoch: 0,
            scratch: Scratch::default(),
            flows: Vec::new(),
            lone: SigFlow::default(),
            mem: Memcap::new(limits.stream_memcap),
            defrag: Defragmenter::new(limits.datagrams, 30, limits.defrag_memcap),
            rates: RateTable::new(1 << 16),
            policy_rates: PolicyRates::new(),
            hits: Vec::new(),
            app: AppWork::default(),
            qname: Box::new([0; NAME_MAX]),
            datagram: Vec::new(),
            alerts: Vec::new(),
            stats: IdsStats::default(),
        }
    }

    /// Takes a new policy's `[ips]` settings, compiled by the apply path (flows and their
    /// state are kept). Constant time: nothing rule-sized happens here.
    ///
    /// Settings over another rule book are a rule swap: see [`Inspector::set_rules`] (the
    /// scratch is then refitted on the next inspection).
    pub fn set_settings(&mut self, settings: Arc<IpsSettings>) {
        if Arc::ptr_eq(&self.settings.book, &settings.book) {
            self.settings = settings;
        } else {
            self.set_rules(settings, Scratch::default());
        }
    }

    /// Takes a new rule set between two packets, with `scratch` prepared for its engine
    /// off the data path ([`mimamori_signatures::engine::Engine::scratch`]).
    ///
    /// Flows keep their state: the reassembly windows, the message phases, the detected
    /// application protocol and the bytes sent stay, so a flow that opened under the old
    /// rules is inspected under the new ones from its next packet on. What is numbered by
    /// the old rule set cannot be carried over and is reset: each flow's flowbits and its
    /// "alerted once in this message" list (lazily, at the flow's next packet: constant
    /// time here and no pass over the table), and the per-host rates and xbits (cleared
    /// here; their memory is kept). So a flowbit set before the swap is unset after it,
    /// and a threshold counts again from zero.
    pub fn set_rules(&mut self, settings: Arc<IpsSettings>, scratch: Scratch) {
        self.settings = settings;
        self.scratch = scratch;
        self.rules_epoch = self.rules_epoch.wrapping_add(1);
        self.rates.clear();
        self.policy_rates.clear();
    }

    pub fn settings(&self) -> &Arc<IpsSettings> {
        &self.settings
    }

    pub fn mode(&self) -> IpsMode {
        self.settings.mode
    }

    pub fn rule(&self, i: u32) -> &CompiledRule {
        &self.settings.book.engine.rules[i as usize]
    }

    pub fn book(&self) -> &Arc<RuleBook> {
        &self.settings.book
    }

    /// Bytes held in reassembly windows.
    pub fn stream_memory(&self) -> usize {
        self.mem.used
    }

    /// Inspects one packet: alerts are left in [`Inspector::alerts`], reject answers
    /// queued in `out`.
    fn inspect_one(&mut self, pkt: &PacketCtx<'_>, out: &mut Output<'_>) -> IpsVerdict {
        self.alerts.clear();
        let m = pkt.meta;
        if !m.is_ip() {
            return IpsVerdict::Pass;
        }
        if m.fragment.is_some() {
            return self.inspect_fragment(pkt, out);
        }
        if !m.has_l4() {
            return IpsVerdict::Pass;
        }
        self.inspect_packet(pkt, pkt.frame, m, out)
    }

    /// A fragment: joined with the others of its datagram, which is inspected whole at
    /// its last fragment.
    fn inspect_fragment(&mut self, pkt: &PacketCtx<'_>, out: &mut Output<'_>) -> IpsVerdict {
        let mut whole = std::mem::take(&mut self.datagram);
        let v = if self.defrag.add(pkt.frame, pkt.meta, pkt.now_ns, &mut whole) {
            match crate::packet::parse(&whole) {
                Ok(wm) if wm.has_l4() => self.inspect_packet(pkt, &whole, &wm, out),
                _ => IpsVerdict::Pass,
            }
        } else {
            IpsVerdict::Pass
        };
        self.datagram = whole;
        self.stats.defrag = self.defrag.stats.clone();
        for a in &mut self.alerts {
            a.defrag = true;
        }
        v
    }

    /// The three steps: stream tracking, the buffers of the app protocol, the decision.
    fn inspect_packet(
        &mut self,
        pkt: &PacketCtx<'_>,
        frame: &[u8],
        m: &PacketMeta,
        out: &mut Output<'_>,
    ) -> IpsVerdict {
        let Inspector {
            settings,
            rules_epoch,
            scratch,
            flows,
            lone,
            mem,
            rates,
            policy_rates,
            hits,
            app,
            qname,
            alerts,
            stats,
            ..
        } = self;
        let tcp = m.proto == ip_proto::TCP;
        let syn_ack = tcp && m.tcp_flags & (flags::SYN | flags::ACK) == (flags::SYN | flags::ACK);
        let (flow, from_initiator) = match pkt.flow {
            Some(f) => (side_entry(flows, f, mem, *rules_epoch), f.from_initiator),
            None => {
                lone.release(mem);
                *lone = SigFlow {
                    epoch: *rules_epoch,
                    ..SigFlow::default()
                };
                (lone, !syn_ack)
            }
        };
        let to_server = from_initiator;
        if !to_server {
            flow.replied = true;
        }
        let payload = {
            let start = usize::from(m.payload_offset);
            frame
                .get(start..start + usize::from(m.payload_len))
                .unwrap_or(&[])
        };
        let d = usize::from(!to_server);
        let window = if tcp {
            track_stream(flow, d, m, payload, settings.stream, mem, stats)
        } else {
            Window::Payload
        };
        stats.inspected += 1;

        let mut bufs = Buffers::default();
        let data: &[u8] = match window {
            Window::Message { .. } => flow.half[d].contiguous(),
            Window::Payload => payload,
        };
        // TCP data in order: the new bytes and a lookback before them, as the receiver
        // will see them. Otherwise: the payload.
        bufs.push(
            Buffer::Packet,
            match window {
                Window::Message { from, .. } => &data[from..],
                Window::Payload => payload,
            },
        );
        // App-layer fields come from the whole message (TCP) or the datagram.
        let udp = m.proto == ip_proto::UDP;
        let port53 = m.src_port == 53 || m.dst_port == 53;
        // The flow's protocol, from the start of each direction's first message.
        match window {
            Window::Message { whole: true, .. } => {
                flow.detect
                    .feed(data, to_server, false, flow.half[d].fin, port53)
            }
            Window::Payload if !tcp => flow.detect.feed(payload, to_server, true, true, port53),
            _ => {}
        }
        let proto = flow.detect.proto();
        let msg = Message {
            data: match window {
                Window::Message { whole: true, .. } => data,
                Window::Payload if !tcp => payload,
                _ => &[],
            },
            to_server,
            fin: flow.half[d].fin,
            depth: settings.stream.depth,
            request_body_limit: settings.request_body_limit,
            response_body_limit: settings.response_body_limit,
        };
        // A datagram is a message of its own.
        let (mut datagram_phase, mut datagram_seen) = (MessagePhase::Fresh, 0);
        let (phase, body_seen) = if tcp {
            (&mut flow.phase[d], &mut flow.body_seen[d])
        } else {
            (&mut datagram_phase, &mut datagram_seen)
        };
        buffers::app_layer(proto, &msg, phase, body_seen, app, &mut bufs, stats);
        if udp && proto == AppProto::Dns {
            buffers::dns_query(payload, qname, &mut bufs, stats);
        }
        let p = Inspection {
            proto: m.proto,
            src: m.src,
            src_port: m.src_port,
            dst: m.dst,
            dst_port: m.dst_port,
            to_server,
            established: flow.replied,
            payload_len: payload.len(),
            tcp_flags: if tcp { m.tcp_flags } else { 0 },
            icmp: matches!(m.proto, ip_proto::ICMP | ip_proto::ICMPV6)
                .then_some((m.icmp_type, m.icmp_code)),
            stream_bytes: (flow.sent[0], flow.sent[1]),
            app_proto: proto.rule_name(),
            buffers: bufs.as_slice(),
        };
        hits.clear();
        settings
            .book
            .engine
            .inspect_stateful(&p, scratch, &mut flow.bits, rates, pkt.now_ns, hits);
        if let Window::Message { .. } = window {
            let h = &mut flow.half[d];
            h.inspected = h.contiguous().len();
            // Every field of the message is inspected: only the lookback is needed now.
            if tcp && flow.phase[d] == MessagePhase::Done {
                h.discard_inspected();
            }
        }
        let reassembled = matches!(window, Window::Message { .. });
        let first_alert = alerts.len();
        let verdict = decide(
            &Decision {
                settings,
                hits,
                m,
                now_ns: pkt.now_ns,
            },
            if reassembled {
                Some(&mut flow.alerted[d])
            } else {
                None
            },
            policy_rates,
            alerts,
            stats,
        );
        // Transactions are HTTP's requests and responses, TLS's and SSH's one handshake.
        let tx_id = match proto {
            AppProto::Http if tcp => Some(flow.tx[d]),
            AppProto::Tls | AppProto::Ssh => Some(0),
            _ => None,
        };
        for a in &mut alerts[first_alert..] {
            (a.app_proto, a.tx_id) = (proto, tx_id);
        }
        match verdict {
            IpsVerdict::Drop | IpsVerdict::DropPacket => stats.dropped += 1,
            IpsVerdict::Reject => {
                stats.rejected += 1;
                out.injects
                    .push_with(pkt.side, |o| reject::build(frame, m, o));
                if tcp {
                    out.injects
                        .push_with(pkt.side.other(), |o| answer::rst_to_server(m, o));
                }
            }
            IpsVerdict::Pass => {}
        }
        // A blocked flow is not inspected again; a closed one keeps nothing buffered.
        let closed =
            tcp && (m.tcp_flags & flags::RST != 0 || (flow.half[0].fin && flow.half[1].fin));
        if matches!(verdict, IpsVerdict::Drop | IpsVerdict::Reject) || closed {
            flow.release(mem);
        }
        verdict
    }
}

/// The side-table entry of `f`, fresh when the flow has just opened; what the previous
/// rule set numbered is forgotten when the rules changed since its last packet.
fn side_entry<'t>(
    flows: &'t mut Vec<SigFlow>,
    f: FlowRef,
    mem: &mut Memcap,
    epoch: u32,
) -> &'t mut SigFlow {
    let slot = f.slot as usize;
    if slot >= flows.len() {
        flows.resize_with(slot + 1, SigFlow::default);
    }
    let e = &mut flows[slot];
    if f.opened {
        e.release(mem);
        *e = SigFlow {
            epoch,
            ..SigFlow::default()
        };
    } else if e.epoch != epoch {
        e.bits.clear();
        for a in &mut e.alerted {
            a.clear();
        }
        e.epoch = epoch;
    }
    e
}

/// Places a TCP segment in its direction's stream; a payload in the other direction
/// starts that direction's next message.
fn track_stream(
    f: &mut SigFlow,
    d: usize,
    m: &PacketMeta,
    payload: &[u8],
    limits: StreamLimits,
    mem: &mut Memcap,
    stats: &mut IdsStats,
) -> Window {
    let mut window = Window::Payload;
    if m.tcp_flags & flags::SYN != 0 {
        f.half[d].syn(m.tcp_seq);
    }
    // What this side acknowledges of the other's stream: a hole it passes was lost to us.
    if m.tcp_flags & flags::ACK != 0 {
        f.half[1 - d].acked(m.tcp_ack, &mut stats.stream);
    }
    if !payload.is_empty() {
        let other = &mut f.half[1 - d];
        if !other.contiguous().is_empty() || other.inspected > 0 {
            other.next_message();
            other.trim(mem);
            f.detect.message_ended(d == 1);
            f.tx[1 - d] = f.tx[1 - d].saturating_add(1);
            f.alerted[1 - d].clear();
            f.phase[1 - d] = MessagePhase::Fresh;
        }
        let before = stats.stream.memcap_refused + stats.stream.beyond_window;
        // Data on a SYN (TCP Fast Open) follows the SYN's own sequence number.
        let seq = m
            .tcp_seq
            .wrapping_add(u32::from(m.tcp_flags & flags::SYN != 0));
        let h = &mut f.half[d];
        if h.add(seq, payload, limits, mem, &mut stats.stream) {
            f.sent[d] += payload.len() as u64;
            window = message_window(h);
        } else if stats.stream.memcap_refused + stats.stream.beyond_window != before {
            stats.stream_unheld += 1;
        }
    }
    if m.tcp_flags & flags::FIN != 0 {
        let h = &mut f.half[d];
        h.fin = true;
        // A message waiting for its end (a body without length) is complete now.
        if window == Window::Payload && payload.is_empty() && !h.contiguous().is_empty() {
            window = message_window(h);
        }
    }
    window
}

fn message_window(h: &HalfStream) -> Window {
    Window::Message {
        from: h.inspected.saturating_sub(LOOKBACK),
        whole: !h.truncated,
    }
}

/// What the decision reads.
struct Decision<'a> {
    settings: &'a IpsSettings,
    hits: &'a mut Vec<u32>,
    m: &'a PacketMeta,
    now_ns: u64,
}

/// From the rules that matched to the packet's verdict and alerts. Order: rules the policy
/// switched off take no part (pass rules included); drop and reject first, then pass
/// (which ends this packet's inspection, its alerts included), then alert. `alerted` is
/// the message's "alerted once" list for reassembled data.
fn decide(
    d: &Decision<'_>,
    mut alerted: Option<&mut Vec<u32>>,
    policy_rates: &mut PolicyRates,
    alerts: &mut Vec<Alert>,
    stats: &mut IdsStats,
) -> IpsVerdict {
    let Decision {
        settings, hits, m, ..
    } = d;
    let rules = &settings.book.engine.rules;
    let action = |i: u32| rules[i as usize].action;
    let blocking = |i: u32| matches!(action(i), Action::Drop | Action::Reject);
    let live = || hits.iter().copied().filter(|&i| !settings.is_disabled(i));
    if !live().any(blocking) && live().any(|i| action(i) == Action::Pass) {
        stats.passed += 1;
        return IpsVerdict::Pass;
    }
    let ips = settings.mode == IpsMode::Ips;
    let mut verdict = IpsVerdict::Pass;
    let first = alerts.len();
    for i in live() {
        if let Some(seen) = alerted.as_deref_mut() {
            if seen.contains(&i) {
                continue;
            }
            if seen.len() < ALERTED_PER_MESSAGE {
                seen.push(i);
            }
        }
        if let Some(rate) = settings.rate.get(&i)
            && !policy_rates.limits.permits(i, rate, m.src, m.dst, d.now_ns)
        {
            continue;
        }
        let mut act = action(i);
        if let Some(f) = settings.rate_filter.get(&i) {
            act = policy_rates
                .filters
                .action(i, f, rate_key(f.track, m), act, d.now_ns);
            if act == Action::Pass {
                continue;
            }
        }
        let blocked = ips && matches!(act, Action::Drop | Action::Reject);
        if blocked {
            verdict = verdict.max(match act {
                Action::Reject => IpsVerdict::Reject,
                _ if settings.packet_only(i) => IpsVerdict::DropPacket,
                _ => IpsVerdict::Drop,
            });
        }
        // Suppressed: the rule still acts, without an alert.
        if settings.suppressed(i, m.src, m.dst) {
            continue;
        }
        alerts.push(Alert {
            rule: i,
            blocked,
            defrag: false,
            app_proto: AppProto::Unknown,
            tx_id: None,
        });
    }
    stats.alerts += (alerts.len() - first) as u64;
    verdict
}

impl Inspect for Inspector {
    /// Inspects the packet, queues its alerts as events (with `pcap_cnt`) and reject
    /// answers; a drop or reject in IPS mode blocks the rest of the flow.
    fn inspect(&mut self, pkt: &PacketCtx<'_>, out: &mut Output<'_>) -> StageVerdict {
        let v = self.inspect_one(pkt, out);
        for a in &self.alerts {
            let kind = EventKind::Signature {
                rule: a.rule,
                blocked: a.blocked,
                defrag: a.defrag,
                app_proto: a.app_proto,
                tx_id: a.tx_id,
            };
            let mut rec =
                EventRecord::from_packet(pkt.meta, pkt.side, pkt.flow_id(), kind, pkt.now_ns);
            rec.pcap_cnt = pkt.pcap_cnt;
            if let Some(f) = pkt.flow {
                (rec.pkts, rec.bytes, rec.start_ns) = (f.pkts, f.bytes, f.start_ns);
            }
            out.events.push(rec);
        }
        match v {
            IpsVerdict::Pass => StageVerdict::Pass,
            IpsVerdict::DropPacket => StageVerdict::DropPacket(DropReason::Signature),
            IpsVerdict::Drop | IpsVerdict::Reject => StageVerdict::BlockFlow {
                reason: DropReason::Signature,
                reset: false,
            },
        }
    }

    fn flow_ended(&mut self, slot: u32) {
        if let Some(f) = self.flows.get_mut(slot as usize) {
            f.release(&mut self.mem);
            *f = SigFlow::default();
            self.stats.flows_ended += 1;
        }
    }
}

//! A packet with no flow: an ICMP error about a flow we hold (`related`), or the first
//! packet of a new one — the TCP opening check, pickups (a SYN-ACK, a mid-stream segment
//! that outlived a restart), the firewall's rule walk and a slot in the table.

use super::{
    Classifier, DropReason, FlowEnd, ForwardReason, Keyed, Pkt, TCP_ACK, TCP_SYN, Verdict,
};
use crate::PacketMeta;
use crate::event::{EventKind, EventRecord};
use crate::flow::{FlowKey, FlowVerdict, NO_RULE, Side, tcp};
use crate::packet;
use crate::stage::FlowRef;
use crate::wire::{icmp, ip_proto};

/// A tuple shaped like a LAN client's connection: an ephemeral port on the LAN (where only
/// client sockets live) to a service port on the WAN. Only such segments are picked up
/// mid-stream from the WAN, so a pickup reaches no LAN server port.
fn client_shaped(lan_port: u16, wan_port: u16) -> bool {
    lan_port >= 1024 && wan_port < 49152
}

impl Classifier {
    /// An ICMP error quoting a packet of an existing flow follows that flow's verdict.
    pub(super) fn related(&mut self, frame: &[u8], m: &PacketMeta) -> Option<Verdict> {
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

    pub(super) fn open(&mut self, p: &Pkt<'_>, k: &Keyed) -> Verdict {
        let (m, side, now_ns) = (p.m, p.at.side, p.at.now_ns);
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
        (mm.src_port, mm.dst_port) = if k.src_is_lo {
            (k.key.lo_port, k.key.hi_port)
        } else {
            (k.key.hi_port, k.key.lo_port)
        };
        let mut d = self.policy.firewall.decide(side, &mm);
        // A SYN-ACK picked up (the SYN was missed: a restart, a capture started late)
        // answers a connection its receiver opened. When the firewall allows it both as
        // sent and as that connection, the flow is the receiver's; otherwise it stays the
        // sender's, refused or not, and the receiver's side may still open the tuple.
        // A mid-stream segment from the WAN is picked up as the LAN's when the LAN could
        // have opened that connection (`tcp_wan_pickup`).
        let mut opener = side;
        let tcp = m.proto == ip_proto::TCP && m.has_l4();
        let syn_ack = tcp && m.tcp_flags & (TCP_SYN | TCP_ACK) == TCP_SYN | TCP_ACK;
        let wan_midstream = tcp
            && side == Side::Wan
            && m.tcp_flags & TCP_SYN == 0
            && self.policy.flows.tcp_loose_pickup
            && self.policy.flows.tcp_wan_pickup
            && client_shaped(mm.dst_port, mm.src_port);
        if (syn_ack && d.verdict == FlowVerdict::Allow) || wan_midstream {
            let as_opened = self.policy.firewall.decide(side.other(), &mm.mirrored());
            if as_opened.verdict == FlowVerdict::Allow {
                (d, opener) = (as_opened, side.other());
            }
        }
        let answered = opener != side;
        let hit = match (d.rule, opener) {
            (NO_RULE, Side::Lan) => self.policy.firewall.rules.len(),
            (NO_RULE, Side::Wan) => self.policy.firewall.rules.len() + 1,
            (r, _) => r as usize,
        };
        self.stats.rule_hits[hit] += 1;

        let mut end = FlowEnd {
            events: &mut self.events,
            stages: &mut self.stages,
            which: self.policy.events.flow,
            now_ns,
        };
        let Some(idx) = self
            .flows
            .insert(k.key, k.hash, now_ns, |slot, f, r| end.ended(slot, f, r))
        else {
            return Verdict::Drop(DropReason::FlowTableFull);
        };
        let timeouts = self.policy.flows.timeouts;
        let f = self.flows.get_mut(idx);
        f.initiator_is_lo = k.src_is_lo != answered;
        f.initiator_side = opener;
        f.generation = self.generation;
        f.verdict = d.verdict;
        f.rule = d.rule;
        f.tcp = state;
        f.logged = d.log;
        let dir = usize::from(answered);
        f.pkts[dir] = 1;
        f.bytes[dir] = p.frame.len() as u64;
        f.expires_ns = now_ns + timeouts.for_flow(f);
        let flow = FlowRef {
            slot: idx,
            id: f.id,
            from_initiator: !answered,
            initiator_side: opener,
            opened: true,
            pkts: f.pkts,
            bytes: f.bytes,
            start_ns: f.first_seen_ns,
        };
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
            && !self.stages.is_empty()
            && let Some(v) = self.run_stages(p, Some(flow))
        {
            return v;
        }
        self.apply(d.verdict, p)
    }
}

//! The stage interface: how every inspector (the web filter, the signature inspector, and
//! later applications and mail) joins the data path.
//!
//! The classifier parses a frame once, finds its flow once and lets the firewall decide.
//! For a packet the firewall allows, it then calls each inspector in a fixed order with the
//! same two contexts: [`PacketCtx`] (the frame, its parsed headers, the side it arrived
//! on, the flow's slot and direction, the time) and [`Output`] (where events and answers
//! go). An inspector keeps its per-flow state in a side table indexed by
//! [`FlowRef::slot`], and the classifier tells it when a slot's flow ends
//! ([`Inspect::flow_ended`]), so there is one flow table, one expiry and one eviction
//! policy. Each returns a [`StageVerdict`]; the strictest wins, the classifier acts on it
//! (blocking the rest of the flow where asked) and counts the packet once.

use crate::classify::DropReason;
use crate::event::EventQueue;
use crate::flow::Side;
use crate::packet::PacketMeta;
use crate::reject::InjectQueue;

/// Where and when a frame of a burst arrived.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Arrival {
    pub side: Side,
    pub now_ns: u64,
    /// The record's number in a replayed capture (0 on the live path); events quote it.
    pub pcap_cnt: u64,
}

/// The classifier's flow of a packet, as inspectors see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowRef {
    /// Index in the flow table: the key of every inspector's side table.
    pub slot: u32,
    /// Unique per table, quoted by events as `flow_id`.
    pub id: u64,
    /// The packet was sent by the flow's initiator.
    pub from_initiator: bool,
    pub initiator_side: Side,
    /// This packet created the flow (any state an inspector holds for the slot is stale).
    pub opened: bool,
    /// The flow's counters with this packet: `[0]` from the initiator, `[1]` from the
    /// responder (alert events quote them, as Suricata's do).
    pub pkts: [u64; 2],
    pub bytes: [u64; 2],
    pub start_ns: u64,
}

/// One packet, parsed once, handed to every inspector.
#[derive(Clone, Copy)]
pub struct PacketCtx<'a> {
    pub frame: &'a [u8],
    pub meta: &'a PacketMeta,
    /// The port the packet arrived on.
    pub side: Side,
    /// `None` for IP packets that belong to no flow (ICMP errors about a flow,
    /// neighbour discovery): inspected on their own, without flow state.
    pub flow: Option<FlowRef>,
    pub now_ns: u64,
    pub pcap_cnt: u64,
}

impl<'a> PacketCtx<'a> {
    /// The L4 payload (empty when the frame is shorter than its headers claim).
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        let start = usize::from(self.meta.payload_offset);
        self.frame
            .get(start..start + usize::from(self.meta.payload_len))
            .unwrap_or(&[])
    }

    /// The flow's id for events (0 without a flow).
    #[inline]
    pub fn flow_id(&self) -> u64 {
        self.flow.map_or(0, |f| f.id)
    }
}

/// Where an inspector's results go: events to the event queue, answers (resets, block
/// pages, sinkhole replies) to the inject queue, each with the side it leaves on.
pub struct Output<'a> {
    pub events: &'a mut EventQueue,
    pub injects: &'a mut InjectQueue,
}

/// What an inspector wants done with a packet, mildest first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StageVerdict {
    #[default]
    Pass,
    /// Drop this packet only (a sinkholed DNS query: the flow may ask for other names).
    DropPacket(DropReason),
    /// Drop this packet and every later one of its flow; with `reset`, later TCP packets
    /// are answered with a RST so the peer gives up at once.
    BlockFlow { reason: DropReason, reset: bool },
}

impl StageVerdict {
    fn rank(self) -> u8 {
        match self {
            StageVerdict::Pass => 0,
            StageVerdict::DropPacket(_) => 1,
            StageVerdict::BlockFlow { .. } => 2,
        }
    }

    /// The one combining rule: the strictest verdict wins (the earlier stage's on a tie).
    #[inline]
    pub fn strictest(self, other: StageVerdict) -> StageVerdict {
        if other.rank() > self.rank() {
            other
        } else {
            self
        }
    }

    pub fn is_pass(self) -> bool {
        self == StageVerdict::Pass
    }
}

/// An inspector on the data path. One instance per classify worker: nothing is shared
/// or locked, and per-flow state lives in a side table indexed by [`FlowRef::slot`].
pub trait Inspect {
    /// Looks at one packet the firewall allowed (and no earlier stage dropped).
    fn inspect(&mut self, pkt: &PacketCtx<'_>, out: &mut Output<'_>) -> StageVerdict;

    /// The flow in `slot` ended (closed, expired, evicted, shut down): its state goes.
    fn flow_ended(&mut self, slot: u32);

    /// Housekeeping between bursts.
    fn tick(&mut self, _now_ns: u64, _out: &mut Output<'_>) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_strictest_verdict_wins_and_ties_keep_the_first() {
        let drop = StageVerdict::DropPacket(DropReason::WebSinkhole);
        let block = StageVerdict::BlockFlow {
            reason: DropReason::Signature,
            reset: false,
        };
        let web_block = StageVerdict::BlockFlow {
            reason: DropReason::WebBlock,
            reset: true,
        };
        assert_eq!(StageVerdict::Pass.strictest(drop), drop);
        assert_eq!(drop.strictest(StageVerdict::Pass), drop);
        assert_eq!(drop.strictest(block), block);
        assert_eq!(block.strictest(drop), block);
        assert_eq!(web_block.strictest(block), web_block);
    }
}

//! Reading the name a client's first message carries: a TLS ClientHello or HTTP request
//! head over TCP (in place, or joined across segments), the ClientHellos of QUIC Initials
//! (every version we read, joined across packets), Google QUIC's plaintext hello.

use super::hello::{self, ClientRead, HELLO_MAX, Handle, Slot};
use super::{Seen, Via, WebFilter, WebFlow, WebPhase, quic};
use crate::stage::{Output, PacketCtx, StageVerdict};
use crate::web::ShortName;
use crate::wire::{ip_proto, tcp::flags as tcp_flags};

impl WebFilter {
    /// Frees the flow's joining buffer, if it has one.
    pub(super) fn end_joining(&mut self, slot: usize) {
        if let Some(WebFlow {
            phase: WebPhase::Joining(h),
            ..
        }) = self.flows.get(slot).copied()
        {
            self.hellos.release(h);
            self.flows[slot].phase = WebPhase::Done;
        }
    }

    /// A client datagram that starts with a QUIC long header: the CRYPTO frames of every
    /// Initial in it (coalesced packets too) are placed by offset, in the flow's joining
    /// buffer when an earlier Initial left the ClientHello cut.
    pub(super) fn quic(
        &mut self,
        pkt: &PacketCtx<'_>,
        st: WebFlow,
        out: &mut Output<'_>,
    ) -> (WebFlow, StageVerdict) {
        let slot = match st.phase {
            WebPhase::Joining(h) => Slot::Kept(h),
            _ => {
                self.hellos.start_probe(0);
                Slot::Probe
            }
        };
        let (mut initials, mut over, mut zero_rtt) = (0, false, false);
        let mut d = pkt.payload();
        while quic::looks_like_long(d) {
            let Ok((p, rest)) = quic::next_packet(d) else {
                self.stats.quic_unreadable += 1;
                break;
            };
            d = rest;
            match p.kind {
                quic::Kind::Initial => match quic::open_initial(&p, &mut self.scratch) {
                    Ok(plain) => {
                        initials += 1;
                        let (hellos, stats) = (&mut self.hellos, &mut self.stats.hellos);
                        let placed = quic::crypto_frames(plain, |off, data| {
                            let fits = off.saturating_add(data.len() as u64) <= HELLO_MAX as u64;
                            over |= !fits
                                || hellos.add(slot, off as u32, data, stats)
                                    == hello::Added::OverBudget;
                        });
                        if placed.is_err() {
                            self.stats.quic_unreadable += 1;
                        }
                    }
                    Err(_) => self.stats.quic_unreadable += 1,
                },
                quic::Kind::ZeroRtt => {
                    self.stats.quic_0rtt += 1;
                    zero_rtt = true;
                }
                quic::Kind::Unknown => {
                    self.stats.quic_other_version += 1;
                    if initials == 0 && matches!(slot, Slot::Probe) {
                        return self.gquic(pkt, st, out);
                    }
                }
                _ => {}
            }
        }
        if initials == 0 {
            // Nothing of the hello here: a joining flow reads what it has; a 0-RTT packet
            // reordered before its Initial waits for it.
            return match (slot, zero_rtt) {
                (Slot::Kept(_), _) => self.read_done(pkt, st, slot, true, out),
                (Slot::Probe, true) => self.give_up_or_wait(pkt, st, out),
                (Slot::Probe, false) => self.nameless(pkt, st, false, out),
            };
        }
        self.read_done(pkt, st, slot, over, out)
    }

    /// A client datagram that is not an IETF QUIC long header: Google QUIC's plaintext
    /// hello names its server; anything else is nameless.
    pub(super) fn gquic(
        &mut self,
        pkt: &PacketCtx<'_>,
        st: WebFlow,
        out: &mut Output<'_>,
    ) -> (WebFlow, StageVerdict) {
        let read = match quic::gquic_chlo_sni(pkt.payload()) {
            Some(name) => {
                self.stats.gquic_sni += 1;
                ClientRead::Named {
                    name: ShortName::new(name.as_bytes()),
                    path: None,
                    via: Via::Quic,
                    ech: false,
                }
            }
            None => ClientRead::Nameless,
        };
        match read {
            ClientRead::Nameless => self.nameless(pkt, st, false, out),
            r => self.act(pkt, st, r, out),
        }
    }

    /// Reads the message gathered in `slot` (QUIC's CRYPTO stream) and acts on it.
    pub(super) fn read_done(
        &mut self,
        pkt: &PacketCtx<'_>,
        st: WebFlow,
        slot: Slot,
        last: bool,
        out: &mut Output<'_>,
    ) -> (WebFlow, StageVerdict) {
        let read = hello::read_crypto(self.hellos.bytes(slot), last);
        let read = match (read, slot) {
            (ClientRead::More, Slot::Probe) => match self.hellos.keep_probe(&mut self.stats.hellos)
            {
                Some(h) => {
                    let st = WebFlow {
                        phase: WebPhase::Joining(h),
                        ..st
                    };
                    return (st, StageVerdict::Pass);
                }
                None => hello::read_crypto(self.hellos.bytes(slot), true),
            },
            (r, _) => r,
        };
        self.act(pkt, st, read, out)
    }

    /// A client's TCP payload: its first message (a ClientHello, an HTTP request head) is
    /// read in place when the segment holds it whole, else joined across segments.
    pub(super) fn tcp(
        &mut self,
        pkt: &PacketCtx<'_>,
        st: WebFlow,
        out: &mut Output<'_>,
    ) -> (WebFlow, StageVerdict) {
        let (m, payload) = (pkt.meta, pkt.payload());
        // Data on a SYN (TCP Fast Open) follows the SYN's own sequence number.
        let seq = m
            .tcp_seq
            .wrapping_add(u32::from(m.tcp_flags & tcp_flags::SYN != 0));
        let start = st.isn.map(|i| i.wrapping_add(1));
        let read = match st.phase {
            WebPhase::Joining(h) => {
                let over = self
                    .hellos
                    .add(Slot::Kept(h), seq, payload, &mut self.stats.hellos)
                    == hello::Added::OverBudget;
                hello::read_tcp(self.hellos.bytes(Slot::Kept(h)), &mut self.scratch, over)
            }
            // A later part of the first message, ahead of its start: hold it.
            WebPhase::Waiting if start.is_some_and(|s| s != seq) => {
                let start = start.unwrap_or(seq);
                let ahead = seq.wrapping_sub(start) as i32;
                if ahead > 0
                    && (ahead as usize) < HELLO_MAX
                    && let Some(next) = self.join(st, start, seq, payload)
                {
                    return (next, StageVerdict::Pass);
                }
                hello::read_tcp(payload, &mut self.scratch, true)
            }
            // The stream's first bytes (or its start is unknown), or a later packet of a
            // stream whose first one was no message we read: in place, joined if cut.
            _ => match hello::read_tcp(payload, &mut self.scratch, false) {
                ClientRead::More => match self.join(st, seq, seq, payload) {
                    Some(next) => return (next, StageVerdict::Pass),
                    None => hello::read_tcp(payload, &mut self.scratch, true),
                },
                r => r,
            },
        };
        self.act(pkt, st, read, out)
    }

    /// Starts joining the flow's first message (its first byte is `start`) with this
    /// segment; `None` when no buffer is free.
    pub(super) fn join(
        &mut self,
        st: WebFlow,
        start: u32,
        seq: u32,
        payload: &[u8],
    ) -> Option<WebFlow> {
        let h = self.hellos.take(start, &mut self.stats.hellos)?;
        self.hellos
            .add(Slot::Kept(h), seq, payload, &mut self.stats.hellos);
        Some(WebFlow {
            phase: WebPhase::Joining(h),
            ..st
        })
    }

    /// The server spoke while the client's first message was still cut: the decision
    /// cannot wait, so it is taken on what was read.
    pub(super) fn server_spoke(
        &mut self,
        pkt: &PacketCtx<'_>,
        st: WebFlow,
        h: Handle,
        out: &mut Output<'_>,
    ) -> (WebFlow, StageVerdict) {
        let read = if pkt.meta.proto == ip_proto::TCP {
            hello::read_tcp(self.hellos.bytes(Slot::Kept(h)), &mut self.scratch, true)
        } else {
            hello::read_crypto(self.hellos.bytes(Slot::Kept(h)), true)
        };
        self.act(pkt, st, read, out)
    }

    /// Acts on what the client's first message gave: judges its name, waits for more, or
    /// gives up on it. Leaving `Joining` frees the buffer.
    pub(super) fn act(
        &mut self,
        pkt: &PacketCtx<'_>,
        st: WebFlow,
        read: ClientRead,
        out: &mut Output<'_>,
    ) -> (WebFlow, StageVerdict) {
        if !matches!(read, ClientRead::More)
            && let WebPhase::Joining(h) = st.phase
        {
            self.hellos.release(h);
        }
        let done = WebFlow {
            phase: WebPhase::Done,
            ..st
        };
        match read {
            ClientRead::More => (st, StageVerdict::Pass),
            ClientRead::Nameless => self.nameless(pkt, done, true, out),
            ClientRead::Other => {
                let st = match st.phase {
                    WebPhase::Joining(_) => done,
                    _ => st,
                };
                self.give_up_or_wait(pkt, st, out)
            }
            ClientRead::Named {
                name,
                path,
                via,
                ech,
            } => {
                match via {
                    Via::Sni => self.stats.tls_sni += 1,
                    Via::Quic => self.stats.quic_sni += 1,
                    _ => self.stats.http_hosts += 1,
                }
                let seen = Seen {
                    via,
                    name: name.as_str(),
                    path: path.as_ref().map(|p| p.as_str()),
                    ech,
                };
                (done, self.named(pkt, st, &seen, out))
            }
        }
    }
}

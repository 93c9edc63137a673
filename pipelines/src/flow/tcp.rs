//! TCP connection tracking, in the spirit of Linux conntrack: states, and the packets that
//! move a connection between them. Sequence windows are not checked here; the reassembly
//! stage of the IPS does that.

use crate::wire::tcp::flags::{ACK, FIN, RST, SYN};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum TcpState {
    /// Not a TCP flow.
    #[default]
    None,
    SynSent,
    SynRecv,
    Established,
    /// The initiator sent the first FIN.
    FinWait,
    /// The responder sent the first FIN.
    CloseWait,
    /// Both sides sent FIN; waiting for the last ACK.
    LastAck,
    TimeWait,
    /// Reset.
    Close,
}

impl TcpState {
    pub fn name(self) -> &'static str {
        match self {
            TcpState::None => "none",
            TcpState::SynSent => "syn_sent",
            TcpState::SynRecv => "syn_recv",
            TcpState::Established => "established",
            TcpState::FinWait => "fin_wait",
            TcpState::CloseWait => "close_wait",
            TcpState::LastAck => "last_ack",
            TcpState::TimeWait => "time_wait",
            TcpState::Close => "closed",
        }
    }
}

/// A packet that does not fit the connection's state (a SYN-ACK from the initiator,
/// data before the handshake completed…).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Invalid;

/// State for the first packet of a new flow. `None` when the packet cannot open one
/// (`loose` = false and not a bare SYN; or a RST, which never opens anything).
pub fn opening_state(flags: u8, loose: bool) -> Option<TcpState> {
    if flags & RST != 0 {
        return None;
    }
    if flags & (SYN | ACK) == SYN {
        Some(TcpState::SynSent)
    } else if loose {
        // Picked up mid-stream (the box rebooted, or the flow was evicted).
        Some(TcpState::Established)
    } else {
        None
    }
}

/// Advances `state` for a packet with `flags`; `from_initiator` tells its direction.
pub fn advance(state: TcpState, flags: u8, from_initiator: bool) -> Result<TcpState, Invalid> {
    use TcpState::*;
    if flags & RST != 0 {
        return Ok(Close);
    }
    let syn = flags & SYN != 0;
    let ack = flags & ACK != 0;
    let fin = flags & FIN != 0;
    let next = match state {
        None => return Err(Invalid),
        SynSent => match (from_initiator, syn, ack) {
            (true, true, false) => SynSent, // retransmitted SYN
            (false, true, _) => SynRecv,    // SYN-ACK, or simultaneous open
            _ => return Err(Invalid),
        },
        SynRecv => match (from_initiator, syn, ack) {
            (true, false, true) if fin => FinWait,
            (true, false, true) => Established,
            (_, true, _) => SynRecv, // retransmitted SYN or SYN-ACK
            (false, false, true) => SynRecv,
            _ => return Err(Invalid),
        },
        Established if syn => return Err(Invalid),
        Established if fin => {
            if from_initiator {
                FinWait
            } else {
                CloseWait
            }
        }
        Established => Established,
        FinWait | CloseWait if syn => return Err(Invalid),
        FinWait if fin && !from_initiator => LastAck,
        CloseWait if fin && from_initiator => LastAck,
        s @ (FinWait | CloseWait) => s,
        LastAck if ack && !fin => TimeWait,
        LastAck => LastAck,
        // A new SYN from the initiator reopens a finished connection (port reuse).
        TimeWait | Close if syn && !ack && from_initiator => SynSent,
        TimeWait | Close if syn => return Err(Invalid),
        s @ (TimeWait | Close) => s,
    };
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use TcpState::*;

    fn run(steps: &[(u8, bool)]) -> Result<TcpState, Invalid> {
        let mut s = opening_state(steps[0].0, false).ok_or(Invalid)?;
        for &(f, dir) in &steps[1..] {
            s = advance(s, f, dir)?;
        }
        Ok(s)
    }

    #[test]
    fn handshake_data_and_orderly_close() {
        let s = [(SYN, true), (SYN | ACK, false), (ACK, true)];
        assert_eq!(run(&s), Ok(Established));
        let close = [
            &s[..],
            &[
                (FIN | ACK, true),
                (ACK, false),
                (FIN | ACK, false),
                (ACK, true),
            ],
        ]
        .concat();
        assert_eq!(run(&close), Ok(TimeWait));
        let passive = [&s[..], &[(FIN | ACK, false)]].concat();
        assert_eq!(run(&passive), Ok(CloseWait));
    }

    #[test]
    fn reset_closes_from_any_state() {
        assert_eq!(run(&[(SYN, true), (RST | ACK, false)]), Ok(Close));
        assert_eq!(
            run(&[(SYN, true), (SYN | ACK, false), (ACK, true), (RST, true)]),
            Ok(Close)
        );
    }

    #[test]
    fn out_of_state_packets_are_invalid() {
        assert_eq!(run(&[(SYN, true), (SYN | ACK, true)]), Err(Invalid));
        assert_eq!(run(&[(SYN, true), (ACK, false)]), Err(Invalid));
        assert_eq!(
            run(&[(SYN, true), (SYN | ACK, false), (ACK, true), (SYN, true)]),
            Err(Invalid)
        );
    }

    #[test]
    fn only_a_bare_syn_opens_unless_loose() {
        assert_eq!(opening_state(ACK, false), Option::None);
        assert_eq!(opening_state(ACK, true), Some(Established));
        assert_eq!(opening_state(RST, true), Option::None);
        assert_eq!(opening_state(SYN | ACK, false), Option::None);
    }

    #[test]
    fn port_reuse_after_time_wait() {
        let s = [
            (SYN, true),
            (SYN | ACK, false),
            (ACK, true),
            (RST, false),
            (SYN, true),
        ];
        assert_eq!(run(&s), Ok(SynSent));
    }
}

//! Hosts and TCP conversations for the synthesizer.

use super::{Packet, ROUTER_MAC, client_mac, frame};
use crate::packet::{v4_bits, v6_bits};
use crate::wire::MacAddr;
use crate::wire::emit::Transport;
use crate::wire::tcp::flags::{ACK, FIN, PSH, SYN};

/// A host and port as seen on the wire (its MAC is the next hop's, for servers).
#[derive(Clone, Copy, Debug)]
pub struct Endpoint {
    pub mac: MacAddr,
    pub ip: u128,
    pub v4: bool,
    pub port: u16,
}

impl Endpoint {
    /// LAN client number `n`: 198.18.0.n or 2001:db8:1::n.
    pub fn client(n: u8, v6: bool, port: u16) -> Self {
        let ip = if v6 {
            v6_bits(lan6(n))
        } else {
            v4_bits([198, 18, 0, n])
        };
        Endpoint {
            mac: client_mac(n),
            ip,
            v4: !v6,
            port,
        }
    }
    /// WAN server `n` (1..=65534): 198.19.x.y or 2001:db8:2::n, reached via the router.
    pub fn server(n: u16, v6: bool, port: u16) -> Self {
        let ip = if v6 {
            let mut a = [0u8; 16];
            a[..6].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0x00, 0x02]);
            a[14..].copy_from_slice(&n.to_be_bytes());
            v6_bits(a)
        } else {
            v4_bits([198, 19, (n >> 8) as u8, n as u8])
        };
        Endpoint {
            mac: ROUTER_MAC,
            ip,
            v4: !v6,
            port,
        }
    }
    pub fn with_port(self, port: u16) -> Self {
        Endpoint { port, ..self }
    }
}

fn lan6(n: u8) -> [u8; 16] {
    let mut a = [0u8; 16];
    a[..6].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01]);
    a[15] = n;
    a
}

const SYN_OPTIONS: [u8; 12] = [2, 4, 0x05, 0xb4, 1, 1, 4, 2, 1, 3, 3, 7];

/// One TCP connection being written out: sequence numbers, clock, segmenting.
pub struct TcpConv<'a> {
    pub out: &'a mut Vec<Packet>,
    pub client: Endpoint,
    pub server: Endpoint,
    pub vlan: u16,
    pub t: u64,
    pub rtt_ns: u64,
    c_seq: u32,
    s_seq: u32,
}

impl<'a> TcpConv<'a> {
    pub fn new(
        out: &'a mut Vec<Packet>,
        client: Endpoint,
        server: Endpoint,
        vlan: u16,
        t: u64,
        rtt_ns: u64,
        isn: (u32, u32),
    ) -> Self {
        Self {
            out,
            client,
            server,
            vlan,
            t,
            rtt_ns,
            c_seq: isn.0,
            s_seq: isn.1,
        }
    }

    fn mss(&self) -> usize {
        if self.client.v4 { 1460 } else { 1440 }
    }

    fn emit(&mut self, from_client: bool, flags: u8, payload: &[u8], options: &[u8]) {
        let (from, to, seq, ack) = if from_client {
            (self.client, self.server, self.c_seq, self.s_seq)
        } else {
            (self.server, self.client, self.s_seq, self.c_seq)
        };
        let t = Transport::Tcp {
            src_port: from.port,
            dst_port: to.port,
            seq,
            ack: if flags & ACK != 0 { ack } else { 0 },
            flags,
            window: 64240,
            options,
        };
        self.out.push(Packet {
            ts_ns: self.t,
            frame: frame(&from, &to, self.vlan, &t, payload),
        });
        let adv = payload.len() as u32 + u32::from(flags & (SYN | FIN) != 0);
        if from_client {
            self.c_seq = self.c_seq.wrapping_add(adv);
        } else {
            self.s_seq = self.s_seq.wrapping_add(adv);
        }
    }

    fn half_rtt(&mut self) {
        self.t += self.rtt_ns / 2;
    }

    pub fn handshake(&mut self) {
        self.emit(true, SYN, &[], &SYN_OPTIONS);
        self.half_rtt();
        self.emit(false, SYN | ACK, &[], &SYN_OPTIONS);
        self.half_rtt();
        self.emit(true, ACK, &[], &[]);
        self.t += 20_000;
    }

    /// Sends `data` in MSS-sized segments; the receiver ACKs every second segment.
    pub fn send(&mut self, from_client: bool, data: &[u8]) {
        let mss = self.mss();
        let n = data.len().div_ceil(mss);
        for (i, seg) in data.chunks(mss).enumerate() {
            let last = i + 1 == n;
            self.emit(from_client, if last { ACK | PSH } else { ACK }, seg, &[]);
            self.t += 12_000 + (seg.len() as u64) * 8; // serialisation at ~1 Gbit/s plus gap
            if i % 2 == 1 || last {
                let t0 = self.t;
                self.t += self.rtt_ns / 2;
                self.emit(!from_client, ACK, &[], &[]);
                self.t = t0 + 1_000;
            }
        }
        self.t += self.rtt_ns;
    }

    /// Orderly close started by the client.
    pub fn close(&mut self) {
        self.emit(true, FIN | ACK, &[], &[]);
        self.half_rtt();
        self.emit(false, FIN | ACK, &[], &[]);
        self.half_rtt();
        self.emit(true, ACK, &[], &[]);
    }
}

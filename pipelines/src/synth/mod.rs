//! A deterministic generator of office traffic, written to pcap by `mimamori-gw synth` and
//! used by the project's tests and benchmarks so they never depend on outside captures.
//!
//! The same seed and configuration give the same bytes. Hosts use 198.18.0.0/15 and
//! 2001:db8::/32 and names under `.test`: LAN clients in 198.18.0.0/24 and 2001:db8:1::/64,
//! servers in 198.19.0.0/16 and 2001:db8:2::/64.

mod proto;
mod rng;
mod tcp;

pub use proto::{HelloShape, client_hello, shaped_client_hello};
pub use rng::Rng;
pub use tcp::Endpoint;

use crate::wire::MacAddr;
use crate::wire::emit::{self, Ip, L2, Transport};

/// Synthesizer settings.
#[derive(Clone, Debug)]
pub struct Config {
    pub seed: u64,
    /// Conversations to generate (a TCP connection, a DNS lookup, a ping series…).
    pub sessions: usize,
    /// Stop after this many packets (0: no limit).
    pub max_packets: usize,
    /// Capture start time, ns since the Unix epoch.
    pub start_ns: u64,
    /// Sessions start spread over this many ns.
    pub spread_ns: u64,
    /// Share of sessions over IPv6, in percent.
    pub ipv6_percent: u8,
    /// Tag every frame with this VLAN ID (0: untagged).
    pub vlan: u16,
    /// Share of sessions that are inbound probes from the WAN (blocked by the default
    /// policy), in percent.
    pub probe_percent: u8,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            seed: 1,
            sessions: 200,
            max_packets: 0,
            start_ns: 1_795_708_800_000_000_000, // 2026-11-26T16:00:00Z
            spread_ns: 10_000_000_000,
            ipv6_percent: 25,
            vlan: 0,
            probe_percent: 2,
        }
    }
}

/// One frame and when it was seen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    pub ts_ns: u64,
    pub frame: Vec<u8>,
}

/// The kinds of conversation in the office mix, with their weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Http,
    Tls,
    Dns,
    Smtp,
    Quic,
    Icmp,
    Imix,
    Telnet,
}

const MIX: &[(Kind, u32)] = &[
    (Kind::Http, 24),
    (Kind::Tls, 30),
    (Kind::Dns, 20),
    (Kind::Smtp, 4),
    (Kind::Quic, 10),
    (Kind::Icmp, 5),
    (Kind::Imix, 6),
    (Kind::Telnet, 1),
];

/// The router on the WAN side: every server is reached through its MAC.
pub const ROUTER_MAC: MacAddr = MacAddr([0x02, 0x00, 0x00, 0x00, 0xff, 0x01]);

pub fn client_mac(n: u8) -> MacAddr {
    MacAddr([0x02, 0x00, 0x00, 0x00, 0x00, n])
}

/// Generates the traffic, in time order.
pub fn generate(cfg: &Config) -> Vec<Packet> {
    let mut rng = Rng::new(cfg.seed);
    let mut out = Vec::new();
    let total_weight: u32 = MIX.iter().map(|&(_, w)| w).sum();
    for s in 0..cfg.sessions {
        let start = cfg.start_ns + rng.below(cfg.spread_ns.max(1));
        let v6 = rng.below(100) < u64::from(cfg.ipv6_percent);
        let client_n = 10 + (rng.below(200) as u8);
        let client = Endpoint::client(client_n, v6, 32768 + (s % 28000) as u16);
        let mut g = proto::Gen {
            rng: rng.fork(),
            out: &mut out,
            t: start,
            vlan: cfg.vlan,
        };
        if rng.below(100) < u64::from(cfg.probe_percent) {
            g.inbound_probe(client);
            continue;
        }
        let mut pick = rng.below(u64::from(total_weight)) as u32;
        let kind = MIX
            .iter()
            .find(|&&(_, w)| {
                if pick < w {
                    true
                } else {
                    pick -= w;
                    false
                }
            })
            .map_or(Kind::Http, |&(k, _)| k);
        g.session(kind, client);
    }
    out.sort_by_key(|p| p.ts_ns);
    if cfg.max_packets > 0 {
        out.truncate(cfg.max_packets);
    }
    out
}

/// A TCP segment from `from` to `to` (their ports), window 65535, no options: the frame
/// builder tests and benches share.
pub fn tcp_frame(
    from: &Endpoint,
    to: &Endpoint,
    flags: u8,
    seq: u32,
    ack: u32,
    payload: &[u8],
) -> Vec<u8> {
    let t = Transport::Tcp {
        src_port: from.port,
        dst_port: to.port,
        seq,
        ack,
        flags,
        window: 65535,
        options: &[],
    };
    frame(from, to, 0, &t, payload)
}

/// A UDP datagram from `from` to `to` (their ports).
pub fn udp_frame(from: &Endpoint, to: &Endpoint, payload: &[u8]) -> Vec<u8> {
    let t = Transport::Udp {
        src_port: from.port,
        dst_port: to.port,
    };
    frame(from, to, 0, &t, payload)
}

/// Builds one frame (used by the generator and by benchmarks that need exact packets).
pub fn frame(
    from: &Endpoint,
    to: &Endpoint,
    vlan: u16,
    t: &Transport<'_>,
    payload: &[u8],
) -> Vec<u8> {
    let mut buf = vec![0u8; 1600 + payload.len()];
    let l2 = L2 {
        src: from.mac,
        dst: to.mac,
        vlan_outer: vlan,
        vlan_inner: 0,
    };
    let ip = Ip {
        src: from.ip,
        dst: to.ip,
        v4: from.v4,
        ttl: 64,
        ident: 0,
    };
    let n = emit::build(&mut buf, &l2, &ip, t, payload).unwrap_or(0);
    buf.truncate(n);
    // Ethernet minimum frame size (60 bytes without the FCS).
    if buf.len() < 60 && n > 0 {
        buf.resize(60, 0);
    }
    buf
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::emit::transport_checksum_ok;

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        let cfg = Config {
            sessions: 40,
            ..Config::default()
        };
        assert_eq!(generate(&cfg), generate(&cfg));
        assert_ne!(generate(&cfg), generate(&Config { seed: 2, ..cfg }));
    }

    #[test]
    fn every_frame_parses_with_good_checksums() {
        let pkts = generate(&Config {
            sessions: 300,
            vlan: 0,
            ..Config::default()
        });
        assert!(pkts.len() > 1000, "{}", pkts.len());
        for (i, p) in pkts.iter().enumerate() {
            let m = crate::packet::parse(&p.frame).unwrap_or_else(|e| panic!("packet {i}: {e}"));
            assert!(transport_checksum_ok(&p.frame, &m), "packet {i} checksum");
            assert!(
                p.frame.len() <= 1514,
                "packet {i} is {} bytes",
                p.frame.len()
            );
        }
        assert!(pkts.windows(2).all(|w| w[0].ts_ns <= w[1].ts_ns));
    }

    #[test]
    fn vlan_tag_applies_to_every_frame() {
        for p in generate(&Config {
            sessions: 20,
            vlan: 42,
            ..Config::default()
        }) {
            assert_eq!(crate::packet::parse(&p.frame).unwrap().vlan_outer, 42);
        }
    }
}

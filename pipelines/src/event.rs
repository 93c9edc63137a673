//! Events: firewall decisions that were asked to be logged, and flow ends. The data path
//! fills a bounded queue with small fixed-size records; the exporter turns them into
//! Suricata EVE JSON lines, so existing tools read them.

use crate::flow::{EndReason, Flow, FlowVerdict, Side, TcpState};
use crate::packet::to_ip;
use crate::wire::ip_proto;
use serde::Serialize;
use std::collections::VecDeque;
use std::net::IpAddr;

/// Firewall alerts carry this generator ID; `signature_id` is the rule's position + 1.
pub const FIREWALL_GID: u32 = 9;
/// `signature_id` used for the zone defaults.
pub const DEFAULT_RULE_SID: u32 = 0;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// A firewall decision on a new flow whose rule has `log = true`.
    Firewall { verdict: FlowVerdict, rule: u32 },
    /// The flow left the table.
    FlowEnd { reason: EndReason },
    /// The web filter blocked, sinkholed or monitored a name.
    Web(crate::web::WebHit),
    /// A LAN host was quarantined.
    Quarantine(crate::web::Quarantined),
    /// A signature matched: `rule` indexes the gateway's compiled rules (the exporter
    /// names it); `blocked` when IPS mode dropped or rejected the packet for it.
    /// `defrag` when the packet was a datagram joined from fragments.
    Signature {
        rule: u32,
        blocked: bool,
        defrag: bool,
        app_proto: crate::app::AppProto,
        tx_id: Option<u32>,
    },
}

/// Everything an event needs, copied out of the flow: no references, no allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventRecord {
    pub ts_ns: u64,
    pub kind: EventKind,
    pub flow_id: u64,
    /// The port the flow's first packet arrived on.
    pub side: Side,
    pub v4: bool,
    pub src: u128,
    pub src_port: u16,
    pub dst: u128,
    pub dst_port: u16,
    pub proto: u8,
    pub vlan: u32,
    pub pkts: [u64; 2],
    pub bytes: [u64; 2],
    pub start_ns: u64,
    pub end_ns: u64,
    pub tcp: TcpState,
    pub verdict: FlowVerdict,
    pub rule: u32,
    /// The policy version the event was taken under (names its rule); set by the queue.
    pub policy_version: u64,
    /// The packet's number in the capture being replayed (0 on the live path).
    pub pcap_cnt: u64,
}

impl EventRecord {
    pub fn from_flow(f: &Flow, kind: EventKind, ts_ns: u64, v4: bool) -> Self {
        let ((src, src_port), (dst, dst_port)) = f.endpoints();
        EventRecord {
            ts_ns,
            kind,
            flow_id: f.id,
            side: f.initiator_side,
            v4,
            src,
            src_port,
            dst,
            dst_port,
            proto: f.key.proto,
            vlan: f.key.vlan,
            pkts: f.pkts,
            bytes: f.bytes,
            start_ns: f.first_seen_ns,
            end_ns: f.last_seen_ns,
            tcp: f.tcp,
            verdict: f.verdict,
            rule: f.rule,
            policy_version: 0,
            pcap_cnt: 0,
        }
    }
}

impl EventRecord {
    /// An event about one packet (no flow counters).
    pub fn from_packet(
        m: &crate::PacketMeta,
        side: Side,
        flow_id: u64,
        kind: EventKind,
        ts_ns: u64,
    ) -> Self {
        EventRecord {
            ts_ns,
            kind,
            flow_id,
            side,
            v4: m.is_v4(),
            src: m.src,
            src_port: m.src_port,
            dst: m.dst,
            dst_port: m.dst_port,
            proto: m.proto,
            vlan: m.vlan_key(),
            pkts: [0; 2],
            bytes: [0; 2],
            start_ns: ts_ns,
            end_ns: ts_ns,
            tcp: TcpState::None,
            verdict: FlowVerdict::Allow,
            rule: 0,
            policy_version: 0,
            pcap_cnt: 0,
        }
    }

    pub fn quarantine(q: crate::web::Quarantined, ts_ns: u64) -> Self {
        let v4 = q.ip >> 32 == crate::packet::V4_MAPPED >> 32;
        EventRecord {
            ts_ns,
            kind: EventKind::Quarantine(q),
            flow_id: 0,
            side: Side::Lan,
            v4,
            src: q.ip,
            src_port: 0,
            dst: 0,
            dst_port: 0,
            proto: 0,
            vlan: 0,
            pkts: [0; 2],
            bytes: [0; 2],
            start_ns: ts_ns,
            end_ns: ts_ns,
            tcp: TcpState::None,
            verdict: FlowVerdict::Deny,
            rule: 0,
            policy_version: 0,
            pcap_cnt: 0,
        }
    }
}

/// Names the web filter's numbers in events: category, source list, host group.
pub trait WebNames {
    fn category(&self, c: u16) -> String;
    fn source(&self, s: u16) -> String;
    fn group(&self, g: u16) -> String;
}

impl WebNames for crate::web::WebRules {
    fn category(&self, c: u16) -> String {
        self.category_name(c).to_string()
    }
    fn source(&self, s: u16) -> String {
        self.source_name(s).to_string()
    }
    fn group(&self, g: u16) -> String {
        self.group_name(g).to_string()
    }
}

/// A bounded queue: when the exporter falls behind, new records are dropped and counted.
pub struct EventQueue {
    buf: VecDeque<EventRecord>,
    cap: usize,
    pub dropped: u64,
    /// Written into every record pushed: the running policy version.
    pub policy_version: u64,
}

impl EventQueue {
    pub fn new(cap: usize) -> Self {
        Self {
            buf: VecDeque::with_capacity(cap),
            cap,
            dropped: 0,
            policy_version: 0,
        }
    }
    #[inline]
    pub fn push(&mut self, mut r: EventRecord) {
        if self.buf.len() >= self.cap {
            self.dropped += 1;
        } else {
            r.policy_version = self.policy_version;
            self.buf.push_back(r);
        }
    }
    pub fn len(&self) -> usize {
        self.buf.len()
    }
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
    pub fn drain(&mut self) -> impl Iterator<Item = EventRecord> + '_ {
        self.buf.drain(..)
    }
}

/// One EVE JSON line.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct Eve {
    pub timestamp: String,
    pub flow_id: u64,
    pub in_iface: String,
    pub event_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vlan: Option<Vec<u16>>,
    pub src_ip: IpAddr,
    pub src_port: u16,
    pub dest_ip: IpAddr,
    pub dest_port: u16,
    pub proto: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pcap_cnt: Option<u64>,
    /// Where the packet came from (`wire/pcap`, `ipv4 defrag`, …), on alerts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pkt_src: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tx_id: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert: Option<EveAlert>,
    /// The flow's application protocol, on alerts (when it is known).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_proto: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<EveVerdict>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow: Option<EveFlow>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub web: Option<EveWeb>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<EveHost>,
}

/// What became of the packet an alert is about (`alert`, `drop`).
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct EveVerdict {
    pub action: &'static str,
}

/// A web filter event (mimamori's own event type `web`).
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct EveWeb {
    /// blocked, sinkholed, monitored or quarantined.
    pub action: &'static str,
    /// Where the name was read: dns, tls-sni, quic-sni, http-host, dns-answer, address.
    pub via: &'static str,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// The list that put the name in its category.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub list: Option<String>,
    pub exception: bool,
    pub threat: bool,
    pub group: String,
    pub src_mac: String,
    /// The name is the outer one of a ClientHello with encrypted_client_hello.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub ech: bool,
}

/// A host event (quarantine).
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct EveHost {
    pub state: &'static str,
    pub mac: String,
    pub hostname: String,
    pub client_id: String,
    pub callbacks: u32,
}

#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct EveAlert {
    /// `allowed` or `blocked`, as Suricata writes it.
    pub action: &'static str,
    pub gid: u32,
    pub signature_id: u32,
    pub rev: u32,
    pub signature: String,
    pub category: String,
    pub severity: u8,
}

#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct EveFlow {
    pub pkts_toserver: u64,
    pub pkts_toclient: u64,
    pub bytes_toserver: u64,
    pub bytes_toclient: u64,
    pub start: String,
    /// The flow so far ends here: the fields of a flow's end, absent on alerts.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub ended: Option<EveFlowEnd>,
}

/// What a flow event adds to an alert's `flow`.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct EveFlowEnd {
    pub end: String,
    pub age: u64,
    pub state: &'static str,
    pub reason: &'static str,
    pub alerted: bool,
    /// The firewall's cached decision for the flow (mimamori extension).
    pub action: &'static str,
}

pub fn proto_name(p: u8) -> String {
    match p {
        ip_proto::TCP => "TCP".into(),
        ip_proto::UDP => "UDP".into(),
        ip_proto::ICMP => "ICMP".into(),
        ip_proto::ICMPV6 => "IPv6-ICMP".into(),
        n => format!("{n:03}"),
    }
}

fn verdict_name(v: FlowVerdict) -> &'static str {
    match v {
        FlowVerdict::Allow => "allowed",
        FlowVerdict::Deny | FlowVerdict::Reject => "blocked",
    }
}

impl EventRecord {
    /// The EVE form. `rule_name` looks up a firewall rule's name by index.
    pub fn to_eve(
        &self,
        iface: impl Fn(Side) -> String,
        rule_name: impl Fn(u32) -> Option<String>,
        web: Option<&dyn WebNames>,
    ) -> Eve {
        let vlan = match (self.vlan >> 12, self.vlan & 0xfff) {
            (0, 0) => None,
            (o, 0) => Some(vec![o as u16]),
            (o, i) => Some(vec![o as u16, i as u16]),
        };
        let mut e = Eve {
            timestamp: eve_time(self.ts_ns),
            flow_id: self.flow_id,
            in_iface: iface(self.side),
            event_type: "flow",
            vlan,
            src_ip: to_ip(self.src, self.v4),
            src_port: self.src_port,
            dest_ip: to_ip(self.dst, self.v4),
            dest_port: self.dst_port,
            proto: proto_name(self.proto),
            pcap_cnt: (self.pcap_cnt > 0).then_some(self.pcap_cnt),
            pkt_src: None,
            tx_id: None,
            alert: None,
            app_proto: None,
            verdict: None,
            flow: None,
            web: None,
            host: None,
        };
        match self.kind {
            EventKind::Firewall { verdict, rule } => {
                e.event_type = "alert";
                let (sid, signature) = match rule_name(rule) {
                    Some(name) => (rule + 1, format!("firewall: {name}")),
                    None => (
                        DEFAULT_RULE_SID,
                        format!(
                            "firewall: default {} from {}",
                            if verdict == FlowVerdict::Allow {
                                "allow"
                            } else {
                                "deny"
                            },
                            self.side.name()
                        ),
                    ),
                };
                e.alert = Some(EveAlert {
                    action: verdict_name(verdict),
                    gid: FIREWALL_GID,
                    signature_id: sid,
                    rev: 1,
                    signature,
                    category: "Firewall policy".into(),
                    severity: if verdict == FlowVerdict::Allow { 3 } else { 2 },
                });
            }
            EventKind::Web(h) => {
                e.event_type = "web";
                let known = h.category != crate::web::NO_CATEGORY;
                e.web = Some(EveWeb {
                    action: h.outcome.name(),
                    via: h.via.name(),
                    name: h.name.as_str().to_string(),
                    category: web.filter(|_| known).map(|w| w.category(h.category)),
                    list: web.filter(|_| known).map(|w| w.source(h.source)),
                    exception: h.exception,
                    threat: h.threat,
                    group: web.map_or_else(|| h.group.to_string(), |w| w.group(h.group)),
                    src_mac: h.mac.to_string(),
                    ech: h.ech,
                });
            }
            EventKind::Signature {
                blocked,
                defrag,
                app_proto,
                tx_id,
                ..
            } => {
                e.event_type = "alert";
                e.app_proto = app_proto.rule_name();
                e.tx_id = tx_id;
                // The flow so far, with this packet (Suricata's alert `flow`).
                if self.flow_id != 0 {
                    e.flow = Some(EveFlow {
                        pkts_toserver: self.pkts[0],
                        pkts_toclient: self.pkts[1],
                        bytes_toserver: self.bytes[0],
                        bytes_toclient: self.bytes[1],
                        start: eve_time(self.start_ns),
                        ended: None,
                    });
                }
                e.pkt_src = Some(match (defrag, self.v4) {
                    (false, _) => "wire/pcap",
                    (true, true) => "ipv4 defrag",
                    (true, false) => "ipv6 defrag",
                });
                e.verdict = Some(EveVerdict {
                    action: if blocked { "drop" } else { "alert" },
                });
                e.alert = Some(EveAlert {
                    action: if blocked { "blocked" } else { "allowed" },
                    gid: 1,
                    signature_id: 0,
                    rev: 0,
                    signature: String::new(),
                    category: String::new(),
                    severity: 3,
                });
            }
            EventKind::Quarantine(q) => {
                e.event_type = "host";
                e.host = Some(EveHost {
                    state: "quarantined",
                    mac: q.mac.to_string(),
                    hostname: q.hostname.as_str().to_string(),
                    client_id: q.client_id.as_str().to_string(),
                    callbacks: q.callbacks,
                });
            }
            EventKind::FlowEnd { reason } => {
                e.flow = Some(EveFlow {
                    pkts_toserver: self.pkts[0],
                    pkts_toclient: self.pkts[1],
                    bytes_toserver: self.bytes[0],
                    bytes_toclient: self.bytes[1],
                    start: eve_time(self.start_ns),
                    ended: Some(EveFlowEnd {
                        end: eve_time(self.end_ns),
                        age: (self.end_ns.saturating_sub(self.start_ns)) / 1_000_000_000,
                        state: match self.tcp {
                            TcpState::None => {
                                if reason == EndReason::Timeout {
                                    "closed"
                                } else {
                                    "established"
                                }
                            }
                            TcpState::SynSent | TcpState::SynRecv => "new",
                            TcpState::Established => "established",
                            _ => "closed",
                        },
                        reason: reason.name(),
                        alerted: false,
                        action: match self.verdict {
                            FlowVerdict::Allow => "allow",
                            FlowVerdict::Deny => "deny",
                            FlowVerdict::Reject => "reject",
                        },
                    }),
                });
            }
        }
        e
    }
}

/// `2026-11-26T16:12:49.123456+0000`, the timestamp form EVE uses, in UTC.
pub fn eve_time(ns: u64) -> String {
    let secs = ns / 1_000_000_000;
    let micros = (ns % 1_000_000_000) / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}+0000",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's method).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eve_timestamps() {
        assert_eq!(eve_time(0), "1970-01-01T00:00:00.000000+0000");
        // 2026-11-26T16:12:49.5Z
        assert_eq!(
            eve_time(1_795_709_569_500_000_000),
            "2026-11-26T16:12:49.500000+0000"
        );
        assert_eq!(
            eve_time(951_782_400_000_000_000),
            "2000-02-29T00:00:00.000000+0000"
        );
    }

    #[test]
    fn queue_is_bounded_and_counts_drops() {
        let mut q = EventQueue::new(2);
        let f = Flow::default();
        for _ in 0..5 {
            q.push(EventRecord::from_flow(
                &f,
                EventKind::FlowEnd {
                    reason: EndReason::Timeout,
                },
                0,
                true,
            ));
        }
        assert_eq!((q.len(), q.dropped), (2, 3));
    }
}

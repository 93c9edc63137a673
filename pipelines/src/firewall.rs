//! The stateful zone firewall: ordered rules over zone, addresses, ports, protocol and ICMP
//! type, evaluated once when a flow is created. Replies ride on the flow's cached verdict.

use crate::flow::{FlowVerdict, NO_RULE, Side};
use crate::packet::PacketMeta;
use crate::wire::ip_proto;
use serde::{Deserialize, Serialize};

/// An IPv4 or IPv6 prefix in the crate's `u128` address form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    pub net: u128,
    pub mask: u128,
}

impl Cidr {
    #[inline]
    pub fn contains(&self, addr: u128) -> bool {
        addr & self.mask == self.net
    }
}

impl std::str::FromStr for Cidr {
    type Err = String;
    /// `a.b.c.d[/n]` or `x:…[/n]`; a bare address is a host route.
    fn from_str(s: &str) -> Result<Cidr, String> {
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let ip: std::net::IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("{addr:?} is not an IP address"))?;
        let (bits, max, base) = match ip {
            std::net::IpAddr::V4(_) => (crate::packet::ip_bits(ip), 32u32, 96u32),
            std::net::IpAddr::V6(_) => (crate::packet::ip_bits(ip), 128, 0),
        };
        let len = match len {
            Some(l) => l
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|&n| n <= max)
                .ok_or_else(|| format!("prefix length {l:?} is not a number from 0 to {max}"))?,
            None => max,
        };
        let total = base + len;
        let mask = if total == 0 {
            0
        } else {
            u128::MAX << (128 - total)
        };
        if bits & !mask != 0 {
            return Err(format!(
                "{s:?} has host bits set (did you mean {}/{len}?)",
                crate::packet::to_ip(bits & mask, max == 32)
            ));
        }
        Ok(Cidr {
            net: bits & mask,
            mask,
        })
    }
}

/// A list of prefixes; empty matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CidrSet(pub Vec<Cidr>);

impl CidrSet {
    #[inline]
    pub fn matches(&self, addr: u128) -> bool {
        self.0.is_empty() || self.0.iter().any(|c| c.contains(addr))
    }
}

/// Inclusive port ranges; empty matches every port.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PortSet(pub Vec<(u16, u16)>);

impl PortSet {
    #[inline]
    pub fn matches(&self, port: u16) -> bool {
        self.0.is_empty() || self.0.iter().any(|&(lo, hi)| (lo..=hi).contains(&port))
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Zone {
    Lan,
    Wan,
    #[default]
    Any,
}

impl Zone {
    fn admits(self, side: Side) -> bool {
        match self {
            Zone::Any => true,
            Zone::Lan => side == Side::Lan,
            Zone::Wan => side == Side::Wan,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Allow,
    /// Drop silently.
    Deny,
    /// Drop and answer with a TCP RST or an ICMP unreachable.
    Reject,
}

impl Action {
    pub fn verdict(self) -> FlowVerdict {
        match self {
            Action::Allow => FlowVerdict::Allow,
            Action::Deny => FlowVerdict::Deny,
            Action::Reject => FlowVerdict::Reject,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub name: String,
    /// The zone the flow's first packet arrives from.
    pub from: Zone,
    pub src: CidrSet,
    pub dst: CidrSet,
    /// IP protocol number; `None` for any.
    pub proto: Option<u8>,
    pub src_ports: PortSet,
    pub dst_ports: PortSet,
    pub icmp_type: Option<u8>,
    pub action: Action,
    pub log: bool,
}

impl Rule {
    #[inline]
    fn matches(&self, side: Side, m: &PacketMeta) -> bool {
        if !self.from.admits(side) || !self.src.matches(m.src) || !self.dst.matches(m.dst) {
            return false;
        }
        if let Some(p) = self.proto
            && p != m.proto
        {
            return false;
        }
        match m.proto {
            ip_proto::TCP | ip_proto::UDP => {
                self.src_ports.matches(m.src_port) && self.dst_ports.matches(m.dst_port)
            }
            ip_proto::ICMP | ip_proto::ICMPV6 => self.icmp_type.is_none_or(|t| t == m.icmp_type),
            _ => self.src_ports.0.is_empty() && self.dst_ports.0.is_empty(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    pub verdict: FlowVerdict,
    /// Index into [`Firewall::rules`], or [`NO_RULE`] for the zone default.
    pub rule: u32,
    pub log: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Firewall {
    /// User rules in order, then built-in ones (named `builtin:…`).
    pub rules: Vec<Rule>,
    pub default_lan_to_wan: Action,
    pub default_wan_to_lan: Action,
    pub log_defaults: bool,
}

impl Firewall {
    /// First matching rule wins; otherwise the default of the zone the flow came from.
    pub fn decide(&self, side: Side, m: &PacketMeta) -> Decision {
        for (i, r) in self.rules.iter().enumerate() {
            if r.matches(side, m) {
                return Decision {
                    verdict: r.action.verdict(),
                    rule: i as u32,
                    log: r.log,
                };
            }
        }
        let action = match side {
            Side::Lan => self.default_lan_to_wan,
            Side::Wan => self.default_wan_to_lan,
        };
        Decision {
            verdict: action.verdict(),
            rule: NO_RULE,
            log: self.log_defaults && action != Action::Allow,
        }
    }

    /// Rules a WAN router needs to reach LAN hosts that the default would block: DHCP
    /// and DHCPv6 replies (the box sits between the router and the LAN).
    pub fn builtin_rules() -> Vec<Rule> {
        let udp = |name: &str, sp: u16, dp: u16| Rule {
            name: name.to_string(),
            from: Zone::Wan,
            src: CidrSet::default(),
            dst: CidrSet::default(),
            proto: Some(ip_proto::UDP),
            src_ports: PortSet(vec![(sp, sp)]),
            dst_ports: PortSet(vec![(dp, dp)]),
            icmp_type: None,
            action: Action::Allow,
            log: false,
        };
        vec![
            udp("builtin: dhcp replies", 67, 68),
            udp("builtin: dhcpv6 replies", 547, 546),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_parses_and_matches_both_families() {
        let c: Cidr = "198.18.0.0/15".parse().unwrap();
        assert!(c.contains(crate::packet::v4_bits([198, 19, 255, 1])));
        assert!(!c.contains(crate::packet::v4_bits([198, 20, 0, 1])));
        let c6: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(c6.contains(crate::packet::ip_bits("2001:db8:1::5".parse().unwrap())));
        assert!(!c6.contains(crate::packet::v4_bits([198, 19, 255, 1])));
        let any4: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(any4.contains(crate::packet::v4_bits([8, 8, 8, 8])));
        assert!(
            !any4.contains(crate::packet::ip_bits("2001:db8::1".parse().unwrap())),
            "v4 /0 is not v6"
        );
    }

    #[test]
    fn cidr_errors_explain() {
        assert!(
            "10.0.0.0/33"
                .parse::<Cidr>()
                .unwrap_err()
                .contains("prefix length")
        );
        assert!(
            "10.0.0.1/8"
                .parse::<Cidr>()
                .unwrap_err()
                .contains("host bits")
        );
        assert!(
            "10.0.0/8"
                .parse::<Cidr>()
                .unwrap_err()
                .contains("not an IP")
        );
    }
}

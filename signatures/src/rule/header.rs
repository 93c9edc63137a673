//! The rule header: protocol, addresses, ports, direction; and the variables they use.

use super::{RuleError, malformed, unsupported};
use std::collections::HashMap;
use std::net::IpAddr;

/// Address and port variables (`$HOME_NET`, `$HTTP_PORTS`…).
#[derive(Clone, Debug)]
pub struct Vars {
    pub addr: HashMap<String, String>,
    pub port: HashMap<String, String>,
}

impl Default for Vars {
    /// The values a stock suricata.yaml gives, with the box's LAN as HOME_NET.
    fn default() -> Self {
        let home = "[192.168.0.0/16,10.0.0.0/8,172.16.0.0/12]";
        let mut addr: HashMap<String, String> = HashMap::new();
        addr.insert("HOME_NET".into(), home.into());
        addr.insert("EXTERNAL_NET".into(), "!$HOME_NET".into());
        for v in [
            "HTTP_SERVERS",
            "SMTP_SERVERS",
            "SQL_SERVERS",
            "DNS_SERVERS",
            "TELNET_SERVERS",
            "AIM_SERVERS",
            "DC_SERVERS",
            "DNP3_SERVER",
            "DNP3_CLIENT",
            "MODBUS_CLIENT",
            "MODBUS_SERVER",
            "ENIP_CLIENT",
            "ENIP_SERVER",
        ] {
            addr.insert(v.into(), "$HOME_NET".into());
        }
        let mut port: HashMap<String, String> = HashMap::new();
        for (k, v) in [
            ("HTTP_PORTS", "80"),
            ("SHELLCODE_PORTS", "!80"),
            ("ORACLE_PORTS", "1521"),
            ("SSH_PORTS", "22"),
            ("DNP3_PORTS", "20000"),
            ("MODBUS_PORTS", "502"),
            ("FILE_DATA_PORTS", "[$HTTP_PORTS,110,143]"),
            ("FTP_PORTS", "21"),
            ("GENEVE_PORTS", "6081"),
            ("VXLAN_PORTS", "4789"),
            ("TEREDO_PORTS", "3544"),
        ] {
            port.insert(k.into(), v.into());
        }
        Vars { addr, port }
    }
}

/// A prefix in `u128` form (IPv4 mapped into ::ffff:0:0/96).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Net {
    pub addr: u128,
    pub prefix: u8,
}

impl Net {
    pub fn contains(&self, a: u128) -> bool {
        let mask = if self.prefix == 0 {
            0
        } else {
            u128::MAX << (128 - u32::from(self.prefix))
        };
        a & mask == self.addr & mask
    }
}

/// Addresses a rule side matches: `any`, or the included nets minus the excluded ones.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AddrSpec {
    pub any: bool,
    pub include: Vec<Net>,
    pub exclude: Vec<Net>,
}

impl AddrSpec {
    pub fn matches(&self, a: u128) -> bool {
        (self.any || self.include.iter().any(|n| n.contains(a)))
            && !self.exclude.iter().any(|n| n.contains(a))
    }
}

/// Ports a rule side matches.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PortSpec {
    pub any: bool,
    pub include: Vec<(u16, u16)>,
    pub exclude: Vec<(u16, u16)>,
}

impl PortSpec {
    pub fn matches(&self, p: u16) -> bool {
        (self.any || self.include.iter().any(|&(a, b)| (a..=b).contains(&p)))
            && !self.exclude.iter().any(|&(a, b)| (a..=b).contains(&p))
    }
}

/// The transport a rule applies to, and the application protocol when it names one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Ip,
    Tcp,
    Udp,
    Icmp,
    Icmpv6,
    /// An application protocol over TCP and/or UDP, recognised by content.
    App(&'static str),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Header {
    pub proto: Proto,
    pub src: AddrSpec,
    pub src_ports: PortSpec,
    pub dst: AddrSpec,
    pub dst_ports: PortSpec,
    /// `<>`: either direction.
    pub bidirectional: bool,
}

const APP_PROTOS: &[&str] = &[
    "http", "http1", "tls", "dns", "smtp", "ftp", "ftp-data", "ssh", "imap", "pop3", "smb", "quic",
    "dhcp", "snmp", "sip", "ntp", "tftp", "krb5", "dcerpc", "rdp", "ssl",
];

/// Splits header words, keeping `[...]` groups (which may contain spaces) whole.
fn words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut depth = 0i32;
    for c in s.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            _ => {}
        }
        if c.is_whitespace() && depth <= 0 {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
        } else if !c.is_whitespace() {
            cur.push(c);
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

pub fn parse(s: &str, vars: &Vars) -> Result<Header, RuleError> {
    let w = words(s);
    if w.len() != 6 {
        return malformed(format!(
            "header needs 'proto src sport -> dst dport', got {} fields",
            w.len()
        ));
    }
    let proto = match w[0].to_ascii_lowercase().as_str() {
        "ip" | "pkthdr" => Proto::Ip,
        "tcp" | "tcp-pkt" | "tcp-stream" => Proto::Tcp,
        "udp" => Proto::Udp,
        "icmp" | "icmpv4" => Proto::Icmp,
        "icmpv6" => Proto::Icmpv6,
        p => match APP_PROTOS.iter().find(|&&a| a == p) {
            Some(&a) => Proto::App(if a == "ssl" {
                "tls"
            } else if a == "http1" {
                "http"
            } else {
                a
            }),
            None => return unsupported(format!("protocol {p}")),
        },
    };
    let bidirectional = match w[3].as_str() {
        "->" => false,
        "<>" => true,
        "<-" => {
            return malformed("direction '<-' does not exist; write the rule the other way round");
        }
        d => return malformed(format!("direction {d:?} is not -> or <>")),
    };
    Ok(Header {
        proto,
        src: addr_spec(&w[1], vars, 0)?,
        src_ports: port_spec(&w[2], vars, 0)?,
        dst: addr_spec(&w[4], vars, 0)?,
        dst_ports: port_spec(&w[5], vars, 0)?,
        bidirectional,
    })
}

/// Splits a group's inside at top-level commas.
fn split_group(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in s.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            ',' if depth == 0 => {
                out.push(s[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(s[start..].trim());
    out.into_iter().filter(|x| !x.is_empty()).collect()
}

const MAX_DEPTH: usize = 16;

pub(crate) fn addr_spec(s: &str, vars: &Vars, depth: usize) -> Result<AddrSpec, RuleError> {
    if depth > MAX_DEPTH {
        return malformed("address variables nest too deep (a loop?)");
    }
    let s = s.trim();
    if let Some(rest) = s.strip_prefix('!') {
        let inner = addr_spec(rest, vars, depth + 1)?;
        if inner.any && inner.exclude.is_empty() {
            return malformed("'!any' matches nothing");
        }
        // !(any - E) = E ; !(I - E) = (any - I) ∪ E, which we keep as any - I when E is empty.
        if inner.any {
            return Ok(AddrSpec {
                any: false,
                include: inner.exclude,
                exclude: vec![],
            });
        }
        if !inner.exclude.is_empty() {
            return unsupported("negation of a group that itself has exclusions");
        }
        return Ok(AddrSpec {
            any: true,
            include: vec![],
            exclude: inner.include,
        });
    }
    if s.eq_ignore_ascii_case("any") {
        return Ok(AddrSpec {
            any: true,
            ..AddrSpec::default()
        });
    }
    if let Some(name) = s.strip_prefix('$') {
        let v = vars.addr.get(name).ok_or_else(|| {
            RuleError::Unsupported(format!("address variable ${name} is not defined"))
        })?;
        return addr_spec(v, vars, depth + 1);
    }
    if let Some(inner) = s.strip_prefix('[').and_then(|x| x.strip_suffix(']')) {
        let mut out = AddrSpec::default();
        for part in split_group(inner) {
            let p = addr_spec(part, vars, depth + 1)?;
            if p.any && p.include.is_empty() {
                out.any = true;
            }
            out.include.extend(p.include);
            out.exclude.extend(p.exclude);
        }
        if out.include.is_empty() && !out.exclude.is_empty() {
            out.any = true; // a group of only exclusions means "anything but"
        }
        return Ok(out);
    }
    Ok(AddrSpec {
        any: false,
        include: vec![net(s)?],
        exclude: vec![],
    })
}

fn net(s: &str) -> Result<Net, RuleError> {
    let (a, len) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s, None),
    };
    let ip: IpAddr = a.parse().map_err(|_| {
        RuleError::Malformed(format!("{s:?} is not an address, CIDR, variable or group"))
    })?;
    let (bits, max, base) = match ip {
        IpAddr::V4(v) => (0xffff_0000_0000u128 | u128::from(u32::from(v)), 32u8, 96u8),
        IpAddr::V6(v) => (u128::from(v), 128, 0),
    };
    let len = match len {
        None => max,
        Some(l) => {
            if let Ok(n) = l.parse::<u8>() {
                if n > max {
                    return malformed(format!("prefix /{n} is longer than {max}"));
                }
                n
            } else if let (IpAddr::V4(_), Ok(mask)) = (ip, l.parse::<std::net::Ipv4Addr>()) {
                u32::from(mask).leading_ones() as u8 // dotted netmask
            } else {
                return malformed(format!("bad prefix length in {s:?}"));
            }
        }
    };
    Ok(Net {
        addr: bits,
        prefix: base + len,
    })
}

fn port_spec(s: &str, vars: &Vars, depth: usize) -> Result<PortSpec, RuleError> {
    if depth > MAX_DEPTH {
        return malformed("port variables nest too deep (a loop?)");
    }
    let s = s.trim();
    if let Some(rest) = s.strip_prefix('!') {
        let inner = port_spec(rest, vars, depth + 1)?;
        if inner.any {
            return malformed("'!any' port matches nothing");
        }
        return Ok(PortSpec {
            any: true,
            include: vec![],
            exclude: inner.include,
        });
    }
    if s.eq_ignore_ascii_case("any") {
        return Ok(PortSpec {
            any: true,
            ..PortSpec::default()
        });
    }
    if let Some(name) = s.strip_prefix('$') {
        let v = vars.port.get(name).ok_or_else(|| {
            RuleError::Unsupported(format!("port variable ${name} is not defined"))
        })?;
        return port_spec(v, vars, depth + 1);
    }
    if let Some(inner) = s.strip_prefix('[').and_then(|x| x.strip_suffix(']')) {
        let mut out = PortSpec::default();
        for part in split_group(inner) {
            let p = port_spec(part, vars, depth + 1)?;
            out.any |= p.any && p.include.is_empty() && p.exclude.is_empty();
            out.include.extend(p.include);
            out.exclude.extend(p.exclude);
        }
        if out.include.is_empty() && !out.exclude.is_empty() {
            out.any = true;
        }
        return Ok(out);
    }
    let num = |t: &str| {
        t.trim()
            .parse::<u16>()
            .map_err(|_| RuleError::Malformed(format!("port {t:?} is not 0-65535")))
    };
    let range = match s.split_once(':') {
        Some((a, b)) => {
            let lo = if a.is_empty() { 0 } else { num(a)? };
            let hi = if b.is_empty() { 65535 } else { num(b)? };
            if lo > hi {
                return malformed(format!("port range {s:?} runs backwards"));
            }
            (lo, hi)
        }
        None => {
            let p = num(s)?;
            (p, p)
        }
    };
    Ok(PortSpec {
        any: false,
        include: vec![range],
        exclude: vec![],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(a: [u8; 4]) -> u128 {
        0xffff_0000_0000u128 | u128::from(u32::from_be_bytes(a))
    }

    #[test]
    fn variables_groups_and_negation() {
        let h = parse(
            "tcp $HOME_NET any -> $EXTERNAL_NET [80,443,8000:8100,!8080]",
            &Vars::default(),
        )
        .unwrap();
        assert!(h.src.matches(v4([10, 1, 2, 3])));
        assert!(!h.src.matches(v4([8, 8, 8, 8])));
        assert!(h.dst.matches(v4([8, 8, 8, 8])));
        assert!(!h.dst.matches(v4([192, 168, 1, 1])));
        assert!(
            h.dst_ports.matches(8050)
                && h.dst_ports.matches(443)
                && !h.dst_ports.matches(8080)
                && !h.dst_ports.matches(22)
        );
        assert!(h.src_ports.matches(1));
    }

    #[test]
    fn errors_say_what() {
        let v = Vars::default();
        assert!(
            matches!(parse("tcp $NOPE any -> any any", &v), Err(RuleError::Unsupported(m)) if m.contains("$NOPE"))
        );
        assert!(matches!(
            parse("tcp any any <- any any", &v),
            Err(RuleError::Malformed(_))
        ));
        assert!(
            matches!(parse("tcp 10.0.0.0/33 any -> any any", &v), Err(RuleError::Malformed(m)) if m.contains("/33"))
        );
        assert!(
            matches!(parse("tcp any 90:80 -> any any", &v), Err(RuleError::Malformed(m)) if m.contains("backwards"))
        );
        assert!(
            matches!(parse("foo any any -> any any", &v), Err(RuleError::Unsupported(m)) if m.contains("protocol foo"))
        );
        let mut lp = Vars::default();
        lp.addr.insert("A".into(), "$B".into());
        lp.addr.insert("B".into(), "$A".into());
        assert!(
            matches!(parse("ip $A any -> any any", &lp), Err(RuleError::Malformed(m)) if m.contains("loop"))
        );
    }
}

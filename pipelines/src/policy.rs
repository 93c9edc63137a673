//! The policy file (TOML): which side is the LAN, firewall rules, flow table and fragment
//! limits, event output. Every error names the file, the line and the field.

use crate::firewall::{Action, Cidr, CidrSet, Firewall, PortSet, Rule, Zone};
use crate::flow::{OnFull, Timeouts};
use crate::wire::MacAddr;
use serde::Deserialize;
use std::fmt;
use toml::Spanned;

/// The policy the product runs with when none is given: LAN→WAN allowed, WAN→LAN only
/// as replies, the synthesizer's LAN prefixes as the LAN side.
pub const EMBEDDED_DEFAULT: &str = include_str!("../default-policy.toml");

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    pub file: String,
    pub line: usize,
    pub field: String,
    pub message: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {}: {}",
            self.file, self.line, self.field, self.message
        )
    }
}

impl std::error::Error for PolicyError {}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    sides: SidesFile,
    #[serde(default)]
    firewall: FirewallFile,
    #[serde(default)]
    flows: FlowConfig,
    #[serde(default)]
    fragments: FragmentConfig,
    #[serde(default)]
    events: EventConfig,
    #[serde(default)]
    web: crate::web::config::WebFile,
    #[serde(default)]
    ips: IpsConfig,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SidesFile {
    #[serde(default)]
    lan_subnets: Vec<Spanned<String>>,
    #[serde(default)]
    lan_macs: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FirewallFile {
    #[serde(default = "allow")]
    default_lan_to_wan: Action,
    #[serde(default = "deny")]
    default_wan_to_lan: Action,
    #[serde(default)]
    log_defaults: bool,
    #[serde(default = "yes")]
    allow_dhcp: bool,
    #[serde(default)]
    rule: Vec<RuleFile>,
}

impl Default for FirewallFile {
    fn default() -> Self {
        Self {
            default_lan_to_wan: Action::Allow,
            default_wan_to_lan: Action::Deny,
            log_defaults: false,
            allow_dhcp: true,
            rule: vec![],
        }
    }
}

fn allow() -> Action {
    Action::Allow
}
fn deny() -> Action {
    Action::Deny
}
fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    name: Spanned<String>,
    #[serde(default)]
    from: Zone,
    #[serde(default)]
    src: Vec<Spanned<String>>,
    #[serde(default)]
    dst: Vec<Spanned<String>>,
    #[serde(default)]
    proto: Option<Spanned<String>>,
    #[serde(default)]
    src_ports: Vec<Spanned<PortSpec>>,
    #[serde(default)]
    dst_ports: Vec<Spanned<PortSpec>>,
    #[serde(default)]
    icmp_type: Option<Spanned<i64>>,
    action: Action,
    #[serde(default)]
    log: bool,
}

#[derive(Deserialize, Clone)]
#[serde(untagged)]
enum PortSpec {
    Number(i64),
    Text(String),
}

/// Flow table settings.
#[derive(Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct FlowConfig {
    /// Most flows held at once (memory is reserved for all of them at start).
    pub capacity: usize,
    pub on_full: OnFull,
    /// Admit a TCP flow first seen mid-stream (after a restart or an eviction).
    pub tcp_loose_pickup: bool,
    /// With loose pickup, a mid-stream segment from the WAN of a connection the policy
    /// would have let the LAN open is picked up as the LAN's (a download that outlived a
    /// restart resumes at the server's next segment). It opens nothing a LAN host could
    /// not have opened itself.
    pub tcp_wan_pickup: bool,
    /// Drop TCP packets that do not fit the connection's state (counted either way).
    pub tcp_drop_invalid: bool,
    pub timeouts: Timeouts,
}

impl Default for FlowConfig {
    fn default() -> Self {
        Self {
            capacity: 262_144,
            on_full: OnFull::EvictOldest,
            tcp_loose_pickup: true,
            tcp_wan_pickup: true,
            tcp_drop_invalid: false,
            timeouts: Timeouts::default(),
        }
    }
}

/// Fragment tracking limits.
#[derive(Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct FragmentConfig {
    /// Datagrams in flight at once.
    pub capacity: usize,
    /// Seconds a datagram may take to arrive in full.
    pub timeout: u32,
}

impl Default for FragmentConfig {
    fn default() -> Self {
        Self {
            capacity: 4096,
            timeout: 30,
        }
    }
}

/// Which flow-end records to write.
#[derive(Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FlowEvents {
    /// Every flow (like Suricata's `flow` log).
    #[default]
    All,
    /// Only flows whose firewall decision was logged.
    Logged,
    None,
}

#[derive(Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct EventConfig {
    pub flow: FlowEvents,
    /// Records held between the data path and the exporter; beyond it, drops are counted.
    pub queue: usize,
}

impl Default for EventConfig {
    fn default() -> Self {
        Self {
            flow: FlowEvents::All,
            queue: 65_536,
        }
    }
}

/// How a packet seen on one wire (replay) is assigned to the LAN or the WAN side.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SideMap {
    pub lan_subnets: CidrSet,
    pub lan_macs: Vec<MacAddr>,
}

/// A checked, compiled policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    pub sides: SideMap,
    pub firewall: Firewall,
    pub flows: FlowConfig,
    pub fragments: FragmentConfig,
    pub events: EventConfig,
    pub web: crate::web::WebConfig,
    pub ips: IpsConfig,
}

/// IPS settings: read by every signature inspector (`run --rules`, `replay --rules`) and
/// taken again at each hot apply.
#[derive(Deserialize, serde::Serialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct IpsConfig {
    pub mode: IpsMode,
    /// Rules switched off by signature ID.
    pub disabled_sids: Vec<u32>,
    /// Rules switched off by classtype.
    pub disabled_classtypes: Vec<String>,
    /// Alert at most `count` times per `seconds` for a rule (per source).
    pub thresholds: Vec<IpsThreshold>,
    /// Bytes of one TCP message (a request, a response) held whole for its app-layer
    /// fields; a longer one slides (its packets are still all inspected). Default 1 MiB.
    pub stream_depth: usize,
    /// Bytes of an HTTP request body (`http.request_body`) inspected. Default 1 MiB
    /// (Suricata: 100 KiB).
    pub request_body_limit: usize,
    /// Bytes of a decoded HTTP response body (`file_data`, `http.response_body`)
    /// inspected. Default 1 MiB (Suricata: 100 KiB).
    pub response_body_limit: usize,
}

/// Largest stream depth and body limits accepted (memory stays bounded by the memcap).
pub const IPS_LIMIT_MAX: usize = 64 << 20;

impl Default for IpsConfig {
    fn default() -> Self {
        IpsConfig {
            mode: IpsMode::default(),
            disabled_sids: Vec::new(),
            disabled_classtypes: Vec::new(),
            thresholds: Vec::new(),
            stream_depth: crate::stream::DEFAULT_DEPTH,
            request_body_limit: 1 << 20,
            response_body_limit: 1 << 20,
        }
    }
}

#[derive(Deserialize, serde::Serialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum IpsMode {
    /// Alert only.
    #[default]
    Ids,
    /// Drop and reject as the rules say.
    Ips,
}

#[derive(Deserialize, serde::Serialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct IpsThreshold {
    pub sid: u32,
    pub count: u32,
    pub seconds: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Policy::from_toml("<embedded default>", EMBEDDED_DEFAULT)
            .unwrap_or_else(|e| unreachable!("embedded policy is checked by tests: {e}"))
    }
}

pub(crate) struct Ctx<'a> {
    file: &'a str,
    text: &'a str,
}

impl Ctx<'_> {
    pub(crate) fn line_of(&self, offset: usize) -> usize {
        self.text
            .get(..offset)
            .map_or(0, |t| t.matches('\n').count())
            + 1
    }
    pub(crate) fn err<T>(
        &self,
        span: std::ops::Range<usize>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Result<T, PolicyError> {
        Err(PolicyError {
            file: self.file.to_string(),
            line: self.line_of(span.start),
            field: field.into(),
            message: message.into(),
        })
    }
    pub(crate) fn cidrs(
        &self,
        field: &str,
        items: &[Spanned<String>],
    ) -> Result<CidrSet, PolicyError> {
        let mut out = Vec::with_capacity(items.len());
        for (i, s) in items.iter().enumerate() {
            match s.get_ref().parse::<Cidr>() {
                Ok(c) => out.push(c),
                Err(e) => return self.err(s.span(), format!("{field}[{i}]"), e),
            }
        }
        Ok(CidrSet(out))
    }
    fn ports(&self, field: &str, items: &[Spanned<PortSpec>]) -> Result<PortSet, PolicyError> {
        let mut out = Vec::with_capacity(items.len());
        for (i, s) in items.iter().enumerate() {
            let one = |t: &str| -> Option<u16> { t.trim().parse::<u16>().ok() };
            let range = match s.get_ref() {
                PortSpec::Number(n) => u16::try_from(*n).ok().map(|p| (p, p)),
                PortSpec::Text(t) => match t.split_once('-') {
                    Some((a, b)) => one(a).zip(one(b)).filter(|(a, b)| a <= b),
                    None => one(t).map(|p| (p, p)),
                },
            };
            match range {
                Some(r) => out.push(r),
                None => {
                    return self.err(
                        s.span(),
                        format!("{field}[{i}]"),
                        "expected a port 0-65535 or a range \"low-high\" with low <= high",
                    );
                }
            }
        }
        Ok(PortSet(out))
    }
}

fn proto_number(name: &str) -> Option<u8> {
    Some(match name.to_ascii_lowercase().as_str() {
        "tcp" => 6,
        "udp" => 17,
        "icmp" => 1,
        "icmpv6" | "ipv6-icmp" => 58,
        "gre" => 47,
        "esp" => 50,
        "ah" => 51,
        "sctp" => 132,
        other => return other.parse().ok(),
    })
}

/// The dotted name of the key whose value starts at `at` (its table header and the key
/// on that line: `flows.capacity`), for errors the TOML reader reports by value.
fn field_at(text: &str, at: usize) -> Option<String> {
    let before = text.get(..at)?;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = &text[line_start..];
    let line = &line[..line.find('\n').unwrap_or(line.len())];
    let (key, _) = line.split_once('=')?;
    let key = key.trim().trim_matches('"');
    if key.is_empty() || key.starts_with('[') {
        return None;
    }
    let table = before[..line_start].lines().rev().find_map(|l| {
        let l = l.trim();
        let inner = l.strip_prefix("[[").and_then(|r| r.strip_suffix("]]"));
        let inner = inner.or_else(|| l.strip_prefix('[').and_then(|r| r.strip_suffix(']')));
        inner.map(|t| t.trim().to_string())
    });
    Some(match table {
        Some(t) => format!("{t}.{key}"),
        None => key.to_string(),
    })
}

impl Policy {
    /// Reads and checks a policy file.
    pub fn load(path: &std::path::Path) -> Result<Policy, PolicyError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| PolicyError {
            file: file.clone(),
            line: 0,
            field: "-".into(),
            message: format!("cannot read: {e}"),
        })?;
        Policy::from_toml(&file, &text)
    }

    /// Parses and checks policy text; `file` is used in error messages.
    pub fn from_toml(file: &str, text: &str) -> Result<Policy, PolicyError> {
        let cx = Ctx { file, text };
        let raw: PolicyFile = toml::from_str(text).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            let field = field_at(text, span.start).unwrap_or_else(|| {
                text.get(span.clone())
                    .map(|s| s.trim().chars().take(40).collect::<String>())
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| "-".into())
            });
            PolicyError {
                file: file.to_string(),
                line: cx.line_of(span.start),
                field,
                message: e.message().to_string(),
            }
        })?;

        let lan_subnets = cx.cidrs("sides.lan_subnets", &raw.sides.lan_subnets)?;
        let mut lan_macs = Vec::new();
        for (i, s) in raw.sides.lan_macs.iter().enumerate() {
            match s.get_ref().parse::<MacAddr>() {
                Ok(m) => lan_macs.push(m),
                Err(e) => return cx.err(s.span(), format!("sides.lan_macs[{i}]"), e),
            }
        }

        let mut rules = Vec::with_capacity(raw.firewall.rule.len() + 2);
        for (i, r) in raw.firewall.rule.iter().enumerate() {
            let f = |name: &str| format!("firewall.rule[{i}].{name}");
            if r.name.get_ref().trim().is_empty() {
                return cx.err(r.name.span(), f("name"), "must not be empty");
            }
            let proto = match &r.proto {
                None => None,
                Some(p) if p.get_ref().eq_ignore_ascii_case("any") => None,
                Some(p) => match proto_number(p.get_ref()) {
                    Some(n) => Some(n),
                    None => return cx.err(
                        p.span(),
                        f("proto"),
                        format!(
                            "{:?} is not tcp, udp, icmp, icmpv6, any or a protocol number 0-255",
                            p.get_ref()
                        ),
                    ),
                },
            };
            let src_ports = cx.ports(&f("src_ports"), &r.src_ports)?;
            let dst_ports = cx.ports(&f("dst_ports"), &r.dst_ports)?;
            if (!src_ports.0.is_empty() || !dst_ports.0.is_empty())
                && !matches!(proto, Some(6) | Some(17))
            {
                let span = r
                    .dst_ports
                    .first()
                    .or(r.src_ports.first())
                    .map(|s| s.span())
                    .unwrap_or(0..0);
                return cx.err(
                    span,
                    f("dst_ports"),
                    "ports need proto = \"tcp\" or \"udp\"",
                );
            }
            let icmp_type = match &r.icmp_type {
                None => None,
                Some(t) => {
                    if !matches!(proto, Some(1) | Some(58)) {
                        return cx.err(
                            t.span(),
                            f("icmp_type"),
                            "icmp_type needs proto = \"icmp\" or \"icmpv6\"",
                        );
                    }
                    match u8::try_from(*t.get_ref()) {
                        Ok(v) => Some(v),
                        Err(_) => return cx.err(t.span(), f("icmp_type"), "expected 0-255"),
                    }
                }
            };
            rules.push(Rule {
                name: r.name.get_ref().clone(),
                from: r.from,
                src: cx.cidrs(&f("src"), &r.src)?,
                dst: cx.cidrs(&f("dst"), &r.dst)?,
                proto,
                src_ports,
                dst_ports,
                icmp_type,
                action: r.action,
                log: r.log,
            });
        }
        if raw.firewall.allow_dhcp {
            rules.extend(Firewall::builtin_rules());
        }
        let at_top = 0..0;
        if raw.flows.capacity == 0 || raw.flows.capacity > (1 << 27) {
            return cx.err(at_top, "flows.capacity", "must be from 1 to 134217728");
        }
        if raw.fragments.capacity == 0 || raw.fragments.capacity > (1 << 20) {
            return cx.err(0..0, "fragments.capacity", "must be from 1 to 1048576");
        }
        if raw.events.queue == 0 || raw.events.queue > (1 << 24) {
            return cx.err(0..0, "events.queue", "must be from 1 to 16777216");
        }
        Ok(Policy {
            sides: SideMap {
                lan_subnets,
                lan_macs,
            },
            firewall: Firewall {
                rules,
                default_lan_to_wan: raw.firewall.default_lan_to_wan,
                default_wan_to_lan: raw.firewall.default_wan_to_lan,
                log_defaults: raw.firewall.log_defaults,
            },
            flows: raw.flows,
            fragments: raw.fragments,
            events: raw.events,
            web: raw.web.check(&cx)?,
            ips: {
                if let Some(t) = raw
                    .ips
                    .thresholds
                    .iter()
                    .position(|t| t.count == 0 || t.seconds == 0)
                {
                    return cx.err(
                        0..0,
                        format!("ips.thresholds[{t}]"),
                        "count and seconds must be at least 1",
                    );
                }
                let i = &raw.ips;
                if !(crate::stream::MIN_DEPTH..=IPS_LIMIT_MAX).contains(&i.stream_depth) {
                    return cx.err(
                        0..0,
                        "ips.stream_depth",
                        format!(
                            "must be between {} and {IPS_LIMIT_MAX} bytes",
                            crate::stream::MIN_DEPTH
                        ),
                    );
                }
                for (name, v) in [
                    ("ips.request_body_limit", i.request_body_limit),
                    ("ips.response_body_limit", i.response_body_limit),
                ] {
                    if v > IPS_LIMIT_MAX {
                        return cx.err(0..0, name, format!("at most {IPS_LIMIT_MAX} bytes"));
                    }
                }
                raw.ips
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> PolicyError {
        Policy::from_toml("p.toml", text).unwrap_err()
    }

    #[test]
    fn a_type_error_names_the_field_not_the_value() {
        let e = err("[sides]\nlan_subnets = []\n\n[flows]\ncapacity = \"lots\"\n");
        assert_eq!((e.line, e.field.as_str()), (5, "flows.capacity"), "{e}");
        let e = err("[[firewall.rule]]\nname = \"x\"\naction = \"maybe\"\n");
        assert_eq!(e.field, "firewall.rule.action", "{e}");
        let e = err("[web]\nech = \"sometimes\"\n");
        assert_eq!(e.field, "web.ech", "{e}");
    }

    #[test]
    fn embedded_default_loads() {
        let p = Policy::default();
        assert_eq!(p.firewall.default_wan_to_lan, Action::Deny);
        assert!(!p.sides.lan_subnets.0.is_empty());
    }

    #[test]
    fn bad_cidr_names_line_and_field() {
        let e = err(
            "[firewall]\n\n[[firewall.rule]]\nname = \"x\"\naction = \"deny\"\ndst = [\"10.0.0.0/8\", \"10.0.0.0/33\"]\n",
        );
        assert_eq!(
            (e.file.as_str(), e.line, e.field.as_str()),
            ("p.toml", 6, "firewall.rule[0].dst[1]")
        );
        assert!(e.message.contains("prefix length"), "{e}");
    }

    #[test]
    fn unknown_field_is_refused_with_its_line() {
        let e = err("[flows]\ncapacity = 10\nkapacity = 5\n");
        assert_eq!(e.line, 3, "{e}");
        assert!(e.message.contains("unknown field"), "{e}");
        assert_eq!(e.field, "flows.kapacity");
    }

    #[test]
    fn bad_ports_and_protocols_are_explained() {
        let e = err(
            "[[firewall.rule]]\nname = \"x\"\naction = \"deny\"\nproto = \"tcp\"\ndst_ports = [\"90-80\"]\n",
        );
        assert_eq!(
            (e.line, e.field.as_str()),
            (5, "firewall.rule[0].dst_ports[0]")
        );
        let e = err("[[firewall.rule]]\nname = \"x\"\naction = \"deny\"\ndst_ports = [80]\n");
        assert!(e.message.contains("ports need proto"), "{e}");
        let e = err("[[firewall.rule]]\nname = \"x\"\naction = \"deny\"\nproto = \"tcpp\"\n");
        assert_eq!(e.field, "firewall.rule[0].proto");
        let e = err("[[firewall.rule]]\nname = \"x\"\naction = \"drop\"\n");
        assert_eq!(e.line, 3, "{e}");
    }

    #[test]
    fn bad_mac_and_limits() {
        let e = err("[sides]\nlan_macs = [\"02:00:00:00:00\"]\n");
        assert_eq!((e.line, e.field.as_str()), (2, "sides.lan_macs[0]"));
        assert_eq!(err("[flows]\ncapacity = 0\n").field, "flows.capacity");
    }
}

//! The policy snapshot the control plane hands to the gateway, typed.
//!
//! It is the serializable side of the gateway's policy-file schema
//! (`mimamori_pipelines::policy`): the sections and field names are the file's, so the
//! gateway reads a snapshot exactly as it reads a policy file, with the same checks and
//! the same errors naming line and field. It holds only what the control plane sets; the
//! file's other settings (flows, fragments, events, sinkhole …) keep their defaults.
//!
//! Words the compiler checks (actions, protocols, CIDRs, ports) stay text here: the
//! gateway's compiler is the one judge of them, and its errors name the field.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PolicySnapshot {
    #[serde(default)]
    pub sides: SidesSection,
    #[serde(default)]
    pub firewall: FirewallSection,
    #[serde(default)]
    pub web: WebSection,
    #[serde(default)]
    pub ips: IpsSection,
}

/// Why a snapshot could not be written as TOML.
#[derive(Debug, thiserror::Error)]
#[error("cannot write the policy snapshot: {0}")]
pub struct SnapshotError(#[from] toml::ser::Error);

impl PolicySnapshot {
    /// The snapshot as policy-file text.
    pub fn to_toml(&self) -> Result<String, SnapshotError> {
        Ok(toml::to_string(self)?)
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SidesSection {
    #[serde(default)]
    pub lan_subnets: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lan_macs: Vec<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FirewallSection {
    /// allow, deny or reject.
    pub default_lan_to_wan: String,
    pub default_wan_to_lan: String,
    pub log_defaults: bool,
    /// The built-in DHCP rules.
    pub allow_dhcp: bool,
    #[serde(default)]
    pub rule: Vec<RuleEntry>,
}

impl Default for FirewallSection {
    /// The gateway's own defaults for a file without `[firewall]`.
    fn default() -> Self {
        Self {
            default_lan_to_wan: "allow".into(),
            default_wan_to_lan: "deny".into(),
            log_defaults: false,
            allow_dhcp: true,
            rule: Vec::new(),
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RuleEntry {
    pub name: String,
    /// lan or wan.
    pub from: String,
    #[serde(default)]
    pub src: Vec<String>,
    #[serde(default)]
    pub dst: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proto: Option<String>,
    #[serde(default)]
    pub src_ports: Vec<PortSpec>,
    #[serde(default)]
    pub dst_ports: Vec<PortSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icmp_type: Option<i64>,
    pub action: String,
    #[serde(default)]
    pub log: bool,
}

/// A port as the policy file takes it: a number, or text ("8080", "1000-2000").
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(untagged)]
pub enum PortSpec {
    Number(i64),
    Text(String),
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct WebSection {
    /// Category → allow, monitor or block.
    #[serde(default)]
    pub categories: BTreeMap<String, String>,
    #[serde(default)]
    pub exception: Vec<ExceptionEntry>,
    #[serde(default)]
    pub group: Vec<GroupEntry>,
    #[serde(default)]
    pub quarantine: QuarantineSection,
    /// An ECH hello whose real name is hidden: allow, monitor or block.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ech: Option<String>,
    /// A first message read to no name: allow, monitor or block.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreadable: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ExceptionEntry {
    pub entry: String,
    /// allow or block.
    pub action: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct GroupEntry {
    pub name: String,
    #[serde(default)]
    pub subnets: Vec<String>,
    #[serde(default)]
    pub macs: Vec<String>,
    #[serde(default)]
    pub categories: BTreeMap<String, String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct QuarantineSection {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callbacks: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_secs: Option<i64>,
    #[serde(default)]
    pub allow: Vec<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct IpsSection {
    /// ids or ips.
    pub mode: String,
    #[serde(default)]
    pub disabled_sids: Vec<u32>,
    #[serde(default)]
    pub disabled_classtypes: Vec<String>,
    #[serde(default)]
    pub thresholds: Vec<IpsThresholdEntry>,
}

impl Default for IpsSection {
    fn default() -> Self {
        Self {
            mode: "ids".into(),
            disabled_sids: Vec::new(),
            disabled_classtypes: Vec::new(),
            thresholds: Vec::new(),
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct IpsThresholdEntry {
    pub sid: u32,
    pub count: u32,
    pub seconds: u32,
}

/// One step of a field path as the gateway's policy errors name it
/// (`firewall.rule[2].dst[1]` is `firewall`, `rule`, `2`, `dst`, `1`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FieldStep {
    Key(String),
    Index(usize),
}

/// A policy-file field path, parsed so a consumer maps sections without string surgery.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldPath(pub Vec<FieldStep>);

impl FieldPath {
    /// `None` for what is not a path (the compiler's `-` or a TOML excerpt).
    pub fn parse(text: &str) -> Option<FieldPath> {
        let mut steps = Vec::new();
        for part in text.split('.') {
            let (key, mut indexes) = match part.split_once('[') {
                Some((key, rest)) => (key, Some(rest)),
                None => (part, None),
            };
            // Keys are TOML bare words or category names; the compiler's `-` (no field) and
            // a TOML excerpt (blanks, `=`) are not paths.
            let starts_as_word = key.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_');
            if !starts_as_word
                || key
                    .chars()
                    .any(|c| c.is_whitespace() || "[]=\"".contains(c))
            {
                return None;
            }
            steps.push(FieldStep::Key(key.to_string()));
            // `rest` is `2]` or `2][3]`: indexes, each closed.
            while let Some(rest) = indexes {
                let (n, after) = rest.split_once(']')?;
                steps.push(FieldStep::Index(n.parse().ok()?));
                indexes = match after {
                    "" => None,
                    more => Some(more.strip_prefix('[')?),
                };
            }
        }
        Some(FieldPath(steps))
    }

    /// Whether the path begins with these keys.
    pub fn starts_with_keys(&self, keys: &[&str]) -> bool {
        keys.len() <= self.0.len()
            && keys
                .iter()
                .zip(&self.0)
                .all(|(k, step)| matches!(step, FieldStep::Key(s) if s == k))
    }

    /// The path with its first `n` steps replaced by `keys`.
    pub fn replace_prefix(&self, n: usize, keys: &[&str]) -> FieldPath {
        let head = keys.iter().map(|k| FieldStep::Key(k.to_string()));
        FieldPath(head.chain(self.0.iter().skip(n).cloned()).collect())
    }
}

impl std::fmt::Display for FieldPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, step) in self.0.iter().enumerate() {
            match step {
                FieldStep::Key(k) if i == 0 => write!(f, "{k}")?,
                FieldStep::Key(k) => write!(f, ".{k}")?,
                FieldStep::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mimamori_pipelines::Policy;

    fn full() -> PolicySnapshot {
        PolicySnapshot {
            sides: SidesSection {
                lan_subnets: vec!["10.0.0.0/8".into(), "2001:db8::/32".into()],
                lan_macs: vec!["02:00:00:00:00:01".into()],
            },
            firewall: FirewallSection {
                default_lan_to_wan: "allow".into(),
                default_wan_to_lan: "deny".into(),
                log_defaults: true,
                allow_dhcp: true,
                rule: vec![RuleEntry {
                    name: "no telnet".into(),
                    from: "lan".into(),
                    src: vec![],
                    dst: vec!["192.0.2.0/24".into()],
                    proto: Some("tcp".into()),
                    src_ports: vec![],
                    dst_ports: vec![PortSpec::Number(23), PortSpec::Text("2300-2399".into())],
                    icmp_type: None,
                    action: "reject".into(),
                    log: true,
                }],
            },
            web: WebSection {
                categories: [("adult".to_string(), "block".to_string())].into(),
                exception: vec![ExceptionEntry {
                    entry: "example.com".into(),
                    action: "allow".into(),
                }],
                group: vec![GroupEntry {
                    name: "kids".into(),
                    subnets: vec!["10.1.0.0/16".into()],
                    macs: vec![],
                    categories: [("gambling".to_string(), "block".to_string())].into(),
                }],
                quarantine: QuarantineSection {
                    callbacks: Some(10),
                    window_secs: Some(600),
                    allow: vec!["updates.example.com".into()],
                },
                ech: Some("block".into()),
                unreadable: None,
            },
            ips: IpsSection {
                mode: "ips".into(),
                disabled_sids: vec![1000],
                disabled_classtypes: vec!["misc-activity".into()],
                thresholds: vec![IpsThresholdEntry {
                    sid: 2000,
                    count: 5,
                    seconds: 60,
                }],
            },
        }
    }

    #[test]
    fn snapshot_round_trips_and_the_gateway_reads_it() {
        let snap = full();
        let text = snap.to_toml().unwrap();
        assert_eq!(toml::from_str::<PolicySnapshot>(&text).unwrap(), snap);
        let p = Policy::from_toml("snapshot", &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(p.firewall.rules[0].name, "no telnet");
        assert_eq!(p.firewall.rules[0].dst_ports.0, [(23, 23), (2300, 2399)]);
        assert_eq!(p.sides.lan_macs.len(), 1);
        assert_eq!(p.ips.disabled_sids, [1000]);
        assert_eq!(p.ips.thresholds[0].count, 5);
        // The empty snapshot is the gateway's default-free policy, also readable.
        Policy::from_toml("empty", &PolicySnapshot::default().to_toml().unwrap()).unwrap();
    }

    #[test]
    fn field_paths_parse_and_print() {
        for text in [
            "firewall.rule[2].dst[1]",
            "web.categories.adult",
            "ips.thresholds[0]",
            "a[1][2].b",
        ] {
            let path = FieldPath::parse(text).unwrap_or_else(|| panic!("{text}"));
            assert_eq!(path.to_string(), text);
        }
        let path = FieldPath::parse("firewall.rule[2].dst[1]").unwrap();
        assert!(path.starts_with_keys(&["firewall", "rule"]));
        assert!(!path.starts_with_keys(&["firewall", "rules"]));
        assert_eq!(
            path.replace_prefix(2, &["firewall", "rules"]).to_string(),
            "firewall.rules[2].dst[1]"
        );
        for junk in [
            "-",
            "",
            "a..b",
            "a[x]",
            "a[1",
            "a[1]b",
            "name = \"x\"",
            "a]",
        ] {
            assert_eq!(FieldPath::parse(junk), None, "{junk}");
        }
    }

    #[test]
    fn gateway_errors_still_name_the_file_field() {
        let mut snap = full();
        snap.firewall.rule[0].dst.push("10.0.0.0/33".into());
        let e = Policy::from_toml("snapshot", &snap.to_toml().unwrap()).unwrap_err();
        assert_eq!(e.field, "firewall.rule[0].dst[1]");
        assert!(e.line > 1, "{e}");
        let mut snap = full();
        snap.firewall.rule[0].action = "drop".into();
        assert!(Policy::from_toml("snapshot", &snap.to_toml().unwrap()).is_err());
    }
}

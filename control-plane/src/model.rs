//! What the API stores: the box's policy as JSON sections, and how it compiles into the
//! gateway's policy file (TOML) — the snapshot pushed to `mimamori-gw`.

use mimamori_pipelines::Policy;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FirewallRule {
    pub name: String,
    /// "lan" or "wan".
    #[serde(default = "lan")]
    pub from: String,
    #[serde(default)]
    pub src: Vec<String>,
    #[serde(default)]
    pub dst: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proto: Option<String>,
    #[serde(default)]
    pub src_ports: Vec<serde_json::Value>,
    #[serde(default)]
    pub dst_ports: Vec<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icmp_type: Option<i64>,
    /// allow, deny or reject.
    pub action: String,
    #[serde(default)]
    pub log: bool,
}

fn lan() -> String {
    "lan".into()
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Firewall {
    #[serde(default = "allow")]
    pub default_lan_to_wan: String,
    #[serde(default = "deny")]
    pub default_wan_to_lan: String,
    #[serde(default)]
    pub rules: Vec<FirewallRule>,
}

fn allow() -> String {
    "allow".into()
}
fn deny() -> String {
    "deny".into()
}

impl Default for Firewall {
    fn default() -> Self {
        Self {
            default_lan_to_wan: allow(),
            default_wan_to_lan: deny(),
            rules: Vec::new(),
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Exception {
    pub entry: String,
    /// allow or block.
    pub action: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct HostGroup {
    pub name: String,
    #[serde(default)]
    pub subnets: Vec<String>,
    #[serde(default)]
    pub macs: Vec<String>,
    /// Category → allow, monitor or block, over the default actions.
    #[serde(default)]
    pub categories: BTreeMap<String, String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Ips {
    /// "ids" (alert only) or "ips" (drop and reject as the rules say).
    #[serde(default = "ids")]
    pub mode: String,
    #[serde(default)]
    pub disabled_sids: Vec<u32>,
    #[serde(default)]
    pub disabled_classtypes: Vec<String>,
    #[serde(default)]
    pub thresholds: Vec<IpsThreshold>,
}

fn ids() -> String {
    "ids".into()
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct IpsThreshold {
    pub sid: u32,
    pub count: u32,
    pub seconds: u32,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// What they are told about: "threats", "reports", "all".
    #[serde(default = "all")]
    pub notify: String,
}

fn all() -> String {
    "all".into()
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Quarantine {
    #[serde(default = "fifty")]
    pub callbacks: u32,
    #[serde(default = "hour")]
    pub window_secs: u32,
    #[serde(default)]
    pub allow: Vec<String>,
}

fn fifty() -> u32 {
    50
}
fn hour() -> u32 {
    3600
}

impl Default for Quarantine {
    fn default() -> Self {
        Self {
            callbacks: 50,
            window_secs: 3600,
            allow: Vec::new(),
        }
    }
}

/// The whole stored policy; each field is one API section.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PolicyDoc {
    pub lan_subnets: Vec<String>,
    pub firewall: Firewall,
    pub categories: BTreeMap<String, String>,
    pub exceptions: Vec<Exception>,
    pub host_groups: Vec<HostGroup>,
    pub ips: Ips,
    pub quarantine: Quarantine,
    pub contacts: Vec<Contact>,
}

impl Default for PolicyDoc {
    /// The sample policy a new box starts with: the gateway's own defaults (telnet
    /// rejected, SMB denied outbound), the usual categories blocked.
    fn default() -> Self {
        let rule = |name: &str, ports: &[u16], action: &str| FirewallRule {
            name: name.into(),
            from: lan(),
            src: vec![],
            dst: vec![],
            proto: Some("tcp".into()),
            src_ports: vec![],
            dst_ports: ports.iter().map(|&p| serde_json::json!(p)).collect(),
            icmp_type: None,
            action: action.into(),
            log: true,
        };
        Self {
            lan_subnets: vec!["198.18.0.0/16".into(), "2001:db8:1::/48".into()],
            firewall: Firewall {
                rules: vec![
                    rule("reject outbound telnet", &[23], "reject"),
                    rule("deny outbound SMB", &[139, 445], "deny"),
                ],
                ..Firewall::default()
            },
            categories: ["adult", "gambling", "malware", "phishing"]
                .iter()
                .map(|c| (c.to_string(), "block".to_string()))
                .collect(),
            exceptions: vec![],
            host_groups: vec![],
            ips: Ips {
                mode: ids(),
                ..Ips::default()
            },
            quarantine: Quarantine::default(),
            contacts: vec![],
        }
    }
}

/// A validation failure: where in the request, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Invalid {
    pub field: String,
    pub reason: String,
}

impl PolicyDoc {
    /// The gateway's policy file for this document.
    pub fn to_toml(&self) -> String {
        use toml::{Table, Value};
        let strings = |v: &[String]| Value::Array(v.iter().cloned().map(Value::String).collect());
        let mut root = Table::new();
        let mut sides = Table::new();
        sides.insert("lan_subnets".into(), strings(&self.lan_subnets));
        root.insert("sides".into(), Value::Table(sides));
        let mut fw = Table::new();
        fw.insert(
            "default_lan_to_wan".into(),
            Value::String(self.firewall.default_lan_to_wan.clone()),
        );
        fw.insert(
            "default_wan_to_lan".into(),
            Value::String(self.firewall.default_wan_to_lan.clone()),
        );
        fw.insert("log_defaults".into(), Value::Boolean(true));
        fw.insert("allow_dhcp".into(), Value::Boolean(true));
        let rules = self
            .firewall
            .rules
            .iter()
            .map(|r| {
                let mut t = Table::new();
                t.insert("name".into(), Value::String(r.name.clone()));
                t.insert("from".into(), Value::String(r.from.clone()));
                t.insert("src".into(), strings(&r.src));
                t.insert("dst".into(), strings(&r.dst));
                if let Some(p) = &r.proto {
                    t.insert("proto".into(), Value::String(p.clone()));
                }
                let ports = |v: &[serde_json::Value]| {
                    Value::Array(
                        v.iter()
                            .map(|p| match p {
                                serde_json::Value::Number(n) => {
                                    Value::Integer(n.as_i64().unwrap_or(-1))
                                }
                                serde_json::Value::String(s) => Value::String(s.clone()),
                                other => Value::String(other.to_string()),
                            })
                            .collect(),
                    )
                };
                t.insert("src_ports".into(), ports(&r.src_ports));
                t.insert("dst_ports".into(), ports(&r.dst_ports));
                if let Some(i) = r.icmp_type {
                    t.insert("icmp_type".into(), Value::Integer(i));
                }
                t.insert("action".into(), Value::String(r.action.clone()));
                t.insert("log".into(), Value::Boolean(r.log));
                Value::Table(t)
            })
            .collect();
        fw.insert("rule".into(), Value::Array(rules));
        root.insert("firewall".into(), Value::Table(fw));
        let actions = |m: &BTreeMap<String, String>| {
            Value::Table(
                m.iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect(),
            )
        };
        let mut web = Table::new();
        web.insert("categories".into(), actions(&self.categories));
        let exc = |e: &Exception| {
            let mut t = Table::new();
            t.insert("entry".into(), Value::String(e.entry.clone()));
            t.insert("action".into(), Value::String(e.action.clone()));
            Value::Table(t)
        };
        web.insert(
            "exception".into(),
            Value::Array(self.exceptions.iter().map(exc).collect()),
        );
        let groups = self
            .host_groups
            .iter()
            .map(|g| {
                let mut t = Table::new();
                t.insert("name".into(), Value::String(g.name.clone()));
                t.insert("subnets".into(), strings(&g.subnets));
                t.insert("macs".into(), strings(&g.macs));
                t.insert("categories".into(), actions(&g.categories));
                Value::Table(t)
            })
            .collect();
        web.insert("group".into(), Value::Array(groups));
        let mut q = Table::new();
        q.insert(
            "callbacks".into(),
            Value::Integer(i64::from(self.quarantine.callbacks)),
        );
        q.insert(
            "window_secs".into(),
            Value::Integer(i64::from(self.quarantine.window_secs)),
        );
        q.insert("allow".into(), strings(&self.quarantine.allow));
        web.insert("quarantine".into(), Value::Table(q));
        root.insert("web".into(), Value::Table(web));
        let mut ips = Table::new();
        ips.insert("mode".into(), Value::String(self.ips.mode.clone()));
        ips.insert(
            "disabled_sids".into(),
            Value::Array(
                self.ips
                    .disabled_sids
                    .iter()
                    .map(|&s| Value::Integer(i64::from(s)))
                    .collect(),
            ),
        );
        ips.insert(
            "disabled_classtypes".into(),
            strings(&self.ips.disabled_classtypes),
        );
        let th = self
            .ips
            .thresholds
            .iter()
            .map(|t| {
                let mut x = Table::new();
                x.insert("sid".into(), Value::Integer(i64::from(t.sid)));
                x.insert("count".into(), Value::Integer(i64::from(t.count)));
                x.insert("seconds".into(), Value::Integer(i64::from(t.seconds)));
                Value::Table(x)
            })
            .collect();
        ips.insert("thresholds".into(), Value::Array(th));
        root.insert("ips".into(), Value::Table(ips));
        toml::to_string(&root).unwrap_or_default()
    }

    /// Checks the document the way the gateway will (the same policy compiler), and maps
    /// an error's policy-file field back to the API's field path.
    pub fn validate(&self) -> Result<Policy, Invalid> {
        // Words the policy compiler would refuse without naming the field.
        let one_of = |field: String, v: &str, allowed: &[&str]| -> Result<(), Invalid> {
            if allowed.contains(&v) {
                Ok(())
            } else {
                Err(Invalid {
                    field,
                    reason: format!("{v:?} is not one of {}", allowed.join(", ")),
                })
            }
        };
        let verdicts = ["allow", "deny", "reject"];
        one_of(
            "firewall.default_lan_to_wan".into(),
            &self.firewall.default_lan_to_wan,
            &verdicts,
        )?;
        one_of(
            "firewall.default_wan_to_lan".into(),
            &self.firewall.default_wan_to_lan,
            &verdicts,
        )?;
        for (i, r) in self.firewall.rules.iter().enumerate() {
            one_of(format!("firewall.rules[{i}].action"), &r.action, &verdicts)?;
            one_of(
                format!("firewall.rules[{i}].from"),
                &r.from,
                &["lan", "wan"],
            )?;
        }
        for (i, e) in self.exceptions.iter().enumerate() {
            one_of(
                format!("exceptions[{i}].action"),
                &e.action,
                &["allow", "block"],
            )?;
        }
        one_of("ips.mode".into(), &self.ips.mode, &["ids", "ips"])?;
        for (i, t) in self.ips.thresholds.iter().enumerate() {
            if t.count == 0 || t.seconds == 0 {
                return Err(Invalid {
                    field: format!("ips.thresholds[{i}]"),
                    reason: "count and seconds must be at least 1".into(),
                });
            }
        }
        for (i, c) in self.contacts.iter().enumerate() {
            if c.name.trim().is_empty() {
                return Err(Invalid {
                    field: format!("contacts[{i}].name"),
                    reason: "must not be empty".into(),
                });
            }
            if c.email.is_none() && c.phone.is_none() {
                return Err(Invalid {
                    field: format!("contacts[{i}]"),
                    reason: "needs an email or a phone".into(),
                });
            }
            if c.email.as_deref().is_some_and(|e| !e.contains('@')) {
                return Err(Invalid {
                    field: format!("contacts[{i}].email"),
                    reason: "not an email address".into(),
                });
            }
            if !matches!(c.notify.as_str(), "threats" | "reports" | "all") {
                return Err(Invalid {
                    field: format!("contacts[{i}].notify"),
                    reason: "expected threats, reports or all".into(),
                });
            }
        }
        for (k, v) in self
            .categories
            .iter()
            .chain(self.host_groups.iter().flat_map(|g| g.categories.iter()))
        {
            if !matches!(v.as_str(), "allow" | "monitor" | "block") {
                return Err(Invalid {
                    field: format!("categories.{k}"),
                    reason: format!("{v:?} is not allow, monitor or block"),
                });
            }
        }
        Policy::from_toml("policy", &self.to_toml()).map_err(|e| Invalid {
            field: api_field(&e.field),
            reason: e.message,
        })
    }
}

/// `firewall.rule[2].dst[1]` → `firewall.rules[2].dst[1]`, `web.exception[0]` →
/// `exceptions[0]`, and so on.
fn api_field(f: &str) -> String {
    let f = f.replacen("firewall.rule[", "firewall.rules[", 1);
    for (from, to) in [
        ("web.exception", "exceptions"),
        ("web.group", "host_groups"),
        ("web.categories", "categories"),
        ("web.quarantine", "quarantine"),
        ("sides.lan_subnets", "lan_subnets"),
    ] {
        if let Some(rest) = f.strip_prefix(from) {
            return format!("{to}{rest}");
        }
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_doc_compiles_and_round_trips() {
        let d = PolicyDoc::default();
        let p = d.validate().unwrap();
        assert_eq!(p.firewall.rules[0].name, "reject outbound telnet");
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(serde_json::from_str::<PolicyDoc>(&json).unwrap(), d);
    }

    #[test]
    fn errors_name_the_api_field() {
        let mut d = PolicyDoc::default();
        d.firewall.rules[1].dst = vec!["10.0.0.0/8".into(), "10.0.0.0/40".into()];
        let e = d.validate().unwrap_err();
        assert_eq!(e.field, "firewall.rules[1].dst[1]");
        let mut d = PolicyDoc::default();
        d.exceptions.push(Exception {
            entry: "not a name".into(),
            action: "allow".into(),
        });
        assert_eq!(d.validate().unwrap_err().field, "exceptions[0].entry");
        let mut d = PolicyDoc::default();
        d.categories.insert("adult".into(), "blok".into());
        assert_eq!(d.validate().unwrap_err().field, "categories.adult");
    }
}

//! What the API stores: the box's policy as JSON sections, and how it compiles into the
//! gateway's policy file (TOML) — the snapshot pushed to `mimamori-gw`.

use mimamori_pipelines::Policy;
use mimamori_proto::policy::{
    ExceptionEntry, FieldPath, FirewallSection, GroupEntry, IpsSection, IpsThresholdEntry,
    PolicySnapshot, PortSpec, QuarantineSection, RuleEntry, SidesSection, SnapshotError,
    WebSection,
};
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

impl FirewallRule {
    fn entry(&self) -> RuleEntry {
        RuleEntry {
            name: self.name.clone(),
            from: self.from.clone(),
            src: self.src.clone(),
            dst: self.dst.clone(),
            proto: self.proto.clone(),
            src_ports: self.src_ports.iter().map(port_spec).collect(),
            dst_ports: self.dst_ports.iter().map(port_spec).collect(),
            icmp_type: self.icmp_type,
            action: self.action.clone(),
            log: self.log,
        }
    }
}

/// A port as the API took it (JSON number or text); what is neither an integer nor text
/// goes over as text, for the gateway's compiler to refuse with the field named.
fn port_spec(v: &serde_json::Value) -> PortSpec {
    match v {
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => PortSpec::Number(i),
            None => PortSpec::Text(n.to_string()),
        },
        serde_json::Value::String(s) => PortSpec::Text(s.clone()),
        other => PortSpec::Text(other.to_string()),
    }
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

/// How the web filter treats hellos whose name it cannot judge (the policy file's
/// `web.ech` and `web.unreadable`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct WebOptions {
    /// An ECH hello whose real name is hidden: allow, monitor or block.
    #[serde(default = "allow")]
    pub ech: String,
    /// A first message read to no name (past 16 KiB, malformed): allow, monitor or block.
    #[serde(default = "allow")]
    pub unreadable: String,
}

impl Default for WebOptions {
    fn default() -> Self {
        Self {
            ech: allow(),
            unreadable: allow(),
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
    /// Versions stored before this section existed read as the defaults.
    #[serde(default)]
    pub web_options: WebOptions,
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
            web_options: WebOptions::default(),
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
    /// The typed policy snapshot the gateway gets for this document.
    pub fn snapshot(&self) -> PolicySnapshot {
        PolicySnapshot {
            sides: SidesSection {
                lan_subnets: self.lan_subnets.clone(),
                lan_macs: Vec::new(),
            },
            firewall: FirewallSection {
                default_lan_to_wan: self.firewall.default_lan_to_wan.clone(),
                default_wan_to_lan: self.firewall.default_wan_to_lan.clone(),
                // The box logs its default decisions and always lets DHCP through.
                log_defaults: true,
                allow_dhcp: true,
                rule: self
                    .firewall
                    .rules
                    .iter()
                    .map(FirewallRule::entry)
                    .collect(),
            },
            web: WebSection {
                categories: self.categories.clone(),
                exception: self
                    .exceptions
                    .iter()
                    .map(|e| ExceptionEntry {
                        entry: e.entry.clone(),
                        action: e.action.clone(),
                    })
                    .collect(),
                group: self
                    .host_groups
                    .iter()
                    .map(|g| GroupEntry {
                        name: g.name.clone(),
                        subnets: g.subnets.clone(),
                        macs: g.macs.clone(),
                        categories: g.categories.clone(),
                    })
                    .collect(),
                quarantine: QuarantineSection {
                    callbacks: Some(i64::from(self.quarantine.callbacks)),
                    window_secs: Some(i64::from(self.quarantine.window_secs)),
                    allow: self.quarantine.allow.clone(),
                },
                ech: Some(self.web_options.ech.clone()),
                unreadable: Some(self.web_options.unreadable.clone()),
            },
            ips: IpsSection {
                mode: self.ips.mode.clone(),
                disabled_sids: self.ips.disabled_sids.clone(),
                disabled_classtypes: self.ips.disabled_classtypes.clone(),
                thresholds: self
                    .ips
                    .thresholds
                    .iter()
                    .map(|t| IpsThresholdEntry {
                        sid: t.sid,
                        count: t.count,
                        seconds: t.seconds,
                    })
                    .collect(),
            },
        }
    }

    /// The gateway's policy file for this document.
    pub fn to_toml(&self) -> Result<String, SnapshotError> {
        self.snapshot().to_toml()
    }

    /// Checks the document the way the gateway will (the same policy compiler), and maps
    /// an error's policy-file field back to the API's field path.
    pub fn validate(&self) -> Result<Policy, Invalid> {
        // Every version is stored whole: bound what one may hold.
        let v = serde_json::to_value(self).map_err(|e| Invalid {
            field: "-".into(),
            reason: e.to_string(),
        })?;
        bounded(&v, String::new())?;
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
        let actions = ["allow", "monitor", "block"];
        one_of("web_options.ech".into(), &self.web_options.ech, &actions)?;
        one_of(
            "web_options.unreadable".into(),
            &self.web_options.unreadable,
            &actions,
        )?;
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
        let text = self.to_toml().map_err(|e| Invalid {
            field: "-".into(),
            reason: e.to_string(),
        })?;
        Policy::from_toml("policy", &text).map_err(|e| Invalid {
            field: api_field(&e.field),
            reason: e.message,
        })
    }

    /// A validated policy's `[web]` section compiled against the category database the
    /// gateway loads (a category it lacks is refused here, not at the gateway's next
    /// start).
    pub fn compiles_against(
        policy: &Policy,
        categories: Option<&std::sync::Arc<mimamori_signatures::category::CategoryDb>>,
    ) -> Result<(), Invalid> {
        if let Some(db) = categories {
            mimamori_pipelines::web::WebRules::new(&policy.web, db.clone(), "policy").map_err(
                |e| Invalid {
                    field: api_field(&e.field),
                    reason: e.message,
                },
            )?;
        }
        Ok(())
    }
}

/// Longest text value in a policy (names, entries, addresses).
pub const TEXT_MAX: usize = 1024;
/// Most entries in one list (rules, exceptions, groups, contacts, subnets).
pub const LIST_MAX: usize = 10_000;

/// Checks every text and list of the document against [`TEXT_MAX`] and [`LIST_MAX`],
/// naming the field (`firewall.rules[3].name`).
fn bounded(v: &serde_json::Value, path: String) -> Result<(), Invalid> {
    use serde_json::Value;
    let too = |path: String, what: String| {
        Err(Invalid {
            field: path,
            reason: what,
        })
    };
    match v {
        Value::String(s) if s.len() > TEXT_MAX => {
            too(path, format!("{} bytes, longer than {TEXT_MAX}", s.len()))
        }
        Value::Array(a) if a.len() > LIST_MAX => {
            too(path, format!("{} entries, more than {LIST_MAX}", a.len()))
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                bounded(x, format!("{path}[{i}]"))?;
            }
            Ok(())
        }
        Value::Object(o) if o.len() > LIST_MAX => {
            too(path, format!("{} entries, more than {LIST_MAX}", o.len()))
        }
        Value::Object(o) => {
            for (k, x) in o {
                if k.len() > TEXT_MAX {
                    return too(
                        path,
                        format!("a key of {} bytes, longer than {TEXT_MAX}", k.len()),
                    );
                }
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                bounded(x, p)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Where each snapshot section comes from in the document (the inverse of `snapshot`):
/// policy-file keys → API keys; sections not listed have the same name in both.
const SECTION_ORIGINS: &[(&[&str], &[&str])] = &[
    (&["sides", "lan_subnets"], &["lan_subnets"]),
    (&["firewall", "rule"], &["firewall", "rules"]),
    (&["web", "categories"], &["categories"]),
    (&["web", "exception"], &["exceptions"]),
    (&["web", "group"], &["host_groups"]),
    (&["web", "quarantine"], &["quarantine"]),
    (&["web", "ech"], &["web_options", "ech"]),
    (&["web", "unreadable"], &["web_options", "unreadable"]),
];

/// The API field for a field the gateway's compiler named in the snapshot:
/// `firewall.rule[2].dst[1]` → `firewall.rules[2].dst[1]`, `web.exception[0]` →
/// `exceptions[0]`. What is not a path is passed through.
fn api_field(file_field: &str) -> String {
    let Some(path) = FieldPath::parse(file_field) else {
        return file_field.to_string();
    };
    SECTION_ORIGINS
        .iter()
        .find(|(file, _)| path.starts_with_keys(file))
        .map_or(path.clone(), |(file, api)| {
            path.replace_prefix(file.len(), api)
        })
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_texts_and_lists_are_refused_by_field() {
        let mut d = PolicyDoc::default();
        d.firewall.rules[0].name = "x".repeat(TEXT_MAX + 1);
        let e = d.validate().unwrap_err();
        assert_eq!(e.field, "firewall.rules[0].name", "{}", e.reason);
        let mut d = PolicyDoc::default();
        d.quarantine.allow = vec!["a.example".into(); LIST_MAX + 1];
        assert_eq!(d.validate().unwrap_err().field, "quarantine.allow");
    }

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
        let mut d = PolicyDoc::default();
        d.lan_subnets.push("300.0.0.0/8".into());
        assert_eq!(d.validate().unwrap_err().field, "lan_subnets[2]");
        let mut d = PolicyDoc::default();
        d.host_groups.push(HostGroup {
            name: "kids".into(),
            subnets: vec!["10.0.0.0/99".into()],
            macs: vec![],
            categories: BTreeMap::new(),
        });
        assert_eq!(d.validate().unwrap_err().field, "host_groups[0].subnets[0]");
        let mut d = PolicyDoc::default();
        d.quarantine.allow.push("not a name".into());
        assert_eq!(d.validate().unwrap_err().field, "quarantine.allow[0]");
        let mut d = PolicyDoc::default();
        d.firewall.rules[0].dst_ports = vec![serde_json::json!(80.5)];
        assert_eq!(
            d.validate().unwrap_err().field,
            "firewall.rules[0].dst_ports[0]"
        );
    }

    #[test]
    fn snapshot_text_is_what_the_gateway_parses() {
        let d = PolicyDoc::default();
        let text = d.to_toml().unwrap();
        let p = Policy::from_toml("snapshot", &text).unwrap();
        assert!(p.firewall.log_defaults);
        assert_eq!(p.firewall.rules[1].dst_ports.0, [(139, 139), (445, 445)]);
        let back: PolicySnapshot = toml::from_str(&text).unwrap();
        assert_eq!(back, d.snapshot());
    }
}

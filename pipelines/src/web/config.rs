//! The `[web]` section of the policy: an action per URL category, site exceptions, host
//! groups, the DNS sinkhole, threat categories and quarantine. Checked here on its own;
//! category names are checked against the database when both are loaded (`WebRules`).

use crate::firewall::CidrSet;
use crate::policy::{Ctx, PolicyError};
use crate::wire::MacAddr;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use toml::Spanned;

/// Ordered by strictness: when several categories match, the strictest action wins.
#[derive(Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum WebAction {
    Allow,
    /// Let it through and write an event.
    Monitor,
    Block,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct WebFile {
    #[serde(default)]
    sinkhole: Option<Spanned<String>>,
    #[serde(default)]
    sinkhole_v6: Option<Spanned<String>>,
    #[serde(default)]
    desk_contact: Option<String>,
    #[serde(default)]
    threat_categories: Option<Vec<String>>,
    #[serde(default)]
    callback_categories: Option<Vec<String>>,
    #[serde(default)]
    categories: BTreeMap<String, Spanned<WebAction>>,
    #[serde(default)]
    exception: Vec<ExceptionFile>,
    #[serde(default)]
    group: Vec<GroupFile>,
    #[serde(default)]
    quarantine: QuarantineFile,
    #[serde(default)]
    dns_answers: Option<Spanned<i64>>,
    #[serde(default)]
    hosts: Option<Spanned<i64>>,
    #[serde(default)]
    ech: Option<WebAction>,
    #[serde(default)]
    unreadable: Option<WebAction>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExceptionFile {
    entry: Spanned<String>,
    action: Spanned<WebAction>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupFile {
    name: Spanned<String>,
    #[serde(default)]
    subnets: Vec<Spanned<String>>,
    #[serde(default)]
    macs: Vec<Spanned<String>>,
    #[serde(default)]
    categories: BTreeMap<String, Spanned<WebAction>>,
    #[serde(default)]
    exception: Vec<ExceptionFile>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct QuarantineFile {
    #[serde(default)]
    callbacks: Option<Spanned<i64>>,
    #[serde(default)]
    window_secs: Option<Spanned<i64>>,
    #[serde(default)]
    allow: Vec<Spanned<String>>,
    #[serde(default)]
    released: Vec<Spanned<String>>,
}

/// A site exception: a domain (and its subdomains) or a URL prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exception {
    pub entry: String,
    pub action: WebAction,
}

/// A category action with the line it came from, for errors found against the database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CategoryAction {
    pub category: String,
    pub action: WebAction,
    pub line: usize,
    pub field: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub subnets: CidrSet,
    pub macs: Vec<MacAddr>,
    pub categories: Vec<CategoryAction>,
    pub exceptions: Vec<Exception>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuarantineConfig {
    /// Callbacks to C&C or malware names within `window_secs` that quarantine a host.
    pub callbacks: u32,
    pub window_secs: u32,
    /// Names a quarantined host may still reach (with DNS and DHCP).
    pub allow: Vec<String>,
    /// Hosts released by the operator: never quarantined.
    pub released: Vec<MacAddr>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebConfig {
    /// `None`: blocked DNS names get NXDOMAIN; otherwise an A answer with this address.
    pub sinkhole_v4: Option<Ipv4Addr>,
    pub sinkhole_v6: Option<Ipv6Addr>,
    /// How to reach the Security Support Desk, printed on the block page.
    pub desk_contact: String,
    pub threat_categories: Vec<String>,
    pub callback_categories: Vec<String>,
    /// The default group (everyone not in a listed group) first, then the listed groups.
    pub groups: Vec<Group>,
    pub quarantine: QuarantineConfig,
    /// DNS answers remembered to name later connections (a direct-mapped cache).
    pub dns_answers: usize,
    /// LAN hosts tracked (MAC, addresses, DHCP names, callbacks).
    pub hosts: usize,
    /// A ClientHello with `encrypted_client_hello` whose outer name is not the name the
    /// client looked up for the address (the real name is hidden): allowed (judged by the
    /// looked-up name), monitored, or blocked.
    pub ech: WebAction,
    /// A first message that could not be read to its name (past the budget, malformed):
    /// allowed, monitored or blocked.
    pub unreadable: WebAction,
}

pub const DEFAULT_THREATS: [&str; 5] = ["malware", "phishing", "c2", "cryptojacking", "ransomware"];
pub const DEFAULT_CALLBACKS: [&str; 2] = ["malware", "c2"];

impl WebFile {
    pub(crate) fn check(self, cx: &Ctx) -> Result<WebConfig, PolicyError> {
        let sinkhole_v4 = match &self.sinkhole {
            None => None,
            Some(s) if s.get_ref().eq_ignore_ascii_case("nxdomain") => None,
            Some(s) => match s.get_ref().parse::<Ipv4Addr>() {
                Ok(a) => Some(a),
                Err(_) => {
                    return cx.err(
                        s.span(),
                        "web.sinkhole",
                        "expected \"nxdomain\" or an IPv4 address",
                    );
                }
            },
        };
        let sinkhole_v6 = match &self.sinkhole_v6 {
            None => None,
            Some(s) => match s.get_ref().parse::<Ipv6Addr>() {
                Ok(a) => Some(a),
                Err(_) => return cx.err(s.span(), "web.sinkhole_v6", "expected an IPv6 address"),
            },
        };
        let mut groups = vec![Group {
            name: "default".into(),
            subnets: CidrSet(Vec::new()),
            macs: Vec::new(),
            categories: actions(cx, "web.categories", &self.categories),
            exceptions: exceptions(cx, "web.exception", &self.exception)?,
        }];
        for (i, g) in self.group.iter().enumerate() {
            let f = format!("web.group[{i}]");
            if g.name.get_ref().trim().is_empty() {
                return cx.err(g.name.span(), format!("{f}.name"), "must not be empty");
            }
            if g.subnets.is_empty() && g.macs.is_empty() {
                return cx.err(
                    g.name.span(),
                    format!("{f}.subnets"),
                    "a group needs subnets or macs",
                );
            }
            groups.push(Group {
                name: g.name.get_ref().clone(),
                subnets: cx.cidrs(&format!("{f}.subnets"), &g.subnets)?,
                macs: macs(cx, &format!("{f}.macs"), &g.macs)?,
                categories: actions(cx, &format!("{f}.categories"), &g.categories),
                exceptions: exceptions(cx, &format!("{f}.exception"), &g.exception)?,
            });
        }
        let q = &self.quarantine;
        let quarantine = QuarantineConfig {
            callbacks: bounded(
                cx,
                "web.quarantine.callbacks",
                &q.callbacks,
                1,
                1_000_000,
                50,
            )? as u32,
            window_secs: bounded(
                cx,
                "web.quarantine.window_secs",
                &q.window_secs,
                1,
                604_800,
                3600,
            )? as u32,
            allow: names(cx, "web.quarantine.allow", &q.allow)?,
            released: macs(cx, "web.quarantine.released", &q.released)?,
        };
        let owned = |v: Option<Vec<String>>, d: &[&str]| {
            v.unwrap_or_else(|| d.iter().map(|s| s.to_string()).collect())
        };
        Ok(WebConfig {
            sinkhole_v4,
            sinkhole_v6,
            desk_contact: self
                .desk_contact
                .unwrap_or_else(|| "Security Support Desk / セキュリティサポートデスク".into()),
            threat_categories: owned(self.threat_categories, &DEFAULT_THREATS),
            callback_categories: owned(self.callback_categories, &DEFAULT_CALLBACKS),
            groups,
            quarantine,
            dns_answers: bounded(
                cx,
                "web.dns_answers",
                &self.dns_answers,
                16,
                1 << 24,
                65_536,
            )? as usize,
            hosts: bounded(cx, "web.hosts", &self.hosts, 16, 1 << 20, 4096)? as usize,
            ech: self.ech.unwrap_or(WebAction::Allow),
            unreadable: self.unreadable.unwrap_or(WebAction::Allow),
        })
    }
}

fn bounded(
    cx: &Ctx,
    field: &str,
    v: &Option<Spanned<i64>>,
    lo: i64,
    hi: i64,
    default: i64,
) -> Result<i64, PolicyError> {
    match v {
        None => Ok(default),
        Some(s) if (lo..=hi).contains(s.get_ref()) => Ok(*s.get_ref()),
        Some(s) => cx.err(s.span(), field, format!("must be from {lo} to {hi}")),
    }
}

fn actions(cx: &Ctx, field: &str, m: &BTreeMap<String, Spanned<WebAction>>) -> Vec<CategoryAction> {
    m.iter()
        .map(|(name, a)| CategoryAction {
            category: name.clone(),
            action: *a.get_ref(),
            line: cx.line_of(a.span().start),
            field: format!("{field}.{name}"),
        })
        .collect()
}

fn exceptions(
    cx: &Ctx,
    field: &str,
    list: &[ExceptionFile],
) -> Result<Vec<Exception>, PolicyError> {
    let mut out = Vec::with_capacity(list.len());
    for (i, e) in list.iter().enumerate() {
        let entry = e.entry.get_ref().trim().to_ascii_lowercase();
        let (host, _) = mimamori_signatures::category::split_url(&entry);
        if !mimamori_signatures::category::valid_name(host) {
            return cx.err(
                e.entry.span(),
                format!("{field}[{i}].entry"),
                "expected a domain (example.test) or a URL prefix (example.test/path)",
            );
        }
        out.push(Exception {
            entry,
            action: *e.action.get_ref(),
        });
    }
    Ok(out)
}

fn names(cx: &Ctx, field: &str, list: &[Spanned<String>]) -> Result<Vec<String>, PolicyError> {
    let mut out = Vec::with_capacity(list.len());
    for (i, s) in list.iter().enumerate() {
        let n = s
            .get_ref()
            .trim()
            .trim_end_matches('.')
            .to_ascii_lowercase();
        if !mimamori_signatures::category::valid_name(&n) {
            return cx.err(s.span(), format!("{field}[{i}]"), "expected a domain name");
        }
        out.push(n);
    }
    Ok(out)
}

fn macs(cx: &Ctx, field: &str, list: &[Spanned<String>]) -> Result<Vec<MacAddr>, PolicyError> {
    let mut out = Vec::with_capacity(list.len());
    for (i, s) in list.iter().enumerate() {
        match s.get_ref().parse::<MacAddr>() {
            Ok(m) => out.push(m),
            Err(e) => return cx.err(s.span(), format!("{field}[{i}]"), e),
        }
    }
    Ok(out)
}

//! The `[web]` policy compiled against a category database: per host group an action for
//! every category, the site exceptions and the quarantine allow-list, and the one
//! judgement of a name ([`WebRules::decide`]).

use super::config::{WebAction, WebConfig};
use crate::policy::PolicyError;
use crate::wire::MacAddr;
use mimamori_signatures::category::{Builder, CategoryDb, Match};
use std::sync::Arc;

/// The policy's judgement of one name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    pub action: WebAction,
    /// The category match behind the action, if any.
    pub hit: Option<Match>,
    /// A site exception decided.
    pub exception: bool,
    pub threat: bool,
    /// The name is in a callback category (C&C, malware): counts towards quarantine.
    pub callback: bool,
}

struct Group {
    subnets: crate::firewall::CidrSet,
    macs: Vec<MacAddr>,
    /// Per database category.
    actions: Vec<WebAction>,
    exceptions: Option<CategoryDb>,
}

/// The `[web]` policy compiled against a category database.
pub struct WebRules {
    db: Arc<CategoryDb>,
    pub config: WebConfig,
    groups: Vec<Group>,
    threat: Vec<bool>,
    callback: Vec<bool>,
    quarantine_allow: Option<CategoryDb>,
}

impl std::fmt::Debug for WebRules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WebRules({:?}, {} groups)", self.db, self.groups.len())
    }
}

const EXC_ALLOW: u16 = 0;

/// Site lists (exceptions, the quarantine allow-list) as small databases, so they match
/// exactly like the category lists.
fn site_list<'a>(
    entries: impl Iterator<Item = (&'a str, bool)>,
) -> Result<Option<CategoryDb>, String> {
    let mut b = Builder::default();
    let src = b.source("policy", "");
    let (allow, block) = (b.category("allow"), b.category("block"));
    debug_assert_eq!(allow, EXC_ALLOW);
    let mut any = false;
    for (entry, is_allow) in entries {
        let cat = if is_allow { allow } else { block };
        let ok = if entry.contains('/') {
            b.add_url(entry, cat, src)
        } else {
            b.add_domain(entry, cat, src)
        };
        if !ok {
            return Err(format!("{entry:?} is not a domain or URL prefix"));
        }
        any = true;
    }
    if !any {
        return Ok(None);
    }
    let (bytes, _) = b.finish(0);
    CategoryDb::from_bytes(bytes)
        .map(Some)
        .map_err(|e| e.to_string())
}

impl WebRules {
    /// Compiles `config` against `db`. A category the policy names must exist in the
    /// database (a typo must not silently allow what it meant to block); `file` names the
    /// policy in the error.
    pub fn new(
        config: &WebConfig,
        db: Arc<CategoryDb>,
        file: &str,
    ) -> Result<WebRules, PolicyError> {
        let n = db.categories.len();
        let index = |name: &str| db.categories.iter().position(|c| c == name);
        let mut groups = Vec::with_capacity(config.groups.len());
        let mut defaults = vec![WebAction::Allow; n];
        for (gi, g) in config.groups.iter().enumerate() {
            let mut actions = if gi == 0 {
                vec![WebAction::Allow; n]
            } else {
                defaults.clone()
            };
            for a in &g.categories {
                match index(&a.category) {
                    Some(c) => actions[c] = a.action,
                    None => {
                        return Err(PolicyError {
                            file: file.to_string(),
                            line: a.line,
                            field: a.field.clone(),
                            message: format!(
                                "no category {:?} in the category database ({} categories: {})",
                                a.category,
                                n,
                                db.categories
                                    .iter()
                                    .take(12)
                                    .cloned()
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        });
                    }
                }
            }
            if gi == 0 {
                defaults = actions.clone();
            }
            let exceptions = site_list(
                g.exceptions
                    .iter()
                    .map(|e| (e.entry.as_str(), e.action != WebAction::Block)),
            )
            .map_err(|message| PolicyError {
                file: file.to_string(),
                line: 0,
                field: format!("web.group[{gi}].exception"),
                message,
            })?;
            groups.push(Group {
                subnets: g.subnets.clone(),
                macs: g.macs.clone(),
                actions,
                exceptions,
            });
        }
        let flags = |list: &[String]| -> Vec<bool> {
            db.categories
                .iter()
                .map(|c| list.iter().any(|l| l == c))
                .collect()
        };
        let quarantine_allow = site_list(
            config.quarantine.allow.iter().map(|n| (n.as_str(), true)),
        )
        .map_err(|message| PolicyError {
            file: file.to_string(),
            line: 0,
            field: "web.quarantine.allow".into(),
            message,
        })?;
        Ok(WebRules {
            threat: flags(&config.threat_categories),
            callback: flags(&config.callback_categories),
            db,
            config: config.clone(),
            groups,
            quarantine_allow,
        })
    }

    pub fn db(&self) -> &Arc<CategoryDb> {
        &self.db
    }

    pub fn category_name(&self, c: u16) -> &str {
        self.db
            .categories
            .get(usize::from(c))
            .map_or("-", |s| s.as_str())
    }
    pub fn source_name(&self, s: u16) -> &str {
        self.db
            .sources
            .get(usize::from(s))
            .map_or("-", |s| s.0.as_str())
    }
    pub fn group_name(&self, g: u16) -> &str {
        self.config
            .groups
            .get(usize::from(g))
            .map_or("-", |g| g.name.as_str())
    }

    /// The host group of a LAN sender: the first listed group naming its MAC or subnet.
    pub fn group_of(&self, mac: MacAddr, src: u128) -> usize {
        self.groups
            .iter()
            .enumerate()
            .skip(1)
            .find(|(_, g)| {
                g.macs.contains(&mac) || (!g.subnets.0.is_empty() && g.subnets.matches(src))
            })
            .map_or(0, |(i, _)| i)
    }

    /// Judges a name (and a path, for HTTP). Exceptions beat categories; among categories
    /// the strictest action wins; a threat category is never less than monitored.
    pub fn decide(
        &self,
        group: usize,
        host: &str,
        path: Option<&str>,
        buf: &mut Vec<Match>,
    ) -> Decision {
        let lookup = |db: &CategoryDb, buf: &mut Vec<Match>| match path {
            Some(p) => db.lookup_url(host, p, buf),
            None => db.lookup_host(host, buf),
        };
        let mut d = Decision {
            action: WebAction::Allow,
            hit: None,
            exception: false,
            threat: false,
            callback: false,
        };
        if lookup(&self.db, buf) {
            let actions = &self.groups[group].actions;
            for m in buf.iter() {
                let c = usize::from(m.category);
                let a = actions[c];
                d.threat |= self.threat[c];
                d.callback |= self.callback[c];
                if d.hit.is_none() || a > d.action {
                    d.action = a;
                    d.hit = Some(*m);
                }
            }
            if d.threat && d.action == WebAction::Allow {
                d.action = WebAction::Monitor;
            }
        }
        let exc = [group, 0];
        for g in exc.iter().take(if group == 0 { 1 } else { 2 }) {
            if let Some(x) = &self.groups[*g].exceptions
                && lookup(x, buf)
            {
                let block = buf.iter().any(|m| m.category != EXC_ALLOW);
                d.action = if block {
                    WebAction::Block
                } else {
                    WebAction::Allow
                };
                d.exception = true;
                break;
            }
        }
        d
    }

    pub fn quarantine_allows(&self, host: &str, buf: &mut Vec<Match>) -> bool {
        self.quarantine_allow
            .as_ref()
            .is_some_and(|x| x.lookup_host(host, buf))
    }
}

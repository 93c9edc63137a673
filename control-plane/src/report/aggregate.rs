//! The month's numbers, from the per-day rollups the writer keeps at intake
//! (`super::rollup`): every count is a `GROUP BY` over at most a month of days, so the work
//! does not grow with the month's events. Host names and quarantines (few rows) are read
//! from the events themselves.

use super::{JST, Live, Month, rollup};
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::HashMap;

/// What blocked (or detected) an event, in the order the report shows them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Func {
    /// A web request to a name in a threat category (malware, phishing, …).
    Threat,
    /// A C&C callback name (category `c2`), or a request of a quarantined host, refused.
    Cnc,
    /// A signature match whose packet was dropped.
    IpsDrop,
    /// A signature match that was only logged.
    IpsAlert,
    /// A web request to a category the policy blocks (or a site exception that blocks).
    Category,
    /// A flow the firewall policy denied (and logged).
    Firewall,
}

pub const FUNCS: [Func; 6] = [
    Func::Threat,
    Func::Cnc,
    Func::IpsDrop,
    Func::IpsAlert,
    Func::Category,
    Func::Firewall,
];
pub const NF: usize = FUNCS.len();

impl Func {
    pub fn index(self) -> usize {
        FUNCS.iter().position(|&f| f == self).unwrap_or(0)
    }
    /// Whether events of this function were stopped (an IPS alert only was logged).
    pub fn blocks(self) -> bool {
        self != Func::IpsAlert
    }
}

/// The function of an event, as SQL over the stored columns (NULL: neither a block nor an
/// alert, e.g. a monitored name or a logged allowed flow). The numbers are `FUNCS` indexes.
pub(crate) const FN_SQL: &str = "CASE
  WHEN event_type = 'web' AND action = 'quarantined' THEN 1
  WHEN event_type = 'web' AND action IN ('blocked', 'sinkholed') AND category = 'c2' THEN 1
  WHEN event_type = 'web' AND action IN ('blocked', 'sinkholed') AND threat = 1 THEN 0
  WHEN event_type = 'web' AND action IN ('blocked', 'sinkholed') THEN 4
  WHEN event_type = 'alert' AND coalesce(gid, 1) != 9 AND action = 'blocked' THEN 2
  WHEN event_type = 'alert' AND coalesce(gid, 1) != 9 AND action = 'allowed' THEN 3
  WHEN event_type = 'alert' AND gid = 9 AND action = 'blocked' THEN 5
END";

/// The rows `FN_SQL` can classify, in a form the `(event_type, action, ts)` index serves.
pub(crate) const CANDIDATES: &str = "event_type IN ('web', 'alert') AND action IN ('blocked', 'sinkholed', 'quarantined', 'allowed')";

/// How many rows each top-N list shows.
pub const TOP_N: usize = 10;

pub type Counts = [i64; NF];

#[derive(Clone, Debug, PartialEq)]
pub struct Named {
    pub name: String,
    pub count: i64,
    /// A site's category, or a signature's class.
    pub detail: Option<String>,
    /// A threat (site) or a dropped count (signature).
    pub flag: i64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Signature {
    pub sid: i64,
    pub message: String,
    pub class: String,
    pub severity: Option<i64>,
    pub count: i64,
    pub dropped: i64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Host {
    pub ip: String,
    pub mac: Option<String>,
    pub hostname: Option<String>,
    pub count: i64,
    /// Of `count`, threats and C&C.
    pub threats: i64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Incident {
    pub ts: i64,
    pub ip: Option<String>,
    pub mac: Option<String>,
    pub hostname: Option<String>,
    pub callbacks: Option<i64>,
    /// When and by whom it was released from quarantine (in the month, after `ts`).
    pub released: Option<(i64, String)>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PolicyChange {
    pub version: i64,
    pub created: i64,
    pub actor: String,
    pub applied: bool,
    pub note: String,
}

/// A pattern bundle the box installed: (kind, version, when imported).
pub type Bundle = (String, i64, i64);

/// Pattern files over the month: what was installed in it, the newest installed by its
/// end per kind, and the warnings the box recorded (`patterns` events).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PatternHealth {
    pub updates: Vec<Bundle>,
    pub newest: Vec<Bundle>,
    /// "Patterns are stale" warnings in the month.
    pub stale_warnings: i64,
    /// Bundles refused in the month (bad signature, licence ended, …).
    pub refused: i64,
}

/// A previous month in the trend: its counts, and where they came from.
#[derive(Clone, Debug, PartialEq)]
pub enum Past {
    Events(Counts),
    /// The oldest event kept falls inside it (the box began then, or retention cut it).
    Partial(Counts),
    /// Its events are gone (retention); the counts its kept report recorded.
    Kept(Counts),
    /// Neither events nor a kept report.
    Unknown,
}

impl Past {
    pub fn counts(&self) -> Option<&Counts> {
        match self {
            Past::Events(c) | Past::Partial(c) | Past::Kept(c) => Some(c),
            Past::Unknown => None,
        }
    }
    /// Counts of a whole month, fit to compare with.
    pub fn whole(&self) -> Option<&Counts> {
        match self {
            Past::Events(c) | Past::Kept(c) => Some(c),
            Past::Partial(_) | Past::Unknown => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    pub month: Month,
    pub generated: i64,
    /// Events of any kind stored for the month.
    pub events: i64,
    pub first_event: Option<i64>,
    pub last_event: Option<i64>,
    /// Japan-time days of the month with at least one event.
    pub days_with_events: u32,
    /// Days of the month that have begun when the report is made.
    pub days_elapsed: u32,
    pub totals: Counts,
    /// One entry per day of the month.
    pub per_day: Vec<Counts>,
    pub categories: Vec<Named>,
    pub sites: Vec<Named>,
    pub signatures: Vec<Signature>,
    pub hosts: Vec<Host>,
    pub incidents: Vec<Incident>,
    pub policy_changes: Vec<PolicyChange>,
    /// The policy version in force at the end of the month (or now).
    pub policy_version: Option<i64>,
    /// That version's site exceptions: (entry, allow|block).
    pub exceptions: Vec<(String, String)>,
    pub patterns: PatternHealth,
    /// The three months before, oldest first.
    pub trend: Vec<(Month, Past)>,
    pub live: Live,
}

impl Report {
    /// The month had ended when the report was made.
    pub fn complete(&self) -> bool {
        self.generated >= self.month.end()
    }
    pub fn blocked(&self) -> i64 {
        blocked(&self.totals)
    }
    pub fn get(&self, f: Func) -> i64 {
        self.totals[f.index()]
    }
}

pub fn blocked(c: &Counts) -> i64 {
    FUNCS
        .iter()
        .filter(|f| f.blocks())
        .map(|f| c[f.index()])
        .sum()
}

pub fn aggregate(c: &Connection, m: Month, now: i64, live: &Live) -> anyhow::Result<Report> {
    let (start, end) = (m.start(), m.end());
    let days = m.days() as usize;

    let (d0, d1) = (rollup::day_of(start), rollup::day_of(end));
    let (events, first_event, last_event, days_with_events): (i64, Option<i64>, Option<i64>, u32) =
        c.query_row(
            "SELECT coalesce(sum(n), 0), min(first_ts), max(last_ts), count(*) FROM day_events WHERE day >= ?1 AND day < ?2",
            params![d0, d1],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )?;

    let mut totals = [0i64; NF];
    let mut per_day = vec![[0i64; NF]; days];
    {
        let mut s = c.prepare_cached(
            "SELECT day - ?1, func, n FROM day_func WHERE day >= ?1 AND day < ?2",
        )?;
        let mut rows = s.query(params![d0, d1])?;
        while let Some(r) = rows.next()? {
            let (d, f, n): (i64, i64, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
            let Some(f) = usize::try_from(f).ok().filter(|&f| f < NF) else {
                continue;
            };
            totals[f] += n;
            if let Some(day) = usize::try_from(d).ok().and_then(|d| per_day.get_mut(d)) {
                day[f] += n;
            }
        }
    }

    let trend = trend(c, m)?;

    let categories = named(
        c,
        &format!(
            "SELECT category, sum(n), NULL, 0 FROM day_category
             WHERE day >= ?1 AND day < ?2 GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT {TOP_N}"
        ),
        d0,
        d1,
    )?;
    let sites = named(
        c,
        &format!(
            "SELECT site, sum(n), max(category), max(threat) FROM day_site
             WHERE day >= ?1 AND day < ?2 GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT {TOP_N}"
        ),
        d0,
        d1,
    )?;
    let signatures = signatures(c, d0, d1)?;
    let names = HostNames::load(c, end, live)?;
    let hosts = hosts(c, d0, d1, &names)?;
    let incidents = incidents(c, start, end, &names)?;
    let mut s = c.prepare(
        "SELECT version, created, actor, applied, note FROM policy WHERE created >= ?1 AND created < ?2 ORDER BY version",
    )?;
    let policy_changes = s
        .query_map(params![start, end], |r| {
            Ok(PolicyChange {
                version: r.get(0)?,
                created: r.get(1)?,
                actor: r.get(2)?,
                applied: r.get(3)?,
                note: r.get(4)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let policy_version: Option<i64> = c.query_row(
        "SELECT max(version) FROM policy WHERE created < ?1",
        params![end],
        |r| r.get(0),
    )?;
    let exceptions = match policy_version {
        Some(v) => {
            let doc: Option<String> = c
                .query_row(
                    "SELECT doc FROM policy WHERE version = ?1",
                    params![v],
                    |r| r.get(0),
                )
                .optional()?;
            doc.and_then(|d| serde_json::from_str::<crate::model::PolicyDoc>(&d).ok())
                .map(|d| {
                    d.exceptions
                        .into_iter()
                        .map(|e| (e.entry, e.action))
                        .collect()
                })
                .unwrap_or_default()
        }
        None => Vec::new(),
    };
    let patterns = pattern_health(c, start, end)?;
    let days_elapsed = if now >= end {
        m.days()
    } else {
        (((now - start).max(0) / 86_400) + 1).min(i64::from(m.days())) as u32
    };
    Ok(Report {
        month: m,
        generated: now,
        events,
        first_event,
        last_event,
        days_with_events,
        days_elapsed,
        totals,
        per_day,
        categories,
        sites,
        signatures,
        hosts,
        incidents,
        policy_changes,
        policy_version,
        exceptions,
        patterns,
        trend,
        live: live.clone(),
    })
}

fn pattern_health(c: &Connection, start: i64, end: i64) -> anyhow::Result<PatternHealth> {
    let bundles = |sql: &str, p: &[&dyn rusqlite::ToSql]| -> rusqlite::Result<Vec<Bundle>> {
        let mut s = c.prepare(sql)?;
        s.query_map(p, |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect()
    };
    let updates = bundles(
        "SELECT kind, version, imported FROM pattern_bundle
         WHERE imported >= ?1 AND imported < ?2 ORDER BY imported, id",
        &[&start, &end],
    )?;
    let newest = bundles(
        "SELECT kind, max(version), max(imported) FROM pattern_bundle
         WHERE imported < ?1 GROUP BY kind ORDER BY kind",
        &[&end],
    )?;
    let count = |state: &str| -> rusqlite::Result<i64> {
        c.query_row(
            "SELECT count(*) FROM event WHERE event_type = 'patterns' AND ts >= ?1 AND ts < ?2
               AND json_extract(raw, '$.patterns.state') = ?3",
            params![start, end, state],
            |r| r.get(0),
        )
    };
    Ok(PatternHealth {
        updates,
        newest,
        stale_warnings: count("stale")?,
        refused: count("refused")?,
    })
}

/// The three months before `m`: from the events where the store still holds the month,
/// else from the month's kept report.
fn trend(c: &Connection, m: Month) -> anyhow::Result<Vec<(Month, Past)>> {
    let months: Vec<Month> = (1..=3).rev().map(|i| m.plus(-i)).collect();
    let mut counts = [[0i64; NF]; 3];
    let mut s = c.prepare_cached(
        "SELECT CASE WHEN day >= ?3 THEN 2 WHEN day >= ?2 THEN 1 ELSE 0 END AS mi, func, sum(n)
         FROM day_func WHERE day >= ?1 AND day < ?4 GROUP BY mi, func",
    )?;
    let mut rows = s.query(params![
        rollup::day_of(months[0].start()),
        rollup::day_of(months[1].start()),
        rollup::day_of(months[2].start()),
        rollup::day_of(m.start())
    ])?;
    while let Some(r) = rows.next()? {
        let (mi, f, n): (i64, i64, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
        if let (Some(row), Some(f)) = (
            counts.get_mut(mi as usize),
            usize::try_from(f).ok().filter(|&f| f < NF),
        ) {
            row[f] += n;
        }
    }
    drop(rows);
    // The oldest day counted: a month that began before it has no counts of its start (the
    // box began then, or its events were pruned before the rollups existed).
    let oldest: Option<i64> =
        c.query_row("SELECT min(first_ts) FROM day_events", [], |r| r.get(0))?;
    let mut out = Vec::new();
    for (i, pm) in months.into_iter().enumerate() {
        let pruned = oldest.is_none_or(|o| o > pm.start());
        let kept = if pruned {
            super::stored_counts(c, pm)?
        } else {
            None
        };
        let past = match kept {
            Some(k) if k.len() == NF => {
                let mut a = [0i64; NF];
                a.copy_from_slice(&k);
                Past::Kept(a)
            }
            _ if !pruned => Past::Events(counts[i]),
            _ if oldest.is_some_and(|o| o < pm.end()) => Past::Partial(counts[i]),
            _ => Past::Unknown,
        };
        out.push((pm, past));
    }
    Ok(out)
}

/// A top-N over a rollup, days `d0..d1`.
fn named(c: &Connection, sql: &str, d0: i64, d1: i64) -> rusqlite::Result<Vec<Named>> {
    let mut s = c.prepare(sql)?;
    s.query_map(params![d0, d1], |r| {
        Ok(Named {
            name: r.get(0)?,
            count: r.get(1)?,
            detail: r.get(2)?,
            flag: r.get(3)?,
        })
    })?
    .collect()
}

fn signatures(c: &Connection, d0: i64, d1: i64) -> anyhow::Result<Vec<Signature>> {
    let mut s = c.prepare(&format!(
        "SELECT sid, sum(n), sum(dropped), max(last_id) FROM day_signature
         WHERE day >= ?1 AND day < ?2 GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT {TOP_N}"
    ))?;
    let top = s
        .query_map(params![d0, d1], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut raw = c.prepare("SELECT raw FROM event WHERE id = ?1")?;
    let mut out = Vec::new();
    for (sid, count, dropped, id) in top {
        let v: serde_json::Value = raw
            .query_row(params![id], |r| r.get::<_, String>(0))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        let s = |p: &str| {
            v.pointer(p)
                .and_then(|x| x.as_str())
                .unwrap_or("")
                .to_string()
        };
        out.push(Signature {
            sid,
            message: s("/alert/signature"),
            class: s("/alert/category"),
            severity: v.pointer("/alert/severity").and_then(|x| x.as_i64()),
            count,
            dropped,
        });
    }
    Ok(out)
}

/// DHCP host names and MACs of LAN hosts: from the quarantine events up to the month's end
/// (they carry both), then from what the running gateway knows.
#[derive(Default)]
pub struct HostNames {
    by_mac: HashMap<String, String>,
    mac_of_ip: HashMap<String, String>,
}

impl HostNames {
    fn load(c: &Connection, end: i64, live: &Live) -> rusqlite::Result<HostNames> {
        let mut h = HostNames::default();
        for (mac, ip, name) in &live.hosts {
            h.learn(Some(mac.clone()), Some(ip.clone()), Some(name.clone()));
        }
        // Events after the live table: the month's own names win.
        let mut s = c.prepare(
            "SELECT mac, src_ip, name FROM event WHERE event_type = 'host' AND ts < ?1 ORDER BY ts, id",
        )?;
        let mut rows = s.query(params![end])?;
        while let Some(r) = rows.next()? {
            h.learn(r.get(0)?, r.get(1)?, r.get(2)?);
        }
        Ok(h)
    }
    fn learn(&mut self, mac: Option<String>, ip: Option<String>, name: Option<String>) {
        let Some(mac) = mac
            .map(|m| m.to_ascii_lowercase())
            .filter(|m| !m.is_empty())
        else {
            return;
        };
        if let Some(n) = name.filter(|n| !n.is_empty()) {
            self.by_mac.insert(mac.clone(), n);
        }
        if let Some(ip) = ip.filter(|i| !i.is_empty()) {
            self.mac_of_ip.insert(ip, mac);
        }
    }
    fn name(&self, mac: Option<&str>, ip: Option<&str>) -> (Option<String>, Option<String>) {
        let mac = mac
            .map(str::to_ascii_lowercase)
            .or_else(|| ip.and_then(|i| self.mac_of_ip.get(i).cloned()));
        let name = mac.as_ref().and_then(|m| self.by_mac.get(m).cloned());
        (mac, name)
    }
}

fn hosts(c: &Connection, d0: i64, d1: i64, names: &HostNames) -> rusqlite::Result<Vec<Host>> {
    let mut s = c.prepare(&format!(
        "SELECT nullif(host, ''), sum(n), sum(threats), max(mac) FROM day_host
         WHERE day >= ?1 AND day < ?2 GROUP BY host ORDER BY 2 DESC, 1 LIMIT {TOP_N}"
    ))?;
    s.query_map(params![d0, d1], |r| {
        let ip: Option<String> = r.get(0)?;
        let mac: Option<String> = r.get(3)?;
        let (mac, hostname) = names.name(mac.as_deref(), ip.as_deref());
        Ok(Host {
            ip: ip.unwrap_or_default(),
            mac,
            hostname,
            count: r.get(1)?,
            threats: r.get(2)?,
        })
    })?
    .collect()
}

fn incidents(
    c: &Connection,
    start: i64,
    end: i64,
    names: &HostNames,
) -> anyhow::Result<Vec<Incident>> {
    let mut s = c.prepare(
        "SELECT ts, src_ip, mac, name, raw FROM event
         WHERE event_type = 'host' AND action = 'quarantined' AND ts >= ?1 AND ts < ?2 ORDER BY ts, id",
    )?;
    let mut out: Vec<Incident> = s
        .query_map(params![start, end], |r| {
            let raw: String = r.get(4)?;
            let v: serde_json::Value = serde_json::from_str(&raw).unwrap_or_default();
            let ip: Option<String> = r.get(1)?;
            let mac: Option<String> = r.get(2)?;
            let (mac, known) = names.name(mac.as_deref(), ip.as_deref());
            let name: Option<String> = r.get::<_, Option<String>>(3)?.filter(|n| !n.is_empty());
            Ok(Incident {
                ts: r.get(0)?,
                ip,
                mac,
                hostname: name.or(known),
                callbacks: v.pointer("/host/callbacks").and_then(|x| x.as_i64()),
                released: None,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut s = c.prepare(
        "SELECT ts, actor, target FROM audit WHERE action = 'release from quarantine' AND ts >= ?1 AND ts < ?2 ORDER BY ts, id",
    )?;
    let releases = s
        .query_map(params![start, end], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?.to_ascii_lowercase(),
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for i in &mut out {
        i.released = releases
            .iter()
            .find(|(ts, _, mac)| *ts >= i.ts && Some(mac) == i.mac.as_ref())
            .map(|(ts, actor, _)| (*ts, actor.clone()));
    }
    Ok(out)
}

/// The Japan-time date and time of an instant: (year, month, day, hour, minute).
pub fn jst(ts: i64) -> (i64, u32, u32, u32, u32) {
    let t = ts + JST;
    let (y, m, d) = crate::events::civil_from_days(t.div_euclid(86_400));
    let s = t.rem_euclid(86_400);
    (y, m, d, (s / 3600) as u32, ((s % 3600) / 60) as u32)
}

#[cfg(test)]
pub(crate) mod tests;

//! Per-day counts of what the report shows, kept at intake: every batch the writer commits
//! adds its rows' counts here in the same transaction (`Batch`: counted in memory from the
//! rows being inserted, then one upsert per key), so a month's report reads a few thousand
//! rows whatever the month's size, and the counts outlive the events' retention.
//!
//! `Batch::func` is the report's classification (`aggregate::FN_SQL`) written in Rust; the
//! SQL form fills the rollups from stored events when a store is migrated
//! (`add_from_events`), and the tests hold the two to the same counts.
//!
//! A day is the Japan-time calendar day: `(ts + JST) / 86400`.

use super::aggregate::{CANDIDATES, FN_SQL};
use crate::events::Row;
use rusqlite::{Connection, params};
use std::collections::HashMap;

/// Migration 10: the tables, then the counts of the events already stored.
pub const TABLES: &str = "
CREATE TABLE day_events (day INTEGER PRIMARY KEY, n INTEGER NOT NULL, first_ts INTEGER NOT NULL, last_ts INTEGER NOT NULL);
CREATE TABLE day_func (day INTEGER NOT NULL, func INTEGER NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (day, func)) WITHOUT ROWID;
CREATE TABLE day_category (day INTEGER NOT NULL, category TEXT NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (day, category)) WITHOUT ROWID;
CREATE TABLE day_site (day INTEGER NOT NULL, site TEXT NOT NULL, n INTEGER NOT NULL, category TEXT, threat INTEGER NOT NULL,
    PRIMARY KEY (day, site)) WITHOUT ROWID;
CREATE TABLE day_signature (day INTEGER NOT NULL, sid INTEGER NOT NULL, n INTEGER NOT NULL, dropped INTEGER NOT NULL,
    last_id INTEGER NOT NULL, PRIMARY KEY (day, sid)) WITHOUT ROWID;
CREATE TABLE day_host (day INTEGER NOT NULL, host TEXT NOT NULL, n INTEGER NOT NULL, threats INTEGER NOT NULL, mac TEXT,
    PRIMARY KEY (day, host)) WITHOUT ROWID;
";

/// Rollups older than this are deleted with the retention pass: 13 months of reports and
/// their 3-month trend need 16.
pub const KEEP_DAYS: i64 = 490;

const DAY: &str = "(ts + 32400) / 86400";

const SITE_UPSERT: &str = "ON CONFLICT (day, site) DO UPDATE SET n = n + excluded.n,
    category = coalesce(max(category, excluded.category), category, excluded.category),
    threat = max(threat, excluded.threat)";
const SIGNATURE_UPSERT: &str = "ON CONFLICT (day, sid) DO UPDATE SET n = n + excluded.n,
    dropped = dropped + excluded.dropped, last_id = max(last_id, excluded.last_id)";
const HOST_UPSERT: &str = "ON CONFLICT (day, host) DO UPDATE SET n = n + excluded.n,
    threats = threats + excluded.threats, mac = coalesce(max(mac, excluded.mac), mac, excluded.mac)";

/// Built once: the statements are cached per connection by their text.
static STATEMENTS: std::sync::LazyLock<[String; 6]> = std::sync::LazyLock::new(statements);

fn statements() -> [String; 6] {
    let range = "id BETWEEN ?1 AND ?2";
    [
        format!(
            "INSERT INTO day_events (day, n, first_ts, last_ts)
             SELECT {DAY}, count(*), min(ts), max(ts) FROM event WHERE {range} GROUP BY 1
             ON CONFLICT (day) DO UPDATE SET n = n + excluded.n,
               first_ts = min(first_ts, excluded.first_ts), last_ts = max(last_ts, excluded.last_ts)"
        ),
        format!(
            "INSERT INTO day_func (day, func, n)
             SELECT {DAY}, f, count(*) FROM (SELECT ts, {FN_SQL} AS f FROM event WHERE {range} AND {CANDIDATES})
             WHERE f IS NOT NULL GROUP BY 1, 2
             ON CONFLICT (day, func) DO UPDATE SET n = n + excluded.n"
        ),
        format!(
            "INSERT INTO day_category (day, category, n)
             SELECT {DAY}, coalesce(category, ''), count(*) FROM event
             WHERE {range} AND event_type = 'web' AND action IN ('blocked', 'sinkholed') GROUP BY 1, 2
             ON CONFLICT (day, category) DO UPDATE SET n = n + excluded.n"
        ),
        format!(
            "INSERT INTO day_site (day, site, n, category, threat)
             SELECT {DAY}, coalesce(name, ''), count(*), max(category), coalesce(max(threat), 0) FROM event
             WHERE {range} AND event_type = 'web' AND action IN ('blocked', 'sinkholed', 'quarantined') GROUP BY 1, 2
             {SITE_UPSERT}"
        ),
        format!(
            "INSERT INTO day_signature (day, sid, n, dropped, last_id)
             SELECT {DAY}, coalesce(sid, 0), count(*), sum(action = 'blocked'), max(id) FROM event
             WHERE {range} AND event_type = 'alert' AND action IN ('blocked', 'allowed') AND coalesce(gid, 1) != 9
             GROUP BY 1, 2 {SIGNATURE_UPSERT}"
        ),
        // The LAN host is the source of what came in on the LAN side, else the destination.
        format!(
            "INSERT INTO day_host (day, host, n, threats, mac)
             SELECT {DAY}, h, count(*), sum(f IN (0, 1)), max(mac) FROM (
               SELECT ts, coalesce(CASE WHEN iface = 'wan' THEN dest_ip ELSE src_ip END, '') AS h, mac, {FN_SQL} AS f
               FROM event WHERE {range} AND {CANDIDATES})
             WHERE f IS NOT NULL GROUP BY 1, 2 {HOST_UPSERT}"
        ),
    ]
}

/// Adds the counts of the stored events with ids `first..=last`, by the report's SQL (a
/// store migrated to the rollups; the tests' reference).
pub fn add_from_events(c: &Connection, first: i64, last: i64) -> rusqlite::Result<()> {
    if first > last {
        return Ok(());
    }
    for sql in STATEMENTS.iter() {
        c.prepare_cached(sql)?.execute(params![first, last])?;
    }
    Ok(())
}

/// Deletes the rollups of days before `before_ts`.
pub fn prune(c: &Connection, before_ts: i64) -> rusqlite::Result<usize> {
    let day = (before_ts + super::JST).div_euclid(86_400);
    let mut n = 0;
    for t in [
        "day_events",
        "day_func",
        "day_category",
        "day_site",
        "day_signature",
        "day_host",
    ] {
        n += c.execute(&format!("DELETE FROM {t} WHERE day < ?1"), [day])?;
    }
    Ok(n)
}

/// The Japan-time day number of an instant.
pub fn day_of(ts: i64) -> i64 {
    (ts + super::JST).div_euclid(86_400)
}

/// The counts of rows being inserted, keyed as the rollup tables are.
#[derive(Default)]
pub struct Batch {
    events: HashMap<i64, (i64, i64, i64)>,
    func: HashMap<(i64, usize), i64>,
    category: HashMap<(i64, String), i64>,
    site: HashMap<(i64, String), (i64, Option<String>, bool)>,
    signature: HashMap<(i64, i64), (i64, i64, i64)>,
    host: HashMap<(i64, String), (i64, i64, Option<String>)>,
}

fn max_opt(a: &mut Option<String>, b: &Option<String>) {
    if b.is_some() && (a.is_none() || b > a) {
        a.clone_from(b);
    }
}

impl Batch {
    /// What the report counts an event as (`aggregate::Func` indexes; `FN_SQL` in Rust).
    pub fn func(r: &Row) -> Option<usize> {
        let action = r.action.as_deref()?;
        match r.event_type.as_str() {
            "web" if action == "quarantined" => Some(1),
            "web" if matches!(action, "blocked" | "sinkholed") => {
                Some(if r.category.as_deref() == Some("c2") {
                    1
                } else if r.threat == Some(true) {
                    0
                } else {
                    4
                })
            }
            "alert" if r.gid.unwrap_or(1) != 9 => match action {
                "blocked" => Some(2),
                "allowed" => Some(3),
                _ => None,
            },
            "alert" if action == "blocked" => Some(5),
            _ => None,
        }
    }

    /// Counts one inserted row (`id`: its rowid).
    pub fn count(&mut self, r: &Row, id: i64) {
        let day = day_of(r.ts);
        let e = self.events.entry(day).or_insert((0, r.ts, r.ts));
        *e = (e.0 + 1, e.1.min(r.ts), e.2.max(r.ts));
        let action = r.action.as_deref().unwrap_or("");
        let web_block = r.event_type == "web" && matches!(action, "blocked" | "sinkholed");
        if web_block {
            *self
                .category
                .entry((day, r.category.clone().unwrap_or_default()))
                .or_default() += 1;
        }
        if web_block || (r.event_type == "web" && action == "quarantined") {
            let s = self
                .site
                .entry((day, r.name.clone().unwrap_or_default()))
                .or_insert((0, None, false));
            s.0 += 1;
            max_opt(&mut s.1, &r.category);
            s.2 |= r.threat == Some(true);
        }
        if r.event_type == "alert"
            && r.gid.unwrap_or(1) != 9
            && matches!(action, "blocked" | "allowed")
        {
            let s = self.signature.entry((day, r.sid.unwrap_or(0))).or_default();
            *s = (s.0 + 1, s.1 + i64::from(action == "blocked"), s.2.max(id));
        }
        let Some(f) = Self::func(r) else { return };
        *self.func.entry((day, f)).or_default() += 1;
        let lan = if r.iface.as_deref() == Some("wan") {
            &r.dest_ip
        } else {
            &r.src_ip
        };
        let h = self
            .host
            .entry((day, lan.clone().unwrap_or_default()))
            .or_insert((0, 0, None));
        h.0 += 1;
        h.1 += i64::from(f <= 1);
        max_opt(&mut h.2, &r.mac);
    }

    /// Adds the counts to the rollups (the caller holds the transaction).
    pub fn write(&self, c: &Connection) -> rusqlite::Result<()> {
        let mut s = c.prepare_cached(
            "INSERT INTO day_events (day, n, first_ts, last_ts) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (day) DO UPDATE SET n = n + excluded.n,
               first_ts = min(first_ts, excluded.first_ts), last_ts = max(last_ts, excluded.last_ts)",
        )?;
        for (day, (n, first, last)) in &self.events {
            s.execute(params![day, n, first, last])?;
        }
        let mut s = c.prepare_cached(
            "INSERT INTO day_func (day, func, n) VALUES (?1, ?2, ?3)
             ON CONFLICT (day, func) DO UPDATE SET n = n + excluded.n",
        )?;
        for ((day, f), n) in &self.func {
            s.execute(params![day, *f as i64, n])?;
        }
        let mut s = c.prepare_cached(
            "INSERT INTO day_category (day, category, n) VALUES (?1, ?2, ?3)
             ON CONFLICT (day, category) DO UPDATE SET n = n + excluded.n",
        )?;
        for ((day, cat), n) in &self.category {
            s.execute(params![day, cat, n])?;
        }
        let mut s = c.prepare_cached(&format!("INSERT INTO day_site (day, site, n, category, threat) VALUES (?1, ?2, ?3, ?4, ?5) {SITE_UPSERT}"))?;
        for ((day, site), (n, cat, threat)) in &self.site {
            s.execute(params![day, site, n, cat, *threat as i64])?;
        }
        let mut s = c.prepare_cached(&format!("INSERT INTO day_signature (day, sid, n, dropped, last_id) VALUES (?1, ?2, ?3, ?4, ?5) {SIGNATURE_UPSERT}"))?;
        for ((day, sid), (n, dropped, last)) in &self.signature {
            s.execute(params![day, sid, n, dropped, last])?;
        }
        let mut s = c.prepare_cached(&format!("INSERT INTO day_host (day, host, n, threats, mac) VALUES (?1, ?2, ?3, ?4, ?5) {HOST_UPSERT}"))?;
        for ((day, host), (n, threats, mac)) in &self.host {
            s.execute(params![day, host, n, threats, mac])?;
        }
        Ok(())
    }
}

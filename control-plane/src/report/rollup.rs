//! Per-day counts of what the report shows, kept at intake: every batch the writer commits
//! adds its own rows' counts here in the same transaction (`add`, one `INSERT … SELECT …
//! GROUP BY … ON CONFLICT DO UPDATE` per table over the batch's id range), so a month's
//! report reads a few thousand rows whatever the month's size, and the counts outlive the
//! events' retention. The classification is the report's own SQL (`aggregate::FN_SQL`),
//! so the rollups and a query over the raw events cannot disagree.
//!
//! A day is the Japan-time calendar day: `(ts + JST) / 86400`.

use super::aggregate::{CANDIDATES, FN_SQL};
use rusqlite::{Connection, params};

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
             ON CONFLICT (day, site) DO UPDATE SET n = n + excluded.n,
               category = coalesce(max(category, excluded.category), category, excluded.category),
               threat = max(threat, excluded.threat)"
        ),
        format!(
            "INSERT INTO day_signature (day, sid, n, dropped, last_id)
             SELECT {DAY}, coalesce(sid, 0), count(*), sum(action = 'blocked'), max(id) FROM event
             WHERE {range} AND event_type = 'alert' AND action IN ('blocked', 'allowed') AND coalesce(gid, 1) != 9
             GROUP BY 1, 2
             ON CONFLICT (day, sid) DO UPDATE SET n = n + excluded.n, dropped = dropped + excluded.dropped,
               last_id = max(last_id, excluded.last_id)"
        ),
        // The LAN host is the source of what came in on the LAN side, else the destination.
        format!(
            "INSERT INTO day_host (day, host, n, threats, mac)
             SELECT {DAY}, h, count(*), sum(f IN (0, 1)), max(mac) FROM (
               SELECT ts, coalesce(CASE WHEN iface = 'wan' THEN dest_ip ELSE src_ip END, '') AS h, mac, {FN_SQL} AS f
               FROM event WHERE {range} AND {CANDIDATES})
             WHERE f IS NOT NULL GROUP BY 1, 2
             ON CONFLICT (day, host) DO UPDATE SET n = n + excluded.n, threats = threats + excluded.threats,
               mac = coalesce(max(mac, excluded.mac), mac, excluded.mac)"
        ),
    ]
}

/// Adds the counts of the events with ids `first..=last` (the caller holds the
/// transaction that inserted them).
pub fn add(c: &Connection, first: i64, last: i64) -> rusqlite::Result<()> {
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

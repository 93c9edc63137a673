//! The event store: EVE lines from the gateway, written in batches by one thread (one
//! transaction per batch keeps SQLite far above the intake target), queried by the API,
//! aggregated per hour, and pruned by age.

use rusqlite::{Connection, ToSql, params_from_iter};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

#[derive(Default)]
pub struct IntakeCounters {
    /// Lines received from the gateway.
    pub received: AtomicU64,
    pub stored: AtomicU64,
    /// Lines that were not EVE JSON (counted, not stored).
    pub malformed: AtomicU64,
    /// Lines dropped because the writer was behind and its queue full.
    pub dropped: AtomicU64,
    /// Numbered lines already committed (a sender resending after a cut): skipped.
    pub duplicates: AtomicU64,
    pub pruned: AtomicU64,
}

/// One event, as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub ts: i64,
    pub event_type: String,
    pub src_ip: Option<String>,
    pub dest_ip: Option<String>,
    pub src_port: Option<i64>,
    pub dest_port: Option<i64>,
    pub proto: Option<String>,
    pub action: Option<String>,
    pub category: Option<String>,
    pub sid: Option<i64>,
    pub name: Option<String>,
    /// The alert's generator (9: the firewall).
    pub gid: Option<i64>,
    /// A web event whose category is a threat (malware, phishing, C&C, …).
    pub threat: Option<bool>,
    /// The LAN host's MAC, where the event carries it (web `src_mac`, host `mac`).
    pub mac: Option<String>,
    /// The side the packet came in on (`lan`, `wan`).
    pub iface: Option<String>,
    #[serde(skip)]
    pub raw: String,
}

/// Reads the fields we index out of an EVE line. `None` when it is not EVE JSON.
pub fn row_of(line: &str) -> Option<Row> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let s = |p: &str| v.pointer(p).and_then(|x| x.as_str()).map(str::to_string);
    let n = |p: &str| v.pointer(p).and_then(|x| x.as_i64());
    let event_type = s("/event_type")?;
    let ts = eve_epoch(v.get("timestamp")?.as_str()?)?;
    Some(Row {
        ts,
        src_ip: s("/src_ip"),
        dest_ip: s("/dest_ip"),
        src_port: n("/src_port"),
        dest_port: n("/dest_port"),
        proto: s("/proto"),
        action: s("/alert/action")
            .or(s("/web/action"))
            .or(s("/flow/action"))
            .or(s("/host/state")),
        category: s("/web/category").or(s("/alert/category")),
        sid: n("/alert/signature_id"),
        name: s("/web/name").or(s("/host/hostname")),
        gid: n("/alert/gid"),
        threat: v.pointer("/web/threat").and_then(|x| x.as_bool()),
        mac: s("/web/src_mac").or(s("/host/mac")),
        iface: s("/in_iface"),
        event_type,
        raw: line.to_string(),
    })
}

/// `2026-11-26T16:00:00.336353+0000` → Unix seconds (the offset applied).
pub fn eve_epoch(t: &str) -> Option<i64> {
    let b = t.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> { t.get(r)?.parse().ok() };
    if b.len() < 19 || b[4] != b'-' || b[10] != b'T' {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let off = match t.rfind(['+', '-']).filter(|&i| i > 18) {
        Some(i) => {
            let sign = if b[i] == b'-' { -1 } else { 1 };
            let hh = num(i + 1..i + 3)?;
            let mm = num(i + 3..i + 5).unwrap_or(0);
            sign * (hh * 3600 + mm * 60)
        }
        None => 0,
    };
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se - off)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, mo: i64, d: i64) -> i64 {
    let (y, m) = if mo <= 2 {
        (y - 1, mo + 9)
    } else {
        (y, mo - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number (the inverse of `days_from_civil`).
pub use mimamori_pipelines::event::civil_from_days;

/// One queued event: a row (none for a numbered line that was not EVE JSON, which still
/// moves its sender's number) and, on the acknowledged stream, its sender and number.
struct Item {
    row: Option<Row>,
    seq: Option<(Arc<str>, u64)>,
}

/// The last number committed per sender, published after each commit.
#[derive(Default)]
pub struct Committed {
    map: Mutex<HashMap<Arc<str>, u64>>,
    moved: Condvar,
}

impl Committed {
    pub fn get(&self, source: &str) -> u64 {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(source)
            .copied()
            .unwrap_or(0)
    }

    /// Waits until `source` is past `seen` (or `timeout`); returns its number.
    pub fn wait_past(&self, source: &str, seen: u64, timeout: Duration) -> u64 {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let (map, _) = self
            .moved
            .wait_timeout_while(map, timeout, |m| {
                m.get(source).copied().unwrap_or(0) <= seen
            })
            .unwrap_or_else(|e| e.into_inner());
        map.get(source).copied().unwrap_or(0)
    }

    fn publish(&self, done: &HashMap<Arc<str>, u64>) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        for (k, v) in done {
            let e = map.entry(k.clone()).or_insert(0);
            *e = (*e).max(*v);
        }
        self.moved.notify_all();
    }
}

/// The writer: a bounded queue in front of one SQLite connection.
pub struct EventStore {
    tx: SyncSender<Item>,
    pub counters: Arc<IntakeCounters>,
    pub committed: Arc<Committed>,
    path: PathBuf,
}

const BATCH: usize = 2048;

impl EventStore {
    pub fn start(
        path: &Path,
        queue: usize,
    ) -> anyhow::Result<(EventStore, std::thread::JoinHandle<()>)> {
        let conn = crate::db::open(path)?;
        // The writer's indexes stay in memory: the default 2 MB cache made intake slow
        // down as the table grew (35 k/s at 500 k events, 56 k/s at 200 k).
        conn.pragma_update(None, "cache_size", -131_072)?;
        conn.pragma_update(None, "wal_autocheckpoint", 10_000)?;
        let counters = Arc::new(IntakeCounters::default());
        let committed = Arc::new(Committed::default());
        {
            let mut s = conn.prepare("SELECT source, seq FROM stream_state")?;
            let rows = s.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
            let mut map = HashMap::new();
            for r in rows {
                let (source, seq) = r?;
                map.insert(Arc::<str>::from(source), seq.max(0) as u64);
            }
            committed.publish(&map);
        }
        let (tx, rx) = sync_channel(queue);
        let (c, k) = (counters.clone(), committed.clone());
        let h = std::thread::Builder::new()
            .name("event-writer".into())
            .spawn(move || writer(conn, rx, c, k))?;
        Ok((
            EventStore {
                tx,
                counters,
                committed,
                path: path.to_path_buf(),
            },
            h,
        ))
    }

    /// Queues one EVE line; never blocks (a full queue drops and counts).
    pub fn offer(&self, line: &str) {
        self.counters.received.fetch_add(1, Relaxed);
        match row_of(line) {
            None => {
                self.counters.malformed.fetch_add(1, Relaxed);
            }
            Some(row) => {
                let item = Item {
                    row: Some(row),
                    seq: None,
                };
                if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
                    self.tx.try_send(item)
                {
                    self.counters.dropped.fetch_add(1, Relaxed);
                }
            }
        }
    }

    /// Queues one EVE line, waiting while the writer is behind (the gateway's socket
    /// then pushes back, and its own bounded queue counts what it cannot hold).
    pub fn put(&self, line: &str) -> bool {
        self.counters.received.fetch_add(1, Relaxed);
        match row_of(line) {
            None => {
                self.counters.malformed.fetch_add(1, Relaxed);
                true
            }
            Some(row) => self
                .tx
                .send(Item {
                    row: Some(row),
                    seq: None,
                })
                .is_ok(),
        }
    }

    /// Queues numbered line `seq` of `source`'s acknowledged stream, waiting while the
    /// writer is behind. A number already committed is skipped there (counted).
    pub fn put_numbered(&self, source: &Arc<str>, seq: u64, line: &str) -> bool {
        self.counters.received.fetch_add(1, Relaxed);
        let row = row_of(line);
        if row.is_none() {
            self.counters.malformed.fetch_add(1, Relaxed);
        }
        self.tx
            .send(Item {
                row,
                seq: Some((source.clone(), seq)),
            })
            .is_ok()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn writer(
    mut conn: Connection,
    rx: Receiver<Item>,
    c: Arc<IntakeCounters>,
    committed: Arc<Committed>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut done: HashMap<Arc<str>, u64> = HashMap::new();
    while let Ok(first) = rx.recv() {
        batch.push(first);
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        // Numbered lines at or below their sender's committed number are resends.
        done.clear();
        let mut dupes = 0u64;
        batch.retain(|it: &Item| match &it.seq {
            None => true,
            Some((src, seq)) => {
                let have = done.get(src).copied().unwrap_or_else(|| committed.get(src));
                if *seq <= have {
                    dupes += 1;
                    return false;
                }
                done.insert(src.clone(), *seq);
                true
            }
        });
        c.duplicates.fetch_add(dupes, Relaxed);
        let n = batch.iter().filter(|it| it.row.is_some()).count() as u64;
        let ok = (|| -> rusqlite::Result<()> {
            let tx = conn.transaction()?;
            insert(&tx, batch.iter().filter_map(|it| it.row.as_ref()))?;
            {
                let mut st = tx.prepare_cached(
                    "INSERT INTO stream_state (source, seq) VALUES (?1, ?2)
                     ON CONFLICT(source) DO UPDATE SET seq = excluded.seq",
                )?;
                for (src, seq) in &done {
                    st.execute(rusqlite::params![&**src, *seq as i64])?;
                }
            }
            tx.commit()
        })();
        match ok {
            Ok(()) => {
                c.stored.fetch_add(n, Relaxed);
                committed.publish(&done);
            }
            Err(e) => {
                eprintln!("mimamori-cp: storing {n} events failed: {e}");
                c.dropped.fetch_add(n, Relaxed);
            }
        }
        batch.clear();
    }
}

/// Inserts rows (the caller holds the transaction).
pub fn insert<'a>(c: &Connection, rows: impl IntoIterator<Item = &'a Row>) -> rusqlite::Result<()> {
    let mut s = c.prepare_cached(
        "INSERT INTO event (ts, event_type, src_ip, dest_ip, src_port, dest_port, proto, action, category, sid, name, gid, threat, mac, iface, raw)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
    )?;
    let mut rollup = crate::report::rollup::Batch::default();
    for r in rows {
        s.execute(rusqlite::params![
            r.ts,
            r.event_type,
            r.src_ip,
            r.dest_ip,
            r.src_port,
            r.dest_port,
            r.proto,
            r.action,
            r.category,
            r.sid,
            r.name,
            r.gid,
            r.threat,
            r.mac,
            r.iface,
            r.raw
        ])?;
        rollup.count(r, c.last_insert_rowid());
    }
    // The report's per-day counts of these rows, in the same transaction.
    rollup.write(c)
}

/// Filters of the events query; every one optional.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Query {
    /// Unix seconds, inclusive.
    pub from: Option<i64>,
    /// Unix seconds, exclusive.
    pub to: Option<i64>,
    /// An address (source or destination).
    pub host: Option<String>,
    #[serde(rename = "type")]
    pub event_type: Option<String>,
    pub category: Option<String>,
    pub sid: Option<i64>,
    pub action: Option<String>,
    pub limit: Option<i64>,
}

impl Query {
    fn clause(&self) -> (String, Vec<Box<dyn ToSql>>) {
        let mut w = vec!["1=1".to_string()];
        let mut p: Vec<Box<dyn ToSql>> = Vec::new();
        let mut add = |sql: &str, v: Box<dyn ToSql>| {
            p.push(v);
            w.push(sql.replace('?', &format!("?{}", p.len())));
        };
        if let Some(v) = self.from {
            add("ts >= ?", Box::new(v));
        }
        if let Some(v) = self.to {
            add("ts < ?", Box::new(v));
        }
        if let Some(v) = &self.host {
            add("(src_ip = ? OR dest_ip = ?)", Box::new(v.clone()));
        }
        if let Some(v) = &self.event_type {
            add("event_type = ?", Box::new(v.clone()));
        }
        if let Some(v) = &self.category {
            add("category = ?", Box::new(v.clone()));
        }
        if let Some(v) = self.sid {
            add("sid = ?", Box::new(v));
        }
        if let Some(v) = &self.action {
            add("action = ?", Box::new(v.clone()));
        }
        (w.join(" AND "), p)
    }
}

pub fn query(c: &Connection, q: &Query) -> rusqlite::Result<Vec<serde_json::Value>> {
    let (wh, p) = q.clause();
    let limit = q.limit.unwrap_or(100).clamp(1, 10_000);
    let sql = format!("SELECT raw FROM event WHERE {wh} ORDER BY ts DESC, id DESC LIMIT {limit}");
    let mut s = c.prepare(&sql)?;
    let rows = s.query_map(params_from_iter(p.iter().map(|b| b.as_ref())), |r| {
        r.get::<_, String>(0)
    })?;
    rows.map(|r| r.map(|raw| serde_json::from_str(&raw).unwrap_or(serde_json::Value::String(raw))))
        .collect()
}

#[derive(Serialize, Debug, PartialEq)]
pub struct Hourly {
    /// Start of the hour, Unix seconds.
    pub hour: i64,
    pub event_type: String,
    pub action: Option<String>,
    pub count: i64,
}

pub fn hourly(c: &Connection, q: &Query) -> rusqlite::Result<Vec<Hourly>> {
    let (wh, p) = q.clause();
    let sql = format!(
        "SELECT (ts / 3600) * 3600 AS hour, event_type, action, count(*) FROM event WHERE {wh}
         GROUP BY hour, event_type, action ORDER BY hour, event_type, action"
    );
    let mut s = c.prepare(&sql)?;
    let rows = s.query_map(params_from_iter(p.iter().map(|b| b.as_ref())), |r| {
        Ok(Hourly {
            hour: r.get(0)?,
            event_type: r.get(1)?,
            action: r.get(2)?,
            count: r.get(3)?,
        })
    })?;
    rows.collect()
}

/// Deletes events older than `days`; returns how many.
/// The report's rollups outlive the events, up to `rollup::KEEP_DAYS`.
pub fn prune(c: &Connection, days: u32, now: i64) -> rusqlite::Result<usize> {
    crate::report::rollup::prune(c, now - crate::report::rollup::KEEP_DAYS * 86_400)?;
    c.execute(
        "DELETE FROM event WHERE ts < ?1",
        [now - i64::from(days) * 86_400],
    )
}

/// Runs `prune` every `every` until the process ends.
pub fn spawn_retention(path: PathBuf, days: u32, every: Duration, c: Arc<IntakeCounters>) {
    std::thread::spawn(move || {
        let Ok(conn) = crate::db::open(&path) else {
            return;
        };
        loop {
            if let Ok(n) = prune(&conn, days, crate::db::now()) {
                c.pruned.fetch_add(n as u64, Relaxed);
            }
            std::thread::sleep(every);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eve_times() {
        assert_eq!(eve_epoch("1970-01-01T00:00:00.000000+0000"), Some(0));
        assert_eq!(
            eve_epoch("2026-11-26T16:00:00.336353+0000"),
            Some(1_795_708_800)
        );
        assert_eq!(
            eve_epoch("2026-11-27T01:00:00.000000+0900"),
            Some(1_795_708_800)
        );
        assert_eq!(eve_epoch("2026-13-01T00:00:00"), None);
        assert_eq!(eve_epoch("nonsense"), None);
    }
}

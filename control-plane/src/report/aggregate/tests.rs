//! The aggregation's tests and the synthetic events other report tests share.

use super::*;
use crate::events::{Row, row_of};

/// EVE lines of the kinds the gateway writes.
pub fn web(
    ts: &str,
    action: &str,
    name: &str,
    cat: &str,
    threat: bool,
    ip: &str,
    mac: &str,
) -> String {
    format!(
        r#"{{"timestamp":"{ts}","flow_id":1,"in_iface":"lan","event_type":"web","src_ip":"{ip}","src_port":50000,"dest_ip":"203.0.113.5","dest_port":443,"proto":"TCP","web":{{"action":"{action}","via":"tls-sni","name":"{name}","category":"{cat}","list":"t","exception":false,"threat":{threat},"group":"default","src_mac":"{mac}"}}}}"#
    )
}
/// An alert's fields; `at` writes its EVE line at a time.
pub struct Alert<'a> {
    pub gid: u32,
    pub sid: u32,
    pub action: &'a str,
    pub msg: &'a str,
    pub iface: &'a str,
    pub src: &'a str,
    pub dst: &'a str,
}

impl Alert<'_> {
    pub fn at(&self, ts: &str) -> String {
        let Alert {
            gid,
            sid,
            action,
            msg,
            iface,
            src,
            dst,
        } = self;
        format!(
            r#"{{"timestamp":"{ts}","flow_id":2,"in_iface":"{iface}","event_type":"alert","src_ip":"{src}","src_port":1234,"dest_ip":"{dst}","dest_port":80,"proto":"TCP","alert":{{"action":"{action}","gid":{gid},"signature_id":{sid},"rev":1,"signature":"{msg}","category":"Attempted Administrator Privilege Gain","severity":1}}}}"#
        )
    }
}
pub fn host(ts: &str, mac: &str, hostname: &str, ip: &str) -> String {
    format!(
        r#"{{"timestamp":"{ts}","flow_id":3,"in_iface":"lan","event_type":"host","src_ip":"{ip}","src_port":0,"dest_ip":"203.0.113.9","dest_port":443,"proto":"TCP","host":{{"state":"quarantined","mac":"{mac}","hostname":"{hostname}","client_id":"","callbacks":42}}}}"#
    )
}
pub fn flow(ts: &str) -> String {
    format!(
        r#"{{"timestamp":"{ts}","flow_id":4,"in_iface":"lan","event_type":"flow","src_ip":"198.18.0.30","src_port":1,"dest_ip":"203.0.113.1","dest_port":443,"proto":"TCP","flow":{{"action":"allow"}}}}"#
    )
}

pub fn insert(c: &Connection, lines: &[String]) {
    let rows: Vec<Row> = lines.iter().map(|l| row_of(l).expect(l)).collect();
    crate::events::insert(c, &rows).unwrap();
}

pub fn db() -> Connection {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "mimamori-report-unit-{}-{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    crate::db::open(&dir.join("cp.db")).unwrap()
}

/// A small month: 2026-11 in Japan time, with events either side of its edges.
pub fn sample() -> Vec<String> {
    let a = "198.18.0.10";
    let b = "198.18.0.11";
    let (ma, mb) = ("02:00:00:00:00:0a", "02:00:00:00:00:0b");
    let mut v = vec![
        // Before the month in Japan (2026-10-31 23:59 JST), and after it (12-01 00:30 JST).
        web(
            "2026-10-31T14:59:00+0000",
            "blocked",
            "early.test",
            "phishing",
            true,
            a,
            ma,
        ),
        web(
            "2026-11-30T15:30:00+0000",
            "blocked",
            "late.test",
            "phishing",
            true,
            a,
            ma,
        ),
        // In the month: the first minute (11-01 00:00 JST) and the last (11-30 23:59 JST).
        web(
            "2026-10-31T15:00:00+0000",
            "blocked",
            "phish.test",
            "phishing",
            true,
            a,
            ma,
        ),
        web(
            "2026-11-30T14:59:59+0000",
            "sinkholed",
            "phish.test",
            "phishing",
            true,
            b,
            mb,
        ),
        web(
            "2026-11-10T01:00:00+0000",
            "blocked",
            "evil-c2.test",
            "c2",
            true,
            a,
            ma,
        ),
        web(
            "2026-11-10T02:00:00+0000",
            "quarantined",
            "any.test",
            "",
            false,
            a,
            ma,
        ),
        web(
            "2026-11-12T03:00:00+0000",
            "monitored",
            "watched.test",
            "news",
            false,
            b,
            mb,
        ),
        Alert {
            gid: 1,
            sid: 2_000_001,
            action: "blocked",
            msg: "ET EXPLOIT <script>x</script>",
            iface: "wan",
            src: "192.0.2.7",
            dst: b,
        }
        .at("2026-11-05T03:00:00+0000"),
        Alert {
            gid: 1,
            sid: 2_000_001,
            action: "blocked",
            msg: "ET EXPLOIT <script>x</script>",
            iface: "wan",
            src: "192.0.2.7",
            dst: b,
        }
        .at("2026-11-05T04:00:00+0000"),
        Alert {
            gid: 1,
            sid: 2_000_002,
            action: "allowed",
            msg: "ET SCAN probe",
            iface: "wan",
            src: "192.0.2.8",
            dst: b,
        }
        .at("2026-11-06T04:00:00+0000"),
        Alert {
            gid: 9,
            sid: 0,
            action: "blocked",
            msg: "firewall: default deny from wan",
            iface: "wan",
            src: "192.0.2.9",
            dst: b,
        }
        .at("2026-11-07T04:00:00+0000"),
        Alert {
            gid: 9,
            sid: 3,
            action: "allowed",
            msg: "firewall: log ssh",
            iface: "lan",
            src: a,
            dst: "192.0.2.9",
        }
        .at("2026-11-07T05:00:00+0000"),
        host("2026-11-10T01:00:05+0000", ma, "pc-<b>suzuki</b>", a),
        flow("2026-11-15T00:00:00+0000"),
    ];
    for i in 0..5 {
        v.push(web(
            &format!("2026-11-20T0{i}:00:00+0000"),
            "blocked",
            "casino.test",
            "gambling",
            false,
            b,
            mb,
        ));
    }
    for i in 0..3 {
        v.push(web(
            &format!("2026-11-21T0{i}:00:00+0000"),
            "blocked",
            "games.test",
            "games",
            false,
            b,
            mb,
        ));
    }
    // The month before: 2 threats.
    v.push(web(
        "2026-10-10T00:00:00+0000",
        "blocked",
        "old.test",
        "malware",
        true,
        a,
        ma,
    ));
    v.push(web(
        "2026-10-11T00:00:00+0000",
        "blocked",
        "old.test",
        "malware",
        true,
        a,
        ma,
    ));
    v
}

#[test]
fn counts_per_function_top_n_and_month_edges() {
    let c = db();
    insert(&c, &sample());
    let m = Month::parse("2026-11").unwrap();
    let now = m.end() + 86_400;
    let r = aggregate(&c, m, now, &Live::default()).unwrap();
    assert!(r.complete());
    assert_eq!(
        r.get(Func::Threat),
        2,
        "the month's two phishing blocks, not its neighbours'"
    );
    assert_eq!(
        r.get(Func::Cnc),
        2,
        "the c2 name and the quarantined host's request"
    );
    assert_eq!(r.get(Func::IpsDrop), 2);
    assert_eq!(r.get(Func::IpsAlert), 1);
    assert_eq!(r.get(Func::Category), 8);
    assert_eq!(
        r.get(Func::Firewall),
        1,
        "the logged allowed flow is not a block"
    );
    assert_eq!(r.blocked(), 15);
    // 20 events of any kind in the month: its edges are exact.
    assert_eq!(r.events, 20);
    assert_eq!(r.per_day.len(), 30);
    assert_eq!(r.per_day[0][Func::Threat.index()], 1, "11-01 00:00 JST");
    assert_eq!(r.per_day[29][Func::Threat.index()], 1, "11-30 23:59 JST");
    assert_eq!(
        r.per_day[19][Func::Category.index()],
        5,
        "11-20 09:00-13:00 JST is day 20"
    );
    assert_eq!(r.per_day[20][Func::Category.index()], 3, "day 21");
    let days: i64 = r.per_day.iter().map(|d| d.iter().sum::<i64>()).sum();
    assert_eq!(days, r.totals.iter().sum::<i64>());
    // Top N, largest first, ties by name.
    let cats: Vec<_> = r
        .categories
        .iter()
        .map(|n| (n.name.as_str(), n.count))
        .collect();
    assert_eq!(
        cats,
        [("gambling", 5), ("games", 3), ("phishing", 2), ("c2", 1)]
    );
    assert_eq!(r.sites[0].name, "casino.test");
    assert_eq!(r.sites[1].name, "games.test");
    assert_eq!(r.sites[2].name, "phish.test");
    assert_eq!(r.sites[2].flag, 1, "a threat");
    assert_eq!(r.signatures[0].sid, 2_000_001);
    assert_eq!(r.signatures[0].count, 2);
    assert_eq!(r.signatures[0].dropped, 2);
    assert_eq!(r.signatures[0].message, "ET EXPLOIT <script>x</script>");
    assert_eq!(r.signatures[1].dropped, 0);
    // Hosts: b (5+3 categories, 1 sinkhole, 2 drops, 1 alert, 1 firewall = 13 with the
    // WAN-side alerts counted for their LAN destination), a (3).
    assert_eq!(r.hosts[0].ip, "198.18.0.11");
    assert_eq!(r.hosts[0].count, 13);
    assert_eq!(r.hosts[0].threats, 1);
    assert_eq!(r.hosts[0].mac.as_deref(), Some("02:00:00:00:00:0b"));
    assert_eq!(r.hosts[1].ip, "198.18.0.10");
    assert_eq!(r.hosts[1].count, 3);
    assert_eq!(r.hosts[1].hostname.as_deref(), Some("pc-<b>suzuki</b>"));
    assert_eq!(r.incidents.len(), 1);
    assert_eq!(r.incidents[0].callbacks, Some(42));
    assert_eq!(r.incidents[0].released, None);
    // Trend: October from its events (partly: the oldest event is of 10-10); August
    // and September before the oldest event.
    assert_eq!(r.trend[2].0.to_string(), "2026-10");
    assert!(matches!(r.trend[2].1, Past::Partial(_)));
    assert_eq!(r.trend[2].1.counts().unwrap()[Func::Threat.index()], 3);
    assert_eq!(r.trend[0].1, Past::Unknown);
    // The next month holds only the late event.
    let d = aggregate(&c, m.next(), now, &Live::default()).unwrap();
    assert_eq!(d.get(Func::Threat), 1);
    assert!(!d.complete());
    assert_eq!(d.days_elapsed, 2);
}

#[test]
fn a_release_in_the_audit_log_closes_the_incident() {
    let c = db();
    insert(&c, &sample());
    let t = crate::events::eve_epoch("2026-11-11T00:00:00+0000").unwrap();
    c.execute(
        "INSERT INTO audit (ts, actor, action, target) VALUES (?1, 'admin', 'release from quarantine', '02:00:00:00:00:0A')",
        [t],
    )
    .unwrap();
    let m = Month::parse("2026-11").unwrap();
    let r = aggregate(&c, m, m.end(), &Live::default()).unwrap();
    assert_eq!(r.incidents[0].released, Some((t, "admin".to_string())));
}

#[test]
fn an_empty_month() {
    let c = db();
    let m = Month::parse("2026-11").unwrap();
    let r = aggregate(&c, m, m.end(), &Live::default()).unwrap();
    assert_eq!(r.events, 0);
    assert_eq!(r.blocked(), 0);
    assert!(r.categories.is_empty() && r.hosts.is_empty());
    assert!(r.trend.iter().all(|(_, p)| *p == Past::Unknown));
}

#[test]
fn japan_time() {
    let t = crate::events::eve_epoch("2026-11-30T15:30:00+0000").unwrap();
    assert_eq!(jst(t), (2026, 12, 1, 0, 30));
}

#[test]
fn the_rollups_add_up_the_same_in_any_batching_and_outlive_the_events() {
    let m = Month::parse("2026-11").unwrap();
    let now = m.end() + 86_400;
    let whole = db();
    insert(&whole, &sample());
    let want = aggregate(&whole, m, now, &Live::default()).unwrap();
    // One event per batch: every count is an upsert onto the day's row.
    let single = db();
    for line in sample() {
        insert(&single, std::slice::from_ref(&line));
    }
    let got = aggregate(&single, m, now, &Live::default()).unwrap();
    assert_eq!(got.totals, want.totals);
    assert_eq!(got.per_day, want.per_day);
    assert_eq!(
        (&got.categories, &got.sites, &got.hosts),
        (&want.categories, &want.sites, &want.hosts)
    );
    assert_eq!(got.signatures, want.signatures);
    assert_eq!(
        (
            got.events,
            got.first_event,
            got.last_event,
            got.days_with_events
        ),
        (
            want.events,
            want.first_event,
            want.last_event,
            want.days_with_events
        )
    );
    // The rollups agree with a GROUP BY over the raw events.
    let raw: i64 = whole
        .query_row(
            &format!(
                "SELECT count(*) FROM event WHERE {CANDIDATES} AND ts >= ?1 AND ts < ?2 AND ({FN_SQL}) IS NOT NULL"
            ),
            params![m.start(), m.end()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(want.totals.iter().sum::<i64>(), raw);
    assert!(raw > 0);
    // Retention takes the events; the month's counts stay.
    crate::events::prune(&whole, 1, m.end() + 40 * 86_400).unwrap();
    let left: i64 = whole
        .query_row("SELECT count(*) FROM event", [], |r| r.get(0))
        .unwrap();
    assert_eq!(left, 0);
    let after = aggregate(&whole, m, now, &Live::default()).unwrap();
    assert_eq!(after.totals, want.totals);
    assert_eq!(after.events, want.events);
}

#[test]
fn a_store_from_before_the_rollups_is_counted_when_it_is_migrated() {
    let dir = std::env::temp_dir().join(format!("mimamori-rollup-migrate-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("cp.db");
    let m = Month::parse("2026-11").unwrap();
    let now = m.end() + 86_400;
    let want = {
        let c = crate::db::open(&path).unwrap();
        insert(&c, &sample());
        let r = aggregate(&c, m, now, &Live::default()).unwrap();
        // Back to the schema before the rollups, their counts gone.
        for t in [
            "day_events",
            "day_func",
            "day_category",
            "day_site",
            "day_signature",
            "day_host",
        ] {
            c.execute_batch(&format!("DROP TABLE {t}")).unwrap();
        }
        c.pragma_update(None, "user_version", 9).unwrap();
        r
    };
    // Migrating fills them by the report's SQL; intake filled `want` by `rollup::Batch`:
    // the two classifications must agree on every count.
    let c = crate::db::open(&path).unwrap();
    let got = aggregate(&c, m, now, &Live::default()).unwrap();
    assert_eq!(got.totals, want.totals);
    assert_eq!(got.per_day, want.per_day);
    assert_eq!(got.categories, want.categories);
    assert_eq!(got.sites, want.sites);
    assert_eq!(got.signatures, want.signatures);
    assert_eq!(got.hosts, want.hosts);
    assert_eq!(got.trend, want.trend);
    assert_eq!(
        (
            got.events,
            got.first_event,
            got.last_event,
            got.days_with_events
        ),
        (
            want.events,
            want.first_event,
            want.last_event,
            want.days_with_events
        )
    );
    assert!(want.events > 0 && want.blocked() > 0);
    let _ = std::fs::remove_dir_all(&dir);
}

//! SQLite storage (WAL): policy versions, API tokens, the audit log and events. Schema
//! changes are numbered migrations run at open, each in its own transaction.

use crate::model::PolicyDoc;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::path::Path;

const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    "CREATE TABLE policy (
        version INTEGER PRIMARY KEY,
        created INTEGER NOT NULL,
        actor TEXT NOT NULL,
        doc TEXT NOT NULL,
        applied INTEGER NOT NULL,
        note TEXT NOT NULL DEFAULT ''
     );
     CREATE TABLE token (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        role TEXT NOT NULL,
        hash TEXT NOT NULL UNIQUE,
        created INTEGER NOT NULL
     );
     CREATE TABLE audit (
        id INTEGER PRIMARY KEY,
        ts INTEGER NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT NOT NULL,
        before TEXT,
        after TEXT
     );
     CREATE TABLE event (
        id INTEGER PRIMARY KEY,
        ts INTEGER NOT NULL,
        event_type TEXT NOT NULL,
        src_ip TEXT,
        dest_ip TEXT,
        src_port INTEGER,
        dest_port INTEGER,
        proto TEXT,
        action TEXT,
        category TEXT,
        sid INTEGER,
        name TEXT,
        raw TEXT NOT NULL
     );
     CREATE INDEX event_ts ON event(ts);
     CREATE INDEX event_src ON event(src_ip, ts);
     CREATE INDEX event_type_ts ON event(event_type, ts);",
    // 2: the monthly report (issue 17). The fields it groups by, read at intake instead
    // of from `raw` per event: the alert's gid (9 = the firewall), the web event's threat
    // flag, the LAN host's MAC (web `src_mac`, host `mac`) and the side the packet came
    // in on. Rows stored before this migration get them from `raw` once, here. Rendered
    // reports are kept per month and language.
    "ALTER TABLE event ADD COLUMN gid INTEGER;
     ALTER TABLE event ADD COLUMN threat INTEGER;
     ALTER TABLE event ADD COLUMN mac TEXT;
     ALTER TABLE event ADD COLUMN iface TEXT;
     UPDATE event SET
        gid = json_extract(raw, '$.alert.gid'),
        threat = json_extract(raw, '$.web.threat'),
        mac = coalesce(json_extract(raw, '$.web.src_mac'), json_extract(raw, '$.host.mac')),
        iface = json_extract(raw, '$.in_iface')
      WHERE json_valid(raw);
     CREATE INDEX event_type_action_ts ON event(event_type, action, ts);
     CREATE TABLE report (
        month TEXT NOT NULL,
        lang TEXT NOT NULL,
        created INTEGER NOT NULL,
        final INTEGER NOT NULL,
        counts TEXT NOT NULL,
        html TEXT NOT NULL,
        PRIMARY KEY (month, lang)
     );",
    // 3: the acknowledged event stream: the last number committed per sender, written in
    // the same transaction as its events.
    "CREATE TABLE stream_state (
        source TEXT PRIMARY KEY,
        seq INTEGER NOT NULL
     );",
    // 4: pattern bundles (issue 14): every bundle installed (version and published are
    // the manifest's u64s stored as the same 64 bits), and per kind which one is current,
    // which is the last-known-good, and when the last successful check was.
    "CREATE TABLE pattern_bundle (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        version INTEGER NOT NULL,
        published INTEGER NOT NULL,
        min_gateway TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        size INTEGER NOT NULL,
        signer TEXT NOT NULL,
        parts TEXT NOT NULL,
        file TEXT NOT NULL,
        imported INTEGER NOT NULL,
        actor TEXT NOT NULL
     );
     CREATE TABLE pattern_state (
        kind TEXT PRIMARY KEY,
        current INTEGER REFERENCES pattern_bundle(id),
        last_good INTEGER REFERENCES pattern_bundle(id),
        last_check INTEGER
     );",
    // 5: the desk uplink's outbox (issue 15): a trigger numbers every event the desk wants
    // (IPS alerts, web blocks and threats, quarantines) in the transaction that stores it,
    // once the box is enrolled; the uplink deletes numbers only once the desk acknowledged.
    "CREATE TABLE desk_outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        event_id INTEGER NOT NULL
     );
     CREATE TABLE desk_uplink (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        enabled INTEGER NOT NULL,
        stream TEXT,
        dropped INTEGER NOT NULL,
        plan TEXT,
        tier TEXT,
        repair TEXT
     );
     INSERT INTO desk_uplink (id, enabled, dropped) VALUES (1, 0, 0);
     CREATE TRIGGER desk_outbox_fill AFTER INSERT ON event
     WHEN (SELECT enabled FROM desk_uplink WHERE id = 1) = 1
      AND ((NEW.event_type = 'alert' AND coalesce(NEW.gid, 1) != 9)
        OR (NEW.event_type = 'web' AND (coalesce(NEW.action, '') != 'allow' OR NEW.threat = 1))
        OR NEW.event_type = 'host')
     BEGIN
        INSERT INTO desk_outbox (event_id) VALUES (NEW.id);
     END;",
    // 6: the monthly report sent to the desk (the last month uploaded and mailed).
    "ALTER TABLE desk_uplink ADD COLUMN report_month TEXT;",
    // 7: a purchased box's licence end, as the desk's contract says.
    "ALTER TABLE desk_uplink ADD COLUMN licence_end TEXT;",
    // 8: pattern staleness and the licence end are events the desk is sent too.
    "DROP TRIGGER desk_outbox_fill;
     CREATE TRIGGER desk_outbox_fill AFTER INSERT ON event
     WHEN (SELECT enabled FROM desk_uplink WHERE id = 1) = 1
      AND ((NEW.event_type = 'alert' AND coalesce(NEW.gid, 1) != 9)
        OR (NEW.event_type = 'web' AND (coalesce(NEW.action, '') != 'allow' OR NEW.threat = 1))
        OR NEW.event_type IN ('host', 'patterns'))
     BEGIN
        INSERT INTO desk_outbox (event_id) VALUES (NEW.id);
     END;",
    // 9: a policy version the gateway refused is an event the desk is sent too.
    "DROP TRIGGER desk_outbox_fill;
     CREATE TRIGGER desk_outbox_fill AFTER INSERT ON event
     WHEN (SELECT enabled FROM desk_uplink WHERE id = 1) = 1
      AND ((NEW.event_type = 'alert' AND coalesce(NEW.gid, 1) != 9)
        OR (NEW.event_type = 'web' AND (coalesce(NEW.action, '') != 'allow' OR NEW.threat = 1))
        OR NEW.event_type IN ('host', 'patterns', 'policy'))
     BEGIN
        INSERT INTO desk_outbox (event_id) VALUES (NEW.id);
     END;",
    // 10: the report's per-day rollups, beside the SQL that fills them; `open` counts the
    // events already stored into them in the same step.
    crate::report::rollup::TABLES,
];

/// The migration that creates the rollups.
const ROLLUP_MIGRATION: usize = 10;

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Opens (creating if needed) and migrates the database.
pub fn open(path: &Path) -> anyhow::Result<Connection> {
    // Tokens (hashed), contacts and events: readable by the owner only. SQLite gives its
    // -wal and -shm files the database file's mode.
    if !path.exists() {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| anyhow::anyhow!("{}: cannot create the database: {e}", path.display()))?;
    }
    let mut c = Connection::open(path)
        .map_err(|e| anyhow::anyhow!("{}: cannot open the database: {e}", path.display()))?;
    c.pragma_update(None, "journal_mode", "WAL")?;
    c.pragma_update(None, "synchronous", "NORMAL")?;
    c.pragma_update(None, "foreign_keys", "ON")?;
    c.busy_timeout(std::time::Duration::from_secs(5))?;
    let have: i64 = c.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let have = usize::try_from(have).unwrap_or(0);
    if have > MIGRATIONS.len() {
        anyhow::bail!(
            "{}: schema version {have} is newer than this mimamori-cp knows ({}); refusing to touch it",
            path.display(),
            MIGRATIONS.len()
        );
    }
    for (i, m) in MIGRATIONS.iter().enumerate().skip(have) {
        let tx = c.transaction()?;
        let step = |tx: &Connection| -> rusqlite::Result<()> {
            tx.execute_batch(m)?;
            if i + 1 == ROLLUP_MIGRATION {
                crate::report::rollup::add_from_events(tx, 0, i64::MAX)?;
            }
            Ok(())
        };
        step(&tx).map_err(|e| anyhow::anyhow!("{}: migration {}: {e}", path.display(), i + 1))?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(c)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    CustomerAdmin,
    DeskOperator,
    ReadOnly,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::CustomerAdmin => "customer-admin",
            Role::DeskOperator => "desk-operator",
            Role::ReadOnly => "read-only",
        }
    }
    pub fn parse(s: &str) -> Option<Role> {
        Some(match s {
            "customer-admin" => Role::CustomerAdmin,
            "desk-operator" => Role::DeskOperator,
            "read-only" => Role::ReadOnly,
            _ => return None,
        })
    }
}

fn hash_token(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Creates a token; the secret is returned once and only its SHA-256 is stored (tokens
/// are 256 random bits, so a fast hash is enough).
pub fn create_token(c: &Connection, name: &str, role: Role) -> anyhow::Result<String> {
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let token: String = format!(
        "mmt_{}",
        raw.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    c.execute(
        "INSERT INTO token (name, role, hash, created) VALUES (?1, ?2, ?3, ?4)",
        params![name, role.name(), hash_token(&token), now()],
    )
    .map_err(|e| match e {
        rusqlite::Error::SqliteFailure(f, _)
            if f.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            anyhow::anyhow!("a token named {name:?} exists already")
        }
        e => e.into(),
    })?;
    Ok(token)
}

/// The name and role behind a presented token.
pub fn check_token(c: &Connection, token: &str) -> rusqlite::Result<Option<(String, Role)>> {
    c.query_row(
        "SELECT name, role FROM token WHERE hash = ?1",
        params![hash_token(token)],
        |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
    )
    .optional()
    .map(|o| o.and_then(|(n, r)| Role::parse(&r).map(|r| (n, r))))
}

#[derive(Serialize)]
pub struct TokenInfo {
    pub name: String,
    pub role: String,
    pub created: i64,
}

pub fn list_tokens(c: &Connection) -> rusqlite::Result<Vec<TokenInfo>> {
    let mut s = c.prepare("SELECT name, role, created FROM token ORDER BY id")?;
    s.query_map([], |r| {
        Ok(TokenInfo {
            name: r.get(0)?,
            role: r.get(1)?,
            created: r.get(2)?,
        })
    })?
    .collect()
}

pub fn token_count(c: &Connection) -> rusqlite::Result<i64> {
    c.query_row("SELECT count(*) FROM token", [], |r| r.get(0))
}

#[derive(Clone, Debug, Serialize)]
pub struct PolicyVersion {
    pub version: u64,
    pub created: i64,
    pub actor: String,
    pub applied: bool,
    pub note: String,
    #[serde(skip)]
    pub doc: PolicyDoc,
}

/// The newest stored policy, or the sample policy as version 0 when none is stored.
pub fn current_policy(c: &Connection) -> anyhow::Result<PolicyVersion> {
    let row = c
        .query_row(
            "SELECT version, created, actor, doc, applied, note FROM policy ORDER BY version DESC LIMIT 1",
            [],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, bool>(4)?,
                    r.get::<_, String>(5)?,
                ))
            },
        )
        .optional()?;
    Ok(match row {
        Some((v, created, actor, doc, applied, note)) => PolicyVersion {
            version: v as u64,
            created,
            actor,
            doc: serde_json::from_str(&doc).map_err(|e| {
                anyhow::anyhow!("stored policy version {v} does not read back: {e}")
            })?,
            applied,
            note,
        },
        None => PolicyVersion {
            version: 0,
            created: 0,
            actor: "sample".into(),
            doc: PolicyDoc::default(),
            applied: false,
            note: "the sample policy (nothing stored yet)".into(),
        },
    })
}

/// Stores a new policy version and its audit record in one transaction.
#[allow(clippy::too_many_arguments)]
pub fn store_policy(
    c: &mut Connection,
    version: u64,
    actor: &str,
    doc: &PolicyDoc,
    applied: bool,
    note: &str,
    action: &str,
    target: &str,
    before: &serde_json::Value,
    after: &serde_json::Value,
) -> anyhow::Result<()> {
    let tx = c.transaction()?;
    tx.execute(
        "INSERT INTO policy (version, created, actor, doc, applied, note) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![version as i64, now(), actor, serde_json::to_string(doc)?, applied, note],
    )?;
    tx.execute(
        "INSERT INTO audit (ts, actor, action, target, before, after) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![now(), actor, action, target, before.to_string(), after.to_string()],
    )?;
    prune_versions(&tx, KEEP_VERSIONS)?;
    tx.commit()?;
    Ok(())
}

/// Policy versions kept (the audit keeps every change's before and after).
pub const KEEP_VERSIONS: u64 = 1000;

/// Deletes all but the newest `keep` versions, never the newest one the gateway applied.
pub fn prune_versions(c: &Connection, keep: u64) -> rusqlite::Result<usize> {
    c.execute(
        "DELETE FROM policy WHERE version <= (SELECT MAX(version) FROM policy) - ?1
           AND version IS NOT (SELECT MAX(version) FROM policy WHERE applied)",
        params![keep as i64],
    )
}

pub fn audit(
    c: &Connection,
    actor: &str,
    action: &str,
    target: &str,
    before: &str,
    after: &str,
) -> rusqlite::Result<()> {
    c.execute(
        "INSERT INTO audit (ts, actor, action, target, before, after) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![now(), actor, action, target, before, after],
    )
    .map(|_| ())
}

#[derive(Serialize)]
pub struct AuditEntry {
    pub id: i64,
    pub ts: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub before: serde_json::Value,
    pub after: serde_json::Value,
}

pub fn audit_log(c: &Connection, limit: i64) -> rusqlite::Result<Vec<AuditEntry>> {
    let mut s = c.prepare(
        "SELECT id, ts, actor, action, target, before, after FROM audit ORDER BY id DESC LIMIT ?1",
    )?;
    let json = |s: Option<String>| {
        s.and_then(|s| {
            serde_json::from_str(&s)
                .ok()
                .or(Some(serde_json::Value::String(s)))
        })
        .unwrap_or(serde_json::Value::Null)
    };
    s.query_map(params![limit], |r| {
        Ok(AuditEntry {
            id: r.get(0)?,
            ts: r.get(1)?,
            actor: r.get(2)?,
            action: r.get(3)?,
            target: r.get(4)?,
            before: json(r.get(5)?),
            after: json(r.get(6)?),
        })
    })?
    .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn old_policy_versions_are_pruned_but_not_the_one_applied() {
        let p = std::env::temp_dir().join(format!("mm-db-prune-{}.db", std::process::id()));
        let _ = std::fs::remove_file(&p);
        let mut c = super::open(&p).unwrap();
        let doc = crate::model::PolicyDoc::default();
        let null = serde_json::Value::Null;
        for v in 1..=10u64 {
            // Only version 2 ever reached the gateway.
            super::store_policy(&mut c, v, "t", &doc, v == 2, "", "set", "x", &null, &null)
                .unwrap();
        }
        super::prune_versions(&c, 3).unwrap();
        let mut s = c
            .prepare("SELECT version FROM policy ORDER BY version")
            .unwrap();
        let left: Vec<i64> = s
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(left, [2, 8, 9, 10]);
        drop(s);
        drop(c);
        let _ = std::fs::remove_file(&p);
    }

    #[test]
    fn a_new_database_is_readable_by_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let p = std::env::temp_dir().join(format!("mm-db-mode-{}.db", std::process::id()));
        let _ = std::fs::remove_file(&p);
        super::open(&p).unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let _ = std::fs::remove_file(&p);
    }

    use super::*;

    #[test]
    fn migration_2_fills_the_report_columns_of_old_events() {
        let dir = std::env::temp_dir().join(format!("mimamori-db-migrate-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("cp.db");
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch(MIGRATIONS[0]).unwrap();
            c.pragma_update(None, "user_version", 1).unwrap();
            c.execute(
                "INSERT INTO event (ts, event_type, raw) VALUES (1, 'web', ?1), (2, 'alert', ?2)",
                [
                    r#"{"in_iface":"lan","web":{"threat":true,"src_mac":"02:00:00:00:00:0a"}}"#,
                    r#"{"in_iface":"wan","alert":{"gid":9}}"#,
                ],
            )
            .unwrap();
        }
        let c = open(&path).unwrap();
        type Cols = (Option<i64>, Option<i64>, Option<String>, Option<String>);
        let rows: Vec<Cols> = c
            .prepare("SELECT gid, threat, mac, iface FROM event ORDER BY ts")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(
            rows,
            [
                (
                    None,
                    Some(1),
                    Some("02:00:00:00:00:0a".into()),
                    Some("lan".into())
                ),
                (Some(9), None, None, Some("wan".into())),
            ]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

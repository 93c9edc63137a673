//! Pattern updates from the desk, and staleness as events.

use super::{Kind, Patterns};
use crate::db;
use rusqlite::Connection;
use serde_json::{Value, json};
use std::sync::Arc;

impl Patterns {
    /// Watches staleness every minute: a kind turning stale (or the licence ending) is an
    /// event in the box's store (`event_type` `patterns`), which the desk uplink carries.
    pub fn spawn_stale_watch(
        self: &Arc<Self>,
        db: std::path::PathBuf,
        store: Arc<crate::events::EventStore>,
    ) {
        let me = self.clone();
        std::thread::spawn(move || {
            let mut was: std::collections::HashMap<String, bool> = Default::default();
            let mut licence_was = false;
            loop {
                if let Ok(c) = db::open(&db) {
                    let now = db::now();
                    if let Ok(st) = me.status(&c, now) {
                        let time =
                            mimamori_pipelines::event::eve_time(now.max(0) as u64 * 1_000_000_000);
                        for k in st["kinds"].as_array().into_iter().flatten() {
                            let kind = k["kind"].as_str().unwrap_or_default().to_string();
                            let stale = k["patterns_stale"].as_bool().unwrap_or(false);
                            if stale && !was.get(&kind).copied().unwrap_or(false) {
                                let e = json!({"timestamp": time, "event_type": "patterns",
                                    "patterns": {"state": "stale", "kind": kind, "version": k["version"],
                                                 "reasons": k["stale_reasons"]}});
                                store.put(&e.to_string());
                            }
                            was.insert(kind, stale);
                        }
                        let expired = st["licence_expired"].as_bool().unwrap_or(false);
                        if expired && !licence_was {
                            let e = json!({"timestamp": time, "event_type": "patterns",
                                "patterns": {"state": "licence-expired", "licence_end": st["licence_end"]}});
                            store.put(&e.to_string());
                        }
                        licence_was = expired;
                    }
                }
                std::thread::sleep(std::time::Duration::from_secs(60));
            }
        });
    }

    /// A successful check with the desk: every installed kind was looked at just now.
    pub fn checked(&self, c: &Connection, now: i64) -> rusqlite::Result<()> {
        c.execute("UPDATE pattern_state SET last_check = ?1", [now])
            .map(|_| ())
    }

    /// Asks the desk for its newest bundles and installs each one newer than ours, one
    /// at a time like an operator import (verified, handed to the gateway, or refused and
    /// audited). The check counts as successful once the desk's list was read.
    pub fn update_from(
        &self,
        c: &mut Connection,
        desk: &crate::desk::Link,
        now: i64,
    ) -> Result<Value, String> {
        let _one = self.changes.blocking_lock();
        let offered = desk.patterns()?;
        let status = self.status(c, now).map_err(|e| e.to_string())?;
        let have = |kind: &str| -> u64 {
            status["kinds"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|k| k["kind"] == kind)
                .and_then(|k| k["version"].as_u64())
                .unwrap_or(0)
        };
        let mut results = Vec::new();
        for p in offered {
            if p.kind.parse::<Kind>().is_err() {
                results.push(json!({"kind": p.kind, "version": p.version, "skipped": "a kind this box does not know"}));
                continue;
            }
            if p.version <= have(&p.kind) {
                continue;
            }
            let label = format!("desk {} {}", p.kind, p.version);
            let outcome = desk
                .pattern(&p.kind, p.version, &p.sha256)
                .and_then(|bytes| {
                    self.import(c, &label, &bytes, "desk", false)
                        .map_err(|e| e.to_string())
                });
            results.push(match outcome {
                Ok(o) => json!({"kind": p.kind, "version": p.version, "installed": o}),
                Err(e) => json!({"kind": p.kind, "version": p.version, "refused": e}),
            });
        }
        self.checked(c, now).map_err(|e| e.to_string())?;
        Ok(json!({"checked": now, "updates": results}))
    }
}

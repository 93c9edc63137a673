//! Writing event records as EVE JSON lines.

use mimamori_pipelines::Policy;
use mimamori_pipelines::event::{EventKind, EventQueue, EventRecord, WebNames};
use mimamori_pipelines::inspect::RuleBook;
use mimamori_pipelines::web::WebRules;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// The recent policy versions, so an event is named by the tables it was taken under
/// (after a hot apply, rule 3 may be another rule; after a pattern swap, signature 3 and
/// category 3 may be others). Keyed by the number events carry in `policy_version`: the
/// policy version on the replay path, the apply generation on the live gateway (it moves
/// with every policy apply and every pattern swap). Bounded: older entries fall off and
/// their events are named by the oldest kept.
pub struct PolicyHistory {
    versions: Mutex<VecDeque<Version>>,
}

const HISTORY: usize = 16;

/// A key, its policy, its web rules (names categories and groups), and the signature
/// rules (name `Signature` events).
type Version = (
    u64,
    Arc<Policy>,
    Option<Arc<WebRules>>,
    Option<Arc<RuleBook>>,
);

impl PolicyHistory {
    pub fn new(version: u64, policy: Arc<Policy>, web: Option<Arc<WebRules>>) -> Arc<Self> {
        Arc::new(Self {
            versions: Mutex::new(VecDeque::from([(version, policy, web, None)])),
        })
    }

    /// The signature rules of the newest entry (and of those recorded after it without
    /// rules of their own).
    pub fn set_rules(&self, book: Arc<RuleBook>) {
        let mut v = self.versions.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(last) = v.back_mut() {
            last.3 = Some(book);
        }
    }

    fn rules(&self, key: u64) -> Option<Arc<RuleBook>> {
        let v = self.versions.lock().unwrap_or_else(|e| e.into_inner());
        v.iter()
            .rev()
            .find(|e| e.0 <= key)
            .or(v.front())
            .and_then(|e| e.3.clone())
    }

    /// A new entry with the signature rules of the newest one.
    pub fn record(&self, version: u64, policy: Arc<Policy>, web: Option<Arc<WebRules>>) {
        let rules = {
            let v = self.versions.lock().unwrap_or_else(|e| e.into_inner());
            v.back().and_then(|e| e.3.clone())
        };
        self.record_with_rules(version, policy, web, rules);
    }

    pub fn record_with_rules(
        &self,
        version: u64,
        policy: Arc<Policy>,
        web: Option<Arc<WebRules>>,
        rules: Option<Arc<RuleBook>>,
    ) {
        let mut v = self.versions.lock().unwrap_or_else(|e| e.into_inner());
        if v.len() == HISTORY {
            v.pop_front();
        }
        v.push_back((version, policy, web, rules));
    }

    /// Lets go of every rule set but `book` (after a rule swap, once the events taken
    /// under the old set have been exported): the old set's memory is freed. Events of
    /// an entry without rules are exported unnamed (`signature_id` 0), never misnamed.
    pub fn keep_only_rules(&self, book: &Arc<RuleBook>) {
        let mut v = self.versions.lock().unwrap_or_else(|e| e.into_inner());
        // A later swap's rules stay too.
        let newest = v.back().and_then(|e| e.3.clone());
        for e in v.iter_mut() {
            let keep = |b: &Arc<RuleBook>| {
                Arc::ptr_eq(b, book) || newest.as_ref().is_some_and(|n| Arc::ptr_eq(b, n))
            };
            if e.3.as_ref().is_some_and(|b| !keep(b)) {
                e.3 = None;
            }
        }
    }

    /// The policy of `version`, else the nearest older one kept, else the oldest.
    pub fn get(&self, version: u64) -> (Arc<Policy>, Option<Arc<WebRules>>) {
        let v = self.versions.lock().unwrap_or_else(|e| e.into_inner());
        let hit = v
            .iter()
            .rev()
            .find(|e| e.0 <= version)
            .or(v.front())
            .map(|e| (e.1.clone(), e.2.clone()));
        hit.unwrap_or_else(|| (Arc::new(Policy::default()), None))
    }
}

/// Turns an event record into EVE with the names of the policy it was taken under.
pub fn to_eve(rec: &EventRecord, history: &PolicyHistory) -> mimamori_pipelines::event::Eve {
    let (policy, web) = history.get(rec.policy_version);
    let rules = &policy.firewall.rules;
    let mut eve = rec.to_eve(
        |side| side.name().to_string(),
        |i| rules.get(i as usize).map(|r| r.name.clone()),
        web.as_deref().map(|w| w as &dyn WebNames),
    );
    if let EventKind::Signature { rule, .. } = rec.kind
        && let (Some(book), Some(a)) = (history.rules(rec.policy_version), eve.alert.as_mut())
        && let Some(r) = book.engine.rules.get(rule as usize)
    {
        a.gid = r.meta.gid;
        a.signature_id = r.meta.sid;
        a.rev = r.meta.rev;
        a.signature = r.meta.msg.clone();
        a.category = r.meta.classtype.clone().unwrap_or_default();
        a.severity = r.meta.priority.unwrap_or(3);
    }
    eve
}

pub struct EveWriter {
    w: BufWriter<File>,
    history: Arc<PolicyHistory>,
    written: u64,
}

impl EveWriter {
    pub fn create(path: &Path, history: Arc<PolicyHistory>) -> std::io::Result<Self> {
        Ok(Self {
            w: BufWriter::new(File::create(path)?),
            history,
            written: 0,
        })
    }

    pub fn history(&self) -> &Arc<PolicyHistory> {
        &self.history
    }

    /// Drains the queue into the file.
    pub fn write_all(&mut self, q: &mut EventQueue) -> std::io::Result<()> {
        for rec in q.drain() {
            self.write_one(&rec)?;
        }
        Ok(())
    }

    pub fn write_one(&mut self, rec: &EventRecord) -> std::io::Result<()> {
        let eve = to_eve(rec, &self.history);
        serde_json::to_writer(&mut self.w, &eve)?;
        self.w.write_all(b"\n")?;
        self.written += 1;
        Ok(())
    }

    pub fn flush(&mut self) -> std::io::Result<()> {
        self.w.flush()
    }

    /// Flushes and returns how many events were written.
    pub fn finish(mut self) -> std::io::Result<u64> {
        self.w.flush()?;
        Ok(self.written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_named_by_the_policy_they_were_taken_under() {
        let with_rule = |name: &str| {
            let text = format!(
                "[[firewall.rule]]\nname = \"{name}\"\nproto = \"tcp\"\ndst_ports = [80]\naction = \"deny\"\n"
            );
            Arc::new(Policy::from_toml("t", &text).unwrap())
        };
        let h = PolicyHistory::new(1, with_rule("first"), None);
        h.record(2, with_rule("second"), None);
        assert_eq!(h.get(1).0.firewall.rules[0].name, "first");
        assert_eq!(h.get(2).0.firewall.rules[0].name, "second");
        assert_eq!(h.get(9).0.firewall.rules[0].name, "second");
        for v in 3..40 {
            h.record(v, with_rule(&format!("v{v}")), None);
        }
        // Version 1 fell off: the oldest kept stands in.
        assert_eq!(h.get(1).0.firewall.rules[0].name, "v24");
    }
}

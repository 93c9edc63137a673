//! Hot policy apply. The control thread compiles a policy snapshot (firewall, web rules,
//! one web filter per classify stage, the IPS settings resolved against the rules) off
//! the data path and publishes it; each stage checks
//! one atomic per burst and, when it moved, swaps the new tables in between two bursts and
//! says so. The snapshot is acknowledged once every stage runs it; a snapshot that does
//! not compile is refused with the reason and the running one stays.
//!
//! Pattern sets (issue 14) take the same path: a new rule set or category database from
//! the control plane ([`PolicySlot::load_patterns`]) is compiled here, under the running
//! policy, into a snapshot of the same policy version, and swapped in between bursts the
//! same way; a set that does not compile is refused and the running one stays. Each
//! snapshot has a *generation* (moved by every policy apply and every pattern swap): the
//! stages follow it, and events carry it so the exporter names them by the tables they
//! were taken under. A snapshot that brings new rules also brings, per stage, a scratch
//! fitted to them (or a whole inspector, when the gateway ran without rules), so the
//! stage's swap stays pointer moves; the old set is freed when the last stage lets go.

use crate::eve::PolicyHistory;
use crate::patterns::{Compiled, PatternInfo};
use crate::startup::LastGood;
use crate::webfilter::WebSetup;
use mimamori_pipelines::Policy;
use mimamori_pipelines::inspect::{Inspector, InspectorLimits, IpsSettings, RuleBook};
use mimamori_pipelines::web::WebFilter;
use mimamori_signatures::engine::Scratch;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct PolicyUpdate {
    /// Moves with every snapshot (policy apply or pattern swap); what stages follow.
    pub generation: u64,
    pub version: u64,
    pub policy: Arc<Policy>,
    pub web: Option<WebSetup>,
    /// The policy's `[ips]` resolved against the loaded rules (when there are rules),
    /// shared by every stage.
    pub ips: Option<Arc<IpsSettings>>,
    /// One prebuilt web filter per classify stage, taken by that stage.
    filters: Vec<Mutex<Option<WebFilter>>>,
    /// When this snapshot brings new rules: per stage, what it needs to take them.
    rules_swaps: Vec<Mutex<Option<RulesSwap>>>,
}

/// What a stage takes with new rules, built off the data path.
pub enum RulesSwap {
    /// A scratch fitted to the new engine, for the stage's inspector.
    Scratch(Scratch),
    /// The stage ran without rules: its inspector.
    Inspector(Box<Inspector>),
}

impl PolicyUpdate {
    /// Builds everything the stages need from `policy`, here, off the data path.
    pub fn new(
        version: u64,
        policy: Arc<Policy>,
        web: Option<WebSetup>,
        rules: Option<&Arc<RuleBook>>,
        stages: usize,
    ) -> Self {
        let filters = (0..stages)
            .map(|_| Mutex::new(web.as_ref().map(|w| w.filter())))
            .collect();
        let ips = rules.map(|book| IpsSettings::compile(book.clone(), &policy.ips));
        Self {
            generation: 1,
            version,
            policy,
            web,
            ips,
            filters,
            rules_swaps: (0..stages).map(|_| Mutex::new(None)).collect(),
        }
    }

    /// Stage `i`'s web filter (once).
    pub fn take_filter(&self, i: usize) -> Option<WebFilter> {
        self.filters
            .get(i)
            .and_then(|m| m.lock().ok().and_then(|mut f| f.take()))
    }

    /// Stage `i`'s part of a rule swap (once), when this snapshot brings new rules.
    pub fn take_rules_swap(&self, i: usize) -> Option<RulesSwap> {
        self.rules_swaps
            .get(i)
            .and_then(|m| m.lock().ok().and_then(|mut f| f.take()))
    }
}

/// A stage takes snapshot `u` as stage `i`, between two bursts: pointer moves (what is
/// built per stage was built by the control thread), except when the stage skipped a
/// snapshot that brought it an inspector (a stage stalled past the apply's wait): then it
/// builds one here, once.
pub fn follow(cls: &mut mimamori_pipelines::Classifier, u: &PolicyUpdate, i: usize) {
    match u.take_rules_swap(i) {
        Some(RulesSwap::Scratch(scratch)) => {
            if let (Some(ips), Some(settings)) = (cls.ips_mut(), u.ips.clone()) {
                ips.set_rules(settings, scratch);
            }
        }
        Some(RulesSwap::Inspector(ips)) => cls.add_ips(*ips),
        None => {}
    }
    if cls.ips().is_none()
        && let Some(settings) = &u.ips
    {
        cls.add_ips(Inspector::new(settings.clone(), InspectorLimits::default()));
    }
    // Events carry the generation: the exporter names them by this snapshot's tables.
    cls.set_policy(
        u.policy.clone(),
        u.take_filter(i),
        u.ips.clone(),
        u.generation,
    );
}

/// A pattern set that runs, or the last refusal, for `stats`.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct PatternsState {
    pub active: Vec<PatternInfo>,
    /// The last refusals, newest last (bounded).
    pub refused: Vec<String>,
    /// Pattern sets swapped in while running.
    pub swaps: u64,
}

const REFUSALS_KEPT: usize = 8;

pub struct PolicySlot {
    /// Every snapshot handed out, for naming events by the tables they were taken under.
    pub history: Arc<PolicyHistory>,
    /// The published generation.
    published: AtomicU64,
    current: Mutex<Arc<PolicyUpdate>>,
    /// Per stage: the generation it runs.
    applied: Vec<AtomicU64>,
    /// The rules every policy's `[ips]` is resolved against (a pattern swap replaces them).
    rules: Mutex<Option<Arc<RuleBook>>>,
    /// Where each version that runs is kept for the next start.
    last_good: Option<LastGood>,
    /// One change (apply or pattern swap) at a time.
    changes: Mutex<()>,
    patterns: Mutex<PatternsState>,
}

impl PolicySlot {
    pub fn new(
        initial: Arc<PolicyUpdate>,
        rules: Option<Arc<RuleBook>>,
        stages: usize,
        last_good: Option<LastGood>,
    ) -> Arc<Self> {
        let history = PolicyHistory::new(
            initial.generation,
            initial.policy.clone(),
            initial.web.as_ref().map(|w| w.rules.clone()),
        );
        if let Some(book) = &rules {
            history.set_rules(book.clone());
        }
        Arc::new(Self {
            history,
            published: AtomicU64::new(initial.generation),
            applied: (0..stages)
                .map(|_| AtomicU64::new(initial.generation))
                .collect(),
            current: Mutex::new(initial),
            rules: Mutex::new(rules),
            last_good,
            changes: Mutex::new(()),
            patterns: Mutex::new(PatternsState::default()),
        })
    }

    pub fn current(&self) -> Arc<PolicyUpdate> {
        self.current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The pattern sets that run (loaded at start or swapped in) and the refusals.
    pub fn patterns(&self) -> PatternsState {
        self.patterns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Records a set loaded at start (before the stages run).
    pub fn note_pattern(&self, info: PatternInfo) {
        let mut p = self.patterns.lock().unwrap_or_else(|e| e.into_inner());
        p.active.retain(|a| a.kind != info.kind);
        p.active.push(info);
    }

    /// Records a refusal (shown in `stats` and answered to the control plane).
    pub fn note_refusal(&self, reason: &str) {
        let mut p = self.patterns.lock().unwrap_or_else(|e| e.into_inner());
        if p.refused.len() == REFUSALS_KEPT {
            p.refused.remove(0);
        }
        p.refused.push(reason.to_string());
    }

    /// The published generation: one load per burst on the data path.
    #[inline]
    pub fn published(&self) -> u64 {
        self.published.load(Ordering::Acquire)
    }

    pub fn mark_applied(&self, stage: usize, generation: u64) {
        if let Some(a) = self.applied.get(stage) {
            a.store(generation, Ordering::Release);
        }
    }

    fn rules(&self) -> Option<Arc<RuleBook>> {
        self.rules.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Publishes `update` (its generation set here) and waits until every stage runs it.
    fn publish(&self, mut update: PolicyUpdate, started: Instant) -> Result<(), String> {
        let generation = self.current().generation + 1;
        update.generation = generation;
        let update = Arc::new(update);
        self.history.record_with_rules(
            generation,
            update.policy.clone(),
            update.web.as_ref().map(|w| w.rules.clone()),
            update.ips.as_ref().map(|s| s.book.clone()),
        );
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = update;
        self.published.store(generation, Ordering::Release);
        let deadline = started + Duration::from_secs(2).max(started.elapsed() * 2);
        while self
            .applied
            .iter()
            .any(|a| a.load(Ordering::Acquire) < generation)
        {
            if Instant::now() > deadline {
                return Err(format!(
                    "generation {generation} published but not running on every stage after {:.1} s (a stage is stalled?)",
                    deadline.duration_since(started).as_secs_f64()
                ));
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        Ok(())
    }

    /// Compiles `text` as policy `version` and hands it to the stages; returns how long
    /// it took until every stage ran it.
    pub fn apply(&self, version: u64, text: &str) -> Result<Duration, String> {
        let _one = self.changes.lock().unwrap_or_else(|e| e.into_inner());
        let started = Instant::now();
        let cur = self.current();
        if version <= cur.version {
            return Err(format!(
                "version {version} is not newer than the running version {}",
                cur.version
            ));
        }
        let name = format!("policy version {version}");
        let policy = Policy::from_toml(&name, text).map_err(|e| e.to_string())?;
        let (a, b) = (&cur.policy, &policy);
        for (field, same) in [
            ("flows.capacity", a.flows.capacity == b.flows.capacity),
            (
                "fragments.capacity",
                a.fragments.capacity == b.fragments.capacity,
            ),
            ("events.queue", a.events.queue == b.events.queue),
        ] {
            if !same {
                return Err(format!(
                    "{name}: {field}: table sizes are fixed while running; restart the gateway to change them"
                ));
            }
        }
        let web = match &cur.web {
            Some(w) => Some(w.recompile(&policy, &name).map_err(|e| e.to_string())?),
            None => None,
        };
        let update = PolicyUpdate::new(
            version,
            Arc::new(policy),
            web,
            self.rules().as_ref(),
            self.applied.len(),
        );
        self.publish(update, started)?;
        let took = started.elapsed();
        if let Some(lg) = &self.last_good
            && let Err(e) = lg.save(version, text)
        {
            eprintln!("mimamori-gw: policy version {version} runs but was not kept: {e:#}");
        }
        Ok(took)
    }

    /// Loads the pattern bundle of `kind` at `path` (its SHA-256 `sha256`), compiles it
    /// under the running policy and swaps it in on every stage; returns what runs and how
    /// long it took from the request until every stage ran it. Refused (the running set
    /// stays) when the file is not the one the control plane verified, or it does not
    /// compile, or the running policy does not compile against it.
    pub fn load_patterns(
        &self,
        kind: &str,
        path: &Path,
        sha256: &str,
    ) -> Result<(PatternInfo, Duration), String> {
        let res = self.swap_patterns(kind, path, sha256);
        if let Err(e) = &res {
            self.note_refusal(e);
        }
        res
    }

    fn swap_patterns(
        &self,
        kind: &str,
        path: &Path,
        sha256: &str,
    ) -> Result<(PatternInfo, Duration), String> {
        let _one = self.changes.lock().unwrap_or_else(|e| e.into_inner());
        let started = Instant::now();
        let cur = self.current();
        let loaded = crate::patterns::load(kind, path, sha256, &cur.policy.sides.lan_subnets)?;
        let info = loaded.info.clone();
        let stages = self.applied.len();
        let name = format!("policy version {}", cur.version);
        let update = match loaded.compiled {
            Compiled::Rules(book) => {
                let had_rules = self.rules().is_some();
                let mut u = PolicyUpdate::new(
                    cur.version,
                    cur.policy.clone(),
                    cur.web.clone(),
                    Some(&book),
                    stages,
                );
                let settings = u.ips.clone().expect("rules give settings");
                u.rules_swaps = (0..stages)
                    .map(|_| {
                        let scratch = book.engine.scratch();
                        Mutex::new(Some(if had_rules {
                            RulesSwap::Scratch(scratch)
                        } else {
                            let mut i =
                                Inspector::new(settings.clone(), InspectorLimits::default());
                            i.set_rules(settings.clone(), scratch);
                            RulesSwap::Inspector(Box::new(i))
                        }))
                    })
                    .collect();
                *self.rules.lock().unwrap_or_else(|e| e.into_inner()) = Some(book);
                u
            }
            Compiled::Categories(db) => {
                let web = match &cur.web {
                    Some(w) => w.with_new_db(&cur.policy, &name, db),
                    None => WebSetup::with_db(&cur.policy, &name, db),
                }
                .map_err(|e| {
                    format!(
                        "{}: the running {name} does not compile against this category database: {e:#}",
                        info.file
                    )
                })?;
                PolicyUpdate::new(
                    cur.version,
                    cur.policy.clone(),
                    Some(web),
                    self.rules().as_ref(),
                    stages,
                )
            }
        };
        let new_rules = update.ips.as_ref().map(|s| s.book.clone());
        self.publish(update, started)?;
        let took = started.elapsed();
        drop(cur);
        if let Some(book) = new_rules {
            // Every stage runs the new rules; the events taken under the old ones are
            // exported within milliseconds. Then the history lets the old set go.
            let history = self.history.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_secs(2));
                history.keep_only_rules(&book);
            });
        }
        let mut p = self.patterns.lock().unwrap_or_else(|e| e.into_inner());
        p.active.retain(|a| a.kind != info.kind);
        p.active.push(info.clone());
        p.swaps += 1;
        Ok((info, took))
    }
}

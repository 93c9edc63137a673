//! Hot policy apply. The control thread compiles a policy snapshot (firewall, web rules,
//! one web filter per classify stage, the IPS settings resolved against the rules) off
//! the data path and publishes it; each stage checks
//! one atomic per burst and, when it moved, swaps the new tables in between two bursts and
//! says so. The snapshot is acknowledged once every stage runs it; a snapshot that does
//! not compile is refused with the reason and the running one stays.

use crate::eve::PolicyHistory;
use crate::startup::LastGood;
use crate::webfilter::WebSetup;
use mimamori_pipelines::Policy;
use mimamori_pipelines::inspect::{IpsSettings, RuleBook};
use mimamori_pipelines::web::WebFilter;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct PolicyUpdate {
    pub version: u64,
    pub policy: Arc<Policy>,
    pub web: Option<WebSetup>,
    /// The policy's `[ips]` resolved against the loaded rules (when there are rules),
    /// shared by every stage.
    pub ips: Option<Arc<IpsSettings>>,
    /// One prebuilt web filter per classify stage, taken by that stage.
    filters: Vec<Mutex<Option<WebFilter>>>,
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
            version,
            policy,
            web,
            ips,
            filters,
        }
    }

    /// Stage `i`'s web filter (once).
    pub fn take_filter(&self, i: usize) -> Option<WebFilter> {
        self.filters
            .get(i)
            .and_then(|m| m.lock().ok().and_then(|mut f| f.take()))
    }
}

pub struct PolicySlot {
    /// Every version handed out, for naming events by the policy they were taken under.
    pub history: Arc<PolicyHistory>,
    published: AtomicU64,
    current: Mutex<Arc<PolicyUpdate>>,
    applied: Vec<AtomicU64>,
    /// The rules every policy's `[ips]` is resolved against.
    rules: Option<Arc<RuleBook>>,
    /// Where each version that runs is kept for the next start.
    last_good: Option<LastGood>,
}

impl PolicySlot {
    pub fn new(
        initial: Arc<PolicyUpdate>,
        rules: Option<Arc<RuleBook>>,
        stages: usize,
        last_good: Option<LastGood>,
    ) -> Arc<Self> {
        Arc::new(Self {
            history: PolicyHistory::new(
                initial.version,
                initial.policy.clone(),
                initial.web.as_ref().map(|w| w.rules.clone()),
            ),
            published: AtomicU64::new(initial.version),
            applied: (0..stages)
                .map(|_| AtomicU64::new(initial.version))
                .collect(),
            current: Mutex::new(initial),
            rules,
            last_good,
        })
    }

    pub fn current(&self) -> Arc<PolicyUpdate> {
        self.current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The published version: one relaxed-cost load per burst on the data path.
    #[inline]
    pub fn published(&self) -> u64 {
        self.published.load(Ordering::Acquire)
    }

    pub fn mark_applied(&self, stage: usize, version: u64) {
        if let Some(a) = self.applied.get(stage) {
            a.store(version, Ordering::Release);
        }
    }

    /// Compiles `text` as policy `version` and hands it to the stages; returns how long
    /// it took until every stage ran it.
    pub fn apply(&self, version: u64, text: &str) -> Result<Duration, String> {
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
        let update = Arc::new(PolicyUpdate::new(
            version,
            Arc::new(policy),
            web,
            self.rules.as_ref(),
            self.applied.len(),
        ));
        self.history.record(
            version,
            update.policy.clone(),
            update.web.as_ref().map(|w| w.rules.clone()),
        );
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = update;
        self.published.store(version, Ordering::Release);
        let deadline = started + Duration::from_secs(2);
        while self
            .applied
            .iter()
            .any(|a| a.load(Ordering::Acquire) < version)
        {
            if Instant::now() > deadline {
                return Err(format!(
                    "version {version} published but not running on every stage after 2 s (a stage is stalled?)"
                ));
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        let took = started.elapsed();
        if let Some(lg) = &self.last_good
            && let Err(e) = lg.save(version, text)
        {
            eprintln!("mimamori-gw: policy version {version} runs but was not kept: {e:#}");
        }
        Ok(took)
    }
}

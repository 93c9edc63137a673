//! Loading the web filter: the category database (memory-mapped and verified) compiled
//! with the policy's `[web]` section, and the host table all workers share.

use mimamori_pipelines::Policy;
use mimamori_pipelines::web::{Hosts, WebFilter, WebRules};
use mimamori_signatures::category::CategoryDb;
use std::path::Path;
use std::sync::Arc;

struct Mapped(memmap2::Mmap);
impl AsRef<[u8]> for Mapped {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// One part of a mapped file (a category database inside a pattern bundle): the map
/// stays while the database lives.
pub struct MappedPart {
    map: std::sync::Arc<memmap2::Mmap>,
    start: usize,
    len: usize,
}

impl MappedPart {
    /// `start..start + len` must lie within `map` (the caller sliced it from there).
    pub fn new(map: std::sync::Arc<memmap2::Mmap>, start: usize, len: usize) -> MappedPart {
        assert!(start.checked_add(len).is_some_and(|e| e <= map.len()));
        MappedPart { map, start, len }
    }
}

impl AsRef<[u8]> for MappedPart {
    fn as_ref(&self) -> &[u8] {
        &self.map[self.start..self.start + self.len]
    }
}

/// Maps and verifies a category database. A corrupt, truncated or wrong-version file is
/// refused with the reason; whatever was loaded before stays in force with the caller.
pub fn open_db(path: &Path) -> anyhow::Result<CategoryDb> {
    let file = std::fs::File::open(path)
        .map_err(|e| anyhow::anyhow!("{}: cannot open: {e}", path.display()))?;
    // SAFETY: the map is read-only and private to this process. A file changed underneath
    // a live map could change the bytes we read (never memory safety for `&[u8]` reads on
    // Linux, but a truncation would raise SIGBUS); `mimamori-sig build-categories` writes
    // a new file and renames it over the old, so a mapped file is never modified in place.
    let map = unsafe { memmap2::Mmap::map(&file) }
        .map_err(|e| anyhow::anyhow!("{}: cannot map: {e}", path.display()))?;
    CategoryDb::from_storage(Box::new(Mapped(map)))
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// What every worker's web filter is built from.
#[derive(Clone)]
pub struct WebSetup {
    pub rules: Arc<WebRules>,
    pub hosts: Arc<Hosts>,
}

impl WebSetup {
    /// Loads the database at `db` and compiles the policy's `[web]` section against it;
    /// `policy_file` names the policy in errors.
    pub fn load(policy: &Policy, policy_file: &str, db: &Path) -> anyhow::Result<WebSetup> {
        WebSetup::with_db(policy, policy_file, open_db(db)?)
    }

    /// As [`WebSetup::load`], with a database already in memory (built by a tool).
    pub fn with_db(policy: &Policy, policy_file: &str, db: CategoryDb) -> anyhow::Result<WebSetup> {
        let rules = WebRules::new(&policy.web, Arc::new(db), policy_file)?;
        Ok(WebSetup {
            hosts: Hosts::new(&rules.config),
            rules: Arc::new(rules),
        })
    }

    /// The same database and host table under a new policy's `[web]` section; the host
    /// table keeps its hosts (a quarantine survives a policy change) and takes the new
    /// thresholds.
    pub fn recompile(&self, policy: &Policy, policy_file: &str) -> anyhow::Result<WebSetup> {
        let rules = WebRules::new(&policy.web, self.rules.db().clone(), policy_file)?;
        self.hosts.reconfigure(&rules.config);
        Ok(WebSetup {
            rules: Arc::new(rules),
            hosts: self.hosts.clone(),
        })
    }

    /// A new category database under the running policy's `[web]` section, keeping the
    /// host table (quarantines survive a database swap). Refused, with the category the
    /// policy names and the database lacks, when it does not compile.
    pub fn with_new_db(
        &self,
        policy: &Policy,
        policy_file: &str,
        db: CategoryDb,
    ) -> anyhow::Result<WebSetup> {
        let rules = WebRules::new(&policy.web, Arc::new(db), policy_file)?;
        self.hosts.reconfigure(&rules.config);
        Ok(WebSetup {
            rules: Arc::new(rules),
            hosts: self.hosts.clone(),
        })
    }

    pub fn filter(&self) -> WebFilter {
        WebFilter::new(self.rules.clone(), self.hosts.clone())
    }
}

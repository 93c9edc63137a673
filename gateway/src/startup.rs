//! Which policy the gateway starts under, so the office is never left without a network:
//! the control plane's current version if it compiles (against the category database
//! this gateway has), else the last version that ran here (kept on local disk), else the
//! `--policy` file, else the embedded default — and, if even that cannot load its web
//! section, the embedded default without the web filter. Every version passed over is
//! reported with the reason.

use crate::webfilter::WebSetup;
use anyhow::Context;
use mimamori_pipelines::Policy;
use mimamori_pipelines::policy::EMBEDDED_DEFAULT;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where a candidate policy came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    ControlPlane,
    /// The last version that ran on this box.
    LastGood(PathBuf),
    Local(PathBuf),
    Embedded,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::ControlPlane => write!(f, "the control plane"),
            Origin::LastGood(p) => write!(f, "the last policy that ran ({})", p.display()),
            Origin::Local(p) => write!(f, "{}", p.display()),
            Origin::Embedded => write!(f, "the embedded default"),
        }
    }
}

/// A policy text to try.
#[derive(Clone, Debug)]
pub struct Candidate {
    pub origin: Origin,
    /// The control plane's version number (0 for local policies).
    pub version: u64,
    pub text: String,
}

/// A candidate passed over, and why.
#[derive(Clone, Debug)]
pub struct Refusal {
    pub origin: Origin,
    pub version: u64,
    pub reason: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "policy version {} from {} refused: {}",
            self.version, self.origin, self.reason
        )
    }
}

/// The policy the gateway starts under.
pub struct Chosen {
    pub origin: Origin,
    pub version: u64,
    pub text: String,
    pub policy: Arc<Policy>,
    pub web: Option<WebSetup>,
    pub refused: Vec<Refusal>,
}

fn compile(c: &Candidate, categories: Option<&Path>) -> anyhow::Result<(Policy, Option<WebSetup>)> {
    let name = match &c.origin {
        Origin::ControlPlane => format!("policy version {}", c.version),
        o => o.to_string(),
    };
    let policy = Policy::from_toml(&name, &c.text)?;
    let web = match categories {
        Some(db) => Some(WebSetup::load(&policy, &name, db)?),
        None => None,
    };
    Ok((policy, web))
}

/// The first candidate that compiles. The embedded default is always tried last, and
/// without the web filter if its `[web]` section does not fit the database.
pub fn choose(candidates: Vec<Candidate>, categories: Option<&Path>) -> Chosen {
    let mut refused = Vec::new();
    let embedded = Candidate {
        origin: Origin::Embedded,
        version: 0,
        text: EMBEDDED_DEFAULT.to_string(),
    };
    for c in candidates.into_iter().chain(std::iter::once(embedded)) {
        match compile(&c, categories) {
            Ok((policy, web)) => {
                return Chosen {
                    origin: c.origin,
                    version: c.version,
                    text: c.text,
                    policy: Arc::new(policy),
                    web,
                    refused,
                };
            }
            Err(e) => refused.push(Refusal {
                origin: c.origin,
                version: c.version,
                reason: format!("{e:#}"),
            }),
        }
    }
    Chosen {
        origin: Origin::Embedded,
        version: 0,
        text: EMBEDDED_DEFAULT.to_string(),
        policy: Arc::new(Policy::default()),
        web: None,
        refused,
    }
}

/// The last policy that ran, kept beside the gateway's other state: the version on the
/// first line (`# version N`), then the text.
#[derive(Clone, Debug)]
pub struct LastGood {
    pub path: PathBuf,
}

impl LastGood {
    pub fn in_dir(dir: &Path) -> LastGood {
        LastGood {
            path: dir.join("last-good-policy.toml"),
        }
    }

    /// The saved candidate; `None` when there is none or it is unreadable (reported by
    /// the caller as a refusal only if it exists).
    pub fn load(&self) -> Option<Result<Candidate, String>> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => return Some(Err(format!("{}: {e}", self.path.display()))),
        };
        let version = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# version "))
            .and_then(|v| v.trim().parse().ok());
        Some(match version {
            Some(version) => Ok(Candidate {
                origin: Origin::LastGood(self.path.clone()),
                version,
                text,
            }),
            None => Err(format!(
                "{}: line 1: expected \"# version N\"",
                self.path.display()
            )),
        })
    }

    /// Saves the policy now running: written beside and renamed over, so a crash
    /// mid-write leaves the previous one; readable by root only.
    pub fn save(&self, version: u64, text: &str) -> anyhow::Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("{}: cannot create", dir.display()))?;
        }
        let tmp = self.path.with_extension("toml.new");
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("{}: cannot create", tmp.display()))?;
        let body = without_version_line(text);
        write!(f, "# version {version}\n{body}")
            .and_then(|()| f.sync_all())
            .with_context(|| format!("{}: cannot write", tmp.display()))?;
        std::fs::rename(&tmp, &self.path)
            .with_context(|| format!("{}: cannot replace", self.path.display()))
    }
}

/// A text saved before carries its version line; it is not repeated.
fn without_version_line(text: &str) -> &str {
    match text.split_once('\n') {
        Some((first, rest)) if first.starts_with("# version ") => rest,
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(origin: Origin, version: u64, text: &str) -> Candidate {
        Candidate {
            origin,
            version,
            text: text.into(),
        }
    }

    #[test]
    fn the_first_policy_that_compiles_wins_and_the_others_are_reported() {
        let bad = "[firewall]\ndefault_lan_to_wan = \"maybe\"\n";
        let good = "[firewall]\ndefault_wan_to_lan = \"deny\"\n";
        let c = choose(
            vec![
                cand(Origin::ControlPlane, 7, bad),
                cand(Origin::LastGood("/x".into()), 6, good),
            ],
            None,
        );
        assert_eq!((c.origin, c.version), (Origin::LastGood("/x".into()), 6));
        assert_eq!(c.refused.len(), 1);
        assert!(
            c.refused[0].to_string().contains("version 7"),
            "{}",
            c.refused[0]
        );
        let c = choose(vec![cand(Origin::ControlPlane, 7, bad)], None);
        assert_eq!(c.origin, Origin::Embedded);
    }

    #[test]
    fn last_good_round_trips_and_refuses_a_damaged_file() {
        let dir = std::env::temp_dir().join(format!("mm-lastgood-{}", std::process::id()));
        let lg = LastGood::in_dir(&dir);
        assert!(lg.load().is_none());
        lg.save(41, "[flows]\ncapacity = 1024\n").unwrap();
        lg.save(42, "# version 41\n[flows]\ncapacity = 2048\n")
            .unwrap();
        let c = lg.load().unwrap().unwrap();
        assert_eq!(c.version, 42);
        assert_eq!(c.text.matches("# version").count(), 1);
        assert!(Policy::from_toml("t", &c.text).is_ok());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&lg.path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::write(&lg.path, "garbage").unwrap();
        assert!(lg.load().unwrap().is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}

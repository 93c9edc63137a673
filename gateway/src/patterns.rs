//! Pattern sets the control plane hands over (issue 14): a verified bundle file in its
//! patterns folder, named by path and SHA-256 (a rule set does not cross the socket).
//!
//! The control plane verified the bundle's signature and parts before it stored the file;
//! the gateway has no desk key, so it ties the file to that verification by its SHA-256
//! (a file changed or replaced since is refused), then reads the container and the
//! manifest again (structure, bounds, kind) and compiles the parts, here, off the data
//! path. Nothing is in force until the caller swaps it in; every refusal names the file,
//! the part and the reason, and the running set stays.

use crate::webfilter::MappedPart;
use mimamori_pipelines::firewall::CidrSet;
use mimamori_pipelines::inspect::RuleBook;
use mimamori_signatures::bundle::{self, Kind, Limits, Manifest, container};
use mimamori_signatures::category::CategoryDb;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A compiled set, ready to swap in.
pub enum Compiled {
    /// Shared as it is built: the stages take it as it is.
    Rules(std::sync::Arc<RuleBook>),
    Categories(CategoryDb),
}

/// What is known about a set that runs (or was refused): shown in `stats`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PatternInfo {
    pub kind: String,
    pub version: u64,
    pub sha256: String,
    pub file: String,
    /// Rules compiled, categories held, ...
    pub summary: String,
}

pub struct Loaded {
    pub info: PatternInfo,
    pub compiled: Compiled,
}

/// The kinds a running gateway takes.
pub fn kind_taken(kind: &str) -> Result<Kind, String> {
    match kind.parse::<Kind>() {
        Ok(k @ (Kind::Rules | Kind::Categories)) => Ok(k),
        Ok(k) => Err(format!(
            "the gateway does not take {k} bundles yet (rules and categories only)"
        )),
        Err(e) => Err(e.to_string()),
    }
}

/// Reads, checks and compiles the bundle of `kind` at `path`, whose SHA-256 must be
/// `sha256` (lowercase hex). `lan` is the running policy's LAN (`$HOME_NET` of the rules).
pub fn load(kind: &str, path: &Path, sha256: &str, lan: &CidrSet) -> Result<Loaded, String> {
    let kind = kind_taken(kind)?;
    let name = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|e| format!("{name}: cannot open: {e}"))?;
    // SAFETY: read-only and private to this process. The control plane writes bundle
    // files through a temporary file and a rename and never changes one in place, so the
    // mapped bytes do not change underneath (the SHA-256 below is checked on them).
    #[allow(unsafe_code)]
    let map =
        unsafe { memmap2::Mmap::map(&file) }.map_err(|e| format!("{name}: cannot map: {e}"))?;
    let map = Arc::new(map);
    let got = bundle::hex(&Sha256::digest(&map[..]));
    if got != sha256 {
        return Err(format!(
            "{name}: SHA-256 {got}, the control plane said {sha256}: the file changed after it was verified"
        ));
    }
    let limits = Limits::default();
    let c = container::decode(&map, &limits).map_err(|e| format!("{name}: {e}"))?;
    let manifest: Manifest =
        bundle::parse_manifest(c.manifest, &limits).map_err(|e| format!("{name}: {e}"))?;
    if manifest.kind != kind {
        return Err(format!(
            "{name}: the manifest says kind {}, the control plane asked for {kind}",
            manifest.kind
        ));
    }
    let claims = format!("{name} ({kind} version {})", manifest.version);
    let (compiled, summary) = match kind {
        Kind::Rules => {
            let texts: Vec<(&str, &[u8])> = c
                .parts
                .iter()
                .filter(|(n, _)| n.ends_with(".rules"))
                .copied()
                .collect();
            if texts.is_empty() {
                return Err(format!(
                    "{claims}: no part named *.rules (parts: {})",
                    part_names(&c.parts)
                ));
            }
            let parsed = RuleBook::parse(&texts, lan);
            let parts = texts.len();
            // The bundle's text is not needed once parsed: unmap it before the engine is
            // built, so the two are never resident together (the swap's memory peak).
            drop(texts);
            drop(c);
            drop(map);
            let book = RuleBook::build(parsed);
            if book.build.compiled == 0 {
                let reasons: Vec<String> = book
                    .load
                    .top_reasons(3)
                    .iter()
                    .map(|(r, n)| format!("{n} {r}"))
                    .collect();
                let first = book
                    .load
                    .skipped
                    .first()
                    .map(|s| format!("; first: part {} line {}: {}", s.file, s.line, s.reason))
                    .unwrap_or_default();
                return Err(format!(
                    "{claims}: no rule compiled ({} enabled in {} parts; skipped: {}{first})",
                    book.load.enabled,
                    parts,
                    if reasons.is_empty() {
                        "none".into()
                    } else {
                        reasons.join(", ")
                    }
                ));
            }
            let summary = format!(
                "{} of {} enabled rules compiled from {} parts",
                book.build.compiled, book.load.enabled, parts
            );
            (Compiled::Rules(std::sync::Arc::new(book)), summary)
        }
        Kind::Categories => {
            let [(part, bytes)] = c.parts.as_slice() else {
                return Err(format!(
                    "{claims}: a category bundle holds one part, the database; this one holds {} ({})",
                    c.parts.len(),
                    part_names(&c.parts)
                ));
            };
            let offset = bytes.as_ptr() as usize - map.as_ptr() as usize;
            let storage = MappedPart::new(map.clone(), offset, bytes.len());
            let db = CategoryDb::from_storage(Box::new(storage))
                .map_err(|e| format!("{claims}: part {part}: {e}"))?;
            let summary = format!("{} categories, {} entries", db.categories.len(), db.len());
            (Compiled::Categories(db), summary)
        }
        _ => unreachable!("kind_taken admits rules and categories"),
    };
    Ok(Loaded {
        info: PatternInfo {
            kind: kind.as_str().to_string(),
            version: manifest.version,
            sha256: sha256.to_string(),
            file: PathBuf::from(path).display().to_string(),
            summary,
        },
        compiled,
    })
}

fn part_names(parts: &[(&str, &[u8])]) -> String {
    if parts.is_empty() {
        return "none".into();
    }
    parts.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
}

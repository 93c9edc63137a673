//! Pattern bundles the desk serves: an admin publishes a signed bundle (as
//! `mimamori-sig bundle sign` made it) under its kind and version; boxes list the newest per
//! kind and fetch it over the uplink. The desk does not hold the signing key and does not
//! need to trust the file: every box verifies the signature and the version itself.

use super::{Actor, Refusal, Result, audit, now};
use crate::params;
use crate::store::{Conn, RowExt};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Largest bundle taken (ET Open is ~40 MB).
pub const BUNDLE_MAX: usize = 256 << 20;

#[derive(Clone, Debug, Serialize)]
pub struct Published {
    pub kind: String,
    pub version: u64,
    pub sha256: String,
    pub size: u64,
}

fn valid_kind(kind: &str) -> bool {
    !kind.is_empty()
        && kind.len() <= 32
        && kind.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')
}

/// Writes the file first (temporary name, fsync, rename), then the row: a crash leaves at
/// worst an unlisted file.
pub fn publish(
    c: &mut dyn Conn,
    actor: &Actor,
    dir: &Path,
    kind: &str,
    version: u64,
    bytes: &[u8],
) -> Result<Published> {
    actor.require_admin()?;
    if !valid_kind(kind) {
        return Err(Refusal::BadInput(format!(
            "kind: {kind:?} — lower-case letters and '-'"
        )));
    }
    if version == 0 || version > i64::MAX as u64 {
        return Err(Refusal::BadInput("version: 1 to 2^63-1".into()));
    }
    if bytes.is_empty() || bytes.len() > BUNDLE_MAX {
        return Err(Refusal::BadInput(format!(
            "body: a bundle of 1 byte to {} MiB",
            BUNDLE_MAX >> 20
        )));
    }
    let newest = c
        .one(
            "SELECT MAX(version) FROM pattern WHERE kind = ?",
            params![kind],
        )?
        .and_then(|r| r.opt_int(0).ok().flatten())
        .unwrap_or(0);
    if version as i64 <= newest {
        return Err(Refusal::Conflict(format!(
            "version: {version} is not newer than the published {kind} {newest}"
        )));
    }
    let sha: String = Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    std::fs::create_dir_all(dir)
        .map_err(|e| Refusal::Conflict(format!("{}: {e}", dir.display())))?;
    let file = dir.join(format!("{kind}-{version}-{}.mmb", &sha[..12]));
    write_durably(&file, bytes).map_err(|e| {
        Refusal::Store(crate::store::StoreError::Full(format!(
            "{}: {e}",
            file.display()
        )))
    })?;
    c.exec(
        "INSERT INTO pattern (kind, version, sha256, size, file, published_by, created) VALUES (?, ?, ?, ?, ?, ?, ?)",
        params![kind, version as i64, &sha, bytes.len() as i64, file.display().to_string(), actor.name(), now()],
    )?;
    audit(
        c,
        actor,
        "patterns.publish",
        kind,
        &format!("version {version}, sha256 {sha}"),
    )?;
    Ok(Published {
        kind: kind.into(),
        version,
        sha256: sha,
        size: bytes.len() as u64,
    })
}

fn write_durably(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// The newest bundle of each kind.
pub fn latest(c: &mut dyn Conn) -> Result<Vec<Published>> {
    c.query(
        "SELECT p.kind, p.version, p.sha256, p.size FROM pattern p
         WHERE p.version = (SELECT MAX(q.version) FROM pattern q WHERE q.kind = p.kind) ORDER BY p.kind",
        &[],
    )?
    .iter()
    .map(|r| Ok(Published { kind: r.text(0)?, version: r.int(1)? as u64, sha256: r.text(2)?, size: r.int(3)? as u64 }))
    .collect()
}

/// Where a published bundle's file is.
pub fn file(c: &mut dyn Conn, kind: &str, version: u64) -> Result<PathBuf> {
    c.one(
        "SELECT file FROM pattern WHERE kind = ? AND version = ?",
        params![kind, version as i64],
    )?
    .map(|r| r.text(0).map(PathBuf::from))
    .transpose()?
    .ok_or_else(|| Refusal::NotFound(format!("{kind} {version}: not published")))
}

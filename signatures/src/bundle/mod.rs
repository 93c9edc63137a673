//! Pattern bundles: one file carrying a signed manifest and the parts it names (a rule
//! set, a category database, later application, malware and spam definitions).
//!
//! The manifest (JSON) names the bundle's kind, its version (a u64 that only grows for a
//! kind), its publication time, the oldest gateway that can use it, and every part's name,
//! size and SHA-256. The desk signs the manifest's exact bytes with ed25519; the parts are
//! covered through their hashes. A box accepts a bundle only when a key it trusts signed
//! it and every part is there, has its size and its hash, and nothing else is there.
//! The file layout is in [`container`]; docs/PATTERNS.md tells the whole story.
//!
//! Everything here is pure: bytes in, a verified view or a typed refusal out. Storing,
//! the downgrade rule against what is installed and handing the parts on belong to the
//! caller (the control plane), with [`admit`] for the version rule.

pub mod container;
pub mod keys;
mod manifest;
mod time;

use manifest::match_parts;
pub use manifest::parse_manifest;
pub use time::{parse_time, utc};

use container::RawSignature;
use ed25519_dalek::{Signature, Signer, SigningKey};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;

pub use keys::{KeyError, KeyId, TrustedKeys};

/// Prefixed to the manifest bytes before signing: a signature made for anything else
/// (another protocol, another format) never verifies as a bundle signature.
pub const SIGNING_CONTEXT: &[u8] = b"mimamori bundle manifest v1\0";
/// The manifest format this build writes and reads.
pub const MANIFEST_FORMAT: u64 = 1;
/// Longest part name; names are also file names on the box.
pub const MAX_NAME: usize = 128;

/// What a bundle holds. A name outside this list is refused: a box must not store
/// something it does not know how to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Rules,
    Categories,
    Apps,
    Malware,
    Spam,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Rules,
        Kind::Categories,
        Kind::Apps,
        Kind::Malware,
        Kind::Spam,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Rules => "rules",
            Kind::Categories => "categories",
            Kind::Apps => "apps",
            Kind::Malware => "malware",
            Kind::Spam => "spam",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Kind {
    type Err = BundleError;
    fn from_str(s: &str) -> Result<Kind, BundleError> {
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| BundleError::UnknownKind(s.chars().take(40).collect()))
    }
}

/// A gateway version, `MAJOR.MINOR.PATCH`, compared numerically.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct GatewayVersion(pub u32, pub u32, pub u32);

impl GatewayVersion {
    /// The version of this build (the workspace shares one version).
    pub fn this() -> GatewayVersion {
        env!("CARGO_PKG_VERSION")
            .parse()
            .unwrap_or(GatewayVersion(0, 0, 0))
    }
}

impl FromStr for GatewayVersion {
    type Err = BundleError;
    fn from_str(s: &str) -> Result<GatewayVersion, BundleError> {
        let bad = || BundleError::BadMinGateway(s.chars().take(40).collect());
        let mut it = s.split('.');
        let mut n = [0u32; 3];
        for slot in &mut n {
            let p = it.next().ok_or_else(bad)?;
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            *slot = p.parse().map_err(|_| bad())?;
        }
        if it.next().is_some() {
            return Err(bad());
        }
        Ok(GatewayVersion(n[0], n[1], n[2]))
    }
}

impl fmt::Display for GatewayVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

impl Serialize for GatewayVersion {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// One part as the manifest names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PartEntry {
    pub name: String,
    pub size: u64,
    /// Lowercase hex.
    pub sha256: String,
}

/// The signed description of a bundle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Manifest {
    pub format: u64,
    pub kind: Kind,
    pub version: u64,
    /// Seconds since 1970-01-01 UTC.
    pub published: u64,
    pub min_gateway: GatewayVersion,
    pub parts: Vec<PartEntry>,
}

/// Bounds on what a bundle may claim, checked before anything is hashed or stored.
#[derive(Clone, Debug)]
pub struct Limits {
    pub max_bundle: u64,
    pub max_manifest: u64,
    pub max_parts: usize,
    pub max_part: u64,
}

impl Default for Limits {
    /// ET Open whole is ~40 MB of text and a category database of the big public lists
    /// ~100 MB: a part may be 256 MiB, a bundle 512 MiB.
    fn default() -> Limits {
        Limits {
            max_bundle: 512 << 20,
            max_manifest: 1 << 20,
            max_parts: 64,
            max_part: 256 << 20,
        }
    }
}

/// Why a bundle is refused. Each names the part and the number that is wrong where there
/// is one; [`Refused`] adds which bundle.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    #[error("not a mimamori bundle (bad magic)")]
    BadMagic,
    #[error("container format {0}; this build reads format {f}", f = container::FORMAT)]
    UnsupportedFormat(u32),
    #[error("the file ends inside {at} (at byte {offset} of {size}): truncated or damaged")]
    Truncated { at: String, offset: u64, size: u64 },
    #[error("{0} bytes follow the last part: damaged or not built by mimamori-sig")]
    TrailingBytes(u64),
    #[error("the bundle is {size} bytes, more than the limit of {limit}")]
    BundleTooLarge { size: u64, limit: u64 },
    #[error("the manifest is {size} bytes, more than the limit of {limit}")]
    ManifestTooLarge { size: u64, limit: u64 },
    #[error("{count} parts, more than the limit of {limit}")]
    TooManyParts { count: usize, limit: usize },
    #[error("part {part}: {size} bytes, more than the limit of {limit}")]
    PartTooLarge { part: String, size: u64, limit: u64 },
    #[error("{count} signatures, more than the limit of {limit}")]
    TooManySignatures { count: usize, limit: usize },
    #[error("the manifest: {0}")]
    ManifestSyntax(String),
    #[error("the manifest: manifest format {0}; this build reads format {MANIFEST_FORMAT}")]
    ManifestFormat(String),
    #[error("the manifest: unknown kind {0:?} (known: rules, categories, apps, malware, spam)")]
    UnknownKind(String),
    #[error("the manifest: version {0} is not a whole number from 0 to 2^64-1")]
    BadVersion(String),
    #[error("the manifest: publication time {0} is not seconds since 1970 (a whole number)")]
    BadPublished(String),
    #[error("the manifest: minimum gateway version {0:?} is not MAJOR.MINOR.PATCH")]
    BadMinGateway(String),
    #[error("the bundle needs gateway {needs} or later; this gateway is {have}")]
    GatewayTooOld {
        needs: GatewayVersion,
        have: GatewayVersion,
    },
    #[error("part {name:?}: bad name ({reason})")]
    BadPartName { name: String, reason: &'static str },
    #[error("part {part}: bad sha256 in the manifest (expected 64 lowercase hex digits)")]
    BadPartHash { part: String },
    #[error("part {0}: named twice")]
    DuplicatePart(String),
    #[error("the manifest names no part")]
    NoParts,
    #[error("part {0}: named in the manifest but missing from the file")]
    MissingPart(String),
    #[error("part {0}: in the file but not named in the manifest")]
    ExtraPart(String),
    #[error("part {part}: {actual} bytes in the file, the manifest says {manifest}")]
    PartSize {
        part: String,
        manifest: u64,
        actual: u64,
    },
    #[error(
        "part {part}: SHA-256 {actual}, the manifest says {manifest}: the part was altered or damaged"
    )]
    PartHash {
        part: String,
        manifest: String,
        actual: String,
    },
    #[error("not signed")]
    Unsigned,
    #[error("signed by {signers}, none of them trusted (trusted: {trusted})")]
    UntrustedSigner { signers: String, trusted: String },
    #[error(
        "the signature by trusted key {0} does not verify: the manifest was altered or the signature is damaged"
    )]
    BadSignature(KeyId),
    #[error(
        "{kind} version {offered} is not newer than the installed version {current} (a rollback must be forced)"
    )]
    NotNewer {
        kind: Kind,
        current: u64,
        offered: u64,
    },
}

/// A refusal naming the bundle: its label (a file name, "upload") and, when its manifest
/// could be read, the kind and version it claims.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("bundle {bundle}: refused: {error}")]
pub struct Refused {
    pub bundle: String,
    #[source]
    pub error: BundleError,
}

/// A bundle that passed every check. The parts borrow from the bundle bytes and come in
/// the manifest's order.
#[derive(Debug)]
pub struct Verified<'a> {
    pub manifest: Manifest,
    pub signer: KeyId,
    pub parts: Vec<(&'a str, &'a [u8])>,
}

/// Lowercase hex.
pub fn hex(b: &[u8]) -> String {
    const D: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for &x in b {
        s.push(D[usize::from(x >> 4)] as char);
        s.push(D[usize::from(x & 15)] as char);
    }
    s
}

/// Hex to bytes (either case); `None` on an odd length or a non-hex digit.
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    if b.len() & 1 == 1 {
        return None;
    }
    let nib = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    b.chunks_exact(2)
        .map(|p| Some(nib(p[0])? << 4 | nib(p[1])?))
        .collect()
}

/// A part name is a file name on the box: 1 to 128 of `A-Z a-z 0-9 . _ -`, not starting
/// with a dot.
pub fn check_part_name(name: &str) -> Result<(), BundleError> {
    let bad = |reason| BundleError::BadPartName {
        name: name.chars().take(MAX_NAME).collect(),
        reason,
    };
    if name.is_empty() {
        return Err(bad("empty"));
    }
    if name.len() > MAX_NAME {
        return Err(bad("longer than 128 bytes"));
    }
    if name.starts_with('.') {
        return Err(bad("starts with a dot"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(bad("only letters, digits, '.', '_' and '-' are allowed"));
    }
    Ok(())
}

fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

fn short(v: &serde_json::Value) -> String {
    let s = v.to_string();
    if s.len() > 60 {
        format!("{}…", s.chars().take(60).collect::<String>())
    } else {
        s
    }
}

/// What `build` needs besides the parts.
#[derive(Clone, Debug)]
pub struct BuildSpec {
    pub kind: Kind,
    pub version: u64,
    pub published: u64,
    pub min_gateway: GatewayVersion,
}

/// Builds an unsigned bundle from named parts (in the order given).
pub fn build(
    spec: &BuildSpec,
    parts: &[(String, Vec<u8>)],
    limits: &Limits,
) -> Result<Vec<u8>, BundleError> {
    if parts.is_empty() {
        return Err(BundleError::NoParts);
    }
    if parts.len() > limits.max_parts {
        return Err(BundleError::TooManyParts {
            count: parts.len(),
            limit: limits.max_parts,
        });
    }
    let mut entries: Vec<PartEntry> = Vec::with_capacity(parts.len());
    for (name, data) in parts {
        check_part_name(name)?;
        if entries.iter().any(|e| e.name == *name) {
            return Err(BundleError::DuplicatePart(name.clone()));
        }
        if data.len() as u64 > limits.max_part {
            return Err(BundleError::PartTooLarge {
                part: name.clone(),
                size: data.len() as u64,
                limit: limits.max_part,
            });
        }
        entries.push(PartEntry {
            name: name.clone(),
            size: data.len() as u64,
            sha256: sha256_hex(data),
        });
    }
    let manifest = Manifest {
        format: MANIFEST_FORMAT,
        kind: spec.kind,
        version: spec.version,
        published: spec.published,
        min_gateway: spec.min_gateway,
        parts: entries,
    };
    let mut mbytes = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| BundleError::ManifestSyntax(e.to_string()))?;
    mbytes.push(b'\n');
    if mbytes.len() as u64 > limits.max_manifest {
        return Err(BundleError::ManifestTooLarge {
            size: mbytes.len() as u64,
            limit: limits.max_manifest,
        });
    }
    let refs: Vec<(&str, &[u8])> = parts
        .iter()
        .map(|(n, d)| (n.as_str(), d.as_slice()))
        .collect();
    let out = container::encode(&mbytes, &[], &refs)?;
    if out.len() as u64 > limits.max_bundle {
        return Err(BundleError::BundleTooLarge {
            size: out.len() as u64,
            limit: limits.max_bundle,
        });
    }
    Ok(out)
}

/// Signs a bundle with `key`, after checking that it is whole (manifest readable, parts
/// matching): the desk never signs something a box would refuse. A signature by the same
/// key is replaced; signatures by other keys stay (rotation: sign with the old and the new).
pub fn sign(bundle: &[u8], key: &SigningKey, limits: &Limits) -> Result<Vec<u8>, BundleError> {
    let c = container::decode(bundle, limits)?;
    let manifest = parse_manifest(c.manifest, limits)?;
    match_parts(&manifest, &c.parts)?;
    let mut msg = Vec::with_capacity(SIGNING_CONTEXT.len() + c.manifest.len());
    msg.extend_from_slice(SIGNING_CONTEXT);
    msg.extend_from_slice(c.manifest);
    let public_key = key.verifying_key().to_bytes();
    let sig = RawSignature {
        public_key,
        signature: key.sign(&msg).to_bytes(),
    };
    let mut sigs: Vec<RawSignature> = c
        .signatures
        .into_iter()
        .filter(|s| s.public_key != public_key)
        .collect();
    sigs.push(sig);
    container::encode(c.manifest, &sigs, &c.parts)
}

/// Checks bundles against the keys a box trusts, its limits and its gateway version.
#[derive(Clone, Debug)]
pub struct Verifier {
    pub trust: TrustedKeys,
    pub limits: Limits,
    /// `None`: do not check `min_gateway` (the desk's tools).
    pub gateway: Option<GatewayVersion>,
}

impl Verifier {
    pub fn new(trust: TrustedKeys) -> Verifier {
        Verifier {
            trust,
            limits: Limits::default(),
            gateway: Some(GatewayVersion::this()),
        }
    }

    /// The whole check, in this order: structure and bounds; a signature by a trusted key
    /// over the manifest (nothing in the manifest is believed before that); the manifest's
    /// fields; the gateway version; the parts (names, sizes, hashes).
    pub fn verify<'a>(&self, bundle: &'a [u8]) -> Result<Verified<'a>, BundleError> {
        let c = container::decode(bundle, &self.limits)?;
        let signer = self.check_signatures(c.manifest, &c.signatures)?;
        let manifest = parse_manifest(c.manifest, &self.limits)?;
        if let Some(have) = self.gateway
            && manifest.min_gateway > have
        {
            return Err(BundleError::GatewayTooOld {
                needs: manifest.min_gateway,
                have,
            });
        }
        let parts = match_parts(&manifest, &c.parts)?;
        Ok(Verified {
            manifest,
            signer,
            parts,
        })
    }

    /// [`verify`](Self::verify), with a refusal that names the bundle.
    pub fn check<'a>(&self, label: &str, bundle: &'a [u8]) -> Result<Verified<'a>, Refused> {
        self.verify(bundle).map_err(|error| Refused {
            bundle: describe(label, bundle, &self.limits),
            error,
        })
    }

    fn check_signatures(
        &self,
        manifest: &[u8],
        sigs: &[RawSignature],
    ) -> Result<KeyId, BundleError> {
        if sigs.is_empty() {
            return Err(BundleError::Unsigned);
        }
        let mut msg = Vec::with_capacity(SIGNING_CONTEXT.len() + manifest.len());
        msg.extend_from_slice(SIGNING_CONTEXT);
        msg.extend_from_slice(manifest);
        let mut failed = None;
        for s in sigs {
            let Some(k) = self.trust.get(&s.public_key) else {
                continue;
            };
            let id = KeyId::of(&s.public_key);
            // Strict: refuses non-canonical signatures and weak keys.
            if k.verify_strict(&msg, &Signature::from_bytes(&s.signature))
                .is_ok()
            {
                return Ok(id);
            }
            failed = Some(id);
        }
        if let Some(id) = failed {
            return Err(BundleError::BadSignature(id));
        }
        let list = |ids: Vec<KeyId>| {
            ids.iter()
                .map(|i| format!("key {i}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        Err(BundleError::UntrustedSigner {
            signers: list(sigs.iter().map(|s| KeyId::of(&s.public_key)).collect()),
            trusted: list(self.trust.ids()),
        })
    }
}

/// A label for messages: `label`, plus the kind and version the manifest claims when it
/// can be read (marked as a claim: it may not be verified).
pub fn describe(label: &str, bundle: &[u8], limits: &Limits) -> String {
    let claim = container::decode(bundle, limits)
        .ok()
        .and_then(|c| parse_manifest(c.manifest, limits).ok());
    match claim {
        Some(m) => format!("{label} (claims {} version {})", m.kind, m.version),
        None => label.to_string(),
    }
}

/// The downgrade rule: a bundle must be newer than the installed one of its kind, unless
/// the operator forces a rollback.
pub fn admit(
    kind: Kind,
    current: Option<u64>,
    offered: u64,
    force_rollback: bool,
) -> Result<(), BundleError> {
    match current {
        Some(current) if offered <= current && !force_rollback => Err(BundleError::NotNewer {
            kind,
            current,
            offered,
        }),
        _ => Ok(()),
    }
}

/// What `inspect` shows: the manifest and the signers, read without trusting anything,
/// and whether the parts match the manifest.
#[derive(Debug, Serialize)]
pub struct Inspection {
    pub manifest: Manifest,
    pub published_utc: String,
    pub size: u64,
    pub signatures: Vec<SignerInfo>,
    /// `None` when the parts match the manifest; else why not.
    pub parts_problem: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct SignerInfo {
    pub key_id: String,
    pub public_key: String,
}

/// Reads a bundle without checking signatures (see `Verifier` for that).
pub fn inspect(bundle: &[u8], limits: &Limits) -> Result<Inspection, BundleError> {
    let c = container::decode(bundle, limits)?;
    let manifest = parse_manifest(c.manifest, limits)?;
    let parts_problem = match_parts(&manifest, &c.parts)
        .err()
        .map(|e| e.to_string());
    Ok(Inspection {
        published_utc: utc(manifest.published),
        manifest,
        size: bundle.len() as u64,
        signatures: c
            .signatures
            .iter()
            .map(|s| SignerInfo {
                key_id: KeyId::of(&s.public_key).to_string(),
                public_key: format!("{}{}", keys::PUBLIC_PREFIX, hex(&s.public_key)),
            })
            .collect(),
        parts_problem,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_round_trips() {
        for s in [0u64, 951_782_400, 1_764_633_600, 4_102_444_799] {
            assert_eq!(parse_time(&utc(s)), Some(s), "{}", utc(s));
        }
        assert_eq!(utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(parse_time("2026-02-31T00:00:00Z"), None);
        assert_eq!(parse_time("2026-1-01T00:00:00Z"), None);
    }

    #[test]
    fn hex_round_trips() {
        assert_eq!(
            unhex(&hex(&[0, 1, 0xab, 0xff])),
            Some(vec![0, 1, 0xab, 0xff])
        );
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("zz"), None);
    }

    #[test]
    fn gateway_versions() {
        assert_eq!(
            "1.2.3".parse::<GatewayVersion>(),
            Ok(GatewayVersion(1, 2, 3))
        );
        for bad in ["1.2", "1.2.3.4", "1.x.3", "", "+1.2.3", "1..3"] {
            assert!(bad.parse::<GatewayVersion>().is_err(), "{bad}");
        }
        assert!(GatewayVersion(0, 10, 0) > GatewayVersion(0, 9, 9));
    }
}

//! The file format and lookups. Little-endian throughout:
//!
//! ```text
//! 0   "MMCATDB\x01"  magic
//! 8   u32 version (1) | u32 sources | u32 categories | u32 bucket_bits
//! 24  u64 entries | u64 build time (Unix seconds)
//! 40  sources: (u16 len, name, u16 len, date)*; categories: (u16 len, name)*; pad to 8
//!     index: (2^bucket_bits + 1) x u32, first entry of each bucket (top hash bits)
//!     entries: 16 bytes each, sorted by hash: u64 hash, u16 category, u16 source, u8 kind, 3 x 0
//! end u32 CRC-32 of everything before it, then "MMCATEND"
//! ```

use super::{MAX_LABELS, name_hash, strip_www, suffix_hashes};
use std::fmt;

const MAGIC: &[u8; 8] = b"MMCATDB\x01";
const TRAILER: &[u8; 8] = b"MMCATEND";
const VERSION: u32 = 1;
const ENTRY: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[repr(u8)]
pub enum MatchKind {
    Domain = 0,
    Url = 1,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct RawEntry {
    pub hash: u64,
    pub cat: u16,
    pub src: u16,
    pub kind: MatchKind,
}

/// One category hit: which category, which list, and whether a domain or URL entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Match {
    pub category: u16,
    pub source: u16,
    pub kind: MatchKind,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DbError {
    #[error("not a category database (bad magic)")]
    BadMagic,
    #[error("format version {0}, this build reads version {VERSION}")]
    Version(u32),
    #[error("file is truncated or its sections do not add up ({0})")]
    Truncated(&'static str),
    #[error(
        "checksum mismatch (stored {stored:#010x}, computed {computed:#010x}): the file is corrupt"
    )]
    Checksum { stored: u32, computed: u32 },
    #[error("invalid content: {0}")]
    Invalid(&'static str),
}

/// About 8 entries per bucket: the index (4 bytes a bucket) stays small enough to sit in
/// cache, and a bucket's entries span one or two cache lines.
fn bucket_bits(n: usize) -> u32 {
    (usize::BITS - (n / 8).max(1).leading_zeros()).clamp(4, 28)
}

pub(crate) fn encode(
    sources: &[(String, String)],
    categories: &[String],
    entries: &[RawEntry],
    build_time: u64,
) -> Vec<u8> {
    let bits = bucket_bits(entries.len());
    let mut out = Vec::with_capacity(64 + entries.len() * ENTRY + (4 << bits));
    out.extend_from_slice(MAGIC);
    for v in [VERSION, sources.len() as u32, categories.len() as u32, bits] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&(entries.len() as u64).to_le_bytes());
    out.extend_from_slice(&build_time.to_le_bytes());
    let string = |s: &str, out: &mut Vec<u8>| {
        let b = &s.as_bytes()[..s.len().min(u16::MAX as usize)];
        out.extend_from_slice(&(b.len() as u16).to_le_bytes());
        out.extend_from_slice(b);
    };
    for (n, d) in sources {
        string(n, &mut out);
        string(d, &mut out);
    }
    for c in categories {
        string(c, &mut out);
    }
    while out.len() % 8 != 0 {
        out.push(0);
    }
    let buckets = 1usize << bits;
    let mut at = 0usize;
    for b in 0..=buckets {
        while at < entries.len() && ((entries[at].hash >> (64 - bits)) as usize) < b {
            at += 1;
        }
        out.extend_from_slice(&(at as u32).to_le_bytes());
    }
    for e in entries {
        out.extend_from_slice(&e.hash.to_le_bytes());
        out.extend_from_slice(&e.cat.to_le_bytes());
        out.extend_from_slice(&e.src.to_le_bytes());
        out.extend_from_slice(&[e.kind as u8, 0, 0, 0]);
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(TRAILER);
    out
}

/// An opened, verified database. Lookups read the bytes in place.
/// Where a database image lives: a `Vec` read from the file, or a memory map (the gateway
/// maps the file so that workers and a reload share the page cache).
pub type Storage = Box<dyn AsRef<[u8]> + Send + Sync>;

pub struct CategoryDb {
    store: Storage,
    pub sources: Vec<(String, String)>,
    pub categories: Vec<String>,
    pub build_time: u64,
    bits: u32,
    index_at: usize,
    entries_at: usize,
    entries: usize,
}

impl fmt::Debug for CategoryDb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "CategoryDb({} entries, {} categories, {} sources)",
            self.entries,
            self.categories.len(),
            self.sources.len()
        )
    }
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, DbError> {
    b.get(at..at + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or(DbError::Truncated("header"))
}
fn u64_at(b: &[u8], at: usize) -> Result<u64, DbError> {
    b.get(at..at + 8)
        .map(|s| u64::from_le_bytes(s.try_into().unwrap_or([0; 8])))
        .ok_or(DbError::Truncated("header"))
}

impl CategoryDb {
    /// Verifies and opens a database image: magic, version, section sizes, checksum,
    /// index order and every entry's category and source.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<CategoryDb, DbError> {
        Self::from_storage(Box::new(bytes))
    }

    /// [`Self::from_bytes`] for any storage, e.g. a memory-mapped file.
    pub fn from_storage(store: Storage) -> Result<CategoryDb, DbError> {
        let bytes: &[u8] = (*store).as_ref();
        if bytes.len() < 40 + 12 || &bytes[..8] != MAGIC {
            return Err(if bytes.len() >= 8 && &bytes[..7] == b"MMCATDB" {
                DbError::Version(u32::from(bytes[7]))
            } else {
                DbError::BadMagic
            });
        }
        let version = u32_at(bytes, 8)?;
        if version != VERSION {
            return Err(DbError::Version(version));
        }
        let body_len = bytes.len() - 12;
        if &bytes[body_len + 4..] != TRAILER {
            return Err(DbError::Truncated("no trailer"));
        }
        let stored = u32_at(bytes, body_len)?;
        let computed = crc32fast::hash(&bytes[..body_len]);
        if stored != computed {
            return Err(DbError::Checksum { stored, computed });
        }
        let (ns, nc, bits) = (
            u32_at(bytes, 12)? as usize,
            u32_at(bytes, 16)? as usize,
            u32_at(bytes, 20)?,
        );
        let n = usize::try_from(u64_at(bytes, 24)?).map_err(|_| DbError::Invalid("entry count"))?;
        let build_time = u64_at(bytes, 32)?;
        if !(4..=28).contains(&bits) || ns > u16::MAX as usize || nc > u16::MAX as usize {
            return Err(DbError::Invalid("header counts"));
        }
        let mut at = 40;
        let string = |at: &mut usize| -> Result<String, DbError> {
            let len = usize::from(u16::from_le_bytes(
                bytes
                    .get(*at..*at + 2)
                    .ok_or(DbError::Truncated("strings"))?
                    .try_into()
                    .unwrap_or([0; 2]),
            ));
            let s = bytes
                .get(*at + 2..*at + 2 + len)
                .ok_or(DbError::Truncated("strings"))?;
            *at += 2 + len;
            String::from_utf8(s.to_vec()).map_err(|_| DbError::Invalid("a name is not UTF-8"))
        };
        let mut sources = Vec::with_capacity(ns);
        for _ in 0..ns {
            let name = string(&mut at)?;
            let date = string(&mut at)?;
            sources.push((name, date));
        }
        let mut categories = Vec::with_capacity(nc);
        for _ in 0..nc {
            categories.push(string(&mut at)?);
        }
        at = at.div_ceil(8) * 8;
        let buckets = 1usize << bits;
        let index_at = at;
        let entries_at = index_at + (buckets + 1) * 4;
        if entries_at.checked_add(
            n.checked_mul(ENTRY)
                .ok_or(DbError::Invalid("entry count"))?,
        ) != Some(body_len)
        {
            return Err(DbError::Truncated("entries"));
        }
        let db = CategoryDb {
            store,
            sources,
            categories,
            build_time,
            bits,
            index_at,
            entries_at,
            entries: n,
        };
        let mut prev = 0u32;
        for b in 0..=buckets {
            let v = u32_at(db.bytes(), index_at + b * 4)?;
            if v < prev || v as usize > n {
                return Err(DbError::Invalid("bucket index out of order"));
            }
            prev = v;
        }
        let mut last = 0u64;
        for i in 0..n {
            let (h, m) = db.entry(i);
            if h < last
                || usize::from(m.category) >= nc
                || usize::from(m.source) >= ns
                || (h >> (64 - bits)) as usize >= buckets
            {
                return Err(DbError::Invalid(
                    "entries out of order, or naming a missing category or source",
                ));
            }
            last = h;
        }
        Ok(db)
    }

    pub fn open(path: &std::path::Path) -> Result<CategoryDb, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        CategoryDb::from_bytes(bytes).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn len(&self) -> usize {
        self.entries
    }
    #[inline]
    fn bytes(&self) -> &[u8] {
        (*self.store).as_ref()
    }
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }
    /// Bytes held in memory (the image itself; lookups allocate nothing).
    pub fn memory_bytes(&self) -> usize {
        self.bytes().len()
    }

    #[inline]
    fn entry(&self, i: usize) -> (u64, Match) {
        let at = self.entries_at + i * ENTRY;
        let e = &self.bytes()[at..at + ENTRY];
        let hash = u64::from_le_bytes([e[0], e[1], e[2], e[3], e[4], e[5], e[6], e[7]]);
        let kind = if e[12] == 1 {
            MatchKind::Url
        } else {
            MatchKind::Domain
        };
        (
            hash,
            Match {
                category: u16::from_le_bytes([e[8], e[9]]),
                source: u16::from_le_bytes([e[10], e[11]]),
                kind,
            },
        )
    }

    #[inline]
    fn bucket(&self, b: usize) -> usize {
        let at = self.index_at + b * 4;
        let s = &self.bytes()[at..at + 4];
        u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as usize
    }

    /// Appends every entry for `kind` with hash `h`; true when there was one.
    #[inline]
    fn probe_hash(&self, kind: MatchKind, h: u64, out: &mut Vec<Match>) -> bool {
        let b = (h >> (64 - self.bits)) as usize;
        let (start, end) = (self.bucket(b), self.bucket(b + 1));
        let before = out.len();
        for i in start..end {
            let (eh, m) = self.entry(i);
            if eh == h && m.kind == kind {
                out.push(m);
            } else if eh > h {
                break;
            }
        }
        out.len() > before
    }

    #[inline]
    fn probe(&self, kind: MatchKind, key: &[u8], out: &mut Vec<Match>) -> bool {
        self.probe_hash(kind, name_hash(kind, key), out)
    }

    /// The categories of a host name: the longest listed suffix at a label boundary wins
    /// (`a.b.example.test` tries itself, `b.example.test`, `example.test`, `test`).
    /// `out` is cleared first; returns whether anything matched. All suffixes are hashed in
    /// one pass and their index buckets read before any entry is compared, so the cache
    /// misses of one lookup overlap.
    pub fn lookup_host(&self, host: &str, out: &mut Vec<Match>) -> bool {
        out.clear();
        let host = host.trim_end_matches('.').as_bytes();
        let mut hashes = [0u64; MAX_LABELS];
        // Entries have at least two labels, so the last label alone is never probed.
        let n = suffix_hashes(host, &mut hashes);
        let hashes = &hashes[1.min(n)..n];
        let n = hashes.len();
        let mut first = [0u64; MAX_LABELS];
        for (h, f) in hashes[..n].iter().zip(first.iter_mut()) {
            let start = self.bucket((h >> (64 - self.bits)) as usize);
            *f = if start < self.entries {
                self.entry(start).0
            } else {
                0
            };
        }
        std::hint::black_box(&first);
        hashes[..n]
            .iter()
            .rev()
            .any(|&h| self.probe_hash(MatchKind::Domain, h, out))
    }

    /// The categories of a URL (`host` and `path` as the client sent them): URL entries by
    /// longest path prefix at a `/` boundary first, then the host's domain entries.
    pub fn lookup_url(&self, host: &str, path: &str, out: &mut Vec<Match>) -> bool {
        out.clear();
        let h = strip_www(host.split(':').next().unwrap_or(host).trim_end_matches('.')).as_bytes();
        let p = path
            .split(['?', '#'])
            .next()
            .unwrap_or("")
            .trim_end_matches('/')
            .as_bytes();
        let mut key = [0u8; 1024];
        if h.len() + p.len() <= key.len() {
            key[..h.len()].copy_from_slice(h);
            key[h.len()..h.len() + p.len()].copy_from_slice(p);
            let mut cut = p.len();
            loop {
                if self.probe(MatchKind::Url, &key[..h.len() + cut], out) {
                    return true;
                }
                match p[..cut].iter().rposition(|&c| c == b'/') {
                    Some(i) if cut > 0 => cut = i,
                    _ => break,
                }
            }
        }
        self.lookup_host(host, out)
    }
}

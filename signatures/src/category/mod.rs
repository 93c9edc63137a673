//! The URL category database: domain and URL lists (squidGuard/UT1 folders, hosts files)
//! compiled into one compact file with a header, a checksum, and a hash index.
//!
//! Lookup semantics follow squidGuard: a domain entry matches the name and every subdomain
//! (`amex.com` matches `www.amex.com`, not `aamex.com`); URL entries are path prefixes
//! (at `/` boundaries) after stripping the scheme, a `www\d*.` prefix and the port; the
//! most specific match wins; a name may sit in several categories and every match names
//! its category and its source list.
//!
//! Names are stored as 64-bit hashes, not text (that is what keeps an entry at 16 bytes);
//! the chance that a name not on any list hashes onto one is about 2^-44 per lookup at a
//! million entries.

mod build;
mod db;

pub use build::{BuildReport, Builder};
pub use db::{CategoryDb, DbError, Match, MatchKind};

/// The hash that defines the format: FNV-style over the ASCII-lowercased bytes taken from
/// the end backwards, finished with a strong 64-bit mixer. Going backwards lets one pass
/// over a host name yield the hash of every label suffix (`suffix_hashes`). Stable forever:
/// changing it means a new format version.
pub fn name_hash(kind: MatchKind, bytes: &[u8]) -> u64 {
    let mut st = hash_start(kind);
    for &b in bytes.iter().rev() {
        st = hash_step(st, b);
    }
    hash_finish(st)
}

#[inline]
fn hash_start(kind: MatchKind) -> u64 {
    0xcbf2_9ce4_8422_2325 ^ (kind as u64)
}

#[inline]
fn hash_step(h: u64, b: u8) -> u64 {
    (h ^ u64::from(b.to_ascii_lowercase())).wrapping_mul(0x0000_0100_0000_01b3)
}

#[inline]
fn hash_finish(mut h: u64) -> u64 {
    // splitmix64 finaliser: spreads the FNV state over all 64 bits.
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// Most labels of a name that lookups consider (DNS allows 127; lists never come close).
pub const MAX_LABELS: usize = 32;

/// Domain hashes of every label suffix of `host`, shortest first (`test`, `example.test`,
/// `www.example.test`), in one backwards pass. Returns how many were written.
pub fn suffix_hashes(host: &[u8], out: &mut [u64; MAX_LABELS]) -> usize {
    let mut st = hash_start(MatchKind::Domain);
    let mut n = 0;
    for i in (0..host.len()).rev() {
        st = hash_step(st, host[i]);
        if (i == 0 || host[i - 1] == b'.') && n < MAX_LABELS {
            out[n] = hash_finish(st);
            n += 1;
        }
    }
    n
}

/// Strips what squidGuard strips from a URL before matching: scheme, `user@`, a leading
/// `www`/`wwwN.` label, the port; returns (host, path) with the path starting at `/`.
pub fn split_url(url: &str) -> (&str, &str) {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if authority.starts_with('[') {
        authority
    } else {
        authority.split(':').next().unwrap_or(authority)
    };
    (strip_www(host.trim_end_matches('.')), path)
}

/// `www.`, `www2.`, `www13.` prefixes are not part of the name for URL entries.
pub fn strip_www(host: &str) -> &str {
    let b = host.as_bytes();
    if b.len() > 4 && b[..3].eq_ignore_ascii_case(b"www") {
        let digits = b[3..].iter().take_while(|c| c.is_ascii_digit()).count();
        if b.get(3 + digits) == Some(&b'.') {
            return &host[4 + digits..];
        }
    }
    host
}

/// Longest [`address_name`].
pub const ADDRESS_NAME_MAX: usize = 36;

/// The name an address is listed and looked up by: dotted IPv4, or for IPv6 its 32 hex
/// digits and `.ip6` (list files may write IPv6 addresses in any form).
pub fn address_name(ip: std::net::IpAddr, out: &mut [u8; ADDRESS_NAME_MAX]) -> &str {
    use std::io::Write;
    let mut w = &mut out[..];
    let _ = match ip {
        std::net::IpAddr::V4(a) => write!(w, "{a}"),
        std::net::IpAddr::V6(a) => write!(w, "{:032x}.ip6", u128::from(a)),
    };
    let n = ADDRESS_NAME_MAX - w.len();
    std::str::from_utf8(&out[..n]).unwrap_or("")
}

/// A plausible DNS name with at least two labels (or a dotted IPv4 address), as list
/// entries use them.
pub fn valid_name(s: &str) -> bool {
    s.contains('.')
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        })
}

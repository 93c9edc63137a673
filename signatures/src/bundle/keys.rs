//! Keys: the desk's ed25519 signing key, its public half in a text form, and the set of
//! public keys a box trusts (at most two at once, for rotation).
//!
//! Text forms (one line, lowercase hex of the 32 key bytes):
//!
//! ```text
//! mimamori-ed25519-pub:<64 hex>
//! mimamori-ed25519-secret:<64 hex>
//! ```
//!
//! A key is named in messages by its id: the first 8 bytes of the SHA-256 of the public
//! key, in hex (`key 3f2a9c1b0d4e5f60`).

use ed25519_dalek::{SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use std::fmt;

pub const PUBLIC_PREFIX: &str = "mimamori-ed25519-pub:";
pub const SECRET_PREFIX: &str = "mimamori-ed25519-secret:";
/// Keys a box trusts at once: the current desk key and the next (or the previous) one.
pub const MAX_TRUSTED: usize = 2;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("not a mimamori {expected} key (expected \"{prefix}<64 hex digits>\")", prefix = if *.expected == "public" { PUBLIC_PREFIX } else { SECRET_PREFIX })]
    Form { expected: &'static str },
    #[error("the {0} key is not 64 hex digits")]
    Hex(&'static str),
    #[error("the public key is not a valid ed25519 point (or is a weak key)")]
    BadPoint,
    #[error("{count} trusted keys given; at most {MAX_TRUSTED} may be valid at once")]
    TooMany { count: usize },
    #[error("no trusted key given")]
    None,
    #[error("cannot draw random bytes for a key: {0}")]
    Random(String),
}

/// A key's short, stable name for messages and listings.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub [u8; 8]);

impl KeyId {
    pub fn of(public_key: &[u8; 32]) -> KeyId {
        let d = Sha256::digest(public_key);
        let mut id = [0u8; 8];
        id.copy_from_slice(&d[..8]);
        KeyId(id)
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&super::hex(&self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

fn parse_hex32(s: &str, which: &'static str) -> Result<[u8; 32], KeyError> {
    let v = super::unhex(s.trim()).ok_or(KeyError::Hex(which))?;
    v.try_into().map_err(|_| KeyError::Hex(which))
}

/// A public key in its text form.
pub fn public_to_text(k: &VerifyingKey) -> String {
    format!("{PUBLIC_PREFIX}{}", super::hex(k.as_bytes()))
}

/// Parses `mimamori-ed25519-pub:<hex>`; surrounding white space is ignored. Weak (small
/// order) points are refused: no honest key is one.
pub fn public_from_text(s: &str) -> Result<VerifyingKey, KeyError> {
    let rest = s
        .trim()
        .strip_prefix(PUBLIC_PREFIX)
        .ok_or(KeyError::Form { expected: "public" })?;
    let bytes = parse_hex32(rest, "public")?;
    let k = VerifyingKey::from_bytes(&bytes).map_err(|_| KeyError::BadPoint)?;
    if k.is_weak() {
        return Err(KeyError::BadPoint);
    }
    Ok(k)
}

pub fn secret_to_text(k: &SigningKey) -> String {
    format!("{SECRET_PREFIX}{}\n", super::hex(&k.to_bytes()))
}

pub fn secret_from_text(s: &str) -> Result<SigningKey, KeyError> {
    let rest = s
        .trim()
        .strip_prefix(SECRET_PREFIX)
        .ok_or(KeyError::Form { expected: "secret" })?;
    Ok(SigningKey::from_bytes(&parse_hex32(rest, "secret")?))
}

/// A new signing key from the operating system's random source.
pub fn generate() -> Result<SigningKey, KeyError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| KeyError::Random(e.to_string()))?;
    let k = SigningKey::from_bytes(&seed);
    seed.fill(0);
    Ok(k)
}

/// The public keys a box accepts bundles from: one, or two during a rotation.
#[derive(Clone, Debug)]
pub struct TrustedKeys {
    keys: Vec<VerifyingKey>,
}

impl TrustedKeys {
    pub fn new(keys: Vec<VerifyingKey>) -> Result<TrustedKeys, KeyError> {
        let mut uniq: Vec<VerifyingKey> = Vec::with_capacity(keys.len());
        for k in keys {
            if !uniq.contains(&k) {
                uniq.push(k);
            }
        }
        match uniq.len() {
            0 => Err(KeyError::None),
            n if n > MAX_TRUSTED => Err(KeyError::TooMany { count: n }),
            _ => Ok(TrustedKeys { keys: uniq }),
        }
    }

    /// Each entry either the text form itself or the path of a file holding it.
    pub fn from_texts_or_files(items: &[String]) -> Result<TrustedKeys, String> {
        let mut keys = Vec::new();
        for it in items {
            let text = if it.trim_start().starts_with(PUBLIC_PREFIX) {
                it.clone()
            } else {
                std::fs::read_to_string(it)
                    .map_err(|e| format!("trusted key {it}: cannot read: {e}"))?
            };
            keys.push(public_from_text(&text).map_err(|e| format!("trusted key {it}: {e}"))?);
        }
        TrustedKeys::new(keys).map_err(|e| e.to_string())
    }

    pub fn get(&self, public_key: &[u8; 32]) -> Option<&VerifyingKey> {
        self.keys.iter().find(|k| k.as_bytes() == public_key)
    }

    pub fn ids(&self) -> Vec<KeyId> {
        self.keys.iter().map(|k| KeyId::of(k.as_bytes())).collect()
    }

    pub fn keys(&self) -> &[VerifyingKey] {
        &self.keys
    }
}

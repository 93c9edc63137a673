//! The container: how a manifest, its signatures and its parts sit in one file.
//!
//! Little-endian throughout:
//!
//! ```text
//! magic      8 bytes  "MMBUNDLE"
//! format     u32      1
//! manifest   u32 length, then that many bytes of JSON (the bytes that are signed)
//! signatures u8 count (at most MAX_SIGNATURES), then per signature:
//!                     32 bytes ed25519 public key, 64 bytes signature
//! parts      u32 count, then per part:
//!                     u16 name length, the name (UTF-8), u64 size, that many bytes
//! end        nothing may follow the last part
//! ```
//!
//! The container carries its own list of parts (name and size) beside the manifest's, so
//! that verification can tell "the manifest names a part the file does not hold" from "the
//! file holds a part the manifest does not name" from "the file ends early". Decoding only
//! slices the input: nothing is allocated in proportion to a length field read from it.

use super::{BundleError, Limits};

pub const MAGIC: &[u8; 8] = b"MMBUNDLE";
pub const FORMAT: u32 = 1;
/// Signatures one bundle may carry: during a key rotation the desk signs with both keys.
pub const MAX_SIGNATURES: usize = 4;

/// One signature as stored: the signer's public key and the signature over the manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawSignature {
    pub public_key: [u8; 32],
    pub signature: [u8; 64],
}

/// A decoded container: every slice borrows from the input.
#[derive(Debug)]
pub struct Container<'a> {
    pub manifest: &'a [u8],
    pub signatures: Vec<RawSignature>,
    pub parts: Vec<(&'a str, &'a [u8])>,
}

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], BundleError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| BundleError::Truncated {
                at: what.to_string(),
                offset: self.at as u64,
                size: self.buf.len() as u64,
            })?;
        let s = &self.buf[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], BundleError> {
        let s = self.take(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }
    fn u8(&mut self, what: &str) -> Result<u8, BundleError> {
        Ok(self.array::<1>(what)?[0])
    }
    fn u16(&mut self, what: &str) -> Result<u16, BundleError> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }
    fn u32(&mut self, what: &str) -> Result<u32, BundleError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }
    fn u64(&mut self, what: &str) -> Result<u64, BundleError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }
}

/// Decodes the structure of a bundle, checking every length against the input and `limits`.
/// Says nothing yet about the manifest's content or the signatures' validity.
pub fn decode<'a>(buf: &'a [u8], limits: &Limits) -> Result<Container<'a>, BundleError> {
    if buf.len() as u64 > limits.max_bundle {
        return Err(BundleError::BundleTooLarge {
            size: buf.len() as u64,
            limit: limits.max_bundle,
        });
    }
    let mut r = Reader { buf, at: 0 };
    let magic = r.take(MAGIC.len(), "the magic")?;
    if magic != MAGIC {
        return Err(BundleError::BadMagic);
    }
    let format = r.u32("the format number")?;
    if format != FORMAT {
        return Err(BundleError::UnsupportedFormat(format));
    }
    let mlen = r.u32("the manifest length")?;
    if u64::from(mlen) > limits.max_manifest {
        return Err(BundleError::ManifestTooLarge {
            size: u64::from(mlen),
            limit: limits.max_manifest,
        });
    }
    let manifest = r.take(mlen as usize, "the manifest")?;
    let nsig = r.u8("the signature count")? as usize;
    if nsig > MAX_SIGNATURES {
        return Err(BundleError::TooManySignatures {
            count: nsig,
            limit: MAX_SIGNATURES,
        });
    }
    let mut signatures = Vec::with_capacity(nsig);
    for i in 0..nsig {
        let what = format!("signature {}", i + 1);
        signatures.push(RawSignature {
            public_key: r.array(&what)?,
            signature: r.array(&what)?,
        });
    }
    let nparts = r.u32("the part count")?;
    if nparts as usize > limits.max_parts {
        return Err(BundleError::TooManyParts {
            count: nparts as usize,
            limit: limits.max_parts,
        });
    }
    let mut parts = Vec::with_capacity(nparts as usize);
    for i in 0..nparts {
        let nlen = r.u16("a part name length")? as usize;
        let raw = r.take(nlen, &format!("the name of part {}", i + 1))?;
        let name = std::str::from_utf8(raw).map_err(|_| BundleError::BadPartName {
            name: String::from_utf8_lossy(raw).into_owned(),
            reason: "not UTF-8",
        })?;
        let size = r.u64(&format!("the size of part {name}"))?;
        if size > limits.max_part {
            return Err(BundleError::PartTooLarge {
                part: name.to_string(),
                size,
                limit: limits.max_part,
            });
        }
        // `size` ≤ max_part, which fits in memory by construction; on a 32-bit target a
        // larger value is caught by `take` as a truncation.
        let data = r.take(
            usize::try_from(size).unwrap_or(usize::MAX),
            &format!("part {name} ({size} bytes)"),
        )?;
        parts.push((name, data));
    }
    if r.at != buf.len() {
        return Err(BundleError::TrailingBytes((buf.len() - r.at) as u64));
    }
    Ok(Container {
        manifest,
        signatures,
        parts,
    })
}

/// Encodes a container. The caller has checked the counts and lengths (the builder does).
pub fn encode(
    manifest: &[u8],
    signatures: &[RawSignature],
    parts: &[(&str, &[u8])],
) -> Result<Vec<u8>, BundleError> {
    let mlen = u32::try_from(manifest.len()).map_err(|_| BundleError::ManifestTooLarge {
        size: manifest.len() as u64,
        limit: u64::from(u32::MAX),
    })?;
    if signatures.len() > MAX_SIGNATURES {
        return Err(BundleError::TooManySignatures {
            count: signatures.len(),
            limit: MAX_SIGNATURES,
        });
    }
    let total: usize = parts.iter().map(|(n, d)| n.len() + d.len() + 10).sum();
    let mut out = Vec::with_capacity(16 + manifest.len() + 97 * signatures.len() + total + 4);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT.to_le_bytes());
    out.extend_from_slice(&mlen.to_le_bytes());
    out.extend_from_slice(manifest);
    out.push(signatures.len() as u8);
    for s in signatures {
        out.extend_from_slice(&s.public_key);
        out.extend_from_slice(&s.signature);
    }
    let nparts = u32::try_from(parts.len()).map_err(|_| BundleError::TooManyParts {
        count: parts.len(),
        limit: u32::MAX as usize,
    })?;
    out.extend_from_slice(&nparts.to_le_bytes());
    for (name, data) in parts {
        let nlen = u16::try_from(name.len()).map_err(|_| BundleError::BadPartName {
            name: name.chars().take(40).collect(),
            reason: "longer than 65535 bytes",
        })?;
        out.extend_from_slice(&nlen.to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&(data.len() as u64).to_le_bytes());
        out.extend_from_slice(data);
    }
    Ok(out)
}

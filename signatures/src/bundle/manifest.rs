//! Reading a bundle's manifest (bounded, every field checked) and matching its parts
//! against the container's.

use super::{
    BundleError, GatewayVersion, Kind, Limits, MANIFEST_FORMAT, Manifest, PartEntry,
    check_part_name, sha256_hex, short,
};

/// Reads a manifest's bytes, checking every field. Unknown fields are refused: a field this
/// build does not know could change the meaning of the bundle, and a new field comes with a
/// new manifest format.
pub fn parse_manifest(bytes: &[u8], limits: &Limits) -> Result<Manifest, BundleError> {
    use serde_json::Value;
    let v: Value =
        serde_json::from_slice(bytes).map_err(|e| BundleError::ManifestSyntax(e.to_string()))?;
    let Value::Object(mut m) = v else {
        return Err(BundleError::ManifestSyntax("not a JSON object".into()));
    };
    let mut take = |k: &str| {
        m.remove(k)
            .ok_or_else(|| BundleError::ManifestSyntax(format!("no field {k:?}")))
    };
    let format = take("format")?;
    if format.as_u64() != Some(MANIFEST_FORMAT) {
        return Err(BundleError::ManifestFormat(short(&format)));
    }
    let kind = match take("kind")? {
        Value::String(s) => s.parse::<Kind>()?,
        other => return Err(BundleError::UnknownKind(short(&other))),
    };
    let version = take("version")?;
    let version = version
        .as_u64()
        .ok_or_else(|| BundleError::BadVersion(short(&version)))?;
    let published = take("published")?;
    let published = published
        .as_u64()
        .ok_or_else(|| BundleError::BadPublished(short(&published)))?;
    let min_gateway = match take("min_gateway")? {
        Value::String(s) => s.parse::<GatewayVersion>()?,
        other => return Err(BundleError::BadMinGateway(short(&other))),
    };
    let Value::Array(raw_parts) = take("parts")? else {
        return Err(BundleError::ManifestSyntax(
            "\"parts\" is not a list".into(),
        ));
    };
    if let Some(k) = m.keys().next() {
        return Err(BundleError::ManifestSyntax(format!(
            "unknown field {:?} (this build reads manifest format {MANIFEST_FORMAT})",
            k.chars().take(40).collect::<String>()
        )));
    }
    if raw_parts.is_empty() {
        return Err(BundleError::NoParts);
    }
    if raw_parts.len() > limits.max_parts {
        return Err(BundleError::TooManyParts {
            count: raw_parts.len(),
            limit: limits.max_parts,
        });
    }
    let mut parts: Vec<PartEntry> = Vec::with_capacity(raw_parts.len());
    let mut total = 0u64;
    for (i, p) in raw_parts.into_iter().enumerate() {
        let syntax = |what: &str| BundleError::ManifestSyntax(format!("part {}: {what}", i + 1));
        let Value::Object(mut p) = p else {
            return Err(syntax("not a JSON object"));
        };
        let name = match p.remove("name") {
            Some(Value::String(s)) => s,
            _ => return Err(syntax("no \"name\" string")),
        };
        check_part_name(&name)?;
        let size = p
            .remove("size")
            .and_then(|v| v.as_u64())
            .ok_or_else(|| syntax("no \"size\" whole number"))?;
        let sha256 = match p.remove("sha256") {
            Some(Value::String(s)) => s,
            _ => return Err(syntax("no \"sha256\" string")),
        };
        if let Some(k) = p.keys().next() {
            return Err(syntax(&format!(
                "unknown field {:?}",
                k.chars().take(40).collect::<String>()
            )));
        }
        if sha256.len() != 64
            || !sha256
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(BundleError::BadPartHash { part: name });
        }
        if size > limits.max_part {
            return Err(BundleError::PartTooLarge {
                part: name,
                size,
                limit: limits.max_part,
            });
        }
        total = total.saturating_add(size);
        if total > limits.max_bundle {
            return Err(BundleError::BundleTooLarge {
                size: total,
                limit: limits.max_bundle,
            });
        }
        if parts.iter().any(|q| q.name == name) {
            return Err(BundleError::DuplicatePart(name));
        }
        parts.push(PartEntry { name, size, sha256 });
    }
    Ok(Manifest {
        format: MANIFEST_FORMAT,
        kind,
        version,
        published,
        min_gateway,
        parts,
    })
}

/// Checks the file's parts against the manifest: same names (none missing, none extra,
/// none twice), then each size, then each hash. Returns the parts in the manifest's order.
pub(super) fn match_parts<'a>(
    manifest: &Manifest,
    found: &[(&'a str, &'a [u8])],
) -> Result<Vec<(&'a str, &'a [u8])>, BundleError> {
    for (i, (name, _)) in found.iter().enumerate() {
        if found[..i].iter().any(|(n, _)| n == name) {
            return Err(BundleError::DuplicatePart((*name).to_string()));
        }
        if !manifest.parts.iter().any(|p| p.name == *name) {
            return Err(BundleError::ExtraPart((*name).to_string()));
        }
    }
    let mut out = Vec::with_capacity(manifest.parts.len());
    for p in &manifest.parts {
        let (name, data) = *found
            .iter()
            .find(|(n, _)| *n == p.name)
            .ok_or_else(|| BundleError::MissingPart(p.name.clone()))?;
        if data.len() as u64 != p.size {
            return Err(BundleError::PartSize {
                part: p.name.clone(),
                manifest: p.size,
                actual: data.len() as u64,
            });
        }
        out.push((name, data));
    }
    for (p, (_, data)) in manifest.parts.iter().zip(&out) {
        let actual = sha256_hex(data);
        if actual != p.sha256 {
            return Err(BundleError::PartHash {
                part: p.name.clone(),
                manifest: p.sha256.clone(),
                actual,
            });
        }
    }
    Ok(out)
}

//! The control plane's gateway-facing socket: the gateway asks for the current policy at
//! start, and streams its events.
//!
//! ```text
//! current                     -> "policy <version>\n<policy TOML>" (to the end of the
//!                                connection) or "none"
//! events\n<EVE line>\n...     -> no answer; one EVE JSON object a line until the gateway
//!                                closes (unacknowledged: tools and tests)
//! stream <source>             -> the acknowledged stream, see [`crate::stream`]
//! patterns                    -> "patterns <n>\n" and n lines "<kind> <version> <sha256>
//!                                <path>": the current verified pattern bundle of each
//!                                kind, which the gateway loads at start
//! tier                        -> "tier <light|standard|professional>" (what the box's
//!                                contract gives it, from the desk) or "none"
//! ```

use crate::wire::{excerpt, one_line, read_line, read_to_end};
use crate::{EVENT_LINE_MAX, Exchange, LINE_MAX, POLICY_MAX, ProtoError};
use std::io::{BufRead, Write};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CpRequest {
    Current,
    Events,
    /// The acknowledged event stream from `source`.
    Stream(String),
    /// The current pattern bundles.
    Patterns,
    /// The layout the box's plan gives it.
    Tier,
}

/// A verified pattern bundle the control plane stored: the gateway reads it by path and
/// checks its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternFile {
    pub kind: String,
    pub version: u64,
    pub sha256: String,
    pub path: String,
}

/// Most pattern files one answer lists (one per kind).
const PATTERN_FILES_MAX: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CpAnswer {
    Policy {
        version: u64,
        policy: String,
    },
    /// The control plane has no policy yet.
    None,
    Patterns(Vec<PatternFile>),
    /// `light`, `standard` or `professional`.
    Tier(String),
    Error(String),
}

impl CpRequest {
    pub fn encode<W: Write>(&self, w: &mut W) -> Result<(), ProtoError> {
        match self {
            CpRequest::Current => w.write_all(b"current\n")?,
            CpRequest::Events => w.write_all(b"events\n")?,
            CpRequest::Stream(source) => w.write_all(format!("stream {source}\n").as_bytes())?,
            CpRequest::Patterns => w.write_all(b"patterns\n")?,
            CpRequest::Tier => w.write_all(b"tier\n")?,
        }
        Ok(())
    }

    pub fn decode<R: BufRead>(r: &mut R) -> Result<CpRequest, ProtoError> {
        match read_line(r, LINE_MAX)?.trim() {
            "current" => Ok(CpRequest::Current),
            "events" => Ok(CpRequest::Events),
            "patterns" => Ok(CpRequest::Patterns),
            "tier" => Ok(CpRequest::Tier),
            other => match other.strip_prefix("stream ") {
                Some(source) if crate::stream::valid_source(source) => {
                    Ok(CpRequest::Stream(source.to_string()))
                }
                _ => Err(ProtoError::UnknownCommand(excerpt(other))),
            },
        }
    }
}

/// The gateway layouts a plan can name.
pub const TIERS: [&str; 3] = ["light", "standard", "professional"];

impl CpAnswer {
    pub fn encode<W: Write>(&self, w: &mut W) -> Result<(), ProtoError> {
        match self {
            CpAnswer::Policy { version, policy } => {
                if policy.len() > POLICY_MAX {
                    return Err(ProtoError::PolicyTooLarge(policy.len()));
                }
                w.write_all(format!("policy {version}\n").as_bytes())?;
                w.write_all(policy.as_bytes())?;
            }
            CpAnswer::None => w.write_all(b"none\n")?,
            CpAnswer::Tier(tier) => {
                if !TIERS.contains(&tier.as_str()) {
                    return Err(ProtoError::UnexpectedAnswer(excerpt(tier)));
                }
                w.write_all(format!("tier {tier}\n").as_bytes())?
            }
            CpAnswer::Patterns(files) => {
                let ok = files.len() <= PATTERN_FILES_MAX
                    && files.iter().all(|f| {
                        [&f.kind, &f.sha256, &f.path]
                            .iter()
                            .all(|t| !t.is_empty() && !t.chars().any(char::is_control))
                            && !f.kind.contains(' ')
                            && !f.sha256.contains(' ')
                    });
                if !ok {
                    return Err(ProtoError::BadPatterns);
                }
                w.write_all(format!("patterns {}\n", files.len()).as_bytes())?;
                for f in files {
                    w.write_all(
                        format!("{} {} {} {}\n", f.kind, f.version, f.sha256, f.path).as_bytes(),
                    )?;
                }
            }
            CpAnswer::Error(reason) => {
                w.write_all(format!("error {}\n", one_line(reason)).as_bytes())?
            }
        }
        Ok(())
    }

    pub fn decode<R: BufRead>(r: &mut R) -> Result<CpAnswer, ProtoError> {
        let head = read_line(r, LINE_MAX)?;
        if head.is_empty() {
            return Err(ProtoError::NoAnswer);
        }
        if let Some(reason) = head.strip_prefix("error ") {
            return Ok(CpAnswer::Error(reason.trim().to_string()));
        }
        if let Some(tier) = head.strip_prefix("tier ") {
            let tier = tier.trim();
            return match TIERS.contains(&tier) {
                true => Ok(CpAnswer::Tier(tier.to_string())),
                false => Err(ProtoError::UnexpectedAnswer(excerpt(tier))),
            };
        }
        let mut words = head.split_whitespace();
        match (
            words.next(),
            words.next().and_then(|v| v.parse::<u64>().ok()),
        ) {
            (Some("none"), _) => Ok(CpAnswer::None),
            (Some("patterns"), Some(n)) if n as usize <= PATTERN_FILES_MAX => {
                let mut files = Vec::new();
                for _ in 0..n {
                    let line = read_line(r, LINE_MAX)?;
                    let mut w = line.splitn(4, ' ');
                    match (
                        w.next(),
                        w.next().and_then(|v| v.parse::<u64>().ok()),
                        w.next(),
                        w.next(),
                    ) {
                        (Some(kind), Some(version), Some(sha256), Some(path)) => {
                            files.push(PatternFile {
                                kind: kind.to_string(),
                                version,
                                sha256: sha256.to_string(),
                                path: path.trim_end().to_string(),
                            })
                        }
                        _ => return Err(ProtoError::UnexpectedAnswer(excerpt(&line))),
                    }
                }
                Ok(CpAnswer::Patterns(files))
            }
            (Some("policy"), Some(version)) => {
                let text = read_to_end(r, POLICY_MAX, ProtoError::PolicyTooLarge)?;
                let policy = String::from_utf8(text).map_err(|_| ProtoError::PolicyNotUtf8)?;
                Ok(CpAnswer::Policy { version, policy })
            }
            _ => Err(ProtoError::UnexpectedAnswer(excerpt(&head))),
        }
    }
}

impl Exchange for CpRequest {
    type Answer = CpAnswer;
    fn encode<W: Write>(&self, w: &mut W) -> Result<(), ProtoError> {
        CpRequest::encode(self, w)
    }
    fn decode_answer<R: BufRead>(&self, r: &mut R) -> Result<CpAnswer, ProtoError> {
        CpAnswer::decode(r)
    }
}

/// Writes one event line (the gateway side of `events`); `eve` must be one JSON object.
pub fn encode_event<W: Write, T: serde::Serialize>(w: &mut W, eve: &T) -> Result<(), ProtoError> {
    serde_json::to_writer(&mut *w, eve)?;
    w.write_all(b"\n")?;
    Ok(())
}

/// Reads the next event line into `buf` (the control-plane side of `events`): `None` at
/// the end of the stream. Blank lines are skipped; the text is not checked as JSON here
/// (the event store counts malformed lines).
pub fn decode_event<'a, R: BufRead>(
    r: &mut R,
    buf: &'a mut String,
) -> Result<Option<&'a str>, ProtoError> {
    loop {
        *buf = read_line(r, EVENT_LINE_MAX)?;
        if buf.is_empty() {
            // An empty line and the end of the stream read alike: look at the buffer.
            if r.fill_buf()?.is_empty() {
                return Ok(None);
            }
            continue;
        }
        return Ok(Some(buf.as_str()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_answers_round_trip() {
        for req in [
            CpRequest::Current,
            CpRequest::Events,
            CpRequest::Stream("gw".into()),
            CpRequest::Patterns,
            CpRequest::Tier,
        ] {
            let mut wire = Vec::new();
            req.encode(&mut wire).unwrap();
            assert_eq!(CpRequest::decode(&mut wire.as_slice()).unwrap(), req);
        }
        for answer in [
            CpAnswer::Policy {
                version: 4,
                policy: "[sides]\nlan_subnets = []\n".into(),
            },
            CpAnswer::None,
            CpAnswer::Error("no such thing".into()),
            CpAnswer::Tier("professional".into()),
            CpAnswer::Patterns(vec![]),
            CpAnswer::Patterns(vec![
                PatternFile {
                    kind: "rules".into(),
                    version: 2026120201,
                    sha256: "ab".repeat(32),
                    path: "/var/lib/mimamori/patterns/rules/2026120201-abab.mmb".into(),
                },
                PatternFile {
                    kind: "categories".into(),
                    version: 3,
                    sha256: "cd".repeat(32),
                    path: "/srv/with blank/categories/3-cdcd.mmb".into(),
                },
            ]),
        ] {
            let mut wire = Vec::new();
            answer.encode(&mut wire).unwrap();
            assert_eq!(CpAnswer::decode(&mut wire.as_slice()).unwrap(), answer);
        }
        let mut wire = Vec::new();
        CpAnswer::Policy {
            version: 4,
            policy: "x = 1\n".into(),
        }
        .encode(&mut wire)
        .unwrap();
        assert_eq!(wire, b"policy 4\nx = 1\n");
    }

    #[test]
    fn a_tier_outside_the_plans_is_refused_both_ways() {
        assert!(
            CpAnswer::Tier("gold".into())
                .encode(&mut Vec::new())
                .is_err()
        );
        assert!(CpAnswer::decode(&mut &b"tier gold\n"[..]).is_err());
    }

    #[test]
    fn events_stream_line_by_line() {
        let mut wire = Vec::new();
        CpRequest::Events.encode(&mut wire).unwrap();
        encode_event(&mut wire, &serde_json::json!({"event_type": "flow"})).unwrap();
        wire.extend_from_slice(b"\n");
        encode_event(&mut wire, &serde_json::json!({"event_type": "alert"})).unwrap();
        let mut r = wire.as_slice();
        assert_eq!(CpRequest::decode(&mut r).unwrap(), CpRequest::Events);
        let mut buf = String::new();
        let mut seen = Vec::new();
        while let Some(line) = decode_event(&mut r, &mut buf).unwrap() {
            seen.push(line.to_string());
        }
        assert_eq!(
            seen,
            [r#"{"event_type":"flow"}"#, r#"{"event_type":"alert"}"#]
        );
    }

    #[test]
    fn oversize_and_malformed_input_is_refused() {
        assert!(matches!(
            CpRequest::decode(&mut &b"currant\n"[..]),
            Err(ProtoError::UnknownCommand(_))
        ));
        let long = vec![b'a'; LINE_MAX * 2];
        assert!(matches!(
            CpRequest::decode(&mut long.as_slice()),
            Err(ProtoError::LineTooLong(_))
        ));
        assert!(matches!(
            CpAnswer::decode(&mut &b"policy seven\nx"[..]),
            Err(ProtoError::UnexpectedAnswer(_))
        ));
        assert!(matches!(
            CpAnswer::decode(&mut &b""[..]),
            Err(ProtoError::NoAnswer)
        ));
        assert!(matches!(
            CpAnswer::decode(&mut &b"policy 1\n\xff"[..]),
            Err(ProtoError::PolicyNotUtf8)
        ));
        let mut big = b"policy 1\n".to_vec();
        big.resize(big.len() + POLICY_MAX + 1, b'#');
        assert!(matches!(
            CpAnswer::decode(&mut big.as_slice()),
            Err(ProtoError::PolicyTooLarge(_))
        ));
        let mut events = vec![b'{'; EVENT_LINE_MAX + 1];
        events.push(b'\n');
        assert!(matches!(
            decode_event(&mut events.as_slice(), &mut String::new()),
            Err(ProtoError::LineTooLong(_))
        ));
    }
}

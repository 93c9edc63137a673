//! The gateway's control socket: one command line per connection, one answer.
//!
//! ```text
//! stats                       -> the JSON snapshot, one line (an empty line asks the same)
//! version                     -> the running policy version
//! apply <version> <bytes>\n<policy TOML>
//!                             -> "ok <version> <microseconds>" once every stage runs it,
//!                                or "error <reason>" (the running policy stays)
//! hosts                       -> JSON: the web filter's LAN hosts (quarantined marked)
//! release <mac>               -> "ok" or "error <reason>": lets a quarantined host out
//! patterns <kind> <sha256> <path>
//!                             -> "ok <version> <microseconds> <summary>" once every stage
//!                                runs the new set of `kind` (rules, categories) read from
//!                                the bundle file at `path` (the control plane's patterns
//!                                folder; the gateway checks the file's SHA-256), or
//!                                "error <reason>" (the running set stays)
//! ```
//!
//! Any command may be answered `error <reason>` (one line).

use crate::wire::{excerpt, one_line, read_line, read_policy, read_to_end};
use crate::{ANSWER_MAX, Exchange, LINE_MAX, POLICY_MAX, ProtoError};
use std::io::{BufRead, Write};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Stats,
    Version,
    Apply {
        version: u64,
        policy: String,
    },
    Hosts,
    /// The MAC as text: the gateway parses it and explains a bad one in its answer.
    Release {
        mac: String,
    },
    /// A new pattern set: the verified bundle file the control plane stored, by path (a
    /// rule set does not cross the socket) and its SHA-256, which the gateway checks.
    Patterns {
        kind: String,
        sha256: String,
        path: String,
    },
}

/// Whether `kind`, `sha256` and `path` fit on the `patterns` line: a word, 64 lowercase
/// hex digits, an absolute path without control characters.
fn patterns_line_ok(kind: &str, sha256: &str, path: &str) -> bool {
    !kind.is_empty()
        && kind.len() <= 32
        && kind.bytes().all(|b| b.is_ascii_lowercase())
        && sha256.len() == 64
        && sha256
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && path.starts_with('/')
        && path.len() <= 1024
        && !path.chars().any(char::is_control)
        && path.trim() == path
}

#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// The gateway's counters snapshot.
    Stats(serde_json::Value),
    Version(u64),
    Applied {
        version: u64,
        micros: u64,
    },
    /// The web filter's hosts and their counters.
    Hosts(serde_json::Value),
    Released,
    /// A pattern set runs on every stage: its version, how long from the request until
    /// every stage ran it, and a one-line summary (rules compiled, categories, ...).
    PatternsLoaded {
        version: u64,
        micros: u64,
        summary: String,
    },
    /// The gateway refused; the reason is its own.
    Error(String),
}

impl Request {
    pub fn encode<W: Write>(&self, w: &mut W) -> Result<(), ProtoError> {
        match self {
            Request::Stats => w.write_all(b"stats\n")?,
            Request::Version => w.write_all(b"version\n")?,
            Request::Apply { version, policy } => {
                if policy.len() > POLICY_MAX {
                    return Err(ProtoError::PolicyTooLarge(policy.len()));
                }
                w.write_all(format!("apply {version} {}\n", policy.len()).as_bytes())?;
                w.write_all(policy.as_bytes())?;
            }
            Request::Hosts => w.write_all(b"hosts\n")?,
            Request::Release { mac } => {
                // A MAC with blanks would change the command's words.
                if mac.is_empty() || mac.len() > 64 || mac.chars().any(char::is_whitespace) {
                    return Err(ProtoError::BadRelease);
                }
                w.write_all(format!("release {mac}\n").as_bytes())?;
            }
            Request::Patterns { kind, sha256, path } => {
                if !patterns_line_ok(kind, sha256, path) {
                    return Err(ProtoError::BadPatterns);
                }
                w.write_all(format!("patterns {kind} {sha256} {path}\n").as_bytes())?;
            }
        }
        Ok(())
    }

    /// Reads one request (the server side); words after the expected ones are ignored.
    pub fn decode<R: BufRead>(r: &mut R) -> Result<Request, ProtoError> {
        let line = read_line(r, LINE_MAX)?;
        let mut words = line.split_whitespace();
        Ok(match words.next() {
            None | Some("stats") => Request::Stats,
            Some("version") => Request::Version,
            Some("apply") => {
                let version = words.next().and_then(|v| v.parse::<u64>().ok());
                let len = words.next().and_then(|n| n.parse::<usize>().ok());
                let (Some(version), Some(len)) = (version, len) else {
                    return Err(ProtoError::BadApply);
                };
                if len > POLICY_MAX {
                    return Err(ProtoError::PolicyTooLarge(len));
                }
                Request::Apply {
                    version,
                    policy: read_policy(r, len)?,
                }
            }
            Some("hosts") => Request::Hosts,
            Some("release") => match words.next() {
                Some(mac) => Request::Release {
                    mac: mac.to_string(),
                },
                None => return Err(ProtoError::BadRelease),
            },
            Some("patterns") => {
                // The path is the rest of the line: it may hold blanks.
                let rest = line.trim_start().strip_prefix("patterns").unwrap_or("");
                let mut parts = rest.trim_start().splitn(3, ' ');
                let (Some(kind), Some(sha256), Some(path)) =
                    (parts.next(), parts.next(), parts.next())
                else {
                    return Err(ProtoError::BadPatterns);
                };
                let path = path.trim_end();
                if !patterns_line_ok(kind, sha256, path) {
                    return Err(ProtoError::BadPatterns);
                }
                Request::Patterns {
                    kind: kind.to_string(),
                    sha256: sha256.to_string(),
                    path: path.to_string(),
                }
            }
            Some(other) => return Err(ProtoError::UnknownCommand(excerpt(other))),
        })
    }
}

impl Answer {
    pub fn encode<W: Write>(&self, w: &mut W) -> Result<(), ProtoError> {
        match self {
            Answer::Stats(v) | Answer::Hosts(v) => {
                serde_json::to_writer(&mut *w, v)?;
                w.write_all(b"\n")?;
            }
            Answer::Version(v) => w.write_all(format!("{v}\n").as_bytes())?,
            Answer::Applied { version, micros } => {
                w.write_all(format!("ok {version} {micros}\n").as_bytes())?
            }
            Answer::Released => w.write_all(b"ok\n")?,
            Answer::PatternsLoaded {
                version,
                micros,
                summary,
            } => {
                w.write_all(format!("ok {version} {micros} {}\n", one_line(summary)).as_bytes())?
            }
            Answer::Error(reason) => {
                w.write_all(format!("error {}\n", one_line(reason)).as_bytes())?
            }
        }
        Ok(())
    }

    /// Reads the answer to `request` (the client side): the connection's whole rest.
    pub fn decode<R: BufRead>(r: &mut R, request: &Request) -> Result<Answer, ProtoError> {
        let bytes = read_to_end(r, ANSWER_MAX, ProtoError::AnswerTooLong)?;
        let text = String::from_utf8_lossy(&bytes);
        if text.is_empty() {
            return Err(ProtoError::NoAnswer);
        }
        if let Some(reason) = text.strip_prefix("error ") {
            return Ok(Answer::Error(reason.trim().to_string()));
        }
        let unexpected = || ProtoError::UnexpectedAnswer(excerpt(&text));
        let mut words = text.split_whitespace();
        Ok(match request {
            Request::Stats => Answer::Stats(serde_json::from_str(&text)?),
            Request::Hosts => Answer::Hosts(serde_json::from_str(&text)?),
            Request::Version => Answer::Version(text.trim().parse().map_err(|_| unexpected())?),
            Request::Apply { .. } => match (
                words.next(),
                words.next().and_then(|v| v.parse().ok()),
                words.next().and_then(|us| us.parse().ok()),
            ) {
                (Some("ok"), Some(version), Some(micros)) => Answer::Applied { version, micros },
                _ => return Err(unexpected()),
            },
            Request::Release { .. } => match words.next() {
                Some("ok") => Answer::Released,
                _ => return Err(unexpected()),
            },
            Request::Patterns { .. } => {
                let mut head = text.trim().splitn(4, ' ');
                match (
                    head.next(),
                    head.next().and_then(|v| v.parse().ok()),
                    head.next().and_then(|us| us.parse().ok()),
                ) {
                    (Some("ok"), Some(version), Some(micros)) => Answer::PatternsLoaded {
                        version,
                        micros,
                        summary: head.next().unwrap_or("").to_string(),
                    },
                    _ => return Err(unexpected()),
                }
            }
        })
    }
}

impl Exchange for Request {
    type Answer = Answer;
    fn encode<W: Write>(&self, w: &mut W) -> Result<(), ProtoError> {
        Request::encode(self, w)
    }
    fn decode_answer<R: BufRead>(&self, r: &mut R) -> Result<Answer, ProtoError> {
        Answer::decode(r, self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(req: Request, answer: Answer) {
        let mut wire = Vec::new();
        req.encode(&mut wire).unwrap();
        let back = Request::decode(&mut wire.as_slice()).unwrap();
        assert_eq!(back, req);
        let mut wire = Vec::new();
        answer.encode(&mut wire).unwrap();
        assert_eq!(Answer::decode(&mut wire.as_slice(), &req).unwrap(), answer);
        let refused = Answer::Error("no\nway".into());
        let mut wire = Vec::new();
        refused.encode(&mut wire).unwrap();
        assert_eq!(wire, b"error no way\n");
        assert_eq!(
            Answer::decode(&mut wire.as_slice(), &req).unwrap(),
            Answer::Error("no way".into())
        );
    }

    #[test]
    fn every_request_and_answer_round_trips() {
        let stats = serde_json::json!({"policy_version": 3, "ports": [{"side": "lan"}]});
        round_trip(Request::Stats, Answer::Stats(stats));
        round_trip(Request::Version, Answer::Version(7));
        round_trip(
            Request::Apply {
                version: 9,
                policy: "[sides]\nlan_subnets = [\"10.0.0.0/8\"]\n".into(),
            },
            Answer::Applied {
                version: 9,
                micros: 250,
            },
        );
        round_trip(
            Request::Hosts,
            Answer::Hosts(serde_json::json!({"hosts": [], "stats": {"hosts": 0}})),
        );
        round_trip(
            Request::Release {
                mac: "02:00:00:00:00:01".into(),
            },
            Answer::Released,
        );
        round_trip(
            Request::Patterns {
                kind: "rules".into(),
                sha256: "ab".repeat(32),
                path: "/var/lib/mimamori/patterns/rules/7-abcd.mmb".into(),
            },
            Answer::PatternsLoaded {
                version: 7,
                micros: 1500,
                summary: "24000 rules compiled".into(),
            },
        );
    }

    #[test]
    fn patterns_requests_carry_paths_with_blanks_and_refuse_bad_words() {
        let req = Request::Patterns {
            kind: "categories".into(),
            sha256: "0f".repeat(32),
            path: "/srv/my patterns/categories/3-0f0f.mmb".into(),
        };
        let mut wire = Vec::new();
        req.encode(&mut wire).unwrap();
        assert_eq!(Request::decode(&mut wire.as_slice()).unwrap(), req);
        for bad in [
            "patterns rules abc /x\n".to_string(),
            format!("patterns rules {} relative/path\n", "ab".repeat(32)),
            format!("patterns Rules {} /x\n", "ab".repeat(32)),
            format!("patterns rules {}\n", "ab".repeat(32)),
            "patterns\n".to_string(),
        ] {
            assert!(
                matches!(
                    Request::decode(&mut bad.as_bytes()),
                    Err(ProtoError::BadPatterns)
                ),
                "{bad:?}"
            );
        }
        let unsafe_path = Request::Patterns {
            kind: "rules".into(),
            sha256: "ab".repeat(32),
            path: "/x\napply 9 0".into(),
        };
        assert!(matches!(
            unsafe_path.encode(&mut Vec::new()),
            Err(ProtoError::BadPatterns)
        ));
    }

    #[test]
    fn wire_format_is_the_documented_text() {
        let mut wire = Vec::new();
        Request::Apply {
            version: 2,
            policy: "abc".into(),
        }
        .encode(&mut wire)
        .unwrap();
        assert_eq!(wire, b"apply 2 3\nabc");
        // Older clients send a bare newline for stats.
        assert_eq!(Request::decode(&mut &b"\n"[..]).unwrap(), Request::Stats);
        assert_eq!(
            Request::decode(&mut &b"release 02:00:00:00:00:01 extra\n"[..]).unwrap(),
            Request::Release {
                mac: "02:00:00:00:00:01".into()
            }
        );
    }

    #[test]
    fn oversize_input_is_refused() {
        let long = vec![b'x'; LINE_MAX + 10];
        assert!(matches!(
            Request::decode(&mut long.as_slice()),
            Err(ProtoError::LineTooLong(LINE_MAX))
        ));
        let big = format!("apply 1 {}\n", POLICY_MAX + 1);
        assert!(matches!(
            Request::decode(&mut big.as_bytes()),
            Err(ProtoError::PolicyTooLarge(_))
        ));
        let huge = Request::Apply {
            version: 1,
            policy: "x".repeat(POLICY_MAX + 1),
        };
        assert!(matches!(
            huge.encode(&mut Vec::new()),
            Err(ProtoError::PolicyTooLarge(_))
        ));
        let answer = vec![b' '; ANSWER_MAX + 1];
        assert!(matches!(
            Answer::decode(&mut answer.as_slice(), &Request::Stats),
            Err(ProtoError::AnswerTooLong(_))
        ));
    }

    #[test]
    fn malformed_input_is_refused() {
        let decode = |s: &[u8]| Request::decode(&mut &s[..]);
        assert!(matches!(decode(b"apply\n"), Err(ProtoError::BadApply)));
        assert!(matches!(
            decode(b"apply x 3\nabc"),
            Err(ProtoError::BadApply)
        ));
        assert!(matches!(decode(b"apply 1 -3\n"), Err(ProtoError::BadApply)));
        assert!(matches!(
            decode(b"apply 1 10\nabc"),
            Err(ProtoError::PolicyTruncated { got: 3, want: 10 })
        ));
        assert!(matches!(
            decode(b"apply 1 2\n\xff\xfe"),
            Err(ProtoError::PolicyNotUtf8)
        ));
        assert!(matches!(decode(b"release\n"), Err(ProtoError::BadRelease)));
        assert!(matches!(decode(b"\xff\n"), Err(ProtoError::LineNotUtf8)));
        assert!(matches!(
            decode(b"reboot\n"),
            Err(ProtoError::UnknownCommand(c)) if c == "reboot"
        ));
        let answer = |s: &[u8], req: &Request| Answer::decode(&mut &s[..], req);
        assert!(matches!(
            answer(b"", &Request::Stats),
            Err(ProtoError::NoAnswer)
        ));
        assert!(matches!(
            answer(b"{nope", &Request::Stats),
            Err(ProtoError::Json(_))
        ));
        assert!(matches!(
            answer(
                b"ok 1\n",
                &Request::Apply {
                    version: 1,
                    policy: String::new()
                }
            ),
            Err(ProtoError::UnexpectedAnswer(_))
        ));
        assert!(matches!(
            answer(b"seven\n", &Request::Version),
            Err(ProtoError::UnexpectedAnswer(_))
        ));
        let bad_mac = Request::Release {
            mac: "02:00 00".into(),
        };
        assert!(matches!(
            bad_mac.encode(&mut Vec::new()),
            Err(ProtoError::BadRelease)
        ));
    }
}

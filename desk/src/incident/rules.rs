//! Incident rules (TOML, with an embedded default).
//!
//! A rule file is a list of `[[rule]]`s tried in order; the first whose `match` holds decides
//! (`ignore = true` drops the event, any other rule makes a [`Detection`]). The format is
//! described at the top of `desk/rules/incidents.toml`. Everything an event carries is
//! hostile: fields are read through JSON pointers, MACs and IPs are validated and normalised,
//! text is stripped of control characters and bounded before it reaches a summary.

use super::{
    Detection, HostKey, Outbreak, Severity, ThreatKind, UnknownSeverity, clean_text, normalize_ip,
    normalize_mac,
};
use crate::clock::parse_eve_timestamp;
use serde_json::Value;
use std::borrow::Cow;
use std::collections::HashSet;
use thiserror::Error;
use toml::{Table, Value as Toml};

const EMBEDDED: &str = include_str!("../../rules/incidents.toml");
const EMBEDDED_ORIGIN: &str = "embedded:desk/rules/incidents.toml";
const MAX_RULES_TEXT: usize = 1 << 20;
const MAX_RULES: usize = 1000;
const MAX_POINTER: usize = 200;
/// A week: longer folding windows would make one incident of unrelated weeks.
const MAX_FOLD_MINUTES: i64 = 7 * 24 * 60;
const SUMMARY_CHARS: usize = 200;
const FIELD_CHARS: usize = 120;
const THREAT_CHARS: usize = 128;
const HOSTNAME_CHARS: usize = 64;

/// What the rules made of an event, with the reason when nothing came of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Classification {
    Detected(Detection),
    /// An `ignore = true` rule matched.
    Ignored {
        rule: String,
    },
    /// No rule matched.
    Unmatched,
    /// A rule matched but the event lacked what a detection needs.
    Malformed {
        rule: String,
        problem: &'static str,
    },
}

/// A rule file that cannot be used. Every message names the origin, the rule and the field.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RuleError {
    #[error("{origin}: not a rule file: {problem}")]
    File { origin: String, problem: String },
    #[error("{origin}: field `{field}`: {problem}")]
    Top {
        origin: String,
        field: String,
        problem: String,
    },
    #[error("{origin}: rule #{index} ({name}): field `{field}`: {problem}")]
    Rule {
        origin: String,
        /// 1-based position in the file.
        index: usize,
        name: String,
        field: String,
        problem: String,
    },
}

#[derive(Clone, Debug, PartialEq)]
enum Condition {
    AnyOf(Vec<Scalar>),
    Bool(bool),
}

#[derive(Clone, Debug, PartialEq)]
enum Scalar {
    Str(String),
    Int(i64),
    Float(f64),
}

#[derive(Clone, Debug, PartialEq)]
enum IpSource {
    Pointer(String),
    /// src_ip when in_iface = "lan", dest_ip otherwise.
    LanSide,
}

#[derive(Clone, Debug, PartialEq)]
struct HostSpec {
    mac: Vec<String>,
    hostname: Vec<String>,
    ip: Vec<IpSource>,
}

#[derive(Clone, Debug, PartialEq)]
enum Piece {
    Text(String),
    Field(String),
    /// The detection's threat key (the default summary is `rule: threat`).
    Threat,
}

#[derive(Clone, Debug, PartialEq)]
struct DetectSpec {
    kind: ThreatKind,
    threat: Option<String>,
    threat_from: Option<String>,
    host: HostSpec,
    severity: Severity,
    fold_secs: i64,
    outbreak: Option<Outbreak>,
    notify: bool,
    summary: Vec<Piece>,
}

#[derive(Clone, Debug, PartialEq)]
struct Rule {
    name: String,
    event_type: String,
    conditions: Vec<(String, Condition)>,
    /// `None`: an ignore rule.
    detect: Option<DetectSpec>,
}

/// An ordered list of rules.
#[derive(Clone, Debug, PartialEq)]
pub struct RuleSet {
    origin: String,
    notify_threshold: Severity,
    rules: Vec<Rule>,
}

/// Reads one rule's table, naming the rule in every error.
struct RuleReader<'a> {
    origin: &'a str,
    index: usize,
    name: String,
}

impl RuleReader<'_> {
    fn err(&self, field: &str, problem: impl Into<String>) -> RuleError {
        RuleError::Rule {
            origin: self.origin.to_string(),
            index: self.index,
            name: self.name.clone(),
            field: field.to_string(),
            problem: problem.into(),
        }
    }

    fn string<'v>(&self, field: &str, value: &'v Toml) -> Result<&'v str, RuleError> {
        value
            .as_str()
            .ok_or_else(|| self.err(field, "must be a string"))
    }

    fn pointer(&self, field: &str, value: &Toml) -> Result<String, RuleError> {
        let text = self.string(field, value)?;
        check_pointer(text).map_err(|p| self.err(field, p))?;
        Ok(text.to_string())
    }

    /// A pointer or a list of pointers.
    fn pointers(&self, field: &str, value: &Toml) -> Result<Vec<String>, RuleError> {
        match value {
            Toml::Array(items) if !items.is_empty() => {
                items.iter().map(|v| self.pointer(field, v)).collect()
            }
            Toml::Array(_) => Err(self.err(field, "an empty list names no field")),
            other => Ok(vec![self.pointer(field, other)?]),
        }
    }

    fn severity(&self, field: &str, value: &Toml) -> Result<Severity, RuleError> {
        self.string(field, value)?
            .parse()
            .map_err(|e: UnknownSeverity| self.err(field, e.to_string()))
    }

    fn integer(&self, field: &str, value: &Toml, range: (i64, i64)) -> Result<i64, RuleError> {
        match value.as_integer() {
            Some(n) if n >= range.0 && n <= range.1 => Ok(n),
            Some(n) => Err(self.err(field, format!("{n} is outside {}..={}", range.0, range.1))),
            None => Err(self.err(field, "must be an integer")),
        }
    }

    fn conditions(&self, table: &Table) -> Result<(String, Vec<(String, Condition)>), RuleError> {
        let event_type = table
            .get("event_type")
            .ok_or_else(|| self.err("match.event_type", "missing"))
            .and_then(|v| self.string("match.event_type", v))?;
        let mut conditions = Vec::new();
        for (key, value) in table {
            if key == "event_type" {
                continue;
            }
            let field = format!("match.{key}");
            check_pointer(key).map_err(|p| self.err(&field, p))?;
            let condition = match value {
                Toml::Boolean(b) => Condition::Bool(*b),
                Toml::Array(items) if items.is_empty() => {
                    return Err(self.err(&field, "an empty list matches nothing"));
                }
                Toml::Array(items) => Condition::AnyOf(
                    items
                        .iter()
                        .map(|v| self.scalar(&field, v))
                        .collect::<Result<_, _>>()?,
                ),
                other => Condition::AnyOf(vec![self.scalar(&field, other)?]),
            };
            conditions.push((key.clone(), condition));
        }
        Ok((event_type.to_string(), conditions))
    }

    fn scalar(&self, field: &str, value: &Toml) -> Result<Scalar, RuleError> {
        match value {
            Toml::String(s) => Ok(Scalar::Str(s.clone())),
            Toml::Integer(n) => Ok(Scalar::Int(*n)),
            Toml::Float(f) if f.is_finite() => Ok(Scalar::Float(*f)),
            _ => Err(self.err(field, "values must be strings or numbers (or one boolean)")),
        }
    }

    fn host_spec(&self, table: &Table) -> Result<HostSpec, RuleError> {
        let mut spec = HostSpec {
            mac: Vec::new(),
            hostname: Vec::new(),
            ip: Vec::new(),
        };
        for (key, value) in table {
            let field = format!("host_from.{key}");
            match key.as_str() {
                "mac" => spec.mac = self.pointers(&field, value)?,
                "hostname" => spec.hostname = self.pointers(&field, value)?,
                "ip" => {
                    let items = match value {
                        Toml::Array(items) => items.iter().collect(),
                        other => vec![other],
                    };
                    for item in items {
                        let text = self.string(&field, item)?;
                        spec.ip.push(if text == "lan-side" {
                            IpSource::LanSide
                        } else {
                            check_pointer(text).map_err(|p| {
                                self.err(&field, format!("{p} (or the keyword \"lan-side\")"))
                            })?;
                            IpSource::Pointer(text.to_string())
                        });
                    }
                }
                _ => return Err(self.err(&field, "unknown field (mac, hostname, ip)")),
            }
        }
        if spec.mac.is_empty() && spec.ip.is_empty() {
            return Err(self.err("host_from", "needs a mac or an ip source to name the host"));
        }
        Ok(spec)
    }

    fn outbreak(&self, value: &Toml, base: Severity) -> Result<Outbreak, RuleError> {
        let table = value.as_table().ok_or_else(|| {
            self.err(
                "outbreak",
                "must be a table {detections, minutes, severity}",
            )
        })?;
        let mut detections = None;
        let mut minutes = None;
        let mut severity = Severity::Critical;
        for (key, value) in table {
            let field = format!("outbreak.{key}");
            match key.as_str() {
                "detections" => detections = Some(self.integer(&field, value, (2, 100_000))?),
                "minutes" => minutes = Some(self.integer(&field, value, (1, 1440))?),
                "severity" => severity = self.severity(&field, value)?,
                _ => return Err(self.err(&field, "unknown field (detections, minutes, severity)")),
            }
        }
        let detections = detections.ok_or_else(|| self.err("outbreak.detections", "missing"))?;
        let minutes = minutes.ok_or_else(|| self.err("outbreak.minutes", "missing"))?;
        if severity < base {
            return Err(self.err(
                "outbreak.severity",
                format!("{severity} would lower the rule's severity {base}"),
            ));
        }
        Ok(Outbreak {
            detections: detections as u32,
            window_secs: minutes * 60,
            severity,
        })
    }

    fn summary(&self, text: &str) -> Result<Vec<Piece>, RuleError> {
        let mut pieces = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                pieces.push(Piece::Text(rest[..open].to_string()));
            }
            let after = &rest[open + 1..];
            let close = after
                .find('}')
                .ok_or_else(|| self.err("summary", "`{` without its `}`"))?;
            let pointer = &after[..close];
            check_pointer(pointer)
                .map_err(|p| self.err("summary", format!("{{{pointer}}}: {p}")))?;
            pieces.push(Piece::Field(pointer.to_string()));
            rest = &after[close + 1..];
        }
        if rest.contains('}') {
            return Err(self.err("summary", "`}` without its `{`"));
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_string()));
        }
        Ok(pieces)
    }

    fn rule(&self, table: &Table, notify_threshold: Severity) -> Result<Rule, RuleError> {
        const KNOWN: [&str; 13] = [
            "name",
            "match",
            "ignore",
            "kind",
            "threat",
            "threat_from",
            "host_from",
            "severity",
            "fold_minutes",
            "outbreak",
            "notify",
            "summary",
            "comment",
        ];
        if let Some(key) = table.keys().find(|k| !KNOWN.contains(&k.as_str())) {
            return Err(self.err(key, format!("unknown field (known: {})", KNOWN.join(", "))));
        }
        let match_table = table
            .get("match")
            .ok_or_else(|| self.err("match", "missing"))?
            .as_table()
            .ok_or_else(|| self.err("match", "must be a table"))?;
        let (event_type, conditions) = self.conditions(match_table)?;
        let ignore = match table.get("ignore") {
            None => false,
            Some(v) => v
                .as_bool()
                .ok_or_else(|| self.err("ignore", "must be a boolean"))?,
        };
        if ignore {
            let extra = [
                "kind",
                "threat",
                "threat_from",
                "severity",
                "outbreak",
                "notify",
            ];
            if let Some(key) = extra.iter().find(|k| table.contains_key(**k)) {
                return Err(self.err(key, "an ignore rule makes no detection"));
            }
            return Ok(Rule {
                name: self.name.clone(),
                event_type,
                conditions,
                detect: None,
            });
        }
        let severity = self.severity(
            "severity",
            table
                .get("severity")
                .ok_or_else(|| self.err("severity", "missing"))?,
        )?;
        let kind = match table.get("kind") {
            None => ThreatKind::Other,
            Some(v) => {
                let text = self.string("kind", v)?;
                ThreatKind::ALL
                    .iter()
                    .find(|(_, name)| *name == text)
                    .map(|(k, _)| *k)
                    .ok_or_else(|| {
                        self.err(
                            "kind",
                            "expected infected-host, malicious-site, intrusion or other",
                        )
                    })?
            }
        };
        let threat = match table.get("threat") {
            None => None,
            Some(v) => {
                let text = self.string("threat", v)?;
                if text.trim().is_empty() || clean_text(text, THREAT_CHARS) != text {
                    return Err(self.err("threat", "must be short plain text, not empty"));
                }
                Some(text.to_string())
            }
        };
        let threat_from = table
            .get("threat_from")
            .map(|v| self.pointer("threat_from", v))
            .transpose()?;
        if threat.is_none() && threat_from.is_none() {
            return Err(self.err("threat", "missing (give threat, threat_from or both)"));
        }
        let host = match table.get("host_from") {
            None => HostSpec {
                mac: Vec::new(),
                hostname: Vec::new(),
                ip: vec![IpSource::Pointer("/src_ip".to_string())],
            },
            Some(v) => self
                .host_spec(v.as_table().ok_or_else(|| {
                    self.err("host_from", "must be a table {mac, hostname, ip}")
                })?)?,
        };
        let fold_minutes = match table.get("fold_minutes") {
            None => 60,
            Some(v) => self.integer("fold_minutes", v, (0, MAX_FOLD_MINUTES))?,
        };
        let outbreak = table
            .get("outbreak")
            .map(|v| self.outbreak(v, severity))
            .transpose()?;
        let notify = match table.get("notify") {
            None => severity >= notify_threshold,
            Some(v) => v
                .as_bool()
                .ok_or_else(|| self.err("notify", "must be a boolean"))?,
        };
        let summary = match table.get("summary") {
            None => vec![Piece::Text(format!("{}: ", self.name)), Piece::Threat],
            Some(v) => self.summary(self.string("summary", v)?)?,
        };
        Ok(Rule {
            name: self.name.clone(),
            event_type,
            conditions,
            detect: Some(DetectSpec {
                kind,
                threat,
                threat_from,
                host,
                severity,
                fold_secs: fold_minutes * 60,
                outbreak,
                notify,
                summary,
            }),
        })
    }
}

fn check_pointer(text: &str) -> Result<(), &'static str> {
    if !text.starts_with('/') {
        Err("a JSON pointer must start with `/`")
    } else if text.len() > MAX_POINTER {
        Err("JSON pointer too long")
    } else if text.chars().any(char::is_control) {
        Err("JSON pointer has control characters")
    } else {
        Ok(())
    }
}

impl RuleSet {
    /// Parse a rule file. `origin` (a path, or `embedded`) names the file in errors.
    pub fn parse(text: &str, origin: &str) -> Result<RuleSet, RuleError> {
        let origin = clean_text(origin, 200);
        let file_err = |problem: String| RuleError::File {
            origin: origin.clone(),
            problem,
        };
        if text.len() > MAX_RULES_TEXT {
            return Err(file_err(format!("larger than {MAX_RULES_TEXT} bytes")));
        }
        let top: Table = toml::from_str(text).map_err(|e| file_err(e.to_string()))?;
        let top_err = |field: &str, problem: &str| RuleError::Top {
            origin: origin.clone(),
            field: field.to_string(),
            problem: problem.to_string(),
        };
        if let Some(key) = top
            .keys()
            .find(|k| !["notify_threshold", "rule"].contains(&k.as_str()))
        {
            return Err(top_err(key, "unknown field (notify_threshold, rule)"));
        }
        let notify_threshold = match top.get("notify_threshold") {
            None => Severity::Medium,
            Some(v) => v.as_str().and_then(|s| s.parse().ok()).ok_or_else(|| {
                top_err("notify_threshold", "must be low, medium, high or critical")
            })?,
        };
        let entries = match top.get("rule") {
            Some(Toml::Array(entries)) => entries,
            Some(_) => return Err(top_err("rule", "must be a list of [[rule]] tables")),
            None => return Err(top_err("rule", "no [[rule]] at all")),
        };
        if entries.len() > MAX_RULES {
            return Err(top_err("rule", "more than 1000 rules"));
        }
        let mut rules = Vec::with_capacity(entries.len());
        let mut names = HashSet::new();
        for (i, entry) in entries.iter().enumerate() {
            let mut reader = RuleReader {
                origin: &origin,
                index: i + 1,
                name: "<unnamed>".to_string(),
            };
            let table = entry
                .as_table()
                .ok_or_else(|| reader.err("rule", "must be a table"))?;
            let name = table
                .get("name")
                .ok_or_else(|| reader.err("name", "missing"))
                .and_then(|v| reader.string("name", v))?;
            let valid = !name.is_empty()
                && name.len() <= 64
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
            if !valid {
                return Err(reader.err("name", "1–64 characters of a-z, 0-9, - _ ."));
            }
            reader.name = name.to_string();
            if !names.insert(name.to_string()) {
                return Err(reader.err("name", "another rule has this name"));
            }
            rules.push(reader.rule(table, notify_threshold)?);
        }
        Ok(RuleSet {
            origin,
            notify_threshold,
            rules,
        })
    }

    /// The default rules shipped in the binary (`desk/rules/incidents.toml`).
    pub fn embedded() -> RuleSet {
        match RuleSet::parse(EMBEDDED, EMBEDDED_ORIGIN) {
            Ok(set) => set,
            // The embedded file is checked by a unit test; an empty set keeps the desk up.
            Err(_) => RuleSet {
                origin: "embedded (unparsable)".to_string(),
                notify_threshold: Severity::Medium,
                rules: Vec::new(),
            },
        }
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    pub fn notify_threshold(&self) -> Severity {
        self.notify_threshold
    }

    /// The rule names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(|r| r.name.as_str())
    }

    /// The detection an event makes, if any.
    pub fn classify(&self, event: &Value) -> Option<Detection> {
        match self.explain(event) {
            Classification::Detected(d) => Some(d),
            _ => None,
        }
    }

    /// What the rules make of an event, and why.
    pub fn explain(&self, event: &Value) -> Classification {
        let Some(event_type) = event.get("event_type").and_then(Value::as_str) else {
            return Classification::Unmatched;
        };
        let Some(rule) = self.rules.iter().find(|r| {
            r.event_type == event_type && r.conditions.iter().all(|(p, c)| holds(event, p, c))
        }) else {
            return Classification::Unmatched;
        };
        let Some(spec) = &rule.detect else {
            return Classification::Ignored {
                rule: rule.name.clone(),
            };
        };
        let malformed = |problem| Classification::Malformed {
            rule: rule.name.clone(),
            problem,
        };
        let Some(ts) = event
            .get("timestamp")
            .and_then(Value::as_str)
            .and_then(parse_eve_timestamp)
        else {
            return malformed("no valid timestamp");
        };
        let host = host_of(event, &spec.host);
        if host.mac.is_none() && host.ip.is_none() {
            return malformed("no valid MAC or IP names the host");
        }
        let from = spec
            .threat_from
            .as_deref()
            .and_then(|p| event.pointer(p))
            .and_then(field_text)
            .map(|t| clean_text(&t, THREAT_CHARS))
            .filter(|t| !t.is_empty());
        let threat = match (&spec.threat, from) {
            (Some(t), Some(v)) => format!("{t}:{v}"),
            (Some(t), None) => t.clone(),
            (None, Some(v)) => v,
            (None, None) => return malformed("threat_from names no usable field"),
        };
        let summary = render_summary(&spec.summary, event, &threat);
        Classification::Detected(Detection {
            rule: rule.name.clone(),
            threat,
            kind: spec.kind,
            host,
            severity: spec.severity,
            fold_secs: spec.fold_secs,
            outbreak: spec.outbreak,
            notify: spec.notify,
            summary,
            ts,
        })
    }
}

fn holds(event: &Value, pointer: &str, condition: &Condition) -> bool {
    let Some(value) = event.pointer(pointer) else {
        return false;
    };
    match condition {
        Condition::Bool(b) => value.as_bool() == Some(*b),
        Condition::AnyOf(options) => options.iter().any(|o| scalar_equals(o, value)),
    }
}

/// Strings match strings exactly; numbers match numbers (or a string holding that number:
/// some boxes send ids as text).
fn scalar_equals(option: &Scalar, value: &Value) -> bool {
    match (option, value) {
        (Scalar::Str(s), Value::String(v)) => s == v,
        (Scalar::Int(n), Value::Number(v)) => v.as_i64() == Some(*n),
        (Scalar::Int(n), Value::String(v)) => v.trim().parse::<i64>().ok() == Some(*n),
        (Scalar::Float(f), Value::Number(v)) => v.as_f64() == Some(*f),
        _ => false,
    }
}

/// A field as plain text: strings, numbers and booleans; nothing else.
fn field_text(value: &Value) -> Option<Cow<'_, str>> {
    match value {
        // Borrowed: the field may be huge, and is cut down by `clean_text` anyway.
        Value::String(s) => Some(Cow::Borrowed(s)),
        Value::Number(n) => Some(Cow::Owned(n.to_string())),
        Value::Bool(b) => Some(Cow::Owned(b.to_string())),
        _ => None,
    }
}

fn render_summary(pieces: &[Piece], event: &Value, threat: &str) -> String {
    let mut out = String::new();
    for piece in pieces {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Threat => out.push_str(threat),
            Piece::Field(p) => {
                let text = event.pointer(p).and_then(field_text);
                out.push_str(&text.map_or("?".to_string(), |t| clean_text(&t, FIELD_CHARS)));
            }
        }
        if out.len() > SUMMARY_CHARS * 4 {
            break;
        }
    }
    clean_text(&out, SUMMARY_CHARS)
}

fn host_of(event: &Value, spec: &HostSpec) -> HostKey {
    let text_at = |p: &str| event.pointer(p).and_then(Value::as_str);
    let mac = spec
        .mac
        .iter()
        .filter_map(|p| text_at(p))
        .find_map(normalize_mac);
    let hostname = spec
        .hostname
        .iter()
        .filter_map(|p| text_at(p))
        .map(|h| clean_text(h, HOSTNAME_CHARS))
        .find(|h| !h.is_empty());
    let ip = spec.ip.iter().find_map(|source| {
        let pointer = match source {
            IpSource::Pointer(p) => p.as_str(),
            IpSource::LanSide if text_at("/in_iface") == Some("lan") => "/src_ip",
            IpSource::LanSide => "/dest_ip",
        };
        text_at(pointer).and_then(normalize_ip)
    });
    HostKey { mac, ip, hostname }
}

#[cfg(test)]
mod tests;

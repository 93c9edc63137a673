//! Incidents: rules kept as data turn events into detections, detections fold into incidents.
//!
//! - [`rules`]: the rule language and [`RuleSet::classify`] (event → [`Detection`]).
//! - [`state`]: the incident life cycle and its audit entries.
//! - here: the shared vocabulary ([`Severity`], [`HostKey`], [`Detection`]), text cleaning for
//!   untrusted strings, and [`fold`]: whether a detection opens an incident or joins one.

pub mod rules;
pub mod state;

pub use rules::{Classification, RuleError, RuleSet};
pub use state::{Action, AuditEntry, IncidentState, Resolution, TransitionRefusal, next, step};

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use thiserror::Error;

/// How bad a detection is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 4] = [
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown severity {0:?}: expected low, medium, high or critical")]
pub struct UnknownSeverity(pub String);

impl FromStr for Severity {
    type Err = UnknownSeverity;
    fn from_str(text: &str) -> Result<Severity, UnknownSeverity> {
        let name = text.trim();
        Severity::ALL
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(name))
            .ok_or_else(|| UnknownSeverity(clean_text(text, 40)))
    }
}

/// What sort of threat a rule reports (it picks the customer's mail).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ThreatKind {
    InfectedHost,
    MaliciousSite,
    Intrusion,
    #[default]
    Other,
}

impl ThreatKind {
    const ALL: [(ThreatKind, &'static str); 4] = [
        (ThreatKind::InfectedHost, "infected-host"),
        (ThreatKind::MaliciousSite, "malicious-site"),
        (ThreatKind::Intrusion, "intrusion"),
        (ThreatKind::Other, "other"),
    ];
}

/// The LAN host a detection is about. The box names hosts by MAC and DHCP host name, so a
/// dynamic-IP PC is still identified; the IP is what it had at the time.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct HostKey {
    /// Lowercase, colon-separated (`02:00:5e:10:00:01`).
    pub mac: Option<String>,
    /// Canonical text form.
    pub ip: Option<String>,
    /// Cleaned of control characters, at most 64 characters.
    pub hostname: Option<String>,
}

impl HostKey {
    /// The stable identity for folding: `mac:<mac>` when known, else `ip:<ip>`, else `unknown`.
    pub fn key(&self) -> String {
        match (&self.mac, &self.ip) {
            (Some(mac), _) => format!("mac:{mac}"),
            (None, Some(ip)) => format!("ip:{ip}"),
            (None, None) => "unknown".to_string(),
        }
    }
}

/// Raise an incident to `severity` when `detections` of the same box + host + threat fall
/// within `window_secs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outbreak {
    pub detections: u32,
    pub window_secs: i64,
    pub severity: Severity,
}

/// One event judged by a rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Detection {
    pub rule: String,
    pub threat: String,
    pub kind: ThreatKind,
    pub host: HostKey,
    pub severity: Severity,
    pub fold_secs: i64,
    pub outbreak: Option<Outbreak>,
    pub notify: bool,
    pub summary: String,
    /// The event's own time (Unix seconds), from its `timestamp`.
    pub ts: i64,
}

/// `02:00:5E:10:00:01` or `02-00-5e-10-00-01` → `02:00:5e:10:00:01`; anything else `None`.
pub fn normalize_mac(text: &str) -> Option<String> {
    let text = text.trim();
    if text.len() != 17 {
        return None;
    }
    let mut out = String::with_capacity(17);
    for (i, c) in text.chars().enumerate() {
        if i % 3 == 2 {
            if c != ':' && c != '-' {
                return None;
            }
            out.push(':');
        } else if c.is_ascii_hexdigit() {
            out.push(c.to_ascii_lowercase());
        } else {
            return None;
        }
    }
    Some(out)
}

/// A valid IPv4 or IPv6 address in canonical form, else `None`.
pub fn normalize_ip(text: &str) -> Option<String> {
    let text = text.trim();
    if text.len() > 64 {
        return None;
    }
    text.parse::<std::net::IpAddr>()
        .ok()
        .map(|ip| ip.to_string())
}

/// One line of plain text from an untrusted string: control characters, line and paragraph
/// separators and bidirectional overrides become spaces, runs of space shrink to one, and the
/// result has at most `max_chars` characters (ending in `…` when cut).
pub fn clean_text(raw: &str, max_chars: usize) -> String {
    let mut out = String::new();
    let mut count = 0;
    let mut pending_space = false;
    for c in raw.chars() {
        let invisible = c.is_control()
            || c.is_whitespace()
            || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}');
        if invisible {
            pending_space = count > 0;
            continue;
        }
        let needed = usize::from(pending_space) + 1;
        if count + needed > max_chars {
            if max_chars > 0 {
                // Replace the tail with an ellipsis.
                while count + 1 > max_chars {
                    if out.pop().is_none() {
                        break;
                    }
                    count -= 1;
                }
                out.push('…');
            }
            return out;
        }
        if pending_space {
            out.push(' ');
            count += 1;
            pending_space = false;
        }
        out.push(c);
        count += 1;
    }
    out
}

/// The currently open (not closed) incident for one box + host + threat.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenIncident {
    pub id: i64,
    /// The latest detection time folded into it.
    pub last_seen: i64,
    pub severity: Severity,
    pub count: u64,
}

/// What to do with a detection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "decision")]
pub enum FoldDecision {
    /// Open a new incident at this severity.
    Open { severity: Severity },
    /// Add the detection to incident `id` (count + 1, last_seen = max(last_seen, ts)), and
    /// raise its severity when `raise_to` is set.
    Fold { id: i64, raise_to: Option<Severity> },
}

/// Whether `d` completes an outbreak: with its rule's `outbreak = {detections = N, minutes = M}`,
/// `d` and the earlier detections in `recent_detection_times` at times within
/// `[d.ts − M min, d.ts]` number at least N. `recent_detection_times` are the times of earlier
/// detections of the same box + host + threat, **not including `d` itself** (times after
/// `d.ts` are ignored, so late-arriving events do not count what came after them).
pub fn outbreak_met(recent_detection_times: &[i64], d: &Detection) -> bool {
    let Some(outbreak) = d.outbreak else {
        return false;
    };
    let from = d.ts.saturating_sub(outbreak.window_secs);
    let earlier = recent_detection_times
        .iter()
        .filter(|&&t| t >= from && t <= d.ts)
        .count();
    earlier.saturating_add(1) >= outbreak.detections as usize
}

/// Open a new incident or fold `d` into `open`.
///
/// - `open` is the caller's currently open incident for the same box + host + threat
///   (`HostKey::key()` and `Detection::threat`); with several, pass the one seen last.
/// - `d` folds into it when `d.ts ≤ open.last_seen + d.fold_secs` (inclusive; an event older
///   than `last_seen` always folds). Otherwise a new incident opens, even though the old one is
///   still open: a burst after a quiet spell longer than the fold window is a new incident.
/// - The wanted severity is the rule's, or the outbreak severity when [`outbreak_met`]. A fold
///   raises to it only when it is higher than the incident's (`raise_to`); severities never drop.
///   A new incident opens at it.
pub fn fold(
    open: Option<&OpenIncident>,
    recent_detection_times: &[i64],
    d: &Detection,
) -> FoldDecision {
    let wanted = match d.outbreak {
        Some(outbreak) if outbreak_met(recent_detection_times, d) => {
            d.severity.max(outbreak.severity)
        }
        _ => d.severity,
    };
    match open {
        Some(incident) if d.ts <= incident.last_seen.saturating_add(d.fold_secs) => {
            FoldDecision::Fold {
                id: incident.id,
                raise_to: (wanted > incident.severity).then_some(wanted),
            }
        }
        _ => FoldDecision::Open { severity: wanted },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detection(ts: i64, outbreak: Option<Outbreak>) -> Detection {
        Detection {
            rule: "infected-host".into(),
            threat: "quarantine".into(),
            kind: ThreatKind::InfectedHost,
            host: HostKey {
                mac: Some("02:00:5e:10:00:01".into()),
                ip: None,
                hostname: None,
            },
            severity: Severity::High,
            fold_secs: 600,
            outbreak,
            notify: true,
            summary: "s".into(),
            ts,
        }
    }

    const FIVE_IN_TEN: Outbreak = Outbreak {
        detections: 5,
        window_secs: 600,
        severity: Severity::Critical,
    };

    fn open_at(last_seen: i64, severity: Severity) -> OpenIncident {
        OpenIncident {
            id: 7,
            last_seen,
            severity,
            count: 3,
        }
    }

    #[test]
    fn no_open_incident_opens_one() {
        let d = detection(1_000, None);
        assert_eq!(
            fold(None, &[], &d),
            FoldDecision::Open {
                severity: Severity::High
            }
        );
    }

    #[test]
    fn within_the_fold_window_folds_inclusive() {
        let open = open_at(1_000, Severity::High);
        for ts in [400, 1_000, 1_600] {
            assert_eq!(
                fold(Some(&open), &[], &detection(ts, None)),
                FoldDecision::Fold {
                    id: 7,
                    raise_to: None
                },
                "ts {ts}"
            );
        }
        assert_eq!(
            fold(Some(&open), &[], &detection(1_601, None)),
            FoldDecision::Open {
                severity: Severity::High
            }
        );
    }

    #[test]
    fn outbreak_raises_at_the_nth_detection() {
        let open = open_at(1_000, Severity::High);
        let d = detection(1_200, Some(FIVE_IN_TEN));
        // Four earlier plus this one = five within ten minutes.
        let four = [600, 700, 800, 1_000];
        assert!(outbreak_met(&four, &d));
        assert_eq!(
            fold(Some(&open), &four, &d),
            FoldDecision::Fold {
                id: 7,
                raise_to: Some(Severity::Critical)
            }
        );
        // Three earlier: not yet.
        assert_eq!(
            fold(Some(&open), &four[1..], &d),
            FoldDecision::Fold {
                id: 7,
                raise_to: None
            }
        );
        // Too old (more than ten minutes before) or later than d: not counted.
        assert!(!outbreak_met(&[599, 700, 800, 1_000], &d));
        assert!(!outbreak_met(&[700, 800, 1_000, 1_300], &d));
        // Already critical: no raise; never lowered.
        let critical = open_at(1_000, Severity::Critical);
        assert_eq!(
            fold(Some(&critical), &four, &d),
            FoldDecision::Fold {
                id: 7,
                raise_to: None
            }
        );
        assert_eq!(
            fold(Some(&critical), &[], &detection(1_100, None)),
            FoldDecision::Fold {
                id: 7,
                raise_to: None
            }
        );
        // A new incident opens straight at the outbreak severity.
        assert_eq!(
            fold(None, &four, &d),
            FoldDecision::Open {
                severity: Severity::Critical
            }
        );
        // No outbreak rule: never raised by count.
        assert_eq!(
            fold(Some(&open), &four, &detection(1_200, None)),
            FoldDecision::Fold {
                id: 7,
                raise_to: None
            }
        );
    }

    #[test]
    fn a_higher_rule_severity_raises_a_fold() {
        let open = open_at(1_000, Severity::Medium);
        assert_eq!(
            fold(Some(&open), &[], &detection(1_100, None)),
            FoldDecision::Fold {
                id: 7,
                raise_to: Some(Severity::High)
            }
        );
    }

    #[test]
    fn hostile_times_do_not_overflow() {
        let open = open_at(i64::MAX, Severity::Low);
        let d = Detection {
            fold_secs: i64::MAX,
            ..detection(i64::MIN, Some(FIVE_IN_TEN))
        };
        let _ = fold(Some(&open), &[i64::MIN, i64::MAX], &d);
    }

    #[test]
    fn severity_orders_and_parses() {
        assert!(Severity::Low < Severity::Medium && Severity::High < Severity::Critical);
        assert_eq!(" HIGH ".parse::<Severity>(), Ok(Severity::High));
        assert!("none".parse::<Severity>().is_err());
        assert_eq!(
            serde_json::to_string(&Severity::Critical).unwrap(),
            "\"critical\""
        );
    }

    #[test]
    fn host_key_prefers_the_mac() {
        let mut host = HostKey {
            mac: Some("02:00:5e:10:00:01".into()),
            ip: Some("10.0.0.5".into()),
            hostname: Some("pc".into()),
        };
        assert_eq!(host.key(), "mac:02:00:5e:10:00:01");
        host.mac = None;
        assert_eq!(host.key(), "ip:10.0.0.5");
        host.ip = None;
        assert_eq!(host.key(), "unknown");
    }

    #[test]
    fn addresses_are_validated_and_normalised() {
        assert_eq!(
            normalize_mac("02:00:5E:10:00:0A").as_deref(),
            Some("02:00:5e:10:00:0a")
        );
        assert_eq!(
            normalize_mac("02-00-5e-10-00-0a").as_deref(),
            Some("02:00:5e:10:00:0a")
        );
        for bad in [
            "",
            "02:00:5e:10:00",
            "02:00:5e:10:00:0g",
            "0200.5e10.000a.",
            "02:00:5e:10:00:0aa",
        ] {
            assert_eq!(normalize_mac(bad), None, "{bad}");
        }
        assert_eq!(
            normalize_ip(" 192.168.1.5 ").as_deref(),
            Some("192.168.1.5")
        );
        assert_eq!(normalize_ip("FE80:0:0::1").as_deref(), Some("fe80::1"));
        assert_eq!(normalize_ip("192.168.1.256"), None);
        assert_eq!(normalize_ip("evil\r\n"), None);
    }

    #[test]
    fn untrusted_text_becomes_one_bounded_line() {
        assert_eq!(clean_text("PC-1\r\nBcc: a@b", 64), "PC-1 Bcc: a@b");
        assert_eq!(
            clean_text("  a \t\u{0} b\u{202E}c\u{2028}d  ", 64),
            "a b c d"
        );
        assert_eq!(clean_text("abcdef", 4), "abc…");
        assert_eq!(clean_text("abcd", 4), "abcd");
        assert_eq!(clean_text("あいうえおか", 3), "あい…");
        assert_eq!(clean_text("abc", 0), "");
        assert_eq!(clean_text("\r\n", 10), "");
    }
}

//! `threshold.config`: Suricata's per-signature alert controls kept beside the rules
//! rather than in them. One entry per line, `#` comments:
//!
//! - `suppress gen_id G, sig_id S[, track by_src|by_dst|by_either, ip ADDRS]` — no alert
//!   (from those addresses, or at all); the rule still acts (a drop still drops);
//! - `threshold|event_filter gen_id G, sig_id S, type limit|threshold|both, track
//!   by_src|by_dst|by_rule|by_both, count N, seconds T` — replaces the rule's own
//!   `threshold`; `sig_id 0` applies to every rule of the generator;
//! - `rate_filter gen_id G, sig_id S, track by_src|by_dst|by_rule|by_both|by_flow, count N,
//!   seconds T, new_action alert|drop|pass|reject, timeout T2` — past `count` matches in
//!   `seconds`, the rule's action becomes `new_action` for `timeout` seconds.
//!
//! A bad line is an error naming its line and field; the whole file is then refused
//! (a half-read suppression list would alert on what the operator silenced).

use super::Action;
use super::header::{AddrSpec, Vars, addr_spec};
use super::options::{ThresholdKind, Track};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SuppressTrack {
    Src,
    Dst,
    Either,
}

/// Who a rate filter counts by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateTrack {
    By(Track),
    Flow,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Entry {
    Suppress {
        gid: u32,
        sid: u32,
        only: Option<(SuppressTrack, AddrSpec)>,
    },
    Threshold {
        gid: u32,
        sid: u32,
        kind: ThresholdKind,
        track: Track,
        count: u32,
        seconds: u32,
    },
    RateFilter {
        gid: u32,
        sid: u32,
        track: RateTrack,
        count: u32,
        seconds: u32,
        new_action: Action,
        timeout: u32,
    },
}

impl Entry {
    /// Whether the entry names this rule (`sig_id 0`: every rule of the generator).
    pub fn applies(&self, rule_gid: u32, rule_sid: u32) -> bool {
        let (gid, sid) = match self {
            Entry::Suppress { gid, sid, .. }
            | Entry::Threshold { gid, sid, .. }
            | Entry::RateFilter { gid, sid, .. } => (*gid, *sid),
        };
        (gid == 0 || gid == rule_gid) && (sid == 0 || sid == rule_sid)
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ThresholdConfig {
    pub entries: Vec<Entry>,
}

impl ThresholdConfig {
    /// Parses the file's text; `vars` resolves `$NAME` in suppress addresses.
    pub fn parse(text: &str, vars: &Vars) -> Result<ThresholdConfig, String> {
        let mut entries = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            entries.push(entry(line, vars).map_err(|e| format!("line {}: {e}", i + 1))?);
        }
        Ok(ThresholdConfig { entries })
    }
}

fn entry(line: &str, vars: &Vars) -> Result<Entry, String> {
    let (kind, rest) = line
        .split_once(char::is_whitespace)
        .ok_or_else(|| format!("{line:?}: no fields"))?;
    let mut f = Fields::default();
    for part in rest.split(',') {
        let part = part.trim();
        let (k, v) = part
            .split_once(char::is_whitespace)
            .ok_or_else(|| format!("field {part:?} has no value"))?;
        let v = v.trim();
        match k {
            "gen_id" => f.gid = Some(number(k, v)?),
            "sig_id" => f.sid = Some(number(k, v)?),
            "type" => f.kind = Some(v.to_string()),
            "track" => f.track = Some(v.to_string()),
            "count" => f.count = Some(number(k, v)?),
            "seconds" => f.seconds = Some(number(k, v)?),
            "timeout" => f.timeout = Some(number(k, v)?),
            "new_action" => f.new_action = Some(v.to_string()),
            "ip" => f.ip = Some(v.to_string()),
            other => return Err(format!("unknown field {other:?}")),
        }
    }
    let need = |o: Option<u32>, name: &str| o.ok_or_else(|| format!("{kind} needs {name}"));
    let gid = need(f.gid, "gen_id")?;
    let sid = need(f.sid, "sig_id")?;
    match kind {
        "suppress" => {
            let only = match (f.track.as_deref(), f.ip.as_deref()) {
                (None, None) => None,
                (Some(t), Some(ip)) => {
                    let track = match t {
                        "by_src" => SuppressTrack::Src,
                        "by_dst" => SuppressTrack::Dst,
                        "by_either" => SuppressTrack::Either,
                        other => {
                            return Err(format!("track {other:?} (by_src, by_dst or by_either)"));
                        }
                    };
                    let spec = addr_spec(ip, vars, 0).map_err(|e| format!("ip {ip:?}: {e}"))?;
                    Some((track, spec))
                }
                _ => return Err("suppress takes track and ip together".into()),
            };
            Ok(Entry::Suppress { gid, sid, only })
        }
        "threshold" | "event_filter" => {
            let kind = match f.kind.as_deref() {
                Some("limit") => ThresholdKind::Limit,
                Some("threshold") => ThresholdKind::Threshold,
                Some("both") => ThresholdKind::Both,
                Some(other) => return Err(format!("type {other:?} (limit, threshold or both)")),
                None => return Err(format!("{kind} needs type")),
            };
            Ok(Entry::Threshold {
                gid,
                sid,
                kind,
                track: track(f.track.as_deref())?,
                count: need(f.count, "count")?,
                seconds: need(f.seconds, "seconds")?,
            })
        }
        "rate_filter" => {
            let track = match f.track.as_deref() {
                Some("by_flow") => RateTrack::Flow,
                t => RateTrack::By(track(t)?),
            };
            let new_action = match f.new_action.as_deref() {
                Some("alert") => Action::Alert,
                Some("drop") => Action::Drop,
                Some("pass") => Action::Pass,
                Some("reject") => Action::Reject,
                Some(other) => {
                    return Err(format!(
                        "new_action {other:?} (alert, drop, pass or reject)"
                    ));
                }
                None => return Err("rate_filter needs new_action".into()),
            };
            Ok(Entry::RateFilter {
                gid,
                sid,
                track,
                count: need(f.count, "count")?,
                seconds: need(f.seconds, "seconds")?,
                new_action,
                timeout: need(f.timeout, "timeout")?,
            })
        }
        other => Err(format!(
            "{other:?} is not suppress, threshold, event_filter or rate_filter"
        )),
    }
}

#[derive(Default)]
struct Fields {
    gid: Option<u32>,
    sid: Option<u32>,
    kind: Option<String>,
    track: Option<String>,
    count: Option<u32>,
    seconds: Option<u32>,
    timeout: Option<u32>,
    new_action: Option<String>,
    ip: Option<String>,
}

fn number(k: &str, v: &str) -> Result<u32, String> {
    v.parse().map_err(|_| format!("{k} {v:?} is not a number"))
}

fn track(t: Option<&str>) -> Result<Track, String> {
    match t {
        Some("by_src") => Ok(Track::Src),
        Some("by_dst") => Ok(Track::Dst),
        Some("by_rule") => Ok(Track::Rule),
        Some("by_both") => Ok(Track::Both),
        Some(other) => Err(format!(
            "track {other:?} (by_src, by_dst, by_rule or by_both)"
        )),
        None => Err("needs track".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_reads_and_a_bad_line_names_itself() {
        let mut vars = Vars::default();
        vars.addr.insert("SUPPRESS".into(), "[10.0.0.0/8]".into());
        let c = ThresholdConfig::parse(
            "# comment\n\
             suppress gen_id 1, sig_id 7\n\
             suppress gen_id 1, sig_id 8, track by_either, ip $SUPPRESS\n\
             event_filter gen_id 1, sig_id 0, type limit, track by_rule, count 3, seconds 60\n\
             rate_filter gen_id 1, sig_id 9, track by_flow, count 2, seconds 5, new_action drop, timeout 10 # trailing\n",
            &vars,
        )
        .unwrap();
        assert_eq!(c.entries.len(), 4);
        assert!(
            matches!(&c.entries[1], Entry::Suppress { only: Some((SuppressTrack::Either, a)), .. } if a.matches(10 << 24 | 0xffff << 32))
        );
        assert!(c.entries[2].applies(1, 12345) && !c.entries[2].applies(3, 12345));
        assert!(matches!(
            c.entries[3],
            Entry::RateFilter {
                track: RateTrack::Flow,
                new_action: Action::Drop,
                timeout: 10,
                ..
            }
        ));
        let e = ThresholdConfig::parse(
            "\nrate_filter gen_id 1, sig_id 9, track by_src, count x",
            &vars,
        )
        .unwrap_err();
        assert!(e.starts_with("line 2:") && e.contains("count"), "{e}");
        let e =
            ThresholdConfig::parse("suppress gen_id 1, sig_id 1, track by_src", &vars).unwrap_err();
        assert!(e.contains("track and ip together"), "{e}");
        let e = ThresholdConfig::parse("drop gen_id 1, sig_id 1", &vars).unwrap_err();
        assert!(e.contains("is not suppress"), "{e}");
    }
}

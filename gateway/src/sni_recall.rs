//! `mimamori-gw sni-recall DIR`: how many of the server names nDPI reads from TLS and QUIC
//! ClientHellos the web filter reads too, over nDPI's own test captures.
//!
//! DIR holds `pcap/<capture>` (pcap or pcapng) and `result/<capture>.out`, nDPI's expected
//! output. From each `.out` the flow lines are read; a flow whose `proto:` label names
//! `TLS` (over TCP) or `QUIC` and that carries a `Hostname/SNI` gives an expected name.
//! QUIC flows whose `QUIC ver:` is a Google version (`Q0xx`, `T0xx`: gQUIC, not read by
//! the web filter's IETF QUIC parser) are counted apart and kept out of the score. Names
//! that cannot be listed in a category database (no dot, odd characters) are reported
//! apart as well.
//!
//! Each capture is replayed through the normal [`Replay`] path with `--lan-side initiator`
//! semantics (nDPI's captures come from anywhere), a policy that allows everything both
//! ways and a web filter whose only category, `recall`, lists every expected name of that
//! capture as `monitor`. A name counts as found when the capture produced a web event with
//! that name (case-insensitive) read from a TLS ClientHello (`tls-sni`) or a QUIC Initial
//! (`quic-sni`).
//!
//! Matching is per capture, not per flow: nDPI prints a flow's endpoints in its own order,
//! sees inside tunnels the gateway does not, and the same name usually appears in several
//! flows of a capture; a distinct name per capture is a stable unit that says whether the
//! parser can read that ClientHello at all. The price is that a name read from one flow
//! hides the same name missed in another flow of the same capture.

use crate::replay::{LanSide, Replay};
use crate::webfilter::WebSetup;
use mimamori_pipelines::Policy;
use mimamori_pipelines::event::{EventKind, EventRecord};
use mimamori_pipelines::web::Via;
use mimamori_signatures::category::{Builder, CategoryDb, valid_name};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

/// Why a capture whose names are all unlistable is not replayed.
const ONLY_UNLISTABLE: &str = "only names a category database cannot hold: not replayed";

/// The only category of the database built per capture.
pub const CATEGORY: &str = "recall";

/// Allow everything both ways, no flow events, the web filter monitoring `recall`.
const POLICY: &str = r#"
[sides]
lan_subnets = []
lan_macs = []

[firewall]
default_lan_to_wan = "allow"
default_wan_to_lan = "allow"
log_defaults = false
allow_dhcp = true

[events]
flow = "none"

[web]
threat_categories = []
callback_categories = []

[web.categories]
recall = "monitor"
"#;

/// What nDPI's result says the name of a flow was read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// TLS over TCP.
    Tls,
    /// IETF QUIC (v1, v2, drafts, mvfst).
    Quic,
    /// Google QUIC (`Q0xx`, `T0xx`): counted apart.
    Gquic,
}

/// One flow line of an nDPI `.out` file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FlowLine {
    /// The file's line number (1-based).
    pub line: usize,
    /// `TCP`, `UDP`, `ICMP`, …
    pub l4: String,
    /// The `proto:` label, e.g. `91.211/TLS.Instagram` or `GTP:91/TLS`.
    pub label: String,
    pub sni: Option<String>,
    pub quic_version: Option<String>,
}

impl FlowLine {
    /// TLS or QUIC per the label and the transport; `None` for anything else.
    pub fn kind(&self) -> Option<Kind> {
        // `CAPWAP:91.239/TLS.GoogleServices`: the names after the last `/`.
        let names = self.label.rsplit('/').next().unwrap_or("");
        let has = |p: &str| names.split('.').any(|n| n == p);
        if self.l4 == "TCP" && has("TLS") {
            Some(Kind::Tls)
        } else if self.l4 == "UDP" && has("QUIC") {
            let google = self.quic_version.as_deref().is_some_and(|v| {
                let b = v.as_bytes();
                b.len() >= 2 && matches!(b[0], b'Q' | b'T') && b[1].is_ascii_digit()
            });
            Some(if google { Kind::Gquic } else { Kind::Quic })
        } else {
            None
        }
    }

    /// The flow was carried in a tunnel nDPI opened (`GTP:`, `CAPWAP:`, `VXLAN:`).
    pub fn tunnel(&self) -> Option<&str> {
        let (head, _) = self.label.split_once('/')?;
        head.split_once(':').map(|(t, _)| t)
    }
}

/// The value of `[key: value]` in a line. The value ends at the first `]` followed by `[`,
/// whitespace or the end of the line, so a value holding brackets (`[ff02::c]`) is whole.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let open = format!("[{key}: ");
    let start = line.find(&open)? + open.len();
    let rest = &line[start..];
    let b = rest.as_bytes();
    let end = b
        .iter()
        .enumerate()
        .filter(|&(_, &c)| c == b']')
        .map(|(i, _)| i)
        .find(|&i| {
            b.get(i + 1)
                .is_none_or(|&n| n == b'[' || n.is_ascii_whitespace())
        })?;
    Some(rest[..end].trim())
}

/// A flow line: `<tab>N<tab>PROTO A <-> B [proto: …]…`; `None` for any other line.
pub fn parse_flow_line(line_no: usize, line: &str) -> Option<FlowLine> {
    let t = line.trim_start();
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || !t[digits..].starts_with(|c: char| c.is_ascii_whitespace()) {
        return None;
    }
    let rest = t[digits..].trim_start();
    let l4 = rest.split_ascii_whitespace().next()?;
    if !rest.contains(" <-> ") && !rest.contains(" -> ") {
        return None;
    }
    let label = field(rest, "proto")?;
    Some(FlowLine {
        line: line_no,
        l4: l4.to_string(),
        label: label.to_string(),
        sni: field(rest, "Hostname/SNI")
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        quic_version: field(rest, "QUIC ver").map(str::to_string),
    })
}

/// Every flow line of an `.out` file's text.
pub fn parse_result(text: &str) -> Vec<FlowLine> {
    text.lines()
        .enumerate()
        .filter_map(|(i, l)| parse_flow_line(i + 1, l))
        .collect()
}

/// An expected name and the flows it came from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Expected {
    pub kinds: BTreeSet<Kind>,
    /// Distinct `proto:` labels of its flows.
    pub labels: BTreeSet<String>,
    pub quic_versions: BTreeSet<String>,
    pub flows: usize,
    /// Tunnels its flows were in, if any.
    pub tunnels: BTreeSet<String>,
}

impl Expected {
    /// Scored unless every flow of the name was gQUIC.
    pub fn scored(&self) -> bool {
        self.kinds.iter().any(|k| *k != Kind::Gquic)
    }
}

/// The name as compared: lower case, without a trailing dot.
pub fn normalize(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// The distinct names of a result's TLS and QUIC flows.
pub fn expected_names(flows: &[FlowLine]) -> BTreeMap<String, Expected> {
    let mut out: BTreeMap<String, Expected> = BTreeMap::new();
    for f in flows {
        let (Some(kind), Some(sni)) = (f.kind(), f.sni.as_deref()) else {
            continue;
        };
        let e = out.entry(normalize(sni)).or_default();
        e.kinds.insert(kind);
        e.labels.insert(f.label.clone());
        e.quic_versions.extend(f.quic_version.clone());
        e.flows += 1;
        e.tunnels.extend(f.tunnel().map(str::to_string));
    }
    out
}

/// A name not found, with what nDPI said about it.
#[derive(Clone, Debug, Serialize)]
pub struct Missed {
    pub name: String,
    #[serde(flatten)]
    pub expected: Expected,
    /// How else the web filter reported the name (`dns`, `dns-answer`, `http-host`).
    pub reported_via: BTreeSet<&'static str>,
}

/// One capture's result.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CaptureResult {
    pub capture: String,
    /// Why the capture was not replayed, or why its replay stopped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub damage: Option<String>,
    /// Scored names (TLS, IETF QUIC).
    pub expected: usize,
    pub found: Vec<String>,
    pub missed: Vec<Missed>,
    pub gquic_expected: usize,
    pub gquic_found: Vec<String>,
    pub gquic_missed: Vec<String>,
    /// Names that cannot be put in a category database: not scored.
    pub unlistable: Vec<String>,
    pub packets: u64,
    /// Records whose link type the replay does not read.
    pub skipped_link_type: u64,
    /// The web filter's own counters.
    pub tls_sni: u64,
    pub quic_sni: u64,
    pub quic_unreadable: u64,
    pub no_name: u64,
}

/// The whole run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub dir: String,
    /// Captures with at least one expected name (including gQUIC and unlistable ones).
    pub captures: Vec<CaptureResult>,
    /// Results without a TLS or QUIC name: not replayed.
    pub without_names: usize,
    pub expected: usize,
    pub found: usize,
    pub gquic_expected: usize,
    pub gquic_found: usize,
    /// Expected names no category database can hold (`test`): not scored.
    pub unlistable: usize,
    /// Captures that could not be replayed (missing, unreadable): their names are missed.
    pub skipped_captures: usize,
}

/// Runs every capture of `dir` (or only `only`).
pub fn run(dir: &Path, only: Option<&str>) -> anyhow::Result<Report> {
    let results = dir.join("result");
    if !dir.is_dir() {
        anyhow::bail!("{}: not a folder", dir.display());
    }
    let entries = std::fs::read_dir(&results).map_err(|e| {
        anyhow::anyhow!(
            "{}: cannot read ({e}); expected nDPI test data with pcap/ and result/",
            results.display()
        )
    })?;
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter_map(|n| n.strip_suffix(".out").map(str::to_string))
        .filter(|n| only.is_none_or(|o| o == n))
        .collect();
    names.sort();
    if let Some(o) = only
        && names.is_empty()
    {
        anyhow::bail!("{}: no {o}.out", results.display());
    }
    let policy = Arc::new(
        Policy::from_toml("<sni-recall policy>", POLICY)
            .map_err(|e| anyhow::anyhow!("the built-in policy: {e}"))?,
    );
    let mut report = Report {
        dir: dir.display().to_string(),
        ..Report::default()
    };
    for name in names {
        let out_path = results.join(format!("{name}.out"));
        let text = match std::fs::read(&out_path) {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(e) => {
                report.captures.push(CaptureResult {
                    capture: name,
                    skipped: Some(format!("{}: cannot read: {e}", out_path.display())),
                    ..CaptureResult::default()
                });
                report.skipped_captures += 1;
                continue;
            }
        };
        let expected = expected_names(&parse_result(&text));
        if expected.is_empty() {
            report.without_names += 1;
            continue;
        }
        let r = run_capture(&dir.join("pcap").join(&name), &name, &expected, &policy);
        if r.skipped.as_deref().is_some_and(|s| s != ONLY_UNLISTABLE) {
            report.skipped_captures += 1;
        }
        report.unlistable += r.unlistable.len();
        report.expected += r.expected;
        report.found += r.found.len();
        report.gquic_expected += r.gquic_expected;
        report.gquic_found += r.gquic_found.len();
        report.captures.push(r);
    }
    Ok(report)
}

/// Replays one capture against its expected names. Never fails: a capture that cannot be
/// read is a result with `skipped` set (and every name missed).
pub fn run_capture(
    pcap: &Path,
    name: &str,
    expected: &BTreeMap<String, Expected>,
    policy: &Arc<Policy>,
) -> CaptureResult {
    let mut r = CaptureResult {
        capture: name.to_string(),
        ..CaptureResult::default()
    };
    let (listable, unlistable): (Vec<_>, Vec<_>) =
        expected.keys().partition(|n| valid_name(n.as_str()));
    r.unlistable = unlistable.into_iter().cloned().collect();
    let mut via: BTreeMap<String, BTreeSet<&'static str>> = BTreeMap::new();
    let outcome = (|| -> anyhow::Result<()> {
        if !pcap.is_file() {
            anyhow::bail!("{}: no such capture", pcap.display());
        }
        if listable.is_empty() {
            anyhow::bail!(ONLY_UNLISTABLE);
        }
        let mut b = Builder::default();
        let src = b.source("ndpi", "");
        let cat = b.category(CATEGORY);
        for n in &listable {
            b.add_domain(n, cat, src);
        }
        let db = CategoryDb::from_bytes(b.finish(0).0)
            .map_err(|e| anyhow::anyhow!("the name database: {e}"))?;
        let web = WebSetup::with_db(policy, "<sni-recall policy>", db)?;
        let mut sink = |rec: &EventRecord| {
            if let EventKind::Web(hit) = &rec.kind {
                let n = normalize(hit.name.as_str());
                // A name longer than an event holds is kept as its prefix.
                let key = if hit.name.was_cut() {
                    listable
                        .iter()
                        .find(|e| e.starts_with(&n))
                        .map(|e| (*e).clone())
                } else {
                    Some(n)
                };
                if let Some(k) = key {
                    via.entry(k).or_default().insert(hit.via.name());
                }
            }
        };
        let summary = Replay {
            input: pcap,
            output: None,
            eve: None,
            policy: policy.clone(),
            rules: None,
            web: Some(web),
            lan_side: LanSide::Initiator,
            // Public captures are often anonymised without fixing checksums.
            ipv4_checksums: false,
            threshold_file: None,
        }
        .run_with(&mut sink)?;
        r.damage = summary.damage;
        r.packets = summary.classifier.packets;
        r.skipped_link_type = summary.skipped_link_type;
        if let Some(w) = &summary.classifier.web {
            r.tls_sni = w.tls_sni;
            r.quic_sni = w.quic_sni;
            r.quic_unreadable = w.quic_unreadable;
            r.no_name = w.no_name;
        }
        Ok(())
    })();
    if let Err(e) = outcome {
        r.skipped = Some(format!("{e:#}"));
    }
    for (n, e) in expected {
        if r.unlistable.contains(n) {
            continue;
        }
        let seen = via.get(n);
        let read =
            seen.is_some_and(|v| v.contains(Via::Sni.name()) || v.contains(Via::Quic.name()));
        if e.scored() {
            r.expected += 1;
            if read {
                r.found.push(n.clone());
            } else {
                r.missed.push(Missed {
                    name: n.clone(),
                    expected: e.clone(),
                    reported_via: seen.cloned().unwrap_or_default(),
                });
            }
        } else {
            r.gquic_expected += 1;
            if read {
                r.gquic_found.push(n.clone());
            } else {
                r.gquic_missed.push(n.clone());
            }
        }
    }
    r
}

fn percent(found: usize, of: usize) -> f64 {
    if of == 0 {
        0.0
    } else {
        found as f64 * 100.0 / of as f64
    }
}

impl Report {
    /// The table printed by the CLI.
    pub fn text(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let w = self
            .captures
            .iter()
            .map(|c| c.capture.len())
            .max()
            .unwrap_or(7)
            .max(7);
        let _ = writeln!(
            s,
            "{:<w$}  {:>8} {:>5}  {:>6} {:>5}  missed",
            "capture", "expected", "found", "gquic", "found"
        );
        for c in &self.captures {
            let mut missed: Vec<String> = c
                .missed
                .iter()
                .map(|m| {
                    let mut d = Vec::new();
                    if m.expected.kinds.contains(&Kind::Quic) {
                        d.push("quic".to_string());
                    }
                    d.extend(m.expected.tunnels.iter().map(|t| format!("in {t}")));
                    d.extend(m.reported_via.iter().map(|v| format!("seen via {v}")));
                    if d.is_empty() {
                        m.name.clone()
                    } else {
                        format!("{} ({})", m.name, d.join(", "))
                    }
                })
                .collect();
            missed.extend(c.gquic_missed.iter().map(|n| format!("{n} (gquic)")));
            missed.extend(c.unlistable.iter().map(|n| format!("{n:?} (not listable)")));
            let _ = writeln!(
                s,
                "{:<w$}  {:>8} {:>5}  {:>6} {:>5}  {}",
                c.capture,
                c.expected,
                c.found.len(),
                c.gquic_expected,
                c.gquic_found.len(),
                missed.join(", ")
            );
            if let Some(why) = &c.skipped {
                let _ = writeln!(s, "{:<w$}  SKIPPED: {why}", "");
            }
            if let Some(d) = &c.damage {
                let _ = writeln!(s, "{:<w$}  DAMAGED: {d}; counted what was read", "");
            }
            if c.skipped.is_none() && c.packets == 0 && c.skipped_link_type > 0 {
                let _ = writeln!(
                    s,
                    "{:<w$}  no frame read: {} records with a link type not read",
                    "", c.skipped_link_type
                );
            }
        }
        let _ = writeln!(
            s,
            "names found {}/{} ({:.1} %); gQUIC apart: {}/{}; {} names not listable; {} captures with names, {} skipped, {} without TLS/QUIC names",
            self.found,
            self.expected,
            percent(self.found, self.expected),
            self.gquic_found,
            self.gquic_expected,
            self.unlistable,
            self.captures.len(),
            self.skipped_captures,
            self.without_names
        );
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CURL: &str = "\t1\tTCP 192.168.1.13:55523 <-> 178.62.197.130:443 [proto: 91.26/TLS.ntop][IP: 26/ntop][Encrypted][Hostname/SNI: www.ntop.org][(Advertised) ALPNs: h2;http/1.1][TLSv1.2]";

    #[test]
    fn reads_a_tls_flow_line() {
        let f = parse_flow_line(7, CURL).unwrap();
        assert_eq!(f.line, 7);
        assert_eq!(f.l4, "TCP");
        assert_eq!(f.label, "91.26/TLS.ntop");
        assert_eq!(f.sni.as_deref(), Some("www.ntop.org"));
        assert_eq!(f.kind(), Some(Kind::Tls));
        assert_eq!(f.tunnel(), None);
    }

    #[test]
    fn other_lines_are_not_flows() {
        for l in [
            "DPI Packets (TCP):\t7\t(7.00 pkts/flow)",
            "\tntop\t109\t73982\t1",
            "\t1\t 192.168.1.13             \t 1      ",
            "",
            "Automa host:          1/1 (search/found)",
            "\t12",
            "\t1\tTCP 1.2.3.4:1 <-> 5.6.7.8:2 no label here",
        ] {
            assert_eq!(parse_flow_line(1, l), None, "{l:?}");
        }
    }

    #[test]
    fn quic_versions_split_ietf_from_google() {
        let line = |ver: &str| {
            format!(
                "\t3\tUDP [2a00:1450:4002:411::200e]:443 <-> [2001:b07::1]:33144 [proto: 188.126/QUIC.Google][Encrypted][QUIC ver: {ver}][Hostname/SNI: www.google.com][TLSv1.3]"
            )
        };
        let kind = |ver: &str| parse_flow_line(1, &line(ver)).unwrap().kind();
        assert_eq!(kind("V-1"), Some(Kind::Quic));
        assert_eq!(kind("Draft-29"), Some(Kind::Quic));
        assert_eq!(kind("MVFST-22"), Some(Kind::Quic));
        assert_eq!(kind("Q046"), Some(Kind::Gquic));
        assert_eq!(kind("T051"), Some(Kind::Gquic));
    }

    #[test]
    fn dtls_http_and_tunnels() {
        let dtls = "\t1\tUDP 1.2.3.4:3478 <-> 5.6.7.8:50000 [proto: 30.404/DTLS.GoogleCall][Hostname/SNI: meet.google.com]";
        assert_eq!(parse_flow_line(1, dtls).unwrap().kind(), None);
        let http =
            "\t2\tTCP 1.2.3.4:80 <-> 5.6.7.8:50000 [proto: 7/HTTP][Hostname/SNI: example.com]";
        assert_eq!(parse_flow_line(1, http).unwrap().kind(), None);
        let gtp = "\t3\tTCP 10.0.0.1:443 <-> 10.0.0.2:1234 [proto: GTP:91.275/TLS.Crashlytics][Hostname/SNI: settings.crashlytics.com]";
        let f = parse_flow_line(1, gtp).unwrap();
        assert_eq!(f.kind(), Some(Kind::Tls));
        assert_eq!(f.tunnel(), Some("GTP"));
    }

    #[test]
    fn bracketed_and_empty_values() {
        let l = "\t4\tUDP [fe80::1]:5353 <-> [ff02::c]:1900 [proto: 12/SSDP][Hostname/SNI: [ff02::c]][PLAIN TEXT]";
        assert_eq!(
            parse_flow_line(1, l).unwrap().sni.as_deref(),
            Some("[ff02::c]")
        );
        let l = "\t5\tTCP 1.2.3.4:443 <-> 5.6.7.8:1 [proto: 91/TLS][Hostname/SNI: ]";
        assert_eq!(parse_flow_line(1, l).unwrap().sni, None);
        let last = "\t6\tTCP 1.2.3.4:443 -> 5.6.7.8:1 [proto: 91/TLS][Hostname/SNI: a.example]";
        assert_eq!(
            parse_flow_line(1, last).unwrap().sni.as_deref(),
            Some("a.example")
        );
    }

    #[test]
    fn hostile_lines_do_not_panic() {
        for l in [
            "\t1\tTCP <-> [proto: ",
            "\t1\tTCP a <-> b [proto: ]",
            "1 X -> [proto: /][Hostname/SNI: \u{fffd}\u{fffd}]",
            "\t9999999999999999999999\tUDP x <-> y [proto: QUIC][QUIC ver: Q][Hostname/SNI: x]",
            "\t1\té <-> é [proto: é/é][Hostname/SNI: é",
        ] {
            if let Some(f) = parse_flow_line(1, l) {
                let _ = (f.kind(), f.tunnel());
            }
        }
    }

    #[test]
    fn expected_names_are_distinct_and_gquic_apart() {
        let text = format!(
            "header\n{CURL}\n\t2\tTCP 192.168.1.13:55524 <-> 178.62.197.130:443 [proto: 91.26/TLS.ntop][Hostname/SNI: WWW.ntop.org.]\n\t3\tUDP 1.1.1.1:443 <-> 2.2.2.2:5000 [proto: 188/QUIC][QUIC ver: Q050][Hostname/SNI: gq.example.com]\n\t4\tUDP 1.1.1.1:443 <-> 2.2.2.2:5001 [proto: 188/QUIC][QUIC ver: V-1][Hostname/SNI: q.example.com]\n\t5\tTCP 1.1.1.1:443 <-> 2.2.2.2:5002 [proto: 91/TLS][Encrypted]\n"
        );
        let e = expected_names(&parse_result(&text));
        assert_eq!(
            e.keys().map(String::as_str).collect::<Vec<_>>(),
            ["gq.example.com", "q.example.com", "www.ntop.org"]
        );
        assert_eq!(e["www.ntop.org"].flows, 2);
        assert!(e["www.ntop.org"].scored());
        assert!(!e["gq.example.com"].scored());
        assert!(e["q.example.com"].kinds.contains(&Kind::Quic));
    }

    #[test]
    fn a_missing_folder_is_an_error() {
        let e = run(Path::new("/nonexistent/ndpi"), None).unwrap_err();
        assert!(e.to_string().contains("not a folder"), "{e}");
    }
}

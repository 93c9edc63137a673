//! The conformance runner: Suricata's regression tests (suricata-verify style: a folder
//! per test with `test.yaml`, `test.rules` and a pcap) through `replay --rules`, checking
//! the `checks:` that concern alerts — how many alert events match each filter's fields.
//! Other checks (flow, stats, app-layer logs, files) are not ours to pass yet and are
//! counted as not checked. Each test passes, fails (with the first failed filter), or is
//! skipped with the reason.

use crate::replay::{LanSide, Replay};
use mimamori_pipelines::Policy;
use mimamori_signatures::engine::Engine;
use mimamori_signatures::rule::{Vars, load_files};
use serde::Serialize;
use serde_yaml::Value as Yaml;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Pass,
    Fail,
    Skipped,
}

#[derive(Clone, Debug, Serialize)]
pub struct TestResult {
    pub name: String,
    pub outcome: Outcome,
    pub detail: String,
    /// Alert filters checked / all filters.
    pub checked: usize,
    pub filters: usize,
}

/// Suricata's default `HOME_NET`, which the tests are written against.
const POLICY: &str = r#"
[sides]
lan_subnets = ["192.168.0.0/16", "10.0.0.0/8", "172.16.0.0/12"]
[firewall]
default_lan_to_wan = "allow"
default_wan_to_lan = "allow"
log_defaults = false
allow_dhcp = false
[flows]
tcp_loose_pickup = true
capacity = 65536
[events]
flow = "none"
"#;

/// Runs every test folder under `root` whose name contains `filter`.
pub fn run_all(root: &Path, filter: Option<&str>, work: &Path) -> anyhow::Result<Vec<TestResult>> {
    let policy = Arc::new(Policy::from_toml("<conformance policy>", POLICY)?);
    let mut dirs: Vec<PathBuf> = Vec::new();
    collect(root, &mut dirs)?;
    dirs.sort();
    std::fs::create_dir_all(work)?;
    let mut out = Vec::new();
    for d in dirs {
        let name = d.strip_prefix(root).unwrap_or(&d).display().to_string();
        if filter.is_some_and(|f| !name.contains(f)) {
            continue;
        }
        let r = run_one(&d, &name, &policy, work).unwrap_or_else(|e| TestResult {
            name: name.clone(),
            outcome: Outcome::Skipped,
            detail: format!("could not run: {e:#}"),
            checked: 0,
            filters: 0,
        });
        out.push(r);
    }
    Ok(out)
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    if dir.join("test.yaml").is_file() {
        out.push(dir.to_path_buf());
        return Ok(());
    }
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            collect(&p, out)?;
        }
    }
    Ok(())
}

fn skipped(name: &str, why: impl Into<String>, filters: usize) -> TestResult {
    TestResult {
        name: name.to_string(),
        outcome: Outcome::Skipped,
        detail: why.into(),
        checked: 0,
        filters,
    }
}

fn run_one(
    dir: &Path,
    name: &str,
    policy: &Arc<Policy>,
    work: &Path,
) -> anyhow::Result<TestResult> {
    let text = std::fs::read_to_string(dir.join("test.yaml"))?;
    let y: Yaml = serde_yaml::from_str(&text)?;
    let checks = y
        .get("checks")
        .and_then(|c| c.as_sequence())
        .cloned()
        .unwrap_or_default();
    let filters: Vec<&Yaml> = checks.iter().filter_map(|c| c.get("filter")).collect();
    let nf = checks.len();
    if let Some(f) = y
        .get("requires")
        .and_then(|r| r.get("features"))
        .and_then(|f| f.as_sequence())
    {
        // Build features we have the equivalent of.
        const HAVE: &[&str] = &["HAVE_JA3"];
        let f: Vec<_> = f
            .iter()
            .filter_map(|x| x.as_str())
            .filter(|x| !HAVE.contains(x))
            .collect();
        if !f.is_empty() {
            return Ok(skipped(
                name,
                format!("needs Suricata build features {}", f.join(", ")),
                nf,
            ));
        }
    }
    let alert_filters: Vec<&Yaml> = filters
        .iter()
        .copied()
        .filter(|f| {
            f.get("match")
                .and_then(|m| m.get("event_type"))
                .and_then(|t| t.as_str())
                == Some("alert")
        })
        .collect();
    if alert_filters.is_empty() {
        return Ok(skipped(
            name,
            "no alert checks (flow, stats, app-layer or file output only)",
            nf,
        ));
    }
    // `test.rules`, else the folder's only rules file.
    let mut rules = dir.join("test.rules");
    if !rules.is_file() {
        let others: Vec<PathBuf> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "rules"))
            .collect();
        match <[PathBuf; 1]>::try_from(others) {
            Ok([only]) => rules = only,
            Err(_) => {
                return Ok(skipped(
                    name,
                    "rules are in suricata.yaml or absent (not read yet)",
                    nf,
                ));
            }
        }
    }
    // Tests run with `--simulate-ips` expect drop and reject rules to act.
    let ips = y.get("args").and_then(Yaml::as_sequence).is_some_and(|a| {
        a.iter()
            .any(|v| v.as_str().is_some_and(|s| s.contains("--simulate-ips")))
    });
    let policy = if ips {
        let mut p = (**policy).clone();
        p.ips.mode = mimamori_pipelines::policy::IpsMode::Ips;
        Arc::new(p)
    } else {
        policy.clone()
    };
    let pcap = match y.get("pcap") {
        Some(Yaml::String(p)) => dir.join(p),
        Some(Yaml::Bool(false)) => return Ok(skipped(name, "runs without a pcap", nf)),
        _ => match std::fs::read_dir(dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.extension().is_some_and(|x| x == "pcap" || x == "pcapng"))
        {
            Some(p) => p,
            None => return Ok(skipped(name, "pcap missing from this snapshot", nf)),
        },
    };
    if !pcap.is_file() {
        return Ok(skipped(name, "pcap missing from this snapshot", nf));
    }
    // Which rules we could not take, by sid.
    let mut vars = Vars::default();
    vars.addr.insert(
        "HOME_NET".into(),
        "[192.168.0.0/16,10.0.0.0/8,172.16.0.0/12]".into(),
    );
    let mut refused: BTreeMap<u32, String> = BTreeMap::new();
    match load_files(&[rules.as_path()], &vars) {
        Ok((set, load)) => {
            for s in &load.skipped {
                refused.insert(s.sid.unwrap_or(0), s.reason.clone());
            }
            let (_, build) = Engine::build(&set);
            for (sid, r) in build.refused {
                refused.insert(sid, r);
            }
        }
        Err(e) => return Ok(skipped(name, format!("rules: {e}"), nf)),
    }
    // `--set threshold-file=${TEST_DIR}/x`: the test's threshold.config.
    let threshold_file = y
        .get("args")
        .and_then(Yaml::as_sequence)
        .into_iter()
        .flatten()
        .filter_map(Yaml::as_str)
        .find_map(|a| a.trim().strip_prefix("--set threshold-file="))
        .map(|v| dir.join(v.trim().trim_start_matches("${TEST_DIR}/")));
    let eve = work.join("eve.json");
    let summary = Replay {
        input: &pcap,
        output: None,
        eve: Some(&eve),
        policy,
        rules: Some(&rules),
        threshold_file: threshold_file.as_deref(),
        web: None,
        lan_side: LanSide::Subnets,
        ipv4_checksums: true,
    }
    .run()?;
    if summary.records > 0 && summary.skipped_link_type == summary.records {
        return Ok(skipped(
            name,
            "capture link type not read yet (Ethernet, raw IP and Linux cooked are)",
            nf,
        ));
    }
    let alerts: Vec<serde_json::Value> = std::fs::read_to_string(&eve)?
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event_type"] == "alert")
        .collect();
    for f in &alert_filters {
        let m = f
            .get("match")
            .and_then(|m| m.as_mapping())
            .cloned()
            .unwrap_or_default();
        let n = alerts.iter().filter(|a| matches(a, &m)).count();
        let sid = m
            .get("alert.signature_id")
            .and_then(|v| v.as_u64())
            .map(|v| v as u32);
        let ok = match f.get("count").and_then(|c| c.as_u64()) {
            Some(c) => n as u64 == c,
            None => {
                let lt = f.get("lt").and_then(|c| c.as_u64());
                let gt = f.get("gt").and_then(|c| c.as_u64());
                lt.is_none_or(|l| (n as u64) < l)
                    && gt.is_none_or(|g| n as u64 > g)
                    && (lt.is_some() || gt.is_some() || n > 0)
            }
        };
        if !ok {
            if let Some(r) = sid.and_then(|s| refused.get(&s)) {
                return Ok(skipped(name, format!("sid {}: {r}", sid.unwrap_or(0)), nf));
            }
            let want = f
                .get("count")
                .and_then(|c| c.as_u64())
                .map_or("some".to_string(), |c| c.to_string());
            let what = describe(&m);
            let also = if refused.is_empty() {
                String::new()
            } else {
                format!("; {} rule(s) of the test refused", refused.len())
            };
            return Ok(TestResult {
                name: name.to_string(),
                outcome: Outcome::Fail,
                detail: format!("{what}: want {want}, got {n}{also}"),
                checked: alert_filters.len(),
                filters: nf,
            });
        }
    }
    Ok(TestResult {
        name: name.to_string(),
        outcome: Outcome::Pass,
        detail: String::new(),
        checked: alert_filters.len(),
        filters: nf,
    })
}

fn describe(m: &serde_yaml::Mapping) -> String {
    m.iter()
        .filter(|(k, _)| k.as_str() != Some("event_type"))
        .map(|(k, v)| {
            let v = scalar(v);
            let v = if v.len() > 40 {
                format!("{}…", &v[..v.floor_char_boundary(40)])
            } else {
                v
            };
            format!("{}={v}", k.as_str().unwrap_or("?"))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Groups skip reasons: "sid 3: unsupported: keyword xor" → "unsupported keyword".
fn reason_group(detail: &str) -> String {
    let Some((_, why)) = detail
        .split_once(": ")
        .filter(|_| detail.starts_with("sid "))
    else {
        return detail.to_string();
    };
    if let Some(rest) = why.strip_prefix("unsupported by the engine: ") {
        let word: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ' ')
            .collect();
        return format!("rule refused by the engine: {}", word.trim());
    }
    if why.starts_with("unsupported: keyword") {
        return "rule uses a keyword not supported yet".into();
    }
    if why.starts_with("unsupported: protocol") {
        return "rule is for an app-layer protocol not parsed yet".into();
    }
    why.split(':').next().unwrap_or(why).to_string()
}

fn scalar(v: &Yaml) -> String {
    match v {
        Yaml::String(s) => s.clone(),
        Yaml::Number(n) => n.to_string(),
        Yaml::Bool(b) => b.to_string(),
        Yaml::Null => "null".into(),
        other => serde_yaml::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_string(),
    }
}

/// Every `a.b.c: value` of the filter holds in the event.
fn matches(ev: &serde_json::Value, m: &serde_yaml::Mapping) -> bool {
    m.iter().all(|(k, want)| {
        let Some(k) = k.as_str() else { return false };
        let mut cur = ev;
        for part in k.split('.') {
            match cur.get(part) {
                Some(v) => cur = v,
                None => return matches!(want, Yaml::Null),
            }
        }
        same(cur, want)
    })
}

fn same(got: &serde_json::Value, want: &Yaml) -> bool {
    use serde_json::Value as J;
    match (got, want) {
        (J::Number(a), Yaml::Number(b)) => a.as_f64() == b.as_f64(),
        (J::Bool(a), Yaml::Bool(b)) => a == b,
        (J::String(a), Yaml::String(b)) => {
            a == b
                || matches!((a.parse::<std::net::IpAddr>(), b.parse::<std::net::IpAddr>()), (Ok(x), Ok(y)) if x == y)
        }
        (J::Number(a), Yaml::String(b)) => a.to_string() == *b,
        (J::String(a), Yaml::Number(b)) => *a == b.to_string(),
        (J::Null, Yaml::Null) => true,
        _ => false,
    }
}

/// The report written to docs/CONFORMANCE.md.
pub fn markdown(results: &[TestResult], source: &str) -> String {
    use std::fmt::Write;
    let count = |o: Outcome| results.iter().filter(|r| r.outcome == o).count();
    let (p, f, s) = (
        count(Outcome::Pass),
        count(Outcome::Fail),
        count(Outcome::Skipped),
    );
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    for r in results.iter().filter(|r| r.outcome == Outcome::Skipped) {
        *reasons.entry(reason_group(&r.detail)).or_default() += 1;
    }
    let mut reasons: Vec<_> = reasons.into_iter().collect();
    reasons.sort_by_key(|r| std::cmp::Reverse(r.1));
    let mut o = String::new();
    let _ = writeln!(o, "# Conformance: Suricata regression tests\n");
    let _ = writeln!(
        o,
        "Generated by `mimamori-gw conformance {source} --out docs/CONFORMANCE.md` (the runner is\n\
         `gateway/src/conformance.rs`). Each test's pcap goes through `replay --rules` (TCP\n\
         reassembled, IP fragments joined; IDS mode, IPS mode for tests run with `--simulate-ips`)\n\
         under an allow-all policy with Suricata's default `HOME_NET`; the `checks:` filters on\n\
         alert events are evaluated (count and every `match` field). Filters on other event types\n\
         are not checked yet. A test's `--set threshold-file=` is read. Known differences that\n\
         fail tests: Suricata's exception policies and other suricata.yaml settings (its address\n\
         variables included) are not read; a drop of a rule that inspects content ends the whole\n\
         flow here (a rule on packet properties alone drops only the packet, as in Suricata).\n"
    );
    let _ = writeln!(o, "| | tests |\n|---|---|");
    let _ = writeln!(
        o,
        "| pass | **{p}** |\n| fail | {f} |\n| skipped | {s} |\n| total | {} |\n",
        results.len()
    );
    let ran = p + f;
    if ran > 0 {
        let _ = writeln!(
            o,
            "Of the tests with alert checks that ran, {:.1} % pass.\n",
            100.0 * p as f64 / ran as f64
        );
    }
    let _ = writeln!(o, "## Skipped, by reason\n\n| reason | tests |\n|---|---|");
    for (r, n) in &reasons {
        let _ = writeln!(o, "| {} | {n} |", r.replace('|', "\\|"));
    }
    let _ = writeln!(
        o,
        "\n## Every test\n\n| test | result | detail |\n|---|---|---|"
    );
    for r in results {
        let res = match r.outcome {
            Outcome::Pass => "pass",
            Outcome::Fail => "**fail**",
            Outcome::Skipped => "skipped",
        };
        let _ = writeln!(
            o,
            "| {} | {res} | {} |",
            r.name,
            r.detail.replace('|', "\\|").replace('\n', " ")
        );
    }
    o
}

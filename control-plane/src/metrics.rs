//! `/metrics` in the Prometheus text format: the control plane's own counters and the
//! gateway's port, stage and classifier counters (read from its control socket).

use crate::api::App;
use serde_json::Value;
use std::fmt::Write;
use std::sync::atomic::Ordering::Relaxed;

/// Per pattern kind: staleness, age and version (from `Patterns::status`).
fn pattern_metrics(s: &mut String, p: &Value) {
    let kinds = p["kinds"].as_array().cloned().unwrap_or_default();
    let series = |field: &str, f: &dyn Fn(&Value) -> f64| -> String {
        kinds
            .iter()
            .map(|k| {
                format!(
                    "{field}{{kind=\"{}\"}} {}\n",
                    label(k["kind"].as_str().unwrap_or("-")),
                    f(k)
                )
            })
            .collect()
    };
    let stale = |k: &Value| f64::from(u8::from(k["patterns_stale"].as_bool().unwrap_or(true)));
    let _ = write!(
        s,
        "# HELP mimamori_licence_expired 1 when a purchased box's licence has ended (no more pattern updates)\n# TYPE mimamori_licence_expired gauge\nmimamori_licence_expired {}\n",
        u8::from(p["licence_expired"].as_bool().unwrap_or(false))
    );
    let _ = write!(
        s,
        "# HELP mimamori_patterns_stale 1 when a pattern set is out of date (too old, or not checked)\n# TYPE mimamori_patterns_stale gauge\n{}",
        series("mimamori_patterns_stale", &stale)
    );
    let _ = write!(
        s,
        "# HELP mimamori_patterns_age_seconds Age of the active pattern set (since its publication)\n# TYPE mimamori_patterns_age_seconds gauge\n{}",
        series("mimamori_patterns_age_seconds", &|k| k["age_secs"]
            .as_f64()
            .unwrap_or(0.0))
    );
    let _ = write!(
        s,
        "# HELP mimamori_patterns_version Version of the active pattern set\n# TYPE mimamori_patterns_version gauge\n{}",
        series("mimamori_patterns_version", &|k| k["version"]
            .as_f64()
            .unwrap_or(0.0))
    );
}

fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', " ")
}

pub fn render(
    app: &App,
    stored_version: u64,
    gw: Option<&Value>,
    patterns: Option<&Value>,
) -> String {
    let mut s = String::new();
    if let Some(p) = patterns {
        pattern_metrics(&mut s, p);
    }
    let mut metric = |name: &str, kind: &str, help: &str, samples: &[(String, f64)]| {
        let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, v) in samples {
            let _ = writeln!(s, "{name}{labels} {v}");
        }
    };
    let one = |v: u64| vec![(String::new(), v as f64)];
    let c = &app.counters;
    let i = &app.intake;
    metric(
        "mimamori_cp_api_requests_total",
        "counter",
        "API requests with a token presented",
        &one(c.requests.load(Relaxed)),
    );
    metric(
        "mimamori_cp_api_denied_total",
        "counter",
        "API requests refused for a missing or unknown token",
        &one(c.denied.load(Relaxed)),
    );
    metric(
        "mimamori_cp_api_invalid_total",
        "counter",
        "Policy changes refused by validation",
        &one(c.invalid.load(Relaxed)),
    );
    metric(
        "mimamori_cp_policy_pushes_total",
        "counter",
        "Policy snapshots pushed to the gateway, by result",
        &[
            (
                "{result=\"applied\"}".into(),
                c.applied.load(Relaxed) as f64,
            ),
            (
                "{result=\"refused\"}".into(),
                c.refused.load(Relaxed) as f64,
            ),
            (
                "{result=\"unreachable\"}".into(),
                c.unreachable.load(Relaxed) as f64,
            ),
        ],
    );
    metric(
        "mimamori_cp_policy_last_apply_seconds",
        "gauge",
        "Time the gateway took to swap in the last snapshot",
        &[(String::new(), c.last_apply_us.load(Relaxed) as f64 / 1e6)],
    );
    metric(
        "mimamori_cp_policy_version",
        "gauge",
        "Newest stored policy version",
        &one(stored_version),
    );
    metric(
        "mimamori_cp_events_total",
        "counter",
        "Gateway events by what became of them",
        &[
            (
                "{state=\"received\"}".into(),
                i.received.load(Relaxed) as f64,
            ),
            ("{state=\"stored\"}".into(), i.stored.load(Relaxed) as f64),
            (
                "{state=\"malformed\"}".into(),
                i.malformed.load(Relaxed) as f64,
            ),
            ("{state=\"dropped\"}".into(), i.dropped.load(Relaxed) as f64),
            ("{state=\"pruned\"}".into(), i.pruned.load(Relaxed) as f64),
        ],
    );
    metric(
        "mimamori_gateway_up",
        "gauge",
        "1 when the gateway's control socket answers",
        &one(u64::from(gw.is_some())),
    );
    let Some(g) = gw else { return s };
    let num = |v: &Value| v.as_f64().unwrap_or(0.0);
    metric(
        "mimamori_gateway_policy_version",
        "gauge",
        "Policy version every classify stage runs",
        &[(String::new(), num(&g["policy_version"]))],
    );
    metric(
        "mimamori_gateway_uptime_seconds",
        "gauge",
        "Gateway uptime",
        &[(String::new(), num(&g["uptime_secs"]))],
    );
    metric(
        "mimamori_gateway_mbufs_in_use",
        "gauge",
        "Packet buffers out of the pool",
        &[(String::new(), num(&g["mempool_in_use"]))],
    );
    metric(
        "mimamori_gateway_events_unsent_total",
        "counter",
        "Events the control plane did not get",
        &[(String::new(), num(&g["events_unsent"]))],
    );
    let ports = g["ports"].as_array().cloned().unwrap_or_default();
    for field in [
        "rx_packets",
        "tx_packets",
        "rx_bytes",
        "tx_bytes",
        "rx_missed",
        "rx_errors",
        "tx_errors",
        "rx_nombuf",
    ] {
        let samples: Vec<_> = ports
            .iter()
            .map(|p| {
                (
                    format!("{{port=\"{}\"}}", label(p["side"].as_str().unwrap_or("?"))),
                    num(&p[field]),
                )
            })
            .collect();
        metric(
            &format!("mimamori_port_{field}_total"),
            "counter",
            &format!("Port counter {field}"),
            &samples,
        );
    }
    let stages = g["stages"].as_array().cloned().unwrap_or_default();
    for field in [
        "rx",
        "tx",
        "dropped",
        "ring_full",
        "tx_full",
        "fail_open",
        "fail_closed",
        "events_dropped",
    ] {
        let samples: Vec<_> = stages
            .iter()
            .map(|st| {
                (
                    format!(
                        "{{stage=\"{}\"}}",
                        label(st["name"].as_str().unwrap_or("?"))
                    ),
                    num(&st[field]),
                )
            })
            .collect();
        metric(
            &format!("mimamori_stage_{field}_total"),
            "counter",
            &format!("Stage counter {field}"),
            &samples,
        );
    }
    for (kind, key) in [("forwarded", "forwarded"), ("dropped", "dropped")] {
        let mut samples = Vec::new();
        for st in &stages {
            if let Some(m) = st["classifier"][key].as_object() {
                for (reason, v) in m {
                    samples.push((
                        format!(
                            "{{stage=\"{}\",reason=\"{}\"}}",
                            label(st["name"].as_str().unwrap_or("?")),
                            label(reason)
                        ),
                        num(v),
                    ));
                }
            }
        }
        metric(
            &format!("mimamori_classifier_{kind}_total"),
            "counter",
            &format!("Packets {kind} by the classify stage, by reason"),
            &samples,
        );
    }
    // Signature inspection, on stages that run it (`--rules`).
    let ips = |path: &[&str], st: &serde_json::Value| {
        path.iter().fold(st["ips"].clone(), |v, k| v[*k].clone())
    };
    for (name, path, help) in [
        (
            "inspected",
            &["inspected"][..],
            "Packets inspected by signatures",
        ),
        ("alerts", &["alerts"][..], "Signature alerts"),
        (
            "dropped",
            &["dropped"][..],
            "Packets dropped by drop rules (IPS mode)",
        ),
        (
            "rejected",
            &["rejected"][..],
            "Packets rejected by reject rules (IPS mode)",
        ),
        (
            "stream_segments",
            &["stream", "segments"][..],
            "TCP segments reassembled",
        ),
        (
            "stream_overlap_diff",
            &["stream", "overlap_diff"][..],
            "Overlapping TCP segments with different bytes (refused)",
        ),
        (
            "stream_memcap_refused",
            &["stream", "memcap_refused"][..],
            "TCP payloads not held: reassembly memcap",
        ),
        (
            "defrag_reassembled",
            &["defrag", "reassembled"][..],
            "IP datagrams joined from fragments",
        ),
    ] {
        let samples: Vec<_> = stages
            .iter()
            .filter(|st| st["ips"].is_object())
            .map(|st| {
                (
                    format!(
                        "{{stage=\"{}\"}}",
                        label(st["name"].as_str().unwrap_or("?"))
                    ),
                    num(&ips(path, st)),
                )
            })
            .collect();
        if !samples.is_empty() {
            metric(
                &format!("mimamori_ips_{name}_total"),
                "counter",
                help,
                &samples,
            );
        }
    }
    s
}

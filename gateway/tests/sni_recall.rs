//! `mimamori-gw sni-recall` on nDPI's test data (`${MIMAMORI_NDPI_DIR:-../shared/data/ndpi}`,
//! relative to the workspace), and `replay --lan-side initiator` on a built capture.
//! The data tests skip with a message when the data is absent.

use mimamori_gateway::capture::PcapWriter;
use mimamori_pipelines::synth::{Endpoint, tcp_frame};
use mimamori_pipelines::wire::tcp::flags::{ACK, PSH, SYN};
use std::path::PathBuf;
use std::process::Command;

fn gw(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mimamori-gw"))
        .args(args)
        .output()
        .expect("run mimamori-gw")
}

fn ndpi_dir() -> Option<PathBuf> {
    let d = std::env::var_os("MIMAMORI_NDPI_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../shared/data/ndpi"
            ))
        });
    if d.join("result").is_dir() && d.join("pcap").is_dir() {
        Some(d)
    } else {
        eprintln!(
            "skipped: nDPI test data not found at {} (set MIMAMORI_NDPI_DIR)",
            d.display()
        );
        None
    }
}

/// `sni-recall --only capture --json`, parsed; `None` when the capture is not in the data.
fn recall(dir: &std::path::Path, capture: &str) -> Option<serde_json::Value> {
    if !dir.join("pcap").join(capture).is_file() {
        eprintln!("skipped: {capture} not in {}", dir.display());
        return None;
    }
    let out = gw(&[
        "sni-recall",
        dir.to_str().unwrap(),
        "--only",
        capture,
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["captures"].as_array().unwrap().len(), 1, "{v}");
    Some(v)
}

#[test]
fn curl_over_tls_is_found() {
    let Some(d) = ndpi_dir() else { return };
    let Some(v) = recall(&d, "443-curl.pcap") else {
        return;
    };
    let c = &v["captures"][0];
    assert_eq!(c["expected"], 1, "{v}");
    assert_eq!(c["found"], serde_json::json!(["www.ntop.org"]), "{v}");
    assert_eq!(
        (v["found"].as_u64(), v["expected"].as_u64()),
        (Some(1), Some(1))
    );
}

#[test]
fn ietf_quic_is_found_and_gquic_is_counted_apart() {
    let Some(d) = ndpi_dir() else { return };
    if let Some(v) = recall(&d, "quic_frags_different_dcid.pcapng") {
        let c = &v["captures"][0];
        assert!(c["expected"].as_u64().unwrap() >= 1, "{v}");
        assert!(!c["found"].as_array().unwrap().is_empty(), "{v}");
        assert!(c["quic_sni"].as_u64().unwrap() >= 1, "{v}");
    }
    if let Some(v) = recall(&d, "quic_q46.pcap") {
        let c = &v["captures"][0];
        assert_eq!(c["expected"], 0, "gQUIC is not scored: {v}");
        assert_eq!(c["gquic_expected"], 1, "{v}");
        assert_eq!(v["expected"], 0, "{v}");
    }
}

#[test]
fn the_text_table_ends_with_the_score_and_errors_are_clear() {
    let Some(d) = ndpi_dir() else { return };
    let out = gw(&["sni-recall", d.to_str().unwrap(), "--only", "443-curl.pcap"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        text.lines()
            .last()
            .unwrap()
            .starts_with("names found 1/1 (100.0 %)"),
        "{text}"
    );
    let out = gw(&["sni-recall", d.to_str().unwrap(), "--only", "no-such.pcap"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no no-such.pcap.out"));
}

#[test]
fn a_missing_folder_is_a_clear_error() {
    let out = gw(&["sni-recall", "/nonexistent/ndpi"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/ndpi: not a folder"), "{err}");
}

/// A missing capture or a damaged one is a line in the table, never a failure of the run.
#[test]
fn a_missing_or_damaged_capture_is_reported_not_fatal() {
    let d = std::env::temp_dir().join(format!("mimamori-recall-{}", std::process::id()));
    std::fs::create_dir_all(d.join("pcap")).unwrap();
    std::fs::create_dir_all(d.join("result")).unwrap();
    let line = "\t1\tTCP 198.19.0.1:443 <-> 198.19.0.2:40000 [proto: 91/TLS][Hostname/SNI: a.example.com]\n";
    std::fs::write(d.join("result/gone.pcap.out"), line).unwrap();
    std::fs::write(d.join("result/bad.pcap.out"), line).unwrap();
    std::fs::write(
        d.join("pcap/bad.pcap"),
        b"\xd4\xc3\xb2\xa1 not really a capture",
    )
    .unwrap();
    let out = gw(&["sni-recall", d.to_str().unwrap(), "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["expected"], 2, "{v}");
    assert_eq!(v["found"], 0, "{v}");
    let caps = v["captures"].as_array().unwrap();
    let gone = caps.iter().find(|c| c["capture"] == "gone.pcap").unwrap();
    assert!(
        gone["skipped"]
            .as_str()
            .unwrap()
            .contains("no such capture"),
        "{v}"
    );
    let bad = caps.iter().find(|c| c["capture"] == "bad.pcap").unwrap();
    assert!(
        bad["skipped"].is_string() || bad["damage"].is_string(),
        "{v}"
    );
    let _ = std::fs::remove_dir_all(&d);
}

/// Two hosts outside the default policy's LAN subnets: by subnets the opener is on the
/// WAN and the default policy drops its flow; with `--lan-side initiator` it is the LAN
/// host and everything is forwarded.
#[test]
fn lan_side_initiator_follows_who_opened_the_flow() {
    let dir = std::env::temp_dir().join(format!("mimamori-lanside-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pcap = dir.join("opened-from-outside.pcap");
    let (a, b) = (
        Endpoint::server(7, false, 40001),
        Endpoint::client(20, false, 22),
    );
    let mut w = PcapWriter::create(&pcap).unwrap();
    for (i, f) in [
        tcp_frame(&a, &b, SYN, 1, 0, &[]),
        tcp_frame(&b, &a, SYN | ACK, 100, 2, &[]),
        tcp_frame(&a, &b, ACK, 2, 101, &[]),
        tcp_frame(&a, &b, ACK | PSH, 2, 101, b"SSH-2.0-test\r\n"),
    ]
    .iter()
    .enumerate()
    {
        w.write(1_000_000 * (i as u64 + 1), f).unwrap();
    }
    w.finish().unwrap();
    let summary = |mode: &str| -> serde_json::Value {
        let js = dir.join(format!("{mode}.json"));
        let out = gw(&[
            "replay",
            pcap.to_str().unwrap(),
            "--lan-side",
            mode,
            "--summary-json",
            js.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&std::fs::read(&js).unwrap()).unwrap()
    };
    let by_subnets = summary("subnets");
    assert_eq!(by_subnets["lan_side"], "subnets");
    assert_eq!(
        by_subnets["classifier"]["dropped"]["firewall_deny"], 4,
        "{by_subnets}"
    );
    let by_initiator = summary("initiator");
    assert_eq!(by_initiator["lan_side"], "initiator");
    assert_eq!(
        by_initiator["classifier"]["forwarded"]["flow"], 4,
        "{by_initiator}"
    );
    assert_eq!(by_initiator["initiator_evicted"], 0);
    let _ = std::fs::remove_dir_all(&dir);
}

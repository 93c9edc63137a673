//! `mimamori-gw run` refuses bad ports, core maps and device strings with one clear line
//! and a non-zero exit, before DPDK can print a panic trace.

#![cfg(feature = "dpdk")]

use std::process::Command;

fn run(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mimamori-gw"))
        .arg("run")
        .args(args)
        .output()
        .expect("run mimamori-gw");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
    })
}

#[test]
fn bad_device_strings() {
    let (code, err) = run(&["--lan", "net_bogus0", "--wan", "net_null1", "--no-huge"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("--lan \"net_bogus0\": unknown virtual device driver"),
        "{err}"
    );
    let (_, err) = run(&["--lan", "net_null0", "--wan", "eth0", "--no-huge"]);
    assert!(
        err.contains("--wan \"eth0\": expected a PCI address"),
        "{err}"
    );
    let (_, err) = run(&["--lan", "net_null0", "--wan", "net_null0", "--no-huge"]);
    assert!(err.contains("must be different devices"), "{err}");
}

#[test]
fn bad_core_maps() {
    let (code, err) = run(&[
        "--lan",
        "net_null0",
        "--wan",
        "net_null1",
        "--no-huge",
        "--lcores",
        "0-4096",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("does not exist"), "{err}");
    let (_, err) = run(&[
        "--lan",
        "net_null0",
        "--wan",
        "net_null1",
        "--no-huge",
        "--lcores",
        "0",
        "--tier",
        "professional",
    ]);
    assert!(err.contains("layout needs"), "{err}");
    let (_, err) = run(&[
        "--lan",
        "net_null0",
        "--wan",
        "net_null1",
        "--no-huge",
        "--lcores",
        "x-y",
    ]);
    assert!(err.contains("not a core number"), "{err}");
}

#[test]
fn a_port_that_cannot_be_opened() {
    if !is_root() {
        eprintln!("skipped: opening DPDK ports needs root");
        return;
    }
    let (code, err) = run(&[
        "--lan",
        "net_af_packet0,iface=mm-no-such-if",
        "--wan",
        "net_null1",
        "--no-huge",
        "--file-prefix",
        "mm-test-badport",
        "--stats-socket",
        "/tmp/mm-test-badport.sock",
    ]);
    assert_eq!(code, 1, "{err}");
    let last = err.lines().last().unwrap_or("");
    assert!(
        last.starts_with("mimamori-gw: port net_af_packet0: no such port"),
        "{err}"
    );
    assert!(!err.contains("PANIC") && !err.contains("panicked"), "{err}");
}

#[test]
fn both_layouts_return_every_mbuf() {
    if !is_root() {
        eprintln!("skipped: DPDK needs root");
        return;
    }
    for (tier, prefix) in [("light", "mm-test-rtc"), ("standard", "mm-test-pipe")] {
        let out = Command::new(env!("CARGO_BIN_EXE_mimamori-gw"))
            .args([
                "run",
                "--lan",
                "net_null0",
                "--wan",
                "net_null1",
                "--no-huge",
                "--duration",
                "1",
                "--json",
                "--tier",
                tier,
                "--file-prefix",
                prefix,
            ])
            .args(["--stats-socket", &format!("/tmp/{prefix}.sock")])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{tier}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(s["mempool_in_use"], 0, "{tier}");
        let rx: u64 = s["ports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["rx_packets"].as_u64().unwrap())
            .sum();
        assert!(rx > 1000, "{tier}: traffic flowed ({rx})");
    }
}

#[test]
fn overload_policies_are_applied_and_counted() {
    if !is_root() {
        eprintln!("skipped: DPDK needs root");
        return;
    }
    // net_null ports deliver far more than one classify worker takes, so its ring fills.
    for (policy, counter) in [("fail-open", "fail_open"), ("fail-closed", "fail_closed")] {
        let prefix = format!("mm-test-{policy}");
        let out = Command::new(env!("CARGO_BIN_EXE_mimamori-gw"))
            .args([
                "run",
                "--lan",
                "net_null0",
                "--wan",
                "net_null1",
                "--no-huge",
                "--duration",
                "1",
                "--json",
            ])
            .args([
                "--layout",
                "pipeline",
                "--workers",
                "1",
                "--overload",
                policy,
                "--file-prefix",
                &prefix,
            ])
            .args(["--stats-socket", &format!("/tmp/{prefix}.sock")])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{policy}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let rx = &s["stages"][0];
        assert_eq!(rx["name"], "rx");
        assert!(
            rx["ring_full"].as_u64().unwrap() > 0,
            "{policy}: the ring filled"
        );
        assert!(
            rx[counter].as_u64().unwrap() > 0,
            "{policy}: {counter} counted"
        );
        let other = if counter == "fail_open" {
            "fail_closed"
        } else {
            "fail_open"
        };
        assert_eq!(rx[other], 0, "{policy}: only its own policy applied");
        assert_eq!(s["mempool_in_use"], 0, "{policy}");
    }
}

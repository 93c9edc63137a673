//! `mimamori-gw` as an operator runs it: synth, replay, damaged captures, bad policies.

use mimamori_gateway::capture::{CaptureReader, PcapWriter};
use proptest::prelude::*;
use std::path::{Path, PathBuf};
use std::process::Command;

fn gw(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mimamori-gw"))
        .args(args)
        .output()
        .expect("run mimamori-gw")
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mimamori-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn count_records(p: &Path) -> u64 {
    let mut r = CaptureReader::open(p).unwrap();
    let mut n = 0;
    while r.next_record().unwrap().is_some() {
        n += 1;
    }
    n
}

#[test]
fn synth_then_replay_accounts_for_every_packet() {
    let input = tmp("office.pcap");
    let out = gw(&[
        "synth",
        input.to_str().unwrap(),
        "--sessions",
        "400",
        "--seed",
        "5",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (output, eve, summary) = (tmp("fwd.pcap"), tmp("eve.json"), tmp("summary.json"));
    let out = gw(&[
        "replay",
        input.to_str().unwrap(),
        "-o",
        output.to_str().unwrap(),
        "--eve",
        eve.to_str().unwrap(),
        "--summary-json",
        summary.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Mpps"), "{text}");

    let s: serde_json::Value = serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    let c = &s["classifier"];
    let input_n = count_records(&input);
    assert_eq!(c["packets"].as_u64().unwrap(), input_n);
    let fwd: u64 = c["forwarded"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    let drp: u64 = c["dropped"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(fwd + drp, input_n, "every packet has a verdict");
    assert!(
        c["dropped"]["firewall_deny"].as_u64().unwrap() > 0,
        "inbound probes are denied"
    );
    let injected = c["injected"].as_u64().unwrap();
    assert_eq!(
        count_records(&output),
        fwd + injected,
        "output = forwarded + the gateway's answers"
    );

    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&eve)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len() as u64, s["events_written"].as_u64().unwrap());
    let flows = lines.iter().filter(|e| e["event_type"] == "flow").count() as u64;
    assert_eq!(
        flows,
        c["flows"]["created"].as_u64().unwrap(),
        "one flow record per flow"
    );
    for e in &lines {
        for field in [
            "timestamp",
            "flow_id",
            "in_iface",
            "src_ip",
            "src_port",
            "dest_ip",
            "dest_port",
            "proto",
            "event_type",
        ] {
            assert!(!e[field].is_null(), "{field} missing in {e}");
        }
    }
    let alert = lines
        .iter()
        .find(|e| e["event_type"] == "alert")
        .expect("a firewall alert");
    for field in [
        "action",
        "gid",
        "signature_id",
        "rev",
        "signature",
        "category",
        "severity",
    ] {
        assert!(!alert["alert"][field].is_null(), "alert.{field} missing");
    }
}

#[test]
fn replay_is_deterministic() {
    let input = tmp("det.pcap");
    assert!(
        gw(&["synth", input.to_str().unwrap(), "--sessions", "100"])
            .status
            .success()
    );
    let (a, b) = (tmp("a.pcap"), tmp("b.pcap"));
    assert!(
        gw(&["replay", input.to_str().unwrap(), "-o", a.to_str().unwrap()])
            .status
            .success()
    );
    assert!(
        gw(&["replay", input.to_str().unwrap(), "-o", b.to_str().unwrap()])
            .status
            .success()
    );
    assert_eq!(std::fs::read(a).unwrap(), std::fs::read(b).unwrap());
}

#[test]
fn truncated_capture_is_processed_up_to_the_damage() {
    let input = tmp("whole.pcap");
    assert!(
        gw(&["synth", input.to_str().unwrap(), "--sessions", "50"])
            .status
            .success()
    );
    let whole = std::fs::read(&input).unwrap();
    let cut = tmp("cut.pcap");
    std::fs::write(&cut, &whole[..whole.len() - 30]).unwrap();
    let summary = tmp("cut.json");
    let out = gw(&[
        "replay",
        cut.to_str().unwrap(),
        "--summary-json",
        summary.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "damage is a distinct exit status"
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("DAMAGED"), "{text}");
    let s: serde_json::Value = serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    let damage = s["damage"].as_str().unwrap();
    assert!(damage.contains("file ends inside record"), "{damage}");
    assert_eq!(
        s["classifier"]["packets"].as_u64().unwrap(),
        count_records(&input) - 1,
        "all but the cut record"
    );
}

#[test]
fn not_a_capture_and_missing_file_are_clear_errors() {
    let junk = tmp("junk.pcap");
    std::fs::write(&junk, b"this is not a capture file at all").unwrap();
    let out = gw(&["replay", junk.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a pcap or pcapng file"));
    let out = gw(&["replay", "/nonexistent/x.pcap"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/x.pcap: cannot open"));
}

#[test]
fn policy_errors_name_file_line_and_field() {
    let policy = tmp("bad.toml");
    std::fs::write(&policy, "[firewall]\ndefault_wan_to_lan = \"deny\"\n\n[[firewall.rule]]\nname = \"x\"\naction = \"allow\"\nsrc = [\"198.18.0.0/99\"]\n").unwrap();
    let input = tmp("p.pcap");
    assert!(
        gw(&["synth", input.to_str().unwrap(), "--sessions", "5"])
            .status
            .success()
    );
    let out = gw(&[
        "replay",
        input.to_str().unwrap(),
        "--policy",
        policy.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{}:7: firewall.rule[0].src[0]:", policy.display())),
        "{err}"
    );
    let out = gw(&["check-policy", policy.to_str().unwrap()]);
    assert!(!out.status.success());
}

#[test]
fn pcapng_input_is_replayed() {
    // Convert a synthesized capture to pcapng by hand and check the same verdicts result.
    let input = tmp("ng-src.pcap");
    assert!(
        gw(&["synth", input.to_str().unwrap(), "--sessions", "30"])
            .status
            .success()
    );
    let mut ng = Vec::new();
    let block = |t: u32, body: &[u8], out: &mut Vec<u8>| {
        let len = 12 + body.len().div_ceil(4) * 4;
        out.extend_from_slice(&t.to_le_bytes());
        out.extend_from_slice(&(len as u32).to_le_bytes());
        out.extend_from_slice(body);
        out.resize(out.len() + (len - 12 - body.len()), 0);
        out.extend_from_slice(&(len as u32).to_le_bytes());
    };
    block(
        0x0a0d_0d0a,
        &[
            0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        ],
        &mut ng,
    );
    block(
        1,
        &[1, 0, 0, 0, 0, 0, 4, 0, 9, 0, 1, 0, 9, 0, 0, 0, 0, 0, 0, 0],
        &mut ng,
    );
    let mut r = CaptureReader::open(&input).unwrap();
    while let Some(rec) = r.next_record().unwrap() {
        let mut epb = 0u32.to_le_bytes().to_vec();
        epb.extend_from_slice(&((rec.ts_ns >> 32) as u32).to_le_bytes());
        epb.extend_from_slice(&(rec.ts_ns as u32).to_le_bytes());
        epb.extend_from_slice(&(rec.data.len() as u32).to_le_bytes());
        epb.extend_from_slice(&(rec.data.len() as u32).to_le_bytes());
        epb.extend_from_slice(rec.data);
        block(6, &epb, &mut ng);
    }
    let ngp = tmp("x.pcapng");
    std::fs::write(&ngp, ng).unwrap();
    let (a, b) = (tmp("ng-a.pcap"), tmp("ng-b.pcap"));
    assert!(
        gw(&["replay", input.to_str().unwrap(), "-o", a.to_str().unwrap()])
            .status
            .success()
    );
    let out = gw(&["replay", ngp.to_str().unwrap(), "-o", b.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read(a).unwrap(),
        std::fs::read(b).unwrap(),
        "same packets, same timestamps"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn capture_reader_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..400), ng in any::<bool>()) {
        let mut data = if ng { vec![0x0a, 0x0d, 0x0d, 0x0a] } else { vec![0xd4, 0xc3, 0xb2, 0xa1] };
        data.extend_from_slice(&bytes);
        if let Ok(mut r) = CaptureReader::new(&data[..]) {
            for _ in 0..100 {
                match r.next_record() {
                    Ok(Some(_)) => {}
                    _ => break,
                }
            }
        }
    }

    #[test]
    fn capture_reader_survives_mutated_pcaps(at in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<prop::sample::Index>()) {
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        for i in 0..5u8 {
            w.write(u64::from(i) * 1000, &[i; 70]).unwrap();
        }
        let mut data = w.finish().unwrap();
        let i = at.index(data.len());
        data[i] = byte;
        data.truncate(cut.index(data.len() + 1));
        if let Ok(mut r) = CaptureReader::new(&data[..]) {
            while let Ok(Some(_)) = r.next_record() {}
        }
    }
}

#[test]
fn replay_with_rules_alerts_on_http_tls_dns_and_payload() {
    let input = tmp("ids.pcap");
    assert!(
        gw(&[
            "synth",
            input.to_str().unwrap(),
            "--sessions",
            "600",
            "--seed",
            "9"
        ])
        .status
        .success()
    );
    let rules = tmp("t.rules");
    std::fs::write(
        &rules,
        r#"alert http $HOME_NET any -> any any (msg:"host under .test"; flow:established,to_server; http.host; content:".test"; endswith; sid:9100001; rev:1;)
alert tls any any -> any any (msg:"sni shop"; tls.sni; content:"shop"; sid:9100002; rev:1;)
alert dns any any -> any any (msg:"dns news"; dns.query; content:"news"; sid:9100003; rev:1;)
alert http any any -> any any (msg:"status 200 to client"; flow:to_client; http.stat_code; content:"200"; sid:9100004; rev:1;)
alert tcp any any -> any 25 (msg:"smtp attachment"; flow:to_server; content:"Content-Disposition|3a| attachment"; sid:9100005; rev:1;)
alert tcp any any -> any any (msg:"never"; content:"this string is not in the traffic"; sid:9100006; rev:1;)
alert http any any -> any any (msg:"status 200 wrong direction"; flow:to_server; http.stat_code; content:"200"; sid:9100007; rev:1;)
alert tcp any any -> any any (msg:"unsupported"; content:"x"; byte_test:1,>,2,0,dce; sid:9100008; rev:1;)
"#,
    )
    .unwrap();
    let (eve, summary) = (tmp("ids.eve"), tmp("ids.json"));
    let out = gw(&[
        "replay",
        input.to_str().unwrap(),
        "--rules",
        rules.to_str().unwrap(),
        "--eve",
        eve.to_str().unwrap(),
        "--summary-json",
        summary.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s: serde_json::Value = serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    assert_eq!(s["ids"]["rules_compiled"], 7);
    assert_eq!(
        s["ids"]["skipped_by_reason"]["unsupported by the engine: byte_test: dce (DCERPC byte order)"],
        1
    );
    let mut by_sid = std::collections::HashMap::new();
    for line in std::fs::read_to_string(&eve).unwrap().lines() {
        let e: serde_json::Value = serde_json::from_str(line).unwrap();
        if e["event_type"] == "alert" && e["alert"]["gid"] == 1 {
            *by_sid
                .entry(e["alert"]["signature_id"].as_u64().unwrap())
                .or_insert(0) += 1;
        }
    }
    let http = s["ids"]["http_requests"].as_u64().unwrap();
    assert!(http > 50);
    assert_eq!(
        by_sid.get(&9100001),
        Some(&http),
        "every HTTP request has a .test host"
    );
    assert_eq!(
        by_sid.get(&9100004),
        s["ids"]["http_responses"].as_u64().as_ref(),
        "every response is a 200"
    );
    for sid in [9100002, 9100003, 9100005] {
        assert!(
            by_sid.get(&sid).is_some_and(|&n| n > 0),
            "sid {sid} fired: {by_sid:?}"
        );
    }
    assert_eq!(by_sid.get(&9100006), None);
    assert_eq!(
        by_sid.get(&9100007),
        None,
        "flow:to_server keeps it off responses"
    );
}

/// The web filter through the CLI: sample lists, a policy that blocks C&C, 50 lookups of a
/// C&C name from one host; the replay's EVE names the quarantined host.
#[test]
fn replay_with_categories_quarantines_a_calling_host() {
    use mimamori_pipelines::synth::{self, Endpoint};
    use mimamori_pipelines::wire::emit::Transport;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let db = tmp("sample.mmcat");
    let mut b = mimamori_signatures::category::Builder::default();
    b.add_squidguard_dir(&root.join("samples/categories"), "samples", "-")
        .unwrap();
    std::fs::write(&db, b.finish(0).0).unwrap();
    let policy = tmp("web.toml");
    std::fs::write(
        &policy,
        "[sides]\nlan_subnets = [\"198.18.0.0/16\"]\n[web.categories]\nc2 = \"block\"\n[web.quarantine]\ncallbacks = 50\n",
    )
    .unwrap();
    let pcap = tmp("callbacks.pcap");
    let mut w = PcapWriter::create(&pcap).unwrap();
    let r = Endpoint::server(53, false, 53);
    for i in 0..60u16 {
        let c = Endpoint::client(10, false, 10000 + i);
        let mut q = vec![0, i as u8, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        for l in ["x", "c2-callback", "test"] {
            q.push(l.len() as u8);
            q.extend_from_slice(l.as_bytes());
        }
        q.extend_from_slice(&[0, 0, 1, 0, 1]);
        let f = synth::frame(
            &c,
            &r,
            0,
            &Transport::Udp {
                src_port: c.port,
                dst_port: 53,
            },
            &q,
        );
        w.write(1_000_000_000 + u64::from(i) * 10_000_000, &f)
            .unwrap();
    }
    w.finish().unwrap();
    let eve = tmp("web-eve.json");
    let out = gw(&[
        "replay",
        pcap.to_str().unwrap(),
        "--policy",
        policy.to_str().unwrap(),
        "--categories",
        db.to_str().unwrap(),
        "--eve",
        eve.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("web_sinkhole=60"), "{text}");
    assert!(
        text.contains("QUARANTINED      02:00:00:00:00:0a 198.18.0.10"),
        "{text}"
    );
    let events = std::fs::read_to_string(&eve).unwrap();
    let host: Vec<_> = events
        .lines()
        .filter(|l| l.contains("\"event_type\":\"host\""))
        .collect();
    assert_eq!(host.len(), 1, "{events}");
    assert!(
        host[0].contains("\"mac\":\"02:00:00:00:00:0a\"") && host[0].contains("\"callbacks\":50"),
        "{}",
        host[0]
    );
}

/// The conformance runner on a made-up suite: a test that passes, one that fails, one
/// skipped for an unsupported keyword, one with no alert checks.
#[test]
fn conformance_runner_passes_fails_and_skips() {
    use mimamori_gateway::conformance::{Outcome, run_all};
    use mimamori_pipelines::synth::{self, Endpoint};
    use mimamori_pipelines::wire::emit::Transport;
    use mimamori_pipelines::wire::tcp::flags::{ACK, PSH};
    let root = tmp("suite");
    let _ = std::fs::remove_dir_all(&root);
    let c = Endpoint::client(10, false, 40000);
    let s = Endpoint::server(80, false, 80);
    let f = synth::frame(
        &c,
        &s,
        0,
        &Transport::Tcp {
            src_port: 40000,
            dst_port: 80,
            seq: 1,
            ack: 1,
            flags: ACK | PSH,
            window: 100,
            options: &[],
        },
        b"GET /secret HTTP/1.1\r\nHost: a.test\r\n\r\n",
    );
    let mk = |name: &str, rules: &str, yaml: &str| {
        let d = root.join(name);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("test.rules"), rules).unwrap();
        std::fs::write(d.join("test.yaml"), yaml).unwrap();
        let mut w = PcapWriter::create(&d.join("input.pcap")).unwrap();
        w.write(1_000_000_000, &f).unwrap();
        w.finish().unwrap();
    };
    let rule = "alert tcp any any -> any any (msg:\"secret\"; content:\"/secret\"; sid:1;)\n";
    let check = |n: u32| {
        format!(
            "checks:\n  - filter:\n      count: {n}\n      match:\n        event_type: alert\n        alert.signature_id: 1\n        src_ip: 198.18.0.10\n"
        )
    };
    mk("a-pass", rule, &check(1));
    mk("b-fail", rule, &check(2));
    mk(
        "c-skip",
        "alert tcp any any -> any any (msg:\"x\"; xor:\"0d\"; sid:1;)\n",
        &check(1),
    );
    mk(
        "d-noalert",
        rule,
        "checks:\n  - filter:\n      count: 1\n      match:\n        event_type: flow\n",
    );
    let r = run_all(&root, None, &tmp("suite-work")).unwrap();
    let got: Vec<_> = r
        .iter()
        .map(|t| (t.name.as_str(), t.outcome.clone()))
        .collect();
    assert_eq!(
        got,
        [
            ("a-pass", Outcome::Pass),
            ("b-fail", Outcome::Fail),
            ("c-skip", Outcome::Skipped),
            ("d-noalert", Outcome::Skipped)
        ]
    );
    assert!(r[1].detail.contains("want 2, got 1"), "{}", r[1].detail);
    assert!(
        r[2].detail.contains("sid 1") && r[2].detail.contains("xor"),
        "{}",
        r[2].detail
    );
}

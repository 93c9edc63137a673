//! The rule reader and classifier, case by case.
use super::*;
use serde_json::json;

fn alert(action: &str, gid: i64, severity: i64, in_iface: &str) -> Value {
    json!({
        "event_type": "alert",
        "timestamp": "2026-11-03T14:05:00.123456+0900",
        "src_ip": "192.168.1.23", "dest_ip": "203.0.113.9",
        "src_port": 50123, "dest_port": 443, "proto": "TCP", "in_iface": in_iface,
        "alert": {"action": action, "gid": gid, "signature_id": 2024897,
                  "signature": "ET MALWARE Test\r\nBcc: x", "category": "Trojan", "severity": severity}
    })
}

fn web(category: &str, threat: bool, action: &str) -> Value {
    json!({
        "event_type": "web", "timestamp": "2026-11-03T05:05:00Z",
        "src_ip": "192.168.1.23", "dest_ip": "198.51.100.7",
        "web": {"action": action, "via": "sni", "name": "evil.test", "category": category,
                "threat": threat, "src_mac": "02:00:5E:10:00:01"}
    })
}

fn quarantine() -> Value {
    json!({
        "event_type": "host", "timestamp": "2026-11-03T05:05:00+00:00", "src_ip": "192.168.1.23",
        "host": {"state": "quarantined", "mac": "02-00-5e-10-00-01", "hostname": "PC-SATO",
                 "client_id": "01:02", "callbacks": 7}
    })
}

#[test]
fn embedded_rules_parse() {
    let set = RuleSet::parse(EMBEDDED, EMBEDDED_ORIGIN).expect("the embedded rules parse");
    assert_eq!(RuleSet::embedded(), set.clone());
    assert!(set.names().count() >= 6);
    assert_eq!(set.notify_threshold(), Severity::Medium);
}

#[test]
fn quarantined_host_is_a_high_infected_host_incident() {
    let d = RuleSet::embedded().classify(&quarantine()).unwrap();
    assert_eq!(
        (d.rule.as_str(), d.threat.as_str()),
        ("infected-host", "quarantine")
    );
    assert_eq!(
        (d.severity, d.kind),
        (Severity::High, ThreatKind::InfectedHost)
    );
    assert_eq!(d.host.mac.as_deref(), Some("02:00:5e:10:00:01"));
    assert_eq!(d.host.hostname.as_deref(), Some("PC-SATO"));
    assert_eq!(d.host.key(), "mac:02:00:5e:10:00:01");
    assert_eq!(d.ts, 1_793_682_300);
    assert!(d.notify);
    assert_eq!(d.outbreak.unwrap().severity, Severity::Critical);
    assert!(d.summary.contains("PC-SATO") && d.summary.contains("7 callbacks"));
}

#[test]
fn web_blocks_by_category() {
    let set = RuleSet::embedded();
    let c2 = set.classify(&web("c2", true, "block")).unwrap();
    assert_eq!(
        (c2.severity, c2.kind, c2.threat.as_str()),
        (Severity::High, ThreatKind::InfectedHost, "c2")
    );
    assert_eq!(c2.host.key(), "mac:02:00:5e:10:00:01");
    let malware = set.classify(&web("malware", true, "block")).unwrap();
    assert_eq!(
        (malware.severity, malware.kind),
        (Severity::High, ThreatKind::MaliciousSite)
    );
    let phishing = set.classify(&web("phishing", true, "block")).unwrap();
    assert_eq!(phishing.severity, Severity::Low);
    assert!(phishing.notify, "explicit notify overrides the threshold");
    // Not a threat, or only monitored: no incident.
    assert_eq!(set.classify(&web("malware", false, "block")), None);
    assert_eq!(
        set.explain(&web("c2", true, "allow")),
        Classification::Unmatched
    );
}

#[test]
fn ips_alerts_and_the_lan_side_host() {
    let set = RuleSet::embedded();
    let blocked = set.classify(&alert("blocked", 1, 1, "wan")).unwrap();
    assert_eq!(
        (blocked.rule.as_str(), blocked.severity),
        ("ips-blocked", Severity::Medium)
    );
    assert_eq!(blocked.threat, "ips:2024897");
    // Came in on the WAN: the LAN host is the destination.
    assert_eq!(blocked.host.key(), "ip:203.0.113.9");
    assert!(!blocked.summary.contains('\r') && !blocked.summary.contains('\n'));
    assert!(blocked.summary.contains("ET MALWARE Test Bcc: x"));
    let allowed = set.classify(&alert("allowed", 1, 1, "lan")).unwrap();
    assert_eq!(allowed.rule, "ips-allowed");
    assert_eq!(allowed.host.key(), "ip:192.168.1.23");
    assert_eq!(allowed.ts, 1_793_682_300);
    assert_eq!(set.classify(&alert("blocked", 1, 2, "lan")), None);
}

#[test]
fn firewall_alerts_make_no_incident() {
    let set = RuleSet::embedded();
    assert_eq!(
        set.explain(&alert("blocked", 9, 1, "wan")),
        Classification::Ignored {
            rule: "firewall-drop".into()
        }
    );
}

#[test]
fn hostile_events_give_nothing() {
    let set = RuleSet::embedded();
    for event in [
        json!(null),
        json!([1, 2]),
        json!({"event_type": 5}),
        json!({"event_type": "host"}),
    ] {
        assert_eq!(set.classify(&event), None);
    }
    let mut bad_time = quarantine();
    bad_time["timestamp"] = json!("2026-02-30T00:00:00Z");
    assert!(matches!(
        set.explain(&bad_time),
        Classification::Malformed { .. }
    ));
    let mut no_host = quarantine();
    no_host["host"]["mac"] = json!("zz:zz");
    no_host["src_ip"] = json!("999.1.1.1");
    assert!(matches!(
        set.explain(&no_host),
        Classification::Malformed { .. }
    ));
    // An IP alone still names the host.
    no_host["src_ip"] = json!("fe80::1");
    assert_eq!(set.classify(&no_host).unwrap().host.key(), "ip:fe80::1");
    // Numbers sent as text still match numeric conditions.
    let mut text_gid = alert("blocked", 1, 1, "lan");
    text_gid["alert"]["gid"] = json!("1");
    assert!(set.classify(&text_gid).is_some());
}

fn error_of(text: &str) -> String {
    RuleSet::parse(text, "test.toml").unwrap_err().to_string()
}

#[test]
fn errors_name_the_origin_rule_and_field() {
    let head = "[[rule]]\nname = \"r1\"\nseverity = \"high\"\nthreat = \"t\"\n";
    let m = "[rule.match]\nevent_type = \"host\"\n";
    let e = error_of(&format!("{head}severity_typo = 1\n{m}"));
    assert!(
        e.contains("test.toml") && e.contains("rule #1 (r1)") && e.contains("severity_typo"),
        "{e}"
    );
    let e = error_of(&format!(
        "[[rule]]\nname = \"r1\"\nseverity = \"huge\"\nthreat = \"t\"\n{m}"
    ));
    assert!(e.contains("`severity`") && e.contains("huge"), "{e}");
    let e = error_of(&format!("{head}fold_minutes = -1\n{m}"));
    assert!(e.contains("fold_minutes"), "{e}");
    let e = error_of(&format!("{head}{m}\"host/state\" = [\"x\"]\n"));
    assert!(e.contains("match.host/state") && e.contains("`/`"), "{e}");
    let e = error_of(&format!("{head}summary = \"{{/a\"\n{m}"));
    assert!(e.contains("summary"), "{e}");
    let e = error_of(&format!(
        "{head}outbreak = {{ detections = 5, minutes = 10, severity = \"low\" }}\n{m}"
    ));
    assert!(e.contains("outbreak.severity"), "{e}");
    let e = error_of(&format!("{head}{m}[rule.host_from]\nip = \"wan-side\"\n"));
    assert!(e.contains("host_from.ip") && e.contains("lan-side"), "{e}");
    let e = error_of(&format!("{head}{m}{head}{m}"));
    assert!(
        e.contains("rule #2 (r1)") && e.contains("another rule"),
        "{e}"
    );
    let e = error_of(
        "[[rule]]\nname = \"r\"\nseverity = \"low\"\n[rule.match]\nevent_type = \"web\"\n",
    );
    assert!(e.contains("`threat`"), "{e}");
    assert!(error_of("not toml [").contains("test.toml: not a rule file"));
    assert!(error_of("notify_threshold = \"x\"\n[[rule]]\n").contains("notify_threshold"));
    assert!(error_of("").contains("no [[rule]]"));
}

#[test]
fn notify_defaults_to_the_threshold() {
    let text = "notify_threshold = \"high\"\n\
        [[rule]]\nname = \"a\"\nseverity = \"medium\"\nthreat = \"t\"\n[rule.match]\nevent_type = \"host\"\n";
    let set = RuleSet::parse(text, "t").unwrap();
    let d = set.classify(&quarantine()).unwrap();
    assert!(!d.notify);
    assert_eq!(d.summary, "a: t");
    assert_eq!(d.fold_secs, 3600);
    assert_eq!(d.host.key(), "ip:192.168.1.23");
}

#[test]
fn pointer_lists_fall_back_and_missing_fields_show_as_question_marks() {
    let text = r#"
        [[rule]]
        name = "by-sid"
        severity = "high"
        threat_from = "/alert/signature_id"
        summary = "sid {/alert/signature_id} rev {/alert/rev}"
        host_from = { mac = ["/no/such", "/alert/mac"], ip = ["/bad_ip", "lan-side"] }
        [rule.match]
        event_type = "alert"
        "/alert/signature_id" = [2024897, 2024898]
    "#;
    let set = RuleSet::parse(text, "t").unwrap();
    let mut event = alert("blocked", 1, 1, "lan");
    event["bad_ip"] = json!("not-an-ip");
    let d = set.classify(&event).unwrap();
    assert_eq!(d.threat, "2024897");
    assert_eq!(d.summary, "sid 2024897 rev ?");
    assert_eq!(d.host.key(), "ip:192.168.1.23");
    event["alert"]["mac"] = json!("02:00:5E:00:00:09");
    assert_eq!(
        set.classify(&event).unwrap().host.key(),
        "mac:02:00:5e:00:00:09"
    );
    // threat_from only, and the field is an object: no usable threat.
    event["alert"]["signature_id"] = json!(2024898);
    assert!(set.classify(&event).is_some());
    event["alert"]["signature_id"] = json!({"x": 1});
    assert_eq!(set.classify(&event), None);
}

#[test]
fn hostile_field_types_never_panic() {
    let set = RuleSet::embedded();
    let odd = [
        json!(null),
        json!(true),
        json!(-1),
        json!(1e308),
        json!(u64::MAX),
        json!("x".repeat(10_000)),
        json!("\u{0}\r\n\u{202E}"),
        json!([1, {"a": []}]),
        json!({"nested": {"deep": [null]}}),
    ];
    let samples = [
        alert("blocked", 1, 1, "lan"),
        web("c2", true, "block"),
        quarantine(),
    ];
    for sample in &samples {
        let Value::Object(top) = sample else {
            unreachable!()
        };
        for (key, value) in top {
            let inner: Vec<String> = match value {
                Value::Object(m) => m.keys().cloned().collect(),
                _ => vec![],
            };
            for replacement in &odd {
                let mut event = sample.clone();
                event[key] = replacement.clone();
                if let Some(d) = set.classify(&event) {
                    assert!(d.summary.chars().count() <= SUMMARY_CHARS);
                    assert!(!d.summary.chars().any(char::is_control));
                    assert!(!d.threat.chars().any(char::is_control));
                }
                for field in &inner {
                    let mut event = sample.clone();
                    event[key][field] = replacement.clone();
                    if let Some(d) = set.classify(&event) {
                        assert!(d.summary.chars().count() <= SUMMARY_CHARS);
                        assert!(!d.threat.chars().any(char::is_control));
                        assert!(
                            d.host
                                .hostname
                                .as_ref()
                                .is_none_or(|h| h.chars().count() <= 64)
                        );
                    }
                }
            }
        }
    }
}

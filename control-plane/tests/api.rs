//! The API over real HTTP, with a stand-in gateway on a Unix socket that speaks the
//! gateway's control protocol and checks snapshots with the gateway's own policy compiler.
//! (The real gateway is exercised by scripts/e2e-cp.)

mod common;

use mimamori_control_plane::{db, server};
use mimamori_pipelines::Policy;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default)]
struct FakeGateway {
    version: AtomicU64,
    refuse: AtomicBool,
    last_policy: Mutex<String>,
    released: Mutex<Vec<String>>,
}

fn fake_gateway(path: &Path) -> Arc<FakeGateway> {
    let g = Arc::new(FakeGateway::default());
    let l = UnixListener::bind(path).unwrap();
    let g2 = g.clone();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(c) = c else { continue };
            let mut r = BufReader::new(c.try_clone().unwrap());
            let mut w = c;
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            let words: Vec<&str> = line.split_whitespace().collect();
            let answer = match words.as_slice() {
                ["stats"] => json!({"policy_version": g2.version.load(Ordering::SeqCst), "uptime_secs": 1.5, "layout": "rtc",
                    "mempool_in_use": 3, "events_unsent": 0,
                    "ports": [{"side": "lan", "name": "p0", "rx_packets": 10, "tx_packets": 9, "rx_bytes": 1000, "tx_bytes": 900, "rx_missed": 0, "rx_errors": 0, "tx_errors": 0, "rx_nombuf": 0},
                              {"side": "wan", "name": "p1", "rx_packets": 7, "tx_packets": 8, "rx_bytes": 700, "tx_bytes": 800, "rx_missed": 0, "rx_errors": 0, "tx_errors": 0, "rx_nombuf": 0}],
                    "stages": [{"name": "rtc", "rx": 17, "tx": 17, "dropped": 2, "classifier": {"forwarded": {"flow": 15}, "dropped": {"firewall_deny": 2}}, "ips": {"inspected": 12, "alerts": 3, "dropped": 1, "rejected": 0, "stream": {"segments": 9, "overlap_diff": 0, "memcap_refused": 0}, "defrag": {"reassembled": 0}}}]
                }).to_string() + "\n",
                ["apply", v, n] => {
                    let mut text = vec![0u8; n.parse().unwrap()];
                    r.read_exact(&mut text).unwrap();
                    let text = String::from_utf8(text).unwrap();
                    let v: u64 = v.parse().unwrap();
                    if g2.refuse.load(Ordering::SeqCst) {
                        "error policy version: web.categories.nosuch: no category \"nosuch\" in the category database\n".to_string()
                    } else if v <= g2.version.load(Ordering::SeqCst) {
                        format!("error version {v} is not newer\n")
                    } else {
                        match Policy::from_toml("snapshot", &text) {
                            Ok(_) => {
                                g2.version.store(v, Ordering::SeqCst);
                                *g2.last_policy.lock().unwrap() = text;
                                format!("ok {v} 250\n")
                            }
                            Err(e) => format!("error {e}\n"),
                        }
                    }
                }
                ["hosts"] => json!({"hosts": [
                    {"mac": "02:00:00:00:00:0a", "ipv4": "198.18.0.10", "hostname": "pc-suzuki", "quarantined": true, "callbacks_total": 50},
                    {"mac": "02:00:00:00:00:0b", "ipv4": "198.18.0.11", "hostname": "pc-sato", "quarantined": false, "callbacks_total": 0}],
                    "stats": {"hosts": 2}}).to_string() + "\n",
                ["release", mac] => {
                    if *mac == "02:00:00:00:00:0a" {
                        g2.released.lock().unwrap().push(mac.to_string());
                        "ok\n".into()
                    } else {
                        format!("error {mac} is not quarantined\n")
                    }
                }
                _ => "error unknown\n".into(),
            };
            let _ = w.write_all(answer.as_bytes());
        }
    });
    g
}

struct Cp {
    base: String,
    admin: String,
    dir: PathBuf,
    cp_socket: PathBuf,
}

fn start(name: &str, with_gateway: bool) -> (Cp, Option<Arc<FakeGateway>>) {
    start_with(name, with_gateway, None)
}

fn start_with(
    name: &str,
    with_gateway: bool,
    categories: Option<&[&str]>,
) -> (Cp, Option<Arc<FakeGateway>>) {
    let dir = std::env::temp_dir().join(format!("mimamori-cp-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let categories = categories.map(|names| {
        let mut b = mimamori_signatures::category::Builder::default();
        let src = b.source("test", "");
        for n in names {
            let c = b.category(n);
            assert!(b.add_domain(&format!("{n}.example.test"), c, src));
        }
        let path = dir.join("categories.mmcat");
        std::fs::write(&path, b.finish(0).0).unwrap();
        path
    });
    let gw_sock = dir.join("gw.sock");
    let gw = with_gateway.then(|| fake_gateway(&gw_sock));
    let opts = server::Options {
        db: dir.join("cp.db"),
        listen: "127.0.0.1:0".parse().unwrap(),
        gateway_socket: gw_sock,
        cp_socket: dir.join("cp.sock"),
        // The store's own pruning must not race the tests' fixed timestamps; `prune` is
        // tested directly.
        retention_days: 36_500,
        event_queue: 10_000,
        bootstrap_token_file: Some(dir.join("admin.token")),
        categories,
        patterns: None,
        desk: None,
        desk_patterns_every: std::time::Duration::from_secs(21_600),
    };
    let addr = common::serve(&opts);
    let admin = std::fs::read_to_string(dir.join("admin.token"))
        .unwrap()
        .trim()
        .to_string();
    (
        Cp {
            base: format!("http://{addr}"),
            admin,
            cp_socket: opts.cp_socket,
            dir,
        },
        gw,
    )
}

impl Cp {
    fn req(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> (u16, Value) {
        let mut r = ureq::request(method, &format!("{}{path}", self.base));
        if let Some(t) = token {
            r = r.set("Authorization", &format!("Bearer {t}"));
        }
        let res = match body {
            Some(b) => r.set("Content-Type", "application/json").send_string(b),
            None => r.call(),
        };
        let (code, text) = match res {
            Ok(resp) => (resp.status(), resp.into_string().unwrap()),
            Err(ureq::Error::Status(code, resp)) => (code, resp.into_string().unwrap()),
            Err(e) => panic!("{method} {path}: {e}"),
        };
        (
            code,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
    fn get(&self, path: &str) -> (u16, Value) {
        self.req("GET", path, Some(&self.admin), None)
    }
    fn put(&self, path: &str, body: &str) -> (u16, Value) {
        self.req("PUT", path, Some(&self.admin), Some(body))
    }
    fn version(&self) -> u64 {
        self.get("/api/v1/policy").1["version"].as_u64().unwrap()
    }
    fn token(&self, name: &str, role: &str) -> String {
        let (code, v) = self.req(
            "POST",
            "/api/v1/tokens",
            Some(&self.admin),
            Some(&json!({"name": name, "role": role}).to_string()),
        );
        assert_eq!(code, 201, "{v}");
        v["token"].as_str().unwrap().to_string()
    }
}

#[test]
fn tokens_and_roles() {
    let (cp, _gw) = start("roles", true);
    assert_eq!(cp.req("GET", "/api/v1/status", None, None).0, 401);
    assert_eq!(
        cp.req("GET", "/api/v1/status", Some("mmt_wrong"), None).0,
        401
    );
    let ro = cp.token("viewer", "read-only");
    let desk = cp.token("desk", "desk-operator");
    assert_eq!(
        cp.req("GET", "/api/v1/policy/firewall", Some(&ro), None).0,
        200
    );
    let (code, v) = cp.req("PUT", "/api/v1/policy/contacts", Some(&ro), Some("[]"));
    assert_eq!(code, 403, "{v}");
    let (code, _) = cp.req(
        "PUT",
        "/api/v1/policy/contacts",
        Some(&desk),
        Some(r#"[{"name": "Suzuki", "email": "it@office.test"}]"#),
    );
    assert_eq!(code, 200);
    assert_eq!(
        cp.req(
            "POST",
            "/api/v1/tokens",
            Some(&desk),
            Some(r#"{"name": "x", "role": "read-only"}"#)
        )
        .0,
        403
    );
    let (code, v) = cp.req(
        "POST",
        "/api/v1/tokens",
        Some(&cp.admin),
        Some(r#"{"name": "viewer", "role": "read-only"}"#),
    );
    assert_eq!(code, 409, "{v}");
    let (code, v) = cp.req(
        "POST",
        "/api/v1/tokens",
        Some(&cp.admin),
        Some(r#"{"name": "y", "role": "root"}"#),
    );
    assert_eq!(
        (code, v["field"].as_str()),
        (400, Some("token.role")),
        "{v}"
    );
    // Tokens are stored hashed: the secret is nowhere in the database file.
    let raw = std::fs::read(cp.dir.join("cp.db")).unwrap();
    assert!(!raw.windows(ro.len()).any(|w| w == ro.as_bytes()));
    let (_, list) = cp.get("/api/v1/tokens");
    assert_eq!(list["tokens"].as_array().unwrap().len(), 3);
}

#[test]
fn a_policy_change_is_pushed_then_stored_and_audited() {
    let (cp, gw) = start("change", true);
    let gw = gw.unwrap();
    let v0 = cp.version();
    let body = r#"{"default_lan_to_wan": "allow", "default_wan_to_lan": "deny", "rules": [
        {"name": "block web", "from": "lan", "proto": "tcp", "dst_ports": [80, "8000-8080"], "action": "reject", "log": true}]}"#;
    let (code, v) = cp.put("/api/v1/policy/firewall", body);
    assert_eq!(code, 200, "{v}");
    assert_eq!(
        (v["version"].as_u64(), v["applied"].as_bool()),
        (Some(v0 + 1), Some(true))
    );
    assert_eq!(gw.version.load(Ordering::SeqCst), v0 + 1);
    let pushed = Policy::from_toml("pushed", &gw.last_policy.lock().unwrap()).unwrap();
    assert_eq!(pushed.firewall.rules[0].name, "block web");
    let (_, fw) = cp.get("/api/v1/policy/firewall");
    assert_eq!(fw["rules"][0]["dst_ports"][1], "8000-8080");
    let (_, audit) = cp.get("/api/v1/audit?limit=1");
    let a = &audit["audit"][0];
    assert_eq!(
        (a["actor"].as_str(), a["target"].as_str()),
        (Some("bootstrap-admin"), Some("firewall"))
    );
    assert_eq!(a["before"]["rules"][0]["name"], "reject outbound telnet");
    assert_eq!(a["after"]["rules"][0]["name"], "block web");
    let (code, v) = cp.put(
        "/api/v1/policy/categories",
        r#"{"gambling": "block", "chatter": "monitor"}"#,
    );
    assert_eq!(code, 200, "{v}");
    assert_eq!(cp.version(), v0 + 2);
    // The gateway asks at start: it gets the newest version.
    let mut s = UnixStream::connect(&cp.cp_socket).unwrap();
    s.write_all(b"current\n").unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let (head, text) = answer.split_once('\n').unwrap();
    assert_eq!(head, format!("policy {}", v0 + 2));
    assert!(
        Policy::from_toml("current", text)
            .unwrap()
            .firewall
            .rules
            .iter()
            .any(|r| r.name == "block web")
    );
}

#[test]
fn bad_input_is_a_400_with_the_field_and_nothing_is_stored() {
    let (cp, gw) = start("bad", true);
    let gw = gw.unwrap();
    let v0 = cp.version();
    let cases = [
        ("firewall", "{not json", "firewall"),
        (
            "firewall",
            r#"{"rules": [{"name": "x", "action": "deny", "dst_port": [1]}]}"#,
            "firewall.rules[0]",
        ),
        (
            "firewall",
            r#"{"rules": [{"name": "x", "action": "deny", "proto": "tcp", "dst_ports": [70000]}]}"#,
            "firewall.rules[0].dst_ports[0]",
        ),
        (
            "firewall",
            r#"{"rules": [{"name": "x", "action": "deny", "dst": ["198.18.0.0/33"]}]}"#,
            "firewall.rules[0].dst[0]",
        ),
        (
            "firewall",
            r#"{"rules": [{"name": "x", "action": "explode"}]}"#,
            "firewall.rules[0].action",
        ),
        (
            "categories",
            r#"{"gambling": "forbid"}"#,
            "categories.gambling",
        ),
        (
            "exceptions",
            r#"[{"entry": "not a name", "action": "allow"}]"#,
            "exceptions[0].entry",
        ),
        (
            "host-groups",
            r#"[{"name": "guests", "subnets": ["bad"]}]"#,
            "host_groups[0].subnets[0]",
        ),
        (
            "ips",
            r#"{"mode": "ips", "thresholds": [{"sid": 1, "count": 0, "seconds": 60}]}"#,
            "ips.thresholds[0]",
        ),
        ("ips", r#"{"mode": "prevent"}"#, "ips.mode"),
        (
            "contacts",
            r#"[{"name": "a", "email": "nope"}]"#,
            "contacts[0].email",
        ),
        ("quarantine", r#"{"callbacks": -1}"#, "quarantine.callbacks"),
    ];
    for (section, body, field) in cases {
        let (code, v) = cp.put(&format!("/api/v1/policy/{section}"), body);
        assert_eq!(code, 400, "{section} {body}: {v}");
        assert!(
            v["field"].as_str().unwrap().starts_with(field),
            "{section} {body}: field {v}"
        );
        assert!(!v["reason"].as_str().unwrap().is_empty());
    }
    assert_eq!(cp.put("/api/v1/policy/nosuch", "{}").0, 404);
    assert_eq!(cp.version(), v0, "nothing stored");
    assert_eq!(gw.version.load(Ordering::SeqCst), 0, "nothing pushed");
    let (code, v) = cp.get("/api/v1/events?limit=abc");
    assert_eq!((code, v["field"].as_str()), (400, Some("query")), "{v}");
    let (code, _) = cp.req(
        "POST",
        "/api/v1/quarantine/zz:zz/release",
        Some(&cp.admin),
        None,
    );
    assert_eq!(code, 400);
}

#[test]
fn a_refused_snapshot_keeps_the_old_one_and_says_why() {
    let (cp, gw) = start("refused", true);
    let gw = gw.unwrap();
    let v0 = cp.version();
    gw.refuse.store(true, Ordering::SeqCst);
    let (code, v) = cp.put("/api/v1/policy/categories", r#"{"nosuch": "block"}"#);
    assert_eq!(code, 422, "{v}");
    assert!(v["reason"].as_str().unwrap().contains("no category"), "{v}");
    assert_eq!(cp.version(), v0);
    assert_eq!(cp.get("/api/v1/policy/categories").1.get("nosuch"), None);
}

#[test]
fn a_policy_the_gateway_could_not_compile_is_refused_while_it_is_down() {
    let names = ["adult", "gambling", "malware", "phishing", "c2"];
    let (cp, _) = start_with("uncompilable", false, Some(&names));
    let v0 = cp.version();
    let (code, v) = cp.put("/api/v1/policy/categories", r#"{"nosuch": "block"}"#);
    assert_eq!(code, 422, "{v}");
    assert!(v["reason"].as_str().unwrap().contains("no category"), "{v}");
    assert_eq!(cp.version(), v0, "nothing stored");
    let (code, v) = cp.put("/api/v1/policy/categories", r#"{"c2": "block"}"#);
    assert_eq!(code, 202, "{v}");
    assert_eq!(cp.version(), v0 + 1);
}

#[test]
fn a_gateway_that_is_down_gets_the_policy_later() {
    let (cp, _) = start("down", false);
    let v0 = cp.version();
    let (code, v) = cp.put("/api/v1/policy/lan-subnets", r#"["198.18.0.0/24"]"#);
    assert_eq!(code, 202, "{v}");
    assert_eq!(v["applied"], false);
    assert!(v["note"].as_str().unwrap().contains("unreachable"), "{v}");
    let (_, p) = cp.get("/api/v1/policy");
    assert_eq!(
        (p["version"].as_u64(), p["applied"].as_bool()),
        (Some(v0 + 1), Some(false))
    );
    let (_, st) = cp.get("/api/v1/status");
    assert_eq!(st["gateway"]["up"], false);
    assert_eq!(cp.get("/api/v1/quarantine").0, 503);
    let (code, m) = cp.req("GET", "/metrics", Some(&cp.admin), None);
    assert_eq!(code, 200);
    assert!(m.as_str().unwrap().contains("mimamori_gateway_up 0"));
}

fn eve(ts: &str, kind: &str, src: &str, extra: &str) -> String {
    format!(
        r#"{{"timestamp":"{ts}","flow_id":1,"in_iface":"lan","event_type":"{kind}","src_ip":"{src}","src_port":40000,"dest_ip":"198.19.0.80","dest_port":80,"proto":"TCP"{extra}}}"#
    )
}

#[test]
fn events_are_stored_queried_aggregated_and_pruned() {
    let (cp, _gw) = start("events", true);
    let mut s = UnixStream::connect(&cp.cp_socket).unwrap();
    let mut lines = vec!["events".to_string()];
    let web = r#","web":{"action":"blocked","via":"http-host","name":"casino.test","category":"gambling","list":"samples"}"#;
    let alert = r#","alert":{"action":"blocked","gid":1,"signature_id":2019401,"rev":1,"signature":"x","category":"Potential Corporate Privacy Violation","severity":2}"#;
    for i in 0..30 {
        lines.push(eve(
            &format!("2026-11-26T10:{:02}:00.000000+0000", i),
            "web",
            "198.18.0.10",
            web,
        ));
    }
    for i in 0..20 {
        lines.push(eve(
            &format!("2026-11-26T11:{:02}:00.000000+0000", i),
            "alert",
            "198.18.0.11",
            alert,
        ));
    }
    lines.push("this is not json".into());
    lines.push(eve(
        "2020-01-01T00:00:00.000000+0000",
        "flow",
        "198.18.0.12",
        "",
    ));
    s.write_all((lines.join("\n") + "\n").as_bytes()).unwrap();
    drop(s);
    for _ in 0..100 {
        if cp.get("/api/v1/status").1["events"]["stored"] == 51 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let (_, st) = cp.get("/api/v1/status");
    assert_eq!(
        (
            st["events"]["stored"].as_u64(),
            st["events"]["malformed"].as_u64()
        ),
        (Some(51), Some(1)),
        "{st}"
    );
    let count = |q: &str| {
        cp.get(&format!("/api/v1/events?limit=1000&{q}")).1["count"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(count("type=web"), 30);
    assert_eq!(count("host=198.18.0.11"), 20);
    assert_eq!(count("host=198.19.0.80"), 51);
    assert_eq!(count("category=gambling&action=blocked"), 30);
    assert_eq!(count("sid=2019401"), 20);
    let t10 = mimamori_control_plane::events::eve_epoch("2026-11-26T10:00:00+0000").unwrap();
    assert_eq!(count(&format!("from={}&to={}", t10, t10 + 3600)), 30);
    let (_, h) = cp.get(&format!("/api/v1/events/hourly?from={t10}"));
    let hours = h["hours"].as_array().unwrap();
    assert_eq!(hours.len(), 2, "{h}");
    assert_eq!(
        (hours[0]["hour"].as_i64(), hours[0]["count"].as_i64()),
        (Some(t10), Some(30))
    );
    assert_eq!(
        (hours[1]["event_type"].as_str(), hours[1]["count"].as_i64()),
        (Some("alert"), Some(20))
    );
    // Retention: events older than the window go.
    let c = db::open(&cp.dir.join("cp.db")).unwrap();
    let pruned = mimamori_control_plane::events::prune(&c, 30, t10 + 86_400).unwrap();
    assert_eq!(pruned, 1);
    assert_eq!(count("type=flow"), 0);
}

#[test]
fn quarantine_metrics_and_openapi() {
    let (cp, gw) = start("misc", true);
    let gw = gw.unwrap();
    let (_, q) = cp.get("/api/v1/quarantine");
    let list = q["quarantined"].as_array().unwrap();
    assert_eq!(
        (list.len(), list[0]["hostname"].as_str()),
        (1, Some("pc-suzuki"))
    );
    let (code, _) = cp.req(
        "POST",
        "/api/v1/quarantine/02:00:00:00:00:0a/release",
        Some(&cp.admin),
        None,
    );
    assert_eq!(code, 200);
    assert_eq!(
        gw.released.lock().unwrap().as_slice(),
        ["02:00:00:00:00:0a"]
    );
    let (code, v) = cp.req(
        "POST",
        "/api/v1/quarantine/02:00:00:00:00:0b/release",
        Some(&cp.admin),
        None,
    );
    assert_eq!(code, 409, "{v}");
    let (_, audit) = cp.get("/api/v1/audit?limit=5");
    assert!(
        audit["audit"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["action"] == "release from quarantine")
    );

    let (code, m) = cp.req("GET", "/metrics", Some(&cp.admin), None);
    assert_eq!(code, 200);
    let m = m.as_str().unwrap();
    for needle in [
        "mimamori_gateway_up 1",
        "mimamori_port_rx_packets_total{port=\"lan\"} 10",
        "mimamori_classifier_dropped_total{stage=\"rtc\",reason=\"firewall_deny\"} 2",
        "mimamori_ips_alerts_total{stage=\"rtc\"} 3",
        "mimamori_ips_stream_segments_total{stage=\"rtc\"} 9",
        "# TYPE mimamori_cp_events_total counter",
        "mimamori_cp_policy_version ",
    ] {
        assert!(m.contains(needle), "missing {needle:?} in\n{m}");
    }
    let (code, doc) = cp.req("GET", "/openapi.json", None, None);
    assert_eq!(code, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    let src = include_str!("../src/api.rs");
    for line in src
        .lines()
        .filter(|l| l.trim_start().starts_with(".route(\""))
    {
        let path = line.split('"').nth(1).unwrap();
        if path.contains("{section}") {
            for s in mimamori_control_plane::api::SECTIONS {
                assert!(
                    doc["paths"].get(path.replace("{section}", s)).is_some(),
                    "{path} {s}"
                );
            }
        } else {
            assert!(
                doc["paths"].get(path).is_some(),
                "route {path} not in /openapi.json"
            );
        }
    }
}

#[test]
fn web_options_reach_the_gateway_and_bad_words_name_the_field() {
    let (cp, gw) = start("web-options", true);
    let gw = gw.unwrap();
    let (code, v) = cp.get("/api/v1/policy/web-options");
    assert_eq!(
        (code, &v),
        (200, &json!({"ech": "allow", "unreadable": "allow"}))
    );
    let (code, v) = cp.put("/api/v1/policy/web-options", r#"{"ech": "block"}"#);
    assert_eq!(code, 200, "{v}");
    let pushed = gw.last_policy.lock().unwrap().clone();
    assert!(pushed.contains("ech = \"block\""), "{pushed}");
    assert!(pushed.contains("unreadable = \"allow\""), "{pushed}");
    let (code, v) = cp.put("/api/v1/policy/web-options", r#"{"ech": "sometimes"}"#);
    assert_eq!(code, 400, "{v}");
    assert_eq!(v["field"], "web_options.ech", "{v}");
}

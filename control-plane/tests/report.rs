//! The monthly report end to end: synthetic events through the gateway socket into the
//! store, the report over the API (roles, bad input, an empty month, a kept month), and
//! `mimamori-cp ctl report` writing a PDF with headless Chromium, read back with
//! `pdftotext` against the store's own numbers and rendered with `pdftoppm` to catch a
//! blank page. Without chromium (or poppler-utils) the PDF part is skipped, and says so.

mod common;

use mimamori_control_plane::{db, server};
use serde_json::{Value, json};
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

struct Cp {
    base: String,
    admin: String,
    dir: PathBuf,
    cp_socket: PathBuf,
}

fn start(name: &str) -> Cp {
    let dir = std::env::temp_dir().join(format!(
        "mimamori-report-test-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let opts = server::Options {
        db: dir.join("cp.db"),
        listen: "127.0.0.1:0".parse().unwrap(),
        // No gateway: the report says its uptime is not known.
        gateway_socket: dir.join("gw.sock"),
        cp_socket: dir.join("cp.sock"),
        retention_days: 36_500,
        event_queue: 10_000,
        bootstrap_token_file: Some(dir.join("admin.token")),
        categories: None,
        patterns: None,
        desk: None,
        desk_patterns_every: std::time::Duration::from_secs(21_600),
    };
    let addr = common::serve(&opts);
    let admin = std::fs::read_to_string(dir.join("admin.token"))
        .unwrap()
        .trim()
        .to_string();
    Cp {
        base: format!("http://{addr}"),
        admin,
        cp_socket: opts.cp_socket,
        dir,
    }
}

impl Cp {
    /// Status and body text.
    fn get(&self, path: &str, token: Option<&str>) -> (u16, String, String) {
        let mut r = ureq::get(&format!("{}{path}", self.base));
        if let Some(t) = token {
            r = r.set("Authorization", &format!("Bearer {t}"));
        }
        match r.call() {
            Ok(resp) => (
                resp.status(),
                resp.content_type().to_string(),
                resp.into_string().unwrap(),
            ),
            Err(ureq::Error::Status(code, resp)) => {
                (code, String::new(), resp.into_string().unwrap())
            }
            Err(e) => panic!("GET {path}: {e}"),
        }
    }
    fn json(&self, path: &str) -> (u16, Value) {
        let (code, _, text) = self.get(path, Some(&self.admin));
        (
            code,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
    fn stored(&self) -> u64 {
        self.json("/api/v1/status").1["events"]["stored"]
            .as_u64()
            .unwrap_or(0)
    }
}

fn head(ts: &str, kind: &str, iface: &str, src: &str, dst: &str) -> String {
    format!(
        r#""timestamp":"{ts}","flow_id":7,"in_iface":"{iface}","event_type":"{kind}","src_ip":"{src}","src_port":40000,"dest_ip":"{dst}","dest_port":443,"proto":"TCP""#
    )
}

fn web(ts: &str, action: &str, name: &str, cat: &str, threat: bool, ip: &str, mac: &str) -> String {
    format!(
        r#"{{{},"web":{{"action":"{action}","via":"tls-sni","name":"{name}","category":"{cat}","list":"t","exception":false,"threat":{threat},"group":"default","src_mac":"{mac}"}}}}"#,
        head(ts, "web", "lan", ip, "203.0.113.5")
    )
}

fn alert(ts: &str, gid: u32, sid: u32, action: &str, msg: &str, victim: &str) -> String {
    format!(
        r#"{{{},"alert":{{"action":"{action}","gid":{gid},"signature_id":{sid},"rev":1,"signature":"{msg}","category":"Web Application Attack","severity":1}}}}"#,
        head(ts, "alert", "wan", "192.0.2.66", victim)
    )
}

/// A November (Japan time) with a known count per function, and events just outside it.
fn november() -> Vec<String> {
    let (a, ma) = ("198.18.0.10", "02:00:00:00:00:0a");
    let (b, mb) = ("198.18.0.11", "02:00:00:00:00:0b");
    let mut v = Vec::new();
    let t = |d: u32, i: u32| format!("2026-11-{d:02}T{:02}:{:02}:00.000000+0000", i % 24, i % 60);
    for i in 0..7 {
        v.push(web(
            &t(3 + i, i),
            "blocked",
            &format!("phish-{}.test", i % 2),
            "phishing",
            true,
            a,
            ma,
        ));
    }
    for i in 0..3 {
        v.push(web(
            &t(10, i),
            "blocked",
            "c2-callback.test",
            "c2",
            true,
            a,
            ma,
        ));
    }
    v.push(web(
        &t(10, 5),
        "quarantined",
        "update.example",
        "",
        false,
        a,
        ma,
    ));
    for i in 0..5 {
        v.push(alert(
            &t(12, i),
            1,
            2_030_001,
            "blocked",
            "ET WEB <script>probe</script>",
            b,
        ));
    }
    for i in 0..2 {
        v.push(alert(
            &t(13, i),
            1,
            2_030_002,
            "allowed",
            "ET SCAN suspicious",
            b,
        ));
    }
    for i in 0..11 {
        v.push(web(
            &t(15 + i % 5, i),
            "blocked",
            "casino.test",
            "gambling",
            false,
            b,
            mb,
        ));
    }
    for i in 0..6 {
        v.push(alert(
            &t(20, i),
            9,
            0,
            "blocked",
            "firewall: default deny from wan",
            b,
        ));
    }
    v.push(format!(
        r#"{{{},"host":{{"state":"quarantined","mac":"{ma}","hostname":"pc-<script>alert(1)</script>","client_id":"","callbacks":3}}}}"#,
        head(&t(10, 4), "host", "lan", a, "203.0.113.9")
    ));
    // Outside November in Japan: 2026-10-31 23:30 JST and 2026-12-01 00:30 JST.
    v.push(web(
        "2026-10-31T14:30:00.000000+0000",
        "blocked",
        "phish-0.test",
        "phishing",
        true,
        a,
        ma,
    ));
    v.push(web(
        "2026-11-30T15:30:00.000000+0000",
        "blocked",
        "phish-0.test",
        "phishing",
        true,
        a,
        ma,
    ));
    v
}

/// The month's counts per function, straight from the stored EVE JSON (not the columns
/// the report reads).
fn store_counts(db: &Path) -> Vec<(&'static str, i64)> {
    let c = db::open(db).unwrap();
    let from = mimamori_control_plane::events::eve_epoch("2026-10-31T15:00:00+0000").unwrap();
    let to = mimamori_control_plane::events::eve_epoch("2026-11-30T15:00:00+0000").unwrap();
    let q = |w: &str| -> i64 {
        c.query_row(
            &format!("SELECT count(*) FROM event WHERE ts >= ?1 AND ts < ?2 AND {w}"),
            [from, to],
            |r| r.get(0),
        )
        .unwrap()
    };
    let web = "json_extract(raw, '$.event_type') = 'web'";
    let blocked = "json_extract(raw, '$.web.action') IN ('blocked', 'sinkholed')";
    let ips =
        "json_extract(raw, '$.event_type') = 'alert' AND json_extract(raw, '$.alert.gid') != 9";
    vec![
        (
            "Malicious and phishing sites",
            q(&format!(
                "{web} AND {blocked} AND json_extract(raw, '$.web.threat') AND json_extract(raw, '$.web.category') != 'c2'"
            )),
        ),
        (
            "C&C callbacks and quarantined PCs",
            q(&format!(
                "{web} AND (json_extract(raw, '$.web.action') = 'quarantined' OR ({blocked} AND json_extract(raw, '$.web.category') = 'c2'))"
            )),
        ),
        (
            "Intrusion prevention (dropped)",
            q(&format!(
                "{ips} AND json_extract(raw, '$.alert.action') = 'blocked'"
            )),
        ),
        (
            "Intrusion detection (logged only)",
            q(&format!(
                "{ips} AND json_extract(raw, '$.alert.action') = 'allowed'"
            )),
        ),
        (
            "URL categories",
            q(&format!(
                "{web} AND {blocked} AND NOT json_extract(raw, '$.web.threat')"
            )),
        ),
        (
            "Firewall",
            q(
                "json_extract(raw, '$.alert.gid') = 9 AND json_extract(raw, '$.alert.action') = 'blocked'",
            ),
        ),
    ]
}

fn tool(name: &str) -> bool {
    Command::new(name).arg("-v").output().is_ok()
}

/// Whether a PPM (P6) image has pixels that are not near-white.
fn ink(ppm: &[u8]) -> usize {
    // Header: P6, width, height, maxval, each separated by whitespace.
    let mut fields = Vec::new();
    let mut i = 0;
    while fields.len() < 4 {
        while ppm[i].is_ascii_whitespace() {
            i += 1;
        }
        let s = i;
        while !ppm[i].is_ascii_whitespace() {
            i += 1;
        }
        fields.push(String::from_utf8_lossy(&ppm[s..i]).to_string());
    }
    assert_eq!(fields[0], "P6");
    let (w, h): (usize, usize) = (fields[1].parse().unwrap(), fields[2].parse().unwrap());
    let px = &ppm[i + 1..];
    assert_eq!(px.len(), w * h * 3, "a whole image");
    px.chunks(3).filter(|p| p.iter().any(|&c| c < 200)).count()
}

#[test]
fn the_monthly_report_over_the_api_and_as_a_pdf() {
    let cp = start("month");
    let lines = november();
    let mut s = UnixStream::connect(&cp.cp_socket).unwrap();
    s.write_all(("events\n".to_string() + &lines.join("\n") + "\n").as_bytes())
        .unwrap();
    drop(s);
    for _ in 0..200 {
        if cp.stored() == lines.len() as u64 {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    assert_eq!(cp.stored(), lines.len() as u64);
    let counts = store_counts(&cp.dir.join("cp.db"));
    let expect = [7, 4, 5, 2, 11, 6];
    assert_eq!(
        counts.iter().map(|c| c.1).collect::<Vec<_>>(),
        expect,
        "the synthetic month as stored"
    );

    // A read-only token may read it; no token may not.
    let (code, v) = {
        let r = ureq::post(&format!("{}/api/v1/tokens", cp.base))
            .set("Authorization", &format!("Bearer {}", cp.admin))
            .set("Content-Type", "application/json")
            .send_string(&json!({"name": "viewer", "role": "read-only"}).to_string())
            .unwrap();
        let code = r.status();
        let v: Value = serde_json::from_str(&r.into_string().unwrap()).unwrap();
        (code, v)
    };
    assert_eq!(code, 201);
    let viewer = v["token"].as_str().unwrap().to_string();
    assert_eq!(cp.get("/api/v1/report?month=2026-11", None).0, 401);
    let (code, ctype, page) = cp.get("/api/v1/report?month=2026-11&lang=en", Some(&viewer));
    assert_eq!(code, 200, "{page}");
    assert!(ctype.starts_with("text/html"), "{ctype}");
    assert!(page.contains("November 2026"));
    assert!(
        !page.to_ascii_lowercase().contains("<script"),
        "names from events are escaped"
    );
    assert!(page.contains("pc-&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(page.contains("Not known"), "no gateway: uptime not known");
    assert!(page.contains("No data yet"));
    let (_, _, ja) = cp.get("/api/v1/report?month=2026-11", Some(&viewer));
    assert!(ja.contains("<html lang=\"ja\">") && ja.contains("2026年11月"));

    // Bad input: 400 with the field.
    for (q, field) in [
        ("month=2026-13", "month"),
        ("month=26-11", "month"),
        ("month=2999-01", "month"),
        ("month=2026-11&lang=fr", "lang"),
        ("month=2026-11&colour=red", "query"),
    ] {
        let (code, v) = cp.json(&format!("/api/v1/report?{q}"));
        assert_eq!(code, 400, "{q}: {v}");
        assert_eq!(v["field"], field, "{q}: {v}");
    }
    // A month without data: a report that says so.
    let (code, _, empty) = cp.get("/api/v1/report?month=2026-06&lang=en", Some(&cp.admin));
    assert_eq!(code, 200);
    assert!(empty.contains("The box recorded no events for this month."));

    // Kept: once the events are gone, the finished month still reads the same.
    let (_, kept) = cp.json("/api/v1/reports");
    let months: Vec<String> = kept["reports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{} {} {}",
                r["month"].as_str().unwrap(),
                r["lang"].as_str().unwrap(),
                r["complete"]
            )
        })
        .collect();
    assert!(
        months.contains(&"2026-11 en true".to_string()),
        "{months:?}"
    );
    assert!(
        months.contains(&"2026-11 ja true".to_string()),
        "{months:?}"
    );
    let c = db::open(&cp.dir.join("cp.db")).unwrap();
    c.execute("DELETE FROM event", []).unwrap();
    let (_, _, again) = cp.get("/api/v1/report?month=2026-11&lang=en", Some(&viewer));
    assert_eq!(again, page, "the kept report, not a new empty one");

    // The CLI: HTML always; a PDF when chromium is here, else a clear refusal.
    let bin = env!("CARGO_BIN_EXE_mimamori-cp");
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("report");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();
    let ctl = |args: &[&str], chromium: Option<&str>| {
        let mut c = Command::new(bin);
        c.args([
            "ctl", "--url", &cp.base, "--token", &cp.admin, "report", "--month", "2026-11",
        ])
        .args(args);
        if let Some(p) = chromium {
            c.env("MIMAMORI_CHROMIUM", p);
        }
        c.output().unwrap()
    };
    let html = out.join("report-2026-11.html");
    let o = ctl(&["--lang", "en", "-o", html.to_str().unwrap()], None);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::read_to_string(&html).unwrap(), page);
    let o = ctl(
        &["-o", out.join("x.pdf").to_str().unwrap()],
        Some("/nonexistent/chromium"),
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("needs headless Chromium") && err.contains("-o report.html"),
        "{err}"
    );

    if mimamori_control_plane::report::pdf::chromium().is_none() {
        eprintln!(
            "SKIPPED the PDF checks: no chromium on PATH (Debian: apt-get install chromium fonts-noto-cjk)"
        );
        return;
    }
    if !tool("pdftotext") || !tool("pdftoppm") {
        eprintln!(
            "SKIPPED the PDF checks: pdftotext/pdftoppm missing (Debian: apt-get install poppler-utils)"
        );
        return;
    }
    for lang in ["en", "ja"] {
        let pdf = out.join(format!("report-2026-11-{lang}.pdf"));
        let o = ctl(&["--lang", lang, "-o", pdf.to_str().unwrap()], None);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let text = Command::new("pdftotext")
            .args(["-layout", pdf.to_str().unwrap(), "-"])
            .output()
            .unwrap();
        assert!(text.status.success());
        let text = String::from_utf8_lossy(&text.stdout).to_string();
        // Phrases with their spaces as one (the layout mode spreads some lines out).
        let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
        std::fs::write(out.join(format!("report-2026-11-{lang}.txt")), &text).unwrap();
        if lang == "en" {
            assert!(flat.contains("Monthly security report"), "{text}");
            assert!(flat.contains("November 2026"), "{text}");
            assert!(
                flat.contains("This month the box blocked 33 connections"),
                "{text}"
            );
            for (label, n) in &counts {
                let found = text.lines().any(|l| {
                    l.contains(label) && l.split_whitespace().last() == Some(&n.to_string())
                });
                assert!(found, "no line with {label:?} ending in {n}:\n{text}");
            }
            let blocked: i64 = counts
                .iter()
                .filter(|c| !c.0.contains("logged"))
                .map(|c| c.1)
                .sum();
            assert!(
                text.lines().any(|l| l.contains("Blocked in all")
                    && l.split_whitespace().last() == Some(&blocked.to_string())),
                "blocked total {blocked}:\n{text}"
            );
            assert!(text.contains("casino.test") && text.contains("phish-0.test"));
            assert!(
                flat.contains("pc-<script>alert(1)</script>"),
                "the host name as text"
            );
            assert!(text.contains("02:00:00:00:00:0a"));
        } else {
            assert!(
                flat.contains("月次セキュリティレポート"),
                "Japanese text (fonts-noto-cjk):\n{text}"
            );
            assert!(flat.contains("まだありません"));
        }
        let png = out.join(format!("report-2026-11-{lang}-p1"));
        let st = Command::new("pdftoppm")
            .args(["-png", "-r", "40", "-f", "1", "-l", "1", "-singlefile"])
            .arg(&pdf)
            .arg(&png)
            .status()
            .unwrap();
        assert!(st.success());
        let ppm = out.join(format!("report-2026-11-{lang}-p1-check"));
        let st = Command::new("pdftoppm")
            .args(["-r", "40", "-f", "1", "-l", "1", "-singlefile"])
            .arg(&pdf)
            .arg(&ppm)
            .status()
            .unwrap();
        assert!(st.success());
        let img = std::fs::read(ppm.with_extension("ppm")).unwrap();
        let n = ink(&img);
        assert!(n > 2_000, "page 1 is (nearly) blank: {n} non-white pixels");
        eprintln!(
            "{lang}: {} ({n} non-white pixels on page 1 at 40 dpi)",
            pdf.display()
        );
    }
}

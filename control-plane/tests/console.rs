//! The customer console over plain HTTP (the browser flows are scripts/e2e-console): the
//! login cookie, CSRF on every change, roles, hostile form input, names with markup in
//! the pages, and a change through the console moving the stored policy like the API.
//! No gateway runs here, so the status is "fault" and changes are stored, not applied.

mod common;

use mimamori_control_plane::{console, db, server};
use serde_json::{Value, json};
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

struct Cp {
    base: String,
    admin: String,
    cp_socket: PathBuf,
    agent: ureq::Agent,
}

fn start(name: &str) -> Cp {
    let dir = std::env::temp_dir().join(format!(
        "mimamori-console-test-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let opts = server::Options {
        db: dir.join("cp.db"),
        listen: "127.0.0.1:0".parse().unwrap(),
        gateway_socket: dir.join("gw.sock"),
        cp_socket: dir.join("cp.sock"),
        retention_days: 36_500,
        event_queue: 10_000,
        bootstrap_token_file: Some(dir.join("admin.token")),
        categories: None,
        patterns: None,
        desk: None,
        desk_patterns_every: Duration::from_secs(21_600),
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
        agent: ureq::AgentBuilder::new().redirects(0).build(),
    }
}

/// Status, the headers asked for, body.
fn answer(r: Result<ureq::Response, ureq::Error>, header: &str) -> (u16, String, String) {
    match r {
        Ok(a) | Err(ureq::Error::Status(_, a)) => {
            let h = a.all(header).join("\n");
            (a.status(), h, a.into_string().unwrap())
        }
        Err(e) => panic!("{e}"),
    }
}

impl Cp {
    fn get(&self, path: &str, token: Option<&str>) -> (u16, String, String) {
        let mut r = self.agent.get(&format!("{}{path}", self.base));
        if let Some(t) = token {
            r = r.set("Cookie", &format!("mm_token={t}"));
        }
        answer(r.call(), "location")
    }
    fn post(
        &self,
        path: &str,
        token: Option<&str>,
        form: &[(&str, &str)],
    ) -> (u16, String, String) {
        let mut r = self.agent.post(&format!("{}{path}", self.base));
        if let Some(t) = token {
            r = r.set("Cookie", &format!("mm_token={t}"));
        }
        answer(r.send_form(form), "location")
    }
    fn api(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let r = self
            .agent
            .request(method, &format!("{}{path}", self.base))
            .set("Authorization", &format!("Bearer {}", self.admin));
        let r = match body {
            Some(b) => r.send_json(b),
            None => r.call(),
        };
        let (_, _, text) = answer(r, "x");
        serde_json::from_str(&text).unwrap()
    }
    fn token(&self, name: &str, role: &str) -> String {
        self.api(
            "POST",
            "/api/v1/tokens",
            Some(json!({"name": name, "role": role})),
        )["token"]
            .as_str()
            .unwrap()
            .to_string()
    }
}

#[test]
fn login_sets_a_strict_http_only_cookie_and_refuses_unknown_tokens() {
    let cp = start("login");
    let (code, location, _) = cp.get("/console", None);
    assert_eq!((code, location.as_str()), (303, "/console/login"));
    let (code, _, page) = cp.get("/console/login", None);
    assert_eq!(code, 200);
    assert!(page.contains("name=\"token\""));

    let r = cp
        .agent
        .post(&format!("{}/console/login", cp.base))
        .send_form(&[("token", "mmk_nope")]);
    let (code, _, page) = answer(r, "set-cookie");
    assert_eq!(code, 401);
    assert!(page.contains("login-error"));
    for hostile in ["", "a b", &"x".repeat(300), "tok\u{0}en"] {
        let r = cp
            .agent
            .post(&format!("{}/console/login", cp.base))
            .send_form(&[("token", hostile)]);
        assert_eq!(answer(r, "x").0, 400, "{hostile:?}");
    }
    let r = cp
        .agent
        .post(&format!("{}/console/login", cp.base))
        .send_string("not a form");
    assert_eq!(answer(r, "x").0, 400);

    let r = cp
        .agent
        .post(&format!("{}/console/login", cp.base))
        .send_form(&[("token", &cp.admin)]);
    let (code, cookie, _) = answer(r, "set-cookie");
    assert_eq!(code, 303);
    assert!(
        cookie.contains(&format!("mm_token={}", cp.admin)),
        "{cookie}"
    );
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );

    let (code, _, page) = cp.get("/console", Some(&cp.admin));
    assert_eq!(code, 200);
    // No gateway answers here: the console says so rather than "protected".
    assert!(page.contains("data-state=\"fault\""), "{page}");
    assert!(page.contains("lang=\"ja\"") && page.contains("最近ブロックしたもの"));
    let (_, _, en) = cp.get("/console?lang=en", Some(&cp.admin));
    assert!(en.contains("lang=\"en\"") && en.contains("Recent blocks"));
    assert_eq!(cp.get("/console", Some("mmk_revoked")).0, 303);
}

#[test]
fn changes_need_the_csrf_token_and_a_role_that_may_change() {
    let cp = start("csrf");
    let v0 = cp.api("GET", "/api/v1/policy", None)["version"]
        .as_u64()
        .unwrap();
    let ok = console::csrf_of(&cp.admin);
    let form = |csrf: &'static str| {
        vec![
            ("csrf", csrf),
            ("entry", "intranet.example.test"),
            ("action", "allow"),
        ]
    };
    assert_eq!(
        cp.post("/console/exceptions", Some(&cp.admin), &form("")).0,
        403
    );
    assert_eq!(
        cp.post(
            "/console/exceptions",
            Some(&cp.admin),
            &form("0123456789abcdef0123456789abcdef")
        )
        .0,
        403
    );
    assert_eq!(
        cp.post("/console/exceptions", None, &form("x")).0,
        303,
        "no cookie: to the login page"
    );
    assert_eq!(
        cp.api("GET", "/api/v1/policy", None)["version"].as_u64(),
        Some(v0),
        "nothing stored"
    );

    let (code, location, _) = cp.post(
        "/console/exceptions",
        Some(&cp.admin),
        &[
            ("csrf", &ok),
            ("entry", "Intranet.Example.test"),
            ("action", "allow"),
        ],
    );
    // Stored, not applied: no gateway runs.
    assert_eq!(
        (code, location.as_str()),
        (303, "/console?done=exception-saved-pending")
    );
    let p = cp.api("GET", "/api/v1/policy", None);
    assert_eq!(p["version"].as_u64(), Some(v0 + 1));
    assert_eq!(
        p["doc"]["exceptions"],
        json!([{"entry": "intranet.example.test", "action": "allow"}])
    );
    let (_, _, page) = cp.get("/console", Some(&cp.admin));
    assert!(page.contains("data-entry=\"intranet.example.test\""));

    // Hostile values come back as the policy check's reason, and nothing is stored.
    for (entry, action) in [
        ("<script>alert(1)</script>", "allow"),
        ("ok.test", "explode"),
        ("", "allow"),
    ] {
        let (code, _, page) = cp.post(
            "/console/exceptions",
            Some(&cp.admin),
            &[("csrf", &ok), ("entry", entry), ("action", action)],
        );
        assert_eq!(code, 400, "{entry:?} {action:?}");
        assert!(
            page.contains("id=\"error\"") && !page.contains("<script>alert(1)"),
            "{page}"
        );
    }
    let (code, _, _) = cp.post(
        "/console/categories",
        Some(&cp.admin),
        &[
            ("csrf", &ok),
            ("category", "gambling"),
            ("action", "sometimes"),
        ],
    );
    assert_eq!(code, 400);
    let (code, _, _) = cp.post(
        "/console/release",
        Some(&cp.admin),
        &[("csrf", &ok), ("mac", "not-a-mac")],
    );
    assert_eq!(code, 400);
    assert_eq!(
        cp.api("GET", "/api/v1/policy", None)["version"].as_u64(),
        Some(v0 + 1)
    );

    let (code, location, _) = cp.post(
        "/console/exceptions/remove",
        Some(&cp.admin),
        &[("csrf", &ok), ("entry", "intranet.example.test")],
    );
    assert_eq!(
        (code, location.as_str()),
        (303, "/console?done=exception-removed-pending")
    );
    assert_eq!(
        cp.api("GET", "/api/v1/policy", None)["doc"]["exceptions"],
        json!([])
    );

    // A read-only token sees the console but may not change anything.
    let ro = cp.token("viewer", "read-only");
    assert_eq!(cp.get("/console", Some(&ro)).0, 200);
    let (code, _, page) = cp.post(
        "/console/categories",
        Some(&ro),
        &[
            ("csrf", &console::csrf_of(&ro)),
            ("category", "news"),
            ("action", "block"),
        ],
    );
    assert_eq!(code, 403);
    assert!(page.contains("read-only"));
    // Another session's CSRF token is not this one's.
    let (code, _, _) = cp.post(
        "/console/categories",
        Some(&ro),
        &[("csrf", &ok), ("category", "news"), ("action", "block")],
    );
    assert_eq!(code, 403);
}

#[test]
fn names_with_markup_are_text_in_the_page() {
    let cp = start("escape");
    let evil = "<script>alert('tok')</script>";
    let t = cp.token(evil, "customer-admin");
    let now = db::now() - 60;
    let (y, mo, d, h, mi) = mimamori_control_plane::report::aggregate::jst(now - 9 * 3600);
    let ts = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:00.000000+0000");
    let line = format!(
        r#"{{"timestamp":"{ts}","flow_id":7,"in_iface":"lan","event_type":"web","src_ip":"198.18.0.10","src_port":40000,"dest_ip":"203.0.113.5","dest_port":443,"proto":"TCP","web":{{"action":"blocked","via":"tls-sni","name":"<img src=x onerror=alert(1)>.test","category":"<b>phishing</b>","list":"t","exception":false,"threat":true,"group":"default","src_mac":"02:00:00:00:00:0a"}}}}"#
    );
    let mut s = UnixStream::connect(&cp.cp_socket).unwrap();
    s.write_all(format!("events\n{line}\n").as_bytes()).unwrap();
    drop(s);
    let mut page = String::new();
    for _ in 0..200 {
        page = cp.get("/console", Some(&t)).2;
        if page.contains("onerror") {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    assert!(
        page.contains("&lt;script&gt;alert('tok')&lt;/script&gt;"),
        "{page}"
    );
    assert!(
        page.contains("&lt;img src=x onerror=alert(1)&gt;.test"),
        "{page}"
    );
    assert!(page.contains("&lt;b&gt;phishing&lt;/b&gt;"));
    assert!(
        !page.contains("<script>alert")
            && !page.contains("<img src=x")
            && !page.contains("<b>phishing")
    );
    assert!(
        page.contains("危険なサイト"),
        "a threat block is named as such"
    );
}

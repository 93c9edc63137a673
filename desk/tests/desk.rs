//! The desk end to end in one process: a SQLite store, the CA, both listeners; boxes
//! enrol, send batches and heartbeats over real mutual TLS. The PostgreSQL run of the same
//! paths is `scripts/e2e-desk`.

use mimamori_desk::{ca, server};
use mimamori_proto::desk::{EnrolAnswer, EventAck, EventBatch, Heartbeat, Numbered};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;

struct Desk {
    dir: PathBuf,
    api: String,
    uplink: String,
    token: String,
    _rt: tokio::runtime::Runtime,
}

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("desk-it-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn start(name: &str, fault_after: i64) -> Desk {
    start_with(name, fault_after, None)
}

fn start_with(name: &str, fault_after: i64, store_max_mb: Option<u64>) -> Desk {
    let dir = temp(name);
    ca::Ca::init(
        &dir.join("ca"),
        &["127.0.0.1".into()],
        mimamori_desk::ops::now(),
    )
    .unwrap();
    let o = server::Options {
        store: format!("sqlite:{}", dir.join("desk.db").display()),
        ca_dir: dir.join("ca"),
        uplink: "127.0.0.1:0".parse().unwrap(),
        api: "127.0.0.1:0".parse().unwrap(),
        rules: None,
        smtp: None,
        mail_from: "desk <desk@desk.test>".into(),
        fault_after_secs: fault_after,
        watch_secs: 1,
        heartbeat_secs: 60,
        desk_phone: "0120-000-000".into(),
        bootstrap_token_file: Some(dir.join("admin.token")),
        store_max_mb,
        patterns_dir: None,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let running = rt.block_on(async {
        let (running, serving) = server::start(&o).await.unwrap();
        tokio::spawn(serving);
        running
    });
    let token = std::fs::read_to_string(dir.join("admin.token"))
        .unwrap()
        .trim()
        .to_string();
    Desk {
        api: format!("http://{}", running.api),
        uplink: format!("https://{}", running.uplink),
        dir,
        token,
        _rt: rt,
    }
}

fn roots(ca_pem: &Path) -> rustls::RootCertStore {
    let mut r = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca_pem).unwrap() {
        r.add(c.unwrap()).unwrap();
    }
    r
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn anonymous(d: &Desk) -> ureq::Agent {
    let cfg = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots(&d.dir.join("ca/ca.pem")))
        .with_no_client_auth();
    ureq::AgentBuilder::new().tls_config(Arc::new(cfg)).build()
}

fn as_box(d: &Desk, cert_pem: &str, key_pem: &str) -> ureq::Agent {
    let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
    let cfg = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots(&d.dir.join("ca/ca.pem")))
        .with_client_auth_cert(chain, key)
        .unwrap();
    ureq::AgentBuilder::new().tls_config(Arc::new(cfg)).build()
}

/// (status, body) of an API call with `token`.
fn call(d: &Desk, token: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let req = ureq::request(method, &format!("{}{path}", d.api))
        .set("Authorization", &format!("Bearer {token}"));
    let r = match body {
        Some(b) => req.send_json(b),
        None => req.call(),
    };
    answer(r)
}

fn answer(r: Result<ureq::Response, ureq::Error>) -> (u16, Value) {
    match r {
        Ok(r) => (r.status(), r.into_json().unwrap_or(Value::Null)),
        Err(ureq::Error::Status(code, r)) => (code, r.into_json().unwrap_or(Value::Null)),
        Err(e) => (0, json!({"transport": e.to_string()})),
    }
}

fn admin(d: &Desk, method: &str, path: &str, body: Option<Value>) -> Value {
    let (code, v) = call(d, &d.token, method, path, body);
    assert_eq!(code, 200, "{method} {path}: {v}");
    v
}

fn setup_customer(d: &Desk, customer: &str, boxes: &[&str]) {
    admin(
        d,
        "POST",
        "/api/v1/customers",
        Some(json!({"id": customer, "name": "株式会社テスト"})),
    );
    admin(
        d,
        "POST",
        &format!("/api/v1/customers/{customer}/contacts"),
        Some(json!({"name": "担当", "email": format!("it@{customer}.test")})),
    );
    let site = format!("{customer}-site");
    admin(
        d,
        "POST",
        "/api/v1/sites",
        Some(json!({"id": site, "customer_id": customer, "name": "本社", "area": "west"})),
    );
    for b in boxes {
        admin(
            d,
            "POST",
            "/api/v1/boxes",
            Some(
                json!({"id": b, "customer_id": customer, "site_id": site, "name": b, "plan": "professional", "kind": "rental"}),
            ),
        );
    }
}

/// Enrols `box_id`: (certificate, key).
fn enrol(d: &Desk, box_id: &str) -> (String, String) {
    let code = admin(
        d,
        "POST",
        &format!("/api/v1/boxes/{box_id}/enrol-code"),
        None,
    )["code"]
        .as_str()
        .unwrap()
        .to_string();
    let (key, csr) = ca::key_and_request("whatever").unwrap();
    let r = anonymous(d)
        .post(&format!("{}/v1/enrol", d.uplink))
        .send_json(json!({"code": code, "csr_pem": csr, "version": "test"}));
    let (code_status, v) = answer(r);
    assert_eq!(code_status, 200, "{v}");
    let a: EnrolAnswer = serde_json::from_value(v).unwrap();
    assert_eq!(a.box_id, box_id);
    (a.cert_pem, key)
}

fn eve_now() -> String {
    let t = mimamori_desk::ops::now();
    let j = mimamori_desk::clock::jst(t - 9 * 3600);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:00.000000+0000",
        j.year, j.month, j.day, j.hour, j.minute
    )
}

fn quarantine(mac: &str, host: &str) -> Value {
    json!({"timestamp": eve_now(), "event_type": "host", "in_iface": "lan", "src_ip": "198.18.0.9",
           "dest_ip": "198.18.1.1", "proto": "UDP",
           "host": {"state": "quarantined", "mac": mac, "hostname": host, "client_id": "", "callbacks": 50}})
}

fn send(agent: &ureq::Agent, d: &Desk, batch: &EventBatch) -> (u16, Value) {
    answer(
        agent
            .post(&format!("{}/v1/events", d.uplink))
            .send_json(batch),
    )
}

fn batch(box_id: &str, from: u64, events: Vec<Value>) -> EventBatch {
    EventBatch {
        box_id: box_id.into(),
        stream: "s1".into(),
        events: events
            .into_iter()
            .enumerate()
            .map(|(i, event)| Numbered {
                seq: from + i as u64,
                event,
            })
            .collect(),
    }
}

#[test]
fn events_are_stored_once_and_become_incidents_and_mail() {
    let d = start("flow", 300);
    setup_customer(&d, "c-one", &["box-1", "box-2"]);
    let (cert, key) = enrol(&d, "box-1");
    let agent = as_box(&d, &cert, &key);
    let b = batch(
        "box-1",
        1,
        vec![
            quarantine("02:00:5e:00:00:01", "keiri-pc"),
            quarantine("02:00:5e:00:00:01", "keiri-pc"),
        ],
    );
    let (code, v) = send(&agent, &d, &b);
    assert_eq!(code, 200, "{v}");
    let ack: EventAck = serde_json::from_value(v).unwrap();
    assert_eq!((ack.acked, ack.stored, ack.duplicates), (2, 2, 0));
    // The same batch again (a resend after a lost answer): nothing new.
    let ack: EventAck = serde_json::from_value(send(&agent, &d, &b).1).unwrap();
    assert_eq!((ack.acked, ack.stored, ack.duplicates), (2, 0, 2));
    // Overlapping: only the new number is stored.
    let b2 = batch(
        "box-1",
        2,
        vec![
            quarantine("02:00:5e:00:00:01", "keiri-pc"),
            json!({"no": "type"}),
        ],
    );
    let ack: EventAck = serde_json::from_value(send(&agent, &d, &b2).1).unwrap();
    assert_eq!(
        (ack.acked, ack.stored, ack.duplicates, ack.rejected),
        (3, 0, 1, 1)
    );
    // Two detections of one PC fold into one high incident, mailed to the contact.
    let incidents = admin(&d, "GET", "/api/v1/incidents?box_id=box-1", None);
    let list = incidents.as_array().unwrap();
    assert_eq!(list.len(), 1, "{incidents}");
    assert_eq!(list[0]["count"], 2);
    assert_eq!(list[0]["severity"], "high");
    let id = list[0]["id"].as_i64().unwrap();
    let detail = admin(&d, "GET", &format!("/api/v1/incidents/{id}"), None);
    let mails = detail["notifications"].as_array().unwrap();
    assert_eq!(mails.len(), 1, "{detail}");
    assert_eq!(mails[0]["to"], "it@c-one.test");
    // A high incident is a phone follow-up too (offered only in the desk's hours).
    let calls = admin(&d, "GET", "/api/v1/calls", None);
    assert_eq!(calls["waiting"], 1, "{calls}");
    // The life cycle is enforced and audited.
    let (code, v) = call(
        &d,
        &d.token,
        "POST",
        &format!("/api/v1/incidents/{id}/actions"),
        Some(json!({"action": "escalate-on-site"})),
    );
    assert_eq!(code, 409, "{v}");
    for a in [
        "triage",
        "notify-customer",
        "start-remote-removal",
        "escalate-on-site",
        "close:remediated",
    ] {
        let (code, v) = call(
            &d,
            &d.token,
            "POST",
            &format!("/api/v1/incidents/{id}/actions"),
            Some(json!({"action": a, "note": "n"})),
        );
        assert_eq!(code, 200, "{a}: {v}");
    }
    let detail = admin(&d, "GET", &format!("/api/v1/incidents/{id}"), None);
    assert_eq!(detail["state"], "closed:remediated");
    assert!(detail["audit"].as_array().unwrap().len() >= 6, "{detail}");

    // A batch for another box with this certificate: refused, nothing stored.
    let (code, v) = send(
        &agent,
        &d,
        &batch("box-2", 1, vec![quarantine("02:00:5e:00:00:02", "x")]),
    );
    assert_eq!(code, 403, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("certificate of box box-1"),
        "{v}"
    );
    assert_eq!(
        admin(&d, "GET", "/api/v1/boxes/box-2", None)["acked_seq"],
        0
    );
    // Numbers that do not increase: refused whole.
    let mut bad = batch(
        "box-1",
        10,
        vec![
            quarantine("02:00:5e:00:00:01", "a"),
            quarantine("02:00:5e:00:00:01", "b"),
        ],
    );
    bad.events[1].seq = 9;
    assert_eq!(send(&agent, &d, &bad).0, 422);
    assert_eq!(
        admin(&d, "GET", "/api/v1/boxes/box-1", None)["acked_seq"],
        3
    );
    // No certificate: refused.
    let (code, _) = answer(
        anonymous(&d)
            .post(&format!("{}/v1/events", d.uplink))
            .send_json(&b),
    );
    assert_eq!(code, 403);
    // Revoked: refused.
    admin(&d, "POST", "/api/v1/boxes/box-1/revoke", None);
    let (code, v) = send(
        &agent,
        &d,
        &batch("box-1", 4, vec![quarantine("02:00:5e:00:00:01", "a")]),
    );
    assert_eq!(code, 403);
    assert!(v["error"].as_str().unwrap().contains("revoked"), "{v}");
}

#[test]
fn certificates_from_elsewhere_or_expired_fail_the_handshake() {
    let d = start("certs", 300);
    setup_customer(&d, "c-two", &["box-9"]);
    // Signed by the desk's CA but expired yesterday.
    let ca = ca::Ca::load(&d.dir.join("ca")).unwrap();
    let (key, csr) = ca::key_and_request("box-9").unwrap();
    let now = mimamori_desk::ops::now();
    let old = ca
        .issue_box(&csr, "box-9", now - 3 * 86_400, now - 86_400)
        .unwrap();
    let (code, v) = answer(
        as_box(&d, &old.cert_pem, &key)
            .get(&format!("{}/v1/whoami", d.uplink))
            .call(),
    );
    assert_eq!(code, 0, "expired certificate accepted: {v}");
    // From another CA altogether.
    let other = temp("other-ca");
    let foreign = ca::Ca::init(&other.join("ca"), &["127.0.0.1".into()], now).unwrap();
    let forged = foreign
        .issue_box(&csr, "box-9", now - 60, now + 86_400)
        .unwrap();
    let (code, _) = answer(
        as_box(&d, &forged.cert_pem, &key)
            .get(&format!("{}/v1/whoami", d.uplink))
            .call(),
    );
    assert_eq!(code, 0, "a foreign CA's certificate was accepted");
    // A valid certificate the desk never recorded (not from an enrolment): refused.
    let stray = ca.issue_box(&csr, "box-9", now - 60, now + 86_400).unwrap();
    let (code, v) = answer(
        as_box(&d, &stray.cert_pem, &key)
            .get(&format!("{}/v1/whoami", d.uplink))
            .call(),
    );
    assert_eq!(code, 403, "{v}");
    // Enrolment codes: used once.
    let code_text = admin(&d, "POST", "/api/v1/boxes/box-9/enrol-code", None)["code"]
        .as_str()
        .unwrap()
        .to_string();
    let ask = json!({"code": code_text, "csr_pem": csr, "version": "t"});
    assert_eq!(
        answer(
            anonymous(&d)
                .post(&format!("{}/v1/enrol", d.uplink))
                .send_json(&ask)
        )
        .0,
        200
    );
    assert_eq!(
        answer(
            anonymous(&d)
                .post(&format!("{}/v1/enrol", d.uplink))
                .send_json(&ask)
        )
        .0,
        403
    );
    let (code, v) = answer(
        anonymous(&d)
            .post(&format!("{}/v1/enrol", d.uplink))
            .send_json(json!({"code": "X", "csr_pem": "junk", "version": "t"})),
    );
    assert_eq!(code, 403, "{v}");
}

#[test]
fn a_silent_box_becomes_a_fault_and_its_heartbeat_closes_it() {
    let d = start("fault", 10);
    setup_customer(&d, "c-three", &["box-f"]);
    let (cert, key) = enrol(&d, "box-f");
    let agent = as_box(&d, &cert, &key);
    let hb = Heartbeat {
        box_id: "box-f".into(),
        health: vec!["ok".into()],
        ..Heartbeat::default()
    };
    let (code, v) = answer(
        agent
            .post(&format!("{}/v1/heartbeat", d.uplink))
            .send_json(&hb),
    );
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["tier"], "professional", "the plan drives the box: {v}");
    // Silent past the threshold (10 s; the watcher looks every second).
    let mut status = Value::Null;
    for _ in 0..150 {
        status = admin(&d, "GET", "/api/v1/boxes/box-f", None)["status"].clone();
        if status == "fault" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(status, "fault");
    let t = admin(&d, "GET", "/api/v1/tickets?kind=fault", None);
    assert_eq!(t.as_array().unwrap().len(), 1, "{t}");
    assert!(t[0]["dispatch_at"].as_i64().is_some(), "{t}");
    answer(
        agent
            .post(&format!("{}/v1/heartbeat", d.uplink))
            .send_json(&hb),
    );
    assert_eq!(
        admin(&d, "GET", "/api/v1/boxes/box-f", None)["status"],
        "connected"
    );
    let t = admin(&d, "GET", "/api/v1/tickets?kind=fault", None);
    assert_eq!(t[0]["state"], "closed", "{t}");
    let id = t[0]["id"].as_i64().unwrap();
    let detail = admin(&d, "GET", &format!("/api/v1/tickets/{id}"), None);
    assert!(
        detail["messages"].to_string().contains("Heartbeat resumed"),
        "{detail}"
    );
    let mails = admin(&d, "GET", "/api/v1/notifications", None);
    assert_eq!(
        mails.as_array().unwrap().len(),
        2,
        "fault and recovery mails: {mails}"
    );
}

#[test]
fn customers_see_only_their_own_and_operators_book_visits_in_quota() {
    let d = start("rbac", 300);
    setup_customer(&d, "c-a", &["box-a1"]);
    setup_customer(&d, "c-b", &["box-b1"]);
    let tok = admin(
        &d,
        "POST",
        "/api/v1/tokens",
        Some(json!({"name": "a-user", "role": "customer", "customer_id": "c-a"})),
    )["token"]
        .as_str()
        .unwrap()
        .to_string();
    let (code, v) = call(&d, &tok, "GET", "/api/v1/boxes", None);
    assert_eq!(code, 200);
    assert_eq!(v.as_array().unwrap().len(), 1, "{v}");
    assert_eq!(call(&d, &tok, "GET", "/api/v1/boxes/box-b1", None).0, 404);
    assert_eq!(
        call(&d, &tok, "POST", "/api/v1/boxes/box-a1/revoke", None).0,
        403
    );
    assert_eq!(
        call(
            &d,
            &tok,
            "POST",
            "/api/v1/customers",
            Some(json!({"id": "x", "name": "x"}))
        )
        .0,
        403
    );
    assert_eq!(call(&d, "nope", "GET", "/api/v1/boxes", None).0, 403);
    // A customer question, linked to the box.
    let (code, v) = call(
        &d,
        &tok,
        "POST",
        "/api/v1/tickets",
        Some(
            json!({"box_id": "box-a1", "subject": "感染したかもしれません", "body": "怪しいメールの添付を開きました"}),
        ),
    );
    assert_eq!(code, 200, "{v}");
    let (code, _) = call(
        &d,
        &tok,
        "POST",
        "/api/v1/tickets",
        Some(json!({"box_id": "box-b1", "subject": "x", "body": "y"})),
    );
    assert_eq!(code, 404, "another customer's box");
    // Visits: Professional, west area (Mon–Sat 9:00–17:00), 3 PCs a month.
    let monday_10 = mimamori_desk::clock::unix_of_jst(2027, 1, 18, 10, 0).unwrap();
    let (code, v) = call(
        &d,
        &d.token,
        "POST",
        "/api/v1/boxes/box-a1/visits",
        Some(json!({"start": monday_10, "pcs": 4})),
    );
    assert_eq!(code, 409, "{v}");
    let (code, v) = call(
        &d,
        &d.token,
        "POST",
        "/api/v1/boxes/box-a1/visits",
        Some(json!({"start": monday_10, "pcs": 3})),
    );
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["free"], true);
    let (code, v) = call(
        &d,
        &d.token,
        "POST",
        "/api/v1/boxes/box-a1/visits",
        Some(json!({"start": monday_10 + 86_400, "pcs": 1})),
    );
    assert_eq!(code, 409, "second visit in a month: {v}");
    let sunday = mimamori_desk::clock::unix_of_jst(2027, 2, 21, 10, 0).unwrap();
    let (code, v) = call(
        &d,
        &d.token,
        "POST",
        "/api/v1/boxes/box-a1/visits",
        Some(json!({"start": sunday, "pcs": 1})),
    );
    assert_eq!(code, 409, "west area on a Sunday: {v}");
    // Bad bodies name the field.
    let (code, v) = call(
        &d,
        &d.token,
        "POST",
        "/api/v1/boxes",
        Some(
            json!({"id": "b", "customer_id": "c-a", "site_id": "c-a-site", "name": "n", "plan": "gold", "kind": "rental"}),
        ),
    );
    assert_eq!(code, 422, "{v}");
    assert!(v["error"].as_str().unwrap().contains("plan"), "{v}");
    let doc = admin(&d, "GET", "/api/v1/openapi.json", None);
    assert!(doc["paths"]["/v1/events"]["post"].is_object());
}

#[test]
fn a_full_store_refuses_the_batch_whole() {
    // A size cap on the SQLite file stands in for a full disk: the same error (SQLITE_FULL).
    let d = start_with("full", 300, Some(1));
    setup_customer(&d, "c-full", &["box-full"]);
    let (cert, key) = enrol(&d, "box-full");
    let agent = as_box(&d, &cert, &key);
    let big: Vec<Value> = (0..2000)
        .map(|i| json!({"timestamp": eve_now(), "event_type": "web", "pad": "x".repeat(2000), "i": i}))
        .collect();
    let (code, v) = send(&agent, &d, &batch("box-full", 1, big));
    assert_eq!(code, 507, "{v}");
    let b = admin(&d, "GET", "/api/v1/boxes/box-full", None);
    assert_eq!(b["acked_seq"], 0, "nothing of the batch was kept: {b}");
    // A small batch still fits: the desk keeps working.
    let (code, v) = send(
        &agent,
        &d,
        &batch("box-full", 1, vec![quarantine("02:00:5e:00:00:09", "pc")]),
    );
    assert_eq!(code, 200, "{v}");
}

#[test]
fn contracts_answer_their_charges_and_drive_the_box() {
    let d = start("contracts", 300);
    setup_customer(&d, "c-k", &["box-r", "box-p"]);
    let work = json!({"installer": "provider", "job": "J-1"});
    let v = admin(
        &d,
        "POST",
        "/api/v1/boxes/box-r/contract",
        Some(json!({"kind": "rental", "plan": "standard", "start": "2026-04-01", "work": work})),
    );
    assert!(!v["lines"].as_array().unwrap().is_empty(), "{v}");
    assert!(v["lines"].to_string().contains("clause"), "{v}");
    let (code, v) = call(
        &d,
        &d.token,
        "POST",
        "/api/v1/boxes/box-r/contract",
        Some(json!({"kind": "rental", "plan": "light", "start": "2026-04-01", "work": work})),
    );
    assert_eq!(code, 409, "a second contract: {v}");
    // An upgrade within 24 months: allowed, the initial fees again, the box follows.
    let v = admin(
        &d,
        "POST",
        "/api/v1/boxes/box-r/contract/changes",
        Some(
            json!({"date": "2026-09-10", "event": "plan-change", "to": "professional", "work": {"installer": "provider", "job": "J-2"}}),
        ),
    );
    assert!(v["total"].as_u64().unwrap() > 0, "{v}");
    assert_eq!(
        admin(&d, "GET", "/api/v1/boxes/box-r", None)["plan"],
        "professional"
    );
    // Dates out of order are refused, naming why.
    let (code, v) = call(
        &d,
        &d.token,
        "POST",
        "/api/v1/boxes/box-r/contract/changes",
        Some(json!({"date": "2026-05-01", "event": "cancellation"})),
    );
    assert_eq!(code, 409, "{v}");
    // A purchased box cannot change plan: the clause is named.
    admin(
        &d,
        "POST",
        "/api/v1/boxes/box-p/contract",
        Some(
            json!({"kind": "purchase", "plan": "light", "repair_24h": true, "start": "2026-04-01", "work": work}),
        ),
    );
    let (code, v) = call(
        &d,
        &d.token,
        "POST",
        "/api/v1/boxes/box-p/contract/changes",
        Some(json!({"date": "2026-06-01", "event": "plan-change", "to": "standard", "work": work})),
    );
    assert_eq!(code, 409, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("purchased box cannot change plan"),
        "{v}"
    );
    let c = admin(&d, "GET", "/api/v1/boxes/box-p/contract", None);
    // 60 months counted from the start month: the licence ends as April 2031 begins.
    assert_eq!(c["licence_end"], "2031-04-01", "{c}");
    // The month's statement over both boxes.
    let s = admin(
        &d,
        "GET",
        "/api/v1/customers/c-k/statement?month=2026-10",
        None,
    );
    assert!(s["total"].as_u64().unwrap() > 0, "{s}");
    assert!(
        s["lines"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["box_id"] == "box-r"),
        "{s}"
    );
    let (code, _) = call(
        &d,
        &d.token,
        "GET",
        "/api/v1/customers/c-k/statement?month=2026-13",
        None,
    );
    assert_eq!(code, 422);
    // The box learns its plan at its heartbeat.
    let (cert, key) = enrol(&d, "box-r");
    let hb = Heartbeat {
        box_id: "box-r".into(),
        ..Heartbeat::default()
    };
    let (_, v) = answer(
        as_box(&d, &cert, &key)
            .post(&format!("{}/v1/heartbeat", d.uplink))
            .send_json(&hb),
    );
    assert_eq!(v["tier"], "professional", "{v}");
}

#[test]
fn published_bundles_are_listed_and_fetched_by_enrolled_boxes_only() {
    let d = start("patterns", 300);
    setup_customer(&d, "c-p", &["box-p1"]);
    let bytes = b"MMBUNDLE-not-checked-by-the-desk".to_vec();
    let post = |version: u64, body: &[u8], token: &str| {
        answer(
            ureq::post(&format!(
                "{}/api/v1/patterns/rules?version={version}",
                d.api
            ))
            .set("Authorization", &format!("Bearer {token}"))
            .send_bytes(body),
        )
    };
    assert_eq!(post(5, &bytes, &d.token).0, 200);
    assert_eq!(post(5, &bytes, &d.token).0, 409, "same version again");
    assert_eq!(post(4, &bytes, &d.token).0, 409, "older version");
    assert_eq!(post(6, b"", &d.token).0, 422, "empty bundle");
    let op = admin(
        &d,
        "POST",
        "/api/v1/tokens",
        Some(json!({"name": "op", "role": "desk-operator"})),
    )["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(post(6, &bytes, &op).0, 403, "operators do not publish");
    let (cert, key) = enrol(&d, "box-p1");
    let agent = as_box(&d, &cert, &key);
    let (code, list) = answer(agent.get(&format!("{}/v1/patterns", d.uplink)).call());
    assert_eq!(code, 200);
    assert_eq!(list[0]["version"], 5, "{list}");
    let got = agent
        .get(&format!("{}/v1/patterns/rules/5", d.uplink))
        .call()
        .unwrap();
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut got.into_reader(), &mut body).unwrap();
    assert_eq!(body, bytes);
    assert_eq!(
        answer(
            agent
                .get(&format!("{}/v1/patterns/rules/9", d.uplink))
                .call()
        )
        .0,
        404
    );
    assert_eq!(
        answer(
            anonymous(&d)
                .get(&format!("{}/v1/patterns", d.uplink))
                .call()
        )
        .0,
        403
    );
}

#[test]
fn a_boxs_monthly_report_is_kept_and_mailed_once_per_language() {
    let d = start("reports", 300);
    setup_customer(&d, "c-r", &["box-r1"]);
    admin(
        &d,
        "POST",
        "/api/v1/customers/c-r/contacts",
        Some(json!({"name": "Ann", "email": "ann@c-r.test", "lang": "en"})),
    );
    let (cert, key) = enrol(&d, "box-r1");
    let agent = as_box(&d, &cert, &key);
    let up = |path: &str, body: &[u8]| {
        answer(agent.post(&format!("{}{path}", d.uplink)).send_bytes(body))
    };
    assert_eq!(
        up(
            "/v1/reports/2026-11/ja/html",
            "<html>11月</html>".as_bytes()
        )
        .0,
        200
    );
    assert_eq!(up("/v1/reports/2026-11/ja/pdf", b"not a pdf").0, 422);
    assert_eq!(up("/v1/reports/2026-13/ja/html", b"x").0, 422);
    assert_eq!(up("/v1/reports/2026-11/fr/html", b"x").0, 422);
    let (code, v) = up("/v1/reports/2026-11/ja/done", b"");
    assert_eq!((code, v["mails"].as_u64()), (200, Some(1)), "{v}");
    assert_eq!(
        up("/v1/reports/2026-11/ja/done", b"").1["mails"],
        0,
        "mailed once"
    );
    assert_eq!(
        up("/v1/reports/2026-11/en/done", b"").0,
        404,
        "no English rendering yet"
    );
    let mails = admin(&d, "GET", "/api/v1/notifications", None);
    let report: Vec<_> = mails
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["kind"] == "report")
        .collect();
    assert_eq!(report.len(), 1, "{mails}");
    assert_eq!(report[0]["to"], "it@c-r.test");
    assert!(
        report[0]["subject"]
            .as_str()
            .unwrap()
            .contains("2026年11月"),
        "{mails}"
    );
    let kept = admin(&d, "GET", "/api/v1/boxes/box-r1/reports", None);
    assert_eq!(kept.as_array().unwrap().len(), 1, "{kept}");
    let html = ureq::get(&format!(
        "{}/api/v1/boxes/box-r1/reports/2026-11/ja/html",
        d.api
    ))
    .set("Authorization", &format!("Bearer {}", d.token))
    .call()
    .unwrap()
    .into_string()
    .unwrap();
    assert!(html.contains("11月"));
}

#[test]
fn hourly_counts_are_replaced_when_sent_again() {
    let d = start("hourly", 300);
    setup_customer(&d, "c-h", &["box-h1", "box-h2"]);
    let (cert, key) = enrol(&d, "box-h1");
    let agent = as_box(&d, &cert, &key);
    let send = |box_id: &str, hour: i64, count: i64| {
        answer(agent.post(&format!("{}/v1/hourly", d.uplink)).send_json(json!({
            "box_id": box_id,
            "hours": [{"hour": hour, "event_type": "flow", "action": "allow", "count": count},
                      {"hour": hour, "event_type": "alert", "action": null, "count": 2}],
        })))
    };
    let hour = 1_796_000_400; // an hour start
    assert_eq!(send("box-h1", hour, 10).0, 200);
    assert_eq!(send("box-h1", hour, 15).0, 200);
    assert_eq!(send("box-h2", hour, 1).0, 403, "another box's counts");
    assert_eq!(send("box-h1", hour + 5, 1).0, 422, "not an hour start");
    let v = admin(
        &d,
        "GET",
        &format!("/api/v1/boxes/box-h1/hourly?from={hour}&to={}", hour + 3600),
        None,
    );
    let flows: Vec<_> = v
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["event_type"] == "flow")
        .collect();
    assert_eq!(flows.len(), 1, "{v}");
    assert_eq!(flows[0]["count"], 15);
}

//! The desk in one process for the integration tests: a SQLite store, the CA, both
//! listeners, and clients that speak to them as a box or an operator over real TLS.
#![allow(dead_code)]

use mimamori_desk::{ca, server};
use mimamori_proto::desk::{EnrolAnswer, EventBatch, Numbered};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub struct Desk {
    pub dir: PathBuf,
    pub api: String,
    pub uplink: String,
    pub token: String,
    pub _rt: tokio::runtime::Runtime,
}

pub fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("desk-it-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub fn start(name: &str, fault_after: i64) -> Desk {
    start_with(name, fault_after, None)
}

pub fn start_with(name: &str, fault_after: i64, store_max_mb: Option<u64>) -> Desk {
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

pub fn roots(ca_pem: &Path) -> rustls::RootCertStore {
    let mut r = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca_pem).unwrap() {
        r.add(c.unwrap()).unwrap();
    }
    r
}

pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

pub fn anonymous(d: &Desk) -> ureq::Agent {
    let cfg = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots(&d.dir.join("ca/ca.pem")))
        .with_no_client_auth();
    ureq::AgentBuilder::new().tls_config(Arc::new(cfg)).build()
}

pub fn as_box(d: &Desk, cert_pem: &str, key_pem: &str) -> ureq::Agent {
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
pub fn call(d: &Desk, token: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let req = ureq::request(method, &format!("{}{path}", d.api))
        .set("Authorization", &format!("Bearer {token}"));
    let r = match body {
        Some(b) => req.send_json(b),
        None => req.call(),
    };
    answer(r)
}

pub fn answer(r: Result<ureq::Response, ureq::Error>) -> (u16, Value) {
    match r {
        Ok(r) => (r.status(), r.into_json().unwrap_or(Value::Null)),
        Err(ureq::Error::Status(code, r)) => (code, r.into_json().unwrap_or(Value::Null)),
        Err(e) => (0, json!({"transport": e.to_string()})),
    }
}

pub fn admin(d: &Desk, method: &str, path: &str, body: Option<Value>) -> Value {
    let (code, v) = call(d, &d.token, method, path, body);
    assert_eq!(code, 200, "{method} {path}: {v}");
    v
}

pub fn setup_customer(d: &Desk, customer: &str, boxes: &[&str]) {
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
pub fn enrol(d: &Desk, box_id: &str) -> (String, String) {
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

pub fn eve_now() -> String {
    let t = mimamori_desk::ops::now();
    let j = mimamori_desk::clock::jst(t - 9 * 3600);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:00.000000+0000",
        j.year, j.month, j.day, j.hour, j.minute
    )
}

pub fn quarantine(mac: &str, host: &str) -> Value {
    json!({"timestamp": eve_now(), "event_type": "host", "in_iface": "lan", "src_ip": "198.18.0.9",
           "dest_ip": "198.18.1.1", "proto": "UDP",
           "host": {"state": "quarantined", "mac": mac, "hostname": host, "client_id": "", "callbacks": 50}})
}

pub fn send(agent: &ureq::Agent, d: &Desk, batch: &EventBatch) -> (u16, Value) {
    answer(
        agent
            .post(&format!("{}/v1/events", d.uplink))
            .send_json(batch),
    )
}

pub fn batch(box_id: &str, from: u64, events: Vec<Value>) -> EventBatch {
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

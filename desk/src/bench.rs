//! `mimamori-desk bench-load`: a desk in this process on the given store, a fleet of boxes
//! in it, and client threads that send heartbeats and event batches over mutual TLS at the
//! fleet's rates for a bounded time. Measures events stored per second, the time from a
//! batch leaving the box to its acknowledgement (stored and committed), and checks at the
//! end that the store holds exactly what was acknowledged.
//!
//! The fleet has `boxes` rows in the store (100,000 by default) but `identities` of them hold
//! certificates and connections: one machine cannot keep 100,000 TLS connections, and the
//! desk's work per request does not depend on which box sends it. Heartbeats come at the
//! fleet's rate (one a minute per box) spread over the identities.

use crate::ca;
use crate::ops::now;
use crate::params;
use crate::server;
use crate::store::{RowExt, Store, StoreError, Value};
use anyhow::{Context, bail};
use mimamori_proto::desk::{EventAck, EventBatch, Heartbeat, Numbered};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct BenchOptions {
    pub store: String,
    pub dir: PathBuf,
    pub boxes: u32,
    pub identities: u32,
    pub seconds: u64,
    /// Events per second the fleet offers (in batches).
    pub events_per_sec: u64,
    pub batch: usize,
    pub threads: usize,
}

#[derive(Debug)]
pub struct BenchReport {
    pub backend: &'static str,
    pub seconds: f64,
    pub events_acked: u64,
    pub events_per_sec: f64,
    pub heartbeats: u64,
    pub heartbeats_per_sec: f64,
    pub batches: u64,
    pub errors: u64,
    pub latency_ms: (f64, f64, f64, f64),
    pub stored: u64,
    pub lost: i64,
}

struct Identity {
    box_id: String,
    agent: ureq::Agent,
}

fn event(i: u64, t: &str) -> serde_json::Value {
    // An office's typical desk-bound event: a blocked site, with the PC's MAC.
    serde_json::json!({
        "timestamp": t, "flow_id": i, "in_iface": "lan", "event_type": "web",
        "src_ip": format!("198.18.{}.{}", (i >> 8) & 0xff, i & 0xff), "src_port": 40000 + (i % 20000),
        "dest_ip": "198.19.0.10", "dest_port": 443, "proto": "TCP",
        "web": {"action": "block", "via": "sni", "name": format!("ads{}.example.test", i % 5000),
                "category": "ads", "list": "ads", "threat": false, "group": "default",
                "src_mac": format!("02:00:5e:{:02x}:{:02x}:{:02x}", (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff)},
    })
}

fn eve_time(unix: i64) -> String {
    let j = crate::clock::jst(unix - crate::clock::JST_OFFSET_SECS);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:00.000000+0000",
        j.year, j.month, j.day, j.hour, j.minute
    )
}

/// Creates the fleet: one customer and site, `boxes` box rows, certificates for the first
/// `identities`.
fn fleet(
    store: &Store,
    ca: &ca::Ca,
    o: &BenchOptions,
) -> anyhow::Result<Vec<(String, String, String)>> {
    let t = now();
    store.blocking(|c| {
        c.exec("INSERT INTO customer (id, name, created) VALUES ('bench', 'bench', ?)", params![t])?;
        c.exec("INSERT INTO site (id, customer_id, name, area, island, vpn) VALUES ('bench', 'bench', 'bench', 'east', 0, 0)", &[])?;
        Ok::<_, StoreError>(())
    })?;
    for chunk in (0..o.boxes).collect::<Vec<_>>().chunks(500) {
        store.blocking(|c| {
            let mut sql = String::from(
                "INSERT INTO box (id, customer_id, site_id, name, plan, kind, repair_24h, created, acked_seq, gaps, status) VALUES ",
            );
            let mut v: Vec<Value> = Vec::new();
            for (k, i) in chunk.iter().enumerate() {
                sql.push_str(if k == 0 { "(?, 'bench', 'bench', ?, 'standard', 'rental', 0, ?, 0, 0, 'not-enrolled')" } else { ", (?, 'bench', 'bench', ?, 'standard', 'rental', 0, ?, 0, 0, 'not-enrolled')" });
                let id = format!("b{i:06}");
                v.extend([Value::from(id.clone()), Value::from(id), Value::Int(t)]);
            }
            c.exec(&sql, &v)?;
            Ok::<_, StoreError>(())
        })?;
    }
    let mut ids = Vec::new();
    for i in 0..o.identities.min(o.boxes) {
        let box_id = format!("b{i:06}");
        let (key, csr) = ca::key_and_request(&box_id)?;
        let issued = ca.issue_box(&csr, &box_id, t - 300, t + 86_400)?;
        store.blocking(|c| {
            c.exec(
                "UPDATE box SET cert_serial = ?, enrolled = ?, status = 'connected', last_seen = ? WHERE id = ?",
                params![&issued.serial, t, t, &box_id],
            )
        })?;
        ids.push((box_id, issued.cert_pem, key));
    }
    Ok(ids)
}

fn agent_for(ca_pem: &[u8], cert: &str, key: &str) -> anyhow::Result<ureq::Agent> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(c?)?;
    }
    let chain = CertificateDer::pem_slice_iter(cert.as_bytes()).collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_slice(key.as_bytes())?;
    let cfg = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)?;
    Ok(ureq::AgentBuilder::new()
        .tls_config(Arc::new(cfg))
        .timeout(Duration::from_secs(30))
        .max_idle_connections_per_host(1)
        .build())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

pub fn run(o: &BenchOptions) -> anyhow::Result<BenchReport> {
    if o.batch == 0
        || o.batch > mimamori_proto::desk::BATCH_MAX
        || o.threads == 0
        || o.identities == 0
    {
        bail!(
            "--batch 1..{}, --threads and --identities at least 1",
            mimamori_proto::desk::BATCH_MAX
        );
    }
    let _ = std::fs::remove_dir_all(&o.dir);
    std::fs::create_dir_all(&o.dir).with_context(|| format!("{}", o.dir.display()))?;
    let ca_dir = o.dir.join("ca");
    let ca = ca::Ca::init(&ca_dir, &["127.0.0.1".into()], now())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let opts = server::Options {
        store: o.store.clone(),
        ca_dir: ca_dir.clone(),
        uplink: "127.0.0.1:0".parse()?,
        api: "127.0.0.1:0".parse()?,
        rules: None,
        smtp: None,
        mail_from: "bench <bench@desk.test>".into(),
        fault_after_secs: 3600,
        watch_secs: 3600,
        heartbeat_secs: 60,
        desk_phone: "0".into(),
        bootstrap_token_file: None,
        store_max_mb: None,
        patterns_dir: None,
    };
    let running = rt.block_on(async {
        let (running, serving) = server::start(&opts).await?;
        tokio::spawn(serving);
        anyhow::Ok(running)
    })?;
    let store = running.app.store.clone();
    let t0 = Instant::now();
    let ids = fleet(&store, &ca, o)?;
    eprintln!(
        "bench-load: {} boxes ({} with certificates) in {:.1} s on {}",
        o.boxes,
        ids.len(),
        t0.elapsed().as_secs_f64(),
        store.backend().name()
    );
    let ca_pem = ca.cert_pem().as_bytes().to_vec();
    let url = format!("https://{}", running.uplink);
    let mut per_thread: Vec<Vec<Identity>> = (0..o.threads).map(|_| Vec::new()).collect();
    for (i, (box_id, cert, key)) in ids.into_iter().enumerate() {
        per_thread[i % o.threads].push(Identity {
            box_id,
            agent: agent_for(&ca_pem, &cert, &key)?,
        });
    }
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicU64::new(0));
    let heartbeats = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let batch_every =
        Duration::from_secs_f64(o.batch as f64 * o.threads as f64 / o.events_per_sec.max(1) as f64);
    // The fleet's heartbeats: boxes / 60 a second.
    let hb_every = Duration::from_secs_f64(60.0 * o.threads as f64 / o.boxes.max(1) as f64);
    let start = Instant::now();
    let deadline = start + Duration::from_secs(o.seconds);
    let mut handles = Vec::new();
    for ids in per_thread.into_iter().filter(|v| !v.is_empty()) {
        let (url, stop, acked, heartbeats, errors) = (
            url.clone(),
            stop.clone(),
            acked.clone(),
            heartbeats.clone(),
            errors.clone(),
        );
        let batch = o.batch;
        handles.push(std::thread::spawn(move || {
            let mut seqs = vec![0u64; ids.len()];
            let mut lat = Vec::new();
            let (mut next_batch, mut next_hb) = (Instant::now(), Instant::now());
            let mut turn = 0usize;
            let mut n = 0u64;
            while !stop.load(Relaxed) && Instant::now() < deadline {
                let now_i = Instant::now();
                if now_i >= next_hb {
                    let id = &ids[turn % ids.len()];
                    let hb = Heartbeat {
                        box_id: id.box_id.clone(),
                        sent_at: now(),
                        health: vec!["ok".into()],
                        ..Heartbeat::default()
                    };
                    match id.agent.post(&format!("{url}/v1/heartbeat")).send_json(&hb) {
                        Ok(_) => heartbeats.fetch_add(1, Relaxed),
                        Err(_) => errors.fetch_add(1, Relaxed),
                    };
                    next_hb += hb_every;
                    turn += 1;
                    continue;
                }
                if now_i >= next_batch {
                    let k = turn % ids.len();
                    let id = &ids[k];
                    let t = eve_time(now());
                    let events = (0..batch)
                        .map(|j| {
                            n += 1;
                            Numbered {
                                seq: seqs[k] + 1 + j as u64,
                                event: event(n, &t),
                            }
                        })
                        .collect();
                    let b = EventBatch {
                        box_id: id.box_id.clone(),
                        stream: "bench".into(),
                        events,
                    };
                    let sent = Instant::now();
                    match id
                        .agent
                        .post(&format!("{url}/v1/events"))
                        .send_json(&b)
                        .map(|r| r.into_json::<EventAck>())
                    {
                        Ok(Ok(ack)) => {
                            lat.push(sent.elapsed().as_secs_f64() * 1000.0);
                            seqs[k] = ack.acked;
                            acked.fetch_add(ack.stored, Relaxed);
                        }
                        _ => {
                            errors.fetch_add(1, Relaxed);
                        }
                    }
                    next_batch += batch_every;
                    turn += 1;
                    continue;
                }
                let wait = next_batch
                    .min(next_hb)
                    .saturating_duration_since(Instant::now());
                std::thread::sleep(wait.min(Duration::from_millis(20)));
            }
            (lat, seqs.len())
        }));
    }
    let mut lat = Vec::new();
    for h in handles {
        let (l, _) = h
            .join()
            .map_err(|_| anyhow::anyhow!("a load thread panicked"))?;
        lat.extend(l);
    }
    stop.store(true, Relaxed);
    let secs = start.elapsed().as_secs_f64();
    lat.sort_by(|a, b| a.total_cmp(b));
    let stored = store
        .blocking(|c| {
            c.one("SELECT COUNT(*) FROM event", &[])?
                .map(|r| r.int(0))
                .transpose()
        })?
        .unwrap_or(0) as u64;
    let acked = acked.load(Relaxed);
    let heartbeats = heartbeats.load(Relaxed);
    Ok(BenchReport {
        backend: store.backend().name(),
        seconds: secs,
        events_acked: acked,
        events_per_sec: acked as f64 / secs,
        heartbeats,
        heartbeats_per_sec: heartbeats as f64 / secs,
        batches: lat.len() as u64,
        errors: errors.load(Relaxed),
        latency_ms: (
            percentile(&lat, 0.5),
            percentile(&lat, 0.9),
            percentile(&lat, 0.99),
            lat.last().copied().unwrap_or(0.0),
        ),
        stored,
        lost: acked as i64 - stored as i64,
    })
}

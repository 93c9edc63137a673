//! The box's link to the Security Support Desk: enrolment (a one-time code and a signing
//! request for a key that never leaves the box), then a thread that sends the outbox's
//! events as numbered batches over mutual TLS and a heartbeat every minute.
//!
//! The outbox is a table in the box's own database, filled by a trigger in the same
//! transaction as the event it names (migration 5), and emptied only up to the number the
//! desk acknowledged: a desk outage, a network cut or a `kill -9` of either side loses
//! nothing, and the desk drops what it already has.

use anyhow::{Context, anyhow, bail};
use mimamori_proto::desk::{
    EnrolAnswer, EnrolRequest, EventAck, EventBatch, Heartbeat, HeartbeatAnswer, Numbered,
    PatternAge,
};
use rusqlite::Connection;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

const CONFIG: &str = "desk.toml";
const KEY: &str = "box.key";
const CERT: &str = "box.pem";
const CA: &str = "ca.pem";
/// Events per batch.
const BATCH: usize = 1_000;
/// The outbox holds at most this many events; beyond, the oldest go and are counted.
pub const OUTBOX_MAX: i64 = 1_000_000;

/// What enrolment leaves in the desk folder besides the key and certificates.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeskConfig {
    /// `https://desk.example:8443`
    pub url: String,
    pub box_id: String,
    pub heartbeat_secs: u64,
    pub not_after: i64,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn roots(ca_pem: &[u8], origin: &str) -> anyhow::Result<rustls::RootCertStore> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem) {
        roots
            .add(c.with_context(|| format!("{origin}: not a PEM certificate"))?)
            .with_context(|| format!("{origin}: not a CA certificate"))?;
    }
    if roots.is_empty() {
        bail!("{origin}: no certificate in it");
    }
    Ok(roots)
}

fn agent(tls: rustls::ClientConfig) -> ureq::Agent {
    ureq::AgentBuilder::new()
        .tls_config(Arc::new(tls))
        .timeout_connect(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .build()
}

fn error_text(e: ureq::Error) -> String {
    match e {
        ureq::Error::Status(code, r) => {
            let body = r.into_string().unwrap_or_default();
            let msg = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_string))
                .unwrap_or(body);
            format!("{code}: {msg}")
        }
        other => other.to_string(),
    }
}

fn write_file(path: &Path, text: &str, private: bool) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(if private { 0o600 } else { 0o644 })
        .open(&tmp)
        .with_context(|| format!("{}: cannot write", tmp.display()))?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("{}: cannot write", path.display()))
}

/// `mimamori-cp desk enrol`: asks the desk for this box's certificate and keeps it in `dir`.
pub fn enrol(dir: &Path, url: &str, ca_file: &Path, code: &str) -> anyhow::Result<DeskConfig> {
    if !url.starts_with("https://") {
        bail!("--desk-url: {url:?} must be an https:// address");
    }
    let ca_pem =
        std::fs::read(ca_file).with_context(|| format!("{}: cannot read", ca_file.display()))?;
    let roots = roots(&ca_pem, &ca_file.display().to_string())?;
    let key = rcgen::KeyPair::generate()?;
    let mut p = rcgen::CertificateParams::default();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name
        .push(rcgen::DnType::CommonName, "mimamori box");
    let csr = p.serialize_request(&key)?.pem()?;
    let tls = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let req = EnrolRequest {
        code: code.trim().to_string(),
        csr_pem: csr,
        version: env!("CARGO_PKG_VERSION").into(),
    };
    let answer: EnrolAnswer = agent(tls)
        .post(&format!("{}/v1/enrol", url.trim_end_matches('/')))
        .send_json(&req)
        .map_err(|e| anyhow!("{url}: enrolment refused: {}", error_text(e)))?
        .into_json()
        .context("the desk's answer")?;
    std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    let cfg = DeskConfig {
        url: url.trim_end_matches('/').to_string(),
        box_id: answer.box_id,
        heartbeat_secs: answer.heartbeat_secs.clamp(5, 3600),
        not_after: answer.not_after,
    };
    write_file(&dir.join(KEY), &key.serialize_pem(), true)?;
    write_file(&dir.join(CERT), &answer.cert_pem, false)?;
    write_file(&dir.join(CA), &answer.ca_pem, false)?;
    write_file(&dir.join(CONFIG), &toml::to_string(&cfg)?, false)?;
    Ok(cfg)
}

/// The enrolled identity, read back from `dir`.
pub struct Identity {
    pub cfg: DeskConfig,
    tls: rustls::ClientConfig,
}

impl Identity {
    pub fn load(dir: &Path) -> anyhow::Result<Identity> {
        let p = dir.join(CONFIG);
        let text = std::fs::read_to_string(&p).with_context(|| {
            format!(
                "{}: cannot read (enrol with `mimamori-cp desk enrol`)",
                p.display()
            )
        })?;
        let cfg: DeskConfig = toml::from_str(&text).with_context(|| format!("{}", p.display()))?;
        let ca =
            std::fs::read(dir.join(CA)).with_context(|| format!("{}", dir.join(CA).display()))?;
        let chain = CertificateDer::pem_file_iter(dir.join(CERT))
            .with_context(|| format!("{}", dir.join(CERT).display()))?
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("{}: not PEM", dir.join(CERT).display()))?;
        let key = PrivateKeyDer::from_pem_file(dir.join(KEY))
            .with_context(|| format!("{}: not a PEM key", dir.join(KEY).display()))?;
        let tls = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots(&ca, &dir.join(CA).display().to_string())?)
            .with_client_auth_cert(chain, key)
            .context("the box certificate and key")?;
        Ok(Identity { cfg, tls })
    }
}

/// The enrolled box's client for the desk, shared by the uplink thread and the API.
pub struct Link {
    agent: ureq::Agent,
    base: String,
    pub box_id: String,
}

/// One bundle the desk offers.
#[derive(Clone, Debug, Deserialize)]
pub struct Offered {
    pub kind: String,
    pub version: u64,
    pub sha256: String,
    pub size: u64,
}

/// Largest bundle fetched.
const BUNDLE_MAX: u64 = 256 << 20;

impl Link {
    pub fn new(id: &Identity) -> Link {
        Link {
            agent: agent(id.tls.clone()),
            base: id.cfg.url.clone(),
            box_id: id.cfg.box_id.clone(),
        }
    }

    pub fn patterns(&self) -> Result<Vec<Offered>, String> {
        self.agent
            .get(&format!("{}/v1/patterns", self.base))
            .call()
            .map_err(error_text)?
            .into_json()
            .map_err(|e| format!("the desk's list: {e}"))
    }

    /// A bundle's bytes, checked against the hash the desk listed (the signature is
    /// checked by the import). Three tries.
    pub fn pattern(&self, kind: &str, version: u64, sha256: &str) -> Result<Vec<u8>, String> {
        use sha2::Digest;
        let mut last = String::new();
        for attempt in 0..3 {
            if attempt > 0 {
                std::thread::sleep(Duration::from_secs(2 * attempt));
            }
            let r = match self
                .agent
                .get(&format!("{}/v1/patterns/{kind}/{version}", self.base))
                .call()
            {
                Ok(r) => r,
                Err(e) => {
                    last = error_text(e);
                    continue;
                }
            };
            let mut bytes = Vec::new();
            use std::io::Read;
            if let Err(e) = r.into_reader().take(BUNDLE_MAX + 1).read_to_end(&mut bytes) {
                last = format!("reading {kind} {version}: {e}");
                continue;
            }
            if bytes.len() as u64 > BUNDLE_MAX {
                return Err(format!(
                    "{kind} {version}: larger than {} MiB",
                    BUNDLE_MAX >> 20
                ));
            }
            let got: String = sha2::Sha256::digest(&bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            if got != sha256 {
                last = format!("{kind} {version}: SHA-256 {got}, the desk listed {sha256}");
                continue;
            }
            return Ok(bytes);
        }
        Err(last)
    }
}

impl Link {
    fn post_bytes(
        &self,
        path: &str,
        bytes: &[u8],
        mime: &str,
    ) -> Result<serde_json::Value, String> {
        self.agent
            .post(&format!("{}{path}", self.base))
            .set("Content-Type", mime)
            .send_bytes(bytes)
            .map_err(error_text)?
            .into_json()
            .map_err(|e| format!("the desk's answer: {e}"))
    }
}

/// Sends the hourly counts of the last 48 hours and the running one (every event type,
/// firewall and flows included); the desk replaces hours it has, so the running hour is
/// completed by the next send.
pub fn send_hourly(c: &Connection, link: &Link, now: i64) -> Result<usize, String> {
    let to = now - now.rem_euclid(3600) + 3600;
    let q = crate::events::Query {
        from: Some(to - 48 * 3600),
        to: Some(to),
        ..Default::default()
    };
    let hours: Vec<mimamori_proto::desk::HourCount> = crate::events::hourly(c, &q)
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|h| mimamori_proto::desk::HourCount {
            hour: h.hour,
            event_type: h.event_type,
            action: h.action,
            count: h.count,
        })
        .collect();
    let n = hours.len();
    let batch = mimamori_proto::desk::HourlyBatch {
        box_id: link.box_id.clone(),
        hours,
    };
    link.agent
        .post(&format!("{}/v1/hourly", link.base))
        .send_json(&batch)
        .map_err(error_text)?;
    Ok(n)
}

/// Sends last month's report (Japan time) to the desk once, in both languages, as HTML and
/// — when chromium is here — PDF; the desk mails it to the customer's contacts.
pub fn send_report(c: &Connection, link: &Link, now: i64) -> Result<Option<String>, String> {
    use crate::report::{self, Lang, Month};
    let month = Month::of(now).prev();
    let sent: Option<String> = c
        .query_row(
            "SELECT report_month FROM desk_uplink WHERE id = 1",
            [],
            |r| r.get(0),
        )
        .map_err(|e| e.to_string())?;
    if sent.as_deref() == Some(month.to_string().as_str()) {
        return Ok(None);
    }
    let r =
        report::aggregate(c, month, now, &report::Live::default()).map_err(|e| format!("{e:#}"))?;
    for lang in [Lang::Ja, Lang::En] {
        let html = report::html::render(&r, lang);
        let _ = report::keep(c, &r, lang, &html);
        let base = format!("/v1/reports/{month}/{}", lang.code());
        link.post_bytes(
            &format!("{base}/html"),
            html.as_bytes(),
            "text/html; charset=utf-8",
        )?;
        if report::pdf::chromium().is_some() {
            let out = std::env::temp_dir().join(format!(
                "mimamori-report-{}-{month}-{}.pdf",
                std::process::id(),
                lang.code()
            ));
            match report::pdf::html_to_pdf(&html, &out).and_then(|()| Ok(std::fs::read(&out)?)) {
                Ok(pdf) => {
                    link.post_bytes(&format!("{base}/pdf"), &pdf, "application/pdf")?;
                }
                Err(e) => eprintln!("mimamori-cp: report {month} as PDF: {e:#} (the HTML is sent)"),
            }
            let _ = std::fs::remove_file(&out);
        }
        link.post_bytes(&format!("{base}/done"), b"", "application/octet-stream")?;
    }
    c.execute(
        "UPDATE desk_uplink SET report_month = ?1 WHERE id = 1",
        [month.to_string()],
    )
    .map_err(|e| e.to_string())?;
    Ok(Some(month.to_string()))
}

#[derive(Default)]
pub struct UplinkCounters {
    pub sent: AtomicU64,
    pub batches: AtomicU64,
    pub heartbeats: AtomicU64,
    pub failures: AtomicU64,
    pub dropped: AtomicU64,
    pub waiting: AtomicU64,
    /// Unix seconds of the last acknowledged batch or heartbeat.
    pub last_ok: AtomicU64,
}

/// What the heartbeat reports besides the outbox.
pub struct HeartbeatSource {
    pub gateway: crate::gwlink::GatewayLink,
    pub patterns: Option<Arc<crate::patterns::Patterns>>,
    pub started: Instant,
    /// How often the desk is asked for newer pattern bundles (jittered ±10 %).
    pub patterns_every: Duration,
    pub link: Arc<Link>,
}

/// The outbox's own identity, made once per database.
fn stream_id(c: &Connection) -> rusqlite::Result<String> {
    let have: Option<String> = c
        .query_row("SELECT stream FROM desk_uplink WHERE id = 1", [], |r| {
            r.get(0)
        })
        .ok()
        .flatten();
    if let Some(s) = have {
        return Ok(s);
    }
    let mut b = [0u8; 12];
    let _ = getrandom::fill(&mut b);
    let s: String = b.iter().map(|x| format!("{x:02x}")).collect();
    c.execute("UPDATE desk_uplink SET stream = ?1 WHERE id = 1", [&s])?;
    Ok(s)
}

/// Turns the outbox on (the trigger fills it from now on).
pub fn enable(c: &Connection) -> rusqlite::Result<()> {
    c.execute("UPDATE desk_uplink SET enabled = 1 WHERE id = 1", [])?;
    stream_id(c).map(|_| ())
}

/// Drops the oldest events past the bound; counts them.
fn bound(c: &Connection, counters: &UplinkCounters) -> rusqlite::Result<()> {
    let n: i64 = c.query_row("SELECT COUNT(*) FROM desk_outbox", [], |r| r.get(0))?;
    counters.waiting.store(n as u64, Relaxed);
    if n > OUTBOX_MAX {
        let over = n - OUTBOX_MAX;
        c.execute(
            "DELETE FROM desk_outbox WHERE seq IN (SELECT seq FROM desk_outbox ORDER BY seq LIMIT ?1)",
            [over],
        )?;
        c.execute(
            "UPDATE desk_uplink SET dropped = dropped + ?1 WHERE id = 1",
            [over],
        )?;
        counters.dropped.fetch_add(over as u64, Relaxed);
    }
    Ok(())
}

fn pending(c: &Connection) -> rusqlite::Result<Vec<Numbered>> {
    let mut st = c.prepare_cached(
        "SELECT o.seq, e.raw FROM desk_outbox o LEFT JOIN event e ON e.id = o.event_id ORDER BY o.seq LIMIT ?1",
    )?;
    let rows = st.query_map([BATCH as i64], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, Option<String>>(1)?))
    })?;
    let mut out = Vec::new();
    for r in rows {
        let (seq, raw) = r?;
        // An event the retention removed before the desk took it: sent as a marker, so
        // the desk records it as refused instead of the number silently missing.
        let event = raw
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_else(|| serde_json::json!({"expired": true}));
        out.push(Numbered {
            seq: seq as u64,
            event,
        });
    }
    Ok(out)
}

fn now() -> i64 {
    crate::db::now()
}

/// `every` ± 10 %, so a fleet does not ask at the same second.
fn jittered(every: Duration) -> Duration {
    let mut b = [0u8; 2];
    let _ = getrandom::fill(&mut b);
    let r = u16::from_le_bytes(b) as f64 / u16::MAX as f64; // 0..1
    every.mul_f64(0.9 + 0.2 * r)
}

/// Sends until the process ends. Every failure waits (1 s doubling to 30 s) and retries.
pub fn run(
    db: PathBuf,
    id: Identity,
    source: HeartbeatSource,
    counters: Arc<UplinkCounters>,
    heartbeat_every: Duration,
) {
    let agent = agent(id.tls.clone());
    let base = id.cfg.url.clone();
    let box_id = id.cfg.box_id.clone();
    let mut conn = None::<Connection>;
    let mut backoff = Duration::from_secs(1);
    let mut next_heartbeat = Instant::now();
    let mut next_patterns = Instant::now() + Duration::from_secs(5);
    let mut next_report = Instant::now() + Duration::from_secs(10);
    loop {
        let c = match &conn {
            Some(c) => c,
            None => match crate::db::open(&db) {
                Ok(c) => conn.insert(c),
                Err(e) => {
                    eprintln!("mimamori-cp: desk uplink: {e:#}");
                    std::thread::sleep(Duration::from_secs(5));
                    continue;
                }
            },
        };
        let mut failed = false;
        if Instant::now() >= next_heartbeat {
            match heartbeat(c, &agent, &base, &box_id, &source, &counters) {
                Ok(_) => next_heartbeat = Instant::now() + heartbeat_every,
                Err(e) => {
                    eprintln!("mimamori-cp: desk heartbeat: {e}");
                    failed = true;
                }
            }
        }
        if let (Some(p), false) = (&source.patterns, failed)
            && Instant::now() >= next_patterns
        {
            // A fresh connection for the import: it writes, the uplink's only reads.
            match crate::db::open(&db)
                .map_err(|e| format!("{e:#}"))
                .and_then(|mut w| p.update_from(&mut w, &source.link, now()))
            {
                Ok(v) => {
                    let n = v["updates"].as_array().map_or(0, |u| u.len());
                    if n > 0 {
                        eprintln!("mimamori-cp: patterns from the desk: {}", v["updates"]);
                    }
                }
                Err(e) => eprintln!("mimamori-cp: patterns from the desk: {e}"),
            }
            next_patterns = Instant::now() + jittered(source.patterns_every);
        }
        if !failed && Instant::now() >= next_report {
            // Hourly: the month's report goes once, the first hour the desk can be reached.
            match crate::db::open(&db)
                .map_err(|e| format!("{e:#}"))
                .and_then(|w| send_report(&w, &source.link, now()))
            {
                Ok(Some(m)) => eprintln!("mimamori-cp: the {m} report went to the desk"),
                Ok(None) => {}
                Err(e) => eprintln!("mimamori-cp: monthly report to the desk: {e}"),
            }
            if let Err(e) = send_hourly(c, &source.link, now()) {
                eprintln!("mimamori-cp: hourly counts to the desk: {e}");
            }
            next_report = Instant::now() + Duration::from_secs(3600);
        }
        let sent = if failed {
            Ok(0)
        } else {
            send_batch(c, &agent, &base, &box_id, &counters)
        };
        match sent {
            Ok(n) => {
                backoff = Duration::from_secs(1);
                if n < BATCH && !failed {
                    std::thread::sleep(Duration::from_millis(500));
                }
            }
            Err(e) => {
                failed = true;
                eprintln!("mimamori-cp: desk uplink: {e}");
            }
        }
        if failed {
            counters.failures.fetch_add(1, Relaxed);
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(Duration::from_secs(30));
        }
    }
}

fn send_batch(
    c: &Connection,
    agent: &ureq::Agent,
    base: &str,
    box_id: &str,
    counters: &UplinkCounters,
) -> Result<usize, String> {
    bound(c, counters).map_err(|e| e.to_string())?;
    let events = pending(c).map_err(|e| e.to_string())?;
    if events.is_empty() {
        return Ok(0);
    }
    let n = events.len();
    let stream = stream_id(c).map_err(|e| e.to_string())?;
    let batch = EventBatch {
        box_id: box_id.to_string(),
        stream,
        events,
    };
    let ack: EventAck = agent
        .post(&format!("{base}/v1/events"))
        .send_json(&batch)
        .map_err(error_text)?
        .into_json()
        .map_err(|e| format!("the desk's answer: {e}"))?;
    c.execute(
        "DELETE FROM desk_outbox WHERE seq <= ?1",
        [ack.acked as i64],
    )
    .map_err(|e| e.to_string())?;
    counters.sent.fetch_add(ack.stored + ack.rejected, Relaxed);
    counters.batches.fetch_add(1, Relaxed);
    counters.last_ok.store(now() as u64, Relaxed);
    Ok(n)
}

fn heartbeat(
    c: &Connection,
    agent: &ureq::Agent,
    base: &str,
    box_id: &str,
    source: &HeartbeatSource,
    counters: &UplinkCounters,
) -> Result<HeartbeatAnswer, String> {
    let t = now();
    let gateway = source.gateway.stats().ok();
    let mut health = Vec::new();
    if gateway.is_none() {
        health.push("gateway unreachable".to_string());
    }
    let mut patterns = Vec::new();
    if let Some(p) = &source.patterns
        && let Ok(st) = p.status(c, t)
    {
        for k in st["kinds"].as_array().into_iter().flatten() {
            patterns.push(PatternAge {
                kind: k["kind"].as_str().unwrap_or_default().to_string(),
                version: k["version"].as_u64(),
                age_secs: k["age_secs"].as_i64(),
                since_check_secs: k["since_check_secs"].as_i64(),
                stale: k["patterns_stale"].as_bool().unwrap_or(false),
            });
        }
        if st["patterns_stale"].as_bool() == Some(true) {
            health.push("patterns stale".into());
        }
        if st["licence_expired"].as_bool() == Some(true) {
            health.push("licence expired".into());
        }
    }
    if health.is_empty() {
        health.push("ok".into());
    }
    let (outbox, dropped): (i64, i64) = c
        .query_row(
            "SELECT (SELECT COUNT(*) FROM desk_outbox), dropped FROM desk_uplink WHERE id = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(|e| e.to_string())?;
    let policy_version = crate::db::current_policy(c).map(|p| p.version).unwrap_or(0);
    let hb = Heartbeat {
        box_id: box_id.to_string(),
        sent_at: t,
        uptime_secs: source.started.elapsed().as_secs(),
        cp_version: env!("CARGO_PKG_VERSION").into(),
        gateway,
        policy_version,
        patterns,
        outbox: outbox as u64,
        outbox_dropped: dropped as u64,
        health,
    };
    let answer: HeartbeatAnswer = agent
        .post(&format!("{base}/v1/heartbeat"))
        .send_json(&hb)
        .map_err(error_text)?
        .into_json()
        .map_err(|e| format!("the desk's answer: {e}"))?;
    counters.heartbeats.fetch_add(1, Relaxed);
    counters.last_ok.store(t as u64, Relaxed);
    if let Some(tier) = &answer.tier {
        write_plan(c, &answer, tier);
    }
    Ok(answer)
}

/// Keeps what the desk says the contract gives this box (the plan drives the box: the
/// gateway's `--tier` at its next start reads it from `desk_uplink`).
fn write_plan(c: &Connection, answer: &HeartbeatAnswer, tier: &str) {
    let end = answer.licence_end.as_deref().filter(|d| valid_date(d));
    let _ = c.execute(
        "UPDATE desk_uplink SET plan = ?1, tier = ?2, repair = ?3, licence_end = ?4 WHERE id = 1",
        rusqlite::params![answer.plan, tier, answer.repair, end],
    );
}

fn valid_date(d: &str) -> bool {
    let b = d.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

/// Today in Japan, `YYYY-MM-DD`.
fn jst_date(now: i64) -> String {
    let days = (now + 9 * 3600).div_euclid(86_400);
    let (y, m, d) = mimamori_pipelines::event::civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The licence end the desk gave (`YYYY-MM-DD`), and whether it has come (Japan time).
pub fn licence(c: &Connection, now: i64) -> (Option<String>, bool) {
    let end: Option<String> = c
        .query_row(
            "SELECT licence_end FROM desk_uplink WHERE id = 1",
            [],
            |r| r.get(0),
        )
        .ok()
        .flatten()
        .filter(|d: &String| valid_date(d));
    let expired = end.as_deref().is_some_and(|e| jst_date(now).as_str() >= e);
    (end, expired)
}

/// The layout the desk last said this box's contract gives it, for the gateway's start.
pub fn tier(db: &Path) -> Option<String> {
    let c = Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).ok()?;
    c.query_row("SELECT tier FROM desk_uplink WHERE id = 1", [], |r| {
        r.get::<_, Option<String>>(0)
    })
    .ok()
    .flatten()
    .filter(|t| mimamori_proto::gateway::TIERS.contains(&t.as_str()))
}

/// The uplink's state for `/api/v1/status`.
pub fn status(c: &Connection, counters: &UplinkCounters) -> serde_json::Value {
    let row = c.query_row(
        "SELECT enabled, stream, dropped, plan, tier, repair, (SELECT COUNT(*) FROM desk_outbox) FROM desk_uplink WHERE id = 1",
        [],
        |r| {
            Ok(serde_json::json!({
                "enabled": r.get::<_, i64>(0)? == 1,
                "stream": r.get::<_, Option<String>>(1)?,
                "dropped": r.get::<_, i64>(2)?,
                "plan": r.get::<_, Option<String>>(3)?,
                "tier": r.get::<_, Option<String>>(4)?,
                "repair": r.get::<_, Option<String>>(5)?,
                "waiting": r.get::<_, i64>(6)?,
            }))
        },
    );
    let mut v = row.unwrap_or_else(|e| serde_json::json!({"error": e.to_string()}));
    v["sent"] = counters.sent.load(Relaxed).into();
    v["heartbeats"] = counters.heartbeats.load(Relaxed).into();
    v["failures"] = counters.failures.load(Relaxed).into();
    v["last_ok"] = counters.last_ok.load(Relaxed).into();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_licence_ends_on_its_day_in_japan() {
        let path = std::env::temp_dir().join(format!("cp-licence-{}.db", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let c = crate::db::open(&path).unwrap();
        assert_eq!(licence(&c, 0), (None, false));
        c.execute(
            "UPDATE desk_uplink SET licence_end = '2031-04-01' WHERE id = 1",
            [],
        )
        .unwrap();
        // 2031-03-31 14:59 UTC is 23:59 in Japan: still licensed; a minute later it is not.
        let before = 1_932_735_540;
        assert_eq!(jst_date(before), "2031-03-31");
        assert!(!licence(&c, before).1);
        assert!(licence(&c, before + 60).1);
        assert!(!valid_date("2031-4-1") && !valid_date("2031-04-01x") && valid_date("2031-04-01"));
        let _ = std::fs::remove_file(&path);
    }
}

//! `mimamori-cp`: serve the control plane, manage tokens, or talk to a running one (`ctl`).

use clap::{Parser, Subcommand};
use mimamori_control_plane::{db, events, server};
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(name = "mimamori-cp", version, about = "mimamori control plane")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum DeskCmd {
    /// Enrol this box with a one-time code from the desk.
    Enrol {
        /// `https://desk.example:8443`
        #[arg(long)]
        desk_url: String,
        /// The desk's CA certificate (given with the code).
        #[arg(long)]
        ca: PathBuf,
        #[arg(long)]
        code: String,
        /// Where the box's key and certificate are kept.
        #[arg(long, default_value = "/var/lib/mimamori/desk")]
        dir: PathBuf,
    },
    /// What the outbox holds and what the desk last said.
    Status {
        #[arg(long, default_value = "/var/lib/mimamori/cp.db")]
        db: PathBuf,
    },
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the API, the event store and the gateway sockets.
    Serve {
        #[arg(long, default_value = "/var/lib/mimamori/cp.db")]
        db: PathBuf,
        #[arg(long, default_value = "127.0.0.1:8440")]
        listen: std::net::SocketAddr,
        /// The gateway's control socket (its --stats-socket).
        #[arg(long, default_value = "/run/mimamori/gw.sock")]
        gateway_socket: PathBuf,
        /// Our socket for the gateway (its --control-plane).
        #[arg(long, default_value = "/run/mimamori/cp.sock")]
        cp_socket: PathBuf,
        /// Days events are kept.
        #[arg(long, default_value_t = 30)]
        retention_days: u32,
        /// When the database has no token yet, create a customer-admin token and write it here.
        #[arg(long)]
        bootstrap_token_file: Option<PathBuf>,
        /// The category database the gateway loads (its --categories): every policy is
        /// checked against it, so one the gateway could not compile is refused (422) even
        /// while the gateway is down.
        #[arg(long)]
        categories: Option<PathBuf>,
        /// The desk's public key for pattern bundles (`mimamori-ed25519-pub:...`, or a file
        /// holding it); give it twice during a key rotation. Without it, bundle import is off.
        #[arg(long)]
        trust_key: Vec<String>,
        /// Where verified pattern bundles are kept (default: `patterns` beside the database).
        #[arg(long)]
        patterns_dir: Option<PathBuf>,
        /// A bundle published longer ago than this is stale.
        #[arg(long, default_value_t = 7)]
        patterns_max_age_days: u64,
        /// This long without a successful check is stale.
        #[arg(long, default_value_t = 24)]
        patterns_max_unchecked_hours: u64,
        /// Uplink to the Security Support Desk, with the identity `desk enrol` left here.
        #[arg(long)]
        desk: Option<PathBuf>,
        /// Heartbeat interval in seconds (default: the desk's, given at enrolment).
        #[arg(long)]
        desk_heartbeat_secs: Option<u64>,
        /// How often to ask the desk for newer pattern bundles (jittered ±10 %).
        #[arg(long, default_value_t = 21_600)]
        desk_patterns_secs: u64,
    },
    /// The Security Support Desk link.
    Desk {
        #[command(subcommand)]
        cmd: DeskCmd,
    },
    /// Create an API token in a database (prints the secret once).
    Token {
        #[arg(long, default_value = "/var/lib/mimamori/cp.db")]
        db: PathBuf,
        #[arg(long)]
        name: String,
        /// customer-admin, desk-operator or read-only.
        #[arg(long)]
        role: String,
    },
    /// Talk to a running control plane over its API.
    Ctl {
        #[arg(long, env = "MIMAMORI_URL", default_value = "http://127.0.0.1:8440")]
        url: String,
        #[arg(long, env = "MIMAMORI_TOKEN", hide_env_values = true)]
        token: String,
        #[command(subcommand)]
        op: Ctl,
    },
    /// Event intake benchmark: stream N synthetic EVE lines into a fresh store over the
    /// gateway socket and time until all are stored.
    BenchIntake {
        #[arg(long, default_value_t = 500_000)]
        events: usize,
        #[arg(long, default_value = "/tmp/mimamori-bench-intake")]
        dir: PathBuf,
    },
    /// Synthesize a month of events into a fresh database, then time the monthly report:
    /// aggregation, HTML, and (with --pdf) the PDF.
    BenchReport {
        #[arg(long, default_value_t = 1_000_000)]
        events: usize,
        #[arg(long, default_value = "2026-11")]
        month: String,
        #[arg(long, default_value = "/tmp/mimamori-bench-report")]
        dir: PathBuf,
        /// Keep the database from a previous run with the same --events (skip synthesis).
        #[arg(long)]
        reuse: bool,
        #[arg(long)]
        pdf: bool,
    },
}

#[derive(Subcommand)]
enum Ctl {
    /// Box status.
    Status,
    /// Print the stored policy, or one section of it.
    Get { section: Option<String> },
    /// Replace a section with the JSON in FILE ("-" for stdin).
    Set { section: String, file: PathBuf },
    /// Events, newest first.
    Events {
        #[arg(long = "type")]
        event_type: Option<String>,
        #[arg(long)]
        host: Option<String>,
        #[arg(long)]
        category: Option<String>,
        #[arg(long)]
        action: Option<String>,
        #[arg(long)]
        sid: Option<i64>,
        /// Only the last this many seconds.
        #[arg(long)]
        since: Option<i64>,
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
    /// Event counts per hour.
    Hourly {
        #[arg(long)]
        since: Option<i64>,
    },
    /// Quarantined hosts.
    Quarantine,
    /// Release a quarantined host.
    Release { mac: String },
    /// The audit log.
    Audit {
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
    /// The month's report (Japan time): HTML, or a PDF by headless Chromium when OUT ends
    /// in .pdf; to stdout (HTML) without -o.
    Report {
        /// YYYY-MM; the month before this one when not given.
        #[arg(long)]
        month: Option<String>,
        /// report.pdf or report.html.
        #[arg(short = 'o', long = "output")]
        output: Option<PathBuf>,
        /// ja or en.
        #[arg(long, default_value = "ja")]
        lang: String,
    },
    /// Create a token (customer-admin only); prints the secret once.
    Token {
        #[arg(long)]
        name: String,
        #[arg(long)]
        role: String,
    },
    /// Pattern bundles: status, import, rollback.
    Patterns {
        #[command(subcommand)]
        op: PatternsCtl,
    },
}

#[derive(Subcommand)]
enum PatternsCtl {
    /// Per kind: the active version, its age, the last successful check, staleness.
    Status,
    /// Verify and install a signed bundle file.
    Import {
        file: PathBuf,
        /// Accept a version lower than or equal to the installed one.
        #[arg(long)]
        force_rollback: bool,
    },
    /// Go back to the last-known-good bundle of a kind.
    Rollback {
        #[arg(long)]
        kind: String,
    },
    /// Ask the desk now for newer bundles (the uplink also asks on a schedule).
    Update,
}

fn main() {
    if let Err(e) = run(Cli::parse()) {
        eprintln!("mimamori-cp: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.cmd {
        Cmd::Serve {
            db,
            listen,
            gateway_socket,
            cp_socket,
            retention_days,
            bootstrap_token_file,
            categories,
            trust_key,
            patterns_dir,
            patterns_max_age_days,
            patterns_max_unchecked_hours,
            desk,
            desk_heartbeat_secs,
            desk_patterns_secs,
        } => {
            let patterns = if trust_key.is_empty() {
                None
            } else {
                let trust =
                    mimamori_signatures::bundle::TrustedKeys::from_texts_or_files(&trust_key)
                        .map_err(anyhow::Error::msg)?;
                let dir = patterns_dir.unwrap_or_else(|| {
                    db.parent()
                        .unwrap_or(std::path::Path::new("."))
                        .join("patterns")
                });
                let mut c = mimamori_control_plane::patterns::Config::new(dir, trust);
                c.max_age_secs = patterns_max_age_days.saturating_mul(86_400);
                c.max_unchecked_secs = patterns_max_unchecked_hours.saturating_mul(3600);
                Some(c)
            };
            if let Some(dir) = db.parent() {
                std::fs::create_dir_all(dir).ok();
            }
            let opts = server::Options {
                db,
                listen,
                gateway_socket,
                cp_socket,
                retention_days,
                event_queue: 262_144,
                bootstrap_token_file,
                categories,
                patterns,
                desk: desk.map(|d| (d, desk_heartbeat_secs.map(std::time::Duration::from_secs))),
                desk_patterns_every: std::time::Duration::from_secs(desk_patterns_secs.max(60)),
            };
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            rt.block_on(async {
                let (running, serve) = server::start(&opts).await?;
                eprintln!(
                    "mimamori-cp: API on http://{} (OpenAPI at /openapi.json); gateway socket {}; events kept {} days",
                    running.addr, opts.cp_socket.display(), opts.retention_days
                );
                serve.await?;
                anyhow::Ok(())
            })?;
        }
        Cmd::Desk {
            cmd:
                DeskCmd::Enrol {
                    desk_url,
                    ca,
                    code,
                    dir,
                },
        } => {
            let cfg = mimamori_control_plane::desk::enrol(&dir, &desk_url, &ca, &code)?;
            println!(
                "enrolled as box {} with {}; certificate valid until {}; start `serve --desk {}`",
                cfg.box_id,
                cfg.url,
                cfg.not_after,
                dir.display()
            );
        }
        Cmd::Desk {
            cmd: DeskCmd::Status { db },
        } => {
            let c = mimamori_control_plane::db::open(&db)?;
            let v = mimamori_control_plane::desk::status(&c, &Default::default());
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        Cmd::Token { db, name, role } => {
            let role = db::Role::parse(&role).ok_or_else(|| {
                anyhow::anyhow!(
                    "--role {role:?}: expected customer-admin, desk-operator or read-only"
                )
            })?;
            let c = db::open(&db)?;
            println!("{}", db::create_token(&c, &name, role)?);
        }
        Cmd::Ctl { url, token, op } => ctl(&url, &token, op)?,
        Cmd::BenchIntake { events, dir } => bench_intake(events, &dir)?,
        Cmd::BenchReport {
            events,
            month,
            dir,
            reuse,
            pdf,
        } => bench_report(events, &month, &dir, reuse, pdf)?,
    }
    Ok(())
}

fn ctl(url: &str, token: &str, op: Ctl) -> anyhow::Result<()> {
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(30))
        .build();
    let auth = format!("Bearer {token}");
    let now = db::now();
    let call = |method: &str,
                path: &str,
                query: &[(&str, String)],
                body: Option<String>|
     -> anyhow::Result<serde_json::Value> {
        let mut r = agent
            .request(method, &format!("{}{path}", url.trim_end_matches('/')))
            .set("Authorization", &auth);
        for (k, v) in query {
            r = r.query(k, v);
        }
        let res = match body {
            Some(b) => r.set("Content-Type", "application/json").send_string(&b),
            None => r.call(),
        };
        match res {
            Ok(resp) => {
                Ok(serde_json::from_reader(resp.into_reader()).unwrap_or(serde_json::Value::Null))
            }
            Err(ureq::Error::Status(code, resp)) => {
                let body = resp.into_string().unwrap_or_default();
                anyhow::bail!("HTTP {code}: {body}")
            }
            Err(e) => anyhow::bail!("{url}: {e}"),
        }
    };
    if let Ctl::Report {
        month,
        output,
        lang,
    } = op
    {
        return report(&agent, url, &auth, month, output, &lang);
    }
    if let Ctl::Patterns {
        op: PatternsCtl::Import {
            file,
            force_rollback,
        },
    } = &op
    {
        let bytes = std::fs::read(file)
            .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", file.display()))?;
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let res = agent
            .post(&format!("{}/api/v1/patterns", url.trim_end_matches('/')))
            .set("Authorization", &auth)
            .set("Content-Type", "application/octet-stream")
            .query("name", &name)
            .query(
                "force_rollback",
                if *force_rollback { "true" } else { "false" },
            )
            .send_bytes(&bytes);
        let v: serde_json::Value = match res {
            Ok(resp) => serde_json::from_reader(resp.into_reader()).unwrap_or_default(),
            Err(ureq::Error::Status(code, resp)) => {
                let body: serde_json::Value =
                    serde_json::from_reader(resp.into_reader()).unwrap_or_default();
                match body["error"].as_str() {
                    Some(e) => anyhow::bail!("HTTP {code}: {e}"),
                    None => anyhow::bail!("HTTP {code}: {body}"),
                }
            }
            Err(e) => anyhow::bail!("{url}: {e}"),
        };
        return print_out(&serde_json::to_string_pretty(&v)?);
    }
    let v = match op {
        Ctl::Report { .. } => unreachable!("handled above"),
        Ctl::Patterns {
            op: PatternsCtl::Import { .. },
        } => unreachable!("handled above"),
        Ctl::Patterns {
            op: PatternsCtl::Status,
        } => call("GET", "/api/v1/patterns", &[], None)?,
        Ctl::Patterns {
            op: PatternsCtl::Update,
        } => call("POST", "/api/v1/patterns/update", &[], None)?,
        Ctl::Patterns {
            op: PatternsCtl::Rollback { kind },
        } => call(
            "POST",
            &format!("/api/v1/patterns/{kind}/rollback"),
            &[],
            None,
        )?,
        Ctl::Status => call("GET", "/api/v1/status", &[], None)?,
        Ctl::Get { section: None } => call("GET", "/api/v1/policy", &[], None)?,
        Ctl::Get { section: Some(s) } => call("GET", &format!("/api/v1/policy/{s}"), &[], None)?,
        Ctl::Set { section, file } => {
            let body = if file.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin())?
            } else {
                std::fs::read_to_string(&file)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?
            };
            call("PUT", &format!("/api/v1/policy/{section}"), &[], Some(body))?
        }
        Ctl::Events {
            event_type,
            host,
            category,
            action,
            sid,
            since,
            limit,
        } => {
            let mut q = vec![("limit", limit.to_string())];
            for (k, v) in [
                ("type", event_type),
                ("host", host),
                ("category", category),
                ("action", action),
            ] {
                if let Some(v) = v {
                    q.push((k, v));
                }
            }
            if let Some(s) = sid {
                q.push(("sid", s.to_string()));
            }
            if let Some(s) = since {
                q.push(("from", (now - s).to_string()));
            }
            call("GET", "/api/v1/events", &q, None)?
        }
        Ctl::Hourly { since } => {
            let q: Vec<_> = since
                .map(|s| ("from", (now - s).to_string()))
                .into_iter()
                .collect();
            call("GET", "/api/v1/events/hourly", &q, None)?
        }
        Ctl::Quarantine => call("GET", "/api/v1/quarantine", &[], None)?,
        Ctl::Release { mac } => call(
            "POST",
            &format!("/api/v1/quarantine/{mac}/release"),
            &[],
            None,
        )?,
        Ctl::Audit { limit } => call(
            "GET",
            "/api/v1/audit",
            &[("limit", limit.to_string())],
            None,
        )?,
        Ctl::Token { name, role } => call(
            "POST",
            "/api/v1/tokens",
            &[],
            Some(serde_json::json!({"name": name, "role": role}).to_string()),
        )?,
    };
    print_out(&serde_json::to_string_pretty(&v)?)
}

/// `ctl report`: the HTML from the API, written as it is or printed to a PDF.
fn report(
    agent: &ureq::Agent,
    url: &str,
    auth: &str,
    month: Option<String>,
    output: Option<PathBuf>,
    lang: &str,
) -> anyhow::Result<()> {
    let pdf = output
        .as_ref()
        .and_then(|o| o.extension())
        .is_some_and(|e| e.eq_ignore_ascii_case("pdf"));
    // Fail before the round trip when the PDF cannot be made.
    if pdf && mimamori_control_plane::report::pdf::chromium().is_none() {
        let o = output
            .as_deref()
            .unwrap_or(std::path::Path::new("report.pdf"));
        return mimamori_control_plane::report::pdf::html_to_pdf("", o);
    }
    let mut r = agent
        .get(&format!("{}/api/v1/report", url.trim_end_matches('/')))
        .set("Authorization", auth)
        .query("lang", lang);
    if let Some(m) = &month {
        r = r.query("month", m);
    }
    let html = match r.call() {
        Ok(resp) => resp.into_string()?,
        Err(ureq::Error::Status(code, resp)) => {
            anyhow::bail!("HTTP {code}: {}", resp.into_string().unwrap_or_default())
        }
        Err(e) => anyhow::bail!("{url}: {e}"),
    };
    match output {
        None => print_out(html.trim_end()),
        Some(o) if pdf => {
            mimamori_control_plane::report::pdf::html_to_pdf(&html, &o)?;
            eprintln!("mimamori-cp: wrote {}", o.display());
            Ok(())
        }
        Some(o) => {
            std::fs::write(&o, html).map_err(|e| anyhow::anyhow!("{}: {e}", o.display()))?;
            eprintln!("mimamori-cp: wrote {}", o.display());
            Ok(())
        }
    }
}

/// Writes the answer to stdout; a reader that stopped early (`| grep -q`, `| head`) is not
/// an error, and never a panic.
fn print_out(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// Streams `n` EVE lines over the gateway socket protocol into a fresh database.
fn bench_intake(n: usize, dir: &std::path::Path) -> anyhow::Result<()> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir)?;
    let dbp = dir.join("cp.db");
    db::open(&dbp)?;
    let (store, _w) = events::EventStore::start(&dbp, 262_144)?;
    let store = std::sync::Arc::new(store);
    let sock = dir.join("cp.sock");
    let current = std::sync::Arc::new(std::sync::Mutex::new(None));
    mimamori_control_plane::gwlink::spawn_gateway_socket(&sock, current, store.clone())?;
    let lines: Vec<String> = (0..n)
        .map(|i| {
            let kind = ["flow", "web", "alert"][i % 3];
            format!(
                "{{\"timestamp\":\"{}\",\"flow_id\":{i},\"in_iface\":\"lan\",\"event_type\":\"{kind}\",\"src_ip\":\"198.18.0.{}\",\"src_port\":{},\"dest_ip\":\"198.19.0.80\",\"dest_port\":443,\"proto\":\"TCP\",\"web\":{{\"action\":\"blocked\",\"via\":\"tls-sni\",\"name\":\"casino.test\",\"category\":\"gambling\",\"list\":\"samples\",\"exception\":false,\"threat\":false,\"group\":\"default\",\"src_mac\":\"02:00:00:00:00:0a\"}}}}",
                // A thousand events a second, in order, as a gateway writes them.
                mimamori_pipelines::event::eve_time(1_795_700_000_000_000_000 + i as u64 * 1_000_000),
                i % 250 + 1,
                10000 + i % 50000
            )
        })
        .collect();
    let started = Instant::now();
    let mut s = std::os::unix::net::UnixStream::connect(&sock)?;
    let mut w = std::io::BufWriter::with_capacity(1 << 16, &mut s);
    w.write_all(b"events\n")?;
    for l in &lines {
        w.write_all(l.as_bytes())?;
        w.write_all(b"\n")?;
    }
    w.flush()?;
    drop(w);
    drop(s);
    let c = &store.counters;
    while c.stored.load(std::sync::atomic::Ordering::Relaxed)
        + c.dropped.load(std::sync::atomic::Ordering::Relaxed)
        < n as u64
    {
        if started.elapsed() > Duration::from_secs(300) {
            anyhow::bail!("not all events stored after 300 s");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let secs = started.elapsed().as_secs_f64();
    let conn = db::open(&dbp)?;
    let rows: i64 = conn.query_row("SELECT count(*) FROM event", [], |r| r.get(0))?;
    println!(
        "{n} events in {secs:.2} s = {:.0} events/s into SQLite (WAL); stored {rows}, dropped {}, malformed {}",
        n as f64 / secs,
        c.dropped.load(std::sync::atomic::Ordering::Relaxed),
        c.malformed.load(std::sync::atomic::Ordering::Relaxed)
    );
    if rows != n as i64 {
        anyhow::bail!("{} events lost", n as i64 - rows);
    }
    Ok(())
}

/// The events of a 50-PC office's month, spread evenly over it: half flow records, 30 %
/// web blocks (one in ten a threat, a few C&C), 15 % IPS alerts (two thirds dropped),
/// 5 % firewall denials, and a quarantine now and then.
fn bench_line(i: usize, start: i64, span: i64, n: usize) -> String {
    let ts = start + (i as i64 * span) / n as i64;
    let t = mimamori_pipelines::event::eve_time(ts as u64 * 1_000_000_000);
    let pc = i % 50;
    let (ip, mac) = (
        format!("198.18.0.{}", pc + 10),
        format!("02:00:00:00:00:{:02x}", pc + 10),
    );
    let head = |kind: &str, iface: &str, src: &str, dst: &str| {
        format!(
            "\"timestamp\":\"{t}\",\"flow_id\":{i},\"in_iface\":\"{iface}\",\"event_type\":\"{kind}\",\"src_ip\":\"{src}\",\"src_port\":{},\"dest_ip\":\"{dst}\",\"dest_port\":443,\"proto\":\"TCP\"",
            10_000 + i % 50_000
        )
    };
    match i % 20 {
        0..=9 => format!(
            "{{{},\"flow\":{{\"pkts_toserver\":10,\"pkts_toclient\":12,\"bytes_toserver\":1200,\"bytes_toclient\":9000,\"age\":3,\"state\":\"closed\",\"reason\":\"timeout\",\"alerted\":false,\"action\":\"allow\"}}}}",
            head("flow", "lan", &ip, "203.0.113.80")
        ),
        10..=15 => {
            let k = i / 20;
            let (cat, threat) = match k % 10 {
                0 => (
                    if k.is_multiple_of(100) {
                        "c2"
                    } else {
                        "phishing"
                    },
                    true,
                ),
                1..=4 => ("ads", false),
                5..=7 => ("gambling", false),
                _ => ("games", false),
            };
            let action = if k % 1000 == 7 {
                "quarantined"
            } else {
                "blocked"
            };
            format!(
                "{{{},\"web\":{{\"action\":\"{action}\",\"via\":\"tls-sni\",\"name\":\"site-{}.{cat}.test\",\"category\":\"{cat}\",\"list\":\"bench\",\"exception\":false,\"threat\":{threat},\"group\":\"default\",\"src_mac\":\"{mac}\"}}}}",
                head("web", "lan", &ip, "203.0.113.5"),
                k % 997
            )
        }
        16..=18 => {
            let sid = 2_000_000 + (i / 20) % 200;
            let action = if i.is_multiple_of(3) {
                "allowed"
            } else {
                "blocked"
            };
            format!(
                "{{{},\"alert\":{{\"action\":\"{action}\",\"gid\":1,\"signature_id\":{sid},\"rev\":1,\"signature\":\"ET BENCH signature {sid}\",\"category\":\"Attempted Information Leak\",\"severity\":2}}}}",
                head("alert", "wan", "192.0.2.66", &ip)
            )
        }
        _ if i % 100_000 == 19 => format!(
            "{{{},\"host\":{{\"state\":\"quarantined\",\"mac\":\"{mac}\",\"hostname\":\"pc-{pc:02}\",\"client_id\":\"\",\"callbacks\":5}}}}",
            head("host", "lan", &ip, "203.0.113.9")
        ),
        _ => format!(
            "{{{},\"alert\":{{\"action\":\"blocked\",\"gid\":9,\"signature_id\":0,\"rev\":1,\"signature\":\"firewall: default deny from wan\",\"category\":\"Firewall policy\",\"severity\":2}}}}",
            head("alert", "wan", "192.0.2.9", &ip)
        ),
    }
}

fn bench_report(
    n: usize,
    month: &str,
    dir: &std::path::Path,
    reuse: bool,
    pdf: bool,
) -> anyhow::Result<()> {
    use mimamori_control_plane::report;
    let m = report::Month::parse(month).map_err(|e| anyhow::anyhow!("--month {e}"))?;
    let dbp = dir.join(format!("cp-{n}.db"));
    if !(reuse && dbp.exists()) {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir)?;
        let mut c = db::open(&dbp)?;
        c.pragma_update(None, "cache_size", -131_072)?;
        let started = Instant::now();
        let span = m.end() - m.start();
        let mut rows = Vec::with_capacity(100_000);
        let mut i = 0;
        while i < n {
            rows.clear();
            for j in i..(i + 100_000).min(n) {
                let line = bench_line(j, m.start(), span, n);
                rows.push(
                    events::row_of(&line)
                        .ok_or_else(|| anyhow::anyhow!("bench line {j} does not parse"))?,
                );
            }
            let tx = c.transaction()?;
            events::insert(&tx, &rows)?;
            tx.commit()?;
            i += rows.len();
        }
        println!(
            "synthesized {n} events in {} into {} in {:.1} s",
            m,
            dbp.display(),
            started.elapsed().as_secs_f64()
        );
    }
    let c = db::open(&dbp)?;
    let now = m.end() + 3600;
    let started = Instant::now();
    let r = report::aggregate(&c, m, now, &report::Live::default())?;
    let agg = started.elapsed().as_secs_f64();
    let t = Instant::now();
    let html = report::html::render(&r, report::Lang::Ja);
    let render = t.elapsed().as_secs_f64();
    let page = dir.join(format!("report-{m}.html"));
    std::fs::write(&page, &html)?;
    println!(
        "{} events in {m} ({} blocked): aggregate {agg:.2} s, HTML {:.3} s ({} KB) -> {}",
        r.events,
        r.blocked(),
        render,
        html.len() / 1024,
        page.display()
    );
    if pdf {
        let t = Instant::now();
        let out = dir.join(format!("report-{m}.pdf"));
        report::pdf::html_to_pdf(&html, &out)?;
        println!(
            "PDF {:.2} s -> {}; total {:.2} s",
            t.elapsed().as_secs_f64(),
            out.display(),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

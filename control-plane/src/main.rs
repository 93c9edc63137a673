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
        } => {
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
    let v = match op {
        Ctl::Report { .. } => unreachable!("handled above"),
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

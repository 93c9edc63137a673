//! `mimamori-desk`: the Security Support Desk server, its CA tool and its operator CLI.

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use mimamori_desk::{ca, server};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "mimamori-desk",
    version,
    about = "The mimamori Security Support Desk"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// The desk's certificate authority.
    Ca {
        #[command(subcommand)]
        cmd: CaCmd,
    },
    /// Run the desk: the boxes' uplink (mTLS) and the operators' API.
    Serve(server::Options),
    /// Load a desk in this process as a fleet of boxes would, for a bounded time.
    BenchLoad {
        /// `sqlite:PATH` or `postgres://…` (emptied tables are not required: the bench
        /// refuses a store that already has its customer).
        #[arg(long, default_value = "sqlite:/tmp/mimamori-desk-bench/desk.db")]
        store: String,
        #[arg(long, default_value = "/tmp/mimamori-desk-bench")]
        dir: PathBuf,
        #[arg(long, default_value_t = 100_000)]
        boxes: u32,
        /// Boxes that hold certificates and connections (the rest are rows in the store).
        #[arg(long, default_value_t = 200)]
        identities: u32,
        #[arg(long, default_value_t = 30)]
        seconds: u64,
        #[arg(long, default_value_t = 50_000)]
        events_per_sec: u64,
        #[arg(long, default_value_t = 500)]
        batch: usize,
        #[arg(long, default_value_t = 8)]
        threads: usize,
    },
    /// Call the operators' API.
    Ctl {
        #[arg(
            long,
            env = "MIMAMORI_DESK_URL",
            default_value = "http://127.0.0.1:8450"
        )]
        url: String,
        #[arg(long, env = "MIMAMORI_DESK_TOKEN", hide_env_values = true)]
        token: Option<String>,
        #[command(subcommand)]
        cmd: CtlCmd,
    },
}

#[derive(Subcommand)]
enum CaCmd {
    /// Create the CA and the desk's server certificate.
    Init {
        #[arg(long, default_value = "/var/lib/mimamori-desk/ca")]
        dir: PathBuf,
        /// DNS names or addresses the boxes reach the desk by (repeat).
        #[arg(long = "name", required = true)]
        names: Vec<String>,
    },
    /// Sign a box's request directly (for a box enrolled by hand; normally `/v1/enrol` does it).
    Sign {
        #[arg(long, default_value = "/var/lib/mimamori-desk/ca")]
        dir: PathBuf,
        #[arg(long)]
        box_id: String,
        #[arg(long)]
        csr: PathBuf,
        /// Validity from now, in days (negative: already expired, for tests).
        #[arg(long, default_value_t = ca::BOX_CERT_DAYS, allow_negative_numbers = true)]
        days: i64,
        #[arg(short = 'o', long)]
        output: PathBuf,
    },
}

#[derive(Subcommand)]
enum CtlCmd {
    /// GET a path and print the JSON.
    Get { path: String },
    /// POST a JSON body (`-` reads standard input) to a path.
    Post { path: String, body: Option<String> },
    /// Boxes with their status.
    Boxes,
    /// Incidents, newest first.
    Incidents {
        #[arg(long)]
        open: bool,
    },
    /// A customer's monthly statement, line by line with the clause each follows from.
    Statement {
        customer: String,
        /// `YYYY-MM`
        #[arg(long)]
        month: String,
    },
    /// Phone follow-ups waiting (offered 9:00–21:00 JST).
    Calls,
    /// Move an incident on.
    Act {
        id: i64,
        action: String,
        #[arg(long, default_value = "")]
        note: String,
    },
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("mimamori-desk: {e:#}");
        std::process::exit(1);
    }
}

fn now() -> i64 {
    mimamori_desk::ops::now()
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.cmd {
        Cmd::Ca {
            cmd: CaCmd::Init { dir, names },
        } => {
            ca::Ca::init(&dir, &names, now())?;
            println!("CA and server certificate written to {}", dir.display());
            Ok(())
        }
        Cmd::Ca {
            cmd:
                CaCmd::Sign {
                    dir,
                    box_id,
                    csr,
                    days,
                    output,
                },
        } => {
            let ca = ca::Ca::load(&dir)?;
            let text = std::fs::read_to_string(&csr)
                .with_context(|| format!("{}: cannot read", csr.display()))?;
            let (from, until) = if days < 0 {
                (now() + days * 86_400 - 86_400, now() + days * 86_400)
            } else {
                (now() - 300, now() + days * 86_400)
            };
            let issued = ca.issue_box(&text, &box_id, from, until)?;
            std::fs::write(&output, issued.cert_pem)
                .with_context(|| format!("{}: cannot write", output.display()))?;
            println!("{} serial {}", output.display(), issued.serial);
            Ok(())
        }
        Cmd::Serve(o) => {
            if o.fault_after_secs < 10 {
                bail!("--fault-after-secs: at least 10");
            }
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            rt.block_on(async move {
                let (running, serving) = server::start(&o).await?;
                println!(
                    "mimamori-desk: uplink https://{} (mTLS), API http://{}, store {}",
                    running.uplink, running.api, running.app.store.location
                );
                tokio::select! {
                    r = serving => r,
                    _ = tokio::signal::ctrl_c() => Ok(()),
                }
            })
        }
        Cmd::BenchLoad {
            store,
            dir,
            boxes,
            identities,
            seconds,
            events_per_sec,
            batch,
            threads,
        } => {
            let o = mimamori_desk::bench::BenchOptions {
                store,
                dir,
                boxes,
                identities,
                seconds,
                events_per_sec,
                batch,
                threads,
            };
            let r = mimamori_desk::bench::run(&o)?;
            println!(
                "bench-load: {} boxes on {}: {} events acknowledged in {:.1} s = {:.0} events/s (offered {}); {} heartbeats = {:.0}/s; {} batches, p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms; {} errors; stored {} (lost {})",
                o.boxes,
                r.backend,
                r.events_acked,
                r.seconds,
                r.events_per_sec,
                o.events_per_sec,
                r.heartbeats,
                r.heartbeats_per_sec,
                r.batches,
                r.latency_ms.0,
                r.latency_ms.1,
                r.latency_ms.2,
                r.latency_ms.3,
                r.errors,
                r.stored,
                r.lost
            );
            if r.lost != 0 {
                bail!("{} acknowledged events are not in the store", r.lost);
            }
            Ok(())
        }
        Cmd::Ctl { url, token, cmd } => ctl(&url, token.as_deref(), cmd),
    }
}

fn call(
    url: &str,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> anyhow::Result<serde_json::Value> {
    let full = format!("{}{}", url.trim_end_matches('/'), path);
    let mut req = ureq::request(method, &full);
    if let Some(t) = token {
        req = req.set("Authorization", &format!("Bearer {t}"));
    }
    let resp = match body {
        Some(b) => req.set("Content-Type", "application/json").send_string(b),
        None => req.call(),
    };
    match resp {
        Ok(r) => Ok(r.into_json()?),
        Err(ureq::Error::Status(code, r)) => {
            let text = r.into_string().unwrap_or_default();
            let msg = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_string))
                .unwrap_or(text);
            bail!("{method} {path}: {code}: {msg}")
        }
        Err(e) => bail!("{full}: {e}"),
    }
}

fn ctl(url: &str, token: Option<&str>, cmd: CtlCmd) -> anyhow::Result<()> {
    let print =
        |v: serde_json::Value| println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    match cmd {
        CtlCmd::Get { path } => print(call(url, token, "GET", &path, None)?),
        CtlCmd::Post { path, body } => {
            let body = match body.as_deref() {
                Some("-") => std::io::read_to_string(std::io::stdin())?,
                Some(b) => b.to_string(),
                None => "{}".into(),
            };
            print(call(url, token, "POST", &path, Some(&body))?)
        }
        CtlCmd::Boxes => {
            let v = call(url, token, "GET", "/api/v1/boxes", None)?;
            println!(
                "{:<20} {:<14} {:<13} {:<9} STATUS",
                "BOX", "CUSTOMER", "PLAN", "KIND"
            );
            for b in v.as_array().into_iter().flatten() {
                println!(
                    "{:<20} {:<14} {:<13} {:<9} {}",
                    b["id"].as_str().unwrap_or(""),
                    b["customer_id"].as_str().unwrap_or(""),
                    b["plan"].as_str().unwrap_or(""),
                    b["kind"].as_str().unwrap_or(""),
                    b["status_text"].as_str().unwrap_or("")
                );
            }
        }
        CtlCmd::Incidents { open } => {
            let path = if open {
                "/api/v1/incidents?open=true"
            } else {
                "/api/v1/incidents"
            };
            let v = call(url, token, "GET", path, None)?;
            println!(
                "{:<6} {:<16} {:<9} {:<20} {:<6} SUMMARY",
                "ID", "BOX", "SEVERITY", "STATE", "COUNT"
            );
            for i in v.as_array().into_iter().flatten() {
                println!(
                    "{:<6} {:<16} {:<9} {:<20} {:<6} {}",
                    i["id"],
                    i["box_id"].as_str().unwrap_or(""),
                    i["severity"].as_str().unwrap_or(""),
                    i["state"].as_str().unwrap_or(""),
                    i["count"],
                    i["summary"].as_str().unwrap_or("")
                );
            }
        }
        CtlCmd::Statement { customer, month } => {
            let v = call(
                url,
                token,
                "GET",
                &format!("/api/v1/customers/{customer}/statement?month={month}"),
                None,
            )?;
            println!(
                "{} {}",
                v["customer"].as_str().unwrap_or(""),
                v["month"].as_str().unwrap_or("")
            );
            for l in v["lines"].as_array().into_iter().flatten() {
                println!(
                    "  {:<10} {:<14} {:>12}{}  {}  [{}]",
                    l["date"].as_str().unwrap_or(""),
                    l["box_id"].as_str().unwrap_or(""),
                    l["amount_text"].as_str().unwrap_or(""),
                    if l["waived"] == true { " (waived)" } else { "" },
                    l["item"].as_str().unwrap_or(""),
                    l["clause"].as_str().unwrap_or("")
                );
            }
            println!("  total {}", v["total_text"].as_str().unwrap_or(""));
        }
        CtlCmd::Calls => print(call(url, token, "GET", "/api/v1/calls", None)?),
        CtlCmd::Act { id, action, note } => {
            let body = serde_json::json!({"action": action, "note": note}).to_string();
            print(call(
                url,
                token,
                "POST",
                &format!("/api/v1/incidents/{id}/actions"),
                Some(&body),
            )?)
        }
    }
    Ok(())
}

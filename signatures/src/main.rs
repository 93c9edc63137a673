//! `mimamori-sig`: tools for pattern files (today: the Suricata rule load report).

use anyhow::Context;
use clap::{Parser, Subcommand};
use mimamori_signatures::rule::{Classifications, Vars, load_files};
use std::path::PathBuf;
use std::time::Instant;

#[derive(Parser)]
#[command(name = "mimamori-sig", version, about = "mimamori pattern-file tools")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Parse Suricata rule files and report what loads and what is skipped, and why.
    RulesReport {
        /// Rule files or directories of *.rules.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// classification.config, to check classtypes.
        #[arg(long)]
        classification: Option<PathBuf>,
        /// List this many skipped rules (file:line sid reason).
        #[arg(long, default_value_t = 0)]
        show_skipped: usize,
        #[arg(long)]
        json: bool,
    },
}

fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().cmd {
        Cmd::RulesReport {
            paths,
            classification,
            show_skipped,
            json,
        } => {
            let classes = match &classification {
                Some(p) => Some(Classifications::load(p).map_err(anyhow::Error::msg)?),
                None => None,
            };
            let t = Instant::now();
            let refs: Vec<&std::path::Path> = paths.iter().map(|p| p.as_path()).collect();
            let (set, report) = load_files(&refs, &Vars::default())
                .map_err(anyhow::Error::msg)
                .context("loading rules")?;
            let secs = t.elapsed().as_secs_f64();
            let unknown_classtypes = classes.as_ref().map_or(0, |c| {
                set.rules
                    .iter()
                    .filter(|r| {
                        r.rule
                            .meta
                            .classtype
                            .as_ref()
                            .is_some_and(|k| !c.0.contains_key(k))
                    })
                    .count()
            });
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "files": report.files, "enabled": report.enabled, "loaded": report.loaded, "disabled": report.disabled,
                        "loaded_share": report.loaded_share(), "parse_seconds": secs, "peak_rss_mb": rss_mb(),
                        "skipped_by_reason": report.skipped_by_reason, "unknown_classtypes": unknown_classtypes,
                    }))?
                );
            } else {
                println!(
                    "{} files, {} enabled rules ({} commented out)",
                    report.files, report.enabled, report.disabled
                );
                println!(
                    "loaded  {} ({:.1} %) in {:.3} s, peak RSS {:.0} MB (parse only; no engine yet)",
                    report.loaded,
                    report.loaded_share() * 100.0,
                    secs,
                    rss_mb()
                );
                println!("skipped {}:", report.enabled - report.loaded);
                for (reason, n) in report.top_reasons(40) {
                    println!("  {n:>6}  {reason}");
                }
                if classes.is_some() {
                    println!(
                        "rules with a classtype missing from the classification file: {unknown_classtypes}"
                    );
                }
                for s in report.skipped.iter().take(show_skipped) {
                    println!(
                        "  {}:{} sid {} {}",
                        s.file,
                        s.line,
                        s.sid.map_or("-".into(), |x| x.to_string()),
                        s.reason
                    );
                }
            }
        }
    }
    Ok(())
}

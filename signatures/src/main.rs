//! `mimamori-sig`: tools for pattern files: the Suricata rule load report, the URL
//! category database, and signed pattern bundles (`bundle keygen|build|sign|verify|inspect`).

use anyhow::Context;
use clap::{Parser, Subcommand};
use mimamori_signatures::bundle;
use mimamori_signatures::category::{Builder, CategoryDb};
use mimamori_signatures::outln;
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
    /// Build a URL category database from squidGuard/UT1 folders and hosts-format lists.
    BuildCategories {
        /// SOURCE=DIR: a squidGuard folder (`<category>/domains`, `<category>/urls`).
        #[arg(long)]
        squidguard: Vec<String>,
        /// CATEGORY:SOURCE=FILE: a hosts-format or plain domain list.
        #[arg(long)]
        hosts: Vec<String>,
        /// Date of the lists, recorded per source.
        #[arg(long, default_value = "unknown")]
        date: String,
        #[arg(long, short)]
        output: PathBuf,
    },
    /// Look names (`example.test`) or URLs (`http://example.test/path`) up in a database.
    Lookup { db: PathBuf, names: Vec<String> },
    /// Lookups per second on a random mix of hits and misses with subdomain walks, beside a
    /// HashSet<String> doing the same walk over the same names.
    BenchCategories {
        db: PathBuf,
        /// The squidGuard folder the database was built from (source of the hit names).
        #[arg(long)]
        squidguard: PathBuf,
        #[arg(long, default_value_t = 2_000_000)]
        lookups: usize,
    },
    /// Signed pattern bundles: make a key, build, sign, verify, inspect (docs/PATTERNS.md).
    Bundle {
        #[command(subcommand)]
        op: BundleCmd,
    },
}

#[derive(Subcommand)]
enum BundleCmd {
    /// Make an ed25519 signing key: the secret to OUTPUT (mode 0600, never overwritten),
    /// the public key to OUTPUT.pub and to standard output.
    Keygen {
        #[arg(long, short)]
        output: PathBuf,
    },
    /// Build an unsigned bundle from part files (each part is named by its file name).
    Build {
        /// rules, categories, apps, malware or spam.
        #[arg(long)]
        kind: String,
        /// The bundle's version: a whole number, higher than every earlier one of its kind.
        #[arg(long)]
        version: u64,
        /// The oldest gateway that can use the bundle (MAJOR.MINOR.PATCH).
        #[arg(long)]
        min_gateway: String,
        /// Publication time: seconds since 1970 or YYYY-MM-DDTHH:MM:SSZ (default: now).
        #[arg(long)]
        published: Option<String>,
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[arg(long, short)]
        output: PathBuf,
    },
    /// Sign a bundle (in place, or to --output). A second key adds a second signature.
    Sign {
        /// The secret key file written by `bundle keygen`.
        #[arg(long)]
        key: PathBuf,
        bundle: PathBuf,
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Verify a bundle as a box does: signature by a trusted key, every part's size and hash.
    Verify {
        /// A trusted public key (its text form, or a file holding it); at most two.
        #[arg(long, required = true)]
        trust: Vec<String>,
        /// Also refuse a bundle that needs a newer gateway than this (MAJOR.MINOR.PATCH).
        #[arg(long)]
        gateway: Option<String>,
        bundle: PathBuf,
    },
    /// Print a bundle's manifest and signers as JSON (signatures are not checked).
    Inspect { bundle: PathBuf },
}

fn parse_pair(s: &str) -> anyhow::Result<(String, PathBuf)> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| anyhow::anyhow!("{s:?}: expected NAME=PATH"))?;
    Ok((k.to_string(), PathBuf::from(v)))
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
            let t = Instant::now();
            let (_engine, built) = mimamori_signatures::engine::Engine::build(&set);
            let compile_secs = t.elapsed().as_secs_f64();
            let compiled_share = built.compiled as f64 / report.enabled.max(1) as f64;
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
                outln!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "files": report.files, "enabled": report.enabled, "loaded": report.loaded, "disabled": report.disabled,
                        "loaded_share": report.loaded_share(), "parse_seconds": secs, "peak_rss_mb": rss_mb(),
                        "skipped_by_reason": report.skipped_by_reason, "unknown_classtypes": unknown_classtypes,
                        "compiled": built.compiled, "compiled_share": compiled_share, "compile_seconds": compile_secs,
                        "refused_by_engine": built.skipped_by_reason,
                    }))?
                );
            } else {
                outln!(
                    "{} files, {} enabled rules ({} commented out)",
                    report.files,
                    report.enabled,
                    report.disabled
                );
                outln!(
                    "loaded  {} ({:.1} %) in {:.3} s",
                    report.loaded,
                    report.loaded_share() * 100.0,
                    secs,
                );
                outln!(
                    "compiled {} ({:.1} % of enabled) in {:.3} s more; peak RSS {:.0} MB",
                    built.compiled,
                    compiled_share * 100.0,
                    compile_secs,
                    rss_mb()
                );
                for (reason, n) in &built.skipped_by_reason {
                    outln!("  {n:>6}  refused by the engine: {reason}");
                }
                outln!("skipped {}:", report.enabled - report.loaded);
                for (reason, n) in report.top_reasons(40) {
                    outln!("  {n:>6}  {reason}");
                }
                if classes.is_some() {
                    outln!(
                        "rules with a classtype missing from the classification file: {unknown_classtypes}"
                    );
                }
                for s in report.skipped.iter().take(show_skipped) {
                    outln!(
                        "  {}:{} sid {} {}",
                        s.file,
                        s.line,
                        s.sid.map_or("-".into(), |x| x.to_string()),
                        s.reason
                    );
                }
            }
        }
        Cmd::BuildCategories {
            squidguard,
            hosts,
            date,
            output,
        } => {
            let t = Instant::now();
            let mut b = Builder::default();
            for sg in &squidguard {
                let (src, dir) = parse_pair(sg)?;
                b.add_squidguard_dir(&dir, &src, &date)
                    .map_err(anyhow::Error::msg)?;
            }
            for h in &hosts {
                let (left, file) = parse_pair(h)?;
                let (cat, src) = left
                    .split_once(':')
                    .ok_or_else(|| anyhow::anyhow!("{h:?}: expected CATEGORY:SOURCE=FILE"))?;
                b.add_hosts_file(&file, cat, src, &date)
                    .map_err(anyhow::Error::msg)?;
            }
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let (bytes, report) = b.finish(now);
            // A new file renamed over the old: a gateway mapping the old one keeps reading
            // consistent bytes.
            let tmp = output.with_extension("tmp");
            std::fs::write(&tmp, &bytes)
                .and_then(|()| std::fs::rename(&tmp, &output))
                .with_context(|| format!("{}: cannot write", output.display()))?;
            let db = CategoryDb::from_bytes(bytes).map_err(anyhow::Error::msg)?;
            let names = report.domains + report.urls;
            outln!(
                "{}: {} entries ({} domains, {} URLs, {} duplicates dropped), {} categories, {} sources",
                output.display(),
                db.len(),
                report.domains,
                report.urls,
                report.duplicates,
                db.categories.len(),
                db.sources.len()
            );
            outln!(
                "built in {:.2} s; {} bytes = {:.1} bytes per name",
                t.elapsed().as_secs_f64(),
                db.memory_bytes(),
                db.memory_bytes() as f64 / names.max(1) as f64
            );
            for (file, n) in &report.invalid {
                outln!("  {n} invalid lines in {file}");
            }
        }
        Cmd::Lookup { db, names } => {
            let db = CategoryDb::open(&db).map_err(anyhow::Error::msg)?;
            let mut out = Vec::new();
            for n in names {
                let hit = if n.contains('/') {
                    let (host, path) = mimamori_signatures::category::split_url(&n);
                    db.lookup_url(host, path, &mut out)
                } else {
                    db.lookup_host(&n, &mut out)
                };
                let cats: Vec<String> = out
                    .iter()
                    .map(|m| {
                        format!(
                            "{} ({} {:?})",
                            db.categories[usize::from(m.category)],
                            db.sources[usize::from(m.source)].0,
                            m.kind
                        )
                    })
                    .collect();
                outln!("{n}: {}", if hit { cats.join(", ") } else { "-".into() });
            }
        }
        Cmd::BenchCategories {
            db,
            squidguard,
            lookups,
        } => bench_categories(&db, &squidguard, lookups)?,
        Cmd::Bundle { op } => bundle_cmd(op)?,
    }
    Ok(())
}

fn read_bundle(path: &std::path::Path, limits: &bundle::Limits) -> anyhow::Result<Vec<u8>> {
    let len = std::fs::metadata(path)
        .with_context(|| format!("bundle {}: cannot read", path.display()))?
        .len();
    anyhow::ensure!(
        len <= limits.max_bundle,
        "bundle {}: refused: {}",
        path.display(),
        bundle::BundleError::BundleTooLarge {
            size: len,
            limit: limits.max_bundle
        }
    );
    std::fs::read(path).with_context(|| format!("bundle {}: cannot read", path.display()))
}

/// Writes through a temporary file in the same folder, synced, then renamed over `path`:
/// a crash leaves the old file or the new one, never half of one.
fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    let tmp = path.with_file_name(name);
    let res = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res.with_context(|| format!("{}: cannot write", path.display()))
}

fn bundle_cmd(op: BundleCmd) -> anyhow::Result<()> {
    use bundle::keys;
    let limits = bundle::Limits::default();
    match op {
        BundleCmd::Keygen { output } => {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let key = keys::generate().map_err(anyhow::Error::msg)?;
            let public = keys::public_to_text(&key.verifying_key());
            let mut pub_name = output.file_name().unwrap_or_default().to_os_string();
            pub_name.push(".pub");
            let pub_path = output.with_file_name(pub_name);
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&output)
                .with_context(|| {
                    format!(
                        "{}: cannot create (an existing key is never overwritten)",
                        output.display()
                    )
                })?;
            f.write_all(keys::secret_to_text(&key).as_bytes())
                .and_then(|()| f.sync_all())
                .with_context(|| format!("{}: cannot write", output.display()))?;
            write_atomic(&pub_path, format!("{public}\n").as_bytes())?;
            eprintln!(
                "secret key in {} (keep it off the boxes), public key in {}, key id {}",
                output.display(),
                pub_path.display(),
                keys::KeyId::of(key.verifying_key().as_bytes())
            );
            outln!("{public}");
        }
        BundleCmd::Build {
            kind,
            version,
            min_gateway,
            published,
            files,
            output,
        } => {
            let kind: bundle::Kind = kind.parse().map_err(anyhow::Error::msg)?;
            let min_gateway: bundle::GatewayVersion =
                min_gateway.parse().map_err(anyhow::Error::msg)?;
            let published = match published {
                Some(p) => bundle::parse_time(&p).ok_or_else(|| {
                    anyhow::anyhow!(
                        "--published {p:?}: expected seconds since 1970 or YYYY-MM-DDTHH:MM:SSZ"
                    )
                })?,
                None => std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs()),
            };
            let mut parts = Vec::with_capacity(files.len());
            for f in &files {
                let name = f
                    .file_name()
                    .and_then(|n| n.to_str())
                    .ok_or_else(|| anyhow::anyhow!("{}: no usable file name", f.display()))?
                    .to_string();
                let len = std::fs::metadata(f)
                    .with_context(|| format!("{}: cannot read", f.display()))?
                    .len();
                anyhow::ensure!(
                    len <= limits.max_part,
                    "part {name}: {len} bytes, more than the limit of {}",
                    limits.max_part
                );
                let data =
                    std::fs::read(f).with_context(|| format!("{}: cannot read", f.display()))?;
                parts.push((name, data));
            }
            let spec = bundle::BuildSpec {
                kind,
                version,
                published,
                min_gateway,
            };
            let bytes = bundle::build(&spec, &parts, &limits)
                .map_err(|e| anyhow::anyhow!("bundle {}: {e}", output.display()))?;
            write_atomic(&output, &bytes)?;
            outln!(
                "{}: {kind} version {version}, {} parts, {} bytes, unsigned (next: bundle sign)",
                output.display(),
                parts.len(),
                bytes.len()
            );
        }
        BundleCmd::Sign {
            key,
            bundle: path,
            output,
        } => {
            let text = std::fs::read_to_string(&key)
                .with_context(|| format!("{}: cannot read the key", key.display()))?;
            let key = keys::secret_from_text(&text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", key.display()))?;
            let bytes = read_bundle(&path, &limits)?;
            let signed = bundle::sign(&bytes, &key, &limits)
                .map_err(|e| anyhow::anyhow!("bundle {}: cannot sign: {e}", path.display()))?;
            let out = output.unwrap_or(path);
            write_atomic(&out, &signed)?;
            outln!(
                "{}: signed by key {}",
                out.display(),
                keys::KeyId::of(key.verifying_key().as_bytes())
            );
        }
        BundleCmd::Verify {
            trust,
            gateway,
            bundle: path,
        } => {
            let trust =
                keys::TrustedKeys::from_texts_or_files(&trust).map_err(anyhow::Error::msg)?;
            let mut v = bundle::Verifier::new(trust);
            v.gateway = match gateway {
                Some(g) => Some(g.parse().map_err(anyhow::Error::msg)?),
                None => None,
            };
            let bytes = read_bundle(&path, &v.limits)?;
            let ok = v
                .check(&path.display().to_string(), &bytes)
                .map_err(anyhow::Error::msg)?;
            let m = &ok.manifest;
            outln!(
                "{}: OK: {} version {}, published {}, for gateway {} or later, signed by key {}, {} parts",
                path.display(),
                m.kind,
                m.version,
                bundle::utc(m.published),
                m.min_gateway,
                ok.signer,
                m.parts.len()
            );
            for p in &m.parts {
                outln!("  {}  {:>12}  {}", p.sha256, p.size, p.name);
            }
        }
        BundleCmd::Inspect { bundle: path } => {
            let bytes = read_bundle(&path, &limits)?;
            let i = bundle::inspect(&bytes, &limits)
                .map_err(|e| anyhow::anyhow!("bundle {}: {e}", path.display()))?;
            outln!("{}", serde_json::to_string_pretty(&i)?);
        }
    }
    Ok(())
}

/// Queries: half hits (a listed domain under a random extra label), half misses (random
/// names under a listed TLD), shuffled; both structures walk the same label suffixes.
fn bench_categories(
    db: &std::path::Path,
    dir: &std::path::Path,
    lookups: usize,
) -> anyhow::Result<()> {
    let db = CategoryDb::open(db).map_err(anyhow::Error::msg)?;
    let mut names: Vec<String> = Vec::new();
    for e in std::fs::read_dir(dir)?.filter_map(|e| e.ok()) {
        if let Ok(t) = std::fs::read_to_string(e.path().join("domains")) {
            names.extend(
                t.lines()
                    .map(|l| l.trim().to_ascii_lowercase())
                    .filter(|l| !l.is_empty()),
            );
        }
    }
    anyhow::ensure!(!names.is_empty(), "{}: no domains found", dir.display());
    let set: std::collections::HashSet<String> = names.iter().cloned().collect();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let queries: Vec<String> = (0..lookups.clamp(1000, 50_000_000) / 10)
        .map(|i| {
            if i % 2 == 0 {
                format!(
                    "cdn{}.{}",
                    rnd() % 100,
                    names[(rnd() as usize) % names.len()]
                )
            } else {
                format!("host{}.shop{}.example.com", rnd() % 10_000, rnd() % 100_000)
            }
        })
        .collect();
    let rounds = 10;
    let mut out = Vec::with_capacity(8);
    let t = Instant::now();
    let mut hits = 0usize;
    for _ in 0..rounds {
        for q in &queries {
            hits += usize::from(db.lookup_host(std::hint::black_box(q), &mut out));
        }
    }
    let ours = (queries.len() * rounds) as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut base_hits = 0usize;
    for _ in 0..rounds {
        for q in &queries {
            let mut rest = std::hint::black_box(q.as_str());
            loop {
                if set.contains(rest) {
                    base_hits += 1;
                    break;
                }
                match rest.find('.') {
                    Some(i) => rest = &rest[i + 1..],
                    None => break,
                }
            }
        }
    }
    let base = (queries.len() * rounds) as f64 / t.elapsed().as_secs_f64();
    outln!(
        "{} names in the lists, {} queries x {rounds}, {:.1} % hits (HashSet agrees on {:.1} %)",
        names.len(),
        queries.len(),
        hits as f64 * 100.0 / (queries.len() * rounds) as f64,
        base_hits as f64 * 100.0 / (queries.len() * rounds) as f64
    );
    outln!(
        "category db        {:>8.2} M lookups/s  ({} bytes resident, {:.1} bytes per listed name)",
        ours / 1e6,
        db.memory_bytes(),
        db.memory_bytes() as f64 / db.len().max(1) as f64
    );
    outln!(
        "HashSet<String>    {:>8.2} M lookups/s  (baseline, same walk)",
        base / 1e6
    );
    outln!("ratio              {:>8.2}x", ours / base);
    Ok(())
}

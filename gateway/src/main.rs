//! `mimamori-gw`: the gateway's data plane and its offline tools.

use anyhow::Context;
use clap::{Parser, Subcommand};
use mimamori_gateway::bench::{self, BenchConfig};
use mimamori_gateway::capture::PcapWriter;
#[cfg(feature = "dpdk")]
use mimamori_gateway::dataplane::{self, Layout, Overload, RunConfig, Tier};
use mimamori_gateway::replay::{LanSide, Replay};
#[cfg(feature = "dpdk")]
use mimamori_gateway::startup;
use mimamori_gateway::webfilter::WebSetup;
#[cfg(feature = "dpdk")]
use mimamori_pipelines::inspect::RuleBook;
use mimamori_pipelines::{Policy, synth};
use mimamori_signatures::{out, outln};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "mimamori-gw",
    version,
    about = "mimamori gateway: stateful firewall data plane"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a pcap/pcapng capture through the classify stage under a policy.
    Replay {
        /// Capture to read (pcap or pcapng, Ethernet).
        input: PathBuf,
        /// Policy file (TOML); the embedded default when absent.
        #[arg(long)]
        policy: Option<PathBuf>,
        /// Write forwarded packets and the gateway's answers here.
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Write events here as EVE JSON lines.
        #[arg(long)]
        eve: Option<PathBuf>,
        /// Also write the summary as JSON to this file.
        #[arg(long)]
        summary_json: Option<PathBuf>,
        /// Inspect forwarded packets with these Suricata rules (a file or a folder of
        /// *.rules); alerts go to --eve. TCP is reassembled; the policy's `[ips] mode`
        /// decides whether drop/reject rules act.
        #[arg(long)]
        rules: Option<PathBuf>,
        /// Suricata's `threshold.config` for --rules (suppress, threshold/event_filter,
        /// rate_filter); a rules folder's own `threshold.config` is read without it.
        #[arg(long)]
        threshold_file: Option<PathBuf>,
        /// URL category database (`mimamori-sig build-categories`): turns on the web filter
        /// with the policy's `[web]` section.
        #[arg(long)]
        categories: Option<PathBuf>,
        /// Which side each frame came from: `subnets` (the policy's `[sides]`: a source
        /// MAC or IP listed there is the LAN, anything else the WAN) or `initiator` (the
        /// host that opened a flow is on the LAN, whatever its address: the first packet
        /// seen decides; a TCP SYN was sent by the LAN host, a SYN-ACK to it, otherwise the
        /// sender of the first packet is the LAN host; non-IP frames use `[sides]`).
        /// `initiator` suits captures taken anywhere, e.g. public test captures.
        #[arg(long, value_enum, default_value = "subnets")]
        lan_side: LanSide,
        /// Do not check IPv4 header checksums (captures taken with checksum offload, or
        /// anonymised without fixing them); the live gateway always checks.
        #[arg(long)]
        no_ipv4_checksum: bool,
    },
    /// Score the web filter's name reading (TLS SNI, QUIC SNI) against nDPI's expected
    /// results: every capture of an nDPI test-data folder is replayed with
    /// `--lan-side initiator`, everything allowed, and each expected `Hostname/SNI` of a
    /// TLS or QUIC flow in `result/<capture>.out` counts as found when the web filter
    /// reported that name from a TLS or QUIC ClientHello.
    SniRecall {
        /// nDPI test data: `pcap/<capture>` and `result/<capture>.out`.
        dir: PathBuf,
        /// Only this capture (its file name, e.g. `443-curl.pcap`).
        #[arg(long)]
        only: Option<String>,
        /// Print JSON instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Write synthetic office traffic to a pcap file.
    Synth {
        output: PathBuf,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Conversations to generate.
        #[arg(long, default_value_t = 200)]
        sessions: usize,
        /// Stop after this many packets (0: no limit).
        #[arg(long, default_value_t = 0)]
        max_packets: usize,
        /// Share of IPv6 conversations, percent.
        #[arg(long, default_value_t = 25)]
        ipv6_percent: u8,
        /// Share of inbound probes from the WAN, percent.
        #[arg(long, default_value_t = 2)]
        probe_percent: u8,
        /// Tag every frame with this VLAN ID.
        #[arg(long, default_value_t = 0)]
        vlan: u16,
        /// Seconds over which conversations start.
        #[arg(long, default_value_t = 10.0)]
        spread: f64,
    },
    /// Macro benchmark: firewall path Mpps per core on 64-byte packets.
    Bench {
        #[arg(long, default_value_t = 100_000)]
        flows: usize,
        /// Packets in the in-memory set.
        #[arg(long, default_value_t = 1_000_000)]
        packets: usize,
        /// Seconds per measurement.
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
        /// Visit flows round-robin instead of in random order.
        #[arg(long)]
        sequential: bool,
        /// Also measure resident memory of a table holding this many flows.
        #[arg(long)]
        memory_flows: Option<usize>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Check a policy file and print what it compiles to.
    CheckPolicy { policy: PathBuf },
    #[cfg(feature = "dpdk")]
    /// Bridge a LAN port and a WAN port on DPDK, applying the firewall (needs root).
    Run {
        /// LAN port: a DPDK device string (`net_af_packet0,iface=eth1`, `0000:03:00.0`, …).
        #[arg(long)]
        lan: String,
        /// WAN port, as --lan.
        #[arg(long)]
        wan: String,
        /// BOX plan: sets the default layout and worker count. Without it, the plan the
        /// desk gave the control plane (with --control-plane), else light.
        #[arg(long, value_enum)]
        tier: Option<Tier>,
        /// Stage placement (overrides the tier).
        #[arg(long, value_enum)]
        layout: Option<Layout>,
        /// Classify workers in the pipeline layout (overrides the tier).
        #[arg(long)]
        workers: Option<usize>,
        /// When the ring into the classify workers is full.
        #[arg(long, value_enum, default_value = "fail-open")]
        overload: Overload,
        /// Policy file (TOML); the embedded default when absent.
        #[arg(long)]
        policy: Option<PathBuf>,
        /// Write events here as EVE JSON lines.
        #[arg(long)]
        eve: Option<PathBuf>,
        /// URL category database: turns on the web filter with the policy's `[web]` section.
        #[arg(long)]
        categories: Option<PathBuf>,
        /// Suricata rules (a file or a folder of *.rules): forwarded traffic is inspected,
        /// alerts go to --eve / the control plane; the policy's `[ips] mode` says whether
        /// drop and reject rules act (ips) or only alert (ids).
        #[arg(long)]
        rules: Option<PathBuf>,
        /// The control plane's gateway socket (`mimamori-cp serve --gateway-socket`): the
        /// current policy is asked for there at start, and events are streamed to it. The
        /// gateway starts under the first policy that compiles here: the control plane's,
        /// the last one that ran (in --state-dir), the --policy file, the embedded default.
        #[arg(long)]
        control_plane: Option<PathBuf>,
        /// Where the gateway keeps what must survive a restart (the last policy that ran).
        #[arg(long, default_value = "/var/lib/mimamori")]
        state_dir: PathBuf,
        /// Serve statistics on this Unix socket (read them with `mimamori-gw stats`).
        #[arg(long, default_value = "/run/mimamori/gw.sock")]
        stats_socket: PathBuf,
        /// EAL core list (`-l`); by default one lcore per stage, mapped onto the cores there are.
        #[arg(long)]
        lcores: Option<String>,
        /// Run without hugepages (slower; for test machines).
        #[arg(long)]
        no_huge: bool,
        /// DPDK runtime file prefix; give each gateway process its own.
        #[arg(long, default_value = "mimamori")]
        file_prefix: String,
        /// Mbufs in the packet pool.
        #[arg(long, default_value_t = 16383)]
        mbufs: u32,
        /// Stop after this many seconds (default: until SIGINT/SIGTERM).
        #[arg(long)]
        duration: Option<f64>,
        /// Print the final statistics as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write the live-bench pcaps: one 64-byte UDP frame per flow per direction.
    BenchPcap {
        #[arg(long, default_value_t = 20_000)]
        flows: usize,
        #[arg(long)]
        lan: PathBuf,
        #[arg(long)]
        wan: PathBuf,
    },
    /// Run Suricata's regression tests (suricata-verify layout) through `replay --rules`
    /// and report pass / fail / skipped with reasons.
    Conformance {
        /// The suite's folder (its `tests/`, or one test).
        dir: PathBuf,
        /// Only tests whose name contains this.
        #[arg(long)]
        filter: Option<String>,
        /// Write the Markdown report here (else a summary is printed).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    #[cfg(feature = "dpdk")]
    /// Hand a policy to a running gateway (hot apply; the control plane does this).
    Apply {
        policy: PathBuf,
        /// Must be newer than the running version.
        #[arg(long)]
        version: u64,
        #[arg(long, default_value = "/run/mimamori/gw.sock")]
        socket: PathBuf,
    },
    #[cfg(feature = "dpdk")]
    /// Print the statistics of a running gateway.
    Stats {
        #[arg(long, default_value = "/run/mimamori/gw.sock")]
        socket: PathBuf,
    },
}

fn main() {
    if let Err(e) = run(Cli::parse()) {
        eprintln!("mimamori-gw: {e:#}");
        std::process::exit(1);
    }
}

fn load_policy(path: Option<&PathBuf>) -> anyhow::Result<Arc<Policy>> {
    Ok(Arc::new(match path {
        Some(p) => Policy::load(p)?,
        None => Policy::default(),
    }))
}

/// The policy and, with a category database, the web filter compiled from both.
fn load_policy_web(
    path: Option<&PathBuf>,
    categories: Option<&PathBuf>,
) -> anyhow::Result<(Arc<Policy>, Option<WebSetup>)> {
    let policy = load_policy(path)?;
    let name = path.map_or("<embedded default>".to_string(), |p| {
        p.display().to_string()
    });
    let web = match categories {
        Some(db) => Some(WebSetup::load(&policy, &name, db)?),
        None => None,
    };
    Ok((policy, web))
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.cmd {
        Cmd::Replay {
            input,
            policy,
            output,
            eve,
            summary_json,
            rules,
            threshold_file,
            categories,
            lan_side,
            no_ipv4_checksum,
        } => {
            let (policy, web) = load_policy_web(policy.as_ref(), categories.as_ref())?;
            let summary = Replay {
                input: &input,
                output: output.as_deref(),
                eve: eve.as_deref(),
                policy,
                rules: rules.as_deref(),
                threshold_file: threshold_file.as_deref(),
                web,
                lan_side,
                ipv4_checksums: !no_ipv4_checksum,
            }
            .run()?;
            out!("{}", summary.text());
            if let Some(p) = summary_json {
                std::fs::write(&p, serde_json::to_vec_pretty(&summary)?)
                    .with_context(|| format!("{}: cannot write", p.display()))?;
            }
            if summary.damage.is_some() {
                std::process::exit(2);
            }
            if summary.records > 0 && summary.skipped_link_type == summary.records {
                anyhow::bail!(
                    "{}: none of its {} records has a link type replay reads (Ethernet, raw IPv4/IPv6, Linux cooked v1/v2, BSD loopback, PPP, Cisco HDLC)",
                    input.display(),
                    summary.records
                );
            }
        }
        Cmd::SniRecall { dir, only, json } => {
            let report = mimamori_gateway::sni_recall::run(&dir, only.as_deref())?;
            if json {
                outln!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                out!("{}", report.text());
            }
        }
        Cmd::Synth {
            output,
            seed,
            sessions,
            max_packets,
            ipv6_percent,
            probe_percent,
            vlan,
            spread,
        } => {
            if ipv6_percent > 100 || probe_percent > 100 {
                anyhow::bail!("--ipv6-percent and --probe-percent must be 0-100");
            }
            if vlan > 4094 {
                anyhow::bail!("--vlan must be 0-4094");
            }
            let cfg = synth::Config {
                seed,
                sessions,
                max_packets,
                ipv6_percent,
                probe_percent,
                vlan,
                spread_ns: (spread.max(0.0) * 1e9) as u64,
                ..synth::Config::default()
            };
            let pkts = synth::generate(&cfg);
            let mut w = PcapWriter::create(&output)
                .with_context(|| format!("{}: cannot create", output.display()))?;
            let mut bytes = 0;
            for p in &pkts {
                w.write(p.ts_ns, &p.frame)?;
                bytes += p.frame.len();
            }
            w.finish()?;
            outln!(
                "wrote {} packets ({bytes} bytes) in {sessions} conversations to {}",
                pkts.len(),
                output.display()
            );
        }
        Cmd::Bench {
            flows,
            packets,
            seconds,
            sequential,
            memory_flows,
            json,
        } => {
            let r = bench::run(&BenchConfig {
                flows,
                packets: packets.max(BURST_MIN),
                seconds,
                random: !sequential,
                seed: 7,
            });
            let mem = memory_flows.map(bench::memory).transpose()?;
            if json {
                outln!(
                    "{}",
                    serde_json::to_string_pretty(
                        &serde_json::json!({ "throughput": r, "memory": mem })
                    )?
                );
            } else {
                outln!(
                    "firewall path, {} live flows, {}-byte frames, {} order, one core",
                    r.flows,
                    r.frame_bytes,
                    r.order
                );
                outln!(
                    "  baseline (parse only)   {:8.2} Mpps",
                    r.baseline_parse_mpps
                );
                outln!(
                    "  parse+flow+verdict      {:8.2} Mpps  ({:.1} ns/packet, {:.2}x of baseline)",
                    r.firewall_path_mpps,
                    r.ns_per_packet,
                    r.ratio_to_parse
                );
                outln!(
                    "  forwarded               {:8.1} %",
                    r.forwarded_share * 100.0
                );
                if let Some(m) = mem {
                    outln!(
                        "flow table memory: {} flows, {:.1} MB resident, {:.0} bytes/flow (entry {} bytes)",
                        m.flows,
                        m.resident_bytes as f64 / 1e6,
                        m.bytes_per_flow,
                        m.flow_entry_bytes
                    );
                }
            }
        }
        Cmd::CheckPolicy { policy } => {
            let p = Policy::load(&policy)?;
            outln!(
                "{}: ok, {} rules (including built-ins), flow capacity {}",
                policy.display(),
                p.firewall.rules.len(),
                p.flows.capacity
            );
            for (i, r) in p.firewall.rules.iter().enumerate() {
                outln!(
                    "  {:>3} {:<7} from {:<4} {}",
                    i + 1,
                    format!("{:?}", r.action).to_lowercase(),
                    format!("{:?}", r.from).to_lowercase(),
                    r.name
                );
            }
        }
        #[cfg(feature = "dpdk")]
        Cmd::Run {
            lan,
            wan,
            tier,
            layout,
            workers,
            overload,
            policy,
            eve,
            categories,
            rules,
            control_plane,
            state_dir,
            stats_socket,
            lcores,
            no_huge,
            file_prefix,
            mbufs,
            duration,
            json,
        } => {
            let tier = match (tier, &control_plane) {
                (Some(t), _) => t,
                (None, Some(cp)) => match mimamori_gateway::dataplane::current_tier(cp) {
                    Ok(Some(name)) => {
                        eprintln!(
                            "mimamori-gw: tier {name}, as the box's contract says (from the control plane)"
                        );
                        <Tier as clap::ValueEnum>::from_str(&name, true).unwrap_or(Tier::Light)
                    }
                    Ok(None) => Tier::Light,
                    Err(e) => {
                        eprintln!("mimamori-gw: the control plane's tier: {e:#}; running light");
                        Tier::Light
                    }
                },
                (None, None) => Tier::Light,
            };
            let (tier_layout, tier_workers) = tier.layout();
            // Before anything touches a port or the state folder; held until the process ends.
            let _instance =
                mimamori_proto::instance::InstanceLock::acquire(&stats_socket, "gateway")
                    .map_err(anyhow::Error::msg)?;
            dataplane::control::refuse_if_running(&stats_socket)?;
            let last_good = startup::LastGood::in_dir(&state_dir);
            let mut candidates = Vec::new();
            let mut refused = Vec::new();
            if let Some(cp) = &control_plane {
                match mimamori_gateway::dataplane::current_policy(cp) {
                    Ok(Some((version, text))) => candidates.push(startup::Candidate {
                        origin: startup::Origin::ControlPlane,
                        version,
                        text,
                    }),
                    Ok(None) => eprintln!("mimamori-gw: the control plane has no policy yet"),
                    Err(e) => eprintln!("mimamori-gw: control plane not reachable ({e:#})"),
                }
                match last_good.load() {
                    Some(Ok(c)) => candidates.push(c),
                    Some(Err(e)) => refused.push(format!("the last policy that ran: {e}")),
                    None => {}
                }
            }
            if let Some(p) = &policy {
                match std::fs::read_to_string(p) {
                    Ok(text) => candidates.push(startup::Candidate {
                        origin: startup::Origin::Local(p.clone()),
                        version: 0,
                        text,
                    }),
                    Err(e) => refused.push(format!("{}: cannot read: {e}", p.display())),
                }
            }
            let chosen = startup::choose(candidates, categories.as_deref());
            refused.extend(chosen.refused.iter().map(|r| r.to_string()));
            for r in &refused {
                eprintln!("mimamori-gw: {r}");
            }
            eprintln!(
                "mimamori-gw: starting under policy version {} from {}{}",
                chosen.version,
                chosen.origin,
                if chosen.web.is_none() && categories.is_some() {
                    " (without the web filter: no policy's [web] fits the category database)"
                } else {
                    ""
                }
            );
            if control_plane.is_some()
                && let Err(e) = last_good.save(chosen.version, &chosen.text)
            {
                eprintln!("mimamori-gw: the running policy was not kept: {e:#}");
            }
            let (policy, mut web, policy_version) = (chosen.policy, chosen.web, chosen.version);
            // The control plane's pattern sets win over the files given here; one that
            // does not load leaves the file's set (or none) in force, and is shown.
            let (mut patterns, mut patterns_refused) = (Vec::new(), Vec::new());
            let mut cp_rules = None;
            if let Some(cp) = &control_plane {
                match dataplane::current_patterns(cp) {
                    Ok(files) => {
                        for f in files {
                            let t = std::time::Instant::now();
                            let path = std::path::Path::new(&f.path);
                            let res = mimamori_gateway::patterns::load(
                                &f.kind,
                                path,
                                &f.sha256,
                                &policy.sides.lan_subnets,
                            )
                            .and_then(|l| {
                                use mimamori_gateway::patterns::Compiled;
                                match l.compiled {
                                    Compiled::Rules(book) => cp_rules = Some(book),
                                    Compiled::Categories(db) => {
                                        let name = format!("policy version {}", policy_version);
                                        web = Some(
                                            mimamori_gateway::webfilter::WebSetup::with_db(
                                                &policy, &name, db,
                                            )
                                            .map_err(|e| {
                                                format!(
                                                    "{}: the starting {name} does not compile against it: {e:#}",
                                                    f.path
                                                )
                                            })?,
                                        );
                                    }
                                }
                                Ok(l.info)
                            });
                            match res {
                                Ok(info) => {
                                    eprintln!(
                                        "mimamori-gw: {} version {} from the control plane: {} in {:.2} s",
                                        info.kind,
                                        info.version,
                                        info.summary,
                                        t.elapsed().as_secs_f64()
                                    );
                                    patterns.push(info);
                                }
                                Err(e) => {
                                    eprintln!(
                                        "mimamori-gw: the control plane's {} set is refused: {e}",
                                        f.kind
                                    );
                                    patterns_refused.push(e);
                                }
                            }
                        }
                    }
                    Err(e) => {
                        eprintln!("mimamori-gw: no pattern sets from the control plane ({e:#})")
                    }
                }
            }
            let rules = match (&rules, cp_rules) {
                (_, Some(book)) => Some(book),
                (Some(path), None) => {
                    let t = std::time::Instant::now();
                    let book = RuleBook::load(path, &policy.sides.lan_subnets)
                        .map_err(anyhow::Error::msg)?;
                    eprintln!(
                        "mimamori-gw: {}: {} of {} enabled rules compiled in {:.2} s ({:?} mode)",
                        path.display(),
                        book.build.compiled,
                        book.load.enabled,
                        t.elapsed().as_secs_f64(),
                        policy.ips.mode
                    );
                    Some(Arc::new(book))
                }
                (None, None) => None,
            };
            let cfg = RunConfig {
                rules,
                patterns,
                patterns_refused,
                lan,
                wan,
                layout: layout.unwrap_or(tier_layout),
                workers: workers.unwrap_or(tier_workers),
                overload,
                policy,
                policy_version,
                policy_origin: chosen.origin.to_string(),
                policy_refused: refused,
                last_good: control_plane.is_some().then_some(last_good),
                state_dir,
                web,
                control_plane,
                eve,
                stats_socket: Some(stats_socket),
                lcores,
                no_huge,
                file_prefix,
                mbufs,
                duration: duration.map(|d| std::time::Duration::from_secs_f64(d.max(0.0))),
                json,
            };
            let json = cfg.json;
            let snap = dataplane::run(cfg)?;
            if json {
                outln!("{}", serde_json::to_string_pretty(&snap)?);
            } else {
                out!("{}", snap.text());
            }
            if snap.mempool_in_use != 0 {
                anyhow::bail!(
                    "{} mbufs were not returned to the pool",
                    snap.mempool_in_use
                );
            }
        }
        Cmd::BenchPcap { flows, lan, wan } => {
            bench::write_flow_pcaps(flows, &lan, &wan)?;
            outln!(
                "wrote {flows} flows to {} and {}",
                lan.display(),
                wan.display()
            );
        }
        Cmd::Conformance { dir, filter, out } => {
            let work =
                std::env::temp_dir().join(format!("mimamori-conformance-{}", std::process::id()));
            let results = mimamori_gateway::conformance::run_all(&dir, filter.as_deref(), &work)?;
            let _ = std::fs::remove_dir_all(&work);
            let md = mimamori_gateway::conformance::markdown(&results, &dir.display().to_string());
            let n = |o| results.iter().filter(|r| r.outcome == o).count();
            use mimamori_gateway::conformance::Outcome;
            outln!(
                "{} tests: {} pass, {} fail, {} skipped",
                results.len(),
                n(Outcome::Pass),
                n(Outcome::Fail),
                n(Outcome::Skipped)
            );
            match out {
                Some(p) => std::fs::write(&p, md)
                    .with_context(|| format!("{}: cannot write", p.display()))?,
                None => {
                    for r in results.iter().filter(|r| r.outcome != Outcome::Pass) {
                        outln!("{:<50} {:?} {}", r.name, r.outcome, r.detail);
                    }
                }
            }
        }
        #[cfg(feature = "dpdk")]
        Cmd::Apply {
            policy,
            version,
            socket,
        } => {
            let text = std::fs::read_to_string(&policy)
                .with_context(|| format!("{}: cannot read", policy.display()))?;
            let request = mimamori_proto::Request::Apply {
                version,
                policy: text,
            };
            match dataplane::control_call(&socket, &request)? {
                mimamori_proto::Answer::Applied { version, micros } => {
                    outln!("ok {version} {micros}")
                }
                mimamori_proto::Answer::Error(reason) => {
                    outln!("error {reason}");
                    std::process::exit(1);
                }
                other => anyhow::bail!("unexpected answer {other:?}"),
            }
        }
        #[cfg(feature = "dpdk")]
        Cmd::Stats { socket } => {
            match dataplane::control_call(&socket, &mimamori_proto::Request::Stats)? {
                mimamori_proto::Answer::Stats(v) => {
                    outln!("{}", serde_json::to_string_pretty(&v)?)
                }
                mimamori_proto::Answer::Error(reason) => {
                    anyhow::bail!("the gateway refused: {reason}")
                }
                other => anyhow::bail!("unexpected answer {other:?}"),
            }
        }
    }
    Ok(())
}

const BURST_MIN: usize = 32;

//! What `mimamori-gw run` is told, checked before DPDK sees any of it.

use mimamori_pipelines::Policy;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Where the stages run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    /// Every stage on one lcore, packet by burst from RX to TX.
    Rtc,
    /// One lcore for RX, one per classify worker (flows sharded by symmetric hash), one for TX.
    Pipeline,
}

/// The BOX plans, each with its default placement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Tier {
    /// Run-to-completion on one lcore.
    Light,
    /// Pipeline: RX, one classify worker, TX.
    Standard,
    /// Pipeline: RX, two classify workers, TX.
    Professional,
}

impl Tier {
    pub fn layout(self) -> (Layout, usize) {
        match self {
            Tier::Light => (Layout::Rtc, 1),
            Tier::Standard => (Layout::Pipeline, 1),
            Tier::Professional => (Layout::Pipeline, 2),
        }
    }
}

/// What to do when the ring into the classify workers is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Overload {
    /// Forward the packet unclassified (counted): the office stays online.
    FailOpen,
    /// Drop the packet (counted): nothing passes unjudged.
    FailClosed,
}

pub struct RunConfig {
    /// DPDK device strings: `net_af_packet0,iface=veth0`, `net_null0`, a PCI address…
    pub lan: String,
    pub wan: String,
    pub layout: Layout,
    pub workers: usize,
    pub overload: Overload,
    pub policy: Arc<Policy>,
    /// The policy's version (0: from a file; else as the control plane numbered it).
    pub policy_version: u64,
    /// Where the starting policy came from, and the versions passed over (shown in stats).
    pub policy_origin: String,
    pub policy_refused: Vec<String>,
    /// Where each policy that runs is kept, for the next start.
    pub last_good: Option<crate::startup::LastGood>,
    /// What survives a restart: the last good policy, the event spool.
    pub state_dir: PathBuf,
    /// The web filter, when a category database was given.
    pub web: Option<crate::webfilter::WebSetup>,
    /// Compiled signature rules, when given: every classify stage inspects with them.
    pub rules: Option<std::sync::Arc<mimamori_pipelines::inspect::RuleBook>>,
    /// The control plane's pattern sets loaded at start (shown in stats), and those it
    /// offered that were refused (the files given on the command line were used instead).
    pub patterns: Vec<crate::patterns::PatternInfo>,
    pub patterns_refused: Vec<String>,
    /// The control plane's gateway socket: events go there (EVE lines).
    pub control_plane: Option<PathBuf>,
    pub eve: Option<PathBuf>,
    pub stats_socket: Option<PathBuf>,
    /// EAL core list (`-l`), e.g. `0-3`; `None` picks one lcore per stage plus the main one.
    pub lcores: Option<String>,
    pub no_huge: bool,
    pub file_prefix: String,
    pub mbufs: u32,
    pub duration: Option<Duration>,
    /// Print the final statistics as JSON.
    pub json: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("--{which} {dev:?}: {why}")]
    Device {
        which: &'static str,
        dev: String,
        why: String,
    },
    #[error("--lcores {0:?}: {1}")]
    Lcores(String, String),
    #[error(
        "no free hugepages (HugePages_Free is 0 in /proc/meminfo): run scripts/setup to reserve them, or pass --no-huge"
    )]
    NoHugepages,
    #[error("--workers must be from 1 to 16")]
    Workers,
}

const VDEV_DRIVERS: &[&str] = &[
    "net_af_packet",
    "net_pcap",
    "net_ring",
    "net_null",
    "net_memif",
    "net_tap",
    "net_af_xdp",
    "net_vhost",
];

/// A port's DPDK name (the part before the first comma) and whether it is a vdev.
pub fn device_name(which: &'static str, dev: &str) -> Result<(String, bool), ConfigError> {
    let bad = |why: &str| ConfigError::Device {
        which,
        dev: dev.to_string(),
        why: why.to_string(),
    };
    let name = dev.split(',').next().unwrap_or("").trim();
    if name.is_empty() {
        return Err(bad("empty device name"));
    }
    if name.starts_with("net_") {
        let driver = name.trim_end_matches(|c: char| c.is_ascii_digit());
        if !VDEV_DRIVERS.contains(&driver) {
            return Err(bad(&format!(
                "unknown virtual device driver {driver:?} (known: {})",
                VDEV_DRIVERS.join(", ")
            )));
        }
        if driver == name {
            return Err(bad(
                "a virtual device needs an instance number, e.g. net_af_packet0",
            ));
        }
        if dev.split(',').skip(1).any(|kv| !kv.contains('=')) {
            return Err(bad("device arguments must be key=value pairs"));
        }
        return Ok((name.to_string(), true));
    }
    let pci = name.split([':', '.']).count() >= 3
        && name
            .chars()
            .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.');
    if !pci {
        return Err(bad(
            "expected a PCI address (0000:03:00.0) or a virtual device (net_af_packet0,iface=eth1)",
        ));
    }
    Ok((name.to_string(), false))
}

/// Parses an EAL core list (`0-3`, `0,2,5`) and checks every core exists.
pub fn parse_lcores(list: &str, online: usize) -> Result<Vec<usize>, ConfigError> {
    let bad = |why: String| ConfigError::Lcores(list.to_string(), why);
    let mut out = Vec::new();
    for part in list.split(',') {
        let part = part.trim();
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a, b),
            None => (part, part),
        };
        let (a, b): (usize, usize) = match (a.trim().parse(), b.trim().parse()) {
            (Ok(a), Ok(b)) if a <= b => (a, b),
            _ => {
                return Err(bad(format!(
                    "{part:?} is not a core number or a range low-high"
                )));
            }
        };
        for c in a..=b {
            if c >= online {
                return Err(bad(format!(
                    "core {c} does not exist (this machine has cores 0-{})",
                    online.saturating_sub(1)
                )));
            }
            if out.contains(&c) {
                return Err(bad(format!("core {c} is listed twice")));
            }
            out.push(c);
        }
    }
    Ok(out)
}

pub fn free_hugepages() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("HugePages_Free:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

impl RunConfig {
    /// Lcores the layout needs besides the main one.
    pub fn stage_lcores(&self) -> usize {
        match self.layout {
            Layout::Rtc => 1,
            Layout::Pipeline => 2 + self.workers,
        }
    }

    /// The EAL command line, after checking everything that can be checked without DPDK.
    pub fn eal_args(&self) -> Result<Vec<String>, ConfigError> {
        if self.workers == 0 || self.workers > 16 {
            return Err(ConfigError::Workers);
        }
        let online = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut args = vec!["mimamori-gw".to_string()];
        let need = 1 + self.stage_lcores();
        match &self.lcores {
            Some(list) => {
                let cores = parse_lcores(list, online)?;
                if cores.len() < need {
                    return Err(ConfigError::Lcores(
                        list.clone(),
                        format!(
                            "the {:?} layout needs {need} lcores (main + {} stage lcores), got {}",
                            self.layout,
                            need - 1,
                            cores.len()
                        ),
                    ));
                }
                args.extend(["-l".into(), list.clone()]);
            }
            None => {
                // Map lcores onto the cores there are (several per core on a small machine).
                let map: Vec<String> = (0..need)
                    .map(|l| {
                        format!(
                            "{l}@{}",
                            if l == 0 {
                                0
                            } else {
                                1 + (l - 1) % online.max(2).saturating_sub(1)
                            }
                            .min(online - 1)
                        )
                    })
                    .collect();
                args.extend(["--lcores".into(), map.join(",")]);
            }
        }
        args.extend([
            "--file-prefix".into(),
            self.file_prefix.clone(),
            "--log-level".into(),
            "*:warning".into(),
        ]);
        if self.no_huge {
            // Heap for the mbuf pool (about 2.5 KB each) plus EAL and ring overhead.
            let mb = ((u64::from(self.mbufs) * 2560) >> 20) + 256;
            args.extend(["--no-huge".into(), "-m".into(), mb.to_string()]);
        } else if free_hugepages() == 0 {
            return Err(ConfigError::NoHugepages);
        } else {
            // Unlink the hugepage files once mapped, so the pages return even after a crash.
            args.push("--huge-unlink".into());
        }
        let mut any_pci = false;
        let (lan, lan_vdev) = device_name("lan", &self.lan)?;
        let (wan, wan_vdev) = device_name("wan", &self.wan)?;
        if lan == wan {
            return Err(ConfigError::Device {
                which: "wan",
                dev: self.wan.clone(),
                why: "the LAN and WAN ports must be different devices".into(),
            });
        }
        for (dev, vdev) in [(&self.lan, lan_vdev), (&self.wan, wan_vdev)] {
            if vdev {
                args.extend(["--vdev".into(), dev.clone()]);
            } else {
                any_pci = true;
                args.extend(["-a".into(), dev.clone()]);
            }
        }
        if !any_pci {
            args.push("--no-pci".into());
        }
        Ok(args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_strings() {
        assert_eq!(
            device_name("lan", "net_af_packet0,iface=veth0").unwrap(),
            ("net_af_packet0".into(), true)
        );
        assert_eq!(
            device_name("lan", "0000:03:00.0").unwrap(),
            ("0000:03:00.0".into(), false)
        );
        assert!(
            device_name("lan", "net_bogus0")
                .unwrap_err()
                .to_string()
                .contains("unknown virtual device driver")
        );
        assert!(
            device_name("lan", "net_null")
                .unwrap_err()
                .to_string()
                .contains("instance number")
        );
        assert!(
            device_name("lan", "net_pcap0,rx_pcap")
                .unwrap_err()
                .to_string()
                .contains("key=value")
        );
        assert!(
            device_name("wan", "eth0")
                .unwrap_err()
                .to_string()
                .contains("PCI address")
        );
    }

    #[test]
    fn core_lists() {
        assert_eq!(parse_lcores("0-2,5", 8).unwrap(), vec![0, 1, 2, 5]);
        assert!(
            parse_lcores("0-9", 2)
                .unwrap_err()
                .to_string()
                .contains("core 2 does not exist")
        );
        assert!(
            parse_lcores("1,1", 4)
                .unwrap_err()
                .to_string()
                .contains("twice")
        );
        assert!(parse_lcores("3-1", 4).is_err());
        assert!(parse_lcores("a", 4).is_err());
    }
}
